//! `TCP_NODELAY` on the driver's Bolt connections.
//!
//! neo4rs opens its sockets with Nagle's algorithm on and writes a large request in
//! pieces (a 2-byte chunk header, then up to 64 KB of chunk). Nagle holds back the last
//! partial segment of a request until the server has acknowledged what is in flight,
//! and the server delays that acknowledgement by up to 40 ms (Linux's delayed ACK). So
//! most statements with a sizeable parameter list (every write of a batch) waited up to
//! 40 ms before the server had all of it: per 5,000-record chunk, artists went from
//! 9,222–9,389 to 12,275–12,311 records/s with the option set, a 10 % update from
//! 10,901–11,783 to 19,533–20,363 (ARCHITECTURE.md, "discogs-sink-neo4j inside").
//!
//! The driver has no setting for it and does not expose its sockets, so [`NoDelay`] finds
//! them: on Linux it lists the process's descriptors in `/proc/self/fd`, takes a
//! duplicate of each socket not seen before (`pidfd_getfd` on the process's own pidfd,
//! which needs no `unsafe`), and sets the option on those connected to the Bolt port (a
//! duplicate shares the socket, so the option applies to the driver's descriptor). On
//! other systems, or where the kernel refuses (`pidfd_getfd` needs Linux 5.6 and may be
//! blocked by a seccomp profile), it does nothing but log once.

use std::collections::HashSet;
use std::sync::Mutex;

/// Sets `TCP_NODELAY` on the process's TCP sockets connected to one port (the Bolt
/// server's), each socket once. Cheap to call before every transaction: a call costs a
/// listing of `/proc/self/fd` and work only for sockets it has not seen.
#[derive(Debug)]
pub(crate) struct NoDelay {
    port: u16,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Socket inodes already handled (set, or not to the port); pruned to the open ones.
    seen: HashSet<u64>,
    /// Set after the first failure that will not go away (no `/proc`, no `pidfd_getfd`).
    disabled: bool,
}

impl NoDelay {
    /// For sockets connected to `port`.
    pub(crate) fn new(port: u16) -> Self {
        Self {
            port,
            state: Mutex::new(State::default()),
        }
    }

    /// For the port of a Bolt URI (`bolt://host:port`, 7687 when the URI names none).
    pub(crate) fn for_uri(uri: &str) -> Self {
        Self::new(bolt_port(uri))
    }

    /// Sets the option on the sockets to the port that it has not seen yet. Returns how
    /// many it set in this call.
    pub(crate) fn apply(&self) -> usize {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.disabled {
            return 0;
        }
        match scan(self.port, &mut state.seen) {
            Ok(set) => set,
            Err(e) => {
                state.disabled = true;
                tracing::info!(
                    error = %e,
                    "Cannot set TCP_NODELAY on the Neo4j driver's sockets; large writes may \
                     wait up to 40 ms each for the server's delayed acknowledgement."
                );
                0
            }
        }
    }
}

/// The port of a Bolt or Neo4j URI; 7687 when it names none.
fn bolt_port(uri: &str) -> u16 {
    const DEFAULT: u16 = 7687;
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    match host_port.rsplit_once(':') {
        // `[::1]` alone: the colon belongs to the address.
        Some((host, port)) if !port.contains(']') && !host.is_empty() => {
            port.parse().unwrap_or(DEFAULT)
        }
        _ => DEFAULT,
    }
}

/// The inode of a `/proc/self/fd` link target `socket:[12345]`.
fn socket_inode(target: &std::path::Path) -> Option<u64> {
    target
        .to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(target_os = "linux")]
fn scan(port: u16, seen: &mut HashSet<u64>) -> std::io::Result<usize> {
    use rustix::process::{getpid, pidfd_getfd, pidfd_open, PidfdFlags, PidfdGetfdFlags};
    use std::os::fd::AsFd;

    let pidfd = pidfd_open(getpid(), PidfdFlags::empty())?;
    let mut open = HashSet::new();
    let mut set = 0;
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        // A descriptor closed since the listing has no link any more: skip it.
        let Some(inode) = std::fs::read_link(entry.path())
            .ok()
            .and_then(|t| socket_inode(&t))
        else {
            continue;
        };
        open.insert(inode);
        if seen.contains(&inode) {
            continue;
        }
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let duplicate = match pidfd_getfd(pidfd.as_fd(), fd, PidfdGetfdFlags::empty()) {
            Ok(duplicate) => duplicate,
            // Closed in the meantime.
            Err(rustix::io::Errno::BADF) => continue,
            Err(e) => return Err(e.into()),
        };
        // Any socket converts; `peer_addr` fails for those that are not TCP over IP.
        let socket = std::net::TcpStream::from(duplicate);
        match socket.peer_addr() {
            Ok(peer) if peer.port() == port => {
                socket.set_nodelay(true)?;
                set += 1;
            }
            // Still connecting: look again next time.
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => continue,
            // Another peer, a listener, a Unix or UDP socket: never ours.
            _ => {}
        }
        seen.insert(inode);
    }
    seen.retain(|inode| open.contains(inode));
    Ok(set)
}

#[cfg(not(target_os = "linux"))]
fn scan(_port: u16, _seen: &mut HashSet<u64>) -> std::io::Result<usize> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "finding the driver's sockets needs Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn ports_of_uris() {
        assert_eq!(bolt_port("bolt://127.0.0.1:7688"), 7688);
        assert_eq!(bolt_port("neo4j+s://user:pw@db.example:17687/neo4j"), 17687);
        assert_eq!(bolt_port("bolt://[::1]:7699"), 7699);
        assert_eq!(bolt_port("bolt://[::1]"), 7687);
        assert_eq!(bolt_port("bolt://localhost"), 7687);
        assert_eq!(bolt_port("bolt://localhost:notaport"), 7687);
    }

    #[test]
    fn inodes_of_links() {
        assert_eq!(socket_inode("socket:[4242]".as_ref()), Some(4242));
        assert_eq!(socket_inode("pipe:[4242]".as_ref()), None);
        assert_eq!(socket_inode("/dev/null".as_ref()), None);
    }

    /// Real sockets: a connection to the port gets the option, one to another port does
    /// not, and a second call finds nothing new.
    #[cfg(target_os = "linux")]
    #[test]
    fn sets_nodelay_on_connections_to_the_port_only() {
        let bolt = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let to_bolt = TcpStream::connect(bolt.local_addr().unwrap()).unwrap();
        let to_other = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        assert!(!to_bolt.nodelay().unwrap(), "sockets start with Nagle on");

        let nodelay = NoDelay::new(bolt.local_addr().unwrap().port());
        assert_eq!(nodelay.apply(), 1);
        assert!(to_bolt.nodelay().unwrap());
        assert!(!to_other.nodelay().unwrap());
        assert_eq!(nodelay.apply(), 0, "each socket is handled once");

        let again = TcpStream::connect(bolt.local_addr().unwrap()).unwrap();
        assert_eq!(nodelay.apply(), 1);
        assert!(again.nodelay().unwrap());
    }
}
