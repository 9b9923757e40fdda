//! The entities of one gateway configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything one gateway serves: the declarative document a user writes for
/// `gatehouse gateway --config`, and what the control plane holds for a gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Configuration {
    /// Global policy document (`<policies>` XML), applied to every API. `<base/>` in an
    /// API, product or operation policy marks where this one runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Named values, referenced as `{{name}}` in policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub named_values: Vec<NamedValue>,
    /// Policy fragments (`<fragment>` documents), included with
    /// `<include-fragment fragment-id="..."/>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fragments: Vec<PolicyFragment>,
    /// Backends that APIs and `set-backend-service backend-id` can refer to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<Backend>,
    /// The APIs served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<Api>,
    /// Products group APIs for subscriptions and carry their own policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<Product>,
    /// Subscriptions and their keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<Subscription>,
    /// TLS certificates (and their private keys) that hostnames serve.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Host names the gateway answers on with TLS, and the certificate each presents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<Hostname>,
    /// Gateways and the APIs assigned to each (control plane only: a gateway's own
    /// snapshot, see [`Configuration::for_gateway`], never lists them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateways: Vec<Gateway>,
}

/// An API: a URL suffix (and optionally hostnames) under which a set of operations is
/// served from one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Api {
    /// Unique id (letters, digits, `-`, `_`, `.`).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// URL suffix under which the API is served, without leading or trailing `/`
    /// (`echo`, `v1/users`). Empty serves the API at the root.
    #[serde(default)]
    pub path: String,
    /// Host names this API answers on (exact, or `*.example.com`). Empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// Protocols the API accepts from clients. Default: both.
    #[serde(default = "default_protocols")]
    pub protocols: Vec<Protocol>,
    /// Backend base URL requests are forwarded to (`http://orders.internal:8080/api`).
    /// Exactly one of `serviceUrl` and `backendId` is needed unless every operation's
    /// policy sets the backend itself. A `ws://` or `wss://` URL makes this a
    /// WebSocket API: WebSocket handshakes are passed to the backend and, once it
    /// accepts, the connection is relayed both ways (docs/operations.md, "WebSocket").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_url: Option<String>,
    /// Id of a [`Backend`] to forward to, instead of `serviceUrl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_id: Option<String>,
    /// Whether a subscription key is required (APIM's default: yes).
    #[serde(default = "default_true")]
    pub subscription_required: bool,
    /// Where the subscription key is read from.
    #[serde(default)]
    pub subscription_key_parameter_names: SubscriptionKeyParameterNames,
    /// API-scope policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The operations of this API. A request matching no operation gets 404.
    #[serde(default)]
    pub operations: Vec<Operation>,
}

/// A protocol clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Cleartext HTTP/1.1 or h2c. `ws` is read as `http`: APIM lists a WebSocket API's
    /// protocols as `ws`/`wss`, and its handshake is an HTTP request on the same port.
    #[serde(alias = "ws")]
    Http,
    /// HTTP over TLS (`wss` is read as `https`).
    #[serde(alias = "wss")]
    Https,
}

fn default_protocols() -> Vec<Protocol> {
    vec![Protocol::Http, Protocol::Https]
}

const fn default_true() -> bool {
    true
}

/// Header and query parameter names that carry the subscription key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionKeyParameterNames {
    /// Request header name (default `Ocp-Apim-Subscription-Key`).
    #[serde(default = "default_key_header")]
    pub header: String,
    /// Query parameter name (default `subscription-key`).
    #[serde(default = "default_key_query")]
    pub query: String,
}

/// APIM's default subscription key header.
pub const DEFAULT_SUBSCRIPTION_KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
/// APIM's default subscription key query parameter.
pub const DEFAULT_SUBSCRIPTION_KEY_QUERY: &str = "subscription-key";

fn default_key_header() -> String {
    DEFAULT_SUBSCRIPTION_KEY_HEADER.to_owned()
}

fn default_key_query() -> String {
    DEFAULT_SUBSCRIPTION_KEY_QUERY.to_owned()
}

impl Default for SubscriptionKeyParameterNames {
    fn default() -> Self {
        Self {
            header: default_key_header(),
            query: default_key_query(),
        }
    }
}

/// One operation of an API: an HTTP method and a URL template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Operation {
    /// Id, unique within the API.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// HTTP method (`GET`, `POST`, …) or `*` for any.
    pub method: String,
    /// URL template relative to the API path: `/users/{id}`, `/files/{*path}`, `/*`.
    pub url_template: String,
    /// Operation-scope policy document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Documented responses; `mock-response` answers with their examples.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<OperationResponse>,
}

/// A documented response of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationResponse {
    /// HTTP status code.
    pub status_code: u16,
    /// Representations by content type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub representations: Vec<Representation>,
}

