//! HTTPS on the control plane's listener (`gatehouse control --tls-cert-file …
//! --tls-key-file …`).
//!
//! - [`load`] reads a certificate chain and its private key from PEM files and checks
//!   them ([`gatehouse_tls::certificate::certified_key`]: PEM, key usable and matching
//!   the leaf, leaf valid now); every error names the file and the problem.
//! - [`ReloadingCertificate`] is the rustls certificate resolver: it holds the pair in an
//!   [`ArcSwap`], so a reload ([`ReloadingCertificate::reload`], on a change of the files
//!   ([`ReloadingCertificate::watch`]) or on `SIGHUP`) is seen by the next handshake
//!   while open connections keep the certificate they started with. A pair that fails
//!   its checks is logged at error and the previous one keeps serving.
//! - [`serve_tls`] serves [`crate::app`] over TLS (ALPN `h2`, `http/1.1`) with hyper's
//!   automatic HTTP/1.1–HTTP/2 builder, until shutdown, ending gracefully like the plain
//!   listener.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use gatehouse_tls::TlsError;
use gatehouse_tls::certificate::{CertificateDetails, certified_key_with_details, rfc3339};
use gatehouse_tls::rustls;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// Time a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's certificate chain and private key files (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate, then its intermediates (`--tls-cert-file`).
    pub certificate: PathBuf,
    /// The private key of the certificate (`--tls-key-file`).
    pub private_key: PathBuf,
}

/// Why the listener's certificate or key cannot be used. The message names the file
/// and never quotes the key.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} file {}: {error}", path.display())]
    Read {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file does not hold what it should, or the certificate is not valid now.
    #[error("TLS {what} file {}: {error}", path.display())]
    Invalid {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: TlsError,
    },
    /// The key is not the certificate's.
    #[error(
        "the TLS private key file {} does not belong to the certificate file {}: {error}",
        private_key.display(),
        certificate.display()
    )]
    Mismatch {
        /// The certificate file.
        certificate: PathBuf,
        /// The key file.
        private_key: PathBuf,
        /// What rustls said.
        error: TlsError,
    },
}

/// A checked certificate and key, and what the leaf says about itself (for logs).
#[derive(Debug, Clone)]
pub struct LoadedCertificate {
    /// Ready to present.
    pub key: Arc<CertifiedKey>,
    /// The leaf's subject, serial number, validity.
    pub details: CertificateDetails,
}

/// Reads and checks `files` at `now`. Blocking file reads: call it at start or off the
/// async runtime.
///
/// # Errors
///
/// [`TlsFileError`] naming the file and the problem: missing or unreadable, no PEM
/// block of the right kind, a key that does not match, an expired (or not yet valid)
/// certificate.
pub fn load(files: &TlsFiles, now: SystemTime) -> Result<LoadedCertificate, TlsFileError> {
    let certificate_pem = read(&files.certificate, "certificate")?;
    let key_pem = read(&files.private_key, "private key")?;
    let (key, details) = certified_key_with_details(&certificate_pem, &key_pem, now)
        .map_err(|error| classify(files, error))?;
    Ok(LoadedCertificate { key, details })
}

fn read(path: &Path, what: &'static str) -> Result<String, TlsFileError> {
    std::fs::read_to_string(path).map_err(|error| TlsFileError::Read {
        what,
        path: path.to_owned(),
        error,
    })
}

/// Names the file a [`TlsError`] of [`certified_key`] is about.
fn classify(files: &TlsFiles, error: TlsError) -> TlsFileError {
    match error {
        TlsError::KeyMismatch { .. } => TlsFileError::Mismatch {
            certificate: files.certificate.clone(),
            private_key: files.private_key.clone(),
            error,
        },
        TlsError::Pem {
            what: "private key",
            ..
        }
        | TlsError::UnsupportedKey(_) => TlsFileError::Invalid {
            what: "private key",
            path: files.private_key.clone(),
            error,
        },
        other => TlsFileError::Invalid {
            what: "certificate",
            path: files.certificate.clone(),
            error: other,
        },
    }
}

