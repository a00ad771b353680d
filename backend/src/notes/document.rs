//! One note's Yjs document in memory: applying updates, answering sync
//! steps, and awareness. Plain synchronous code over yrs; the registry
//! around it does the storing and the fan-out.
//!
//! The document holds two shared types, both `Y.Text`: `title` and `body`.
//! Offsets count UTF-16 code units, as JavaScript's Yjs does, so positions
//! match browser text and standard Yjs clients.

use std::collections::{HashMap, HashSet};

use yrs::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    Doc, GetString, IdSet, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update,
    WriteTxn,
};

use super::checked_decoder::{CLOCK_LIMIT, CheckedDecoderV1};

/// Names of the shared types other Yjs clients edit.
pub use rookery_common::notes::{BODY, TITLE};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
    #[error("update of {size} bytes is over the limit of {limit}")]
    UpdateTooLarge { size: usize, limit: usize },
    #[error("the document would grow over {limit} bytes")]
    DocumentTooLarge { limit: usize },
    /// yrs panicked integrating an update, or refused one halfway through:
    /// the document was given up (see [`NoteDocument::integrate`]) and must
    /// be loaded again from the store.
    #[error("the document broke integrating an update and must be reloaded")]
    Broken,
}

/// A peer of a document: one `/ws` connection or one `/yjs` socket.
pub type PeerId = u64;

pub struct NoteDocument {
    doc: Doc,
    /// Given up after yrs panicked in it: refuses every update.
    broken: bool,
    /// Awareness states by Yjs client id (the newest clock wins). Kept here
    /// rather than in yrs' `Awareness`, whose observers are not `Send`.
    awareness: HashMap<ClientID, AwarenessUpdateEntry>,
    /// Sequence number of the newest update (persisted or being persisted).
    last_seq: i64,
    /// Sequence number the stored snapshot covers.
    snapshot_seq: i64,
    /// Size of the stored snapshot, and of each update stored since: the
    /// document's stored size is bounded.
    snapshot_bytes: usize,
    update_bytes: Vec<(i64, usize)>,
    /// Awareness client ids each peer announced last (of every client id,
    /// the peer that announced it last), to drop them when it goes.
    peer_clients: HashMap<PeerId, HashSet<ClientID>>,
    /// The peer that announced each client id last: a browser that
    /// reconnects announces its Yjs client id again from a new peer, and
    /// the old peer's leaving must not remove it.
    last_announcer: HashMap<ClientID, PeerId>,
}

impl std::fmt::Debug for NoteDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteDocument")
            .field("last_seq", &self.last_seq)
            .field("stored_bytes", &self.stored_bytes())
            .finish_non_exhaustive()
    }
}

/// Refuses an update, state vector or awareness update whose leading
/// count (of clients) is more than its bytes could hold: yrs reserves a
/// hash table of that many entries before reading them, so four bytes
/// declaring 262 million clients would make the server zero half a
/// gigabyte (found by the `yjs` fuzz target). Every entry takes at least
/// one byte, so a genuine count never exceeds the length.
pub fn check_declared_count(data: &[u8]) -> Result<(), DocumentError> {
    let mut at = 0;
    match read_var_u64(data, &mut at) {
        Some(count) if count > data.len() as u64 => Err(DocumentError::InvalidUpdate(format!(
            "declares {count} entries in {} bytes",
            data.len()
        ))),
        // Too short or malformed: yrs says what is wrong with it.
        _ => Ok(()),
    }
}

/// Decodes an update from a peer, refusing what yrs would accept but could
/// not encode again: such an update (found by the `yjs` fuzz target, 17
/// bytes) is kept as "pending", and every later sync of the note then
/// panics inside yrs while merging it — one message would break the note
/// for good. Re-encoding and decoding it once more catches it.
fn decode_update(data: &[u8]) -> Result<Decoded, DocumentError> {
    check_declared_count(data)?;
    // yrs may panic on malformed input too (an overflowing clock in debug
    // builds): contained like the panics of integrating (`integrate`).
    let decoded = std::panic::catch_unwind(|| {
        let mut decoder = CheckedDecoderV1::new(data);
        let update = Update::decode(&mut decoder)
            .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
        // A gap in a client's blocks: what follows it could only be kept
        // pending (see `NoteDocument::applicable`).
        if decoder.skips > 0 {
            return Err(DocumentError::InvalidUpdate("an update with gaps".into()));
        }
        let again = Update::decode_v1(&update.encode_v1()).map_err(|_| {
            DocumentError::InvalidUpdate("an update that does not encode back to itself".into())
        })?;
        // One client's blocks listed twice, overlapping: yrs integrates
        // them unchecked and frees a block others still point to (a
        // use-after-free, found by the `yjs_integrate` target under
        // AddressSanitizer). Encoded again, a client's blocks follow one
        // another, so what they cover changes.
        if again.insertions(true).encode_v1() != update.insertions(true).encode_v1() {
            return Err(DocumentError::InvalidUpdate(
                "an update whose blocks overlap".into(),
            ));
        }
        // Clocks are u32 and release builds of yrs add block lengths to
        // them unchecked: the decoder keeps every sum below 2^32, and here
        // a client's blocks may not reach past 2^31 (see `checked_decoder`).
        if beyond_clock_limit(&update.insertions(true)) || beyond_clock_limit(update.delete_set()) {
            return Err(DocumentError::InvalidUpdate(
                "an update with clocks beyond 2^31".into(),
            ));
        }
        Ok(Decoded {
            update,
            needs: decoder.needs,
        })
    });
    decoded.unwrap_or_else(|_| {
        Err(DocumentError::InvalidUpdate(
            "an update yrs cannot decode".into(),
        ))
    })
}

/// A peer's update, read and checked on its own (`decode_update`).
struct Decoded {
    update: Update,
    /// Per client, the clock just past the newest one the update's origins
    /// and parents name: what it depends on.
    needs: HashMap<ClientID, u32>,
}

/// Whether `set` names a clock at or past 2^31 (see `decode_update`).
fn beyond_clock_limit(set: &IdSet) -> bool {
    const LIMIT: u32 = CLOCK_LIMIT;
    set.iter().any(|(_, ranges)| {
        ranges
            .iter()
            .any(|range| range.start >= LIMIT || range.end > LIMIT || range.start > range.end)
    })
}

