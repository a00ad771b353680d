//! Collaborative notes on the server: one in-memory Yjs document per open
//! note, loaded from the store on first use and unloaded after the last
//! peer leaves (with a grace period); every update is stored before it is
//! acknowledged, and the update log is compacted into snapshots.
//!
//! - [`document`]: one note's document (yrs), sync steps and awareness.
//! - `checked_decoder`: reads peers' updates for yrs, refusing the clocks
//!   and client ids yrs would mishandle.
//! - [`list_events`]: what the notes list is told, and how often.
//!
//! Peers are `/ws` connections that sent `doc_sync` for `notes:{id}` and
//! `/yjs/{id}` sockets speaking the y-websocket protocol; both see each
//! other's edits. The server edits too (a rename is its own edit of the
//! title), through the same path as a peer's update.
//!
//! A deletion is decided by the store (the tombstone is written first);
//! then the open note is dropped from the registry and marked deleted, its
//! peers are told and let go, and whatever still holds the handle is
//! refused.
//!
//! An edit is applied in memory and relayed before it is stored. When its
//! store write fails (or a compaction does), the document holds something
//! the store may not: the note is marked `needs_snapshot`, and from then
//! on no update of it is acknowledged before a snapshot of the whole
//! document is stored; nor is it unloaded before one is. An update is
//! acknowledged only once every edit applied before it has been written
//! or has failed (and then been covered by that snapshot).
//!
//! Joining a note, or the server's own edit of it, happens only on the
//! handle registered for it, checked under the registry's lock: unloading
//! removes only a handle without peers under the same lock, so nobody
//! joins a note that is no longer registered.

mod checked_decoder;
pub mod document;
pub mod list_events;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use rookery_common::notes::{MAX_TITLE_CHARS, is_valid_title};
use rookery_common::{Bytes, ChannelName, CloseCode, NoteSummary, ServerMessage};
use tokio::sync::{Notify, OnceCell, mpsc};
use tokio::time::Instant;
use yrs::sync::{Message as SyncWire, SyncMessage};
use yrs::updates::encoder::Encode;

pub use document::{BODY, DocumentError, NoteDocument, PeerId, TITLE};
pub use list_events::Listener as ListListener;

use crate::hub::outbox::{Frame, Outbox, PushError};
use crate::hub::unix_time_ms;
use crate::store::{NoteStatus, Store, StoreError};
use crate::websocket::frame::Wire;
use list_events::{Announcer, Current};

/// Limits and timings for notes.
#[derive(Debug, Clone)]
pub struct NoteLimits {
    pub max_update_bytes: usize,
    pub max_document_bytes: usize,
    /// Updates stored separately before they are folded into a snapshot.
    pub compact_every: i64,
    /// How long a note stays loaded after its last peer leaves.
    pub unload_after: Duration,
    /// Least time between two announcements of one note's edits to the
    /// notes list (titles, creations and deletions go at once).
    pub announce_edits_every: Duration,
}

impl Default for NoteLimits {
    fn default() -> Self {
        Self {
            max_update_bytes: 256 * 1024,
            max_document_bytes: 16 * 1024 * 1024,
            compact_every: 500,
            unload_after: Duration::from_secs(30),
            announce_edits_every: Duration::from_secs(5),
        }
    }
}

/// A cluster member's link to the other nodes' copies of its notes (over
/// Redis, in `crate::cluster`): every note loaded here is followed, so
/// other nodes' edits, cursors and deletes reach this node's editors, and
/// this node's reach theirs. The store (Postgres) is shared: whichever node
/// applies an edit stores it.
pub trait NoteRelay: Send + Sync + std::fmt::Debug {
    /// Starts hearing `note`'s changes; resolves once that is in place
    /// (false: the broker cannot be reached), before the note is loaded
    /// from the store, so no edit falls between the two.
    fn follow(&self, note: &str) -> BoxFuture<'static, bool>;
    fn unfollow(&self, note: &str);
    /// Tells the other nodes; never waits.
    fn send(&self, note: &str, change: NoteChange);
}

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A change to a note, between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteChange {
    /// A Yjs update (already stored, or being stored, by its node).
    Update(Vec<u8>),
    /// An awareness update (who is here, their cursors).
    Awareness(Vec<u8>),
    Deleted,
}

/// Awareness from other nodes is held for this pseudo-peer: their own
/// nodes announce its removals.
const OTHER_NODES: PeerId = PeerId::MAX;

/// Other nodes' changes kept for a note still loading.
const MAX_PENDING_REMOTE: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("note ids are 1 to 64 of A-Z, a-z, 0-9, - and _")]
    InvalidId,
    #[error("a title is at most {MAX_TITLE_CHARS} characters, without control characters")]
    InvalidTitle,
    #[error("no note has that id")]
    UnknownNote,
    #[error("the note was deleted")]
    Deleted,
    #[error("a note with that id exists already")]
    IdTaken,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("not saved: {0}")]
    Store(StoreError),
    #[error("the cluster's broker cannot be reached; try again")]
    Unavailable,
}

impl From<StoreError> for NotesError {
    fn from(error: StoreError) -> Self {
        match error {
            // The store refuses to write to a tombstone: the note is gone.
            StoreError::NoteDeleted => NotesError::Deleted,
            error => NotesError::Store(error),
        }
    }
}

/// Where a peer's messages go.
#[derive(Debug, Clone)]
pub enum PeerSink {
    /// A `/ws` connection: JSON pushes on its outbox.
    Ws {
        outbox: Outbox,
        channel: ChannelName,
    },
    /// A `/yjs` socket: binary y-websocket frames.
    Yjs(YjsSink),
}

/// What a `/yjs` socket's writer sends.
#[derive(Debug)]
pub enum YjsOut {
    Frame(Vec<u8>),
    Close(rookery_common::CloseCode, &'static str),
}

/// The sending end of a `/yjs` socket's queue.
#[derive(Debug, Clone)]
pub struct YjsSink {
    pub frames: mpsc::Sender<YjsOut>,
    /// Set when the queue overflowed: the socket closes as a slow consumer.
    pub slow: Arc<(AtomicBool, Notify)>,
}

impl YjsSink {
    pub fn send(&self, frame: Vec<u8>) {
        self.queue(YjsOut::Frame(frame));
    }

    /// Closes the socket once what is queued is sent.
    pub fn close(&self, code: CloseCode, reason: &'static str) {
        self.queue(YjsOut::Close(code, reason));
    }

