//! The checks from Skyvern's side: the base URL Skyvern is configured with
//! (`CUSTOM_CREDENTIAL_API_BASE_URL`) reaches a credbridge, Skyvern's token is accepted
//! there, and Skyvern's private-host rule lets the URL's host through.
//!
//! The private-host rule is Skyvern's own (`skyvern/utils/url_validators.py`): a host is
//! refused when it is an internal name (`localhost`, `*.local`, `*.localhost`,
//! `*.internal`, `*.svc`, `*.cluster.local`, `kubernetes.default.svc`,
//! `metadata.google.internal`) or a private, loopback, link-local, shared, reserved,
//! multicast or unspecified address, or a name resolving to one, unless `ALLOWED_HOSTS`
//! lists it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

use credbridge_adapters::SecretText;
use reqwest::{StatusCode, Url};
use serde_json::Value;

use super::backend::error_chain;
use super::report::{Check, Status};
use crate::config::Settings;

const URL: &str = "skyvern-url";
const TOKEN: &str = "skyvern-token";
const ALLOWED_HOSTS: &str = "skyvern-allowed-hosts";

const INTERNAL_NAMES: [&str; 3] = [
    "localhost",
    "metadata.google.internal",
    "kubernetes.default.svc",
];
const INTERNAL_SUFFIXES: [&str; 5] = [
    ".local",
    ".localhost",
    ".internal",
    ".cluster.local",
    ".svc",
];

/// How Skyvern compares hosts: lowercase, without IPv6 brackets or a trailing dot.
fn normalize(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    host.trim()
        .to_ascii_lowercase()
        .trim_end_matches('.')
        .to_owned()
}

/// Whether Skyvern refuses `host` by its name (or as an address literal) alone, before any
/// DNS lookup.
pub fn blocked_name(host: &str) -> bool {
    let host = normalize(host);
    if host.is_empty() || INTERNAL_NAMES.contains(&host.as_str()) {
        return true;
    }
    if INTERNAL_SUFFIXES
        .iter()
        .any(|suffix| host.ends_with(suffix))
    {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(blocked_ip)
}

/// Whether Skyvern refuses an address: what Python's `ipaddress` calls private, loopback,
/// link-local, reserved, multicast or unspecified, plus the shared range 100.64.0.0/10 and
/// the cloud metadata addresses. IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn blocked_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => blocked_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(mapped) => blocked_v4(mapped),
            None => blocked_v6(ip),
        },
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn blocked_v4(ip: Ipv4Addr) -> bool {
    const NETWORKS: [([u8; 4], u32); 15] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 29),
        ([192, 0, 0, 170], 31),
        ([192, 0, 2, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
    ];
    NETWORKS
        .iter()
        .any(|(network, prefix)| in_v4(ip, *network, *prefix))
}

fn in_v6(ip: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

fn blocked_v6(ip: Ipv6Addr) -> bool {
    // Outside 2000::/3 (global unicast), Python calls every range private, reserved,
    // link-local, loopback, multicast or unspecified; inside it, these are private.
    const PRIVATE_GLOBAL: [([u16; 8], u32); 3] = [
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        ([0x2002, 0, 0, 0, 0, 0, 0, 0], 16),
    ];
    !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
        || PRIVATE_GLOBAL
            .iter()
            .any(|(network, prefix)| in_v6(ip, *network, *prefix))
}

/// Where the Skyvern-side checks look.
pub(super) struct Target<'a> {
    pub base_url: &'a str,
    pub token: Option<&'a SecretText>,
    pub ca_file: Option<&'a Path>,
    pub timeout: Duration,
}

