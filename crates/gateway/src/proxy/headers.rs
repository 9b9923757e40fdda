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
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Collect first: names listed in `Connection` are removed after it is read.
    let mut listed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(text) = value.to_str() else { continue };
        for token in text.split(',') {
            let token = token.trim();
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                listed.push(name);
            }
        }
    }
    for name in listed.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Sets `X-Forwarded-For` (appending the client to an existing list),
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    client_ip: IpAddr,
    scheme: &'static str,
    host: Option<&HeaderValue>,
) {
    let mut buffer = String::new();
    let client = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(existing) if !existing.is_empty() => {
            buffer.push_str(existing);
            buffer.push_str(", ");
            push_ip(&mut buffer, client_ip);
            HeaderValue::from_str(&buffer)
        }
        _ => {
            push_ip(&mut buffer, client_ip);
            HeaderValue::from_str(&buffer)
        }
    };
    if let Ok(value) = client {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
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
