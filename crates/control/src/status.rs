//! `GET /gateways/{id}/status`: which instances of a gateway are connected, from their
//! heartbeats.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_store::Kind;
use serde::Serialize;

use crate::entities::noun;
use crate::error::ApiError;
use crate::extract::Path;
use crate::{AppState, unix_now};

/// An instance that did not say how often it reports is taken to report every minute
/// (the gateway's default).
pub const DEFAULT_INTERVAL_SECONDS: u64 = 60;

/// Silent intervals after which an instance no longer counts as connected.
pub const SILENT_INTERVALS: u64 = 3;

/// The status of one gateway.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    /// Gateway id.
    pub gateway_id: String,
    /// Connected instances ("nodes").
    pub nodes: usize,
    /// Current configuration revision of the control plane.
    pub current_revision: u64,
    /// The connected instances.
    pub instances: Vec<InstanceStatus>,
    /// Certificates the gateway holds that have expired or expire within the warning
    /// window (`--certificate-expiry-warning`, default 14 days), soonest first. An
    /// expired one is still presented by gateways; everything else keeps being served.
    pub certificate_warnings: Vec<CertificateWarning>,
}

/// A certificate that needs replacing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateWarning {
    /// Certificate id.
    pub certificate_id: String,
    /// The host names that present it.
    pub hostnames: Vec<String>,
    /// When its leaf expires (RFC 3339).
    pub not_after: String,
    /// Whether it has expired already.
    pub expired: bool,
}

/// The certificates of `config` that expired, or expire within `window` of `now_unix`,
/// soonest first. Pure. A certificate that does not parse is skipped (it was checked
/// when written).
#[must_use]
pub fn certificate_warnings(
    config: &gatehouse_model::Configuration,
    now_unix: i64,
    window: std::time::Duration,
) -> Vec<CertificateWarning> {
    use gatehouse_tls::certificate::{CertificateDetails, parse_certificates, rfc3339};
    let window = i64::try_from(window.as_secs()).unwrap_or(i64::MAX);
    let mut warnings: Vec<(i64, CertificateWarning)> = config
        .certificates
        .iter()
        .filter_map(|certificate| {
            let chain = parse_certificates(&certificate.certificate_pem).ok()?;
            let leaf = CertificateDetails::from_der(chain.first()?).ok()?;
            (leaf.not_after.saturating_sub(now_unix) < window).then(|| {
                let hostnames = config
                    .hostnames
                    .iter()
                    .filter(|h| h.certificate_id.as_deref() == Some(certificate.id.as_str()))
                    .map(|h| h.hostname.clone())
                    .collect();
                (
                    leaf.not_after,
                    CertificateWarning {
                        certificate_id: certificate.id.clone(),
                        hostnames,
                        not_after: rfc3339(leaf.not_after),
                        expired: leaf.not_after < now_unix,
                    },
                )
            })
        })
        .collect();
    warnings.sort_by(|a, b| (a.0, &a.1.certificate_id).cmp(&(b.0, &b.1.certificate_id)));
    warnings.into_iter().map(|(_, warning)| warning).collect()
}

/// One connected instance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Instance id.
    pub instance_id: String,
    /// Host name.
    pub hostname: String,
    /// Gatehouse version.
    pub version: String,
    /// Revision it serves.
    pub applied_revision: u64,
    /// Revisions it is behind.
    pub revision_lag: u64,
    /// Its last reported error.
    pub last_error: Option<String>,
    /// Seconds since it started.
    pub uptime_seconds: u64,
    /// When its token expires (RFC 3339, UTC).
    #[schema(example = "2026-12-24T00:00:00Z")]
    pub token_expiry: Option<String>,
    /// When it last reported (RFC 3339, UTC).
    #[schema(example = "2026-12-07T10:00:00Z")]
    pub last_seen: String,
    /// Seconds since it last reported.
    pub last_seen_seconds_ago: i64,
}

/// How long an instance may stay silent and still count: `configured`, else three of
/// the intervals it reported.
#[must_use]
pub fn timeout_seconds(
    configured: Option<std::time::Duration>,
    interval_seconds: Option<u64>,
) -> i64 {
    let seconds = configured.map_or_else(
        || {
            interval_seconds
                .unwrap_or(DEFAULT_INTERVAL_SECONDS)
                .saturating_mul(SILENT_INTERVALS)
        },
        |timeout| timeout.as_secs(),
    );
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

/// Handler of `GET /gateways/{id}/status`.
pub async fn gateway_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(axum::Json(status_of(&state, &id).await?).into_response())
}

/// The status of gateway `id`: its instances heard from within their timeout.
///
/// # Errors
///
/// 404 when the gateway does not exist, and storage errors.
pub(crate) async fn status_of(state: &AppState, id: &str) -> Result<GatewayStatus, ApiError> {
    if state.get(Kind::Gateway, id).await?.is_none() {
        return Err(ApiError::NotFound {
            kind: noun(Kind::Gateway),
            id: id.to_owned(),
        });
    }
    let (current_revision, stored) = state.all().await?;
    let config = crate::entities::configuration(&stored)?;
    status_in(state, id, current_revision, &config).await
}

/// The status of gateway `id` (known to exist) in `config` at `current_revision`: one
/// configuration read serves a whole list of gateways.
///
/// # Errors
///
/// Storage errors.
pub(crate) async fn status_in(
    state: &AppState,
    id: &str,
    current_revision: u64,
    config: &gatehouse_model::Configuration,
) -> Result<GatewayStatus, ApiError> {
    let now = unix_now();
    let heartbeats = state.store.heartbeats(id, 0).await?;
    let instances: Vec<InstanceStatus> = heartbeats
        .into_iter()
        .filter(|hb| {
            now.saturating_sub(hb.last_seen_unix)
                <= timeout_seconds(state.settings.instance_timeout, hb.interval_seconds)
        })
        .map(|hb| InstanceStatus {
            revision_lag: current_revision.saturating_sub(hb.applied_revision),
            instance_id: hb.instance_id,
            hostname: hb.hostname,
            version: hb.version,
            applied_revision: hb.applied_revision,
            last_error: hb.last_error,
            uptime_seconds: hb.uptime_seconds,
            token_expiry: hb
                .token_expiry_unix
                .map(gatehouse_tls::certificate::rfc3339),
            last_seen: gatehouse_tls::certificate::rfc3339(hb.last_seen_unix),
            last_seen_seconds_ago: now.saturating_sub(hb.last_seen_unix).max(0),
        })
        .collect();
    Ok(GatewayStatus {
        gateway_id: id.to_owned(),
        nodes: instances.len(),
        current_revision,
        instances,
        certificate_warnings: certificate_warnings(
            config,
            now,
            state.settings.certificate_expiry_warning,
        ),
    })
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
