//! The evaluator's regular expressions: `Regex.IsMatch`, `Match`, `Matches`, `Replace`,
//! `Split` and `Unescape`, `new Regex(...)` and its methods, `RegexOptions`, and the
//! `Match`, `GroupCollection` and `Group` objects. Matching is the `regex` crate's: linear
//! in the input, never backtracking, so no pattern can stall the gateway.

use std::sync::Arc;

use super::{Evaluator, bad_cast, failed, to_i64, unknown};
use crate::ast::Argument;
use crate::error::{EvalError, Span};
use crate::native::{GroupData, Native, NativeKind, Pattern};
use crate::value::Value;

/// `RegexOptions` members and their .NET values.
pub(crate) const REGEX_OPTIONS: &[(&str, i64)] = &[
    ("None", 0),
    ("IgnoreCase", 1),
    ("Multiline", 2),
    ("Singleline", 16),
    ("IgnorePatternWhitespace", 32),
    ("Compiled", 8),
    ("CultureInvariant", 512),
];

/// The options flags Gatehouse can honour (`Compiled` and `CultureInvariant` change
/// nothing here).
const KNOWN_OPTIONS: i64 = 1 | 2 | 8 | 16 | 32 | 512;

/// The largest compiled program of a literal pattern, compiled once at load (the `regex`
/// crate's size limit; Unicode classes are large: `\w{100}` needs more than 4 MiB).
pub(crate) const LITERAL_PATTERN_SIZE_LIMIT: usize = 8 << 20;

/// The largest compiled program of a pattern computed per evaluation (`\w{20}` fits).
const COMPUTED_PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// Steps a pattern compiled during an evaluation costs, besides one per byte of pattern.
const COMPILE_STEPS: u64 = 50;

/// Bytes of input scanned per step charged.
const SCAN_BYTES_PER_STEP: usize = 1024;

impl Pattern {
    /// Compiles `source` with .NET `options` into a program of at most `size_limit` bytes;
    /// the message says what is wrong.
    pub(crate) fn compile(source: &str, options: i64, size_limit: usize) -> Result<Self, String> {
        if options & !KNOWN_OPTIONS != 0 {
            return Err(format!(
                "RegexOptions {options} are not supported (only None, IgnoreCase, Multiline, Singleline, IgnorePatternWhitespace, Compiled, CultureInvariant)"
            ));
        }
        let regex = regex::RegexBuilder::new(source)
            .case_insensitive(options & 1 != 0)
            .multi_line(options & 2 != 0)
            .dot_matches_new_line(options & 16 != 0)
            .ignore_whitespace(options & 32 != 0)
            .size_limit(size_limit)
            .dfa_size_limit(COMPUTED_PATTERN_SIZE_LIMIT)
            .nest_limit(100)
            .build()
            .map_err(|e| {
                let text = e.to_string();
                // the crate's message draws the pattern; its last `error:` line says why
                let reason = text
                    .lines()
                    .rev()
                    .find_map(|line| line.trim().strip_prefix("error: "))
                    .unwrap_or(&text)
                    .to_owned();
                format!("invalid regular expression `{source}`: {reason}")
            })?;
        Ok(Self {
            source: Arc::from(source),
            options,
            regex,
        })
    }
}

/// The `regex` crate's group indexes in .NET's order: group 0, the unnamed groups, then
/// the named ones (each unnamed group is named by its number, as in .NET).
fn dotnet_order(pattern: &Pattern) -> Vec<(usize, String)> {
    let mut unnamed = Vec::new();
    let mut named = Vec::new();
    for (i, name) in pattern.regex.capture_names().enumerate().skip(1) {
        match name {
            None => unnamed.push(i),
            Some(name) => named.push((i, name.to_owned())),
        }
    }
    let mut order = Vec::with_capacity(1 + unnamed.len() + named.len());
    order.push((0, "0".to_owned()));
    for (number, i) in unnamed.into_iter().enumerate() {
        order.push((i, (number + 1).to_string()));
    }
    order.extend(named);
    order
}

