//! HTTPS with rustls: certificate files, reloaded when they change, and optional client
//! certificate verification (mTLS).
//!
//! The whole `ServerConfig` sits behind an `ArcSwap`: each new connection handshakes with
//! the config in force when it arrived, so a renewed certificate (or CA bundle) is served
//! without a restart and without disturbing open connections. The handshakes themselves
//! run in each connection's task, bounded in time and number (`crate::server`).

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::TlsSettings;
use crate::watch::{ticker, WatchedFiles};

/// The TLS configuration in force, replaceable while serving.
pub type SharedTlsConfig = Arc<ArcSwap<ServerConfig>>;

/// Reads the files named in `[tls]` and builds a server configuration from them.
pub fn load(settings: &TlsSettings) -> Result<ServerConfig, String> {
    let (Some(cert_file), Some(key_file)) = (&settings.cert_file, &settings.key_file) else {
        return Err("tls.cert_file and tls.key_file are both required".to_owned());
    };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| {
            format!(
                "tls.cert_file: cannot read {}: {error}",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!(
            "tls.cert_file: no certificate in {}",
            cert_file.display()
        ));
    }
    // The error never shows key material: it names the file and the parse failure only.
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|error| format!("tls.key_file: cannot read {}: {error}", key_file.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("tls: {error}"))?;
    let builder = match &settings.client_ca_file {
        Some(ca_file) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(ca_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|error| {
                    format!(
                        "tls.client_ca_file: cannot read {}: {error}",
                        ca_file.display()
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "tls.client_ca_file: no usable CA certificate in {}",
                    ca_file.display()
                ));
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| format!("tls.client_ca_file: {error}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| format!("tls.key_file: does not fit tls.cert_file: {error}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The files `[tls]` names, to watch for changes.
fn watched_files(settings: &TlsSettings) -> Vec<PathBuf> {
    [
        &settings.cert_file,
        &settings.key_file,
        &settings.client_ca_file,
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect()
}

/// Re-reads the files whenever one changes; a set of files that fails to load is logged and
/// the configuration in force is kept.
pub async fn watch(settings: TlsSettings, config: SharedTlsConfig) {
    let mut files = WatchedFiles::new(watched_files(&settings));
    let mut ticks = ticker(settings.reload_interval);
    loop {
        ticks.tick().await;
        if !files.changed() {
            continue;
        }
        let loaded = {
            let settings = settings.clone();
            tokio::task::spawn_blocking(move || load(&settings)).await
        };
        match loaded {
            Ok(Ok(fresh)) => {
                config.store(Arc::new(fresh));
                tracing::info!("TLS certificate files changed; reloaded");
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "TLS files changed but do not load; keeping the previous certificate");
            }
            Err(error) => tracing::error!(%error, "TLS reload task failed"),
        }
    }
}
