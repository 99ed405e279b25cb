use async_trait::async_trait;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use aws_sdk_secretsmanager::Client;
use zeroize::Zeroize;

use super::client::sdk_client;
use super::config::DeletePolicy;
use super::error::{
    create_error, delete_failure, describe_error, get_error, list_error, DeleteFailure,
};
use super::AwsConfig;
use crate::{
    Backend, BackendInfo, CredentialId, Document, Error, ErrorKind, Key, ReferenceTarget,
    ReferencedEntry, Result, Scope,
};

/// Credentials as AWS Secrets Manager secrets, one per key, named
/// `{name_prefix}{scope}/{id}`, holding the document's JSON as the secret string.
///
/// One SDK client, shared by every request; it pools connections, caches credentials and
/// refreshes them (an assumed role included) on its own.
#[derive(Debug)]
pub struct AwsBackend {
    client: Client,
    names: SecretNames,
    tags: Vec<Tag>,
    kms_key_id: Option<String>,
    delete_policy: DeletePolicy,
}

impl AwsBackend {
    /// AWS's limit on a secret's description.
    const MAX_DESCRIPTION_CHARS: usize = 2048;
    /// ListSecrets' largest page.
    const LIST_PAGE_SIZE: i32 = 100;
    /// Builds the client from `config` and the SDK's default chain. Does no I/O towards
    /// Secrets Manager: an outage at start-up shows in the readiness probe, and the service
    /// recovers when AWS does.
    pub async fn connect(config: &AwsConfig) -> Result<Self> {
        config.validate()?;
        let (client, region) = sdk_client(config).await?;

        let (managed_by_key, managed_by_value) = AwsConfig::MANAGED_BY_TAG;
        let tags = std::iter::once((managed_by_key, managed_by_value))
            .chain(
                config
                    .tags
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect();
        tracing::debug!(
            name_prefix = %config.name_prefix,
            region = ?region,
            endpoint_url = ?config.endpoint_url,
            assumes_role = config.role_arn.is_some(),
            "aws secrets manager client ready"
        );
        Ok(Self {
            client,
            names: SecretNames::new(&config.name_prefix),
            tags,
            kms_key_id: config.kms_key_id.clone(),
            delete_policy: config.delete_policy(),
        })
    }
}

#[async_trait]
impl Backend for AwsBackend {
    fn info(&self) -> BackendInfo {
        AwsConfig::INFO
    }

    /// `CreateSecret`, which never overwrites: an existing name is `ResourceExists`.
    async fn put(&self, key: &Key, document: &Document) -> Result<()> {
        let name = self.names.name(key);
        let mut request = self
            .client
            .create_secret()
            .name(&name)
            .secret_string(document.to_json())
            .set_tags(Some(self.tags.clone()))
            .set_kms_key_id(self.kms_key_id.clone());
        if let Some(description) = description(document) {
            request = request.description(description);
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| create_error(error, &name))
    }

    async fn get(&self, key: &Key) -> Result<Document> {
        let name = self.names.name(key);
        let output = self
            .client
            .get_secret_value()
            .secret_id(&name)
            .send()
            .await
            .map_err(|error| get_error(error, &name))?;
        let Some(mut text) = output.secret_string else {
            return Err(Error::new(
                ErrorKind::Unexpected,
                "the secret holds binary data, not a credential's JSON",
            )
            .with_context("secret", &name));
        };
        let parsed = Document::from_json(&text);
        text.zeroize();
        // serde_json's message may quote the text it choked on, which is the secret: only
        // the position is kept.
        parsed.map_err(|error| {
            Error::new(
                ErrorKind::Unexpected,
                "the secret's string is not a JSON object; was it written by credbridge?",
            )
            .with_context("secret", &name)
            .with_context("position", format!("{}:{}", error.line(), error.column()))
        })
    }

