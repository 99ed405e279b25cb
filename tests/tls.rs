//! HTTPS and mTLS handshakes, accepted and refused, and certificate renewal without restart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use credbridge::config::TlsSettings;
use credbridge::{App, Settings};
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::SecretText;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use tokio_rustls::rustls;

const TOKEN: &str = "tls-test-token-0123456789";

/// A CA that signs server and client certificates, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

struct Issued {
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            dir: tempfile::tempdir().unwrap(),
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn issue(&self, name: &str, purpose: ExtendedKeyUsagePurpose) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the server's files; returns the `[tls]` settings naming them.
    fn server_files(&self, server: &Issued, client_ca: bool) -> TlsSettings {
        write_atomically(&self.path("server.crt"), &server.cert_pem);
        write_atomically(&self.path("server.key"), &server.key_pem);
        std::fs::write(self.path("ca.crt"), &self.ca_pem).unwrap();
        TlsSettings {
            cert_file: Some(self.path("server.crt")),
            key_file: Some(self.path("server.key")),
            client_ca_file: client_ca.then(|| self.path("ca.crt")),
            reload_interval: Duration::from_millis(50),
            ..TlsSettings::default()
        }
    }
}

/// Replaces a file in one rename, as certificate managers do.
fn write_atomically(path: &Path, text: &str) {
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

async fn spawn(tls: TlsSettings) -> SocketAddr {
    spawn_with(tls, |_| {}).await
}

async fn spawn_with(tls: TlsSettings, configure: impl FnOnce(&mut Settings)) -> SocketAddr {
    let mut settings = Settings {
        tls,
        ..Settings::from_toml(&format!(
            "[[auth.tokens]]\ntoken = \"{TOKEN}\"\nscope = \"default\"\n"
        ))
        .unwrap()
    };
    configure(&mut settings);
    settings.validate().unwrap();
    let app = App::with_backend(&settings, Arc::new(MemoryBackend::default())).unwrap();
    assert!(app.tls_enabled());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(app.serve(listener, std::future::pending()));
    address
}

fn client(ca_pem: &str, identity: Option<&Issued>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap());
    if let Some(issued) = identity {
        let pem = format!("{}{}", issued.cert_pem, issued.key_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn connection_test(
    client: &reqwest::Client,
    address: SocketAddr,
) -> reqwest::Result<reqwest::StatusCode> {
    client
        .get(format!("https://{address}/api/v1/credentials"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .map(|response| response.status())
}

#[tokio::test]
async fn https_serves_the_api_and_plain_http_gets_no_answer() {
    let pki = Pki::new("test ca");
    let server = pki.issue("credbridge", ExtendedKeyUsagePurpose::ServerAuth);
    let address = spawn(pki.server_files(&server, false)).await;

    assert_eq!(
        connection_test(&client(&pki.ca_pem, None), address)
            .await
            .unwrap(),
        200
    );
    let plain = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/credentials"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the CA refuses the server.
    let stranger = Pki::new("other ca");
    assert!(connection_test(&client(&stranger.ca_pem, None), address)
        .await
        .is_err());
}

#[tokio::test]
async fn mtls_accepts_a_client_the_ca_signed_and_refuses_the_rest() {
    let pki = Pki::new("test ca");
    let server = pki.issue("credbridge", ExtendedKeyUsagePurpose::ServerAuth);
    let address = spawn(pki.server_files(&server, true)).await;

    let signed = pki.issue("skyvern", ExtendedKeyUsagePurpose::ClientAuth);
    assert_eq!(
        connection_test(&client(&pki.ca_pem, Some(&signed)), address)
            .await
            .unwrap(),
        200
    );

    assert!(
        connection_test(&client(&pki.ca_pem, None), address)
            .await
            .is_err(),
        "no client certificate"
    );
    let stranger = Pki::new("other ca").issue("intruder", ExtendedKeyUsagePurpose::ClientAuth);
    assert!(
        connection_test(&client(&pki.ca_pem, Some(&stranger)), address)
            .await
            .is_err(),
        "a certificate from another CA"
    );
}

/// The leaf certificate the server presents now, by a raw TLS handshake.
async fn presented_certificate(address: SocketAddr, ca_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, stream).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn der(pem: &str) -> Vec<u8> {
    let cert: rustls::pki_types::CertificateDer<'_> =
        rustls::pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).unwrap();
    cert.to_vec()
}

#[tokio::test]
async fn renewed_certificate_files_are_served_without_restart() {
    let pki = Pki::new("test ca");
    let first = pki.issue("first", ExtendedKeyUsagePurpose::ServerAuth);
    let address = spawn(pki.server_files(&first, false)).await;
    assert_eq!(
        presented_certificate(address, &pki.ca_pem).await,
        der(&first.cert_pem)
    );

    let renewed = pki.issue("renewed", ExtendedKeyUsagePurpose::ServerAuth);
    pki.server_files(&renewed, false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while presented_certificate(address, &pki.ca_pem).await != der(&renewed.cert_pem) {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unloadable_new_files_keep_the_previous_certificate() {
    let pki = Pki::new("test ca");
    let first = pki.issue("first", ExtendedKeyUsagePurpose::ServerAuth);
    let address = spawn(pki.server_files(&first, false)).await;
    write_atomically(
        &pki.path("server.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        presented_certificate(address, &pki.ca_pem).await,
        der(&first.cert_pem)
    );
    assert_eq!(
        connection_test(&client(&pki.ca_pem, None), address)
            .await
            .unwrap(),
        200
    );
}

#[tokio::test]
async fn start_up_names_the_tls_key_at_fault() {
    let pki = Pki::new("test ca");
    let server = pki.issue("credbridge", ExtendedKeyUsagePurpose::ServerAuth);
    let mut tls = pki.server_files(&server, false);
    tls.key_file = Some(pki.path("missing.key"));
    let settings = Settings {
        token: Some(SecretText::new(TOKEN)),
        tls,
        ..Settings::default()
    };
    let error = App::with_backend(&settings, Arc::new(MemoryBackend::default()))
        .err()
        .unwrap();
    assert!(
        error.to_string().starts_with("tls.key_file: cannot read"),
        "{error}"
    );
}

/// The start of a ClientHello record, and nothing more.
async fn stalled_handshake(address: SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stalled = tokio::net::TcpStream::connect(address).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    stalled
}

async fn metrics_text(client: &reqwest::Client, address: SocketAddr) -> String {
    client
        .get(format!("https://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_closed_by_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;

    let pki = Pki::new("test ca");
    let server = pki.issue("credbridge", ExtendedKeyUsagePurpose::ServerAuth);
    let tls = TlsSettings {
        handshake_timeout: Duration::from_secs(2),
        ..pki.server_files(&server, false)
    };
    let address = spawn_with(tls, |settings| {
        settings.metrics.enabled = true;
    })
    .await;
    let mut stalled = stalled_handshake(address).await;
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(30), stalled.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "the stalled handshake is still open");
    let metrics = metrics_text(&client(&pki.ca_pem, None), address).await;
    assert!(
        metrics.contains(
            r#"credbridge_http_connections_closed_total{reason="tls_handshake_timeout"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_stalled_handshake_is_closed_to_make_room() {
    use tokio::io::AsyncReadExt;

    let pki = Pki::new("test ca");
    let server = pki.issue("credbridge", ExtendedKeyUsagePurpose::ServerAuth);
    let tls = pki.server_files(&server, false);
    let handshake_timeout = tls.handshake_timeout;
    let address = spawn_with(tls, |settings| {
        settings.http.max_connections = 1;
        settings.metrics.enabled = true;
    })
    .await;
    let mut stalled = stalled_handshake(address).await;
    // The only slot is taken by a handshake that goes nowhere: it makes room for a client
    // long before its timeout.
    let client = client(&pki.ca_pem, None);
    let served = tokio::time::timeout(handshake_timeout / 2, connection_test(&client, address))
        .await
        .expect("served well before the handshake timeout");
    assert_eq!(served.unwrap(), 200);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), stalled.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "the stalled handshake is still open");
    let metrics = metrics_text(&client, address).await;
    assert!(
        metrics.contains(r#"credbridge_http_connections_closed_total{reason="reclaimed"} 1"#),
        "{metrics}"
    );
}
