//! Who else is in a note, from Yjs awareness updates (y-protocols' format,
//! so standard Yjs editors appear too), and this editor's own state.

use std::collections::HashMap;
use std::sync::Arc;

use rookery_common::notes::{PeerCursor, PeerState};
use yrs::ClientID;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;

/// y-protocols drops a state not renewed for this long; editors renew
/// theirs at half of it.
pub const OUTDATED_AFTER_MS: f64 = 30_000.0;
pub const RENEW_EVERY_MS: u32 = 15_000;

/// Another editor, as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub client: u64,
    pub name: String,
    pub color: String,
    pub cursor: Option<PeerCursor>,
}

#[derive(Debug)]
struct Entry {
    clock: u32,
    state: Option<PeerState>,
    seen_ms: f64,
}

/// Everyone's awareness state but ours.
#[derive(Debug)]
pub struct Peers {
    own_client: u64,
    entries: HashMap<u64, Entry>,
}

impl Peers {
    pub fn new(own_client: u64) -> Self {
        Self {
            own_client,
            entries: HashMap::new(),
        }
    }

    /// Applies an encoded awareness update with y-protocols' rule: a
    /// newer clock wins, and a removal (`null`) wins at the same clock.
    pub fn apply(&mut self, update: &[u8], now_ms: f64) -> Result<(), String> {
        let update = AwarenessUpdate::decode_v1(update).map_err(|e| e.to_string())?;
        for (client, entry) in update.clients {
            let client = client.get();
            if client == self.own_client {
                continue;
            }
            let state = parse_state(&entry.json);
            let accept = match self.entries.get(&client) {
                None => true,
                Some(current) => {
                    current.clock < entry.clock
                        || (current.clock == entry.clock
                            && state.is_none()
                            && current.state.is_some())
                }
            };
            if accept {
                self.entries.insert(
                    client,
                    Entry {
                        clock: entry.clock,
                        state,
                        seen_ms: now_ms,
                    },
                );
            }
        }
        Ok(())
    }

    /// Forgets states nobody renewed in time (their editor vanished without
    /// a goodbye). Returns whether any went.
    pub fn expire(&mut self, now_ms: f64) -> bool {
        let before = self.entries.len();
        self.entries
            .retain(|_, entry| now_ms - entry.seen_ms < OUTDATED_AFTER_MS);
        self.entries.len() != before
    }

    /// Forgets everyone (the connection dropped; the server sends the
    /// current states again on rejoining).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The others present, by name.
    pub fn present(&self) -> Vec<Peer> {
        let mut peers: Vec<Peer> = self
            .entries
            .iter()
            .filter_map(|(client, entry)| {
                let state = entry.state.as_ref()?;
                Some(Peer {
                    client: *client,
                    name: if state.user.name.trim().is_empty() {
                        "Anonymous".to_owned()
                    } else {
                        state.user.name.clone()
                    },
                    color: if is_css_hex_color(&state.user.color) {
                        state.user.color.clone()
                    } else {
                        "#777777".to_owned()
                    },
                    cursor: state.cursor.clone(),
                })
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name).then(a.client.cmp(&b.client)));
        peers
    }
}

/// `null` (or anything unreadable as a state) means the peer is gone;
/// foreign fields are ignored.
fn parse_state(json: &str) -> Option<PeerState> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    if value.is_null() {
        return None;
    }
    Some(serde_json::from_value(value).unwrap_or_default())
}

