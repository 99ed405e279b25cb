//! The smallest policies the Vault backend's documentation gives, read from that
//! documentation, so the suites prove the text operators copy rather than a copy of it.

const VAULT_DOCS: &str = include_str!("../../vault/docs.md");

/// The documented smallest policy for KV `kv_version`, written there for `mount =
/// "secret"` and `path_prefix = "credbridge"`, with `mount` and `prefix` put in their
/// place as an operator would.
pub fn documented_policy(kv_version: u8, mount: &str, prefix: &str) -> String {
    let section = VAULT_DOCS
        .split("## The Vault policy credbridge needs")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("adapters/src/vault/docs.md has the section \"The Vault policy credbridge needs\"");
    let blocks: Vec<&str> = section
        .split("```hcl\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .collect();
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
}
