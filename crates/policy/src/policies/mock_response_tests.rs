use gatehouse_model::{Operation, OperationResponse, Representation};
use http::StatusCode;

use crate::test_util::{
    ErrorCase, check_errors, compile_xml_with, header, in_section, responded, run_inbound,
};
use crate::{CompileContext, Counters, ErrorKind, NamedValues};

fn operation() -> Operation {
    Operation {
        id: "get-user".to_owned(),
        display_name: None,
        method: "GET".to_owned(),
        url_template: "/users/{id}".to_owned(),
        policy: None,
        responses: vec![
            OperationResponse {
                status_code: 200,
                representations: vec![
                    Representation {
                        content_type: "application/xml".to_owned(),
                        example: None,
                    },
                    Representation {
                        content_type: "application/json".to_owned(),
                        example: Some(r#"{"id":1}"#.to_owned()),
                    },
                ],
            },
            OperationResponse {
                status_code: 404,
                representations: vec![Representation {
                    content_type: "text/plain".to_owned(),
                    example: None,
                }],
            },
        ],
    }
}

#[test]
fn answers_with_documented_examples() {
    let named = NamedValues::new();
    let operation = operation();
    let with_operation = CompileContext::new(&named).with_operation(&operation);
    let without = CompileContext::new(&named);
    type Expected = (StatusCode, Option<&'static str>, &'static str);
    let json = Some("application/json");
    let cases: &[(&str, &str, bool, Expected)] = &[
        (
            "first example",
            "<mock-response/>",
            true,
            (StatusCode::OK, json, r#"{"id":1}"#),
        ),
        (
            "by content type",
            r#"<mock-response status-code="200" content-type="application/json; charset=utf-8"/>"#,
            true,
            (
                StatusCode::OK,
                Some("application/json; charset=utf-8"),
                r#"{"id":1}"#,
            ),
        ),
        (
            "content type without example",
            r#"<mock-response content-type="application/xml"/>"#,
            true,
            (StatusCode::OK, Some("application/xml"), ""),
        ),
        (
            "status without example",
            r#"<mock-response status-code="404"/>"#,
            true,
            (StatusCode::NOT_FOUND, Some("text/plain"), ""),
        ),
        (
            "undocumented status",
            r#"<mock-response status-code="201"/>"#,
            true,
            (StatusCode::CREATED, None, ""),
        ),
        (
            "no operation",
            "<mock-response/>",
            false,
            (StatusCode::OK, None, ""),
        ),
    ];
    for (name, body, has_operation, (status, content_type, example)) in cases {
        let cx = if *has_operation {
            &with_operation
        } else {
            &without
        };
        let pipeline = compile_xml_with(&in_section("inbound", body), cx).unwrap();
        let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
        let response = responded(flow);
        assert_eq!(response.status, *status, "{name}");
        assert_eq!(
            header(&response.headers, "content-type"),
            *content_type,
            "{name}"
        );
        assert_eq!(response.body, example.as_bytes(), "{name}");
    }
    compile_xml_with(&in_section("outbound", "<mock-response/>"), &without).unwrap();
    compile_xml_with(&in_section("on-error", "<mock-response/>"), &without).unwrap();
}

#[test]
fn rejects_bad_mock_response() {
    check_errors(&[
        ErrorCase {
            name: "bad status",
            section: "inbound",
            body: r#"<mock-response status-code="2000"/>"#,
            at: "status-code",
            kind: ErrorKind::InvalidValue,
            message: "`status-code` must be from 100 to 599",
        },
        ErrorCase {
            name: "bad content type",
            section: "inbound",
            body: "<mock-response content-type=\"a&#10;b\"/>",
            at: "content-type",
            kind: ErrorKind::InvalidValue,
            message: "not a valid header value",
        },
        ErrorCase {
            name: "text",
            section: "inbound",
            body: "<mock-response>x</mock-response>",
            at: "x<",
            kind: ErrorKind::Structure,
            message: "unexpected text",
        },
    ]);
}
