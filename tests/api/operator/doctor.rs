//! `credbridge doctor` against memory, Vault and moto, and a failing check of each kind.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use credbridge::App;
use credbridge_adapters::memory::MemoryBackend;
use credbridge_adapters::testkit::random_hex;
use credbridge_adapters::{Backend, Scope};
use serde_json::{json, Value};

use super::support::{aws, aws_at, run_async, test_mount, vault, ConfigFile, Vault, TOKEN};
use crate::binary::{credbridge, free_port, Ran};
use crate::helpers::{one_token_settings, serve};

/// `--config FILE doctor --json ARGS...`.
async fn doctor(config: &ConfigFile, args: &[&str]) -> Ran {
    let mut command = credbridge(config.dir.path());
    command
        .args([
            "--config",
            config.arg(),
            "doctor",
            "--json",
            "--timeout",
            "5s",
        ])
        .args(args);
    run_async(command).await
}

/// The check named `name` in a doctor's JSON report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:#}"))
}

fn assert_status(report: &Value, name: &str, status: &str) {
    assert_eq!(check(report, name)["status"], status, "{name}: {report:#}");
}

fn message(report: &Value, name: &str) -> String {
    let check = check(report, name);
    format!(
        "{} -> {}",
        check["message"].as_str().unwrap_or_default(),
        check["fix"].as_str().unwrap_or_default()
    )
}

/// A configuration with a credbridge token, before `rest`.
fn with_token(rest: &str) -> ConfigFile {
    ConfigFile::new(&format!("token = \"{TOKEN}\"\n{rest}"))
}

/// The scope the doctor's probe goes to must be empty after it ran.
async fn assert_no_probe_left(backend: &dyn Backend) {
    let scope = Scope::parse("credbridge-doctor").unwrap();
    assert_eq!(backend.list(&scope).await.unwrap(), vec![]);
}

#[tokio::test]
async fn memory_passes_with_a_warning_that_it_is_for_development() {
    let ran = doctor(&ConfigFile::new("[backend]\nkind = \"memory\"\n"), &[]).await;
    assert!(ran.success(), "{}", ran.stdout);
    let report = ran.json();
    assert_eq!(report["passed"], true);
    assert_status(&report, "config", "ok");
    assert_status(&report, "backend", "warn");
    assert_status(&report, "probe", "ok");
    assert_status(&report, "login", "ok");
    assert_status(&report, "tls", "skip");
    assert_status(&report, "clock", "skip");
    assert_status(&report, "skyvern-url", "skip");
}

#[tokio::test]
async fn text_output_is_one_line_per_check_and_a_total() {
    let config = ConfigFile::new("[backend]\nkind = \"memory\"\n");
    let mut command = credbridge(config.dir.path());
    command.args(["--config", config.arg(), "doctor"]);
    let ran = run_async(command).await;
    assert!(ran.success());
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", ran.stdout);
    assert!(lines[0].starts_with("ok    config"), "{}", ran.stdout);
    assert!(lines[1].starts_with("WARN  backend") && lines[1].contains(" -> "));
    assert_eq!(lines[7], "doctor: failed 0, warnings 1, ok 3, skipped 3");
}

#[tokio::test]
async fn a_configuration_that_does_not_load_fails_and_skips_the_rest() {
    let ran = doctor(&ConfigFile::new("listen = \"nowhere\"\n"), &[]).await;
    assert!(!ran.success());
    let report = ran.json();
    assert_status(&report, "config", "fail");
    assert!(message(&report, "config").contains("listen"), "{report:#}");
    assert_status(&report, "backend", "skip");
}