    fn queue(&self, out: YjsOut) {
        if self.frames.try_send(out).is_err() && !self.slow.0.swap(true, Ordering::SeqCst) {
            self.slow.1.notify_one();
        }
    }
}

/// The open notes.
#[derive(Debug)]
pub struct Notes {
    store: Store,
    limits: NoteLimits,
    open: Mutex<HashMap<String, Arc<NoteHandle>>>,
    /// Peer ids start at 1; 0 is nobody (see [`Session`]'s placeholder).
    ///
    /// [`Session`]: crate::ws::session::Session
    next_peer: AtomicU64,
    announcer: Announcer,
    /// Cluster mode: the other nodes.
    relay: Option<Arc<dyn NoteRelay>>,
}

/// One open note; loaded once, shared by its peers.
#[derive(Debug)]
pub struct NoteHandle {
    pub id: String,
    loaded: OnceCell<Mutex<Loaded>>,
    /// Cluster mode: other nodes' changes that came while the note was
    /// loading (the store may not hold them yet), applied once it is;
    /// `None` from then on.
    pending_remote: Mutex<Option<Vec<NoteChange>>>,
    /// Set once the note is deleted (after the store's tombstone, before
    /// its peers are let go); checked under the document's lock by
    /// everything that would use it.
    deleted: AtomicBool,
    /// Woken whenever an edit's store write ends (see
    /// [`Loaded::unsettled`]).
    settled: Notify,
    /// Snapshot writes, one at a time: each takes the document as it is
    /// when its turn comes, so a later one never covers less.
    snapshot_writes: tokio::sync::Mutex<()>,
    /// Title writes, one at a time: each writes the newest title when its
    /// turn comes, so the last one written is the newest.
    title_writes: tokio::sync::Mutex<()>,
}

#[derive(Debug)]
struct Loaded {
    document: NoteDocument,
    peers: HashMap<PeerId, PeerSink>,
    title: String,
    /// When an edit was last stored (milliseconds since the epoch; 0 before
    /// the first since loading).
    updated_at: u64,
    /// Whether the store's title may differ from `title`: changed since it
    /// was last written, or its write failed (the next edit writes it).
    title_unstored: bool,
    /// Edits applied in memory whose store write has not ended, by
    /// sequence number.
    unsettled: BTreeSet<i64>,
    /// Set when a store write failed (an update not appended, a snapshot
    /// not written): the store may lack edits the document has, up to this
    /// sequence number. Cleared by a snapshot covering it; until then no
    /// update is acknowledged without one.
    needs_snapshot: Option<i64>,
}

impl Loaded {
    fn new(document: NoteDocument, updated_at: u64) -> Self {
        Self {
            title: document.title(),
            document,
            peers: HashMap::new(),
            updated_at,
            // Not known to match: a crash may have come between an edit's
            // append and its title's write. The first edit writes it.
            title_unstored: true,
            unsettled: BTreeSet::new(),
            needs_snapshot: None,
        }
    }

    /// Bookkeeping after an edit was applied: the title, the edit's store
    /// write to come.
    fn after_edit(&mut self, seq: i64) -> Applied {
        let title = self.document.title();
        let title_changed = title != self.title;
        if title_changed {
            self.title.clone_from(&title);
            self.title_unstored = true;
        }
        self.unsettled.insert(seq);
        Applied {
            seq,
            title,
            title_changed,
        }
    }

    /// Records that the store may lack the edits up to `seq`.
    fn store_lacks(&mut self, seq: i64) {
        self.needs_snapshot = Some(self.needs_snapshot.map_or(seq, |known| known.max(seq)));
    }
}

/// An edit applied in memory and relayed, still to be stored.
struct Applied {
    seq: i64,
    title: String,
    title_changed: bool,
}

/// An edit whose store write is under way. However the write ends
/// (stored, failed, or abandoned because the task was dropped), the edit
/// is settled: a write not known to be stored marks the note
/// `needs_snapshot`, and whoever waits for it is woken.
struct Settling<'a> {
    handle: &'a NoteHandle,
    seq: i64,
    stored: bool,
}

impl Settling<'_> {
    fn settle(mut self, stored: bool) {
        self.stored = stored;
    }
}

impl Drop for Settling<'_> {
    fn drop(&mut self) {
        {
            let mut loaded = self.handle.lock();
            loaded.unsettled.remove(&self.seq);
            // A snapshot written meanwhile may cover it already.
            if !self.stored && self.seq > loaded.document.snapshot_seq() {
                loaded.store_lacks(self.seq);
            }
        }
        self.handle.settled.notify_waiters();
    }
}

/// What an attempt to unload a note came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unloading {
    Unloaded,
    /// In use (or deleted, or unloaded already): whoever stops using it
    /// schedules the next attempt.
    Kept,
    /// Its snapshot could not be written: it stays loaded, and is tried
    /// again later.
    Retry,
}

/// How an edit is announced to the notes list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Announce {
    /// At once if it changed the title, else throttled.
    AsEdited,
    /// At once (a rename, even to the same title).
    AtOnce,
}

/// What a joining `/ws` peer needs back.
#[derive(Debug)]
pub struct Joined {
    pub peer: PeerId,
    pub update: Vec<u8>,
    pub state_vector: Vec<u8>,
    pub awareness: Option<Vec<u8>>,
}

pub use rookery_common::notes::is_valid_note_id as is_valid_id;

/// A fresh note id: 12 random letters and digits (71 bits).
pub fn new_id() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

impl Notes {
    pub fn new(store: Store, limits: NoteLimits) -> Self {
        let announcer = Announcer::new(Box::new(|_| {}), limits.announce_edits_every);
        Self {
            store,
            limits,
            open: Mutex::new(HashMap::new()),
            next_peer: AtomicU64::new(1),
            announcer,
            relay: None,
        }
    }

    /// Cluster mode: the link to the other nodes.
    #[must_use]
    pub fn with_relay(mut self, relay: Arc<dyn NoteRelay>) -> Self {
        self.relay = Some(relay);
        self
    }

