//! Property tests with a small deterministic generator (no extra crates): templates
//! match the paths generated from them and give back the generated values; the trie
//! picks what a brute-force reading of the specificity rules picks; nothing panics on
//! arbitrary input. Failures print the seed and case, so they replay.

use std::fmt::Write as _;

use http::Method;

use crate::template::{Segment, Tail, segments_of};
use crate::{ApiSpec, PathCase, RouteMatch, Router, Template};

/// xorshift64*: deterministic, good enough to spread test cases.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters for parameter values: none of the separators used inside mixed segments
/// (`.`, `-`), so a generated value cannot change how its segment splits.
const VALUE_CHARS: &[char] = &[
    'a', 'b', 'Z', '0', '9', '_', '~', ' ', '/', '%', '?', '#', '&', '=', '+', 'é', '日', '{', '}',
];

fn value(rng: &mut Rng, min_len: usize) -> String {
    let len = min_len + rng.below(6);
    (0..len).map(|_| *rng.pick(VALUE_CHARS)).collect()
}

/// Percent-encodes everything but unreserved characters; hex case varies.
fn encode(text: &str, rng: &mut Rng) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else if rng.chance(50) {
            let _ = write!(out, "%{byte:02X}");
        } else {
            let _ = write!(out, "%{byte:02x}");
        }
    }
    out
}

