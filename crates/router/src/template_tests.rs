use super::*;

fn capture(template: &str, path: &str) -> Option<Vec<(String, String)>> {
    let template = Template::parse(template).unwrap();
    template.capture(path, PathCase::Insensitive).map(|params| {
        params
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
    })
}

fn pairs(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
    Some(
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    )
}

/// (name, template, request path, expected parameters or `None` for no match).
type CaptureCase<'a> = (&'a str, &'a str, &'a str, Option<&'a [(&'a str, &'a str)]>);

#[test]
fn templates_match_paths_and_capture_decoded_values() {
    let cases: &[CaptureCase<'_>] = &[
        ("root", "/", "/", Some(&[])),
        ("root matches empty", "/", "", Some(&[])),
        ("literal", "/users", "/users", Some(&[])),
        ("literal ignores case", "/users", "/USERS", Some(&[])),
        ("trailing slash in path", "/users", "/users/", Some(&[])),
        ("trailing slash in template", "/users/", "/users", Some(&[])),
        ("literal too short", "/users/all", "/users", None),
        ("literal too long", "/users", "/users/all", None),
        ("param", "/users/{id}", "/users/42", Some(&[("id", "42")])),
        ("param needs a byte", "/users/{id}", "/users/", None),
        (
            "param decoded",
            "/users/{id}",
            "/users/a%20b",
            Some(&[("id", "a b")]),
        ),
        (
            "encoded slash stays in segment",
            "/users/{id}",
            "/users/a%2Fb",
            Some(&[("id", "a/b")]),
        ),
        (
            "param keeps case",
            "/users/{id}",
            "/users/AbC",
            Some(&[("id", "AbC")]),
        ),
        (
            "invalid utf-8",
            "/users/{id}",
            "/users/%FF",
            Some(&[("id", "\u{fffd}")]),
        ),
        (
            "two params",
            "/a/{x}/b/{y}",
            "/a/1/b/2",
            Some(&[("x", "1"), ("y", "2")]),
        ),
        (
            "suffix pattern",
            "/files/{name}.json",
            "/files/report.json",
            Some(&[("name", "report")]),
        ),
        (
            "suffix pattern ignores case",
            "/files/{name}.json",
            "/files/report.JSON",
            Some(&[("name", "report")]),
        ),
        (
            "suffix pattern needs a name",
            "/files/{name}.json",
            "/files/.json",
            None,
        ),
        (
            "suffix pattern wrong suffix",
            "/files/{name}.json",
            "/files/report.xml",
            None,
        ),
        (
            "prefix pattern",
            "/v{version}/x",
            "/v2/x",
            Some(&[("version", "2")]),
        ),
        (
            "pattern splits right to left",
            "/f/{name}.{ext}",
            "/f/a.b.json",
            Some(&[("name", "a.b"), ("ext", "json")]),
        ),
        (
            "pattern with three params",
            "/d/{y}-{m}-{d}",
            "/d/2024-01-31",
            Some(&[("y", "2024"), ("m", "01"), ("d", "31")]),
        ),
        (
            "pattern needs every param",
            "/d/{y}-{m}-{d}",
            "/d/2024--31",
            None,
        ),
        (
            "pattern with affixes",
            "/x/a{p}b",
            "/x/a1b",
            Some(&[("p", "1")]),
        ),
        ("pattern affixes overlap", "/x/a{p}b", "/x/ab", None),
        (
            "pattern decoded before split",
            "/files/{name}.json",
            "/files/a%20b%2Ejson",
            Some(&[("name", "a b")]),
        ),
        (
            "catch-all",
            "/files/{*path}",
            "/files/a/b/c",
            Some(&[("path", "a/b/c")]),
        ),
        (
            "catch-all keeps trailing slash",
            "/files/{*path}",
            "/files/a/b/",
            Some(&[("path", "a/b/")]),
        ),
        (
            "catch-all matches nothing",
            "/files/{*path}",
            "/files",
            Some(&[("path", "")]),
        ),
        (
            "catch-all decoded",
            "/files/{*path}",
            "/files/a%20b/c",
            Some(&[("path", "a b/c")]),
        ),
        (
            "catch-all prefix mismatch",
            "/files/{*path}",
            "/other/a",
            None,
        ),
        ("star", "/*", "/anything/at/all", Some(&[])),
        ("star matches root", "/*", "/", Some(&[])),
        (
            "query param",
            "/search?q={q}",
            "/search?q=rust+lang",
            Some(&[("q", "rust lang")]),
        ),
        ("query param required", "/search?q={q}", "/search?x=1", None),
        (
            "query param may be empty",
            "/search?q={q}",
            "/search?q=",
            Some(&[("q", "")]),
        ),
        (
            "query param without value",
            "/search?q={q}",
            "/search?q",
            Some(&[("q", "")]),
        ),
        (
            "query param key ignores case",
            "/search?q={q}",
            "/search?Q=1",
            Some(&[("q", "1")]),
        ),
        (
            "query param key decoded",
            "/search?q={q}",
            "/search?%71=1",
            Some(&[("q", "1")]),
        ),
        (
            "query literal",
            "/s?type=user&q={q}",
            "/s?q=1&type=user",
            Some(&[("q", "1")]),
        ),
        (
            "query literal mismatch",
            "/s?type=user&q={q}",
            "/s?q=1&type=group",
            None,
        ),
        (
            "query literal any of repeated",
            "/s?type=user",
            "/s?type=a&type=user",
            Some(&[]),
        ),
        (
            "path and query params in order",
            "/u/{id}?f={f}",
            "/u/7?f=x",
            Some(&[("id", "7"), ("f", "x")]),
        ),
        ("empty segment is not a param", "/a/{x}/b", "/a//b", None),
    ];
    for (name, template, path, expected) in cases {
        assert_eq!(
            capture(template, path),
            expected.and_then(pairs),
            "{name}: {template} vs {path}"
        );
    }
}

