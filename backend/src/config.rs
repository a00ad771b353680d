//! `rookery serve`'s settings: CLI flags, `ROOKERY_*` environment variables
//! and an optional TOML file, merged with precedence CLI > env > file >
//! default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use crate::auth::Verifier;
use crate::cluster::ClusterConfig;
use crate::http::assets::Assets;
use crate::hub::{HubLimits, NamespaceConfig, Namespaces};
use crate::net::proxy::TrustedProxies;
use crate::net::tls::Tls;
use crate::notes::NoteLimits;
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

    /// Directory of the built web app (trunk's output) [default: ./dist,
    /// or the app built into the binary when it has the `embed` feature]
    #[arg(long, env = "ROOKERY_DIST_DIR")]
    pub dist_dir: Option<PathBuf>,

    /// Postgres URL (postgres://…) for notes; without it notes live in
    /// SQLite under --data-dir
    #[arg(long, env = "ROOKERY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Redis URL (redis://host:port/db): join the cluster of every node on
    /// the same Redis; without it the node stands alone
    #[arg(long, env = "ROOKERY_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Cluster mode: seconds a presence lease lives unless its node
    /// refreshes it, i.e. how soon a dead node's members leave [default: 15]
    #[arg(long, env = "ROOKERY_PRESENCE_TTL")]
    pub presence_ttl: Option<u64>,

    /// Origins allowed to open WebSockets besides the server's own, comma
    /// separated (e.g. https://app.example.com); `*` allows any
    #[arg(long, env = "ROOKERY_ALLOWED_ORIGINS")]
    pub allowed_origins: Option<String>,

    /// PEM file with the certificate chain to serve HTTPS (and WSS) with;
    /// needs --tls-key. Reloaded on SIGHUP and when the file changes
    #[arg(long, env = "ROOKERY_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the certificate's private key
    #[arg(long, env = "ROOKERY_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// Seconds between checks of the certificate files for a change; 0:
    /// reload on SIGHUP only [default: 10]
    #[arg(long, env = "ROOKERY_TLS_RELOAD_INTERVAL")]
    pub tls_reload_interval: Option<u64>,

    /// Also listen on this address for plain HTTP and answer everything
    /// with a 308 redirect to the https URL (needs --tls-cert)
    #[arg(long, env = "ROOKERY_REDIRECT_HTTP")]
    pub redirect_http: Option<SocketAddr>,

    /// Reverse proxies (addresses or networks, comma separated) whose
    /// X-Forwarded-For, -Proto and -Host headers are believed
    /// [default: none]
    #[arg(long, env = "ROOKERY_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,

    /// Largest WebSocket message accepted, in bytes; larger ones close the
    /// connection with 1009 [default: 65536]
    #[arg(long, env = "ROOKERY_MAX_MESSAGE_SIZE")]
    pub max_message_size: Option<usize>,

    /// Agree to permessage-deflate with clients that offer it (browsers
    /// do): each message of 256 bytes or more is compressed once for all
    /// its recipients; no connection keeps a compression window between
    /// messages [default: false]
    #[arg(long, env = "ROOKERY_WEBSOCKET_COMPRESSION")]
    pub websocket_compression: Option<bool>,

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

    /// Publishes per second one connection may make (burst: twice this);
    /// more get error 111 [default: 20]
    #[arg(long, env = "ROOKERY_MAX_PUBLISH_RATE")]
    pub max_publish_rate: Option<u32>,

    /// Commands per second one connection may send (burst: twice this);
    /// more close it with 4102 [default: 200]
    #[arg(long, env = "ROOKERY_MAX_COMMAND_RATE")]
    pub max_command_rate: Option<u32>,

    /// WebSocket connections one IP address may hold; more are closed with
    /// 4101 [default: 100]
    #[arg(long, env = "ROOKERY_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,

    /// Members one channel's presence may hold; more get error 116
    /// [default: 1000]
    #[arg(long, env = "ROOKERY_MAX_PRESENCE")]
    pub max_presence: Option<usize>,

    /// Key for the HTTP API, sent as `Authorization: Bearer <key>`; the API
    /// answers 401 without it [default: none, API disabled]
    #[arg(long, env = "ROOKERY_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// HS256 secret for connection and subscription tokens
    #[arg(long, env = "ROOKERY_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// PEM file with the RSA (RS256) or P-256 (ES256) public key tokens are
    /// signed for (instead of --jwt-secret)
    #[arg(long, env = "ROOKERY_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<PathBuf>,

    /// Accept connections without a token (display name only)
    /// [default: true]
    #[arg(long, env = "ROOKERY_ANONYMOUS")]
    pub anonymous: Option<bool>,

    /// Map tiles: a URL template with {z}/{x}/{y} (and optional {s}), or
    /// `none` for the bundled offline world map [default: OpenStreetMap]
    #[arg(long, env = "ROOKERY_TILE_URL")]
    pub tile_url: Option<String>,

    /// Attribution shown with custom tiles (HTML allowed: it is the
    /// operator's, not a user's) [default: OpenStreetMap's]
    #[arg(long, env = "ROOKERY_TILE_ATTRIBUTION")]
    pub tile_attribution: Option<String>,

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
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Postgres for notes; `None`: SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// Cluster membership (`--redis-url`); `None`: a single node.
    pub cluster: Option<ClusterConfig>,
    pub web_app: WebApp,
    pub allowed_origins: AllowedOrigins,
    /// HTTPS on `listen`; `None`: plain HTTP.
    pub tls: Option<Tls>,
    /// Where plain HTTP is redirected to HTTPS, if anywhere.
    pub redirect_http: Option<SocketAddr>,
    pub trusted_proxies: TrustedProxies,
    pub limits: Limits,
    pub namespaces: Namespaces,
    pub log_format: LogFormat,
    /// The HTTP API's key; `None` disables the API.
    pub api_key: Option<String>,
    /// How tokens are verified; `None` when no key is configured.
    pub verifier: Option<Verifier>,
    pub allow_anonymous: bool,
    pub tiles: Tiles,
    /// Whether `/ws` agrees to permessage-deflate.
    pub websocket_compression: bool,
}