#[tokio::test]
async fn a_persistent_backend_without_a_token_fails_the_configuration() {
    let ran = doctor(&ConfigFile::new(&aws().toml), &[]).await;
    assert!(!ran.success());
    let report = ran.json();
    assert_status(&report, "config", "fail");
    assert!(
        message(&report, "config").contains("no token"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_passes_and_leaves_no_probe_behind() {
    let vault = vault(2).await;
    let ran = doctor(&with_token(&vault.toml), &[]).await;
    assert!(ran.success(), "{}", ran.stdout);
    let report = ran.json();
    for name in ["config", "backend", "probe", "login"] {
        assert_status(&report, name, "ok");
    }
    assert_status(&report, "clock", "skip");
    assert_no_probe_left(vault.backend().await.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_on_moto_passes_with_the_clock_checked() {
    let aws = aws();
    let ran = doctor(&with_token(&aws.toml), &[]).await;
    assert!(ran.success(), "{}", ran.stdout);
    let report = ran.json();
    for name in ["config", "backend", "probe", "login", "clock"] {
        assert_status(&report, name, "ok");
    }
    assert!(message(&report, "clock").contains("AWS allows 5 minutes"));
    let login = message(&report, "login");
    assert!(
        login.starts_with("the AWS SDK refreshes its credentials itself"),
        "{login}"
    );
    assert_no_probe_left(aws.backend().await.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_vault_fails_the_backend_check_with_what_to_do() {
    let vault = vault(2).await;
    let toml = vault.toml.replace(
        &vault.vault.address,
        &format!("http://127.0.0.1:{}", free_port()),
    );
    let ran = doctor(&with_token(&toml), &[]).await;
    assert!(!ran.success());
    let report = ran.json();
    assert_status(&report, "backend", "fail");
    assert!(
        message(&report, "backend").contains("check that Vault answers at backend.address"),
        "{report:#}"
    );
    assert_status(&report, "probe", "skip");
    assert_status(&report, "login", "skip");
}

/// A token on the shared test Vault allowed `rules` (Vault ACL paths and their
/// capabilities, in a policy of its own), expiring after `ttl` when given.
async fn vault_token(vault: &Vault, rules: &[(String, &[&str])], ttl: Option<Duration>) -> String {
    let name = format!("credbridge-test-{}", random_hex(8));
    let policy: String = rules
        .iter()
        .map(|(path, capabilities)| {
            format!("path \"{path}\" {{ capabilities = {capabilities:?} }}\n")
        })
        .collect();
    let admin = vault.vault.admin();
    admin.write_policy(&name, &policy).await;
    let settings = match ttl {
        Some(ttl) => json!({ "ttl": format!("{}s", ttl.as_secs()) }),
        None => json!({}),
    };
    admin.create_token(&[&name], settings).await
}

/// KV v2 rules on `prefix`: `data` (create, read, update) and `metadata` (delete, list),
/// each as given.
fn kv2_rules(
    prefix: &str,
    data: &'static [&'static str],
    metadata: &'static [&'static str],
) -> Vec<(String, &'static [&'static str])> {
    let mount = test_mount(2);
    vec![
        (format!("{mount}/data/{prefix}/*"), data),
        (format!("{mount}/metadata/{prefix}/*"), metadata),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_token_whose_policy_lacks_create_fails_as_permission_denied() {
    let vault = vault(2).await;
    let token = vault_token(
        &vault,
        &kv2_rules(&vault.prefix, &["read", "update"], &["delete", "list"]),
        None,
    )
    .await;
    let ran = doctor(&with_token(&vault.toml_with_token(&token)), &[]).await;
    assert!(!ran.success());
    let report = ran.json();
    assert_status(&report, "backend", "fail");
    let backend = message(&report, "backend");
    assert!(backend.contains("permission_denied"), "{backend}");
    assert!(
        backend.contains("give credbridge's Vault login the policy"),
        "{backend}"
    );
    assert_status(&report, "probe", "fail");
    let probe = message(&report, "probe");
    assert!(
        probe.contains("cannot create a probe credential") && probe.contains("permission_denied"),
        "{probe}"
    );
    assert!(!probe.contains("left behind"), "{probe}");
    assert!(!ran.stdout.contains(&token), "the Vault token was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_cannot_be_deleted_fails_and_says_it_may_be_left() {
    let vault = vault(2).await;
    let token = vault_token(
        &vault,
        &kv2_rules(&vault.prefix, &["create", "read", "update"], &["list"]),
        None,
    )
    .await;
    let ran = doctor(&with_token(&vault.toml_with_token(&token)), &[]).await;
    assert!(!ran.success());
    let report = ran.json();
    assert_status(&report, "backend", "ok");
    assert_status(&report, "probe", "fail");
    let probe = message(&report, "probe");
    assert!(
        probe.contains("cannot delete a probe credential") && probe.contains("left behind"),
        "{probe}"
    );
    // The root token cleans up what the restricted one could not.
    let backend = vault.backend().await;
    let scope = Scope::parse("credbridge-doctor").unwrap();
    for id in backend.list(&scope).await.unwrap() {
        backend
            .delete(&credbridge_adapters::Key::new(scope.clone(), id))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_vault_token_expiring_soon_is_a_warning() {
    let vault = vault(2).await;
    let token = vault_token(
        &vault,
        &kv2_rules(
            &vault.prefix,
            &["create", "read", "update"],
            &["delete", "list"],
        ),
        Some(Duration::from_secs(3600)),
    )
    .await;
    let ran = doctor(&with_token(&vault.toml_with_token(&token)), &[]).await;
    assert!(ran.success(), "{}", ran.stdout);
    let report = ran.json();
    assert_status(&report, "probe", "ok");
    assert_status(&report, "login", "warn");
    let login = message(&report, "login");
    assert!(login.contains("the Vault token expires in"), "{login}");
    // Below the threshold given, it is fine.
    let ran = doctor(
        &with_token(&vault.toml_with_token(&token)),
        &["--login-warn-within", "10m"],
    )
    .await;
    assert_status(&ran.json(), "login", "ok");
}

/// A server whose every answer carries a `Date` that far from now: the clock of an AWS
/// endpoint when this machine's clock is off, which moto cannot be made to show.
async fn skewed_server(skew: Duration, ahead: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new().fallback(move || async move {
        let now = SystemTime::now();
        let date = if ahead { now + skew } else { now - skew };
        (
            [(axum::http::header::DATE, httpdate::fmt_http_date(date))],
            "not Secrets Manager",
        )
    });
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_skew_past_five_minutes_fails_and_past_one_minute_warns() {
    for (skew, ahead, status, direction) in [
        (Duration::from_secs(600), true, "fail", "behind"),
        (Duration::from_secs(600), false, "fail", "ahead of"),
        (Duration::from_secs(120), true, "warn", "behind"),
    ] {
        let server = skewed_server(skew, ahead).await;
        let ran = doctor(&with_token(&aws_at(&format!("http://{server}")).toml), &[]).await;
        let report = ran.json();
        assert_status(&report, "clock", status);
        let clock = message(&report, "clock");
        assert!(
            clock.contains(&format!(" {direction} http://{server}"))
                && clock.contains("synchronise"),
            "{clock}"
        );
    }
}

/// Writes a certificate for `localhost` valid from `from` to `until` (seconds from now),
/// with its key, or with another key when `wrong_key`; returns the `[tls]` table.
fn certificate(dir: &std::path::Path, from: i64, until: i64, wrong_key: bool) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now + time::Duration::seconds(from);
    params.not_after = now + time::Duration::seconds(until);
    let cert = params.self_signed(&key).unwrap();
    let key_pem = if wrong_key {
        rcgen::KeyPair::generate().unwrap().serialize_pem()
    } else {
        key.serialize_pem()
    };
    let (cert_file, key_file) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key_pem).unwrap();
    format!(
        "[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert_file.display(),
        key_file.display()
    )
}

#[tokio::test]
async fn tls_certificates_are_checked_for_expiry_and_their_key() {
    const DAY: i64 = 86_400;
    for (from, until, wrong_key, status, says) in [
        (-DAY, 90 * DAY, false, "ok", "key matches"),
        (
            -DAY,
            5 * DAY,
            false,
            "warn",
            "the certificate expires in 4d",
        ),
        (-30 * DAY, -DAY, false, "fail", "the certificate expired on"),
        (DAY, 90 * DAY, false, "fail", "not valid before"),
        (-DAY, 90 * DAY, true, "fail", "does not fit tls.cert_file"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let tls = certificate(dir.path(), from, until, wrong_key);
        let ran = doctor(
            &ConfigFile::new(&format!("{tls}[backend]\nkind = \"memory\"\n")),
            &[],
        )
        .await;
        let report = ran.json();
        assert_status(&report, "tls", status);
        assert!(
            message(&report, "tls").contains(says),
            "{}",
            message(&report, "tls")
        );
        assert_eq!(ran.success(), status != "fail");
    }
}

#[tokio::test]
async fn plain_http_on_a_non_loopback_address_is_a_warning() {
    let ran = doctor(
        &ConfigFile::new("listen = \"0.0.0.0:8080\"\n[backend]\nkind = \"memory\"\n"),
        &[],
    )
    .await;
    assert_status(&ran.json(), "tls", "warn");
}

/// A credbridge serving the memory backend with [`TOKEN`], on a loopback port.
async fn serving() -> SocketAddr {
    let app = App::with_backend(
        &one_token_settings(TOKEN),
        Arc::new(MemoryBackend::default()),
    )
    .unwrap();
    serve(app).await
}

fn memory_with_token() -> ConfigFile {
    with_token("[backend]\nkind = \"memory\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skyverns_url_and_token_work_and_a_loopback_host_needs_allowed_hosts() {
    let server = serving().await;
    let url = format!("http://{server}/api/v1/credentials/");
    let ran = doctor(&memory_with_token(), &["--skyvern-base-url", &url]).await;
    assert!(ran.success(), "{}", ran.stdout);
    let report = ran.json();
    assert_status(&report, "skyvern-url", "ok");
    assert_status(&report, "skyvern-token", "ok");
    assert!(message(&report, "skyvern-token").contains("scope default, memory backend"));
    assert_status(&report, "skyvern-allowed-hosts", "warn");
    assert!(
        message(&report, "skyvern-allowed-hosts").contains("ALLOWED_HOSTS=[\"127.0.0.1\"]"),
        "{}",
        message(&report, "skyvern-allowed-hosts")
    );
    assert!(!ran.stdout.contains(TOKEN), "the token was printed");

    let ran = doctor(
        &memory_with_token(),
        &[
            "--skyvern-base-url",
            &format!("http://localhost:{}/api/v1/credentials", server.port()),
        ],
    )
    .await;
    let report = ran.json();
    assert_status(&report, "skyvern-url", "ok");
    assert!(
        message(&report, "skyvern-allowed-hosts").contains("ALLOWED_HOSTS=[\"localhost\"]"),
        "{report:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_can_come_from_standard_input_and_a_wrong_one_fails() {
    let server = serving().await;
    let url = format!("http://{server}/api/v1/credentials");
    let config = ConfigFile::new("[backend]\nkind = \"memory\"\n");
    for (token, status) in [(TOKEN, "ok"), ("a-wrong-token-0123456789", "fail")] {
        let mut command = credbridge(config.dir.path());
        command
            .args(["--config", config.arg(), "doctor", "--json"])
            .args(["--skyvern-base-url", &url, "--token-file", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn().unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{token}\n").as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_status(&report, "skyvern-token", status);
        assert_eq!(output.status.success(), status == "ok", "{stdout}");
        assert!(!stdout.contains(token), "the token was printed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_url_a_wrong_path_and_another_server_fail_the_url_check() {
    let server = serving().await;
    let other = skewed_server(Duration::ZERO, true).await;
    for (url, says) in [
        (
            format!("http://127.0.0.1:{}/api/v1/credentials", free_port()),
            "cannot reach",
        ),
        (
            format!("http://{server}/api/v2/credentials"),
            "must be credbridge's base_path: /api/v1/credentials",
        ),
        (
            format!("http://{other}/api/v1/credentials"),
            "not as credbridge does",
        ),
        ("ftp://example.com/x".to_owned(), "not an http or https URL"),
    ] {
        let ran = doctor(&memory_with_token(), &["--skyvern-base-url", &url]).await;
        assert!(!ran.success(), "{url}");
        let report = ran.json();
        assert_status(&report, "skyvern-url", "fail");
        assert!(
            message(&report, "skyvern-url").contains(says),
            "{url}: {report:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_reaching_a_credbridge_on_another_backend_is_a_warning() {
    let server = serving().await;
    let url = format!("http://{server}/api/v1/credentials");
    let ran = doctor(&with_token(&aws().toml), &["--skyvern-base-url", &url]).await;
    let report = ran.json();
    assert_status(&report, "skyvern-token", "warn");
    assert!(
        message(&report, "skyvern-token")
            .contains("uses the memory backend and this configuration the aws backend"),
        "{report:#}"
    );
}
