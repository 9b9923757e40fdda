use http::Method;

use crate::test_util::{
    ErrorCase, check_errors, compile_in, compile_xml_with, facts, failed, request, run_inbound,
};
use crate::{CompileContext, Counters, ErrorKind, Flow, NamedValues, SectionKind, TraceSeverity};

#[test]
fn traces_are_recorded_with_their_expressions_evaluated() {
    let pipeline = compile_in(
        "inbound",
        r#"<set-variable name="tier" value="gold" /><trace source="orders" severity="information"><message>@($"path {context.Request.Url.Path}")</message><metadata name="tier" value="@((string)context.Variables["tier"])" /><metadata name="fixed" value="1" /></trace><trace source="plain"><message>no expression</message></trace>"#,
    )
    .unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(state.traces.len(), 2);
    let first = &state.traces[0];
    assert_eq!(&*first.source, "orders");
    assert_eq!(first.severity, TraceSeverity::Information);
    assert_eq!(first.section, SectionKind::Inbound);
    assert_eq!(first.message, "path /");
    assert_eq!(
        first.metadata,
        [("tier".to_owned(), "gold".to_owned()), ("fixed".to_owned(), "1".to_owned())]
    );
    assert_eq!(state.traces[1].severity, TraceSeverity::Verbose, "the default");
}

#[test]
fn the_first_form_with_the_message_as_text_is_read() {
    let pipeline = compile_in(
        "inbound",
        r#"<trace source="OnError">On Error</trace><trace source="x">@("computed " + 1)</trace>"#,
    )
    .unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(flow, Flow::Continue);
    assert_eq!(state.traces[0].message.trim(), "On Error");
    assert_eq!(state.traces[1].message, "computed 1");
    // Not both forms at once.
    assert!(compile_in("inbound", r#"<trace source="x">text<message>m</message></trace>"#).is_err());
}

#[test]
fn secrets_are_not_traced_and_traces_are_bounded() {
    let mut named = NamedValues::new();
    named.insert("token", "s3cr3t", true);
    let pipeline = compile_xml_with(
        r#"<policies><inbound><trace source="t"><message>{{token}}</message><metadata name="k" value="@("{{token}}")" /></trace></inbound></policies>"#,
        &CompileContext::new(&named),
    )
    .unwrap();
    let mut state = request(Method::GET, "/", "", &[]);
    assert_eq!(pipeline.inbound(&facts(1), &Counters::new(), &mut state), Flow::Continue);
    assert_eq!(state.traces[0].message, "<secret>");
    assert_eq!(state.traces[0].metadata[0].1, "<secret>");

    let many = "<trace source=\"t\"><message>x</message></trace>".repeat(70);
    let pipeline = compile_in("inbound", &many).unwrap();
    let (_, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(state.traces.len(), 64);
    assert_eq!(state.traces_dropped, 6);
}

#[test]
fn a_failing_message_expression_fails_the_request() {
    let pipeline = compile_in(
        "inbound",
        r#"<trace source="t"><message>@((string)context.Variables["missing"])</message></trace>"#,
    )
    .unwrap();
    let (flow, _) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(failed(flow).error.reason, "ExpressionValueEvaluationFailure");
}

#[test]
fn bad_traces_are_refused_at_load() {
    check_errors(&[
        ErrorCase {
            name: "no source",
            section: "inbound",
            body: r"<trace><message>x</message></trace>",
            at: "<trace",
            kind: ErrorKind::Missing,
            message: "`source`",
        },
        ErrorCase {
            name: "no message",
            section: "inbound",
            body: r#"<trace source="t" />"#,
            at: "<trace",
            kind: ErrorKind::Missing,
            message: "<message>",
        },
        ErrorCase {
            name: "bad severity",
            section: "outbound",
            body: r#"<trace source="t" severity="debug"><message>x</message></trace>"#,
            at: "severity",
            kind: ErrorKind::InvalidValue,
            message: "`verbose`, `information` or `error`",
        },
        ErrorCase {
            name: "other child",
            section: "inbound",
            body: r#"<trace source="t"><message>x</message><note /></trace>"#,
            at: "<note",
            kind: ErrorKind::Structure,
            message: "<message> or <metadata>",
        },
    ]);
}
