//! Liquid templates for `<set-body template="liquid">`, as APIM's DotLiquid runs them
//! ("C# mode": filters have PascalCase names, dates use .NET format strings).
//!
//! A template is parsed once, at load, with liquid-rust's parser (`liquid-core`) and
//! the standard tags of `liquid-lib`; a syntax error, an unknown filter or tag, or a
//! tag Gatehouse refuses is a load error at the template's line and column. Per request
//! it renders against two globals: `body` (the message body: parsed JSON when the
//! message's `Content-Type` is JSON, else its text) and `context` (the request, the
//! response, the API, the variables, ...), each built only when the template names it.
//!
//! Rendering is bounded, since liquid-rust has no budget of its own:
//! - output: every byte written, to the body or into a `capture`, counts against
//!   [`MAX_OUTPUT_BYTES`];
//! - work: each loop iteration costs a step, and a loop's start, each filter and each
//!   `assign` cost steps by the size of what they read, copy and make; at most
//!   [`MAX_STEPS`] per render; ranges are walked, never collected; a filter's result is at most [`MAX_OUTPUT_BYTES`], checked before the
//!   filters that multiply their input (`Replace`, `Join`) run;
//! - tags that render into buffers Gatehouse cannot bound (`ifchanged`, `tablerow`)
//!   or read other templates (`include`, `render`) are refused at load.
//!
//! `for`, `assign` and `capture` are Gatehouse's own (to count iterations, copies and
//! captured bytes); the other tags, and every filter but `Date` and `UrlEncode`, are
//! liquid-lib's.
//!
//! Missing values render empty, as in DotLiquid: `{{ body.absent.deeper }}` is not an
//! error.

use std::fmt;
use std::io::{self, Write};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use gatehouse_expr::{Expression, ExpressionKind, Host, HostError, HostObject};
use liquid_core::model::{
    ArrayView, KString, KStringCow, KStringRef, Object, ObjectView, ScalarCow, Value, ValueCow,
    ValueView,
};
use liquid_core::parser::{BlockElement, FilterArguments, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, PartialStore, Registers, RuntimeBuilder};
use liquid_core::{
    BlockReflection, Error, Filter, FilterReflection, Language, ParseBlock, ParseFilter, ParseTag,
    Renderable, Runtime, TagBlock, TagReflection, TagTokenIter, Template,
};

use crate::body::{BufferedBody, ContextReads};
use crate::document::SectionKind;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::expression::RequestHost;

/// The most a render may write (the body, and everything `capture` collects), and the
/// largest value a filter may make: the gateway's default body buffering limit.
pub(crate) const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// The work one render may do: a loop iteration costs one step; a loop's start, a
/// filter and an `assign` one plus one per 64 bytes they read, copy and make.
pub(crate) const MAX_STEPS: u64 = 250_000;

/// `set-body`'s Liquid options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiquidOptions {
    /// `parse-date`: JSON strings that look like dates read as dates.
    pub(crate) parse_date: bool,
}

/// A template parsed at load.
pub(crate) struct LiquidTemplate {
    template: Template,
    /// Which globals and context members it names (found at load).
    uses: Uses,
    options: LiquidOptions,
    /// Which body `body` is: the response's in outbound and on-error.
    response_body: bool,
    /// A secret named value went into the template: messages do not quote it.
    secret: bool,
}

impl fmt::Debug for LiquidTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiquidTemplate")
            .field("uses", &self.uses)
            .field("options", &self.options)
            .field("response_body", &self.response_body)
            .finish_non_exhaustive()
    }
}

/// What a template names, found by reading its markup.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Uses {
    body: bool,
    context: bool,
    request_id: bool,
    /// `context.Request.HasBody`: known only once the request body was read.
    has_body: bool,
    /// `context.Variables.name` / `context.Variables["name"]`: the variables to bind.
    variables: Vec<String>,
}

/// Why a template did not render.
#[derive(Debug)]
pub(crate) struct RenderFailure(pub(crate) String);

impl LiquidTemplate {
    /// Parses `text` (named values already substituted), which starts at `position` in
    /// the document, for a `set-body` in `section`.
    pub(crate) fn compile(
        site: Site<'_>,
        text: &str,
        position: Position,
        section: SectionKind,
        options: LiquidOptions,
        secret: bool,
    ) -> Result<Self, PolicyError> {
        let language = language();
        let template = liquid_core::parser::parse(text, language)
            .map(Template::new)
            .map_err(|error| {
                let (at, message) = describe_parse_error(&error, text, position);
                let message = if secret {
                    "Liquid template: it cannot be parsed (it holds a secret named value, so the details are not shown)".to_owned()
                } else {
                    format!("Liquid template: {message}")
                };
                let kind = if message.contains("not supported") {
                    ErrorKind::NotSupported
                } else {
                    ErrorKind::InvalidValue
                };
                site.err(at, kind, message)
            })?;
        let uses = scan(text);
        Ok(Self {
            template,
            uses,
            options,
            response_body: matches!(section, SectionKind::Outbound | SectionKind::OnError),
            secret,
        })
    }

    /// What the gateway must prepare for this template.
    pub(crate) fn context_reads(&self) -> ContextReads {
        ContextReads {
            request_body: (self.uses.body && !self.response_body) || self.uses.has_body,
            response_body: self.uses.body && self.response_body,
            request_id: self.uses.request_id,
        }
    }

    /// Renders the template for the request `host` describes.
    pub(crate) fn render(&self, host: &RequestHost<'_>) -> Result<Bytes, RenderFailure> {
        let mut globals = Object::new();
        if self.uses.body {
            globals.insert("body".into(), self.body(host)?);
        }
        if self.uses.context {
            globals.insert("context".into(), build_context(host, &self.uses));
        }
        let core = RuntimeBuilder::new().set_globals(&globals).build();
        let runtime = Frame {
            parent: &core,
            variables: Vec::new(),
        };
        runtime.registers().get_mut::<Clock>().0 = host.now();
        let mut out = Vec::new();
        let mut sink = Sink {
            out: &mut out,
            registers: runtime.registers(),
        };
        let result = self.template.render_to(&mut sink, &runtime);
        if runtime.registers().get_mut::<Budget>().bytes > MAX_OUTPUT_BYTES {
            return Err(RenderFailure(format!(
                "the Liquid template writes more than {MAX_OUTPUT_BYTES} bytes"
            )));
        }
        match result {
            Ok(()) => Ok(Bytes::from(out)),
            Err(error) if self.secret => {
                let _ = error;
                Err(RenderFailure(
                    "the Liquid template failed (it holds a secret named value, so the details are not shown)"
                        .to_owned(),
                ))
            }
            Err(error) => Err(RenderFailure(format!(
                "the Liquid template failed: {}",
                one_line(&error.to_string())
            ))),
        }
    }

    /// `body`: the message body, JSON parsed when the message says it is JSON.
    fn body(&self, host: &RequestHost<'_>) -> Result<Value, RenderFailure> {
        let (body, headers, which, id) = if self.response_body {
            match host.response {
                Some(response) => (
                    response.body.as_ref(),
                    &response.headers,
                    "response",
                    "context.Response.Body",
                ),
                None => return Ok(Value::Nil),
            }
        } else {
            (
                host.request.body.as_ref(),
                &host.request.headers,
                "request",
                "context.Request.Body",
            )
        };
        let Some(body) = body else {
            return Err(RenderFailure(format!(
                "the {which} body was not read for the policies (Gatehouse reads it for a Liquid template that names `body`; {id} was not buffered)"
            )));
        };
        body_value(body, headers, self.options)
    }
}

