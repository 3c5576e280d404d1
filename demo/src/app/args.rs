//! Command-line flags and environment variables.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Serve the axum-autoreload demo app, or any folder of HTML with --root. Run it
/// under `watchexec --socket 8080 --restart --stop-signal SIGINT -- cargo run` and
/// every open tab reloads after each edit.
#[derive(Debug, clap::Parser)]
#[command(version)]
pub(crate) struct Args {
    /// Address to bind when no socket is passed by socket activation (LISTEN_FDS).
    /// [default: 127.0.0.1:8080, or 127.0.0.1:$PORT]
    #[arg(long, value_name = "IP:PORT")]
    addr: Option<SocketAddr>,

    /// Port on 127.0.0.1 to bind when neither a socket is passed nor --addr given.
    #[arg(long, env = "PORT", value_name = "PORT", default_value_t = 8080)]
    port: u16,

    /// Live-server mode: serve this directory at / (index.html for directories),
    /// with the reload script injected and the directory watched, instead of the
    /// demo app.
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// Directory served under /static, and watched: a changed stylesheet or image
    /// is swapped into open tabs, any other change reloads them. [default: the
    /// demo's own `demo/static`, wherever it is run from]
    #[arg(long, env = "STATIC_DIR", value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/static"), hide_default_value = true)]
    pub(crate) static_dir: PathBuf,

    /// SQLite database file that keeps the feed's posts; its directory is created
    /// when missing.
    #[arg(
        long = "db",
        env = "DATABASE_PATH",
        value_name = "FILE",
        default_value = "data/posts.sqlite3"
    )]
    pub(crate) db: PathBuf,

    /// How long the graceful shutdown waits for open connections, in milliseconds.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 2000)]
    drain_deadline: u64,

    /// How long a client may take to send a request's headers, in milliseconds.
    #[arg(long, value_name = "MILLISECONDS", default_value_t = 10_000)]
    header_read_timeout: u64,

    /// Another host name to answer besides localhost, *.localhost and IP addresses
    /// (requests with any other Host get 403). Repeat for more. The library also
    /// reads AXUM_AUTORELOAD_ALLOWED_HOSTS (comma-separated).
    #[arg(long = "allowed-host", value_name = "HOST", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
}

impl Args {
    /// The address to bind when no socket is passed.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
    }

    /// The drain deadline.
    pub(crate) fn drain_deadline(&self) -> Duration {
        Duration::from_millis(self.drain_deadline)
    }

    /// The header read timeout.
    pub(crate) fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout)
    }
}
