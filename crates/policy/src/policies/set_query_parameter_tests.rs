use http::Method;

use crate::test_util::{ErrorCase, check_errors, compile_in, facts, request};
use crate::{Counters, ErrorKind, Flow};

fn apply(body: &str, query: &str) -> String {
    let pipeline = compile_in("inbound", body).unwrap();
    let mut state = request(Method::GET, "/", query, &[]);
    assert_eq!(
        pipeline.inbound(&facts(0), &Counters::new(), &mut state),
        Flow::Continue
    );
    state.query
}

#[test]
fn edits_the_query_string() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "override replaces all",
            r#"<set-query-parameter name="a" exists-action="override"><value>9</value></set-query-parameter>"#,
            "a=1&b=2&a=3",
            "b=2&a=9",
        ),
        (
            "adds when absent",
            r#"<set-query-parameter name="api-key"><value>k 1&amp;2</value></set-query-parameter>"#,
            "",
            "api-key=k+1%262",
        ),
        (
            "skip keeps",
            r#"<set-query-parameter name="a" exists-action="skip"><value>9</value></set-query-parameter>"#,
            "a=1",
            "a=1",
        ),
        (
            "skip adds",
            r#"<set-query-parameter name="a" exists-action="skip"><value>9</value></set-query-parameter>"#,
            "b=1",
            "b=1&a=9",
        ),
        (
            "append",
            r#"<set-query-parameter name="a" exists-action="append"><value>9</value><value>8</value></set-query-parameter>"#,
            "a=1",
            "a=1&a=9&a=8",
        ),
        (
            "delete",
            r#"<set-query-parameter name="a" exists-action="delete"/>"#,
            "a=1&b=2&a",
            "b=2",
        ),
        (
            "matches encoded names",
            r#"<set-query-parameter name="a b" exists-action="delete"/>"#,
            "a+b=1&a%20b=2&c=3",
            "c=3",
        ),
        (
            "empty pairs are dropped",
            r#"<set-query-parameter name="z"><value>1</value></set-query-parameter>"#,
            "&&x=1&",
            "x=1&z=1",
        ),
    ];
    for (name, body, query, expected) in cases {
        assert_eq!(apply(body, query), *expected, "{name}");
    }
}

#[test]
fn rejects_bad_set_query_parameter() {
    check_errors(&[
        ErrorCase {
            name: "missing value",
            section: "inbound",
            body: r#"<set-query-parameter name="a"/>"#,
            at: "<set-query",
            kind: ErrorKind::Missing,
            message: "at least one <value>",
        },
        ErrorCase {
            name: "missing name",
            section: "backend",
            body: r#"<set-query-parameter><value>1</value></set-query-parameter>"#,
            at: "<set-query",
            kind: ErrorKind::Missing,
            message: "`name`",
        },
        ErrorCase {
            name: "empty name",
            section: "inbound",
            body: r#"<set-query-parameter name=""><value>1</value></set-query-parameter>"#,
            at: "name=",
            kind: ErrorKind::InvalidValue,
            message: "must not be empty",
        },
        ErrorCase {
            name: "bad action",
            section: "inbound",
            body: r#"<set-query-parameter name="a" exists-action="x"><value>1</value></set-query-parameter>"#,
            at: "exists-action",
            kind: ErrorKind::InvalidValue,
            message: "exists-action",
        },
    ]);
}

#[test]
fn expression_values_are_evaluated_and_encoded_per_request() {
    let pipeline = crate::test_util::compile_in(
        "inbound",
        r#"<set-query-parameter name="tenant" exists-action="override"><value>@(context.Request.Headers.GetValueOrDefault("X-Tenant", "none") + " & co")</value></set-query-parameter>"#,
    )
    .unwrap();
    let (flow, state) = crate::test_util::run_inbound(
        &pipeline,
        &crate::Counters::new(),
        &[("x-tenant", "contoso")],
    );
    assert_eq!(flow, crate::Flow::Continue);
    assert_eq!(state.query, "tenant=contoso+%26+co");
}