/// The body as the template sees it.
fn body_value(
    body: &BufferedBody,
    headers: &http::HeaderMap,
    options: LiquidOptions,
) -> Result<Value, RenderFailure> {
    if body.is_empty() {
        return Ok(Value::Nil);
    }
    let bytes = body.read(true);
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let is = |exact: &[&str], suffix: &str| {
        exact.contains(&content_type.as_str()) || content_type.ends_with(suffix)
    };
    if is(&["application/json", "text/json"], "+json") {
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|error| {
            RenderFailure(format!(
                "the body is not JSON ({error}) though its Content-Type is `{content_type}`"
            ))
        })?;
        return Ok(from_json(json, options.parse_date));
    }
    if is(&["application/xml", "text/xml"], "+xml") {
        return Err(RenderFailure(format!(
            "Liquid templates over XML bodies (Content-Type `{content_type}`) are not supported by Gatehouse yet; `body` binds JSON bodies (and other bodies as text)"
        )));
    }
    Ok(Value::scalar(String::from_utf8_lossy(&bytes).into_owned()))
}

/// JSON as a Liquid value; with `parse_date`, strings that read as dates become
/// .NET's invariant text for a `DateTime` (`MM/dd/yyyy HH:mm:ss`), as APIM's JSON
/// reader makes them.
fn from_json(json: serde_json::Value, parse_date: bool) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(value) => Value::scalar(value),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(value) => Value::scalar(value),
            None => Value::scalar(number.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(text) => match parse_date.then(|| json_date(&text)).flatten() {
            Some(date) => Value::scalar(date),
            None => Value::scalar(text),
        },
        serde_json::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| from_json(item, parse_date))
                .collect(),
        ),
        serde_json::Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (KString::from(key), from_json(value, parse_date)))
                .collect(),
        ),
    }
}

