//! HTTPS and WSS from the binary itself: it serves its certificate, serves
//! a replaced one after SIGHUP (or, when asked, as soon as the files
//! change) while open sockets carry on, and redirects plain HTTP.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::Connector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::tempdir::TempDir;
use crate::support::{TestClient, wait_until, within};

/// A self-signed certificate for 127.0.0.1 and its key, as PEM files hold
/// them.
struct Certificate {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn certificate() -> Certificate {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    Certificate {
        cert_pem: generated.cert.pem(),
        key_pem: generated.signing_key.serialize_pem(),
        der: generated.cert.der().clone(),
    }
}

/// Replaces a file whole, as certificate tools do: written aside, renamed
/// over.
fn replace(path: &Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

fn install(certificate: &Certificate, dir: &Path) {
    replace(&dir.join("key.pem"), &certificate.key_pem);
    replace(&dir.join("cert.pem"), &certificate.cert_pem);
}

/// A client that trusts exactly these certificates.
fn trusting(certificates: &[&Certificate]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots.add(certificate.der.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// The certificate a new handshake gets.
async fn served_certificate(
    address: SocketAddr,
    client: &Arc<ClientConfig>,
) -> CertificateDer<'static> {
    within(async {
        let tcp = TcpStream::connect(address).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(client.clone())
            .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
            .await
            .expect("TLS handshake");
        tls.get_ref().1.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    })
    .await
}

async fn wss_client(address: SocketAddr, client: &Arc<ClientConfig>, name: &str) -> TestClient {
    let url = format!("wss://{address}/ws");
    let (socket, _) = within(tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(Connector::Rustls(client.clone())),
    ))
    .await
    .expect("wss opens");
    let mut client = TestClient::from_socket(socket);
    client.connect(name, None).await;
    client
}

/// The binary, serving HTTPS with the certificate in `dir`.
struct Server {
    child: Child,
    stdout: BufReader<ChildStdout>,
    address: SocketAddr,
    /// Everything it logged, for stories that wait on a log line.
    logs: Arc<Mutex<String>>,
}

impl Server {
    /// Serves HTTPS with `cert.pem` and `key.pem` from `dir`.
    fn start(dir: &Path, extra: &[&str]) -> Self {
        let path = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let mut args = vec!["--tls-cert".to_owned(), path("cert.pem")];
        args.extend(["--tls-key".to_owned(), path("key.pem")]);
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        Self::start_with(dir, &args, "https")
    }

    fn start_with(dir: &Path, args: &[String], scheme: &str) -> Self {
        let data = dir.join("data");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rookery"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("rookery starts");
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let address = read_address(&mut stdout, &format!("rookery listening on {scheme}://"));
        Self {
            child,
            stdout,
            address,
            logs,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn n_logged(&self, text: &str) -> usize {
        self.logs.lock().unwrap().matches(text).count()
    }

    fn stop(mut self) {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "exits cleanly on SIGTERM: {status}");
    }
}

fn read_address(stdout: &mut BufReader<ChildStdout>, prefix: &str) -> SocketAddr {
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected {prefix}…, got {line:?}"))
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Polls the served certificate until it is `expected`.
async fn wait_for_certificate(
    address: SocketAddr,
    client: &Arc<ClientConfig>,
    expected: &Certificate,
) {
    within(async {
        while served_certificate(address, client).await != expected.der {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_sighup_and_open_sockets_carry_on() {
    let dir = TempDir::new();
    let (first, second) = (certificate(), certificate());
    install(&first, dir.path());
    // Polling off: only the signal reloads.
    let server = Server::start(dir.path(), &["--tls-reload-interval", "0"]);
    let client = trusting(&[&first, &second]);
    assert_eq!(served_certificate(server.address, &client).await, first.der);

    // Alice is in the lobby, over wss, before the renewal.
    let mut alice = wss_client(server.address, &client, "Alice").await;
    alice.subscribe("chat:lobby").await;

    // The renewal is caught half-way: a new certificate, the old key. The
    // server keeps what it has.
    replace(&dir.path().join("cert.pem"), &second.cert_pem);
    server.signal("-HUP");
    wait_until(|| server.n_logged("kept the TLS certificate in use") == 1).await;
    assert_eq!(served_certificate(server.address, &client).await, first.der);

    install(&second, dir.path());
    assert_eq!(
        served_certificate(server.address, &client).await,
        first.der,
        "nothing changes before the signal"
    );
    server.signal("-HUP");
    wait_for_certificate(server.address, &client, &second).await;

    // Bob arrives under the new certificate; Alice, still on her first
    // connection, hears him.
    let mut bob = wss_client(server.address, &client, "Bob").await;
    bob.publish("chat:lobby", json!("renewed")).await;
    assert_eq!(alice.next_publication().await, json!("renewed"));
    server.stop();
}

#[tokio::test]
async fn renewed_files_are_picked_up_without_a_signal() {
    let dir = TempDir::new();
    let (first, second) = (certificate(), certificate());
    install(&first, dir.path());
    let server = Server::start(dir.path(), &["--tls-reload-interval", "1"]);
    let client = trusting(&[&first, &second]);
    assert_eq!(served_certificate(server.address, &client).await, first.der);
    install(&second, dir.path());
    wait_for_certificate(server.address, &client, &second).await;
    assert!(server.n_logged("the files changed") >= 1);
    server.stop();
}

#[tokio::test]
async fn over_https_the_own_origin_is_https_and_plain_http_is_redirected() {
    let dir = TempDir::new();
    let only = certificate();
    install(&only, dir.path());
    let mut server = Server::start(dir.path(), &["--redirect-http", "127.0.0.1:0"]);
    let client = trusting(&[&only]);

    let open = |origin: String| {
        let mut request = format!("wss://{}/ws", server.address)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        within(tokio_tungstenite::connect_async_tls_with_config(
            request,
            None,
            false,
            Some(Connector::Rustls(client.clone())),
        ))
    };
    assert!(open(format!("https://{}", server.address)).await.is_ok());
    // The same host over plain http is another origin.
    match open(format!("http://{}", server.address)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected 403, got {other:?}"),
    }

    let redirect = read_address(&mut server.stdout, "rookery redirecting http://");
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{redirect}/chat/lobby?from=link"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 308, "308 keeps the method and body");
    assert_eq!(
        response.headers()["location"],
        format!(
            "https://127.0.0.1:{}/chat/lobby?from=link",
            server.address.port()
        )
        .as_str()
    );
    server.stop();
}

#[tokio::test]
async fn without_a_certificate_sighup_is_logged_and_the_server_stays() {
    let dir = TempDir::new();
    let server = Server::start_with(dir.path(), &[], "http");
    server.signal("-HUP");
    wait_until(|| server.n_logged("SIGHUP: nothing to reload") == 1).await;
    let health = reqwest::get(format!("http://{}/healthz", server.address))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    server.stop();
}
