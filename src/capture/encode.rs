//! Event builders: capture, identify, set, alias and group identify, encoded straight into a
//! [`Queue`] record.
//!
//! Every builder runs the same pipeline: validate the inputs, pick the uuid (the caller's, or a
//! fresh UUIDv7) and the time, then stream the event's JSON into the ring with the caller's
//! properties closure. Properties are never collected anywhere first. The closure may run twice
//! (once more after the queue made room for the record), so it must write the same properties
//! each time; it should not have side effects.
//!
//! The record holds the event object without its closing brace:
//!
//! ```text
//! {"event":"…","distinct_id":"…","uuid":"…"[,"timestamp":"…"],"properties":{…,"$lib":"posthog-embedded","$lib_version":"…"[,"$geoip_disable":true][,"$groups":{…}]}
//! ```
//!
//! and the batch renderer closes it with `}` (a wall-clock `timestamp` was known at capture) or
//! `,"offset":<ms since capture>}` (only the monotonic capture instant is known).

use super::queue::{PushError, Queue};
use super::uuid::{Uuid, UuidGen, UUID_LEN};
use crate::error::{CaptureError, PropertyError};
use crate::json::is_blank;
use crate::json::write::{Object, Sink};
use crate::time::timestamp::{format_iso8601, ISO_LEN};
use crate::time::{Now, UnixMillis};

/// Settings for every event an [`Encoder`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct EncoderConfig {
    /// Add `"$geoip_disable": true` to every event, so PostHog does not derive a location from
    /// the sender's IP address (a gateway's or a carrier's, for most devices). Default `true`,
    /// as in the reference SDKs. Can be overridden per event.
    pub disable_geoip: bool,
    /// Longest property key accepted, in bytes. Default 200.
    pub max_key_len: usize,
}

impl EncoderConfig {
    /// The defaults: GeoIP disabled, keys up to 200 bytes.
    pub const DEFAULT: Self = Self {
        disable_geoip: true,
        max_key_len: 200,
    };

    /// The defaults (same as [`Self::DEFAULT`]).
    #[must_use]
    pub const fn new() -> Self {
        Self::DEFAULT
    }

    /// Sets [`disable_geoip`](Self::disable_geoip).
    #[must_use]
    pub const fn disable_geoip(mut self, v: bool) -> Self {
        self.disable_geoip = v;
        self
    }

    /// Sets [`max_key_len`](Self::max_key_len).
    #[must_use]
    pub const fn max_key_len(mut self, v: usize) -> Self {
        self.max_key_len = v;
        self
    }
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Optional parts of any event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventOptions<'a> {
    /// Use this uuid instead of a fresh UUIDv7 (for example to make a retried capture
    /// idempotent across reboots).
    pub uuid: Option<Uuid>,
    /// The event's wall-clock time, if it is not "now".
    pub timestamp: Option<UnixMillis>,
    /// Groups the event belongs to, written as `$groups` (`type -> key`).
    pub groups: &'a [(&'a str, &'a str)],
    /// Override [`EncoderConfig::disable_geoip`] for this event.
    pub disable_geoip: Option<bool>,
    /// The event was captured elsewhere and is relayed (a gateway forwarding a device's
    /// events): the SDK adds none of its own properties (`$lib`, `$lib_version`,
    /// `$geoip_disable`), so the relayed event keeps its own; `$groups` is still written
    /// when [`groups`](Self::groups) is given.
    pub relayed: bool,
}

impl<'a> EventOptions<'a> {
    /// No options.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            uuid: None,
            timestamp: None,
            groups: &[],
            disable_geoip: None,
            relayed: false,
        }
    }

    /// Sets [`uuid`](Self::uuid).
    #[must_use]
    pub const fn uuid(mut self, uuid: Uuid) -> Self {
        self.uuid = Some(uuid);
        self
    }

    /// Sets [`timestamp`](Self::timestamp).
    #[must_use]
    pub const fn timestamp(mut self, t: UnixMillis) -> Self {
        self.timestamp = Some(t);
        self
    }

    /// Sets [`groups`](Self::groups).
    #[must_use]
    pub const fn groups(mut self, groups: &'a [(&'a str, &'a str)]) -> Self {
        self.groups = groups;
        self
    }

    /// Sets [`disable_geoip`](Self::disable_geoip).
    #[must_use]
    pub const fn disable_geoip(mut self, v: bool) -> Self {
        self.disable_geoip = Some(v);
        self
    }

    /// Sets [`relayed`](Self::relayed).
    #[must_use]
    pub const fn relayed(mut self, v: bool) -> Self {
        self.relayed = v;
        self
    }
}

