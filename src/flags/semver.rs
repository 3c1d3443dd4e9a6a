//! Semantic-version parsing and the ranges of the `semver_*` property operators, as
//! posthog-python 7.91.1 does them (`parse_semver`, `_tilde_bounds`, `_caret_bounds`,
//! `_wildcard_bounds`, `_match_semver_property`). Allocation-free: a version is three `u64`s.
//!
//! # Parsing a version ([`parse_version`])
//!
//! 1. Trim whitespace at both ends, with Python's definition of whitespace (Unicode `White_Space`
//!    plus U+001C to U+001F).
//! 2. Remove **every** leading `v` / `V`.
//! 3. Cut at the first `-`, then at the first `+` (pre-release and build data are ignored).
//! 4. Split on `.`; the first part must be non-empty. A missing or empty second or third part is
//!    `0` (`"1.2"` is `1.2.0`, `"1..3"` is `1.0.3`); parts after the third are ignored and not
//!    checked (`"1.2.3.x"` is `1.2.3`).
//! 5. Each used part is ASCII digits without a leading zero (`0` itself is fine).
//!
//! # Operators ([`SemverFilter`])
//!
//! `semver_eq`, `semver_neq`, `semver_gt`, `semver_gte`, `semver_lt`, `semver_lte` compare the
//! tuples lexicographically. `semver_tilde`, `semver_caret` and `semver_wildcard` accept `v` with
//! `lower <= v < upper`:
//!
//! | Filter | lower | upper |
//! |---|---|---|
//! | `~X.Y.Z` | `X.Y.Z` | `X.(Y+1).0` |
//! | `^X.Y.Z`, X > 0 | `X.Y.Z` | `(X+1).0.0` |
//! | `^0.Y.Z`, Y > 0 | `0.Y.Z` | `0.(Y+1).0` |
//! | `^0.0.Z` | `0.0.Z` | `0.0.(Z+1)` |
//! | `X.*` | `X.0.0` | `(X+1).0.0` |
//! | `X.Y.*` | `X.Y.0` | `X.(Y+1).0` |
//! | `X.Y.Z` (wildcard, three parts) | `X.Y.Z` | `X.Y.(Z+1)` |
//!
//! The wildcard filter is read differently from a version: trim, remove leading `v`s, delete
//! every `*`, strip trailing dots, split on `.`, drop empty parts; one, two, or three-or-more
//! parts (the extra parts ignored). Pre-release suffixes are *not* removed there
//! (`"1.2.3-beta"` is invalid as a wildcard filter, as in the reference).
//!
//! Upper bounds are stored without the `+ 1` (`v < X.(Y+1).0` is `(v.major, v.minor) <= (X, Y)`),
//! so no component can overflow.
//!
//! # Outcomes
//!
//! A filter value that does not parse makes the filter inconclusive with reason
//! `unsupported_definition`; a property value that does not parse, `missing_context`
//! ([`Inconclusive`]). The evaluator still owns the checks that come before the operator
//! (posthog-python `_match_property_value`): a missing key is inconclusive (`missing_context`,
//! unless the filter is unusable, then `unsupported_definition`), and a JSON `null` property
//! value is `false`.
//!
//! Non-string JSON values are first turned into text with Python's `str()`: an integer is its
//! digits, a float Python's `repr`. For floats whose shortest form is fixed-point
//! (`1e-4 <= |x| < 1e16`) that equals PostHog's JSON float spelling (posthog-python
//! `_format_json_float`); every other float, negative number, boolean, null, array and object
//! fails to parse either way.
//!
//! # Deliberate differences from posthog-python
//!
//! - Python's `str.isdigit` / `int` also accept non-ASCII decimal digits (`"١.٢.٣"` is `1.2.3`
//!   there). posthog-go's `parseSemver` reads ASCII digits only (`strconv.Atoi`), which is what
//!   this module accepts.
//! - Python integers are unbounded; here a component above `u64::MAX` is
//!   [`ParseSemverError::TooLarge`], which the evaluator reports as inconclusive like any other
//!   unparsable value (the server then decides).

use core::cmp::Ordering;
use core::fmt;

/// Whether `c` is whitespace for Python's `str.strip()` / `str.isspace()`: Unicode `White_Space`
/// plus the information separators U+001C to U+001F.
#[must_use]
pub(crate) fn py_is_space(c: char) -> bool {
    crate::json::is_white_space(c) || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `s.strip()` as Python does it (see [`py_is_space`]).
#[must_use]
pub(crate) fn py_strip(s: &str) -> &str {
    s.trim_matches(py_is_space)
}

/// A version as PostHog compares it: `(major, minor, patch)`, ordered lexicographically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Version {
    /// The first component.
    pub major: u64,
    /// The second component (0 when absent).
    pub minor: u64,
    /// The third component (0 when absent).
    pub patch: u64,
}

