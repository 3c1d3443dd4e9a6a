//! Static analysis of loaded definitions: what a flag needs from the device, and what only the
//! server can decide, whatever the context.
//!
//! [`FlagStore::analyze`](super::FlagStore::analyze) walks one flag's compiled definition (conditions, filters, cohorts
//! with their nested groups, flag dependencies) without evaluating anything, and reports each
//! [`Finding`] to a callback. The CLI's `check` command prints them; firmware can use the same
//! walk to decide, at boot, which flags it can serve offline.
//!
//! The walk is bounded like evaluation: cohorts referencing cohorts and dependency chains are
//! followed at most [`MAX_NESTING`] deep, cohort groups at most
//! [`MAX_GROUP_DEPTH`](super::store::MAX_GROUP_DEPTH) deep. A finding may be reported more
//! than once (the same property in two conditions); callers that print them de-duplicate.

use super::eval::MAX_NESTING;
use super::store::{Compiled, CondAggregation, FilterKind, NodeKind, Operator, Tables};

/// Where a property filter looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PropertyScope<'s> {
    /// The person's properties.
    Person,
    /// The properties of a group of this type.
    Group(&'s str),
}

/// One thing [`FlagStore::analyze`](super::FlagStore::analyze) found about a flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Finding<'s> {
    /// The flag is inactive: always `false`, nothing needed.
    Inactive,
    /// `ensure_experience_continuity`: only the server can evaluate it.
    ExperienceContinuity,
    /// A cohort the definitions do not contain (a static cohort): only the server knows its
    /// members. Evaluation stops as soon as it reaches this filter.
    StaticCohort {
        /// The cohort id.
        id: &'s str,
    },
    /// A cohort whose property groups are malformed: the server must decide.
    MalformedCohort {
        /// The cohort id.
        id: &'s str,
    },
    /// A filter with an operator this evaluator does not know.
    UnknownOperator {
        /// The property it filters.
        property: &'s str,
    },
    /// A regex this engine cannot decide exactly (look-around, back-references,
    /// `\p{..}`, or too large): the server decides.
    UnsupportedRegex {
        /// The property it filters.
        property: &'s str,
    },
    /// A filter value the operator cannot use (a date that does not parse, a non-numeric
    /// value for `gt`, ...).
    UnusableValue {
        /// The property it filters.
        property: &'s str,
        /// The operator's name.
        operator: &'s str,
    },
    /// A part of the definition that could not be understood (a filter that is not an object,
    /// a rollout that is not a number, an unknown aggregation, ...).
    Malformed,
    /// A dependency on a flag the definitions do not contain.
    MissingDependency {
        /// The flag key.
        flag: &'s str,
    },
    /// Nesting deeper than evaluation follows.
    TooDeep,
    /// The flag (or a condition) aggregates by a group type index the definitions do not map.
    UnknownGroupType,
    /// A property filter: the device must pass this property.
    Property {
        /// Person or group properties.
        scope: PropertyScope<'s>,
        /// The property key.
        key: &'s str,
        /// The operator's name.
        operator: &'s str,
    },
    /// A relative date filter (`-30d`): the device must pass the wall clock.
    WallClock,
    /// Bucketing by `$device_id`: the device must pass its device id.
    DeviceId,
    /// A group flag (or condition): the device must pass a group of this type.
    Group {
        /// The group type.
        group_type: &'s str,
    },
    /// The flag depends on another flag.
    DependsOn {
        /// The flag key.
        flag: &'s str,
    },
}

impl Finding<'_> {
    /// Whether this finding means the flag can never be decided locally (the SDKs always ask
    /// the server for it), as opposed to something the device must supply.
    #[must_use]
    pub const fn is_server_only(&self) -> bool {
        matches!(
            self,
            Self::ExperienceContinuity
                | Self::StaticCohort { .. }
                | Self::MalformedCohort { .. }
                | Self::UnknownOperator { .. }
                | Self::UnsupportedRegex { .. }
                | Self::UnusableValue { .. }
                | Self::Malformed
                | Self::MissingDependency { .. }
                | Self::TooDeep
                | Self::UnknownGroupType
        )
    }
}

