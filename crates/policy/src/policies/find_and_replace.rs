//! `find-and-replace`: replaces every occurrence of a text in the request body
//! (inbound, backend) or the response body (outbound, on-error).
//!
//! ```xml
//! <find-and-replace from="http://backend.internal" to="https://api.contoso.com" />
//! <find-and-replace from="@(context.Variables.GetValueOrDefault<string>("old"))" to="new" />
//! ```
//!
//! Both `from` and `to` may be policy expressions (evaluated per request; null is
//! empty text). As .NET's `String.Replace`, the search is ordinal (case-sensitive) and
//! left to right, replacements are not searched again, and an empty `from` is an error:
//! refused at load when it is written, `ExpressionValueEvaluationFailure` when an
//! expression computes it. The body is searched as bytes, so a body that is not UTF-8
//! text is searched as it is rather than refused; the gateway reads the body whole to
//! search it (up to `--max-buffered-body-bytes`) and sends the result with its new
//! length. A result over [`MAX_RESULT_BYTES`] (a short `from` and a long `to` can
//! multiply a body) fails the request rather than growing without bound.

use bytes::Bytes;
use http::StatusCode;

use crate::body::{BufferedBody, ContextReads};
use crate::document::ElementReader;
use crate::error::PolicyError;
use crate::expression::TextValue;
use crate::reader::RawValue;
use crate::registry::prelude::*;

/// The largest body a replacement may make: 16 MiB.
pub(crate) const MAX_RESULT_BYTES: usize = 16 << 20;

/// Parsed `<find-and-replace>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    from: RawValue,
    to: RawValue,
}

impl Config {
    fn parse(reader: &mut ElementReader<'_>) -> Result<Self, PolicyError> {
        reader.no_children()?;
        Ok(Self {
            from: reader.required("from")?,
            to: reader.required("to")?,
        })
    }
}

/// Compiled `<find-and-replace>`.
#[derive(Debug)]
pub(crate) struct FindAndReplace {
    from: TextValue,
    to: TextValue,
}

impl PolicyDefinition for FindAndReplace {
    const NAME: &'static str = "find-and-replace";
    const SECTIONS: &'static [SectionKind] = &[Inbound, Backend, Outbound, OnError];
    type Config = Config;

    fn parse(reader: &mut ElementReader<'_>, _cx: &ParseCx<'_>) -> Result<Config, PolicyError> {
        Config::parse(reader)
    }

    fn compile(config: &Config, cx: &StepCx<'_, '_>) -> Result<Self, PolicyError> {
        let from = cx.context.text_value(cx.site, &config.from)?;
        if let TextValue::Fixed(text) = &from
            && text.text.is_empty()
        {
            return Err(cx.site.invalid(
                config.from.position,
                "`from` must not be empty: there is nothing to find",
            ));
        }
        let to = cx.context.text_value(cx.site, &config.to)?;
        // The body this step searches is read whole before the section runs.
        let response = matches!(cx.section, Outbound | OnError);
        cx.context.note_reads(ContextReads {
            request_body: !response,
            response_body: response,
            request_id: false,
        });
        Ok(Self { from, to })
    }
}

impl Step for FindAndReplace {
    fn apply(&self, meta: &StepMeta, run: &mut Run<'_, '_, '_>) -> Flow {
        let section = run.section();
        let (from, to) = {
            let host = run.host();
            let from = match self.from.render(&host) {
                Ok(text) => String::from(&*text),
                Err(failure) => return failure.into_flow(meta, section),
            };
            let to = match self.to.render(&host) {
                Ok(text) => String::from(&*text),
                Err(failure) => return failure.into_flow(meta, section),
            };
            (from, to)
        };
        if from.is_empty() {
            return meta.fail(
                section,
                "ExpressionValueEvaluationFailure",
                format!(
                    "find-and-replace: `from` is empty, there is nothing to find ({}:{})",
                    meta.origin, meta.position
                ),
                PolicyResponse::json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ),
            );
        }
        let body = match &mut run.response {
            Some(response) => &mut response.body,
            None => &mut run.request.body,
        };
        if let Some(current) = body {
            let text = current.read(true);
            match replace_all(&text, from.as_bytes(), to.as_bytes(), MAX_RESULT_BYTES) {
                Ok(Some(replaced)) => *body = Some(BufferedBody::new(replaced)),
                Ok(None) => {}
                Err(TooLarge(size)) => {
                    return meta.fail(
                        section,
                        "BodyTooLarge",
                        format!(
                            "find-and-replace: the body would grow to {size} bytes, over the limit of {MAX_RESULT_BYTES} ({}:{})",
                            meta.origin, meta.position
                        ),
                        PolicyResponse::json_error(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Internal server error",
                        ),
                    );
                }
            }
        }
        Flow::Continue
    }
}

/// A replacement that would make a body of this many bytes, over the limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct TooLarge(pub(crate) usize);

/// `haystack` with every occurrence of `from` (not empty) replaced by `to`, left to
/// right and without overlaps; `None` when `from` does not occur. The result's size is
/// counted before anything is copied: over `limit`, [`TooLarge`].
pub(crate) fn replace_all(
    haystack: &[u8],
    from: &[u8],
    to: &[u8],
    limit: usize,
) -> Result<Option<Bytes>, TooLarge> {
    let finder = memchr::memmem::Finder::new(from);
    let count = finder.find_iter(haystack).count();
    if count == 0 {
        return Ok(None);
    }
    let size = (haystack.len() - count * from.len()).saturating_add(count.saturating_mul(to.len()));
    if size > limit {
        return Err(TooLarge(size));
    }
    let found = finder.find_iter(haystack);
    let mut out = Vec::with_capacity(size);
    let mut copied = 0;
    for at in found {
        out.extend_from_slice(&haystack[copied..at]);
        out.extend_from_slice(to);
        copied = at + from.len();
    }
    out.extend_from_slice(&haystack[copied..]);
    Ok(Some(Bytes::from(out)))
}

#[cfg(test)]
#[path = "find_and_replace_tests.rs"]
mod tests;
