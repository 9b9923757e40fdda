//! .NET's date and time types for the evaluator: a `DateTime` (and a `DateTimeOffset`,
//! the same value here) is a count of ticks (100 ns) since 0001-01-01T00:00:00 UTC in the
//! proleptic Gregorian calendar, a `TimeSpan` a signed count of ticks. This module holds
//! the calendar arithmetic, parsing and formatting (as .NET's invariant culture does it),
//! and the text forms of a `Guid`. It never reads a clock: the current time comes from the
//! host.

use std::fmt::Write as _;

/// Ticks in a millisecond.
pub(crate) const TICKS_PER_MILLISECOND: i64 = 10_000;
/// Ticks in a second.
pub(crate) const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks in a minute.
pub(crate) const TICKS_PER_MINUTE: i64 = 600_000_000;
/// Ticks in an hour.
pub(crate) const TICKS_PER_HOUR: i64 = 36_000_000_000;
/// Ticks in a day.
pub(crate) const TICKS_PER_DAY: i64 = 864_000_000_000;
/// `DateTime.MaxValue.Ticks`: 9999-12-31T23:59:59.9999999.
pub(crate) const MAX_TICKS: i64 = 3_155_378_975_999_999_999;
/// Days from 0001-01-01 to 1970-01-01.
const DAYS_TO_UNIX_EPOCH: i64 = 719_162;
/// The ticks of 1970-01-01T00:00:00Z.
pub(crate) const UNIX_EPOCH_TICKS: i64 = DAYS_TO_UNIX_EPOCH * TICKS_PER_DAY;

/// The message of a `DateTime` result outside 0001-01-01 .. 9999-12-31.
pub(crate) const DATETIME_RANGE: &str = "the resulting DateTime is outside the range of DateTime \
     (0001-01-01T00:00:00 to 9999-12-31T23:59:59.9999999)";
/// The message of a `TimeSpan` that overflows.
pub(crate) const TIMESPAN_RANGE: &str =
    "the TimeSpan overflowed: the duration is outside the range of TimeSpan";

/// Why a date or time operation failed; the evaluator adds the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Error {
    /// A format string that is not valid (.NET's `FormatException`).
    Format(String),
    /// A result outside the range of the type, or an argument outside its range.
    Range(String),
    /// The formatted text would be longer than this many bytes, past the limit.
    TooLong(usize),
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The English names of the days of the week, from Sunday (`DayOfWeek` 0).
pub(crate) const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn abbreviation(name: &str) -> &str {
    name.get(..3).unwrap_or(name)
}

// ---- calendar ---------------------------------------------------------------------------

/// Whether `year` is a leap year.
pub(crate) fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1–12) of `year`.
pub(crate) fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 0001-01-01 to a valid `year-month-day` (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468 + DAYS_TO_UNIX_EPOCH
}

/// The `(year, month, day)` of a count of days since 0001-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days - DAYS_TO_UNIX_EPOCH + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The components of a `DateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Parts {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
    /// Ticks within the second (0–9 999 999).
    pub(crate) fraction: i64,
    /// 0 is Sunday.
    pub(crate) day_of_week: usize,
    /// 1–366.
    pub(crate) day_of_year: i64,
}

impl Parts {
    /// The components of `ticks` (a valid `DateTime`).
    pub(crate) fn of(ticks: i64) -> Self {
        let days = ticks.div_euclid(TICKS_PER_DAY);
        let time = ticks.rem_euclid(TICKS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: time / TICKS_PER_HOUR,
            minute: time / TICKS_PER_MINUTE % 60,
            second: time / TICKS_PER_SECOND % 60,
            fraction: time % TICKS_PER_SECOND,
            day_of_week: usize::try_from((days + 1).rem_euclid(7)).unwrap_or_default(),
            day_of_year: days - days_from_civil(year, 1, 1) + 1,
        }
    }

    fn hour12(&self) -> i64 {
        match self.hour % 12 {
            0 => 12,
            h => h,
        }
    }

    fn month_name(&self) -> &'static str {
        usize::try_from(self.month - 1)
            .ok()
            .and_then(|m| MONTHS.get(m))
            .copied()
            .unwrap_or("")
    }

    fn day_name(&self) -> &'static str {
        DAYS.get(self.day_of_week).copied().unwrap_or("")
    }
}

