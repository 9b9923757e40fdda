use std::time::Duration;

use gatehouse_model::Backend;

use crate::test_util::{ErrorCase, check_errors, compile_xml_with, in_section};
use crate::{CompileContext, Counters, ErrorKind, NamedValues};

fn backends() -> Vec<Backend> {
    vec![
        Backend {
            id: "orders".to_owned(),
            url: "http://orders.internal:8080/api".to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(300),
            tls: gatehouse_model::BackendTls::default(),
        },
        Backend {
            id: "socket".to_owned(),
            url: "ws://socket.internal:9000/feed".to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(300),
            tls: gatehouse_model::BackendTls::default(),
        },
    ]
}

#[test]
fn chooses_a_backend() {
    let named = NamedValues::new();
    let backends = backends();
    let cx = CompileContext::new(&named).with_backends(&backends);
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        (
            "base-url",
            r#"<set-backend-service base-url="https://v2.example.com/base"/>"#,
            "https://v2.example.com/base",
            None,
        ),
        (
            "backend-id",
            r#"<set-backend-service backend-id="orders"/>"#,
            "http://orders.internal:8080/api",
            Some("orders"),
        ),
        // WebSocket backends: their handshake is an HTTP/1.1 request.
        (
            "ws base-url",
            r#"<set-backend-service base-url="wss://v2.example.com/socket"/>"#,
            "https://v2.example.com/socket",
            None,
        ),
        (
            "ws backend-id",
            r#"<set-backend-service backend-id="socket"/>"#,
            "http://socket.internal:9000/feed",
            Some("socket"),
        ),
    ];
    for (name, body, url, id) in cases {
        for section in ["inbound", "backend"] {
            let pipeline = compile_xml_with(&in_section(section, body), &cx).unwrap();
            let mut state = crate::test_util::request(http::Method::GET, "/", "", &[]);
            let counters = Counters::new();
            let facts = crate::test_util::facts(0);
            if section == "inbound" {
                pipeline.inbound(&facts, &counters, &mut state);
            } else {
                pipeline.backend(&facts, &counters, &mut state);
            }
            let target = state.backend.expect(name);
            assert_eq!(target.url.as_str(), *url, "{name}");
            assert_eq!(target.backend_id.as_deref(), *id, "{name}");
        }
    }
}

#[test]
fn rejects_bad_set_backend_service() {
    check_errors(&[
        ErrorCase {
            name: "neither",
            section: "inbound",
            body: "<set-backend-service/>",
            at: "<set-backend",
            kind: ErrorKind::Missing,
            message: "one of `base-url` or `backend-id`",
        },
        ErrorCase {
            name: "both",
            section: "inbound",
            body: r#"<set-backend-service base-url="http://a" backend-id="b"/>"#,
            at: "backend-id",
            kind: ErrorKind::InvalidValue,
            message: "not both",
        },
        ErrorCase {
            name: "unknown backend",
            section: "inbound",
            body: r#"<set-backend-service backend-id="nope"/>"#,
            at: "backend-id",
            kind: ErrorKind::InvalidValue,
            message: "unknown backend `nope`; add it under `backends` (no backends are configured)",
        },
        ErrorCase {
            name: "relative url",
            section: "inbound",
            body: r#"<set-backend-service base-url="/api"/>"#,
            at: "base-url",
            kind: ErrorKind::InvalidValue,
            message: "is not an absolute URL",
        },
        ErrorCase {
            name: "wrong scheme",
            section: "inbound",
            body: r#"<set-backend-service base-url="ftp://x/"/>"#,
            at: "base-url",
            kind: ErrorKind::InvalidValue,
            message: "http or https",
        },
        ErrorCase {
            name: "query",
            section: "inbound",
            body: r#"<set-backend-service base-url="http://x/?a=1"/>"#,
            at: "base-url",
            kind: ErrorKind::InvalidValue,
            message: "query or fragment",
        },
        ErrorCase {
            name: "service fabric",
            section: "inbound",
            body: r#"<set-backend-service backend-id="x" sf-partition-key="1"/>"#,
            at: "sf-partition-key",
            kind: ErrorKind::NotSupported,
            message: "Service Fabric",
        },
        ErrorCase {
            name: "dapr",
            section: "inbound",
            body: r#"<set-backend-service backend-id="dapr" dapr-app-id="echo" dapr-method="back"/>"#,
            at: "dapr-app-id",
            kind: ErrorKind::NotSupported,
            message: "Dapr",
        },
        ErrorCase {
            name: "dapr id alone",
            section: "inbound",
            body: r#"<set-backend-service backend-id="dapr"/>"#,
            at: "backend-id",
            kind: ErrorKind::NotSupported,
            message: "Dapr backends",
        },
    ]);
    let named = NamedValues::new();
    let backends = backends();
    let cx = CompileContext::new(&named).with_backends(&backends);
    let error = compile_xml_with(
        &in_section("inbound", r#"<set-backend-service backend-id="x"/>"#),
        &cx,
    )
    .unwrap_err();
    assert!(
        error
            .message
            .contains("configured backends: orders, socket"),
        "{error}"
    );
}

#[test]
fn a_base_url_expression_picks_the_backend_per_request() {
    let pipeline = crate::test_util::compile_in(
        "inbound",
        r#"<set-backend-service base-url="@(context.Request.Headers.GetValueOrDefault("X-Region", "eu") == "us" ? "https://us.example.com/api" : "https://eu.example.com/api")" />"#,
    )
    .unwrap();
    let counters = crate::Counters::new();
    for (region, expected) in [("us", "https://us.example.com/api"), ("eu", "https://eu.example.com/api")] {
        let (flow, state) =
            crate::test_util::run_inbound(&pipeline, &counters, &[("x-region", region)]);
        assert_eq!(flow, crate::Flow::Continue);
        assert_eq!(state.backend.unwrap().url.as_str(), expected);
    }
    let pipeline = crate::test_util::compile_in(
        "inbound",
        r#"<set-backend-service base-url="@(context.Request.Headers.GetValueOrDefault("X-Target", ""))" />"#,
    )
    .unwrap();
    let (flow, _) =
        crate::test_util::run_inbound(&pipeline, &counters, &[("x-target", "ftp://files.example.com")]);
    let failure = crate::test_util::failed(flow);
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(!failure.error.message.contains("files.example.com"), "{}", failure.error.message);
}
