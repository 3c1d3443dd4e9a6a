//! Absolute and relative dates for the property operators `is_date_before` / `is_date_after`,
//! as posthog-python 7.91.1 reads them (`_parse_date_filter`, `parse_datetime`,
//! `relative_date_parse_for_feature_flag_matching`, `_match_date_property`). Allocation-free;
//! instants are integers ([`DateInstant`], microseconds, because Python's `datetime` keeps
//! microseconds and the reference compares at that precision).
//!
//! # Filter values ([`DateFilter`])
//!
//! The filter text is Python's `str()` of the JSON value: a string as is, an integer as its
//! digits (so `1234` is the bare year 1234), a float as its shortest round-trip spelling
//! (PostHog's JSON float spelling, posthog-python `_format_json_float`, gives the same results
//! here); `true`, `false`, `null`, arrays and objects never parse, so the evaluator may treat
//! them as invalid without building text.
//!
//! 1. **Relative** first, on the text as given (not trimmed): the whole text matches
//!    `-?[0-9]+[a-z]`, optionally followed by one `\n` (Python's `$`). The number must be below
//!    10 000. Units: `h` hours, `d` days, `w` weeks, `m` calendar months, `y` calendar years;
//!    any other letter is invalid. The sign means nothing: a relative date is always `now`
//!    minus the amount ([`RelativeDate`]).
//!    - Months are subtracted one at a time, clamping the day to each month's length on the way
//!      (`Mar 31 - 2m` is `Jan 28`, through `Feb 28`); years clamp `Feb 29` to `Feb 28`. The
//!      result must fall in years 1 to 9999, otherwise the filter is invalid *at that moment*
//!      ([`DateFilter::resolve`] fails). The time of day (and its microseconds) is kept.
//! 2. Otherwise **absolute** ([`parse_date`]): trim Python whitespace; a trailing `Z` becomes
//!    `+00:00`; else a trailing ` UTC` (any case) becomes `+00:00`; else exactly four digits
//!    are that year on *today's* month and day (midnight UTC). Then a space before a final
//!    `+HH:MM`/`-HH:MM` is removed, and the rest is read by CPython's `datetime.fromisoformat`
//!    (the C implementation of CPython 3.11 to 3.13, reproduced byte for byte):
//!    - dates `YYYY-MM-DD`, `YYYYMMDD`, ISO weeks `YYYY-Www[-D]`, `YYYYWww[D]`;
//!    - then, after **any one character** (`T`, space, `x`, `é`, ...), a time
//!      `HH[:MM[:SS]]` or `HHMM[SS]`, a fraction after `.` or `,` (any number of digits, cut to
//!      microseconds), and an offset `Z`, `±HH`, `±HHMM`, `±HH:MM`, `±HH:MM:SS[.ffffff]`
//!      strictly within ±24 h. CPython's quirks are kept (`12.5` is `12:00:00.5`, an empty
//!      fraction before an offset is allowed, ...).
//!    - A value without an offset is UTC.
//!
//! An invalid filter is inconclusive with reason `unsupported_definition`
//! ([`Inconclusive::InvalidFilter`]).
//!
//! # Property values
//!
//! A string is parsed as an absolute date as above (a relative form is *not* accepted); if it
//! does not parse: inconclusive, `missing_context`. Any other JSON value (a number, a boolean,
//! an array, an object) is inconclusive `missing_context` too ([`DateProperty::NotText`]).
//! posthog-node reads numbers as epoch milliseconds; posthog-python, the reference, does not.
//!
//! # Comparison
//!
//! `is_date_before`: property < filter; `is_date_after`: property > filter; both strict, on
//! instants in microseconds ([`date_match`]).
//!
//! # What the evaluator still does (the checks before the operator)
//!
//! - A missing key is inconclusive: `missing_context`, or `unsupported_definition` when the
//!   filter value is itself invalid (check it with [`DateFilter::parse`] first, then
//!   [`DateFilter::resolve`], because a relative filter is revalidated against `now`).
//! - A JSON `null` property value is **false** (not inconclusive), before the filter is looked
//!   at.
//!
//! # Deliberate differences from posthog-python
//!
//! - *Today* for a bare year is the UTC date of `now`; Python uses the host's local date (the
//!   same on a UTC server).
//! - Python's `\d{4}` also matches non-ASCII decimal digits (`"٢٠٢٤"` is a bare year there);
//!   here only ASCII digits are (PostHog's other SDKs read ASCII digits only).
//! - CPython 3.10 accepted less (no `Z`, basic formats, weeks, or fractions other than 3 or 6
//!   digits); CPython 3.14 rejects a fraction on hours or minutes. This follows 3.11 to 3.13.

