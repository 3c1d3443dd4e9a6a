//! What an evaluation answers: a flag's value and why, or why only the server can decide.

use core::fmt;

/// Why local evaluation could not decide (PostHog's "unresolved reason"), highest rank first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Reason {
    /// The flag has `ensure_experience_continuity`: only the server can evaluate it.
    ExperienceContinuity,
    /// The definition uses something local evaluation does not support (unknown operator,
    /// unusable filter value, unknown group type, a regex this engine cannot decide exactly).
    UnsupportedDefinition,
    /// A flag this one depends on is itself inconclusive.
    UnresolvedDependency,
    /// The context lacks something (a property, the device id, group properties).
    MissingContext,
}

impl Reason {
    fn rank(self) -> u8 {
        match self {
            Self::ExperienceContinuity => 4,
            Self::UnsupportedDefinition => 3,
            Self::UnresolvedDependency => 2,
            Self::MissingContext => 1,
        }
    }

    /// The higher-ranked of two reasons.
    #[must_use]
    pub fn max(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// PostHog's name for the reason (`missing_context`, ...).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ExperienceContinuity => "experience_continuity",
            Self::UnsupportedDefinition => "unsupported_definition",
            Self::UnresolvedDependency => "unresolved_dependency",
            Self::MissingContext => "missing_context",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Local evaluation gave no answer; the reference SDKs then ask the server (`/flags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Inconclusive {
    /// The data cannot decide, for this reason.
    Unresolved(Reason),
    /// A cohort the definitions do not contain (a static cohort) or a malformed cohort group:
    /// evaluation stopped at once, without trying later conditions.
    RequiresServer,
    /// The flag is not in the definitions (or none are loaded).
    UnknownFlag,
}

impl Inconclusive {
    /// PostHog's name for the outcome: a [`Reason`] name, `requires_server_evaluation`, or
    /// `unknown_flag`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unresolved(r) => r.as_str(),
            Self::RequiresServer => "requires_server_evaluation",
            Self::UnknownFlag => "unknown_flag",
        }
    }
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unresolved(r) => write!(f, "inconclusive ({r})"),
            Self::RequiresServer => f.write_str("requires server evaluation"),
            Self::UnknownFlag => f.write_str("unknown flag"),
        }
    }
}

impl core::error::Error for Inconclusive {}

/// A flag's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlagValue<'s> {
    /// A boolean flag's value (or `false` for any flag that did not match).
    Bool(bool),
    /// The variant of a multivariate flag.
    Variant(&'s str),
    /// The user is in holdout `id`: the value is the string `holdout-<id>`.
    Holdout(i64),
}

impl FlagValue<'_> {
    /// Whether the flag is on (anything but `false`).
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        !matches!(self, Self::Bool(false))
    }

    /// The key of this value in a flag's `payloads`: `"true"`, `"false"`, the variant, or
    /// `holdout-<id>` (formatted into `buf`).
    pub fn payload_key<'b>(&'b self, buf: &'b mut [u8; 28]) -> &'b str {
        match self {
            Self::Bool(true) => "true",
            Self::Bool(false) => "false",
            Self::Variant(v) => v,
            Self::Holdout(id) => {
                let mut digits = [0u8; 20];
                let d = crate::json::write::fmt_u64(id.unsigned_abs(), &mut digits);
                let sign: &[u8] = if *id < 0 { b"-" } else { b"" };
                let mut n = 0;
                for &c in b"holdout-".iter().chain(sign).chain(d) {
                    if let Some(slot) = buf.get_mut(n) {
                        *slot = c;
                    }
                    n += 1;
                }
                core::str::from_utf8(buf.get(..n).unwrap_or_default()).unwrap_or_default()
            }
        }
    }
}

impl fmt::Display for FlagValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Variant(v) => f.write_str(v),
            Self::Holdout(id) => write!(f, "holdout-{id}"),
        }
    }
}

/// Why a flag has the value local evaluation gave it: PostHog's match reason, as `/flags`
/// reports it in `reason.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MatchReason {
    /// Condition set `condition` (0-based) matched and the entity is in its rollout.
    ConditionMatch {
        /// Index of the condition in the flag's `groups`.
        condition: u16,
    },
    /// No condition set matched.
    NoConditionMatch,
    /// A condition set matched but the entity is outside its rollout percentage (the first
    /// such condition), and no later one matched.
    OutOfRolloutBound {
        /// Index of the condition in the flag's `groups`.
        condition: u16,
    },
    /// The flag is not active.
    Disabled,
    /// The entity falls in the flag's holdout group.
    Holdout,
    /// A group flag whose group was not passed.
    NoGroup,
    /// An early-access feature: the person's `$feature_enrollment/<key>` property decided.
    Enrollment,
}

impl MatchReason {
    /// The code PostHog's `/flags` reports (`condition_match`, `out_of_rollout_bound`, ...).
    #[must_use]
    pub const fn code(self) -> &'static str {
        match self {
            Self::ConditionMatch { .. } => "condition_match",
            Self::NoConditionMatch => "no_condition_match",
            Self::OutOfRolloutBound { .. } => "out_of_rollout_bound",
            Self::Disabled => "flag_disabled",
            Self::Holdout => "holdout_condition_value",
            Self::NoGroup => "no_group_type",
            Self::Enrollment => "super_condition_value",
        }
    }

    /// The condition set the reason refers to (0-based), if any.
    #[must_use]
    pub const fn condition(self) -> Option<u16> {
        match self {
            Self::ConditionMatch { condition } | Self::OutOfRolloutBound { condition } => {
                Some(condition)
            }
            _ => None,
        }
    }
}

impl fmt::Display for MatchReason {
    /// PostHog's description: `Matched condition set 2`, `No matching condition set`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConditionMatch { condition } => {
                write!(f, "Matched condition set {}", u32::from(*condition) + 1)
            }
            Self::NoConditionMatch => f.write_str("No matching condition set"),
            Self::OutOfRolloutBound { condition } => write!(
                f,
                "Out of rollout bound (condition set {})",
                u32::from(*condition) + 1
            ),
            Self::Disabled => f.write_str("Feature flag is disabled"),
            Self::Holdout => f.write_str("In holdout group"),
            Self::NoGroup => f.write_str("Group not passed"),
            Self::Enrollment => f.write_str("Early access enrollment"),
        }
    }
}

/// A flag's value with the reason for it (see [`FlagStore::evaluate_detailed`](super::FlagStore::evaluate_detailed)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Evaluation<'s> {
    /// The value.
    pub value: FlagValue<'s>,
    /// Why.
    pub reason: MatchReason,
}

/// Result of matching one filter or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Match(bool),
    Inconclusive(Reason),
    RequiresServer,
}
