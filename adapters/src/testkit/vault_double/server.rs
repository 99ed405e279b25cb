//! The Vault double's HTTP side: Vault's API for what credbridge uses, and the controls
//! tests use to make it fail.
//!
//! Every answer uses Vault's envelope (`request_id`, `lease_id`, `renewable`,
//! `lease_duration`, `data`, `wrap_info`, `warnings`, `auth`) or its error shape
//! (`{"errors": [...]}`). References are to <https://developer.hashicorp.com/vault/api-docs>.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::state::{
    request_id, rfc3339, AuthMount, KvMount, Policy, State, Token, TokenSpec, Version, Versioned,
};

/// A Vault server for tests, in-process, on a loopback port.
///
/// Starts with a root token, `secret/` as KV v2 and `kv/` as KV v1 in the root namespace
/// (as `vault server -dev` mounts `secret/`).
pub struct VaultDouble {
    address: SocketAddr,
    shared: Arc<Shared>,
    runtime: Handle,
    listening: Mutex<Option<Listening>>,
    root_token: String,
}

struct Shared {
    state: Mutex<State>,
    delay: Mutex<Duration>,
}

struct Listening {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl VaultDouble {
    /// Starts a double on the current runtime; it stops with that runtime.
    pub async fn start() -> Self {
        Self::start_on(Handle::current())
    }

