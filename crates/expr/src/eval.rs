//! The compiled [`Expression`], the [`Host`] it evaluates against, and the evaluator.

use std::sync::Arc;

use crate::ast::{
    Argument, BinaryOp, Expr, ExprKind, InterpolatedPart, Literal, Stmt, StmtKind, UnaryOp,
};
use crate::check::{STATIC_TYPES, check_block_patterns, check_expression_patterns};
use crate::error::{EvalError, ExprError, Span};
use crate::native::{NativeKind, Pattern};
use crate::parser::{parse_block_tokens, parse_expression_tokens};
use crate::value::{HostObject, Value};

#[path = "eval_auth.rs"]
mod auth;
#[path = "eval_crypto.rs"]
mod crypto;
#[path = "eval_linq.rs"]
mod linq;
#[path = "eval_regex.rs"]
mod regexes;
pub(crate) use regexes::{
    LITERAL_PATTERN_SIZE_LIMIT, REGEX_OPTIONS, options_position as regex_options_position,
};
#[path = "eval_objects.rs"]
mod objects;
pub(crate) use objects::RandomState;
#[path = "eval_text.rs"]
mod text;
#[path = "eval_time.rs"]
mod time;

/// What the host's context model reports to the evaluator; the evaluator adds the span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The object has no such member or method.
    #[error("unknown member")]
    UnknownMember,
    /// The member exists but failed (bad argument, missing value, ...).
    #[error("{0}")]
    Failed(String),
}

/// The context object model, implemented by the gateway: the evaluator hands it every
/// member access, indexer, method call and `foreach` on a [`Value::Object`].
///
/// Objects are identified by [`HostObject`]s, which the host itself creates (for example
/// `context` → `context.Request` → `context.Request.Headers`). Built-ins on strings,
/// numbers, JSON and arrays are the evaluator's own and never reach the host.
pub trait Host {
    /// The value of `context`.
    fn context(&self) -> Value {
        Value::Object(HostObject::from_static("context"))
    }

    /// `object.name` (a property).
    ///
    /// # Errors
    ///
    /// [`HostError::UnknownMember`] when the object has no such property.
    fn member(&self, object: &HostObject, name: &str) -> Result<Value, HostError>;

    /// `context.A.B…` (`path`, no `?.`) in one call, for the paths the host can answer
    /// directly; `None` (the default) has the evaluator ask [`Host::member`] for each
    /// member in turn. The answer must be what those calls would give.
    fn path(&self, path: &str) -> Option<Result<Value, HostError>> {
        let _ = path;
        None
    }

    /// `object[index]` (`context.Variables["x"]`). By default, no object has an indexer.
    ///
    /// # Errors
    ///
    /// [`HostError::UnknownMember`] when the object has no indexer; `Failed` otherwise.
    fn index(&self, object: &HostObject, index: &Value) -> Result<Value, HostError> {
        let _ = (object, index);
        Err(HostError::UnknownMember)
    }

    /// `object.method<type_argument>(args)`; named arguments are passed by position.
    ///
    /// # Errors
    ///
    /// [`HostError::UnknownMember`] when the object has no such method.
    fn call(
        &self,
        object: &HostObject,
        method: &str,
        type_argument: Option<&str>,
        args: &[Value],
    ) -> Result<Value, HostError>;

    /// The items `foreach` visits on the object. By default, objects are not enumerable.
    ///
    /// # Errors
    ///
    /// [`HostError::Failed`] when the object cannot be enumerated.
    fn items(&self, object: &HostObject) -> Result<Vec<Value>, HostError> {
        Err(HostError::Failed(format!(
            "`{}` cannot be enumerated",
            object.id()
        )))
    }

    /// Whether the object is an instance of `type_name` (`IRequest`, `IResponse`), for
    /// `is`, `as` and casts. By default, no.
    fn is_instance(&self, object: &HostObject, type_name: &str) -> bool {
        let _ = (object, type_name);
        false
    }

    /// The current time, as the time elapsed since the Unix epoch (1970-01-01T00:00:00Z),
    /// for `DateTime.UtcNow`, `DateTime.Now`, `DateTime.Today`, `DateTimeOffset.UtcNow` and
    /// `DateTimeOffset.Now` (the gateway runs in UTC: `Now` is `UtcNow`). The evaluator
    /// never reads a clock itself. By default `None`, and those expressions fail.
    fn now(&self) -> Option<std::time::Duration> {
        None
    }

    /// 16 random bytes for `Guid.NewGuid()` (the evaluator sets the version-4 and variant
    /// bits). By default `None`, and `Guid.NewGuid()` fails.
    fn random_guid(&self) -> Option<[u8; 16]> {
        None
    }
}

/// Bounds on one evaluation, so that a policy expression cannot stall or exhaust the
/// gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nodes evaluated (each expression node, statement and `foreach` iteration costs
    /// one step, as does each lambda call); past it, [`EvalError::BudgetExceeded`].
    /// Default 10 000.
    pub max_steps: u64,
    /// The longest string (in bytes of UTF-8) an operation may produce; past it,
    /// [`EvalError::TooLarge`]. Default 1 MiB.
    pub max_string_len: usize,
    /// The most items an array may hold. Default 65 536.
    pub max_array_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_steps: 10_000,
            max_string_len: 1 << 20,
            max_array_len: 1 << 16,
        }
    }
}

/// Whether the source is the body of `@( ... )` or of `@{ ... }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpressionKind {
    /// `@( ... )`: one expression.
    Single,
    /// `@{ ... }`: statements that `return` a value.
    Block,
}

#[derive(Debug, Clone, PartialEq)]
enum Body {
    Single(Expr),
    Block(Vec<Stmt>),
}

/// A policy expression, parsed and checked once at load and evaluated per request.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: Arc<str>,
    body: Body,
    /// The regular expressions whose pattern (and options) are literals, compiled at load.
    patterns: Arc<[Pattern]>,
}

impl Expression {
    /// Parses and checks `source`.
    ///
    /// # Errors
    ///
    /// An [`ExprError`] for a syntax error, a name that is not available, assignment to
    /// the context or a block that does not return a value.
    pub fn compile(source: &str, kind: ExpressionKind) -> Result<Self, ExprError> {
        Self::compile_tokens(source, kind, crate::lexer::tokenize(source)?)
    }

    /// [`Expression::compile`] from `source`'s tokens ([`crate::lexer::tokenize`]), for a
    /// host that looks at the tokens too: the source is read once.
    ///
    /// # Errors
    ///
    /// As [`Expression::compile`].
    pub fn compile_tokens(
        source: &str,
        kind: ExpressionKind,
        tokens: Vec<crate::lexer::Token>,
    ) -> Result<Self, ExprError> {
        let (body, patterns) = match kind {
            ExpressionKind::Single => {
                let expr = parse_expression_tokens(tokens)?;
                let patterns = check_expression_patterns(&expr)?;
                (Body::Single(expr), patterns)
            }
            ExpressionKind::Block => {
                let stmts = parse_block_tokens(tokens)?;
                let patterns = check_block_patterns(&stmts)?;
                (Body::Block(stmts), patterns)
            }
        };
        Ok(Self {
            source: Arc::from(source),
            body,
            patterns: Arc::from(patterns),
        })
    }

    /// The source it was compiled from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `host` with the default [`Limits`].
    ///
    /// # Errors
    ///
    /// An [`EvalError`] with the span of the node that failed.
    pub fn evaluate(&self, host: &dyn Host) -> Result<Value, EvalError> {
        self.evaluate_with_limits(host, &Limits::default())
    }

    /// Evaluates against `host` within `limits`.
    ///
    /// # Errors
    ///
    /// An [`EvalError`] with the span of the node that failed.
    pub fn evaluate_with_limits(
        &self,
        host: &dyn Host,
        limits: &Limits,
    ) -> Result<Value, EvalError> {
        let mut eval = Evaluator {
            host,
            source: &self.source,
            limits,
            steps: 0,
            locals: Vec::new(),
            json_written: 0,
            patterns: &self.patterns,
        };
        match &self.body {
            Body::Single(expr) => eval.eval(expr),
            Body::Block(stmts) => {
                for stmt in stmts {
                    if let Flow::Return(value) = eval.exec(stmt)? {
                        return Ok(value);
                    }
                }
                Ok(Value::Null)
            }
        }
    }
}

