use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::api::sys::requests::ReadHealthRequest;
use vaultrs::error::ClientError;

use super::auth::{Method, SecretSource, Session};
use super::client::{exec, CapabilitiesSelf, Conn, Http, ReadMount, Target};
use super::config::{KvVersion, VaultAuth, VaultConfig};
use super::error::{classify, status, Request};
use crate::{
    Backend, BackendInfo, Capabilities, CredentialId, Document, Error, ErrorKind, Key, Result,
    Scope,
};

/// Credentials in HashiCorp Vault's KV engine, one secret per credential at
/// `{mount}/{path_prefix}/{scope}/{id}`, the credential's fields as the secret's keys.
///
/// One HTTP client and one login serve every request; see [`VaultBackend::connect`].
pub struct VaultBackend {
    session: Arc<Session>,
    layout: Layout,
}

/// Where keys live in Vault: the one mapping from [`Key`] to a Vault path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    mount: String,
    prefix: String,
    version: Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Layout {
    /// The secret's path inside the mount: `{prefix}/{scope}/{id}`.
    fn path(&self, key: &Key) -> String {
        format!("{}/{}/{}", self.prefix, key.scope, key.id)
    }

    /// The folder inside the mount holding one scope's secrets.
    fn folder(&self, scope: &Scope) -> String {
        format!("{}/{}", self.prefix, scope)
    }

    /// The full API path a policy must allow for reading and creating secrets, as
    /// `sys/capabilities-self` expects it.
    fn policy_path(&self, path: &str) -> String {
        match self.version {
            Version::V1 => format!("{}/{}", self.mount, path),
            Version::V2 => format!("{}/data/{}", self.mount, path),
        }
    }
}

/// The VAULT_* variables credbridge honours, read once in `connect`.
struct Env {
    addr: Option<String>,
    token: Option<String>,
    namespace: Option<String>,
    cacert: Option<String>,
}

impl Env {
    fn from_process() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|value: &String| !value.is_empty())
        };
        Self {
            addr: var("VAULT_ADDR"),
            token: var("VAULT_TOKEN"),
            namespace: var("VAULT_NAMESPACE"),
            cacert: var("VAULT_CACERT"),
        }
    }
}

/// The configuration with Vault's environment applied (the configuration winning).
struct Resolved {
    address: String,
    namespace: Option<String>,
    ca_cert: Option<PathBuf>,
    method: Method,
}

fn resolve(config: &VaultConfig, env: Env) -> Result<Resolved> {
    let address = config
        .address
        .clone()
        .or(env.addr)
        .unwrap_or_else(|| "http://127.0.0.1:8200".to_owned());
    let namespace = config
        .namespace
        .clone()
        .or(env.namespace)
        .map(|namespace| namespace.trim_matches('/').to_owned())
        .filter(|namespace| !namespace.is_empty());
    let ca_cert = config.tls.ca_cert.clone().or(env.cacert.map(PathBuf::from));
    let method = match &config.auth {
        VaultAuth::Token(auth) => match (&auth.token, &auth.token_file) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_config(
                    "set one of `auth.token` and `auth.token_file`, not both",
                ))
            }
            (Some(token), None) => Method::Static(token.clone()),
            (None, Some(path)) => Method::TokenFile(path.clone()),
            (None, None) => match env.token {
                Some(token) => Method::Static(crate::SecretText::new(token)),
                None => {
                    return Err(Error::invalid_config(
                        "no Vault token: set `auth.token`, `auth.token_file` or VAULT_TOKEN",
                    ))
                }
            },
        },
        VaultAuth::Approle(auth) => {
            let secret_id =
                match (&auth.secret_id, &auth.secret_id_file) {
                    (Some(secret), None) => SecretSource::Value(secret.clone()),
                    (None, Some(path)) => SecretSource::File(path.clone()),
                    _ => return Err(Error::invalid_config(
                        "AppRole needs exactly one of `auth.secret_id` and `auth.secret_id_file`",
                    )),
                };
            if auth.role_id.is_empty() {
                return Err(Error::invalid_config("`auth.role_id` is empty"));
            }
            Method::AppRole {
                mount: check_mount(&auth.mount, "auth.mount")?,
                role_id: auth.role_id.clone(),
                secret_id,
            }
        }
        VaultAuth::Kubernetes(auth) => {
            if auth.role.is_empty() {
                return Err(Error::invalid_config("`auth.role` is empty"));
            }
            Method::Kubernetes {
                mount: check_mount(&auth.mount, "auth.mount")?,
                role: auth.role.clone(),
                jwt_path: auth.jwt_path.clone(),
            }
        }
    };
    Ok(Resolved {
        address,
        namespace,
        ca_cert,
        method,
    })
}

