//! The `credbridge` binary as an operator runs it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use credbridge_adapters::testkit::eventually;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::binary::{free_port, run, Ran};

/// The binary with a clean `CREDBRIDGE_*` environment, run from the repository root so
/// the shipped `config/credbridge.toml` is the file it reads.
fn credbridge() -> Command {
    crate::binary::credbridge(Path::new(env!("CARGO_MANIFEST_DIR")))
}

#[test]
fn version_prints_the_package_version() {
    let Ran { output, stdout, .. } = run(credbridge().arg("--version"));
    assert!(output.status.success());
    assert_eq!(
        stdout.trim(),
        format!("credbridge {}", env!("CARGO_PKG_VERSION"))
    );
}

/// Runs `hash-token` with `input` on standard input.
fn hash_token(input: &[u8]) -> Ran {
    let mut child = credbridge()
        .arg("hash-token")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input).unwrap();
    Ran::from_output(child.wait_with_output().unwrap())
}

#[test]
fn hash_token_prints_the_sha256_of_standard_input() {
    let Ran { output, stdout, .. } = hash_token(b"hash-me-please-0123456789\n");
    assert!(output.status.success());
    // `printf %s hash-me-please-0123456789 | sha256sum`
    assert_eq!(
        stdout.trim(),
        "e7c0245e36568bc3b3a9e213326724514b8e71a10e54ab8d1851be37bd1766cd"
    );
}

#[test]
fn hash_token_refuses_a_token_shorter_than_16_characters() {
    let Ran {
        output,
        stdout,
        stderr,
    } = hash_token(b"test\n");
    assert!(!output.status.success());
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("at least 16 characters"), "{stderr}");
    assert!(!stderr.contains("test\n"), "{stderr}");
}

#[test]
fn check_config_refuses_the_hash_of_a_guessable_token_and_a_token_listed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            // The SHA-256 of "test", as examples used to show.
            r#"[[auth.tokens]]
sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08""#,
            "auth.tokens[0].sha256: is the hash of a well-known example string",
        ),
        (
            r#"[[auth.tokens]]
token = "listed-twice-token-0123"
scope = "a"
[[auth.tokens]]
token = "listed-twice-token-0123"
scope = "b""#,
            "auth.tokens[1]: holds the same token as auth.tokens[0]",
        ),
    ];
    for (toml, expected) in cases {
        let path = dir.path().join("credbridge.toml");
        std::fs::write(&path, toml).unwrap();
        let Ran {
            output,
            stdout,
            stderr,
        } = run(credbridge().arg("--config").arg(&path).arg("check-config"));
        assert!(!output.status.success(), "{toml}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!format!("{stdout}{stderr}").contains("listed-twice-token"));
    }
}

#[test]
fn hash_token_refuses_empty_input() {
    let Ran { output, stderr, .. } = run(credbridge().arg("hash-token"));
    assert!(!output.status.success());
    assert!(stderr.contains("no token"), "{stderr}");
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let Ran {
        output,
        stdout,
        stderr,
    } = run(credbridge()
        .arg("check-config")
        .env("CREDBRIDGE_TOKEN", "cli-test-token-0123456789")
        .env("CREDBRIDGE_HTTP__REQUEST_TIMEOUT", "3s"));
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("token = \"[redacted]\""), "{stdout}");
    assert!(stdout.contains("request_timeout = \"3s\""), "{stdout}");
    assert!(stdout.contains("kind = \"memory\""), "{stdout}");
    assert!(!stdout.contains("cli-test-token") && !stderr.contains("cli-test-token"));
}

#[test]
fn check_config_names_the_key_at_fault() {
    let cases = [
        (
            "CREDBRIDGE_HTTP__MAX_BODY_BYTES",
            "lots",
            "credbridge_http__max_body_bytes",
        ),
        ("CREDBRIDGE_NO_SUCH_KEY", "1", "credbridge_no_such_key"),
        ("CREDBRIDGE_BACKEND__KIND", "floppy", "backend"),
        ("CREDBRIDGE_TOKEN", "short", "token"),
        ("CREDBRIDGE_LISTEN", "not-an-address", "listen"),
    ];
    for (key, value, named) in cases {
        let Ran { output, stderr, .. } = run(credbridge().arg("check-config").env(key, value));
        assert!(!output.status.success(), "{key}={value} was accepted");
        assert!(
            stderr.to_lowercase().contains(named),
            "{key}={value}: {stderr}"
        );
    }
}

