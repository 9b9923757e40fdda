//! Policy expressions in policy documents: compiled once at load with `gatehouse-expr`
//! (named values substituted first, as APIM does), evaluated per request against the
//! request's context ([`RequestHost`]).
//!
//! A value a policy accepts an expression in is a [`TextValue`]: fixed text (named
//! values substituted, checked at load like any literal) or an expression evaluated per
//! request. A policy whose values are all fixed pays nothing per request for this.

use std::fmt;
use std::sync::Arc;

use gatehouse_expr::{EvalError, Expression, ExpressionKind, Host, HostError, HostObject, Value};
use http::StatusCode;

use crate::body::{BufferedBody, ContextReads};
use crate::context::{CompileContext, Resolved};
use crate::document::SectionKind;
use crate::error::{ErrorKind, PolicyError, Position, Site};
use crate::pipeline::{
    Flow, PolicyErrorInfo, PolicyResponse, RequestFacts, RequestState, ResponseState, ScopeFacts,
    StepMeta,
};
use crate::reader::{self, RawText, RawValue};

/// A compiled policy expression.
pub(crate) struct PolicyExpression {
    /// Shared by every place the same expression text appears in a configuration.
    expression: Arc<Expression>,
    /// Where the `@` is.
    position: Position,
    /// Whether a secret named value went into it: then neither its text nor the
    /// evaluator's message (which may quote it) appears in an error.
    secret: bool,
}

impl fmt::Debug for PolicyExpression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source: &dyn fmt::Debug = if self.secret {
            &"<secret>"
        } else {
            &self.expression.source()
        };
        f.debug_struct("PolicyExpression")
            .field("source", source)
            .field("position", &self.position)
            .finish()
    }
}

impl PolicyExpression {
    /// The expression's value as .NET's `ToString()` writes it (null is empty).
    pub(crate) fn text(&self, host: &RequestHost<'_>) -> Result<Text<'static>, ExpressionFailure> {
        Ok(match self.evaluate(host)? {
            // The usual results need no formatting (nor a copy).
            Value::String(text) => Text::Shared(text),
            Value::Null => Text::Borrowed(""),
            other => Text::Owned(other.to_string()),
        })
    }

    /// Evaluates the expression for the request `host` describes.
    pub(crate) fn evaluate(&self, host: &RequestHost<'_>) -> Result<Value, ExpressionFailure> {
        self.expression
            .evaluate(host)
            .map_err(|error| ExpressionFailure {
                error,
                position: self.position,
                secret: self.secret,
            })
    }
}

/// An expression that failed at request time.
#[derive(Debug)]
pub(crate) struct ExpressionFailure {
    error: EvalError,
    position: Position,
    secret: bool,
}

impl ExpressionFailure {
    /// What went wrong, without what a secret named value put into the expression.
    pub(crate) fn describe(&self) -> String {
        if self.secret {
            "the expression holds a secret named value; details are not shown".to_owned()
        } else {
            self.error.to_string()
        }
    }

    /// The failure as APIM reports it: `ExpressionValueEvaluationFailure`, 500, and
    /// on-error runs.
    pub(crate) fn into_flow(self, meta: &StepMeta, section: SectionKind) -> Flow {
        let detail = self.describe();
        meta.fail(
            section,
            "ExpressionValueEvaluationFailure",
            format!(
                "Expression evaluation failed. {detail} (expression at {}:{})",
                meta.origin, self.position
            ),
            PolicyResponse::json_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        )
    }
}

/// A policy value: fixed text, or an expression evaluated per request.
#[derive(Debug)]
pub(crate) enum TextValue {
    /// Text known at load (named values substituted).
    Fixed(Resolved),
    /// Computed per request.
    Computed(PolicyExpression),
}

impl TextValue {
    /// The value for this request: the fixed text, or the expression's value as .NET's
    /// `ToString()` writes it (null is empty).
    pub(crate) fn render<'v>(
        &'v self,
        host: &RequestHost<'_>,
    ) -> Result<Text<'v>, ExpressionFailure> {
        match self {
            Self::Fixed(resolved) => Ok(Text::Borrowed(&resolved.text)),
            Self::Computed(expression) => expression.text(host),
        }
    }

    /// Whether the value came from (or may hold) a secret named value.
    pub(crate) fn is_secret(&self) -> bool {
        match self {
            Self::Fixed(resolved) => resolved.secret,
            Self::Computed(expression) => expression.secret,
        }
    }
}

