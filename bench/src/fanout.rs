//! Fan-out: one publisher sends stamped messages of a given size at a
//! steady (open-loop) rate into one channel with N subscribers; every
//! subscriber times each delivery against the stamp (one clock: the same
//! process). Reports deliveries, drops, latency percentiles and — the
//! figure servers are compared by — deliveries per second of server CPU.
//!
//! With a window instead of a rate (closed loop) the publisher keeps at
//! most that many publications' worth of deliveries outstanding (window ×
//! subscribers), publishing the next as soon as the count allows: the
//! server runs as fast as it delivers at that depth of queue, so
//! deliveries per CPU-second compare servers where an open-loop rate
//! cannot. A rate every server keeps up with only measures the offered
//! load (a server with spare CPU spends it on more, smaller sends); a
//! rate above what a server sustains grows every queue until slow
//! consumers are cut off. Deeper windows batch more: the figure belongs
//! to the window.
//!
//! Works against Rookery and the peer servers alike (see `lean`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

use rookery_common::Encoding;

use crate::lean;
use crate::proc_stats::{cpu_time, rss_kib};
use crate::raw::{Delivery, Open, RawReader};

#[derive(Debug, Clone)]
pub struct Fanout {
    pub subscribers: usize,
    /// Bytes of publication data.
    pub size: usize,
    /// Publications per second.
    pub rate: f64,
    /// Closed loop: at most this many publications' worth of deliveries
    /// outstanding; `rate` is then ignored.
    pub window: Option<u64>,
    pub seconds: u64,
    pub channel: String,
    /// Loopback source addresses to spread the connections over.
    pub sources: usize,
    /// What every connection speaks (MessagePack: Rookery only).
    pub encoding: Encoding,
}

