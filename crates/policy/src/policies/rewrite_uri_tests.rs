use gatehouse_model::Operation;
use http::Method;

use super::template_parameters;
use crate::test_util::{ErrorCase, check_errors, compile_xml_with, facts, in_section, request};
use crate::{CompileContext, Counters, ErrorKind, Flow, NamedValues, Pipeline, PolicyError};

fn operation(url_template: &str) -> Operation {
    Operation {
        id: "op".to_owned(),
        display_name: None,
        method: "GET".to_owned(),
        url_template: url_template.to_owned(),
        policy: None,
        responses: Vec::new(),
    }
}

fn compile(body: &str, url_template: &str) -> Result<Pipeline, PolicyError> {
    let named = NamedValues::new();
    let operation = operation(url_template);
    let cx = CompileContext::new(&named).with_operation(&operation);
    compile_xml_with(&in_section("inbound", body), &cx)
}

#[test]
fn rewrites_path_and_query() {
    type Params = &'static [(&'static str, &'static str)];
    type Case = (
        &'static str,
        &'static str,
        &'static str,
        Params,
        &'static str,
        (&'static str, &'static str),
    );
    let cases: &[Case] = &[
        (
            "parameter",
            r#"<rewrite-uri template="/v2/{id}"/>"#,
            "/users/{id}",
            &[("id", "42")],
            "a=1",
            ("/v2/42", "a=1"),
        ),
        (
            "do not copy params",
            r#"<rewrite-uri template="/v2/{id}" copy-unmatched-params="false"/>"#,
            "/users/{id}",
            &[("id", "42")],
            "a=1",
            ("/v2/42", ""),
        ),
        (
            "template query first",
            r#"<rewrite-uri template="/x/{id}?view=full&amp;k={id}"/>"#,
            "/u/{id}",
            &[("id", "4%202")],
            "a=1",
            ("/x/4%202", "view=full&k=4%202&a=1"),
        ),
        (
            "leading slash added",
            r#"<rewrite-uri template="v2/{id}"/>"#,
            "/u/{id}",
            &[("id", "7")],
            "",
            ("/v2/7", ""),
        ),
        (
            "wildcard",
            r#"<rewrite-uri template="/files/{*rest}"/>"#,
            "/f/{*rest}",
            &[("rest", "a/b")],
            "",
            ("/files/a/b", ""),
        ),
        (
            "literal needing encoding",
            r#"<rewrite-uri template="/a b/ü"/>"#,
            "/",
            &[],
            "",
            ("/a%20b/%C3%BC", ""),
        ),
        (
            "missing value is empty",
            r#"<rewrite-uri template="/v/{id}"/>"#,
            "/{id}",
            &[],
            "",
            ("/v/", ""),
        ),
    ];
    for (name, body, url_template, params, query, (path, new_query)) in cases {
        let pipeline = compile(body, url_template).unwrap();
        let mut state = request(Method::GET, "/old", query, &[]);
        let mut facts = facts(0);
        facts.route_params = params;
        assert_eq!(
            pipeline.inbound(&facts, &Counters::new(), &mut state),
            Flow::Continue
        );
        assert_eq!(
            (state.path.as_str(), state.query.as_str()),
            (*path, *new_query),
            "{name}"
        );
    }
}

#[test]
fn rejects_bad_rewrite_uri() {
    let cases: &[(&str, &str, ErrorKind, &str)] = &[
        (
            "unknown parameter",
            r#"<rewrite-uri template="/v2/{userId}"/>"#,
            ErrorKind::InvalidValue,
            "`{userId}` is not a parameter of the operation's URL template `/users/{id}`",
        ),
        (
            "full URL",
            r#"<rewrite-uri template="http://x/y"/>"#,
            ErrorKind::InvalidValue,
            "set-backend-service",
        ),
        (
            "unclosed brace",
            r#"<rewrite-uri template="/v2/{id"/>"#,
            ErrorKind::InvalidValue,
            "without a matching",
        ),
        (
            "empty",
            r#"<rewrite-uri template=" "/>"#,
            ErrorKind::InvalidValue,
            "must not be empty",
        ),
        (
            "bad boolean",
            r#"<rewrite-uri template="/" copy-unmatched-params="no"/>"#,
            ErrorKind::InvalidValue,
            "`true` or `false`",
        ),
        (
            "missing template",
            r#"<rewrite-uri/>"#,
            ErrorKind::Missing,
            "`template`",
        ),
        (
            "children",
            r#"<rewrite-uri template="/"><x/></rewrite-uri>"#,
            ErrorKind::Structure,
            "takes no child elements",
        ),
    ];
    for (name, body, kind, message) in cases {
        let error = compile(body, "/users/{id}").unwrap_err();
        assert_eq!(error.kind, *kind, "{name}: {error}");
        assert!(error.message.contains(message), "{name}: {error}");
    }
    check_errors(&[ErrorCase {
        name: "parameter without an operation",
        section: "inbound",
        body: r#"<rewrite-uri template="/v2/{id}"/>"#,
        at: "template=",
        kind: ErrorKind::InvalidValue,
        message: "not compiled for an operation",
    }]);
}

#[test]
fn finds_template_parameters() {
    assert_eq!(
        template_parameters("/users/{id}/files/{*path}"),
        ["id", "path"]
    );
    assert_eq!(template_parameters("/*"), Vec::<&str>::new());
    assert_eq!(template_parameters("/{ a }/{b"), ["a"]);
}
