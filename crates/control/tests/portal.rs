//! The web portal over real HTTP on 127.0.0.1: sign-in, the session cookie, CSRF,
//! expiry, sign-out, the security headers, and that no page shows a secret unless
//! asked. The browser tests (headless Chromium) are in the CLI's integration tests
//! (`crates/cli/tests/integration/portal_browser.rs`).

#![cfg(test)]
// The cases are plain async functions; clippy's allow-unwrap-in-tests does not see
// helpers as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use gatehouse_control::auth::AdminToken;
use gatehouse_control::{ControlSettings, ControlState, app};
use gatehouse_store::Store;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

const ADMIN: &str = "portal-test-admin-token";
const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const SECRET_VALUE: &str = "named-value-secret-0001";
const PLAIN_VALUE: &str = "named-value-plain-0001";
const PRIMARY_KEY: &str = "subscription-primary-key-0001";
const SECONDARY_KEY: &str = "subscription-secondary-key-0001";

/// A control plane on 127.0.0.1:0, and a client that follows no redirects and keeps
/// no cookies (each test handles them itself).
struct Portal {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _server: tokio::task::JoinHandle<()>,
}

impl Portal {
    async fn start() -> Self {
        Self::start_with(ControlSettings::default().portal_session_idle_timeout).await
    }

    async fn start_with(idle_timeout: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("control.db").display());
        let mut state = ControlState::new(
            Store::connect(&url).await.unwrap(),
            AdminToken::from_secret(ADMIN),
            gatehouse_control::vault::Vault::from_base64(KEY).unwrap(),
            ControlSettings {
                public_url: Some("http://control.example.com:8090".to_owned()),
                portal_session_idle_timeout: idle_timeout,
                ..Default::default()
            },
        );
        state.agree_on_shared_settings(false).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app(state)).await;
        });
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
            _dir: dir,
            _server: server,
        }
    }

    /// A management API call with the admin token.
    async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn sign_in(&self, token: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/portal/sign-in", self.base))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
    }

    /// Signs in and returns the session: the cookie pair and the CSRF token.
    async fn session(&self) -> Session {
        let response = self.sign_in(ADMIN).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = session_cookie(response.headers()).unwrap();
        let pair = cookie.split(';').next().unwrap().trim().to_owned();
        let page = self.get(&pair, "/portal/gateways").await;
        assert_eq!(page.0, StatusCode::OK, "{}", page.1);
        let csrf = between(&page.1, "name=\"csrf\" value=\"", "\"").unwrap();
        Session { cookie: pair, csrf }
    }

    async fn get(&self, cookie: &str, path: &str) -> (StatusCode, String, HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    async fn post(
        &self,
        cookie: &str,
        path: &str,
        form: &[(&str, &str)],
    ) -> (StatusCode, String, HeaderMap) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }
}

struct Session {
    cookie: String,
    csrf: String,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gatehouse_portal="))
        .map(str::to_owned)
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

/// Undoes HTML escaping (`&amp;`, `&#43;`, `&#x2f;`, …).
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find(';') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let entity = &rest[at + 1..at + end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|hex| u32::from_str_radix(hex, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse::<u32>))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        out.push(decoded.unwrap());
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    out
}

fn location(headers: &HeaderMap) -> &str {
    headers.get(LOCATION).unwrap().to_str().unwrap()
}

