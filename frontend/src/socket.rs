//! The one module that owns the browser's WebSocket.
//!
//! [`Connection`] is a handle (in context) to a driver task that opens the
//! socket, sends `connect`, keeps every channel the pages asked for
//! subscribed — resubscribing from the last stream position after each
//! reconnect — queues publishes made while offline, detects a silent server,
//! and reconnects with backoff as the close code says. Pages never see the
//! socket: they get [`ChannelEvent`]s for their channels, [`DocEvent`]s for
//! the documents they joined (synced again after each reconnect, which is
//! how offline edits reach the server) and a [`Status`].

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use rookery_common::backoff::Backoff;
use rookery_common::codec::encode_client;
use rookery_common::{
    Bytes, ChannelName, ClientMessage, CommandId, ErrorCode, GoneReason, Location, Publication,
    Reconnect, SUBPROTOCOL_JSON, ServerMessage, SharedLocation, StreamPosition, UserId, UserInfo,
    decode_server,
};
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::identity::Identity;

/// Publishes kept while offline; more are refused rather than pile up.
const MAX_OFFLINE_PUBLISHES: usize = 100;
/// Before the server announces its ping interval, how long silence may last.
const DEFAULT_SILENCE_LIMIT_MS: u32 = 60_000;
/// Close code the browser reports when a socket ends without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;

/// What the person sees of the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Connecting,
    Live,
    Reconnecting {
        in_secs: u32,
    },
    /// Given up: the server refused us for good (or nobody asked to connect).
    Offline {
        reason: String,
    },
}

/// What a page hears about one of its channels.
#[derive(Debug, Clone)]
pub enum ChannelEvent {
    /// The subscription is in place (again). With `recovered: Some(true)`
    /// `publications` is exactly what was missed; otherwise it is fresh
    /// state that replaces what the page had.
    Subscribed {
        recovered: Option<bool>,
        publications: Vec<Publication>,
        members: Option<Vec<UserInfo>>,
        /// Latest-value channels: every current position (replaces all).
        locations: Option<Vec<SharedLocation>>,
    },
    Publication(Publication),
    /// A sharer's newest position.
    Location(SharedLocation),
    /// A sharer's marker is gone.
    LocationGone {
        user: UserId,
        reason: GoneReason,
    },
    Join(UserInfo),
    Leave(UserInfo),
    /// The socket dropped; a `Subscribed` follows when it is back.
    Interrupted,
    /// The server refused the subscription.
    Refused {
        code: ErrorCode,
        message: String,
    },
}

/// What a page hears about a document it joined.
#[derive(Debug, Clone)]
pub enum DocEvent {
    /// Joined (again, after a reconnect): apply `update` (what this copy
    /// lacked), then send what the server lacks; `state_vector` is the
    /// server's.
    Synced {
        update: Vec<u8>,
        state_vector: Vec<u8>,
    },
    /// Someone else's update.
    Update(Vec<u8>),
    /// Someone else's awareness update.
    Awareness(Vec<u8>),
    /// The socket dropped; `Synced` follows when it is back.
    Interrupted,
    /// The document was deleted; the server dropped us from it.
    Deleted,
    /// The server refused to join us.
    Refused { code: ErrorCode, message: String },
}

type Handler = Rc<dyn Fn(ChannelEvent)>;
type DocHandler = Rc<dyn Fn(DocEvent)>;
type PublishDone = Box<dyn FnOnce(Result<(), String>)>;
type AnswerDone = Box<dyn FnOnce(Result<ServerMessage, String>)>;

struct JoinedDocument {
    handler: DocHandler,
    /// This copy's state vector, asked for at each (re)join.
    state_vector: Rc<dyn Fn() -> Vec<u8>>,
}

struct Subscription {
    handler: Handler,
    position: Option<StreamPosition>,
    rewind: Option<u32>,
}