    /// `DeleteSecret` with the configured policy; an absent or already scheduled secret
    /// counts as deleted. AWS refuses a second delete of a scheduled secret with
    /// `InvalidRequestException`, which it also uses for other states: only then is
    /// `DescribeSecret` asked whether the secret has a `DeletedDate`.
    async fn delete(&self, key: &Key) -> Result<()> {
        let name = self.names.name(key);
        let request = self.client.delete_secret().secret_id(&name);
        let request = match self.delete_policy {
            DeletePolicy::RecoveryWindow { days } => {
                request.recovery_window_in_days(i64::from(days))
            }
            DeletePolicy::Immediate => request.force_delete_without_recovery(true),
        };
        let refused = match request.send().await {
            Ok(_) => return Ok(()),
            Err(error) => match delete_failure(error, &name) {
                DeleteFailure::Gone => return Ok(()),
                DeleteFailure::Failed(error) => return Err(error),
                DeleteFailure::Invalid(error) => error,
            },
        };
        match self.client.describe_secret().secret_id(&name).send().await {
            Ok(described) if described.deleted_date().is_some() => Ok(()),
            Ok(_) => Err(refused),
            Err(error) => match describe_error(error, &name) {
                // Gone for good since the delete: nothing left to delete.
                error if error.kind() == ErrorKind::NotFound => Ok(()),
                error => Err(error),
            },
        }
    }

    /// `ListSecrets` with a name filter, page by page. AWS's name filter is a prefix match
    /// that ignores case, so each name is checked again here, exactly.
    async fn list(&self, scope: &Scope) -> Result<Vec<CredentialId>> {
        let prefix = self.names.scope_prefix(scope);
        let mut ids = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .client
                .list_secrets()
                .filters(name_filter(&prefix))
                .max_results(Self::LIST_PAGE_SIZE)
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|error| list_error(error, &prefix))?;
            ids.extend(
                page.secret_list()
                    .iter()
                    // Secrets in their recovery window count as deleted.
                    .filter(|entry| entry.deleted_date().is_none())
                    .filter_map(|entry| self.names.id_in_scope(scope, entry.name()?)),
            );
            next_token = page.next_token;
            if next_token.is_none() {
                break;
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Names (or ARNs whose name part) start with `name_prefix`, compared without case as
    /// AWS's own name filter does; with an empty prefix, names shaped like the ones
    /// credbridge makes (`<scope>/<id>`).
    fn owns(&self, target: &ReferenceTarget) -> bool {
        match target {
            ReferenceTarget::AwsSecrets(id) => self.names.may_be_own(id.name()),
            ReferenceTarget::Vault { .. } => false,
        }
    }

    /// `GetSecretValue` by the name or ARN the reference gives.
    async fn read_reference(&self, target: &ReferenceTarget) -> Result<ReferencedEntry> {
        let ReferenceTarget::AwsSecrets(id) = target else {
            return Err(Error::invalid_config(
                "the AWS Secrets Manager backend reads ref+awssecrets references only",
            )
            .with_context("reference", target));
        };
        if self.owns(target) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "the reference names credbridge's own storage, which no reference may read",
            )
            .with_context("reference", target));
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(id.as_str())
            .send()
            .await
            .map_err(|error| get_error(error, id.as_str()))?;
        Ok(match (output.secret_string, output.secret_binary) {
            (Some(text), _) => ReferencedEntry::from_text(text),
            (None, Some(_)) => ReferencedEntry::binary(),
            (None, None) => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    "Secrets Manager answered with neither a string nor binary data",
                )
                .with_context("secret", id.as_str()))
            }
        })
    }

    /// One `ListSecrets` of at most one secret under the prefix: proves the endpoint
    /// answers and the identity is allowed to list.
    async fn check(&self) -> Result<()> {
        let prefix = self.names.prefix.clone();
        let mut request = self.client.list_secrets().max_results(1);
        if !prefix.is_empty() {
            request = request.filters(name_filter(&prefix));
        }
        request
            .send()
            .await
            .map(|_| ())
            .map_err(|error| list_error(error, &prefix))
    }
}

/// The secret's description: the credential's name, which is a label, not a secret.
fn description(document: &Document) -> Option<String> {
    let name = document.get("name")?.as_str()?;
    Some(
        name.chars()
            .take(AwsBackend::MAX_DESCRIPTION_CHARS)
            .collect(),
    )
}

fn name_filter(prefix: &str) -> Filter {
    Filter::builder()
        .key(FilterNameStringType::Name)
        .values(prefix)
        .build()
}

/// Where a key lives in Secrets Manager: `{name_prefix}{scope}/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretNames {
    prefix: String,
}

