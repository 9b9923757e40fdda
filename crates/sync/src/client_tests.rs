use super::*;

#[test]
fn statuses_are_classified_by_what_the_gateway_should_do() {
    let cases = [
        (401, SyncErrorReason::Status4xxAuth),
        (403, SyncErrorReason::Status4xxAuth),
        (404, SyncErrorReason::Status4xx),
        (410, SyncErrorReason::Gone),
        (429, SyncErrorReason::Status4xx),
        (500, SyncErrorReason::Status5xx),
        (503, SyncErrorReason::Status5xx),
        (302, SyncErrorReason::BadResponse),
    ];
    for (status, reason) in cases {
        let error = status_error(StatusCode::from_u16(status).unwrap(), "", "http://cp/x");
        assert_eq!(error.reason, reason, "status {status}");
    }
}

#[test]
fn the_control_planes_reason_is_quoted() {
    let body = r#"{"error":{"code":"Unauthorized","message":"the token of gateway `edge` expired at 2026-01-02T03:00Z"}}"#;
    let error = status_error(
        StatusCode::UNAUTHORIZED,
        body,
        "http://cp/v2/gateways/edge/changes?since=3&wait=30",
    );
    assert!(
        error.message.contains("expired at 2026-01-02T03:00Z"),
        "{error}"
    );
    assert!(!error.message.contains("since=3"), "{error}");
}

#[test]
fn a_non_json_error_body_is_quoted_and_cut() {
    assert_eq!(error_message(""), "no details");
    assert_eq!(error_message("  bad gateway\n"), "bad gateway");
    let long = "é".repeat(1000);
    let quoted = error_message(&long);
    assert!(quoted.len() <= MAX_QUOTED_BODY, "{}", quoted.len());
}