impl Version {
    /// `major.minor.patch`.
    #[must_use]
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// Compares only the first `depth` components (1, 2 or 3).
    fn cmp_prefix(self, other: Self, depth: Depth) -> Ordering {
        let a = (self.major, self.minor, self.patch);
        let b = (other.major, other.minor, other.patch);
        match depth {
            Depth::Major => a.0.cmp(&b.0),
            Depth::Minor => (a.0, a.1).cmp(&(b.0, b.1)),
            Depth::Patch => a.cmp(&b),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Text is not a version PostHog can compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseSemverError {
    /// Nothing left to read (empty, only whitespace or `v`s, or starting with `.`, `-` or `+`).
    Empty,
    /// A component is empty where one is required, or is not all ASCII digits.
    NotANumber,
    /// A component has a leading zero (`01`), which semver 2.0.0 §2 forbids.
    LeadingZero,
    /// A component does not fit in 64 bits.
    TooLarge,
}

impl fmt::Display for ParseSemverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "not a version: no major component",
            Self::NotANumber => "not a version: a component is not a number",
            Self::LeadingZero => "not a version: a component has a leading zero",
            Self::TooLarge => "version component does not fit in 64 bits",
        })
    }
}

impl core::error::Error for ParseSemverError {}

/// Why a semver filter could not be decided locally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Inconclusive {
    /// The filter's value does not parse: reason `unsupported_definition`.
    InvalidFilter(ParseSemverError),
    /// The property's value does not parse: reason `missing_context`.
    InvalidProperty(ParseSemverError),
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidFilter(e) => write!(f, "semver filter value: {e}"),
            Self::InvalidProperty(e) => write!(f, "semver property value: {e}"),
        }
    }
}

impl core::error::Error for Inconclusive {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::InvalidFilter(e) | Self::InvalidProperty(e) => Some(e),
        }
    }
}

/// A semver operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SemverOp {
    /// `semver_eq`: property == filter.
    Eq,
    /// `semver_neq`: property != filter.
    Neq,
    /// `semver_gt`: property > filter.
    Gt,
    /// `semver_gte`: property >= filter.
    Gte,
    /// `semver_lt`: property < filter.
    Lt,
    /// `semver_lte`: property <= filter.
    Lte,
    /// `semver_tilde`: `~X.Y.Z`, from `X.Y.Z` up to `X.(Y+1).0`.
    Tilde,
    /// `semver_caret`: `^X.Y.Z`, up to the next change of the leftmost non-zero component.
    Caret,
    /// `semver_wildcard`: `X.*`, `X.Y.*` or `X.Y.Z`.
    Wildcard,
}

impl SemverOp {
    /// The operator named `name` in a property filter (`"semver_eq"`, ...), if it is one.
    #[must_use]
    pub fn from_operator(name: &str) -> Option<Self> {
        Some(match name {
            "semver_eq" => Self::Eq,
            "semver_neq" => Self::Neq,
            "semver_gt" => Self::Gt,
            "semver_gte" => Self::Gte,
            "semver_lt" => Self::Lt,
            "semver_lte" => Self::Lte,
            "semver_tilde" => Self::Tilde,
            "semver_caret" => Self::Caret,
            "semver_wildcard" => Self::Wildcard,
            _ => return None,
        })
    }

    /// The operator's name in a property filter.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "semver_eq",
            Self::Neq => "semver_neq",
            Self::Gt => "semver_gt",
            Self::Gte => "semver_gte",
            Self::Lt => "semver_lt",
            Self::Lte => "semver_lte",
            Self::Tilde => "semver_tilde",
            Self::Caret => "semver_caret",
            Self::Wildcard => "semver_wildcard",
        }
    }
}

/// How many leading components an exclusive upper bound constrains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Depth {
    /// `v < (X+1).0.0`, stored as `v.major <= X`.
    Major,
    /// `v < X.(Y+1).0`, stored as `(v.major, v.minor) <= (X, Y)`.
    Minor,
    /// `v < X.Y.(Z+1)`, stored as `v <= X.Y.Z`.
    Patch,
}

