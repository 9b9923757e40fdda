use http::{Method, StatusCode};

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header, request};
use crate::{Counters, ErrorKind, Flow, Pipeline, RequestState};

fn call(
    pipeline: &Pipeline,
    counters: &Counters,
    headers: &[(&str, &str)],
) -> (Flow, RequestState) {
    let mut state = request(Method::GET, "/", "", headers);
    let flow = pipeline.inbound(&facts(0), counters, &mut state);
    (flow, state)
}

#[test]
fn limits_requests_in_flight() {
    let pipeline = compile_in(
        "inbound",
        r#"<limit-concurrency key="backend" max-count="1"><set-header name="x-inside"><value>1</value></set-header></limit-concurrency>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let (flow, first) = call(&pipeline, &counters, &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(
        header(&first.headers, "x-inside"),
        Some("1"),
        "nested policies run"
    );
    assert_eq!(first.held.len(), 1);

    let failure = failed(call(&pipeline, &counters, &[]).0);
    assert_eq!(failure.error.reason, "ConcurrencyLimitExceeded");
    assert_eq!(failure.response.status, StatusCode::TOO_MANY_REQUESTS);

    drop(first);
    assert_eq!(call(&pipeline, &counters, &[]).0, Flow::Continue);
}

#[test]
fn policies_with_the_same_key_share_a_gauge() {
    let pipeline = compile_in(
        "inbound",
        r#"<limit-concurrency key="shared" max-count="5"/><limit-concurrency key="shared" max-count="2"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let (flow, first) = call(&pipeline, &counters, &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(first.held.len(), 2);
    assert!(
        matches!(call(&pipeline, &counters, &[]).0, Flow::Fail(_)),
        "second policy sees 2 in flight"
    );
}

#[test]
fn keys_by_header() {
    let pipeline = compile_in(
        "inbound",
        r#"<limit-concurrency key="@(context.Request.Headers.GetValueOrDefault(&quot;x-tenant&quot;))" max-count="1"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let (_, a) = call(&pipeline, &counters, &[("x-tenant", "a")]);
    let (flow, _b) = call(&pipeline, &counters, &[("x-tenant", "b")]);
    assert_eq!(flow, Flow::Continue);
    assert!(matches!(
        call(&pipeline, &counters, &[("x-tenant", "a")]).0,
        Flow::Fail(_)
    ));
    drop(a);
}

#[test]
fn nested_responses_and_failures_end_the_section() {
    let pipeline = compile_in(
        "inbound",
        r#"<limit-concurrency key="k" max-count="3"><return-response><set-status code="202" reason="Accepted"/></return-response></limit-concurrency><set-header name="never"><value>1</value></set-header>"#,
    )
    .unwrap();
    let (flow, state) = call(&pipeline, &Counters::new(), &[]);
    assert!(matches!(flow, Flow::Respond(response) if response.status == StatusCode::ACCEPTED));
    assert_eq!(
        state.held.len(),
        1,
        "the permit is held until the response is sent"
    );
}

#[test]
fn rejects_bad_limit_concurrency() {
    check_errors(&[
        ErrorCase {
            name: "missing key",
            section: "inbound",
            body: r#"<limit-concurrency max-count="1"/>"#,
            at: "<limit-concurrency",
            kind: ErrorKind::Missing,
            message: "`key`",
        },
        ErrorCase {
            name: "zero",
            section: "backend",
            body: r#"<limit-concurrency key="k" max-count="0"/>"#,
            at: "max-count",
            kind: ErrorKind::InvalidValue,
            message: "from 1 to",
        },
        ErrorCase {
            name: "nested unknown policy",
            section: "inbound",
            body: r#"<limit-concurrency key="k" max-count="1"><set-headr/></limit-concurrency>"#,
            at: "<set-headr",
            kind: ErrorKind::UnknownElement,
            message: "did you mean <set-header>?",
        },
        ErrorCase {
            name: "text",
            section: "inbound",
            body: r#"<limit-concurrency key="k" max-count="1">x</limit-concurrency>"#,
            at: "x<",
            kind: ErrorKind::Structure,
            message: "unexpected text",
        },
        ErrorCase {
            name: "unsupported key expression",
            section: "inbound",
            body: r#"<limit-concurrency key="@(context.Deployment.ServiceName)" max-count="1"/>"#,
            at: "ServiceName",
            kind: ErrorKind::NotSupported,
            message: "`context.Deployment.ServiceName` is not available in Gatehouse yet",
        },
    ]);
}
