//! A Rust panic, read back from what the app wrote to stderr.
//!
//! The default panic hook prints `thread 'main' panicked at src/main.rs:4:5:` (since
//! Rust 1.73; Rust 1.88 adds the thread id: `thread 'main' (4242) panicked at …`),
//! then the message, which may span lines, then a `note:` or a `stack backtrace:`.

/// Where a panic happened and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panic {
    /// The thread's name, e.g. `main`.
    pub(crate) thread: String,
    /// The file as rustc was given it: relative to the workspace root for the
    /// workspace's own code, absolute for dependencies.
    pub(crate) file: String,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column.
    pub(crate) col: usize,
    /// The panic message, without a trailing newline.
    pub(crate) message: String,
}

/// How the ANSI escape sequences that loggers colour with begin (CSI).
const CSI: &str = "\x1b[";

/// `text` without ANSI escape sequences (`ESC [ … letter`).
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(CSI) {
        plain.push_str(&rest[..at]);
        let after = &rest[at + CSI.len()..];
        let end = after
            .find(|c: char| c.is_ascii_alphabetic())
            .map_or(after.len(), |end| end + 1);
        rest = &after[end..];
    }
    plain.push_str(rest);
    plain
}

/// The last panic in `stderr`, if there is one.
pub(crate) fn last_panic(stderr: &str) -> Option<Panic> {
    let lines: Vec<&str> = stderr.lines().collect();
    let (at, head) = lines
        .iter()
        .enumerate()
        .rev()
        .find_map(|(at, line)| parse_head(line).map(|head| (at, head)))?;
    let (thread, file, line, col) = head;
    let message: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|line| !line.starts_with("note: ") && !line.starts_with("stack backtrace:"))
        .copied()
        .collect();
    Some(Panic {
        thread,
        file,
        line,
        col,
        message: message.join("\n").trim_end().to_owned(),
    })
}

/// `thread 'NAME' [(ID)] panicked at FILE:LINE:COL:` as (name, file, line, col).
fn parse_head(line: &str) -> Option<(String, String, usize, usize)> {
    let rest = line.trim_end().strip_prefix("thread '")?;
    let (thread, rest) = rest.split_once('\'')?;
    let (_, location) = rest.split_once("panicked at ")?;
    let location = location.strip_suffix(':')?;
    let (location, col) = location.rsplit_once(':')?;
    let (file, line) = location.rsplit_once(':')?;
    Some((
        thread.to_owned(),
        file.to_owned(),
        line.parse().ok()?,
        col.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_message_and_location_with_or_without_a_thread_id() {
        let stderr = "\x1b[2m2025-01-01\x1b[0m INFO starting\n\
            thread 'main' (4242) panicked at src/main.rs:7:5:\n\
            DATABASE_URL is not set:\n  expected a postgres:// URL\n\
            note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let panic = last_panic(&strip_ansi(stderr)).expect("a panic");
        assert_eq!(
            panic,
            Panic {
                thread: "main".to_owned(),
                file: "src/main.rs".to_owned(),
                line: 7,
                col: 5,
                message: "DATABASE_URL is not set:\n  expected a postgres:// URL".to_owned(),
            }
        );
        let older =
            "thread '<unnamed>' panicked at /home/a b/x.rs:1:2:\nboom\nstack backtrace:\n  0: x";
        let panic = last_panic(older).expect("a panic");
        assert_eq!(
            (panic.thread.as_str(), panic.file.as_str()),
            ("<unnamed>", "/home/a b/x.rs")
        );
        assert_eq!(panic.message, "boom");
    }

    #[test]
    fn the_last_panic_counts_and_other_text_is_none() {
        let two = "thread 'a' panicked at a.rs:1:1:\nfirst\nthread 'main' panicked at b.rs:2:3:\nsecond\n";
        assert_eq!(
            last_panic(two).map(|p| p.message),
            Some("second".to_owned())
        );
        assert_eq!(last_panic("Error: port 8080 is taken\n"), None);
        assert_eq!(last_panic("thread 'x' panicked at nowhere\n"), None);
    }

    #[test]
    fn strips_colours() {
        assert_eq!(strip_ansi("\x1b[1;31merror\x1b[0m: x\x1b[K"), "error: x");
    }
}
