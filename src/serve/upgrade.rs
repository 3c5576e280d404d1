//! Upgraded connections (WebSockets) at shutdown: the server closes the ones the
//! app still holds a short grace after the shutdown begins, with a Close frame
//! 1012 when it can send one between two of the app's frames.
//!
//! Every write to a connection's socket goes through [`Upgrade::write`], which
//! takes no lock until a `101` has passed. After a
//! `101 Switching Protocols` response, once hyper has flushed its head (hyper
//! flushes it before it hands the socket to the app), every byte written is the
//! app's. For a WebSocket these are frames, and the server's frames are not masked
//! (RFC 6455 §5.1), so their heads are read as they pass and the payload left is
//! counted. [`Upgrade::close`] takes the lock that every write holds while it
//! writes: the Close frame goes out between two frames or not at all.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;

use http::{header, HeaderMap, Response, StatusCode};
use socket2::Socket;
use tokio::net::TcpStream;

use crate::shutdown::KeepStreamOpen;

/// A Close frame with code 1012, service restart (RFC 6455 §5.5.1 and §7.4.1):
/// FIN and opcode 0x8, an unmasked payload of 2 bytes, the code big-endian.
const CLOSE_RESTART: [u8; 4] = [0x88, 0x02, 0x03, 0xF4];

/// The opcode of a Close frame (RFC 6455 §5.2).
const OPCODE_CLOSE: u8 = 0x8;

/// The longest frame head: 2 bytes, an 8-byte extended length, a 4-byte mask key.
const MAX_HEAD: usize = 14;

/// Whether `headers` (of a request, or of its `101` answer) name a WebSocket:
/// `websocket` among the tokens of their `Upgrade` header (RFC 6455 §4.2.1 and
/// §4.2.2).
fn is_websocket(headers: &HeaderMap) -> bool {
    let values = headers.get_all(header::UPGRADE).iter();
    values
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
}

/// One connection's writes as far as the server's close of an upgrade needs them;
/// shared by the socket and the connection's task.
#[derive(Debug, Default)]
pub(super) struct Upgrade {
    state: Mutex<State>,
    /// A `101` passed and the state left [`State::Http`]: until then, writes and
    /// flushes go straight to the socket without the lock (nothing can close a
    /// connection that was not upgraded).
    switched: AtomicBool,
}

#[derive(Debug, Default)]
enum State {
    /// HTTP: hyper writes.
    #[default]
    Http,
    /// A `101 Switching Protocols` passed; hyper writes its head until it flushes.
    Switching { websocket: bool },
    /// Upgraded: the app writes, and the server may close it; `frames` for a
    /// WebSocket. `socket` is a second descriptor of the connection's socket.
    Upgraded {
        socket: Socket,
        frames: Option<Frames>,
    },
    /// Upgraded, and left to the app until the drain deadline: it answered with
    /// [`KeepStreamOpen`], or no second descriptor could be had to close it with.
    Left,
    /// Closed by the server: the app's writes fail.
    Closed,
}

/// How [`Upgrade::close`] closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closing {
    /// A Close frame with 1012, then the end of the connection.
    Restart,
    /// The app had sent its Close frame: only the end of the connection.
    AfterTheAppsClose,
    /// No Close frame: the app was in the middle of one of its frames.
    MidFrame,
    /// No Close frame: the socket's send buffer was full.
    BufferFull,
    /// No Close frame: the upgrade was not a WebSocket.
    NotAWebSocket,
    /// No whole Close frame: the send failed or took only part of it.
    SendFailed,
}

impl fmt::Display for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Restart => "with a Close frame 1012 (service restart)",
            Self::AfterTheAppsClose => "after the app's Close frame",
            Self::MidFrame => "without a Close frame: the app was in the middle of a frame",
            Self::BufferFull => "without a Close frame: the send buffer was full",
            Self::NotAWebSocket => "without a Close frame: not a WebSocket",
            Self::SendFailed => "without a whole Close frame: the send failed",
        })
    }
}

