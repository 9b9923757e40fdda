use gatehouse_gateway::{AccessLog, GatewayState, Metrics};
use gatehouse_model::token::GatewayToken;
use serde_json::{Value, json};

use super::*;
use crate::changes::Change;
use crate::settings::{AuthSetting, Endpoint};

fn gateway_state() -> ConfigSink {
    ConfigSink::new(Arc::new(GatewayState::new(
        Metrics::new(),
        AccessLog::disabled(),
    )))
}

fn api(service_url: &str) -> Value {
    json!({
        "id": "a",
        "path": "a",
        "serviceUrl": service_url,
        "subscriptionRequired": false,
        "operations": [{ "id": "all", "method": "*", "urlTemplate": "/*" }],
    })
}

fn upsert(revision: u64, entity: Value) -> Changes {
    Changes {
        revision,
        resync: false,
        changes: vec![Change {
            revision,
            kind: gatehouse_model::wire::Kind::Api,
            id: "a".to_owned(),
            op: gatehouse_model::wire::Op::Upsert,
            entity: Some(entity),
        }],
    }
}

async fn served_at(state: &ConfigSink, status: &SyncStatus, revision: u64) -> LocalCopy {
    let mut config = Configuration::default();
    crate::changes::apply_change(
        &mut config,
        &upsert(revision, api("http://127.0.0.1:9")).changes[0],
    )
    .unwrap();
    let local = LocalCopy {
        revision,
        config: Arc::new(config),
    };
    assert!(apply(state, status, &local, "snapshot").await);
    local
}

#[tokio::test]
async fn a_change_that_does_not_compile_keeps_the_old_configuration_and_the_copy_advances() {
    let state = gateway_state();
    let status = SyncStatus::default();
    let local = served_at(&state, &status, 1).await;

    // A policy this gateway does not know (a newer control plane, say): it cannot
    // compile it.
    let mut unknown = api("http://127.0.0.1:9");
    unknown["policy"] = json!(
        "<policies><inbound><base /><no-such-policy /></inbound><backend><base /></backend><outbound><base /></outbound><on-error><base /></on-error></policies>"
    );
    let outcome = apply_response(&state, &status, &local, &upsert(2, unknown)).await;
    let ChangesOutcome::Advanced(next) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(next.revision, 2, "the local copy advances");
    assert!(
        next.config.apis[0]
            .policy
            .as_deref()
            .is_some_and(|p| p.contains("no-such-policy"))
    );
    assert_eq!(state.served_revision(), 1, "the old configuration serves");
    assert_eq!(status.applied_revision(), 1);
    let error = status.last_error().unwrap();
    assert!(
        error.contains("revision 2") && error.contains("no-such-policy"),
        "{error}"
    );
    let metrics = state.metrics().encode().unwrap();
    assert!(
        metrics.contains(r#"gatehouse_config_sync_errors_total{reason="compile"} 1"#),
        "{metrics}"
    );

    // A change that does not concern the API keeps it failing: the copy still holds it.
    let empty = Changes {
        revision: 3,
        resync: false,
        changes: Vec::new(),
    };
    let ChangesOutcome::Advanced(next) = apply_response(&state, &status, &next, &empty).await
    else {
        panic!("empty answer");
    };
    assert_eq!(
        status.applied_revision(),
        1,
        "still behind while the error stands"
    );

    // The fix converges.
    let outcome = apply_response(
        &state,
        &status,
        &next,
        &upsert(4, api("http://127.0.0.1:10")),
    )
    .await;
    assert!(
        matches!(outcome, ChangesOutcome::Advanced(ref copy) if copy.revision == 4),
        "{outcome:?}"
    );
    assert_eq!(state.served_revision(), 4);
    assert_eq!(status.applied_revision(), 4);
    assert_eq!(status.last_error(), None, "the error is resolved");
}

#[tokio::test]
async fn empty_answers_and_resync_are_not_applied() {
    let state = gateway_state();
    let status = SyncStatus::default();
    let local = served_at(&state, &status, 5).await;
    let empty = Changes {
        revision: 7,
        resync: false,
        changes: Vec::new(),
    };
    let ChangesOutcome::Advanced(next) = apply_response(&state, &status, &local, &empty).await
    else {
        panic!("empty answer");
    };
    assert_eq!(next.revision, 7);
    assert_eq!(status.applied_revision(), 7, "nothing it serves changed");
    assert_eq!(state.served_revision(), 5, "no recompile");

    let resync = Changes {
        resync: true,
        ..upsert(8, api("http://127.0.0.1:9"))
    };
    assert!(matches!(
        apply_response(&state, &status, &next, &resync).await,
        ChangesOutcome::Resync
    ));
    assert_eq!(state.served_revision(), 5);
}

#[tokio::test]
async fn changes_that_cannot_be_understood_ask_for_a_snapshot() {
    let state = gateway_state();
    let status = SyncStatus::default();
    let local = served_at(&state, &status, 1).await;
    let outcome = apply_response(
        &state,
        &status,
        &local,
        &upsert(2, json!({ "id": "a", "nope": 1 })),
    )
    .await;
    let ChangesOutcome::Unusable(error) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(error.reason, SyncErrorReason::BadResponse);
    assert_eq!(state.served_revision(), 1);
}

// The clock is paused: the hour-long backoff and the waits below take no real time, and
// the clock only moves once every task waits, so the step is in its backoff when the
// token changes.
#[tokio::test(start_paused = true)]
async fn a_token_change_ends_the_backoff_early() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("value");
    let sign = |expiry| {
        GatewayToken::sign("edge", b"key", expiry)
            .unwrap()
            .to_string()
    };
    std::fs::write(&path, sign(1_767_322_800)).unwrap();
    let token = Arc::new(
        TokenSource::load(&AuthSetting::File(path.clone()))
            .await
            .unwrap(),
    );
    let state = gateway_state();
    let client = ConfigClient::new(
        Endpoint::parse("http://127.0.0.1:9").unwrap(),
        token.clone(),
        Duration::from_secs(1),
        None,
    )
    .unwrap();
    let mut syncer = Syncer::new(
        state,
        client,
        token.clone(),
        Arc::new(SyncStatus::default()),
        None,
        Duration::from_secs(30),
        Backoff::default(),
    );
    let backoff = SyncState::Backoff {
        attempt: 9,
        delay: Duration::from_secs(3600),
        resume: Box::new(SyncState::Snapshot),
    };
    let step = tokio::spawn(async move { syncer.step(backoff).await });
    // Lets the step run until it waits in its backoff (on the paused clock: at once).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!step.is_finished(), "the step waits out its backoff");
    std::fs::write(&path, sign(1_767_326_400)).unwrap();
    assert!(token.reload().await.unwrap());
    // Well short of the hour: only the token change can end the step in time.
    let next = tokio::time::timeout(Duration::from_secs(5), step)
        .await
        .expect("the backoff ends when the token changes")
        .unwrap();
    assert!(matches!(next, SyncState::Snapshot), "{next:?}");
}
