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
            &[("id", "4 2")],
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

/// Runs `<rewrite-uri template>` for operation `url_template` with decoded `params`
/// and request query `query`; the flow and the resulting (path, query).
fn rewrite(
    template: &str,
    url_template: &str,
    params: &[(&str, &str)],
    query: &str,
) -> (Flow, String, String) {
    let body = format!(r#"<rewrite-uri template="{template}"/>"#);
    let pipeline = compile(&body, url_template).unwrap();
    let mut state = request(Method::GET, "/old", query, &[]);
    let mut facts = facts(0);
    facts.route_params = params;
    let flow = pipeline.inbound(&facts, &Counters::new(), &mut state);
    (flow, state.path, state.query)
}

#[test]
fn values_are_encoded_for_where_they_land() {
    // Values arrive decoded from the router; none may add a segment, a query or a
    // fragment, whatever it holds.
    let cases: &[(&str, &str, &str)] = &[
        (
            "../../admin/secrets",
            "/public/items/..%2F..%2Fadmin%2Fsecrets",
            "k=..%2F..%2Fadmin%2Fsecrets",
        ),
        ("a?x=1", "/public/items/a%3Fx%3D1", "k=a%3Fx%3D1"),
        ("a#frag", "/public/items/a%23frag", "k=a%23frag"),
        ("a b", "/public/items/a%20b", "k=a%20b"),
        ("100%", "/public/items/100%25", "k=100%25"),
        ("a&b=c", "/public/items/a%26b%3Dc", "k=a%26b%3Dc"),
        ("a+b", "/public/items/a%2Bb", "k=a%2Bb"),
        ("é/ü", "/public/items/%C3%A9%2F%C3%BC", "k=%C3%A9%2F%C3%BC"),
        ("...", "/public/items/...", "k=..."),
    ];
    for (value, path, query) in cases {
        let (flow, new_path, new_query) = rewrite(
            "/public/items/{id}?k={id}",
            "/items/{id}",
            &[("id", value)],
            "",
        );
        assert_eq!(flow, Flow::Continue, "{value:?}");
        assert_eq!(
            (new_path.as_str(), new_query.as_str()),
            (*path, *query),
            "{value:?}"
        );
    }
}

#[test]
fn a_value_that_is_a_dot_segment_is_refused() {
    for value in [".", ".."] {
        let (flow, path, _) = rewrite("/public/{q}/x", "/items?q={q}", &[("q", value)], "q=..");
        let Flow::Fail(failure) = flow else {
            panic!("{value:?} was not refused: {flow:?}");
        };
        assert_eq!(failure.response.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(failure.error.reason, "InvalidUriParameter");
        assert_eq!(path, "/old", "nothing changed");
    }
    // In a catch-all, each piece is checked; `..` inside a segment is harmless.
    let (flow, ..) = rewrite(
        "/files/{*rest}",
        "/f/{*rest}",
        &[("rest", "a/../../etc")],
        "",
    );
    assert!(matches!(flow, Flow::Fail(_)), "{flow:?}");
    let (flow, path, _) = rewrite(
        "/files/{*rest}",
        "/f/{*rest}",
        &[("rest", "a/b..c/d e")],
        "",
    );
    assert_eq!(
        (flow, path.as_str()),
        (Flow::Continue, "/files/a/b..c/d%20e")
    );
    // Nor is `..` next to literal text in a segment.
    let (flow, path, _) = rewrite("/v/{id}.json", "/items/{id}", &[("id", "..")], "");
    assert_eq!((flow, path.as_str()), (Flow::Continue, "/v/...json"));
}

#[test]
fn query_parameters_the_template_matched_are_not_copied_again() {
    let (_, path, query) = rewrite("/put", "/get?a={b}", &[("b", "b")], "a=b&c=d");
    assert_eq!((path.as_str(), query.as_str()), ("/put", "c=d"));
    // Keys compare decoded and ignoring case, as the router matches them.
    let (_, _, query) = rewrite(
        "/put?x={b}",
        "/get?a={b}",
        &[("b", "1 2")],
        "%41=1+2&c=d&A=3",
    );
    assert_eq!(query, "x=1%202&c=d");
    // Literal query constraints are matched keys too.
    let (_, _, query) = rewrite("/put", "/get?mode=full", &[], "mode=full&c=d");
    assert_eq!(query, "c=d");
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
            "dot segment in the template",
            r#"<rewrite-uri template="/a/../b"/>"#,
            ErrorKind::InvalidValue,
            "`.` or `..` path segments",
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

#[test]
fn a_template_may_be_a_policy_expression_read_per_request() {
    let pipeline = compile(
        r#"<rewrite-uri template="@("/v2/" + context.Request.Headers.GetValueOrDefault("X-Tenant", "shared") + "/items/{id}?via=gw")" />"#,
        "/items/{id}",
    )
    .unwrap();
    let run = |tenant: &str, id: &str| {
        let params = [("id", id)];
        let facts = crate::RequestFacts {
            route_params: &params,
            ..facts(1)
        };
        let mut state = request(Method::GET, "/items/x", "keep=1", &[("x-tenant", tenant)]);
        let flow = pipeline.inbound(&facts, &Counters::new(), &mut state);
        (flow, state.path, state.query)
    };
    let (flow, path, query) = run("contoso", "42");
    assert_eq!(flow, Flow::Continue);
    assert_eq!(path, "/v2/contoso/items/42");
    assert_eq!(query, "via=gw&keep=1");
    // Parameter values are encoded as for a fixed template: no traversal.
    let (_, path, _) = run("contoso", "../../admin");
    assert_eq!(path, "/v2/contoso/items/..%2F..%2Fadmin");
    // A computed template that is not one fails the request, never the whole path.
    let (flow, path, _) = run("..", "42");
    let failure = crate::test_util::failed(flow);
    assert_eq!(failure.error.reason, "ExpressionValueEvaluationFailure");
    assert!(
        failure.error.message.contains("`.` or `..` path segments"),
        "{}",
        failure.error.message
    );
    assert_eq!(path, "/items/x", "unchanged");
    // An unknown parameter in a computed template too.
    let unknown = compile(r#"<rewrite-uri template="@("/{nope}")" />"#, "/items/{id}").unwrap();
    let mut state = request(Method::GET, "/items/1", "", &[]);
    let failure = crate::test_util::failed(unknown.inbound(&facts(1), &Counters::new(), &mut state));
    assert!(failure.error.message.contains("`{nope}` is not a parameter"));
}
