//! Load-time checks: every name must be `context`, a declared local, a lambda parameter
//! or one of [`STATIC_TYPES`]; the context is read-only; a block must return a value.

use crate::ast::{Argument, BinaryOp, Expr, ExprKind, InterpolatedPart, Literal, Stmt, StmtKind};
use crate::error::ExprError;
use crate::native::Pattern;

/// The static types an expression may name (`string.IsNullOrEmpty(...)`, `int.Parse(...)`).
/// Only types with members implemented are listed: naming another (`Regex`, `Encoding`,
/// `Uri`: not yet) is refused at load, never at request time.
pub const STATIC_TYPES: &[&str] = &[
    "string",
    "String",
    "int",
    "long",
    "double",
    "bool",
    "decimal",
    "Convert",
    "Math",
    "JObject",
    "JArray",
    "JToken",
    "DateTime",
    "DateTimeOffset",
    "TimeSpan",
    "Guid",
    "DayOfWeek",
    "DateTimeKind",
    "Encoding",
    "BitConverter",
    "WebUtility",
    "Uri",
    "Regex",
    "RegexOptions",
    "StringComparison",
    "Array",
    "MD5",
    "SHA1",
    "SHA256",
    "SHA384",
    "SHA512",
    "HMACSHA1",
    "HMACSHA256",
    "HMACSHA384",
    "HMACSHA512",
    "Formatting",
    "JsonConvert",
];

/// The static properties that exist (`string.Empty`, `Math.PI`), by type.
const STATIC_PROPERTIES: &[(&str, &[&str])] = &[
    ("string", &["Empty"]),
    ("String", &["Empty"]),
    ("StringComparison", crate::eval::STRING_COMPARISON_NAMES),
    ("int", &["MaxValue", "MinValue"]),
    ("long", &["MaxValue", "MinValue"]),
    ("Math", &["PI", "E"]),
    (
        "DateTime",
        &[
            "UtcNow",
            "Now",
            "Today",
            "MinValue",
            "MaxValue",
            "UnixEpoch",
        ],
    ),
    (
        "DateTimeOffset",
        &["UtcNow", "Now", "MinValue", "MaxValue", "UnixEpoch"],
    ),
    (
        "TimeSpan",
        &[
            "Zero",
            "MaxValue",
            "MinValue",
            "TicksPerMillisecond",
            "TicksPerSecond",
            "TicksPerMinute",
            "TicksPerHour",
            "TicksPerDay",
        ],
    ),
    ("Guid", &["Empty"]),
    (
        "DayOfWeek",
        &[
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ],
    ),
    ("DateTimeKind", &["Utc", "Local", "Unspecified"]),
    ("Encoding", &["UTF8", "ASCII", "Unicode"]),
    ("Formatting", &["None", "Indented"]),
    (
        "RegexOptions",
        &[
            "None",
            "IgnoreCase",
            "Multiline",
            "Singleline",
            "IgnorePatternWhitespace",
            "Compiled",
            "CultureInvariant",
        ],
    ),
];

