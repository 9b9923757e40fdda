//! `cors`: answers CORS preflight requests and adds CORS headers to responses
//! (inbound).
//!
//! ```xml
//! <cors allow-credentials="false" terminate-unmatched-request="true">
//!     <allowed-origins><origin>https://app.example.com</origin></allowed-origins>
//!     <allowed-methods preflight-result-max-age="300"><method>GET</method></allowed-methods>
//!     <allowed-headers><header>content-type</header></allowed-headers>
//!     <expose-headers><header>x-request-id</header></expose-headers>
//! </cors>
//! ```
//!
//! - A request without `Origin` is not a CORS request: nothing happens.
//! - A preflight (`OPTIONS` with `Access-Control-Request-Method`) whose origin, method
//!   and requested headers are allowed is answered at once with `200` and the
//!   `Access-Control-Allow-*` headers (and `Access-Control-Max-Age` when
//!   `preflight-result-max-age` is set); no later policy runs.
//! - Any other request from an allowed origin continues; `Access-Control-Allow-Origin`
//!   (and `-Credentials`, `-Expose-Headers`, `Vary: Origin`) are added to whatever
//!   response it gets, rate-limit refusals included.
//! - An unmatched request ends with an empty `200` when `terminate-unmatched-request`
//!   is true (the default APIM's service behaves with); when false, a preflight is
//!   left to a later `cors` policy (an empty `200` if none answers) and other requests
//!   continue without CORS headers.
//!
//! `allowed-origins` is required and holds `*` alone or origins (`scheme://host[:port]`,
//! compared as browsers serialise them). Without `allowed-methods`, `GET` and `POST`
//! are allowed; `*` allows any method or header. With `allow-credentials`, the origin
//! is echoed instead of `*`.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use url::Url;

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::{Flow, PolicyResponse, RequestState};
use crate::reader::{Element, RawValue};
use crate::registry::prelude::*;

/// Parsed `<cors>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    allow_credentials: Option<RawValue>,
    terminate_unmatched_request: Option<RawValue>,
    origins: Vec<RawValue>,
    methods: Option<Vec<RawValue>>,
    max_age: Option<RawValue>,
    allowed_headers: Option<Vec<RawValue>>,
    expose_headers: Option<Vec<RawValue>>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let mut config = Self {
            allow_credentials: reader.optional("allow-credentials"),
            terminate_unmatched_request: reader.optional("terminate-unmatched-request"),
            origins: Vec::new(),
            methods: None,
            max_age: None,
            allowed_headers: None,
            expose_headers: None,
            position: reader.element.position,
        };
        reader.no_text()?;
        let mut origins_seen = false;
        let mut methods_seen = false;
        let mut headers_seen = false;
        let mut expose_seen = false;
        for child in &reader.element.children {
            let mut child_reader = reader.child(child);
            match child.name.as_str() {
                "allowed-origins" => {
                    reader.at_most_once(&mut origins_seen, child)?;
                    config.origins = items(&child_reader, child, "origin")?;
                }
                "allowed-methods" => {
                    reader.at_most_once(&mut methods_seen, child)?;
                    config.max_age = child_reader.optional("preflight-result-max-age");
                    config.methods = Some(items(&child_reader, child, "method")?);
                }
                "allowed-headers" => {
                    reader.at_most_once(&mut headers_seen, child)?;
                    config.allowed_headers = Some(items(&child_reader, child, "header")?);
                }
                "expose-headers" => {
                    reader.at_most_once(&mut expose_seen, child)?;
                    config.expose_headers = Some(items(&child_reader, child, "header")?);
                }
                _ => {
                    return Err(reader.unexpected_child(
                        child,
                        "<allowed-origins>, <allowed-methods>, <allowed-headers> or <expose-headers>",
                    ));
                }
            }
            child_reader.finish()?;
        }
        if !origins_seen {
            return Err(reader.site.err(
                config.position,
                ErrorKind::Missing,
                "<allowed-origins> with at least one <origin> is required",
            ));
        }
        Ok(config)
    }
}

/// Reads `<item>text</item>` children of a list element; at least one is required.
fn items(
    reader: &ElementReader<'_>,
    list: &Element,
    item: &str,
) -> Result<Vec<RawValue>, PolicyError> {
    reader.no_text()?;
    let mut values = Vec::new();
    for child in &list.children {
        if child.name != item {
            return Err(reader.unexpected_child(child, &format!("<{item}>")));
        }
        let child_reader = reader.child(child);
        child_reader.finish()?;
        child_reader.no_children()?;
        let Some(text) = child.text.clone() else {
            return Err(reader.site.err(
                child.position,
                ErrorKind::Missing,
                format!("<{item}> must not be empty"),
            ));
        };
        values.push(text);
    }
    if values.is_empty() {
        return Err(reader.site.err(
            list.position,
            ErrorKind::Missing,
            format!("<{}> needs at least one <{item}>", list.name),
        ));
    }
    Ok(values)
}

