use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::watch;
use vaultrs::api::kv2::requests::SetSecretRequestOptions;
use vaultrs::error::ClientError;

use super::client::{exec, CapabilitiesSelf, Conn, Http, MountInfo, ReadMount};
use super::config::{KvVersion, VaultConfig};
use super::error::{classify, status, Request};
use super::plan::{plan, Env};
use super::session::{obtain, Backoff, Method, Obtained, Session};
use crate::{
    Backend, BackendInfo, CredentialId, Document, Error, ErrorKind, Key, ReferenceTarget,
    ReferencedEntry, Result, Scope,
};

/// Credentials in the KV engine of HashiCorp Vault or OpenBao, one secret per credential
/// at `{mount}/{path_prefix}/{scope}/{id}`, the credential's fields as the secret's keys.
///
/// One HTTP client and one login serve every request; see [`VaultBackend::connect`].
pub struct VaultBackend {
    shared: Arc<Shared>,
}

/// What the backend and its background connection share.
struct Shared {
    http: Arc<Http>,
    mount: String,
    prefix: String,
    /// Set once, when the first login and the KV version detection have succeeded.
    connected: OnceLock<Connected>,
    /// Until then, why not: the last attempt's failure.
    waiting: Mutex<String>,
    ready: watch::Sender<bool>,
}

/// A login and the layout it was made for.
struct Connected {
    session: Arc<Session>,
    layout: Layout,
    /// The KV mounts references have been read from, with their versions: Vault is asked
    /// once per mount. Starts with credbridge's own mount, whose version is known.
    mounts: Mutex<Vec<KvMount>>,
}

/// A KV engine's mount path (without slashes) and version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KvMount {
    path: String,
    version: Version,
}

/// Whether `path` is `folder` or lies under it, segment-wise.
fn is_within(path: &str, folder: &str) -> bool {
    path.strip_prefix(folder)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
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

impl VaultBackend {
    /// Checks the configuration (the same step as `check-config`, with `VAULT_ADDR`,
    /// `VAULT_TOKEN`, `VAULT_NAMESPACE` and `VAULT_CACERT` filling in what it leaves
    /// unset), builds the one HTTP client, and returns: a mistake in the configuration
    /// fails here, at once.
    ///
    /// Logging in and (with `kv_version = "auto"`) asking Vault which KV version the mount
    /// runs happen in the background, retried with capped exponential backoff until Vault
    /// answers, so that credbridge can start while Vault is unreachable, sealed or
    /// refusing the login. Until then every call, and [`Backend::check`], fails with
    /// [`ErrorKind::Unavailable`] saying why.
    pub async fn connect(config: &VaultConfig) -> Result<Self> {
        let plan = plan(config, Env::from_process())?;
        let http = Arc::new(Http::new(&plan)?);
        let (ready, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            http,
            mount: plan.mount,
            prefix: plan.prefix,
            connected: OnceLock::new(),
            waiting: Mutex::new("no answer from Vault yet".to_owned()),
            ready,
        });
        tracing::info!(
            address = %plan.address,
            namespace = plan.namespace.as_deref().unwrap_or(""),
            mount = %shared.mount,
            auth = plan.method.name(),
            "connecting to Vault in the background; credential calls answer 503 until connected"
        );
        tokio::spawn(connect_in_background(
            Arc::downgrade(&shared),
            plan.method,
            plan.kv_version,
        ));
        Ok(Self { shared })
    }

    /// Waits until the background connection has succeeded.
    pub async fn ready(&self) {
        let mut ready = self.shared.ready.subscribe();
        // The sender lives as long as `self`, so this ends only when connected.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    fn connected(&self) -> Result<&Connected> {
        self.shared.connected.get().ok_or_else(|| {
            let waiting = self
                .shared
                .waiting
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .clone();
            Error::new(
                ErrorKind::Unavailable,
                format!("not connected to Vault yet: {waiting}"),
            )
        })
    }

    /// Vault answers `sys/health` as ready, the token is valid (a dead one is replaced
    /// here, as for any request), and it may create and read secrets under the prefix.
    async fn readiness(&self) -> Result<()> {
        let connected = self.connected()?;
        self.shared.http.health().await?;
        connected.may_create_and_read().await
    }
}