/// Person-property sections of an `$identify` or `$set` event.
#[derive(Debug)]
pub struct Person<'o, 's, 'b> {
    obj: &'o mut Object<'s, 'b>,
    set: bool,
    set_once: bool,
    nonempty: bool,
}

impl<'o, 's, 'b> Person<'o, 's, 'b> {
    fn new(obj: &'o mut Object<'s, 'b>) -> Self {
        Self {
            obj,
            set: false,
            set_once: false,
            nonempty: false,
        }
    }

    /// Writes `$set`: properties that overwrite the person's current values.
    ///
    /// # Errors
    /// [`PropertyError::DuplicateSection`] on a second call, or the first error `f` returns.
    pub fn set<F>(&mut self, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        if self.set {
            return Err(PropertyError::DuplicateSection);
        }
        self.set = true;
        self.section("$set", f)
    }

    /// Writes `$set_once`: properties set only where the person has no value yet.
    ///
    /// # Errors
    /// [`PropertyError::DuplicateSection`] on a second call, or the first error `f` returns.
    pub fn set_once<F>(&mut self, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        if self.set_once {
            return Err(PropertyError::DuplicateSection);
        }
        self.set_once = true;
        self.section("$set_once", f)
    }

    fn section<F>(&mut self, key: &str, f: F) -> Result<&mut Self, PropertyError>
    where
        F: FnOnce(&mut Object<'_, 'b>) -> Result<(), PropertyError>,
    {
        let mut nonempty = false;
        self.obj.object(key, |o| {
            f(o)?;
            nonempty = !o.is_empty();
            Ok(())
        })?;
        self.nonempty |= nonempty;
        Ok(self)
    }
}

/// Returned by a record writer to abandon the record without an error (an empty `$set`).
enum Abort {
    Error(CaptureError),
    Nothing,
}

impl From<PropertyError> for Abort {
    fn from(e: PropertyError) -> Self {
        Self::Error(CaptureError::Property(e))
    }
}

/// Encodes events into a [`Queue`]. Holds the settings and the uuid generator; no buffers.
#[derive(Debug)]
pub struct Encoder {
    config: EncoderConfig,
    uuids: UuidGen,
}

impl Encoder {
    /// An encoder with `config`, its uuid generator seeded with `seed`: a value that differs
    /// per boot and per device (see [`UuidGen`] for why and how).
    #[must_use]
    pub const fn new(config: EncoderConfig, seed: u64) -> Self {
        Self {
            config,
            uuids: UuidGen::new(seed),
        }
    }

    /// Draws a new boot id from `seed` (before any event of this boot was encoded): for a boot
    /// counter learned after construction, such as the one the storage layer keeps.
    pub fn reseed(&mut self, seed: u64) {
        self.uuids = UuidGen::new(seed);
    }

    /// The settings.
    #[must_use]
    pub const fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// A fresh UUIDv7 for time `now` (the wall clock if known, else the monotonic clock).
    pub fn new_uuid(&mut self, now: Now) -> Uuid {
        let ms = now.wall.map_or(now.mono.as_millis(), UnixMillis::as_millis);
        self.uuids.next(ms)
    }

