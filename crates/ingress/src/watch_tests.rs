use std::sync::Arc;
use std::time::Duration;

use gatehouse_gateway::{AccessLog, GatewayState, Metrics};
use gatehouse_test_support::kube_api::FakeKubeApi;
use serde_json::json;

use super::*;

fn client(api: &FakeKubeApi) -> Client {
    let url = api.url().parse().unwrap();
    Client::try_from(kube::Config::new(url)).unwrap()
}

fn ingress(name: &str, path: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"ingressClassName": "gatehouse", "rules": [{"http": {"paths": [{
            "path": path, "pathType": "Prefix",
            "backend": {"service": {"name": "users", "port": {"number": 8080}}},
        }]}}]},
    })
}

fn users_service() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": "shop", "name": "users"},
        "spec": {"ports": [{"name": "http", "port": 8080}]}})
}

/// The Ingresses the gateway serves a route of (from the API ids
/// `k8s.<namespace>.<name>.<n>`), once they equal `expected` (or the last seen).
async fn wait_paths(state: &GatewayState, expected: &[&str]) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let config = state.config.load();
        let mut paths: Vec<String> = config
            .apis
            .iter()
            .map(|api| api.id.split('.').nth(2).unwrap_or_default().to_owned())
            .collect();
        paths.sort();
        if paths == expected || tokio::time::Instant::now() > deadline {
            return paths;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn ingress_changes_reach_the_gateway_live_and_a_relist_after_410_keeps_up() {
    let api = FakeKubeApi::start();
    api.apply("services", users_service());
    api.apply("ingresses", ingress("users", "/users"));
    let state = Arc::new(GatewayState::new(Metrics::new(), AccessLog::disabled()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        client(&api),
        IngressSettings {
            namespace: Some("shop".to_owned()),
        },
        ConfigSink::new(state.clone()),
        shutdown.clone(),
    ));
    assert_eq!(
        wait_paths(&state, &["users"]).await,
        ["users"],
        "the initial list"
    );

    // Added, modified, deleted: each reaches the gateway.
    api.apply("ingresses", ingress("orders", "/orders"));
    assert_eq!(
        wait_paths(&state, &["orders", "users"]).await,
        ["orders", "users"]
    );
    let served = |state: &GatewayState| -> Vec<String> {
        state
            .config
            .load()
            .apis
            .iter()
            .map(|api| api.id.to_string())
            .collect()
    };
    api.apply("ingresses", ingress("orders", "/orders-v2"));
    assert_eq!(
        wait_paths(&state, &["orders", "users"]).await,
        ["orders", "users"]
    );
    api.delete("ingresses", "shop", "users");
    assert_eq!(
        wait_paths(&state, &["orders"]).await,
        ["orders"],
        "{:?}",
        served(&state)
    );

    // A Service that goes away takes its routes with it; back, they return.
    api.delete("services", "shop", "users");
    assert_eq!(wait_paths(&state, &[]).await, Vec::<String>::new());
    api.apply("services", users_service());
    assert_eq!(wait_paths(&state, &["orders"]).await, ["orders"]);

    // The API server forgets history and the watches break: resuming from the version
    // they reached gets 410, so they list again, and what changed meanwhile arrives.
    api.apply("ingresses", ingress("late", "/late"));
    assert_eq!(
        wait_paths(&state, &["late", "orders"]).await,
        ["late", "orders"]
    );
    let lists = api.list_requests("ingresses");
    api.expire_history();
    api.hang_up_watches();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while api.list_requests("ingresses") == lists && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(api.list_requests("ingresses") > lists, "a relist after 410");
    // And the source keeps working after it.
    api.delete("ingresses", "shop", "late");
    assert_eq!(wait_paths(&state, &["orders"]).await, ["orders"]);

    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn a_malformed_ingress_gets_a_warning_event_and_the_others_are_served() {
    let api = FakeKubeApi::start();
    api.apply("services", users_service());
    api.apply("ingresses", ingress("users", "/users"));
    // Names a Service that does not exist.
    let mut broken = ingress("broken", "/broken");
    broken["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = json!("ghost");
    api.apply("ingresses", broken);
    let state = Arc::new(GatewayState::new(Metrics::new(), AccessLog::disabled()));
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        client(&api),
        IngressSettings {
            namespace: Some("shop".to_owned()),
        },
        ConfigSink::new(state.clone()),
        shutdown.clone(),
    ));
    assert_eq!(wait_paths(&state, &["users"]).await, ["users"]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = api.events();
        if !events.is_empty() || tokio::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "PartlyNotServed");
    assert_eq!(event["reportingController"], "gatehouse");
    assert_eq!(event["regarding"]["kind"], "Ingress");
    assert_eq!(event["regarding"]["name"], "broken");
    assert_eq!(event["metadata"]["namespace"], "shop");
    assert!(
        event["note"].as_str().unwrap().contains("ghost"),
        "{event:#}"
    );

    // The same problem again (another object changed) writes no second Event.
    api.apply("ingresses", ingress("orders", "/orders"));
    assert_eq!(
        wait_paths(&state, &["orders", "users"]).await,
        ["orders", "users"]
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.events().len(), 1);
    shutdown.cancel();
    task.await.unwrap();
}
