//! `gatehouse gateway`: serve APIs from a configuration file (file mode), or from the
//! control plane's Configuration API v2 (control-plane mode: `config.service.endpoint`
//! and `config.service.auth`, see docs/sync.md).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gatehouse_gateway::tls::TlsSettings;
use gatehouse_gateway::{
    AccessLog, ConfigSink, Gateway, GatewayState, Layers, Limits, Metrics, MetricsOptions,
    ServerSettings, access_log, admin,
};
use gatehouse_sync::settings::{AUTH_ENV, DEFAULT_BACKUP_DIR, ENDPOINT_ENV};
use gatehouse_sync::{AuthSetting, Backoff, Endpoint, SyncSettings};
use gatehouse_tls::{ProtocolSettings, TlsVersion};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// How often expired rate-limit and quota counters are removed.
const COUNTER_SWEEP_INTERVAL: Duration = Duration::from_secs(30);
/// Hybrid mode: how long the start waits for the first full read of the Ingresses
/// before it takes the control plane's configuration anyway.
const HYBRID_INGRESS_WAIT: Duration = Duration::from_secs(10);
/// Hybrid mode: the names of the two sources' layers.
const INGRESS_LAYER: &str = "kubernetes ingress";
const CONTROL_PLANE_LAYER: &str = "control plane";

/// Options of `gatehouse gateway`.
#[derive(Debug, clap::Args)]
pub(crate) struct GatewayArgs {
    /// Declarative configuration file (YAML); see docs/configuration.md. Reloaded on
    /// change and on SIGHUP.
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    config: Option<PathBuf>,

    /// Data-plane address (HTTP/1.1 and h2c).
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,

    /// HTTPS address (TLS on the configuration's hostnames and certificates; HTTP/1.1 and
    /// HTTP/2 by ALPN). Connections are refused while no hostname is configured.
    #[arg(long, env = "GATEHOUSE_HTTPS_LISTEN", default_value = "0.0.0.0:8081")]
    https_listen: SocketAddr,

    /// Lowest TLS version the HTTPS listener accepts: 1.2 or 1.3.
    #[arg(long, env = "GATEHOUSE_TLS_MIN_VERSION", default_value = "1.2")]
    tls_min_version: TlsVersion,

    /// Highest TLS version the HTTPS listener offers: 1.2 or 1.3.
    #[arg(long, env = "GATEHOUSE_TLS_MAX_VERSION", default_value = "1.3")]
    tls_max_version: TlsVersion,

    /// Cipher suites the HTTPS listener allows, in preference order: IANA or OpenSSL
    /// names, comma-separated (default: every suite Gatehouse implements). Also APIM's
    /// setting `net.server.tls.ciphers.allowed-suites`.
    #[arg(long, env = "GATEHOUSE_TLS_CIPHER_SUITES", value_name = "SUITES")]
    tls_cipher_suites: Option<String>,

