//! Watching a directory of static files, so that open tabs pick up a changed file
//! without a restart of the server.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use notify_debouncer_mini::notify::{
    self, Config, EventHandler, RecommendedWatcher, RecursiveMode, Watcher, WatcherKind,
};
use notify_debouncer_mini::{
    new_debouncer_opt, DebounceEventResult, DebouncedEventKind, Debouncer,
};
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use tokio_util::task::{task_tracker::TaskTrackerToken, TaskTracker};

use crate::reload::Broadcast;
use crate::AutoReload;

/// How long a file must be quiet before its change is announced: an editor's
/// several-step save or a formatter's rewrite ends in one update.
pub const DEBOUNCE: Duration = Duration::from_millis(40);

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

/// Watches a directory; stops when dropped, or when the server's graceful
/// shutdown begins. Made by [`watch_static`].
pub struct StaticWatcher {
    _slot: Arc<Slot>,
    dir: PathBuf,
}

/// A running watcher, until it is stopped.
type Slot = Mutex<Option<Debouncer<TrackedWatcher>>>;

/// The static-file watchers of one [`AutoReload`], which [`crate::serve()`] stops
/// when its graceful shutdown begins.
///
/// Closing an inotify instance can take the kernel 15 ms or more (it waits for the
/// marks it destroys to be reaped: an SRCU grace period), and a process cannot
/// exit while one of its threads is in that wait. Stopped at the start of the
/// shutdown, while the server still accepts, the watchers are closed by the time
/// the connections are drained, and the next process takes the socket that much
/// sooner.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    running: Mutex<Vec<Weak<Slot>>>,
    /// One token per watcher whose OS watch (inotify instance) is still open.
    open: TaskTracker,
}

impl Watchers {
    fn add(&self, slot: &Arc<Slot>) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|slot| slot.strong_count() > 0);
        running.push(Arc::downgrade(slot));
    }

    /// Stop every watcher. The future completes once each has closed its OS
    /// watch, on notify's thread.
    pub(crate) fn stop_all(&self) -> impl Future<Output = ()> + Send + 'static {
        let running =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in running.iter().filter_map(Weak::upgrade) {
            // Dropping the debouncer tells notify's event loop to remove its
            // watches and close the instance.
            drop(slot.lock().unwrap_or_else(PoisonError::into_inner).take());
        }
        self.open.close();
        let open = self.open.clone();
        async move { open.wait().await }
    }
}

thread_local! {
    /// Hands [`TrackedWatcher::new`] its token: notify makes the watcher inside
    /// the debouncer's constructor, and `Watcher::new` takes no other argument.
    static NEXT_TOKEN: RefCell<Option<TaskTrackerToken>> = const { RefCell::new(None) };
}

/// notify's recommended watcher whose event handler holds a [`TaskTrackerToken`]:
/// notify drops the handler when its event loop ends, after it has closed the OS
/// watch, so [`Watchers::stop_all`] can tell when that is done.
#[derive(Debug)]
struct TrackedWatcher(RecommendedWatcher);

/// An event handler and the token it holds until notify drops it.
struct Tracked<F> {
    handler: F,
    _open: Option<TaskTrackerToken>,
}

impl<F: EventHandler> EventHandler for Tracked<F> {
    fn handle_event(&mut self, event: notify::Result<notify::Event>) {
        self.handler.handle_event(event);
    }
}

impl Watcher for TrackedWatcher {
    fn new<F: EventHandler>(event_handler: F, config: Config) -> notify::Result<Self> {
        let handler = Tracked {
            handler: event_handler,
            _open: NEXT_TOKEN.with(RefCell::take),
        };
        RecommendedWatcher::new(handler, config).map(Self)
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        self.0.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0.unwatch(path)
    }

    fn configure(&mut self, option: Config) -> notify::Result<bool> {
        self.0.configure(option)
    }

    fn kind() -> WatcherKind {
        RecommendedWatcher::kind()
    }
}

impl std::fmt::Debug for StaticWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticWatcher")
            .field("dir", &self.dir)
            .finish()
    }
}

/// Why a directory could not be watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {source}", dir.display())]
pub struct WatchError {
    /// The directory.
    pub dir: PathBuf,
    /// What notify reported (a missing directory, too many inotify watches).
    #[source]
    pub source: notify::Error,
}

