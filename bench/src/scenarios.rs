//! The scenarios and their reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use rookery_common::{ChannelName, ClientMessage, Location, ServerMessage, decode_server};
use tokio_tungstenite::tungstenite::Message;

use crate::client;
use crate::proc_stats::{cpu_time, rss_kib};

pub async fn idle(url: &str, pid: Option<u32>, n_connections: usize) -> anyhow::Result<String> {
    let before = pid.and_then(rss_kib);
    let mut held = Vec::with_capacity(n_connections);
    for index in 0..n_connections {
        let (mut writer, mut reader) = client::connect(url, &format!("idle-{index}")).await?;
        let channel = ChannelName::new("chat", &format!("room-{}", index % 100))?;
        client::subscribe(&mut writer, &mut reader, &channel).await?;
        held.push((writer, reader));
    }
    // Let joins and their fan-out settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = pid.and_then(rss_kib);
    let mut report =
        format!("idle: {n_connections} connected, subscribed connections (100 rooms)\n");
    if let (Some(before), Some(after)) = (before, after) {
        report += &format!(
            "server RSS {before} KiB -> {after} KiB: {:.2} KiB per connection\n",
            (after.saturating_sub(before)) as f64 / n_connections as f64
        );
    }
    drop(held);
    Ok(report)
}

/// Send instants of positions in flight, by (sharer, sequence): the viewer
/// looks its deliveries up here, so latency is measured on one clock.
type SendTimes = Arc<Mutex<HashMap<(u32, u32), Instant>>>;

pub async fn location(
    url: &str,
    pid: Option<u32>,
    n_sharers: usize,
    n_viewers: usize,
    rate: f64,
    seconds: u64,
) -> anyhow::Result<String> {
    let channel = ChannelName::new("map", "bench")?;
    let sends: SendTimes = Arc::default();
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let n_deliveries = Arc::new(AtomicU64::new(0));
    let n_sent = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));

    for index in 0..n_viewers {
        let (mut writer, mut reader) = client::connect(url, &format!("viewer-{index}")).await?;
        client::subscribe(&mut writer, &mut reader, &channel).await?;
        let sends = sends.clone();
        let histogram = histogram.clone();
        let n_deliveries = n_deliveries.clone();
        let measuring = measuring.clone();
        tokio::spawn(async move {
            let _writer = writer;
            while let Some(Ok(message)) = reader.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let received = Instant::now();
                let Ok(ServerMessage::Location { shared, .. }) = decode_server(text.as_str())
                else {
                    continue;
                };
                let Some(key) = decode_key(&shared.location) else {
                    continue;
                };
                let sent = sends.lock().expect("sends").get(&key).copied();
                if let Some(sent) = sent
                    && measuring.load(Ordering::Relaxed)
                {
                    let micros = received.duration_since(sent).as_micros() as u64;
                    let _ = histogram.lock().expect("histogram").record(micros.max(1));
                    n_deliveries.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }

    let period = Duration::from_secs_f64(1.0 / rate);
    let mut sharers = Vec::new();
    for index in 0..n_sharers {
        let (writer, reader) = client::connect(url, &format!("sharer-{index}")).await?;
        sharers.push((index as u32, writer, reader));
    }
    for (index, mut writer, mut reader) in sharers {
        let sends = sends.clone();
        let n_sent = n_sent.clone();
        let measuring = measuring.clone();
        // Spread the sharers over the period, as independent devices are.
        let offset = period.mul_f64(f64::from(index) / n_sharers as f64);
        tokio::spawn(async move {
            // Drain whatever the server says to this sharer (errors, pings).
            tokio::spawn(async move { while reader.next().await.is_some() {} });
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            for sequence in 0u32.. {
                ticks.tick().await;
                let location = encode_key(index, sequence);
                sends
                    .lock()
                    .expect("sends")
                    .insert((index, sequence), Instant::now());
                let command = ClientMessage::Locate {
                    id: None,
                    channel: ChannelName::new("map", "bench").expect("valid"),
                    location,
                    approximate: false,
                };
                if client::send(&mut writer, &command).await.is_err() {
                    break;
                }
                if measuring.load(Ordering::Relaxed) {
                    n_sent.fetch_add(1, Ordering::Relaxed);
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
    let n_sent = n_sent.load(Ordering::Relaxed);
    let n_deliveries = n_deliveries.load(Ordering::Relaxed);
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let mut report = format!(
        "location: {n_sharers} sharers at {rate} Hz, {n_viewers} viewers, {seconds} s\n\
         positions sent {n_sent} ({:.0}/s), deliveries measured {n_deliveries} (expected about {})\n\
         update->delivery latency ms: p50 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}\n",
        n_sent as f64 / elapsed.as_secs_f64(),
        n_sent * n_viewers as u64,
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu = after.saturating_sub(before).as_secs_f64();
        report += &format!(
            "server CPU {:.2} s in {:.1} s: {:.1} % of one core\n",
            cpu,
            elapsed.as_secs_f64(),
            100.0 * cpu / elapsed.as_secs_f64()
        );
    }
    Ok(report)
}

/// A position whose coordinates carry (sharer, sequence) exactly: the
/// benchmark's walkers move 0.0001° (about 11 m) per step, past the
/// server's minimum distance.
fn encode_key(sharer: u32, sequence: u32) -> Location {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64);
    Location {
        lat: 10.0 + f64::from(sharer) * 0.001,
        lon: 10.0 + f64::from(sequence) * 0.000_1,
        accuracy: 5.0,
        time: now_ms,
        speed: None,
        heading: None,
    }
}

fn decode_key(location: &Location) -> Option<(u32, u32)> {
    let sharer = ((location.lat - 10.0) / 0.001).round();
    let sequence = ((location.lon - 10.0) / 0.000_1).round();
    (sharer >= 0.0 && sequence >= 0.0).then_some((sharer as u32, sequence as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_coordinates() {
        for (sharer, sequence) in [(0, 0), (999, 12_345), (42, 99_999)] {
            assert_eq!(
                decode_key(&encode_key(sharer, sequence)),
                Some((sharer, sequence))
            );
        }
    }
}