    /// One double for the whole test binary, on a runtime of its own so that it outlives
    /// each test's runtime. Tests sharing it use scopes and prefixes of their own.
    pub fn shared() -> &'static VaultDouble {
        static SHARED: OnceLock<VaultDouble> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (sender, receiver) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("vault-double".to_owned())
                .spawn(move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a runtime for the Vault double");
                    sender
                        .send(runtime.handle().clone())
                        .expect("the caller waits");
                    runtime.block_on(std::future::pending::<()>());
                })
                .expect("a thread for the Vault double");
            VaultDouble::start_on(receiver.recv().expect("the double's runtime"))
        })
    }

    fn start_on(runtime: Handle) -> Self {
        let mut state = State::default();
        for (mount, version) in [("secret", 2), ("kv", 1)] {
            state
                .kv
                .insert((String::new(), mount.to_owned()), KvMount::new(version));
        }
        let root_token = state.issue(TokenSpec::unlimited(Policy::root()), "token");
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            delay: Mutex::new(Duration::ZERO),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let address = listener.local_addr().expect("the bound address");
        let double = Self {
            address,
            shared,
            runtime,
            listening: Mutex::new(None),
            root_token,
        };
        double.listen(listener);
        double
    }

    fn listen(&self, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let _guard = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&self.shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = self.runtime.spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        *self.lock_listening() = Some(Listening { stop, task });
    }

    fn lock_listening(&self) -> MutexGuard<'_, Option<Listening>> {
        self.listening
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// `http://127.0.0.1:<port>`, as `VAULT_ADDR`.
    pub fn address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// A token with the root policy that never expires.
    pub fn root_token(&self) -> String {
        self.root_token.clone()
    }

    /// Stops listening: new connections are refused and idle ones are closed, as when
    /// Vault's process is gone. Requests in flight are answered first.
    pub async fn stop(&self) {
        let listening = self.lock_listening().take();
        if let Some(Listening { stop, task }) = listening {
            let _ = stop.send(());
            let _ = task.await;
        }
    }

    /// Listens again on the same port, with the same state.
    pub async fn resume(&self) {
        if self.lock_listening().is_some() {
            return;
        }
        // The port was ours a moment ago; the kernel may hold it briefly.
        for _ in 0..50 {
            if let Ok(listener) = std::net::TcpListener::bind(self.address) {
                self.listen(listener);
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the Vault double could not listen on {} again",
            self.address
        );
    }

    /// Answers every request only after `delay` (zero: at once).
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap_or_else(|p| p.into_inner()) = delay;
    }

    pub fn seal(&self) {
        self.shared.state().sealed = true;
    }

    pub fn unseal(&self) {
        self.shared.state().sealed = false;
    }

    /// Mounts a KV engine of `version` (1 or 2) at `mount` in `namespace` (`""`: root).
    pub fn mount_kv(&self, namespace: &str, mount: &str, version: u8) {
        let key = (namespace.trim_matches('/').to_owned(), mount.to_owned());
        self.shared.state().kv.insert(key, KvMount::new(version));
    }

    /// Issues a token, as `auth/token/create` would.
    pub fn create_token(&self, spec: TokenSpec) -> String {
        self.shared.state().issue(spec, "token")
    }

    /// Enables AppRole at `mount` (if needed) with a role whose login issues `spec`.
    pub fn add_approle(&self, mount: &str, role_id: &str, secret_id: &str, spec: TokenSpec) {
        let namespace = spec.namespace.clone();
        let mut state = self.shared.state();
        let entry = state
            .auth
            .entry((namespace, mount.to_owned()))
            .or_insert_with(|| AuthMount::AppRole(Default::default()));
        if let AuthMount::AppRole(roles) = entry {
            roles.insert(role_id.to_owned(), (secret_id.to_owned(), spec));
        }
    }

    /// Enables Kubernetes auth at `mount` (if needed) with `role`, accepting `jwt`.
    pub fn add_kubernetes_role(&self, mount: &str, role: &str, jwt: &str, spec: TokenSpec) {
        let namespace = spec.namespace.clone();
        let mut state = self.shared.state();
        let entry = state
            .auth
            .entry((namespace, mount.to_owned()))
            .or_insert_with(|| AuthMount::Kubernetes(Default::default()));
        if let AuthMount::Kubernetes(roles) = entry {
            roles.insert(role.to_owned(), (jwt.to_owned(), spec));
        }
    }

    /// Ends a token now, as if its TTL had run out.
    pub fn expire_token(&self, token: &str) {
        if let Some(token) = self.shared.state().tokens.get_mut(token) {
            token.expires_at = Some(Instant::now());
        }
    }

    /// Ends every token issued by logins at `auth_mount` now.
    pub fn expire_logins(&self, auth_mount: &str) {
        let now = Instant::now();
        for token in self.shared.state().tokens.values_mut() {
            if token.issuer == auth_mount {
                token.expires_at = Some(now);
            }
        }
    }

    /// Successful logins at `auth_mount` so far.
    pub fn logins(&self, auth_mount: &str) -> usize {
        self.shared
            .state()
            .logins
            .get(auth_mount)
            .copied()
            .unwrap_or(0)
    }

    /// Successful `renew-self` calls so far.
    pub fn renewals(&self) -> usize {
        self.shared.state().renewals
    }

    /// The data of the latest version stored at `mount/path` (root namespace), as an
    /// operator would see it in Vault's UI; `None` when nothing readable is there.
    pub fn stored(&self, mount: &str, path: &str) -> Option<Map<String, Value>> {
        let state = self.shared.state();
        let kv = state.kv.get(&(String::new(), mount.to_owned()))?;
        if kv.version == 1 {
            return kv.v1.get(path).cloned();
        }
        let secret = kv.v2.get(path)?;
        let version = secret.versions.get(&secret.current_version)?;
        version
            .data
            .clone()
            .filter(|_| version.deletion_time.is_empty())
    }

    /// Whether KV v2 still holds metadata (any version) for `mount/path`.
    pub fn has_metadata(&self, mount: &str, path: &str) -> bool {
        let state = self.shared.state();
        state
            .kv
            .get(&(String::new(), mount.to_owned()))
            .is_some_and(|kv| kv.v2.contains_key(path))
    }
}

// ----- the HTTP side -----

fn envelope(data: Value) -> Value {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "",
    })
}

fn ok(data: Value) -> Response {
    (StatusCode::OK, Json(envelope(data))).into_response()
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, Json(json!({ "errors": messages }))).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn denied() -> Response {
    errors(StatusCode::FORBIDDEN, &["permission denied"])
}

fn not_found() -> Response {
    // Vault answers a read of a missing secret with an empty error list.
    errors(StatusCode::NOT_FOUND, &[])
}

/// A request, decoded once.
struct Call {
    method: Method,
    path: String,
    list: bool,
    version: Option<u64>,
    token: Option<String>,
    namespace: String,
    body: Value,
}

