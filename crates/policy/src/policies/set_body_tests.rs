use bytes::Bytes;
use http::{Method, StatusCode};

use crate::test_util::{
    ErrorCase, check_errors, compile_in, compile_xml, facts, failed, header, request,
};
use crate::{ContextReads, BufferedBody, Counters, ErrorKind, Flow, RequestState, ResponseState};

/// A POST with `body` read whole, as the gateway hands it over when the pipeline reads
/// the request body.
fn post(body: &str) -> RequestState {
    let mut state = request(Method::POST, "/", "", &[("content-type", "application/json")]);
    state.body = Some(BufferedBody::new(Bytes::from(body.to_owned())));
    state
}

fn sent(body: Option<&BufferedBody>) -> Bytes {
    body.map(BufferedBody::to_send).unwrap_or_default()
}

#[test]
fn a_fixed_body_replaces_the_request_body_and_reads_nothing() {
    let pipeline = compile_in("inbound", r#"<set-body><![CDATA[{"fixed":true}]]></set-body>"#).unwrap();
    assert_eq!(pipeline.context_reads(), ContextReads::default(), "nothing to buffer");
    let mut state = request(Method::POST, "/", "", &[]);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(sent(state.body.as_ref()), r#"{"fixed":true}"#);
}

#[test]
fn an_expression_edits_the_json_request_body() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-body>@{
            var body = context.Request.Body.As<JObject>(preserveContent: true);
            body["source"] = "gateway";
            body["count"] = (int)body["count"] + 1;
            return body.ToString();
        }</set-body>"#,
    )
    .unwrap();
    assert_eq!(
        pipeline.context_reads(),
        ContextReads {
            request_body: true,
            ..ContextReads::default()
        }
    );
    let mut state = post(r#"{"count":1}"#);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    let json: serde_json::Value = serde_json::from_slice(&sent(state.body.as_ref())).unwrap();
    assert_eq!(json, serde_json::json!({"count": 2, "source": "gateway"}));
}

#[test]
fn reading_without_preserve_content_loses_the_original_body_as_in_apim() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="raw" value="@(context.Request.Body.As<string>())" /><set-header name="X-Again" exists-action="override"><value>@(context.Request.Body == null ? "gone" : "there")</value></set-header>"#,
    )
    .unwrap();
    let mut state = post("hello");
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(
        state.variables.get("raw"),
        Some(&crate::Value::string("hello"))
    );
    assert_eq!(header(&state.headers, "x-again"), Some("gone"));
    assert_eq!(sent(state.body.as_ref()), "", "the backend gets no body");

    let preserving = compile_in(
        "inbound",
        r#"<set-variable name="raw" value="@(context.Request.Body.As<string>(true))" />"#,
    )
    .unwrap();
    let mut state = post("hello");
    assert_eq!(preserving.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(sent(state.body.as_ref()), "hello");
}

#[test]
fn an_empty_body_is_null_and_bad_json_fails_into_on_error() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-header name="X-Has" exists-action="override"><value>@(context.Request.Body != null)</value></set-header>"#,
    )
    .unwrap();
    let mut state = post("");
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(header(&state.headers, "x-has"), Some("False"));

    let parsing = compile_in(
        "inbound",
        r#"<set-variable name="j" value="@(context.Request.Body.As<JObject>(preserveContent: true))" />"#,
    )
    .unwrap();
    for (body, message) in [("not json", "not JSON"), ("[1]", "not a JObject")] {
        let mut state = post(body);
        let failure = failed(parsing.inbound(&facts(1), &Counters::new(), &mut state));
        assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
        assert!(failure.error.message.contains(message), "{}", failure.error.message);
    }
}

#[test]
fn a_body_the_gateway_did_not_read_is_a_clear_error() {
    // Through a local variable, the read is not seen at load: nothing was buffered.
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="x" value="@{ var request = context.Request; return request.Body.As<string>(); }" />"#,
    )
    .unwrap();
    assert_eq!(pipeline.context_reads(), ContextReads::default());
    let mut state = request(Method::POST, "/", "", &[]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(
        failure.error.message.contains("names `context.Request.Body` directly"),
        "{}",
        failure.error.message
    );
}

#[test]
fn outbound_reads_and_replaces_the_response_body() {
    let pipeline = compile_xml(
        r#"<policies><inbound /><outbound><set-body>@{
            var body = context.Response.Body.As<JArray>();
            var wrapped = new JObject();
            wrapped["items"] = body;
            wrapped["status"] = context.Response.StatusCode;
            return wrapped.ToString();
        }</set-body></outbound></policies>"#,
    )
    .unwrap();
    assert_eq!(
        pipeline.context_reads(),
        ContextReads {
            response_body: true,
            ..ContextReads::default()
        }
    );
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let mut response = ResponseState::new(StatusCode::OK, http::HeaderMap::new());
    response.body = Some(BufferedBody::new(Bytes::from_static(b"[1,2]")));
    assert_eq!(
        pipeline.outbound(&facts(1), &counters, &mut state, &mut response),
        Flow::Continue
    );
    let json: serde_json::Value = serde_json::from_slice(&sent(response.body.as_ref())).unwrap();
    assert_eq!(json, serde_json::json!({"items": [1, 2], "status": 200}));
}

#[test]
fn on_error_replaces_the_error_body() {
    let pipeline = compile_xml(
        r#"<policies><inbound /><on-error><set-body>@($"{{\"error\":\"{context.LastError.Reason}\"}}")</set-body></on-error></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let error = crate::PolicyErrorInfo {
        source: "rate-limit",
        reason: "RateLimitExceeded",
        message: "x".into(),
        section: None,
        policy_id: None,
    };
    let mut response = ResponseState::new(StatusCode::TOO_MANY_REQUESTS, http::HeaderMap::new());
    response.body = Some(BufferedBody::new(Bytes::from_static(b"original")));
    assert_eq!(
        pipeline.on_error(&facts(1), &counters, &mut state, &error, &mut response),
        Flow::Continue
    );
    assert_eq!(
        sent(response.body.as_ref()),
        r#"{"error":"RateLimitExceeded"}"#
    );
}

#[test]
fn bad_set_bodies_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "liquid",
            section: "inbound",
            body: r#"<set-body template="liquid">{{body.x}}</set-body>"#,
            at: "template",
            kind: ErrorKind::NotSupported,
            message: "Liquid",
        },
        ErrorCase {
            name: "unknown template",
            section: "outbound",
            body: r#"<set-body template="mustache">x</set-body>"#,
            at: "template",
            kind: ErrorKind::InvalidValue,
            message: "`liquid` or `none`",
        },
        ErrorCase {
            name: "XDocument",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.As<XDocument>().ToString())</set-body>"#,
            at: "XDocument",
            kind: ErrorKind::NotSupported,
            message: "found `XDocument`",
        },
        ErrorCase {
            name: "not a body type",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.As<int>())</set-body>"#,
            at: "int",
            kind: ErrorKind::InvalidValue,
            message: "a body cannot be read as `int`",
        },
        ErrorCase {
            name: "form content",
            section: "inbound",
            body: r#"<set-body>@(context.Request.Body.AsFormUrlEncodedContent())</set-body>"#,
            at: "AsFormUrlEncodedContent",
            kind: ErrorKind::NotSupported,
            message: "not available in Gatehouse yet",
        },
        ErrorCase {
            name: "markup",
            section: "inbound",
            body: r#"<set-body><a/></set-body>"#,
            at: "<a/>",
            kind: ErrorKind::NotSupported,
            message: "CDATA",
        },
    ]);
}
