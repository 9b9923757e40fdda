use std::time::Duration;

use gatehouse_expr::Value;

use super::{CacheError, MAX_VALUE_BYTES, ValueCache};

const fn at(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

#[test]
fn values_are_kept_until_they_expire() {
    let cache = ValueCache::default();
    cache.put("k", Value::string("v"), at(10), at(100)).unwrap();
    assert_eq!(cache.get("k", at(109)), Some(Value::string("v")));
    assert_eq!(cache.get("k", at(110)), None, "expired at 100 + 10");
    assert!(cache.is_empty(), "an expired value found is dropped");
}

#[test]
fn a_new_value_replaces_the_old_and_remove_drops_it() {
    let cache = ValueCache::default();
    cache.put("k", Value::Int(1), at(60), at(0)).unwrap();
    cache.put("k", Value::Int(2), at(60), at(0)).unwrap();
    assert_eq!(cache.get("k", at(1)), Some(Value::Int(2)));
    assert_eq!(cache.len(), 1);
    cache.remove("k");
    assert_eq!(cache.get("k", at(1)), None);
    cache.remove("k");
}

#[test]
fn values_of_the_context_model_are_refused_and_oversized_ones_not_kept() {
    let cache = ValueCache::default();
    let object = Value::Object(gatehouse_expr::HostObject::from_static("context.Request"));
    assert!(matches!(
        cache.put("k", object, at(60), at(0)),
        Err(CacheError::NotStorable(_))
    ));
    let big = Value::string(&"x".repeat(MAX_VALUE_BYTES + 1));
    cache.put("big", big, at(60), at(0)).unwrap();
    assert_eq!(cache.get("big", at(1)), None);
    // A zero duration keeps nothing.
    cache.put("zero", Value::Int(1), at(0), at(0)).unwrap();
    assert_eq!(cache.get("zero", at(0)), None);
}
