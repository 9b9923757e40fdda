//! A configuration compiled for the request path.
//!
//! [`CompiledConfig::build`] turns a validated [`Configuration`] into everything a
//! request needs, precomputed: the routing table, one policy pipeline per operation (and
//! per product the operation is reachable through: the product scope changes the merged
//! policy), subscription keys hashed, backend URLs parsed, header names parsed. Nothing
//! is parsed per request. Metric series are not created here but on each API's first
//! request ([`crate::series`]); those of APIs a previous configuration served are
//! carried over ([`CompiledConfig::adopt_series`]). A build either succeeds completely or
//! returns the first error, naming where it is; it never yields half a configuration.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_model::{Configuration, Protocol};
use gatehouse_policy::{Pipeline, PolicyError};
use gatehouse_router::{ApiSpec, OperationSpec, Router};
use http::HeaderName;

use crate::metrics::{ConfigErrorReason, Metrics, OperationMetrics, SeriesRegistry};
use crate::series::{OperationKey, RequestSeries, SeriesKey, SeriesSlot};
use crate::subscriptions::{SubscriptionEntry, SubscriptionStore, resolve_scope};
use crate::tls::{
    BackendTlsBuilder, BackendTlsClient, CompiledServerTls, TlsSettings, compile_server_tls,
};

/// Why a valid document could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// A policy document failed to parse or compile; the error names origin, line,
    /// column and policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The routing table could not be built (ambiguous or malformed templates).
    #[error("{origin}: routing: {source}")]
    Routing {
        /// The configuration's origin.
        origin: String,
        /// The router's errors.
        #[source]
        source: gatehouse_router::BuildErrors,
    },
    /// A certificate, key or TLS setting could not be loaded.
    #[error("{origin}: {path}: {source}")]
    Tls {
        /// The configuration's origin.
        origin: String,
        /// Where in the document.
        path: String,
        /// What TLS refused.
        #[source]
        source: gatehouse_tls::TlsError,
    },
    /// A value that validation accepted could not be turned into its runtime form.
    #[error("{origin}: {path}: {message}")]
    Invalid {
        /// The configuration's origin.
        origin: String,
        /// Where in the document.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl CompileError {
    /// Closed reason for the error metric.
    #[must_use]
    pub const fn reason(&self) -> ConfigErrorReason {
        match self {
            Self::Policy(_) => ConfigErrorReason::Policy,
            Self::Routing { .. } => ConfigErrorReason::Routing,
            Self::Tls { .. } => ConfigErrorReason::Tls,
            Self::Invalid { .. } => ConfigErrorReason::Invalid,
        }
    }
}

/// Counts of what a configuration holds, for logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConfigSummary {
    /// APIs.
    pub apis: usize,
    /// Operations across all APIs.
    pub operations: usize,
    /// Subscriptions.
    pub subscriptions: usize,
}

/// A backend resolved for the request path.
#[derive(Debug, Clone)]
pub struct CompiledBackend {
    /// Base URL; the operation path is appended.
    pub url: url::Url,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Response-head timeout (a `forward-request timeout` overrides it).
    pub response_timeout: Duration,
    /// `Host` header sent to it: the URL's authority.
    pub host: http::HeaderValue,
    /// TLS client settings, for an `https://` URL.
    pub tls: Option<Arc<BackendTlsClient>>,
}

/// Pipelines of one operation per product index.
type ProductPipelines = Vec<(usize, Arc<Pipeline>)>;

/// A product's id and display name (its id when it has none), for the policies'
/// `context.Product`.
#[derive(Debug, Clone)]
pub struct ProductNames {
    /// Product id.
    pub id: Arc<str>,
    /// Display name.
    pub name: Arc<str>,
}

/// An operation with its pipelines.
#[derive(Debug)]
pub struct CompiledOperation {
    /// Operation id.
    pub id: Arc<str>,
    /// Pipeline when no product applies (API-scoped or all-APIs subscription, or an
    /// anonymous call).
    pub pipeline: Arc<Pipeline>,
    /// Pipelines for calls through each product containing the API, by product index.
    pub product_pipelines: ProductPipelines,
    /// Which series its requests count in.
    pub metrics: OperationMetrics,
    /// Its request counts once it has had traffic, with `--metrics-per-operation`.
    pub series: SeriesSlot,
}

