use super::*;

#[test]
fn dot_segments_are_detected_in_any_spelling() {
    for path in [
        "/a/../b",
        "/a/./b",
        "/..",
        "/a/%2e%2E/b",
        "/a/.%2e",
        "/a/%2e",
    ] {
        assert!(has_dot_segment(path), "{path}");
    }
    for path in [
        "/",
        "/a/b",
        "/a..b/c",
        "/.well-known/x",
        "/a/...",
        "/a//b",
        "/%2e%2e%2e",
    ] {
        assert!(!has_dot_segment(path), "{path}");
    }
}

#[test]
fn backend_uri_joins_base_path_operation_path_and_query() {
    let cases = [
        ("http://b:8080", "/users/1", "", "http://b:8080/users/1"),
        (
            "http://b:8080/",
            "/users/1",
            "x=1",
            "http://b:8080/users/1?x=1",
        ),
        ("http://b/api", "/users/1", "", "http://b/api/users/1"),
        ("http://b/api/", "/", "", "http://b/api/"),
        ("http://b/api", "", "q=2", "http://b/api/?q=2"),
    ];
    for (base, path, query, expected) in cases {
        let base = url::Url::parse(base).unwrap();
        let uri = backend_uri(&base, path, query).unwrap();
        assert_eq!(uri.to_string(), expected, "{base} + {path} + {query}");
    }
}

#[test]
fn percent_decoding_of_query_keys_handles_plus_and_escapes() {
    assert_eq!(percent_decode("a%2Bb"), "a+b");
    assert_eq!(percent_decode("a+b"), "a b");
    assert_eq!(percent_decode("%zz"), "%zz");
}
