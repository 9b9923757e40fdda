//! The evaluator's hashing built-ins: `SHA1`, `SHA256`, `SHA384`, `SHA512` and `MD5`
//! (`Create()`, `HashData`, `new SHA256Managed()`), `HMACSHA1` ... `HMACSHA512` (`new
//! HMACSHA256(key)`, `HashData`), and their `ComputeHash`.

use super::{Evaluator, bad_cast, failed, unknown};
use crate::error::{EvalError, Span};
use crate::native::{HashKind, Native, NativeKind};
use crate::value::Value;

/// Bytes hashed per step charged.
const HASH_BYTES_PER_STEP: usize = 1024;

/// The digest of `data`.
fn digest(kind: HashKind, data: &[u8]) -> Vec<u8> {
    match kind {
        HashKind::Md5 => {
            use md5::Digest as _;
            md5::Md5::digest(data).to_vec()
        }
        HashKind::Sha1 => {
            use sha1::Digest as _;
            sha1::Sha1::digest(data).to_vec()
        }
        HashKind::Sha256 => {
            use sha2::Digest as _;
            sha2::Sha256::digest(data).to_vec()
        }
        HashKind::Sha384 => {
            use sha2::Digest as _;
            sha2::Sha384::digest(data).to_vec()
        }
        HashKind::Sha512 => {
            use sha2::Digest as _;
            sha2::Sha512::digest(data).to_vec()
        }
    }
}

/// The HMAC of `data` under `key` (any length, as .NET takes it).
fn hmac(kind: HashKind, key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
    use hmac::{Hmac, Mac};
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, String> {
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .map_err(|_| "the HMAC key is not valid".to_owned())?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }
    match kind {
        HashKind::Sha1 => run::<Hmac<sha1::Sha1>>(key, data),
        HashKind::Sha256 => run::<Hmac<sha2::Sha256>>(key, data),
        HashKind::Sha384 => run::<Hmac<sha2::Sha384>>(key, data),
        HashKind::Sha512 => run::<Hmac<sha2::Sha512>>(key, data),
        HashKind::Md5 => Err("HMACMD5 is not available in policy expressions".to_owned()),
    }
}

/// The algorithm of `HMACSHA256` and friends.
fn hmac_kind(ty: &str) -> Option<HashKind> {
    ty.strip_prefix("HMAC")
        .and_then(HashKind::from_name)
        .filter(|kind| *kind != HashKind::Md5)
}

/// The size of the hash in bits (`HashSize`).
fn hash_size(kind: HashKind) -> i64 {
    match kind {
        HashKind::Md5 => 128,
        HashKind::Sha1 => 160,
        HashKind::Sha256 => 256,
        HashKind::Sha384 => 384,
        HashKind::Sha512 => 512,
    }
}