/// A parsed semver filter, ready for integer-only evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SemverFilter {
    /// One of the six comparisons against `version`.
    Compare {
        /// `Eq`, `Neq`, `Gt`, `Gte`, `Lt` or `Lte`. ([`SemverFilter::parse`] never puts a range
        /// operator here; one built by hand behaves as `Lte`.)
        op: SemverOp,
        /// The filter's version.
        version: Version,
    },
    /// A tilde, caret or wildcard range: `lower <= v`, and `v`'s first `depth` components are
    /// at most `last`'s (the exclusive bound of the reference, without its `+ 1`).
    Range {
        /// Inclusive lower bound.
        lower: Version,
        /// The largest accepted prefix.
        last: Version,
        /// How many components `last` constrains.
        depth: Depth,
    },
}

impl SemverFilter {
    /// Parses the filter value `text` (Python `str()` of the JSON value) for operator `op`.
    ///
    /// # Errors
    /// The value does not parse; the filter is inconclusive (`unsupported_definition`).
    pub fn parse(op: SemverOp, text: &str) -> Result<Self, ParseSemverError> {
        let range = |lower: Version, last: Version, depth| Self::Range { lower, last, depth };
        Ok(match op {
            SemverOp::Eq
            | SemverOp::Neq
            | SemverOp::Gt
            | SemverOp::Gte
            | SemverOp::Lt
            | SemverOp::Lte => Self::Compare {
                op,
                version: parse_version(text)?,
            },
            SemverOp::Tilde => {
                let v = parse_version(text)?;
                range(v, v, Depth::Minor)
            }
            SemverOp::Caret => {
                let v = parse_version(text)?;
                let depth = if v.major > 0 {
                    Depth::Major
                } else if v.minor > 0 {
                    Depth::Minor
                } else {
                    Depth::Patch
                };
                range(v, v, depth)
            }
            SemverOp::Wildcard => {
                let (v, depth) = parse_wildcard(text)?;
                range(v, v, depth)
            }
        })
    }

    /// Whether the property's version satisfies the filter. Integer-only.
    #[must_use]
    pub fn matches(&self, v: Version) -> bool {
        match *self {
            Self::Compare { op, version } => match op {
                SemverOp::Eq => v == version,
                SemverOp::Neq => v != version,
                SemverOp::Gt => v > version,
                SemverOp::Gte => v >= version,
                SemverOp::Lt => v < version,
                // `Compare` is only built with the six comparisons; Lte is the last one.
                _ => v <= version,
            },
            Self::Range { lower, last, depth } => {
                lower <= v && v.cmp_prefix(last, depth) != Ordering::Greater
            }
        }
    }

    /// Parses the property value `text` and tests it.
    ///
    /// # Errors
    /// The property value does not parse: [`Inconclusive::InvalidProperty`] (`missing_context`).
    pub fn matches_text(&self, text: &str) -> Result<bool, Inconclusive> {
        let v = parse_version(text).map_err(Inconclusive::InvalidProperty)?;
        Ok(self.matches(v))
    }
}

/// Evaluates a semver operator on two texts (Python `str()` of the JSON values), in the
/// reference's order: the filter is parsed first, so an unusable filter wins.
///
/// # Errors
/// [`Inconclusive::InvalidFilter`] (`unsupported_definition`) or
/// [`Inconclusive::InvalidProperty`] (`missing_context`).
pub fn semver_match(op: SemverOp, property: &str, filter: &str) -> Result<bool, Inconclusive> {
    SemverFilter::parse(op, filter)
        .map_err(Inconclusive::InvalidFilter)?
        .matches_text(property)
}

/// One numeric identifier: ASCII digits, no leading zero, fits in a `u64`.
fn component(part: &str) -> Result<u64, ParseSemverError> {
    digits(part.bytes())
}

/// The checks of posthog-python's `_semver_numeric_identifier`, in its order: non-empty and all
/// digits, then no leading zero; then (here only) the 64-bit limit.
fn digits(bytes: impl Iterator<Item = u8>) -> Result<u64, ParseSemverError> {
    let mut first = None;
    let mut count = 0usize;
    let mut all_digits = true;
    let mut value = Some(0u64);
    for b in bytes {
        first = first.or(Some(b));
        count += 1;
        if b.is_ascii_digit() {
            value = value
                .and_then(|v| v.checked_mul(10))
                .and_then(|v| v.checked_add(u64::from(b - b'0')));
        } else {
            all_digits = false;
        }
    }
    if count == 0 || !all_digits {
        Err(ParseSemverError::NotANumber)
    } else if count > 1 && first == Some(b'0') {
        Err(ParseSemverError::LeadingZero)
    } else {
        value.ok_or(ParseSemverError::TooLarge)
    }
}

