//! The management API and the Configuration API v2 over real HTTP, on SQLite and on a
//! real PostgreSQL server (`GATEHOUSE_TEST_DATABASE_URL`; with `CI=true` its absence
//! fails the PostgreSQL tests instead of skipping them).

#![cfg(test)]
// The cases are plain async functions run by the generated tests; clippy's
// allow-unwrap-in-tests does not see them as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_control::auth::AdminToken;
use gatehouse_control::{ControlState, app};
use gatehouse_store::Store;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "test-admin-token";

/// A control plane on 127.0.0.1:0 with its own database.
struct Control {
    base: String,
    client: reqwest::Client,
    store: Store,
    state: Arc<ControlState>,
    _db: TestDb,
    _server: tokio::task::JoinHandle<()>,
}

enum TestDb {
    // Held so the directory outlives the test.
    Sqlite(tempfile::TempDir),
    // Held so the database outlives the test; dropped with it.
    Postgres(gatehouse_test_support::postgres::TestDatabase),
    /// Another replica's: dropped with that one.
    Shared,
}

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

async fn database(backend: Backend) -> Option<(String, TestDb)> {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("control.db").display());
            Some((url, TestDb::Sqlite(dir)))
        }
        Backend::Postgres => {
            let database = gatehouse_test_support::postgres::TestDatabase::create().await?;
            Some((database.url.clone(), TestDb::Postgres(database)))
        }
    }
}

/// The encryption key every test replica uses.
const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A replica's state on `url`, agreed with the database's shared settings as
/// `gatehouse control` does before serving.
async fn replica_state(
    url: &str,
    admin: &str,
    key: &str,
) -> Result<ControlState, gatehouse_control::StartError> {
    let mut state = ControlState::new(
        Store::connect(url).await.unwrap(),
        AdminToken::from_secret(admin),
        gatehouse_control::vault::Vault::from_base64(key).unwrap(),
        gatehouse_control::ControlSettings {
            public_url: Some("https://control.example.com".to_owned()),
            ..Default::default()
        },
    );
    state.agree_on_shared_settings(false).await?;
    Ok(state)
}

impl Control {
    async fn start(backend: Backend) -> Option<Self> {
        let (url, db) = database(backend).await?;
        let state = replica_state(&url, ADMIN, KEY).await.unwrap();
        Some(Self::serve(state, db).await)
    }

