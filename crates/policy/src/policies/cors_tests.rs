use http::{Method, StatusCode};

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, header, request, responded};
use crate::{Counters, ErrorKind, Flow, RequestState};

const POLICY: &str = r#"<cors allow-credentials="true">
    <allowed-origins><origin>http://localhost:8080/</origin><origin>https://App.Example.com</origin></allowed-origins>
    <allowed-methods preflight-result-max-age="300"><method>GET</method><method>PUT</method></allowed-methods>
    <allowed-headers><header>content-type</header><header>X-Custom</header></allowed-headers>
    <expose-headers><header>x-request-id</header><header>x-b</header></expose-headers>
</cors>"#;

fn run(policy: &str, method: Method, headers: &[(&str, &str)]) -> (Flow, RequestState) {
    let pipeline = compile_in("inbound", policy).unwrap();
    let mut state = request(method, "/", "", headers);
    let flow = pipeline.inbound(&facts(0), &Counters::new(), &mut state);
    (flow, state)
}

#[test]
fn answers_allowed_preflights() {
    let (flow, _) = run(
        POLICY,
        Method::OPTIONS,
        &[
            ("origin", "http://localhost:8080"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "Content-Type, x-custom"),
        ],
    );
    let response = responded(flow);
    assert_eq!(response.status, StatusCode::OK);
    let headers = &response.headers;
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some("http://localhost:8080")
    );
    assert_eq!(header(headers, "vary"), Some("Origin"));
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        Some("true")
    );
    assert_eq!(
        header(headers, "access-control-allow-methods"),
        Some("GET, PUT")
    );
    assert_eq!(
        header(headers, "access-control-allow-headers"),
        Some("content-type, x-custom")
    );
    assert_eq!(header(headers, "access-control-max-age"), Some("300"));
    assert!(response.body.is_empty());
}

#[test]
fn refuses_unmatched_preflights() {
    let cases: &[(&str, &[(&str, &str)])] = &[
        (
            "origin",
            &[
                ("origin", "http://evil.example"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "port",
            &[
                ("origin", "http://localhost:8081"),
                ("access-control-request-method", "GET"),
            ],
        ),
        (
            "method",
            &[
                ("origin", "http://localhost:8080"),
                ("access-control-request-method", "DELETE"),
            ],
        ),
        (
            "header",
            &[
                ("origin", "http://localhost:8080"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-other"),
            ],
        ),
    ];
    for (name, headers) in cases {
        let response = responded(run(POLICY, Method::OPTIONS, headers).0);
        assert_eq!(response.status, StatusCode::OK, "{name}");
        assert!(
            response.headers.is_empty(),
            "{name}: no CORS headers on a refusal"
        );
    }
}

#[test]
fn adds_headers_to_allowed_requests() {
    let (flow, state) = run(
        POLICY,
        Method::POST,
        &[("origin", "https://app.example.com")],
    );
    assert_eq!(flow, Flow::Continue);
    let headers = &state.response_headers;
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        header(headers, "access-control-expose-headers"),
        Some("x-request-id, x-b")
    );
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        Some("true")
    );

    let (flow, state) = run(POLICY, Method::GET, &[]);
    assert_eq!(flow, Flow::Continue, "no Origin: not a CORS request");
    assert!(state.response_headers.is_empty());
}

#[test]
fn unmatched_requests_end_or_continue_as_configured() {
    let response = responded(run(POLICY, Method::GET, &[("origin", "https://evil.example")]).0);
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.is_empty());

    let lenient = POLICY.replace(
        "allow-credentials=\"true\"",
        "terminate-unmatched-request=\"false\"",
    );
    let (flow, state) = run(&lenient, Method::GET, &[("origin", "https://evil.example")]);
    assert_eq!(flow, Flow::Continue);
    assert!(state.response_headers.is_empty());
}

