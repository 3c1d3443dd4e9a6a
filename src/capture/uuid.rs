//! Event UUIDs: version 7 (RFC 9562) from a millisecond time and the caller-seeded [`Rng`].
//!
//! PostHog de-duplicates events by uuid, so an event keeps the uuid it got at capture for every
//! retry. UUIDv7 puts the time first, which keeps ids roughly sortable; the other 74 bits are
//! random. On a device without a wall clock the time field holds the monotonic clock instead
//! (uniqueness then rests on the 74 random bits, which is plenty for one device).

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
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut j = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                if let Some(c) = buf.get_mut(j) {
                    *c = b'-';
                }
                j += 1;
            }
            for nib in [byte >> 4, byte & 0xF] {
                if let (Some(c), Some(h)) = (buf.get_mut(j), HEX.get(usize::from(nib))) {
                    *c = *h;
                }
                j += 1;
            }
        }
        core::str::from_utf8(buf).unwrap_or_default()
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