    /// Cipher suites offered to `https://` backends. Also APIM's setting
    /// `net.client.tls.ciphers.allowed-suites`.
    #[arg(
        long,
        env = "GATEHOUSE_BACKEND_TLS_CIPHER_SUITES",
        value_name = "SUITES"
    )]
    backend_tls_cipher_suites: Option<String>,

    /// Offer HTTP/2 to clients (ALPN `h2` on HTTPS, prior-knowledge h2c on HTTP). Off:
    /// HTTP/1.1 only.
    #[arg(long, env = "GATEHOUSE_HTTP2", default_value_t = true, action = clap::ArgAction::Set)]
    http2: bool,

    /// Serve HTTP/3 (QUIC) on the HTTPS port (UDP, same address), and advertise it to
    /// HTTPS clients with `Alt-Svc`. Needs TLS 1.3.
    #[arg(long, env = "GATEHOUSE_HTTP3", default_value_t = false, action = clap::ArgAction::Set)]
    http3: bool,

    /// Time a client has to complete the TLS handshake; on expiry the connection is
    /// closed.
    #[arg(long, env = "GATEHOUSE_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    tls_handshake_timeout: Duration,

    /// Admin address: /healthz, /readyz, /metrics.
    #[arg(long, env = "GATEHOUSE_ADMIN_LISTEN", default_value = "127.0.0.1:8082")]
    admin_listen: SocketAddr,

    /// Worker threads, each with its own listener and backend pools (default: one per
    /// available core).
    #[arg(long, env = "GATEHOUSE_WORKERS")]
    workers: Option<NonZeroUsize>,

    /// Count requests by operation too: an `operation` label on
    /// `gatehouse_requests_total` (default: by API only). Each operation that has traffic
    /// then adds its own series to every scrape.
    #[arg(
        long,
        env = "GATEHOUSE_METRICS_PER_OPERATION",
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    metrics_per_operation: bool,

    /// Write one JSON access-log line per request to stdout.
    #[arg(long, env = "GATEHOUSE_ACCESS_LOG", default_value_t = true, action = clap::ArgAction::Set)]
    access_log: bool,

    /// Largest request head (request line and headers) in bytes; larger gets 431.
    #[arg(long, env = "GATEHOUSE_MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    max_header_bytes: usize,

    /// Longest request line (method, URI and version; for HTTP/2 and HTTP/3 the
    /// path and query) in bytes; longer gets 414.
    #[arg(long, env = "GATEHOUSE_MAX_REQUEST_LINE_BYTES", default_value_t = Limits::default().max_request_line_bytes)]
    max_request_line_bytes: usize,

    /// Largest request body `forward-request buffer-request-body="true"` reads into
    /// memory before forwarding; larger gets 413.
    #[arg(long, env = "GATEHOUSE_MAX_BUFFERED_BODY_BYTES", default_value_t = Limits::default().max_buffered_body_bytes)]
    max_buffered_body_bytes: u64,

    /// Most request headers; more gets 431.
    #[arg(long, env = "GATEHOUSE_MAX_HEADERS", default_value_t = 100)]
    max_headers: usize,

    /// Largest request body in bytes; larger gets 413. Default 100 MiB; 0: no limit
    /// (bodies are streamed, never buffered, so the limit is about what a backend is
    /// made to take in, not memory).
    #[arg(long, env = "GATEHOUSE_MAX_REQUEST_BODY_BYTES", default_value_t = gatehouse_gateway::server::DEFAULT_MAX_REQUEST_BODY_BYTES)]
    max_request_body_bytes: u64,

    /// Time a client has to send its request head (HTTP/1.1; also the longest a
    /// connection may idle between requests). On expiry the connection is closed.
    #[arg(long, env = "GATEHOUSE_HEADER_READ_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,

    /// Longest pause in a request body the gateway waits out; on expiry the client gets
    /// 408 (or its connection is cut if the response has started) and the backend
    /// request is aborted.
    #[arg(long, env = "GATEHOUSE_BODY_READ_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    body_read_timeout: Duration,

    /// Open client connections across all workers; more are accepted and closed at once.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = Limits::default().max_connections)]
    max_connections: usize,

    /// HTTP/2: streams a client may open and reset before the gateway takes them up, per
    /// connection; more gets GOAWAY (ENHANCE_YOUR_CALM): the "rapid reset" defence.
    #[arg(long, env = "GATEHOUSE_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS", default_value_t = Limits::default().http2_max_pending_accept_reset_streams)]
    http2_max_pending_accept_reset_streams: usize,

    /// HTTP/2: streams the gateway may reset for a client's protocol errors, per
    /// connection; more gets GOAWAY (ENHANCE_YOUR_CALM).
    #[arg(long, env = "GATEHOUSE_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS", default_value_t = Limits::default().http2_max_local_error_reset_streams)]
    http2_max_local_error_reset_streams: usize,

    /// A relayed WebSocket connection with no byte moving either way for this long is
    /// closed.
    #[arg(long, env = "GATEHOUSE_WEBSOCKET_IDLE_TIMEOUT", default_value = "300s", value_parser = humantime::parse_duration)]
    websocket_idle_timeout: Duration,

    /// WebSocket connections open at once across all workers; over it a handshake gets
    /// 503. 0: no limit of their own (they count against --max-connections anyway).
    #[arg(long, env = "GATEHOUSE_MAX_WEBSOCKET_CONNECTIONS", default_value_t = Limits::default().max_websocket_connections)]
    max_websocket_connections: usize,

    /// On SIGTERM, how long in-flight requests get to finish before connections are cut.
    #[arg(long, env = "GATEHOUSE_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// Once listening, write the bound addresses as JSON to this file (for tests and
    /// supervisors that start the gateway on port 0).
    #[arg(long)]
    bound_addresses_file: Option<PathBuf>,

    /// Settings file: a YAML map of APIM's dotted setting names to values
    /// (`config.service.endpoint: http://control:8090`), as a ConfigMap would mount it.
    /// Flags and environment variables win over it; names Gatehouse does not support
    /// are logged at start.
    #[arg(long, env = "GATEHOUSE_SETTINGS", value_name = "FILE")]
    settings: Option<PathBuf>,

    /// Control plane URL (`http://control:8090`): take the configuration from its
    /// Configuration API v2. Also read from the environment variable
    /// `config.service.endpoint`, as APIM names it. Not with `--config`.
    #[arg(long, value_name = "URL")]
    config_service_endpoint: Option<String>,

    /// The gateway token (`GatewayKey …`), or the path of a file holding it (a mounted
    /// Secret; re-read when it changes). Also read from the environment variable
    /// `config.service.auth`. Prefer the variable or a file: a flag shows in `ps`.
    #[arg(long, value_name = "TOKEN|FILE")]
    config_service_auth: Option<String>,

    /// Where the last configuration from the control plane is backed up, and served
    /// from on a start while the control plane is unreachable. Skipped with a warning
    /// when the directory is missing or not writable.
    #[arg(long, env = "GATEHOUSE_CONFIG_BACKUP_DIR", default_value = DEFAULT_BACKUP_DIR)]
    config_backup_dir: PathBuf,

    /// The key the configuration backup is sealed with: base64 of 32 bytes (e.g. from a
    /// Kubernetes Secret; `openssl rand -base64 32`). Without it the key is derived from
    /// the gateway's token, and a backup written under one token does not open with the
    /// next one.
    #[arg(
        long,
        env = "GATEHOUSE_CONFIG_BACKUP_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    config_backup_key: Option<String>,

    /// The gateway's identity for `authentication-managed-identity`: the OAuth2 token
    /// endpoint the gateway gets client-credentials tokens from
    /// (`https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`). With
    /// --identity-client-id and --identity-client-secret-file.
    #[arg(long, env = "GATEHOUSE_IDENTITY_TOKEN_URL", value_name = "URL")]
    identity_token_url: Option<url::Url>,

    /// The client id of the gateway's identity (see --identity-token-url).
    #[arg(long, env = "GATEHOUSE_IDENTITY_CLIENT_ID", value_name = "ID")]
    identity_client_id: Option<String>,

    /// A file holding the client secret of the gateway's identity (a mounted Secret;
    /// surrounding whitespace is ignored). See --identity-token-url.
    #[arg(
        long,
        env = "GATEHOUSE_IDENTITY_CLIENT_SECRET_FILE",
        value_name = "PATH"
    )]
    identity_client_secret_file: Option<PathBuf>,

    /// Check the --config file as this gateway would load it, print every problem and
    /// exit (0: accepted, 1: rejected), as `nginx -t` does. See `gatehouse validate`.
    #[arg(long)]
    pub(crate) validate: bool,

    /// How often to report to the control plane (`gatehouse gateway status`).
    #[arg(long, env = "GATEHOUSE_HEARTBEAT_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    heartbeat_interval: Duration,

    /// How long each change request to the control plane is held open (at most 60s).
    #[arg(long, env = "GATEHOUSE_CONFIG_SERVICE_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    config_service_wait: Duration,

    /// Time allowed for a snapshot or a heartbeat, and for a change request beyond its
    /// wait (at most 10s there); a control plane slower than this counts as failed
    /// (`timeout`).
    #[arg(long, env = "GATEHOUSE_CONFIG_SERVICE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    config_service_timeout: Duration,

    /// Longest wait between retries when the control plane fails (exponential backoff
    /// with jitter from 250ms).
    #[arg(long, env = "GATEHOUSE_CONFIG_SERVICE_BACKOFF_MAX", default_value = "30s", value_parser = humantime::parse_duration)]
    config_service_backoff_max: Duration,

    /// CA bundle (PEM) that signs the control plane's certificate, for an `https://`
    /// endpoint with a private CA: trusted instead of the system's CA certificates
    /// (which honour SSL_CERT_FILE / SSL_CERT_DIR).
    #[arg(long, env = "GATEHOUSE_CONFIG_SERVICE_CA_FILE", value_name = "FILE")]
    config_service_ca_file: Option<PathBuf>,
}