/// Logs in and learns the KV version, retrying until both succeed; holds the backend
/// weakly, so dropping it stops the retries.
async fn connect_in_background(shared: Weak<Shared>, method: Method, kv_version: KvVersion) {
    let mut backoff = Backoff::new();
    loop {
        let Some(backend) = shared.upgrade() else {
            return;
        };
        let retry = match backend.attempt(&method, kv_version).await {
            Ok((first, version)) => {
                let layout = Layout {
                    mount: backend.mount.clone(),
                    prefix: backend.prefix.clone(),
                    version,
                };
                tracing::info!(
                    mount = %layout.mount,
                    prefix = %layout.prefix,
                    kv_version = ?layout.version,
                    "connected to Vault"
                );
                let session = Session::start(Arc::clone(&backend.http), method, first);
                let own_mount = KvMount {
                    path: layout.mount.clone(),
                    version: layout.version,
                };
                // Only this task sets it, once.
                let _ = backend.connected.set(Connected {
                    session,
                    layout,
                    mounts: Mutex::new(vec![own_mount]),
                });
                backend.ready.send_replace(true);
                return;
            }
            Err(error) => {
                let retry = backoff.next_delay();
                *backend
                    .waiting
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner()) = reason(&error);
                if error.kind() == ErrorKind::Unavailable {
                    tracing::warn!(%error, ?retry, "cannot connect to Vault yet; retrying");
                } else {
                    // Vault answered, and said no: this needs an operator.
                    tracing::error!(%error, ?retry, "Vault refused credbridge's connection; retrying");
                }
                retry
            }
        };
        drop(backend);
        tokio::time::sleep(retry).await;
    }
}

/// A failure in a sentence for readiness: what was said and about what, without the
/// source chain (which may name Vault's address) or paths.
fn reason(error: &Error) -> String {
    let mut reason = error.message().to_owned();
    for (key, value) in error.context() {
        if matches!(*key, "action" | "status" | "hint") {
            reason.push_str(&format!(", {key}: {value}"));
        }
    }
    reason
}

impl Shared {
    /// One attempt: Vault is ready, the login works, the KV version is known.
    async fn attempt(&self, method: &Method, kv_version: KvVersion) -> Result<(Obtained, Version)> {
        self.http.health().await?;
        let first = obtain(&self.http, method).await?;
        let version = match kv_version {
            KvVersion::V1 => Version::V1,
            KvVersion::V2 => Version::V2,
            KvVersion::Auto => self.discover_version(&first).await?,
        };
        Ok((first, version))
    }

    async fn discover_version(&self, login: &Obtained) -> Result<Version> {
        let conn = self.http.conn(login.token().expose());
        let mount = self.mount.clone();
        let info = exec(&conn, ReadMount { mount }).await.map_err(|error| {
            classify(error, Request::Other, "read the mount's KV version").with_context(
                "hint",
                "the token may not read sys/internal/ui/mounts/<mount>; set kv_version = 1 or 2",
            )
        })?;
        kv_version(&info).ok_or_else(|| {
            Error::invalid_config("the mount is not a KV secrets engine")
                .with_context("mount", &self.mount)
                .with_context("type", &info.engine)
        })
    }
}

/// The KV version of a mount Vault described; `None` when it is not a KV engine.
fn kv_version(info: &MountInfo) -> Option<Version> {
    let version = info
        .options
        .as_ref()
        .and_then(|options| options.get("version"))
        .map(String::as_str);
    match (info.engine.as_str(), version) {
        ("kv", Some("2")) => Some(Version::V2),
        ("kv" | "generic", _) => Some(Version::V1),
        _ => None,
    }
}

impl Connected {
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

