//! Each policy end to end, through the real gateway. Attribute-level cases and error
//! cases live in the policy crate's unit tests; these prove the gateway wires each one.

use std::time::Duration;

use crate::common::*;

fn with_policy(backend: &EchoBackend, inbound: &str) -> GatewayProcess {
    start(&config(
        "api",
        &backend.url(),
        ANY_OPERATION,
        Some(&inbound_policy(inbound)),
    ))
}

fn with_full_policy(backend: &EchoBackend, policy: &str) -> GatewayProcess {
    start(&config("api", &backend.url(), ANY_OPERATION, Some(policy)))
}

#[tokio::test]
async fn set_header_and_set_query_parameter_change_the_forwarded_request() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<set-header name="X-Added" exists-action="override"><value>one</value></set-header>
<set-header name="X-Remove-Me" exists-action="delete" />
<set-query-parameter name="version" exists-action="override"><value>2</value></set-query-parameter>"#,
    );
    let response = http_client()
        .get(gateway.url("/api/x?version=1&keep=yes"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-Remove-Me", "bye")
        .send()
        .await
        .unwrap();
    let echo = echo(response).await;
    assert_eq!(echo.header("x-added"), Some("one"));
    assert!(echo.header("x-remove-me").is_none());
    assert!(
        echo.query.contains("version=2") && !echo.query.contains("version=1"),
        "{}",
        echo.query
    );
    assert!(echo.query.contains("keep=yes"));
}

#[tokio::test]
async fn outbound_set_header_and_set_status_change_the_response() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend><base /></backend>
  <outbound>
    <base />
    <set-header name="X-Served-By" exists-action="override"><value>gatehouse</value></set-header>
    <set-status code="202" reason="Accepted" />
  </outbound>
  <on-error><base /></on-error>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-served-by"], "gatehouse");
}

#[tokio::test]
async fn set_method_and_set_backend_service_redirect_the_call() {
    let first = EchoBackend::builder().name("first").start();
    let second = EchoBackend::builder().name("second").start();
    let gateway = with_policy(
        &first,
        &format!(
            r#"<set-method>POST</set-method>
<set-backend-service base-url="{}/moved" />"#,
            second.url()
        ),
    );
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.headers()["x-backend-name"], "second");
    let echo = echo(response).await;
    assert_eq!(echo.method, "POST");
    assert_eq!(echo.path, "/moved/x");
    assert_eq!(first.requests(), 0);
}

#[tokio::test]
async fn return_response_answers_without_calling_the_backend() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<return-response>
  <set-status code="418" reason="I'm a teapot" />
  <set-header name="Content-Type" exists-action="override"><value>text/plain</value></set-header>
  <set-body>short and stout</set-body>
</return-response>"#,
    );
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 418);
    assert_eq!(response.text().await.unwrap(), "short and stout");
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn mock_response_answers_with_the_documented_example() {
    let backend = EchoBackend::start();
    let operations = r#"      - id: get-user
        method: GET
        urlTemplate: /users/{id}
        responses:
          - statusCode: 200
            representations:
              - contentType: application/json
                example: '{"id": 1, "name": "Ada"}'
        policy: |
          <policies><inbound><base /><mock-response status-code="200" content-type="application/json" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>
"#;
    let gateway = start(&config("api", &backend.url(), operations, None));
    let response = get(&gateway, "/api/users/1").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"id": 1, "name": "Ada"}"#
    );
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn forward_request_timeout_overrides_the_backend_default() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend><forward-request timeout="1" /></backend>
  <outbound><base /></outbound>
  <on-error><base /></on-error>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-test-delay-ms", "2500")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
}

#[tokio::test]
async fn on_error_can_replace_a_backend_failure_response() {
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error>
    <return-response>
      <set-status code="503" reason="Service Unavailable" />
      <set-body>try later</set-body>
    </return-response>
  </on-error>
</policies>"#;
    let gateway = start(&config(
        "api",
        &format!("http://{}", refused_addr()),
        ANY_OPERATION,
        Some(policy),
    ));
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "try later");
}

#[tokio::test]
async fn check_header_refuses_requests_without_the_expected_value() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<check-header name="X-Client" failed-check-httpcode="403" failed-check-error-message="client not allowed" ignore-case="true">
  <value>mobile</value>
  <value>web</value>
</check-header>"#,
    );
    let client = http_client();
    let call = |value: Option<&'static str>| {
        let mut request = client
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY);
        if let Some(value) = value {
            request = request.header("X-Client", value);
        }
        request.send()
    };
    assert_eq!(call(Some("WEB")).await.unwrap().status(), 200);
    let refused = call(Some("tv")).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("client not allowed"));
    assert_eq!(call(None).await.unwrap().status(), 403);
}

#[tokio::test]
async fn ip_filter_forbids_listed_addresses() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<ip-filter action="forbid"><address>127.0.0.1</address></ip-filter>"#,
    );
    assert_eq!(get(&gateway, "/api/x").await.status(), 403);
    let gateway = with_policy(
        &backend,
        r#"<ip-filter action="allow"><address-range from="127.0.0.0" to="127.255.255.255" /></ip-filter>"#,
    );
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
}

#[tokio::test]
async fn cors_answers_preflights_and_decorates_responses() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<cors allow-credentials="true">
  <allowed-origins><origin>https://app.example.com</origin></allowed-origins>
  <allowed-methods preflight-result-max-age="300"><method>GET</method><method>POST</method></allowed-methods>
  <allowed-headers><header>content-type</header></allowed-headers>
  <expose-headers><header>x-request-id</header></expose-headers>
</cors>"#,
    );
    let client = http_client();
    let preflight = client
        .request(reqwest::Method::OPTIONS, gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );
    assert_eq!(preflight.headers()["access-control-max-age"], "300");
    assert_eq!(
        backend.requests(),
        0,
        "preflights are answered by the gateway"
    );
    let actual = client
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 200);
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        actual.headers()["access-control-expose-headers"],
        "x-request-id"
    );
}

#[tokio::test]
async fn rate_limit_by_key_answers_429_with_retry_after() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<rate-limit-by-key calls="3" renewal-period="60" counter-key="@(context.Request.Headers.GetValueOrDefault("X-Tenant",""))" remaining-calls-header-name="X-Remaining" />"#,
    );
    let client = http_client();
    let call = |tenant: &'static str| {
        client
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("X-Tenant", tenant)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(call("a").await.unwrap().status(), 200);
    }
    let limited = call("a").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit is exceeded. Try again in"),
        "{body}"
    );
    assert_eq!(
        call("b").await.unwrap().status(),
        200,
        "another key has its own counter"
    );
}

#[tokio::test]
async fn rate_limit_counts_per_subscription() {
    let backend = EchoBackend::start();
    let gateway = with_policy(&backend, r#"<rate-limit calls="2" renewal-period="30" />"#);
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
    let limited = get(&gateway, "/api/x").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn quota_by_key_answers_403_when_the_volume_is_used_up() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<quota-by-key calls="2" renewal-period="3600" counter-key="@(context.Request.IpAddress)" />"#,
    );
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
    assert_eq!(get(&gateway, "/api/x").await.status(), 200);
    let over = get(&gateway, "/api/x").await;
    assert_eq!(over.status(), 403);
    assert!(over.headers().contains_key("retry-after"));
    let body: serde_json::Value = over.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Out of call volume quota."),
        "{body}"
    );
}

