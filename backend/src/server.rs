//! The node: shared state, the router, and the serve loop with graceful
//! shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use rookery_common::notes::NOTES_LIST_CHANNEL;
use rookery_common::{ChannelName, CloseCode, NoteListEvent};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::cluster::Cluster;
use crate::cluster::notes::ClusterNotes;
use crate::config::Config;
use crate::http::{health, static_files};
use crate::hub::outbox::Flusher;
use crate::hub::{Hub, Publisher, unix_time_ms};
use crate::metrics::Metrics;
use crate::net::Listeners;
use crate::net::listener::TlsListener;
use crate::net::redirect;
use crate::net::serve::serve;
use crate::net::tls::Hangups;
use crate::notes::Notes;
use crate::store::Store;
use crate::{api, ws};

/// How often expired history, positions and idempotency keys are dropped:
/// a live map's stale markers should go within about a second of their TTL.
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// What every handler and connection task shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub hub: Hub,
    /// Cluster mode: this node's handle on Redis.
    pub cluster: Option<Cluster>,
    pub notes: Arc<Notes>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Writes deliveries to plain TCP sockets (hub/outbox.rs).
    pub flusher: Arc<Flusher>,
    lifecycle: Arc<Lifecycle>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Counts one connection against its address while alive.
#[derive(Debug)]
pub struct IpGuard {
    ip: IpAddr,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[derive(Debug, Default)]
struct Lifecycle {
    shutting_down: AtomicBool,
    n_sockets: AtomicUsize,
    all_sockets_closed: Notify,
}

/// Counts one open socket while alive.
#[derive(Debug)]
pub struct SocketGuard(Arc<Lifecycle>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        if self.0.n_sockets.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_sockets_closed.notify_waiters();
        }
    }
}

impl AppState {
    /// Builds the state; must run inside a tokio runtime (it starts the hub's
    /// sweeper).
    pub fn new(config: Config, store: Store) -> Self {
        let hub = match &config.cluster {
            Some(_) => Hub::new_clustered(config.namespaces.clone(), config.limits.hub.clone()),
            None => Hub::new(config.namespaces.clone(), config.limits.hub.clone()),
        };
        hub.spawn_sweeper(SWEEP_PERIOD);
        let cluster = config.cluster.as_ref().map(|cluster| {
            Cluster::start(cluster, hub.clone()).expect("the Redis URL was checked with the config")
        });
        let list_hub = hub.clone();
        let list_cluster = cluster.clone();
        let idempotency_window = config.limits.hub.idempotency_window;
        let mut notes = Notes::new(store, config.limits.notes.clone()).with_list_listener(
            Box::new(move |event| match &list_cluster {
                None => announce_in_hub(&list_hub, &event),
                Some(cluster) => {
                    announce_in_cluster(&list_hub, cluster, &event, idempotency_window);
                }
            }),
        );
        if let Some(cluster) = &cluster {
            notes = notes.with_relay(Arc::new(ClusterNotes::new(cluster.clone())));
        }
        let notes = Arc::new(notes);
        if let Some(cluster) = &cluster {
            cluster.attach_notes(notes.clone());
        }
        Self {
            hub,
            cluster,
            notes,
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
            flusher: Flusher::start(),
            lifecycle: Arc::default(),
            per_ip: Arc::default(),
        }
    }

