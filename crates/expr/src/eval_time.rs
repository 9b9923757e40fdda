//! The evaluator's date and time built-ins: the static members of `DateTime`,
//! `DateTimeOffset`, `TimeSpan`, `Guid`, `DayOfWeek` and `DateTimeKind`, the members of
//! [`Value::DateTime`] and [`Value::TimeSpan`], their operators and constructors. The
//! calendar, parsing and formatting are in [`crate::datetime`].

use std::cmp::Ordering;

use super::{Evaluator, as_f64, bad_cast, failed, unknown};
use crate::ast::BinaryOp;
use crate::datetime::{
    self, DAYS, Error, MAX_TICKS, Parts, TICKS_PER_DAY, TICKS_PER_HOUR, TICKS_PER_MILLISECOND,
    TICKS_PER_MINUTE, TICKS_PER_SECOND, UNIX_EPOCH_TICKS,
};
use crate::error::{EvalError, Span};
use crate::value::Value;

/// The whole range of `DateTime` in units, and the ticks per unit, of `AddMilliseconds`
/// ... `AddDays` (as .NET bounds them).
fn add_unit(method: &str) -> Option<(i64, i64)> {
    Some(match method {
        "AddMilliseconds" => (315_537_897_599_999, TICKS_PER_MILLISECOND),
        "AddSeconds" => (315_537_897_599, TICKS_PER_SECOND),
        "AddMinutes" => (5_258_964_959, TICKS_PER_MINUTE),
        "AddHours" => (87_649_415, TICKS_PER_HOUR),
        "AddDays" => (3_652_058, TICKS_PER_DAY),
        _ => return None,
    })
}

/// The ticks per unit of `TimeSpan.FromMilliseconds` ... `FromDays`.
fn from_unit(method: &str) -> Option<i64> {
    Some(match method {
        "FromMilliseconds" => TICKS_PER_MILLISECOND,
        "FromSeconds" => TICKS_PER_SECOND,
        "FromMinutes" => TICKS_PER_MINUTE,
        "FromHours" => TICKS_PER_HOUR,
        "FromDays" => TICKS_PER_DAY,
        _ => return None,
    })
}

/// `CompareTo`'s -1, 0 or 1.
fn ordering(ordering: Ordering) -> Value {
    Value::Int(match ordering {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    })
}

/// `TotalMilliseconds` and friends: the ticks divided, as .NET does.
#[allow(clippy::cast_precision_loss)]
fn total(ticks: i64, per_unit: i64) -> Value {
    Value::Double(ticks as f64 / per_unit as f64)
}

