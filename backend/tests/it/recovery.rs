//! Reconnecting clients get exactly what they missed, or are told they
//! cannot; and one person with two tabs is one member.

use rookery_common::{ChannelName, ClientMessage, ServerMessage, StreamPosition};
use serde_json::json;

use crate::support::{TestClient, TestServer};

fn position_of(reply: &ServerMessage) -> StreamPosition {
    match reply {
        ServerMessage::Published {
            position: Some(position),
            ..
        } => position.clone(),
        other => panic!("{other:?}"),
    }
}

async fn resubscribe(
    client: &mut TestClient,
    since: StreamPosition,
    rewind: Option<u32>,
) -> ServerMessage {
    let channel = ChannelName::parse("chat:lobby").unwrap();
    client
        .request(|id| ClientMessage::Subscribe {
            id,
            channel,
            since: Some(since),
            rewind,
            token: None,
        })
        .await
}

#[tokio::test]
async fn a_client_that_was_away_gets_exactly_what_it_missed_in_order() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    let last_seen = position_of(&alice.publish("chat:lobby", json!(0)).await);
    // Bob's connection dropped after offset 1; three more arrive meanwhile.
    for n in 1..=3 {
        alice.publish("chat:lobby", json!(n)).await;
    }
    let mut bob = server.client("Bob").await;
    match resubscribe(&mut bob, last_seen, Some(10)).await {
        ServerMessage::Subscribed {
            recovered,
            publications,
            ..
        } => {
            assert_eq!(recovered, Some(true));
            let data: Vec<_> = publications.iter().map(|p| p.data.clone()).collect();
            assert_eq!(data, [json!(1), json!(2), json!(3)]);
        }
        other => panic!("{other:?}"),
    }
    // And then live ones, with no gap or duplicate.
    alice.publish("chat:lobby", json!(4)).await;
    assert_eq!(bob.next_publication().await, json!(4));
}

#[tokio::test]
async fn when_history_no_longer_covers_the_gap_the_client_is_told_so() {
    let server = TestServer::start_with(|config| {
        let mut chat = config.namespaces.get("chat").unwrap().clone();
        chat.history_size = 3;
        config.namespaces.extend([("chat".to_owned(), chat)].into());
    })
    .await;
    let mut alice = server.client("Alice").await;
    let last_seen = position_of(&alice.publish("chat:lobby", json!(0)).await);
    for n in 1..=5 {
        alice.publish("chat:lobby", json!(n)).await;
    }
    let mut bob = server.client("Bob").await;
    match resubscribe(&mut bob, last_seen.clone(), Some(2)).await {
        ServerMessage::Subscribed {
            recovered,
            publications,
            ..
        } => {
            assert_eq!(recovered, Some(false), "never a silent gap");
            let data: Vec<_> = publications.iter().map(|p| p.data.clone()).collect();
            assert_eq!(data, [json!(4), json!(5)], "fresh state instead");
        }
        other => panic!("{other:?}"),
    }
    // A position from another epoch (a restarted server) is not recovered either.
    let mut carol = server.client("Carol").await;
    let foreign = StreamPosition {
        epoch: "0000".into(),
        offset: 1,
    };
    assert!(matches!(
        resubscribe(&mut carol, foreign, None).await,
        ServerMessage::Subscribed {
            recovered: Some(false),
            ..
        }
    ));
}

#[tokio::test]
async fn two_tabs_of_one_person_are_one_member_who_leaves_with_the_last_tab() {
    let server = TestServer::start().await;
    let mut watcher = server.client("Watcher").await;
    watcher.subscribe("chat:lobby").await;
    let mut tab1 = TestClient::open(&server.ws_url()).await;
    tab1.connect("Ada", Some("ada-browser-0001")).await;
    tab1.subscribe("chat:lobby").await;
    let mut tab2 = TestClient::open(&server.ws_url()).await;
    tab2.connect("Ada", Some("ada-browser-0001")).await;
    match tab2.subscribe("chat:lobby").await {
        ServerMessage::Subscribed {
            members: Some(members),
            ..
        } => {
            let names: Vec<_> = members.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["Ada", "Watcher"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(watcher.recv().await, ServerMessage::Join { .. }));
    drop(tab1);
    // Only the second tab's departure makes Ada leave: the next event the
    // watcher sees after tab 1 closes is the message, not a leave.
    tab2.publish("chat:lobby", json!("still here")).await;
    assert_eq!(watcher.next_publication().await, json!("still here"));
    let presence = watcher
        .request(|id| ClientMessage::Presence {
            id,
            channel: ChannelName::parse("chat:lobby").unwrap(),
        })
        .await;
    assert!(matches!(presence, ServerMessage::Presence { members, .. } if members.len() == 2));
    drop(tab2);
    match watcher.recv().await {
        ServerMessage::Leave { member, .. } => assert_eq!(member.name, "Ada"),
        other => panic!("{other:?}"),
    }
}
