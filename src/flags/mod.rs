//! Local feature-flag evaluation, allocation-free.
//!
//! Load a `/flags/definitions` document (from the network or a snapshot in flash) into a
//! [`FlagStore`], then [`FlagStore::evaluate`] flags for an [`EvalContext`]: no allocation,
//! no parsing at evaluation time, bit-for-bit PostHog's answer, or [`Inconclusive`] with
//! PostHog's reason when only the server can decide.
//!
//! - [`context`]: who a flag is evaluated for ([`EvalContext`], [`GroupContext`]).
//! - [`outcome`]: what evaluation answers ([`FlagValue`], [`Evaluation`], [`Inconclusive`] and
//!   its [`Reason`]).
//! - [`store`]: the bounded, compiled definitions store and its loader.
//! - [`eval`]: evaluation of one flag (conditions, rollout, variants, holdouts, groups,
//!   cohorts, dependencies).
//! - [`property`]: the property operators, applied to compiled filter values.
//! - [`value`]: property values and PostHog's stringification, case-folding and number rules.
//! - [`hash`]: PostHog's SHA-1 bucketing, compared in integer arithmetic.
//! - [`regex`]: a linear-time, bounded-memory matcher for the regex syntax PostHog filters use.
//! - [`semver`]: semantic-version parsing and the semver operators' ranges.
//! - [`date`]: absolute and relative dates for `is_date_before` / `is_date_after`.
//! - [`analyze`]: what a loaded flag needs from the device, and what only the server can
//!   decide whatever the context (the CLI's `check` prints it).
//! - [`remote`]: the `/flags` request body, its parsed answer and `$feature_flag_error`, for
//!   when only the server can decide.
//! - [`called`]: `$feature_flag_called` de-duplication and the flag properties of events.

pub mod analyze;
pub mod called;
pub mod context;
pub mod date;
pub mod eval;
pub mod hash;
pub mod outcome;
pub mod property;
pub mod regex;
pub mod remote;
pub mod semver;
pub mod store;
pub mod value;

pub use analyze::{Finding, PropertyScope};
pub use context::{EvalContext, GroupContext};
pub use outcome::{
    Evaluation, FlagValue, Inconclusive, MatchReason, Reason, Variant, VariantTooLong,
    MAX_VARIANT_LEN,
};
pub use store::{FlagInfo, FlagStorage, FlagStore, FlagTables, LoadError, Requirements};
pub use value::{Properties, PropertyValue};