/// A Vault path given in configuration: `/`-separated segments, none empty, `.` or `..`,
/// none with characters that would need escaping in a URL. Leading and trailing slashes
/// are forgiven.
fn check_mount(value: &str, key: &'static str) -> Result<String> {
    let trimmed = value.trim_matches('/');
    let valid = !trimmed.is_empty()
        && trimmed.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(Error::invalid_config(
            "must be a Vault path of letters, digits, '_', '-' and '.' separated by '/'",
        )
        .with_context("key", key)
        .with_context("value", value))
    }
}

/// The checks `connect` makes before it touches the network, for `check-config`.
pub fn validate(config: &VaultConfig) -> Result<()> {
    let resolved = resolve(config, Env::from_process())?;
    check_mount(&config.mount, "mount")?;
    check_mount(&config.path_prefix, "path_prefix")?;
    if config.tls.client_cert.is_some() != config.tls.client_key.is_some() {
        return Err(Error::invalid_config(
            "`tls.client_cert` and `tls.client_key` go together",
        ));
    }
    let scheme_ok =
        resolved.address.starts_with("http://") || resolved.address.starts_with("https://");
    if !scheme_ok || reqwest::Url::parse(&resolved.address).is_err() {
        return Err(
            Error::invalid_config("`address` must be an http:// or https:// URL")
                .with_context("address", &resolved.address),
        );
    }
    Ok(())
}

impl VaultBackend {
    pub const KIND: &'static str = "vault";

    /// Builds the one HTTP client, logs in once, and (with `kv_version = "auto"`) asks
    /// Vault which KV version the mount runs. `VAULT_ADDR`, `VAULT_TOKEN`,
    /// `VAULT_NAMESPACE` and `VAULT_CACERT` fill in what the configuration leaves unset.
    pub async fn connect(config: &VaultConfig) -> Result<Self> {
        let resolved = resolve(config, Env::from_process())?;
        let mount = check_mount(&config.mount, "mount")?;
        let prefix = check_mount(&config.path_prefix, "path_prefix")?;
        let client_cert = match (&config.tls.client_cert, &config.tls.client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => {
                return Err(Error::invalid_config(
                    "`tls.client_cert` and `tls.client_key` go together",
                ))
            }
        };
        let http = Arc::new(Http::new(&Target {
            address: &resolved.address,
            namespace: resolved.namespace.as_deref(),
            ca_cert: resolved.ca_cert.as_deref(),
            client_cert,
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
        })?);
        let session = Session::start(http, resolved.method).await?;
        let mut backend = Self {
            session,
            layout: Layout {
                mount,
                prefix,
                version: Version::V2,
            },
        };
        backend.layout.version = match config.kv_version {
            KvVersion::V1 => Version::V1,
            KvVersion::V2 => Version::V2,
            KvVersion::Auto => backend.discover_version().await?,
        };
        tracing::info!(
            mount = %backend.layout.mount,
            prefix = %backend.layout.prefix,
            kv_version = ?backend.layout.version,
            "connected to Vault"
        );
        Ok(backend)
    }

    async fn discover_version(&self) -> Result<Version> {
        let mount = self.layout.mount.clone();
        let info = self
            .run(Request::Other, "read the mount's KV version", |conn| {
                let mount = mount.clone();
                async move { exec(&conn, ReadMount { mount }).await }
            })
            .await
            .map_err(|error| {
                error.with_context(
                    "hint",
                    "the token may not read sys/internal/ui/mounts/<mount>; set kv_version = 1 or 2",
                )
            })?;
        let version = info
            .options
            .as_ref()
            .and_then(|options| options.get("version"))
            .map(String::as_str);
        match (info.engine.as_str(), version) {
            ("kv", Some("2")) => Ok(Version::V2),
            ("kv" | "generic", _) => Ok(Version::V1),
            (other, _) => Err(
                Error::invalid_config("the mount is not a KV secrets engine")
                    .with_context("mount", &self.layout.mount)
                    .with_context("type", other),
            ),
        }
    }

    /// Sends one request with the current token. A 403 that turns out to be a dead token
    /// (see [`Session::recover`]) gets one new login and one retry.
    async fn run<T, F, Fut>(&self, request: Request, action: &'static str, op: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        let login = self.session.current();
        match op(self.session.http().conn(login.token.expose())).await {
            Ok(value) => Ok(value),
            Err(error) if status(&error) == Some(403) => {
                if self.session.recover(&login).await? {
                    let login = self.session.current();
                    op(self.session.http().conn(login.token.expose()))
                        .await
                        .map_err(|error| classify(error, request, action))
                } else {
                    Err(classify(error, request, action))
                }
            }
            Err(error) => Err(classify(error, request, action)),
        }
    }

