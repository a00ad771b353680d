//! Notes across nodes: every node that has a note loaded follows its
//! pub/sub channel `d:{note}`, where each node announces its editors'
//! updates, awareness and the note's deletion. The store (Postgres) is
//! shared; the node that applies an edit stores it.
//!
//! Messages are `{U|A|D}\n{node}\n{bytes}`; a node ignores its own.

use tokio::sync::oneshot;

use super::{Cluster, follower, wire};
use crate::notes::{BoxFuture, NoteChange, NoteRelay};

/// [`NoteRelay`] over this node's Redis connections.
#[derive(Debug, Clone)]
pub struct ClusterNotes {
    cluster: Cluster,
}

impl ClusterNotes {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }
}

impl NoteRelay for ClusterNotes {
    fn follow(&self, note: &str) -> BoxFuture<'static, bool> {
        let (done, followed) = oneshot::channel();
        let sent = self
            .cluster
            .shared
            .follow
            .send(follower::Request::FollowNote {
                note: note.to_owned(),
                done,
            })
            .is_ok();
        Box::pin(async move { sent && followed.await.unwrap_or(false) })
    }

    fn unfollow(&self, note: &str) {
        let _ = self
            .cluster
            .shared
            .follow
            .send(follower::Request::UnfollowNote {
                note: note.to_owned(),
            });
    }

    fn send(&self, note: &str, change: NoteChange) {
        let payload = encode(self.cluster.node(), &change);
        self.cluster.publish_raw(wire::note_channel(note), payload);
    }
}

fn encode(node: &str, change: &NoteChange) -> Vec<u8> {
    let (kind, data): (&[u8], &[u8]) = match change {
        NoteChange::Update(data) => (b"U", data),
        NoteChange::Awareness(data) => (b"A", data),
        NoteChange::Deleted => (b"D", &[]),
    };
    let mut payload = Vec::with_capacity(node.len() + data.len() + 4);
    payload.extend_from_slice(kind);
    payload.push(b'\n');
    payload.extend_from_slice(node.as_bytes());
    payload.push(b'\n');
    payload.extend_from_slice(data);
    payload
}

/// A note message: the node it came from, and the change.
pub fn decode(payload: &[u8]) -> Option<(&str, NoteChange)> {
    let mut parts = payload.splitn(3, |&byte| byte == b'\n');
    let kind = parts.next()?;
    let node = std::str::from_utf8(parts.next()?).ok()?;
    let data = parts.next()?;
    let change = match kind {
        b"U" => NoteChange::Update(data.to_vec()),
        b"A" => NoteChange::Awareness(data.to_vec()),
        b"D" => NoteChange::Deleted,
        _ => return None,
    };
    Some((node, change))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_messages_carry_their_node_and_any_bytes() {
        for change in [
            NoteChange::Update(vec![0, b'\n', 255, 1]),
            NoteChange::Awareness(b"\n\n".to_vec()),
            NoteChange::Deleted,
        ] {
            let payload = encode("a1b2", &change);
            assert_eq!(decode(&payload), Some(("a1b2", change)));
        }
        assert_eq!(decode(b"X\nnode\n"), None);
        assert_eq!(decode(b"U"), None);
    }
}