#[test]
fn a_misspelt_variable_is_refused_by_name_by_check_config_and_serve() {
    for command in ["check-config", "serve"] {
        let Ran { output, stderr, .. } = run(credbridge()
            .arg(command)
            .env("CREDBRIDGE_LISTEN", "127.0.0.1:0")
            .env("CREDBRIDGE_RATE_LIMIT__PER_TOKEN_PER_SECONDS", "50"));
        assert!(!output.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains("environment variable CREDBRIDGE_RATE_LIMIT__PER_TOKEN_PER_SECONDS is not a credbridge setting"),
            "{command}: {stderr}"
        );
    }
}

/// The backend is a tagged enum, where figment's own error path stops: the variable named
/// must still be the one set, at any depth, for any kind.
#[test]
fn a_misspelt_variable_inside_the_backend_is_refused_by_its_own_name() {
    let vault = ("CREDBRIDGE_BACKEND__KIND", "vault");
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[
                vault,
                ("CREDBRIDGE_BACKEND__ADRESS", "http://127.0.0.1:8200"),
            ],
            "CREDBRIDGE_BACKEND__ADRESS",
        ),
        (
            &[
                vault,
                ("CREDBRIDGE_BACKEND__AUTH__METHOD", "approle"),
                ("CREDBRIDGE_BACKEND__AUTH__ROLE_ID", "credbridge"),
                ("CREDBRIDGE_BACKEND__AUTH__SECRETID", "not-a-setting"),
            ],
            "CREDBRIDGE_BACKEND__AUTH__SECRETID",
        ),
        (
            &[vault, ("CREDBRIDGE_BACKEND__KND", "vault")],
            "CREDBRIDGE_BACKEND__KND",
        ),
        (
            &[
                ("CREDBRIDGE_BACKEND__KIND", "aws"),
                ("CREDBRIDGE_BACKEND__REGON", "eu-west-1"),
            ],
            "CREDBRIDGE_BACKEND__REGON",
        ),
        // `mount` is a setting one level up, but not of token auth.
        (
            &[
                vault,
                ("CREDBRIDGE_BACKEND__MOUNT", "secret"),
                ("CREDBRIDGE_BACKEND__AUTH__METHOD", "token"),
                ("CREDBRIDGE_BACKEND__AUTH__MOUNT", "token"),
            ],
            "CREDBRIDGE_BACKEND__AUTH__MOUNT",
        ),
    ];
    for (envs, named) in cases {
        let Ran { output, stderr, .. } =
            run(credbridge().arg("check-config").envs(envs.iter().copied()));
        assert!(!output.status.success(), "{envs:?} was accepted");
        assert!(
            stderr.contains(&format!(
                "environment variable {named} is not a credbridge setting"
            )),
            "{envs:?}: {stderr}"
        );
    }
}

/// The login method tags a table inside the tagged backend table: without it, the variable
/// to set is named (not `CREDBRIDGE_BACKEND`), with the methods it may name.
#[test]
fn a_vault_login_without_a_method_names_the_method_variable_and_its_values() {
    let Ran { output, stderr, .. } = run(credbridge()
        .arg("check-config")
        .env("CREDBRIDGE_BACKEND__KIND", "vault")
        .env("CREDBRIDGE_BACKEND__AUTH__SECRETID", "not-a-setting"));
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("missing field `method` (one of `token`, `approle`, `kubernetes`)")
            && stderr.contains("\"CREDBRIDGE_BACKEND__AUTH__METHOD\""),
        "{stderr}"
    );
}