impl CompileContext<'_> {
    /// A value that may be a policy expression: compiled now, evaluated per request.
    pub(crate) fn text_value(
        &self,
        site: Site<'_>,
        value: &RawValue,
    ) -> Result<TextValue, PolicyError> {
        match &value.text {
            RawText::Expression(expression) => {
                Ok(TextValue::Computed(self.expression(site, expression)?))
            }
            RawText::Literal(_) | RawText::Mixed(_) => {
                self.literal(site, value).map(TextValue::Fixed)
            }
        }
    }

    /// Compiles an expression; `{{named values}}` in it are substituted first.
    pub(crate) fn expression(
        &self,
        site: Site<'_>,
        raw: &reader::Expression,
    ) -> Result<PolicyExpression, PolicyError> {
        let resolved = self.substitute_in_expression(site, &raw.source, raw.position)?;
        // The same text compiles to the same expression: configurations repeat policies
        // across APIs, and each API's policy is compiled for every pipeline it is in.
        if let Some((expression, reads)) = self.cached_expression(&resolved.text) {
            self.note_reads(reads);
            return Ok(PolicyExpression {
                expression,
                position: raw.position,
                secret: resolved.secret,
            });
        }
        let (code, kind, offset) = match resolved.text.strip_prefix("@(") {
            Some(rest) => (
                rest.strip_suffix(')').unwrap_or(rest),
                ExpressionKind::Single,
                2,
            ),
            None => (
                resolved.text.strip_prefix('@').unwrap_or(&resolved.text),
                ExpressionKind::Block,
                1,
            ),
        };
        // Positions inside the code, mapped back into the document.
        let at = |line: u32, column: u32| {
            if line <= 1 {
                Position {
                    line: raw.position.line,
                    column: raw.position.column + offset + column.saturating_sub(1),
                }
            } else {
                Position {
                    line: raw.position.line + line - 1,
                    column,
                }
            }
        };
        let hidden = "this policy expression cannot be compiled (it holds a secret named value, so the details are not shown)";
        let invalid = |error: gatehouse_expr::ExprError| {
            let message = if resolved.secret {
                hidden.to_owned()
            } else {
                format!("policy expression: {}", error.message)
            };
            site.err(
                at(error.line, error.column),
                expression_error_kind(&error.message),
                message,
            )
        };
        // Read once: the tokens serve the context scan and the parser.
        let tokens = gatehouse_expr::lexer::tokenize(code).map_err(invalid)?;
        let scan = scan_context(&tokens);
        let expression = Expression::compile_tokens(code, kind, tokens).map_err(invalid)?;
        if let Some(member) = scan.unavailable {
            let message = if resolved.secret {
                hidden.to_owned()
            } else {
                member.message
            };
            return Err(site.err(
                at(member.span.line, member.span.column),
                member.kind,
                message,
            ));
        }
        self.note_reads(scan.context_reads);
        let expression = Arc::new(expression);
        self.cache_expression(&resolved.text, &expression, scan.context_reads);
        Ok(PolicyExpression {
            expression,
            position: raw.position,
            secret: resolved.secret,
        })
    }
}

/// A name APIM allows in expressions but Gatehouse does not have yet is `unsupported`;
/// anything else the checker refuses (`System.IO.File`, a syntax error) is `invalid`.
fn expression_error_kind(message: &str) -> ErrorKind {
    /// Types APIM's expression reference lists (the first part of the name).
    const APIM_TYPES: &[&str] = &[
        "BasicAuthCredentials",
        "DateTime",
        "DateTimeOffset",
        "Encoding",
        "Enumerable",
        "Guid",
        "HMACSHA1",
        "HMACSHA256",
        "HMACSHA384",
        "HMACSHA512",
        "Int16",
        "Int32",
        "Int64",
        "Jwt",
        "MD5",
        "MidpointRounding",
        "Newtonsoft",
        "Random",
        "Regex",
        "RegexOptions",
        "SHA1",
        "SHA256",
        "SHA384",
        "SHA512",
        "StringBuilder",
        "StringComparer",
        "StringComparison",
        "StringSplitOptions",
        "TimeSpan",
        "TimeZoneInfo",
        "Tuple",
        "Uri",
        "UriPartial",
        "WebUtility",
        "XDocument",
        "XElement",
        "XName",
        "Dictionary",
        "List",
        // Types Gatehouse has, with members it does not have yet (`int.TryParse`).
        "string",
        "String",
        "int",
        "long",
        "double",
        "decimal",
        "bool",
        "Convert",
        "Math",
        "JObject",
        "JArray",
        "JToken",
    ];
    let named = message.split('`').nth(1).map(|name| {
        name.trim_start_matches("new ")
            .split(['.', '<'])
            .next()
            .unwrap_or(name)
    });
    match named {
        Some(name)
            if (message.contains("is not available in policy expressions")
                || message.starts_with("expected a type name"))
                && APIM_TYPES.contains(&name) =>
        {
            ErrorKind::NotSupported
        }
        _ => ErrorKind::InvalidValue,
    }
}

// === which context members exist ===

/// An address as text; IPv4 (the usual client) without the formatter, whose padding
/// support costs a thousand instructions per address.
fn ip_text(ip: std::net::IpAddr) -> Value {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut out = String::with_capacity(15);
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
            Value::String(Arc::from(out))
        }
        std::net::IpAddr::V6(v6) => text(&v6.to_string()),
    }
}

/// What APIM's `IUrl` has (`context.Request.Url`, `OriginalUrl`, `Api.ServiceUrl`);
/// `ToString()` too.
const URL_MEMBERS: &[&str] = &[
    "Scheme",
    "Host",
    "Port",
    "Path",
    "Query",
    "QueryString",
    "ToString",
];

