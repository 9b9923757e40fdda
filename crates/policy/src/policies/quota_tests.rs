use crate::test_util::{
    ErrorCase, call_as as call, check_errors, compile_for_operation as compile, failed, header,
};
use crate::{Counters, ErrorKind, Flow};

#[test]
fn calls_are_counted_per_subscription_in_fixed_windows() {
    let pipeline = compile(r#"<quota calls="2" renewal-period="3600" />"#, "list");
    let counters = Counters::new();
    for _ in 0..4 {
        assert_eq!(
            call(&pipeline, &counters, None),
            Flow::Continue,
            "without a subscription, nothing is counted"
        );
    }
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s2")), Flow::Continue);
    let failure = failed(call(&pipeline, &counters, Some("s1")));
    assert_eq!(failure.error.source, "quota");
    assert_eq!(failure.error.reason, "QuotaExceeded");
    assert_eq!(failure.response.status, http::StatusCode::FORBIDDEN);
    assert!(failure.error.message.starts_with("Out of call volume quota."));
    assert!(header(&failure.response.headers, "retry-after").is_some());
}

#[test]
fn nested_api_and_operation_quotas_apply_to_their_target_and_a_refusal_uses_none_up() {
    let body = r#"<quota calls="3" renewal-period="3600">
        <api name="Orders API" calls="100" renewal-period="3600">
            <operation id="create" calls="1" renewal-period="3600" />
        </api>
        <api id="other" calls="1" renewal-period="3600" />
    </quota>"#;
    let counters = Counters::new();
    let create = compile(body, "create");
    let list = compile(body, "list");
    assert_eq!(call(&create, &counters, Some("s")), Flow::Continue);
    // The operation's quota is used up: refused, and the policy's own is not charged.
    assert_eq!(
        failed(call(&create, &counters, Some("s"))).error.reason,
        "QuotaExceeded"
    );
    // Another operation of the API still has the policy's remaining 2 calls.
    assert_eq!(call(&list, &counters, Some("s")), Flow::Continue);
    assert_eq!(call(&list, &counters, Some("s")), Flow::Continue);
    assert_eq!(
        failed(call(&list, &counters, Some("s"))).error.reason,
        "QuotaExceeded"
    );
}

#[test]
fn a_lifetime_bandwidth_quota_is_accepted_and_counts_no_calls() {
    let pipeline = compile(r#"<quota bandwidth="10" renewal-period="0" />"#, "list");
    let counters = Counters::new();
    for _ in 0..20 {
        assert_eq!(call(&pipeline, &counters, Some("s")), Flow::Continue);
    }
}

#[test]
fn bad_quotas_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "neither calls nor bandwidth",
            section: "inbound",
            body: r#"<quota renewal-period="3600" />"#,
            at: "<quota",
            kind: ErrorKind::Missing,
            message: "at least one of `calls` and `bandwidth`",
        },
        ErrorCase {
            name: "short window",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="60" />"#,
            at: "renewal-period",
            kind: ErrorKind::InvalidValue,
            message: "at least 300 seconds",
        },
        ErrorCase {
            name: "nested without a name",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><api calls="1" renewal-period="3600" /></quota>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "needs a `name` or an `id`",
        },
        ErrorCase {
            name: "nested without an amount",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><api id="a" renewal-period="3600" /></quota>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api>: at least one of",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: r#"<quota calls="5" renewal-period="3600" />"#,
            at: "<quota",
            kind: ErrorKind::WrongSection,
            message: "inbound",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<quota calls="5" renewal-period="3600"><product id="p" /></quota>"#,
            at: "<product",
            kind: ErrorKind::Structure,
            message: "<api>",
        },
    ]);
}