enum Flow {
    Normal,
    Return(Value),
}

struct Evaluator<'a> {
    host: &'a dyn Host,
    source: &'a str,
    limits: &'a Limits,
    steps: u64,
    /// The local variables in scope, innermost last ([`Self::scoped`] drops a block's).
    locals: Vec<(String, Value)>,
    /// Bytes (roughly) written into JSON by indexer assignments so far.
    json_written: usize,
    /// The patterns compiled at load.
    patterns: &'a [Pattern],
}

/// Roughly how many bytes `json` takes written out.
fn json_size(json: &serde_json::Value) -> usize {
    match json {
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => 8,
        serde_json::Value::String(text) => text.len() + 2,
        serde_json::Value::Array(items) => items.iter().map(json_size).sum::<usize>() + 2,
        serde_json::Value::Object(map) => {
            map.iter()
                .map(|(key, value)| key.len() + 4 + json_size(value))
                .sum::<usize>()
                + 2
        }
    }
}

/// What a JSON value is, for messages.
fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Object(_) => "object",
        serde_json::Value::Array(_) => "array",
        _ => "value",
    }
}

fn failed(span: Span, message: impl Into<String>) -> EvalError {
    EvalError::Failed {
        message: message.into(),
        span,
    }
}

fn bad_cast(span: Span, message: impl Into<String>) -> EvalError {
    EvalError::BadCast {
        message: message.into(),
        span,
    }
}

fn unknown(span: Span, name: &str, on: &str) -> EvalError {
    EvalError::UnknownMember {
        name: name.to_owned(),
        on: on.to_owned(),
        span,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        #[allow(clippy::cast_precision_loss)]
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Int(_) | Value::Double(_), Value::Int(_) | Value::Double(_)) => {
            as_f64(a) == as_f64(b)
        }
        _ => a == b,
    }
}

/// `is` for the basic types.
fn matches_type(host: &dyn Host, v: &Value, type_name: &str) -> bool {
    match (type_name, v) {
        ("string", Value::String(_))
        | ("int" | "long", Value::Int(_))
        | ("double" | "decimal", Value::Double(_))
        | ("bool", Value::Bool(_))
        | ("JToken", Value::Json(_)) => true,
        ("JObject", Value::Json(j)) => j.is_object(),
        ("JArray", Value::Json(j)) => j.is_array(),
        ("DateTime" | "DateTimeOffset", Value::DateTime(_)) | ("TimeSpan", Value::TimeSpan(_)) => {
            true
        }
        // a Guid is a string here
        ("Guid", Value::String(s)) => crate::datetime::guid_digits(s).is_some(),
        (ty, Value::Native(native)) => native.type_name() == ty,
        ("object", v) => !v.is_null(),
        (ty, Value::Object(o)) => host.is_instance(o, ty),
        _ => false,
    }
}

/// The items of an array or JSON array.
fn array_items(v: &Value) -> Option<Vec<Value>> {
    match v {
        Value::Array(items) => Some(items.clone()),
        Value::Json(serde_json::Value::Array(items)) => {
            Some(items.iter().cloned().map(Value::from_json).collect())
        }
        Value::Bytes(bytes) => Some(bytes.iter().map(|&b| Value::Int(i64::from(b))).collect()),
        Value::Native(native) => match native.kind() {
            NativeKind::Groups(groups) => Some(
                groups
                    .iter()
                    .map(|g| {
                        Value::Native(crate::native::Native::new(NativeKind::Group(g.clone())))
                    })
                    .collect(),
            ),
            _ => None,
        },
        _ => None,
    }
}

/// `StringComparison`'s members, and whether each ignores case. The culture ones compare
/// as the ordinal ones do (the gateway has no culture): a documented difference.
const STRING_COMPARISONS: &[(&str, bool)] = &[
    ("CurrentCulture", false),
    ("CurrentCultureIgnoreCase", true),
    ("InvariantCulture", false),
    ("InvariantCultureIgnoreCase", true),
    ("Ordinal", false),
    ("OrdinalIgnoreCase", true),
];

/// The names of [`STRING_COMPARISONS`], for the load-time check.
pub(crate) const STRING_COMPARISON_NAMES: &[&str] = &[
    "CurrentCulture",
    "CurrentCultureIgnoreCase",
    "InvariantCulture",
    "InvariantCultureIgnoreCase",
    "Ordinal",
    "OrdinalIgnoreCase",
];

/// Whether `value` is a `StringComparison` that ignores case (`None`: not one).
fn ignores_case(value: &Value) -> Option<bool> {
    match value {
        Value::Native(native) => match native.kind() {
            NativeKind::StringComparison { ignore_case, .. } => Some(*ignore_case),
            _ => None,
        },
        _ => None,
    }
}

/// `text` with each character lowercased one for one (so character positions stay
/// those of `text`): case-insensitive comparisons compare these.
fn fold_case(text: &str) -> String {
    text.chars()
        .map(|c| c.to_lowercase().next().unwrap_or(c))
        .collect()
}

