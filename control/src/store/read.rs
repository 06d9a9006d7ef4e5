//! Reads on the reader pool: single objects, consistent list pages and
//! change-log ranges. Reads never take the writer's connection, and under
//! WAL (SQLite) or MVCC (Postgres) never wait for it either.

use std::sync::Arc;

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Connection, Row};

use super::db::Db;
use super::types::{Event, EventType, Key, List, StoreError, Stored};

pub(crate) async fn get(db: &Db, key: &Key) -> Result<Option<Stored>, StoreError> {
    let row = sqlx::query(
        "SELECT revision, data FROM objects WHERE resource = $1 AND namespace = $2 AND name = $3",
    )
    .bind(key.resource.as_str())
    .bind(key.namespace.as_str())
    .bind(key.name.as_str())
    .fetch_optional(&db.read)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let revision: i64 = row.try_get(0)?;
    let data: String = row.try_get(1)?;
    Ok(Some(Stored {
        revision,
        object: Arc::new(parse(key, &data)?),
    }))
}

pub(crate) async fn list(
    db: &Db,
    resource: &str,
    namespace: Option<&str>,
    after: Option<(&str, &str)>,
    limit: Option<usize>,
) -> Result<List, StoreError> {
    let mut sql =
        String::from("SELECT namespace, name, revision, data FROM objects WHERE resource = $1");
    let mut params = 1;
    if namespace.is_some() {
        params += 1;
        sql.push_str(&format!(" AND namespace = ${params}"));
    }
    if after.is_some() {
        let (ns, name) = (params + 1, params + 2);
        params += 2;
        // A row-value comparison, unlike the equivalent OR, lets both
        // SQLite and Postgres seek the primary key to the continue position.
        sql.push_str(&format!(" AND (namespace, name) > (${ns}, ${name})"));
    }
    sql.push_str(" ORDER BY namespace, name");
    // One row past the page tells whether more follow.
    let fetch = limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX - 1) + 1);
    if fetch.is_some() {
        sql.push_str(&format!(" LIMIT ${}", params + 1));
    }

    let mut query = sqlx::query(&sql).bind(resource);
    if let Some(ns) = namespace {
        query = query.bind(ns);
    }
    if let Some((ns, name)) = after {
        query = query.bind(ns).bind(name);
    }
    if let Some(fetch) = fetch {
        query = query.bind(fetch);
    }

    // The counter and the rows come from one snapshot, so the page is
    // exactly the state at `revision`.
    let mut conn = db.read.acquire().await?;
    let snapshot = async {
        let mut tx = conn.begin_with(db.backend.begin_snapshot()).await?;
        let revision: i64 = sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>((revision, rows))
    }
    .await;
    if snapshot.is_err() {
        // SQLite ends a transaction by itself on some errors (busy, I/O),
        // so the rollback sqlx sends fails and the connection would stay
        // "in a transaction" for good: it is closed, not pooled again.
        conn.close_on_drop();
    }
    let (revision, rows) = snapshot?;

    let more = limit.is_some_and(|l| rows.len() > l);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows.into_iter().take(limit.unwrap_or(usize::MAX)) {
        let key = Key::new(
            resource,
            row.try_get::<String, _>(0)?,
            row.try_get::<String, _>(1)?,
        );
        let data: String = row.try_get(3)?;
        items.push(Stored {
            revision: row.try_get(2)?,
            object: Arc::new(parse(&key, &data)?),
        });
    }
    Ok(List {
        revision,
        items,
        more,
    })
}

/// The committed revision as stored in the database.
pub(crate) async fn current_revision(db: &Db) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
        .fetch_one(&db.read)
        .await?)
}

/// Change-log rows with revision in `(after, upto]`, oldest first, at most
/// `limit`.
pub(crate) async fn log_after(
    db: &Db,
    after: i64,
    upto: Option<i64>,
    limit: i64,
) -> Result<Vec<Arc<Event>>, StoreError> {
    let rows = sqlx::query(
        "SELECT revision, resource, namespace, name, event, object, prev FROM change_log \
         WHERE revision > $1 AND revision <= $2 ORDER BY revision LIMIT $3",
    )
    .bind(after)
    .bind(upto.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(&db.read)
    .await?;
    rows.iter()
        .map(|row| decode_event(row).map(Arc::new))
        .collect()
}

fn decode_event(row: &AnyRow) -> Result<Event, StoreError> {
    let revision: i64 = row.try_get(0)?;
    let key = Key::new(
        row.try_get::<String, _>(1)?,
        row.try_get::<String, _>(2)?,
        row.try_get::<String, _>(3)?,
    );
    let kind = match row.try_get::<String, _>(4)?.as_str() {
        "ADDED" => EventType::Added,
        "MODIFIED" => EventType::Modified,
        "DELETED" => EventType::Deleted,
        other => {
            return Err(corrupt(
                &key,
                &format!("unknown change-log event type {other:?}"),
            ));
        }
    };
    let object = parse(&key, &row.try_get::<String, _>(5)?)?;
    let prev = row
        .try_get::<Option<String>, _>(6)?
        .map(|p| parse(&key, &p))
        .transpose()?;
    Ok(Event::new(
        kind,
        revision,
        key,
        Arc::new(object),
        prev.map(Arc::new),
    ))
}

pub(crate) fn parse(key: &Key, data: &str) -> Result<Value, StoreError> {
    serde_json::from_str(data).map_err(|source| StoreError::Corrupt {
        key: key.clone(),
        source,
    })
}

/// A `Corrupt` error for a value that is JSON but not a usable object.
pub(crate) fn corrupt(key: &Key, why: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.clone(),
        source: <serde_json::Error as serde::de::Error>::custom(why),
    }
}
