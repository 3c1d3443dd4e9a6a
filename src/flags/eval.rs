//! Local evaluation of one flag, allocation-free (posthog-python `client.py`,
//! `_compute_flag_locally`, and `feature_flags.py`, `match_feature_flag_properties`).
//!
//! [`FlagStore::evaluate`](super::FlagStore::evaluate) follows posthog-python 7.91.1, which tracks PostHog's server:
//! inactive flags are `false`; experience-continuity flags are inconclusive; group flags bucket
//! by the group key and are `false` when the caller did not pass the group; holdouts come
//! before conditions; conditions are tried in order, every filter of a condition must match,
//! the rollout compares the 60-bit SHA-1 bucket in integers, and the first matching condition
//! picks the value (variant override, else the variant bucket, else `true`). Inconclusive
//! conditions are remembered with the highest-ranked reason (`experience_continuity` >
//! `unsupported_definition` > `unresolved_dependency` > `missing_context`, posthog-python
//! `_UNRESOLVED_REASON_PRECEDENCE`); a cohort the definitions do not contain stops evaluation
//! at once ([`Inconclusive::RequiresServer`]).
//!
//! Evaluation allocates nothing and parses nothing: everything was compiled at load. Its stack
//! use is bounded: cohort groups nest at most [`MAX_GROUP_DEPTH`](super::store::MAX_GROUP_DEPTH)
//! deep (and cohorts referencing cohorts at most [`MAX_NESTING`] deep), and flag dependencies
//! nest at most [`MAX_NESTING`] deep, with a per-evaluation cache of [`DEPENDENCY_CACHE`]
//! results.

use super::context::EvalContext;
use super::hash::{
    hash60_bytes, holdout_hash60, RolloutThreshold, VariantRange, HASH_SPACE, VARIANT_SALT,
};
use super::outcome::{Evaluation, FlagValue, Inconclusive, MatchReason, Outcome, Reason, ValueRef};
use super::store::{CondAggregation, Expected, FilterKind, Flag, Node, NodeKind, Tables};
use super::value::{Properties, PropertyValue};
use crate::time::UnixMillis;

/// How deep flag dependencies and cohort references may nest in one evaluation.
pub const MAX_NESTING: usize = 8;

/// How many dependency results one evaluation caches.
pub const DEPENDENCY_CACHE: usize = 16;

type Eval<'s> = Result<ValueRef<'s>, Inconclusive>;
type Decided<'s> = Result<(ValueRef<'s>, MatchReason), Inconclusive>;

/// Where a condition's filters look and what it buckets by.
#[derive(Clone, Copy)]
struct Scope<'c> {
    props: &'c dyn Properties,
    bucketing: &'c str,
    /// The property the SDKs add before local evaluation: `distinct_id` for persons
    /// (posthog-python `_person_properties_for_local_evaluation`), `$group_key` for groups
    /// (`_add_local_person_and_group_properties`). The caller's own value, when given, wins.
    implicit: (&'static str, &'c str),
}

impl Scope<'_> {
    fn get(&self, key: &[u8]) -> Option<PropertyValue<'_>> {
        match self.props.get_bytes(key) {
            None if key == self.implicit.0.as_bytes() => Some(PropertyValue::Str(self.implicit.1)),
            found => found,
        }
    }
}

