//! Where a configuration's Secrets Manager requests go, resolved as the SDK resolves it, for
//! the checks that talk to the endpoint outside the SDK (`credbridge doctor`'s clock check).

use aws_config::{BehaviorVersion, ConfigLoader, Region};
use aws_sdk_secretsmanager::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};

use super::AwsConfig;
use crate::{Error, Result};

/// `backend.region`'s problem when the SDK's default chain finds no region either.
pub(super) const NO_REGION: &str =
    "no AWS region found; set it, AWS_REGION, or a region in the shared config profile";

/// Applies the configuration's profile and region to an SDK loader; every other source of
/// region (AWS_REGION, the profile's own) is the loader's default chain.
pub(super) fn locate(config: &AwsConfig, mut loader: ConfigLoader) -> ConfigLoader {
    if let Some(profile) = &config.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &config.region {
        loader = loader.region(Region::new(region.clone()));
    }
    loader
}

/// The URL Secrets Manager requests go to: `endpoint_url` when set, else
/// `AWS_ENDPOINT_URL_SECRETS_MANAGER` or `AWS_ENDPOINT_URL` (or the profile's), else the
/// region's standard endpoint (`https://secretsmanager.eu-west-1.amazonaws.com`, with the
/// partition's own suffix, FIPS and dual-stack as configured).
pub async fn secrets_manager_endpoint(config: &AwsConfig) -> Result<String> {
    if let Some(url) = &config.endpoint_url {
        return Ok(url.clone());
    }
    if let Some(url) = std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER")
        .ok()
        .filter(|url| !url.is_empty())
    {
        return Ok(url);
    }
    let shared = locate(config, aws_config::defaults(BehaviorVersion::latest()))
        .load()
        .await;
    if let Some(url) = shared.endpoint_url() {
        return Ok(url.to_owned());
    }
    let region = shared
        .region()
        .ok_or_else(|| Error::invalid_setting("backend.region", NO_REGION))?;
    endpoint_for(
        region.as_ref(),
        shared.use_fips().unwrap_or(false),
        shared.use_dual_stack().unwrap_or(false),
    )
    .await
}

async fn endpoint_for(region: &str, fips: bool, dual_stack: bool) -> Result<String> {
    let params = Params::builder()
        .region(region)
        .use_fips(fips)
        .use_dual_stack(dual_stack)
        .build()
        .map_err(|error| {
            Error::invalid_config("cannot resolve the Secrets Manager endpoint")
                .with_context("region", region)
                .with_source(error)
        })?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|error| {
            Error::invalid_config(format!(
                "cannot resolve the Secrets Manager endpoint: {error}"
            ))
            .with_context("region", region)
        })?;
    Ok(endpoint.url().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_configured_endpoint_wins() {
        let config = AwsConfig {
            region: Some("eu-west-1".to_owned()),
            endpoint_url: Some("http://127.0.0.1:5000".to_owned()),
            ..AwsConfig::default()
        };
        assert_eq!(
            secrets_manager_endpoint(&config).await.unwrap(),
            "http://127.0.0.1:5000"
        );
    }

    #[tokio::test]
    async fn a_region_resolves_to_its_partitions_endpoint() {
        for (region, fips, expected) in [
            (
                "eu-west-1",
                false,
                "https://secretsmanager.eu-west-1.amazonaws.com",
            ),
            (
                "cn-north-1",
                false,
                "https://secretsmanager.cn-north-1.amazonaws.com.cn",
            ),
            (
                "us-east-1",
                true,
                "https://secretsmanager-fips.us-east-1.amazonaws.com",
            ),
        ] {
            assert_eq!(
                endpoint_for(region, fips, false).await.unwrap(),
                expected,
                "{region}"
            );
        }
    }
}
