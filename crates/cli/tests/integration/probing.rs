//! Regressions for defects found by probing a running gateway from outside with raw
//! requests (issue 16): each test sends the exact bytes through the real binary to a
//! real backend and checks what the backend received, and what the client got.

use std::io::{Read, Write};

use gatehouse_test_support::Echo;

use crate::common::*;

/// The backend's echo in a single `Connection: close` response.
#[track_caller]
fn echoed(text: &str) -> Echo {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "not a 200: {text}");
    Echo::from_slice(body.as_bytes())
}

/// A request for `target` with the all-APIs key, closing the connection after it.
fn get(target: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn rewrite_gateway(backend: &EchoBackend) -> GatewayProcess {
    let operations = "      - id: item\n        method: GET\n        urlTemplate: /items/{id}\n        policy: |\n          <policies><inbound><base/><rewrite-uri template=\"/public/items/{id}?view=full\"/></inbound></policies>\n      - id: query\n        method: GET\n        urlTemplate: /get?a={b}\n        policy: |\n          <policies><inbound><base/><rewrite-uri template=\"/put\"/></inbound></policies>\n      - id: files\n        method: GET\n        urlTemplate: /files/{*rest}\n        policy: |\n          <policies><inbound><base/><rewrite-uri template=\"/store/{rest}\"/></inbound></policies>\n";
    start(&config("shop", &backend.url(), operations, None))
}

#[test]
fn rewrite_uri_values_are_encoded_and_cannot_climb_or_inject() {
    let backend = EchoBackend::start();
    let gateway = rewrite_gateway(&backend);
    let cases = [
        (
            "..%2F..%2Fadmin%2Fsecrets",
            "/public/items/..%2F..%2Fadmin%2Fsecrets",
        ),
        ("a%3Fx%3D1", "/public/items/a%3Fx%3D1"),
        ("a%23frag", "/public/items/a%23frag"),
        ("a%20b", "/public/items/a%20b"),
        ("100%25", "/public/items/100%25"),
        ("%C3%A9t%C3%A9", "/public/items/%C3%A9t%C3%A9"),
        ("caf\u{e9}", "/public/items/caf%C3%A9"),
    ];
    for (value, path) in cases {
        let (text, _) = raw(gateway.http_addr(), &get(&format!("/shop/items/{value}")));
        let echo = echoed(&text);
        assert_eq!(echo.path, path, "{value}");
        // The template's own query is kept: nothing was injected before it.
        assert_eq!(echo.query, "view=full", "{value}");
    }
    // `..` as a whole segment never reaches a backend, encoded or not.
    for value in ["%2E%2E", "%2e%2E", ".."] {
        let (text, _) = raw(gateway.http_addr(), &get(&format!("/shop/items/{value}")));
        assert!(text.starts_with("HTTP/1.1 400"), "{value}: {text}");
    }
    // A catch-all keeps its slashes, but a `%2F` in it cannot make a `..` segment.
    let (text, _) = raw(gateway.http_addr(), &get("/shop/files/a/b%20c"));
    assert_eq!(echoed(&text).path, "/store/a/b%20c");
    let (text, _) = raw(gateway.http_addr(), &get("/shop/files/a%2F..%2F..%2Fadmin"));
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(
        text.contains("InvalidUriParameter") || text.contains("not allowed"),
        "{text}"
    );
    assert_eq!(
        backend.requests(),
        8,
        "refused requests never reached the backend"
    );
}

#[test]
fn query_parameters_the_template_matched_are_not_copied_again() {
    let backend = EchoBackend::start();
    let gateway = rewrite_gateway(&backend);
    let (text, _) = raw(gateway.http_addr(), &get("/shop/get?a=b&c=d"));
    let echo = echoed(&text);
    assert_eq!((echo.path.as_str(), echo.query.as_str()), ("/put", "c=d"));
}

#[test]
fn framing_checks_still_apply_after_an_upgrade_request() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let key = format!("Ocp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\n");
    for upgrade in [
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        "Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n",
    ] {
        let before = backend.requests();
        let request = format!(
            "GET /api/first HTTP/1.1\r\nHost: localhost\r\n{key}{upgrade}\r\n\
             POST /api/smuggled HTTP/1.1\r\nHost: localhost\r\n{key}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        );
        let (text, closed) = raw(gateway.http_addr(), request.as_bytes());
        assert_eq!(
            status_lines(&text),
            ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"],
            "{upgrade}: {text}"
        );
        assert!(closed, "the connection is closed after the refused request");
        assert_eq!(
            backend.requests() - before,
            1,
            "only the first request reached the backend"
        );
    }
}

#[test]
fn host_header_rules() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let key = format!("Ocp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\n");
    let refused = [
        (
            "two Host headers",
            format!("GET /api/x HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n{key}\r\n"),
        ),
        (
            "HTTP/1.1 without Host",
            format!("GET /api/x HTTP/1.1\r\n{key}\r\n"),
        ),
        (
            "Host with userinfo",
            format!("GET /api/x HTTP/1.1\r\nHost: user@a.example\r\n{key}\r\n"),
        ),
    ];
    for (case, request) in &refused {
        let (text, closed) = raw(gateway.http_addr(), request.as_bytes());
        assert!(text.starts_with("HTTP/1.1 400"), "{case}: {text}");
        assert!(text.contains("Host"), "{case}: {text}");
        assert!(closed, "{case}");
    }
    assert_eq!(backend.requests(), 0);

    // HTTP/1.0 needs no Host.
    let (text, _) = raw(
        gateway.http_addr(),
        format!("GET /api/x HTTP/1.0\r\n{key}\r\n").as_bytes(),
    );
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");

    // Absolute form: the target's authority is the host, for routing and for
    // X-Forwarded-Host alike.
    let (text, _) = raw(
        gateway.http_addr(),
        format!(
            "GET http://api.example/api/x HTTP/1.1\r\nHost: evil.example\r\n{key}Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    let echo = echoed(&text);
    assert_eq!(echo.header("x-forwarded-host"), Some("api.example"));
}

#[test]
fn absolute_form_targets_route_by_their_authority() {
    let backend = EchoBackend::builder().name("good").start();
    let other = EchoBackend::builder().name("other").start();
    let yaml = format!(
        "apis:\n  - id: good\n    path: api\n    hostnames: [good.example]\n    serviceUrl: {}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}  - id: other\n    path: api\n    serviceUrl: {}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}",
        backend.url(),
        other.url()
    );
    let gateway = start(&yaml);
    let (text, _) = raw(
        gateway.http_addr(),
        b"GET http://good.example/api/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert!(text.contains("x-backend-name: good"), "{text}");
    let echo = echoed(&text);
    assert_eq!(echo.header("x-forwarded-host"), Some("good.example"));
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_client_error() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    let request = format!(
        "POST /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"
    );
    let addr = gateway.http_addr();
    let (text, closed) = tokio::task::spawn_blocking(move || raw(addr, request.as_bytes()))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("The request body is malformed."), "{text}");
    assert!(closed);
    // Counted and logged as the client's error, not the backend's.
    assert!(
        gateway.wait_for_output(r#""errorReason":"client_body_invalid""#, WAIT),
        "{:?}",
        gateway.stdout_lines()
    );
    assert!(
        !gateway.output_contains("backend_protocol"),
        "not logged as a backend failure"
    );
}

#[tokio::test]
async fn over_long_request_targets_get_414() {
    let backend = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), ANY_OPERATION, None))
        .args(["--workers", "1", "--max-request-line-bytes", "4096"])
        .start();
    let long = format!("/api/{}", "a".repeat(5000));
    let addr = gateway.http_addr();
    for target in [long.clone(), format!("/api/{}", "b".repeat(100_000))] {
        let request = get(&target);
        let (text, closed) = tokio::task::spawn_blocking(move || raw(addr, &request))
            .await
            .unwrap();
        assert!(
            text.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{}: {text}",
            target.len()
        );
        assert!(closed);
    }
    // Under the limit is fine.
    let request = get(&format!("/api/{}", "c".repeat(3000)));
    let (text, _) = tokio::task::spawn_blocking(move || raw(addr, &request))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // HTTP/2: the :path is checked by the gateway itself.
    let response = h2c_client()
        .get(gateway.url(&long))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 414);
    assert_eq!(backend.requests(), 1);
}

