//! The evaluator's byte and text built-ins: `byte[]` ([`Value::Bytes`]), `Encoding`,
//! `Convert.ToBase64String`/`FromBase64String`/`ToHexString`/`FromHexString`,
//! `BitConverter.ToString`, `WebUtility` and `Uri`.

use std::sync::Arc;

use base64::Engine as _;

use super::{Evaluator, bad_cast, failed, to_i64, unknown};
use crate::error::{EvalError, Span};
use crate::native::{Native, NativeKind, TextEncoding};
use crate::value::Value;

/// The characters `Uri.EscapeDataString` leaves as they are (RFC 3986's unreserved).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// The characters `WebUtility.UrlEncode` leaves as they are.
fn is_url_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'!' | b'*' | b'(' | b')')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Base64 as .NET decodes it: padding required, the unused bits of the last character
/// ignored.
pub(super) const DOTNET_BASE64: base64::engine::GeneralPurpose =
    base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `%XX` escapes (and `+` as a space when `plus`) decoded; a `%` not followed by two hex
/// digits stays as it is. Invalid UTF-8 becomes U+FFFD.
fn percent_decode(text: &str, plus: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b);
            }
            b'+' if plus => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every byte of `text`'s UTF-8 that `keep` refuses as `%XX` (uppercase), a space as `+`
