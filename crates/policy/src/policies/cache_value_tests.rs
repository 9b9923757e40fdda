//! `cache-store-value`, `cache-lookup-value` and `cache-remove-value` together.

use http::Method;

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header, request};
use crate::{Counters, ErrorKind, Flow};

/// Runs `inbound` at `now` seconds over a request with `headers`, sharing `counters`
/// (the cache lives there); returns the headers the policies left.
fn run(
    counters: &Counters,
    now: u64,
    inbound: &str,
    headers: &[(&str, &str)],
) -> (Flow, http::HeaderMap) {
    let pipeline = compile_in("inbound", inbound).unwrap();
    let mut state = request(Method::GET, "/", "", headers);
    let flow = pipeline.inbound(&facts(now), counters, &mut state);
    (flow, state.headers)
}

const STORE: &str = r#"<cache-store-value key="@("token-" + context.Request.Headers.GetValueOrDefault("X-Client", ""))" value="@(context.Request.Headers.GetValueOrDefault("X-Token", ""))" duration="60" caching-type="internal" />"#;

const LOOKUP: &str = r#"<cache-lookup-value key="@("token-" + context.Request.Headers.GetValueOrDefault("X-Client", ""))" variable-name="token" />
<set-header name="X-Found" exists-action="override"><value>@(context.Variables.ContainsKey("token") ? (string)context.Variables["token"] : "miss")</value></set-header>"#;

#[test]
fn a_stored_value_is_found_by_later_requests_until_it_expires_or_is_removed() {
    let counters = Counters::new();
    let (_, headers) = run(&counters, 1_000, LOOKUP, &[("x-client", "a")]);
    assert_eq!(header(&headers, "x-found"), Some("miss"), "nothing stored yet");
    run(&counters, 1_000, STORE, &[("x-client", "a"), ("x-token", "t-a")]);
    let (_, headers) = run(&counters, 1_059, LOOKUP, &[("x-client", "a")]);
    assert_eq!(header(&headers, "x-found"), Some("t-a"));
    let (_, headers) = run(&counters, 1_059, LOOKUP, &[("x-client", "b")]);
    assert_eq!(header(&headers, "x-found"), Some("miss"), "another key");
    let (_, headers) = run(&counters, 1_060, LOOKUP, &[("x-client", "a")]);
    assert_eq!(header(&headers, "x-found"), Some("miss"), "expired after 60 s");

    run(&counters, 2_000, STORE, &[("x-client", "a"), ("x-token", "t-2")]);
    run(
        &counters,
        2_001,
        r#"<cache-remove-value key="@("token-" + "a")" caching-type="prefer-external" />"#,
        &[],
    );
    let (_, headers) = run(&counters, 2_002, LOOKUP, &[("x-client", "a")]);
    assert_eq!(header(&headers, "x-found"), Some("miss"), "removed");
}

#[test]
fn a_miss_gives_the_default_value_and_values_keep_their_type() {
    let counters = Counters::new();
    run(
        &counters,
        10,
        r#"<cache-store-value key="n" value="@(41 + 1)" duration="@(30)" />"#,
        &[],
    );
    let (_, headers) = run(
        &counters,
        11,
        r#"<cache-lookup-value key="n" variable-name="n" />
           <cache-lookup-value key="missing" variable-name="m" default-value="@(7)" />
           <set-header name="X-Sum" exists-action="override"><value>@(((int)context.Variables["n"] + (int)context.Variables["m"]).ToString())</value></set-header>"#,
        &[],
    );
    assert_eq!(header(&headers, "x-sum"), Some("49"));
}

#[test]
fn values_of_the_context_model_and_bad_durations_fail_the_request() {
    let counters = Counters::new();
    let (flow, _) = run(
        &counters,
        1,
        r#"<cache-store-value key="r" value="@(context.Request)" duration="60" />"#,
        &[],
    );
    assert!(failed(flow).error.message.contains("cannot be cached"));
    let (flow, _) = run(
        &counters,
        1,
        r#"<cache-store-value key="r" value="x" duration="@(-1)" />"#,
        &[],
    );
    assert!(failed(flow).error.message.contains("`duration`"));
}

#[test]
fn bad_cache_policies_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "external cache",
            section: "inbound",
            body: r#"<cache-lookup-value key="k" variable-name="v" caching-type="external" />"#,
            at: "caching-type",
            kind: ErrorKind::NotSupported,
            message: "no external cache",
        },
        ErrorCase {
            name: "unknown caching type",
            section: "outbound",
            body: r#"<cache-store-value key="k" value="v" duration="1" caching-type="disk" />"#,
            at: "caching-type",
            kind: ErrorKind::InvalidValue,
            message: "prefer-external",
        },
        ErrorCase {
            name: "no duration",
            section: "inbound",
            body: r#"<cache-store-value key="k" value="v" />"#,
            at: "<cache-store-value",
            kind: ErrorKind::Missing,
            message: "duration",
        },
        ErrorCase {
            name: "duration not a number",
            section: "inbound",
            body: r#"<cache-store-value key="k" value="v" duration="soon" />"#,
            at: "duration",
            kind: ErrorKind::InvalidValue,
            message: "duration",
        },
        ErrorCase {
            name: "empty variable name",
            section: "inbound",
            body: r#"<cache-lookup-value key="k" variable-name=" " />"#,
            at: "variable-name",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
        ErrorCase {
            name: "no key",
            section: "inbound",
            body: r#"<cache-remove-value />"#,
            at: "<cache-remove-value",
            kind: ErrorKind::Missing,
            message: "key",
        },
    ]);
}