/// The groups of one match, in .NET's order. `base`: a byte offset of `input` at or
/// before the match and its index in characters.
fn groups(
    order: &[(usize, String)],
    captures: &regex::Captures<'_>,
    input: &str,
    base: (usize, usize),
) -> Vec<GroupData> {
    let (base_byte, base_chars) = base;
    order
        .iter()
        .map(|(i, name)| match captures.get(*i) {
            Some(m) => GroupData {
                name: name.clone(),
                success: true,
                index: base_chars
                    + input
                        .get(base_byte..m.start())
                        .map_or(0, |s| s.chars().count()),
                length: m.as_str().chars().count(),
                value: m.as_str().to_owned(),
            },
            None => GroupData {
                name: name.clone(),
                success: false,
                index: 0,
                length: 0,
                value: String::new(),
            },
        })
        .collect()
}

/// A `Match` that failed.
fn no_match() -> Value {
    Value::Native(Native::new(NativeKind::Match(Arc::from(vec![GroupData {
        name: "0".to_owned(),
        success: false,
        index: 0,
        length: 0,
        value: String::new(),
    }]))))
}

/// A group by .NET number or name; a group that does not exist is one that did not match.
fn group_by(groups: &[GroupData], key: &Value) -> Option<GroupData> {
    let found = match key {
        Value::Int(n) => usize::try_from(*n).ok().and_then(|n| groups.get(n)),
        Value::String(name) => groups.iter().find(|g| g.name == **name),
        _ => return None,
    };
    Some(found.cloned().unwrap_or_else(|| GroupData {
        name: match key {
            Value::String(name) => name.to_string(),
            other => other.to_string(),
        },
        success: false,
        index: 0,
        length: 0,
        value: String::new(),
    }))
}

/// Expands a .NET replacement pattern (`$1`, `${name}`, `$$`, `$&`, `` $` ``, `$'`,
/// `$+`, `$_`) for one match of `input` spanning `range` (bytes).
fn expand(
    replacement: &str,
    groups: &[GroupData],
    input: &str,
    range: (usize, usize),
    out: &mut String,
) {
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let mut chars = after.chars();
        let consumed = match chars.next() {
            Some('$') => {
                out.push('$');
                1
            }
            Some('&') => {
                out.push_str(groups.first().map_or("", |g| g.value.as_str()));
                1
            }
            Some('`') => {
                out.push_str(input.get(..range.0).unwrap_or(""));
                1
            }
            Some('\'') => {
                out.push_str(input.get(range.1..).unwrap_or(""));
                1
            }
            Some('+') => {
                out.push_str(groups.last().map_or("", |g| g.value.as_str()));
                1
            }
            Some('_') => {
                out.push_str(input);
                1
            }
            Some('{') => match after.find('}') {
                Some(end) => {
                    let name = &after[1..end];
                    let group = if name.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() {
                        name.parse::<usize>().ok().and_then(|n| groups.get(n))
                    } else {
                        groups.iter().find(|g| g.name == name)
                    };
                    match group {
                        Some(group) => out.push_str(&group.value),
                        None => {
                            out.push('$');
                            out.push_str(&after[..=end]);
                        }
                    }
                    end + 1
                }
                None => {
                    out.push('$');
                    0
                }
            },
            Some(d) if d.is_ascii_digit() => {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                let group = after[..digits]
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| groups.get(n));
                match group {
                    Some(group) => out.push_str(&group.value),
                    None => {
                        out.push('$');
                        out.push_str(&after[..digits]);
                    }
                }
                digits
            }
            _ => {
                out.push('$');
                0
            }
        };
        rest = &after[consumed..];
    }
    out.push_str(rest);
}

/// `Regex.Unescape`: `\n`, `\t`, `\r`, `\f`, `\v`, `\a`, `\e`, `\0`, `\xHH`, `\uHHHH` and
/// `\` before any other character.
fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars
            .next()
            .ok_or_else(|| "illegal \\ at the end of the pattern".to_owned())?;
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| {
            let digits: String = chars.by_ref().take(n).collect();
            u32::from_str_radix(&digits, 16)
                .ok()
                .filter(|_| digits.len() == n)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("insufficient or invalid hexadecimal digits `{digits}`"))
        };
        out.push(match escaped {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'f' => '\u{c}',
            'v' => '\u{b}',
            'a' => '\u{7}',
            'e' => '\u{1b}',
            '0' => '\0',
            'x' => hex(&mut chars, 2)?,
            'u' => hex(&mut chars, 4)?,
            other => other,
        });
    }
    Ok(out)
}

