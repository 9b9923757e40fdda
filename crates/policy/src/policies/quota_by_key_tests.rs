use std::time::Duration;

use http::{Method, StatusCode};

use super::parse_date_time;
use crate::policies::throttle::time_span;
use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header, request};
use crate::{Counters, ErrorKind, Flow, Pipeline, RequestState};

fn call(pipeline: &Pipeline, counters: &Counters, now: u64) -> (Flow, RequestState) {
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = pipeline.inbound(&facts(now), counters, &mut state);
    (flow, state)
}

#[test]
fn limits_calls_per_window() {
    let pipeline = compile_in(
        "inbound",
        r#"<quota-by-key calls="2" renewal-period="300" counter-key="k"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    assert_eq!(call(&pipeline, &counters, 1_000).0, Flow::Continue);
    let (flow, state) = call(&pipeline, &counters, 1_000);
    assert_eq!(flow, Flow::Continue);
    assert!(
        state.deferred.is_empty(),
        "no bandwidth limit, nothing to settle"
    );
    let failure = failed(call(&pipeline, &counters, 1_000).0);
    assert_eq!(failure.error.source, "quota");
    assert_eq!(failure.error.reason, "QuotaExceeded");
    assert_eq!(failure.response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        header(&failure.response.headers, "retry-after"),
        Some("200")
    );
    assert_eq!(
        failure.response.body,
        r#"{"statusCode":403,"message":"Out of call volume quota. Quota will be replenished in 00:03:20."}"#
    );
    assert_eq!(call(&pipeline, &counters, 1_200).0, Flow::Continue);
}

#[test]
fn charges_bandwidth_after_the_response() {
    let pipeline = compile_in(
        "inbound",
        r#"<quota-by-key bandwidth="1" renewal-period="300" counter-key="k"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let (flow, state) = call(&pipeline, &counters, 10);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(state.deferred.len(), 1);
    counters.settle(&state.deferred, 24, 1_000, Duration::from_secs(20));
    let failure = failed(call(&pipeline, &counters, 30).0);
    assert!(
        failure
            .error
            .message
            .starts_with("Out of bandwidth quota. Quota will be replenished in 00:04:30"),
        "{}",
        failure.error.message
    );
}

#[test]
fn windows_start_at_the_first_period_start() {
    let pipeline = compile_in(
        "inbound",
        r#"<quota-by-key calls="1" renewal-period="3600" counter-key="k" first-period-start="1970-01-01T00:10:00Z"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    assert_eq!(call(&pipeline, &counters, 700).0, Flow::Continue);
    let failure = failed(call(&pipeline, &counters, 700).0);
    assert_eq!(
        header(&failure.response.headers, "retry-after"),
        Some("3500")
    );
    assert_eq!(call(&pipeline, &counters, 4_200).0, Flow::Continue);
}

#[test]
fn lifetime_quota_says_so() {
    let pipeline = compile_in(
        "inbound",
        r#"<quota-by-key calls="1" renewal-period="0" counter-key="k"/>"#,
    )
    .unwrap();
    let counters = Counters::new();
    assert_eq!(call(&pipeline, &counters, 1).0, Flow::Continue);
    let failure = failed(call(&pipeline, &counters, 1_000_000).0);
    assert_eq!(failure.error.message, "Out of call volume quota.");
    assert!(!failure.response.headers.contains_key("retry-after"));
}

#[test]
fn formats_time_spans_like_dotnet() {
    assert_eq!(time_span(0), "00:00:00");
    assert_eq!(time_span(200), "00:03:20");
    assert_eq!(time_span(86_399), "23:59:59");
    assert_eq!(time_span(90_061), "1.01:01:01");
}

#[test]
fn parses_first_period_start() {
    assert_eq!(parse_date_time("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_date_time("2024-02-29T12:30:15Z"), Some(1_709_209_815));
    assert_eq!(parse_date_time("2024-02-29T12:30:15"), Some(1_709_209_815));
    assert_eq!(
        parse_date_time("0001-01-01T00:00:00Z"),
        Some(-62_135_596_800)
    );
    for bad in [
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-01-01",
        "2024-01-01T24:00:00Z",
        "24-01-01T00:00:00Z",
        "2024-01-01T00:00:00+01:00",
    ] {
        assert_eq!(parse_date_time(bad), None, "{bad}");
    }
}

#[test]
fn rejects_bad_quota_by_key() {
    check_errors(&[
        ErrorCase {
            name: "neither calls nor bandwidth",
            section: "inbound",
            body: r#"<quota-by-key renewal-period="300" counter-key="k"/>"#,
            at: "<quota-by-key",
            kind: ErrorKind::Missing,
            message: "at least one of `calls` and `bandwidth`",
        },
        ErrorCase {
            name: "short period",
            section: "inbound",
            body: r#"<quota-by-key calls="1" renewal-period="60" counter-key="k"/>"#,
            at: "renewal-period",
            kind: ErrorKind::InvalidValue,
            message: "at least 300 seconds",
        },
        ErrorCase {
            name: "bad start",
            section: "inbound",
            body: r#"<quota-by-key calls="1" renewal-period="300" counter-key="k" first-period-start="yesterday"/>"#,
            at: "first-period-start",
            kind: ErrorKind::InvalidValue,
            message: "`first-period-start` must be a UTC time",
        },
        ErrorCase {
            name: "increment above calls",
            section: "inbound",
            body: r#"<quota-by-key calls="1" renewal-period="300" counter-key="k" increment-count="2"/>"#,
            at: "increment-count",
            kind: ErrorKind::InvalidValue,
            message: "from 0 to 1",
        },
        ErrorCase {
            name: "missing counter-key",
            section: "inbound",
            body: r#"<quota-by-key calls="1" renewal-period="300"/>"#,
            at: "<quota-by-key",
            kind: ErrorKind::Missing,
            message: "`counter-key`",
        },
        ErrorCase {
            name: "zero bandwidth",
            section: "inbound",
            body: r#"<quota-by-key bandwidth="0" renewal-period="300" counter-key="k"/>"#,
            at: "bandwidth",
            kind: ErrorKind::InvalidValue,
            message: "`bandwidth` must be from 1",
        },
    ]);
}

#[test]
fn an_increment_condition_expression_charges_the_quota_after_the_response() {
    let pipeline = crate::test_util::compile_xml(
        r#"<policies><inbound><quota-by-key calls="1" renewal-period="3600" counter-key="k" increment-condition="@(context.Response.StatusCode == 200)"/></inbound><outbound /></policies>"#,
    )
    .unwrap();
    let counters = crate::Counters::new();
    let exchange = |status: u16| {
        let mut state = crate::test_util::request(http::Method::GET, "/", "", &[]);
        let flow = pipeline.inbound(&crate::test_util::facts(100), &counters, &mut state);
        if flow != crate::Flow::Continue {
            return flow;
        }
        let mut response = crate::ResponseState::new(
            http::StatusCode::from_u16(status).unwrap(),
            http::HeaderMap::new(),
        );
        pipeline.outbound(&crate::test_util::facts(100), &counters, &mut state, &mut response)
    };
    assert_eq!(exchange(404), crate::Flow::Continue);
    assert_eq!(exchange(404), crate::Flow::Continue);
    assert_eq!(exchange(200), crate::Flow::Continue);
    let exceeded = crate::test_util::failed(exchange(200));
    assert_eq!(exceeded.error.reason, "QuotaExceeded");
}
