//! What Rookery keeps in Redis and sends through it: key names, the
//! pub/sub messages every node follows, and the stream entries.
//!
//! Keys (prefix `rookery:`): `s:{channel}` the stream (entry id
//! `{offset}-0`, field `p`: the publication's JSON without its position),
//! `m:{channel}` its epoch and top offset, `i:{channel}\n{key}` an
//! idempotency key's position, `p:{channel}` the presence leases (lease ->
//! member JSON), `leases` every lease's expiry (`{channel}\n{lease}`),
//! `v:{channel}` a latest-value channel's positions (user -> shared
//! location JSON), `values` every position's expiry (`{channel}\n{user}`).
//!
//! Pub/sub channel `c:{channel}` carries, as text:
//! `P\n{epoch}\n{offset}\n{publication JSON}` (epoch empty and offset 0
//! without history), `J\n{lease}\n{member JSON}`, `L\n{lease}`,
//! `V\n{shared location JSON}`, `G\n{stopped|expired}\n{user}`.

use rookery_common::{
    ChannelName, GoneReason, Publication, SharedLocation, StreamPosition, UserId, UserInfo,
};

use crate::hub::ClusterEvent;

pub const PREFIX: &str = "rookery:";

pub fn stream_key(channel: &ChannelName) -> String {
    format!("{PREFIX}s:{channel}")
}

pub fn meta_key(channel: &ChannelName) -> String {
    format!("{PREFIX}m:{channel}")
}

pub fn idempotency_key(channel: &ChannelName, key: &str) -> String {
    format!("{PREFIX}i:{channel}\n{key}")
}

pub fn presence_key(channel: &ChannelName) -> String {
    format!("{PREFIX}p:{channel}")
}

pub fn leases_key() -> String {
    format!("{PREFIX}leases")
}

pub fn positions_key(channel: &ChannelName) -> String {
    format!("{PREFIX}v:{channel}")
}

pub fn position_expiries_key() -> String {
    format!("{PREFIX}values")
}

pub fn pubsub_channel(channel: &ChannelName) -> String {
    format!("{PREFIX}c:{channel}")
}

/// A note's pub/sub channel (see `cluster::notes`).
pub fn note_channel(note: &str) -> String {
    format!("{PREFIX}d:{note}")
}

/// The note a pub/sub message came on, if it is a note's channel.
pub fn note_of(pubsub_channel: &str) -> Option<&str> {
    pubsub_channel.strip_prefix(PREFIX)?.strip_prefix("d:")
}

/// The Rookery channel a pub/sub message came on.
pub fn channel_of(pubsub_channel: &str) -> Option<ChannelName> {
    let name = pubsub_channel.strip_prefix(PREFIX)?.strip_prefix("c:")?;
    ChannelName::parse(name).ok()
}

/// A pub/sub message; `None` for one this build does not understand.
pub fn decode_event(payload: &[u8]) -> Option<ClusterEvent> {
    let text = std::str::from_utf8(payload).ok()?;
    let (kind, rest) = text.split_once('\n').unwrap_or((text, ""));
    match kind {
        "P" => {
            let (epoch, rest) = rest.split_once('\n')?;
            let (offset, json) = rest.split_once('\n')?;
            let publication = publication(json, epoch, offset.parse().ok()?)?;
            Some(ClusterEvent::Publication(publication))
        }
        "J" => {
            let (lease, member) = rest.split_once('\n')?;
            Some(ClusterEvent::LeaseJoined {
                lease: lease.to_owned(),
                member: serde_json::from_str(member).ok()?,
            })
        }
        "L" if !rest.is_empty() => Some(ClusterEvent::LeaseLeft {
            lease: rest.to_owned(),
        }),
        "V" => Some(ClusterEvent::Located(serde_json::from_str(rest).ok()?)),
        "G" => {
            let (reason, user) = rest.split_once('\n')?;
            let reason = match reason {
                "stopped" => GoneReason::Stopped,
                "expired" => GoneReason::Expired,
                _ => return None,
            };
            (!user.is_empty()).then(|| ClusterEvent::Gone {
                user: UserId(user.to_owned()),
                reason,
            })
        }
        _ => None,
    }
}

