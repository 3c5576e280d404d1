//! Where the feed's posts are kept: the [`PostStore`] trait and its SQLite
//! implementation, [`SqliteStore`].

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection};

/// A post as the user sent it, already validated (see `form`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewPost {
    /// 1 to 40 characters, trimmed.
    pub(crate) username: String,
    /// 1 to 500 characters, trimmed, line breaks as `\n`.
    pub(crate) message: String,
}

/// A stored post.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Post {
    /// Assigned by the store, increasing: a later post has a larger id.
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) message: String,
    /// When the post was stored, in seconds since the Unix epoch (UTC).
    pub(crate) created_at: i64,
}

/// A store that failed; the message is for the log, not for users.
#[derive(Debug, thiserror::Error)]
#[error("post store: {0}")]
pub(crate) struct StoreError(String);

impl StoreError {
    pub(crate) fn new(message: String) -> Self {
        Self(message)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self(err.to_string())
    }
}

/// Keeps posts. Implementations are blocking: call them from
/// `tokio::task::spawn_blocking`. Another database goes behind this trait.
pub(crate) trait PostStore: Send + Sync + 'static {
    /// Store `post` and return it with its id and time.
    fn add(&self, post: NewPost) -> Result<Post, StoreError>;

    /// The `limit` newest posts, newest first.
    fn recent(&self, limit: usize) -> Result<Vec<Post>, StoreError>;
}

/// Posts in one SQLite file, in WAL mode, behind a mutex held only for one
/// statement or transaction.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Open (or create) the database at `path`, creating its directory when missing,
    /// and the table when new.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|err| StoreError(format!("creating {}: {err}", dir.display())))?;
        }
        let connection = Connection::open(path)
            .map_err(|err| StoreError(format!("opening {}: {err}", path.display())))?;
        // Another process on the same file (the next build starting while this one
        // drains, or tests running side by side) makes this wait up to 5 s for a
        // lock instead of failing: set before anything else takes one.
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // Switching a new file to WAL takes a lock that the busy handler does not
        // wait for: several processes creating the database at once (tests side by
        // side on a fresh checkout) get SQLITE_BUSY. Retry for up to 5 s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            match set_up(&connection) {
                Err(err) if is_busy(&err) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                result => break result?,
            }
        }
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        // A panic while the lock was held leaves no half-done statement behind:
        // SQLite rolled it back, so the connection is still good.
        let connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(f(&connection)?)
    }
}

impl PostStore for SqliteStore {
    fn add(&self, post: NewPost) -> Result<Post, StoreError> {
        let created_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        let id = self.with(|connection| {
            connection.execute(
                "INSERT INTO posts (username, message, created_at) VALUES (?1, ?2, ?3)",
                params![post.username, post.message, created_at],
            )?;
            Ok(connection.last_insert_rowid())
        })?;
        Ok(Post {
            id,
            username: post.username,
            message: post.message,
            created_at,
        })
    }

    fn recent(&self, limit: usize) -> Result<Vec<Post>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, username, message, created_at FROM posts ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit], |row| {
                Ok(Post {
                    id: row.get(0)?,
                    username: row.get(1)?,
                    message: row.get(2)?,
                    created_at: row.get(3)?,
                })
            })?;
            rows.collect()
        })
    }
}

/// WAL mode (readers do not block the writer, nor the writer the readers) and the
/// table, when new.
fn set_up(connection: &Connection) -> rusqlite::Result<()> {
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.execute_batch(
        "CREATE TABLE IF NOT EXISTS posts (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             username TEXT NOT NULL,
             message TEXT NOT NULL,
             created_at INTEGER NOT NULL
         );",
    )
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_come_back_newest_first_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("nested/posts.sqlite3");
        let store = SqliteStore::open(&path).expect("open");
        for i in 0..3 {
            store
                .add(NewPost {
                    username: format!("user{i}"),
                    message: format!("message {i}"),
                })
                .expect("add");
        }
        drop(store);
        let store = SqliteStore::open(&path).expect("reopen");
        let recent = store.recent(2).expect("recent");
        let names: Vec<&str> = recent.iter().map(|post| post.username.as_str()).collect();
        assert_eq!(names, ["user2", "user1"]);
        assert!(recent[0].id > recent[1].id);
    }
}