/// Connections opened at once while setting up.
const OPENING_AT_ONCE: usize = 256;
const WARM_UP: Duration = Duration::from_secs(2);
/// How long deliveries may trail the last publication.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// `urls`: the server, or a cluster's nodes (subscribers spread over them
/// in turn, the publisher on the first). `pids`: the processes whose CPU
/// and memory count as the server's (a cluster's nodes and its Redis).
pub async fn run(
    urls: &[String],
    pids: &[u32],
    spec: &Fanout,
) -> anyhow::Result<(String, serde_json::Value)> {
    let url = urls
        .first()
        .map_or("ws://127.0.0.1:8000/ws", String::as_str);
    let total = |read: fn(u32) -> Option<u64>| -> Option<u64> {
        if pids.is_empty() {
            return None;
        }
        pids.iter().map(|pid| read(*pid)).sum()
    };
    let cpu_micros = |pid: u32| cpu_time(pid).map(|cpu| cpu.as_micros() as u64);
    let clock = Instant::now();
    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let received = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Progress::default());
    // One histogram for every subscriber: with one each (150 KB of counts
    // apiece) every delivery touched a cold page of its own, and recording
    // was a tenth of the generator's time at 10,000 subscribers. Pinned to
    // one core (as compare.mjs runs it), the lock is never contended.
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        120_000_000,
        3,
    )?));

    let rss_before = total(rss_kib);
    let opened: Vec<_> = stream::iter(0..spec.subscribers)
        .map(|index| async move {
            let name = format!("sub-{index}");
            lean::open_speaking(
                &urls[index % urls.len()],
                lean::source_address(spec.sources, index),
                &name,
                &spec.channel,
                spec.encoding,
            )
            .await
        })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let mut tasks = Vec::with_capacity(spec.subscribers);
    for socket in opened {
        let (writer, reader) = socket?;
        // Read without tungstenite from here on (see raw.rs). Nothing of
        // the server's is left in its buffer: the publisher starts once
        // every subscriber is open, and "subscribed" was the last frame.
        let mut reader = match reader.reunite(writer)?.into_inner() {
            MaybeTlsStream::Plain(stream) => RawReader::new(stream),
            _ => anyhow::bail!("the load generator speaks plain TCP only"),
        };
        let measure_from = measure_from.clone();
        let received = received.clone();
        let closed = closed.clone();
        let histogram = histogram.clone();
        let progress = spec.window.map(|_| progress.clone());
        tasks.push(tokio::spawn(async move {
            let mut record = |delivery: Delivery<'_>| {
                let stamp = match delivery {
                    Delivery::Text(text) => lean::read_stamp_bytes(text),
                    Delivery::Binary(bytes) => lean::read_stamp_bin(bytes),
                };
                let Some((sequence, stamp)) = stamp else {
                    return;
                };
                if let Some(progress) = &progress {
                    progress.record_delivery();
                }
                if sequence >= measure_from.load(Ordering::Relaxed) {
                    let now = clock.elapsed().as_micros() as u64;
                    let latency = now.saturating_sub(stamp).max(1);
                    let _ = histogram.lock().expect("histogram").record(latency);
                    received.fetch_add(1, Ordering::Relaxed);
                }
            };
            // Read until the server closes; the measurement's end aborts
            // the task (a stop signal polled at every wake-up cost more).
            while reader.read(&mut record).await == Open::Yes {}
            closed.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let rss_after = total(rss_kib);

    // The publisher: its own connection, subscribed elsewhere.
    let (mut publisher, mut publisher_reader) = lean::open_speaking(
        url,
        None,
        "publisher",
        &format!("{}-publisher", spec.channel),
        spec.encoding,
    )
    .await?;
    let publish_errors = Arc::new(AtomicU64::new(0));
    {
        let publish_errors = publish_errors.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = publisher_reader.next().await {
                let refused = match message {
                    Message::Text(text) => text.contains(r#""type":"error""#),
                    Message::Binary(bytes) => matches!(
                        rookery_common::decode_server_bin(&bytes),
                        Ok(rookery_common::ServerMessage::Error { .. })
                    ),
                    _ => false,
                };
                if refused {
                    publish_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let publishing = Arc::new(AtomicBool::new(true));
    let next_sequence = Arc::new(AtomicU64::new(0));
    let publisher_task = {
        let publishing = publishing.clone();
        let next_sequence = next_sequence.clone();
        let channel = spec.channel.clone();
        let encoding = spec.encoding;
        let size = spec.size;
        let window = spec.window;
        let subscribers = spec.subscribers as u64;
        let progress = progress.clone();
        // Open loop only (a closed loop takes no rate, which may be 0).
        let mut ticks = window.is_none().then(|| {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / spec.rate));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            ticks
        });
        tokio::spawn(async move {
            while publishing.load(Ordering::Relaxed) {
                let sequence = next_sequence.load(Ordering::Relaxed);
                if let Some(ticks) = &mut ticks {
                    ticks.tick().await;
                } else if let Some(window) = window
                    && sequence >= window
                {
                    // As many deliveries as publications up to
                    // `sequence - window` make (a count: which subscriber
                    // received which is not told apart).
                    let wanted = (sequence - window + 1) * subscribers;
                    if !progress.wait_for(wanted).await {
                        // Not yet: look again, after checking whether the
                        // run is over (a closed socket never delivers).
                        continue;
                    }
                }
                let stamp = clock.elapsed().as_micros() as u64;
                let data = lean::stamped_data(sequence, stamp, size);
                let Ok(frame) = lean::publish_frame(&channel, &data, encoding) else {
                    break;
                };
                if publisher.send(frame).await.is_err() {
                    break;
                }
                next_sequence.store(sequence + 1, Ordering::Relaxed);
            }
            publisher
        })
    };

    tokio::time::sleep(WARM_UP).await;
    let first = next_sequence.load(Ordering::Relaxed);
    measure_from.store(first, Ordering::Relaxed);
    let cpu_before = total(cpu_micros);
    let own_cpu_before = cpu_time(std::process::id());
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(spec.seconds)).await;
    publishing.store(false, Ordering::Relaxed);
    let _publisher = publisher_task.await?;
    let published = next_sequence.load(Ordering::Relaxed) - first;
    let publishing_took = started.elapsed();
    let expected = published * spec.subscribers as u64;
    let drain_started = Instant::now();
    while received.load(Ordering::Relaxed) < expected && drain_started.elapsed() < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu_after = total(cpu_micros);
    let own_cpu_after = cpu_time(std::process::id());
    let elapsed = started.elapsed();
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }

    let histogram = histogram.lock().expect("histogram").clone();
    let received = received.load(Ordering::Relaxed);
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let cpu = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e6);
    let per_cpu_second = cpu
        .filter(|cpu| *cpu > 0.0)
        .map(|cpu| received as f64 / cpu);
    // When the load generator itself is near a full core, the figures are
    // bounded by it, not by the server: say so.
    let load_cpu_share = own_cpu_before
        .zip(own_cpu_after)
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64() / elapsed.as_secs_f64());
    let rss_per_connection = rss_before
        .zip(rss_after)
        .map(|(before, after)| after.saturating_sub(before) as f64 / spec.subscribers as f64);
    let publications_per_s = published as f64 / publishing_took.as_secs_f64();
    let result = json!({
        "scenario": "fanout",
        "nodes": urls.len(),
        "subscribers": spec.subscribers,
        "encoding": spec.encoding.subprotocol(),
        "size": spec.size,
        "rate": if spec.window.is_some() { None } else { Some(spec.rate) },
        "window": spec.window,
        "publications_per_s": publications_per_s,
        "seconds": publishing_took.as_secs_f64(),
        "published": published,
        "expected": expected,
        "delivered": received,
        "dropped": expected.saturating_sub(received),
        "closed": closed.load(Ordering::Relaxed),
        "publish_errors": publish_errors.load(Ordering::Relaxed),
        "p50_ms": ms(0.5),
        "p99_ms": ms(0.99),
        "p999_ms": ms(0.999),
        "max_ms": histogram.max() as f64 / 1000.0,
        "server_cpu_s": cpu,
        "server_cpu_share": cpu.map(|cpu| cpu / elapsed.as_secs_f64()),
        "load_cpu_share": load_cpu_share,
        "deliveries_per_cpu_s": per_cpu_second,
        "rss_kib_per_connection": rss_per_connection,
    });
    let pace = match spec.window {
        Some(window) => {
            format!("closed loop, {window} in flight ({publications_per_s:.0} publications/s)")
        }
        None => format!("at {}/s", spec.rate),
    };
    let mut report = format!(
        "fanout: {} subscribers, {} B {pace} for {:.1} s\n\
         published {published}, delivered {received} of {expected} ({} dropped, {} sockets closed, {} publish errors)\n\
         publish->deliver latency ms: p50 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}\n",
        spec.subscribers,
        spec.size,
        publishing_took.as_secs_f64(),
        expected.saturating_sub(received),
        closed.load(Ordering::Relaxed),
        publish_errors.load(Ordering::Relaxed),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    );
    if let (Some(cpu), Some(per_cpu_second)) = (cpu, per_cpu_second) {
        report += &format!(
            "server CPU {cpu:.2} s in {:.1} s ({:.1} % of one core): {:.0} deliveries per CPU-second\n",
            elapsed.as_secs_f64(),
            100.0 * cpu / elapsed.as_secs_f64(),
            per_cpu_second
        );
    }
    if let Some(share) = load_cpu_share {
        report += &format!(
            "load generator CPU: {:.0} % of one core{}\n",
            share * 100.0,
            if share > 0.9 {
                " (it may be the bottleneck)"
            } else {
                ""
            }
        );
    }
    if let Some(per_connection) = rss_per_connection {
        report += &format!("server RSS per subscribed connection: {per_connection:.2} KiB\n");
    }
    Ok((report, result))
}

