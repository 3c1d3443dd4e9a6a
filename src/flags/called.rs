//! `$feature_flag_called` de-duplication and flag properties on events, as PostHog's SDKs do
//! them (posthog-python `client.py`: `_capture_feature_flag_called`, `_capture`; posthog-node
//! `client.ts`: `_getFeatureFlagResult`, `_prepareEventMessage`).
//!
//! - [`CalledTracker`]: remembers which (distinct id, flag, value, groups) combinations have
//!   already produced a `$feature_flag_called` event, so each is sent once. Bounded: `N`
//!   64-bit hashes, oldest evicted one at a time.
//! - [`write_flag_properties`]: writes `$feature/<key>` and `$active_feature_flags` onto an
//!   ordinary event.
//! - [`FlagResponse`]: a flag value (or "no value") as a JSON property value, for
//!   `$feature_flag_response` and `$feature/<key>`.
//!
//! # Caller wins over flag properties
//!
//! PostHog's SDKs put the flag properties in first, so a caller property with the same key
//! (`$feature/beta`, `$active_feature_flags`) wins (posthog-python `_capture`, posthog-node
//! `_prepareEventMessage`). A streaming writer cannot take back what it has written, and cannot
//! know the caller's keys before the caller writes them. So the capture path calls
//! [`write_flag_properties`] **first**, inside its properties closure, and the caller's
//! properties follow: on a clash the object then holds the key twice, the caller's value last.
//! Every JSON parser on PostHog's ingestion path keeps the **last** duplicate (`serde_json` maps
//! in the Rust capture service, `JSON.parse` in the Node plugin server, Python's `json`), so the
//! caller's value is the one stored, exactly as with the SDKs. The cost is a few duplicate
//! bytes, only on a clash.
//!
//! ```
//! use posthog_embedded::flags::called::CalledTracker;
//! use posthog_embedded::flags::FlagValue;
//!
//! let mut seen: CalledTracker<[u64; 64]> = CalledTracker::new();
//! let groups = [("company", "acme"), ("team", "core")];
//! let v = FlagValue::variant("blue").unwrap();
//! assert!(seen.first_time("user-1", "checkout", Some(&v), &groups));
//! // Same groups in another order: already sent.
//! let swapped = [("team", "core"), ("company", "acme")];
//! assert!(!seen.first_time("user-1", "checkout", Some(&v), &swapped));
//! // Another value is another event.
//! assert!(seen.first_time("user-1", "checkout", Some(&FlagValue::Bool(false)), &groups));
//! ```

use super::outcome::FlagValue;
use crate::error::PropertyError;
use crate::json::write::{Object, Value, ValueWriter};

// =============================================================================================
// Keys
// =============================================================================================

/// The 64-bit identity of one `$feature_flag_called` combination; see [`called_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CalledKey(u64);

