//! References in credential fields (`ref+vault://<mount>/<path>#<key>`,
//! `ref+awssecrets://<name-or-arn>[#<key>]`): found in a credential, checked against the
//! caller scope's allowlist, and resolved through the backend's own connection.
//!
//! One rule, whatever the configuration: every string value of a credential except `name`
//! and `type`, at any depth (`password`, `billing_address.city`, `metadata.owner`, fields
//! this version does not know), that starts with `ref+` is a reference and must be a valid
//! one. There is no escape for a literal value that starts with `ref+`.
//!
//! At create, each reference must be allowed for the caller's scope, point outside
//! credbridge's own storage, and resolve now (the entry exists, credbridge may read it,
//! the key holds a string); the stored credential keeps the references. At read, each is
//! checked again (the allowlist may have changed since, the stored document may have been
//! edited in the vault) and resolved, each distinct entry read once, concurrently; the
//! credential is returned only when every reference resolved. Values never leave the
//! document they are put into: errors, logs, metrics and audit lines name fields and
//! references (paths and keys), never what they hold.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use credbridge_adapters::{
    AwsSecretId, Backend, Document, Error as BackendError, ErrorKind, InvalidReference, Reference,
    ReferenceTarget, ReferencedEntry, Scope, SecretText, UnusableValue,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit::RequestRecord;
use crate::config::{ConfigError, ReferenceSettings};
use crate::credential::ContractViolation;
use crate::metrics::Metrics;

/// A credential may reference at most this many distinct entries: each is one more read
/// of the vault on every read of the credential.
pub const MAX_ENTRIES: usize = 16;

/// Fields that are labels of the credential, never values: not scanned for references.
const LABELS: [&str; 3] = ["name", "type", "id"];

/// The references of `[references.scopes]`, checked once at load.
#[derive(Debug, Default)]
pub struct Allowlist {
    scopes: HashMap<Scope, Vec<Pattern>>,
}

