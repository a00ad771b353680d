//! `rookery-bench`: drives a running Rookery server and measures it.
//!
//! - `idle`: opens N connected, subscribed, idle connections and reports
//!   the server's resident memory per connection.
//! - `location`: a live-map room of N sharers updating at a steady
//!   (open-loop) rate and M viewers; reports update→delivery latency
//!   percentiles at the viewers and the server's CPU use.
//! - `notes`: N editors typing into one note at a steady rate; reports
//!   keystroke→remote latency and server CPU, and the storage a note takes
//!   per 10,000 keystrokes before and after compaction.
//!
//! - `fanout`: one channel, N subscribers, a publisher at a steady rate;
//!   reports deliveries per second of server CPU, latency and drops. It
//!   speaks only the subset the peer servers in `bench/peers/` share, so
//!   the same run measures Rookery, Bun, Node `ws` and the tokio floor.
//!
//! - `channels`: N connections, each on a personal channel and a group
//!   channel of 10: the cost of many small channels.
//! - `soak`: N clients leaving and coming back (recovering what they
//!   missed) for a long time while publications flow; fails unless every
//!   acknowledged publication reached every client exactly once and the
//!   server's memory stayed within `--max-growth-percent`.
//!
//! The server's process id (`--pid`) is read from `/proc` for CPU and RSS.
//! `--json` adds one line `RESULT {…}` for scripts (`bench/compare.mjs`).

mod channels;
mod client;
mod fanout;
mod lean;
mod notes;
mod proc_stats;
mod raw;
mod scenarios;
mod soak;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rookery-bench", about)]
struct Cli {
    /// The server's WebSocket URL; `fanout` takes several, comma separated
    /// (the nodes of a cluster: subscribers spread over them in turn, the
    /// publisher on the first)
    #[arg(long, default_value = "ws://127.0.0.1:8000/ws", global = true)]
    url: String,
    /// The server's process id, for CPU and memory figures; `fanout` takes
    /// several, comma separated (a cluster's nodes and its Redis: their CPU
    /// is added up)
    #[arg(long, global = true, value_delimiter = ',')]
    pid: Vec<u32>,
    /// Also print the result as one `RESULT {json}` line (fanout)
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Idle subscribed connections: server RSS per connection
    Idle {
        #[arg(long, default_value_t = 5000)]
        connections: usize,
    },
    /// A live-map room: sharers at a steady rate, viewers measuring latency
    Location {
        #[arg(long, default_value_t = 1000)]
        sharers: usize,
        #[arg(long, default_value_t = 10)]
        viewers: usize,
        /// Positions per second per sharer
        #[arg(long, default_value_t = 1.0)]
        rate: f64,
        /// Seconds of measurement (after a warm-up of 3 s)
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// One channel, N subscribers, one publisher at a steady rate
    Fanout {
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        /// Bytes of data per publication
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// Publications per second
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Closed loop instead of a rate: keep at most this many
        /// publications' worth of deliveries outstanding (window ×
        /// subscribers), so the server delivers as fast as it can at that
        /// depth of queue
        #[arg(long, conflicts_with = "rate", value_parser = clap::value_parser!(u64).range(1..))]
        window: Option<u64>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value = "bench:fanout")]
        channel: String,
        /// Loopback source addresses (127.0.0.1..) to spread connections over
        #[arg(long, default_value_t = 1)]
        sources: usize,
        /// Speak `rookery.v1.bin` (MessagePack) instead of JSON
        #[arg(long)]
        msgpack: bool,
    },
    /// Many small channels: each connection on a personal channel and a
    /// group's (the server needs the namespace: see bench/compare.mjs)
    Channels {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        group: usize,
        /// Publications per second, half personal, half to groups
        #[arg(long, default_value_t = 1000.0)]
        rate: f64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        sources: usize,
        #[arg(long, default_value = "bench")]
        namespace: String,
    },
    /// Clients coming and going while publications flow: nothing lost,
    /// memory flat
    Soak {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        channels: usize,
        /// Reconnections per second, over all clients
        #[arg(long, default_value_t = 100.0)]
        churn: f64,
        /// Publications per second, over all channels
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Loopback source addresses (127.0.0.1..) to spread connections over
        #[arg(long, default_value_t = 1)]
        sources: usize,
        /// The channels' namespace (one that keeps history)
        #[arg(long, default_value = "chat")]
        namespace: String,
        /// Fail when the server's RSS at the end exceeds the one half-way
        /// through by more than this
        #[arg(long)]
        max_growth_percent: Option<f64>,
        /// A reconnect storm instead of churn: half-way through, every
        /// client drops its socket at once and comes back within this many
        /// milliseconds, recovering what it missed
        #[arg(long)]
        storm_within_ms: Option<u64>,
    },
    /// One note, N editors typing at a steady rate
    Notes {
        #[arg(long, default_value_t = 50)]
        editors: usize,
        /// Keystrokes per second per editor
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let pid = cli.pid.first().copied();
    let report = match cli.scenario {
        Scenario::Idle { connections } => scenarios::idle(&cli.url, pid, connections).await?,
        Scenario::Location {
            sharers,
            viewers,
            rate,
            seconds,
        } => scenarios::location(&cli.url, pid, sharers, viewers, rate, seconds).await?,
        Scenario::Notes {
            editors,
            rate,
            seconds,
        } => notes::run(&cli.url, pid, editors, rate, seconds).await?,
        Scenario::Channels {
            clients,
            group,
            rate,
            seconds,
            sources,
            namespace,
        } => {
            let spec = channels::ManyChannels {
                clients,
                group,
                rate,
                seconds,
                sources,
                namespace,
            };
            channels::run(&cli.url, pid, &spec).await?
        }
        Scenario::Soak {
            clients,
            channels,
            churn,
            rate,
            seconds,
            sources,
            namespace,
            max_growth_percent,
            storm_within_ms,
        } => {
            let spec = soak::Soak {
                clients,
                channels,
                churn,
                rate,
                seconds,
                sources,
                namespace,
                max_growth_percent,
                storm_within_ms,
            };
            let (report, ok) = soak::run(&cli.url, pid, &spec).await?;
            println!("{report}");
            if !ok {
                std::process::exit(1);
            }
            return Ok(());
        }
        Scenario::Fanout {
            subscribers,
            size,
            rate,
            window,
            seconds,
            channel,
            sources,
            msgpack,
        } => {
            let spec = fanout::Fanout {
                subscribers,
                size,
                rate,
                window,
                seconds,
                channel,
                sources,
                encoding: if msgpack {
                    rookery_common::Encoding::MessagePack
                } else {
                    rookery_common::Encoding::Json
                },
            };
            let urls: Vec<String> = cli.url.split(',').map(str::to_owned).collect();
            let (report, result) = fanout::run(&urls, &cli.pid, &spec).await?;
            if cli.json {
                println!("RESULT {result}");
            }
            report
        }
    };
    println!("{report}");
    Ok(())
}