/// A JSON string Newtonsoft reads as a date: ISO 8601 (`2012-03-21T05:40Z`,
/// `2012-03-21T05:40:00.123+02:00`) or Microsoft's `/Date(1198908717056)/`; as
/// `MM/dd/yyyy HH:mm:ss` in UTC.
fn json_date(text: &str) -> Option<String> {
    let millis: i64 = if let Some(inner) = text
        .strip_prefix("/Date(")
        .and_then(|rest| rest.strip_suffix(")/"))
    {
        // `/Date(ms)/` or `/Date(ms+hhmm)/` (the offset only says where it was made).
        let digits = inner.strip_prefix('-').unwrap_or(inner);
        let end = digits.find(['+', '-']).unwrap_or(digits.len());
        let millis: i64 = digits[..end].parse().ok()?;
        if inner.starts_with('-') {
            -millis
        } else {
            millis
        }
    } else {
        iso_millis(text)?
    };
    let (days, rest) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    let seconds = rest / 1000;
    Some(format!(
        "{month:02}/{day:02}/{year:04} {:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    ))
}

/// Milliseconds since the Unix epoch of `yyyy-MM-ddTHH:mm[:ss[.f…]][Z|±hh:mm]`.
fn iso_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let number = |from: usize, len: usize| -> Option<i64> {
        let digits = bytes.get(from..from + len)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if bytes.len() < 16 || bytes[4] != b'-' || bytes[7] != b'-' || bytes[10] != b'T' {
        return None;
    }
    if bytes[13] != b':' {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute) = (number(11, 2)?, number(14, 2)?);
    let mut at = 16;
    let mut second = 0;
    let mut millis = 0;
    if bytes.get(at) == Some(&b':') {
        second = number(at + 1, 2)?;
        at += 3;
        if bytes.get(at) == Some(&b'.') {
            let digits = bytes[at + 1..]
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            if digits == 0 {
                return None;
            }
            let fraction = &text[at + 1..at + 1 + digits.min(3)];
            millis = format!("{fraction:0<3}").parse().ok()?;
            at += 1 + digits;
        }
    }
    let offset_minutes = match &text[at..] {
        "" | "Z" => 0,
        zone => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = zone.get(1..)?.replace(':', "");
            if zone.len() != 4 || !zone.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = zone[..2].parse().ok()?;
            let minutes: i64 = zone[2..].parse().ok()?;
            sign * (hours * 60 + minutes)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

// === `context` ===

/// The members of each context object the template sees, read through the same
/// [`RequestHost`] policy expressions use.
const CONTEXT_OBJECTS: &[(&str, &[&str])] = &[
    (
        "context",
        &[
            "Request",
            "Response",
            "Api",
            "Operation",
            "Product",
            "Subscription",
            "User",
            "LastError",
        ],
    ),
    (
        "context.Request",
        &["Method", "Url", "OriginalUrl", "IpAddress"],
    ),
    ("context.Request.Url", URL_MEMBERS),
    ("context.Request.OriginalUrl", URL_MEMBERS),
    ("context.Response", &["StatusCode", "StatusReason"]),
    (
        "context.Api",
        &["Id", "Name", "Path", "Version", "ServiceUrl"],
    ),
    ("context.Api.ServiceUrl", URL_MEMBERS),
    (
        "context.Operation",
        &["Id", "Name", "Method", "UrlTemplate"],
    ),
    ("context.Product", &["Id", "Name"]),
    ("context.Subscription", &["Id", "Key", "Name"]),
    (
        "context.LastError",
        &["Source", "Reason", "Message", "Section", "PolicyId"],
    ),
];

const URL_MEMBERS: &[&str] = &["Scheme", "Host", "Port", "Path", "QueryString"];

/// `context`, as far as the template can see it.
fn build_context(host: &RequestHost<'_>, uses: &Uses) -> Value {
    let Value::Object(mut context) = host_object(host, "context") else {
        return Value::Nil;
    };
    if let Some(Value::Object(request)) = context.get_mut("Request") {
        request.insert("Headers".into(), headers_value(&host.request.headers));
        request.insert(
            "HasBody".into(),
            Value::scalar(
                host.request
                    .body
                    .as_ref()
                    .is_some_and(|body| !body.is_empty()),
            ),
        );
        let parameters = host
            .facts
            .route_params
            .iter()
            .map(|(name, value)| (KString::from_ref(name), Value::scalar((*value).to_owned())))
            .collect();
        request.insert("MatchedParameters".into(), Value::Object(parameters));
        for (member, query) in [
            ("Url", host.request.query.as_str()),
            ("OriginalUrl", host.facts.original_url.query),
        ] {
            if let Some(Value::Object(url)) = request.get_mut(member) {
                url.insert("Query".into(), query_value(query));
                let id = if member == "Url" {
                    "context.Request.Url"
                } else {
                    "context.Request.OriginalUrl"
                };
                let whole = host.call(&HostObject::from_static(id), "ToString", None, &[]);
                if let Ok(whole) = whole {
                    url.insert("ToString".into(), from_expr_value(whole));
                }
            }
        }
    }
    if let (Some(Value::Object(response)), Some(state)) =
        (context.get_mut("Response"), host.response)
    {
        response.insert("Headers".into(), headers_value(&state.headers));
    }
    let mut variables = Object::new();
    for name in &uses.variables {
        if let Some(value) = host.request.variables.get(name) {
            variables.insert(KString::from_ref(name), from_expr_value(value.clone()));
        }
    }
    context.insert("Variables".into(), Value::Object(variables));
    if uses.request_id
        && let Some(id) = host.facts.request_id
    {
        context.insert("RequestId".into(), Value::scalar(id.to_owned()));
    }
    Value::Object(context)
}

/// A context object whose members are listed in [`CONTEXT_OBJECTS`]; absent ones
/// (no subscription, no response yet) are nil.
fn host_object(host: &RequestHost<'_>, id: &'static str) -> Value {
    let Some((_, members)) = CONTEXT_OBJECTS.iter().find(|(name, _)| *name == id) else {
        return Value::Nil;
    };
    let object = HostObject::from_static(id);
    let mut out = Object::new();
    for member in *members {
        let value = match host.member(&object, member) {
            Ok(gatehouse_expr::Value::Object(child)) => {
                let child_id = CONTEXT_OBJECTS
                    .iter()
                    .map(|(name, _)| *name)
                    .find(|name| *name == child.id());
                child_id.map_or(Value::Nil, |child_id| host_object(host, child_id))
            }
            Ok(value) => from_expr_value(value),
            Err(_) => Value::Nil,
        };
        out.insert(KString::from_static(member), value);
    }
    Value::Object(out)
}

/// Headers by lowercase name (lookups by any case find them, see [`Frame`]), their
/// values joined with `,`.
fn headers_value(headers: &http::HeaderMap) -> Value {
    let mut out = Object::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        out.insert(KString::from_ref(name.as_str()), Value::scalar(joined));
    }
    Value::Object(out)
}

/// Query parameters, decoded; a repeated one's values joined with `,`.
fn query_value(query: &str) -> Value {
    let mut out = Object::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let entry = out
            .entry(KString::from_ref(&name))
            .or_insert_with(|| Value::scalar(""));
        let joined = match entry.as_scalar() {
            Some(existing) if !existing.to_kstr().is_empty() => {
                format!("{},{value}", existing.to_kstr())
            }
            _ => value.into_owned(),
        };
        *entry = Value::scalar(joined);
    }
    Value::Object(out)
}

/// An expression value (a context member, a variable) as a Liquid value.
fn from_expr_value(value: gatehouse_expr::Value) -> Value {
    match value {
        gatehouse_expr::Value::Null => Value::Nil,
        gatehouse_expr::Value::Bool(value) => Value::scalar(value),
        gatehouse_expr::Value::Int(value) => Value::scalar(value),
        gatehouse_expr::Value::String(text) => Value::scalar(text.as_ref().to_owned()),
        other => from_json(other.to_json(), false),
    }
}

// === the template's names, found at load ===

/// What the template's markup (`{{ ... }}`, `{% ... %}`) names: the root variables
/// `body` and `context`, `context.RequestId`, and the variables it reads. A name in a
/// string literal counts too (reading a body for nothing is safe; not reading one a
/// template needs is not).
fn scan(text: &str) -> Uses {
    let mut uses = Uses::default();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let close = match after.as_bytes().first() {
            Some(b'{') => "}}",
            Some(b'%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let markup_end = after[1..].find(close).map_or(after.len(), |end| end + 1);
        scan_markup(&after[1..markup_end], &mut uses);
        rest = &after[markup_end..];
    }
    uses.variables.sort();
    uses.variables.dedup();
    uses
}

fn scan_markup(markup: &str, uses: &mut Uses) {
    let bytes = markup.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if !(byte.is_ascii_alphabetic() || byte == b'_') {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len()
            && (bytes[at].is_ascii_alphanumeric() || matches!(bytes[at], b'_' | b'-'))
        {
            at += 1;
        }
        let word = &markup[start..at];
        let member = markup[..start].trim_end().ends_with('.');
        match word {
            "body" if !member => uses.body = true,
            "context" if !member => uses.context = true,
            "RequestId" => uses.request_id = true,
            "HasBody" => uses.has_body = true,
            "Variables" => {
                if let Some(name) = variable_name(markup[at..].trim_start()) {
                    uses.variables.push(name.to_owned());
                }
            }
            _ => {}
        }
    }
}

/// The name after `Variables`: `.name`, `["name"]` or `['name']`.
fn variable_name(after: &str) -> Option<&str> {
    if let Some(rest) = after.strip_prefix('.') {
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        return (end > 0).then(|| &rest[..end]);
    }
    let rest = after.strip_prefix('[')?.trim_start();
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\''))?;
    let rest = &rest[1..];
    let end = rest.find(quote)?;
    Some(&rest[..end])
}

// === errors ===

/// The document position and message of a parse error in `template` (which starts
/// at `start`): liquid-rust reports a syntax error's `line:column` as `--> L:C`, and
/// names an unknown or refused filter without a position (found here).
fn describe_parse_error(error: &Error, template: &str, start: Position) -> (Position, String) {
    let text = error.to_string();
    let at_offset = |offset: usize| {
        let before = &template[..offset.min(template.len())];
        let line = u32::try_from(before.matches('\n').count()).unwrap_or(u32::MAX);
        let column = before
            .rsplit('\n')
            .next()
            .unwrap_or_default()
            .chars()
            .count();
        at_line_column(
            start,
            line.saturating_add(1),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    };
    if let Some(location) = text.split("--> ").nth(1) {
        let location: String = location
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ':')
            .collect();
        let at = location
            .split_once(':')
            .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?)))
            .map_or(start, |(line, column)| at_line_column(start, line, column));
        let message = text
            .lines()
            .filter_map(|line| line.trim().strip_prefix("= "))
            .next_back()
            .unwrap_or("syntax error")
            .to_owned();
        return (at, message);
    }
    let message = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("liquid: ")
        .trim()
        .to_owned();
    let context = |key: &str| {
        text.lines()
            .filter_map(|line| line.trim().split_once('='))
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.trim().to_owned())
    };
    let Some(filter) = context("requested filter").or_else(|| context("filter")) else {
        return (start, message);
    };
    // Where `| Name` first appears.
    let mut at = start;
    let mut from = 0;
    while let Some(bar) = template[from..].find('|') {
        let after = from + bar + 1;
        let name_at = after + (template[after..].len() - template[after..].trim_start().len());
        if template[name_at..].starts_with(filter.as_str()) {
            at = at_offset(name_at);
            break;
        }
        from = after;
    }
    let message = if message == "Unknown filter" {
        let mut names: Vec<&str> = language()
            .filters
            .plugin_names()
            .filter(|name| *name != "Currency")
            .collect();
        names.sort_unstable();
        format!(
            "unknown filter `{filter}`; APIM's filters have PascalCase names: {}",
            names.join(", ")
        )
    } else {
        message
    };
    (at, message)
}

/// A template's `line:column` (from 1) as a document position.
fn at_line_column(start: Position, line: u32, column: u32) -> Position {
    if line <= 1 {
        Position {
            line: start.line,
            column: start.column + column.saturating_sub(1),
        }
    } else {
        Position {
            line: start.line + line - 1,
            column,
        }
    }
}