/// The context members [`RequestHost`] serves, by object: `(object, members)`.
const CONTEXT_MODEL: &[(&str, &[&str])] = &[
    (
        "context",
        &[
            "Request",
            "Response",
            "Variables",
            "Subscription",
            "LastError",
            "Api",
            "Operation",
            "Product",
            "User",
            "RequestId",
            "Timestamp",
            "Elapsed",
            "Deployment",
        ],
    ),
    ("context.Deployment", &["GatewayId", "Region", "Gateway"]),
    ("context.Deployment.Gateway", &["Id", "IsManaged"]),
    (
        "context.Request",
        &[
            "Method",
            "Headers",
            "IpAddress",
            "Url",
            "OriginalUrl",
            "MatchedParameters",
            "Body",
        ],
    ),
    ("context.Request.Body", &["As", "AsFormUrlEncodedContent"]),
    ("context.Response.Body", &["As", "AsFormUrlEncodedContent"]),
    ("context.Request.Url", URL_MEMBERS),
    ("context.Request.OriginalUrl", URL_MEMBERS),
    (
        "context.Response",
        &["StatusCode", "StatusReason", "Headers", "Body"],
    ),
    ("context.Subscription", &["Id", "Key", "Name"]),
    (
        "context.LastError",
        &[
            "Source", "Reason", "Message", "Section", "PolicyId", "Scope", "Path",
        ],
    ),
    (
        "context.Api",
        &["Id", "Name", "Path", "ServiceUrl", "Version"],
    ),
    ("context.Api.ServiceUrl", URL_MEMBERS),
    (
        "context.Operation",
        &["Id", "Name", "Method", "UrlTemplate"],
    ),
    ("context.Product", &["Id", "Name"]),
    // Gatehouse has no users: `context.User` is always null, as for a call without
    // one in APIM, so these are never reached.
    (
        "context.User",
        &[
            "Email",
            "FirstName",
            "Groups",
            "Id",
            "Identities",
            "LastName",
            "Note",
            "RegistrationDate",
        ],
    ),
];

/// APIM's context model (what its reference documents), for telling a member Gatehouse
/// lacks (`unsupported`) from a typo (`invalid`).
const APIM_CONTEXT_MODEL: &[(&str, &[&str])] = &[
    ("context", &["Trace", "Tracing", "Workspace"]),
    (
        "context.Deployment",
        &[
            "ServiceId",
            "ServiceName",
            "Certificates",
            "SustainedStorage",
        ],
    ),
    ("context.Deployment.Gateway", &["InstanceId"]),
    (
        "context.Request",
        &["Certificate", "PrivateEndpointConnection"],
    ),
    ("context.Request.Url", &["ToUri"]),
    ("context.Request.OriginalUrl", &["ToUri"]),
    (
        "context.Subscription",
        &[
            "CreatedDate",
            "EndDate",
            "PrimaryKey",
            "SecondaryKey",
            "StartDate",
        ],
    ),
    (
        "context.Api",
        &[
            "IsCurrentRevision",
            "Protocols",
            "Revision",
            "SubscriptionKeyParameterNames",
            "Workspace",
        ],
    ),
    ("context.Operation", &["Workspace"]),
    (
        "context.Product",
        &[
            "Apis",
            "ApprovalRequired",
            "Groups",
            "State",
            "SubscriptionLimit",
            "SubscriptionRequired",
            "Workspace",
        ],
    ),
];

/// A `context.…` member an expression names that Gatehouse does not serve.
struct UnavailableMember {
    span: gatehouse_expr::Span,
    kind: ErrorKind,
    message: String,
}

/// What the `context.A.B…` chains in an expression name.
#[derive(Default)]
struct ContextScan {
    /// The first chain that leaves the model Gatehouse serves.
    unavailable: Option<UnavailableMember>,
    /// The bodies the chains read.
    context_reads: ContextReads,
}

/// The types `Body.As<T>()` reads a body as.
const BODY_TYPES: &[&str] = &["string", "JObject", "JArray", "JToken"];

/// Walks the `context.A.B…` chains in `code`: a member Gatehouse does not serve is
/// refused at load rather than failing each request, and the bodies read are noted so
/// the gateway buffers them. (A chain through a local variable, `var r =
/// context.Request; r.Body`, is only seen per request.)
fn scan_context(tokens: &[gatehouse_expr::lexer::Token]) -> ContextScan {
    use gatehouse_expr::lexer::{InterpolationPart, Punct, Token, TokenKind};
    fn walk(tokens: &[Token], scan: &mut ContextScan) {
        for (index, token) in tokens.iter().enumerate() {
            if scan.unavailable.is_some() {
                return;
            }
            match &token.kind {
                TokenKind::Interpolated(parts) => {
                    for part in parts {
                        if let InterpolationPart::Hole(hole) = part {
                            walk(hole, scan);
                        }
                    }
                }
                TokenKind::Ident(name)
                    if name == "context"
                        && !matches!(
                            index.checked_sub(1).map(|before| &tokens[before].kind),
                            Some(TokenKind::Punct(Punct::Dot | Punct::QuestionDot))
                        ) =>
                {
                    scan.unavailable = check_chain(&tokens[index + 1..], &mut scan.context_reads);
                }
                _ => {}
            }
        }
    }
    fn check_chain(rest: &[Token], reads: &mut ContextReads) -> Option<UnavailableMember> {
        let mut object = String::from("context");
        let mut tokens = rest.iter();
        loop {
            match object.as_str() {
                "context.Request.Body" => reads.request_body = true,
                "context.Response.Body" => reads.response_body = true,
                "context.RequestId" => reads.request_id = true,
                _ => {}
            }
            let Some(Token {
                kind: TokenKind::Punct(Punct::Dot | Punct::QuestionDot),
                ..
            }) = tokens.next()
            else {
                return None;
            };
            let Some(Token {
                kind: TokenKind::Ident(member),
                span,
            }) = tokens.next()
            else {
                return None;
            };
            let members_of = |model: &[(&str, &'static [&'static str])]| {
                model
                    .iter()
                    .find(|(name, _)| *name == object)
                    .map(|(_, members)| *members)
            };
            // Past the objects the model describes (a header collection, a string),
            // members are the language's or the host's methods: not checked here.
            let served = members_of(CONTEXT_MODEL)?;
            if object.ends_with(".Body") && member == "As" {
                return check_body_type(tokens.as_slice());
            }
            if served.contains(&member.as_str()) {
                object = format!("{object}.{member}");
                continue;
            }
            let apim = members_of(APIM_CONTEXT_MODEL).unwrap_or(&[]);
            let (kind, message) = if apim.contains(&member.as_str()) {
                (
                    ErrorKind::NotSupported,
                    format!(
                        "policy expression: `{object}.{member}` is not available in Gatehouse yet (docs/expressions.md lists the context members it has)"
                    ),
                )
            } else {
                (
                    ErrorKind::InvalidValue,
                    format!(
                        "policy expression: `{object}` has no member `{member}`; it has: {}",
                        served.join(", ")
                    ),
                )
            };
            return Some(UnavailableMember {
                span: *span,
                kind,
                message,
            });
        }
    }
    /// `Body.As<T>`: `T` must be a type Gatehouse reads bodies as.
    fn check_body_type(after_as: &[Token]) -> Option<UnavailableMember> {
        let [
            Token {
                kind: TokenKind::Punct(Punct::Lt),
                ..
            },
            Token {
                kind: TokenKind::Ident(type_name),
                span,
            },
            ..,
        ] = after_as
        else {
            return None;
        };
        if BODY_TYPES.contains(&type_name.as_str()) {
            return None;
        }
        // (Types the language does not know, `XDocument`, are refused before this.)
        let (kind, message) = (
            ErrorKind::InvalidValue,
            format!(
                "policy expression: a body cannot be read as `{type_name}`; use one of: {}",
                BODY_TYPES.join(", ")
            ),
        );
        Some(UnavailableMember {
            span: *span,
            kind,
            message,
        })
    }
    let mut scan = ContextScan::default();
    walk(tokens, &mut scan);
    scan
}