    /// Where the notes list's events go (nowhere by default).
    #[must_use]
    pub fn with_list_listener(mut self, listener: ListListener) -> Self {
        self.announcer = Announcer::new(listener, self.limits.announce_edits_every);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn limits(&self) -> &NoteLimits {
        &self.limits
    }

    fn open_map(&self) -> MutexGuard<'_, HashMap<String, Arc<NoteHandle>>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many notes are in memory.
    pub fn n_open(&self) -> usize {
        self.open_map().len()
    }

    /// The note, loaded (from the store on first use, creating it if it
    /// does not exist; a deleted note is refused).
    pub async fn open(&self, id: &str) -> Result<Arc<NoteHandle>, NotesError> {
        if !is_valid_id(id) {
            return Err(NotesError::InvalidId);
        }
        let handle = self
            .open_map()
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(NoteHandle {
                    id: id.to_owned(),
                    loaded: OnceCell::new(),
                    pending_remote: Mutex::new(Some(Vec::new())),
                    deleted: AtomicBool::new(false),
                    settled: Notify::new(),
                    snapshot_writes: tokio::sync::Mutex::new(()),
                    title_writes: tokio::sync::Mutex::new(()),
                })
            })
            .clone();
        let mut created = false;
        let loaded = handle
            .loaded
            .get_or_try_init(|| async {
                let followed = match &self.relay {
                    Some(relay) if !relay.follow(id).await => return Err(NotesError::Unavailable),
                    Some(_) => true,
                    None => false,
                };
                let restored = self.restore(id, &mut created).await;
                if restored.is_err()
                    && followed
                    && let Some(relay) = &self.relay
                {
                    relay.unfollow(id);
                }
                restored
            })
            .await;
        if let Err(error) = &loaded {
            // A tombstone is for good: keep no empty handle for it. (Any
            // other failure is retried by the next open.)
            if matches!(error, NotesError::Deleted) {
                let mut open = self.open_map();
                if open
                    .get(id)
                    .is_some_and(|current| Arc::ptr_eq(current, &handle))
                {
                    open.remove(id);
                }
            }
        }
        loaded?;
        // Other nodes' changes heard while loading: the store may not have
        // held them yet.
        let heard = handle
            .pending_remote
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        for change in heard.into_iter().flatten() {
            self.apply_remote_change(&handle, change);
        }
        if created {
            // Opened by an id nobody used before (a `/yjs` client, say).
            self.announcer
                .changed(id, Instant::now(), || handle.summary());
        }
        Ok(handle)
    }

    /// Loads a note from the store (creating it if it does not exist).
    async fn restore(&self, id: &str, created: &mut bool) -> Result<Mutex<Loaded>, NotesError> {
        let now_ms = unix_time_ms();
        *created = self.store.ensure_note(id, now_ms as i64).await?;
        let stored = self.store.load(id).await?;
        let mut document = NoteDocument::restore(
            stored.snapshot.as_deref(),
            stored.snapshot_seq,
            &stored.updates,
        )?;
        if self.relay.is_some() {
            // 2^20 edits per load before a base could be reached by
            // another's: far more than a load ever sees.
            document.rebase((i64::from(rand::random::<u32>()) + 1) << 20);
        }
        Ok(Mutex::new(Loaded::new(
            document,
            if *created { now_ms } else { 0 },
        )))
    }

    /// The note if it exists: unlike [`Self::open`], never creates one.
    pub async fn open_existing(&self, id: &str) -> Result<Arc<NoteHandle>, NotesError> {
        if !is_valid_id(id) {
            return Err(NotesError::UnknownNote);
        }
        match self.store.note_status(id).await? {
            NoteStatus::Missing => Err(NotesError::UnknownNote),
            NoteStatus::Deleted => Err(NotesError::Deleted),
            // Deleted meanwhile: `open` refuses it.
            NoteStatus::Live => self.open(id).await,
        }
    }

    /// Whether the note exists, was deleted, or never was.
    pub async fn status(&self, id: &str) -> Result<NoteStatus, NotesError> {
        Ok(self.store.note_status(id).await?)
    }

    /// Every note not deleted, most recently edited first.
    pub async fn list(&self) -> Result<Vec<NoteSummary>, NotesError> {
        Ok(self.store.list().await?)
    }

    /// Creates a note with the id `id` (see [`new_id`]) and, unless empty,
    /// its title; announces it to the list.
    pub async fn create(
        self: &Arc<Self>,
        id: &str,
        title: &str,
    ) -> Result<NoteSummary, NotesError> {
        if !is_valid_id(id) {
            return Err(NotesError::InvalidId);
        }
        if !is_valid_title(title) {
            return Err(NotesError::InvalidTitle);
        }
        let now_ms = unix_time_ms();
        if !self.store.create_note(id, now_ms as i64).await? {
            return Err(NotesError::IdTaken);
        }
        if !title.is_empty() {
            // The title lives in the document, where editors see it; the
            // rename announces the new note.
            let handle = self.open(id).await?;
            return self.retitle(handle, title).await;
        }
        let note = NoteSummary {
            id: id.to_owned(),
            title: String::new(),
            updated_at: now_ms,
        };
        self.announcer
            .changed(id, Instant::now(), || Some(note.clone()));
        Ok(note)
    }

    /// Replaces an existing note's title (never creating the note).
    pub async fn rename(
        self: &Arc<Self>,
        id: &str,
        title: &str,
    ) -> Result<NoteSummary, NotesError> {
        if !is_valid_title(title) {
            return Err(NotesError::InvalidTitle);
        }
        let handle = self.open_existing(id).await?;
        self.retitle(handle, title).await
    }

    /// The server's own edit of the `title` text, replacing it whole:
    /// relayed, stored and announced like a peer's update.
    async fn retitle(
        self: &Arc<Self>,
        mut handle: Arc<NoteHandle>,
        title: &str,
    ) -> Result<NoteSummary, NotesError> {
        let (update, edit) = loop {
            // On the registered handle only: an edit of one unloaded since
            // it was opened would reach no editor.
            if let Some(mut loaded) = self.lock_registered(&handle)? {
                let (seq, update) = loaded.document.replace_title(
                    title,
                    self.limits.max_update_bytes,
                    self.limits.max_document_bytes,
                )?;
                relay(&loaded.peers, None, &update, Relay::Update);
                self.tell_nodes(&handle.id, NoteChange::Update(update.clone()));
                break (update, loaded.after_edit(seq));
            }
            // Deleted meanwhile: `open` refuses it.
            handle = self.open(&handle.id).await?;
        };
        let stored = self
            .store_edit(&handle, edit, &update, Announce::AtOnce)
            .await;
        // Opened for the rename alone, the note must not stay loaded.
        self.unload_when_idle(&handle);
        stored
    }

    /// Deletes the note for good: the store keeps a tombstone; the open
    /// note's `/ws` peers get `doc_deleted`, its `/yjs` peers are closed,
    /// and the list hears of it.
    pub async fn delete(&self, id: &str) -> Result<(), NotesError> {
        if !is_valid_id(id) {
            return Err(NotesError::UnknownNote);
        }
        if !self.store.delete_note(id, unix_time_ms() as i64).await? {
            return Err(match self.store.note_status(id).await? {
                NoteStatus::Deleted => NotesError::Deleted,
                NoteStatus::Missing | NoteStatus::Live => NotesError::UnknownNote,
            });
        }
        // From here no `open` loads the note again; a handle already out is
        // marked, and refused by everything that would use it.
        let handle = self.open_map().remove(id);
        let peers = match &handle {
            Some(handle) => handle.mark_deleted(),
            None => HashMap::new(),
        };
        notify_deleted(peers);
        self.announcer.deleted(id);
        self.tell_nodes(id, NoteChange::Deleted);
        if handle.is_some_and(|handle| handle.loaded.get().is_some())
            && let Some(relay) = &self.relay
        {
            relay.unfollow(id);
        }
        Ok(())
    }

    fn tell_nodes(&self, id: &str, change: NoteChange) {
        if let Some(relay) = &self.relay {
            relay.send(id, change);
        }
    }

    /// Notes loaded here (cluster mode: the ones followed).
    pub fn loaded_ids(&self) -> Vec<String> {
        self.open_map()
            .iter()
            .filter(|(_, handle)| handle.loaded.get().is_some())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Another node's change to a note loaded here: applied and relayed to
    /// this node's editors (not stored: its node stores it).
    pub fn remote_change(&self, id: &str, change: NoteChange) {
        let Some(handle) = self.open_map().get(id).cloned() else {
            return;
        };
        {
            let mut pending = handle
                .pending_remote
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(heard) = pending.as_mut() {
                // Still loading: kept for when it is (bounded: a load that
                // keeps failing must not hoard them).
                if heard.len() < MAX_PENDING_REMOTE {
                    heard.push(change);
                }
                return;
            }
        }
        self.apply_remote_change(&handle, change);
    }

    fn apply_remote_change(&self, handle: &Arc<NoteHandle>, change: NoteChange) {
        let id = handle.id.as_str();
        match change {
            NoteChange::Update(data) => {
                let Ok(mut loaded) = handle.lock_live() else {
                    return;
                };
                if let Err(error) = loaded.document.apply_remote(&data) {
                    tracing::warn!(note = %id, %error, "another node's update cannot be applied");
                    if error == DocumentError::Broken {
                        let peers = std::mem::take(&mut loaded.peers);
                        drop(loaded);
                        self.reload(handle, peers);
                    }
                    return;
                }
                relay(&loaded.peers, None, &data, Relay::Update);
                let title = loaded.document.title();
                // The node that made the edit stores the title.
                loaded.title = title;
            }
            NoteChange::Awareness(data) => {
                let Ok(mut loaded) = handle.lock_live() else {
                    return;
                };
                match loaded.document.apply_awareness(OTHER_NODES, &data) {
                    Ok(encoded) => relay(&loaded.peers, None, &encoded, Relay::Awareness),
                    Err(error) => {
                        tracing::warn!(note = %id, %error, "another node's awareness cannot be applied");
                    }
                }
            }
            NoteChange::Deleted => {
                let removed = {
                    let mut open = self.open_map();
                    match open.get(id) {
                        Some(current) if Arc::ptr_eq(current, handle) => open.remove(id),
                        _ => None,
                    }
                };
                if let Some(removed) = removed {
                    notify_deleted(removed.mark_deleted());
                    // Followed once, when it was loaded.
                    if let Some(relay) = &self.relay {
                        relay.unfollow(id);
                    }
                }
            }
        }
    }

    /// Lets go of a note whose document broke (see
    /// [`NoteDocument::integrate`]): the next to open it loads it from the
    /// store, and its peers, closed with 4203, reconnect and sync again,
    /// bringing back whatever of theirs the store lacks.
    fn reload(&self, handle: &Arc<NoteHandle>, peers: HashMap<PeerId, PeerSink>) {
        let removed = {
            let mut open = self.open_map();
            match open.get(&handle.id) {
                Some(current) if Arc::ptr_eq(current, handle) => open.remove(&handle.id),
                _ => None,
            }
        };
        if removed.is_some()
            && let Some(relay) = &self.relay
        {
            // Followed once, when it was loaded.
            relay.unfollow(&handle.id);
        }
        let reason = "the note broke on an update and was reloaded; sync again";
        for sink in peers.into_values() {
            match sink {
                PeerSink::Ws { outbox, .. } => {
                    outbox.close(CloseCode::DocumentReset, reason, true);
                }
                PeerSink::Yjs(sink) => sink.close(CloseCode::DocumentReset, reason),
            }
        }
    }

    /// Merges what the store holds into a note loaded here, relaying what
    /// was new to its editors: after this node may have missed other
    /// nodes' messages (its broker connection dropped).
    pub async fn resync_from_store(&self, id: &str) {
        let Some(handle) = self.open_map().get(id).cloned() else {
            return;
        };
        let stored = match self.store.load(id).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(note = %id, %error, "cannot reload the note after an outage");
                return;
            }
        };
        let parts = stored
            .snapshot
            .iter()
            .map(Vec::as_slice)
            .chain(stored.updates.iter().map(|(_, data)| data.as_slice()));
        let Ok(state) = yrs::merge_updates_v1(parts) else {
            tracing::warn!(note = %id, "the stored note cannot be merged");
            return;
        };
        if state.is_empty() {
            return;
        }
        self.remote_change(&handle.id, NoteChange::Update(state));
    }

    fn next_peer_id(&self) -> PeerId {
        self.next_peer.fetch_add(1, Ordering::Relaxed)
    }

    /// The note's lock if `handle` is still the one registered for it
    /// (`None`: unloaded or deleted since it was opened). Checked under the
    /// registry's lock, which unloading holds while it checks for peers and
    /// removes the handle: a peer added under this lock is seen there.
    fn lock_registered<'h>(
        &self,
        handle: &'h NoteHandle,
    ) -> Result<Option<MutexGuard<'h, Loaded>>, NotesError> {
        let mut open = self.open_map();
        let registered = open
            .get(&handle.id)
            .is_some_and(|current| std::ptr::eq(Arc::as_ptr(current), handle));
        if !registered {
            return Ok(None);
        }
        let loaded = handle.lock_live()?;
        if loaded.document.is_broken() {
            // Given up, and about to be let go (`reload`): whoever comes
            // now opens the note afresh.
            drop(loaded);
            open.remove(&handle.id);
            return Ok(None);
        }
        drop(open);
        Ok(Some(loaded))
    }

    /// Adds a `/ws` peer and answers its sync step 1. If the note was
    /// unloaded since `handle` was opened, it is opened again and `handle`
    /// replaced: a peer only joins the registered handle.
    pub async fn join_ws(
        &self,
        handle: &mut Arc<NoteHandle>,
        sink: PeerSink,
        state_vector: &[u8],
    ) -> Result<Joined, NotesError> {
        loop {
            if let Some(mut loaded) = self.lock_registered(handle)? {
                let (update, server_vector) = loaded.document.sync_step1(state_vector)?;
                let peer = self.next_peer_id();
                loaded.peers.insert(peer, sink);
                return Ok(Joined {
                    peer,
                    update,
                    state_vector: server_vector,
                    awareness: loaded.document.awareness_state(),
                });
            }
            *handle = self.open(&handle.id).await?;
        }
    }

    /// A joined `/ws` peer's repeated sync step 1: what it lacks, and our
    /// state vector.
    pub fn join_ws_resync(
        &self,
        handle: &NoteHandle,
        state_vector: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), NotesError> {
        Ok(handle.lock_live()?.document.sync_step1(state_vector)?)
    }

    /// Adds a `/yjs` peer; returns its id and the server's opening frames
    /// (sync step 1 and the current awareness). Like [`Self::join_ws`], on
    /// the registered handle only (`handle` is replaced if need be).
    pub async fn join_yjs(
        &self,
        handle: &mut Arc<NoteHandle>,
        sink: YjsSink,
    ) -> Result<(PeerId, Vec<Vec<u8>>), NotesError> {
        loop {
            if let Some(mut loaded) = self.lock_registered(handle)? {
                let peer = self.next_peer_id();
                loaded.peers.insert(peer, PeerSink::Yjs(sink));
                let step1 = SyncWire::Sync(SyncMessage::SyncStep1(yrs::ReadTxn::state_vector(
                    &yrs::Transact::transact(loaded.document.doc()),
                )))
                .encode_v1();
                let mut frames = vec![step1];
                if let Some(awareness) = loaded.document.awareness_state() {
                    frames.push(y_awareness_frame(&awareness));
                }
                return Ok((peer, frames));
            }
            *handle = self.open(&handle.id).await?;
        }
    }

    /// A `/yjs` peer's sync step 1: the step 2 to send back.
    pub fn yjs_step2(
        &self,
        handle: &NoteHandle,
        state_vector: &[u8],
    ) -> Result<Vec<u8>, NotesError> {
        let loaded = handle.lock_live()?;
        let (update, _) = loaded.document.sync_step1(state_vector)?;
        Ok(SyncWire::Sync(SyncMessage::SyncStep2(update)).encode_v1())
    }

    /// Applies a peer's update, relays it to the others, and stores it.
    /// Returns once it is durable, with everything applied before it: only
    /// then may it be acknowledged.
    pub async fn update(
        self: &Arc<Self>,
        handle: &Arc<NoteHandle>,
        from: PeerId,
        data: &[u8],
    ) -> Result<(), NotesError> {
        let edit = {
            let mut loaded = handle.lock_live()?;
            let applied = loaded.document.apply(
                data,
                self.limits.max_update_bytes,
                self.limits.max_document_bytes,
            );
            if applied == Err(DocumentError::Broken) {
                let peers = std::mem::take(&mut loaded.peers);
                drop(loaded);
                self.reload(handle, peers);
                return Err(DocumentError::Broken.into());
            }
            let seq = applied?;
            relay(&loaded.peers, Some(from), data, Relay::Update);
            self.tell_nodes(&handle.id, NoteChange::Update(data.to_vec()));
            loaded.after_edit(seq)
        };
        self.store_edit(handle, edit, data, Announce::AsEdited)
            .await
            .map(drop)
    }

    /// Stores an applied edit (the update, the title if the store's may be
    /// stale, a snapshot of everything if the store may lack an earlier
    /// edit, another if one is due) and announces it to the list. Returns
    /// the note as this edit left it, once the store holds the edit and
    /// every one applied before it.
    async fn store_edit(
        &self,
        handle: &Arc<NoteHandle>,
        edit: Applied,
        update: &[u8],
        announce: Announce,
    ) -> Result<NoteSummary, NotesError> {
        // Created before the first await: settled even if this is dropped.
        let settling = Settling {
            handle,
            seq: edit.seq,
            stored: false,
        };
        let now_ms = unix_time_ms();
        let appended = self
            .store
            .append_update(&handle.id, edit.seq, update, now_ms as i64)
            .await;
        settling.settle(appended.is_ok());
        appended?;
        self.store_title(handle).await?;
        // What was applied before this edit has been stored or has failed;
        // if the store may lack any of it, the whole document goes first.
        self.settled_before(handle, edit.seq).await;
        self.snapshot_if_needed(handle).await?;
        {
            let mut loaded = handle.lock();
            loaded.updated_at = loaded.updated_at.max(now_ms);
        }
        let now = Instant::now();
        if edit.title_changed || announce == Announce::AtOnce {
            self.announcer.changed(&handle.id, now, || handle.summary());
        } else {
            let current: Current = {
                let handle = handle.clone();
                Arc::new(move || handle.summary())
            };
            self.announcer.edited(&handle.id, now, current);
        }
        if handle.lock().document.updates_since_snapshot() >= self.limits.compact_every {
            // Housekeeping: skipped while another snapshot is being written.
            if let Ok(turn) = handle.snapshot_writes.try_lock() {
                self.write_snapshot(handle, Some(turn)).await?;
            }
        }
        Ok(NoteSummary {
            id: handle.id.clone(),
            title: edit.title,
            updated_at: now_ms,
        })
    }

    /// Waits until every edit applied before `seq` has been stored or has
    /// failed.
    async fn settled_before(&self, handle: &NoteHandle, seq: i64) {
        loop {
            let settled = handle.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if handle.lock().unsettled.range(..seq).next().is_none() {
                return;
            }
            settled.await;
        }
    }

    /// Writes the note's newest title if the store's may differ. A failed
    /// write leaves it marked, for the next edit to write again.
    async fn store_title(&self, handle: &NoteHandle) -> Result<(), StoreError> {
        if !handle.lock().title_unstored {
            return Ok(());
        }
        let _turn = handle.title_writes.lock().await;
        let title = {
            let loaded = handle.lock();
            if !loaded.title_unstored {
                return Ok(());
            }
            loaded.title.clone()
        };
        self.store.set_title(&handle.id, &title).await?;
        let mut loaded = handle.lock();
        // Changed again meanwhile: its own edit writes it next.
        if loaded.title == title {
            loaded.title_unstored = false;
        }
        Ok(())
    }

    /// Stores a snapshot of the whole document if the store may lack an
    /// edit it holds (unless one written while this waited its turn
    /// covered it).
    async fn snapshot_if_needed(&self, handle: &NoteHandle) -> Result<(), StoreError> {
        if handle.lock().needs_snapshot.is_none() {
            return Ok(());
        }
        let turn = handle.snapshot_writes.lock().await;
        if handle.lock().needs_snapshot.is_none() {
            return Ok(());
        }
        self.write_snapshot(handle, Some(turn)).await
    }

    /// Stores a snapshot of the whole document as it is when this write's
    /// turn comes (`turn`: taken already), folding in every update up to
    /// the newest. Success clears `needs_snapshot` as far as the snapshot
    /// covers; failure sets it.
    async fn write_snapshot(
        &self,
        handle: &NoteHandle,
        turn: Option<tokio::sync::MutexGuard<'_, ()>>,
    ) -> Result<(), StoreError> {
        let _turn = match turn {
            Some(turn) => turn,
            None => handle.snapshot_writes.lock().await,
        };
        let (data, upto) = {
            let loaded = handle.lock();
            if loaded.document.is_broken() {
                // What the store may lack of it went with the given-up
                // document: nothing after it may be acknowledged as
                // covering it (its editors send it again after 4203).
                return Err(StoreError::Corrupt(
                    "the note was given up; its editors sync again".into(),
                ));
            }
            loaded.document.snapshot()
        };
        let written = self.store.compact(&handle.id, &data, upto).await;
        let mut loaded = handle.lock();
        match &written {
            Ok(bytes) => {
                loaded.document.compacted(*bytes, upto);
                if loaded.needs_snapshot.is_some_and(|seq| seq <= upto) {
                    loaded.needs_snapshot = None;
                }
            }
            Err(StoreError::NoteDeleted) => {}
            Err(_) => loaded.store_lacks(upto),
        }
        written.map(drop)
    }

    /// Applies and relays a peer's awareness update.
    pub fn awareness(
        &self,
        handle: &NoteHandle,
        from: PeerId,
        data: &[u8],
    ) -> Result<(), NotesError> {
        let mut loaded = handle.lock_live()?;
        let encoded = loaded.document.apply_awareness(from, data)?;
        relay(&loaded.peers, Some(from), &encoded, Relay::Awareness);
        self.tell_nodes(&handle.id, NoteChange::Awareness(encoded));
        Ok(())
    }

    /// Removes a peer; tells the others its cursors are gone; unloads the
    /// note after the grace period if nobody else joins.
    pub fn leave(self: &Arc<Self>, handle: &Arc<NoteHandle>, peer: PeerId) {
        let now_empty = {
            let mut loaded = handle.lock();
            if loaded.peers.remove(&peer).is_none() {
                return;
            }
            if let Some(removal) = loaded.document.remove_peer(peer) {
                relay(&loaded.peers, Some(peer), &removal, Relay::Awareness);
                self.tell_nodes(&handle.id, NoteChange::Awareness(removal));
            }
            loaded.peers.is_empty()
        };
        if now_empty {
            self.unload_when_idle(handle);
        }
    }

    /// Unloads the note after the grace period if nobody has it open then
    /// (trying again while its snapshot cannot be written).
    fn unload_when_idle(self: &Arc<Self>, handle: &Arc<NoteHandle>) {
        if !handle.lock().peers.is_empty() {
            return;
        }
        let notes = self.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(notes.limits.unload_after).await;
                if notes.unload_if_idle(&handle).await != Unloading::Retry {
                    return;
                }
            }
        });
    }

    /// Unloads a note nobody has open, writing a snapshot first so that
    /// the next load is one read. Someone joining (or writing) meanwhile
    /// keeps it loaded; their leaving schedules the next attempt. A note
    /// whose store may lack an edit (`needs_snapshot`) is unloaded only
    /// after its snapshot is written.
    async fn unload_if_idle(&self, handle: &Arc<NoteHandle>) -> Unloading {
        let is_idle = |open: &HashMap<String, Arc<NoteHandle>>, loaded: &Loaded| {
            open.get(&handle.id)
                .is_some_and(|current| Arc::ptr_eq(current, handle))
                && loaded.peers.is_empty()
                && loaded.unsettled.is_empty()
        };
        let snapshot_due = {
            let open = self.open_map();
            let loaded = handle.lock();
            if !is_idle(&open, &loaded) {
                return Unloading::Kept;
            }
            loaded.document.updates_since_snapshot() > 0 || loaded.needs_snapshot.is_some()
        };
        if snapshot_due && let Err(error) = self.write_snapshot(handle, None).await {
            tracing::warn!(note = %handle.id, %error, "snapshot before unloading failed; the note stays loaded");
            return Unloading::Retry;
        }
        let mut open = self.open_map();
        let loaded = handle.lock();
        if is_idle(&open, &loaded)
            && loaded.document.updates_since_snapshot() == 0
            && loaded.needs_snapshot.is_none()
        {
            open.remove(&handle.id);
            if let Some(relay) = &self.relay {
                relay.unfollow(&handle.id);
            }
            return Unloading::Unloaded;
        }
        Unloading::Kept
    }

    pub fn awareness_state(&self, handle: &NoteHandle) -> Option<Vec<u8>> {
        handle.lock().document.awareness_state()
    }

    /// The note's text, for tests and the list.
    pub fn body(&self, handle: &NoteHandle) -> String {
        handle.lock().document.body()
    }
}