/// Where the web app's files come from.
#[derive(Debug, Clone)]
pub enum WebApp {
    /// A directory read on every request (`--dist-dir`).
    Dir(PathBuf),
    /// Files held in memory with precompressed variants: the app built
    /// into the binary by the `embed` feature.
    Memory(Arc<Assets>),
}

/// Where the map's background comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tiles {
    /// A raster tile server.
    Url {
        template: String,
        attribution: String,
    },
    /// The bundled offline world map: no request leaves the server.
    None,
}

/// OpenStreetMap's standard tiles, with the attribution their tile usage
/// policy requires.
pub const OSM_TILES: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
pub const OSM_ATTRIBUTION: &str =
    "&copy; <a href=\"https://www.openstreetmap.org/copyright\">OpenStreetMap</a> contributors";

impl std::fmt::Debug for Config {
    // By hand, so the API key can never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "cluster",
                &self.cluster.as_ref().map(|c| ("<redacted>", c.lease_ttl)),
            )
            .field("web_app", &self.web_app)
            .field("allowed_origins", &self.allowed_origins)
            .field("tls", &self.tls)
            .field("redirect_http", &self.redirect_http)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("limits", &self.limits)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("verifier", &self.verifier)
            .field("allow_anonymous", &self.allow_anonymous)
            .field("websocket_compression", &self.websocket_compression)
            .field("tiles", &self.tiles)
            .finish_non_exhaustive()
    }
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_size: usize,
    pub outbound_queue: usize,
    pub ping_interval: Duration,
    /// How long a new socket may take to send `connect`.
    pub connect_timeout: Duration,
    /// How long a client may take to send a request's head (the request
    /// line and headers): longer, and the connection is closed
    /// (slowloris). Also how long a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// tungstenite's read buffer per `/yjs` connection (`/ws` keeps none),
    /// allocated for the connection's life. Its default (128 KiB) would
    /// cost over a gigabyte at 10k idle connections; a larger message just
    /// takes more reads.
    pub read_buffer_size: usize,
    pub write_buffer_size: usize,
    pub max_publish_rate: u32,
    pub max_command_rate: u32,
    pub max_connections_per_ip: usize,
    pub hub: HubLimits,
    pub notes: NoteLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_size: 64 * 1024,
            outbound_queue: 1024,
            ping_interval: Duration::from_secs(25),
            connect_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            read_buffer_size: 1024,
            write_buffer_size: 8 * 1024,
            max_publish_rate: 20,
            max_command_rate: 200,
            max_connections_per_ip: 100,
            hub: HubLimits::default(),
            notes: NoteLimits::default(),
        }
    }
}

impl Config {
    /// Defaults only: what tests start from.
    pub fn for_tests() -> Self {
        Self::resolve(ServeArgs::default()).expect("defaults are valid")
    }

