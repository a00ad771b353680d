//! Faults: a node killed in the middle of edits, a database that goes
//! away. Whatever was acknowledged is kept; nothing is acknowledged that
//! was not stored.

use futures_util::StreamExt;
use rookery_common::{Bytes, ClientMessage, CommandId, ServerMessage};
use tokio_tungstenite::tungstenite::Message;
use yrs::Text;

use crate::cluster::Node;
use crate::notes::{Editor, Postgres, assert_not_saved, assert_saved};
use crate::support::tempdir::TempDir;
use crate::support::{TestServer, within};

/// The words the editor appends, one per update, each after the last.
fn word(n: usize) -> String {
    format!("w{n} ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_edits_keeps_every_acknowledged_edit() {
    let data = TempDir::new();
    // No command limit: the editor sends as fast as the socket takes it.
    let limits = ["--max-command-rate", "1000000"];
    let mut node = Node::start_alone(data.path(), &limits);
    let ada = Editor::join_with(node.client("Ada", "anon-ada").await, "crash-note").await;

    // 2,000 updates, each appending a word, sent without waiting; the node
    // dies once 50 are acknowledged, with the rest in flight.
    let n_updates = 2000;
    let updates: Vec<Vec<u8>> = (0..n_updates)
        .map(|n| {
            ada.edit(|txn, body| {
                let end = body.len(txn);
                body.insert(txn, end, &word(n));
            })
        })
        .collect();
    let channel = ada.channel.clone();
    let (mut sink, mut stream) = ada.client.socket.split();
    let sender = tokio::spawn(async move {
        use futures_util::SinkExt;
        for (n, update) in updates.into_iter().enumerate() {
            let command = ClientMessage::DocUpdate {
                id: Some(CommandId(10_000 + n as u64)),
                channel: channel.clone(),
                update: Bytes(update),
            };
            let text = rookery_common::codec::encode_client(&command);
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    let mut acknowledged = Vec::new();
    let mut killed = false;
    within(async {
        while let Some(Ok(message)) = stream.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            match rookery_common::decode_server(text.as_str()).unwrap() {
                ServerMessage::DocSaved {
                    id: Some(CommandId(id)),
                    ..
                } => acknowledged.push((id - 10_000) as usize),
                ServerMessage::Error { code, .. } => panic!("refused: {code:?}"),
                _ => {}
            }
            if acknowledged.len() == 50 && !killed {
                node.kill();
                killed = true;
            }
        }
    })
    .await;
    sender.await.unwrap();
    assert!(killed, "the node died mid-stream");
    assert!(
        acknowledged.len() < n_updates,
        "some edits were still in flight when it died"
    );

    // Another node on the same data: every acknowledged word is there, and
    // what is there is the edits in order, none half-applied.
    let node = Node::start_alone(data.path(), &limits);
    let carol = Editor::join_with(node.client("Carol", "anon-carol").await, "crash-note").await;
    let text = carol.text();
    let mut kept = 0;
    let mut expected = String::new();
    while kept < n_updates && text.starts_with(&format!("{expected}{}", word(kept))) {
        expected += &word(kept);
        kept += 1;
    }
    assert_eq!(text, expected, "the edits in order, whole");
    let last_acknowledged = acknowledged.iter().max().copied().unwrap();
    assert!(
        kept > last_acknowledged,
        "acknowledged up to {last_acknowledged}, kept {kept}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_goes_away_gets_not_saved_and_loses_nothing() {
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let store = rookery::store::Store::open_postgres(&postgres.url())
        .await
        .unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let mut ada = Editor::join(&server, "Ada", "outage").await;
    let mut bob = Editor::join(&server, "Bob", "outage").await;
    let before = ada.edit(|txn, body| body.insert(txn, 0, "before "));
    assert_saved(&ada.send_update(before).await);

    tokio::task::block_in_place(|| postgres.stop());
    // Applied and relayed, but not stored: not acknowledged.
    let during = ada.edit(|txn, body| body.insert(txn, 7, "during"));
    assert_not_saved(&ada.send_update(during).await);
    bob.wait_for_text("before during").await;

    tokio::task::block_in_place(|| postgres.resume());
    // The next update is acknowledged only once the store has everything,
    // the edit made during the outage included.
    assert_saved(&bob.send_update(vec![0, 0]).await);
    let stored = server.state.notes.store().load("outage").await.unwrap();
    let restored = rookery::notes::NoteDocument::restore(
        stored.snapshot.as_deref(),
        stored.snapshot_seq,
        &stored.updates,
    )
    .unwrap();
    assert_eq!(restored.body(), "before during");
}

/// One client's blocks listed twice, overlapping (found by the
/// `yjs_integrate` fuzz target): yrs integrated it unchecked and freed a
/// block others still pointed to, which crashed or aborted the process.
const OVERLAPPING_BLOCKS: &[u8] = &[
    2, 1, 0, 0, 0, 2, 1, 0, 0, 0, 42, 2, 2, 2, 0, 190, 190, 190, 190, 190, 190, 2, 0, 2, 0, 0, 42,
    2, 2, 2, 0, 190, 190, 190, 190, 190, 190, 2, 0, 2, 0, 0, 2,
];

#[tokio::test]
async fn an_update_that_would_break_yrs_is_refused_and_nobody_notices() {
    let server = TestServer::start().await;
    let mut ada = Editor::join(&server, "Ada", "poisoned").await;
    let mut bob = Editor::join(&server, "Bob", "poisoned").await;
    let mut carol = server.client("Carol").await;
    carol.subscribe("chat:lobby").await;
    let kept = ada.edit(|txn, body| body.insert(txn, 0, "kept"));
    assert_saved(&ada.send_update(kept).await);
    bob.wait_for_text("kept").await;

    let mut mallory = Editor::join(&server, "Mallory", "poisoned").await;
    let reply = mallory.send_update(OVERLAPPING_BLOCKS.to_vec()).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: rookery_common::ErrorCode::InvalidUpdate,
                ..
            }
        ),
        "{reply:?}"
    );
    // The node lives on: a chat bystander still receives, and the note's
    // editors go on editing, each edit reaching the other.
    let mut dave = server.client("Dave").await;
    dave.publish("chat:lobby", serde_json::json!("after")).await;
    assert_eq!(carol.next_publication().await, serde_json::json!("after"));
    let more = bob.edit(|txn, body| body.insert(txn, 4, " and more"));
    assert_saved(&bob.send_update(more).await);
    ada.wait_for_text("kept and more").await;
    let erin = Editor::join(&server, "Erin", "poisoned").await;
    assert_eq!(erin.text(), "kept and more");
}
