//! The typed syntax tree; every node carries its [`Span`].

use crate::error::Span;

/// An expression node.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is.
    pub span: Span,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer (`int` or `long`).
    Int(i64),
    /// A floating-point number (`double` or `decimal`).
    Float(f64),
    /// A string (shared: evaluating the literal does not copy it).
    Str(std::sync::Arc<str>),
    /// A character, evaluated as a one-character string.
    Char(char),
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `!`
    Not,
    /// `-`
    Neg,
    /// `+`
    Plus,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Coalesce,
    /// `|`: bitwise or of integers (`RegexOptions`), non-short-circuit or of bools.
    BitOr,
}

impl BinaryOp {
    /// The operator as written.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Rem => "%",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::And => "&&",
            Self::Or => "||",
            Self::Coalesce => "??",
            Self::BitOr => "|",
        }
    }
}

/// One argument of a call; a named argument (`preserveContent: true`) keeps its name but
/// is passed by position.
#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// The name of a named argument.
    pub name: Option<String>,
    /// The value.
    pub value: Expr,
}

/// One part of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum InterpolatedPart {
    /// Literal text.
    Text(String),
    /// A `{...}` hole.
    Expr(Expr),
}

/// The kinds of expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Literal(Literal),
    /// A name: `context`, a local, a lambda parameter or a static type.
    Name(String),
    /// `context.A.B…`: member accesses from `context` without `?.`, folded by the parser
    /// into the path (`context.Request.Headers`) the host may answer in one call
    /// ([`crate::Host::path`]).
    ContextPath(std::sync::Arc<str>),
    /// `object.name` or `object?.name`.
    Member {
        /// The object.
        object: Box<Expr>,
        /// The member.
        name: String,
        /// `?.`
        null_conditional: bool,
    },
    /// `object[index]` or `object?[index]`.
    Index {
        /// The object.
        object: Box<Expr>,
        /// The index.
        index: Box<Expr>,
        /// `?[`
        null_conditional: bool,
    },
    /// `object.Method<T>(args)`.
    MethodCall {
        /// The object (or a static type's name).
        object: Box<Expr>,
        /// The method.
        method: String,
        /// A generic type argument.
        type_argument: Option<String>,
        /// The arguments.
        args: Vec<Argument>,
        /// `?.`
        null_conditional: bool,
    },
    /// `function(args)`: a call of a free function (none exist; rejected at load).
    Call {
        /// The function.
        function: String,
        /// The arguments.
        args: Vec<Argument>,
    },
    /// `op operand`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `left op right`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `condition ? then : otherwise`.
    Conditional {
        /// The condition.
        condition: Box<Expr>,
        /// Value when true.
        then: Box<Expr>,
        /// Value when false.
        otherwise: Box<Expr>,
    },
    /// `(Type)operand`.
    Cast {
        /// The type.
        type_name: String,
        /// The operand.
        operand: Box<Expr>,
    },
    /// `operand is Type`.
    Is {
        /// The operand.
        operand: Box<Expr>,
        /// The type.
        type_name: String,
    },
    /// `operand as Type`.
    As {
        /// The operand.
        operand: Box<Expr>,
        /// The type.
        type_name: String,
    },
    /// `x => body` or `(x, y) => body`.
    Lambda {
        /// The parameters.
        params: Vec<String>,
        /// The body.
        body: Box<Expr>,
    },
    /// `new Type(args)`.
    New {
        /// The type.
        type_name: String,
        /// The arguments.
        args: Vec<Argument>,
    },
    /// `new [] { ... }` or `new T[] { ... }`.
    NewArray(Vec<Expr>),
    /// `$"...{hole}..."`.
    Interpolated(Vec<InterpolatedPart>),
    /// `out var name` (`declare`) or `out name`: an argument of the `TryParse` methods.
    Out {
        /// The variable.
        name: String,
        /// Whether the argument declares it (`out var name`, `out int name`).
        declare: bool,
    },
}

/// A statement of a `@{ ... }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// Where it is.
    pub span: Span,
}

/// The kinds of statement.
#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    /// `var name = value;` (or `string name = value;`).
    Var {
        /// The variable.
        name: String,
        /// Its initial value.
        value: Expr,
    },
    /// `target = value;` (`+=` and `-=` are desugared into this).
    Assign {
        /// What is assigned.
        target: Expr,
        /// The new value.
        value: Expr,
    },
    /// `if (condition) then else otherwise`.
    If {
        /// The condition.
        condition: Expr,
        /// When true.
        then: Box<Stmt>,
        /// When false.
        otherwise: Option<Box<Stmt>>,
    },
    /// `{ ... }`.
    Block(Vec<Stmt>),
    /// `return value;`.
    Return(Expr),
    /// `foreach (var name in iterable) body`.
    Foreach {
        /// The loop variable.
        name: String,
        /// What is iterated.
        iterable: Expr,
        /// The body.
        body: Box<Stmt>,
    },
    /// An expression evaluated for its effect.
    Expr(Expr),
}
