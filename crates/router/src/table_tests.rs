use http::Method;

use super::*;
use crate::{OperationSpec, PathCase, TemplateError};

/// What a case expects: `Op(api, operation, params)` or one of the misses.
#[derive(Debug)]
enum Expect {
    Op(usize, usize, &'static [(&'static str, &'static str)]),
    ApiNotFound,
    OperationNotFound(usize),
    MethodMismatch(usize),
}

fn check(router: &Router, cases: &[(&str, Option<&str>, Method, &str, Expect)]) {
    for (name, host, method, path, expected) in cases {
        let actual = router.route(*host, method, path);
        match (expected, &actual) {
            (Expect::Op(api, operation, params), RouteMatch::Matched(route)) => {
                assert_eq!((route.api, route.operation), (*api, *operation), "{name}");
                let actual: Vec<(&str, &str)> = route.params.iter().collect();
                assert_eq!(&actual, params, "{name}");
            }
            (Expect::ApiNotFound, RouteMatch::ApiNotFound) => {}
            (Expect::OperationNotFound(api), RouteMatch::OperationNotFound { api: actual })
            | (Expect::MethodMismatch(api), RouteMatch::MethodMismatch { api: actual }) => {
                assert_eq!(api, actual, "{name}");
            }
            _ => panic!("{name}: expected {expected:?}, got {actual:?}"),
        }
    }
}

fn sample() -> Router {
    Router::build([
        ApiSpec::new(0, "echo", "echo")
            .operation("root", "GET", "/")
            .operation("list", "GET", "/users")
            .operation("get", "GET", "/users/{id}")
            .operation("me", "GET", "/users/me")
            .operation("create", "POST", "/users")
            .operation("files", "*", "/files/{*path}")
            .operation("json", "GET", "/files/{name}.json")
            .operation("search-q", "GET", "/search?q={q}")
            .operation("search", "GET", "/search"),
        ApiSpec::new(1, "echo-v2", "/echo/v2/").operation("all", "GET", "/*"),
        ApiSpec::new(2, "root-on-host", "")
            .hostname("root.example.com")
            .operation("health", "GET", "/health"),
        ApiSpec::new(3, "wild", "echo")
            .hostname("*.example.com")
            .operation("list", "GET", "/users"),
        ApiSpec::new(4, "exact", "echo")
            .hostname("api.example.com")
            .operation("list", "GET", "/users"),
        ApiSpec::new(5, "spec", "spec")
            .operation("a-x-c", "GET", "/a/{x}/c")
            .operation("y-b-c", "GET", "/{y}/b/c")
            .operation("rest", "GET", "/{*rest}")
            .operation("a-x-rest", "GET", "/a/{x}/{*rest}"),
        ApiSpec::new(6, "query", "q")
            .operation("plain", "GET", "/s")
            .operation("with-q", "*", "/s?q={q}"),
    ])
    .unwrap()
}

#[test]
fn requests_route_to_the_most_specific_api_and_operation() {
    use Expect::*;
    let cases = [
        ("api root", None, Method::GET, "/echo", Op(0, 0, &[])),
        (
            "api root with slash",
            None,
            Method::GET,
            "/echo/",
            Op(0, 0, &[]),
        ),
        ("literal", None, Method::GET, "/echo/users", Op(0, 1, &[])),
        (
            "trailing slash ignored",
            None,
            Method::GET,
            "/echo/users/",
            Op(0, 1, &[]),
        ),
        (
            "param",
            None,
            Method::GET,
            "/echo/users/42",
            Op(0, 2, &[("id", "42")]),
        ),
        (
            "literal beats param",
            None,
            Method::GET,
            "/echo/users/me",
            Op(0, 3, &[]),
        ),
        (
            "paths ignore case",
            None,
            Method::GET,
            "/ECHO/Users/ME",
            Op(0, 3, &[]),
        ),
        (
            "literals compare decoded",
            None,
            Method::GET,
            "/%65cho/users/%6De",
            Op(0, 3, &[]),
        ),
        (
            "encoded slash stays in param",
            None,
            Method::GET,
            "/echo/users/a%2Fb",
            Op(0, 2, &[("id", "a/b")]),
        ),
        (
            "method picks operation",
            None,
            Method::POST,
            "/echo/users",
            Op(0, 4, &[]),
        ),
        (
            "path matches but method does not",
            None,
            Method::PUT,
            "/echo/users",
            MethodMismatch(0),
        ),
        (
            "param matches but method does not",
            None,
            Method::DELETE,
            "/echo/users/42",
            MethodMismatch(0),
        ),
        (
            "catch-all",
            None,
            Method::GET,
            "/echo/files/a/b",
            Op(0, 5, &[("path", "a/b")]),
        ),
        (
            "mixed segment beats catch-all",
            None,
            Method::GET,
            "/echo/files/r.json",
            Op(0, 6, &[("name", "r")]),
        ),
        (
            "less specific template takes the method the specific one lacks",
            None,
            Method::POST,
            "/echo/files/r.json",
            Op(0, 5, &[("path", "r.json")]),
        ),
        (
            "query constraint wins when present",
            None,
            Method::GET,
            "/echo/search?q=x",
            Op(0, 7, &[("q", "x")]),
        ),
        (
            "query constraint skipped when absent",
            None,
            Method::GET,
            "/echo/search?x=1",
            Op(0, 8, &[]),
        ),
        (
            "unknown query parameters are ignored",
            None,
            Method::GET,
            "/echo/users?x=1",
            Op(0, 1, &[]),
        ),
        (
            "no operation",
            None,
            Method::GET,
            "/echo/nothing",
            OperationNotFound(0),
        ),
        (
            "prefix on segment boundary only",
            None,
            Method::GET,
            "/echoes",
            ApiNotFound,
        ),
        (
            "longest prefix",
            None,
            Method::GET,
            "/echo/v2/anything",
            Op(1, 0, &[]),
        ),
        (
            "longest prefix exactly",
            None,
            Method::GET,
            "/echo/v2",
            Op(1, 0, &[]),
        ),
        (
            "partial segment is not a prefix",
            None,
            Method::GET,
            "/echo/v",
            OperationNotFound(0),
        ),
        (
            "exact host",
            Some("api.example.com"),
            Method::GET,
            "/echo/users",
            Op(4, 0, &[]),
        ),
        (
            "host ignores case and port",
            Some("API.Example.COM:8443"),
            Method::GET,
            "/echo/users",
            Op(4, 0, &[]),
        ),
        (
            "wildcard host",
            Some("x.example.com"),
            Method::GET,
            "/echo/users",
            Op(3, 0, &[]),
        ),
        (
            "wildcard is one label",
            Some("a.b.example.com"),
            Method::GET,
            "/echo/users",
            Op(0, 1, &[]),
        ),
        (
            "wildcard needs a label",
            Some("example.com"),
            Method::GET,
            "/echo/users",
            Op(0, 1, &[]),
        ),
        (
            "chosen api is final",
            Some("api.example.com"),
            Method::GET,
            "/echo/users/42",
            OperationNotFound(4),
        ),
        (
            "host tier without a matching prefix falls through",
            Some("api.example.com"),
            Method::GET,
            "/spec/z/z",
            Op(5, 2, &[("rest", "z/z")]),
        ),
        (
            "root api on its host",
            Some("root.example.com"),
            Method::GET,
            "/health",
            Op(2, 0, &[]),
        ),
        (
            "root api shadows other tiers",
            Some("root.example.com"),
            Method::GET,
            "/echo/users",
            OperationNotFound(2),
        ),
        (
            "no host means any-host apis only",
            None,
            Method::GET,
            "/health",
            ApiNotFound,
        ),
        (
            "leftmost literal decides",
            None,
            Method::GET,
            "/spec/a/b/c",
            Op(5, 0, &[("x", "b")]),
        ),
        (
            "later literal counts after a tie",
            None,
            Method::GET,
            "/spec/z/b/c",
            Op(5, 1, &[("y", "z")]),
        ),
        (
            "deeper catch-all beats root catch-all",
            None,
            Method::GET,
            "/spec/a/b/d",
            Op(5, 3, &[("x", "b"), ("rest", "d")]),
        ),
        (
            "catch-all takes what is left",
            None,
            Method::GET,
            "/spec/z/z",
            Op(5, 2, &[("rest", "z/z")]),
        ),
        (
            "query template beats method",
            None,
            Method::GET,
            "/q/s?q=1",
            Op(6, 1, &[("q", "1")]),
        ),
        (
            "plain template without query",
            None,
            Method::GET,
            "/q/s",
            Op(6, 0, &[]),
        ),
        (
            "query template needs its parameter",
            None,
            Method::POST,
            "/q/s",
            MethodMismatch(6),
        ),
        (
            "any method with query",
            None,
            Method::POST,
            "/q/s?q=1",
            Op(6, 1, &[("q", "1")]),
        ),
        (
            "asterisk-form target",
            None,
            Method::OPTIONS,
            "*",
            ApiNotFound,
        ),
        ("empty target", None, Method::GET, "", ApiNotFound),
        ("unknown api", None, Method::GET, "/nope", ApiNotFound),
    ];
    check(&sample(), &cases);
}

#[test]
fn an_encoded_or_recased_spelling_cannot_reach_a_less_specific_operation() {
    // Security: the backend will decode `%61dmin` to `admin`. If routing compared raw
    // bytes, that spelling would land on the catch-all and skip the policies of the
    // `admin` operation.
    let router = Router::build([ApiSpec::new(0, "app", "app")
        .operation("admin", "*", "/admin/{action}")
        .operation("rest", "*", "/{*rest}")])
    .unwrap();
    for path in [
        "/app/admin/x",
        "/app/%61dmin/x",
        "/app/ADMIN/x",
        "/%41pp/%41DMIN/x",
    ] {
        let route = router
            .route(None, &Method::POST, path)
            .into_route()
            .unwrap();
        assert_eq!(route.operation, 0, "{path}");
    }
}

#[test]
fn case_sensitive_routing_tells_case_apart() {
    let options = RouterOptions {
        path_case: PathCase::Sensitive,
    };
    let router = Router::build_with(
        options,
        [ApiSpec::new(0, "echo", "Echo").operation("get", "GET", "/Users/{id}")],
    )
    .unwrap();
    use Expect::*;
    check(
        &router,
        &[
            (
                "same case",
                None,
                Method::GET,
                "/Echo/Users/1",
                Op(0, 0, &[("id", "1")]),
            ),
            (
                "api path case differs",
                None,
                Method::GET,
                "/echo/Users/1",
                ApiNotFound,
            ),
            (
                "operation case differs",
                None,
                Method::GET,
                "/Echo/users/1",
                OperationNotFound(0),
            ),
        ],
    );
}

#[test]
fn route_reports_the_prefix_length_and_operation_path() {
    let router = sample();
    for (path, len, operation_path) in [
        ("/echo/users/42", 5, "/users/42"),
        ("/echo", 5, ""),
        ("/echo/", 5, "/"),
        ("/echo/v2/x/y", 8, "/x/y"),
    ] {
        let route = router.route(None, &Method::GET, path).into_route().unwrap();
        assert_eq!(route.api_path_len, len, "{path}");
        assert_eq!(route.operation_path(path), operation_path, "{path}");
    }
    let route = router
        .route(Some("root.example.com"), &Method::GET, "/health")
        .into_route()
        .unwrap();
    assert_eq!(route.operation_path("/health"), "/health");
}

#[test]
fn route_request_takes_the_host_from_the_uri_or_the_host_header() {
    let router = sample();
    let from_header = http::Request::get("/echo/users")
        .header(http::header::HOST, "api.example.com:8080")
        .body(())
        .unwrap();
    assert_eq!(router.route_request(&from_header).api(), Some(4));
    let from_uri = http::Request::get("http://x.example.com/echo/users")
        .header(http::header::HOST, "api.example.com")
        .body(())
        .unwrap();
    assert_eq!(router.route_request(&from_uri).api(), Some(3));
    let with_query = http::Request::get("/echo/search?q=rust").body(()).unwrap();
    let route = router.route_request(&with_query).into_route().unwrap();
    assert_eq!(route.params.get("Q"), Some("rust"));
}

#[test]
fn route_match_reports_a_fixed_reason_and_the_api() {
    let router = sample();
    let cases = [
        ("/echo/users", Some(0), "matched"),
        ("/echo/nothing", Some(0), "operation_not_found"),
        ("/nope", None, "api_not_found"),
    ];
    for (path, api, reason) in cases {
        let found = router.route(None, &Method::GET, path);
        assert_eq!((found.api(), found.reason()), (api, reason), "{path}");
    }
    let mismatch = router.route(None, &Method::PUT, "/echo/users");
    assert_eq!(
        (mismatch.api(), mismatch.reason()),
        (Some(0), "method_mismatch")
    );
    assert!(mismatch.route().is_none());
}

#[test]
fn an_empty_table_finds_nothing() {
    let router = Router::build([]).unwrap();
    assert!(router.is_empty());
    assert_eq!(
        router.route(Some("a.com"), &Method::GET, "/"),
        RouteMatch::ApiNotFound
    );
}

#[test]
fn an_api_without_operations_matches_but_finds_no_operation() {
    let router = Router::build([ApiSpec::new(7, "empty", "empty")]).unwrap();
    assert_eq!(
        router.route(None, &Method::GET, "/empty/x"),
        RouteMatch::OperationNotFound { api: 7 }
    );
}

#[test]
fn router_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Router>();
    assert_send_sync::<RouteMatch>();
}