/// The ticks of a date and time, or `None` when a component is out of range.
pub(crate) fn from_parts(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    fraction: i64,
) -> Option<i64> {
    let valid = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second)
        && (0..TICKS_PER_SECOND).contains(&fraction);
    valid.then(|| {
        days_from_civil(year, month, day) * TICKS_PER_DAY
            + hour * TICKS_PER_HOUR
            + minute * TICKS_PER_MINUTE
            + second * TICKS_PER_SECOND
            + fraction
    })
}

/// `ticks` when it is a valid `DateTime`.
pub(crate) fn datetime(ticks: Option<i64>) -> Result<i64, Error> {
    ticks
        .filter(|t| (0..=MAX_TICKS).contains(t))
        .ok_or_else(|| Error::Range(DATETIME_RANGE.to_owned()))
}

/// `DateTime.AddTicks`.
pub(crate) fn add_ticks(ticks: i64, delta: i64) -> Result<i64, Error> {
    datetime(ticks.checked_add(delta))
}

/// `DateTime.AddDays` and friends, as .NET (7 and later) does it: the whole units exactly,
/// the fraction truncated to a tick; more than `max_units` (the whole range) is an error.
pub(crate) fn add_units(
    ticks: i64,
    value: f64,
    max_units: i64,
    per_unit: i64,
) -> Result<i64, Error> {
    #[allow(clippy::cast_precision_loss)]
    let max = max_units as f64;
    if value.is_nan() || value.abs() > max {
        return Err(Error::Range(DATETIME_RANGE.to_owned()));
    }
    let whole = value.trunc();
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let delta = (whole as i64)
        .checked_mul(per_unit)
        .and_then(|t| t.checked_add(((value - whole) * per_unit as f64) as i64));
    datetime(delta.and_then(|d| ticks.checked_add(d)))
}

/// `DateTime.AddMonths`: the day is clamped to the length of the resulting month; the time
/// of day is kept.
pub(crate) fn add_months(ticks: i64, months: i64) -> Result<i64, Error> {
    if !(-120_000..=120_000).contains(&months) {
        return Err(Error::Range(
            "the number of months must be between -120000 and 120000".to_owned(),
        ));
    }
    let p = Parts::of(ticks);
    let index = p.year * 12 + (p.month - 1) + months;
    let (year, month) = (index.div_euclid(12), index.rem_euclid(12) + 1);
    if !(1..=9999).contains(&year) {
        return Err(Error::Range(DATETIME_RANGE.to_owned()));
    }
    let day = p.day.min(days_in_month(year, month));
    Ok(days_from_civil(year, month, day) * TICKS_PER_DAY + ticks.rem_euclid(TICKS_PER_DAY))
}

/// Checks a `TimeSpan` result.
pub(crate) fn timespan(ticks: Option<i64>) -> Result<i64, Error> {
    ticks.ok_or_else(|| Error::Range(TIMESPAN_RANGE.to_owned()))
}

/// `TimeSpan.FromSeconds` and friends, as .NET (Core 3.0 and later) does it: the ticks
/// truncated toward zero.
pub(crate) fn timespan_from(value: f64, per_unit: i64) -> Result<i64, Error> {
    #[allow(clippy::cast_precision_loss)]
    let ticks = value * per_unit as f64;
    // 2^63 as a double: anything at or past it does not fit.
    #[allow(clippy::cast_precision_loss)]
    let limit = i64::MAX as f64;
    if ticks.is_nan() || ticks > limit || ticks < -limit {
        return Err(Error::Range(TIMESPAN_RANGE.to_owned()));
    }
    // as .NET: exactly 2^63 ticks is `TimeSpan.MaxValue`
    if ticks == limit {
        return Ok(i64::MAX);
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(ticks as i64)
}

// ---- parsing ----------------------------------------------------------------------------

/// A cursor over ASCII text.
struct Cursor<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn at_end(&self) -> bool {
        self.at >= self.text.len()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) -> bool {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
        self.at > start
    }

    /// Between `min` and `max` digits, as a number, and how many there were.
    fn digits(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let start = self.at;
        let mut n: i64 = 0;
        while self.at - start < max
            && let Some(b) = self.peek().filter(u8::is_ascii_digit)
        {
            n = n.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
            self.at += 1;
        }
        let count = self.at - start;
        (count >= min).then_some((n, count))
    }

    fn number(&mut self, min: usize, max: usize) -> Option<i64> {
        self.digits(min, max).map(|(n, _)| n)
    }

    /// A run of ASCII letters.
    fn word(&mut self) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
            self.at += 1;
        }
        std::str::from_utf8(self.text.get(start..self.at).unwrap_or_default()).unwrap_or_default()
    }

    /// Seven fraction digits (ticks) after a `.`; more digits round to the nearest tick.
    fn fraction(&mut self) -> Option<i64> {
        let start = self.at;
        let mut ticks = 0;
        let mut round_up = false;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            let position = self.at - start;
            if position < 7 {
                ticks = ticks * 10 + i64::from(b - b'0');
            } else if position == 7 {
                round_up = b >= b'5';
            }
            self.at += 1;
        }
        let count = self.at - start;
        if count == 0 {
            return None;
        }
        for _ in count..7 {
            ticks *= 10;
        }
        Some(ticks + i64::from(round_up))
    }
}

