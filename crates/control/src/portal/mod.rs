//! The web portal at `/portal/`: gateways (list, create, edit, delete, deployment,
//! live status), APIs with their policies (edited with validation as you type),
//! products, subscriptions, named values and certificates. Contract: `docs/portal.md`.
//!
//! Server-rendered HTML from askama templates (`templates/portal/`, checked when the
//! crate compiles) with htmx for the live parts, everything embedded in the binary.
//! Every action goes through the same functions as the management API
//! ([`crate::management`], [`crate::deployment`], [`crate::status`]): validation,
//! tokens and manifests have one implementation.
//!
//! Security: sign-in exchanges the admin token for a server-side session
//! ([`session`]); the cookie is `HttpOnly; SameSite=Strict; Path=/portal` (`Secure`
//! over HTTPS); every request that is not a GET carries the session's CSRF token (a
//! form field or the `X-CSRF-Token` header htmx sends) or gets 403; every response is
//! `no-store` with a self-only Content-Security-Policy (no inline script or style),
//! `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`. Secrets (subscription
//! keys, gateway tokens) appear only on the page that asked for them; secret named
//! values and private keys never.
//!
//! Not here: users other than the admin token, sessions shared between replicas.

mod apis;
mod catalog;
mod gateways;
mod highlight;
pub mod session;

use std::sync::LazyLock;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiError;
use session::ActiveSession;

/// Where the portal is served.
pub const PREFIX: &str = "/portal";

/// The session cookie's name.
pub const COOKIE: &str = "gatehouse_portal";

/// The header htmx requests carry the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field forms carry the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// Largest form body accepted (a policy document is the largest thing sent).
pub const MAX_FORM_BYTES: usize = crate::MAX_BODY_BYTES;

/// The Content-Security-Policy of every page: this origin only, no inline script or
/// style, no framing, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Marks requests that came over HTTPS (inserted by [`crate::tls::serve_tls`]): the
/// session cookie is then `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// The portal's routes (merged into [`crate::app`]).
pub fn routes(state: AppState) -> Router<AppState> {
    let signed_in = Router::new()
        .route(PREFIX, get(|| async { Redirect::to("/portal/gateways") }))
        .route(
            "/portal/",
            get(|| async { Redirect::to("/portal/gateways") }),
        )
        .route("/portal/sign-out", post(sign_out))
        .merge(gateways::routes())
        .merge(apis::routes())
        .merge(catalog::routes())
        .route("/portal/{*rest}", axum::routing::any(not_found))
        .route_layer(middleware::from_fn_with_state(state, require_session));
    Router::new()
        .route("/portal/sign-in", get(sign_in_page).post(sign_in))
        .route("/portal/assets/{name}", get(asset))
        .merge(signed_in)
        .layer(middleware::from_fn(security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
}

// === errors ===

/// Why a portal request failed.
#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    /// What the management API would have answered.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A template did not render (a bug).
    #[error("template: {0}")]
    Render(#[from] askama::Error),
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            Self::Api(ApiError::Internal(source)) => {
                tracing::error!(error = %source, "portal request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the control plane's log)".to_owned(),
                )
            }
            Self::Api(error) => (error.status(), error.to_string()),
            Self::Render(error) => {
                tracing::error!(error = %error, "portal page did not render");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the control plane's log)".to_owned(),
                )
            }
        };
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, page.message).into_response(),
        }
    }
}

/// What a portal handler returns.
pub(crate) type PortalResult = Result<Response, PortalError>;

/// HTML with its content type (axum's `Html` needs no feature, but spelled out here).
pub(crate) struct Html(pub(crate) String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            self.0,
        )
            .into_response()
    }
}

/// Renders a template as a page.
pub(crate) fn render(template: &impl Template) -> PortalResult {
    Ok(Html(template.render()?).into_response())
}

