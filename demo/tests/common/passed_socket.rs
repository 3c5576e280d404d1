//! A listening socket made the way watchexec 2.8 and systemfd 0.4 make it, for
//! tests that pass it on through `LISTEN_FDS`. Shared by the library's tests
//! (`demo/tests/common/mod.rs`) and the runner's (`cli/tests/support/mod.rs`).

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

/// A socket bound to a free loopback port, listening with a backlog of 1,
/// inheritable (no close-on-exec). Each test suite adds how it spawns its binary.
pub struct PassedSocket {
    socket: Socket,
    pub addr: SocketAddr,
}

impl PassedSocket {
    pub fn new() -> Self {
        let (socket, addr) = listening_socket();
        Self { socket, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The descriptor number to pass in `LISTEN_FDS_FIRST_FD`.
    pub fn std_fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }
}

fn listening_socket() -> (Socket, SocketAddr) {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    socket.set_reuse_address(true).expect("SO_REUSEADDR");
    let any_port: SocketAddr = "127.0.0.1:0".parse().expect("address");
    socket.bind(&any_port.into()).expect("bind");
    socket.listen(1).expect("listen");
    socket.set_cloexec(false).expect("clear close-on-exec");
    let addr = socket
        .local_addr()
        .expect("local address")
        .as_socket()
        .expect("an IP socket");
    (socket, addr)
}