/// liquid-rust's multi-line error text on one line, each part cut short (its context
/// quotes values, which may be whole bodies).
fn one_line(text: &str) -> String {
    const LONGEST: usize = 120;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && *line != "with:")
        .map(|line| {
            let line = line.trim_start_matches("liquid: ");
            match line.char_indices().nth(LONGEST) {
                Some((cut, _)) => format!("{}…", &line[..cut]),
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

// === the language ===

/// The tags, blocks and filters templates may use: built once.
fn language() -> &'static Language {
    static LANGUAGE: OnceLock<Language> = OnceLock::new();
    LANGUAGE.get_or_init(|| {
        use liquid_lib::stdlib;
        let mut language = Language::default();
        let mut tag = |tag: Box<dyn ParseTag>| {
            let name = tag.reflection().tag().to_owned();
            language.tags.register(name, tag);
        };
        tag(Box::new(AssignTag));
        tag(Box::new(stdlib::BreakTag));
        tag(Box::new(stdlib::ContinueTag));
        tag(Box::new(stdlib::CycleTag));
        tag(Box::new(stdlib::IncrementTag));
        tag(Box::new(stdlib::DecrementTag));
        tag(Box::new(Refused("include", "other templates")));
        tag(Box::new(Refused("render", "other templates")));
        let mut block = |block: Box<dyn ParseBlock>| {
            let name = block.reflection().start_tag().to_owned();
            language.blocks.register(name, block);
        };
        block(Box::new(stdlib::RawBlock));
        block(Box::new(stdlib::IfBlock));
        block(Box::new(stdlib::UnlessBlock));
        block(Box::new(stdlib::CommentBlock));
        block(Box::new(stdlib::CaseBlock));
        block(Box::new(ForBlock));
        block(Box::new(CaptureBlock));
        block(Box::new(RefusedBlock("ifchanged", "endifchanged")));
        block(Box::new(RefusedBlock("tablerow", "endtablerow")));
        // APIM's filters (its reference lists them), by their PascalCase names.
        let filters: [(&'static str, Box<dyn ParseFilter>, Guard); 42] = [
            ("Abs", Box::new(stdlib::Abs), Guard::None),
            ("Append", Box::new(stdlib::Append), Guard::None),
            ("AtLeast", Box::new(stdlib::AtLeast), Guard::None),
            ("AtMost", Box::new(stdlib::AtMost), Guard::None),
            ("Capitalize", Box::new(stdlib::Capitalize), Guard::None),
            ("Compact", Box::new(stdlib::Compact), Guard::None),
            ("Default", Box::new(stdlib::Default), Guard::None),
            ("DividedBy", Box::new(stdlib::DividedBy), Guard::None),
            ("Downcase", Box::new(stdlib::Downcase), Guard::None),
            ("Escape", Box::new(stdlib::Escape), Guard::None),
            ("First", Box::new(stdlib::First), Guard::None),
            ("H", Box::new(stdlib::Escape), Guard::None),
            ("Join", Box::new(stdlib::Join), Guard::Join),
            ("Last", Box::new(stdlib::Last), Guard::None),
            ("Lstrip", Box::new(stdlib::Lstrip), Guard::None),
            ("Map", Box::new(stdlib::Map), Guard::None),
            ("Minus", Box::new(stdlib::Minus), Guard::None),
            ("Modulo", Box::new(stdlib::Modulo), Guard::None),
            ("NewlineToBr", Box::new(stdlib::NewlineToBr), Guard::None),
            ("Plus", Box::new(stdlib::Plus), Guard::None),
            ("Prepend", Box::new(stdlib::Prepend), Guard::None),
            ("Remove", Box::new(stdlib::Remove), Guard::None),
            ("RemoveFirst", Box::new(stdlib::RemoveFirst), Guard::None),
            ("Replace", Box::new(stdlib::Replace), Guard::Replace),
            ("ReplaceFirst", Box::new(stdlib::ReplaceFirst), Guard::None),
            ("Round", Box::new(stdlib::Round), Guard::None),
            ("Rstrip", Box::new(stdlib::Rstrip), Guard::None),
            ("Size", Box::new(stdlib::Size), Guard::None),
            ("Slice", Box::new(stdlib::Slice), Guard::None),
            ("Sort", Box::new(stdlib::Sort), Guard::None),
            ("Split", Box::new(stdlib::Split), Guard::None),
            ("Strip", Box::new(stdlib::Strip), Guard::None),
            ("StripHtml", Box::new(stdlib::StripHtml), Guard::None),
            (
                "StripNewlines",
                Box::new(stdlib::StripNewlines),
                Guard::None,
            ),
            ("Times", Box::new(stdlib::Times), Guard::None),
            ("Truncate", Box::new(stdlib::Truncate), Guard::None),
            (
                "TruncateWords",
                Box::new(stdlib::TruncateWords),
                Guard::None,
            ),
            ("Uniq", Box::new(stdlib::Uniq), Guard::None),
            ("Upcase", Box::new(stdlib::Upcase), Guard::None),
            ("UrlDecode", Box::new(stdlib::UrlDecode), Guard::None),
            ("UrlEncode", Box::new(UrlEncodeFilter), Guard::None),
            ("Date", Box::new(DateFilter), Guard::None),
        ];
        for (name, inner, guard) in filters {
            language
                .filters
                .register(name.to_owned(), Box::new(ApimFilter { name, inner, guard }));
        }
        language
            .filters
            .register("Currency".to_owned(), Box::new(RefusedFilter("Currency")));
        language
    })
}

// === the budget ===

/// A render's spending, in the runtime's registers.
#[derive(Default)]
struct Budget {
    steps: u64,
    bytes: usize,
}

/// The request's time, for `Date`'s `now` and `today`.
#[derive(Default)]
struct Clock(Option<Duration>);

fn charge(registers: &Registers, steps: u64) -> liquid_core::Result<()> {
    let mut budget = registers.get_mut::<Budget>();
    budget.steps = budget.steps.saturating_add(steps);
    if budget.steps > MAX_STEPS {
        return Err(Error::with_msg(format!(
            "the template does too much work (over {MAX_STEPS} steps of loops and filters)"
        )));
    }
    Ok(())
}

/// Where rendered text ends up (the body, a `capture`): counted against
/// [`MAX_OUTPUT_BYTES`].
struct Sink<'w> {
    out: &'w mut Vec<u8>,
    registers: &'w Registers,
}

impl Write for Sink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut budget = self.registers.get_mut::<Budget>();
        budget.bytes = budget.bytes.saturating_add(buf.len());
        if budget.bytes > MAX_OUTPUT_BYTES {
            return Err(io::Error::other(format!(
                "the template writes more than {MAX_OUTPUT_BYTES} bytes"
            )));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// === the runtime: lenient lookups ===

/// A scope: a loop's variables over its parent, or (without variables) the render's
/// root. A name or index that is not there is nil, as in DotLiquid, and a header is
/// found by any case of its name. A loop's variables borrow what the loop walks.
struct Frame<'p> {
    parent: &'p dyn Runtime,
    variables: Vec<(KString, ValueCow<'p>)>,
}

impl Runtime for Frame<'_> {
    fn partials(&self) -> &dyn PartialStore {
        self.parent.partials()
    }

    fn name(&self) -> Option<KStringRef<'_>> {
        self.parent.name()
    }

    fn roots(&self) -> std::collections::BTreeSet<KStringCow<'_>> {
        let mut roots = self.parent.roots();
        roots.extend(
            self.variables
                .iter()
                .map(|(name, _)| KStringCow::from_ref(name.as_str())),
        );
        roots
    }

    fn try_get(&self, path: &[ScalarCow<'_>]) -> Option<ValueCow<'_>> {
        let first = path.first()?.to_kstr();
        if let Some((_, value)) = self
            .variables
            .iter()
            .find(|(name, _)| name.as_str() == first.as_str())
        {
            return liquid_core::model::try_find(value.as_view(), &path[1..]);
        }
        self.parent.try_get(path).or_else(|| {
            // `context.Request.Headers["Content-Type"]`: headers are kept lowercase.
            let header = path.len() == 4
                && first.as_str() == "context"
                && path[2].to_kstr().as_str() == "Headers";
            if !header {
                return None;
            }
            let mut lower: Vec<ScalarCow<'_>> = path[..3].to_vec();
            lower.push(ScalarCow::new(path[3].to_kstr().to_ascii_lowercase()));
            self.parent
                .try_get(&lower)
                .map(|value| ValueCow::Owned(value.into_owned()))
        })
    }

    fn get(&self, path: &[ScalarCow<'_>]) -> liquid_core::Result<ValueCow<'_>> {
        Ok(self.try_get(path).unwrap_or(ValueCow::Owned(Value::Nil)))
    }

    fn set_global(&self, name: KString, value: Value) -> Option<Value> {
        self.parent.set_global(name, value)
    }

    fn set_index(&self, name: KString, value: Value) -> Option<Value> {
        self.parent.set_index(name, value)
    }

    fn get_index<'a>(&'a self, name: &str) -> Option<ValueCow<'a>> {
        self.parent.get_index(name)
    }

    fn registers(&self) -> &Registers {
        self.parent.registers()
    }
}

// === `for` ===

#[derive(Clone, Copy, Debug)]
struct ForBlock;

impl BlockReflection for ForBlock {
    fn start_tag(&self) -> &str {
        "for"
    }

    fn end_tag(&self) -> &str {
        "endfor"
    }

    fn description(&self) -> &str {
        "iterates over an array, an object or a range, within the render's budget"
    }
}

/// What a `for` iterates over.
#[derive(Debug)]
enum Collection {
    Value(liquid_core::Expression),
    Range(liquid_core::Expression, liquid_core::Expression),
}

impl ParseBlock for ForBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let variable = arguments
            .expect_next("a loop variable is expected")?
            .expect_identifier()
            .into_result()?;
        arguments
            .expect_next("`in` is expected")?
            .expect_str("in")
            .into_result_custom_msg("`in` is expected")?;
        let collection = arguments.expect_next("an array or a range is expected")?;
        let collection = match collection.expect_value() {
            TryMatchToken::Matches(value) => Collection::Value(value),
            TryMatchToken::Fails(token) => match token.expect_range() {
                TryMatchToken::Matches((start, end)) => Collection::Range(start, end),
                TryMatchToken::Fails(token) => return Err(token.raise_error()),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = arguments.next() {
            match token.as_str() {
                "limit" | "offset" => {
                    let name = token.as_str() == "limit";
                    arguments
                        .expect_next("`:` is expected")?
                        .expect_str(":")
                        .into_result_custom_msg("`:` is expected")?;
                    let value = arguments
                        .expect_next("a value is expected")?
                        .expect_value()
                        .into_result()?;
                    if name {
                        limit = Some(value);
                    } else {
                        offset = Some(value);
                    }
                }
                "reversed" => reversed = true,
                _ => {
                    return Err(
                        token.raise_custom_error("`limit`, `offset` or `reversed` is expected")
                    );
                }
            }
        }
        arguments.expect_nothing()?;
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = tokens.next()? {
            match element {
                BlockElement::Tag(mut tag) if tag.name() == "else" => {
                    tag.tokens().expect_nothing()?;
                    otherwise = Some(Template::new(tokens.parse_all(options)?));
                    break;
                }
                BlockElement::Tag(tag) => body.push(tag.parse(&mut tokens, options)?),
                element => body.push(element.parse(&mut tokens, options)?),
            }
        }
        tokens.assert_empty();
        Ok(Box::new(For {
            variable: KString::from_ref(variable),
            collection,
            limit,
            offset,
            reversed,
            body: Template::new(body),
            otherwise,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct For {
    variable: KString,
    collection: Collection,
    limit: Option<liquid_core::Expression>,
    offset: Option<liquid_core::Expression>,
    reversed: bool,
    body: Template,
    otherwise: Option<Template>,
}

/// A whole number from an expression (`limit`, `offset`, a range's ends).
fn whole_number(
    expression: &liquid_core::Expression,
    runtime: &dyn Runtime,
    what: &str,
) -> liquid_core::Result<i64> {
    let value = expression.evaluate(runtime)?;
    value
        .as_scalar()
        .and_then(|scalar| scalar.to_integer())
        .ok_or_else(|| Error::with_msg(format!("`for`: {what} must be a whole number")))
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        let offset = match &self.offset {
            Some(offset) => whole_number(offset, runtime, "offset")?.max(0),
            None => 0,
        };
        let limit = match &self.limit {
            Some(limit) => Some(whole_number(limit, runtime, "limit")?.max(0)),
            None => None,
        };
        // Items are made one at a time (a range is never collected) and borrow what
        // they come from.
        let source;
        let length: i64;
        let items: Box<dyn Iterator<Item = ValueCow<'_>> + '_> = match &self.collection {
            Collection::Range(start, end) => {
                let start = whole_number(start, runtime, "the range's start")?;
                let end = whole_number(end, runtime, "the range's end")?;
                let skipped = start.saturating_add(offset);
                let mut last = end;
                if let Some(limit) = limit {
                    last = last.min(skipped.saturating_add(limit).saturating_sub(1));
                }
                length = last.saturating_sub(skipped).saturating_add(1).max(0);
                let scalar = |n: i64| ValueCow::Owned(Value::scalar(n));
                if self.reversed {
                    Box::new((skipped..=last).rev().map(scalar))
                } else {
                    Box::new((skipped..=last).map(scalar))
                }
            }
            Collection::Value(expression) => {
                source = expression.evaluate(runtime)?;
                let view = source.as_view();
                // Reading (or copying) the collection is paid for each time the loop
                // starts.
                charge(runtime.registers(), steps_for(deep_size(view)))?;
                let count = view
                    .as_array()
                    .map(ArrayView::size)
                    .or_else(|| view.as_object().map(ObjectView::size))
                    .unwrap_or(0);
                let count = count.saturating_sub(offset).max(0);
                length = limit.map_or(count, |limit| count.min(limit));
                let all: Box<dyn Iterator<Item = ValueCow<'_>> + '_> =
                    if let Some(array) = view.as_array() {
                        Box::new(array.values().map(ValueCow::Borrowed))
                    } else if let Some(object) = view.as_object() {
                        // Liquid objects are hash maps: in key order, so that a render is
                        // the same every time.
                        let mut pairs: Vec<_> = object.iter().collect();
                        pairs.sort_by(|(a, _), (b, _)| a.as_str().cmp(b.as_str()));
                        Box::new(pairs.into_iter().map(|(key, value)| {
                            ValueCow::Owned(Value::Array(vec![
                                Value::scalar(key.into_owned()),
                                value.to_value(),
                            ]))
                        }))
                    } else if view.is_nil() || view.is_state() {
                        Box::new(std::iter::empty())
                    } else {
                        return Err(Error::with_msg(format!(
                            "`for`: cannot iterate over a {}",
                            view.type_name()
                        )));
                    };
                let all = all.skip(usize::try_from(offset).unwrap_or(usize::MAX));
                let all: Box<dyn Iterator<Item = ValueCow<'_>> + '_> = match limit {
                    Some(limit) => Box::new(all.take(usize::try_from(limit).unwrap_or(usize::MAX))),
                    None => Box::new(all),
                };
                if self.reversed {
                    let mut collected: Vec<_> = all.collect();
                    collected.reverse();
                    Box::new(collected.into_iter())
                } else {
                    all
                }
            }
        };
        let parent = runtime.try_get(&[ScalarCow::new("forloop")]);
        let mut items = items.peekable();
        if items.peek().is_none() {
            if let Some(otherwise) = &self.otherwise {
                otherwise.render_to(writer, runtime)?;
            }
            return Ok(());
        }
        let mut index: i64 = 0;
        while let Some(item) = items.next() {
            charge(runtime.registers(), 1)?;
            let forloop = Forloop::new(
                index,
                length,
                items.peek().is_none(),
                parent.as_ref().map(ValueCow::as_view),
            );
            let frame = Frame {
                parent: runtime,
                variables: vec![
                    (
                        KString::from_static("forloop"),
                        ValueCow::Borrowed(&forloop),
                    ),
                    (self.variable.clone(), item),
                ],
            };
            self.body.render_to(writer, &frame)?;
            let interrupt = runtime.registers().get_mut::<InterruptRegister>().reset();
            if let Some(Interrupt::Break) = interrupt {
                break;
            }
            index += 1;
        }
        Ok(())
    }
}

/// `forloop` in a loop's body: made per iteration without allocating.
#[derive(Debug)]
struct Forloop<'p> {
    /// `index0`, `index`, `rindex`, `rindex0`, `length`, `first`, `last`.
    values: [Value; 7],
    parentloop: Option<&'p dyn ValueView>,
}

const FORLOOP_KEYS: [&str; 7] = [
    "index0", "index", "rindex", "rindex0", "length", "first", "last",
];

impl<'p> Forloop<'p> {
    fn new(index: i64, length: i64, last: bool, parentloop: Option<&'p dyn ValueView>) -> Self {
        Self {
            values: [
                Value::scalar(index),
                Value::scalar(index + 1),
                Value::scalar(length - index),
                Value::scalar(length - index - 1),
                Value::scalar(length),
                Value::scalar(index == 0),
                Value::scalar(last),
            ],
            parentloop,
        }
    }

    fn entries(&self) -> impl Iterator<Item = (&'static str, &dyn ValueView)> + '_ {
        FORLOOP_KEYS
            .iter()
            .zip(&self.values)
            .map(|(key, value)| (*key, value.as_view()))
            .chain(self.parentloop.map(|parent| ("parentloop", parent)))
    }

    fn to_object(&self) -> Object {
        self.entries()
            .map(|(key, value)| (KString::from_static(key), value.to_value()))
            .collect()
    }
}

impl ValueView for Forloop<'_> {
    fn as_debug(&self) -> &dyn fmt::Debug {
        self
    }

    fn render(&self) -> liquid_core::model::DisplayCow<'_> {
        liquid_core::model::DisplayCow::Owned(Box::new(liquid_core::model::ObjectRender::new(self)))
    }

    fn source(&self) -> liquid_core::model::DisplayCow<'_> {
        liquid_core::model::DisplayCow::Owned(Box::new(liquid_core::model::ObjectSource::new(self)))
    }

    fn type_name(&self) -> &'static str {
        "object"
    }

    fn query_state(&self, state: liquid_core::model::State) -> bool {
        matches!(state, liquid_core::model::State::Truthy)
    }

    fn to_kstr(&self) -> KStringCow<'_> {
        KStringCow::from_string(liquid_core::model::ObjectRender::new(self).to_string())
    }

    fn to_value(&self) -> Value {
        Value::Object(self.to_object())
    }

    fn as_object(&self) -> Option<&dyn ObjectView> {
        Some(self)
    }
}

impl ObjectView for Forloop<'_> {
    fn as_value(&self) -> &dyn ValueView {
        self
    }

    fn size(&self) -> i64 {
        7 + i64::from(self.parentloop.is_some())
    }

    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(self.entries().map(|(key, _)| KStringCow::from_static(key)))
    }

    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.entries().map(|(_, value)| value))
    }

    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            self.entries()
                .map(|(key, value)| (KStringCow::from_static(key), value)),
        )
    }

    fn contains_key(&self, index: &str) -> bool {
        self.get(index).is_some()
    }

    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        self.entries()
            .find(|(key, _)| *key == index)
            .map(|(_, value)| value)
    }
}