// Security: the cookie cannot be read by script, is not sent cross-site, and is scoped
// to the portal; pages are not cached, framed, or allowed inline script.
#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_pages_carry_the_security_headers() {
    let portal = Portal::start().await;
    let response = portal.sign_in(ADMIN).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(response.headers()), "/portal/gateways");
    let cookie = session_cookie(response.headers()).expect("a session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/portal"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    // A browser-session cookie: the server's idle timeout decides.
    assert!(
        !cookie.contains("Max-Age") && !cookie.contains("Expires"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let id = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("gatehouse_portal=");
    assert_eq!(id.len(), 43, "256 bits, base64url");
    assert!(!cookie.contains(ADMIN), "the token is not the session");

    let pair = format!("gatehouse_portal={id}");
    let (status, body, headers) = portal.get(&pair, "/portal/gateways").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<h1>Gateways</h1>"), "{body}");
    assert!(!body.contains(ADMIN));
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        !body.contains("<script>") && !body.contains("style="),
        "no inline script or style: {body}"
    );
}

// Security: only the admin token opens a session, and the refusal does not echo it.
#[tokio::test]
async fn a_wrong_token_does_not_sign_in() {
    let portal = Portal::start().await;
    for wrong in ["not-the-token", "", &format!("{ADMIN}x")] {
        let response = portal.sign_in(wrong).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(session_cookie(response.headers()).is_none(), "{wrong:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains("not the admin token"), "{body}");
        assert!(wrong.is_empty() || !body.contains(wrong), "echoed: {body}");
    }
}

// Security: every page needs a session; the token is not accepted as a query or a
// bearer header on the portal either.
#[tokio::test]
async fn pages_without_a_session_go_to_the_sign_in_page() {
    let portal = Portal::start().await;
    for path in [
        "/portal/",
        "/portal/gateways",
        "/portal/apis",
        "/portal/subscriptions",
        "/portal/subscriptions/new",
        "/portal/subscriptions/demo/delete",
        "/portal/named-values",
        "/portal/gateways/edge/deployment",
    ] {
        let (status, _, headers) = portal
            .get("gatehouse_portal=made-up-session-id", path)
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&headers), "/portal/sign-in", "{path}");
    }
    let response = portal
        .client
        .get(format!("{}/portal/gateways", portal.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "no bearer tokens");
    // htmx asks for a fragment: it is told to load the sign-in page instead.
    let response = portal
        .client
        .get(format!("{}/portal/gateways/edge/instances", portal.base))
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["hx-redirect"], "/portal/sign-in");
    let (status, body, _) = portal.get("", "/portal/sign-in").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("type=\"password\""), "{body}");
}

