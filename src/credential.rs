//! The contract's credential model: the three types, their fields, and the rules on them.
//!
//! A credential travels as a JSON object and is stored as one ([`Document`]), so that
//! every value comes back byte for byte and fields this version does not know survive the
//! round trip. What is typed is the schema: which fields each type requires and what JSON
//! kind each known field must be. The same rules check a body on create and a stored
//! document on read, so a document edited by hand in the vault cannot reach Skyvern in a
//! shape its client would reject.

use std::fmt;

use credbridge_adapters::{CredentialId, Document};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// The `type` of a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialType {
    Password,
    CreditCard,
    Secret,
}

impl CredentialType {
    pub const ALL: [CredentialType; 3] = [
        CredentialType::Password,
        CredentialType::CreditCard,
        CredentialType::Secret,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::Password => "password",
            CredentialType::CreditCard => "credit_card",
            CredentialType::Secret => "secret",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The fields of this type, beyond `name` and `type`.
    pub(crate) fn fields(self) -> &'static [Field] {
        match self {
            CredentialType::Password => PASSWORD_FIELDS,
            CredentialType::CreditCard => CREDIT_CARD_FIELDS,
            CredentialType::Secret => SECRET_FIELDS,
        }
    }
}

const PASSWORD_FIELDS: &[Field] = &[
    Field::required("username", FieldKind::String),
    Field::required("password", FieldKind::String),
    Field::optional("totp", FieldKind::NullableString),
    Field::optional("totp_type", FieldKind::NullableString),
    Field::optional("metadata", FieldKind::StringMap),
];

const CREDIT_CARD_FIELDS: &[Field] = &[
    Field::required("card_holder_name", FieldKind::String),
    Field::required("card_number", FieldKind::String),
    Field::required("card_exp_month", FieldKind::String),
    Field::required("card_exp_year", FieldKind::String),
    Field::required("card_cvv", FieldKind::String),
    Field::required("card_brand", FieldKind::String),
    Field::optional("billing_address", FieldKind::Address),
    Field::optional("billing_email", FieldKind::NullableString),
    Field::optional("billing_phone", FieldKind::NullableString),
    Field::optional("metadata", FieldKind::StringMap),
];

const SECRET_FIELDS: &[Field] = &[
    Field::required("secret_value", FieldKind::String),
    Field::optional("secret_label", FieldKind::NullableString),
    Field::optional("metadata", FieldKind::StringMap),
];

impl fmt::Display for CredentialType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The members a `billing_address` object may have; each a string or null.
pub(crate) const ADDRESS_MEMBERS: [&str; 8] = [
    "line1",
    "line2",
    "city",
    "state",
    "state_code",
    "postal_code",
    "country",
    "country_code",
];

/// `totp_type` reads back as this when it was absent or null: Skyvern refuses a null.
const TOTP_TYPE_NONE: &str = "none";

/// The server owns `id`: a body's own `id` is not stored, the path's is returned.
const ID_FIELD: &str = "id";

#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) name: &'static str,
    pub(crate) kind: FieldKind,
    pub(crate) required: bool,
}

impl Field {
    const fn required(name: &'static str, kind: FieldKind) -> Self {
        Self {
            name,
            kind,
            required: true,
        }
    }

