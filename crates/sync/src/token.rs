//! The gateway token in use, and where it comes from.
//!
//! `config.service.auth` is the token itself or a file holding it. A file (a mounted
//! Kubernetes Secret) is watched: when it changes, the new token is read and used from
//! the next request on, with no restart. Kubernetes updates a Secret volume by writing a
//! new timestamped directory and swapping the `..data` symlink, so the *directory* is
//! watched, not the file, and any `..`-prefixed entry counts as a change (as the config
//! file watcher in `gatehouse_gateway::reload` does). The file is also re-read whenever
//! the control plane refuses the token, in case a change was missed.
//!
//! The gateway id comes from the token and is fixed for the life of the process: a new
//! token for another gateway is refused (logged, counted) and the old one kept.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use gatehouse_gateway::ConfigSink;
use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::token::{GatewayToken, TokenError, format_utc_minute};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::settings::AuthSetting;

/// How far ahead of expiry the gateway starts warning: 7 days.
pub const EXPIRY_WARNING_SECONDS: i64 = 7 * 24 * 60 * 60;
/// At most one expiry warning per this many seconds: one per day.
pub const EXPIRY_WARNING_EVERY_SECONDS: i64 = 24 * 60 * 60;

/// Why the token file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("cannot read the gateway token file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a token (the message never quotes it).
    #[error("the gateway token file {path} does not hold a usable token: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: TokenError,
    },
    /// The new token is for another gateway than the one this process serves.
    #[error(
        "the gateway token file {path} now holds a token for gateway `{found}`, but this process serves gateway `{expected}`; restart it to switch gateways"
    )]
    OtherGateway {
        /// The file.
        path: PathBuf,
        /// The gateway this process serves.
        expected: String,
        /// The gateway of the new token.
        found: String,
    },
}

/// The token in use; cheap to read from any task.
#[derive(Debug)]
pub struct TokenSource {
    token: ArcSwap<GatewayToken>,
    gateway_id: String,
    file: Option<PathBuf>,
    /// Bumped on every change, so a task waiting out a backoff can retry at once.
    generation: watch::Sender<u64>,
}

impl TokenSource {
    /// Reads the token (from the file, if the setting names one).
    ///
    /// # Errors
    ///
    /// [`TokenFileError`] when the file cannot be read or holds no token.
    pub async fn load(auth: &AuthSetting) -> Result<Self, TokenFileError> {
        let (token, file) = match auth {
            AuthSetting::Token(token) => (token.clone(), None),
            AuthSetting::File(path) => (read_token_file(path).await?, Some(path.clone())),
        };
        Ok(Self {
            gateway_id: token.gateway_id().to_owned(),
            token: ArcSwap::from_pointee(token),
            file,
            generation: watch::Sender::new(0),
        })
    }

    /// The token to send now.
    #[must_use]
    pub fn current(&self) -> Arc<GatewayToken> {
        self.token.load_full()
    }

    /// The gateway this process serves (the token's).
    #[must_use]
    pub fn gateway_id(&self) -> &str {
        &self.gateway_id
    }

    /// The token file, when the token comes from one.
    #[must_use]
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// A receiver that sees every change of token.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Re-reads the token file; returns whether the token changed. Without a file,
    /// does nothing.
    ///
    /// # Errors
    ///
    /// [`TokenFileError`]; the token in use is then unchanged.
    pub async fn reload(&self) -> Result<bool, TokenFileError> {
        let Some(path) = &self.file else {
            return Ok(false);
        };
        let token = read_token_file(path).await?;
        if token.gateway_id() != self.gateway_id {
            return Err(TokenFileError::OtherGateway {
                path: path.clone(),
                expected: self.gateway_id.clone(),
                found: token.gateway_id().to_owned(),
            });
        }
        if *self.token.load_full() == token {
            return Ok(false);
        }
        self.token.store(Arc::new(token));
        self.generation.send_modify(|generation| *generation += 1);
        Ok(true)
    }

