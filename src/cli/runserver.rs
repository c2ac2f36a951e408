//! `ferrochat runserver [ADDR:PORT | unix:PATH] [--socket-mode MODE] [--fd N]`: the address
//! forms Django's runserver accepts (`django/core/management/commands/runserver.py
//! naiveip_re`), and Daphne's Unix socket (`daphne -u`) and inherited socket (`daphne --fd`),
//! then the server.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use clap::Args;

use super::CommandError;
use crate::config::Settings;
use crate::web::listen::ListenOn;

/// `runserver`'s defaults.
const DEFAULT_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;
const DEFAULT_ADDR_IPV6: Ipv6Addr = Ipv6Addr::LOCALHOST;
const DEFAULT_PORT: u16 = 8000;

#[derive(Debug, Clone, Args)]
pub struct RunserverArgs {
    /// Optional port number, or ipaddr:port (e.g. 8000, 0.0.0.0:8000, [::1]:8000,
    /// localhost:8000), or unix:PATH for a Unix socket (as daphne -u).
    #[arg(value_name = "ADDRPORT")]
    pub addrport: Option<String>,
    /// The Unix socket file's mode, in octal (e.g. 660); default: as the umask leaves it.
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    pub socket_mode: Option<u32>,
    /// Serve on this already listening socket (TCP or Unix) instead of binding, as daphne
    /// --fd: systemd socket activation passes its sockets from descriptor 3.
    #[arg(long, value_name = "N", conflicts_with_all = ["addrport", "use_ipv6"])]
    pub fd: Option<i32>,
    /// Tells ferrochat to use an IPv6 address.
    #[arg(short = '6', long = "ipv6")]
    pub use_ipv6: bool,
    /// Accepted for compatibility with manage.py; ferrochat never reloads.
    #[arg(long)]
    pub noreload: bool,
    /// Accepted for compatibility with manage.py; ferrochat always serves concurrently.
    #[arg(long)]
    pub nothreading: bool,
    /// Accepted for compatibility with manage.py; startup checks always run.
    #[arg(long)]
    pub skip_checks: bool,
}

/// Where to listen, before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Ip(SocketAddr),
    /// A host name (Django's `fqdn` branch), resolved at startup.
    Host(String, u16),
}

/// `Command.handle`'s parsing of `addrport`.
pub fn parse_addrport(addrport: Option<&str>, use_ipv6: bool) -> Result<Listen, CommandError> {
    let default_ip = |port| {
        let ip: IpAddr = if use_ipv6 {
            DEFAULT_ADDR_IPV6.into()
        } else {
            DEFAULT_ADDR.into()
        };
        Listen::Ip(SocketAddr::new(ip, port))
    };
    let Some(raw) = addrport.filter(|s| !s.is_empty()) else {
        return Ok(default_ip(DEFAULT_PORT));
    };
    let not_valid = || {
        CommandError::new(format!(
            "\"{raw}\" is not a valid port number or address:port pair."
        ))
    };
    // `(?:addr:)?port` with `port = \d+`: the address is everything before the last colon.
    let (addr, port) = match raw.rsplit_once(':') {
        Some((addr, port)) => (Some(addr), port),
        None => (None, raw),
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_valid());
    }
    let port: u16 = port
        .parse()
        .map_err(|_| CommandError::new(format!("'{port}' is not a valid port number.")))?;
    let Some(addr) = addr else {
        return Ok(default_ip(port));
    };
    if let Some(inner) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        // `\[[a-fA-F0-9:]+\]`
        if inner.is_empty() || !inner.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(not_valid());
        }
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| CommandError::new(format!("\"{inner}\" is not a valid IPv6 address.")))?;
        return Ok(Listen::Ip(SocketAddr::new(ip.into(), port)));
    }
    if is_ipv4_shape(addr) {
        if use_ipv6 {
            return Err(CommandError::new(format!(
                "\"{addr}\" is not a valid IPv6 address."
            )));
        }
        let ip: Ipv4Addr = addr
            .parse()
            .map_err(|_| CommandError::new(format!("\"{addr}\" is not a valid IPv4 address.")))?;
        return Ok(Listen::Ip(SocketAddr::new(ip.into(), port)));
    }
    // `[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*`
    let fqdn = addr.split('.').all(|label| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if fqdn {
        Ok(Listen::Host(addr.to_owned(), port))
    } else {
        Err(not_valid())
    }
}

/// `\d{1,3}(?:\.\d{1,3}){3}`.
fn is_ipv4_shape(addr: &str) -> bool {
    let parts: Vec<&str> = addr.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Resolves a host name the way the server would bind it (IPv6 first only with `--ipv6`).
fn resolve(listen: Listen, use_ipv6: bool) -> Result<SocketAddr, CommandError> {
    match listen {
        Listen::Ip(addr) => Ok(addr),
        Listen::Host(host, port) => {
            let addrs: Vec<SocketAddr> = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(|e| CommandError::Error(format!("cannot resolve {host:?}: {e}")))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv6() == use_ipv6)
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| CommandError::Error(format!("{host:?} has no address")))
        }
    }
}

/// `--socket-mode`: an octal file mode.
fn parse_mode(raw: &str) -> Result<u32, String> {
    u32::from_str_radix(raw.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("\"{raw}\" is not an octal file mode (e.g. 660)"))
}