/// The index (1-based month, or 0-based day of the week) of an English name, full or
/// abbreviated to three letters, in any case.
fn name_index(names: &[&str], word: &str) -> Option<usize> {
    names.iter().position(|name| {
        word.eq_ignore_ascii_case(name)
            || (word.len() == 3 && word.eq_ignore_ascii_case(abbreviation(name)))
    })
}

/// `DateTime.Parse` (and `DateTimeOffset.Parse`): ISO 8601 / RFC 3339
/// (`yyyy-MM-dd[(T| )HH:mm[:ss[.fffffff]]]`, also `yyyy/MM/dd`), the invariant culture's
/// `MM/dd/yyyy[ HH:mm[:ss[.fffffff]]]`, and RFC 1123 (`[ddd, ]dd MMM yyyy HH:mm:ss GMT`);
/// a time may end with `Z`, `GMT`, `UTC` or an offset `±hh[[:]mm]`.
/// A time with an offset is converted to UTC; without one it is taken as UTC. `None`
/// when the text is none of these or names a date that does not exist.
pub(crate) fn parse_datetime(text: &str) -> Option<i64> {
    let mut c = Cursor::new(text.trim());
    // an optional day of the week, `Tue, ` or `Tuesday, `
    let mut day_of_week = None;
    if c.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
        day_of_week = Some(name_index(&DAYS, c.word())?);
        c.eat(b',');
        c.skip_spaces();
    }
    let (first, count) = c.digits(1, 4)?;
    let (year, month, day) = if count == 4 {
        // `yyyy-MM-dd` or `yyyy/MM/dd`
        let separator = c.peek().filter(|b| matches!(b, b'-' | b'/'))?;
        c.at += 1;
        let month = c.number(1, 2)?;
        if !c.eat(separator) {
            return None;
        }
        (first, month, c.number(1, 2)?)
    } else if c.eat(b'/') {
        let day = c.number(1, 2)?;
        if !c.eat(b'/') {
            return None;
        }
        (c.number(4, 4)?, first, day)
    } else {
        // `02 Jan 2024`
        c.skip_spaces();
        let month = name_index(&MONTHS, c.word())? + 1;
        if !c.skip_spaces() {
            return None;
        }
        (c.number(4, 4)?, i64::try_from(month).ok()?, first)
    };
    let (mut hour, mut minute, mut second, mut fraction) = (0, 0, 0, 0);
    let mut offset = 0;
    let separated = if c.eat(b'T') {
        true
    } else {
        c.skip_spaces() && !c.at_end()
    };
    if separated {
        hour = c.number(1, 2)?;
        if !c.eat(b':') {
            return None;
        }
        minute = c.number(2, 2)?;
        if c.eat(b':') {
            second = c.number(2, 2)?;
            if c.eat(b'.') {
                fraction = c.fraction()?;
            }
        }
        c.skip_spaces();
        if let Some(sign @ (b'+' | b'-')) = c.peek() {
            c.at += 1;
            let hours = c.number(2, 2)?;
            c.eat(b':');
            let minutes = if c.at_end() { 0 } else { c.number(2, 2)? };
            if hours > 14 || minutes > 59 {
                return None;
            }
            offset = (hours * 60 + minutes) * TICKS_PER_MINUTE;
            if sign == b'-' {
                offset = -offset;
            }
        } else if !c.at_end() {
            let zone = c.word();
            if !["Z", "GMT", "UTC"]
                .iter()
                .any(|z| zone.eq_ignore_ascii_case(z))
            {
                return None;
            }
        }
    }
    if !c.at_end() {
        return None;
    }
    let local = from_parts(year, month, day, hour, minute, second, 0)?;
    if day_of_week.is_some_and(|d| d != Parts::of(local).day_of_week) {
        return None;
    }
    // The fraction rounded to the next second, and the offset, may step out of range.
    datetime(Some(local + fraction - offset)).ok()
}