enum Pending {
    Subscribe(ChannelName),
    /// Kept until answered so it can be sent again after a reconnect; its
    /// idempotency key makes that safe.
    Publish(ClientMessage, Option<PublishDone>),
    /// A command whose outcome someone waits for (not resent).
    Reply(Option<PublishDone>),
    /// A command whose reply someone wants (not resent).
    Answer(AnswerDone),
    DocSync(ChannelName),
    Other,
}

enum Outgoing {
    Text(String),
    /// Close the socket and connect again at once (the name changed).
    Restart,
    /// The browser lost the network: close and wait for it to come back.
    NetworkDown,
}

struct Driver {
    url: String,
    identity: Identity,
    /// The live socket's queue; `None` until the server accepted `connect`.
    socket: Option<mpsc::UnboundedSender<Outgoing>>,
    /// The current socket's queue from the moment it opens, for control
    /// messages (restart, network down).
    control: Option<mpsc::UnboundedSender<Outgoing>>,
    /// Cuts a reconnect wait short (the network came back, the name changed).
    wake: Option<oneshot::Sender<()>>,
    /// The browser says it is offline.
    network_down: bool,
    subscriptions: HashMap<ChannelName, Subscription>,
    documents: HashMap<ChannelName, JoinedDocument>,
    pending: HashMap<CommandId, Pending>,
    offline_publishes: VecDeque<(ClientMessage, Option<PublishDone>)>,
    next_id: u64,
    running: bool,
}

/// Handle to the connection; cheap to copy, provided as context.
#[derive(Clone, Copy)]
pub struct Connection {
    pub status: RwSignal<Status>,
    /// Who the server says we are, once connected.
    pub me: RwSignal<Option<UserInfo>>,
    driver: StoredValue<Rc<RefCell<Driver>>, LocalStorage>,
}

pub fn provide_connection(identity: Identity) -> Connection {
    let connection = Connection::new(socket_url(), identity);
    provide_context(connection);
    connection
}

pub fn use_connection() -> Connection {
    expect_context::<Connection>()
}

fn socket_url() -> String {
    let location = window().location();
    let scheme = match location.protocol().as_deref() {
        Ok("https:") => "wss",
        _ => "ws",
    };
    let host = location.host().unwrap_or_else(|_| "127.0.0.1:8000".into());
    format!("{scheme}://{host}/ws")
}

impl Connection {
    fn new(url: String, identity: Identity) -> Self {
        let driver = Driver {
            url,
            identity,
            socket: None,
            control: None,
            wake: None,
            network_down: !window().navigator().on_line(),
            subscriptions: HashMap::new(),
            documents: HashMap::new(),
            pending: HashMap::new(),
            offline_publishes: VecDeque::new(),
            next_id: 1,
            running: false,
        };
        let driver = Rc::new(RefCell::new(driver));
        listen_to_network(&driver);
        Self {
            status: RwSignal::new(Status::Offline {
                reason: "not connected yet".into(),
            }),
            me: RwSignal::new(None),
            driver: StoredValue::new_local(driver),
        }
    }

    fn driver(&self) -> Rc<RefCell<Driver>> {
        self.driver.get_value()
    }

    /// Starts the driver if it is not running and we have a name.
    fn ensure_running(&self) {
        let driver = self.driver();
        {
            let mut state = driver.borrow_mut();
            if state.running || state.identity.name.get_untracked().is_none() {
                return;
            }
            state.running = true;
        }
        spawn_local(run(driver, *self));
    }

    /// Reconnects with the new display name, if connected.
    pub fn name_changed(&self) {
        let driver = self.driver();
        let (control, wake) = {
            let mut state = driver.borrow_mut();
            (state.control.clone(), state.wake.take())
        };
        if let Some(control) = control {
            let _ = control.unbounded_send(Outgoing::Restart);
        }
        if let Some(wake) = wake {
            let _ = wake.send(());
        }
        self.ensure_running();
    }