/// One representation of a documented response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Representation {
    /// Media type, e.g. `application/json`.
    pub content_type: String,
    /// Example body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
}

/// A policy fragment: a `<fragment>` document of policies that any policy can include
/// with `<include-fragment fragment-id="<id>"/>`, as in APIM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyFragment {
    /// Unique id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The `<fragment>...</fragment>` XML.
    pub value: String,
}

/// A backend service, referenced by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backend {
    /// Unique id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// Base URL (`http://` or `https://`; `ws://` or `wss://` for a WebSocket backend).
    pub url: String,
    /// Time allowed to establish a connection (default 5s).
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "5s"))]
    pub connect_timeout: Duration,
    /// Time allowed between sending the request and receiving the response head
    /// (default 300s, APIM's `forward-request` default). `forward-request timeout`
    /// overrides it per request.
    #[serde(default = "default_response_timeout", with = "humantime_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "300s"))]
    pub response_timeout: Duration,
    /// TLS to an `https://` backend: which CAs to trust, a client certificate to
    /// present, the SNI name. Absent: the system's trusted roots, no client
    /// certificate, SNI from the URL's host.
    #[serde(default, skip_serializing_if = "BackendTls::is_default")]
    pub tls: BackendTls,
}

/// How the gateway connects to an `https://` backend (APIM's backend `tls` and
/// `credentials.certificateIds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTls {
    /// Verify that the backend's certificate chains to a trusted CA (default `true`).
    /// `false` accepts any certificate: only for tests and migrations, and logged at
    /// warning level every time a configuration with it is loaded.
    #[serde(default = "default_true")]
    pub validate_certificate_chain: bool,
    /// Verify that the backend's certificate names the host (or `serverName`) (default
    /// `true`). `false` is logged at warning level on every load, like the chain check.
    #[serde(default = "default_true")]
    pub validate_certificate_name: bool,
    /// Ids of [`Certificate`]s trusted as CAs for this backend, instead of the system's
    /// roots. Empty: the system's roots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificate_ids: Vec<String>,
    /// Id of a [`Certificate`] (with its private key) presented to the backend as a
    /// client certificate (mutual TLS; APIM's `authentication-certificate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_id: Option<String>,
    /// The name sent as SNI and checked against the backend's certificate, when it is
    /// not the URL's host (a backend reached by IP address, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

impl Default for BackendTls {
    fn default() -> Self {
        Self {
            validate_certificate_chain: true,
            validate_certificate_name: true,
            ca_certificate_ids: Vec::new(),
            client_certificate_id: None,
            server_name: None,
        }
    }
}

impl BackendTls {
    /// Whether these are the defaults (so they are left out when serialised).
    #[must_use]
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Default backend connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default backend response timeout (APIM's `forward-request` default).
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(300);

const fn default_connect_timeout() -> Duration {
    DEFAULT_CONNECT_TIMEOUT
}

const fn default_response_timeout() -> Duration {
    DEFAULT_RESPONSE_TIMEOUT
}

/// A product: a set of APIs offered together, with its own policy and subscriptions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Product {
    /// Unique id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Ids of the APIs in this product.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Whether calls through this product need a subscription key (default: yes).
    #[serde(default = "default_true")]
    pub subscription_required: bool,
    /// Product-scope policy document; runs for requests made with a subscription to
    /// this product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A subscription: a pair of keys granting access to a scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subscription {
    /// Unique id.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// What the keys give access to, in APIM's notation: `/products/{id}`,
    /// `/apis/{id}`, or `/apis` for every API.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = String, pattern = r"^/(apis|(apis|products)/[^/]+)/*$", example = "/products/starter")
    )]
    pub scope: SubscriptionScope,
    /// Primary key.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub primary_key: String,
    /// Secondary key (for rotation without downtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 256))]
    pub secondary_key: Option<String>,
    /// Active or suspended.
    #[serde(default)]
    pub state: SubscriptionState,
}

/// What a subscription grants access to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SubscriptionScope {
    /// Every API of one product.
    Product(String),
    /// One API.
    Api(String),
    /// Every API.
    AllApis,
}

impl SubscriptionScope {
    /// Parses APIM's scope notation.
    ///
    /// # Errors
    ///
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim_end_matches('/');
        if trimmed == "/apis" {
            return Ok(Self::AllApis);
        }
        let (kind, id) = trimmed
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .ok_or_else(|| scope_error(text))?;
        if id.is_empty() || id.contains('/') {
            return Err(scope_error(text));
        }
        match kind {
            "products" => Ok(Self::Product(id.to_owned())),
            "apis" => Ok(Self::Api(id.to_owned())),
            _ => Err(scope_error(text)),
        }
    }
}

