//! Source positions and the two error types: [`ExprError`] (load time) and
//! [`EvalError`] (run time).

use std::fmt;

/// A range of the source: byte offsets plus the 1-based line and column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// 1-based line of the first character.
    pub line: u32,
    /// 1-based column (in characters) of the first character.
    pub column: u32,
}

impl Span {
    /// The span from the start of `self` to the end of `other`.
    #[must_use]
    pub fn to(self, other: Self) -> Self {
        Self {
            end: other.end.max(self.start),
            ..self
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// An expression that cannot be loaded: a syntax error or a name that is not available.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ExprError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What went wrong, saying what was expected.
    pub message: String,
}

impl ExprError {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        Self {
            line: span.line,
            column: span.column,
            message: message.into(),
        }
    }
}

/// An evaluation that failed; each carries the span of the node that failed. The gateway
/// reports these as APIM's `ExpressionValueEvaluationFailure`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A member, index or method was used on null.
    #[error("{span}: `{what}` is null")]
    NullReference {
        /// The source text of the null operand.
        what: String,
        /// Where.
        span: Span,
    },
    /// A cast, `is`-less conversion or operator got a value of the wrong type.
    #[error("{span}: {message}")]
    BadCast {
        /// What was attempted.
        message: String,
        /// Where.
        span: Span,
    },
    /// `int.Parse` and friends on text that does not parse.
    #[error("{span}: {message}")]
    Parse {
        /// What did not parse.
        message: String,
        /// Where.
        span: Span,
    },
    /// A member or method that the value (or the host) does not have.
    #[error("{span}: `{name}` is not a member of {on}")]
    UnknownMember {
        /// The member.
        name: String,
        /// What it was looked up on.
        on: String,
        /// Where.
        span: Span,
    },
    /// Integer division or remainder by zero.
    #[error("{span}: division by zero")]
    DivisionByZero {
        /// Where.
        span: Span,
    },
    /// The evaluation ran more steps than its [`Limits::max_steps`](crate::Limits).
    #[error("{span}: the expression exceeded its budget of {limit} steps")]
    BudgetExceeded {
        /// The budget.
        limit: u64,
        /// The node being evaluated when it ran out.
        span: Span,
    },
    /// A string or array grew past its [`Limits`](crate::Limits).
    #[error("{span}: {message}")]
    TooLarge {
        /// What grew too large.
        message: String,
        /// Where.
        span: Span,
    },
    /// Any other failure: a bad argument, an index out of range, an error from the host.
    #[error("{span}: {message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// Where.
        span: Span,
    },
}

impl EvalError {
    /// The span of the node that failed.
    #[must_use]
    pub fn span(&self) -> Span {
        match self {
            Self::NullReference { span, .. }
            | Self::BadCast { span, .. }
            | Self::Parse { span, .. }
            | Self::UnknownMember { span, .. }
            | Self::DivisionByZero { span }
            | Self::BudgetExceeded { span, .. }
            | Self::TooLarge { span, .. }
            | Self::Failed { span, .. } => *span,
        }
    }
}
