use serde_json::json;

use super::*;

fn vault() -> Vault {
    Vault::from_base64(&base64::engine::general_purpose::STANDARD.encode([7u8; 32])).unwrap()
}

fn stored(id: &str, body: Value) -> Stored {
    Stored {
        kind: Kind::Certificate,
        id: id.to_owned(),
        body,
        revision: 1,
    }
}

#[test]
fn private_keys_are_stored_sealed_and_read_back_plain() {
    // Security: the database never holds a private key in clear.
    let vault = vault();
    let body = json!({"id": "c", "certificatePem": "CERT", "privateKeyPem": "-----BEGIN PRIVATE KEY-----"});
    let sealed = vault.seal(Kind::Certificate, "c", body.clone());
    let text = sealed["privateKeyPem"].as_str().unwrap();
    assert!(text.starts_with(SEALED_PREFIX), "{text}");
    assert!(!text.contains("BEGIN"), "{text}");
    assert_eq!(
        sealed["certificatePem"], "CERT",
        "only the private key is sealed"
    );
    let opened = vault.open(stored("c", sealed)).unwrap();
    assert_eq!(opened.body, body);
}

#[test]
fn a_sealed_key_does_not_open_under_another_id_or_key() {
    let vault = vault();
    let sealed = vault.seal(Kind::Certificate, "c", json!({"privateKeyPem": "secret"}));
    assert!(
        vault.open(stored("other", sealed.clone())).is_err(),
        "bound to its certificate"
    );
    let other =
        Vault::from_base64(&base64::engine::general_purpose::STANDARD.encode([8u8; 32])).unwrap();
    let error = other.open(stored("c", sealed)).unwrap_err();
    assert!(
        error.to_string().contains("wrong encryption key"),
        "{error}"
    );
}

#[test]
fn other_kinds_and_plain_values_pass_through() {
    let vault = vault();
    let api = json!({"id": "a", "privateKeyPem": "not a certificate"});
    assert_eq!(vault.seal(Kind::Api, "a", api.clone()), api);
    let plain = stored("c", json!({"privateKeyPem": "legacy plain"}));
    assert_eq!(
        vault.open(plain).unwrap().body["privateKeyPem"],
        "legacy plain"
    );
}

#[test]
fn keys_must_be_32_bytes_of_base64() {
    assert!(matches!(
        Vault::from_base64("short"),
        Err(VaultError::BadKey)
    ));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(ENCRYPTION_KEY_FILE);
    let (first, created) = Vault::load_or_create(&file).unwrap();
    assert!(created);
    let (second, created) = Vault::load_or_create(&file).unwrap();
    assert!(!created);
    let sealed = first.seal(Kind::Certificate, "c", json!({"privateKeyPem": "k"}));
    assert_eq!(
        second.open(stored("c", sealed)).unwrap().body["privateKeyPem"],
        "k"
    );
}