impl CalledKey {
    /// The hash.
    #[must_use]
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// A different starting state for the per-group hashes.
const GROUP_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a over length-prefixed fields (so `("ab","c")` and `("a","bc")` differ), finished
/// with MurmurHash3's 64-bit avalanche so every input bit affects every output bit.
struct Hasher(u64);

impl Hasher {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    fn field(&mut self, b: &[u8]) {
        self.bytes(&(b.len() as u64).to_le_bytes());
        self.bytes(b);
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    fn finish(&self) -> u64 {
        let mut k = self.0;
        k ^= k >> 33;
        k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
        k ^= k >> 33;
        k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        k ^ (k >> 33)
    }
}

/// The dedupe key of a `$feature_flag_called` event: distinct id, flag key, value and groups.
///
/// - The value is `None` (no result), `false`, `true`, or the variant text. A
///   [`FlagValue::Holdout`] counts as its variant text `holdout-<id>`, so a locally evaluated
///   holdout and the same holdout from `/flags` are one key (the SDKs compare `str(response)`).
/// - Groups are order-independent: each `(type, key)` pair is hashed on its own and the pair
///   hashes are **added** (wrapping), a commutative combination of the multiset of pairs, the
///   same information as the SDKs' sorted pair list. No sorting, no allocation, any number of
///   groups.
///
/// The hash is FNV-1a over length-prefixed fields with a MurmurHash3 finaliser: not
/// cryptographic (the inputs are the device's own ids, not an attacker's), but well mixed.
/// Treating it as a uniform 64-bit hash, a new key wrongly matches one of `n` stored keys with
/// probability about `n / 2^64` (`5e-17` for `n = 1000`); over a device's life, any two of `k`
/// distinct keys collide with probability about `k² / 2^65` (`3e-8` for a million keys). A
/// collision costs one suppressed `$feature_flag_called` event, never a wrong flag value.
#[must_use]
pub fn called_key(
    distinct_id: &str,
    flag_key: &str,
    value: Option<&FlagValue>,
    groups: &[(&str, &str)],
) -> CalledKey {
    let mut h = Hasher(FNV_OFFSET);
    h.field(distinct_id.as_bytes());
    h.field(flag_key.as_bytes());
    let mut buf = [0u8; 28];
    match value {
        None => h.bytes(&[0]),
        Some(FlagValue::Bool(false)) => h.bytes(&[1]),
        Some(FlagValue::Bool(true)) => h.bytes(&[2]),
        Some(v) => {
            h.bytes(&[3]);
            h.field(v.payload_key(&mut buf).as_bytes());
        }
    }
    let mut sum = 0u64;
    for (t, k) in groups {
        let mut g = Hasher(GROUP_SEED);
        g.field(t.as_bytes());
        g.field(k.as_bytes());
        sum = sum.wrapping_add(g.finish());
    }
    h.u64(groups.len() as u64);
    h.u64(sum);
    CalledKey(h.finish())
}

// =============================================================================================
// Tracker
// =============================================================================================

/// Which `$feature_flag_called` events were already sent: up to `N` [`CalledKey`]s.
///
/// # Memory
///
/// `8 × N` bytes plus two `usize`s: only the 64-bit hash of each key is kept (see
/// [`called_key`] for the collision probability). Look-ups scan all entries (`O(N)`), which for
/// the few hundred entries a device needs is a few microseconds.
///
/// # Eviction and clearing
///
/// When full, the **oldest inserted** key is evicted to make room, one at a time (as
/// posthog-python's `SizeLimitedDict` evicts its oldest distinct id); the tracker is never
/// emptied because it is full, which would flood PostHog with duplicates. [`clear`](Self::clear)
/// empties it: call it at shutdown, and when the device's identity or flag context changes.
///
/// # When to record
///
/// [`first_time`](Self::first_time) checks and records in one step, before the event is
/// captured (as posthog-node records just before `capture`). If the capture then fails (queue
/// full, event rejected), call [`forget`](Self::forget) so that the next read tries again:
/// that is what posthog-go (records only when `Enqueue` succeeds) and posthog-python's
/// config-version-2 path (`_capture_once` releases the key on failure) do, and it keeps an
/// exposure from being lost to a transient full queue. (posthog-python's main path keeps the
/// key even when the event was not queued.)
///
/// A tracker of capacity 0 records nothing: every read is a first time.
#[derive(Clone, Debug)]
pub struct CalledTracker<S> {
    keys: S,
    /// Physical index of the oldest key.
    head: usize,
    len: usize,
}

impl<const N: usize> Default for CalledTracker<[u64; N]> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> CalledTracker<[u64; N]> {
    /// An empty tracker of `N` keys, owned inline. `const`, so it can live in a `static`.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            keys: [0; N],
            head: 0,
            len: 0,
        }
    }
}

impl<S> CalledTracker<S> {
    /// An empty tracker over `storage` (any `[u64]`: its length is the capacity).
    #[must_use]
    pub const fn with_storage(storage: S) -> Self {
        Self {
            keys: storage,
            head: 0,
            len: 0,
        }
    }

