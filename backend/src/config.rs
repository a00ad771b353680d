//! `rookery serve`'s settings: CLI flags, `ROOKERY_*` environment variables
//! and an optional TOML file, merged with precedence CLI > env > file >
//! default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::hub::{HubLimits, NamespaceConfig, Namespaces};
use crate::ws::origin::AllowedOrigins;

/// Flags of `rookery serve`. Every field is optional here so a value given on
/// the command line or in the environment can be told apart from one left
/// to the file or the default; the same struct reads the TOML file.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "ROOKERY_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Directory for the SQLite database and anything else kept on disk
    /// [default: ./data]
    #[arg(long, env = "ROOKERY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Directory of the built web app (trunk's output) [default: ./dist]
    #[arg(long, env = "ROOKERY_DIST_DIR")]
    pub dist_dir: Option<PathBuf>,

    /// Origins allowed to open WebSockets besides the server's own, comma
    /// separated (e.g. https://app.example.com); `*` allows any
    #[arg(long, env = "ROOKERY_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// Largest WebSocket message accepted, in bytes; larger ones close the
    /// connection with 1009 [default: 65536]
    #[arg(long, env = "ROOKERY_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,

    /// Messages queued for one connection before it is closed as a slow
    /// consumer (4100) [default: 1024]
    #[arg(long, env = "ROOKERY_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,

    /// Subscriptions one connection may hold [default: 128]
    #[arg(long, env = "ROOKERY_MAX_SUBSCRIPTIONS")]
    pub max_subscriptions: Option<usize>,

    /// Seconds between heartbeat pings; a connection silent for twice this is
    /// closed (4201) [default: 25]
    #[arg(long, env = "ROOKERY_PING_INTERVAL")]
    pub ping_interval: Option<u64>,

    /// Seconds an idempotency key is remembered [default: 300]
    #[arg(long, env = "ROOKERY_IDEMPOTENCY_WINDOW")]
    pub idempotency_window: Option<u64>,

    /// Log format: text or json [default: text]
    #[arg(long, env = "ROOKERY_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// TOML file with any of these settings (same names, snake_case) and
    /// `[namespaces.NAME]` tables
    #[arg(long, env = "ROOKERY_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Namespaces from the file, over the built-in `chat` and `notify`.
    #[arg(skip)]
    pub namespaces: HashMap<String, NamespaceConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

/// The settings a server runs with, every default applied.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub dist_dir: PathBuf,
    pub allowed_origins: AllowedOrigins,
    pub limits: Limits,
    pub namespaces: Namespaces,
    pub log_format: LogFormat,
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    pub outbound_queue: usize,
    pub ping_interval: Duration,
    /// How long a new socket may take to send `connect`.
    pub connect_timeout: Duration,
    /// tungstenite's read buffer per connection. Its default (128 KiB) would
    /// cost over a gigabyte at 10k idle connections.
    pub read_buffer_size: usize,
    pub write_buffer_size: usize,
    pub hub: HubLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            outbound_queue: 1024,
            ping_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(10),
            read_buffer_size: 4 * 1024,
            write_buffer_size: 8 * 1024,
            hub: HubLimits::default(),
        }
    }
}

impl Config {
    /// Defaults only: what tests start from.
    pub fn for_tests() -> Self {
        Self::resolve(ServeArgs::default()).expect("defaults are valid")
    }

    /// Merges the command line (with env) over the file over the defaults.
    pub fn load(cli: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => ServeArgs::default(),
        };
        Self::resolve(cli.over(file))
    }

    fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let defaults = Limits::default();
        let max_message_size = args.max_message_size.unwrap_or(defaults.max_message_size);
        if !(256..=16 * 1024 * 1024).contains(&max_message_size) {
            return Err(ConfigError::Invalid {
                name: "max_message_size",
                message: "must be between 256 and 16777216 bytes".into(),
            });
        }
        let ping_interval = Duration::from_secs(args.ping_interval.unwrap_or(25));
        if ping_interval.is_zero() {
            return Err(ConfigError::Invalid {
                name: "ping_interval",
                message: "must be at least 1 second".into(),
            });
        }
        let mut namespaces = Namespaces::default();
        namespaces.extend(args.namespaces);
        Ok(Self {
            listen: args
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            data_dir: args.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            dist_dir: args.dist_dir.unwrap_or_else(|| PathBuf::from("dist")),
            allowed_origins: AllowedOrigins::parse(args.allowed_origins.as_deref().unwrap_or(""))
                .map_err(|message| ConfigError::Invalid {
                name: "allowed_origins",
                message,
            })?,
            limits: Limits {
                max_message_size,
                outbound_queue: args
                    .outbound_queue
                    .unwrap_or(defaults.outbound_queue)
                    .max(1),
                ping_interval,
                hub: HubLimits {
                    max_subscriptions_per_connection: args
                        .max_subscriptions
                        .unwrap_or(defaults.hub.max_subscriptions_per_connection),
                    idempotency_window: args
                        .idempotency_window
                        .map_or(defaults.hub.idempotency_window, Duration::from_secs),
                },
                ..defaults
            },
            namespaces,
            log_format: args.log_format.unwrap_or_default(),
        })
    }
}

impl ServeArgs {
    /// `self` where set, else `file`.
    fn over(self, file: ServeArgs) -> ServeArgs {
        ServeArgs {
            listen: self.listen.or(file.listen),
            data_dir: self.data_dir.or(file.data_dir),
            dist_dir: self.dist_dir.or(file.dist_dir),
            allowed_origins: self.allowed_origins.or(file.allowed_origins),
            max_message_size: self.max_message_size.or(file.max_message_size),
            outbound_queue: self.outbound_queue.or(file.outbound_queue),
            max_subscriptions: self.max_subscriptions.or(file.max_subscriptions),
            ping_interval: self.ping_interval.or(file.ping_interval),
            idempotency_window: self.idempotency_window.or(file.idempotency_window),
            log_format: self.log_format.or(file.log_format),
            config: self.config,
            namespaces: file.namespaces,
        }
    }
}

fn read_file(path: &Path) -> Result<ServeArgs, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_beats_file_beats_default() {
        let file: ServeArgs = toml::from_str(
            r#"
            listen = "127.0.0.1:9000"
            max_message_size = 4096
            [namespaces.events]
            history_size = 10
            "#,
        )
        .unwrap();
        let cli = ServeArgs {
            listen: Some("127.0.0.1:7000".parse().unwrap()),
            ..ServeArgs::default()
        };
        let config = Config::resolve(cli.over(file)).unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.limits.max_message_size, 4096);
        assert_eq!(config.limits.outbound_queue, 1024);
        assert_eq!(config.namespaces.get("events").unwrap().history_size, 10);
        assert!(config.namespaces.get("chat").is_some());
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        assert!(toml::from_str::<ServeArgs>("lisen = \"x\"").is_err());
    }
}
