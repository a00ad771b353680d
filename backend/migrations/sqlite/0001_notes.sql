-- Notes: one Yjs document each, kept as a snapshot plus the updates since.
CREATE TABLE notes (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE note_snapshots (
    note_id TEXT PRIMARY KEY NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    data BLOB NOT NULL,
    -- The snapshot includes every update with seq <= upto_seq.
    upto_seq INTEGER NOT NULL
);

CREATE TABLE note_updates (
    note_id TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (note_id, seq)
);