fn char_index(s: &str, byte: usize) -> i64 {
    i64::try_from(s[..byte].chars().count()).unwrap_or(i64::MAX)
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

const LINQ: &[&str] = &[
    "Where",
    "Select",
    "Any",
    "All",
    "Count",
    "First",
    "FirstOrDefault",
    "ToArray",
    "ToList",
    "Contains",
];

impl Evaluator<'_> {
    fn step(&mut self, span: Span) -> Result<(), EvalError> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(EvalError::BudgetExceeded {
                limit: self.limits.max_steps,
                span,
            });
        }
        Ok(())
    }

    fn text(&self, span: Span) -> String {
        self.source
            .get(span.start..span.end)
            .unwrap_or("expression")
            .to_owned()
    }

    fn too_long(&self, len: usize, span: Span) -> EvalError {
        EvalError::TooLarge {
            message: format!(
                "a string of {len} bytes is longer than the limit of {} bytes",
                self.limits.max_string_len
            ),
            span,
        }
    }

    fn string(&self, s: String, span: Span) -> Result<Value, EvalError> {
        if s.len() > self.limits.max_string_len {
            return Err(self.too_long(s.len(), span));
        }
        Ok(Value::String(Arc::from(s)))
    }

    fn array(&self, items: Vec<Value>, span: Span) -> Result<Value, EvalError> {
        if items.len() > self.limits.max_array_len {
            return Err(EvalError::TooLarge {
                message: format!(
                    "an array of {} items is longer than the limit of {} items",
                    items.len(),
                    self.limits.max_array_len
                ),
                span,
            });
        }
        Ok(Value::Array(items))
    }

    fn lookup(&self, name: &str) -> Option<&Value> {
        self.locals
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// `name[a][b] = value;`: sets a property of a local `JObject` (adding it when
    /// missing) or an item of a local `JArray`.
    fn assign_index(&mut self, target: &Expr, value: &Value) -> Result<(), EvalError> {
        // The keys from the name outwards.
        let mut keys = Vec::new();
        let mut node = target;
        while let ExprKind::Index { object, index, .. } = &node.kind {
            keys.push((self.eval(index)?, index.span));
            node = object;
        }
        keys.reverse();
        let ExprKind::Name(name) = &node.kind else {
            return Err(failed(target.span, "only local variables can be assigned"));
        };
        let json = value.to_json();
        self.json_written = self.json_written.saturating_add(json_size(&json));
        let budget = self.limits.max_string_len.saturating_mul(16);
        if self.json_written > budget {
            return Err(EvalError::TooLarge {
                message: format!(
                    "assignments into JSON wrote more than the limit of {budget} bytes"
                ),
                span: target.span,
            });
        }
        let slot = self
            .local_mut(name)
            .ok_or_else(|| failed(node.span, format!("`{name}` is not declared")))?;
        let Value::Json(root) = &mut slot.1 else {
            return Err(failed(
                node.span,
                format!(
                    "`{name}` is a {}: only a JObject or JArray can be assigned into",
                    slot.1.type_name()
                ),
            ));
        };
        let mut current = root;
        for (position, (key, span)) in keys.iter().enumerate() {
            let last = position + 1 == keys.len();
            current = match (current, key) {
                (serde_json::Value::Object(map), Value::String(key)) => {
                    if last {
                        map.insert(key.to_string(), json);
                        return Ok(());
                    }
                    map.get_mut(&**key).ok_or_else(|| {
                        failed(*span, format!("the JObject has no property `{key}`"))
                    })?
                }
                (serde_json::Value::Array(items), Value::Int(index)) => {
                    let length = items.len();
                    let item = usize::try_from(*index)
                        .ok()
                        .and_then(|index| items.get_mut(index))
                        .ok_or_else(|| {
                            failed(
                                *span,
                                format!("index {index} is outside the JArray (length {length})"),
                            )
                        })?;
                    if last {
                        *item = json;
                        return Ok(());
                    }
                    item
                }
                (other, key) => {
                    return Err(failed(
                        *span,
                        format!(
                            "cannot index a JSON {} with a {}",
                            json_kind(other),
                            key.type_name()
                        ),
                    ));
                }
            };
        }
        Err(failed(target.span, "nothing to assign into"))
    }

    fn declare(&mut self, name: &str, value: Value) {
        self.locals.push((name.to_owned(), value));
    }

    /// The innermost local variable called `name`.
    fn local_mut(&mut self, name: &str) -> Option<&mut (String, Value)> {
        self.locals
            .iter_mut()
            .rev()
            .find(|(local, _)| local == name)
    }

    /// The static type an expression names (`string` in `string.Join`), unless shadowed.
    fn static_type<'e>(&self, expr: &'e Expr) -> Option<&'e str> {
        match &expr.kind {
            ExprKind::Name(n) if STATIC_TYPES.contains(&n.as_str()) && self.lookup(n).is_none() => {
                Some(n)
            }
            _ => None,
        }
    }

    // ---- statements -------------------------------------------------------------------

    fn scoped<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, EvalError>,
    ) -> Result<T, EvalError> {
        let outer = self.locals.len();
        let result = f(self);
        self.locals.truncate(outer);
        result
    }

    fn exec(&mut self, stmt: &Stmt) -> Result<Flow, EvalError> {
        self.step(stmt.span)?;
        match &stmt.kind {
            StmtKind::Var { name, value } => {
                let value = self.eval(value)?;
                self.declare(name, value);
            }
            StmtKind::Assign { target, value } => {
                let value = self.eval(value)?;
                if let ExprKind::Index { .. } = &target.kind {
                    return self.assign_index(target, &value).map(|()| Flow::Normal);
                }
                let ExprKind::Name(name) = &target.kind else {
                    return Err(failed(target.span, "only local variables can be assigned"));
                };
                let slot = self
                    .local_mut(name)
                    .ok_or_else(|| failed(target.span, format!("`{name}` is not declared")))?;
                slot.1 = value;
            }
            StmtKind::If {
                condition,
                then,
                otherwise,
            } => {
                let flow = if self.condition(condition)? {
                    self.scoped(|e| e.exec(then))?
                } else if let Some(otherwise) = otherwise {
                    self.scoped(|e| e.exec(otherwise))?
                } else {
                    Flow::Normal
                };
                return Ok(flow);
            }
            StmtKind::Block(stmts) => {
                return self.scoped(|e| {
                    for stmt in stmts {
                        if let Flow::Return(v) = e.exec(stmt)? {
                            return Ok(Flow::Return(v));
                        }
                    }
                    Ok(Flow::Normal)
                });
            }
            StmtKind::Return(value) => return Ok(Flow::Return(self.eval(value)?)),
            StmtKind::Foreach {
                name,
                iterable,
                body,
            } => {
                let collection = self.eval(iterable)?;
                let items = match &collection {
                    Value::Null => {
                        return Err(EvalError::NullReference {
                            what: self.text(iterable.span),
                            span: iterable.span,
                        });
                    }
                    Value::String(s) => s
                        .chars()
                        .map(|c| Value::string(c.encode_utf8(&mut [0; 4])))
                        .collect(),
                    Value::Object(o) => self
                        .host
                        .items(o)
                        .map_err(|e| self.host_error(e, iterable.span, "GetEnumerator", o))?,
                    other => array_items(other).ok_or_else(|| {
                        bad_cast(
                            iterable.span,
                            format!("a {} cannot be enumerated", other.type_name()),
                        )
                    })?,
                };
                for item in items {
                    self.step(body.span)?;
                    let flow = self.scoped(|e| {
                        e.declare(name, item);
                        e.exec(body)
                    })?;
                    if let Flow::Return(v) = flow {
                        return Ok(Flow::Return(v));
                    }
                }
            }
            StmtKind::Expr(expr) => {
                self.eval(expr)?;
            }
        }
        Ok(Flow::Normal)
    }

    fn condition(&mut self, expr: &Expr) -> Result<bool, EvalError> {
        match self.eval(expr)? {
            Value::Bool(b) => Ok(b),
            other => Err(bad_cast(
                expr.span,
                format!("expected a bool condition, got {}", other.type_name()),
            )),
        }
    }

    /// `context.A.B…`: the host's direct answer, or each member in turn (a step each, a
    /// null one failing as `context.A.B` would).
    fn context_path(&mut self, path: &str, span: Span) -> Result<Value, EvalError> {
        if let Some(answer) = self.host.path(path) {
            return answer.map_err(|e| {
                let (parent, name) = path.rsplit_once('.').unwrap_or(("context", path));
                self.host_error(e, span, name, &HostObject::new(parent))
            });
        }
        let mut value = self.host.context();
        let mut walked = "context".len();
        for name in path.split('.').skip(1) {
            if matches!(value, Value::Null) {
                return Err(EvalError::NullReference {
                    what: path[..walked].to_owned(),
                    span,
                });
            }
            self.step(span)?;
            value = self.member(&value, name, span)?;
            walked += 1 + name.len();
        }
        Ok(value)
    }

    fn host_error(&self, e: HostError, span: Span, name: &str, object: &HostObject) -> EvalError {
        match e {
            HostError::UnknownMember => unknown(span, name, &format!("`{}`", object.id())),
            HostError::Failed(message) => failed(span, message),
        }
    }

    // ---- expressions ------------------------------------------------------------------

    fn eval(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        Ok(self.chain(expr)?.unwrap_or(Value::Null))
    }

    /// Evaluates the object of a member, index or call; `None` when a `?.` earlier in the
    /// chain met null (the whole chain is then null).
    fn object(
        &mut self,
        object: &Expr,
        null_conditional: bool,
    ) -> Result<Option<Value>, EvalError> {
        match self.chain(object)? {
            None => Ok(None),
            Some(Value::Null) if null_conditional => Ok(None),
            Some(Value::Null) => Err(EvalError::NullReference {
                what: self.text(object.span),
                span: object.span,
            }),
            Some(v) => Ok(Some(v)),
        }
    }

    fn chain(&mut self, expr: &Expr) -> Result<Option<Value>, EvalError> {
        self.step(expr.span)?;
        let span = expr.span;
        match &expr.kind {
            ExprKind::Member {
                object,
                name,
                null_conditional,
            } => {
                if let Some(ty) = self.static_type(object) {
                    return self.static_member(ty, name, span).map(Some);
                }
                let Some(obj) = self.object(object, *null_conditional)? else {
                    return Ok(None);
                };
                self.member(&obj, name, span).map(Some)
            }
            ExprKind::Index {
                object,
                index,
                null_conditional,
            } => {
                let Some(obj) = self.object(object, *null_conditional)? else {
                    return Ok(None);
                };
                let index = self.eval(index)?;
                self.index(&obj, &index, span).map(Some)
            }
            ExprKind::MethodCall {
                object,
                method,
                type_argument,
                args,
                null_conditional,
            } => {
                if args
                    .iter()
                    .any(|a| matches!(a.value.kind, ExprKind::Out { .. }))
                    && let Some(ty) = self.static_type(object)
                {
                    return self.try_parse(ty, args, span).map(Some);
                }
                if let Some(ty) = self.static_type(object) {
                    if ty == "JsonConvert" {
                        let args = self.args(args)?;
                        return self
                            .json_convert(method, type_argument.as_deref(), &args, span)
                            .map(Some);
                    }
                    if ty == "Regex"
                        && method == "Replace"
                        && let Some(result) = self.regex_replace_with_lambda(args, span)
                    {
                        return result.map(Some);
                    }
                    if ty == "Array" {
                        return self.array_static(method, args, span).map(Some);
                    }
                    let args = self.args(args)?;
                    if let Some(result) = self.regex_static_call(ty, method, &args, span) {
                        return result.map(Some);
                    }
                    if let Some(result) = self.crypto_static_call(ty, method, &args, span) {
                        return result.map(Some);
                    }
                    return self.static_call(ty, method, &args, span).map(Some);
                }
                if let Some(result) =
                    self.string_extension(object, method, args, *null_conditional, span)
                {
                    return result;
                }
                if let Some(result) =
                    self.try_get_value(object, method, args, *null_conditional, span)
                {
                    return result;
                }
                let Some(obj) = self.object(object, *null_conditional)? else {
                    return Ok(None);
                };
                if (LINQ.contains(&method.as_str()) || linq::MORE_LINQ.contains(&method.as_str()))
                    && let Some(items) = array_items(&obj)
                {
                    return self.linq(items, method, args, span).map(Some);
                }
                let args = self.args(args)?;
                if let Value::Native(native) = &obj {
                    if let NativeKind::Regex(pattern) = native.kind() {
                        return self.regex_method(pattern, method, &args, span).map(Some);
                    }
                    if let Some(result) = self.crypto_method(native, method, &args, span) {
                        return result.map(Some);
                    }
                }
                self.method(&obj, method, type_argument.as_deref(), &args, span)
                    .map(Some)
            }
            _ => self.plain(expr).map(Some),
        }
    }

    fn args(&mut self, args: &[Argument]) -> Result<Vec<Value>, EvalError> {
        args.iter().map(|a| self.eval(&a.value)).collect()
    }

    fn plain(&mut self, expr: &Expr) -> Result<Value, EvalError> {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Literal(lit) => Ok(match lit {
                Literal::Null => Value::Null,
                Literal::Bool(b) => Value::Bool(*b),
                Literal::Int(i) => Value::Int(*i),
                Literal::Float(f) => Value::Double(*f),
                Literal::Str(s) => Value::String(Arc::clone(s)),
                Literal::Char(c) => Value::string(c.encode_utf8(&mut [0; 4])),
            }),
            ExprKind::ContextPath(path) => self.context_path(path, span),
            ExprKind::Name(name) => {
                if let Some(v) = self.lookup(name) {
                    Ok(v.clone())
                } else if name == "context" {
                    Ok(self.host.context())
                } else {
                    Err(failed(span, format!("`{name}` is a type, not a value")))
                }
            }
            ExprKind::Call { function, .. } => Err(failed(
                span,
                format!("`{function}` is not available in policy expressions"),
            )),
            ExprKind::Unary { op, operand } => {
                let v = self.eval(operand)?;
                match (op, v) {
                    (UnaryOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
                    (UnaryOp::Neg, Value::Int(i)) => Ok(Value::Int(i.wrapping_neg())),
                    (UnaryOp::Neg, Value::Double(d)) => Ok(Value::Double(-d)),
                    (
                        UnaryOp::Plus,
                        v @ (Value::Int(_) | Value::Double(_) | Value::TimeSpan(_)),
                    ) => Ok(v),
                    (UnaryOp::Neg, Value::TimeSpan(ticks)) => self.negate_timespan(ticks, span),
                    (op, v) => {
                        let op = match op {
                            UnaryOp::Not => "!",
                            UnaryOp::Neg => "-",
                            UnaryOp::Plus => "+",
                        };
                        Err(bad_cast(
                            span,
                            format!("operator `{op}` cannot be applied to {}", v.type_name()),
                        ))
                    }
                }
            }
            ExprKind::Binary { op, left, right } => self.binary(*op, left, right, span),
            ExprKind::Conditional {
                condition,
                then,
                otherwise,
            } => {
                if self.condition(condition)? {
                    self.eval(then)
                } else {
                    self.eval(otherwise)
                }
            }
            ExprKind::Cast { type_name, operand } => {
                let v = self.eval(operand)?;
                self.cast(v, type_name, span)
            }
            ExprKind::Is { operand, type_name } => {
                let v = self.eval(operand)?;
                Ok(Value::Bool(matches_type(self.host, &v, type_name)))
            }
            ExprKind::As { operand, type_name } => {
                let v = self.eval(operand)?;
                Ok(if matches_type(self.host, &v, type_name) {
                    v
                } else {
                    Value::Null
                })
            }
            ExprKind::Lambda { .. } => Err(failed(
                span,
                format!("a lambda can only be an argument of {}", LINQ.join(", ")),
            )),
            ExprKind::New { type_name, args } => {
                let args = self.args(args)?;
                match type_name.as_str() {
                    "JObject" if args.is_empty() => Ok(Value::Json(serde_json::Value::Object(
                        serde_json::Map::new(),
                    ))),
                    "JArray" => Ok(Value::Json(serde_json::Value::Array(
                        args.iter().map(Value::to_json).collect(),
                    ))),
                    "DateTime" | "TimeSpan" => self.time_new(type_name, &args, span),
                    "Uri" => self.new_uri(&args, span),
                    "Regex" => self.new_regex(&args, span),
                    other => self
                        .object_new(other, &args, span)
                        .or_else(|| self.crypto_new(other, &args, span))
                        .unwrap_or_else(|| {
                            Err(failed(
                                span,
                                format!("`new {other}` with these arguments is not supported"),
                            ))
                        }),
                }
            }
            ExprKind::NewArray(items) => {
                let items = items
                    .iter()
                    .map(|e| self.eval(e))
                    .collect::<Result<Vec<_>, _>>()?;
                self.array(items, span)
            }
            ExprKind::Interpolated(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        InterpolatedPart::Text(t) => out.push_str(t),
                        InterpolatedPart::Expr(e) => {
                            self.eval(e)?.append_text(&mut out);
                        }
                    }
                    if out.len() > self.limits.max_string_len {
                        break;
                    }
                }
                self.string(out, span)
            }
            ExprKind::Out { name, .. } => Err(failed(
                span,
                format!("`out {name}` is only an argument of the `TryParse` methods"),
            )),
            ExprKind::Member { .. } | ExprKind::Index { .. } | ExprKind::MethodCall { .. } => {
                Err(failed(
                    span,
                    "internal error: a member chain reached the plain evaluator",
                ))
            }
        }
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        left: &Expr,
        right: &Expr,
        span: Span,
    ) -> Result<Value, EvalError> {
        match op {
            BinaryOp::And => {
                return Ok(Value::Bool(self.condition(left)? && self.condition(right)?));
            }
            BinaryOp::Or => {
                return Ok(Value::Bool(self.condition(left)? || self.condition(right)?));
            }
            BinaryOp::Coalesce => {
                let l = self.eval(left)?;
                return if l.is_null() { self.eval(right) } else { Ok(l) };
            }
            _ => {}
        }
        let l = self.eval(left)?;
        let r = self.eval(right)?;
        let mismatch = |l: &Value, r: &Value| {
            bad_cast(
                span,
                format!(
                    "operator `{}` cannot be applied to {} and {}",
                    op.as_str(),
                    l.type_name(),
                    r.type_name()
                ),
            )
        };
        if let Some(result) = self.time_binary(op, &l, &r, span) {
            return result;
        }
        match op {
            BinaryOp::BitOr => match (&l, &r) {
                (Value::Int(a), Value::Int(b)) => Ok(Value::Int(a | b)),
                (Value::Bool(a), Value::Bool(b)) => Ok(Value::Bool(*a || *b)),
                _ => Err(mismatch(&l, &r)),
            },
            BinaryOp::Eq => Ok(Value::Bool(values_equal(&l, &r))),
            BinaryOp::Ne => Ok(Value::Bool(!values_equal(&l, &r))),
            BinaryOp::Add if matches!(l, Value::String(_)) || matches!(r, Value::String(_)) => {
                let mut s = String::with_capacity(l.text_len_hint() + r.text_len_hint());
                l.append_text(&mut s);
                r.append_text(&mut s);
                self.string(s, span)
            }
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                let ordering = match (&l, &r) {
                    (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
                    _ => match (as_f64(&l), as_f64(&r)) {
                        (Some(a), Some(b)) => a.partial_cmp(&b),
                        _ if l.is_null() || r.is_null() => return Ok(Value::Bool(false)),
                        _ => return Err(mismatch(&l, &r)),
                    },
                };
                let Some(ordering) = ordering else {
                    return Ok(Value::Bool(false));
                };
                Ok(Value::Bool(match op {
                    BinaryOp::Lt => ordering.is_lt(),
                    BinaryOp::Le => ordering.is_le(),
                    BinaryOp::Gt => ordering.is_gt(),
                    _ => ordering.is_ge(),
                }))
            }
            _ => match (&l, &r) {
                (Value::Int(a), Value::Int(b)) => {
                    let (a, b) = (*a, *b);
                    Ok(Value::Int(match op {
                        BinaryOp::Add => a.wrapping_add(b),
                        BinaryOp::Sub => a.wrapping_sub(b),
                        BinaryOp::Mul => a.wrapping_mul(b),
                        BinaryOp::Div | BinaryOp::Rem if b == 0 => {
                            return Err(EvalError::DivisionByZero { span });
                        }
                        BinaryOp::Div => a.wrapping_div(b),
                        _ => a.wrapping_rem(b),
                    }))
                }
                _ => {
                    let (Some(a), Some(b)) = (as_f64(&l), as_f64(&r)) else {
                        return Err(mismatch(&l, &r));
                    };
                    Ok(Value::Double(match op {
                        BinaryOp::Add => a + b,
                        BinaryOp::Sub => a - b,
                        BinaryOp::Mul => a * b,
                        BinaryOp::Div => a / b,
                        _ => a % b,
                    }))
                }
            },
        }
    }

    fn cast(&self, v: Value, type_name: &str, span: Span) -> Result<Value, EvalError> {
        let fail = |v: &Value| {
            bad_cast(
                span,
                format!("cannot cast {} to {type_name}", v.type_name()),
            )
        };
        match (type_name, &v) {
            ("object", _) | ("string" | "JObject" | "JArray" | "JToken", Value::Null) => Ok(v),
            (ty, _) if matches_type(self.host, &v, ty) => Ok(v),
            ("int" | "long", Value::Double(d)) if d.is_finite() =>
            {
                #[allow(clippy::cast_possible_truncation)]
                Ok(Value::Int(d.trunc() as i64))
            }
            ("double" | "decimal", Value::Int(_)) => {
                as_f64(&v).map(Value::Double).ok_or_else(|| fail(&v))
            }
            ("JToken", Value::String(_) | Value::Int(_) | Value::Double(_) | Value::Bool(_)) => {
                Ok(Value::Json(v.to_json()))
            }
            _ => Err(fail(&v)),
        }
    }

    // ---- members ----------------------------------------------------------------------

    fn member(&self, obj: &Value, name: &str, span: Span) -> Result<Value, EvalError> {
        match (obj, name) {
            (Value::Object(o), _) => self
                .host
                .member(o, name)
                .map_err(|e| self.host_error(e, span, name, o)),
            // `DateTime?` (`jwt.ExpirationTime`): a value that is not null
            (Value::DateTime(_), "Value") => Ok(obj.clone()),
            (Value::DateTime(_), "HasValue") => Ok(Value::Bool(true)),
            (Value::DateTime(ticks), _) => self.datetime_member(*ticks, name, span),
            (Value::TimeSpan(ticks), _) => self.timespan_member(*ticks, name, span),
            (Value::Native(native), _) => self.native_member(native, name, span),
            (Value::Bytes(bytes), "Length") => Ok(Value::Int(to_i64(bytes.len()))),
            (Value::String(s), "Length") => Ok(Value::Int(to_i64(s.chars().count()))),
            (Value::Array(items), "Length" | "Count") => Ok(Value::Int(to_i64(items.len()))),
            (Value::Json(serde_json::Value::Array(items)), "Count") => {
                Ok(Value::Int(to_i64(items.len())))
            }
            (Value::Json(serde_json::Value::Object(map)), "Count") => {
                Ok(Value::Int(to_i64(map.len())))
            }
            _ => Err(unknown(span, name, obj.type_name())),
        }
    }

    fn index(&self, obj: &Value, index: &Value, span: Span) -> Result<Value, EvalError> {
        let out_of_range =
            |i: i64, len: usize| failed(span, format!("index {i} is out of range (length {len})"));
        if let Value::Native(native) = obj
            && let Some(result) = self
                .regex_index(native, index, span)
                .or_else(|| self.claims_index(native, index, span))
        {
            return result;
        }
        match (obj, index) {
            (Value::Object(o), _) => self
                .host
                .index(o, index)
                .map_err(|e| self.host_error(e, span, "this[]", o)),
            (Value::String(s), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|n| s.chars().nth(n))
                .map(|c| Value::string(c.encode_utf8(&mut [0; 4])))
                .ok_or_else(|| out_of_range(*i, s.chars().count())),
            (Value::Array(items), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|n| items.get(n))
                .cloned()
                .ok_or_else(|| out_of_range(*i, items.len())),
            (Value::Bytes(bytes), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|n| bytes.get(n))
                .map(|&b| Value::Int(i64::from(b)))
                .ok_or_else(|| out_of_range(*i, bytes.len())),
            (Value::Json(serde_json::Value::Array(items)), Value::Int(i)) => usize::try_from(*i)
                .ok()
                .and_then(|n| items.get(n))
                .cloned()
                .map(Value::from_json)
                .ok_or_else(|| out_of_range(*i, items.len())),
            (Value::Json(serde_json::Value::Object(map)), Value::String(key)) => Ok(map
                .get(&**key)
                .cloned()
                .map_or(Value::Null, Value::from_json)),
            _ => Err(bad_cast(
                span,
                format!(
                    "a {} cannot be indexed by {}",
                    obj.type_name(),
                    index.type_name()
                ),
            )),
        }
    }

    fn static_member(&self, ty: &str, name: &str, span: Span) -> Result<Value, EvalError> {
        if let Some(value) = self.time_static_member(ty, name, span) {
            return value;
        }
        if let Some(value) = self.text_static_member(ty, name, span) {
            return value;
        }
        if let Some(value) = self.regex_static_member(ty, name, span) {
            return value;
        }
        Ok(match (ty, name) {
            ("StringComparison", _) => match STRING_COMPARISONS.iter().find(|(n, _)| *n == name) {
                Some((name, ignore_case)) => {
                    Value::Native(crate::native::Native::new(NativeKind::StringComparison {
                        name,
                        ignore_case: *ignore_case,
                    }))
                }
                None => return Err(unknown(span, name, "`StringComparison`")),
            },
            ("string" | "String", "Empty") => Value::string(""),
            ("int", "MaxValue") => Value::Int(i64::from(i32::MAX)),
            ("int", "MinValue") => Value::Int(i64::from(i32::MIN)),
            ("long", "MaxValue") => Value::Int(i64::MAX),
            ("long", "MinValue") => Value::Int(i64::MIN),
            ("Math", "PI") => Value::Double(std::f64::consts::PI),
            ("Math", "E") => Value::Double(std::f64::consts::E),
            _ => return Err(unknown(span, name, &format!("`{ty}`"))),
        })
    }

    // ---- methods ----------------------------------------------------------------------

    fn call_lambda(
        &mut self,
        arg: &Argument,
        params: Vec<Value>,
        span: Span,
    ) -> Result<Value, EvalError> {
        let ExprKind::Lambda {
            params: names,
            body,
        } = &arg.value.kind
        else {
            return Err(failed(
                arg.value.span,
                "expected a lambda such as `x => x.Length > 0`",
            ));
        };
        if names.len() != params.len() {
            return Err(failed(
                arg.value.span,
                format!("the lambda must take {} parameter(s)", params.len()),
            ));
        }
        self.step(span)?;
        self.scoped(|e| {
            for (name, value) in names.iter().zip(params) {
                e.declare(name, value);
            }
            e.eval(body)
        })
    }

    fn predicate(&mut self, arg: &Argument, item: &Value, span: Span) -> Result<bool, EvalError> {
        match self.call_lambda(arg, vec![item.clone()], span)? {
            Value::Bool(b) => Ok(b),
            other => Err(bad_cast(
                arg.value.span,
                format!("the lambda must return a bool, not {}", other.type_name()),
            )),
        }
    }

    /// `Array.Exists`, `TrueForAll`, `Find`, `FindAll` (with a predicate, as the LINQ
    /// `Any`, `All`, `FirstOrDefault` and `Where`) and `Array.IndexOf`.
    fn array_static(
        &mut self,
        method: &str,
        args: &[Argument],
        span: Span,
    ) -> Result<Value, EvalError> {
        let [array, rest @ ..] = args else {
            return Err(failed(span, format!("`Array.{method}` needs an array")));
        };
        let value = self.eval(&array.value)?;
        let Some(items) = array_items(&value) else {
            return Err(bad_cast(
                span,
                format!("`Array.{method}` takes an array, not {}", value.type_name()),
            ));
        };
        let linq = match method {
            "Exists" => "Any",
            "TrueForAll" => "All",
            "Find" => "FirstOrDefault",
            "FindAll" => "Where",
            "IndexOf" => {
                let [needle] = rest else {
                    return Err(failed(span, "`Array.IndexOf` takes an array and a value"));
                };
                let needle = self.eval(&needle.value)?;
                return Ok(Value::Int(
                    items
                        .iter()
                        .position(|item| values_equal(item, &needle))
                        .map_or(-1, to_i64),
                ));
            }
            _ => return Err(unknown(span, method, "`Array`")),
        };
        if rest.len() != 1 {
            return Err(failed(
                span,
                format!("`Array.{method}` takes an array and a predicate"),
            ));
        }
        self.linq(items, linq, rest, span)
    }

    fn linq(
        &mut self,
        items: Vec<Value>,
        method: &str,
        args: &[Argument],
        span: Span,
    ) -> Result<Value, EvalError> {
        if linq::MORE_LINQ.contains(&method) {
            return self.more_linq(items, method, args, span);
        }
        let pred = args.first();
        match (method, pred) {
            ("ToArray" | "ToList", None) => self.array(items, span),
            ("Where", Some(p)) => {
                let mut out = Vec::new();
                for item in items {
                    if self.predicate(p, &item, span)? {
                        out.push(item);
                    }
                }
                self.array(out, span)
            }
            ("Select", Some(p)) => {
                let out = items
                    .into_iter()
                    .map(|i| self.call_lambda(p, vec![i], span))
                    .collect::<Result<Vec<_>, _>>()?;
                self.array(out, span)
            }
            ("Any", None) => Ok(Value::Bool(!items.is_empty())),
            ("Count", None) => Ok(Value::Int(to_i64(items.len()))),
            ("Any" | "All" | "Count" | "First" | "FirstOrDefault", Some(p)) => {
                let mut count = 0usize;
                for item in items {
                    let hit = self.predicate(p, &item, span)?;
                    match method {
                        "Any" if hit => return Ok(Value::Bool(true)),
                        "All" if !hit => return Ok(Value::Bool(false)),
                        "First" | "FirstOrDefault" if hit => return Ok(item),
                        _ => count += usize::from(hit),
                    }
                }
                match method {
                    "Any" => Ok(Value::Bool(false)),
                    "All" => Ok(Value::Bool(true)),
                    "Count" => Ok(Value::Int(to_i64(count))),
                    "FirstOrDefault" => Ok(Value::Null),
                    _ => Err(failed(span, "the sequence contains no matching element")),
                }
            }
            ("First", None) => items
                .into_iter()
                .next()
                .ok_or_else(|| failed(span, "the sequence contains no elements")),
            ("FirstOrDefault", None) => Ok(items.into_iter().next().unwrap_or(Value::Null)),
            ("Contains", Some(a)) => {
                let needle = self.eval(&a.value)?;
                Ok(Value::Bool(items.iter().any(|i| values_equal(i, &needle))))
            }
            _ => Err(failed(
                span,
                format!("wrong number of arguments for `{method}`"),
            )),
        }
    }

    fn method(
        &self,
        obj: &Value,
        method: &str,
        type_argument: Option<&str>,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        match (obj, method, args) {
            (Value::Object(o), _, _) => {
                return self
                    .host
                    .call(o, method, type_argument, args)
                    .map_err(|e| self.host_error(e, span, method, o));
            }
            // A string is its own text: no copy.
            (Value::String(_), "ToString", []) => return Ok(obj.clone()),
            (_, "ToString", []) => {
                let mut text = String::new();
                obj.append_text(&mut text);
                return self.string(text, span);
            }
            // `JToken.ToString(Formatting.None | Formatting.Indented)`
            (Value::Json(json), "ToString", [Value::Int(formatting @ (0 | 1))]) => {
                return self.json_text(json, *formatting == 1, span);
            }
            (_, "Equals", [other]) => return Ok(Value::Bool(values_equal(obj, other))),
            (Value::DateTime(ticks), _, _) => {
                return self.datetime_method(*ticks, method, args, span);
            }
            (Value::TimeSpan(ticks), _, _) => {
                return self.timespan_method(*ticks, method, args, span);
            }
            (Value::Native(native), _, _) => {
                return self.native_method(native, method, args, span);
            }
            (Value::String(s), "ToString", [Value::String(format)]) => {
                return self.guid_to_string(s, format, span).unwrap_or_else(|| {
                    Err(bad_cast(
                        span,
                        "only a Guid (a string holding one) takes a format in `ToString`",
                    ))
                });
            }
            (Value::String(s), _, _) => return self.string_method(s, method, args, span),
            (Value::Json(serde_json::Value::Object(map)), "ContainsKey", [Value::String(k)]) => {
                return Ok(Value::Bool(map.contains_key(&**k)));
            }
            (Value::Json(serde_json::Value::Object(map)), "Value", [Value::String(k)]) => {
                let v = map.get(&**k).cloned().map_or(Value::Null, Value::from_json);
                return match type_argument {
                    Some(ty) => self
                        .json_time(&v, ty, span)
                        .unwrap_or_else(|| self.cast(v, ty, span)),
                    None => Ok(v),
                };
            }
            _ => {}
        }
        Err(unknown(span, method, obj.type_name()))
    }

    fn string_method(
        &self,
        s: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        if let [rest @ .., last] = args
            && let Some(ignore_case) = ignores_case(last)
        {
            return compare_strings(s, method, rest, ignore_case, span);
        }
        let str_arg = |i: usize| -> Result<&str, EvalError> {
            match args.get(i) {
                Some(Value::String(a)) => Ok(a),
                Some(Value::Null) => Err(failed(
                    span,
                    format!("argument {} of `{method}` is null", i + 1),
                )),
                Some(other) => Err(bad_cast(
                    span,
                    format!(
                        "argument {} of `{method}` must be a string, not {}",
                        i + 1,
                        other.type_name()
                    ),
                )),
                None => Err(failed(
                    span,
                    format!("`{method}` needs {} argument(s)", i + 1),
                )),
            }
        };
        let int_arg = |i: usize| -> Result<usize, EvalError> {
            match args.get(i) {
                Some(Value::Int(n)) => usize::try_from(*n).map_err(|_| {
                    failed(
                        span,
                        format!("argument {} of `{method}` must not be negative", i + 1),
                    )
                }),
                Some(other) => Err(bad_cast(
                    span,
                    format!(
                        "argument {} of `{method}` must be an int, not {}",
                        i + 1,
                        other.type_name()
                    ),
                )),
                None => Err(failed(
                    span,
                    format!("`{method}` needs {} argument(s)", i + 1),
                )),
            }
        };
        let trim_set = || -> Result<Vec<char>, EvalError> {
            let mut set = Vec::new();
            for i in 0..args.len() {
                set.extend(str_arg(i)?.chars());
            }
            Ok(set)
        };
        let chars: Vec<char> = s.chars().collect();
        let n = args.len();
        match (method, n) {
            ("GetHashCode", 0) => Ok(Value::Int(objects::string_hash(s))),
            ("Contains", 1) => Ok(Value::Bool(s.contains(str_arg(0)?))),
            ("StartsWith", 1) => Ok(Value::Bool(s.starts_with(str_arg(0)?))),
            ("EndsWith", 1) => Ok(Value::Bool(s.ends_with(str_arg(0)?))),
            ("IndexOf", 1 | 2) => {
                let from = if n == 2 { int_arg(1)? } else { 0 };
                if from > chars.len() {
                    return Err(failed(
                        span,
                        format!(
                            "start index {from} is out of range (length {})",
                            chars.len()
                        ),
                    ));
                }
                let offset: usize = chars[..from].iter().map(|c| c.len_utf8()).sum();
                Ok(Value::Int(
                    s[offset..]
                        .find(str_arg(0)?)
                        .map_or(-1, |b| char_index(s, offset + b)),
                ))
            }
            ("Substring", 1 | 2) => {
                let start = int_arg(0)?;
                let len = if n == 2 {
                    int_arg(1)?
                } else {
                    chars.len().saturating_sub(start)
                };
                if start > chars.len() || start + len > chars.len() {
                    return Err(failed(
                        span,
                        format!(
                            "Substring({start}, {len}) is out of range for a string of length {}",
                            chars.len()
                        ),
                    ));
                }
                self.string(chars[start..start + len].iter().collect(), span)
            }
            ("Split", _) => {
                let mut seps: Vec<String> = Vec::new();
                for a in args {
                    match a {
                        Value::String(sep) => seps.push(sep.to_string()),
                        Value::Array(items) => {
                            for item in items {
                                if let Value::String(sep) = item {
                                    seps.push(sep.to_string());
                                }
                            }
                        }
                        other => {
                            return Err(bad_cast(
                                span,
                                format!(
                                    "a separator of `Split` must be a string or char, not {}",
                                    other.type_name()
                                ),
                            ));
                        }
                    }
                }
                seps.retain(|sep| !sep.is_empty());
                let mut parts = Vec::new();
                let mut rest = s;
                loop {
                    let next = if seps.is_empty() {
                        rest.char_indices()
                            .find(|(_, c)| c.is_whitespace())
                            .map(|(i, c)| (i, c.len_utf8()))
                    } else {
                        seps.iter()
                            .filter_map(|sep| rest.find(sep.as_str()).map(|i| (i, sep.len())))
                            .min()
                    };
                    let Some((at, len)) = next else { break };
                    parts.push(Value::string(&rest[..at]));
                    rest = &rest[at + len..];
                    if parts.len() > self.limits.max_array_len {
                        break;
                    }
                }
                parts.push(Value::string(rest));
                self.array(parts, span)
            }
            ("Replace", 2) => {
                let from = str_arg(0)?;
                if from.is_empty() {
                    return Err(failed(span, "the string to replace must not be empty"));
                }
                let to = match args.get(1) {
                    Some(Value::Null) => "",
                    _ => str_arg(1)?,
                };
                let count = s.matches(from).count();
                let len = s.len() - count * from.len() + count * to.len();
                if len > self.limits.max_string_len {
                    return Err(self.too_long(len, span));
                }
                self.string(s.replace(from, to), span)
            }
            // ASCII text (the usual header and variable) skips the Unicode tables.
            ("ToLower" | "ToLowerInvariant", 0) if s.is_ascii() => {
                self.string(s.to_ascii_lowercase(), span)
            }
            ("ToUpper" | "ToUpperInvariant", 0) if s.is_ascii() => {
                self.string(s.to_ascii_uppercase(), span)
            }
            ("ToLower" | "ToLowerInvariant", 0) => self.string(s.to_lowercase(), span),
            ("ToUpper" | "ToUpperInvariant", 0) => self.string(s.to_uppercase(), span),
            ("Trim", 0) => self.string(s.trim().to_owned(), span),
            ("TrimStart", 0) => self.string(s.trim_start().to_owned(), span),
            ("TrimEnd", 0) => self.string(s.trim_end().to_owned(), span),
            ("Trim", _) => {
                let set = trim_set()?;
                self.string(s.trim_matches(|c| set.contains(&c)).to_owned(), span)
            }
            ("TrimStart", _) => {
                let set = trim_set()?;
                self.string(s.trim_start_matches(|c| set.contains(&c)).to_owned(), span)
            }
            ("TrimEnd", _) => {
                let set = trim_set()?;
                self.string(s.trim_end_matches(|c| set.contains(&c)).to_owned(), span)
            }
            ("PadLeft" | "PadRight", 1 | 2) => {
                let width = int_arg(0)?;
                let pad = if n == 2 {
                    str_arg(1)?.chars().next().unwrap_or(' ')
                } else {
                    ' '
                };
                if width.saturating_mul(pad.len_utf8()) > self.limits.max_string_len {
                    return Err(self.too_long(width.saturating_mul(pad.len_utf8()), span));
                }
                let fill: String =
                    std::iter::repeat_n(pad, width.saturating_sub(chars.len())).collect();
                let out = if method == "PadLeft" {
                    format!("{fill}{s}")
                } else {
                    format!("{s}{fill}")
                };
                self.string(out, span)
            }
            _ => Err(unknown(span, method, "string")),
        }
    }

    fn static_call(
        &self,
        ty: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        if let Some(value) = self.time_static_call(ty, method, args, span) {
            return value;
        }
        if let Some(value) = self.text_static_call(ty, method, args, span) {
            return value;
        }
        let parse_failure = |text: &str, target: &str| EvalError::Parse {
            message: format!("`{text}` is not a valid {target}"),
            span,
        };
        match (ty, method, args) {
            ("string" | "String", "Equals", [a, b]) => Ok(Value::Bool(values_equal(a, b))),
            ("string" | "String", "Equals", [a, b, comparison])
                if ignores_case(comparison).is_some() =>
            {
                match (a, b) {
                    (Value::String(a), _) => compare_strings(
                        a,
                        "Equals",
                        std::slice::from_ref(b),
                        ignores_case(comparison) == Some(true),
                        span,
                    ),
                    (Value::Null, _) => Ok(Value::Bool(matches!(b, Value::Null))),
                    _ => Err(bad_cast(
                        span,
                        format!("`string.Equals` compares strings, not {}", a.type_name()),
                    )),
                }
            }
            ("string" | "String", "Compare", [a, b, rest @ ..]) if rest.len() <= 1 => {
                let ignore_case = match rest {
                    [] => false,
                    [Value::Bool(ignore_case)] => *ignore_case,
                    [other] => ignores_case(other).ok_or_else(|| {
                        bad_cast(span, format!("the third argument of `string.Compare` is a bool or a StringComparison, not {}", other.type_name()))
                    })?,
                    _ => false,
                };
                let text = |v: &Value| -> Result<Option<String>, EvalError> {
                    match v {
                        Value::Null => Ok(None),
                        Value::String(s) if ignore_case => Ok(Some(fold_case(s))),
                        Value::String(s) => Ok(Some(s.to_string())),
                        other => Err(bad_cast(
                            span,
                            format!(
                                "`string.Compare` compares strings, not {}",
                                other.type_name()
                            ),
                        )),
                    }
                };
                // Null sorts first, as in .NET; strings ordinally (no culture).
                Ok(Value::Int(match text(a)?.cmp(&text(b)?) {
                    std::cmp::Ordering::Less => -1,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 1,
                }))
            }
            ("string" | "String", "IsNullOrEmpty", [v]) => Ok(Value::Bool(match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                _ => false,
            })),
            ("string" | "String", "IsNullOrWhiteSpace", [v]) => Ok(Value::Bool(match v {
                Value::Null => true,
                Value::String(s) => s.trim().is_empty(),
                _ => false,
            })),
            ("string" | "String", "Join", [sep, rest @ ..]) if !rest.is_empty() => {
                let items = match rest {
                    [single] => array_items(single).unwrap_or_else(|| rest.to_vec()),
                    _ => rest.to_vec(),
                };
                let sep = sep.to_string();
                let mut out = String::new();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&sep);
                    }
                    out.push_str(&item.to_string());
                    if out.len() > self.limits.max_string_len {
                        break;
                    }
                }
                self.string(out, span)
            }
            ("string" | "String", "Concat", _) => {
                let items = match args {
                    [single] => array_items(single).unwrap_or_else(|| args.to_vec()),
                    _ => args.to_vec(),
                };
                let mut out = String::new();
                for item in &items {
                    out.push_str(&item.to_string());
                    if out.len() > self.limits.max_string_len {
                        break;
                    }
                }
                self.string(out, span)
            }
            ("string" | "String", "Format", [Value::String(format), rest @ ..]) => {
                let items = match rest {
                    [single @ Value::Array(_)] => array_items(single).unwrap_or_default(),
                    _ => rest.to_vec(),
                };
                self.format(format, &items, span)
            }
            ("int" | "long", "Parse", [Value::String(s)]) => {
                let target = if ty == "int" { "int" } else { "long" };
                let n = s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| parse_failure(s, target))?;
                if ty == "int" && i32::try_from(n).is_err() {
                    return Err(parse_failure(s, target));
                }
                Ok(Value::Int(n))
            }
            ("double" | "decimal", "Parse", [Value::String(s)]) => s
                .trim()
                .parse::<f64>()
                .map(Value::Double)
                .map_err(|_| parse_failure(s, ty)),
            ("bool", "Parse", [Value::String(s)]) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(parse_failure(s, "bool")),
            },
            (_, "Parse", [Value::Null]) => Err(failed(
                span,
                format!("the argument of `{ty}.Parse` is null"),
            )),
            ("JObject" | "JArray" | "JToken", "Parse", [Value::String(s)]) => {
                let json: serde_json::Value =
                    serde_json::from_str(s).map_err(|e| EvalError::Parse {
                        message: format!("the text is not valid JSON: {e}"),
                        span,
                    })?;
                let ok = match ty {
                    "JObject" => json.is_object(),
                    "JArray" => json.is_array(),
                    _ => true,
                };
                if !ok {
                    return Err(parse_failure(s, ty));
                }
                Ok(Value::Json(json))
            }
            ("Math", "Max" | "Min", [a, b]) => {
                let pick_first = match (a, b) {
                    (Value::Int(x), Value::Int(y)) => (method == "Max") == (x >= y),
                    _ => match (as_f64(a), as_f64(b)) {
                        (Some(x), Some(y)) => (method == "Max") == (x >= y),
                        _ => return Err(bad_cast(span, format!("`Math.{method}` takes numbers"))),
                    },
                };
                let v = if pick_first { a } else { b };
                // mixed int/double promote to double, as C# overload resolution does
                Ok(match (a, b, v) {
                    (Value::Int(_), Value::Int(_), v) => v.clone(),
                    (_, _, v) => as_f64(v).map_or(Value::Null, Value::Double),
                })
            }
            ("Math", "Abs", [Value::Int(i)]) => Ok(Value::Int(i.wrapping_abs())),
            ("Math", "Abs", [Value::Double(d)]) => Ok(Value::Double(d.abs())),
            ("Math", "Floor", [v]) => as_f64(v)
                .map(|d| Value::Double(d.floor()))
                .ok_or_else(|| bad_cast(span, "`Math.Floor` takes a number")),
            ("Math", "Ceiling", [v]) => as_f64(v)
                .map(|d| Value::Double(d.ceil()))
                .ok_or_else(|| bad_cast(span, "`Math.Ceiling` takes a number")),
            ("Math", "Round", [v]) => as_f64(v)
                .map(|d| Value::Double(d.round_ties_even()))
                .ok_or_else(|| bad_cast(span, "`Math.Round` takes a number")),
            ("Convert", "ToString", [v]) => self.string(v.to_string(), span),
            ("Convert", "ToInt32" | "ToInt64", [Value::String(s)]) => s
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| parse_failure(s, "int")),
            ("Convert", "ToInt32" | "ToInt64", [v]) => self.cast(v.clone(), "long", span),
            ("Convert", "ToDouble", [Value::String(s)]) => s
                .trim()
                .parse::<f64>()
                .map(Value::Double)
                .map_err(|_| parse_failure(s, "double")),
            ("Convert", "ToDouble", [v]) => self.cast(v.clone(), "double", span),
            ("Convert", "ToBoolean", [v]) => match v {
                Value::Bool(_) => Ok(v.clone()),
                Value::String(_) => self.static_call("bool", "Parse", args, span),
                Value::Int(i) => Ok(Value::Bool(*i != 0)),
                _ => Err(bad_cast(
                    span,
                    format!("cannot convert {} to bool", v.type_name()),
                )),
            },
            _ => Err(unknown(
                span,
                method,
                &format!("`{ty}` (with {} argument(s))", args.len()),
            )),
        }
    }

    /// `string.Format` with `{0}` placeholders (`{{` and `}}` escape braces).
    fn format(&self, format: &str, items: &[Value], span: Span) -> Result<Value, EvalError> {
        let invalid = || EvalError::Parse {
            message: format!("invalid format string `{format}`"),
            span,
        };
        let mut out = String::new();
        let mut chars = format.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    out.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    out.push('}');
                }
                '{' => {
                    let mut digits = String::new();
                    let mut item_format = None;
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(d) if d.is_ascii_digit() => digits.push(d),
                            // `{0:yyyy-MM-dd}`: a format for a DateTime, TimeSpan or Guid
                            Some(':') if !digits.is_empty() => {
                                let mut text = String::new();
                                loop {
                                    match chars.next() {
                                        Some('}') => break,
                                        Some('{') | None => return Err(invalid()),
                                        Some(c) => text.push(c),
                                    }
                                }
                                item_format = Some(text);
                                break;
                            }
                            _ => return Err(invalid()),
                        }
                    }
                    let index: usize = digits.parse().map_err(|_| invalid())?;
                    let item = items.get(index).ok_or_else(|| EvalError::Parse {
                        message: format!(
                            "format item {{{index}}} has no argument ({} given)",
                            items.len()
                        ),
                        span,
                    })?;
                    match &item_format {
                        Some(item_format) => {
                            out.push_str(&self.format_item(item, item_format, span)?);
                        }
                        None => out.push_str(&item.to_string()),
                    }
                    if out.len() > self.limits.max_string_len {
                        break;
                    }
                }
                '}' => return Err(invalid()),
                c => out.push(c),
            }
        }
        self.string(out, span)
    }
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;

