//! `[backend] kind = "aws"`: the AWS Secrets Manager backend's options.
//!
//! Parses whether or not the `aws` feature is compiled in, so this file never touches the
//! SDK: it holds plain values and the checks that need no network.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{BackendInfo, Capabilities, CredentialId, Error, Result, Scope};

/// `[backend] kind = "aws"`: AWS Secrets Manager.
///
/// Credentials and region come from the SDK's default chain (environment, shared profile,
/// web identity / IRSA, container and instance metadata); every key here is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// Region, instead of `AWS_REGION` or the profile's region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// A named profile of the shared config files, instead of `AWS_PROFILE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Secrets Manager's endpoint, for an emulator or a VPC endpoint. Applies to Secrets
    /// Manager only, so an assumed role still reaches STS at its usual address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// A role to assume with the credentials of the default chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// The session name of the assumed role, as shown in CloudTrail.
    pub role_session_name: String,
    /// The external id the role's trust policy may demand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_external_id: Option<String>,
    /// Every secret's name starts with this: `{name_prefix}{scope}/{id}`. The IAM policy
    /// scopes credbridge to it. Empty, or ending with `/`.
    pub name_prefix: String,
    /// The KMS key that encrypts new secrets; AWS's managed key `aws/secretsmanager` when
    /// absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Tags added to every secret credbridge creates, besides `managed-by = credbridge`.
    pub tags: BTreeMap<String, String>,
    /// Days a deleted secret stays recoverable (7 to 30); 7 when neither this nor
    /// `force_delete_without_recovery` is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_window_days: Option<u8>,
    /// Deletes at once, with no way back. Excludes `recovery_window_days`.
    pub force_delete_without_recovery: bool,
    /// Time allowed to open a connection to the endpoint.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed for one attempt of a call.
    #[serde(with = "humantime_serde")]
    pub attempt_timeout: Duration,
    /// Time allowed for a whole call, retries and backoff included. Below the service's
    /// `http.request_timeout` (8 s by default), so an outage answers "backend unavailable"
    /// rather than a generic timeout.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// Attempts per call, the first included; throttling and transient failures are
    /// retried with exponential backoff, within `operation_timeout`.
    pub max_attempts: u32,
}

impl Default for AwsConfig {
    fn default() -> Self {
        Self {
            region: None,
            profile: None,
            endpoint_url: None,
            role_arn: None,
            role_session_name: AwsConfig::DEFAULT_SESSION_NAME.to_owned(),
            role_external_id: None,
            name_prefix: AwsConfig::DEFAULT_NAME_PREFIX.to_owned(),
            kms_key_id: None,
            tags: BTreeMap::new(),
            recovery_window_days: None,
            force_delete_without_recovery: false,
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(3),
            operation_timeout: Duration::from_secs(6),
            max_attempts: 3,
        }
    }
}

/// What `delete` asks of Secrets Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletePolicy {
    /// Schedule the deletion; the secret can be restored for this many days.
    RecoveryWindow { days: u8 },
    /// Delete at once, without recovery.
    Immediate,
}

impl AwsConfig {
    /// The AWS backend's `kind` and what it can do, known before it connects (and in a
    /// build without the `aws` feature).
    pub const INFO: BackendInfo = BackendInfo {
        kind: "aws",
        capabilities: Capabilities {
            persistent: true,
            shared: true,
        },
    };
    pub const DEFAULT_NAME_PREFIX: &'static str = "credbridge/";
    pub const DEFAULT_SESSION_NAME: &'static str = "credbridge";
    /// The tag every secret credbridge creates carries, so they can be found and audited.
    pub const MANAGED_BY_TAG: (&'static str, &'static str) = ("managed-by", "credbridge");
    /// AWS's bounds on a recovery window.
    pub const RECOVERY_WINDOW_DAYS: std::ops::RangeInclusive<u8> = 7..=30;
    /// The window used when none is configured: AWS's shortest.
    pub const DEFAULT_RECOVERY_WINDOW_DAYS: u8 = 7;
    /// AWS's limit on a secret name.
    const MAX_SECRET_NAME_LEN: usize = 512;
    /// AWS allows 50 tags per secret; one is `managed-by`.
    const MAX_CONFIGURED_TAGS: usize = 49;

