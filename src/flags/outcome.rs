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
    /// unusable filter value, unknown group type, a regex this engine cannot decide exactly,
    /// a variant key longer than [`MAX_VARIANT_LEN`]).
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

/// The longest variant key a [`FlagValue`] holds, in bytes.
///
/// A flag whose variant key is longer is never given a wrong or cut value: local evaluation
/// reports it [inconclusive](Reason::UnsupportedDefinition), and a `/flags` answer carrying
/// such a variant reads as a flag the server failed to evaluate.
pub const MAX_VARIANT_LEN: usize = 64;

/// A variant key longer than [`MAX_VARIANT_LEN`] bytes was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct VariantTooLong {
    /// The key's length in bytes.
    pub len: usize,
    /// [`MAX_VARIANT_LEN`].
    pub max: usize,
}

impl fmt::Display for VariantTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "variant key of {} bytes is longer than the {} a flag value holds",
            self.len, self.max
        )
    }
}

impl core::error::Error for VariantTooLong {}

/// A multivariate flag's variant key, held by value (up to [`MAX_VARIANT_LEN`] bytes), so a
/// [`FlagValue`] is `Copy` and outlives the definitions, the `/flags` answer and any lock it
/// was read under. It derefs to `str` and compares with `&str`.
#[derive(Clone, Copy)]
pub struct Variant {
    len: u8,
    bytes: [u8; MAX_VARIANT_LEN],
}

impl Variant {
    /// Copies `key`.
    ///
    /// # Errors
    /// [`VariantTooLong`] when `key` is longer than [`MAX_VARIANT_LEN`] bytes.
    pub const fn new(key: &str) -> Result<Self, VariantTooLong> {
        let src = key.as_bytes();
        let mut bytes = [0u8; MAX_VARIANT_LEN];
        let Some((head, _)) = bytes.split_at_mut_checked(src.len()) else {
            return Err(VariantTooLong {
                len: src.len(),
                max: MAX_VARIANT_LEN,
            });
        };
        head.copy_from_slice(src);
        // `src.len() <= MAX_VARIANT_LEN < 256`.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self {
            len: src.len() as u8,
            bytes,
        })
    }

    /// The key.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // `bytes[..len]` is a copy of a `&str`, so it is always valid UTF-8.
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or_default();
        core::str::from_utf8(b).unwrap_or_default()
    }
}

impl core::ops::Deref for Variant {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Variant {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Variant {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Variant {}

impl PartialEq<str> for Variant {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Variant {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl core::hash::Hash for Variant {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Variant {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=str}", self.as_str());
    }
}

/// A flag's value: `Copy`, owned, the same type on every surface (core, embassy, std).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlagValue {
    /// A boolean flag's value (or `false` for any flag that did not match).
    Bool(bool),
    /// The variant of a multivariate flag.
    Variant(Variant),
    /// The user is in holdout `id`: the value is the string `holdout-<id>`.
    Holdout(i64),
}

impl FlagValue {
    /// The value for variant `key`.
    ///
    /// # Errors
    /// [`VariantTooLong`] when `key` is longer than [`MAX_VARIANT_LEN`] bytes.
    pub const fn variant(key: &str) -> Result<Self, VariantTooLong> {
        match Variant::new(key) {
            Ok(v) => Ok(Self::Variant(v)),
            Err(e) => Err(e),
        }
    }

    /// Whether the flag is on (anything but `false`).
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        !matches!(self, Self::Bool(false))
    }

    /// The variant key of a multivariate flag (`None` for a boolean value or a holdout).
    #[must_use]
    pub fn as_variant(&self) -> Option<&str> {
        match self {
            Self::Variant(v) => Some(v.as_str()),
            _ => None,
        }
    }

    /// The key of this value in a flag's `payloads`: `"true"`, `"false"`, the variant, or
    /// `holdout-<id>` (formatted into `buf`).
    pub fn payload_key<'b>(&'b self, buf: &'b mut [u8; 28]) -> &'b str {
        self.as_ref().payload_key(buf)
    }