/// Where the gateway's configuration comes from.
pub(crate) enum Source {
    /// A YAML file, watched and reloaded.
    File(PathBuf),
    /// The control plane.
    ControlPlane(Box<SyncSettings>),
    /// Kubernetes Ingresses (`k8s.ingress.enabled`).
    Ingress(gatehouse_ingress::watch::IngressSettings),
    /// Both (seed 002's hybrid mode): merged, last one wins.
    Hybrid(Box<SyncSettings>, gatehouse_ingress::watch::IngressSettings),
}

impl GatewayArgs {
    /// The `--config` file, if one was given.
    pub(crate) fn config_file(&self) -> Option<&std::path::Path> {
        self.config.as_deref()
    }

    /// `--workers`, or one per available core.
    fn worker_count(&self) -> NonZeroUsize {
        self.workers
            .or_else(|| std::thread::available_parallelism().ok())
            .unwrap_or(NonZeroUsize::MIN)
    }

    /// Parses gateway options as `gatehouse gateway` would take them (for `gatehouse
    /// dev`, which runs one with its own ports).
    pub(crate) fn from_args<I, T>(args: I) -> anyhow::Result<Self>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: GatewayArgs,
        }
        let wrapper = <Wrapper as clap::Parser>::try_parse_from(
            std::iter::once(OsString::from("gateway")).chain(args.into_iter().map(Into::into)),
        )?;
        Ok(wrapper.args)
    }

    /// Decides file or control-plane mode from the options and the environment
    /// (`config.service.*`, read here: clap's `env` cannot take dotted names).
    pub(crate) fn source(&self) -> anyhow::Result<Source> {
        let file = match &self.settings {
            Some(path) => read_settings_file(path)?,
            None => std::collections::BTreeMap::new(),
        };
        warn_unsupported_settings(file.keys().map(String::as_str), "settings file");
        let env_names: Vec<String> = std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect();
        warn_unsupported_settings(env_names.iter().map(String::as_str), "environment");
        self.source_with_env(|name| {
            std::env::var_os(name).or_else(|| file.get(name).map(OsString::from))
        })
    }

    /// The TLS settings of the HTTPS listener and of backend connections, from flags
    /// and APIM's `net.*.tls.ciphers.allowed-suites` settings (environment, then the
    /// settings file).
    pub(crate) fn tls_settings(&self) -> anyhow::Result<TlsSettings> {
        let file = match &self.settings {
            Some(path) => read_settings_file(path)?,
            None => std::collections::BTreeMap::new(),
        };
        self.tls_settings_with_env(|name| {
            std::env::var_os(name).or_else(|| file.get(name).map(OsString::from))
        })
    }

    fn tls_settings_with_env(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> anyhow::Result<TlsSettings> {
        let suites = |flag: &Option<String>, flag_name: &str, setting: &str| {
            let value = match flag {
                Some(value) => Some((value.clone(), flag_name.to_owned())),
                None => env(setting)
                    .map(|value| {
                        value.into_string().map_err(|_| {
                            anyhow::anyhow!("the setting `{setting}` is not valid UTF-8")
                        })
                    })
                    .transpose()?
                    .map(|value| (value, format!("`{setting}`"))),
            };
            anyhow::Ok(value)
        };
        let mut server = ProtocolSettings {
            min_version: self.tls_min_version,
            max_version: self.tls_max_version,
            http2: self.http2,
            ..ProtocolSettings::default()
        };
        if let Some((list, from)) = suites(
            &self.tls_cipher_suites,
            "--tls-cipher-suites",
            SERVER_CIPHERS_SETTING,
        )? {
            server.set_cipher_suites(&list).context(from)?;
        }
        server
            .validate()
            .context("HTTPS listener TLS settings (--tls-min-version, --tls-max-version, --tls-cipher-suites)")?;
        let mut backend = ProtocolSettings::default();
        if let Some((list, from)) = suites(
            &self.backend_tls_cipher_suites,
            "--backend-tls-cipher-suites",
            CLIENT_CIPHERS_SETTING,
        )? {
            backend.set_cipher_suites(&list).context(from)?;
        }
        Ok(TlsSettings { server, backend })
    }

    /// The gateway's identity, when the three --identity-* settings are given.
    fn identity(&self) -> anyhow::Result<Option<gatehouse_gateway::identity::IdentityTokens>> {
        use gatehouse_gateway::identity::{IdentitySettings, IdentityTokens};
        match (
            &self.identity_token_url,
            &self.identity_client_id,
            &self.identity_client_secret_file,
        ) {
            (None, None, None) => Ok(None),
            (Some(token_url), Some(client_id), Some(secret_file)) => {
                if !matches!(token_url.scheme(), "https" | "http") {
                    anyhow::bail!(
                        "--identity-token-url (GATEHOUSE_IDENTITY_TOKEN_URL) must be an http or https URL"
                    );
                }
                let secret = std::fs::read_to_string(secret_file).with_context(|| {
                    format!(
                        "cannot read --identity-client-secret-file (GATEHOUSE_IDENTITY_CLIENT_SECRET_FILE) {}",
                        secret_file.display()
                    )
                })?;
                let secret = secret.trim();
                if secret.is_empty() {
                    anyhow::bail!(
                        "--identity-client-secret-file {} is empty",
                        secret_file.display()
                    );
                }
                Ok(Some(IdentityTokens::new(IdentitySettings {
                    token_url: token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: secret.to_owned(),
                })))
            }
            _ => anyhow::bail!(
                "the gateway's identity needs all of --identity-token-url, --identity-client-id and --identity-client-secret-file (GATEHOUSE_IDENTITY_*)"
            ),
        }
    }

    /// The control-plane source's settings, from the endpoint and token settings and the flags.
    fn control_plane(&self, endpoint: &str, auth: &str) -> anyhow::Result<Box<SyncSettings>> {
        let endpoint = Endpoint::parse(endpoint)?;
        let auth = AuthSetting::parse(auth)?;
        let mut settings = SyncSettings::new(endpoint, auth);
        settings.backup_dir = Some(self.config_backup_dir.clone());
        settings.backup_key = self
            .config_backup_key
            .as_deref()
            .map(gatehouse_sync::backup::BackupKey::from_base64)
            .transpose()
            .context("--config-backup-key (GATEHOUSE_CONFIG_BACKUP_KEY)")?;
        settings.heartbeat_interval = self.heartbeat_interval;
        settings.request_timeout = self.config_service_timeout;
        settings.ca_file.clone_from(&self.config_service_ca_file);
        settings.long_poll_wait = self.config_service_wait.min(Duration::from_secs(60));
        settings.backoff = Backoff {
            max: self
                .config_service_backoff_max
                .max(Backoff::default().initial),
            ..Backoff::default()
        };
        Ok(Box::new(settings))
    }

    fn source_with_env(&self, env: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<Source> {
        let setting = |flag: &Option<String>, name: &str| -> anyhow::Result<Option<String>> {
            if let Some(value) = flag {
                return Ok(Some(value.clone()));
            }
            match env(name) {
                None => Ok(None),
                Some(value) => value.into_string().map(Some).map_err(|_| {
                    anyhow::anyhow!("the environment variable `{name}` is not valid UTF-8")
                }),
            }
        };
        let endpoint = setting(&self.config_service_endpoint, ENDPOINT_ENV)?
            .filter(|value| !value.trim().is_empty());
        let ingress = setting(&None, INGRESS_ENABLED)?
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        if ingress {
            if let Some(file) = &self.config {
                anyhow::bail!(
                    "both `--config {}` and `{INGRESS_ENABLED}=true` are set: a gateway takes its routes from a file or from Kubernetes Ingresses, not both; drop one",
                    file.display()
                );
            }
            let namespace =
                setting(&None, INGRESS_NAMESPACE)?.filter(|value| !value.trim().is_empty());
            if namespace.is_none() {
                tracing::warn!(
                    "`{INGRESS_NAMESPACE}` is not set: Ingresses, Services and Secrets of every namespace are read"
                );
            }
            let settings = gatehouse_ingress::watch::IngressSettings { namespace };
            let auth = setting(&self.config_service_auth, AUTH_ENV)?;
            return match (endpoint, auth) {
                (None, None) => Ok(Source::Ingress(settings)),
                // Hybrid (seed 002): both feed the gateway, last one wins.
                (Some(endpoint), Some(auth)) => Ok(Source::Hybrid(
                    self.control_plane(&endpoint, &auth)?,
                    settings,
                )),
                (Some(_), None) => anyhow::bail!(
                    "`{ENDPOINT_ENV}` is set but `{AUTH_ENV}` is not: set it to the gateway token (`gatehouse gateway token <gateway>`) or to the path of a file holding it"
                ),
                (None, Some(_)) => anyhow::bail!(
                    "`{AUTH_ENV}` is set but `{ENDPOINT_ENV}` is not: set it to the control plane's URL (`http://…:8090`)"
                ),
            };
        }
        let auth = setting(&self.config_service_auth, AUTH_ENV)?;
        match (&self.config, endpoint, auth) {
            (Some(file), Some(_), _) => anyhow::bail!(
                "both `--config {}` and `{ENDPOINT_ENV}` are set: a gateway takes its configuration from a file or from the control plane, not both (for now); drop one",
                file.display()
            ),
            (Some(file), None, _) => Ok(Source::File(file.clone())),
            (None, Some(endpoint), Some(auth)) => {
                Ok(Source::ControlPlane(self.control_plane(&endpoint, &auth)?))
            }
            (None, Some(_), None) => anyhow::bail!(
                "`{ENDPOINT_ENV}` is set but `{AUTH_ENV}` is not: set it to the gateway token (`gatehouse gateway token <gateway>`) or to the path of a file holding it"
            ),
            (None, None, Some(_)) => anyhow::bail!(
                "`{AUTH_ENV}` is set but `{ENDPOINT_ENV}` is not: set it to the control plane's URL (`http://…:8090`)"
            ),
            (None, None, None) => anyhow::bail!(
                "`gatehouse gateway` needs a configuration: `--config <file.yaml>` (or GATEHOUSE_CONFIG), or a control plane with `{ENDPOINT_ENV}` and `{AUTH_ENV}` (or `--config-service-endpoint` and `--config-service-auth`)"
            ),
        }
    }
}

/// APIM's setting for the cipher suites clients may use with the gateway.
const SERVER_CIPHERS_SETTING: &str = "net.server.tls.ciphers.allowed-suites";
/// APIM's setting for the cipher suites the gateway offers backends.
const CLIENT_CIPHERS_SETTING: &str = "net.client.tls.ciphers.allowed-suites";

/// APIM setting names this gateway reads.
const SUPPORTED_SETTINGS: [&str; 6] = [
    ENDPOINT_ENV,
    AUTH_ENV,
    SERVER_CIPHERS_SETTING,
    CLIENT_CIPHERS_SETTING,
    INGRESS_ENABLED,
    INGRESS_NAMESPACE,
];

/// APIM's setting turning on Kubernetes Ingress as the source of routes (seed 002).
const INGRESS_ENABLED: &str = "k8s.ingress.enabled";
/// The namespace Ingresses are read from; unset: every namespace.
const INGRESS_NAMESPACE: &str = "k8s.ingress.namespace";

/// Prefixes of APIM's setting names: a dotted name under one of them that Gatehouse does
/// not read is logged once, so a ported deployment never loses a setting silently.
const APIM_SETTING_PREFIXES: [&str; 5] = ["config.", "k8s.", "neighborhood.", "net.", "telemetry."];

fn warn_unsupported_settings<'a>(names: impl Iterator<Item = &'a str>, source: &str) {
    for name in names {
        if SUPPORTED_SETTINGS.contains(&name) {
            continue;
        }
        if name.starts_with("runtime.deployment.") {
            // Informational in APIM (how the gateway was deployed); nothing to honour.
            continue;
        }
        if APIM_SETTING_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            tracing::warn!(
                setting = name,
                source,
                "APIM setting not supported by this Gatehouse release; it is ignored"
            );
        }
    }
}