    /// A configuration file's text alone, over the defaults (what
    /// `--config` reads; the fuzzer's entry point).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let args: ServeArgs = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            source: Box::new(source),
        })?;
        Self::resolve(args)
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
        if args.redirect_http.is_some() && args.tls_cert.is_none() {
            return Err(ConfigError::Invalid {
                name: "redirect_http",
                message: "redirects to https, so it needs --tls-cert and --tls-key".into(),
            });
        }
        let mut namespaces = Namespaces::default();
        namespaces.extend(args.namespaces);
        check_notes_privacy(&namespaces)?;
        let verifier =
            match (&args.jwt_secret, &args.jwt_public_key) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::Invalid {
                        name: "jwt_secret",
                        message: "give --jwt-secret or --jwt-public-key, not both".into(),
                    });
                }
                (Some(secret), None) if secret.len() < 16 => {
                    return Err(ConfigError::Invalid {
                        name: "jwt_secret",
                        message: "must be at least 16 bytes".into(),
                    });
                }
                (Some(secret), None) => {
                    Some(Verifier::hs256(secret.as_bytes()).map_err(|message| {
                        ConfigError::Invalid {
                            name: "jwt_secret",
                            message,
                        }
                    })?)
                }
                (None, Some(path)) => Some(Verifier::load_public_key(path).map_err(|message| {
                    ConfigError::Invalid {
                        name: "jwt_public_key",
                        message,
                    }
                })?),
                (None, None) => None,
            };
        if args.api_key.as_ref().is_some_and(|key| key.len() < 16) {
            return Err(ConfigError::Invalid {
                name: "api_key",
                message: "must be at least 16 characters".into(),
            });
        }
        let rate = |value: Option<u32>, default: u32, name: &'static str| match value {
            Some(0) => Err(ConfigError::Invalid {
                name,
                message: "must be at least 1".into(),
            }),
            value => Ok(value.unwrap_or(default)),
        };
        let max_publish_rate = rate(
            args.max_publish_rate,
            defaults.max_publish_rate,
            "max_publish_rate",
        )?;
        let max_command_rate = rate(
            args.max_command_rate,
            defaults.max_command_rate,
            "max_command_rate",
        )?;
        Ok(Self {
            listen: args
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8000))),
            data_dir: args.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            database_url: args.database_url.clone(),
            cluster: cluster(
                args.redis_url,
                args.presence_ttl,
                args.database_url.as_deref(),
            )?,
            web_app: web_app(args.dist_dir),
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
                max_publish_rate,
                max_command_rate,
                max_connections_per_ip: args
                    .max_connections_per_ip
                    .unwrap_or(defaults.max_connections_per_ip)
                    .max(1),
                hub: HubLimits {
                    max_presence_members: args
                        .max_presence
                        .unwrap_or(defaults.hub.max_presence_members)
                        .max(1),
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
            api_key: args.api_key,
            verifier,
            allow_anonymous: args.anonymous.unwrap_or(true),
            websocket_compression: args.websocket_compression.unwrap_or(false),
            tiles: tiles(args.tile_url.as_deref(), args.tile_attribution)?,
            tls: tls(
                args.tls_cert.as_deref(),
                args.tls_key.as_deref(),
                args.tls_reload_interval,
            )?,
            redirect_http: args.redirect_http,
            trusted_proxies: TrustedProxies::parse(args.trusted_proxies.as_deref().unwrap_or(""))
                .map_err(|message| ConfigError::Invalid {
                name: "trusted_proxies",
                message,
            })?,
        })
    }
}