impl Upgrade {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Note `response`, the answer to a request: a `101` switches the connection
    /// to the app, a WebSocket when the answer's `Upgrade` header names one.
    pub(super) fn responded<B>(&self, response: &Response<B>) {
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let mut state = self.lock();
        if let State::Http = *state {
            *state = match response.extensions().get::<KeepStreamOpen>() {
                Some(_) => State::Left,
                None => State::Switching {
                    websocket: is_websocket(response.headers()),
                },
            };
            self.switched.store(true, Ordering::Release);
        }
    }

    /// Write `bufs`, or the start of them, with `write`; refused once the server
    /// has closed the connection.
    pub(super) fn write(
        &self,
        bufs: &[IoSlice<'_>],
        write: impl FnOnce() -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        if !self.switched.load(Ordering::Acquire) {
            return write();
        }
        let mut state = self.lock();
        if let State::Closed = *state {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let written = write();
        if let (
            State::Upgraded {
                frames: Some(frames),
                ..
            },
            Poll::Ready(Ok(n)),
        ) = (&mut *state, &written)
        {
            let mut left = *n;
            for buf in bufs {
                let part = &buf[..left.min(buf.len())];
                frames.wrote(part);
                left -= part.len();
            }
        }
        written
    }

    /// `stream` has flushed: after a `101` response, its head is out, and what
    /// comes next is the app's.
    pub(super) fn flushed(&self, stream: &TcpStream) {
        if !self.switched.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        let State::Switching { websocket } = *state else {
            return;
        };
        *state = match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => State::Upgraded {
                socket: Socket::from(fd),
                frames: websocket.then(Frames::default),
            },
            Err(err) => {
                tracing::warn!(
                    "no descriptor to close an upgraded connection with ({err}): \
                     the shutdown waits for it until the drain deadline"
                );
                State::Left
            }
        };
    }

    /// Whether the server has closed the connection.
    pub(super) fn is_closed(&self) -> bool {
        matches!(*self.lock(), State::Closed)
    }

    /// Whether [`Upgrade::close`] can close the connection.
    pub(super) fn closable(&self) -> bool {
        matches!(*self.lock(), State::Upgraded { .. })
    }

    /// Close an upgraded connection the app still holds: send a Close frame with
    /// 1012 if it is a WebSocket between two frames, whose app has not sent its own
    /// Close, and whose send buffer has room; then shut the socket down both ways
    /// (the peer gets a FIN, the app's reads end) and refuse the app's writes.
    /// `None` if it is not closable.
    pub(super) fn close(&self) -> Option<Closing> {
        let mut state = self.lock();
        let State::Upgraded { socket, frames } = &*state else {
            return None;
        };
        let closing = match frames {
            None => Closing::NotAWebSocket,
            Some(frames) if frames.close_sent => Closing::AfterTheAppsClose,
            Some(frames) if !frames.at_boundary() => Closing::MidFrame,
            // The socket is non-blocking (tokio's), and so is this descriptor of it.
            Some(_) => match socket.send(&CLOSE_RESTART) {
                Ok(n) if n == CLOSE_RESTART.len() => Closing::Restart,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Closing::BufferFull,
                Ok(_) | Err(_) => Closing::SendFailed,
            },
        };
        if let Err(err) = socket.shutdown(Shutdown::Both) {
            tracing::debug!("shutting down an upgraded connection: {err}");
        }
        *state = State::Closed;
        Some(closing)
    }
}

/// Where the server's side of a WebSocket is among its frames (RFC 6455 §5.2).
#[derive(Debug, Default)]
struct Frames {
    /// The head of the frame being written, as far as it has been written.
    head: [u8; MAX_HEAD],
    head_len: usize,
    /// Payload bytes of the current frame still to be written.
    payload_left: u64,
    /// A Close frame has been written: the app has begun the closing handshake.
    close_sent: bool,
}

impl Frames {
    /// Between two frames.
    fn at_boundary(&self) -> bool {
        self.head_len == 0 && self.payload_left == 0
    }

