//! Before-send hooks that can change an event, within no-alloc limits: a chain of
//! [`BeforeSend`] hooks, run in the order they were added on every event the client produces
//! (`$feature_flag_called` included), after the gate and after validation.
//!
//! 1. [`BeforeSend::event`] sees the event name and distinct id before the event is encoded and
//!    keeps it, drops it, or fails.
//! 2. [`BeforeSend::property`] then sees each top-level property of the encoded event (its key
//!    and its JSON text) and keeps it, removes it or redacts it (its value becomes `null`). Each
//!    hook sees the previous hooks' output. The edits are made in the record in place.
//!
//! A hook that drops the event stops the chain: nothing is queued (counted in
//! [`ClientStats::filtered`](super::ClientStats::filtered)). A hook that fails stops the chain
//! and **drops the event** (fail closed: the failed hook may have been the one removing
//! personal data), counted in [`ClientStats::hook_failed`](super::ClientStats::hook_failed) with
//! a warning. An edit that does not fit the record's space, or a key longer than
//! [`MAX_HOOK_KEY`] bytes that a hook cannot be shown, is a failure too; nothing is ever
//! truncated; the room an edit may grow into is the free space after the record, which on a
//! full queue can be only a few bytes (prefer removals, which never need room). A dropped
//! event may already have made room for itself under
//! [`OverflowPolicy::DropOldest`](crate::capture::OverflowPolicy::DropOldest) (those
//! evictions are counted as usual).

use core::fmt;

use super::stats::{EventInfo, Verdict};
use crate::json::read::{Reader, Token};
use crate::json::write::{Object, Sink};

/// At most this many hooks are installed at once.
pub const MAX_HOOKS: usize = 4;

/// Longest property key shown to [`BeforeSend::property`] (longer keys fail the event).
pub const MAX_HOOK_KEY: usize = 256;

/// A hook could not decide: the event is dropped (fail closed) and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HookFailed;

impl fmt::Display for HookFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a before-send hook failed")
    }
}

impl core::error::Error for HookFailed {}

/// [`MAX_HOOKS`] hooks are installed already: the hook was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct HooksFull {
    /// How many hooks a client holds.
    pub max: usize,
}

impl fmt::Display for HooksFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} before-send hooks are installed already", self.max)
    }
}

impl core::error::Error for HooksFull {}

/// What a hook does with one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PropertyVerdict {
    /// Keep it as it is.
    Keep,
    /// Remove the property.
    Remove,
    /// Keep the key, replace the value with `null`.
    Redact,
}

