use super::*;

const SIGNATURE: &str =
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==";

#[test]
fn endpoints_are_http_or_https_urls_without_a_trailing_slash() {
    let cases = [
        ("http://control:8090", Some("http://control:8090")),
        ("http://control:8090/", Some("http://control:8090")),
        (
            " http://10.0.0.1:8090/gh/ ",
            Some("http://10.0.0.1:8090/gh"),
        ),
        ("control:8090", None),
        ("gw.configuration.azure-api.net", None),
        ("https://control:8090", Some("https://control:8090")),
        ("HTTPS://Control:8443/gh/", Some("https://control:8443/gh")),
        ("ftp://control", None),
        ("http://control:8090/?x=1", None),
        ("http://user:pw@control:8090", None),
        ("", None),
    ];
    for (input, expected) in cases {
        let parsed = Endpoint::parse(input);
        match expected {
            Some(url) => assert_eq!(parsed.unwrap().as_str(), url, "input {input:?}"),
            None => assert!(parsed.is_err(), "input {input:?} should be refused"),
        }
    }
}

#[test]
fn https_endpoints_are_accepted_and_name_their_host() {
    let https = Endpoint::parse("https://control.example:8443").unwrap();
    assert!(https.is_https());
    assert_eq!(
        https.gateway_url("edge", "snapshot"),
        "https://control.example:8443/v2/gateways/edge/snapshot"
    );
    let http = Endpoint::parse("http://control:8090").unwrap();
    assert!(!http.is_https());
    let error = Endpoint::parse("ftp://control").unwrap_err().to_string();
    assert!(error.contains("`https://`"), "{error}");
}

#[test]
fn gateway_urls_append_the_configuration_api_path() {
    let endpoint = Endpoint::parse("http://control:8090/base/").unwrap();
    assert_eq!(
        endpoint.gateway_url("edge", "changes"),
        "http://control:8090/base/v2/gateways/edge/changes"
    );
}

#[test]
fn auth_is_a_token_or_a_file() {
    let token = format!("GatewayKey edge&202601020400&{SIGNATURE}");
    match AuthSetting::parse(&token).unwrap() {
        AuthSetting::Token(parsed) => assert_eq!(parsed.gateway_id(), "edge"),
        other @ AuthSetting::File(_) => panic!("{other:?}"),
    }
    let bare = format!("edge&202601020400&{SIGNATURE}");
    assert!(matches!(
        AuthSetting::parse(&bare).unwrap(),
        AuthSetting::Token(_)
    ));
    assert_eq!(
        AuthSetting::parse("/var/run/secrets/gatehouse/value").unwrap(),
        AuthSetting::File(PathBuf::from("/var/run/secrets/gatehouse/value"))
    );
    assert_eq!(AuthSetting::parse("  "), Err(SettingsError::EmptyAuth));
}

#[test]
fn a_malformed_inline_token_is_refused_without_quoting_it() {
    // Security: a typo in a token must not print the token into logs.
    let error = AuthSetting::parse("GatewayKey edge&2026&secret-signature")
        .unwrap_err()
        .to_string();
    assert!(!error.contains("secret-signature"), "{error}");
    assert!(error.contains("expiry"), "{error}");
}

#[test]
fn backoff_doubles_from_the_initial_delay_up_to_the_max() {
    let backoff = Backoff::default();
    assert_eq!(backoff.ceiling(1), Duration::from_millis(250));
    assert_eq!(backoff.ceiling(2), Duration::from_millis(500));
    assert_eq!(backoff.ceiling(5), Duration::from_secs(4));
    assert_eq!(backoff.ceiling(8), Duration::from_secs(30));
    assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
}

#[test]
fn backoff_delay_stays_between_half_the_ceiling_and_the_ceiling() {
    let backoff = Backoff::default();
    for attempt in [1, 2, 3, 7, 20, 100, u32::MAX] {
        let ceiling = backoff.ceiling(attempt);
        for step in 0..=100 {
            let unit = f64::from(step) / 100.0;
            let delay = backoff.delay(attempt, unit);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "attempt {attempt}, unit {unit}: {delay:?} outside {ceiling:?}/2..={ceiling:?}"
            );
        }
    }
    assert_eq!(backoff.delay(3, 5.0), backoff.ceiling(3), "unit is clamped");
}
