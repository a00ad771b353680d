//! Collaborative notes on the server: one in-memory Yjs document per open
//! note, loaded from the store on first use and unloaded after the last
//! peer leaves (with a grace period); every update is stored before it is
//! acknowledged, and the update log is compacted into snapshots.
//!
//! - [`document`]: one note's document (yrs), sync steps and awareness.
//!
//! Peers are `/ws` connections that sent `doc_sync` for `notes:{id}` and
//! `/yjs/{id}` sockets speaking the y-websocket protocol; both see each
//! other's edits.

pub mod document;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rookery_common::{Bytes, ChannelName, ServerMessage, encode};
use tokio::sync::{Notify, OnceCell, mpsc};
use yrs::sync::{Message as SyncWire, SyncMessage};
use yrs::updates::encoder::Encode;

pub use document::{BODY, DocumentError, NoteDocument, PeerId, TITLE};

use crate::hub::outbox::{Frame, Outbox, PushError};
use crate::hub::unix_time_ms;
use crate::store::{Store, StoreError};

/// Limits and timings for notes.
#[derive(Debug, Clone)]
pub struct NoteLimits {
    pub max_update_bytes: usize,
    pub max_document_bytes: usize,
    /// Updates stored separately before they are folded into a snapshot.
    pub compact_every: i64,
    /// How long a note stays loaded after its last peer leaves.
    pub unload_after: Duration,
}

impl Default for NoteLimits {
    fn default() -> Self {
        Self {
            max_update_bytes: 256 * 1024,
            max_document_bytes: 16 * 1024 * 1024,
            compact_every: 500,
            unload_after: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotesError {
    #[error("note ids are 1 to 64 of A-Z, a-z, 0-9, - and _")]
    InvalidId,
    #[error(transparent)]
    Document(#[from] DocumentError),
    #[error("not saved: {0}")]
    Store(#[from] StoreError),
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
        if self.frames.try_send(YjsOut::Frame(frame)).is_err()
            && !self.slow.0.swap(true, Ordering::SeqCst)
        {
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
    next_peer: AtomicU64,
}

/// One open note; loaded once, shared by its peers.
#[derive(Debug)]
pub struct NoteHandle {
    pub id: String,
    loaded: OnceCell<Mutex<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    document: NoteDocument,
    peers: HashMap<PeerId, PeerSink>,
    title: String,
    compacting: bool,
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

impl Notes {
    pub fn new(store: Store, limits: NoteLimits) -> Self {
        Self {
            store,
            limits,
            open: Mutex::new(HashMap::new()),
            next_peer: AtomicU64::new(1),
        }
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

    /// The note, loaded (from the store on first use).
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
                })
            })
            .clone();
        handle
            .loaded
            .get_or_try_init(|| async {
                self.store.ensure_note(id, unix_time_ms() as i64).await?;
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
                    compacting: false,
                }))
            })
            .await?;
        Ok(handle)
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
        let mut loaded = handle.lock();
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
        Ok(handle.lock().document.sync_step1(state_vector)?)
    }

    /// Adds a `/yjs` peer; returns its id and the server's opening frames
    /// (sync step 1 and the current awareness).
    pub fn join_yjs(&self, handle: &NoteHandle, sink: YjsSink) -> (PeerId, Vec<Vec<u8>>) {
        let mut loaded = handle.lock();
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
        (peer, frames)
    }

    /// A `/yjs` peer's sync step 1: the step 2 to send back.
    pub fn yjs_step2(
        &self,
        handle: &NoteHandle,
        state_vector: &[u8],
    ) -> Result<Vec<u8>, NotesError> {
        let loaded = handle.lock();
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
        let (seq, title_changed, compact) = {
            let mut loaded = handle.lock();
            let seq = loaded.document.apply(
                data,
                self.limits.max_update_bytes,
                self.limits.max_document_bytes,
            )?;
            relay(&loaded.peers, from, data, Relay::Update);
            let title = loaded.document.title();
            let title_changed = (title != loaded.title).then(|| {
                loaded.title.clone_from(&title);
                title
            });
            let compact = (!loaded.compacting
                && loaded.document.updates_since_snapshot() >= self.limits.compact_every)
                .then(|| {
                    loaded.compacting = true;
                    loaded.document.snapshot()
                });
            (seq, title_changed, compact)
        };
        self.store
            .append_update(&handle.id, seq, data, unix_time_ms() as i64)
            .await?;
        if let Some(title) = title_changed {
            self.store.set_title(&handle.id, &title).await?;
        }
        if let Some((snapshot, upto)) = compact {
            let result = self.store.compact(&handle.id, &snapshot, upto).await;
            let mut loaded = handle.lock();
            loaded.compacting = false;
            if result.is_ok() {
                loaded.document.compacted(snapshot.len(), upto);
            }
            result?;
        }
        Ok(())
    }

    /// Applies and relays a peer's awareness update.
    pub fn awareness(
        &self,
        handle: &NoteHandle,
        from: PeerId,
        data: &[u8],
    ) -> Result<(), NotesError> {
        let mut loaded = handle.lock();
        let encoded = loaded.document.apply_awareness(from, data)?;
        relay(&loaded.peers, from, &encoded, Relay::Awareness);
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
                relay(&loaded.peers, peer, &removal, Relay::Awareness);
            }
            loaded.peers.is_empty()
        };
        if now_empty {
            let notes = self.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(notes.limits.unload_after).await;
                notes.unload_if_idle(&handle).await;
            });
        }
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
}

#[derive(Clone, Copy)]
enum Relay {
    Update,
    Awareness,
}

/// Sends `data` to every peer but `from`, encoded once per protocol.
fn relay(peers: &HashMap<PeerId, PeerSink>, from: PeerId, data: &[u8], kind: Relay) {
    let mut json: Option<(ChannelName, Frame)> = None;
    let mut binary: Option<Vec<u8>> = None;
    for (peer, sink) in peers {
        if *peer == from {
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
                if outbox.push(frame) == Err(PushError::Full) {
                    outbox.close(
                        rookery_common::CloseCode::SlowConsumer,
                        "outbound queue full: the client reads too slowly",
                        false,
                    );
                }
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
