use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::MemoryConfig;
use crate::{
    Backend, BackendInfo, CredentialId, Document, Error, ErrorKind, Key, ReferenceTarget,
    ReferencedEntry, Result, Scope,
};

/// Documents in a sharded concurrent map: a read takes one shard's read lock for the
/// length of a hash lookup and an `Arc` clone, and never holds it across an `.await`.
#[derive(Debug)]
pub struct MemoryBackend {
    documents: DashMap<Key, Document>,
    /// Documents stored, or reserved by a `put` in progress: counted apart from the map so
    /// that concurrent creates cannot overshoot the limit.
    stored: AtomicUsize,
    max_credentials: usize,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new(MemoryConfig::default())
    }
}

impl MemoryBackend {
    pub fn new(config: MemoryConfig) -> Self {
        Self {
            documents: DashMap::new(),
            stored: AtomicUsize::new(0),
            max_credentials: config.max_credentials,
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn info(&self) -> BackendInfo {
        MemoryConfig::INFO
    }

    async fn put(&self, key: &Key, document: &Document) -> Result<()> {
        let Entry::Vacant(slot) = self.documents.entry(key.clone()) else {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                "a credential with this id already exists",
            )
            .with_context("key", key));
        };
        let reserved = self
            .stored
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |stored| {
                (stored < self.max_credentials).then_some(stored + 1)
            });
        if reserved.is_err() {
            return Err(Error::new(
                ErrorKind::Full,
                "the memory backend holds backend.max_credentials credentials",
            )
            .with_context("max_credentials", self.max_credentials));
        }
        slot.insert(document.clone());
        Ok(())
    }

    async fn get(&self, key: &Key) -> Result<Document> {
        self.documents
            .get(key)
            .map(|entry| entry.value().clone())
            .ok_or_else(|| Error::not_found("no credential with this id").with_context("key", key))
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        if self.documents.remove(key).is_some() {
            self.stored.fetch_sub(1, Ordering::AcqRel);
        }
        Ok(())
    }

    async fn list(&self, scope: &Scope) -> Result<Vec<CredentialId>> {
        let mut ids: Vec<CredentialId> = self
            .documents
            .iter()
            .filter(|entry| &entry.key().scope == scope)
            .map(|entry| entry.key().id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    }

    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Nothing but credbridge's own credentials lives here.
    fn owns(&self, _target: &ReferenceTarget) -> bool {
        false
    }

    /// There are no existing entries to reference: always refused.
    async fn read_reference(&self, target: &ReferenceTarget) -> Result<ReferencedEntry> {
        Err(Error::invalid_config(
            "the memory backend holds no existing entries to reference; references need the \
             vault or aws backend",
        )
        .with_context("reference", target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Document {
        match serde_json::json!({"name": "n"}) {
            serde_json::Value::Object(fields) => Document::new(fields),
            _ => unreachable!("an object"),
        }
    }

    fn key(id: &str) -> Key {
        Key::new(Scope::default(), CredentialId::parse(id).unwrap())
    }

    #[tokio::test]
    async fn a_full_backend_refuses_creates_until_one_is_deleted() {
        let backend = MemoryBackend::new(MemoryConfig { max_credentials: 2 });
        let doc = document();
        backend.put(&key("a"), &doc).await.unwrap();
        backend.put(&key("b"), &doc).await.unwrap();
        let error = backend.put(&key("c"), &doc).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Full);
        assert_eq!(
            backend.get(&key("c")).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        // A duplicate is still a duplicate; deleting the absent frees nothing.
        assert_eq!(
            backend.put(&key("a"), &doc).await.unwrap_err().kind(),
            ErrorKind::AlreadyExists
        );
        backend.delete(&key("zz")).await.unwrap();
        assert_eq!(
            backend.put(&key("d"), &doc).await.unwrap_err().kind(),
            ErrorKind::Full
        );
        backend.delete(&key("a")).await.unwrap();
        backend.put(&key("c"), &doc).await.unwrap();
        assert_eq!(
            backend.put(&key("d"), &doc).await.unwrap_err().kind(),
            ErrorKind::Full
        );
    }
}