    /// The value borrowed, as evaluation works with it.
    pub(crate) fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Self::Bool(b) => ValueRef::Bool(*b),
            Self::Variant(v) => ValueRef::Variant(v.as_str()),
            Self::Holdout(id) => ValueRef::Holdout(*id),
        }
    }
}

/// A flag's value borrowed from the definitions or a `/flags` answer: what evaluation works
/// with, so dependency caches and attached-flag lists stay small. A [`FlagValue`] is made from
/// it only at the public edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueRef<'s> {
    Bool(bool),
    Variant(&'s str),
    Holdout(i64),
}

impl<'s> ValueRef<'s> {
    /// The value by value.
    ///
    /// # Errors
    /// [`VariantTooLong`] for a variant key longer than [`MAX_VARIANT_LEN`].
    pub(crate) fn owned(self) -> Result<FlagValue, VariantTooLong> {
        Ok(match self {
            Self::Bool(b) => FlagValue::Bool(b),
            Self::Variant(v) => FlagValue::variant(v)?,
            Self::Holdout(id) => FlagValue::Holdout(id),
        })
    }

    /// See [`FlagValue::payload_key`].
    pub(crate) fn payload_key<'b>(self, buf: &'b mut [u8; 28]) -> &'b str
    where
        's: 'b,
    {
        match self {
            Self::Bool(true) => "true",
            Self::Bool(false) => "false",
            Self::Variant(v) => v,
            Self::Holdout(id) => {
                let mut digits = [0u8; 20];
                let d = crate::json::write::fmt_u64(id.unsigned_abs(), &mut digits);
                let sign: &[u8] = if id < 0 { b"-" } else { b"" };
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

impl fmt::Display for FlagValue {
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
pub struct Evaluation {
    /// The value.
    pub value: FlagValue,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::String;

    #[test]
    fn a_variant_holds_up_to_its_capacity_and_says_how_long_a_longer_key_is() {
        let max = "v".repeat(MAX_VARIANT_LEN);
        let v = Variant::new(&max).unwrap();
        assert_eq!(v.as_str(), max);
        assert_eq!(v.len(), MAX_VARIANT_LEN);
        let over = "v".repeat(MAX_VARIANT_LEN + 1);
        assert_eq!(
            FlagValue::variant(&over),
            Err(VariantTooLong {
                len: MAX_VARIANT_LEN + 1,
                max: MAX_VARIANT_LEN
            })
        );
        assert_eq!(
            Variant::new(&"é".repeat(200)).unwrap_err().len,
            400,
            "lengths are in bytes, past 255 too"
        );
        assert_eq!(Variant::new("").unwrap().as_str(), "");
    }

    #[test]
    fn a_variant_compares_hashes_and_prints_as_its_text() {
        use core::hash::{Hash, Hasher};
        struct Bytes(String);
        impl Hasher for Bytes {
            fn finish(&self) -> u64 {
                0
            }
            fn write(&mut self, b: &[u8]) {
                self.0.push_str(&format!("{b:?}"));
            }
        }
        let hash = |v: &Variant| {
            let mut h = Bytes(String::new());
            v.hash(&mut h);
            h.0
        };
        let a = Variant::new("blue").unwrap();
        let b = Variant::new("blue").unwrap();
        assert_eq!(a, b);
        assert_eq!(hash(&a), hash(&b));
        assert_ne!(a, Variant::new("blu").unwrap());
        assert!(a == "blue" && *"blue" == *a.as_str());
        assert_eq!(format!("{a} {a:?}"), "blue \"blue\"");
        let v = FlagValue::Variant(a);
        assert_eq!(format!("{v} {v:?}"), "blue Variant(\"blue\")");
        assert_eq!(v.as_variant(), Some("blue"));
        assert_eq!(FlagValue::Holdout(3).as_variant(), None);
        // `Copy`, and built in a `const`.
        const CONTROL: FlagValue = match FlagValue::variant("control") {
            Ok(v) => v,
            Err(_) => panic!("short"),
        };
        let copy = CONTROL;
        assert_eq!(copy, CONTROL);
        let mut buf = [0u8; 28];
        assert_eq!(CONTROL.payload_key(&mut buf), "control");
        assert_eq!(FlagValue::Holdout(-7).payload_key(&mut buf), "holdout--7");
    }
}