/// `TimeSpan.Parse`: `[-]d` or `[-][d.]hh:mm[:ss[.fffffff]]` (the invariant culture's
/// forms, which include the constant `c` format). `None` when the text is neither or a
/// component is out of range.
pub(crate) fn parse_timespan(text: &str) -> Option<i64> {
    let mut c = Cursor::new(text.trim());
    let negative = c.eat(b'-');
    let first = c.number(1, 8)?;
    let (mut days, mut hours, mut minutes, mut seconds, mut fraction) = (0, 0, 0, 0, 0);
    if c.at_end() {
        days = first;
    } else {
        if c.eat(b'.') {
            days = first;
            hours = c.number(1, 2)?;
        } else {
            hours = first;
        }
        if !c.eat(b':') {
            return None;
        }
        minutes = c.number(1, 2)?;
        if c.eat(b':') {
            seconds = c.number(1, 2)?;
            if c.eat(b'.') {
                let (digits, count) = c.digits(1, 7)?;
                fraction = digits * 10_i64.pow(u32::try_from(7 - count).ok()?);
            }
        }
    }
    if !c.at_end() || hours > 23 || minutes > 59 || seconds > 59 || days > 10_675_199 {
        return None;
    }
    let ticks = days
        .checked_mul(TICKS_PER_DAY)?
        .checked_add(hours * TICKS_PER_HOUR + minutes * TICKS_PER_MINUTE)?
        .checked_add(seconds * TICKS_PER_SECOND + fraction)?;
    Some(if negative { -ticks } else { ticks })
}

// ---- formatting -------------------------------------------------------------------------

/// `ToString()` of a `DateTime`: the invariant culture's `G`, `MM/dd/yyyy HH:mm:ss`.
pub(crate) fn display_datetime(ticks: i64) -> String {
    let p = Parts::of(ticks);
    format!(
        "{:02}/{:02}/{:04} {:02}:{:02}:{:02}",
        p.month, p.day, p.year, p.hour, p.minute, p.second
    )
}

/// A `DateTime` as Newtonsoft.Json writes it: ISO 8601 in UTC, `2024-01-02T03:04:05Z`,
/// with the fraction of a second only when it is not zero.
pub(crate) fn iso_datetime(ticks: i64) -> String {
    let p = Parts::of(ticks);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        p.year, p.month, p.day, p.hour, p.minute, p.second
    );
    if p.fraction != 0 {
        let digits = format!("{:07}", p.fraction);
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// The custom format of a standard (one-letter) `DateTime` format, in the invariant
/// culture.
fn standard_datetime_format(letter: char) -> Option<&'static str> {
    Some(match letter {
        'd' => "MM/dd/yyyy",
        'D' => "dddd, dd MMMM yyyy",
        'f' => "dddd, dd MMMM yyyy HH:mm",
        'F' | 'U' => "dddd, dd MMMM yyyy HH:mm:ss",
        'g' => "MM/dd/yyyy HH:mm",
        'G' => "MM/dd/yyyy HH:mm:ss",
        'm' | 'M' => "MMMM dd",
        'o' | 'O' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
        'r' | 'R' => "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
        's' => "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
        't' => "HH:mm",
        'T' => "HH:mm:ss",
        'u' => "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
        'y' | 'Y' => "yyyy MMMM",
        _ => return None,
    })
}

fn bad_format(format: &str, what: &str) -> Error {
    Error::Format(format!("`{format}` is not a valid {what} format string"))
}