/// Reads a settings file: a flat YAML map of names to scalar values.
fn read_settings_file(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read settings file {}", path.display()))?;
    let raw: std::collections::BTreeMap<String, serde_yaml_ng::Value> =
        serde_yaml_ng::from_str(&text).with_context(|| {
            format!(
                "settings file {} must be a YAML map of setting names to values",
                path.display()
            )
        })?;
    raw.into_iter()
        .map(|(name, value)| {
            let text = match value {
                serde_yaml_ng::Value::String(text) => text,
                serde_yaml_ng::Value::Bool(flag) => flag.to_string(),
                serde_yaml_ng::Value::Number(number) => number.to_string(),
                _ => anyhow::bail!(
                    "settings file {}: `{name}` must be a string, number or boolean",
                    path.display()
                ),
            };
            Ok((name, text))
        })
        .collect()
}

pub(crate) fn run(args: &GatewayArgs) -> anyhow::Result<()> {
    let source = args.source()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("gatehouse-main")
        .build()
        .context("cannot start the main runtime")?;
    let (state, writer) = new_state(args)?;
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signals = spawn_signal_handler(shutdown.clone())?;
        let result = serve(args, source, state, shutdown, signals.hangups, None).await;
        signals.task.abort();
        result
    });
    // Every AccessLog clone is gone with the state: the writer drains and exits.
    drop(runtime);
    if let Some(writer) = writer {
        writer.join();
    }
    result
}

