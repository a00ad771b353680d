//! Where notes live: SQLite under `--data-dir` by default, or Postgres with
//! `--database-url`, with the same schema and behaviour. Migrations are
//! embedded and run at start.
//!
//! A note is a snapshot (the merged Yjs state up to a sequence number) plus
//! the updates appended since; compaction folds the updates into a new
//! snapshot. A deleted note leaves a tombstone (`deleted_at`): its content
//! is gone, and nothing writes to it or recreates it again.

use std::path::Path;
use std::time::Duration;

use rookery_common::NoteSummary;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

/// How long a write waits for a Postgres connection before it fails.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database url (use sqlite: or postgres://)")]
    UnsupportedUrl,
    #[error("the note was deleted")]
    NoteDeleted,
    #[error("a stored update cannot be decoded: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A note's persisted state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoredNote {
    pub snapshot: Option<Vec<u8>>,
    /// The snapshot's `upto_seq` (0 without one).
    pub snapshot_seq: i64,
    /// Updates after the snapshot, in order.
    pub updates: Vec<(i64, Vec<u8>)>,
}

impl StoredNote {
    pub fn last_seq(&self) -> i64 {
        self.updates
            .last()
            .map_or(self.snapshot_seq, |(seq, _)| *seq)
    }
}

/// Whether a note id is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteStatus {
    Missing,
    Live,
    /// A tombstone: the id stays taken.
    Deleted,
}

