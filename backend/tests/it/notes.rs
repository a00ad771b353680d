//! Collaborative notes over real sockets, with a real store: people edit
//! one document at once and converge; what was acknowledged survives
//! restarts and unloading; bad updates harm nothing. SQLite by default, and
//! Postgres started here from Debian's packages.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rookery::notes::{BODY, NoteDocument, TITLE};
use rookery::store::Store;
use rookery_common::{Bytes, ChannelName, ClientMessage, ErrorCode, ServerMessage};
use sqlx::AssertSqlSafe;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{
    ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update,
};

use crate::support::tempdir::TempDir;
use crate::support::{TestClient, TestServer, wait_until};

/// A person with their own copy of the note.
pub struct Editor {
    pub client: TestClient,
    doc: Doc,
    pub channel: ChannelName,
}

pub fn new_doc() -> Doc {
    Doc::with_options(Options {
        offset_kind: OffsetKind::Utf16,
        ..Options::default()
    })
}

impl Editor {
    pub async fn join(server: &TestServer, name: &str, note: &str) -> Self {
        Self::join_with(server.client(name).await, note).await
    }

    /// Joins `note` over a connected client (of any server).
    pub async fn join_with(client: TestClient, note: &str) -> Self {
        let mut editor = Self {
            client,
            doc: new_doc(),
            channel: ChannelName::new("notes", note).unwrap(),
        };
        editor.sync().await;
        editor
    }

    /// Sync step 1 and back: afterwards both sides hold the union.
    async fn sync(&mut self) {
        let state_vector = Bytes(self.doc.transact().state_vector().encode_v1());
        let channel = self.channel.clone();
        let reply = self
            .client
            .request(|id| ClientMessage::DocSync {
                id,
                channel,
                state_vector,
            })
            .await;
        let ServerMessage::DocSynced {
            update,
            state_vector,
            ..
        } = reply
        else {
            panic!("{reply:?}")
        };
        self.apply(&update.0);
        let server_vector = StateVector::decode_v1(&state_vector.0).unwrap();
        let missing = self
            .doc
            .transact()
            .encode_state_as_update_v1(&server_vector);
        if !missing.is_empty() && missing != [0, 0] {
            self.send_update(missing).await;
        }
    }

    pub fn apply(&self, update: &[u8]) {
        self.doc
            .transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
    }

    /// Types `text` at `at` and waits for the server's "saved".
    pub async fn type_at(&mut self, at: u32, text: &str) {
        let update = self.edit(|txn, body| body.insert(txn, at, text));
        self.send_update(update).await;
    }

