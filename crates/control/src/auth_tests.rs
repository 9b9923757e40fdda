use std::os::unix::fs::PermissionsExt;

use http::HeaderValue;

use super::*;

fn headers(authorization: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).unwrap());
    headers
}

#[test]
fn the_token_is_created_once_with_mode_0600_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (token, created) = AdminToken::load_or_create(dir.path()).unwrap();
    assert!(created);
    let path = dir.path().join(ADMIN_TOKEN_FILE);
    // Security: only the owner may read the admin token.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let secret = std::fs::read_to_string(&path).unwrap();
    assert!(token.matches(secret.trim()));
    let (again, created) = AdminToken::load_or_create(dir.path()).unwrap();
    assert!(!created, "an existing token is kept across restarts");
    assert!(again.matches(secret.trim()));
}

#[test]
fn bearer_tokens_are_checked_and_gateway_tokens_refused() {
    let token = AdminToken::from_secret("s3cret-admin");
    assert!(token.check(&headers("Bearer s3cret-admin")).is_ok());
    let cases = [
        ("Bearer wrong", StatusCode::UNAUTHORIZED),
        ("s3cret-admin", StatusCode::UNAUTHORIZED),
        ("GatewayKey gw&202601010000&sig", StatusCode::FORBIDDEN),
    ];
    for (value, status) in cases {
        let error = token.check(&headers(value)).unwrap_err();
        assert_eq!(error.status(), status, "{value}");
    }
    assert_eq!(
        token.check(&HeaderMap::new()).unwrap_err().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn debug_output_never_shows_the_token() {
    // Security: the token must not leak through logs.
    let token = AdminToken::from_secret("s3cret-admin");
    assert!(!format!("{token:?}").contains("s3cret"));
}

use http::StatusCode;
