use std::time::SystemTime;

use gatehouse_model::Certificate;
use gatehouse_test_support::pki::{TestCa, Validity};

use super::*;

fn certificate(certificate_pem: &str, private_key_pem: Option<&str>) -> Certificate {
    Certificate {
        id: "site".to_owned(),
        certificate_pem: certificate_pem.to_owned(),
        private_key_pem: private_key_pem.map(ToOwned::to_owned),
        client_ca: false,
    }
}

fn message(result: Result<(), ApiError>) -> String {
    let error = result.expect_err("the certificate should be refused");
    assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error}");
    error.to_string()
}

#[test]
fn a_valid_certificate_with_its_key_passes() {
    let ca = TestCa::new("Write-time CA");
    let site = ca.server(&["api.example.com"]);
    validate_certificate(
        &certificate(&site.cert_pem, Some(&site.key_pem)),
        SystemTime::now(),
    )
    .unwrap();
    // A CA certificate without a key (to verify peers) passes too.
    validate_certificate(&certificate(&ca.cert_pem(), None), SystemTime::now()).unwrap();
}

#[test]
fn a_pem_that_does_not_parse_names_certificate_pem() {
    let text = message(validate_certificate(
        &certificate("not a certificate", None),
        SystemTime::now(),
    ));
    assert!(text.contains("`certificatePem`"), "{text}");
    assert!(text.contains("BEGIN CERTIFICATE"), "{text}");

    let garbled = "-----BEGIN CERTIFICATE-----\nZ2F0ZWhvdXNl\n-----END CERTIFICATE-----\n";
    let text = message(validate_certificate(
        &certificate(garbled, None),
        SystemTime::now(),
    ));
    assert!(text.contains("`certificatePem`"), "{text}");
}

#[test]
fn a_key_of_another_certificate_names_private_key_pem_without_quoting_it() {
    let ca = TestCa::new("Write-time CA");
    let site = ca.server(&["api.example.com"]);
    let other = ca.server(&["other.example.com"]);
    let text = message(validate_certificate(
        &certificate(&site.cert_pem, Some(&other.key_pem)),
        SystemTime::now(),
    ));
    assert!(text.contains("`privateKeyPem`"), "{text}");
    assert!(text.contains("does not match"), "{text}");
    assert!(
        text.contains("api.example.com"),
        "names the subject: {text}"
    );
    let key_body: String = other
        .key_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(!text.contains(&key_body[..20]), "{text}");
}

#[test]
fn a_key_that_does_not_parse_names_private_key_pem() {
    let ca = TestCa::new("Write-time CA");
    let site = ca.server(&["api.example.com"]);
    let secret =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n";
    let text = message(validate_certificate(
        &certificate(&site.cert_pem, Some(secret)),
        SystemTime::now(),
    ));
    assert!(text.contains("`privateKeyPem`"), "{text}");
    assert!(
        !text.contains("c2VjcmV0"),
        "the key is never quoted: {text}"
    );
    let text = message(validate_certificate(
        &certificate(&site.cert_pem, Some("no key here")),
        SystemTime::now(),
    ));
    assert!(text.contains("`privateKeyPem`"), "{text}");
}

#[test]
fn an_expired_leaf_is_refused_with_its_end_date() {
    let ca = TestCa::new("Write-time CA");
    let old = ca.server_with_validity(&["api.example.com"], Validity::Expired);
    for key in [Some(old.key_pem.as_str()), None] {
        let text = message(validate_certificate(
            &certificate(&old.cert_pem, key),
            SystemTime::now(),
        ));
        assert!(text.contains("`certificatePem`"), "{text}");
        assert!(text.contains("expired on 2001-01-01"), "{text}");
    }
}

#[test]
fn token_expiry_takes_z_offsets_and_no_offset() {
    // 2026-12-24T00:00:00Z
    let utc = 1_798_070_400;
    for text in [
        "2026-12-24T00:00:00Z",
        "2026-12-24T00:00Z",
        "2026-12-24T00:00:00",
        "2026-12-24T02:00:00+02:00",
        "2026-12-24T02:00+02:00",
        "2026-12-23T19:30:00-04:30",
        " 2026-12-24T00:00:00.000Z ",
    ] {
        assert_eq!(parse_expiry(text).unwrap(), utc, "{text}");
    }
    for text in [
        "tomorrow",
        "2026-12-24T25:00:00Z",
        "2026-12-24T00:00:00+25:00",
        "",
    ] {
        let error = parse_expiry(text).unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{text}");
        assert!(error.to_string().contains("ISO 8601"), "{error}");
    }
}