pub(super) async fn checks(target: &Target<'_>, settings: &Settings) -> Vec<Check> {
    // Skyvern strips a trailing '/' from the base URL.
    let text = target.base_url.trim_end_matches('/');
    let url = match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => url,
        _ => {
            return vec![Check::fail(
                URL,
                format!("{text:?} is not an http or https URL"),
                format!(
                    "give the base URL Skyvern has in CUSTOM_CREDENTIAL_API_BASE_URL, such as \
                     http://credbridge:8080{}",
                    settings.base_path
                ),
            )]
        }
    };
    let mut checks = vec![allowed_hosts(&url).await];
    let client = match client(target) {
        Ok(client) => client,
        Err(check) => {
            checks.push(check);
            return checks;
        }
    };
    let reached = reaches_credbridge(&client, &url, settings).await;
    let reached_ok = reached.status != Status::Fail;
    checks.push(reached);
    checks.push(if !reached_ok {
        Check::skip(
            TOKEN,
            "the URL does not reach credbridge's credential routes",
        )
    } else if let Some(token) = target.token {
        token_works(&client, &url, token, settings).await
    } else {
        Check::skip(
            TOKEN,
            "no token to try: give Skyvern's CUSTOM_CREDENTIAL_API_TOKEN with --token-file \
             (or set a plain `token` in the configuration)",
        )
    });
    checks
}

