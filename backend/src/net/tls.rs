//! HTTPS certificates: a certificate chain and key read from PEM files and
//! swapped in place on SIGHUP or when the files change, so a renewed
//! certificate needs no restart. Only new handshakes see the swap: open
//! connections keep the session they negotiated.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("no certificate in {path}")]
    NoCertificate { path: PathBuf },
    #[error("the key in {key} does not fit the certificate in {cert}: {message}")]
    KeyMismatch {
        cert: PathBuf,
        key: PathBuf,
        message: String,
    },
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// The certificate files and the certificate currently served from them.
#[derive(Clone)]
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    /// How often the files are checked for a change; `None`: only on SIGHUP.
    reload_interval: Option<Duration>,
    resolver: Arc<CertResolver>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("reload_interval", &self.reload_interval)
            .finish_non_exhaustive()
    }
}

/// Hands every handshake the current certificate; a reload replaces it.
#[derive(Debug)]
struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Tls {
    /// Reads the certificate chain and key; fails unless both parse and the
    /// key fits the certificate.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        reload_interval: Option<Duration>,
    ) -> Result<Self, TlsError> {
        let certified = read_certified_key(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            reload_interval,
            resolver: Arc::new(CertResolver {
                current: RwLock::new(Arc::new(certified)),
            }),
        })
    }

    /// The rustls configuration for the listener: HTTP/1.1 (WebSockets
    /// upgrade from it), certificates from [`Tls::reload`]'s latest.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Config(error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// Reads the files again and serves what they hold from the next
    /// handshake on. On failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let certified = read_certified_key(&self.cert_path, &self.key_path)?;
        *self
            .resolver
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Arc::new(certified);
        Ok(())
    }

    /// Reloads on every SIGHUP from `hangups`, and whenever the files'
    /// size, time or inode change (every `reload_interval`). Runs until
    /// dropped.
    pub async fn watch(self, mut hangups: Hangups) {
        let mut seen = self.stamp();
        let mut ticks = self.reload_interval.map(|period| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        });
        loop {
            let cause = tokio::select! {
                () = hangups.recv() => "SIGHUP",
                () = async {
                    match &mut ticks {
                        Some(ticks) => { ticks.tick().await; }
                        None => std::future::pending().await,
                    }
                } => {
                    let stamp = self.stamp();
                    if stamp == seen {
                        continue;
                    }
                    // A renewal writes two files: a pair caught half
                    // written fails now and loads at the next change.
                    seen = stamp;
                    "the files changed"
                }
            };
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cause, cert = %self.cert_path.display(), "reloaded the TLS certificate");
                }
                Err(error) => tracing::warn!(cause, %error, "kept the TLS certificate in use"),
            }
        }
    }

    /// What identifies the files' current contents without reading them;
    /// metadata follows symbolic links, so a certbot-style `live/` link
    /// switched to a new target counts as a change.
    fn stamp(&self) -> [Option<FileStamp>; 2] {
        [
            FileStamp::of(&self.cert_path),
            FileStamp::of(&self.key_path),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Some(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        })
    }
}

/// The process's SIGHUPs. Registered when made, so a signal sent any time
/// after counts (before, SIGHUP would end the process).
pub struct Hangups {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Hangups {
    /// Must run inside a tokio runtime.
    pub fn register() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?,
        })
    }

    /// Without a certificate there is nothing to reload, but a SIGHUP
    /// (`systemctl reload`) must not end the process either.
    pub async fn ignore(mut self) {
        loop {
            self.recv().await;
            tracing::info!("SIGHUP: nothing to reload (no --tls-cert)");
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if self.signal.recv().await.is_some() {
            return;
        }
        std::future::pending::<()>().await;
    }
}

fn read_certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsError> {
    let read_error = |path: &Path, error: &dyn std::fmt::Display| TlsError::Read {
        path: path.to_owned(),
        message: error.to_string(),
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|error| read_error(cert_path, &error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| read_error(cert_path, &error))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.to_owned(),
        });
    }
    let key =
        PrivateKeyDer::from_pem_file(key_path).map_err(|error| read_error(key_path, &error))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|error| TlsError::KeyMismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        message: error.to_string(),
    })
}