    const fn optional(name: &'static str, kind: FieldKind) -> Self {
        Self {
            name,
            kind,
            required: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum FieldKind {
    /// A string; null is refused.
    String,
    /// A string or null.
    NullableString,
    /// An object of string to string, or null.
    StringMap,
    /// A billing address object (members in [`ADDRESS_MEMBERS`], strings or null), or null.
    Address,
}

/// Why a body or a stored document does not match the contract. The message names the
/// field and never contains a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ContractViolation {
    /// The field at fault, dotted for nested members (`billing_address.city`).
    pub field: String,
    pub message: String,
}

impl ContractViolation {
    fn new(field: impl Into<String>, message: impl fmt::Display) -> Self {
        let field = field.into();
        let message = format!("field `{field}` {message}");
        Self { field, message }
    }
}

/// Checks a create body and turns it into the document to store.
///
/// `totp_type` of a password is stored as `"none"` when absent or null; a body's own `id`
/// is dropped. Every other field, known or not, is kept as sent.
pub fn new_document(body: Value) -> Result<(CredentialType, Document), ContractViolation> {
    let Value::Object(mut fields) = body else {
        return Err(ContractViolation {
            field: String::new(),
            message: "the body must be a JSON object".to_owned(),
        });
    };
    let kind = check(&fields)?;
    fields.remove(ID_FIELD);
    if kind == CredentialType::Password && fields.get("totp_type").is_none_or(Value::is_null) {
        fields.insert("totp_type".to_owned(), Value::from(TOTP_TYPE_NONE));
    }
    Ok((kind, Document::new(fields)))
}

/// Checks a document read from a backend against the same rules as a create body.
pub fn stored_type(document: &Document) -> Result<CredentialType, ContractViolation> {
    check(document.fields())
}

fn check(fields: &Map<String, Value>) -> Result<CredentialType, ContractViolation> {
    match fields.get("name") {
        Some(Value::String(_)) => {}
        Some(_) => return Err(ContractViolation::new("name", "must be a string")),
        None => return Err(ContractViolation::new("name", "is required")),
    }
    let kind = match fields.get("type") {
        Some(Value::String(name)) => CredentialType::parse(name).ok_or_else(|| {
            ContractViolation::new("type", "must be one of password, credit_card, secret")
        })?,
        Some(_) => return Err(ContractViolation::new("type", "must be a string")),
        None => return Err(ContractViolation::new("type", "is required")),
    };
    for field in kind.fields() {
        match fields.get(field.name) {
            None if field.required => {
                return Err(ContractViolation::new(
                    field.name,
                    format_args!("is required for type {kind}"),
                ))
            }
            None => {}
            Some(value) => check_kind(field.name, field.kind, value)?,
        }
    }
    Ok(kind)
}

fn check_kind(name: &str, kind: FieldKind, value: &Value) -> Result<(), ContractViolation> {
    match (kind, value) {
        (FieldKind::String, Value::String(_)) => Ok(()),
        (FieldKind::String, _) => Err(ContractViolation::new(name, "must be a string")),
        (_, Value::Null) | (FieldKind::NullableString, Value::String(_)) => Ok(()),
        (FieldKind::NullableString, _) => {
            Err(ContractViolation::new(name, "must be a string or null"))
        }
        (FieldKind::StringMap, Value::Object(map)) => {
            match map.iter().find(|(_, member)| !member.is_string()) {
                Some((key, _)) => Err(ContractViolation::new(
                    format!("{name}.{key}"),
                    "must be a string",
                )),
                None => Ok(()),
            }
        }
        (FieldKind::StringMap, _) => Err(ContractViolation::new(
            name,
            "must be an object of strings, or null",
        )),
        (FieldKind::Address, Value::Object(map)) => {
            for (key, member) in map {
                if !ADDRESS_MEMBERS.contains(&key.as_str()) {
                    return Err(ContractViolation::new(
                        format!("{name}.{key}"),
                        format_args!(
                            "is not a billing address member ({})",
                            ADDRESS_MEMBERS.join(", ")
                        ),
                    ));
                }
                if !(member.is_string() || member.is_null()) {
                    return Err(ContractViolation::new(
                        format!("{name}.{key}"),
                        "must be a string or null",
                    ));
                }
            }
            Ok(())
        }
        (FieldKind::Address, _) => Err(ContractViolation::new(name, "must be an object, or null")),
    }
}

/// A stored credential as the read response: `id` first, then every stored field, with a
/// password's `totp_type` never null. Serializes straight from the stored document.
pub struct CredentialView<'a> {
    pub id: &'a CredentialId,
    pub kind: CredentialType,
    pub document: &'a Document,
}

impl Serialize for CredentialView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.document.fields();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry(ID_FIELD, self.id.as_str())?;
        let password = self.kind == CredentialType::Password;
        for (name, value) in fields {
            match name.as_str() {
                ID_FIELD => {}
                "totp_type" if password && value.is_null() => {
                    map.serialize_entry(name, TOTP_TYPE_NONE)?;
                }
                _ => map.serialize_entry(name, value)?,
            }
        }
        if password && !fields.contains_key("totp_type") {
            map.serialize_entry("totp_type", TOTP_TYPE_NONE)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violation(body: Value) -> ContractViolation {
        new_document(body).unwrap_err()
    }

    fn password() -> Value {
        json!({"name": "n", "type": "password", "username": "u", "password": "p",
               "totp": null, "totp_type": "authenticator"})
    }

    #[test]
    fn a_password_without_totp_type_is_stored_with_none() {
        let mut body = password();
        body.as_object_mut().unwrap().remove("totp_type");
        let (_, doc) = new_document(body).unwrap();
        assert_eq!(doc.get("totp_type"), Some(&json!("none")));
    }

    #[test]
    fn a_null_totp_type_is_stored_as_none() {
        let mut body = password();
        body["totp_type"] = Value::Null;
        let (_, doc) = new_document(body).unwrap();
        assert_eq!(doc.get("totp_type"), Some(&json!("none")));
    }

    #[test]
    fn any_totp_type_spelling_is_kept() {
        let mut body = password();
        body["totp_type"] = json!("Authenticator App");
        let (_, doc) = new_document(body).unwrap();
        assert_eq!(doc.get("totp_type"), Some(&json!("Authenticator App")));
    }

    #[test]
    fn unknown_fields_are_kept_and_body_id_is_dropped() {
        let mut body = password();
        body["totp_identifier"] = json!({"any": ["shape", 1]});
        body["id"] = json!("cred_mine");
        let (_, doc) = new_document(body).unwrap();
        assert_eq!(
            doc.get("totp_identifier"),
            Some(&json!({"any": ["shape", 1]}))
        );
        assert_eq!(doc.get("id"), None);
    }

    #[test]
    fn each_required_field_is_named_when_missing() {
        for kind in CredentialType::ALL {
            for field in kind.fields().iter().filter(|field| field.required) {
                let mut body = json!({"name": "n", "type": kind.as_str()});
                for other in kind
                    .fields()
                    .iter()
                    .filter(|f| f.required && f.name != field.name)
                {
                    body[other.name] = json!("x");
                }
                let error = violation(body);
                assert_eq!(error.field, field.name);
                assert_eq!(
                    error.message,
                    format!("field `{}` is required for type {kind}", field.name)
                );
            }
        }
    }

    #[test]
    fn wrong_kinds_are_named() {
        let cases = [
            (json!({"type": "secret", "secret_value": "v"}), "name"),
            (json!({"name": "n", "secret_value": "v"}), "type"),
            (json!({"name": "n", "type": "sekret"}), "type"),
            (json!({"name": "n", "type": 3}), "type"),
            (
                json!({"name": "n", "type": "secret", "secret_value": 5}),
                "secret_value",
            ),
            (
                json!({"name": "n", "type": "secret", "secret_value": null}),
                "secret_value",
            ),
            (
                json!({"name": "n", "type": "secret", "secret_value": "v", "secret_label": 1}),
                "secret_label",
            ),
            (
                json!({"name": "n", "type": "secret", "secret_value": "v", "metadata": {"k": 1}}),
                "metadata.k",
            ),
            (
                json!({"name": "n", "type": "secret", "secret_value": "v", "metadata": []}),
                "metadata",
            ),
            (
                json!({"name": ["n"], "type": "secret", "secret_value": "v"}),
                "name",
            ),
        ];
        for (body, field) in cases {
            assert_eq!(violation(body.clone()).field, field, "{body}");
        }
    }

    #[test]
    fn billing_address_members_are_checked() {
        let card = |address: Value| {
            json!({"name": "n", "type": "credit_card", "card_holder_name": "h",
                   "card_number": "4111", "card_exp_month": "01", "card_exp_year": "2030",
                   "card_cvv": "123", "card_brand": "visa", "billing_address": address})
        };
        assert!(new_document(card(json!({"line1": "1 Main", "line2": null}))).is_ok());
        assert!(new_document(card(Value::Null)).is_ok());
        assert_eq!(
            violation(card(json!({"city": 5}))).field,
            "billing_address.city"
        );
        assert_eq!(
            violation(card(json!({"planet": "x"}))).field,
            "billing_address.planet"
        );
        assert_eq!(violation(card(json!("1 Main"))).field, "billing_address");
    }

    #[test]
    fn a_non_object_body_is_refused() {
        assert_eq!(
            violation(json!([1])).message,
            "the body must be a JSON object"
        );
    }

    #[test]
    fn violations_never_contain_values() {
        let error = violation(json!({"name": "n", "type": "secret", "secret_value": 123456789}));
        assert!(!error.message.contains("123456789"));
    }

    #[test]
    fn the_view_puts_id_first_and_never_a_null_totp_type() {
        let doc = Document::new(
            json!({"name": "n", "type": "password", "username": "u", "password": "p",
                   "totp_type": null, "id": "cred_other"})
            .as_object()
            .unwrap()
            .clone(),
        );
        let id = CredentialId::parse("cred_1").unwrap();
        let view = CredentialView {
            id: &id,
            kind: CredentialType::Password,
            document: &doc,
        };
        let text = serde_json::to_string(&view).unwrap();
        assert!(text.starts_with("{\"id\":\"cred_1\""), "{text}");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["totp_type"], "none");
        assert_eq!(value["id"], "cred_1");
    }

    #[test]
    fn the_view_adds_a_missing_totp_type() {
        let doc = Document::new(
            json!({"name": "n", "type": "password", "username": "u", "password": "p"})
                .as_object()
                .unwrap()
                .clone(),
        );
        let id = CredentialId::parse("cred_1").unwrap();
        let view = CredentialView {
            id: &id,
            kind: CredentialType::Password,
            document: &doc,
        };
        let value = serde_json::to_value(&view).unwrap();
        assert_eq!(value["totp_type"], "none");
    }
}
