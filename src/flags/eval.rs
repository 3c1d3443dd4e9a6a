//! Local evaluation of one flag, allocation-free (protocol §1.4–§1.13).
//!
//! [`FlagStore::evaluate`] follows posthog-python 7.91.1, which tracks PostHog's server:
//! inactive flags are `false`; experience-continuity flags are inconclusive; group flags bucket
//! by the group key and are `false` when the caller did not pass the group; holdouts come
//! before conditions; conditions are tried in order, every filter of a condition must match,
//! the rollout compares the 60-bit SHA-1 bucket in integers, and the first matching condition
//! picks the value (variant override, else the variant bucket, else `true`). Inconclusive
//! conditions are remembered with the highest-ranked reason (§1.13); a cohort the definitions
//! do not contain stops evaluation at once ([`Inconclusive::RequiresServer`]).
//!
//! Evaluation allocates nothing and parses nothing: everything was compiled at load. Its stack
//! use is bounded: cohort groups nest at most [`MAX_GROUP_DEPTH`](super::store::MAX_GROUP_DEPTH)
//! deep (and cohorts referencing cohorts at most [`MAX_NESTING`] deep), and flag dependencies
//! nest at most [`MAX_NESTING`] deep, with a per-evaluation cache of [`DEPENDENCY_CACHE`]
//! results.

use core::fmt;

use super::hash::{hash60, holdout_hash60, RolloutThreshold, VariantRange, VARIANT_SALT};
use super::store::{CondAggregation, Expected, FilterKind, Flag, FlagStore, Node, NodeKind};
use super::value::{Properties, PropertyValue};
use crate::time::UnixMillis;

/// How deep flag dependencies and cohort references may nest in one evaluation.
pub const MAX_NESTING: usize = 8;

/// How many dependency results one evaluation caches.
pub const DEPENDENCY_CACHE: usize = 16;

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

/// A flag's value with the reason for it (see [`FlagStore::evaluate_detailed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Evaluation<'s> {
    /// The value.
    pub value: FlagValue<'s>,
    /// Why.
    pub reason: MatchReason,
}

/// One group the evaluated entity belongs to.
#[derive(Clone, Copy)]
pub struct GroupContext<'a> {
    /// Group type name (`"company"`).
    pub group_type: &'a str,
    /// Group key (`"acme"`), the bucketing value of group flags.
    pub key: &'a str,
    /// The group's properties, if known (`None`: filters on them are inconclusive).
    /// `$group_key` is implied: a filter on it sees [`key`](Self::key) unless the properties
    /// set it (protocol §1.3).
    pub properties: Option<&'a dyn Properties>,
}

impl fmt::Debug for GroupContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupContext")
            .field("group_type", &self.group_type)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Who a flag is evaluated for. Everything is borrowed; nothing is copied.
#[derive(Clone, Copy)]
pub struct EvalContext<'a> {
    /// The distinct id (the bucketing value of person flags).
    pub distinct_id: &'a str,
    /// The device id, for flags bucketed by `device_id`.
    pub device_id: Option<&'a str>,
    /// Person properties. `distinct_id` is implied: a filter on it sees
    /// [`distinct_id`](Self::distinct_id) unless these set it (protocol §1.3, as PostHog's SDKs
    /// prepare the context).
    pub person: &'a dyn Properties,
    /// Groups, with their properties.
    pub groups: &'a [GroupContext<'a>],
}

impl fmt::Debug for EvalContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvalContext")
            .field("distinct_id", &self.distinct_id)
            .field("device_id", &self.device_id)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

/// Result of matching one filter or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Match(bool),
    Inconclusive(Reason),
    RequiresServer,
}

type Eval<'s> = Result<FlagValue<'s>, Inconclusive>;
type Decided<'s> = Result<(FlagValue<'s>, MatchReason), Inconclusive>;

/// Where a condition's filters look and what it buckets by.
#[derive(Clone, Copy)]
struct Scope<'c> {
    props: &'c dyn Properties,
    bucketing: &'c str,
    /// The property the SDKs add before local evaluation (protocol §1.3): `distinct_id` for
    /// persons, `$group_key` for groups. The caller's own value, when given, wins.
    implicit: (&'static str, &'c str),
}

impl Scope<'_> {
    fn get(&self, key: &str) -> Option<PropertyValue<'_>> {
        match self.props.get(key) {
            None if key == self.implicit.0 => Some(PropertyValue::Str(self.implicit.1)),
            found => found,
        }
    }
}