/// What of a peer's update the document at `state` can integrate now:
/// the update without what the document already has, refused when it
/// depends on edits the document lacks. yrs would keep such an update
/// pending and integrate it once they arrive, trimming it again then, and
/// trimming is where yrs corrupts memory (`without_known`).
fn applicable(decoded: Decoded, state: &StateVector) -> Result<Update, DocumentError> {
    let update = without_known(decoded.update, state)?;
    // Each client's blocks must go on from where the document's end.
    if update
        .state_vector_lower()
        .iter()
        .any(|(client, clock)| *clock > state.get(client))
    {
        return Err(lacking_edits());
    }
    let mut reach = state.clone();
    for (client, ranges) in update.insertions(true).iter() {
        if let Some(end) = ranges.iter().map(|range| range.end).max() {
            reach.set_max(*client, end);
        }
    }
    if decoded
        .needs
        .iter()
        .any(|(client, needed)| *needed > reach.get(client))
    {
        return Err(lacking_edits());
    }
    // Deleting what the document lacks: yrs would keep those deletions
    // pending, and merging them into every later sync panicked inside
    // yrs for some (found by `yjs_integrate`).
    if update
        .delete_set()
        .iter()
        .any(|(client, ranges)| ranges.iter().any(|range| range.end > reach.get(client)))
    {
        return Err(lacking_edits());
    }
    Ok(update)
}

fn lacking_edits() -> DocumentError {
    DocumentError::InvalidUpdate("an update that depends on edits the note lacks".into())
}

/// `update` without the blocks a document at `state` already has. yrs
/// trims an update itself by splitting its blocks at the document's
/// clocks, and the right half of a split item keeps a pointer to the left
/// half, which yrs then frees and reads while integrating (a
/// use-after-free, found by the `yjs_integrate` target under
/// AddressSanitizer; an update overlapping what the note has is ordinary,
/// e.g. a full state sent by a peer). Encoding the difference writes the
/// first new block from an offset instead, and nothing is split.
fn without_known(update: Update, state: &StateVector) -> Result<Update, DocumentError> {
    let overlaps = update
        .state_vector_lower()
        .iter()
        .any(|(client, clock)| *clock < state.get(client));
    if !overlaps {
        return Ok(update);
    }
    // Guarded like decoding: yrs's code, on a peer's update.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let difference = yrs::diff_updates_v1(&update.encode_v1(), &state.encode_v1())
            .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
        Update::decode_v1(&difference).map_err(|e| DocumentError::InvalidUpdate(e.to_string()))
    }))
    .unwrap_or_else(|_| {
        Err(DocumentError::InvalidUpdate(
            "an update yrs cannot trim".into(),
        ))
    })
}

/// Whether a peer's update would be accepted for integration: decoded, its
/// counts within its length, and encoding back to itself.
pub fn check_update(data: &[u8]) -> Result<(), DocumentError> {
    decode_update(data).map(drop)
}