    /// Re-reads the file and logs and counts the outcome; the token in use changes only
    /// when the new one is usable.
    pub async fn reload_and_log(&self, sink: &ConfigSink, trigger: &'static str) {
        match self.reload().await {
            Ok(true) => {
                let token = self.current();
                sink.metrics()
                    .token_expiry_timestamp_seconds
                    .set(token.expiry_unix());
                tracing::info!(
                    gateway = %self.gateway_id,
                    expires = %format_utc_minute(token.expiry_unix()),
                    trigger,
                    "gateway token file changed; using the new token from the next request on"
                );
            }
            Ok(false) => {}
            Err(error) => {
                sink.metrics().config_sync_error(SyncErrorReason::Token);
                tracing::error!(error = %error, trigger, "cannot use the new gateway token; still using the previous one");
            }
        }
    }

    /// Watches the token file's directory and re-reads the file on change, until
    /// `shutdown`. Returns `None` when the token is not in a file.
    ///
    /// # Errors
    ///
    /// If the watcher cannot be created.
    pub fn watch(
        self: Arc<Self>,
        sink: ConfigSink,
        shutdown: CancellationToken,
    ) -> notify::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(path) = self.file.clone() else {
            return Ok(None);
        };
        let handle = gatehouse_watch::watch_files(&[&path], shutdown, move || {
            let this = self.clone();
            let sink = sink.clone();
            async move { this.reload_and_log(&sink, "file-change").await }
        })?;
        Ok(Some(handle))
    }
}

async fn read_token_file(path: &Path) -> Result<GatewayToken, TokenFileError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    GatewayToken::parse(&text).map_err(|source| TokenFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Remembers when the expiry warning was last given, so it is given at most once a
/// day.
#[derive(Debug, Default)]
pub struct ExpiryWarning {
    last_warned_unix: Option<i64>,
}

/// What to say about a token's expiry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryNotice {
    /// Nothing (far from expiry, or already said today).
    Quiet,
    /// It expires within 7 days.
    ExpiresSoon {
        /// Seconds left.
        seconds_left: i64,
    },
    /// It has expired.
    Expired,
}

impl ExpiryWarning {
    /// Whether to warn about a token expiring at `expiry_unix`, at `now_unix`; records
    /// the warning when there is one.
    pub fn check(&mut self, now_unix: i64, expiry_unix: i64) -> ExpiryNotice {
        let seconds_left = expiry_unix - now_unix;
        if seconds_left > EXPIRY_WARNING_SECONDS {
            return ExpiryNotice::Quiet;
        }
        if self
            .last_warned_unix
            .is_some_and(|last| now_unix - last < EXPIRY_WARNING_EVERY_SECONDS)
        {
            return ExpiryNotice::Quiet;
        }
        self.last_warned_unix = Some(now_unix);
        if seconds_left <= 0 {
            ExpiryNotice::Expired
        } else {
            ExpiryNotice::ExpiresSoon { seconds_left }
        }
    }

    /// Checks `token` at `now_unix` and logs the notice, if any.
    pub fn check_and_log(&mut self, now_unix: i64, token: &GatewayToken, file: Option<&Path>) {
        let expires = format_utc_minute(token.expiry_unix());
        let renew = format!(
            "generate a new one with `gatehouse gateway token {}` and update `config.service.auth`{}",
            token.gateway_id(),
            file.map_or_else(String::new, |f| format!(" (the file {})", f.display()))
        );
        match self.check(now_unix, token.expiry_unix()) {
            ExpiryNotice::Quiet => {}
            ExpiryNotice::ExpiresSoon { seconds_left } => {
                tracing::warn!(
                    gateway = token.gateway_id(),
                    %expires,
                    days_left = seconds_left / 86_400,
                    "the gateway token expires within 7 days: {renew}"
                );
            }
            ExpiryNotice::Expired => {
                tracing::error!(
                    gateway = token.gateway_id(),
                    %expires,
                    "the gateway token has expired: the control plane will refuse it; still serving the last good configuration; {renew}"
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