/// Deliveries so far, for the closed loop: the publisher waits until they
/// reach a count, and the delivery that reaches it wakes the publisher.
#[derive(Debug, Default)]
struct Progress {
    delivered: AtomicU64,
    /// The count the publisher waits for.
    wanted: AtomicU64,
    count_reached: tokio::sync::Notify,
}

impl Progress {
    fn record_delivery(&self) {
        // Sequentially consistent with `wait_for`: either this delivery
        // sees the count it completes, or the publisher sees the delivery.
        let now = self.delivered.fetch_add(1, Ordering::SeqCst) + 1;
        if now == self.wanted.load(Ordering::SeqCst) {
            self.count_reached.notify_one();
        }
    }

    /// Whether `count` deliveries have been made, waiting for the one that
    /// makes them, for a second at most. False also when woken by the
    /// permit an earlier count left: the caller asks again.
    async fn wait_for(&self, count: u64) -> bool {
        self.wanted.store(count, Ordering::SeqCst);
        if self.delivered.load(Ordering::SeqCst) >= count {
            return true;
        }
        tokio::time::timeout(Duration::from_secs(1), self.count_reached.notified())
            .await
            .is_ok()
            && self.delivered.load(Ordering::SeqCst) >= count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_delivery_that_reaches_the_count_wakes_the_publisher() {
        let progress = Arc::new(Progress::default());
        let waiting = tokio::spawn({
            let progress = progress.clone();
            async move { progress.wait_for(3).await }
        });
        // The publisher runs until it waits (one thread: it goes first).
        tokio::task::yield_now().await;
        assert_eq!(progress.wanted.load(Ordering::SeqCst), 3, "waiting");
        assert!(!waiting.is_finished());
        for _ in 0..3 {
            progress.record_delivery();
        }
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn a_count_already_reached_needs_no_wait() {
        let progress = Progress::default();
        for _ in 0..5 {
            progress.record_delivery();
        }
        assert!(progress.wait_for(3).await);
        assert!(progress.wait_for(5).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_left_by_an_earlier_count_does_not_pass_for_this_one() {
        let progress = Progress::default();
        // The count of 3 is reached while nobody waits: a permit is left.
        progress.wanted.store(3, Ordering::SeqCst);
        for _ in 0..3 {
            progress.record_delivery();
        }
        let started = tokio::time::Instant::now();
        assert!(!progress.wait_for(6).await);
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the permit");
    }

    #[tokio::test(start_paused = true)]
    async fn without_deliveries_the_publisher_looks_again_after_a_second() {
        let progress = Progress::default();
        progress.record_delivery();
        let started = tokio::time::Instant::now();
        let waited = tokio::time::timeout(Duration::from_secs(5), progress.wait_for(2)).await;
        assert_eq!(waited, Ok(false));
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }
}
