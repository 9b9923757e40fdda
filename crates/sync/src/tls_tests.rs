use std::net::SocketAddr;
use std::time::Duration;

use gatehouse_gateway::metrics::SyncErrorReason;
use gatehouse_model::token::GatewayToken;
use gatehouse_test_support::pki::{CertifiedPem, TestCa, Validity};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::client::{ConfigClient, SyncError};
use crate::settings::AuthSetting;
use crate::token::TokenSource;

fn https(addr: SocketAddr) -> Endpoint {
    Endpoint::parse(&format!("https://{addr}")).unwrap()
}

#[test]
fn an_http_endpoint_needs_no_tls() {
    let endpoint = Endpoint::parse("http://control:8090").unwrap();
    assert!(client_config(&endpoint, None).unwrap().is_none());
    assert!(
        client_config(&endpoint, Some(Path::new("/nonexistent/ca.pem")))
            .unwrap()
            .is_none(),
        "the CA file is not read for http://"
    );
}

#[test]
fn the_ca_file_is_named_when_it_cannot_be_used() {
    let endpoint = Endpoint::parse("https://control:8443").unwrap();
    let missing = Path::new("/nonexistent/ca.pem");
    let error = client_config(&endpoint, Some(missing)).unwrap_err();
    assert!(
        matches!(error, TlsSetupError::ReadCaFile { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, "not a certificate").unwrap();
    let text = client_config(&endpoint, Some(&file))
        .unwrap_err()
        .to_string();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");
}

#[test]
fn a_ca_file_makes_a_configuration_offering_h2_and_http11() {
    let ca = TestCa::new("Sync CA");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca.cert_pem()).unwrap();
    let endpoint = Endpoint::parse("https://control:8443").unwrap();
    let config = client_config(&endpoint, Some(&file)).unwrap().unwrap();
    assert_eq!(
        config.alpn_protocols,
        [b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}

/// A TLS server on 127.0.0.1 presenting `pem` that answers every request with 404 and
/// a control-plane error body.
async fn tls_server(pem: &CertifiedPem) -> SocketAddr {
    let key = gatehouse_tls::certificate::certified_key(
        &pem.cert_pem,
        &pem.key_pem,
        std::time::SystemTime::now(),
    )
    .or_else(|_| {
        // Expired on purpose: build the key without the validity check.
        let chain = gatehouse_tls::certificate::parse_certificates(&pem.cert_pem)?;
        let private = gatehouse_tls::certificate::parse_private_key(&pem.key_pem)?;
        let signing = gatehouse_tls::default_provider()
            .key_provider
            .load_private_key(private)?;
        Ok::<_, TlsError>(Arc::new(rustls::sign::CertifiedKey::new(chain, signing)))
    })
    .unwrap();
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(gatehouse_tls::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buffer = [0_u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => request.extend_from_slice(&buffer[..read]),
                    }
                }
                let body =
                    r#"{"error":{"code":"NotFound","message":"gateway `edge` does not exist"}}"#;
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// A plain TCP server answering HTTP/1.1 400, as a plain listener does to a TLS hello.
async fn plain_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0_u8; 1024];
            let _ = stream.read(&mut buffer).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    addr
}

async fn snapshot(endpoint: Endpoint, ca: &TestCa) -> SyncError {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pem");
    std::fs::write(&file, ca.cert_pem()).unwrap();
    let tls = client_config(&endpoint, Some(&file)).unwrap();
    let token = GatewayToken::sign("edge", b"key", 4_102_444_800).unwrap();
    let token = Arc::new(TokenSource::load(&AuthSetting::Token(token)).await.unwrap());
    let client = ConfigClient::new(endpoint, token, Duration::from_secs(5), tls).unwrap();
    client.snapshot().await.unwrap_err()
}

#[tokio::test]
async fn a_trusted_certificate_gets_through_to_the_control_plane() {
    let ca = TestCa::new("Sync CA");
    let addr = tls_server(&ca.server(&["127.0.0.1", "localhost"])).await;
    let error = snapshot(https(addr), &ca).await;
    // The TLS part worked: the control plane's own answer came back.
    assert_eq!(error.reason, SyncErrorReason::Status4xx, "{error}");
    assert!(error.message.contains("does not exist"), "{error}");
}

#[tokio::test]
async fn tls_failures_are_classified_as_tls_with_what_to_do() {
    let ca = TestCa::new("Sync CA");
    let stranger = TestCa::new("Another CA");
    let cases = [
        (
            tls_server(&stranger.server(&["127.0.0.1"])).await,
            "--config-service-ca-file",
        ),
        (
            tls_server(&ca.server(&["control.example"])).await,
            "does not name the host",
        ),
        (
            tls_server(&ca.server_with_validity(&["127.0.0.1"], Validity::Expired)).await,
            "has expired",
        ),
        (plain_server().await, "is it serving HTTPS?"),
    ];
    for (addr, expected) in cases {
        let error = snapshot(https(addr), &ca).await;
        assert_eq!(error.reason, SyncErrorReason::Tls, "{error}");
        assert!(error.message.contains(expected), "{error}");
        assert!(
            error.message.contains("TLS with the control plane"),
            "{error}"
        );
    }
}