struct Evaluator<'s, 'c> {
    store: Tables<'s>,
    ctx: &'c EvalContext<'c>,
    now: Option<UnixMillis>,
    cache: heapless::Vec<(usize, Eval<'s>), DEPENDENCY_CACHE>,
}

const fn unresolved(r: Reason) -> Inconclusive {
    Inconclusive::Unresolved(r)
}

/// The evaluation methods of both store types, over [`Tables`].
macro_rules! eval_methods {
    () => {
        /// Evaluates flag `key` for `ctx` locally. `now` is the wall clock, needed only by
        /// relative date filters (without it they are inconclusive, never guessed).
        ///
        /// # Errors
        /// [`Inconclusive`](crate::flags::Inconclusive) when local data cannot decide: ask the
        /// server, as PostHog's SDKs do.
        pub fn evaluate(
            &self,
            key: &str,
            ctx: &crate::flags::EvalContext<'_>,
            now: Option<crate::time::UnixMillis>,
        ) -> Result<crate::flags::FlagValue, crate::flags::Inconclusive> {
            self.tables().evaluate(key, ctx, now)
        }

        /// [`evaluate`](Self::evaluate), also telling why the flag has its value (the reason
        /// PostHog's `/flags` reports: the condition that matched, a rollout miss, ...). Same
        /// cost.
        ///
        /// # Errors
        /// As [`evaluate`](Self::evaluate).
        pub fn evaluate_detailed(
            &self,
            key: &str,
            ctx: &crate::flags::EvalContext<'_>,
            now: Option<crate::time::UnixMillis>,
        ) -> Result<crate::flags::Evaluation, crate::flags::Inconclusive> {
            self.tables().evaluate_detailed(key, ctx, now)
        }

        /// The payload (JSON text) configured for `value` of flag `key`, if any.
        #[must_use]
        pub fn payload(&self, key: &str, value: &crate::flags::FlagValue) -> Option<&str> {
            self.tables().payload(key, value.as_ref())
        }
    };
}

impl<const F: usize, const N: usize, const B: usize> super::FlagStore<F, N, B> {
    eval_methods!();
}

impl super::FlagTables<'_> {
    eval_methods!();
}

impl<'t> Tables<'t> {
    pub(crate) fn evaluate(
        self,
        key: &str,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
    ) -> Result<FlagValue, Inconclusive> {
        self.evaluate_detailed(key, ctx, now).map(|e| e.value)
    }

    /// The value and why, borrowed from the definitions.
    pub(crate) fn evaluate_ref(
        self,
        key: &str,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
    ) -> Result<(ValueRef<'t>, MatchReason), Inconclusive> {
        let idx = self.find(key).ok_or(Inconclusive::UnknownFlag)?;
        let mut ev = Evaluator {
            store: self,
            ctx,
            now,
            cache: heapless::Vec::new(),
        };
        ev.flag_decided(idx, 0)
    }

    /// The value and why. A variant key longer than a [`FlagValue`] holds makes the flag
    /// inconclusive ([`Reason::UnsupportedDefinition`]), never a cut value.
    pub(crate) fn evaluate_detailed(
        self,
        key: &str,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
    ) -> Result<Evaluation, Inconclusive> {
        let (value, reason) = self.evaluate_ref(key, ctx, now)?;
        let value = value
            .owned()
            .map_err(|_| unresolved(Reason::UnsupportedDefinition))?;
        Ok(Evaluation { value, reason })
    }

    pub(crate) fn payload(self, key: &str, value: ValueRef<'_>) -> Option<&'t str> {
        let flag = self.flag(self.find(key)?)?;
        let mut buf = [0u8; 28];
        let want = value.payload_key(&mut buf);
        self.list(flag.payloads).find_map(|n| match n.kind {
            NodeKind::Payload { key, json } if self.text(key) == want => Some(self.text(json)),
            _ => None,
        })
    }
}

impl<'s, 'c> Evaluator<'s, 'c> {
    fn flag(&mut self, idx: usize, depth: usize) -> Eval<'s> {
        self.flag_decided(idx, depth).map(|(v, _)| v)
    }