/// `s.Equals(other, comparison)`, `StartsWith`, `EndsWith`, `Contains` and `IndexOf` with
/// a `StringComparison` (its `ignore_case`).
fn compare_strings(
    s: &str,
    method: &str,
    args: &[Value],
    ignore_case: bool,
    span: Span,
) -> Result<Value, EvalError> {
    if !matches!(
        method,
        "Equals" | "StartsWith" | "EndsWith" | "Contains" | "IndexOf"
    ) {
        return Err(failed(
            span,
            format!("`{method}` does not take a StringComparison"),
        ));
    }
    let other = match args {
        [Value::String(other)] => other,
        [Value::Null] if method == "Equals" => return Ok(Value::Bool(false)),
        [Value::Null] => {
            return Err(failed(
                span,
                format!("the value given to `{method}` is null"),
            ));
        }
        [other] => {
            return Err(bad_cast(
                span,
                format!(
                    "`{method}` compares with a string, not {}",
                    other.type_name()
                ),
            ));
        }
        _ => {
            return Err(failed(
                span,
                format!("`{method}` takes a string and a StringComparison"),
            ));
        }
    };
    let (folded_s, folded_other);
    let (s, other) = if ignore_case {
        folded_s = fold_case(s);
        folded_other = fold_case(other);
        (folded_s.as_str(), folded_other.as_str())
    } else {
        (s, &**other)
    };
    Ok(match method {
        "Equals" => Value::Bool(s == other),
        "StartsWith" => Value::Bool(s.starts_with(other)),
        "EndsWith" => Value::Bool(s.ends_with(other)),
        "Contains" => Value::Bool(s.contains(other)),
        _ => Value::Int(s.find(other).map_or(-1, |byte| char_index(s, byte))),
    })
}