#[test]
fn wildcards() {
    let any = r#"<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods><method>*</method></allowed-methods><allowed-headers><header>*</header></allowed-headers><expose-headers><header>*</header></expose-headers></cors>"#;
    let response = responded(
        run(
            any,
            Method::OPTIONS,
            &[
                ("origin", "https://x.example"),
                ("access-control-request-method", "PATCH"),
                ("access-control-request-headers", "x-a, x-b"),
            ],
        )
        .0,
    );
    assert_eq!(
        header(&response.headers, "access-control-allow-origin"),
        Some("*")
    );
    assert_eq!(header(&response.headers, "vary"), None);
    assert_eq!(
        header(&response.headers, "access-control-allow-methods"),
        Some("PATCH")
    );
    assert_eq!(
        header(&response.headers, "access-control-allow-headers"),
        Some("x-a, x-b")
    );
    assert_eq!(header(&response.headers, "access-control-max-age"), None);
    let (_, state) = run(any, Method::GET, &[("origin", "https://x.example")]);
    assert_eq!(
        header(&state.response_headers, "access-control-expose-headers"),
        Some("*")
    );

    let credentials = any.replace("<cors>", r#"<cors allow-credentials="true">"#);
    let (_, state) = run(
        &credentials,
        Method::GET,
        &[("origin", "https://x.example")],
    );
    assert_eq!(
        header(&state.response_headers, "access-control-allow-origin"),
        Some("https://x.example")
    );
    assert_eq!(header(&state.response_headers, "vary"), Some("Origin"));
}

#[test]
fn rejects_bad_cors() {
    check_errors(&[
        ErrorCase {
            name: "no origins",
            section: "inbound",
            body: "<cors/>",
            at: "<cors",
            kind: ErrorKind::Missing,
            message: "<allowed-origins>",
        },
        ErrorCase {
            name: "empty origins",
            section: "inbound",
            body: "<cors><allowed-origins/></cors>",
            at: "<allowed-origins",
            kind: ErrorKind::Missing,
            message: "needs at least one <origin>",
        },
        ErrorCase {
            name: "star with others",
            section: "inbound",
            body: "<cors><allowed-origins><origin>https://a.example</origin><origin>*</origin></allowed-origins></cors>",
            at: "*<",
            kind: ErrorKind::InvalidValue,
            message: "`*` must be the only <origin>",
        },
        ErrorCase {
            name: "bad origin",
            section: "inbound",
            body: "<cors><allowed-origins><origin>example.com</origin></allowed-origins></cors>",
            at: "example.com",
            kind: ErrorKind::InvalidValue,
            message: "is not an origin",
        },
        ErrorCase {
            name: "empty origin",
            section: "inbound",
            body: "<cors><allowed-origins><origin/></allowed-origins></cors>",
            at: "<origin/>",
            kind: ErrorKind::Missing,
            message: "<origin> must not be empty",
        },
        ErrorCase {
            name: "bad method",
            section: "inbound",
            body: "<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods><method>GE T</method></allowed-methods></cors>",
            at: "GE T",
            kind: ErrorKind::InvalidValue,
            message: "not an HTTP method",
        },
        ErrorCase {
            name: "bad header",
            section: "inbound",
            body: "<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-headers><header>a:b</header></allowed-headers></cors>",
            at: "a:b",
            kind: ErrorKind::InvalidValue,
            message: "not an HTTP header name",
        },
        ErrorCase {
            name: "bad max age",
            section: "inbound",
            body: r#"<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-methods preflight-result-max-age="-5"><method>GET</method></allowed-methods></cors>"#,
            at: "preflight-result-max-age",
            kind: ErrorKind::InvalidValue,
            message: "whole number",
        },
        ErrorCase {
            name: "duplicate list",
            section: "inbound",
            body: "<cors><allowed-origins><origin>*</origin></allowed-origins><allowed-origins><origin>*</origin></allowed-origins></cors>",
            at: "<allowed-origins><origin>*</origin></allowed-origins></cors>",
            kind: ErrorKind::Structure,
            message: "only once",
        },
        ErrorCase {
            name: "unknown child",
            section: "inbound",
            body: "<cors><allowed-origin><origin>*</origin></allowed-origin></cors>",
            at: "<allowed-origin>",
            kind: ErrorKind::Structure,
            message: "expected <allowed-origins>",
        },
        ErrorCase {
            name: "wrong item",
            section: "inbound",
            body: "<cors><allowed-origins><url>*</url></allowed-origins></cors>",
            at: "<url>",
            kind: ErrorKind::Structure,
            message: "expected <origin>",
        },
    ]);
}
