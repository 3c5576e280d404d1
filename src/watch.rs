//! Watching a directory of static files, so that open tabs pick up a changed file
//! without a restart of the server.
//!
//! notify reports what happened to each file (inotify on Linux): an open, a read, a
//! write, a close after writing, a rename. A file counts as written when it was
//! created, its data or metadata was modified, it was closed after writing, or it
//! was renamed into place; opening or reading it is no change. The events are
//! debounced here rather than by one of notify's debouncers: notify-debouncer-mini
//! drops the kinds, and notify-debouncer-full releases each event once it is older
//! than the timeout, so a file written for longer than the timeout would be
//! announced more than once. One quiet period for the whole directory also makes a
//! checkout that rewrites many files one update.

use std::collections::BTreeSet;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

use crate::sse::{Broadcast, Broadcaster};

/// How long the watched directory must be quiet before its changes are announced:
/// an editor's several-step save, a formatter's rewrite or a checkout of many files
/// ends in one update.
const DEBOUNCE: Duration = Duration::from_millis(40);

/// Characters escaped in a URL path segment (RFC 3986 §3.3).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// The static-file watchers of one [`crate::AutoReload`]: they run as long as the
/// handle lives, and [`crate::serve()`] stops them when its graceful shutdown begins.
///
/// Closing an inotify instance can take the kernel 15 ms or more (it waits for the
/// marks it destroys to be reaped: an SRCU grace period), and a process cannot
/// exit while one of its threads is in that wait. Stopped at the start of the
/// shutdown, while the server still accepts, the watchers are closed by the time
/// the connections are drained, and the next process takes the socket that much
/// sooner.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    running: Mutex<Vec<RecommendedWatcher>>,
    /// One token per watcher whose OS watch (inotify instance) is still open: held
    /// by its debounce thread, which ends once notify has closed the instance and
    /// dropped the sending half of its channel.
    open: TaskTracker,
}

impl Watchers {
    fn add(&self, watcher: RecommendedWatcher) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(watcher);
    }

    fn token(&self) -> TaskTrackerToken {
        self.open.token()
    }

    /// Stop every watcher. The future completes once each has closed its OS
    /// watch, on notify's thread.
    pub(crate) fn stop_all(&self) -> impl Future<Output = ()> + Send + 'static {
        // Dropping a watcher tells notify's event loop to remove its watches and
        // close the instance.
        drop(std::mem::take(
            &mut *self.running.lock().unwrap_or_else(PoisonError::into_inner),
        ));
        self.open.close();
        let open = self.open.clone();
        async move { open.wait().await }
    }
}

/// Why a directory could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", dir.display())]
pub struct WatchError {
    dir: PathBuf,
    #[source]
    source: io::Error,
}

impl WatchError {
    fn new(dir: &Path, source: notify::Error) -> Self {
        let source = match source.kind {
            notify::ErrorKind::Io(err) => err,
            notify::ErrorKind::PathNotFound => io::ErrorKind::NotFound.into(),
            notify::ErrorKind::MaxFilesWatch => io::Error::other(
                "the system's limit on watches is reached \
                 (on Linux: sysctl fs.inotify.max_user_watches and max_user_instances)",
            ),
            other => io::Error::other(format!("{other:?}")),
        };
        Self {
            dir: dir.to_owned(),
            source,
        }
    }

    /// The directory that could not be watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Watch `dir` for [`crate::watch_static`] (`prefix`: where it is served) or
/// [`crate::watch_templates`] (`None`), announcing on `broadcaster`; the watcher
/// joins `watchers`.
pub(crate) fn watch(
    dir: PathBuf,
    prefix: Option<String>,
    broadcaster: &Broadcaster,
    watchers: &Watchers,
) -> Result<(), WatchError> {
    let root = std::fs::canonicalize(&dir).map_err(|err| WatchError::new(&dir, err.into()))?;
    let (events, received) = mpsc::channel();
    let mut watcher = RecommendedWatcher::new(events, notify::Config::default())
        .map_err(|err| WatchError::new(&dir, err))?;
    watcher
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|err| WatchError::new(&dir, err))?;
    let changes_prefix = prefix.clone();
    let changes = Changes { root, prefix };
    let token = watchers.token();
    let broadcaster = broadcaster.clone();
    std::thread::Builder::new()
        .name("autoreload-watch".to_owned())
        .spawn(move || {
            debounce(&received, &changes, &broadcaster);
            drop(token);
        })
        .map_err(|err| WatchError::new(&dir, err.into()))?;
    match &changes_prefix {
        Some(prefix) => tracing::info!(
            "watching {} for changes (served at {prefix})",
            dir.display()
        ),
        None => tracing::info!("watching {} for template changes", dir.display()),
    }
    watchers.add(watcher);
    Ok(())
}

