//! `forward-request follow-redirects="true"`: which backend redirect the gateway
//! follows, and how, as .NET's `HttpClient` (APIM's) does:
//!
//! - 301, 302, 303, 307 and 308 with a `Location` (absolute, or relative to the URL that
//!   answered) are followed, at most [`MAX_REDIRECTS`] times;
//! - 303 turns the method into `GET` (`HEAD` stays `HEAD`), and 301/302 turn `POST`
//!   into `GET`; 307 and 308 keep the method and so the body;
//! - `https` → `http` is never followed (the redirect is returned), nor any scheme other
//!   than `http`/`https`;
//! - a redirect that needs the body again (307/308, or 301/302 of a request other
//!   than `POST` that had one) is followed only when the body was buffered
//!   (`buffer-request-body="true"`); a streamed body is gone, so without buffering such
//!   a redirect is returned to the client as it is;
//! - `Authorization` is not sent to another origin.
//!
//! Pure: the proxy sends each hop.

use http::{HeaderValue, Method, StatusCode, Uri};

/// How many redirects one request may follow (.NET's `MaxAutomaticRedirections`).
pub const MAX_REDIRECTS: usize = 50;

/// The next request of a followed redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// Where to send it.
    pub uri: Uri,
    /// With which method.
    pub method: Method,
    /// Whether the request body goes again (307/308); when false the hop has none.
    pub keeps_body: bool,
    /// Whether `uri` has the scheme, host and port of the URL that answered.
    pub same_origin: bool,
}

/// The hop that follows `status` with `location`, for a request sent to `current` with
/// `method`; `had_body` says whether that request had a body, `replayable` whether the
/// gateway kept it. `None`: return the response as it is.
#[must_use]
pub fn next_hop(
    status: StatusCode,
    location: Option<&HeaderValue>,
    current: &Uri,
    method: &Method,
    had_body: bool,
    replayable: bool,
) -> Option<Hop> {
    let (method, keeps_body) = match status.as_u16() {
        303 if *method == Method::HEAD => (Method::HEAD, false),
        303 => (Method::GET, false),
        301 | 302 if *method == Method::POST => (Method::GET, false),
        301 | 302 => (method.clone(), had_body),
        307 | 308 => (method.clone(), had_body),
        _ => return None,
    };
    if keeps_body && !replayable {
        // The body was streamed to the first backend and is gone.
        return None;
    }
    let base = url::Url::parse(&current.to_string()).ok()?;
    let next = base.join(location?.to_str().ok()?.trim()).ok()?;
    let downgrade = base.scheme() == "https" && next.scheme() == "http";
    if !matches!(next.scheme(), "http" | "https") || downgrade || next.host_str().is_none() {
        return None;
    }
    let same_origin = next.origin() == base.origin();
    // A fragment never goes to a server.
    let mut next = next;
    next.set_fragment(None);
    Some(Hop {
        uri: next.as_str().parse().ok()?,
        method,
        keeps_body,
        same_origin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, location: &'static str, method: &Method, had_body: bool) -> Option<Hop> {
        next_hop(
            StatusCode::from_u16(status).unwrap(),
            Some(&HeaderValue::from_static(location)),
            &"http://a.example:8080/x/y?q=1".parse().unwrap(),
            method,
            had_body,
            false,
        )
    }

    #[test]
    fn follows_redirects_as_dotnet_does() {
        let relative = hop(302, "/z?w=2#frag", &Method::GET, false).unwrap();
        assert_eq!(relative.uri, "http://a.example:8080/z?w=2");
        assert_eq!((relative.method, relative.same_origin), (Method::GET, true));
        let sibling = hop(301, "z", &Method::GET, false).unwrap();
        assert_eq!(sibling.uri, "http://a.example:8080/x/z");
        let other = hop(307, "https://b.example/p", &Method::DELETE, false).unwrap();
        assert_eq!((other.method, other.same_origin), (Method::DELETE, false));
        // Method changes.
        assert_eq!(
            hop(303, "/z", &Method::PUT, true).unwrap().method,
            Method::GET
        );
        assert_eq!(
            hop(303, "/z", &Method::HEAD, false).unwrap().method,
            Method::HEAD
        );
        assert_eq!(
            hop(302, "/z", &Method::POST, true).unwrap().method,
            Method::GET
        );
        assert!(!hop(302, "/z", &Method::POST, true).unwrap().keeps_body);
    }

    #[test]
    fn a_kept_body_goes_again() {
        let hop = next_hop(
            StatusCode::PERMANENT_REDIRECT,
            Some(&HeaderValue::from_static("/z")),
            &"http://a.example/x".parse().unwrap(),
            &Method::PUT,
            true,
            true,
        )
        .unwrap();
        assert_eq!((hop.method, hop.keeps_body), (Method::PUT, true));
    }

    #[test]
    fn returns_what_it_cannot_follow() {
        // The body is gone.
        assert_eq!(hop(307, "/z", &Method::POST, true), None);
        assert_eq!(hop(308, "/z", &Method::PUT, true), None);
        assert_eq!(hop(302, "/z", &Method::PUT, true), None);
        // Not a redirect, no Location, other schemes.
        assert_eq!(hop(200, "/z", &Method::GET, false), None);
        assert_eq!(hop(304, "/z", &Method::GET, false), None);
        assert_eq!(hop(302, "ftp://a.example/z", &Method::GET, false), None);
        assert_eq!(hop(302, "file:///etc/passwd", &Method::GET, false), None);
        assert_eq!(
            next_hop(
                StatusCode::FOUND,
                None,
                &"http://a.example/".parse().unwrap(),
                &Method::GET,
                false,
                false
            ),
            None
        );
        // No downgrade from https.
        assert_eq!(
            next_hop(
                StatusCode::FOUND,
                Some(&HeaderValue::from_static("http://a.example/")),
                &"https://a.example/".parse().unwrap(),
                &Method::GET,
                false,
                false
            ),
            None
        );
    }
}