async fn handle(
    Extract(shared): Extract<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = *shared.delay.lock().unwrap_or_else(|p| p.into_inner());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(path) = uri.path().strip_prefix("/v1/") else {
        return errors(StatusCode::NOT_FOUND, &["unsupported path"]);
    };
    // Vault cleans the request path; clients sometimes send `//`.
    let path = path
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    let query = uri.query().unwrap_or_default();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(_) => return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]),
        }
    };
    let call = Call {
        list: method.as_str() == "LIST" || query.split('&').any(|p| p == "list=true"),
        version: query
            .split('&')
            .find_map(|p| p.strip_prefix("version="))
            .and_then(|v| v.parse().ok()),
        method,
        path,
        token: header("x-vault-token").filter(|t| !t.is_empty()),
        namespace: header("x-vault-namespace")
            .map(|n| n.trim_matches('/').to_owned())
            .unwrap_or_default(),
        body,
    };
    let mut state = shared.state();
    route(&mut state, &call)
}

fn route(state: &mut State, call: &Call) -> Response {
    // GET /sys/health: unauthenticated; 200 active, 503 sealed (also when sealed).
    if call.path == "sys/health" {
        return health(state);
    }
    // A sealed Vault answers everything else with 503 "Vault is sealed".
    if state.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    if let Some(rest) = call.path.strip_prefix("auth/") {
        if let Some(mount) = rest.strip_suffix("/login") {
            if mount != "token" {
                return login(state, call, mount);
            }
        }
    }
    let Some(token) = authenticate(state, call) else {
        // Vault answers a missing, unknown or expired token with 403.
        return denied();
    };
    match call.path.as_str() {
        "auth/token/lookup-self" => lookup_self(state, call),
        "auth/token/renew-self" => renew_self(state, call),
        "sys/capabilities-self" => capabilities_self(&token, call),
        path => match path.strip_prefix("sys/internal/ui/mounts/") {
            Some(mount) => read_mount(state, &token, call, mount),
            None => kv(state, &token, call),
        },
    }
}

/// The live token of the request, valid in the request's namespace.
fn authenticate(state: &State, call: &Call) -> Option<Token> {
    let token = state.tokens.get(call.token.as_deref()?)?;
    if !token.alive(Instant::now()) {
        return None;
    }
    // A token is valid in its own namespace and the namespaces below it.
    let ns = &token.spec.namespace;
    let inside =
        ns.is_empty() || call.namespace == *ns || call.namespace.starts_with(&format!("{ns}/"));
    inside.then(|| token.clone())
}

/// `GET /sys/health`: 200 when initialized, unsealed and active; 503 when sealed.
fn health(state: &State) -> Response {
    let status = if state.sealed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let body = json!({
        "initialized": true,
        "sealed": state.sealed,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": now,
        "version": "1.17.0",
        "cluster_name": "vault-double",
        "cluster_id": "00000000-0000-0000-0000-000000000000",
    });
    (status, Json(body)).into_response()
}

fn auth_block(token: &str, record: &Token, now: Instant) -> Value {
    json!({
        "client_token": token,
        "accessor": record.accessor,
        "policies": record.spec.policy.names(),
        "token_policies": record.spec.policy.names(),
        "metadata": null,
        "lease_duration": record.ttl_seconds(now),
        "renewable": record.spec.renewable,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
        "mfa_requirement": null,
        "num_uses": 0,
    })
}

fn auth_response(token: &str, record: &Token, warnings: Option<Vec<String>>) -> Response {
    let mut body = envelope(Value::Null);
    body["auth"] = auth_block(token, record, Instant::now());
    body["warnings"] = json!(warnings);
    (StatusCode::OK, Json(body)).into_response()
}

