//! The notes list over real sockets: `note_list`, `note_create`,
//! `note_rename` and `note_delete`, and the `notes_list:all` events that
//! keep a list up to date; renames and deletions reaching `/ws` and `/yjs`
//! editors; tombstones in the store (SQLite here, Postgres in `notes`).

use futures_util::{SinkExt, StreamExt};
use rookery::auth::ConnectionClaims;
use rookery::hub::unix_time_ms;
use rookery::notes::TITLE;
use rookery::store::{NoteStatus, Store, StoreError, StoredNote};
use rookery_common::notes::{MAX_TITLE_CHARS, NOTES_LIST_CHANNEL};
use rookery_common::{
    Bytes, ChannelName, ClientMessage, ErrorCode, NoteListEvent, NoteSummary, ServerMessage,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use yrs::encoding::read::Cursor;
use yrs::sync::{Message as SyncWire, MessageReader, SyncMessage};
use yrs::updates::decoder::{Decode, DecoderV1};
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, StateVector, Text, Transact, Update};

use crate::notes::{Editor, Sabotage, assert_saved, new_doc};
use crate::support::tempdir::TempDir;
use crate::support::{TestClient, TestServer, minter, wait_until, within};

async fn create(client: &mut TestClient, title: &str) -> NoteSummary {
    let title = title.to_owned();
    match client
        .request(|id| ClientMessage::NoteCreate { id, title })
        .await
    {
        ServerMessage::NoteCreated { note, .. } => note,
        other => panic!("{other:?}"),
    }
}

async fn list(client: &mut TestClient) -> Vec<NoteSummary> {
    match client.request(|id| ClientMessage::NoteList { id }).await {
        ServerMessage::Notes { notes, .. } => notes,
        other => panic!("{other:?}"),
    }
}

async fn rename(client: &mut TestClient, note: &str, title: &str) -> ServerMessage {
    let (note, title) = (note.to_owned(), title.to_owned());
    client
        .request(|id| ClientMessage::NoteRename { id, note, title })
        .await
}

async fn delete(client: &mut TestClient, note: &str) -> ServerMessage {
    let note = note.to_owned();
    client
        .request(|id| ClientMessage::NoteDelete { id, note })
        .await
}

async fn next_list_event(viewer: &mut TestClient) -> NoteListEvent {
    serde_json::from_value(viewer.next_publication().await).expect("a notes list event")
}

#[track_caller]
fn assert_error(reply: &ServerMessage, expected: ErrorCode) {
    assert!(
        matches!(reply, ServerMessage::Error { code, .. } if *code == expected),
        "expected {expected}: {reply:?}"
    );
}

/// A standard y-websocket client on `/yjs/{note}`.
struct YjsPeer {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    doc: Doc,
}

impl YjsPeer {
    fn url(server: &TestServer, note: &str) -> String {
        format!("ws://{}/yjs/{note}", server.address)
    }

    async fn open(server: &TestServer, note: &str) -> Self {
        let (mut socket, _) = tokio_tungstenite::connect_async(Self::url(server, note))
            .await
            .expect("the upgrade is accepted");
        let step1 = SyncWire::Sync(SyncMessage::SyncStep1(StateVector::default())).encode_v1();
        socket.send(Message::Binary(step1.into())).await.unwrap();
        Self {
            socket,
            doc: new_doc(),
        }
    }

    fn title(&self) -> String {
        self.doc
            .get_or_insert_text(TITLE)
            .get_string(&self.doc.transact())
    }

    /// Applies what the server sends until the title is `expected`.
    async fn wait_for_title(&mut self, expected: &str) {
        while self.title() != expected {
            let message = within(self.socket.next())
                .await
                .expect("socket still open")
                .expect("no socket error");
            let Message::Binary(data) = message else {
                continue;
            };
            let mut decoder = DecoderV1::new(Cursor::new(&data));
            for message in MessageReader::new(&mut decoder) {
                if let SyncWire::Sync(
                    SyncMessage::SyncStep2(update) | SyncMessage::Update(update),
                ) = message.unwrap()
                {
                    self.doc
                        .transact_mut()
                        .apply_update(Update::decode_v1(&update).unwrap())
                        .unwrap();
                }
            }
        }
    }

