//! The server's open connections: their tasks, what each one is serving, and the
//! ones the app holds after an upgrade.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::task::{Id, JoinError, JoinSet};

use super::connection::{self, Connect, Tracked};

/// Every connection the server accepted and has not seen end. A connection
/// counts until its socket is dropped: one upgraded to a WebSocket counts until
/// the app drops the socket or the server closes it after the upgrade grace.
#[derive(Debug, Default)]
pub(super) struct Connections {
    tasks: JoinSet<()>,
    open: HashMap<Id, Arc<Tracked>>,
}

impl Connections {
    /// Serve an accepted connection on its own task.
    pub(super) fn spawn(&mut self, connect: &Arc<Connect>, stream: TcpStream, remote: SocketAddr) {
        let tracked = Arc::new(Tracked::new(remote));
        let task = connection::serve(Arc::clone(connect), stream, Arc::clone(&tracked));
        let id = self.tasks.spawn(task).id();
        self.open.insert(id, tracked);
    }

    pub(super) fn len(&self) -> usize {
        self.tasks.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Wait until a connection ends; completes at once when there is none. A
    /// connection task that panicked is logged with the panic's message.
    pub(super) async fn join_next(&mut self) {
        let Some(joined) = self.tasks.join_next_with_id().await else {
            return;
        };
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(err) => err.id(),
        };
        let tracked = self.open.remove(&id);
        if let Err(err) = joined {
            if err.is_panic() {
                let remote = tracked.map(|t| t.remote.to_string()).unwrap_or_default();
                tracing::error!(
                    "the connection from {remote} ended in a panic: {}",
                    panic_message(err)
                );
            }
        }
    }

    /// What holds the open connections, most common first: `GET /events (2), GET
    /// /ws (upgraded)`.
    pub(super) fn holders(&self) -> String {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for tracked in self.open.values() {
            *counts.entry(tracked.holder()).or_default() += 1;
        }
        let mut counts: Vec<(String, usize)> = counts.into_iter().collect();
        counts.sort_by_key(|&(_, count)| std::cmp::Reverse(count));
        counts
            .into_iter()
            .map(|(holder, count)| match count {
                1 => holder,
                n => format!("{holder} ({n})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// End every connection task. Sockets the app holds after an upgrade and that
    /// the server has not closed stay open until the app drops them (at the latest
    /// when its runtime shuts down).
    pub(super) fn abort_all(&mut self) {
        self.tasks.abort_all();
    }
}

fn panic_message(err: JoinError) -> String {
    crate::panic_page::panic_text(&*err.into_panic()).to_owned()
}
