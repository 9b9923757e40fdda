//! The store's behaviour, one async function per case; `store.rs` runs each on SQLite and
//! on PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use gatehouse_store::{
    ChangesSince, GatewayKeys, Heartbeat, Kind, ListQuery, Op, Precondition, StoreError, WriteOp,
};
use serde_json::json;
use tokio::time::timeout;

use crate::common::TestDb;

/// How long a watch may take to see a local commit (generous: CI machines are slow).
const LOCAL_WAKE: Duration = Duration::from_secs(10);

fn put(kind: Kind, id: &str, body: serde_json::Value) -> WriteOp {
    WriteOp::put(kind, id, body)
}

fn changes(answer: ChangesSince) -> Vec<(u64, Kind, String, Op)> {
    match answer {
        ChangesSince::Changes(changes) => changes
            .into_iter()
            .map(|c| (c.revision, c.kind, c.id, c.op))
            .collect(),
        ChangesSince::Compacted { oldest_available } => {
            panic!("unexpected Compacted {{ oldest_available: {oldest_available} }}")
        }
    }
}

pub(crate) async fn crud_round_trip(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.get(Kind::Api, "echo").await.unwrap(), None);

    let body = json!({"id": "echo", "path": "/echo", "nested": {"list": [1, "two", null]}});
    let revision = store
        .write(vec![put(Kind::Api, "echo", body.clone())])
        .await
        .unwrap();
    let stored = store.get(Kind::Api, "echo").await.unwrap().expect("stored");
    assert_eq!((stored.kind, stored.id.as_str()), (Kind::Api, "echo"));
    assert_eq!(stored.body, body, "the JSON document comes back as written");
    assert_eq!(stored.revision, revision);
    assert_eq!(
        store.get(Kind::Backend, "echo").await.unwrap(),
        None,
        "kinds are separate"
    );

    let replaced = json!({"id": "echo", "path": "/echo/v2"});
    let revision2 = store
        .write(vec![put(Kind::Api, "echo", replaced.clone())])
        .await
        .unwrap();
    assert!(revision2 > revision);
    let stored = store.get(Kind::Api, "echo").await.unwrap().expect("stored");
    assert_eq!(
        (stored.body, stored.revision),
        (replaced, revision2),
        "replaced whole"
    );

    store
        .write(vec![WriteOp::delete(Kind::Api, "echo")])
        .await
        .unwrap();
    assert_eq!(store.get(Kind::Api, "echo").await.unwrap(), None);

    let before = store.revision().await.unwrap();
    match store.write(vec![WriteOp::delete(Kind::Api, "echo")]).await {
        Err(StoreError::NotFound {
            kind: Kind::Api,
            id,
        }) => assert_eq!(id, "echo"),
        other => panic!("deleting a missing entity: {other:?}"),
    }
    assert_eq!(
        store.revision().await.unwrap(),
        before,
        "a failed delete takes no revision"
    );
}

pub(crate) async fn revisions_increase_by_the_number_of_ops(db: TestDb) {
    let store = &db.store;
    assert_eq!(
        store.revision().await.unwrap(),
        0,
        "a new store is at revision 0"
    );
    assert_eq!(
        store.write(vec![]).await.unwrap(),
        0,
        "an empty batch writes nothing"
    );

    let batch = vec![
        put(Kind::Api, "a", json!({})),
        put(Kind::Product, "p", json!({})),
        put(Kind::Api, "b", json!({})),
    ];
    assert_eq!(store.write(batch).await.unwrap(), 3);
    let mut revisions = Vec::new();
    for (kind, id) in [(Kind::Api, "a"), (Kind::Product, "p"), (Kind::Api, "b")] {
        revisions.push(store.get(kind, id).await.unwrap().unwrap().revision);
    }
    assert_eq!(
        revisions,
        [1, 2, 3],
        "each op gets its own revision, in batch order"
    );

    let batch = vec![
        put(Kind::Api, "a", json!({"v": 2})),
        WriteOp::delete(Kind::Api, "b"),
    ];
    assert_eq!(store.write(batch).await.unwrap(), 5);
    assert_eq!(store.revision().await.unwrap(), 5);
    assert_eq!(store.write(vec![]).await.unwrap(), 5);
}

