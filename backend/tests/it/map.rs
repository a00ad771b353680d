//! The live map's latest-value channels over real sockets: snapshots,
//! filters, expiry, conflation and approximate sharing.

use std::time::Duration;

use futures_util::StreamExt;
use rookery::hub::unix_time_ms;
use rookery_common::{ChannelName, ClientMessage, ErrorCode, GoneReason, Location, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{TestClient, TestServer, within};

fn walk() -> ChannelName {
    ChannelName::parse("map:walk").unwrap()
}

fn at(lat: f64, lon: f64) -> Location {
    Location {
        lat,
        lon,
        accuracy: 5.0,
        time: unix_time_ms(),
        speed: None,
        heading: None,
    }
}

async fn locate(client: &mut TestClient, location: Location, approximate: bool) -> ServerMessage {
    client
        .request(|id| ClientMessage::Locate {
            id,
            channel: walk(),
            location,
            approximate,
        })
        .await
}

fn code(message: &ServerMessage) -> Option<ErrorCode> {
    match message {
        ServerMessage::Error { code, .. } => Some(*code),
        _ => None,
    }
}

#[tokio::test]
async fn a_new_viewer_sees_every_sharer_at_once_then_their_moves_and_their_stop() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    assert!(matches!(
        locate(&mut ada, at(48.8566, 2.3522), false).await,
        ServerMessage::Located { .. }
    ));
    let mut bob = server.client("Bob").await;
    locate(&mut bob, at(51.5074, -0.1278), false).await;

    let mut viewer = server.client("Viewer").await;
    match viewer.subscribe("map:walk").await {
        ServerMessage::Subscribed {
            locations: Some(locations),
            ..
        } => {
            let seen: Vec<_> = locations
                .iter()
                .map(|l| (l.member.name.as_str(), l.location.lat))
                .collect();
            assert_eq!(seen, [("Ada", 48.8566), ("Bob", 51.5074)]);
        }
        other => panic!("{other:?}"),
    }
    // The server filters positions sooner than a second apart.
    assert_eq!(
        code(&locate(&mut ada, at(48.857, 2.3522), false).await),
        Some(ErrorCode::TooFrequent)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    locate(&mut ada, at(48.857, 2.3522), false).await;
    match viewer.recv().await {
        ServerMessage::Location { shared, .. } => {
            assert_eq!(shared.member.name, "Ada");
            assert_eq!(shared.location.lat, 48.857);
        }
        other => panic!("{other:?}"),
    }
    bob.request(|id| ClientMessage::StopSharing {
        id,
        channel: walk(),
    })
    .await;
    match viewer.recv().await {
        ServerMessage::LocationGone { user, reason, .. } => {
            assert_eq!(reason, GoneReason::Stopped);
            assert!(user.0.starts_with("anon-"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn each_filter_refuses_with_its_code() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    let cases = [
        (
            Location {
                lat: 95.0,
                ..at(0.0, 0.0)
            },
            ErrorCode::InvalidLocation,
        ),
        (at(0.0, 0.0), ErrorCode::InvalidLocation),
        (
            Location {
                lon: -200.0,
                ..at(10.0, 0.0)
            },
            ErrorCode::InvalidLocation,
        ),
        (
            Location {
                accuracy: 50_000.0,
                ..at(48.0, 2.0)
            },
            ErrorCode::TooInaccurate,
        ),
        (
            Location {
                time: unix_time_ms() + 3_600_000,
                ..at(48.0, 2.0)
            },
            ErrorCode::FutureTimestamp,
        ),
    ];
    for (location, expected) in cases {
        assert_eq!(
            code(&locate(&mut ada, location, false).await),
            Some(expected),
            "{location:?}"
        );
    }
    // JSON cannot carry NaN; a string there is a malformed command.
    ada.send_text(r#"{"type":"locate","id":99,"channel":"map:walk","location":{"lat":"NaN","lon":1,"accuracy":1,"time":1}}"#)
        .await;
    assert_eq!(code(&ada.recv().await), Some(ErrorCode::BadRequest));
    // Stream commands do not apply to positions and back.
    let reply = ada.publish("map:walk", serde_json::json!(1)).await;
    assert_eq!(code(&reply), Some(ErrorCode::WrongKind));
}

#[tokio::test]
async fn the_minimum_distance_filter_applies_between_close_updates() {
    let server = TestServer::start_with(|config| {
        let mut map = config.namespaces.get("map").unwrap().clone();
        map.min_interval = Duration::ZERO;
        map.min_distance_m = 50.0;
        config.namespaces.extend([("map".to_owned(), map)].into());
    })
    .await;
    let mut ada = server.client("Ada").await;
    locate(&mut ada, at(48.0, 2.0), false).await;
    let nudge = at(48.0001, 2.0); // about 11 m
    assert_eq!(
        code(&locate(&mut ada, nudge, false).await),
        Some(ErrorCode::TooClose)
    );
    let stride = at(48.001, 2.0); // about 111 m
    assert!(matches!(
        locate(&mut ada, stride, false).await,
        ServerMessage::Located { .. }
    ));
}

/// Real time with a 2 s TTL: under a paused clock the runtime jumps to the
/// next timer while bytes are still in flight on real sockets. The expiry
/// rule itself is tested with explicit instants in `hub::tests`.
#[tokio::test]
async fn a_sharer_whose_connection_drops_expires_by_ttl_and_everyone_is_told() {
    let server = TestServer::start_with(|config| {
        let mut map = config.namespaces.get("map").unwrap().clone();
        map.value_ttl = Duration::from_secs(2);
        config.namespaces.extend([("map".to_owned(), map)].into());
    })
    .await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe("map:walk").await;
    let mut ada = server.client("Ada").await;
    locate(&mut ada, at(48.0, 2.0), false).await;
    assert!(matches!(
        viewer.recv().await,
        ServerMessage::Location { .. }
    ));
    let dropped_at = tokio::time::Instant::now();
    drop(ada);
    match viewer.recv().await {
        ServerMessage::LocationGone { reason, .. } => assert_eq!(reason, GoneReason::Expired),
        other => panic!("{other:?}"),
    }
    let waited = dropped_at.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "gone only after the TTL: {waited:?}"
    );
    assert!(
        waited <= Duration::from_secs(4),
        "and within the sweep period of it: {waited:?}"
    );
}

#[tokio::test]
async fn approximate_sharing_never_sends_the_exact_coordinates() {
    let server = TestServer::start().await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe("map:walk").await;
    let mut ada = server.client("Ada").await;
    let exact = Location {
        speed: Some(1.4),
        heading: Some(270.0),
        ..at(48.856_613, 2.352_222)
    };
    locate(&mut ada, exact, true).await;
    // Read the raw frame: the exact digits appear nowhere in it.
    let frame = loop {
        match within(viewer.socket.next()).await.unwrap().unwrap() {
            Message::Text(text) if text.contains("\"location\"") => break text.to_string(),
            _ => {}
        }
    };
    for secret in ["856613", "352222"] {
        assert!(!frame.contains(secret), "{secret} leaked in {frame}");
    }
    // Speed and heading are left out whole (their digits alone could
    // appear in the timestamp: "270" did, in 1795927080000).
    for field in ["\"speed\"", "\"heading\""] {
        assert!(!frame.contains(field), "{field} leaked in {frame}");
    }
    let message = rookery_common::decode_server(&frame).unwrap();
    match message {
        ServerMessage::Location { shared, .. } => {
            assert!(shared.approximate);
            assert!((shared.location.lat - 48.86).abs() < 1e-9);
            assert!((shared.location.lon - 2.35).abs() < 1e-9);
            assert!(shared.location.accuracy >= 1000.0);
        }
        other => panic!("{other:?}"),
    }
    // A late viewer's snapshot is just as coarse.
    let mut late = server.client("Late").await;
    match late.subscribe("map:walk").await {
        ServerMessage::Subscribed {
            locations: Some(locations),
            ..
        } => {
            assert!((locations[0].location.lat - 48.86).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_slow_viewer_gets_the_newest_positions_not_a_backlog_and_stays_connected() {
    let server = TestServer::start_with(|config| {
        let mut map = config.namespaces.get("map").unwrap().clone();
        map.min_interval = Duration::ZERO;
        map.min_distance_m = 0.0;
        config.namespaces.extend([("map".to_owned(), map)].into());
        config.limits.max_command_rate = 1_000_000;
        config.limits.outbound_queue = 16;
    })
    .await;
    // The slow viewer's socket has a tiny receive buffer and is not read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.address).await.unwrap();
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (socket, _) = tokio_tungstenite::client_async(server.ws_url(), stream)
        .await
        .unwrap();
    let mut slow = TestClient::from_socket(socket);
    slow.connect("Slow", None).await;
    slow.subscribe("map:walk").await;

    let mut ada = server.client("Ada").await;
    let n_updates = 40_000u32;
    let last = at(48.0 + f64::from(n_updates) * 1e-5, 2.0);
    for n in 1..=n_updates {
        let location = at(48.0 + f64::from(n) * 1e-5, 2.0);
        ada.send(&ClientMessage::Locate {
            id: None,
            channel: walk(),
            location,
            approximate: false,
        })
        .await;
    }
    // Every update was handled once Ada's ping is answered.
    let reply = ada.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(reply, ServerMessage::Pong { .. }));

    let mut received = 0u32;
    loop {
        match slow.recv().await {
            ServerMessage::Location { shared, .. } => {
                received += 1;
                if shared.location.lat == last.lat {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        received < n_updates / 2,
        "conflated: {received} of {n_updates} delivered"
    );
    assert_eq!(server.state.hub.with(|hub| hub.stats()).n_slow_consumers, 0);
    let reply = slow.request(|id| ClientMessage::Ping { id }).await;
    assert!(
        matches!(reply, ServerMessage::Pong { .. }),
        "still connected"
    );
}
