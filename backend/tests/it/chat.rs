//! Stories of people chatting.

use rookery_common::ServerMessage;
use serde_json::json;

use crate::support::TestServer;

#[tokio::test]
async fn bob_receives_what_alice_publishes_in_their_room() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    alice.subscribe("chat:lobby").await;
    bob.subscribe("chat:lobby").await;

    let reply = alice
        .publish("chat:lobby", json!({"text": "hello bob"}))
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Published {
                position: Some(_),
                ..
            }
        ),
        "{reply:?}"
    );
    assert_eq!(bob.next_publication().await, json!({"text": "hello bob"}));

    // Someone in another room hears nothing of it.
    let mut carol = server.client("Carol").await;
    carol.subscribe("chat:elsewhere").await;
    carol
        .publish("chat:elsewhere", json!({"text": "anyone?"}))
        .await;
    assert_eq!(carol.next_publication().await, json!({"text": "anyone?"}));
}

#[tokio::test]
async fn publications_carry_their_sender_and_arrive_in_order() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    let mut bob = server.client("Bob").await;
    bob.subscribe("chat:lobby").await;
    for n in 0..30 {
        alice
            .publish("chat:lobby", json!({"text": n.to_string()}))
            .await;
    }
    let mut last_offset = 0;
    let mut n = 0;
    while n < 30 {
        if let ServerMessage::Publication { publication, .. } = bob.recv().await {
            assert_eq!(publication.data["text"], n.to_string());
            assert_eq!(publication.sender.unwrap().name, "Alice");
            let offset = publication.position.unwrap().offset;
            assert!(offset > last_offset);
            last_offset = offset;
            n += 1;
        }
    }
}

#[tokio::test]
async fn who_is_here_and_history_on_join() {
    let server = TestServer::start().await;
    let mut alice = server.client("Alice").await;
    alice.subscribe("chat:lobby").await;
    alice.publish("chat:lobby", json!({"text": "first"})).await;
    alice.publish("chat:lobby", json!({"text": "second"})).await;

    let mut bob = server.client("Bob").await;
    let channel = rookery_common::ChannelName::parse("chat:lobby").unwrap();
    let reply = bob
        .request(|id| rookery_common::ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: Some(10),
            token: None,
        })
        .await;
    let ServerMessage::Subscribed {
        publications,
        members,
        ..
    } = reply
    else {
        panic!("{reply:?}")
    };
    let texts: Vec<_> = publications
        .iter()
        .map(|p| p.data["text"].clone())
        .collect();
    assert_eq!(texts, [json!("first"), json!("second")]);
    let names: Vec<_> = members.unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["Alice", "Bob"]);

    // Alice sees Bob arrive, then leave.
    loop {
        if let ServerMessage::Join { member, .. } = alice.recv().await {
            assert_eq!(member.name, "Bob");
            break;
        }
    }
    drop(bob);
    loop {
        if let ServerMessage::Leave { member, .. } = alice.recv().await {
            assert_eq!(member.name, "Bob");
            break;
        }
    }
}
