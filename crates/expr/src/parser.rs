//! A Pratt parser from tokens to the [`ast`](crate::ast).

use crate::ast::{
    Argument, BinaryOp, Expr, ExprKind, InterpolatedPart, Literal, Stmt, StmtKind, UnaryOp,
};
use crate::error::{ExprError, Span};
use crate::lexer::{InterpolationPart, Keyword, Punct, Token, TokenKind, tokenize};

/// The type names a cast, `is`, `as`, a generic argument or a typed declaration may name.
pub const TYPE_NAMES: &[&str] = &[
    "string",
    "int",
    "long",
    "double",
    "bool",
    "decimal",
    "JObject",
    "JArray",
    "JToken",
    "IResponse",
    "IRequest",
    "object",
    "DateTime",
    "DateTimeOffset",
    "TimeSpan",
    "Guid",
    "Uri",
    "Jwt",
    "BasicAuthCredentials",
];

/// Types a typed declaration may name whose values are other types' here (`byte[] b =
/// Encoding.UTF8.GetBytes(s);`): the declared type is not checked, as with `var`.
const DECLARATION_TYPES: &[&str] = &["byte", "char", "float", "short", "uint", "ulong"];

/// .NET's names of the C# keyword types (`(String)x` is `(string)x`).
fn type_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "String" => "string",
        "Int32" => "int",
        "Int64" => "long",
        "Double" => "double",
        "Boolean" => "bool",
        "Decimal" => "decimal",
        "Object" => "object",
        _ => return None,
    })
}

/// The namespace-qualified names of the static types (`System.Text.Encoding`), by the
/// short name the checker and evaluator know them by.
const QUALIFIED_NAMES: &[(&str, &str)] = &[
    ("System.String", "string"),
    ("System.Int32", "int"),
    ("System.Int64", "long"),
    ("System.Double", "double"),
    ("System.Decimal", "decimal"),
    ("System.Boolean", "bool"),
    ("System.Convert", "Convert"),
    ("System.Math", "Math"),
    ("System.DateTime", "DateTime"),
    ("System.DateTimeOffset", "DateTimeOffset"),
    ("System.TimeSpan", "TimeSpan"),
    ("System.Guid", "Guid"),
    ("System.DayOfWeek", "DayOfWeek"),
    ("System.DateTimeKind", "DateTimeKind"),
    ("System.Uri", "Uri"),
    ("System.StringComparison", "StringComparison"),
    ("System.Array", "Array"),
    ("System.BitConverter", "BitConverter"),
    ("System.Net.WebUtility", "WebUtility"),
    ("System.Text.Encoding", "Encoding"),
    ("System.Text.RegularExpressions.Regex", "Regex"),
    (
        "System.Text.RegularExpressions.RegexOptions",
        "RegexOptions",
    ),
    ("System.Security.Cryptography.MD5", "MD5"),
    ("System.Security.Cryptography.SHA1", "SHA1"),
    ("System.Security.Cryptography.SHA256", "SHA256"),
    ("System.Security.Cryptography.SHA384", "SHA384"),
    ("System.Security.Cryptography.SHA512", "SHA512"),
    ("System.Security.Cryptography.SHA1Managed", "SHA1Managed"),
    (
        "System.Security.Cryptography.SHA256Managed",
        "SHA256Managed",
    ),
    (
        "System.Security.Cryptography.SHA384Managed",
        "SHA384Managed",
    ),
    (
        "System.Security.Cryptography.SHA512Managed",
        "SHA512Managed",
    ),
    ("System.Security.Cryptography.HMACSHA1", "HMACSHA1"),
    ("System.Security.Cryptography.HMACSHA256", "HMACSHA256"),
    ("System.Security.Cryptography.HMACSHA384", "HMACSHA384"),
    ("System.Security.Cryptography.HMACSHA512", "HMACSHA512"),
    ("Newtonsoft.Json.Linq.JObject", "JObject"),
    ("Newtonsoft.Json.Linq.JArray", "JArray"),
    ("Newtonsoft.Json.Linq.JToken", "JToken"),
    ("Newtonsoft.Json.Formatting", "Formatting"),
    ("Newtonsoft.Json.JsonConvert", "JsonConvert"),
];

/// The first parts of the namespace-qualified type names (`System.Text.Encoding`): no
/// local may take these names.
pub const NAMESPACE_ROOTS: &[&str] = &["System", "Newtonsoft"];