    /// The delete policy in force: a 7-day recovery window unless told otherwise.
    pub fn delete_policy(&self) -> DeletePolicy {
        if self.force_delete_without_recovery {
            DeletePolicy::Immediate
        } else {
            DeletePolicy::RecoveryWindow {
                days: self
                    .recovery_window_days
                    .unwrap_or(Self::DEFAULT_RECOVERY_WINDOW_DAYS),
            }
        }
    }

    /// Checks what types alone cannot; every error names its key.
    pub fn validate(&self) -> Result<()> {
        let invalid = |key: &str, problem: &str| {
            Err(Error::invalid_setting(
                format_args!("backend.{key}"),
                problem,
            ))
        };
        if !self.name_prefix.bytes().all(is_secret_name_byte) {
            return invalid(
                "name_prefix",
                "may contain only ASCII letters, digits and / _ + = . @ -",
            );
        }
        // Scopes are plain names, so without a closing '/' two prefixes can meet in one
        // name: prefix "a" with scope "bc" and prefix "ab" with scope "c" both make "abc/…".
        if !self.name_prefix.is_empty() && !self.name_prefix.ends_with('/') {
            return invalid(
                "name_prefix",
                "must be empty or end with '/', so that no other deployment's prefix and \
                 scope can name the same secrets (\"a\" with scope \"bc\" and \"ab\" with \
                 scope \"c\" would both make \"abc/…\")",
            );
        }
        // The longest name credbridge can make must still be a valid secret name.
        if self.name_prefix.len() + Scope::MAX_LEN + 1 + CredentialId::MAX_LEN
            > Self::MAX_SECRET_NAME_LEN
        {
            return invalid("name_prefix", "is too long for 512-character secret names");
        }
        if self.force_delete_without_recovery && self.recovery_window_days.is_some() {
            return invalid(
                "recovery_window_days",
                "cannot be combined with force_delete_without_recovery",
            );
        }
        if let Some(days) = self.recovery_window_days {
            if !Self::RECOVERY_WINDOW_DAYS.contains(&days) {
                return invalid("recovery_window_days", "must be between 7 and 30");
            }
        }
        if self.tags.len() > Self::MAX_CONFIGURED_TAGS {
            return invalid("tags", "at most 49 tags (AWS allows 50, one is managed-by)");
        }
        for (key, value) in &self.tags {
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return invalid(
                    "tags",
                    "tag keys are 1 to 128 characters, values at most 256",
                );
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return invalid("tags", "tag keys starting with 'aws:' are reserved by AWS");
            }
            if key == Self::MANAGED_BY_TAG.0 {
                return invalid("tags", "'managed-by' is set by credbridge");
            }
        }
        for (key, value) in [
            ("region", &self.region),
            ("profile", &self.profile),
            ("endpoint_url", &self.endpoint_url),
            ("role_arn", &self.role_arn),
            ("role_external_id", &self.role_external_id),
            ("kms_key_id", &self.kms_key_id),
        ] {
            if value.as_deref().is_some_and(|text| text.trim().is_empty()) {
                return invalid(key, "is empty; remove it to use the default");
            }
        }
        if self.role_session_name.is_empty() {
            return invalid("role_session_name", "is empty");
        }
        for (key, timeout) in [
            ("connect_timeout", self.connect_timeout),
            ("attempt_timeout", self.attempt_timeout),
            ("operation_timeout", self.operation_timeout),
        ] {
            if timeout.is_zero() {
                return invalid(key, "must be above 0");
            }
        }
        if self.max_attempts == 0 {
            return invalid("max_attempts", "must be at least 1");
        }
        Ok(())
    }
}

