use bytes::Bytes;
use http::Method;

use crate::test_util::{
    ErrorCase, FakeServices, block_on, check_errors, compile_in, compile_xml, facts, failed,
    header, request, responded,
};
use crate::{BufferedBody, CallError, Counters, ErrorKind, Flow, RequestFacts};

fn with(services: &FakeServices) -> RequestFacts<'_> {
    RequestFacts {
        services: Some(services),
        ..facts(1)
    }
}

#[test]
fn a_managed_identity_inside_send_request_authorizes_the_call() {
    let pipeline = compile_in(
        "outbound",
        r#"<send-request mode="new" response-variable-name="bus" timeout="5">
            <set-url>https://bus.example.com/queue/messages</set-url>
            <set-method>POST</set-method>
            <authentication-managed-identity resource="@("https://" + "servicebus.azure.net")" />
        </send-request>"#,
    )
    .unwrap();
    let services = FakeServices::answering(201, "{}");
    let mut state = request(Method::GET, "/", "", &[]);
    let mut response = crate::ResponseState::new(http::StatusCode::OK, http::HeaderMap::new());
    let flow = block_on(pipeline.outbound_async(
        &with(&services),
        &Counters::new(),
        &mut state,
        &mut response,
    ));
    assert_eq!(flow, Flow::Continue);
    let calls = services.calls.lock().unwrap();
    assert_eq!(
        header(&calls[0].headers, "authorization"),
        Some("Bearer token-for-https://servicebus.azure.net")
    );
    assert!(calls[0].headers["authorization"].is_sensitive());
    // No token: the call fails as send-request, unless the identity may be skipped.
    let failing = FakeServices::failing(CallError::NoIdentity);
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(block_on(pipeline.outbound_async(
        &with(&failing),
        &Counters::new(),
        &mut state,
        &mut crate::ResponseState::new(http::StatusCode::OK, http::HeaderMap::new()),
    )));
    assert!(failure.error.message.contains("no identity"), "{}", failure.error.message);
    assert!(failing.calls.lock().unwrap().is_empty(), "no call without its token");
}

#[test]
fn the_response_is_kept_for_later_expressions() {
    let pipeline = compile_in(
        "inbound",
        r#"<send-request mode="new" response-variable-name="token" timeout="5">
            <set-url>@("https://auth.example.com/token?client=" + context.Request.Headers.GetValueOrDefault("X-Client", "none"))</set-url>
            <set-method>POST</set-method>
            <set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header>
            <set-body>{"grant":"client_credentials"}</set-body>
        </send-request>
        <set-header name="Authorization" exists-action="override"><value>@("Bearer " + ((IResponse)context.Variables["token"]).Body.As<JObject>(true)["access_token"])</value></set-header>
        <set-header name="X-Token-Status" exists-action="override"><value>@(((IResponse)context.Variables["token"]).StatusCode)</value></set-header>
        <set-header name="X-Token-Type" exists-action="override"><value>@(((IResponse)context.Variables["token"]).Headers.GetValueOrDefault("Content-Type", ""))</value></set-header>"#,
    )
    .unwrap();
    assert!(pipeline.is_async());
    let services = FakeServices::answering(200, r#"{"access_token":"abc"}"#);
    let mut state = request(Method::GET, "/", "", &[("x-client", "web")]);
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "authorization"), Some("Bearer abc"));
    assert_eq!(header(&state.headers, "x-token-status"), Some("200"));
    assert_eq!(header(&state.headers, "x-token-type"), Some("application/json"));
    let calls = services.calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, Method::POST);
    assert_eq!(
        calls[0].url.as_str(),
        "https://auth.example.com/token?client=web"
    );
    assert_eq!(calls[0].body, r#"{"grant":"client_credentials"}"#);
    assert_eq!(header(&calls[0].headers, "content-type"), Some("application/json"));
    assert_eq!(calls[0].timeout, std::time::Duration::from_secs(5));
}

#[test]
fn copy_mode_sends_the_current_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-backend-service base-url="http://orders.internal/v1" /><send-request mode="copy" response-variable-name="r"><set-header name="X-Copy" exists-action="override"><value>yes</value></set-header></send-request>"#,
    )
    .unwrap();
    assert!(pipeline.context_reads().request_body, "the copy needs the body");
    let services = FakeServices::answering(201, "{}");
    let mut state = request(Method::PUT, "/items/1", "a=b", &[("x-original", "1")]);
    state.body = Some(BufferedBody::new(Bytes::from_static(b"payload")));
    let flow = block_on(pipeline.inbound_async(&with(&services), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    let calls = services.calls.lock().unwrap();
    assert_eq!(calls[0].method, Method::PUT);
    assert_eq!(calls[0].url.as_str(), "http://orders.internal/v1/items/1?a=b");
    assert_eq!(header(&calls[0].headers, "x-original"), Some("1"));
    assert_eq!(header(&calls[0].headers, "x-copy"), Some("yes"));
    assert_eq!(calls[0].body, "payload");
}

#[test]
fn a_failed_call_goes_to_on_error_unless_ignored() {
    let failing = FakeServices::failing(CallError::Timeout(std::time::Duration::from_secs(1)));
    let strict = compile_in(
        "inbound",
        r#"<send-request response-variable-name="r"><set-url>http://127.0.0.1:9/</set-url></send-request>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(block_on(strict.inbound_async(
        &with(&failing),
        &Counters::new(),
        &mut state,
    )));
    assert_eq!(failure.error.source, "send-request");
    assert_eq!(failure.error.reason, "BackendConnectionFailure");
    assert!(failure.error.message.contains("http://127.0.0.1:9"), "{}", failure.error.message);
    assert_eq!(failure.response.status, 500);

    let lenient = compile_in(
        "inbound",
        r#"<send-request response-variable-name="r" ignore-error="true"><set-url>http://127.0.0.1:9/</set-url></send-request><set-header name="X-R" exists-action="override"><value>@(context.Variables["r"] == null ? "none" : "some")</value></set-header>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let flow = block_on(lenient.inbound_async(&with(&failing), &Counters::new(), &mut state));
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-r"), Some("none"));
}

