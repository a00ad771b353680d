//! `/yjs/{note}`: the standard y-websocket protocol, so any Yjs editor (the
//! npm `y-websocket` provider) edits the same notes as the web app.
//!
//! Binary frames, each one or more y-protocol messages: sync step 1/2 and
//! updates, awareness, awareness queries. Updates are stored before they
//! are relayed to... everyone else — the protocol has no acknowledgement, so
//! a store failure closes the socket (1011) and the provider's automatic
//! resync on reconnect resends what was lost.
//!
//! A deleted note closes its sockets (1000, "the note was deleted"), and
//! the provider's reconnects are refused before the upgrade with 410 Gone.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use rookery_common::{CloseCode, ErrorCode};
use tokio::sync::{Notify, mpsc};
use yrs::encoding::read::Cursor;
use yrs::sync::{Message as SyncWire, MessageReader, SyncMessage};
use yrs::updates::decoder::DecoderV1;
use yrs::updates::encoder::Encode;

use crate::http::error::ApiError;
use crate::metrics::Metrics;
use crate::net::proxy::Client;
use crate::notes::document::{check_declared_count, read_var_u64};
use crate::notes::{NotesError, YjsOut, YjsSink, is_valid_id, y_awareness_frame};
use crate::server::AppState;
use crate::store::NoteStatus;

pub async fn upgrade(
    State(state): State<AppState>,
    client: Client,
    Path(note): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if let Err(refusal) = super::admit(&state, &client, &headers) {
        return refusal.into_response();
    }
    if !is_valid_id(&note) {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_channel",
            "note ids are 1 to 64 of A-Z, a-z, 0-9, - and _",
        )
        .into_response();
    }
    // y-websocket carries no token: a private notes namespace is not open
    // to it.
    if state
        .config
        .namespaces
        .get("notes")
        .is_none_or(|notes| notes.private)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            "notes are private on this server; use /ws with a token",
        )
        .into_response();
    }
    match state.notes.status(&note).await {
        Ok(NoteStatus::Deleted) => {
            return ApiError::new(
                StatusCode::GONE,
                ErrorCode::NoteDeleted.slug(),
                "the note was deleted",
            )
            .into_response();
        }
        Ok(NoteStatus::Live | NoteStatus::Missing) => {}
        Err(error) => {
            tracing::error!(%note, %error, "cannot look the note up");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal.slug(),
                "cannot look the note up",
            )
            .into_response();
        }
    }
    let limits = &state.config.limits;
    upgrade
        .read_buffer_size(limits.read_buffer_size)
        .write_buffer_size(limits.write_buffer_size)
        .max_message_size(state.notes.limits().max_update_bytes + 1024)
        .on_upgrade(move |socket| serve(socket, state, client.ip, note))
}

/// `client_ip`: the client's address through trusted proxies, what the
/// per-address limit counts.
async fn serve(socket: WebSocket, state: AppState, client_ip: IpAddr, note: String) {
    let _guard = state.track_connection();
    let (mut sink, mut stream) = socket.split();
    let close = |code: CloseCode, reason: &'static str| {
        Message::Close(Some(CloseFrame {
            code: code.number(),
            reason: reason.into(),
        }))
    };
    let Some(_per_ip) = state.admit_ip(client_ip) else {
        Metrics::bump(&state.metrics.n_connections_refused_per_ip);
        let _ = sink
            .send(close(
                CloseCode::TooManyConnections,
                "too many connections from this address",
            ))
            .await;
        return;
    };
    let notes = state.notes.clone();
    let (frames_tx, mut frames) = mpsc::channel::<YjsOut>(state.config.limits.outbound_queue);
    let slow = Arc::new((AtomicBool::new(false), Notify::new()));
    let peer_sink = YjsSink {
        frames: frames_tx,
        slow: slow.clone(),
    };
    let joined = async {
        let mut handle = notes.open(&note).await?;
        // Replaces the handle if the note was unloaded meanwhile.
        let (peer, opening) = notes.join_yjs(&mut handle, peer_sink.clone()).await?;
        Ok::<_, NotesError>((handle, peer, opening))
    };
    let (handle, peer, opening) = match joined.await {
        Ok(joined) => joined,
        Err(NotesError::Deleted) => {
            let _ = sink.send(close(DELETED.0, DELETED.1)).await;
            return;
        }
        Err(error) => {
            tracing::error!(%note, %error, "cannot open note");
            let _ = sink
                .send(close(CloseCode::InternalError, "cannot open the note"))
                .await;
            return;
        }
    };
    for frame in opening {
        peer_sink.send(frame);
    }

    let writer = async {
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(YjsOut::Frame(frame)) => {
                        if sink.send(Message::Binary(frame.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(YjsOut::Close(code, reason)) => {
                        let _ = sink.send(close(code, reason)).await;
                        return;
                    }
                    None => return,
                },
                () = slow.1.notified() => {
                    let _ = sink.send(close(CloseCode::SlowConsumer, "outbound queue full")).await;
                    return;
                }
            }
        }
    };
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            match message {
                Message::Binary(data) => {
                    if let Err(reason) =
                        handle_frame(&state, &handle, peer, &peer_sink, &data).await
                    {
                        return Some(reason);
                    }
                }
                Message::Text(_) => {
                    return Some((CloseCode::UnsupportedData, "y-websocket frames are binary"));
                }
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        None
    };
    tokio::pin!(writer);
    let closer = peer_sink.frames.clone();
    tokio::select! {
        () = &mut writer => {}
        ended = reader => {
            if let Some((code, reason)) = ended {
                tracing::debug!(%note, %reason, "closing y-websocket");
                // The close goes behind what is queued; bounded, as the
                // client may not be reading.
                if closer.try_send(YjsOut::Close(code, reason)).is_ok() {
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), &mut writer).await;
                }
            }
        }
    }
    notes.leave(&handle, peer);
}

