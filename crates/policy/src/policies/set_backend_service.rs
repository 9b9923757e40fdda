//! `set-backend-service`: sends the request to another backend (inbound, backend).
//!
//! ```xml
//! <set-backend-service base-url="https://orders-v2.internal/api" />
//! <set-backend-service backend-id="orders" />
//! ```
//!
//! Exactly one of `base-url` (an `http` or `https` URL; `ws` and `wss` are read as
//! `http` and `https`) and `backend-id` (a configured
//! backend; unknown ids are rejected at compile time) is required. The Service Fabric
//! (`sf-*`) and Dapr (`dapr-*`, `backend-id="dapr"`) forms are not supported yet.

use std::sync::Arc;

use url::Url;

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::BackendTarget;
use crate::expression::PolicyExpression;
use crate::reader::{RawText, RawValue};
use crate::registry::prelude::*;

/// Parsed `<set-backend-service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    base_url: Option<RawValue>,
    backend_id: Option<RawValue>,
    position: Position,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        const SERVICE_FABRIC: &str = " (Service Fabric backends)";
        const DAPR: &str = " (Dapr service invocation)";
        for name in [
            "sf-resolve-condition",
            "sf-service-instance-name",
            "sf-partition-key",
            "sf-listener-name",
        ] {
            reader.unsupported(name, SERVICE_FABRIC)?;
        }
        for name in ["dapr-app-id", "dapr-method", "dapr-namespace"] {
            reader.unsupported(name, DAPR)?;
        }
        let config = Self {
            base_url: reader.optional("base-url"),
            backend_id: reader.optional("backend-id"),
            position: reader.element.position,
        };
        reader.no_text()?;
        reader.no_children()?;
        match (&config.base_url, &config.backend_id) {
            (Some(_), Some(backend_id)) => Err(reader.site.invalid(
                backend_id.position,
                "use either `base-url` or `backend-id`, not both",
            )),
            (None, None) => Err(reader.site.err(
                config.position,
                ErrorKind::Missing,
                "one of `base-url` or `backend-id` is required",
            )),
            _ => Ok(config),
        }
    }
}

/// Compiled `<set-backend-service>`.
#[derive(Debug)]
pub(crate) struct SetBackendService {
    target: Target,
}

#[derive(Debug)]
enum Target {
    Fixed(Arc<BackendTarget>),
    /// A `base-url` policy expression, evaluated per request.
    Computed(PolicyExpression),
}

impl SetBackendService {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let target = if let Some(raw) = &config.base_url {
            if let RawText::Expression(expression) = &raw.text {
                return Ok(Self {
                    target: Target::Computed(cx.expression(site, expression)?),
                });
            }
            let resolved = cx.literal(site, raw)?;
            BackendTarget {
                url: parse_base_url(resolved.text.trim()).map_err(|why| {
                    site.invalid(
                        raw.position,
                        format!("`base-url` {} {why}", resolved.shown()),
                    )
                })?,
                backend_id: None,
            }
        } else if let Some(raw) = &config.backend_id {
            let resolved = cx.literal(site, raw)?;
            let id = resolved.text.trim();
            if id.eq_ignore_ascii_case("dapr") {
                return Err(site.not_supported(
                    raw.position,
                    "Dapr backends are not supported yet by Gatehouse",
                ));
            }
            let Some(backend) = cx.backend(id) else {
                let known = cx.backend_ids();
                let hint = if known.is_empty() {
                    "no backends are configured".to_owned()
                } else {
                    format!("configured backends: {}", known.join(", "))
                };
                return Err(site.invalid(
                    raw.position,
                    format!(
                        "unknown backend {}; add it under `backends` ({hint})",
                        resolved.shown()
                    ),
                ));
            };
            BackendTarget {
                url: parse_base_url(&backend.url).map_err(|why| {
                    site.invalid(
                        raw.position,
                        format!("backend `{id}` has URL `{}`, which {why}", backend.url),
                    )
                })?,
                backend_id: Some(Arc::from(id)),
            }
        } else {
            return Err(site.err(
                config.position,
                ErrorKind::Missing,
                "one of `base-url` or `backend-id` is required",
            ));
        };
        Ok(Self {
            target: Target::Fixed(Arc::new(target)),
        })
    }
}

fn parse_base_url(text: &str) -> Result<Url, &'static str> {
    let mut url = Url::parse(text).map_err(|_| "is not an absolute URL")?;
    // A WebSocket backend's handshake is an HTTP/1.1 request: `ws` is reached as
    // `http`, `wss` as `https` (whether the request is relayed as a WebSocket is the
    // API's to decide, by its own backend URL).
    let http = match url.scheme() {
        "ws" => Some("http"),
        "wss" => Some("https"),
        _ => None,
    };
    if let Some(scheme) = http {
        url.set_scheme(scheme)
            .map_err(|()| "cannot be reached over HTTP")?;
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must use http or https (ws or wss for a WebSocket backend)");
    }
    if url.host().is_none() {
        return Err("has no host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment");
    }
    Ok(url)
}

impl PolicyDefinition for SetBackendService {
    const NAME: &'static str = "set-backend-service";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for SetBackendService {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let expression = match &self.target {
            Target::Fixed(target) => {
                run.request.backend = Some(Arc::clone(target));
                return Flow::Continue;
            }
            Target::Computed(expression) => expression,
        };
        let value = match expression.evaluate(&run.host()) {
            Ok(value) => value.to_string(),
            Err(failure) => return failure.into_flow(meta, run.section()),
        };
        match parse_base_url(value.trim()) {
            Ok(url) => {
                run.request.backend = Some(Arc::new(BackendTarget {
                    url,
                    backend_id: None,
                }));
                Flow::Continue
            }
            // The value is not shown: it may hold a secret named value.
            Err(why) => meta.fail(
                run.section(),
                "ExpressionValueEvaluationFailure",
                format!("Expression evaluation failed. The `base-url` expression gave a value that {why}."),
                PolicyResponse::json_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            ),
        }
    }
}

#[cfg(test)]
#[path = "set_backend_service_tests.rs"]
mod tests;