    /// The value and why (the server's match reason).
    fn flag_decided(&mut self, idx: usize, depth: usize) -> Decided<'s> {
        let store = self.store;
        let flag = *store.flag(idx).ok_or(Inconclusive::UnknownFlag)?;
        if !flag.active {
            return Ok((ValueRef::Bool(false), MatchReason::Disabled));
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
                    return Ok((ValueRef::Bool(false), MatchReason::NoGroup));
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
        // Bytes: the hashes need no `&str`, so no UTF-8 check on every evaluation.
        let key = store.blob(flag.key);

        if flag.feature_enrollment {
            if flag.aggregation.is_some() {
                return Err(unresolved(Reason::UnsupportedDefinition));
            }
            let mut buf = [0u8; 256];
            let prop = concat_key(&mut buf, "$feature_enrollment/", store.text(flag.key))
                .ok_or(unresolved(Reason::UnsupportedDefinition))?;
            let value = match scope.props.get(prop) {
                None => return Err(unresolved(Reason::MissingContext)),
                Some(PropertyValue::Bool(b)) => b,
                Some(PropertyValue::Str(s)) => s == "true",
                Some(_) => false,
            };
            return Ok((ValueRef::Bool(value), MatchReason::Enrollment));
        }

        if let Some((id, threshold)) = flag.holdout {
            if threshold.contains(holdout_hash60(scope.bucketing)) {
                return Ok((ValueRef::Holdout(id), MatchReason::Holdout));
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
            // Mixed targeting (posthog-python `_get_condition_context`): a condition naming
            // another group type than the flag's uses that group's properties and key; it is
            // skipped when the type is unmapped or the group was not passed.
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
            // A threshold that includes every hash (100 %) needs no hash: every `h` is below
            // 2^60.
            if let Some(limit) = rollout.get().filter(|&l| l < HASH_SPACE) {
                if !RolloutThreshold::from_limit(limit).contains(hash60_bytes(
                    key,
                    ".",
                    cscope.bucketing,
                    "",
                )) {
                    let miss = MatchReason::OutOfRolloutBound {
                        condition: out_of_rollout.unwrap_or(index),
                    };
                    if flag.early_exit {
                        return match reason {
                            Some(r) => Err(unresolved(r)),
                            None => Ok((ValueRef::Bool(false), miss)),
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
                ValueRef::Bool(false),
                MatchReason::OutOfRolloutBound { condition },
            )),
            (None, None) => Ok((ValueRef::Bool(false), MatchReason::NoConditionMatch)),
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
        key: &[u8],
        variant: Option<super::store::Text>,
        bucketing: &str,
    ) -> ValueRef<'s> {
        let store = self.store;
        if let Some(v) = variant {
            let want = store.text(v);
            let known = store.list(flag.variants).find_map(|n| match n.kind {
                NodeKind::Variant { key, .. } if store.text(key) == want => Some(store.text(key)),
                _ => None,
            });
            if let Some(k) = known {
                return ValueRef::Variant(k);
            }
        }
        if flag.variants != u32::MAX {
            let h = hash60_bytes(key, ".", bucketing, VARIANT_SALT);
            for n in store.list(flag.variants) {
                if let NodeKind::Variant { key, start, end } = n.kind {
                    let range = VariantRange {
                        start: start.get().unwrap_or(0),
                        end: end.get().unwrap_or(0),
                    };
                    if range.contains(h) {
                        return ValueRef::Variant(store.text(key));
                    }
                }
            }
        }
        ValueRef::Bool(true)
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
                let key = self.store.blob(key);
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

    /// A cohort property group (posthog-python `match_property_group`): AND/OR over its
    /// entries, a decisive entry winning over an inconclusive one.
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

    /// A `flag_evaluates_to` filter, a dependency on another flag's value (posthog-python
    /// `evaluate_flag_dependency`, `matches_dependency_value`).
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
            (ValueRef::Bool(a), Expected::Bool(e)) => a == e,
            (ValueRef::Bool(_), Expected::Variant(_)) => false,
            (v, Expected::Bool(e)) => e && !v.payload_key(&mut buf).is_empty(),
            (ValueRef::Variant(a), Expected::Variant(e)) => !a.is_empty() && a == store.text(e),
            (h @ ValueRef::Holdout(_), Expected::Variant(e)) => {
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
            Some(f) if !f.active => Ok(ValueRef::Bool(false)),
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