#[tokio::test]
async fn limit_concurrency_refuses_requests_over_the_limit() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend>
    <limit-concurrency key="backend" max-count="1">
      <forward-request timeout="10" />
    </limit-concurrency>
  </backend>
  <outbound><base /></outbound>
  <on-error><base /></on-error>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    let url = gateway.url("/api/slow");
    let slow = tokio::spawn(async move {
        http_client()
            .get(url)
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("x-test-delay-ms", "1500")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(wait_for_async(|| async { backend.requests() == 1 }, SHORT).await);
    assert_eq!(
        get(&gateway, "/api/x").await.status(),
        429,
        "second concurrent request refused"
    );
    assert_eq!(slow.await.unwrap(), 200);
    // The gateway releases the permit when it has sent the whole first response, which
    // may be after this client got it.
    assert!(
        wait_for_async(
            || async { get(&gateway, "/api/x").await.status() == 200 },
            WAIT
        )
        .await,
        "the permit is released when the first response ends"
    );
}

#[tokio::test]
async fn named_values_are_substituted_and_secrets_stay_out_of_logs() {
    let backend = EchoBackend::start();
    let yaml = format!(
        "namedValues:\n  - name: token\n    value: super-secret-value\n    secret: true\n{}",
        config(
            "api",
            &backend.url(),
            ANY_OPERATION,
            Some(&inbound_policy(
                r#"<set-header name="Authorization" exists-action="override"><value>Bearer {{token}}</value></set-header>"#
            ))
        )
    );
    let gateway = start(&yaml);
    let echo = echo(get(&gateway, "/api/x").await).await;
    assert_eq!(
        echo.header("authorization"),
        Some("Bearer super-secret-value")
    );
    // Security: secret named values never reach the gateway's own output. The access
    // log line is written off the request path: wait for it, so the check covers it.
    assert!(
        gateway.wait_for_output("\"kind\":\"request\"", WAIT),
        "no access log line"
    );
    assert!(!gateway.output_contains("super-secret-value"));
}

#[tokio::test]
async fn product_policies_apply_to_calls_through_the_product() {
    let backend = EchoBackend::start();
    let yaml = format!(
        r#"apis:
  - id: api
    path: api
    serviceUrl: {}
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
products:
  - id: gold
    apis: [api]
    policy: |
      <policies><inbound><base /><set-header name="X-Product" exists-action="override"><value>gold</value></set-header></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>
subscriptions:
  - {{ id: gold-sub, scope: /products/gold, primaryKey: gold-key-0001 }}
  - {{ id: api-sub, scope: /apis/api, primaryKey: api-key-00001 }}
"#,
        backend.url()
    );
    let gateway = start(&yaml);
    let client = http_client();
    let call = |key: &'static str| {
        client
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", key)
            .send()
    };
    assert_eq!(
        echo(call("gold-key-0001").await.unwrap())
            .await
            .header("x-product"),
        Some("gold")
    );
    assert_eq!(
        echo(call("api-key-00001").await.unwrap())
            .await
            .header("x-product"),
        None
    );
}

#[tokio::test]
async fn api_level_cors_answers_preflights_without_a_key_or_an_options_operation() {
    let backend = EchoBackend::start();
    let operations = "      - id: get-only\n        method: GET\n        urlTemplate: /things\n";
    let cors = inbound_policy(
        r#"<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods><method>GET</method></allowed-methods></cors>"#,
    );
    let gateway = start(&config("api", &backend.url(), operations, Some(&cors)));
    let preflight = http_client()
        .request(reqwest::Method::OPTIONS, gateway.url("/api/things"))
        .header("Origin", "https://any.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let plain_options = http_client()
        .request(reqwest::Method::OPTIONS, gateway.url("/api/things"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain_options.status(),
        404,
        "a non-preflight OPTIONS matches no operation"
    );
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn fail_on_error_status_code_runs_on_error_for_backend_errors() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <backend><forward-request fail-on-error-status-code="true"/></backend>
  <outbound><set-header name="x-outbound" exists-action="override"><value>ran</value></set-header></outbound>
  <on-error><set-header name="x-on-error" exists-action="override"><value>ran</value></set-header></on-error>
</policies>"#;
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, Some(policy)));
    let send = |status: &'static str| {
        http_client()
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("x-test-status", status)
            .send()
    };
    // 2xx and 3xx: outbound, as usual.
    let ok = send("200").await.unwrap();
    assert_eq!(ok.headers()["x-outbound"], "ran");
    assert!(ok.headers().get("x-on-error").is_none());
    // 4xx and 5xx: on-error instead, on the backend's response and body.
    for status in ["404", "503"] {
        let failed = send(status).await.unwrap();
        assert_eq!(failed.status().as_str(), status);
        assert_eq!(failed.headers()["x-on-error"], "ran", "{status}");
        assert!(failed.headers().get("x-outbound").is_none(), "{status}");
        let echo = Echo::from_slice(&failed.bytes().await.unwrap());
        assert_eq!(echo.path, "/x", "the backend's body is sent");
    }
}

/// A backend that answers `GET|POST /r/{status}` with that redirect status and
/// `Location: {target}/landed`, closing each connection.
fn redirector(target: String) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let status = line
                .split('/')
                .nth(2)
                .and_then(|s| s.split(' ').next())
                .unwrap_or("302")
                .to_owned();
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = reader.get_mut().write_all(
                format!("HTTP/1.1 {status} Redirect\r\nLocation: {target}/landed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
            );
        }
    });
    url
}