    pub fn edit(&self, f: impl FnOnce(&mut yrs::TransactionMut<'_>, &yrs::TextRef)) -> Vec<u8> {
        self.edit_text(BODY, f)
    }

    /// Edits the shared text `name` (`BODY` or `TITLE`); returns the update.
    pub fn edit_text(
        &self,
        name: &str,
        f: impl FnOnce(&mut yrs::TransactionMut<'_>, &yrs::TextRef),
    ) -> Vec<u8> {
        let body = self.doc.get_or_insert_text(name);
        let before = self.doc.transact().state_vector();
        {
            let mut txn = self.doc.transact_mut();
            f(&mut txn, &body);
        }
        self.doc.transact().encode_state_as_update_v1(&before)
    }

    pub async fn send_update(&mut self, update: Vec<u8>) -> ServerMessage {
        let channel = self.channel.clone();
        self.client
            .request(|id| ClientMessage::DocUpdate {
                id,
                channel,
                update: Bytes(update),
            })
            .await
    }

    /// Applies every update pushed so far, until the text is `expected`.
    pub async fn wait_for_text(&mut self, expected: &str) {
        self.wait_for(|editor| editor.text() == expected).await;
    }

    /// Applies every update pushed so far, until the title is `expected`.
    pub async fn wait_for_title(&mut self, expected: &str) {
        self.wait_for(|editor| editor.title() == expected).await;
    }

    async fn wait_for(&mut self, done: impl Fn(&Self) -> bool) {
        while !done(self) {
            match self.client.recv().await {
                ServerMessage::DocUpdated { update, .. } => self.apply(&update.0),
                ServerMessage::DocAwareness { .. } | ServerMessage::DocSaved { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn text(&self) -> String {
        self.doc
            .get_or_insert_text(BODY)
            .get_string(&self.doc.transact())
    }

    pub fn title(&self) -> String {
        self.doc
            .get_or_insert_text(TITLE)
            .get_string(&self.doc.transact())
    }
}

/// Store failures on demand, for real: through a connection of its own
/// to the server's SQLite file, a trigger makes SQLite refuse a write (as a
/// full disk or a broken file would, the server gets an error from the
/// database); dropping the trigger heals the store. No mock: the server
/// runs its ordinary code against its ordinary database.
pub struct Sabotage {
    pool: SqlitePool,
}

impl Sabotage {
    pub async fn open(data_dir: &Path) -> Self {
        let options = SqliteConnectOptions::new().filename(data_dir.join("rookery.db"));
        Self {
            pool: SqlitePool::connect_with(options).await.unwrap(),
        }
    }

    async fn run(&self, sql: String) {
        sqlx::query(AssertSqlSafe(sql))
            .execute(&self.pool)
            .await
            .unwrap();
    }

    /// Every row written to `table` is refused (`note_updates`: appends;
    /// `note_snapshots`: compactions).
    pub async fn refuse_rows(&self, table: &str) {
        self.run(format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'refused on purpose by the test'); END"
        ))
        .await;
    }

    /// Every write of a note's title is refused.
    pub async fn refuse_titles(&self) {
        self.run(
            "CREATE TRIGGER refuse_titles BEFORE UPDATE OF title ON notes \
             BEGIN SELECT RAISE(ABORT, 'refused on purpose by the test'); END"
                .into(),
        )
        .await;
    }

    /// Drops a refusal: `refuse_{table}`, or `refuse_titles`.
    pub async fn heal(&self, refusal: &str) {
        self.run(format!("DROP TRIGGER {refusal}")).await;
    }
}

#[track_caller]
pub fn assert_saved(reply: &ServerMessage) {
    assert!(matches!(reply, ServerMessage::DocSaved { .. }), "{reply:?}");
}

#[track_caller]
pub fn assert_not_saved(reply: &ServerMessage) {
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::NotSaved,
                ..
            }
        ),
        "{reply:?}"
    );
}

/// The body as the store holds it: what a restart would load.
async fn stored_body(store: &Store, note: &str) -> String {
    let stored = store.load(note).await.unwrap();
    NoteDocument::restore(
        stored.snapshot.as_deref(),
        stored.snapshot_seq,
        &stored.updates,
    )
    .unwrap()
    .body()
}

async fn two_people_converge(server: &TestServer, note: &str) {
    let mut ada = Editor::join(server, "Ada", note).await;
    let mut bob = Editor::join(server, "Bob", note).await;
    ada.type_at(0, "Hello").await;
    bob.wait_for_text("Hello").await;
    // Both type at once, at the same place, without seeing each other.
    let from_ada = ada.edit(|txn, body| body.insert(txn, 5, " world"));
    let from_bob = bob.edit(|txn, body| body.insert(txn, 5, ", 👋"));
    let saved_ada = ada.send_update(from_ada).await;
    let saved_bob = bob.send_update(from_bob).await;
    assert!(
        matches!(saved_ada, ServerMessage::DocSaved { .. }),
        "{saved_ada:?}"
    );
    assert!(
        matches!(saved_bob, ServerMessage::DocSaved { .. }),
        "{saved_bob:?}"
    );
    let text = server.state.notes.open(note).await.unwrap();
    let merged = server.state.notes.body(&text);
    assert!(
        merged.starts_with("Hello") && merged.contains(" world") && merged.contains(", 👋"),
        "{merged}"
    );
    ada.wait_for_text(&merged).await;
    bob.wait_for_text(&merged).await;
}

#[tokio::test]
async fn two_people_typing_at_once_converge() {
    let server = TestServer::start().await;
    two_people_converge(&server, "shared-note").await;
}

#[tokio::test]
async fn acknowledged_edits_survive_a_restart() {
    let data = TempDir::new();
    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let mut ada = Editor::join(&server, "Ada", "durable").await;
    for (at, word) in [(0, "one "), (4, "two "), (8, "three")] {
        let saved = {
            let update = ada.edit(|txn, body| body.insert(txn, at, word));
            ada.send_update(update).await
        };
        assert!(matches!(saved, ServerMessage::DocSaved { .. }), "{saved:?}");
    }
    drop(ada);
    server.shutdown().await.unwrap();

    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let carol = Editor::join(&server, "Carol", "durable").await;
    assert_eq!(carol.text(), "one two three");
}

#[tokio::test]
async fn a_note_is_unloaded_after_the_last_person_leaves_and_comes_back_whole() {
    let server = TestServer::start_with(|config| {
        config.limits.notes.unload_after = Duration::from_millis(100);
        config.limits.notes.compact_every = 5;
    })
    .await;
    let mut ada = Editor::join(&server, "Ada", "unload-me").await;
    for n in 0..12u32 {
        ada.type_at(n, "x").await;
    }
    // Compaction kept the log short while typing.
    let stored = server.state.notes.store().load("unload-me").await.unwrap();
    assert!(stored.snapshot.is_some());
    assert!(
        stored.updates.len() < 5,
        "{} updates left",
        stored.updates.len()
    );
    drop(ada);
    wait_until(|| server.state.notes.n_open() == 0).await;
    let stored = server.state.notes.store().load("unload-me").await.unwrap();
    assert!(stored.updates.is_empty(), "unloading compacts");

    let bob = Editor::join(&server, "Bob", "unload-me").await;
    assert_eq!(bob.text(), "x".repeat(12));
    assert_eq!(server.state.notes.n_open(), 1);
}

#[tokio::test]
async fn an_invalid_update_is_refused_and_harms_nothing() {
    let server = TestServer::start_with(|config| config.limits.notes.max_update_bytes = 4096).await;
    let mut ada = Editor::join(&server, "Ada", "fragile").await;
    ada.type_at(0, "intact").await;
    let mut bob = Editor::join(&server, "Bob", "fragile").await;
    assert_eq!(bob.text(), "intact");

    for garbage in [vec![0xff, 0xff, 0xff, 0x01], vec![1, 2, 3], Vec::new()] {
        let reply = ada.send_update(garbage).await;
        assert!(
            matches!(
                reply,
                ServerMessage::Error {
                    code: ErrorCode::InvalidUpdate,
                    ..
                }
            ),
            "{reply:?}"
        );
    }
    // An update over the size limit (but within the socket's message size).
    let huge = ada.edit(|txn, body| body.insert(txn, 0, &"y".repeat(8 * 1024)));
    let reply = ada.send_update(huge).await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::DocumentTooLarge,
                ..
            }
        ),
        "{reply:?}"
    );
    // Not joined yet: refused with its code.
    let mut carol = server.client("Carol").await;
    let channel = ChannelName::parse("notes:fragile").unwrap();
    let reply = carol
        .request(|id| ClientMessage::DocUpdate {
            id,
            channel,
            update: Bytes(vec![0, 0]),
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::NotJoined,
                ..
            }
        ),
        "{reply:?}"
    );

    let handle = server.state.notes.open("fragile").await.unwrap();
    assert_eq!(server.state.notes.body(&handle), "intact");
    bob.type_at(6, "!").await;
    let dave = Editor::join(&server, "Dave", "fragile").await;
    assert_eq!(dave.text(), "intact!");
}

