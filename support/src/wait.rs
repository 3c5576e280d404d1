//! Waiting for a condition, with a time limit that fails the test and says what
//! it waited for.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often [`until`] asks again.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// Asks `poll` every 10 ms until it gives `Some`, and returns that. Panics
/// after `limit` with `what` (each ask may take at most the time left).
pub async fn until<T, F>(what: &str, limit: Duration, mut poll: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Ok(Some(value)) = tokio::time::timeout(left, poll()).await {
            return value;
        }
        let late = Instant::now() >= deadline;
        assert!(!late, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}
