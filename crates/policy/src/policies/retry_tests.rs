use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};

use super::RetrySchedule;
use crate::test_util::{
    ErrorCase, FakeServices, block_on, check_errors, compile_in, facts, header, request,
};
use crate::{Counters, ErrorKind, Flow, RequestFacts, ResponseState, RetryDecision};

fn with(services: &FakeServices) -> RequestFacts<'_> {
    RequestFacts {
        services: Some(services),
        ..facts(1)
    }
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn the_schedule_is_fixed_linear_or_exponential_as_apim_documents() {
    let fixed = RetrySchedule {
        interval: secs(2),
        max_interval: None,
        delta: None,
        first_fast_retry: false,
    };
    assert_eq!(
        (1..=3).map(|n| fixed.delay(n, 0.5)).collect::<Vec<_>>(),
        [secs(2); 3]
    );
    let linear = RetrySchedule {
        delta: Some(secs(3)),
        ..fixed
    };
    assert_eq!(
        (1..=3).map(|n| linear.delay(n, 0.5)).collect::<Vec<_>>(),
        [secs(2), secs(5), secs(8)]
    );
    let exponential = RetrySchedule {
        max_interval: Some(secs(20)),
        ..linear
    };
    // interval + (2^n - 1) × delta × (0.8 + 0.4 × jitter): jitter 0.5 → factor 1.
    assert_eq!(exponential.delay(1, 0.5), secs(5));
    assert_eq!(exponential.delay(2, 0.5), secs(11));
    assert_eq!(exponential.delay(3, 0.5), secs(20), "capped at max-interval");
    assert_eq!(exponential.delay(1, 0.0), Duration::from_millis(4400));
    assert_eq!(exponential.delay(1, 1.0), Duration::from_millis(5600));
    assert_eq!(exponential.delay(100, 1.0), secs(20), "no overflow");
    let fast = RetrySchedule {
        first_fast_retry: true,
        ..exponential
    };
    assert_eq!(fast.delay(1, 0.5), Duration::ZERO);
    assert_eq!(fast.delay(2, 0.5), secs(11));
}

#[test]
fn a_retry_runs_its_policies_again_while_the_condition_holds() {
    // Counts attempts in a variable; the condition stops at the third.
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="n" value="@(0)" />
           <retry condition="@((int)context.Variables["n"] < 3)" count="5" interval="1" delta="1">
             <set-variable name="n" value="@((int)context.Variables["n"] + 1)" />
           </retry>
           <set-header name="X-Attempts" exists-action="override"><value>@(context.Variables["n"].ToString())</value></set-header>"#,
    )
    .unwrap();
    assert!(pipeline.is_async());
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-attempts"), Some("3"));
    assert_eq!(*services.slept.lock().unwrap(), [secs(1), secs(2)]);
}

#[test]
fn a_retry_stops_after_count_retries() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="n" value="@(0)" />
           <retry condition="true" count="2" interval="0" first-fast-retry="true">
             <set-variable name="n" value="@((int)context.Variables["n"] + 1)" />
           </retry>
           <set-header name="X-Attempts" exists-action="override"><value>@(context.Variables["n"].ToString())</value></set-header>"#,
    )
    .unwrap();
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(header(&state.headers, "x-attempts"), Some("3"), "one run, two retries");
    assert!(services.slept.lock().unwrap().is_empty(), "no zero waits");
}

#[test]
fn a_condition_that_is_not_a_bool_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<retry condition="@("yes")" count="2" interval="0"><set-variable name="a" value="b" /></retry>"#,
    )
    .unwrap();
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = crate::test_util::failed(block_on(pipeline.inbound_async(
        &with(&services),
        &Counters::new(),
        &mut state,
    )));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(failure.error.message.contains("retry condition"), "{}", failure.error.message);
}

