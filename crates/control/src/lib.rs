//! The Gatehouse control plane: the management API where APIs, products,
//! subscriptions, named values, backends, certificates, hostnames, the global policy
//! and gateways are defined; the Configuration API v2 gateways pull from with an
//! expiring token; gateway status from heartbeats; the web portal at `/portal/`
//! ([`portal`], `docs/portal.md`). Contract: `docs/control-plane.md`.
//!
//! [`app`] builds the whole HTTP application from a [`ControlState`], so tests drive it
//! directly; [`serve`] runs it on a listener until shutdown, [`tls::serve_tls`] over
//! HTTPS with a certificate reloaded when its files change. Storage is
//! `gatehouse-store`; this crate holds no state of its own.

pub mod auth;
pub mod config_api;
pub mod deployment;
pub mod entities;
pub mod error;
pub mod extract;
pub mod maintenance;
pub mod management;
pub mod openapi;
pub mod portal;
pub mod status;
pub mod tls;
pub mod vault;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gatehouse_store::{GatewayKeys, Kind, Precondition, Store, Stored, WriteOp};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::auth::AdminToken;
use crate::error::ApiError;

/// Largest request body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub struct ControlState {
    /// Storage. Read entities through [`ControlState::get`], [`ControlState::list`] and
    /// [`ControlState::all`] and write them through [`ControlState::write`], which open
    /// and seal private keys; the rest of the store is used directly.
    pub store: Store,
    /// The management API's token.
    pub admin: AdminToken,
    /// Encryption at rest of secrets.
    pub vault: vault::Vault,
    /// What the operator set.
    pub settings: ControlSettings,
    /// Cancelled when the control plane starts shutting down: change requests waiting
    /// for a change answer "no change" at once, so gateways reconnect elsewhere.
    pub stopping: CancellationToken,
    /// Change requests waiting for a change right now.
    pub waiting_long_polls: std::sync::atomic::AtomicUsize,
    /// The web portal's sessions (this replica's, in memory).
    pub portal: portal::session::Sessions,
}

/// The control plane's settings (`gatehouse control` flags).
#[derive(Debug, Clone)]
pub struct ControlSettings {
    /// The URL gateways reach this control plane at (`--public-url`): the
    /// configuration endpoint of deployment manifests, which are refused without it.
    pub public_url: Option<String>,
    /// How long an instance may stay silent before `gateway status` stops counting it
    /// (`--instance-timeout`); `None`: three of the heartbeat intervals it reported
    /// (three minutes when it reported none).
    pub instance_timeout: Option<std::time::Duration>,
    /// How long the heartbeat of a silent instance is kept before it is deleted
    /// (`--heartbeat-retention`, default 1 hour).
    pub heartbeat_retention: std::time::Duration,
    /// How many of the latest revisions the change log keeps (`--change-log-retention`,
    /// default 10 000); a gateway further behind gets `410 Gone` and takes a snapshot.
    pub change_log_retention: u64,
    /// How often the pruning runs (default every minute).
    pub maintenance_interval: std::time::Duration,
    /// How long before a certificate expires it is reported (`gateway status`, log):
    /// `--certificate-expiry-warning`, default 14 days.
    pub certificate_expiry_warning: std::time::Duration,
    /// A gateway every newly created API is assigned to, in the same write (`gatehouse
    /// dev` sets its own, so what you apply is served); `None`: APIs are assigned by
    /// hand.
    pub assign_new_apis_to: Option<String>,
    /// How long a portal session lasts unused (`--portal-session-idle-timeout`,
    /// default 12 hours).
    pub portal_session_idle_timeout: std::time::Duration,
    /// Most portal sessions held at once (default 1000); the least recently used one
    /// ends to make room.
    pub portal_max_sessions: usize,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            instance_timeout: None,
            heartbeat_retention: std::time::Duration::from_secs(3600),
            change_log_retention: 10_000,
            maintenance_interval: std::time::Duration::from_secs(60),
            certificate_expiry_warning: std::time::Duration::from_secs(14 * 86_400),
            assign_new_apis_to: None,
            portal_session_idle_timeout: portal::session::DEFAULT_IDLE_TIMEOUT,
            portal_max_sessions: portal::session::DEFAULT_MAX_SESSIONS,
        }
    }
}

