//! Encryption at rest of every secret the control plane stores.
//!
//! Sealed with AES-256-GCM before they are written to the database and opened when read
//! back, so a copy of the database (a backup, a replica, a leaked dump) holds none of them
//! in usable form without the encryption key:
//!
//! - a certificate's `privateKeyPem`;
//! - a subscription's `primaryKey` and `secondaryKey`;
//! - the `value` of a named value marked `secret`;
//! - each gateway's two signing keys (see [`Vault::seal_text`]).
//!
//! The sealed form replaces the value: `gatehouse:v1:<base64(nonce ‖ ciphertext)>`; the
//! entity's kind and id are bound to it as associated data, so a sealed value moved to
//! another entity does not open. A value stored before it was sealed (a database from
//! an older version) is read as it is and sealed at the next start.
//!
//! The key comes from `GATEHOUSE_ENCRYPTION_KEY` (base64 of 32 bytes), or a file
//! (`--encryption-key-file`), or is created on first start in
//! `<data-dir>/encryption-key` (mode 0600). Every replica on one database must use the
//! same key: the database holds a value sealed with it ([`Vault::key_check`]) and a
//! replica whose key does not open it refuses to start. Losing the key makes the stored
//! secrets unreadable: back it up apart from the database.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use gatehouse_store::{Kind, Stored};
use serde_json::Value;

/// Prefix of sealed values.
pub(crate) const SEALED_PREFIX: &str = "gatehouse:v1:";
/// What [`Vault::key_check`] seals.
const KEY_CHECK_PLAINTEXT: &str = "gatehouse encryption key check";
/// The associated data of [`Vault::key_check`].
const KEY_CHECK_PURPOSE: &str = "settings\nencryption-key-check";
/// File name of a generated key under the data directory.
pub const ENCRYPTION_KEY_FILE: &str = "encryption-key";

/// Why the key could not be had, or a value could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The key is not base64 of 32 bytes.
    #[error(
        "the encryption key must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)"
    )]
    BadKey,
    /// Reading or writing the key file failed.
    #[error("encryption key file {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A stored value does not open with this key (wrong key, or tampered with).
    #[error(
        "the stored `{field}` of {kind} `{id}` cannot be decrypted: wrong encryption key, or the database was altered"
    )]
    Open {
        /// Entity kind.
        kind: &'static str,
        /// Entity id.
        id: String,
        /// The sealed field.
        field: &'static str,
    },
}

/// Seals and opens private keys.
#[derive(Clone)]
pub struct Vault {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<key redacted>)")
    }
}

impl Vault {
    /// A vault from a base64 key.
    ///
    /// # Errors
    ///
    /// [`VaultError::BadKey`] unless it is base64 of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| VaultError::BadKey)?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| VaultError::BadKey)?;
        Ok(Self { cipher })
    }

    /// Reads the key from `file`, or creates `<dir>/encryption-key` on first start.
    /// Blocking file I/O: call before serving.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or written, or holds no valid key.
    pub fn load_or_create(file: &Path) -> Result<(Self, bool), VaultError> {
        let io = |source| VaultError::Io {
            path: file.to_owned(),
            source,
        };
        match std::fs::read_to_string(file) {
            Ok(text) => Ok((Self::from_base64(&text)?, false)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let bytes: [u8; 32] = rand::random();
                let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                if let Some(dir) = file.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                crate::auth::write_private(file, &text).map_err(io)?;
                Ok((Self::from_base64(&text)?, true))
            }
            Err(error) => Err(io(error)),
        }
    }

    /// Seals the secret fields of a body before it is stored (see the module docs);
    /// other fields and kinds pass through. Every value is sealed, even one that looks
    /// sealed already: bodies reaching here are always opened ones.
    #[must_use]
    pub fn seal(&self, kind: Kind, id: &str, mut body: Value) -> Value {
        let aad = associated_data(kind, id);
        for field in crate::entities::secret_fields(kind, &body) {
            if let Some(Value::String(plain)) = body.get(*field) {
                let sealed = self.seal_bytes(plain.as_bytes(), &aad);
                body[*field] = Value::String(sealed);
            }
        }
        body
    }

    /// Whether a body as stored holds a secret in clear (written by an older version).
    #[must_use]
    pub fn needs_sealing(kind: Kind, body: &Value) -> bool {
        crate::entities::secret_fields(kind, body).iter().any(|field| {
            matches!(body.get(*field), Some(Value::String(text)) if !text.starts_with(SEALED_PREFIX))
        })
    }

    /// Opens what [`Vault::seal`] sealed.
    ///
    /// # Errors
    ///
    /// [`VaultError::Open`] when a value does not open with this key.
    pub fn open(&self, mut stored: Stored) -> Result<Stored, VaultError> {
        let aad = associated_data(stored.kind, &stored.id);
        for field in crate::entities::secret_fields(stored.kind, &stored.body) {
            let Some(Value::String(text)) = stored.body.get(*field) else {
                continue;
            };
            let Some(plain) = self.open_text_with(text, &aad) else {
                return Err(VaultError::Open {
                    kind: crate::entities::noun(stored.kind),
                    id: stored.id.clone(),
                    field,
                });
            };
            stored.body[*field] = Value::String(plain);
        }
        Ok(stored)
    }

    /// Seals a value that is not part of an entity body (a gateway's signing key),
    /// bound to `purpose` (e.g. `gateway-key\n<id>`).
    #[must_use]
    pub fn seal_text(&self, purpose: &str, plain: &str) -> String {
        self.seal_bytes(plain.as_bytes(), purpose.as_bytes())
    }

    /// Opens what [`Vault::seal_text`] sealed for the same `purpose`: `None` when it does
    /// not open with this key. A value that was never sealed (an older database) comes
    /// back as it is.
    #[must_use]
    pub fn open_text(&self, purpose: &str, text: &str) -> Option<String> {
        self.open_text_with(text, purpose.as_bytes())
    }

    /// A value sealed with this key, stored once per database so that every replica can
    /// check it holds the same key ([`Vault::opens_key_check`]).
    #[must_use]
    pub fn key_check(&self) -> String {
        self.seal_text(KEY_CHECK_PURPOSE, KEY_CHECK_PLAINTEXT)
    }

    /// Whether `check` (a [`Vault::key_check`] from the database) was sealed with this key.
    #[must_use]
    pub fn opens_key_check(&self, check: &str) -> bool {
        check.starts_with(SEALED_PREFIX)
            && self.open_text(KEY_CHECK_PURPOSE, check).as_deref() == Some(KEY_CHECK_PLAINTEXT)
    }

    fn seal_bytes(&self, plain: &[u8], aad: &[u8]) -> String {
        let nonce_bytes: [u8; 12] = rand::random();
        // AES-GCM encryption fails only for messages over 64 GiB.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce_bytes), Payload { msg: plain, aad })
            .unwrap_or_default();
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    }

    /// Opens a sealed value; one without the prefix is returned as it is.
    fn open_text_with(&self, text: &str, aad: &[u8]) -> Option<String> {
        let Some(encoded) = text.strip_prefix(SEALED_PREFIX) else {
            return Some(text.to_owned());
        };
        let blob = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        if blob.len() < 12 {
            return None;
        }
        let (nonce, sealed) = blob.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

fn associated_data(kind: Kind, id: &str) -> Vec<u8> {
    format!("{}\n{id}", kind.as_str()).into_bytes()
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
