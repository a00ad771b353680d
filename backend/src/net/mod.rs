//! How connections reach the node: plain TCP or TLS, the optional
//! HTTP-to-HTTPS redirect, and the client behind a reverse proxy.
//!
//! - [`tls`]: certificates from PEM files, reloaded on SIGHUP and on change.
//! - [`listener`]: the TLS listener (handshakes off the accept path).
//! - [`redirect`]: `--redirect-http`'s 308s to the https URL.
//! - [`proxy`]: `--trusted-proxies` and the real [`proxy::Client`].
//! - [`serve`]: the HTTP/1.1 serve loop, with a deadline per request head.

pub mod listener;
pub mod proxy;
pub mod redirect;
pub mod serve;
pub mod tls;

use tokio::net::TcpListener;

/// The sockets a node serves on, bound by the caller.
#[derive(Debug)]
pub struct Listeners {
    /// The app, the API and `/ws` (over TLS when the config has a
    /// certificate).
    pub app: TcpListener,
    /// Plain HTTP answered with redirects to the app's https URL.
    pub redirect_http: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(app: TcpListener) -> Self {
        Self {
            app,
            redirect_http: None,
        }
    }
}