    /// Reads until the server's close frame; returns its code.
    async fn closed(&mut self) -> u16 {
        loop {
            match within(self.socket.next()).await {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(_)) => {}
                other => panic!("socket ended without a close frame: {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_created_note_is_listed_and_announced() {
    let server = TestServer::start().await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;
    let mut ada = server.client("Ada").await;

    let groceries = create(&mut ada, "Groceries").await;
    assert_eq!(groceries.title, "Groceries");
    assert_eq!(groceries.id.len(), 12);
    assert!(groceries.id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed {
            note: groceries.clone()
        }
    );
    let untitled = create(&mut ada, "").await;
    assert_ne!(untitled.id, groceries.id);
    assert_eq!(untitled.title, "");
    assert_eq!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed {
            note: untitled.clone()
        }
    );
    // Opening a new id creates a note as well (a Yjs client can): listed too.
    let _bob = Editor::join(&server, "Bob", "opened-by-id").await;
    match next_list_event(&mut viewer).await {
        NoteListEvent::Changed { note } => {
            assert_eq!(
                (note.id.as_str(), note.title.as_str()),
                ("opened-by-id", "")
            );
        }
        other => panic!("{other:?}"),
    }

    // Only the server publishes there.
    let reply = ada
        .publish(
            NOTES_LIST_CHANNEL,
            serde_json::json!({"event": "deleted", "id": "x"}),
        )
        .await;
    assert_error(&reply, ErrorCode::PermissionDenied);

    let mut listed: Vec<String> = list(&mut ada).await.into_iter().map(|n| n.id).collect();
    listed.sort();
    let mut expected = vec![groceries.id, untitled.id, "opened-by-id".to_owned()];
    expected.sort();
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn the_list_shows_the_most_recently_edited_first() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    let older = create(&mut ada, "Older").await;
    // Distinct milliseconds, so the order is by time, not by id.
    wait_until(|| unix_time_ms() > older.updated_at).await;
    let newer = create(&mut ada, "Newer").await;
    let ids = |notes: &[NoteSummary]| notes.iter().map(|n| n.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&list(&mut ada).await),
        [newer.id.clone(), older.id.clone()]
    );

    wait_until(|| unix_time_ms() > newer.updated_at).await;
    let mut editor = Editor::join(&server, "Ada", &older.id).await;
    editor.type_at(0, "milk").await;
    let listed = list(&mut ada).await;
    assert_eq!(ids(&listed), [older.id.clone(), newer.id.clone()]);
    assert!(listed[0].updated_at > newer.updated_at);
    assert_eq!(listed[0].title, "Older");
}

#[tokio::test]
async fn typing_is_announced_sparingly_but_a_title_edit_at_once() {
    let server = TestServer::start().await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;
    let mut ada = server.client("Ada").await;
    let plan = create(&mut ada, "Plan").await;
    assert!(matches!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed { note } if note.title == "Plan"
    ));
    let mut editor = Editor::join(&server, "Ada", &plan.id).await;
    editor.type_at(0, "first").await;
    editor.type_at(5, " second").await;
    // A peer's edit of the title text: announced at once, with the title.
    let update = editor.edit_text(TITLE, |txn, title| title.insert(txn, 4, " B"));
    assert!(matches!(
        editor.send_update(update).await,
        ServerMessage::DocSaved { .. }
    ));
    // Publications arrive in order: had the typing (within 5 s of the
    // creation) been announced, its event would come first.
    match next_list_event(&mut viewer).await {
        NoteListEvent::Changed { note } => assert_eq!(note.title, "Plan B"),
        other => panic!("{other:?}"),
    }
    assert_eq!(list(&mut ada).await[0].title, "Plan B");
}

