use std::collections::BTreeSet;
use std::sync::Arc;

use gatehouse_store::Store;
use serde_json::{Value, json};

use super::*;
use crate::auth::AdminToken;
use crate::{ControlState, app};

const ADMIN: &str = "test-admin-token";

/// Methods probed on every path the router serves.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "PATCH"];

struct Served {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn serve_app() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("control.db").display());
    let store = Store::connect(&url).await.unwrap();
    let state = Arc::new(ControlState::new(
        store,
        AdminToken::from_secret(ADMIN),
        crate::vault::Vault::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap(),
        crate::ControlSettings {
            public_url: Some("https://control.example.com".to_owned()),
            ..Default::default()
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(state)).await;
    });
    Served {
        base,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        _dir: dir,
    }
}

/// Every path template registered with `.route("…", …)` in this crate's sources, plus
/// the management collections (registered in a loop over `COLLECTIONS`).
fn registered_paths() -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for kind in COLLECTIONS {
        paths.insert(format!("/{}", entities::collection(kind)));
        paths.insert(format!("/{}/{{id}}", entities::collection(kind)));
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut computed = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".rs") || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices(".route(") {
            let rest = text[at + ".route(".len()..].trim_start();
            if let Some(literal) = rest.strip_prefix('"') {
                paths.insert(literal[..literal.find('"').unwrap()].to_owned());
            } else {
                computed.push(format!(
                    "{name}: {}",
                    rest.lines().next().unwrap_or_default()
                ));
            }
        }
    }
    // The loop in management::routes() is the only place building paths at run time;
    // another one must be added to the list above.
    assert_eq!(
        computed,
        ["management.rs: &collection,", "management.rs: &item,"],
        "a route with a computed path: teach registered_paths() about it"
    );
    paths
}

