//! `soak`: many clients coming and going for a long time while
//! publications flow; checks that nothing acknowledged is lost and that the
//! server's memory stays flat.
//!
//! Each client holds one chat channel (history and presence on). It stays
//! connected for a random while (on average `clients / churn` seconds),
//! drops its socket (abruptly or with a close frame, in turn), stays away
//! for up to two seconds while publications go on, then reconnects and
//! subscribes again from the last position it saw, expecting
//! `recovered: true` and exactly the publications it missed. Publishers
//! (never churned) publish at a steady total rate and note each
//! acknowledged offset. At the end publishing stops and every client must
//! reach its channel's last acknowledged offset with no gap and no
//! duplicate on the way.
//!
//! With `storm_within_ms` there is no churn but a reconnect storm: half-way
//! through, every client drops its socket at the same moment and comes back
//! within that many milliseconds, recovering what it missed; the report
//! says how long until everyone was back and what it cost the server.
//!
//! The server's RSS is sampled every second; the check compares the end
//! with the sample taken half-way: by then history is full and the
//! allocator has seen a few thousand connections come and go, so what
//! grows after is what stays. Once everyone has left, the server must hold
//! no socket and no connection.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::Rng;
use rookery_common::{
    ChannelName, ClientMessage, CommandId, ServerMessage, StreamPosition, decode_server,
};
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::client::{self, Reader, Writer};
use crate::lean;
use crate::proc_stats::{cpu_time, rss_kib};

#[derive(Debug, Clone)]
pub struct Soak {
    pub clients: usize,
    pub channels: usize,
    /// Reconnections per second, over all clients.
    pub churn: f64,
    /// Publications per second, over all channels.
    pub rate: f64,
    pub seconds: u64,
    pub sources: usize,
    /// The namespace of the channels (it must keep history).
    pub namespace: String,
    /// Fail when the server's RSS grows by more than this after warm-up.
    pub max_growth_percent: Option<f64>,
    /// A reconnect storm instead of churn: half-way through, every client
    /// drops its socket at once and comes back within this many
    /// milliseconds (spread at random), recovering what it missed.
    pub storm_within_ms: Option<u64>,
}

/// The reconnect storm: when it broke out, and how everyone came back.
struct Storm {
    signal: watch::Sender<bool>,
    started: std::sync::OnceLock<Instant>,
    within_ms: u64,
    rejoined: AtomicU64,
    /// Milliseconds from the storm to each client's recovered subscription.
    back_after: Mutex<Histogram<u64>>,
}

/// What the clients saw, added up.
#[derive(Debug, Default)]
struct Tally {
    delivered: AtomicU64,
    recovered: AtomicU64,
    reconnects: AtomicU64,
    /// Offsets skipped: publications a client never got.
    gaps: AtomicU64,
    /// Offsets received twice.
    duplicates: AtomicU64,
    /// Recoveries the server could not make (`recovered: false`).
    not_recovered: AtomicU64,
    /// Sockets the server closed, and connections or subscriptions that
    /// failed (each retried).
    failures: AtomicU64,
    /// Why, by close code or error.
    reasons: Mutex<HashMap<String, u64>>,
}

impl Tally {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn failed(&self, reason: String) {
        Self::add(&self.failures, 1);
        *self.reasons.lock().unwrap().entry(reason).or_insert(0) += 1;
    }
}

/// The end of one client's stream, and whether it is live.
struct Progress {
    channel: usize,
    last: AtomicU64,
}

