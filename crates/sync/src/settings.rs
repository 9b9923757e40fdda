//! The settings of control-plane mode, under the names APIM's deployment YAML uses.
//!
//! - `config.service.endpoint`: the control plane's base URL (`http://control:8090` or
//!   `https://control:8443`); the gateway calls `{endpoint}/v2/gateways/{id}/…`. Over
//!   `https://` the control plane's certificate is checked against the system's CA
//!   certificates, or against a CA bundle file (`--config-service-ca-file`, see
//!   [`crate::tls`]).
//! - `config.service.auth`: the gateway token (`GatewayKey <id>&<expiry>&<signature>`),
//!   or the path of a file holding it (a mounted Kubernetes Secret), re-read when it
//!   changes.
//!
//! Both are environment variables with exactly those dotted names (valid for processes,
//! though not for shells: `env 'config.service.endpoint=…' gatehouse gateway`), or flags
//! (`--config-service-endpoint`, `--config-service-auth`); the command line reads them,
//! this module only checks what they say.

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_model::token::{GatewayToken, SCHEME, TokenError};

/// Environment variable naming the control plane, as APIM spells it.
pub const ENDPOINT_ENV: &str = "config.service.endpoint";
/// Environment variable holding the token or its file, as APIM spells it.
pub const AUTH_ENV: &str = "config.service.auth";

/// Where configuration backups go unless told otherwise: APIM's volume mount path.
pub const DEFAULT_BACKUP_DIR: &str = "/apim/config";
/// How often an instance reports to the control plane.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);
/// How long one change request is held open by the control plane.
pub const DEFAULT_LONG_POLL_WAIT: Duration = Duration::from_secs(30);

/// Why the control-plane settings cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// The endpoint is not an `http://` or `https://` URL.
    #[error(
        "`{ENDPOINT_ENV}` is `{value}`: {reason}; expected the control plane's URL, e.g. `http://gatehouse-control:8090` or `https://gatehouse-control:8090`"
    )]
    Endpoint {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The token given inline does not parse.
    #[error("`{AUTH_ENV}` does not hold a usable gateway token: {0}")]
    Token(TokenError),
    /// `config.service.auth` is empty.
    #[error(
        "`{AUTH_ENV}` is empty: set it to the gateway token (`GatewayKey …`, from `gatehouse gateway token <gateway>`) or to the path of a file holding it"
    )]
    EmptyAuth,
}

/// The control plane's base URL, without a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// Checks an endpoint: an absolute `http://` or `https://` URL with a host, no
    /// query or fragment. A path is kept (a control plane behind a path-routing proxy).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Endpoint`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let value = text.trim();
        let error = |reason| SettingsError::Endpoint {
            value: value.to_owned(),
            reason,
        };
        let url = reqwest::Url::parse(value)
            .map_err(|_| error("it is not an absolute URL (did you leave out `https://`?)"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(error("only `http://` and `https://` URLs are supported"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(error("it has no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(error("it must not have a query or a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(error(
                "it must not carry credentials; the gateway authenticates with its token",
            ));
        }
        Ok(Self(url.as_str().trim_end_matches('/').to_owned()))
    }

    /// Whether the control plane is reached over TLS.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// `{endpoint}/v2/gateways/{gateway_id}/{tail}`.
    #[must_use]
    pub fn gateway_url(&self, gateway_id: &str, tail: &str) -> String {
        format!("{}/v2/gateways/{gateway_id}/{tail}", self.0)
    }

    /// The URL as given (normalised), for logs: it holds no secret.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `config.service.auth` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSetting {
    /// The token itself. Its `Debug` leaves the signature out.
    Token(GatewayToken),
    /// A file holding the token (a mounted Secret): read at start, re-read when it
    /// changes.
    File(PathBuf),
}

impl AuthSetting {
    /// Reads the setting: a value starting with `GatewayKey ` (any case), or one with
    /// `&` and no `/` (APIM's token without its scheme), is the token itself; anything
    /// else is the path of a file holding it.
    ///
    /// # Errors
    ///
    /// [`SettingsError::EmptyAuth`], or [`SettingsError::Token`] for an inline token
    /// that does not parse (the message never quotes it).
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        let value = text.trim();
        if value.is_empty() {
            return Err(SettingsError::EmptyAuth);
        }
        let has_scheme = value
            .get(..SCHEME.len() + 1)
            .is_some_and(|head| head.eq_ignore_ascii_case(&format!("{SCHEME} ")));
        if has_scheme || (value.contains('&') && !value.contains('/')) {
            return GatewayToken::parse(value)
                .map(Self::Token)
                .map_err(SettingsError::Token);
        }
        Ok(Self::File(PathBuf::from(value)))
    }
}

/// Exponential backoff with full jitter between failed exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay ceiling after the first failure.
    pub initial: Duration,
    /// The ceiling never grows past this.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The ceiling after `attempt` consecutive failures (1-based): `initial` doubled
    /// `attempt - 1` times, at most `max`.
    #[must_use]
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.initial
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// The delay before retry number `attempt`: "equal jitter", uniformly between half
    /// the ceiling and the ceiling, so gateways that lost the control plane together do
    /// not come back in lockstep, and no retry comes sooner than half the ceiling.
    /// `unit` is a random number in `[0, 1)`.
    #[must_use]
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// Everything control-plane mode needs.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// The control plane.
    pub endpoint: Endpoint,
    /// The token, or its file.
    pub auth: AuthSetting,
    /// Where to keep the configuration backup; `None`: no backup.
    pub backup_dir: Option<PathBuf>,
    /// The key backups are sealed with (`--config-backup-key`); `None`: derived from the
    /// token.
    pub backup_key: Option<crate::backup::BackupKey>,
    /// How often to report to the control plane.
    pub heartbeat_interval: Duration,
    /// How long each change request is held open (at most 60 s server-side).
    pub long_poll_wait: Duration,
    /// Delays between failed exchanges.
    pub backoff: Backoff,
    /// Time allowed for a snapshot or a heartbeat; a change request gets this on top of
    /// its long-poll wait.
    pub request_timeout: Duration,
    /// CA bundle (PEM) trusted for an `https://` endpoint instead of the system's CA
    /// certificates (`--config-service-ca-file`).
    pub ca_file: Option<PathBuf>,
}

impl SyncSettings {
    /// Settings with the defaults for everything but the endpoint and the token.
    #[must_use]
    pub fn new(endpoint: Endpoint, auth: AuthSetting) -> Self {
        Self {
            endpoint,
            auth,
            backup_dir: Some(PathBuf::from(DEFAULT_BACKUP_DIR)),
            backup_key: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            long_poll_wait: DEFAULT_LONG_POLL_WAIT,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(30),
            ca_file: None,
        }
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