    /// How many keys it holds.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no key.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every key (shutdown, or a change of identity or flag context).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> CalledTracker<S> {
    /// How many keys the tracker holds at most.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.keys.as_ref().len()
    }

    /// Physical slot of logical position `i` (0 = oldest).
    fn slot(&self, i: usize) -> usize {
        let n = self.capacity();
        let p = self.head + i;
        if p >= n {
            p - n
        } else {
            p
        }
    }

    fn position(&self, key: CalledKey) -> Option<usize> {
        (0..self.len).find(|&i| self.keys.as_ref().get(self.slot(i)) == Some(&key.0))
    }

    /// Whether `key` is recorded.
    #[must_use]
    pub fn contains_key(&self, key: CalledKey) -> bool {
        self.position(key).is_some()
    }

    /// Records `key` and returns `true` if it was new (send the event), or returns `false` if
    /// it was already recorded (do not send). When full, the oldest key makes room.
    pub fn first_time_key(&mut self, key: CalledKey) -> bool {
        if self.contains_key(key) {
            return false;
        }
        let n = self.capacity();
        if n == 0 {
            return true;
        }
        if self.len < n {
            let s = self.slot(self.len);
            if let Some(k) = self.keys.as_mut().get_mut(s) {
                *k = key.0;
                self.len += 1;
            }
        } else {
            // Full: overwrite the oldest, which makes the next one the oldest.
            let head = self.head;
            if let Some(k) = self.keys.as_mut().get_mut(head) {
                *k = key.0;
            }
            self.head = self.slot(1);
        }
        true
    }

    /// Whether the `$feature_flag_called` event for this read should be sent, recording it.
    /// See [`called_key`] for what makes two reads the same.
    pub fn first_time(
        &mut self,
        distinct_id: &str,
        flag_key: &str,
        value: Option<&FlagValue>,
        groups: &[(&str, &str)],
    ) -> bool {
        self.first_time_key(called_key(distinct_id, flag_key, value, groups))
    }

    /// Removes `key` (keeping the others in order); returns whether it was recorded.
    pub fn forget_key(&mut self, key: CalledKey) -> bool {
        let Some(at) = self.position(key) else {
            return false;
        };
        for i in at..self.len.saturating_sub(1) {
            let next = self
                .keys
                .as_ref()
                .get(self.slot(i + 1))
                .copied()
                .unwrap_or_default();
            let s = self.slot(i);
            if let Some(k) = self.keys.as_mut().get_mut(s) {
                *k = next;
            }
        }
        self.len -= 1;
        true
    }

    /// Releases a recorded read whose event could not be captured, so the next read sends it.
    /// Returns whether it was recorded.
    pub fn forget(
        &mut self,
        distinct_id: &str,
        flag_key: &str,
        value: Option<&FlagValue>,
        groups: &[(&str, &str)],
    ) -> bool {
        self.forget_key(called_key(distinct_id, flag_key, value, groups))
    }
}

// =============================================================================================
// Flag properties on events
// =============================================================================================

/// A flag's value as a JSON property value: `true`, `false`, the variant string (a holdout as
/// `"holdout-<id>"`), or `null` for "no value". For `$feature_flag_response` and
/// `$feature/<key>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlagResponse(pub Option<FlagValue>);

impl Value for FlagResponse {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        match self.0 {
            None => w.null(),
            Some(FlagValue::Bool(b)) => w.bool(b),
            Some(FlagValue::Variant(v)) => w.str(&v),
            Some(h @ FlagValue::Holdout(_)) => {
                let mut buf = [0u8; 28];
                w.str(h.payload_key(&mut buf))
            }
        }
    }
}

/// Longest `$feature/<key>` property name [`write_flag_properties`] builds (so flag keys up to
/// 247 bytes). The event writer's own key limit (200 bytes by default) applies too.
pub const MAX_FEATURE_KEY_LEN: usize = 256;

const FEATURE_PREFIX: &str = "$feature/";