pub async fn run(url: &str, pid: Option<u32>, spec: &Soak) -> anyhow::Result<(String, bool)> {
    anyhow::ensure!(spec.clients > 0 && spec.channels > 0, "nothing to soak");
    let channels: Arc<Vec<ChannelName>> = Arc::new(
        (0..spec.channels)
            .map(|n| ChannelName::new(&spec.namespace, &format!("soak-{n}")))
            .collect::<Result<_, _>>()?,
    );
    let tally = Arc::new(Tally::default());
    let storm = spec.storm_within_ms.map(|within_ms| {
        Arc::new(Storm {
            signal: watch::channel(false).0,
            started: std::sync::OnceLock::new(),
            within_ms,
            rejoined: AtomicU64::new(0),
            back_after: Mutex::new(Histogram::new_with_bounds(1, 600_000, 3).expect("bounds")),
        })
    });
    let churning = Arc::new(AtomicBool::new(storm.is_none()));
    let run_over = Arc::new(AtomicBool::new(false));
    let progress: Arc<Vec<Progress>> = Arc::new(
        (0..spec.clients)
            .map(|n| Progress {
                channel: n % spec.channels,
                last: AtomicU64::new(0),
            })
            .collect(),
    );

    // Everyone connected and subscribed before the clock starts; a few
    // hundred handshakes at a time.
    let started = Instant::now();
    let opening = Arc::new(Semaphore::new(256));
    let mut ready = Vec::with_capacity(spec.clients);
    let mut tasks = Vec::with_capacity(spec.clients);
    for index in 0..spec.clients {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        ready.push(receiver);
        let client = Client {
            index,
            url: url.to_owned(),
            source: lean::source_address(spec.sources, index),
            channel: channels[index % spec.channels].clone(),
            position: None,
            tally: tally.clone(),
            progress: progress.clone(),
            churning: churning.clone(),
            run_over: run_over.clone(),
            mean_life: spec.clients as f64 / spec.churn.max(1e-9),
            storm: storm
                .as_ref()
                .map(|storm| (storm.clone(), storm.signal.subscribe())),
            back_from_storm: false,
        };
        let opening = opening.clone();
        tasks.push(tokio::spawn(client.live(opening, sender)));
    }
    for receiver in ready {
        receiver
            .await
            .context("a client task ended")?
            .context("a client could not connect")?;
    }
    let connect_time = started.elapsed();
    let rss_connected = pid.and_then(rss_kib);

    // Publishers: at most 10 publications a second each (the default
    // per-connection limit is 20).
    let n_publishers = (spec.rate / 10.0).ceil().max(1.0) as usize;
    let acked: Arc<Mutex<HashMap<usize, u64>>> = Arc::default();
    let publishing = Arc::new(AtomicBool::new(true));
    let mut publishers = Vec::new();
    for n in 0..n_publishers {
        let (writer, reader) = client::connect(url, &format!("soak-publisher-{n}")).await?;
        publishers.push(tokio::spawn(publish(
            writer,
            reader,
            channels.clone(),
            spec.rate / n_publishers as f64,
            acked.clone(),
            publishing.clone(),
        )));
    }

    // The soak itself, sampling memory once a second.
    let run_for = Duration::from_secs(spec.seconds);
    let warm_up = run_for / 2;
    let soak_started = Instant::now();
    let mut samples: Vec<(Duration, u64)> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut storm_cpu: Option<(Duration, Option<Duration>)> = None;
    while soak_started.elapsed() < run_for {
        ticker.tick().await;
        if let Some(storm) = &storm {
            if storm.started.get().is_none() && soak_started.elapsed() >= warm_up {
                let cpu = pid.and_then(cpu_time);
                let _ = storm.started.set(Instant::now());
                storm.signal.send_replace(true);
                storm_cpu = cpu.map(|cpu| (cpu, None));
            }
            if let Some((before, after @ None)) = &mut storm_cpu
                && storm.rejoined.load(Ordering::Relaxed) >= spec.clients as u64
            {
                *after = pid.and_then(cpu_time).map(|cpu| cpu - *before);
            }
        }
        if let Some(rss) = pid.and_then(rss_kib) {
            samples.push((soak_started.elapsed(), rss));
        }
    }
    churning.store(false, Ordering::Relaxed);
    publishing.store(false, Ordering::Relaxed);
    let mut n_published = 0;
    for publisher in publishers {
        n_published += publisher.await??;
    }
    let acked = acked.lock().unwrap().clone();

    // Everyone catches up with the last acknowledged publication.
    let deadline = Instant::now() + Duration::from_secs(60);
    let behind = |progress: &[Progress]| {
        progress
            .iter()
            .filter(|p| {
                let wanted = acked.get(&p.channel).copied().unwrap_or(0);
                p.last.load(Ordering::Relaxed) < wanted
            })
            .count()
    };
    while behind(&progress) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let n_behind = behind(&progress);
    let rss_end = pid.and_then(rss_kib);

    // Everyone leaves: the server must let go of every socket.
    run_over.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let left = Instant::now();
    let mut sockets_left = server_gauge(url, "rookery_sockets").await;
    while sockets_left.is_some_and(|n| n > 0) && left.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sockets_left = server_gauge(url, "rookery_sockets").await;
    }
    let released_in = left.elapsed();
    let connections_left = server_gauge(url, "rookery_connections").await;

    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let mut report = format!(
        "soak: {} clients on {} channels for {} s, {}, {:.0} publications/s\n\
         connected and subscribed in {:.1} s\n\
         publications acknowledged: {n_published}; deliveries {} ({} of them recovered after a reconnect)\n\
         reconnections {}, recovered:false {}, failures {}\n\
         gaps {}, duplicates {}, clients short of the last acknowledged publication: {n_behind}\n",
        spec.clients,
        spec.channels,
        spec.seconds,
        match spec.storm_within_ms {
            Some(_) => "one reconnect storm half-way".to_owned(),
            None => format!("{:.0} reconnections/s", spec.churn),
        },
        spec.rate,
        connect_time.as_secs_f64(),
        get(&tally.delivered),
        get(&tally.recovered),
        get(&tally.reconnects),
        get(&tally.not_recovered),
        get(&tally.failures),
        get(&tally.gaps),
        get(&tally.duplicates),
    );
    report += &format!(
        "after everyone left: {} sockets and {} connections held by the server ({:.1} s)\n",
        sockets_left.map_or("?".into(), |n| n.to_string()),
        connections_left.map_or("?".into(), |n| n.to_string()),
        released_in.as_secs_f64(),
    );
    if let Some(storm) = &storm {
        let back = storm.back_after.lock().unwrap();
        let n_back = storm.rejoined.load(Ordering::Relaxed);
        report += &format!(
            "storm: all {} clients dropped at once, back within {} ms (spread): {n_back} back and \
             recovered; from the storm to a recovered subscription p50 {} ms, p99 {} ms, max {} ms\n",
            spec.clients,
            storm.within_ms,
            back.value_at_quantile(0.5),
            back.value_at_quantile(0.99),
            back.max(),
        );
        if let Some((_, Some(cpu))) = storm_cpu {
            report += &format!(
                "server CPU from the storm until everyone was back: {:.2} s\n",
                cpu.as_secs_f64()
            );
        }
    }
    let mut memory_ok = sockets_left == Some(0) && connections_left == Some(0);
    if !memory_ok {
        report += "FAIL: the server still holds departed clients\n";
    }
    let everyone_back = storm
        .as_ref()
        .is_none_or(|storm| storm.rejoined.load(Ordering::Relaxed) >= spec.clients as u64);
    let delivery_ok = everyone_back
        && get(&tally.gaps) == 0
        && get(&tally.duplicates) == 0
        && get(&tally.not_recovered) == 0
        && n_behind == 0
        && n_published > 0;
    let after_warm_up = samples
        .iter()
        .find(|(at, _)| *at >= warm_up)
        .map(|(_, rss)| *rss);
    if let (Some(connected), Some(warm), Some(end)) = (rss_connected, after_warm_up, rss_end) {
        let peak = samples.iter().map(|(_, rss)| *rss).max().unwrap_or(end);
        let growth = (end as f64 - warm as f64) / warm as f64 * 100.0;
        report += &format!(
            "server RSS: {connected} KiB when all were connected, {warm} KiB after warm-up ({} s), \
             {end} KiB at the end, {peak} KiB at the peak: {growth:+.1} % after warm-up, \
             {:.2} KiB per client\n",
            warm_up.as_secs(),
            end as f64 / spec.clients as f64,
        );
        let step = (samples.len() / 10).max(1);
        let series: Vec<String> = samples
            .iter()
            .step_by(step)
            .map(|(at, rss)| format!("{}s {:.1}", at.as_secs(), *rss as f64 / 1024.0))
            .collect();
        report += &format!("server RSS over time (MiB): {}\n", series.join(", "));
        if let Some(limit) = spec.max_growth_percent
            && growth > limit
        {
            report += &format!("FAIL: memory grew by {growth:.1} % (limit {limit} %)\n");
            memory_ok = false;
        }
    } else if spec.max_growth_percent.is_some() {
        report += "FAIL: no memory figures (is --pid the server's?)\n";
        memory_ok = false;
    }
    let reasons = tally.reasons.lock().unwrap();
    if !reasons.is_empty() {
        let mut reasons: Vec<_> = reasons.iter().collect();
        reasons.sort();
        for (reason, n) in reasons {
            report += &format!("  failure: {reason} x{n}\n");
        }
    }
    if !delivery_ok {
        report += "FAIL: publications lost, repeated or not recovered\n";
    }
    Ok((report, delivery_ok && memory_ok))
}

