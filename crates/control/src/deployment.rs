//! `GET /gateways/{id}/deployment?format=kubernetes`: a ready-to-apply manifest for a
//! gateway, as APIM's portal gives one (seed: "Deploy a self-hosted gateway to
//! Kubernetes"), with the production guidance applied: a pinned image tag, two replicas,
//! a rolling update that never drops below the desired count, resource requests, probes,
//! a LoadBalancer Service with `externalTrafficPolicy: Local`, non-root with a read-only
//! root filesystem. The token goes into a Secret created by the `kubectl` command that
//! comes with it, never into the manifest.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_model::token::GatewayToken;
use gatehouse_store::Kind;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::json;

use crate::entities::noun;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::management::KeyType;
use crate::{AppState, unix_now};

/// The container image, pinned to this build's version (never a moving tag).
pub const IMAGE: &str = concat!(
    "ghcr.io/gatehouse-dev/gatehouse:",
    env!("CARGO_PKG_VERSION")
);

/// Query of the deployment endpoint.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentQuery {
    /// Only `kubernetes`.
    format: String,
    /// Which key signs the token (default primary).
    key_type: Option<KeyType>,
    /// Token lifetime in days (default and maximum 30).
    expiry_days: Option<u32>,
}

/// Handler: the manifest, the `kubectl` command that creates the token Secret, and when
/// the token expires.
pub async fn deployment(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<DeploymentQuery>,
    tls: Option<axum::Extension<crate::tls::ServedOverTls>>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if query.format != "kubernetes" {
        return Err(ApiError::BadRequest(format!(
            "unknown format `{}`; the only format is `kubernetes`",
            query.format
        )));
    }
    let days = query.expiry_days.unwrap_or(30);
    if !(1..=30).contains(&days) {
        return Err(ApiError::BadRequest(
            "`expiryDays` must be 1 to 30".to_owned(),
        ));
    }
    if state.get(Kind::Gateway, &id).await?.is_none() {
        return Err(ApiError::NotFound {
            kind: noun(Kind::Gateway),
            id,
        });
    }
    let keys = crate::management::ensure_gateway_keys(&state, &id).await?;
    let key = match query.key_type.unwrap_or(KeyType::Primary) {
        KeyType::Primary => keys.primary,
        KeyType::Secondary => keys.secondary,
    };
    let expiry = unix_now() + i64::from(days) * 86_400;
    let token = GatewayToken::sign(&id, key.as_bytes(), expiry)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let endpoint = public_endpoint(&headers, &uri, tls.is_some());
    Ok(axum::Json(json!({
        "manifest": kubernetes_manifest(&id, &endpoint, IMAGE),
        "secretCommand": secret_command(&id, &token),
        "tokenExpiry": token.expiry_text(),
    }))
    .into_response())
}

/// The control plane's URL as the caller reached it: `Host` (HTTP/2: the request's
/// authority), and the scheme from `X-Forwarded-Proto` (a proxy in front knows), else
/// `https` when this listener serves TLS, else `http`.
fn public_endpoint(headers: &HeaderMap, uri: &http::Uri, https_listener: bool) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str))
        .unwrap_or("localhost:8090");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https" || *p == "http")
        .unwrap_or(if https_listener { "https" } else { "http" });
    format!("{scheme}://{host}")
}

/// The command creating the Secret that holds the token, as the portal prints it.
#[must_use]
pub fn secret_command(gateway_id: &str, token: &GatewayToken) -> String {
    format!(
        "kubectl create secret generic {gateway_id}-token --type=Opaque --from-literal=value=\"{token}\""
    )
}

/// The manifest: ConfigMap, Deployment and Service for gateway `id`, pulling from
/// `endpoint`. Pure, so tests and the CLI see exactly what the API serves.
#[must_use]
pub fn kubernetes_manifest(id: &str, endpoint: &str, image: &str) -> String {
    format!(
        r#"# Gatehouse gateway "{id}". Create the token Secret first (see secretCommand), then:
#   kubectl apply -f {id}.yaml
# Production guidance: https://github.com/gatehouse-dev/gatehouse/blob/main/docs/control-plane.md
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {id}-env
  labels:
    app: {id}
data:
  config.service.endpoint: "{endpoint}"
  runtime.deployment.artifact.source: "Gatehouse control plane"
  runtime.deployment.mechanism: "YAML"
  runtime.deployment.orchestrator.type: "Kubernetes"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {id}
  labels:
    app: {id}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {id}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 25%
  template:
    metadata:
      labels:
        app: {id}
    spec:
      terminationGracePeriodSeconds: 60
      dnsPolicy: ClusterFirst
      securityContext:
        runAsNonRoot: true
        runAsUser: 1001
        runAsGroup: 1001
        fsGroup: 1001
      containers:
        - name: gateway
          image: {image}
          args: ["gateway", "--admin-listen", "0.0.0.0:8082"]
          ports:
            - name: http
              containerPort: 8080
            - name: https
              containerPort: 8081
            - name: admin
              containerPort: 8082
          env:
            - name: config.service.auth
              valueFrom:
                secretKeyRef:
                  name: {id}-token
                  key: value
          envFrom:
            - configMapRef:
                name: {id}-env
          resources:
            requests:
              cpu: "2"
              memory: 2Gi
            limits:
              memory: 2Gi
          readinessProbe:
            httpGet:
              path: /status-0123456789abcdef
              port: http
            periodSeconds: 5
            failureThreshold: 3
          livenessProbe:
            httpGet:
              path: /healthz
              port: admin
            periodSeconds: 10
            failureThreshold: 3
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: config-backup
              mountPath: /apim/config
      volumes:
        - name: config-backup
          emptyDir: {{}}
---
apiVersion: v1
kind: Service
metadata:
  name: {id}
  labels:
    app: {id}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports:
    - name: http
      port: 80
      targetPort: 8080
    - name: https
      port: 443
      targetPort: 8081
  selector:
    app: {id}
"#
    )
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
