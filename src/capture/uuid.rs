//! Event UUIDs: version 7 (RFC 9562), unique within a boot by construction and across boots by
//! a per-boot identifier drawn from the caller's seed (see [`UuidGen`]).

use core::fmt;

use crate::error::ParseUuidError;
use crate::rng::Rng;

/// A UUID, rendered lower-case as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Uuid([u8; 16]);

/// Length of the text form.
pub const UUID_LEN: usize = 36;

impl Uuid {
    /// The UUID with these bytes.
    #[must_use]
    pub const fn from_bytes(b: [u8; 16]) -> Self {
        Self(b)
    }

    /// The 16 bytes, big-endian as on the wire.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A version 7 UUID for time `unix_ms` (48 bits are kept) and 74 random bits from `rng`.
    pub fn new_v7(unix_ms: u64, rng: &mut Rng) -> Self {
        let r1 = rng.next_u64();
        let r2 = rng.next_u64();
        let mut b = [0u8; 16];
        let ts = (unix_ms & 0xFFFF_FFFF_FFFF).to_be_bytes();
        let (t, rest) = b.split_at_mut(6);
        t.copy_from_slice(ts.get(2..).unwrap_or_default());
        let (ra, rb) = rest.split_at_mut(2);
        ra.copy_from_slice(&(0x7000 | (r1 as u16 & 0x0FFF)).to_be_bytes());
        rb.copy_from_slice(&((r2 & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000).to_be_bytes());
        Self(b)
    }

    /// The version field (7 for UUIDs made here).
    #[must_use]
    pub const fn version(&self) -> u8 {
        self.0[6] >> 4
    }

    /// Parses the hyphenated text form (either case).
    ///
    /// # Errors
    /// [`ParseUuidError`] if `s` is not 36 characters of `8-4-4-4-12` hex digits.
    pub fn parse(s: &str) -> Result<Self, ParseUuidError> {
        let s = s.as_bytes();
        if s.len() != UUID_LEN {
            return Err(ParseUuidError);
        }
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in s.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(ParseUuidError);
                }
                continue;
            }
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => return Err(ParseUuidError),
            };
            if let Some(byte) = out.get_mut(nibbles / 2) {
                *byte = (*byte << 4) | v;
            }
            nibbles += 1;
        }
        Ok(Self(out))
    }

    /// Writes the text form into `buf` and returns it.
    pub fn encode<'b>(&self, buf: &'b mut [u8; UUID_LEN]) -> &'b str {
        self.encode_ascii(buf);
        core::str::from_utf8(buf).unwrap_or_default()
    }

    /// Writes the canonical text form into `buf` as ASCII bytes (what [`encode`](Self::encode)
    /// returns as `&str`).
    pub(crate) fn encode_ascii(&self, buf: &mut [u8; UUID_LEN]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Where each byte's two digits go: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let hex = |n: u8| HEX.get(usize::from(n & 0xF)).copied().unwrap_or(b'0');
        for (&at, &byte) in AT.iter().zip(&self.0) {
            if let Some([hi, lo]) = buf.get_mut(at..at + 2) {
                *hi = hex(byte >> 4);
                *lo = hex(byte);
            }
        }
        for at in [8, 13, 18, 23] {
            if let Some(c) = buf.get_mut(at) {
                *c = b'-';
            }
        }
    }
}

/// The uuid generator of an [`Encoder`](super::Encoder).
///
/// PostHog de-duplicates events by uuid, so an event keeps the uuid it got at capture for every
/// retry, and two events must never share one: a repeated uuid is an event PostHog silently
/// throws away. A device without a wall clock restarts its monotonic clock at 0 on every boot,
/// so time alone cannot tell boots apart. [`UuidGen`] lays the 128 bits out as:
///
/// | bits | field | content |
/// |---:|---|---|
/// | 48 | `unix_ts_ms` | the wall clock in ms when known, else the monotonic clock; never goes back within a boot |
/// | 4 | `ver` | 7 |
/// | 12 | `rand_a` | a counter within the millisecond, starting at a random value below 2048 |
/// | 2 | `var` | `10` |
/// | 62 | `rand_b` | the **boot id**: 62 bits mixed from the seed, the same for every event of a boot |
///
/// - **Within a boot** the pair (time, counter) strictly increases from one uuid to the next (the
///   counter overflowing moves the time field on by 1 ms), so two uuids of one boot never match,
///   whatever the clocks do (short of the 48-bit millisecond field wrapping, in the year 10889).
/// - **Across boots and devices** two uuids can match only if their boots drew the same 62-bit
///   boot id *and* an event of each landed on the same millisecond with the same counter. For a
///   fleet of a million devices rebooting daily for ten years (3.7·10⁹ boots), the chance that a
///   given device ever repeats a boot id is about 3650² / 2⁶³ ≈ 1.4·10⁻¹²; over the whole fleet
///   about one pair of boots (on different devices, so different distinct ids) shares a boot id
///   in ten years, and then each of their events still has 11 random counter bits to differ by.
///   62 bits is what the layout leaves after the time, the version, the variant and a counter
///   large enough for 2048 events in one millisecond.
///
/// This holds only if seeds differ between boots: seed from a hardware RNG, or hash a unique
/// chip id with a boot counter kept in flash (see [`crate::client::Config::new`]). A generator
/// is deliberately not `Clone`: a copy would repeat every uuid of the original.
#[derive(Debug)]
pub struct UuidGen {
    /// `10` variant bits and the 62-bit boot id (`rand_b`).
    boot: u64,
    /// The time field of the last uuid.
    last_ms: u64,
    /// The counter of the last uuid (`rand_a`); `None` before the first.
    counter: Option<u16>,
    rng: Rng,
}

