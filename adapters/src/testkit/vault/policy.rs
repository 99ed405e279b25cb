//! The smallest policies the Vault backend's documentation gives, read from that
//! documentation, so the suites prove the text operators copy rather than a copy of it.

const VAULT_DOCS: &str = include_str!("../../vault/docs.md");

/// The ```` ```hcl ```` blocks of the docs' section `heading`.
fn hcl_blocks(heading: &str) -> Vec<&'static str> {
    let section = VAULT_DOCS
        .split(heading)
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("adapters/src/vault/docs.md has no section {heading:?}"));
    section
        .split("```hcl\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect()
}

/// The documented policy for reading references, for KV `kv_version`, written there for
/// `mount = "secret"` and the folder `apps/team-a`, with `mount` and `folder` put in
/// their place as an operator would.
pub fn documented_reference_policy(kv_version: u8, mount: &str, folder: &str) -> String {
    let blocks = hcl_blocks("## Reuse secrets you already have");
    let policy = blocks
        .iter()
        .find(|block| block.contains("\"secret/data/") == (kv_version == 2))
        .unwrap_or_else(|| panic!("docs.md has no KV v{kv_version} policy block for references"));
    assert!(
        policy.contains("\"secret/") && policy.contains("apps/team-a/*\""),
        "the KV v{kv_version} reference policy in docs.md is not written for secret/ and apps/team-a: {policy}"
    );
    policy
        .replace("\"secret/", &format!("\"{mount}/"))
        .replace("apps/team-a/*\"", &format!("{folder}/*\""))
}

/// The documented smallest policy for KV `kv_version`, written there for `mount =
/// "secret"` and `path_prefix = "credbridge"`, with `mount` and `prefix` put in their
/// place as an operator would.
pub fn documented_policy(kv_version: u8, mount: &str, prefix: &str) -> String {
    let blocks = hcl_blocks("## The Vault policy credbridge needs");
    let is_v2 = |block: &str| block.contains("\"secret/data/credbridge/");
    let policy = blocks
        .iter()
        .find(|block| is_v2(block) == (kv_version == 2))
        .unwrap_or_else(|| panic!("docs.md has no KV v{kv_version} policy block"));
    assert!(
        policy.contains("\"secret/") && policy.contains("/credbridge/*\""),
        "the KV v{kv_version} policy in docs.md is not written for secret/ and credbridge: {policy}"
    );
    policy
        .replace("\"secret/", &format!("\"{mount}/"))
        .replace("/credbridge/*\"", &format!("/{prefix}/*\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_policies_are_found_and_adapted() {
        let v2 = documented_policy(2, "secret", "credbridge");
        assert!(v2.contains("path \"secret/data/credbridge/*\""), "{v2}");
        assert!(v2.contains("path \"secret/metadata/credbridge/*\""), "{v2}");
        let v1 = documented_policy(1, "kv", "apps/x");
        assert!(v1.contains("path \"kv/apps/x/*\""), "{v1}");
        assert!(!v1.contains("secret"), "{v1}");
    }

    #[test]
    fn the_documented_reference_policies_are_found_and_adapted() {
        let v2 = documented_reference_policy(2, "secret", "existing");
        assert!(v2.contains("path \"secret/data/existing/*\""), "{v2}");
        let v1 = documented_reference_policy(1, "kv", "existing");
        assert!(v1.contains("path \"kv/existing/*\""), "{v1}");
        assert!(!v1.contains("data"), "{v1}");
    }
}
