//! Local feature-flag evaluation, allocation-free.
//!
//! The building blocks land first; the definitions store and the evaluator build on them.
//!
//! - [`hash`]: PostHog's SHA-1 bucketing, compared in integer arithmetic.
//! - [`regex`]: a linear-time, bounded-memory matcher for the regex syntax PostHog filters use.
//! - [`semver`]: semantic-version parsing and the semver operators' ranges.
//! - [`date`]: absolute and relative dates for `is_date_before` / `is_date_after`.

pub mod date;
pub mod hash;
pub mod regex;
pub mod semver;
