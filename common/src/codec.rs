//! The codecs of protocol v1 (JSON text frames, or MessagePack binary
//! frames), and the classification of bad input into the documented error
//! codes.
//!
//! MessagePack (`rookery.v1.bin`) carries the same messages as JSON, field
//! for field: maps with the same names, so the one protocol is documented
//! once. What it saves is the text: numbers and lengths in binary, and Yjs
//! updates as raw `bin` instead of base64 (a third smaller, and no
//! encoding on either side).

use serde::Deserialize;

use crate::channel::ChannelName;
use crate::codes::ErrorCode;
use crate::protocol::{ClientMessage, CommandId, ServerMessage};
use crate::{SUBPROTOCOL_BIN, SUBPROTOCOL_JSON};

/// Why a frame could not be read as a command. Carries the command's `id`
/// when the frame was JSON with a numeric `id`, so even a bad command gets
/// its one reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub id: Option<CommandId>,
    pub code: ErrorCode,
    pub message: String,
}

/// How a connection's messages are written: chosen by the WebSocket
/// subprotocol. A client that offers none speaks JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// `rookery.v1.json`: a JSON object per text frame.
    #[default]
    Json,
    /// `rookery.v1.bin`: a MessagePack map per binary frame.
    MessagePack,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Json, Encoding::MessagePack];

    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => SUBPROTOCOL_JSON,
            Encoding::MessagePack => SUBPROTOCOL_BIN,
        }
    }

    pub fn from_subprotocol(name: &str) -> Option<Encoding> {
        Encoding::ALL
            .into_iter()
            .find(|encoding| encoding.subprotocol() == name)
    }

    /// Whether frames are binary (else text).
    pub fn is_binary(self) -> bool {
        self == Encoding::MessagePack
    }
}

pub fn encode(message: &ServerMessage) -> String {
    // Serializing these types cannot fail: every map key is a string and no
    // value is a float that JSON cannot hold (data is already a JSON value).
    serde_json::to_string(message).expect("server messages serialize")
}

pub fn encode_client(message: &ClientMessage) -> String {
    serde_json::to_string(message).expect("client messages serialize")
}

pub fn decode_server(text: &str) -> Result<ServerMessage, serde_json::Error> {
    serde_json::from_str(text)
}

pub fn decode_client(text: &str) -> Result<ClientMessage, DecodeError> {
    serde_json::from_str(text)
        .map_err(|error| classify(serde_json::from_str(text).ok(), "malformed json", &error))
}

/// A server message as MessagePack, appended to `out` (the server writes
/// it straight into a frame's buffer).
pub fn encode_bin_into(message: &ServerMessage, out: &mut Vec<u8>) {
    // As `encode`: these types always serialize, and a Vec never fails.
    rmp_serde::encode::write_named(out, message).expect("server messages serialize");
}

pub fn encode_bin(message: &ServerMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_bin_into(message, &mut out);
    out
}

pub fn encode_client_bin(message: &ClientMessage) -> Vec<u8> {
    rmp_serde::to_vec_named(message).expect("client messages serialize")
}

pub fn decode_server_bin(bytes: &[u8]) -> Result<ServerMessage, rmp_serde::decode::Error> {
    from_msgpack(bytes)
}

/// As [`decode_client`], for a MessagePack frame: the same classes of
/// error with the same codes.
pub fn decode_client_bin(bytes: &[u8]) -> Result<ClientMessage, DecodeError> {
    from_msgpack(bytes)
        .map_err(|error| classify(from_msgpack(bytes).ok(), "malformed msgpack", &error))
}

/// How deep values may nest: serde_json's own limit. MessagePack must not
/// accept what JSON refuses: a publication is stored and passed between
/// nodes as JSON, and data nested deeper would be published here and lost
/// there. It also bounds the recursion a frame can cause.
const MAX_DEPTH: usize = 128;