/// Where to listen: `--fd`, `unix:PATH`, or a Django address.
fn listen_on(args: &RunserverArgs) -> Result<ListenOn, CommandError> {
    if let Some(fd) = args.fd {
        if fd < 0 {
            return Err(CommandError::new(format!(
                "\"{fd}\" is not a file descriptor."
            )));
        }
        return Ok(ListenOn::Fd(fd));
    }
    if let Some(path) = args
        .addrport
        .as_deref()
        .and_then(|a| a.strip_prefix("unix:"))
    {
        if path.is_empty() {
            return Err(CommandError::new(
                "unix: needs a socket path (unix:/run/ferrochat.sock).",
            ));
        }
        return Ok(ListenOn::Unix {
            path: path.into(),
            mode: args.socket_mode,
        });
    }
    if args.socket_mode.is_some() {
        return Err(CommandError::new(
            "--socket-mode applies to a unix:PATH address only.",
        ));
    }
    let listen = parse_addrport(args.addrport.as_deref(), args.use_ipv6)?;
    Ok(ListenOn::Tcp(resolve(listen, args.use_ipv6)?))
}

/// Parses the address, then serves until SIGTERM or Ctrl-C.
pub fn run(settings: Settings, args: RunserverArgs) -> Result<(), CommandError> {
    if !settings.debug && settings.allowed_hosts.is_empty() {
        return Err(CommandError::new(
            "You must set settings.ALLOWED_HOSTS if DEBUG is False.",
        ));
    }
    let on = listen_on(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::Error(format!("cannot start the runtime: {e}")))?;
    let admin = crate::admin::router().map_err(|e| CommandError::Error(e.to_string()))?;
    runtime
        .block_on(crate::web::server::run(settings, on, admin))
        // Django's runserver reports startup failures as "Error: …" and exits 1.
        .map_err(|e| CommandError::Error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Listen {
        Listen::Ip(s.parse().expect("socket address"))
    }

    #[test]
    fn django_forms() {
        assert_eq!(parse_addrport(None, false).ok(), Some(ip("127.0.0.1:8000")));
        assert_eq!(parse_addrport(None, true).ok(), Some(ip("[::1]:8000")));
        assert_eq!(
            parse_addrport(Some("8001"), false).ok(),
            Some(ip("127.0.0.1:8001"))
        );
        assert_eq!(
            parse_addrport(Some("0.0.0.0:8000"), false).ok(),
            Some(ip("0.0.0.0:8000"))
        );
        assert_eq!(
            parse_addrport(Some("[::1]:9000"), false).ok(),
            Some(ip("[::1]:9000"))
        );
        assert_eq!(
            parse_addrport(Some("[::]:9000"), false).ok(),
            Some(ip("[::]:9000"))
        );
        assert_eq!(
            parse_addrport(Some("localhost:8000"), false).ok(),
            Some(Listen::Host("localhost".into(), 8000))
        );
        assert_eq!(
            parse_addrport(Some("chat.example.com:80"), false).ok(),
            Some(Listen::Host("chat.example.com".into(), 80))
        );
    }

    #[test]
    fn clear_errors() {
        let msg = |s: &str, v6: bool| parse_addrport(Some(s), v6).expect_err(s).to_string();
        assert_eq!(
            msg("abc:", false),
            "\"abc:\" is not a valid port number or address:port pair."
        );
        assert_eq!(
            msg("x y:80", false),
            "\"x y:80\" is not a valid port number or address:port pair."
        );
        assert_eq!(
            msg("::1:8000", false),
            "\"::1:8000\" is not a valid port number or address:port pair."
        );
        assert_eq!(msg("70000", false), "'70000' is not a valid port number.");
        assert_eq!(
            msg("999.1.1.1:80", false),
            "\"999.1.1.1\" is not a valid IPv4 address."
        );
        assert_eq!(
            msg("1.2.3.4:80", true),
            "\"1.2.3.4\" is not a valid IPv6 address."
        );
        assert_eq!(
            msg("[:::]:80", false),
            "\":::\" is not a valid IPv6 address."
        );
    }

    #[test]
    fn unix_sockets_and_inherited_descriptors() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from(
                ["ferrochat", "runserver"].iter().chain(args).copied(),
            )
            .expect("parse");
            let crate::cli::Command::Runserver(args) = cli.command else {
                panic!("runserver")
            };
            listen_on(&args)
        };
        assert_eq!(
            parse(&["unix:/run/fc.sock", "--socket-mode", "660"]).ok(),
            Some(ListenOn::Unix {
                path: "/run/fc.sock".into(),
                mode: Some(0o660)
            })
        );
        assert_eq!(parse(&["--fd", "3"]).ok(), Some(ListenOn::Fd(3)));
        assert!(parse(&["8000", "--socket-mode", "660"]).is_err());
        assert!(parse(&["unix:"]).is_err());
        assert!(
            crate::cli::Cli::try_parse_from(["ferrochat", "runserver", "--socket-mode", "999"])
                .is_err()
        );
        assert!(
            crate::cli::Cli::try_parse_from(["ferrochat", "runserver", "8000", "--fd", "3"])
                .is_err()
        );
    }

    #[test]
    fn localhost_resolves() {
        let addr = resolve(Listen::Host("localhost".into(), 8000), false).expect("resolve");
        assert!(addr.ip().is_loopback());
        assert_eq!(addr.port(), 8000);
    }
}
