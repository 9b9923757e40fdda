use super::*;

#[test]
fn configured_hostnames_are_validated_and_lowercased() {
    let cases: &[(&str, Result<HostPattern, ()>)] = &[
        (
            "api.example.com",
            Ok(HostPattern::Exact("api.example.com".into())),
        ),
        (
            "API.Example.com.",
            Ok(HostPattern::Exact("api.example.com".into())),
        ),
        ("localhost", Ok(HostPattern::Exact("localhost".into()))),
        ("10.0.0.1", Ok(HostPattern::Exact("10.0.0.1".into()))),
        (
            "my_host.internal",
            Ok(HostPattern::Exact("my_host.internal".into())),
        ),
        (
            "*.example.com",
            Ok(HostPattern::Wildcard("example.com".into())),
        ),
        ("", Err(())),
        (".", Err(())),
        ("*", Err(())),
        ("*.", Err(())),
        ("a..b", Err(())),
        (".example.com", Err(())),
        ("api.example.com:8080", Err(())),
        ("https://api.example.com", Err(())),
        ("api.example.com/path", Err(())),
        ("a*.example.com", Err(())),
        ("*.*.example.com", Err(())),
        ("api.*.com", Err(())),
        ("has space.com", Err(())),
        ("[::1]", Err(())),
    ];
    for (text, expected) in cases {
        assert_eq!(
            &HostPattern::parse(text).map_err(|_| ()),
            expected,
            "{text:?}"
        );
    }
}

#[test]
fn overlong_hostnames_and_labels_are_rejected() {
    let label = "a".repeat(64);
    assert!(HostPattern::parse(&format!("{label}.com")).is_err());
    let long = ["abcdefghij"; 26].join(".");
    assert!(long.len() > 253);
    assert!(HostPattern::parse(&long).is_err());
}

#[test]
fn request_hosts_lose_their_port_and_trailing_dot() {
    let cases = [
        ("api.example.com", "api.example.com"),
        ("api.example.com:8080", "api.example.com"),
        ("API.example.com.", "API.example.com"),
        ("api.example.com.:443", "api.example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        ("[::1", "[::1"),
        ("", ""),
        (":80", ""),
    ];
    for (host, expected) in cases {
        assert_eq!(request_host(host), expected, "{host:?}");
    }
}

#[test]
fn wildcard_suffix_drops_exactly_the_first_label() {
    assert_eq!(wildcard_suffix("a.example.com"), Some("example.com"));
    assert_eq!(wildcard_suffix("a.b.example.com"), Some("b.example.com"));
    assert_eq!(wildcard_suffix("localhost"), None);
    assert_eq!(wildcard_suffix("a."), None);
}