impl ControlState {
    /// A control plane's state.
    #[must_use]
    pub fn new(
        store: Store,
        admin: AdminToken,
        vault: vault::Vault,
        settings: ControlSettings,
    ) -> Self {
        let portal = portal::session::Sessions::new(
            settings.portal_session_idle_timeout,
            settings.portal_max_sessions,
        );
        Self {
            store,
            admin,
            vault,
            settings,
            stopping: CancellationToken::new(),
            waiting_long_polls: std::sync::atomic::AtomicUsize::new(0),
            portal,
        }
    }

    /// Starts the shutdown: logs what is in flight and answers the waiting change
    /// requests at once ("no change"), so the server can close within moments.
    pub fn begin_shutdown(&self) {
        let waiting = self
            .waiting_long_polls
            .load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            waiting_change_requests = waiting,
            "shutting down: answering the waiting change requests with no change, finishing the requests in flight"
        );
        self.stopping.cancel();
    }

    /// One entity, private keys opened.
    ///
    /// # Errors
    ///
    /// Storage errors, and stored private keys that do not open.
    pub async fn get(
        &self,
        kind: gatehouse_store::Kind,
        id: &str,
    ) -> Result<Option<gatehouse_store::Stored>, ApiError> {
        match self.store.get(kind, id).await? {
            Some(stored) => Ok(Some(self.vault.open(stored).map_err(ApiError::internal)?)),
            None => Ok(None),
        }
    }

    /// A page of entities, private keys opened.
    ///
    /// # Errors
    ///
    /// As [`ControlState::get`].
    pub async fn list(
        &self,
        kind: gatehouse_store::Kind,
        query: &gatehouse_store::ListQuery,
    ) -> Result<gatehouse_store::Page, ApiError> {
        let mut page = self.store.list(kind, query).await?;
        page.items = page
            .items
            .into_iter()
            .map(|s| self.vault.open(s))
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        Ok(page)
    }

    /// Every entity at one revision, private keys opened.
    ///
    /// # Errors
    ///
    /// As [`ControlState::get`].
    pub async fn all(&self) -> Result<(u64, Vec<gatehouse_store::Stored>), ApiError> {
        let (revision, stored) = self.store.all().await?;
        let opened = stored
            .into_iter()
            .map(|s| self.vault.open(s))
            .collect::<Result<_, _>>()
            .map_err(ApiError::internal)?;
        Ok((revision, opened))
    }

    /// Plans a write from every entity as it is when the write starts (secrets opened)
    /// and applies it in the same transaction (secrets sealed): see
    /// [`Store::write_planned`]. A check `plan` makes holds when its ops commit, whatever
    /// other writers do concurrently, here or on other replicas.
    ///
    /// # Errors
    ///
    /// `plan`'s error, or the store's ([`ApiError`]'s `From<StoreError>` names the entity
    /// for preconditions and missing entities).
    pub async fn write_planned<T, P>(&self, plan: P) -> Result<(u64, T), ApiError>
    where
        P: FnOnce(u64, Vec<Stored>) -> Result<(Vec<WriteOp>, T), ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let vault = self.vault.clone();
        self.store
            .write_planned(move |revision, stored| {
                let opened = stored
                    .into_iter()
                    .map(|s| vault.open(s))
                    .collect::<Result<_, _>>()
                    .map_err(ApiError::internal)?;
                let (ops, value) = plan(revision, opened)?;
                let sealed = ops.into_iter().map(|op| seal_op(&vault, op)).collect();
                Ok((sealed, value))
            })
            .await
    }

    /// A gateway's signing keys, opened; `None` when it has none.
    ///
    /// # Errors
    ///
    /// Storage errors, and keys that do not open with this replica's encryption key.
    pub async fn gateway_keys(&self, gateway_id: &str) -> Result<Option<GatewayKeys>, ApiError> {
        let Some(keys) = self.store.gateway_keys(gateway_id).await? else {
            return Ok(None);
        };
        let purpose = gateway_key_purpose(gateway_id);
        let open = |text: &str| {
            self.vault.open_text(&purpose, text).ok_or_else(|| {
                ApiError::internal(vault::VaultError::Open {
                    kind: "gateway",
                    id: gateway_id.to_owned(),
                    field: "signing key",
                })
            })
        };
        Ok(Some(GatewayKeys {
            primary: open(&keys.primary)?,
            secondary: open(&keys.secondary)?,
        }))
    }

    /// Stores a gateway's signing keys, sealed.
    ///
    /// # Errors
    ///
    /// Storage errors.
    pub async fn set_gateway_keys(
        &self,
        gateway_id: &str,
        keys: &GatewayKeys,
    ) -> Result<(), ApiError> {
        let purpose = gateway_key_purpose(gateway_id);
        let sealed = GatewayKeys {
            primary: self.vault.seal_text(&purpose, &keys.primary),
            secondary: self.vault.seal_text(&purpose, &keys.secondary),
        };
        Ok(self.store.set_gateway_keys(gateway_id, &sealed).await?)
    }

    /// Brings the settings every replica on one database shares into agreement, before
    /// serving: the encryption key must open what the database holds (a value sealed by
    /// the first replica, and every stored secret), and the admin token must be the one
    /// the database was set up with. Then seals secrets an older version stored in clear.
    ///
    /// `admin_created`: this replica's token was generated just now, not given; when the
    /// database already has another one, that one is used (see [`AdminTokenInForce`]).
    ///
    /// # Errors
    ///
    /// [`StartError`] when the replica must not serve: another encryption key, another
    /// admin token given, or storage failures.
    pub async fn agree_on_shared_settings(
        &mut self,
        admin_created: bool,
    ) -> Result<AdminTokenInForce, StartError> {
        let check = self
            .store
            .init_setting(ENCRYPTION_KEY_CHECK_SETTING, &self.vault.key_check())
            .await?;
        if !self.vault.opens_key_check(&check) {
            return Err(StartError::WrongEncryptionKey {
                what: "the key check the first replica stored".to_owned(),
            });
        }
        let digest = self
            .store
            .init_setting(ADMIN_TOKEN_SETTING, &self.admin.digest_hex())
            .await?;
        let in_force = if digest == self.admin.digest_hex() {
            AdminTokenInForce::This
        } else if admin_created {
            self.admin =
                AdminToken::from_digest_hex(&digest).ok_or_else(|| StartError::Corrupt {
                    setting: ADMIN_TOKEN_SETTING,
                })?;
            AdminTokenInForce::Database
        } else {
            return Err(StartError::AdminTokenMismatch);
        };
        self.seal_legacy_secrets().await?;
        Ok(in_force)
    }

    /// Seals what an older version stored in clear (subscription keys, secret named
    /// values, gateway keys), and checks that every stored secret opens.
    async fn seal_legacy_secrets(&self) -> Result<(), StartError> {
        let (_, stored) = self.store.all().await?;
        let mut gateways = Vec::new();
        for entity in &stored {
            if entity.kind == Kind::Gateway {
                gateways.push(entity.id.clone());
            }
            self.vault
                .open(entity.clone())
                .map_err(|error| StartError::WrongEncryptionKey {
                    what: error.to_string(),
                })?;
        }
        let (_, sealed) = self
            .write_planned(move |_, entities| {
                let ops: Vec<WriteOp> = entities
                    .into_iter()
                    .filter(|e| {
                        // `entities` are opened: compare with the stored form.
                        stored.iter().any(|s| {
                            s.kind == e.kind
                                && s.id == e.id
                                && s.revision == e.revision
                                && vault::Vault::needs_sealing(s.kind, &s.body)
                        })
                    })
                    .map(|e| WriteOp::Put {
                        kind: e.kind,
                        id: e.id,
                        body: e.body,
                        precondition: Precondition::IfMatch(e.revision),
                    })
                    .collect();
                let count = ops.len();
                Ok((ops, count))
            })
            .await
            .map_err(|error| StartError::Sealing(error.to_string()))?;
        if sealed > 0 {
            tracing::info!(
                entities = sealed,
                "sealed secrets an older version stored in clear"
            );
        }
        for gateway in gateways {
            let Some(keys) = self.store.gateway_keys(&gateway).await? else {
                continue;
            };
            let opened =
                self.gateway_keys(&gateway)
                    .await
                    .map_err(|_| StartError::WrongEncryptionKey {
                        what: format!("the signing keys of gateway `{gateway}`"),
                    })?;
            if let Some(opened) = opened
                && !(keys.primary.starts_with(vault::SEALED_PREFIX)
                    && keys.secondary.starts_with(vault::SEALED_PREFIX))
            {
                self.set_gateway_keys(&gateway, &opened)
                    .await
                    .map_err(|error| StartError::Sealing(error.to_string()))?;
            }
        }
        Ok(())
    }
}