/// A misspelt backend key in the file is the file's, named in full, even when the
/// environment sets the backend's other keys.
#[test]
fn a_misspelt_key_inside_the_backend_in_a_file_is_named_in_full() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credbridge.toml");
    std::fs::write(
        &config,
        "[backend]\nkind = \"vault\"\n[backend.auth]\nmethod = \"approle\"\nrole_id = \"r\"\nsecretid = \"s\"\n",
    )
    .unwrap();
    let Ran { output, stderr, .. } = run(credbridge()
        .env("CREDBRIDGE_BACKEND__ADDRESS", "http://127.0.0.1:8200")
        .arg("--config")
        .arg(&config)
        .arg("check-config"));
    assert!(!output.status.success());
    assert!(
        stderr.contains("found `secretid`")
            && stderr.contains("\"default.backend.auth.secretid\"")
            && stderr.contains("credbridge.toml")
            && !stderr.contains("environment variable"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_key_in_a_file_is_still_refused_with_service_links_present() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credbridge.toml");
    std::fs::write(&config, "port = 8080\n").unwrap();
    let Ran { output, stderr, .. } = run(credbridge()
        .envs(KUBERNETES_SERVICE_LINKS)
        .arg("--config")
        .arg(&config)
        .arg("check-config"));
    assert!(!output.status.success());
    assert!(
        stderr.contains("unknown field: found `port`") && stderr.contains("credbridge.toml"),
        "{stderr}"
    );
}

#[test]
fn an_explicit_config_file_must_exist() {
    let Ran { output, stderr, .. } =
        run(credbridge().args(["--config", "/nonexistent/credbridge.toml", "check-config"]));
    assert!(!output.status.success());
    assert!(
        stderr.contains("/nonexistent/credbridge.toml does not exist"),
        "{stderr}"
    );
}

#[test]
fn every_example_config_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let Ran { output, stderr, .. } = run(credbridge()
                .arg("--config")
                .arg(&path)
                .arg("check-config")
                .env("CREDBRIDGE_TOKEN", "example-token-0123456789")
                // The Vault examples take their token from the environment, as documented.
                .env("VAULT_TOKEN", "example-vault-token"));
            assert!(output.status.success(), "{}: {stderr}", path.display());
        }
    }
}

#[test]
fn serve_refuses_a_persistent_backend_without_a_token() {
    let Ran { output, stderr, .. } = run(credbridge()
        .env("CREDBRIDGE_BACKEND__KIND", "vault")
        .env("VAULT_TOKEN", "a-vault-token-but-no-credbridge-token")
        .arg("serve"));
    assert!(!output.status.success());
    assert!(stderr.contains("no token is configured"), "{stderr}");
}

