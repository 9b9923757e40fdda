//! Who may call what: the admin token (management API) and gateway tokens
//! (Configuration API v2). Each credential opens exactly one of the two APIs.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// File name of the admin token under the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// The management API's bearer token, held as its SHA-256 digest.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Why the admin token could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// Reading or writing the token file failed.
    #[error("admin token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file exists but holds no token.
    #[error("admin token file {path} is empty; delete it to have a new token created")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

impl AdminToken {
    /// A token from its text.
    #[must_use]
    pub fn from_secret(secret: &str) -> Self {
        Self {
            digest: Sha256::digest(secret.trim().as_bytes()).into(),
        }
    }

    /// Reads `<dir>/admin-token`, or creates it (mode 0600, random 256-bit value) on
    /// first start. Returns the token and whether it was created.
    ///
    /// Blocking file I/O: call it before serving, or from `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`AdminTokenError`] when the file cannot be read or written, or is empty.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), AdminTokenError> {
        let path = dir.join(ADMIN_TOKEN_FILE);
        let io = |source| AdminTokenError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Err(AdminTokenError::Empty { path }),
            Ok(text) => Ok((Self::from_secret(&text), false)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let secret = new_secret();
                write_private(&path, &secret).map_err(io)?;
                Ok((Self::from_secret(&secret), true))
            }
            Err(error) => Err(io(error)),
        }
    }

    /// The token's SHA-256, hex: what the database stores to share it between replicas.
    #[must_use]
    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// A token known only by its [`AdminToken::digest_hex`]; `None` when that is not 64
    /// hex digits.
    #[must_use]
    pub fn from_digest_hex(text: &str) -> Option<Self> {
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut digest).ok()?;
        Some(Self { digest })
    }

    /// Whether `presented` is this token, in constant time.
    #[must_use]
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digest.ct_eq(&digest).into()
    }

    /// Checks `Authorization: Bearer <token>`.
    ///
    /// # Errors
    ///
    /// 401 without a bearer token or with a wrong one; 403 with a gateway token (a
    /// gateway can never call the management API).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let value = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "missing `Authorization: Bearer <admin token>`; the token is in <data-dir>/admin-token".to_owned(),
                )
            })?;
        let (scheme, token) = split_scheme(value);
        if scheme.eq_ignore_ascii_case("GatewayKey") {
            return Err(ApiError::Forbidden(
                "gateway tokens can only call the Configuration API (/v2)".to_owned(),
            ));
        }
        if !scheme.eq_ignore_ascii_case("Bearer") || token.is_empty() {
            return Err(ApiError::Unauthorized(
                "the Authorization header must be `Bearer <admin token>`".to_owned(),
            ));
        }
        if self.matches(token.trim()) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("invalid admin token".to_owned()))
        }
    }
}

/// An `Authorization` value's scheme and credentials (schemes are case-insensitive in
/// HTTP; the caller compares them so).
#[must_use]
pub fn split_scheme(value: &str) -> (&str, &str) {
    let value = value.trim();
    match value.split_once(char::is_whitespace) {
        Some((scheme, rest)) => (scheme, rest.trim()),
        None => (value, ""),
    }
}

/// A random 256-bit secret, URL-safe base64 without padding.
#[must_use]
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Writes `contents` to `path` readable by the owner only, atomically (temp + rename).
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
