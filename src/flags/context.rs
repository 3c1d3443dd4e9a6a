//! Who a flag is evaluated for: the distinct id, device id, person and group properties.

use core::fmt;

use super::value::Properties;

/// One group the evaluated entity belongs to.
#[derive(Clone, Copy)]
pub struct GroupContext<'a> {
    /// Group type name (`"company"`).
    pub group_type: &'a str,
    /// Group key (`"acme"`), the bucketing value of group flags.
    pub key: &'a str,
    /// The group's properties, if known (`None`: filters on them are inconclusive).
    /// `$group_key` is implied: a filter on it sees [`key`](Self::key) unless the properties
    /// set it (as posthog-python's `_add_local_person_and_group_properties` does).
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
    /// [`distinct_id`](Self::distinct_id) unless these set it (as PostHog's SDKs prepare the
    /// context for local evaluation: posthog-python `_person_properties_for_local_evaluation`).
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
