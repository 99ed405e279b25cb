//! References to entries an organization already keeps in its vault, as credential fields
//! hold them, in the syntax of `vals`: `ref+vault://<mount>/<path>#<key>` and
//! `ref+awssecrets://<name-or-arn>[#<key>]`.
//!
//! A reference is parsed once, here, into a [`Reference`], and everything after works with
//! the parsed form. The parser accepts one spelling per entry and nothing that a vault, a
//! URL parser or a policy engine could read another way: no empty, `.` or `..` segment, no
//! percent-encoding, backslash, whitespace, control or non-ASCII character, no query
//! string. Its errors never quote the text they refuse, which may be a password that
//! merely starts with `ref+`.
//!
//! What a backend reads for a reference is a [`ReferencedEntry`]: secret values, never
//! printed, zeroized when dropped.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::SecretText;

/// A credential field's value that names an entry in the vault instead of holding a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    target: ReferenceTarget,
    key: Option<String>,
}

/// The entry a reference names, without the key: what a backend reads, once per request
/// however many fields point into it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReferenceTarget {
    /// A secret in a KV engine (version 1 or 2) of Vault or OpenBao, by its full logical
    /// path, mount included: `secret/apps/team-a/smtp`, as `vault kv get` takes it.
    Vault { path: String },
    /// An AWS Secrets Manager secret, by name or by ARN.
    AwsSecrets(AwsSecretId),
}

/// A Secrets Manager secret id as a reference gives it: a name, or an ARN
/// (`arn:aws:secretsmanager:<region>:<account>:secret:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AwsSecretId {
    id: String,
    /// Where the name starts in `id`: 0 for a name, after `:secret:` for an ARN.
    name_start: usize,
}

/// Why a text that starts with `ref+` is not a reference. Never quotes the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidReference(&'static str);

impl Reference {
    /// Every text that starts with this is a reference, and must be a valid one.
    pub const PREFIX: &'static str = "ref+";
    /// Longer texts are refused: an AWS ARN with a 512-character name fits.
    pub const MAX_LEN: usize = 1024;
    const VAULT: &'static str = "vault://";
    const AWS: &'static str = "awssecrets://";

    /// Whether `text` claims to be a reference (and so must parse as one).
    pub fn is_reference(text: &str) -> bool {
        text.starts_with(Self::PREFIX)
    }

    /// Parses `ref+vault://<mount>/<path>#<key>` or `ref+awssecrets://<name-or-arn>[#<key>]`.
    /// A key may be written `#/key`, as `vals` writes it.
    pub fn parse(text: &str) -> Result<Self, InvalidReference> {
        let invalid = |reason| Err(InvalidReference(reason));
        let Some(rest) = text.strip_prefix(Self::PREFIX) else {
            return invalid("does not start with `ref+`");
        };
        if text.len() > Self::MAX_LEN {
            return invalid("is longer than 1024 characters");
        }
        if let Some(byte) = text.bytes().find(|byte| !byte.is_ascii_graphic()) {
            return invalid(if byte.is_ascii_whitespace() {
                "contains whitespace"
            } else {
                "contains a control or non-ASCII character"
            });
        }
        if text.contains('%') {
            return invalid("contains `%`: percent-encoding is not decoded in references");
        }
        if text.contains('\\') {
            return invalid("contains a backslash");
        }
        if text.contains('?') {
            return invalid(
                "has a query (`?…`): references are read through credbridge's own \
                 connection, which takes no options",
            );
        }
        let (body, key) = match rest.split_once('#') {
            Some((body, key)) => (body, Some(parse_key(key)?)),
            None => (rest, None),
        };
        let target = if let Some(path) = body.strip_prefix(Self::VAULT) {
            if key.is_none() {
                return invalid("needs `#<key>`: the key of the Vault secret to use");
            }
            ReferenceTarget::Vault {
                path: parse_vault_path(path)?,
            }
        } else if let Some(id) = body.strip_prefix(Self::AWS) {
            ReferenceTarget::AwsSecrets(AwsSecretId::parse(id)?)
        } else {
            return invalid(
                "must be `ref+vault://<mount>/<path>#<key>` or \
                 `ref+awssecrets://<name-or-arn>[#<key>]`",
            );
        };
        Ok(Self { target, key })
    }