pub(crate) async fn if_match_succeeds_on_the_current_revision_and_fails_with_the_current_one(
    db: TestDb,
) {
    let store = &db.store;
    let r1 = store
        .write(vec![put(Kind::Backend, "b", json!({"v": 1}))])
        .await
        .unwrap();
    let r2 = store
        .write(vec![
            put(Kind::Backend, "b", json!({"v": 2})).with_precondition(Precondition::IfMatch(r1)),
        ])
        .await
        .unwrap();
    assert_eq!(
        store.get(Kind::Backend, "b").await.unwrap().unwrap().body,
        json!({"v": 2})
    );

    // A writer still holding r1 lost the race.
    let stale =
        put(Kind::Backend, "b", json!({"v": 3})).with_precondition(Precondition::IfMatch(r1));
    match store.write(vec![stale]).await {
        Err(StoreError::PreconditionFailed {
            kind: Kind::Backend,
            id,
            expected,
            current_revision,
        }) => {
            assert_eq!(
                (id.as_str(), expected, current_revision),
                ("b", r1, Some(r2))
            );
        }
        other => panic!("stale If-Match: {other:?}"),
    }
    assert_eq!(
        store.get(Kind::Backend, "b").await.unwrap().unwrap().body,
        json!({"v": 2})
    );

    // If-Match on a delete, and on an entity that does not exist.
    let delete = WriteOp::delete(Kind::Backend, "b").with_precondition(Precondition::IfMatch(r1));
    assert!(matches!(
        store.write(vec![delete]).await,
        Err(StoreError::PreconditionFailed { .. })
    ));
    let delete = WriteOp::delete(Kind::Backend, "b").with_precondition(Precondition::IfMatch(r2));
    store.write(vec![delete]).await.unwrap();
    let missing = put(Kind::Backend, "b", json!({})).with_precondition(Precondition::IfMatch(r2));
    match store.write(vec![missing]).await {
        Err(StoreError::PreconditionFailed {
            current_revision: None,
            ..
        }) => {}
        other => panic!("If-Match on a missing entity: {other:?}"),
    }
}

pub(crate) async fn if_none_match_creates_once_then_reports_already_exists(db: TestDb) {
    let store = &db.store;
    let create = || {
        put(Kind::Subscription, "s1", json!({"n": 1})).with_precondition(Precondition::IfNoneMatch)
    };
    let revision = store.write(vec![create()]).await.unwrap();
    match store.write(vec![create()]).await {
        Err(StoreError::AlreadyExists {
            kind: Kind::Subscription,
            id,
            current_revision,
        }) => assert_eq!((id.as_str(), current_revision), ("s1", revision)),
        other => panic!("second create: {other:?}"),
    }
    assert_eq!(store.revision().await.unwrap(), revision);
}

pub(crate) async fn a_failed_op_rolls_back_the_whole_batch(db: TestDb) {
    let store = &db.store;
    let r1 = store
        .write(vec![put(Kind::Api, "kept", json!({"v": 1}))])
        .await
        .unwrap();
    let before_all = store.all().await.unwrap();
    let before_changes = store.changes_since(0, 100).await.unwrap();

    let failing_batches = [
        (
            "stale If-Match last",
            vec![
                put(Kind::Api, "new-1", json!({})),
                put(Kind::Api, "kept", json!({"v": 2})),
                put(Kind::Api, "kept", json!({"v": 3}))
                    .with_precondition(Precondition::IfMatch(r1)),
            ],
        ),
        (
            "If-None-Match on an existing entity first",
            vec![
                put(Kind::Api, "kept", json!({})).with_precondition(Precondition::IfNoneMatch),
                put(Kind::Api, "new-2", json!({})),
            ],
        ),
        (
            "delete of a missing entity in the middle",
            vec![
                WriteOp::delete(Kind::Api, "kept"),
                WriteOp::delete(Kind::Api, "never-was"),
                put(Kind::Api, "new-3", json!({})),
            ],
        ),
    ];
    for (name, batch) in failing_batches {
        assert!(store.write(batch).await.is_err(), "{name}");
        assert_eq!(
            store.revision().await.unwrap(),
            r1,
            "{name}: revision unchanged"
        );
        assert_eq!(
            store.all().await.unwrap(),
            before_all,
            "{name}: entities unchanged"
        );
        assert_eq!(
            store.changes_since(0, 100).await.unwrap(),
            before_changes,
            "{name}: no change logged"
        );
    }

    // The store still takes writes, at the next revision.
    assert_eq!(
        store
            .write(vec![put(Kind::Api, "after", json!({}))])
            .await
            .unwrap(),
        r1 + 1
    );
}