/// when `plus`.
fn percent_encode(text: &str, keep: fn(u8) -> bool, plus: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else if plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `WebUtility.HtmlEncode`: `< > & " '` as entities, and the characters from U+00A0 to
/// U+00FF and those outside the Basic Multilingual Plane as `&#N;`, as .NET does.
fn html_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\u{a0}'..='\u{ff}' | '\u{10000}'.. => {
                out.push_str(&format!("&#{};", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// `WebUtility.HtmlDecode`: numeric entities and the common named ones (`amp`, `lt`,
/// `gt`, `quot`, `apos`, `nbsp`, `copy`, `reg`, `trade`); anything else stays as it is.
fn html_decode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').filter(|&end| end <= 12).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                "copy" => Some('\u{a9}'),
                "reg" => Some('\u{ae}'),
                "trade" => Some('\u{2122}'),
                _ => {
                    let number = entity.strip_prefix('#')?;
                    let code = match number.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => number.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A `Uri`'s `Segments`: the path cut after each `/`.
fn segments(path: &str) -> Vec<Value> {
    path.split_inclusive('/').map(Value::string).collect()
}

impl Evaluator<'_> {
    /// A `byte[]`, within the string limit (a byte array is text's raw material).
    pub(super) fn bytes(&self, bytes: Vec<u8>, span: Span) -> Result<Value, EvalError> {
        if bytes.len() > self.limits.max_string_len {
            return Err(EvalError::TooLarge {
                message: format!(
                    "a byte array of {} bytes is longer than the limit of {} bytes",
                    bytes.len(),
                    self.limits.max_string_len
                ),
                span,
            });
        }
        Ok(Value::Bytes(Arc::from(bytes)))
    }

    /// `Encoding.UTF8`, `RegexOptions.IgnoreCase`, ...; `None` for another type.
    pub(super) fn text_static_member(
        &self,
        ty: &str,
        name: &str,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        if ty == "Formatting" {
            return Some(match name {
                "None" => Ok(Value::Int(0)),
                "Indented" => Ok(Value::Int(1)),
                _ => Err(unknown(span, name, "`Formatting`")),
            });
        }
        let encoding = match (ty, name) {
            ("Encoding", "UTF8") => TextEncoding::Utf8,
            ("Encoding", "ASCII") => TextEncoding::Ascii,
            ("Encoding", "Unicode") => TextEncoding::Unicode,
            ("Encoding", _) => return Some(Err(unknown(span, name, "`Encoding`"))),
            _ => return None,
        };
        Some(Ok(Value::Native(Native::new(NativeKind::Encoding(
            encoding,
        )))))
    }

    /// The `byte[]` argument `i` of `what`.
    fn bytes_arg<'v>(
        &self,
        args: &'v [Value],
        i: usize,
        what: &str,
        span: Span,
    ) -> Result<&'v [u8], EvalError> {
        match args.get(i) {
            Some(Value::Bytes(bytes)) => Ok(bytes),
            Some(Value::Null) => Err(failed(span, format!("the argument of `{what}` is null"))),
            Some(other) => Err(bad_cast(
                span,
                format!(
                    "the argument of `{what}` must be a byte[], not {}",
                    other.type_name()
                ),
            )),
            None => Err(failed(span, format!("`{what}` needs a byte[] argument"))),
        }
    }

    /// The string argument `i` of `what`.
    fn str_arg<'v>(
        &self,
        args: &'v [Value],
        i: usize,
        what: &str,
        span: Span,
    ) -> Result<&'v str, EvalError> {
        match args.get(i) {
            Some(Value::String(text)) => Ok(text),
            Some(Value::Null) => Err(failed(span, format!("the argument of `{what}` is null"))),
            Some(other) => Err(bad_cast(
                span,
                format!(
                    "the argument of `{what}` must be a string, not {}",
                    other.type_name()
                ),
            )),
            None => Err(failed(span, format!("`{what}` needs a string argument"))),
        }
    }

    /// `Convert.ToBase64String(bytes)`, `WebUtility.UrlEncode(text)`, `Uri.EscapeDataString`,
    /// ...; `None` for a call that is not one of these.
    pub(super) fn text_static_call(
        &self,
        ty: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let what = format!("{ty}.{method}");
        let result = match (ty, method, args.len()) {
            ("Convert", "ToBase64String", 1) => {
                self.bytes_arg(args, 0, &what, span).and_then(|bytes| {
                    // 4 characters for every 3 bytes: refused before encoding
                    let len = bytes.len().div_ceil(3).saturating_mul(4);
                    if len > self.limits.max_string_len {
                        return Err(self.too_long(len, span));
                    }
                    self.string(
                        base64::engine::general_purpose::STANDARD.encode(bytes),
                        span,
                    )
                })
            }
            ("Convert", "FromBase64String", 1) => {
                self.str_arg(args, 0, &what, span).and_then(|text| {
                    // .NET ignores white space anywhere in the text
                    let compact: String =
                        text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
                    let bytes =
                        DOTNET_BASE64
                            .decode(compact.as_bytes())
                            .map_err(|e| EvalError::Parse {
                                message: format!("the input is not a valid Base-64 string ({e})"),
                                span,
                            })?;
                    self.bytes(bytes, span)
                })
            }
            ("Convert", "ToHexString", 1) => {
                self.bytes_arg(args, 0, &what, span).and_then(|bytes| {
                    let len = bytes.len().saturating_mul(2);
                    if len > self.limits.max_string_len {
                        return Err(self.too_long(len, span));
                    }
                    let mut out = String::with_capacity(len);
                    for b in bytes {
                        out.push(char::from(HEX[usize::from(b >> 4)]));
                        out.push(char::from(HEX[usize::from(b & 0xf)]));
                    }
                    self.string(out, span)
                })
            }
            ("Convert", "FromHexString", 1) => {
                self.str_arg(args, 0, &what, span).and_then(|text| {
                    let digits = text.as_bytes();
                    let invalid = || EvalError::Parse {
                        message: format!("`{text}` is not a valid hexadecimal string"),
                        span,
                    };
                    if digits.len() % 2 != 0 {
                        return Err(invalid());
                    }
                    let bytes = digits
                        .chunks(2)
                        .map(|pair| match pair {
                            [hi, lo] => Some(hex_value(*hi)? << 4 | hex_value(*lo)?),
                            _ => None,
                        })
                        .collect::<Option<Vec<u8>>>()
                        .ok_or_else(invalid)?;
                    self.bytes(bytes, span)
                })
            }
            ("BitConverter", "ToString", 1) => {
                self.bytes_arg(args, 0, &what, span).and_then(|bytes| {
                    let len = bytes.len().saturating_mul(3);
                    if len > self.limits.max_string_len {
                        return Err(self.too_long(len, span));
                    }
                    let mut out = String::with_capacity(len);
                    for (i, b) in bytes.iter().enumerate() {
                        if i > 0 {
                            out.push('-');
                        }
                        out.push(char::from(HEX[usize::from(b >> 4)]));
                        out.push(char::from(HEX[usize::from(b & 0xf)]));
                    }
                    self.string(out, span)
                })
            }
            ("WebUtility", "UrlEncode" | "UrlDecode" | "HtmlEncode" | "HtmlDecode", 1) => {
                match args.first() {
                    Some(Value::Null) => Ok(Value::Null),
                    _ => self.str_arg(args, 0, &what, span).and_then(|text| {
                        let out = match method {
                            "UrlEncode" => percent_encode(text, is_url_safe, true),
                            "UrlDecode" => percent_decode(text, true),
                            "HtmlEncode" => html_encode(text),
                            _ => html_decode(text),
                        };
                        self.string(out, span)
                    }),
                }
            }
            ("Uri", "EscapeDataString", 1) => self
                .str_arg(args, 0, &what, span)
                .and_then(|text| self.string(percent_encode(text, is_unreserved, false), span)),
            ("Uri", "UnescapeDataString", 1) => self
                .str_arg(args, 0, &what, span)
                .and_then(|text| self.string(percent_decode(text, false), span)),
            ("BitConverter" | "WebUtility" | "Uri", ..) => Err(unknown(
                span,
                method,
                &format!("`{ty}` (with {} argument(s))", args.len()),
            )),
            _ => return None,
        };
        Some(result)
    }

    /// JSON text, compact or indented (two spaces, as Newtonsoft.Json indents).
    pub(super) fn json_text(
        &self,
        json: &serde_json::Value,
        indented: bool,
        span: Span,
    ) -> Result<Value, EvalError> {
        let text = if indented {
            serde_json::to_string_pretty(json)
        } else {
            serde_json::to_string(json)
        }
        .map_err(|e| failed(span, format!("the JSON cannot be written: {e}")))?;
        self.string(text, span)
    }

    /// `JsonConvert.SerializeObject(value[, formatting])` and
    /// `JsonConvert.DeserializeObject[<JObject|JArray|JToken>](text)`.
    pub(super) fn json_convert(
        &self,
        method: &str,
        type_argument: Option<&str>,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        match (method, args) {
            ("SerializeObject", [value]) => self.json_text(&value.to_json(), false, span),
            ("SerializeObject", [value, Value::Int(formatting @ (0 | 1))]) => {
                self.json_text(&value.to_json(), *formatting == 1, span)
            }
            ("DeserializeObject", [Value::String(text)]) => {
                let json: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| EvalError::Parse {
                        message: format!("the text is not valid JSON: {e}"),
                        span,
                    })?;
                let fits = match type_argument {
                    None | Some("JToken" | "object") => true,
                    Some("JObject") => json.is_object(),
                    Some("JArray") => json.is_array(),
                    Some(other) => {
                        return Err(failed(
                            span,
                            format!(
                                "`DeserializeObject<{other}>` is not available (JObject, JArray or JToken)"
                            ),
                        ));
                    }
                };
                if !fits {
                    return Err(EvalError::Parse {
                        message: format!("the JSON is not a {}", type_argument.unwrap_or("JToken")),
                        span,
                    });
                }
                Ok(Value::from_json(json))
            }
            ("DeserializeObject", [Value::Null]) => Err(failed(
                span,
                "the argument of `JsonConvert.DeserializeObject` is null",
            )),
            _ => Err(unknown(
                span,
                method,
                &format!("`JsonConvert` (with {} argument(s))", args.len()),
            )),
        }
    }

    /// `new Uri(text)`.
    pub(super) fn new_uri(&self, args: &[Value], span: Span) -> Result<Value, EvalError> {
        let text = match args {
            [Value::String(text)] => text,
            [Value::Null] => return Err(failed(span, "the argument of `new Uri` is null")),
            _ => {
                return Err(failed(span, "`new Uri` takes one string (an absolute URI)"));
            }
        };
        let uri = url::Url::parse(text.trim()).map_err(|e| EvalError::Parse {
            message: format!("`{text}` is not a valid absolute URI ({e})"),
            span,
        })?;
        Ok(Value::Native(Native::new(NativeKind::Uri(uri))))
    }

    /// The members of a `Uri`.
    fn uri_member(&self, uri: &url::Url, name: &str, span: Span) -> Result<Value, EvalError> {
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let text = match name {
            "Scheme" => uri.scheme().to_owned(),
            "Host" | "DnsSafeHost" | "IdnHost" => uri.host_str().unwrap_or("").to_owned(),
            "Port" => {
                return Ok(Value::Int(
                    uri.port_or_known_default().map_or(-1, i64::from),
                ));
            }
            "IsDefaultPort" => return Ok(Value::Bool(uri.port().is_none())),
            "IsAbsoluteUri" => return Ok(Value::Bool(true)),
            "AbsolutePath" | "LocalPath" => uri.path().to_owned(),
            "Query" => query,
            "Fragment" => uri.fragment().map(|f| format!("#{f}")).unwrap_or_default(),
            "PathAndQuery" => format!("{}{query}", uri.path()),
            "AbsoluteUri" | "OriginalString" => uri.as_str().to_owned(),
            "Authority" => match uri.port() {
                Some(port) => format!("{}:{port}", uri.host_str().unwrap_or("")),
                None => uri.host_str().unwrap_or("").to_owned(),
            },
            "UserInfo" => match uri.password() {
                Some(password) => format!("{}:{password}", uri.username()),
                None => uri.username().to_owned(),
            },
            "Segments" => return self.array(segments(uri.path()), span),
            _ => return Err(unknown(span, name, "Uri")),
        };
        self.string(text, span)
    }

    /// The members of the built-in objects (`uri.Host`, `match.Success`, `jwt.Subject`).
    pub(super) fn native_member(
        &self,
        native: &Native,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        match native.kind() {
            NativeKind::Uri(uri) => self.uri_member(uri, name, span),
            NativeKind::Match(_)
            | NativeKind::Groups(_)
            | NativeKind::Group(_)
            | NativeKind::Regex(_) => self.regex_member(native, name, span),
            NativeKind::Hash(_) | NativeKind::Hmac(..) => self.crypto_member(native, name, span),
            NativeKind::Jwt(_) | NativeKind::Claims(_) | NativeKind::Basic { .. } => {
                self.auth_member(native, name, span)
            }
            NativeKind::Encoding(_)
            | NativeKind::StringComparison { .. }
            | NativeKind::Random(_)
            | NativeKind::JProperty(..) => Err(unknown(span, name, native.type_name())),
        }
    }

    /// The methods of the built-in objects.
    pub(super) fn native_method(
        &self,
        native: &Native,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        match (native.kind(), method) {
            (NativeKind::Random(state), _) => Self::random_method(state, method, args, span),
            (NativeKind::Encoding(encoding), "GetBytes") => {
                let what = format!("Encoding.{method}");
                let text = self.str_arg(args, 0, &what, span)?;
                if args.len() != 1 {
                    return Err(failed(span, "`GetBytes` takes one string"));
                }
                let bytes = match encoding {
                    TextEncoding::Utf8 => text.as_bytes().to_vec(),
                    TextEncoding::Ascii => text
                        .chars()
                        .map(|c| u8::try_from(c).ok().filter(u8::is_ascii).unwrap_or(b'?'))
                        .collect(),
                    TextEncoding::Unicode => {
                        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
                    }
                };
                self.bytes(bytes, span)
            }
            (NativeKind::Encoding(encoding), "GetByteCount") => {
                let text = self.str_arg(args, 0, "Encoding.GetByteCount", span)?;
                Ok(Value::Int(to_i64(match encoding {
                    TextEncoding::Utf8 => text.len(),
                    TextEncoding::Ascii => text.chars().count(),
                    TextEncoding::Unicode => text.encode_utf16().count() * 2,
                })))
            }
            (NativeKind::Encoding(encoding), "GetString") => {
                let bytes = self.bytes_arg(args, 0, "Encoding.GetString", span)?;
                let bytes = match args {
                    [_] => bytes,
                    [_, Value::Int(index), Value::Int(count)] => usize::try_from(*index)
                        .ok()
                        .zip(usize::try_from(*count).ok())
                        .and_then(|(index, count)| bytes.get(index..index.checked_add(count)?))
                        .ok_or_else(|| {
                            failed(
                                span,
                                format!(
                                    "GetString({index}, {count}) is out of range for {} bytes",
                                    bytes.len()
                                ),
                            )
                        })?,
                    _ => {
                        return Err(failed(
                            span,
                            "`GetString` takes a byte[] (and an index and a count)",
                        ));
                    }
                };
                let text = match encoding {
                    TextEncoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
                    TextEncoding::Ascii => bytes
                        .iter()
                        .map(|&b| if b.is_ascii() { char::from(b) } else { '?' })
                        .collect(),
                    TextEncoding::Unicode => {
                        let units: Vec<u16> = bytes
                            .chunks(2)
                            .map(|pair| match pair {
                                [lo, hi] => u16::from_le_bytes([*lo, *hi]),
                                _ => 0xfffd,
                            })
                            .collect();
                        String::from_utf16_lossy(&units)
                    }
                };
                self.string(text, span)
            }
            _ => self
                .claims_method(native, method, args, span)
                .unwrap_or_else(|| Err(unknown(span, method, native.type_name()))),
        }
    }
}
