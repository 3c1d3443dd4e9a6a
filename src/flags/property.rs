//! Property filters: PostHog's 27 property operators (posthog-python `feature_flags.py`,
//! `match_property`), applied to compiled filter values.
//!
//! The checks run in posthog-python's order (`_match_property_value`): unknown operator, absent
//! key (blaming an unusable filter value before the context), `is_set` / `is_not_set`, numeric
//! operators, the null rule, then the operator itself. Stringification, case folding and number
//! parsing follow [`super::value`].
//!
//! Regex patterns are compiled when the definitions load, and their programs kept in the store's
//! byte arena (8 bytes per instruction, so a typical pattern of 20 to 60 instructions costs 160
//! to 480 bytes): evaluation only runs the program.
//!
//! Property values that must be stringified (numbers, booleans, arrays, objects) are written
//! into a [`SCRATCH`]-byte stack buffer; a value whose stringification does not fit makes the
//! filter inconclusive (`missing_context`) rather than guessed.

use super::date::{parse_date, DateInstant, DateOp};
use super::outcome::{Outcome, Reason};
use super::regex::EncodedRegex;
use super::store::{
    decode_date, decode_semver, Compiled, FilterKind, Node, NodeKind, Operator, Tables,
};
use super::value::{self, PropertyValue};
use crate::time::UnixMillis;

/// Bytes of stack used to stringify one non-string property value.
pub const SCRATCH: usize = 512;

const fn inconclusive(r: Reason) -> Outcome {
    Outcome::Inconclusive(r)
}

/// Whether a filter node can never be evaluated locally, whatever the context.
pub(crate) fn statically_unsupported(node: &Node) -> bool {
    match node.kind {
        NodeKind::Filter {
            kind: FilterKind::Broken,
            ..
        } => true,
        NodeKind::Filter {
            kind: FilterKind::Property { op, value, .. },
            ..
        } => {
            op == Operator::Unknown
                || matches!(value, Compiled::Unusable | Compiled::RegexUnsupported)
        }
        _ => false,
    }
}

/// Whether the filter value itself is unusable (an absent property then reports
/// `unsupported_definition` instead of `missing_context`, as posthog-python does).
fn filter_unusable(
    store: Tables<'_>,
    op: Operator,
    value: &Compiled,
    now: Option<UnixMillis>,
) -> bool {
    if let (Compiled::Date(t), Some(now)) = (value, now) {
        return decode_date(store.blob(*t))
            .is_none_or(|f| f.resolve(DateInstant::from_unix_millis(now)).is_err());
    }
    match value {
        Compiled::Unusable | Compiled::RegexUnsupported => true,
        Compiled::Date(_) => false,
        _ => op == Operator::Unknown,
    }
}

/// Matches one property filter against the property's value (`None`: the key is absent).
pub(crate) fn match_property(
    store: Tables<'_>,
    op: Operator,
    compiled: &Compiled,
    value: Option<PropertyValue<'_>>,
    now: Option<UnixMillis>,
) -> Outcome {
    if op == Operator::Unknown {
        return inconclusive(Reason::UnsupportedDefinition);
    }
    let Some(value) = value else {
        return inconclusive(if filter_unusable(store, op, compiled, now) {
            Reason::UnsupportedDefinition
        } else {
            Reason::MissingContext
        });
    };
    match op {
        Operator::IsSet => return Outcome::Match(true),
        Operator::IsNotSet => return Outcome::Match(false),
        Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte => {
            let Some(f) = (match *compiled {
                Compiled::Number(t) => store.blob(t).try_into().ok().map(f64::from_le_bytes),
                _ => None,
            }) else {
                return inconclusive(Reason::UnsupportedDefinition);
            };
            let Some(v) = value.as_number() else {
                return Outcome::Match(false);
            };
            return Outcome::Match(match op {
                Operator::Gt => v > f,
                Operator::Gte => v >= f,
                Operator::Lt => v < f,
                _ => v <= f,
            });
        }
        _ => {}
    }
    let stringly = matches!(
        op,
        Operator::Exact
            | Operator::IsNot
            | Operator::IContains
            | Operator::NotIContains
            | Operator::StartsWith
            | Operator::NotStartsWith
            | Operator::EndsWith
            | Operator::NotEndsWith
            | Operator::Regex
            | Operator::NotRegex
    );
    if matches!(value, PropertyValue::Null) && !stringly {
        return Outcome::Match(false);
    }
    // Made (and zeroed) only for a value that is not a plain string.
    let mut scratch = None;
    match op {
        Operator::Exact | Operator::IsNot => {
            let out = exact(store, compiled, &value, &mut scratch);
            match out {
                Outcome::Match(m) => Outcome::Match(m == (op == Operator::Exact)),
                other => other,
            }
        }
        Operator::IContains
        | Operator::NotIContains
        | Operator::StartsWith
        | Operator::NotStartsWith
        | Operator::EndsWith
        | Operator::NotEndsWith => {
            let Compiled::Text(t) = *compiled else {
                return inconclusive(Reason::UnsupportedDefinition);
            };
            let needle = store.text(t);
            let Ok(hay) = py_text(&value, &mut scratch) else {
                return inconclusive(Reason::MissingContext);
            };
            let (m, negate) = match op {
                Operator::IContains => (value::ascii_icontains(hay, needle), false),
                Operator::NotIContains => (value::ascii_icontains(hay, needle), true),
                Operator::StartsWith => (value::ascii_istarts_with(hay, needle), false),
                Operator::NotStartsWith => (value::ascii_istarts_with(hay, needle), true),
                Operator::EndsWith => (value::ascii_iends_with(hay, needle), false),
                _ => (value::ascii_iends_with(hay, needle), true),
            };
            Outcome::Match(m != negate)
        }
        Operator::Regex | Operator::NotRegex => {
            let want = op == Operator::Regex;
            let matched = match *compiled {
                Compiled::RegexInvalid => return Outcome::Match(false),
                Compiled::RegexUnsupported => return inconclusive(Reason::UnsupportedDefinition),
                Compiled::Regex(t) => {
                    let Some(re) = EncodedRegex::new(store.blob(t)) else {
                        return inconclusive(Reason::UnsupportedDefinition);
                    };
                    let Ok(hay) = py_text(&value, &mut scratch) else {
                        return inconclusive(Reason::MissingContext);
                    };
                    let Some(m) = re.is_match(hay) else {
                        return inconclusive(Reason::UnsupportedDefinition);
                    };
                    m
                }
                // The empty pattern matches everything.
                Compiled::Text(t) if store.text(t).is_empty() => return Outcome::Match(want),
                _ => return inconclusive(Reason::UnsupportedDefinition),
            };
            Outcome::Match(matched == want)
        }
        Operator::DateBefore | Operator::DateAfter => {
            let Some(filter) = (match *compiled {
                Compiled::Date(t) => decode_date(store.blob(t)),
                _ => None,
            }) else {
                return inconclusive(Reason::UnsupportedDefinition);
            };
            let op = if op == Operator::DateBefore {
                DateOp::Before
            } else {
                DateOp::After
            };
            date(op, filter, &value, now)
        }
        Operator::Semver(_) => {
            let Some(filter) = (match *compiled {
                Compiled::Semver(t) => decode_semver(store.blob(t)),
                _ => None,
            }) else {
                return inconclusive(Reason::UnsupportedDefinition);
            };
            let Ok(text) = py_text(&value, &mut scratch) else {
                return inconclusive(Reason::MissingContext);
            };
            match filter.matches_text(text) {
                Ok(m) => Outcome::Match(m),
                Err(super::semver::Inconclusive::InvalidFilter(_)) => {
                    inconclusive(Reason::UnsupportedDefinition)
                }
                Err(_) => inconclusive(Reason::MissingContext),
            }
        }
        _ => inconclusive(Reason::UnsupportedDefinition),
    }
}