/// A rendered [`TextValue`].
#[derive(Debug)]
pub(crate) enum Text<'v> {
    Borrowed(&'v str),
    Shared(Arc<str>),
    Owned(String),
}

impl std::ops::Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Self::Borrowed(text) => text,
            Self::Shared(text) => text,
            Self::Owned(text) => text,
        }
    }
}

// === the request's context, for expressions ===

/// `context.Variables`: what `set-variable` stored, in order of first assignment.
#[derive(Debug, Clone, Default)]
pub struct Variables(Vec<(Arc<str>, Value)>);

impl Variables {
    /// The variable `name` (names are case-sensitive, as in APIM).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value)
    }

    /// Sets `name` to `value`, replacing what it held.
    pub fn set(&mut self, name: &Arc<str>, value: Value) {
        match self.0.iter_mut().find(|(key, _)| key == name) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((Arc::clone(name), value)),
        }
    }

    /// How many variables are set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The context model expressions read (`context.Request`, `context.Variables`, …), over
/// the request as the policies have shaped it so far.
pub(crate) struct RequestHost<'r> {
    pub(crate) facts: &'r RequestFacts<'r>,
    /// The API and operation the pipeline serves.
    pub(crate) scope: &'r ScopeFacts,
    pub(crate) request: &'r RequestState,
    pub(crate) response: Option<&'r ResponseState>,
    pub(crate) last_error: Option<&'r PolicyErrorInfo>,
}

fn object(id: &'static str) -> Value {
    Value::Object(HostObject::from_static(id))
}

fn text(value: &str) -> Value {
    Value::string(value)
}

fn string_argument(args: &[Value], index: usize) -> Result<&str, HostError> {
    match args.get(index) {
        Some(Value::String(value)) => Ok(value),
        Some(other) => Err(HostError::Failed(format!(
            "argument {} must be a string, found {}",
            index + 1,
            other.type_name()
        ))),
        None => Err(HostError::Failed(format!(
            "argument {} is missing",
            index + 1
        ))),
    }
}

/// `GetValueOrDefault(name, default)` over headers: the values joined with `,`.
fn header_value(headers: &http::HeaderMap, args: &[Value]) -> Result<Value, HostError> {
    let name = string_argument(args, 0)?;
    let mut values = headers.get_all(name).iter();
    // One value (the usual case): one copy.
    if let (Some(only), None) = (values.next(), values.next()) {
        return Ok(Value::String(Arc::from(
            String::from_utf8_lossy(only.as_bytes()).as_ref(),
        )));
    }
    let mut joined: Option<String> = None;
    for value in headers.get_all(name) {
        let value = String::from_utf8_lossy(value.as_bytes());
        match &mut joined {
            Some(text) => {
                text.push(',');
                text.push_str(&value);
            }
            None => joined = Some(value.into_owned()),
        }
    }
    Ok(match joined {
        Some(value) => Value::String(Arc::from(value)),
        None => args.get(1).cloned().unwrap_or(Value::Null),
    })
}

fn header_values(headers: &http::HeaderMap, name: &str) -> Result<Value, HostError> {
    let values: Vec<Value> = headers
        .get_all(name)
        .iter()
        .map(|value| text(&String::from_utf8_lossy(value.as_bytes())))
        .collect();
    if values.is_empty() {
        return Err(HostError::Failed(format!(
            "the header `{name}` is not present (use GetValueOrDefault)"
        )));
    }
    Ok(Value::Array(values))
}