/// Collect the written files until the directory has been quiet for [`DEBOUNCE`],
/// then announce them; return when notify's event loop has ended (the watcher was
/// dropped and its OS watch closed).
fn debounce(
    events: &Receiver<notify::Result<Event>>,
    changes: &Changes,
    broadcaster: &Broadcaster,
) {
    let mut written = BTreeSet::new();
    // The kernel's queue overflowed (inotify's IN_Q_OVERFLOW): what changed is
    // unknown, so the flush reloads every tab.
    let mut lost = false;
    let mut last_write: Option<Instant> = None;
    loop {
        let received = match last_write {
            Some(last) => events.recv_timeout(DEBOUNCE.saturating_sub(last.elapsed())),
            None => events.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(Ok(event)) if event.need_rescan() => {
                lost = true;
                last_write = Some(Instant::now());
            }
            Ok(Ok(event)) => {
                if let Some(path) = written_path(event) {
                    written.insert(path);
                    last_write = Some(Instant::now());
                }
            }
            Ok(Err(err)) => tracing::warn!("watching {}: {err}", changes.root.display()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_write.is_some_and(|last| last.elapsed() >= DEBOUNCE) {
            last_write = None;
            let urls: Vec<String> = std::mem::take(&mut written)
                .iter()
                .filter_map(|path| changes.url_if_announced(path))
                .collect();
            if std::mem::take(&mut lost) {
                let streams = broadcaster.send(&Broadcast::Reload);
                tracing::warn!(
                    "watching {}: the system dropped change events (its queue overflowed): reloading ({streams} streams)",
                    changes.root.display()
                );
            } else if changes.prefix.is_none() {
                if !urls.is_empty() {
                    let streams = broadcaster.send(&Broadcast::Morph);
                    tracing::info!("changed: {}: morphing ({streams} streams)", urls.join(", "));
                }
            } else {
                announce(broadcaster, &urls);
            }
        }
    }
}

/// The file an event says was written to, or `None` for an event that changes no
/// file's content: an open, a read, a close after reading, a removal, the old name
/// of a renamed file.
fn written_path(mut event: Event) -> Option<PathBuf> {
    let written = match event.kind {
        EventKind::Create(CreateKind::Folder) => false,
        EventKind::Create(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Remove(_) | EventKind::Other => false,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => false,
        // Both names in one event: the file now lives at the second.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            return (event.paths.len() == 2).then(|| event.paths.swap_remove(1));
        }
        EventKind::Modify(_) | EventKind::Any => true,
    };
    if written {
        event.paths.into_iter().next()
    } else {
        None
    }
}

/// Which URL a written file is announced at.
#[derive(Debug)]
struct Changes {
    root: PathBuf,
    /// Where `root` is served; `None` for templates, which are not served (their
    /// path under `root` names them in the log).
    prefix: Option<String>,
}

impl Changes {
    /// The URL path of a written file, or `None` when it is not to be announced:
    /// gone, a directory, empty (caught half-written: the write that fills it
    /// counts), hidden or an editor's backup.
    fn url_if_announced(&self, path: &Path) -> Option<String> {
        let metadata = std::fs::metadata(path).ok()?;
        if !metadata.is_file() || metadata.len() == 0 {
            return None;
        }
        url_path(&self.root, self.prefix.as_deref().unwrap_or(""), path)
    }
}

fn announce(broadcaster: &Broadcaster, urls: &[String]) {
    if urls.is_empty() {
        return;
    }
    if urls
        .iter()
        .any(|url| Broadcast::for_change(url) == Broadcast::Reload)
    {
        let streams = broadcaster.send(&Broadcast::Reload);
        tracing::info!(
            "changed: {}: reloading ({streams} streams)",
            urls.join(", ")
        );
        return;
    }
    let mut morphed = false;
    for url in urls {
        // One morph brings every page up to date.
        let morph = Broadcast::for_change(url) == Broadcast::Morph;
        if morph && std::mem::replace(&mut morphed, true) {
            continue;
        }
        let streams = broadcaster.send(&Broadcast::for_change(url));
        tracing::info!("changed: {url}: refreshing in place ({streams} streams)");
    }
}

/// The URL path a file is served at, or `None` for files not worth announcing
/// (hidden, an editor's backup) and paths outside `root`.
fn url_path(root: &Path, prefix: &str, path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    if name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") {
        return None;
    }
    let relative = path.strip_prefix(root).ok()?;
    let mut url = prefix.to_owned();
    for segment in relative.iter() {
        url.push('/');
        url.extend(utf8_percent_encode(segment.to_str()?, SEGMENT));
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::tests::test_broadcaster;

    #[test]
    fn written_files_are_announced_with_their_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("css")).expect("mkdir");
        for (name, body) in [
            ("css/app.css", "a{}"),
            ("my image.png", "png"),
            ("empty.css", ""),
            (".hidden.css", "a{}"),
            ("app.css~", "a{}"),
        ] {
            std::fs::write(root.join(name), body).expect("write");
        }
        let changes = Changes {
            root: root.clone(),
            prefix: Some("/static".to_owned()),
        };
        let url = |name: &str| changes.url_if_announced(&root.join(name));
        assert_eq!(url("css/app.css").as_deref(), Some("/static/css/app.css"));
        assert_eq!(
            url("my image.png").as_deref(),
            Some("/static/my%20image.png")
        );
        assert_eq!(url("empty.css"), None, "half-written");
        assert_eq!(url(".hidden.css"), None);
        assert_eq!(url("app.css~"), None);
        assert_eq!(url("gone.css"), None);
        assert_eq!(url("css"), None, "a directory");
        assert_eq!(
            url_path(&root, "", &root.join("css/app.css")).as_deref(),
            Some("/css/app.css")
        );
    }

    #[test]
    fn writes_are_told_from_reads_by_the_kind_of_event() {
        use notify::event::{DataChange, MetadataKind, RemoveKind};
        let at = |kind: EventKind, paths: &[&str]| {
            let mut event = Event::new(kind);
            for path in paths {
                event = event.add_path(PathBuf::from(path));
            }
            written_path(event)
        };
        let written = Some(PathBuf::from("/s/a.css"));
        for kind in [
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Data(DataChange::Any)),
            EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
        ] {
            assert_eq!(at(kind, &["/s/a.css"]), written, "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Create(CreateKind::Folder),
        ] {
            assert_eq!(at(kind, &["/s/a.css"]), None, "{kind:?}");
        }
        assert_eq!(
            at(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/s/.a.css.tmp", "/s/a.css"]
            ),
            written,
            "an atomic save: the file now lives at the second name"
        );
    }

    #[tokio::test]
    async fn stopping_closes_the_watch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let css = dir.path().join("app.css");
        std::fs::write(&css, "a{}").expect("write");
        let broadcaster = test_broadcaster(
            Duration::from_secs(15),
            crate::shutdown::ShutdownSignal::new(),
        );
        let mut events = broadcaster.frames();
        let watchers = Watchers::default();
        watch(
            dir.path().into(),
            Some("/static".into()),
            &broadcaster,
            &watchers,
        )
        .expect("watch");
        std::fs::write(&css, "a{color:red}").expect("write");
        let frame = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("announced")
            .expect("frame");
        assert_eq!(&frame[..], b"event: css\ndata: /static/app.css\n\n");
        // `stop_all` completes once the debounce thread has returned, which it does
        // when notify's event loop ends: the inotify instance is closed.
        tokio::time::timeout(Duration::from_secs(5), watchers.stop_all())
            .await
            .expect("the watcher's inotify instance closes");
    }

    #[tokio::test]
    async fn lost_events_reload_every_tab() {
        let broadcaster = test_broadcaster(
            Duration::from_secs(15),
            crate::shutdown::ShutdownSignal::new(),
        );
        let mut frames = broadcaster.frames();
        let (events, received) = std::sync::mpsc::channel();
        let changes = Changes {
            root: PathBuf::from("/static-root"),
            prefix: Some("/static".to_owned()),
        };
        let thread = std::thread::spawn(move || debounce(&received, &changes, &broadcaster));
        // What notify sends when the kernel's queue overflowed.
        let overflow = Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        events.send(Ok(overflow)).expect("send");
        let frame = tokio::time::timeout(Duration::from_secs(5), frames.recv())
            .await
            .expect("announced")
            .expect("frame");
        assert!(frame.starts_with(b"event: reload\n"), "{frame:?}");
        drop(events);
        thread.join().expect("the debounce thread returns");
    }
}