/// How a deleted note's sockets are closed. y-websocket reconnects after
/// any close; the upgrade then answers 410.
const DELETED: (CloseCode, &str) = (CloseCode::Normal, "the note was deleted");

/// The y-protocol messages in one binary frame, all or nothing: a frame
/// with any malformed message is refused whole, before any is handled.
#[allow(clippy::result_unit_err)]
pub fn decode_messages(data: &[u8]) -> Result<Vec<SyncWire>, ()> {
    check_frame_counts(data)?;
    let mut decoder = DecoderV1::new(Cursor::new(data));
    MessageReader::new(&mut decoder)
        .map(|message| message.map_err(drop))
        .collect()
}

/// Walks a frame's y-protocol framing and checks the leading count of each
/// state vector, update and awareness update in it before yrs decodes them
/// (see [`check_declared_count`]).
fn check_frame_counts(data: &[u8]) -> Result<(), ()> {
    let mut at = 0;
    let buffer = |at: &mut usize| -> Result<&[u8], ()> {
        let len = usize::try_from(read_var_u64(data, at).ok_or(())?).map_err(drop)?;
        let end = at.checked_add(len).ok_or(())?;
        let buffer = data.get(*at..end).ok_or(())?;
        *at = end;
        Ok(buffer)
    };
    while at < data.len() {
        match read_var_u64(data, &mut at).ok_or(())? {
            // Sync: a step or update tag, then its state vector or update.
            0 => {
                read_var_u64(data, &mut at).ok_or(())?;
                check_declared_count(buffer(&mut at)?).map_err(drop)?;
            }
            // Awareness: one awareness update.
            1 => check_declared_count(buffer(&mut at)?).map_err(drop)?,
            // Anything else has no counts; yrs judges it.
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Handles one binary frame (one or more y-protocol messages).
async fn handle_frame(
    state: &AppState,
    handle: &Arc<crate::notes::NoteHandle>,
    peer: u64,
    sink: &YjsSink,
    data: &[u8],
) -> Result<(), (CloseCode, &'static str)> {
    let notes = &state.notes;
    let messages = decode_messages(data)
        .map_err(|()| (CloseCode::UnsupportedData, "malformed y-protocol message"))?;
    for message in messages {
        match message {
            SyncWire::Sync(SyncMessage::SyncStep1(state_vector)) => {
                let step2 = notes.yjs_step2(handle, &state_vector.encode_v1()).map_err(
                    |error| match error {
                        NotesError::Deleted => DELETED,
                        _ => (CloseCode::UnsupportedData, "invalid state vector"),
                    },
                )?;
                sink.send(step2);
            }
            SyncWire::Sync(SyncMessage::SyncStep2(update) | SyncMessage::Update(update)) => {
                match notes.update(handle, peer, &update).await {
                    Ok(()) => {}
                    Err(NotesError::Deleted) => return Err(DELETED),
                    Err(NotesError::Store(error)) => {
                        tracing::error!(note = %handle.id, %error, "update not stored");
                        return Err((CloseCode::InternalError, "the update could not be stored"));
                    }
                    Err(_) => {
                        return Err((CloseCode::UnsupportedData, "invalid or oversized update"));
                    }
                }
            }
            SyncWire::Awareness(update) => {
                notes.awareness(handle, peer, &update.encode_v1()).map_err(
                    |error| match error {
                        NotesError::Deleted => DELETED,
                        _ => (CloseCode::UnsupportedData, "invalid awareness update"),
                    },
                )?;
            }
            SyncWire::AwarenessQuery => {
                if let Some(state) = notes.awareness_state(handle) {
                    sink.send(y_awareness_frame(&state));
                }
            }
            SyncWire::Auth(_) | SyncWire::Custom(..) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_declaring_more_entries_than_bytes_is_refused_whole() {
        // An awareness message whose update declares 262 million clients.
        let awareness_bomb = [1, 4, 255, 255, 255, 124];
        assert_eq!(decode_messages(&awareness_bomb), Err(()));
        // A sync step 1 whose state vector does.
        let vector_bomb = [0, 0, 4, 255, 255, 255, 124];
        assert_eq!(decode_messages(&vector_bomb), Err(()));
        // A genuine step 1 with an empty state vector.
        assert!(decode_messages(&[0, 0, 1, 0]).is_ok());
    }
}