use core::fmt;

use super::semver::py_strip;
use crate::time::timestamp::{civil_from_days, days_from_civil, days_in_month, is_leap};
use crate::time::UnixMillis;

const US_PER_SEC: i64 = 1_000_000;
const US_PER_HOUR: i64 = 3600 * US_PER_SEC;
const US_PER_DAY: i64 = 24 * US_PER_HOUR;

/// An instant with microsecond precision: microseconds since 1970-01-01T00:00:00Z, negative
/// before 1970. Covers Python's `datetime` range (years 1 to 9999, in any UTC offset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DateInstant(i64);

impl DateInstant {
    /// 0001-01-01T00:00:00Z, the earliest instant a relative date may resolve to.
    pub const MIN: Self = Self(days_from_civil(1, 1, 1) * US_PER_DAY);

    /// The instant `micros` microseconds after the Unix epoch.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// The same instant as a wall-clock reading.
    #[must_use]
    pub const fn from_unix_millis(t: UnixMillis) -> Self {
        // UnixMillis stops at year 9999, far below i64::MAX microseconds.
        Self(t.as_millis() as i64 * 1000)
    }

    /// Midnight UTC of a proleptic Gregorian date, plus `micros_of_day`.
    const fn from_civil(y: i64, m: u32, d: u32, micros_of_day: i64) -> Self {
        Self(days_from_civil(y, m, d) * US_PER_DAY + micros_of_day)
    }

    /// (year, month, day, microseconds since midnight) in UTC.
    const fn to_civil(self) -> (i64, u32, u32, i64) {
        let days = self.0.div_euclid(US_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        (y, m, d, self.0.rem_euclid(US_PER_DAY))
    }
}

impl From<UnixMillis> for DateInstant {
    fn from(t: UnixMillis) -> Self {
        Self::from_unix_millis(t)
    }
}

/// Text is not a date PostHog accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseDateError {
    /// Not a relative date nor an ISO 8601 date in a form Python's `fromisoformat` reads.
    Syntax,
    /// A field is out of range: month 13, February 30, hour 24, year 0, an offset of 24 h or
    /// more, or a bare year whose today's date does not exist (Feb 29).
    FieldOutOfRange,
    /// A relative date reaches before year 1 (or after 9999) from this `now`.
    RelativeOutOfRange,
}

impl fmt::Display for ParseDateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Syntax => "not a date (ISO 8601 or relative like -7d)",
            Self::FieldOutOfRange => "a date or time field is out of range",
            Self::RelativeOutOfRange => "relative date falls outside years 1 to 9999",
        })
    }
}

impl core::error::Error for ParseDateError {}

/// Why a date filter could not be decided locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Inconclusive {
    /// The filter's value is not a date: reason `unsupported_definition`.
    InvalidFilter(ParseDateError),
    /// The property's value is not a date string: reason `missing_context`. `None` when the
    /// value is not a string at all.
    InvalidProperty(Option<ParseDateError>),
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFilter(e) => write!(f, "date filter value: {e}"),
            Self::InvalidProperty(Some(e)) => write!(f, "date property value: {e}"),
            Self::InvalidProperty(None) => f.write_str("date property value is not a string"),
        }
    }
}

impl core::error::Error for Inconclusive {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidFilter(e) | Self::InvalidProperty(Some(e)) => Some(e),
            Self::InvalidProperty(None) => None,
        }
    }
}

/// The unit of a relative date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RelativeUnit {
    /// `h`
    Hours,
    /// `d`
    Days,
    /// `w`: 7 days.
    Weeks,
    /// `m`: calendar months, clamping the day at each step.
    Months,
    /// `y`: calendar years (Feb 29 becomes Feb 28).
    Years,
}

/// A relative date such as `-7d`: `now` minus `amount` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RelativeDate {
    /// How many units, below 10 000.
    pub amount: u16,
    /// The unit.
    pub unit: RelativeUnit,
}

