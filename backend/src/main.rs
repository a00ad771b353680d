//! The `rookery` binary: parses the command line, sets up logging, binds, and
//! hands over to [`rookery::run`].

use std::ffi::OsString;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rookery::{AppState, Config, ServeArgs};

/// A self-hosted real-time server: channels, presence, history and recovery
/// over WebSockets, with a web app for chat, maps and notes.
#[derive(Debug, Parser)]
#[command(name = "rookery", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
}

/// How long shutdown waits for sockets to take their close frames.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    match cli.command {
        Command::Serve(args) => serve(args),
    }
}

/// `rookery` and `rookery --listen …` mean `rookery serve …`.
fn with_default_command(mut args: Vec<OsString>) -> Vec<OsString> {
    let first = args.get(1).and_then(|arg| arg.to_str()).unwrap_or("");
    let is_top_level = matches!(
        first,
        "-h" | "--help" | "-V" | "--version" | "help" | "serve"
    );
    if !is_top_level && (first.is_empty() || first.starts_with('-')) {
        args.insert(1.min(args.len()), OsString::from("serve"));
    }
    args
}

#[tokio::main]
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(args)?;
    rookery::telemetry::init(config.log_format);
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    if !config.dist_dir.join("index.html").exists() {
        tracing::warn!(dist_dir = %config.dist_dir.display(), "web app not built: only the API and /ws are served");
    }
    let state = AppState::new(config);
    // Tests and scripts read this line to learn the port of `--listen …:0`.
    println!("rookery listening on http://{address}");
    tracing::info!(%address, "listening");
    rookery::run(listener, state, shutdown_signal(), DRAIN_LIMIT).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