pub(crate) async fn ops_later_in_a_batch_see_earlier_ones(db: TestDb) {
    let store = &db.store;
    let revision = store
        .write(vec![
            put(Kind::Api, "a", json!({"v": 1})).with_precondition(Precondition::IfNoneMatch),
            put(Kind::Api, "a", json!({"v": 2})).with_precondition(Precondition::IfMatch(1)),
            WriteOp::delete(Kind::Api, "a").with_precondition(Precondition::IfMatch(2)),
            put(Kind::Api, "a", json!({"v": 4})).with_precondition(Precondition::IfNoneMatch),
        ])
        .await
        .unwrap();
    assert_eq!(revision, 4);
    let stored = store.get(Kind::Api, "a").await.unwrap().unwrap();
    assert_eq!((stored.body, stored.revision), (json!({"v": 4}), 4));
}

pub(crate) async fn changes_since_lists_each_op_in_revision_order(db: TestDb) {
    let store = &db.store;
    store
        .write(vec![
            put(Kind::Api, "a", json!({})),
            put(Kind::NamedValue, "nv", json!({})),
        ])
        .await
        .unwrap();
    store
        .write(vec![WriteOp::delete(Kind::Api, "a")])
        .await
        .unwrap();
    store
        .write(vec![put(Kind::Policy, "global", json!({}))])
        .await
        .unwrap();

    let all = changes(store.changes_since(0, 100).await.unwrap());
    assert_eq!(
        all,
        [
            (1, Kind::Api, "a".to_owned(), Op::Upsert),
            (2, Kind::NamedValue, "nv".to_owned(), Op::Upsert),
            (3, Kind::Api, "a".to_owned(), Op::Delete),
            (4, Kind::Policy, "global".to_owned(), Op::Upsert),
        ]
    );
    // Paging by revision: `limit` rows at a time, resuming from the last one seen.
    assert_eq!(changes(store.changes_since(1, 2).await.unwrap()), all[1..3]);
    assert_eq!(changes(store.changes_since(3, 2).await.unwrap()), all[3..]);
    assert!(
        changes(store.changes_since(4, 2).await.unwrap()).is_empty(),
        "up to date"
    );
    assert!(
        changes(store.changes_since(99, 2).await.unwrap()).is_empty(),
        "from the future"
    );
    assert!(
        changes(store.changes_since(0, 0).await.unwrap()).is_empty(),
        "limit 0"
    );
}

pub(crate) async fn compaction_drops_old_changes_and_reports_the_horizon(db: TestDb) {
    let store = &db.store;
    for i in 0..10 {
        store
            .write(vec![put(Kind::Api, &format!("api-{i}"), json!({}))])
            .await
            .unwrap();
    }
    assert_eq!(store.compact(4).await.unwrap(), 6, "keep revisions 7..=10");
    assert_eq!(
        store.changes_since(5, 100).await.unwrap(),
        ChangesSince::Compacted {
            oldest_available: 6
        }
    );
    assert_eq!(
        store.changes_since(0, 100).await.unwrap(),
        ChangesSince::Compacted {
            oldest_available: 6
        }
    );
    let kept: Vec<u64> = changes(store.changes_since(6, 100).await.unwrap())
        .into_iter()
        .map(|(revision, ..)| revision)
        .collect();
    assert_eq!(kept, [7, 8, 9, 10]);

    assert_eq!(
        store.compact(8).await.unwrap(),
        6,
        "the horizon never moves back"
    );
    assert_eq!(
        store.compact(100).await.unwrap(),
        6,
        "keeping more than exists is fine"
    );
    assert_eq!(store.compact(0).await.unwrap(), 10, "keep nothing");
    assert!(changes(store.changes_since(10, 100).await.unwrap()).is_empty());
    // Entities are untouched by compaction.
    assert_eq!(store.all().await.unwrap().1.len(), 10);
}