/// Renders a template with a status other than 200.
pub(crate) fn render_with(status: StatusCode, template: &impl Template) -> PortalResult {
    Ok((status, Html(template.render()?)).into_response())
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage {
    status: u16,
    reason: &'static str,
    message: String,
}

// === forms ===

/// A submitted form's fields, in order (repeated names kept: checkboxes).
pub(crate) struct Fields(Vec<(String, String)>);

impl Fields {
    pub(crate) fn parse(bytes: &[u8]) -> Self {
        Self(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub(crate) fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
            .unwrap_or_default()
    }

    /// The first value of `name`, untrimmed (a policy document).
    pub(crate) fn raw(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of `name`.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// Any other path under `/portal/`: an HTML 404 with the portal's headers (not the
/// management API's JSON one).
async fn not_found() -> PortalError {
    PortalError::Api(ApiError::NotFound {
        kind: "page",
        id: "this address".to_owned(),
    })
}

// === what every page shows ===

/// The parts of the layout every page fills: title, active section, CSRF token.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// The page's title (also the `<h1>`).
    pub(crate) title: String,
    /// Which navigation entry is current.
    pub(crate) section: &'static str,
    /// The session's CSRF token, for forms and htmx.
    pub(crate) csrf: String,
    /// A one-line notice after an action ("Gateway created.").
    pub(crate) notice: Option<String>,
}

impl Page {
    pub(crate) fn new(session: &ActiveSession, section: &'static str, title: String) -> Self {
        Self {
            title,
            section,
            csrf: session.csrf.clone(),
            notice: None,
        }
    }

    pub(crate) fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }

    /// The asset URL with a content hash, so a new build is never served a stale copy.
    pub(crate) fn asset(&self, name: &str) -> String {
        asset_url(name)
    }

    /// The navigation entries: (section, label, URL).
    pub(crate) fn nav(&self) -> &'static [(&'static str, &'static str, &'static str)] {
        &[
            ("gateways", "Gateways", "/portal/gateways"),
            ("apis", "APIs", "/portal/apis"),
            ("products", "Products", "/portal/products"),
            ("subscriptions", "Subscriptions", "/portal/subscriptions"),
            ("named-values", "Named values", "/portal/named-values"),
            ("certificates", "Certificates", "/portal/certificates"),
        ]
    }
}

/// A notice carried through a redirect in the query string (`?done=created`): a fixed
/// vocabulary, never user input echoed.
#[derive(Debug, Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
}

impl Done {
    pub(crate) fn notice(&self) -> Option<String> {
        let text = match self.done.as_deref()? {
            "created" => "Created.",
            "saved" => "Saved.",
            "deleted" => "Deleted.",
            "suspended" => "Subscription suspended: its keys are refused until it is activated.",
            "activated" => "Subscription activated.",
            "regenerated-primary" => {
                "Primary key regenerated: tokens and keys made with the old one no longer work."
            }
            "regenerated-secondary" => {
                "Secondary key regenerated: tokens and keys made with the old one no longer work."
            }
            _ => return None,
        };
        Some(text.to_owned())
    }
}

// === sign-in ===

#[derive(Template)]
#[template(path = "portal/sign_in.html")]
struct SignInPage {
    error: Option<&'static str>,
    css: String,
}

async fn sign_in_page(State(state): State<AppState>, headers: HeaderMap) -> PortalResult {
    if session_of(&state, &headers).await.is_some() {
        return Ok(Redirect::to("/portal/gateways").into_response());
    }
    render(&SignInPage {
        error: None,
        css: asset_url("portal.css"),
    })
}

/// The sign-in form. Its field is `token`; nothing else is read, so nothing else can
/// end up in a log.
#[derive(Deserialize)]
struct SignIn {
    token: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignIn(<redacted>)")
    }
}

