//! The wire's options: MessagePack frames (`rookery.v1.bin`) beside JSON
//! ones, and permessage-deflate when the server is configured for it.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::SinkExt;
use rookery_common::{ClientMessage, CommandId, ErrorCode, ServerMessage, decode_server};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::notes::Editor;
use crate::support::{
    TestClient, TestServer, client_frame, close_code, raw_socket_with, read_frame,
};

const BIN: &str = "rookery.v1.bin";

#[tokio::test]
async fn msgpack_and_json_clients_share_a_channel() {
    let server = TestServer::start().await;
    let mut ada = TestClient::open_offering(&server.ws_url(), BIN).await;
    ada.connect("Ada", None).await;
    ada.subscribe("chat:lobby").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;

    let from_ada = json!({"text": "héllo", "n": -3, "f": 1.5, "list": [true, null]});
    ada.publish("chat:lobby", from_ada.clone()).await;
    assert_eq!(bob.next_publication().await, from_ada);
    assert_eq!(ada.next_publication().await, from_ada);

    let from_bob = json!({"text": "and back", "big": u64::MAX});
    bob.publish("chat:lobby", from_bob.clone()).await;
    // Ada's client panics on a text frame: everything she gets is binary.
    assert_eq!(ada.next_publication().await, from_bob);
    assert_eq!(bob.next_publication().await, from_bob);
}

#[tokio::test]
async fn the_clients_first_protocol_is_chosen() {
    let server = TestServer::start().await;
    let url = server.ws_url();
    let bin_first = TestClient::open_offering(&url, "rookery.v1.bin, rookery.v1.json").await;
    assert_eq!(bin_first.encoding, rookery_common::Encoding::MessagePack);
    let mut json_first = TestClient::open_offering(&url, "rookery.v1.json, rookery.v1.bin").await;
    assert_eq!(json_first.encoding, rookery_common::Encoding::Json);
    json_first.connect("Jo", None).await;
}

#[tokio::test]
async fn a_bad_msgpack_command_gets_its_error_and_the_socket_stays_usable() {
    let server = TestServer::start().await;
    let mut ada = TestClient::open_offering(&server.ws_url(), BIN).await;
    ada.connect("Ada", None).await;
    // Not MessagePack at all (0xc1 is the one byte it never uses).
    ada.socket.send(Message::binary(vec![0xc1])).await.unwrap();
    match ada.recv().await {
        ServerMessage::Error { id, code, .. } => {
            assert_eq!((id, code), (None, ErrorCode::BadRequest));
        }
        other => panic!("expected an error, got {other:?}"),
    }
    // A map naming an unknown command: its id comes back with the code.
    let unknown = rmp_serde::to_vec_named(&json!({"type": "teleport", "id": 77})).unwrap();
    ada.socket.send(Message::binary(unknown)).await.unwrap();
    match ada.recv().await {
        ServerMessage::Error { id, code, .. } => {
            assert_eq!((id, code), (Some(CommandId(77)), ErrorCode::UnknownCommand));
        }
        other => panic!("expected an error, got {other:?}"),
    }
    let pong = ada.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(pong, ServerMessage::Pong { .. }), "{pong:?}");
}

#[tokio::test]
async fn a_text_frame_on_the_msgpack_protocol_closes_with_1003() {
    let server = TestServer::start().await;
    let mut ada = TestClient::open_offering(&server.ws_url(), BIN).await;
    ada.send_text("{\"type\":\"ping\"}").await;
    assert_eq!(ada.closed().await.code, 1003);
}

#[tokio::test]
async fn compression_is_off_unless_configured() {
    let server = TestServer::start().await;
    let (_, response) = raw_socket_with(&server, OFFER).await;
    assert!(
        !response
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions"),
        "{response}"
    );
}

/// What Chromium and Firefox offer.
const OFFER: &str = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";

/// A client speaking permessage-deflate by hand.
struct Deflating {
    stream: TcpStream,
    compress: Compress,
}

impl Deflating {
    async fn open(server: &TestServer) -> Deflating {
        let (stream, response) = raw_socket_with(server, OFFER).await;
        assert!(
            response.to_ascii_lowercase().contains(
                "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; \
                 client_no_context_takeover\r\n"
            ),
            "{response}"
        );
        Deflating {
            stream,
            compress: Compress::new(Compression::default(), false),
        }
    }