impl NoteHandle {
    fn lock(&self) -> MutexGuard<'_, Loaded> {
        self.loaded
            .get()
            .expect("a handle is only given out loaded")
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The lock, unless the note was deleted.
    fn lock_live(&self) -> Result<MutexGuard<'_, Loaded>, NotesError> {
        let loaded = self.lock();
        if self.is_deleted() {
            return Err(NotesError::Deleted);
        }
        Ok(loaded)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// The note as the list shows it, or `None` once it is deleted.
    fn summary(&self) -> Option<NoteSummary> {
        let loaded = self.lock_live().ok()?;
        Some(NoteSummary {
            id: self.id.clone(),
            title: loaded.title.clone(),
            updated_at: loaded.updated_at,
        })
    }

    /// Marks the note deleted, frees its document and returns its peers,
    /// now let go. The flag is set before the lock is taken: whoever locks
    /// after sees it; whoever locked before is among the peers returned.
    fn mark_deleted(&self) -> HashMap<PeerId, PeerSink> {
        self.deleted.store(true, Ordering::SeqCst);
        let Some(loaded) = self.loaded.get() else {
            return HashMap::new();
        };
        let mut loaded = loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.document = NoteDocument::empty();
        loaded.title.clear();
        std::mem::take(&mut loaded.peers)
    }
}