/// An optional component: absent or empty means 0.
fn optional_component(part: Option<&str>) -> Result<u64, ParseSemverError> {
    match part {
        None | Some("") => Ok(0),
        Some(p) => component(p),
    }
}

/// Parses a version the way posthog-python's `parse_semver` does (see the module docs).
///
/// ```
/// use posthog_embedded::flags::semver::{parse_version, Version};
/// assert_eq!(parse_version(" v1.2.3-beta+x "), Ok(Version::new(1, 2, 3)));
/// assert_eq!(parse_version("1.2"), Ok(Version::new(1, 2, 0)));
/// assert!(parse_version("01.2.3").is_err());
/// ```
///
/// # Errors
/// [`ParseSemverError`] when the text is not a version.
pub fn parse_version(text: &str) -> Result<Version, ParseSemverError> {
    let text = py_strip(text).trim_start_matches(['v', 'V']);
    let text = text.split('-').next().unwrap_or("");
    let text = text.split('+').next().unwrap_or("");
    let mut parts = text.split('.');
    let major = match parts.next() {
        None | Some("") => return Err(ParseSemverError::Empty),
        Some(p) => component(p)?,
    };
    let minor = optional_component(parts.next())?;
    let patch = optional_component(parts.next())?;
    Ok(Version::new(major, minor, patch))
}

/// The bytes of `part` without its `*`s.
fn stars_removed(part: &str) -> impl Iterator<Item = u8> + '_ {
    part.bytes().filter(|&b| b != b'*')
}