fn client(target: &Target<'_>) -> Result<reqwest::Client, Check> {
    let mut builder = reqwest::Client::builder()
        .timeout(target.timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = target.ca_file {
        let bundle = std::fs::read(path).map_err(|error| {
            Check::fail(
                URL,
                format!("cannot read --ca-file {}: {error}", path.display()),
                "give --ca-file a PEM bundle of the CAs that sign credbridge's certificate",
            )
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&bundle).map_err(|error| {
            Check::fail(
                URL,
                format!("--ca-file {}: {error}", path.display()),
                "give --ca-file a PEM bundle of the CAs that sign credbridge's certificate",
            )
        })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|error| Check::fail(URL, error_chain(&error), "report this as a bug"))
}

/// Skyvern's private-host rule, as a warning: this host only works once `ALLOWED_HOSTS`
/// lists it, and the doctor cannot see Skyvern's settings.
async fn allowed_hosts(url: &Url) -> Check {
    let Some(host) = url.host_str().map(normalize) else {
        return Check::skip(ALLOWED_HOSTS, "the URL has no host");
    };
    let fix = format!(
        "make sure Skyvern's environment has ALLOWED_HOSTS=[\"{host}\"] (or add \"{host}\" to \
         the list it has)"
    );
    if blocked_name(&host) {
        return Check::warn(
            ALLOWED_HOSTS,
            format!(
                "Skyvern refuses {host} (a private or local host) unless ALLOWED_HOSTS lists it"
            ),
            fix,
        );
    }
    if host.parse::<IpAddr>().is_ok() {
        return Check::ok(
            ALLOWED_HOSTS,
            format!("{host} is a public address: Skyvern's private-host rule lets it through"),
        );
    }
    let port = url.port_or_known_default().unwrap_or(80);
    let resolved = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map(|addresses| {
            addresses
                .map(|address| address.ip())
                .collect::<Vec<IpAddr>>()
        });
    match resolved {
        Ok(addresses) => match addresses.iter().find(|ip| blocked_ip(**ip)) {
            Some(ip) => Check::warn(
                ALLOWED_HOSTS,
                format!(
                    "{host} resolves to {ip}, a private or local address: Skyvern refuses \
                         it unless ALLOWED_HOSTS lists it"
                ),
                fix,
            ),
            None => Check::ok(
                ALLOWED_HOSTS,
                format!(
                    "{host} resolves to public addresses only: Skyvern's private-host rule \
                         lets it through"
                ),
            ),
        },
        Err(error) => Check::skip(
            ALLOWED_HOSTS,
            format!(
                "cannot resolve {host} from here ({error}); Skyvern decides from its own \
                 resolution"
            ),
        ),
    }
}

async fn get(
    client: &reqwest::Client,
    url: &Url,
    token: Option<&SecretText>,
) -> Result<(StatusCode, Option<Value>), String> {
    let mut request = client.get(url.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    let answer = request.send().await.map_err(|error| error_chain(&error))?;
    let status = answer.status();
    let body = answer.bytes().await.map_err(|error| error_chain(&error))?;
    Ok((status, serde_json::from_slice(&body).ok()))
}

/// A credbridge error body: `{"error": code, "message": sentence}`.
fn error_code(body: Option<&Value>) -> Option<&str> {
    let body = body?;
    body.get("message")?.as_str()?;
    body.get("error")?.as_str()
}

/// Without a token, credbridge answers the connection test with its own 401 body; anything
/// else is another server, or the wrong path.
async fn reaches_credbridge(client: &reqwest::Client, url: &Url, settings: &Settings) -> Check {
    let (status, body) = match get(client, url, None).await {
        Ok(answer) => answer,
        Err(error) => {
            return Check::fail(
                URL,
                format!("cannot reach {url}: {error}"),
                "check the host and port, that credbridge listens on an address Skyvern can \
                 reach (`listen`), the scheme (http or https) and any network policy between \
                 them",
            )
        }
    };
    match (status, error_code(body.as_ref())) {
        (StatusCode::UNAUTHORIZED, Some("unauthorized")) => Check::ok(
            URL,
            format!("{url} answers as credbridge's connection test"),
        ),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")) => Check::warn(
            URL,
            format!("{url} is credbridge, but this address is rate limited right now"),
            "wait for rate_limit.auth_failures_per_minute to refill and run the doctor again",
        ),
        (StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, Some(_)) => Check::fail(
            URL,
            format!("{url} reaches credbridge, but not its credential routes ({status})"),
            format!(
                "the base URL's path must be credbridge's base_path: {}",
                settings.base_path
            ),
        ),
        _ => Check::fail(
            URL,
            format!("{url} answers {status}, not as credbridge does"),
            "point the URL at credbridge, not at a proxy's or another service's page",
        ),
    }
}

async fn token_works(
    client: &reqwest::Client,
    url: &Url,
    token: &SecretText,
    settings: &Settings,
) -> Check {
    let (status, body) = match get(client, url, Some(token)).await {
        Ok(answer) => answer,
        Err(error) => {
            return Check::fail(
                TOKEN,
                format!("the connection test with the token failed: {error}"),
                "run the doctor again; if it persists, see credbridge's log",
            )
        }
    };
    let field = |name: &str| {
        body.as_ref()
            .and_then(|body| body.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    match status {
        StatusCode::OK if field("status") == "ok" => {
            let (scope, backend) = (field("scope"), field("backend"));
            let configured = settings.backend.kind();
            if backend == configured {
                Check::ok(
                    TOKEN,
                    format!("the token is accepted: scope {scope}, {backend} backend ready"),
                )
            } else {
                Check::warn(
                    TOKEN,
                    format!(
                        "the token is accepted (scope {scope}), but that credbridge uses the \
                         {backend} backend and this configuration the {configured} backend"
                    ),
                    "check that Skyvern's base URL points at this deployment",
                )
            }
        }
        StatusCode::UNAUTHORIZED => Check::fail(
            TOKEN,
            "the token is refused (unknown or expired)",
            "set Skyvern's CUSTOM_CREDENTIAL_API_TOKEN to a token this credbridge accepts \
             (`token`, [[auth.tokens]]; `credbridge hash-token` gives a token's sha256)",
        ),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => Check::fail(
            TOKEN,
            format!(
                "the token is accepted, but credbridge's backend is not ready: {}",
                field("message")
            ),
            "see the backend check above and credbridge's log",
        ),
        StatusCode::TOO_MANY_REQUESTS => Check::warn(
            TOKEN,
            "the token is rate limited right now",
            "run the doctor again once the rate limit refills",
        ),
        status => Check::fail(
            TOKEN,
            format!("the connection test answered {status}"),
            "see credbridge's log for this request",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_are_blocked_whatever_their_case_or_trailing_dot() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "credbridge.local",
            "x.localhost",
            "vault.internal",
            "metadata.google.internal",
            "credbridge.skyvern.svc",
            "credbridge.skyvern.svc.cluster.local",
            "kubernetes.default.svc",
            "",
        ] {
            assert!(blocked_name(host), "{host:?}");
        }
        for host in ["credbridge", "credbridge.example.com", "svc.example.com"] {
            assert!(!blocked_name(host), "{host:?}");
        }
    }

    #[test]
    fn private_loopback_link_local_shared_and_reserved_addresses_are_blocked() {
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "240.0.0.1",
            "224.0.0.1",
            "198.18.0.1",
            "[::1]",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
            "fd00:ec2::254",
        ] {
            assert!(blocked_name(host), "{host}");
        }
        for host in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!blocked_name(host), "{host}");
        }
    }
}