#[tokio::test]
async fn an_edit_after_the_interval_is_announced() {
    let server = TestServer::start_with(|config| {
        config.limits.notes.announce_edits_every = std::time::Duration::ZERO;
    })
    .await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;
    let mut ada = server.client("Ada").await;
    let log = create(&mut ada, "Log").await;
    assert!(matches!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed { note } if note == log
    ));
    wait_until(|| unix_time_ms() > log.updated_at).await;
    let mut editor = Editor::join(&server, "Ada", &log.id).await;
    editor.type_at(0, "entry").await;
    match next_list_event(&mut viewer).await {
        NoteListEvent::Changed { note } => {
            assert_eq!(
                (note.id.as_str(), note.title.as_str()),
                (log.id.as_str(), "Log")
            );
            assert!(note.updated_at > log.updated_at);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rename_reaches_every_editor_and_the_list_and_survives_a_restart() {
    let data = TempDir::new();
    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let mut ada = server.client("Ada").await;
    let note = create(&mut ada, "Draft").await;
    let mut bob = Editor::join(&server, "Bob", &note.id).await;
    assert_eq!(bob.title(), "Draft");
    let mut yjs = YjsPeer::open(&server, &note.id).await;
    yjs.wait_for_title("Draft").await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;

    let title = "Final ✓ 👋";
    let renamed = match rename(&mut ada, &note.id, title).await {
        ServerMessage::NoteRenamed { note, .. } => note,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (renamed.id.as_str(), renamed.title.as_str()),
        (note.id.as_str(), title)
    );
    bob.wait_for_title(title).await;
    yjs.wait_for_title(title).await;
    assert_eq!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed {
            note: renamed.clone()
        }
    );
    drop((bob, yjs));
    server.shutdown().await.unwrap();

    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let mut dave = server.client("Dave").await;
    assert_eq!(list(&mut dave).await, [renamed]);
    let carol = Editor::join(&server, "Carol", &note.id).await;
    assert_eq!(carol.title(), title);
}

#[tokio::test]
async fn a_deleted_note_lets_everyone_go_and_never_comes_back() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    let note = create(&mut ada, "Doomed").await;
    // Untitled, so never loaded: the only open note is the doomed one.
    let keep = create(&mut ada, "").await;
    let mut bob = Editor::join(&server, "Bob", &note.id).await;
    bob.type_at(0, "soon gone").await;
    let mut yjs = YjsPeer::open(&server, &note.id).await;
    yjs.wait_for_title("Doomed").await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;

    let reply = delete(&mut ada, &note.id).await;
    assert!(
        matches!(&reply, ServerMessage::NoteDeleted { note: id, .. } if *id == note.id),
        "{reply:?}"
    );
    loop {
        match bob.client.recv().await {
            ServerMessage::DocDeleted { channel } => {
                assert_eq!(channel, bob.channel);
                break;
            }
            ServerMessage::DocUpdated { .. } | ServerMessage::DocAwareness { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    let late = bob.edit(|txn, body| body.insert(txn, 0, "late "));
    assert_error(&bob.send_update(late.clone()).await, ErrorCode::NoteDeleted);
    // The session forgot the note: it is no longer joined.
    assert_error(&bob.send_update(late).await, ErrorCode::NotJoined);
    assert_eq!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Deleted {
            id: note.id.clone()
        }
    );
    assert_eq!(yjs.closed().await, 1000);

    assert_eq!(list(&mut ada).await, [keep]);
    let channel = ChannelName::new("notes", &note.id).unwrap();
    let reply = ada
        .request(|id| ClientMessage::DocSync {
            id,
            channel,
            state_vector: Bytes(StateVector::default().encode_v1()),
        })
        .await;
    assert_error(&reply, ErrorCode::NoteDeleted);
    match tokio_tungstenite::connect_async(YjsPeer::url(&server, &note.id)).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 410),
        other => panic!("the upgrade must be refused: {other:?}"),
    }
    // Nothing of it stays: not in memory, not in the store but its tombstone.
    assert_eq!(server.state.notes.n_open(), 0);
    let store = server.state.notes.store();
    assert_eq!(store.load(&note.id).await.unwrap(), StoredNote::default());
    assert_eq!(
        store.note_status(&note.id).await.unwrap(),
        NoteStatus::Deleted
    );
}

