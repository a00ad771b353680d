//! Collaborative notes on the server: one in-memory Yjs document per open
//! note, loaded from the store on first use and unloaded after the last
//! peer leaves (with a grace period); every update is stored before it is
//! acknowledged, and the update log is compacted into snapshots.
//!
//! - [`document`]: one note's document (yrs), sync steps and awareness.
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

pub mod document;
pub mod list_events;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use rookery_common::notes::{MAX_TITLE_CHARS, is_valid_title};
use rookery_common::{Bytes, ChannelName, CloseCode, NoteSummary, ServerMessage, encode};
use tokio::sync::{Notify, OnceCell, mpsc};
use tokio::time::Instant;
use yrs::sync::{Message as SyncWire, SyncMessage};
use yrs::updates::encoder::Encode;

pub use document::{BODY, DocumentError, NoteDocument, PeerId, TITLE};
pub use list_events::Listener as ListListener;

use crate::hub::outbox::{Frame, Outbox, PushError};
use crate::hub::unix_time_ms;
use crate::store::{NoteStatus, Store, StoreError};
use list_events::Announcer;

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
}

/// One open note; loaded once, shared by its peers.
#[derive(Debug)]
pub struct NoteHandle {
    pub id: String,
    loaded: OnceCell<Mutex<Loaded>>,
    /// Set once the note is deleted (after the store's tombstone, before
    /// its peers are let go); checked under the document's lock by
    /// everything that would use it.
    deleted: AtomicBool,
}

#[derive(Debug)]
struct Loaded {
    document: NoteDocument,
    peers: HashMap<PeerId, PeerSink>,
    title: String,
    /// When an edit was last stored (milliseconds since the epoch; 0 before
    /// the first since loading).
    updated_at: u64,
    compacting: bool,
}

impl Loaded {
    /// Bookkeeping after an edit was applied: the title, and a compaction
    /// if one is due.
    fn after_edit(&mut self, seq: i64, compact_every: i64) -> Applied {
        let title = self.document.title();
        let title_changed = title != self.title;
        if title_changed {
            self.title.clone_from(&title);
        }
        let compact = (!self.compacting && self.document.updates_since_snapshot() >= compact_every)
            .then(|| {
                self.compacting = true;
                self.document.snapshot()
            });
        Applied {
            seq,
            title,
            title_changed,
            compact,
        }
    }
}

