//! HTTP/1.1 responses read off the wire, for the tests' and the benchmarks' plain
//! TCP clients (RFC 9112: status line, headers, a chunked or sized body).
#![allow(dead_code, unreachable_pub)]

use std::io;

use memchr::memmem;

/// A response read off the wire, its body complete.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Parse a whole response; `Err` when the head or the body is incomplete. The
/// answer to a `HEAD` request (`to_head`) has no body, whatever its headers say.
pub fn parse(bytes: &[u8], to_head: bool) -> io::Result<Response> {
    let split = memmem::find(bytes, b"\r\n\r\n").ok_or_else(|| invalid("no end of head"))?;
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("no status"))?;
    let mut response = Response {
        status,
        head,
        body: Vec::new(),
    };
    let raw = &bytes[split + 4..];
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = response
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    response.body = if to_head {
        Vec::new()
    } else if chunked {
        dechunk(raw).ok_or_else(|| invalid("incomplete chunked body"))?
    } else if let Some(len) = length {
        raw.get(..len)
            .ok_or_else(|| invalid("body shorter than Content-Length"))?
            .to_vec()
    } else {
        raw.to_vec()
    };
    Ok(response)
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = memmem::find(raw, b"\r\n")?;
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).ok()?.trim(), 16).ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
