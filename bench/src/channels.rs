//! Many channels: N connections, each subscribed to a personal channel
//! (`{namespace}:p{i}`) and to its group's (`{namespace}:g{i / group}`),
//! while publishers send stamped messages at a steady total rate, half to
//! personal channels and half to groups, each picked at random. What it
//! measures is the cost of many small channels (20,000 subscriptions for
//! 10,000 connections) rather than one big one: deliveries per server
//! CPU-second, latency percentiles, RSS per connection.
//!
//! The namespace must be a plain stream namespace clients may publish in
//! (`bench/compare.mjs` configures `bench` so).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt, stream};
use hdrhistogram::Histogram;
use rand::Rng;
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Reader, Writer};
use crate::lean;
use crate::proc_stats::{cpu_time, rss_kib};

#[derive(Debug, Clone)]
pub struct ManyChannels {
    pub clients: usize,
    /// Members of each group channel.
    pub group: usize,
    /// Publications per second, over all channels.
    pub rate: f64,
    pub seconds: u64,
    pub sources: usize,
    pub namespace: String,
}

const OPENING_AT_ONCE: usize = 256;
const WARM_UP: Duration = Duration::from_secs(2);
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

pub async fn run(url: &str, pid: Option<u32>, spec: &ManyChannels) -> anyhow::Result<String> {
    anyhow::ensure!(spec.clients > 0 && spec.group > 0, "nothing to measure");
    let clock = Instant::now();
    // Deliveries count, and publications are owed, from this stamp on
    // (microseconds on `clock`; never before measuring starts).
    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let received = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1,
        120_000_000,
        3,
    )?));
    let (stop, stopped) = watch::channel(false);
    let n_groups = spec.clients.div_ceil(spec.group);
    let namespace = spec.namespace.as_str();

    let rss_before = pid.and_then(rss_kib);
    let opened: Vec<anyhow::Result<(Writer, Reader)>> = stream::iter(0..spec.clients)
        .map(|index| async move {
            let source = lean::source_address(spec.sources, index);
            let personal = format!("{namespace}:p{index}");
            let (mut writer, reader) =
                lean::open(url, source, &format!("c{index}"), &personal).await?;
            // The group's subscription; its reply is skipped by the reader.
            let group = serde_json::to_string(&format!("{namespace}:g{}", index / spec.group))?;
            writer
                .send(Message::text(format!(
                    r#"{{"type":"subscribe","id":3,"channel":{group}}}"#
                )))
                .await?;
            Ok((writer, reader))
        })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let mut tasks = Vec::with_capacity(spec.clients);
    for socket in opened {
        let (writer, mut reader) = socket?;
        let measure_from = measure_from.clone();
        let received = received.clone();
        let closed = closed.clone();
        let histogram = histogram.clone();
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            // Answers the server's heartbeat, so long runs are not closed.
            let mut writer = writer;
            let mut local = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("bounds");
            loop {
                tokio::select! {
                    message = reader.next() => match message {
                        Some(Ok(Message::Text(text))) => {
                            let Some((_, stamp)) = lean::read_stamp(text.as_str()) else {
                                if text.as_str().contains(r#""type":"ping""#) {
                                    let _ = writer.send(Message::text(r#"{"type":"pong"}"#)).await;
                                }
                                continue;
                            };
                            if stamp >= measure_from.load(Ordering::Relaxed) {
                                let now = clock.elapsed().as_micros() as u64;
                                let _ = local.record(now.saturating_sub(stamp).max(1));
                                received.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => {
                            closed.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    },
                    _ = stopped.changed() => break,
                }
            }
            let _ = histogram.lock().await.add(&local);
        }));
    }
    // Let the group subscriptions' replies arrive before memory is read.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = pid.and_then(rss_kib);

    // Publishers: 100 publications a second each at most.
    let n_publishers = (spec.rate / 100.0).ceil().max(1.0) as usize;
    let publishing = Arc::new(AtomicBool::new(true));
    let expected = Arc::new(AtomicU64::new(0));
    let mut publishers = Vec::new();
    for n in 0..n_publishers {
        let (mut writer, mut reader) = lean::open(
            url,
            None,
            &format!("publisher-{n}"),
            &format!("{namespace}:publishers"),
        )
        .await?;
        tokio::spawn(async move { while let Some(Ok(_)) = reader.next().await {} });
        let publishing = publishing.clone();
        let measure_from = measure_from.clone();
        let expected = expected.clone();
        let period = Duration::from_secs_f64(n_publishers as f64 / spec.rate);
        let (clients, group) = (spec.clients, spec.group);
        let namespace = namespace.to_owned();
        publishers.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut sequence = 0;
            while publishing.load(Ordering::Relaxed) {
                ticks.tick().await;
                let (channel, audience) = if sequence % 2 == 0 {
                    let index = rand::rng().random_range(0..clients);
                    (format!("{namespace}:p{index}"), 1)
                } else {
                    let group_index = rand::rng().random_range(0..n_groups);
                    let members = group.min(clients - group_index * group);
                    (format!("{namespace}:g{group_index}"), members as u64)
                };
                sequence += 1;
                let stamp = clock.elapsed().as_micros() as u64;
                let data = lean::stamped_data(sequence, stamp, 64);
                let frame = format!(r#"{{"type":"publish","channel":"{channel}","data":{data}}}"#);
                if writer.send(Message::text(frame)).await.is_err() {
                    break;
                }
                if stamp >= measure_from.load(Ordering::Relaxed) {
                    expected.fetch_add(audience, Ordering::Relaxed);
                }
            }
        }));
    }

    tokio::time::sleep(WARM_UP).await;
    measure_from.store(clock.elapsed().as_micros() as u64, Ordering::Relaxed);
    let cpu_before = pid.and_then(cpu_time);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(spec.seconds)).await;
    publishing.store(false, Ordering::Relaxed);
    for publisher in publishers {
        let _ = publisher.await;
    }
    let expected = expected.load(Ordering::Relaxed);
    let drain_started = Instant::now();
    while received.load(Ordering::Relaxed) < expected && drain_started.elapsed() < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu_after = pid.and_then(cpu_time);
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }

    let histogram = histogram.lock().await.clone();
    let received = received.load(Ordering::Relaxed);
    let ms = |quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    let mut report = format!(
        "many channels: {} connections, each on a personal channel and one of {n_groups} groups of {}; \
         {}/s for {} s\n\
         delivered {received} of {expected} ({} missing, {} sockets closed)\n\
         publish->deliver latency ms: p50 {:.2}  p99 {:.2}  p999 {:.2}  max {:.2}\n",
        spec.clients,
        spec.group,
        spec.rate,
        spec.seconds,
        expected.saturating_sub(received),
        closed.load(Ordering::Relaxed),
        ms(0.5),
        ms(0.99),
        ms(0.999),
        histogram.max() as f64 / 1000.0,
    );
    if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
        let cpu = (after - before).as_secs_f64();
        report += &format!(
            "server CPU {cpu:.2} s in {:.1} s ({:.1} % of one core): {:.0} deliveries per CPU-second\n",
            elapsed.as_secs_f64(),
            100.0 * cpu / elapsed.as_secs_f64(),
            received as f64 / cpu.max(1e-9),
        );
    }
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        report += &format!(
            "server RSS per connection (two subscriptions each): {:.2} KiB\n",
            after.saturating_sub(before) as f64 / spec.clients as f64
        );
    }
    Ok(report)
}
