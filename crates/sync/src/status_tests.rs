use std::time::Duration;

use super::*;

async fn woke(status: &SyncStatus) -> bool {
    tokio::time::timeout(Duration::from_millis(20), status.changed())
        .await
        .is_ok()
}

#[tokio::test]
async fn the_heartbeat_is_woken_by_what_the_control_plane_should_hear() {
    let status = SyncStatus::default();
    assert!(!woke(&status).await, "nothing yet");

    status.set_applied_revision(3);
    assert!(woke(&status).await);
    status.set_applied_revision(3);
    assert!(!woke(&status).await, "same revision");

    status.set_sync_error(Some("refused".to_owned()));
    assert!(woke(&status).await);
    status.set_sync_error(Some("refused again".to_owned()));
    assert!(!woke(&status).await, "a persisting failure wakes it once");
    status.set_sync_error(None);
    assert!(woke(&status).await);

    status.set_config_error(Some("cannot compile".to_owned()));
    assert!(woke(&status).await);
    assert_eq!(status.last_error().as_deref(), Some("cannot compile"));
    status.set_config_error(None);
    assert!(woke(&status).await);
    assert_eq!(status.last_error(), None);
}

#[test]
fn a_configuration_error_is_reported_before_a_sync_error() {
    let status = SyncStatus::default();
    status.set_sync_error(Some("timeout".to_owned()));
    assert_eq!(status.last_error().as_deref(), Some("timeout"));
    status.set_config_error(Some("cannot compile".to_owned()));
    assert_eq!(status.last_error().as_deref(), Some("cannot compile"));
}