/// One unsigned LEB128 number (lib0's varUint), advancing `at`.
pub fn read_var_u64(data: &[u8], at: &mut usize) -> Option<u64> {
    let mut value: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Options every note's document is created with.
pub fn new_doc() -> Doc {
    Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

impl NoteDocument {
    /// Rebuilds a document from its snapshot and the updates after it.
    pub fn restore(
        snapshot: Option<&[u8]>,
        snapshot_seq: i64,
        updates: &[(i64, Vec<u8>)],
    ) -> Result<Self, DocumentError> {
        let doc = new_doc();
        // Guarded as `integrate` is: an update another node stored may
        // break yrs here, and a panic must not abort the process.
        let restored = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut txn = std::mem::ManuallyDrop::new(doc.transact_mut());
            let mut replay = || -> Result<(), DocumentError> {
                for data in snapshot
                    .into_iter()
                    .chain(updates.iter().map(|(_, data)| data.as_slice()))
                {
                    let update = Update::decode_v1(data)
                        .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
                    let update = without_known(update, &txn.state_vector())?;
                    txn.apply_update(update)
                        .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
                }
                Ok(())
            };
            let replayed = replay();
            // No panic: committed as usual.
            drop(std::mem::ManuallyDrop::into_inner(txn));
            replayed
        }));
        match restored {
            Ok(replayed) => replayed?,
            // The document is half-changed and its lock held: never
            // touched again, not even dropped (see `give_up`).
            Err(_) => {
                std::mem::forget(doc);
                return Err(DocumentError::InvalidUpdate(
                    "a stored update breaks yrs; the note cannot be loaded".into(),
                ));
            }
        }
        let mut note = Self {
            doc,
            broken: false,
            awareness: HashMap::new(),
            last_seq: updates.last().map_or(snapshot_seq, |(seq, _)| *seq),
            snapshot_seq,
            snapshot_bytes: snapshot.map_or(0, <[u8]>::len),
            update_bytes: updates
                .iter()
                .map(|(seq, data)| (*seq, data.len()))
                .collect(),
            peer_clients: HashMap::new(),
            last_announcer: HashMap::new(),
        };
        // Stored before updates were checked for it (see `drop_pending`).
        if note.drop_pending() {
            tracing::warn!("stored updates left edits pending; dropped");
        }
        Ok(note)
    }

    /// Numbers this document's edits from `base` on: in a cluster every
    /// node writes the same note, and each load takes a random base so
    /// that nodes never store two updates under one number.
    pub fn rebase(&mut self, base: i64) {
        self.last_seq = base;
        self.snapshot_seq = base;
        // What was loaded is older than anything numbered from here.
        for (seq, _) in &mut self.update_bytes {
            *seq = base;
        }
    }

    /// Applies an update another node applied and stored: no limits (that
    /// node checked them), nothing to store here.
    pub fn apply_remote(&mut self, data: &[u8]) -> Result<(), DocumentError> {
        let update = decode_update(data)?;
        self.integrate(update)
    }

    /// Integrates a decoded update. yrs panics on some malformed updates
    /// (an index out of bounds or an overflowing clock halfway through
    /// integrating, found by the `yjs` and `yjs_integrate` fuzz targets).
    /// Such a panic is contained here: the update is refused and the
    /// document given up ([`DocumentError::Broken`]), for the caller to
    /// load the note again from the store.
    ///
    /// yrs commits a transaction when it is dropped, also while a panic
    /// unwinds, and after a panic halfway through an update that commit
    /// panics too: a second panic during unwinding aborts the whole
    /// process. So the transaction is kept from unwinding's drop: one that
    /// panicked is leaked, with the document's lock, and the document is
    /// replaced at once so that nothing waits on that lock.
    fn integrate(&mut self, decoded: Decoded) -> Result<(), DocumentError> {
        if self.broken {
            return Err(DocumentError::Broken);
        }
        let doc = &self.doc;
        let before = doc.transact().state_vector();
        let update = applicable(decoded, &before)?;
        // Deletions do not move the state vector: a refused update that
        // carried some may have applied them (found by `yjs_integrate`).
        let deletes = !update.delete_set().is_empty();
        let integrated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut txn = std::mem::ManuallyDrop::new(doc.transact_mut());
            let applied = txn.apply_update(update);
            // No panic: committed as usual.
            drop(std::mem::ManuallyDrop::into_inner(txn));
            applied
        }));
        match integrated {
            Ok(Ok(())) => {
                let dropped = self.drop_pending();
                self.ensure_encodable(&before)?;
                if dropped {
                    // Parts of it depended on edits the note lacks after
                    // all (an origin in its own later blocks, a cycle
                    // between clients): refused with them, and what of it
                    // was integrated has the note reloaded.
                    if deletes || self.doc.transact().state_vector() != before {
                        return Err(self.discard());
                    }
                    return Err(lacking_edits());
                }
                Ok(())
            }
            // yrs may find an update invalid halfway, after integrating
            // some of its blocks (an item whose parent is no type, found
            // by `yjs_integrate`): the document then holds what is neither
            // stored nor relayed, and is reloaded from the store.
            Ok(Err(error)) if deletes || self.doc.transact().state_vector() != before => {
                tracing::warn!(%error, "an update failed halfway: the note is reloaded");
                Err(self.discard())
            }
            Ok(Err(error)) => Err(DocumentError::InvalidUpdate(error.to_string())),
            Err(_) => Err(self.give_up()),
        }
    }

    /// Some updates integrate without a panic but leave blocks yrs then
    /// cannot encode: every later sync of the note would panic, and the
    /// store would hand the update back at each reload (found by the
    /// `yjs_integrate` fuzz target). What an update added must encode.
    fn ensure_encodable(&mut self, before: &StateVector) -> Result<(), DocumentError> {
        let doc = &self.doc;
        let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            doc.transact().encode_state_as_update_v1(before);
        }));
        encoded.map_err(|_| self.give_up())
    }

    /// Replaces a document yrs panicked in by an empty one that refuses
    /// every update. The old one may be locked by a leaked transaction or
    /// left half-changed, and nothing may touch it again, not even its
    /// drop: freeing a half-changed yrs store follows pointers the panic
    /// left dangling (a segfault, found by the `yjs_integrate` fuzz
    /// target). It is leaked: each leak is bounded by the note size limit,
    /// their number only by how often peers send such updates (see
    /// SECURITY.md).
    fn give_up(&mut self) -> DocumentError {
        tracing::error!("yrs panicked on an update: the note is reloaded");
        std::mem::forget(std::mem::replace(&mut self.doc, new_doc()));
        self.broken = true;
        DocumentError::Broken
    }

    /// Drops a document that holds part of a refused update: yrs is sound
    /// but the document differs from what is stored and relayed. Like one
    /// given up, it refuses everything until its owner reloads the note.
    fn discard(&mut self) -> DocumentError {
        self.doc = new_doc();
        self.broken = true;
        DocumentError::Broken
    }

    /// Whether the document was given up or discarded (see
    /// [`Self::integrate`]): its owner must load the note again.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Drops what yrs keeps waiting for missing edits ("pending"); returns
    /// whether there was any. yrs trims pending edits again when it
    /// retries them, splitting blocks, which is where it corrupts memory
    /// (see `without_known`), and merges them into every sync, which
    /// panicked for some (found by the `yjs` and `yjs_integrate` targets).
    /// `applicable` refuses what would go pending; this catches what it
    /// cannot see.
    fn drop_pending(&mut self) -> bool {
        let mut txn = self.doc.transact_mut();
        let store = txn.store_mut();
        let mut dropped = false;
        if let Some(pending) = store.pending_update_mut()
            && !pending.update.is_empty()
        {
            pending.update = Update::new();
            dropped = true;
        }
        if let Some(deletes) = store.pending_ds_mut()
            && !deletes.is_empty()
        {
            *deletes = IdSet::new();
            dropped = true;
        }
        dropped
    }

    /// A document with nothing in it.
    pub fn empty() -> Self {
        Self::restore(None, 0, &[]).expect("nothing to decode")
    }

    pub fn doc(&self) -> &Doc {
        &self.doc
    }

    /// Sync step 1 from a peer: what it lacks, and our state vector.
    pub fn sync_step1(&self, state_vector: &[u8]) -> Result<(Vec<u8>, Vec<u8>), DocumentError> {
        if self.broken {
            return Err(DocumentError::Broken);
        }
        check_declared_count(state_vector)?;
        let remote = StateVector::decode_v1(state_vector)
            .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
        let txn = self.doc().transact();
        // yrs panics encoding some states for some state vectors (found by
        // the `yjs_integrate` target); a read-only transaction, so refusing
        // the request is all it takes.
        let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            txn.encode_state_as_update_v1(&remote)
        }))
        .map_err(|_| {
            DocumentError::InvalidUpdate("a state vector the note cannot answer".into())
        })?;
        Ok((answer, txn.state_vector().encode_v1()))
    }

    /// Validates and applies an update; returns its sequence number for
    /// storing. A rejected update leaves the document as it was.
    pub fn apply(
        &mut self,
        data: &[u8],
        max_update: usize,
        max_document: usize,
    ) -> Result<i64, DocumentError> {
        if data.len() > max_update {
            return Err(DocumentError::UpdateTooLarge {
                size: data.len(),
                limit: max_update,
            });
        }
        if self.stored_bytes() + data.len() > max_document {
            return Err(DocumentError::DocumentTooLarge {
                limit: max_document,
            });
        }
        // Decoding checks the whole encoding before anything is applied.
        let update = decode_update(data)?;
        self.integrate(update)?;
        self.last_seq += 1;
        self.update_bytes.push((self.last_seq, data.len()));
        Ok(self.last_seq)
    }

    /// Replaces the whole title in one transaction of the server's own;
    /// returns the update (to be stored and relayed like a peer's) and its
    /// sequence number. Refused beforehand if it could break the limits,
    /// since an applied edit cannot be taken back.
    pub fn replace_title(
        &mut self,
        title: &str,
        max_update: usize,
        max_document: usize,
    ) -> Result<(i64, Vec<u8>), DocumentError> {
        if self.broken {
            return Err(DocumentError::Broken);
        }
        let text = self.doc.get_or_insert_text(TITLE);
        let old_len = text.len(&self.doc.transact());
        let bound = title_update_bound(old_len, title);
        if bound > max_update {
            return Err(DocumentError::UpdateTooLarge {
                size: bound,
                limit: max_update,
            });
        }
        if self.stored_bytes() + bound > max_document {
            return Err(DocumentError::DocumentTooLarge {
                limit: max_document,
            });
        }
        let update = {
            let mut txn = self.doc.transact_mut();
            text.remove_range(&mut txn, 0, old_len);
            text.insert(&mut txn, 0, title);
            txn.encode_update_v1()
        };
        self.last_seq += 1;
        self.update_bytes.push((self.last_seq, update.len()));
        Ok((self.last_seq, update))
    }

    /// The whole state as one update, for a snapshot, with the sequence
    /// number it covers.
    pub fn snapshot(&self) -> (Vec<u8>, i64) {
        let txn = self.doc().transact();
        (
            txn.encode_state_as_update_v1(&StateVector::default()),
            self.last_seq,
        )
    }

    /// Records that the store now holds `bytes` as a snapshot up to `seq`
    /// (updates after it, applied while compacting, stay separate).
    pub fn compacted(&mut self, bytes: usize, seq: i64) {
        self.snapshot_seq = seq;
        self.snapshot_bytes = bytes;
        self.update_bytes
            .retain(|(update_seq, _)| *update_seq > seq);
    }

    /// What the store holds for this document, in bytes.
    pub fn stored_bytes(&self) -> usize {
        self.snapshot_bytes + self.update_bytes.iter().map(|(_, len)| len).sum::<usize>()
    }

    /// Updates stored since the last snapshot.
    pub fn updates_since_snapshot(&self) -> i64 {
        self.last_seq - self.snapshot_seq
    }

    /// The sequence number the stored snapshot covers.
    pub fn snapshot_seq(&self) -> i64 {
        self.snapshot_seq
    }

    pub fn title(&self) -> String {
        let title = self.doc().get_or_insert_text(TITLE);
        title.get_string(&self.doc().transact())
    }

    pub fn body(&self) -> String {
        let body = self.doc().get_or_insert_text(BODY);
        body.get_string(&self.doc().transact())
    }

    /// Applies a peer's awareness update; returns what changed, encoded
    /// for the others.
    pub fn apply_awareness(&mut self, peer: PeerId, data: &[u8]) -> Result<Vec<u8>, DocumentError> {
        check_declared_count(data)?;
        let update = AwarenessUpdate::decode_v1(data)
            .map_err(|e| DocumentError::InvalidUpdate(e.to_string()))?;
        let mut changed = HashMap::new();
        for (client, entry) in update.clients {
            let stale = self
                .awareness
                .get(&client)
                .is_some_and(|current| entry.clock < current.clock);
            if stale {
                continue;
            }
            // Whoever announced the id before no longer owns it.
            if let Some(previous) = self.last_announcer.remove(&client)
                && let Some(clients) = self.peer_clients.get_mut(&previous)
            {
                clients.remove(&client);
                if clients.is_empty() {
                    self.peer_clients.remove(&previous);
                }
            }
            if entry.json.as_ref() == "null" {
                self.awareness.remove(&client);
            } else {
                self.awareness.insert(client, entry.clone());
                self.last_announcer.insert(client, peer);
                self.peer_clients.entry(peer).or_default().insert(client);
            }
            changed.insert(client, entry);
        }
        Ok(AwarenessUpdate { clients: changed }.encode_v1())
    }

    /// Every known awareness state, encoded (for a new peer).
    pub fn awareness_state(&self) -> Option<Vec<u8>> {
        (!self.awareness.is_empty()).then(|| {
            AwarenessUpdate {
                clients: self.awareness.clone(),
            }
            .encode_v1()
        })
    }

    /// Forgets the awareness states a peer announced last; returns the
    /// removal to broadcast. A client id announced since by another peer
    /// (the same browser, reconnected) stays. As y-protocols'
    /// `removeAwarenessStates` does, the removal carries the clock plus one
    /// and a null state.
    pub fn remove_peer(&mut self, peer: PeerId) -> Option<Vec<u8>> {
        let clients = self.peer_clients.remove(&peer)?;
        let mut removed = HashMap::new();
        for client in clients {
            if self.last_announcer.get(&client) != Some(&peer) {
                continue;
            }
            self.last_announcer.remove(&client);
            if let Some(entry) = self.awareness.remove(&client) {
                removed.insert(
                    client,
                    AwarenessUpdateEntry {
                        clock: entry.clock + 1,
                        json: "null".into(),
                    },
                );
            }
        }
        (!removed.is_empty()).then(|| AwarenessUpdate { clients: removed }.encode_v1())
    }
}

