use crate::test_util::{ErrorCase, check_errors, compile_in, compile_xml, in_section};
use crate::{ErrorKind, SectionKind};

#[test]
fn policies_are_only_allowed_in_their_sections() {
    let cases = [
        ErrorCase {
            name: "forward-request in inbound",
            section: "inbound",
            body: "<forward-request/>",
            at: "<forward-request",
            kind: ErrorKind::WrongSection,
            message: "cannot be used in the `inbound` section; it is allowed in: backend",
        },
        ErrorCase {
            name: "ip-filter in outbound",
            section: "outbound",
            body: r#"<ip-filter action="allow"><address>1.2.3.4</address></ip-filter>"#,
            at: "<ip-filter",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound",
        },
        ErrorCase {
            name: "cors in backend",
            section: "backend",
            body: "<cors><allowed-origins><origin>*</origin></allowed-origins></cors>",
            at: "<cors>",
            kind: ErrorKind::WrongSection,
            message: "`backend`",
        },
        ErrorCase {
            name: "set-query-parameter in outbound",
            section: "outbound",
            body: r#"<set-query-parameter name="a"><value>1</value></set-query-parameter>"#,
            at: "<set-query-parameter",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound, backend",
        },
        ErrorCase {
            name: "mock-response in backend",
            section: "backend",
            body: "<mock-response/>",
            at: "<mock-response",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound, outbound, on-error",
        },
        ErrorCase {
            name: "rate-limit-by-key in on-error",
            section: "on-error",
            body: r#"<rate-limit-by-key calls="1" renewal-period="1" counter-key="k"/>"#,
            at: "<rate-limit-by-key",
            kind: ErrorKind::WrongSection,
            message: "`on-error`",
        },
        ErrorCase {
            name: "nested policy in the wrong section",
            section: "outbound",
            body: r#"<limit-concurrency key="k" max-count="1"><rewrite-uri template="/x"/></limit-concurrency>"#,
            at: "<rewrite-uri",
            kind: ErrorKind::WrongSection,
            message: "allowed in: inbound",
        },
        ErrorCase {
            name: "set-status in inbound",
            section: "inbound",
            body: r#"<set-status code="200" reason="OK"/>"#,
            at: "<set-status",
            kind: ErrorKind::NotSupported,
            message: "put it inside <return-response>",
        },
        ErrorCase {
            name: "set-method in on-error",
            section: "on-error",
            body: "<set-method>GET</set-method>",
            at: "<set-method",
            kind: ErrorKind::NotSupported,
            message: "send-request",
        },
        ErrorCase {
            name: "policy after forward-request",
            section: "backend",
            body: r#"<forward-request/><set-header name="a"><value>b</value></set-header>"#,
            at: "<set-header",
            kind: ErrorKind::Structure,
            message: "no policy may follow <forward-request> (test:1:20)",
        },
        ErrorCase {
            name: "two forward-requests, one nested",
            section: "backend",
            body: r#"<limit-concurrency key="k" max-count="2"><forward-request/></limit-concurrency><forward-request timeout="5"/>"#,
            at: "<forward-request timeout",
            kind: ErrorKind::Structure,
            message: "move this policy to outbound",
        },
    ];
    check_errors(&cases);
}

#[test]
fn forward_request_may_be_nested_last() {
    compile_in(
        "backend",
        r#"<set-header name="a"><value>b</value></set-header><limit-concurrency key="k" max-count="2"><forward-request/></limit-concurrency>"#,
    )
    .unwrap();
}

#[test]
fn policy_expressions_are_rejected_with_their_position() {
    let cases = [
        ErrorCase {
            name: "expression in an attribute",
            section: "inbound",
            body: r#"<set-header name="@(context.Request.Headers.GetValueOrDefault("x",""))"><value>1</value></set-header>"#,
            at: "@(",
            kind: ErrorKind::NotSupported,
            message: "does not evaluate policy expressions in this value yet",
        },
        ErrorCase {
            name: "expression block in text",
            section: "outbound",
            body: r#"<set-header name="a"><value>@{ return a < b && c; }</value></set-header>"#,
            at: "a < b",
            kind: ErrorKind::InvalidValue,
            message: "`a` is not available in policy expressions",
        },
        ErrorCase {
            name: "mixed value",
            section: "inbound",
            body: r#"<set-header name="a"><value>Bearer @(x)</value></set-header>"#,
            at: "@(x)",
            kind: ErrorKind::NotSupported,
            message: "write the whole value as one expression",
        },
    ];
    check_errors(&cases);
}

#[test]
fn a_fragment_is_not_a_scopes_policy() {
    let error = compile_xml("<fragment><set-method>GET</set-method></fragment>").unwrap_err();
    assert_eq!(error.kind, ErrorKind::Structure);
    assert!(error.message.contains("include-fragment"), "{error}");
}

#[test]
fn an_empty_document_compiles_to_an_empty_pipeline() {
    let pipeline = compile_xml("<policies/>").unwrap();
    for section in SectionKind::ALL {
        assert!(pipeline.is_empty(section));
    }
}

#[test]
fn debug_lists_policies_by_section() {
    let pipeline = compile_xml(&in_section("inbound", "<set-method>POST</set-method>")).unwrap();
    let debug = format!("{pipeline:?}");
    assert!(debug.contains("<set-method> test:1:20"), "{debug}");
    assert!(!pipeline.is_empty(SectionKind::Inbound));
}
