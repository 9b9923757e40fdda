use http::Method;

use crate::pipeline::SubscriptionFacts;
use crate::test_util::{
    ErrorCase, call_as as call, check_errors, compile_for_operation as compile, facts, failed,
    header, request,
};
use crate::{Counters, ErrorKind, Flow};

#[test]
fn limits_per_subscription() {
    let pipeline = compile(r#"<rate-limit calls="2" renewal-period="60"/>"#, "list");
    let counters = Counters::new();
    for _ in 0..5 {
        assert_eq!(
            call(&pipeline, &counters, None),
            Flow::Continue,
            "no subscription, no limit"
        );
    }
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&pipeline, &counters, Some("s2")), Flow::Continue);
    let failure = failed(call(&pipeline, &counters, Some("s1")));
    assert_eq!(failure.error.source, "rate-limit");
    assert_eq!(failure.response.status, http::StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&failure.response.headers, "retry-after").is_some());
}

#[test]
fn nested_api_and_operation_limits_apply_to_their_target() {
    let body = r#"<rate-limit calls="10" renewal-period="60" remaining-calls-header-name="x-remaining">
        <api name="Orders API" calls="3" renewal-period="60">
            <operation id="create" calls="1" renewal-period="60"/>
        </api>
        <api id="other" calls="1" renewal-period="60"/>
    </rate-limit>"#;
    let counters = Counters::new();
    let create = compile(body, "create");
    let list = compile(body, "list");
    let mut state = request(Method::GET, "/", "", &[]);
    let mut with_subscription = facts(500);
    with_subscription.subscription = Some(SubscriptionFacts {
        id: "s1",
        key: "key",
        product_id: None,
        product_name: None,
        name: "subscription",
    });
    assert_eq!(
        create.inbound(&with_subscription, &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(
        header(&state.response_headers, "x-remaining"),
        Some("0"),
        "the tightest limit"
    );
    assert!(
        matches!(call(&create, &counters, Some("s1")), Flow::Fail(_)),
        "operation limit"
    );
    assert_eq!(call(&list, &counters, Some("s1")), Flow::Continue);
    assert_eq!(call(&list, &counters, Some("s1")), Flow::Continue);
    assert!(
        matches!(call(&list, &counters, Some("s1")), Flow::Fail(_)),
        "API limit: 3 calls to the API"
    );
}

#[test]
fn rejects_bad_rate_limit() {
    check_errors(&[
        ErrorCase {
            name: "api without name",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api calls="1" renewal-period="1"/></rate-limit>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api> needs a `name` or an `id`",
        },
        ErrorCase {
            name: "operation at the top",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><operation name="x" calls="1" renewal-period="1"/></rate-limit>"#,
            at: "<operation",
            kind: ErrorKind::Structure,
            message: "expected <api>",
        },
        ErrorCase {
            name: "nested missing calls",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" renewal-period="1"/></rate-limit>"#,
            at: "<api",
            kind: ErrorKind::Missing,
            message: "<api>: missing required attribute `calls`",
        },
        ErrorCase {
            name: "nested bad period (even when not applicable)",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" calls="1" renewal-period="900"/></rate-limit>"#,
            at: r#"renewal-period="900""#,
            kind: ErrorKind::InvalidValue,
            message: "from 1 to 300",
        },
        ErrorCase {
            name: "variable",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1" remaining-calls-variable-name="v"/>"#,
            at: "remaining-calls-variable-name",
            kind: ErrorKind::NotSupported,
            message: "policy variables",
        },
        ErrorCase {
            name: "nested unknown attribute",
            section: "inbound",
            body: r#"<rate-limit calls="1" renewal-period="1"><api name="a" calls="1" renewal-period="1" key="x"/></rate-limit>"#,
            at: "key=",
            kind: ErrorKind::UnknownAttribute,
            message: "<api>: unknown attribute `key`",
        },
    ]);
}
