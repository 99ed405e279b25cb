//! The one pure step of start-up: the configuration, with Vault's environment applied,
//! checked and turned into what [`VaultBackend::connect`](super::VaultBackend::connect)
//! needs. `check-config` runs exactly this step, so anything it accepts gets past it at
//! start-up too; nothing here reads a file or touches the network.

use std::path::PathBuf;
use std::time::Duration;

use super::config::{KvVersion, VaultAuth, VaultConfig};
use super::session::{check_token_text, Method, SecretSource};
use crate::{Error, Result, SecretText};

/// Everything `connect` needs, resolved and checked.
pub(crate) struct Plan {
    /// An `http://` or `https://` URL.
    pub address: reqwest::Url,
    pub namespace: Option<String>,
    pub ca_cert: Option<PathBuf>,
    /// Client certificate and key, both or neither.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub mount: String,
    pub prefix: String,
    pub kv_version: KvVersion,
    pub method: Method,
}

/// The `VAULT_*` variables credbridge honours; they fill in what the configuration
/// leaves unset.
pub(crate) struct Env {
    pub addr: Option<String>,
    pub token: Option<String>,
    pub namespace: Option<String>,
    pub cacert: Option<String>,
}

impl Env {
    pub fn from_process() -> Self {
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

/// The checks `connect` makes before it touches the network, for `check-config`.
pub fn validate(config: &VaultConfig) -> Result<()> {
    plan(config, Env::from_process()).map(drop)
}

pub(crate) fn plan(config: &VaultConfig, env: Env) -> Result<Plan> {
    let address = config
        .address
        .clone()
        .or(env.addr)
        .unwrap_or_else(|| "http://127.0.0.1:8200".to_owned());
    let address = match reqwest::Url::parse(&address) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => url,
        _ => {
            return Err(Error::invalid_setting(
                "backend.address",
                "must be an http:// or https:// URL",
            )
            .with_context("value", &address))
        }
    };
    let namespace = config
        .namespace
        .clone()
        .or(env.namespace)
        .map(|namespace| namespace.trim_matches('/').to_owned())
        .filter(|namespace| !namespace.is_empty());
    let client_cert = match (&config.tls.client_cert, &config.tls.client_key) {
        (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
        (None, None) => None,
        _ => {
            return Err(Error::invalid_setting(
                "backend.tls.client_cert",
                "goes together with backend.tls.client_key: set both or neither",
            ))
        }
    };
    Ok(Plan {
        address,
        namespace,
        ca_cert: config.tls.ca_cert.clone().or(env.cacert.map(PathBuf::from)),
        client_cert,
        connect_timeout: config.connect_timeout,
        request_timeout: config.request_timeout,
        mount: check_path(&config.mount, "backend.mount")?,
        prefix: check_path(&config.path_prefix, "backend.path_prefix")?,
        kv_version: config.kv_version,
        method: method(&config.auth, env.token)?,
    })
}

fn method(auth: &VaultAuth, env_token: Option<String>) -> Result<Method> {
    Ok(match auth {
        VaultAuth::Token(auth) => match (&auth.token, &auth.token_file) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid_setting(
                    "backend.auth.token",
                    "cannot be combined with backend.auth.token_file: set one of them",
                ))
            }
            (Some(token), None) => {
                check_token_text(token, "backend.auth.token")?;
                Method::Static(token.clone())
            }
            (None, Some(path)) => Method::TokenFile(path.clone()),
            (None, None) => match env_token.map(SecretText::new) {
                Some(token) => {
                    check_token_text(&token, "VAULT_TOKEN")?;
                    Method::Static(token)
                }
                None => {
                    return Err(Error::invalid_setting(
                        "backend.auth.token",
                        "no Vault token: set it, backend.auth.token_file or VAULT_TOKEN",
                    ))
                }
            },
        },
        VaultAuth::Approle(auth) => {
            let secret_id = match (&auth.secret_id, &auth.secret_id_file) {
                (Some(secret), None) => SecretSource::Value(secret.clone()),
                (None, Some(path)) => SecretSource::File(path.clone()),
                _ => {
                    return Err(Error::invalid_setting(
                        "backend.auth.secret_id",
                        "AppRole needs exactly one of it and backend.auth.secret_id_file",
                    ))
                }
            };
            if auth.role_id.is_empty() {
                return Err(Error::invalid_setting("backend.auth.role_id", "is empty"));
            }
            Method::AppRole {
                mount: check_path(&auth.mount, "backend.auth.mount")?,
                role_id: auth.role_id.clone(),
                secret_id,
            }
        }
        VaultAuth::Kubernetes(auth) => {
            if auth.role.is_empty() {
                return Err(Error::invalid_setting("backend.auth.role", "is empty"));
            }
            Method::Kubernetes {
                mount: check_path(&auth.mount, "backend.auth.mount")?,
                role: auth.role.clone(),
                jwt_path: auth.jwt_path.clone(),
            }
        }
    })
}