/// Parses a `semver_wildcard` filter (posthog-python `_wildcard_bounds`): the lower bound, and
/// how many components the upper bound constrains.
fn parse_wildcard(text: &str) -> Result<(Version, Depth), ParseSemverError> {
    // The reference deletes every `*`, strips trailing dots, splits on `.` and drops empty
    // parts. Deleting `*` inside each `.`-separated part and then dropping the parts that end
    // up empty is the same thing (trailing dots only ever produce empty parts).
    let cleaned = py_strip(text).trim_start_matches(['v', 'V']);
    let mut parts = cleaned
        .split('.')
        .filter(|p| stars_removed(p).next().is_some())
        .map(|p| digits(stars_removed(p)));
    let major = parts.next().ok_or(ParseSemverError::Empty)??;
    let Some(minor) = parts.next() else {
        return Ok((Version::new(major, 0, 0), Depth::Major));
    };
    let minor = minor?;
    let Some(patch) = parts.next() else {
        return Ok((Version::new(major, minor, 0), Depth::Minor));
    };
    Ok((Version::new(major, minor, patch?), Depth::Patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Result<(u64, u64, u64), ParseSemverError> {
        parse_version(s).map(|v| (v.major, v.minor, v.patch))
    }

    #[test]
    fn parses_like_parse_semver() {
        assert_eq!(v("1.2.3"), Ok((1, 2, 3)));
        assert_eq!(v("vV v1.2.3"), Err(ParseSemverError::NotANumber));
        assert_eq!(v("vVv1.2.3"), Ok((1, 2, 3)));
        assert_eq!(v("\u{1c}\u{3000}1.2\t"), Ok((1, 2, 0)));
        assert_eq!(v("1"), Ok((1, 0, 0)));
        assert_eq!(v("1."), Ok((1, 0, 0)));
        assert_eq!(v("1..3"), Ok((1, 0, 3)));
        assert_eq!(v("1.2.3.x"), Ok((1, 2, 3)));
        assert_eq!(v("1.2.3-rc.1+build.5"), Ok((1, 2, 3)));
        assert_eq!(v("1.2+build-x"), Ok((1, 2, 0)));
        assert_eq!(v("1.2.x"), Err(ParseSemverError::NotANumber));
        assert_eq!(v("1.2. 3"), Err(ParseSemverError::NotANumber));
        assert_eq!(v("+1.2.3"), Err(ParseSemverError::Empty));
        assert_eq!(v("-1"), Err(ParseSemverError::Empty));
        assert_eq!(v(".1.2.3"), Err(ParseSemverError::Empty));
        assert_eq!(v(""), Err(ParseSemverError::Empty));
        assert_eq!(v("v"), Err(ParseSemverError::Empty));
        assert_eq!(v("0.0.0"), Ok((0, 0, 0)));
        assert_eq!(v("00.1"), Err(ParseSemverError::LeadingZero));
        assert_eq!(v("1.2.03"), Err(ParseSemverError::LeadingZero));
        assert_eq!(v("١.٢.٣"), Err(ParseSemverError::NotANumber));
        assert_eq!(v("18446744073709551615"), Ok((u64::MAX, 0, 0)));
        assert_eq!(v("18446744073709551616"), Err(ParseSemverError::TooLarge));
        assert_eq!(v("1e+16"), Err(ParseSemverError::NotANumber));
        assert_eq!(v("1000000000000000.0"), Ok((1_000_000_000_000_000, 0, 0)));
    }

    fn m(op: &str, property: &str, filter: &str) -> Result<bool, Inconclusive> {
        semver_match(SemverOp::from_operator(op).unwrap(), property, filter)
    }

    #[test]
    fn ranges() {
        assert_eq!(
            m("semver_tilde", "1.2.9", "~1.2.3"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::NotANumber))
        );
        assert_eq!(m("semver_tilde", "1.2.99", "1.2.3"), Ok(true));
        assert_eq!(m("semver_tilde", "1.3.0", "1.2.3"), Ok(false));
        assert_eq!(m("semver_caret", "1.99.0", "1.2.3"), Ok(true));
        assert_eq!(m("semver_caret", "2.0.0", "1.2.3"), Ok(false));
        assert_eq!(m("semver_caret", "0.2.9", "0.2.3"), Ok(true));
        assert_eq!(m("semver_caret", "0.3.0", "0.2.3"), Ok(false));
        assert_eq!(m("semver_caret", "0.0.3", "0.0.3"), Ok(true));
        assert_eq!(m("semver_caret", "0.0.4", "0.0.3"), Ok(false));
        assert_eq!(m("semver_caret", "0.0.0", "0.0.0"), Ok(true));
        assert_eq!(m("semver_caret", "0.0.1", "0.0.0"), Ok(false));
        assert_eq!(m("semver_wildcard", "1.9.9", "1.*"), Ok(true));
        assert_eq!(m("semver_wildcard", "2.0.0", "1.*"), Ok(false));
        assert_eq!(m("semver_wildcard", "1.2.0", "v1.2.*.*"), Ok(true));
        assert_eq!(m("semver_wildcard", "1.3.0", "1.*.3"), Ok(true));
        assert_eq!(m("semver_wildcard", "1.3.5", "1.3.5"), Ok(true));
        assert_eq!(m("semver_wildcard", "1.3.6", "1.3.5"), Ok(false));
        assert_eq!(m("semver_wildcard", "1.3.5", "1.3.5.x"), Ok(true));
        assert_eq!(
            m("semver_wildcard", "1.0.0", "*"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::Empty))
        );
        assert_eq!(
            m("semver_wildcard", "1.0.0", "1.2.3-beta"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::NotANumber))
        );
        assert_eq!(
            m("semver_wildcard", "1.0.0", "01.*"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::LeadingZero))
        );
        // `*` is deleted, not a separator: "1*2.3" is "12.3".
        assert_eq!(m("semver_wildcard", "12.3.4", "1*2.3"), Ok(true));
        assert_eq!(
            m("semver_wildcard", "12.3.4", "0*1.*"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::LeadingZero))
        );
        assert_eq!(m("semver_wildcard", "1.0.0", "1.*.*."), Ok(true));
        // No overflow at the top of the range: u64::MAX.* accepts u64::MAX.x.y.
        let max = "18446744073709551615";
        assert_eq!(m("semver_wildcard", max, max), Ok(true));
        assert_eq!(m("semver_caret", "18446744073709551615.7", max), Ok(true));
        assert_eq!(
            m(
                "semver_tilde",
                "0.18446744073709551615.9",
                "0.18446744073709551615.2"
            ),
            Ok(true)
        );
        // The filter is checked first.
        assert_eq!(
            m("semver_gt", "x", "y"),
            Err(Inconclusive::InvalidFilter(ParseSemverError::NotANumber))
        );
        assert_eq!(
            m("semver_gt", "x", "1"),
            Err(Inconclusive::InvalidProperty(ParseSemverError::NotANumber))
        );
    }

    #[test]
    fn operator_names_round_trip() {
        for name in [
            "semver_eq",
            "semver_neq",
            "semver_gt",
            "semver_gte",
            "semver_lt",
            "semver_lte",
            "semver_tilde",
            "semver_caret",
            "semver_wildcard",
        ] {
            assert_eq!(
                SemverOp::from_operator(name).map(SemverOp::as_str),
                Some(name)
            );
        }
        assert_eq!(SemverOp::from_operator("semver_exact"), None);
    }
}