/// The static methods that exist, by type: anything else is refused at load.
const STATIC_METHODS: &[(&str, &[&str])] = &[
    (
        "string",
        &[
            "IsNullOrEmpty",
            "IsNullOrWhiteSpace",
            "Join",
            "Concat",
            "Format",
            "Equals",
            "Compare",
        ],
    ),
    (
        "String",
        &[
            "IsNullOrEmpty",
            "IsNullOrWhiteSpace",
            "Join",
            "Concat",
            "Format",
            "Equals",
            "Compare",
        ],
    ),
    ("int", &["Parse", "TryParse"]),
    ("long", &["Parse", "TryParse"]),
    ("double", &["Parse", "TryParse"]),
    ("decimal", &["Parse", "TryParse"]),
    ("bool", &["Parse", "TryParse"]),
    (
        "Convert",
        &[
            "ToString",
            "ToInt32",
            "ToInt64",
            "ToDouble",
            "ToBoolean",
            "ToDateTime",
            "ToBase64String",
            "FromBase64String",
            "ToHexString",
            "FromHexString",
        ],
    ),
    ("BitConverter", &["ToString"]),
    (
        "WebUtility",
        &["UrlEncode", "UrlDecode", "HtmlEncode", "HtmlDecode"],
    ),
    ("Uri", &["EscapeDataString", "UnescapeDataString"]),
    (
        "Regex",
        &[
            "IsMatch", "Match", "Matches", "Replace", "Split", "Unescape",
        ],
    ),
    ("MD5", &["Create", "HashData"]),
    ("SHA1", &["Create", "HashData"]),
    ("SHA256", &["Create", "HashData"]),
    ("SHA384", &["Create", "HashData"]),
    ("SHA512", &["Create", "HashData"]),
    ("HMACSHA1", &["HashData"]),
    ("HMACSHA256", &["HashData"]),
    ("HMACSHA384", &["HashData"]),
    ("HMACSHA512", &["HashData"]),
    ("JsonConvert", &["SerializeObject", "DeserializeObject"]),
    ("Math", &["Max", "Min", "Abs", "Floor", "Ceiling", "Round"]),
    ("JObject", &["Parse"]),
    (
        "Array",
        &["Exists", "TrueForAll", "Find", "FindAll", "IndexOf"],
    ),
    ("JArray", &["Parse"]),
    ("JToken", &["Parse"]),
    (
        "DateTime",
        &[
            "Parse",
            "TryParse",
            "SpecifyKind",
            "DaysInMonth",
            "IsLeapYear",
            "Compare",
        ],
    ),
    (
        "DateTimeOffset",
        &[
            "Parse",
            "TryParse",
            "FromUnixTimeSeconds",
            "FromUnixTimeMilliseconds",
            "Compare",
        ],
    ),
    (
        "TimeSpan",
        &[
            "FromTicks",
            "FromMilliseconds",
            "FromSeconds",
            "FromMinutes",
            "FromHours",
            "FromDays",
            "Parse",
            "TryParse",
            "Compare",
        ],
    ),
    ("Guid", &["NewGuid", "Parse", "TryParse"]),
];

/// Whether `name` is a member of static type `ty` in `table`.
fn has_member(table: &[(&str, &[&str])], ty: &str, name: &str) -> bool {
    table
        .iter()
        .any(|(t, members)| *t == ty && members.contains(&name))
}

/// The types `new` may construct.
const NEW_TYPES: &[&str] = &[
    "Random",
    "JProperty",
    "JObject",
    "JArray",
    "DateTime",
    "TimeSpan",
    "Uri",
    "Regex",
    "HMACSHA1",
    "HMACSHA256",
    "HMACSHA384",
    "HMACSHA512",
    "SHA1Managed",
    "SHA256Managed",
    "SHA384Managed",
    "SHA512Managed",
];

/// The methods that take `out` arguments: `(static type, method)`, or `(None, method)`
/// for an instance method.
const OUT_METHODS: &[(Option<&str>, &str)] = &[
    (Some("int"), "TryParse"),
    (Some("long"), "TryParse"),
    (Some("double"), "TryParse"),
    (Some("decimal"), "TryParse"),
    (Some("bool"), "TryParse"),
    (Some("DateTime"), "TryParse"),
    (Some("DateTimeOffset"), "TryParse"),
    (Some("TimeSpan"), "TryParse"),
    (Some("Guid"), "TryParse"),
    (None, "TryParseJwt"),
    (None, "TryParseBasic"),
    (None, "TryGetValue"),
];

/// Checks a single expression.
///
/// # Errors
///
/// An [`ExprError`] at the first name that is not available.
pub fn check_expression(expr: &Expr) -> Result<(), ExprError> {
    check_expression_patterns(expr).map(drop)
}

/// [`check_expression`], giving the regular expressions it compiled (those whose pattern
/// and options are literals).
pub(crate) fn check_expression_patterns(expr: &Expr) -> Result<Vec<Pattern>, ExprError> {
    let mut checker = Checker {
        scopes: vec![Vec::new()],
        patterns: Vec::new(),
    };
    checker.expr(expr)?;
    Ok(checker.patterns)
}

/// Checks the statements of a block, including that every path returns a value.
///
/// # Errors
///
/// An [`ExprError`] at the first name that is not available, assignment to the context,
/// or a block that can finish without returning.
pub fn check_block(stmts: &[Stmt]) -> Result<(), ExprError> {
    check_block_patterns(stmts).map(drop)
}