    /// Queues a custom event `event` for `distinct_id`, its properties written by `props`.
    ///
    /// Adds `$lib`, `$lib_version`, `$geoip_disable` (unless disabled) and `$groups` (when
    /// `opts.groups` is not empty); a caller value under one of these keys is dropped in favour
    /// of the SDK's. Returns the event's uuid.
    ///
    /// ```
    /// use posthog_embedded::capture::{Encoder, EncoderConfig, EventOptions, OverflowPolicy, Queue};
    /// use posthog_embedded::{Instant, Now};
    ///
    /// let mut queue = Queue::new([0u8; 2048], OverflowPolicy::DropOldest);
    /// let mut enc = Encoder::new(EncoderConfig::DEFAULT, 0x5eed);
    /// let now = Now::mono(Instant::from_millis(1_000));
    /// enc.capture(&mut queue, now, "reading", "device-42", &EventOptions::new(), |p| {
    ///     p.prop("temperature_c", 21.5)?.prop("sensor", "bme280")?;
    ///     Ok(())
    /// })?;
    /// assert_eq!(queue.len(), 1);
    /// # Ok::<(), posthog_embedded::CaptureError>(())
    /// ```
    ///
    /// # Errors
    /// Validation errors (empty name or distinct id, bad group, bad property), and
    /// [`CaptureError::TooLarge`] / [`CaptureError::QueueFull`] from the queue. Nothing is
    /// queued on error.
    pub fn capture<S, F>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        event: &str,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        mut props: F,
    ) -> Result<Uuid, CaptureError>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        F: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        if event.is_empty() {
            return Err(CaptureError::EmptyEventName);
        }
        self.emit(queue, now, event, &[distinct_id], opts, |o| {
            props(o)?;
            Ok(())
        })
        .map(|(u, _)| u)
    }

    /// Queues `$identify` for `distinct_id`: person properties go in `$set` / `$set_once`
    /// inside `properties` (an empty `$set` is written when `person` sets none).
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn identify<S, F>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        mut person: F,
    ) -> Result<Uuid, CaptureError>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        F: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        self.emit(queue, now, "$identify", &[distinct_id], opts, |o| {
            let mut p = Person::new(o);
            person(&mut p)?;
            if !p.set {
                o.object("$set", |_| Ok(()))?;
            }
            Ok(())
        })
        .map(|(u, _)| u)
    }

    /// Queues a `$set` event that updates person properties without any identity change:
    /// `$set` and/or `$set_once` inside `properties`.
    ///
    /// Returns `Ok(None)` and queues nothing when `person` sets no property at all.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn set<S, F>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        distinct_id: &str,
        opts: &EventOptions<'_>,
        mut person: F,
    ) -> Result<Option<Uuid>, CaptureError>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        F: FnMut(&mut Person<'_, '_, '_>) -> Result<(), PropertyError>,
    {
        match self.emit(queue, now, "$set", &[distinct_id], opts, |o| {
            let mut p = Person::new(o);
            person(&mut p)?;
            if p.nonempty {
                Ok(())
            } else {
                Err(Abort::Nothing)
            }
        }) {
            Ok((u, _)) => Ok(Some(u)),
            Err(Abort::Nothing) => Ok(None),
            Err(Abort::Error(e)) => Err(e),
        }
    }

    /// Queues `$create_alias`: `alias` becomes another id of the person known as `previous_id`
    /// (`distinct_id` = `previous_id`, `properties.alias` = `alias`,
    /// `properties.distinct_id` = `previous_id`).
    ///
    /// # Errors
    /// [`CaptureError::EmptyDistinctId`] / [`CaptureError::EmptyAlias`], or a queue error.
    pub fn alias<S>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        previous_id: &str,
        alias: &str,
        opts: &EventOptions<'_>,
    ) -> Result<Uuid, CaptureError>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        if is_blank(alias) {
            return Err(CaptureError::EmptyAlias);
        }
        self.emit(queue, now, "$create_alias", &[previous_id], opts, |o| {
            o.prop("distinct_id", previous_id)?.prop("alias", alias)?;
            Ok(())
        })
        .map(|(u, _)| u)
    }

    /// Queues `$groupidentify` for group `group_type`/`group_key`: properties `$group_type`,
    /// `$group_key` and `$group_set` (written by `props`; `{}` when it writes nothing).
    ///
    /// The event's distinct id is `distinct_id` when given, else `$<group_type>_<group_key>`
    /// (as posthog-node and posthog-go do).
    ///
    /// # Errors
    /// [`CaptureError::EmptyGroupType`] / [`CaptureError::EmptyGroupKey`], a property error or
    /// a queue error.
    #[allow(clippy::too_many_arguments)]
    pub fn group_identify<S, F>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        group_type: &str,
        group_key: &str,
        distinct_id: Option<&str>,
        opts: &EventOptions<'_>,
        mut props: F,
    ) -> Result<Uuid, CaptureError>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        F: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        if group_type.is_empty() {
            return Err(CaptureError::EmptyGroupType);
        }
        if group_key.is_empty() {
            return Err(CaptureError::EmptyGroupKey);
        }
        let synthetic = ["$", group_type, "_", group_key];
        let given: [&str; 1];
        let id: &[&str] = match distinct_id {
            Some(d) => {
                given = [d];
                &given
            }
            None => &synthetic,
        };
        self.emit(queue, now, "$groupidentify", id, opts, |o| {
            o.prop("$group_type", group_type)?
                .prop("$group_key", group_key)?
                .object("$group_set", |g| props(g))?;
            Ok(())
        })
        .map(|(u, _)| u)
    }

    /// The shared pipeline. `distinct_id` is given in parts (concatenated) so the synthetic
    /// group id needs no buffer.
    fn emit<S, F, E>(
        &mut self,
        queue: &mut Queue<S>,
        now: Now,
        event: &str,
        distinct_id: &[&str],
        opts: &EventOptions<'_>,
        mut body: F,
    ) -> Result<(Uuid, u64), E>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        F: FnMut(&mut Object<'_, '_>) -> Result<(), E>,
        E: From<CaptureError>,
    {
        if distinct_id.iter().all(|p| is_blank(p)) {
            return Err(CaptureError::EmptyDistinctId.into());
        }
        if opts
            .groups
            .iter()
            .any(|(t, k)| t.is_empty() || k.is_empty())
        {
            return Err(CaptureError::InvalidGroup.into());
        }
        let time = opts.timestamp.or(now.wall);
        // Cleared only when there is a time to write into it.
        let mut ts_buf: [u8; ISO_LEN];
        let ts = match time {
            Some(t) => {
                ts_buf = [0; ISO_LEN];
                Some(format_iso8601(t, &mut ts_buf).ok_or(CaptureError::InvalidTimestamp)?)
            }
            None => None,
        };
        let uuid = match opts.uuid {
            Some(u) => u,
            None => self.new_uuid(now),
        };
        let geoip = opts.disable_geoip.unwrap_or(self.config.disable_geoip) && !opts.relayed;
        let lib = !opts.relayed;
        let groups = opts.groups;

        // SDK-owned keys: a caller value under one of them is dropped in favour of ours.
        let reserved: &[&str] = match (lib, geoip, !groups.is_empty()) {
            (true, true, true) => &["$lib", "$lib_version", "$geoip_disable", "$groups"],
            (true, true, false) => &["$lib", "$lib_version", "$geoip_disable"],
            (true, false, true) => &["$lib", "$lib_version", "$groups"],
            (true, false, false) => &["$lib", "$lib_version"],
            (false, _, true) => &["$groups"],
            (false, _, false) => &[],
        };
        let max_key_len = self.config.max_key_len;

        let result = queue.push_with(now.mono, ts.is_some(), |buf| {
            let mut sink = Sink::new(buf, max_key_len);
            // Quotes ride with the constant pieces around the escaped strings.
            sink.raw(b"{\"event\":\"");
            sink.escaped(event);
            sink.raw(b"\",\"distinct_id\":\"");
            for part in distinct_id {
                sink.escaped(part);
            }
            sink.raw(b"\",\"uuid\":\"");
            sink.fixed::<UUID_LEN>(|text| uuid.encode_ascii(text));
            if let Some(ts) = ts {
                sink.raw(b"\",\"timestamp\":\"");
                sink.raw(ts.as_bytes());
            }
            sink.raw(b"\",\"properties\":{");
            let mut o = Object::resume(&mut sink, true, reserved);
            body(&mut o)?;
            let first = o.is_empty();
            // A latching write (`Object::set`) that failed fails the event, whatever the
            // closure returned.
            if let Some(e) = sink.latched() {
                return Err(E::from(CaptureError::Property(e)));
            }
            if lib && groups.is_empty() && max_key_len >= LONGEST_TAIL_KEY {
                // The usual tail, as constant text: the bytes the general path below writes.
                if !first {
                    sink.byte(b',');
                }
                sink.raw(LIB_PROPS.as_bytes());
                sink.raw(if geoip {
                    b",\"$geoip_disable\":true}"
                } else {
                    b"}"
                });
                return Ok(sink.needed());
            }
            let mut o = Object::resume(&mut sink, first, &[]);
            let sdk = (|| -> Result<(), PropertyError> {
                if lib {
                    o.prop("$lib", crate::LIB_NAME)?
                        .prop("$lib_version", crate::LIB_VERSION)?;
                }
                if geoip {
                    o.prop("$geoip_disable", true)?;
                }
                if !groups.is_empty() {
                    o.object("$groups", |g| {
                        for (t, k) in groups {
                            g.prop(t, *k)?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })();
            sdk.map_err(|e| E::from(CaptureError::Property(e)))?;
            o.close();
            Ok(sink.needed())
        });
        match result {
            Ok(seq) => Ok((uuid, seq)),
            Err(PushError::Write(e)) => Err(e),
            Err(PushError::TooLarge { needed, max }) => {
                ph_warn!(
                    "event dropped: {} bytes, queue holds at most {}",
                    needed,
                    max
                );
                Err(CaptureError::TooLarge { needed, max }.into())
            }
            Err(PushError::Full { needed, free }) => {
                ph_debug!("queue full: event of {} bytes rejected", needed);
                Err(CaptureError::QueueFull { needed, free }.into())
            }
        }
    }
}

/// `"$lib":"posthog-embedded","$lib_version":"<version>"` (see [`crate::LIB_NAME`] and
/// [`crate::LIB_VERSION`]; neither needs escaping).
const LIB_PROPS: &str = concat!(
    "\"$lib\":\"posthog-embedded\",\"$lib_version\":\"",
    env!("CARGO_PKG_VERSION"),
    "\""
);

/// The longest key of the constant tail (`$geoip_disable`): with a smaller `max_key_len` the
/// general path reports the SDK's own key as too long, as it always has.
const LONGEST_TAIL_KEY: usize = "$geoip_disable".len();

impl From<CaptureError> for Abort {
    fn from(e: CaptureError) -> Self {
        Self::Error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::queue::OverflowPolicy;

    /// The constant tail is exactly what the general writer makes of the SDK's properties.
    #[test]
    fn constant_tail_equals_the_general_path() {
        let mut buf = [0u8; 128];
        let mut sink = Sink::new(&mut buf, 200);
        let mut o = Object::resume(&mut sink, true, &[]);
        o.prop("$lib", crate::LIB_NAME)
            .and_then(|o| o.prop("$lib_version", crate::LIB_VERSION))
            .unwrap();
        let n = sink.needed();
        assert_eq!(&buf[..n], LIB_PROPS.as_bytes());
    }

    /// Below the longest SDK key, the SDK's own key is too long, with the fast path as without.
    #[test]
    fn a_short_key_limit_still_refuses_the_sdk_keys() {
        for (max, ok) in [(13, false), (14, true)] {
            let mut q = Queue::new([0u8; 1024], OverflowPolicy::RejectNewest);
            let mut enc = Encoder::new(EncoderConfig::DEFAULT.max_key_len(max), 1);
            let now = Now::mono(crate::time::Instant::from_millis(0));
            let r = enc.capture(&mut q, now, "e", "d", &EventOptions::new(), |_| Ok(()));
            assert_eq!(r.is_ok(), ok, "{max}: {r:?}");
        }
    }
}
