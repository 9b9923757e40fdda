use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::thread;

use super::*;

const KEY: CellKey = CellKey { policy: 1, key: 1 };

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn allowed(outcome: RateOutcome) -> Option<u32> {
    match outcome {
        RateOutcome::Allowed { remaining } => Some(remaining),
        RateOutcome::Limited { .. } => None,
    }
}

fn retry_after(outcome: RateOutcome) -> Duration {
    match outcome {
        RateOutcome::Limited { retry_after } => retry_after,
        RateOutcome::Allowed { .. } => panic!("expected Limited"),
    }
}

#[test]
fn rate_limit_counts_then_refuses() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 3,
        period_ms: 10_000,
    };
    let remaining: Vec<Option<u32>> = (0..4)
        .map(|_| allowed(counters.rate(KEY, limit, 1, true, secs(100))))
        .collect();
    assert_eq!(remaining, [Some(2), Some(1), Some(0), None]);
    // Another key, and another policy, have their own counters.
    assert_eq!(
        allowed(counters.rate(CellKey { policy: 1, key: 2 }, limit, 1, true, secs(100))),
        Some(2)
    );
    assert_eq!(
        allowed(counters.rate(CellKey { policy: 2, key: 1 }, limit, 1, true, secs(100))),
        Some(2)
    );
}

#[test]
fn rate_limit_window_slides() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 3,
        period_ms: 10_000,
    };
    for _ in 0..3 {
        assert!(allowed(counters.rate(KEY, limit, 1, true, secs(100))).is_some());
    }
    // Next window, start: all three still inside the sliding window.
    assert!(allowed(counters.rate(KEY, limit, 1, true, secs(110))).is_none());
    // Half-way: the previous window weighs 3 × 0.5 = 1, so two more fit.
    assert_eq!(
        allowed(counters.rate(KEY, limit, 1, true, secs(115))),
        Some(1)
    );
    assert_eq!(
        allowed(counters.rate(KEY, limit, 1, true, secs(115))),
        Some(0)
    );
    assert!(allowed(counters.rate(KEY, limit, 1, true, secs(115))).is_none());
    // Window 12 starts: the two of window 11 weigh 2.
    assert_eq!(
        allowed(counters.rate(KEY, limit, 1, true, secs(120))),
        Some(0)
    );
    // Idle for two periods: fresh.
    assert_eq!(
        allowed(counters.rate(KEY, limit, 1, true, secs(141))),
        Some(2)
    );
}

#[test]
fn rate_limit_retry_after_is_when_the_request_fits() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 2,
        period_ms: 10_000,
    };
    let start = Duration::from_millis(100_250);
    counters.rate(KEY, limit, 1, true, start);
    counters.rate(KEY, limit, 1, true, start);
    let wait = retry_after(counters.rate(KEY, limit, 1, true, start));
    assert!(wait > Duration::ZERO);
    assert!(
        allowed(counters.rate(
            KEY,
            limit,
            1,
            false,
            start + wait - Duration::from_millis(1)
        ))
        .is_none()
    );
    assert!(allowed(counters.rate(KEY, limit, 1, true, start + wait)).is_some());
}

/// Where a request fits after waiting `offset` ms, simulating the buckets directly.
fn fits(state: RateState, elapsed: u64, offset: u64, period: u64, calls: u32, needed: u32) -> bool {
    let at = elapsed + offset;
    let estimate = if at < period {
        u64::from(state.curr) + u64::from(state.prev) * (period - at) / period
    } else if at < 2 * period {
        u64::from(state.curr) * (2 * period - at) / period
    } else {
        0
    };
    estimate + u64::from(needed) <= u64::from(calls)
}

#[test]
fn retry_after_math_is_exact() {
    let period = 12;
    for calls in 1..=5u32 {
        for needed in 1..=calls.min(2) {
            for prev in 0..=calls {
                for curr in 0..=calls {
                    for elapsed in 0..period {
                        let state = RateState {
                            window: 0,
                            prev,
                            curr,
                        };
                        if fits(state, elapsed, 0, period, calls, needed) {
                            continue;
                        }
                        let wait = retry_after_ms(state, elapsed, period, calls, needed);
                        let case = format!(
                            "calls={calls} needed={needed} prev={prev} curr={curr} elapsed={elapsed} wait={wait}"
                        );
                        assert!(wait >= 1, "{case}");
                        assert!(
                            fits(state, elapsed, wait, period, calls, needed),
                            "{case}: does not fit then"
                        );
                        assert!(
                            !fits(state, elapsed, wait - 1, period, calls, needed),
                            "{case}: fits earlier"
                        );
                    }
                }
            }
        }
    }
    // A request that can never fit waits a window.
    assert_eq!(
        retry_after_ms(
            RateState {
                window: 0,
                prev: 0,
                curr: 0
            },
            3,
            10,
            1,
            2
        ),
        10
    );
}

