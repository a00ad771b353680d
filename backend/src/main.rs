//! The `rookery` binary: parses the command line, sets up logging, binds, and
//! hands over to [`rookery::run`].

use std::ffi::OsString;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rookery::auth::{ConnectionClaims, Minter, SubscriptionClaims, unix_now};
use rookery::{AppState, Config, ServeArgs};

/// A self-hosted real-time server: channels, presence, history and recovery
/// over WebSockets, with a web app for chat, maps and notes.
#[derive(Debug, Parser)]
#[command(name = "rookery", version = rookery::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Mint a connection token (or, with --subscription, a subscription
    /// token) and print it.
    Token(TokenArgs),
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The user id (`sub`)
    #[arg(long)]
    sub: String,
    /// Display name
    #[arg(long)]
    name: Option<String>,
    /// Seconds until the token expires; 0 for a token that never does
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// A channel pattern the token grants in private namespaces
    /// (`ns:name`, `ns:*` or `*`); repeatable
    #[arg(long = "channel")]
    channels: Vec<String>,
    /// Mint a subscription token for this one channel instead
    #[arg(long)]
    subscription: Option<String>,
    /// HS256 secret (the server's --jwt-secret)
    #[arg(long, env = "ROOKERY_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// PEM file with an RSA (RS256) or P-256 (ES256) private key, instead
    /// of --jwt-secret
    #[arg(long)]
    private_key: Option<std::path::PathBuf>,
}

/// How long shutdown waits for sockets to take their close frames.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(with_default_command(std::env::args_os().collect()));
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Token(args) => {
            println!("{}", mint(&args)?);
            Ok(())
        }
    }
}

fn mint(args: &TokenArgs) -> anyhow::Result<String> {
    let minter = match (&args.jwt_secret, &args.private_key) {
        (Some(secret), None) => Minter::hs256(secret.as_bytes()).map_err(anyhow::Error::msg)?,
        (None, Some(path)) => {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            Minter::from_private_key_pem(&pem).map_err(anyhow::Error::msg)?
        }
        _ => anyhow::bail!(
            "give exactly one of --jwt-secret (or ROOKERY_JWT_SECRET) and --private-key"
        ),
    };
    let exp = (args.ttl > 0).then(|| unix_now() + args.ttl);
    Ok(match &args.subscription {
        Some(channel) => {
            rookery_common::ChannelName::parse(channel)
                .context("invalid --subscription channel")?;
            minter.mint(&SubscriptionClaims {
                sub: args.sub.clone(),
                channel: channel.clone(),
                exp,
            })
        }
        None => minter.mint(&ConnectionClaims {
            sub: args.sub.clone(),
            name: args.name.clone(),
            exp,
            channels: args.channels.clone(),
            channel: None,
        }),
    })
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
    let redirect_http = match config.redirect_http {
        Some(redirect) => Some(
            tokio::net::TcpListener::bind(redirect)
                .await
                .with_context(|| format!("cannot listen on {redirect} (--redirect-http)"))?,
        ),
        None => None,
    };
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let store = rookery::store::Store::open(config.database_url.as_deref(), &config.data_dir)
        .await
        .context("cannot open the notes store")?;
    tracing::info!(store = store.kind(), "notes store open");
    if config.cluster.is_some() {
        tracing::info!("cluster mode: following Redis");
    }
    let state = AppState::new(config, store);
    // Tests and scripts read this line to learn the port of `--listen …:0`.
    println!("rookery listening on {scheme}://{address}");
    tracing::info!(%address, scheme, version = rookery::VERSION, "listening");
    if let Some(redirect) = &redirect_http {
        println!(
            "rookery redirecting http://{} to https",
            redirect.local_addr()?
        );
    }
    let listeners = rookery::net::Listeners {
        app: listener,
        redirect_http,
    };
    let cluster = state.cluster.clone();
    rookery::run(listeners, state, shutdown_signal(), DRAIN_LIMIT).await?;
    if let Some(cluster) = cluster {
        // The closed sockets' presence leases end now, not at their TTL.
        cluster.flush().await;
    }
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
