//! A real server on an ephemeral port, and a protocol client for stories.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rookery::store::Store;
use rookery::{AppState, Config};
use rookery_common::codec::{encode_client, encode_client_bin};
use rookery_common::{
    ChannelName, ClientMessage, CommandId, Encoding, ServerMessage, decode_server,
    decode_server_bin,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a story waits for any one event before failing.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub address: SocketAddr,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _dist: tempdir::TempDir,
}

/// A throwaway directory, removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("rookery-it-{:016x}", rand_u64()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rand_u64() -> u64 {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(std::time::SystemTime::now())
    }
}

/// The HS256 secret and API key stories use when they enable tokens.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef";
pub const API_KEY: &str = "test-api-key-0123456789";

pub fn minter() -> rookery::auth::Minter {
    rookery::auth::Minter::hs256(JWT_SECRET.as_bytes()).unwrap()
}

pub const INDEX_HTML: &str = "<!doctype html><title>Rookery test app</title>";

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_store(configure, None).await
    }

    /// With a given store (Postgres, or SQLite in a directory that outlives
    /// this server); otherwise SQLite in the server's own temporary dir.
    pub async fn start_with_store(
        configure: impl FnOnce(&mut Config),
        store: Option<Store>,
    ) -> Self {
        let dist = tempdir::TempDir::new();
        std::fs::write(dist.path().join("index.html"), INDEX_HTML).unwrap();
        std::fs::write(dist.path().join("app.js"), "console.log('app')").unwrap();
        let mut config = Config::for_tests();
        config.verifier = Some(rookery::auth::Verifier::hs256(JWT_SECRET.as_bytes()).unwrap());
        config.api_key = Some(API_KEY.into());
        config.web_app = rookery::config::WebApp::Dir(PathBuf::from(dist.path()));
        config.data_dir = dist.path().join("data");
        configure(&mut config);
        std::fs::create_dir_all(&config.data_dir).unwrap();
        let store = match store {
            Some(store) => store,
            None => Store::open_sqlite(&config.data_dir).await.unwrap(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let state = AppState::new(config, store);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rookery::run(
            listener,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Self {
            address,
            state,
            stop: Some(stop),
            task,
            _dist: dist,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// An HTTP API request builder with the API key.
    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new()
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(API_KEY)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.address)
    }

    /// Sends the shutdown signal and waits for the server to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        within(&mut self.task).await.expect("server task")
    }

    /// A connected client with display name `name`.
    pub async fn client(&self, name: &str) -> TestClient {
        let mut client = TestClient::open(&self.ws_url()).await;
        client.connect(name, None).await;
        client
    }
}

pub async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .expect("timed out waiting for an event")
}

