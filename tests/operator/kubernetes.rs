//! The credbridge configurations inside the Kubernetes manifests load as credbridge loads
//! them, and say what each layout promises. (`tests/run` validates the manifests
//! themselves against the Kubernetes schemas.)

use std::path::{Path, PathBuf};

use credbridge::config::Overrides;
use credbridge::Settings;

/// Every `credbridge.toml: |` block of every manifest under `config/kubernetes/`, by file.
fn embedded_configurations() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/kubernetes");
    let mut found = Vec::new();
    for layout in std::fs::read_dir(&root).unwrap() {
        for file in std::fs::read_dir(layout.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines = text.lines().peekable();
            while let Some(line) = lines.next() {
                if line.trim() != "credbridge.toml: |" {
                    continue;
                }
                let indent = line.len() - line.trim_start().len() + 2;
                let mut block = String::new();
                while let Some(next) = lines.peek() {
                    if !next.trim().is_empty() && next.len() - next.trim_start().len() < indent {
                        break;
                    }
                    block.push_str(next.get(indent..).unwrap_or_default());
                    block.push('\n');
                    lines.next();
                }
                found.push((path.clone(), block));
            }
        }
    }
    found.sort();
    found
}

fn load(path: &Path, text: &str) -> Settings {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credbridge.toml");
    std::fs::write(&file, text).unwrap();
    Settings::load(Some(&file), &Overrides::default())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn every_configuration_in_the_manifests_loads() {
    let found = embedded_configurations();
    // Two layouts, each on Vault and on AWS.
    assert_eq!(found.len(), 4, "{found:?}");
    for (path, text) in &found {
        let settings = load(path, text);
        assert_eq!(settings.auth.tokens.len(), 1, "{}", path.display());
        let layout = path.parent().unwrap().file_name().unwrap();
        if layout == "sidecar" {
            assert!(settings.listen.ip().is_loopback(), "{}", path.display());
            assert!(!settings.tls.enabled(), "{}", path.display());
        } else {
            assert_eq!(settings.listen.to_string(), "0.0.0.0:8443");
            assert!(settings.tls.enabled(), "{}", path.display());
        }
        let backend = path.file_stem().unwrap().to_str().unwrap();
        let kind = if backend == "vault" { "vault" } else { "aws" };
        assert_eq!(settings.backend.kind(), kind, "{}", path.display());
    }
}