/// `DateTime.ToString(format)`, as .NET's invariant culture formats it: an empty format
/// is `G`; one character is a standard format (anything else is an error); longer formats
/// are custom. The output is at most `limit` bytes, else [`Error::TooLong`].
pub(crate) fn format_datetime(ticks: i64, format: &str, limit: usize) -> Result<String, Error> {
    let p = Parts::of(ticks);
    let mut chars = format.chars();
    let pattern = match (chars.next(), chars.next()) {
        (None, _) => "MM/dd/yyyy HH:mm:ss",
        (Some(letter), None) => {
            standard_datetime_format(letter).ok_or_else(|| bad_format(format, "DateTime"))?
        }
        _ => format,
    };
    let pattern: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    custom_datetime(&mut out, &p, &pattern, format, limit)?;
    Ok(out)
}

/// How many times `chars[at]` repeats from `at`.
fn run_length(chars: &[char], at: usize) -> usize {
    let first = chars.get(at);
    chars[at..].iter().take_while(|c| Some(*c) == first).count()
}

/// A quoted literal starting at `chars[at]` (the quote): its text, and the number of
/// characters it took. Inside, `\x` is `x`.
fn quoted(chars: &[char], at: usize, format: &str) -> Result<(String, usize), Error> {
    let quote = chars[at];
    let mut text = String::new();
    let mut i = at + 1;
    while let Some(&c) = chars.get(i) {
        i += 1;
        if c == quote {
            return Ok((text, i - at));
        }
        if c == '\\' {
            let Some(&escaped) = chars.get(i) else { break };
            text.push(escaped);
            i += 1;
        } else {
            text.push(c);
        }
    }
    Err(Error::Format(format!(
        "the format string `{format}` has no closing {quote}"
    )))
}

fn digits(out: &mut String, value: i64, width: usize) {
    let _ = write!(out, "{value:0width$}");
}

/// The fraction of a second for `f`/`F` repeated `len` (1–7) times.
fn fraction_digits(out: &mut String, fraction: i64, len: usize, trim: bool) {
    let shift = u32::try_from(7 - len).unwrap_or_default();
    let mut value = fraction / 10_i64.pow(shift);
    let mut width = len;
    if trim {
        while width > 0 && value % 10 == 0 {
            value /= 10;
            width -= 1;
        }
        if width == 0 {
            if out.ends_with('.') {
                out.pop();
            }
            return;
        }
    }
    digits(out, value, width);
}

fn custom_datetime(
    out: &mut String,
    p: &Parts,
    chars: &[char],
    format: &str,
    limit: usize,
) -> Result<(), Error> {
    let mut i = 0;
    while let Some(&ch) = chars.get(i) {
        let run = run_length(chars, i);
        let mut taken = run;
        match ch {
            'y' if run <= 2 => digits(out, p.year % 100, run),
            'y' => digits(out, p.year, run),
            'M' if run <= 2 => digits(out, p.month, run),
            'M' if run == 3 => out.push_str(abbreviation(p.month_name())),
            'M' => out.push_str(p.month_name()),
            'd' if run <= 2 => digits(out, p.day, run),
            'd' if run == 3 => out.push_str(abbreviation(p.day_name())),
            'd' => out.push_str(p.day_name()),
            'h' => digits(out, p.hour12(), run.min(2)),
            'H' => digits(out, p.hour, run.min(2)),
            'm' => digits(out, p.minute, run.min(2)),
            's' => digits(out, p.second, run.min(2)),
            'f' | 'F' if run <= 7 => fraction_digits(out, p.fraction, run, ch == 'F'),
            'f' | 'F' => {
                return Err(Error::Format(format!(
                    "the format string `{format}` asks for more than 7 digits of a second"
                )));
            }
            't' => {
                let designator = if p.hour < 12 { "AM" } else { "PM" };
                out.push_str(if run == 1 {
                    designator.get(..1).unwrap_or_default()
                } else {
                    designator
                });
            }
            'z' => out.push_str(match run {
                1 => "+0",
                2 => "+00",
                _ => "+00:00",
            }),
            'g' => out.push_str("A.D."),
            'K' => {
                out.push('Z');
                taken = 1;
            }
            '\'' | '"' => {
                let (text, len) = quoted(chars, i, format)?;
                out.push_str(&text);
                taken = len;
            }
            '%' => match chars.get(i + 1) {
                Some(&next) if next != '%' => {
                    custom_datetime(out, p, &[next], format, limit)?;
                    taken = 2;
                }
                _ => return Err(bad_format(format, "DateTime")),
            },
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err(bad_format(format, "DateTime"));
                };
                out.push(next);
                taken = 2;
            }
            other => {
                out.push(other);
                taken = 1;
            }
        }
        i += taken;
        if out.len() > limit {
            return Err(Error::TooLong(out.len()));
        }
    }
    Ok(())
}