#[tokio::test]
async fn unknown_notes_and_bad_titles_are_refused_with_their_codes() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    assert_error(
        &rename(&mut ada, "no-such-note", "Hi").await,
        ErrorCode::UnknownNote,
    );
    assert_error(
        &rename(&mut ada, "not an id!", "Hi").await,
        ErrorCode::UnknownNote,
    );
    assert_error(
        &delete(&mut ada, "no-such-note").await,
        ErrorCode::UnknownNote,
    );
    // A rename creates nothing.
    assert_eq!(
        server.state.notes.status("no-such-note").await.unwrap(),
        NoteStatus::Missing
    );
    assert_eq!(list(&mut ada).await, []);

    let too_long = "x".repeat(MAX_TITLE_CHARS + 1);
    for bad in [too_long.as_str(), "two\nlines"] {
        let title = bad.to_owned();
        let reply = ada
            .request(|id| ClientMessage::NoteCreate { id, title })
            .await;
        assert_error(&reply, ErrorCode::InvalidTitle);
    }
    let longest = create(&mut ada, &"é".repeat(MAX_TITLE_CHARS)).await;
    assert_error(
        &rename(&mut ada, &longest.id, &too_long).await,
        ErrorCode::InvalidTitle,
    );
    assert_eq!(list(&mut ada).await, std::slice::from_ref(&longest));

    assert!(matches!(
        delete(&mut ada, &longest.id).await,
        ServerMessage::NoteDeleted { .. }
    ));
    assert_error(&delete(&mut ada, &longest.id).await, ErrorCode::NoteDeleted);
    assert_error(
        &rename(&mut ada, &longest.id, "Back?").await,
        ErrorCode::NoteDeleted,
    );
}

fn private_notes(config: &mut rookery::Config) {
    for namespace in ["notes_list", "notes"] {
        let mut private = config.namespaces.get(namespace).unwrap().clone();
        private.private = true;
        config
            .namespaces
            .extend([(namespace.to_owned(), private)].into());
    }
}

async fn connect_granted(server: &TestServer, user: &str, channels: &[&str]) -> TestClient {
    let token = minter().mint(&ConnectionClaims {
        sub: user.into(),
        name: None,
        exp: None,
        channels: channels.iter().map(|&channel| channel.to_owned()).collect(),
        channel: None,
    });
    let mut client = TestClient::open(&server.ws_url()).await;
    let reply = client.connect_with_token(&token).await;
    assert!(
        matches!(reply, ServerMessage::Connected { .. }),
        "{reply:?}"
    );
    client
}

