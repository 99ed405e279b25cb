//! The clock check: AWS refuses requests signed more than five minutes away from its own
//! clock, so with the AWS backend this machine's clock is compared with the `Date` of an
//! answer from the configured Secrets Manager endpoint.

use std::time::Duration;
#[cfg(feature = "aws")]
use std::time::SystemTime;

use credbridge_adapters::BackendConfig;

#[cfg(feature = "aws")]
use super::backend::{error_chain, fix_for, human};
use super::report::Check;
use crate::config::Settings;

/// AWS refuses a request signed more than this far from its own clock.
#[cfg(feature = "aws")]
const AWS_SKEW_LIMIT: Duration = Duration::from_secs(5 * 60);
/// Beyond this, the clock is drifting towards that limit.
#[cfg(feature = "aws")]
const SKEW_WARNING: Duration = Duration::from_secs(60);

/// Compares this machine's clock with the `Date` of an answer from the configured Secrets
/// Manager endpoint. Only AWS signs requests with the time; other backends skip it.
pub(super) async fn check(settings: &Settings, timeout: Duration) -> Check {
    const NAME: &str = "clock";
    #[cfg(feature = "aws")]
    if let BackendConfig::Aws(config) = &settings.backend {
        return match credbridge_adapters::aws::secrets_manager_endpoint(config).await {
            Ok(endpoint) => against(&endpoint, timeout).await,
            Err(error) => Check::fail(
                NAME,
                format!("cannot tell the Secrets Manager endpoint: {error}"),
                fix_for(&error, settings),
            ),
        };
    }
    let _ = timeout;
    match &settings.backend {
        BackendConfig::Aws(_) => Check::skip(NAME, "the aws backend is not compiled in"),
        other => Check::skip(
            NAME,
            format!(
                "only AWS signs requests with the clock; the {} backend does not",
                other.kind()
            ),
        ),
    }
}

/// The skew against `endpoint`'s `Date` header, from the middle of the request's round trip.
#[cfg(feature = "aws")]
async fn against(endpoint: &str, timeout: Duration) -> Check {
    const NAME: &str = "clock";
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(client) => client,
        Err(error) => return Check::fail(NAME, error_chain(&error), "report this as a bug"),
    };
    let before = SystemTime::now();
    let answer = match client.get(endpoint).send().await {
        Ok(answer) => answer,
        Err(error) => {
            return Check::fail(
                NAME,
                format!(
                    "cannot reach the Secrets Manager endpoint {endpoint}: {}",
                    error_chain(&error)
                ),
                "check that the endpoint is reachable from here (proxy, VPC endpoint, \
                 firewall)",
            )
        }
    };
    let after = SystemTime::now();
    let Some(date) = answer
        .headers()
        .get(reqwest::header::DATE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| httpdate::parse_http_date(value).ok())
    else {
        return Check::warn(
            NAME,
            format!("{endpoint} answered without a Date header: the clock cannot be compared"),
            "compare this machine's clock with a trusted source (chronyc tracking, timedatectl)",
        );
    };
    let middle = before + after.duration_since(before).unwrap_or_default() / 2;
    // The header has whole seconds: the server's clock is anywhere in [date, date + 1s).
    let (direction, skew) = match date.duration_since(middle) {
        Ok(ahead) => ("behind", ahead),
        Err(behind) => (
            "ahead of",
            behind.duration().saturating_sub(Duration::from_secs(1)),
        ),
    };
    let message = format!(
        "this machine's clock is {} {direction} {endpoint}",
        human(skew)
    );
    if skew > AWS_SKEW_LIMIT {
        Check::fail(
            NAME,
            format!("{message}: AWS refuses requests signed more than 5 minutes off"),
            "synchronise this machine's clock (NTP: chrony, systemd-timesyncd)",
        )
    } else if skew > SKEW_WARNING {
        Check::warn(
            NAME,
            format!("{message}: AWS refuses requests signed more than 5 minutes off"),
            "synchronise this machine's clock (NTP: chrony, systemd-timesyncd)",
        )
    } else {
        Check::ok(NAME, format!("{message} (AWS allows 5 minutes)"))
    }
}
