use http::StatusCode;

use crate::test_util::{
    ErrorCase, check_errors, compile_in, header, headers_all, responded, run_inbound, run_outbound,
};
use crate::{Counters, ErrorKind};

#[test]
fn returns_the_built_response() {
    let pipeline = compile_in(
        "inbound",
        r#"<return-response>
            <set-status code="401" reason="Unauthorized"/>
            <set-header name="WWW-Authenticate" exists-action="override"><value>Bearer error="invalid_token"</value></set-header>
            <set-header name="x-a"><value>1</value><value>2</value></set-header>
            <set-header name="x-gone" exists-action="delete"/>
            <set-body template="none" xsi-nil="blank" parse-date="false"><![CDATA[{"error":"<unauthorized>"}]]></set-body>
        </return-response>"#,
    )
    .unwrap();
    let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
    let response = responded(flow);
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.reason, None);
    assert_eq!(
        header(&response.headers, "www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(headers_all(&response.headers, "x-a"), ["1,2"]);
    assert!(!response.headers.contains_key("x-gone"));
    assert_eq!(response.body, r#"{"error":"<unauthorized>"}"#);
}

#[test]
fn an_empty_return_response_is_200() {
    for section in ["inbound", "backend", "outbound", "on-error"] {
        compile_in(section, "<return-response/>").unwrap();
    }
    let pipeline = compile_in("outbound", "<return-response/>").unwrap();
    let response = responded(run_outbound(&pipeline, &[("x", "y")]).0);
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.headers.is_empty() && response.body.is_empty());
}

#[test]
fn rejects_bad_return_response() {
    check_errors(&[
        ErrorCase {
            name: "empty response variable",
            section: "inbound",
            body: r#"<return-response response-variable-name=" "/>"#,
            at: "response-variable-name",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
        ErrorCase {
            name: "two statuses",
            section: "inbound",
            body: r#"<return-response><set-status code="200" reason="a"/><set-status code="201" reason="b"/></return-response>"#,
            at: r#"<set-status code="201""#,
            kind: ErrorKind::Structure,
            message: "only once",
        },
        ErrorCase {
            name: "liquid",
            section: "inbound",
            body: r#"<return-response><set-body template="liquid">{{body.x}}</set-body></return-response>"#,
            at: "template",
            kind: ErrorKind::NotSupported,
            message: "Liquid",
        },
        ErrorCase {
            name: "markup in body",
            section: "inbound",
            body: r#"<return-response><set-body><a/></set-body></return-response>"#,
            at: "<a/>",
            kind: ErrorKind::NotSupported,
            message: "CDATA",
        },
        ErrorCase {
            name: "bad xsi-nil",
            section: "inbound",
            body: r#"<return-response><set-body xsi-nil="none"/></return-response>"#,
            at: "xsi-nil",
            kind: ErrorKind::InvalidValue,
            message: "`blank` or `null`",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<return-response><set-method>GET</set-method></return-response>"#,
            at: "<set-method",
            kind: ErrorKind::Structure,
            message: "expected <set-status>, <set-header> or <set-body>",
        },
        ErrorCase {
            name: "nested status error",
            section: "inbound",
            body: r#"<return-response><set-status reason="OK"/></return-response>"#,
            at: "<set-status",
            kind: ErrorKind::Missing,
            message: "<set-status>: missing required attribute `code`",
        },
        ErrorCase {
            name: "nested unknown attribute",
            section: "inbound",
            body: r#"<return-response><set-header name="a" bad="1"/></return-response>"#,
            at: "bad=",
            kind: ErrorKind::UnknownAttribute,
            message: "<set-header>: unknown attribute `bad`",
        },
    ]);
}

#[test]
fn expressions_in_the_body_and_header_values_are_evaluated_per_request() {
    use crate::test_util::{header, responded, run_inbound};
    let pipeline = crate::test_util::compile_in(
        "inbound",
        r#"<set-variable name="who" value="@(context.Request.Headers.GetValueOrDefault("X-Who", "nobody"))" /><return-response><set-header name="Content-Type" exists-action="override"><value>application/json</value></set-header><set-header name="X-Who" exists-action="override"><value>@((string)context.Variables["who"])</value></set-header><set-body>@{ var who = (string)context.Variables["who"]; return "{\"hello\":\"" + who + "\"}"; }</set-body></return-response>"#,
    )
    .unwrap();
    let response =
        responded(run_inbound(&pipeline, &crate::Counters::new(), &[("x-who", "ada")]).0);
    assert_eq!(header(&response.headers, "x-who"), Some("ada"));
    assert_eq!(
        header(&response.headers, "content-type"),
        Some("application/json")
    );
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(body, serde_json::json!({"hello": "ada"}));
}
