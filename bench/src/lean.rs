//! A lean client for comparing servers: the handshake is checked by
//! message type only and deliveries are never fully decoded, so the same
//! driver runs against Rookery and against the peer servers in
//! `bench/peers/` (which speak only this subset), and the load generator
//! spends as little CPU per delivery as it can.

use std::net::{IpAddr, SocketAddr};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::client::{Reader, Socket, Writer};

/// Opens a socket from `source` (a loopback address: each one has its own
/// ~28k ephemeral ports), connects as `name` and subscribes to `channel`.
pub async fn open(
    url: &str,
    source: Option<IpAddr>,
    name: &str,
    channel: &str,
) -> anyhow::Result<(Writer, Reader)> {
    let (mut writer, mut reader) = open_socket(url, source).await?.split();
    let name = serde_json::to_string(name)?;
    let channel = serde_json::to_string(channel)?;
    writer
        .send(Message::text(format!(
            r#"{{"type":"connect","id":1,"name":{name}}}"#
        )))
        .await?;
    expect_type(&mut reader, "connected").await?;
    writer
        .send(Message::text(format!(
            r#"{{"type":"subscribe","id":2,"channel":{channel}}}"#
        )))
        .await?;
    expect_type(&mut reader, "subscribed").await?;
    Ok((writer, reader))
}

/// Opens a WebSocket to `url` from `source` (a loopback address).
pub async fn open_socket(url: &str, source: Option<IpAddr>) -> anyhow::Result<Socket> {
    let request = url.into_client_request()?;
    let host = request.uri().host().context("the URL has no host")?;
    let port = request.uri().port_u16().unwrap_or(80);
    let address: SocketAddr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .context("the host does not resolve")?;
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(address).await?;
    stream.set_nodelay(true)?;
    let (socket, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await?;
    Ok(socket)
}

/// Reads until a frame of `"type":"<wanted>"`; an error frame is fatal.
async fn expect_type(reader: &mut Reader, wanted: &str) -> anyhow::Result<()> {
    let wanted = format!(r#""type":"{wanted}""#);
    while let Some(message) = reader.next().await {
        if let Message::Text(text) = message? {
            if text.contains(&wanted) {
                return Ok(());
            }
            if text.contains(r#""type":"error""#) {
                anyhow::bail!("the server refused: {}", text.as_str());
            }
        }
    }
    anyhow::bail!("the server closed the socket during the handshake")
}

/// The loopback source address (127.0.0.1, 127.0.0.2, …) of connection
/// `index` when spreading over `sources` of them; `None` for just one.
pub fn source_address(sources: usize, index: usize) -> Option<IpAddr> {
    (sources > 1).then(|| {
        let octet = 1 + (index % sources) as u8;
        IpAddr::from([127, 0, 0, octet])
    })
}

/// The stamp a publication carries: `"s":<sequence>,"t":<micros>`, found
/// by scanning rather than parsing the frame.
pub fn read_stamp(frame: &str) -> Option<(u64, u64)> {
    let sequence = number_after(frame, "\"s\":")?;
    let micros = number_after(frame, "\"t\":")?;
    Some((sequence, micros))
}

fn number_after(frame: &str, key: &str) -> Option<u64> {
    let start = frame.find(key)? + key.len();
    let digits = frame[start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    frame[start..start + digits].parse().ok()
}

/// Publication data of exactly `size` bytes (at least the stamp's own).
pub fn stamped_data(sequence: u64, micros: u64, size: usize) -> String {
    let head = format!(r#"{{"s":{sequence},"t":{micros},"p":""#);
    let padding = size.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "x".repeat(padding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_a_publication_frame() {
        let data = stamped_data(42, 1_234_567, 64);
        assert_eq!(data.len(), 64);
        let frame =
            format!(r#"{{"type":"publication","channel":"bench:fanout","data":{data},"time":1}}"#);
        assert_eq!(read_stamp(&frame), Some((42, 1_234_567)));
        assert!(serde_json::from_str::<serde_json::Value>(&data).is_ok());
        assert_eq!(stamped_data(1, 2, 1024).len(), 1024);
    }

    #[test]
    fn sources_spread_over_loopback() {
        assert_eq!(source_address(1, 5), None);
        assert_eq!(source_address(4, 5), Some(IpAddr::from([127, 0, 0, 2])));
    }
}