    /// Subscribes `channel` for as long as the page wants it, with the
    /// newest `rewind` publications on the first subscribe.
    pub fn subscribe(
        &self,
        channel: &ChannelName,
        rewind: Option<u32>,
        handler: impl Fn(ChannelEvent) + 'static,
    ) {
        let driver = self.driver();
        let live = {
            let mut state = driver.borrow_mut();
            state.subscriptions.insert(
                channel.clone(),
                Subscription {
                    handler: Rc::new(handler),
                    position: None,
                    rewind,
                },
            );
            state.socket.is_some()
        };
        if live {
            driver.borrow_mut().send_subscribe(channel);
        }
        self.ensure_running();
    }

    pub fn unsubscribe(&self, channel: &ChannelName) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.subscriptions.remove(channel).is_some() {
            state.send_unsubscribe(channel);
        }
    }

    /// Publishes `data`; while offline it is kept and sent on reconnect.
    /// `done` hears whether the server accepted it.
    pub fn publish(
        &self,
        channel: ChannelName,
        data: Value,
        done: impl FnOnce(Result<(), String>) + 'static,
    ) {
        let message = ClientMessage::Publish {
            id: None,
            channel,
            data,
            idempotency_key: Some(random_hex()),
        };
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.socket.is_some() {
            state.send_publish(message, Some(Box::new(done)));
        } else if state.offline_publishes.len() < MAX_OFFLINE_PUBLISHES {
            state
                .offline_publishes
                .push_back((message, Some(Box::new(done))));
        } else {
            drop(state);
            done(Err(
                "offline, and too many messages are waiting to be sent".into()
            ));
        }
    }
}

impl Connection {
    /// Sends this user's position to a latest-value channel. Positions are
    /// not queued while offline (a stale one is worth nothing): `done`
    /// hears `Err` at once, and the page sends a fresh one when live again.
    pub fn locate(
        &self,
        channel: &ChannelName,
        location: Location,
        approximate: bool,
        done: impl FnOnce(Result<(), String>) + 'static,
    ) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.socket.is_none() {
            drop(state);
            done(Err("not connected".into()));
            return;
        }
        let id = state.command_id(Pending::Reply(Some(Box::new(done))));
        state.send(&ClientMessage::Locate {
            id,
            channel: channel.clone(),
            location,
            approximate,
        });
    }

    /// Stops sharing in a latest-value channel (if connected; otherwise the
    /// position expires by itself).
    pub fn stop_sharing(&self, channel: &ChannelName) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.socket.is_some() {
            let id = state.command_id(Pending::Other);
            state.send(&ClientMessage::StopSharing {
                id,
                channel: channel.clone(),
            });
        }
    }
}

impl Connection {
    /// Joins a document channel for as long as the page wants it: syncs
    /// now (or when connected) and again after every reconnect, asking
    /// `state_vector` for this copy's state each time.
    pub fn join_document(
        &self,
        channel: &ChannelName,
        state_vector: impl Fn() -> Vec<u8> + 'static,
        handler: impl Fn(DocEvent) + 'static,
    ) {
        let driver = self.driver();
        let live = {
            let mut state = driver.borrow_mut();
            state.documents.insert(
                channel.clone(),
                JoinedDocument {
                    handler: Rc::new(handler),
                    state_vector: Rc::new(state_vector),
                },
            );
            state.socket.is_some()
        };
        if live {
            driver.borrow_mut().send_doc_sync(channel);
        }
        self.ensure_running();
    }