// === `assign` ===

/// `assign name = value | Filters`: what it copies is paid for.
#[derive(Clone, Copy, Debug)]
struct AssignTag;

impl TagReflection for AssignTag {
    fn tag(&self) -> &str {
        "assign"
    }

    fn description(&self) -> &str {
        "sets a variable, paying for what it copies"
    }
}

impl ParseTag for AssignTag {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let name = arguments
            .expect_next("a variable name is expected")?
            .expect_identifier()
            .into_result()?;
        arguments
            .expect_next("`=` is expected")?
            .expect_str("=")
            .into_result_custom_msg("`=` is expected")?;
        let value = arguments
            .expect_next("a value is expected")?
            .expect_filter_chain(options)
            .into_result()?;
        arguments.expect_nothing()?;
        Ok(Box::new(Assign {
            name: KString::from_ref(name),
            value,
        }))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

#[derive(Debug)]
struct Assign {
    name: KString,
    value: liquid_core::parser::FilterChain,
}

impl Renderable for Assign {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        let value = self.value.evaluate(runtime)?;
        charge(runtime.registers(), steps_for(deep_size(value.as_view())))?;
        runtime.set_global(self.name.clone(), value.into_owned());
        Ok(())
    }
}

// === `capture` ===

#[derive(Clone, Copy, Debug)]
struct CaptureBlock;

