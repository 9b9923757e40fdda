//! `check-header`: refuses requests without a header, or with a value not in a list
//! (inbound).
//!
//! ```xml
//! <check-header name="Authorization" failed-check-httpcode="401"
//!     failed-check-error-message="Not authorized" ignore-case="false">
//!     <value>f6dc69a089844cf6b2019bae6d36fac8</value>
//! </check-header>
//! ```
//!
//! All four attributes are required, as in APIM. Without `<value>`s only presence is
//! checked; otherwise one of the request's values for the header must equal one of
//! them (ignoring case if asked). A refused request fails with the given status and
//! APIM's JSON body `{"statusCode":…,"message":"<failed-check-error-message>"}`; the
//! error reason is `HeaderNotFound` or `HeaderValueNotAllowed`. The header's value is
//! never echoed and is compared in constant time, since it often is a credential.

use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::{header_name, status_code, value_children};
use crate::context::CompileContext;
use crate::document::{ElementReader, SectionKind};
use crate::error::{PolicyError, Site};
use crate::pipeline::{Flow, PolicyResponse, StepMeta};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Parsed `<check-header>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    name: RawValue,
    failed_check_httpcode: RawValue,
    failed_check_error_message: RawValue,
    ignore_case: RawValue,
    values: Vec<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        Ok(Self {
            name: reader.required("name")?,
            failed_check_httpcode: reader.required("failed-check-httpcode")?,
            failed_check_error_message: reader.required("failed-check-error-message")?,
            ignore_case: reader.required("ignore-case")?,
            values: value_children(reader)?,
        })
    }
}

/// Compiled `<check-header>`.
#[derive(Debug)]
pub(crate) struct CheckHeader {
    name: HeaderName,
    ignore_case: bool,
    /// Allowed values; lower-cased when `ignore_case`.
    values: Box<[Box<str>]>,
    response: PolicyResponse,
    not_found: String,
    not_allowed: String,
}

impl CheckHeader {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let name = header_name(cx, site, &config.name, "name")?;
        let status = status_code(
            cx,
            site,
            &config.failed_check_httpcode,
            "failed-check-httpcode",
        )?;
        let message = cx.literal(site, &config.failed_check_error_message)?;
        let ignore_case = cx.boolean(site, &config.ignore_case, "ignore-case")?;
        let values = config
            .values
            .iter()
            .map(|value| {
                let text = cx.literal(site, value)?.text;
                Ok(if ignore_case {
                    text.to_lowercase()
                } else {
                    text
                }
                .into_boxed_str())
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Self {
            not_found: format!("Header {name} was not found in the request. Access denied."),
            not_allowed: format!("Header {name} value is not allowed. Access denied."),
            name,
            ignore_case,
            values: values.into_boxed_slice(),
            response: PolicyResponse::json_error(status, &message.text),
        })
    }

    /// Checks the request headers.
    pub(crate) fn check(&self, headers: &HeaderMap, meta: &StepMeta, section: SectionKind) -> Flow {
        let mut present = headers.get_all(&self.name).iter().peekable();
        if present.peek().is_none() {
            return meta.fail(
                section,
                "HeaderNotFound",
                self.not_found.clone(),
                self.response.clone(),
            );
        }
        if self.values.is_empty() {
            return Flow::Continue;
        }
        let allowed = present.any(|value| {
            let Ok(text) = value.to_str() else {
                return false;
            };
            let lowered;
            let text = if self.ignore_case {
                lowered = text.to_lowercase();
                lowered.as_str()
            } else {
                text
            };
            // Constant-time: the allowed values are often API keys from secret named
            // values, and a short-circuiting comparison would leak them byte by byte.
            self.values
                .iter()
                .any(|allowed| bool::from(allowed.as_bytes().ct_eq(text.as_bytes())))
        });
        if allowed {
            Flow::Continue
        } else {
            meta.fail(
                section,
                "HeaderValueNotAllowed",
                self.not_allowed.clone(),
                self.response.clone(),
            )
        }
    }
}

impl PolicyDefinition for CheckHeader {
    const NAME: &'static str = "check-header";
    const SECTIONS: &'static [SectionKind] = &[Inbound];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for CheckHeader {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        self.check(&run.request.headers, meta, run.section())
    }
}

#[cfg(test)]
#[path = "check_header_tests.rs"]
mod tests;
