use http::Method;

use crate::test_util::{ErrorCase, check_errors, compile_in, run_inbound};
use crate::{Counters, ErrorKind};

#[test]
fn sets_the_method() {
    for (text, method) in [
        ("POST", Method::POST),
        (" PATCH ", Method::PATCH),
        ("PURGE", Method::from_bytes(b"PURGE").unwrap()),
    ] {
        let pipeline = compile_in("inbound", &format!("<set-method>{text}</set-method>")).unwrap();
        let (_, state) = run_inbound(&pipeline, &Counters::new(), &[]);
        assert_eq!(state.method, method, "{text}");
    }
}

#[test]
fn rejects_bad_set_method() {
    check_errors(&[
        ErrorCase {
            name: "empty",
            section: "inbound",
            body: "<set-method/>",
            at: "<set-method",
            kind: ErrorKind::Missing,
            message: "the method is missing",
        },
        ErrorCase {
            name: "not a method",
            section: "inbound",
            body: "<set-method>GET POST</set-method>",
            at: "GET POST",
            kind: ErrorKind::InvalidValue,
            message: "`GET POST` is not an HTTP method",
        },
        ErrorCase {
            name: "attribute",
            section: "inbound",
            body: r#"<set-method value="GET"/>"#,
            at: "value",
            kind: ErrorKind::UnknownAttribute,
            message: "unknown attribute `value`",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: "<set-method>GET</set-method>",
            at: "<set-method",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound, on-error",
        },
    ]);
}