/// A publication as kept (JSON without position), given its position;
/// offset 0 means the channel keeps no history.
pub fn publication(json: &str, epoch: &str, offset: u64) -> Option<Publication> {
    let mut publication: Publication = serde_json::from_str(json).ok()?;
    publication.position = (offset > 0).then(|| StreamPosition {
        epoch: epoch.to_owned(),
        offset,
    });
    Some(publication)
}

/// The JSON a publication is kept and sent as (its position is Redis's).
pub fn publication_json(publication: &Publication) -> String {
    let mut unstamped = publication.clone();
    unstamped.position = None;
    serde_json::to_string(&unstamped).expect("publications serialise")
}

/// A position from a script's "epoch\noffset" stamp; `None` without
/// history.
pub fn parse_stamp(stamp: &str) -> Option<StreamPosition> {
    let (epoch, offset) = stamp.split_once('\n')?;
    let offset: u64 = offset.parse().ok()?;
    (offset > 0).then(|| StreamPosition {
        epoch: epoch.to_owned(),
        offset,
    })
}

/// One stream entry as XRANGE returns it: (id, [field, value, ...]).
pub type StreamEntry = (String, Vec<String>);

/// Publications from stream entries (any order in, the same order out);
/// entries this build cannot read are skipped.
pub fn publications(epoch: &str, entries: &[StreamEntry]) -> Vec<Publication> {
    entries
        .iter()
        .filter_map(|(id, fields)| {
            let offset: u64 = id.split_once('-')?.0.parse().ok()?;
            let json = fields
                .chunks(2)
                .find(|pair| pair[0] == "p")
                .and_then(|pair| pair.get(1))?;
            publication(json, epoch, offset)
        })
        .collect()
}

/// Leases from a flat [lease, member JSON, ...] list.
pub fn leases(flat: &[String]) -> Vec<(String, UserInfo)> {
    flat.chunks(2)
        .filter_map(|pair| {
            let member = serde_json::from_str(pair.get(1)?).ok()?;
            Some((pair[0].clone(), member))
        })
        .collect()
}

/// Positions from their JSON; ones this build cannot read are skipped.
pub fn locations(all: &[String]) -> Vec<SharedLocation> {
    all.iter()
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_round_trip_through_their_text_form() {
        let sent = Publication {
            position: Some(StreamPosition {
                epoch: "ab12".into(),
                offset: 7,
            }),
            data: json!({"text": "line\nbreak"}),
            sender: None,
            time: 5,
        };
        let text = format!("P\nab12\n7\n{}", publication_json(&sent));
        assert_eq!(
            decode_event(text.as_bytes()),
            Some(ClusterEvent::Publication(sent.clone()))
        );
        let unstamped = format!("P\n\n0\n{}", publication_json(&sent));
        let Some(ClusterEvent::Publication(received)) = decode_event(unstamped.as_bytes()) else {
            panic!("not a publication");
        };
        assert_eq!(received.position, None);

        let ada = UserInfo::new(UserId("ada".into()), "Ada".into());
        let joined = format!("J\nn1.4\n{}", serde_json::to_string(&ada).unwrap());
        assert_eq!(
            decode_event(joined.as_bytes()),
            Some(ClusterEvent::LeaseJoined {
                lease: "n1.4".into(),
                member: ada
            })
        );
        assert_eq!(
            decode_event(b"L\nn1.4"),
            Some(ClusterEvent::LeaseLeft {
                lease: "n1.4".into()
            })
        );
        assert_eq!(
            decode_event(b"G\nexpired\nada"),
            Some(ClusterEvent::Gone {
                user: UserId("ada".into()),
                reason: GoneReason::Expired
            })
        );
        for garbage in [&b"G\nlost\nada"[..], b"G\nstopped\n", b"V\n{}"] {
            assert_eq!(decode_event(garbage), None);
        }
        for garbage in [
            &b"X\n1"[..],
            b"L\n",
            b"P\ne\nseven\n{}",
            b"J\nn1\nnot json",
            b"\xff",
        ] {
            assert_eq!(decode_event(garbage), None);
        }
    }

    #[test]
    fn pubsub_channels_name_their_rookery_channel() {
        let channel = ChannelName::parse("chat:lobby").unwrap();
        assert_eq!(channel_of(&pubsub_channel(&channel)), Some(channel));
        assert_eq!(channel_of("other:c:chat:lobby"), None);
        assert_eq!(parse_stamp("e\n3").unwrap().offset, 3);
        assert_eq!(parse_stamp("\n0"), None);
    }
}