    pub fn leave_document(&self, channel: &ChannelName) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.documents.remove(channel).is_some() {
            state.send_unsubscribe(channel);
        }
    }

    /// Sends a local update; `done` hears whether it was stored. Updates
    /// are not queued offline: the next sync sends whatever the server
    /// lacks, so `done` hears `Err` at once.
    pub fn doc_update(
        &self,
        channel: &ChannelName,
        update: Vec<u8>,
        done: impl FnOnce(Result<(), String>) + 'static,
    ) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.socket.is_none() {
            drop(state);
            done(Err("not connected".into()));
            return;
        }
        let id = state.command_id(Pending::Reply(Some(Box::new(done))));
        state.send(&ClientMessage::DocUpdate {
            id,
            channel: channel.clone(),
            update: Bytes(update),
        });
    }

    /// Sends this editor's awareness (when connected; it is sent again
    /// after each sync anyway).
    pub fn doc_awareness(&self, channel: &ChannelName, update: Vec<u8>) {
        let driver = self.driver();
        let state = driver.borrow();
        state.send(&ClientMessage::DocAwareness {
            channel: channel.clone(),
            update: Bytes(update),
        });
    }

    /// Sends a command made by `command` (given its id) and hands its reply
    /// to `done`; when not connected, `done` hears `Err` at once.
    pub fn request(
        &self,
        command: impl FnOnce(Option<CommandId>) -> ClientMessage,
        done: impl FnOnce(Result<ServerMessage, String>) + 'static,
    ) {
        let driver = self.driver();
        let mut state = driver.borrow_mut();
        if state.socket.is_none() {
            drop(state);
            done(Err("not connected".into()));
            return;
        }
        let id = state.command_id(Pending::Answer(Box::new(done)));
        state.send(&command(id));
    }
}

impl Driver {
    fn command_id(&mut self, pending: Pending) -> Option<CommandId> {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        self.pending.insert(id, pending);
        Some(id)
    }

    fn send(&self, message: &ClientMessage) {
        if let Some(socket) = &self.socket {
            let _ = socket.unbounded_send(Outgoing::Text(encode_client(message)));
        }
    }

    fn send_subscribe(&mut self, channel: &ChannelName) {
        let Some(subscription) = self.subscriptions.get(channel) else {
            return;
        };
        let since = subscription.position.clone();
        let rewind = subscription.rewind;
        let id = self.command_id(Pending::Subscribe(channel.clone()));
        self.send(&ClientMessage::Subscribe {
            id,
            channel: channel.clone(),
            since,
            rewind,
            token: None,
        });
    }

    /// Leaves a channel or document, if connected (a new socket starts
    /// with nothing joined anyway).
    fn send_unsubscribe(&mut self, channel: &ChannelName) {
        if self.socket.is_some() {
            let id = self.command_id(Pending::Other);
            self.send(&ClientMessage::Unsubscribe {
                id,
                channel: channel.clone(),
            });
        }
    }

    fn send_doc_sync(&mut self, channel: &ChannelName) {
        let Some(document) = self.documents.get(channel) else {
            return;
        };
        let state_vector = (document.state_vector)();
        let id = self.command_id(Pending::DocSync(channel.clone()));
        self.send(&ClientMessage::DocSync {
            id,
            channel: channel.clone(),
            state_vector: Bytes(state_vector),
        });
    }

    fn send_publish(&mut self, mut message: ClientMessage, done: Option<PublishDone>) {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        if let ClientMessage::Publish { id: slot, .. } = &mut message {
            *slot = Some(id);
        }
        self.send(&message);
        self.pending.insert(id, Pending::Publish(message, done));
    }

    fn handler(&self, channel: &ChannelName) -> Option<Handler> {
        self.subscriptions.get(channel).map(|s| s.handler.clone())
    }

    fn doc_handler(&self, channel: &ChannelName) -> Option<DocHandler> {
        self.documents.get(channel).map(|d| d.handler.clone())
    }

