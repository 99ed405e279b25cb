//! `credbridge healthcheck`: asks the credbridge serving on this machine for `/healthz` and
//! succeeds only on its `200 {"status": "ok"}` (with `--ready`, `/readyz` and its
//! `{"status": "ready"}`). For container health checks and Kubernetes exec probes, in images
//! with no shell and no curl, and for a credbridge listening on loopback only, which the
//! kubelet's HTTP probes cannot reach.
//!
//! It checks that the process serves, not the certificate: over HTTPS it accepts whatever
//! certificate is presented (a certificate names a service, not the loopback address it is
//! reached on here); `credbridge doctor` checks certificates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Settings;

/// Which probe to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: the process serves.
    Live,
    /// `/readyz`: the backend answers too.
    Ready,
}

impl Probe {
    fn path(self) -> &'static str {
        match self {
            Probe::Live => "/healthz",
            Probe::Ready => "/readyz",
        }
    }

    /// The `status` of a passing answer.
    fn status(self) -> &'static str {
        match self {
            Probe::Live => "ok",
            Probe::Ready => "ready",
        }
    }
}

/// `probe`'s path on the address `settings` listen on, reached over loopback when that is
/// the wildcard address, with `https` when `[tls]` is on.
pub fn url_for(settings: &Settings, probe: Probe) -> String {
    let ip = match settings.listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if settings.tls.enabled() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{}{}",
        SocketAddr::new(ip, settings.listen.port()),
        probe.path()
    )
}

/// GETs `url`; Ok when it answers 200 with `probe`'s status within `timeout`.
pub async fn check(url: &str, probe: Probe, timeout: Duration) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| error.to_string())?;
    let answer = client
        .get(url)
        .send()
        .await
        .map_err(|error| format!("{url}: {}", crate::doctor::error_chain(&error)))?;
    let status = answer.status();
    let body = answer.bytes().await.unwrap_or_default();
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| format!("{url}: answered {status} without a JSON body"))?;
    if status == reqwest::StatusCode::OK && body["status"] == probe.status() {
        Ok(())
    } else {
        match body["message"].as_str() {
            Some(message) => Err(format!("{url}: answered {status}: {message}")),
            None => Err(format!("{url}: answered {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_address_is_reached_over_loopback() {
        let mut settings = Settings::default();
        for (listen, url) in [
            ("0.0.0.0:8080", "http://127.0.0.1:8080/healthz"),
            ("[::]:8443", "http://[::1]:8443/healthz"),
            ("10.0.0.5:9000", "http://10.0.0.5:9000/healthz"),
        ] {
            settings.listen = listen.parse().unwrap();
            assert_eq!(url_for(&settings, Probe::Live), url);
        }
        settings.tls.cert_file = Some("cert.pem".into());
        settings.tls.key_file = Some("key.pem".into());
        settings.listen = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(
            url_for(&settings, Probe::Ready),
            "https://127.0.0.1:8443/readyz"
        );
    }
}