#[derive(Clone, Copy)]
enum Relay {
    Update,
    Awareness,
}

/// Sends `data` to every peer but `from` (`None`: the server's own edit,
/// for everyone), encoded once per protocol.
fn relay(peers: &HashMap<PeerId, PeerSink>, from: Option<PeerId>, data: &[u8], kind: Relay) {
    // Every `/ws` peer of a note is in its one channel: a frame per wire.
    let mut ws: Option<(&ChannelName, [Option<Frame>; Wire::COUNT])> = None;
    let mut binary: Option<Vec<u8>> = None;
    for (peer, sink) in peers {
        if Some(*peer) == from {
            continue;
        }
        match sink {
            PeerSink::Ws { outbox, channel } => {
                if ws
                    .as_ref()
                    .is_none_or(|(encoded_for, _)| *encoded_for != channel)
                {
                    ws = Some((channel, Default::default()));
                }
                let (_, frames) = ws.as_mut().expect("set above");
                let wire = outbox.wire();
                let frame = frames[wire.index()]
                    .get_or_insert_with(|| {
                        let update = Bytes(data.to_vec());
                        let message = match kind {
                            Relay::Update => ServerMessage::DocUpdated {
                                channel: channel.clone(),
                                update,
                            },
                            Relay::Awareness => ServerMessage::DocAwareness {
                                channel: channel.clone(),
                                update,
                            },
                        };
                        Frame::encode(&message, wire)
                    })
                    .clone();
                push_or_close(outbox, frame);
            }
            PeerSink::Yjs(sink) => {
                let frame = binary
                    .get_or_insert_with(|| match kind {
                        Relay::Update => {
                            SyncWire::Sync(SyncMessage::Update(data.to_vec())).encode_v1()
                        }
                        Relay::Awareness => y_awareness_frame(data),
                    })
                    .clone();
                sink.send(frame);
            }
        }
    }
}

