//! A minimal protocol client for load: connect, subscribe, send, read.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rookery_common::codec::encode_client;
use rookery_common::{ChannelName, ClientMessage, CommandId, ServerMessage, decode_server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Writer = SplitSink<Socket, Message>;
pub type Reader = SplitStream<Socket>;

/// Opens a socket and completes `connect` as `name`.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<(Writer, Reader)> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut writer, mut reader) = socket.split();
    send(
        &mut writer,
        &ClientMessage::Connect {
            id: Some(CommandId(1)),
            token: None,
            name: Some(name.into()),
            anonymous_id: None,
        },
    )
    .await?;
    expect(&mut reader, |m| {
        matches!(m, ServerMessage::Connected { .. })
    })
    .await?;
    Ok((writer, reader))
}

pub async fn subscribe(
    writer: &mut Writer,
    reader: &mut Reader,
    channel: &ChannelName,
) -> anyhow::Result<()> {
    send(
        writer,
        &ClientMessage::Subscribe {
            id: Some(CommandId(2)),
            channel: channel.clone(),
            since: None,
            rewind: None,
            token: None,
        },
    )
    .await?;
    expect(reader, |m| matches!(m, ServerMessage::Subscribed { .. })).await
}

pub async fn send(writer: &mut Writer, message: &ClientMessage) -> anyhow::Result<()> {
    writer.send(Message::text(encode_client(message))).await?;
    Ok(())
}

/// Reads until a message matches; errors are fatal for a benchmark client.
async fn expect(
    reader: &mut Reader,
    wanted: impl Fn(&ServerMessage) -> bool,
) -> anyhow::Result<()> {
    while let Some(message) = reader.next().await {
        if let Message::Text(text) = message? {
            let message = decode_server(text.as_str())?;
            if let ServerMessage::Error { code, message, .. } = &message {
                anyhow::bail!("server error {code}: {message}");
            }
            if wanted(&message) {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the server closed the socket")
}