impl RelativeDate {
    /// Reads `text` as posthog-python's relative pattern `^-?[0-9]+[a-z]$` (where `$` also
    /// matches before one final `\n`). `None` if it does not match, the number is 10 000 or
    /// more, or the letter is not one of `h d w m y`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let b = text.as_bytes();
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        let b = b.strip_prefix(b"-").unwrap_or(b);
        let (&letter, digits) = b.split_last()?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut amount = 0u16;
        for &d in digits {
            amount = amount
                .saturating_mul(10)
                .saturating_add(u16::from(d - b'0'));
        }
        if amount >= 10_000 {
            return None;
        }
        let unit = match letter {
            b'h' => RelativeUnit::Hours,
            b'd' => RelativeUnit::Days,
            b'w' => RelativeUnit::Weeks,
            b'm' => RelativeUnit::Months,
            b'y' => RelativeUnit::Years,
            _ => return None,
        };
        Some(Self { amount, unit })
    }

    /// The instant this relative date means at `now`, or `None` when it falls outside years
    /// 1 to 9999.
    #[must_use]
    pub fn resolve(self, now: DateInstant) -> Option<DateInstant> {
        let n = i64::from(self.amount);
        let fixed = |unit_us: i64| {
            let t = DateInstant(now.0 - n * unit_us);
            (t >= DateInstant::MIN).then_some(t)
        };
        match self.unit {
            RelativeUnit::Hours => fixed(US_PER_HOUR),
            RelativeUnit::Days => fixed(US_PER_DAY),
            RelativeUnit::Weeks => fixed(7 * US_PER_DAY),
            RelativeUnit::Months => {
                let (y, m, d, tod) = now.to_civil();
                let current = y * 12 + i64::from(m) - 1;
                let target = current - n;
                let year = target.div_euclid(12);
                let month = target.rem_euclid(12) as u32 + 1;
                if !(1..=9999).contains(&year) {
                    return None;
                }
                // Clamp through every month on the way, the target included; once the day is
                // 28 or less nothing can clamp it further.
                let mut day = d;
                let mut index = current - 1;
                while index >= target && day > 28 {
                    let dim = days_in_month(index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
                    day = day.min(dim);
                    index -= 1;
                }
                Some(DateInstant::from_civil(year, month, day, tod))
            }
            RelativeUnit::Years => {
                let (y, m, d, tod) = now.to_civil();
                let year = y - n;
                if !(1..=9999).contains(&year) {
                    return None;
                }
                let day = if n > 0 && m == 2 && d == 29 { 28 } else { d };
                Some(DateInstant::from_civil(year, m, day, tod))
            }
        }
    }
}

/// posthog-python's `relative_date_parse_for_feature_flag_matching`: the instant a relative date
/// text means at `now`, or `None` when `text` is not a valid relative date (then the reference
/// tries it as an absolute date).
#[must_use]
pub fn resolve_relative(text: &str, now: DateInstant) -> Option<DateInstant> {
    RelativeDate::parse(text)?.resolve(now)
}

/// A parsed `is_date_before` / `is_date_after` filter value. Parse it when the definitions are
/// loaded; [`resolve`](Self::resolve) it against `now` at evaluation (integers only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DateFilter {
    /// A relative date, resolved against `now`.
    Relative(RelativeDate),
    /// A fixed instant.
    Absolute(DateInstant),
    /// Four digits: that year, on today's month and day, at midnight UTC.
    BareYear(u16),
}

impl DateFilter {
    /// Parses a filter value (Python `str()` of the JSON value; see the module docs).
    ///
    /// ```
    /// use posthog_embedded::flags::date::{DateFilter, DateInstant, RelativeDate, RelativeUnit};
    /// assert_eq!(
    ///     DateFilter::parse("-7d"),
    ///     Ok(DateFilter::Relative(RelativeDate { amount: 7, unit: RelativeUnit::Days }))
    /// );
    /// assert_eq!(
    ///     DateFilter::parse("2022-04-05 12:34:12 +01:00"),
    ///     Ok(DateFilter::Absolute(DateInstant::from_micros(1_649_158_452_000_000)))
    /// );
    /// assert!(DateFilter::parse("1s").is_err());
    /// ```
    ///
    /// # Errors
    /// [`ParseDateError`] when the value is neither a relative nor an absolute date.
    pub fn parse(text: &str) -> Result<Self, ParseDateError> {
        if let Some(r) = RelativeDate::parse(text) {
            return Ok(Self::Relative(r));
        }
        // Text of the relative shape that is not a valid relative date (`1s`, `10000d`) can
        // never be an absolute date either: `fromisoformat` needs a digit or `Z` at the end.
        match absolute(text)? {
            Absolute::Instant(t) => Ok(Self::Absolute(t)),
            Absolute::BareYear(y) => Ok(Self::BareYear(y)),
        }
    }

