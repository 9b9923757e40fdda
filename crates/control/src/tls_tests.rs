use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_test_support::pki::{CertifiedPem, TestCa, Validity};
use gatehouse_tls::certificate::root_store;
use gatehouse_tls::client::ClientTls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::ControlState;
use crate::auth::AdminToken;
use crate::vault::Vault;

struct Files {
    dir: tempfile::TempDir,
    files: TlsFiles,
}

impl Files {
    fn new(pem: &CertifiedPem) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            certificate: dir.path().join("tls.crt"),
            private_key: dir.path().join("tls.key"),
        };
        let this = Self { dir, files };
        this.write(pem);
        this
    }

    /// Replaces both files, each atomically (write, then rename).
    fn write(&self, pem: &CertifiedPem) {
        self.write_file(&self.files.private_key, &pem.key_pem);
        self.write_file(&self.files.certificate, &pem.cert_pem);
    }

    fn write_file(&self, path: &Path, text: &str) {
        let temp = self.dir.path().join("incoming.tmp");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, path).unwrap();
    }
}

fn serial(loaded: &LoadedCertificate) -> String {
    loaded.details.serial_number.clone()
}

#[test]
fn a_good_pair_loads_with_its_details() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    let loaded = load(&files.files, SystemTime::now()).unwrap();
    assert!(
        loaded.details.subject.contains("CN=localhost"),
        "{loaded:?}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    std::fs::remove_file(&files.files.private_key).unwrap();
    let error = load(&files.files, SystemTime::now()).unwrap_err();
    assert!(matches!(error, TlsFileError::Read { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("private key file"), "{text}");
    assert!(
        text.contains(&files.files.private_key.display().to_string()),
        "{text}"
    );
}

#[test]
fn a_file_that_is_not_pem_is_named_with_the_problem() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    std::fs::write(&files.files.certificate, "hello").unwrap();
    let text = load(&files.files, SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&files.files.certificate.display().to_string()),
        "{text}"
    );
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");

    let files = Files::new(&ca.server(&["localhost"]));
    std::fs::write(&files.files.private_key, "hello").unwrap();
    let text = load(&files.files, SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(
        text.contains(&files.files.private_key.display().to_string()),
        "{text}"
    );
    assert!(text.contains("PRIVATE KEY"), "{text}");
}

#[test]
fn a_key_of_another_certificate_names_both_files() {
    let ca = TestCa::new("Control CA");
    let one = ca.server(&["localhost"]);
    let other = ca.server(&["localhost"]);
    let files = Files::new(&CertifiedPem {
        cert_pem: one.cert_pem,
        key_pem: other.key_pem.clone(),
    });
    let error = load(&files.files, SystemTime::now()).unwrap_err();
    assert!(matches!(error, TlsFileError::Mismatch { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("does not match"), "{text}");
    assert!(
        text.contains(&files.files.certificate.display().to_string())
            && text.contains(&files.files.private_key.display().to_string()),
        "{text}"
    );
    assert!(
        !text.contains(other.key_pem.lines().nth(1).unwrap()),
        "{text}"
    );
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server_with_validity(&["localhost"], Validity::Expired));
    let text = load(&files.files, SystemTime::now())
        .unwrap_err()
        .to_string();
    assert!(text.contains("expired on 2001-01-01"), "{text}");
    assert!(
        text.contains(&files.files.certificate.display().to_string()),
        "{text}"
    );
}

#[test]
fn a_bad_new_pair_keeps_the_old_one_and_a_good_one_replaces_it() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    let reloading = ReloadingCertificate::load(files.files.clone()).unwrap();
    let first = serial(&reloading.current());

    assert!(reloading.reload().unwrap().is_none(), "unchanged files");
    std::fs::write(&files.files.certificate, "truncated").unwrap();
    assert!(reloading.reload().is_err());
    assert_eq!(
        serial(&reloading.current()),
        first,
        "the old pair serves on"
    );

    files.write(&ca.server(&["localhost"]));
    let loaded = reloading.reload().unwrap().expect("a new pair");
    assert_ne!(serial(&loaded), first);
    assert_eq!(serial(&reloading.current()), serial(&loaded));
}

async fn wait_for_serial(reloading: &ReloadingCertificate, not: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = serial(&reloading.current());
        if now != not {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reloaded in time"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_of_the_files_is_picked_up_by_the_watcher() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    let reloading = Arc::new(ReloadingCertificate::load(files.files.clone()).unwrap());
    let first = serial(&reloading.current());
    let shutdown = CancellationToken::new();
    let task = reloading.watch(shutdown.clone()).unwrap();
    files.write(&ca.server(&["localhost"]));
    let second = wait_for_serial(&reloading, &first).await;

    // A Kubernetes Secret volume: the files are symlinks through `..data`, which is
    // swapped to a new directory.
    let dir = tempfile::tempdir().unwrap();
    let publish = |name: &str, pem: &CertifiedPem| {
        let version = dir.path().join(name);
        std::fs::create_dir(&version).unwrap();
        std::fs::write(version.join("tls.crt"), &pem.cert_pem).unwrap();
        std::fs::write(version.join("tls.key"), &pem.key_pem).unwrap();
        let link = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(name, &link).unwrap();
        std::fs::rename(&link, dir.path().join("..data")).unwrap();
    };
    publish("..v1", &ca.server(&["localhost"]));
    std::os::unix::fs::symlink("..data/tls.crt", dir.path().join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", dir.path().join("tls.key")).unwrap();
    let secret = Arc::new(
        ReloadingCertificate::load(TlsFiles {
            certificate: dir.path().join("tls.crt"),
            private_key: dir.path().join("tls.key"),
        })
        .unwrap(),
    );
    let before = serial(&secret.current());
    let secret_task = secret.watch(shutdown.clone()).unwrap();
    publish("..v2", &ca.server(&["localhost"]));
    wait_for_serial(&secret, &before).await;

    shutdown.cancel();
    task.await.unwrap();
    secret_task.await.unwrap();
    assert_ne!(second, first);
}

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("control.db").display());
    let store = gatehouse_store::Store::connect(&url).await.unwrap();
    let state = Arc::new(ControlState::new(
        store,
        AdminToken::from_secret("test-admin-token"),
        Vault::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap(),
        crate::ControlSettings::default(),
    ));
    (state, dir)
}

fn client_config(ca: &TestCa, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    ClientTls {
        roots: Some(Arc::new(root_store([ca.cert_pem().as_str()]).unwrap())),
        alpn: alpn.iter().map(|id| id.to_vec()).collect(),
        ..ClientTls::default()
    }
    .build()
    .unwrap()
}

/// Opens a TLS connection; returns it and the serial number of the certificate served.
async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    String,
) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let leaf = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let serial = CertificateDetails::from_der(&leaf).unwrap().serial_number;
    (stream, serial)
}

