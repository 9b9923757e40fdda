//! APIM's extension methods on strings, `AsJwt()`, `TryParseJwt(out var jwt)`,
//! `AsBasic()` and `TryParseBasic(out var credentials)`, the `Jwt` and
//! `BasicAuthCredentials` objects, and the `out` arguments of the `TryParse` methods
//! (`int.TryParse(text, out var n)`).

use std::sync::Arc;

use base64::Engine as _;

use super::{Evaluator, bad_cast, failed, to_i64, unknown};
use crate::ast::{Argument, Expr, ExprKind};
use crate::datetime::{MAX_TICKS, TICKS_PER_SECOND, UNIX_EPOCH_TICKS};
use crate::error::{EvalError, Span};
use crate::native::{Jwt, Native, NativeKind};
use crate::value::Value;

/// The extension methods APIM adds to `string`; they accept a null string.
pub(super) const STRING_EXTENSIONS: &[&str] = &["AsJwt", "AsBasic", "TryParseJwt", "TryParseBasic"];

/// The longest token or header value decoded (a JWT is rarely over a few KiB).
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// `scheme credentials` when `text` starts with `scheme` (case-insensitively) and a space.
fn strip_scheme<'t>(text: &'t str, scheme: &str) -> Option<&'t str> {
    let head = text.get(..scheme.len())?;
    let rest = text.get(scheme.len()..)?;
    (head.eq_ignore_ascii_case(scheme) && rest.starts_with(' ')).then(|| rest.trim_start())
}

/// A base64url segment (padding tolerated) decoded as a JSON object.
fn json_segment(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    const URL_SAFE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::general_purpose::NO_PAD.with_decode_allow_trailing_bits(true),
    );
    let bytes = URL_SAFE.decode(segment.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

/// `AsJwt()`: a compact JWS (`header.payload.signature`, the signature may be empty),
/// optionally after `Bearer `; decoded, not validated.
fn parse_jwt(text: &str) -> Option<Jwt> {
    let text = text.trim();
    if text.len() > MAX_TOKEN_LEN {
        return None;
    }
    let token = strip_scheme(text, "Bearer").unwrap_or(text);
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    Some(Jwt {
        header: json_segment(header)?,
        payload: json_segment(payload)?,
    })
}

/// `AsBasic()`: `Basic base64(user:password)`. The credentials are UTF-8 (ISO-8859-1 when
/// they are not valid UTF-8); the user is what comes before the first `:`, and must not be
/// empty.
fn parse_basic(text: &str) -> Option<(String, String)> {
    if text.len() > MAX_TOKEN_LEN {
        return None;
    }
    let encoded = strip_scheme(text.trim(), "Basic")?;
    let bytes = super::text::DOTNET_BASE64.decode(encoded.trim()).ok()?;
    let decoded = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    let (user, password) = decoded.split_once(':')?;
    (!user.is_empty()).then(|| (user.to_owned(), password.to_owned()))
}

/// A claim's value as a string: a string as it is, anything else as its JSON text.
fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A claim's values: the items of an array, or the one value.
fn claim_values(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::Array(items) => items.iter().map(claim_text).collect(),
        serde_json::Value::Null => Vec::new(),
        other => vec![claim_text(other)],
    }
}

/// A NumericDate claim (seconds since the Unix epoch) as a `DateTime`; null when absent
/// or not a number in `DateTime`'s range.
fn numeric_date(value: Option<&serde_json::Value>) -> Value {
    let Some(seconds) = value.and_then(serde_json::Value::as_f64) else {
        return Value::Null;
    };
    // whole seconds, as JwtSecurityToken reads them; a float past i64 saturates and
    // falls outside the range below
    #[allow(clippy::cast_possible_truncation)]
    let whole = seconds.trunc() as i64;
    whole
        .checked_mul(TICKS_PER_SECOND)
        .and_then(|ticks| ticks.checked_add(UNIX_EPOCH_TICKS))
        .filter(|ticks| (0..=MAX_TICKS).contains(ticks))
        .map_or(Value::Null, Value::DateTime)
}

fn text_or_null(value: Option<&serde_json::Value>) -> Value {
    value.map_or(Value::Null, |v| Value::string(&claim_text(v)))
}