    /// Sends `text` compressed on its own (as the server asked): a sync
    /// flush, its 00 00 ff ff tail cut.
    async fn send_compressed(&mut self, text: &str) {
        self.compress.reset();
        let mut out = Vec::with_capacity(text.len() + 64);
        self.compress
            .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
            .unwrap();
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        let frame = client_frame(0x80 | 0x40 | 0x1, &out);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next message that is not a ping or a join, and whether it came
    /// compressed.
    async fn recv(&mut self) -> (ServerMessage, bool) {
        loop {
            let (first, payload) = read_frame(&mut self.stream).await;
            assert_eq!(first & 0x0f, 0x1, "a text frame");
            let compressed = first & 0x40 != 0;
            let text = if compressed {
                inflate(&payload)
            } else {
                payload
            };
            let message = decode_server(std::str::from_utf8(&text).unwrap()).unwrap();
            if !matches!(message, ServerMessage::Ping {} | ServerMessage::Join { .. }) {
                return (message, compressed);
            }
        }
    }

    async fn recv_reply(&mut self) -> ServerMessage {
        self.recv().await.0
    }
}

/// A server message on its own: the server keeps no context between them.
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut decompress = Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(64 * 1024);
    decompress
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

fn publication_data(message: &ServerMessage) -> Value {
    match message {
        ServerMessage::Publication { publication, .. } => publication.data.clone(),
        other => panic!("expected a publication, got {other:?}"),
    }
}

#[tokio::test]
async fn with_compression_on_long_messages_travel_compressed_both_ways() {
    let server = TestServer::start_with(|config| config.websocket_compression = true).await;
    let mut ada = Deflating::open(&server).await;
    ada.send_compressed(r#"{"type":"connect","id":1,"name":"Ada"}"#)
        .await;
    assert!(matches!(
        ada.recv_reply().await,
        ServerMessage::Connected { .. }
    ));
    ada.send_compressed(r#"{"type":"subscribe","id":2,"channel":"chat:lobby"}"#)
        .await;
    assert!(matches!(
        ada.recv_reply().await,
        ServerMessage::Subscribed { .. }
    ));
    // Bob's client does not do deflate: he gets plain frames.
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;

    let long = json!({"text": "a long message, a long message, ".repeat(30)});
    bob.publish("chat:lobby", long.clone()).await;
    let (message, compressed) = ada.recv().await;
    assert_eq!(publication_data(&message), long);
    assert!(compressed, "a long publication is compressed");
    let short = json!({"text": "hi"});
    bob.publish("chat:lobby", short.clone()).await;
    let (message, compressed) = ada.recv().await;
    assert_eq!(publication_data(&message), short);
    assert!(!compressed, "a short one is not worth it");

    let from_ada = json!({"text": "compressed on the way in, ".repeat(30)});
    let publish = json!({"type": "publish", "id": 3, "channel": "chat:lobby", "data": from_ada});
    ada.send_compressed(&publish.to_string()).await;
    assert_eq!(bob.next_publication().await, long);
    assert_eq!(bob.next_publication().await, short);
    assert_eq!(bob.next_publication().await, from_ada);
}

#[tokio::test]
async fn a_compression_bomb_closes_with_1009_and_nobody_else_notices() {
    let server = TestServer::start_with(|config| {
        config.websocket_compression = true;
        config.limits.max_message_size = 64 * 1024;
    })
    .await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    let mut mallory = Deflating::open(&server).await;
    // 16 MiB of spaces: a few kilobytes compressed, under the limit.
    let bomb = " ".repeat(16 << 20);
    mallory.send_compressed(&bomb).await;
    assert_eq!(close_code(&mut mallory.stream).await, 1009);
    // Not deflate data at all.
    let mut garbage = Deflating::open(&server).await;
    let frame = client_frame(0x80 | 0x40 | 0x1, &[0xff; 32]);
    garbage.stream.write_all(&frame).await.unwrap();
    assert_eq!(close_code(&mut garbage.stream).await, 1007);

    let mut alice = server.client("Alice").await;
    alice
        .publish("chat:lobby", json!({"after": "the bomb"}))
        .await;
    assert_eq!(bob.next_publication().await, json!({"after": "the bomb"}));
}

#[tokio::test]
async fn a_msgpack_editor_and_a_json_editor_write_one_note() {
    let server = TestServer::start().await;
    let mut client = TestClient::open_offering(&server.ws_url(), BIN).await;
    client.connect("Ada", None).await;
    // Her updates and state vectors travel as raw bytes, Bob's as base64.
    let mut ada = Editor::join_with(client, "mixed-note").await;
    let mut bob = Editor::join(&server, "Bob", "mixed-note").await;
    let mut cy = Editor::join(&server, "Cy", "mixed-note").await;
    ada.type_at(0, "Hello").await;
    bob.wait_for_text("Hello").await;
    cy.wait_for_text("Hello").await;
    bob.type_at(5, " from JSON").await;
    ada.wait_for_text("Hello from JSON").await;
    cy.wait_for_text("Hello from JSON").await;
}