fn scope_error(text: &str) -> String {
    format!(
        "invalid subscription scope `{text}`: expected `/products/<id>`, `/apis/<id>` or `/apis`"
    )
}

impl std::fmt::Display for SubscriptionScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Product(id) => write!(f, "/products/{id}"),
            Self::Api(id) => write!(f, "/apis/{id}"),
            Self::AllApis => f.write_str("/apis"),
        }
    }
}

impl Serialize for SubscriptionScope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SubscriptionScope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Whether a subscription's keys are accepted: APIM's subscription states. Only an
/// `active` subscription's keys are; those of every other state are recognised but
/// refused with 403 and APIM's message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionState {
    /// Keys are accepted.
    #[default]
    Active,
    /// Suspended by an administrator.
    Suspended,
    /// Requested, not yet approved.
    Submitted,
    /// Request refused.
    Rejected,
    /// Cancelled by its owner or an administrator.
    Cancelled,
    /// Past its end date.
    Expired,
}

impl SubscriptionState {
    /// The state as APIM spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Submitted => "submitted",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// A named value, substituted for `{{name}}` in policy documents when they are compiled.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedValue {
    /// Name (letters, digits, `-`, `_`, `.`), case-insensitive as in APIM.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub name: String,
    /// The value.
    pub value: String,
    /// Secret values are never logged or shown.
    #[serde(default)]
    pub secret: bool,
}

impl std::fmt::Debug for NamedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A secret must not leak through `{:?}` in a log line or a panic message.
        let value: &dyn std::fmt::Debug = if self.secret {
            &"<secret>"
        } else {
            &self.value
        };
        f.debug_struct("NamedValue")
            .field("name", &self.name)
            .field("value", value)
            .field("secret", &self.secret)
            .finish()
    }
}

/// A gateway: a named deployment of the data plane (one or more instances sharing one
/// token) and the APIs it serves. A gateway serves only the APIs assigned to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gateway {
    /// Unique id: lowercase letters, digits and `-`, starting with a letter (at most
    /// 63); it is the `<gatewayId>` of its tokens and names its Kubernetes objects.
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
    )]
    pub id: String,
    /// Human-readable name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Where the gateway runs (free text, e.g. `eu-west datacenter`), as in APIM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Ids of the APIs assigned to this gateway.
    #[serde(default)]
    pub apis: Vec<String>,
    /// Free-text description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A TLS certificate (PEM, leaf first, then any intermediates) and, to serve it, its
/// private key (PEM).
///
/// Validation checks the PEM shape only (markers, labels, base64); the gateway's TLS
/// stack checks the contents when it loads them. `Debug` never prints the private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// Unique id (letters, digits, `-`, `_`, `.`).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9._-]{1,256}$"))]
    pub id: String,
    /// One or more `-----BEGIN CERTIFICATE-----` blocks: the leaf first, then its
    /// intermediates.
    pub certificate_pem: String,
    /// The leaf's private key: one `PRIVATE KEY` (PKCS #8), `RSA PRIVATE KEY` or
    /// `EC PRIVATE KEY` block, unencrypted. Needed when a hostname serves this
    /// certificate; absent for a certificate only used to verify peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
    /// Whether this is a CA trusted to sign client certificates (APIM's CA
    /// certificates): hostnames that ask for a client certificate check it against
    /// these, and so does `validate-client-certificate validate-trust`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_ca: bool,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key must not leak through `{:?}` in a log line or a panic message.
        let key = self.private_key_pem.as_ref().map(|_| "<secret>");
        f.debug_struct("Certificate")
            .field("id", &self.id)
            .field("certificate_pem", &self.certificate_pem)
            .field("private_key_pem", &key)
            .field("client_ca", &self.client_ca)
            .finish()
    }
}

/// A host name the gateway serves over TLS, and the certificate it presents for it (by
/// SNI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hostname {
    /// The host name (`api.example.com`), or a wildcard for one label
    /// (`*.example.com`); unique, case-insensitively. It is this entity's id.
    pub hostname: String,
    /// Id of the [`Certificate`] presented for this host name; it must have a private
    /// key. Absent: the gateway's default certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_id: Option<String>,
    /// Whether the gateway asks clients for a certificate during the handshake on this
    /// host name (APIM's `negotiateClientCertificate`; needed by `validate-client-certificate`).
    /// A client that sends none is still served.
    #[serde(default)]
    pub negotiate_client_certificate: bool,
    /// Whether a client certificate is required on this host name: a client that
    /// sends none, or one that does not chain to a `clientCa` certificate (when any is
    /// configured), fails the handshake.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_client_certificate: bool,
    /// Whether this host name's certificate is presented when the client sends no SNI
    /// or a name no hostname matches (APIM's `defaultSslBinding`). At most one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_ssl_binding: bool,
}
