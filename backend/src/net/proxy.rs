//! Who is really on the other end of a request. Behind a reverse proxy the
//! TCP peer is the proxy; the client's address, the scheme it used and the
//! host it asked for travel in `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `X-Forwarded-Host`. Anyone can send those headers, so they count only
//! when the peer is one of `--trusted-proxies`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use ipnet::IpNet;

use crate::http::error::ApiError;
use crate::server::AppState;

/// The proxies whose forwarding headers are believed: addresses and
/// networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// A request's client, as far as trusted proxies vouch for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// The TCP peer: the client itself, or the last proxy.
    pub peer: SocketAddr,
    /// The client's address: what per-address limits count.
    pub ip: IpAddr,
    /// `https` when the client's connection was encrypted (to this server
    /// or to a trusted proxy in front of it).
    pub scheme: &'static str,
    /// The host (and port) the client addressed, if it said.
    pub host: Option<String>,
}

impl TrustedProxies {
    /// Parses `--trusted-proxies`: comma-separated addresses (`10.0.0.1`,
    /// `::1`) and networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let network = match item.parse::<IpNet>() {
                Ok(network) => network.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => return Err(format!("{item:?} is not an IP address or network")),
                },
            };
            networks.push(network);
        }
        Ok(Self(networks))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|network| network.contains(&ip))
    }

    /// The client behind `peer`. `scheme` is this server's own (`https`
    /// with `--tls-cert`).
    ///
    /// `X-Forwarded-For` is read from the right, the end the nearest proxy
    /// appended to: the first address that is not a trusted proxy is the
    /// client. Entries further left were written by the client itself and
    /// prove nothing.
    pub fn client(&self, peer: SocketAddr, scheme: &'static str, headers: &HeaderMap) -> Client {
        let own_host = || header_text(headers, header::HOST.as_str()).map(str::to_owned);
        if !self.trusts(peer.ip()) {
            return Client {
                peer,
                ip: canonical(peer.ip()),
                scheme,
                host: own_host(),
            };
        }
        let mut ip = canonical(peer.ip());
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        for hop in forwarded.iter().rev() {
            // A hop that is not an address ends the chain: the proxy that
            // wrote it is as far as anything is known.
            let Some(hop_ip) = parse_hop(hop) else {
                break;
            };
            ip = hop_ip;
            if !self.trusts(hop_ip) {
                break;
            }
        }
        let forwarded_scheme = first_value(headers, "x-forwarded-proto")
            .map(str::to_ascii_lowercase)
            .and_then(|proto| match proto.as_str() {
                "https" => Some("https"),
                "http" => Some("http"),
                _ => None,
            });
        Client {
            peer,
            ip,
            scheme: forwarded_scheme.unwrap_or(scheme),
            host: first_value(headers, "x-forwarded-host")
                .map(str::to_owned)
                .or_else(own_host),
        }
    }
}

impl FromRequestParts<AppState> for Client {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            tracing::error!("no peer address: serve the router with connect info");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ));
        };
        let scheme = if state.config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(state
            .config
            .trusted_proxies
            .client(*peer, scheme, &parts.headers))
    }
}

/// IPv4 clients of a dual-stack socket arrive as `::ffff:a.b.c.d`; they are
/// the same clients as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// An `X-Forwarded-For` entry: an address, or an address with a port
/// (`1.2.3.4:5678`, `[::1]:5678`), as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|address| address.ip()))
        .ok()
        .map(canonical)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// The first entry of a comma-separated forwarding header: what the
/// outermost proxy, the one the client spoke to, saw.
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header_text(headers, name)
        .and_then(|value| value.split(',').next())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(trusted: &str, peer: &str, headers: &[(&str, &str)]) -> Client {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        TrustedProxies::parse(trusted)
            .unwrap()
            .client(peer.parse().unwrap(), "http", &map)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let seen = client(
            "",
            "198.51.100.7:4000",
            &[
                ("host", "rookery.example"),
                ("x-forwarded-for", "203.0.113.1"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
            ],
        );
        assert_eq!(seen.ip, ip("198.51.100.7"));
        assert_eq!(seen.scheme, "http");
        assert_eq!(seen.host.as_deref(), Some("rookery.example"));
        let seen = client(
            "10.0.0.0/8",
            "198.51.100.7:4000",
            &[("x-forwarded-for", "203.0.113.1")],
        );
        assert_eq!(seen.ip, ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_proxy_vouches_for_the_client_and_its_scheme_and_host() {
        let seen = client(
            "127.0.0.1",
            "127.0.0.1:4000",
            &[
                ("host", "127.0.0.1:8000"),
                ("x-forwarded-for", "203.0.113.1"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "rookery.example"),
            ],
        );
        assert_eq!(seen.ip, ip("203.0.113.1"));
        assert_eq!(seen.scheme, "https");
        assert_eq!(seen.host.as_deref(), Some("rookery.example"));
        // Without forwarding headers the proxy is the client, and Host stands.
        let seen = client("127.0.0.1", "127.0.0.1:4000", &[("host", "127.0.0.1:8000")]);
        assert_eq!(seen.ip, ip("127.0.0.1"));
        assert_eq!(seen.host.as_deref(), Some("127.0.0.1:8000"));
    }

    #[test]
    fn the_chain_is_read_from_the_right_and_stops_at_the_first_untrusted_hop() {
        let trusted = "10.0.0.0/8, 127.0.0.1";
        // The client forged the leftmost entry; the CDN-facing proxy
        // (10.0.0.5) appended the real one.
        let seen = client(
            trusted,
            "127.0.0.1:1",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.5")],
        );
        assert_eq!(seen.ip, ip("203.0.113.9"));
        // Several header lines are one list.
        let seen = client(
            trusted,
            "127.0.0.1:1",
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        );
        assert_eq!(seen.ip, ip("203.0.113.9"));
        // Only proxies: the leftmost is as far as is known.
        let seen = client(
            trusted,
            "127.0.0.1:1",
            &[("x-forwarded-for", "10.1.1.1, 10.0.0.5")],
        );
        assert_eq!(seen.ip, ip("10.1.1.1"));
        // Garbage stops the walk at the proxy that passed it on.
        let seen = client(
            trusted,
            "127.0.0.1:1",
            &[("x-forwarded-for", "not-an-ip, 10.0.0.5")],
        );
        assert_eq!(seen.ip, ip("10.0.0.5"));
        // Ports and IPv6.
        let seen = client(
            "::1",
            "[::1]:1",
            &[("x-forwarded-for", "[2001:db8::1]:443")],
        );
        assert_eq!(seen.ip, ip("2001:db8::1"));
        let seen = client(
            trusted,
            "[::ffff:127.0.0.1]:1",
            &[("x-forwarded-for", "203.0.113.9:5555")],
        );
        assert_eq!(seen.ip, ip("203.0.113.9"));
    }

    #[test]
    fn lists_parse_addresses_and_networks() {
        let proxies = TrustedProxies::parse(" 10.0.0.0/8,::1 , 192.168.1.7/24").unwrap();
        assert!(proxies.trusts(ip("10.200.0.1")));
        assert!(proxies.trusts(ip("::1")));
        assert!(proxies.trusts(ip("192.168.1.200")));
        assert!(proxies.trusts(ip("::ffff:10.0.0.1")));
        assert!(!proxies.trusts(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(TrustedProxies::parse("localhost").is_err());
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