    pub fn target(&self) -> &ReferenceTarget {
        &self.target
    }

    /// The key inside the entry; `None` for an AWS secret used whole.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// `ref+vault://secret/apps/x#password`: the one spelling, as parsed (a `#/key` shows as
/// `#key`). Paths and keys are not secret; this is what logs, errors and audit lines show.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", Self::PREFIX, self.target)?;
        if let Some(key) = &self.key {
            write!(f, "#{key}")?;
        }
        Ok(())
    }
}

impl ReferenceTarget {
    /// The `kind` of the backend that can read it: `vault` or `aws`.
    pub fn backend_kind(&self) -> &'static str {
        match self {
            ReferenceTarget::Vault { .. } => crate::vault::VaultConfig::INFO.kind,
            ReferenceTarget::AwsSecrets(_) => crate::aws::AwsConfig::INFO.kind,
        }
    }

    /// What an allowlist pattern is matched against: the Vault path (mount included), the
    /// AWS secret name, or the whole ARN.
    pub fn allowlist_subject(&self) -> &str {
        match self {
            ReferenceTarget::Vault { path } => path,
            ReferenceTarget::AwsSecrets(id) => id.as_str(),
        }
    }

    /// Whether the target is given as an AWS ARN, which only ARN patterns may allow.
    pub fn is_arn(&self) -> bool {
        matches!(self, ReferenceTarget::AwsSecrets(id) if id.is_arn())
    }
}

impl fmt::Display for ReferenceTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReferenceTarget::Vault { path } => write!(f, "{}{path}", Reference::VAULT),
            ReferenceTarget::AwsSecrets(id) => write!(f, "{}{}", Reference::AWS, id.as_str()),
        }
    }
}

impl AwsSecretId {
    /// AWS's limit on a secret name.
    const MAX_NAME_LEN: usize = 512;

    fn parse(text: &str) -> Result<Self, InvalidReference> {
        if !text.starts_with("arn:") {
            check_aws_name(text)?;
            return Ok(Self {
                id: text.to_owned(),
                name_start: 0,
            });
        }
        let name = Self::arn_name(text).ok_or(InvalidReference(
            "is not a Secrets Manager ARN \
             (arn:<partition>:secretsmanager:<region>:<account>:secret:<name>)",
        ))?;
        check_aws_name(name)?;
        Ok(Self {
            name_start: text.len() - name.len(),
            id: text.to_owned(),
        })
    }

    /// The name part of `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`,
    /// when every other part is spelt out (partition and region in lowercase letters,
    /// digits and `-`; a 12-digit account). The name itself is not checked.
    pub fn arn_name(text: &str) -> Option<&str> {
        let lower = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        let parts: Vec<&str> = text.strip_prefix("arn:")?.splitn(6, ':').collect();
        match parts.as_slice() {
            [partition, "secretsmanager", region, account, "secret", name]
                if lower(partition)
                    && lower(region)
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit()) =>
            {
                Some(name)
            }
            _ => None,
        }
    }

    /// The name or the ARN, as the reference gave it: what `GetSecretValue` takes.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The secret's name: all of a name, the last part of an ARN (which may end in the
    /// six characters AWS appends).
    pub fn name(&self) -> &str {
        &self.id[self.name_start..]
    }

    pub fn is_arn(&self) -> bool {
        self.name_start > 0
    }
}

