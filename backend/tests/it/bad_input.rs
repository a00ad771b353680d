//! Bad input gets its documented error or close code, and everyone else
//! carries on as if nothing happened.

use rookery_common::{ChannelName, ClientMessage, ErrorCode, ServerMessage};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestClient, TestServer, within};

fn error_code(message: &ServerMessage) -> ErrorCode {
    match message {
        ServerMessage::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_own_origin_accepted() {
    let server = TestServer::start().await;
    let error = TestClient::open_with_origin(&server.ws_url(), "http://evil.example")
        .await
        .err()
        .expect("refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 403);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
            assert_eq!(body["error"]["code"], "forbidden_origin");
        }
        other => panic!("expected an HTTP refusal, got {other}"),
    }
    let own = format!("http://{}", server.address);
    let mut client = TestClient::open_with_origin(&server.ws_url(), &own)
        .await
        .expect("own origin accepted");
    client.connect("Ada", None).await;
}

#[tokio::test]
async fn listed_origins_are_accepted() {
    let server = TestServer::start_with(|config| {
        config.allowed_origins =
            rookery::ws::origin::AllowedOrigins::parse("https://app.example").unwrap();
    })
    .await;
    assert!(
        TestClient::open_with_origin(&server.ws_url(), "https://app.example")
            .await
            .is_ok()
    );
    assert!(
        TestClient::open_with_origin(&server.ws_url(), "https://other.example")
            .await
            .is_err()
    );
}

#[tokio::test]
async fn malformed_and_unknown_commands_get_error_replies_and_the_socket_stays_usable() {
    let server = TestServer::start().await;
    let mut client = TestClient::open(&server.ws_url()).await;

    client
        .send_text(r#"{"type":"subscribe","id":1,"channel":"chat:x"}"#)
        .await;
    assert_eq!(error_code(&client.recv().await), ErrorCode::NotConnected);

    client.connect("Ada", None).await;
    client.send_text("{not json").await;
    let reply = client.recv().await;
    assert_eq!(error_code(&reply), ErrorCode::BadRequest);
    assert_eq!(reply.reply_to(), None);

    client.send_text(r#"{"type":"teleport","id":77}"#).await;
    let reply = client.recv().await;
    assert_eq!(error_code(&reply), ErrorCode::UnknownCommand);
    assert_eq!(reply.reply_to().unwrap().0, 77);

    client
        .send_text(r#"{"type":"subscribe","id":78,"channel":"no namespace"}"#)
        .await;
    assert_eq!(error_code(&client.recv().await), ErrorCode::InvalidChannel);

    client
        .send_text(r#"{"type":"subscribe","id":79,"channel":"nope:x"}"#)
        .await;
    assert_eq!(
        error_code(&client.recv().await),
        ErrorCode::UnknownNamespace
    );

    client
        .send_text(r#"{"type":"publish","id":80,"channel":"notify:x","data":1}"#)
        .await;
    assert_eq!(
        error_code(&client.recv().await),
        ErrorCode::PermissionDenied
    );

    client
        .send_text(r#"{"type":"connect","id":81,"name":"again"}"#)
        .await;
    assert_eq!(
        error_code(&client.recv().await),
        ErrorCode::AlreadyConnected
    );

    // Still a working connection.
    client.subscribe("chat:x").await;
    client.publish("chat:x", json!("still here")).await;
    assert_eq!(client.next_publication().await, json!("still here"));
}

#[tokio::test]
async fn a_display_name_is_required() {
    let server = TestServer::start().await;
    let mut client = TestClient::open(&server.ws_url()).await;
    let reply = client
        .request(|id| ClientMessage::Connect {
            id,
            token: None,
            name: Some("   ".into()),
            anonymous_id: None,
        })
        .await;
    assert_eq!(error_code(&reply), ErrorCode::InvalidName);
}

/// Bob listens the whole time; whatever the attacker does, he receives every
/// one of Alice's messages.
#[tokio::test]
async fn an_oversized_message_closes_only_its_own_socket_with_1009() {
    let server = TestServer::start_with(|config| config.limits.max_message_size = 1024).await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    let mut attacker = server.client("Mallory").await;
    attacker.subscribe("chat:lobby").await;

    alice.publish("chat:lobby", json!({"n": 1})).await;
    let huge = format!(
        r#"{{"type":"publish","channel":"chat:lobby","data":"{}"}}"#,
        "x".repeat(4096)
    );
    attacker.send_text(&huge).await;
    let closed = attacker.closed().await;
    assert_eq!(closed.code, 1009);
    alice.publish("chat:lobby", json!({"n": 2})).await;

    assert_eq!(bob.next_publication().await, json!({"n": 1}));
    assert_eq!(bob.next_publication().await, json!({"n": 2}));
}

#[tokio::test]
async fn a_binary_frame_on_the_json_protocol_closes_with_1003() {
    let server = TestServer::start().await;
    let mut client = server.client("Ada").await;
    client
        .socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(client.closed().await.code, 1003);
}

use futures_util::SinkExt;

/// A WebSocket spoken by hand, for frames no well-behaved library sends.
async fn raw_socket(server: &TestServer) -> TcpStream {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        server.address
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within(stream.read_exact(&mut byte)).await.unwrap();
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    stream
}

fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode];
    let key = [0x12, 0x34, 0x56, 0x78];
    if masked {
        frame.push(0x80 | payload.len() as u8);
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        frame.push(payload.len() as u8);
        frame.extend_from_slice(payload);
    }
    frame
}

/// Reads server frames until a close frame; returns its code.
async fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let mut header = [0u8; 2];
        within(stream.read_exact(&mut header))
            .await
            .expect("a close frame before the end");
        let opcode = header[0] & 0x0f;
        let mut length = u64::from(header[1] & 0x7f);
        if length == 126 {
            let mut extended = [0u8; 2];
            stream.read_exact(&mut extended).await.unwrap();
            length = u64::from(u16::from_be_bytes(extended));
        } else if length == 127 {
            let mut extended = [0u8; 8];
            stream.read_exact(&mut extended).await.unwrap();
            length = u64::from_be_bytes(extended);
        }
        let mut payload = vec![0u8; length as usize];
        stream.read_exact(&mut payload).await.unwrap();
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let server = TestServer::start().await;
    let mut stream = raw_socket(&server).await;
    stream
        .write_all(&frame(0x1, b"{\"type\":\"\xff\xfe\"}", true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut stream).await, 1007);
}

#[tokio::test]
async fn an_unmasked_client_frame_closes_with_1002() {
    let server = TestServer::start().await;
    let mut stream = raw_socket(&server).await;
    stream
        .write_all(&frame(0x1, b"{\"type\":\"ping\"}", false))
        .await
        .unwrap();
    assert_eq!(close_code(&mut stream).await, 1002);
}

#[tokio::test]
async fn a_reserved_opcode_closes_with_1002() {
    let server = TestServer::start().await;
    let mut stream = raw_socket(&server).await;
    stream.write_all(&frame(0x3, b"", true)).await.unwrap();
    assert_eq!(close_code(&mut stream).await, 1002);
}

#[tokio::test]
async fn subscribing_twice_and_unsubscribing_a_stranger_are_errors() {
    let server = TestServer::start().await;
    let mut client = server.client("Ada").await;
    client.subscribe("chat:a").await;
    let channel = ChannelName::parse("chat:a").unwrap();
    let reply = client
        .request(|id| ClientMessage::Subscribe {
            id,
            channel: channel.clone(),
            since: None,
            rewind: None,
            token: None,
        })
        .await;
    assert_eq!(error_code(&reply), ErrorCode::AlreadySubscribed);
    let other = ChannelName::parse("chat:b").unwrap();
    let reply = client
        .request(|id| ClientMessage::Unsubscribe { id, channel: other })
        .await;
    assert_eq!(error_code(&reply), ErrorCode::NotSubscribed);
}
