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

#[test]
fn host_values() {
    for good in [
        &b""[..],
        b"example.com",
        b"example.com:8080",
        b"127.0.0.1:1",
        b"[::1]",
        b"[::1]:443",
        b"xn--bcher-kva.example",
        b"under_score.local:80",
    ] {
        assert!(is_host_value(good), "{}", String::from_utf8_lossy(good));
    }
    for bad in [
        &b"user@example.com"[..],
        b"example.com/path",
        b"example.com?q",
        b"example.com#f",
        b"example.com:80x",
        b"exa mple.com",
        b"[::1",
        b"[zz::1]",
        b"a\\b",
    ] {
        assert!(!is_host_value(bad), "{}", String::from_utf8_lossy(bad));
    }
}
