//! The lexer: source text to [`Token`]s, each with its [`Span`].

use std::fmt;

use crate::error::{ExprError, Span};

/// One token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// Where it is in the source.
    pub span: Span,
}

/// The kinds of token.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// An identifier that is not a keyword (`context`, `string`, `x`).
    Ident(String),
    /// A reserved word.
    Keyword(Keyword),
    /// An integer literal; `long` is set for a `L` suffix.
    Int {
        /// The value.
        value: i64,
        /// Whether it had an `L` suffix.
        long: bool,
    },
    /// A floating-point literal (`1.5`, `1.5d`, `2m`): `decimal` is kept as a double.
    Float(f64),
    /// A string literal, regular or verbatim, with its escapes resolved.
    Str(String),
    /// A character literal.
    Char(char),
    /// An interpolated string `$"...{expr}..."`.
    Interpolated(Vec<InterpolationPart>),
    /// An operator or punctuation.
    Punct(Punct),
    /// The end of the input (or of an interpolation hole).
    Eof,
}

/// One part of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum InterpolationPart {
    /// Literal text, with `{{`, `}}` and escapes resolved.
    Text(String),
    /// The tokens of one `{...}` hole, ending with [`TokenKind::Eof`].
    Hole(Vec<Token>),
}

/// Reserved words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keyword {
    /// `var`
    Var,
    /// `if`
    If,
    /// `else`
    Else,
    /// `return`
    Return,
    /// `true`
    True,
    /// `false`
    False,
    /// `null`
    Null,
    /// `new`
    New,
    /// `is`
    Is,
    /// `as`
    As,
    /// `foreach`
    Foreach,
    /// `in`
    In,
}

impl Keyword {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "var" => Self::Var,
            "if" => Self::If,
            "else" => Self::Else,
            "return" => Self::Return,
            "true" => Self::True,
            "false" => Self::False,
            "null" => Self::Null,
            "new" => Self::New,
            "is" => Self::Is,
            "as" => Self::As,
            "foreach" => Self::Foreach,
            "in" => Self::In,
            _ => return None,
        })
    }

    /// The keyword as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Var => "var",
            Self::If => "if",
            Self::Else => "else",
            Self::Return => "return",
            Self::True => "true",
            Self::False => "false",
            Self::Null => "null",
            Self::New => "new",
            Self::Is => "is",
            Self::As => "as",
            Self::Foreach => "foreach",
            Self::In => "in",
        }
    }
}

/// Operators and punctuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Punct {
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Question,
    Colon,
    QuestionQuestion,
    QuestionDot,
    Dot,
    Comma,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Assign,
    PlusAssign,
    MinusAssign,
    Arrow,
    Semicolon,
    /// `|`: `RegexOptions.IgnoreCase | RegexOptions.Multiline`.
    Pipe,
}

impl Punct {
    /// The operator as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Star => "*",
            Self::Slash => "/",
            Self::Percent => "%",
            Self::EqEq => "==",
            Self::NotEq => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::AndAnd => "&&",
            Self::OrOr => "||",
            Self::Bang => "!",
            Self::Question => "?",
            Self::Colon => ":",
            Self::QuestionQuestion => "??",
            Self::QuestionDot => "?.",
            Self::Dot => ".",
            Self::Comma => ",",
            Self::LParen => "(",
            Self::RParen => ")",
            Self::LBracket => "[",
            Self::RBracket => "]",
            Self::LBrace => "{",
            Self::RBrace => "}",
            Self::Assign => "=",
            Self::PlusAssign => "+=",
            Self::MinusAssign => "-=",
            Self::Arrow => "=>",
            Self::Semicolon => ";",
            Self::Pipe => "|",
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ident(name) => write!(f, "`{name}`"),
            Self::Keyword(k) => write!(f, "`{}`", k.as_str()),
            Self::Int { value, .. } => write!(f, "`{value}`"),
            Self::Float(value) => write!(f, "`{value}`"),
            Self::Str(_) => f.write_str("a string"),
            Self::Char(_) => f.write_str("a character"),
            Self::Interpolated(_) => f.write_str("an interpolated string"),
            Self::Punct(p) => write!(f, "`{}`", p.as_str()),
            Self::Eof => f.write_str("the end of the expression"),
        }
    }
}

