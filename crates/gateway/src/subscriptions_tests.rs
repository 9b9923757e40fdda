use super::*;

fn entry(id: &str) -> Arc<SubscriptionEntry> {
    Arc::new(SubscriptionEntry {
        id: id.into(),
        name: id.into(),
        scope: ResolvedScope::AllApis,
        state: SubscriptionState::Active,
    })
}

#[test]
fn both_keys_of_a_subscription_find_it() {
    let mut store = SubscriptionStore::default();
    store.insert(&["primary-0001", "secondary-0001"], &entry("alice"));
    assert_eq!(&*store.find(b"primary-0001").unwrap().id, "alice");
    assert_eq!(&*store.find(b"secondary-0001").unwrap().id, "alice");
    assert_eq!(store.len(), 2);
}

#[test]
fn near_miss_keys_find_nothing() {
    // Security: a prefix, a suffix or a case change of a key is not the key.
    let mut store = SubscriptionStore::default();
    store.insert(&["primary-0001"], &entry("alice"));
    for wrong in [&b"primary-000"[..], b"primary-00011", b"PRIMARY-0001", b""] {
        assert!(
            store.find(wrong).is_none(),
            "{:?}",
            String::from_utf8_lossy(wrong)
        );
    }
}

#[test]
fn keys_are_not_held_in_clear() {
    // Security: a memory dump or `{:?}` of the store must not reveal keys.
    let mut store = SubscriptionStore::default();
    store.insert(&["primary-0001"], &entry("alice"));
    assert!(!format!("{store:?}").contains("primary-0001"));
}