/// The components of a `TimeSpan`'s magnitude.
struct SpanParts {
    negative: bool,
    days: u64,
    hours: u64,
    minutes: u64,
    seconds: u64,
    fraction: u64,
}

impl SpanParts {
    fn of(ticks: i64) -> Self {
        let magnitude = ticks.unsigned_abs();
        let per = |unit: i64| unit.unsigned_abs();
        Self {
            negative: ticks < 0,
            days: magnitude / per(TICKS_PER_DAY),
            hours: magnitude / per(TICKS_PER_HOUR) % 24,
            minutes: magnitude / per(TICKS_PER_MINUTE) % 60,
            seconds: magnitude / per(TICKS_PER_SECOND) % 60,
            fraction: magnitude % per(TICKS_PER_SECOND),
        }
    }
}

/// `TimeSpan.ToString()`: the constant format `c`, `[-][d.]hh:mm:ss[.fffffff]`.
pub(crate) fn display_timespan(ticks: i64) -> String {
    let p = SpanParts::of(ticks);
    let mut out = String::new();
    if p.negative {
        out.push('-');
    }
    if p.days != 0 {
        let _ = write!(out, "{}.", p.days);
    }
    let _ = write!(out, "{:02}:{:02}:{:02}", p.hours, p.minutes, p.seconds);
    if p.fraction != 0 {
        let _ = write!(out, ".{:07}", p.fraction);
    }
    out
}

/// `TimeSpan.ToString(format)`: `c`, `t`, `T` (constant), `g` (`[-][d:]h:mm:ss[.FFFFFFF]`),
/// `G` (`[-]d:hh:mm:ss.fffffff`), or a custom format of `d`, `h`, `m`, `s`, `f`, `F`,
/// quoted literals and `\` escapes (any other character is an error, as in .NET).
pub(crate) fn format_timespan(ticks: i64, format: &str, limit: usize) -> Result<String, Error> {
    let p = SpanParts::of(ticks);
    let sign = if p.negative { "-" } else { "" };
    let mut chars = format.chars();
    match (chars.next(), chars.next()) {
        (None | Some('c' | 't' | 'T'), None) => return Ok(display_timespan(ticks)),
        (Some('g'), None) => {
            let mut out = sign.to_owned();
            if p.days != 0 {
                let _ = write!(out, "{}:", p.days);
            }
            let _ = write!(out, "{}:{:02}:{:02}", p.hours, p.minutes, p.seconds);
            if p.fraction != 0 {
                let digits = format!("{:07}", p.fraction);
                out.push('.');
                out.push_str(digits.trim_end_matches('0'));
            }
            return Ok(out);
        }
        (Some('G'), None) => {
            return Ok(format!(
                "{sign}{}:{:02}:{:02}:{:02}.{:07}",
                p.days, p.hours, p.minutes, p.seconds, p.fraction
            ));
        }
        (Some(_), None) => return Err(bad_format(format, "TimeSpan")),
        _ => {}
    }
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    custom_timespan(&mut out, &p, &chars, format, limit)?;
    Ok(out)
}

