//! `credbridge migrate`: copies every credential of some scopes from one backend to another
//! under the same ids, so that Skyvern, which keeps each credential's id, finds every one of
//! them after the move.
//!
//! The copy is safe to interrupt and run again: an id the target already holds with the same
//! document is skipped, one it holds with a different document is a conflict, reported and
//! never overwritten. A copy counts only once it was read back from the target and found
//! identical, and the source is deleted from (with `delete_source`) only after a run without
//! any failure or conflict, and only the ids so verified. No field of a credential is ever
//! part of what this module reports.
//!
//! A credential whose fields hold references (`ref+vault://…`, `ref+awssecrets://…`) is
//! copied as it is stored, references and all, since credbridge resolves them on every
//! read through its own backend. So a reference only a backend of another kind can read is
//! not copied (the copy could never be read: 502 `reference_unresolved`); the run reports
//! it as a failure naming the id and the field. Every credential holding references is
//! listed in the summary, by field names only.

use std::sync::Arc;
use std::time::Duration;

use credbridge_adapters::vault::VaultConfig;
use credbridge_adapters::{Backend, CredentialId, Document, Error, ErrorKind, Key, Scope};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::config::{reserved_key, Settings, RESERVED_SCOPE_PREFIX};
use crate::references::{reference_fields, ReferenceField};

/// The check that source and target are two different stores writes its marker in the
/// reserved scope `credbridge-migrate`.
const CANARY_TOOL: &str = "migrate";
/// How many ids are copied at once unless told otherwise: enough to hide a backend's
/// latency, few enough not to trip its rate limits.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Why a migration could not start.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(
        "the {side} configuration uses the {kind} backend, which lives inside one process: \
         there is nothing to migrate from or to across processes"
    )]
    NotPersistent {
        side: &'static str,
        kind: &'static str,
    },
    #[error("--from and --to describe the same backend: there is nothing to migrate")]
    SameBackend,
    #[error(
        "--from and --to reach the same store (a marker written to the target was readable \
         from the source): deleting from the source would delete the credentials themselves"
    )]
    SameStore,
    #[error("cannot check that --from and --to are different stores: {0}")]
    Canary(credbridge_adapters::Error),
    #[error("the {side} backend: {source}")]
    Backend {
        side: &'static str,
        source: credbridge_adapters::Error,
    },
    #[error(
        "no scope to migrate: the --from configuration has no token; name the scopes with \
         --scope"
    )]
    NoScope,
    #[error("scope '{0}' is reserved for credbridge's own tools")]
    ReservedScope(Scope),
}

/// What to migrate, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scopes: Vec<Scope>,
    /// Read and compare only; write nothing anywhere.
    pub dry_run: bool,
    /// After a run with no failure and no conflict, delete from the source every id found
    /// identical in the target.
    pub delete_source: bool,
    /// Ids in flight at once (at least 1).
    pub concurrency: usize,
}

impl Plan {
    /// The scopes `given`, or, when none is, the scopes the source configuration's tokens
    /// grant: what that deployment serves.
    pub fn scopes_for(source: &Settings, given: Vec<Scope>) -> Result<Vec<Scope>, MigrateError> {
        let mut scopes = if given.is_empty() {
            source.token_scopes()
        } else {
            given
        };
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(MigrateError::NoScope);
        }
        if let Some(reserved) = scopes
            .iter()
            .find(|scope| scope.as_str().starts_with(RESERVED_SCOPE_PREFIX))
        {
            return Err(MigrateError::ReservedScope(reserved.clone()));
        }
        Ok(scopes)
    }
}

/// Refuses, before connecting, what cannot be migrated: a backend that is not persistent
/// (memory) on either side, or the same backend configuration on both.
pub fn check_sides(from: &Settings, to: &Settings) -> Result<(), MigrateError> {
    for (side, settings) in [("--from", from), ("--to", to)] {
        let info = settings.backend.info();
        if !info.capabilities.persistent {
            return Err(MigrateError::NotPersistent {
                side,
                kind: info.kind,
            });
        }
    }
    if from.backend == to.backend {
        return Err(MigrateError::SameBackend);
    }
    Ok(())
}