/// Parses the body of `@( ... )`: a single expression.
///
/// # Errors
///
/// An [`ExprError`] with the line, column and what was expected.
pub fn parse_expression(source: &str) -> Result<Expr, ExprError> {
    parse_expression_tokens(tokenize(source)?)
}

/// [`parse_expression`] from the source's tokens ([`tokenize`]).
///
/// # Errors
///
/// As [`parse_expression`].
pub fn parse_expression_tokens(tokens: Vec<Token>) -> Result<Expr, ExprError> {
    let mut parser = Parser::new(tokens);
    let expr = parser.expr(0)?;
    parser.expect_eof()?;
    Ok(expr)
}

/// Parses the body of `@{ ... }`: statements (the braces themselves may be included).
///
/// # Errors
///
/// An [`ExprError`] with the line, column and what was expected.
pub fn parse_block(source: &str) -> Result<Vec<Stmt>, ExprError> {
    parse_block_tokens(tokenize(source)?)
}

/// [`parse_block`] from the source's tokens ([`tokenize`]).
///
/// # Errors
///
/// As [`parse_block`].
pub fn parse_block_tokens(tokens: Vec<Token>) -> Result<Vec<Stmt>, ExprError> {
    let mut parser = Parser::new(tokens);
    let mut stmts = Vec::new();
    while !matches!(parser.peek().kind, TokenKind::Eof) {
        stmts.push(parser.stmt()?);
    }
    Ok(stmts)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    prev: Span,
    /// Expressions and statements being parsed around the current one.
    depth: usize,
}

/// Deepest nesting of expressions and statements (parentheses, operators, blocks): a
/// hostile or absurd document fails to load instead of exhausting the stack.
pub const MAX_NESTING: usize = 128;

/// Binding powers, lowest first.
const BP_CONDITIONAL: u8 = 1;
const BP_COALESCE: u8 = 2;
const BP_RELATIONAL: u8 = 7;

fn binary_op(p: Punct) -> Option<(BinaryOp, u8)> {
    Some(match p {
        Punct::QuestionQuestion => (BinaryOp::Coalesce, BP_COALESCE),
        Punct::OrOr => (BinaryOp::Or, 3),
        Punct::AndAnd => (BinaryOp::And, 4),
        Punct::Pipe => (BinaryOp::BitOr, 5),
        Punct::EqEq => (BinaryOp::Eq, 6),
        Punct::NotEq => (BinaryOp::Ne, 6),
        Punct::Lt => (BinaryOp::Lt, BP_RELATIONAL),
        Punct::Le => (BinaryOp::Le, BP_RELATIONAL),
        Punct::Gt => (BinaryOp::Gt, BP_RELATIONAL),
        Punct::Ge => (BinaryOp::Ge, BP_RELATIONAL),
        Punct::Plus => (BinaryOp::Add, 8),
        Punct::Minus => (BinaryOp::Sub, 8),
        Punct::Star => (BinaryOp::Mul, 9),
        Punct::Slash => (BinaryOp::Div, 9),
        Punct::Percent => (BinaryOp::Rem, 9),
        _ => return None,
    })
}

impl Parser {
    fn new(tokens: Vec<Token>) -> Self {
        Self {
            tokens,
            pos: 0,
            prev: Span::default(),
            depth: 0,
        }
    }

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Token {
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[(self.pos + n).min(last)]
    }

    fn is_punct(&self, n: usize, p: Punct) -> bool {
        self.peek_at(n).kind == TokenKind::Punct(p)
    }

