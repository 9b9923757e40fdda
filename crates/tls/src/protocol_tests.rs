use super::*;

#[test]
fn versions_parse_in_the_usual_spellings() {
    for text in ["1.2", "TLSv1.2", "tls1.2", "TLS12", " tls_1_2 "] {
        assert_eq!(
            text.parse::<TlsVersion>().unwrap(),
            TlsVersion::V1_2,
            "{text}"
        );
    }
    for text in ["1.3", "TLSv1.3", "tls13"] {
        assert_eq!(
            text.parse::<TlsVersion>().unwrap(),
            TlsVersion::V1_3,
            "{text}"
        );
    }
    let error = "1.1".parse::<TlsVersion>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "TLS version `1.1` is not supported; use 1.2 or 1.3"
    );
}

#[test]
fn the_range_selects_rustls_versions() {
    let mut settings = ProtocolSettings::default();
    assert_eq!(settings.versions().len(), 2);
    settings.min_version = TlsVersion::V1_3;
    assert_eq!(settings.versions(), vec![&rustls::version::TLS13]);
    settings.max_version = TlsVersion::V1_2;
    assert!(matches!(
        settings.validate(),
        Err(TlsError::VersionRange { .. })
    ));
}

#[test]
fn suites_must_fit_the_versions() {
    let mut settings = ProtocolSettings {
        min_version: TlsVersion::V1_3,
        ..ProtocolSettings::default()
    };
    settings
        .set_cipher_suites("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        .unwrap();
    let message = settings.validate().unwrap_err().to_string();
    assert!(message.contains("works with TLS 1.3"), "{message}");
    settings.min_version = TlsVersion::V1_2;
    settings.validate().unwrap();
    assert_eq!(
        settings.cipher_suite_names(),
        ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
    );
}

#[test]
fn alpn_follows_http2() {
    let mut settings = ProtocolSettings::default();
    assert_eq!(settings.alpn(), vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    settings.http2 = false;
    assert_eq!(settings.alpn(), vec![b"http/1.1".to_vec()]);
}