/// How long a backend may take to connect (Vault logs in in the background) before
/// `migrate` gives up on it.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Builds both backends the way `serve` builds them, after [`check_sides`], and waits until
/// each passes its readiness check: reachable, logged in, authorized.
pub async fn connect(
    from: &Settings,
    to: &Settings,
) -> Result<(Arc<dyn Backend>, Arc<dyn Backend>), MigrateError> {
    check_sides(from, to)?;
    let source = ready("--from", from).await?;
    let target = ready("--to", to).await?;
    Ok((source, target))
}

async fn ready(side: &'static str, settings: &Settings) -> Result<Arc<dyn Backend>, MigrateError> {
    let backend = settings
        .backend
        .build()
        .await
        .map_err(|source| MigrateError::Backend { side, source })?;
    until_ready(backend.as_ref(), CONNECT_LIMIT)
        .await
        .map_err(|source| MigrateError::Backend { side, source })?;
    Ok(backend)
}

/// Waits until `backend`'s readiness check passes, for at most `limit`; the last error
/// otherwise. A backend may still be connecting right after it is built.
pub async fn until_ready(backend: &dyn Backend, limit: Duration) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match backend.check().await {
            Ok(()) => return Ok(()),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// What happened to one id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written to the target and read back identical.
    Copied,
    /// Dry run: absent from the target, so a real run would copy it.
    WouldCopy,
    /// Already in the target with the same document.
    Skipped,
    /// In the target with a different document: reported, left alone.
    Conflict,
    /// Listed in the source but gone before it was read (deleted meanwhile).
    Gone,
    /// Not copied or not verified; the reason names the step and the backend's error.
    Failed(String),
    /// Deleted from the source after a clean run.
    Deleted,
}

impl Outcome {
    /// A stable lowercase name, for `--verbose` and `--json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Copied => "copied",
            Outcome::WouldCopy => "would_copy",
            Outcome::Skipped => "skipped",
            Outcome::Conflict => "conflict",
            Outcome::Gone => "gone",
            Outcome::Failed(_) => "failed",
            Outcome::Deleted => "deleted",
        }
    }
}

/// One id's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReport {
    pub scope: Scope,
    pub id: CredentialId,
    pub outcome: Outcome,
    /// The fields of its source document that hold references (copy phase only).
    pub references: Vec<ReferenceField>,
}

/// Told about the run as it goes: the CLI draws its progress bar and `--verbose` lines from
/// this, and tests use it to interrupt a run at a chosen point.
pub trait Progress: Send {
    /// Every scope is listed: `total` ids will be copied (or compared).
    fn started(&mut self, _total: usize) {}
    /// One id is done (copy phase).
    fn item(&mut self, _report: &ItemReport) {}
    /// The source deletion starts, for `total` ids.
    fn deleting(&mut self, _total: usize) {}
    /// One id was deleted from the source, or failed to be.
    fn deleted(&mut self, _report: &ItemReport) {}
}

/// No progress reporting.
pub struct Quiet;
impl Progress for Quiet {}

/// An id, or a whole scope when `id` is `None`, and what went wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub scope: Scope,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<CredentialId>,
    pub reason: String,
}

/// An id in a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub scope: Scope,
    pub id: CredentialId,
}

/// A credential whose fields hold references, and which fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WithReferences {
    pub scope: Scope,
    pub id: CredentialId,
    pub fields: Vec<ReferenceField>,
}

/// Whether the source was deleted from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceDeletion {
    NotRequested,
    /// Not done: the run had failures or conflicts, or was a dry run.
    Withheld,
    Done,
}

/// The totals of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub scopes: Vec<Scope>,
    /// Ids found in the source.
    pub listed: usize,
    pub copied: usize,
    pub would_copy: usize,
    pub skipped: usize,
    pub gone: usize,
    pub conflicts: Vec<Item>,
    pub failures: Vec<Failure>,
    /// Every credential read from the source whose fields hold references, copied or not.
    pub references: Vec<WithReferences>,
    pub source_deletion: SourceDeletion,
    pub deleted: usize,
}

impl Summary {
    fn new(plan: &Plan) -> Self {
        Self {
            dry_run: plan.dry_run,
            scopes: plan.scopes.clone(),
            listed: 0,
            copied: 0,
            would_copy: 0,
            skipped: 0,
            gone: 0,
            conflicts: Vec::new(),
            failures: Vec::new(),
            references: Vec::new(),
            source_deletion: if plan.delete_source {
                SourceDeletion::Withheld
            } else {
                SourceDeletion::NotRequested
            },
            deleted: 0,
        }
    }