/// `POST /auth/:mount/login`: AppRole (`role_id`, `secret_id`; 400 when either is wrong)
/// and Kubernetes (`role`, `jwt`; 400 for an unknown role, 403 for a JWT it rejects).
fn login(state: &mut State, call: &Call, mount: &str) -> Response {
    if call.method != Method::POST && call.method != Method::PUT {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
    }
    let field = |name: &str| call.body.get(name).and_then(Value::as_str).unwrap_or("");
    let key = (call.namespace.clone(), mount.to_owned());
    let spec = match state.auth.get(&key) {
        None => {
            return errors(
                StatusCode::BAD_REQUEST,
                &[&format!(
                    "no handler for route \"auth/{mount}/login\". route entry not found."
                )],
            )
        }
        Some(AuthMount::AppRole(roles)) => match roles.get(field("role_id")) {
            None => return errors(StatusCode::BAD_REQUEST, &["invalid role ID"]),
            Some((secret, _)) if secret != field("secret_id") => {
                return errors(StatusCode::BAD_REQUEST, &["invalid secret id"])
            }
            Some((_, spec)) => spec.clone(),
        },
        Some(AuthMount::Kubernetes(roles)) => match roles.get(field("role")) {
            None => return errors(StatusCode::BAD_REQUEST, &["invalid role name"]),
            Some((jwt, _)) if jwt != field("jwt") => return denied(),
            Some((_, spec)) => spec.clone(),
        },
    };
    let token = state.issue(spec, mount);
    *state.logins.entry(mount.to_owned()).or_default() += 1;
    let record = state.tokens[&token].clone();
    auth_response(&token, &record, None)
}

/// `GET /auth/token/lookup-self`: the token's properties; `ttl` counts down.
fn lookup_self(state: &State, call: &Call) -> Response {
    let token = call.token.as_deref().unwrap_or_default();
    let Some(record) = state.tokens.get(token) else {
        return denied();
    };
    let now = Instant::now();
    let creation_ttl = record.spec.ttl.map_or(0, |ttl| ttl.as_secs());
    let expire_time = record
        .expires_at
        .map(|at| rfc3339(SystemTime::now() + at.saturating_duration_since(now)));
    ok(json!({
        "accessor": record.accessor,
        "creation_time": record.issued.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs(),
        "creation_ttl": creation_ttl,
        "display_name": record.issuer,
        "entity_id": "",
        "expire_time": expire_time,
        "explicit_max_ttl": 0,
        "id": token,
        "identity_policies": null,
        "issue_time": rfc3339(record.issued),
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": format!("auth/{}/login", record.issuer),
        "policies": record.spec.policy.names(),
        "renewable": record.spec.renewable,
        "ttl": record.ttl_seconds(now),
        "type": "service",
    }))
}

/// `POST /auth/token/renew-self` (`increment` optional): extends the TTL up to the max
/// TTL, with a warning when capped; 400 for a token that is not renewable.
fn renew_self(state: &mut State, call: &Call) -> Response {
    if call.method != Method::POST && call.method != Method::PUT {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]);
    }
    let token = call.token.clone().unwrap_or_default();
    let Some(record) = state.tokens.get_mut(&token) else {
        return denied();
    };
    let (Some(ttl), true) = (record.spec.ttl, record.spec.renewable) else {
        return errors(StatusCode::BAD_REQUEST, &["lease is not renewable"]);
    };
    let increment = call
        .body
        .get("increment")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str()?.trim_end_matches('s').parse().ok())
        })
        .map_or(ttl, Duration::from_secs);
    let now = Instant::now();
    let mut expires = now + increment;
    let mut warnings = None;
    if let Some(max) = record.spec.max_ttl {
        let cap = record.issued_at + max;
        if expires > cap {
            expires = cap;
            warnings = Some(vec![
                "TTL of requested duration exceeded the effective max_ttl; TTL value is capped accordingly".to_owned(),
            ]);
        }
    }
    record.expires_at = Some(expires);
    let record = record.clone();
    state.renewals += 1;
    auth_response(&token, &record, warnings)
}

