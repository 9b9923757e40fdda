//! gRPC passthrough: what the proxy needs to know about a gRPC call to forward it
//! faithfully. gRPC runs over HTTP/2 with trailers; the gateway does not decode its
//! messages, it only makes sure the call reaches the backend as gRPC needs:
//!
//! - a gRPC request (`content-type: application/grpc`, `application/grpc+proto`, …; not
//!   gRPC-Web, which works over HTTP/1.1) goes to the backend over HTTP/2: prior
//!   knowledge on `http://`, ALPN `h2` on `https://`;
//! - `te: trailers` is kept (hop-by-hop headers are otherwise removed), and trailers
//!   pass both ways;
//! - `grpc-timeout` bounds the wait for the backend's response head, as the backend's
//!   `responseTimeout` does (the shorter wins), and is forwarded so the backend knows its
//!   deadline;
//! - `grpc-status` (from the trailers, or the head of a trailers-only response) goes to
//!   the access log;
//! - what the gateway answers itself (no route, a missing key, a policy's refusal, an
//!   unreachable backend) is sent as a gRPC "trailers-only" response: HTTP 200,
//!   `content-type: application/grpc`, `grpc-status` and `grpc-message` in the head,
//!   no body, so gRPC clients report the real reason instead of failing to decode a JSON
//!   body. The code follows gRPC's HTTP-to-gRPC mapping (401 `UNAUTHENTICATED`, 403
//!   `PERMISSION_DENIED`, 404 `UNIMPLEMENTED`, 429/502/503 `UNAVAILABLE`, other 4xx
//!   `INTERNAL`), except that the gateway's 504 is `DEADLINE_EXCEEDED`: it only answers
//!   504 when a deadline passed.

use std::time::Duration;

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::body::ResponseBody;

/// `grpc-timeout`.
const GRPC_TIMEOUT: &str = "grpc-timeout";
/// `grpc-status`.
const GRPC_STATUS: &str = "grpc-status";

/// Whether the request is a gRPC call over HTTP/2 framing (not gRPC-Web).
#[must_use]
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.as_bytes().split_at_checked(16))
        .is_some_and(|(prefix, rest)| {
            prefix.eq_ignore_ascii_case(b"application/grpc")
                && matches!(rest.first(), None | Some(b'+' | b';'))
        })
}

/// Whether the client said it accepts trailers (`te: trailers`, RFC 9110 §10.1.4).
#[must_use]
pub fn accepts_trailers(headers: &HeaderMap) -> bool {
    headers.get_all(TE).iter().any(|value| {
        value.to_str().is_ok_and(|text| {
            text.split(',')
                .any(|coding| coding.trim().eq_ignore_ascii_case("trailers"))
        })
    })
}

/// The call's deadline from `grpc-timeout` (`TimeoutValue TimeoutUnit`: at most 8
/// digits, then `H`, `M`, `S`, `m`, `u` or `n`); `None` when absent or malformed.
#[must_use]
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.as_bytes();
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The `grpc-status` code in a response head (trailers-only response) or trailers.
#[must_use]
pub fn status(headers: &HeaderMap) -> Option<u32> {
    headers.get(GRPC_STATUS)?.to_str().ok()?.trim().parse().ok()
}

/// The message of a response the gateway made itself (its JSON error body's
/// `message`), kept in the response's extensions for [`local_reply`].
#[derive(Clone, Debug)]
pub struct LocalMessage(pub String);

/// The gRPC status code for an HTTP status the gateway answered with.
#[must_use]
pub const fn code_for(status: StatusCode) -> u32 {
    match status.as_u16() {
        200..=299 => 0,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 => 14,
        504 => 4,
        400..=499 => 13,
        _ => 2,
    }
}

/// Turns a response the gateway made itself into a gRPC trailers-only response; see
/// the module documentation. Headers other than the content type and length are kept
/// (`Retry-After`, CORS, …).
#[must_use]
pub fn local_reply(response: Response<ResponseBody>) -> Response<ResponseBody> {
    let (mut parts, _) = response.into_parts();
    let code = code_for(parts.status);
    let message = parts.extensions.remove::<LocalMessage>().map_or_else(
        || {
            parts
                .status
                .canonical_reason()
                .unwrap_or_default()
                .to_owned()
        },
        |m| m.0,
    );
    parts.status = StatusCode::OK;
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    parts.headers.insert(GRPC_STATUS, HeaderValue::from(code));
    if let Ok(value) = HeaderValue::from_str(&encode_message(&message)) {
        parts.headers.insert("grpc-message", value);
    }
    Response::from_parts(parts, ResponseBody::empty())
}

/// `grpc-message` is percent-encoded UTF-8 (bytes outside `0x20..=0x7E`, and `%`).
fn encode_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn recognises_grpc_content_types_but_not_grpc_web() {
        for (value, grpc) in [
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc;charset=utf-8", true),
            ("Application/GRPC", true),
            ("application/grpc-web", false),
            ("application/grpc-web+proto", false),
            ("application/json", false),
            ("application/grp", false),
        ] {
            assert_eq!(
                is_grpc(&headers(&[("content-type", value)])),
                grpc,
                "{value}"
            );
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn parses_grpc_timeout() {
        for (value, expected) in [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("99999999u", Some(Duration::from_micros(99_999_999))),
            ("5n", Some(Duration::from_nanos(5))),
            ("123456789S", None),
            ("S", None),
            ("1s", None),
            ("-1S", None),
            ("1.5S", None),
        ] {
            assert_eq!(
                timeout(&headers(&[("grpc-timeout", value)])),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn local_replies_are_trailers_only() {
        let mut response = Response::new(ResponseBody::full(bytes::Bytes::from_static(b"{}")));
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("x"));
        response
            .extensions_mut()
            .insert(LocalMessage("Access denied: 100% é".to_owned()));
        let reply = local_reply(response);
        assert_eq!(reply.status(), StatusCode::OK);
        let headers = reply.headers();
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["grpc-status"], "16");
        assert_eq!(headers["grpc-message"], "Access denied: 100%25 %C3%A9");
        assert_eq!(headers["www-authenticate"], "x");
        for (status, code) in [
            (404, 12),
            (429, 14),
            (502, 14),
            (504, 4),
            (400, 13),
            (500, 2),
        ] {
            assert_eq!(
                code_for(StatusCode::from_u16(status).unwrap()),
                code,
                "{status}"
            );
        }
    }

    #[test]
    fn trailers_and_status() {
        assert!(accepts_trailers(&headers(&[("te", "trailers")])));
        assert!(accepts_trailers(&headers(&[("te", "gzip, Trailers")])));
        assert!(!accepts_trailers(&headers(&[("te", "gzip")])));
        assert_eq!(status(&headers(&[("grpc-status", "14")])), Some(14));
        assert_eq!(status(&headers(&[("grpc-status", "x")])), None);
    }
}