fn flip_case(text: &str, rng: &mut Rng) -> String {
    text.chars()
        .map(|c| {
            if rng.chance(50) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// A random template, a request path generated from it and the expected parameters.
fn generated_case(rng: &mut Rng) -> (String, String, Vec<(String, String)>) {
    let mut template = String::new();
    let mut path = String::new();
    let mut params = Vec::new();
    let mut names = 0;
    let mut name = |prefix: &str| {
        names += 1;
        format!("{prefix}{names}")
    };
    for _ in 0..rng.below(5) {
        template.push('/');
        path.push('/');
        match rng.below(6) {
            0 | 1 => {
                let literal = rng.pick(&["users", "v1", "a", "files", "café"]).to_owned();
                template.push_str(literal);
                path.push_str(&encode(&flip_case(literal, rng), rng));
            }
            2 | 3 => {
                let name = name("p");
                let value = value(rng, 1);
                let _ = write!(template, "{{{name}}}");
                path.push_str(&encode(&value, rng));
                params.push((name, value));
            }
            4 => {
                let (first, second) = (name("n"), name("e"));
                let (first_value, second_value) = (value(rng, 1), value(rng, 1));
                let separator = *rng.pick(&[".", "-"]);
                let _ = write!(template, "{{{first}}}{separator}{{{second}}}");
                let _ = write!(
                    path,
                    "{}{separator}{}",
                    encode(&first_value, rng),
                    encode(&second_value, rng)
                );
                params.push((first, first_value));
                params.push((second, second_value));
            }
            _ => {
                let name = name("f");
                let value = value(rng, 1);
                let _ = write!(template, "v{{{name}}}.json");
                let _ = write!(path, "V{}.JSON", encode(&value, rng));
                params.push((name, value));
            }
        }
    }
    if rng.chance(30) {
        let segments: Vec<String> = (0..rng.below(3)).map(|_| value(rng, 1)).collect();
        let value = segments.join("/");
        let raw: Vec<String> = segments.iter().map(|s| encode(s, rng)).collect();
        if rng.chance(50) {
            template.push_str("/*");
        } else {
            let name = name("rest");
            let _ = write!(template, "/{{*{name}}}");
            params.push((name, value));
        }
        if !raw.is_empty() {
            path.push('/');
            path.push_str(&raw.join("/"));
        }
    }
    if template.is_empty() {
        template.push('/');
    }
    if rng.chance(20) && !path.ends_with('/') {
        path.push('/');
        // A trailing slash stays in a named catch-all's value, unless the value is
        // empty (then the slash is the separator before it).
        if let Some((name, value)) = params.last_mut()
            && name.starts_with("rest")
            && template.ends_with('}')
            && !value.is_empty()
        {
            value.push('/');
        }
    }
    if rng.chance(40) {
        let name = name("q");
        let value = value(rng, 0);
        let _ = write!(template, "?key={{{name}}}");
        let _ = write!(path, "?other=1&key={}", encode(&value, rng));
        params.push((name, value));
    }
    (template, path, params)
}

#[test]
fn templates_match_paths_generated_from_them_and_return_the_generated_values() {
    let mut rng = Rng::new(1);
    for case in 0..5_000 {
        let (template_text, path, expected) = generated_case(&mut rng);
        let template = Template::parse(&template_text)
            .unwrap_or_else(|e| panic!("case {case}: {template_text}: {e}"));
        let params = template
            .capture(&path, PathCase::Insensitive)
            .unwrap_or_else(|| panic!("case {case}: {template_text} did not match {path}"));
        let actual: Vec<(String, String)> = params
            .iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        assert_eq!(actual, expected, "case {case}: {template_text} vs {path}");

        // The same through a router, under an API prefix.
        let router = Router::build([ApiSpec::new(3, "api", "api/v2").operation(
            "op",
            "GET",
            &template_text,
        )])
        .unwrap_or_else(|e| panic!("case {case}: {e}"));
        let routed = router.route(Some("host"), &Method::GET, &format!("/api/v2{path}"));
        let route = routed
            .into_route()
            .unwrap_or_else(|| panic!("case {case}: router: {template_text} vs {path}"));
        assert_eq!(
            route.params, params,
            "case {case}: {template_text} vs {path}"
        );
    }
}

/// Segments for templates of the brute-force comparison: overlapping on purpose. The
/// mixed segments have distinct amounts of literal text, so specificity orders them.
const TEMPLATE_SEGMENTS: &[&str] = &["a", "b", "A", "{p}", "{p}.json", "{p}-{q}", "ver{p}"];
const PATH_SEGMENTS: &[&str] = &["a", "b", "x.json", "x-y", "ver2", "ver2.json", "c", ""];
const METHODS: &[&str] = &["GET", "POST", "*"];
const TEMPLATE_QUERIES: &[&str] = &["", "?q={v}", "?t=1", "?t=1&q={v}"];
const PATH_QUERIES: &[&str] = &["", "?q=1", "?t=1", "?t=2&q=3", "?q=1&t=1"];

/// One template's specificity for a path of `path_segments` segments that it matches:
/// per path segment the rank of what matched it (literal 3, mixed 2 plus its amount of
/// literal text, parameter 1, catch-all 0), then 1 if the template ends with the path or
/// 0 for a catch-all, then the number of query constraints, then whether the method is
/// named. The greatest key wins.
fn specificity(template: &Template, path_segments: usize, method: &str) -> Vec<(usize, usize)> {
    let mut key: Vec<(usize, usize)> = (0..path_segments)
        .map(|index| match template.segments().get(index) {
            Some(Segment::Literal(_)) => (3, 0),
            Some(Segment::Pattern(pattern)) => (2, pattern.literal_len()),
            Some(Segment::Param(_)) => (1, 0),
            None => (0, 0),
        })
        .collect();
    key.push((usize::from(matches!(template.tail(), Tail::Exact)), 0));
    key.push((template.query_len(), 0));
    key.push((usize::from(method != "*"), 0));
    key
}

#[test]
fn the_trie_picks_what_a_brute_force_reading_of_the_rules_picks() {
    let mut rng = Rng::new(2);
    let mut outcomes = std::collections::HashMap::<String, usize>::new();
    for case in 0..3_000 {
        // A random API, skipping operations that would be ambiguous.
        let mut operations: Vec<(Template, &str)> = Vec::new();
        for _ in 0..1 + rng.below(8) {
            let mut text = String::new();
            for index in 0..rng.below(4) {
                let segment = rng
                    .pick(TEMPLATE_SEGMENTS)
                    .replace("{p}", &format!("{{p{index}}}"))
                    .replace("{q}", &format!("{{q{index}}}"));
                text.push('/');
                text.push_str(&segment);
            }
            if rng.chance(25) {
                text.push_str(rng.pick::<&str>(&["/*", "/{*r}"]));
            }
            if text.is_empty() {
                text.push('/');
            }
            text.push_str(rng.pick::<&str>(TEMPLATE_QUERIES));
            let template = Template::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let method = *rng.pick(METHODS);
            let duplicate = operations.iter().any(|(other, other_method)| {
                *other_method == method && other.shape(true) == template.shape(true)
            });
            if !duplicate {
                operations.push((template, method));
            }
        }
        let api = operations
            .iter()
            .fold(ApiSpec::new(0, "api", ""), |api, (template, method)| {
                api.operation("op", method, template.as_str())
            });
        let router = Router::build([api]).unwrap_or_else(|e| panic!("case {case}: {e}"));

        for _ in 0..20 {
            let mut path = String::new();
            for _ in 0..rng.below(5) {
                path.push('/');
                path.push_str(rng.pick::<&str>(PATH_SEGMENTS));
            }
            if path.is_empty() || rng.chance(20) {
                path.push('/');
            }
            path.push_str(rng.pick::<&str>(PATH_QUERIES));
            let method = rng.pick(&[Method::GET, Method::POST, Method::PUT]).clone();

            let matching: Vec<usize> = operations
                .iter()
                .enumerate()
                .filter(|(_, (template, _))| {
                    template.capture(&path, PathCase::Insensitive).is_some()
                })
                .map(|(index, _)| index)
                .collect();
            let path_only = path.split('?').next().unwrap_or("");
            let path_segments = segments_of(path_only.strip_prefix('/').unwrap_or(path_only))
                .map_or(0, |segments| segments.split('/').count());
            let allowed = matching
                .iter()
                .copied()
                .filter(|&index| {
                    let m = operations[index].1;
                    m == "*" || m == method.as_str()
                })
                .max_by(|&a, &b| {
                    let key =
                        |i: usize| specificity(&operations[i].0, path_segments, operations[i].1);
                    // Equal keys: the operation given first wins.
                    key(a).cmp(&key(b)).then(b.cmp(&a))
                });
            let expected = match allowed {
                Some(index) => format!("op {index}"),
                None if matching.is_empty() => "operation not found".to_owned(),
                None => "method mismatch".to_owned(),
            };
            let actual = match router.route(None, &method, &path) {
                RouteMatch::Matched(route) => format!("op {}", route.operation),
                RouteMatch::OperationNotFound { .. } => "operation not found".to_owned(),
                RouteMatch::MethodMismatch { .. } => "method mismatch".to_owned(),
                RouteMatch::ApiNotFound => "api not found".to_owned(),
            };
            assert_eq!(
                actual, expected,
                "case {case}: {method} {path} against {operations:?}"
            );
            let outcome = if actual.starts_with("op ") {
                "matched"
            } else {
                &actual
            };
            *outcomes.entry(outcome.to_owned()).or_default() += 1;
        }
    }
    // The generator must exercise every outcome, or the comparison proves little.
    for outcome in ["matched", "operation not found", "method mismatch"] {
        let count = outcomes.get(outcome).copied().unwrap_or_default();
        assert!(
            count > 1_000,
            "only {count} cases of {outcome}: {outcomes:?}"
        );
    }
}

/// Bytes that matter to the parsers, and a few that do not.
const SOUP: &[u8] = b"/{}*?&=#%.-+:[]aZ09 \t\xff\xc3\xa9";

fn soup(rng: &mut Rng, max_len: usize) -> String {
    let bytes: Vec<u8> = (0..rng.below(max_len + 1))
        .map(|_| {
            if rng.chance(10) {
                // Any byte at all.
                (rng.next() & 0xff) as u8
            } else {
                *rng.pick(SOUP)
            }
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn template_parsing_and_matching_never_panic_on_arbitrary_text() {
    let mut rng = Rng::new(3);
    for _ in 0..20_000 {
        let text = soup(&mut rng, 24);
        if let Ok(template) = Template::parse(&text) {
            let _ = template.shape(true);
            let _ = template.params().count();
            for _ in 0..4 {
                let path = soup(&mut rng, 32);
                let _ = template.capture(&path, PathCase::Insensitive);
                let _ = template.capture(&path, PathCase::Sensitive);
            }
        }
    }
}

#[test]
fn routing_never_panics_on_arbitrary_hosts_methods_and_paths() {
    let router = Router::build([
        ApiSpec::new(0, "a", "")
            .hostname("*.example.com")
            .operation("x", "GET", "/{a}.{b}/{*rest}")
            .operation("y", "*", "/v{v}/x?q={q}&t=1"),
        ApiSpec::new(1, "b", "b/c")
            .operation("x", "GET", "/{id}")
            .operation("y", "POST", "/x-{a}-{b}")
            .operation("z", "*", "/*"),
        ApiSpec::new(2, "c", "%2F")
            .hostname("exact.example.com")
            .operation("x", "GET", "/"),
    ])
    .unwrap();
    let methods = [
        Method::GET,
        Method::POST,
        Method::from_bytes(b"PURGE").unwrap(),
    ];
    let mut rng = Rng::new(4);
    for _ in 0..50_000 {
        let host = soup(&mut rng, 12);
        let host = rng.chance(80).then_some(host.as_str());
        let mut path = soup(&mut rng, 48);
        if rng.chance(80) {
            path.insert(0, '/');
        }
        let method = rng.pick(&methods);
        if let RouteMatch::Matched(route) = router.route(host, method, &path) {
            let _ = route.operation_path(&path);
        }
    }
    // Long inputs: a segment longer than the pattern decode buffer, and many segments.
    let host = Some("x.example.com");
    let long_segment = format!("/v{}/x?q=1&t=1", "%41".repeat(400));
    let route = router
        .route(host, &Method::GET, &long_segment)
        .into_route()
        .unwrap();
    assert_eq!(route.params.get("v"), Some("A".repeat(400).as_str()));
    let deep = "/a".repeat(10_000);
    assert_eq!(
        router.route(host, &Method::GET, &deep),
        RouteMatch::OperationNotFound { api: 0 }
    );
}