/// Colours come from other clients and end up in a style attribute: only a
/// plain hex colour is let through.
fn is_css_hex_color(color: &str) -> bool {
    let hex = color.strip_prefix('#').unwrap_or("");
    matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// This editor's awareness clock.
#[derive(Debug)]
pub struct OwnAwareness {
    client: u64,
    clock: u32,
}

impl OwnAwareness {
    pub fn new(client: u64) -> Self {
        Self { client, clock: 0 }
    }

    /// Joined again on a new connection: the server announced our old
    /// session's departure with our clock plus one, so the next state must
    /// go past it or peers would keep us removed (y-protocols' rule).
    pub fn rejoined(&mut self) {
        self.clock += 1;
    }

    /// The next awareness update announcing `state` (`None`: leaving).
    pub fn encode(&mut self, state: Option<&PeerState>) -> Vec<u8> {
        self.clock += 1;
        let json = state.map_or_else(
            || "null".to_owned(),
            |state| serde_json::to_string(state).unwrap_or_else(|_| "null".to_owned()),
        );
        let entry = AwarenessUpdateEntry {
            clock: self.clock,
            json: Arc::from(json),
        };
        AwarenessUpdate {
            clients: HashMap::from([(ClientID::new(self.client), entry)]),
        }
        .encode_v1()
    }
}

#[cfg(test)]
mod tests {
    use rookery_common::Bytes;
    use rookery_common::notes::PeerUser;

    use super::*;

    fn state(name: &str, color: &str) -> PeerState {
        PeerState {
            user: PeerUser {
                name: name.into(),
                color: color.into(),
            },
            cursor: Some(PeerCursor {
                anchor: Bytes(vec![1]),
                head: Bytes(vec![2]),
            }),
        }
    }

    #[test]
    fn newer_clocks_win_and_null_removes() {
        let mut bob = OwnAwareness::new(2);
        let mut peers = Peers::new(1);
        let first = bob.encode(Some(&state("Bob", "#00ff00")));
        let second = bob.encode(Some(&state("Bobby", "#00ff00")));
        peers.apply(&second, 0.0).unwrap();
        // An older update arriving late changes nothing.
        peers.apply(&first, 0.0).unwrap();
        assert_eq!(peers.present()[0].name, "Bobby");
        assert_eq!(peers.present()[0].cursor.as_ref().unwrap().head.0, vec![2]);
        peers.apply(&bob.encode(None), 0.0).unwrap();
        assert!(peers.present().is_empty());
    }

    #[test]
    fn a_rejoining_editor_beats_its_own_removal() {
        let mut bob = OwnAwareness::new(2);
        let mut peers = Peers::new(1);
        let clock_1 = bob.encode(Some(&state("Bob", "#00f")));
        peers.apply(&clock_1, 0.0).unwrap();
        // The server removes Bob's old session at clock 2...
        let removal = AwarenessUpdate {
            clients: HashMap::from([(
                ClientID::new(2),
                AwarenessUpdateEntry {
                    clock: 2,
                    json: Arc::from("null"),
                },
            )]),
        }
        .encode_v1();
        // ...while Bob's new session announces itself.
        bob.rejoined();
        let back = bob.encode(Some(&state("Bob", "#00f")));
        peers.apply(&removal, 0.0).unwrap();
        peers.apply(&back, 0.0).unwrap();
        assert_eq!(peers.present().len(), 1);
    }

    #[test]
    fn own_state_is_not_a_peer_and_garbage_is_refused() {
        let mut me = OwnAwareness::new(1);
        let mut peers = Peers::new(1);
        peers
            .apply(&me.encode(Some(&state("Me", "#123456"))), 0.0)
            .unwrap();
        assert!(peers.present().is_empty());
        assert!(peers.apply(&[0xff, 0xff], 0.0).is_err());
    }

    #[test]
    fn foreign_states_are_shown_safely() {
        let mut peers = Peers::new(1);
        let update = AwarenessUpdate {
            clients: HashMap::from([(
                ClientID::new(9),
                AwarenessUpdateEntry {
                    clock: 1,
                    json: Arc::from(
                        r#"{"user":{"name":"","color":"red;background:url(x)"},"x":1}"#,
                    ),
                },
            )]),
        }
        .encode_v1();
        peers.apply(&update, 0.0).unwrap();
        let peer = &peers.present()[0];
        assert_eq!(peer.name, "Anonymous");
        assert_eq!(peer.color, "#777777");
    }

    #[test]
    fn silent_peers_expire() {
        let mut bob = OwnAwareness::new(2);
        let mut peers = Peers::new(1);
        peers
            .apply(&bob.encode(Some(&state("Bob", "#00f"))), 1_000.0)
            .unwrap();
        assert!(!peers.expire(1_000.0 + OUTDATED_AFTER_MS - 1.0));
        assert!(peers.expire(1_000.0 + OUTDATED_AFTER_MS));
        assert!(peers.present().is_empty());
    }
}
