//! `rookery-floor`: the bare minimum a Rust WebSocket broadcast server does,
//! for the side-by-side fan-out benchmark (`bench/peers/`).
//!
//! It speaks the benchmark's subset of Rookery's protocol (`connect`,
//! `subscribe`, `publish`; anything else is ignored) with nothing else:
//! no validation, limits beyond the frame size, presence, history or rate
//! limits. Each connection has a reader task and a writer task fed by an
//! unbounded queue; a publication is serialised once, its bytes shared by
//! every subscriber's queue, and the writer flushes only when its queue is
//! momentarily empty. It is the floor: a real server on the same stack
//! (tokio + tungstenite) can't beat it by much, so the gap between it and
//! Rookery is what Rookery's features cost.
//!
//! `rookery-floor --port 0` (or `PORT=0`) prints `listening on
//! 127.0.0.1:<port>` once ready; SIGTERM or SIGINT stops it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// One connection's outgoing queue.
type Tx = mpsc::UnboundedSender<Message>;
/// Channel name → its subscribers' queues.
type Channels = Arc<Mutex<HashMap<String, Vec<Tx>>>>;

#[derive(Parser)]
#[command(about = "Bare WebSocket fan-out server: the floor for the fan-out benchmark")]
struct Args {
    /// Port on 127.0.0.1 (0: any free one).
    #[arg(long, env = "PORT", default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let channels = Channels::default();
    let mut terminate = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    tokio::spawn(connection(stream, channels.clone()));
                }
            }
            _ = terminate.recv() => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn connection(stream: TcpStream, channels: Channels) {
    let _ = stream.set_nodelay(true);
    // The read buffer is tungstenite's default 128 KiB cut to Rookery's
    // 1 KiB, so memory per connection compares like with like.
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
        .read_buffer_size(1024);
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let (mut sink, mut source) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    // Writer: feed whatever is queued, flush once the queue is empty. It
    // ends when every sender is gone (the reader's and the subscriptions').
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            if sink.feed(message).await.is_err() {
                return;
            }
            while let Ok(message) = rx.try_recv() {
                if sink.feed(message).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    let mut subscribed = HashSet::new();
    while let Some(Ok(message)) = source.next().await {
        match message {
            Message::Text(text) => command(text.as_str(), &tx, &channels, &mut subscribed),
            Message::Close(_) => break,
            _ => {} // binary ignored; pings answered by tungstenite
        }
    }
    unsubscribe(&channels, subscribed, &tx);
    drop(tx);
    let _ = writer.await;
}

/// Removes a closed connection's queue from its channels.
fn unsubscribe(channels: &Channels, subscribed: HashSet<String>, tx: &Tx) {
    let mut map = channels.lock().unwrap();
    for channel in subscribed {
        if let Some(subscribers) = map.get_mut(&channel) {
            subscribers.retain(|other| !other.same_channel(tx));
            if subscribers.is_empty() {
                map.remove(&channel);
            }
        }
    }
}

/// One text frame from a client: `connect`, `subscribe` or `publish`.
/// `id`, `channel` and `data` are echoed as the client spelled them.
fn command(text: &str, tx: &Tx, channels: &Channels, subscribed: &mut HashSet<String>) {
    let Ok(fields) = serde_json::from_str::<HashMap<&str, &RawValue>>(text) else {
        return;
    };
    let Some(kind) = fields
        .get("type")
        .and_then(|raw| serde_json::from_str::<&str>(raw.get()).ok())
    else {
        return;
    };
    let id = fields
        .get("id")
        .map(|raw| format!(r#","id":{}"#, raw.get()));
    let id = id.as_deref().unwrap_or("");
    if kind == "connect" {
        let _ = tx.send(Message::text(format!(r#"{{"type":"connected"{id}}}"#)));
        return;
    }
    let Some(raw_channel) = fields.get("channel").map(|raw| raw.get()) else {
        return;
    };
    let Ok(channel) = serde_json::from_str::<String>(raw_channel) else {
        return;
    };
    match kind {
        "subscribe" => {
            if subscribed.insert(channel.clone()) {
                let mut map = channels.lock().unwrap();
                map.entry(channel).or_default().push(tx.clone());
            }
            let reply = format!(r#"{{"type":"subscribed"{id},"channel":{raw_channel}}}"#);
            let _ = tx.send(Message::text(reply));
        }
        "publish" => {
            let data = fields.get("data").map_or("null", |raw| raw.get());
            let frame =
                format!(r#"{{"type":"publication","channel":{raw_channel},"data":{data}}}"#);
            // Built once: each clone shares the same bytes.
            let frame = Message::text(frame);
            if let Some(subscribers) = channels.lock().unwrap().get(&channel) {
                for subscriber in subscribers {
                    let _ = subscriber.send(frame.clone());
                }
            }
            if fields.contains_key("id") {
                let reply = format!(r#"{{"type":"published"{id},"channel":{raw_channel}}}"#);
                let _ = tx.send(Message::text(reply));
            }
        }
        _ => {}
    }
}