/// Publishes at a steady rate to channels in turn until told to stop;
/// returns how many were acknowledged.
async fn publish(
    mut writer: Writer,
    mut reader: Reader,
    channels: Arc<Vec<ChannelName>>,
    rate: f64,
    acked: Arc<Mutex<HashMap<usize, u64>>>,
    publishing: Arc<AtomicBool>,
) -> anyhow::Result<u64> {
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = rand::rng().random_range(0..channels.len());
    let mut sent: HashMap<u64, usize> = HashMap::new();
    let mut next_id = 10;
    let mut n_acked = 0;
    let mut stop_check = tokio::time::interval(Duration::from_millis(100));
    let mut stopped_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = stop_check.tick() => {}
            _ = ticker.tick(), if publishing.load(Ordering::Relaxed) => {
                next_id += 1;
                sent.insert(next_id, next);
                client::send(&mut writer, &ClientMessage::Publish {
                    id: Some(CommandId(next_id)),
                    channel: channels[next].clone(),
                    data: json!({"soak": next_id}),
                    idempotency_key: None,
                }).await?;
                next = (next + 1) % channels.len();
            }
            message = reader.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the server closed a publisher's socket");
                };
                let Message::Text(text) = message? else { continue };
                match decode_server(text.as_str())? {
                    ServerMessage::Published { id: Some(CommandId(id)), position: None, .. } => {
                        anyhow::bail!("publication {id} acknowledged without a position: the namespace keeps no history");
                    }
                    ServerMessage::Published { id: Some(CommandId(id)), position: Some(position), .. } => {
                        let channel = sent.remove(&id).context("an unknown ack")?;
                        let mut acked = acked.lock().unwrap();
                        let last = acked.entry(channel).or_insert(0);
                        *last = (*last).max(position.offset);
                        n_acked += 1;
                    }
                    ServerMessage::Error { id: Some(CommandId(id)), .. } => {
                        // Refused, so never acknowledged: nobody owes it.
                        sent.remove(&id);
                    }
                    _ => {}
                }
            }
        }
        if !publishing.load(Ordering::Relaxed) {
            let stopped_at = *stopped_at.get_or_insert_with(Instant::now);
            if sent.is_empty() {
                return Ok(n_acked);
            }
            // An acknowledgement that never comes fails the run rather
            // than hanging it.
            anyhow::ensure!(
                stopped_at.elapsed() < Duration::from_secs(30),
                "{} publications never acknowledged",
                sent.len()
            );
        }
    }
}