pub(crate) async fn all_reads_every_entity_at_one_revision(db: TestDb) {
    let store = &db.store;
    let (revision, entities) = store.all().await.unwrap();
    assert_eq!((revision, entities.len()), (0, 0), "empty store");

    store
        .write(vec![
            put(Kind::Product, "starter", json!({"p": 1})),
            put(Kind::Api, "b", json!({})),
            put(Kind::Api, "a", json!({})),
            put(Kind::Policy, "global", json!({"value": "<policies/>"})),
        ])
        .await
        .unwrap();
    let (revision, entities) = store.all().await.unwrap();
    assert_eq!(revision, 4);
    let keys: Vec<(Kind, &str)> = entities.iter().map(|e| (e.kind, e.id.as_str())).collect();
    assert_eq!(
        keys,
        [
            (Kind::Api, "a"),
            (Kind::Api, "b"),
            (Kind::Product, "starter"),
            (Kind::Policy, "global")
        ],
        "ordered by kind, then id"
    );

    // Consistency under concurrent writes: every write adds one entity, so a consistent
    // read holds exactly `revision` entities, the newest written at `revision`.
    let writer = {
        let store = db.store.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                store
                    .write(vec![put(Kind::Backend, &format!("b{i:03}"), json!({}))])
                    .await
                    .unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let (revision, entities) = store.all().await.unwrap();
        assert_eq!(
            entities.len() as u64,
            revision,
            "entity count matches the revision"
        );
        let newest = entities
            .iter()
            .map(|e| e.revision)
            .max()
            .unwrap_or_default();
        assert_eq!(
            newest, revision,
            "the newest entity is at the read's revision"
        );
    }
    writer.await.unwrap();
    assert_eq!(store.all().await.unwrap().0, 64);
}

pub(crate) async fn list_searches_ids_case_insensitively_and_pages(db: TestDb) {
    let store = &db.store;
    let ids = [
        "echo-v2", "Echo-API", "orders", "50%-off", "a_b", "axb", "zeta",
    ];
    store
        .write(
            ids.iter()
                .map(|id| put(Kind::Api, id, json!({"id": id})))
                .collect(),
        )
        .await
        .unwrap();
    store
        .write(vec![put(Kind::Backend, "echo-backend", json!({}))])
        .await
        .unwrap();

    let list = |search: Option<&str>, skip, top| {
        let query = ListQuery {
            search: search.map(str::to_owned),
            skip,
            top,
        };
        async move {
            let page = store.list(Kind::Api, &query).await.unwrap();
            let ids: Vec<String> = page.items.iter().map(|e| e.id.clone()).collect();
            (ids, page.total)
        }
    };

    struct Case {
        name: &'static str,
        search: Option<&'static str>,
        skip: u64,
        top: u64,
        want: &'static [&'static str],
        total: u64,
    }
    let case = |name, search, skip, top, want, total| Case {
        name,
        search,
        skip,
        top,
        want,
        total,
    };
    let all = &[
        "50%-off", "Echo-API", "a_b", "axb", "echo-v2", "orders", "zeta",
    ];
    let cases = [
        case("everything, in byte order", None, 0, 100, all, 7),
        case(
            "case-insensitive",
            Some("ECHO"),
            0,
            100,
            &["Echo-API", "echo-v2"],
            2,
        ),
        case("substring anywhere", Some("der"), 0, 100, &["orders"], 1),
        case("% is literal", Some("%"), 0, 100, &["50%-off"], 1),
        case("_ is literal", Some("_"), 0, 100, &["a_b"], 1),
        case("no match", Some("nothing"), 0, 100, &[], 0),
        case("first page", None, 0, 3, &["50%-off", "Echo-API", "a_b"], 7),
        case("last page", None, 6, 3, &["zeta"], 7),
        case("past the end", None, 10, 3, &[], 7),
        case("empty page still counts", Some("echo"), 0, 0, &[], 2),
    ];
    for c in cases {
        let (got, total) = list(c.search, c.skip, c.top).await;
        assert_eq!(got, c.want, "{}", c.name);
        assert_eq!(total, c.total, "{}: total", c.name);
    }
    let page = store.list(Kind::Api, &ListQuery::default()).await.unwrap();
    let first = &page.items[0];
    assert_eq!(
        (first.kind, first.body.clone(), first.revision),
        (Kind::Api, json!({"id": "50%-off"}), 4)
    );
}

