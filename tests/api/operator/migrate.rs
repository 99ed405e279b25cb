//! `credbridge migrate`: every pair of backends the test command starts, an interrupted run
//! resumed, conflicts, a dry run, deleting the source, references a target cannot read, and
//! what is refused.

use std::sync::Arc;

use credbridge::migrate::{self, ItemReport, MigrateError, Outcome, Plan, Progress, Summary};
use credbridge_adapters::testkit::unique_scope;
use credbridge_adapters::testkit::vault::{kv1_root, kv2_root};
use credbridge_adapters::{Backend, CredentialId, ErrorKind, Key, Scope};

use super::support::{assert_holds, aws, aws_at, run_async, seed, tokens_for, vault, ConfigFile};
use crate::binary::{credbridge, free_port, Ran};

fn plan(scopes: &[&Scope]) -> Plan {
    Plan {
        scopes: scopes.iter().map(|scope| (*scope).clone()).collect(),
        dry_run: false,
        delete_source: false,
        concurrency: migrate::DEFAULT_CONCURRENCY,
    }
}

async fn migrate_all(source: &dyn Backend, target: &dyn Backend, plan: &Plan) -> Summary {
    migrate::run(source, target, plan, &mut migrate::Quiet)
        .await
        .unwrap()
}

/// Two scopes of credentials of every type reach the target under the same ids, the
/// source keeps them, and the other scopes of either side are untouched.
async fn assert_migrates(source: Arc<dyn Backend>, target: Arc<dyn Backend>) {
    let (first, second, untouched) = (unique_scope(), unique_scope(), unique_scope());
    let in_first = seed(source.as_ref(), &first, 7).await;
    let in_second = seed(source.as_ref(), &second, 5).await;
    let left_alone = seed(source.as_ref(), &untouched, 2).await;

    let summary = migrate_all(source.as_ref(), target.as_ref(), &plan(&[&first, &second])).await;
    assert_eq!(
        (summary.listed, summary.copied, summary.skipped),
        (12, 12, 0),
        "{summary:?}"
    );
    assert!(summary.clean(), "{summary:?}");

    assert_holds(target.as_ref(), &first, &in_first).await;
    assert_holds(target.as_ref(), &second, &in_second).await;
    assert_holds(target.as_ref(), &untouched, &[]).await;
    assert_holds(source.as_ref(), &first, &in_first).await;
    assert_holds(source.as_ref(), &untouched, &left_alone).await;

    // Run again: everything is already there, identical.
    let again = migrate_all(source.as_ref(), target.as_ref(), &plan(&[&first, &second])).await;
    assert_eq!((again.copied, again.skipped), (0, 12), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_to_aws_keeps_every_id_and_document() {
    assert_migrates(kv2_root().await, aws().backend().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_to_vault_keeps_every_id_and_document() {
    assert_migrates(aws().backend().await, kv2_root().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_kv1_to_vault_kv2_keeps_every_id_and_document() {
    assert_migrates(kv1_root().await, kv2_root().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_to_aws_under_another_prefix_keeps_every_id_and_document() {
    assert_migrates(aws().backend().await, aws().backend().await).await;
}

/// Stops the run, as Ctrl-C or a killed process would, once `after` ids were copied.
struct StopAfter {
    after: usize,
    copied: usize,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Progress for StopAfter {
    fn item(&mut self, report: &ItemReport) {
        if report.outcome == Outcome::Copied {
            self.copied += 1;
            if self.copied == self.after {
                if let Some(stop) = self.stop.take() {
                    let _ = stop.send(());
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_resumes_skipping_what_it_copied() {
    let (source, target) = (kv2_root().await, aws().backend().await);
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 40).await;
    let plan = Plan {
        concurrency: 4,
        ..plan(&[&scope])
    };

    let (stop, stopped) = tokio::sync::oneshot::channel();
    let mut progress = StopAfter {
        after: 10,
        copied: 0,
        stop: Some(stop),
    };
    tokio::select! {
        _ = migrate::run(source.as_ref(), target.as_ref(), &plan, &mut progress) => {
            panic!("the run finished before it was interrupted")
        }
        _ = stopped => {}
    }
    // Dropped mid-run: copies in flight were abandoned wherever they were.
    let copied_before = progress.copied;
    assert!(copied_before >= 10);
    assert!(target.list(&scope).await.unwrap().len() < 40);

    let resumed = migrate_all(source.as_ref(), target.as_ref(), &plan).await;
    assert!(resumed.clean(), "{resumed:?}");
    assert_eq!(resumed.copied + resumed.skipped, 40);
    assert!(resumed.skipped >= copied_before, "{resumed:?}");
    assert!(resumed.copied > 0, "the first run was not interrupted");
    assert_holds(target.as_ref(), &scope, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_store_twice_is_refused_before_deleting_anything() {
    // Two configurations that differ in a timeout only: one store.
    let first = aws();
    let mut second = first.config.clone();
    second.max_attempts = 2;
    let source = first.backend().await;
    let target = credbridge_adapters::testkit::moto::connect(&second).await;
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 3).await;
    let deleting = Plan {
        delete_source: true,
        ..plan(&[&scope])
    };
    let error = migrate::run(
        source.as_ref(),
        target.as_ref(),
        &deleting,
        &mut migrate::Quiet,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, MigrateError::SameStore), "{error}");
    assert_holds(source.as_ref(), &scope, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_target_fails_every_id_and_leaves_the_source_alone() {
    let source = aws().backend().await;
    let target = aws_at(&format!("http://127.0.0.1:{}", free_port()))
        .backend()
        .await;
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 3).await;
    let summary = migrate_all(source.as_ref(), target.as_ref(), &plan(&[&scope])).await;
    assert_eq!(summary.failures.len(), 3, "{summary:?}");
    assert!(summary.failures[0]
        .reason
        .starts_with("write to the target"));
    assert_eq!(summary.copied, 0);
    assert_holds(source.as_ref(), &scope, &stored).await;
}

/// `migrate --from FROM --to TO ARGS...`.
async fn migrate_cli(from: &ConfigFile, to: &ConfigFile, args: &[&str]) -> Ran {
    let mut command = credbridge(from.dir.path());
    command
        .args(["migrate", "--from", from.arg(), "--to", to.arg()])
        .args(args);
    run_async(command).await
}

fn assert_no_secret_printed(ran: &Ran) {
    for output in [&ran.stdout, &ran.stderr] {
        assert!(
            !output.contains("SECRET-"),
            "a credential field was printed:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_reported_by_id_never_overwritten_and_withholds_deletion() {
    let (from, to) = (aws(), aws());
    let (source, target) = (from.backend().await, to.backend().await);
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 5).await;
    // The target already holds one id with another document, and one with the same.
    let other = credbridge_adapters::testkit::document(
        serde_json::json!({"name": "another", "type": "secret", "secret_value": "SECRET-other"}),
    );
    target.put(&stored[0].0, &other).await.unwrap();
    target.put(&stored[1].0, &stored[1].1).await.unwrap();

    let ran = migrate_cli(
        &ConfigFile::new(&from.toml),
        &ConfigFile::new(&to.toml),
        &["--scope", scope.as_str(), "--delete-source", "--json"],
    )
    .await;
    assert!(!ran.success(), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("conflicts 1, failures 0"),
        "{}",
        ran.stderr
    );
    let summary = ran.json();
    assert_eq!(summary["copied"], 3);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["conflicts"][0]["id"], stored[0].0.id.as_str());
    assert_eq!(summary["conflicts"][0]["scope"], scope.as_str());
    assert_eq!(summary["source_deletion"], "withheld");
    assert_no_secret_printed(&ran);

    assert_eq!(target.get(&stored[0].0).await.unwrap(), other);
    assert_holds(source.as_ref(), &scope, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_compares_and_writes_nothing() {
    let (from, to) = (vault(2).await, aws());
    let (source, target) = (from.backend().await, to.backend().await);
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 4).await;
    target.put(&stored[0].0, &stored[0].1).await.unwrap();

    let ran = migrate_cli(
        &ConfigFile::new(&from.toml),
        &ConfigFile::new(&to.toml),
        &[
            "--scope",
            scope.as_str(),
            "--dry-run",
            "--delete-source",
            "--json",
        ],
    )
    .await;
    assert!(ran.success(), "{}", ran.stderr);
    let summary = ran.json();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["would_copy"], 3);
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["copied"], 0);
    assert_holds(target.as_ref(), &scope, &stored[..1]).await;
    assert_holds(source.as_ref(), &scope, &stored).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_source_deletes_only_after_a_clean_run_and_verbose_names_each_id() {
    let (from, to) = (aws(), vault(1).await);
    let (source, target) = (from.backend().await, to.backend().await);
    let scope = unique_scope();
    let stored = seed(source.as_ref(), &scope, 6).await;

    let ran = migrate_cli(
        &ConfigFile::new(&from.toml),
        &ConfigFile::new(&to.toml),
        &["--scope", scope.as_str(), "--delete-source", "--verbose"],
    )
    .await;
    assert!(ran.success(), "{}\n{}", ran.stdout, ran.stderr);
    for (key, _) in &stored {
        for outcome in ["copied", "deleted"] {
            let line = format!("{}\t{}\t{outcome}", key.scope, key.id);
            assert!(
                ran.stdout.lines().any(|l| l == line),
                "no {line:?}:\n{}",
                ran.stdout
            );
        }
    }
    assert!(
        ran.stdout.contains("6 ids in scopes") && ran.stdout.contains("copied 6,"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stdout.contains("6 deleted from the source"),
        "{}",
        ran.stdout
    );
    assert_no_secret_printed(&ran);
    assert_holds(target.as_ref(), &scope, &stored).await;
    assert_holds(source.as_ref(), &scope, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_scope_the_source_tokens_scopes_are_migrated() {
    let (from, to) = (vault(2).await, aws());
    let (source, target) = (from.backend().await, to.backend().await);
    let (served, also_served, not_served) = (unique_scope(), unique_scope(), unique_scope());
    let in_served = seed(source.as_ref(), &served, 2).await;
    let in_also_served = seed(source.as_ref(), &also_served, 1).await;
    seed(source.as_ref(), &not_served, 1).await;

    let from_file = ConfigFile::new(&format!(
        "{}{}",
        tokens_for(&[&served, &also_served]),
        from.toml
    ));
    let ran = migrate_cli(&from_file, &ConfigFile::new(&to.toml), &[]).await;
    assert!(ran.success(), "{}", ran.stderr);
    assert_holds(target.as_ref(), &served, &in_served).await;
    assert_holds(target.as_ref(), &also_served, &in_also_served).await;
    assert_holds(target.as_ref(), &not_served, &[]).await;
}

#[tokio::test]
async fn memory_on_either_side_is_refused() {
    let memory = ConfigFile::new("[backend]\nkind = \"memory\"\n");
    let other = ConfigFile::new(&aws().toml);
    for (from, to, side) in [(&memory, &other, "--from"), (&other, &memory, "--to")] {
        let ran = migrate_cli(from, to, &["--scope", "default"]).await;
        assert!(!ran.success());
        assert!(
            ran.stderr.contains(&format!(
                "the {side} configuration uses the memory backend, which lives inside one process"
            )),
            "{}",
            ran.stderr
        );
    }
}

#[tokio::test]
async fn the_same_configuration_twice_is_refused() {
    let file = ConfigFile::new(&aws().toml);
    let ran = migrate_cli(&file, &file, &["--scope", "default"]).await;
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("describe the same backend"),
        "{}",
        ran.stderr
    );
}

#[tokio::test]
async fn a_reserved_scope_is_refused() {
    let ran = migrate_cli(
        &ConfigFile::new(&aws().toml),
        &ConfigFile::new(&aws().toml),
        &["--scope", "credbridge-doctor"],
    )
    .await;
    assert!(!ran.success());
    assert!(ran.stderr.contains("reserved"), "{}", ran.stderr);
}

/// Stores, in `scope` of `backend`, a password credential whose password is `password`.
async fn store_password(
    backend: &dyn Backend,
    scope: &Scope,
    password: &str,
) -> (Key, credbridge_adapters::Document) {
    let document = credbridge_adapters::testkit::document(serde_json::json!({
        "name": "shop", "type": "password", "username": "ada@example.com",
        "password": password, "totp": null, "totp_type": "none",
    }));
    let key = Key::new(scope.clone(), CredentialId::generate());
    backend.put(&key, &document).await.unwrap();
    (key, document)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_reference_is_not_copied_to_aws_and_is_named_by_id_and_field() {
    let (from, to) = (vault(2).await, aws());
    let (source, target) = (from.backend().await, to.backend().await);
    let scope = unique_scope();
    let mut stored = seed(source.as_ref(), &scope, 3).await;
    let path = "secret/apps/migrate-test/shop";
    let referencing = store_password(
        source.as_ref(),
        &scope,
        &format!("ref+vault://{path}#password"),
    )
    .await;
    // Stored before references existed: starts with `ref+`, and no backend reads it.
    let literal = store_password(source.as_ref(), &scope, "ref+SECRET-literal%").await;
    stored.push(referencing.clone());
    stored.push(literal.clone());
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    let (from_file, to_file) = (ConfigFile::new(&from.toml), ConfigFile::new(&to.toml));

    let ran = migrate_cli(
        &from_file,
        &to_file,
        &["--scope", scope.as_str(), "--delete-source", "--json"],
    )
    .await;
    assert!(!ran.success(), "{}", ran.stdout);
    assert!(
        ran.stderr.contains("conflicts 0, failures 1"),
        "{}",
        ran.stderr
    );
    let summary = ran.json();
    assert_eq!(summary["copied"], 4, "{summary:#}");
    let failure = &summary["failures"][0];
    assert_eq!(failure["id"], referencing.0.id.as_str());
    assert_eq!(failure["scope"], scope.as_str());
    let reason = failure["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not copied: field `password` holds a reference (ref+vault://)")
            && reason.contains("the aws target cannot read"),
        "{reason}"
    );
    let mut listed: Vec<(String, serde_json::Value)> = summary["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|credential| {
            (
                credential["id"].as_str().unwrap().to_owned(),
                credential["fields"].clone(),
            )
        })
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (
            referencing.0.id.to_string(),
            serde_json::json!([{"field": "password", "backend": "vault"}]),
        ),
        (
            literal.0.id.to_string(),
            serde_json::json!([{"field": "password", "backend": null}]),
        ),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected);
    assert_eq!(summary["source_deletion"], "withheld");
    assert!(!ran.stdout.contains(path), "a reference was printed");
    assert_no_secret_printed(&ran);

    let copy = target.get(&referencing.0).await.unwrap_err();
    assert_eq!(copy.kind(), ErrorKind::NotFound, "{copy}");
    assert_eq!(target.get(&literal.0).await.unwrap(), literal.1);
    assert_holds(source.as_ref(), &scope, &stored).await;

    // A dry run says the same, in words.
    let ran = migrate_cli(
        &from_file,
        &to_file,
        &["--scope", scope.as_str(), "--dry-run"],
    )
    .await;
    assert!(!ran.success(), "{}", ran.stdout);
    let id = &referencing.0.id;
    for line in [
        format!("failed {scope}/{id}: not copied: field `password` holds a reference"),
        "2 credentials hold references".to_owned(),
        format!("references {scope}/{id}: `password` (vault)"),
        format!(
            "references {scope}/{}: `password` (not a valid reference)",
            literal.0.id
        ),
    ] {
        assert!(
            ran.stdout.lines().any(|printed| printed.starts_with(&line)),
            "no {line:?}:\n{}",
            ran.stdout
        );
    }
    assert!(!ran.stdout.contains(path), "a reference was printed");
    assert_no_secret_printed(&ran);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reference_the_target_can_read_is_copied_and_listed() {
    let (source, target) = (kv1_root().await, kv2_root().await);
    let scope = unique_scope();
    let referencing = store_password(
        source.as_ref(),
        &scope,
        "ref+vault://secret/apps/migrate-test/shop#password",
    )
    .await;
    let summary = migrate_all(source.as_ref(), target.as_ref(), &plan(&[&scope])).await;
    assert!(summary.clean(), "{summary:?}");
    assert_eq!(summary.copied, 1);
    assert_eq!(summary.references.len(), 1, "{summary:?}");
    assert_eq!(summary.references[0].id, referencing.0.id);
    assert_eq!(summary.references[0].fields[0].field, "password");
    assert_holds(target.as_ref(), &scope, &[referencing]).await;
}