impl RequestHost<'_> {
    fn headers(&self, id: &str) -> Option<&http::HeaderMap> {
        match id {
            "context.Request.Headers" => Some(&self.request.headers),
            "context.Response.Headers" => self.response.map(|response| &response.headers),
            other => match received(other) {
                Some((index, ".Headers")) => self
                    .request
                    .responses
                    .get(index)
                    .map(|response| &response.headers),
                _ => None,
            },
        }
    }

    /// The response `send-request` stored under object id `response:N`.
    pub(crate) fn received_response(&self, id: &str) -> Option<&crate::ReceivedResponse> {
        match received(id) {
            Some((index, "")) => self.request.responses.get(index),
            _ => None,
        }
    }

    /// A member of a response `send-request` received (`response:N`).
    fn received_member(&self, id: &str, name: &str) -> Result<Value, HostError> {
        let Some((index, "")) = received(id) else {
            return Err(HostError::UnknownMember);
        };
        let response = self
            .request
            .responses
            .get(index)
            .ok_or(HostError::UnknownMember)?;
        Ok(match name {
            "StatusCode" => Value::Int(i64::from(response.status.as_u16())),
            "StatusReason" => text(response.status.canonical_reason().unwrap_or_default()),
            "Headers" => Value::Object(HostObject::new(&format!("{id}.Headers"))),
            "Body" if response.body.is_empty() => Value::Null,
            "Body" => Value::Object(HostObject::new(&format!("{id}.Body"))),
            _ => return Err(HostError::UnknownMember),
        })
    }

    /// A query parameter of the request (`context.Request.Url.Query`) or of the URL as
    /// the client sent it (`context.Request.OriginalUrl.Query`), decoded.
    fn query_parameter(&self, id: &str, name: &str) -> Option<String> {
        let query = if id.starts_with("context.Request.OriginalUrl") {
            self.facts.original_url.query
        } else {
            &self.request.query
        };
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }

    /// The request's URL as forwarding would build it (`context.Request.Url`), for
    /// `send-request mode="copy"`; `None` without a backend URL.
    pub(crate) fn request_url(&self) -> Option<url::Url> {
        match self.url_text("context.Request.Url") {
            Value::String(text) => url::Url::parse(&text).ok(),
            _ => None,
        }
    }

    /// Where the request goes: `set-backend-service`'s URL, else the API's.
    fn backend_url(&self) -> Option<&url::Url> {
        self.request
            .backend
            .as_ref()
            .map(|backend| &backend.url)
            .or_else(|| self.scope.api.as_ref()?.service_url.as_ref())
    }

    /// A member of an `IUrl`: the request's (its backend URL, with the path and query
    /// as the policies shaped them), the client's original one, or the API's service
    /// URL.
    fn url_member(&self, id: &str, name: &str) -> Result<Value, HostError> {
        let query_string = |query: &str| {
            if query.is_empty() {
                text("")
            } else {
                text(&format!("?{query}"))
            }
        };
        match id {
            "context.Request.OriginalUrl" => {
                let original = &self.facts.original_url;
                let (host, port) = split_host_port(original.host, original.scheme);
                Ok(match name {
                    "Scheme" => text(original.scheme),
                    "Host" => text(host),
                    "Port" => Value::Int(i64::from(port)),
                    "Path" => text(original.path),
                    "QueryString" => query_string(original.query),
                    "Query" => object("context.Request.OriginalUrl.Query"),
                    _ => return Err(HostError::UnknownMember),
                })
            }
            "context.Request.Url" => match name {
                "Path" => Ok(text(&self.request.path)),
                "QueryString" => Ok(query_string(&self.request.query)),
                "Query" => Ok(object("context.Request.Url.Query")),
                _ => Ok(self
                    .backend_url()
                    .map_or(Value::Null, |url| url_part(url, name))),
            },
            _ => {
                let Some(url) = self
                    .scope
                    .api
                    .as_ref()
                    .and_then(|api| api.service_url.as_ref())
                else {
                    return Ok(Value::Null);
                };
                Ok(match name {
                    "Path" => text(url.path()),
                    "QueryString" => query_string(url.query().unwrap_or_default()),
                    "Query" => {
                        return Err(HostError::Failed(
                            "`context.Api.ServiceUrl.Query` is not available; use QueryString"
                                .to_owned(),
                        ));
                    }
                    _ => url_part(url, name),
                })
            }
        }
    }

    /// `ToString()` of an `IUrl`.
    fn url_text(&self, id: &str) -> Value {
        match id {
            "context.Request.OriginalUrl" => {
                let original = &self.facts.original_url;
                let mut out = format!("{}://{}{}", original.scheme, original.host, original.path);
                if !original.query.is_empty() {
                    out.push('?');
                    out.push_str(original.query);
                }
                text(&out)
            }
            "context.Request.Url" => {
                let base = self
                    .backend_url()
                    .map(|url| url.as_str().trim_end_matches('/'))
                    .unwrap_or_default();
                let mut out = format!("{base}{}", self.request.path);
                if !self.request.query.is_empty() {
                    out.push('?');
                    out.push_str(&self.request.query);
                }
                text(&out)
            }
            _ => self
                .scope
                .api
                .as_ref()
                .and_then(|api| api.service_url.as_ref())
                .map_or(Value::Null, |url| text(url.as_str())),
        }
    }
}

/// `Scheme`, `Host` or `Port` of a URL.
fn url_part(url: &url::Url, name: &str) -> Value {
    match name {
        "Scheme" => text(url.scheme()),
        "Host" => text(url.host_str().unwrap_or_default()),
        "Port" => Value::Int(i64::from(url.port_or_known_default().unwrap_or(0))),
        _ => Value::Null,
    }
}

/// `host[:port]` split, the port defaulting to the scheme's.
fn split_host_port<'h>(authority: &'h str, scheme: &str) -> (&'h str, u16) {
    let default = if scheme == "https" { 443 } else { 80 };
    // `[::1]:8080`, `[::1]`, `example.com:8080`, `example.com`.
    if let Some(rest) = authority.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after
            .strip_prefix(':')
            .and_then(|port| port.parse().ok())
            .unwrap_or(default);
        return (host, port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(default)),
        None => (authority, default),
    }
}