    /// Counts one id's outcome.
    pub fn record(&mut self, report: &ItemReport) {
        if !report.references.is_empty() {
            self.references.push(WithReferences {
                scope: report.scope.clone(),
                id: report.id.clone(),
                fields: report.references.clone(),
            });
        }
        match &report.outcome {
            Outcome::Copied => self.copied += 1,
            Outcome::WouldCopy => self.would_copy += 1,
            Outcome::Skipped => self.skipped += 1,
            Outcome::Gone => self.gone += 1,
            Outcome::Deleted => self.deleted += 1,
            Outcome::Conflict => self.conflicts.push(Item {
                scope: report.scope.clone(),
                id: report.id.clone(),
            }),
            Outcome::Failed(reason) => self.failures.push(Failure {
                scope: report.scope.clone(),
                id: Some(report.id.clone()),
                reason: reason.clone(),
            }),
        }
    }

    /// True when nothing failed and nothing conflicted.
    pub fn clean(&self) -> bool {
        self.failures.is_empty() && self.conflicts.is_empty()
    }
}

/// Runs `plan`: lists every scope in the source, copies (or, in a dry run, compares) each
/// id with at most `plan.concurrency` in flight, then deletes from the source if asked and
/// the run was clean.
///
/// Dropping the returned future stops the run; whatever was written stays, and a second
/// run skips it.
pub async fn run(
    source: &dyn Backend,
    target: &dyn Backend,
    plan: &Plan,
    progress: &mut dyn Progress,
) -> Result<Summary, MigrateError> {
    if plan.delete_source && !plan.dry_run {
        check_distinct(source, target).await?;
    }
    let mut summary = Summary::new(plan);
    let mut keys = Vec::new();
    for scope in &plan.scopes {
        match source.list(scope).await {
            Ok(ids) => keys.extend(ids.into_iter().map(|id| Key::new(scope.clone(), id))),
            Err(error) => summary.failures.push(Failure {
                scope: scope.clone(),
                id: None,
                reason: format!("list the source: {error}"),
            }),
        }
    }
    summary.listed = keys.len();
    progress.started(keys.len());

    let mut verified = Vec::new();
    let mut copies = stream::iter(keys)
        .map(|key| async move {
            let (outcome, references) = copy_one(source, target, &key, plan.dry_run).await;
            ItemReport {
                scope: key.scope,
                id: key.id,
                outcome,
                references,
            }
        })
        .buffer_unordered(plan.concurrency.max(1));
    while let Some(report) = copies.next().await {
        summary.record(&report);
        progress.item(&report);
        if matches!(report.outcome, Outcome::Copied | Outcome::Skipped) {
            verified.push(Key::new(report.scope, report.id));
        }
    }
    drop(copies);

    if plan.delete_source && !plan.dry_run && summary.clean() {
        progress.deleting(verified.len());
        let mut deletions = stream::iter(verified)
            .map(|key| async move {
                let outcome = match source.delete(&key).await {
                    Ok(()) => Outcome::Deleted,
                    Err(error) => Outcome::Failed(format!("delete from the source: {error}")),
                };
                ItemReport {
                    scope: key.scope,
                    id: key.id,
                    outcome,
                    references: Vec::new(),
                }
            })
            .buffer_unordered(plan.concurrency.max(1));
        while let Some(report) = deletions.next().await {
            summary.record(&report);
            progress.deleted(&report);
        }
        summary.source_deletion = SourceDeletion::Done;
    }
    Ok(summary)
}

/// Copies (or compares) one id, and names the fields of its document that hold
/// references.
async fn copy_one(
    source: &dyn Backend,
    target: &dyn Backend,
    key: &Key,
    dry_run: bool,
) -> (Outcome, Vec<ReferenceField>) {
    let document = match source.get(key).await {
        Ok(document) => document,
        Err(error) if error.kind() == ErrorKind::NotFound => return (Outcome::Gone, Vec::new()),
        Err(error) => {
            return (
                Outcome::Failed(format!("read from the source: {error}")),
                Vec::new(),
            )
        }
    };
    let references = reference_fields(&document);
    let outcome = match unreadable_references(&references, target.info().kind) {
        Some(reason) => Outcome::Failed(reason),
        None => copy_document(target, key, &document, dry_run).await,
    };
    (outcome, references)
}