    async fn read(&self, key: &Key) -> Result<Map<String, Value>> {
        let (mount, path) = (self.layout.mount.as_str(), self.layout.path(key));
        let path = path.as_str();
        match self.layout.version {
            Version::V2 => {
                self.run(Request::Other, "read", |conn| async move {
                    vaultrs::kv2::read(&conn, mount, path).await
                })
                .await
            }
            Version::V1 => {
                self.run(Request::Other, "read", |conn| async move {
                    vaultrs::kv1::get(&conn, mount, path).await
                })
                .await
            }
        }
        .map_err(|error| error.with_context("key", key))
    }
}

#[async_trait]
impl Backend for VaultBackend {
    fn login_expires_at(&self) -> Option<std::time::SystemTime> {
        self.session.current().expires_at()
    }

    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: Self::KIND,
            capabilities: Capabilities {
                persistent: true,
                shared: true,
            },
        }
    }

    async fn put(&self, key: &Key, document: &Document) -> Result<()> {
        let (mount, path) = (self.layout.mount.as_str(), self.layout.path(key));
        let path = path.as_str();
        let fields = document.fields();
        match self.layout.version {
            // cas=0: Vault writes only if the key has no version yet, atomically.
            Version::V2 => self
                .run(Request::CheckAndSet, "create", |conn| async move {
                    let options = SetSecretRequestOptions { cas: 0 };
                    vaultrs::kv2::set_with_options(&conn, mount, path, fields, options).await
                })
                .await
                .map(drop),
            // KV v1 has no check-and-set: read first. Ids are 128 random bits, so two
            // writers racing for one key do not happen in practice.
            Version::V1 => {
                match self.read(key).await {
                    Ok(_) => {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            "a secret already exists at this path",
                        ))
                    }
                    Err(error) if error.kind() == ErrorKind::NotFound => {}
                    Err(error) => return Err(error),
                }
                let data: std::collections::HashMap<&str, &Value> = fields
                    .iter()
                    .map(|(name, value)| (name.as_str(), value))
                    .collect();
                let data = &data;
                self.run(Request::Other, "create", |conn| async move {
                    vaultrs::kv1::set(&conn, mount, path, data).await
                })
                .await
            }
        }
        .map_err(|error| error.with_context("key", key))
    }

    async fn get(&self, key: &Key) -> Result<Document> {
        self.read(key).await.map(Document::new)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        let (mount, path) = (self.layout.mount.as_str(), self.layout.path(key));
        let path = path.as_str();
        let deleted = match self.layout.version {
            // The metadata path removes every version and the key itself, so the secret
            // neither reads back nor lists, and no soft-deleted copy stays behind.
            Version::V2 => {
                self.run(Request::Other, "delete", |conn| async move {
                    vaultrs::kv2::delete_metadata(&conn, mount, path).await
                })
                .await
            }
            Version::V1 => {
                self.run(Request::Other, "delete", |conn| async move {
                    vaultrs::kv1::delete(&conn, mount, path).await
                })
                .await
            }
        };
        match deleted {
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(()),
            other => other.map_err(|error| error.with_context("key", key)),
        }
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<CredentialId>> {
        let (mount, folder) = (self.layout.mount.as_str(), self.layout.folder(scope));
        let folder = folder.as_str();
        let keys = match self.layout.version {
            Version::V2 => {
                self.run(Request::Other, "list", |conn| async move {
                    vaultrs::kv2::list(&conn, mount, folder).await
                })
                .await
            }
            Version::V1 => {
                self.run(Request::Other, "list", |conn| async move {
                    vaultrs::kv1::list(&conn, mount, folder)
                        .await
                        .map(|listed| listed.data.keys)
                })
                .await
            }
        };
        let keys = match keys {
            Ok(keys) => keys,
            // Vault answers an empty folder with 404.
            Err(error) if error.kind() == ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(error.with_context("scope", scope)),
        };
        // Sub-folders (`name/`) and names credbridge would not mint are someone else's.
        let mut ids: Vec<CredentialId> = keys
            .iter()
            .filter(|name| !name.ends_with('/'))
            .filter_map(|name| CredentialId::parse(name).ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn check(&self) -> Result<()> {
        // Reachable and unsealed: sys/health answers 503 when sealed. A standby forwards
        // requests to the active node, so it counts as ready.
        let health = ReadHealthRequest::builder()
            .standbyok(Some(true))
            .build()
            .map_err(|error| {
                Error::new(ErrorKind::Unexpected, "health request").with_source(error)
            })?;
        let conn = self.session.http().conn("");
        let answer = vaultrs::api::exec_with_no_result(&conn, health)
            .await
            .map_err(|error| classify(error, Request::Other, "check Vault's health"))?;
        if answer.sealed {
            return Err(Error::new(ErrorKind::Unavailable, "Vault is sealed"));
        }
        // The token is valid (a dead one is replaced here, as for any request) and may
        // create and read secrets under the prefix.
        let probe = self
            .layout
            .policy_path(&format!("{}/readiness-probe/probe", self.layout.prefix));
        let probe = probe.as_str();
        let allowed = self
            .run(
                Request::Other,
                "check the token's capabilities",
                |conn| async move {
                    exec(
                        &conn,
                        CapabilitiesSelf {
                            path: probe.to_owned(),
                        },
                    )
                    .await
                },
            )
            .await?
            .capabilities;
        let may = |capability: &str| allowed.iter().any(|c| c == capability || c == "root");
        if may("create") && may("read") {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                "the Vault token may not create and read secrets under the path prefix",
            )
            .with_context("path", probe))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use crate::SecretText;

    fn layout(version: Version) -> Layout {
        Layout {
            mount: "secret".to_owned(),
            prefix: "apps/credbridge".to_owned(),
            version,
        }
    }

    fn key() -> Key {
        Key::new(
            Scope::parse("team-a").unwrap(),
            CredentialId::parse("cred_0123").unwrap(),
        )
    }

    fn no_env() -> Env {
        Env {
            addr: None,
            token: None,
            namespace: None,
            cacert: None,
        }
    }

    #[test]
    fn keys_map_to_prefix_scope_and_id() {
        assert_eq!(
            layout(Version::V2).path(&key()),
            "apps/credbridge/team-a/cred_0123"
        );
        assert_eq!(
            layout(Version::V2).folder(&key().scope),
            "apps/credbridge/team-a"
        );
    }

    #[test]
    fn the_policy_path_follows_the_kv_version() {
        assert_eq!(layout(Version::V2).policy_path("p/x"), "secret/data/p/x");
        assert_eq!(layout(Version::V1).policy_path("p/x"), "secret/p/x");
    }

    #[test]
    fn configured_paths_refuse_dots_and_empty_segments() {
        assert_eq!(check_mount("/secret/", "mount").unwrap(), "secret");
        assert_eq!(check_mount("a/b-c_d.e", "mount").unwrap(), "a/b-c_d.e");
        for bad in ["", "/", "a//b", "a/../b", "a/./b", "a b", "a?b", "a%2F"] {
            assert!(check_mount(bad, "mount").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_environment_fills_in_what_the_config_leaves_unset() {
        let env = Env {
            addr: Some("http://env:8200".to_owned()),
            token: Some("env-token".to_owned()),
            namespace: Some("/env-ns/".to_owned()),
            cacert: Some("/env/ca.pem".to_owned()),
        };
        let resolved = resolve(&VaultConfig::default(), env).unwrap();
        assert_eq!(resolved.address, "http://env:8200");
        assert_eq!(resolved.namespace.as_deref(), Some("env-ns"));
        assert_eq!(resolved.ca_cert, Some(PathBuf::from("/env/ca.pem")));
        assert!(matches!(resolved.method, Method::Static(ref t) if t.expose() == "env-token"));
    }

    #[test]
    fn the_config_wins_over_the_environment() {
        let mut config = VaultConfig {
            address: Some("http://config:8200".to_owned()),
            namespace: Some("config-ns".to_owned()),
            ..VaultConfig::default()
        };
        config.tls.ca_cert = Some(PathBuf::from("/config/ca.pem"));
        config.auth = VaultAuth::Token(super::super::config::TokenAuth {
            token: Some(SecretText::new("config-token")),
            token_file: None,
        });
        let env = Env {
            addr: Some("http://env:8200".to_owned()),
            token: Some("env-token".to_owned()),
            namespace: Some("env-ns".to_owned()),
            cacert: Some("/env/ca.pem".to_owned()),
        };
        let resolved = resolve(&config, env).unwrap();
        assert_eq!(resolved.address, "http://config:8200");
        assert_eq!(resolved.namespace.as_deref(), Some("config-ns"));
        assert_eq!(resolved.ca_cert, Some(PathBuf::from("/config/ca.pem")));
        assert!(matches!(resolved.method, Method::Static(ref t) if t.expose() == "config-token"));
    }

    #[test]
    fn no_token_anywhere_is_an_invalid_config() {
        let error = resolve(&VaultConfig::default(), no_env()).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.message().contains("VAULT_TOKEN"), "{error}");
    }

    #[test]
    fn approle_needs_exactly_one_secret_id_source() {
        let config: BackendConfig =
            toml::from_str("kind = \"vault\"\n[auth]\nmethod = \"approle\"\nrole_id = \"r\"")
                .unwrap();
        let BackendConfig::Vault(config) = config else {
            panic!("not vault")
        };
        let error = resolve(&config, no_env()).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    }
}
