use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE};

use super::*;
use crate::test_util::{
    compile_xml, facts, failed, header, header_map, headers_all, request, responded,
};

const FULL: &str = r#"<policies>
  <inbound>
    <cors terminate-unmatched-request="false">
      <allowed-origins><origin>https://app.example.com</origin></allowed-origins>
    </cors>
    <set-header name="x-in" exists-action="override"><value>1</value></set-header>
    <rate-limit-by-key calls="1" renewal-period="60" counter-key="one" remaining-calls-header-name="x-remaining"/>
  </inbound>
  <backend>
    <set-header name="x-backend"><value>2</value></set-header>
    <forward-request timeout="7" http-version="1"/>
  </backend>
  <outbound>
    <set-header name="x-out"><value>3</value></set-header>
  </outbound>
  <on-error>
    <set-header name="x-error"><value>4</value></set-header>
  </on-error>
</policies>"#;

#[test]
fn phases_shape_the_request_and_the_response() {
    let pipeline = compile_xml(FULL).unwrap();
    let counters = Counters::new();
    let facts = facts(100);
    let mut state = request(
        Method::GET,
        "/a",
        "q=1",
        &[("origin", "https://app.example.com")],
    );
    assert_eq!(
        pipeline.inbound(&facts, &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(
        pipeline.backend(&facts, &counters, &mut state),
        Flow::Continue
    );
    assert_eq!(header(&state.headers, "x-in"), Some("1"));
    assert_eq!(header(&state.headers, "x-backend"), Some("2"));
    assert_eq!(state.forward.timeout, Some(Duration::from_secs(7)));
    assert_eq!(state.forward.http_version, HttpVersion::Http1);

    let mut response = ResponseState::new(
        StatusCode::OK,
        header_map(&[("vary", "Accept"), ("x-remaining", "9")]),
    );
    assert_eq!(
        pipeline.outbound(&facts, &counters, &mut state, &mut response),
        Flow::Continue
    );
    assert_eq!(header(&response.headers, "x-out"), Some("3"));
    assert_eq!(
        header(&response.headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        headers_all(&response.headers, "vary"),
        ["Accept", "Origin"],
        "Vary is added to"
    );
    assert_eq!(
        headers_all(&response.headers, "x-remaining"),
        ["0"],
        "others are replaced"
    );
    assert!(
        state.response_headers.is_empty(),
        "moved, so never added twice"
    );
}

#[test]
fn failures_carry_policy_headers_and_on_error_can_amend_them() {
    let pipeline = compile_xml(FULL).unwrap();
    let counters = Counters::new();
    let facts = facts(100);
    let origin = [("origin", "https://app.example.com")];
    let mut first = request(Method::GET, "/", "", &origin);
    assert_eq!(
        pipeline.inbound(&facts, &counters, &mut first),
        Flow::Continue
    );

    let mut state = request(Method::GET, "/", "", &origin);
    let failure = failed(pipeline.inbound(&facts, &counters, &mut state));
    assert_eq!(failure.error.reason, "RateLimitExceeded");
    assert_eq!(failure.error.section, Some(SectionKind::Inbound));
    assert_eq!(failure.response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(&failure.response.headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(header(&failure.response.headers, "x-remaining"), Some("0"));

    let mut response =
        ResponseState::new(failure.response.status, failure.response.headers.clone());
    assert_eq!(
        pipeline.on_error(&facts, &counters, &mut state, &failure.error, &mut response),
        Flow::Continue
    );
    assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response.headers, "x-error"), Some("4"));
    assert_eq!(
        headers_all(&response.headers, "access-control-allow-origin").len(),
        1
    );
}

#[test]
fn responses_from_inbound_skip_the_rest_and_get_policy_headers() {
    let pipeline = compile_xml(
        r#"<policies><inbound>
            <cors><allowed-origins><origin>*</origin></allowed-origins></cors>
            <return-response><set-status code="418" reason="Teapot"/></return-response>
            <set-header name="never"><value>x</value></set-header>
        </inbound></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[("origin", "https://x.example")]);
    let response = responded(pipeline.inbound(&facts(0), &counters, &mut state));
    assert_eq!(response.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(response.reason.as_deref(), Some("Teapot"));
    assert_eq!(response.headers[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert!(!state.headers.contains_key("never"));
}

#[test]
fn outbound_and_on_error_can_replace_the_response() {
    let pipeline = compile_xml(
        r#"<policies>
            <outbound><return-response><set-body>replaced</set-body></return-response></outbound>
            <on-error><mock-response status-code="503"/></on-error>
        </policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    let mut response = ResponseState::new(StatusCode::OK, HeaderMap::new());
    let replaced = responded(pipeline.outbound(&facts(0), &counters, &mut state, &mut response));
    assert_eq!(replaced.body, "replaced");
    let error = PolicyErrorInfo {
        source: "forward-request",
        reason: "BackendConnectionFailure",
        message: "connection refused".into(),
        section: Some(SectionKind::Backend),
        policy_id: None,
        scope: None,
        path: None,
    };
    let mocked =
        responded(pipeline.on_error(&facts(0), &counters, &mut state, &error, &mut response));
    assert_eq!(mocked.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[test]
fn default_forward_settings_apply_without_forward_request() {
    let pipeline = compile_xml("<policies><inbound/></policies>").unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(
        pipeline.backend(&facts(0), &Counters::new(), &mut state),
        Flow::Continue
    );
    assert_eq!(state.forward, ForwardSettings::default());
    assert!(!state.forward.buffer_response, "chunks stream unless asked");
    assert_eq!(state.forward.timeout, None);
}

#[test]
fn an_unanswered_preflight_gets_an_empty_200() {
    let pipeline = compile_xml(
        r#"<policies><inbound>
            <cors terminate-unmatched-request="false"><allowed-origins><origin>https://a.example</origin></allowed-origins></cors>
            <set-header name="x"><value>y</value></set-header>
        </inbound></policies>"#,
    )
    .unwrap();
    let mut state = request(
        Method::OPTIONS,
        "/",
        "",
        &[
            ("origin", "https://b.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    let response = responded(pipeline.inbound(&facts(0), &Counters::new(), &mut state));
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.headers.is_empty());
    assert!(response.body.is_empty());
}

#[test]
fn concurrency_permits_taken_in_outbound_are_held_by_the_request() {
    let pipeline = compile_xml(
        r#"<policies><outbound><limit-concurrency key="k" max-count="1"><set-header name="a"><value>b</value></set-header></limit-concurrency></outbound></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut first = request(Method::GET, "/", "", &[]);
    let mut response = ResponseState::new(StatusCode::OK, HeaderMap::new());
    assert_eq!(
        pipeline.outbound(&facts(0), &counters, &mut first, &mut response),
        Flow::Continue
    );
    assert_eq!(first.held.len(), 1);
    assert_eq!(header(&response.headers, "a"), Some("b"));
    let mut second = request(Method::GET, "/", "", &[]);
    let failure = failed(pipeline.outbound(&facts(0), &counters, &mut second, &mut response));
    assert_eq!(failure.error.reason, "ConcurrencyLimitExceeded");
    assert_eq!(failure.error.section, Some(SectionKind::Outbound));
    drop(first);
    assert_eq!(
        pipeline.outbound(&facts(0), &counters, &mut second, &mut response),
        Flow::Continue
    );
}

#[test]
fn debug_output_hides_credentials() {
    let state = request(Method::GET, "/", "", &[("authorization", "Bearer hunter2")]);
    let debug = format!("{state:?}");
    assert!(
        debug.contains("authorization") && !debug.contains("hunter2"),
        "{debug}"
    );
    let subscription = SubscriptionFacts {
        id: "s1",
        key: "topsecretkey",
        product_id: Some("gold"),
        product_name: None,
        name: "subscription",
    };
    let debug = format!("{subscription:?}");
    assert!(
        debug.contains("s1") && !debug.contains("topsecretkey"),
        "{debug}"
    );
}

#[test]
fn json_errors_are_escaped() {
    let response = PolicyResponse::json_error(StatusCode::FORBIDDEN, "a \"b\" \\ c\n\u{1}é");
    assert_eq!(
        response.body,
        "{\"statusCode\":403,\"message\":\"a \\\"b\\\" \\\\ c\\n\\u0001é\"}"
    );
    assert_eq!(response.headers[CONTENT_TYPE], "application/json");
}

#[test]
fn the_scope_of_a_failing_policy_comes_from_its_document() {
    for (origin, scope) in [
        ("gateway.yaml: policy", Some("global")),
        ("policy: products[gold].policy", Some("product")),
        ("gateway.yaml: apis[orders].policy", Some("api")),
        (
            "gateway.yaml: apis[orders].operations[get].policy",
            Some("operation"),
        ),
        ("gateway.yaml: fragments[auth]", None),
        ("policies/check.xml", None),
    ] {
        assert_eq!(super::scope_of(origin), scope, "{origin}");
    }
}
