//! The module store's blobs and tags.

use super::{TestDb, on_both_backends};

on_both_backends!(
    blobs_round_trip_byte_for_byte,
    a_second_put_of_a_blob_changes_nothing,
    tags_point_at_digests_and_move,
    blobs_and_tags_survive_reopening,
);

const DIGEST_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const DIGEST_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Every byte value, including NUL and bytes that are not UTF-8.
fn all_bytes() -> Vec<u8> {
    (0..=255u8).cycle().take(70_000).collect()
}

async fn blobs_round_trip_byte_for_byte(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    assert_eq!(store.module_blob(DIGEST_A).await?, None);
    assert_eq!(store.module_blob_size(DIGEST_A).await?, None);
    let data = all_bytes();
    assert!(store.put_module_blob(DIGEST_A, &data).await?);
    assert_eq!(store.module_blob(DIGEST_A).await?, Some(data.clone()));
    assert_eq!(store.module_blob_size(DIGEST_A).await?, Some(70_000));
    // Blobs carry no revision.
    assert_eq!(store.revision(), 0);
    store.close().await;
    Ok(())
}

async fn a_second_put_of_a_blob_changes_nothing(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    assert!(store.put_module_blob(DIGEST_A, b"\0asm first").await?);
    assert!(!store.put_module_blob(DIGEST_A, b"\0asm first").await?);
    assert_eq!(
        store.module_blob(DIGEST_A).await?.as_deref(),
        Some(&b"\0asm first"[..])
    );
    store.close().await;
    Ok(())
}

async fn tags_point_at_digests_and_move(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    store.put_module_blob(DIGEST_A, b"a").await?;
    store.put_module_blob(DIGEST_B, b"b").await?;
    assert_eq!(store.module_tag("app:v1").await?, None);
    store.set_module_tag("app:v1", DIGEST_A).await?;
    store.set_module_tag("app:latest", DIGEST_A).await?;
    assert_eq!(store.module_tag("app:v1").await?.as_deref(), Some(DIGEST_A));
    store.set_module_tag("app:latest", DIGEST_B).await?;
    assert_eq!(
        store.module_tag("app:latest").await?.as_deref(),
        Some(DIGEST_B)
    );
    let tags: Vec<(String, String)> = store
        .module_tags()
        .await?
        .into_iter()
        .map(|t| (t.name, t.digest))
        .collect();
    assert_eq!(
        tags,
        vec![
            ("app:latest".to_string(), DIGEST_B.to_string()),
            ("app:v1".to_string(), DIGEST_A.to_string()),
        ]
    );
    store.close().await;
    Ok(())
}

async fn blobs_and_tags_survive_reopening(db: TestDb) -> anyhow::Result<()> {
    let store = db.open().await?;
    store.put_module_blob(DIGEST_A, b"kept").await?;
    store.set_module_tag("app:v1", DIGEST_A).await?;
    store.close().await;
    let store = db.open().await?;
    assert_eq!(
        store.module_blob(DIGEST_A).await?.as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(store.module_tag("app:v1").await?.as_deref(), Some(DIGEST_A));
    store.close().await;
    Ok(())
}
