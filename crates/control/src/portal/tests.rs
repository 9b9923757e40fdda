use http::HeaderMap;
use http::header::COOKIE as COOKIE_HEADER;

use super::*;

#[test]
fn the_session_cookie_is_found_among_others() {
    let mut headers = HeaderMap::new();
    headers.append(
        COOKIE_HEADER,
        "a=1; gatehouse_portal=abc ; b=2".parse().unwrap(),
    );
    assert_eq!(cookie_value(&headers, COOKIE).as_deref(), Some("abc"));
    let mut headers = HeaderMap::new();
    headers.append(COOKIE_HEADER, "x=1".parse().unwrap());
    headers.append(COOKIE_HEADER, "gatehouse_portal=def".parse().unwrap());
    assert_eq!(cookie_value(&headers, COOKIE).as_deref(), Some("def"));
    let mut headers = HeaderMap::new();
    headers.append(COOKIE_HEADER, "gatehouse_portal=".parse().unwrap());
    assert_eq!(cookie_value(&headers, COOKIE), None, "empty is none");
    assert_eq!(cookie_value(&HeaderMap::new(), COOKIE), None);
}

#[test]
fn asset_urls_carry_a_digest_of_their_content() {
    let url = asset_url("htmx.min.js");
    assert!(url.starts_with("/portal/assets/htmx.min.js?v="), "{url}");
    assert_eq!(url.len(), "/portal/assets/htmx.min.js?v=".len() + 12);
}

#[test]
fn notices_come_from_a_fixed_vocabulary() {
    let done = |text: &str| Done {
        done: Some(text.to_owned()),
    };
    assert_eq!(done("created").notice().as_deref(), Some("Created."));
    // Security: nothing from the query string is echoed.
    assert_eq!(done("<script>").notice(), None);
}

#[test]
fn form_fields_keep_repeated_names_and_raw_values() {
    let fields = Fields::parse(b"apis=a&apis=b+c&name=+x+&policy=%3Cp%3E%0A++");
    assert_eq!(fields.all("apis"), ["a", "b c"]);
    assert_eq!(fields.get("name"), "x", "trimmed");
    assert_eq!(fields.raw("policy"), Some("<p>\n  "), "a document as typed");
    assert_eq!(fields.get("missing"), "");
    assert_eq!(fields.raw("missing"), None);
}