impl BlockReflection for CaptureBlock {
    fn start_tag(&self) -> &str {
        "capture"
    }

    fn end_tag(&self) -> &str {
        "endcapture"
    }

    fn description(&self) -> &str {
        "renders its content into a variable, counted against the render's output bound"
    }
}

impl ParseBlock for CaptureBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        let name = arguments
            .expect_next("a variable name is expected")?
            .expect_identifier()
            .into_result()?;
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        tokens.assert_empty();
        Ok(Box::new(Capture {
            name: KString::from_ref(name),
            body,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct Capture {
    name: KString,
    body: Template,
}

impl Renderable for Capture {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> liquid_core::Result<()> {
        let mut captured = Vec::new();
        let mut sink = Sink {
            out: &mut captured,
            registers: runtime.registers(),
        };
        self.body.render_to(&mut sink, runtime)?;
        let text = String::from_utf8_lossy(&captured).into_owned();
        runtime.set_global(self.name.clone(), Value::scalar(text));
        Ok(())
    }
}

// === refused tags ===

/// A tag Gatehouse refuses at load.
#[derive(Clone, Copy, Debug)]
struct Refused(&'static str, &'static str);

impl TagReflection for Refused {
    fn tag(&self) -> &str {
        self.0
    }

    fn description(&self) -> &str {
        "not supported"
    }
}

impl ParseTag for Refused {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        _options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        Err(arguments.raise_error(&format!(
            "`{{% {} %}}` is not supported by Gatehouse (templates cannot read {})",
            self.0, self.1
        )))
    }

    fn reflection(&self) -> &dyn TagReflection {
        self
    }
}

/// A block Gatehouse refuses at load: it renders into a buffer the render's bounds do
/// not see.
#[derive(Clone, Copy, Debug)]
struct RefusedBlock(&'static str, &'static str);

impl BlockReflection for RefusedBlock {
    fn start_tag(&self) -> &str {
        self.0
    }

    fn end_tag(&self) -> &str {
        self.1
    }

    fn description(&self) -> &str {
        "not supported"
    }
}

impl ParseBlock for RefusedBlock {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        _tokens: TagBlock<'_, '_>,
        _options: &Language,
    ) -> liquid_core::Result<Box<dyn Renderable>> {
        Err(arguments.raise_error(&format!(
            "`{{% {} %}}` is not supported by Gatehouse",
            self.0
        )))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

// === filters ===

/// Which filters' results are checked before they are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Guard {
    None,
    /// `Replace: search, replacement`: each match may grow.
    Replace,
    /// `Join: separator`: the separator is repeated per item.
    Join,
}

/// A liquid-lib filter under APIM's name, run within the render's budget.
#[derive(Clone)]
struct ApimFilter {
    name: &'static str,
    inner: Box<dyn ParseFilter>,
    guard: Guard,
}

impl FilterReflection for ApimFilter {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.inner.reflection().description()
    }

    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        self.inner.reflection().positional_parameters()
    }

    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        self.inner.reflection().keyword_parameters()
    }
}