pub(crate) async fn list_caps_the_page_at_the_maximum(db: TestDb) {
    let store = &db.store;
    let batch: Vec<WriteOp> = (0..1005)
        .map(|i| put(Kind::Subscription, &format!("s{i:04}"), json!({})))
        .collect();
    store.write(batch).await.unwrap();
    let query = ListQuery {
        search: None,
        skip: 0,
        top: 5000,
    };
    let page = store.list(Kind::Subscription, &query).await.unwrap();
    assert_eq!((page.items.len(), page.total), (1000, 1005));
}

pub(crate) async fn gateway_keys_are_stored_replaced_and_deleted(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.gateway_keys("gw").await.unwrap(), None);
    let keys = GatewayKeys {
        primary: "p1".to_owned(),
        secondary: "s1".to_owned(),
    };
    store.set_gateway_keys("gw", &keys).await.unwrap();
    assert_eq!(store.gateway_keys("gw").await.unwrap(), Some(keys.clone()));

    let rotated = GatewayKeys {
        primary: "p2".to_owned(),
        ..keys
    };
    store.set_gateway_keys("gw", &rotated).await.unwrap();
    assert_eq!(store.gateway_keys("gw").await.unwrap(), Some(rotated));
    assert_eq!(store.gateway_keys("other").await.unwrap(), None);

    assert!(store.delete_gateway_keys("gw").await.unwrap());
    assert!(!store.delete_gateway_keys("gw").await.unwrap());
    assert_eq!(store.gateway_keys("gw").await.unwrap(), None);
    assert_eq!(
        store.revision().await.unwrap(),
        0,
        "keys are not revisioned entities"
    );
}

pub(crate) async fn heartbeats_upsert_per_instance_and_filter_by_last_seen(db: TestDb) {
    let store = &db.store;
    let beat = |instance: &str, last_seen_unix| Heartbeat {
        gateway_id: "gw".to_owned(),
        instance_id: instance.to_owned(),
        hostname: format!("{instance}.pod"),
        version: "0.1.0".to_owned(),
        applied_revision: 7,
        last_error: None,
        uptime_seconds: 60,
        token_expiry_unix: Some(1_900_000_000),
        interval_seconds: Some(60),
        last_seen_unix,
    };
    store.record_heartbeat(&beat("b", 1000)).await.unwrap();
    store.record_heartbeat(&beat("a", 1010)).await.unwrap();
    store
        .record_heartbeat(&Heartbeat {
            gateway_id: "other".to_owned(),
            ..beat("a", 1010)
        })
        .await
        .unwrap();

    let seen = store.heartbeats("gw", 0).await.unwrap();
    assert_eq!(
        seen,
        [beat("a", 1010), beat("b", 1000)],
        "ordered by instance id"
    );
    assert_eq!(
        store.heartbeats("gw", 1000).await.unwrap(),
        [beat("a", 1010)],
        "strictly after"
    );

    // The next heartbeat of an instance replaces its last one.
    let newer = Heartbeat {
        applied_revision: 9,
        last_error: Some("policy `x` failed to compile".to_owned()),
        uptime_seconds: 120,
        token_expiry_unix: None,
        interval_seconds: None,
        ..beat("b", 1020)
    };
    store.record_heartbeat(&newer).await.unwrap();
    assert_eq!(store.heartbeats("gw", 1010).await.unwrap(), [newer]);
    assert_eq!(store.heartbeats("gw", 0).await.unwrap().len(), 2);
    assert_eq!(store.heartbeats("missing", 0).await.unwrap(), []);
}

pub(crate) async fn watch_wakes_on_a_local_commit(db: TestDb) {
    let store = &db.store;
    let mut rx = store.watch();
    assert_eq!(*rx.borrow_and_update(), 0);
    let clone = store.clone();
    let mut rx_of_clone = clone.watch();

    let revision = store
        .write(vec![put(Kind::Api, "a", json!({}))])
        .await
        .unwrap();
    timeout(LOCAL_WAKE, rx.changed())
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(*rx.borrow_and_update(), revision);
    let seen = timeout(LOCAL_WAKE, rx_of_clone.wait_for(|r| *r >= revision))
        .await
        .expect("clone woken")
        .map(|r| *r)
        .unwrap();
    assert_eq!(seen, revision);

    // A rolled-back write does not wake anyone.
    let failing = WriteOp::delete(Kind::Api, "missing");
    assert!(store.write(vec![failing]).await.is_err());
    assert!(!rx.has_changed().unwrap());

    let later = store.watch();
    assert_eq!(
        *later.borrow(),
        revision,
        "a new receiver starts at the current revision"
    );
}

