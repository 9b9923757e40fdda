use super::*;
use crate::metrics::ResponseSource;

fn key(api: &str) -> SeriesKey {
    SeriesKey::api(&Arc::from(api), false)
}

fn scrape(registry: &Arc<SeriesRegistry>) -> String {
    let mut prometheus = prometheus_client::registry::Registry::default();
    prometheus.register_collector(Box::new(registry.clone()));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &prometheus).unwrap();
    text
}

#[test]
fn shard_counts_are_powers_of_two() {
    assert_eq!(shard_count(0), 1);
    assert_eq!(shard_count(1), 1);
    assert_eq!(shard_count(3), 4);
    assert_eq!(shard_count(16), 16);
    assert_eq!(shard_count(100_000), MAX_SHARDS);
}

#[test]
fn each_thread_writes_its_own_shard_and_a_scrape_sums_them() {
    let registry = SeriesRegistry::new(false, 4);
    let series = registry.series(key("a"));
    let numbers: Vec<usize> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        series.record_request(
                            200,
                            ResponseSource::Backend,
                            Duration::from_millis(1),
                        );
                    }
                    series.record_request(500, ResponseSource::Backend, Duration::from_millis(1));
                    thread_number()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(series.counts()[0], [0, 4000, 0, 0, 4]);
    let mut shards: Vec<usize> = numbers.iter().map(|n| n & 3).collect();
    shards.sort_unstable();
    shards.dedup();
    assert_eq!(
        series.requests.iter().count(),
        shards.len(),
        "one shard per thread number: {numbers:?}"
    );
    let (request, backend) = series.api.totals();
    assert_eq!(request.count(), 4004);
    assert_eq!(request.sum_nanos, 4004 * 1_000_000);
    assert_eq!(backend.count(), 0);
}

#[test]
fn shards_sit_on_cache_lines_of_their_own() {
    assert_eq!(std::mem::align_of::<CacheLine<[AtomicU64; 5]>>(), 64);
    assert_eq!(std::mem::size_of::<CacheLine<[AtomicU64; 5]>>(), 64);
    assert_eq!(std::mem::size_of::<CacheLine<ApiCells>>() % 64, 0);
    assert_eq!(std::mem::size_of::<CacheLine<AtomicI64>>(), 64);
}

#[test]
fn a_sharded_gauge_may_go_up_on_one_thread_and_down_on_another() {
    let gauge = ShardedGauge::new(8);
    gauge.inc();
    gauge.inc();
    std::thread::scope(|scope| {
        scope.spawn(|| gauge.dec());
    });
    assert_eq!(gauge.get(), 1);
    gauge.dec();
    assert_eq!(gauge.get(), 0);
}

#[test]
fn a_series_is_shared_while_alive_and_forgotten_once_dropped() {
    let registry = Arc::new(SeriesRegistry::new(false, 2));
    let first = registry.series(key("a"));
    let again = registry.series(key("a"));
    assert!(Arc::ptr_eq(&first, &again));
    let other = registry.series(key("b"));
    assert!(!Arc::ptr_eq(&first, &other));
    // The histograms are per API: shared by its series.
    assert!(Arc::ptr_eq(&first.api, &again.api));
    first.record_request(200, ResponseSource::Backend, Duration::from_millis(1));
    other.record_request(200, ResponseSource::Backend, Duration::from_millis(1));
    assert_eq!(registry.live().len(), 2);

    drop((first, again));
    let text = scrape(&registry);
    assert!(
        !text.contains(r#"api="a""#),
        "a dropped series is not scraped:\n{text}"
    );
    assert!(
        text.contains(r#"requests_total{api="b",status_class="2xx",source="backend"} 1"#),
        "{text}"
    );
    assert_eq!(registry.len(), 1, "the scrape swept the dead entry");

    // Created again, it starts from zero.
    let reborn = registry.series(key("a"));
    assert_eq!(reborn.counts(), [[0; 5]; 3]);
}

#[test]
fn a_slot_creates_its_series_once_and_keeps_an_adopted_one() {
    let registry = SeriesRegistry::new(false, 1);
    let slot = SeriesSlot::default();
    assert!(slot.get().is_none());
    let mut made = 0;
    for _ in 0..3 {
        slot.get_or_create(&registry, || {
            made += 1;
            key("a")
        })
        .record_request(200, ResponseSource::Backend, Duration::ZERO);
    }
    assert_eq!(made, 1);
    assert_eq!(slot.get().unwrap().counts()[0][1], 3);

    let adopted = SeriesSlot::default();
    adopted.adopt(registry.series(key("a")));
    assert_eq!(adopted.get().unwrap().counts()[0][1], 3);
    // A filled slot keeps what it has.
    adopted.adopt(registry.series(key("b")));
    assert_eq!(adopted.get().unwrap().key(), &key("a"));
}

#[test]
fn per_operation_series_carry_the_operation_label() {
    let registry = Arc::new(SeriesRegistry::new(true, 1));
    let api: Arc<str> = Arc::from("echo");
    let get = registry.series(SeriesKey::operation(&api, &Arc::from("get")));
    let unmatched = registry.series(SeriesKey::api(&api, true));
    let nowhere = registry.series(SeriesKey::no_api(true));
    get.record_request(200, ResponseSource::Backend, Duration::ZERO);
    unmatched.record_request(404, ResponseSource::Backend, Duration::ZERO);
    nowhere.record_request(404, ResponseSource::Backend, Duration::ZERO);
    let text = scrape(&registry);
    for needle in [
        r#"requests_total{api="echo",operation="get",status_class="2xx",source="backend"} 1"#,
        r#"requests_total{api="echo",operation="-",status_class="4xx",source="backend"} 1"#,
        r#"requests_total{api="-",operation="-",status_class="4xx",source="backend"} 1"#,
        // One histogram per API, whatever the operation.
        r#"request_duration_seconds_count{api="echo"} 2"#,
        r#"request_duration_seconds_count{api="-"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
}

#[test]
fn series_are_scraped_in_label_order() {
    let registry = Arc::new(SeriesRegistry::new(false, 1));
    let series: Vec<_> = ["c", "a", "b"]
        .into_iter()
        .map(|api| registry.series(key(api)))
        .collect();
    for one in &series {
        one.record_request(200, ResponseSource::Backend, Duration::ZERO);
    }
    let text = scrape(&registry);
    let position = |api: &str| {
        text.find(&format!(r#"requests_total{{api="{api}""#))
            .unwrap()
    };
    assert!(
        position("a") < position("b") && position("b") < position("c"),
        "{text}"
    );
    drop(series);
}