/// SplitMix64's finaliser: a bijection of `u64`, so distinct seeds give distinct outputs.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Largest counter start: half the 12-bit range, so a millisecond always has room for at least
/// 2048 uuids before the time field moves on.
const COUNTER_START_SPAN: u64 = 1 << 11;
const COUNTER_MAX: u16 = 0x0FFF;
const TIME_MASK: u64 = 0xFFFF_FFFF_FFFF;

impl UuidGen {
    /// A generator for the boot seeded with `seed`.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self {
            boot: (mix(seed ^ 0x7b00_7b00_1d1d_5eed) >> 2) | 0x8000_0000_0000_0000,
            last_ms: 0,
            counter: None,
            rng: Rng::new(mix(seed) ^ 0x243f_6a88_85a3_08d3),
        }
    }

    /// The next uuid, for time `ms` (the wall clock if known, else the monotonic clock).
    pub fn next(&mut self, ms: u64) -> Uuid {
        let ms = ms & TIME_MASK;
        let (ms, counter) = match self.counter {
            Some(c) if ms <= self.last_ms => {
                if c < COUNTER_MAX {
                    (self.last_ms, c + 1)
                } else {
                    (
                        self.last_ms.saturating_add(1) & TIME_MASK,
                        self.fresh_counter(),
                    )
                }
            }
            _ => (ms, self.fresh_counter()),
        };
        self.last_ms = ms;
        self.counter = Some(counter);
        let mut b = [0u8; 16];
        let (t, rest) = b.split_at_mut(6);
        t.copy_from_slice(ms.to_be_bytes().get(2..).unwrap_or_default());
        let (ra, rb) = rest.split_at_mut(2);
        ra.copy_from_slice(&(0x7000 | counter).to_be_bytes());
        rb.copy_from_slice(&self.boot.to_be_bytes());
        Uuid(b)
    }

    fn fresh_counter(&mut self) -> u16 {
        self.rng.below(COUNTER_START_SPAN) as u16
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; UUID_LEN];
        f.write_str(self.encode(&mut buf))
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

impl core::str::FromStr for Uuid {
    type Err = ParseUuidError;
    fn from_str(s: &str) -> Result<Self, ParseUuidError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn text_form_is_canonical_for_every_nibble() {
        let bytes: [u8; 16] = core::array::from_fn(|i| (i as u8).wrapping_mul(0x3B) ^ 0xA5);
        let u = Uuid::from_bytes(bytes);
        let hex: std::string::String = bytes.iter().map(|b| std::format!("{b:02x}")).collect();
        let want = std::format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        );
        assert_eq!(u.to_string(), want);
        assert_eq!(Uuid::parse(&want), Ok(u));
    }

    #[test]
    fn v7_layout() {
        let mut rng = Rng::new(1);
        let u = Uuid::new_v7(1_767_323_045_123, &mut rng);
        let s = u.to_string();
        assert_eq!(u.version(), 7);
        // Variant bits 10xx.
        assert_eq!(u.as_bytes()[8] & 0xC0, 0x80);
        // The first 48 bits are the time.
        let hex = std::format!("{:012x}", 1_767_323_045_123u64);
        assert_eq!(s[..8], hex[..8]);
        assert_eq!(s[9..13], hex[8..]);
        assert_eq!(s.as_bytes()[14], b'7');
        assert_eq!(Uuid::parse(&s), Ok(u));
        assert_ne!(Uuid::new_v7(1_767_323_045_123, &mut rng), u);
    }

    #[test]
    fn generator_layout_and_monotone_within_a_boot() {
        let mut g = UuidGen::new(42);
        let a = g.next(1_000);
        let b = g.next(1_000);
        let c = g.next(999); // the clock went back: the time field does not
        let d = g.next(1_001);
        for u in [a, b, c, d] {
            assert_eq!(u.version(), 7);
            assert_eq!(u.as_bytes()[8] & 0xC0, 0x80);
            // Same boot id in rand_b.
            assert_eq!(u.as_bytes()[8..], a.as_bytes()[8..]);
        }
        assert!(a < b && b < c && c < d, "{a} {b} {c} {d}");
        assert_eq!(&c.as_bytes()[..6], &a.as_bytes()[..6]);
        // Another seed, another boot id.
        let e = UuidGen::new(43).next(1_000);
        assert_ne!(e.as_bytes()[8..], a.as_bytes()[8..]);
    }

    #[test]
    fn counter_overflow_moves_the_time_on() {
        let mut g = UuidGen::new(7);
        let mut prev = g.next(5);
        for _ in 0..10_000 {
            let u = g.next(5);
            assert!(u > prev, "{prev} then {u}");
            prev = u;
        }
        // 10,001 uuids in "one" millisecond need at least 3 distinct time values.
        let ms = u64::from_be_bytes([
            0, 0, prev.0[0], prev.0[1], prev.0[2], prev.0[3], prev.0[4], prev.0[5],
        ]);
        assert!(ms >= 7, "{ms}");
    }

    #[test]
    fn parse_accepts_either_case_and_rejects_junk() {
        let u = Uuid::parse("00000000-0000-4000-8000-00000000000A").unwrap();
        assert_eq!(u.to_string(), "00000000-0000-4000-8000-00000000000a");
        for bad in [
            "",
            "00000000-0000-4000-8000-00000000000",
            "00000000-0000-4000-8000-00000000000g",
            "00000000x0000-4000-8000-000000000000",
            "000000000-000-4000-8000-000000000000",
            "00000000-0000-4000-8000-0000000000é",
        ] {
            assert_eq!(Uuid::parse(bad), Err(ParseUuidError), "{bad}");
        }
    }
}