    /// `bytes` were written.
    fn wrote(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .map_or(bytes.len(), |left| left.min(bytes.len()));
                self.payload_left -= skip as u64;
                bytes = &bytes[skip..];
                continue;
            }
            self.head[self.head_len] = bytes[0];
            self.head_len += 1;
            bytes = &bytes[1..];
            if let Some(payload) = payload_len(&self.head[..self.head_len]) {
                self.close_sent |= self.head[0] & 0x0F == OPCODE_CLOSE;
                self.payload_left = payload;
                self.head_len = 0;
            }
        }
    }
}

/// The payload length of the frame that `head` begins, once `head` is whole: 7
/// bits, or 126 and 16 bits, or 127 and 64 bits, then a mask key if the mask bit
/// is set.
fn payload_len(head: &[u8]) -> Option<u64> {
    let [_, second, rest @ ..] = head else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let (len, extended) = match second & 0x7F {
        126 => (None, 2),
        127 => (None, 8),
        len => (Some(u64::from(len)), 0),
    };
    if rest.len() < extended + if masked { 4 } else { 0 } {
        return None;
    }
    len.or_else(|| match extended {
        2 => Some(u64::from(u16::from_be_bytes([rest[0], rest[1]]))),
        _ => rest[..8].try_into().ok().map(u64::from_be_bytes),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A frame with `opcode` and a payload of `len` bytes, its length in the
    /// shortest form, masked or not.
    fn frame(opcode: u8, len: usize, masked: bool) -> Vec<u8> {
        let mask_bit = if masked { 0x80 } else { 0 };
        let mut frame = vec![0x80 | opcode];
        match len {
            0..=125 => frame.push(mask_bit | len as u8),
            126..=0xFFFF => {
                frame.push(mask_bit | 126);
                frame.extend((len as u16).to_be_bytes());
            }
            _ => {
                frame.push(mask_bit | 127);
                frame.extend((len as u64).to_be_bytes());
            }
        }
        if masked {
            frame.extend([1, 2, 3, 4]);
        }
        frame.extend(vec![0x88; len]);
        frame
    }

    #[test]
    fn the_close_frame_is_a_close_with_1012() {
        let mut frames = Frames::default();
        frames.wrote(&CLOSE_RESTART);
        assert!(frames.at_boundary() && frames.close_sent);
        assert_eq!(&CLOSE_RESTART[2..], &1012u16.to_be_bytes());
    }

    #[test]
    fn websockets_are_told_by_their_upgrade_tokens() {
        for (upgrade, websocket) in [
            (Some("websocket"), true),
            (Some("WebSocket"), true),
            (Some("h2c, websocket"), true),
            (Some("h2c"), false),
            (Some("websockets"), false),
            (None, false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(upgrade) = upgrade {
                headers.insert(header::UPGRADE, upgrade.parse().expect("a header value"));
            }
            assert_eq!(is_websocket(&headers), websocket, "{upgrade:?}");
        }
    }

    proptest! {
        /// Any frames, written in any pieces: between two frames exactly where one
        /// ended, and a Close noted once its head is through.
        #[test]
        fn any_split_of_any_frames_finds_their_boundaries(
            frames in prop::collection::vec(
                (
                    prop::sample::select(vec![0x0, 0x1, 0x2, 0x8, 0x9, 0xA]),
                    prop_oneof![0..130usize, Just(0xFFFF), Just(0x1_0000), 0x1_0000..0x1_0100usize],
                    any::<bool>(),
                ),
                0..6,
            ),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            let mut ends = vec![0];
            let mut close_head_ends = Vec::new();
            for &(opcode, len, masked) in &frames {
                let frame = frame(opcode, len, masked);
                if opcode == OPCODE_CLOSE {
                    close_head_ends.push(bytes.len() + frame.len() - len);
                }
                bytes.extend(frame);
                ends.push(bytes.len());
            }
            let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut tracked = Frames::default();
            let mut at = 0;
            for cut in cuts {
                tracked.wrote(&bytes[at..cut]);
                at = cut;
                prop_assert_eq!(tracked.at_boundary(), ends.contains(&at), "at byte {}", at);
                let closed = close_head_ends.iter().any(|&end| end <= at);
                prop_assert_eq!(tracked.close_sent, closed, "at byte {}", at);
            }
        }
    }
}