/// [`check_block`], giving the regular expressions it compiled.
pub(crate) fn check_block_patterns(stmts: &[Stmt]) -> Result<Vec<Pattern>, ExprError> {
    let mut checker = Checker {
        scopes: vec![Vec::new()],
        patterns: Vec::new(),
    };
    for stmt in stmts {
        checker.stmt(stmt)?;
    }
    if !returns(stmts) {
        let span = stmts.last().map(|s| s.span).unwrap_or_default();
        let span = if span.line == 0 {
            crate::error::Span {
                line: 1,
                column: 1,
                ..span
            }
        } else {
            span
        };
        return Err(ExprError::new(
            span,
            "a multi-statement expression must return a value on every path (add a `return`)",
        ));
    }
    Ok(checker.patterns)
}

/// Whether the statements return on every path.
fn returns(stmts: &[Stmt]) -> bool {
    stmts.iter().any(|stmt| match &stmt.kind {
        StmtKind::Return(_) => true,
        StmtKind::Block(inner) => returns(inner),
        StmtKind::If {
            then,
            otherwise: Some(otherwise),
            ..
        } => returns(std::slice::from_ref(then)) && returns(std::slice::from_ref(otherwise)),
        _ => false,
    })
}

/// The root name of a member/index chain (`context` in `context.Variables["x"]`).
/// `name[a][b]…`: indexers all the way down to a name.
fn is_index_chain(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Name(_) => true,
        ExprKind::Index {
            object,
            null_conditional: false,
            ..
        } => is_index_chain(object),
        _ => false,
    }
}

fn root_name(expr: &Expr) -> Option<&str> {
    match &expr.kind {
        ExprKind::Name(name) => Some(name),
        ExprKind::ContextPath(_) => Some("context"),
        ExprKind::Member { object, .. }
        | ExprKind::Index { object, .. }
        | ExprKind::MethodCall { object, .. } => root_name(object),
        _ => None,
    }
}

struct Checker {
    scopes: Vec<Vec<String>>,
    /// The regular expressions compiled so far.
    patterns: Vec<Pattern>,
}

/// The value of a constant `RegexOptions` expression (`RegexOptions.IgnoreCase |
/// RegexOptions.Multiline`, `0`); `None` when it is not constant.
fn constant_options(expr: &Expr) -> Option<i64> {
    match &expr.kind {
        ExprKind::Member { object, name, .. } => match &object.kind {
            ExprKind::Name(ty) if ty == "RegexOptions" => crate::eval::REGEX_OPTIONS
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| *v),
            _ => None,
        },
        ExprKind::Binary {
            op: BinaryOp::BitOr,
            left,
            right,
        } => Some(constant_options(left)? | constant_options(right)?),
        ExprKind::Literal(Literal::Int(n)) => Some(*n),
        _ => None,
    }
}

