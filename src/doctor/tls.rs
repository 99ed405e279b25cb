//! The TLS check: the files load as `serve` loads them (the key fits the certificate), and
//! the leaf certificate is valid now and for a while yet.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::backend::human;
use super::report::Check;
use crate::config::Settings;

const NAME: &str = "tls";

pub(super) fn check(settings: &Settings, warn_within: Duration) -> Check {
    let Some(cert_file) = settings
        .tls
        .cert_file
        .as_ref()
        .filter(|_| settings.tls.enabled())
    else {
        return if settings.listen.ip().is_loopback() {
            Check::skip(
                NAME,
                format!("TLS is off; {} is loopback only", settings.listen),
            )
        } else {
            Check::warn(
                NAME,
                format!(
                    "TLS is off and credbridge listens on {}: tokens and credentials cross \
                     the network unencrypted",
                    settings.listen
                ),
                "set tls.cert_file and tls.key_file, or listen on loopback behind a proxy \
                 or mesh that terminates TLS",
            )
        };
    };
    if let Err(error) = crate::tls::load(&settings.tls) {
        return Check::fail(
            NAME,
            error,
            "give tls.cert_file a PEM chain (leaf first) and tls.key_file the key of that \
             leaf",
        );
    }
    let leaf = match CertificateDer::pem_file_iter(cert_file)
        .ok()
        .and_then(|mut certificates| certificates.next())
    {
        Some(Ok(leaf)) => leaf,
        _ => {
            return Check::fail(
                NAME,
                format!("tls.cert_file: no certificate in {}", cert_file.display()),
                "give tls.cert_file a PEM chain, leaf first",
            )
        }
    };
    let certificate = match x509_parser::parse_x509_certificate(&leaf) {
        Ok((_, certificate)) => certificate,
        Err(error) => {
            return Check::fail(
                NAME,
                format!(
                    "tls.cert_file: cannot parse the certificate in {}: {error}",
                    cert_file.display()
                ),
                "give tls.cert_file a PEM chain, leaf first",
            )
        }
    };
    let validity = certificate.validity();
    let at = |timestamp: i64| UNIX_EPOCH + Duration::from_secs(timestamp.max(0).unsigned_abs());
    let (not_before, not_after) = (
        at(validity.not_before.timestamp()),
        at(validity.not_after.timestamp()),
    );
    let date = |time: SystemTime| humantime::format_rfc3339_seconds(time).to_string();
    let now = SystemTime::now();
    let renew = "renew the certificate: credbridge serves the new files without a restart";
    if now < not_before {
        return Check::fail(
            NAME,
            format!("the certificate is not valid before {}", date(not_before)),
            "check this machine's clock, or use a certificate valid now",
        );
    }
    match not_after.duration_since(now) {
        Err(_) => Check::fail(
            NAME,
            format!("the certificate expired on {}", date(not_after)),
            renew,
        ),
        Ok(left) if left < warn_within => Check::warn(
            NAME,
            format!(
                "the certificate expires in {} ({})",
                human(left),
                date(not_after)
            ),
            renew,
        ),
        Ok(left) => Check::ok(
            NAME,
            format!(
                "certificate valid until {} ({} left), key matches",
                date(not_after),
                human(left)
            ),
        ),
    }
}
