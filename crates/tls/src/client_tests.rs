use std::time::SystemTime;

use gatehouse_test_support::pki::TestCa;
use rustls::pki_types::ServerName;

use super::*;
use crate::server::tests::{handshake, server_for};

fn client(ca: &TestCa, verify_chain: bool, verify_name: bool) -> ClientTls {
    ClientTls {
        roots: Some(Arc::new(
            crate::certificate::root_store([ca.cert_pem().as_str()]).unwrap(),
        )),
        verify_chain,
        verify_name,
        ..ClientTls::default()
    }
}

fn connect(client: &ClientTls, server: &crate::ServerTls, name: &str) -> Result<(), rustls::Error> {
    let config = client.build().unwrap();
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut client = rustls::ClientConnection::new(config, server_name).unwrap();
    let mut server = rustls::ServerConnection::new(server.select(Some(name)).unwrap()).unwrap();
    handshake(&mut client, &mut server)
}

#[test]
fn a_private_ca_is_trusted_when_configured_and_only_then() {
    let ca = TestCa::new("Backend CA");
    let server = server_for(&ca, &["backend.internal"]);
    connect(&client(&ca, true, true), &server, "backend.internal").unwrap();

    let other = TestCa::new("Other CA");
    let error = connect(&client(&other, true, true), &server, "backend.internal").unwrap_err();
    assert!(
        matches!(
            error,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
        ),
        "{error:?}"
    );
}

#[test]
fn name_checks_can_be_turned_off_explicitly() {
    let ca = TestCa::new("Backend CA");
    let server = server_for(&ca, &["backend.internal", "*.wrong.internal"]);
    // The certificate does not name `x.wrong.internal`'s sibling `other.internal`.
    let mut strict = client(&ca, true, true);
    strict.roots = client(&ca, true, true).roots;
    let error = connect(&strict, &server, "x.wrong.internal");
    assert!(error.is_ok(), "the wildcard names it: {error:?}");

    let names_only = server_for(&ca, &["backend.internal"]);
    let loose = client(&ca, true, false);
    // SNI `other.internal` gets the default certificate, which names backend.internal.
    connect(&loose, &names_only, "other.internal").unwrap();
    let error = connect(&strict, &names_only, "other.internal").unwrap_err();
    assert!(
        matches!(
            error,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. }
            )
        ),
        "{error:?}"
    );
}

#[test]
fn chain_checks_can_be_turned_off_explicitly() {
    let ca = TestCa::new("Backend CA");
    let server = server_for(&ca, &["backend.internal"]);
    let other = TestCa::new("Other CA");
    connect(&client(&other, false, true), &server, "backend.internal").unwrap();
}

#[test]
fn a_client_certificate_is_presented_when_asked() {
    let ca = TestCa::new("Client CA");
    let pair = ca.client("gateway-7");
    let mut tls = client(&ca, true, true);
    tls.client_certificate = Some(
        crate::certificate::certified_key(&pair.cert_pem, &pair.key_pem, SystemTime::now())
            .unwrap(),
    );
    let server = crate::server::tests::server_with_client_auth(
        &ca,
        &["backend.internal"],
        crate::ClientAuth::Require,
        true,
    );
    connect(&tls, &server, "backend.internal").unwrap();
    tls.client_certificate = None;
    assert!(connect(&tls, &server, "backend.internal").is_err());
}