/// The setting holding the SHA-256 of the admin token (hex).
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";
/// The setting holding [`vault::Vault::key_check`].
const ENCRYPTION_KEY_CHECK_SETTING: &str = "encryption_key_check";

fn gateway_key_purpose(gateway_id: &str) -> String {
    format!("gateway-key\n{gateway_id}")
}

fn seal_op(vault: &vault::Vault, op: WriteOp) -> WriteOp {
    match op {
        WriteOp::Put {
            kind,
            id,
            body,
            precondition,
        } => {
            let body = vault.seal(kind, &id, body);
            WriteOp::Put {
                kind,
                id,
                body,
                precondition,
            }
        }
        delete @ WriteOp::Delete { .. } => delete,
    }
}

/// Which admin token a replica serves with, after [`ControlState::agree_on_shared_settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTokenInForce {
    /// This replica's own (given, or created and stored first).
    This,
    /// The one another replica set up first: this replica's generated token is not
    /// valid (the caller should remove it where it wrote it).
    Database,
}

/// Why a control plane must not start serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The encryption key is not the one the stored secrets were sealed with.
    #[error(
        "this replica's encryption key cannot open {what}: every control-plane replica on one database must use the same key (set GATEHOUSE_ENCRYPTION_KEY to the key the others use; see docs/control-plane.md, \"Several replicas\")"
    )]
    WrongEncryptionKey {
        /// What did not open.
        what: String,
    },
    /// The admin token given is not the database's.
    #[error(
        "the admin token given to this replica is not the one the database was set up with: every replica must use the same token (GATEHOUSE_ADMIN_TOKEN from one Secret; see docs/control-plane.md, \"Several replicas\")"
    )]
    AdminTokenMismatch,
    /// A shared setting does not hold what it should.
    #[error("the database's `{setting}` setting is malformed")]
    Corrupt {
        /// The setting.
        setting: &'static str,
    },
    /// Sealing secrets stored in clear failed.
    #[error("cannot seal the secrets stored in clear: {0}")]
    Sealing(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] gatehouse_store::StoreError),
}