fn custom_timespan(
    out: &mut String,
    p: &SpanParts,
    chars: &[char],
    format: &str,
    limit: usize,
) -> Result<(), Error> {
    let invalid = || bad_format(format, "TimeSpan");
    let narrow = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let mut i = 0;
    while let Some(&ch) = chars.get(i) {
        let run = run_length(chars, i);
        let mut taken = run;
        match ch {
            'd' if run <= 8 => digits(out, narrow(p.days), run),
            'h' if run <= 2 => digits(out, narrow(p.hours), run),
            'm' if run <= 2 => digits(out, narrow(p.minutes), run),
            's' if run <= 2 => digits(out, narrow(p.seconds), run),
            'f' | 'F' if run <= 7 => {
                let shift = u32::try_from(7 - run).unwrap_or_default();
                let mut value = narrow(p.fraction) / 10_i64.pow(shift);
                let mut width = run;
                if ch == 'F' {
                    while width > 0 && value % 10 == 0 {
                        value /= 10;
                        width -= 1;
                    }
                }
                if width > 0 {
                    digits(out, value, width);
                }
            }
            '\'' | '"' => {
                let (text, len) = quoted(chars, i, format)?;
                out.push_str(&text);
                taken = len;
            }
            '%' => match chars.get(i + 1) {
                Some(&next) if next != '%' => {
                    custom_timespan(out, p, &[next], format, limit)?;
                    taken = 2;
                }
                _ => return Err(invalid()),
            },
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err(invalid());
                };
                out.push(next);
                taken = 2;
            }
            _ => return Err(invalid()),
        }
        i += taken;
        if out.len() > limit {
            return Err(Error::TooLong(out.len()));
        }
    }
    Ok(())
}

// ---- Guid -------------------------------------------------------------------------------

/// 16 random bytes as a version-4 GUID, `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx` (lowercase).
pub(crate) fn guid_from_random(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    guid_format(&hex, 'D').unwrap_or_default()
}

/// The 32 lowercase hex digits of a GUID written as `N` (32 digits), `D` (hyphenated),
/// `B` (`{D}`) or `P` (`(D)`), around which spaces are ignored.
pub(crate) fn guid_digits(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = match (text.chars().next(), text.chars().last()) {
        (Some('{'), Some('}')) | (Some('('), Some(')')) => {
            let inner = text.get(1..text.len() - 1)?;
            if inner.len() != 36 {
                return None;
            }
            inner
        }
        _ => text,
    };
    let valid = match inner.len() {
        32 => inner.bytes().all(|b| b.is_ascii_hexdigit()),
        36 => inner.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        }),
        _ => false,
    };
    valid.then(|| inner.replace('-', "").to_ascii_lowercase())
}

/// 32 hex digits written as `Guid.ToString(format)` does for `N`, `D`, `B` and `P`.
pub(crate) fn guid_format(digits: &str, format: char) -> Option<String> {
    let group = |from: usize, to: usize| digits.get(from..to);
    let d = format!(
        "{}-{}-{}-{}-{}",
        group(0, 8)?,
        group(8, 12)?,
        group(12, 16)?,
        group(16, 20)?,
        group(20, 32)?
    );
    Some(match format {
        'N' | 'n' => digits.to_owned(),
        'D' | 'd' => d,
        'B' | 'b' => format!("{{{d}}}"),
        'P' | 'p' => format!("({d})"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_calendar_round_trips_over_the_whole_range() {
        let mut days = 0;
        while days <= MAX_TICKS / TICKS_PER_DAY {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            days += 97;
        }
        assert_eq!(civil_from_days(0), (1, 1, 1));
        assert_eq!(civil_from_days(MAX_TICKS / TICKS_PER_DAY), (9999, 12, 31));
        assert_eq!(civil_from_days(DAYS_TO_UNIX_EPOCH), (1970, 1, 1));
        // 0001-01-01 was a Monday, 1970-01-01 a Thursday
        assert_eq!(Parts::of(0).day_of_week, 1);
        assert_eq!(Parts::of(UNIX_EPOCH_TICKS).day_of_week, 4);
        assert_eq!(Parts::of(MAX_TICKS).day_of_year, 365);
    }

    #[test]
    fn parse_and_format_agree() {
        for text in [
            "2024-02-29T23:59:59.9999999Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.9999999Z",
            "2000-01-01T00:00:00.5Z",
        ] {
            let ticks = parse_datetime(text).unwrap();
            assert_eq!(iso_datetime(ticks), text);
        }
        assert_eq!(parse_datetime("9999-12-31T23:59:59.99999999Z"), None);
        assert_eq!(parse_timespan("-1.02:03:04.5"), Some(-937_845_000_000));
        assert_eq!(display_timespan(i64::MIN), "-10675199.02:48:05.4775808");
        assert_eq!(display_timespan(i64::MAX), "10675199.02:48:05.4775807");
    }
}