struct Client {
    index: usize,
    url: String,
    source: Option<IpAddr>,
    channel: ChannelName,
    /// The last position seen: where a reconnection recovers from.
    position: Option<StreamPosition>,
    tally: Arc<Tally>,
    progress: Arc<Vec<Progress>>,
    churning: Arc<AtomicBool>,
    run_over: Arc<AtomicBool>,
    mean_life: f64,
    /// The storm, if this run has one, and its signal (taken while the
    /// client reads).
    storm: Option<(Arc<Storm>, watch::Receiver<bool>)>,
    back_from_storm: bool,
}

impl Client {
    /// Connects (reporting the first time through `ready`), then lives,
    /// leaves and comes back while churning lasts, stays connected after
    /// it, and closes its socket when the run is over.
    async fn live(
        mut self,
        opening: Arc<Semaphore>,
        ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
    ) {
        let first = {
            let _turn = opening.acquire().await;
            self.join().await
        };
        let (mut writer, mut reader) = match first {
            Ok(socket) => {
                let _ = ready.send(Ok(()));
                socket
            }
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        let mut abrupt = self.index.is_multiple_of(2);
        loop {
            let life = self.churning.load(Ordering::Relaxed).then(|| {
                // Exponential lifetimes: reconnections arrive as a Poisson
                // process at the asked rate.
                let u: f64 = rand::rng().random_range(f64::EPSILON..1.0);
                Duration::from_secs_f64(-u.ln() * self.mean_life)
            });
            match self.receive(&mut writer, &mut reader, life).await {
                Ended::Lived if !self.churning.load(Ordering::Relaxed) => continue,
                Ended::Lived => {
                    // Leave, abruptly or politely in turn, and stay away a
                    // while as publications go on.
                    if !abrupt {
                        close(&mut writer).await;
                    }
                    abrupt = !abrupt;
                    drop((writer, reader));
                    let away = rand::rng().random_range(0..2000);
                    tokio::time::sleep(Duration::from_millis(away)).await;
                }
                Ended::Refused => drop((writer, reader)),
                Ended::Storm => {
                    // Everyone at once: gone without a word, back within
                    // the storm's spread.
                    drop((writer, reader));
                    let within = self.storm.as_ref().map_or(1, |(storm, _)| storm.within_ms);
                    let away = rand::rng().random_range(0..within.max(1));
                    tokio::time::sleep(Duration::from_millis(away)).await;
                }
                Ended::RunOver => {
                    close(&mut writer).await;
                    return;
                }
            }
            (writer, reader) = loop {
                match self.join().await {
                    Ok(socket) => break socket,
                    Err(error) => {
                        self.tally.failed(format!("reconnecting: {error}"));
                        if self.run_over.load(Ordering::Relaxed) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            };
            Tally::add(&self.tally.reconnects, 1);
            if let Some((storm, _)) = &self.storm
                && let Some(started) = storm.started.get()
                && !self.back_from_storm
            {
                // Once per client: its first recovered subscription after
                // the storm.
                self.back_from_storm = true;
                let back_after = started.elapsed().as_millis() as u64;
                let _ = storm.back_after.lock().unwrap().record(back_after.max(1));
                storm.rejoined.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Opens a socket, connects, subscribes (recovering from `position`
    /// after the first time) and takes what the reply carries.
    async fn join(&mut self) -> anyhow::Result<(Writer, Reader)> {
        let (mut writer, mut reader) = lean::open_socket(&self.url, self.source).await?.split();
        client::send(
            &mut writer,
            &ClientMessage::Connect {
                id: Some(CommandId(1)),
                token: None,
                name: Some(format!("soak-{}", self.index)),
                anonymous_id: None,
            },
        )
        .await?;
        client::send(
            &mut writer,
            &ClientMessage::Subscribe {
                id: Some(CommandId(2)),
                channel: self.channel.clone(),
                since: self.position.clone(),
                rewind: None,
                token: None,
            },
        )
        .await?;
        loop {
            let message = reader.next().await.context("closed while joining")??;
            let Message::Text(text) = message else {
                continue;
            };
            match decode_server(text.as_str())? {
                ServerMessage::Subscribed {
                    position,
                    recovered,
                    publications,
                    ..
                } => {
                    match (self.position.is_some(), recovered) {
                        (false, _) => self.position = position,
                        (true, Some(true)) => {
                            Tally::add(&self.tally.recovered, publications.len() as u64);
                            for publication in publications {
                                self.take(publication.position);
                            }
                        }
                        (true, _) => {
                            Tally::add(&self.tally.not_recovered, 1);
                            self.position = position;
                        }
                    }
                    self.record();
                    return Ok((writer, reader));
                }
                ServerMessage::Error { code, message, .. } => {
                    anyhow::bail!("the server refused: {code} {message}")
                }
                _ => {}
            }
        }
    }

    /// Reads publications (answering heartbeats) until `life` is over,
    /// the server closes the socket, or the run is over.
    async fn receive(
        &mut self,
        writer: &mut Writer,
        reader: &mut Reader,
        life: Option<Duration>,
    ) -> Ended {
        let until = tokio::time::sleep(life.unwrap_or(Duration::from_secs(365 * 86_400)));
        tokio::pin!(until);
        let mut check = tokio::time::interval(Duration::from_millis(250));
        // Pending until the storm breaks out (once), if there is one.
        let mut storm = self
            .storm
            .as_ref()
            .filter(|(storm, _)| storm.started.get().is_none())
            .map(|(_, signal)| signal.clone());
        loop {
            tokio::select! {
                () = &mut until, if life.is_some() => return Ended::Lived,
                _ = async {
                    storm.as_mut().expect("guarded").wait_for(|broke| *broke).await.is_ok()
                }, if storm.is_some() => return Ended::Storm,
                _ = check.tick() => {
                    if self.run_over.load(Ordering::Relaxed) {
                        return Ended::RunOver;
                    }
                }
                message = reader.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        if self.on_text(text.as_str()) {
                            let _ = client::send(writer, &ClientMessage::Pong {}).await;
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(0, |frame| u16::from(frame.code));
                        self.tally.failed(format!("closed by the server with {code}"));
                        return Ended::Refused;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        self.tally.failed(format!("socket error: {error}"));
                        return Ended::Refused;
                    }
                    None => {
                        self.tally.failed("socket ended without a close frame".into());
                        return Ended::Refused;
                    }
                },
            }
        }
    }

    /// Takes a publication; true for the server's heartbeat ping, which
    /// wants a pong.
    fn on_text(&mut self, text: &str) -> bool {
        match decode_server(text) {
            Ok(ServerMessage::Publication { publication, .. }) => {
                self.take(publication.position);
                self.record();
                false
            }
            Ok(ServerMessage::Ping {}) => true,
            _ => false,
        }
    }

    /// Checks a delivered position against the last one: the next offset
    /// is expected; anything else is a gap or a repeat.
    fn take(&mut self, position: Option<StreamPosition>) {
        let Some(position) = position else { return };
        Tally::add(&self.tally.delivered, 1);
        if let Some(last) = &self.position {
            if last.epoch != position.epoch {
                // The stream was reset under the client: what it held of
                // the old one cannot be accounted for.
                self.tally
                    .failed("the channel's stream was reset (a new epoch)".into());
                Tally::add(&self.tally.not_recovered, 1);
            } else if position.offset <= last.offset {
                Tally::add(&self.tally.duplicates, 1);
                return;
            } else {
                Tally::add(&self.tally.gaps, position.offset - last.offset - 1);
            }
        }
        self.position = Some(position);
    }

    fn record(&self) {
        let offset = self.position.as_ref().map_or(0, |p| p.offset);
        self.progress[self.index]
            .last
            .store(offset, Ordering::Relaxed);
    }
}

/// Why a client stopped reading.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Its lifetime is over: time to leave and come back.
    Lived,
    /// The server closed the socket or it failed.
    Refused,
    /// The run is over: close and go.
    RunOver,
    /// The reconnect storm broke out.
    Storm,
}

async fn close(writer: &mut Writer) {
    let _ = writer
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "soak".into(),
        })))
        .await;
}

/// A gauge from the server's `/metrics` (on the WebSocket URL's host).
async fn server_gauge(ws_url: &str, name: &str) -> Option<u64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = ws_url.strip_prefix("ws://")?.split('/').next()?.to_owned();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.ok()?;
    let request =
        format!("GET /metrics HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}
