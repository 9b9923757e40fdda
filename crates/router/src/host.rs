//! Host names: checking the configured ones, and reducing a request's `Host` to the
//! name that is looked up.

use crate::text::{find_byte, split_at_byte};

/// A configured hostname, validated and lowercased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum HostPattern {
    /// `api.example.com`.
    Exact(Box<str>),
    /// `*.example.com`, stored as `example.com`: matches exactly one more label.
    Wildcard(Box<str>),
}

impl HostPattern {
    /// Validates a configured hostname.
    pub(crate) fn parse(text: &str) -> Result<Self, &'static str> {
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_suffix('.').unwrap_or(&lower);
        if name.is_empty() {
            return Err("empty");
        }
        if name.contains(':') {
            return Err("a hostname has no port or scheme (`:`)");
        }
        let (wildcard, name) = match name.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        if name.len() > 253 {
            return Err("longer than 253 characters");
        }
        for label in name.split('.') {
            if label.is_empty() {
                return Err("empty label (`..`, or a leading `.`)");
            }
            if label.len() > 63 {
                return Err("a label is longer than 63 characters");
            }
            if label == "*" || label.contains('*') {
                return Err("`*` is only allowed as the whole first label (`*.example.com`)");
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err("only letters, digits, `-` and `_` are allowed in labels");
            }
        }
        Ok(if wildcard {
            Self::Wildcard(name.into())
        } else {
            Self::Exact(name.into())
        })
    }
}

/// The name to look up for a request's host (a `Host` header or URI authority): the port
/// and a trailing `.` dropped. Case is left alone; the lookup ignores it.
pub(crate) fn request_host(host: &str) -> &str {
    let name = if host.starts_with('[') {
        // An IPv6 literal keeps its brackets; only a port after `]` goes.
        match find_byte(host, b']') {
            Some(end) => host.get(..=end).unwrap_or(host),
            None => host,
        }
    } else {
        split_at_byte(host, b':').map_or(host, |(name, _port)| name)
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// The part of a request host a wildcard is looked up by: everything after the first
/// label (`example.com` for `a.example.com`), if that is not empty.
pub(crate) fn wildcard_suffix(host: &str) -> Option<&str> {
    split_at_byte(host, b'.')
        .map(|(_, suffix)| suffix)
        .filter(|suffix| !suffix.is_empty())
}

#[cfg(test)]
#[path = "host_tests.rs"]
mod tests;