impl Evaluator<'_> {
    /// `AsJwt()` and `AsBasic()` of `value` (a string or null): the object, or null.
    fn parse_extension(method: &str, value: &Value, span: Span) -> Result<Value, EvalError> {
        let text = match value {
            Value::Null => return Ok(Value::Null),
            Value::String(text) => text,
            other => {
                return Err(unknown(span, method, other.type_name()));
            }
        };
        let kind = if method.ends_with("Jwt") {
            parse_jwt(text).map(NativeKind::Jwt)
        } else {
            parse_basic(text).map(|(user, password)| NativeKind::Basic { user, password })
        };
        Ok(kind.map_or(Value::Null, |kind| Value::Native(Native::new(kind))))
    }

    /// `text.AsJwt()` and the other extension methods on a string that may be null;
    /// `None` when the method is not one of them.
    pub(super) fn string_extension(
        &mut self,
        object: &Expr,
        method: &str,
        args: &[Argument],
        null_conditional: bool,
        span: Span,
    ) -> Option<Result<Option<Value>, EvalError>> {
        if !STRING_EXTENSIONS.contains(&method) {
            return None;
        }
        Some((|| {
            let Some(value) = self.chain(object)? else {
                return Ok(None);
            };
            if null_conditional && value.is_null() {
                return Ok(None);
            }
            if !matches!(value, Value::Null | Value::String(_)) {
                let args = self.args(args)?;
                return self.method(&value, method, None, &args, span).map(Some);
            }
            match (method, args) {
                ("AsJwt" | "AsBasic", []) => Self::parse_extension(method, &value, span).map(Some),
                ("TryParseJwt" | "TryParseBasic", [out]) => {
                    let ExprKind::Out { name, declare } = &out.value.kind else {
                        return Err(failed(span, format!("`{method}` takes `out var name`")));
                    };
                    let parsed = Self::parse_extension(method, &value, span)?;
                    let success = !parsed.is_null();
                    self.set_out(name, *declare, parsed, out.value.span)?;
                    Ok(Some(Value::Bool(success)))
                }
                _ => Err(failed(
                    span,
                    format!("wrong number of arguments for `{method}`"),
                )),
            }
        })())
    }

    /// `dictionary.TryGetValue(key, out var value)` on the host's dictionaries (headers,
    /// variables, query, matched parameters: by their `ContainsKey` and indexer), a
    /// `JObject` and a token's `Claims`; `None` when the method is not `TryGetValue`.
    pub(super) fn try_get_value(
        &mut self,
        object: &Expr,
        method: &str,
        args: &[Argument],
        null_conditional: bool,
        span: Span,
    ) -> Option<Result<Option<Value>, EvalError>> {
        if method != "TryGetValue" {
            return None;
        }
        Some((|| {
            let Some(dictionary) = self.object(object, null_conditional)? else {
                return Ok(None);
            };
            let [key, out] = args else {
                return Err(failed(span, "`TryGetValue` takes a key and `out var name`"));
            };
            let ExprKind::Out { name, declare } = &out.value.kind else {
                return Err(failed(span, "`TryGetValue` takes `out var name` second"));
            };
            let key = self.eval(&key.value)?;
            let found = match (&dictionary, &key) {
                (_, Value::Null) => return Err(failed(span, "the key of `TryGetValue` is null")),
                (Value::Object(o), _) => {
                    let has = self
                        .host
                        .call(o, "ContainsKey", None, std::slice::from_ref(&key))
                        .map_err(|e| self.host_error(e, span, "TryGetValue", o))?;
                    if has == Value::Bool(true) {
                        Some(
                            self.host
                                .index(o, &key)
                                .map_err(|e| self.host_error(e, span, "TryGetValue", o))?,
                        )
                    } else {
                        None
                    }
                }
                (Value::Json(serde_json::Value::Object(map)), Value::String(key)) => {
                    map.get(&**key).cloned().map(Value::from_json)
                }
                (Value::Native(native), Value::String(key)) => match native.kind() {
                    NativeKind::Claims(claims) => claims
                        .iter()
                        .find(|(claim, _)| **claim == **key)
                        .map(|(_, values)| {
                            Value::Array(values.iter().map(|v| Value::string(v)).collect())
                        }),
                    _ => return Err(unknown(span, method, native.type_name())),
                },
                (other, _) => return Err(unknown(span, method, other.type_name())),
            };
            let success = found.is_some();
            self.set_out(name, *declare, found.unwrap_or(Value::Null), out.value.span)?;
            Ok(Some(Value::Bool(success)))
        })())
    }

    /// Gives the `out` variable `name` its value (declaring it first for `out var`).
    fn set_out(
        &mut self,
        name: &str,
        declare: bool,
        value: Value,
        span: Span,
    ) -> Result<(), EvalError> {
        if declare {
            self.declare(name, value);
            return Ok(());
        }
        let slot = self
            .local_mut(name)
            .ok_or_else(|| failed(span, format!("`{name}` is not declared")))?;
        slot.1 = value;
        Ok(())
    }

    /// `int.TryParse(text, out var n)` and the same of `long`, `double`, `decimal`, `bool`,
    /// `DateTime`, `DateTimeOffset`, `TimeSpan` and `Guid` (what their `Parse` accepts):
    /// `true` and the value, or `false` and the type's default.
    pub(super) fn try_parse(
        &mut self,
        ty: &str,
        args: &[Argument],
        span: Span,
    ) -> Result<Value, EvalError> {
        let [text, out] = args else {
            return Err(failed(
                span,
                format!("`{ty}.TryParse` takes a string and `out var name`"),
            ));
        };
        let ExprKind::Out { name, declare } = &out.value.kind else {
            return Err(failed(
                span,
                format!("`{ty}.TryParse` takes `out var name` second"),
            ));
        };
        let text = self.eval(&text.value)?;
        let default = match ty {
            "double" | "decimal" => Value::Double(0.0),
            "bool" => Value::Bool(false),
            "DateTime" | "DateTimeOffset" => Value::DateTime(0),
            "TimeSpan" => Value::TimeSpan(0),
            "Guid" => Value::string("00000000-0000-0000-0000-000000000000"),
            _ => Value::Int(0),
        };
        let parsed = match &text {
            Value::String(_) => self
                .static_call(ty, "Parse", std::slice::from_ref(&text), span)
                .ok(),
            Value::Null => None,
            other => {
                return Err(bad_cast(
                    span,
                    format!(
                        "the text of `{ty}.TryParse` must be a string, not {}",
                        other.type_name()
                    ),
                ));
            }
        };
        let success = parsed.is_some();
        self.set_out(name, *declare, parsed.unwrap_or(default), out.value.span)?;
        Ok(Value::Bool(success))
    }

    /// The members of `Jwt`, its `Claims` and `BasicAuthCredentials`.
    pub(super) fn auth_member(
        &self,
        native: &Native,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        match native.kind() {
            NativeKind::Jwt(jwt) => Ok(match name {
                "Id" => text_or_null(jwt.payload.get("jti")),
                "Algorithm" => text_or_null(jwt.header.get("alg")),
                "Type" => text_or_null(jwt.header.get("typ")),
                "Issuer" => text_or_null(jwt.payload.get("iss")),
                "Subject" => text_or_null(jwt.payload.get("sub")),
                "Audiences" => {
                    let audiences = jwt.payload.get("aud").map(claim_values).unwrap_or_default();
                    self.array(audiences.iter().map(|a| Value::string(a)).collect(), span)?
                }
                "ExpirationTime" => numeric_date(jwt.payload.get("exp")),
                "NotBefore" => numeric_date(jwt.payload.get("nbf")),
                "IssuedAt" => numeric_date(jwt.payload.get("iat")),
                "Claims" => {
                    let claims: Vec<(String, Vec<String>)> = jwt
                        .payload
                        .iter()
                        .map(|(name, value)| (name.clone(), claim_values(value)))
                        .collect();
                    Value::Native(Native::new(NativeKind::Claims(Arc::from(claims))))
                }
                _ => return Err(unknown(span, name, "Jwt")),
            }),
            NativeKind::Claims(claims) => match name {
                "Count" => Ok(Value::Int(to_i64(claims.len()))),
                "Keys" => self.array(claims.iter().map(|(k, _)| Value::string(k)).collect(), span),
                _ => Err(unknown(span, name, native.type_name())),
            },
            NativeKind::Basic { user, password } => match name {
                "UserId" | "Username" => Ok(Value::string(user)),
                "Password" => Ok(Value::string(password)),
                _ => Err(unknown(span, name, "BasicAuthCredentials")),
            },
            _ => Err(unknown(span, name, native.type_name())),
        }
    }

    /// `jwt.Claims["name"]` (the values; a missing claim fails, as a dictionary does).
    pub(super) fn claims_index(
        &self,
        native: &Native,
        index: &Value,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let NativeKind::Claims(claims) = native.kind() else {
            return None;
        };
        let Value::String(key) = index else {
            return Some(Err(bad_cast(
                span,
                format!("the claims cannot be indexed by {}", index.type_name()),
            )));
        };
        Some(match claims.iter().find(|(name, _)| **name == **key) {
            Some((_, values)) => {
                self.array(values.iter().map(|v| Value::string(v)).collect(), span)
            }
            None => Err(failed(span, format!("the token has no claim `{key}`"))),
        })
    }

    /// `jwt.Claims.GetValueOrDefault(name[, default])` (the values joined with `,`, as
    /// APIM does) and `ContainsKey(name)`.
    pub(super) fn claims_method(
        &self,
        native: &Native,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let NativeKind::Claims(claims) = native.kind() else {
            return None;
        };
        let find = |key: &str| claims.iter().find(|(name, _)| name == key);
        Some(match (method, args) {
            ("GetValueOrDefault", [Value::String(key)] | [Value::String(key), _]) => {
                match find(key) {
                    Some((_, values)) => self.string(values.join(","), span),
                    None => Ok(args.get(1).cloned().unwrap_or(Value::Null)),
                }
            }
            ("ContainsKey", [Value::String(key)]) => Ok(Value::Bool(find(key).is_some())),
            ("GetValueOrDefault" | "ContainsKey", [Value::Null, ..]) => Err(failed(
                span,
                format!("the claim name of `{method}` is null"),
            )),
            _ => Err(unknown(
                span,
                method,
                &format!("{} (with {} argument(s))", native.type_name(), args.len()),
            )),
        })
    }
}