impl ServeArgs {
    /// `self` where set, else `file`.
    fn over(self, file: ServeArgs) -> ServeArgs {
        ServeArgs {
            listen: self.listen.or(file.listen),
            data_dir: self.data_dir.or(file.data_dir),
            database_url: self.database_url.or(file.database_url),
            redis_url: self.redis_url.or(file.redis_url),
            presence_ttl: self.presence_ttl.or(file.presence_ttl),
            dist_dir: self.dist_dir.or(file.dist_dir),
            allowed_origins: self.allowed_origins.or(file.allowed_origins),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            tls_reload_interval: self.tls_reload_interval.or(file.tls_reload_interval),
            redirect_http: self.redirect_http.or(file.redirect_http),
            trusted_proxies: self.trusted_proxies.or(file.trusted_proxies),
            max_message_size: self.max_message_size.or(file.max_message_size),
            outbound_queue: self.outbound_queue.or(file.outbound_queue),
            websocket_compression: self.websocket_compression.or(file.websocket_compression),
            max_subscriptions: self.max_subscriptions.or(file.max_subscriptions),
            ping_interval: self.ping_interval.or(file.ping_interval),
            idempotency_window: self.idempotency_window.or(file.idempotency_window),
            max_publish_rate: self.max_publish_rate.or(file.max_publish_rate),
            max_command_rate: self.max_command_rate.or(file.max_command_rate),
            max_connections_per_ip: self.max_connections_per_ip.or(file.max_connections_per_ip),
            max_presence: self.max_presence.or(file.max_presence),
            api_key: self.api_key.or(file.api_key),
            jwt_secret: self.jwt_secret.or(file.jwt_secret),
            jwt_public_key: self.jwt_public_key.or(file.jwt_public_key),
            anonymous: self.anonymous.or(file.anonymous),
            tile_url: self.tile_url.or(file.tile_url),
            tile_attribution: self.tile_attribution.or(file.tile_attribution),
            log_format: self.log_format.or(file.log_format),
            config: self.config,
            namespaces: file.namespaces,
        }
    }
}

/// `--dist-dir` when given; else the app built into the binary, if it has
/// one; else `./dist`.
fn web_app(dist_dir: Option<PathBuf>) -> WebApp {
    match dist_dir {
        Some(dir) => WebApp::Dir(dir),
        #[cfg(feature = "embed")]
        None => WebApp::Memory(Arc::new(Assets::embedded())),
        #[cfg(not(feature = "embed"))]
        None => WebApp::Dir(PathBuf::from("dist")),
    }
}

fn tls(
    cert: Option<&Path>,
    key: Option<&Path>,
    reload_interval: Option<u64>,
) -> Result<Option<Tls>, ConfigError> {
    let (cert, key) = match (cert, key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) => return Ok(None),
        (Some(_), None) | (None, Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "tls_cert",
                message: "give both --tls-cert and --tls-key".into(),
            });
        }
    };
    let reload_interval = match reload_interval.unwrap_or(10) {
        0 => None,
        seconds => Some(Duration::from_secs(seconds)),
    };
    Tls::load(cert, key, reload_interval)
        .map(Some)
        .map_err(|error| ConfigError::Invalid {
            name: "tls_cert",
            message: error.to_string(),
        })
}

fn cluster(
    redis_url: Option<String>,
    presence_ttl: Option<u64>,
    database_url: Option<&str>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let lease_ttl = match presence_ttl {
        Some(0) => {
            return Err(ConfigError::Invalid {
                name: "presence_ttl",
                message: "must be at least 1 second".into(),
            });
        }
        seconds => Duration::from_secs(seconds.unwrap_or(15)),
    };
    let Some(redis_url) = redis_url else {
        return Ok(None);
    };
    if !redis_url.starts_with("redis://") {
        return Err(ConfigError::Invalid {
            name: "redis_url",
            message: "use redis://[:password@]host:port[/db]".into(),
        });
    }
    // Every node must serve the same notes: one database for all of them.
    if !database_url
        .is_some_and(|url| url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(ConfigError::Invalid {
            name: "redis_url",
            message: "a cluster needs --database-url postgres://… (the notes every node serves)"
                .into(),
        });
    }
    if let Err(error) = redis::Client::open(redis_url.as_str()) {
        return Err(ConfigError::Invalid {
            name: "redis_url",
            message: error.to_string(),
        });
    }
    Ok(Some(ClusterConfig {
        redis_url,
        lease_ttl,
    }))
}

fn tiles(url: Option<&str>, attribution: Option<String>) -> Result<Tiles, ConfigError> {
    match url {
        Some("none") => Ok(Tiles::None),
        None => Ok(Tiles::Url {
            template: OSM_TILES.into(),
            attribution: attribution.unwrap_or_else(|| OSM_ATTRIBUTION.into()),
        }),
        Some(template) => {
            let ok = (template.starts_with("https://") || template.starts_with("http://"))
                && ["{z}", "{x}", "{y}"]
                    .iter()
                    .all(|part| template.contains(part));
            if !ok {
                return Err(ConfigError::Invalid {
                    name: "tile_url",
                    message: "must be an http(s) URL with {z}, {x} and {y}, or none".into(),
                });
            }
            Ok(Tiles::Url {
                template: template.to_owned(),
                attribution: attribution.unwrap_or_default(),
            })
        }
    }
}