#[tokio::test]
async fn private_notes_need_a_grant() {
    let server = TestServer::start_with(private_notes).await;
    let mut anonymous = server.client("Anon").await;
    let reply = anonymous.request(|id| ClientMessage::NoteList { id }).await;
    assert_error(&reply, ErrorCode::PermissionDenied);
    let reply = anonymous
        .request(|id| ClientMessage::NoteCreate {
            id,
            title: "Mine".into(),
        })
        .await;
    assert_error(&reply, ErrorCode::PermissionDenied);

    let token = minter().mint(&ConnectionClaims {
        sub: "alice".into(),
        name: None,
        exp: None,
        channels: vec!["notes_list:*".into(), "notes:*".into()],
        channel: None,
    });
    let mut alice = TestClient::open(&server.ws_url()).await;
    alice.connect_with_token(&token).await;
    assert_eq!(list(&mut alice).await, []);
    let note = create(&mut alice, "Alice's").await;
    assert_eq!(list(&mut alice).await, std::slice::from_ref(&note));
    assert_error(
        &rename(&mut anonymous, &note.id, "Taken over").await,
        ErrorCode::PermissionDenied,
    );
    assert_error(
        &delete(&mut anonymous, &note.id).await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(list(&mut alice).await, [note]);
}

#[tokio::test]
async fn the_list_shows_only_the_notes_a_connection_may_read() {
    let server = TestServer::start_with(private_notes).await;
    let mut alice = connect_granted(&server, "alice", &["notes_list:*", "notes:*"]).await;
    let mine = create(&mut alice, "Alice's own").await;
    let shared = create(&mut alice, "Shared").await;
    let shared_channel = format!("notes:{}", shared.id);
    let mut bob = connect_granted(&server, "bob", &["notes_list:all", &shared_channel]).await;
    assert_eq!(list(&mut bob).await, std::slice::from_ref(&shared));
    let mut carol = connect_granted(&server, "carol", &["notes_list:*"]).await;
    assert_eq!(list(&mut carol).await, []);
    let mut listed: Vec<String> = list(&mut alice).await.into_iter().map(|n| n.id).collect();
    listed.sort();
    let mut expected = vec![mine.id, shared.id];
    expected.sort();
    assert_eq!(listed, expected);
}

/// Replaces the title the editor knows 40 times, each acknowledged.
async fn retitle_many(editor: &mut Editor, name: &str) {
    for n in 0..40 {
        let update = editor.edit_text(TITLE, |txn, title| {
            let len = title.len(txn);
            title.remove_range(txn, 0, len);
            title.insert(txn, 0, &format!("{name} {n}"));
        });
        assert_saved(&editor.send_update(update).await);
    }
}

#[tokio::test]
async fn concurrent_title_edits_leave_the_list_with_the_documents_title() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    let note = create(&mut ada, "Start").await;
    let mut one = Editor::join(&server, "One", &note.id).await;
    let mut two = Editor::join(&server, "Two", &note.id).await;
    // Each replaces the title it knows, over and over, both at once.
    tokio::join!(retitle_many(&mut one, "One"), retitle_many(&mut two, "Two"));
    let title = Editor::join(&server, "Reader", &note.id).await.title();
    assert!(
        title.contains("One 39") && title.contains("Two 39"),
        "{title}"
    );
    let listed = list(&mut ada).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].title, title);
}

#[tokio::test]
async fn a_title_the_store_refused_is_written_with_the_next_edit() {
    let server = TestServer::start().await;
    let sabotage = Sabotage::open(&server.state.config.data_dir).await;
    let mut ada = server.client("Ada").await;
    let note = create(&mut ada, "Old").await;
    let mut editor = Editor::join(&server, "Ada", &note.id).await;
    sabotage.refuse_titles().await;
    let update = editor.edit_text(TITLE, |txn, title| title.insert(txn, 3, " → New"));
    assert_error(&editor.send_update(update).await, ErrorCode::NotSaved);
    assert_eq!(list(&mut ada).await[0].title, "Old");

    sabotage.heal("refuse_titles").await;
    // An edit of the body alone: the stale title goes with it.
    let body = editor.edit(|txn, body| body.insert(txn, 0, "text"));
    assert_saved(&editor.send_update(body).await);
    assert_eq!(list(&mut ada).await[0].title, "Old → New");
}

