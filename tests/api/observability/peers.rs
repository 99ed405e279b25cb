//! The two processes of the end-to-end test, each on a free loopback port with its files
//! in a temporary directory, each killed when dropped: the credbridge binary with metrics
//! on behind a scrape token, and a real Prometheus scraping it with the shipped
//! configuration and rules.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use super::pack;
use crate::binary::{credbridge, free_port};

pub const TOKEN: &str = "observability-test-token-0123456789";
pub const SCRAPE_TOKEN: &str = "observability-scrape-token-0123456789";
/// The job name of the shipped scrape configuration.
pub const JOB: &str = "credbridge";

/// Where tests/run unpacked Debian's prometheus package.
const PROMETHEUS_VARIABLE: &str = "CREDBRIDGE_TEST_PROMETHEUS";

/// A child process whose output goes to a file, read back when something fails.
struct Process {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Self { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it holds; fails with the process's log if it exits or does not
    /// get there in a generous time.
    async fn wait_until<F, Fut>(&mut self, what: &str, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready().await {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({status}) before {what}; its log:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} not {what} after 60 s; its log:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub struct Credbridge {
    process: Process,
    pub address: String,
    pub base: String,
    pub client: reqwest::Client,
    _dir: TempDir,
}

impl Credbridge {
    /// The memory backend, metrics behind [`SCRAPE_TOKEN`], and an address budget of three
    /// failed authentications, so a few bad requests reach a 429.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("credbridge.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"{address}\"\n\
                 token = \"{TOKEN}\"\n\
                 [metrics]\nenabled = true\ntoken = \"{SCRAPE_TOKEN}\"\n\
                 [rate_limit]\nauth_failures_burst = 3\nauth_failures_per_minute = 1\n"
            ),
        )
        .unwrap();
        let mut command = Command::from(credbridge(Path::new(env!("CARGO_MANIFEST_DIR"))));
        command.arg("--config").arg(&config).arg("serve");
        let mut process = Process::spawn("credbridge", command, dir.path().join("credbridge.log"));
        let client = reqwest::Client::new();
        let health = format!("http://{address}/healthz");
        process
            .wait_until("serving", || {
                let request = client.get(&health).send();
                async move { request.await.is_ok() }
            })
            .await;
        Self {
            process,
            base: format!("http://{address}/api/v1/credentials"),
            address,
            client,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Asks the process to reload its tokens, as an operator does after a change.
    pub fn sighup(&self) {
        let pid = self
            .process
            .child
            .id()
            .expect("credbridge runs")
            .to_string();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -HUP {pid}");
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}

pub struct Prometheus {
    process: Process,
    pub api: PrometheusApi,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus from the shipped configuration, changed only where a test must:
    /// the target's address, the scrape token file's path, the rule file's absolute path,
    /// and one-second scrape and evaluation intervals.
    pub async fn start(target: &str) -> Self {
        let binary = std::env::var_os(PROMETHEUS_VARIABLE).unwrap_or_else(|| {
            panic!(
                "{PROMETHEUS_VARIABLE} is not set: run tests/run, which fetches Prometheus \
                 and sets it"
            )
        });
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("credbridge-metrics-token");
        std::fs::write(&token_file, SCRAPE_TOKEN).unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, test_config(target, &token_file).to_string()).unwrap();
        let address = format!("127.0.0.1:{}", free_port());

        let mut command = Command::new(&binary);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn");
        let mut process = Process::spawn("prometheus", command, dir.path().join("prometheus.log"));
        let api = PrometheusApi {
            client: reqwest::Client::new(),
            base: format!("http://{address}"),
        };
        let ready = format!("{}/-/ready", api.base);
        process
            .wait_until("ready", || {
                let request = api.client.get(&ready).send();
                async move {
                    request
                        .await
                        .is_ok_and(|response| response.status().is_success())
                }
            })
            .await;
        Self {
            process,
            api,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// The shipped configuration, as JSON (which Prometheus reads as YAML), pointed at `target`.
fn test_config(target: &str, token_file: &Path) -> Value {
    let text = std::fs::read_to_string(pack::PROMETHEUS_CONFIG).unwrap();
    let mut config: Value = serde_norway::from_str(&text).expect("prometheus.yml is YAML");
    config["global"] = json!({
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    });
    config["rule_files"] = json!([pack::RULES]);
    let job = config["scrape_configs"]
        .as_array_mut()
        .and_then(|jobs| jobs.iter_mut().find(|job| job["job_name"] == JOB))
        .expect("prometheus.yml has the credbridge scrape job");
    assert!(
        job["authorization"]["credentials_file"].is_string(),
        "the scrape job reads the scrape token from a file"
    );
    job["authorization"]["credentials_file"] = json!(token_file);
    job["static_configs"] = json!([{ "targets": [target] }]);
    config
}

pub struct PrometheusApi {
    client: reqwest::Client,
    base: String,
}

impl PrometheusApi {
    /// An instant query now: the result's series (a scalar counts as one), or
    /// Prometheus's error.
    pub async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let body = self.get("/api/v1/query", &[("query", promql)]).await?;
        let result = &body["data"]["result"];
        match body["data"]["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(result.as_array().cloned().unwrap_or_default()),
            _ => Ok(vec![result.clone()]),
        }
    }

    /// `/api/v1/rules`: the rules Prometheus loaded, with the health of their last
    /// evaluation.
    pub async fn rules(&self) -> Result<Vec<Value>, String> {
        let body = self.get("/api/v1/rules", &[]).await?;
        Ok(body["data"]["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .collect())
    }

    /// `/api/v1/targets`: the active targets, with their health and last error.
    pub async fn targets(&self) -> Result<Vec<Value>, String> {
        let body = self.get("/api/v1/targets", &[("state", "active")]).await?;
        Ok(body["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        let body: Value = response
            .json()
            .await
            .map_err(|error| format!("{path}: {error}"))?;
        if body["status"] == "success" {
            Ok(body)
        } else {
            Err(format!("{}: {}", body["errorType"], body["error"]))
        }
    }
}