impl CompiledOperation {
    /// The pipeline for a call through `product` (or none).
    #[must_use]
    pub fn pipeline_for(&self, product: Option<usize>) -> &Pipeline {
        product
            .and_then(|p| self.product_pipelines.iter().find(|(i, _)| *i == p))
            .map_or(&*self.pipeline, |(_, pipeline)| &**pipeline)
    }
}

/// An API ready to serve.
#[derive(Debug)]
pub struct CompiledApi {
    /// API id.
    pub id: Arc<str>,
    /// Default backend, if the API names one.
    pub backend: Option<CompiledBackend>,
    /// Whether a subscription key is required.
    pub subscription_required: bool,
    /// When the API is in an open product (no subscription required), that product:
    /// anonymous calls get its policy.
    pub open_product: Option<usize>,
    /// Header carrying the key.
    pub key_header: HeaderName,
    /// Query parameter carrying the key.
    pub key_query: String,
    /// Whether plain HTTP is accepted.
    pub allows_http: bool,
    /// Whether HTTPS is accepted.
    pub allows_https: bool,
    /// Products containing this API, by index.
    pub products: Vec<usize>,
    /// Operations, in document order (router indexes into this).
    pub operations: Vec<CompiledOperation>,
    /// Where requests matching the API but no operation count.
    pub unmatched_metrics: OperationMetrics,
    /// Its request counts once it has had traffic: all of them, or with
    /// `--metrics-per-operation` those matching no operation.
    pub series: SeriesSlot,
    /// Global and API scopes only: answers CORS preflights for paths whose operations
    /// do not declare `OPTIONS` (browsers send them anyway; APIM answers them from the
    /// API's `cors` policy).
    pub preflight: Arc<Pipeline>,
    /// A WebSocket API: its backend URL (`serviceUrl` or its backend's) is `ws://` or
    /// `wss://`. Valid WebSocket handshakes are relayed (see `proxy::websocket`).
    pub websocket: bool,
}

/// Everything the request path needs, built once per configuration.
#[derive(Debug)]
pub struct CompiledConfig {
    revision: u64,
    /// Host + path → API → operation.
    pub router: Router,
    /// APIs, by index.
    pub apis: Vec<CompiledApi>,
    /// Products, by index.
    pub products: Vec<ProductNames>,
    /// Named backends, for `set-backend-service backend-id` (their timeouts apply).
    pub backends: HashMap<Arc<str>, CompiledBackend>,
    /// Subscription keys.
    pub subscriptions: SubscriptionStore,
    /// Where requests matching no API count.
    pub unmatched_metrics: OperationMetrics,
    /// Their request counts, once there has been one.
    pub unmatched_series: SeriesSlot,
    /// Where series are taken from on first use.
    series: Arc<SeriesRegistry>,
    /// [`SeriesRegistry::created`] when this configuration took over the live series.
    adopted_at: u64,
    /// The HTTPS listener's certificates and client authentication; `None` when the
    /// configuration has no hostnames (TLS handshakes are refused).
    pub server_tls: Option<Arc<gatehouse_tls::ServerTls>>,
    /// TLS for `https://` URLs no backend entity describes (`serviceUrl`,
    /// `set-backend-service base-url`): the system's roots. An error when they cannot
    /// be loaded, reported by requests that need them.
    pub default_backend_tls: Result<Arc<BackendTlsClient>, Arc<str>>,
    /// When each TLS host name's certificate expires (Unix seconds), for metrics.
    pub certificate_expiry: Vec<(String, i64)>,
    /// This gateway's id and location (`context.Deployment`): the configuration's own
    /// gateway entry (a control plane's snapshot lists just the gateway it is for; a
    /// file, when it lists exactly one). Empty without one.
    pub deployment: Deployment,
    summary: ConfigSummary,
}

/// This gateway's id and location, for `context.Deployment`.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    /// The gateway's id.
    pub gateway_id: Arc<str>,
    /// Its `location`.
    pub region: Arc<str>,
}

impl Deployment {
    fn of(config: &Configuration) -> Self {
        match config.gateways.as_slice() {
            [gateway] => Self {
                gateway_id: Arc::from(gateway.id.as_str()),
                region: Arc::from(gateway.location.as_deref().unwrap_or_default()),
            },
            _ => Self::default(),
        }
    }