pub(crate) async fn reconnecting_keeps_the_data_and_migrates_once(db: TestDb) {
    db.store
        .write(vec![put(Kind::Gateway, "gw", json!({"apis": []}))])
        .await
        .unwrap();
    let again = db.connect_another().await;
    assert_eq!(again.revision().await.unwrap(), 1);
    assert_eq!(
        *again.watch().borrow(),
        1,
        "watch starts at the stored revision"
    );
    assert_eq!(
        again.get(Kind::Gateway, "gw").await.unwrap().unwrap().body,
        json!({"apis": []})
    );
    assert_eq!(
        again.backend_name(),
        if db.postgres { "postgres" } else { "sqlite" }
    );
}

pub(crate) async fn concurrent_writers_on_two_stores_get_distinct_consecutive_revisions(
    db: TestDb,
) {
    let stores = [db.store.clone(), db.connect_another().await];
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for i in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .write(vec![put(Kind::Api, &format!("s{s}-{i:02}"), json!({}))])
                    .await
                    .unwrap()
            }));
        }
    }
    let mut revisions = BTreeSet::new();
    for task in tasks {
        assert!(
            revisions.insert(task.await.unwrap()),
            "revisions are unique"
        );
    }
    assert_eq!(
        revisions.into_iter().collect::<Vec<_>>(),
        (1..=100).collect::<Vec<_>>()
    );
    let logged: Vec<u64> = changes(db.store.changes_since(0, 1000).await.unwrap())
        .into_iter()
        .map(|(revision, ..)| revision)
        .collect();
    assert_eq!(logged, (1..=100).collect::<Vec<_>>(), "no gap in the log");
    for store in &stores {
        assert_eq!(store.revision().await.unwrap(), 100);
    }
}

/// What [`planned_writes_check_what_they_commit_under_concurrency`] plans: the API `a{i}`
/// may only refer to the backend `b{i}` while it exists, and the backend may only be
/// deleted while nothing refers to it.
fn plan_reference(
    i: usize,
    entities: &[gatehouse_store::Stored],
) -> Result<(Vec<WriteOp>, bool), StoreError> {
    let backend = format!("b{i}");
    if entities
        .iter()
        .any(|e| e.kind == Kind::Backend && e.id == backend)
    {
        let api = put(Kind::Api, &format!("a{i}"), json!({ "backendId": backend }));
        Ok((vec![api], true))
    } else {
        Ok((Vec::new(), false))
    }
}

fn plan_delete(
    i: usize,
    entities: &[gatehouse_store::Stored],
) -> Result<(Vec<WriteOp>, bool), StoreError> {
    let backend = format!("b{i}");
    let referred = entities
        .iter()
        .any(|e| e.kind == Kind::Api && e.body["backendId"] == json!(backend));
    if referred {
        Ok((Vec::new(), false))
    } else {
        Ok((vec![WriteOp::delete(Kind::Backend, &backend)], true))
    }
}

pub(crate) async fn planned_writes_check_what_they_commit_under_concurrency(db: TestDb) {
    const PAIRS: usize = 150;
    let stores = [db.store.clone(), db.connect_another().await];
    let backends = (0..PAIRS)
        .map(|i| put(Kind::Backend, &format!("b{i}"), json!({})))
        .collect();
    db.store.write(backends).await.unwrap();

    // Each pair races a reference against a delete, through different stores (on
    // PostgreSQL: different replicas).
    let mut tasks = Vec::new();
    for i in 0..PAIRS {
        let refer = stores[i % 2].clone();
        let delete = stores[(i + 1) % 2].clone();
        tasks.push(tokio::spawn(async move {
            refer
                .write_planned(move |_, entities| plan_reference(i, &entities))
                .await
                .unwrap()
        }));
        tasks.push(tokio::spawn(async move {
            delete
                .write_planned(move |_, entities| plan_delete(i, &entities))
                .await
                .unwrap()
        }));
    }
    let mut wrote = 0;
    for task in tasks {
        if task.await.unwrap().1 {
            wrote += 1;
        }
    }
    assert_eq!(wrote, PAIRS, "exactly one of each pair went ahead");

    let (revision, entities) = db.store.all().await.unwrap();
    assert_eq!(
        revision,
        (2 * PAIRS) as u64,
        "one revision per write, no more"
    );
    for api in entities.iter().filter(|e| e.kind == Kind::Api) {
        let backend = api.body["backendId"].as_str().unwrap();
        assert!(
            entities
                .iter()
                .any(|e| e.kind == Kind::Backend && e.id == backend),
            "API `{}` refers to the deleted backend `{backend}`",
            api.id
        );
    }
}

