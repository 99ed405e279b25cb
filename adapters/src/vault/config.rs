//! `[backend] kind = "vault"`: where Vault is, which KV mount, and how to log in.
//!
//! Parses without the `vault` feature (no vaultrs types here), so a config for a binary
//! built without Vault fails with "not compiled in" rather than a parse error.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{BackendInfo, Capabilities, SecretText};

/// `[backend] kind = "vault"`: the KV engine, version 1 or 2, of HashiCorp Vault or OpenBao.
///
/// Every key has an environment form, `CREDBRIDGE_BACKEND__<KEY>` (nested tables with
/// `__`, e.g. `CREDBRIDGE_BACKEND__AUTH__METHOD`). `address`, the static token,
/// `namespace` and `tls.ca_cert` fall back to Vault's own `VAULT_ADDR`, `VAULT_TOKEN`,
/// `VAULT_NAMESPACE` and `VAULT_CACERT`; a value set here wins.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// `https://vault.example:8200`; default `VAULT_ADDR`, then `http://127.0.0.1:8200`.
    pub address: Option<String>,
    /// The KV engine's mount path, without slashes.
    pub mount: String,
    /// Folder under the mount that holds credbridge's secrets: `{mount}/{path_prefix}/{scope}/{id}`.
    pub path_prefix: String,
    /// `auto` asks Vault once at start-up which version the mount is; `1` or `2` force it.
    pub kv_version: KvVersion,
    /// A namespace (Vault Enterprise, OpenBao); default `VAULT_NAMESPACE`.
    pub namespace: Option<String>,
    pub auth: VaultAuth,
    pub tls: VaultTls,
    /// How long to wait for a TCP (and TLS) connection to Vault.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one request to Vault may take, connection included.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl VaultConfig {
    /// The Vault backend's `kind` and what it can do, known before it connects (and in a
    /// build without the `vault` feature).
    pub const INFO: BackendInfo = BackendInfo {
        kind: "vault",
        capabilities: Capabilities {
            persistent: true,
            shared: true,
        },
    };
}

impl Default for VaultConfig {
    fn default() -> Self {
        Self {
            address: None,
            mount: "secret".to_owned(),
            path_prefix: "credbridge".to_owned(),
            kv_version: KvVersion::Auto,
            namespace: None,
            auth: VaultAuth::default(),
            tls: VaultTls::default(),
            connect_timeout: Duration::from_secs(5),
            // Below credbridge's 8 s request timeout, so a slow Vault is reported as the
            // backend being unavailable, with a retry, rather than as a request timeout.
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Which KV engine version the mount runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KvVersion {
    /// Ask Vault (`sys/internal/ui/mounts/<mount>`) once at start-up.
    #[default]
    Auto,
    V1,
    V2,
}

impl Serialize for KvVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            KvVersion::Auto => serializer.serialize_str("auto"),
            KvVersion::V1 => serializer.serialize_u8(1),
            KvVersion::V2 => serializer.serialize_u8(2),
        }
    }
}

/// Accepts `"auto"`, `1`, `2`, `"1"` and `"2"`: TOML users write a number, environment
/// variables may arrive as either.
impl<'de> Deserialize<'de> for KvVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KvVersionVisitor;

        impl Visitor<'_> for KvVersionVisitor {
            type Value = KvVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\", 1 or 2")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<KvVersion, E> {
                match value {
                    "auto" => Ok(KvVersion::Auto),
                    "1" => Ok(KvVersion::V1),
                    "2" => Ok(KvVersion::V2),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<KvVersion, E> {
                match value {
                    1 => Ok(KvVersion::V1),
                    2 => Ok(KvVersion::V2),
                    other => Err(E::invalid_value(de::Unexpected::Unsigned(other), &self)),
                }
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<KvVersion, E> {
                match u64::try_from(value) {
                    Ok(value) => self.visit_u64(value),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Signed(value), &self)),
                }
            }
        }

        deserializer.deserialize_any(KvVersionVisitor)
    }
}

/// `[backend.auth]`: how credbridge gets its Vault token, tagged on `method`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum VaultAuth {
    /// A token given to credbridge: `token`, or `token_file`, or `VAULT_TOKEN`.
    Token(TokenAuth),
    /// AppRole: a role id and a secret id; credbridge logs in, renews and logs in again.
    Approle(AppRoleAuth),
    /// Kubernetes: the pod's service-account JWT, exchanged for a token.
    Kubernetes(KubernetesAuth),
}

impl VaultAuth {
    /// The key that picks the method.
    pub const TAG: &'static str = "method";
    /// Every method, as written in configuration.
    pub const METHODS: [&'static str; 3] = ["token", "approle", "kubernetes"];
}

impl Default for VaultAuth {
    fn default() -> Self {
        VaultAuth::Token(TokenAuth::default())
    }
}

/// `method = "token"`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenAuth {
    /// The token itself; default `VAULT_TOKEN`.
    pub token: Option<SecretText>,
    /// A file holding the token (as Vault Agent writes it); re-read when it changes.
    pub token_file: Option<PathBuf>,
}

