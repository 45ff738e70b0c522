//! Direct TLS (TLS_CERT / TLS_KEY): a listener that runs TLS handshakes off
//! its accept loop, and a certificate that is reloaded when its files change.
//!
//! A handshake that stalls (a slow or hostile client) holds only its own
//! task, never the accept loop; it is dropped after [`HANDSHAKE_TIMEOUT`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::server::TlsStream;

use crate::metrics::metrics;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once, at most; more connections wait.
const MAX_HANDSHAKES: usize = 1024;
/// How often the certificate files are checked for changes.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The certificate and key in use, and where they come from.
pub struct Certificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Loaded>,
    /// The stamp of the last pair that could not be loaded: it is tried
    /// again at every check (a renewal may fix permissions without touching
    /// the files' times), but reported once, not at every check.
    refused: Mutex<Option<Stamp>>,
}

/// When the certificate and key files were last modified.
type Stamp = (SystemTime, SystemTime);

struct Loaded {
    config: Arc<ServerConfig>,
    stamp: Option<Stamp>,
}

impl Certificate {
    /// Loads the PEM files, or says what is wrong with them.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, String> {
        let loaded = read(cert_path, key_path)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(loaded),
            refused: Mutex::new(None),
        }))
    }

    fn config(&self) -> Arc<ServerConfig> {
        self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()).config.clone()
    }

    /// Re-reads the files if they changed. A broken new pair is logged and
    /// counted once (`chatwire_tls_reload_failures_total`) and the old one
    /// kept, so a half-written renewal never takes the site down.
    fn reload_if_changed(&self) {
        let stamp = stamp(&self.cert_path, &self.key_path);
        if stamp.is_none() || stamp == self.current.read().unwrap_or_else(PoisonError::into_inner).stamp {
            return;
        }
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        match read(&self.cert_path, &self.key_path) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
                *refused = None;
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
            }
            Err(_) if *refused == stamp => {}
            Err(err) => {
                *refused = stamp;
                metrics().tls_reload_failed();
                tracing::error!(error = %err, "TLS certificate changed but cannot be loaded; keeping the old one")
            }
        }
    }

    /// Checks the files for changes every few seconds, for ever.
    pub fn spawn_reloader(self: &Arc<Self>) -> JoinHandle<()> {
        let certificate = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(RELOAD_CHECK);
            loop {
                ticks.tick().await;
                certificate.reload_if_changed();
            }
        })
    }
}

fn stamp(cert: &Path, key: &Path) -> Option<Stamp> {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Some((modified(cert)?, modified(key)?))
}

fn read(cert_path: &Path, key_path: &Path) -> Result<Loaded, String> {
    let stamp = stamp(cert_path, key_path);
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| format!("TLS_CERT {}: {err}", cert_path.display()))?;
    if certs.is_empty() {
        return Err(format!("TLS_CERT {}: no certificate in the file", cert_path.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|err| format!("TLS_KEY {}: {err}", key_path.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|err| format!("TLS_CERT / TLS_KEY: {err}"))?;
    // HTTP/1.1 only: websockets upgrade over it everywhere.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded { config: Arc::new(config), stamp })
}

/// Accepts TCP connections and hands over the ones whose TLS handshake
/// completed. Implements axum's `Listener`.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accepting: JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `certificate` on `listener`.
    pub fn new(listener: TcpListener, certificate: Arc<Certificate>) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let accepting = tokio::spawn(accept_loop(listener, certificate, tx));
        Ok(Self { ready, local_addr, accepting })
    }
}

async fn accept_loop(
    listener: TcpListener,
    certificate: Arc<Certificate>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        let (mut tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        crate::net::no_delay(&mut tcp);
        let acceptor = TlsAcceptor::from(certificate.config());
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}