/// `GET /healthz` over HTTP/1.1 on an open connection, keeping it open.
async fn healthz(stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0_u8; 1024];
    while !answer.ends_with(b"ok\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        assert!(
            read > 0,
            "connection closed: {:?}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn https_serves_the_api_over_h2_and_http11_and_new_connections_get_a_new_certificate() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost", "127.0.0.1"]));
    let reloading = Arc::new(ReloadingCertificate::load(files.files.clone()).unwrap());
    let first = serial(&reloading.current());
    let (state, _db) = state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_tls(
        listener,
        state,
        reloading.server_config().unwrap(),
        shutdown.clone(),
    ));

    // reqwest with a configuration from gatehouse-tls: ALPN picks HTTP/2.
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&client_config(
            &ca,
            &[gatehouse_tls::ALPN_H2, gatehouse_tls::ALPN_HTTP11],
        )))
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .get(format!("https://127.0.0.1:{}/healthz", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.text().await.unwrap(), "ok\n");
    let unauthorized = client
        .get(format!("https://localhost:{}/apis", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), reqwest::StatusCode::UNAUTHORIZED);

    // HTTP/1.1 on a connection that stays open across a certificate change.
    let http11 = client_config(&ca, &[gatehouse_tls::ALPN_HTTP11]);
    let (mut open, served) = connect(addr, http11).await;
    assert_eq!(served, first);
    assert!(healthz(&mut open).await.starts_with("HTTP/1.1 200"));

    files.write(&ca.server(&["localhost", "127.0.0.1"]));
    reloading.reload_and_log("test").await;
    let second = serial(&reloading.current());
    assert_ne!(second, first);
    // A new client: one that resumes its earlier TLS session sees that session's
    // certificate.
    let (mut fresh, served) =
        connect(addr, client_config(&ca, &[gatehouse_tls::ALPN_HTTP11])).await;
    assert_eq!(served, second, "a new connection gets the new certificate");
    assert!(healthz(&mut fresh).await.starts_with("HTTP/1.1 200"));
    assert!(
        healthz(&mut open).await.starts_with("HTTP/1.1 200"),
        "the open connection keeps working"
    );

    // Graceful shutdown: open connections are closed once idle, and the server ends.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused_and_the_server_goes_on() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost"]));
    let reloading = Arc::new(ReloadingCertificate::load(files.files.clone()).unwrap());
    let (state, _db) = state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_tls(
        listener,
        state,
        reloading.server_config().unwrap(),
        shutdown.clone(),
    ));
    let stranger = TestCa::new("Another CA");
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = tokio_rustls::TlsConnector::from(client_config(&stranger, &[]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await;
    assert!(refused.is_err());
    // Plain HTTP to the TLS port gets nothing useful, and does not stop the server.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut sink)).await;
    assert!(!String::from_utf8_lossy(&sink).contains("ok"));
    let (mut good, _) = connect(addr, client_config(&ca, &[])).await;
    assert!(healthz(&mut good).await.starts_with("HTTP/1.1 200"));
    drop(good);
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

// Security: over HTTPS the portal's session cookie is `Secure`, so a browser never
// sends it over plain HTTP.
#[tokio::test]
async fn the_portal_s_session_cookie_is_secure_over_https() {
    let ca = TestCa::new("Control CA");
    let files = Files::new(&ca.server(&["localhost", "127.0.0.1"]));
    let reloading = Arc::new(ReloadingCertificate::load(files.files.clone()).unwrap());
    let (state, _db) = state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_tls(
        listener,
        state,
        reloading.server_config().unwrap(),
        shutdown.clone(),
    ));
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(rustls::ClientConfig::clone(&client_config(
            &ca,
            &[gatehouse_tls::ALPN_HTTP11],
        )))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .post(format!("https://localhost:{}/portal/sign-in", addr.port()))
        .form(&[("token", "test-admin-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("gatehouse_portal="), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