    /// The socket is gone: unanswered publishes go back to the offline
    /// queue (in order, ahead of newer ones); whoever waits for another
    /// command's answer is told it failed, and every page hears that it was
    /// interrupted — by the caller, once the driver is no longer borrowed.
    fn disconnected(&mut self) -> Disconnected {
        self.socket = None;
        self.control = None;
        let mut unanswered: Vec<(CommandId, ClientMessage, Option<PublishDone>)> = Vec::new();
        let mut failed = Vec::new();
        for (id, pending) in self.pending.drain() {
            match pending {
                Pending::Publish(message, done) => unanswered.push((id, message, done)),
                Pending::Reply(Some(done)) => failed.push(Failed::Reply(done)),
                Pending::Answer(done) => failed.push(Failed::Answer(done)),
                Pending::Reply(None)
                | Pending::Subscribe(_)
                | Pending::DocSync(_)
                | Pending::Other => {}
            }
        }
        unanswered.sort_by_key(|(id, _, _)| *id);
        for (_, message, done) in unanswered.into_iter().rev() {
            self.offline_publishes.push_front((message, done));
        }
        Disconnected {
            channels: self
                .subscriptions
                .values()
                .map(|s| s.handler.clone())
                .collect(),
            documents: self.documents.values().map(|d| d.handler.clone()).collect(),
            failed,
        }
    }
}

enum Failed {
    Reply(PublishDone),
    Answer(AnswerDone),
}

/// Who must hear that the socket is gone.
struct Disconnected {
    channels: Vec<Handler>,
    documents: Vec<DocHandler>,
    failed: Vec<Failed>,
}

impl Disconnected {
    fn tell(self) {
        for failed in self.failed {
            match failed {
                Failed::Reply(done) => done(Err("connection lost".into())),
                Failed::Answer(done) => done(Err("connection lost".into())),
            }
        }
        for handler in self.channels {
            handler(ChannelEvent::Interrupted);
        }
        for handler in self.documents {
            handler(DocEvent::Interrupted);
        }
    }
}

/// How one socket ended.
struct Ended {
    code: u16,
    reason: String,
    /// The server accepted `connect` on it.
    was_live: bool,
    restart: bool,
}

async fn run(driver: Rc<RefCell<Driver>>, connection: Connection) {
    let backoff = Backoff::default();
    let mut attempt: u32 = 0;
    loop {
        if driver.borrow().network_down {
            connection.status.set(Status::Offline {
                reason: "no network connection".into(),
            });
            wait_for_wake(&driver, None).await;
            attempt = 0;
        }
        connection.status.set(Status::Connecting);
        let ended = session(&driver, connection).await;
        let disconnected = driver.borrow_mut().disconnected();
        disconnected.tell();
        if ended.was_live {
            attempt = 0;
        }
        if driver.borrow().network_down {
            continue;
        }
        let delay_ms = if ended.restart {
            0
        } else {
            match Reconnect::for_number(ended.code) {
                Reconnect::Never => {
                    connection.status.set(Status::Offline {
                        reason: if ended.reason.is_empty() {
                            format!("disconnected ({})", ended.code)
                        } else {
                            ended.reason
                        },
                    });
                    driver.borrow_mut().running = false;
                    return;
                }
                Reconnect::Immediately => backoff.immediate_ms(js_sys::Math::random()),
                Reconnect::Backoff => {
                    let delay = backoff.delay_ms(attempt, js_sys::Math::random());
                    attempt = attempt.saturating_add(1);
                    delay
                }
            }
        };
        count_down(&driver, connection, delay_ms).await;
    }
}

/// Waits `delay_ms`, showing the seconds left; the network coming back or a
/// new name cuts it short.
async fn count_down(driver: &Rc<RefCell<Driver>>, connection: Connection, delay_ms: u64) {
    let mut left = delay_ms;
    while left > 0 {
        connection.status.set(Status::Reconnecting {
            in_secs: left.div_ceil(1000) as u32,
        });
        let step = left.min(1000);
        if wait_for_wake(driver, Some(step as u32)).await {
            return;
        }
        left -= step;
    }
}