impl Allowlist {
    /// Checks every scope name and pattern; each error names its key
    /// (`references.scopes.team-a.allow[1]`).
    pub fn from_settings(settings: &ReferenceSettings) -> Result<Self, ConfigError> {
        let mut scopes = HashMap::new();
        for (name, entry) in &settings.scopes {
            let key = format!("references.scopes.{name}");
            let scope = Scope::parse(name)
                .map_err(|error| ConfigError::invalid(&key, error.to_string()))?;
            let patterns = entry
                .allow
                .iter()
                .enumerate()
                .map(|(index, text)| {
                    Pattern::parse(text).map_err(|reason| {
                        ConfigError::invalid(format!("{key}.allow[{index}]"), reason)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            scopes.insert(scope, patterns);
        }
        Ok(Self { scopes })
    }

    /// Whether `scope` may reference `target`: `None` when the scope has no allowlist.
    fn allows(&self, scope: &Scope, target: &ReferenceTarget) -> Option<bool> {
        let patterns = self.scopes.get(scope)?;
        Some(patterns.iter().any(|pattern| pattern.matches(target)))
    }
}

/// One allowlist entry: a Vault path with its mount, an AWS secret name, or an AWS ARN;
/// exact, or with a trailing `*` that matches any rest, `/` included (as in Vault
/// policies).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    /// The text before the `*`, or all of it.
    text: String,
    prefix: bool,
}

impl Pattern {
    fn parse(text: &str) -> Result<Self, &'static str> {
        let (body, prefix) = match text.strip_suffix('*') {
            Some(body) => (body, true),
            None => (text, false),
        };
        if body.is_empty() && !prefix {
            return Err("is empty");
        }
        if body.contains('*') {
            return Err("may have `*` only as its last character");
        }
        let path = if body.starts_with("arn:") {
            AwsSecretId::arn_name(body).ok_or(
                "an ARN pattern must spell out partition, region and account: \
                 arn:<partition>:secretsmanager:<region>:<account>:secret:<name>[*]",
            )?
        } else {
            body
        };
        // The part the `*` continues may end in `/` (`secret/apps/*`) or mid-segment
        // (`secret/apps/team-*`); every whole segment before it is checked.
        let segments: Vec<&str> = path.split('/').collect();
        let last = segments.len() - 1;
        for (index, segment) in segments.iter().enumerate() {
            if segment.is_empty() && !(prefix && index == last) {
                return Err("has an empty path segment (a leading, trailing or doubled `/`)");
            }
            if *segment == "." || *segment == ".." {
                return Err("has a `.` or `..` path segment");
            }
            if !segment.bytes().all(|byte| {
                byte.is_ascii_alphanumeric()
                    || matches!(byte, b'_' | b'-' | b'.' | b'+' | b'=' | b'@')
            }) {
                return Err(
                    "may contain only ASCII letters, digits, `/ _ - . + = @`, an ARN's \
                     `:`-separated parts, and a trailing `*`",
                );
            }
        }
        Ok(Self {
            text: body.to_owned(),
            prefix,
        })
    }

    /// An ARN pattern matches ARNs only, and a name or path pattern never an ARN: a secret
    /// of another account or region is referenced only where a pattern spells them out.
    fn matches(&self, target: &ReferenceTarget) -> bool {
        if self.text.starts_with("arn:") != target.is_arn() {
            return false;
        }
        let subject = target.allowlist_subject();
        if self.prefix {
            subject.starts_with(&self.text)
        } else {
            subject == self.text
        }
    }
}

/// A reference found in a credential, and where.
#[derive(Debug)]
struct Found {
    path: Vec<Step>,
    reference: Reference,
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// `billing_address.city`, `extra[0]`: how messages name a field.
fn field_name(path: &[Step]) -> String {
    let mut name = String::new();
    for step in path {
        match step {
            Step::Key(key) if name.is_empty() => name.push_str(key),
            Step::Key(key) => {
                name.push('.');
                name.push_str(key);
            }
            Step::Index(index) => name.push_str(&format!("[{index}]")),
        }
    }
    name
}

/// A field that starts with `ref+` but is not a valid reference.
struct Malformed {
    field: String,
    reason: InvalidReference,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field `{}` starts with `ref+` but is not a valid reference: it {}",
            self.field, self.reason
        )
    }
}

/// Whether any value of `fields` (labels aside) starts with `ref+`: the read path's check,
/// which allocates nothing.
fn holds_references(fields: &Map<String, Value>) -> bool {
    fn holds(value: &Value) -> bool {
        match value {
            Value::String(text) => Reference::is_reference(text),
            Value::Object(members) => members.values().any(holds),
            Value::Array(items) => items.iter().any(holds),
            _ => false,
        }
    }
    fields
        .iter()
        .any(|(name, value)| !LABELS.contains(&name.as_str()) && holds(value))
}

/// Every reference in `fields`, in document order.
fn find(fields: &Map<String, Value>) -> Result<Vec<Found>, Malformed> {
    let mut found = Vec::new();
    if !holds_references(fields) {
        return Ok(found);
    }
    each_reference_text(fields, &mut |path, text| {
        let reference = Reference::parse(text).map_err(|reason| Malformed {
            field: field_name(path),
            reason,
        })?;
        found.push(Found {
            path: path.to_vec(),
            reference,
        });
        Ok(())
    })?;
    Ok(found)
}

/// Calls `visit` with the path and the text of every value of `fields` (labels aside) that
/// starts with `ref+`, in document order, until it returns an error.
fn each_reference_text<E>(
    fields: &Map<String, Value>,
    visit: &mut impl FnMut(&[Step], &str) -> Result<(), E>,
) -> Result<(), E> {
    fn walk<E>(
        value: &Value,
        path: &mut Vec<Step>,
        visit: &mut impl FnMut(&[Step], &str) -> Result<(), E>,
    ) -> Result<(), E> {
        match value {
            Value::String(text) if Reference::is_reference(text) => visit(path, text)?,
            Value::Object(members) => {
                for (name, member) in members {
                    path.push(Step::Key(name.clone()));
                    walk(member, path, visit)?;
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(Step::Index(index));
                    walk(item, path, visit)?;
                    path.pop();
                }
            }
            _ => {}
        }
        Ok(())
    }
    let mut path = Vec::new();
    for (name, value) in fields {
        if LABELS.contains(&name.as_str()) {
            continue;
        }
        path.push(Step::Key(name.clone()));
        walk(value, &mut path, visit)?;
        path.pop();
    }
    Ok(())
}

/// A field of a stored credential that holds a reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceField {
    /// `password`, `billing_address.city`, `extra[0]`.
    pub field: String,
    /// The `kind` of the backend that can read it (`vault`, `aws`); `None` for a value that
    /// starts with `ref+` but is not a valid reference, which no backend reads.
    pub backend: Option<&'static str>,
}