/// An edit applied in memory and relayed, still to be stored.
struct Applied {
    seq: i64,
    title: String,
    title_changed: bool,
    /// A snapshot to store, and the sequence number it covers.
    compact: Option<(Vec<u8>, i64)>,
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

pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

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
        }
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
                    deleted: AtomicBool::new(false),
                })
            })
            .clone();
        let mut created = false;
        let loaded = handle
            .loaded
            .get_or_try_init(|| async {
                let now_ms = unix_time_ms();
                created = self.store.ensure_note(id, now_ms as i64).await?;
                let stored = self.store.load(id).await?;
                let document = NoteDocument::restore(
                    stored.snapshot.as_deref(),
                    stored.snapshot_seq,
                    &stored.updates,
                )?;
                let title = document.title();
                Ok::<_, NotesError>(Mutex::new(Loaded {
                    document,
                    peers: HashMap::new(),
                    title,
                    updated_at: if created { now_ms } else { 0 },
                    compacting: false,
                }))
            })
            .await;
        if let Err(NotesError::Deleted) = loaded {
            // A tombstone is for good: keep no empty handle for it.
            let mut open = self.open_map();
            if open
                .get(id)
                .is_some_and(|current| Arc::ptr_eq(current, &handle))
            {
                open.remove(id);
            }
        }
        loaded?;
        if created {
            // Opened by an id nobody used before (a `/yjs` client, say).
            self.announcer
                .changed(id, Instant::now(), || handle.summary());
        }
        Ok(handle)
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
            return self.retitle(&handle, title).await;
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
        self.retitle(&handle, title).await
    }

    /// The server's own edit of the `title` text, replacing it whole:
    /// relayed, stored and announced like a peer's update.
    async fn retitle(
        self: &Arc<Self>,
        handle: &Arc<NoteHandle>,
        title: &str,
    ) -> Result<NoteSummary, NotesError> {
        let (update, edit) = {
            let mut loaded = handle.lock_live()?;
            let (seq, update) = loaded.document.replace_title(
                title,
                self.limits.max_update_bytes,
                self.limits.max_document_bytes,
            )?;
            relay(&loaded.peers, None, &update, Relay::Update);
            (update, loaded.after_edit(seq, self.limits.compact_every))
        };
        let stored = self
            .store_edit(handle, edit, &update, Announce::AtOnce)
            .await;
        // Opened for the rename alone, the note must not stay loaded.
        self.unload_when_idle(handle);
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
        for sink in peers.into_values() {
            match sink {
                PeerSink::Ws { outbox, channel } => {
                    push_or_close(
                        &outbox,
                        encode(&ServerMessage::DocDeleted { channel }).into(),
                    );
                }
                PeerSink::Yjs(sink) => sink.close(CloseCode::Normal, "the note was deleted"),
            }
        }
        self.announcer.deleted(id);
        Ok(())
    }

    fn next_peer_id(&self) -> PeerId {
        self.next_peer.fetch_add(1, Ordering::Relaxed)
    }

    /// Adds a `/ws` peer and answers its sync step 1.
    pub fn join_ws(
        &self,
        handle: &NoteHandle,
        sink: PeerSink,
        state_vector: &[u8],
    ) -> Result<Joined, NotesError> {
        let mut loaded = handle.lock_live()?;
        let (update, server_vector) = loaded.document.sync_step1(state_vector)?;
        let peer = self.next_peer_id();
        loaded.peers.insert(peer, sink);
        Ok(Joined {
            peer,
            update,
            state_vector: server_vector,
            awareness: loaded.document.awareness_state(),
        })
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
    /// (sync step 1 and the current awareness).
    pub fn join_yjs(
        &self,
        handle: &NoteHandle,
        sink: YjsSink,
    ) -> Result<(PeerId, Vec<Vec<u8>>), NotesError> {
        let mut loaded = handle.lock_live()?;
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
        Ok((peer, frames))
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
    /// Returns once it is durable: only then may it be acknowledged.
    pub async fn update(
        self: &Arc<Self>,
        handle: &Arc<NoteHandle>,
        from: PeerId,
        data: &[u8],
    ) -> Result<(), NotesError> {
        let edit = {
            let mut loaded = handle.lock_live()?;
            let seq = loaded.document.apply(
                data,
                self.limits.max_update_bytes,
                self.limits.max_document_bytes,
            )?;
            relay(&loaded.peers, Some(from), data, Relay::Update);
            loaded.after_edit(seq, self.limits.compact_every)
        };
        self.store_edit(handle, edit, data, Announce::AsEdited)
            .await
            .map(drop)
    }

    /// Stores an applied edit (the update, the title if it changed, a
    /// snapshot if one is due) and announces it to the list. Returns the
    /// note as this edit left it.
    async fn store_edit(
        &self,
        handle: &NoteHandle,
        edit: Applied,
        update: &[u8],
        announce: Announce,
    ) -> Result<NoteSummary, NotesError> {
        let now_ms = unix_time_ms();
        let stored = async {
            self.store
                .append_update(&handle.id, edit.seq, update, now_ms as i64)
                .await?;
            if edit.title_changed {
                self.store.set_title(&handle.id, &edit.title).await?;
            }
            Ok::<_, StoreError>(())
        };
        if let Err(error) = stored.await {
            if edit.compact.is_some() {
                // The snapshot was not stored: a later edit takes another.
                handle.lock().compacting = false;
            }
            return Err(error.into());
        }
        {
            let mut loaded = handle.lock();
            loaded.updated_at = loaded.updated_at.max(now_ms);
        }
        let now = Instant::now();
        let current = || handle.summary();
        if edit.title_changed || announce == Announce::AtOnce {
            self.announcer.changed(&handle.id, now, current);
        } else {
            self.announcer.edited(&handle.id, now, current);
        }
        if let Some((snapshot, upto)) = edit.compact {
            let result = self.store.compact(&handle.id, &snapshot, upto).await;
            let mut loaded = handle.lock();
            loaded.compacting = false;
            if result.is_ok() {
                loaded.document.compacted(snapshot.len(), upto);
            }
            result?;
        }
        Ok(NoteSummary {
            id: handle.id.clone(),
            title: edit.title,
            updated_at: now_ms,
        })
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
            }
            loaded.peers.is_empty()
        };
        if now_empty {
            self.unload_when_idle(handle);
        }
    }

    /// Unloads the note after the grace period if nobody has it open then.
    fn unload_when_idle(self: &Arc<Self>, handle: &Arc<NoteHandle>) {
        if !handle.lock().peers.is_empty() {
            return;
        }
        let notes = self.clone();
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(notes.limits.unload_after).await;
            notes.unload_if_idle(&handle).await;
        });
    }

    /// Unloads a note nobody has open, compacting it first so that the
    /// next load is one read. Someone joining (or writing) meanwhile keeps
    /// it loaded; their leaving schedules the next attempt.
    async fn unload_if_idle(&self, handle: &Arc<NoteHandle>) {
        let is_idle = |open: &HashMap<String, Arc<NoteHandle>>, loaded: &Loaded| {
            open.get(&handle.id)
                .is_some_and(|current| Arc::ptr_eq(current, handle))
                && loaded.peers.is_empty()
                && !loaded.compacting
        };
        let snapshot = {
            let open = self.open_map();
            let loaded = handle.lock();
            if !is_idle(&open, &loaded) {
                return;
            }
            (loaded.document.updates_since_snapshot() > 0).then(|| loaded.document.snapshot())
        };
        if let Some((data, upto)) = snapshot {
            if let Err(error) = self.store.compact(&handle.id, &data, upto).await {
                tracing::warn!(note = %handle.id, %error, "compaction before unloading failed; the note stays loaded");
                return;
            }
            handle.lock().document.compacted(data.len(), upto);
        }
        let mut open = self.open_map();
        let loaded = handle.lock();
        if is_idle(&open, &loaded) && loaded.document.updates_since_snapshot() == 0 {
            open.remove(&handle.id);
        }
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
    let mut json: Option<(ChannelName, Frame)> = None;
    let mut binary: Option<Vec<u8>> = None;
    for (peer, sink) in peers {
        if Some(*peer) == from {
            continue;
        }
        match sink {
            PeerSink::Ws { outbox, channel } => {
                let frame = match &json {
                    Some((encoded_for, frame)) if encoded_for == channel => frame.clone(),
                    _ => {
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
                        let frame = Frame::from(encode(&message));
                        json = Some((channel.clone(), frame.clone()));
                        frame
                    }
                };
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