#[test]
fn debug_output_summarizes_the_table() {
    let text = format!("{:?}", sample());
    assert!(text.contains("apis: 7"), "{text}");
    assert!(text.contains("exact_hosts: 2"), "{text}");
}

fn op<'a>(id: &'a str, method: &'a str, url_template: &'a str) -> OperationSpec<'a> {
    OperationSpec {
        index: 0,
        id,
        method,
        url_template,
    }
}

#[test]
fn invalid_configurations_are_rejected_naming_the_api_and_operation() {
    let cases: Vec<(&str, Vec<ApiSpec<'_>>, BuildError)> = vec![
        (
            "parameter in api path",
            vec![ApiSpec::new(0, "a", "v1/{x}")],
            BuildError::InvalidApiPath {
                api: "a".into(),
                path: "v1/{x}".into(),
                reason: "an API path is a fixed prefix: no `{}`, `*`, `?` or `#`; put parameters in operation URL templates",
            },
        ),
        (
            "empty segment in api path",
            vec![ApiSpec::new(0, "a", "v1//x")],
            BuildError::InvalidApiPath {
                api: "a".into(),
                path: "v1//x".into(),
                reason: "empty segment (`//`)",
            },
        ),
        (
            "hostname with port",
            vec![ApiSpec::new(0, "a", "a").hostname("a.com:80")],
            BuildError::InvalidHostname {
                api: "a".into(),
                hostname: "a.com:80".into(),
                reason: "a hostname has no port or scheme (`:`)",
            },
        ),
        (
            "same path on any host",
            vec![ApiSpec::new(0, "a", "echo"), ApiSpec::new(1, "b", "/echo/")],
            BuildError::DuplicateApiPath {
                first: "a".into(),
                second: "b".into(),
                host: "*".into(),
                path: "echo".into(),
            },
        ),
        (
            "same root on any host",
            vec![ApiSpec::new(0, "a", ""), ApiSpec::new(1, "b", "/")],
            BuildError::DuplicateApiPath {
                first: "a".into(),
                second: "b".into(),
                host: "*".into(),
                path: String::new(),
            },
        ),
        (
            "same path on one host in another case",
            vec![
                ApiSpec::new(0, "a", "echo").hostname("A.com"),
                ApiSpec::new(1, "b", "ECHO").hostname("a.com"),
            ],
            BuildError::DuplicateApiPath {
                first: "a".into(),
                second: "b".into(),
                host: "a.com".into(),
                path: "ECHO".into(),
            },
        ),
        (
            "same path on one wildcard",
            vec![
                ApiSpec::new(0, "a", "echo").hostname("*.a.com"),
                ApiSpec::new(1, "b", "echo").hostname("*.a.com"),
            ],
            BuildError::DuplicateApiPath {
                first: "a".into(),
                second: "b".into(),
                host: "*.a.com".into(),
                path: "echo".into(),
            },
        ),
        (
            "invalid method",
            vec![ApiSpec {
                operations: vec![op("get", "GE T", "/")],
                ..ApiSpec::new(0, "a", "a")
            }],
            BuildError::InvalidMethod {
                api: "a".into(),
                operation: "get".into(),
                method: "GE T".into(),
            },
        ),
        (
            "invalid template",
            vec![ApiSpec::new(0, "a", "a").operation("get", "GET", "/users/{id")],
            BuildError::InvalidTemplate {
                api: "a".into(),
                operation: "get".into(),
                template: "/users/{id".into(),
                source: TemplateError::UnbalancedBrace { position: 7 },
            },
        ),
        (
            "same method and template with other names",
            vec![
                ApiSpec::new(0, "a", "a")
                    .operation("one", "GET", "/users/{id}")
                    .operation("two", "get", "/Users/{userId}/"),
            ],
            BuildError::AmbiguousOperations {
                api: "a".into(),
                first: "one".into(),
                second: "two".into(),
                method: "GET".into(),
                template: "/Users/{userId}/".into(),
            },
        ),
        (
            "two wildcards",
            vec![
                ApiSpec::new(0, "a", "a")
                    .operation("one", "*", "/*")
                    .operation("two", "*", "/{*rest}"),
            ],
            BuildError::AmbiguousOperations {
                api: "a".into(),
                first: "one".into(),
                second: "two".into(),
                method: "*".into(),
                template: "/{*rest}".into(),
            },
        ),
    ];
    for (name, apis, expected) in cases {
        let errors = Router::build(apis).unwrap_err();
        assert_eq!(errors.errors(), [expected], "{name}");
    }
}