/// Every field of `document` that holds a reference, malformed ones included, in document
/// order: what `migrate` checks before it copies a credential to another backend. Names
/// fields and backend kinds, never a value or a path.
pub fn reference_fields(document: &Document) -> Vec<ReferenceField> {
    let mut found = Vec::new();
    if holds_references(document.fields()) {
        let visited: Result<(), std::convert::Infallible> =
            each_reference_text(document.fields(), &mut |path, text| {
                found.push(ReferenceField {
                    field: field_name(path),
                    backend: Reference::parse(text)
                        .ok()
                        .map(|reference| reference.target().backend_kind()),
                });
                Ok(())
            });
        let Ok(()) = visited;
    }
    found
}

/// The value at `path`, to replace.
fn slot<'a>(fields: &'a mut Map<String, Value>, path: &[Step]) -> Option<&'a mut Value> {
    let (Step::Key(first), rest) = path.split_first()? else {
        return None;
    };
    rest.iter()
        .try_fold(fields.get_mut(first)?, |value, step| match (value, step) {
            (Value::Object(members), Step::Key(key)) => members.get_mut(key),
            (Value::Array(items), Step::Index(index)) => items.get_mut(*index),
            _ => None,
        })
}

/// Why a reference is refused before anything is read.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// The scope has no allowlist: references are off for it.
    NotEnabled,
    WrongKind {
        backend: &'static str,
    },
    NotAllowed,
    OwnStorage,
    TooMany,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotEnabled => f.write_str("references are not enabled for this token's scope"),
            Refusal::WrongKind { backend } => write!(
                f,
                "this credbridge stores credentials in the '{backend}' backend, which cannot \
                 read this kind of reference"
            ),
            Refusal::NotAllowed => f.write_str("not allowed for this token's scope"),
            Refusal::OwnStorage => f.write_str("points into credbridge's own storage"),
            Refusal::TooMany => write!(
                f,
                "a credential may reference at most {MAX_ENTRIES} distinct entries"
            ),
        }
    }
}

/// Why one reference did not resolve. Names no value.
#[derive(Debug)]
enum Problem {
    Refused(Refusal),
    /// Reading its entry failed.
    Read(BackendError),
    /// Its entry was read, and its key cannot be used.
    Unusable(UnusableValue),
}

/// What became of one reference, before the first failure is told.
enum Resolution {
    Value(SecretText),
    Refused(Refusal),
    /// Reading its entry, the `n`th distinct one, failed.
    ReadFailed(usize),
    Unusable(UnusableValue),
}

impl Resolution {
    /// The `outcome` label of `credbridge_reference_resolutions_total`.
    fn outcome(&self, reads: &[Result<ReferencedEntry, BackendError>]) -> &'static str {
        match self {
            Resolution::Value(_) => "ok",
            Resolution::Refused(_) => "refused",
            Resolution::Unusable(UnusableValue::MissingKey(_)) => "not_found",
            Resolution::Unusable(_) => "unusable",
            Resolution::ReadFailed(index) => match reads[*index].as_ref().map_err(|e| e.kind()) {
                Err(ErrorKind::NotFound) => "not_found",
                Err(ErrorKind::PermissionDenied) => "denied",
                Err(ErrorKind::Unavailable) => "unavailable",
                _ => "error",
            },
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Refused(refusal) => refusal.fmt(f),
            // The backends' own sentences: they name what is wrong, never a path, a value
            // or what the vault answered.
            Problem::Read(error) => match error.kind() {
                ErrorKind::NotFound | ErrorKind::InvalidConfig => f.write_str(error.message()),
                ErrorKind::PermissionDenied => {
                    write!(f, "credbridge may not read it: {}", error.message())
                }
                ErrorKind::Unavailable => {
                    f.write_str("the backend is unavailable; the request may be retried")
                }
                _ => f.write_str("the backend failed; see credbridge's log"),
            },
            Problem::Unusable(unusable) => unusable.fmt(f),
        }
    }
}

/// A reference that did not resolve, where, and why.
struct Failure {
    field: String,
    reference: Reference,
    problem: Problem,
}

