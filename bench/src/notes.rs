//! The notes scenario: editors typing into one shared note.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use rookery_common::{Bytes, ChannelName, ClientMessage, CommandId, ServerMessage, decode_server};
use tokio_tungstenite::tungstenite::Message;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

use crate::client;
use crate::proc_stats::cpu_time;

/// When each keystroke left its editor, by its update's bytes (the server
/// relays them unchanged, and each holds a unique client and clock).
type SendTimes = Arc<Mutex<HashMap<Vec<u8>, Instant>>>;

pub async fn run(
    url: &str,
    pid: Option<u32>,
    n_editors: usize,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<String> {
    let note = format!("bench-{}", rand::random::<u32>());
    let channel = ChannelName::new("notes", &note)?;
    let sends: SendTimes = Arc::default();
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let measuring = Arc::new(AtomicBool::new(false));
    let n_keystrokes = Arc::new(AtomicU64::new(0));
    let n_deliveries = Arc::new(AtomicU64::new(0));
    let period = Duration::from_secs_f64(1.0 / rate);

    for index in 0..n_editors {
        let (mut writer, mut reader) = client::connect(url, &format!("editor-{index}")).await?;
        let doc = Doc::new();
        client::send(
            &mut writer,
            &ClientMessage::DocSync {
                id: Some(CommandId(10)),
                channel: channel.clone(),
                state_vector: Bytes(doc.transact().state_vector().encode_v1()),
            },
        )
        .await?;
        let doc = Arc::new(doc);
        // Reader: applies what others typed and times it.
        {
            let doc = doc.clone();
            let sends = sends.clone();
            let histogram = histogram.clone();
            let measuring = measuring.clone();
            let n_deliveries = n_deliveries.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = reader.next().await {
                    let Message::Text(text) = message else {
                        continue;
                    };
                    let received = Instant::now();
                    let update = match decode_server(text.as_str()) {
                        Ok(
                            ServerMessage::DocUpdated { update, .. }
                            | ServerMessage::DocSynced { update, .. },
                        ) => update,
                        Ok(ServerMessage::Error { code, message, .. }) => {
                            eprintln!("editor: server error {code}: {message}");
                            continue;
                        }
                        _ => continue,
                    };
                    let Ok(decoded) = Update::decode_v1(&update.0) else {
                        continue;
                    };
                    let _ = doc.transact_mut().apply_update(decoded);
                    if !measuring.load(Ordering::Relaxed) {
                        continue;
                    }
                    let sent = sends.lock().expect("sends").get(&update.0).copied();
                    if let Some(sent) = sent {
                        let micros = received.duration_since(sent).as_micros() as u64;
                        let _ = histogram.lock().expect("histogram").record(micros.max(1));
                        n_deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        // Typist: one character per tick at the end of the body.
        let sends = sends.clone();
        let measuring = measuring.clone();
        let n_keystrokes = n_keystrokes.clone();
        let channel = channel.clone();
        let offset = period.mul_f64(index as f64 / n_editors as f64);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut next_id = 100u64;
            loop {
                ticks.tick().await;
                let update = {
                    let body = doc.get_or_insert_text("body");
                    let before = doc.transact().state_vector();
                    {
                        let mut txn = doc.transact_mut();
                        let len = body.len(&txn);
                        body.insert(&mut txn, len, "k");
                    }
                    let update = doc.transact().encode_state_as_update_v1(&before);
                    sends
                        .lock()
                        .expect("sends")
                        .insert(update.clone(), Instant::now());
                    update
                };
                next_id += 1;
                let command = ClientMessage::DocUpdate {
                    id: Some(CommandId(next_id)),
                    channel: channel.clone(),
                    update: Bytes(update),
                };
                if client::send(&mut writer, &command).await.is_err() {
                    break;
                }
                if measuring.load(Ordering::Relaxed) {
                    n_keystrokes.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    tokio::time::sleep(Duration::from_secs(3)).await;
    measuring.store(true, Ordering::Relaxed);
    let cpu_before = pid.and_then(cpu_time);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu_after = pid.and_then(cpu_time);
    let elapsed = started.elapsed();
    measuring.store(false, Ordering::Relaxed);

    let histogram = histogram.lock().expect("histogram").clone();
    let n_keystrokes = n_keystrokes.load(Ordering::Relaxed);
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let mut report = format!(
        "notes: {n_editors} editors typing {rate}/s into one note, {seconds} s\n\
         keystrokes {n_keystrokes} ({:.0}/s), remote deliveries measured {} (expected about {})\n\
         keystroke->remote latency ms: p50 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}\n",
        n_keystrokes as f64 / elapsed.as_secs_f64(),
        n_deliveries.load(Ordering::Relaxed),
        n_keystrokes * (n_editors as u64 - 1),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu = after.saturating_sub(before).as_secs_f64();
        report += &format!(
            "server CPU {cpu:.2} s in {:.1} s: {:.1} % of one core\n",
            elapsed.as_secs_f64(),
            100.0 * cpu / elapsed.as_secs_f64()
        );
    }
    report += &storage_per_10k_keystrokes();
    Ok(report)
}

/// What a note's store holds after 10,000 one-character keystrokes: the
/// update log, and the snapshot compaction replaces it with.
fn storage_per_10k_keystrokes() -> String {
    let typist = Doc::new();
    let body = typist.get_or_insert_text("body");
    let mut log_bytes = 0usize;
    for n in 0..10_000u32 {
        let before = typist.transact().state_vector();
        {
            let mut txn = typist.transact_mut();
            let len = body.len(&txn);
            // Mostly appending, with an edit in the middle now and then.
            let at = if n % 10 == 0 { len / 2 } else { len };
            body.insert(&mut txn, at, "k");
        }
        log_bytes += typist.transact().encode_state_as_update_v1(&before).len();
    }
    let snapshot = typist
        .transact()
        .encode_state_as_update_v1(&StateVector::default());
    let text_len = body.get_string(&typist.transact()).len();
    format!(
        "storage per 10,000 keystrokes: update log {log_bytes} bytes ({:.1} per keystroke); \
         after compaction {} bytes (text {text_len} bytes)\n",
        log_bytes as f64 / 10_000.0,
        snapshot.len()
    )
}
