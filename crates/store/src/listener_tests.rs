use super::*;

#[test]
fn backoff_doubles_within_jitter_and_stays_under_the_cap() {
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(30));
    let mut backoff = Backoff::new(min, max);
    let mut ceiling = min;
    for attempt in 0..20 {
        for unit in [0.0, 0.5, 0.999_999] {
            let mut probe = backoff.clone();
            let delay = probe.next_delay(unit);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "attempt {attempt}: {delay:?} vs {ceiling:?}"
            );
            assert!(delay <= max, "attempt {attempt}: {delay:?}");
        }
        backoff.next_delay(0.5);
        ceiling = (ceiling * 2).min(max);
    }
    assert_eq!(backoff.next_delay(1.0), max, "capped");
    backoff.reset();
    assert_eq!(backoff.next_delay(1.0), min, "reset");
}

#[test]
fn out_of_range_jitter_is_clamped() {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    assert_eq!(backoff.clone().next_delay(-3.0), Duration::from_millis(50));
    assert_eq!(
        backoff.next_delay(f64::NAN.max(7.0)),
        Duration::from_millis(100)
    );
}

#[test]
fn raise_never_lowers_and_wakes_only_on_change() {
    let (tx, mut rx) = watch::channel(5_u64);
    rx.mark_unchanged();
    raise(&tx, 3);
    assert!(!rx.has_changed().unwrap(), "a lower revision is ignored");
    raise(&tx, 5);
    assert!(!rx.has_changed().unwrap(), "the same revision is ignored");
    raise(&tx, 9);
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), 9);
}