/// Why a credential's references stopped a request.
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    /// At create: the credential is refused; nothing is stored.
    #[error(transparent)]
    Invalid(#[from] ContractViolation),
    /// At read: a stored reference did not resolve; nothing of the credential is returned.
    #[error(transparent)]
    Unresolved(Unresolved),
    /// The backend could not be asked (unavailable, or failed unexpectedly at create):
    /// not about the reference itself.
    #[error(transparent)]
    Backend(BackendError),
}

/// A stored reference that did not resolve: the message names the field and the
/// reference; the backend's error, when there is one, is kept for the log.
#[derive(Debug)]
pub struct Unresolved {
    pub message: String,
    pub source: Option<BackendError>,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Unresolved {}

/// Finds, checks and resolves references, through the backend the service runs.
pub struct References {
    allowlist: Allowlist,
    backend: Arc<dyn Backend>,
    metrics: Option<Arc<Metrics>>,
}

impl References {
    /// `backend` is the one requests are served by (metered when metrics are on).
    pub fn new(
        allowlist: Allowlist,
        backend: Arc<dyn Backend>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            allowlist,
            backend,
            metrics,
        }
    }

    /// At create: every reference in `document` must be valid, allowed for `scope` and
    /// resolvable now. Refusals are contract violations naming the field (422).
    pub async fn check_new(
        &self,
        scope: &Scope,
        record: &RequestRecord,
        document: &Document,
    ) -> Result<(), ReferenceError> {
        let found = find(document.fields()).map_err(|malformed| ContractViolation {
            field: malformed.field.clone(),
            message: malformed.to_string(),
        })?;
        if found.is_empty() {
            return Ok(());
        }
        record.set_references(found.iter().map(|found| found.reference.to_string()));
        match self.resolve_all(scope, &found).await {
            Ok(_) => Ok(()),
            Err(failure) => Err(match failure.problem {
                Problem::Read(error)
                    if matches!(
                        error.kind(),
                        ErrorKind::Unavailable | ErrorKind::Unexpected | ErrorKind::AlreadyExists
                    ) =>
                {
                    ReferenceError::Backend(error)
                }
                problem => ReferenceError::Invalid(ContractViolation {
                    message: format!(
                        "field `{}`: {}: {problem}",
                        failure.field, failure.reference
                    ),
                    field: failure.field,
                }),
            }),
        }
    }

    /// At read: `document` with every reference replaced by the value it names now. A
    /// document without references is returned as it is, without a copy.
    pub async fn resolve(
        &self,
        scope: &Scope,
        record: &RequestRecord,
        document: Document,
    ) -> Result<Document, ReferenceError> {
        let found = find(document.fields()).map_err(|malformed| {
            ReferenceError::Unresolved(Unresolved {
                message: malformed.to_string(),
                source: None,
            })
        })?;
        if found.is_empty() {
            return Ok(document);
        }
        record.set_references(found.iter().map(|found| found.reference.to_string()));
        let values =
            self.resolve_all(scope, &found)
                .await
                .map_err(|failure| match failure.problem {
                    Problem::Read(error) if error.kind() == ErrorKind::Unavailable => {
                        ReferenceError::Backend(error)
                    }
                    problem => ReferenceError::Unresolved(Unresolved {
                        message: format!(
                            "field `{}`: {} did not resolve: {problem}",
                            failure.field, failure.reference
                        ),
                        source: match problem {
                            Problem::Read(error) => Some(error),
                            _ => None,
                        },
                    }),
                })?;
        let mut fields = document.fields().clone();
        for (found, value) in found.iter().zip(values) {
            if let Some(slot) = slot(&mut fields, &found.path) {
                *slot = Value::String(value.expose().to_owned());
            }
        }
        Ok(Document::new(fields))
    }

