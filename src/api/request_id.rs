//! Request ids: each request's `X-Request-Id`, taken from the client when it is short and
//! plain, made here otherwise, and copied into the request's log and audit lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest `X-Request-Id` taken from a client.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's `X-Request-Id` may be used as this request's id: it is copied into
/// every log and audit line of the request, so only a short, plain one is.
fn is_usable_request_id(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_alphanumeric() || b"._:-".contains(byte))
}

/// The request's id: the client's `X-Request-Id` when it gave exactly one usable value,
/// else a fresh one, which replaces whatever the client sent.
pub fn assign(headers: &mut HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(REQUEST_ID).iter();
    if let (Some(value), None) = (values.next(), values.next()) {
        if is_usable_request_id(value) {
            return value.clone();
        }
    }
    let fresh = fresh();
    headers.insert(REQUEST_ID, fresh.clone());
    fresh
}

/// A request id made without a system call: 64 random bits drawn once per process, so
/// that ids from several replicas do not collide, then a counter (`9f3c0a1b2c3d4e5f-1a`).
fn fresh() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // Uniqueness across replicas is a convenience, not a security property: a failing
        // generator still leaves the counter.
        let _ = getrandom::fill(&mut bytes);
        u64::from_ne_bytes(bytes)
    });
    let number = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::try_from(format!("{prefix:016x}-{number:x}"))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_usable() {
        let usable =
            |text: &str| is_usable_request_id(&HeaderValue::from_bytes(text.as_bytes()).unwrap());
        for text in [
            "trace-me-42",
            "a",
            "0af7651916cd43dd8448eb211c80319c",
            "svc:req.1_2-3",
        ] {
            assert!(usable(text), "{text}");
        }
        assert!(usable(&"x".repeat(64)));
        for text in ["", "has space", "semi;colon", "quote\"", "slash/", "é"] {
            assert!(!usable(text), "{text}");
        }
        assert!(!usable(&"x".repeat(65)));
    }

    #[test]
    fn made_ids_are_usable_distinct_and_share_the_process_prefix() {
        let ids: Vec<String> = (0..1000)
            .map(|_| {
                let value = assign(&mut HeaderMap::new());
                assert!(is_usable_request_id(&value), "{value:?}");
                value.to_str().unwrap().to_owned()
            })
            .collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let prefix = |id: &str| id.split_once('-').unwrap().0.to_owned();
        assert!(ids.iter().all(|id| prefix(id) == prefix(&ids[0])));
        assert_eq!(prefix(&ids[0]).len(), 16);
    }

    #[test]
    fn one_usable_client_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("trace-me-42"));
        assert_eq!(assign(&mut headers), "trace-me-42");
        assert_eq!(headers.get_all(REQUEST_ID).iter().count(), 1);

        for values in [&["has space"][..], &["a", "b"][..]] {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(REQUEST_ID, HeaderValue::from_static(value));
            }
            let assigned = assign(&mut headers);
            assert!(!values.contains(&assigned.to_str().unwrap()), "{values:?}");
            let kept: Vec<_> = headers.get_all(REQUEST_ID).iter().collect();
            assert_eq!(kept, [&assigned]);
        }
    }
}