#[test]
fn uncounted_requests_do_not_use_the_limit() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 1,
        period_ms: 1_000,
    };
    for _ in 0..5 {
        assert_eq!(
            allowed(counters.rate(KEY, limit, 1, false, secs(10))),
            Some(1)
        );
    }
    assert_eq!(
        allowed(counters.rate(KEY, limit, 1, true, secs(10))),
        Some(0)
    );
    // Full: even an uncounted request is refused.
    assert!(allowed(counters.rate(KEY, limit, 1, false, secs(10))).is_none());
}

#[test]
fn increment_count_uses_several_calls() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 5,
        period_ms: 1_000,
    };
    assert_eq!(
        allowed(counters.rate(KEY, limit, 3, true, secs(10))),
        Some(2)
    );
    assert!(allowed(counters.rate(KEY, limit, 3, true, secs(10))).is_none());
    assert_eq!(
        allowed(counters.rate(KEY, limit, 2, true, secs(10))),
        Some(0)
    );
}

#[test]
fn a_clock_stepping_back_keeps_the_counts() {
    let counters = Counters::new();
    let limit = RateLimit {
        calls: 1,
        period_ms: 10_000,
    };
    assert!(allowed(counters.rate(KEY, limit, 1, true, secs(100))).is_some());
    assert!(allowed(counters.rate(KEY, limit, 1, true, secs(95))).is_none());
    assert!(allowed(counters.rate(KEY, limit, 1, true, secs(99))).is_none());
}

#[test]
fn rate_state_packs_and_rolls() {
    let state = RateState {
        window: 0xfffe,
        prev: 7,
        curr: MAX_RATE_CALLS,
    };
    assert_eq!(RateState::unpack(state.pack()), state);
    assert_eq!(state.at(0xfffe, false), state);
    assert_eq!(
        state.at(0xffff, false),
        RateState {
            window: 0xffff,
            prev: MAX_RATE_CALLS,
            curr: 0
        }
    );
    // Wraps: 0x1_0000 is two windows after 0xfffe.
    assert_eq!(
        state.at(0x1_0000, false),
        RateState {
            window: 0,
            prev: 0,
            curr: 0
        }
    );
    assert_eq!(
        state.at(0xfffe, true),
        RateState {
            window: 0xfffe,
            prev: 0,
            curr: 0
        }
    );
    assert_eq!(
        state.at(0xfff0, false),
        state,
        "an older window keeps the state"
    );
    assert_eq!(
        RateState {
            window: 0,
            prev: 10,
            curr: 1
        }
        .estimate(2_500, 10_000),
        1 + 7
    );
}

#[test]
fn concurrent_requests_never_exceed_the_limit() {
    let counters = Arc::new(Counters::new());
    let admitted = Arc::new(AtomicUsize::new(0));
    let limit = RateLimit {
        calls: 1_000,
        period_ms: 60_000,
    };
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let counters = Arc::clone(&counters);
            let admitted = Arc::clone(&admitted);
            thread::spawn(move || {
                for _ in 0..500 {
                    if allowed(counters.rate(KEY, limit, 1, true, secs(60))).is_some() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(admitted.load(Ordering::Relaxed), 1_000);
}

fn quota(
    calls: Option<u32>,
    bandwidth_bytes: Option<u64>,
    period_s: u64,
    start_s: i64,
) -> QuotaLimit {
    QuotaLimit {
        calls,
        bandwidth_bytes,
        window: QuotaWindow { period_s, start_s },
    }
}

#[test]
fn quota_counts_calls_in_fixed_windows() {
    let counters = Counters::new();
    let limit = quota(Some(2), None, 300, 0);
    for _ in 0..2 {
        assert!(matches!(
            counters.quota(KEY, limit, 1, true, secs(1_000)),
            QuotaOutcome::Allowed { charge: None }
        ));
    }
    match counters.quota(KEY, limit, 1, true, secs(1_000)) {
        QuotaOutcome::CallsExceeded { retry_after } => assert_eq!(retry_after, Some(secs(200))),
        other => panic!("{other:?}"),
    }
    // Just before the window ends: still out. At the boundary: renewed.
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(1_199)),
        QuotaOutcome::CallsExceeded { .. }
    ));
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(1_200)),
        QuotaOutcome::Allowed { .. }
    ));
}

#[test]
fn quota_windows_align_to_the_first_period_start() {
    assert_eq!(
        quota_window(
            QuotaWindow {
                period_s: 300,
                start_s: 1_000
            },
            secs(1_100)
        ),
        (0, Some(secs(200)))
    );
    assert_eq!(
        quota_window(
            QuotaWindow {
                period_s: 300,
                start_s: 1_000
            },
            secs(1_300)
        ),
        (1, Some(secs(300)))
    );
    // Before the first window starts, it is the current one.
    assert_eq!(
        quota_window(
            QuotaWindow {
                period_s: 300,
                start_s: 1_000
            },
            secs(900)
        ),
        (0, Some(secs(400)))
    );
    assert_eq!(
        quota_window(
            QuotaWindow {
                period_s: 0,
                start_s: 0
            },
            secs(900)
        ),
        (0, None)
    );
    let year_one = QuotaWindow {
        period_s: 86_400,
        start_s: -62_135_596_800,
    };
    assert_eq!(
        quota_window(year_one, Duration::from_millis(86_400_000 + 1_500)).1,
        Some(Duration::from_millis(86_398_500))
    );
}

