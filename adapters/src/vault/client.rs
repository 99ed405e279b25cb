//! The one HTTP client credbridge talks to Vault with, and the endpoints vaultrs lacks.
//!
//! vaultrs sends through a rustify client that wraps a `reqwest::Client`; credbridge builds
//! that `reqwest::Client` itself, because vaultrs's own constructor sets neither a connect
//! timeout nor reads its TLS files from credbridge's configuration. The token is not part
//! of the client: every request gets a [`Conn`] carrying the token of the current login,
//! so a re-login changes what the next request sends without a lock around the client.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rustify::clients::reqwest::Client as HttpClient;
use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use rustify::errors::ClientError as HttpError;
use serde::Deserialize;
use vaultrs::api::EndpointMiddleware;
use vaultrs::client::{Client, VaultClientSettings, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;

use super::error::{classify, health, Request};
use super::plan::Plan;
use crate::{Error, Result};

/// The shared HTTP client: one connection pool for every request and for the login.
pub(crate) struct Http {
    client: HttpClient,
    settings: VaultClientSettings,
    namespace: Option<String>,
}

impl Http {
    /// Builds the client. Start-up only: reads the TLS files.
    pub fn new(plan: &Plan) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_rustls()
            .connect_timeout(plan.connect_timeout)
            .timeout(plan.request_timeout)
            // Vault is addressed directly; a system proxy would be a surprise here.
            .no_proxy();
        if plan.address.scheme() == "http" {
            // No TLS will be used; skipping the platform's trust store keeps start-up from
            // failing on machines that have none (reqwest issue 2988, as vaultrs does).
            builder = builder.tls_certs_only(Vec::new());
        } else if let Some(path) = &plan.ca_cert {
            let pem = read_file(path, "backend.tls.ca_cert")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                Error::invalid_setting("backend.tls.ca_cert", "is not a PEM certificate bundle")
                    .with_context("path", path.display())
                    .with_source(error)
            })?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some((cert, key)) = &plan.client_cert {
            let mut pem = read_file(cert, "backend.tls.client_cert")?;
            pem.push(b'\n');
            pem.extend(read_file(key, "backend.tls.client_key")?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|error| {
                Error::invalid_setting(
                    "backend.tls.client_cert",
                    "and backend.tls.client_key are not a PEM certificate and its key",
                )
                .with_source(error)
            })?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|error| {
            Error::invalid_config("cannot build the HTTP client for Vault").with_source(error)
        })?;
        let address = plan.address.as_str();
        // Every field is set explicitly: vaultrs's defaults read VAULT_* variables, and
        // credbridge has already applied them, with its own configuration winning.
        let settings = VaultClientSettingsBuilder::default()
            .address(address)
            .token("")
            .ca_certs(Vec::new())
            .identity(None)
            .verify(true)
            .timeout(Some(plan.request_timeout))
            .namespace(plan.namespace.clone())
            .build()
            .map_err(|error| {
                Error::invalid_config("invalid Vault client settings").with_source(error)
            })?;
        Ok(Self {
            client: HttpClient::new(address.trim_end_matches('/'), http),
            settings,
            namespace: plan.namespace.clone(),
        })
    }

    /// A client for one request, sending `token`.
    pub fn conn(self: &Arc<Self>, token: &str) -> Conn {
        Conn {
            http: Arc::clone(self),
            middle: EndpointMiddleware {
                token: token.to_owned(),
                version: "v1".to_owned(),
                wrap: None,
                namespace: self.namespace.clone(),
            },
        }
    }

    /// Whether this Vault node can serve requests now, from `sys/health`'s status code
    /// alone: its body differs between Vault editions and forks (OpenBao has no
    /// `performance_standby`), the codes do not. Sent without a namespace, which Vault
    /// refuses on this endpoint, and without a token, which it does not need.
    pub async fn health(&self) -> Result<()> {
        let root = EndpointMiddleware {
            token: String::new(),
            version: "v1".to_owned(),
            wrap: None,
            namespace: None,
        };
        match ReadHealth.with_middleware(&root).exec(&self.client).await {
            Ok(_) => Ok(()),
            Err(HttpError::ServerResponseError { code, .. }) => health(code),
            Err(error) => Err(classify(
                ClientError::RestClientError { source: error },
                Request::Other,
                "check Vault's health",
            )),
        }
    }
}

fn read_file(path: &Path, key: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|error| {
        Error::invalid_setting(key, "cannot read the file it names")
            .with_context("path", path.display())
            .with_source(error)
    })
}

/// The vaultrs client for one request: the shared HTTP client and one token.
pub(crate) struct Conn {
    http: Arc<Http>,
    middle: EndpointMiddleware,
}

#[async_trait::async_trait]
impl Client for Conn {
    fn http(&self) -> &HttpClient {
        &self.http.client
    }

    fn middle(&self) -> &EndpointMiddleware {
        &self.middle
    }

    fn settings(&self) -> &VaultClientSettings {
        &self.http.settings
    }

    fn set_token(&mut self, token: &str) {
        self.middle.token = token.to_owned();
    }
}

/// `GET /v1/sys/health`, whose answer is read by [`Http::health`].
struct ReadHealth;

impl Endpoint for ReadHealth {
    type Response = ();
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "sys/health".to_owned()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}

/// `GET /v1/sys/internal/ui/mounts/:path`: the mount holding `path` (a mount, or any path
/// in one), its engine type and options (KV's `version`). Any token with a capability
/// under the mount may read it.
pub(crate) struct ReadMount {
    pub mount: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct MountInfo {
    /// The mount's path, with a trailing `/`: asked about any path, Vault answers with the
    /// mount that holds it.
    #[serde(default)]
    pub path: Option<String>,
    #[serde(rename = "type")]
    pub engine: String,
    #[serde(default)]
    pub options: Option<HashMap<String, String>>,
}

impl Endpoint for ReadMount {
    type Response = MountInfo;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("sys/internal/ui/mounts/{}", self.mount)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}

/// `POST /v1/sys/capabilities-self`: what the request's token may do on `path`.
pub(crate) struct CapabilitiesSelf {
    pub path: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Capabilities {
    pub capabilities: Vec<String>,
}

impl Endpoint for CapabilitiesSelf {
    type Response = Capabilities;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "sys/capabilities-self".to_owned()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> std::result::Result<Option<Vec<u8>>, rustify::errors::ClientError> {
        let body = serde_json::json!({ "paths": [self.path] });
        Ok(Some(body.to_string().into_bytes()))
    }
}

/// Runs a vaultrs-style endpoint that answers in Vault's envelope, returning `data`.
pub(crate) async fn exec<E: Endpoint>(
    conn: &Conn,
    endpoint: E,
) -> std::result::Result<E::Response, ClientError> {
    vaultrs::api::exec_with_result(conn, endpoint).await
}
