//! `credbridge healthcheck`, the container health check: 0 only when the credbridge on the
//! configured address answers `/healthz`.

use std::process::Stdio;
use std::time::Duration;

use credbridge_adapters::testkit::eventually;

use super::support::{run_async, ConfigFile, TOKEN};
use crate::binary::{credbridge, free_port, Ran};

/// `credbridge --config CONFIG serve`, killed when dropped; returns once `/healthz` answers
/// over `scheme`.
async fn serve(config: &ConfigFile, port: u16, scheme: &str) -> tokio::process::Child {
    let mut command = credbridge(config.dir.path());
    command
        .args(["--config", config.arg(), "serve"])
        .env("CREDBRIDGE_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let url = format!("{scheme}://127.0.0.1:{port}/healthz");
    eventually(Duration::from_secs(30), "credbridge serves", || async {
        client.get(&url).send().await.ok().map(drop)
    })
    .await;
    child
}

async fn healthcheck(config: &ConfigFile, port: u16, args: &[&str]) -> Ran {
    let mut command = credbridge(config.dir.path());
    command
        .args(["--config", config.arg(), "healthcheck"])
        .args(args)
        .env("CREDBRIDGE_LISTEN", format!("127.0.0.1:{port}"));
    run_async(command).await
}

#[tokio::test]
async fn healthy_when_credbridge_answers_on_the_configured_address() {
    let config = ConfigFile::new(&format!("token = \"{TOKEN}\"\n"));
    let port = free_port();
    let ran = healthcheck(&config, port, &[]).await;
    assert!(!ran.success());
    assert!(
        ran.stderr
            .contains(&format!("http://127.0.0.1:{port}/healthz")),
        "{}",
        ran.stderr
    );

    let _server = serve(&config, port, "http").await;
    let ran = healthcheck(&config, port, &[]).await;
    assert!(ran.success(), "{}", ran.stderr);
    assert!(ran.stdout.is_empty() && ran.stderr.is_empty());
}

#[tokio::test]
async fn healthy_over_https_whatever_name_the_certificate_has() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["credbridge.example.internal".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let config = ConfigFile::new(&format!(
        "token = \"{TOKEN}\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert_file.display(),
        key_file.display()
    ));
    let port = free_port();
    let _server = serve(&config, port, "https").await;
    let ran = healthcheck(&config, port, &[]).await;
    assert!(ran.success(), "{}", ran.stderr);
}

#[tokio::test]
async fn a_server_that_is_not_a_healthy_credbridge_fails() {
    let config = ConfigFile::new(&format!("token = \"{TOKEN}\"\n"));
    let port = free_port();
    let _server = serve(&config, port, "http").await;
    // The credential routes answer, but not with /healthz's body.
    let url = format!("http://127.0.0.1:{port}/api/v1/credentials");
    let ran = healthcheck(&config, port, &["--url", &url]).await;
    assert!(!ran.success());
    assert!(ran.stderr.contains("answered 401"), "{}", ran.stderr);
}

#[tokio::test]
async fn ready_fails_while_the_backend_does_not_answer_and_live_still_passes() {
    let unreachable = super::support::aws_at(&format!("http://127.0.0.1:{}", free_port()));
    let config = ConfigFile::new(&format!("token = \"{TOKEN}\"\n{}", unreachable.toml));
    let port = free_port();
    let _server = serve(&config, port, "http").await;
    let ran = healthcheck(&config, port, &[]).await;
    assert!(ran.success(), "{}", ran.stderr);
    let ran = healthcheck(&config, port, &["--ready"]).await;
    assert!(!ran.success());
    assert!(
        ran.stderr
            .contains("/readyz: answered 503 Service Unavailable: The aws backend is not ready"),
        "{}",
        ran.stderr
    );

    let memory = ConfigFile::new(&format!("token = \"{TOKEN}\"\n"));
    let port = free_port();
    let _server = serve(&memory, port, "http").await;
    assert!(healthcheck(&memory, port, &["--ready"]).await.success());
}
