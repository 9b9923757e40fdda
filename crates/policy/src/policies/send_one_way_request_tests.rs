use http::Method;

use crate::test_util::{
    ErrorCase, FakeServices, check_errors, compile_in, facts, failed, header, request,
};
use crate::{CallError, Counters, ErrorKind, Flow, RequestFacts};

fn with(services: &FakeServices) -> RequestFacts<'_> {
    RequestFacts {
        services: Some(services),
        ..facts(1)
    }
}

#[test]
fn the_call_is_handed_over_and_the_request_goes_on_without_waiting() {
    let pipeline = compile_in(
        "inbound",
        r#"<send-one-way-request mode="new" timeout="7">
            <set-url>@("https://hooks.example.com/audit?client=" + context.Request.Headers.GetValueOrDefault("X-Client", "none"))</set-url>
            <set-method>POST</set-method>
            <set-header name="Content-Type" exists-action="override"><value>text/plain</value></set-header>
            <set-body>@(context.Request.Method + " " + context.Request.Url.Path)</set-body>
        </send-one-way-request>
        <set-header name="X-After" exists-action="override"><value>went on</value></set-header>"#,
    )
    .unwrap();
    assert!(!pipeline.is_async(), "nothing waits: the pipeline stays synchronous");
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/orders", "", &[("x-client", "web")]);
    assert_eq!(
        pipeline.inbound(&with(&services), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(header(&state.headers, "x-after"), Some("went on"));
    let calls = services.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, Method::POST);
    assert_eq!(calls[0].url.as_str(), "https://hooks.example.com/audit?client=web");
    assert_eq!(header(&calls[0].headers, "content-type"), Some("text/plain"));
    assert_eq!(&calls[0].body[..], b"GET /orders");
    assert_eq!(calls[0].timeout, std::time::Duration::from_secs(7));
    assert!(state.variables.is_empty(), "no response is kept");
}

#[test]
fn copy_mode_sends_the_request_as_shaped_so_far() {
    let pipeline = compile_in(
        "outbound",
        r#"<send-one-way-request mode="copy"><set-url>https://mirror.example.com/copy</set-url></send-one-way-request>"#,
    )
    .unwrap();
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::PUT, "/items/1", "", &[("x-tenant", "a")]);
    let mut response = crate::ResponseState::new(http::StatusCode::OK, http::HeaderMap::new());
    assert_eq!(
        pipeline.outbound(&with(&services), &Counters::new(), &mut state, &mut response),
        Flow::Continue
    );
    let calls = services.calls.lock().unwrap();
    assert_eq!(calls[0].method, Method::PUT);
    assert_eq!(header(&calls[0].headers, "x-tenant"), Some("a"));
}

#[test]
fn a_call_that_cannot_be_started_or_built_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<send-one-way-request><set-url>@(context.Request.Headers.GetValueOrDefault("X-Target", "not a url"))</set-url></send-one-way-request>"#,
    )
    .unwrap();
    // A URL computed per request that is not one.
    let services = FakeServices::answering(200, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&with(&services), &Counters::new(), &mut state));
    assert_eq!(failure.error.source, "send-one-way-request");
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(services.calls.lock().unwrap().is_empty());
    // A gateway that makes no calls says so rather than dropping it silently.
    let refusing = FakeServices::failing(CallError::Unavailable);
    let mut state = request(Method::GET, "/", "", &[("x-target", "https://a.example.com/")]);
    let failure = failed(pipeline.inbound(&with(&refusing), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "BackendConnectionFailure");
    assert!(failure.error.message.contains("not made here"), "{}", failure.error.message);
}

#[test]
fn what_only_send_request_has_is_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "response variable",
            section: "inbound",
            body: r#"<send-one-way-request response-variable-name="r"><set-url>https://a.example.com/</set-url></send-one-way-request>"#,
            at: "response-variable-name",
            kind: ErrorKind::UnknownAttribute,
            message: "response-variable-name",
        },
        ErrorCase {
            name: "ignore-error",
            section: "inbound",
            body: r#"<send-one-way-request ignore-error="true"><set-url>https://a.example.com/</set-url></send-one-way-request>"#,
            at: "ignore-error",
            kind: ErrorKind::UnknownAttribute,
            message: "ignore-error",
        },
        ErrorCase {
            name: "no url in new mode",
            section: "inbound",
            body: r#"<send-one-way-request mode="new"><set-method>POST</set-method></send-one-way-request>"#,
            at: "<send-one-way-request",
            kind: ErrorKind::Structure,
            message: "<send-one-way-request mode=\"new\"> needs a <set-url>",
        },
        ErrorCase {
            name: "managed identity",
            section: "inbound",
            body: r#"<send-one-way-request><set-url>https://a.example.com/</set-url><authentication-managed-identity resource="r" /></send-one-way-request>"#,
            at: "<authentication-managed-identity",
            kind: ErrorKind::NotSupported,
            message: "not supported yet",
        },
        ErrorCase {
            name: "fixed url that is not http",
            section: "inbound",
            body: r#"<send-one-way-request><set-url>ftp://a.example.com/</set-url></send-one-way-request>"#,
            at: "ftp:",
            kind: ErrorKind::InvalidValue,
            message: "not an http or https URL",
        },
    ]);
}
