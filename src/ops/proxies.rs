//! `FERROCHAT_TRUSTED_PROXIES`: the peers whose `X-Forwarded-For` (and `X-Forwarded-Proto`)
//! are believed, as Daphne's `--proxy-headers` with its trusted hosts. The client address is
//! the right-most `X-Forwarded-For` entry that is not itself a trusted proxy, so a client cannot
//! pass off an address by sending the header itself.

use std::net::IpAddr;

use ipnet::IpNet;

use super::settings::OpsConfigError;

pub const TRUSTED_PROXIES_VAR: &str = "FERROCHAT_TRUSTED_PROXIES";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// A comma list of CIDRs or single addresses (`127.0.0.1, 10.0.0.0/8, ::1`).
    pub fn parse(value: &str) -> Result<TrustedProxies, OpsConfigError> {
        let mut nets = Vec::new();
        for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(OpsConfigError::new(
                            TRUSTED_PROXIES_VAR,
                            format!("expected CIDRs or addresses, got {item:?}"),
                        ));
                    }
                },
            };
            nets.push(net.trunc());
        }
        Ok(TrustedProxies { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer, unless the peer is trusted and `X-Forwarded-For` names
    /// someone else (each header line, in order, as one comma list).
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        self.client_ip_from_trusted(forwarded_for).unwrap_or(peer)
    }

    /// The client behind a peer that is trusted without an address (a Unix socket): the
    /// right-most entry that is not a trusted proxy, `None` when there is none to read.
    pub fn client_ip_from_trusted<'a>(
        &self,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let hops: Vec<&str> = forwarded_for.flat_map(|v| v.split(',')).collect();
        let mut client = None;
        for hop in hops.iter().rev() {
            let Some(ip) = parse_hop(hop) else {
                break;
            };
            client = Some(ip);
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// An IPv4-mapped IPv6 peer (`::ffff:127.0.0.1`, a dual-stack listener) matches IPv4 ranges.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(canonical(sock.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse().ok())
        .map(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let t = TrustedProxies::parse("127.0.0.1, 10.0.0.0/8,::1").expect("parse");
        assert_eq!(
            t.client_ip(ip("203.0.113.9"), ["1.2.3.4"].into_iter()),
            ip("203.0.113.9")
        );
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("1.2.3.4")
        );
        assert_eq!(
            t.client_ip(ip("::ffff:127.0.0.1"), ["1.2.3.4:55"].into_iter()),
            ip("1.2.3.4")
        );
        // A client's own header in front of the proxies' entries is not believed.
        assert_eq!(
            t.client_ip(
                ip("127.0.0.1"),
                ["6.6.6.6, 1.2.3.4", "10.1.1.1"].into_iter()
            ),
            ip("1.2.3.4")
        );
        // No header: the peer.
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), std::iter::empty()),
            ip("127.0.0.1")
        );
        assert_eq!(
            t.client_ip(ip("127.0.0.1"), ["junk"].into_iter()),
            ip("127.0.0.1")
        );
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("127.0.0.1"), ["1.2.3.4"].into_iter()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn bad_entries_name_the_variable() {
        let err = TrustedProxies::parse("10.0.0.0/8, nope").expect_err("bad");
        assert!(
            err.to_string().starts_with("FERROCHAT_TRUSTED_PROXIES: "),
            "{err}"
        );
    }
}
