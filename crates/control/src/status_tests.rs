use std::time::Duration;

use gatehouse_model::{Certificate, Configuration, Hostname};
use gatehouse_test_support::pki::{TestCa, Validity};

use super::*;

fn certificate(id: &str, pem: &str) -> Certificate {
    Certificate {
        id: id.to_owned(),
        certificate_pem: pem.to_owned(),
        private_key_pem: None,
        client_ca: false,
    }
}

#[test]
fn expired_and_expiring_certificates_are_listed_soonest_first() {
    let ca = TestCa::new("Status CA");
    let now = unix_now();
    let in_days = |days: u64| std::time::SystemTime::now() + Duration::from_secs(days * 86_400);
    let config = Configuration {
        certificates: vec![
            certificate("fine", &ca.server(&["a.example"]).cert_pem),
            certificate(
                "soon",
                &ca.server_with_validity(&["b.example"], Validity::Until(in_days(3)))
                    .cert_pem,
            ),
            certificate(
                "gone",
                &ca.server_with_validity(&["c.example"], Validity::Expired)
                    .cert_pem,
            ),
            certificate("garbage", "not a certificate"),
        ],
        hostnames: serde_json::from_value::<Vec<Hostname>>(serde_json::json!([
            {"hostname": "c.example", "certificateId": "gone"},
            {"hostname": "c2.example", "certificateId": "gone"}
        ]))
        .unwrap(),
        ..Configuration::default()
    };
    let warnings = certificate_warnings(&config, now, Duration::from_secs(14 * 86_400));
    let ids: Vec<(&str, bool)> = warnings
        .iter()
        .map(|w| (w.certificate_id.as_str(), w.expired))
        .collect();
    assert_eq!(ids, [("gone", true), ("soon", false)]);
    assert_eq!(warnings[0].hostnames, ["c.example", "c2.example"]);
    assert_eq!(warnings[0].not_after, "2001-01-01T00:00:00Z");
    assert!(
        certificate_warnings(&config, now, Duration::from_secs(86_400))
            .iter()
            .all(|w| w.certificate_id == "gone"),
        "a narrower window leaves out the one expiring in 3 days"
    );
}

#[test]
fn instance_timeouts_follow_the_reported_interval_unless_configured() {
    assert_eq!(timeout_seconds(None, None), 180);
    assert_eq!(timeout_seconds(None, Some(5)), 15);
    assert_eq!(timeout_seconds(Some(Duration::from_secs(30)), Some(5)), 30);
    assert_eq!(timeout_seconds(None, Some(u64::MAX)), i64::MAX);
}