impl Host for RequestHost<'_> {
    fn path(&self, path: &str) -> Option<Result<Value, HostError>> {
        // One member lookup on an object that is never null here, instead of one per
        // level; a parent that may be null is walked by the evaluator.
        // A byte search: `rsplit_once('.')`'s char searcher costs more than the lookup.
        let dot = path.as_bytes().iter().rposition(|&b| b == b'.')?;
        let (parent, name) = (&path[..dot], &path[dot + 1..]);
        let parent = match parent {
            "context" => "context",
            "context.Request" => "context.Request",
            "context.Request.Url" => "context.Request.Url",
            "context.Request.OriginalUrl" => "context.Request.OriginalUrl",
            "context.Deployment" => "context.Deployment",
            "context.Response" if self.response.is_some() => "context.Response",
            "context.Subscription" if self.facts.subscription.is_some() => "context.Subscription",
            "context.LastError" if self.last_error.is_some() => "context.LastError",
            "context.Api" if self.scope.api.is_some() => "context.Api",
            "context.Operation" if self.scope.operation.is_some() => "context.Operation",
            _ => return None,
        };
        Some(self.member(&HostObject::from_static(parent), name))
    }

    fn member(&self, object_ref: &HostObject, name: &str) -> Result<Value, HostError> {
        let facts = self.facts;
        let value = match (object_ref.id(), name) {
            ("context", "Request") => object("context.Request"),
            ("context", "Response") => match self.response {
                Some(_) => object("context.Response"),
                None => Value::Null,
            },
            ("context", "Variables") => object("context.Variables"),
            ("context", "Subscription") => match facts.subscription {
                Some(_) => object("context.Subscription"),
                None => Value::Null,
            },
            ("context", "LastError") => match self.last_error {
                Some(_) => object("context.LastError"),
                None => Value::Null,
            },
            ("context", "Api") => match self.scope.api {
                Some(_) => object("context.Api"),
                None => Value::Null,
            },
            ("context", "Operation") => match self.scope.operation {
                Some(_) => object("context.Operation"),
                None => Value::Null,
            },
            ("context", "Product") => match facts.subscription.and_then(|s| s.product_id) {
                Some(_) => object("context.Product"),
                None => Value::Null,
            },
            // Gatehouse has no users (subscriptions have no owner).
            ("context", "User") => Value::Null,
            // When the request was received.
            ("context", "Timestamp") => Value::date_time_since_unix_epoch(facts.now),
            ("context", "Elapsed") => Value::time_span(
                facts
                    .services
                    .map_or(std::time::Duration::ZERO, crate::PolicyServices::elapsed),
            ),
            ("context", "RequestId") => match facts.request_id {
                Some(id) => text(id),
                None => {
                    return Err(HostError::Failed(
                        "the request id was not made for the policies: Gatehouse makes it only when an expression names `context.RequestId` directly (not through a variable)"
                            .to_owned(),
                    ));
                }
            },
            ("context.Api", field) => {
                let Some(api) = &self.scope.api else {
                    return Ok(Value::Null);
                };
                match field {
                    "Id" => Value::String(Arc::clone(&api.id)),
                    "Name" => Value::String(Arc::clone(&api.name)),
                    "Path" => Value::String(Arc::clone(&api.path)),
                    "ServiceUrl" => match api.service_url {
                        Some(_) => object("context.Api.ServiceUrl"),
                        None => Value::Null,
                    },
                    // Gatehouse APIs have no versions: null, as for an unversioned API.
                    "Version" => Value::Null,
                    _ => return Err(HostError::UnknownMember),
                }
            }
            ("context.Operation", field) => {
                let Some(operation) = &self.scope.operation else {
                    return Ok(Value::Null);
                };
                match field {
                    "Id" => Value::String(Arc::clone(&operation.id)),
                    "Name" => Value::String(Arc::clone(&operation.name)),
                    "Method" => Value::String(Arc::clone(&operation.method)),
                    "UrlTemplate" => Value::String(Arc::clone(&operation.url_template)),
                    _ => return Err(HostError::UnknownMember),
                }
            }
            ("context.Product", "Id") => text(
                facts
                    .subscription
                    .and_then(|s| s.product_id)
                    .unwrap_or_default(),
            ),
            ("context.Product", "Name") => text(
                facts
                    .subscription
                    .and_then(|s| s.product_name.or(s.product_id))
                    .unwrap_or_default(),
            ),
            ("context", "Deployment") => object("context.Deployment"),
            ("context.Deployment", "GatewayId") | ("context.Deployment.Gateway", "Id") => {
                text(facts.deployment.gateway_id)
            }
            ("context.Deployment", "Region") => text(facts.deployment.region),
            ("context.Deployment", "Gateway") => object("context.Deployment.Gateway"),
            // A self-hosted gateway.
            ("context.Deployment.Gateway", "IsManaged") => Value::Bool(false),
            ("context.Subscription", "Name") => text(
                facts
                    .subscription
                    .map_or("", |subscription| subscription.name),
            ),
            (
                "context.Request.Url" | "context.Request.OriginalUrl" | "context.Api.ServiceUrl",
                "Scheme" | "Host" | "Port" | "Path" | "QueryString" | "Query",
            ) => return self.url_member(object_ref.id(), name),
            ("context.Request", "OriginalUrl") => object("context.Request.OriginalUrl"),
            ("context.Request", "Method") => text(self.request.method.as_str()),
            ("context.Request", "Headers") => object("context.Request.Headers"),
            ("context.Request", "IpAddress") => ip_text(facts.client_ip.to_canonical()),
            ("context.Request", "Url") => object("context.Request.Url"),
            ("context.Request", "MatchedParameters") => object("context.Request.MatchedParameters"),
            ("context.Request", "Body") => body_member(
                self.request.body.as_ref(),
                "context.Request.Body",
                "request",
            )?,
            ("context.Response", "Body") => body_member(
                self.response.and_then(|response| response.body.as_ref()),
                "context.Response.Body",
                "response",
            )?,
            ("context.Response", "StatusCode") => {
                Value::Int(i64::from(self.response.map_or(0, |r| r.status.as_u16())))
            }
            ("context.Response", "StatusReason") => text(
                self.response
                    .and_then(|response| {
                        response
                            .reason
                            .as_deref()
                            .or_else(|| response.status.canonical_reason())
                    })
                    .unwrap_or(""),
            ),
            ("context.Response", "Headers") => object("context.Response.Headers"),
            ("context.Subscription", "Id") => text(
                facts
                    .subscription
                    .map_or("", |subscription| subscription.id),
            ),
            ("context.Subscription", "Key") => text(
                facts
                    .subscription
                    .map_or("", |subscription| subscription.key),
            ),
            ("context.LastError", field) => {
                let Some(error) = self.last_error else {
                    return Ok(Value::Null);
                };
                match field {
                    "Source" => text(error.source),
                    "Reason" => text(error.reason),
                    "Message" => text(&error.message),
                    "Section" => error
                        .section
                        .map_or(Value::Null, |section| text(section.name())),
                    "PolicyId" => error.policy_id.as_deref().map_or(Value::Null, text),
                    "Scope" => error.scope.map_or(Value::Null, text),
                    "Path" => error.path.as_deref().map_or(Value::Null, text),
                    _ => return Err(HostError::UnknownMember),
                }
            }
            (
                "context.Variables" | "context.Request.Headers" | "context.Response.Headers",
                "Count",
            ) => match object_ref.id() {
                "context.Variables" => {
                    Value::Int(i64::try_from(self.request.variables.len()).unwrap_or(i64::MAX))
                }
                id => Value::Int(
                    i64::try_from(self.headers(id).map_or(0, http::HeaderMap::keys_len))
                        .unwrap_or(i64::MAX),
                ),
            },
            (id, _) if id.starts_with(RECEIVED) => return self.received_member(id, name),
            _ => return Err(HostError::UnknownMember),
        };
        Ok(value)
    }

    fn index(&self, object_ref: &HostObject, index: &Value) -> Result<Value, HostError> {
        let Value::String(key) = index else {
            return Err(HostError::Failed("the key must be a string".to_owned()));
        };
        match object_ref.id() {
            "context.Variables" => self.request.variables.get(key).cloned().ok_or_else(|| {
                HostError::Failed(format!(
                    "the variable `{key}` is not set (use GetValueOrDefault)"
                ))
            }),
            "context.Request.MatchedParameters" => facts_parameter(self.facts, key)
                .map(text)
                .ok_or_else(|| HostError::Failed(format!("no URL template parameter `{key}`"))),
            id @ ("context.Request.Url.Query" | "context.Request.OriginalUrl.Query") => self
                .query_parameter(id, key)
                .map(|value| Value::Array(vec![text(&value)]))
                .ok_or_else(|| HostError::Failed(format!("no query parameter `{key}`"))),
            id => match self.headers(id) {
                Some(headers) => header_values(headers, key),
                None => Err(HostError::UnknownMember),
            },
        }
    }

    fn call(
        &self,
        object_ref: &HostObject,
        method: &str,
        type_argument: Option<&str>,
        args: &[Value],
    ) -> Result<Value, HostError> {
        let id = object_ref.id();
        match (id, method) {
            ("context.Variables", "GetValueOrDefault") => {
                let name = string_argument(args, 0)?;
                Ok(self
                    .request
                    .variables
                    .get(name)
                    .cloned()
                    .or_else(|| args.get(1).cloned())
                    .unwrap_or(Value::Null))
            }
            ("context.Variables", "ContainsKey") => Ok(Value::Bool(
                self.request
                    .variables
                    .get(string_argument(args, 0)?)
                    .is_some(),
            )),
            ("context.Request.MatchedParameters", "GetValueOrDefault") => {
                let name = string_argument(args, 0)?;
                Ok(facts_parameter(self.facts, name)
                    .map(text)
                    .or_else(|| args.get(1).cloned())
                    .unwrap_or(Value::Null))
            }
            ("context.Request.MatchedParameters", "ContainsKey") => Ok(Value::Bool(
                facts_parameter(self.facts, string_argument(args, 0)?).is_some(),
            )),
            (
                "context.Request.Url.Query" | "context.Request.OriginalUrl.Query",
                "GetValueOrDefault",
            ) => {
                let name = string_argument(args, 0)?;
                Ok(self
                    .query_parameter(id, name)
                    .map(|value| text(&value))
                    .or_else(|| args.get(1).cloned())
                    .unwrap_or(Value::Null))
            }
            ("context.Request.Body", "As") => {
                read_body(self.request.body.as_ref(), type_argument, args)
            }
            ("context.Request.Body", "AsFormUrlEncodedContent") => {
                read_form(self.request.body.as_ref(), args)
            }
            ("context.Response.Body", "AsFormUrlEncodedContent") => read_form(
                self.response.and_then(|response| response.body.as_ref()),
                args,
            ),
            ("context.Response.Body", "As") => read_body(
                self.response.and_then(|response| response.body.as_ref()),
                type_argument,
                args,
            ),
            ("context.Request.Url.Query" | "context.Request.OriginalUrl.Query", "ContainsKey") => {
                Ok(Value::Bool(
                    self.query_parameter(id, string_argument(args, 0)?)
                        .is_some(),
                ))
            }
            (
                "context.Request.Url" | "context.Request.OriginalUrl" | "context.Api.ServiceUrl",
                "ToString",
            ) => Ok(self.url_text(id)),
            (id, "As") if received(id).is_some_and(|(_, rest)| rest == ".Body") => {
                let body = received(id)
                    .and_then(|(index, _)| self.request.responses.get(index))
                    .map(|response| &response.body);
                read_body(body, type_argument, args)
            }
            _ => match (self.headers(id), method) {
                (Some(headers), "GetValueOrDefault") => header_value(headers, args),
                (Some(headers), "ContainsKey") => {
                    Ok(Value::Bool(headers.contains_key(string_argument(args, 0)?)))
                }
                _ => Err(HostError::UnknownMember),
            },
        }
    }

    fn now(&self) -> Option<std::time::Duration> {
        // The request's own time where the gateway gives no clock (checks, tests).
        Some(
            self.facts
                .services
                .map_or(self.facts.now, crate::PolicyServices::now),
        )
    }

    fn random_guid(&self) -> Option<[u8; 16]> {
        self.facts.services.map(crate::PolicyServices::random_bytes)
    }

    fn is_instance(&self, object_ref: &HostObject, type_name: &str) -> bool {
        match (object_ref.id(), type_name) {
            ("context.Request", "IRequest") | ("context.Response", "IResponse") => true,
            (id, "IResponse") => received(id).is_some_and(|(_, rest)| rest.is_empty()),
            _ => false,
        }
    }
}

