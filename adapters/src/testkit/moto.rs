//! AWS Secrets Manager peers: moto, which `tests/run` starts and names in
//! `CREDBRIDGE_TEST_AWS_ENDPOINT`, and the existing secrets references point to there.

use std::sync::Arc;

use super::references::{ExistingEntries, ReferencePeer};
use super::{random_hex, unique_scope};
use crate::aws::{AwsBackend, AwsConfig};
use crate::{Backend, Key};

/// moto's endpoint, `http://127.0.0.1:<port>`.
pub fn endpoint() -> String {
    std::env::var("CREDBRIDGE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CREDBRIDGE_TEST_AWS_ENDPOINT is not set: run tests/run, which starts moto \
             (the AWS Secrets Manager emulator) and sets it"
        )
    })
}

/// A configuration for moto under a name prefix of its own: moto's state is shared by the
/// whole run.
pub fn moto_config() -> AwsConfig {
    AwsConfig {
        region: Some("us-east-1".to_owned()),
        endpoint_url: Some(endpoint()),
        name_prefix: format!("test/{}/", unique_scope()),
        ..AwsConfig::default()
    }
}

/// The AWS backend for `config`, a [`moto_config`] changed where a test needs it.
pub async fn connect(config: &AwsConfig) -> Arc<dyn Backend> {
    match AwsBackend::connect(config).await {
        Ok(backend) => Arc::new(backend),
        Err(error) => panic!("cannot set up the AWS backend for moto: {error}"),
    }
}

/// AWS Secrets Manager on moto, deletes keeping the recovery window.
pub async fn backend() -> Arc<dyn Backend> {
    connect(&moto_config()).await
}

/// The same, deleting without a recovery window.
pub async fn force_delete_backend() -> Arc<dyn Backend> {
    connect(&AwsConfig {
        force_delete_without_recovery: true,
        ..moto_config()
    })
    .await
}

/// A Secrets Manager client for moto, as an operator's tools would use it.
pub async fn client() -> aws_sdk_secretsmanager::Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let config = aws_sdk_secretsmanager::config::Builder::from(&shared)
        .endpoint_url(endpoint())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// The existing secrets of moto that references point to, named `existing/<random>/…`,
/// written as another team's tools would.
pub struct AwsEntries {
    client: aws_sdk_secretsmanager::Client,
    area: String,
    /// The `name_prefix` of the backend the entries are read by.
    own_prefix: String,
}

impl AwsEntries {
    pub async fn new(own_prefix: &str) -> Self {
        Self {
            client: client().await,
            area: format!("existing/{}", random_hex(6)),
            own_prefix: own_prefix.to_owned(),
        }
    }

    /// The secret's name.
    pub fn name(&self, name: &str) -> String {
        format!("{}/{name}", self.area)
    }

    /// Writes the secret `name` as the string `text`, replacing what was there.
    pub async fn write_text(&self, name: &str, text: &str) {
        let secret = self.name(name);
        let created = self
            .client
            .create_secret()
            .name(&secret)
            .secret_string(text)
            .send()
            .await;
        if let Err(error) = created {
            let exists = error
                .as_service_error()
                .is_some_and(|error| error.is_resource_exists_exception());
            assert!(exists, "create {secret}: {error:?}");
            self.client
                .put_secret_value()
                .secret_id(&secret)
                .secret_string(text)
                .send()
                .await
                .unwrap_or_else(|error| panic!("put {secret}: {error:?}"));
        }
    }

    /// Creates the secret `name` holding `bytes` as binary data.
    pub async fn write_binary(&self, name: &str, bytes: &[u8]) {
        self.client
            .create_secret()
            .name(self.name(name))
            .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(bytes))
            .send()
            .await
            .unwrap_or_else(|error| panic!("create binary {name}: {error:?}"));
    }

    /// The secret's full ARN, as AWS made it.
    pub async fn arn(&self, name: &str) -> String {
        let described = self
            .client
            .describe_secret()
            .secret_id(self.name(name))
            .send()
            .await
            .unwrap_or_else(|error| panic!("describe {name}: {error:?}"));
        described.arn.expect("an ARN")
    }

    /// Deletes the secret with a recovery window: it stays, scheduled for deletion.
    pub async fn schedule_deletion(&self, name: &str) {
        self.client
            .delete_secret()
            .secret_id(self.name(name))
            .recovery_window_in_days(7)
            .send()
            .await
            .unwrap_or_else(|error| panic!("delete {name}: {error:?}"));
    }
}

#[async_trait::async_trait]
impl ExistingEntries for AwsEntries {
    async fn write(&self, name: &str, fields: serde_json::Value) {
        self.write_text(name, &fields.to_string()).await;
    }

    async fn remove(&self, name: &str) {
        self.client
            .delete_secret()
            .secret_id(self.name(name))
            .force_delete_without_recovery(true)
            .send()
            .await
            .unwrap_or_else(|error| panic!("delete {name}: {error:?}"));
    }

    async fn read(&self, name: &str) -> Option<serde_json::Value> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(self.name(name))
            .send()
            .await
            .ok()?;
        serde_json::from_str(output.secret_string()?).ok()
    }

    fn reference(&self, name: &str, key: &str) -> String {
        format!("ref+awssecrets://{}#{key}", self.name(name))
    }

    fn pattern(&self) -> String {
        format!("{}/*", self.area)
    }

    fn own_reference(&self, key: &Key, field: &str) -> String {
        format!(
            "ref+awssecrets://{}{}/{}#{field}",
            self.own_prefix, key.scope, key.id
        )
    }
}

/// AWS Secrets Manager on moto, and existing secrets beside credbridge's prefix.
pub async fn references() -> ReferencePeer {
    let config = moto_config();
    ReferencePeer {
        backend: connect(&config).await,
        entries: Arc::new(AwsEntries::new(&config.name_prefix).await),
    }
}
