//! The opaque JSON object a backend stores.
//!
//! A document holds a credential's fields, secrets included, so it never prints them:
//! `Debug` lists field names only, and the string values are zeroized when the last copy is
//! dropped. Copies are cheap (`Arc`), which keeps the memory backend's read path free of
//! deep clones.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::Zeroize;

/// A JSON object: field name to JSON value.
#[derive(Clone, PartialEq)]
pub struct Document(Arc<Fields>);

#[derive(PartialEq)]
struct Fields(Map<String, Value>);

impl Document {
    pub fn new(fields: Map<String, Value>) -> Self {
        Self(Arc::new(Fields(fields)))
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.0 .0
    }

    pub fn get(&self, field: &str) -> Option<&Value> {
        self.0 .0.get(field)
    }

    /// The JSON text of the document. The caller owns a copy of every secret in it.
    pub fn to_json(&self) -> String {
        // Serializing a map of `Value`s cannot fail: keys are strings, values are JSON.
        serde_json::to_string(&self.0 .0).unwrap_or_default()
    }

    /// Parses a JSON text that must hold an object.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(Self::new)
    }
}

impl From<Map<String, Value>> for Document {
    fn from(fields: Map<String, Value>) -> Self {
        Self::new(fields)
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("fields", &self.0 .0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Serialize for Document {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0 .0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Map::deserialize(deserializer).map(Self::new)
    }
}

impl Drop for Fields {
    fn drop(&mut self) {
        zeroize_map(&mut self.0);
    }
}

fn zeroize_map(map: &mut Map<String, Value>) {
    for (_, value) in map.iter_mut() {
        zeroize_value(value);
    }
}

pub(crate) fn zeroize_value(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(zeroize_value),
        Value::Object(map) => zeroize_map(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document(value: Value) -> Document {
        match value {
            Value::Object(map) => Document::new(map),
            _ => unreachable!("test documents are objects"),
        }
    }

    #[test]
    fn debug_lists_field_names_but_never_values() {
        let doc = document(json!({"password": "hunter2", "nested": {"cvv": "123"}}));
        let printed = format!("{doc:?}");
        assert!(printed.contains("password"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("123"), "{printed}");
    }

    #[test]
    fn json_round_trip_keeps_every_value() {
        let doc = document(json!({"a": "é ✓", "b": null, "c": {"d": "e"}}));
        assert_eq!(Document::from_json(&doc.to_json()).unwrap(), doc);
    }

    #[test]
    fn zeroize_clears_nested_strings() {
        let mut map = match json!({"a": "secret", "b": [{"c": "deep"}]}) {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        zeroize_map(&mut map);
        assert_eq!(Value::Object(map), json!({"a": "", "b": [{"c": ""}]}));
    }
}