pub(crate) async fn a_plan_sees_the_revision_and_its_error_rolls_back(db: TestDb) {
    db.store
        .write(vec![put(Kind::Api, "a", json!({}))])
        .await
        .unwrap();
    #[derive(Debug)]
    enum PlanError {
        Refused(u64, usize),
        Store(StoreError),
    }
    impl From<StoreError> for PlanError {
        fn from(error: StoreError) -> Self {
            Self::Store(error)
        }
    }
    let refused = db
        .store
        .write_planned(
            |revision, entities| -> Result<(Vec<WriteOp>, ()), PlanError> {
                Err(PlanError::Refused(revision, entities.len()))
            },
        )
        .await;
    assert!(
        matches!(refused, Err(PlanError::Refused(1, 1))),
        "{refused:?}"
    );
    // A store error from the ops (here a failed precondition) comes back as the caller's
    // type, and nothing is written.
    let failed = db
        .store
        .write_planned(|_, _| -> Result<(Vec<WriteOp>, ()), PlanError> {
            Ok((
                vec![
                    put(Kind::Api, "b", json!({})),
                    WriteOp::delete(Kind::Api, "missing"),
                ],
                (),
            ))
        })
        .await;
    assert!(
        matches!(failed, Err(PlanError::Store(StoreError::NotFound { .. }))),
        "{failed:?}"
    );
    assert_eq!(db.store.revision().await.unwrap(), 1);
    assert_eq!(db.store.get(Kind::Api, "b").await.unwrap(), None);
}

pub(crate) async fn settings_are_set_once_and_shared(db: TestDb) {
    let other = db.connect_another().await;
    assert_eq!(db.store.setting("admin").await.unwrap(), None);
    let (first, second) = tokio::join!(
        db.store.init_setting("admin", "one"),
        other.init_setting("admin", "two")
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first, second, "both stores see the value set first");
    assert_eq!(
        other.setting("admin").await.unwrap().as_deref(),
        Some(first.as_str())
    );
    db.store.set_setting("admin", "three").await.unwrap();
    assert_eq!(other.init_setting("admin", "four").await.unwrap(), "three");
}

pub(crate) async fn heartbeats_are_deleted_pruned_and_forgotten_with_their_gateway(db: TestDb) {
    let store = &db.store;
    let beat = |gateway: &str, instance: &str, last_seen_unix: i64| Heartbeat {
        gateway_id: gateway.to_owned(),
        instance_id: instance.to_owned(),
        hostname: "host".to_owned(),
        version: "1".to_owned(),
        applied_revision: 1,
        last_error: None,
        uptime_seconds: 1,
        token_expiry_unix: None,
        interval_seconds: None,
        last_seen_unix,
    };
    for heartbeat in [
        beat("edge", "i1", 100),
        beat("edge", "i2", 200),
        beat("edge", "i3", 300),
        beat("west", "i1", 100),
    ] {
        store.record_heartbeat(&heartbeat).await.unwrap();
    }
    let instances =
        |list: Vec<Heartbeat>| list.into_iter().map(|h| h.instance_id).collect::<Vec<_>>();
    assert!(store.delete_heartbeat("edge", "i3").await.unwrap());
    assert!(!store.delete_heartbeat("edge", "i3").await.unwrap());
    assert_eq!(store.prune_heartbeats(100).await.unwrap(), 2, "both i1s");
    assert_eq!(
        instances(store.heartbeats("edge", 0).await.unwrap()),
        ["i2"]
    );
    assert_eq!(
        instances(store.heartbeats("west", 0).await.unwrap()),
        Vec::<String>::new()
    );

    store
        .set_gateway_keys(
            "edge",
            &GatewayKeys {
                primary: "p".to_owned(),
                secondary: "s".to_owned(),
            },
        )
        .await
        .unwrap();
    store.forget_gateway("edge").await.unwrap();
    assert_eq!(store.gateway_keys("edge").await.unwrap(), None);
    assert!(store.heartbeats("edge", 0).await.unwrap().is_empty());
}