/// One key, `#key` or `#/key`: letters, digits, `_`, `-` and `.`.
fn parse_key(text: &str) -> Result<String, InvalidReference> {
    let key = text.strip_prefix('/').unwrap_or(text);
    if key.is_empty() {
        return Err(InvalidReference("has an empty key after `#`"));
    }
    if key.contains('/') {
        return Err(InvalidReference(
            "names a nested key (`#/a/b`); only a top-level key is supported",
        ));
    }
    if !key.bytes().all(is_key_byte) {
        return Err(InvalidReference(
            "has a key with characters other than ASCII letters, digits, `_`, `-` and `.`",
        ));
    }
    Ok(key.to_owned())
}

fn is_key_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.')
}

/// `<mount>/<path>`: at least two segments, each of letters, digits, `_`, `-` and `.`,
/// none empty, `.` or `..` (the alphabet credbridge's own Vault paths use).
fn parse_vault_path(text: &str) -> Result<String, InvalidReference> {
    check_segments(text, is_key_byte)?;
    if !text.contains('/') {
        return Err(InvalidReference(
            "must name a mount and a path in it: `ref+vault://<mount>/<path>#<key>`",
        ));
    }
    Ok(text.to_owned())
}

/// A Secrets Manager name: `/`-separated segments of AWS's name alphabet (letters, digits,
/// `_ + = . @ -`), none empty, `.` or `..`.
fn check_aws_name(text: &str) -> Result<(), InvalidReference> {
    if text.len() > AwsSecretId::MAX_NAME_LEN {
        return Err(InvalidReference(
            "names an AWS secret longer than 512 characters",
        ));
    }
    check_segments(text, |byte| {
        byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'+' | b'=' | b'.' | b'@' | b'-')
    })
}

fn check_segments(text: &str, allowed: impl Fn(u8) -> bool) -> Result<(), InvalidReference> {
    for segment in text.split('/') {
        if segment.is_empty() {
            return Err(InvalidReference(
                "has an empty path segment (a leading, trailing or doubled `/`)",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(InvalidReference("has a `.` or `..` path segment"));
        }
        if !segment.bytes().all(&allowed) {
            return Err(InvalidReference(
                "has a path with characters outside the allowed set (ASCII letters, digits, \
                 `_`, `-`, `.`, and for AWS names `+ = @`)",
            ));
        }
    }
    Ok(())
}

/// An entry as a backend read it for references: its keys (a Vault secret's fields, an AWS
/// secret's JSON object members) and, for an AWS string secret, the whole value.
///
/// Every value is a secret: `Debug` lists keys only, and values are zeroized on drop.
pub struct ReferencedEntry(Shape);

enum Shape {
    /// An AWS string secret; its keys when it is a JSON object.
    Text {
        text: SecretText,
        fields: Option<Fields>,
    },
    /// A Vault secret.
    Fields(Fields),
    /// An AWS binary secret.
    Binary,
}

/// Each key's value when it is a string; `None` for any other JSON value.
type Fields = BTreeMap<String, Option<SecretText>>;

/// Why a reference's key cannot be used from the entry it names. Names keys, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableValue {
    #[error("the entry has no key `{0}`")]
    MissingKey(String),
    #[error("the key `{0}` does not hold a string")]
    NotText(String),
    #[error("the entry is not a JSON object, so it has no key `{0}`; drop `#{0}` to use the whole value")]
    NoKeys(String),
    #[error("the entry is not a single string; name a key with `#<key>`")]
    NotWholeText,
    #[error("the entry holds binary data, not text")]
    Binary,
}

impl ReferencedEntry {
    /// An entry of keys (a Vault secret's data). Values that are not strings are kept as
    /// "not text", and zeroized.
    pub fn from_fields(fields: Map<String, Value>) -> Self {
        Self(Shape::Fields(into_fields(fields)))
    }

    /// A string entry (an AWS `SecretString`): usable whole, and by key when it is a JSON
    /// object.
    pub fn from_text(text: String) -> Self {
        let fields = serde_json::from_str::<Map<String, Value>>(&text)
            .ok()
            .map(into_fields);
        Self(Shape::Text {
            text: SecretText::new(text),
            fields,
        })
    }

    /// An entry holding bytes rather than text (an AWS `SecretBinary`).
    pub fn binary() -> Self {
        Self(Shape::Binary)
    }

    /// The value a reference with `key` (or none) resolves to.
    pub fn value(&self, key: Option<&str>) -> Result<&SecretText, UnusableValue> {
        let fields = match (&self.0, key) {
            (Shape::Binary, _) => return Err(UnusableValue::Binary),
            (Shape::Text { text, .. }, None) => return Ok(text),
            (Shape::Text { fields, .. }, Some(_)) => fields.as_ref(),
            (Shape::Fields(fields), _) => Some(fields),
        };
        let Some(key) = key else {
            return Err(UnusableValue::NotWholeText);
        };
        let Some(fields) = fields else {
            return Err(UnusableValue::NoKeys(key.to_owned()));
        };
        match fields.get(key) {
            Some(Some(value)) => Ok(value),
            Some(None) => Err(UnusableValue::NotText(key.to_owned())),
            None => Err(UnusableValue::MissingKey(key.to_owned())),
        }
    }
}

fn into_fields(fields: Map<String, Value>) -> Fields {
    fields
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => (key, Some(SecretText::new(text))),
            mut other => {
                crate::document::zeroize_value(&mut other);
                (key, None)
            }
        })
        .collect()
}

