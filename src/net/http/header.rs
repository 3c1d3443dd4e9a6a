//! Header fields of a response head: the head parse itself (`httparse`), list values,
//! `Content-Length`, `ETag`, `Retry-After` and HTTP-dates.

use super::{ETag, HttpError, Malformed, ETAG_MAX, MAX_HEADERS};
use crate::time::timestamp::{days_from_civil, days_in_month};
use crate::time::{Duration, UnixMillis};

/// When the server wants the next request (`Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetryAfter {
    /// After this long (delta-seconds; absurd values saturate).
    Delay(Duration),
    /// At this wall-clock time (an HTTP-date).
    At(UnixMillis),
}

impl RetryAfter {
    /// The wait this asks for, given the wall clock now: `None` for an HTTP-date when the wall
    /// clock is unknown. A date in the past gives zero.
    #[must_use]
    pub fn delay(self, wall_now: Option<UnixMillis>) -> Option<Duration> {
        match self {
            Self::Delay(d) => Some(d),
            Self::At(at) => wall_now
                .map(|now| Duration::from_millis(at.as_millis().saturating_sub(now.as_millis()))),
        }
    }

    /// An HTTP-date made relative to the response's own `Date` (`date`): the server wrote both
    /// with one clock, so their difference is the wait it asks for, also on a device without a
    /// wall clock and whatever the device clock's skew. A date before `Date` is zero; a delay,
    /// or a date without `Date`, is unchanged.
    #[must_use]
    pub fn relative_to(self, date: Option<UnixMillis>) -> Self {
        match (self, date) {
            (Self::At(at), Some(date)) => Self::Delay(Duration::from_millis(
                at.as_millis().saturating_sub(date.as_millis()),
            )),
            (other, _) => other,
        }
    }
}

/// The response body's `Content-Encoding`. The body is returned as sent, not decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ContentEncoding {
    /// No `Content-Encoding` (or `identity`).
    #[default]
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
    /// Anything else, or several codings.
    Other,
}

#[derive(Clone, Debug, Default)]
pub(super) struct Meta {
    pub(super) status: u16,
    pub(super) retry_after: Option<RetryAfter>,
    pub(super) etag: Option<ETag>,
    pub(super) date: Option<UnixMillis>,
    pub(super) content_encoding: ContentEncoding,
    pub(super) close: bool,
}

pub(super) struct Head {
    pub(super) meta: Meta,
    pub(super) content_length: Option<u64>,
    pub(super) chunked: bool,
}

pub(super) fn parse_head(bytes: &[u8]) -> Result<Head, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    match r.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Malformed::LineEnding.into()),
        Err(e) => {
            return Err(match e {
                httparse::Error::TooManyHeaders => HttpError::TooManyHeaders { max: MAX_HEADERS },
                httparse::Error::HeaderName => Malformed::HeaderName.into(),
                httparse::Error::HeaderValue => Malformed::HeaderValue.into(),
                httparse::Error::NewLine => Malformed::LineEnding.into(),
                httparse::Error::Version => Malformed::Version.into(),
                _ => Malformed::StatusLine.into(),
            })
        }
    }
    let status = r.code.unwrap_or(0);
    if !(100..=599).contains(&status) {
        return Err(Malformed::StatusLine.into());
    }
    let minor = r.version.unwrap_or(1);
    let mut head = Head {
        meta: Meta {
            status,
            ..Meta::default()
        },
        content_length: None,
        chunked: false,
    };
    let (mut close_token, mut keep_alive_token) = (false, false);
    let mut encodings = 0usize;
    let mut chunked_count = 0usize;
    let mut te_seen = false;
    for h in r.headers.iter() {
        let name = h.name;
        let value = trim(h.value);
        if name.eq_ignore_ascii_case("content-length") {
            let len = parse_content_length(value).ok_or(Malformed::ContentLength)?;
            if head.content_length.is_some_and(|prev| prev != len) {
                return Err(Malformed::ContentLength.into());
            }
            head.content_length = Some(len);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            te_seen = true;
            for coding in list(value) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked_count = chunked_count.saturating_add(1);
                } else {
                    return Err(HttpError::UnsupportedTransferEncoding);
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list(value) {
                close_token |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            if head.meta.retry_after.is_none() {
                head.meta.retry_after = parse_retry_after(value);
            }
        } else if name.eq_ignore_ascii_case("etag") {
            if head.meta.etag.is_none() {
                head.meta.etag = parse_etag(value);
            }
        } else if name.eq_ignore_ascii_case("date") {
            if head.meta.date.is_none() {
                head.meta.date = parse_http_date(value);
            }
        } else if name.eq_ignore_ascii_case("content-encoding") {
            for coding in list(value) {
                encodings = encodings.saturating_add(1);
                head.meta.content_encoding = if encodings > 1 {
                    ContentEncoding::Other
                } else if coding.eq_ignore_ascii_case(b"gzip")
                    || coding.eq_ignore_ascii_case(b"x-gzip")
                {
                    ContentEncoding::Gzip
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    ContentEncoding::Identity
                } else {
                    ContentEncoding::Other
                };
            }
        }
    }
    if te_seen {
        if chunked_count != 1 {
            return Err(Malformed::TransferEncoding.into());
        }
        head.chunked = true;
    }
    head.meta.close = close_token || (minor == 0 && !keep_alive_token);
    Ok(head)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The non-empty elements of a comma-separated list, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|s| !s.is_empty())
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// `Content-Length`: a number, or a list of identical numbers (`42, 42`).
fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut len = None;
    for part in value.split(|&b| b == b',') {
        let n = parse_u64(trim(part))?;
        if len.is_some_and(|prev| prev != n) {
            return None;
        }
        len = Some(n);
    }
    len
}