/// Splits `source` into tokens, ending with one [`TokenKind::Eof`].
///
/// # Errors
///
/// An [`ExprError`] at the first character that starts no token, or at an unterminated
/// string, character or comment.
pub fn tokenize(source: &str) -> Result<Vec<Token>, ExprError> {
    let mut lexer = Lexer {
        src: source,
        pos: 0,
        line: 1,
        column: 1,
        holes: 0,
    };
    lexer.tokens(false)
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: u32,
    column: u32,
    /// Interpolated strings inside interpolation holes, around the current position.
    holes: usize,
}

/// Deepest nesting of interpolated strings inside interpolation holes.
pub const MAX_INTERPOLATION_NESTING: usize = 8;

impl Lexer<'_> {
    #[inline]
    fn peek(&self) -> Option<char> {
        match self.src.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => Some(char::from(b)),
            _ => self.src[self.pos..].chars().next(),
        }
    }

    #[inline]
    fn peek_at(&self, n: usize) -> Option<char> {
        let rest = &self.src.as_bytes()[self.pos..];
        match rest.get(..=n) {
            // Expressions are mostly ASCII: the `n`th byte is then the `n`th character.
            Some(ahead) if ahead.is_ascii() => Some(char::from(ahead[n])),
            _ => self.src[self.pos..].chars().nth(n),
        }
    }

    #[inline]
    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    /// Moves past `len` bytes of characters on the current line (no newline among them).
    fn advance_on_line(&mut self, len: usize) {
        let run = &self.src[self.pos..self.pos + len];
        let chars = if run.is_ascii() {
            len
        } else {
            run.chars().count()
        };
        self.column = self
            .column
            .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX));
        self.pos += len;
    }

    fn here(&self) -> Span {
        Span {
            start: self.pos,
            end: self.pos,
            line: self.line,
            column: self.column,
        }
    }

    fn finish(&self, mut span: Span) -> Span {
        span.end = self.pos;
        span
    }

    /// Lexes until the end of input, or (inside a hole) until the unmatched `}`.
    fn tokens(&mut self, in_hole: bool) -> Result<Vec<Token>, ExprError> {
        // Roughly one token per four bytes of source: few reallocations.
        let mut tokens = Vec::with_capacity(if in_hole { 4 } else { self.src.len() / 4 + 2 });
        let mut depth = 0usize;
        loop {
            self.skip_trivia()?;
            let start = self.here();
            let Some(c) = self.peek() else {
                if in_hole {
                    return Err(ExprError::new(
                        start,
                        "expected `}` to close the interpolation hole",
                    ));
                }
                tokens.push(Token {
                    kind: TokenKind::Eof,
                    span: start,
                });
                return Ok(tokens);
            };
            if in_hole && c == '}' {
                if depth == 0 {
                    tokens.push(Token {
                        kind: TokenKind::Eof,
                        span: start,
                    });
                    self.bump();
                    return Ok(tokens);
                }
                depth -= 1;
            }
            if in_hole && c == '{' {
                depth += 1;
            }
            let kind = self.token(c, start)?;
            tokens.push(Token {
                kind,
                span: self.finish(start),
            });
        }
    }

    fn skip_trivia(&mut self) -> Result<(), ExprError> {
        loop {
            match self.src.as_bytes().get(self.pos) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => {
                    self.bump();
                    continue;
                }
                Some(b'/') => {}
                Some(b) if b.is_ascii() => return Ok(()),
                None => return Ok(()),
                Some(_) => {}
            }
            match (self.peek(), self.peek_at(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.here();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => return Err(ExprError::new(start, "unterminated comment")),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn token(&mut self, c: char, start: Span) -> Result<TokenKind, ExprError> {
        if c.is_ascii_alphabetic() || c == '_' {
            return Ok(self.word());
        }
        if c.is_ascii_digit() {
            return self.number(start);
        }
        match (c, self.peek_at(1), self.peek_at(2)) {
            ('"', _, _) => {
                self.bump();
                return Ok(TokenKind::Str(self.string_body(start, false, false)?.0));
            }
            ('@', Some('"'), _) => {
                self.bump();
                self.bump();
                return Ok(TokenKind::Str(self.string_body(start, true, false)?.0));
            }
            ('$', Some('"'), _) => {
                self.bump();
                self.bump();
                return Ok(TokenKind::Interpolated(
                    self.string_body(start, false, true)?.1,
                ));
            }
            ('$', Some('@'), Some('"')) | ('@', Some('$'), Some('"')) => {
                self.bump();
                self.bump();
                self.bump();
                return Ok(TokenKind::Interpolated(
                    self.string_body(start, true, true)?.1,
                ));
            }
            ('\'', _, _) => return self.char_literal(start),
            _ => {}
        }
        let two = match (c, self.peek_at(1)) {
            ('=', Some('=')) => Some(Punct::EqEq),
            ('!', Some('=')) => Some(Punct::NotEq),
            ('<', Some('=')) => Some(Punct::Le),
            ('>', Some('=')) => Some(Punct::Ge),
            ('&', Some('&')) => Some(Punct::AndAnd),
            ('|', Some('|')) => Some(Punct::OrOr),
            ('?', Some('?')) => Some(Punct::QuestionQuestion),
            ('?', Some('.')) if !self.peek_at(2).is_some_and(|d| d.is_ascii_digit()) => {
                Some(Punct::QuestionDot)
            }
            ('=', Some('>')) => Some(Punct::Arrow),
            ('+', Some('=')) => Some(Punct::PlusAssign),
            ('-', Some('=')) => Some(Punct::MinusAssign),
            _ => None,
        };
        if let Some(p) = two {
            self.bump();
            self.bump();
            return Ok(TokenKind::Punct(p));
        }
        let one = match c {
            '+' => Punct::Plus,
            '-' => Punct::Minus,
            '*' => Punct::Star,
            '/' => Punct::Slash,
            '%' => Punct::Percent,
            '<' => Punct::Lt,
            '>' => Punct::Gt,
            '!' => Punct::Bang,
            '?' => Punct::Question,
            ':' => Punct::Colon,
            '.' => Punct::Dot,
            ',' => Punct::Comma,
            '(' => Punct::LParen,
            ')' => Punct::RParen,
            '[' => Punct::LBracket,
            ']' => Punct::RBracket,
            '{' => Punct::LBrace,
            '}' => Punct::RBrace,
            '=' => Punct::Assign,
            ';' => Punct::Semicolon,
            '|' => Punct::Pipe,
            other => {
                return Err(ExprError::new(
                    start,
                    format!("unexpected character `{other}`"),
                ));
            }
        };
        self.bump();
        Ok(TokenKind::Punct(one))
    }

    fn word(&mut self) -> TokenKind {
        let start = self.pos;
        let len = self.src.as_bytes()[start..]
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
            .unwrap_or(self.src.len() - start);
        self.advance_on_line(len);
        let word = &self.src[start..self.pos];
        Keyword::from_word(word)
            .map_or_else(|| TokenKind::Ident(word.to_owned()), TokenKind::Keyword)
    }

    fn number(&mut self, start: Span) -> Result<TokenKind, ExprError> {
        let from = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        let mut float = false;
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            float = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E'))
            && (self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
                || (matches!(self.peek_at(1), Some('+' | '-'))
                    && self.peek_at(2).is_some_and(|c| c.is_ascii_digit())))
        {
            float = true;
            self.bump();
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let text = &self.src[from..self.pos];
        let mut long = false;
        match self.peek() {
            Some('d' | 'D' | 'm' | 'M' | 'f' | 'F') => {
                self.bump();
                float = true;
            }
            Some('l' | 'L') if !float => {
                self.bump();
                long = true;
            }
            _ => {}
        }
        if self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ExprError::new(start, format!("malformed number `{text}`")));
        }
        if float {
            text.parse::<f64>()
                .map(TokenKind::Float)
                .map_err(|_| ExprError::new(start, format!("malformed number `{text}`")))
        } else {
            text.parse::<i64>()
                .map(|value| TokenKind::Int { value, long })
                .map_err(|_| ExprError::new(start, format!("integer `{text}` is too large")))
        }
    }

    fn escape(&mut self, start: Span) -> Result<char, ExprError> {
        let at = self.here();
        let Some(c) = self.bump() else {
            return Err(ExprError::new(start, "unterminated string"));
        };
        Ok(match c {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '0' => '\0',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'u' => {
                let mut code = 0u32;
                for _ in 0..4 {
                    let digit = self.peek().and_then(|d| d.to_digit(16));
                    let Some(digit) = digit else {
                        return Err(ExprError::new(at, "expected four hex digits after `\\u`"));
                    };
                    self.bump();
                    code = code * 16 + digit;
                }
                char::from_u32(code).ok_or_else(|| {
                    ExprError::new(at, format!("`\\u{code:04X}` is not a valid character"))
                })?
            }
            other => return Err(ExprError::new(at, format!("unknown escape `\\{other}`"))),
        })
    }

    /// Reads a string body after its opening quote; returns its text (plain strings) or
    /// its parts (interpolated strings).
    fn string_body(
        &mut self,
        start: Span,
        verbatim: bool,
        interpolated: bool,
    ) -> Result<(String, Vec<InterpolationPart>), ExprError> {
        let mut text = String::new();
        let mut parts = Vec::new();
        loop {
            // A run of ordinary characters is copied at once.
            let run = self.src.as_bytes()[self.pos..]
                .iter()
                .position(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'{' | b'}'))
                .unwrap_or(self.src.len() - self.pos);
            if run > 0 {
                text.push_str(&self.src[self.pos..self.pos + run]);
                self.advance_on_line(run);
                continue;
            }
            let Some(c) = self.bump() else {
                return Err(ExprError::new(start, "unterminated string"));
            };
            match c {
                '"' if verbatim && self.peek() == Some('"') => {
                    self.bump();
                    text.push('"');
                }
                '"' => break,
                '\\' if !verbatim => text.push(self.escape(start)?),
                '\n' if !verbatim => {
                    return Err(ExprError::new(start, "unterminated string"));
                }
                '{' if interpolated && self.peek() == Some('{') => {
                    self.bump();
                    text.push('{');
                }
                '}' if interpolated && self.peek() == Some('}') => {
                    self.bump();
                    text.push('}');
                }
                '{' if interpolated => {
                    if !text.is_empty() {
                        parts.push(InterpolationPart::Text(std::mem::take(&mut text)));
                    }
                    if self.holes >= MAX_INTERPOLATION_NESTING {
                        return Err(ExprError::new(
                            self.here(),
                            format!(
                                "interpolated strings are nested more than {MAX_INTERPOLATION_NESTING} deep"
                            ),
                        ));
                    }
                    self.holes += 1;
                    let hole = self.tokens(true);
                    self.holes -= 1;
                    parts.push(InterpolationPart::Hole(hole?));
                }
                '}' if interpolated => {
                    let mut at = self.here();
                    at.column -= 1;
                    return Err(ExprError::new(
                        at,
                        "a `}` in an interpolated string must be doubled",
                    ));
                }
                other => text.push(other),
            }
        }
        if interpolated && !text.is_empty() {
            parts.push(InterpolationPart::Text(std::mem::take(&mut text)));
        }
        Ok((text, parts))
    }

    fn char_literal(&mut self, start: Span) -> Result<TokenKind, ExprError> {
        self.bump();
        let c = match self.bump() {
            Some('\\') => self.escape(start)?,
            Some('\'') | None => return Err(ExprError::new(start, "empty character literal")),
            Some(c) => c,
        };
        if self.bump() != Some('\'') {
            return Err(ExprError::new(
                start,
                "expected `'` to close the character literal",
            ));
        }
        Ok(TokenKind::Char(c))
    }
}

#[cfg(test)]
#[path = "lexer_tests.rs"]
mod tests;