#[test]
fn case_sensitive_templates_tell_case_apart() {
    let template = Template::parse("/users/{id}.json?Key={k}").unwrap();
    assert!(
        template
            .capture("/users/1.json?Key=1", PathCase::Sensitive)
            .is_some()
    );
    assert!(
        template
            .capture("/Users/1.json?Key=1", PathCase::Sensitive)
            .is_none()
    );
    assert!(
        template
            .capture("/users/1.JSON?Key=1", PathCase::Sensitive)
            .is_none()
    );
    assert!(
        template
            .capture("/users/1.json?key=1", PathCase::Sensitive)
            .is_none()
    );
}

#[test]
fn invalid_templates_are_rejected_with_the_reason() {
    let cases: &[(&str, TemplateError)] = &[
        ("/users/{id", TemplateError::UnbalancedBrace { position: 7 }),
        ("/users/id}", TemplateError::UnbalancedBrace { position: 9 }),
        ("/a/{x{y}}", TemplateError::UnbalancedBrace { position: 3 }),
        (
            "/{}",
            TemplateError::InvalidParamName {
                name: String::new(),
            },
        ),
        (
            "/{a b}",
            TemplateError::InvalidParamName { name: "a b".into() },
        ),
        ("/{a/b}", TemplateError::UnbalancedBrace { position: 1 }),
        (
            "/{*}",
            TemplateError::InvalidParamName {
                name: String::new(),
            },
        ),
        (
            "/{id}/{ID}",
            TemplateError::DuplicateParam { name: "ID".into() },
        ),
        (
            "/{id}?id={id}",
            TemplateError::DuplicateParam { name: "id".into() },
        ),
        ("/{*rest}/x", TemplateError::CatchAllNotLast),
        ("/*/x", TemplateError::CatchAllNotLast),
        ("/a{*rest}", TemplateError::CatchAllInSegment),
        (
            "/{a}{b}",
            TemplateError::AdjacentParams {
                segment: "{a}{b}".into(),
            },
        ),
        ("/a//b", TemplateError::EmptySegment { position: 3 }),
        ("/a#frag", TemplateError::Fragment { position: 2 }),
        (
            "/s?q",
            TemplateError::InvalidQuery {
                part: "q".into(),
                reason: "expected `name={param}` or `name=value`",
            },
        ),
        (
            "/s?{q}=1",
            TemplateError::InvalidQuery {
                part: "{q}=1".into(),
                reason: "the name before `=` is literal text, e.g. `q={query}`",
            },
        ),
        (
            "/s?q=a{b}",
            TemplateError::InvalidQuery {
                part: "q=a{b}".into(),
                reason: "a query value is either one `{param}` or literal text",
            },
        ),
        (
            "/s?q={*b}",
            TemplateError::InvalidQuery {
                part: "q={*b}".into(),
                reason: "a catch-all has no meaning in the query",
            },
        ),
        (
            "/s?q={a}&Q={b}",
            TemplateError::InvalidQuery {
                part: "Q={b}".into(),
                reason: "this query name appears twice",
            },
        ),
        (
            "/s?a={a}&&b={b}",
            TemplateError::InvalidQuery {
                part: String::new(),
                reason: "expected `name={param}` or `name=value`",
            },
        ),
    ];
    for (template, expected) in cases {
        assert_eq!(
            Template::parse(template).err().as_ref(),
            Some(expected),
            "{template}"
        );
    }
}