impl ParseFilter for ApimFilter {
    fn parse(&self, arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        let positional: Vec<liquid_core::Expression> = arguments.positional.collect();
        let keyword: Vec<(&str, liquid_core::Expression)> = arguments.keyword.collect();
        let inner = self.inner.parse(FilterArguments {
            positional: Box::new(positional.clone().into_iter()),
            keyword: Box::new(keyword.into_iter()),
        })?;
        Ok(Box::new(Bounded {
            name: self.name,
            inner,
            arguments: positional,
            guard: self.guard,
        }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct Bounded {
    name: &'static str,
    inner: Box<dyn Filter>,
    arguments: Vec<liquid_core::Expression>,
    guard: Guard,
}

impl fmt::Display for Bounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// About how many bytes a value holds: its text, or the items of an array or object
/// (one level; scalar items by their text).
fn size(value: &dyn ValueView) -> usize {
    if let Some(array) = value.as_array() {
        return array
            .values()
            .map(|item| item.as_scalar().map_or(1, |s| s.to_kstr().len()))
            .sum::<usize>()
            .saturating_add(usize::try_from(array.size()).unwrap_or(usize::MAX));
    }
    if let Some(object) = value.as_object() {
        return usize::try_from(object.size()).unwrap_or(usize::MAX);
    }
    value.as_scalar().map_or(0, |scalar| scalar.to_kstr().len())
}

/// About how many bytes a value holds, all the way down: what copying it costs.
fn deep_size(value: &dyn ValueView) -> usize {
    if let Some(array) = value.as_array() {
        return array.values().map(deep_size).fold(1, usize::saturating_add);
    }
    if let Some(object) = value.as_object() {
        return object
            .iter()
            .map(|(key, value)| key.len().saturating_add(deep_size(value)))
            .fold(1, usize::saturating_add);
    }
    value
        .as_scalar()
        .map_or(1, |scalar| scalar.to_kstr().len().max(1))
}

fn steps_for(bytes: usize) -> u64 {
    1 + u64::try_from(bytes / 64).unwrap_or(u64::MAX)
}

fn too_large(name: &str) -> Error {
    Error::with_msg(format!(
        "`{name}` would make a value over {MAX_OUTPUT_BYTES} bytes"
    ))
}

impl Filter for Bounded {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> liquid_core::Result<Value> {
        let input_size = size(input);
        charge(runtime.registers(), steps_for(deep_size(input)))?;
        let argument = |index: usize| -> liquid_core::Result<usize> {
            match self.arguments.get(index) {
                Some(expression) => Ok(size(expression.evaluate(runtime)?.as_view())),
                None => Ok(0),
            }
        };
        let worst = match self.guard {
            Guard::None => 0,
            Guard::Replace => {
                let search = argument(0)?.max(1);
                let replacement = argument(1)?;
                input_size.saturating_add((input_size / search + 1).saturating_mul(replacement))
            }
            Guard::Join => {
                let items = input.as_array().map_or(0, |array| {
                    usize::try_from(array.size()).unwrap_or(usize::MAX)
                });
                input_size.saturating_add(items.saturating_mul(argument(0)?.max(1)))
            }
        };
        if worst > MAX_OUTPUT_BYTES {
            return Err(too_large(self.name));
        }
        let output = self.inner.evaluate(input, runtime)?;
        let output_size = deep_size(output.as_view());
        if output_size > MAX_OUTPUT_BYTES {
            return Err(too_large(self.name));
        }
        charge(runtime.registers(), steps_for(output_size))?;
        Ok(output)
    }
}

/// A filter APIM has that Gatehouse refuses at load.
#[derive(Clone, Copy, Debug)]
struct RefusedFilter(&'static str);

impl FilterReflection for RefusedFilter {
    fn name(&self) -> &str {
        self.0
    }

    fn description(&self) -> &str {
        "not supported"
    }

    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }

    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
}

impl ParseFilter for RefusedFilter {
    fn parse(&self, _arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        Err(Error::with_msg(format!(
            "the `{}` filter is not supported by Gatehouse (it depends on .NET's culture settings)",
            self.0
        )))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

// === `UrlEncode` ===

/// `UrlEncode` as .NET's `WebUtility.UrlEncode` (DotLiquid's): letters, digits and
/// `-_.!*()` stay, a space is `+`, every other byte is `%XX`.
#[derive(Clone, Copy, Debug)]
struct UrlEncodeFilter;

impl FilterReflection for UrlEncodeFilter {
    fn name(&self) -> &str {
        "UrlEncode"
    }

    fn description(&self) -> &str {
        "URL-encodes text as .NET's WebUtility.UrlEncode does"
    }

    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }

    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
}

impl ParseFilter for UrlEncodeFilter {
    fn parse(&self, arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        if arguments.positional.count() > 0 || arguments.keyword.count() > 0 {
            return Err(Error::with_msg("`UrlEncode` takes no arguments"));
        }
        Ok(Box::new(UrlEncode))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct UrlEncode;

impl fmt::Display for UrlEncode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlEncode")
    }
}

impl Filter for UrlEncode {
    fn evaluate(
        &self,
        input: &dyn ValueView,
        _runtime: &dyn Runtime,
    ) -> liquid_core::Result<Value> {
        if input.is_nil() {
            return Ok(Value::Nil);
        }
        let text = input.to_kstr();
        let mut out = String::with_capacity(text.len());
        for byte in text.as_bytes() {
            match byte {
                b'A'..=b'Z'
                | b'a'..=b'z'
                | b'0'..=b'9'
                | b'-'
                | b'_'
                | b'.'
                | b'!'
                | b'*'
                | b'('
                | b')' => {
                    out.push(char::from(*byte));
                }
                b' ' => out.push('+'),
                other => {
                    const HEX: &[u8; 16] = b"0123456789ABCDEF";
                    out.push('%');
                    out.push(char::from(HEX[usize::from(other >> 4)]));
                    out.push(char::from(HEX[usize::from(other & 15)]));
                }
            }
        }
        Ok(Value::scalar(out))
    }
}

// === `Date` ===

/// `Date: "format"` with .NET's format strings, as APIM's C# mode does: the input is a
/// date text (ISO 8601, `MM/dd/yyyy HH:mm:ss`, RFC 1123), `now` or `today`; anything
/// else comes out unchanged, as in DotLiquid.
#[derive(Clone, Copy, Debug)]
struct DateFilter;

impl FilterReflection for DateFilter {
    fn name(&self) -> &str {
        "Date"
    }

    fn description(&self) -> &str {
        "formats a date with a .NET format string"
    }

    fn positional_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }

    fn keyword_parameters(&self) -> &'static [liquid_core::parser::ParameterReflection] {
        &[]
    }
}

impl ParseFilter for DateFilter {
    fn parse(&self, arguments: FilterArguments<'_>) -> liquid_core::Result<Box<dyn Filter>> {
        let mut positional = arguments.positional;
        let format = positional
            .next()
            .ok_or_else(|| Error::with_msg("`Date` needs a format: Date: \"yyyy-MM-dd\""))?;
        if positional.next().is_some() || arguments.keyword.count() > 0 {
            return Err(Error::with_msg("`Date` takes one argument, the format"));
        }
        Ok(Box::new(DateFormat { format }))
    }

    fn reflection(&self) -> &dyn FilterReflection {
        self
    }
}

#[derive(Debug)]
struct DateFormat {
    format: liquid_core::Expression,
}

impl fmt::Display for DateFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Date: {}", self.format)
    }
}

/// The expression `Date` formats with (gatehouse-expr has .NET's date formats).
fn date_expression() -> Option<&'static Expression> {
    static EXPRESSION: OnceLock<Option<Expression>> = OnceLock::new();
    EXPRESSION
        .get_or_init(|| {
            Expression::compile(
                r#"var v = (string)context.Variables["value"];
                var d = v == "now" ? DateTime.UtcNow : (v == "today" ? DateTime.UtcNow.Date : DateTime.Parse(v));
                return d.ToString((string)context.Variables["format"]);"#,
                ExpressionKind::Block,
            )
            .ok()
        })
        .as_ref()
}