/// The gateway's state, and the access-log writer to join once the state is gone.
pub(crate) fn new_state(
    args: &GatewayArgs,
) -> anyhow::Result<(Arc<GatewayState>, Option<access_log::AccessLogWriter>)> {
    let metrics = Metrics::with_options(MetricsOptions {
        per_operation: args.metrics_per_operation,
        // One counter shard per worker.
        shards: args.worker_count(),
    });
    let (access_log, writer) = if args.access_log {
        let (log, writer) = AccessLog::spawn(
            Box::new(std::io::stdout()),
            access_log::QUEUE_BATCHES,
            metrics.access_log_dropped.clone(),
        )
        .context("cannot start the access-log writer")?;
        (log, Some(writer))
    } else {
        (AccessLog::disabled(), None)
    };
    let tls = args.tls_settings()?;
    tracing::info!(
        min_version = %tls.server.min_version,
        max_version = %tls.server.max_version,
        cipher_suites = ?tls.server.cipher_suite_names(),
        http2 = tls.server.http2,
        "TLS settings of the HTTPS listener"
    );
    // Read once now, before any configuration needs them and off the async runtime.
    if let Err(error) = gatehouse_tls::client::system_roots() {
        tracing::warn!(%error, "https:// backends without `tls.caCertificateIds` will fail until CA certificates are installed");
    }
    let identity = args.identity()?;
    Ok((
        Arc::new(
            GatewayState::new(metrics, access_log)
                .with_tls(tls)
                .with_identity(identity),
        ),
        writer,
    ))
}

