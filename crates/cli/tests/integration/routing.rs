//! Host + path → API → operation, template parameters, most specific match.

use crate::common::*;

#[tokio::test]
async fn template_parameters_reach_the_backend_through_rewrite_uri() {
    let backend = EchoBackend::start();
    let operations = "      - id: get-user\n        method: GET\n        urlTemplate: /users/{id}\n        policy: |\n          <policies><inbound><base /><rewrite-uri template=\"/v2/people/{id}\" /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>\n";
    let gateway = start(&config("hr", &backend.url(), operations, None));
    let echo = echo(get(&gateway, "/hr/users/42").await).await;
    assert_eq!(echo.path, "/v2/people/42");
}

#[tokio::test]
async fn the_api_path_is_replaced_by_the_service_url_path() {
    let backend = EchoBackend::start();
    let gateway = start(&config(
        "shop/v1",
        &format!("{}/internal/api", backend.url()),
        ANY_OPERATION,
        None,
    ));
    let echo = echo(get(&gateway, "/shop/v1/orders/7?expand=lines").await).await;
    assert_eq!(echo.path, "/internal/api/orders/7");
    assert_eq!(echo.query, "expand=lines");
}

#[tokio::test]
async fn the_most_specific_api_and_operation_win() {
    let a = EchoBackend::builder().name("short").start();
    let b = EchoBackend::builder().name("long").start();
    let yaml = format!(
        r#"apis:
  - id: short
    path: store
    serviceUrl: {a}
    subscriptionRequired: false
    operations:
      - {{ id: any, method: "*", urlTemplate: "/*" }}
      - {{ id: param, method: GET, urlTemplate: "/items/{{id}}" }}
      - {{ id: literal, method: GET, urlTemplate: "/items/special" }}
  - id: long
    path: store/admin
    serviceUrl: {b}
    subscriptionRequired: false
    operations:
      - {{ id: any, method: "*", urlTemplate: "/*" }}
"#,
        a = a.url(),
        b = b.url()
    );
    let gateway = start(&yaml);
    let client = http_client();
    let who = |r: &reqwest::Response| r.headers()["x-backend-name"].to_str().unwrap().to_owned();
    let r = client
        .get(gateway.url("/store/admin/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(who(&r), "long", "longest API path prefix wins");
    let r = client
        .get(gateway.url("/store/administrator"))
        .send()
        .await
        .unwrap();
    assert_eq!(who(&r), "short", "prefixes match whole segments only");
    let r = client
        .get(gateway.url("/store/items/special"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log_has = |op: &str| {
        let needle = format!("\"operation\":\"{op}\"");
        move |g: &GatewayProcess| g.stdout_lines().iter().any(|l| l.contains(&needle))
    };
    assert!(
        wait_for(|| log_has("literal")(&gateway), SHORT),
        "literal segment beats parameter"
    );
    client
        .get(gateway.url("/store/items/9"))
        .send()
        .await
        .unwrap();
    assert!(
        wait_for(|| log_has("param")(&gateway), SHORT),
        "parameter beats wildcard"
    );
}

#[tokio::test]
async fn hostnames_select_among_apis_on_the_same_path() {
    let a = EchoBackend::builder().name("any-host").start();
    let b = EchoBackend::builder().name("example").start();
    let yaml = format!(
        r#"apis:
  - id: generic
    path: api
    serviceUrl: {a}
    subscriptionRequired: false
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
  - id: hosted
    path: api
    hostnames: [api.example.com]
    serviceUrl: {b}
    subscriptionRequired: false
    operations: [{{ id: any, method: "*", urlTemplate: "/*" }}]
"#,
        a = a.url(),
        b = b.url()
    );
    let gateway = start(&yaml);
    let client = http_client();
    let r = client
        .get(gateway.url("/api/x"))
        .header("host", "api.example.com:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-backend-name"], "example");
    let r = client
        .get(gateway.url("/api/x"))
        .header("host", "other.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-backend-name"], "any-host");
}

#[tokio::test]
async fn unmatched_requests_get_apims_404_bodies() {
    let backend = EchoBackend::start();
    let operations = "      - id: get-only\n        method: GET\n        urlTemplate: /things\n";
    let gateway = start(&config("shop", &backend.url(), operations, None));
    let (status, message) = error_body(get(&gateway, "/nothing-here").await).await;
    assert_eq!((status, message.as_str()), (404, "Resource not found"));
    let (status, message) = error_body(get(&gateway, "/shop/other").await).await;
    assert_eq!(
        (status, message.as_str()),
        (404, "Unable to match incoming request to an operation.")
    );
    let response = http_client()
        .post(gateway.url("/shop/things"))
        .header("Ocp-Apim-Subscription-Key", ALL_APIS_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "a method mismatch is a 404, as in APIM"
    );
    assert_eq!(backend.requests(), 0);
}