#[tokio::test]
async fn a_burst_of_typing_is_announced_once_more_when_it_stops() {
    let server = TestServer::start_with(|config| {
        config.limits.notes.announce_edits_every = std::time::Duration::from_millis(500);
    })
    .await;
    let mut viewer = server.client("Viewer").await;
    viewer.subscribe(NOTES_LIST_CHANNEL).await;
    let mut ada = server.client("Ada").await;
    let note = create(&mut ada, "Burst").await;
    assert!(matches!(
        next_list_event(&mut viewer).await,
        NoteListEvent::Changed { note: created } if created == note
    ));
    let mut editor = Editor::join(&server, "Ada", &note.id).await;
    for n in 0..5 {
        let update = editor.edit(|txn, body| body.insert(txn, n, "x"));
        assert_saved(&editor.send_update(update).await);
    }
    let last = list(&mut ada).await.remove(0);
    assert!(last.updated_at >= note.updated_at);
    // Held back while typing, the note as typing left it is announced at
    // the end of the interval: the list's time and order settle.
    loop {
        match next_list_event(&mut viewer).await {
            NoteListEvent::Changed { note: changed } if changed.updated_at == last.updated_at => {
                assert_eq!(changed, last);
                break;
            }
            NoteListEvent::Changed { note: changed } => {
                assert_eq!(changed.id, note.id);
                assert!(changed.updated_at < last.updated_at, "{changed:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

/// What a deletion leaves in a store: a tombstone that lists nowhere,
/// takes no writes and never comes back. Ids start with `prefix`, so a
/// store other stories use is fine.
pub async fn tombstones_hold(store: &Store, prefix: &str) {
    let (keep, gone, never) = (
        format!("{prefix}keep"),
        format!("{prefix}gone"),
        format!("{prefix}never"),
    );
    assert!(store.create_note(&keep, 1).await.unwrap());
    assert!(store.create_note(&gone, 2).await.unwrap());
    assert!(!store.create_note(&gone, 3).await.unwrap(), "taken");
    store.append_update(&keep, 1, &[0, 0], 5).await.unwrap();
    store.append_update(&gone, 1, &[0, 0], 10).await.unwrap();
    store.compact(&gone, &[0, 0], 1).await.unwrap();
    store.append_update(&gone, 2, &[0, 0], 11).await.unwrap();
    let mine = || async {
        store
            .list()
            .await
            .unwrap()
            .into_iter()
            .filter(|note| note.id.starts_with(prefix))
            .map(|note| (note.id, note.updated_at))
            .collect::<Vec<_>>()
    };
    assert_eq!(mine().await, [(gone.clone(), 11), (keep.clone(), 5)]);

    assert!(store.delete_note(&gone, 20).await.unwrap());
    assert!(!store.delete_note(&gone, 21).await.unwrap(), "already");
    assert!(!store.delete_note(&never, 21).await.unwrap(), "missing");
    assert_eq!(mine().await, [(keep.clone(), 5)]);
    assert_eq!(store.note_status(&gone).await.unwrap(), NoteStatus::Deleted);
    assert_eq!(store.note_status(&keep).await.unwrap(), NoteStatus::Live);
    assert_eq!(
        store.note_status(&never).await.unwrap(),
        NoteStatus::Missing
    );
    assert_eq!(store.load(&gone).await.unwrap(), StoredNote::default());
    assert!(matches!(
        store.ensure_note(&gone, 30).await,
        Err(StoreError::NoteDeleted)
    ));
    assert!(!store.create_note(&gone, 30).await.unwrap());
    assert!(matches!(
        store.append_update(&gone, 3, &[0, 0], 30).await,
        Err(StoreError::NoteDeleted)
    ));
    assert!(matches!(
        store.compact(&gone, &[0, 0], 3).await,
        Err(StoreError::NoteDeleted)
    ));
    store.set_title(&gone, "ghost").await.unwrap();
    assert_eq!(store.note_status(&gone).await.unwrap(), NoteStatus::Deleted);
    assert_eq!(store.load(&gone).await.unwrap(), StoredNote::default());
    assert!(store.ensure_note(&never, 40).await.unwrap(), "created");
    assert!(!store.ensure_note(&never, 41).await.unwrap(), "existed");
}

#[tokio::test]
async fn sqlite_keeps_tombstones() {
    let data = TempDir::new();
    let store = Store::open_sqlite(data.path()).await.unwrap();
    tombstones_hold(&store, "").await;
}
