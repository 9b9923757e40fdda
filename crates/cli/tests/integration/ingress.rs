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

/// A gateway fed only by the Ingresses of namespace `shop` in `api`, its kubeconfig in
/// `dir`.
fn ingress_gateway(api: &FakeKubeApi, dir: &tempfile::TempDir) -> GatewayProcess {
    let config = kubeconfig(dir.path(), &api.url());
    GatewayProcess::builder(BIN)
        .no_config()
        .env("k8s.ingress.enabled", "true")
        .env("k8s.ingress.namespace", "shop")
        .env("KUBECONFIG", config.to_str().unwrap())
        .start()
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
    let gateway = ingress_gateway(&api, &dir);
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

/// The leaf certificate of a PEM chain, as DER.
fn leaf_der(cert_pem: &str) -> Vec<u8> {
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

fn tls_secret(pair: &gatehouse_test_support::pki::CertifiedPem) -> serde_json::Value {
    use base64::Engine as _;
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    json!({"metadata": {"namespace": "shop", "name": "api-tls"},
           "type": "kubernetes.io/tls",
           "data": {"tls.crt": b64(&pair.cert_pem), "tls.key": b64(&pair.key_pem)}})
}

#[tokio::test]
async fn an_ingress_tls_secret_is_served_by_sni_and_its_rotation_is_picked_up_live() {
    use gatehouse_test_support::pki::TestCa;
    use gatehouse_test_support::tls_client::TlsClient;
    let ca = TestCa::new("ingress test CA");
    let first = ca.server(&["api.example.com"]);
    let api = FakeKubeApi::start();
    api.apply(
        "services",
        json!({"metadata": {"namespace": "shop", "name": "users"},
               "spec": {"ports": [{"name": "http", "port": 8080}]}}),
    );
    api.apply("secrets", tls_secret(&first));
    api.apply(
        "ingresses",
        json!({
            "metadata": {"namespace": "shop", "name": "users"},
            "spec": {"ingressClassName": "azure-api-management/gateway",
                "tls": [{"hosts": ["api.example.com"], "secretName": "api-tls"}],
                "rules": [{"host": "api.example.com", "http": {"paths": [{"path": "/users", "pathType": "Prefix",
                    "backend": {"service": {"name": "users", "port": {"number": 8080}}}}]}}]},
        }),
    );
    let dir = tempfile::tempdir().unwrap();
    let gateway = ingress_gateway(&api, &dir);
    let client = TlsClient::trusting(&ca.cert_pem());
    let presented = || async {
        client
            .connect(gateway.https_addr(), "api.example.com")
            .await
            .map(|connection| connection.server_certificate().to_vec())
            .ok()
    };
    let expected = leaf_der(&first.cert_pem);
    assert!(
        wait_for_async(
            || async { presented().await.as_deref() == Some(&expected[..]) },
            WAIT
        )
        .await,
        "the Secret's certificate is presented for its host"
    );

    // The Secret is rotated (cert-manager renews it): new handshakes get the new one.
    let second = ca.server(&["api.example.com"]);
    api.apply("secrets", tls_secret(&second));
    let renewed = leaf_der(&second.cert_pem);
    assert_ne!(expected, renewed);
    assert!(
        wait_for_async(
            || async { presented().await.as_deref() == Some(&renewed[..]) },
            WAIT
        )
        .await,
        "the rotated certificate is presented"
    );
}
