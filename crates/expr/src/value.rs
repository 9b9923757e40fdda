//! The dynamic [`Value`] an expression computes.

use std::fmt;
use std::sync::Arc;

use crate::datetime;
use crate::native::{Native, NativeKind};

/// An object of the host's model (`context`, `context.Request`, ...), opaque to the
/// evaluator: the host gives it a path-like identity and resolves its members.
#[derive(Debug, Clone)]
pub struct HostObject(ObjectId);

#[derive(Debug, Clone)]
enum ObjectId {
    /// A fixed identity: no allocation (what a host's model mostly is).
    Static(&'static str),
    Shared(Arc<str>),
}

impl HostObject {
    /// An object the host will recognise by `id` (for example `"context.Request.Headers"`).
    #[must_use]
    pub fn new(id: &str) -> Self {
        Self(ObjectId::Shared(Arc::from(id)))
    }

    /// [`HostObject::new`] for a fixed identity, without allocating: what a host's
    /// objects should use on the request path.
    #[must_use]
    pub const fn from_static(id: &'static str) -> Self {
        Self(ObjectId::Static(id))
    }

    /// The identity given to [`HostObject::new`] or [`HostObject::from_static`].
    #[must_use]
    pub fn id(&self) -> &str {
        match &self.0 {
            ObjectId::Static(id) => id,
            ObjectId::Shared(id) => id,
        }
    }
}

impl PartialEq for HostObject {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for HostObject {}

impl std::hash::Hash for HostObject {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

/// A value. JSON scalars read out of a [`Value::Json`] become the matching .NET-like
/// scalars (`String`, `Int`, `Double`, `Bool`, `Null`); JSON objects and arrays stay JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// A `bool`.
    Bool(bool),
    /// An `int` or `long` (both are 64 bits here).
    Int(i64),
    /// A `double` or `decimal`.
    Double(f64),
    /// A `string` (a `char` is a one-character string).
    String(Arc<str>),
    /// A `JObject`, `JArray` or `JToken`.
    Json(serde_json::Value),
    /// An array (`Split`'s result, `new [] { ... }`).
    Array(Vec<Self>),
    /// An object of the host's context model.
    Object(HostObject),
    /// A `DateTime` (or `DateTimeOffset`): ticks of 100 ns since 0001-01-01T00:00:00 UTC,
    /// from 0 to `DateTime.MaxValue.Ticks` (9999-12-31T23:59:59.9999999). Always UTC: the
    /// gateway runs in UTC, so `DateTime.Now` is `DateTime.UtcNow` and a `DateTimeOffset`
    /// is the UTC instant it denotes. A host should build values in that range; outside
    /// it, operations fail or print odd dates, but never panic.
    DateTime(i64),
    /// A `TimeSpan`: a signed number of ticks of 100 ns.
    TimeSpan(i64),
    /// A `byte[]` (`Encoding.UTF8.GetBytes(...)`, `Convert.FromBase64String(...)`, a hash).
    Bytes(Arc<[u8]>),
    /// An object of a built-in .NET type the evaluator implements (`Uri`, `Match`, `Jwt`,
    /// `Encoding.UTF8`, `SHA256.Create()`, ...).
    Native(Native),
}

impl Value {
    /// The `DateTime` (UTC) `since` after 1970-01-01T00:00:00Z, for hosts
    /// (`context.Timestamp`); clamped to `DateTime.MaxValue`.
    #[must_use]
    pub fn date_time_since_unix_epoch(since: std::time::Duration) -> Self {
        let ticks = i64::try_from(since.as_nanos() / 100).unwrap_or(i64::MAX);
        Self::DateTime(
            crate::datetime::UNIX_EPOCH_TICKS
                .saturating_add(ticks)
                .min(crate::datetime::MAX_TICKS),
        )
    }

    /// A `TimeSpan` of `duration` (to the tick, 100 ns), for hosts (`context.Elapsed`).
    #[must_use]
    pub fn time_span(duration: std::time::Duration) -> Self {
        Self::TimeSpan(i64::try_from(duration.as_nanos() / 100).unwrap_or(i64::MAX))
    }

    /// A string value.
    #[must_use]
    pub fn string(s: &str) -> Self {
        Self::String(Arc::from(s))
    }

    /// The name of the value's type, for error messages.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int",
            Self::Double(_) => "double",
            Self::String(_) => "string",
            Self::Json(serde_json::Value::Object(_)) => "JObject",
            Self::Json(serde_json::Value::Array(_)) => "JArray",
            Self::Json(_) => "JToken",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
            Self::DateTime(_) => "DateTime",
            Self::TimeSpan(_) => "TimeSpan",
            Self::Bytes(_) => "byte[]",
            Self::Native(n) => n.type_name(),
        }
    }