/// The Python string of `value`: a plain string as it is, anything else written into
/// `scratch`, which is made on first use.
fn py_text<'r>(
    value: &PropertyValue<'r>,
    scratch: &'r mut Option<[u8; SCRATCH]>,
) -> Result<&'r str, value::StringifyError> {
    if let PropertyValue::Str(s) = *value {
        return Ok(s);
    }
    value::py_str(value, scratch.get_or_insert_with(|| [0; SCRATCH]))
}

/// `exact` (the caller negates for `is_not`).
fn exact(
    store: Tables<'_>,
    compiled: &Compiled,
    value: &PropertyValue<'_>,
    scratch: &mut Option<[u8; SCRATCH]>,
) -> Outcome {
    let Compiled::Exact {
        items,
        empty_array,
        bool_like,
    } = *compiled
    else {
        return inconclusive(Reason::UnsupportedDefinition);
    };
    if empty_array {
        return Outcome::Match(value.truthy());
    }
    if !store.settings.property_matching_v2 {
        if let Some(f) = bool_like {
            return Outcome::Match(f == value.truthy());
        }
    }
    let Ok(s) = py_text(value, scratch) else {
        return inconclusive(Reason::MissingContext);
    };
    let mut undecided = false;
    for n in store.list(items) {
        if let NodeKind::Item { text } = n.kind {
            match value::lower_eq(store.text(text), s) {
                Ok(true) => return Outcome::Match(true),
                Ok(false) => {}
                Err(_) => undecided = true,
            }
        }
    }
    if undecided {
        inconclusive(Reason::UnsupportedDefinition)
    } else {
        Outcome::Match(false)
    }
}

fn date(
    op: DateOp,
    filter: super::date::DateFilter,
    value: &PropertyValue<'_>,
    now: Option<UnixMillis>,
) -> Outcome {
    use super::date::DateFilter;
    // Without a wall clock only absolute filters can be resolved, and only property dates
    // that do not depend on today's date.
    let resolved = match (filter, now) {
        (_, Some(now)) => filter.resolve(DateInstant::from_unix_millis(now)),
        (DateFilter::Absolute(t), None) => Ok(t),
        (_, None) => return inconclusive(Reason::MissingContext),
    };
    let Ok(filter_at) = resolved else {
        return inconclusive(Reason::UnsupportedDefinition);
    };
    if !matches!(value, PropertyValue::Str(_) | PropertyValue::EscapedStr(_)) {
        return inconclusive(Reason::MissingContext);
    }
    let mut buf = [0u8; 128];
    let Ok(text) = value::py_str(value, &mut buf) else {
        return inconclusive(Reason::MissingContext);
    };
    let prop = match now {
        Some(now) => parse_date(text, DateInstant::from_unix_millis(now)),
        None => {
            // A bare year means "this year's today": undecidable without a clock.
            let a = parse_date(text, DateInstant::from_micros(0));
            let b = parse_date(text, DateInstant::from_micros(15_778_800_000_000));
            if a != b {
                return inconclusive(Reason::MissingContext);
            }
            a
        }
    };
    match prop {
        Ok(p) => Outcome::Match(op.compare(p, filter_at)),
        Err(_) => inconclusive(Reason::MissingContext),
    }
}
