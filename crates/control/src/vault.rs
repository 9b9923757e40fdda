//! Encryption at rest of private keys.
//!
//! A certificate's `privateKeyPem` is sealed with AES-256-GCM before it is written to the
//! database and opened when it is read back, so a copy of the database (a backup, a
//! replica, a leaked dump) holds no usable private key without the encryption key. The
//! sealed form replaces the field's value: `gatehouse:v1:<base64(nonce ‖ ciphertext)>`;
//! the entity's id and kind are bound to it as associated data, so a sealed value moved
//! to another certificate does not open.
//!
//! The key comes from `GATEHOUSE_ENCRYPTION_KEY` (base64 of 32 bytes), or a file
//! (`--encryption-key-file`), or is created on first start in
//! `<data-dir>/encryption-key` (mode 0600). Losing it makes stored private keys
//! unreadable: back it up apart from the database.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use gatehouse_store::{Kind, Stored};
use serde_json::Value;

/// Prefix of sealed values.
const SEALED_PREFIX: &str = "gatehouse:v1:";
/// The field sealed, by kind.
const SEALED_FIELD: &str = "privateKeyPem";
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
        "stored private key of {kind} `{id}` cannot be decrypted: wrong encryption key, or the database was altered"
    )]
    Open {
        /// Entity kind.
        kind: &'static str,
        /// Entity id.
        id: String,
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

    /// Seals the private key of a certificate body before it is stored; other kinds and
    /// already sealed values pass through.
    #[must_use]
    pub fn seal(&self, kind: Kind, id: &str, mut body: Value) -> Value {
        if kind != Kind::Certificate {
            return body;
        }
        let Some(Value::String(plain)) = body.get(SEALED_FIELD) else {
            return body;
        };
        if plain.starts_with(SEALED_PREFIX) {
            return body;
        }
        let nonce_bytes: [u8; 12] = rand::random();
        let aad = associated_data(kind, id);
        let Ok(sealed) = self.cipher.encrypt(
            Nonce::from_slice(&nonce_bytes),
            Payload {
                msg: plain.as_bytes(),
                aad: &aad,
            },
        ) else {
            return body;
        };
        let mut blob = nonce_bytes.to_vec();
        blob.extend_from_slice(&sealed);
        let text = format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(blob)
        );
        body[SEALED_FIELD] = Value::String(text);
        body
    }

    /// Opens what [`Vault::seal`] sealed.
    ///
    /// # Errors
    ///
    /// [`VaultError::Open`] when the value does not open with this key.
    pub fn open(&self, mut stored: Stored) -> Result<Stored, VaultError> {
        let Some(Value::String(text)) = stored.body.get(SEALED_FIELD) else {
            return Ok(stored);
        };
        let Some(encoded) = text.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored);
        };
        let error = || VaultError::Open {
            kind: crate::entities::noun(stored.kind),
            id: stored.id.clone(),
        };
        let blob = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| error())?;
        if blob.len() < 12 {
            return Err(error());
        }
        let (nonce, sealed) = blob.split_at(12);
        let aad = associated_data(stored.kind, &stored.id);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| error())?;
        let plain = String::from_utf8(plain).map_err(|_| error())?;
        stored.body[SEALED_FIELD] = Value::String(plain);
        Ok(stored)
    }
}

fn associated_data(kind: Kind, id: &str) -> Vec<u8> {
    format!("{}\n{id}", kind.as_str()).into_bytes()
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