/// Shared handle to [`ControlState`].
pub type AppState = Arc<ControlState>;

/// The whole HTTP application: health, the management API (admin token), the
/// Configuration API v2 (gateway tokens), the web portal (`/portal/`, sessions).
pub fn app(state: AppState) -> Router {
    let management = management::routes()
        .route("/gateways/{id}/status", get(status::gateway_status))
        .route("/gateways/{id}/deployment", get(deployment::deployment))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_admin));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(|| async { "ready\n" }))
        .route("/openapi.json", get(openapi::serve))
        .merge(config_api::routes())
        .merge(portal::routes(state.clone()))
        .merge(management)
        .fallback(|| async {
            ApiError::NotFound {
                kind: "resource",
                id: "this path".to_owned(),
            }
        })
        .with_state(state)
}

async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.admin.check(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Serves [`app`] on `listener` until `shutdown` is cancelled; in-flight requests
/// (long-polls included) end gracefully.
///
/// # Errors
///
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let draining = state.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(async move {
            shutdown.cancelled().await;
            draining.begin_shutdown();
        })
        .await
}

/// Reads a JSON body of at most `limit` bytes.
///
/// # Errors
///
/// 413 over the limit; 400 when it is not JSON (with the parser's line and column).
pub async fn read_json(body: Body, limit: usize) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    if bytes.is_empty() {
        return Ok(entities::empty_object());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))
}

/// Seconds since the Unix epoch, by the wall clock (token expiry is wall-clock time).
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
