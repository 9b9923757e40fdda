use gatehouse_test_support::pki::{TestCa, Validity};

use super::*;

#[test]
fn a_matching_current_pair_loads() {
    let ca = TestCa::new("Test CA");
    let leaf = ca.server(&["api.example.com"]);
    let key = certified_key(&leaf.cert_pem, &leaf.key_pem, SystemTime::now()).unwrap();
    assert_eq!(key.cert.len(), 1);
    let details = CertificateDetails::from_der(&key.cert[0]).unwrap();
    assert_eq!(details.common_name.as_deref(), Some("api.example.com"));
    assert_eq!(details.dns_names, ["api.example.com"]);
    assert!(
        details.subject.contains("CN=api.example.com"),
        "{}",
        details.subject
    );
    assert!(details.issuer.contains("CN=Test CA"), "{}", details.issuer);
    assert_eq!(details.thumbprint.len(), 40);
    assert!(!details.is_ca);
}

#[test]
fn a_key_of_another_certificate_is_a_mismatch() {
    let ca = TestCa::new("Test CA");
    let one = ca.server(&["one.example.com"]);
    let two = ca.server(&["two.example.com"]);
    let error = certified_key(&one.cert_pem, &two.key_pem, SystemTime::now()).unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
    assert!(error.to_string().contains("CN=one.example.com"), "{error}");
}

#[test]
fn validity_is_checked() {
    let ca = TestCa::new("Test CA");
    let expired = ca.server_with_validity(&["old.example.com"], Validity::Expired);
    let error = certified_key(&expired.cert_pem, &expired.key_pem, SystemTime::now()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the certificate (subject `CN=old.example.com, O=Gatehouse tests`) expired on 2001-01-01T00:00:00Z"
    );
    let future = ca.server_with_validity(&["new.example.com"], Validity::NotYetValid);
    let error = certified_key(&future.cert_pem, &future.key_pem, SystemTime::now()).unwrap_err();
    assert!(matches!(error, TlsError::NotYetValid { .. }), "{error}");
}

#[test]
fn bad_pem_is_named() {
    let error = parse_certificates("nothing here").unwrap_err();
    assert_eq!(
        error.to_string(),
        "certificate: no `-----BEGIN CERTIFICATE-----` block found"
    );
    let ca = TestCa::new("Test CA");
    let error = parse_private_key(&ca.cert_pem()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("private key: no `PRIVATE KEY`"),
        "{error}"
    );
}

#[test]
fn ca_bundles_make_root_stores() {
    let one = TestCa::new("One");
    let two = TestCa::new("Two");
    let bundle = format!("{}{}", one.cert_pem(), two.cert_pem());
    assert_eq!(root_store([bundle.as_str()]).unwrap().len(), 2);
    assert!(root_store(["junk"]).is_err());
}

#[test]
fn rfc3339_formats_unix_times() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(978_307_200), "2001-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_795_458_695), "2026-11-23T18:31:35Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}