/// At most how large the update replacing a title of `old_len` units with
/// `title` is: one inserted item (its header, ids and the text), and at
/// worst one deleted range per old unit, each with its own client id and
/// two clocks (varints of at most 10 bytes each).
fn title_update_bound(old_len: u32, title: &str) -> usize {
    const HEADERS: usize = 128;
    const PER_DELETED_UNIT: usize = 40;
    HEADERS + title.len() + PER_DELETED_UNIT * old_len as usize
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use yrs::Text;

    use super::*;

    fn edit(doc: &Doc, f: impl FnOnce(&mut yrs::TransactionMut<'_>, &yrs::TextRef)) -> Vec<u8> {
        let body = doc.get_or_insert_text(BODY);
        let before = doc.transact().state_vector();
        let mut txn = doc.transact_mut();
        f(&mut txn, &body);
        drop(txn);
        doc.transact().encode_state_as_update_v1(&before)
    }

    #[test]
    fn applies_updates_and_refuses_garbage_without_harm() {
        let mut note = NoteDocument::restore(None, 0, &[]).unwrap();
        let client = new_doc();
        let update = edit(&client, |txn, body| body.insert(txn, 0, "héllo 👋"));
        assert_eq!(note.apply(&update, 1 << 20, 1 << 24).unwrap(), 1);
        assert_eq!(note.body(), "héllo 👋");
        for garbage in [&b"\xff\xff\xff"[..], b"", &update[..update.len() / 2]] {
            assert!(matches!(
                note.apply(garbage, 1 << 20, 1 << 24),
                Err(DocumentError::InvalidUpdate(_))
            ));
        }
        assert_eq!(note.body(), "héllo 👋");
        assert!(matches!(
            note.apply(&update, 4, 1 << 24),
            Err(DocumentError::UpdateTooLarge { .. })
        ));
    }

    #[test]
    fn a_title_is_replaced_whole_by_one_update_any_replica_can_apply() {
        let mut note = NoteDocument::restore(None, 0, &[]).unwrap();
        let replica = new_doc();
        let typed = {
            let title = replica.get_or_insert_text(TITLE);
            let before = replica.transact().state_vector();
            let mut txn = replica.transact_mut();
            title.insert(&mut txn, 0, "Dr👋ft");
            title.insert(&mut txn, 2, "a");
            drop(txn);
            replica.transact().encode_state_as_update_v1(&before)
        };
        note.apply(&typed, 1 << 20, 1 << 24).unwrap();
        assert_eq!(note.title(), "Dra👋ft");

        let (seq, update) = note.replace_title("Final — ✓", 1 << 20, 1 << 24).unwrap();
        assert_eq!(seq, 2);
        assert_eq!(note.title(), "Final — ✓");
        assert!(update.len() <= title_update_bound(7, "Final — ✓"));
        replica
            .transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        let title = replica.get_or_insert_text(TITLE);
        assert_eq!(title.get_string(&replica.transact()), "Final — ✓");
        assert_eq!(note.stored_bytes(), typed.len() + update.len());
    }

    #[test]
    fn a_title_that_could_break_the_limits_is_refused_untouched() {
        let mut note = NoteDocument::restore(None, 0, &[]).unwrap();
        note.replace_title("kept", 1 << 20, 1 << 24).unwrap();
        assert!(matches!(
            note.replace_title("new", 16, 1 << 24),
            Err(DocumentError::UpdateTooLarge { .. })
        ));
        let full = note.stored_bytes() + 100;
        assert!(matches!(
            note.replace_title("new", 1 << 20, full),
            Err(DocumentError::DocumentTooLarge { .. })
        ));
        assert_eq!(note.title(), "kept");
        assert_eq!(note.updates_since_snapshot(), 1);
    }

    #[test]
    fn offsets_are_utf16_like_javascript() {
        let doc = new_doc();
        let body = doc.get_or_insert_text(BODY);
        let mut txn = doc.transact_mut();
        body.insert(&mut txn, 0, "a👋b");
        // In JavaScript "a👋".length is 3: the emoji is two UTF-16 units.
        body.insert(&mut txn, 3, "!");
        drop(txn);
        assert_eq!(body.get_string(&doc.transact()), "a👋!b");
    }

    #[test]
    fn restore_replays_snapshot_and_updates() {
        let client = new_doc();
        let first = edit(&client, |txn, body| body.insert(txn, 0, "one "));
        let second = edit(&client, |txn, body| body.insert(txn, 4, "two"));
        let mut note = NoteDocument::restore(None, 0, &[]).unwrap();
        note.apply(&first, 1 << 20, 1 << 24).unwrap();
        let (snapshot, seq) = note.snapshot();
        let restored = NoteDocument::restore(Some(&snapshot), seq, &[(2, second)]).unwrap();
        assert_eq!(restored.body(), "one two");
        assert_eq!(restored.updates_since_snapshot(), 1);
    }

    fn awareness(entries: &[(u64, u32, &str)]) -> Vec<u8> {
        AwarenessUpdate {
            clients: entries
                .iter()
                .map(|(client, clock, json)| {
                    (
                        ClientID::new(*client),
                        AwarenessUpdateEntry {
                            clock: *clock,
                            json: (*json).into(),
                        },
                    )
                })
                .collect(),
        }
        .encode_v1()
    }

    fn states(encoded: &[u8]) -> Vec<(u64, u32, String)> {
        let mut states: Vec<_> = AwarenessUpdate::decode_v1(encoded)
            .unwrap()
            .clients
            .into_iter()
            .map(|(client, entry)| (client.get(), entry.clock, entry.json.to_string()))
            .collect();
        states.sort();
        states
    }

    #[test]
    fn a_leaving_peer_removes_only_the_client_ids_it_announced_last() {
        let mut note = NoteDocument::empty();
        let (old_session, new_session) = (1, 2);
        note.apply_awareness(
            old_session,
            &awareness(&[(7, 1, "{\"a\":1}"), (8, 1, "{}")]),
        )
        .unwrap();
        // The same browser, reconnected: its Yjs client id 7 again, from a
        // new session, before the old one is noticed gone.
        note.apply_awareness(new_session, &awareness(&[(7, 2, "{\"a\":2}")]))
            .unwrap();
        let removal = note.remove_peer(old_session).expect("8 is removed");
        assert_eq!(states(&removal), [(8, 2, "null".to_owned())]);
        assert_eq!(
            states(&note.awareness_state().unwrap()),
            [(7, 2, "{\"a\":2}".to_owned())]
        );
        assert_eq!(note.remove_peer(old_session), None, "already gone");
        let removal = note.remove_peer(new_session).expect("7 is removed");
        assert_eq!(states(&removal), [(7, 3, "null".to_owned())]);
        assert_eq!(note.awareness_state(), None);
    }

    #[test]
    fn a_client_id_nulled_by_its_owner_is_not_removed_again() {
        let mut note = NoteDocument::empty();
        note.apply_awareness(1, &awareness(&[(7, 1, "{}")]))
            .unwrap();
        note.apply_awareness(1, &awareness(&[(7, 2, "null")]))
            .unwrap();
        assert_eq!(note.awareness_state(), None);
        assert_eq!(note.remove_peer(1), None);
        // A stale announcement from another peer changes no ownership.
        note.apply_awareness(1, &awareness(&[(9, 5, "{}")]))
            .unwrap();
        note.apply_awareness(2, &awareness(&[(9, 4, "{\"old\":1}")]))
            .unwrap();
        assert_eq!(note.remove_peer(2), None);
        assert_eq!(
            states(&note.remove_peer(1).unwrap()),
            [(9, 6, "null".to_owned())]
        );
    }

    proptest! {
        /// Replicas edit concurrently; every update reaches every replica in
        /// its own random order; all converge on one text.
        #[test]
        fn concurrent_edits_converge_in_any_delivery_order(
            edits in proptest::collection::vec((0usize..3, any::<u8>(), "[a-z😀é ]{1,4}", any::<bool>()), 1..30),
            seeds in proptest::collection::vec(any::<u64>(), 3),
        ) {
            let replicas: Vec<Doc> = (0..3).map(|_| new_doc()).collect();
            let mut updates = Vec::new();
            for (replica, at, text, delete) in edits {
                let doc = &replicas[replica];
                let update = edit(doc, |txn, body| {
                    let len = body.len(txn);
                    let at = u32::from(at) % (len + 1);
                    if delete && len > 0 {
                        body.remove_range(txn, at.min(len - 1), 1);
                    } else {
                        body.insert(txn, at, &text);
                    }
                });
                updates.push(update);
            }
            let server = new_doc();
            let mut texts = Vec::new();
            for (replica, seed) in replicas.iter().zip(seeds) {
                let mut order: Vec<usize> = (0..updates.len()).collect();
                // A seeded shuffle: each replica sees its own order.
                let mut state = seed | 1;
                for i in (1..order.len()).rev() {
                    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
                    order.swap(i, (state % (i as u64 + 1)) as usize);
                }
                for index in order {
                    let update = Update::decode_v1(&updates[index]).unwrap();
                    replica.transact_mut().apply_update(update).unwrap();
                }
                texts.push(replica.get_or_insert_text(BODY).get_string(&replica.transact()));
            }
            for update in &updates {
                server.transact_mut().apply_update(Update::decode_v1(update).unwrap()).unwrap();
            }
            texts.push(server.get_or_insert_text(BODY).get_string(&server.transact()));
            prop_assert!(texts.windows(2).all(|pair| pair[0] == pair[1]), "{:?}", texts);
        }
    }

    #[test]
    fn counts_an_update_cannot_hold_are_refused_before_yrs_reserves_them() {
        // Found by the `yjs` fuzz target: 262,143,999 clients in 4 bytes.
        let bomb = [255, 255, 255, 124];
        let mut note = NoteDocument::empty();
        assert!(matches!(
            note.apply(&bomb, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(_))
        ));
        assert!(matches!(
            note.apply_remote(&bomb),
            Err(DocumentError::InvalidUpdate(_))
        ));
        assert!(matches!(
            note.sync_step1(&bomb),
            Err(DocumentError::InvalidUpdate(_))
        ));
        assert!(matches!(
            note.apply_awareness(1, &bomb),
            Err(DocumentError::InvalidUpdate(_))
        ));
        // A genuine update and state vector still pass.
        let typed = {
            let doc = new_doc();
            let body = doc.get_or_insert_text(BODY);
            body.insert(&mut doc.transact_mut(), 0, "kept");
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
        };
        note.apply(&typed, 1 << 16, 1 << 20).unwrap();
        assert_eq!(note.body(), "kept");
        let vector = note.doc().transact().state_vector().encode_v1();
        note.sync_step1(&vector).unwrap();
    }

    #[test]
    fn an_update_yrs_could_not_encode_again_is_refused_and_the_note_still_syncs() {
        // Found by the `yjs` fuzz target: applied, it stayed pending and
        // every later sync panicked in yrs.
        let poison = [1, 2, 0, 2, 0, 136, 1, 2, 0, 136, 248, 255, 1, 1, 0, 0, 0];
        let mut note = NoteDocument::empty();
        assert!(matches!(
            note.apply(&poison, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(_))
        ));
        assert!(matches!(
            note.apply_remote(&poison),
            Err(DocumentError::InvalidUpdate(_))
        ));
        let empty = StateVector::default().encode_v1();
        note.sync_step1(&empty).unwrap();
    }

    #[test]
    fn pending_structs_yrs_could_not_encode_again_are_dropped_and_the_note_still_syncs() {
        // Found by the `yjs` fuzz target: it round-trips whole, but the
        // part left waiting for missing edits does not.
        let poison = [1, 1, 0, 43, 2, 2, 0, 1, 0, 1, 2, 1, 255, 0, 0];
        let mut note = NoteDocument::empty();
        assert!(matches!(
            note.apply(&poison, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(_))
        ));
        let empty = StateVector::default().encode_v1();
        note.sync_step1(&empty).unwrap();
        note.snapshot();
    }

    #[test]
    fn an_update_yrs_panics_on_is_refused_and_the_note_goes_on() {
        // Found by the `yjs` fuzz target: an index out of bounds inside
        // yrs's integration.
        let panics = [
            1, 1, 0, 255, 255, 255, 255, 255, 255, 1, 0, 201, 41, 1, 0, 1, 36, 61,
        ];
        let mut note = NoteDocument::empty();
        assert!(matches!(
            note.apply(&panics, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(_))
        ));
        let typed = {
            let doc = new_doc();
            let body = doc.get_or_insert_text(BODY);
            body.insert(&mut doc.transact_mut(), 0, "still here");
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
        };
        note.apply(&typed, 1 << 16, 1 << 20).unwrap();
        assert_eq!(note.body(), "still here");
        note.sync_step1(&StateVector::default().encode_v1())
            .unwrap();
    }

    #[test]
    fn an_update_whose_blocks_overlap_is_refused_before_yrs_sees_it() {
        // Found by the `yjs_integrate` fuzz target: one client's blocks
        // listed twice, overlapping. yrs integrated them unchecked and
        // freed a block others still pointed to (a use-after-free under
        // AddressSanitizer; without it, a panic halfway through or a
        // crash later, in release builds a process abort).
        let poison = [
            2, 1, 0, 0, 0, 2, 1, 0, 0, 0, 42, 2, 2, 2, 0, 190, 190, 190, 190, 190, 190, 2, 0, 2, 0,
            0, 42, 2, 2, 2, 0, 190, 190, 190, 190, 190, 190, 2, 0, 2, 0, 0, 2,
        ];
        let mut note = NoteDocument::empty();
        // Its content also declares a length past the clock limit, which
        // the decoder now refuses first.
        assert!(matches!(
            note.apply(&poison, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(_))
        ));
        // Plainly: client 1's GC blocks 0..2 and 1..3, in two runs.
        let overlapping = [2, 1, 1, 0, 0, 2, 1, 1, 1, 0, 2, 0];
        assert_eq!(
            note.apply(&overlapping, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(
                "an update whose blocks overlap".into()
            ))
        );
        assert!(!note.is_broken());
        note.sync_step1(&StateVector::default().encode_v1())
            .unwrap();
    }

    #[test]
    fn a_panic_inside_yrs_gives_the_document_up_without_aborting() {
        let typing = |text: &str| {
            let doc = new_doc();
            let body = doc.get_or_insert_text(BODY);
            body.insert(&mut doc.transact_mut(), 0, text);
            doc.transact()
                .encode_state_as_update_v1(&StateVector::default())
        };
        let mut note = NoteDocument::empty();
        note.apply(&typing("kept"), 1 << 16, 1 << 20).unwrap();
        // Stands in for yrs panicking inside a transaction, as it does on
        // some malformed updates: an observer runs in the commit. (Before
        // the containment, release builds panicked a second time in the
        // commit during the unwinding, and the process aborted.)
        note.doc()
            .observe_update_v1("panics", |_, _| panic!("a panic inside yrs"))
            .unwrap();
        assert_eq!(
            note.apply(&typing("more"), 1 << 16, 1 << 20),
            Err(DocumentError::Broken)
        );
        assert!(note.is_broken());
        // Given up: it refuses everything and is reloaded by its owner
        // (`Notes`); it never touches the old document again.
        assert_eq!(
            note.apply(&typing("again"), 1 << 16, 1 << 20),
            Err(DocumentError::Broken)
        );
        assert_eq!(
            note.apply_remote(&typing("again")),
            Err(DocumentError::Broken)
        );
        assert_eq!(
            note.sync_step1(&StateVector::default().encode_v1()),
            Err(DocumentError::Broken)
        );
        assert_eq!(
            note.replace_title("title", 1 << 16, 1 << 20).map(drop),
            Err(DocumentError::Broken)
        );
    }

    #[test]
    fn an_update_that_integrates_into_blocks_yrs_cannot_encode_is_refused() {
        // Found by the `yjs_integrate` fuzz target: yrs integrated it
        // without a panic, then panicked encoding the note at every sync.
        let poison = [
            3, 1, 1, 255, 220, 255, 191, 255, 255, 255, 201, 252, 243, 93, 1, 1, 3, 1, 1, 1, 1, 1,
            1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 17, 39, 1, 0, 1, 1, 0, 1, 17, 39, 1, 0,
        ];
        let mut note = NoteDocument::empty();
        assert!(note.apply(&poison, 1 << 16, 1 << 20).is_err());
        note.sync_step1(&StateVector::default().encode_v1())
            .unwrap();
        note.snapshot();
    }

    #[test]
    fn a_client_id_over_53_bits_is_refused_while_decoding() {
        // yrs keeps ids with their top 11 bits set: 2^53 and 0 would be one
        // client (the `yjs_integrate` target found updates that relied on
        // it to overlap blocks).
        let mut update = vec![1, 1];
        let mut client: u64 = 1 << 53;
        while client >= 0x80 {
            update.push((client as u8 & 0x7f) | 0x80);
            client >>= 7;
        }
        update.push(client as u8);
        // Clock 0, one GC block of length 1, an empty delete set.
        update.extend([0, 0, 1, 0]);
        assert_eq!(
            decode_update(&update).map(drop),
            Err(DocumentError::InvalidUpdate(
                "while reading, an unexpected value was found".into()
            ))
        );
    }

    /// lib0's varUint.
    fn var(mut n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out
    }

    /// An update of one client's blocks (each encoded whole) and an empty
    /// delete set.
    fn blocks_of(client: u64, clock: u64, blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut update = vec![1];
        update.extend(var(blocks.len() as u64));
        update.extend(var(client));
        update.extend(var(clock));
        for block in blocks {
            update.extend(block);
        }
        update.push(0);
        update
    }

    fn gc(len: u64) -> Vec<u8> {
        [vec![0], var(len)].concat()
    }

    fn skip(len: u64) -> Vec<u8> {
        [vec![10], var(len)].concat()
    }

    const UNEXPECTED: &str = "while reading, an unexpected value was found";

    #[test]
    fn clocks_beyond_2_31_are_refused_while_decoding() {
        // A client starting at 2^31, or at u32::MAX where a GC of length 2
        // wrapped to 0 in release builds of yrs and the note could no
        // longer be synced to a newcomer (found by `yjs_integrate`).
        for start in [1 << 31, u64::from(u32::MAX)] {
            assert_eq!(
                decode_update(&blocks_of(1, start, &[gc(2)])).map(drop),
                Err(DocumentError::InvalidUpdate(UNEXPECTED.into())),
                "starting at {start}"
            );
        }
        // Below the limit but running past it.
        assert_eq!(
            decode_update(&blocks_of(1, (1 << 31) - 1, &[gc(2)])).map(drop),
            Err(DocumentError::InvalidUpdate(
                "an update with clocks beyond 2^31".into()
            ))
        );
        // Right up to it is fine.
        assert!(decode_update(&blocks_of(1, (1 << 31) - 2, &[gc(2)])).is_ok());
    }

    #[test]
    fn lengths_that_could_wrap_a_clock_are_refused_while_decoding() {
        // A skip is no insertion, so nothing after decoding shows where it
        // took the clock: its length is counted as it is read.
        let wrapping_skip = blocks_of(1, 0, &[gc(1), skip(u64::from(u32::MAX)), gc(1)]);
        // Lengths each harmless, together past the limit.
        let adding_up = blocks_of(1, 0, &[gc(1 << 30), gc(1 << 30), gc(1)]);
        // Deleted content (an item) declares its length too: info 1, a
        // parent named by a key ("t").
        let deleted = |len: u64| [vec![1, 1, 1, b't'], var(len)].concat();
        let deleted_past = blocks_of(1, 0, &[deleted(1 << 30), deleted(1 << 30)]);
        for update in [wrapping_skip, adding_up, deleted_past] {
            assert_eq!(
                decode_update(&update).map(drop),
                Err(DocumentError::InvalidUpdate(UNEXPECTED.into()))
            );
        }
    }

    #[test]
    fn an_update_with_gaps_is_refused() {
        // What follows a skip could only be kept pending.
        assert_eq!(
            decode_update(&blocks_of(1, 0, &[gc(1), skip(5), gc(1)])).map(drop),
            Err(DocumentError::InvalidUpdate("an update with gaps".into()))
        );
    }

    fn peer(client: u64) -> Doc {
        Doc::with_options(Options {
            client_id: ClientID::new(client),
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        })
    }

    fn full_state(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn an_update_overlapping_what_the_note_has_integrates_what_is_new() {
        // yrs trims such an update by splitting the block that straddles
        // the note's clock, and reads the freed left half while
        // integrating the right (found by `yjs_integrate` under
        // AddressSanitizer). A peer's full state is such an update.
        let ada = peer(7);
        let first = edit(&ada, |txn, body| body.insert(txn, 0, "abc"));
        edit(&ada, |txn, body| body.insert(txn, 3, "def"));
        let mut note = NoteDocument::empty();
        note.apply(&first, 1 << 16, 1 << 20).unwrap();
        // One item, "abcdef", of which the note has the first half.
        note.apply(&full_state(&ada), 1 << 16, 1 << 20).unwrap();
        assert_eq!(note.body(), "abcdef");
        // Everything known: nothing to integrate, accepted all the same.
        note.apply(&full_state(&ada), 1 << 16, 1 << 20).unwrap();
        let (answer, _) = note
            .sync_step1(&StateVector::default().encode_v1())
            .unwrap();
        let newcomer = new_doc();
        newcomer
            .transact_mut()
            .apply_update(Update::decode_v1(&answer).unwrap())
            .unwrap();
        assert_eq!(
            newcomer
                .get_or_insert_text(BODY)
                .get_string(&newcomer.transact()),
            "abcdef"
        );
    }

    #[test]
    fn an_update_yrs_would_keep_pending_is_refused_and_nothing_stays_pending() {
        // Client 1's "abc" at clock 0 with its origin at (1, 0), itself:
        // yrs keeps it pending, and retrying it once client 1's clock 0
        // arrives would split it (the use-after-free of `without_known`).
        let self_origin = [1, 1, 1, 0, 0x84, 1, 0, 3, b'a', b'b', b'c', 0];
        let mut note = NoteDocument::empty();
        assert_eq!(
            note.apply(&self_origin, 1 << 16, 1 << 20),
            Err(lacking_edits())
        );
        assert_eq!(note.body(), "");
        assert!(!note.drop_pending(), "nothing stays pending");
        note.apply(&blocks_of(1, 0, &[gc(1)]), 1 << 16, 1 << 20)
            .unwrap();
        assert!(!note.drop_pending());
        note.sync_step1(&StateVector::default().encode_v1())
            .unwrap();
    }

    #[test]
    fn an_update_yrs_refuses_halfway_has_the_note_reloaded() {
        // Found by `yjs_integrate`: yrs integrates the first blocks, then
        // refuses an item whose parent is a string. The document holds
        // what is neither stored nor relayed: given up, to be reloaded.
        let halfway = [
            1, 3, 3, 0, 4, 1, 4, 98, 111, 100, 121, 3, 3, 1, 0, 131, 3, 0, 3, 1, 122, 2, 3, 0, 3,
            0, 0, 0, 0, 0, 1, 0, 0, 31, 49, 31,
        ];
        let mut note = NoteDocument::empty();
        assert_eq!(
            note.apply(&halfway, 1 << 16, 1 << 20),
            Err(DocumentError::Broken)
        );
        assert!(note.is_broken());
        assert_eq!(note.body(), "");
    }

    #[test]
    fn an_update_depending_on_edits_the_note_lacks_is_refused_unchanged() {
        // yrs would keep it pending and trim it again once they arrive:
        // the splitting above.
        let ada = peer(7);
        let first = edit(&ada, |txn, body| body.insert(txn, 0, "abc"));
        // Ada's own next edit, and Bob's after "abc" (another client).
        let next = edit(&ada, |txn, body| body.insert(txn, 3, "def"));
        let bob = peer(8);
        bob.transact_mut()
            .apply_update(Update::decode_v1(&first).unwrap())
            .unwrap();
        let bobs = edit(&bob, |txn, body| body.insert(txn, 3, "!"));
        let mut note = NoteDocument::empty();
        for update in [&next, &bobs] {
            assert_eq!(
                note.apply(update, 1 << 16, 1 << 20),
                Err(DocumentError::InvalidUpdate(
                    "an update that depends on edits the note lacks".into()
                ))
            );
            assert_eq!(note.body(), "");
        }
        for update in [&first, &bobs, &next] {
            note.apply(update, 1 << 16, 1 << 20).unwrap();
        }
        // Both inserted after "c": the CRDT orders them by client.
        assert_eq!(note.body(), "abcdef!");
        // Deleting what the note lacks (a delete set alone: client 9's
        // clocks 0..2) is refused too; yrs would keep it pending.
        let deletion = [0, 1, 9, 1, 0, 2];
        assert_eq!(
            note.apply(&deletion, 1 << 16, 1 << 20),
            Err(DocumentError::InvalidUpdate(
                "an update that depends on edits the note lacks".into()
            ))
        );
        // Client 7's first two characters, which it has.
        note.apply(&[0, 1, 7, 1, 0, 2], 1 << 16, 1 << 20).unwrap();
        assert_eq!(note.body(), "cdef!");
    }

    #[test]
    fn deletions_and_origins_past_the_limit_are_refused_while_decoding() {
        // Delete set: one client, one range starting at 2^31 - 1 whose
        // length would wrap its end.
        let mut ranges = vec![0, 1, 1, 1];
        ranges.extend(var((1 << 31) - 1));
        ranges.extend(var(u64::from(u32::MAX)));
        // An item whose origin is past the limit: info 0x84 (origin,
        // string content), origin (2, 2^31), content "a".
        let mut origin = vec![0x84, 2];
        origin.extend(var(1 << 31));
        origin.extend([1, b'a']);
        for update in [ranges, blocks_of(2, 0, &[origin])] {
            assert_eq!(
                decode_update(&update).map(drop),
                Err(DocumentError::InvalidUpdate(UNEXPECTED.into()))
            );
        }
    }

    #[test]
    fn the_reproducer_that_broke_syncs_for_newcomers_is_refused() {
        let input = include_bytes!("../../../fuzz/seeds/yjs_integrate/unsyncable-for-a-newcomer");
        let mut note = NoteDocument::empty();
        assert!(note.apply(input, 1 << 16, 1 << 20).is_err());
        note.sync_step1(&StateVector::default().encode_v1())
            .unwrap();
    }
}
