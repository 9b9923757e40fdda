//! `gatehouse gateway` with `k8s.ingress.enabled=true`: routes from Kubernetes Ingresses,
//! read through the real kube-rs client from a fake API server (no cluster here).

use gatehouse_test_support::kube_api::FakeKubeApi;
use serde_json::json;

use crate::common::*;

/// A kubeconfig pointing at `server` (the fake API server), without credentials.
pub(crate) fn kubeconfig(dir: &std::path::Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n  - name: fake\n    cluster:\n      server: {server}\nusers:\n  - name: tester\n    user: {{}}\ncontexts:\n  - name: fake\n    context:\n      cluster: fake\n      user: tester\ncurrent-context: fake\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn a_gateway_serves_the_routes_of_the_ingresses_and_follows_their_changes() {
    let api = FakeKubeApi::start();
    api.apply(
        "services",
        json!({"metadata": {"namespace": "shop", "name": "users"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
    );
    let ingress = |path: &str| {
        json!({
            "metadata": {"namespace": "shop", "name": "users",
                "annotations": {"kubernetes.io/ingress.class": "azure-api-management/gateway"}},
            "spec": {"rules": [{"http": {"paths": [{"path": path, "pathType": "Prefix",
                "backend": {"service": {"name": "users", "port": {"name": "http"}}}}]}}]},
        })
    };
    api.apply("ingresses", ingress("/users"));
    let dir = tempfile::tempdir().unwrap();
    let config = kubeconfig(dir.path(), &api.url());
    let gateway = GatewayProcess::builder(BIN)
        .no_config()
        .env("k8s.ingress.enabled", "true")
        .env("k8s.ingress.namespace", "shop")
        .env("KUBECONFIG", config.to_str().unwrap())
        .start();
    // The route exists (its Service's cluster address does not resolve here, so the
    // gateway answers 502 or 504 for the backend), and other paths are not routed.
    let status = |path: &'static str| {
        let url = gateway.url(path);
        async move {
            http_client()
                .get(url)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    let routed = |code: u16| code == 502 || code == 504;
    assert!(wait_for_async(|| async { routed(status("/users/1").await) }, WAIT).await);
    assert_eq!(status("/orders").await, 404);

    // A change of the Ingress is served live.
    api.apply("ingresses", ingress("/orders"));
    assert!(wait_for_async(|| async { routed(status("/orders/1").await) }, WAIT).await);
    assert!(wait_for_async(|| async { status("/users/1").await == 404 }, WAIT).await);
    api.delete("ingresses", "shop", "users");
    assert!(wait_for_async(|| async { status("/orders/1").await == 404 }, WAIT).await);
}
