//! `credbridge healthcheck`: asks the credbridge serving on this machine for `/healthz` and
//! succeeds only on its `200 {"status": "ok"}`. For container health checks in images with
//! no shell and no curl.
//!
//! It checks that the process serves, not the certificate: over HTTPS it accepts whatever
//! certificate is presented (a certificate names a service, not the loopback address it is
//! reached on here); `credbridge doctor` checks certificates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Settings;

/// `/healthz` on the address `settings` listen on, reached over loopback when that is the
/// wildcard address, with `https` when `[tls]` is on.
pub fn url_for(settings: &Settings) -> String {
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
        "{scheme}://{}/healthz",
        SocketAddr::new(ip, settings.listen.port())
    )
}

/// GETs `url`; Ok when it answers 200 with `{"status": "ok"}` within `timeout`.
pub async fn probe(url: &str, timeout: Duration) -> Result<(), String> {
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
    if status == reqwest::StatusCode::OK && body["status"] == "ok" {
        Ok(())
    } else {
        Err(format!("{url}: answered {status}"))
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
            assert_eq!(url_for(&settings), url);
        }
        settings.tls.cert_file = Some("cert.pem".into());
        settings.tls.key_file = Some("key.pem".into());
        settings.listen = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(url_for(&settings), "https://127.0.0.1:8443/healthz");
    }
}
