//! The observability pack as shipped: every PromQL expression of the rules and of the
//! dashboard, read from the files themselves (the tests never repeat one), with what each
//! must show on a healthy credbridge that has seen traffic.

use std::collections::BTreeSet;

use promql_parser::parser::{self, Expr};
use serde::Deserialize;
use serde_json::Value;

pub const RULES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/prometheus/credbridge-rules.yml"
);
pub const PROMETHEUS_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/prometheus/prometheus.yml"
);
pub const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/grafana/credbridge-dashboard.json"
);

/// What an expression promises once credbridge has served traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Promise {
    /// A recording rule or a dashboard query: its result has data.
    Data,
    /// An alert: silent on a healthy credbridge, but what it compares with its threshold
    /// has data (see [`signals`]).
    Signal,
    /// A dashboard variable, `label_values(selector, label)`: `label` has values.
    LabelValues(String),
}

#[derive(Debug, Clone)]
pub struct Expression {
    /// Where it is: `alert CredbridgeNotScraped`, `panel "Requests" query A`, ...
    pub origin: String,
    /// What Prometheus evaluates: the expression as written in its file, with Grafana's
    /// variables in place.
    pub promql: String,
    pub promise: Promise,
}

#[derive(Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
}

/// Every rule of the rule file.
pub fn rule_expressions() -> Vec<Expression> {
    let text = std::fs::read_to_string(RULES).expect("the rule file");
    let file: RuleFile = serde_norway::from_str(&text).expect("the rule file is YAML");
    file.groups
        .into_iter()
        .flat_map(|group| group.rules)
        .map(|rule| {
            let (origin, promise) = match (rule.record, rule.alert) {
                (Some(record), None) => (format!("recording rule {record}"), Promise::Data),
                (None, Some(alert)) => (format!("alert {alert}"), Promise::Signal),
                _ => panic!("a rule is a recording rule or an alert: {}", rule.expr),
            };
            let written = rule.expr.trim().to_owned();
            Expression {
                origin,
                promql: written,
                promise,
            }
        })
        .collect()
}

pub fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every panel, those inside collapsed rows included.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, into: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            into.push(panel);
            walk(&panel["panels"], into);
        }
    }
    let mut all = Vec::new();
    walk(&dashboard["panels"], &mut all);
    all
}

pub fn variables(dashboard: &Value) -> &[Value] {
    dashboard["templating"]["list"]
        .as_array()
        .map_or(&[], Vec::as_slice)
}

/// Every query of the dashboard's panels and variables, for a dashboard showing `job`.
pub fn dashboard_expressions(job: &str) -> Vec<Expression> {
    let dashboard = dashboard();
    let mut expressions = Vec::new();
    for panel in panels(&dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let written = target["expr"]
                .as_str()
                .expect("a Prometheus target has an expr");
            expressions.push(Expression {
                origin: format!("panel {} query {}", panel["title"], target["refId"]),
                promql: grafana_substitute(written, job).unwrap(),
                promise: Promise::Data,
            });
        }
    }
    for variable in variables(&dashboard) {
        if variable["type"] != "query" {
            continue;
        }
        // Grafana keeps the query as a string, or as an object holding it.
        let query = &variable["query"];
        let written = query
            .as_str()
            .or_else(|| query["query"].as_str())
            .expect("a query variable has a query");
        let (selector, label) = label_values(written)
            .unwrap_or_else(|| panic!("only label_values(selector, label) is handled: {written}"));
        let selector = grafana_substitute(selector, job).unwrap();
        expressions.push(Expression {
            origin: format!("variable {}", variable["name"]),
            promql: format!("count by ({label}) ({selector})"),
            promise: Promise::LabelValues(label.to_owned()),
        });
    }
    expressions
}

/// `label_values(selector, label)` as its selector and label.
fn label_values(query: &str) -> Option<(&str, &str)> {
    let arguments = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = arguments.rsplit_once(',')?;
    Some((selector.trim(), label.trim()))
}