/// Why a document with `references` must not be copied to a backend of kind `target`: the
/// fields holding references only another kind of backend reads. Names fields, never
/// a value.
fn unreadable_references(references: &[ReferenceField], target: &str) -> Option<String> {
    let unreadable: Vec<&ReferenceField> = references
        .iter()
        .filter(|reference| reference.backend.is_some_and(|kind| kind != target))
        .collect();
    // Two kinds of references exist: every one the target cannot read is of the other.
    let first = unreadable.first()?;
    let fields: Vec<String> = unreadable
        .iter()
        .map(|reference| format!("`{}`", reference.field))
        .collect();
    let (holds, what, them) = match fields.len() {
        1 => ("field", "holds a reference", "it"),
        _ => ("fields", "hold references", "each"),
    };
    let scheme = match first.backend {
        Some(kind) if kind == VaultConfig::INFO.kind => "ref+vault://",
        _ => "ref+awssecrets://",
    };
    Some(format!(
        "not copied: {holds} {} {what} ({scheme}) that the {target} target cannot read, so \
         every read of the copy would fail; make {them} a value, or a reference the target can \
         read, then run again",
        fields.join(", ")
    ))
}

/// Copies (or compares) one document. Never overwrites: an id the target holds is compared.
async fn copy_document(
    target: &dyn Backend,
    key: &Key,
    document: &Document,
    dry_run: bool,
) -> Outcome {
    if dry_run {
        return match target.get(key).await {
            Ok(existing) => compare(&existing, document),
            Err(error) if error.kind() == ErrorKind::NotFound => Outcome::WouldCopy,
            Err(error) => Outcome::Failed(format!("read from the target: {error}")),
        };
    }
    match target.put(key, document).await {
        Ok(()) => match target.get(key).await {
            Ok(written) if written == *document => Outcome::Copied,
            Ok(_) => Outcome::Failed(
                "the target holds a different document right after it was written".to_owned(),
            ),
            Err(error) => Outcome::Failed(format!("read back from the target: {error}")),
        },
        Err(error) if error.kind() == ErrorKind::AlreadyExists => match target.get(key).await {
            Ok(existing) => compare(&existing, document),
            Err(error) => Outcome::Failed(format!("read from the target: {error}")),
        },
        Err(error) => Outcome::Failed(format!("write to the target: {error}")),
    }
}

fn compare(existing: &Document, wanted: &Document) -> Outcome {
    if existing == wanted {
        Outcome::Skipped
    } else {
        Outcome::Conflict
    }
}

/// Refuses two handles on one store before anything is deleted: two configurations that
/// differ only in, say, a timeout would otherwise see every id "already identical" in the
/// target and delete it from the source, that is, from the target too.
async fn check_distinct(source: &dyn Backend, target: &dyn Backend) -> Result<(), MigrateError> {
    let key = reserved_key(CANARY_TOOL, "canary");
    let mut fields = serde_json::Map::new();
    fields.insert(
        "name".to_owned(),
        serde_json::Value::String("credbridge migrate: store identity check".to_owned()),
    );
    target
        .put(&key, &Document::new(fields))
        .await
        .map_err(MigrateError::Canary)?;
    let seen = source.get(&key).await;
    let cleanup = target.delete(&key).await;
    match seen {
        Ok(_) => Err(MigrateError::SameStore),
        Err(error) if error.kind() == ErrorKind::NotFound => cleanup.map_err(MigrateError::Canary),
        Err(error) => Err(MigrateError::Canary(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(field: &str, backend: Option<&'static str>) -> ReferenceField {
        ReferenceField {
            field: field.to_owned(),
            backend,
        }
    }

    #[test]
    fn references_another_kind_of_backend_reads_are_named_by_field() {
        let references = [
            field("username", Some("aws")),
            field("password", Some("aws")),
            field("metadata.note", None),
        ];
        let reason = unreadable_references(&references, "vault").unwrap();
        assert!(
            reason.starts_with(
                "not copied: fields `username`, `password` hold references \
                 (ref+awssecrets://) that the vault target cannot read"
            ),
            "{reason}"
        );
        // Read by the target's own kind, or by none: copied as they are.
        assert_eq!(unreadable_references(&references, "aws"), None);
        assert_eq!(unreadable_references(&references[2..], "vault"), None);
    }
}