/// Before-send hooks that can change an event, within no-alloc limits: a chain of
/// [`BeforeSend`] hooks, run in the order they were added on every event the client produces
/// (`$feature_flag_called` included), after the gate and after validation.
///
/// 1. [`BeforeSend::event`] sees the event name and distinct id before the event is encoded and
///    keeps it, drops it, or fails.
/// 2. [`BeforeSend::property`] then sees each top-level property of the encoded event (its key
///    and its JSON text) and keeps it, removes it or redacts it (its value becomes `null`). Each
///    hook sees the previous hooks' output. The edits are made in the record in place.
///
/// A hook that drops the event stops the chain: nothing is queued (counted in
/// [`ClientStats::filtered`](super::ClientStats::filtered)). A hook that fails stops the chain
/// and **drops the event** (fail closed: the failed hook may have been the one removing
/// personal data), counted in [`ClientStats::hook_failed`](super::ClientStats::hook_failed) with
/// a warning. An edit that does not fit the record's space, or a key longer than
/// [`MAX_HOOK_KEY`] bytes that a hook cannot be shown, is a failure too; nothing is ever
/// truncated; the room an edit may grow into is the free space after the record, which on a
/// full queue can be only a few bytes (prefer removals, which never need room). A dropped
/// event may already have made room for itself under
/// [`OverflowPolicy::DropOldest`](crate::capture::OverflowPolicy::DropOldest) (those
/// evictions are counted as usual).
///
/// Both methods have a default that keeps everything; implement the ones
/// you need. `Sync`, so a client with hooks can be shared between threads or tasks.
///
/// ```
/// use posthog_embedded::client::{BeforeSend, EventInfo, HookFailed, PropertyVerdict, Verdict};
///
/// /// Never send e-mail addresses; drop debug events.
/// struct Scrub;
///
/// impl BeforeSend for Scrub {
///     fn event(&self, e: &EventInfo<'_>) -> Result<Verdict, HookFailed> {
///         Ok(if e.event.starts_with("debug ") { Verdict::Drop } else { Verdict::Keep })
///     }
///     fn property(&self, _: &EventInfo<'_>, key: &str, value: &str) -> Result<PropertyVerdict, HookFailed> {
///         Ok(if key == "email" || value.contains('@') {
///             PropertyVerdict::Redact
///         } else {
///             PropertyVerdict::Keep
///         })
///     }
/// }
/// static SCRUB: Scrub = Scrub;
/// // client.add_before_send(&SCRUB)?;
/// ```
pub trait BeforeSend {
    /// Before the event is encoded: keep it, drop it, or fail (which drops it too).
    ///
    /// # Errors
    /// [`HookFailed`]: the event is dropped and counted.
    fn event(&self, event: &EventInfo<'_>) -> Result<Verdict, HookFailed> {
        let _ = event;
        Ok(Verdict::Keep)
    }

    /// After [`property`](Self::property) has seen every property: add properties of your own
    /// (`props.set("privacy", "filtered")`), written at the end of the event. A property the
    /// event already has is written again and the last one wins, as on PostHog's ingestion. An
    /// addition that does not fit the record's space fails the event (it is never truncated).
    ///
    /// # Errors
    /// [`HookFailed`]: the event is dropped and counted.
    fn add(&self, event: &EventInfo<'_>, props: &mut Object<'_, '_>) -> Result<(), HookFailed> {
        let _ = (event, props);
        Ok(())
    }

    /// For each top-level property of the encoded event: `key` decoded, `value` as JSON text.
    ///
    /// # Errors
    /// [`HookFailed`]: the event is dropped and counted.
    fn property(
        &self,
        event: &EventInfo<'_>,
        key: &str,
        value: &str,
    ) -> Result<PropertyVerdict, HookFailed> {
        let _ = (event, key, value);
        Ok(PropertyVerdict::Keep)
    }
}

/// The installed chain: a plain array, so a client stays free of drop glue and covariant in
/// its lifetime.
#[derive(Clone, Copy, Default)]
pub(crate) struct Hooks<'r> {
    slots: [Option<&'r (dyn BeforeSend + Sync)>; MAX_HOOKS],
}

impl<'r> Hooks<'r> {
    pub(crate) const fn new() -> Self {
        Self {
            slots: [None; MAX_HOOKS],
        }
    }

    /// Adds `hook` at the end.
    pub(crate) fn push(&mut self, hook: &'r (dyn BeforeSend + Sync)) -> Result<(), HooksFull> {
        match self.slots.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(hook);
                Ok(())
            }
            None => Err(HooksFull { max: MAX_HOOKS }),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.slots = [None; MAX_HOOKS];
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    fn iter(&self) -> impl Iterator<Item = &'r (dyn BeforeSend + Sync)> + '_ {
        self.slots.iter().map_while(|s| *s)
    }
}

impl fmt::Debug for Hooks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hooks({})", self.iter().count())
    }
}