    /// The facts policies read.
    #[must_use]
    pub fn facts(&self) -> gatehouse_policy::DeploymentFacts<'_> {
        gatehouse_policy::DeploymentFacts {
            gateway_id: &self.gateway_id,
            region: &self.region,
        }
    }
}

impl CompiledConfig {
    /// A configuration with no APIs: every request gets 404.
    #[must_use]
    pub fn empty(metrics: &Metrics) -> Self {
        Self {
            revision: 0,
            router: Router::empty(),
            apis: Vec::new(),
            products: Vec::new(),
            backends: HashMap::new(),
            subscriptions: SubscriptionStore::default(),
            unmatched_metrics: OperationMetrics::unmatched(),
            unmatched_series: SeriesSlot::default(),
            series: metrics.series().clone(),
            adopted_at: 0,
            server_tls: None,
            default_backend_tls: Err(Arc::from("no configuration loaded")),
            certificate_expiry: Vec::new(),
            deployment: Deployment::default(),
            summary: ConfigSummary::default(),
        }
    }

    /// The revision this configuration was loaded as.
    #[must_use]
    pub const fn revision(&self) -> u64 {
        self.revision
    }

    /// What it holds.
    #[must_use]
    pub const fn summary(&self) -> ConfigSummary {
        self.summary
    }

