use super::*;

fn search(text: Option<&str>) -> ListQuery {
    ListQuery {
        search: text.map(str::to_owned),
        ..ListQuery::default()
    }
}

#[test]
fn like_pattern_escapes_wildcards_and_lowercases() {
    let cases = [
        ("no search matches everything", None, "%%"),
        ("empty search matches everything", Some(""), "%%"),
        ("plain text", Some("Echo"), "%echo%"),
        ("percent is literal", Some("50%"), r"%50\%%"),
        ("underscore is literal", Some("a_b"), r"%a\_b%"),
        ("backslash is literal", Some(r"a\b"), r"%a\\b%"),
    ];
    for (name, text, want) in cases {
        assert_eq!(search(text).like_pattern(), want, "{name}");
    }
}

#[test]
fn top_is_capped_at_the_maximum_page_size() {
    let query = ListQuery {
        top: 5000,
        ..ListQuery::default()
    };
    assert_eq!(query.effective_top(), MAX_PAGE_SIZE);
    assert_eq!(ListQuery::default().effective_top(), DEFAULT_PAGE_SIZE);
}

#[test]
fn preconditions_decide_as_http_does() {
    use Precondition::{IfMatch, IfNoneMatch};
    let check = |p: Precondition, current| p.check(Kind::Api, "echo", current);

    assert!(check(Precondition::None, None).is_ok());
    assert!(check(Precondition::None, Some(3)).is_ok());
    assert!(check(IfMatch(3), Some(3)).is_ok());
    assert!(check(IfNoneMatch, None).is_ok());

    match check(IfMatch(2), Some(3)) {
        Err(StoreError::PreconditionFailed {
            expected: 2,
            current_revision: Some(3),
            ..
        }) => {}
        other => panic!("stale If-Match: {other:?}"),
    }
    match check(IfMatch(2), None) {
        Err(StoreError::PreconditionFailed {
            current_revision: None,
            ..
        }) => {}
        other => panic!("If-Match on a missing entity: {other:?}"),
    }
    match check(IfNoneMatch, Some(7)) {
        Err(StoreError::AlreadyExists {
            current_revision: 7,
            ..
        }) => {}
        other => panic!("If-None-Match on an existing entity: {other:?}"),
    }
}

#[test]
fn with_precondition_sets_it_on_puts_and_deletes() {
    let put = WriteOp::put(Kind::Api, "a", serde_json::json!({}))
        .with_precondition(Precondition::IfMatch(4));
    assert_eq!(put.target(), (Kind::Api, "a", Precondition::IfMatch(4)));
    assert_eq!(put.op(), Op::Upsert);
    let delete = WriteOp::delete(Kind::Backend, "b").with_precondition(Precondition::IfNoneMatch);
    assert_eq!(
        delete.target(),
        (Kind::Backend, "b", Precondition::IfNoneMatch)
    );
    assert_eq!(delete.op(), Op::Delete);
}

/// Security: gateway keys sign Configuration API tokens; a `{:?}` in a log line must not
/// leak them.
#[test]
fn gateway_keys_debug_redacts_both_keys() {
    let keys = GatewayKeys {
        primary: "primary-secret".to_owned(),
        secondary: "secondary-secret".to_owned(),
    };
    let shown = format!("{keys:?} {keys:#?}");
    assert!(!shown.contains("secret"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
}
