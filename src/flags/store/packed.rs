//! Compact encodings of parsed date and semver filter values, kept in the store's text arena
//! so evaluation parses nothing.

use crate::flags::date::DateFilter;
use crate::flags::semver::{SemverFilter, SemverOp};

/// Encodes a [`DateFilter`] for the arena: a tag byte, then the payload little-endian.
pub(super) fn encode_date(f: DateFilter, out: &mut [u8; 9]) -> &[u8] {
    use crate::flags::date::RelativeUnit;
    match f {
        DateFilter::Relative(r) => {
            let unit = match r.unit {
                RelativeUnit::Hours => 0,
                RelativeUnit::Days => 1,
                RelativeUnit::Weeks => 2,
                RelativeUnit::Months => 3,
                RelativeUnit::Years => 4,
            };
            let a = r.amount.to_le_bytes();
            *out = [0, unit, a[0], a[1], 0, 0, 0, 0, 0];
            out.get(..4).unwrap_or_default()
        }
        DateFilter::Absolute(t) => {
            let b = t.as_micros().to_le_bytes();
            *out = [1, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
            &out[..]
        }
        DateFilter::BareYear(y) => {
            let b = y.to_le_bytes();
            *out = [2, b[0], b[1], 0, 0, 0, 0, 0, 0];
            out.get(..3).unwrap_or_default()
        }
    }
}

/// Decodes what [`encode_date`] wrote.
pub(crate) fn decode_date(b: &[u8]) -> Option<DateFilter> {
    use crate::flags::date::{DateInstant, RelativeDate, RelativeUnit};
    let u16_at = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]));
    Some(match *b.first()? {
        0 => DateFilter::Relative(RelativeDate {
            amount: u16_at(2)?,
            unit: match *b.get(1)? {
                0 => RelativeUnit::Hours,
                1 => RelativeUnit::Days,
                2 => RelativeUnit::Weeks,
                3 => RelativeUnit::Months,
                _ => RelativeUnit::Years,
            },
        }),
        1 => DateFilter::Absolute(DateInstant::from_micros(i64::from_le_bytes(
            b.get(1..9)?.try_into().ok()?,
        ))),
        _ => DateFilter::BareYear(u16_at(1)?),
    })
}

const SEMVER_OPS: [SemverOp; 9] = [
    SemverOp::Eq,
    SemverOp::Neq,
    SemverOp::Gt,
    SemverOp::Gte,
    SemverOp::Lt,
    SemverOp::Lte,
    SemverOp::Tilde,
    SemverOp::Caret,
    SemverOp::Wildcard,
];

/// Encodes a [`SemverFilter`] for the arena: tag, op or depth, then versions as `u64` LE.
pub(super) fn encode_semver(f: SemverFilter, out: &mut [u8; 50]) -> &[u8] {
    use crate::flags::semver::{Depth, Version};
    let mut put = |at: usize, v: Version| {
        for (i, x) in [v.major, v.minor, v.patch].into_iter().enumerate() {
            if let Some(dst) = out.get_mut(at + i * 8..at + i * 8 + 8) {
                dst.copy_from_slice(&x.to_le_bytes());
            }
        }
    };
    let (tag, sub, n) = match f {
        SemverFilter::Compare { op, version } => {
            put(2, version);
            (
                0,
                SEMVER_OPS.iter().position(|o| *o == op).unwrap_or(0) as u8,
                26,
            )
        }
        SemverFilter::Range { lower, last, depth } => {
            put(2, lower);
            put(26, last);
            let d = match depth {
                Depth::Major => 0,
                Depth::Minor => 1,
                Depth::Patch => 2,
            };
            (1, d, 50)
        }
    };
    out[0] = tag;
    out[1] = sub;
    out.get(..n).unwrap_or_default()
}

/// Decodes what [`encode_semver`] wrote.
pub(crate) fn decode_semver(b: &[u8]) -> Option<SemverFilter> {
    use crate::flags::semver::{Depth, Version};
    let word = |i: usize| Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
    let version = |at: usize| {
        Some(Version {
            major: word(at)?,
            minor: word(at + 8)?,
            patch: word(at + 16)?,
        })
    };
    Some(match *b.first()? {
        0 => SemverFilter::Compare {
            op: *SEMVER_OPS.get(usize::from(*b.get(1)?))?,
            version: version(2)?,
        },
        _ => SemverFilter::Range {
            lower: version(2)?,
            last: version(26)?,
            depth: match *b.get(1)? {
                0 => Depth::Major,
                1 => Depth::Minor,
                _ => Depth::Patch,
            },
        },
    })
}
