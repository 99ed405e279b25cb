//! The Secrets Manager client: built once from credbridge's configuration and the SDK's
//! default chain (credentials, region, profile), with bounded timeouts and retries.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_secretsmanager::config::SharedCredentialsProvider;
use aws_sdk_secretsmanager::Client;

use super::endpoint::{locate, NO_REGION};
use super::AwsConfig;
use crate::{Error, Result};

/// The first retry waits at most this long; later ones double it, up to [`MAX_BACKOFF`],
/// and `operation_timeout` bounds them all.
const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The client for `config`, and the region it signs for. Does no I/O towards Secrets
/// Manager.
pub async fn sdk_client(config: &AwsConfig) -> Result<(Client, Region)> {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(config.connect_timeout)
                .operation_attempt_timeout(config.attempt_timeout)
                .operation_timeout(config.operation_timeout)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(config.max_attempts)
                .with_initial_backoff(INITIAL_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        );
    let mut shared = locate(config, loader).load().await;
    let Some(region) = shared.region().cloned() else {
        return Err(Error::invalid_setting("backend.region", NO_REGION));
    };
    if let Some(role_arn) = &config.role_arn {
        let mut role = AssumeRoleProvider::builder(role_arn)
            .session_name(&config.role_session_name)
            .configure(&shared);
        if let Some(external_id) = &config.role_external_id {
            role = role.external_id(external_id);
        }
        let provider = role.build().await;
        shared = shared
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
    }
    let mut client_config = aws_sdk_secretsmanager::config::Builder::from(&shared);
    // Only Secrets Manager goes to the configured endpoint: STS, for an assumed role,
    // keeps its own.
    if let Some(endpoint_url) = &config.endpoint_url {
        client_config = client_config.endpoint_url(endpoint_url);
    }
    Ok((Client::from_conf(client_config.build()), region))
}