impl fmt::Debug for ReferencedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |fields: &Option<&Fields>| {
            fields
                .map(|fields| fields.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let (shape, fields) = match &self.0 {
            Shape::Text { fields, .. } => ("text", fields.as_ref()),
            Shape::Fields(fields) => ("fields", Some(fields)),
            Shape::Binary => ("binary", None),
        };
        f.debug_struct("ReferencedEntry")
            .field("shape", &shape)
            .field("keys", &keys(&fields))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(text: &str) -> Reference {
        Reference::parse(text).unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    #[test]
    fn vault_references_name_a_path_with_its_mount_and_a_key() {
        let reference = parsed("ref+vault://secret/apps/team-a/smtp#password");
        assert_eq!(
            reference.target(),
            &ReferenceTarget::Vault {
                path: "secret/apps/team-a/smtp".to_owned()
            }
        );
        assert_eq!(reference.key(), Some("password"));
        assert_eq!(reference.target().backend_kind(), "vault");
        assert_eq!(
            reference.to_string(),
            "ref+vault://secret/apps/team-a/smtp#password"
        );
    }

    #[test]
    fn a_vals_style_key_with_a_slash_reads_the_same() {
        assert_eq!(
            parsed("ref+vault://kv/smtp#/user"),
            parsed("ref+vault://kv/smtp#user")
        );
        assert_eq!(
            parsed("ref+vault://kv/smtp#/user").to_string(),
            "ref+vault://kv/smtp#user"
        );
    }

    #[test]
    fn aws_references_take_a_name_or_an_arn_with_an_optional_key() {
        let whole = parsed("ref+awssecrets://prod/smtp");
        assert_eq!(whole.key(), None);
        assert!(!whole.target().is_arn());
        assert_eq!(whole.target().allowlist_subject(), "prod/smtp");
        assert_eq!(whole.to_string(), "ref+awssecrets://prod/smtp");

        let by_key = parsed("ref+awssecrets://team+a=b@c.d-e#password");
        assert_eq!(by_key.key(), Some("password"));

        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/smtp-AbCdEf";
        let reference = parsed(&format!("ref+awssecrets://{arn}#user"));
        let ReferenceTarget::AwsSecrets(id) = reference.target() else {
            panic!("not aws")
        };
        assert!(id.is_arn());
        assert_eq!(id.as_str(), arn);
        assert_eq!(id.name(), "prod/smtp-AbCdEf");
        assert_eq!(reference.target().backend_kind(), "aws");
    }

    #[test]
    fn anything_ambiguous_or_encoded_is_refused_without_quoting_it() {
        for bad in [
            "ref+vault://secret/../credbridge/x#k",
            "ref+vault://secret/./x#k",
            "ref+vault://secret//x#k",
            "ref+vault:///secret/x#k",
            "ref+vault://secret/x/#k",
            "ref+vault://secret/%2e%2e/x#k",
            "ref+vault://secret/a%2Fb#k",
            "ref+vault://secret\\x#k",
            "ref+vault://secret/x #k",
            "ref+vault://secret/x\t#k",
            "ref+vault://secret/x\u{0}#k",
            "ref+vault://secret/é#k",
            "ref+vault://secret/x?version=1#k",
            "ref+vault://secret/x#",
            "ref+vault://secret/x#/",
            "ref+vault://secret/x#a/b",
            "ref+vault://secret/x#a#b",
            "ref+vault://secret/x#a b",
            "ref+vault://secret/x",
            "ref+vault://secret#k",
            "ref+vault://secret/a*#k",
            "ref+vault://secret/a:b#k",
            "ref+awssecrets://",
            "ref+awssecrets://a//b",
            "ref+awssecrets://../b",
            "ref+awssecrets://a*b",
            "ref+awssecrets://arn:aws:secretsmanager:eu-west-1:1234:secret:x",
            "ref+awssecrets://arn:aws:s3:eu-west-1:123456789012:secret:x",
            "ref+awssecrets://arn:aws:secretsmanager:eu-west-1:123456789012:secret:",
            "ref+gcpsecrets://p/s",
            "ref+VAULT://secret/x#k",
            "ref+",
            "ref+s3cr3t-Passw0rd!",
        ] {
            let error = Reference::parse(bad).expect_err(bad);
            let shown = error.to_string();
            let body = bad.trim_start_matches("ref+");
            assert!(
                body.len() < 3 || !shown.contains(body),
                "{bad:?} is quoted in {shown:?}"
            );
        }
        let long = format!("ref+awssecrets://{}", "a/".repeat(600));
        assert_eq!(
            Reference::parse(&long).unwrap_err().to_string(),
            "is longer than 1024 characters"
        );
        assert!(Reference::is_reference("ref+anything"));
        assert!(!Reference::is_reference("Ref+vault://x/y#z"));
    }

    #[test]
    fn a_vault_entry_gives_string_keys_and_names_what_it_lacks() {
        let entry = ReferencedEntry::from_fields(
            json!({"user": "ada", "password": "hunter2", "port": 25})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(entry.value(Some("password")).unwrap().expose(), "hunter2");
        assert_eq!(
            entry.value(Some("nope")).unwrap_err(),
            UnusableValue::MissingKey("nope".to_owned())
        );
        assert_eq!(
            entry.value(Some("port")).unwrap_err(),
            UnusableValue::NotText("port".to_owned())
        );
        assert_eq!(entry.value(None).unwrap_err(), UnusableValue::NotWholeText);
        let printed = format!("{entry:?}");
        assert!(
            printed.contains("password") && !printed.contains("hunter2"),
            "{printed}"
        );
    }

    #[test]
    fn an_aws_string_is_usable_whole_and_by_key_when_it_is_json() {
        let json = ReferencedEntry::from_text(r#"{"password":"hunter2"}"#.to_owned());
        assert_eq!(json.value(Some("password")).unwrap().expose(), "hunter2");
        assert_eq!(
            json.value(None).unwrap().expose(),
            r#"{"password":"hunter2"}"#
        );

        let plain = ReferencedEntry::from_text("hunter2".to_owned());
        assert_eq!(plain.value(None).unwrap().expose(), "hunter2");
        let error = plain.value(Some("password")).unwrap_err();
        assert_eq!(error, UnusableValue::NoKeys("password".to_owned()));
        assert!(!error.to_string().contains("hunter2"));
        assert!(!format!("{plain:?}").contains("hunter2"));

        let binary = ReferencedEntry::binary();
        assert_eq!(binary.value(None).unwrap_err(), UnusableValue::Binary);
        assert_eq!(binary.value(Some("k")).unwrap_err(), UnusableValue::Binary);
    }
}
