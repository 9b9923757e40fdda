use super::*;

const NOW: i64 = 1_767_322_800; // 2026-01-02T03:00Z

fn token(gateway: &str, expiry: i64) -> GatewayToken {
    GatewayToken::sign(gateway, b"key", expiry).unwrap()
}

#[tokio::test]
async fn an_inline_token_needs_no_file() {
    let source = TokenSource::load(&AuthSetting::Token(token("edge", NOW)))
        .await
        .unwrap();
    assert_eq!(source.gateway_id(), "edge");
    assert!(source.file().is_none());
    assert!(!source.reload().await.unwrap());
}

#[tokio::test]
async fn a_token_file_is_reread_and_the_new_token_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("value");
    std::fs::write(&path, format!("{}\n", token("edge", NOW))).unwrap();
    let source = TokenSource::load(&AuthSetting::File(path.clone()))
        .await
        .unwrap();
    let mut changes = source.subscribe();
    assert_eq!(source.current().expiry_unix(), NOW);
    assert!(!source.reload().await.unwrap(), "same token: no change");

    std::fs::write(&path, token("edge", NOW + 3600).to_string()).unwrap();
    assert!(source.reload().await.unwrap());
    assert_eq!(source.current().expiry_unix(), NOW + 3600);
    assert!(changes.has_changed().unwrap(), "waiters are told");
    changes.mark_unchanged();

    std::fs::write(&path, "GatewayKey garbage").unwrap();
    let error = source.reload().await.unwrap_err();
    assert!(matches!(error, TokenFileError::Parse { .. }), "{error}");
    assert_eq!(
        source.current().expiry_unix(),
        NOW + 3600,
        "a bad file keeps the previous token"
    );

    std::fs::write(&path, token("other", NOW).to_string()).unwrap();
    let error = source.reload().await.unwrap_err();
    assert!(error.to_string().contains("gateway `other`"), "{error}");
    assert_eq!(source.current().gateway_id(), "edge");
    assert!(!changes.has_changed().unwrap());
}

#[tokio::test]
async fn a_missing_token_file_is_an_error_naming_it() {
    let error = TokenSource::load(&AuthSetting::File(PathBuf::from("/nonexistent/value")))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("/nonexistent/value"), "{error}");
}

#[test]
fn expiry_warnings_start_seven_days_ahead_and_repeat_daily() {
    let mut warning = ExpiryWarning::default();
    let expiry = NOW + 10 * 86_400;
    assert_eq!(warning.check(NOW, expiry), ExpiryNotice::Quiet);
    let soon = expiry - 6 * 86_400;
    assert_eq!(
        warning.check(soon, expiry),
        ExpiryNotice::ExpiresSoon {
            seconds_left: 6 * 86_400
        }
    );
    assert_eq!(
        warning.check(soon + 3600, expiry),
        ExpiryNotice::Quiet,
        "once a day"
    );
    assert!(matches!(
        warning.check(soon + 86_400, expiry),
        ExpiryNotice::ExpiresSoon { .. }
    ));
    assert_eq!(
        warning.check(expiry + 2 * 86_400, expiry),
        ExpiryNotice::Expired
    );
}
