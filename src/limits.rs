//! Request budgets: per token, and per client address for requests without a valid token.
//!
//! A token over its budget gets 429 until it refills. An address that keeps failing
//! authentication gets 429 instead of 401 for requests without a valid token until its
//! failure budget refills. A valid token is never refused for what other requests from
//! its address did: in a sidecar deployment every process on the host shares one address,
//! and a misconfigured neighbour must not lock Skyvern out. Guessing stays hopeless
//! because tokens are long (at least 16 characters, random ones far longer), not because
//! of this budget.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Fingerprint;
use crate::config::RateLimitSettings;

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Token,
    Address,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Token => "token",
            Limit::Address => "address",
        }
    }
}

/// Every budget, shared by all requests.
pub struct RateLimits {
    per_token: DefaultKeyedRateLimiter<Fingerprint>,
    failures: DefaultKeyedRateLimiter<IpAddr>,
}

fn non_zero(value: u32) -> NonZeroU32 {
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

impl RateLimits {
    /// `None` when limits are turned off.
    pub fn new(settings: &RateLimitSettings) -> Option<Self> {
        settings.enabled.then(|| Self {
            per_token: RateLimiter::keyed(
                Quota::per_second(non_zero(settings.per_token_per_second))
                    .allow_burst(non_zero(settings.per_token_burst)),
            ),
            failures: RateLimiter::keyed(
                Quota::per_minute(non_zero(settings.auth_failures_per_minute))
                    .allow_burst(non_zero(settings.auth_failures_burst)),
            ),
        })
    }

    /// Counts a failed authentication from `address`; past its budget, says how long until
    /// the budget allows another.
    pub fn record_failure(&self, address: IpAddr) -> Result<(), Duration> {
        self.failures
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Spends one request of a token's budget.
    pub fn check_token(&self, fingerprint: Fingerprint) -> Result<(), Duration> {
        self.per_token
            .check_key(&fingerprint)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Forgets keys whose budgets are full again, so memory stays bounded by recent
    /// callers rather than every caller ever seen.
    pub fn prune(&self) {
        self.per_token.retain_recent();
        self.failures.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(burst: u32) -> RateLimits {
        RateLimits::new(&RateLimitSettings {
            enabled: true,
            per_token_per_second: 1,
            per_token_burst: burst,
            auth_failures_per_minute: 1,
            auth_failures_burst: burst,
        })
        .unwrap()
    }

    #[test]
    fn a_token_gets_its_burst_then_waits() {
        let limits = limits(3);
        let token = crate::auth::Authenticator::single(&credbridge_adapters::SecretText::new(
            "limit-token-0123456789",
        ))
        .authenticate("limit-token-0123456789")
        .unwrap()
        .fingerprint;
        for _ in 0..3 {
            assert!(limits.check_token(token).is_ok());
        }
        let wait = limits.check_token(token).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
    }

    #[test]
    fn failures_past_the_budget_are_refused_for_that_address_only() {
        let limits = limits(2);
        let (bad, other) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert!(limits.record_failure(bad).is_ok());
        assert!(limits.record_failure(bad).is_ok());
        let wait = limits.record_failure(bad).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert!(limits.record_failure(other).is_ok());
    }

    #[test]
    fn disabled_limits_are_none() {
        let settings = RateLimitSettings {
            enabled: false,
            ..RateLimitSettings::default()
        };
        assert!(RateLimits::new(&settings).is_none());
    }
}
