//! Request budgets: per token, and per client address for requests without a valid token.
//!
//! A token over its budget gets 429 until it refills. An address that keeps failing
//! authentication gets 429 for every request, whatever token it presents next, until its
//! failure budget refills: guessing tokens becomes slow, and the guesser cannot tell a
//! right guess from a wrong one while blocked.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use dashmap::DashMap;
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
    blocked_until: DashMap<IpAddr, Instant>,
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
            blocked_until: DashMap::new(),
        })
    }

    /// Refuses an address that is serving a block for failed authentication.
    pub fn check_address(&self, address: IpAddr) -> Result<(), Duration> {
        let Some(until) = self.blocked_until.get(&address).map(|entry| *entry) else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            return Err(until - now);
        }
        self.blocked_until.remove(&address);
        Ok(())
    }

    /// Counts a failed authentication; past the budget, blocks the address.
    pub fn record_failure(&self, address: IpAddr) -> Result<(), Duration> {
        match self.failures.check_key(&address) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.blocked_until.insert(address, Instant::now() + wait);
                Err(wait)
            }
        }
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
        let now = Instant::now();
        self.blocked_until.retain(|_, until| *until > now);
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
    fn repeated_failures_block_the_address_but_not_others() {
        let limits = limits(2);
        let (bad, good) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        assert!(limits.record_failure(bad).is_ok());
        assert!(limits.record_failure(bad).is_ok());
        assert!(limits.check_address(bad).is_ok());
        assert!(limits.record_failure(bad).is_err());
        assert!(limits.check_address(bad).is_err());
        assert!(limits.check_address(good).is_ok());
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
