//! Header rules of a proxy: hop-by-hop headers are removed in both directions, and the
//! `X-Forwarded-*` headers tell the backend who called and how.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy ones proxies still see).
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including every header the `Connection` header names.
/// `Upgrade` is removed too: protocol upgrades are not proxied.
///
/// Runs twice per request: one pass over the names finds what to remove, so a message
/// with none of them costs no lookup at all.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let mut present: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_hop_by_hop(name) && !present.contains(name) {
            present.push(name.clone());
        }
    }
    if present.is_empty() {
        return;
    }
    // Names listed in `Connection` are hop-by-hop for this message too.
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split(',') {
            if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes()) {
                present.push(name);
            }
        }
    }
    for name in &present {
        headers.remove(name);
    }
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::UPGRADE || HOP_BY_HOP.contains(name)
}

/// The value of `X-Forwarded-For` for a client that sent none: its address. Computed
/// once per connection.
#[must_use]
pub fn forwarded_for_value(client_ip: IpAddr) -> HeaderValue {
    let mut text = String::with_capacity(40);
    push_ip(&mut text, client_ip);
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// Sets `X-Forwarded-For` (appending the client to an existing list),
/// `X-Forwarded-Proto` and `X-Forwarded-Host`. `client` is the connection's
/// [`forwarded_for_value`].
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client: &HeaderValue,
    scheme: &'static str,
    host: Option<&HeaderValue>,
) {
    let value = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
        Some(existing) if !existing.is_empty() => {
            let mut joined = Vec::with_capacity(existing.len() + 2 + client.len());
            joined.extend_from_slice(existing);
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(client.as_bytes());
            HeaderValue::from_bytes(&joined).unwrap_or_else(|_| client.clone())
        }
        _ => client.clone(),
    };
    headers.insert(X_FORWARDED_FOR.clone(), value);
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(scheme));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
}

fn push_ip(buffer: &mut String, ip: IpAddr) {
    use std::fmt::Write;
    // An IPv4-mapped IPv6 peer (dual-stack listener) is logged as the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    };
    let _ = write!(buffer, "{ip}");
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