/// Private notes need a private list: `notes_list:all` carries every
/// note's id and title as it changes, to whoever may subscribe.
fn check_notes_privacy(namespaces: &Namespaces) -> Result<(), ConfigError> {
    let is_private = |name: &str| namespaces.get(name).is_some_and(|ns| ns.private);
    if is_private("notes") && !is_private("notes_list") {
        return Err(ConfigError::Invalid {
            name: "namespaces",
            message: "[namespaces.notes] is private but [namespaces.notes_list] is not: \
                      the notes list's live events would show every note's id and title \
                      to anyone; set private = true for notes_list too"
                .into(),
        });
    }
    Ok(())
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
    fn tile_urls_are_checked() {
        assert_eq!(tiles(Some("none"), None).unwrap(), Tiles::None);
        assert!(
            matches!(tiles(None, None).unwrap(), Tiles::Url { template, .. } if template == OSM_TILES)
        );
        assert!(tiles(Some("https://tiles.example/{z}/{x}/{y}.png"), None).is_ok());
        assert!(tiles(Some("https://tiles.example/tile.png"), None).is_err());
        assert!(tiles(Some("javascript:alert(1)/{z}{x}{y}"), None).is_err());
    }

    #[test]
    fn tls_settings_are_checked_before_serving() {
        let dir = std::env::temp_dir().join(format!("rookery-tls-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write_pair = |name: &str| {
            let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
            let cert = dir.join(format!("{name}-cert.pem"));
            let key = dir.join(format!("{name}-key.pem"));
            std::fs::write(&cert, generated.cert.pem()).unwrap();
            std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
            (cert, key)
        };
        let (cert, key) = write_pair("a");
        let (_, other_key) = write_pair("b");
        let args = |cert: Option<&PathBuf>, key: Option<&PathBuf>| ServeArgs {
            tls_cert: cert.cloned(),
            tls_key: key.cloned(),
            ..ServeArgs::default()
        };
        let error = |args: ServeArgs| match Config::resolve(args) {
            Err(ConfigError::Invalid { name, message }) => format!("{name}: {message}"),
            other => panic!("expected an error, got {other:?}"),
        };

        let config = Config::resolve(args(Some(&cert), Some(&key))).unwrap();
        assert!(config.tls.is_some());
        assert!(error(args(Some(&cert), None)).contains("give both"));
        assert!(error(args(Some(&cert), Some(&other_key))).contains("does not fit"));
        assert!(error(args(Some(&dir.join("missing.pem")), Some(&key))).contains("cannot read"));
        assert!(error(args(Some(&key), Some(&key))).contains("no certificate"));
        let redirect_alone = ServeArgs {
            redirect_http: Some("127.0.0.1:80".parse().unwrap()),
            ..ServeArgs::default()
        };
        assert!(error(redirect_alone).starts_with("redirect_http"));

        // The same settings from the file.
        let file = format!(
            "tls_cert = {cert:?}\ntls_key = {key:?}\ntls_reload_interval = 0\n\
             redirect_http = \"127.0.0.1:80\"\ntrusted_proxies = \"10.0.0.0/8, ::1\"\n"
        );
        let config = Config::resolve(toml::from_str::<ServeArgs>(&file).unwrap()).unwrap();
        assert!(config.tls.is_some());
        assert_eq!(config.redirect_http, Some("127.0.0.1:80".parse().unwrap()));
        assert!(config.trusted_proxies.trusts("10.1.2.3".parse().unwrap()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn private_notes_with_a_public_list_are_refused() {
        let resolve = |file: &str| Config::resolve(toml::from_str::<ServeArgs>(file).unwrap());
        let private_notes = "[namespaces.notes]\nkind = \"document\"\nprivate = true\n";
        match resolve(private_notes) {
            Err(ConfigError::Invalid { name, message }) => {
                assert_eq!(name, "namespaces");
                assert!(message.contains("notes_list"), "{message}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        let both = format!(
            "{private_notes}[namespaces.notes_list]\npublishers = \"server\"\nprivate = true\n"
        );
        assert!(resolve(&both).is_ok());
        // A private list alone is fine: it shows what each may read.
        assert!(
            resolve("[namespaces.notes_list]\npublishers = \"server\"\nprivate = true\n").is_ok()
        );
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        assert!(toml::from_str::<ServeArgs>("lisen = \"x\"").is_err());
    }
}