    /// The filter's instant at `now`.
    ///
    /// # Errors
    /// A relative date outside years 1 to 9999
    /// ([`ParseDateError::RelativeOutOfRange`]), or a bare year on a Feb 29 that the year
    /// lacks ([`ParseDateError::FieldOutOfRange`]).
    pub fn resolve(self, now: DateInstant) -> Result<DateInstant, ParseDateError> {
        match self {
            Self::Relative(r) => r.resolve(now).ok_or(ParseDateError::RelativeOutOfRange),
            Self::Absolute(t) => Ok(t),
            Self::BareYear(y) => bare_year(y, now),
        }
    }
}

/// Parses an absolute date (posthog-python `parse_datetime`, then naive means UTC): the
/// property side of the date operators. `now` only matters for a bare year (`"2024"`).
///
/// ```
/// use posthog_embedded::flags::date::{parse_date, DateInstant};
/// let now = DateInstant::from_micros(0);
/// let t = parse_date("2022-05-01", now).unwrap();
/// assert_eq!(parse_date("2022-05-01T02:00:00+02:00", now), Ok(t));
/// assert_eq!(parse_date(" 2022-05-01 00:00:00 UTC ", now), Ok(t));
/// assert!(parse_date("-7d", now).is_err());
/// ```
///
/// # Errors
/// [`ParseDateError`] when the text is not a date.
pub fn parse_date(text: &str, now: DateInstant) -> Result<DateInstant, ParseDateError> {
    match absolute(text)? {
        Absolute::Instant(t) => Ok(t),
        Absolute::BareYear(y) => bare_year(y, now),
    }
}

/// `is_date_before` or `is_date_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DateOp {
    /// `is_date_before`: property < filter.
    Before,
    /// `is_date_after`: property > filter.
    After,
}

impl DateOp {
    /// The operator named `name` in a property filter, if it is a date operator.
    /// (`is_date_exact` is not one: PostHog treats it as an unknown operator.)
    #[must_use]
    pub fn from_operator(name: &str) -> Option<Self> {
        match name {
            "is_date_before" => Some(Self::Before),
            "is_date_after" => Some(Self::After),
            _ => None,
        }
    }

    /// The operator's name in a property filter.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Before => "is_date_before",
            Self::After => "is_date_after",
        }
    }

    /// Compares two instants (strictly). Integer-only.
    #[must_use]
    pub fn compare(self, property: DateInstant, filter: DateInstant) -> bool {
        match self {
            Self::Before => property < filter,
            Self::After => property > filter,
        }
    }
}

/// The property side of a date filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateProperty<'a> {
    /// A JSON string.
    Text(&'a str),
    /// A number, boolean, array or object: never a date for the reference. (JSON `null` is the
    /// evaluator's business: it makes the filter false before this module is asked.)
    NotText,
}

/// Evaluates `is_date_before` / `is_date_after` in the reference's order: the filter is parsed
/// and resolved against `now` first (an unusable filter wins), then the property value.
///
/// ```
/// use posthog_embedded::flags::date::{date_match, DateInstant, DateOp, DateProperty};
/// let now = DateInstant::from_micros(1_651_363_200_000_000); // 2022-05-01T00:00:00Z
/// let before = |p| date_match(DateOp::Before, DateProperty::Text(p), "-1d", now);
/// assert_eq!(before("2022-04-29 23:59:00"), Ok(true));
/// assert_eq!(before("2022-04-30 00:00:01"), Ok(false));
/// ```
///
/// # Errors
/// [`Inconclusive::InvalidFilter`] (`unsupported_definition`) or
/// [`Inconclusive::InvalidProperty`] (`missing_context`).
pub fn date_match(
    op: DateOp,
    property: DateProperty<'_>,
    filter: &str,
    now: DateInstant,
) -> Result<bool, Inconclusive> {
    let filter = DateFilter::parse(filter)
        .and_then(|f| f.resolve(now))
        .map_err(Inconclusive::InvalidFilter)?;
    let DateProperty::Text(text) = property else {
        return Err(Inconclusive::InvalidProperty(None));
    };
    let value = parse_date(text, now).map_err(|e| Inconclusive::InvalidProperty(Some(e)))?;
    Ok(op.compare(value, filter))
}

