//! Cluster stories: three Rookery processes on one Redis (Debian's
//! redis-server, started here on a free loopback port). Nodes are real
//! processes so that one can be killed with SIGKILL mid-stream.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rookery_common::{
    ChannelName, ClientMessage, ErrorCode, GoneReason, Location, ServerMessage, StreamPosition,
    UserInfo,
};
use serde_json::json;
use yrs::Text;

use crate::notes::{Editor, Postgres};
use crate::support::tempdir::TempDir;
use crate::support::{API_KEY, TestClient, WAIT, within};

/// A Redis server of its own, without persistence: a restart loses
/// everything, the worst case for the nodes.
struct Redis {
    dir: TempDir,
    port: u16,
    process: Option<Child>,
}

impl Redis {
    fn start() -> Self {
        let port = free_port();
        let mut redis = Self {
            dir: TempDir::new(),
            port,
            process: None,
        };
        redis.run();
        redis
    }

    fn run(&mut self) {
        let process = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server)");
        self.process = Some(process);
        let deadline = Instant::now() + WAIT;
        while !ping(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One Rookery process (in the cluster, or alone for the fault stories).
pub struct Node {
    pub address: SocketAddr,
    process: Child,
    _dir: TempDir,
}

/// Presence leases in these stories: a killed node's members must be gone
/// within this (plus the purge period).
const LEASE_TTL_S: u64 = 2;

/// What a cluster runs on: Redis, and Postgres for the notes.
struct Backends {
    redis: Redis,
    postgres: Postgres,
}

impl Backends {
    async fn start() -> Self {
        let postgres = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
        Self {
            redis: Redis::start(),
            postgres,
        }
    }
}

impl Node {
    fn start(backends: &Backends) -> Self {
        Self::start_with(backends, &[])
    }

    fn start_with(backends: &Backends, extra_args: &[&str]) -> Self {
        let dir = TempDir::new();
        let data = dir.path().join("data");
        let mut args = vec![
            "--redis-url".to_owned(),
            backends.redis.url(),
            "--database-url".to_owned(),
            backends.postgres.url(),
            "--presence-ttl".to_owned(),
            LEASE_TTL_S.to_string(),
        ];
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        Self::spawn(dir, &data, &args)
    }

    /// A node of its own with SQLite in `data` (which may outlive it, so
    /// that another node can start where a killed one stopped).
    pub fn start_alone(data: &std::path::Path, extra_args: &[&str]) -> Self {
        let args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        Self::spawn(TempDir::new(), data, &args)
    }

    fn spawn(dir: TempDir, data: &std::path::Path, args: &[String]) -> Self {
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut process = Command::new(env!("CARGO_BIN_EXE_rookery"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data)
            .arg("--dist-dir")
            .arg(dir.path().join("dist"))
            .args(["--api-key", API_KEY])
            .args(args)
            .env("RUST_LOG", "rookery=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the rookery binary");
        let stdout = process.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = lines.next().expect("rookery printed its address").unwrap();
            if let Some(url) = line.strip_prefix("rookery listening on http://") {
                break url.parse().unwrap();
            }
        };
        Self {
            address,
            process,
            _dir: dir,
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.address)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn client(&self, name: &str, anonymous_id: &str) -> TestClient {
        let mut client = TestClient::open(&self.ws_url()).await;
        client.connect(name, Some(anonymous_id)).await;
        client
    }

    async fn ready(&self) -> u16 {
        reqwest::get(self.url("/readyz"))
            .await
            .map_or(0, |response| response.status().as_u16())
    }

    /// SIGKILL: no goodbye, no lease released.
    pub fn kill(&mut self) {
        self.process.kill().unwrap();
        self.process.wait().unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

async fn wait_ready(node: &Node, status: u16) {
    within(async {
        while node.ready().await != status {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// `n` nodes on `backends`, each ready.
async fn start_ready(backends: &Backends, n: usize) -> Vec<Node> {
    let nodes: Vec<Node> = (0..n).map(|_| Node::start(backends)).collect();
    for node in &nodes {
        wait_ready(node, 200).await;
    }
    nodes
}

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

/// Subscribes with `since` (recovery) and returns the reply.
async fn subscribe_since(
    client: &mut TestClient,
    name: &str,
    since: Option<StreamPosition>,
) -> ServerMessage {
    client
        .request(|id| ClientMessage::Subscribe {
            id,
            channel: channel(name),
            since,
            rewind: None,
            token: None,
        })
        .await
}

/// The next publication (skipping presence pushes): (offset, data).
async fn next_numbered(client: &mut TestClient) -> (StreamPosition, serde_json::Value) {
    loop {
        if let ServerMessage::Publication { publication, .. } = client.recv().await {
            return (
                publication.position.expect("chat keeps history"),
                publication.data,
            );
        }
    }
}

/// The next join or leave push.
async fn next_presence_change(client: &mut TestClient) -> ServerMessage {
    loop {
        let message = client.recv().await;
        if matches!(
            message,
            ServerMessage::Join { .. } | ServerMessage::Leave { .. }
        ) {
            return message;
        }
    }
}

fn names(members: &[UserInfo]) -> Vec<&str> {
    members.iter().map(|m| m.name.as_str()).collect()
}

async fn api_publish(node: &Node, channel: &str, data: serde_json::Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(node.url("/api/v1/publish"))
        .bearer_auth(API_KEY)
        .json(&json!({ "channel": channel, "data": data }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_publications_in_order_presence_and_idempotency_keys() {
    let backends = Backends::start().await;
    let nodes = start_ready(&backends, 3).await;

    let mut ada = nodes[0].client("Ada", "anon-ada").await;
    let Subscribed { members, .. } = subscribed(ada.subscribe("chat:lobby").await);
    assert_eq!(names(&members), ["Ada"]);

    let mut bob = nodes[1].client("Bob", "anon-bob").await;
    let Subscribed { members, .. } = subscribed(bob.subscribe("chat:lobby").await);
    assert_eq!(
        names(&members),
        ["Ada", "Bob"],
        "Bob sees Ada, who is on another node"
    );
    let ServerMessage::Join { member, .. } = next_presence_change(&mut ada).await else {
        panic!("Ada is told Bob joined");
    };
    assert_eq!(member.name, "Bob");

    // Ada again, on the third node: still one member, nobody told she joined.
    let mut ada_again = nodes[2].client("Ada", "anon-ada").await;
    let Subscribed { members, .. } = subscribed(ada_again.subscribe("chat:lobby").await);
    assert_eq!(names(&members), ["Ada", "Bob"]);
    let presence = ada_again
        .request(|id| ClientMessage::Presence {
            id,
            channel: channel("chat:lobby"),
        })
        .await;
    let ServerMessage::Presence { members, .. } = presence else {
        panic!("{presence:?}");
    };
    assert_eq!(names(&members), ["Ada", "Bob"]);

    // Publishers on two nodes at once (twenty each, none waiting for its
    // acknowledgements); everyone sees one order.
    let mut left = nodes[0].client("Left", "anon-left").await;
    let mut right = nodes[1].client("Right", "anon-right").await;
    let burst = |client: &mut TestClient, who: &'static str, first: u64| {
        let commands: Vec<ClientMessage> = (0..20)
            .map(|k| ClientMessage::Publish {
                id: client.next_id(),
                channel: channel("chat:lobby"),
                data: json!({ "n": first + k, "from": who }),
                idempotency_key: None,
            })
            .collect();
        commands
    };
    let (from_left, from_right) = (burst(&mut left, "left", 0), burst(&mut right, "right", 100));
    tokio::join!(
        send_all(&mut left, from_left),
        send_all(&mut right, from_right)
    );
    // Nothing told Bob that Ada joined again: the publications come first.
    let first = bob.recv().await;
    assert!(
        matches!(first, ServerMessage::Publication { .. }),
        "{first:?}"
    );
    bob.unread(first);
    let mut seen = Vec::new();
    for client in [&mut ada, &mut bob, &mut ada_again] {
        let mut offsets = Vec::new();
        let mut data = Vec::new();
        for _ in 0..40 {
            let (position, value) = next_numbered(client).await;
            offsets.push(position.offset);
            data.push(value);
        }
        assert_eq!(
            offsets,
            (1..=40).collect::<Vec<u64>>(),
            "consecutive offsets"
        );
        seen.push(data);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    let numbers = |who: &str| -> Vec<u64> {
        seen[0]
            .iter()
            .filter(|d| d["from"] == who)
            .map(|d| d["n"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        numbers("left"),
        (0..20).collect::<Vec<u64>>(),
        "left's order kept"
    );
    assert_eq!(
        numbers("right"),
        (100..120).collect::<Vec<u64>>(),
        "right's order kept"
    );

    // The HTTP API of any node publishes to all of them.
    let response = api_publish(&nodes[2], "chat:lobby", json!("from the API")).await;
    assert_eq!(response.status(), 200);
    for client in [&mut ada, &mut bob, &mut ada_again] {
        assert_eq!(next_numbered(client).await.1, json!("from the API"));
    }

    // An idempotency key is one publication whichever node sees it again.
    let keyed = |id| ClientMessage::Publish {
        id,
        channel: channel("chat:lobby"),
        data: json!("once"),
        idempotency_key: Some("retry-7".into()),
    };
    let first = ada.request(keyed).await;
    let again = bob.request(keyed).await;
    let (
        ServerMessage::Published { position: p1, .. },
        ServerMessage::Published { position: p2, .. },
    ) = (&first, &again)
    else {
        panic!("{first:?} {again:?}");
    };
    assert_eq!(p1, p2);
    assert_eq!(next_numbered(&mut ada_again).await.1, json!("once"));
    let after = api_publish(&nodes[0], "chat:lobby", json!("after")).await;
    assert_eq!(after.status(), 200);
    assert_eq!(
        next_numbered(&mut ada_again).await.1,
        json!("after"),
        "the repeated key delivered nothing"
    );

    // A late joiner on any node gets the history the others made (once
    // that node has it: Bob, there, has read it).
    assert_eq!(next_numbered(&mut bob).await.1, json!("once"));
    assert_eq!(next_numbered(&mut bob).await.1, json!("after"));
    let mut cleo = nodes[1].client("Cleo", "anon-cleo").await;
    let history = cleo
        .request(|id| ClientMessage::History {
            id,
            channel: channel("chat:lobby"),
            since: None,
            limit: Some(3),
        })
        .await;
    let ServerMessage::History { publications, .. } = history else {
        panic!("{history:?}");
    };
    let data: Vec<_> = publications.into_iter().map(|p| p.data).collect();
    assert_eq!(data, [json!("from the API"), json!("once"), json!("after")]);

    // A channel's first subscriber gets a position that stays valid: it
    // recovers from it on another node after the channel's first message.
    let mut first = nodes[0].client("First", "anon-first").await;
    let Subscribed { position, .. } = subscribed(first.subscribe("chat:fresh").await);
    let position = position.expect("chat keeps history");
    assert!(
        !position.epoch.is_empty() && position.offset == 0,
        "{position:?}"
    );
    drop(first);
    assert_eq!(
        api_publish(&nodes[2], "chat:fresh", json!("news"))
            .await
            .status(),
        200
    );
    let mut first = nodes[1].client("First", "anon-first").await;
    let reply = subscribed(subscribe_since(&mut first, "chat:fresh", Some(position)).await);
    assert_eq!(reply.recovered, Some(true));
    let data: Vec<_> = reply.publications.into_iter().map(|p| p.data).collect();
    assert_eq!(data, [json!("news")]);

    // Bob leaves: Ada, on another node, is told.
    drop(bob);
    let ServerMessage::Leave { member, .. } = next_presence_change(&mut ada).await else {
        panic!("Ada is told Bob left");
    };
    assert_eq!(member.name, "Bob");
}

/// Sends every command, then reads their acknowledgements.
async fn send_all(client: &mut TestClient, commands: Vec<ClientMessage>) {
    for command in &commands {
        client.send(command).await;
    }
    for _ in 0..commands.len() {
        let reply = client.recv().await;
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
    }
}

struct Subscribed {
    position: Option<StreamPosition>,
    recovered: Option<bool>,
    publications: Vec<rookery_common::Publication>,
    members: Vec<UserInfo>,
}

fn subscribed(reply: ServerMessage) -> Subscribed {
    match reply {
        ServerMessage::Subscribed {
            position,
            recovered,
            publications,
            members,
            ..
        } => Subscribed {
            position,
            recovered,
            publications,
            members: members.unwrap_or_default(),
        },
        other => panic!("not subscribed: {other:?}"),
    }
}

/// A subscriber that survives its node: on any socket end it connects to
/// the next URL and resubscribes from its last position.
struct Follower {
    urls: Vec<String>,
    next_url: usize,
    client: TestClient,
    position: Option<StreamPosition>,
    received: Vec<u64>,
    reconnects: usize,
}

impl Follower {
    async fn start(urls: Vec<String>, name: &str) -> Self {
        let mut client = TestClient::open(&urls[0]).await;
        client.connect(name, Some(&format!("anon-{name}"))).await;
        let reply = subscribed(subscribe_since(&mut client, "chat:stream", None).await);
        Self {
            urls,
            next_url: 1,
            client,
            position: reply.position,
            received: Vec::new(),
            reconnects: 0,
        }
    }

    /// Reads until `last` arrived, failing over as often as needed.
    async fn read_until(&mut self, last: u64, name: &str) {
        while self.received.last() != Some(&last) {
            use futures_util::StreamExt;
            let next = tokio::time::timeout(WAIT, self.client.socket.next())
                .await
                .expect("a message or the socket's end in time");
            match next {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    let message = rookery_common::decode_server(text.as_str()).unwrap();
                    if let ServerMessage::Publication { publication, .. } = message {
                        self.take(publication);
                    }
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)))
                | Some(Err(_))
                | None => self.fail_over(name).await,
                Some(Ok(_)) => {}
            }
        }
    }

    fn take(&mut self, publication: rookery_common::Publication) {
        self.received.push(publication.data["n"].as_u64().unwrap());
        self.position = publication.position;
    }

    async fn fail_over(&mut self, name: &str) {
        self.reconnects += 1;
        let url = self.urls[self.next_url % self.urls.len()].clone();
        self.next_url += 1;
        let mut client = TestClient::open(&url).await;
        client.connect(name, Some(&format!("anon-{name}"))).await;
        let reply =
            subscribed(subscribe_since(&mut client, "chat:stream", self.position.clone()).await);
        assert_eq!(reply.recovered, Some(true), "{name} recovered on {url}");
        for publication in reply.publications {
            self.take(publication);
        }
        self.client = client;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_clients_recover_on_another_and_its_members_leave_within_the_ttl() {
    let backends = Backends::start().await;
    let mut nodes = start_ready(&backends, 3).await;
    let mut doomed = nodes.remove(0);

    // Survivor on node 1; a subscriber on the doomed node that fails over
    // to nodes 1 and 2; Dan on the doomed node only.
    let mut survivor = Follower::start(vec![nodes[0].ws_url()], "survivor").await;
    let mut moving = Follower::start(
        vec![doomed.ws_url(), nodes[0].ws_url(), nodes[1].ws_url()],
        "moving",
    )
    .await;
    let mut watcher = nodes[1].client("Watcher", "anon-watcher").await;
    watcher.subscribe("chat:lobby").await;
    let mut dan = doomed.client("Dan", "anon-dan").await;
    dan.subscribe("chat:lobby").await;
    let ServerMessage::Join { member, .. } = next_presence_change(&mut watcher).await else {
        panic!("the watcher sees Dan join");
    };
    assert_eq!(member.name, "Dan");

    // A publisher on node 2 publishes 1..=400 while the doomed node dies.
    let publisher_url = nodes[1].url("/api/v1/publish");
    let publisher = tokio::spawn(async move {
        let http = reqwest::Client::new();
        for n in 1..=400_u64 {
            let response = http
                .post(&publisher_url)
                .bearer_auth(API_KEY)
                .json(&json!({ "channel": "chat:stream", "data": { "n": n } }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    });

    moving.read_until(100, "moving").await;
    doomed.kill();
    let killed_at = Instant::now();
    let doomed_log = doomed.log();
    // The watcher waits for Dan's leave meanwhile, timing it on arrival.
    let watching = tokio::spawn(async move {
        let change = next_presence_change(&mut watcher).await;
        (change, killed_at.elapsed(), watcher)
    });

    moving.read_until(400, "moving").await;
    survivor.read_until(400, "survivor").await;
    publisher.await.unwrap();
    assert!(moving.reconnects >= 1, "the subscriber did move");
    let all: Vec<u64> = (1..=400).collect();
    assert_eq!(
        moving.received, all,
        "no loss, no duplicate across the move"
    );
    assert_eq!(survivor.received, all, "nobody else noticed");
    assert_eq!(survivor.reconnects, 0);

    // Dan's lease expires with his node: the watcher is told within the TTL
    // (and the purge period).
    let (change, gone_after, mut watcher) = watching.await.unwrap();
    let ServerMessage::Leave { member, .. } = change else {
        panic!("the watcher sees Dan leave, not {change:?}");
    };
    assert_eq!(member.name, "Dan");
    assert!(
        gone_after <= Duration::from_secs(LEASE_TTL_S) + Duration::from_millis(1500),
        "Dan left {gone_after:?} after his node died\n{doomed_log}"
    );
    let presence = watcher
        .request(|id| ClientMessage::Presence {
            id,
            channel: channel("chat:lobby"),
        })
        .await;
    let ServerMessage::Presence { members, .. } = presence else {
        panic!("{presence:?}");
    };
    assert_eq!(names(&members), ["Watcher"]);
}

/// Publishes `1..=last` to `chat:stream` through `node`'s HTTP API, each
/// acknowledged (200) before the next.
fn publish_numbers(node: &Node, last: u64) -> tokio::task::JoinHandle<()> {
    let url = node.url("/api/v1/publish");
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        for n in 1..=last {
            let response = http
                .post(&url)
                .bearer_auth(API_KEY)
                .json(&json!({ "channel": "chat:stream", "data": { "n": n } }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "publication {n}");
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kills_and_redis_restarts_in_a_loop_lose_no_acknowledged_publication() {
    let mut backends = Backends::start().await;
    let mut nodes = start_ready(&backends, 3).await;
    for round in 0..3 {
        // Node 0 dies in every round and comes back; node 1 publishes;
        // node 2 holds a subscriber that must never notice.
        let steady = format!("steady{round}");
        let moving = format!("moving{round}");
        let mut steady_follower = Follower::start(vec![nodes[2].ws_url()], &steady).await;
        let mut moving_follower = Follower::start(
            vec![nodes[0].ws_url(), nodes[1].ws_url(), nodes[2].ws_url()],
            &moving,
        )
        .await;
        let publisher = publish_numbers(&nodes[1], 150);
        moving_follower.read_until(40, &moving).await;
        nodes[0].kill();
        moving_follower.read_until(150, &moving).await;
        steady_follower.read_until(150, &steady).await;
        publisher.await.unwrap();
        let all: Vec<u64> = (1..=150).collect();
        assert_eq!(
            moving_follower.received, all,
            "round {round}: across the kill"
        );
        assert!(moving_follower.reconnects >= 1, "round {round}");
        assert_eq!(
            steady_follower.received, all,
            "round {round}: the bystander"
        );
        assert_eq!(steady_follower.reconnects, 0, "round {round}");
        drop((steady_follower, moving_follower));

        // The killed node is replaced, then Redis restarts empty: every
        // node must come back to ready.
        nodes[0] = Node::start(&backends);
        wait_ready(&nodes[0], 200).await;
        backends.redis.stop();
        for node in &nodes {
            wait_ready(node, 503).await;
        }
        backends.redis.run();
        for node in &nodes {
            wait_ready(node, 200).await;
        }
    }

    // After it all, the three nodes still make one cluster: presence and
    // publications cross every node.
    let mut clients = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        let mut client = node
            .client(&format!("Final {n}"), &format!("anon-final-{n}"))
            .await;
        client.subscribe("chat:final").await;
        clients.push(client);
    }
    within(async {
        loop {
            let presence = clients[0]
                .request(|id| ClientMessage::Presence {
                    id,
                    channel: channel("chat:final"),
                })
                .await;
            let ServerMessage::Presence { members, .. } = presence else {
                panic!("{presence:?}");
            };
            if members.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    clients[2]
        .publish("chat:final", json!("still one cluster"))
        .await;
    for client in &mut clients {
        let (position, data) = next_numbered(client).await;
        assert_eq!((position.offset, data), (1, json!("still one cluster")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_keeps_clients_connected_then_resets_what_it_lost() {
    let mut backends = Backends::start().await;
    let nodes = start_ready(&backends, 2).await;
    let mut ada = nodes[0].client("Ada", "anon-ada").await;
    ada.subscribe("chat:lobby").await;
    let mut bob = nodes[1].client("Bob", "anon-bob").await;
    bob.subscribe("chat:lobby").await;
    let mut writer = Editor::join_with(
        nodes[0].client("Writer", "anon-writer").await,
        "outage-note",
    )
    .await;
    let mut reader = Editor::join_with(
        nodes[1].client("Reader", "anon-reader").await,
        "outage-note",
    )
    .await;
    writer.type_at(0, "before. ").await;
    reader.wait_for_text("before. ").await;
    ada.publish("chat:lobby", json!("before")).await;
    let (before, _) = next_numbered(&mut bob).await;
    let (_, data) = next_numbered(&mut ada).await;
    assert_eq!(data, json!("before"));

    backends.redis.stop();
    for node in &nodes {
        wait_ready(node, 503).await;
    }
    // Still connected, answering; publishing is refused, not lost.
    let reply = ada.publish("chat:lobby", json!("during")).await;
    let ServerMessage::Error { code, .. } = reply else {
        panic!("{reply:?}");
    };
    assert_eq!(code, ErrorCode::Unavailable);
    let pong = bob.request(|id| ClientMessage::Ping { id }).await;
    assert!(matches!(pong, ServerMessage::Pong { .. }));
    let response = api_publish(&nodes[1], "chat:lobby", json!("during")).await;
    assert_eq!(response.status(), 503);
    let metrics = reqwest::get(nodes[0].url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("rookery_cluster_ready 0\n"), "{metrics}");
    assert!(
        metrics.contains("rookery_cluster_followed_channels 1\n"),
        "{metrics}"
    );
    // Notes live in Postgres: editing goes on, saved, though the other
    // node cannot hear of it yet.
    let saved = writer
        .send_update(writer.edit(|txn, body| body.insert(txn, 8, "during.")))
        .await;
    assert!(matches!(saved, ServerMessage::DocSaved { .. }), "{saved:?}");

    backends.redis.run();
    for node in &nodes {
        wait_ready(node, 200).await;
    }
    // Redis came back empty: the nodes cannot prove nothing was published
    // between their last message and the crash, so each subscriber is
    // told to recover, and learns the history is gone.
    for (client, node) in [(&mut ada, &nodes[0]), (&mut bob, &nodes[1])] {
        let closed = client.closed().await;
        assert_eq!(closed.code, 4202, "{closed:?}\n{}", node.log());
    }
    let mut ada = nodes[0].client("Ada", "anon-ada").await;
    let reply = subscribed(subscribe_since(&mut ada, "chat:lobby", Some(before.clone())).await);
    assert_eq!(reply.recovered, Some(false));
    let mut bob = nodes[1].client("Bob", "anon-bob").await;
    let reply = subscribed(subscribe_since(&mut bob, "chat:lobby", Some(before)).await);
    assert_eq!(reply.recovered, Some(false));
    // Presence is rebuilt: Bob's node hears of Ada's new lease.
    within(async {
        loop {
            let presence = bob
                .request(|id| ClientMessage::Presence {
                    id,
                    channel: channel("chat:lobby"),
                })
                .await;
            let ServerMessage::Presence { members, .. } = presence else {
                panic!("{presence:?}");
            };
            if names(&members) == ["Ada", "Bob"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    ada.publish("chat:lobby", json!("after")).await;
    for client in [&mut ada, &mut bob] {
        let (position, data) = next_numbered(client).await;
        assert_eq!((position.offset, data), (1, json!("after")));
    }
    // The reader's node caught up from the store.
    reader.wait_for_text("before. during.").await;
}

fn at(lat: f64, lon: f64) -> Location {
    Location {
        lat,
        lon,
        accuracy: 5.0,
        time: rookery::hub::unix_time_ms(),
        speed: None,
        heading: None,
    }
}

async fn locate(client: &mut TestClient, location: Location) -> ServerMessage {
    client
        .request(|id| ClientMessage::Locate {
            id,
            channel: channel("map:walk"),
            location,
            approximate: false,
        })
        .await
}

/// The next position or removal pushed on the map.
async fn next_map_change(client: &mut TestClient) -> ServerMessage {
    loop {
        let message = client.recv().await;
        if matches!(
            message,
            ServerMessage::Location { .. } | ServerMessage::LocationGone { .. }
        ) {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_cross_nodes_and_expire_with_a_dead_sharers_node() {
    let backends = Backends::start().await;
    let config_dir = TempDir::new();
    let config = config_dir.path().join("rookery.toml");
    std::fs::write(
        &config,
        "[namespaces.map]\nkind = \"latest_value\"\npresence = true\nvalue_ttl = 4\n\
         min_interval_ms = 0\nmin_distance_m = 0.0\n",
    )
    .unwrap();
    let config_arg = config.to_str().unwrap();
    let mut doomed = Node::start_with(&backends, &["--config", config_arg]);
    let node = Node::start_with(&backends, &["--config", config_arg]);
    wait_ready(&doomed, 200).await;
    wait_ready(&node, 200).await;

    let mut ada = doomed.client("Ada", "anon-ada").await;
    assert!(matches!(
        locate(&mut ada, at(48.8566, 2.3522)).await,
        ServerMessage::Located { .. }
    ));
    // A viewer on another node gets Ada's position in the snapshot.
    let mut viewer = node.client("Viewer", "anon-viewer").await;
    let ServerMessage::Subscribed {
        locations: Some(locations),
        ..
    } = viewer.subscribe("map:walk").await
    else {
        panic!("a snapshot of positions");
    };
    assert_eq!(locations.len(), 1);
    assert_eq!(locations[0].member.name, "Ada");
    assert!((locations[0].location.lat - 48.8566).abs() < 1e-9);

    // Then her moves, and her stop.
    locate(&mut ada, at(48.8570, 2.3530)).await;
    let ServerMessage::Location { shared, .. } = next_map_change(&mut viewer).await else {
        panic!("Ada's move");
    };
    assert!((shared.location.lat - 48.8570).abs() < 1e-9);
    let stopped = ada
        .request(|id| ClientMessage::StopSharing {
            id,
            channel: channel("map:walk"),
        })
        .await;
    assert!(
        matches!(stopped, ServerMessage::Stopped { .. }),
        "{stopped:?}"
    );
    let ServerMessage::LocationGone { user, reason, .. } = next_map_change(&mut viewer).await
    else {
        panic!("Ada's stop");
    };
    assert_eq!(
        (user.0.as_str(), reason),
        ("anon-anon-ada", GoneReason::Stopped)
    );

    // Ada shares again; her node dies; her marker expires for the viewer.
    locate(&mut ada, at(48.8580, 2.3540)).await;
    assert!(matches!(
        next_map_change(&mut viewer).await,
        ServerMessage::Location { .. }
    ));
    doomed.kill();
    let ServerMessage::LocationGone { reason, .. } = next_map_change(&mut viewer).await else {
        panic!("Ada's marker expires");
    };
    assert_eq!(reason, GoneReason::Expired);
    let mut late = node.client("Late", "anon-late").await;
    let ServerMessage::Subscribed { locations, .. } = late.subscribe("map:walk").await else {
        unreachable!("subscribe asserts the reply")
    };
    assert_eq!(locations, Some(Vec::new()), "nobody is left on the map");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_on_different_nodes_write_one_note() {
    let backends = Backends::start().await;
    let nodes = start_ready(&backends, 3).await;
    let mut ada = Editor::join_with(nodes[0].client("Ada", "anon-ada").await, "shared-note").await;
    let mut bob = Editor::join_with(nodes[1].client("Bob", "anon-bob").await, "shared-note").await;

    ada.type_at(0, "Hello ").await;
    bob.wait_for_text("Hello ").await;
    bob.type_at(6, "world").await;
    ada.wait_for_text("Hello world").await;
    // At once, at both ends: both insertions kept, the same text everywhere.
    let from_ada = ada.edit(|txn, body| body.insert(txn, 0, ">> "));
    let from_bob = bob.edit(|txn, body| body.insert(txn, 11, "!"));
    let (saved_a, saved_b) = tokio::join!(ada.send_update(from_ada), bob.send_update(from_bob));
    assert!(
        matches!(saved_a, ServerMessage::DocSaved { .. }),
        "{saved_a:?}"
    );
    assert!(
        matches!(saved_b, ServerMessage::DocSaved { .. }),
        "{saved_b:?}"
    );
    ada.wait_for_text(">> Hello world!").await;
    bob.wait_for_text(">> Hello world!").await;

    // A third node serves the same document (from the shared store).
    let cleo = Editor::join_with(nodes[2].client("Cleo", "anon-cleo").await, "shared-note").await;
    assert_eq!(cleo.text(), ">> Hello world!");

    // Deleted on one node: the editors on the others are told.
    let mut admin = nodes[2].client("Admin", "anon-admin").await;
    let deleted = admin
        .request(|id| ClientMessage::NoteDelete {
            id,
            note: "shared-note".into(),
        })
        .await;
    assert!(
        matches!(deleted, ServerMessage::NoteDeleted { .. }),
        "{deleted:?}"
    );
    for editor in [&mut ada, &mut bob] {
        loop {
            match editor.client.recv().await {
                ServerMessage::DocDeleted { .. } => break,
                ServerMessage::DocUpdated { .. }
                | ServerMessage::DocAwareness { .. }
                | ServerMessage::DocSaved { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