/// One whole MessagePack value: nested at most [`MAX_DEPTH`] deep, and
/// nothing after it (as JSON refuses trailing characters; a second command
/// in the frame would otherwise be ignored without a word).
fn from_msgpack<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut deserializer = rmp_serde::Deserializer::new(std::io::Cursor::new(bytes));
    deserializer.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut deserializer)?;
    if deserializer.position() != bytes.len() as u64 {
        return Err(serde::de::Error::custom("trailing bytes after the message"));
    }
    Ok(value)
}

/// Only read on the error path: the parts of a frame needed to say what was
/// wrong with it.
#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
    channel: Option<serde_json::Value>,
}

/// `envelope` is the frame read as an [`Envelope`], if it was a map at all.
fn classify(
    envelope: Option<Envelope>,
    malformed: &str,
    error: &dyn std::fmt::Display,
) -> DecodeError {
    let Some(envelope) = envelope else {
        return DecodeError {
            id: None,
            code: ErrorCode::BadRequest,
            message: format!("{malformed}: {error}"),
        };
    };
    let id = envelope
        .id
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .map(CommandId);
    let kind = match envelope.kind {
        Some(serde_json::Value::String(kind)) => kind,
        Some(_) => return bad_request(id, "`type` must be a string".into()),
        None => return bad_request(id, "missing `type`".into()),
    };
    if !ClientMessage::KINDS.contains(&kind.as_str()) {
        return DecodeError {
            id,
            code: ErrorCode::UnknownCommand,
            message: format!("unknown command type {kind:?}"),
        };
    }
    if let Some(serde_json::Value::String(channel)) = &envelope.channel
        && let Err(reason) = ChannelName::parse(channel)
    {
        return DecodeError {
            id,
            code: ErrorCode::InvalidChannel,
            message: format!("invalid channel {:?}: {reason}", truncate(channel, 80)),
        };
    }
    bad_request(id, format!("invalid {kind}: {error}"))
}

fn bad_request(id: Option<CommandId>, message: String) -> DecodeError {
    DecodeError {
        id,
        code: ErrorCode::BadRequest,
        message,
    }
}