/// `POST /sys/capabilities-self` with `paths`: the token's capabilities on them, both
/// per path and (for the first) as `capabilities`.
fn capabilities_self(token: &Token, call: &Call) -> Response {
    let paths: Vec<String> = call
        .body
        .get("paths")
        .and_then(Value::as_array)
        .map(|paths| {
            paths
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(first) = paths.first() else {
        return errors(StatusCode::BAD_REQUEST, &["missing paths"]);
    };
    let mut data = Map::new();
    for path in &paths {
        data.insert(path.clone(), json!(token.spec.policy.capabilities(path)));
    }
    data.insert(
        "capabilities".to_owned(),
        json!(token.spec.policy.capabilities(first)),
    );
    ok(Value::Object(data))
}

/// `GET /sys/internal/ui/mounts/:path`: the mount's type and options; 403 when the token
/// has no access under it (Vault does not reveal mounts a token cannot use).
fn read_mount(state: &State, token: &Token, call: &Call, mount: &str) -> Response {
    let mount = mount.trim_end_matches('/');
    let Some(kv) = state.kv.get(&(call.namespace.clone(), mount.to_owned())) else {
        return denied();
    };
    if !token.spec.policy.touches_mount(mount) {
        return denied();
    }
    ok(json!({
        "type": "kv",
        "path": format!("{mount}/"),
        "description": "key/value secret storage",
        "accessor": kv.accessor,
        "uuid": kv.accessor,
        "local": false,
        "seal_wrap": false,
        "external_entropy_access": false,
        "plugin_version": "",
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false},
        "options": {"version": kv.version.to_string()},
    }))
}

/// Requests under a KV mount: finds the mount, checks the policy, dispatches by version.
fn kv(state: &mut State, token: &Token, call: &Call) -> Response {
    let namespace = call.namespace.clone();
    let mount = state
        .kv
        .keys()
        .filter(|(ns, mount)| {
            *ns == namespace && (call.path == *mount || call.path.starts_with(&format!("{mount}/")))
        })
        .map(|(_, mount)| mount.clone())
        .max_by_key(String::len);
    let Some(mount) = mount else {
        return errors(
            StatusCode::NOT_FOUND,
            &[&format!(
                "no handler for route \"{}\". route entry not found.",
                call.path
            )],
        );
    };
    let rest = call.path[mount.len()..].trim_start_matches('/').to_owned();
    let Some(kv) = state.kv.get_mut(&(namespace, mount.clone())) else {
        return not_found();
    };
    if kv.version == 2 {
        kv2(kv, token, call, &mount, &rest)
    } else {
        kv1(kv, token, call, &mount, &rest)
    }
}

/// The capability a request needs, as Vault derives it: LIST → list, GET → read,
/// DELETE → delete, a write → create when nothing exists there yet, update otherwise.
fn capability(call: &Call, exists: bool) -> &'static str {
    if call.list {
        return "list";
    }
    match call.method {
        Method::GET => "read",
        Method::DELETE => "delete",
        _ if exists => "update",
        _ => "create",
    }
}