/// `datetime(year, today.month, today.day)`, naive, so UTC.
fn bare_year(year: u16, now: DateInstant) -> Result<DateInstant, ParseDateError> {
    let (_, m, d, _) = now.to_civil();
    let y = i64::from(year);
    if y < 1 || d > days_in_month(y, m) {
        return Err(ParseDateError::FieldOutOfRange);
    }
    Ok(DateInstant::from_civil(y, m, d, 0))
}

enum Absolute {
    Instant(DateInstant),
    BareYear(u16),
}

/// posthog-python `parse_datetime`: the text rewrites, then `fromisoformat`.
fn absolute(text: &str) -> Result<Absolute, ParseDateError> {
    const UTC: &[u8] = b"+00:00";
    let text = py_strip(text).as_bytes();
    let is_space_offset = |b: &[u8]| {
        matches!(b, [.., b' ', b'+' | b'-', h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()))
    };
    let iso = if let Some(body) = text.strip_suffix(b"Z") {
        // `text[:-1] + "+00:00"`, then the space before it (if any) goes.
        Iso::new(body.strip_suffix(b" ").unwrap_or(body), UTC)
    } else if text.len() >= 4
        && text
            .get(text.len() - 4..)
            .is_some_and(|s| s.eq_ignore_ascii_case(b" utc"))
    {
        let body = text.get(..text.len() - 4).unwrap_or_default();
        Iso::new(body.strip_suffix(b" ").unwrap_or(body), UTC)
    } else if let [a @ b'0'..=b'9', b @ b'0'..=b'9', c @ b'0'..=b'9', d @ b'0'..=b'9'] = *text {
        let digit = |x: u8| u16::from(x - b'0');
        return Ok(Absolute::BareYear(
            digit(a) * 1000 + digit(b) * 100 + digit(c) * 10 + digit(d),
        ));
    } else if is_space_offset(text) {
        // " +HH:MM" at the very end loses its space: the last 6 bytes are ASCII.
        let split = text.len() - 7;
        Iso::new(
            text.get(..split).unwrap_or_default(),
            text.get(split + 1..).unwrap_or_default(),
        )
    } else {
        Iso::new(text, b"")
    };
    iso.parse().map(Absolute::Instant)
}

/// The text `fromisoformat` sees: `head` followed by `tail` (the rewrites only ever replace a
/// suffix), read byte by byte with C's "NUL past the end" convention.
struct Iso<'a> {
    head: &'a [u8],
    tail: &'a [u8],
}

/// Result of CPython's `parse_hh_mm_ss_ff`: the fields, and whether text remains after them.
struct Hms {
    h: i64,
    m: i64,
    s: i64,
    us: i64,
    more: bool,
}

impl<'a> Iso<'a> {
    fn new(head: &'a [u8], tail: &'a [u8]) -> Self {
        Self { head, tail }
    }

    fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// The byte at `i`, or 0 past the end (C reads the string's NUL terminator).
    fn at(&self, i: usize) -> u8 {
        match i.checked_sub(self.head.len()) {
            None => self.head.get(i).copied().unwrap_or(0),
            Some(j) => self.tail.get(j).copied().unwrap_or(0),
        }
    }

    /// Number of characters (code points): bytes that do not continue a UTF-8 sequence.
    fn chars(&self) -> usize {
        let count = |s: &[u8]| s.iter().filter(|&&b| b & 0xC0 != 0x80).count();
        count(self.head) + count(self.tail)
    }

