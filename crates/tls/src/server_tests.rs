use std::time::SystemTime;

use gatehouse_test_support::pki::TestCa;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};

use super::*;
use crate::TlsVersion;
use crate::certificate::{certified_key, parse_certificates};
use crate::client::ClientTls;

/// Runs a handshake in memory; the first error either side reports.
pub(crate) fn handshake(
    client: &mut ClientConnection,
    server: &mut ServerConnection,
) -> Result<(), rustls::Error> {
    for _ in 0..16 {
        let mut bytes = Vec::new();
        client.write_tls(&mut bytes).unwrap();
        if !bytes.is_empty() {
            server.read_tls(&mut bytes.as_slice()).unwrap();
            if let Err(error) = server.process_new_packets() {
                // Deliver the alert so the client side fails too, then report.
                let mut alert = Vec::new();
                let _ = server.write_tls(&mut alert);
                let _ = client.read_tls(&mut alert.as_slice());
                let _ = client.process_new_packets();
                return Err(error);
            }
        }
        let mut bytes = Vec::new();
        server.write_tls(&mut bytes).unwrap();
        if !bytes.is_empty() {
            client.read_tls(&mut bytes.as_slice()).unwrap();
            client.process_new_packets()?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish")
}

fn host(ca: &TestCa, name: &str, default: bool, client_auth: ClientAuth) -> HostCertificate {
    let pair = ca.server(&[name]);
    HostCertificate {
        hostname: name.to_owned(),
        key: certified_key(&pair.cert_pem, &pair.key_pem, SystemTime::now()).unwrap(),
        client_auth,
        default,
    }
}

/// A listener serving `names`, the first one as default.
pub(crate) fn server_for(ca: &TestCa, names: &[&str]) -> ServerTls {
    let hosts = names
        .iter()
        .enumerate()
        .map(|(i, name)| host(ca, name, i == 0, ClientAuth::None))
        .collect();
    ServerTls::new(hosts, &[], &ProtocolSettings::default()).unwrap()
}

pub(crate) fn server_with_client_auth(
    ca: &TestCa,
    names: &[&str],
    client_auth: ClientAuth,
    with_client_ca: bool,
) -> ServerTls {
    let hosts = names
        .iter()
        .map(|name| host(ca, name, false, client_auth))
        .collect();
    let cas = if with_client_ca {
        parse_certificates(&ca.cert_pem()).unwrap()
    } else {
        Vec::new()
    };
    ServerTls::new(hosts, &cas, &ProtocolSettings::default()).unwrap()
}

fn connect_with(
    server: &ServerTls,
    ca: &TestCa,
    sni: &str,
    client_pem: Option<&gatehouse_test_support::pki::CertifiedPem>,
    protocol: ProtocolSettings,
) -> (
    Result<(), rustls::Error>,
    ClientConnection,
    ServerConnection,
) {
    let tls = ClientTls {
        roots: Some(Arc::new(
            crate::certificate::root_store([ca.cert_pem().as_str()]).unwrap(),
        )),
        client_certificate: client_pem
            .map(|pair| certified_key(&pair.cert_pem, &pair.key_pem, SystemTime::now()).unwrap()),
        protocol,
        alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        ..ClientTls::default()
    };
    let mut client = ClientConnection::new(
        tls.build().unwrap(),
        ServerName::try_from(sni.to_owned()).unwrap(),
    )
    .unwrap();
    let mut server = ServerConnection::new(server.select(Some(sni)).unwrap()).unwrap();
    let result = handshake(&mut client, &mut server);
    (result, client, server)
}

fn presented_name(client: &ClientConnection) -> String {
    let leaf = &client.peer_certificates().unwrap()[0];
    crate::certificate::CertificateDetails::from_der(leaf)
        .unwrap()
        .common_name
        .unwrap()
}

#[test]
fn sni_picks_exact_then_wildcard_then_default() {
    let ca = TestCa::new("Server CA");
    let server = server_for(
        &ca,
        &[
            "default.example.com",
            "api.example.com",
            "*.apps.example.com",
        ],
    );
    let protocol = ProtocolSettings::default;
    let (result, client, server_conn) =
        connect_with(&server, &ca, "api.example.com", None, protocol());
    result.unwrap();
    assert_eq!(presented_name(&client), "api.example.com");
    assert_eq!(server_conn.alpn_protocol(), Some(&b"h2"[..]));
    let (result, client, _) = connect_with(&server, &ca, "shop.apps.example.com", None, protocol());
    result.unwrap();
    assert_eq!(presented_name(&client), "*.apps.example.com");
    // A wildcard covers one label only; the rest falls to the default.
    assert_eq!(
        server
            .table
            .lookup(Some("a.b.apps.example.com"))
            .unwrap()
            .hostname,
        "default.example.com"
    );
    assert_eq!(
        server
            .table
            .lookup(Some("API.Example.COM."))
            .unwrap()
            .hostname,
        "api.example.com"
    );
    assert_eq!(
        server.table.lookup(None).unwrap().hostname,
        "default.example.com"
    );
}

#[test]
fn without_a_default_an_unknown_name_is_refused() {
    let ca = TestCa::new("Server CA");
    let server = ServerTls::new(
        vec![host(&ca, "api.example.com", false, ClientAuth::None)],
        &[],
        &ProtocolSettings::default(),
    )
    .unwrap();
    assert!(server.select(Some("other.example.com")).is_none());
    assert!(server.select(None).is_none());
    assert!(server.select(Some("api.example.com")).is_some());
}

#[test]
fn restricted_suites_and_versions_refuse_other_clients() {
    let ca = TestCa::new("Server CA");
    let mut protocol = ProtocolSettings::default();
    protocol
        .set_cipher_suites("TLS_AES_256_GCM_SHA384")
        .unwrap();
    protocol.min_version = TlsVersion::V1_3;
    let hosts = vec![host(&ca, "api.example.com", true, ClientAuth::None)];
    let server = ServerTls::new(hosts, &[], &protocol).unwrap();

    let mut offers_other = ProtocolSettings::default();
    offers_other
        .set_cipher_suites("TLS_AES_128_GCM_SHA256")
        .unwrap();
    let (result, _, _) = connect_with(&server, &ca, "api.example.com", None, offers_other);
    assert!(
        matches!(result, Err(rustls::Error::PeerIncompatible(_))),
        "{result:?}"
    );

    let tls12_only = ProtocolSettings {
        max_version: TlsVersion::V1_2,
        ..ProtocolSettings::default()
    };
    let (result, _, _) = connect_with(&server, &ca, "api.example.com", None, tls12_only);
    assert!(result.is_err(), "{result:?}");

    let (result, client, _) = connect_with(
        &server,
        &ca,
        "api.example.com",
        None,
        ProtocolSettings::default(),
    );
    result.unwrap();
    assert_eq!(
        client.negotiated_cipher_suite().unwrap().suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
}

#[test]
fn required_client_certificates_must_chain_to_a_client_ca() {
    let ca = TestCa::new("Client CA");
    let server = server_with_client_auth(&ca, &["api.example.com"], ClientAuth::Require, true);
    let good = ca.client("partner-1");
    let (result, _, server_conn) = connect_with(
        &server,
        &ca,
        "api.example.com",
        Some(&good),
        ProtocolSettings::default(),
    );
    result.unwrap();
    let chain = server_conn.peer_certificates().unwrap();
    let leaf = CertificateDetails::from_der(&chain[0]).unwrap();
    let (trusted, issuer) = server.client_trust(chain, &leaf);
    assert!(trusted);
    let ca_thumbprint =
        crate::certificate::thumbprint(&parse_certificates(&ca.cert_pem()).unwrap()[0]);
    assert_eq!(issuer, Some(ca_thumbprint));

    let (result, _, _) = connect_with(
        &server,
        &ca,
        "api.example.com",
        None,
        ProtocolSettings::default(),
    );
    assert!(
        matches!(result, Err(rustls::Error::NoCertificatesPresented)),
        "{result:?}"
    );

    let stranger = TestCa::new("Stranger CA").client("intruder");
    let (result, _, _) = connect_with(
        &server,
        &ca,
        "api.example.com",
        Some(&stranger),
        ProtocolSettings::default(),
    );
    assert!(
        matches!(result, Err(rustls::Error::InvalidCertificate(_))),
        "{result:?}"
    );
}

#[test]
fn requested_client_certificates_are_optional_and_judged_later() {
    let ca = TestCa::new("Client CA");
    let server = server_with_client_auth(&ca, &["api.example.com"], ClientAuth::Request, true);
    let (result, _, server_conn) = connect_with(
        &server,
        &ca,
        "api.example.com",
        None,
        ProtocolSettings::default(),
    );
    result.unwrap();
    assert!(server_conn.peer_certificates().is_none());

    let stranger = TestCa::new("Stranger CA").client("intruder");
    let (result, _, server_conn) = connect_with(
        &server,
        &ca,
        "api.example.com",
        Some(&stranger),
        ProtocolSettings::default(),
    );
    result.unwrap();
    let chain = server_conn.peer_certificates().unwrap();
    let leaf = CertificateDetails::from_der(&chain[0]).unwrap();
    assert_eq!(leaf.common_name.as_deref(), Some("intruder"));
    assert_eq!(server.client_trust(chain, &leaf), (false, None));
}

#[test]
fn quic_configurations_are_tls13_h3() {
    let ca = TestCa::new("Server CA");
    let server = server_for(&ca, &["api.example.com"]);
    let quic = server.quic_config().unwrap();
    assert_eq!(quic.alpn_protocols, vec![b"h3".to_vec()]);
    let tls12_only = ProtocolSettings {
        max_version: TlsVersion::V1_2,
        ..ProtocolSettings::default()
    };
    let server = ServerTls::new(
        vec![host(&ca, "api.example.com", true, ClientAuth::None)],
        &[],
        &tls12_only,
    )
    .unwrap();
    assert!(server.quic_config().is_err());
}
