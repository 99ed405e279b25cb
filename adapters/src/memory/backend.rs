use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::MemoryConfig;
use crate::{
    Backend, BackendInfo, Capabilities, CredentialId, Document, Error, ErrorKind, Key,
    ReferenceTarget, ReferencedEntry, Result, Scope,
};

/// Documents in a sharded concurrent map: a read takes one shard's read lock for the
/// length of a hash lookup and an `Arc` clone, and never holds it across an `.await`.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    documents: DashMap<Key, Document>,
}

impl MemoryBackend {
    pub const KIND: &'static str = "memory";

    pub fn new(_config: MemoryConfig) -> Self {
        Self::default()
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: Self::KIND,
            capabilities: Capabilities {
                persistent: false,
                shared: false,
            },
        }
    }

    async fn put(&self, key: &Key, document: &Document) -> Result<()> {
        match self.documents.entry(key.clone()) {
            Entry::Occupied(_) => Err(Error::new(
                ErrorKind::AlreadyExists,
                "a credential with this id already exists",
            )
            .with_context("key", key)),
            Entry::Vacant(slot) => {
                slot.insert(document.clone());
                Ok(())
            }
        }
    }

    async fn get(&self, key: &Key) -> Result<Document> {
        self.documents
            .get(key)
            .map(|entry| entry.value().clone())
            .ok_or_else(|| Error::not_found("no credential with this id").with_context("key", key))
    }

    async fn delete(&self, key: &Key) -> Result<()> {
        self.documents.remove(key);
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
