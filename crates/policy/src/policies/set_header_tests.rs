use crate::Counters;
use crate::ErrorKind;
use crate::test_util::{
    ErrorCase, check_errors, compile_in, headers_all, run_inbound, run_outbound,
};

#[test]
fn sets_request_headers() {
    type Headers = &'static [(&'static str, &'static str)];
    let cases: &[(&str, &str, Headers, &[&str])] = &[
        (
            "override replaces",
            r#"<set-header name="X-A" exists-action="override"><value>new</value></set-header>"#,
            &[("x-a", "old"), ("x-a", "older")],
            &["new"],
        ),
        (
            "default is override",
            r#"<set-header name="x-a"><value>new</value></set-header>"#,
            &[("x-a", "old")],
            &["new"],
        ),
        (
            "several values are joined",
            r#"<set-header name="x-a"><value>1</value><value>2</value></set-header>"#,
            &[],
            &["1,2"],
        ),
        (
            "skip keeps",
            r#"<set-header name="x-a" exists-action="skip"><value>new</value></set-header>"#,
            &[("x-a", "old")],
            &["old"],
        ),
        (
            "skip sets when absent",
            r#"<set-header name="x-a" exists-action="skip"><value>new</value></set-header>"#,
            &[],
            &["new"],
        ),
        (
            "append adds",
            r#"<set-header name="x-a" exists-action="append"><value>new</value></set-header>"#,
            &[("x-a", "old")],
            &["old", "new"],
        ),
        (
            "delete removes",
            r#"<set-header name="x-a" exists-action="delete"/>"#,
            &[("x-a", "old"), ("x-a", "o2")],
            &[],
        ),
        (
            "empty value",
            r#"<set-header name="x-a"><value/></set-header>"#,
            &[],
            &[""],
        ),
        ("no value", r#"<set-header name="x-a"/>"#, &[], &[""]),
        (
            "entities",
            r#"<set-header name="x-a"><value>a &amp; &lt;b&gt;</value></set-header>"#,
            &[],
            &["a & <b>"],
        ),
    ];
    for (name, body, initial, expected) in cases {
        let pipeline = compile_in("inbound", body).unwrap();
        let (_, state) = run_inbound(&pipeline, &Counters::new(), initial);
        assert_eq!(headers_all(&state.headers, "x-a"), *expected, "{name}");
    }
}

#[test]
fn headers_with_dates_or_commas_get_one_line_per_value() {
    let pipeline = compile_in(
        "outbound",
        r#"<set-header name="Set-Cookie"><value>a=1</value><value>b=2</value></set-header>"#,
    )
    .unwrap();
    let (_, response) = run_outbound(&pipeline, &[("set-cookie", "old=1")]);
    assert_eq!(headers_all(&response.headers, "set-cookie"), ["a=1", "b=2"]);
}

#[test]
fn sets_response_headers_in_outbound_and_on_error() {
    let pipeline = compile_in(
        "outbound",
        r#"<set-header name="server" exists-action="delete"/>"#,
    )
    .unwrap();
    let (_, response) = run_outbound(&pipeline, &[("server", "backend")]);
    assert!(response.headers.is_empty());
    compile_in(
        "on-error",
        r#"<set-header name="x"><value>1</value></set-header>"#,
    )
    .unwrap();
    compile_in(
        "backend",
        r#"<set-header name="x"><value>1</value></set-header>"#,
    )
    .unwrap();
}

#[test]
fn rejects_bad_set_header() {
    check_errors(&[
        ErrorCase {
            name: "missing name",
            section: "inbound",
            body: "<set-header><value>1</value></set-header>",
            at: "<set-header>",
            kind: ErrorKind::Missing,
            message: "missing required attribute `name`",
        },
        ErrorCase {
            name: "invalid name",
            section: "inbound",
            body: r#"<set-header name="a b"><value>1</value></set-header>"#,
            at: "name=",
            kind: ErrorKind::InvalidValue,
            message: "must be an HTTP header name",
        },
        ErrorCase {
            name: "protected header",
            section: "outbound",
            body: r#"<set-header name="Content-Length" exists-action="delete"/>"#,
            at: "name=",
            kind: ErrorKind::InvalidValue,
            message: "managed by the gateway",
        },
        ErrorCase {
            name: "bad exists-action",
            section: "inbound",
            body: r#"<set-header name="a" exists-action="replace"><value>1</value></set-header>"#,
            at: "exists-action",
            kind: ErrorKind::InvalidValue,
            message: "`override`, `skip`, `append` or `delete`, found `replace`",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: r#"<set-header name="a"><values>1</values></set-header>"#,
            at: "<values>",
            kind: ErrorKind::Structure,
            message: "unexpected element <values> inside <set-header>; expected <value>",
        },
        ErrorCase {
            name: "attribute on value",
            section: "inbound",
            body: r#"<set-header name="a"><value x="1">1</value></set-header>"#,
            at: "x=",
            kind: ErrorKind::UnknownAttribute,
            message: "<value>: unknown attribute `x`",
        },
        ErrorCase {
            name: "control character in value",
            section: "inbound",
            body: r#"<set-header name="a"><value>x&#1;y</value></set-header>"#,
            at: "x&#1;",
            kind: ErrorKind::InvalidValue,
            message: "not a valid header value",
        },
        ErrorCase {
            name: "text instead of value",
            section: "inbound",
            body: r#"<set-header name="a">1</set-header>"#,
            at: "1<",
            kind: ErrorKind::Structure,
            message: "unexpected text",
        },
    ]);
}