/// Waits for a wake-up (or `timeout_ms`); returns true when woken.
async fn wait_for_wake(driver: &Rc<RefCell<Driver>>, timeout_ms: Option<u32>) -> bool {
    let (wake, woken) = oneshot::channel();
    driver.borrow_mut().wake = Some(wake);
    let woken = match timeout_ms {
        Some(ms) => {
            let mut timeout = TimeoutFuture::new(ms).fuse();
            let mut woken = woken.fuse();
            futures::select! {
                result = woken => result.is_ok(),
                () = timeout => false,
            }
        }
        None => woken.await.is_ok(),
    };
    driver.borrow_mut().wake = None;
    woken
}

/// Follows the browser's `online`/`offline` events: going offline closes the
/// socket at once (instead of waiting for the heartbeat to notice), coming
/// back reconnects without waiting out the backoff.
fn listen_to_network(driver: &Rc<RefCell<Driver>>) {
    let on_offline = {
        let driver = Rc::downgrade(driver);
        Closure::<dyn FnMut()>::new(move || {
            let Some(driver) = driver.upgrade() else {
                return;
            };
            let control = {
                let mut state = driver.borrow_mut();
                state.network_down = true;
                state.control.clone()
            };
            if let Some(control) = control {
                let _ = control.unbounded_send(Outgoing::NetworkDown);
            }
        })
    };
    let on_online = {
        let driver = Rc::downgrade(driver);
        Closure::<dyn FnMut()>::new(move || {
            let Some(driver) = driver.upgrade() else {
                return;
            };
            let wake = {
                let mut state = driver.borrow_mut();
                state.network_down = false;
                state.wake.take()
            };
            if let Some(wake) = wake {
                let _ = wake.send(());
            }
        })
    };
    let window = window();
    let _ = window.add_event_listener_with_callback("offline", on_offline.as_ref().unchecked_ref());
    let _ = window.add_event_listener_with_callback("online", on_online.as_ref().unchecked_ref());
    // The connection lives as long as the page: so do its listeners.
    on_offline.forget();
    on_online.forget();
}

/// One socket from open to close.
async fn session(driver: &Rc<RefCell<Driver>>, connection: Connection) -> Ended {
    let (url, connect) = {
        let state = driver.borrow();
        let connect = ClientMessage::Connect {
            id: Some(CommandId(0)),
            token: None,
            name: state.identity.name.get_untracked(),
            anonymous_id: Some(state.identity.anonymous_id.get_value()),
        };
        (state.url.clone(), connect)
    };
    let mut ended = Ended {
        code: ABNORMAL_CLOSURE,
        reason: String::new(),
        was_live: false,
        restart: false,
    };
    let Ok(socket) = WebSocket::open_with_protocol(&url, SUBPROTOCOL_JSON) else {
        return ended;
    };
    let (outgoing_tx, mut outgoing) = mpsc::unbounded::<Outgoing>();
    driver.borrow_mut().control = Some(outgoing_tx.clone());
    let mut socket = socket.fuse();
    if socket
        .send(Message::Text(encode_client(&connect)))
        .await
        .is_err()
    {
        return ended;
    }
    let mut silence_limit_ms = DEFAULT_SILENCE_LIMIT_MS;
    let mut last_heard = js_sys::Date::now();

    loop {
        let waited = (js_sys::Date::now() - last_heard).max(0.0) as u32;
        let mut silence = TimeoutFuture::new(silence_limit_ms.saturating_sub(waited)).fuse();
        futures::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    last_heard = js_sys::Date::now();
                    let Ok(message) = decode_server(&text) else { continue };
                    if let ServerMessage::Connected { user, ping_interval_ms, .. } = &message {
                        // Silence for two intervals plus slack means the
                        // server (or the network) is gone.
                        silence_limit_ms = (*ping_interval_ms as u32).saturating_mul(2).saturating_add(5_000);
                        connection.me.set(Some(user.clone()));
                        ended.was_live = true;
                        go_live(driver, outgoing_tx.clone());
                        connection.status.set(Status::Live);
                        continue;
                    }
                    if let ServerMessage::Disconnect { code, reason, .. } = &message {
                        ended.code = code.number();
                        ended.reason.clone_from(reason);
                        continue;
                    }
                    dispatch(driver, message);
                }
                Some(Ok(Message::Bytes(_))) => {}
                Some(Err(WebSocketError::ConnectionClose(event))) => {
                    ended.code = event.code;
                    if ended.reason.is_empty() {
                        ended.reason = event.reason;
                    }
                    return ended;
                }
                Some(Err(_)) | None => return ended,
            },
            outgoing_message = outgoing.next() => match outgoing_message {
                Some(Outgoing::Text(text)) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return ended;
                    }
                }
                Some(Outgoing::Restart) | None => {
                    ended.restart = true;
                    let _ = socket.into_inner().close(Some(1000), Some("reconnecting"));
                    return ended;
                }
                Some(Outgoing::NetworkDown) => {
                    let _ = socket.into_inner().close(Some(1000), Some("network down"));
                    return ended;
                }
            },
            () = silence => {
                // Dropping the socket closes it; come back at once.
                ended.code = rookery_common::CloseCode::HeartbeatTimeout.number();
                return ended;
            }
        }
    }
}