#[test]
fn a_synchronous_run_or_a_run_without_services_fails_clearly() {
    let pipeline = compile_in(
        "inbound",
        r#"<send-request response-variable-name="r"><set-url>http://127.0.0.1:9/</set-url></send-request>"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(failure.error.message.contains("synchronous"));
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(block_on(pipeline.inbound_async(
        &facts(1),
        &Counters::new(),
        &mut state,
    )));
    assert!(failure.error.message.contains("not made here"), "{}", failure.error.message);
}

#[test]
fn return_response_sends_a_stored_response_changed_by_its_children() {
    let pipeline = compile_xml(
        r#"<policies><inbound><choose><when condition="@(true)"><send-request response-variable-name="upstream"><set-url>https://status.example.com/</set-url></send-request></when></choose><return-response response-variable-name="upstream"><set-header name="X-Via" exists-action="override"><value>gatehouse</value></set-header></return-response></inbound></policies>"#,
    )
    .unwrap();
    assert!(pipeline.is_async(), "a choose holding send-request waits too");
    let services = FakeServices::answering(503, r#"{"down":true}"#);
    let mut state = request(Method::GET, "/", "", &[]);
    let response = responded(block_on(pipeline.inbound_async(
        &with(&services),
        &Counters::new(),
        &mut state,
    )));
    assert_eq!(response.status, 503);
    assert_eq!(response.body, r#"{"down":true}"#);
    assert_eq!(header(&response.headers, "x-via"), Some("gatehouse"));
    assert_eq!(header(&response.headers, "content-type"), Some("application/json"));

    // Without such a variable: a clear failure.
    let missing = compile_in(
        "inbound",
        r#"<return-response response-variable-name="nothing" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    let failure = failed(missing.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(failure.error.message.contains("`nothing` does not hold a response"));
}

#[test]
fn pipelines_without_send_request_are_not_async() {
    let pipeline = compile_in(
        "inbound",
        r#"<choose><when condition="@(true)"><set-header name="a" exists-action="override"><value>b</value></set-header></when></choose>"#,
    )
    .unwrap();
    assert!(!pipeline.is_async());
}

#[test]
fn bad_send_requests_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "a token variable inside send-request",
            section: "inbound",
            body: r#"<send-request response-variable-name="r"><set-url>http://127.0.0.1:9/</set-url><authentication-managed-identity resource="x" output-token-variable-name="t" /></send-request>"#,
            at: "output-token-variable-name",
            kind: ErrorKind::NotSupported,
            message: "no use inside <send-request>",
        },
        ErrorCase {
            name: "no variable",
            section: "inbound",
            body: r#"<send-request><set-url>http://a/</set-url></send-request>"#,
            at: "<send-request>",
            kind: ErrorKind::Missing,
            message: "response-variable-name",
        },
        ErrorCase {
            name: "new without a URL",
            section: "inbound",
            body: r#"<send-request response-variable-name="r" />"#,
            at: "<send-request",
            kind: ErrorKind::Structure,
            message: "needs a <set-url>",
        },
        ErrorCase {
            name: "bad mode",
            section: "inbound",
            body: r#"<send-request mode="clone" response-variable-name="r" />"#,
            at: "mode",
            kind: ErrorKind::InvalidValue,
            message: "`new` or `copy`",
        },
        ErrorCase {
            name: "relative URL",
            section: "outbound",
            body: r#"<send-request response-variable-name="r"><set-url>/token</set-url></send-request>"#,
            at: "/token",
            kind: ErrorKind::InvalidValue,
            message: "not an absolute URL",
        },
        ErrorCase {
            name: "bad timeout",
            section: "inbound",
            body: r#"<send-request response-variable-name="r" timeout="0"><set-url>http://a/</set-url></send-request>"#,
            at: "timeout",
            kind: ErrorKind::InvalidValue,
            message: "`timeout` must be from 1",
        },
        ErrorCase {
            name: "proxy",
            section: "inbound",
            body: r#"<send-request response-variable-name="r"><set-url>http://a/</set-url><proxy url="http://p/" /></send-request>"#,
            at: "<proxy",
            kind: ErrorKind::NotSupported,
            message: "<proxy> inside <send-request>",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<send-request response-variable-name="r"><set-url>http://a/</set-url><set-status code="200" /></send-request>"#,
            at: "<set-status",
            kind: ErrorKind::Structure,
            message: "<set-url>, <set-method>, <set-header>, <set-body> or <authentication-managed-identity>",
        },
    ]);
}
