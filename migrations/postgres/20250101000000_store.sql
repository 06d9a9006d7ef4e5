-- The generic object store: one row per object, an append-only change log
-- and the global revision counter (see control/src/store/mod.rs).
--
-- JSON is kept as TEXT: the store never looks inside objects, and TEXT
-- keeps the bytes (and key order) exactly as written, without a re-parse on
-- every write and read. Key columns use the "C" collation so objects sort
-- bytewise, as on SQLite and as etcd keys do, whatever the database's
-- default collation.

-- The revision counter. Every write transaction locks this row (SELECT ...
-- FOR UPDATE) until it commits, so writers in all processes serialize and
-- commit in revision order without gaps.
CREATE TABLE meta (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT  NOT NULL
);
INSERT INTO meta (id, revision) VALUES (1, 0);

CREATE TABLE objects (
    resource  TEXT COLLATE "C" NOT NULL,
    namespace TEXT COLLATE "C" NOT NULL,
    name      TEXT COLLATE "C" NOT NULL,
    uid       TEXT   NOT NULL,
    revision  BIGINT NOT NULL,
    data      TEXT   NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);

CREATE TABLE change_log (
    revision  BIGINT PRIMARY KEY,
    resource  TEXT   NOT NULL,
    namespace TEXT   NOT NULL,
    name      TEXT   NOT NULL,
    event     TEXT   NOT NULL,
    object    TEXT   NOT NULL,
    prev      TEXT
);
