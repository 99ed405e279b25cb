//! Text that must never be printed: tokens, passwords, secret ids in configuration.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A secret string: `Debug`, `Display` and `Serialize` print `[redacted]`, and the memory
/// is zeroized on drop.
#[derive(Clone)]
pub struct SecretText(SecretString);

impl SecretText {
    pub const REDACTED: &'static str = "[redacted]";

    pub fn new(text: impl Into<String>) -> Self {
        Self(SecretString::from(text.into()))
    }

    /// The secret itself, for the one place that has to send or hash it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl PartialEq for SecretText {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl fmt::Display for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::REDACTED)
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::REDACTED)
    }
}

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts strings only, and words every refusal so that the value is never echoed:
/// serde's default "invalid type: integer `1234`" would print a numeric token.
struct SecretVisitor;

impl SecretVisitor {
    fn refuse<E: de::Error>() -> E {
        E::custom("expected a string (quote the value; it is not shown here)")
    }
}

impl Visitor<'_> for SecretVisitor {
    type Value = SecretText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretText, E> {
        Ok(SecretText::new(value))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<SecretText, E> {
        Ok(SecretText::new(value))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretText, E> {
        Err(Self::refuse())
    }

    fn visit_char<E: de::Error>(self, value: char) -> Result<SecretText, E> {
        Ok(SecretText::new(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_redact() {
        let secret = SecretText::new("s3cr3t-value");
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"[redacted]\"");
        assert_eq!(secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn a_number_is_refused_without_echoing_it() {
        let error = serde_json::from_str::<SecretText>("987654321").unwrap_err();
        assert!(!error.to_string().contains("987654321"), "{error}");
        assert!(error.to_string().contains("quote"), "{error}");
    }
}