/// Whether the router serves `method` on `path`: anything but 405 and the fallback's 404.
async fn serves(app: &Served, method: &str, path: &str) -> bool {
    let concrete = path.replace("{id}", "probe");
    let response = app
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{concrete}", app.base),
        )
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    status != reqwest::StatusCode::METHOD_NOT_ALLOWED
        && !(status == reqwest::StatusCode::NOT_FOUND && body.contains("`this path`"))
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn every_route_served_is_documented_and_every_documented_route_is_served() {
    let app = serve_app().await;
    let doc = serde_json::to_value(document()).unwrap();
    let mut served = BTreeSet::new();
    let documented = documented(&doc);
    let probed: BTreeSet<String> = registered_paths()
        .into_iter()
        .chain(documented.iter().map(|(_, path)| path.clone()))
        .collect();
    for path in &probed {
        for method in METHODS {
            if serves(&app, method, path).await {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in the OpenAPI document: {undocumented:?}\n\
         in the document but not served: {not_served:?}"
    );
    // Sanity: the probe does see the routes.
    assert!(served.contains(&("PUT".to_owned(), "/apis/{id}".to_owned())));
    assert!(served.len() > 40, "{served:?}");
}

#[tokio::test]
async fn the_document_is_served_without_credentials_and_names_the_security_schemes() {
    let app = serve_app().await;
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["admin"]["type"], "http");
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    assert_eq!(schemes["gatewayKey"]["type"], "apiKey");
    assert_eq!(schemes["gatewayKey"]["in"], "header");
    assert_eq!(schemes["gatewayKey"]["name"], "Authorization");

    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let expected = if path.starts_with("/v2/") {
                json!([{ "gatewayKey": [] }])
            } else if ["/healthz", "/readyz", "/openapi.json"].contains(&path.as_str()) {
                Value::Null
            } else {
                json!([{ "admin": [] }])
            };
            assert_eq!(operation["security"], expected, "{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            if expected != Value::Null {
                for status in ["401", "403"] {
                    assert_eq!(
                        responses[status]["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ApiError",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_reference_resolves() {
    fn walk(value: &Value, refs: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    refs.insert(target.clone());
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let doc = serde_json::to_value(document()).unwrap();
    let mut refs = BTreeSet::new();
    walk(&doc, &mut refs);
    assert!(refs.len() > 20, "{refs:?}");
    for target in refs {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling {target}"
        );
    }
}

#[test]
fn write_only_fields_and_ids_are_not_required_where_the_api_fills_them_in() {
    let doc = serde_json::to_value(document()).unwrap();
    let schemas = &doc["components"]["schemas"];
    for kind in COLLECTIONS {
        let c = collection(kind);
        let entity = &schemas[c.schema];
        let input = &schemas[format!("{}Input", c.schema)];
        for field in c.write_only.iter().chain([&c.id_field]) {
            assert!(
                entity["properties"].get(*field).is_some(),
                "{} has no `{field}`",
                c.schema
            );
            assert!(
                !input["required"]
                    .as_array()
                    .is_some_and(|r| r.contains(&json!(field))),
                "{}Input requires `{field}`",
                c.schema
            );
        }
        for field in c.write_only {
            assert!(
                !entity["required"]
                    .as_array()
                    .is_some_and(|r| r.contains(&json!(field))),
                "{} requires write-only `{field}`",
                c.schema
            );
        }
        assert!(
            entity["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!(c.id_field))),
            "{} does not require `{}`",
            c.schema,
            c.id_field
        );
    }
}

/// The two schemas written by hand for types of other modules match what those modules
/// read and write.
#[tokio::test]
async fn the_hand_written_schemas_match_the_handlers() {
    let doc = serde_json::to_value(document()).unwrap();
    let example =
        doc["components"]["schemas"]["PolicyBody"]["properties"]["value"]["example"].clone();
    let _: entities::PolicyBody = serde_json::from_value(json!({ "value": example })).unwrap();

    let app = serve_app().await;
    let put = app
        .client
        .put(format!("{}/gateways/edge", app.base))
        .bearer_auth(ADMIN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), reqwest::StatusCode::CREATED);
    let answer: Value = app
        .client
        .get(format!(
            "{}/gateways/edge/deployment?format=kubernetes&keyType=secondary&expiryDays=2",
            app.base
        ))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: BTreeSet<&String> = answer.as_object().unwrap().keys().collect();
    let schema = &doc["components"]["schemas"]["Deployment"];
    let described: BTreeSet<&String> = schema["properties"].as_object().unwrap().keys().collect();
    assert_eq!(shown, described);
    let parameters: BTreeSet<&str> = doc["paths"]["/gateways/{id}/deployment"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        BTreeSet::from(["id", "format", "keyType", "expiryDays"])
    );
}

/// What schemathesis found (`.ci/run`, step `schemathesis`) stays fixed: each is a 400
/// with the usual JSON body, not a 500 (PostgreSQL cannot hold NUL in TEXT) nor a
/// precondition silently ignored.
#[tokio::test]
async fn inputs_schemathesis_found_are_refused_with_a_json_400() {
    let app = serve_app().await;
    let send = |method: reqwest::Method, path: &str, headers: &[(&str, &str)]| {
        let mut request = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(ADMIN);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(r#"{"value": "<policies />"}"#).send()
    };
    for (method, path, headers) in [
        (reqwest::Method::GET, "/apis/a%00b", &[][..]),
        (reqwest::Method::GET, "/named-values?search=%00x", &[][..]),
        (reqwest::Method::GET, "/gateways/%00/status", &[][..]),
        (reqwest::Method::GET, "/apis?top=x", &[][..]),
        (
            reqwest::Method::PUT,
            "/policy",
            &[("If-None-Match", "\"3\"")][..],
        ),
        (
            reqwest::Method::PUT,
            "/policy",
            &[("If-None-Match", "*"), ("If-Match", "*")][..],
        ),
    ] {
        let response = send(method.clone(), path, headers).await.unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::BAD_REQUEST,
            "{method} {path} {headers:?}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "BadRequest",
            "{method} {path}: {body}"
        );
    }
}