/// Tells a deleted note's peers: `/ws` peers get `doc_deleted`, `/yjs`
/// peers are closed.
fn notify_deleted(peers: HashMap<PeerId, PeerSink>) {
    for sink in peers.into_values() {
        match sink {
            PeerSink::Ws { outbox, channel } => {
                let frame = Frame::encode(&ServerMessage::DocDeleted { channel }, outbox.wire());
                push_or_close(&outbox, frame);
            }
            PeerSink::Yjs(sink) => sink.close(CloseCode::Normal, "the note was deleted"),
        }
    }
}

/// Queues a push; a full queue means the client is not reading: it is
/// closed as a slow consumer rather than waited for.
fn push_or_close(outbox: &Outbox, frame: Frame) {
    if outbox.push(frame) == Err(PushError::Full) {
        outbox.close(
            CloseCode::SlowConsumer,
            "outbound queue full: the client reads too slowly",
            false,
        );
    }
}

/// A y-websocket awareness frame around an encoded awareness update.
pub fn y_awareness_frame(update: &[u8]) -> Vec<u8> {
    // Message type 1 (awareness), then the update as a length-prefixed buffer.
    use yrs::encoding::write::Write;
    use yrs::updates::encoder::{Encoder, EncoderV1};
    let mut encoder = EncoderV1::new();
    encoder.write_var(1u8);
    encoder.write_buf(update);
    encoder.to_vec()
}