/// Shortens what a client sent before echoing it in an error.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::codes::CloseCode;
    use crate::location::{GoneReason, Location, SharedLocation};
    use crate::protocol::{ConnectionId, Publication, StreamPosition, Token};
    use crate::user::{UserId, UserInfo};

    fn check(text: &str, expect_code: ErrorCode, expect_id: Option<u64>) {
        let error = decode_client(text).expect_err(text);
        assert_eq!(error.code, expect_code, "{text}: {}", error.message);
        assert_eq!(error.id, expect_id.map(CommandId), "{text}");
    }

    #[test]
    fn bad_frames_get_their_codes() {
        check("not json", ErrorCode::BadRequest, None);
        check("{\"type\":\"publish\"", ErrorCode::BadRequest, None);
        check("[1,2]", ErrorCode::BadRequest, None);
        check("{\"id\":4}", ErrorCode::BadRequest, Some(4));
        check("{\"type\":7,\"id\":4}", ErrorCode::BadRequest, Some(4));
        check(
            "{\"type\":\"teleport\",\"id\":9}",
            ErrorCode::UnknownCommand,
            Some(9),
        );
        check(
            "{\"type\":\"subscribe\",\"id\":2,\"channel\":\"no namespace\"}",
            ErrorCode::InvalidChannel,
            Some(2),
        );
        check(
            "{\"type\":\"subscribe\",\"id\":3,\"channel\":\"chat:x\",\"sinse\":1}",
            ErrorCode::BadRequest,
            Some(3),
        );
        check(
            "{\"type\":\"publish\",\"id\":5,\"channel\":\"chat:x\"}",
            ErrorCode::BadRequest,
            Some(5),
        );
        check(
            "{\"type\":\"subscribe\",\"id\":6,\"channel\":\"chat:x\",\"since\":{\"epoch\":\"e\",\"offset\":-1}}",
            ErrorCode::BadRequest,
            Some(6),
        );
    }

    #[test]
    fn commands_read_like_the_protocol() {
        let message = decode_client(
            r#"{"type":"subscribe","id":1,"channel":"chat:lobby","since":{"epoch":"ab","offset":7}}"#,
        )
        .unwrap();
        assert_eq!(
            message,
            ClientMessage::Subscribe {
                id: Some(CommandId(1)),
                channel: ChannelName::parse("chat:lobby").unwrap(),
                since: Some(StreamPosition {
                    epoch: "ab".into(),
                    offset: 7
                }),
                rewind: None,
                token: None,
            }
        );
        assert_eq!(
            decode_client(r#"{"type":"pong"}"#).unwrap(),
            ClientMessage::Pong {}
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let message =
            decode_client(r#"{"type":"connect","token":"secret.jwt.value","name":"a"}"#).unwrap();
        assert!(!format!("{message:?}").contains("secret"));
    }

    #[test]
    fn publication_push_is_flat() {
        let push = ServerMessage::Publication {
            channel: ChannelName::parse("chat:lobby").unwrap(),
            publication: Publication {
                position: Some(StreamPosition {
                    epoch: "e1".into(),
                    offset: 3,
                }),
                data: json!({"text": "hi"}),
                sender: None,
                time: 5,
            },
        };
        let value: serde_json::Value = serde_json::from_str(&encode(&push)).unwrap();
        assert_eq!(
            value,
            json!({"type":"publication","channel":"chat:lobby","position":{"epoch":"e1","offset":3},"data":{"text":"hi"},"time":5})
        );
    }

    fn channel() -> impl Strategy<Value = ChannelName> {
        ("[a-z][a-z0-9_-]{0,8}", "[A-Za-z0-9_.@-]{1,12}")
            .prop_map(|(namespace, name)| ChannelName::new(&namespace, &name).unwrap())
    }

    fn id() -> impl Strategy<Value = Option<CommandId>> {
        proptest::option::of(any::<u64>().prop_map(CommandId))
    }

    fn position() -> impl Strategy<Value = StreamPosition> {
        ("[a-z0-9]{0,8}", any::<u64>()).prop_map(|(epoch, offset)| StreamPosition { epoch, offset })
    }

    fn data() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn user() -> impl Strategy<Value = UserInfo> {
        ("[a-z0-9-]{1,10}", ".{1,10}").prop_map(|(user, name)| UserInfo::new(UserId(user), name))
    }

    fn location() -> impl Strategy<Value = Location> {
        (
            -90.0..90.0f64,
            -180.0..180.0f64,
            0.0..5000.0f64,
            any::<u64>(),
            proptest::option::of(0.0..50.0f64),
            proptest::option::of(0.0..360.0f64),
        )
            .prop_map(|(lat, lon, accuracy, time, speed, heading)| Location {
                lat,
                lon,
                accuracy,
                time,
                speed,
                heading,
            })
    }

    fn shared() -> impl Strategy<Value = SharedLocation> {
        (user(), location(), any::<bool>()).prop_map(|(member, location, approximate)| {
            SharedLocation {
                member,
                location,
                approximate,
            }
        })
    }

    fn bytes() -> impl Strategy<Value = crate::bytes::Bytes> {
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(crate::bytes::Bytes)
    }

    fn members() -> impl Strategy<Value = Vec<UserInfo>> {
        proptest::collection::vec(user(), 0..3)
    }

    fn publication() -> impl Strategy<Value = Publication> {
        (
            proptest::option::of(position()),
            data(),
            proptest::option::of(user()),
            any::<u64>(),
        )
            .prop_map(|(position, data, sender, time)| Publication {
                position,
                data,
                sender,
                time,
            })
    }

    fn client_message() -> impl Strategy<Value = ClientMessage> {
        let text = proptest::option::of(".{0,16}");
        prop_oneof![
            (id(), text.clone(), text.clone(), text).prop_map(|(id, token, name, anonymous_id)| {
                ClientMessage::Connect {
                    id,
                    token: token.map(Token),
                    name,
                    anonymous_id,
                }
            }),
            (id(), ".{0,16}").prop_map(|(id, token)| ClientMessage::Refresh {
                id,
                token: Token(token)
            }),
            (
                id(),
                channel(),
                proptest::option::of(position()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(".{0,8}")
            )
                .prop_map(|(id, channel, since, rewind, token)| {
                    ClientMessage::Subscribe {
                        id,
                        channel,
                        since,
                        rewind,
                        token: token.map(Token),
                    }
                }),
            (id(), channel()).prop_map(|(id, channel)| ClientMessage::Unsubscribe { id, channel }),
            (
                id(),
                channel(),
                data(),
                proptest::option::of("[a-z0-9]{1,8}")
            )
                .prop_map(|(id, channel, data, idempotency_key)| {
                    ClientMessage::Publish {
                        id,
                        channel,
                        data,
                        idempotency_key,
                    }
                }),
            (id(), channel()).prop_map(|(id, channel)| ClientMessage::Presence { id, channel }),
            (
                id(),
                channel(),
                proptest::option::of(position()),
                proptest::option::of(any::<u32>())
            )
                .prop_map(|(id, channel, since, limit)| ClientMessage::History {
                    id,
                    channel,
                    since,
                    limit,
                }),
            (id(), channel(), location(), any::<bool>()).prop_map(
                |(id, channel, location, approximate)| ClientMessage::Locate {
                    id,
                    channel,
                    location,
                    approximate,
                }
            ),
            (id(), channel()).prop_map(|(id, channel)| ClientMessage::StopSharing { id, channel }),
            (id(), channel(), bytes()).prop_map(|(id, channel, state_vector)| {
                ClientMessage::DocSync {
                    id,
                    channel,
                    state_vector,
                }
            }),
            (id(), channel(), bytes()).prop_map(|(id, channel, update)| ClientMessage::DocUpdate {
                id,
                channel,
                update
            }),
            (channel(), bytes())
                .prop_map(|(channel, update)| ClientMessage::DocAwareness { channel, update }),
            id().prop_map(|id| ClientMessage::Ping { id }),
            Just(ClientMessage::Pong {}),
        ]
    }

    fn server_message() -> impl Strategy<Value = ServerMessage> {
        prop_oneof![
            (
                id(),
                any::<u64>(),
                user(),
                any::<u64>(),
                any::<u32>(),
                proptest::option::of(any::<u64>())
            )
                .prop_map(|(id, connection, user, ping, max, expires_at)| {
                    ServerMessage::Connected {
                        id,
                        connection: ConnectionId(connection),
                        user,
                        ping_interval_ms: ping,
                        max_message_size: max as usize,
                        expires_at,
                    }
                }),
            (id(), proptest::option::of(any::<u64>()))
                .prop_map(|(id, expires_at)| ServerMessage::Refreshed { id, expires_at }),
            (
                id(),
                channel(),
                proptest::option::of(position()),
                proptest::option::of(any::<bool>()),
                proptest::collection::vec(publication(), 0..3),
                proptest::option::of(members()),
                proptest::option::of(proptest::collection::vec(shared(), 0..3))
            )
                .prop_map(
                    |(id, channel, position, recovered, publications, members, locations)| {
                        ServerMessage::Subscribed {
                            id,
                            channel,
                            position,
                            recovered,
                            publications,
                            members,
                            locations,
                        }
                    }
                ),
            (id(), channel()).prop_map(|(id, channel)| ServerMessage::Located { id, channel }),
            (id(), channel()).prop_map(|(id, channel)| ServerMessage::Stopped { id, channel }),
            (channel(), shared())
                .prop_map(|(channel, shared)| ServerMessage::Location { channel, shared }),
            (channel(), "[a-z]{1,8}", any::<bool>()).prop_map(|(channel, user, expired)| {
                ServerMessage::LocationGone {
                    channel,
                    user: UserId(user),
                    reason: if expired {
                        GoneReason::Expired
                    } else {
                        GoneReason::Stopped
                    },
                }
            }),
            (id(), channel()).prop_map(|(id, channel)| ServerMessage::Unsubscribed { id, channel }),
            (id(), channel(), proptest::option::of(position())).prop_map(
                |(id, channel, position)| ServerMessage::Published {
                    id,
                    channel,
                    position
                }
            ),
            (id(), channel(), members()).prop_map(|(id, channel, members)| {
                ServerMessage::Presence {
                    id,
                    channel,
                    members,
                }
            }),
            (
                id(),
                channel(),
                proptest::option::of(position()),
                proptest::collection::vec(publication(), 0..3)
            )
                .prop_map(|(id, channel, position, publications)| {
                    ServerMessage::History {
                        id,
                        channel,
                        position,
                        publications,
                    }
                }),
            id().prop_map(|id| ServerMessage::Pong { id }),
            (id(), proptest::sample::select(ErrorCode::ALL), ".{0,20}")
                .prop_map(|(id, code, message)| ServerMessage::Error { id, code, message }),
            (channel(), publication()).prop_map(|(channel, publication)| {
                ServerMessage::Publication {
                    channel,
                    publication,
                }
            }),
            (channel(), user())
                .prop_map(|(channel, member)| ServerMessage::Join { channel, member }),
            (channel(), user())
                .prop_map(|(channel, member)| ServerMessage::Leave { channel, member }),
            (id(), channel(), bytes(), bytes()).prop_map(|(id, channel, update, state_vector)| {
                ServerMessage::DocSynced {
                    id,
                    channel,
                    update,
                    state_vector,
                }
            }),
            (id(), channel()).prop_map(|(id, channel)| ServerMessage::DocSaved { id, channel }),
            (channel(), bytes())
                .prop_map(|(channel, update)| ServerMessage::DocUpdated { channel, update }),
            (channel(), bytes())
                .prop_map(|(channel, update)| ServerMessage::DocAwareness { channel, update }),
            Just(ServerMessage::Ping {}),
            (
                proptest::sample::select(CloseCode::ALL),
                ".{0,20}",
                any::<bool>()
            )
                .prop_map(|(code, reason, reconnect)| ServerMessage::Disconnect {
                    code,
                    reason,
                    reconnect,
                }),
        ]
    }

    proptest! {
        #[test]
        fn every_client_message_round_trips(message in client_message()) {
            let text = encode_client(&message);
            prop_assert_eq!(decode_client(&text).unwrap(), message);
        }

        #[test]
        fn every_server_message_round_trips(message in server_message()) {
            let text = encode(&message);
            prop_assert_eq!(decode_server(&text).unwrap(), message);
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(text in ".{0,64}") {
            let _ = decode_client(&text);
        }

        #[test]
        fn every_client_message_round_trips_in_msgpack(message in client_message()) {
            let bytes = encode_client_bin(&message);
            prop_assert_eq!(decode_client_bin(&bytes).unwrap(), message);
        }

        #[test]
        fn every_server_message_round_trips_in_msgpack(message in server_message()) {
            let bytes = encode_bin(&message);
            prop_assert_eq!(decode_server_bin(&bytes).unwrap(), message);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let _ = decode_client_bin(&bytes);
        }
    }

    fn check_bin(frame: &serde_json::Value, expect_code: ErrorCode, expect_id: Option<u64>) {
        let bytes = rmp_serde::to_vec_named(frame).unwrap();
        let error = decode_client_bin(&bytes).expect_err(&frame.to_string());
        assert_eq!(error.code, expect_code, "{frame}: {}", error.message);
        assert_eq!(error.id, expect_id.map(CommandId), "{frame}");
    }

    #[test]
    fn bad_msgpack_frames_get_the_json_codes() {
        let error = decode_client_bin(&[0xc1]).unwrap_err();
        assert_eq!((error.code, error.id), (ErrorCode::BadRequest, None));
        assert!(
            error.message.starts_with("malformed msgpack"),
            "{}",
            error.message
        );
        check_bin(&json!([1, 2]), ErrorCode::BadRequest, None);
        check_bin(&json!({"id": 4}), ErrorCode::BadRequest, Some(4));
        check_bin(
            &json!({"type": "teleport", "id": 9}),
            ErrorCode::UnknownCommand,
            Some(9),
        );
        check_bin(
            &json!({"type": "subscribe", "id": 2, "channel": "no namespace"}),
            ErrorCode::InvalidChannel,
            Some(2),
        );
        check_bin(
            &json!({"type": "subscribe", "id": 3, "channel": "chat:x", "sinse": 1}),
            ErrorCode::BadRequest,
            Some(3),
        );
    }

    /// A `publish` of `data_bytes` (MessagePack) as its data.
    fn publish_with_data(data_bytes: &[u8]) -> Vec<u8> {
        let frame = json!({"type": "publish", "id": 5, "channel": "chat:x", "data": "X"});
        let mut bytes = rmp_serde::to_vec_named(&frame).unwrap();
        let at = bytes.windows(2).position(|w| w == [0xa1, b'X']).unwrap();
        bytes.splice(at..at + 2, data_bytes.iter().copied());
        bytes
    }

    #[test]
    fn msgpack_nests_no_deeper_than_json_and_is_one_value() {
        let nested = |depth: usize| {
            let mut data = vec![0x91; depth];
            data.push(0xc0);
            data
        };
        assert!(decode_client_bin(&publish_with_data(&nested(100))).is_ok());
        let error = decode_client_bin(&publish_with_data(&nested(200))).unwrap_err();
        assert_eq!((error.code, error.id), (ErrorCode::BadRequest, None));
        // JSON refuses the same depth.
        let json = format!(
            r#"{{"type":"publish","id":5,"channel":"chat:x","data":{}null{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            decode_client(&json).unwrap_err().code,
            ErrorCode::BadRequest
        );
        // A frame holding two commands is refused, not half read.
        let ping = encode_client_bin(&ClientMessage::Ping {
            id: Some(CommandId(1)),
        });
        let mut two = ping.clone();
        two.extend_from_slice(&ping);
        let error = decode_client_bin(&two).unwrap_err();
        assert_eq!(error.code, ErrorCode::BadRequest);
        assert!(error.message.contains("trailing"), "{}", error.message);
    }

    #[test]
    fn msgpack_carries_yjs_updates_as_raw_bytes() {
        let update = (0..=255u8).collect::<Vec<u8>>();
        let message = ServerMessage::DocUpdated {
            channel: ChannelName::parse("notes:n1").unwrap(),
            update: crate::bytes::Bytes(update.clone()),
        };
        let bin = encode_bin(&message);
        assert!(
            bin.windows(update.len()).any(|window| window == update),
            "the update's bytes as they are"
        );
        let json = encode(&message);
        assert!(
            bin.len() + 80 < json.len(),
            "{} bytes of msgpack against {} of json",
            bin.len(),
            json.len()
        );
        // A client's update, too, and base64 text is still read there.
        let command = ClientMessage::DocUpdate {
            id: Some(CommandId(1)),
            channel: ChannelName::parse("notes:n1").unwrap(),
            update: crate::bytes::Bytes(update.clone()),
        };
        assert_eq!(
            decode_client_bin(&encode_client_bin(&command)).unwrap(),
            command
        );
        let as_text = json!({"type": "doc_update", "id": 1, "channel": "notes:n1",
            "update": crate::bytes::encode(&update)});
        assert_eq!(
            decode_client_bin(&rmp_serde::to_vec_named(&as_text).unwrap()).unwrap(),
            command
        );
    }

    #[test]
    fn subprotocols_name_their_encodings() {
        for encoding in Encoding::ALL {
            assert_eq!(
                Encoding::from_subprotocol(encoding.subprotocol()),
                Some(encoding)
            );
        }
        assert_eq!(Encoding::from_subprotocol("rookery.v1.xml"), None);
        assert_eq!(Encoding::default(), Encoding::Json);
    }
}
