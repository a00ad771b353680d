-- Notes: one Yjs document each, kept as a snapshot plus the updates since.
CREATE TABLE notes (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE note_snapshots (
    note_id TEXT PRIMARY KEY NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    data BYTEA NOT NULL,
    -- The snapshot includes every update with seq <= upto_seq.
    upto_seq BIGINT NOT NULL
);

CREATE TABLE note_updates (
    note_id TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (note_id, seq)
);