#[tokio::test]
async fn an_edit_the_store_refused_is_stored_before_a_later_update_is_acknowledged() {
    let data = TempDir::new();
    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let sabotage = Sabotage::open(data.path()).await;
    let mut ada = Editor::join(&server, "Ada", "flaky").await;
    let mut bob = Editor::join(&server, "Bob", "flaky").await;
    let kept = ada.edit(|txn, body| body.insert(txn, 0, "kept "));
    assert_saved(&ada.send_update(kept).await);
    bob.wait_for_text("kept ").await;

    sabotage.refuse_rows("note_updates").await;
    let at_risk = ada.edit(|txn, body| body.insert(txn, 5, "at risk"));
    assert_not_saved(&ada.send_update(at_risk).await);
    // Applied and relayed before the store refused it: Bob has it, and the
    // server's state vector says it has it, so no resync sends it again.
    bob.wait_for_text("kept at risk").await;
    // While the store fails, nothing is acknowledged.
    assert_not_saved(&bob.send_update(vec![0, 0]).await);

    sabotage.heal("refuse_note_updates").await;
    // The next update, from someone else, even an empty one: acknowledged
    // only once the store holds everything, the refused edit included.
    assert_saved(&bob.send_update(vec![0, 0]).await);
    let store = server.state.notes.store().clone();
    assert_eq!(stored_body(&store, "flaky").await, "kept at risk");
    drop((ada, bob));
    server.shutdown().await.unwrap();

    let store = Store::open_sqlite(data.path()).await.unwrap();
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let carol = Editor::join(&server, "Carol", "flaky").await;
    assert_eq!(carol.text(), "kept at risk");
}

