//! ISO 8601 / RFC 3339 timestamps in UTC, with millisecond precision, without a calendar
//! library.
//!
//! Formatting always produces `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 bytes), as posthog-node does.
//! Parsing accepts any UTC offset and converts to the same instant in UTC, as PostHog's contract
//! requires (`2023-11-15T03:43:20.000+05:30` is `2023-11-14T22:13:20.000Z`).
//!
//! The calendar arithmetic is the proleptic Gregorian day count of Howard Hinnant's
//! `days_from_civil` / `civil_from_days`, in integers.

use super::UnixMillis;
use crate::error::ParseTimestampError;

/// Length of a formatted timestamp: `2026-01-02T03:04:05.123Z`.
pub const ISO_LEN: usize = 24;

const MS_PER_DAY: u64 = 86_400_000;

/// Days since 1970-01-01 of the given proleptic Gregorian date (negative before 1970).
#[must_use]
pub(crate) const fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1-12, day 1-31) of a day count since 1970-01-01.
#[must_use]
pub(crate) const fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether `y` is a Gregorian leap year.
#[must_use]
pub(crate) const fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Number of days in month `m` (1-12) of year `y`.
#[must_use]
pub(crate) const fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` into `buf`.
///
/// Returns `None` for instants after [`UnixMillis::MAX`] (year 9999).
pub fn format_iso8601(t: UnixMillis, buf: &mut [u8; ISO_LEN]) -> Option<&str> {
    let ms = t.as_millis();
    if ms > UnixMillis::MAX.as_millis() {
        return None;
    }
    let days = (ms / MS_PER_DAY) as i64;
    let rem = ms % MS_PER_DAY;
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1000;
    let fields: [(usize, u64, usize); 7] = [
        (0, y as u64, 4),
        (5, u64::from(m), 2),
        (8, u64::from(d), 2),
        (11, secs / 3600, 2),
        (14, (secs / 60) % 60, 2),
        (17, secs % 60, 2),
        (20, rem % 1000, 3),
    ];
    *buf = *b"0000-00-00T00:00:00.000Z";
    for (at, mut v, width) in fields {
        for i in (at..at + width).rev() {
            if let Some(c) = buf.get_mut(i) {
                *c = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    }
    core::str::from_utf8(buf).ok()
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> Result<(), ParseTimestampError> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(ParseTimestampError::Syntax)
        }
    }
    fn digits(&mut self, n: usize) -> Result<u32, ParseTimestampError> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(c @ b'0'..=b'9') => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => return Err(ParseTimestampError::Syntax),
            }
        }
        Ok(v)
    }
}

/// Parses an RFC 3339 timestamp (`T`, `t` or a space between date and time; `Z`, `z`, `±HH:MM`
/// or `±HHMM` offset; any number of fractional digits, truncated to milliseconds) into UTC.
///
/// # Errors
/// [`ParseTimestampError`] for bad syntax, out-of-range fields, and instants before 1970 or
/// after year 9999.
pub fn parse_rfc3339(s: &str) -> Result<UnixMillis, ParseTimestampError> {
    let mut c = Cursor {
        s: s.as_bytes(),
        i: 0,
    };
    let y = c.digits(4)?;
    c.eat(b'-')?;
    let mo = c.digits(2)?;
    c.eat(b'-')?;
    let d = c.digits(2)?;
    match c.peek() {
        Some(b'T' | b't' | b' ') => c.i += 1,
        _ => return Err(ParseTimestampError::Syntax),
    }
    let h = c.digits(2)?;
    c.eat(b':')?;
    let mi = c.digits(2)?;
    c.eat(b':')?;
    let sec = c.digits(2)?;
    let mut ms = 0u32;
    if c.peek() == Some(b'.') {
        c.i += 1;
        let mut n = 0;
        while let Some(ch @ b'0'..=b'9') = c.peek() {
            if n < 3 {
                ms = ms * 10 + u32::from(ch - b'0');
            }
            n += 1;
            c.i += 1;
        }
        if n == 0 {
            return Err(ParseTimestampError::Syntax);
        }
        for _ in n..3 {
            ms *= 10;
        }
    }
    let offset_min: i64 = match c.peek() {
        Some(b'Z' | b'z') => {
            c.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.i += 1;
            let oh = c.digits(2)?;
            if c.peek() == Some(b':') {
                c.i += 1;
            }
            let om = c.digits(2)?;
            if oh > 23 || om > 59 {
                return Err(ParseTimestampError::FieldOutOfRange);
            }
            let v = i64::from(oh * 60 + om);
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return Err(ParseTimestampError::Syntax),
    };
    if c.i != c.s.len() {
        return Err(ParseTimestampError::Syntax);
    }
    let yi = i64::from(y);
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(yi, mo)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return Err(ParseTimestampError::FieldOutOfRange);
    }
    let days = days_from_civil(yi, mo, d);
    let local_ms = days * MS_PER_DAY as i64
        + (i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(sec)) * 1000
        + i64::from(ms);
    let utc = local_ms - offset_min * 60_000;
    if utc < 0 || utc > UnixMillis::MAX.as_millis() as i64 {
        return Err(ParseTimestampError::OutOfRange);
    }
    Ok(UnixMillis::from_millis(utc as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(ms: u64) -> heapless::String<24> {
        let mut b = [0u8; ISO_LEN];
        let mut out = heapless::String::new();
        out.push_str(format_iso8601(UnixMillis::from_millis(ms), &mut b).unwrap())
            .unwrap();
        out
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(fmt(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt(1_767_323_045_000), "2026-01-02T03:04:05.000Z");
        assert_eq!(fmt(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(fmt(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(fmt(UnixMillis::MAX.as_millis()), "9999-12-31T23:59:59.999Z");
        let mut b = [0u8; ISO_LEN];
        assert!(format_iso8601(
            UnixMillis::from_millis(UnixMillis::MAX.as_millis() + 1),
            &mut b
        )
        .is_none());
    }

    #[test]
    fn parses_and_converts_offsets_to_utc() {
        let p = |s| parse_rfc3339(s).map(UnixMillis::as_millis);
        assert_eq!(p("2026-01-02T03:04:05Z"), Ok(1_767_323_045_000));
        assert_eq!(p("2026-01-02T03:04:05.123456+00:00"), Ok(1_767_323_045_123));
        assert_eq!(p("2026-01-02 03:04:05.1z"), Ok(1_767_323_045_100));
        // The contract's example: +05:30 becomes the same instant in UTC.
        assert_eq!(
            parse_rfc3339("2023-11-15T03:43:20.000+05:30").map(|t| fmt(t.as_millis())),
            Ok(fmt(parse_rfc3339("2023-11-14T22:13:20.000Z")
                .unwrap()
                .as_millis()))
        );
        assert_eq!(p("2023-11-14T17:13:20-0500"), p("2023-11-14T22:13:20Z"));
        assert_eq!(
            p("2024-02-30T00:00:00Z"),
            Err(ParseTimestampError::FieldOutOfRange)
        );
        assert_eq!(
            p("2023-02-29T00:00:00Z"),
            Err(ParseTimestampError::FieldOutOfRange)
        );
        assert_eq!(
            p("2024-02-29T24:00:00Z"),
            Err(ParseTimestampError::FieldOutOfRange)
        );
        assert_eq!(p("2024-02-29T00:00:00"), Err(ParseTimestampError::Syntax));
        assert_eq!(p("2024-02-29T00:00:00.Z"), Err(ParseTimestampError::Syntax));
        assert_eq!(
            p("2024-02-29T00:00:00Zjunk"),
            Err(ParseTimestampError::Syntax)
        );
        assert_eq!(
            p("1970-01-01T00:00:00+00:01"),
            Err(ParseTimestampError::OutOfRange)
        );
        assert_eq!(p(""), Err(ParseTimestampError::Syntax));
        assert_eq!(p("2024-0é-01T00:00:00Z"), Err(ParseTimestampError::Syntax));
    }

    #[test]
    fn calendar_round_trips_every_day_for_800_years() {
        let start = days_from_civil(1800, 1, 1);
        let end = days_from_civil(2600, 1, 1);
        let mut prev = civil_from_days(start - 1);
        for z in start..end {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
            assert!(d >= 1 && d <= days_in_month(y, m));
            // Each day follows the previous one.
            if d == 1 {
                assert_eq!(prev.2, days_in_month(prev.0, prev.1));
            } else {
                assert_eq!((prev.0, prev.1, prev.2 + 1), (y, m, d));
            }
            prev = (y, m, d);
        }
    }
}
