//! The HTTPS listener: certificates by SNI, live swaps, protocol restrictions, client
//! certificates, TLS to backends; certificates made per test with rcgen.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse_test_support::pki::{CertifiedPem, TestCa, Validity};
use gatehouse_test_support::tls_backend::TlsBackend;
use gatehouse_test_support::tls_client::TlsClient;
use gatehouse_tls::certificate::CertificateDetails;

use crate::common::*;

/// Waits (up to 10 s) until `GET path` on the HTTP listener answers `status`.
async fn wait_status(gateway: &GatewayProcess, path: &str, status: u16) -> bool {
    wait_for_async(
        || async {
            http_client()
                .get(gateway.url(path))
                .send()
                .await
                .is_ok_and(|r| r.status() == status)
        },
        Duration::from_secs(10),
    )
    .await
}

fn common_name(der: &[u8]) -> String {
    CertificateDetails::from_der(der)
        .unwrap()
        .common_name
        .unwrap_or_default()
}

#[tokio::test]
async fn sni_selects_each_hosts_certificate_with_wildcards_and_a_default() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let api = ca.server(&["api.example.com"]);
    let apps = ca.server(&["*.apps.example.com"]);
    let fallback = ca.server(&["default.example.com"]);
    let yaml = format!(
        "{}certificates:\n{}{}{}hostnames:\n  - hostname: api.example.com\n    certificateId: api\n  - hostname: \"*.apps.example.com\"\n    certificateId: apps\n  - hostname: default.example.com\n    certificateId: fallback\n    defaultSslBinding: true\n",
        open_api(&backend.url(), None),
        certificate("api", &api),
        certificate("apps", &apps),
        certificate("fallback", &fallback),
    );
    let gateway = start(&yaml);
    let client = TlsClient::trusting(&ca.cert_pem());
    let addr = gateway.https_addr();

    let exchange = client.get(addr, "api.example.com", "/hello").await.unwrap();
    assert_eq!(exchange.status, 200, "{}", exchange.body);
    assert_eq!(common_name(&exchange.server_certificate), "api.example.com");
    let echo = Echo::from_slice(exchange.body.as_bytes());
    assert_eq!(echo.path, "/hello");
    assert_eq!(echo.header("x-forwarded-proto"), Some("https"));

    let exchange = client
        .get(addr, "shop.apps.example.com", "/")
        .await
        .unwrap();
    assert_eq!(
        common_name(&exchange.server_certificate),
        "*.apps.example.com"
    );

    // No hostname matches: the default certificate, which this name does not match,
    // so a verifying client refuses it.
    let error = client
        .get(addr, "other.example.org", "/")
        .await
        .unwrap_err();
    assert!(error.contains("handshake"), "{error}");
    let exchange = client.get(addr, "default.example.com", "/").await.unwrap();
    assert_eq!(
        common_name(&exchange.server_certificate),
        "default.example.com"
    );
}

#[tokio::test]
async fn without_hostnames_or_a_default_handshakes_are_refused_and_counted() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let api = ca.server(&["api.example.com"]);
    let yaml = api_with_certificate(&backend.url(), &api);
    let gateway = start(&yaml);
    let client = TlsClient::trusting(&ca.cert_pem());
    let error = client
        .get(gateway.https_addr(), "unknown.example.com", "/")
        .await
        .unwrap_err();
    assert!(error.contains("handshake"), "{error}");
    // Counted by the connection's task, which may still run after the client saw the
    // handshake fail.
    wait_for_metric(
        gateway.admin_addr(),
        r#"gatehouse_tls_handshake_errors_total{reason="unknown_server_name"}"#,
        |count| count == 1.0,
        WAIT,
    )
    .await;
}