pub(crate) async fn a_closed_store_refuses_calls(db: TestDb) {
    db.store.close().await;
    match db.store.revision().await {
        Err(error @ StoreError::Database { .. }) => assert!(error.is_retryable(), "{error}"),
        other => panic!("after close: {other:?}"),
    }
}

// === PostgreSQL only ===

pub(crate) async fn a_write_through_one_store_wakes_the_others_watch_within_100ms(db: TestDb) {
    let other = db.connect_another().await;
    let mut rx = other.watch();
    for round in 0..5 {
        let revision = db
            .store
            .write(vec![put(Kind::Api, &format!("a{round}"), json!({}))])
            .await
            .unwrap();
        let seen = timeout(Duration::from_millis(100), rx.wait_for(|r| *r >= revision))
            .await
            .unwrap_or_else(|_| panic!("round {round}: no NOTIFY within 100 ms"))
            .map(|r| *r)
            .unwrap();
        assert_eq!(seen, revision, "round {round}");
    }
}

pub(crate) async fn the_listener_recovers_when_its_session_is_killed(db: TestDb) {
    let other = db.connect_another().await;
    let mut rx = other.watch();
    let database = url::Url::parse(&db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let killed: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(&database)
    .fetch_one(&sqlx::PgPool::connect(&db.url).await.unwrap())
    .await
    .unwrap();
    assert!(killed >= 2, "both stores' listeners were found ({killed})");

    // A write while (or right after) the sessions are down is caught up on reconnect, and
    // later writes are notified again.
    let first = db
        .store
        .write(vec![put(Kind::Api, "while-down", json!({}))])
        .await
        .unwrap();
    timeout(Duration::from_secs(10), rx.wait_for(|r| *r >= first))
        .await
        .expect("caught up after reconnecting")
        .unwrap();
    let second = db
        .store
        .write(vec![put(Kind::Api, "after", json!({}))])
        .await
        .unwrap();
    timeout(Duration::from_secs(5), rx.wait_for(|r| *r >= second))
        .await
        .expect("notified after reconnecting")
        .unwrap();
}

// === SQLite only ===

pub(crate) async fn sqlite_memory_databases_are_private_and_work(_db: TestDb) {
    let a = gatehouse_store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    let b = gatehouse_store::Store::connect("sqlite::memory:")
        .await
        .unwrap();
    a.write(vec![put(Kind::Api, "a", json!({}))]).await.unwrap();
    assert_eq!(a.revision().await.unwrap(), 1);
    assert_eq!(
        b.revision().await.unwrap(),
        0,
        "each in-memory store is its own database"
    );
    // Many concurrent calls share the one connection.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                a.write(vec![put(Kind::Api, &format!("x{i}"), json!({}))])
                    .await
                    .unwrap()
            })
        })
        .collect();
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(a.revision().await.unwrap(), 21);
}

pub(crate) async fn sqlite_files_are_created_with_their_folder_in_wal_mode(_db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data/nested/gatehouse.db");
    let store = gatehouse_store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    store
        .write(vec![put(Kind::Api, "a", json!({}))])
        .await
        .unwrap();
    assert!(file.exists());
    assert!(
        file.with_file_name("gatehouse.db-wal").exists(),
        "WAL mode: readers never block the writer"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600, "the database is the owner's only");
    assert_eq!(mode(&file.with_file_name("gatehouse.db-wal")), 0o600);
    assert_eq!(
        mode(file.parent().unwrap()),
        0o700,
        "so is the folder made for it"
    );
    assert_eq!(mode(&dir.path().join("data")), 0o700);
    drop(store);

    // An existing file readable by others is taken back.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = gatehouse_store::Store::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    assert_eq!(mode(&file), 0o600);
}