/// Runs the chain's event step. `Ok(false)`: a hook dropped the event.
pub(crate) fn run_event(hooks: &Hooks<'_>, info: &EventInfo<'_>) -> Result<bool, HookFailed> {
    for h in hooks.iter() {
        if h.event(info)? == Verdict::Drop {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One member of the `properties` object of an encoded event.
struct Member {
    /// Offset of the member: its `"` when first, else the `,` before it.
    start: usize,
    first: bool,
    /// The value's text: `[value, end)`.
    value: usize,
    end: usize,
}

/// The `n`-th member of the event's `properties`, with its decoded key.
fn nth_property(
    json: &[u8],
    n: usize,
    key: &mut heapless::String<MAX_HOOK_KEY>,
) -> Result<Option<Member>, HookFailed> {
    let mut r = enter_properties(json)?;
    let mut i = 0;
    loop {
        let start = r.offset();
        let Some(Token::Key(k)) = r.next().map_err(|_| HookFailed)? else {
            return Ok(None);
        };
        // Past the key and its `:` (the encoder writes no whitespace).
        let value = r.offset().saturating_add(1);
        r.skip_value().map_err(|_| HookFailed)?;
        let end = r.offset();
        if i == n {
            key.clear();
            for c in k.chars() {
                key.push(c).map_err(|_| HookFailed)?;
            }
            let first = json.get(start) == Some(&b'"');
            return Ok(Some(Member {
                start,
                first,
                value,
                end,
            }));
        }
        i += 1;
    }
}

/// Runs the chain's property step over an encoded event (`area[..len]`, free space after it)
/// and returns its new length: each hook in turn sees every property (the previous hooks'
/// output) and may remove or redact it, then may add its own. A failure (an edit that does not
/// fit included) drops the event.
pub(crate) fn run_properties(
    hooks: &Hooks<'_>,
    info: &EventInfo<'_>,
    area: &mut [u8],
    mut len: usize,
    max_key_len: usize,
) -> Result<usize, HookFailed> {
    for h in hooks.iter() {
        len = edit_properties(h, info, area, len)?;
        len = add_properties(h, info, area, len, max_key_len)?;
    }
    Ok(len)
}

/// One hook's pass over the properties: keep, remove or redact each.
fn edit_properties(
    h: &(dyn BeforeSend + Sync),
    info: &EventInfo<'_>,
    area: &mut [u8],
    mut len: usize,
) -> Result<usize, HookFailed> {
    let mut key = heapless::String::<MAX_HOOK_KEY>::new();
    let mut n = 0;
    loop {
        let json = area.get(..len).ok_or(HookFailed)?;
        let Some(m) = nth_property(json, n, &mut key)? else {
            return Ok(len);
        };
        let value = json
            .get(m.value..m.end)
            .and_then(|v| core::str::from_utf8(v).ok())
            .ok_or(HookFailed)?;
        match h.property(info, &key, value)? {
            PropertyVerdict::Keep => n += 1,
            PropertyVerdict::Remove => {
                // The member and one separator: the `,` before it, or the one after a first.
                let (from, to) = if !m.first {
                    (m.start, m.end)
                } else if json.get(m.end) == Some(&b',') {
                    (m.start, m.end + 1)
                } else {
                    (m.start, m.end)
                };
                area.copy_within(to..len, from);
                len -= to - from;
            }
            PropertyVerdict::Redact => {
                const NULL: &[u8] = b"null";
                let old = m.end - m.value;
                let new_len = len - old + NULL.len();
                if new_len > area.len() {
                    return Err(HookFailed);
                }
                area.copy_within(m.end..len, m.value + NULL.len());
                area.get_mut(m.value..m.value + NULL.len())
                    .ok_or(HookFailed)?
                    .copy_from_slice(NULL);
                len = new_len;
                n += 1;
            }
        }
    }
}

/// The offset of the `}` that closes the event's `properties`.
fn properties_end(json: &[u8]) -> Result<usize, HookFailed> {
    let mut r = enter_properties(json)?;
    loop {
        let at = r.offset();
        match r.next().map_err(|_| HookFailed)? {
            Some(Token::Key(_)) => r.skip_value().map_err(|_| HookFailed)?,
            // The encoder writes no whitespace: the brace is at `at`.
            Some(Token::ObjectEnd) if json.get(at) == Some(&b'}') => return Ok(at),
            _ => return Err(HookFailed),
        }
    }
}

/// A reader positioned inside the event's `properties` object (every encoded event has one).
fn enter_properties(json: &[u8]) -> Result<Reader<'_>, HookFailed> {
    let mut r = Reader::new(json);
    if r.next().map_err(|_| HookFailed)? != Some(Token::ObjectStart) {
        return Err(HookFailed);
    }
    loop {
        match r.next().map_err(|_| HookFailed)? {
            Some(Token::Key(k)) if k.eq_str("properties") => break,
            Some(Token::Key(_)) => r.skip_value().map_err(|_| HookFailed)?,
            _ => return Err(HookFailed),
        }
    }
    if r.next().map_err(|_| HookFailed)? != Some(Token::ObjectStart) {
        return Err(HookFailed);
    }
    Ok(r)
}

/// One hook's additions, written at the end of the properties into the free space after the
/// record (what follows the properties is moved along).
fn add_properties(
    h: &(dyn BeforeSend + Sync),
    info: &EventInfo<'_>,
    area: &mut [u8],
    len: usize,
    max_key_len: usize,
) -> Result<usize, HookFailed> {
    let at = properties_end(area.get(..len).ok_or(HookFailed)?)?;
    let first = area.get(at.wrapping_sub(1)) == Some(&b'{');
    let tail = len - at;
    // Written straight after the members, in the space the tail would move into; the tail is
    // saved first (it is a brace or two).
    let mut saved = [0u8; 4];
    let saved = saved.get_mut(..tail).ok_or(HookFailed)?;
    saved.copy_from_slice(area.get(at..len).ok_or(HookFailed)?);
    let room_end = area.len().checked_sub(tail).ok_or(HookFailed)?;
    let region = area.get_mut(at..room_end.max(at)).ok_or(HookFailed)?;
    let mut sink = Sink::new(region, max_key_len);
    let mut o = Object::resume(&mut sink, first, &[]);
    let added = h.add(info, &mut o);
    let (n, ok) = (sink.needed(), sink.latched().is_none() && sink.fits());
    // Whatever happened, the tail goes back after what was written.
    let end = if ok && added.is_ok() { at + n } else { at };
    area.get_mut(end..end + tail)
        .ok_or(HookFailed)?
        .copy_from_slice(saved);
    added?;
    if !ok {
        return Err(HookFailed);
    }
    Ok(end + tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ByKey(&'static str, PropertyVerdict);

    impl BeforeSend for ByKey {
        fn property(
            &self,
            _: &EventInfo<'_>,
            key: &str,
            _: &str,
        ) -> Result<PropertyVerdict, HookFailed> {
            Ok(if key == self.0 {
                self.1
            } else {
                PropertyVerdict::Keep
            })
        }
    }

    const INFO: EventInfo<'static> = EventInfo {
        event: "e",
        distinct_id: "u",
    };

    fn run(
        json: &str,
        room: usize,
        hooks: &[&'static (dyn BeforeSend + Sync)],
    ) -> Result<std::string::String, HookFailed> {
        let mut area = std::vec::Vec::from(json.as_bytes());
        area.resize(json.len() + room, 0);
        let mut chain = Hooks::new();
        for h in hooks {
            chain.push(*h).ok().unwrap();
        }
        let len = run_properties(&chain, &INFO, &mut area, json.len(), 200)?;
        area.truncate(len);
        Ok(std::string::String::from_utf8(area).unwrap())
    }

    static RM_A: ByKey = ByKey("a", PropertyVerdict::Remove);
    static RM_B: ByKey = ByKey("b", PropertyVerdict::Remove);
    static RM_C: ByKey = ByKey("c", PropertyVerdict::Remove);
    static RED_B: ByKey = ByKey("b", PropertyVerdict::Redact);
    static RED_Q: ByKey = ByKey("q\"uote", PropertyVerdict::Redact);

    const EV: &str =
        r#"{"event":"e","distinct_id":"u","properties":{"a":1,"b":"x@y","c":{"d":[1,2]}}}"#;

    #[test]
    fn removes_first_middle_and_last_members() {
        assert_eq!(
            run(EV, 0, &[&RM_A]).unwrap(),
            r#"{"event":"e","distinct_id":"u","properties":{"b":"x@y","c":{"d":[1,2]}}}"#
        );
        assert_eq!(
            run(EV, 0, &[&RM_B]).unwrap(),
            r#"{"event":"e","distinct_id":"u","properties":{"a":1,"c":{"d":[1,2]}}}"#
        );
        assert_eq!(
            run(EV, 0, &[&RM_C]).unwrap(),
            r#"{"event":"e","distinct_id":"u","properties":{"a":1,"b":"x@y"}}"#
        );
        assert_eq!(
            run(EV, 0, &[&RM_A, &RM_B, &RM_C]).unwrap(),
            r#"{"event":"e","distinct_id":"u","properties":{}}"#
        );
    }

    #[test]
    fn redacts_in_place_and_fails_when_it_does_not_fit() {
        assert_eq!(
            run(EV, 0, &[&RED_B]).unwrap(),
            r#"{"event":"e","distinct_id":"u","properties":{"a":1,"b":null,"c":{"d":[1,2]}}}"#
        );
        let short = r#"{"event":"e","properties":{"b":1}}"#;
        assert_eq!(run(short, 0, &[&RED_B]), Err(HookFailed));
        assert_eq!(
            run(short, 3, &[&RED_B]).unwrap(),
            r#"{"event":"e","properties":{"b":null}}"#
        );
        // Keys are shown decoded.
        let quoted = r#"{"event":"e","properties":{"q\"uote":"v"}}"#;
        assert_eq!(
            run(quoted, 1, &[&RED_Q]).unwrap(),
            r#"{"event":"e","properties":{"q\"uote":null}}"#
        );
    }

    #[test]
    fn output_stays_valid_json() {
        for hooks in [
            &[&RM_A as &(dyn BeforeSend + Sync)][..],
            &[&RM_B, &RED_B],
            &[&RED_B, &RM_C],
            &[&RM_C, &RM_A],
        ] {
            let out = run(EV, 8, hooks).unwrap();
            let mut r = Reader::new(out.as_bytes());
            while r.next().unwrap().is_some() {}
        }
    }

    struct AddTag;

    impl BeforeSend for AddTag {
        fn add(&self, _: &EventInfo<'_>, props: &mut Object<'_, '_>) -> Result<(), HookFailed> {
            props.set("tag", "x").done().map_err(|_| HookFailed)
        }
    }

    static ADD: AddTag = AddTag;

    #[test]
    fn additions_need_room_and_land_inside_the_properties() {
        // The records the encoder writes end with the properties' brace.
        let rec = r#"{"event":"e","properties":{"a":1}"#;
        assert_eq!(
            run(rec, 0, &[&ADD]),
            Err(HookFailed),
            "no room: fails, never truncates"
        );
        assert_eq!(
            run(rec, 16, &[&ADD]).unwrap(),
            r#"{"event":"e","properties":{"a":1,"tag":"x"}"#
        );
        let empty = r#"{"event":"e","properties":{}"#;
        assert_eq!(
            run(empty, 16, &[&ADD]).unwrap(),
            r#"{"event":"e","properties":{"tag":"x"}"#
        );
        // A later hook sees (and may remove) what an earlier one added.
        static RM_TAG: ByKey = ByKey("tag", PropertyVerdict::Remove);
        assert_eq!(
            run(rec, 16, &[&ADD, &RM_TAG]).unwrap(),
            r#"{"event":"e","properties":{"a":1}"#
        );
    }
}