#[test]
fn lifetime_quota_never_renews() {
    let counters = Counters::new();
    let limit = quota(Some(1), None, 0, 0);
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(10)),
        QuotaOutcome::Allowed { .. }
    ));
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(10_000_000)),
        QuotaOutcome::CallsExceeded { retry_after: None }
    ));
}

#[test]
fn bandwidth_is_charged_after_the_response() {
    let counters = Counters::new();
    let limit = quota(None, Some(1_024), 300, 0);
    let QuotaOutcome::Allowed {
        charge: Some(charge),
    } = counters.quota(KEY, limit, 1, true, secs(10))
    else {
        panic!("expected a charge");
    };
    // Nothing is charged until settled: another request passes.
    let QuotaOutcome::Allowed {
        charge: Some(second),
    } = counters.quota(KEY, limit, 1, true, secs(10))
    else {
        panic!("expected a charge");
    };
    counters.settle(&[charge], 600, 300, secs(20));
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(20)),
        QuotaOutcome::Allowed { .. }
    ));
    counters.settle(&[second], 0, 124, secs(20));
    match counters.quota(KEY, limit, 1, true, secs(30)) {
        QuotaOutcome::BandwidthExceeded { retry_after } => assert_eq!(retry_after, Some(secs(270))),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        counters.quota(KEY, limit, 1, true, secs(300)),
        QuotaOutcome::Allowed { .. }
    ));
    // Uncounted requests owe nothing.
    assert!(matches!(
        counters.quota(KEY, limit, 1, false, secs(300)),
        QuotaOutcome::Allowed { charge: None }
    ));
}

#[test]
fn concurrency_permits_are_given_back_on_drop() {
    let counters = Counters::new();
    let first = counters.try_acquire(7, 2).unwrap();
    let second = counters.try_acquire(7, 2).unwrap();
    assert!(counters.try_acquire(7, 2).is_none());
    assert!(
        counters.try_acquire(7, 3).is_some(),
        "each policy enforces its own max-count"
    );
    assert_eq!(counters.in_flight(7), 2);
    drop(first);
    assert_eq!(counters.in_flight(7), 1);
    let third = counters.try_acquire(7, 2).unwrap();
    drop((second, third));
    assert_eq!(counters.in_flight(7), 0);
    assert!(format!("{:?}", counters.try_acquire(8, 1).unwrap()).contains("in_flight"));
}

#[test]
fn sweep_removes_expired_entries_only() {
    let counters = Counters::new();
    let rate = RateLimit {
        calls: 5,
        period_ms: 10_000,
    };
    counters.rate(KEY, rate, 1, true, secs(100));
    let quota_limit = quota(Some(5), Some(10_240), 300, 0);
    let QuotaOutcome::Allowed {
        charge: Some(charge),
    } = counters.quota(KEY, quota_limit, 1, true, secs(100))
    else {
        panic!()
    };
    let permit = counters.try_acquire(1, 1).unwrap();
    drop(counters.try_acquire(2, 1));
    assert_eq!(counters.len(), 4);

    assert_eq!(counters.sweep(secs(110)), 1, "only the idle gauge goes");
    assert_eq!(counters.sweep(secs(119)), 0);
    assert_eq!(
        counters.sweep(secs(120)),
        1,
        "the rate entry expires after two periods"
    );
    assert_eq!(
        counters.sweep(secs(400)),
        0,
        "a pending charge keeps the quota entry"
    );
    drop(charge);
    assert_eq!(
        counters.sweep(secs(299)),
        0,
        "the quota window is still current"
    );
    assert_eq!(counters.sweep(secs(300)), 1);
    drop(permit);
    assert_eq!(counters.sweep(secs(300)), 1);
    assert!(counters.is_empty());
    assert!(format!("{counters:?}").contains("rates: 0"));
}

#[test]
fn policy_instance_ids_are_stable_and_distinct() {
    let id = policy_instance_id("apis[a].policy", Position::new(3, 9), "rate-limit");
    assert_eq!(
        id,
        policy_instance_id("apis[a].policy", Position::new(3, 9), "rate-limit")
    );
    assert_ne!(
        id,
        policy_instance_id("apis[b].policy", Position::new(3, 9), "rate-limit")
    );
    assert_ne!(
        id,
        policy_instance_id("apis[a].policy", Position::new(3, 10), "rate-limit")
    );
    assert_ne!(
        id,
        policy_instance_id("apis[a].policy", Position::new(3, 9), "quota-by-key")
    );
    // FNV-1a with no random seed: the same value in every process.
    assert_eq!(
        policy_instance_id("", Position::new(0, 0), ""),
        policy_instance_id("", Position::new(0, 0), "")
    );
}
