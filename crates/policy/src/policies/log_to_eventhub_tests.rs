use crate::test_util::{ErrorCase, check_errors, compile_in, run_inbound};
use crate::{CompileContext, Counters, ErrorKind, Flow, NamedValues, TraceSeverity, check};

#[test]
fn messages_go_to_the_local_log_sink_with_the_logger_and_partition() {
    let pipeline = compile_in(
        "inbound",
        r#"<log-to-eventhub logger-id="audit" partition-key="@(context.Request.Method)">@("called " + context.Request.Url.Path)</log-to-eventhub>"#,
    )
    .unwrap();
    let (flow, state) = run_inbound(&pipeline, &Counters::new(), &[]);
    assert_eq!(flow, Flow::Continue);
    let entry = &state.traces[0];
    assert_eq!(&*entry.source, "log-to-eventhub:audit");
    assert_eq!(entry.severity, TraceSeverity::Information);
    assert_eq!(entry.message, "called /");
    assert_eq!(entry.metadata, [("partition-key".to_owned(), "GET".to_owned())]);
}

#[test]
fn policy_check_warns_that_it_is_mapped_and_bad_ones_are_refused() {
    let named = NamedValues::new();
    let report = check(
        "audit.xml",
        r#"<policies><inbound><log-to-eventhub logger-id="audit">hello</log-to-eventhub></inbound></policies>"#,
        &CompileContext::new(&named),
    );
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].kind, ErrorKind::Mapped);
    assert!(report.problems[0].message.contains("gateway's log"), "{}", report.problems[0].message);
    check_errors(&[
        ErrorCase {
            name: "no logger",
            section: "inbound",
            body: r"<log-to-eventhub>x</log-to-eventhub>",
            at: "<log-to-eventhub",
            kind: ErrorKind::Missing,
            message: "`logger-id`",
        },
        ErrorCase {
            name: "both partitions",
            section: "outbound",
            body: r#"<log-to-eventhub logger-id="a" partition-id="1" partition-key="k">x</log-to-eventhub>"#,
            at: "partition-key",
            kind: ErrorKind::InvalidValue,
            message: "not both",
        },
    ]);
}
