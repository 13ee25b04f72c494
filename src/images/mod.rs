//! Store: rendered chart PNGs kept somewhere a person's mail or chat client
//! can fetch them, behind URLs that expire.
//!
//! One trait, [`ImageStore`], two kinds chosen by `[storage] kind`:
//! `internal` (files under a directory, HMAC-signed URLs served by fanout's
//! HTTP server) and `s3` (any S3-compatible store, presigned GET URLs).
//! Keys are content hashes, so the same chart stored twice is one object.

pub mod config;
pub mod internal;
pub mod s3;
pub mod signing;

use crate::check::CheckRow;
use config::{StorageConfig, StorageKind};

/// Where a stored PNG can be fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The content hash the object is stored under (hex SHA-256, no suffix).
    pub key: String,
    /// A URL that serves the PNG until it expires.
    pub url: String,
}

/// Why a PNG could not be stored or a URL not made. The message holds no
/// secret (no keys, no signatures, no presigned query strings).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    pub message: String,
}

impl StorageError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// The content key of a PNG: hex SHA-256 of its bytes.
pub fn content_key(png: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(png))
}

/// What every storage kind does.
pub trait ImageStore {
    /// Store `png` (idempotent: same bytes, same key) and return a URL valid
    /// for the configured `url_ttl`.
    fn put(
        &self,
        png: &[u8],
    ) -> impl std::future::Future<Output = Result<Stored, StorageError>> + Send;

    /// The PNG stored under `key` (from [`Stored::key`]): delivery workers
    /// fetch what a render worker stored, so no PNG rides in a message.
    fn get(
        &self,
        key: &str,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, StorageError>> + Send;

    /// A real round trip for `fanout check`: store, fetch through the URL,
    /// compare, clean up.
    fn check(&self) -> impl std::future::Future<Output = CheckRow> + Send;
}

/// The configured store.
pub enum Storage {
    Internal(internal::InternalStore),
    S3(s3::S3Store),
}

impl Storage {
    /// Build the store `[storage]` names; `None` when there is no
    /// `[storage]` section (charts then go inline only).
    /// `public_url` is `[http] public_url`, which internal storage builds
    /// its image URLs from.
    pub async fn new(
        storage: Option<&StorageConfig>,
        public_url: Option<&url::Url>,
    ) -> Result<Option<Self>, StorageError> {
        let Some(storage) = storage else {
            return Ok(None);
        };
        Ok(Some(match &storage.kind {
            StorageKind::Internal => {
                Storage::Internal(internal::InternalStore::new(storage, public_url)?)
            }
            StorageKind::S3(s3) => Storage::S3(s3::S3Store::new(s3, storage.url_ttl).await?),
        }))
    }

    pub async fn put(&self, png: &[u8]) -> Result<Stored, StorageError> {
        match self {
            Storage::Internal(s) => s.put(png).await,
            Storage::S3(s) => s.put(png).await,
        }
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        match self {
            Storage::Internal(s) => s.get(key).await,
            Storage::S3(s) => s.get(key).await,
        }
    }

    pub async fn check(&self) -> CheckRow {
        match self {
            Storage::Internal(s) => s.check().await,
            Storage::S3(s) => s.check().await,
        }
    }
}