impl Evaluator<'_> {
    /// Charges hashing `len` bytes.
    fn charge_hash(&mut self, len: usize, span: Span) -> Result<(), EvalError> {
        for _ in 0..len / HASH_BYTES_PER_STEP {
            self.step(span)?;
        }
        Ok(())
    }

    /// The `byte[]` argument `i` of `what`, copied out.
    fn hash_input(args: &[Value], i: usize, what: &str, span: Span) -> Result<Vec<u8>, EvalError> {
        match args.get(i) {
            Some(Value::Bytes(bytes)) => Ok(bytes.to_vec()),
            Some(Value::Null) => Err(failed(span, format!("the argument of `{what}` is null"))),
            Some(other) => Err(bad_cast(
                span,
                format!(
                    "the argument of `{what}` must be a byte[], not {} (use Encoding.UTF8.GetBytes)",
                    other.type_name()
                ),
            )),
            None => Err(failed(span, format!("`{what}` needs a byte[] argument"))),
        }
    }

    /// `SHA256.Create()`, `SHA256.HashData(bytes)`, `HMACSHA256.HashData(key, bytes)`;
    /// `None` for another type.
    pub(super) fn crypto_static_call(
        &mut self,
        ty: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let what = format!("{ty}.{method}");
        if let Some(kind) = hmac_kind(ty) {
            return Some(match (method, args.len()) {
                ("HashData", 2) => (|| {
                    let key = Self::hash_input(args, 0, &what, span)?;
                    let data = Self::hash_input(args, 1, &what, span)?;
                    self.charge_hash(data.len(), span)?;
                    let mac = hmac(kind, &key, &data).map_err(|m| failed(span, m))?;
                    self.bytes(mac, span)
                })(),
                _ => Err(unknown(
                    span,
                    method,
                    &format!("`{ty}` (with {} argument(s))", args.len()),
                )),
            });
        }
        let kind = HashKind::from_name(ty).filter(|_| !ty.ends_with("Managed"))?;
        Some(match (method, args.len()) {
            ("Create", 0) => Ok(Value::Native(Native::new(NativeKind::Hash(kind)))),
            ("HashData", 1) => (|| {
                let data = Self::hash_input(args, 0, &what, span)?;
                self.charge_hash(data.len(), span)?;
                self.bytes(digest(kind, &data), span)
            })(),
            _ => Err(unknown(
                span,
                method,
                &format!("`{ty}` (with {} argument(s))", args.len()),
            )),
        })
    }

    /// `new HMACSHA256(key)`, `new SHA256Managed()`; `None` for another type.
    pub(super) fn crypto_new(
        &self,
        ty: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        if let Some(kind) = hmac_kind(ty) {
            return Some(match args {
                [Value::Bytes(key)] => Ok(Value::Native(Native::new(NativeKind::Hmac(
                    kind,
                    key.to_vec(),
                )))),
                [Value::Null] => Err(failed(span, format!("the key of `new {ty}` is null"))),
                _ => Err(failed(
                    span,
                    format!("`new {ty}` takes the key, a byte[] (a random key is not available)"),
                )),
            });
        }
        let kind = ty.strip_suffix("Managed").and_then(HashKind::from_name)?;
        Some(if args.is_empty() {
            Ok(Value::Native(Native::new(NativeKind::Hash(kind))))
        } else {
            Err(failed(span, format!("`new {ty}` takes no arguments")))
        })
    }

    /// `hash.ComputeHash(bytes[, offset, count])`, `HashSize`, `Dispose()`.
    pub(super) fn crypto_method(
        &mut self,
        native: &Native,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let (kind, key) = match native.kind() {
            NativeKind::Hash(kind) => (*kind, None),
            NativeKind::Hmac(kind, key) => (*kind, Some(key.as_slice())),
            _ => return None,
        };
        if !matches!(method, "ComputeHash" | "Dispose" | "Clear") {
            return None;
        }
        Some((|| match (method, args) {
            ("ComputeHash", [_] | [_, Value::Int(_), Value::Int(_)]) => {
                let data = Self::hash_input(args, 0, "ComputeHash", span)?;
                let data = match args {
                    [_, Value::Int(offset), Value::Int(count)] => usize::try_from(*offset)
                        .ok()
                        .zip(usize::try_from(*count).ok())
                        .and_then(|(offset, count)| data.get(offset..offset.checked_add(count)?))
                        .ok_or_else(|| {
                            failed(
                                span,
                                format!(
                                    "ComputeHash({offset}, {count}) is out of range for {} bytes",
                                    data.len()
                                ),
                            )
                        })?
                        .to_vec(),
                    _ => data,
                };
                self.charge_hash(data.len(), span)?;
                let hash = match key {
                    Some(key) => hmac(kind, key, &data).map_err(|m| failed(span, m))?,
                    None => digest(kind, &data),
                };
                self.bytes(hash, span)
            }
            ("Dispose" | "Clear", []) => Ok(Value::Null),
            _ => Err(unknown(
                span,
                method,
                &format!("{} (with {} argument(s))", native.type_name(), args.len()),
            )),
        })())
    }

    /// `HashSize` of a hash algorithm.
    pub(super) fn crypto_member(
        &self,
        native: &Native,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        match (native.kind(), name) {
            (NativeKind::Hash(kind) | NativeKind::Hmac(kind, _), "HashSize") => {
                Ok(Value::Int(hash_size(*kind)))
            }
            _ => Err(unknown(span, name, native.type_name())),
        }
    }
}
