use http::Method;

use crate::test_util::{
    ErrorCase, check_errors, compile_in, compile_xml, facts, failed, header, request, run_inbound,
};
use crate::{Counters, ErrorKind, Flow, ResponseState, Value};

#[test]
fn variables_hold_text_or_an_expressions_value_for_later_policies() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="tier" value="gold" /><set-variable name="n" value="@(1 + 2)" /><set-variable name="mobile" value="@(context.Request.Headers.GetValueOrDefault("User-Agent","").Contains("Mobile"))" /><set-header name="X-Tier" exists-action="override"><value>@((string)context.Variables["tier"])</value></set-header><set-header name="X-N" exists-action="override"><value>@(context.Variables.GetValueOrDefault<int>("n") * 2)</value></set-header>"#,
    )
    .unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[("user-agent", "Mobile Safari")]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(state.variables.get("tier"), Some(&Value::string("gold")));
    assert_eq!(state.variables.get("n"), Some(&Value::Int(3)));
    assert_eq!(state.variables.get("mobile"), Some(&Value::Bool(true)));
    assert_eq!(header(&state.headers, "x-tier"), Some("gold"));
    assert_eq!(header(&state.headers, "x-n"), Some("6"));
}

#[test]
fn variables_set_in_inbound_are_read_in_outbound_and_a_later_set_replaces() {
    let pipeline = compile_xml(
        r#"<policies><inbound><set-variable name="v" value="1" /><set-variable name="v" value="2" /></inbound><outbound><set-header name="X-V" exists-action="override"><value>@(context.Variables["v"])</value></set-header></outbound></policies>"#,
    )
    .unwrap();
    let counters = Counters::new();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(pipeline.inbound(&facts(1), &counters, &mut state), Flow::Continue);
    let mut response = ResponseState::new(http::StatusCode::OK, http::HeaderMap::new());
    assert_eq!(
        pipeline.outbound(&facts(1), &counters, &mut state, &mut response),
        Flow::Continue
    );
    assert_eq!(header(&response.headers, "x-v"), Some("2"));
}

#[test]
fn reading_a_variable_that_is_not_set_fails_into_on_error() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="x" value="@(context.Variables["missing"])" />"#,
    )
    .unwrap();
    let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
    let failure = failed(flow);
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert_eq!(failure.error.source, "set-variable");
    assert!(failure.error.message.contains("missing"), "{}", failure.error.message);
    assert!(failure.error.message.contains("test:1:"), "{}", failure.error.message);
}

#[test]
fn bad_set_variables_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no name",
            section: "inbound",
            body: r#"<set-variable value="1" />"#,
            at: "<set-variable",
            kind: ErrorKind::Missing,
            message: "`name`",
        },
        ErrorCase {
            name: "no value",
            section: "inbound",
            body: r#"<set-variable name="a" />"#,
            at: "<set-variable",
            kind: ErrorKind::Missing,
            message: "`value`",
        },
        ErrorCase {
            name: "empty name",
            section: "inbound",
            body: r#"<set-variable name=" " value="1" />"#,
            at: "name=\" \"",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
        ErrorCase {
            name: "I/O is never available",
            section: "inbound",
            body: r#"<set-variable name="a" value="@(System.IO.File.ReadAllText("/etc/passwd"))" />"#,
            at: "System.IO",
            kind: ErrorKind::InvalidValue,
            message: "not available in policy expressions",
        },
        ErrorCase {
            name: "a type APIM has and Gatehouse not yet",
            section: "inbound",
            body: r#"<set-variable name="a" value="@(Regex.Escape("a.b"))" />"#,
            at: "Regex",
            kind: ErrorKind::NotSupported,
            message: "not available in policy expressions",
        },
    ]);
}
