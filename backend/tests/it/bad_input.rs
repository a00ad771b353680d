//! Bad input gets its documented error or close code, and everyone else
//! carries on as if nothing happened.

use rookery_common::{ChannelName, ClientMessage, ErrorCode, ServerMessage};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestClient, TestServer, close_code, raw_socket, server_frame, within};

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

/// A frame with FIN set or not (fragments), masked as a client's must be.
fn fragment(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = frame(opcode, payload, true);
    if !fin {
        frame[0] &= 0x7f;
    }
    frame
}

/// Bob, subscribed before the attack, still receives Alice's publication
/// after it.
async fn bystander_unaffected(server: &TestServer, attack: impl std::future::Future<Output = ()>) {
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    attack.await;
    alice
        .publish("chat:lobby", json!({"after": "the attack"}))
        .await;
    assert_eq!(bob.next_publication().await, json!({"after": "the attack"}));
}

#[tokio::test]
async fn bad_fragmentation_closes_with_1002_and_nobody_else_notices() {
    let server = TestServer::start().await;
    bystander_unaffected(&server, async {
        // A continuation with no message begun.
        let mut stream = raw_socket(&server).await;
        stream
            .write_all(&fragment(true, 0x0, b"orphan"))
            .await
            .unwrap();
        assert_eq!(close_code(&mut stream).await, 1002);
        // A new text message while another is still being fragmented.
        let mut stream = raw_socket(&server).await;
        stream
            .write_all(&fragment(false, 0x1, b"{\"type\":"))
            .await
            .unwrap();
        stream
            .write_all(&fragment(true, 0x1, b"\"ping\"}"))
            .await
            .unwrap();
        assert_eq!(close_code(&mut stream).await, 1002);
    })
    .await;
}

#[tokio::test]
async fn a_fragment_flood_past_the_message_limit_closes_with_1009() {
    let server = TestServer::start_with(|config| config.limits.max_message_size = 1024).await;
    bystander_unaffected(&server, async {
        let mut stream = raw_socket(&server).await;
        stream.write_all(&fragment(false, 0x1, b"{")).await.unwrap();
        // Tiny fragments, each harmless, adding up past the limit.
        let flood: Vec<u8> = (0..2000).flat_map(|_| fragment(false, 0x0, b"x")).collect();
        let _ = stream.write_all(&flood).await;
        assert_eq!(close_code(&mut stream).await, 1009);
    })
    .await;
}

#[tokio::test]
async fn a_huge_channel_name_gets_103_and_the_socket_stays_usable() {
    let server = TestServer::start().await;
    let mut client = server.client("Ada").await;
    let name = "x".repeat(10_000);
    client
        .send_text(&format!(
            r#"{{"type":"subscribe","id":7,"channel":"chat:{name}"}}"#
        ))
        .await;
    let reply = client.recv().await;
    assert_eq!(reply.reply_to(), Some(rookery_common::CommandId(7)));
    assert_eq!(error_code(&reply), ErrorCode::InvalidChannel);
    let pong = client.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(pong, ServerMessage::Pong { .. }), "{pong:?}");
}

#[tokio::test]
async fn invalid_stream_positions_get_their_codes() {
    let server = TestServer::start().await;
    let mut client = server.client("Ada").await;
    client.subscribe("chat:lobby").await;
    client.publish("chat:lobby", json!("one")).await;
    // Malformed: not a position at all.
    client
        .send_text(
            r#"{"type":"history","id":3,"channel":"chat:lobby","since":{"epoch":7,"offset":-1}}"#,
        )
        .await;
    // (Past the publication pushed to this subscriber meanwhile.)
    let reply = loop {
        let message = client.recv().await;
        if message.reply_to().is_some() {
            break message;
        }
    };
    assert_eq!(reply.reply_to(), Some(rookery_common::CommandId(3)));
    assert_eq!(error_code(&reply), ErrorCode::BadRequest);
    // Well formed but beyond what the channel ever had, or of another
    // epoch: history says it cannot answer from there (112)...
    let channel = ChannelName::parse("chat:lobby").unwrap();
    for since in [
        rookery_common::StreamPosition {
            epoch: "no-such-epoch".into(),
            offset: 1,
        },
        rookery_common::StreamPosition {
            epoch: current_epoch(&mut client).await,
            offset: 1_000_000,
        },
    ] {
        let reply = client
            .request(|id| ClientMessage::History {
                id,
                channel: channel.clone(),
                since: Some(since.clone()),
                limit: None,
            })
            .await;
        assert_eq!(error_code(&reply), ErrorCode::InvalidPosition, "{since:?}");
    }
    // ...and a subscription from there is not an error but says nothing
    // was recovered.
    let mut other = server.client("Bob").await;
    let reply = other
        .request(|id| ClientMessage::Subscribe {
            id,
            channel: channel.clone(),
            since: Some(rookery_common::StreamPosition {
                epoch: "no-such-epoch".into(),
                offset: 1,
            }),
            rewind: None,
            token: None,
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Subscribed {
                recovered: Some(false),
                ..
            }
        ),
        "{reply:?}"
    );
}

