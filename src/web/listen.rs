//! Where `runserver` listens, with Daphne's options: a TCP address, a Unix socket
//! (`unix:/path`, as `daphne -u`, its file mode set by `--socket-mode`), or a listening socket
//! inherited from systemd or a supervisor (`--fd N`, as `daphne --fd`; TCP or Unix).

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use salvo::conn::tcp::{TcpAcceptor, TcpCoupler};
use salvo::conn::{Accepted, Acceptor, ConnCtrl, Holding, StraightStream};
use salvo::fuse::{ArcFusePolicy, FuseAction, FuseInfo, TransProto};
use salvo::http::Version;
use salvo::http::uri::Scheme;
use tokio::net::{UnixListener, UnixStream};

/// What to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenOn {
    Tcp(SocketAddr),
    /// A socket file, created (a stale one from a dead server replaced) with `mode` if given.
    Unix {
        path: PathBuf,
        mode: Option<u32>,
    },
    /// An already listening socket on this descriptor (systemd's `LISTEN_FDS` start at 3).
    Fd(RawFd),
}

/// A bound listener of either family.
pub enum Bound {
    Tcp(TcpAcceptor),
    Unix(UnixAcceptor),
}

impl Bound {
    /// `http://127.0.0.1:8000/` or `unix:/run/ferrochat.sock`, for the startup banner.
    pub fn describe(&self) -> String {
        match self {
            Bound::Tcp(a) => a
                .holdings()
                .first()
                .and_then(|h| h.local_addr.clone().into_std())
                .map_or_else(|| "http://?/".to_owned(), |a| format!("http://{a}/")),
            Bound::Unix(a) => format!("unix:{}", a.path.display()),
        }
    }

    /// The TCP address, when it is one (the default node id derives from it).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match self {
            Bound::Tcp(a) => a
                .holdings()
                .first()
                .and_then(|h| h.local_addr.clone().into_std()),
            Bound::Unix(_) => None,
        }
    }
}

/// Binds (or adopts) the listener.
pub async fn bind(on: &ListenOn) -> io::Result<Bound> {
    match on {
        ListenOn::Tcp(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            Ok(Bound::Tcp(TcpAcceptor::try_from(listener)?))
        }
        ListenOn::Unix { path, mode } => {
            remove_stale_socket(path).await?;
            let listener = UnixListener::bind(path)?;
            if let Some(mode) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
            }
            Ok(Bound::Unix(UnixAcceptor::new(listener, path.clone())))
        }
        ListenOn::Fd(fd) => adopt(*fd),
    }
}

/// A socket file nobody listens on (a crashed server's) is removed; a live one is an error,
/// as a TCP port in use is.
async fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("{} is in use by another server", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

/// Takes over descriptor `fd`, which must be a listening stream socket.
fn adopt(fd: RawFd) -> io::Result<Bound> {
    let family = socket_family(fd)?;
    if family == libc::AF_UNIX {
        // SAFETY: the descriptor was handed to this process to own (systemd, `--fd`), and
        // `socket_family` proved it is an open socket.
        let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true)?;
        let path = std_listener
            .local_addr()?
            .as_pathname()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("fd{fd}")));
        let listener = UnixListener::from_std(std_listener)?;
        Ok(Bound::Unix(UnixAcceptor::new(listener, path)))
    } else if family == libc::AF_INET || family == libc::AF_INET6 {
        // SAFETY: as above.
        let std_listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        Ok(Bound::Tcp(TcpAcceptor::try_from(listener)?))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a TCP or Unix socket"),
        ))
    }
}

/// The address family of the socket on `fd` (`getsockname`), or why it is not one.
fn socket_family(fd: RawFd) -> io::Result<i32> {
    // SAFETY: an all-zero sockaddr_storage is a valid value; getsockname writes at most `len`
    // bytes into it and reads nothing else.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc =
        unsafe { libc::getsockname(fd, (&raw mut addr).cast::<libc::sockaddr>(), &raw mut len) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("descriptor {fd} is not a listening socket: {e}"),
        ));
    }
    Ok(i32::from(addr.ss_family))
}

/// salvo's acceptor for a Unix listening socket that it did not bind itself (salvo's own
/// `UnixListener` only binds a path): accepts as salvo's does, fuse policy included.
pub struct UnixAcceptor {
    inner: UnixListener,
    /// The socket file (or `fd<N>` for an unnamed inherited socket).
    path: PathBuf,
    holdings: Vec<Holding>,
}

impl UnixAcceptor {
    fn new(inner: UnixListener, path: PathBuf) -> UnixAcceptor {
        let local_addr = inner
            .local_addr()
            .map_or(salvo::conn::SocketAddr::Unknown, Into::into);
        UnixAcceptor {
            inner,
            path,
            holdings: vec![Holding {
                local_addr,
                http_versions: vec![Version::HTTP_11],
                http_scheme: Scheme::HTTP,
            }],
        }
    }
}

impl Acceptor for UnixAcceptor {
    type Coupler = TcpCoupler<Self::Stream>;
    type Stream = StraightStream<UnixStream>;

    fn holdings(&self) -> &[Holding] {
        &self.holdings
    }

    async fn accept(
        &mut self,
        fuse_policy: Option<ArcFusePolicy>,
    ) -> io::Result<Accepted<Self::Coupler, Self::Stream>> {
        loop {
            // tokio's accept is cancel-safe: a connection is never taken and then dropped.
            let (conn, remote) = self.inner.accept().await?;
            let remote_addr = Arc::new(remote);
            let local_addr = self.holdings[0].local_addr.clone();
            let conn_ctrl = ConnCtrl::new();
            let (fuse_config, observer) = match &fuse_policy {
                Some(policy) => {
                    let info = FuseInfo {
                        trans_proto: TransProto::Tcp,
                        remote_addr: remote_addr.clone().into(),
                        local_addr: local_addr.clone(),
                    };
                    match policy.decide(&info).await {
                        FuseAction::Accept(config) => {
                            (Some(config), policy.observe(&info, &conn_ctrl))
                        }
                        FuseAction::Reject => continue,
                    }
                }
                None => (None, None),
            };
            return Ok(Accepted {
                coupler: TcpCoupler::new(),
                stream: StraightStream::new(conn, fuse_config, conn_ctrl.clone(), observer),
                fuse_config,
                conn_ctrl,
                local_addr,
                remote_addr: remote_addr.into(),
                http_scheme: Scheme::HTTP,
            });
        }
    }
}
