use super::*;

#[test]
fn every_spelling_of_an_implemented_suite_parses() {
    for name in [
        "TLS_AES_128_GCM_SHA256",
        "tls_aes_128_gcm_sha256",
        "TLS13_AES_128_GCM_SHA256",
    ] {
        assert_eq!(
            parse_one(name).unwrap().suite(),
            suites::TLS13_AES_128_GCM_SHA256.suite(),
            "{name}"
        );
    }
    assert_eq!(
        parse_one("ECDHE-RSA-AES256-GCM-SHA384").unwrap().suite(),
        suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384.suite()
    );
}

#[test]
fn every_implemented_suite_is_in_the_table_and_the_provider() {
    let provider = crate::default_provider();
    assert_eq!(provider.cipher_suites.len(), IMPLEMENTED.len());
    for suite in provider.cipher_suites {
        assert_ne!(iana_name(suite), "unknown", "{:?}", suite.suite());
        assert_eq!(parse_one(iana_name(suite)).unwrap().suite(), suite.suite());
    }
}

#[test]
fn a_suite_rustls_lacks_is_refused_with_the_reason() {
    let error = parse_one("TLS_RSA_WITH_AES_128_CBC_SHA").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("`TLS_RSA_WITH_AES_128_CBC_SHA` is not available"),
        "{message}"
    );
    assert!(message.contains("forward secrecy"), "{message}");
    assert!(
        message.contains("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        "{message}"
    );
    let error = parse_one("ECDHE-RSA-AES128-SHA").unwrap_err();
    assert!(error.to_string().contains("CBC"), "{error}");
}

#[test]
fn an_unknown_name_is_refused_with_the_supported_list() {
    let message = parse_one("TLS_MADE_UP").unwrap_err().to_string();
    assert!(
        message.starts_with("unknown TLS cipher suite `TLS_MADE_UP`"),
        "{message}"
    );
    assert!(message.contains("TLS_AES_256_GCM_SHA384"), "{message}");
}

#[test]
fn lists_keep_order_and_drop_duplicates() {
    let list = parse_list(
        " TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256,",
    )
    .unwrap();
    let names: Vec<_> = list.iter().map(|s| iana_name(*s)).collect();
    assert_eq!(
        names,
        ["TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"]
    );
    assert!(matches!(parse_list(" , "), Err(TlsError::NoCipherSuites)));
    assert!(parse_list("TLS_AES_128_GCM_SHA256,NOPE").is_err());
}