#[test]
fn templates_with_too_many_segments_are_rejected() {
    let ok = "/a".repeat(MAX_TEMPLATE_SEGMENTS);
    assert!(Template::parse(&ok).is_ok());
    let too_long = "/a".repeat(MAX_TEMPLATE_SEGMENTS + 1);
    assert_eq!(
        Template::parse(&too_long).err(),
        Some(TemplateError::TooManySegments {
            max: MAX_TEMPLATE_SEGMENTS
        })
    );
}

#[test]
fn template_exposes_its_parameter_names_in_capture_order() {
    let template = Template::parse("/u/{id}/f/{name}.{ext}/{*rest}?q={query}&type=x").unwrap();
    assert_eq!(
        template.params().collect::<Vec<_>>(),
        ["id", "name", "ext", "rest", "query"]
    );
    assert_eq!(
        template.path_params().collect::<Vec<_>>(),
        ["id", "name", "ext", "rest"]
    );
    assert_eq!(template.query_params().collect::<Vec<_>>(), ["query"]);
    assert!(template.has_catch_all());
    assert_eq!(
        template.to_string(),
        "/u/{id}/f/{name}.{ext}/{*rest}?q={query}&type=x"
    );
}

#[test]
fn templates_that_match_the_same_requests_have_the_same_shape() {
    let same = [
        ("/users/{id}", "/users/{userId}"),
        ("/users/", "/users"),
        ("users", "/users"),
        ("/Users", "/users"),
        ("/%75sers", "/users"),
        ("/*", "/{*rest}"),
        ("/f/{a}.json", "/f/{b}.JSON"),
        ("/s?a={a}&b=1", "/s?b=1&a={x}"),
    ];
    for (a, b) in same {
        let (a_shape, b_shape) = (
            Template::parse(a).unwrap().shape(true),
            Template::parse(b).unwrap().shape(true),
        );
        assert_eq!(a_shape, b_shape, "{a} vs {b}");
    }
    let different = [
        ("/users/{id}", "/users/{id}/x"),
        ("/users/{id}", "/users/{*id}"),
        ("/users/{id}", "/users/id"),
        ("/f/{a}.json", "/f/{a}.xml"),
        ("/s?a={a}", "/s?a=1"),
        ("/s", "/s?a={a}"),
    ];
    for (a, b) in different {
        let (a_shape, b_shape) = (
            Template::parse(a).unwrap().shape(true),
            Template::parse(b).unwrap().shape(true),
        );
        assert_ne!(a_shape, b_shape, "{a} vs {b}");
    }
    assert_ne!(
        Template::parse("/Users").unwrap().shape(false),
        Template::parse("/users").unwrap().shape(false)
    );
}