async fn sign_in(
    State(state): State<AppState>,
    https: Option<axum::Extension<Https>>,
    axum::Form(form): axum::Form<SignIn>,
) -> PortalResult {
    if !state.admin.matches(form.token.trim()) {
        tracing::info!("portal sign-in refused: not the admin token");
        return render_with(
            StatusCode::UNAUTHORIZED,
            &SignInPage {
                error: Some(
                    "That is not the admin token. It is in <data-dir>/admin-token (./.gatehouse/admin-token for gatehouse dev).",
                ),
                css: asset_url("portal.css"),
            },
        );
    }
    let (id, _) = state.portal.create().await;
    tracing::info!("portal sign-in");
    let secure = if https.is_some() { "; Secure" } else { "" };
    // No Max-Age: the browser drops it when it closes, and the server ends the session
    // after its idle timeout whatever the browser keeps.
    let cookie = format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path={PREFIX}{secure}");
    let mut response = Redirect::to("/portal/gateways").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

async fn sign_out(
    State(state): State<AppState>,
    https: Option<axum::Extension<Https>>,
    axum::Extension(session): axum::Extension<ActiveSession>,
) -> Response {
    state.portal.end(&session).await;
    tracing::info!("portal sign-out");
    let secure = if https.is_some() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path={PREFIX}; Max-Age=0{secure}");
    let mut response = Redirect::to("/portal/sign-in").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The session the request's cookie names, if valid; marked used unless the request
/// is a page refreshing itself.
async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<ActiveSession> {
    let id = cookie_value(headers, COOKIE)?;
    if is_polling(headers) {
        state.portal.peek(&id).await
    } else {
        state.portal.touch(&id).await
    }
}

/// The elements that refresh themselves (`hx-trigger="every …"`): their requests are
/// not activity, so a tab left open on them does not keep its session alive.
const POLLING_ELEMENTS: [&str; 2] = ["instances", "gateway-list"];

/// Whether htmx sent this request for one of the [`POLLING_ELEMENTS`] (htmx names the
/// triggering element's id in `HX-Trigger`).
fn is_polling(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request")
        && headers
            .get("hx-trigger")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|id| POLLING_ELEMENTS.contains(&id))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// Lets a request through only with a valid session (else to the sign-in page) and,
/// unless it is a GET or HEAD, with that session's CSRF token (else 403). The session
/// goes into the request's extensions for the handler.
async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(session) = session_of(&state, request.headers()).await else {
        return to_sign_in(request.headers());
    };
    let request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        match check_csrf(&session, request).await {
            Ok(request) => request,
            Err(response) => return response,
        }
    };
    let mut request = request;
    request.extensions_mut().insert(session);
    next.run(request).await
}

/// Unauthenticated: a page goes to the sign-in page; an htmx request gets 401 with
/// `HX-Redirect`, so the whole page goes there rather than a fragment of it.
fn to_sign_in(headers: &HeaderMap) -> Response {
    if headers.contains_key("hx-request") {
        return (
            StatusCode::UNAUTHORIZED,
            [("hx-redirect", "/portal/sign-in")],
            "sign in again",
        )
            .into_response();
    }
    Redirect::to("/portal/sign-in").into_response()
}

/// Checks the CSRF token of a request that changes something: the `X-CSRF-Token`
/// header, or the `csrf` field of a form body (read up to [`MAX_FORM_BYTES`] and put
/// back for the handler).
async fn check_csrf(session: &ActiveSession, request: Request) -> Result<Request, Response> {
    // Security: a request without the session's token is refused, whatever it does.
    let forbidden = || {
        (
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again",
        )
            .into_response()
    };
    if let Some(value) = request.headers().get(CSRF_HEADER) {
        let presented = value.to_str().unwrap_or_default();
        return if session.csrf_matches(presented) {
            Ok(request)
        } else {
            Err(forbidden())
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
    let presented = url::form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == CSRF_FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if !session.csrf_matches(&presented) {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// The headers of every portal response: no caching (unless the handler chose, as for
/// assets), the Content-Security-Policy, no framing, no referrer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

// === assets ===

/// A file served under `/portal/assets/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

/// Everything the pages load: htmx (vendored, 0BSD, licence beside it), the portal's
/// script and style sheet.
const ASSETS: [Asset; 4] = [
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/portal/htmx.min.js"),
    },
    Asset {
        name: "htmx.LICENSE",
        content_type: "text/plain; charset=utf-8",
        bytes: include_bytes!("../../assets/portal/htmx.LICENSE"),
    },
    Asset {
        name: "portal.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/portal/portal.js"),
    },
    Asset {
        name: "portal.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/portal/portal.css"),
    },
];

/// Each asset's URL with a digest of its bytes, computed once.
static ASSET_URLS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    use sha2::{Digest, Sha256};
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.bytes);
            (
                asset.name,
                format!(
                    "/portal/assets/{}?v={}",
                    asset.name,
                    hex::encode(&digest[..6])
                ),
            )
        })
        .collect()
});

fn asset_url(name: &str) -> String {
    ASSET_URLS
        .iter()
        .find(|(asset, _)| *asset == name)
        .map_or_else(|| format!("/portal/assets/{name}"), |(_, url)| url.clone())
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            // The URL carries the content's digest: a new build has new URLs.
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
