//! Behind a reverse proxy: `X-Forwarded-*` headers decide who the client is
//! (per-address limits) and which origin it used (the Origin check), but
//! only when the TCP peer is one of `--trusted-proxies`.

use std::net::IpAddr;

use rookery::net::proxy::TrustedProxies;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{TestClient, TestServer, wait_until, within};

/// Opens `/ws` with extra request headers; `Err` carries a refused
/// upgrade's status.
async fn open(server: &TestServer, headers: &[(&'static str, &str)]) -> Result<TestClient, u16> {
    let mut request = server.ws_url().into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match within(tokio_tungstenite::connect_async(request)).await {
        Ok((socket, _)) => Ok(TestClient::from_socket(socket)),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(error) => panic!("upgrade failed: {error}"),
    }
}

async fn connected(server: &TestServer, name: &str, forwarded_for: &str) -> TestClient {
    let mut client = open(server, &[("x-forwarded-for", forwarded_for)])
        .await
        .expect("upgrade accepted");
    client.connect(name, None).await;
    client
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// What a TLS-terminating proxy in front of `https://rookery.example`
/// adds to a browser's upgrade.
const FROM_THE_PROXY: [(&str, &str); 3] = [
    ("origin", "https://rookery.example"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "rookery.example"),
];

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_change_nothing() {
    let server = TestServer::start_with(|config| {
        config.limits.max_connections_per_ip = 1;
    })
    .await;
    let state = server.state.clone();

    // Mallory claims to be two different people from one address.
    let _first = connected(&server, "Mallory", "203.0.113.1").await;
    wait_until(|| state.n_connections_from(ip("127.0.0.1")) == 1).await;
    assert_eq!(state.n_connections_from(ip("203.0.113.1")), 0);
    let mut second = open(&server, &[("x-forwarded-for", "203.0.113.2")])
        .await
        .expect("upgrade accepted");
    assert_eq!(second.closed().await.code, 4101, "still one address");

    // Nor can a page elsewhere pass for the app by claiming a proxy's view.
    let refused = open(&server, &FROM_THE_PROXY).await.err();
    assert_eq!(refused, Some(403));
}

#[tokio::test]
async fn a_trusted_proxy_speaks_for_its_clients() {
    let server = TestServer::start_with(|config| {
        config.limits.max_connections_per_ip = 1;
        config.trusted_proxies = TrustedProxies::parse("127.0.0.0/8, ::1").unwrap();
    })
    .await;
    let state = server.state.clone();

    // Alice and Bob come through the same proxy; each has a slot.
    let mut alice = connected(&server, "Alice", "203.0.113.1").await;
    let _bob = connected(&server, "Bob", "198.51.100.2, 203.0.113.2").await;
    wait_until(|| {
        state.n_connections_from(ip("203.0.113.1")) == 1
            && state.n_connections_from(ip("203.0.113.2")) == 1
    })
    .await;
    assert_eq!(state.n_connections_from(ip("127.0.0.1")), 0);
    // A second tab of Alice's is over her limit; Bob's slot is his own.
    let mut again = open(&server, &[("x-forwarded-for", "203.0.113.1")])
        .await
        .expect("upgrade accepted");
    assert_eq!(again.closed().await.code, 4101);
    alice.subscribe("chat:lobby").await;

    // The proxy says the browser is on https://rookery.example: that is
    // the app's own origin, and a plain-http page there is not.
    assert!(open(&server, &FROM_THE_PROXY).await.is_ok());
    let mut downgraded = FROM_THE_PROXY;
    downgraded[0] = ("origin", "http://rookery.example");
    assert_eq!(open(&server, &downgraded).await.err(), Some(403));
}