fn awareness(states: &[(u64, u32, &str)]) -> Bytes {
    let clients = states
        .iter()
        .map(|(client, clock, json)| {
            let entry = AwarenessUpdateEntry {
                clock: *clock,
                json: (*json).into(),
            };
            (ClientID::new(*client), entry)
        })
        .collect();
    Bytes(AwarenessUpdate { clients }.encode_v1())
}

fn awareness_states(update: &[u8]) -> Vec<(u64, u32, String)> {
    let mut states: Vec<_> = AwarenessUpdate::decode_v1(update)
        .unwrap()
        .clients
        .into_iter()
        .map(|(client, entry)| (client.get(), entry.clock, entry.json.to_string()))
        .collect();
    states.sort();
    states
}

impl Editor {
    /// Announces awareness states (client id, clock, JSON state).
    async fn announce(&mut self, states: &[(u64, u32, &str)]) {
        let channel = self.channel.clone();
        self.client
            .send(&ClientMessage::DocAwareness {
                channel,
                update: awareness(states),
            })
            .await;
    }

    /// The next awareness push's states.
    async fn next_awareness(&mut self) -> Vec<(u64, u32, String)> {
        loop {
            match self.client.recv().await {
                ServerMessage::DocAwareness { update, .. } => return awareness_states(&update.0),
                ServerMessage::DocUpdated { update, .. } => self.apply(&update.0),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_reconnected_editor_keeps_its_presence_when_its_old_session_goes() {
    let server = TestServer::start().await;
    let mut bob = Editor::join(&server, "Bob", "cursors").await;
    let mut old = Editor::join(&server, "Ada", "cursors").await;
    let ada = r#"{"user":{"name":"Ada"}}"#;
    old.announce(&[(7, 1, ada), (8, 1, "{}")]).await;
    assert_eq!(
        bob.next_awareness().await,
        [(7, 1, ada.to_owned()), (8, 1, "{}".to_owned())]
    );
    // The same browser on a new socket, before the old one is noticed
    // gone: the same Yjs client id, announced again.
    let mut new = Editor::join(&server, "Ada", "cursors").await;
    let again = r#"{"user":{"name":"Ada again"}}"#;
    new.announce(&[(7, 2, again)]).await;
    assert_eq!(bob.next_awareness().await, [(7, 2, again.to_owned())]);

    drop(old);
    // The old session's removal names only what it announced last.
    assert_eq!(bob.next_awareness().await, [(8, 2, "null".to_owned())]);
    let mut carol = Editor::join(&server, "Carol", "cursors").await;
    assert_eq!(carol.next_awareness().await, [(7, 2, again.to_owned())]);
    drop(new);
    assert_eq!(bob.next_awareness().await, [(7, 3, "null".to_owned())]);
}

#[tokio::test]
async fn stream_commands_do_not_apply_to_documents() {
    let server = TestServer::start().await;
    let mut ada = server.client("Ada").await;
    let channel = ChannelName::parse("notes:x").unwrap();
    let reply = ada
        .request(|id| ClientMessage::Subscribe {
            id,
            channel,
            since: None,
            rewind: None,
            token: None,
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerMessage::Error {
                code: ErrorCode::WrongKind,
                ..
            }
        ),
        "{reply:?}"
    );
}

/// A Postgres cluster of its own, from Debian's packages, on a free port.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_root: bool,
}

impl Postgres {
    pub fn start() -> Self {
        let bin = [
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.join("initdb").exists())
        .expect("Postgres server binaries (Debian package postgresql)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let postgres = Self {
            dir: TempDir::new(),
            bin,
            port,
            as_root: Command::new("id").arg("-u").output().unwrap().stdout == b"0\n",
        };
        if postgres.as_root {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(postgres.dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let data = postgres.data();
        postgres.run(
            "initdb",
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        postgres.resume();
        postgres
    }

    fn data(&self) -> String {
        self.dir.path().join("pgdata").to_str().unwrap().to_owned()
    }

    /// Runs one of the server's programs (as `postgres` when this is root:
    /// initdb refuses to run as root).
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let program = self.bin.join(program);
        let mut command = if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts the server (again), waiting until it accepts connections.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        let data = self.data();
        let started = self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
        assert!(started, "pg_ctl start");
    }

    /// Stops the server at once, as a crash would.
    pub fn stop(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn postgres_behaves_like_sqlite() {
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let store = Store::open_postgres(&postgres.url()).await.unwrap();
    assert_eq!(store.kind(), "postgres");
    let server =
        TestServer::start_with_store(|config| config.limits.notes.compact_every = 3, Some(store))
            .await;
    two_people_converge(&server, "pg-note").await;
    let mut ada = Editor::join(&server, "Ada", "pg-durable").await;
    for n in 0..7u32 {
        ada.type_at(n, "z").await;
    }
    drop(ada);
    server.shutdown().await.unwrap();

    let store = Store::open_postgres(&postgres.url()).await.unwrap();
    let stored = store.load("pg-durable").await.unwrap();
    assert!(stored.snapshot.is_some(), "compacted in Postgres too");
    let server = TestServer::start_with_store(|_| {}, Some(store)).await;
    let bob = Editor::join(&server, "Bob", "pg-durable").await;
    assert_eq!(bob.text(), "zzzzzzz");
    let listed = server.state.notes.store().list().await.unwrap();
    assert!(listed.iter().any(|note| note.id == "pg-durable"));
    crate::notes_list::tombstones_hold(server.state.notes.store(), "pg-tomb-").await;
}

/// Two nodes of a cluster write one note: each appends its own edits (its
/// own sequence numbers) and compacts from its own copy, which may lack the
/// other's newest edit. Nothing is lost either way.
async fn two_writers_lose_nothing(store: &Store, id: &str) {
    assert!(store.ensure_note(id, 1).await.unwrap());
    let typed = |text: &str| {
        let doc = new_doc();
        let body = doc.get_or_insert_text(BODY);
        let mut txn = doc.transact_mut();
        body.insert(&mut txn, 0, text);
        drop(txn);
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let from_a = typed("from A. ");
    let from_b = typed("from B. ");
    store.append_update(id, 1 << 20, &from_a, 2).await.unwrap();
    store.append_update(id, 7 << 20, &from_b, 3).await.unwrap();
    // A compacts with only its own edit in memory.
    store.compact(id, &from_a, 1 << 20).await.unwrap();
    let later_b = typed("later B.");
    store
        .append_update(id, (7 << 20) + 1, &later_b, 4)
        .await
        .unwrap();
    // B compacts too, from a copy that never saw A's edit.
    store.compact(id, &from_b, (7 << 20) + 1).await.unwrap();

    let stored = store.load(id).await.unwrap();
    assert!(stored.updates.is_empty(), "every row folded in");
    let body = NoteDocument::restore(stored.snapshot.as_deref(), 0, &stored.updates)
        .unwrap()
        .body();
    for part in ["from A. ", "from B. ", "later B."] {
        assert!(body.contains(part), "{part:?} kept in {body:?}");
    }
}

#[tokio::test]
async fn a_note_written_by_two_nodes_keeps_both_through_compaction() {
    let dir = TempDir::new();
    let sqlite = Store::open_sqlite(dir.path()).await.unwrap();
    two_writers_lose_nothing(&sqlite, "two-writers").await;
    let postgres = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let store = Store::open_postgres(&postgres.url()).await.unwrap();
    two_writers_lose_nothing(&store, "two-writers").await;
}
