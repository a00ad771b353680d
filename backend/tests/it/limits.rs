//! Each limit: its error or close code, and everyone else unaffected.

use futures_util::StreamExt;
use rookery_common::{ChannelName, ClientMessage, ErrorCode, ServerMessage};
use serde_json::json;

use crate::support::{TestClient, TestServer, wait_until, within};

fn error_code(message: &ServerMessage) -> Option<ErrorCode> {
    match message {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn publishing_faster_than_the_rate_gets_111_and_the_socket_stays() {
    let server = TestServer::start_with(|config| config.limits.max_publish_rate = 5).await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:lobby").await;
    let mut codes = Vec::new();
    for n in 0..20 {
        let reply = alice.publish("chat:lobby", json!(n)).await;
        codes.push(error_code(&reply));
    }
    let accepted = codes.iter().filter(|c| c.is_none()).count();
    assert_eq!(accepted, 10, "a burst of twice the rate: {codes:?}");
    assert!(
        codes[10..]
            .iter()
            .all(|c| *c == Some(ErrorCode::RateLimited))
    );
    let reply = alice.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(reply, ServerMessage::Pong { .. }));
}

#[tokio::test]
async fn a_command_flood_is_closed_with_4102_and_others_keep_receiving() {
    let server = TestServer::start_with(|config| config.limits.max_command_rate = 10).await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    let mut flooder = server.client("Flooder").await;
    for _ in 0..100 {
        flooder.send_text(r#"{"type":"ping"}"#).await;
    }
    assert_eq!(flooder.closed().await.code, 4102);
    alice.publish("chat:lobby", json!("still flowing")).await;
    assert_eq!(bob.next_publication().await, json!("still flowing"));
}

#[tokio::test]
async fn too_many_subscriptions_get_110() {
    let server =
        TestServer::start_with(|config| config.limits.hub.max_subscriptions_per_connection = 2)
            .await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:a").await;
    alice.subscribe("chat:b").await;
    let channel = ChannelName::parse("chat:c").unwrap();
    let reply = alice
        .request(|id| ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: None,
            token: None,
        })
        .await;
    assert_eq!(error_code(&reply), Some(ErrorCode::TooManySubscriptions));
}

#[tokio::test]
async fn a_full_channel_refuses_new_members_with_116() {
    let server = TestServer::start_with(|config| config.limits.hub.max_presence_members = 1).await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:small").await;
    let mut bob = server.client("Bob").await;
    let channel = ChannelName::parse("chat:small").unwrap();
    let reply = bob
        .request(|id| ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: None,
            token: None,
        })
        .await;
    assert_eq!(error_code(&reply), Some(ErrorCode::ChannelFull));
}

#[tokio::test]
async fn connections_over_the_per_address_limit_are_closed_with_4101() {
    let server = TestServer::start_with(|config| config.limits.max_connections_per_ip = 2).await;
    let _first = server.client("One").await;
    let _second = server.client("Two").await;
    let mut third = TestClient::open(&server.ws_url()).await;
    assert_eq!(third.closed().await.code, 4101);
    // Closing one frees a place.
    drop(_first);
    let loopback = "127.0.0.1".parse().unwrap();
    wait_until(|| server.state.n_connections_from(loopback) == 1).await;
    let mut fourth = TestClient::open(&server.ws_url()).await;
    fourth.connect("Four", None).await;
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4100_while_others_receive_everything() {
    let server = TestServer::start_with(|config| {
        config.limits.outbound_queue = 8;
        config.limits.max_publish_rate = 100_000;
    })
    .await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    // The slow client subscribes and then never reads again.
    let mut slow = server.client("Slow").await;
    slow.subscribe("chat:lobby").await;
    let big = "x".repeat(16 * 1024);
    let n = 400;
    let reader = tokio::spawn(async move {
        for n in 0..n {
            assert_eq!(bob.next_publication().await["n"], n);
        }
    });
    for n in 0..n {
        let reply = alice
            .publish("chat:lobby", json!({"n": n, "pad": big}))
            .await;
        assert!(
            matches!(reply, ServerMessage::Published { .. }),
            "{reply:?}"
        );
    }
    within(reader).await.unwrap();
    let stats = server.state.hub.with(|hub| hub.stats());
    assert_eq!(stats.n_slow_consumers, 1);
    // The slow client finds the disconnect once it reads again.
    loop {
        match slow.socket.next().await {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4100);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("expected a 4100 close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_connection_flood_from_one_address_gets_4101_and_other_addresses_carry_on() {
    let limit = 20;
    let server =
        TestServer::start_with(|config| config.limits.max_connections_per_ip = limit).await;
    let mut alice = TestClient::open_from(&server, "127.0.0.2".parse().unwrap()).await;
    alice.connect("Alice", None).await;
    let mut bob = TestClient::open_from(&server, "127.0.0.3".parse().unwrap()).await;
    bob.connect("Bob", None).await;
    bob.subscribe("chat:lobby").await;

    // The flooding address fills its places, then opens 80 more at once.
    let mut admitted = Vec::new();
    for n in 0..limit {
        let mut client = TestClient::open(&server.ws_url()).await;
        client.connect(&format!("Flood {n}"), None).await;
        admitted.push(client);
    }
    let flood = (0..80).map(|_| async {
        let mut client = TestClient::open(&server.ws_url()).await;
        client.closed().await.code
    });
    let codes = futures_util::future::join_all(flood).await;
    assert!(codes.iter().all(|&code| code == 4101), "{codes:?}");

    // Bob never noticed; the admitted ones still work.
    alice.publish("chat:lobby", json!({"n": 1})).await;
    assert_eq!(bob.next_publication().await, json!({"n": 1}));
    admitted[0].subscribe("chat:lobby").await;
    admitted[1].publish("chat:lobby", json!({"n": 2})).await;
    assert_eq!(bob.next_publication().await, json!({"n": 2}));
    assert_eq!(admitted[0].next_publication().await, json!({"n": 2}));
    let flooder = "127.0.0.1".parse().unwrap();
    assert_eq!(server.state.n_connections_from(flooder), limit);
}