#[derive(Debug)]
enum Origins {
    Any,
    /// Serialised origins (`https://example.com:8443`), lower case.
    List(Box<[Box<str>]>),
}

#[derive(Debug)]
enum Methods {
    Any,
    List(Box<[Method]>),
}

#[derive(Debug)]
enum Headers {
    Any,
    List(Box<[HeaderName]>),
}

/// Compiled `<cors>`.
#[derive(Debug)]
pub(crate) struct Cors {
    allow_credentials: bool,
    terminate_unmatched: bool,
    origins: Origins,
    methods: Methods,
    /// Precomputed `Access-Control-Allow-Methods` for a method list.
    allow_methods: Option<HeaderValue>,
    headers: Headers,
    /// Precomputed `Access-Control-Allow-Headers` for a header list.
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

impl Cors {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let allow_credentials = cx.boolean_or(
            site,
            config.allow_credentials.as_ref(),
            "allow-credentials",
            false,
        )?;
        let terminate_unmatched = cx.boolean_or(
            site,
            config.terminate_unmatched_request.as_ref(),
            "terminate-unmatched-request",
            true,
        )?;
        let origins = compile_list(cx, site, &config.origins, "origin", |text, position| {
            let url = Url::parse(text)
                .ok()
                .filter(|url| url.host().is_some())
                .ok_or_else(|| {
                    site.invalid(
                        position,
                        format!("origin `{text}` is not an origin like `https://app.example.com` (scheme, host and optional port)"),
                    )
                })?;
            Ok(url
                .origin()
                .ascii_serialization()
                .to_ascii_lowercase()
                .into_boxed_str())
        })?;
        let origins = match origins {
            None => Origins::Any,
            Some(list) => Origins::List(list.into_boxed_slice()),
        };
        let default_methods = [Method::GET, Method::POST];
        let methods = match &config.methods {
            None => Some(default_methods.to_vec()),
            Some(methods) => compile_list(cx, site, methods, "method", |text, position| {
                Method::from_bytes(text.as_bytes())
                    .map_err(|_| site.invalid(position, format!("`{text}` is not an HTTP method")))
            })?,
        };
        let allow_methods = methods
            .as_ref()
            .map(|methods| joined(methods.iter().map(Method::as_str)));
        let methods = match methods {
            None => Methods::Any,
            Some(list) => Methods::List(list.into_boxed_slice()),
        };
        let headers = match &config.allowed_headers {
            None => Some(Vec::new()),
            Some(headers) => compile_list(cx, site, headers, "header", |text, position| {
                header(site, text, position)
            })?,
        };
        let allow_headers = headers
            .as_ref()
            .filter(|headers| !headers.is_empty())
            .map(|headers| joined(headers.iter().map(HeaderName::as_str)));
        let headers = match headers {
            None => Headers::Any,
            Some(list) => Headers::List(list.into_boxed_slice()),
        };
        let expose_headers = match &config.expose_headers {
            None => None,
            Some(headers) => Some(
                match compile_list(cx, site, headers, "header", |text, position| {
                    header(site, text, position)
                })? {
                    None => HeaderValue::from_static("*"),
                    Some(list) => joined(list.iter().map(HeaderName::as_str)),
                },
            ),
        };
        let max_age = config
            .max_age
            .as_ref()
            .map(|raw| {
                cx.number::<u32>(site, raw, "preflight-result-max-age", 0..=u32::MAX)
                    .map(HeaderValue::from)
            })
            .transpose()?;
        Ok(Self {
            allow_credentials,
            terminate_unmatched,
            origins,
            methods,
            allow_methods,
            headers,
            allow_headers,
            expose_headers,
            max_age,
        })
    }