/// Which argument holds the options of `Regex.method(...)` (the replacement comes before
/// them in `Replace`).
pub(crate) fn options_position(method: &str) -> usize {
    if method == "Replace" { 3 } else { 2 }
}

impl Evaluator<'_> {
    /// The compiled pattern: compiled once at load when the pattern and options were
    /// literals, compiled now (and paid for in steps) otherwise.
    fn pattern(&mut self, source: &str, options: i64, span: Span) -> Result<Pattern, EvalError> {
        if let Some(pattern) = self
            .patterns
            .iter()
            .find(|p| *p.source == *source && p.options == options)
        {
            return Ok(pattern.clone());
        }
        for _ in 0..COMPILE_STEPS.saturating_add(to_u64(source.len())) {
            self.step(span)?;
        }
        Pattern::compile(source, options, COMPUTED_PATTERN_SIZE_LIMIT)
            .map_err(|message| EvalError::Parse { message, span })
    }

    /// Charges the scan of `input`.
    fn scan(&mut self, input: &str, span: Span) -> Result<(), EvalError> {
        for _ in 0..input.len() / SCAN_BYTES_PER_STEP {
            self.step(span)?;
        }
        Ok(())
    }

    /// `RegexOptions.IgnoreCase`, ...; `None` for another type.
    pub(super) fn regex_static_member(
        &self,
        ty: &str,
        name: &str,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        if ty != "RegexOptions" {
            return None;
        }
        Some(
            REGEX_OPTIONS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| Value::Int(*v))
                .ok_or_else(|| unknown(span, name, "`RegexOptions`")),
        )
    }

    /// `Regex.Replace(input, pattern, m => ...)`: a replacement computed by a lambda per
    /// match. `None` when the call is not one.
    pub(super) fn regex_replace_with_lambda(
        &mut self,
        args: &[Argument],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let [input, pattern, lambda, rest @ ..] = args else {
            return None;
        };
        if !matches!(lambda.value.kind, crate::ast::ExprKind::Lambda { .. }) {
            return None;
        }
        Some((|| {
            let input = self.eval(&input.value)?;
            let pattern = self.eval(&pattern.value)?;
            let options = match rest.first() {
                Some(options) => self.eval(&options.value)?,
                None => Value::Int(0),
            };
            let (input, pattern, options) =
                self.regex_args("Replace", &[input, pattern, options], span)?;
            let pattern = self.pattern(&pattern, options, span)?;
            self.scan(&input, span)?;
            let order = dotnet_order(&pattern);
            let mut out = String::new();
            let mut last = 0;
            let mut counted = (0, 0);
            for captures in pattern.regex.captures_iter(&input) {
                let Some(whole) = captures.get(0) else {
                    continue;
                };
                self.step(span)?;
                counted.1 += input
                    .get(counted.0..whole.start())
                    .map_or(0, |s| s.chars().count());
                counted.0 = whole.start();
                let groups = groups(&order, &captures, &input, counted);
                let matched = Value::Native(Native::new(NativeKind::Match(Arc::from(groups))));
                let replacement = self.call_lambda(lambda, vec![matched], span)?;
                out.push_str(input.get(last..whole.start()).unwrap_or(""));
                out.push_str(&replacement.to_string());
                last = whole.end();
                if out.len() > self.limits.max_string_len {
                    return Err(self.too_long(out.len(), span));
                }
            }
            out.push_str(input.get(last..).unwrap_or(""));
            self.string(out, span)
        })())
    }

    /// The input, pattern and options of a static `Regex` call (`options` absent: none).
    fn regex_args(
        &self,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<(Arc<str>, Arc<str>, i64), EvalError> {
        let text = |i: usize, what: &str| match args.get(i) {
            Some(Value::String(text)) => Ok(Arc::clone(text)),
            Some(Value::Null) => Err(failed(
                span,
                format!("the {what} of `Regex.{method}` is null"),
            )),
            Some(other) => Err(bad_cast(
                span,
                format!(
                    "the {what} of `Regex.{method}` must be a string, not {}",
                    other.type_name()
                ),
            )),
            None => Err(failed(span, format!("`Regex.{method}` needs a {what}"))),
        };
        let options = match args.get(options_position(method)) {
            None => 0,
            Some(Value::Int(options)) => *options,
            Some(other) => {
                return Err(bad_cast(
                    span,
                    format!(
                        "the options of `Regex.{method}` must be RegexOptions, not {}",
                        other.type_name()
                    ),
                ));
            }
        };
        Ok((text(0, "input")?, text(1, "pattern")?, options))
    }

    /// `Regex.IsMatch(...)` and the other static methods, by evaluated arguments; `None`
    /// for another type.
    pub(super) fn regex_static_call(
        &mut self,
        ty: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        if ty != "Regex" {
            return None;
        }
        if method == "Unescape" {
            return Some(match args {
                [Value::String(text)] => unescape(text)
                    .map_err(|message| EvalError::Parse { message, span })
                    .and_then(|text| self.string(text, span)),
                [Value::Null] => Err(failed(span, "the argument of `Regex.Unescape` is null")),
                _ => Err(failed(span, "`Regex.Unescape` takes one string")),
            });
        }
        // (input, pattern[, replacement][, options][, timeout]): the timeout is ignored,
        // matching is linear in the input
        let most = options_position(method) + 2;
        if args.len() < options_position(method).min(3) || args.len() > most {
            return Some(Err(unknown(
                span,
                method,
                &format!("`Regex` (with {} argument(s))", args.len()),
            )));
        }
        Some((|| {
            let (input, source, options) = self.regex_args(method, args, span)?;
            let pattern = self.pattern(&source, options, span)?;
            let rest = if method == "Replace" {
                args.get(2..3).unwrap_or(&[])
            } else {
                &[]
            };
            self.run_regex(&pattern, method, &input, rest, span)
        })())
    }

    /// `regex.IsMatch(input)` and the other methods of a `Regex` (static or not), on a
    /// compiled pattern; `rest` holds `Replace`'s replacement.
    fn run_regex(
        &mut self,
        pattern: &Pattern,
        method: &str,
        input: &str,
        rest: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        self.scan(input, span)?;
        let order = dotnet_order(pattern);
        match method {
            "IsMatch" => Ok(Value::Bool(pattern.regex.is_match(input))),
            "Match" => {
                Ok(match pattern.regex.captures(input) {
                    Some(captures) => Value::Native(Native::new(NativeKind::Match(Arc::from(
                        groups(&order, &captures, input, (0, 0)),
                    )))),
                    None => no_match(),
                })
            }
            "Matches" => {
                let mut out = Vec::new();
                let mut counted = (0, 0);
                for captures in pattern.regex.captures_iter(input) {
                    let Some(whole) = captures.get(0) else {
                        continue;
                    };
                    self.step(span)?;
                    counted.1 += input
                        .get(counted.0..whole.start())
                        .map_or(0, |s| s.chars().count());
                    counted.0 = whole.start();
                    out.push(Value::Native(Native::new(NativeKind::Match(Arc::from(
                        groups(&order, &captures, input, counted),
                    )))));
                    if out.len() > self.limits.max_array_len {
                        break;
                    }
                }
                self.array(out, span)
            }
            "Replace" => {
                let replacement = match rest.first() {
                    Some(Value::String(text)) => text.to_string(),
                    Some(Value::Null) => {
                        return Err(failed(span, "the replacement of `Regex.Replace` is null"));
                    }
                    Some(other) => {
                        return Err(bad_cast(
                            span,
                            format!(
                                "the replacement of `Regex.Replace` must be a string or a lambda, not {}",
                                other.type_name()
                            ),
                        ));
                    }
                    None => return Err(failed(span, "`Replace` needs a replacement")),
                };
                let mut out = String::new();
                let mut last = 0;
                let mut counted = (0, 0);
                for captures in pattern.regex.captures_iter(input) {
                    let Some(whole) = captures.get(0) else {
                        continue;
                    };
                    self.step(span)?;
                    counted.1 += input
                        .get(counted.0..whole.start())
                        .map_or(0, |s| s.chars().count());
                    counted.0 = whole.start();
                    let groups = groups(&order, &captures, input, counted);
                    out.push_str(input.get(last..whole.start()).unwrap_or(""));
                    expand(
                        &replacement,
                        &groups,
                        input,
                        (whole.start(), whole.end()),
                        &mut out,
                    );
                    last = whole.end();
                    if out.len() > self.limits.max_string_len {
                        return Err(self.too_long(out.len(), span));
                    }
                }
                out.push_str(input.get(last..).unwrap_or(""));
                self.string(out, span)
            }
            "Split" => {
                // as .NET: the pieces between matches, with the text of each group that
                // took part in a match inserted after the piece before it
                let mut out = Vec::new();
                let mut last = 0;
                for captures in pattern.regex.captures_iter(input) {
                    let Some(whole) = captures.get(0) else {
                        continue;
                    };
                    self.step(span)?;
                    out.push(Value::string(input.get(last..whole.start()).unwrap_or("")));
                    for (i, _) in order.iter().skip(1) {
                        if let Some(group) = captures.get(*i) {
                            out.push(Value::string(group.as_str()));
                        }
                    }
                    last = whole.end();
                    if out.len() > self.limits.max_array_len {
                        break;
                    }
                }
                out.push(Value::string(input.get(last..).unwrap_or("")));
                self.array(out, span)
            }
            _ => Err(unknown(span, method, "Regex")),
        }
    }

    /// `new Regex(pattern[, options])`.
    pub(super) fn new_regex(&mut self, args: &[Value], span: Span) -> Result<Value, EvalError> {
        let (source, options) = match args {
            [Value::String(source)] => (source, 0),
            [Value::String(source), Value::Int(options)]
            | [
                Value::String(source),
                Value::Int(options),
                Value::TimeSpan(_),
            ] => (source, *options),
            [Value::Null, ..] => return Err(failed(span, "the pattern of `new Regex` is null")),
            _ => {
                return Err(failed(
                    span,
                    "`new Regex` takes a pattern (and RegexOptions)",
                ));
            }
        };
        let pattern = self.pattern(source, options, span)?;
        Ok(Value::Native(Native::new(NativeKind::Regex(pattern))))
    }

    /// The methods of a `Regex` object.
    pub(super) fn regex_method(
        &mut self,
        pattern: &Pattern,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        match (method, args) {
            ("IsMatch" | "Match" | "Matches" | "Split", [Value::String(input)])
            | ("Replace", [Value::String(input), _]) => {
                let input = Arc::clone(input);
                self.run_regex(pattern, method, &input, args.get(1..).unwrap_or(&[]), span)
            }
            ("ToString", []) => Ok(Value::String(Arc::clone(&pattern.source))),
            ("IsMatch" | "Match" | "Matches" | "Split" | "Replace", [Value::Null, ..]) => Err(
                failed(span, format!("the input of `Regex.{method}` is null")),
            ),
            _ => Err(unknown(
                span,
                method,
                &format!("Regex (with {} argument(s))", args.len()),
            )),
        }
    }

    /// The members of `Match`, `GroupCollection` and `Group`.
    pub(super) fn regex_member(
        &self,
        native: &Native,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        let group = match native.kind() {
            NativeKind::Match(groups) if name == "Groups" => {
                return Ok(Value::Native(Native::new(NativeKind::Groups(Arc::clone(
                    groups,
                )))));
            }
            NativeKind::Match(groups) => groups.first(),
            NativeKind::Groups(groups) if name == "Count" => {
                return Ok(Value::Int(to_i64(groups.len())));
            }
            NativeKind::Group(group) => Some(group),
            NativeKind::Regex(pattern) if name == "Options" => {
                return Ok(Value::Int(pattern.options));
            }
            _ => None,
        };
        let Some(group) = group else {
            return Err(unknown(span, name, native.type_name()));
        };
        Ok(match name {
            "Success" => Value::Bool(group.success),
            "Value" => self.string(group.value.clone(), span)?,
            "Index" => Value::Int(to_i64(group.index)),
            "Length" => Value::Int(to_i64(group.length)),
            "Name" => Value::string(&group.name),
            _ => return Err(unknown(span, name, native.type_name())),
        })
    }

    /// `match.Groups[1]`, `match.Groups["name"]`: a group that does not exist is one that
    /// did not match, as in .NET.
    pub(super) fn regex_index(
        &self,
        native: &Native,
        index: &Value,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let NativeKind::Groups(groups) = native.kind() else {
            return None;
        };
        Some(
            group_by(groups, index)
                .map(|group| Value::Native(Native::new(NativeKind::Group(group))))
                .ok_or_else(|| {
                    bad_cast(
                        span,
                        format!(
                            "a GroupCollection cannot be indexed by {}",
                            index.type_name()
                        ),
                    )
                }),
        )
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
