-- The generic object store: one row per object, an append-only change log
-- and the global revision counter (see control/src/store/mod.rs).

-- The revision counter. Every write transaction reads and advances it, so
-- revisions are gap-free and commit in order.
CREATE TABLE meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision INTEGER NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

-- Current state. data is the object's JSON with metadata.resourceVersion
-- equal to revision. Ordering and paging follow the primary key.
CREATE TABLE objects (
    resource  TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    uid       TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    data      TEXT    NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);

-- One row per revision: what changed, the object after the change (for a
-- deletion: the last state stamped with the deletion's revision) and the
-- object before it. Compaction deletes the oldest rows.
CREATE TABLE change_log (
    revision  INTEGER PRIMARY KEY,
    resource  TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    event     TEXT    NOT NULL,
    object    TEXT    NOT NULL,
    prev      TEXT
);