/// KV v1 (`/:mount/:path`): GET reads (404 when absent), POST/PUT writes the body as the
/// secret (204), DELETE removes it (204, also when absent), LIST names the children
/// (404 when there are none).
fn kv1(kv: &mut KvMount, token: &Token, call: &Call, mount: &str, path: &str) -> Response {
    let exists = kv.v1.contains_key(path);
    if !token
        .spec
        .policy
        .allows(&format!("{mount}/{path}"), capability(call, exists))
    {
        return denied();
    }
    if call.list {
        return list_answer(kv.list(path));
    }
    match call.method {
        Method::GET => match kv.v1.get(path) {
            Some(data) => ok(Value::Object(data.clone())),
            None => not_found(),
        },
        Method::POST | Method::PUT => match &call.body {
            Value::Object(data) => {
                kv.v1.insert(path.to_owned(), data.clone());
                no_content()
            }
            _ => errors(StatusCode::BAD_REQUEST, &["missing data"]),
        },
        Method::DELETE => {
            kv.v1.remove(path);
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

fn list_answer(keys: Vec<String>) -> Response {
    if keys.is_empty() {
        not_found()
    } else {
        ok(json!({ "keys": keys }))
    }
}

fn version_metadata(version: &Version, number: u64) -> Value {
    json!({
        "created_time": version.created_time,
        "custom_metadata": null,
        "deletion_time": version.deletion_time,
        "destroyed": version.destroyed,
        "version": number,
    })
}

/// KV v2 (`/:mount/data|metadata|delete|destroy/:path`).
fn kv2(kv: &mut KvMount, token: &Token, call: &Call, mount: &str, rest: &str) -> Response {
    let (section, path) = rest.split_once('/').unwrap_or((rest, ""));
    let exists = kv.v2.contains_key(path);
    let needed = match (section, &call.method) {
        // delete/ and destroy/ are writes that Vault checks as update.
        ("delete" | "destroy", _) => "update",
        _ => capability(call, exists),
    };
    if !token
        .spec
        .policy
        .allows(&format!("{mount}/{section}/{path}"), needed)
    {
        return denied();
    }
    let now = rfc3339(SystemTime::now());
    match (section, call.list, &call.method) {
        // LIST /:mount/metadata/:path — keys, 404 when none.
        ("metadata", true, _) => list_answer(kv.list(path)),
        // GET /:mount/data/:path(?version=n) — 404 when missing; 404 with the version's
        // metadata (and `data: null`) when that version is deleted or destroyed.
        ("data", false, &Method::GET) => {
            let Some(secret) = kv.v2.get(path) else {
                return not_found();
            };
            let number = call.version.unwrap_or(secret.current_version);
            let Some(version) = secret.versions.get(&number) else {
                return not_found();
            };
            let metadata = version_metadata(version, number);
            match &version.data {
                Some(data) if version.deletion_time.is_empty() && !version.destroyed => {
                    ok(json!({ "data": data, "metadata": metadata }))
                }
                _ => (
                    StatusCode::NOT_FOUND,
                    Json(envelope(json!({ "data": null, "metadata": metadata }))),
                )
                    .into_response(),
            }
        }
        // POST /:mount/data/:path {data, options.cas} — a new version; with `cas`, only
        // when it equals the current version (0: the key must not exist), else 400.
        ("data", false, &Method::POST | &Method::PUT) => {
            let Some(data) = call.body.get("data").and_then(Value::as_object) else {
                return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
            };
            let current = kv.v2.get(path).map_or(0, |secret| secret.current_version);
            if let Some(cas) = call.body.pointer("/options/cas").and_then(Value::as_u64) {
                if cas != current {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["check-and-set parameter did not match the current version"],
                    );
                }
            }
            let secret = kv.v2.entry(path.to_owned()).or_insert_with(|| Versioned {
                created_time: now.clone(),
                ..Versioned::default()
            });
            secret.current_version += 1;
            secret.updated_time = now.clone();
            let version = Version {
                data: Some(data.clone()),
                created_time: now,
                deletion_time: String::new(),
                destroyed: false,
            };
            let answer = version_metadata(&version, secret.current_version);
            secret.versions.insert(secret.current_version, version);
            ok(answer)
        }
        // DELETE /:mount/data/:path — soft-deletes the latest version (204).
        ("data", false, &Method::DELETE) => {
            if let Some(secret) = kv.v2.get_mut(path) {
                let current = secret.current_version;
                if let Some(version) = secret.versions.get_mut(&current) {
                    version.deletion_time = now;
                }
            }
            no_content()
        }
        // POST /:mount/delete/:path {versions} — soft-deletes those versions (204).
        // PUT /:mount/destroy/:path {versions} — removes their data for good (204).
        ("delete" | "destroy", false, &Method::POST | &Method::PUT) => {
            let versions: Vec<u64> = call
                .body
                .get("versions")
                .and_then(Value::as_array)
                .map(|v| v.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            if let Some(secret) = kv.v2.get_mut(path) {
                for number in versions {
                    if let Some(version) = secret.versions.get_mut(&number) {
                        if section == "delete" {
                            version.deletion_time = now.clone();
                        } else {
                            version.destroyed = true;
                            version.data = None;
                        }
                    }
                }
            }
            no_content()
        }
        // GET /:mount/metadata/:path — the key's versions; 404 when missing.
        ("metadata", false, &Method::GET) => {
            let Some(secret) = kv.v2.get(path) else {
                return not_found();
            };
            let versions: Map<String, Value> = secret
                .versions
                .iter()
                .map(|(n, v)| {
                    let meta = json!({"created_time": v.created_time, "deletion_time": v.deletion_time, "destroyed": v.destroyed});
                    (n.to_string(), meta)
                })
                .collect();
            ok(json!({
                "cas_required": false,
                "created_time": secret.created_time,
                "current_version": secret.current_version,
                "custom_metadata": null,
                "delete_version_after": "0s",
                "max_versions": 0,
                "oldest_version": secret.versions.keys().next().copied().unwrap_or(0),
                "updated_time": secret.updated_time,
                "versions": versions,
            }))
        }
        // DELETE /:mount/metadata/:path — every version and the key itself (204, also when
        // absent).
        ("metadata", false, &Method::DELETE) => {
            kv.v2.remove(path);
            no_content()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}