/// What the `Date` expression reads.
struct DateHost {
    value: Arc<str>,
    format: Arc<str>,
    now: Option<Duration>,
}

impl Host for DateHost {
    fn member(&self, object: &HostObject, name: &str) -> Result<gatehouse_expr::Value, HostError> {
        match (object.id(), name) {
            ("context", "Variables") => Ok(gatehouse_expr::Value::Object(HostObject::from_static(
                "context.Variables",
            ))),
            _ => Err(HostError::UnknownMember),
        }
    }

    fn index(
        &self,
        object: &HostObject,
        index: &gatehouse_expr::Value,
    ) -> Result<gatehouse_expr::Value, HostError> {
        match (object.id(), index) {
            ("context.Variables", gatehouse_expr::Value::String(name)) => match name.as_ref() {
                "value" => Ok(gatehouse_expr::Value::String(Arc::clone(&self.value))),
                "format" => Ok(gatehouse_expr::Value::String(Arc::clone(&self.format))),
                _ => Err(HostError::UnknownMember),
            },
            _ => Err(HostError::UnknownMember),
        }
    }

    fn call(
        &self,
        _object: &HostObject,
        _method: &str,
        _type_argument: Option<&str>,
        _args: &[gatehouse_expr::Value],
    ) -> Result<gatehouse_expr::Value, HostError> {
        Err(HostError::UnknownMember)
    }

    fn now(&self) -> Option<Duration> {
        self.now
    }
}

impl Filter for DateFormat {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> liquid_core::Result<Value> {
        charge(runtime.registers(), 1)?;
        let format = self.format.evaluate(runtime)?.to_kstr().into_owned();
        if input.is_nil() {
            return Ok(Value::Nil);
        }
        let text = input.to_kstr().into_owned();
        if text.is_empty() || format.is_empty() {
            return Ok(input.to_value());
        }
        let host = DateHost {
            value: Arc::from(text.trim()),
            format: Arc::from(format.as_str()),
            now: runtime.registers().get_mut::<Clock>().0,
        };
        match date_expression().map(|expression| expression.evaluate(&host)) {
            Some(Ok(gatehouse_expr::Value::String(formatted))) => {
                Ok(Value::scalar(formatted.as_ref().to_owned()))
            }
            _ => Ok(input.to_value()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_dates_read_as_apim_reads_them() {
        assert_eq!(
            json_date("2012-03-21T05:40Z").as_deref(),
            Some("03/21/2012 05:40:00")
        );
        assert_eq!(
            json_date("2012-03-21T05:40:07.5+02:00").as_deref(),
            Some("03/21/2012 03:40:07")
        );
        assert_eq!(
            json_date("/Date(1198908717056)/").as_deref(),
            Some("12/29/2007 06:11:57")
        );
        assert_eq!(
            json_date("/Date(-86400000+0100)/").as_deref(),
            Some("12/31/1969 00:00:00")
        );
        for not_a_date in [
            "/Date()/",
            "/Date(é)/",
            "/Date(-)/",
            "2012-03-21T05:40:07.Z",
            "2012-03-21T05:40+1",
            "2012-03-21T05:4é",
            "2012-03-21",
            "hello",
            "2012-13-01T00:00Z",
            "2012-03-21T05:40Q",
        ] {
            assert_eq!(json_date(not_a_date), None, "{not_a_date}");
        }
    }

    #[test]
    fn the_scan_finds_what_a_template_names() {
        let uses = scan(
            r#"{{ body.a }} {% if context.Variables["x"] %}{{ context.Variables.y-z }}{% endif %} body {{ context.RequestId }} {{ context.Request.HasBody }}"#,
        );
        assert_eq!(
            uses,
            Uses {
                body: true,
                context: true,
                request_id: true,
                has_body: true,
                variables: vec!["x".to_owned(), "y-z".to_owned()],
            }
        );
        assert_eq!(scan("body context {{ x.body }}"), Uses::default());
    }
}