    /// Each reference's value, in the order of `found`; or the first that failed. Every
    /// reference is checked and counted, and each distinct entry read once, concurrently.
    async fn resolve_all(
        &self,
        scope: &Scope,
        found: &[Found],
    ) -> Result<Vec<SecretText>, Failure> {
        let backend_kind = self.backend.info().kind;
        // Each distinct target, numbered in the order first met.
        let mut targets: BTreeMap<&ReferenceTarget, usize> = BTreeMap::new();
        let checks: Vec<Result<usize, Refusal>> = found
            .iter()
            .map(|found| {
                let target = found.reference.target();
                let allowed = self
                    .allowlist
                    .allows(scope, target)
                    .ok_or(Refusal::NotEnabled)?;
                if target.backend_kind() != backend_kind {
                    return Err(Refusal::WrongKind {
                        backend: backend_kind,
                    });
                }
                if !allowed {
                    return Err(Refusal::NotAllowed);
                }
                if self.backend.owns(target) {
                    return Err(Refusal::OwnStorage);
                }
                let next = targets.len();
                let index = *targets.entry(target).or_insert(next);
                if index >= MAX_ENTRIES {
                    return Err(Refusal::TooMany);
                }
                Ok(index)
            })
            .collect();
        let mut order: Vec<(&ReferenceTarget, usize)> = targets.into_iter().collect();
        order.sort_by_key(|(_, index)| *index);
        order.truncate(MAX_ENTRIES);
        let backend = &*self.backend;
        let mut reads = futures_util::future::join_all(
            order
                .iter()
                .map(|(target, _)| backend.read_reference(target)),
        )
        .await;

        let resolutions: Vec<Resolution> = found
            .iter()
            .zip(checks)
            .map(|(found, check)| match check {
                Err(refusal) => Resolution::Refused(refusal),
                Ok(index) => match &reads[index] {
                    Ok(entry) => match entry.value(found.reference.key()) {
                        Ok(value) => Resolution::Value(value.clone()),
                        Err(unusable) => Resolution::Unusable(unusable),
                    },
                    Err(_) => Resolution::ReadFailed(index),
                },
            })
            .collect();
        if let Some(metrics) = &self.metrics {
            for resolution in &resolutions {
                metrics.reference_resolved(backend_kind, resolution.outcome(&reads));
            }
        }
        let mut values = Vec::with_capacity(found.len());
        for (found, resolution) in found.iter().zip(resolutions) {
            let problem = match resolution {
                Resolution::Value(value) => {
                    values.push(value);
                    continue;
                }
                Resolution::Refused(refusal) => Problem::Refused(refusal),
                Resolution::Unusable(unusable) => Problem::Unusable(unusable),
                // Only a failed read is `ReadFailed`; its error moves into the answer.
                Resolution::ReadFailed(index) => Problem::Read(match reads.swap_remove(index) {
                    Err(error) => error,
                    Ok(_) => {
                        BackendError::new(ErrorKind::Unexpected, "the entry could not be read")
                    }
                }),
            };
            return Err(Failure {
                field: field_name(&found.path),
                reference: found.reference.clone(),
                problem,
            });
        }
        tracing::debug!(
            references = found.len(),
            entries = reads.len(),
            "references resolved"
        );
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScopeReferences;
    use serde_json::json;

    fn target(text: &str) -> ReferenceTarget {
        Reference::parse(text).unwrap().target().clone()
    }

    fn allows(pattern: &str, reference: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(&target(reference))
    }

    #[test]
    fn patterns_match_exactly_or_by_a_trailing_star() {
        assert!(allows(
            "secret/apps/team-a/*",
            "ref+vault://secret/apps/team-a/smtp#k"
        ));
        assert!(allows(
            "secret/apps/team-a/*",
            "ref+vault://secret/apps/team-a/x/y#k"
        ));
        assert!(!allows(
            "secret/apps/team-a/*",
            "ref+vault://secret/apps/team-a#k"
        ));
        assert!(!allows(
            "secret/apps/team-a/*",
            "ref+vault://secret/apps/team-ab/x#k"
        ));
        assert!(allows("kv/shared/smtp", "ref+vault://kv/shared/smtp#k"));
        assert!(!allows("kv/shared/smtp", "ref+vault://kv/shared/smtp2#k"));
        assert!(allows("apps/team-*", "ref+awssecrets://apps/team-b/x"));
        assert!(allows("*", "ref+awssecrets://anything/at/all"));
    }

    #[test]
    fn arns_match_arn_patterns_only() {
        let arn = "ref+awssecrets://arn:aws:secretsmanager:eu-west-1:123456789012:secret:apps/smtp-AbCdEf#k";
        assert!(!allows("*", arn));
        assert!(!allows("apps/*", arn));
        assert!(allows(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apps/*",
            arn
        ));
        assert!(!allows(
            "arn:aws:secretsmanager:eu-west-1:999999999999:secret:apps/*",
            arn
        ));
        assert!(!allows(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apps/*",
            "ref+awssecrets://apps/smtp"
        ));
    }

    #[test]
    fn patterns_refuse_traversal_encodings_and_inner_stars() {
        for bad in [
            "",
            "secret/../x/*",
            "secret/./x",
            "secret//x",
            "/secret/x",
            "secret/x/",
            "secret/*/x",
            "secret/x**",
            "secret/%2e%2e/*",
            "secret\\x",
            "secret/x y",
            "arn:aws:secretsmanager:*",
            "arn:aws:secretsmanager:eu-west-1:*:secret:x",
            "arn:aws:secretsmanager:eu-west-1:1234:secret:x",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
        for good in [
            "*",
            "secret/*",
            "secret/apps/team-*",
            "kv/x",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:*",
        ] {
            assert!(Pattern::parse(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn allowlist_errors_name_their_key() {
        let mut settings = ReferenceSettings::default();
        settings.scopes.insert(
            "team-a".to_owned(),
            ScopeReferences {
                allow: vec!["secret/*".to_owned(), "secret/../x".to_owned()],
            },
        );
        let error = Allowlist::from_settings(&settings).unwrap_err().to_string();
        assert!(
            error.starts_with("references.scopes.team-a.allow[1]: "),
            "{error}"
        );
        settings.scopes.clear();
        settings
            .scopes
            .insert("team/a".to_owned(), ScopeReferences::default());
        let error = Allowlist::from_settings(&settings).unwrap_err().to_string();
        assert!(error.starts_with("references.scopes.team/a: "), "{error}");
    }

    #[test]
    fn a_scope_uses_its_own_patterns_only() {
        let mut settings = ReferenceSettings::default();
        settings.scopes.insert(
            "team-a".to_owned(),
            ScopeReferences {
                allow: vec!["secret/a/*".to_owned()],
            },
        );
        settings
            .scopes
            .insert("team-b".to_owned(), ScopeReferences::default());
        let allowlist = Allowlist::from_settings(&settings).unwrap();
        let scope = |name| Scope::parse(name).unwrap();
        let secret = target("ref+vault://secret/a/x#k");
        assert_eq!(allowlist.allows(&scope("team-a"), &secret), Some(true));
        assert_eq!(allowlist.allows(&scope("team-b"), &secret), Some(false));
        assert_eq!(allowlist.allows(&scope("team-c"), &secret), None);
    }

    #[test]
    fn references_are_found_in_every_string_but_name_and_type() {
        let document = json!({
            "name": "ref+vault://secret/a/name#k",
            "type": "password",
            "username": "ref+vault://secret/a/x#user",
            "password": "plain",
            "billing_address": {"city": "ref+vault://secret/a/x#city", "line1": null},
            "metadata": {"owner": "ref+awssecrets://apps/owner"},
            "extra": [{"deep": "ref+vault://secret/a/y#k"}],
        });
        let found = find(document.as_object().unwrap()).ok().unwrap();
        let fields: Vec<String> = found.iter().map(|found| field_name(&found.path)).collect();
        assert_eq!(
            fields,
            [
                "billing_address.city",
                "extra[0].deep",
                "metadata.owner",
                "username"
            ]
        );
        let mut fields = document.as_object().unwrap().clone();
        *slot(&mut fields, &found[1].path).unwrap() = json!("v");
        assert_eq!(fields["extra"], json!([{"deep": "v"}]));
    }

    #[test]
    fn a_malformed_reference_is_named_without_its_text() {
        let document = json!({"name": "n", "type": "secret", "secret_value": "ref+hunter2%"});
        let Err(malformed) = find(document.as_object().unwrap()) else {
            panic!("accepted")
        };
        let message = malformed.to_string();
        assert!(
            message.starts_with("field `secret_value` starts with `ref+`"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn reference_fields_name_every_reference_with_its_backend_malformed_ones_too() {
        let document = Document::new(
            json!({
                "name": "ref+vault://secret/a/name#k",
                "type": "password",
                "username": "ref+hunter2%",
                "password": "ref+vault://secret/a/x#password",
                "metadata": {"owner": "ref+awssecrets://apps/owner", "team": "plain"},
            })
            .as_object()
            .unwrap()
            .clone(),
        );
        let field = |field: &str, backend| ReferenceField {
            field: field.to_owned(),
            backend,
        };
        assert_eq!(
            reference_fields(&document),
            [
                field("metadata.owner", Some("aws")),
                field("password", Some("vault")),
                field("username", None),
            ]
        );
        let plain = Document::new(
            json!({"name": "n", "type": "secret", "secret_value": "v"})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(reference_fields(&plain), []);
    }
}