#[cfg(test)]
mod tests {
    //! The registry's rules in plain code over a real SQLite store. Store
    //! failures are real too: triggers in the database make SQLite refuse
    //! a write, as a full disk or a broken file would.

    use std::path::PathBuf;

    use sqlx::AssertSqlSafe;
    use yrs::{Text, Transact};

    use super::*;

    /// A note store in a directory of its own, removed afterwards.
    struct TestStore {
        dir: PathBuf,
        store: Store,
    }

    impl TestStore {
        async fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "rookery-notes-{name}-{}-{:x}",
                std::process::id(),
                rand::random::<u64>()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let store = Store::open_sqlite(&dir).await.unwrap();
            Self { dir, store }
        }

        fn pool(&self) -> &sqlx::SqlitePool {
            match &self.store {
                Store::Sqlite(pool) => pool,
                Store::Postgres(_) => unreachable!(),
            }
        }

        /// From now on SQLite refuses every row written to `table`.
        async fn refuse(&self, table: &str) {
            let sql = format!(
                "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            );
            sqlx::query(AssertSqlSafe(sql))
                .execute(self.pool())
                .await
                .unwrap();
        }

        async fn allow(&self, table: &str) {
            let sql = format!("DROP TRIGGER refuse_{table}");
            sqlx::query(AssertSqlSafe(sql))
                .execute(self.pool())
                .await
                .unwrap();
        }

        /// The body as the store holds it (what a restart would load).
        async fn stored_body(&self, id: &str) -> String {
            let stored = self.store.load(id).await.unwrap();
            NoteDocument::restore(
                stored.snapshot.as_deref(),
                stored.snapshot_seq,
                &stored.updates,
            )
            .unwrap()
            .body()
        }
    }

    impl Drop for TestStore {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn notes(store: &TestStore) -> Arc<Notes> {
        Arc::new(Notes::new(store.store.clone(), NoteLimits::default()))
    }

    /// A client's copy of a note, typing.
    struct Typist(yrs::Doc);

    impl Typist {
        fn new() -> Self {
            Self(document::new_doc())
        }

        /// Appends `text` to the body; returns the update.
        fn type_text(&self, text: &str) -> Vec<u8> {
            let body = self.0.get_or_insert_text(BODY);
            let mut txn = self.0.transact_mut();
            let end = body.len(&txn);
            body.insert(&mut txn, end, text);
            txn.encode_update_v1()
        }
    }

    fn yjs_sink() -> (YjsSink, mpsc::Receiver<YjsOut>) {
        let (frames, received) = mpsc::channel(64);
        let sink = YjsSink {
            frames,
            slow: Arc::new((AtomicBool::new(false), Notify::new())),
        };
        (sink, received)
    }

    fn is_registered(notes: &Notes, handle: &Arc<NoteHandle>) -> bool {
        notes
            .open_map()
            .get(&handle.id)
            .is_some_and(|current| Arc::ptr_eq(current, handle))
    }