/// The channel's current epoch, from a history query.
async fn current_epoch(client: &mut TestClient) -> String {
    let reply = client
        .request(|id| ClientMessage::History {
            id,
            channel: ChannelName::parse("chat:lobby").unwrap(),
            since: None,
            limit: Some(1),
        })
        .await;
    let ServerMessage::History {
        position: Some(position),
        ..
    } = reply
    else {
        panic!("{reply:?}");
    };
    position.epoch
}

#[tokio::test]
async fn paths_that_climb_out_of_the_app_never_serve_a_file_outside_it() {
    let server = TestServer::start().await;
    for path in [
        "/../Cargo.toml",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "/assets/..%5c..%5c..%5cetc%5cpasswd",
        "//etc/passwd",
    ] {
        let mut stream = TcpStream::connect(server.address).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.address
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        within(stream.read_to_end(&mut response)).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(!response.contains("root:"), "{path}: {response}");
        assert!(!response.contains("[workspace]"), "{path}: {response}");
        // Either refused, or the app's own page (the SPA fallback).
        assert!(
            response.starts_with("HTTP/1.1 4") || response.contains(crate::support::INDEX_HTML),
            "{path}: {response}"
        );
    }
}

/// Waits for the server to end the connection; returns what it sent first.
async fn until_closed(stream: &mut tokio::net::tcp::OwnedReadHalf) -> Vec<u8> {
    let mut received = Vec::new();
    within(async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    received
}

#[tokio::test]
async fn slow_and_silent_http_clients_are_closed_at_the_header_timeout() {
    use std::time::{Duration, Instant};
    let header_timeout = Duration::from_millis(600);
    let server =
        TestServer::start_with(|config| config.limits.header_timeout = header_timeout).await;
    bystander_unaffected(&server, async {
        // Slowloris: an upgrade request trickled a byte every 50 ms whose
        // headers never end, beside a crowd of connections that say nothing.
        let opened = Instant::now();
        let (mut slow_reader, mut slow_writer) = TcpStream::connect(server.address)
            .await
            .unwrap()
            .into_split();
        let trickle = tokio::spawn(async move {
            let head = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n";
            let filler = b"X-Filler: a\r\n".iter().cycle();
            for byte in head.iter().chain(filler) {
                if slow_writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                // The pace is the attack, not a wait for an event.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut silent = Vec::new();
        for _ in 0..200 {
            silent.push(TcpStream::connect(server.address).await.unwrap());
        }
        assert!(
            until_closed(&mut slow_reader).await.is_empty(),
            "no response to a head that never ended"
        );
        assert!(opened.elapsed() >= header_timeout, "closed before its time");
        trickle.await.unwrap();
        for stream in silent {
            let (mut reader, _writer) = stream.into_split();
            assert!(until_closed(&mut reader).await.is_empty());
        }
        // A prompt client is still served, on a fresh connection.
        let mut prompt = TcpStream::connect(server.address).await.unwrap();
        prompt
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: rookery\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (mut reader, _writer) = prompt.into_split();
        let response = until_closed(&mut reader).await;
        assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    })
    .await;
}

#[tokio::test]
async fn a_kept_alive_connection_must_send_its_next_request_in_time() {
    let server = TestServer::start_with(|config| {
        config.limits.header_timeout = std::time::Duration::from_millis(600);
    })
    .await;
    let stream = TcpStream::connect(server.address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: rookery\r\n\r\n")
        .await
        .unwrap();
    // One answer, then the idle connection is closed by the server.
    let response = until_closed(&mut reader).await;
    assert!(response.starts_with(b"HTTP/1.1 200"), "{response:?}");
    assert_eq!(
        String::from_utf8_lossy(&response)
            .matches("HTTP/1.1")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_request_that_is_not_a_handshake_gets_426_with_its_code() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/ws")).await.unwrap();
    assert_eq!(response.status(), 426);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_a_websocket_handshake");
}

#[tokio::test]
async fn pings_get_pongs_and_a_client_close_gets_its_code_back() {
    let server = TestServer::start().await;
    let mut stream = raw_socket(&server).await;
    stream
        .write_all(&frame(0x9, b"still there?", true))
        .await
        .unwrap();
    assert_eq!(
        server_frame(&mut stream).await,
        (0xA, b"still there?".to_vec())
    );
    // The closing handshake: the client's code comes back, then the end.
    stream
        .write_all(&frame(0x8, &4321u16.to_be_bytes(), true))
        .await
        .unwrap();
    assert_eq!(close_code(&mut stream).await, 4321);
    let mut rest = Vec::new();
    within(stream.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "nothing after the close frame");
}
