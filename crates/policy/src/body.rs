//! Message bodies policies read or replace.
//!
//! Bodies stream through the gateway untouched unless a compiled pipeline needs one:
//! an expression that reads `context.Request.Body` or `context.Response.Body` (found
//! at load, [`ContextReads`]), or a `set-body` that replaces it. Only then does the
//! gateway read the body whole (up to its buffering limit) into a [`BufferedBody`] on
//! the [`RequestState`](crate::RequestState) or [`ResponseState`](crate::ResponseState).

use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;

/// What in the request context a pipeline's expressions read that the gateway only
/// prepares on demand (found at load), so that pipelines that do not read them pay
/// nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContextReads {
    /// `context.Request.Body`: the gateway reads the request body whole before inbound.
    pub request_body: bool,
    /// `context.Response.Body`: the gateway reads the backend's body whole before
    /// outbound.
    pub response_body: bool,
    /// `context.RequestId`: the gateway makes the request's id before inbound.
    pub request_id: bool,
}

impl ContextReads {
    /// Both sets of reads.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self {
            request_body: self.request_body || other.request_body,
            response_body: self.response_body || other.response_body,
            request_id: self.request_id || other.request_id,
        }
    }
}

/// A body read whole, as policies see it.
///
/// As in APIM, reading it with `As<T>()` *consumes* it: the original body is lost (the
/// backend or the client then gets an empty body) unless the read passed
/// `preserveContent: true` or a `set-body` puts a body back.
#[derive(Debug, Default)]
pub struct BufferedBody {
    bytes: Bytes,
    /// Read without `preserveContent`: gone for later readers and for sending. Atomic
    /// only so that the state stays `Sync`; a request's policies run one at a time.
    consumed: AtomicBool,
}

impl BufferedBody {
    /// A body as received (or as `set-body` made it).
    #[must_use]
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            consumed: AtomicBool::new(false),
        }
    }

    /// The body for an expression's `As<T>(preserveContent)`; empty once consumed.
    #[must_use]
    pub fn read(&self, preserve_content: bool) -> Bytes {
        if self.consumed.load(Ordering::Relaxed) {
            return Bytes::new();
        }
        if !preserve_content {
            self.consumed.store(true, Ordering::Relaxed);
        }
        self.bytes.clone()
    }

    /// Whether there is nothing to read: an empty body, or one already consumed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() || self.consumed.load(Ordering::Relaxed)
    }

    /// What to send: the body, or nothing once an expression consumed it.
    #[must_use]
    pub fn to_send(&self) -> Bytes {
        if self.consumed.load(Ordering::Relaxed) {
            Bytes::new()
        } else {
            self.bytes.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_without_preserve_content_consumes_the_body() {
        let body = BufferedBody::new(Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(body.read(true), "{\"a\":1}");
        assert_eq!(body.to_send(), "{\"a\":1}", "a preserving read keeps it");
        assert_eq!(body.read(false), "{\"a\":1}");
        assert!(body.is_empty());
        assert_eq!(body.read(true), "", "consumed");
        assert_eq!(body.to_send(), "", "the original body is lost");
    }

    #[test]
    fn reads_combine() {
        let request = ContextReads {
            request_body: true,
            ..ContextReads::default()
        };
        let id = ContextReads {
            request_id: true,
            ..ContextReads::default()
        };
        assert_eq!(
            request.union(id),
            ContextReads {
                request_body: true,
                response_body: false,
                request_id: true,
            }
        );
    }
}