    /// `n` ASCII digits at `*p` (C `parse_digits`).
    fn digits(&self, p: &mut usize, n: usize) -> Result<i64, ParseDateError> {
        let mut v = 0i64;
        for _ in 0..n {
            let c = self.at(*p);
            if !c.is_ascii_digit() {
                return Err(ParseDateError::Syntax);
            }
            v = v * 10 + i64::from(c - b'0');
            *p += 1;
        }
        Ok(v)
    }

    /// `datetime.fromisoformat` (CPython 3.11-3.13 `datetime_fromisoformat`), naive as UTC.
    fn parse(&self) -> Result<DateInstant, ParseDateError> {
        let len = self.len();
        if self.chars() < 7 {
            return Err(ParseDateError::Syntax);
        }
        let sep = self.separator().ok_or(ParseDateError::Syntax)?;
        let (y, mo, d) = self.date(sep)?;
        let (h, mi, s, us, offset_us) = if len > sep {
            // Skip the separator, whatever character it is.
            let lead = self.at(sep);
            let width = if lead & 0x80 == 0 {
                1
            } else {
                match lead & 0xF0 {
                    0xE0 => 3,
                    0xF0 => 4,
                    _ => 2,
                }
            };
            self.time(sep + width)?
        } else {
            (0, 0, 0, 0, 0)
        };
        // The datetime constructor's checks.
        if !(1..=9999).contains(&y)
            || !(1..=12).contains(&mo)
            || d < 1
            || d > i64::from(days_in_month(y, mo as u32))
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(ParseDateError::FieldOutOfRange);
        }
        let local = days_from_civil(y, mo as u32, d as u32) * US_PER_DAY
            + (h * 3600 + mi * 60 + s) * US_PER_SEC
            + us;
        Ok(DateInstant(local - offset_us))
    }

    /// C `_find_isoformat_datetime_separator`: where the date part ends.
    fn separator(&self) -> Option<usize> {
        let len = self.len();
        if len == 7 {
            return Some(7);
        }
        if self.at(4) == b'-' {
            if self.at(5) != b'W' {
                return Some(10); // YYYY-MM-DD
            }
            if len > 8 && self.at(8) == b'-' {
                if len == 9 {
                    return None;
                }
                if len > 10 && self.at(10).is_ascii_digit() {
                    return Some(8); // YYYY-Www-HH..., the dash is the separator
                }
                return Some(10); // YYYY-Www-D
            }
            return Some(8); // YYYY-Www
        }
        if self.at(4) == b'W' {
            // YYYYWww or YYYYWwwD: count the digits from index 7.
            let mut idx = 7;
            while idx < len && self.at(idx).is_ascii_digit() {
                idx += 1;
            }
            if idx < 9 {
                return Some(idx);
            }
            return Some(if idx % 2 == 0 { 7 } else { 8 });
        }
        Some(8) // YYYYMMDD
    }

    /// C `parse_isoformat_date` over the first `sep` bytes: (year, month, day), unchecked.
    fn date(&self, sep: usize) -> Result<(i64, i64, i64), ParseDateError> {
        let mut p = 0;
        let year = self.digits(&mut p, 4)?;
        let dashes = self.at(p) == b'-';
        if dashes {
            p += 1;
        }
        if self.at(p) == b'W' {
            p += 1;
            let week = self.digits(&mut p, 2)?;
            let mut weekday = 1;
            if p < sep {
                if dashes {
                    if self.at(p) != b'-' {
                        return Err(ParseDateError::Syntax);
                    }
                    p += 1;
                }
                weekday = self.digits(&mut p, 1)?;
            }
            return iso_week_date(year, week, weekday);
        }
        let month = self.digits(&mut p, 2)?;
        if dashes {
            if self.at(p) != b'-' {
                return Err(ParseDateError::Syntax);
            }
            p += 1;
        }
        let day = self.digits(&mut p, 2)?;
        Ok((year, month, day))
    }

    /// C `parse_hh_mm_ss_ff` over `[start, end)`.
    fn hms(&self, start: usize, end: usize) -> Result<Hms, ParseDateError> {
        let mut vals = [0i64; 3];
        let mut p = start;
        let mut colons = true;
        for i in 0..3 {
            let v = self.digits(&mut p, 2)?;
            if let Some(slot) = vals.get_mut(i) {
                *slot = v;
            }
            let c = self.at(p);
            p += 1;
            if i == 0 {
                colons = c == b':';
            }
            if p >= end {
                let [h, m, s] = vals;
                return Ok(Hms {
                    h,
                    m,
                    s,
                    us: 0,
                    more: c != 0,
                });
            } else if colons && c == b':' {
                continue;
            } else if c == b'.' || c == b',' {
                break;
            } else if !colons {
                p -= 1;
            } else {
                return Err(ParseDateError::Syntax);
            }
        }
        // The fraction: up to six digits, scaled to microseconds; further digits are skipped.
        // (At least one byte remains: every path here has `p < end`.)
        let to_parse = end.saturating_sub(p).min(6);
        let mut us = self.digits(&mut p, to_parse)?;
        for _ in to_parse..6 {
            us *= 10;
        }
        while self.at(p).is_ascii_digit() {
            p += 1;
        }
        let [h, m, s] = vals;
        Ok(Hms {
            h,
            m,
            s,
            us,
            more: self.at(p) != 0,
        })
    }

    /// C `parse_isoformat_time` from `start` to the end: (h, m, s, us, UTC offset in µs).
    fn time(&self, start: usize) -> Result<(i64, i64, i64, i64, i64), ParseDateError> {
        let end = self.len();
        // The first `Z`, `+` or `-` (C's do-while looks at `start` even when it is the end).
        let mut tz = start;
        loop {
            if matches!(self.at(tz), b'Z' | b'+' | b'-') {
                break;
            }
            tz += 1;
            if tz >= end {
                break;
            }
        }
        let t = self.hms(start, tz)?;
        if tz >= end {
            return if t.more {
                Err(ParseDateError::Syntax)
            } else {
                Ok((t.h, t.m, t.s, t.us, 0))
            };
        }
        if self.at(tz) == b'Z' {
            return if self.at(tz + 1) == 0 {
                Ok((t.h, t.m, t.s, t.us, 0))
            } else {
                Err(ParseDateError::Syntax)
            };
        }
        let sign = if self.at(tz) == b'-' { -1 } else { 1 };
        let o = self.hms(tz + 1, end)?;
        if o.more {
            return Err(ParseDateError::Syntax);
        }
        let offset = sign * ((o.h * 3600 + o.m * 60 + o.s) * US_PER_SEC + o.us);
        // `timezone(timedelta)` requires strictly less than 24 hours either way.
        if offset.abs() >= 24 * US_PER_HOUR {
            return Err(ParseDateError::FieldOutOfRange);
        }
        Ok((t.h, t.m, t.s, t.us, offset))
    }
}

