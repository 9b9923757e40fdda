use std::net::IpAddr;

use http::{Method, StatusCode};

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header, request};
use crate::{Counters, ErrorKind, Flow, Pipeline, RequestState};

fn call(
    pipeline: &Pipeline,
    counters: &Counters,
    now: u64,
    ip: &str,
    headers: &[(&str, &str)],
) -> (Flow, RequestState) {
    let mut facts = facts(now);
    facts.client_ip = ip.parse::<IpAddr>().unwrap();
    let mut state = request(Method::GET, "/", "", headers);
    let flow = pipeline.inbound(&facts, counters, &mut state);
    (flow, state)
}

#[test]
fn limits_per_key_with_apim_responses() {
    let pipeline = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="2" renewal-period="60" counter-key="@(context.Request.IpAddress)"
            remaining-calls-header-name="x-remaining" total-calls-header-name="x-total"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let (flow, state) = call(&pipeline, &counters, 1_000, "10.0.0.1", &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.response_headers, "x-remaining"), Some("1"));
    assert_eq!(header(&state.response_headers, "x-total"), Some("2"));
    assert_eq!(
        call(&pipeline, &counters, 1_000, "10.0.0.1", &[]).0,
        Flow::Continue
    );
    assert_eq!(
        call(&pipeline, &counters, 1_000, "10.0.0.2", &[]).0,
        Flow::Continue,
        "another client"
    );

    let failure = failed(call(&pipeline, &counters, 1_000, "10.0.0.1", &[]).0);
    assert_eq!(failure.error.source, "rate-limit");
    assert_eq!(failure.error.reason, "RateLimitExceeded");
    let response = &failure.response;
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = header(&response.headers, "retry-after")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&seconds));
    assert_eq!(
        response.body,
        format!(
            r#"{{"statusCode":429,"message":"Rate limit is exceeded. Try again in {seconds} seconds."}}"#
        )
    );
    assert_eq!(
        header(&response.headers, "x-remaining"),
        Some("0"),
        "counters are reported on the 429 too"
    );
    assert_eq!(
        call(&pipeline, &counters, 1_000 + seconds, "10.0.0.1", &[]).0,
        Flow::Continue
    );
}

#[test]
fn counts_as_configured() {
    let counters = Counters::new();
    let not_counted = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="1" renewal-period="10" counter-key="k" increment-condition="false"/>"#,
    )
    .unwrap();
    for _ in 0..3 {
        assert_eq!(
            call(&not_counted, &counters, 0, "10.0.0.1", &[]).0,
            Flow::Continue
        );
    }
    let by_two = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="3" renewal-period="10" counter-key="k" increment-count="2" retry-after-header-name="x-retry"/>"#,
    )
    .unwrap();
    assert_eq!(
        call(&by_two, &counters, 0, "10.0.0.1", &[]).0,
        Flow::Continue
    );
    let failure = failed(call(&by_two, &counters, 0, "10.0.0.1", &[]).0);
    assert!(failure.response.headers.contains_key("x-retry"));
    assert!(!failure.response.headers.contains_key("retry-after"));
}