struct Evaluator<'s, 'c, const F: usize, const N: usize, const B: usize> {
    store: &'s FlagStore<F, N, B>,
    ctx: &'c EvalContext<'c>,
    now: Option<UnixMillis>,
    cache: heapless::Vec<(usize, Eval<'s>), DEPENDENCY_CACHE>,
}

const fn unresolved(r: Reason) -> Inconclusive {
    Inconclusive::Unresolved(r)
}

impl<const F: usize, const N: usize, const B: usize> FlagStore<F, N, B> {
    /// Evaluates flag `key` for `ctx` locally. `now` is the wall clock, needed only by relative
    /// date filters (without it they are inconclusive, never guessed).
    ///
    /// # Errors
    /// [`Inconclusive`] when local data cannot decide: ask the server, as PostHog's SDKs do.
    pub fn evaluate<'s>(
        &'s self,
        key: &str,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
    ) -> Result<FlagValue<'s>, Inconclusive> {
        self.evaluate_detailed(key, ctx, now).map(|e| e.value)
    }

    /// [`evaluate`](Self::evaluate), also telling why the flag has its value (the reason
    /// PostHog's `/flags` reports: the condition that matched, a rollout miss, ...). Same cost.
    ///
    /// # Errors
    /// As [`evaluate`](Self::evaluate).
    pub fn evaluate_detailed<'s>(
        &'s self,
        key: &str,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
    ) -> Result<Evaluation<'s>, Inconclusive> {
        let idx = self.find(key).ok_or(Inconclusive::UnknownFlag)?;
        let mut ev = Evaluator {
            store: self,
            ctx,
            now,
            cache: heapless::Vec::new(),
        };
        ev.flag_decided(idx, 0)
            .map(|(value, reason)| Evaluation { value, reason })
    }

    /// The payload (JSON text) configured for `value` of flag `key`, if any.
    #[must_use]
    pub fn payload(&self, key: &str, value: &FlagValue<'_>) -> Option<&str> {
        let flag = self.flag(self.find(key)?)?;
        let mut buf = [0u8; 28];
        let want = value.payload_key(&mut buf);
        self.list(flag.payloads).find_map(|n| match n.kind {
            NodeKind::Payload { key, json } if self.text(key) == want => Some(self.text(json)),
            _ => None,
        })
    }
}

