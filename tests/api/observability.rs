//! The observability pack (`config/prometheus/`, `config/grafana/`) against a real
//! Prometheus scraping the real binary: every PromQL expression of the rules and of the
//! dashboard evaluates, and those that should have data do, so a renamed metric or label
//! fails here rather than on an operator's dashboard.
//!
//! Prometheus is Debian's, unpacked by tests/run, which names it in
//! `CREDBRIDGE_TEST_PROMETHEUS`; the rules' own unit tests run there with promtool.

mod pack;
mod peers;

use std::time::{Duration, Instant};

use credbridge_adapters::testkit::eventually;
use pack::{Expression, Promise};
use peers::{Credbridge, Prometheus, PrometheusApi, JOB, TOKEN};
use serde_json::{json, Value};

fn every_expression() -> Vec<Expression> {
    [pack::rule_expressions(), pack::dashboard_expressions(JOB)].concat()
}

#[test]
fn every_expression_is_promql() {
    let expressions = every_expression();
    assert!(expressions.len() > 20, "{expressions:?}");
    for expression in expressions {
        if let Err(error) = pack::parse(&expression.promql) {
            panic!("{}: {}: {error}", expression.origin, expression.promql);
        }
    }
}

fn alerts() -> Vec<Value> {
    let text = std::fs::read_to_string(pack::RULES).unwrap();
    let rules: Value = serde_norway::from_str(&text).unwrap();
    rules["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .filter(|rule| rule.get("alert").is_some())
        .cloned()
        .collect()
}

#[test]
fn every_alert_has_a_severity_a_summary_and_a_runbook() {
    for alert in alerts() {
        let name = &alert["alert"];
        let severity = alert["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning"].contains(&severity),
            "{name}: severity"
        );
        assert!(
            alert["annotations"]["summary"].is_string(),
            "{name}: summary"
        );
        let description = alert["annotations"]["description"].as_str().unwrap_or("");
        assert!(
            description.len() > 200,
            "{name}: a runbook-style description"
        );
    }
}

#[test]
fn every_alert_is_unit_tested_firing_and_silent() {
    let path = pack::RULES.replace(".yml", ".test.yml");
    let tests: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|test| test["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    for alert in alerts() {
        let name = &alert["alert"];
        let expected = |firing: bool| {
            cases.iter().any(|case| {
                case["alertname"] == *name
                    && case["exp_alerts"]
                        .as_array()
                        .is_some_and(|alerts| alerts.is_empty() != firing)
            })
        };
        assert!(expected(true), "{name} is never expected to fire");
        assert!(expected(false), "{name} is never expected to stay silent");
    }
}

#[test]
fn the_readme_lists_every_alert() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let listed: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| Credbridge"))
        .map(|rest| rest.split(' ').next().unwrap_or_default())
        .collect();
    let alerts: Vec<String> = alerts()
        .iter()
        .map(|alert| {
            alert["alert"]
                .as_str()
                .unwrap()
                .trim_start_matches("Credbridge")
                .to_owned()
        })
        .collect();
    assert!(!alerts.is_empty());
    assert_eq!(
        listed, alerts,
        "README's alert table, in the rule file's order"
    );
}

