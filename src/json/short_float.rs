//! The shortest round-trip text of the common `f32` property values (`21.5`, `3.0`,
//! `1013.25`) without ryu's general algorithm, which costs about 700 instructions per float
//! on a Cortex-M4 (its 128-bit multiplications run in software).
//!
//! The rule, for `1 <= |v| < 10^7`: for `d = 0, 1, 2`, look at the decimals with `d`
//! fractional digits next to `v` (`floor(v * 10^d)` and the one above). The first `d` at which
//! one of them lies strictly inside `v`'s rounding interval (the reals that parse back to `v`)
//! gives the shortest text, and the closer of the two inside is ryu's choice. Every quantity
//! is an exact 32-bit integer in units of `v`'s last place: `v` has 24 significant bits and
//! `10^d` at most 7. Values that need more decimals go to ryu. Where ryu's tie-breaking or bound rules could matter (a
//! decimal exactly on a bound, or exactly halfway between the two), and outside the range
//! (where ryu may switch to exponent notation), this returns `None` and the caller uses ryu.
//! Tests compare it with ryu on millions of values.

/// Room for the longest text this writes: `-9999999.99`.
pub(crate) const SHORT_F32_MAX: usize = 16;

/// `v` exactly as `ryu::Buffer::format_finite` writes it, or `None` to ask ryu.
pub(crate) fn short_f32(v: f32, buf: &mut [u8; SHORT_F32_MAX]) -> Option<&[u8]> {
    let a = v.abs();
    if !(1.0..1.0e7).contains(&a) {
        return None;
    }
    // 32-bit integers only (a Cortex-M4 has no double-precision unit and no 64-bit divide).
    // `a` is normal here: a = m * 2^-s with the implicit bit in m and 0 <= s <= 23, so in
    // units of 2^-s (its last place) it is the integer m. Half the distance to the next float
    // up is half a unit; to the next one down too, or a quarter just above a power of two,
    // where the floats below are twice as dense. Comparisons are made at 4x to stay integral.
    let bits = a.to_bits();
    let s = 127 + 23 - ((bits >> 23) & 0xff);
    let m = bits & 0x007f_ffff | 0x0080_0000;
    let down4 = if bits & 0x007f_ffff == 0 { 1 } else { 2 };
    let one = 1u32 << s;
    let mut pow10 = 1u32;
    for d in 0..=MAX_DECIMALS {
        // v * 10^d in units: below 2^24 * 100 < 2^31.
        let y = m * pow10;
        let (t, frac) = (y >> s, y & (one - 1));
        let above = one - frac;
        // frac < half-down-width * 10^d, above < half-up-width * 10^d, all times 4.
        let (lo4, hi4) = (4 * frac, 4 * above);
        let (down, up) = (down4 * pow10, 2 * pow10);
        if lo4 == down || hi4 == up {
            // A decimal exactly on a bound: ryu's rule for bounds decides. (Within this range
            // and these decimals it cannot happen, nor can the tie below: both are kept so
            // that the function stays exact if either ever grows.)
            return None;
        }
        let (low_in, high_in) = (lo4 < down, hi4 < up);
        if low_in && high_in && frac == above {
            // Exactly halfway between two candidates: ryu's tie rule decides.
            return None;
        }
        if low_in || high_in {
            let n = if low_in && (!high_in || frac < above) {
                t
            } else {
                t + 1
            };
            return Some(write(v.is_sign_negative(), n, d, pow10, buf));
        }
        pow10 *= 10;
    }
    None
}

/// The most decimals the shortcut writes (more need 64-bit arithmetic: ryu's job).
const MAX_DECIMALS: u32 = 2;

/// `-`?, the integer part of `n / 10^d`, `.`, then its `d` decimals (or `0` when `d` is 0).
fn write(negative: bool, n: u32, d: u32, pow10: u32, buf: &mut [u8; SHORT_F32_MAX]) -> &[u8] {
    let (mut int, mut frac) = (n / pow10, n % pow10);
    let mut i = buf.len();
    let mut put = |b: u8, i: &mut usize| {
        *i = i.saturating_sub(1);
        if let Some(slot) = buf.get_mut(*i) {
            *slot = b;
        }
    };
    if d == 0 {
        put(b'0', &mut i);
    }
    for _ in 0..d {
        put(b'0' + (frac % 10) as u8, &mut i);
        frac /= 10;
    }
    put(b'.', &mut i);
    loop {
        put(b'0' + (int % 10) as u8, &mut i);
        int /= 10;
        if int == 0 {
            break;
        }
    }
    if negative {
        put(b'-', &mut i);
    }
    buf.get(i..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::ToOwned;
    use std::string::String;

    fn ryu(v: f32) -> String {
        ryu::Buffer::new().format_finite(v).to_owned()
    }

    fn check(v: f32) -> bool {
        let mut buf = [0; SHORT_F32_MAX];
        match short_f32(v, &mut buf) {
            Some(s) => {
                assert_eq!(core::str::from_utf8(s).unwrap(), ryu(v), "{v:e}");
                true
            }
            None => false,
        }
    }

    #[test]
    fn typical_readings_take_the_short_path() {
        for (v, text) in [
            (21.5f32, "21.5"),
            (3.0, "3.0"),
            (-3.0, "-3.0"),
            (1013.25, "1013.25"),
            (0.1 + 1.0, "1.1"),
            (3.3, "3.3"),
            (99.99, "99.99"),
            (-40.25, "-40.25"),
            (9_999_999.0, "9999999.0"),
        ] {
            let mut buf = [0; SHORT_F32_MAX];
            let got = short_f32(v, &mut buf).map(|s| core::str::from_utf8(s).unwrap().to_owned());
            assert_eq!(got.as_deref(), Some(text), "{v}");
            assert_eq!(ryu(v), text);
        }
        // The range's lower edge is in, and so are two decimals, but not three.
        let mut buf = [0; SHORT_F32_MAX];
        assert_eq!(short_f32(1.0, &mut buf), Some(&b"1.0"[..]));
        // Outside the range, or more than MAX_DECIMALS decimals: ryu decides.
        for v in [0.5f32, 0.99, 0.0, 1.0e7, 1.0e-3, f32::MAX, -40.125, 1.125] {
            let mut buf = [0; SHORT_F32_MAX];
            assert!(short_f32(v, &mut buf).is_none(), "{v}");
        }
    }

    #[test]
    fn agrees_with_ryu_on_every_decimal_reading() {
        // Every value with up to four decimals a sensor is likely to report, both signs; those
        // with at most two (most of them) take the shortcut.
        let mut short = 0u32;
        for k in 10_000u32..2_000_000 {
            for v in [
                k as f32 / 10_000.0,
                k as f32 / 100.0,
                k as f32 / 10.0,
                k as f32,
            ] {
                short += u32::from(check(v));
                check(-v);
            }
        }
        assert!(short > 5_900_000, "{short}");
    }

    #[test]
    fn agrees_with_ryu_across_the_range() {
        // A stride through every f32 in [1, 10^7) (a prime stride reaches every residue of
        // the significand), and the neighbours of every power of two, where the interval is
        // lopsided.
        let (lo, hi) = (1.0f32.to_bits(), 1.0e7f32.to_bits());
        let mut bits = lo;
        while bits < hi {
            check(f32::from_bits(bits));
            bits += 97;
        }
        for e in 0..24 {
            let p = (1u32 << e) as f32;
            for b in p.to_bits().saturating_sub(4)..p.to_bits() + 4 {
                check(f32::from_bits(b));
            }
        }
    }
}
