use http::Method;

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, failed, header, request};
use crate::{Counters, ErrorKind, Flow};

#[test]
fn basic_credentials_replace_the_clients_authorization() {
    let pipeline = compile_in(
        "inbound",
        r#"<authentication-basic username="gateway" password="s3cret:with colon" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[("authorization", "Bearer client")]);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    // base64("gateway:s3cret:with colon")
    assert_eq!(
        header(&state.headers, "authorization"),
        Some("Basic Z2F0ZXdheTpzM2NyZXQ6d2l0aCBjb2xvbg==")
    );
    assert_eq!(state.headers.get_all("authorization").iter().count(), 1);
    assert!(state.headers["authorization"].is_sensitive());
    let shown = format!("{pipeline:?}");
    assert!(!shown.contains("s3cret") && !shown.contains("Z2F0ZXdh"), "{shown}");
}

#[test]
fn expressions_give_the_credentials_per_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<authentication-basic username="@(context.Request.Headers.GetValueOrDefault("X-User", "anonymous"))" password="@("p" + "w")" />"#,
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[("x-user", "alice")]);
    assert_eq!(
        pipeline.inbound(&facts(1), &Counters::new(), &mut state),
        Flow::Continue
    );
    // base64("alice:pw")
    assert_eq!(header(&state.headers, "authorization"), Some("Basic YWxpY2U6cHc="));
    // A computed username with a colon fails the request rather than send a
    // credential the backend would read differently.
    let mut state = request(Method::GET, "/", "", &[("x-user", "a:b")]);
    let failure = failed(pipeline.inbound(&facts(1), &Counters::new(), &mut state));
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(!failure.error.message.contains("pw"));
}

#[test]
fn bad_documents_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no password",
            section: "inbound",
            body: r#"<authentication-basic username="u" />"#,
            at: "<authentication-basic",
            kind: ErrorKind::Missing,
            message: "password",
        },
        ErrorCase {
            name: "colon in the username",
            section: "inbound",
            body: r#"<authentication-basic username="a:b" password="p" />"#,
            at: "username",
            kind: ErrorKind::InvalidValue,
            message: "must not contain `:`",
        },
        ErrorCase {
            name: "outbound",
            section: "outbound",
            body: r#"<authentication-basic username="u" password="p" />"#,
            at: "<authentication-basic",
            kind: ErrorKind::WrongSection,
            message: "inbound",
        },
    ]);
}