/// The listener's certificate: a rustls resolver whose pair can be replaced while it
/// serves.
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    current: ArcSwap<LoadedCertificate>,
}

impl ReloadingCertificate {
    /// Loads `files` (blocking reads, see [`load`]).
    ///
    /// # Errors
    ///
    /// As [`load`].
    pub fn load(files: TlsFiles) -> Result<Self, TlsFileError> {
        let loaded = load(&files, SystemTime::now())?;
        Ok(Self {
            files,
            current: ArcSwap::from_pointee(loaded),
        })
    }

    /// The files it reads.
    #[must_use]
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// The pair presented to new connections.
    #[must_use]
    pub fn current(&self) -> Arc<LoadedCertificate> {
        self.current.load_full()
    }

    /// Reads the files again; when they pass the checks, new connections get them.
    /// Blocking reads. Returns the new pair when it differs from the one served.
    ///
    /// # Errors
    ///
    /// As [`load`]; the pair served is unchanged then.
    pub fn reload(&self) -> Result<Option<Arc<LoadedCertificate>>, TlsFileError> {
        let loaded = Arc::new(load(&self.files, SystemTime::now())?);
        let previous = self.current.swap(loaded.clone());
        if previous.key.cert == loaded.key.cert {
            Ok(None)
        } else {
            Ok(Some(loaded))
        }
    }

    /// [`ReloadingCertificate::reload`] off the async runtime, logged: a new
    /// certificate at info, a failure at error (the previous pair keeps serving).
    pub async fn reload_and_log(self: &Arc<Self>, trigger: &'static str) {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.reload()).await {
            Ok(Ok(Some(loaded))) => tracing::info!(
                trigger,
                subject = %loaded.details.subject,
                serial = %loaded.details.serial_number,
                not_after = %rfc3339(loaded.details.not_after),
                "TLS certificate reloaded; new connections get it"
            ),
            Ok(Ok(None)) => tracing::debug!(trigger, "TLS certificate files read again; unchanged"),
            Ok(Err(error)) => tracing::error!(
                trigger,
                error = %error,
                "TLS certificate not reloaded; the previous one keeps serving"
            ),
            Err(error) => {
                tracing::error!(trigger, error = %error, "TLS certificate reload task failed")
            }
        }
    }

    /// The rustls server configuration presenting this certificate: the workspace's
    /// provider, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`, no client certificates.
    ///
    /// # Errors
    ///
    /// [`TlsError::Rustls`] if rustls refuses the protocol versions (it does not).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            gatehouse_tls::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![
            gatehouse_tls::ALPN_H2.to_vec(),
            gatehouse_tls::ALPN_HTTP11.to_vec(),
        ];
        Ok(Arc::new(config))
    }

    /// Reloads the pair when either file changes, until `shutdown`. The files'
    /// **directories** are watched, so a Kubernetes Secret volume, updated by swapping
    /// its `..data` symlink, is noticed too.
    ///
    /// # Errors
    ///
    /// If a directory cannot be watched.
    pub fn watch(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> notify::Result<tokio::task::JoinHandle<()>> {
        let this = self.clone();
        gatehouse_watch::watch_files(
            &[&self.files.certificate, &self.files.private_key],
            shutdown,
            move || {
                let this = this.clone();
                async move { this.reload_and_log("file-change").await }
            },
        )
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// Serves [`crate::app`] over TLS on `listener` until `shutdown` is cancelled; then
/// stops accepting and lets open connections finish (long-polls included), as
/// [`crate::serve`] does. Each connection's handshake runs in its own task, bounded by
/// [`HANDSHAKE_TIMEOUT`]; a failed handshake is logged at debug.
///
/// # Errors
///
/// None today: accept errors are logged and retried. The signature matches
/// [`crate::serve`].
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    // The portal marks its session cookie `Secure` on requests that came this way.
    let app = crate::app(state.clone()).layer(axum::Extension(crate::portal::Https));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        // Taken before the handshake, so a shutdown meanwhile still waits for it.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, error = %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    state.begin_shutdown();
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
