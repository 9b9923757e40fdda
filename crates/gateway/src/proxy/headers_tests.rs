use super::*;

#[test]
fn hop_by_hop_headers_and_those_named_in_connection_are_removed() {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONNECTION,
        HeaderValue::from_static("keep-alive, x-private"),
    );
    headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
    headers.insert("x-private", HeaderValue::from_static("1"));
    headers.insert(
        header::TRANSFER_ENCODING,
        HeaderValue::from_static("chunked"),
    );
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.insert("x-kept", HeaderValue::from_static("yes"));
    remove_hop_by_hop(&mut headers);
    let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    assert_eq!(names, ["x-kept"]);
}

#[test]
fn forwarded_for_appends_the_client_to_an_existing_chain() {
    let mut headers = HeaderMap::new();
    headers.insert(&X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.7"));
    let host = HeaderValue::from_static("api.example.com");
    set_forwarded(
        &mut headers,
        &forwarded_for_value("10.0.0.1".parse().unwrap()),
        "http",
        Some(&host),
    );
    assert_eq!(headers[&X_FORWARDED_FOR], "203.0.113.7, 10.0.0.1");
    assert_eq!(headers[&X_FORWARDED_PROTO], "http");
    assert_eq!(headers[&X_FORWARDED_HOST], "api.example.com");
}

#[test]
fn ipv4_mapped_client_addresses_are_written_as_ipv4() {
    let mut headers = HeaderMap::new();
    set_forwarded(
        &mut headers,
        &forwarded_for_value("::ffff:192.0.2.1".parse().unwrap()),
        "http",
        None,
    );
    assert_eq!(headers[&X_FORWARDED_FOR], "192.0.2.1");
    assert!(headers.get(&X_FORWARDED_HOST).is_none());
}

#[test]
fn messages_without_hop_by_hop_headers_are_left_alone() {
    let mut headers = HeaderMap::new();
    headers.insert("x-a", HeaderValue::from_static("1"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let before = headers.clone();
    remove_hop_by_hop(&mut headers);
    assert_eq!(headers, before);
}