#[test]
fn around_forward_request_the_gateway_is_asked_after_each_answer() {
    let pipeline = compile_in(
        "backend",
        r#"<retry condition="@(context.Response.StatusCode >= 500)" count="2" interval="1">
             <set-header name="X-Try" exists-action="append"><value>again</value></set-header>
             <forward-request timeout="7" />
           </retry>"#,
    )
    .unwrap();
    assert!(!pipeline.is_async(), "the gateway waits, not the section");
    let services = FakeServices::answering(200, "{}");
    let facts = with(&services);
    let counters = Counters::new();
    let mut state = request(Method::POST, "/", "", &[]);
    assert_eq!(pipeline.backend(&facts, &counters, &mut state), Flow::Continue);
    assert!(state.retries_forward());
    assert_eq!(state.forward.timeout, Some(secs(7)));
    let answer = |status: StatusCode| ResponseState::new(status, HeaderMap::new());
    // 503: retried (after the wait, with the policies run again).
    let decision = block_on(pipeline.retry_forward(
        &facts,
        &counters,
        &mut state,
        Some(&mut answer(StatusCode::SERVICE_UNAVAILABLE)),
        0,
    ));
    assert_eq!(decision, RetryDecision::Again);
    assert_eq!(crate::test_util::headers_all(&state.headers, "x-try"), ["again", "again"]);
    // No answer at all (the backend could not be reached): retried too.
    let decision = block_on(pipeline.retry_forward(&facts, &counters, &mut state, None, 1));
    assert_eq!(decision, RetryDecision::Again);
    // Out of retries.
    let decision = block_on(pipeline.retry_forward(
        &facts,
        &counters,
        &mut state,
        Some(&mut answer(StatusCode::SERVICE_UNAVAILABLE)),
        2,
    ));
    assert_eq!(decision, RetryDecision::Done);
    // A 200 is kept.
    let decision = block_on(pipeline.retry_forward(
        &facts,
        &counters,
        &mut state,
        Some(&mut answer(StatusCode::OK)),
        0,
    ));
    assert_eq!(decision, RetryDecision::Done);
    assert_eq!(*services.slept.lock().unwrap(), [secs(1), secs(1)]);
}

#[test]
fn bad_retries_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no condition",
            section: "inbound",
            body: r#"<retry count="1" interval="1"><set-variable name="a" value="b" /></retry>"#,
            at: "<retry",
            kind: ErrorKind::Missing,
            message: "condition",
        },
        ErrorCase {
            name: "empty",
            section: "inbound",
            body: r#"<retry condition="true" count="1" interval="1" />"#,
            at: "<retry",
            kind: ErrorKind::Structure,
            message: "at least one policy",
        },
        ErrorCase {
            name: "count too large",
            section: "inbound",
            body: r#"<retry condition="true" count="1000" interval="1"><set-variable name="a" value="b" /></retry>"#,
            at: "count",
            kind: ErrorKind::InvalidValue,
            message: "count",
        },
        ErrorCase {
            name: "max-interval without delta",
            section: "inbound",
            body: r#"<retry condition="true" count="1" interval="1" max-interval="5"><set-variable name="a" value="b" /></retry>"#,
            at: "max-interval",
            kind: ErrorKind::InvalidValue,
            message: "needs `delta`",
        },
        ErrorCase {
            name: "bad condition",
            section: "inbound",
            body: r#"<retry condition="maybe" count="1" interval="1"><set-variable name="a" value="b" /></retry>"#,
            at: "condition",
            kind: ErrorKind::InvalidValue,
            message: "giving a bool",
        },
        ErrorCase {
            name: "forward-request not last",
            section: "backend",
            body: r#"<retry condition="true" count="1" interval="1"><choose><when condition="true"><forward-request /></when></choose></retry>"#,
            at: "<choose",
            kind: ErrorKind::Structure,
            message: "must be its last policy",
        },
        ErrorCase {
            name: "waiting before forward-request",
            section: "backend",
            body: r#"<retry condition="true" count="1" interval="1"><send-request response-variable-name="a"><set-url>http://127.0.0.1:9/</set-url></send-request><forward-request /></retry>"#,
            at: "<send-request",
            kind: ErrorKind::NotSupported,
            message: "cannot wait",
        },
    ]);
}