// Security: a change needs the session's CSRF token, as a form field or a header.
#[tokio::test]
async fn a_change_without_the_right_csrf_token_is_forbidden() {
    let portal = Portal::start().await;
    let session = portal.session().await;
    let other = portal.session().await;
    assert_ne!(session.csrf, other.csrf);
    let form = |csrf: &'static str| vec![("id", "edge"), ("csrf", csrf)];
    let (status, _, _) = portal
        .post(&session.cookie, "/portal/gateways", &[("id", "edge")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "missing");
    let (status, _, _) = portal
        .post(&session.cookie, "/portal/gateways", &form("wrong"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "wrong");
    // Another session's token is not this one's.
    let (status, _, _) = portal
        .post(
            &session.cookie,
            "/portal/gateways",
            &[("id", "edge"), ("csrf", &other.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another session's");
    let response = portal
        .client
        .post(format!("{}/portal/gateways", portal.base))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", "wrong")
        .form(&[("id", "edge")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "wrong header");
    let (status, body, _) = portal.get(&session.cookie, "/portal/gateways/edge").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created: {body}");

    let (status, body, headers) = portal
        .post(
            &session.cookie,
            "/portal/gateways",
            &[
                ("id", "edge"),
                ("location", "eu-west"),
                ("csrf", &session.csrf),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/portal/gateways/edge?done=created");
    let gateway = portal
        .api(reqwest::Method::GET, "/gateways/edge", None)
        .await;
    assert_eq!(gateway["location"], "eu-west");
    // The header works as well as the field (htmx sends it).
    let response = portal
        .client
        .post(format!("{}/portal/policy/validate", portal.base))
        .header("cookie", &session.cookie)
        .header("x-csrf-token", &session.csrf)
        .form(&[("policy", "<policies/>")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_expired_session_goes_back_to_the_sign_in_page() {
    let idle = Duration::from_millis(300);
    let portal = Portal::start_with(idle).await;
    let session = portal.session().await;
    let (status, _, _) = portal.get(&session.cookie, "/portal/apis").await;
    assert_eq!(status, StatusCode::OK);
    // A page polling its status does not keep the session alive: sleeping past the
    // idle timeout, polling all along, is the point of this test.
    let deadline = tokio::time::Instant::now() + idle + Duration::from_millis(200);
    let mut refused = false;
    while tokio::time::Instant::now() < deadline {
        let response = portal
            .client
            .get(format!("{}/portal/gateways-table", portal.base))
            .header("cookie", &session.cookie)
            .header("hx-request", "true")
            .header("hx-trigger", "gateway-list")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(response.headers()["hx-redirect"], "/portal/sign-in");
            refused = true;
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(refused, "polling kept the session alive");
    let (status, _, headers) = portal.get(&session.cookie, "/portal/apis").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/sign-in");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let portal = Portal::start().await;
    let session = portal.session().await;
    let (status, _, _) = portal
        .post(&session.cookie, "/portal/sign-out", &[("csrf", "wrong")])
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "sign-out needs the CSRF token too"
    );
    let (status, _, headers) = portal
        .post(
            &session.cookie,
            "/portal/sign-out",
            &[("csrf", &session.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/sign-in");
    let cleared = session_cookie(&headers).unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer opens anything, even if the browser kept it.
    let (status, _, headers) = portal.get(&session.cookie, "/portal/gateways").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/sign-in");
}

fn hello_api() -> Value {
    json!({
        "path": "hello",
        "serviceUrl": "http://127.0.0.1:9",
        "policy": "<policies>\n  <inbound>\n    <base />\n    <set-header name=\"x-secret\" exists-action=\"override\">\n      <value>{{secret-one}}</value>\n    </set-header>\n  </inbound>\n  <backend><base /></backend>\n  <outbound><base /></outbound>\n  <on-error><base /></on-error>\n</policies>",
        "operations": [{"id": "greet", "method": "GET", "urlTemplate": "/{name}"}],
    })
}

async fn seed(portal: &Portal) {
    portal
        .api(
            reqwest::Method::PUT,
            "/named-values/secret-one",
            Some(json!({"value": SECRET_VALUE, "secret": true})),
        )
        .await;
    portal
        .api(
            reqwest::Method::PUT,
            "/named-values/plain-one",
            Some(json!({"value": PLAIN_VALUE})),
        )
        .await;
    portal
        .api(reqwest::Method::PUT, "/apis/hello", Some(hello_api()))
        .await;
    portal
        .api(
            reqwest::Method::PUT,
            "/products/starter",
            Some(json!({"apis": ["hello"]})),
        )
        .await;
    portal
        .api(
            reqwest::Method::PUT,
            "/subscriptions/demo",
            Some(json!({"scope": "/products/starter", "primaryKey": PRIMARY_KEY, "secondaryKey": SECONDARY_KEY})),
        )
        .await;
    portal
        .api(
            reqwest::Method::PUT,
            "/gateways/edge",
            Some(json!({"apis": ["hello"], "location": "eu-west"})),
        )
        .await;
}

// Security: secret named values never reach a page; subscription keys only the page
// answering "Show keys" for that subscription.
#[tokio::test]
async fn no_page_shows_a_secret_named_value_or_a_subscription_key_unless_asked() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let pages = [
        "/portal/gateways",
        "/portal/gateways-table",
        "/portal/gateways/edge",
        "/portal/gateways/edge/edit",
        "/portal/gateways/edge/instances",
        "/portal/gateways/edge/deployment",
        "/portal/gateways/edge/delete",
        "/portal/gateways/new",
        "/portal/apis",
        "/portal/apis/hello",
        "/portal/policy?api=hello",
        "/portal/policy?api=hello&operation=greet",
        "/portal/policy?product=starter",
        "/portal/policy",
        "/portal/products",
        "/portal/products/new",
        "/portal/products/starter/edit",
        "/portal/products/starter/delete",
        "/portal/subscriptions",
        "/portal/named-values",
        "/portal/named-values/new",
        "/portal/named-values/secret-one/edit",
        "/portal/named-values/secret-one/delete",
        "/portal/certificates",
    ];
    for path in pages {
        let (status, body, _) = portal.get(&session.cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        for secret in [SECRET_VALUE, PRIMARY_KEY, SECONDARY_KEY, ADMIN] {
            assert!(!body.contains(secret), "{path} shows {secret}");
        }
    }
    // What is not secret is shown: the check above would pass on empty pages otherwise.
    let (_, body, _) = portal.get(&session.cookie, "/portal/named-values").await;
    assert!(body.contains(PLAIN_VALUE), "{body}");
    assert!(body.contains("secret-one"), "{body}");
    let (_, body, _) = portal.get(&session.cookie, "/portal/subscriptions").await;
    assert!(body.contains("demo"), "{body}");
    // Policies are shown highlighted, and escaped.
    let (_, body, _) = portal.get(&session.cookie, "/portal/apis/hello").await;
    assert!(
        body.contains(r#"<span class="hl-tag">set-header</span>"#),
        "{body}"
    );
    assert!(
        body.contains(r#"<span class="hl-named">{{secret-one}}</span>"#),
        "{body}"
    );
    // Asked: that subscription's keys, on that answer only.
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/subscriptions/demo/keys",
            &[("csrf", &session.csrf)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(PRIMARY_KEY) && body.contains(SECONDARY_KEY),
        "{body}"
    );
    assert!(!body.contains(SECRET_VALUE));
    let (_, body, _) = portal.get(&session.cookie, "/portal/subscriptions").await;
    assert!(!body.contains(PRIMARY_KEY), "shown once, not remembered");
}

#[tokio::test]
async fn subscription_keys_are_regenerated_and_subscriptions_suspended_and_activated() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let (status, _, headers) = portal
        .post(
            &session.cookie,
            "/portal/subscriptions/demo/regenerate",
            &[("csrf", &session.csrf), ("key", "primary")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&headers),
        "/portal/subscriptions?done=regenerated-primary"
    );
    let secrets = portal
        .api(
            reqwest::Method::POST,
            "/subscriptions/demo/list-secrets",
            None,
        )
        .await;
    assert_ne!(secrets["primaryKey"], PRIMARY_KEY);
    assert_eq!(secrets["secondaryKey"], SECONDARY_KEY);
    // Suspend, then activate again, through the API's state changes.
    for (state, done, stored) in [
        ("suspended", "suspended", "suspended"),
        ("active", "activated", "active"),
    ] {
        let (status, _, headers) = portal
            .post(
                &session.cookie,
                "/portal/subscriptions/demo/state",
                &[("csrf", &session.csrf), ("state", state)],
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(
            location(&headers),
            format!("/portal/subscriptions?done={done}")
        );
        let subscription = portal
            .api(reqwest::Method::GET, "/subscriptions/demo", None)
            .await;
        assert_eq!(subscription["state"], stored);
    }
}

/// The deployment page's token is one the Configuration API accepts, and its manifest
/// is the management API's.
#[tokio::test]
async fn the_deployment_page_gives_a_working_token_and_the_api_s_manifest() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let (status, body, _) = portal
        .get(
            &session.cookie,
            "/portal/gateways/edge/deployment?key=secondary&days=7",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = unescape(
        &between(
            &body,
            "<textarea id=\"token\" readonly rows=\"2\">",
            "</textarea>",
        )
        .unwrap(),
    );
    assert!(token.starts_with("GatewayKey edge&"), "{token}");
    let response = portal
        .client
        .get(format!("{}/v2/gateways/edge/snapshot", portal.base))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer = response.text().await.unwrap();
    assert_eq!(
        status,
        StatusCode::OK,
        "the token {token:?} works: {answer}"
    );
    assert!(
        body.contains("kubectl create secret generic edge-token"),
        "{body}"
    );
    let from_api = portal
        .api(
            reqwest::Method::GET,
            "/gateways/edge/deployment?format=kubernetes",
            None,
        )
        .await;
    let manifest = from_api["manifest"].as_str().unwrap();
    let (status, download, headers) = portal
        .get(&session.cookie, "/portal/gateways/edge/deployment.yaml")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(download, manifest, "the same manifest");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"edge.yaml\""
    );
    // An instance reporting with that token shows in the list and on the overview.
    let response = portal
        .client
        .post(format!("{}/v2/gateways/edge/heartbeat", portal.base))
        .header("authorization", &token)
        .json(&json!({
            "instanceId": "pod-1",
            "hostname": "edge-pod-1",
            "version": "9.9.9",
            "appliedRevision": 1,
            "lastError": "backend <unreachable>",
            "tokenExpiry": 4_102_444_800_i64,
        }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (_, list, _) = portal.get(&session.cookie, "/portal/gateways").await;
    let row = between(&list, "/portal/gateways/edge\"", "</tr>").unwrap();
    assert!(row.contains("<td>1</td>"), "1 node: {row}");
    assert!(row.contains("<td>1 / "), "applied revision 1: {row}");
    assert!(row.contains("2100-01-01T00:00:00Z"), "token expiry: {row}");
    // The list polls its table.
    let (status, table, _) = portal.get(&session.cookie, "/portal/gateways-table").await;
    assert_eq!(status, StatusCode::OK);
    assert!(table.starts_with("<div id=\"gateway-list\""), "{table}");
    assert!(table.contains("<td>1</td>"), "1 node: {table}");
    let (_, fragment, _) = portal
        .get(&session.cookie, "/portal/gateways/edge/instances")
        .await;
    assert!(fragment.contains("1 node connected"), "{fragment}");
    assert!(fragment.contains("edge-pod-1") && fragment.contains("9.9.9"));
    assert!(fragment.contains("behind"), "revision lag: {fragment}");
    assert!(
        fragment.contains("backend &#60;unreachable&#62;"),
        "last error, escaped: {fragment}"
    );
    // Regenerating the secondary key makes that token stop working.
    let (status, _, _) = portal
        .post(
            &session.cookie,
            "/portal/gateways/edge/regenerate-key",
            &[("csrf", &session.csrf), ("key", "secondary")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let response = portal
        .client
        .get(format!("{}/v2/gateways/edge/snapshot", portal.base))
        .header("authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Out of range is refused as the API refuses it.
    let (status, body, _) = portal
        .get(&session.cookie, "/portal/gateways/edge/deployment?days=31")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("1 to 30"), "{body}");
}

#[tokio::test]
async fn a_policy_with_a_typo_is_reported_at_its_line_and_not_saved() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let typo = hello_api()["policy"]
        .as_str()
        .unwrap()
        .replace("set-header", "set-haeder");
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/policy/validate",
            &[("csrf", &session.csrf), ("api", "hello"), ("policy", &typo)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Line 4, column"), "{body}");
    assert!(body.contains("set-haeder"), "{body}");
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/policy",
            &[
                ("csrf", &session.csrf),
                ("api", "hello"),
                ("revision", "0"),
                ("policy", &typo),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("Line 4, column"), "{body}");
    let api = portal.api(reqwest::Method::GET, "/apis/hello", None).await;
    assert_eq!(api["policy"], hello_api()["policy"], "not saved");

    // A valid document for one operation is saved through the same write.
    let (status, body, _) = portal
        .get(&session.cookie, "/portal/policy?api=hello&operation=greet")
        .await;
    assert_eq!(status, StatusCode::OK);
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let valid = "<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>";
    let (status, body, headers) = portal
        .post(
            &session.cookie,
            "/portal/policy",
            &[
                ("csrf", &session.csrf),
                ("api", "hello"),
                ("operation", "greet"),
                ("revision", &revision),
                ("policy", valid),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/portal/apis/hello?done=saved");
    let api = portal.api(reqwest::Method::GET, "/apis/hello", None).await;
    assert_eq!(api["operations"][0]["policy"], valid);
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/policy/validate",
            &[("csrf", &session.csrf), ("policy", valid)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("No problems found."), "{body}");
    // The global policy: saved, then the APIs page says so.
    let (status, body, headers) = portal
        .post(
            &session.cookie,
            "/portal/policy",
            &[
                ("csrf", &session.csrf),
                ("revision", "0"),
                ("policy", valid),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/portal/apis?done=saved");
    let global = portal.api(reqwest::Method::GET, "/policy", None).await;
    assert_eq!(global["value"], valid);
    let (_, body, _) = portal.get(&session.cookie, "/portal/apis?done=saved").await;
    assert!(body.contains("Saved."), "{body}");
}

#[tokio::test]
async fn gateways_are_edited_and_deleted_through_the_management_api_s_checks() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/gateways/edge/edit")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    // An API that does not exist is refused with the API's message.
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/gateways/edge",
            &[
                ("csrf", &session.csrf),
                ("revision", &revision),
                ("displayName", "Edge"),
                ("apis", "hello"),
                ("apis", "nope"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("nope"), "{body}");
    let (status, _, _) = portal
        .post(
            &session.cookie,
            "/portal/gateways/edge",
            &[
                ("csrf", &session.csrf),
                ("revision", &revision),
                ("displayName", "Edge"),
                ("location", "eu-north"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let gateway = portal
        .api(reqwest::Method::GET, "/gateways/edge", None)
        .await;
    assert_eq!(gateway["displayName"], "Edge");
    assert_eq!(gateway["location"], "eu-north");
    assert_eq!(gateway["apis"], json!([]));
    // A stale form is refused rather than overwriting the newer write.
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/gateways/edge",
            &[("csrf", &session.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/gateways/edge/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let (status, _, headers) = portal
        .post(
            &session.cookie,
            "/portal/gateways/edge/delete",
            &[("csrf", &session.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/gateways?done=deleted");
    let (status, _, _) = portal.get(&session.cookie, "/portal/gateways/edge").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_served_with_their_type_and_a_long_cache() {
    let portal = Portal::start().await;
    let session = portal.session().await;
    let (_, page, _) = portal.get(&session.cookie, "/portal/gateways").await;
    for (name, content_type) in [
        ("htmx.min.js", "text/javascript; charset=utf-8"),
        ("portal.js", "text/javascript; charset=utf-8"),
        ("portal.css", "text/css; charset=utf-8"),
    ] {
        let url = between(&page, &format!("/portal/assets/{name}?v="), "\"")
            .map(|v| format!("/portal/assets/{name}?v={v}"))
            .unwrap_or_else(|| panic!("{name} linked from the page"));
        let (status, body, headers) = portal.get("", &url).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert!(!body.is_empty());
        assert_eq!(headers["content-type"], content_type, "{name}");
        assert_eq!(
            headers["cache-control"], "public, max-age=31536000, immutable",
            "{name}"
        );
    }
    let (status, _, _) = portal.get("", "/portal/assets/htmx.LICENSE").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = portal.get("", "/portal/assets/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Other addresses under /portal/: sign-in first, then an HTML 404 with the headers.
    let (status, _, headers) = portal.get("", "/portal/nope/at/all").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/sign-in");
    let (status, body, headers) = portal.get(&session.cookie, "/portal/nope/at/all").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<h1>404 Not Found</h1>"), "{body}");
    assert_eq!(headers["x-frame-options"], "DENY");
}

// Security: a certificate's private key never reaches the page.
#[tokio::test]
async fn the_certificates_page_shows_subject_expiry_and_host_names_but_never_the_key() {
    let portal = Portal::start().await;
    let ca = gatehouse_test_support::pki::TestCa::new("Portal CA");
    let site = ca.server(&["api.example.com"]);
    portal
        .api(
            reqwest::Method::PUT,
            "/certificates/site",
            Some(json!({"certificatePem": site.cert_pem, "privateKeyPem": site.key_pem})),
        )
        .await;
    portal
        .api(
            reqwest::Method::PUT,
            "/hostnames/api.example.com",
            Some(json!({"certificateId": "site"})),
        )
        .await;
    let session = portal.session().await;
    let (status, body, _) = portal.get(&session.cookie, "/portal/certificates").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("CN=api.example.com"), "subject: {body}");
    assert!(body.contains("Portal CA"), "issuer: {body}");
    assert!(
        body.contains("<td>api.example.com</td>"),
        "host names: {body}"
    );
    assert!(body.contains("server (with private key)"), "{body}");
    assert!(body.contains("<td><time>20"), "expiry: {body}");
    assert!(!body.contains(">expired<"), "valid for a year: {body}");
    let key_line = site.key_pem.lines().nth(1).unwrap();
    assert!(!body.contains(key_line), "the private key is shown");
    assert!(!body.contains("PRIVATE KEY"), "the private key is shown");
}

/// The value a gateway receives for named value `name` (the only place a secret's
/// value can be read back).
async fn value_served(portal: &Portal, name: &str) -> Option<String> {
    let token = portal
        .api(
            reqwest::Method::POST,
            "/gateways/edge/generate-token",
            Some(json!({"keyType": "primary", "expiry": humantime_in_a_day()})),
        )
        .await["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let snapshot: Value = portal
        .client
        .get(format!("{}/v2/gateways/edge/snapshot", portal.base))
        .header("authorization", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    snapshot["configuration"]["namedValues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .and_then(|n| n["value"].as_str())
        .map(str::to_owned)
}

fn humantime_in_a_day() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(86_400))
        .to_string()
}

// Security: a secret named value is written through the portal but never sent back to
// the browser, not even in its edit form or after a failed save.
#[tokio::test]
async fn named_values_are_created_edited_and_deleted_and_a_secret_is_never_sent_back() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let form = |fields: &[(&'static str, &'static str)]| {
        let mut all = vec![("csrf", session.csrf.clone())];
        all.extend(fields.iter().map(|(k, v)| (*k, (*v).to_owned())));
        all
    };
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let portal = &portal;
        let cookie = session.cookie.clone();
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            portal.post(&cookie, path, &pairs).await
        }
    };
    let (status, body, _) = post(
        "/portal/named-values",
        form(&[
            ("name", "api-key"),
            ("value", "first-secret-value-01"),
            ("secret", "on"),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        value_served(&portal, "api-key").await.as_deref(),
        Some("first-secret-value-01")
    );
    let (status, body, _) = portal
        .get(&session.cookie, "/portal/named-values/api-key/edit")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("first-secret-value-01"), "{body}");
    assert!(body.contains("Leave this empty to keep it"), "{body}");
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    // Saved with an empty value: the stored one is kept.
    let mut fields = form(&[("value", ""), ("secret", "on")]);
    fields.push(("revision", revision.clone()));
    let (status, body, _) = post("/portal/named-values/api-key", fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        value_served(&portal, "api-key").await.as_deref(),
        Some("first-secret-value-01")
    );
    // Made plain without a value: refused as the API refuses it, nothing echoed.
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/named-values/api-key/edit")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let mut fields = form(&[("value", "")]);
    fields.push(("revision", revision.clone()));
    let (status, body, _) = post("/portal/named-values/api-key", fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("give `value` again"), "{body}");
    assert!(!body.contains("first-secret-value-01"), "{body}");
    // A failed save of a new secret does not send the typed value back either.
    let (status, body, _) = post(
        "/portal/named-values",
        form(&[
            ("name", "bad name!"),
            ("value", "typed-secret-value-02"),
            ("secret", "on"),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body.contains("typed-secret-value-02"), "{body}");
    // A new value replaces it.
    let mut fields = form(&[("value", "second-secret-value-03"), ("secret", "on")]);
    fields.push(("revision", revision));
    let (status, body, _) = post("/portal/named-values/api-key", fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(
        value_served(&portal, "api-key").await.as_deref(),
        Some("second-secret-value-03")
    );
    let (_, body, _) = portal.get(&session.cookie, "/portal/named-values").await;
    assert!(!body.contains("second-secret-value-03"), "{body}");
    // Deleted after a confirmation page.
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/named-values/api-key/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let mut fields = form(&[]);
    fields.push(("revision", revision));
    let (status, _, headers) = post("/portal/named-values/api-key/delete", fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/named-values?done=deleted");
    assert_eq!(value_served(&portal, "api-key").await, None);
    // One still used by a policy cannot be deleted: the API's message.
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/named-values/secret-one/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let mut fields = form(&[]);
    fields.push(("revision", revision));
    let (status, body, _) = post("/portal/named-values/secret-one/delete", fields).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(!body.contains(SECRET_VALUE), "{body}");
}

#[tokio::test]
async fn products_are_created_edited_and_deleted_through_the_management_api_s_checks() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/products",
            &[
                ("csrf", &session.csrf),
                ("id", "gold"),
                ("displayName", "Gold"),
                ("subscriptionRequired", "on"),
                ("apis", "hello"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let product = portal
        .api(reqwest::Method::GET, "/products/gold", None)
        .await;
    assert_eq!(product["displayName"], "Gold");
    assert_eq!(product["apis"], json!(["hello"]));
    assert_eq!(product["subscriptionRequired"], true);
    // The same id again: refused, as `If-None-Match: *` is.
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/products",
            &[("csrf", &session.csrf), ("id", "gold")],
        )
        .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED, "{body}");
    assert!(body.contains("already exists"), "{body}");
    // Edited: its policy, set elsewhere, is kept.
    portal
        .api(
            reqwest::Method::PUT,
            "/products/gold",
            Some(json!({"apis": ["hello"], "policy": "<policies><inbound><base /></inbound></policies>"})),
        )
        .await;
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/products/gold/edit")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/products/gold",
            &[
                ("csrf", &session.csrf),
                ("revision", &revision),
                ("displayName", "Gold plan"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let product = portal
        .api(reqwest::Method::GET, "/products/gold", None)
        .await;
    assert_eq!(product["displayName"], "Gold plan");
    assert_eq!(product["apis"], json!([]));
    assert_eq!(product["subscriptionRequired"], false);
    assert_eq!(
        product["policy"],
        "<policies><inbound><base /></inbound></policies>"
    );
    // One with subscriptions cannot be deleted: the API's message.
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/products/starter/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/products/starter/delete",
            &[("csrf", &session.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("subscription `demo`"), "{body}");
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/products/gold/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let (status, _, headers) = portal
        .post(
            &session.cookie,
            "/portal/products/gold/delete",
            &[("csrf", &session.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/products?done=deleted");
    let response = portal
        .client
        .get(format!("{}/products/gold", portal.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn subscriptions_are_created_with_generated_keys_and_deleted() {
    let portal = Portal::start().await;
    seed(&portal).await;
    let session = portal.session().await;
    let (_, form, _) = portal
        .get(&session.cookie, "/portal/subscriptions/new")
        .await;
    assert!(form.contains("value=\"/products/starter\""), "{form}");
    let (status, body, headers) = portal
        .post(
            &session.cookie,
            "/portal/subscriptions",
            &[
                ("csrf", &session.csrf),
                ("id", "mobile"),
                ("displayName", "Mobile app"),
                ("scope", "/products/starter"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/portal/subscriptions?done=created");
    let secrets = portal
        .api(
            reqwest::Method::POST,
            "/subscriptions/mobile/list-secrets",
            None,
        )
        .await;
    let primary = secrets["primaryKey"].as_str().unwrap().to_owned();
    assert!(primary.len() >= 32, "generated: {secrets}");
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/subscriptions?done=created")
        .await;
    assert!(body.contains("Mobile app"), "{body}");
    assert!(!body.contains(&primary), "keys only when asked");
    // A scope that does not exist: the API's refusal.
    let (status, body, _) = portal
        .post(
            &session.cookie,
            "/portal/subscriptions",
            &[
                ("csrf", &session.csrf),
                ("id", "stray"),
                ("scope", "/products/nope"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("nope"), "{body}");
    let (_, body, _) = portal
        .get(&session.cookie, "/portal/subscriptions/mobile/delete")
        .await;
    let revision = between(&body, "name=\"revision\" value=\"", "\"").unwrap();
    let (status, _, headers) = portal
        .post(
            &session.cookie,
            "/portal/subscriptions/mobile/delete",
            &[("csrf", &session.csrf), ("revision", &revision)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location(&headers), "/portal/subscriptions?done=deleted");
    let response = portal
        .client
        .get(format!("{}/subscriptions/mobile", portal.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
