//! `GET /gateways/{id}/deployment?format=kubernetes`: a ready-to-apply manifest for a
//! gateway, as APIM's portal gives one (seed: "Deploy a self-hosted gateway to
//! Kubernetes"), with the production guidance applied: a pinned image tag, two replicas,
//! a rolling update that never drops below the desired count, resource requests, probes,
//! a PodDisruptionBudget and topology spread over zones and nodes (high availability),
//! readiness on `/readyz` (ready once a configuration is loaded) and liveness on
//! `/healthz` (a gateway waiting for its control plane is not restarted), a LoadBalancer
//! Service with `externalTrafficPolicy: Local`, non-root with a read-only root
//! filesystem. The configuration endpoint is the control plane's public URL
//! (`--public-url`), never the address a caller happened to use. The token goes into a
//! Secret created by the `kubectl` command that comes with it, never into the manifest.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use gatehouse_model::token::GatewayToken;
use gatehouse_store::Kind;
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
) -> Result<Response, ApiError> {
    if query.format != "kubernetes" {
        return Err(ApiError::BadRequest(format!(
            "unknown format `{}`; the only format is `kubernetes`",
            query.format
        )));
    }
    let deployment = deployment_for(
        &state,
        &id,
        query.key_type.unwrap_or(KeyType::Primary),
        query.expiry_days.unwrap_or(MAX_EXPIRY_DAYS),
    )
    .await?;
    Ok(axum::Json(json!({
        "manifest": deployment.manifest,
        "secretCommand": deployment.secret_command,
        "tokenExpiry": deployment.token.expiry_text(),
    }))
    .into_response())
}

/// Longest token lifetime, in days (and the default).
pub const MAX_EXPIRY_DAYS: u32 = 30;

/// What deploying a gateway takes: a fresh token, the command creating its Secret, the
/// manifest.
#[derive(Debug)]
pub(crate) struct Deployment {
    /// The token (a secret: shown only on the deployment page that asked for it).
    pub(crate) token: GatewayToken,
    /// `kubectl create secret generic …` holding the token.
    pub(crate) secret_command: String,
    /// The Kubernetes manifest (no token in it).
    pub(crate) manifest: String,
    /// The configuration endpoint the gateway reaches this control plane at.
    pub(crate) endpoint: String,
}

/// The deployment of gateway `id`: a token signed with its `key_type` key, valid for
/// `days` (1 to 30), and the manifest pointing at the control plane's public URL.
///
/// # Errors
///
/// 400 for `days` out of range, 409 without a public URL, 404 without the gateway,
/// storage errors.
pub(crate) async fn deployment_for(
    state: &AppState,
    id: &str,
    key_type: KeyType,
    days: u32,
) -> Result<Deployment, ApiError> {
    if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(
            "`expiryDays` must be 1 to 30".to_owned(),
        ));
    }
    let Some(endpoint) = state.settings.public_url.as_deref() else {
        return Err(ApiError::Conflict(
            "the control plane has no public URL, so a manifest cannot say where gateways reach it: start it with --public-url https://control.example.com (GATEHOUSE_PUBLIC_URL)".to_owned(),
        ));
    };
    if state.get(Kind::Gateway, id).await?.is_none() {
        return Err(ApiError::NotFound {
            kind: noun(Kind::Gateway),
            id: id.to_owned(),
        });
    }
    let keys = crate::management::ensure_gateway_keys(state, id).await?;
    let key = match key_type {
        KeyType::Primary => keys.primary,
        KeyType::Secondary => keys.secondary,
    };
    let expiry = unix_now() + i64::from(days) * 86_400;
    let token = GatewayToken::sign(id, key.as_bytes(), expiry)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Deployment {
        secret_command: secret_command(id, &token),
        manifest: kubernetes_manifest(id, endpoint, IMAGE),
        endpoint: endpoint.to_owned(),
        token,
    })
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
      automountServiceAccountToken: false
      # Spread the replicas over zones and nodes (seed: high availability).
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app: {id}
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app: {id}
      securityContext:
        runAsNonRoot: true
        runAsUser: 1001
        runAsGroup: 1001
        fsGroup: 1001
        seccompProfile:
          type: RuntimeDefault
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
          # Up to 5 minutes to load a first configuration before the other probes count.
          startupProbe:
            httpGet:
              path: /healthz
              port: admin
            periodSeconds: 5
            failureThreshold: 60
          # Ready once a configuration is loaded (from the control plane or the backup).
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            periodSeconds: 5
            failureThreshold: 3
          # Alive while the process serves; waiting for the control plane is not a
          # reason to restart it.
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
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: config-backup
          emptyDir: {{}}
        - name: tmp
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
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {id}
  labels:
    app: {id}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: {id}
"#
    )
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
