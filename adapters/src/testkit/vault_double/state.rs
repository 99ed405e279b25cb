//! What the Vault double remembers: tokens, KV v2 secrets, Kubernetes roles, counters.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::testkit::random_hex;

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub accessor: String,
    /// `None`: never expires (like a root token).
    pub ttl: Option<Duration>,
    /// Renewals never extend the token past this, counted from issue.
    pub max_ttl: Option<Duration>,
    pub renewable: bool,
    pub issued: SystemTime,
    pub issued_at: Instant,
    pub expires_at: Option<Instant>,
    /// The auth mount that issued it (`token` for tokens made by the double itself).
    pub issuer: String,
}

impl Token {
    pub fn alive(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    /// Whole seconds left, rounded up: 0 would mean "never expires" to a client.
    pub fn ttl_seconds(&self, now: Instant) -> u64 {
        self.expires_at.map_or(0, |at| {
            let left = at.saturating_duration_since(now);
            left.as_secs() + u64::from(left.subsec_nanos() > 0)
        })
    }
}

/// One KV v2 key: its latest version number and data.
#[derive(Debug, Clone)]
pub(crate) struct Versioned {
    pub version: u64,
    pub data: Map<String, Value>,
    pub created_time: String,
}

/// A Kubernetes auth role: the one service-account JWT it accepts.
#[derive(Debug, Clone)]
pub(crate) struct KubernetesRole {
    pub jwt: String,
    pub ttl: Duration,
}

/// Everything the double remembers.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub tokens: HashMap<String, Token>,
    /// path under `secret/` → secret
    pub secrets: BTreeMap<String, Versioned>,
    /// (auth mount, role) → role
    pub kubernetes: HashMap<(String, String), KubernetesRole>,
    /// auth mount → successful logins
    pub logins: HashMap<String, usize>,
    pub renewals: usize,
}

impl State {
    /// Issues a token of `ttl` (renewable up to ten times that when `renewable`).
    pub fn issue(&mut self, ttl: Option<Duration>, renewable: bool, issuer: &str) -> String {
        let token = format!("hvs.{}", random_hex(12));
        let now = Instant::now();
        self.tokens.insert(
            token.clone(),
            Token {
                accessor: random_hex(12),
                ttl,
                max_ttl: ttl.map(|ttl| ttl * 10),
                renewable,
                issued: SystemTime::now(),
                issued_at: now,
                expires_at: ttl.map(|ttl| now + ttl),
                issuer: issuer.to_owned(),
            },
        );
        token
    }
}

/// A UUID-shaped random id, as Vault's `request_id`.
pub(crate) fn request_id() -> String {
    let hex = random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// RFC 3339 in UTC with nanoseconds, as Vault writes `created_time`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    // Howard Hinnant's days-to-civil.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:09}Z",
        since.subsec_nanos()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_a_known_instant() {
        let time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(time), "2023-11-14T22:13:20.000000000Z");
    }
}
