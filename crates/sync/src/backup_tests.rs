use std::os::unix::fs::PermissionsExt as _;

use gatehouse_model::NamedValue;

use super::*;

fn snapshot(gateway: &str, revision: u64) -> Snapshot {
    let config = Configuration {
        named_values: vec![NamedValue {
            name: "greeting".to_owned(),
            value: "hello-secret-value".to_owned(),
            secret: true,
        }],
        ..Configuration::default()
    };
    Snapshot::new(revision, gateway, config)
}

fn token(gateway: &str, signed_with: &[u8]) -> GatewayToken {
    GatewayToken::sign(gateway, signed_with, 1_900_000_000).unwrap()
}

fn key() -> BackupKey {
    BackupKey::from_token(&token("edge", b"gateway-key"))
}

#[test]
fn a_written_backup_is_sealed_private_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        read(dir.path(), "edge", &key()).unwrap().is_none(),
        "none yet"
    );
    let path = write(dir.path(), &snapshot("edge", 7), &key()).unwrap();
    assert_eq!(path, backup_path(dir.path(), "edge"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "it holds subscription keys and secrets");
    // Security: no secret in clear on disk.
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hello-secret-value"), "{text}");
    assert!(text.contains(r#""keySource":"token""#), "{text}");
    assert_eq!(
        read(dir.path(), "edge", &key()).unwrap(),
        Some(snapshot("edge", 7))
    );

    write(dir.path(), &snapshot("edge", 8), &key()).unwrap();
    assert_eq!(
        read(dir.path(), "edge", &key()).unwrap().unwrap().revision,
        8
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
}

#[test]
fn a_backup_opens_only_with_the_key_it_was_sealed_with() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &snapshot("edge", 7), &key()).unwrap();
    // Another token (rotated, or another gateway's key).
    let rotated = BackupKey::from_token(&token("edge", b"regenerated-key"));
    let error = read(dir.path(), "edge", &rotated).unwrap_err();
    assert!(matches!(error, BackupError::Sealed { .. }), "{error}");
    assert!(error.to_string().contains("token"), "{error}");

    // A given key survives token changes, and is not the token's.
    let given = BackupKey::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap();
    write(dir.path(), &snapshot("edge", 9), &given).unwrap();
    assert_eq!(
        read(dir.path(), "edge", &given).unwrap().unwrap().revision,
        9
    );
    assert!(read(dir.path(), "edge", &key()).is_err());
    assert!(BackupKey::from_base64("short").is_err());
}

#[test]
fn a_truncated_backup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &snapshot("edge", 7), &key()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = read(dir.path(), "edge", &key()).unwrap_err();
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
fn a_backup_edited_anywhere_is_refused() {
    // The seal covers the snapshot and binds the revision and gateway id in clear.
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), &snapshot("edge", 7), &key()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut older = file.clone();
    older["revision"] = 6.into();
    let mut flipped = file.clone();
    let sealed = file["sealed"].as_str().unwrap();
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    flipped["sealed"] = base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .into();
    for edited in [older, flipped] {
        std::fs::write(&path, edited.to_string()).unwrap();
        let error = read(dir.path(), "edge", &key()).unwrap_err();
        assert!(matches!(error, BackupError::Sealed { .. }), "{error}");
    }
}

#[test]
fn garbage_unsealed_and_other_shapes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = backup_path(dir.path(), "edge");
    let unsealed = serde_json::to_string(&snapshot("edge", 3)).unwrap();
    for garbage in [
        "\u{0}\u{1}binary".to_owned(),
        "{}".to_owned(),
        unsealed,
        r#"{"format":"gatehouse-backup-v9","gatewayId":"edge","revision":1,"keySource":"token","sealed":""}"#
            .to_owned(),
        r#"{"format":"gatehouse-backup-v2","gatewayId":"edge","revision":1,"keySource":"token","sealed":"AAAA"}"#
            .to_owned(),
        "[]".to_owned(),
    ] {
        std::fs::write(&path, &garbage).unwrap();
        assert!(
            matches!(
                read(dir.path(), "edge", &key()).unwrap_err(),
                BackupError::Corrupt { .. }
            ),
            "{garbage:?}"
        );
    }
}

#[test]
fn the_backup_of_another_gateway_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let written = write(dir.path(), &snapshot("other", 3), &key()).unwrap();
    std::fs::rename(written, backup_path(dir.path(), "edge")).unwrap();
    let error = read(dir.path(), "edge", &key()).unwrap_err();
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
    let state = ConfigSink::new(Arc::new(gatehouse_gateway::GatewayState::new(
        gatehouse_gateway::Metrics::new(),
        gatehouse_gateway::AccessLog::disabled(),
    )));
    let shutdown = CancellationToken::new();
    let (writer, task) = BackupWriter::spawn(
        dir.path().to_owned(),
        "edge".to_owned(),
        BackupKeys::Given(Box::new(key())),
        state,
        shutdown.clone(),
    );
    for revision in 1..=20 {
        writer.save(revision, Arc::new(snapshot("edge", revision).configuration));
    }
    shutdown.cancel();
    task.await.unwrap();
    assert_eq!(
        read(dir.path(), "edge", &key()).unwrap().unwrap().revision,
        20
    );
}
