//! Subscription keys: where they are read from, what each failure answers, and that
//! they never reach the backend.

use crate::common::*;

fn subscriptions_config(backend: &str) -> String {
    format!(
        r#"apis:
  - id: orders
    path: orders
    serviceUrl: {backend}
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
  - id: billing
    path: billing
    serviceUrl: {backend}
    subscriptionKeyParameterNames: {{ header: X-Api-Key, query: apikey }}
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
  - id: open
    path: open
    serviceUrl: {backend}
    subscriptionRequired: false
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
products:
  - id: gold
    apis: [orders]
subscriptions:
  - id: alice
    scope: /products/gold
    primaryKey: alice-primary-0001
    secondaryKey: alice-secondary-0001
  - id: bob
    scope: /apis/billing
    primaryKey: bob-primary-0001
  - id: mallory
    scope: /apis
    primaryKey: mallory-primary-0001
    state: suspended
  - id: sub-submitted
    scope: /apis
    primaryKey: key-submitted-0001
    state: submitted
  - id: sub-rejected
    scope: /apis
    primaryKey: key-rejected-0001
    state: rejected
  - id: sub-cancelled
    scope: /apis
    primaryKey: key-cancelled-0001
    state: cancelled
  - id: sub-expired
    scope: /apis
    primaryKey: key-expired-0001
    state: expired
"#
    )
}

async fn call(
    gateway: &GatewayProcess,
    path: &str,
    header: Option<(&str, &str)>,
) -> reqwest::Response {
    let mut request = http_client().get(gateway.url(path));
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn missing_invalid_and_suspended_keys_are_refused_with_apims_messages() {
    let backend = EchoBackend::start();
    let gateway = start(&subscriptions_config(&backend.url()));
    let key = "Ocp-Apim-Subscription-Key";
    /// name, key header, expected status, expected message
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, u16, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            "missing",
            None,
            401,
            "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.",
        ),
        (
            "unknown",
            Some((key, "nope-nope-nope")),
            401,
            "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
        ),
        (
            "other scope",
            Some((key, "bob-primary-0001")),
            401,
            "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
        ),
        (
            "suspended",
            Some((key, "mallory-primary-0001")),
            403,
            "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.",
        ),
    ];
    for (name, header, status, message) in cases {
        let (got_status, got_message) = error_body(call(&gateway, "/orders/1", header).await).await;
        assert_eq!(
            (got_status, got_message.as_str()),
            (status, message),
            "case {name}"
        );
    }
    // APIM's other states (issue 13, item 5): recognised, refused like `suspended`.
    for state in ["submitted", "rejected", "cancelled", "expired"] {
        let (status, message) = error_body(
            call(
                &gateway,
                "/orders/1",
                Some((key, &format!("key-{state}-0001"))),
            )
            .await,
        )
        .await;
        assert_eq!(status, 403, "{state}");
        assert!(
            message.contains("for an active subscription"),
            "{state}: {message}"
        );
    }
    assert_eq!(
        backend.requests(),
        0,
        "refused requests never reach the backend"
    );
}

#[tokio::test]
async fn product_keys_work_in_header_or_query_and_are_removed_before_forwarding() {
    let backend = EchoBackend::start();
    let gateway = start(&subscriptions_config(&backend.url()));
    let echo1 = echo(
        call(
            &gateway,
            "/orders/1",
            Some(("Ocp-Apim-Subscription-Key", "alice-primary-0001")),
        )
        .await,
    )
    .await;
    assert!(
        echo1.header("ocp-apim-subscription-key").is_none(),
        "{echo1:?}"
    );
    let echo2 = echo(
        call(
            &gateway,
            "/orders/1?a=1&subscription-key=alice-secondary-0001&b=2",
            None,
        )
        .await,
    )
    .await;
    assert_eq!(
        echo2.query, "a=1&b=2",
        "the key is removed from the query, the rest kept in order"
    );
    assert!(wait_for(
        || gateway
            .stdout_lines()
            .iter()
            .any(|l| l.contains("\"subscription\":\"alice\"")),
        SHORT
    ));
    // Security: the key must not appear in the access log.
    assert!(
        !gateway
            .stdout_lines()
            .iter()
            .any(|l| l.contains("alice-secondary-0001"))
    );
}

#[tokio::test]
async fn custom_key_parameter_names_are_honoured() {
    let backend = EchoBackend::start();
    let gateway = start(&subscriptions_config(&backend.url()));
    let r = call(
        &gateway,
        "/billing/x",
        Some(("X-Api-Key", "bob-primary-0001")),
    )
    .await;
    let echo = echo(r).await;
    assert!(echo.header("x-api-key").is_none());
    let r = call(&gateway, "/billing/x?apikey=bob-primary-0001", None).await;
    assert_eq!(r.status(), 200);
    let r = call(
        &gateway,
        "/billing/x",
        Some(("Ocp-Apim-Subscription-Key", "bob-primary-0001")),
    )
    .await;
    assert_eq!(
        r.status(),
        401,
        "the default header is not read when the API renames it"
    );
}

#[tokio::test]
async fn open_apis_need_no_key() {
    let backend = EchoBackend::start();
    let gateway = start(&subscriptions_config(&backend.url()));
    assert_eq!(call(&gateway, "/open/x", None).await.status(), 200);
    assert_eq!(
        call(
            &gateway,
            "/open/x",
            Some(("Ocp-Apim-Subscription-Key", "garbage-garbage"))
        )
        .await
        .status(),
        200,
        "an unknown key on an open API is ignored"
    );
}
