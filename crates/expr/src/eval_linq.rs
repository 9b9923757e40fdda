//! More of LINQ on arrays: `OrderBy`, `OrderByDescending`, `Sum`, `Max`, `Min`,
//! `Average`, `Distinct`, `Skip`, `Take`, `Last`, `LastOrDefault` and `Reverse`.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::{Evaluator, as_f64, bad_cast, failed};
use crate::ast::Argument;
use crate::error::{EvalError, Span};
use crate::value::Value;

/// The LINQ methods of this module.
pub(super) const MORE_LINQ: &[&str] = &[
    "OrderBy",
    "OrderByDescending",
    "Sum",
    "Max",
    "Min",
    "Average",
    "Distinct",
    "Skip",
    "Take",
    "Last",
    "LastOrDefault",
    "Reverse",
];

/// How two keys compare: numbers by value, strings ordinally, dates, time spans and bools
/// in their order; null first. `None` for keys that cannot be compared.
fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Null, _) => Some(Ordering::Less),
        (_, Value::Null) => Some(Ordering::Greater),
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::DateTime(x), Value::DateTime(y)) | (Value::TimeSpan(x), Value::TimeSpan(y)) => {
            Some(x.cmp(y))
        }
        _ => as_f64(a)?.partial_cmp(&as_f64(b)?),
    }
}

/// What makes two items the same for `Distinct`.
fn identity(value: &Value) -> String {
    match value {
        Value::Native(native) => format!("{native:?}"),
        Value::Object(object) => format!("object:{}", object.id()),
        other => format!("{}:{}", other.type_name(), other.to_json()),
    }
}

impl Evaluator<'_> {
    /// The key of each item: the lambda's result, or the item itself.
    fn keys(
        &mut self,
        items: &[Value],
        selector: Option<&Argument>,
        span: Span,
    ) -> Result<Vec<Value>, EvalError> {
        items
            .iter()
            .map(|item| match selector {
                Some(selector) => self.call_lambda(selector, vec![item.clone()], span),
                None => {
                    self.step(span)?;
                    Ok(item.clone())
                }
            })
            .collect()
    }

    /// An `int` argument (`Skip(2)`).
    fn count_arg(
        &mut self,
        arg: Option<&Argument>,
        method: &str,
        span: Span,
    ) -> Result<usize, EvalError> {
        let Some(arg) = arg else {
            return Err(failed(span, format!("`{method}` needs a count")));
        };
        match self.eval(&arg.value)? {
            // a negative count is none, as in .NET
            Value::Int(n) => Ok(usize::try_from(n).unwrap_or(0)),
            other => Err(bad_cast(
                span,
                format!(
                    "the count of `{method}` must be an int, not {}",
                    other.type_name()
                ),
            )),
        }
    }

    /// The methods of [`MORE_LINQ`] on `items`.
    pub(super) fn more_linq(
        &mut self,
        mut items: Vec<Value>,
        method: &str,
        args: &[Argument],
        span: Span,
    ) -> Result<Value, EvalError> {
        let first = args.first();
        if args.len() > 1 {
            return Err(failed(
                span,
                format!("wrong number of arguments for `{method}`"),
            ));
        }
        match method {
            "OrderBy" | "OrderByDescending" => {
                let Some(selector) = first else {
                    return Err(failed(
                        span,
                        format!("`{method}` needs a key, such as `x => x`"),
                    ));
                };
                let keys = self.keys(&items, Some(selector), span)?;
                let mut keyed: Vec<(Value, Value)> = keys.into_iter().zip(items).collect();
                let mut incomparable = None;
                let descending = method == "OrderByDescending";
                // stable, as .NET's OrderBy: equal keys keep their order either way
                keyed.sort_by(|(a, _), (b, _)| {
                    let (a, b) = if descending { (b, a) } else { (a, b) };
                    compare(a, b).unwrap_or_else(|| {
                        incomparable.get_or_insert((a.type_name(), b.type_name()));
                        Ordering::Equal
                    })
                });
                if let Some((a, b)) = incomparable {
                    return Err(bad_cast(
                        span,
                        format!("`{method}` cannot compare {a} and {b}"),
                    ));
                }
                self.array(keyed.into_iter().map(|(_, item)| item).collect(), span)
            }
            "Sum" | "Average" => {
                let keys = self.keys(&items, first, span)?;
                let mut int_sum: Option<i64> = Some(0);
                let mut sum = 0.0;
                let mut count = 0usize;
                for key in keys {
                    match key {
                        Value::Null => continue,
                        Value::Int(n) => {
                            int_sum = int_sum.and_then(|s| s.checked_add(n));
                            if int_sum.is_none() && method == "Sum" {
                                return Err(failed(span, "arithmetic overflow in `Sum`"));
                            }
                        }
                        Value::Double(_) => int_sum = None,
                        other => {
                            return Err(bad_cast(
                                span,
                                format!("`{method}` takes numbers, not {}", other.type_name()),
                            ));
                        }
                    }
                    sum += as_f64(&key).unwrap_or(0.0);
                    count += 1;
                }
                if method == "Sum" {
                    return Ok(int_sum.map_or(Value::Double(sum), Value::Int));
                }
                if count == 0 {
                    return Err(failed(span, "the sequence contains no elements"));
                }
                #[allow(clippy::cast_precision_loss)]
                Ok(Value::Double(sum / count as f64))
            }
            "Max" | "Min" => {
                let keys = self.keys(&items, first, span)?;
                let mut best: Option<Value> = None;
                for key in keys.into_iter().filter(|k| !k.is_null()) {
                    best = Some(match best {
                        None => key,
                        Some(current) => {
                            let ordering = compare(&key, &current).ok_or_else(|| {
                                bad_cast(
                                    span,
                                    format!(
                                        "`{method}` cannot compare {} and {}",
                                        key.type_name(),
                                        current.type_name()
                                    ),
                                )
                            })?;
                            let better = if method == "Max" {
                                ordering.is_gt()
                            } else {
                                ordering.is_lt()
                            };
                            if better { key } else { current }
                        }
                    });
                }
                best.ok_or_else(|| failed(span, "the sequence contains no elements"))
            }
            "Distinct" if first.is_none() => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for item in items {
                    self.step(span)?;
                    if seen.insert(identity(&item)) {
                        out.push(item);
                    }
                }
                self.array(out, span)
            }
            "Skip" => {
                let n = self.count_arg(first, method, span)?;
                self.array(items.into_iter().skip(n).collect(), span)
            }
            "Take" => {
                let n = self.count_arg(first, method, span)?;
                items.truncate(n);
                self.array(items, span)
            }
            "Reverse" if first.is_none() => {
                items.reverse();
                self.array(items, span)
            }
            "Last" | "LastOrDefault" => {
                let mut found = None;
                for item in items {
                    let hit = match first {
                        Some(predicate) => self.predicate(predicate, &item, span)?,
                        None => true,
                    };
                    if hit {
                        found = Some(item);
                    }
                }
                match (found, method) {
                    (Some(item), _) => Ok(item),
                    (None, "LastOrDefault") => Ok(Value::Null),
                    (None, _) => Err(failed(
                        span,
                        if first.is_some() {
                            "the sequence contains no matching element"
                        } else {
                            "the sequence contains no elements"
                        },
                    )),
                }
            }
            _ => Err(failed(
                span,
                format!("wrong number of arguments for `{method}`"),
            )),
        }
    }
}