    fn bump(&mut self) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        let at = self.pos.min(last);
        let token = if matches!(self.tokens[at].kind, TokenKind::Eof) {
            self.tokens[at].clone()
        } else {
            // The parser never goes back: the token can be moved out, not cloned.
            self.pos += 1;
            let span = self.tokens[at].span;
            std::mem::replace(
                &mut self.tokens[at],
                Token {
                    kind: TokenKind::Eof,
                    span,
                },
            )
        };
        self.prev = token.span;
        token
    }

    fn eat(&mut self, p: Punct) -> bool {
        if self.is_punct(0, p) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn error_here(&self, expected: &str) -> ExprError {
        let token = self.peek();
        ExprError::new(
            token.span,
            format!("expected {expected}, found {}", token.kind),
        )
    }

    fn expect(&mut self, p: Punct, context: &str) -> Result<Span, ExprError> {
        self.expect_with(p, || context.to_owned())
    }

    /// [`Self::expect`] with the context written only when the token is missing.
    fn expect_with(
        &mut self,
        p: Punct,
        context: impl FnOnce() -> String,
    ) -> Result<Span, ExprError> {
        if self.is_punct(0, p) {
            Ok(self.bump().span)
        } else {
            Err(self.error_here(&format!("`{}` {}", p.as_str(), context())))
        }
    }

    fn expect_close(&mut self, p: Punct, what: &str, open: Span) -> Result<Span, ExprError> {
        self.expect_with(p, || format!("to close {what} opened at {open}"))
    }

    fn expect_eof(&mut self) -> Result<(), ExprError> {
        if matches!(self.peek().kind, TokenKind::Eof) {
            Ok(())
        } else {
            Err(self.error_here("the end of the expression"))
        }
    }

    fn ident(&mut self, what: &str) -> Result<(String, Span), ExprError> {
        if matches!(self.peek().kind, TokenKind::Ident(_)) {
            let token = self.bump();
            if let TokenKind::Ident(name) = token.kind {
                return Ok((name, token.span));
            }
        }
        Err(self.error_here(what))
    }

    fn type_name(&mut self) -> Result<String, ExprError> {
        match &self.peek().kind {
            TokenKind::Ident(name) if TYPE_NAMES.contains(&name.as_str()) => {
                let name = name.clone();
                self.bump();
                Ok(name)
            }
            TokenKind::Ident(name) if type_alias(name).is_some() => {
                let name = type_alias(name).unwrap_or_default().to_owned();
                self.bump();
                Ok(name)
            }
            _ => Err(self.error_here(&format!("a type name (one of {})", TYPE_NAMES.join(", ")))),
        }
    }

    fn node(&self, kind: ExprKind, start: Span) -> Expr {
        Expr {
            kind,
            span: start.to(self.prev),
        }
    }

    // ---- expressions ------------------------------------------------------------------

    /// Runs `parse` one level deeper, refusing to go past [`MAX_NESTING`].
    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.depth >= MAX_NESTING {
            return Err(ExprError::new(
                self.peek().span,
                format!("the expression is nested more than {MAX_NESTING} levels deep"),
            ));
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn expr(&mut self, min_bp: u8) -> Result<Expr, ExprError> {
        self.nested(|parser| parser.expr_at(min_bp))
    }

    fn expr_at(&mut self, min_bp: u8) -> Result<Expr, ExprError> {
        let mut left = self.unary()?;
        loop {
            let start = left.span;
            match self.peek().kind.clone() {
                TokenKind::Punct(Punct::Question) if min_bp <= BP_CONDITIONAL => {
                    let question = self.bump().span;
                    let then = self.expr(BP_CONDITIONAL)?;
                    self.expect_with(Punct::Colon, || format!("of the `?` at {question}"))?;
                    let otherwise = self.expr(BP_CONDITIONAL)?;
                    left = self.node(
                        ExprKind::Conditional {
                            condition: Box::new(left),
                            then: Box::new(then),
                            otherwise: Box::new(otherwise),
                        },
                        start,
                    );
                }
                TokenKind::Keyword(k @ (Keyword::Is | Keyword::As)) if min_bp <= BP_RELATIONAL => {
                    self.bump();
                    let type_name = self.type_name()?;
                    let operand = Box::new(left);
                    let kind = if k == Keyword::Is {
                        ExprKind::Is { operand, type_name }
                    } else {
                        ExprKind::As { operand, type_name }
                    };
                    left = self.node(kind, start);
                }
                TokenKind::Punct(p) => {
                    let Some((op, bp)) = binary_op(p) else { break };
                    if bp < min_bp {
                        break;
                    }
                    self.bump();
                    // `??` is right-associative, the others left-associative.
                    let right = if op == BinaryOp::Coalesce {
                        self.expr(bp)?
                    } else {
                        self.expr(bp + 1)?
                    };
                    left = self.node(
                        ExprKind::Binary {
                            op,
                            left: Box::new(left),
                            right: Box::new(right),
                        },
                        start,
                    );
                }
                _ => break,
            }
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, ExprError> {
        self.nested(Self::unary_at)
    }

    fn unary_at(&mut self) -> Result<Expr, ExprError> {
        let start = self.peek().span;
        let op = match self.peek().kind {
            TokenKind::Punct(Punct::Bang) => Some(UnaryOp::Not),
            TokenKind::Punct(Punct::Minus) => Some(UnaryOp::Neg),
            TokenKind::Punct(Punct::Plus) => Some(UnaryOp::Plus),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let operand = self.unary()?;
            return Ok(self.node(
                ExprKind::Unary {
                    op,
                    operand: Box::new(operand),
                },
                start,
            ));
        }
        if self.is_cast() {
            self.bump();
            let type_name = self.type_name()?;
            self.bump();
            let operand = self.unary()?;
            return Ok(self.node(
                ExprKind::Cast {
                    type_name,
                    operand: Box::new(operand),
                },
                start,
            ));
        }
        let primary = self.primary()?;
        self.postfix(primary)
    }

    /// `(` type `)` is a cast: the type names are a fixed list, so no lookahead further.
    fn is_cast(&self) -> bool {
        self.is_punct(0, Punct::LParen)
            && matches!(&self.peek_at(1).kind, TokenKind::Ident(n) if TYPE_NAMES.contains(&n.as_str()) || type_alias(n).is_some())
            && self.is_punct(2, Punct::RParen)
    }

    /// `(a, b) =>` or `() =>`: returns the number of tokens up to the arrow.
    fn paren_lambda_len(&self) -> Option<usize> {
        if !self.is_punct(0, Punct::LParen) {
            return None;
        }
        let mut n = 1;
        if !self.is_punct(n, Punct::RParen) {
            loop {
                if !matches!(self.peek_at(n).kind, TokenKind::Ident(_)) {
                    return None;
                }
                n += 1;
                if self.is_punct(n, Punct::Comma) {
                    n += 1;
                } else {
                    break;
                }
            }
        }
        (self.is_punct(n, Punct::RParen) && self.is_punct(n + 1, Punct::Arrow)).then_some(n + 2)
    }

    fn lambda(&mut self, params: Vec<String>, start: Span) -> Result<Expr, ExprError> {
        let body = self.expr(0)?;
        Ok(self.node(
            ExprKind::Lambda {
                params,
                body: Box::new(body),
            },
            start,
        ))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let start = self.peek().span;
        let literal = match &self.peek().kind {
            TokenKind::Int { value, .. } => Some(Literal::Int(*value)),
            TokenKind::Float(v) => Some(Literal::Float(*v)),
            TokenKind::Str(s) => Some(Literal::Str(std::sync::Arc::from(s.as_str()))),
            TokenKind::Char(c) => Some(Literal::Char(*c)),
            TokenKind::Keyword(Keyword::True) => Some(Literal::Bool(true)),
            TokenKind::Keyword(Keyword::False) => Some(Literal::Bool(false)),
            TokenKind::Keyword(Keyword::Null) => Some(Literal::Null),
            _ => None,
        };
        if let Some(literal) = literal {
            self.bump();
            return Ok(self.node(ExprKind::Literal(literal), start));
        }
        match self.peek().kind {
            TokenKind::Ident(_) => {
                let TokenKind::Ident(name) = self.bump().kind else {
                    return Err(self.error_here("an expression"));
                };
                if let Some(short) = self.qualified_name(&name) {
                    return Ok(self.node(ExprKind::Name(short.to_owned()), start));
                }
                if self.eat(Punct::Arrow) {
                    return self.lambda(vec![name], start);
                }
                if self.is_punct(0, Punct::LParen) {
                    let args = self.args(|| format!("the call of `{name}`"))?;
                    return Ok(self.node(
                        ExprKind::Call {
                            function: name,
                            args,
                        },
                        start,
                    ));
                }
                Ok(self.node(ExprKind::Name(name), start))
            }
            TokenKind::Interpolated(_) => {
                let TokenKind::Interpolated(parts) = self.bump().kind else {
                    return Err(self.error_here("an expression"));
                };
                let mut out = Vec::with_capacity(parts.len());
                for part in parts {
                    match part {
                        InterpolationPart::Text(text) => out.push(InterpolatedPart::Text(text)),
                        InterpolationPart::Hole(tokens) => {
                            let mut sub = Self::new(tokens);
                            sub.depth = self.depth;
                            if matches!(sub.peek().kind, TokenKind::Eof) {
                                return Err(
                                    sub.error_here("an expression in the interpolation hole")
                                );
                            }
                            let expr = sub.expr(0)?;
                            if !matches!(sub.peek().kind, TokenKind::Eof) {
                                return Err(sub.error_here("`}` to close the interpolation hole"));
                            }
                            out.push(InterpolatedPart::Expr(expr));
                        }
                    }
                }
                Ok(self.node(ExprKind::Interpolated(out), start))
            }
            TokenKind::Punct(Punct::LParen) => {
                if let Some(len) = self.paren_lambda_len() {
                    let mut params = Vec::new();
                    for _ in 0..len {
                        if let TokenKind::Ident(name) = self.bump().kind {
                            params.push(name);
                        }
                    }
                    return self.lambda(params, start);
                }
                self.bump();
                let inner = self.expr(0)?;
                self.expect_close(Punct::RParen, "the parenthesis", start)?;
                Ok(Expr {
                    kind: inner.kind,
                    span: start.to(self.prev),
                })
            }
            TokenKind::Keyword(Keyword::New) => self.new_expr(start),
            _ => Err(self.error_here("an expression")),
        }
    }

    /// After `first` (`System`): the rest of a namespace-qualified type name
    /// (`.Text.Encoding`), consumed, and the short name it stands for. `None` (nothing
    /// consumed) when the tokens do not spell one of [`QUALIFIED_NAMES`].
    fn qualified_name(&mut self, first: &str) -> Option<&'static str> {
        let (tokens, short) = self.qualified_name_at(first, 0)?;
        for _ in 0..tokens {
            self.bump();
        }
        Some(short)
    }

    /// The longest namespace-qualified type name `first.A.B…` whose `.A.B…` starts `at`
    /// tokens ahead: how many tokens that rest spans, and the short name. Consumes
    /// nothing.
    fn qualified_name_at(&self, first: &str, at: usize) -> Option<(usize, &'static str)> {
        if !NAMESPACE_ROOTS.contains(&first) {
            return None;
        }
        let mut full = first.to_owned();
        let mut found = None;
        let mut n = 0;
        while self.is_punct(at + n, Punct::Dot) {
            let TokenKind::Ident(part) = &self.peek_at(at + n + 1).kind else {
                break;
            };
            full.push('.');
            full.push_str(part);
            n += 2;
            if let Some((_, short)) = QUALIFIED_NAMES.iter().find(|(q, _)| *q == full) {
                found = Some((n, *short));
            }
        }
        found
    }

    fn new_expr(&mut self, start: Span) -> Result<Expr, ExprError> {
        self.bump();
        if self.is_punct(0, Punct::LBracket) {
            return self.array_initializer(start);
        }
        let type_name = match &self.peek().kind {
            TokenKind::Ident(name) => name.clone(),
            _ => return Err(self.error_here("a type name after `new`")),
        };
        self.bump();
        let type_name = self
            .qualified_name(&type_name)
            .map_or(type_name, str::to_owned);
        if self.is_punct(0, Punct::LBracket) {
            return self.array_initializer(start);
        }
        let mut args = if self.is_punct(0, Punct::LParen) {
            self.args(|| format!("`new {type_name}`"))?
        } else if self.is_punct(0, Punct::LBrace) {
            Vec::new()
        } else {
            return Err(self.error_here(&format!("`(` after `new {type_name}`")));
        };
        if self.is_punct(0, Punct::LBrace) {
            let key = self.key_initializer(&type_name, !args.is_empty())?;
            args.push(Argument {
                name: None,
                value: key,
            });
        }
        Ok(self.node(ExprKind::New { type_name, args }, start))
    }

    /// `new HMACSHA256 { Key = bytes }`, as `new HMACSHA256(bytes)`: the one object
    /// initializer real policies write (a keyed hash's `Key`); others are refused.
    #[inline(never)]
    fn key_initializer(&mut self, type_name: &str, has_args: bool) -> Result<Expr, ExprError> {
        let open = self.expect(Punct::LBrace, "")?;
        let keyed = type_name.starts_with("HMAC") && !has_args;
        let is_key = matches!(&self.peek().kind, TokenKind::Ident(name) if name == "Key")
            && self.is_punct(1, Punct::Assign);
        if !keyed || !is_key {
            return Err(ExprError::new(
                open,
                format!(
                    "object and collection initializers are not supported (`new {type_name} {{ ... }}`); the one supported is `new HMACSHA256 {{ Key = bytes }}` (and the other HMAC types)"
                ),
            ));
        }
        self.bump();
        self.bump();
        let key = self.expr(0)?;
        self.eat(Punct::Comma);
        self.expect_close(Punct::RBrace, "the object initializer", open)?;
        Ok(key)
    }

    fn array_initializer(&mut self, start: Span) -> Result<Expr, ExprError> {
        let open = self.expect(Punct::LBracket, "")?;
        self.expect_close(Punct::RBracket, "the array type", open)?;
        let brace = self.expect(Punct::LBrace, "to start the array's elements")?;
        let mut items = Vec::new();
        while !self.is_punct(0, Punct::RBrace) {
            items.push(self.expr(0)?);
            if !self.eat(Punct::Comma) {
                break;
            }
        }
        self.expect_close(Punct::RBrace, "the array's elements", brace)?;
        Ok(self.node(ExprKind::NewArray(items), start))
    }

    fn args(&mut self, what: impl FnOnce() -> String) -> Result<Vec<Argument>, ExprError> {
        let open = self.expect(Punct::LParen, "")?;
        let mut args = Vec::new();
        if !self.is_punct(0, Punct::RParen) {
            loop {
                let name = match &self.peek().kind {
                    TokenKind::Ident(n) if self.is_punct(1, Punct::Colon) => Some(n.clone()),
                    _ => None,
                };
                if name.is_some() {
                    self.bump();
                    self.bump();
                }
                let value = if matches!(&self.peek().kind, TokenKind::Ident(out) if out == "out") {
                    self.out_argument()?
                } else {
                    self.expr(0)?
                };
                args.push(Argument { name, value });
                if !self.eat(Punct::Comma) {
                    break;
                }
            }
        }
        self.expect_with(Punct::RParen, || {
            format!("to close {} opened at {open}", what())
        })?;
        Ok(args)
    }

    /// `out var name`, `out int name` or `out name`.
    fn out_argument(&mut self) -> Result<Expr, ExprError> {
        let start = self.bump().span;
        let declare = match &self.peek().kind {
            TokenKind::Keyword(Keyword::Var) => true,
            TokenKind::Ident(ty)
                if TYPE_NAMES.contains(&ty.as_str())
                    && matches!(self.peek_at(1).kind, TokenKind::Ident(_)) =>
            {
                true
            }
            _ => false,
        };
        if declare {
            self.bump();
        }
        let (name, _) = self.ident("the name of the `out` variable")?;
        Ok(self.node(ExprKind::Out { name, declare }, start))
    }

    fn generic_argument(&mut self) -> Result<Option<String>, ExprError> {
        let generic = self.is_punct(0, Punct::Lt)
            && matches!(self.peek_at(1).kind, TokenKind::Ident(_))
            && self.is_punct(2, Punct::Gt)
            && self.is_punct(3, Punct::LParen);
        if !generic {
            return Ok(None);
        }
        self.bump();
        let name = self.type_name()?;
        self.bump();
        Ok(Some(name))
    }

    fn postfix(&mut self, mut expr: Expr) -> Result<Expr, ExprError> {
        loop {
            let start = expr.span;
            let null_conditional = self.is_punct(0, Punct::QuestionDot);
            if null_conditional || self.is_punct(0, Punct::Dot) {
                self.bump();
                let (name, _) = self.ident("a member name")?;
                let type_argument = self.generic_argument()?;
                if self.is_punct(0, Punct::LParen) {
                    let args = self.args(|| format!("the call of `{name}`"))?;
                    expr = self.node(
                        ExprKind::MethodCall {
                            object: Box::new(expr),
                            method: name,
                            type_argument,
                            args,
                            null_conditional,
                        },
                        start,
                    );
                } else if let Some(path) = context_path(&expr, &name, null_conditional) {
                    expr = self.node(ExprKind::ContextPath(path), start);
                } else {
                    expr = self.node(
                        ExprKind::Member {
                            object: Box::new(expr),
                            name,
                            null_conditional,
                        },
                        start,
                    );
                }
                continue;
            }
            let null_index = self.is_punct(0, Punct::Question) && self.is_punct(1, Punct::LBracket);
            if null_index || self.is_punct(0, Punct::LBracket) {
                if null_index {
                    self.bump();
                }
                let open = self.bump().span;
                let index = self.expr(0)?;
                self.expect_close(Punct::RBracket, "the index", open)?;
                expr = self.node(
                    ExprKind::Index {
                        object: Box::new(expr),
                        index: Box::new(index),
                        null_conditional: null_index,
                    },
                    start,
                );
                continue;
            }
            if self.is_punct(0, Punct::LParen) {
                return Err(ExprError::new(
                    self.peek().span,
                    "only methods can be called",
                ));
            }
            return Ok(expr);
        }
    }

    // ---- statements -------------------------------------------------------------------

    fn stmt(&mut self) -> Result<Stmt, ExprError> {
        self.nested(Self::stmt_at)
    }

    fn stmt_at(&mut self) -> Result<Stmt, ExprError> {
        let start = self.peek().span;
        let kind = match self.peek().kind.clone() {
            TokenKind::Punct(Punct::LBrace) => {
                self.bump();
                let mut stmts = Vec::new();
                while !self.is_punct(0, Punct::RBrace) {
                    if matches!(self.peek().kind, TokenKind::Eof) {
                        return Err(
                            self.error_here(&format!("`}}` to close the block opened at {start}"))
                        );
                    }
                    stmts.push(self.stmt()?);
                }
                self.bump();
                StmtKind::Block(stmts)
            }
            TokenKind::Keyword(Keyword::Var) => self.declaration()?,
            // `using (var x = e) body`: `x` is declared for the body (nothing to dispose)
            TokenKind::Ident(using) if using == "using" && self.is_punct(1, Punct::LParen) => {
                self.using_statement()?
            }
            TokenKind::Ident(_) if let Some(type_len) = self.typed_declaration_ahead() => {
                self.typed_declaration(type_len)?
            }
            TokenKind::Keyword(Keyword::If) => {
                self.bump();
                let open = self.expect(Punct::LParen, "after `if`")?;
                let condition = self.expr(0)?;
                self.expect_close(Punct::RParen, "the condition of `if`", open)?;
                let then = Box::new(self.stmt()?);
                let otherwise = if self.peek().kind == TokenKind::Keyword(Keyword::Else) {
                    self.bump();
                    Some(Box::new(self.stmt()?))
                } else {
                    None
                };
                StmtKind::If {
                    condition,
                    then,
                    otherwise,
                }
            }
            TokenKind::Keyword(Keyword::Return) => {
                self.bump();
                let value = self.expr(0)?;
                self.expect(Punct::Semicolon, "after the `return` statement")?;
                StmtKind::Return(value)
            }
            TokenKind::Keyword(Keyword::Foreach) => {
                self.bump();
                let open = self.expect(Punct::LParen, "after `foreach`")?;
                if self.peek().kind == TokenKind::Keyword(Keyword::Var) {
                    self.bump();
                } else {
                    self.type_name()?;
                }
                let (name, _) = self.ident("the loop variable's name")?;
                if self.peek().kind != TokenKind::Keyword(Keyword::In) {
                    return Err(self.error_here("`in`"));
                }
                self.bump();
                let iterable = self.expr(0)?;
                self.expect_close(Punct::RParen, "`foreach`", open)?;
                let body = Box::new(self.stmt()?);
                StmtKind::Foreach {
                    name,
                    iterable,
                    body,
                }
            }
            _ => {
                let target = self.expr(0)?;
                let kind = if self.eat(Punct::Assign) {
                    let value = self.expr(0)?;
                    StmtKind::Assign { target, value }
                } else if self.is_punct(0, Punct::PlusAssign)
                    || self.is_punct(0, Punct::MinusAssign)
                {
                    let op = if self.bump().kind == TokenKind::Punct(Punct::PlusAssign) {
                        BinaryOp::Add
                    } else {
                        BinaryOp::Sub
                    };
                    let right = self.expr(0)?;
                    let span = target.span.to(right.span);
                    let value = Expr {
                        kind: ExprKind::Binary {
                            op,
                            left: Box::new(target.clone()),
                            right: Box::new(right),
                        },
                        span,
                    };
                    StmtKind::Assign { target, value }
                } else {
                    StmtKind::Expr(target)
                };
                self.expect(Punct::Semicolon, "after the statement")?;
                kind
            }
        };
        Ok(Stmt {
            kind,
            span: start.to(self.prev),
        })
    }

    /// `using (var x = e) body`, as `{ var x = e; body }`.
    #[inline(never)]
    fn using_statement(&mut self) -> Result<StmtKind, ExprError> {
        self.bump();
        let open = self.expect(Punct::LParen, "after `using`")?;
        let declared = self.peek().span;
        if self.peek().kind == TokenKind::Keyword(Keyword::Var) {
            self.bump();
        } else {
            self.type_name()?;
        }
        let (name, _) = self.ident("a variable name")?;
        self.expect_with(Punct::Assign, || format!("to initialise `{name}`"))?;
        let value = self.expr(0)?;
        self.expect_close(Punct::RParen, "`using`", open)?;
        let declaration = Stmt {
            kind: StmtKind::Var { name, value },
            span: declared.to(self.prev),
        };
        let body = self.stmt()?;
        Ok(StmtKind::Block(vec![declaration, body]))
    }

    /// `T name = e;`, `T name;`, `T[] name = e;` or `T[] name;` ahead: the number of
    /// tokens `T` spans. `T` is a type of the language (`string`, `HMACSHA256`, `String`,
    /// `byte`) or a namespace-qualified one (`System.Security.Cryptography.HMACSHA256`).
    fn typed_declaration_ahead(&self) -> Option<usize> {
        let TokenKind::Ident(first) = &self.peek().kind else {
            return None;
        };
        let type_len = if NAMESPACE_ROOTS.contains(&first.as_str()) {
            1 + self.qualified_name_at(first, 1)?.0
        } else if TYPE_NAMES.contains(&first.as_str())
            || DECLARATION_TYPES.contains(&first.as_str())
            || type_alias(first).is_some()
            || crate::check::STATIC_TYPES.contains(&first.as_str())
        {
            1
        } else {
            return None;
        };
        let at = if self.is_punct(type_len, Punct::LBracket)
            && self.is_punct(type_len + 1, Punct::RBracket)
        {
            type_len + 2
        } else {
            type_len
        };
        (matches!(self.peek_at(at).kind, TokenKind::Ident(_))
            && (self.is_punct(at + 1, Punct::Assign) || self.is_punct(at + 1, Punct::Semicolon)))
        .then_some(type_len)
    }

    /// A typed declaration ([`Self::typed_declaration_ahead`], whose type spans
    /// `type_len` tokens); without a value, the variable is null (`string[] values;`
    /// before `TryGetValue(..., out values)`). The type is not checked, as with `var`.
    #[inline(never)]
    fn typed_declaration(&mut self, type_len: usize) -> Result<StmtKind, ExprError> {
        for _ in 0..type_len {
            self.bump();
        }
        if self.eat(Punct::LBracket) {
            self.bump();
        }
        let (name, at) = self.ident("a variable name")?;
        let value = if self.eat(Punct::Assign) {
            self.expr(0)?
        } else {
            Expr {
                kind: ExprKind::Literal(Literal::Null),
                span: at,
            }
        };
        self.expect(Punct::Semicolon, "after the declaration")?;
        Ok(StmtKind::Var { name, value })
    }

    fn declaration(&mut self) -> Result<StmtKind, ExprError> {
        self.bump();
        let (name, _) = self.ident("a variable name")?;
        self.expect_with(Punct::Assign, || format!("to initialise `{name}`"))?;
        let value = self.expr(0)?;
        self.expect(Punct::Semicolon, "after the declaration")?;
        Ok(StmtKind::Var { name, value })
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;

/// `context.name` or `context.A.B….name` (no `?.`) as one path: `context` cannot be
/// redeclared, so the name always means the host's context.
fn context_path(object: &Expr, name: &str, null_conditional: bool) -> Option<std::sync::Arc<str>> {
    if null_conditional {
        return None;
    }
    match &object.kind {
        ExprKind::Name(root) if root == "context" => Some(joined("context", name)),
        ExprKind::ContextPath(path) => Some(joined(path, name)),
        _ => None,
    }
}

/// `parent.name`, without the formatting machinery (paths are built per member).
fn joined(parent: &str, name: &str) -> std::sync::Arc<str> {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    path.push('.');
    path.push_str(name);
    path.into()
}