#[test]
fn configurations_that_only_look_alike_are_accepted() {
    let cases: Vec<(&str, Vec<ApiSpec<'_>>)> = vec![
        (
            "same path on different hosts",
            vec![
                ApiSpec::new(0, "a", "echo"),
                ApiSpec::new(1, "b", "echo").hostname("a.com"),
                ApiSpec::new(2, "c", "echo").hostname("*.a.com"),
            ],
        ),
        (
            "one hostname listed twice",
            vec![
                ApiSpec::new(0, "a", "echo")
                    .hostname("a.com")
                    .hostname("A.COM."),
            ],
        ),
        (
            "same template with a named method and any method",
            vec![
                ApiSpec::new(0, "a", "a")
                    .operation("one", "GET", "/x")
                    .operation("two", "*", "/x"),
            ],
        ),
        (
            "same path with different query constraints",
            vec![
                ApiSpec::new(0, "a", "a")
                    .operation("one", "GET", "/x?a={a}")
                    .operation("two", "GET", "/x?b={b}")
                    .operation("three", "GET", "/x"),
            ],
        ),
    ];
    for (name, apis) in cases {
        if let Err(errors) = Router::build(apis) {
            panic!("{name}: {errors}");
        }
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let errors = Router::build([
        ApiSpec::new(0, "a", "a{")
            .hostname("bad host")
            .operation("x", "GET", "/{"),
        ApiSpec::new(1, "b", "b").operation("y", "GET", "/}"),
    ])
    .unwrap_err();
    assert_eq!(errors.errors().len(), 4, "{errors}");
    let text = errors.to_string();
    assert!(
        text.starts_with("invalid routing configuration (4 problems):"),
        "{text}"
    );
    for needle in [
        "API `a`",
        "operation `x`",
        "API `b`",
        "operation `y`",
        "bad host",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
}

#[test]
fn ten_thousand_apis_each_route_to_themselves() {
    let names: Vec<String> = (0..10_000).map(|i| format!("api-{i}")).collect();
    let hosts: Vec<String> = (0..10_000)
        .map(|i| format!("h{}.example.com", i % 100))
        .collect();
    let apis = names.iter().enumerate().map(|(index, name)| {
        let api = ApiSpec::new(index, name, name)
            .operation("get", "GET", "/items/{id}")
            .operation("list", "GET", "/items");
        if index % 2 == 0 {
            api.hostname(&hosts[index])
        } else {
            api
        }
    });
    let router = Router::build(apis).unwrap();
    assert_eq!(router.len(), 10_000);
    for (index, name) in names.iter().enumerate() {
        let host = hosts[index].as_str();
        let found = router.route(Some(host), &Method::GET, &format!("/{name}/items/7"));
        let route = found.into_route().unwrap();
        assert_eq!((route.api, route.operation), (index, 0), "{name}");
        assert_eq!(route.params.get("id"), Some("7"));
    }
}