/// Polls `condition` until it holds, failing after [`WAIT`]. For state the
/// server exposes no event for.
pub async fn wait_until(condition: impl Fn() -> bool) {
    within(async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestClient {
    pub socket: Socket,
    next_id: u64,
    /// Messages read while waiting for a reply, handed out by `recv` first.
    pending: std::collections::VecDeque<ServerMessage>,
    /// How long `recv` waits; stories under a paused clock raise it above
    /// the server's timers.
    pub wait: Duration,
    /// What the client speaks: JSON text frames unless it asked for
    /// `rookery.v1.bin`.
    pub encoding: Encoding,
}

/// How a socket ended, seen from the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl TestClient {
    pub async fn open(url: &str) -> Self {
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket opens");
        Self {
            socket,
            next_id: 1,
            pending: Default::default(),
            wait: WAIT,
            encoding: Encoding::Json,
        }
    }

    /// Opens from another loopback address (127.0.0.x), as a different
    /// machine would: per-address limits count it apart.
    pub async fn open_from(server: &TestServer, source: std::net::IpAddr) -> Self {
        let tcp = tokio::net::TcpSocket::new_v4().unwrap();
        tcp.bind(SocketAddr::new(source, 0)).unwrap();
        let stream = tcp.connect(server.address).await.expect("tcp connects");
        let (socket, _) =
            tokio_tungstenite::client_async(server.ws_url(), MaybeTlsStream::Plain(stream))
                .await
                .expect("websocket opens");
        Self::from_socket(socket)
    }

    pub fn from_socket(socket: Socket) -> Self {
        Self {
            socket,
            next_id: 1,
            pending: Default::default(),
            wait: WAIT,
            encoding: Encoding::Json,
        }
    }

    pub async fn open_with_origin(
        url: &str,
        origin: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self {
            socket,
            next_id: 1,
            pending: Default::default(),
            wait: WAIT,
            encoding: Encoding::Json,
        })
    }

    /// Opens asking for the subprotocols `offer` (a `Sec-WebSocket-Protocol`
    /// value), and speaks the one the server chose.
    pub async fn open_offering(url: &str, offer: &str) -> Self {
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", offer.parse().unwrap());
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket opens");
        let chosen = response
            .headers()
            .get("sec-websocket-protocol")
            .expect("a subprotocol was chosen")
            .to_str()
            .unwrap();
        let mut client = Self::from_socket(socket);
        client.encoding = Encoding::from_subprotocol(chosen).expect("one of ours");
        client
    }

    pub fn next_id(&mut self) -> Option<CommandId> {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        Some(id)
    }

    pub async fn send(&mut self, message: &ClientMessage) {
        match self.encoding {
            Encoding::Json => self.send_text(&encode_client(message)).await,
            Encoding::MessagePack => self
                .socket
                .send(Message::binary(encode_client_bin(message)))
                .await
                .expect("send succeeds"),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send succeeds");
    }

    /// The next server message, skipping heartbeat pings.
    pub async fn recv(&mut self) -> ServerMessage {
        if let Some(message) = self.pending.pop_front() {
            return message;
        }
        self.recv_from_socket(true).await
    }

    /// Puts a message back, to be the next `recv` returns.
    pub fn unread(&mut self, message: ServerMessage) {
        self.pending.push_front(message);
    }

    /// The next server message, heartbeat pings included.
    pub async fn recv_with_pings(&mut self) -> ServerMessage {
        if let Some(message) = self.pending.pop_front() {
            return message;
        }
        self.recv_from_socket(false).await
    }

    async fn recv_from_socket(&mut self, skip_pings: bool) -> ServerMessage {
        loop {
            let message = tokio::time::timeout(self.wait, self.socket.next())
                .await
                .expect("timed out waiting for a message")
                .expect("socket still open")
                .expect("no socket error");
            let message = match (message, self.encoding) {
                (Message::Text(text), Encoding::Json) => {
                    decode_server(text.as_str()).expect("valid server message")
                }
                (Message::Binary(bytes), Encoding::MessagePack) => {
                    decode_server_bin(&bytes).expect("valid server message")
                }
                (Message::Close(frame), _) => panic!("socket closed unexpectedly: {frame:?}"),
                (Message::Text(_) | Message::Binary(_), encoding) => {
                    panic!("a frame of another encoding than {encoding:?}")
                }
                _ => continue,
            };
            if !skip_pings || message != (ServerMessage::Ping {}) {
                return message;
            }
        }
    }

    /// Sends a command with a fresh id and returns the reply with that id;
    /// what arrives in between stays queued for `recv`.
    pub async fn request(
        &mut self,
        build: impl FnOnce(Option<CommandId>) -> ClientMessage,
    ) -> ServerMessage {
        let id = self.next_id();
        self.send(&build(id)).await;
        loop {
            let message = self.recv_from_socket(true).await;
            if message.reply_to() == id {
                return message;
            }
            self.pending.push_back(message);
        }
    }

    pub async fn connect(&mut self, name: &str, anonymous_id: Option<&str>) -> ServerMessage {
        let reply = self
            .request(|id| ClientMessage::Connect {
                id,
                token: None,
                name: Some(name.into()),
                anonymous_id: anonymous_id.map(Into::into),
            })
            .await;
        assert!(
            matches!(reply, ServerMessage::Connected { .. }),
            "{reply:?}"
        );
        reply
    }

    /// Sends `connect` with a token; returns the reply.
    pub async fn connect_with_token(&mut self, token: &str) -> ServerMessage {
        self.request(|id| ClientMessage::Connect {
            id,
            token: Some(rookery_common::Token(token.into())),
            name: None,
            anonymous_id: None,
        })
        .await
    }

    pub async fn subscribe(&mut self, channel: &str) -> ServerMessage {
        let channel = ChannelName::parse(channel).unwrap();
        let reply = self
            .request(|id| ClientMessage::Subscribe {
                id,
                channel,
                since: None,
                rewind: None,
                token: None,
            })
            .await;
        assert!(
            matches!(reply, ServerMessage::Subscribed { .. }),
            "{reply:?}"
        );
        reply
    }

    pub async fn publish(&mut self, channel: &str, data: serde_json::Value) -> ServerMessage {
        let channel = ChannelName::parse(channel).unwrap();
        self.request(|id| ClientMessage::Publish {
            id,
            channel,
            data,
            idempotency_key: None,
        })
        .await
    }

    /// The next publication's data, skipping presence pushes.
    pub async fn next_publication(&mut self) -> serde_json::Value {
        loop {
            if let ServerMessage::Publication { publication, .. } = self.recv().await {
                return publication.data;
            }
        }
    }

    /// Reads until the server closes the socket; returns its close frame.
    pub async fn closed(&mut self) -> Closed {
        self.closed_within(WAIT).await
    }

    /// Like `closed`, for stories under a paused clock where the server's
    /// timers are longer than [`WAIT`].
    pub async fn closed_within(&mut self, limit: Duration) -> Closed {
        loop {
            let next = tokio::time::timeout(limit, self.socket.next())
                .await
                .expect("timed out waiting for the close");
            match next {
                Some(Ok(Message::Close(Some(CloseFrame { code, reason })))) => {
                    return Closed {
                        code: code.into(),
                        reason: reason.to_string(),
                    };
                }
                Some(Ok(Message::Close(None))) => panic!("close frame without a code"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("socket ended without a close frame: {error}"),
                None => panic!("socket ended without a close frame"),
            }
        }
    }
}

/// A WebSocket spoken by hand, for frames no well-behaved library sends.
pub async fn raw_socket(server: &TestServer) -> TcpStream {
    raw_socket_with(server, "").await.0
}

/// As [`raw_socket`], with `extra` header lines (each ending in CRLF) in
/// the handshake; also returns the response's head.
pub async fn raw_socket_with(server: &TestServer, extra: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n",
        server.address
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        within(stream.read_exact(&mut byte)).await.unwrap();
        response.push(byte[0]);
    }
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 101"), "{response}");
    (stream, response)
}

/// A masked client frame of any length; `first` is the whole first byte
/// (FIN, RSV bits, opcode).
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    let key = [0x12, 0x34, 0x56, 0x78];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// Reads one server frame: its first byte (FIN, RSV bits, opcode) and its
/// payload.
pub async fn read_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut header = [0u8; 2];
    within(stream.read_exact(&mut header))
        .await
        .expect("a frame before the end");
    assert_eq!(header[1] & 0x80, 0, "server frames are not masked");
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
    within(stream.read_exact(&mut payload)).await.unwrap();
    (header[0], payload)
}

/// Reads one server frame: its opcode and payload.
pub async fn server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let (first, payload) = read_frame(stream).await;
    (first & 0x0f, payload)
}

/// Reads server frames until a close frame; returns its code.
pub async fn close_code(stream: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = server_frame(stream).await;
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}
