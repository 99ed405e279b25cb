#![doc = include_str!("docs.md")]

mod backend;
mod config;

pub use backend::MemoryBackend;
pub use config::MemoryConfig;
