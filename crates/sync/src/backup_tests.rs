use std::os::unix::fs::PermissionsExt as _;

use gatehouse_model::NamedValue;

use super::*;

fn snapshot(gateway: &str, revision: u64) -> Snapshot {
    let config = Configuration {
        named_values: vec![NamedValue {
            name: "greeting".to_owned(),
            value: "hello".to_owned(),
            secret: false,
        }],
        ..Configuration::default()
    };
    Snapshot::new(revision, gateway, config)
}

#[test]
fn a_written_backup_reads_back_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    assert!(read(dir.path(), "edge").unwrap().is_none(), "none yet");
    let path = write(dir.path(), &snapshot("edge", 7)).unwrap();
    assert_eq!(path, backup_path(dir.path(), "edge"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "it holds subscription keys and secrets");
    assert_eq!(read(dir.path(), "edge").unwrap(), Some(snapshot("edge", 7)));

    write(dir.path(), &snapshot("edge", 8)).unwrap();
    assert_eq!(read(dir.path(), "edge").unwrap().unwrap().revision, 8);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn a_truncated_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &snapshot("edge", 7)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = read(dir.path(), "edge").unwrap_err();
        assert!(
            matches!(error, BackupError::Corrupt { .. }),
            "cut at {cut}: {error}"
        );
        assert!(
            error.to_string().contains("corrupt or truncated"),
            "{error}"
        );
    }
}

#[test]
fn a_backup_edited_behind_its_checksum_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &snapshot("edge", 7)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("hello", "HELLO")).unwrap();
    let error = read(dir.path(), "edge").unwrap_err();
    assert!(matches!(error, BackupError::Checksum { .. }), "{error}");
    assert!(error.to_string().contains("checksum"), "{error}");
}

#[test]
fn garbage_and_other_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = backup_path(dir.path(), "edge");
    for garbage in [
        "\u{0}\u{1}binary".to_owned(),
        "{}".to_owned(),
        r#"{"revision":1,"gatewayId":"edge","configuration":{},"checksum":"x","extra":1}"#
            .to_owned(),
        "[]".to_owned(),
    ] {
        std::fs::write(&path, &garbage).unwrap();
        assert!(
            matches!(
                read(dir.path(), "edge").unwrap_err(),
                BackupError::Corrupt { .. }
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn the_backup_of_another_gateway_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = snapshot("other", 3);
    let bytes = serde_json::to_vec(&other).unwrap();
    std::fs::write(backup_path(dir.path(), "edge"), bytes).unwrap();
    let error = read(dir.path(), "edge").unwrap_err();
    assert!(matches!(error, BackupError::OtherGateway { .. }), "{error}");
}

#[test]
fn writability_is_checked_without_leaving_anything() {
    let dir = tempfile::tempdir().unwrap();
    check_writable(dir.path()).unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert!(check_writable(&dir.path().join("missing")).is_err());
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    assert!(check_writable(&file).is_err());
}

#[tokio::test]
async fn the_writer_backs_up_the_latest_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(GatewayState::new(
        gatehouse_gateway::Metrics::new(),
        gatehouse_gateway::AccessLog::disabled(),
    ));
    let shutdown = CancellationToken::new();
    let (writer, task) = BackupWriter::spawn(
        dir.path().to_owned(),
        "edge".to_owned(),
        state,
        shutdown.clone(),
    );
    for revision in 1..=20 {
        writer.save(revision, Arc::new(snapshot("edge", revision).configuration));
    }
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(read(dir.path(), "edge").unwrap().unwrap().revision, 20);
}
