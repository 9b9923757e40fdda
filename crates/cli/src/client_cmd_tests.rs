use std::time::{Duration, SystemTime};

use serde_json::json;

use super::*;

#[test]
fn gateway_status_shows_ages_not_timestamps() {
    // Issue 11, item 4.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let status = json!({
        "gatewayId": "edge",
        "nodes": 2,
        "currentRevision": 42,
        "instances": [
            {"instanceId": "edge-a", "hostname": "pod-a", "version": "0.1.0",
             "appliedRevision": 42, "revisionLag": 0, "lastError": null,
             "tokenExpiry": "2027-02-13T00:00:00Z", "lastSeen": "2027-01-15T08:00:00Z",
             "lastSeenSecondsAgo": 12},
            {"instanceId": "edge-b", "hostname": "pod-b", "version": "0.1.0",
             "appliedRevision": 40, "revisionLag": 2, "lastError": "policy x failed",
             "tokenExpiry": null, "lastSeen": "2027-01-15T07:57:00Z",
             "lastSeenSecondsAgo": 180}
        ],
        "certificateWarnings": [
            {"certificateId": "site", "hostnames": ["api.example.com"],
             "notAfter": "2027-01-01T00:00:00Z", "expired": true}
        ]
    });
    let table = status_table(&status, now);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "gateway `edge`: 2 instances connected, control plane at revision 42"
    );
    assert!(
        lines[1].starts_with("INSTANCE  HOSTNAME  VERSION  REVISION"),
        "{table}"
    );
    assert!(
        lines[2].contains("12 s ago") && lines[2].contains("in 28 d"),
        "{table}"
    );
    assert!(
        lines[3].contains("40 (2 behind)") && lines[3].contains("3 min ago"),
        "{table}"
    );
    assert!(lines[3].ends_with("policy x failed"), "{table}");
    assert_eq!(
        lines[4],
        "certificate `site` expired on 2027-01-01T00:00:00Z: replace it"
    );
    assert!(!table.contains("1800000000"), "no raw Unix time: {table}");
}

#[test]
fn ages_read_in_the_unit_that_fits() {
    assert_eq!(age(5), "5 s");
    assert_eq!(age(600), "10 min");
    assert_eq!(age(3 * 3600), "3 h");
    assert_eq!(age(5 * 86_400), "5 d");
}