impl core::fmt::Display for Finding<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Inactive => f.write_str("inactive (always false)"),
            Self::ExperienceContinuity => f.write_str(
                "ensure_experience_continuity is on: only the server can evaluate it",
            ),
            Self::StaticCohort { id } => write!(
                f,
                "cohort {id} is not in the definitions (a static cohort): only the server knows its members"
            ),
            Self::MalformedCohort { id } => write!(f, "cohort {id} has malformed property groups"),
            Self::UnknownOperator { property } => {
                write!(f, "filter on `{property}` uses an operator this evaluator does not know")
            }
            Self::UnsupportedRegex { property } => write!(
                f,
                "regex on `{property}` cannot be decided exactly on the device (look-around, back-references, \\p{{..}} or too large)"
            ),
            Self::UnusableValue { property, operator } => {
                write!(f, "filter `{property}` {operator} has a value the operator cannot use")
            }
            Self::Malformed => f.write_str("part of the definition could not be understood"),
            Self::MissingDependency { flag } => {
                write!(f, "depends on flag `{flag}`, which is not in the definitions")
            }
            Self::TooDeep => f.write_str("cohorts or dependencies nest too deep"),
            Self::UnknownGroupType => {
                f.write_str("aggregates by a group type index that group_type_mapping lacks")
            }
            Self::Property {
                scope: PropertyScope::Person,
                key,
                operator,
            } => write!(f, "person property `{key}` ({operator})"),
            Self::Property {
                scope: PropertyScope::Group(g),
                key,
                operator,
            } => write!(f, "{g} group property `{key}` ({operator})"),
            Self::WallClock => f.write_str("the wall clock (relative date filter)"),
            Self::DeviceId => f.write_str("the device id (bucketing by $device_id)"),
            Self::Group { group_type } => write!(f, "the `{group_type}` group"),
            Self::DependsOn { flag } => write!(f, "flag `{flag}`"),
        }
    }
}

impl Operator {
    /// PostHog's name of the operator.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::IsNot => "is_not",
            Self::IsSet => "is_set",
            Self::IsNotSet => "is_not_set",
            Self::IContains => "icontains",
            Self::NotIContains => "not_icontains",
            Self::Regex => "regex",
            Self::NotRegex => "not_regex",
            Self::StartsWith => "starts_with",
            Self::NotStartsWith => "not_starts_with",
            Self::EndsWith => "ends_with",
            Self::NotEndsWith => "not_ends_with",
            Self::Gt => "gt",
            Self::Gte => "gte",
            Self::Lt => "lt",
            Self::Lte => "lte",
            Self::DateBefore => "is_date_before",
            Self::DateAfter => "is_date_after",
            Self::Semver(op) => op.as_str(),
            Self::Unknown => "unknown",
        }
    }
}

struct Walker<'s, 'v> {
    store: Tables<'s>,
    visit: &'v mut dyn FnMut(Finding<'s>),
}

/// The analysis method of both store types, over [`Tables`].
macro_rules! analyze_methods {
    () => {
        /// Reports to `visit` everything flag `key` needs from the device and everything only
        /// the server can decide (see [`Finding`](crate::flags::Finding)). Returns `false` if
        /// the flag is unknown.
        ///
        /// Dependencies are reported as
        /// [`Finding::DependsOn`](crate::flags::Finding::DependsOn) and not walked (analyze
        /// them by their own key); cohorts are walked.
        pub fn analyze<'s>(
            &'s self,
            key: &str,
            visit: impl FnMut(crate::flags::Finding<'s>),
        ) -> bool {
            self.tables().analyze(key, visit)
        }
    };
}

impl<const F: usize, const N: usize, const B: usize> super::FlagStore<F, N, B> {
    analyze_methods!();
}

impl super::FlagTables<'_> {
    analyze_methods!();
}