/// `expr` with the values Grafana puts in place of its variables when the dashboard shows
/// `job`, all instances, over its default time range; an error names any other variable,
/// so a new one cannot slip into the dashboard untested.
pub fn grafana_substitute(expr: &str, job: &str) -> Result<String, String> {
    // Grafana's $__rate_interval is four scrape intervals at least; 1m for the default
    // 15 s scrape interval. `.+` is the instance variable's "All" value.
    let values = [("__rate_interval", "1m"), ("job", job), ("instance", ".+")];
    let mut text = expr.to_owned();
    for (name, value) in values {
        text = text
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    match text.find('$') {
        None => Ok(text),
        Some(at) => Err(format!(
            "unknown Grafana variable at {:?} in {expr}",
            &text[at..]
        )),
    }
}

pub fn parse(promql: &str) -> Result<Expr, String> {
    parser::parse(promql)
}

/// What an alert compares with its threshold: the expression without its comparisons
/// with a number, split at `and` and `or`; `absent(x)` stands for `x`. On a healthy
/// credbridge the alert is silent, but each of these has data; if one had none, the alert
/// could never fire.
pub fn signals(expr: &Expr) -> Vec<Expr> {
    match expr {
        Expr::Paren(paren) => signals(&paren.expr),
        Expr::Binary(binary) => {
            let returns_bool = binary
                .modifier
                .as_ref()
                .is_some_and(|modifier| modifier.return_bool);
            if binary.op.is_comparison_operator() && !returns_bool {
                match (is_number(&binary.lhs), is_number(&binary.rhs)) {
                    (false, true) => return signals(&binary.lhs),
                    (true, false) => return signals(&binary.rhs),
                    _ => {}
                }
            }
            match binary.op.to_string().as_str() {
                "and" | "or" => [signals(&binary.lhs), signals(&binary.rhs)].concat(),
                "unless" => signals(&binary.lhs),
                _ => vec![expr.clone()],
            }
        }
        Expr::Call(call) if call.func.name == "absent" => signals(&call.args.args[0]),
        _ => vec![expr.clone()],
    }
}

fn is_number(expr: &Expr) -> bool {
    match expr {
        Expr::NumberLiteral(_) => true,
        Expr::Paren(paren) => is_number(&paren.expr),
        Expr::Unary(unary) => is_number(&unary.expr),
        _ => false,
    }
}

/// A metric an expression selects, and the labels it needs that metric to carry: those
/// its matchers test, and those every aggregation around it groups by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Selected {
    pub metric: String,
    pub labels: BTreeSet<String>,
}

impl Selected {
    /// A query whose every series carries `labels` when the metric does.
    pub fn promql(&self) -> String {
        let labels = self.labels.iter().cloned().collect::<Vec<_>>().join(", ");
        format!("count by ({labels}) ({{__name__={:?}}})", self.metric)
    }
}