/// The object id prefix of responses `send-request` received: `response:N`, and
/// `response:N.Headers` / `response:N.Body` for their parts.
pub(crate) const RECEIVED: &str = "response:";

/// The object `response:N` for received response `index`.
pub(crate) fn received_object(index: usize) -> Value {
    Value::Object(HostObject::new(&format!("{RECEIVED}{index}")))
}

/// `(N, rest)` of an id `response:N…`.
fn received(id: &str) -> Option<(usize, &str)> {
    let rest = id.strip_prefix(RECEIVED)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let index = rest[..digits].parse().ok()?;
    Some((index, &rest[digits..]))
}

/// `context.Request.Body` / `context.Response.Body`: null when there is no body (or it
/// was consumed), as in APIM.
fn body_member(
    body: Option<&BufferedBody>,
    id: &'static str,
    which: &str,
) -> Result<Value, HostError> {
    match body {
        Some(body) if body.is_empty() => Ok(Value::Null),
        Some(_) => Ok(object(id)),
        None => Err(HostError::Failed(format!(
            "the {which} body was not read for the policies: Gatehouse reads it only when an expression names `{id}` directly (not through a variable)"
        ))),
    }
}

/// `Body.As<T>(preserveContent)`: the body as a string or parsed JSON; consumed unless
/// `preserveContent` is true.
fn read_body(
    body: Option<&BufferedBody>,
    type_argument: Option<&str>,
    args: &[Value],
) -> Result<Value, HostError> {
    let preserve = match args.first() {
        None => false,
        Some(Value::Bool(preserve)) => *preserve,
        Some(other) => {
            return Err(HostError::Failed(format!(
                "`As`: preserveContent must be a bool, found {}",
                other.type_name()
            )));
        }
    };
    let bytes = body.map(|body| body.read(preserve)).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    match type_argument.unwrap_or("string") {
        "string" => Ok(Value::String(Arc::from(text.as_ref()))),
        type_name @ ("JObject" | "JArray" | "JToken") => {
            let json: serde_json::Value = serde_json::from_str(&text)
                .map_err(|error| HostError::Failed(format!("the body is not JSON ({error})")))?;
            let fits = match type_name {
                "JObject" => json.is_object(),
                "JArray" => json.is_array(),
                _ => true,
            };
            if !fits {
                return Err(HostError::Failed(format!(
                    "the body is JSON but not a {type_name}"
                )));
            }
            Ok(Value::from_json(json))
        }
        other => Err(HostError::Failed(format!(
            "a body cannot be read as `{other}`"
        ))),
    }
}

/// `Body.AsFormUrlEncodedContent(preserveContent)`: the body as
/// `application/x-www-form-urlencoded` fields, each name with its values in order (a
/// JSON object of arrays here: `form["code"][0]`, `ContainsKey`); null when empty.
fn read_form(body: Option<&BufferedBody>, args: &[Value]) -> Result<Value, HostError> {
    let text = match read_body(body, Some("string"), args)? {
        Value::String(text) => text,
        _ => Arc::from(""),
    };
    if text.is_empty() {
        return Ok(Value::Null);
    }
    let mut fields = serde_json::Map::new();
    for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
        let values = fields
            .entry(name.into_owned())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = values {
            values.push(serde_json::Value::String(value.into_owned()));
        }
    }
    Ok(Value::from_json(serde_json::Value::Object(fields)))
}

fn facts_parameter<'a>(facts: &'a RequestFacts<'_>, name: &str) -> Option<&'a str> {
    facts
        .route_params
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

#[cfg(test)]
#[path = "expression_tests.rs"]
mod tests;