/// C `iso_to_ymd`: the date of ISO week `week`, day `weekday` (1 = Monday) of ISO year `year`.
fn iso_week_date(year: i64, week: i64, weekday: i64) -> Result<(i64, i64, i64), ParseDateError> {
    if !(1..=9999).contains(&year) {
        return Err(ParseDateError::FieldOutOfRange);
    }
    // Monday = 0. 1970-01-01 was a Thursday.
    let weekday_of = |days: i64| (days + 3).rem_euclid(7);
    if !(1..53).contains(&week) {
        let jan1 = weekday_of(days_from_civil(year, 1, 1));
        // Week 53 exists in years starting on a Thursday, and leap years starting on a
        // Wednesday.
        if !(week == 53 && (jan1 == 3 || (jan1 == 2 && is_leap(year)))) {
            return Err(ParseDateError::FieldOutOfRange);
        }
    }
    if !(1..8).contains(&weekday) {
        return Err(ParseDateError::FieldOutOfRange);
    }
    let jan4 = days_from_civil(year, 1, 4);
    let week1_monday = jan4 - weekday_of(jan4);
    let (y, m, d) = civil_from_days(week1_monday + (week - 1) * 7 + weekday - 1);
    Ok((y, i64::from(m), i64::from(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateInstant {
        parse_date(s, DateInstant(0)).unwrap()
    }

    fn iso(s: &str) -> Result<DateInstant, ParseDateError> {
        parse_date(s, DateInstant(0))
    }

    #[test]
    fn fromisoformat_forms() {
        let base = at("2024-01-01T12:30:45");
        assert_eq!(at("20240101T123045"), base);
        assert_eq!(at("2024-01-01 12:30:45"), base);
        assert_eq!(at("2024-01-01é12:30:45"), base);
        assert_eq!(at("2024-01-01😀12:30:45"), base);
        assert_eq!(at("2024-01-01T12:30:45Z"), base);
        assert_eq!(at("2024-01-01T12:30:45 UTC"), base);
        assert_eq!(at("2024-01-01T12:30:45 utc"), base);
        assert_eq!(at("2024-01-01T12:30:45-00:00"), base);
        assert_eq!(at("2024-01-01T13:30:45+01"), base);
        assert_eq!(at("2024-01-01T13:30:45 +01:00"), base);
        assert_eq!(at("2024-01-01T13:30:45+0100"), base);
        assert_eq!(at("2024-W01-1T12:30:45"), base);
        assert_eq!(at("2024W011T12:30:45"), base);
        assert_eq!(
            at("2024-01-01T12:30:45.1234567").as_micros(),
            base.as_micros() + 123_456
        );
        assert_eq!(
            at("2024-01-01T12:30:45,5").as_micros(),
            base.as_micros() + 500_000
        );
        // CPython 3.11-3.13 quirks.
        assert_eq!(
            at("2024-01-01T12.5"),
            DateInstant(at("2024-01-01T12").0 + 500_000)
        );
        assert_eq!(at("2024-01-01T12:30:45.+01:00"), at("2024-01-01T11:30:45"));
        assert_eq!(at("2024-01-01 +01:00"), at("2024-01-01T01:00"));
        assert_eq!(at("2024-01-01Z"), at("2024-01-01T00:00"));
        assert_eq!(at("2020-W53"), at("2020-12-28"));
        for bad in [
            "2024-01",
            "2024-01-01T",
            "2024-01-01T1",
            "2024-01-01T12:3",
            "2024-01-01T24:00",
            "2024-01-01T23:59:60",
            "2024-02-30",
            "0000-01-01",
            "2024-W53",
            "2024-W00",
            "2024-01-01T12:30:45+24:00",
            "2024-01-01T12:30:45z",
            "2024-01-01T12:30:45.",
            "2024-01-01T12:30:45+01:00 x",
            "2024-1-01",
            "not-a-date",
            "",
            "Z",
            "1.0.0",
            "2024-01-01T12:30:45+01:3",
        ] {
            assert!(iso(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn extremes() {
        assert_eq!(at("0001-01-01"), DateInstant::MIN);
        assert!(at("0001-01-01T00:00+01:00") < DateInstant::MIN);
        assert_eq!(
            at("9999-12-31T23:59:59.999999").as_micros(),
            253_402_300_799_999_999
        );
    }

    #[test]
    fn relative_forms() {
        let r = |s| RelativeDate::parse(s);
        assert_eq!(
            r("-7d"),
            Some(RelativeDate {
                amount: 7,
                unit: RelativeUnit::Days
            })
        );
        assert_eq!(
            r("7d\n"),
            Some(RelativeDate {
                amount: 7,
                unit: RelativeUnit::Days
            })
        );
        assert_eq!(r("0009999y").map(|x| x.amount), Some(9999));
        for bad in [
            "7d\n\n", " 7d", "7d ", "--7d", "+7d", "7D", "7", "d", "-d", "10000h", "1s", "7dd",
            "٧d",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
        let now = at("2025-03-31T12:00:00");
        assert_eq!(resolve_relative("2m", now), Some(at("2025-01-28T12:00:00")));
        assert_eq!(resolve_relative("2025y", now), None);
        assert_eq!(
            resolve_relative("2024y", now),
            Some(at("0001-03-31T12:00:00"))
        );
        assert_eq!(
            resolve_relative("9999m", now),
            Some(at("1191-12-28T12:00:00"))
        );
    }

    #[test]
    fn bare_year_uses_todays_date() {
        let now = at("2024-02-29T15:00:00");
        assert_eq!(parse_date("2020", now), Ok(at("2020-02-29")));
        assert_eq!(
            parse_date("2023", now),
            Err(ParseDateError::FieldOutOfRange)
        );
        assert_eq!(
            parse_date("0000", now),
            Err(ParseDateError::FieldOutOfRange)
        );
        assert_eq!(DateFilter::parse("1234"), Ok(DateFilter::BareYear(1234)));
    }
}