/// Watch `dir` (recursively) and tell every open tab when a file in it changes, as
/// [`AutoReload::changed`] does: stylesheets are swapped in place, images refreshed,
/// anything else reloads the tabs. `url_prefix` is where `dir` is served, such as
/// `/static` (so `dir/app.css` is `/static/app.css`).
///
/// Changes are debounced ([`DEBOUNCE`]): a burst of writes to one file is one
/// update. A file that is empty when the burst ends (caught half-written, as
/// tailwind's watcher leaves its output for about 175 ms) is not announced; the
/// write that fills it is. Hidden files (`.name`) and editor backups (`name~`,
/// `.swp`) are ignored. When several files change at once and one of them needs a
/// reload, the tabs reload once. Reading a file is no change (inotify reports
/// every open): a file counts as changed when its modification time is later than
/// when it was last announced, or than the start of watching.
///
/// # Errors
///
/// Returns `Err` when `dir` cannot be watched: it does not exist, or the system's
/// limit on watches is reached.
pub fn watch_static(
    dir: impl Into<PathBuf>,
    url_prefix: &str,
    reload: &AutoReload,
) -> Result<StaticWatcher, WatchError> {
    let dir = dir.into();
    let fail = |source| WatchError {
        dir: dir.clone(),
        source,
    };
    let root = std::fs::canonicalize(&dir).map_err(|err| fail(err.into()))?;
    let mut changes = Changes {
        root: root.clone(),
        prefix: url_prefix.trim_end_matches('/').to_owned(),
        started: SystemTime::now(),
        seen: HashMap::new(),
    };
    let announcer = reload.clone();
    let handler = move |result: DebounceEventResult| match result {
        Ok(events) => {
            // `AnyContinuous` marks a file still being written to: wait for its
            // final `Any`.
            let mut urls: Vec<String> = events
                .iter()
                .filter(|event| event.kind == DebouncedEventKind::Any)
                .filter_map(|event| changes.url_if_written(&event.path))
                .collect();
            urls.sort_unstable();
            urls.dedup();
            announce(&announcer, &urls);
        }
        Err(err) => tracing::warn!("watching {}: {err}", changes.root.display()),
    };
    let watchers = &reload.shared.watchers;
    NEXT_TOKEN.with(|next| next.replace(Some(watchers.open.token())));
    let made = new_debouncer_opt::<_, TrackedWatcher>(
        notify_debouncer_mini::Config::default().with_timeout(DEBOUNCE),
        handler,
    );
    NEXT_TOKEN.with(RefCell::take);
    let mut debouncer = made.map_err(fail)?;
    debouncer
        .watcher()
        .watch(&root, RecursiveMode::Recursive)
        .map_err(fail)?;
    tracing::info!(
        "watching {} for changes (served at {url_prefix})",
        dir.display()
    );
    let slot = Arc::new(Mutex::new(Some(debouncer)));
    watchers.add(&slot);
    Ok(StaticWatcher { _slot: slot, dir })
}

/// Which files were written since they were last announced.
struct Changes {
    root: PathBuf,
    prefix: String,
    /// When watching began: a file last modified before is unchanged.
    started: SystemTime,
    /// The modification time each file was announced with.
    seen: HashMap<PathBuf, SystemTime>,
}

impl Changes {
    /// The URL path of a file whose content changed since it was last announced,
    /// or `None`: read, not written (inotify reports every open); gone; a
    /// directory; empty (caught half-written: the write that fills it counts);
    /// hidden or an editor's backup.
    fn url_if_written(&mut self, path: &Path) -> Option<String> {
        let metadata = std::fs::metadata(path).ok()?;
        if !metadata.is_file() || metadata.len() == 0 {
            return None;
        }
        let modified = metadata.modified().ok()?;
        if modified <= self.seen.get(path).copied().unwrap_or(self.started) {
            return None;
        }
        let url = url_path(&self.root, &self.prefix, path)?;
        self.seen.insert(path.to_owned(), modified);
        Some(url)
    }
}

fn announce(reload: &AutoReload, urls: &[String]) {
    if urls.is_empty() {
        return;
    }
    if urls
        .iter()
        .any(|url| Broadcast::for_change(url) == Broadcast::Reload)
    {
        let streams = reload.reload();
        tracing::info!(
            "changed: {}: reloading ({streams} streams)",
            urls.join(", ")
        );
        return;
    }
    for url in urls {
        let streams = reload.changed(url);
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

    #[test]
    fn only_written_files_are_announced_with_their_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = std::fs::canonicalize(dir.path()).expect("canonical");
        std::fs::create_dir(root.join("css")).expect("mkdir");
        std::fs::write(root.join("old.css"), "a{}").expect("write");
        let mut changes = Changes {
            root: root.clone(),
            prefix: "/static".to_owned(),
            started: SystemTime::now(),
            seen: HashMap::new(),
        };
        std::thread::sleep(Duration::from_millis(10));
        for (name, body) in [
            ("css/app.css", "a{}"),
            ("my image.png", "png"),
            ("empty.css", ""),
            (".hidden.css", "a{}"),
            ("app.css~", "a{}"),
        ] {
            std::fs::write(root.join(name), body).expect("write");
        }
        let mut url = |name: &str| changes.url_if_written(&root.join(name));
        assert_eq!(url("css/app.css").as_deref(), Some("/static/css/app.css"));
        assert_eq!(
            url("css/app.css"),
            None,
            "announced already, not written since"
        );
        assert_eq!(
            url("old.css"),
            None,
            "written before watching began: a read"
        );
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

    #[tokio::test]
    async fn stopping_closes_the_watch_and_nothing_more_is_announced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let css = dir.path().join("app.css");
        std::fs::write(&css, "a{}").expect("write");
        let reload = AutoReload::builder().enabled(true).build();
        let mut events = reload.shared.events.subscribe();
        let _watcher = watch_static(dir.path(), "/static", &reload).expect("watch");
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(&css, "a{color:red}").expect("write");
        let frame = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("announced")
            .expect("frame");
        assert_eq!(&frame[..], b"event: css\ndata: /static/app.css\n\n");

        tokio::time::timeout(Duration::from_secs(5), reload.shared.watchers.stop_all())
            .await
            .expect("the watcher's inotify instance closes");
        let quiet = tokio::time::timeout(Duration::from_millis(300), events.recv());
        std::fs::write(&css, "a{color:blue}").expect("write");
        assert!(quiet.await.is_err(), "announced after the watcher stopped");
    }

    #[test]
    fn what_each_change_needs() {
        assert_eq!(
            Broadcast::for_change("/a/b.CSS"),
            Broadcast::Css("/a/b.CSS".into())
        );
        assert_eq!(
            Broadcast::for_change("/logo.svg"),
            Broadcast::Image("/logo.svg".into())
        );
        assert_eq!(Broadcast::for_change("/index.html"), Broadcast::Reload);
        assert_eq!(Broadcast::for_change("/app.js"), Broadcast::Reload);
        assert_eq!(Broadcast::for_change("/Makefile"), Broadcast::Reload);
    }
}
