-- A deleted note keeps its row as a tombstone, so its id is never used
-- again (a Yjs client reconnecting to it must not recreate it); its
-- snapshot and updates are removed.
ALTER TABLE notes ADD COLUMN deleted_at INTEGER;
