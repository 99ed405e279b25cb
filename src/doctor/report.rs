//! What `doctor` found: one [`Check`] per line, as text for people and JSON for scripts.

use serde::Serialize;

/// A check's verdict. Only [`Status::Fail`] makes the doctor exit non-zero: a warning is
/// something to look at (a certificate expiring in ten days, a host Skyvern's
/// `ALLOWED_HOSTS` must list) that does not stop the deployment from working today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not run: it does not apply, or what it needs failed first.
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, for scripts: `config`, `backend`, `probe`, `login`, `tls`, `clock`,
    /// `skyvern-url`, `skyvern-token`, `skyvern-allowed-hosts`.
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub message: String,
    /// What to do, for a warning or a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Self::new(name, Status::Ok, message, None)
    }

    pub fn skip(name: &'static str, message: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, message, None)
    }

    pub fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, message, Some(fix.into()))
    }

    pub fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, message, Some(fix.into()))
    }

    fn new(
        name: &'static str,
        status: Status,
        message: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            name,
            status,
            message: message.into(),
            fix,
        }
    }
}

/// Every check, in the order run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    passed: bool,
    checks: &'a [Check],
}

impl Report {
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// True when no check failed (warnings and skips pass).
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.status != Status::Fail)
    }

    fn count(&self, status: Status) -> usize {
        self.checks
            .iter()
            .filter(|check| check.status == status)
            .count()
    }

    /// One line per check, then a line of totals.
    pub fn to_text(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|check| check.name.len())
            .max()
            .unwrap_or(0);
        let mut text = String::new();
        for check in &self.checks {
            text.push_str(&format!(
                "{:<4}  {:<width$}  {}",
                check.status.label(),
                check.name,
                check.message
            ));
            if let Some(fix) = &check.fix {
                text.push_str(&format!(" -> {fix}"));
            }
            text.push('\n');
        }
        text.push_str(&format!(
            "doctor: failed {}, warnings {}, ok {}, skipped {}\n",
            self.count(Status::Fail),
            self.count(Status::Warn),
            self.count(Status::Ok),
            self.count(Status::Skip),
        ));
        text
    }

    /// `{"passed": bool, "checks": [{"name", "status", "message", "fix"?}]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&JsonReport {
            passed: self.passed(),
            checks: &self.checks,
        })
        .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_pass_and_failures_do_not() {
        let mut report = Report::default();
        report.push(Check::ok("config", "loaded"));
        report.push(Check::warn("tls", "expires soon", "renew it"));
        report.push(Check::skip("clock", "not AWS"));
        assert!(report.passed());
        report.push(Check::fail("backend", "unreachable", "check the address"));
        assert!(!report.passed());
    }

    #[test]
    fn text_is_one_line_per_check_with_the_fix_then_totals() {
        let mut report = Report::default();
        report.push(Check::ok("config", "loaded"));
        report.push(Check::fail("backend", "unreachable", "check the address"));
        assert_eq!(
            report.to_text(),
            "ok    config   loaded\n\
             FAIL  backend  unreachable -> check the address\n\
             doctor: failed 1, warnings 0, ok 1, skipped 0\n"
        );
    }

    #[test]
    fn json_has_the_verdict_and_every_check() {
        let mut report = Report::default();
        report.push(Check::warn("tls", "expires soon", "renew it"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["passed"], true);
        assert_eq!(json["checks"][0]["name"], "tls");
        assert_eq!(json["checks"][0]["status"], "warn");
        assert_eq!(json["checks"][0]["fix"], "renew it");
    }
}