#[test]
fn the_dashboard_is_importable_as_is() {
    let dashboard = pack::dashboard();
    assert!(dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36));
    assert!(dashboard["title"].is_string() && dashboard["uid"].is_string());
    assert!(
        dashboard["id"].is_null(),
        "an id is the exporting Grafana's own"
    );
    // Imported as is, the dashboard asks for its data source through a variable, rather
    // than through __inputs or the uid of a data source somewhere else.
    let variables = pack::variables(&dashboard);
    assert!(variables
        .iter()
        .any(|variable| variable["name"] == "datasource"
            && variable["type"] == "datasource"
            && variable["query"] == "prometheus"));
    assert!(dashboard.get("__inputs").is_none());
    let source = json!({ "type": "prometheus", "uid": "${datasource}" });
    for variable in variables
        .iter()
        .filter(|variable| variable["type"] == "query")
    {
        assert_eq!(
            variable["datasource"], source,
            "variable {}",
            variable["name"]
        );
    }

    let panels = pack::panels(&dashboard);
    let mut ids: Vec<u64> = panels
        .iter()
        .map(|panel| panel["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids are unique");
    for panel in panels {
        let title = &panel["title"];
        let grid = &panel["gridPos"];
        assert!(
            ["h", "w", "x", "y"].iter().all(|key| grid[key].is_u64()),
            "panel {title}: gridPos"
        );
        assert!(
            grid["x"].as_u64().unwrap() + grid["w"].as_u64().unwrap() <= 24,
            "panel {title}: fits the grid"
        );
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"], source, "panel {title}");
        let targets = panel["targets"].as_array().expect("a panel has targets");
        assert!(!targets.is_empty(), "panel {title} has a query");
        for target in targets {
            assert_eq!(target["datasource"], source, "panel {title}");
            assert!(
                target["refId"].is_string() && target["expr"].is_string(),
                "panel {title}"
            );
        }
    }
}

/// Sends every kind of request the metrics tell apart: each credential operation, each
/// probe, an unmatched path, refusals (401, 404, 422, a reference that does not resolve,
/// then 429 once the address has failed too often), and a token reload.
async fn send_every_kind_of_traffic(credbridge: &Credbridge) {
    let client = &credbridge.client;
    let base = &credbridge.base;
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };

    assert_eq!(status(client.get(base).bearer_auth(TOKEN)).await, 200);
    let mut ids = Vec::new();
    for body in [
        crate::helpers::password(),
        crate::helpers::credit_card(),
        crate::helpers::secret(),
    ] {
        let response = client
            .post(base)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let created: Value = response.json().await.unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        assert_eq!(
            status(client.get(format!("{base}/{id}")).bearer_auth(TOKEN)).await,
            200
        );
    }
    let unknown = format!("{base}/cred_00000000000000000000000000000000");
    assert_eq!(status(client.get(&unknown).bearer_auth(TOKEN)).await, 404);
    assert_eq!(
        status(
            client
                .delete(format!("{base}/{}", ids[0]))
                .bearer_auth(TOKEN)
        )
        .await,
        200
    );
    assert_eq!(
        status(client.delete(&unknown).bearer_auth(TOKEN)).await,
        200
    );
    let invalid = client
        .post(base)
        .bearer_auth(TOKEN)
        .json(&json!({"type": "nope"}));
    assert_eq!(status(invalid).await, 422);
    // A reference this bridge may not read: refused (422), and counted as a resolution
    // that failed, which CredbridgeReferencesUnresolved watches.
    let mut referencing = crate::helpers::secret();
    referencing["secret_value"] = json!("ref+vault://secret/apps/shop#password");
    let refused = client.post(base).bearer_auth(TOKEN).json(&referencing);
    assert_eq!(status(refused).await, 422);
    for probe in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(
            status(client.get(credbridge.url(probe))).await,
            200,
            "{probe}"
        );
    }
    assert_eq!(
        status(client.get(credbridge.url("/no/such/route"))).await,
        404
    );

    credbridge.sighup();
    eventually(
        Duration::from_secs(30),
        "credbridge serves after SIGHUP",
        || async { (status(client.get(base).bearer_auth(TOKEN)).await == 200).then_some(()) },
    )
    .await;

    // Last: past its failure budget, this address is refused everything with 429.
    assert_eq!(status(client.get(base)).await, 401);
    let mut refused = Vec::new();
    while refused.last() != Some(&429) && refused.len() < 10 {
        refused.push(status(client.get(base).bearer_auth("not-a-token-of-this-bridge")).await);
    }
    assert_eq!(refused.last(), Some(&429), "statuses: {refused:?}");
}