    async fn serve(state: ControlState, db: TestDb) -> Self {
        let state = Arc::new(state);
        let store = state.store.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = state.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app(served)).await;
        });
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        Self {
            base,
            client,
            store,
            state,
            _db: db,
            _server: server,
        }
    }

    /// The database's URL (to start another replica on it).
    fn database_url(&self) -> String {
        match &self._db {
            TestDb::Sqlite(dir) => format!("sqlite://{}", dir.path().join("control.db").display()),
            TestDb::Postgres(database) => database.url.clone(),
            TestDb::Shared => panic!("ask the replica that created the database"),
        }
    }

    /// Another replica on the same database, serving on its own port.
    async fn another_replica(&self) -> Self {
        let state = replica_state(&self.database_url(), ADMIN, KEY)
            .await
            .unwrap();
        Self::serve(state, TestDb::Shared).await
    }

    /// `GET /v2/gateways/{gateway}/snapshot` with `token`.
    async fn snapshot(&self, gateway: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v2/gateways/{gateway}/snapshot")))
            .header("Authorization", token)
            .send()
            .await
            .unwrap()
    }

    /// A management API call with the admin token.
    async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(ADMIN);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    async fn delete(&self, path: &str) -> reqwest::Response {
        self.admin(reqwest::Method::DELETE, path, None).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn put(&self, path: &str, body: Value) -> reqwest::Response {
        self.admin(reqwest::Method::PUT, path, Some(&body)).await
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.admin(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.admin(reqwest::Method::POST, path, Some(&body)).await
    }

    async fn token(&self, gateway: &str, expiry: &str) -> String {
        let response = self
            .post(
                &format!("/gateways/{gateway}/generate-token"),
                json!({"keyType": "primary", "expiry": expiry}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["value"].as_str().unwrap().to_owned()
    }
}

/// An expiry `days` from now in ISO 8601.
fn expiry_in(days: u64) -> String {
    let at = std::time::SystemTime::now() + Duration::from_secs(days * 86_400);
    humantime::format_rfc3339_seconds(at).to_string()
}

async fn error(response: reqwest::Response) -> (StatusCode, String, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn api(id: &str, policy: Option<&str>) -> Value {
    let mut api = json!({
        "id": id,
        "path": id,
        "serviceUrl": "http://127.0.0.1:9",
        "operations": [{"id": "any", "method": "*", "urlTemplate": "/*"}]
    });
    if let Some(policy) = policy {
        api["policy"] = Value::String(policy.to_owned());
    }
    api
}

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_databases!(
    management_calls_need_the_admin_token,
    entities_round_trip_with_etags_and_preconditions,
    bad_input_is_rejected_with_a_precise_message,
    invalid_policy_xml_is_rejected_with_line_and_column,
    secrets_are_write_only,
    references_are_checked_on_write_and_delete,
    lists_are_paginated_and_searchable,
    gateway_tokens_open_only_their_own_configuration,
    the_snapshot_holds_only_what_the_gateway_serves,
    long_polls_wake_within_milliseconds_of_a_change,
    heartbeats_show_up_in_gateway_status,
    deployment_yaml_comes_with_a_token_secret_command,
    private_keys_are_encrypted_at_rest,
    certificates_are_checked_on_write,
    racing_references_and_deletes_on_two_replicas_leave_a_valid_configuration,
    every_secret_is_sealed_at_rest,
    a_secret_named_value_turns_plain_only_with_its_value,
    a_deleted_gateway_takes_its_tokens_with_it,
    authorization_schemes_and_expiry_offsets_are_read_as_http_and_iso_8601_say,
    replicas_share_the_admin_token_and_refuse_another_encryption_key,
    the_change_log_is_compacted_to_its_bound,
    policy_fragments_are_checked_where_included_and_reach_gateways,
);

async fn policy_fragments_are_checked_where_included_and_reach_gateways(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let fragment = |xml: &str| json!({"description": "tags", "value": xml});
    assert_eq!(
        control
            .put("/policy-fragments/tag", fragment(r#"<fragment><set-header name="X-Tag" exists-action="override"><value>1</value></set-header></fragment>"#))
            .await
            .status(),
        StatusCode::CREATED
    );
    let policy = r#"<policies><inbound><include-fragment fragment-id="tag" /></inbound><outbound><include-fragment fragment-id="tag" /></outbound></policies>"#;
    assert_eq!(
        control
            .put("/apis/a", api("a", Some(policy)))
            .await
            .status(),
        StatusCode::CREATED
    );
    // A change the places that include it cannot take is refused, naming the fragment.
    let (status, _, message) = error(
        control
            .put(
                "/policy-fragments/tag",
                fragment(r#"<fragment><rate-limit calls="1" renewal-period="1" /></fragment>"#),
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        message.contains("fragments[tag]") && message.contains("outbound"),
        "{message}"
    );
    // Still included: it cannot go.
    let (status, _, message) = error(control.delete("/policy-fragments/tag").await).await;
    assert!(status.is_client_error(), "{status}");
    assert!(
        message.contains("unknown policy fragment `tag`") && message.contains("apis[a]"),
        "{message}"
    );
    // Not a fragment document.
    let (status, _, message) = error(
        control
            .put("/policy-fragments/bad", fragment("<policies />"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("root must be <fragment>"), "{message}");

    // Gateways get it in their snapshot.
    control.put("/gateways/edge", json!({"apis": ["a"]})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let snapshot: Value = control.snapshot("edge", &token).await.json().await.unwrap();
    assert_eq!(snapshot["configuration"]["fragments"][0]["id"], "tag");
}

async fn racing_references_and_deletes_on_two_replicas_leave_a_valid_configuration(
    backend: Backend,
) {
    // Issue 10, item 1: validation and commit are one unit. Each pair races an API that
    // refers to a backend against the backend's delete, on two replicas.
    const PAIRS: usize = 200;
    let Some(first) = Control::start(backend).await else {
        return;
    };
    let second = first.another_replica().await;
    for i in 0..PAIRS {
        let created = first
            .put(
                &format!("/backends/b{i}"),
                json!({"url": "http://127.0.0.1:9"}),
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let first = Arc::new(first);
    let second = Arc::new(second);
    let mut racers = tokio::task::JoinSet::new();
    for i in 0..PAIRS {
        let (refer, delete) = if i % 2 == 0 {
            (first.clone(), second.clone())
        } else {
            (second.clone(), first.clone())
        };
        racers.spawn(async move {
            let mut body = api(&format!("a{i}"), None);
            body.as_object_mut().unwrap().remove("serviceUrl");
            body["backendId"] = json!(format!("b{i}"));
            refer.put(&format!("/apis/a{i}"), body).await.status()
        });
        racers.spawn(async move { delete.delete(&format!("/backends/b{i}")).await.status() });
    }
    let mut outcomes = std::collections::BTreeMap::new();
    while let Some(status) = racers.join_next().await {
        *outcomes.entry(status.unwrap().as_u16()).or_insert(0) += 1;
    }
    // Each pair: both succeed only when the put ran first (then the delete is refused
    // with 409) or the delete ran first (then the put is refused with 400).
    assert_eq!(outcomes.values().sum::<usize>(), 2 * PAIRS);
    assert!(
        outcomes
            .keys()
            .all(|s| [200, 201, 204, 400, 409].contains(s)),
        "{outcomes:?}"
    );
    let successes = outcomes.get(&201).unwrap_or(&0) + outcomes.get(&204).unwrap_or(&0);
    assert_eq!(successes, PAIRS, "exactly one of each pair: {outcomes:?}");
    assert!(
        outcomes.contains_key(&201),
        "some references won: {outcomes:?}"
    );

    // The configuration is valid: writes still go through on both replicas.
    for control in [&first, &second] {
        let status = control
            .put("/apis/after", api("after", None))
            .await
            .status();
        assert!(status.is_success(), "{status}");
    }
    let (_, stored) = first.state.all().await.unwrap();
    let config = gatehouse_control::entities::configuration(&stored).unwrap();
    gatehouse_control::management::validate(&config).unwrap();
}

async fn every_secret_is_sealed_at_rest(backend: Backend) {
    // Issue 10, item 4: subscription keys, secret named values and gateway keys are
    // sealed in the database, as private keys are.
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/apis/a", api("a", None)).await;
    control
        .put(
            "/subscriptions/s",
            json!({"scope": "/apis/a", "primaryKey": "primary-key-0123456789"}),
        )
        .await;
    control
        .put(
            "/named-values/n",
            json!({"value": "hunter2", "secret": true}),
        )
        .await;
    control
        .put("/named-values/plain", json!({"value": "visible"}))
        .await;
    control.put("/gateways/edge", json!({})).await;
    let raw = |kind, id: &'static str| {
        let store = control.store.clone();
        async move { store.get(kind, id).await.unwrap().unwrap().body }
    };
    let sealed = |value: &Value| {
        let text = value.as_str().unwrap();
        assert!(text.starts_with("gatehouse:v1:"), "{text}");
    };
    let subscription = raw(gatehouse_store::Kind::Subscription, "s").await;
    sealed(&subscription["primaryKey"]);
    sealed(&subscription["secondaryKey"]);
    assert!(!subscription.to_string().contains("primary-key-0123456789"));
    sealed(&raw(gatehouse_store::Kind::NamedValue, "n").await["value"]);
    assert_eq!(
        raw(gatehouse_store::Kind::NamedValue, "plain").await["value"],
        "visible"
    );
    let keys = control.store.gateway_keys("edge").await.unwrap().unwrap();
    sealed(&json!(keys.primary));
    sealed(&json!(keys.secondary));

    // Opened for those allowed to see them.
    let secrets: Value = control
        .post("/subscriptions/s/list-secrets", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(secrets["primaryKey"], "primary-key-0123456789");
    let token = control.token("edge", &expiry_in(1)).await;
    let snapshot: Value = control.snapshot("edge", &token).await.json().await.unwrap();
    let named = &snapshot["configuration"]["namedValues"];
    assert!(named.to_string().contains("hunter2"), "{named}");

    // A database written before secrets were sealed: sealed at the next start.
    control
        .store
        .write(vec![gatehouse_store::WriteOp::put(
            gatehouse_store::Kind::NamedValue,
            "legacy",
            json!({"name": "legacy", "value": "old-secret", "secret": true}),
        )])
        .await
        .unwrap();
    control
        .store
        .set_gateway_keys(
            "edge",
            &gatehouse_store::GatewayKeys {
                primary: "plain-primary".to_owned(),
                secondary: "plain-secondary".to_owned(),
            },
        )
        .await
        .unwrap();
    let restarted = replica_state(&control.database_url(), ADMIN, KEY)
        .await
        .unwrap();
    sealed(&raw(gatehouse_store::Kind::NamedValue, "legacy").await["value"]);
    let keys = control.store.gateway_keys("edge").await.unwrap().unwrap();
    sealed(&json!(keys.primary));
    let opened = restarted.gateway_keys("edge").await.unwrap().unwrap();
    assert_eq!(opened.primary, "plain-primary");
}

async fn a_secret_named_value_turns_plain_only_with_its_value(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control
        .put(
            "/named-values/n",
            json!({"value": "hunter2", "secret": true}),
        )
        .await;
    let (status, _, message) = error(
        control
            .put("/named-values/n", json!({"secret": false}))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("give `value` again"), "{message}");
    let shown: Value = control.get("/named-values/n").await.json().await.unwrap();
    assert_eq!(shown["secret"], true, "nothing changed");
    assert!(shown.get("value").is_none(), "{shown}");

    let plain: Value = control
        .put(
            "/named-values/n",
            json!({"secret": false, "value": "public"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["value"], "public");
}

async fn a_deleted_gateway_takes_its_tokens_with_it(backend: Backend) {
    // Issue 10, item 6: re-creating a gateway of the same id must not revive old tokens.
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/gateways/edge", json!({})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let snapshot = |token: String| {
        let control = &control;
        async move { control.snapshot("edge", &token).await.status() }
    };
    assert_eq!(snapshot(token.clone()).await, StatusCode::OK);
    assert_eq!(
        control.delete("/gateways/edge").await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(snapshot(token.clone()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        control.put("/gateways/edge", json!({})).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        snapshot(token).await,
        StatusCode::UNAUTHORIZED,
        "the old token does not open the new gateway"
    );
    let fresh = control.token("edge", &expiry_in(1)).await;
    assert_eq!(snapshot(fresh).await, StatusCode::OK);
}

async fn authorization_schemes_and_expiry_offsets_are_read_as_http_and_iso_8601_say(
    backend: Backend,
) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = control
            .client
            .get(control.url("/apis"))
            .header("Authorization", format!("{scheme} {ADMIN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
    control.put("/gateways/edge", json!({})).await;
    // Tomorrow at this hour, written with a +02:00 offset.
    let tomorrow = std::time::SystemTime::now() + Duration::from_secs(86_400 + 7_200);
    let local = humantime::format_rfc3339_seconds(tomorrow).to_string();
    let with_offset = format!("{}+02:00", local.trim_end_matches('Z'));
    let response = control
        .post(
            "/gateways/edge/generate-token",
            json!({"keyType": "secondary", "expiry": with_offset}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{with_offset}");
    let token: Value = response.json().await.unwrap();
    let parsed =
        gatehouse_model::token::GatewayToken::parse(token["value"].as_str().unwrap()).unwrap();
    let expected = gatehouse_control::unix_now() + 86_400;
    assert!(
        (parsed.expiry_unix() - expected).abs() <= 60,
        "expiry {} is not {expected}",
        parsed.expiry_unix()
    );
}

async fn replicas_share_the_admin_token_and_refuse_another_encryption_key(backend: Backend) {
    // Issue 10, item 5.
    let Some(first) = Control::start(backend).await else {
        return;
    };
    first
        .put(
            "/named-values/n",
            json!({"value": "hunter2", "secret": true}),
        )
        .await;
    let url = first.database_url();

    let wrong_key =
        replica_state(&url, ADMIN, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").await;
    let error = wrong_key.unwrap_err().to_string();
    assert!(
        error.contains("encryption key") && error.contains("GATEHOUSE_ENCRYPTION_KEY"),
        "{error}"
    );
    let wrong_token = replica_state(&url, "another-admin-token", KEY).await;
    let error = wrong_token.unwrap_err().to_string();
    assert!(error.contains("GATEHOUSE_ADMIN_TOKEN"), "{error}");

    // A replica that generated its own token on first start takes the database's.
    let mut fresh = ControlState::new(
        Store::connect(&url).await.unwrap(),
        AdminToken::from_secret("generated-here"),
        gatehouse_control::vault::Vault::from_base64(KEY).unwrap(),
        gatehouse_control::ControlSettings::default(),
    );
    let in_force = fresh.agree_on_shared_settings(true).await.unwrap();
    assert_eq!(in_force, gatehouse_control::AdminTokenInForce::Database);
    assert!(fresh.admin.matches(ADMIN));
    assert!(!fresh.admin.matches("generated-here"));

    // And the other replica answers the first one's token and opens its secrets.
    let second = first.another_replica().await;
    let shown = second.get("/named-values/n").await;
    assert_eq!(shown.status(), StatusCode::OK);
    let token_snapshot = second.put("/gateways/edge", json!({})).await;
    assert_eq!(token_snapshot.status(), StatusCode::CREATED);
    let token = first.token("edge", &expiry_in(1)).await;
    let snapshot = second.snapshot("edge", &token).await;
    assert_eq!(snapshot.status(), StatusCode::OK);
}

async fn certificates_are_checked_on_write(backend: Backend) {
    use gatehouse_test_support::pki::{TestCa, Validity};
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let ca = TestCa::new("Write-time CA");
    let site = ca.server(&["site.example"]);
    let other = ca.server(&["other.example"]);
    let expired = ca.server_with_validity(&["site.example"], Validity::Expired);
    let cases = [
        (
            json!({"certificatePem": "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"}),
            "`certificatePem`",
        ),
        (
            json!({"certificatePem": site.cert_pem, "privateKeyPem": other.key_pem}),
            "`privateKeyPem`: the private key does not match the certificate",
        ),
        (
            json!({"certificatePem": expired.cert_pem, "privateKeyPem": expired.key_pem}),
            "`certificatePem`: the certificate (subject `CN=site.example",
        ),
    ];
    for (body, expected) in cases {
        let response = control.put("/certificates/site", body).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let answer: Value = response.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
        let key_line = other.key_pem.lines().nth(1).unwrap();
        assert!(
            !message.contains(key_line),
            "the key is never quoted: {message}"
        );
    }
    assert_eq!(
        control.get("/certificates/site").await.status(),
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
    let created = control
        .put(
            "/certificates/site",
            json!({"certificatePem": site.cert_pem, "privateKeyPem": site.key_pem}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    // An update without the key keeps the stored one, and is checked against it.
    let replaced = control
        .put(
            "/certificates/site",
            json!({"certificatePem": other.cert_pem}),
        )
        .await;
    assert_eq!(replaced.status(), StatusCode::BAD_REQUEST);
    let unchanged = control
        .put(
            "/certificates/site",
            json!({"certificatePem": site.cert_pem}),
        )
        .await;
    assert_eq!(unchanged.status(), StatusCode::OK);
}

/// Two control-plane processes on one PostgreSQL database: a change written through one
/// wakes the long-polls held by the other (LISTEN/NOTIFY) within 100 ms.
#[tokio::test]
async fn postgres_a_write_through_one_replica_wakes_the_long_polls_on_another() {
    let Some(first) = Control::start(Backend::Postgres).await else {
        return;
    };
    let second = first.another_replica().await.base;
    first.put("/apis/a", api("a", None)).await;
    first.put("/gateways/edge", json!({"apis": ["a"]})).await;
    let token = first.token("edge", &expiry_in(1)).await;
    let since = first.store.revision().await.unwrap();
    let poll_url = format!("{second}/v2/gateways/edge/changes?since={since}&wait=30");
    let client = first.client.clone();
    let poll = tokio::spawn(async move {
        let response = client
            .get(poll_url)
            .header("Authorization", token)
            .send()
            .await
            .unwrap();
        (Instant::now(), response.json::<Value>().await.unwrap())
    });
    // Time for the poll to park on the other replica. Not synchronisation: nothing shows
    // a parked poll, and one that arrives after the write answers at once with the
    // change, so a late poll cannot fail the test (it only tests less).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long-poll answered without a change"
    );
    let mut changed = api("a", None);
    changed["displayName"] = json!("via the first control plane");
    let response = first.put("/apis/a", changed).await;
    let committed = Instant::now();
    assert_eq!(response.status(), StatusCode::OK);
    let (woke, body) = poll.await.unwrap();
    let latency = woke.saturating_duration_since(committed);
    assert!(
        latency < Duration::from_millis(100),
        "the other replica woke after {latency:?}"
    );
    assert_eq!(
        body["changes"][0]["entity"]["displayName"],
        "via the first control plane"
    );
}

async fn management_calls_need_the_admin_token(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let anonymous = control
        .client
        .get(control.url("/apis"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = control
        .client
        .get(control.url("/apis"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let health = control
        .client
        .get(control.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "health needs no token");
    control
        .put("/gateways/edge", json!({"location": "eu"}))
        .await;
    let token = control.token("edge", &expiry_in(1)).await;
    let as_gateway = control
        .client
        .get(control.url("/apis"))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        as_gateway.status(),
        StatusCode::FORBIDDEN,
        "a gateway token never opens the management API"
    );
}

async fn entities_round_trip_with_etags_and_preconditions(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let created = control.put("/apis/echo", api("echo", None)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let fetched = control.get("/apis/echo").await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.headers()["etag"].to_str().unwrap(), etag);
    let body: Value = fetched.json().await.unwrap();
    assert_eq!(body["path"], "echo");

    let update = |if_match: &str| {
        control
            .client
            .put(control.url("/apis/echo"))
            .bearer_auth(ADMIN)
            .header("If-Match", if_match.to_owned())
            .json(&api("echo", None))
            .send()
    };
    let first = update(&etag).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let lost = update(&etag).await.unwrap();
    let (status, code, _) = error(lost).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PRECONDITION_FAILED, "PreconditionFailed"),
        "a lost update is refused"
    );

    let create_only = control
        .client
        .put(control.url("/apis/echo"))
        .bearer_auth(ADMIN)
        .header("If-None-Match", "*")
        .json(&api("echo", None))
        .send()
        .await
        .unwrap();
    // A failed `If-None-Match` is a failed precondition (RFC 9110).
    let (status, code, _) = error(create_only).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PRECONDITION_FAILED, "AlreadyExists")
    );

    let deleted = control.delete("/apis/echo").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        control.get("/apis/echo").await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn bad_input_is_rejected_with_a_precise_message(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let malformed = control
        .client
        .put(control.url("/apis/a"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{\"path\": ")
        .send()
        .await
        .unwrap();
    let (status, _, message) = error(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("line 1"), "{message}");

    let unknown = control
        .put("/apis/a", json!({"path": "a", "pathh": "x"}))
        .await;
    let (status, _, message) = error(unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("pathh"), "{message}");

    let huge = control
        .client
        .put(control.url("/apis/a"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(format!("{{\"path\": \"{}\"}}", "a".repeat(2 * 1024 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

async fn invalid_policy_xml_is_rejected_with_line_and_column(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let policy = "<policies>\n  <inbound>\n    <rate-limit renewal-period=\"60\" />\n  </inbound>\n</policies>";
    let response = control.put("/apis/a", api("a", Some(policy))).await;
    let (status, code, message) = error(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "ValidationError")
    );
    assert!(message.contains(":3:"), "line 3: {message}");
    assert!(message.contains("calls"), "{message}");
    assert_eq!(
        control.get("/apis/a").await.status(),
        StatusCode::NOT_FOUND,
        "nothing was stored"
    );
}

async fn secrets_are_write_only(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/apis/a", api("a", None)).await;
    let created = control
        .put("/subscriptions/s1", json!({"scope": "/apis/a"}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let shown: Value = created.json().await.unwrap();
    // Security: keys are never returned by GET or PUT.
    assert!(shown.get("primaryKey").is_none(), "{shown}");
    let secrets: Value = control
        .post("/subscriptions/s1/list-secrets", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let primary = secrets["primaryKey"].as_str().unwrap().to_owned();
    assert!(primary.len() >= 32);
    control
        .post("/subscriptions/s1/regenerate-primary-key", json!({}))
        .await;
    let after: Value = control
        .post("/subscriptions/s1/list-secrets", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(after["primaryKey"], primary.as_str());
    assert_eq!(after["secondaryKey"], secrets["secondaryKey"]);
    let suspended: Value = control
        .post("/subscriptions/s1/suspend", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(suspended["state"], "suspended");

    control
        .put(
            "/named-values/token",
            json!({"value": "hunter2", "secret": true}),
        )
        .await;
    let value: Value = control
        .get("/named-values/token")
        .await
        .json()
        .await
        .unwrap();
    assert!(value.get("value").is_none(), "{value}");
}

async fn references_are_checked_on_write_and_delete(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let dangling = control
        .put("/products/p", json!({"apis": ["missing"]}))
        .await;
    assert_eq!(dangling.status(), StatusCode::BAD_REQUEST);
    control.put("/apis/a", api("a", None)).await;
    assert_eq!(
        control
            .put("/products/p", json!({"apis": ["a"]}))
            .await
            .status(),
        StatusCode::CREATED
    );
    let in_use = control.delete("/apis/a").await;
    let (status, _, message) = error(in_use).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        message.contains("API `a` is still used by product `p`"),
        "{message}"
    );

    // Issue 11, item 4: every referrer is named, once, with what to do.
    control
        .put("/subscriptions/eval", json!({"scope": "/apis/a"}))
        .await;
    control.put("/gateways/edge", json!({"apis": ["a"]})).await;
    let (status, _, message) = error(control.delete("/apis/a").await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        message,
        "API `a` is still used by product `p`, subscription `eval`, gateway `edge`: remove it from them, or delete them, first"
    );
}

async fn lists_are_paginated_and_searchable(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    for i in 0..5 {
        control
            .put(&format!("/apis/api-{i}"), api(&format!("api-{i}"), None))
            .await;
    }
    control.put("/apis/other", api("other", None)).await;
    let page: Value = control.get("/apis?top=2").await.json().await.unwrap();
    assert_eq!(page["count"], 6);
    assert_eq!(page["value"].as_array().unwrap().len(), 2);
    assert!(page["nextLink"].as_str().unwrap().contains("skip=2"));
    let found: Value = control.get("/apis?search=API-").await.json().await.unwrap();
    assert_eq!(found["count"], 5, "search ignores case");
}

async fn gateway_tokens_open_only_their_own_configuration(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/gateways/a", json!({})).await;
    control.put("/gateways/b", json!({})).await;
    let token_a = control.token("a", &expiry_in(7)).await;
    assert!(token_a.starts_with("GatewayKey a&"), "{token_a}");
    let snapshot = |gateway: &'static str, authorization: String| {
        control
            .client
            .get(control.url(&format!("/v2/gateways/{gateway}/snapshot")))
            .header("Authorization", authorization)
            .send()
    };
    assert_eq!(
        snapshot("a", token_a.clone()).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        snapshot("b", token_a.clone()).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        snapshot("a", format!("Bearer {ADMIN}"))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );

    let too_far = control
        .post(
            "/gateways/a/generate-token",
            json!({"keyType": "primary", "expiry": expiry_in(31)}),
        )
        .await;
    assert_eq!(
        too_far.status(),
        StatusCode::BAD_REQUEST,
        "tokens live at most 30 days"
    );

    // A token whose expiry has passed: signed directly with the stored key.
    let keys = control.state.gateway_keys("a").await.unwrap().unwrap();
    let expired = gatehouse_model::token::GatewayToken::sign(
        "a",
        keys.primary.as_bytes(),
        gatehouse_control::unix_now() - 120,
    )
    .unwrap();
    let (status, _, message) = error(snapshot("a", expired.to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(message.contains("expired"), "{message}");

    // Regenerating the key invalidates every token it signed.
    control
        .post("/gateways/a/regenerate-key", json!({"keyType": "primary"}))
        .await;
    assert_eq!(
        snapshot("a", token_a).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn the_snapshot_holds_only_what_the_gateway_serves(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/apis/served", api("served", None)).await;
    control.put("/apis/elsewhere", api("elsewhere", None)).await;
    control
        .put("/gateways/edge", json!({"apis": ["served"]}))
        .await;
    let token = control.token("edge", &expiry_in(1)).await;
    let response = control.snapshot("edge", &token).await;
    let snapshot: Value = response.json().await.unwrap();
    let apis: Vec<&str> = snapshot["configuration"]["apis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(apis, ["served"]);
    assert!(snapshot["revision"].as_u64().unwrap() >= 3);
    assert!(!snapshot["checksum"].as_str().unwrap().is_empty());
}

async fn long_polls_wake_within_milliseconds_of_a_change(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control
        .put("/gateways/edge", json!({"apis": ["a"]}))
        .await
        .status();
    control.put("/apis/a", api("a", None)).await;
    control.put("/gateways/edge", json!({"apis": ["a"]})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let since = control.store.revision().await.unwrap();
    let url = control.url(&format!("/v2/gateways/edge/changes?since={since}&wait=30"));
    let client = control.client.clone();
    let poll = tokio::spawn(async move {
        let response = client
            .get(url)
            .header("Authorization", token)
            .send()
            .await
            .unwrap();
        (Instant::now(), response.json::<Value>().await.unwrap())
    });
    // Time for the poll to park. Not synchronisation: nothing shows a parked poll, and
    // one that arrives after the write answers at once with the change, so a late poll
    // cannot fail the test (it only tests less).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long-poll answered without a change"
    );
    let written = Instant::now();
    let mut changed = api("a", None);
    changed["displayName"] = json!("changed");
    assert_eq!(
        control.put("/apis/a", changed).await.status(),
        StatusCode::OK
    );
    let (woke, body) = poll.await.unwrap();
    let latency = woke.duration_since(written);
    assert!(
        latency < Duration::from_millis(500),
        "long-poll woke after {latency:?}"
    );
    let change = &body["changes"][0];
    assert_eq!(change["kind"], "api");
    assert_eq!(change["op"], "upsert");
    assert_eq!(change["entity"]["displayName"], "changed");
}

async fn heartbeats_show_up_in_gateway_status(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/gateways/edge", json!({})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let beat = control
        .client
        .post(control.url("/v2/gateways/edge/heartbeat"))
        .header("Authorization", &token)
        .json(&json!({"instanceId": "pod-1", "hostname": "pod-1.local", "version": "0.1.0", "appliedRevision": 1, "uptimeSeconds": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(beat.status(), StatusCode::NO_CONTENT);
    let status: Value = control
        .get("/gateways/edge/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["nodes"], 1);
    assert_eq!(status["instances"][0]["hostname"], "pod-1.local");
    let seen = status["instances"][0]["lastSeen"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(seen).is_ok(), "RFC 3339: {seen}");
    assert!(
        status["instances"][0]["lastSeenSecondsAgo"]
            .as_i64()
            .unwrap()
            < 60
    );
    assert!(
        status["instances"][0]["tokenExpiry"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t > "2026-")
    );

    // Issue 10, item 9: a stopping instance says goodbye and leaves at once.
    let goodbye = |instance: &'static str| {
        let control = &control;
        let token = token.clone();
        async move {
            control
                .client
                .delete(control.url(&format!("/v2/gateways/edge/instances/{instance}")))
                .header("Authorization", token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(goodbye("pod-1").await, StatusCode::NO_CONTENT);
    assert_eq!(goodbye("never-seen").await, StatusCode::NO_CONTENT);
    let status: Value = control
        .get("/gateways/edge/status")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["nodes"], 0, "{status}");
    let unauthenticated = control
        .client
        .delete(control.url("/v2/gateways/edge/instances/pod-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);

    // A silent instance counts for three of the intervals it reported.
    let now = gatehouse_control::unix_now();
    let beat =
        |instance: &str, interval: Option<u64>, silent_for: i64| gatehouse_store::Heartbeat {
            gateway_id: "edge".to_owned(),
            instance_id: instance.to_owned(),
            hostname: instance.to_owned(),
            version: "0.1.0".to_owned(),
            applied_revision: 1,
            last_error: None,
            uptime_seconds: 1,
            token_expiry_unix: None,
            interval_seconds: interval,
            last_seen_unix: now - silent_for,
        };
    for heartbeat in [
        beat("fast-gone", Some(5), 20),
        beat("fast-here", Some(5), 10),
        beat("default-here", None, 170),
        beat("default-gone", None, 200),
    ] {
        control.store.record_heartbeat(&heartbeat).await.unwrap();
    }
    let status: Value = control
        .get("/gateways/edge/status")
        .await
        .json()
        .await
        .unwrap();
    let mut instances: Vec<&str> = status["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instanceId"].as_str().unwrap())
        .collect();
    instances.sort_unstable();
    assert_eq!(instances, ["default-here", "fast-here"], "{status}");

    // Pruning deletes heartbeats silent past their retention, and compacts the change
    // log to its bound.
    let pruned = gatehouse_control::maintenance::prune_once(&control.state)
        .await
        .unwrap();
    assert_eq!(pruned.heartbeats, 0, "all within the hour");
    control
        .store
        .record_heartbeat(&beat("long-gone", Some(60), 7200))
        .await
        .unwrap();
    let pruned = gatehouse_control::maintenance::prune_once(&control.state)
        .await
        .unwrap();
    assert_eq!(pruned.heartbeats, 1);
    assert_eq!(control.store.heartbeats("edge", 0).await.unwrap().len(), 4);
}

async fn the_change_log_is_compacted_to_its_bound(backend: Backend) {
    let Some((url, db)) = database(backend).await else {
        return;
    };
    let mut state = replica_state(&url, ADMIN, KEY).await.unwrap();
    state.settings.change_log_retention = 5;
    let control = Control::serve(state, db).await;
    for i in 0..12 {
        control
            .put(&format!("/apis/a{i}"), api(&format!("a{i}"), None))
            .await;
    }
    let pruned = gatehouse_control::maintenance::prune_once(&control.state)
        .await
        .unwrap();
    let revision = control.store.revision().await.unwrap();
    assert_eq!(pruned.compacted_through, revision - 5);
    // A gateway behind the horizon is told to take a snapshot.
    control.put("/gateways/edge", json!({"apis": ["a0"]})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let behind = control
        .client
        .get(control.url("/v2/gateways/edge/changes?since=1"))
        .header("Authorization", token)
        .send()
        .await
        .unwrap();
    assert_eq!(behind.status(), StatusCode::GONE);
}

async fn deployment_yaml_comes_with_a_token_secret_command(backend: Backend) {
    let Some(control) = Control::start(backend).await else {
        return;
    };
    control.put("/gateways/edge", json!({})).await;
    let response = control
        .get("/gateways/edge/deployment?format=kubernetes&expiryDays=7")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let command = body["secretCommand"].as_str().unwrap();
    assert!(
        command.starts_with("kubectl create secret generic edge-token"),
        "{command}"
    );
    let token = command
        .split("value=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let snapshot = control.snapshot("edge", token).await;
    assert_eq!(
        snapshot.status(),
        StatusCode::OK,
        "the token in the command works"
    );
    let manifest = body["manifest"].as_str().unwrap();
    assert!(
        manifest.contains("config.service.endpoint: \"https://control.example.com\""),
        "{manifest}"
    );
    let wrong = control.get("/gateways/edge/deployment?format=helm").await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
}

async fn private_keys_are_encrypted_at_rest(backend: Backend) {
    // Security: the database never holds a private key in clear, and the API never
    // returns one; gateways get it in their snapshot.
    let Some(control) = Control::start(backend).await else {
        return;
    };
    let site = gatehouse_test_support::pki::TestCa::new("Encryption CA").server(&["site.example"]);
    let (cert, key) = (site.cert_pem.as_str(), site.key_pem.as_str());
    let created = control
        .put(
            "/certificates/site",
            json!({"certificatePem": cert, "privateKeyPem": key}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let shown: Value = control
        .get("/certificates/site")
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.get("privateKeyPem").is_none(), "{shown}");
    let raw = control
        .store
        .get(gatehouse_store::Kind::Certificate, "site")
        .await
        .unwrap()
        .unwrap();
    let stored = raw.body["privateKeyPem"].as_str().unwrap();
    assert!(
        stored.starts_with("gatehouse:v1:") && !stored.contains("BEGIN"),
        "{stored}"
    );
    assert_eq!(raw.body["certificatePem"], cert);

    control.put("/gateways/edge", json!({})).await;
    let token = control.token("edge", &expiry_in(1)).await;
    let snapshot: Value = control.snapshot("edge", &token).await.json().await.unwrap();
    assert_eq!(
        snapshot["configuration"]["certificates"][0]["privateKeyPem"],
        key
    );
}