/// The types of `args`, for messages.
fn arg_types(args: &[Value]) -> String {
    args.iter()
        .map(Value::type_name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Evaluator<'_> {
    pub(super) fn time_error(&self, error: Error, span: Span) -> EvalError {
        match error {
            Error::Format(message) => EvalError::Parse { message, span },
            Error::Range(message) => failed(span, message),
            Error::TooLong(len) => self.too_long(len, span),
        }
    }

    fn datetime(&self, ticks: Result<i64, Error>, span: Span) -> Result<Value, EvalError> {
        ticks
            .map(Value::DateTime)
            .map_err(|e| self.time_error(e, span))
    }

    fn timespan(&self, ticks: Option<i64>, span: Span) -> Result<Value, EvalError> {
        datetime::timespan(ticks)
            .map(Value::TimeSpan)
            .map_err(|e| self.time_error(e, span))
    }

    /// The host's current time as `DateTime` ticks.
    fn now(&self, what: &str, span: Span) -> Result<i64, EvalError> {
        let now = self.host.now().ok_or_else(|| {
            failed(
                span,
                format!("`{what}` needs the current time, which this host does not provide"),
            )
        })?;
        let ticks = i64::try_from(now.as_nanos() / 100)
            .ok()
            .and_then(|t| t.checked_add(UNIX_EPOCH_TICKS));
        datetime::datetime(ticks).map_err(|e| self.time_error(e, span))
    }

    /// `DateTime.UtcNow`, `TimeSpan.Zero`, `Guid.Empty`, ...; `None` for a type that is not
    /// one of the date and time types.
    pub(super) fn time_static_member(
        &self,
        ty: &str,
        name: &str,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let value = match (ty, name) {
            ("DateTime" | "DateTimeOffset", "UtcNow" | "Now") => {
                self.now(&format!("{ty}.{name}"), span).map(Value::DateTime)
            }
            ("DateTime", "Today") => self
                .now("DateTime.Today", span)
                .map(|t| Value::DateTime(t - t % TICKS_PER_DAY)),
            ("DateTime" | "DateTimeOffset", "MinValue") => Ok(Value::DateTime(0)),
            ("DateTime" | "DateTimeOffset", "MaxValue") => Ok(Value::DateTime(MAX_TICKS)),
            ("DateTime" | "DateTimeOffset", "UnixEpoch") => Ok(Value::DateTime(UNIX_EPOCH_TICKS)),
            ("TimeSpan", "Zero") => Ok(Value::TimeSpan(0)),
            ("TimeSpan", "MaxValue") => Ok(Value::TimeSpan(i64::MAX)),
            ("TimeSpan", "MinValue") => Ok(Value::TimeSpan(i64::MIN)),
            ("TimeSpan", "TicksPerMillisecond") => Ok(Value::Int(TICKS_PER_MILLISECOND)),
            ("TimeSpan", "TicksPerSecond") => Ok(Value::Int(TICKS_PER_SECOND)),
            ("TimeSpan", "TicksPerMinute") => Ok(Value::Int(TICKS_PER_MINUTE)),
            ("TimeSpan", "TicksPerHour") => Ok(Value::Int(TICKS_PER_HOUR)),
            ("TimeSpan", "TicksPerDay") => Ok(Value::Int(TICKS_PER_DAY)),
            ("Guid", "Empty") => Ok(Value::string("00000000-0000-0000-0000-000000000000")),
            ("DayOfWeek", day) if DAYS.contains(&day) => Ok(Value::string(day)),
            ("DateTimeKind", kind @ ("Utc" | "Local" | "Unspecified")) => Ok(Value::string(kind)),
            (
                "DateTime" | "DateTimeOffset" | "TimeSpan" | "Guid" | "DayOfWeek" | "DateTimeKind",
                _,
            ) => Err(unknown(span, name, &format!("`{ty}`"))),
            _ => return None,
        };
        Some(value)
    }

    /// `DateTime.Parse(...)`, `TimeSpan.FromSeconds(...)`, `Guid.NewGuid()`, ...; `None`
    /// for a call that is not one of these (the caller reports it).
    pub(super) fn time_static_call(
        &self,
        ty: &str,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let parse_failure = |text: &str, target: &str| EvalError::Parse {
            message: format!("`{text}` is not a valid {target}"),
            span,
        };
        let range = |message: &str| Err(failed(span, message));
        let value = match (ty, method, args) {
            ("DateTime" | "DateTimeOffset", "Parse", [Value::String(s)])
            | ("Convert", "ToDateTime", [Value::String(s)]) => datetime::parse_datetime(s)
                .map(Value::DateTime)
                .ok_or_else(|| parse_failure(s, if ty == "Convert" { "DateTime" } else { ty })),
            ("Convert", "ToDateTime", [v @ Value::DateTime(_)]) => Ok(v.clone()),
            // as .NET: a null string converts to `DateTime.MinValue`
            ("Convert", "ToDateTime", [Value::Null]) => Ok(Value::DateTime(0)),
            ("DateTimeOffset", "FromUnixTimeSeconds", [Value::Int(n)]) => {
                if (-62_135_596_800..=253_402_300_799).contains(n) {
                    Ok(Value::DateTime(n * TICKS_PER_SECOND + UNIX_EPOCH_TICKS))
                } else {
                    range("the Unix time in seconds must be between -62135596800 and 253402300799")
                }
            }
            ("DateTimeOffset", "FromUnixTimeMilliseconds", [Value::Int(n)]) => {
                if (-62_135_596_800_000..=253_402_300_799_999).contains(n) {
                    Ok(Value::DateTime(
                        n * TICKS_PER_MILLISECOND + UNIX_EPOCH_TICKS,
                    ))
                } else {
                    range(
                        "the Unix time in milliseconds must be between -62135596800000 and 253402300799999",
                    )
                }
            }
            ("DateTime", "SpecifyKind", [v @ Value::DateTime(_), Value::String(_)]) => {
                Ok(v.clone())
            }
            ("DateTime", "DaysInMonth", [Value::Int(year), Value::Int(month)]) => {
                if (1..=9999).contains(year) && (1..=12).contains(month) {
                    Ok(Value::Int(datetime::days_in_month(*year, *month)))
                } else {
                    range("the year must be between 1 and 9999 and the month between 1 and 12")
                }
            }
            ("DateTime", "IsLeapYear", [Value::Int(year)]) => {
                if (1..=9999).contains(year) {
                    Ok(Value::Bool(datetime::is_leap_year(*year)))
                } else {
                    range("the year must be between 1 and 9999")
                }
            }
            (
                "DateTime" | "DateTimeOffset",
                "Compare",
                [Value::DateTime(a), Value::DateTime(b)],
            )
            | ("TimeSpan", "Compare", [Value::TimeSpan(a), Value::TimeSpan(b)]) => {
                Ok(ordering(a.cmp(b)))
            }
            ("TimeSpan", "FromTicks", [Value::Int(n)]) => Ok(Value::TimeSpan(*n)),
            ("TimeSpan", _, [v @ (Value::Int(_) | Value::Double(_))])
                if from_unit(method).is_some() =>
            {
                let per_unit = from_unit(method).unwrap_or(1);
                datetime::timespan_from(as_f64(v).unwrap_or_default(), per_unit)
                    .map(Value::TimeSpan)
                    .map_err(|e| self.time_error(e, span))
            }
            ("TimeSpan", "Parse", [Value::String(s)]) => datetime::parse_timespan(s)
                .map(Value::TimeSpan)
                .ok_or_else(|| parse_failure(s, "TimeSpan")),
            ("Guid", "NewGuid", []) => self
                .host
                .random_guid()
                .map(|bytes| Value::string(&datetime::guid_from_random(bytes)))
                .ok_or_else(|| {
                    failed(
                        span,
                        "`Guid.NewGuid()` needs random bytes, which this host does not provide",
                    )
                }),
            ("Guid", "Parse", [Value::String(s)]) => datetime::guid_digits(s)
                .and_then(|digits| datetime::guid_format(&digits, 'D'))
                .map(|text| Value::string(&text))
                .ok_or_else(|| parse_failure(s, "Guid")),
            (_, "Parse", [Value::Null]) => return None,
            ("DateTime" | "DateTimeOffset" | "TimeSpan" | "Guid", _, _) => Err(bad_cast(
                span,
                format!(
                    "`{ty}.{method}` cannot take ({}) as argument(s)",
                    arg_types(args)
                ),
            )),
            _ => return None,
        };
        Some(value)
    }

    /// `new DateTime(...)` and `new TimeSpan(...)`.
    pub(super) fn time_new(
        &self,
        ty: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        let ints: Vec<i64> = args
            .iter()
            .map_while(|a| match a {
                Value::Int(n) => Some(*n),
                _ => None,
            })
            .collect();
        // `new DateTime(..., DateTimeKind.Utc)`: the kind is a string here, and ignored
        let invalid = || {
            bad_cast(
                span,
                format!("`new {ty}` cannot take ({}) as arguments", arg_types(args)),
            )
        };
        let has_kind = match args.get(ints.len()..) {
            Some([]) => false,
            Some([Value::String(k)])
                if ty == "DateTime" && ["Utc", "Local", "Unspecified"].contains(&&**k) =>
            {
                true
            }
            _ => return Err(invalid()),
        };
        if ty == "TimeSpan" {
            let total = match ints[..] {
                [ticks] => Some(i128::from(ticks)),
                [h, m, s] => Some(
                    (i128::from(h) * 3600 + i128::from(m) * 60 + i128::from(s))
                        * i128::from(TICKS_PER_SECOND),
                ),
                [d, h, m, s] | [d, h, m, s, _] => {
                    let ms = ints.get(4).copied().unwrap_or_default();
                    Some(
                        ((i128::from(d) * 86_400
                            + i128::from(h) * 3600
                            + i128::from(m) * 60
                            + i128::from(s))
                            * 1000
                            + i128::from(ms))
                            * i128::from(TICKS_PER_MILLISECOND),
                    )
                }
                _ => return Err(invalid()),
            };
            return self.timespan(total.and_then(|t| i64::try_from(t).ok()), span);
        }
        let ticks = match ints[..] {
            [ticks] => datetime::datetime(Some(ticks)),
            [y, mo, d] if !has_kind => {
                datetime::from_parts(y, mo, d, 0, 0, 0, 0).ok_or_else(|| {
                    Error::Range(format!(
                        "{y:04}-{mo:02}-{d:02} is not a date between 0001-01-01 and 9999-12-31"
                    ))
                })
            }
            [y, mo, d, h, mi, s] | [y, mo, d, h, mi, s, _] => {
                let ms = ints.get(6).copied().unwrap_or_default();
                if (0..1000).contains(&ms) {
                    datetime::from_parts(y, mo, d, h, mi, s, ms * TICKS_PER_MILLISECOND)
                } else {
                    None
                }
                .ok_or_else(|| {
                    Error::Range(format!(
                        "the arguments of `new DateTime` do not make a valid date and time ({})",
                        ints.iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })
            }
            _ => return Err(invalid()),
        };
        self.datetime(ticks, span)
    }

    /// The properties of a `DateTime` (`DayOfWeek` is the English name, a string).
    pub(super) fn datetime_member(
        &self,
        ticks: i64,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        let p = Parts::of(ticks);
        Ok(match name {
            "Year" => Value::Int(p.year),
            "Month" => Value::Int(p.month),
            "Day" => Value::Int(p.day),
            "Hour" => Value::Int(p.hour),
            "Minute" => Value::Int(p.minute),
            "Second" => Value::Int(p.second),
            "Millisecond" => Value::Int(p.fraction / TICKS_PER_MILLISECOND),
            "Microsecond" => Value::Int(p.fraction / 10 % 1000),
            "Nanosecond" => Value::Int(p.fraction % 10 * 100),
            "Ticks" | "UtcTicks" => Value::Int(ticks),
            "DayOfYear" => Value::Int(p.day_of_year),
            "DayOfWeek" => Value::string(DAYS.get(p.day_of_week).copied().unwrap_or_default()),
            "Date" => Value::DateTime(ticks - ticks % TICKS_PER_DAY),
            "TimeOfDay" => Value::TimeSpan(ticks % TICKS_PER_DAY),
            "Kind" => Value::string("Utc"),
            // a DateTimeOffset's: the value is already its UTC instant
            "UtcDateTime" | "LocalDateTime" | "DateTime" => Value::DateTime(ticks),
            "Offset" => Value::TimeSpan(0),
            _ => return Err(unknown(span, name, "DateTime")),
        })
    }

    /// The properties of a `TimeSpan`.
    pub(super) fn timespan_member(
        &self,
        ticks: i64,
        name: &str,
        span: Span,
    ) -> Result<Value, EvalError> {
        Ok(match name {
            "Ticks" => Value::Int(ticks),
            "Days" => Value::Int(ticks / TICKS_PER_DAY),
            "Hours" => Value::Int(ticks / TICKS_PER_HOUR % 24),
            "Minutes" => Value::Int(ticks / TICKS_PER_MINUTE % 60),
            "Seconds" => Value::Int(ticks / TICKS_PER_SECOND % 60),
            "Milliseconds" => Value::Int(ticks / TICKS_PER_MILLISECOND % 1000),
            "Microseconds" => Value::Int(ticks / 10 % 1000),
            "Nanoseconds" => Value::Int(ticks % 10 * 100),
            "TotalDays" => total(ticks, TICKS_PER_DAY),
            "TotalHours" => total(ticks, TICKS_PER_HOUR),
            "TotalMinutes" => total(ticks, TICKS_PER_MINUTE),
            "TotalSeconds" => total(ticks, TICKS_PER_SECOND),
            "TotalMilliseconds" => {
                // .NET clamps to the whole milliseconds of `TimeSpan.MaxValue`/`MinValue`
                #[allow(clippy::cast_precision_loss)]
                let (max, min) = (
                    (i64::MAX / TICKS_PER_MILLISECOND) as f64,
                    (i64::MIN / TICKS_PER_MILLISECOND) as f64,
                );
                match total(ticks, TICKS_PER_MILLISECOND) {
                    Value::Double(ms) => Value::Double(ms.clamp(min, max)),
                    other => other,
                }
            }
            _ => return Err(unknown(span, name, "TimeSpan")),
        })
    }

    /// The methods of a `DateTime` (and of a `DateTimeOffset`).
    pub(super) fn datetime_method(
        &self,
        ticks: i64,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        let limit = self.limits.max_string_len;
        let formatted = |format: &str| -> Result<Value, EvalError> {
            let text = datetime::format_datetime(ticks, format, limit)
                .map_err(|e| self.time_error(e, span))?;
            self.string(text, span)
        };
        match (method, args) {
            ("AddTicks", [Value::Int(n)]) => self.datetime(datetime::add_ticks(ticks, *n), span),
            (_, [v @ (Value::Int(_) | Value::Double(_))]) if add_unit(method).is_some() => {
                let (max_units, per_unit) = add_unit(method).unwrap_or((0, 1));
                let value = as_f64(v).unwrap_or_default();
                self.datetime(datetime::add_units(ticks, value, max_units, per_unit), span)
            }
            ("AddMonths", [Value::Int(n)]) => self.datetime(datetime::add_months(ticks, *n), span),
            ("AddYears", [Value::Int(n)]) => {
                let result = if (-10_000..=10_000).contains(n) {
                    datetime::add_months(ticks, n * 12)
                } else {
                    Err(Error::Range(
                        "the number of years must be between -10000 and 10000".to_owned(),
                    ))
                };
                self.datetime(result, span)
            }
            ("Add", [Value::TimeSpan(d)]) => self.datetime(datetime::add_ticks(ticks, *d), span),
            ("Subtract", [Value::TimeSpan(d)]) => {
                self.datetime(datetime::datetime(ticks.checked_sub(*d)), span)
            }
            ("Subtract", [Value::DateTime(other)]) => {
                self.timespan(ticks.checked_sub(*other), span)
            }
            ("CompareTo", [Value::DateTime(other)]) => Ok(ordering(ticks.cmp(other))),
            ("CompareTo", [Value::Null]) => Ok(Value::Int(1)),
            ("ToUniversalTime" | "ToLocalTime", []) => Ok(Value::DateTime(ticks)),
            ("ToUnixTimeSeconds", []) => Ok(Value::Int(
                ticks / TICKS_PER_SECOND - UNIX_EPOCH_TICKS / TICKS_PER_SECOND,
            )),
            ("ToUnixTimeMilliseconds", []) => Ok(Value::Int(
                ticks / TICKS_PER_MILLISECOND - UNIX_EPOCH_TICKS / TICKS_PER_MILLISECOND,
            )),
            ("ToString", [Value::String(format)]) => formatted(format),
            ("ToString", [Value::Null]) => formatted(""),
            ("ToShortDateString", []) => formatted("d"),
            ("ToLongDateString", []) => formatted("D"),
            ("ToShortTimeString", []) => formatted("t"),
            ("ToLongTimeString", []) => formatted("T"),
            (
                "AddTicks" | "AddMilliseconds" | "AddSeconds" | "AddMinutes" | "AddHours"
                | "AddDays" | "AddMonths" | "AddYears" | "Add" | "Subtract" | "CompareTo"
                | "ToString",
                _,
            ) => Err(bad_cast(
                span,
                format!(
                    "`DateTime.{method}` cannot take ({}) as argument(s)",
                    arg_types(args)
                ),
            )),
            _ => Err(unknown(span, method, "DateTime")),
        }
    }

    /// The methods of a `TimeSpan`.
    pub(super) fn timespan_method(
        &self,
        ticks: i64,
        method: &str,
        args: &[Value],
        span: Span,
    ) -> Result<Value, EvalError> {
        match (method, args) {
            ("Add", [Value::TimeSpan(other)]) => self.timespan(ticks.checked_add(*other), span),
            ("Subtract", [Value::TimeSpan(other)]) => {
                self.timespan(ticks.checked_sub(*other), span)
            }
            ("Negate", []) => self.timespan(ticks.checked_neg(), span),
            ("Duration", []) => self.timespan(ticks.checked_abs(), span),
            ("CompareTo", [Value::TimeSpan(other)]) => Ok(ordering(ticks.cmp(other))),
            ("CompareTo", [Value::Null]) => Ok(Value::Int(1)),
            ("ToString", [Value::String(format)]) => {
                let text = datetime::format_timespan(ticks, format, self.limits.max_string_len)
                    .map_err(|e| self.time_error(e, span))?;
                self.string(text, span)
            }
            ("ToString", [Value::Null]) => self.string(datetime::display_timespan(ticks), span),
            ("Add" | "Subtract" | "Negate" | "Duration" | "CompareTo" | "ToString", _) => {
                Err(bad_cast(
                    span,
                    format!(
                        "`TimeSpan.{method}` cannot take ({}) as argument(s)",
                        arg_types(args)
                    ),
                ))
            }
            _ => Err(unknown(span, method, "TimeSpan")),
        }
    }

    /// The operators on dates and durations: comparisons, `DateTime - DateTime`,
    /// `DateTime ± TimeSpan`, `TimeSpan ± TimeSpan`; `None` for other operands.
    pub(super) fn time_binary(
        &self,
        op: BinaryOp,
        left: &Value,
        right: &Value,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let compare = |a: i64, b: i64| {
            Value::Bool(match op {
                BinaryOp::Lt => a < b,
                BinaryOp::Le => a <= b,
                BinaryOp::Gt => a > b,
                _ => a >= b,
            })
        };
        let result = match (op, left, right) {
            (
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge,
                Value::DateTime(a),
                Value::DateTime(b),
            )
            | (
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge,
                Value::TimeSpan(a),
                Value::TimeSpan(b),
            ) => Ok(compare(*a, *b)),
            (BinaryOp::Add, Value::DateTime(a), Value::TimeSpan(b)) => {
                self.datetime(datetime::add_ticks(*a, *b), span)
            }
            (BinaryOp::Sub, Value::DateTime(a), Value::TimeSpan(b)) => {
                self.datetime(datetime::datetime(a.checked_sub(*b)), span)
            }
            (BinaryOp::Sub, Value::DateTime(a), Value::DateTime(b)) => {
                self.timespan(a.checked_sub(*b), span)
            }
            (BinaryOp::Add, Value::TimeSpan(a), Value::TimeSpan(b)) => {
                self.timespan(a.checked_add(*b), span)
            }
            (BinaryOp::Sub, Value::TimeSpan(a), Value::TimeSpan(b)) => {
                self.timespan(a.checked_sub(*b), span)
            }
            _ => return None,
        };
        Some(result)
    }

    /// Unary `-` on a `TimeSpan`.
    pub(super) fn negate_timespan(&self, ticks: i64, span: Span) -> Result<Value, EvalError> {
        self.timespan(ticks.checked_neg(), span)
    }

    /// `Value<DateTime>(key)` (and `TimeSpan`) of a JSON string: parsed, as Newtonsoft
    /// reads a date out of a `JObject`; `None` when it does not apply.
    pub(super) fn json_time(
        &self,
        value: &Value,
        ty: &str,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let Value::String(s) = value else {
            return None;
        };
        let parsed = match ty {
            "DateTime" | "DateTimeOffset" => datetime::parse_datetime(s).map(Value::DateTime),
            "TimeSpan" => datetime::parse_timespan(s).map(Value::TimeSpan),
            _ => return None,
        };
        Some(parsed.ok_or_else(|| EvalError::Parse {
            message: format!("`{s}` is not a valid {ty}"),
            span,
        }))
    }

    /// `ToString(format)` of a string holding a `Guid` (a `Guid` is a string here):
    /// `N`, `D`, `B` or `P`; `None` when the string is not a `Guid`.
    pub(super) fn guid_to_string(
        &self,
        s: &str,
        format: &str,
        span: Span,
    ) -> Option<Result<Value, EvalError>> {
        let digits = datetime::guid_digits(s)?;
        let mut letters = format.chars();
        let letter = match (letters.next(), letters.next()) {
            (None, _) => Some('D'),
            (Some(letter), None) => Some(letter),
            _ => None,
        };
        Some(
            letter
                .and_then(|letter| datetime::guid_format(&digits, letter))
                .map(|text| Value::string(&text))
                .ok_or_else(|| EvalError::Parse {
                    message: format!("`{format}` is not a valid Guid format string"),
                    span,
                }),
        )
    }

    /// A `{0:format}` item of `string.Format`: a `DateTime`, `TimeSpan` or `Guid` formatted.
    pub(super) fn format_item(
        &self,
        item: &Value,
        format: &str,
        span: Span,
    ) -> Result<String, EvalError> {
        let limit = self.limits.max_string_len;
        match item {
            Value::DateTime(ticks) => datetime::format_datetime(*ticks, format, limit)
                .map_err(|e| self.time_error(e, span)),
            Value::TimeSpan(ticks) => datetime::format_timespan(*ticks, format, limit)
                .map_err(|e| self.time_error(e, span)),
            Value::Null => Ok(String::new()),
            Value::String(s) => match self.guid_to_string(s, format, span) {
                Some(Ok(text)) => Ok(text.to_string()),
                Some(Err(e)) => Err(e),
                None => Err(unformattable(item, format, span)),
            },
            _ => Err(unformattable(item, format, span)),
        }
    }
}

/// A `{0:format}` item that is not a `DateTime`, `TimeSpan` or `Guid`.
fn unformattable(item: &Value, format: &str, span: Span) -> EvalError {
    EvalError::Parse {
        message: format!(
            "the format `{format}` applies only to a DateTime, TimeSpan or Guid, not a {}",
            item.type_name()
        ),
        span,
    }
}