/// Everything that is not yet as it should be; empty when the pack works. `rules` is how
/// many rules the rule file holds.
async fn problems(api: &PrometheusApi, expressions: &[Expression], rules: usize) -> Vec<String> {
    let mut problems = Vec::new();
    match api.targets().await {
        Ok(targets) => {
            let ours: Vec<&Value> = targets
                .iter()
                .filter(|target| target["labels"]["job"] == JOB)
                .collect();
            if ours.is_empty() {
                problems.push("Prometheus has no credbridge target".to_owned());
            }
            for target in ours.into_iter().filter(|target| target["health"] != "up") {
                problems.push(format!(
                    "target {}: {} ({})",
                    target["scrapeUrl"], target["health"], target["lastError"]
                ));
            }
        }
        Err(error) => problems.push(format!("targets: {error}")),
    }
    match api.rules().await {
        Ok(loaded) => {
            if loaded.len() != rules {
                problems.push(format!(
                    "Prometheus loaded {} rules, the file has {rules}",
                    loaded.len()
                ));
            }
            for rule in loaded.iter().filter(|rule| rule["health"] != "ok") {
                problems.push(format!(
                    "rule {}: health {} ({})",
                    rule["name"], rule["health"], rule["lastError"]
                ));
            }
        }
        Err(error) => problems.push(format!("rules: {error}")),
    }
    for expression in expressions {
        let found = check(api, expression).await;
        problems.extend(found.into_iter().map(|problem| {
            format!(
                "{}: {problem}\n    {}",
                expression.origin, expression.promql
            )
        }));
    }
    problems
}

/// One expression: it evaluates, and it, its signals and each metric it selects (with
/// the labels it needs) have data. Data problems start with "no data".
async fn check(api: &PrometheusApi, expression: &Expression) -> Vec<String> {
    let result = match api.query(&expression.promql).await {
        Ok(result) => result,
        Err(error) => return vec![format!("does not evaluate: {error}")],
    };
    let parsed = match pack::parse(&expression.promql) {
        Ok(parsed) => parsed,
        Err(error) => return vec![format!("promql-parser cannot read it: {error}")],
    };
    let mut problems = Vec::new();
    match &expression.promise {
        Promise::Data if result.is_empty() => problems.push("no data".to_owned()),
        Promise::LabelValues(label) => {
            let has_values = result.iter().any(|series| {
                series["metric"][label]
                    .as_str()
                    .is_some_and(|value| !value.is_empty())
            });
            if !has_values {
                problems.push(format!("no data: label {label} has no values"));
            }
        }
        Promise::Signal => {
            for signal in pack::signals(&parsed) {
                let signal = signal.to_string();
                match api.query(&signal).await {
                    Ok(series) if series.is_empty() => {
                        problems.push(format!("no data for the signal {signal}"))
                    }
                    Ok(_) => {}
                    Err(error) => problems.push(format!("signal {signal}: {error}")),
                }
            }
        }
        Promise::Data => {}
    }
    for selected in pack::selected(&parsed) {
        let labelled = |series: &Value| {
            selected.labels.iter().all(|label| {
                series["metric"][label]
                    .as_str()
                    .is_some_and(|v| !v.is_empty())
            })
        };
        match api.query(&selected.promql()).await {
            Ok(series) if series.iter().any(labelled) => {}
            Ok(_) => problems.push(format!(
                "no data: no series of {} carries the labels {:?}",
                selected.metric, selected.labels
            )),
            Err(error) => problems.push(format!("{}: {error}", selected.promql())),
        }
    }
    problems
}

#[tokio::test(flavor = "multi_thread")]
async fn every_rule_and_dashboard_expression_evaluates_on_scraped_metrics() {
    let credbridge = Credbridge::start().await;
    let prometheus = Prometheus::start(&credbridge.address).await;
    send_every_kind_of_traffic(&credbridge).await;

    let rules = pack::rule_expressions().len();
    let expressions = every_expression();
    // Scrapes and rule evaluations come every second; on a loaded machine, later.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let problems = problems(&prometheus.api, &expressions, rules).await;
        if problems.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            panic!(
                "{} problems with the observability pack:\n{}\n\ncredbridge's log, last lines:\n{}\nPrometheus's log, last lines:\n{}",
                problems.len(),
                problems.join("\n"),
                last_lines(&credbridge.log()),
                last_lines(&prometheus.log())
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn last_lines(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