/// The characters AWS allows in a secret name.
fn is_secret_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"/_+=.@-".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table as figment hands it over; JSON, since this crate has no TOML parser.
    fn parse(json: &str) -> AwsConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_empty_table_takes_the_defaults() {
        let config = parse("{}");
        assert_eq!(config, AwsConfig::default());
        assert_eq!(config.name_prefix, "credbridge/");
        assert_eq!(
            config.delete_policy(),
            DeletePolicy::RecoveryWindow { days: 7 }
        );
        assert!(config.operation_timeout < Duration::from_secs(8));
        config.validate().unwrap();
    }

    #[test]
    fn every_key_parses() {
        let config = parse(
            r#"{
                "region": "eu-west-1", "profile": "prod", "endpoint_url": "http://127.0.0.1:5000",
                "role_arn": "arn:aws:iam::123456789012:role/credbridge",
                "role_session_name": "bridge", "role_external_id": "ext",
                "name_prefix": "skyvern/", "kms_key_id": "alias/credbridge",
                "tags": {"team": "automation"}, "recovery_window_days": 30,
                "force_delete_without_recovery": false, "connect_timeout": "1s",
                "attempt_timeout": "2s", "operation_timeout": "5s", "max_attempts": 4
            }"#,
        );
        config.validate().unwrap();
        assert_eq!(
            config.delete_policy(),
            DeletePolicy::RecoveryWindow { days: 30 }
        );
        assert_eq!(config.operation_timeout, Duration::from_secs(5));
        assert_eq!(config.tags["team"], "automation");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = serde_json::from_str::<AwsConfig>(r#"{"regoin": "x"}"#).unwrap_err();
        assert!(error.to_string().contains("regoin"), "{error}");
    }

    #[test]
    fn force_delete_is_immediate() {
        let config = AwsConfig {
            force_delete_without_recovery: true,
            ..AwsConfig::default()
        };
        config.validate().unwrap();
        assert_eq!(config.delete_policy(), DeletePolicy::Immediate);
    }

    fn refused(config: AwsConfig, key: &str) {
        let error = config.validate().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::InvalidConfig);
        assert!(error.message().contains(key), "{error} does not name {key}");
    }

    #[test]
    fn recovery_window_is_7_to_30_days() {
        for days in [0, 6, 31] {
            refused(
                AwsConfig {
                    recovery_window_days: Some(days),
                    ..AwsConfig::default()
                },
                "backend.recovery_window_days",
            );
        }
    }

    #[test]
    fn recovery_window_and_force_delete_exclude_each_other() {
        refused(
            AwsConfig {
                recovery_window_days: Some(7),
                force_delete_without_recovery: true,
                ..AwsConfig::default()
            },
            "backend.recovery_window_days",
        );
    }

    #[test]
    fn name_prefix_is_limited_to_secret_name_characters_and_length() {
        for prefix in ["a b/", "a*/", "é/", "a?/"] {
            refused(
                AwsConfig {
                    name_prefix: prefix.to_owned(),
                    ..AwsConfig::default()
                },
                "backend.name_prefix",
            );
        }
        refused(
            AwsConfig {
                name_prefix: format!("{}/", "p".repeat(319)),
                ..AwsConfig::default()
            },
            "backend.name_prefix",
        );
        let longest = AwsConfig {
            name_prefix: format!("{}/", "p".repeat(318)),
            ..AwsConfig::default()
        };
        longest.validate().unwrap();
        let empty = AwsConfig {
            name_prefix: String::new(),
            ..AwsConfig::default()
        };
        empty.validate().unwrap();
    }

    #[test]
    fn name_prefix_must_end_with_a_slash_so_scopes_cannot_alias() {
        for prefix in ["credbridge", "prod/skyvern-", "a/b"] {
            let error = AwsConfig {
                name_prefix: prefix.to_owned(),
                ..AwsConfig::default()
            }
            .validate()
            .unwrap_err();
            assert!(
                error
                    .message()
                    .contains("backend.name_prefix: must be empty or end with '/'"),
                "{prefix}: {error}"
            );
        }
        for prefix in ["", "credbridge/", "prod/skyvern/"] {
            AwsConfig {
                name_prefix: prefix.to_owned(),
                ..AwsConfig::default()
            }
            .validate()
            .unwrap();
        }
    }

    #[test]
    fn tags_may_not_claim_managed_by_or_aws_keys() {
        for key in ["managed-by", "aws:owner", "AWS:x", ""] {
            refused(
                AwsConfig {
                    tags: [(key.to_owned(), "x".to_owned())].into(),
                    ..AwsConfig::default()
                },
                "backend.tags",
            );
        }
    }

    #[test]
    fn empty_strings_and_zero_limits_are_refused() {
        refused(
            AwsConfig {
                region: Some(" ".to_owned()),
                ..AwsConfig::default()
            },
            "backend.region",
        );
        refused(
            AwsConfig {
                operation_timeout: Duration::ZERO,
                ..AwsConfig::default()
            },
            "backend.operation_timeout",
        );
        refused(
            AwsConfig {
                max_attempts: 0,
                ..AwsConfig::default()
            },
            "backend.max_attempts",
        );
    }
}