/// `method = "approle"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppRoleAuth {
    pub role_id: String,
    /// The secret id; or `secret_id_file`, read at every login so it can be rotated.
    #[serde(default)]
    pub secret_id: Option<SecretText>,
    #[serde(default)]
    pub secret_id_file: Option<PathBuf>,
    /// Where the AppRole auth method is mounted.
    #[serde(default = "default_approle_mount")]
    pub mount: String,
}

/// `method = "kubernetes"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAuth {
    /// The Vault role bound to this pod's service account.
    pub role: String,
    /// The service-account token, read at every login (Kubernetes rotates it).
    #[serde(default = "default_jwt_path")]
    pub jwt_path: PathBuf,
    /// Where the Kubernetes auth method is mounted.
    #[serde(default = "default_kubernetes_mount")]
    pub mount: String,
}

fn default_approle_mount() -> String {
    "approle".to_owned()
}

fn default_kubernetes_mount() -> String {
    "kubernetes".to_owned()
}

fn default_jwt_path() -> PathBuf {
    PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
}

/// `[backend.tls]`: how to trust Vault and, optionally, prove who credbridge is.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultTls {
    /// PEM bundle of the CAs that sign Vault's certificate; default `VAULT_CACERT`.
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate, for Vault listeners that require one; needs `client_key`.
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    pub client_key: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<VaultConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn an_empty_table_is_kv_auto_on_secret_with_the_credbridge_prefix() {
        let config = parse("").unwrap();
        assert_eq!(config, VaultConfig::default());
        assert_eq!(config.mount, "secret");
        assert_eq!(config.path_prefix, "credbridge");
        assert_eq!(config.kv_version, KvVersion::Auto);
    }

    #[test]
    fn every_key_parses() {
        let config = parse(
            r#"
            address = "https://vault.example:8200"
            mount = "kv"
            path_prefix = "apps/credbridge"
            kv_version = 1
            namespace = "team-a"
            connect_timeout = "2s"
            request_timeout = "1m"
            [auth]
            method = "approle"
            role_id = "r-1"
            secret_id_file = "/run/secret-id"
            mount = "approle-prod"
            [tls]
            ca_cert = "/etc/ca.pem"
            client_cert = "/etc/cert.pem"
            client_key = "/etc/key.pem"
            "#,
        )
        .unwrap();
        assert_eq!(config.kv_version, KvVersion::V1);
        assert_eq!(config.request_timeout, Duration::from_secs(60));
        assert!(matches!(config.auth, VaultAuth::Approle(ref a) if a.mount == "approle-prod"));
        assert_eq!(config.tls.ca_cert, Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn kv_version_accepts_auto_numbers_and_numeric_strings() {
        for (text, version) in [
            ("\"auto\"", KvVersion::Auto),
            ("1", KvVersion::V1),
            ("2", KvVersion::V2),
            ("\"2\"", KvVersion::V2),
        ] {
            let config = parse(&format!("kv_version = {text}")).unwrap();
            assert_eq!(config.kv_version, version, "{text}");
        }
        assert!(parse("kv_version = 3").is_err());
    }

    #[test]
    fn kubernetes_defaults_to_the_pod_service_account_token() {
        let config = parse("[auth]\nmethod = \"kubernetes\"\nrole = \"credbridge\"").unwrap();
        let VaultAuth::Kubernetes(auth) = config.auth else {
            panic!("not kubernetes")
        };
        assert_eq!(auth.mount, "kubernetes");
        assert_eq!(
            auth.jwt_path,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
        );
    }

    #[test]
    fn every_listed_method_parses_and_only_those() {
        let tables = [
            ("token", ""),
            ("approle", "role_id = \"r\"\nsecret_id = \"s\""),
            ("kubernetes", "role = \"r\""),
        ];
        assert_eq!(VaultAuth::METHODS, tables.map(|(method, _)| method));
        for (method, rest) in tables {
            parse(&format!(
                "[auth]\n{} = \"{method}\"\n{rest}",
                VaultAuth::TAG
            ))
            .unwrap();
        }
    }

    #[test]
    fn unknown_keys_and_methods_are_refused() {
        assert!(parse("adress = \"x\"").is_err());
        assert!(parse("[auth]\nmethod = \"token\"\ntokne = \"x\"").is_err());
        assert!(parse("[auth]\nmethod = \"ldap\"").is_err());
    }

    #[test]
    fn debug_redacts_tokens_and_secret_ids() {
        let config =
            parse("[auth]\nmethod = \"approle\"\nrole_id = \"r\"\nsecret_id = \"s3cr3t-id-value\"")
                .unwrap();
        let token = parse("[auth]\nmethod = \"token\"\ntoken = \"hvs.t0ken-value\"").unwrap();
        let printed = format!("{config:?} {token:?}");
        assert!(!printed.contains("s3cr3t-id-value"), "{printed}");
        assert!(!printed.contains("hvs.t0ken-value"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
