//! The instance id: which server process served a page or a stream.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Identifies one server process, so that a browser tab can tell whether the page it
/// shows came from the server it is talking to now.
///
/// The text form is `<start>-<random>`: the process start time in milliseconds since
/// the Unix epoch in lower-case hex, then 32 random bits in hex (for example
/// `19ab3f0c2e1-5f3a9c07`). The client compares the start times, so every tab
/// converges on the newest process whatever order the events arrive in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(String);

impl InstanceId {
    /// A new id for a process starting now.
    ///
    /// # Panics
    ///
    /// Never: when the OS random source fails the random part falls back to the
    /// process id.
    pub fn generate() -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let mut random = [0u8; 4];
        let random = match getrandom::fill(&mut random) {
            Ok(()) => u32::from_le_bytes(random),
            Err(_) => std::process::id(),
        };
        Self(format!("{started:x}-{random:08x}"))
    }

    /// The id as text, as it appears in the page and on the reload stream.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_have_the_documented_shape() {
        let a = InstanceId::generate();
        let b = InstanceId::generate();
        assert_ne!(a, b);
        let (start, random) = a.as_str().split_once('-').expect("a dash");
        assert!(u64::from_str_radix(start, 16).expect("hex start") > 0);
        assert_eq!(random.len(), 8);
        assert!(u32::from_str_radix(random, 16).is_ok());
    }
}
