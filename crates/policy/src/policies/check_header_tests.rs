use http::StatusCode;

use crate::test_util::{ErrorCase, check_errors, compile_in, failed, run_inbound};
use crate::{Counters, ErrorKind, Flow};

const POLICY: &str = r#"<check-header name="X-Key" failed-check-httpcode="401" failed-check-error-message="Not &quot;authorized&quot;" ignore-case="IGNORE"><value>Alpha</value><value>beta</value></check-header>"#;

fn policy(ignore_case: bool) -> String {
    POLICY.replace("IGNORE", if ignore_case { "true" } else { "false" })
}

#[test]
fn checks_presence_and_values() {
    type Headers = &'static [(&'static str, &'static str)];
    let cases: &[(&str, bool, Headers, Option<&str>)] = &[
        ("exact value", false, &[("x-key", "Alpha")], None),
        (
            "case differs",
            false,
            &[("x-key", "alpha")],
            Some("HeaderValueNotAllowed"),
        ),
        ("case ignored", true, &[("x-key", "ALPHA")], None),
        (
            "one of several values",
            false,
            &[("x-key", "nope"), ("x-key", "beta")],
            None,
        ),
        ("missing", false, &[], Some("HeaderNotFound")),
        (
            "wrong value",
            true,
            &[("x-key", "gamma")],
            Some("HeaderValueNotAllowed"),
        ),
    ];
    for (name, ignore_case, headers, reason) in cases {
        let pipeline = compile_in("inbound", &policy(*ignore_case)).unwrap();
        let (flow, _) = run_inbound(&pipeline, &Counters::new(), headers);
        match reason {
            None => assert_eq!(flow, Flow::Continue, "{name}"),
            Some(reason) => {
                let failure = failed(flow);
                assert_eq!(failure.error.reason, *reason, "{name}");
                assert_eq!(failure.error.source, "check-header", "{name}");
                assert_eq!(failure.response.status, StatusCode::UNAUTHORIZED, "{name}");
                assert_eq!(
                    failure.response.body, r#"{"statusCode":401,"message":"Not \"authorized\""}"#,
                    "{name}"
                );
                // Security: the presented value (often a credential) is never echoed.
                assert!(!failure.error.message.contains("gamma"), "{name}");
            }
        }
    }
}

#[test]
fn without_values_only_presence_is_checked() {
    let pipeline = compile_in(
        "inbound",
        r#"<check-header name="x-key" failed-check-httpcode="403" failed-check-error-message="m" ignore-case="false"/>"#,
    )
    .unwrap();
    assert_eq!(
        run_inbound(&pipeline, &Counters::new(), &[("x-key", "")]).0,
        Flow::Continue
    );
    let failure = failed(run_inbound(&pipeline, &Counters::new(), &[]).0);
    assert_eq!(failure.response.status, StatusCode::FORBIDDEN);
    assert_eq!(
        failure.error.message,
        "Header x-key was not found in the request. Access denied."
    );
}

#[test]
fn rejects_bad_check_header() {
    check_errors(&[
        ErrorCase {
            name: "missing ignore-case",
            section: "inbound",
            body: r#"<check-header name="a" failed-check-httpcode="401" failed-check-error-message="m"/>"#,
            at: "<check-header",
            kind: ErrorKind::Missing,
            message: "`ignore-case`",
        },
        ErrorCase {
            name: "bad status",
            section: "inbound",
            body: r#"<check-header name="a" failed-check-httpcode="abc" failed-check-error-message="m" ignore-case="true"/>"#,
            at: "failed-check-httpcode",
            kind: ErrorKind::InvalidValue,
            message: "`failed-check-httpcode` must be a whole number",
        },
        ErrorCase {
            name: "bad boolean",
            section: "inbound",
            body: r#"<check-header name="a" failed-check-httpcode="401" failed-check-error-message="m" ignore-case="1"/>"#,
            at: "ignore-case",
            kind: ErrorKind::InvalidValue,
            message: "`ignore-case` must be `true` or `false`",
        },
        ErrorCase {
            name: "bad child",
            section: "inbound",
            body: r#"<check-header name="a" failed-check-httpcode="401" failed-check-error-message="m" ignore-case="true"><val>1</val></check-header>"#,
            at: "<val>",
            kind: ErrorKind::Structure,
            message: "expected <value>",
        },
    ]);
}