impl<'s, 'c, const F: usize, const N: usize, const B: usize> Evaluator<'s, 'c, F, N, B> {
    fn flag(&mut self, idx: usize, depth: usize) -> Eval<'s> {
        self.flag_decided(idx, depth).map(|(v, _)| v)
    }

    /// The value and why (the server's match reason).
    fn flag_decided(&mut self, idx: usize, depth: usize) -> Decided<'s> {
        let store = self.store;
        let flag = *store.flag(idx).ok_or(Inconclusive::UnknownFlag)?;
        if !flag.active {
            return Ok((FlagValue::Bool(false), MatchReason::Disabled));
        }
        if flag.continuity {
            return Err(unresolved(Reason::ExperienceContinuity));
        }
        if flag.broken || flag.aggregation_invalid {
            return Err(unresolved(Reason::UnsupportedDefinition));
        }
        let scope = match flag.aggregation {
            Some(index) => {
                let Some(name) = store.group_type_name(index) else {
                    return Err(unresolved(Reason::UnsupportedDefinition));
                };
                let Some(group) = self.ctx.groups.iter().find(|g| g.group_type == name) else {
                    // The group was not passed: false, with no fallback.
                    return Ok((FlagValue::Bool(false), MatchReason::NoGroup));
                };
                let Some(props) = group.properties else {
                    return Err(unresolved(Reason::MissingContext));
                };
                Some(Scope {
                    props,
                    bucketing: group.key,
                    implicit: ("$group_key", group.key),
                })
            }
            None => {
                let bucketing = if flag.device_bucketing {
                    self.ctx.device_id.filter(|d| !d.is_empty())
                } else {
                    Some(self.ctx.distinct_id)
                };
                bucketing.map(|bucketing| Scope {
                    props: self.ctx.person,
                    bucketing,
                    implicit: ("distinct_id", self.ctx.distinct_id),
                })
            }
        };
        let Some(scope) = scope else {
            // Device-id bucketing without a device id: missing context, unless the definition
            // itself is unusable (a higher-ranked reason).
            return Err(unresolved(
                self.static_reason(&flag).unwrap_or(Reason::MissingContext),
            ));
        };
        let key = store.text(flag.key);

        if flag.feature_enrollment {
            if flag.aggregation.is_some() {
                return Err(unresolved(Reason::UnsupportedDefinition));
            }
            let mut buf = [0u8; 256];
            let prop = concat_key(&mut buf, "$feature_enrollment/", key)
                .ok_or(unresolved(Reason::UnsupportedDefinition))?;
            let value = match scope.props.get(prop) {
                None => return Err(unresolved(Reason::MissingContext)),
                Some(PropertyValue::Bool(b)) => b,
                Some(PropertyValue::Str(s)) => s == "true",
                Some(_) => false,
            };
            return Ok((FlagValue::Bool(value), MatchReason::Enrollment));
        }

        if let Some((id, threshold)) = flag.holdout {
            if threshold.contains(holdout_hash60(scope.bucketing)) {
                return Ok((FlagValue::Holdout(id), MatchReason::Holdout));
            }
        }

        let mut reason: Option<Reason> = None;
        let mut out_of_rollout: Option<u16> = None;
        for (index, cond) in store.list(flag.conditions).enumerate() {
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            let NodeKind::Condition {
                filters,
                rollout,
                variant,
                aggregation,
                broken,
            } = cond.kind
            else {
                continue;
            };
            if broken {
                reason = Some(max_reason(reason, Reason::UnsupportedDefinition));
                continue;
            }
            // §1.9: a condition naming another group type than the flag's uses that group.
            let cscope = match aggregation {
                CondAggregation::Index(i) if Some(i) != flag.aggregation => {
                    let Some(name) = store.group_type_name(i) else {
                        continue;
                    };
                    let Some(group) = self.ctx.groups.iter().find(|g| g.group_type == name) else {
                        continue;
                    };
                    let Some(props) = group.properties else {
                        reason = Some(max_reason(reason, Reason::MissingContext));
                        continue;
                    };
                    Scope {
                        props,
                        bucketing: group.key,
                        implicit: ("$group_key", group.key),
                    }
                }
                CondAggregation::Invalid => {
                    reason = Some(max_reason(reason, Reason::UnsupportedDefinition));
                    continue;
                }
                _ => scope,
            };
            match self.condition_filters(filters, &cscope, depth) {
                Outcome::Match(false) => continue,
                Outcome::Inconclusive(r) => {
                    reason = Some(max_reason(reason, r));
                    continue;
                }
                Outcome::RequiresServer => return Err(Inconclusive::RequiresServer),
                Outcome::Match(true) => {}
            }
            if let Some(limit) = rollout.get() {
                if !RolloutThreshold::from_limit(limit).contains(hash60(key, cscope.bucketing, ""))
                {
                    let miss = MatchReason::OutOfRolloutBound {
                        condition: out_of_rollout.unwrap_or(index),
                    };
                    if flag.early_exit {
                        return match reason {
                            Some(r) => Err(unresolved(r)),
                            None => Ok((FlagValue::Bool(false), miss)),
                        };
                    }
                    out_of_rollout.get_or_insert(index);
                    continue;
                }
            }
            let value = self.pick_value(&flag, key, variant, cscope.bucketing);
            return Ok((value, MatchReason::ConditionMatch { condition: index }));
        }
        match (reason, out_of_rollout) {
            (Some(r), _) => Err(unresolved(r)),
            (None, Some(condition)) => Ok((
                FlagValue::Bool(false),
                MatchReason::OutOfRolloutBound { condition },
            )),
            (None, None) => Ok((FlagValue::Bool(false), MatchReason::NoConditionMatch)),
        }
    }

    /// The highest reason the definition itself carries (unsupported filters), if any.
    fn static_reason(&self, flag: &Flag) -> Option<Reason> {
        let store = self.store;
        store.list(flag.conditions).find_map(|c| match c.kind {
            NodeKind::Condition { broken: true, .. } => Some(Reason::UnsupportedDefinition),
            NodeKind::Condition { filters, .. } => store.list(filters).find_map(|f| {
                super::property::statically_unsupported(f).then_some(Reason::UnsupportedDefinition)
            }),
            _ => None,
        })
    }

    fn pick_value(
        &self,
        flag: &Flag,
        key: &str,
        variant: Option<super::store::Text>,
        bucketing: &str,
    ) -> FlagValue<'s> {
        let store = self.store;
        if let Some(v) = variant {
            let want = store.text(v);
            let known = store.list(flag.variants).find_map(|n| match n.kind {
                NodeKind::Variant { key, .. } if store.text(key) == want => Some(store.text(key)),
                _ => None,
            });
            if let Some(k) = known {
                return FlagValue::Variant(k);
            }
        }
        if flag.variants != u32::MAX {
            let h = hash60(key, bucketing, VARIANT_SALT);
            for n in store.list(flag.variants) {
                if let NodeKind::Variant { key, start, end } = n.kind {
                    let range = VariantRange {
                        start: start.get().unwrap_or(0),
                        end: end.get().unwrap_or(0),
                    };
                    if range.contains(h) {
                        return FlagValue::Variant(store.text(key));
                    }
                }
            }
        }
        FlagValue::Bool(true)
    }

    /// All filters of a condition (AND): a false filter rules the condition out; otherwise an
    /// inconclusive one makes it inconclusive; requires-server stops everything unless an
    /// earlier filter of the condition was already inconclusive.
    fn condition_filters(&mut self, head: u32, scope: &Scope<'_>, depth: usize) -> Outcome {
        let store = self.store;
        let mut reason: Option<Reason> = None;
        for node in store.list(head) {
            match self.filter(node, scope, depth, false) {
                Outcome::Match(true) => {}
                Outcome::Match(false) => return Outcome::Match(false),
                Outcome::Inconclusive(r) => reason = Some(max_reason(reason, r)),
                Outcome::RequiresServer => {
                    return match reason {
                        Some(r) => Outcome::Inconclusive(r),
                        None => Outcome::RequiresServer,
                    }
                }
            }
        }
        match reason {
            Some(r) => Outcome::Inconclusive(r),
            None => Outcome::Match(true),
        }
    }

    /// One filter. `negation` is honoured only inside cohort groups (`in_group`).
    fn filter(&mut self, node: &Node, scope: &Scope<'_>, depth: usize, in_group: bool) -> Outcome {
        let NodeKind::Filter { kind, negation } = node.kind else {
            return Outcome::Inconclusive(Reason::UnsupportedDefinition);
        };
        let out = match kind {
            FilterKind::Property { key, op, value } => {
                let key = self.store.text(key);
                super::property::match_property(self.store, op, &value, scope.get(key), self.now)
            }
            FilterKind::Cohort {
                id,
                negate,
                unsupported_op,
            } => {
                let store = self.store;
                match store.cohort(store.text(id)) {
                    None => Outcome::RequiresServer,
                    Some(_) if unsupported_op => {
                        Outcome::Inconclusive(Reason::UnsupportedDefinition)
                    }
                    Some(_) if depth >= MAX_NESTING => {
                        Outcome::Inconclusive(Reason::UnsupportedDefinition)
                    }
                    Some(group) => match self.group(group, scope, depth + 1, 0) {
                        Outcome::Match(m) => Outcome::Match(m != negate),
                        other => other,
                    },
                }
            }
            FilterKind::Flag {
                key,
                expected,
                chain,
                chain_len,
            } => self.dependency(key, expected, chain, chain_len, depth),
            FilterKind::Broken => Outcome::Inconclusive(Reason::UnsupportedDefinition),
        };
        match out {
            Outcome::Match(m) if in_group && negation => Outcome::Match(!m),
            other => other,
        }
    }

    /// A cohort property group (§1.11).
    fn group(&mut self, idx: u32, scope: &Scope<'_>, depth: usize, level: usize) -> Outcome {
        let store = self.store;
        let Some(node) = store.node(idx) else {
            return Outcome::RequiresServer;
        };
        let NodeKind::Group {
            and,
            children,
            malformed,
        } = node.kind
        else {
            return Outcome::RequiresServer;
        };
        if malformed {
            return Outcome::RequiresServer;
        }
        let mut reason: Option<Reason> = None;
        let mut decisive = false;
        for (i, child) in store.entries(children) {
            let out = match child.kind {
                NodeKind::Group { .. } => {
                    if level + 1 >= super::store::MAX_GROUP_DEPTH {
                        Outcome::Inconclusive(Reason::UnsupportedDefinition)
                    } else {
                        self.group(i, scope, depth, level + 1)
                    }
                }
                _ => self.filter(child, scope, depth, true),
            };
            // posthog-python scans every entry, so requires-server anywhere wins even over a
            // decisive entry; otherwise a decisive entry wins over an inconclusive one.
            match out {
                Outcome::Match(m) if m != and => decisive = true,
                Outcome::Match(_) => {}
                Outcome::Inconclusive(r) => reason = Some(max_reason(reason, r)),
                Outcome::RequiresServer => return Outcome::RequiresServer,
            }
        }
        if decisive {
            return Outcome::Match(!and);
        }
        match reason {
            Some(r) => Outcome::Inconclusive(r),
            None => Outcome::Match(and),
        }
    }

    /// A `flag_evaluates_to` filter (§1.12).
    fn dependency(
        &mut self,
        key: super::store::Text,
        expected: Option<Expected>,
        chain: Option<u32>,
        chain_len: u32,
        depth: usize,
    ) -> Outcome {
        let store = self.store;
        let Some(expected) = expected else {
            // Malformed dependency filter: a definite no match (posthog-python).
            return Outcome::Match(false);
        };
        let Some(chain) = chain else {
            return Outcome::Inconclusive(Reason::UnsupportedDefinition);
        };
        if chain_len == 0 || depth >= MAX_NESTING {
            return Outcome::Inconclusive(Reason::UnsupportedDefinition);
        }
        // Every member must be known before anything is evaluated.
        for n in store.list(chain) {
            if let NodeKind::Chain { key } = n.kind {
                if store.find(store.text(key)).is_none() {
                    return Outcome::Inconclusive(Reason::UnsupportedDefinition);
                }
            }
        }
        for n in store.list(chain) {
            let NodeKind::Chain { key } = n.kind else {
                continue;
            };
            let Some(idx) = store.find(store.text(key)) else {
                return Outcome::Inconclusive(Reason::UnsupportedDefinition);
            };
            match self.member(idx, depth) {
                Ok(_) => {}
                Err(Inconclusive::RequiresServer) => return Outcome::RequiresServer,
                Err(_) => return Outcome::Inconclusive(Reason::UnresolvedDependency),
            }
        }
        let Some(idx) = store.find(store.text(key)) else {
            return Outcome::Inconclusive(Reason::UnsupportedDefinition);
        };
        let actual = match self.member(idx, depth) {
            Ok(v) => v,
            Err(Inconclusive::RequiresServer) => return Outcome::RequiresServer,
            Err(_) => return Outcome::Inconclusive(Reason::UnresolvedDependency),
        };
        let mut buf = [0u8; 28];
        Outcome::Match(match (actual, expected) {
            (FlagValue::Bool(a), Expected::Bool(e)) => a == e,
            (FlagValue::Bool(_), Expected::Variant(_)) => false,
            (v, Expected::Bool(e)) => e && !v.payload_key(&mut buf).is_empty(),
            (FlagValue::Variant(a), Expected::Variant(e)) => !a.is_empty() && a == store.text(e),
            (h @ FlagValue::Holdout(_), Expected::Variant(e)) => {
                h.payload_key(&mut buf) == store.text(e)
            }
        })
    }

    /// A dependency member's value, from the per-evaluation cache or evaluated now.
    fn member(&mut self, idx: usize, depth: usize) -> Eval<'s> {
        if let Some((_, v)) = self.cache.iter().find(|(i, _)| *i == idx) {
            return *v;
        }
        let flag = self.store.flag(idx).copied();
        let v = match flag {
            None => Err(Inconclusive::UnknownFlag),
            Some(f) if !f.active => Ok(FlagValue::Bool(false)),
            Some(f) if f.continuity => Err(unresolved(Reason::UnresolvedDependency)),
            Some(_) => match self.flag(idx, depth + 1) {
                Err(Inconclusive::Unresolved(_) | Inconclusive::UnknownFlag) => {
                    Err(unresolved(Reason::UnresolvedDependency))
                }
                other => other,
            },
        };
        // A full cache only costs recomputation.
        let _ = self.cache.push((idx, v));
        v
    }
}

fn max_reason(a: Option<Reason>, b: Reason) -> Reason {
    a.map_or(b, |a| a.max(b))
}

/// `prefix + key` in `buf`, if it fits.
fn concat_key<'b>(buf: &'b mut [u8], prefix: &str, key: &str) -> Option<&'b str> {
    let n = prefix.len() + key.len();
    let dst = buf.get_mut(..n)?;
    let (a, b) = dst.split_at_mut(prefix.len());
    a.copy_from_slice(prefix.as_bytes());
    b.copy_from_slice(key.as_bytes());
    core::str::from_utf8(dst).ok()
}
