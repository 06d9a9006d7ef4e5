-- The built-in module store (see control/src/store/blobs.rs): wasm modules
-- by content digest, and the tags that name them. Blobs live in the
-- database so every API server on one datastore serves the same modules.
-- Names use the "C" collation so tag listings sort bytewise, as on SQLite.

CREATE TABLE module_blobs (
    digest  TEXT   PRIMARY KEY,
    size    BIGINT NOT NULL,
    data    BYTEA  NOT NULL,
    created TEXT   NOT NULL
);

-- NAME:TAG -> digest. A push of a tag that exists moves it.
CREATE TABLE module_tags (
    name    TEXT COLLATE "C" PRIMARY KEY,
    digest  TEXT NOT NULL REFERENCES module_blobs (digest),
    updated TEXT NOT NULL
);
