use http::StatusCode;

use crate::ErrorKind;
use crate::test_util::{ErrorCase, check_errors, compile_in, run_outbound};

#[test]
fn code_and_reason_may_be_expressions() {
    let cases: &[(&str, StatusCode, Option<&str>)] = &[
        // The response's own status, as APIM's on-error snippets write it.
        (
            r#"<set-status code="@(context.Response.StatusCode)" />"#,
            StatusCode::OK,
            None,
        ),
        (
            r#"<set-status code="@(200 + 99)" reason="@("Fine " + "Enough")" />"#,
            StatusCode::from_u16(299).unwrap(),
            Some("Fine Enough"),
        ),
        (
            r#"<set-status code="@("503")" reason="@(context.Response.StatusReason)" />"#,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("OK"),
        ),
        (
            r#"<set-status code="404" reason="@("Not Found")" />"#,
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (body, status, reason) in cases {
        let pipeline = compile_in("outbound", body).unwrap();
        let (flow, response) = run_outbound(&pipeline, &[]);
        assert_eq!(flow, crate::Flow::Continue, "{body}");
        assert_eq!(response.status, *status, "{body}");
        assert_eq!(response.reason.as_deref(), *reason, "{body}");
    }
    for bad in [
        r#"<set-status code="@(42)" />"#,
        r#"<set-status code="@("teapot")" />"#,
        r#"<set-status code="200" reason="@("two\nlines")" />"#,
    ] {
        let pipeline = compile_in("outbound", bad).unwrap();
        let (flow, _) = run_outbound(&pipeline, &[]);
        let failure = crate::test_util::failed(flow);
        assert_eq!(
            failure.error.reason, "ExpressionValueEvaluationFailure",
            "{bad}"
        );
    }
}

#[test]
fn sets_status_and_reason() {
    let cases: &[(&str, StatusCode, Option<&str>)] = &[
        (
            r#"<set-status code="401" reason="Unauthorized"/>"#,
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            r#"<set-status code="299" reason="Fine Enough"/>"#,
            StatusCode::from_u16(299).unwrap(),
            Some("Fine Enough"),
        ),
        (
            r#"<set-status code=" 404 " reason=""/>"#,
            StatusCode::NOT_FOUND,
            None,
        ),
        // APIM's own snippets leave `reason` out: the standard phrase then.
        (
            r#"<set-status code="429"/>"#,
            StatusCode::TOO_MANY_REQUESTS,
            None,
        ),
    ];
    for (body, status, reason) in cases {
        let pipeline = compile_in("outbound", body).unwrap();
        let (_, response) = run_outbound(&pipeline, &[]);
        assert_eq!(response.status, *status, "{body}");
        assert_eq!(response.reason.as_deref(), *reason, "{body}");
    }
    compile_in("on-error", r#"<set-status code="500" reason="x"/>"#).unwrap();
}

#[test]
fn rejects_bad_set_status() {
    check_errors(&[
        ErrorCase {
            name: "missing code",
            section: "outbound",
            body: r#"<set-status reason="x"/>"#,
            at: "<set-status",
            kind: ErrorKind::Missing,
            message: "`code`",
        },
        ErrorCase {
            name: "out of range",
            section: "outbound",
            body: r#"<set-status code="600" reason="x"/>"#,
            at: "code",
            kind: ErrorKind::InvalidValue,
            message: "from 100 to 599, found `600`",
        },
        ErrorCase {
            name: "not a number",
            section: "outbound",
            body: r#"<set-status code="ok" reason="x"/>"#,
            at: "code",
            kind: ErrorKind::InvalidValue,
            message: "whole number",
        },
        ErrorCase {
            name: "control character in reason",
            section: "outbound",
            body: "<set-status code=\"200\" reason=\"a&#10;b\"/>",
            at: "reason",
            kind: ErrorKind::InvalidValue,
            message: "line breaks",
        },
    ]);
}
