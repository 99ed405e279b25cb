//! OpenBao servers of a test's own, for what would disturb the tests sharing the test
//! Vault: sealing it, revoking every login, starting it after credbridge, counting the
//! logins in its audit log. The binary is the one `tests/run` installs and names in
//! `CREDBRIDGE_TEST_BAO`.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::admin::Admin;
use crate::testkit::random_hex;

/// A `bao server -dev` process: in memory, unsealed, KV v2 at `secret/`, root token
/// `root`, a file audit device. Killed when dropped.
pub struct Bao {
    child: Child,
    address: String,
    unseal_key: String,
    dir: PathBuf,
}

impl Bao {
    pub const ROOT_TOKEN: &'static str = "root";

    /// Starts a server on a free loopback port and waits until it is active.
    pub async fn start() -> Self {
        // A port chosen free can be taken before the server binds it (by another test's
        // server, whose cluster listener takes the port after its own): try another.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match Self::try_start_on(free_port()).await {
                Ok(bao) => return bao,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("OpenBao did not start:\n{}", failures.join("\n"));
    }

    /// A loopback port nothing listens on now, for a server started later.
    pub fn free_port() -> u16 {
        free_port()
    }

    /// Starts a server on `port` and waits until it is active.
    pub async fn start_on(port: u16) -> Self {
        Self::try_start_on(port)
            .await
            .unwrap_or_else(|failure| panic!("{failure}"))
    }

    async fn try_start_on(port: u16) -> Result<Self, String> {
        let binary = std::env::var("CREDBRIDGE_TEST_BAO").unwrap_or_else(|_| {
            panic!(
                "CREDBRIDGE_TEST_BAO is not set: run tests/run, which installs OpenBao and \
                 names its `bao` binary there"
            )
        });
        let dir = std::env::temp_dir().join(format!("credbridge-bao-{}", random_hex(6)));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        // The dev server takes more configuration from a file; audit devices can only be
        // declared there.
        let config = dir.join("config.hcl");
        let audit = dir.join("audit.log");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"file\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
                audit.display()
            ),
        )
        .expect("the server's configuration");
        let log = File::create(dir.join("server.log")).expect("the server's log");
        let child = Command::new(&binary)
            .arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={}", Self::ROOT_TOKEN))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-dev-no-store-token")
            .arg(format!("-config={}", config.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the server's log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {binary}: {error}"));
        let mut bao = Self {
            child,
            address: format!("http://127.0.0.1:{port}"),
            unseal_key: String::new(),
            dir,
        };
        bao.wait_until_active().await?;
        bao.unseal_key = bao
            .log()
            .lines()
            .find_map(|line| line.strip_prefix("Unseal Key: "))
            .map(|key| key.trim().to_owned())
            .ok_or_else(|| format!("no unseal key in OpenBao's output:\n{}", bao.log()))?;
        Ok(bao)
    }

    async fn wait_until_active(&mut self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let url = format!("{}/v1/sys/health", self.address);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().as_u16() == 200 && self.log().contains("Unseal Key: ") {
                    return Ok(());
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("OpenBao exited ({status}):\n{}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "OpenBao did not become active on {}:\n{}",
                    self.address,
                    self.log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Its root API.
    pub fn admin(&self) -> Admin {
        Admin::new(&self.address, Self::ROOT_TOKEN)
    }

    /// `bao operator seal`.
    pub async fn seal(&self) {
        self.admin().ok("PUT", "sys/seal", None).await;
    }

    /// `bao operator unseal` with the dev server's one key.
    pub async fn unseal(&self) {
        let answer = self
            .admin()
            .ok("PUT", "sys/unseal", Some(json!({ "key": self.unseal_key })))
            .await;
        assert_eq!(answer["sealed"], false, "{answer}");
    }

    /// Its audit log: one line per request and per response.
    pub fn audit(&self) -> AuditLog {
        AuditLog {
            path: self.dir.join("audit.log"),
        }
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A file audit device's log.
pub struct AuditLog {
    path: PathBuf,
}

impl AuditLog {
    /// Successful responses to requests on `path` (`auth/approle/login`,
    /// `auth/token/renew-self`) so far.
    pub fn successes(&self, path: &str) -> usize {
        self.successes_where(|request| request == path)
    }

    /// Successful responses to requests on paths starting with `prefix` so far.
    pub fn successes_under(&self, prefix: &str) -> usize {
        self.successes_where(|request| request.starts_with(prefix))
    }

    fn successes_where(&self, matches: impl Fn(&str) -> bool) -> usize {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| {
                entry["type"] == "response"
                    && entry["request"]["path"].as_str().is_some_and(&matches)
                    && entry.get("error").is_none_or(|error| error.is_null())
            })
            .count()
    }
}

/// A free loopback port whose successor is free too: a dev server's cluster listener
/// takes the port after its API's.
fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("the bound address").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}
