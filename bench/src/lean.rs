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

use rookery_common::codec::encode_client_bin;
use rookery_common::{ChannelName, ClientMessage, CommandId, Encoding, ServerMessage};

use crate::client::{Reader, Socket, Writer};

/// Opens a socket from `source` (a loopback address: each one has its own
/// ~28k ephemeral ports), connects as `name` and subscribes to `channel`.
pub async fn open(
    url: &str,
    source: Option<IpAddr>,
    name: &str,
    channel: &str,
) -> anyhow::Result<(Writer, Reader)> {
    open_speaking(url, source, name, channel, Encoding::Json).await
}

/// As [`open`], in `encoding` (Rookery only: the peers speak JSON).
pub async fn open_speaking(
    url: &str,
    source: Option<IpAddr>,
    name: &str,
    channel: &str,
    encoding: Encoding,
) -> anyhow::Result<(Writer, Reader)> {
    let (mut writer, mut reader) = open_socket_speaking(url, source, encoding).await?.split();
    if encoding == Encoding::MessagePack {
        let connect = ClientMessage::Connect {
            id: Some(CommandId(1)),
            token: None,
            name: Some(name.into()),
            anonymous_id: None,
        };
        writer
            .send(Message::binary(encode_client_bin(&connect)))
            .await?;
        expect_type(&mut reader, "connected").await?;
        let subscribe = ClientMessage::Subscribe {
            id: Some(CommandId(2)),
            channel: ChannelName::parse(channel)?,
            since: None,
            rewind: None,
            token: None,
        };
        writer
            .send(Message::binary(encode_client_bin(&subscribe)))
            .await?;
        expect_type(&mut reader, "subscribed").await?;
        return Ok((writer, reader));
    }
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
    open_socket_speaking(url, source, Encoding::Json).await
}

async fn open_socket_speaking(
    url: &str,
    source: Option<IpAddr>,
    encoding: Encoding,
) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    if encoding != Encoding::Json {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", encoding.subprotocol().parse()?);
    }
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
    let wanted_json = format!(r#""type":"{wanted}""#);
    while let Some(message) = reader.next().await {
        match message? {
            Message::Text(text) => {
                if text.contains(&wanted_json) {
                    return Ok(());
                }
                if text.contains(r#""type":"error""#) {
                    anyhow::bail!("the server refused: {}", text.as_str());
                }
            }
            Message::Binary(bytes) => {
                // Only while opening: decoding in full costs nothing here.
                let message = rookery_common::decode_server_bin(&bytes)?;
                let text = rookery_common::encode(&message);
                if text.contains(&wanted_json) {
                    return Ok(());
                }
                if let ServerMessage::Error { .. } = message {
                    anyhow::bail!("the server refused: {text}");
                }
            }
            _ => {}
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
    read_stamp_bytes(frame.as_bytes())
}

/// The stamp of a MessagePack publication: the unsigned integers after
/// the one-letter keys `s` and `t` (the only one-letter strings in it).
pub fn read_stamp_bin(frame: &[u8]) -> Option<(u64, u64)> {
    let sequence = uint_after(frame, &[0xa1, b's'])?;
    let micros = uint_after(frame, &[0xa1, b't'])?;
    Some((sequence, micros))
}

fn uint_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let start = memchr::memmem::find(frame, key)? + key.len();
    let rest = frame.get(start..)?;
    let be = |n: usize| -> Option<u64> {
        let bytes = rest.get(1..=n)?;
        Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    match *rest.first()? {
        small @ 0x00..=0x7f => Some(u64::from(small)),
        0xcc => be(1),
        0xcd => be(2),
        0xce => be(4),
        0xcf => be(8),
        _ => None,
    }
}

/// A `publish` command of `data` (JSON text) in `encoding`.
pub fn publish_frame(channel: &str, data: &str, encoding: Encoding) -> anyhow::Result<Message> {
    Ok(match encoding {
        Encoding::Json => {
            let channel = serde_json::to_string(channel)?;
            Message::text(format!(
                r#"{{"type":"publish","channel":{channel},"data":{data}}}"#
            ))
        }
        Encoding::MessagePack => Message::binary(encode_client_bin(&ClientMessage::Publish {
            id: None,
            channel: ChannelName::parse(channel)?,
            data: serde_json::from_str(data)?,
            idempotency_key: None,
        })),
    })
}

/// As [`read_stamp`], on a text frame's bytes as they arrived.
pub fn read_stamp_bytes(frame: &[u8]) -> Option<(u64, u64)> {
    let sequence = number_after(frame, b"\"s\":")?;
    let micros = number_after(frame, b"\"t\":")?;
    Some((sequence, micros))
}

fn number_after(frame: &[u8], key: &[u8]) -> Option<u64> {
    let start = memchr::memmem::find(frame, key)? + key.len();
    let digits = frame[start..]
        .iter()
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    std::str::from_utf8(&frame[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// Publication data of exactly `size` bytes (at least the stamp's own).
///
/// The padding's key sorts after the stamp's: a server that writes object
/// keys in sorted order (Rookery's serde_json does; Bun and Node keep the
/// order given) must not put a kilobyte of padding before the stamp, or
/// the load generator scans it for every delivery of that server only (a
/// third of its time at 10,000 subscribers with 1 KiB, which it then
/// spent at 98 % of its core against 74 % for Bun).
pub fn stamped_data(sequence: u64, micros: u64, size: usize) -> String {
    let head = format!(r#"{{"s":{sequence},"t":{micros},"x":""#);
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
        assert_eq!(read_stamp_bytes(frame.as_bytes()), Some((42, 1_234_567)));
        assert!(serde_json::from_str::<serde_json::Value>(&data).is_ok());
        assert_eq!(stamped_data(1, 2, 1024).len(), 1024);
    }

    #[test]
    fn the_stamp_comes_before_the_padding_in_sorted_keys_too() {
        let data = stamped_data(7, 8, 1024);
        let sorted =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&data).unwrap())
                .unwrap();
        for frame in [&data, &sorted] {
            let stamp = frame.find(r#""t":"#).unwrap();
            let padding = frame.find(r#""x":"#).unwrap();
            assert!(stamp < 32 && stamp < padding, "{}", &frame[..40]);
            assert_eq!(read_stamp(frame), Some((7, 8)));
        }
    }

    #[test]
    fn stamps_survive_a_msgpack_publication() {
        for (sequence, micros) in [(0, 5), (42, 1_234_567), (300, 70_000), (1 << 40, u64::MAX)] {
            let data: serde_json::Value =
                serde_json::from_str(&stamped_data(sequence, micros, 64)).unwrap();
            let frame = rookery_common::encode_bin(&ServerMessage::Publication {
                channel: ChannelName::parse("bench:fanout").unwrap(),
                publication: rookery_common::Publication {
                    position: None,
                    data,
                    sender: None,
                    time: 1,
                },
            });
            assert_eq!(read_stamp_bin(&frame), Some((sequence, micros)));
        }
    }

    #[test]
    fn sources_spread_over_loopback() {
        assert_eq!(source_address(1, 5), None);
        assert_eq!(source_address(4, 5), Some(IpAddr::from([127, 0, 0, 2])));
    }
}