impl<'t> Tables<'t> {
    pub(crate) fn analyze(self, key: &str, mut visit: impl FnMut(Finding<'t>)) -> bool {
        let Some(flag) = self.find(key).and_then(|i| self.flag(i)).copied() else {
            return false;
        };
        let mut w = Walker {
            store: self,
            visit: &mut visit,
        };
        if !flag.active {
            (w.visit)(Finding::Inactive);
            return true;
        }
        if flag.continuity {
            (w.visit)(Finding::ExperienceContinuity);
        }
        if flag.broken || flag.aggregation_invalid {
            (w.visit)(Finding::Malformed);
        }
        let flag_scope = match flag.aggregation {
            Some(i) => match self.group_type_name(i) {
                Some(name) => {
                    (w.visit)(Finding::Group { group_type: name });
                    PropertyScope::Group(name)
                }
                None => {
                    (w.visit)(Finding::UnknownGroupType);
                    return true;
                }
            },
            None => {
                if flag.device_bucketing {
                    (w.visit)(Finding::DeviceId);
                }
                PropertyScope::Person
            }
        };
        if flag.feature_enrollment {
            (w.visit)(Finding::Property {
                scope: flag_scope,
                key: "$feature_enrollment/<flag key>",
                operator: "exact",
            });
        }
        for cond in self.list(flag.conditions) {
            let NodeKind::Condition {
                filters,
                aggregation,
                broken,
                ..
            } = cond.kind
            else {
                continue;
            };
            if broken {
                (w.visit)(Finding::Malformed);
            }
            let scope = match aggregation {
                CondAggregation::Index(i) if Some(i) != flag.aggregation => {
                    match self.group_type_name(i) {
                        Some(name) => {
                            (w.visit)(Finding::Group { group_type: name });
                            PropertyScope::Group(name)
                        }
                        None => {
                            (w.visit)(Finding::UnknownGroupType);
                            continue;
                        }
                    }
                }
                CondAggregation::Invalid => {
                    (w.visit)(Finding::Malformed);
                    continue;
                }
                _ => flag_scope,
            };
            for filter in self.list(filters) {
                w.filter(&filter.kind, scope, 0, 0);
            }
        }
        true
    }
}

impl<'s> Walker<'s, '_> {
    fn filter(&mut self, node: &NodeKind, scope: PropertyScope<'s>, depth: usize, level: usize) {
        let store = self.store;
        let NodeKind::Filter { kind, .. } = *node else {
            (self.visit)(Finding::Malformed);
            return;
        };
        match kind {
            FilterKind::Property { key, op, value } => {
                let property = store.text(key);
                let operator = op.as_str();
                let finding = match value {
                    _ if op == Operator::Unknown => Finding::UnknownOperator { property },
                    Compiled::RegexUnsupported => Finding::UnsupportedRegex { property },
                    Compiled::Unusable => Finding::UnusableValue { property, operator },
                    _ => Finding::Property {
                        scope,
                        key: property,
                        operator,
                    },
                };
                (self.visit)(finding);
                if let Compiled::Date(t) = value {
                    if matches!(
                        super::store::decode_date(store.blob(t)),
                        Some(super::date::DateFilter::Relative(_))
                    ) {
                        (self.visit)(Finding::WallClock);
                    }
                }
            }
            FilterKind::Cohort {
                id, unsupported_op, ..
            } => {
                let id = store.text(id);
                match store.cohort(id) {
                    None => (self.visit)(Finding::StaticCohort { id }),
                    Some(_) if unsupported_op => (self.visit)(Finding::Malformed),
                    Some(_) if depth >= MAX_NESTING => (self.visit)(Finding::TooDeep),
                    Some(group) => self.group(id, group, scope, depth + 1, level),
                }
            }
            FilterKind::Flag { key, chain, .. } => {
                let flag = store.text(key);
                if store.find(flag).is_none() {
                    (self.visit)(Finding::MissingDependency { flag });
                } else {
                    (self.visit)(Finding::DependsOn { flag });
                }
                if chain.is_none() {
                    (self.visit)(Finding::Malformed);
                }
            }
            FilterKind::Broken => (self.visit)(Finding::Malformed),
        }
    }

    fn group(
        &mut self,
        cohort: &'s str,
        idx: u32,
        scope: PropertyScope<'s>,
        depth: usize,
        level: usize,
    ) {
        let store = self.store;
        let Some(NodeKind::Group {
            children,
            malformed,
            ..
        }) = store.node(idx).map(|n| n.kind)
        else {
            (self.visit)(Finding::MalformedCohort { id: cohort });
            return;
        };
        if malformed {
            (self.visit)(Finding::MalformedCohort { id: cohort });
            return;
        }
        for (i, child) in store.entries(children) {
            match child.kind {
                NodeKind::Group { .. } if level + 1 >= super::store::MAX_GROUP_DEPTH => {
                    (self.visit)(Finding::TooDeep);
                }
                NodeKind::Group { .. } => self.group(cohort, i, scope, depth, level + 1),
                kind => self.filter(&kind, scope, depth, level),
            }
        }
    }
}
