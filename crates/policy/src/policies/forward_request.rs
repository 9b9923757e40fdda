//! `forward-request`: how the request is forwarded to the backend (backend section).
//!
//! ```xml
//! <forward-request timeout="60" follow-redirects="false" buffer-request-body="false"
//!     buffer-response="true" fail-on-error-status-code="false" http-version="1" />
//! ```
//!
//! Attributes: `timeout` (seconds) or `timeout-ms` (not both), `continue-timeout`
//! (seconds), `http-version` (`1`, `2`, `2or1`), `follow-redirects`,
//! `buffer-request-body`, `buffer-response`, `fail-on-error-status-code`. Defaults are
//! those of [`ForwardSettings::default`]. Without any `forward-request` in the merged
//! backend section the gateway still forwards, with the defaults.
//!
//! `continue-timeout` (HTTP/1.1 backends): a request with a body goes out with
//! `Expect: 100-continue` and its body is held until the backend answers `100 Continue`,
//! answers finally, or the timeout passes (then it is sent anyway, as .NET and curl do).
//! `0` sends the body at once. It is refused with `http-version="2"` or `"2or1"`: hyper
//! reports interim responses on HTTP/1.1 connections only, and a body that always waited
//! the whole timeout would be worse than none.
//!
//! `buffer-response="true"` collects the backend's chunks up to 8 KiB (or the end of
//! the body) before sending them, as APIM documents. Without the attribute Gatehouse
//! streams each chunk as it arrives (APIM's default is `true`; streaming is what
//! server-sent events and progressive responses need, and costs no latency).
//!
//! The policy only records settings; the gateway forwards after the backend section,
//! so `forward-request` must be the last policy there.

use std::time::Duration;

use crate::context::CompileContext;
use crate::document::ElementReader;
use crate::error::{PolicyError, Site};
use crate::pipeline::{ForwardSettings, HttpVersion};
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// Longest timeout accepted (one day); APIM notes anything over 240 s may be cut by
/// network equipment anyway.
const MAX_TIMEOUT_S: u64 = 86_400;

/// Parsed `<forward-request>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    timeout: Option<RawValue>,
    timeout_ms: Option<RawValue>,
    continue_timeout: Option<RawValue>,
    http_version: Option<RawValue>,
    follow_redirects: Option<RawValue>,
    buffer_request_body: Option<RawValue>,
    buffer_response: Option<RawValue>,
    fail_on_error_status_code: Option<RawValue>,
}

impl Config {
    pub(crate) fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        let config = Self {
            timeout: reader.optional("timeout"),
            timeout_ms: reader.optional("timeout-ms"),
            continue_timeout: reader.optional("continue-timeout"),
            http_version: reader.optional("http-version"),
            follow_redirects: reader.optional("follow-redirects"),
            buffer_request_body: reader.optional("buffer-request-body"),
            buffer_response: reader.optional("buffer-response"),
            fail_on_error_status_code: reader.optional("fail-on-error-status-code"),
        };
        reader.no_text()?;
        reader.no_children()?;
        if let (Some(_), Some(timeout_ms)) = (&config.timeout, &config.timeout_ms) {
            return Err(reader.site.invalid(
                timeout_ms.position,
                "use either `timeout` or `timeout-ms`, not both",
            ));
        }
        Ok(config)
    }
}

/// Compiled `<forward-request>`.
#[derive(Debug)]
pub(crate) struct ForwardRequest {
    settings: ForwardSettings,
}

impl ForwardRequest {
    pub(crate) fn compile(
        config: &Config,
        site: Site<'_>,
        cx: &CompileContext<'_>,
    ) -> Result<Self, PolicyError> {
        let defaults = ForwardSettings::default();
        let timeout = match (&config.timeout, &config.timeout_ms) {
            (Some(seconds), _) => Some(Duration::from_secs(cx.number(
                site,
                seconds,
                "timeout",
                0..=MAX_TIMEOUT_S,
            )?)),
            (None, Some(millis)) => Some(Duration::from_millis(cx.number(
                site,
                millis,
                "timeout-ms",
                0..=MAX_TIMEOUT_S * 1000,
            )?)),
            (None, None) => None,
        };
        let continue_timeout = config
            .continue_timeout
            .as_ref()
            .map(|seconds| {
                cx.number(site, seconds, "continue-timeout", 0..=MAX_TIMEOUT_S)
                    .map(Duration::from_secs)
            })
            .transpose()?;
        let http_version = match &config.http_version {
            None => defaults.http_version,
            Some(raw) => {
                let resolved = cx.literal(site, raw)?;
                match resolved.text.trim().to_ascii_lowercase().as_str() {
                    "1" | "1.1" => HttpVersion::Http1,
                    "2" => HttpVersion::Http2,
                    "2or1" => HttpVersion::Http2OrHttp1,
                    _ => {
                        return Err(site.invalid(
                            raw.position,
                            format!(
                                "`http-version` must be `1`, `2` or `2or1`, found {}",
                                resolved.shown()
                            ),
                        ));
                    }
                }
            }
        };
        let flag = |value: &Option<RawValue>, name: &str, default: bool| {
            cx.boolean_or(site, value.as_ref(), name, default)
        };
        if let Some(raw) = &config.continue_timeout
            && http_version != HttpVersion::Http1
        {
            return Err(site.not_supported(
                raw.position,
                "`continue-timeout` applies to HTTP/1.1 backends only (`100 Continue` is not \
                 reported on HTTP/2 connections); remove it or `http-version`",
            ));
        }
        Ok(Self {
            settings: ForwardSettings {
                timeout,
                continue_timeout: continue_timeout.filter(|timeout| !timeout.is_zero()),
                http_version,
                follow_redirects: flag(
                    &config.follow_redirects,
                    "follow-redirects",
                    defaults.follow_redirects,
                )?,
                buffer_request_body: flag(
                    &config.buffer_request_body,
                    "buffer-request-body",
                    defaults.buffer_request_body,
                )?,
                buffer_response: flag(
                    &config.buffer_response,
                    "buffer-response",
                    defaults.buffer_response,
                )?,
                fail_on_error_status_code: flag(
                    &config.fail_on_error_status_code,
                    "fail-on-error-status-code",
                    defaults.fail_on_error_status_code,
                )?,
            },
        })
    }

    pub(crate) fn settings(&self) -> ForwardSettings {
        self.settings
    }
}

impl PolicyDefinition for ForwardRequest {
    const NAME: &'static str = "forward-request";
    const SECTIONS: &'static [SectionKind] = &[Backend];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        Self::compile(config, cx.site, cx.context)
    }
}

impl Step for ForwardRequest {
    fn apply(&self, _meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        run.request.forward = self.settings();
        Flow::Continue
    }
}

#[cfg(test)]
#[path = "forward_request_tests.rs"]
mod tests;