    /// Compiles a validated configuration.
    ///
    /// # Errors
    ///
    /// The first [`CompileError`] found.
    pub fn build(
        config: &Configuration,
        origin: &str,
        revision: u64,
        metrics: &Metrics,
        tls: &TlsSettings,
    ) -> Result<Self, CompileError> {
        let api_index: HashMap<&str, usize> = config
            .apis
            .iter()
            .enumerate()
            .map(|(i, api)| (api.id.as_str(), i))
            .collect();
        let product_index: HashMap<&str, usize> = config
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id.as_str(), i))
            .collect();

        let CompiledServerTls {
            server: server_tls,
            expiry: certificate_expiry,
        } = compile_server_tls(config, origin, tls)?;
        let mut backend_tls = BackendTlsBuilder::new(config, origin, tls);
        let default_backend_tls = backend_tls
            .client(
                "default backend TLS",
                &gatehouse_model::BackendTls::default(),
            )
            .map_err(|error| Arc::from(error.to_string()));
        let mut backends = HashMap::new();
        for backend in &config.backends {
            let path = format!("backends[{}].url", backend.id);
            let url = parse_backend_url(origin, &path, &backend.url)?;
            let tls = if url.scheme() == "https" {
                Some(backend_tls.client(&format!("backends[{}]", backend.id), &backend.tls)?)
            } else {
                None
            };
            backends.insert(
                backend.id.as_str(),
                CompiledBackend {
                    host: host_header(origin, &path, &url)?,
                    url,
                    connect_timeout: backend.connect_timeout,
                    response_timeout: backend.response_timeout,
                    tls,
                },
            );
        }

        let mut api_products: Vec<Vec<usize>> = vec![Vec::new(); config.apis.len()];
        for (p, product) in config.products.iter().enumerate() {
            for api in &product.apis {
                if let Some(&a) = api_index.get(api.as_str()) {
                    api_products[a].push(p);
                }
            }
        }

        // Every pipeline, compiled by the same walk the control plane validates with.
        let mut preflights: Vec<Option<Arc<Pipeline>>> = vec![None; config.apis.len()];
        let mut pipelines: Vec<Vec<Option<Arc<Pipeline>>>> = config
            .apis
            .iter()
            .map(|api| vec![None; api.operations.len()])
            .collect();
        let mut product_pipelines: Vec<Vec<ProductPipelines>> = config
            .apis
            .iter()
            .map(|api| vec![Vec::new(); api.operations.len()])
            .collect();
        gatehouse_policy::compile_configuration(config, origin, |key, pipeline| {
            let pipeline = Arc::new(pipeline);
            match (key.operation, key.product) {
                (None, _) => preflights[key.api] = Some(pipeline),
                (Some(op), None) => pipelines[key.api][op] = Some(pipeline),
                (Some(op), Some(product)) => {
                    product_pipelines[key.api][op].push((product, pipeline));
                }
            }
        })?;

        let mut apis = Vec::with_capacity(config.apis.len());
        let mut operation_count = 0;
        for (a, api) in config.apis.iter().enumerate() {
            let api_path = format!("apis[{}]", api.id);
            let backend = match (&api.service_url, &api.backend_id) {
                (Some(url), _) => {
                    let path = format!("{api_path}.serviceUrl");
                    let url = parse_backend_url(origin, &path, url)?;
                    let tls = if url.scheme() == "https" {
                        Some(backend_tls.client(&path, &gatehouse_model::BackendTls::default())?)
                    } else {
                        None
                    };
                    Some(CompiledBackend {
                        host: host_header(origin, &path, &url)?,
                        url,
                        connect_timeout: gatehouse_model::DEFAULT_CONNECT_TIMEOUT,
                        response_timeout: gatehouse_model::DEFAULT_RESPONSE_TIMEOUT,
                        tls,
                    })
                }
                (None, Some(id)) => backends.get(id.as_str()).cloned(),
                (None, None) => None,
            };
            let missing = |what: &str| CompileError::Invalid {
                origin: origin.to_owned(),
                path: api_path.clone(),
                message: format!("internal: no {what} pipeline was compiled"),
            };
            let preflight = preflights[a].take().ok_or_else(|| missing("API-level"))?;
            let mut operations = Vec::with_capacity(api.operations.len());
            for (o, operation) in api.operations.iter().enumerate() {
                operations.push(CompiledOperation {
                    id: operation.id.as_str().into(),
                    pipeline: pipelines[a][o].take().ok_or_else(|| missing("operation"))?,
                    product_pipelines: std::mem::take(&mut product_pipelines[a][o]),
                    metrics: OperationMetrics::operation(a, o),
                    series: SeriesSlot::default(),
                });
            }
            operation_count += operations.len();
            let key_header =
                HeaderName::from_bytes(api.subscription_key_parameter_names.header.as_bytes())
                    .map_err(|e| CompileError::Invalid {
                        origin: origin.to_owned(),
                        path: format!("{api_path}.subscriptionKeyParameterNames.header"),
                        message: e.to_string(),
                    })?;
            let open_product = api_products[a]
                .iter()
                .copied()
                .find(|&p| !config.products[p].subscription_required);
            apis.push(CompiledApi {
                id: api.id.as_str().into(),
                backend,
                subscription_required: api.subscription_required && open_product.is_none(),
                open_product,
                key_header,
                key_query: api.subscription_key_parameter_names.query.clone(),
                allows_http: api.protocols.contains(&Protocol::Http),
                allows_https: api.protocols.contains(&Protocol::Https),
                products: api_products[a].clone(),
                operations,
                unmatched_metrics: OperationMetrics::api(a),
                series: SeriesSlot::default(),
                preflight,
                websocket: crate::proxy::websocket::is_websocket_api(config, api),
            });
        }

        let specs = config.apis.iter().enumerate().map(|(index, api)| ApiSpec {
            index,
            id: &api.id,
            path: &api.path,
            hostnames: api.hostnames.iter().map(String::as_str).collect(),
            operations: api
                .operations
                .iter()
                .enumerate()
                .map(|(index, op)| OperationSpec {
                    index,
                    id: &op.id,
                    method: &op.method,
                    url_template: &op.url_template,
                })
                .collect(),
        });
        let router = Router::build(specs).map_err(|source| CompileError::Routing {
            origin: origin.to_owned(),
            source,
        })?;

        let mut subscriptions = SubscriptionStore::default();
        for subscription in &config.subscriptions {
            let Some(scope) = resolve_scope(&subscription.scope, &api_index, &product_index) else {
                // Validation rejects dangling scopes; a scope that still fails to
                // resolve is an internal inconsistency worth failing loudly on.
                return Err(CompileError::Invalid {
                    origin: origin.to_owned(),
                    path: format!("subscriptions[{}].scope", subscription.id),
                    message: format!("unknown scope `{}`", subscription.scope),
                });
            };
            let entry = Arc::new(SubscriptionEntry {
                id: subscription.id.as_str().into(),
                name: subscription
                    .display_name
                    .as_deref()
                    .unwrap_or(&subscription.id)
                    .into(),
                scope,
                state: subscription.state,
            });
            let mut keys = vec![subscription.primary_key.as_str()];
            keys.extend(subscription.secondary_key.as_deref());
            subscriptions.insert(&keys, &entry);
        }

        let compiled = Self {
            revision,
            router,
            apis,
            products: config
                .products
                .iter()
                .map(|p| ProductNames {
                    id: p.id.as_str().into(),
                    name: p.display_name.as_deref().unwrap_or(&p.id).into(),
                })
                .collect(),
            backends: backends
                .into_iter()
                .map(|(id, backend)| (Arc::from(id), backend))
                .collect(),
            subscriptions,
            unmatched_metrics: OperationMetrics::unmatched(),
            unmatched_series: SeriesSlot::default(),
            series: metrics.series().clone(),
            // Read before the series are: one created meanwhile is adopted later.
            adopted_at: metrics.series().created(),
            server_tls,
            default_backend_tls,
            certificate_expiry,
            deployment: Deployment::of(config),
            summary: ConfigSummary {
                apis: config.apis.len(),
                operations: operation_count,
                subscriptions: config.subscriptions.len(),
            },
        };
        // The configuration being served is alive still: its series are found.
        compiled.adopt_series_with(&api_index);
        Ok(compiled)
    }

    /// Takes over the series of the APIs (and operations) it shares with the
    /// configurations served before, so that their counters carry on. [`Self::build`]
    /// does it; call it again once this configuration is served and the previous one is
    /// still held, for series the previous one created meanwhile.
    pub fn adopt_series(&self) {
        // Usually none was: then there is nothing to look up in 100,000 APIs.
        if self.series.created() == self.adopted_at {
            return;
        }
        let api_index: HashMap<&str, usize> = self
            .apis
            .iter()
            .enumerate()
            .map(|(i, api)| (&*api.id, i))
            .collect();
        self.adopt_series_with(&api_index);
    }

    fn adopt_series_with(&self, api_index: &HashMap<&str, usize>) {
        for series in self.series.live() {
            let key = series.key();
            let Some(id) = &key.api else {
                self.unmatched_series.adopt(series);
                continue;
            };
            let Some(api) = api_index.get(&**id).map(|&a| &self.apis[a]) else {
                continue;
            };
            match &key.operation {
                OperationKey::Api | OperationKey::Unmatched => api.series.adopt(series),
                OperationKey::Named(operation) => {
                    if let Some(op) = api.operations.iter().find(|op| op.id == *operation) {
                        op.series.adopt(series);
                    }
                }
            }
        }
    }

    /// The series a request counts in: its operation's with `--metrics-per-operation`,
    /// else its API's, else that of requests matching no API. Created on first use.
    pub(crate) fn request_series(&self, target: &OperationMetrics) -> &RequestSeries {
        let registry = &*self.series;
        let per_operation = registry.per_operation();
        let Some(api) = self.apis.get(target.api) else {
            return self
                .unmatched_series
                .get_or_create(registry, || SeriesKey::no_api(per_operation));
        };
        if per_operation && let Some(op) = api.operations.get(target.operation) {
            return op
                .series
                .get_or_create(registry, || SeriesKey::operation(&api.id, &op.id));
        }
        api.series
            .get_or_create(registry, || SeriesKey::api(&api.id, per_operation))
    }
}

/// The `Host` header for a backend URL: host, and port when it is not the scheme's
/// default.
fn host_header(
    origin: &str,
    path: &str,
    url: &url::Url,
) -> Result<http::HeaderValue, CompileError> {
    let host = url.host_str().unwrap_or_default();
    let text = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    http::HeaderValue::from_str(&text).map_err(|e| CompileError::Invalid {
        origin: origin.to_owned(),
        path: path.to_owned(),
        message: format!("cannot use `{text}` as a Host header: {e}"),
    })
}

fn parse_backend_url(origin: &str, path: &str, text: &str) -> Result<url::Url, CompileError> {
    let mut url = url::Url::parse(text).map_err(|e| CompileError::Invalid {
        origin: origin.to_owned(),
        path: path.to_owned(),
        message: format!("`{text}` is not a valid URL: {e}"),
    })?;
    // A WebSocket backend is reached like any other: its handshake is an HTTP/1.1
    // request (`ws` is `http`, `wss` is `https`, same default ports).
    crate::proxy::websocket::to_http_scheme(&mut url);
    Ok(url)
}

#[cfg(test)]
#[path = "compiled_tests.rs"]
mod tests;