/// SIGTERM and SIGINT cancel `shutdown`; SIGHUPs are passed on.
pub(crate) struct Signals {
    /// One message per SIGHUP.
    pub(crate) hangups: tokio::sync::mpsc::Receiver<()>,
    /// The task listening; abort it once done.
    pub(crate) task: tokio::task::JoinHandle<()>,
}

/// Installs the signal handlers (SIGTERM and SIGINT stop, SIGHUP reloads).
pub(crate) fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<Signals> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    let (sender, hangups) = tokio::sync::mpsc::channel(1);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = hangup.recv() => { let _ = sender.try_send(()); }
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
            }
        }
        shutdown.cancel();
    });
    Ok(Signals { hangups, task })
}

/// The addresses a gateway listens on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listening {
    /// Data plane.
    pub(crate) http: SocketAddr,
    /// Admin endpoints.
    pub(crate) admin: SocketAddr,
}

/// Serves until `shutdown` is cancelled, then drains. `hangups` carries SIGHUPs: reload
/// the file (file mode) or re-read the token file (control-plane mode). `listening` is
/// told the bound addresses once both listeners accept.
pub(crate) async fn serve(
    args: &GatewayArgs,
    source: Source,
    state: Arc<GatewayState>,
    shutdown: CancellationToken,
    mut hangups: tokio::sync::mpsc::Receiver<()>,
    listening: Option<tokio::sync::oneshot::Sender<Listening>>,
) -> anyhow::Result<()> {
    let stop_background = CancellationToken::new();
    // The gateway takes configuration through its sink; the source chosen feeds it.
    let sink = ConfigSink::new(state.clone());
    // Before the listeners: a file must load (or the start fails), and a backup of the
    // control plane's configuration is served from the first request on.
    let mut sync = None;
    let mut ingress = None;
    // Hybrid mode: the control plane's own sink (token reloads offer through it).
    let mut hybrid_cloud_sink = None;
    match &source {
        Source::File(config) => {
            crate::file_source::load(&sink, config)
                .await
                .with_context(|| format!("cannot start with configuration {}", config.display()))?;
        }
        Source::ControlPlane(settings) => {
            let handle = gatehouse_sync::start(
                SyncSettings::clone(settings),
                sink.clone(),
                stop_background.clone(),
            )
            .await
            .context("cannot start control-plane mode")?;
            sync = Some(handle);
        }
        Source::Ingress(settings) => {
            ingress = Some(start_ingress(settings, sink.clone(), stop_background.clone()).await?);
        }
        Source::Hybrid(sync_settings, ingress_settings) => {
            // Seed 002: on boot the Ingresses first, then the backup or the cloud
            // snapshot; from then on both feed the gateway, last one wins.
            let layers = Layers::new(&[INGRESS_LAYER, CONTROL_PLANE_LAYER]);
            let ingress_sink = ConfigSink::layer(state.clone(), layers.clone(), INGRESS_LAYER);
            ingress =
                Some(start_ingress(ingress_settings, ingress_sink, stop_background.clone()).await?);
            let deadline = tokio::time::Instant::now() + HYBRID_INGRESS_WAIT;
            while !layers.has(INGRESS_LAYER).await {
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(
                        waited = ?HYBRID_INGRESS_WAIT,
                        "the Ingresses are not read yet; starting with the control plane's configuration, the Ingress routes follow once read"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let cloud_sink = ConfigSink::layer(state.clone(), layers, CONTROL_PLANE_LAYER);
            sync = Some(
                gatehouse_sync::start(
                    SyncSettings::clone(sync_settings),
                    cloud_sink.clone(),
                    stop_background.clone(),
                )
                .await
                .context("cannot start hybrid mode (Kubernetes Ingress and a control plane)")?,
            );
            hybrid_cloud_sink = Some(cloud_sink);
        }
    }

    let workers = args.worker_count();
    let settings = ServerSettings {
        listen: args.listen,
        https_listen: Some(args.https_listen),
        http3: args.http3,
        workers,
        limits: Limits {
            max_header_bytes: args.max_header_bytes,
            max_headers: args.max_headers,
            max_request_line_bytes: args.max_request_line_bytes,
            max_buffered_body_bytes: args.max_buffered_body_bytes,
            max_request_body_bytes: (args.max_request_body_bytes > 0)
                .then_some(args.max_request_body_bytes),
            header_read_timeout: args.header_read_timeout,
            body_read_timeout: args.body_read_timeout,
            max_connections: args.max_connections,
            http2_max_pending_accept_reset_streams: args.http2_max_pending_accept_reset_streams,
            http2_max_local_error_reset_streams: args.http2_max_local_error_reset_streams,
            tls_handshake_timeout: args.tls_handshake_timeout,
            http2: args.http2,
            websocket_idle_timeout: args.websocket_idle_timeout,
            max_websocket_connections: args.max_websocket_connections,
            ..Limits::default()
        },
        drain_timeout: args.drain_timeout,
    };
    let gateway = Gateway::start(&settings, state.clone())?;
    state.readiness.set_listeners_bound();

    let admin_listener = admin::bind(args.admin_listen)
        .await
        .with_context(|| format!("cannot listen on admin address {}", args.admin_listen))?;
    let admin_addr = admin_listener.local_addr()?;
    tracing::info!(addr = %admin_addr, "admin listening (/healthz, /readyz, /metrics)");
    // The same token stops the sync loop (started above), the admin listener, the
    // file watcher and the counter sweeper.
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        state.clone(),
        stop_background.clone(),
    ));

    // Watching before announcing the addresses: whoever waits for them (a test, a
    // supervisor) may change the file at once, and the change must not be missed.
    let watcher = match &source {
        Source::File(config) => Some(
            crate::file_source::watch(sink.clone(), config.clone(), stop_background.clone())
                .with_context(|| format!("cannot watch {}", config.display()))?,
        ),
        Source::ControlPlane(_) | Source::Ingress(_) | Source::Hybrid(..) => None,
    };

    if let Some(path) = &args.bound_addresses_file {
        let addresses = serde_json::json!({
            "http": gateway.local_addr().to_string(),
            "https": gateway.https_addr().map(|addr| addr.to_string()),
            "http3": gateway.http3_addr().map(|addr| addr.to_string()),
            "admin": admin_addr.to_string(),
        });
        crate::write_bound_addresses(path, &addresses).await?;
    }
    if let Some(listening) = listening {
        let _ = listening.send(Listening {
            http: gateway.local_addr(),
            admin: admin_addr,
        });
    }

    let sweeper = {
        let state = state.clone();
        let stop = stop_background.clone();
        tokio::spawn(async move { state.sweep_counters(COUNTER_SWEEP_INTERVAL, stop).await })
    };

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = hangups.recv() => match (&source, &sync) {
                (Source::File(config), _) => crate::file_source::reload_and_log(&sink, config, "sighup").await,
                (Source::ControlPlane(_), Some(sync)) => sync.token().reload_and_log(&sink, "sighup").await,
                (Source::Hybrid(..), Some(sync)) => {
                    let sink = hybrid_cloud_sink.as_ref().unwrap_or(&sink);
                    sync.token().reload_and_log(sink, "sighup").await;
                }
                (Source::ControlPlane(_) | Source::Hybrid(..), None) => {}
                // Ingresses are watched: nothing to reload.
                (Source::Ingress(_), _) => tracing::info!("SIGHUP: nothing to reload (routes come from Kubernetes Ingresses, watched live)"),
            },
        }
    }
    tracing::info!(drain_timeout = ?args.drain_timeout, "shutting down: draining in-flight requests");
    gateway.shutdown().await;
    stop_background.cancel();
    let _ = admin_task.await;
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    if let Some(sync) = sync {
        sync.join().await;
    }
    if let Some(ingress) = ingress {
        let _ = ingress.await;
    }
    let _ = sweeper.await;
    tracing::info!("stopped");
    Ok(())
}

/// Starts the Ingress watcher feeding `sink`.
async fn start_ingress(
    settings: &gatehouse_ingress::watch::IngressSettings,
    sink: ConfigSink,
    shutdown: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = kube::Client::try_default().await.context(
        "cannot reach the Kubernetes API for k8s.ingress.enabled (in a pod: its service account; elsewhere: KUBECONFIG or ~/.kube/config)",
    )?;
    Ok(tokio::spawn(gatehouse_ingress::watch::run(
        client,
        settings.clone(),
        sink,
        shutdown,
    )))
}

#[cfg(test)]
#[path = "gateway_cmd_tests.rs"]
mod tests;