/// A Vault path given in configuration: `/`-separated segments, none empty, `.` or `..`,
/// none with characters that would need escaping in a URL. Leading and trailing slashes
/// are forgiven.
fn check_path(value: &str, key: &'static str) -> Result<String> {
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
        Err(Error::invalid_setting(
            key,
            "must be a Vault path of letters, digits, '_', '-' and '.' separated by '/'",
        )
        .with_context("value", value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendConfig;
    use crate::vault::TokenAuth;
    use crate::ErrorKind;

    fn no_env() -> Env {
        Env {
            addr: None,
            token: Some("env-token".to_owned()),
            namespace: None,
            cacert: None,
        }
    }

    fn vault(text: &str) -> VaultConfig {
        match toml::from_str(&format!("kind = \"vault\"\n{text}")).unwrap() {
            BackendConfig::Vault(config) => config,
            _ => panic!("not vault"),
        }
    }

    fn refused(config: &VaultConfig, env: Env) -> Error {
        match plan(config, env) {
            Err(error) => error,
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn configured_paths_refuse_dots_and_empty_segments() {
        assert_eq!(check_path("/secret/", "mount").unwrap(), "secret");
        assert_eq!(check_path("a/b-c_d.e", "mount").unwrap(), "a/b-c_d.e");
        for bad in ["", "/", "a//b", "a/../b", "a/./b", "a b", "a?b", "a%2F"] {
            assert!(check_path(bad, "mount").is_err(), "{bad:?}");
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
        let plan = plan(&VaultConfig::default(), env).unwrap();
        assert_eq!(plan.address.as_str(), "http://env:8200/");
        assert_eq!(plan.namespace.as_deref(), Some("env-ns"));
        assert_eq!(plan.ca_cert, Some(PathBuf::from("/env/ca.pem")));
        assert!(matches!(plan.method, Method::Static(ref t) if t.expose() == "env-token"));
    }

    #[test]
    fn the_config_wins_over_the_environment() {
        let mut config = VaultConfig {
            address: Some("http://config:8200".to_owned()),
            namespace: Some("config-ns".to_owned()),
            ..VaultConfig::default()
        };
        config.tls.ca_cert = Some(PathBuf::from("/config/ca.pem"));
        config.auth = VaultAuth::Token(TokenAuth {
            token: Some(SecretText::new("config-token")),
            token_file: None,
        });
        let env = Env {
            addr: Some("http://env:8200".to_owned()),
            token: Some("env-token".to_owned()),
            namespace: Some("env-ns".to_owned()),
            cacert: Some("/env/ca.pem".to_owned()),
        };
        let plan = plan(&config, env).unwrap();
        assert_eq!(plan.address.as_str(), "http://config:8200/");
        assert_eq!(plan.namespace.as_deref(), Some("config-ns"));
        assert_eq!(plan.ca_cert, Some(PathBuf::from("/config/ca.pem")));
        assert!(matches!(plan.method, Method::Static(ref t) if t.expose() == "config-token"));
    }

    #[test]
    fn no_token_anywhere_is_an_invalid_config() {
        let env = Env {
            token: None,
            ..no_env()
        };
        let error = refused(&VaultConfig::default(), env);
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.message().contains("VAULT_TOKEN"), "{error}");
    }

    #[test]
    fn approle_needs_exactly_one_secret_id_source() {
        let config = vault("[auth]\nmethod = \"approle\"\nrole_id = \"r\"");
        assert_eq!(refused(&config, no_env()).kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn the_address_must_be_an_http_or_https_url() {
        for address in ["vault:8200", "ftp://vault", "http://", "not a url"] {
            let config = vault(&format!("address = \"{address}\""));
            let error = refused(&config, no_env());
            assert!(error.message().contains("address"), "{address}: {error}");
        }
        plan(&vault("address = \"https://vault.example:8200\""), no_env()).unwrap();
    }

    #[test]
    fn the_client_certificate_and_key_go_together() {
        let config = vault("[tls]\nclient_cert = \"/c.pem\"");
        assert!(refused(&config, no_env()).message().contains("client_key"));
    }

    #[test]
    fn every_configured_path_is_checked() {
        for text in [
            "mount = \"a//b\"",
            "path_prefix = \"../x\"",
            "[auth]\nmethod = \"approle\"\nrole_id = \"r\"\nsecret_id = \"s\"\nmount = \"a b\"",
        ] {
            let error = refused(&vault(text), no_env());
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{text}");
        }
    }
}