    #[tokio::test]
    async fn a_document_yrs_panics_in_is_reloaded_and_its_peers_sync_again() {
        let store = TestStore::new("broken").await;
        let notes = notes(&store);
        let mut handle = notes.open("n").await.unwrap();
        let typist = Typist::new();
        notes
            .update(&handle, 0, &typist.type_text("kept"))
            .await
            .unwrap();
        let (sink, mut frames) = yjs_sink();
        let (peer, _) = notes.join_yjs(&mut handle, sink).await.unwrap();
        // Stands in for yrs panicking inside a transaction (see
        // `NoteDocument::integrate`): an observer runs in the commit.
        handle
            .lock()
            .document
            .doc()
            .observe_update_v1("panics", |_, _| panic!("a panic inside yrs"))
            .unwrap();
        let broke = notes
            .update(&handle, peer, &typist.type_text(" lost"))
            .await;
        assert!(
            matches!(broke, Err(NotesError::Document(DocumentError::Broken))),
            "{broke:?}"
        );
        // Its peers are told to reconnect and sync again; the handle is let
        // go, and the note comes back from the store with what was saved.
        loop {
            match frames.recv().await.expect("the sink is closed") {
                YjsOut::Close(code, _) => {
                    assert_eq!(code, CloseCode::DocumentReset);
                    break;
                }
                YjsOut::Frame(_) => {}
            }
        }
        assert!(!is_registered(&notes, &handle));
        let reloaded = notes.open("n").await.unwrap();
        assert!(!Arc::ptr_eq(&reloaded, &handle));
        assert_eq!(notes.body(&reloaded), "kept");
    }

    #[tokio::test]
    async fn a_handle_unloaded_since_it_was_opened_takes_no_peer() {
        let store = TestStore::new("stale").await;
        let notes = notes(&store);
        let stale = notes.open("n").await.unwrap();
        // The window: the note is unloaded after a session opened it and
        // before it joins.
        assert_eq!(notes.unload_if_idle(&stale).await, Unloading::Unloaded);
        assert_eq!(notes.n_open(), 0);
        assert!(notes.lock_registered(&stale).unwrap().is_none());

        let mut handle = stale.clone();
        let (sink, mut frames) = yjs_sink();
        notes.join_yjs(&mut handle, sink).await.unwrap();
        assert!(!Arc::ptr_eq(&handle, &stale), "opened again");
        assert!(is_registered(&notes, &handle));
        // A handle with a peer is never unloaded, so the peer hears of the
        // deletion.
        assert_eq!(notes.unload_if_idle(&handle).await, Unloading::Kept);
        notes.delete("n").await.unwrap();
        loop {
            match frames.recv().await.expect("the sink is closed") {
                YjsOut::Close(code, _) => {
                    assert_eq!(code, CloseCode::Normal);
                    break;
                }
                YjsOut::Frame(_) => {}
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn joining_and_unloading_at_once_never_leave_a_peer_on_an_orphan() {
        let store = TestStore::new("race").await;
        let notes = notes(&store);
        for _ in 0..200 {
            let handle = notes.open("n").await.unwrap();
            let unloading = tokio::spawn({
                let (notes, handle) = (notes.clone(), handle.clone());
                async move { notes.unload_if_idle(&handle).await }
            });
            let joining = tokio::spawn({
                let notes = notes.clone();
                async move {
                    let mut handle = handle;
                    let (sink, frames) = yjs_sink();
                    let (peer, _) = notes.join_yjs(&mut handle, sink).await.unwrap();
                    (handle, peer, frames)
                }
            });
            let (handle, peer, _frames) = joining.await.unwrap();
            unloading.await.unwrap();
            assert!(
                is_registered(&notes, &handle),
                "joined an unregistered note"
            );
            notes.leave(&handle, peer);
            assert_eq!(notes.unload_if_idle(&handle).await, Unloading::Unloaded);
        }
    }

    #[tokio::test]
    async fn a_note_the_store_lacks_an_edit_of_is_unloaded_only_after_its_snapshot() {
        let store = TestStore::new("unload").await;
        let notes = notes(&store);
        let handle = notes.open("n").await.unwrap();
        let typist = Typist::new();
        notes
            .update(&handle, 0, &typist.type_text("kept "))
            .await
            .unwrap();
        store.refuse("note_updates").await;
        store.refuse("note_snapshots").await;
        let refused = notes.update(&handle, 0, &typist.type_text("at risk")).await;
        assert!(matches!(refused, Err(NotesError::Store(_))), "{refused:?}");
        assert_eq!(handle.lock().needs_snapshot, Some(2));

        assert_eq!(notes.unload_if_idle(&handle).await, Unloading::Retry);
        assert!(
            is_registered(&notes, &handle),
            "kept: the store lacks an edit"
        );
        assert_eq!(store.stored_body("n").await, "kept ");

        store.allow("note_snapshots").await;
        assert_eq!(notes.unload_if_idle(&handle).await, Unloading::Unloaded);
        assert_eq!(notes.n_open(), 0);
        assert_eq!(store.stored_body("n").await, "kept at risk");
    }

    #[tokio::test]
    async fn an_edit_whose_write_was_abandoned_is_stored_before_the_next_ack() {
        let store = TestStore::new("abandoned").await;
        let notes = notes(&store);
        let handle = notes.open("n").await.unwrap();
        let typist = Typist::new();
        notes
            .update(&handle, 0, &typist.type_text("kept "))
            .await
            .unwrap();

        // Another connection holds the database's write lock: the next
        // append waits for it, and its task is dropped while it waits (as
        // a session's is when its socket goes).
        let mut blocker = store.pool().acquire().await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let abandoned = tokio::spawn({
            let (notes, handle) = (notes.clone(), handle.clone());
            let update = typist.type_text("abandoned ");
            async move { notes.update(&handle, 0, &update).await }
        });
        tokio::time::timeout(Duration::from_secs(10), async {
            while notes.body(&handle) != "kept abandoned " {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the edit is applied");
        assert!(!abandoned.is_finished(), "waiting for the write lock");
        abandoned.abort();
        assert!(abandoned.await.unwrap_err().is_cancelled());
        sqlx::query("ROLLBACK")
            .execute(&mut *blocker)
            .await
            .unwrap();
        drop(blocker);
        assert_eq!(handle.lock().needs_snapshot, Some(2));

        notes
            .update(&handle, 0, &typist.type_text("next"))
            .await
            .unwrap();
        assert_eq!(store.stored_body("n").await, "kept abandoned next");
        assert_eq!(handle.lock().needs_snapshot, None);
    }
}
