//! Free ports, and a listening socket made the way watchexec 2.8 and systemfd 0.4
//! make it, passed on through `LISTEN_FDS` (socket activation, sd_listen_fds(3)).

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Command;

use socket2::{Domain, Protocol, Socket, Type};

/// A loopback port that was free a moment ago (bound with port 0, then closed).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding 127.0.0.1:0 to find a free port")
        .port()
}

/// A socket bound to a free loopback port, listening with a backlog of 1 (as
/// watchexec's), inheritable (no close-on-exec).
#[derive(Debug)]
pub struct PassedSocket {
    socket: Socket,
    pub addr: SocketAddr,
}

impl PassedSocket {
    #[allow(clippy::new_without_default)] // each call binds a new socket
    pub fn new() -> Self {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        socket.bind(&any_port.into()).expect("bind");
        socket.listen(1).expect("listen");
        socket.set_cloexec(false).expect("clear close-on-exec");
        let addr = socket.local_addr().expect("local address");
        let addr = addr.as_socket().expect("an IP socket");
        Self { socket, addr }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The descriptor number to pass in `LISTEN_FDS_FIRST_FD`.
    fn fd(&self) -> i32 {
        self.socket.as_raw_fd()
    }

    /// Listens with another `backlog` (Linux sets the backlog of a socket that
    /// already listens): a benchmark's many connections at once.
    pub fn listen(&self, backlog: i32) {
        self.socket.listen(backlog).expect("listen");
    }

    /// Passes this socket to `command` as watchexec does: `LISTEN_FDS=1`,
    /// `LISTEN_FDS_FIRST_FD`, and no `LISTEN_PID`.
    pub fn pass_to<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env("LISTEN_FDS", "1")
            .env("LISTEN_FDS_FIRST_FD", self.fd().to_string())
            .env_remove("LISTEN_PID")
    }
}