/// Builds `$feature/<key>` in `buf`.
fn feature_key<'b>(
    key: &str,
    buf: &'b mut [u8; MAX_FEATURE_KEY_LEN],
) -> Result<&'b str, PropertyError> {
    let len = FEATURE_PREFIX.len() + key.len();
    let too_long = PropertyError::KeyTooLong {
        len,
        max: MAX_FEATURE_KEY_LEN,
    };
    let (head, tail) = buf
        .get_mut(..len)
        .ok_or(too_long)?
        .split_at_mut(FEATURE_PREFIX.len());
    head.copy_from_slice(FEATURE_PREFIX.as_bytes());
    tail.copy_from_slice(key.as_bytes());
    core::str::from_utf8(buf.get(..len).unwrap_or_default()).map_err(|_| too_long)
}

/// Writes the flag properties of an ordinary event (a capture given a flag snapshot) into `o`:
///
/// - `"$feature/<key>": value` for every flag, in iteration order (`true`, `false` or the
///   variant);
/// - `"$active_feature_flags": [keys]`: the keys whose value is not `false`, sorted (bytewise)
///   and without duplicates, as posthog-node and posthog-go sort it; left out when empty.
///
/// Call it **before** writing the caller's properties, so that the caller's value wins on a
/// clash (see the [module docs](self)). `$feature_flag_called` events must not get these.
///
/// `flags` is walked several times (it must be `Clone`: an iterator over a slice or over
/// [`RemoteFlags::values`](super::remote::RemoteFlags::values)); sorting without a buffer
/// costs `O(n²)` comparisons for `n` flags.
///
/// # Errors
/// [`PropertyError::KeyTooLong`] when `$feature/<key>` exceeds [`MAX_FEATURE_KEY_LEN`] or the
/// writer's key limit. The object may then hold part of the properties (the capture path
/// discards the whole record).
pub fn write_flag_properties<'k, I>(o: &mut Object<'_, '_>, flags: I) -> Result<(), PropertyError>
where
    I: Iterator<Item = (&'k str, FlagValue)> + Clone,
{
    let mut buf = [0u8; MAX_FEATURE_KEY_LEN];
    for (key, value) in flags.clone() {
        o.prop(feature_key(key, &mut buf)?, FlagResponse(Some(value)))?;
    }
    let active = flags.filter(|(_, v)| v.is_enabled()).map(|(k, _)| k);
    if active.clone().next().is_none() {
        return Ok(());
    }
    o.array("$active_feature_flags", |a| {
        // Selection sort over the iterator: the smallest key above the previous one each time.
        let mut prev: Option<&str> = None;
        while let Some(k) = active.clone().filter(|k| prev.is_none_or(|p| *k > p)).min() {
            a.push(k)?;
            prev = Some(k);
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::write::Sink;
    use std::string::String;

    const V: FlagValue = match FlagValue::variant("blue") {
        Ok(v) => v,
        Err(_) => panic!("short"),
    };

    #[test]
    fn dedupes_by_id_flag_value_and_groups() {
        let mut t: CalledTracker<[u64; 16]> = CalledTracker::new();
        assert!(t.first_time("u", "f", Some(&FlagValue::Bool(true)), &[]));
        assert!(!t.first_time("u", "f", Some(&FlagValue::Bool(true)), &[]));
        // Value changes: a new event.
        assert!(t.first_time("u", "f", Some(&FlagValue::Bool(false)), &[]));
        assert!(t.first_time("u", "f", None, &[]));
        assert!(!t.first_time("u", "f", None, &[]));
        assert!(t.first_time("u", "f", Some(&V), &[]));
        // Another distinct id or flag.
        assert!(t.first_time("v", "f", Some(&V), &[]));
        assert!(t.first_time("u", "g", Some(&V), &[]));
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn groups_are_order_independent_but_content_sensitive() {
        let mut t: CalledTracker<[u64; 16]> = CalledTracker::new();
        let a = [("company", "company-123"), ("team", "team-1")];
        let b = [("team", "team-1"), ("company", "company-123")];
        assert!(t.first_time("user-123", "company-beta", Some(&V), &a));
        assert!(!t.first_time("user-123", "company-beta", Some(&V), &b));
        assert!(t.first_time(
            "user-123",
            "company-beta",
            Some(&V),
            &[("company", "company-456"), ("team", "team-1")]
        ));
        // No groups differs from any groups; a pair's halves are not interchangeable.
        assert!(t.first_time("user-123", "company-beta", Some(&V), &[]));
        assert!(t.first_time(
            "user-123",
            "company-beta",
            Some(&V),
            &[("company-123", "company"), ("team", "team-1")]
        ));
        // Repeating a pair is not the same as giving it once.
        let once = called_key("u", "f", None, &[("a", "b")]);
        let twice = called_key("u", "f", None, &[("a", "b"), ("a", "b")]);
        assert_ne!(once, twice);
    }

    #[test]
    fn fields_do_not_run_together() {
        assert_ne!(
            called_key("ab", "c", None, &[]),
            called_key("a", "bc", None, &[])
        );
        assert_ne!(
            called_key("u", "f", None, &[("ab", "c")]),
            called_key("u", "f", None, &[("a", "bc")])
        );
        // A variant named "true" is not the boolean.
        assert_ne!(
            called_key("u", "f", Some(&FlagValue::variant("true").unwrap()), &[]),
            called_key("u", "f", Some(&FlagValue::Bool(true)), &[])
        );
    }

    #[test]
    fn holdout_equals_its_variant_text() {
        assert_eq!(
            called_key("u", "f", Some(&FlagValue::Holdout(7)), &[]),
            called_key(
                "u",
                "f",
                Some(&FlagValue::variant("holdout-7").unwrap()),
                &[]
            )
        );
    }

    #[test]
    fn evicts_oldest_one_at_a_time() {
        let mut t: CalledTracker<[u64; 3]> = CalledTracker::new();
        for f in ["a", "b", "c"] {
            assert!(t.first_time("u", f, None, &[]));
        }
        assert_eq!(t.len(), 3);
        // Full: "d" evicts "a" only.
        assert!(t.first_time("u", "d", None, &[]));
        assert_eq!(t.len(), 3);
        assert!(!t.first_time("u", "b", None, &[]));
        assert!(!t.first_time("u", "c", None, &[]));
        assert!(!t.first_time("u", "d", None, &[]));
        // "a" is new again, and evicts "b" (the oldest now).
        assert!(t.first_time("u", "a", None, &[]));
        assert!(t.first_time("u", "b", None, &[]));
        // Wraps around many times without losing order.
        for i in 0..100u32 {
            let f = std::format!("k{i}");
            assert!(t.first_time("u", &f, None, &[]));
            assert!(!t.first_time("u", &f, None, &[]));
            assert_eq!(t.len(), 3);
        }
        assert!(!t.first_time("u", "k99", None, &[]));
        assert!(!t.first_time("u", "k97", None, &[]));
        assert!(t.first_time("u", "k96", None, &[]));
    }

    #[test]
    fn forget_releases_one_key_and_keeps_order() {
        let mut t: CalledTracker<[u64; 4]> = CalledTracker::new();
        for f in ["a", "b", "c", "d", "e"] {
            t.first_time("u", f, None, &[]);
        }
        // Holds b c d e (head wrapped). Forget c.
        assert!(t.forget("u", "c", None, &[]));
        assert!(!t.forget("u", "c", None, &[]));
        assert_eq!(t.len(), 3);
        assert!(t.first_time("u", "c", None, &[])); // b d e c
        assert!(t.first_time("u", "x", None, &[])); // evicts b
        assert!(t.first_time("u", "b", None, &[])); // evicts d
        assert!(!t.first_time("u", "e", None, &[]));
        assert!(!t.first_time("u", "c", None, &[]));
        assert!(t.first_time("u", "d", None, &[]));
        assert!(!t.forget("u", "zzz", None, &[]));
    }

    #[test]
    fn clear_empties() {
        let mut t: CalledTracker<[u64; 4]> = CalledTracker::new();
        t.first_time("u", "a", None, &[]);
        assert!(!t.is_empty());
        t.clear();
        assert!(t.is_empty());
        assert!(t.first_time("u", "a", None, &[]));
        assert_eq!(t.capacity(), 4);
    }

    #[test]
    fn zero_capacity_never_dedupes() {
        let mut t: CalledTracker<[u64; 0]> = CalledTracker::new();
        assert!(t.first_time("u", "a", None, &[]));
        assert!(t.first_time("u", "a", None, &[]));
        assert!(t.is_empty());
        assert!(!t.forget("u", "a", None, &[]));
    }

    #[test]
    fn memory_is_eight_bytes_per_entry() {
        assert_eq!(
            size_of::<CalledTracker<[u64; 100]>>(),
            800 + 2 * size_of::<usize>()
        );
    }

    fn render(
        f: impl FnOnce(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    ) -> Result<String, PropertyError> {
        let mut buf = std::vec![0u8; 4096];
        let mut sink = Sink::new(&mut buf, 200);
        let mut o = Object::open(&mut sink, &[]);
        f(&mut o)?;
        o.close();
        Ok(String::from_utf8(sink.written().unwrap().to_vec()).unwrap())
    }

    #[test]
    fn flag_properties_sorted_and_caller_last() {
        let flags = [
            ("zeta", FlagValue::Bool(true)),
            ("off", FlagValue::Bool(false)),
            ("alpha", FlagValue::variant("blue").unwrap()),
            ("held", FlagValue::Holdout(3)),
            ("alpha", FlagValue::variant("blue").unwrap()),
        ];
        let s = render(|o| {
            write_flag_properties(o, flags.iter().copied())?;
            o.prop("$feature/zeta", "caller")?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            s,
            r#"{"$feature/zeta":true,"$feature/off":false,"$feature/alpha":"blue","$feature/held":"holdout-3","$feature/alpha":"blue","$active_feature_flags":["alpha","held","zeta"],"$feature/zeta":"caller"}"#
        );
        // serde_json keeps the last duplicate: the caller wins.
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["$feature/zeta"], "caller");
    }

    #[test]
    fn active_flags_omitted_when_none_enabled() {
        let s = render(|o| write_flag_properties(o, [("a", FlagValue::Bool(false))].into_iter()))
            .unwrap();
        assert_eq!(s, r#"{"$feature/a":false}"#);
        let s = render(|o| write_flag_properties(o, core::iter::empty())).unwrap();
        assert_eq!(s, "{}");
    }

    #[test]
    fn long_flag_keys_are_rejected() {
        let long: String = "k".repeat(MAX_FEATURE_KEY_LEN);
        let err =
            render(|o| write_flag_properties(o, [(&*long, FlagValue::Bool(true))].into_iter()))
                .unwrap_err();
        assert_eq!(
            err,
            PropertyError::KeyTooLong {
                len: MAX_FEATURE_KEY_LEN + 9,
                max: MAX_FEATURE_KEY_LEN
            }
        );
        // Within the builder's limit but over the writer's 200.
        let mid: String = "k".repeat(195);
        let err =
            render(|o| write_flag_properties(o, [(&*mid, FlagValue::Bool(true))].into_iter()))
                .unwrap_err();
        assert_eq!(err, PropertyError::KeyTooLong { len: 204, max: 200 });
    }

    #[test]
    fn flag_response_values() {
        let s = render(|o| {
            o.prop("n", FlagResponse(None))?
                .prop("t", FlagResponse(Some(FlagValue::Bool(true))))?
                .prop("v", FlagResponse(Some(FlagValue::variant("a\"b").unwrap())))?
                .prop("h", FlagResponse(Some(FlagValue::Holdout(-2))))?;
            Ok(())
        })
        .unwrap();
        assert_eq!(s, r#"{"n":null,"t":true,"v":"a\"b","h":"holdout--2"}"#);
    }
}