pub fn selected(expr: &Expr) -> BTreeSet<Selected> {
    fn walk(expr: &Expr, grouped_by: &BTreeSet<String>, into: &mut BTreeSet<Selected>) {
        match expr {
            Expr::Aggregate(aggregate) => {
                let mut grouped_by = grouped_by.clone();
                if let Some(parser::LabelModifier::Include(labels)) = &aggregate.modifier {
                    grouped_by.extend(labels.labels.iter().cloned());
                }
                walk(&aggregate.expr, &grouped_by, into);
                if let Some(param) = &aggregate.param {
                    walk(param, &BTreeSet::new(), into);
                }
            }
            Expr::Unary(unary) => walk(&unary.expr, grouped_by, into),
            Expr::Binary(binary) => {
                walk(&binary.lhs, grouped_by, into);
                walk(&binary.rhs, grouped_by, into);
            }
            Expr::Paren(paren) => walk(&paren.expr, grouped_by, into),
            Expr::Subquery(subquery) => walk(&subquery.expr, grouped_by, into),
            Expr::VectorSelector(selector) => {
                into.insert(selection(selector, grouped_by));
            }
            Expr::MatrixSelector(matrix) => {
                into.insert(selection(&matrix.vs, grouped_by));
            }
            Expr::Call(call) => {
                for argument in &call.args.args {
                    walk(argument, grouped_by, into);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }
    fn selection(selector: &parser::VectorSelector, grouped_by: &BTreeSet<String>) -> Selected {
        let matchers = &selector.matchers.matchers;
        let metric = selector
            .name
            .clone()
            .or_else(|| {
                matchers
                    .iter()
                    .find(|matcher| matcher.name == "__name__")
                    .map(|matcher| matcher.value.clone())
            })
            .expect("every selector names its metric");
        let mut labels = grouped_by.clone();
        labels.extend(
            matchers
                .iter()
                .filter(|matcher| matcher.name != "__name__")
                .map(|matcher| matcher.name.clone()),
        );
        Selected { metric, labels }
    }
    let mut all = BTreeSet::new();
    walk(expr, &BTreeSet::new(), &mut all);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(exprs: Vec<Expr>) -> Vec<String> {
        exprs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn an_alerts_signals_are_its_expression_without_thresholds() {
        let expr = parse("job:ratio > 0.05").unwrap();
        assert_eq!(texts(signals(&expr)), ["job:ratio"]);
        let expr = parse("x > 0 and x < 900").unwrap();
        assert_eq!(texts(signals(&expr)), ["x", "x"]);
        let expr = parse(r#"up{job="a"} == 0 or absent(up{job="a"})"#).unwrap();
        assert_eq!(texts(signals(&expr)), [r#"up{job="a"}"#, r#"up{job="a"}"#]);
        let expr = parse("(sum by (a) (rate(x[5m]))) > (2)").unwrap();
        assert_eq!(texts(signals(&expr)), ["sum by (a) (rate(x[5m]))"]);
        // A comparison of two series, or one returning bool, is itself the signal.
        let expr = parse("x > y").unwrap();
        assert_eq!(texts(signals(&expr)), ["x > y"]);
        let expr = parse("x > bool 1").unwrap();
        assert_eq!(texts(signals(&expr)), ["x > bool 1"]);
    }

    #[test]
    fn a_selected_metric_needs_its_matched_and_grouped_labels() {
        let expr = parse(
            r#"histogram_quantile(0.9, sum by (le, job) (rate(h_bucket{route!~"/a|/b"}[5m]))) / on () group_left count(up)"#,
        )
        .unwrap();
        let labels = |names: &[&str]| names.iter().map(|name| name.to_string()).collect();
        assert_eq!(
            selected(&expr).into_iter().collect::<Vec<_>>(),
            [
                Selected {
                    metric: "h_bucket".into(),
                    labels: labels(&["job", "le", "route"]),
                },
                Selected {
                    metric: "up".into(),
                    labels: labels(&[]),
                },
            ]
        );
        let selected = Selected {
            metric: "m".into(),
            labels: labels(&["a", "b"]),
        };
        assert_eq!(selected.promql(), r#"count by (a, b) ({__name__="m"})"#);
    }

    #[test]
    fn grafana_variables_are_replaced_and_unknown_ones_refused() {
        assert_eq!(
            grafana_substitute(
                r#"rate(x{job="$job", instance=~"${instance}"}[$__rate_interval])"#,
                "cb"
            )
            .unwrap(),
            r#"rate(x{job="cb", instance=~".+"}[1m])"#
        );
        let error = grafana_substitute("rate(x[$__range])", "cb").unwrap_err();
        assert!(error.contains("$__range"), "{error}");
    }

    #[test]
    fn label_values_queries_split_into_selector_and_label() {
        assert_eq!(
            label_values(r#"label_values(m{job="$job", a=~"x,y"}, instance)"#),
            Some((r#"m{job="$job", a=~"x,y"}"#, "instance"))
        );
        assert_eq!(label_values("query_result(up)"), None);
    }
}