    pub fn n_connections_from(&self, ip: IpAddr) -> usize {
        let per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Counts a connection from `ip`, or `None` when the address already
    /// holds its limit.
    pub fn admit_ip(&self, ip: IpAddr) -> Option<IpGuard> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        let n = per_ip.entry(ip).or_insert(0);
        if *n >= self.config.limits.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpGuard {
            ip,
            per_ip: self.per_ip.clone(),
        })
    }

    pub fn is_shutting_down(&self) -> bool {
        self.lifecycle.shutting_down.load(Ordering::SeqCst)
    }

    pub fn track_connection(&self) -> SocketGuard {
        self.lifecycle.n_sockets.fetch_add(1, Ordering::SeqCst);
        SocketGuard(self.lifecycle.clone())
    }

    pub fn n_sockets(&self) -> usize {
        self.lifecycle.n_sockets.load(Ordering::SeqCst)
    }

    /// Turns `/readyz` to 503 and asks every socket to close with
    /// [`CloseCode::Shutdown`] once its queued messages are written.
    pub fn begin_shutdown(&self) {
        self.lifecycle.shutting_down.store(true, Ordering::SeqCst);
        self.hub
            .with(|hub| hub.close_all(CloseCode::Shutdown, "server shutting down; reconnect"));
    }

    /// Waits until every socket has closed, or `limit` passes.
    pub async fn wait_for_sockets(&self, limit: Duration) {
        let all_closed = async {
            loop {
                let notified = self.lifecycle.all_sockets_closed.notified();
                if self.n_sockets() == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(limit, all_closed).await.is_err() {
            tracing::warn!(
                n_sockets = self.n_sockets(),
                "shutdown: sockets still open at the deadline"
            );
        }
    }
}

/// Publishes a notes list event in `notes_list:all`, as the server.
fn announce_in_hub(hub: &Hub, event: &NoteListEvent) {
    let channel = ChannelName::parse(NOTES_LIST_CHANNEL).expect("a valid channel name");
    let data = serde_json::to_value(event).expect("list events serialise");
    let published = hub.with(|hub| {
        hub.publish(
            Publisher::Server,
            &channel,
            data,
            None,
            tokio::time::Instant::now(),
            unix_time_ms(),
        )
    });
    if let Err(error) = published {
        // Only a configuration that changed `notes_list` can get here.
        tracing::warn!(%channel, %error, "notes list event not published");
    }
}

/// Publishes a notes list event in `notes_list:all` through the cluster, so
/// every node's subscribers hear it. In the background (the listener must
/// not wait) and in order.
fn announce_in_cluster(
    hub: &Hub,
    cluster: &Cluster,
    event: &NoteListEvent,
    idempotency_window: Duration,
) {
    let channel = ChannelName::parse(NOTES_LIST_CHANNEL).expect("a valid channel name");
    let data = serde_json::to_value(event).expect("list events serialise");
    let prepared =
        hub.with(|hub| hub.prepare_publication(Publisher::Server, &channel, data, unix_time_ms()));
    let (publication, namespace) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            tracing::warn!(%channel, %error, "notes list event not published");
            return;
        }
    };
    cluster.announce(channel, publication, namespace, idempotency_window);
}

/// Every route of the node.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/yjs/{note}", get(ws::yjs::upgrade))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/config.json", get(health::client_config))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api::router())
        .fallback_service(static_files::service(&state))
        .with_state(state)
}

/// Serves until `shutdown` completes, then closes every socket gracefully
/// (bounded by `drain_limit`).
///
/// `listeners` is the app's socket (a `TcpListener` will do) and, for
/// `--redirect-http`, the redirect's. With a certificate in the config the
/// app is served over TLS, and the certificate is reloaded on SIGHUP and
/// when its files change for as long as this runs.
pub async fn run(
    listeners: impl Into<Listeners>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_limit: Duration,
) -> std::io::Result<()> {
    let Listeners {
        app: listener,
        redirect_http,
    } = listeners.into();
    let router = app(state.clone());
    let header_timeout = state.config.limits.header_timeout;
    let (stopping, stopped) = tokio::sync::watch::channel(false);
    let signal_state = state.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: closing sockets");
        signal_state.begin_shutdown();
        let _ = stopping.send(true);
    };
    let redirect = match redirect_http {
        Some(redirect_listener) => {
            let https_port = listener.local_addr()?.port();
            let mut stopped = stopped.clone();
            let until_stopped = async move {
                // An error means the sender is gone: stop as well.
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            Some(tokio::spawn(serve(
                redirect_listener,
                redirect::router(https_port),
                header_timeout,
                until_stopped,
            )))
        }
        None => None,
    };
    let hangups = Hangups::register()?;
    // Small frames (pings, positions) leave at once rather than wait for
    // the peer's delayed ACK (Nagle's algorithm).
    match &state.config.tls {
        None => {
            let ignorer = tokio::spawn(hangups.ignore());
            let listener = listener.tap_io(|tcp: &mut TcpStream| {
                let _ = tcp.set_nodelay(true);
            });
            serve(listener, router, header_timeout, signal).await;
            ignorer.abort();
        }
        Some(tls) => {
            let config = tls.server_config().map_err(std::io::Error::other)?;
            let watcher = tokio::spawn(tls.clone().watch(hangups));
            let listener = TlsListener::new(listener, config)?.tap_io(
                |stream: &mut tokio_rustls::server::TlsStream<TcpStream>| {
                    let _ = stream.get_ref().0.set_nodelay(true);
                },
            );
            serve(listener, router, header_timeout, signal).await;
            watcher.abort();
        }
    }
    state.wait_for_sockets(drain_limit).await;
    if let Some(redirect) = redirect {
        redirect.await.map_err(std::io::Error::other)?;
    }
    Ok(())
}