impl Store {
    /// SQLite in `data_dir/rookery.db` (created if missing, WAL mode).
    pub async fn open_sqlite(data_dir: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("rookery.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Store::Sqlite(pool))
    }

    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        // A database that went away must reach the editor as "not saved"
        // within seconds, not after sqlx's default 30 s of retries.
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Store::Postgres(pool))
    }

    /// Opens `--database-url` if given, else SQLite under the data dir.
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> Result<Self, StoreError> {
        match database_url {
            None => Self::open_sqlite(data_dir).await,
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Self::open_postgres(url).await
            }
            Some(_) => Err(StoreError::UnsupportedUrl),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Creates the note's row if it does not exist yet; true if it did not.
    /// A deleted note's id is refused ([`StoreError::NoteDeleted`]): it
    /// never comes back.
    pub async fn ensure_note(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        if self.create_note(id, now_ms).await? {
            return Ok(true);
        }
        match self.note_status(id).await? {
            NoteStatus::Deleted => Err(StoreError::NoteDeleted),
            NoteStatus::Live | NoteStatus::Missing => Ok(false),
        }
    }

    /// Creates an empty note; false if the id is taken (by a note or a
    /// tombstone).
    pub async fn create_note(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let inserted = match self {
            Store::Sqlite(pool) => sqlx::query(
                "INSERT INTO notes (id, title, created_at, updated_at) VALUES (?, '', ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(now_ms)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected(),
            Store::Postgres(pool) => sqlx::query(
                "INSERT INTO notes (id, title, created_at, updated_at) VALUES ($1, '', $2, $3) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(now_ms)
            .bind(now_ms)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(inserted == 1)
    }

    pub async fn note_status(&self, id: &str) -> Result<NoteStatus, StoreError> {
        let deleted_at: Option<Option<i64>> = match self {
            Store::Sqlite(pool) => {
                sqlx::query_scalar("SELECT deleted_at FROM notes WHERE id = ?")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
            Store::Postgres(pool) => {
                sqlx::query_scalar("SELECT deleted_at FROM notes WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(match deleted_at {
            None => NoteStatus::Missing,
            Some(None) => NoteStatus::Live,
            Some(Some(_)) => NoteStatus::Deleted,
        })
    }

    /// Deletes a live note for good: its snapshot and updates go, a
    /// tombstone stays. False if there was no live note of that id.
    pub async fn delete_note(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let tombstoned = sqlx::query(
                    "UPDATE notes SET deleted_at = ?, title = '' WHERE id = ? AND deleted_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if tombstoned == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM note_updates WHERE note_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM note_snapshots WHERE note_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let tombstoned = sqlx::query(
                    "UPDATE notes SET deleted_at = $1, title = '' WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if tombstoned == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM note_updates WHERE note_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM note_snapshots WHERE note_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    pub async fn load(&self, id: &str) -> Result<StoredNote, StoreError> {
        let (snapshot_rows, update_rows) = match self {
            Store::Sqlite(pool) => (
                sqlx::query("SELECT data, upto_seq FROM note_snapshots WHERE note_id = ?")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| (row.get::<Vec<u8>, _>(0), row.get::<i64, _>(1)))
                    .collect::<Vec<_>>(),
                sqlx::query("SELECT seq, data FROM note_updates WHERE note_id = ? ORDER BY seq")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| (row.get::<i64, _>(0), row.get::<Vec<u8>, _>(1)))
                    .collect::<Vec<_>>(),
            ),
            Store::Postgres(pool) => (
                sqlx::query("SELECT data, upto_seq FROM note_snapshots WHERE note_id = $1")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| (row.get::<Vec<u8>, _>(0), row.get::<i64, _>(1)))
                    .collect::<Vec<_>>(),
                sqlx::query("SELECT seq, data FROM note_updates WHERE note_id = $1 ORDER BY seq")
                    .bind(id)
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| (row.get::<i64, _>(0), row.get::<Vec<u8>, _>(1)))
                    .collect::<Vec<_>>(),
            ),
        };
        let (snapshot, snapshot_seq) = match snapshot_rows.into_iter().next() {
            Some((data, seq)) => (Some(data), seq),
            None => (None, 0),
        };
        // Every row left is one no compaction folded in yet: compaction
        // removes the rows it merges in the same transaction. (In a
        // cluster, rows come from several nodes whose sequence numbers do
        // not compare with the snapshot's, so none is skipped by number.)
        let updates = update_rows;
        Ok(StoredNote {
            snapshot,
            snapshot_seq,
            updates,
        })
    }

    /// Appends one update. Returns once it is durable; refuses a deleted
    /// note's ([`StoreError::NoteDeleted`]).
    pub async fn append_update(
        &self,
        id: &str,
        seq: i64,
        data: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // The note's row is written first: its lock orders this against a
        // concurrent delete, which then either removes this update or is
        // seen here.
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE notes SET updated_at = ? WHERE id = ? AND deleted_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 0 {
                    return Err(StoreError::NoteDeleted);
                }
                sqlx::query("INSERT INTO note_updates (note_id, seq, data) VALUES (?, ?, ?)")
                    .bind(id)
                    .bind(seq)
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE notes SET updated_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now_ms)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 0 {
                    return Err(StoreError::NoteDeleted);
                }
                sqlx::query("INSERT INTO note_updates (note_id, seq, data) VALUES ($1, $2, $3)")
                    .bind(id)
                    .bind(seq)
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Folds `data` (a document's whole state), the stored snapshot and
    /// every stored update into one new snapshot and drops those updates,
    /// atomically; refuses a deleted note's ([`StoreError::NoteDeleted`]).
    /// Returns the new snapshot's size.
    ///
    /// Merging with what is stored, rather than replacing it with `data`,
    /// is what lets several nodes write one note: whatever another node
    /// stored (and this one has not seen yet) stays.
    pub async fn compact(&self, id: &str, data: &[u8], upto_seq: i64) -> Result<usize, StoreError> {
        // As in `append_update`, the note's row first (an update that
        // changes nothing, for its lock): a delete or an append is ordered
        // against it, so the rows read below are all the rows there are.
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE notes SET deleted_at = NULL WHERE id = ? AND deleted_at IS NULL",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 0 {
                    return Err(StoreError::NoteDeleted);
                }
                let stored: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT data FROM note_snapshots WHERE note_id = ? \
                     UNION ALL SELECT data FROM note_updates WHERE note_id = ?",
                )
                .bind(id)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let merged = merge(data, &stored)?;
                sqlx::query(
                    "INSERT INTO note_snapshots (note_id, data, upto_seq) VALUES (?, ?, ?) \
                     ON CONFLICT (note_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
                )
                .bind(id)
                .bind(&merged)
                .bind(upto_seq)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM note_updates WHERE note_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(merged.len())
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let live = sqlx::query(
                    "UPDATE notes SET deleted_at = NULL WHERE id = $1 AND deleted_at IS NULL",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if live == 0 {
                    return Err(StoreError::NoteDeleted);
                }
                let stored: Vec<Vec<u8>> = sqlx::query_scalar(
                    "SELECT data FROM note_snapshots WHERE note_id = $1 \
                     UNION ALL SELECT data FROM note_updates WHERE note_id = $1",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                let merged = merge(data, &stored)?;
                sqlx::query(
                    "INSERT INTO note_snapshots (note_id, data, upto_seq) VALUES ($1, $2, $3) \
                     ON CONFLICT (note_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
                )
                .bind(id)
                .bind(&merged)
                .bind(upto_seq)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM note_updates WHERE note_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(merged.len())
            }
        }
    }

    pub async fn set_title(&self, id: &str, title: &str) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(pool) => {
                sqlx::query("UPDATE notes SET title = ? WHERE id = ? AND deleted_at IS NULL")
                    .bind(title)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            Store::Postgres(pool) => {
                sqlx::query("UPDATE notes SET title = $1 WHERE id = $2 AND deleted_at IS NULL")
                    .bind(title)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(())
    }

    /// Every note not deleted, most recently edited first.
    pub async fn list(&self) -> Result<Vec<NoteSummary>, StoreError> {
        let query = "SELECT id, title, updated_at FROM notes WHERE deleted_at IS NULL \
                     ORDER BY updated_at DESC, id";
        let rows: Vec<(String, String, i64)> = match self {
            Store::Sqlite(pool) => sqlx::query_as(query).fetch_all(pool).await?,
            Store::Postgres(pool) => sqlx::query_as(query).fetch_all(pool).await?,
        };
        Ok(rows
            .into_iter()
            .map(|(id, title, updated_at)| NoteSummary {
                id,
                title,
                // Milliseconds since the epoch: never negative.
                updated_at: u64::try_from(updated_at).unwrap_or(0),
            })
            .collect())
    }
}

/// One Yjs update holding `state` and everything `stored`.
fn merge(state: &[u8], stored: &[Vec<u8>]) -> Result<Vec<u8>, StoreError> {
    if stored.is_empty() {
        return Ok(state.to_vec());
    }
    let all = std::iter::once(state).chain(stored.iter().map(Vec::as_slice));
    yrs::merge_updates_v1(all).map_err(|error| StoreError::Corrupt(error.to_string()))
}