    /// Handles the request: may answer a preflight, or note headers for the response.
    pub(crate) fn apply(&self, request: &mut RequestState) -> Flow {
        let Some(origin) = request.headers.get(ORIGIN).cloned() else {
            return Flow::Continue;
        };
        let origin_allowed = self.origin_allowed(&origin);
        let preflight = request.method == Method::OPTIONS
            && request.headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD);
        if preflight {
            if origin_allowed && self.preflight_allowed(&request.headers) {
                request.cors_preflight_unanswered = false;
                return Flow::Respond(Box::new(self.preflight_response(origin, &request.headers)));
            }
            if self.terminate_unmatched {
                return Flow::Respond(Box::new(PolicyResponse::empty(StatusCode::OK)));
            }
            request.cors_preflight_unanswered = true;
            return Flow::Continue;
        }
        if origin_allowed {
            self.origin_headers(origin, &mut request.response_headers);
            if let Some(expose) = &self.expose_headers {
                request
                    .response_headers
                    .insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
            }
            Flow::Continue
        } else if self.terminate_unmatched {
            Flow::Respond(Box::new(PolicyResponse::empty(StatusCode::OK)))
        } else {
            Flow::Continue
        }
    }

    fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            Origins::Any => true,
            Origins::List(list) => {
                let origin = origin.as_bytes();
                list.iter()
                    .any(|allowed| allowed.as_bytes().eq_ignore_ascii_case(origin))
            }
        }
    }

    fn preflight_allowed(&self, headers: &HeaderMap) -> bool {
        let method_allowed = match (&self.methods, headers.get(ACCESS_CONTROL_REQUEST_METHOD)) {
            (Methods::Any, _) => true,
            (Methods::List(methods), Some(requested)) => methods
                .iter()
                .any(|method| method.as_str().as_bytes() == requested.as_bytes()),
            (Methods::List(_), None) => false,
        };
        let headers_allowed =
            match &self.headers {
                Headers::Any => true,
                Headers::List(allowed) => headers
                    .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
                    .iter()
                    .all(|value| {
                        value.to_str().is_ok_and(|list| {
                            list.split(',')
                                .map(str::trim)
                                .filter(|name| !name.is_empty())
                                .all(|name| {
                                    allowed
                                        .iter()
                                        .any(|allowed| allowed.as_str().eq_ignore_ascii_case(name))
                                })
                        })
                    }),
            };
        method_allowed && headers_allowed
    }

    fn preflight_response(&self, origin: HeaderValue, request: &HeaderMap) -> PolicyResponse {
        let mut response = PolicyResponse::empty(StatusCode::OK);
        self.origin_headers(origin, &mut response.headers);
        let methods = match &self.methods {
            Methods::Any => request.get(ACCESS_CONTROL_REQUEST_METHOD).cloned(),
            Methods::List(_) => self.allow_methods.clone(),
        };
        if let Some(methods) = methods {
            response
                .headers
                .insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        let allow_headers = match &self.headers {
            Headers::Any => request.get(ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            Headers::List(_) => self.allow_headers.clone(),
        };
        if let Some(allow_headers) = allow_headers {
            response
                .headers
                .insert(ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        }
        if let Some(max_age) = &self.max_age {
            response
                .headers
                .insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        response
    }

    fn origin_headers(&self, origin: HeaderValue, headers: &mut HeaderMap) {
        if matches!(self.origins, Origins::Any) && !self.allow_credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        } else {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        if self.allow_credentials {
            headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// Compiles a list where `*` alone means "any" (`None`).
fn compile_list<T>(
    cx: &CompileContext<'_>,
    site: Site<'_>,
    values: &[RawValue],
    item: &str,
    mut parse: impl FnMut(&str, Position) -> Result<T, PolicyError>,
) -> Result<Option<Vec<T>>, PolicyError> {
    let mut list = Vec::with_capacity(values.len());
    for value in values {
        let resolved = cx.literal(site, value)?;
        let text = resolved.text.trim();
        if text == "*" {
            if values.len() > 1 {
                return Err(site.invalid(
                    value.position,
                    format!("`*` must be the only <{item}> when used"),
                ));
            }
            return Ok(None);
        }
        list.push(parse(text, value.position)?);
    }
    Ok(Some(list))
}

fn header(site: Site<'_>, text: &str, position: Position) -> Result<HeaderName, PolicyError> {
    HeaderName::from_bytes(text.as_bytes())
        .map_err(|_| site.invalid(position, format!("`{text}` is not an HTTP header name")))
}

fn joined<'a>(items: impl Iterator<Item = &'a str>) -> HeaderValue {
    let text = items.collect::<Vec<_>>().join(", ");
    // Methods and header names are tokens, always valid in a header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl PolicyDefinition for Cors {
    const NAME: &'static str = "cors";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for Cors {
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.apply(run.request)
    }
}

#[cfg(test)]
#[path = "cors_tests.rs"]
mod tests;