/// Starts the binary with `args` and `envs`, both outputs piped; killed when dropped.
fn spawn(envs: &[(&str, &str)], args: &[&str]) -> tokio::process::Child {
    let mut command = credbridge();
    command.envs(envs.iter().copied()).args(args);
    tokio::process::Command::from(command)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Everything a (spawned, piped) child printed on standard output, to its end.
async fn all_stdout(child: &mut tokio::process::Child) -> String {
    let mut text = String::new();
    let mut stdout = child.stdout.take().expect("standard output is piped");
    stdout.read_to_string(&mut text).await.unwrap();
    text
}

/// Waits until `/healthz` answers on `port`.
async fn wait_until_serving(port: u16) {
    let url = format!("http://127.0.0.1:{port}/healthz");
    eventually(Duration::from_secs(20), "credbridge serves", || async {
        reqwest::get(&url).await.ok().map(drop)
    })
    .await;
}

#[tokio::test]
async fn serve_without_a_token_generates_one_serves_it_and_stops_on_sigterm() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn(&[], &["serve", "--listen", &listen]);
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let token = loop {
        let line = stderr
            .next_line()
            .await
            .unwrap()
            .expect("a generated token on stderr");
        if let Some(token) = line.trim().strip_prefix("cbt_") {
            break format!("cbt_{token}");
        }
    };
    wait_until_serving(port).await;

    let base = format!("http://127.0.0.1:{port}/api/v1/credentials");
    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(&base)
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "n", "type": "secret", "secret_value": "v"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/{}", created["id"].as_str().unwrap());
    assert_eq!(
        client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let pid = child.id().unwrap().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    let stdout = all_stdout(&mut child).await;
    assert!(stdout.contains("credbridge is serving"), "{stdout}");
    assert!(stdout.contains("credbridge stopped"), "{stdout}");
    assert!(
        !stdout.contains(&token),
        "the generated token reached the log"
    );
}

#[tokio::test]
async fn listen_comes_from_the_environment_and_the_flag_wins() {
    let (env_port, flag_port) = (free_port(), free_port());
    let (env_listen, flag_listen) = (
        format!("127.0.0.1:{env_port}"),
        format!("127.0.0.1:{flag_port}"),
    );
    let envs = [
        ("CREDBRIDGE_LISTEN", env_listen.as_str()),
        ("CREDBRIDGE_TOKEN", "listen-test-token-0123456789"),
    ];
    let mut child = spawn(&envs, &["serve", "--listen", &flag_listen]);
    wait_until_serving(flag_port).await;
    assert!(reqwest::get(format!("http://127.0.0.1:{env_port}/healthz"))
        .await
        .is_err());
    child.kill().await.unwrap();

    let mut child = spawn(&envs, &["serve"]);
    wait_until_serving(env_port).await;
    child.kill().await.unwrap();
}

/// Every variable Kubernetes injects into the pods of a namespace that has a Service named
/// `credbridge` with ports 8080 (`http`) and 9090 (`metrics`).
const KUBERNETES_SERVICE_LINKS: [(&str, &str); 13] = [
    ("CREDBRIDGE_SERVICE_HOST", "10.96.0.12"),
    ("CREDBRIDGE_SERVICE_PORT", "8080"),
    ("CREDBRIDGE_SERVICE_PORT_HTTP", "8080"),
    ("CREDBRIDGE_SERVICE_PORT_METRICS", "9090"),
    ("CREDBRIDGE_PORT", "tcp://10.96.0.12:8080"),
    ("CREDBRIDGE_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
    ("CREDBRIDGE_PORT_8080_TCP_PROTO", "tcp"),
    ("CREDBRIDGE_PORT_8080_TCP_PORT", "8080"),
    ("CREDBRIDGE_PORT_8080_TCP_ADDR", "10.96.0.12"),
    ("CREDBRIDGE_PORT_9090_TCP", "tcp://10.96.0.12:9090"),
    ("CREDBRIDGE_PORT_9090_TCP_PROTO", "tcp"),
    ("CREDBRIDGE_PORT_9090_TCP_PORT", "9090"),
    ("CREDBRIDGE_PORT_9090_TCP_ADDR", "10.96.0.12"),
];

#[tokio::test]
async fn serves_beside_the_service_links_of_a_service_named_credbridge() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut envs = KUBERNETES_SERVICE_LINKS.to_vec();
    envs.push(("CREDBRIDGE_LISTEN", &listen));
    envs.push(("CREDBRIDGE_TOKEN", "service-link-token-0123456789"));
    let mut child = spawn(&envs, &["serve"]);
    wait_until_serving(port).await;
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/credentials"))
        .bearer_auth("service-link-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    child.kill().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stdout);
    assert!(
        log.contains("ignoring Kubernetes service-link variables")
            && log.contains("CREDBRIDGE_PORT_9090_TCP_ADDR"),
        "{log}"
    );

    // The configuration in force is the one without them.
    let Ran {
        output,
        stdout: with_links,
        ..
    } = run(credbridge()
        .envs(KUBERNETES_SERVICE_LINKS)
        .arg("check-config"));
    assert!(output.status.success());
    let Ran {
        stdout: without_links,
        ..
    } = run(credbridge().arg("check-config"));
    assert_eq!(with_links, without_links);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = spawn(
        &[("CREDBRIDGE_TOKEN", "json-log-token-0123456789")],
        &["serve", "--log-format", "json", "--listen", &listen],
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next_line().await.unwrap().expect("a log line");
    let line: serde_json::Value = serde_json::from_str(&first).expect("JSON log line");
    assert_eq!(line["level"], "INFO");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn sighup_reloads_the_tokens_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credbridge.toml");
    std::fs::write(&config, "token = \"before-reload-token-0123\"\n").unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config_arg = config.display().to_string();
    let mut child = spawn(
        &[],
        &["--config", &config_arg, "serve", "--listen", &listen],
    );
    wait_until_serving(port).await;
    let base = format!("http://127.0.0.1:{port}/api/v1/credentials");
    let status = |token: &'static str| {
        let base = base.clone();
        async move {
            reqwest::Client::new()
                .get(&base)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("before-reload-token-0123").await, 200);
    let pid = child.id().unwrap().to_string();
    let hangup = || {
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
    };
    let answers = |token: &'static str, expected: u16, what: &'static str| {
        let status = &status;
        eventually(Duration::from_secs(20), what, move || async move {
            (status(token).await == expected).then_some(())
        })
    };

    // A file that no longer parses cannot say what the operator meant: the token in
    // force stays.
    std::fs::write(&config, "token = \"unterminated\n").unwrap();
    hangup();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status("before-reload-token-0123").await, 200);

    // A file that parses applies entry by entry: a token too short to accept is left out,
    // and the token no longer listed is revoked, leaving none.
    std::fs::write(&config, "token = \"short\"\n").unwrap();
    hangup();
    answers(
        "before-reload-token-0123",
        401,
        "SIGHUP: the old token is revoked",
    )
    .await;

    std::fs::write(&config, "token = \"after-reload-token-0123\"\n").unwrap();
    hangup();
    answers(
        "after-reload-token-0123",
        200,
        "SIGHUP: the new token applies",
    )
    .await;
    assert_eq!(status("before-reload-token-0123").await, 401);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn plain_http_on_a_non_loopback_address_is_warned_about() {
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let mut child = spawn(
        &[("CREDBRIDGE_TOKEN", "warning-test-token-0123456789")],
        &["serve", "--listen", &listen],
    );
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let warned = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if line.contains("plain HTTP on a non-loopback address") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(warned, Ok(true), "no warning about plain HTTP on 0.0.0.0");
    child.kill().await.unwrap();
}

#[test]
fn check_config_applies_the_backends_own_rules() {
    let Ran { output, stderr, .. } = run(credbridge()
        .arg("check-config")
        .env("CREDBRIDGE_TOKEN", "backend-check-token-0123")
        .env("CREDBRIDGE_BACKEND__KIND", "vault")
        .env("CREDBRIDGE_BACKEND__MOUNT", "a//b")
        .env("VAULT_TOKEN", "vault-token-never-printed"));
    assert!(!output.status.success());
    assert!(
        stderr.contains("backend") && stderr.contains("mount"),
        "{stderr}"
    );
    assert!(!stderr.contains("vault-token-never-printed"));

    let Ran { output, stderr, .. } = run(credbridge()
        .arg("check-config")
        .env("CREDBRIDGE_TOKEN", "backend-check-token-0123")
        .env("CREDBRIDGE_BACKEND__KIND", "aws")
        .env("CREDBRIDGE_BACKEND__RECOVERY_WINDOW_DAYS", "3"));
    assert!(!output.status.success());
    assert!(stderr.contains("recovery_window_days"), "{stderr}");
}

#[tokio::test]
async fn serve_starts_while_vault_is_unreachable_and_says_why_it_is_not_ready() {
    let (port, vault_port) = (free_port(), free_port());
    let listen = format!("127.0.0.1:{port}");
    let vault = format!("http://127.0.0.1:{vault_port}");
    let mut child = spawn(
        &[
            ("CREDBRIDGE_TOKEN", "vault-down-token-0123456789"),
            ("CREDBRIDGE_BACKEND__KIND", "vault"),
            ("CREDBRIDGE_BACKEND__ADDRESS", &vault),
            ("VAULT_TOKEN", "vault-token-never-printed"),
        ],
        &["serve", "--listen", &listen],
    );
    wait_until_serving(port).await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not connected to Vault yet"),
        "{body}"
    );
    child.kill().await.unwrap();
    let stdout = all_stdout(&mut child).await;
    assert!(
        stdout.contains("connecting to Vault in the background"),
        "{stdout}"
    );
    assert!(stdout.contains("credbridge is serving"), "{stdout}");
    assert!(!stdout.contains("vault-token-never-printed"), "{stdout}");
}

#[test]
fn serve_fails_at_once_on_a_vault_configuration_mistake() {
    let Ran { output, stderr, .. } = run(credbridge()
        .arg("serve")
        .env("CREDBRIDGE_TOKEN", "vault-mistake-token-0123456789")
        .env("CREDBRIDGE_BACKEND__KIND", "vault")
        .env("CREDBRIDGE_BACKEND__ADDRESS", "vault.internal:8200")
        .env("VAULT_TOKEN", "vault-token-never-printed"));
    assert!(!output.status.success());
    assert!(stderr.contains("address"), "{stderr}");
}

#[test]
fn the_test_suites_variables_are_not_settings() {
    let Ran { output, stderr, .. } = run(credbridge()
        .arg("check-config")
        .env("CREDBRIDGE_TEST_AWS_ENDPOINT", "http://127.0.0.1:5000")
        .env("CREDBRIDGE_TEST_VAULT_ADDR", "http://127.0.0.1:8200"));
    assert!(output.status.success(), "{stderr}");
}