/// The server accepted `connect`: resubscribe everything from its last
/// position, then send what was published while offline.
fn go_live(driver: &Rc<RefCell<Driver>>, socket: mpsc::UnboundedSender<Outgoing>) {
    let mut state = driver.borrow_mut();
    state.socket = Some(socket);
    let channels: Vec<ChannelName> = state.subscriptions.keys().cloned().collect();
    for channel in &channels {
        state.send_subscribe(channel);
    }
    let documents: Vec<ChannelName> = state.documents.keys().cloned().collect();
    for channel in &documents {
        state.send_doc_sync(channel);
    }
    let queued: Vec<_> = state.offline_publishes.drain(..).collect();
    for (message, done) in queued {
        state.send_publish(message, done);
    }
}

/// Routes one server message to the page that cares.
fn dispatch(driver: &Rc<RefCell<Driver>>, message: ServerMessage) {
    let mut state = driver.borrow_mut();
    match message {
        ServerMessage::Ping {} => state.send(&ClientMessage::Pong {}),
        ServerMessage::Subscribed {
            id,
            channel,
            position,
            recovered,
            publications,
            members,
            locations,
        } => {
            if let Some(id) = id {
                state.pending.remove(&id);
            }
            let Some(subscription) = state.subscriptions.get_mut(&channel) else {
                return;
            };
            let newest = publications
                .iter()
                .filter_map(|p| p.position.clone())
                .next_back();
            subscription.position = newest.or(position);
            let handler = subscription.handler.clone();
            drop(state);
            handler(ChannelEvent::Subscribed {
                recovered,
                publications,
                members,
                locations,
            });
        }
        ServerMessage::Publication {
            channel,
            publication,
        } => {
            let Some(subscription) = state.subscriptions.get_mut(&channel) else {
                return;
            };
            if let Some(position) = &publication.position {
                let duplicate = subscription.position.as_ref().is_some_and(|last| {
                    last.epoch == position.epoch && position.offset <= last.offset
                });
                if duplicate {
                    return;
                }
                subscription.position = Some(position.clone());
            }
            let handler = subscription.handler.clone();
            drop(state);
            handler(ChannelEvent::Publication(publication));
        }
        ServerMessage::Join { channel, member } => {
            if let Some(handler) = state.handler(&channel) {
                drop(state);
                handler(ChannelEvent::Join(member));
            }
        }
        ServerMessage::Leave { channel, member } => {
            if let Some(handler) = state.handler(&channel) {
                drop(state);
                handler(ChannelEvent::Leave(member));
            }
        }
        ServerMessage::Published { id, .. } => {
            if let Some(Pending::Publish(_, Some(done))) =
                id.and_then(|id| state.pending.remove(&id))
            {
                drop(state);
                done(Ok(()));
            }
        }
        ServerMessage::Error { id, code, message } => {
            let pending = id.and_then(|id| state.pending.remove(&id));
            match pending {
                Some(Pending::Publish(_, Some(done)) | Pending::Reply(Some(done))) => {
                    drop(state);
                    done(Err(message));
                }
                Some(Pending::Answer(done)) => {
                    drop(state);
                    done(Err(message));
                }
                Some(Pending::DocSync(channel)) => {
                    if let Some(document) = state.documents.get(&channel) {
                        let handler = document.handler.clone();
                        drop(state);
                        handler(DocEvent::Refused { code, message });
                    }
                }
                Some(Pending::Subscribe(channel)) => {
                    if let Some(handler) = state.handler(&channel) {
                        drop(state);
                        handler(ChannelEvent::Refused { code, message });
                    }
                }
                _ => leptos::logging::warn!("rookery: server error {code}: {message}"),
            }
        }
        ServerMessage::Unsubscribed { id, .. }
        | ServerMessage::Presence { id, .. }
        | ServerMessage::History { id, .. }
        | ServerMessage::Refreshed { id, .. }
        | ServerMessage::Pong { id } => {
            if let Some(id) = id {
                state.pending.remove(&id);
            }
        }
        ServerMessage::Located { id, .. } | ServerMessage::Stopped { id, .. } => {
            if let Some(Pending::Reply(Some(done))) = id.and_then(|id| state.pending.remove(&id)) {
                drop(state);
                done(Ok(()));
            }
        }
        ServerMessage::DocSaved { id, .. } => {
            if let Some(Pending::Reply(Some(done))) = id.and_then(|id| state.pending.remove(&id)) {
                drop(state);
                done(Ok(()));
            }
        }
        ServerMessage::DocSynced {
            id,
            channel,
            update,
            state_vector,
        } => {
            if let Some(id) = id {
                state.pending.remove(&id);
            }
            if let Some(handler) = state.doc_handler(&channel) {
                drop(state);
                handler(DocEvent::Synced {
                    update: update.0,
                    state_vector: state_vector.0,
                });
            }
        }
        ServerMessage::DocUpdated { channel, update } => {
            if let Some(handler) = state.doc_handler(&channel) {
                drop(state);
                handler(DocEvent::Update(update.0));
            }
        }
        ServerMessage::DocAwareness { channel, update } => {
            if let Some(handler) = state.doc_handler(&channel) {
                drop(state);
                handler(DocEvent::Awareness(update.0));
            }
        }
        ServerMessage::DocDeleted { channel } => {
            if let Some(document) = state.documents.remove(&channel) {
                drop(state);
                (document.handler)(DocEvent::Deleted);
            }
        }
        ServerMessage::Notes { id, .. }
        | ServerMessage::NoteCreated { id, .. }
        | ServerMessage::NoteRenamed { id, .. }
        | ServerMessage::NoteDeleted { id, .. } => {
            if let Some(Pending::Answer(done)) = id.and_then(|id| state.pending.remove(&id)) {
                drop(state);
                done(Ok(message));
            }
        }
        ServerMessage::Location { channel, shared } => {
            if let Some(handler) = state.handler(&channel) {
                drop(state);
                handler(ChannelEvent::Location(shared));
            }
        }
        ServerMessage::LocationGone {
            channel,
            user,
            reason,
        } => {
            if let Some(handler) = state.handler(&channel) {
                drop(state);
                handler(ChannelEvent::LocationGone { user, reason });
            }
        }
        ServerMessage::Connected { .. } | ServerMessage::Disconnect { .. } => {}
    }
}

/// 64 random bits as hex, for idempotency keys.
pub fn random_hex() -> String {
    let high = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    let low = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{high:08x}{low:08x}")
}
