//! The module store's tables: wasm modules kept by content digest and the
//! tags (`NAME:TAG`) that point at them, in the same database as the
//! objects so every API server on one datastore serves the same modules.
//!
//! Blobs and tags are not API objects: they carry no revision and no watch
//! event, so they bypass the writer task. They are written on the reader
//! pool (the writer keeps the one connection of the write pool): on SQLite
//! such a statement takes the database write lock briefly and waits for
//! the writer's transactions through `busy_timeout`; on Postgres it is an
//! ordinary autocommit statement. Blobs are immutable, so concurrent pushes
//! of one module (from one server or several) are harmless: the first
//! insert wins and the others change nothing.

use sqlx::Row;

use super::types::StoreError;
use super::{Store, closed};

/// A tag and the digest it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleTag {
    /// `NAME:TAG`.
    pub name: String,
    /// `sha256:<hex>`.
    pub digest: String,
}

impl Store {
    /// Stores a module under its `digest` (the caller computed it from
    /// `data`). True when it was new, false when it was already stored.
    pub async fn put_module_blob(&self, digest: &str, data: &[u8]) -> Result<bool, StoreError> {
        let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
        let created = jiff::Timestamp::now().to_string();
        let done = sqlx::query(
            "INSERT INTO module_blobs (digest, size, data, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .bind(size)
        .bind(data)
        .bind(created)
        .execute(&self.inner.db.read)
        .await
        .map_err(|e| closed(e.into()))?;
        Ok(done.rows_affected() > 0)
    }

    /// The bytes of the module with `digest`, if stored.
    pub async fn module_blob(&self, digest: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT data FROM module_blobs WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.inner.db.read)
            .await
            .map_err(|e| closed(e.into()))?;
        match row {
            Some(row) => Ok(Some(row.try_get::<Vec<u8>, _>(0)?)),
            None => Ok(None),
        }
    }

    /// The size in bytes of the module with `digest`, if stored.
    pub async fn module_blob_size(&self, digest: &str) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> =
            sqlx::query_scalar("SELECT size FROM module_blobs WHERE digest = $1")
                .bind(digest)
                .fetch_optional(&self.inner.db.read)
                .await
                .map_err(|e| closed(e.into()))?;
        Ok(size.map(|s| u64::try_from(s).unwrap_or(0)))
    }

    /// Points the tag `name` (`NAME:TAG`) at `digest`, which must be stored.
    pub async fn set_module_tag(&self, name: &str, digest: &str) -> Result<(), StoreError> {
        let updated = jiff::Timestamp::now().to_string();
        sqlx::query(
            "INSERT INTO module_tags (name, digest, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET digest = excluded.digest, updated = excluded.updated",
        )
        .bind(name)
        .bind(digest)
        .bind(updated)
        .execute(&self.inner.db.read)
        .await
        .map_err(|e| closed(e.into()))?;
        Ok(())
    }

    /// The digest the tag `name` (`NAME:TAG`) points at.
    pub async fn module_tag(&self, name: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT digest FROM module_tags WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.inner.db.read)
            .await
            .map_err(|e| closed(e.into()))
    }

    /// Every tag, ordered by name.
    pub async fn module_tags(&self) -> Result<Vec<ModuleTag>, StoreError> {
        let rows = sqlx::query("SELECT name, digest FROM module_tags ORDER BY name")
            .fetch_all(&self.inner.db.read)
            .await
            .map_err(|e| closed(e.into()))?;
        rows.iter()
            .map(|row| {
                Ok(ModuleTag {
                    name: row.try_get(0)?,
                    digest: row.try_get(1)?,
                })
            })
            .collect()
    }
}
