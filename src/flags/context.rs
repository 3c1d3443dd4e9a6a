//! Who a flag is evaluated for: the distinct id, device id, person and group properties.

use core::fmt;

use super::value::{Properties, PropertyValue};

/// Most groups [`EvalContext::prepared`] copies (a PostHog project has at most 5 group types).
pub const MAX_PREPARED_GROUPS: usize = 8;

/// The property set of a group passed without properties, once prepared.
const NO_PROPERTIES: &[(&str, PropertyValue<'static>); 0] = &[];

/// One group the evaluated entity belongs to.
#[derive(Clone, Copy)]
pub struct GroupContext<'a> {
    /// Group type name (`"company"`).
    pub group_type: &'a str,
    /// Group key (`"acme"`), the bucketing value of group flags.
    pub key: &'a str,
    /// The group's properties, if known. `$group_key` is implied: a filter on it sees
    /// [`key`](Self::key) unless the properties set it (as posthog-python's
    /// `_add_local_person_and_group_properties` does). `None` means no properties: the client
    /// and the drivers evaluate the group with its `$group_key` alone
    /// ([`EvalContext::prepared`]), while [`FlagStore::evaluate`](super::FlagStore::evaluate)
    /// alone takes it as "nothing known" and answers `missing_context` for the group's flags.
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

impl<'a> EvalContext<'a> {
    /// This context as PostHog's SDKs hand it to local evaluation: a group passed without
    /// properties gets an empty property set, so its implied `$group_key` is there and a group
    /// flag that only rolls out (or filters on `$group_key`) is decided locally, while a filter
    /// on another of its properties is inconclusive (`missing_context`), as posthog-python's
    /// `_add_local_person_and_group_properties` prepares it. [`FlagStore::evaluate`] itself
    /// takes `None` as "nothing known about this group" (posthog-python's evaluator below that
    /// layer); the client and the drivers prepare the context first.
    ///
    /// The groups are copied into `buf` when one needs it; with more than
    /// [`MAX_PREPARED_GROUPS`] groups the context is returned as it is.
    ///
    /// [`FlagStore::evaluate`]: super::FlagStore::evaluate
    #[must_use]
    pub fn prepared<'b>(
        &self,
        buf: &'b mut heapless::Vec<GroupContext<'a>, MAX_PREPARED_GROUPS>,
    ) -> EvalContext<'b>
    where
        'a: 'b,
    {
        let needs = self.groups.iter().any(|g| g.properties.is_none());
        if !needs || self.groups.len() > MAX_PREPARED_GROUPS {
            return *self;
        }
        buf.clear();
        for g in self.groups {
            let properties = Some(g.properties.unwrap_or(NO_PROPERTIES));
            // Cannot fail: there are at most MAX_PREPARED_GROUPS groups.
            let _ = buf.push(GroupContext { properties, ..*g });
        }
        EvalContext {
            groups: buf.as_slice(),
            ..*self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(
        key: &'static str,
        properties: Option<&'static dyn Properties>,
    ) -> GroupContext<'static> {
        GroupContext {
            group_type: "fleet",
            key,
            properties,
        }
    }

    fn ctx<'a>(groups: &'a [GroupContext<'a>]) -> EvalContext<'a> {
        EvalContext {
            distinct_id: "d",
            device_id: None,
            person: &[],
            groups,
        }
    }

    #[test]
    fn prepared_gives_groups_without_properties_an_empty_set() {
        static PLAN: [(&str, PropertyValue<'static>); 1] = [("plan", PropertyValue::Str("pro"))];
        let groups = [group("a", Some(&PLAN)), group("b", None)];
        let mut buf = heapless::Vec::new();
        let p = ctx(&groups).prepared(&mut buf);
        assert_eq!(p.groups.len(), 2);
        assert_eq!(p.groups[0].key, "a");
        assert!(p.groups[0].properties.unwrap().get("plan").is_some());
        assert_eq!(p.groups[1].key, "b");
        assert!(p.groups[1].properties.unwrap().get("plan").is_none());
        // Nothing to prepare: no copy.
        let complete = [group("a", Some(&PLAN))];
        let mut buf = heapless::Vec::new();
        let p = ctx(&complete).prepared(&mut buf);
        assert!(core::ptr::eq(p.groups, complete.as_slice()));
        // Exactly as many groups as the buffer holds: all prepared.
        let full = [group("x", None); MAX_PREPARED_GROUPS];
        let mut buf = heapless::Vec::new();
        let p = ctx(&full).prepared(&mut buf);
        assert_eq!(p.groups.len(), MAX_PREPARED_GROUPS);
        assert!(p.groups.iter().all(|g| g.properties.is_some()));
        // More groups than the buffer holds: as it was.
        let many = [group("x", None); MAX_PREPARED_GROUPS + 1];
        let mut buf = heapless::Vec::new();
        let p = ctx(&many).prepared(&mut buf);
        assert!(p.groups.iter().all(|g| g.properties.is_none()));
    }
}