#[tokio::test]
async fn an_oversized_http2_header_block_gets_431() {
    let backend = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), ANY_OPERATION, None))
        .args(["--workers", "1", "--max-header-bytes", "16384"])
        .start();
    let response = h2c_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-big", "v".repeat(32 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn request_bodies_have_a_default_limit() {
    let backend = EchoBackend::start();
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, None));
    // A declared length over the default 100 MiB is refused before the backend is
    // called (nothing of the body needs to be sent).
    let request = format!(
        "POST /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nContent-Length: {}\r\n\r\n",
        100 * 1024 * 1024 + 1
    );
    let addr = gateway.http_addr();
    let (text, _) = tokio::task::spawn_blocking(move || raw(addr, request.as_bytes()))
        .await
        .unwrap();
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(backend.requests(), 0);
}

/// Secrets of every kind, as the sweep below sets them.
const SECRET_NAMED_VALUE: &str = "named-value-secret-7f3a9c";
const SUBSCRIPTION_KEY: &str = "subscription-key-secret-91b2e0";
const WRONG_KEY: &str = "wrong-key-secret-0d4e11";
const AUTHORIZATION: &str = "Bearer authorization-secret-55c1aa";

/// Runs every error path of the request path it can reach from outside, with secrets
/// set (a secret named value in a rewritten query and a header, subscription keys in
/// headers and queries, an `Authorization` header), with logs at `trace`, and checks
/// that none of the secrets appears in any log line, response or `/metrics`.
#[tokio::test]
async fn secrets_never_reach_logs_error_bodies_or_metrics() {
    let echo = EchoBackend::start();
    let silent = gatehouse_test_support::SilentBackend::start();
    let refused = refused_addr();
    let fn_policy = "<policies><inbound><base/><rewrite-uri template=\"/api/{id}?code={{fnkey}}\"/><set-header name=\"x-functions-key\" exists-action=\"override\"><value>{{fnkey}}</value></set-header></inbound></policies>";
    let operations = format!(
        "      - id: fn\n        method: \"*\"\n        urlTemplate: /fn/{{id}}\n        policy: |\n          {fn_policy}\n"
    );
    let api = |id: &str, backend: &str| {
        format!("  - id: {id}\n    path: {id}\n    {backend}\n    operations:\n{operations}")
    };
    let yaml = [
        format!(
            "namedValues:\n  - name: fnkey\n    value: {SECRET_NAMED_VALUE}\n    secret: true\n"
        ),
        format!(
            "backends:\n  - id: slow\n    url: {}\n    responseTimeout: 300ms\n",
            silent.url()
        ),
        "apis:\n".to_owned(),
        api("refused", &format!("serviceUrl: http://{refused}")),
        api("slow", "backendId: slow"),
        api("echo", &format!("serviceUrl: {}", echo.url())),
        format!(
            "subscriptions:\n  - id: all\n    scope: /apis\n    primaryKey: {SUBSCRIPTION_KEY}\n"
        ),
    ]
    .concat();
    let gateway = GatewayProcess::builder(BIN)
        .config(yaml)
        .args(["--workers", "1"])
        .env("RUST_LOG", "trace")
        .start();
    let addr = gateway.http_addr();
    let auth = format!("Authorization: {AUTHORIZATION}\r\n");
    let with_key = format!("Ocp-Apim-Subscription-Key: {SUBSCRIPTION_KEY}\r\n");
    let wrong_key = format!("Ocp-Apim-Subscription-Key: {WRONG_KEY}\r\n");
    let requests = [
        // Backend refused, timed out, and reached (the secret goes where it belongs).
        format!(
            "GET /refused/fn/a%20b HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"
        ),
        format!(
            "GET /slow/fn/a%20b HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"
        ),
        format!(
            "GET /echo/fn/a%20b HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"
        ),
        // Keys in the query, valid and not.
        format!(
            "GET /refused/fn/x?subscription-key={SUBSCRIPTION_KEY}&a=1 HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
        format!(
            "GET /echo/fn/x?subscription-key={WRONG_KEY} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
        ),
        // Wrong and missing keys, unknown API and operation.
        format!("GET /echo/fn/x HTTP/1.1\r\nHost: x\r\n{wrong_key}{auth}Connection: close\r\n\r\n"),
        format!("GET /echo/fn/x HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"),
        format!("GET /nowhere/x HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"),
        format!("GET /echo/other HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"),
        // Refused by the framing, Host and dot-segment checks, and a malformed body.
        format!("GET /echo/fn/x HTTP/1.1\r\nHost: x\r\nHost: y\r\n{with_key}{auth}\r\n"),
        format!(
            "GET /echo/fn/%2E%2E HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Connection: close\r\n\r\n"
        ),
        format!(
            "POST /echo/fn/x HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        format!(
            "POST /refused/fn/x HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        ),
        format!(
            "GET /echo/fn/{} HTTP/1.1\r\nHost: x\r\n{with_key}{auth}\r\n",
            "a".repeat(20_000)
        ),
        format!(
            "GET /echo/fn/x HTTP/1.1\r\nHost: x\r\n{with_key}{auth}Bad\0Header: {SECRET_NAMED_VALUE}\r\n\r\n"
        ),
    ];
    let mut responses = String::new();
    for request in requests {
        let (text, _) = tokio::task::spawn_blocking(move || raw(addr, request.as_bytes()))
            .await
            .unwrap();
        responses.push_str(&text);
    }
    // The secret named value did reach the backend, where it belongs.
    assert!(responses.contains(SECRET_NAMED_VALUE), "{responses}");
    let echo_response = responses.clone();
    // Everything else the gateway wrote: logs (after the access log's flush) and metrics.
    assert!(gateway.wait_for_output("\"path\":\"/echo/fn/x\"", WAIT));
    let metrics = metrics_text(gateway.admin_addr()).await;
    let logs = [gateway.stdout_lines(), gateway.stderr_lines()]
        .concat()
        .join("\n");
    assert!(logs.contains("TRACE"), "logs are at trace level");
    for secret in [
        SECRET_NAMED_VALUE,
        SUBSCRIPTION_KEY,
        WRONG_KEY,
        AUTHORIZATION,
    ] {
        let token = secret.trim_start_matches("Bearer ");
        assert!(!logs.contains(token), "{secret} in the logs:\n{logs}");
        assert!(!metrics.contains(token), "{secret} in /metrics");
    }
    // Responses the gateway made itself (all but the echo) carry none either.
    for response in echo_response
        .split("HTTP/1.1 ")
        .filter(|r| !r.contains("\"headers\""))
    {
        for secret in [SECRET_NAMED_VALUE, SUBSCRIPTION_KEY, WRONG_KEY] {
            assert!(
                !response.contains(secret),
                "{secret} in a response: {response}"
            );
        }
    }
}

#[test]
fn a_backend_answering_http_1_0_does_not_change_the_clients_version() {
    // A backend that answers every request with an HTTP/1.0 response and closes.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let backend = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0_u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let gateway = start(&config(
        "api",
        &format!("http://{backend}"),
        ANY_OPERATION,
        None,
    ));
    let (text, _) = raw(gateway.http_addr(), &get("/api/x"));
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("ok"), "{text}");
}