#[test]
fn keys_by_header_and_subscription() {
    let counters = Counters::new();
    let by_header = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="1" renewal-period="10" counter-key="@(context.Request.Headers.GetValueOrDefault("X-Client",""))"/>"#,
    )
    .unwrap();
    assert_eq!(
        call(&by_header, &counters, 0, "10.0.0.1", &[("x-client", "a")]).0,
        Flow::Continue
    );
    assert_eq!(
        call(&by_header, &counters, 0, "10.0.0.2", &[("x-client", "b")]).0,
        Flow::Continue
    );
    assert!(matches!(
        call(&by_header, &counters, 0, "10.0.0.3", &[("x-client", "a")]).0,
        Flow::Fail(_)
    ));

    let by_subscription = compile_in(
        "inbound",
        r#"<rate-limit-by-key calls="1" renewal-period="10" counter-key="@(context.Subscription.Id)"/>"#,
    )
    .unwrap();
    let failure = failed(call(&by_subscription, &counters, 0, "10.0.0.1", &[]).0);
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(failure.response.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn counters_survive_recompiling_the_same_document() {
    let counters = Counters::new();
    let body = r#"<rate-limit-by-key calls="1" renewal-period="10" counter-key="k"/>"#;
    let first = compile_in("inbound", body).unwrap();
    assert_eq!(
        call(&first, &counters, 0, "10.0.0.1", &[]).0,
        Flow::Continue
    );
    let reloaded = compile_in("inbound", body).unwrap();
    assert!(matches!(
        call(&reloaded, &counters, 0, "10.0.0.1", &[]).0,
        Flow::Fail(_)
    ));
}

#[test]
fn rejects_bad_rate_limit_by_key() {
    check_errors(&[
        ErrorCase {
            name: "missing calls",
            section: "inbound",
            body: r#"<rate-limit-by-key renewal-period="1" counter-key="k"/>"#,
            at: "<rate-limit-by-key",
            kind: ErrorKind::Missing,
            message: "missing required attribute `calls`",
        },
        ErrorCase {
            name: "missing counter-key",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1"/>"#,
            at: "<rate-limit-by-key",
            kind: ErrorKind::Missing,
            message: "`counter-key`",
        },
        ErrorCase {
            name: "period too long",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="1" renewal-period="301" counter-key="k"/>"#,
            at: "renewal-period",
            kind: ErrorKind::InvalidValue,
            message: "from 1 to 300",
        },
        ErrorCase {
            name: "zero calls",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="0" renewal-period="1" counter-key="k"/>"#,
            at: "calls",
            kind: ErrorKind::InvalidValue,
            message: "from 1 to 16777215",
        },
        ErrorCase {
            name: "too many calls",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="16777216" renewal-period="1" counter-key="k"/>"#,
            at: "calls",
            kind: ErrorKind::InvalidValue,
            message: "from 1 to 16777215",
        },
        ErrorCase {
            name: "increment above calls",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="2" renewal-period="1" counter-key="k" increment-count="3"/>"#,
            at: "increment-count",
            kind: ErrorKind::InvalidValue,
            message: "from 0 to 2",
        },
        ErrorCase {
            name: "increment condition mixing text and an expression",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="2" renewal-period="1" counter-key="k" increment-condition="x @(true)"/>"#,
            at: "@(",
            kind: ErrorKind::NotSupported,
            message: "does not evaluate policy expressions in this value",
        },
        ErrorCase {
            name: "variable",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="2" renewal-period="1" counter-key="k" retry-after-variable-name="v"/>"#,
            at: "retry-after-variable-name",
            kind: ErrorKind::NotSupported,
            message: "policy variables",
        },
        ErrorCase {
            name: "bad header name",
            section: "inbound",
            body: r#"<rate-limit-by-key calls="2" renewal-period="1" counter-key="k" remaining-calls-header-name="a b"/>"#,
            at: "remaining-calls-header-name",
            kind: ErrorKind::InvalidValue,
            message: "`remaining-calls-header-name` must be an HTTP header name",
        },
    ]);
}

#[test]
fn an_increment_condition_expression_counts_once_the_response_is_known() {
    let pipeline = crate::test_util::compile_xml(
        r#"<policies><inbound><rate-limit-by-key calls="2" renewal-period="60" counter-key="k" increment-condition="@(context.Response.StatusCode &lt; 400)"/></inbound><outbound /></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let exchange = |status: u16| {
        let (flow, mut state) = call(&pipeline, &counters, 100, "192.0.2.1", &[]);
        if flow != Flow::Continue {
            return flow;
        }
        let mut response =
            crate::ResponseState::new(StatusCode::from_u16(status).unwrap(), http::HeaderMap::new());
        pipeline.outbound(&facts(100), &counters, &mut state, &mut response)
    };
    // Failed responses are not counted: any number go through.
    for _ in 0..5 {
        assert_eq!(exchange(500), Flow::Continue);
    }
    // Two successes use the limit up.
    assert_eq!(exchange(200), Flow::Continue);
    assert_eq!(exchange(201), Flow::Continue);
    let limited = failed(exchange(200));
    assert_eq!(limited.error.reason, "RateLimitExceeded");
}

#[test]
fn a_failing_increment_condition_counts_nothing_and_leaves_a_trace() {
    let pipeline = crate::test_util::compile_xml(
        r#"<policies><inbound><rate-limit-by-key calls="1" renewal-period="60" counter-key="k" increment-condition="@(context.Response.Headers[&quot;X-Missing&quot;][0] == &quot;a&quot;)"/></inbound><outbound /></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    for _ in 0..3 {
        let (flow, mut state) = call(&pipeline, &counters, 100, "192.0.2.1", &[]);
        assert_eq!(flow, Flow::Continue, "never counted, never limited");
        let mut response = crate::ResponseState::new(StatusCode::OK, http::HeaderMap::new());
        pipeline.outbound(&facts(100), &counters, &mut state, &mut response);
        assert_eq!(state.traces.len(), 1);
        assert!(
            state.traces[0].message.contains("increment-condition failed"),
            "{}",
            state.traces[0].message
        );
    }
}