#[tokio::test]
async fn certificates_swap_live_without_failed_handshakes_or_dropped_connections() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let first = ca.server(&["api.example.com"]);
    let yaml_with = |pair: &CertifiedPem| api_with_certificate(&backend.url(), pair);
    let gateway = start(&yaml_with(&first));
    wait_watching_config(&gateway);
    let addr = gateway.https_addr();
    let client = TlsClient::trusting(&ca.cert_pem());
    let first_serial = serial(
        &client
            .get(addr, "api.example.com", "/")
            .await
            .unwrap()
            .server_certificate,
    );

    // A connection opened before the swaps, reused after them.
    let mut held = client.connect(addr, "api.example.com").await.unwrap();
    assert_eq!(held.get("/before").await.unwrap().status, 200);

    // Load: new connections (a handshake each) from 4 tasks during 3 swaps.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let successes = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, stop, failures, successes) = (
            client.clone(),
            stop.clone(),
            failures.clone(),
            successes.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.get(addr, "api.example.com", "/load").await {
                    Ok(exchange) if exchange.status == 200 => {
                        successes.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(exchange) => panic!("status {} {}", exchange.status, exchange.body),
                    Err(error) => {
                        eprintln!("failed under swap: {error}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Each swap, and the end of the load, comes after some handshakes on the certificate
    // before it (a count, not a fixed time, so a slow machine still gets the load).
    let more_successes = |more: usize| {
        let successes = successes.clone();
        let target = successes.load(Ordering::Relaxed) + more;
        async move {
            assert!(
                wait_for_async(
                    || async { successes.load(Ordering::Relaxed) >= target },
                    WAIT
                )
                .await,
                "the load made no progress"
            );
        }
    };
    let mut last = first;
    for _ in 0..3 {
        more_successes(10).await;
        last = ca.server(&["api.example.com"]);
        gateway.rewrite_config(&yaml_with(&last));
        let expected =
            serial(&gatehouse_tls::certificate::parse_certificates(&last.cert_pem).unwrap()[0]);
        assert!(
            wait_for_async(
                || {
                    let client = client.clone();
                    let expected = expected.clone();
                    async move {
                        client
                            .get(addr, "api.example.com", "/")
                            .await
                            .is_ok_and(|e| serial(&e.server_certificate) == expected)
                    }
                },
                Duration::from_secs(10)
            )
            .await,
            "the new certificate was never served"
        );
    }
    more_successes(10).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed handshakes during swaps"
    );
    assert!(
        successes.load(Ordering::Relaxed) > 20,
        "too little load to mean anything"
    );
    let _ = last;

    // The held connection still works, on the certificate it negotiated.
    let exchange = held.get("/after").await.unwrap();
    assert_eq!(exchange.status, 200);
    assert_eq!(serial(held.server_certificate()), first_serial);
}

#[tokio::test]
async fn an_expired_certificate_is_presented_and_reported_and_a_mismatched_one_refused() {
    // Issue 10, item 2: a certificate past its validity must not block the rest of the
    // configuration. It is presented (clients say why they refuse it) and reported.
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let good = ca.server(&["api.example.com"]);
    let yaml_with = |pair: &CertifiedPem| api_with_certificate(&backend.url(), pair);
    let gateway = start(&yaml_with(&good));
    wait_watching_config(&gateway);
    let client = TlsClient::trusting(&ca.cert_pem());
    let addr = gateway.https_addr();
    let good_serial = serial(
        &client
            .get(addr, "api.example.com", "/")
            .await
            .unwrap()
            .server_certificate,
    );

    let other = ca.server(&["api.example.com"]);
    let mismatched = CertifiedPem {
        cert_pem: other.cert_pem.clone(),
        key_pem: good.key_pem.clone(),
    };
    gateway.rewrite_config(&yaml_with(&mismatched));
    assert!(
        gateway.wait_for_output("does not match the certificate", Duration::from_secs(10)),
        "no reload error naming the key mismatch"
    );
    let exchange = client.get(addr, "api.example.com", "/").await.unwrap();
    assert_eq!(serial(&exchange.server_certificate), good_serial);

    let expired = ca.server_with_validity(&["api.example.com"], Validity::Expired);
    gateway.rewrite_config(&yaml_with(&expired));
    assert!(
        gateway.wait_for_output(
            "the TLS certificate of this host name has expired and is still presented",
            Duration::from_secs(10)
        ),
        "no error naming the expired certificate:\n{}",
        gateway.stderr_lines().join("\n")
    );
    let refused = client.get(addr, "api.example.com", "/").await.unwrap_err();
    assert!(refused.to_lowercase().contains("expired"), "{refused}");
    let metrics = metrics_text(gateway.admin_addr()).await;
    assert!(
        metrics.contains(r#"gatehouse_tls_certificate_expiry_timestamp_seconds{hostname="api.example.com"} 978307200"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn versions_and_cipher_suites_are_enforced() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let api = ca.server(&["api.example.com"]);
    let yaml = format!(
        "{}certificates:\n{}hostnames:\n  - hostname: api.example.com\n    certificateId: api\n    defaultSslBinding: true\n",
        open_api(&backend.url(), None),
        certificate("api", &api),
    );
    let gateway = GatewayProcess::builder(BIN)
        .config(&yaml)
        .args(["--workers", "1", "--tls-min-version", "1.3"])
        .args(["--tls-cipher-suites", "TLS_AES_256_GCM_SHA384"])
        .start();
    let addr = gateway.https_addr();
    use gatehouse_tls::rustls::crypto::ring::cipher_suite as suites;

    let offers_other = TlsClient::offering(
        &ca.cert_pem(),
        &[suites::TLS13_AES_128_GCM_SHA256],
        &[&gatehouse_tls::rustls::version::TLS13],
    );
    let error = offers_other
        .get(addr, "api.example.com", "/")
        .await
        .unwrap_err();
    assert!(error.contains("handshake"), "{error}");

    let tls12_only = TlsClient::offering(
        &ca.cert_pem(),
        &[suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384],
        &[&gatehouse_tls::rustls::version::TLS12],
    );
    let error = tls12_only
        .get(addr, "api.example.com", "/")
        .await
        .unwrap_err();
    assert!(error.contains("handshake"), "{error}");

    let exchange = TlsClient::trusting(&ca.cert_pem())
        .get(addr, "api.example.com", "/")
        .await
        .unwrap();
    assert_eq!(exchange.status, 200);
    assert_eq!(exchange.version, "TLSv1_3");
    assert_eq!(exchange.cipher_suite, "TLS13_AES_256_GCM_SHA384");
}

#[test]
fn a_cipher_suite_rustls_lacks_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.yaml");
    std::fs::write(&config, "apis: []\n").unwrap();
    let settings = dir.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "net.server.tls.ciphers.allowed-suites: TLS_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA\n",
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["--log-format", "text", "gateway", "--config"])
        .arg(&config)
        .arg("--settings")
        .arg(&settings)
        .args(["--listen", "127.0.0.1:0", "--https-listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("net.server.tls.ciphers.allowed-suites"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`TLS_RSA_WITH_AES_128_CBC_SHA` is not available"),
        "{stderr}"
    );
}

#[tokio::test]
async fn client_certificates_required_optional_and_invalid() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let clients = TestCa::new("Partner CA");
    let stranger = TestCa::new("Stranger CA").client("intruder");
    let partner = clients.client("partner-1");
    let server = ca.server(&["req.example.com", "opt.example.com"]);
    let policy = inbound_policy(
        "    <validate-client-certificate validate-revocation=\"false\" validate-trust=\"true\" />",
    );
    let yaml = format!(
        "{}certificates:\n{}{}hostnames:\n  - hostname: req.example.com\n    certificateId: server\n    requireClientCertificate: true\n  - hostname: opt.example.com\n    certificateId: server\n    negotiateClientCertificate: true\n",
        open_api(&backend.url(), Some(&policy)),
        certificate("server", &server),
        client_ca("partners", &clients),
    );
    let gateway = start(&yaml);
    let addr = gateway.https_addr();
    let anonymous = TlsClient::trusting(&ca.cert_pem());
    let with_partner = TlsClient::with_client_certificate(&ca.cert_pem(), &partner);
    let with_stranger = TlsClient::with_client_certificate(&ca.cert_pem(), &stranger);

    // Required: no certificate, or one from an unknown CA, fails the handshake.
    assert!(anonymous.get(addr, "req.example.com", "/").await.is_err());
    assert!(
        with_stranger
            .get(addr, "req.example.com", "/")
            .await
            .is_err()
    );
    let exchange = with_partner
        .get(addr, "req.example.com", "/")
        .await
        .unwrap();
    assert_eq!(exchange.status, 200, "{}", exchange.body);

    // Optional: the handshake succeeds either way; the policy judges.
    let exchange = anonymous.get(addr, "opt.example.com", "/").await.unwrap();
    assert_eq!(exchange.status, 401, "{}", exchange.body);
    assert!(
        exchange.body.contains("Client certificate missing"),
        "{}",
        exchange.body
    );
    let exchange = with_stranger
        .get(addr, "opt.example.com", "/")
        .await
        .unwrap();
    assert_eq!(exchange.status, 401, "{}", exchange.body);
    assert!(
        exchange.body.contains("Invalid client certificate"),
        "{}",
        exchange.body
    );
    let exchange = with_partner
        .get(addr, "opt.example.com", "/")
        .await
        .unwrap();
    assert_eq!(exchange.status, 200, "{}", exchange.body);
}

/// A configuration forwarding to an HTTPS backend (reached at 127.0.0.1) with the given
/// `tls:` block (YAML, indented for a backend entity), plus certificates.
fn tls_backend_config(backend: &TlsBackend, tls: &str, certificates: &str) -> String {
    format!(
        "backends:\n  - id: secure\n    url: https://127.0.0.1:{}\n{tls}apis:\n  - id: api\n    path: \"\"\n    backendId: secure\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}certificates:\n{certificates}",
        backend.addr().port()
    )
}

#[tokio::test]
async fn https_backends_are_verified_against_the_configured_ca() {
    let backend_ca = TestCa::new("Backend CA");
    let backend = TlsBackend::start(&backend_ca.server(&["backend.internal"]), None);
    let wrong_ca = TestCa::new("Wrong CA");
    let ca_entity = |ca: &TestCa| {
        format!(
            "  - id: backend-ca\n    {}",
            block("certificatePem", &ca.cert_pem(), 6)
        )
    };
    // The backend is reached at 127.0.0.1 but named backend.internal.
    let tls =
        "    tls:\n      caCertificateIds: [backend-ca]\n      serverName: backend.internal\n";
    let yaml = tls_backend_config(&backend, tls, &ca_entity(&backend_ca));
    let gateway = start(&yaml);
    wait_watching_config(&gateway);
    let response = http_client().get(gateway.url("/x")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["sni"], "backend.internal");
    assert_eq!(body["path"], "/x");

    // The same backend with the wrong CA: 502, and the log says why.
    gateway.rewrite_config(&tls_backend_config(&backend, tls, &ca_entity(&wrong_ca)));
    assert!(wait_status(&gateway, "/x", 502).await);
    assert!(
        gateway.wait_for_output(
            "invalid peer certificate: UnknownIssuer",
            Duration::from_secs(5)
        ),
        "no log line naming the certificate problem:\n{}",
        gateway.stderr_lines().join("\n")
    );

    // Verification off, explicitly: served, with a warning at load.
    let insecure =
        "    tls:\n      validateCertificateChain: false\n      serverName: backend.internal\n";
    gateway.rewrite_config(&tls_backend_config(
        &backend,
        insecure,
        &ca_entity(&wrong_ca),
    ));
    assert!(wait_status(&gateway, "/x", 200).await);
    assert!(
        gateway.wait_for_output("backend TLS verification is turned off", WAIT),
        "no warning for turned-off verification"
    );
}

#[tokio::test]
async fn a_backend_that_requires_a_client_certificate_gets_the_configured_one() {
    let backend_ca = TestCa::new("Backend CA");
    let gateway_identity_ca = TestCa::new("Gateway identity CA");
    let backend = TlsBackend::start(
        &backend_ca.server(&["backend.internal"]),
        Some(&gateway_identity_ca.cert_pem()),
    );
    let identity = gateway_identity_ca.client("gateway-7");
    let certificates = format!(
        "  - id: backend-ca\n    {}{}",
        block("certificatePem", &backend_ca.cert_pem(), 6),
        certificate("identity", &identity),
    );
    let with_identity = "    tls:\n      caCertificateIds: [backend-ca]\n      serverName: backend.internal\n      clientCertificateId: identity\n";
    let without =
        "    tls:\n      caCertificateIds: [backend-ca]\n      serverName: backend.internal\n";
    let yaml = |tls: &str| tls_backend_config(&backend, tls, &certificates);
    let gateway = start(&yaml(with_identity));
    wait_watching_config(&gateway);
    let response = http_client().get(gateway.url("/y")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["clientCertificates"], 1);

    gateway.rewrite_config(&yaml(without));
    assert!(
        wait_status(&gateway, "/y", 502).await,
        "a backend requiring a certificate must refuse the gateway without one"
    );
}

#[tokio::test]
async fn api_protocols_separate_http_and_https() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let api = ca.server(&["api.example.com"]);
    let yaml = format!(
        "apis:\n  - id: secure\n    path: secure\n    serviceUrl: {0}\n    subscriptionRequired: false\n    protocols: [https]\n    operations:\n{ANY_OPERATION}  - id: plain\n    path: plain\n    serviceUrl: {0}\n    subscriptionRequired: false\n    protocols: [http]\n    operations:\n{ANY_OPERATION}certificates:\n{1}hostnames:\n  - hostname: api.example.com\n    certificateId: api\n",
        backend.url(),
        certificate("api", &api),
    );
    let gateway = start(&yaml);
    let client = TlsClient::trusting(&ca.cert_pem());
    let addr = gateway.https_addr();
    assert_eq!(
        client
            .get(addr, "api.example.com", "/secure/a")
            .await
            .unwrap()
            .status,
        200
    );
    assert_ne!(
        client
            .get(addr, "api.example.com", "/plain/a")
            .await
            .unwrap()
            .status,
        200
    );
    let plain = http_client()
        .get(gateway.url("/plain/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let secure = http_client()
        .get(gateway.url("/secure/a"))
        .send()
        .await
        .unwrap();
    assert_ne!(secure.status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_cut_off() {
    use tokio::io::AsyncReadExt as _;
    let backend = EchoBackend::start();
    let gateway = GatewayProcess::builder(BIN)
        .config(open_api(&backend.url(), None))
        .args(["--workers", "1", "--tls-handshake-timeout", "500ms"])
        .start();
    let mut stream = tokio::net::TcpStream::connect(gateway.https_addr())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
        .await
        .expect("the gateway kept a silent TLS client past the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn http2_is_offered_by_alpn_and_can_be_turned_off() {
    let backend = EchoBackend::start();
    let ca = TestCa::new("Gateway CA");
    let api = ca.server(&["api.example.com"]);
    let yaml = api_with_certificate(&backend.url(), &api);
    let both: &[&[u8]] = &[b"h2", b"http/1.1"];
    let client = TlsClient::trusting(&ca.cert_pem()).with_alpn(both);

    let gateway = start(&yaml);
    let connection = client
        .connect(gateway.https_addr(), "api.example.com")
        .await
        .unwrap();
    assert_eq!(connection.alpn(), Some(&b"h2"[..]));

    let http1_only = GatewayProcess::builder(BIN)
        .config(&yaml)
        .args(["--workers", "1", "--http2", "false"])
        .start();
    let connection = client
        .connect(http1_only.https_addr(), "api.example.com")
        .await
        .unwrap();
    assert_eq!(connection.alpn(), Some(&b"http/1.1"[..]));
    // Prior-knowledge h2c is refused on the plain listener too.
    assert!(h2c_client().get(http1_only.url("/x")).send().await.is_err());
    assert_eq!(
        h2c_client()
            .get(gateway.url("/x"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn forward_request_http_version_picks_http2_by_alpn() {
    let backend_ca = TestCa::new("Backend CA");
    let backend = TlsBackend::start(&backend_ca.server(&["backend.internal"]), None);
    let ca = format!(
        "  - id: backend-ca\n    {}",
        block("certificatePem", &backend_ca.cert_pem(), 6)
    );
    let tls =
        "    tls:\n      caCertificateIds: [backend-ca]\n      serverName: backend.internal\n";
    let yaml = tls_backend_config(&backend, tls, &ca);
    for (version, expected) in [
        (None, "HTTP/1.1"),
        (Some("1"), "HTTP/1.1"),
        (Some("2"), "HTTP/2.0"),
        (Some("2or1"), "HTTP/2.0"),
    ] {
        let yaml = match version {
            None => yaml.clone(),
            Some(version) => yaml.replace(
                "    subscriptionRequired: false\n",
                &format!(
                    "    subscriptionRequired: false\n    policy: |\n      <policies><backend><forward-request http-version=\"{version}\"/></backend></policies>\n"
                ),
            ),
        };
        let gateway = start(&yaml);
        let response = http_client().get(gateway.url("/x")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{version:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["version"], expected, "{version:?}");
    }
}