    /// Whether the value is `null`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Converts JSON read out of a document: scalars become scalars.
    #[must_use]
    pub fn from_json(json: serde_json::Value) -> Self {
        match json {
            serde_json::Value::Null => Self::Null,
            serde_json::Value::Bool(b) => Self::Bool(b),
            serde_json::Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Self::Double(n.as_f64().unwrap_or(f64::NAN)), Self::Int),
            serde_json::Value::String(s) => Self::String(Arc::from(s)),
            other => Self::Json(other),
        }
    }

    /// Converts the value to JSON (for `JArray.Add` and `JObject` indexers). A `DateTime`
    /// becomes an ISO 8601 string as Newtonsoft.Json writes it (`2024-01-02T03:04:05Z`, the
    /// fraction of a second only when not zero), a `TimeSpan` its `c` string
    /// (`1.02:03:04.5000000`), a `byte[]` its Base64 (as Newtonsoft.Json writes it), a
    /// `Uri` its text; other built-in objects become null.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null | Self::Object(_) => serde_json::Value::Null,
            Self::Bytes(bytes) => serde_json::Value::String(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                bytes,
            )),
            Self::Native(n) => match n.kind() {
                NativeKind::Uri(uri) => serde_json::Value::String(uri.as_str().to_owned()),
                _ => serde_json::Value::Null,
            },
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Int(i) => serde_json::Value::from(*i),
            Self::Double(d) => serde_json::Value::from(*d),
            Self::String(s) => serde_json::Value::String(s.to_string()),
            Self::Json(j) => j.clone(),
            Self::Array(items) => {
                serde_json::Value::Array(items.iter().map(Self::to_json).collect())
            }
            Self::DateTime(ticks) => serde_json::Value::String(datetime::iso_datetime(*ticks)),
            Self::TimeSpan(ticks) => serde_json::Value::String(datetime::display_timespan(*ticks)),
        }
    }
}

/// Formats like .NET's `ToString()`: null is empty, booleans are `True`/`False`, JSON is
/// indented (two spaces, `\n`), a `DateTime` is the invariant culture's
/// `MM/dd/yyyy HH:mm:ss`, a `TimeSpan` is `[-][d.]hh:mm:ss[.fffffff]`.
impl Value {
    /// Appends the value as `ToString()` writes it (its [`fmt::Display`]), without the
    /// formatting machinery for the common strings.
    pub(crate) fn append_text(&self, out: &mut String) {
        match self {
            Self::Null => {}
            Self::String(s) => out.push_str(s),
            Self::Json(serde_json::Value::String(s)) => out.push_str(s),
            Self::Bool(true) => out.push_str("True"),
            Self::Bool(false) => out.push_str("False"),
            Self::Int(i) => push_int(out, *i),
            other => {
                use fmt::Write as _;
                // Writing into a String cannot fail.
                let _ = write!(out, "{other}");
            }
        }
    }

    /// The length of [`Value::append_text`]'s text when known without formatting.
    pub(crate) fn text_len_hint(&self) -> usize {
        match self {
            Self::String(s) => s.len(),
            Self::Json(serde_json::Value::String(s)) => s.len(),
            _ => 8,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => Ok(()),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Double(d) if d.is_nan() => f.write_str("NaN"),
            Self::Double(d) if d.is_infinite() => {
                f.write_str(if *d > 0.0 { "\u{221e}" } else { "-\u{221e}" })
            }
            Self::Double(d) => write!(f, "{d}"),
            Self::String(s) => f.write_str(s),
            Self::Json(serde_json::Value::String(s)) => f.write_str(s),
            Self::Json(j) => {
                let text = serde_json::to_string_pretty(j).map_err(|_| fmt::Error)?;
                f.write_str(&text)
            }
            Self::Array(_) => f.write_str("System.Object[]"),
            Self::Object(o) => f.write_str(o.id()),
            Self::DateTime(ticks) => f.write_str(&datetime::display_datetime(*ticks)),
            Self::TimeSpan(ticks) => f.write_str(&datetime::display_timespan(*ticks)),
            Self::Bytes(_) => f.write_str("System.Byte[]"),
            Self::Native(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::string(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Self::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(d: f64) -> Self {
        Self::Double(d)
    }
}

/// Appends `n` in decimal without the formatter (status codes, counts).
fn push_int(out: &mut String, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n.unsigned_abs();
    loop {
        at -= 1;
        // `rest % 10` is a digit.
        digits[at] = b'0' + u8::try_from(rest % 10).unwrap_or(0);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        out.push('-');
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}
