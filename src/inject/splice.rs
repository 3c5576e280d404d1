//! Finds where the script goes in a body that arrives in chunks.

use std::sync::LazyLock;

use bytes::{Bytes, BytesMut};
use memchr::memmem;

/// The script goes before this, compared ASCII case-insensitively.
const CLOSE_BODY: &[u8] = b"</body";

/// Splices a tag into a body, chunk by chunk: before the first `</body`, or at the
/// end. Feeding any split of a body gives the same output bytes.
#[derive(Debug)]
pub(crate) struct Splicer {
    tag: Bytes,
    /// The tail of the previous chunk that may begin a `</body` (at most 5 bytes).
    held: BytesMut,
    done: bool,
}

impl Splicer {
    pub(crate) fn new(tag: Bytes) -> Self {
        Self {
            tag,
            held: BytesMut::new(),
            done: false,
        }
    }

    /// Whether the tag is in the output already.
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// How many bytes are still to come from the splicer beyond the inner body's
    /// own: the held-back bytes and the tag, until the tag is out.
    pub(crate) fn remaining_len(&self) -> usize {
        if self.done {
            0
        } else {
            self.held.len() + self.tag.len()
        }
    }

    /// Feed the next chunk; returns the bytes that may go out now (possibly empty).
    pub(crate) fn push(&mut self, chunk: Bytes) -> Bytes {
        if self.done {
            return chunk;
        }
        let data = if self.held.is_empty() {
            chunk
        } else {
            self.held.extend_from_slice(&chunk);
            self.held.split().freeze()
        };
        if let Some(at) = find_close_body(&data) {
            self.done = true;
            let mut out = BytesMut::with_capacity(data.len() + self.tag.len());
            out.extend_from_slice(&data[..at]);
            out.extend_from_slice(&self.tag);
            out.extend_from_slice(&data[at..]);
            return out.freeze();
        }
        let keep = partial_suffix(&data);
        self.held.extend_from_slice(&data[data.len() - keep..]);
        data.slice(..data.len() - keep)
    }

    /// The body ended (or trailers follow): returns what is held back, plus the tag
    /// when no `</body` was seen.
    pub(crate) fn finish(&mut self) -> Bytes {
        if self.done {
            return Bytes::new();
        }
        self.done = true;
        let mut out = std::mem::take(&mut self.held);
        out.extend_from_slice(&self.tag);
        out.freeze()
    }
}

/// Finders for the first three bytes of `</body` in either case of the `b`: an
/// HTML page has a `</` every few dozen bytes, but few `</b`.
static LOWER_B: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"</b"));
static UPPER_B: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(b"</B"));

/// Index of the first `</body`, ASCII case-insensitive.
fn find_close_body(data: &[u8]) -> Option<usize> {
    let after =
        |finder: &memmem::Finder<'_>, from: usize| finder.find(&data[from..]).map(|at| at + from);
    let (mut lower, mut upper) = (after(&LOWER_B, 0), after(&UPPER_B, 0));
    loop {
        let at = match (lower, upper) {
            (Some(l), Some(u)) => l.min(u),
            (Some(at), None) | (None, Some(at)) => at,
            (None, None) => return None,
        };
        if starts_with_ignore_case(&data[at..], CLOSE_BODY) {
            return Some(at);
        }
        // Move on only the finder that stopped here, so each byte is scanned once
        // by each finder.
        if lower == Some(at) {
            lower = after(&LOWER_B, at + 1);
        } else {
            upper = after(&UPPER_B, at + 1);
        }
    }
}

fn starts_with_ignore_case(data: &[u8], prefix: &[u8]) -> bool {
    data.len() >= prefix.len() && data[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Length of the longest proper prefix of `</body` that ends `data`.
fn partial_suffix(data: &[u8]) -> usize {
    (1..CLOSE_BODY.len())
        .rev()
        .find(|&n| data.len() >= n && data[data.len() - n..].eq_ignore_ascii_case(&CLOSE_BODY[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TAG: &[u8] = b"<script src=/x.js></script>";

    fn splice_chunks(chunks: &[&[u8]]) -> Vec<u8> {
        let mut splicer = Splicer::new(Bytes::from_static(TAG));
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&splicer.push(Bytes::copy_from_slice(chunk)));
        }
        out.extend_from_slice(&splicer.finish());
        out
    }

    /// The reference: the tag before the first `</body` or at the end, in one go.
    fn expected(body: &[u8]) -> Vec<u8> {
        let lower = body.to_ascii_lowercase();
        let at = lower
            .windows(CLOSE_BODY.len())
            .position(|w| w == CLOSE_BODY)
            .unwrap_or(body.len());
        [&body[..at], TAG, &body[at..]].concat()
    }

    fn count(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    #[test]
    fn before_close_body() {
        assert_eq!(
            splice_chunks(&[b"<html><body>hi</body></html>"]),
            b"<html><body>hi<script src=/x.js></script></body></html>"
        );
    }

    #[test]
    fn close_body_in_any_case() {
        assert_eq!(
            splice_chunks(&[b"<p>x</BoDy>"]),
            b"<p>x<script src=/x.js></script></BoDy>"
        );
    }

    #[test]
    fn at_the_end_without_close_body() {
        assert_eq!(
            splice_chunks(&[b"<h1>no body tag</h1>"]),
            b"<h1>no body tag</h1><script src=/x.js></script>"
        );
    }

    #[test]
    fn empty_body_gets_the_tag() {
        assert_eq!(splice_chunks(&[]), TAG);
    }

    #[test]
    fn close_body_straddling_chunks() {
        assert_eq!(
            splice_chunks(&[b"<p>x</b", b"ody></html>"]),
            b"<p>x<script src=/x.js></script></body></html>"
        );
        assert_eq!(
            splice_chunks(&[b"<p>x<", b"/", b"BO", b"dy>"]),
            b"<p>x<script src=/x.js></script></BOdy>"
        );
    }

    #[test]
    fn only_the_first_close_body() {
        let out = splice_chunks(&[b"</body></body>"]);
        assert_eq!(count(&out, TAG), 1);
        assert!(out.starts_with(TAG));
    }

    #[test]
    fn a_false_start_is_released() {
        let mut splicer = Splicer::new(Bytes::from_static(TAG));
        assert_eq!(&splicer.push(Bytes::from_static(b"a </bo"))[..], b"a ");
        assert_eq!(&splicer.push(Bytes::from_static(b"ld>"))[..], b"</bold>");
        assert!(!splicer.is_done());
    }

    proptest! {
        #[test]
        fn any_split_gives_the_same_bytes(
            body in proptest::collection::vec(
                prop_oneof![
                    Just(b"</body>".to_vec()),
                    Just(b"</BODY".to_vec()),
                    Just(b"</bo".to_vec()),
                    Just(b"<".to_vec()),
                    Just(b"</".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..12),
                ],
                0..12,
            ).prop_map(|parts| parts.concat()),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(body.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut from = 0;
            for &to in &points {
                chunks.push(&body[from..to]);
                from = to;
            }
            chunks.push(&body[from..]);
            let out = splice_chunks(&chunks);
            prop_assert_eq!(&out, &expected(&body));
            prop_assert_eq!(count(&out, TAG), count(&body, TAG) + 1);
        }
    }
}