impl Checker {
    fn is_local(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.iter().any(|n| n == name))
    }

    fn declare(&mut self, name: &str, stmt: &Stmt) -> Result<(), ExprError> {
        self.declare_at(name, stmt.span)
    }

    fn declare_at(&mut self, name: &str, span: crate::error::Span) -> Result<(), ExprError> {
        if self.is_local(name)
            || name == "context"
            || STATIC_TYPES.contains(&name)
            || crate::parser::NAMESPACE_ROOTS.contains(&name)
        {
            return Err(ExprError::new(
                span,
                format!("`{name}` is already declared"),
            ));
        }
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(name.to_owned());
        }
        Ok(())
    }

    fn scoped<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        self.scopes.push(Vec::new());
        let result = f(self);
        self.scopes.pop();
        result
    }

    fn stmt(&mut self, stmt: &Stmt) -> Result<(), ExprError> {
        match &stmt.kind {
            StmtKind::Var { name, value } => {
                self.expr(value)?;
                self.declare(name, stmt)
            }
            StmtKind::Assign { target, value } => {
                match (&target.kind, root_name(target)) {
                    (_, Some("context")) => {
                        return Err(ExprError::new(
                            target.span,
                            "cannot assign to `context`: the context is read-only in policy expressions",
                        ));
                    }
                    (ExprKind::Name(name), _) if self.is_local(name) => {}
                    // `body["a"]["b"] = value;` into a local JObject/JArray.
                    (ExprKind::Index { .. }, Some(name))
                        if self.is_local(name) && is_index_chain(target) =>
                    {
                        self.expr(target)?;
                    }
                    (ExprKind::Name(name), _) => {
                        return Err(ExprError::new(
                            target.span,
                            format!("`{name}` is not a declared variable (declare it with `var`)"),
                        ));
                    }
                    _ => {
                        return Err(ExprError::new(
                            target.span,
                            "only local variables can be assigned",
                        ));
                    }
                }
                self.expr(value)
            }
            StmtKind::If {
                condition,
                then,
                otherwise,
            } => {
                self.expr(condition)?;
                self.scoped(|c| c.stmt(then))?;
                if let Some(otherwise) = otherwise {
                    self.scoped(|c| c.stmt(otherwise))?;
                }
                Ok(())
            }
            StmtKind::Block(stmts) => self.scoped(|c| stmts.iter().try_for_each(|s| c.stmt(s))),
            StmtKind::Return(value) | StmtKind::Expr(value) => self.expr(value),
            StmtKind::Foreach {
                name,
                iterable,
                body,
            } => {
                self.expr(iterable)?;
                self.scoped(|c| {
                    c.declare(name, stmt)?;
                    c.stmt(body)
                })
            }
        }
    }

    /// A member of a static type (not of a local that happens to share its name) must be
    /// one Gatehouse implements: refused at load otherwise, never at request time.
    fn static_member(
        &self,
        object: &Expr,
        name: &str,
        table: &[(&str, &[&str])],
        span: crate::error::Span,
    ) -> Result<(), ExprError> {
        let ExprKind::Name(ty) = &object.kind else {
            return Ok(());
        };
        if self.is_local(ty) || !STATIC_TYPES.contains(&ty.as_str()) || has_member(table, ty, name)
        {
            return Ok(());
        }
        Err(ExprError::new(
            span,
            format!("`{ty}.{name}` is not available in policy expressions"),
        ))
    }

    /// A call with `out` arguments: only the methods of [`OUT_METHODS`]; `out var x`
    /// declares `x` in the enclosing scope, `out x` needs a declared `x`.
    fn out_call(
        &mut self,
        object: &Expr,
        method: &str,
        args: &[Argument],
        span: crate::error::Span,
    ) -> Result<(), ExprError> {
        let ty = match &object.kind {
            ExprKind::Name(ty) if !self.is_local(ty) && STATIC_TYPES.contains(&ty.as_str()) => {
                Some(ty.as_str())
            }
            _ => None,
        };
        if !OUT_METHODS.contains(&(ty, method)) {
            return Err(ExprError::new(
                span,
                format!("`{method}` does not take `out` arguments in policy expressions"),
            ));
        }
        for arg in args {
            match &arg.value.kind {
                ExprKind::Out {
                    name,
                    declare: true,
                } => self.declare_at(name, arg.value.span)?,
                ExprKind::Out {
                    name,
                    declare: false,
                } => {
                    if !self.is_local(name) {
                        return Err(ExprError::new(
                            arg.value.span,
                            format!("`{name}` is not a declared variable"),
                        ));
                    }
                }
                _ => self.expr(&arg.value)?,
            }
        }
        Ok(())
    }

    /// `Regex.IsMatch(input, "literal", ...)` and `new Regex("literal", ...)`: a pattern that
    /// is a literal (with options that are constant) is compiled now, once, and refused
    /// now when it is not valid.
    fn literal_pattern(
        &mut self,
        pattern: Option<&Argument>,
        options: Option<&Argument>,
    ) -> Result<(), ExprError> {
        let Some(pattern) = pattern else {
            return Ok(());
        };
        let ExprKind::Literal(Literal::Str(source)) = &pattern.value.kind else {
            return Ok(());
        };
        let options = match options {
            None => 0,
            Some(options) => match constant_options(&options.value) {
                Some(options) => options,
                None => return Ok(()),
            },
        };
        if self
            .patterns
            .iter()
            .any(|p| *p.source == **source && p.options == options)
        {
            return Ok(());
        }
        let compiled = Pattern::compile(source, options, crate::eval::LITERAL_PATTERN_SIZE_LIMIT)
            .map_err(|message| ExprError::new(pattern.value.span, message))?;
        self.patterns.push(compiled);
        Ok(())
    }

    fn args(&mut self, args: &[Argument]) -> Result<(), ExprError> {
        args.iter().try_for_each(|a| self.expr(&a.value))
    }

    fn expr(&mut self, expr: &Expr) -> Result<(), ExprError> {
        match &expr.kind {
            ExprKind::Literal(_) | ExprKind::ContextPath(_) => Ok(()),
            ExprKind::Name(name) => {
                if name == "context" || self.is_local(name) || STATIC_TYPES.contains(&name.as_str())
                {
                    Ok(())
                } else {
                    Err(ExprError::new(
                        expr.span,
                        format!("`{name}` is not available in policy expressions"),
                    ))
                }
            }
            ExprKind::Member { object, name, .. } => {
                self.static_member(object, name, STATIC_PROPERTIES, expr.span)?;
                self.expr(object)
            }
            ExprKind::Index { object, index, .. } => {
                self.expr(object)?;
                self.expr(index)
            }
            ExprKind::MethodCall {
                object,
                method,
                args,
                ..
            } => {
                self.static_member(object, method, STATIC_METHODS, expr.span)?;
                if let ExprKind::Name(ty) = &object.kind
                    && ty == "Regex"
                    && !self.is_local(ty)
                    && method != "Unescape"
                {
                    let options = crate::eval::regex_options_position(method);
                    self.literal_pattern(args.get(1), args.get(options))?;
                }
                self.expr(object)?;
                if args
                    .iter()
                    .any(|a| matches!(a.value.kind, ExprKind::Out { .. }))
                {
                    return self.out_call(object, method, args, expr.span);
                }
                if OUT_METHODS.iter().any(|(_, m)| *m == method) {
                    return Err(ExprError::new(
                        expr.span,
                        format!("`{method}` needs its `out` argument (`out var name`)"),
                    ));
                }
                self.args(args)
            }
            ExprKind::Call { function, .. } => Err(ExprError::new(
                expr.span,
                format!("`{function}` is not available in policy expressions"),
            )),
            ExprKind::Unary { operand, .. }
            | ExprKind::Cast { operand, .. }
            | ExprKind::Is { operand, .. }
            | ExprKind::As { operand, .. } => self.expr(operand),
            ExprKind::Binary { left, right, .. } => {
                self.expr(left)?;
                self.expr(right)
            }
            ExprKind::Conditional {
                condition,
                then,
                otherwise,
            } => {
                self.expr(condition)?;
                self.expr(then)?;
                self.expr(otherwise)
            }
            ExprKind::Lambda { params, body } => self.scoped(|c| {
                for param in params {
                    if c.is_local(param) || param == "context" {
                        return Err(ExprError::new(
                            expr.span,
                            format!("`{param}` is already declared"),
                        ));
                    }
                    if let Some(scope) = c.scopes.last_mut() {
                        scope.push(param.clone());
                    }
                }
                c.expr(body)
            }),
            ExprKind::New { type_name, args } => {
                if !NEW_TYPES.contains(&type_name.as_str()) {
                    return Err(ExprError::new(
                        expr.span,
                        format!("`new {type_name}` is not available in policy expressions"),
                    ));
                }
                if type_name == "Regex" {
                    self.literal_pattern(args.first(), args.get(1))?;
                }
                self.args(args)
            }
            ExprKind::NewArray(items) => items.iter().try_for_each(|e| self.expr(e)),
            ExprKind::Out { name, .. } => Err(ExprError::new(
                expr.span,
                format!("`out {name}` is only allowed as an argument of the `TryParse` methods"),
            )),
            ExprKind::Interpolated(parts) => parts.iter().try_for_each(|part| match part {
                InterpolatedPart::Text(_) => Ok(()),
                InterpolatedPart::Expr(e) => self.expr(e),
            }),
        }
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