impl SecretNames {
    fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The name every secret of `scope` starts with. The one place names are made: scope
    /// and id are already restricted to `[A-Za-z0-9_-]`, so the `/` after the scope is
    /// the only separator, and one scope's prefix never starts another's.
    fn scope_prefix(&self, scope: &Scope) -> String {
        format!("{}{}/", self.prefix, scope)
    }

    fn name(&self, key: &Key) -> String {
        let mut name = self.scope_prefix(&key.scope);
        name.push_str(key.id.as_str());
        name
    }

    /// Whether `name` may be one of credbridge's secrets: it starts with the prefix
    /// (without case), or, with no prefix, it is `<scope>/<id>`.
    fn may_be_own(&self, name: &str) -> bool {
        if self.prefix.is_empty() {
            return name.split_once('/').is_some_and(|(scope, id)| {
                Scope::parse(scope).is_ok() && CredentialId::parse(id).is_ok()
            });
        }
        name.len() >= self.prefix.len()
            && name.as_bytes()[..self.prefix.len()].eq_ignore_ascii_case(self.prefix.as_bytes())
    }

    /// The id of a secret `name` in `scope`, or `None` when the name is not one credbridge
    /// made for that scope.
    fn id_in_scope(&self, scope: &Scope, name: &str) -> Option<CredentialId> {
        let id = name.strip_prefix(&self.scope_prefix(scope))?;
        CredentialId::parse(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(scope: &str, id: &str) -> Key {
        Key::new(
            Scope::parse(scope).unwrap(),
            CredentialId::parse(id).unwrap(),
        )
    }

    #[test]
    fn names_are_prefix_scope_slash_id() {
        let names = SecretNames::new("credbridge/");
        assert_eq!(
            names.name(&key("default", "cred_0a")),
            "credbridge/default/cred_0a"
        );
        assert_eq!(SecretNames::new("").name(&key("team-a", "x")), "team-a/x");
        assert_eq!(
            SecretNames::new("prod/skyvern/").name(&key("s", "i")),
            "prod/skyvern/s/i"
        );
    }

    #[test]
    fn ids_come_back_from_names_of_their_scope_only() {
        let names = SecretNames::new("credbridge/");
        let team = Scope::parse("team").unwrap();
        let made = names.name(&key("team", "cred_1"));
        assert_eq!(
            names.id_in_scope(&team, &made),
            Some(CredentialId::parse("cred_1").unwrap())
        );
        for foreign in [
            "credbridge/teams/cred_1",
            "credbridge/Team/cred_1",
            "CREDBRIDGE/team/cred_1",
            "credbridge/team/",
            "credbridge/team/a/b",
            "other/team/cred_1",
            "credbridge/team/cred.1",
        ] {
            assert_eq!(names.id_in_scope(&team, foreign), None, "{foreign}");
        }
    }

    #[test]
    fn own_names_are_those_under_the_prefix_in_any_case() {
        let names = SecretNames::new("credbridge/");
        for own in ["credbridge/default/cred_1", "CredBridge/x", "credbridge/"] {
            assert!(names.may_be_own(own), "{own}");
        }
        for foreign in ["credbridge", "credbridge-refs/x", "apps/credbridge/x"] {
            assert!(!names.may_be_own(foreign), "{foreign}");
        }
        let bare = SecretNames::new("");
        assert!(bare.may_be_own("team-a/cred_0123-AbCdEf"));
        assert!(!bare.may_be_own("apps/team-a/smtp"));
        assert!(!bare.may_be_own("smtp"));
    }

    #[test]
    fn a_scope_prefix_never_starts_another_scope() {
        let names = SecretNames::new("p/");
        let short = names.scope_prefix(&Scope::parse("ab").unwrap());
        let long = names.name(&key("abc", "id"));
        assert!(!long.starts_with(&short));
    }

    #[test]
    fn description_is_the_credential_name_when_a_string() {
        let document = |value| match value {
            serde_json::Value::Object(fields) => Document::new(fields),
            _ => unreachable!("test documents are objects"),
        };
        assert_eq!(
            description(&document(json!({"name": "shop", "password": "p"}))),
            Some("shop".to_owned())
        );
        assert_eq!(description(&document(json!({"name": 3}))), None);
        assert_eq!(description(&document(json!({}))), None);
        let long = "n".repeat(5000);
        assert_eq!(
            description(&document(json!({ "name": long }))).map(|text| text.len()),
            Some(2048)
        );
    }
}
