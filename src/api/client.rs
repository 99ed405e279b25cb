//! Who the client is: the TCP peer, or, behind a trusted reverse proxy, the address that
//! proxy names.
//!
//! A proxy appends the address it received a request from to `X-Forwarded-For` (or adds a
//! `for=` element to `Forwarded`), so the list ends with what the trusted proxies wrote and
//! starts with whatever the client sent. Reading from the right and skipping trusted
//! proxies, the first address that is not one of them is the client: the left part, which
//! the client controls, is never reached unless every hop after it is trusted. The header
//! is read only when the TCP peer itself is a trusted proxy; with none configured, the
//! client is the peer and nothing is parsed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::{self, ClientAddressHeader, ConfigError, HttpSettings};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The peer address of a connection, plain or TLS.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// How a request's client address is found.
#[derive(Debug, Clone)]
pub struct ClientAddresses {
    trusted: Arc<[IpNet]>,
    header: ClientAddressHeader,
}

impl ClientAddresses {
    pub fn new(settings: &HttpSettings) -> Result<Self, ConfigError> {
        Ok(Self {
            trusted: config::trusted_proxies(settings)?.into(),
            header: settings.client_address_header,
        })
    }

    fn is_trusted(&self, address: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&address))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        if self.trusted.is_empty() || !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<Option<IpAddr>> = match self.header {
            ClientAddressHeader::XForwardedFor => headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .flat_map(|value| value.to_str().unwrap_or("?").split(','))
                .map(parse_address)
                .collect(),
            ClientAddressHeader::Forwarded => headers
                .get_all(header::FORWARDED)
                .iter()
                .flat_map(|value| value.to_str().unwrap_or("?").split(','))
                .map(forwarded_for)
                .collect(),
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            // A hop that is not an address ("unknown", an obfuscated name, garbage) says
            // nothing reliable about anything left of it: the last trusted hop answers.
            let Some(address) = hop.map(|address| address.to_canonical()) else {
                return client;
            };
            client = address;
            if !self.is_trusted(address) {
                return address;
            }
        }
        client
    }
}

/// An address, with or without a port (`192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]:80`).
fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
        .or_else(|| {
            text.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        parse_address(value.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn addresses(trusted: &[&str], header: ClientAddressHeader) -> ClientAddresses {
        ClientAddresses::new(&HttpSettings {
            trusted_proxies: trusted.iter().map(|text| (*text).to_owned()).collect(),
            client_address_header: header,
            ..HttpSettings::default()
        })
        .unwrap()
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_client_is_the_peer_whatever_the_headers_say() {
        let none = addresses(&[], ClientAddressHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(none.resolve(ip("10.0.0.5"), &forged), ip("10.0.0.5"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_even_with_a_header() {
        let proxies = addresses(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(proxies.resolve(ip("192.0.2.7"), &forged), ip("192.0.2.7"));
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let proxies = addresses(
            &["10.0.0.0/8", "192.0.2.1"],
            ClientAddressHeader::XForwardedFor,
        );
        // The client forged the first entry; two trusted proxies appended the rest.
        let forwarded = headers(
            "x-forwarded-for",
            &["198.51.100.1, 203.0.113.9", "192.0.2.1"],
        );
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), &forwarded),
            ip("203.0.113.9")
        );
        // Ports and brackets are tolerated.
        let with_ports = headers("x-forwarded-for", &["[2001:db8::7]:4711, 10.0.0.9:80"]);
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), &with_ports),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_last_trusted_one() {
        let proxies = addresses(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let garbage = headers("x-forwarded-for", &["203.0.113.9, unknown, 10.0.0.9"]);
        assert_eq!(proxies.resolve(ip("10.1.2.3"), &garbage), ip("10.0.0.9"));
        let all_trusted = headers("x-forwarded-for", &["10.0.0.8, 10.0.0.9"]);
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), &all_trusted),
            ip("10.0.0.8")
        );
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn forwarded_is_read_when_configured_and_the_other_header_is_ignored() {
        let proxies = addresses(&["10.0.0.0/8"], ClientAddressHeader::Forwarded);
        let mut both = headers(
            "forwarded",
            &[
                r#"for=198.51.100.1, for="[2001:db8:cafe::17]:4711";proto=https"#,
                "For=10.0.0.9;by=10.0.0.1",
            ],
        );
        both.append(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.66"));
        assert_eq!(
            proxies.resolve(ip("10.1.2.3"), &both),
            ip("2001:db8:cafe::17")
        );
        let obfuscated = headers(
            "forwarded",
            &["for=198.51.100.1, for=_hidden, for=10.0.0.9"],
        );
        assert_eq!(proxies.resolve(ip("10.1.2.3"), &obfuscated), ip("10.0.0.9"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let proxies = addresses(&["10.0.0.0/8"], ClientAddressHeader::XForwardedFor);
        let forwarded = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(
            proxies.resolve(ip("::ffff:10.1.2.3"), &forwarded),
            ip("203.0.113.9")
        );
    }
}