fn parse_etag(value: &[u8]) -> Option<ETag> {
    if value.is_empty() || !value.is_ascii() {
        return None;
    }
    let s = core::str::from_utf8(value).ok()?;
    let mut tag = ETag::new();
    if tag.push_str(s).is_err() {
        ph_warn!(
            "ETag of {} bytes ignored (longer than {})",
            value.len(),
            ETAG_MAX
        );
        return None;
    }
    Some(tag)
}

/// Parses a `Retry-After` value: delta-seconds (saturating) or an HTTP-date. Anything else is
/// `None`.
#[must_use]
pub fn parse_retry_after(value: &[u8]) -> Option<RetryAfter> {
    let value = trim(value);
    if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
        let secs = value.iter().fold(0u64, |n, &b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(RetryAfter::Delay(Duration::from_secs(secs)));
    }
    parse_http_date(value).map(RetryAfter::At)
}

const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const DAYS: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const LONG_DAYS: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];

fn num(s: Option<&[u8]>) -> Option<u32> {
    let s = s?;
    if s.len() > 4 {
        return None;
    }
    parse_u64(s).and_then(|n| u32::try_from(n).ok())
}

fn month(s: Option<&[u8]>) -> Option<u32> {
    let s = s?;
    let i = MONTHS.iter().position(|m| *m == s)?;
    u32::try_from(i).ok()?.checked_add(1)
}

fn lit(s: &[u8], at: usize, expected: &[u8]) -> Option<()> {
    (s.get(at..at.checked_add(expected.len())?)? == expected).then_some(())
}

/// `HH:MM:SS` at `at`.
fn time_of_day(s: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    let h = num(s.get(at..at + 2))?;
    lit(s, at + 2, b":")?;
    let m = num(s.get(at + 3..at + 5))?;
    lit(s, at + 5, b":")?;
    let sec = num(s.get(at + 6..at + 8))?;
    Some((h, m, sec))
}

fn to_unix(y: u32, mo: u32, d: u32, (h, mi, s): (u32, u32, u32)) -> Option<UnixMillis> {
    let y = i64::from(y);
    if !(1970..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || s > 60
    {
        return None;
    }
    let days = u64::try_from(days_from_civil(y, mo, d)).ok()?;
    let secs = days * 86_400 + u64::from(h * 3600 + mi * 60 + s);
    let t = UnixMillis::from_secs(secs);
    (t <= UnixMillis::MAX).then_some(t)
}

/// Parses an HTTP-date (RFC 9110 §5.6.7) in any of the three formats recipients must accept:
///
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit years 70-99 are 19xx, 00-69 20xx: the
///   parser has no clock to apply RFC 9110's "50 years in the future" rule)
/// - asctime: `Sun Nov  6 08:49:37 1994`
///
/// Names are case-sensitive, as the grammar says; the weekday is not checked against the date.
/// Dates before 1970 or after 9999, and anything malformed, are `None`.
#[must_use]
pub fn parse_http_date(value: &[u8]) -> Option<UnixMillis> {
    let s = trim(value);
    let short_day = s.get(..3).is_some_and(|d| DAYS.contains(&d));
    if short_day && s.len() == 29 && lit(s, 3, b", ").is_some() {
        // "Sun, 06 Nov 1994 08:49:37 GMT"
        lit(s, 7, b" ")?;
        lit(s, 11, b" ")?;
        lit(s, 16, b" ")?;
        lit(s, 25, b" GMT")?;
        let d = num(s.get(5..7))?;
        let mo = month(s.get(8..11))?;
        let y = num(s.get(12..16))?;
        return to_unix(y, mo, d, time_of_day(s, 17)?);
    }
    if short_day && s.len() == 24 && lit(s, 3, b" ").is_some() {
        // "Sun Nov  6 08:49:37 1994"
        let mo = month(s.get(4..7))?;
        lit(s, 7, b" ")?;
        let d = match s.get(8..10)? {
            [b' ', d] => num(Some(core::slice::from_ref(d)))?,
            dd => num(Some(dd))?,
        };
        lit(s, 10, b" ")?;
        lit(s, 19, b" ")?;
        let y = num(s.get(20..24))?;
        return to_unix(y, mo, d, time_of_day(s, 11)?);
    }
    // "Sunday, 06-Nov-94 08:49:37 GMT"
    let comma = s.iter().position(|&b| b == b',')?;
    if !LONG_DAYS.contains(&s.get(..comma)?) {
        return None;
    }
    let r = s.get(comma + 1..)?;
    if r.len() != 23 {
        return None;
    }
    lit(r, 0, b" ")?;
    lit(r, 3, b"-")?;
    lit(r, 7, b"-")?;
    lit(r, 10, b" ")?;
    lit(r, 19, b" GMT")?;
    let d = num(r.get(1..3))?;
    let mo = month(r.get(4..7))?;
    let yy = num(r.get(8..10))?;
    let y = if yy < 70 { 2000 + yy } else { 1900 + yy };
    to_unix(y, mo, d, time_of_day(r, 11)?)
}
