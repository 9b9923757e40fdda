use crate::test_util::{
    ErrorCase, check_errors, compile_in, failed, header, run_inbound, run_outbound,
};
use crate::{Counters, ErrorKind, Flow};

const ON_TIER: &str = r#"<choose><when condition="@(context.Request.Headers.GetValueOrDefault("X-Tier","") == "gold")"><set-header name="X-Route" exists-action="override"><value>gold</value></set-header></when><when condition="@(context.Request.Headers.ContainsKey("X-Tier"))"><set-header name="X-Route" exists-action="override"><value>known</value></set-header></when><otherwise><set-header name="X-Route" exists-action="override"><value>other</value></set-header></otherwise></choose>"#;

#[test]
fn the_first_true_when_runs_else_otherwise() {
    let pipeline = compile_in("inbound", ON_TIER).unwrap();
    let counters = Counters::new();
    for (headers, expected) in [
        (&[("x-tier", "gold")][..], "gold"),
        (&[("x-tier", "silver")][..], "known"),
        (&[][..], "other"),
    ] {
        let (flow, state) = run_inbound(&pipeline, &counters, headers);
        assert_eq!(flow, Flow::Continue);
        assert_eq!(header(&state.headers, "x-route"), Some(expected), "{headers:?}");
    }
}

#[test]
fn without_otherwise_nothing_runs_when_no_condition_holds() {
    let pipeline = compile_in(
        "outbound",
        r#"<choose><when condition="@(context.Response.StatusCode >= 500)"><set-header name="X-Failed" exists-action="override"><value>yes</value></set-header></when></choose>"#,
    )
    .unwrap();
    let (flow, response) = run_outbound(&pipeline, &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&response.headers, "x-failed"), None);
}

#[test]
fn literal_conditions_and_nested_chooses() {
    let pipeline = compile_in(
        "inbound",
        r#"<choose><when condition="false"><return-response><set-status code="500" /></return-response></when><when condition="True"><choose><when condition="@(context.Request.Method == "GET")"><set-header name="X-Nested" exists-action="override"><value>1</value></set-header></when></choose></when></choose>"#,
    )
    .unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-nested"), Some("1"));
}

#[test]
fn a_branch_may_end_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<choose><when condition="@(!context.Request.Headers.ContainsKey("Authorization"))"><return-response><set-status code="401" reason="Unauthorized" /></return-response></when></choose><set-header name="X-After" exists-action="override"><value>1</value></set-header>"#,
    )
    .unwrap();
    let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
    let Flow::Respond(response) = flow else {
        panic!("expected a response, got {flow:?}")
    };
    assert_eq!(response.status.as_u16(), 401);
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[("authorization", "x")]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(header(&state.headers, "x-after"), Some("1"));
}

#[test]
fn a_condition_that_is_not_a_bool_fails_the_request_into_on_error() {
    let pipeline = compile_in(
        "inbound",
        r#"<choose><when condition="@(context.Request.Method)"><set-header name="X" exists-action="override"><value>1</value></set-header></when></choose>"#,
    )
    .unwrap();
    let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
    let failure = failed(flow);
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(failure.error.source, "choose");
    assert_eq!(failure.response.status.as_u16(), 500);
    assert!(failure.error.message.contains("string"), "{}", failure.error.message);
}

#[test]
fn malformed_chooses_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no when",
            section: "inbound",
            body: r"<choose><otherwise /></choose>",
            at: "<choose>",
            kind: ErrorKind::Structure,
            message: "at least one <when",
        },
        ErrorCase {
            name: "when after otherwise",
            section: "inbound",
            body: r#"<choose><otherwise /><when condition="true" /></choose>"#,
            at: "<when",
            kind: ErrorKind::Structure,
            message: "<when> must come before <otherwise>",
        },
        ErrorCase {
            name: "two otherwise",
            section: "inbound",
            body: r#"<choose><when condition="true" /><otherwise /><otherwise /></choose>"#,
            at: "<otherwise /></choose>",
            kind: ErrorKind::Structure,
            message: "",
        },
        ErrorCase {
            name: "other child",
            section: "inbound",
            body: r#"<choose><when condition="true" /><else /></choose>"#,
            at: "<else",
            kind: ErrorKind::Structure,
            message: "expected <when> or <otherwise>",
        },
        ErrorCase {
            name: "missing condition",
            section: "inbound",
            body: r"<choose><when /></choose>",
            at: "<when",
            kind: ErrorKind::Missing,
            message: "condition",
        },
        ErrorCase {
            name: "literal condition",
            section: "inbound",
            body: r#"<choose><when condition="yes" /></choose>"#,
            at: "condition=\"yes\"",
            kind: ErrorKind::InvalidValue,
            message: "must be a policy expression giving a bool",
        },
        ErrorCase {
            name: "a branch's policy in the wrong section",
            section: "outbound",
            body: r#"<choose><when condition="true"><rate-limit calls="1" renewal-period="1" /></when></choose>"#,
            at: "<rate-limit",
            kind: ErrorKind::WrongSection,
            message: "cannot be used in the `outbound` section",
        },
        ErrorCase {
            name: "a syntax error in a condition",
            section: "inbound",
            body: r#"<choose><when condition="@(context.Request.Method ==)" /></choose>"#,
            at: ")\"",
            kind: ErrorKind::InvalidValue,
            message: "policy expression:",
        },
    ]);
}

#[test]
fn forward_request_inside_a_branch_must_still_be_last() {
    let error = compile_in(
        "backend",
        r#"<choose><when condition="true"><forward-request /></when></choose><set-header name="X" exists-action="override"><value>1</value></set-header>"#,
    )
    .unwrap_err();
    assert!(error.message.contains("may follow <forward-request>"), "{error}");
}