    /// The latest version of the KV secret at `path` (mount included), as an entry.
    async fn read_reference(&self, path: &str) -> Result<ReferencedEntry> {
        let mount = self.mount_of(path).await?;
        let Some(secret) = path
            .strip_prefix(mount.path.as_str())
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(Error::not_found(
                "the path names a KV mount, not a secret in it",
            ));
        };
        let (version, mount) = (mount.version, mount.path.as_str());
        let fields: Map<String, Value> = match version {
            Version::V2 => {
                self.run(
                    Request::Other,
                    "read a referenced secret",
                    |conn| async move { vaultrs::kv2::read(&conn, mount, secret).await },
                )
                .await?
            }
            Version::V1 => {
                self.run(
                    Request::Other,
                    "read a referenced secret",
                    |conn| async move { vaultrs::kv1::get(&conn, mount, secret).await },
                )
                .await?
            }
        };
        Ok(ReferencedEntry::from_fields(fields))
    }

    fn mounts(&self) -> std::sync::MutexGuard<'_, Vec<KvMount>> {
        // The list is only ever pushed to; a panic elsewhere leaves it whole.
        self.mounts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The KV mount holding `path`: known, or asked of Vault (which answers with the
    /// mount for any path in it) and remembered.
    async fn mount_of(&self, path: &str) -> Result<KvMount> {
        let known = self
            .mounts()
            .iter()
            .find(|mount| is_within(path, &mount.path))
            .cloned();
        if let Some(mount) = known {
            return Ok(mount);
        }
        let info = self
            .run(
                Request::Other,
                "find the KV mount of a referenced secret",
                |conn| async move {
                    let mount = path.to_owned();
                    exec(&conn, ReadMount { mount }).await
                },
            )
            .await
            .map_err(|error| match error.kind() {
                // Vault answers 403 both for a path in no mount and for a mount the token
                // has no capability under.
                ErrorKind::PermissionDenied => Error::new(
                    ErrorKind::PermissionDenied,
                    "Vault shows credbridge's token no mount at this path: there is none, or \
                     no policy grants the token anything under it",
                )
                .with_source(error),
                _ => error,
            })?;
        let mount_path = info
            .path
            .as_deref()
            .map(|mount| mount.trim_end_matches('/'))
            .filter(|mount| !mount.is_empty() && is_within(path, mount))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unexpected,
                    "Vault's mount information does not name a mount holding the path",
                )
            })?
            .to_owned();
        let Some(version) = kv_version(&info) else {
            return Err(Error::not_found("the path is not in a KV secrets engine")
                .with_context("mount", &mount_path)
                .with_context("type", &info.engine));
        };
        let mount = KvMount {
            path: mount_path,
            version,
        };
        tracing::debug!(mount = %mount.path, kv_version = ?mount.version, "learnt a referenced mount's KV version");
        let mut mounts = self.mounts();
        if !mounts.contains(&mount) {
            mounts.push(mount.clone());
        }
        Ok(mount)
    }

    async fn may_create_and_read(&self) -> Result<()> {
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

#[async_trait]
impl Backend for VaultBackend {
    fn login_expires_at(&self) -> Option<std::time::SystemTime> {
        self.shared
            .connected
            .get()
            .and_then(|connected| connected.session.current().expires_at())
    }

    fn info(&self) -> BackendInfo {
        VaultConfig::INFO
    }

    async fn put(&self, key: &Key, document: &Document) -> Result<()> {
        self.connected()?.put(key, document).await
    }

    async fn get(&self, key: &Key) -> Result<Document> {
        self.connected()?.read(key).await.map(Document::new)
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.connected()?.delete(key).await
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<CredentialId>> {
        self.connected()?.list(scope).await
    }

    fn owns(&self, target: &ReferenceTarget) -> bool {
        let ReferenceTarget::Vault { path } = target else {
            return false;
        };
        // Compared without case: refusing a path that only differs in case costs nothing.
        let own = format!("{}/{}", self.shared.mount, self.shared.prefix).to_ascii_lowercase();
        is_within(&path.to_ascii_lowercase(), &own)
    }

    async fn read_reference(&self, target: &ReferenceTarget) -> Result<ReferencedEntry> {
        let ReferenceTarget::Vault { path } = target else {
            return Err(
                Error::invalid_config("the Vault backend reads ref+vault references only")
                    .with_context("reference", target),
            );
        };
        if self.owns(target) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "the reference names credbridge's own storage, which no reference may read",
            )
            .with_context("reference", target));
        }
        self.connected()?
            .read_reference(path)
            .await
            .map_err(|error| error.with_context("reference", target))
    }

    async fn check(&self) -> Result<()> {
        // A 404 here means a namespace or an endpoint is missing (a server without
        // sys/capabilities-self, a namespace deleted under credbridge), never that a
        // credential is: it must not reach the API as "not found".
        self.readiness().await.map_err(|error| match error.kind() {
            ErrorKind::NotFound => Error::new(
                ErrorKind::Unexpected,
                "Vault answered the readiness check with 404: a namespace or endpoint is missing",
            )
            .with_source(error),
            _ => error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn within_is_segment_wise() {
        assert!(is_within("secret/credbridge", "secret/credbridge"));
        assert!(is_within("secret/credbridge/a/b", "secret/credbridge"));
        assert!(!is_within("secret/credbridge-refs/a", "secret/credbridge"));
        assert!(!is_within("secret", "secret/credbridge"));
    }

    #[test]
    fn the_policy_path_follows_the_kv_version() {
        assert_eq!(layout(Version::V2).policy_path("p/x"), "secret/data/p/x");
        assert_eq!(layout(Version::V1).policy_path("p/x"), "secret/p/x");
    }

    #[test]
    fn the_reason_names_what_failed_without_paths_or_sources() {
        let error = Error::new(ErrorKind::PermissionDenied, "Vault refused the login")
            .with_context("action", "log in with AppRole")
            .with_context("status", 400)
            .with_context("path", "/run/secrets/secret-id")
            .with_source(std::io::Error::other("http://vault.internal:8200"));
        assert_eq!(
            reason(&error),
            "Vault refused the login, action: log in with AppRole, status: 400"
        );
    }
}