#[tokio::test]
async fn follow_redirects_follows_backend_redirects() {
    let echo_backend = EchoBackend::start();
    let redirecting = redirector(echo_backend.url());
    let follow =
        r#"<policies><backend><forward-request follow-redirects="true"/></backend></policies>"#;
    let gateway = start(&config("api", &redirecting, ANY_OPERATION, Some(follow)));
    let request = |method: reqwest::Method, path: &str| {
        http_client()
            .request(method, gateway.url(path))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("authorization", "Bearer for-the-first-backend-only")
    };
    // GET after 302: followed, to the other backend, with its Host, without the
    // credentials meant for the first.
    let landed = echo(
        request(reqwest::Method::GET, "/api/r/302")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (landed.method.as_str(), landed.path.as_str()),
        ("GET", "/landed")
    );
    assert_eq!(
        landed.header("host"),
        echo_backend.url().strip_prefix("http://")
    );
    assert_eq!(landed.header("authorization"), None);
    // 303 after a POST: GET without the body.
    let landed = echo(
        request(reqwest::Method::POST, "/api/r/303")
            .body("data")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((landed.method.as_str(), landed.body_bytes), ("GET", 0));
    // 307 of a POST would need the body again, which was streamed: returned as it is.
    let response = request(reqwest::Method::POST, "/api/r/307")
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    // 307 of a GET: followed with the method kept.
    let landed = echo(
        request(reqwest::Method::DELETE, "/api/r/307")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(landed.method, "DELETE");

    // Without the setting, redirects go back to the client.
    let gateway = start(&config("api", &redirecting, ANY_OPERATION, None));
    let response = http_client()
        .get(gateway.url("/api/r/302"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn buffer_request_body_sends_a_length_and_lets_redirects_replay_the_body() {
    let echo_backend = EchoBackend::start();
    let redirecting = redirector(echo_backend.url());
    let policy = r#"<policies><backend><forward-request buffer-request-body="true" follow-redirects="true"/></backend></policies>"#;
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &redirecting, ANY_OPERATION, Some(policy)))
        .args(["--workers", "1", "--max-buffered-body-bytes", "1000"])
        .start();
    // A chunked upload reaches the backend whole, with its length, and a 307 sends it
    // again.
    let chunks = futures_util::stream::iter(
        ["hello ", "world"].map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))),
    );
    let landed = echo(
        http_client()
            .put(gateway.url("/api/r/307"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .body(reqwest::Body::wrap_stream(chunks))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((landed.method.as_str(), landed.body_bytes), ("PUT", 11));
    assert_eq!(landed.header("content-length"), Some("11"));
    assert_eq!(landed.header("transfer-encoding"), None);
    // Over the buffering limit: 413, nothing sent.
    let response = http_client()
        .put(gateway.url("/api/r/307"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .body(vec![b'x'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(echo_backend.requests(), 1);
}

#[tokio::test]
async fn a_policys_reason_phrase_reaches_the_http11_status_line() {
    // Issue 13, item 5: the standard phrase was always sent.
    let backend = EchoBackend::start();
    let operations = "      - id: slow\n        method: GET\n        urlTemplate: /slow\n        policy: |\n          <policies><inbound><return-response><set-status code=\"429\" reason=\"Slow down\" /></return-response></inbound></policies>\n      - id: bare\n        method: GET\n        urlTemplate: /bare\n        policy: |\n          <policies><inbound><return-response><set-status code=\"429\" /></return-response></inbound></policies>\n      - id: relayed\n        method: GET\n        urlTemplate: /relayed\n        policy: |\n          <policies><inbound><base /></inbound><outbound><set-status code=\"299\" reason=\"Fine Enough\" /></outbound></policies>\n";
    let gateway = start(&config("api", &backend.url(), operations, None));
    let addr = gateway.http_addr();
    for (path, expected) in [
        ("/api/slow", "HTTP/1.1 429 Slow down"),
        ("/api/bare", "HTTP/1.1 429 Too Many Requests"),
        ("/api/relayed", "HTTP/1.1 299 Fine Enough"),
    ] {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nConnection: close\r\n\r\n"
        );
        let (answer, _) = raw(addr, request.as_bytes());
        assert_eq!(
            status_lines(&answer).first().copied(),
            Some(expected),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn choose_and_set_variable_evaluate_policy_expressions_per_request() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound>
    <set-variable name="tier" value="@(context.Request.Headers.GetValueOrDefault("X-Tier", "none").ToLower())" />
    <choose>
      <when condition="@((string)context.Variables["tier"] == "gold")">
        <set-header name="X-Route" exists-action="override"><value>gold</value></set-header>
      </when>
      <otherwise>
        <set-header name="X-Route" exists-action="override"><value>standard</value></set-header>
      </otherwise>
    </choose>
    <set-header name="X-Seen-Path" exists-action="override"><value>@(context.Request.Url.Path)</value></set-header>
  </inbound>
  <outbound>
    <set-header name="X-Tier" exists-action="override"><value>@{ var tier = (string)context.Variables["tier"]; return $"{tier}/{context.Response.StatusCode}"; }</value></set-header>
  </outbound>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    for (tier, route, shown) in [
        (Some("GOLD"), "gold", "gold/200"),
        (None, "standard", "none/200"),
    ] {
        let mut request = http_client()
            .get(gateway.url("/api/items/7"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY);
        if let Some(tier) = tier {
            request = request.header("X-Tier", tier);
        }
        let response = request.send().await.unwrap();
        assert_eq!(
            response.headers().get("x-tier").unwrap().to_str().unwrap(),
            shown
        );
        let echo = echo(response).await;
        assert_eq!(echo.header("x-route"), Some(route));
        assert_eq!(echo.header("x-seen-path"), Some("/items/7"));
    }
}

#[tokio::test]
async fn on_error_reads_context_last_error() {
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <backend><base /></backend>
  <outbound><base /></outbound>
  <on-error>
    <set-header name="X-Error" exists-action="override"><value>@($"{context.LastError.Source}: {context.LastError.Reason}")</value></set-header>
  </on-error>
</policies>"#;
    let gateway = start(&config(
        "api",
        &format!("http://{}", refused_addr()),
        ANY_OPERATION,
        Some(policy),
    ));
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 502);
    assert_eq!(
        response.headers().get("x-error").unwrap().to_str().unwrap(),
        "forward-request: BackendConnectionFailure"
    );
}

#[tokio::test]
async fn an_expression_that_fails_at_request_time_answers_500_and_runs_on_error() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound><set-variable name="n" value="@(int.Parse(context.Request.Headers.GetValueOrDefault("X-Count", "x")))" /></inbound>
  <on-error>
    <set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Reason)</value></set-header>
  </on-error>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 500);
    assert_eq!(
        response
            .headers()
            .get("x-reason")
            .unwrap()
            .to_str()
            .unwrap(),
        "ExpressionValueEvaluationFailure"
    );
    let ok = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-Count", "3")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn on_error_can_rewrite_apims_subscription_key_errors() {
    let backend = EchoBackend::start();
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <on-error>
    <set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Source + "/" + context.LastError.Reason)</value></set-header>
    <choose>
      <when condition="@(context.LastError.Reason == "SubscriptionKeyNotFound")">
        <return-response>
          <set-status code="401" reason="Unauthorized" />
          <set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>
          <set-body>{"error":"send your key in Ocp-Apim-Subscription-Key"}</set-body>
        </return-response>
      </when>
    </choose>
  </on-error>
</policies>"#;
    let gateway = with_full_policy(&backend, policy);
    let missing = http_client()
        .get(gateway.url("/api/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(
        missing.text().await.unwrap(),
        r#"{"error":"send your key in Ocp-Apim-Subscription-Key"}"#
    );
    let invalid = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", "not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 401);
    assert_eq!(
        invalid.headers().get("x-reason").unwrap().to_str().unwrap(),
        "authorization/SubscriptionKeyInvalid"
    );
    assert!(
        invalid
            .text()
            .await
            .unwrap()
            .contains("invalid subscription key")
    );
    // With a key, nothing of that runs.
    let ok = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("x-reason").is_none());
}

#[tokio::test]
async fn trace_writes_a_log_line_with_the_request_id() {
    let backend = EchoBackend::start();
    let gateway = with_full_policy(
        &backend,
        r#"<policies>
  <inbound>
    <trace source="orders-api" severity="information">
      <message>@("inbound " + context.Request.Url.Path)</message>
      <metadata name="tier" value="gold" />
    </trace>
  </inbound>
  <outbound>
    <trace source="orders-api" severity="error"><message>@("answered " + context.Response.StatusCode)</message></trace>
  </outbound>
</policies>"#,
    );
    let response = get(&gateway, "/api/items").await;
    assert_eq!(response.status(), 200);
    assert!(
        gateway.wait_for_output("inbound /items", WAIT),
        "the inbound trace"
    );
    assert!(
        gateway.wait_for_output("answered 200", WAIT),
        "the outbound trace"
    );
    assert!(gateway.output_contains("orders-api") && gateway.output_contains("tier=gold"));
    assert!(
        gateway.output_contains("request_id"),
        "the request's id is on the line"
    );
}

#[tokio::test]
async fn include_fragment_runs_a_fragment_from_the_configuration_file() {
    let backend = EchoBackend::start();
    let policy =
        r#"<policies><inbound><include-fragment fragment-id="stamp" /></inbound></policies>"#;
    let yaml = format!(
        "fragments:\n  - id: stamp\n    value: |\n      <fragment>\n        <set-variable name=\"who\" value=\"@(context.Request.Headers.GetValueOrDefault(&quot;X-Who&quot;, &quot;nobody&quot;))\" />\n        <set-header name=\"X-Stamp\" exists-action=\"override\"><value>@((string)context.Variables[\"who\"])</value></set-header>\n      </fragment>\n{}",
        config("api", &backend.url(), ANY_OPERATION, Some(policy))
    );
    let gateway = start(&yaml);
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-Who", "ada")
        .send()
        .await
        .unwrap();
    let echo = echo(response).await;
    assert_eq!(echo.header("x-stamp"), Some("ada"));
}

#[tokio::test]
async fn bodies_are_read_and_replaced_only_where_the_policies_need_them() {
    let backend = EchoBackend::start();
    let operations = r#"      - id: transform
        method: POST
        urlTemplate: /transform
        policy: |
          <policies><inbound><base /><set-body>@{
              var body = context.Request.Body.As<JObject>(preserveContent: true);
              body["seen"] = true;
              body["count"] = (int)body["count"] + 1;
              return body.ToString();
          }</set-body></inbound></policies>
      - id: fixed
        method: POST
        urlTemplate: /fixed
        policy: |
          <policies><inbound><base /><set-body><![CDATA[replaced]]></set-body></inbound></policies>
      - id: wrap
        method: "*"
        urlTemplate: /bytes/*
        policy: |
          <policies><inbound><base /></inbound><outbound><base /><set-body>@{
              var wrapped = new JObject();
              wrapped["status"] = context.Response.StatusCode;
              wrapped["length"] = context.Response.Body.As<string>().Length;
              return wrapped.ToString();
          }</set-body></outbound></policies>
      - id: failing
        method: GET
        urlTemplate: /failing
        policy: |
          <policies><inbound><base /><check-header name="X-Required" failed-check-httpcode="401" failed-check-error-message="missing" ignore-case="true" /></inbound><on-error><base /><set-body>@("{\"reason\":\"" + context.LastError.Reason + "\",\"was\":" + context.Response.Body.As<string>(true) + "}")</set-body></on-error></policies>
"#;
    let gateway = GatewayProcess::builder(BIN)
        .config(config("api", &backend.url(), operations, None))
        .args(["--workers", "1", "--max-buffered-body-bytes", "1000"])
        .start();
    let post = |path: &str| {
        http_client()
            .post(gateway.url(path))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("x-test-mirror", "1")
            .header("content-type", "application/json")
    };

    // The request body, edited by an expression, reaches the backend with its length.
    let response = post("/api/transform")
        .body(r#"{"count":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"count": 2, "seen": true}));

    // A chunked upload is read whole first, too.
    let chunks = futures_util::stream::iter(
        [r#"{"cou"#, r#"nt":41}"#].map(|chunk| Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))),
    );
    let response = post("/api/transform")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["count"], 42);

    // A body that is not JSON fails the expression: 500, the backend is not called.
    let before = backend.requests();
    let response = post("/api/transform")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    // Over the buffering limit: 413 before anything reaches the backend.
    let response = post("/api/transform")
        .body(format!(r#"{{"count":1,"pad":"{}"}}"#, "x".repeat(1000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(backend.requests(), before, "nothing was forwarded");

    // Replacing a body needs no buffering: any size may come in, the new body goes out.
    let response = post("/api/fixed")
        .body(vec![b'x'; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "8");
    assert_eq!(response.text().await.unwrap(), "replaced");

    // Outbound reads the backend's body and replaces it.
    let response = get(&gateway, "/api/bytes/300").await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": 200, "length": 300}));
    // A backend body over the limit: 502, with a log line that says why.
    let response = get(&gateway, "/api/bytes/5000").await;
    assert_eq!(response.status(), 502);
    assert!(
        gateway.wait_for_output("larger than 1000 bytes", std::time::Duration::from_secs(5)),
        "{:?}",
        gateway.stdout_lines()
    );

    // on-error sees the error's body and replaces it.
    let response = get(&gateway, "/api/failing").await;
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "HeaderNotFound");
    assert_eq!(body["was"]["statusCode"], 401);
}

#[tokio::test]
async fn expressions_read_the_api_operation_product_original_url_and_request_id() {
    let backend = EchoBackend::start();
    let yaml = format!(
        r#"apis:
  - id: orders
    displayName: Orders API
    path: shop
    serviceUrl: {backend}
    policy: |
      <policies><inbound><base />
        <set-header name="X-Api" exists-action="override"><value>@(context.Api.Id + "|" + context.Api.Name + "|" + context.Api.Path)</value></set-header>
        <set-header name="X-Operation" exists-action="override"><value>@(context.Operation.Id + "|" + context.Operation.Method + "|" + context.Operation.UrlTemplate)</value></set-header>
        <set-header name="X-Product" exists-action="override"><value>@(context.Product?.Name ?? "none")</value></set-header>
        <set-header name="X-Subscription" exists-action="override"><value>@(context.Subscription.Name)</value></set-header>
        <set-header name="X-Original" exists-action="override"><value>@(context.Request.OriginalUrl.Host + "|" + context.Request.OriginalUrl.Path + "|" + context.Request.OriginalUrl.Query.GetValueOrDefault("q", ""))</value></set-header>
        <set-header name="X-Backend-Host" exists-action="override"><value>@(context.Request.Url.Host)</value></set-header>
        <set-header name="X-Request-Id" exists-action="override"><value>@(context.RequestId)</value></set-header>
      </inbound></policies>
    operations:
      - id: get-order
        displayName: Get an order
        method: GET
        urlTemplate: /orders/{{id}}
products:
  - id: gold
    displayName: Gold tier
    apis: [orders]
subscriptions:
  - id: contoso
    displayName: Contoso app
    scope: /products/gold
    primaryKey: {ALL_APIS_KEY}
"#,
        backend = backend.url()
    );
    let gateway = start(&yaml);
    let response = http_client()
        .get(gateway.url("/shop/orders/7?q=find%20me"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    let landed = echo(response).await;
    assert_eq!(landed.header("x-api"), Some("orders|Orders API|shop"));
    assert_eq!(
        landed.header("x-operation"),
        Some("get-order|GET|/orders/{id}")
    );
    assert_eq!(landed.header("x-product"), Some("Gold tier"));
    assert_eq!(landed.header("x-subscription"), Some("Contoso app"));
    assert_eq!(
        landed.header("x-original"),
        Some("127.0.0.1|/shop/orders/7|find me")
    );
    assert_eq!(landed.header("x-backend-host"), Some("127.0.0.1"));
    // The id the policies saw is the one in the access log.
    let request_id = landed.header("x-request-id").unwrap().to_owned();
    assert_eq!(request_id.len(), 36, "{request_id}");
    assert!(
        gateway.wait_for_output(
            &format!("\"requestId\":\"{request_id}\""),
            std::time::Duration::from_secs(5)
        ),
        "{:?}",
        gateway.stdout_lines()
    );
}

#[tokio::test]
async fn send_request_calls_another_service_and_later_policies_read_its_response() {
    let backend = EchoBackend::start();
    let service = EchoBackend::builder().name("token-service").start();
    let silent = gatehouse_test_support::SilentBackend::start();
    let service_url = service.url();
    let silent_url = format!("http://{}", silent.addr());
    let operations = format!(
        r#"      - id: enrich
        method: GET
        urlTemplate: /enrich
        policy: |
          <policies><inbound><base />
            <send-request mode="new" response-variable-name="lookup" timeout="5">
              <set-url>@("{service_url}/lookup/" + context.Request.Headers.GetValueOrDefault("X-User", "anonymous"))</set-url>
              <set-method>POST</set-method>
              <set-header name="X-Called-By" exists-action="override"><value>gatehouse</value></set-header>
              <set-body>{{"q":1}}</set-body>
            </send-request>
            <set-header name="X-Lookup-Path" exists-action="override"><value>@((string)((IResponse)context.Variables["lookup"]).Body.As<JObject>()["path"])</value></set-header>
            <set-header name="X-Lookup-Status" exists-action="override"><value>@(((IResponse)context.Variables["lookup"]).StatusCode)</value></set-header>
            <set-header name="X-Lookup-Backend" exists-action="override"><value>@(((IResponse)context.Variables["lookup"]).Headers.GetValueOrDefault("x-backend-name", ""))</value></set-header>
          </inbound></policies>
      - id: relay
        method: GET
        urlTemplate: /relay
        policy: |
          <policies><inbound><base />
            <send-request mode="new" response-variable-name="upstream">
              <set-url>{service_url}/status</set-url>
              <set-header name="x-test-status" exists-action="override"><value>503</value></set-header>
            </send-request>
            <return-response response-variable-name="upstream">
              <set-header name="X-Relayed" exists-action="override"><value>yes</value></set-header>
            </return-response>
          </inbound></policies>
      - id: lenient
        method: GET
        urlTemplate: /lenient
        policy: |
          <policies><inbound><base />
            <send-request mode="new" response-variable-name="slow" timeout="1" ignore-error="true">
              <set-url>{silent_url}/</set-url>
            </send-request>
            <set-header name="X-Slow" exists-action="override"><value>@(context.Variables["slow"] == null ? "none" : "some")</value></set-header>
          </inbound></policies>
      - id: strict
        method: GET
        urlTemplate: /strict
        policy: |
          <policies><inbound><base />
            <send-request mode="new" response-variable-name="slow" timeout="1">
              <set-url>{silent_url}/</set-url>
            </send-request>
          </inbound>
          <on-error><base />
            <return-response>
              <set-status code="503" reason="Dependency down" />
              <set-body>@(context.LastError.Source + ": " + context.LastError.Reason)</set-body>
            </return-response>
          </on-error></policies>
"#
    );
    let gateway = start(&config("api", &backend.url(), &operations, None));

    let response = http_client()
        .get(gateway.url("/api/enrich"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-User", "ada")
        .send()
        .await
        .unwrap();
    let landed = echo(response).await;
    assert_eq!(landed.header("x-lookup-path"), Some("/lookup/ada"));
    assert_eq!(landed.header("x-lookup-status"), Some("200"));
    assert_eq!(landed.header("x-lookup-backend"), Some("token-service"));
    assert_eq!(service.requests(), 1);

    // The stored response, relayed as it is (status and body), with a header added.
    let response = get(&gateway, "/api/relay").await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-relayed"], "yes");
    let relayed = Echo::from_slice(&response.bytes().await.unwrap());
    assert_eq!(relayed.path, "/status");
    assert_eq!(
        backend.requests(),
        1,
        "relay never reached the API's backend"
    );

    // A call that times out: ignored, or on-error.
    let response = get(&gateway, "/api/lenient").await;
    let landed = echo(response).await;
    assert_eq!(landed.header("x-slow"), Some("none"));
    let response = get(&gateway, "/api/strict").await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.text().await.unwrap(),
        "send-request: BackendConnectionFailure"
    );
}

#[tokio::test]
async fn on_error_can_rewrite_operation_not_found() {
    let backend = EchoBackend::start();
    let operations = "      - id: only\n        method: GET\n        urlTemplate: /only\n";
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <on-error>
    <base />
    <set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Source + "/" + context.LastError.Reason)</value></set-header>
    <set-body>@("{\"missing\":\"" + context.Request.Url.Path + "\"}")</set-body>
  </on-error>
</policies>"#;
    let gateway = start(&config("api", &backend.url(), operations, Some(policy)));
    for (method, path) in [("GET", "/api/elsewhere"), ("DELETE", "/api/only")] {
        let response = http_client()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                gateway.url(path),
            )
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            response.headers()["x-reason"],
            "configuration/OperationNotFound"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        // No operation matched: the path as the client sent it.
        assert_eq!(body["missing"], path);
    }
    assert_eq!(backend.requests(), 0);
}

#[tokio::test]
async fn an_increment_condition_counts_only_the_responses_it_names() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<rate-limit-by-key calls="1" renewal-period="60" counter-key="@(context.Request.IpAddress)" increment-condition="@(context.Response.StatusCode >= 200 &amp;&amp; context.Response.StatusCode &lt; 300)" />"#,
    );
    let call = |status: u16| {
        http_client()
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("x-test-status", status.to_string())
            .send()
    };
    for _ in 0..3 {
        assert_eq!(
            call(503).await.unwrap().status(),
            503,
            "failures are not counted"
        );
    }
    assert_eq!(call(200).await.unwrap().status(), 200);
    assert_eq!(
        call(200).await.unwrap().status(),
        429,
        "the success used the limit up"
    );
}

/// A token endpoint on loopback: answers each request with `answer` (status, JSON) and
/// sends each request's body to the returned channel.
fn token_endpoint(answer: (u16, &'static str)) -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/oauth2/v2.0/token",
        listener.local_addr().unwrap()
    );
    let (bodies, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = bodies.send(String::from_utf8_lossy(&body).into_owned());
            let (status, json) = answer;
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
                json.len()
            );
        }
    });
    (url, received)
}

/// A gateway whose API uses `authentication-managed-identity`, with an identity at
/// `token_url` whose secret (`s3cr3t-value`, with a line end) is a file in `dir`.
fn with_identity(
    backend: &EchoBackend,
    token_url: &str,
    dir: &tempfile::TempDir,
) -> GatewayProcess {
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, "s3cr3t-value\n").unwrap();
    GatewayProcess::builder(BIN)
        .config(config(
            "api",
            &backend.url(),
            ANY_OPERATION,
            Some(&inbound_policy(
                r#"<authentication-managed-identity resource="api://orders-backend" />"#,
            )),
        ))
        .args(["--workers", "1"])
        .args(["--identity-token-url", token_url])
        .args(["--identity-client-id", "gatehouse-gw"])
        .arg("--identity-client-secret-file")
        .arg(secret_file.to_str().unwrap())
        .start()
}

#[tokio::test]
async fn authentication_managed_identity_uses_the_gateways_client_credentials() {
    let backend = EchoBackend::start();
    let (token_url, bodies) = token_endpoint((
        200,
        r#"{"token_type":"Bearer","expires_in":"3599","access_token":"eyJ.token.sig"}"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let gateway = with_identity(&backend, &token_url, &dir);
    for _ in 0..2 {
        let landed = echo(
            http_client()
                .get(gateway.url("/api/x"))
                .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
                .header("Authorization", "Basic client-credentials")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(landed.header("authorization"), Some("Bearer eyJ.token.sig"));
    }
    // One token request (cached), as client credentials with the resource's scope.
    let body = bodies
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["client_id"], "gatehouse-gw");
    assert_eq!(form["client_secret"], "s3cr3t-value");
    assert_eq!(form["scope"], "api://orders-backend/.default");
    assert!(bodies.try_recv().is_err(), "the token was cached");
    // Neither the secret nor the token in any log line.
    for line in gateway.stdout_lines().iter().chain(&gateway.stderr_lines()) {
        assert!(
            !line.contains("s3cr3t-value") && !line.contains("eyJ.token.sig"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_refused_token_request_fails_the_request_without_leaking_the_secret() {
    let backend = EchoBackend::start();
    let (token_url, _bodies) = token_endpoint((
        401,
        r#"{"error":"invalid_client","error_description":"bad secret s3cr3t-value"}"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let gateway = with_identity(&backend, &token_url, &dir);
    let response = get(&gateway, "/api/x").await;
    assert_eq!(response.status(), 500);
    assert!(gateway.wait_for_output("invalid_client", std::time::Duration::from_secs(5)));
    assert_eq!(backend.requests(), 0);
    for line in gateway.stdout_lines().iter().chain(&gateway.stderr_lines()) {
        assert!(!line.contains("s3cr3t-value"), "{line}");
    }
}

#[tokio::test]
async fn on_error_runs_for_a_malformed_request_body() {
    let backend = EchoBackend::start();
    let operations = r#"      - id: reads
        method: POST
        urlTemplate: /reads
        policy: |
          <policies><inbound><base /><set-variable name="b" value="@(context.Request.Body.As<string>())" /></inbound><on-error><base /></on-error></policies>
      - id: streams
        method: POST
        urlTemplate: /streams
"#;
    let policy = r#"<policies>
  <inbound><base /></inbound>
  <on-error>
    <set-header name="X-Reason" exists-action="override"><value>@(context.LastError.Source + "/" + context.LastError.Reason)</value></set-header>
  </on-error>
</policies>"#;
    let gateway = start(&config("api", &backend.url(), operations, Some(policy)));
    // Read whole for a policy (before inbound) or streamed to the backend: either way
    // the bad chunk size is the client's fault, and on-error sees it.
    for path in ["/api/reads", "/api/streams"] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"
        );
        let (answer, _) = raw(gateway.http_addr(), request.as_bytes());
        assert_eq!(
            status_lines(&answer).first().copied(),
            Some("HTTP/1.1 400 Bad Request"),
            "{path}: {answer}"
        );
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("x-reason: forward-request/clientconnectionfailure"),
            "{path}: {answer}"
        );
    }
}

/// The chunk sizes of a raw chunked HTTP/1.1 answer.
fn chunk_sizes(answer: &str) -> Vec<usize> {
    let Some((_, mut body)) = answer.split_once("\r\n\r\n") else {
        return Vec::new();
    };
    let mut sizes = Vec::new();
    while let Some((line, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(line.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        sizes.push(size);
        body = &rest[size.min(rest.len())..];
        body = body.strip_prefix("\r\n").unwrap_or(body);
    }
    sizes
}

#[tokio::test]
async fn buffer_response_collects_chunks_up_to_8_kib_and_streams_without_it() {
    let backend = EchoBackend::start();
    let operations = r#"      - id: buffered
        method: GET
        urlTemplate: /buffered/*
        policy: |
          <policies><inbound><base /><rewrite-uri template="/bytes/20000?chunk_size=100&amp;chunked=true" copy-unmatched-params="false" /></inbound><backend><forward-request buffer-response="true" /></backend></policies>
      - id: streamed
        method: GET
        urlTemplate: /streamed/*
        policy: |
          <policies><inbound><base /><rewrite-uri template="/bytes/20000?chunk_size=100&amp;chunked=true" copy-unmatched-params="false" /></inbound></policies>
"#;
    let gateway = start(&config("api", &backend.url(), operations, None));
    let fetch = |path: &str| {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nConnection: close\r\n\r\n"
        );
        raw(gateway.http_addr(), request.as_bytes()).0
    };
    let buffered = chunk_sizes(&fetch("/api/buffered/x"));
    assert_eq!(buffered.iter().sum::<usize>(), 20_000);
    let (last, full) = buffered.split_last().unwrap();
    assert!(full.iter().all(|&size| size >= 8 * 1024), "{buffered:?}");
    assert!(*last > 0 && buffered.len() <= 3, "{buffered:?}");
    let streamed = chunk_sizes(&fetch("/api/streamed/x"));
    assert_eq!(streamed.iter().sum::<usize>(), 20_000);
    assert!(
        streamed.len() > 3,
        "streamed as it comes: {} chunks",
        streamed.len()
    );
}

/// A backend for `continue-timeout`: `POST …/{mode}` with a `Content-Length` body.
/// `continue`: checks that no body byte arrives for 300 ms, then sends `100 Continue`;
/// `reject`: answers 401 at once and then reads the body; anything else never sends
/// `100`. Answers `expect=<yes|no> early=<bytes> waited_ms=<head to body> body=<bytes>`.
fn continue_backend() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Instant;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let mode = line
                    .split(' ')
                    .nth(1)
                    .and_then(|path| path.rsplit('/').next())
                    .unwrap_or_default()
                    .to_owned();
                let (mut length, mut expect) = (0, false);
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    let header = header.to_ascii_lowercase();
                    if let Some(value) = header.strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                    expect |= header.trim() == "expect: 100-continue";
                }
                let head_at = Instant::now();
                let mut early = 0;
                match mode.as_str() {
                    "continue" => {
                        reader
                            .get_ref()
                            .set_read_timeout(Some(Duration::from_millis(300)))
                            .unwrap();
                        let mut byte = [0_u8; 1];
                        if matches!(reader.read(&mut byte), Ok(1)) {
                            early = 1;
                        }
                        reader.get_ref().set_read_timeout(None).unwrap();
                        let _ = reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    "reject" => {
                        let _ = reader.get_mut().write_all(
                            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno",
                        );
                    }
                    _ => {}
                }
                let mut body = vec![0; length - early];
                let _ = reader.read_exact(&mut body[..1.min(length - early)]);
                let waited = head_at.elapsed().as_millis();
                let _ = reader.read_exact(&mut body[1.min(length - early)..]);
                if mode == "reject" {
                    return;
                }
                let answer = format!(
                    "expect={} early={early} waited_ms={waited} body={}",
                    if expect { "yes" } else { "no" },
                    early + body.len()
                );
                let _ = reader.get_mut().write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                        answer.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    url
}

#[tokio::test]
async fn continue_timeout_holds_the_body_until_the_backend_says_continue() {
    let backend = continue_backend();
    let operations = r#"      - id: patient
        method: "*"
        urlTemplate: /patient/*
        policy: |
          <policies><backend><forward-request continue-timeout="30" /></backend></policies>
      - id: brief
        method: "*"
        urlTemplate: /brief/*
        policy: |
          <policies><backend><forward-request continue-timeout="1" /></backend></policies>
      - id: plain
        method: "*"
        urlTemplate: /plain/*
"#;
    let gateway = start(&config("api", &backend, operations, None));
    let send = |path: &str, body: &'static str| {
        let request = http_client()
            .post(gateway.url(path))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let field = |answer: &str, name: &str| -> u128 {
        answer
            .split(' ')
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {answer}"))
            .parse()
            .unwrap()
    };
    // Asked first; nothing of the body until the backend's `100 Continue` (well before
    // the 30 s), then all of it.
    let started = std::time::Instant::now();
    let (status, answer) = send("/api/patient/continue", "hello").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.starts_with("expect=yes early=0 "), "{answer}");
    assert_eq!(field(&answer, "body"), 5, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "opened by the 100"
    );
    // A client that asks too gets its `100 Continue` once the backend has sent one.
    let addr = gateway.http_addr();
    let exchange = tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                format!(
                    "POST /api/patient/continue HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        let mut interim = [0_u8; 25];
        stream.read_exact(&mut interim).unwrap();
        stream.write_all(b"hello").unwrap();
        let mut rest = String::new();
        let _ = stream.read_to_string(&mut rest);
        (String::from_utf8_lossy(&interim).into_owned(), rest)
    })
    .await
    .unwrap();
    assert_eq!(exchange.0, "HTTP/1.1 100 Continue\r\n\r\n");
    assert!(
        exchange.1.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        exchange.1
    );
    assert!(exchange.1.contains("expect=yes early=0 "), "{}", exchange.1);
    // A final answer before `100 Continue` reaches the client at once.
    let started = std::time::Instant::now();
    let (status, answer) = send("/api/patient/reject", "hello").await;
    assert_eq!((status, answer.as_str()), (401, "no"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not held for the timeout"
    );
    // A backend that never says continue gets the body once the timeout has passed.
    let (status, answer) = send("/api/brief/silent", "hello").await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.starts_with("expect=yes "), "{answer}");
    assert!(field(&answer, "waited_ms") >= 900, "{answer}");
    assert_eq!(field(&answer, "body"), 5, "{answer}");
    // No body: nothing to hold, no `Expect`. Without the attribute: no `Expect` either.
    let (_, answer) = send("/api/patient/continue", "").await;
    assert!(answer.starts_with("expect=no "), "{answer}");
    let (_, answer) = send("/api/plain/silent", "hello").await;
    assert!(answer.starts_with("expect=no "), "{answer}");
    assert_eq!(field(&answer, "body"), 5, "{answer}");
}

/// A backend that answers 503 to its first `failures` requests and then 200 with
/// `attempt=<n> tries=<X-Try values> body=<the body>`; every answer closes.
fn flaky_backend(failures: usize) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (attempt, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let (mut length, mut tries) = (0, Vec::new());
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if let Some(value) = lower.strip_prefix("x-try:") {
                    tries.push(value.trim().to_owned());
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = if attempt < failures {
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy".to_owned()
            } else {
                let text = format!(
                    "attempt={} tries={} body={}",
                    attempt + 1,
                    tries.join(","),
                    String::from_utf8_lossy(&body)
                );
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                )
            };
            let _ = reader.get_mut().write_all(answer.as_bytes());
        }
    });
    url
}

#[tokio::test]
async fn retry_forwards_again_with_the_same_body_while_the_condition_holds() {
    let policy = r#"<policies><inbound><base /></inbound><backend>
  <retry condition="@(context.Response.StatusCode == 503)" count="3" interval="0" first-fast-retry="true">
    <set-header name="X-Try" exists-action="append"><value>t</value></set-header>
    <forward-request />
  </retry>
</backend><outbound><set-header name="X-Seen" exists-action="override"><value>@(context.Response.StatusCode.ToString())</value></set-header></outbound></policies>"#;
    let send = |gateway: &GatewayProcess| {
        http_client()
            .post(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .body("the body")
            .send()
    };
    // Two 503s, then the answer: the third attempt carries the body again, and the
    // retry's policies ran once per attempt.
    let gateway = start(&config(
        "api",
        &flaky_backend(2),
        ANY_OPERATION,
        Some(policy),
    ));
    let response = send(&gateway).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-seen"], "200");
    assert_eq!(
        response.text().await.unwrap(),
        "attempt=3 tries=t,t,t body=the body"
    );
    let metrics = metrics_text(gateway.admin_addr()).await;
    assert_eq!(
        metric_value(&metrics, "gatehouse_backend_retries_total"),
        Some(2.0),
        "{metrics}"
    );
    // More 503s than retries: the last answer is kept.
    let gateway = start(&config(
        "api",
        &flaky_backend(10),
        ANY_OPERATION,
        Some(policy),
    ));
    let response = send(&gateway).await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.unwrap(), "busy");
    // A backend that never accepts: each attempt fails to connect, then on-error runs
    // with the failure as without retry.
    let unreachable = format!("http://{}", refused_addr());
    let gateway = start(&config("api", &unreachable, ANY_OPERATION, Some(policy)));
    let response = send(&gateway).await.unwrap();
    assert_eq!(response.status(), 502);
    let metrics = metrics_text(gateway.admin_addr()).await;
    assert_eq!(
        metric_value(&metrics, "gatehouse_backend_retries_total"),
        Some(3.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn outbound_and_on_error_see_the_request_as_forwarded() {
    let backend = EchoBackend::start();
    let policy = r#"<policies><inbound><base /><set-header name="X-Added" exists-action="override"><value>in</value></set-header></inbound><backend><base /></backend><outbound><set-header name="X-Corr" exists-action="override"><value>@(context.Request.Headers.GetValueOrDefault("X-Correlation-Id","none") + "/" + context.Request.Headers.GetValueOrDefault("X-Added","none"))</value></set-header></outbound><on-error><set-header name="X-Corr" exists-action="override"><value>@(context.Request.Headers.GetValueOrDefault("X-Correlation-Id","none"))</value></set-header></on-error></policies>"#;
    let gateway = start(&config("api", &backend.url(), ANY_OPERATION, Some(policy)));
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-Correlation-Id", "c-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-corr"], "c-42/in");
    // A backend that cannot be reached: on-error sees them too.
    let unreachable = format!("http://{}", refused_addr());
    let gateway = start(&config("api", &unreachable, ANY_OPERATION, Some(policy)));
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("X-Correlation-Id", "c-43")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-corr"], "c-43");
}

#[tokio::test]
async fn a_liquid_template_transforms_the_json_request_body_the_backend_gets() {
    let backend = EchoBackend::start();
    let operations = r#"      - id: order
        method: POST
        urlTemplate: /orders/{id}
        policy: |
          <policies><inbound><base /><set-body template="liquid">{"orderId":"{{ context.Request.MatchedParameters["id"] }}","customer":"{{ body.customer.name | Upcase }}","items":[{% for item in body.items %}{"sku":"{{ item.sku }}","total":{{ item.price | Times: item.qty }}}{% unless forloop.last %},{% endunless %}{% endfor %}],"channel":"{{ context.Request.Headers["X-Channel"] | Default: "web" }}","page":"{{ context.Request.Url.Query.page }}","note":"{{ body.note }}"}</set-body></inbound></policies>
"#;
    let gateway = start(&config("api", &backend.url(), operations, None));
    let response = http_client()
        .post(gateway.url("/api/orders/o-17?page=3"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-test-mirror", "1")
        .header("content-type", "application/json")
        .header("X-Channel", "mobile")
        .body(r#"{"customer":{"name":"ada"},"items":[{"sku":"A1","price":2,"qty":3},{"sku":"B2","price":5,"qty":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The backend mirrored what it received: the rendered template.
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "orderId": "o-17",
            "customer": "ADA",
            "items": [{"sku": "A1", "total": 6}, {"sku": "B2", "total": 5}],
            "channel": "mobile",
            "page": "3",
            "note": ""
        })
    );
}

#[tokio::test]
async fn set_status_takes_its_code_and_reason_from_expressions() {
    let unreachable = format!("http://{}", refused_addr());
    let policy = r#"<policies><inbound><base /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><return-response><set-status code="@(context.Response.StatusCode)" reason="@(context.LastError.Reason)" /><set-body>@(context.LastError.Source)</set-body></return-response></on-error></policies>"#;
    let gateway = start(&config("api", &unreachable, ANY_OPERATION, Some(policy)));
    let request = format!(
        "GET /api/x HTTP/1.1\r\nHost: localhost\r\nOcp-Apim-Subscription-Key: {ALL_APIS_KEY}\r\nConnection: close\r\n\r\n"
    );
    let (answer, _) = raw(gateway.http_addr(), request.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 502 BackendConnectionFailure\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("forward-request"), "{answer}");
}

#[tokio::test]
async fn cached_values_outlive_the_request_that_stored_them() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<cache-lookup-value key="last" variable-name="previous" default-value="none" />
<cache-store-value key="last" value="@(context.Request.Headers.GetValueOrDefault("X-Set", ""))" duration="60" />
<return-response><set-body>@((string)context.Variables["previous"])</set-body></return-response>"#,
    );
    let send = |value: &'static str| {
        let request = http_client()
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("X-Set", value);
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    assert_eq!(send("first").await, "none");
    assert_eq!(send("second").await, "first");
    assert_eq!(send("third").await, "second");
}

/// The body a GET answers under the API-level `policy`.
async fn answer_under(policy: &str) -> String {
    let backend = EchoBackend::start();
    let gateway = with_full_policy(&backend, policy);
    http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn last_error_tells_the_scope_of_the_failing_policy() {
    let answer = answer_under(
        r#"<policies><inbound><set-variable name="x" value="@(1 / (context.Request.Headers.Count - context.Request.Headers.Count))" /></inbound><on-error><return-response><set-body>@(context.LastError.Scope + "/" + context.LastError.Section + "/" + context.LastError.Reason + "/" + context.LastError.Path)</set-body></return-response></on-error></policies>"#,
    )
    .await;
    assert_eq!(
        answer,
        "api/inbound/ExpressionValueEvaluationFailure/set-variable[1]"
    );
}

#[tokio::test]
async fn last_error_tells_the_path_of_the_failing_policy_in_its_section() {
    // The failing set-header is the 1st child of the 2nd branch of the 3rd element.
    let answer = answer_under(
        r#"<policies><inbound><base /><set-variable name="a" value="1" /><choose><when condition="@(false)"><set-header name="X" exists-action="override"><value>x</value></set-header></when><when condition="@(true)"><set-header name="X" exists-action="override"><value>@(((string)null).Length.ToString())</value></set-header></when></choose></inbound><on-error><return-response><set-body>@(context.LastError.Path)</set-body></return-response></on-error></policies>"#,
    )
    .await;
    assert_eq!(answer, r"choose[3]\when[2]\set-header[1]");
}

#[tokio::test]
async fn find_and_replace_rewrites_the_request_and_the_response_bodies() {
    let backend = EchoBackend::start();
    let gateway = with_full_policy(
        &backend,
        r#"<policies><inbound><find-and-replace from="internal" to="public" /></inbound><outbound><find-and-replace from="@(context.Request.Headers.GetValueOrDefault("X-Find", "none"))" to="gateway" /></outbound></policies>"#,
    );
    let response = http_client()
        .post(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .header("x-test-mirror", "1")
        .header("X-Find", "world")
        .body("hello internal world, internal world")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let expected = "hello public gateway, public gateway";
    assert_eq!(
        response.headers()["content-length"],
        expected.len().to_string().as_str(),
        "the new body is sent with its own length"
    );
    assert_eq!(response.text().await.unwrap(), expected);
}

#[tokio::test]
async fn send_one_way_request_calls_in_the_background_without_holding_the_request() {
    let backend = EchoBackend::start();
    let service = EchoBackend::builder().name("audit").start();
    let silent = gatehouse_test_support::SilentBackend::start();
    let gateway = with_full_policy(
        &backend,
        &format!(
            r#"<policies><inbound>
                <send-one-way-request mode="new" timeout="1"><set-url>http://{}/never</set-url></send-one-way-request>
                <send-one-way-request mode="new"><set-url>{}/audit</set-url><set-method>POST</set-method><set-body>@(context.Request.Url.Path)</set-body></send-one-way-request>
            </inbound></policies>"#,
            silent.addr(),
            service.url()
        ),
    );
    let started = std::time::Instant::now();
    let response = http_client()
        .get(gateway.url("/api/x"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the request did not wait for the silent service ({:?})",
        started.elapsed()
    );
    // The audit service gets its call; the silent one times out after 1 s, counted.
    assert!(wait_for(|| service.requests() == 1, WAIT));
    wait_for_metric(
        gateway.admin_addr(),
        r#"gatehouse_one_way_requests_total{outcome="answered"}"#,
        |n| n == 1.0,
        WAIT,
    )
    .await;
    wait_for_metric(
        gateway.admin_addr(),
        r#"gatehouse_one_way_requests_total{outcome="failed"}"#,
        |n| n == 1.0,
        WAIT,
    )
    .await;
    assert!(gateway.wait_for_output("send-one-way-request failed", WAIT));
}

#[tokio::test]
async fn quota_refuses_a_subscription_past_its_call_volume_as_apim_does() {
    // APIM's default Starter product policy.
    let answer = |gateway: &GatewayProcess| {
        let request = http_client()
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY);
        async move { request.send().await.unwrap() }
    };
    let backend = EchoBackend::start();
    let gateway = with_full_policy(
        &backend,
        r#"<policies><inbound><rate-limit calls="5" renewal-period="60" /><quota calls="2" renewal-period="604800" /></inbound></policies>"#,
    );
    assert_eq!(answer(&gateway).await.status(), 200);
    assert_eq!(answer(&gateway).await.status(), 200);
    let refused = answer(&gateway).await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["statusCode"], 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Out of call volume quota. Quota will be replenished in"),
        "{body}"
    );
}

#[tokio::test]
async fn authentication_basic_sends_the_backend_basic_credentials() {
    let backend = EchoBackend::start();
    let gateway = with_policy(
        &backend,
        r#"<authentication-basic username="gateway" password="@("pass" + "word")" />"#,
    );
    let landed = echo(
        http_client()
            .get(gateway.url("/api/x"))
            .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
            .header("Authorization", "Bearer from-the-client")
            .send()
            .await
            .unwrap(),
    )
    .await;
    // base64("gateway:password")
    assert_eq!(
        landed.header("authorization"),
        Some("Basic Z2F0ZXdheTpwYXNzd29yZA==")
    );
}
