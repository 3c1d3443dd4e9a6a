//! Decimal text to the nearest `f64`, correctly rounded (ties to even), without the 10 KB of
//! power-of-five tables that `core`'s parser carries.
//!
//! Two paths, both exact:
//! - **Fast** (almost every number a device or a flag definition holds): at most 19
//!   significant digits forming an integer `w ≤ 2^53`, times or divided by `10^e` with
//!   `e ≤ 22`. Both `w` and `10^e` are exact doubles, so one IEEE multiplication or division
//!   rounds the exact product once: the correct result (Clinger's fast path).
//! - **Slow** (more digits, larger exponents): the digits are kept as a decimal string of up to
//!   [`MAX_DIGITS`] digits and scaled by powers of two, exactly, until the binary exponent and
//!   53 bits of mantissa can be read off ("simple decimal conversion"). Digits past
//!   [`MAX_DIGITS`] only matter to break a tie, and a "truncated" flag keeps that information.
//!   Bounded work: at most a few hundred shifts over at most [`MAX_DIGITS`] digits.

/// Significant decimal digits the slow path keeps. A double's exact decimal expansion has at
/// most 767 significant digits, so a tie is always visible within them.
const MAX_DIGITS: usize = 800;

/// Bits of a double's mantissa, without the hidden bit.
const MANTISSA_BITS: u32 = 52;
/// Exponent bias of a double (the exponent of 1.0 is `BIAS + 1` in the scheme below).
const BIAS: i32 = -1023;

/// The longest shift applied at once: `(digit << MAX_SHIFT) + carry` must fit a `u64`.
const MAX_SHIFT: u32 = 60;

/// Exact powers of ten as doubles (10^22 is the last one a double holds exactly).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The text of a number: `[+-]? digits* (. digits*)? ([eE] [+-]? digits+)?`, with at least one
/// digit before the exponent. Returns the nearest double (`±inf` beyond its range, `±0.0` below
/// it), or `None` when `s` does not have that form.
#[must_use]
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    let n = Parsed::new(s.as_bytes())?;
    let magnitude = match n.fast() {
        Some(v) => v,
        None => Decimal::new(s.as_bytes(), &n).into_f64(),
    };
    Some(if n.negative { -magnitude } else { magnitude })
}

/// A first look at the text: its sign, where its parts are, and the first 19 significant
/// digits as an integer.
struct Parsed {
    negative: bool,
    /// The first 19 significant digits, and whether any nonzero digit followed them.
    w: u64,
    truncated: bool,
    /// The value is `w · 10^exp10` (before truncation).
    exp10: i64,
    /// The explicit exponent, saturated (well beyond where the result is 0 or infinite).
    exponent: i64,
    /// Byte range of the digits and the point: `[digits_from, digits_to)`.
    digits_from: usize,
    digits_to: usize,
}

impl Parsed {
    fn new(b: &[u8]) -> Option<Self> {
        let mut i = 0;
        let negative = match b.first() {
            Some(b'-') => {
                i = 1;
                true
            }
            Some(b'+') => {
                i = 1;
                false
            }
            _ => false,
        };
        let digits_from = i;
        let (mut w, mut w_digits, mut truncated) = (0u64, 0u32, false);
        // Digits seen after the point, and digits dropped from `w` before it.
        let (mut exp10, mut any_digit, mut seen_point) = (0i64, false, false);
        while let Some(&c) = b.get(i) {
            if c.is_ascii_digit() {
                any_digit = true;
                let d = u64::from(c - b'0');
                if w_digits < 19 {
                    // Leading zeros are not significant.
                    if w != 0 || d != 0 {
                        w = w * 10 + d;
                        w_digits += 1;
                    }
                    if seen_point {
                        exp10 -= 1;
                    }
                } else {
                    truncated |= d != 0;
                    if !seen_point {
                        exp10 += 1;
                    }
                }
            } else if c == b'.' && !seen_point {
                seen_point = true;
            } else {
                break;
            }
            i += 1;
        }
        if !any_digit {
            return None;
        }
        let digits_to = i;
        let mut exponent = 0i64;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let negative_exp = match b.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let from = i;
            while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
                // Saturates far beyond the range of doubles (and of any digit count).
                if exponent < 1 << 40 {
                    exponent = exponent * 10 + i64::from(c - b'0');
                }
                i += 1;
            }
            if i == from {
                return None;
            }
            if negative_exp {
                exponent = -exponent;
            }
        }
        if i != b.len() {
            return None;
        }
        Some(Self {
            negative,
            w,
            truncated,
            exp10: exp10 + exponent,
            exponent,
            digits_from,
            digits_to,
        })
    }

    /// The exact result when one rounding gives it (Clinger's fast path), else `None`.
    fn fast(&self) -> Option<f64> {
        const MAX_EXACT: u64 = 1 << 53;
        if self.w == 0 {
            return (!self.truncated).then_some(0.0);
        }
        if self.truncated || self.w > MAX_EXACT {
            return None;
        }
        let (w, e) = (self.w, self.exp10);
        if (0..=22).contains(&e) {
            return Some(w as f64 * pow10(e));
        }
        if (-22..0).contains(&e) {
            return Some(w as f64 / pow10(-e));
        }
        // `w · 10^(e - 22)` may still be an exact integer below 2^53.
        if (23..=22 + 15).contains(&e) {
            let shifted = w.checked_mul(10u64.checked_pow(u32::try_from(e - 22).ok()?)?)?;
            if shifted <= MAX_EXACT {
                return Some(shifted as f64 * POW10[22]);
            }
        }
        None
    }
}

/// `10^e` for `0 ≤ e ≤ 22`.
fn pow10(e: i64) -> f64 {
    usize::try_from(e)
        .ok()
        .and_then(|i| POW10.get(i))
        .copied()
        .unwrap_or(f64::INFINITY)
}

/// A nonnegative decimal `0.d₀d₁d₂… · 10^point`, digits as values 0–9, no leading or
/// trailing zeros.
struct Decimal {
    digits: [u8; MAX_DIGITS],
    len: usize,
    point: i64,
    /// Nonzero digits were dropped past [`MAX_DIGITS`].
    truncated: bool,
}

impl Decimal {
    fn new(b: &[u8], n: &Parsed) -> Self {
        let mut d = Self {
            digits: [0; MAX_DIGITS],
            len: 0,
            point: 0,
            truncated: false,
        };
        let mut seen_point = false;
        for &c in b.get(n.digits_from..n.digits_to).unwrap_or_default() {
            if c == b'.' {
                seen_point = true;
                continue;
            }
            let digit = c - b'0';
            if d.len == 0 && digit == 0 {
                // A leading zero: moves the point when after it.
                if seen_point {
                    d.point -= 1;
                }
                continue;
            }
            if !seen_point {
                d.point += 1;
            }
            match d.digits.get_mut(d.len) {
                Some(slot) => {
                    *slot = digit;
                    d.len += 1;
                }
                None => d.truncated |= digit != 0,
            }
        }
        d.point = d.point.saturating_add(n.exponent);
        d.trim();
        d
    }

    fn trim(&mut self) {
        while self.len > 0 && self.digits.get(self.len - 1) == Some(&0) {
            self.len -= 1;
        }
        if self.len == 0 {
            self.point = 0;
        }
    }

    fn digit(&self, i: usize) -> u8 {
        if i < self.len {
            self.digits.get(i).copied().unwrap_or(0)
        } else {
            0
        }
    }

    /// The nearest double, by scaling with powers of two until `0.5 ≤ value < 1`.
    fn into_f64(mut self) -> f64 {
        if self.len == 0 {
            return 0.0;
        }
        // Far outside the range of doubles (the largest is about 1.8e308, the smallest
        // about 4.9e-324).
        if self.point > 310 {
            return f64::INFINITY;
        }
        if self.point < -330 {
            return 0.0;
        }
        let mut exp: i32 = 0;
        // Scale down to below 1.
        while self.point > 0 {
            let n = shift_for(self.point);
            self.shift_right(n);
            exp += n as i32;
        }
        // Scale up to at least 0.5 (shifting left never loses the last digit, but an empty
        // decimal would never get there).
        while self.len > 0 && (self.point < 0 || (self.point == 0 && self.digit(0) < 5)) {
            let n = shift_for(-self.point);
            self.shift_left(n);
            exp -= n as i32;
        }
        // Now 0.5 ≤ value < 1: the value is `1.xxx · 2^(exp - 1)`.
        exp -= 1;
        // Below the smallest normal exponent: a subnormal, with fewer bits.
        if exp < BIAS + 1 {
            let n = (BIAS + 1 - exp) as u32;
            let mut left = n;
            while left > 0 {
                let step = left.min(MAX_SHIFT);
                self.shift_right(step);
                left -= step;
            }
            exp += n as i32;
        }
        if exp - BIAS >= 0x7ff {
            return f64::INFINITY;
        }
        // 53 bits: the hidden one and the mantissa.
        self.shift_left(MANTISSA_BITS + 1);
        let mut mantissa = self.rounded_integer();
        if mantissa == 2 << MANTISSA_BITS {
            // Rounding carried into a new bit.
            mantissa >>= 1;
            exp += 1;
            if exp - BIAS >= 0x7ff {
                return f64::INFINITY;
            }
        }
        if mantissa & (1 << MANTISSA_BITS) == 0 {
            // Subnormal: no hidden bit.
            exp = BIAS;
        }
        let biased = u64::try_from(exp - BIAS).unwrap_or(0) & 0x7ff;
        f64::from_bits((mantissa & ((1 << MANTISSA_BITS) - 1)) | biased << MANTISSA_BITS)
    }

    /// Divides by `2^k` (`k ≤ MAX_SHIFT`), exactly up to [`MAX_DIGITS`] digits.
    fn shift_right(&mut self, k: u32) {
        let mut read = 0;
        let mut write = 0;
        let mut n: u64 = 0;
        // Read digits until the accumulated value reaches 2^k.
        while n >> k == 0 {
            if read >= self.len {
                if n == 0 {
                    self.len = 0;
                    self.point = 0;
                    return;
                }
                while n >> k == 0 {
                    n *= 10;
                    read += 1;
                }
                break;
            }
            n = n * 10 + u64::from(self.digit(read));
            read += 1;
        }
        self.point -= read as i64 - 1;
        let mask = (1u64 << k) - 1;
        while read < self.len {
            let out = (n >> k) as u8;
            n &= mask;
            if let Some(slot) = self.digits.get_mut(write) {
                *slot = out;
            }
            write += 1;
            n = n * 10 + u64::from(self.digit(read));
            read += 1;
        }
        while n > 0 {
            let out = (n >> k) as u8;
            n &= mask;
            match self.digits.get_mut(write) {
                Some(slot) => {
                    *slot = out;
                    write += 1;
                }
                None => self.truncated |= out != 0,
            }
            n *= 10;
        }
        self.len = write;
        self.trim();
    }

    /// Multiplies by `2^k` (`k ≤ MAX_SHIFT`), exactly up to [`MAX_DIGITS`] digits.
    fn shift_left(&mut self, k: u32) {
        if self.len == 0 {
            return;
        }
        // The product has at most `ceil(k / 3)` more digits (2^3 < 10). Written right to left,
        // that many places further right, then the leading zeros are taken off.
        let room = k.div_ceil(3) as usize;
        let mut n: u64 = 0;
        let mut at = self.len + room;
        let mut read = self.len;
        while read > 0 {
            read -= 1;
            n += u64::from(self.digit(read)) << k;
            let quotient = n / 10;
            let remainder = (n - 10 * quotient) as u8;
            at -= 1;
            self.put(at, remainder);
            n = quotient;
        }
        while at > 0 {
            let quotient = n / 10;
            let remainder = (n - 10 * quotient) as u8;
            at -= 1;
            self.put(at, remainder);
            n = quotient;
        }
        let len = (self.len + room).min(MAX_DIGITS);
        let zeros = self
            .digits
            .get(..len)
            .unwrap_or_default()
            .iter()
            .take_while(|&&d| d == 0)
            .count();
        self.digits.copy_within(zeros..len, 0);
        self.len = len - zeros;
        self.point += room as i64 - zeros as i64;
        self.trim();
    }

    /// Writes digit `d` at `i`, or notes a dropped nonzero digit past [`MAX_DIGITS`].
    fn put(&mut self, i: usize, d: u8) {
        match self.digits.get_mut(i) {
            Some(slot) => *slot = d,
            None => self.truncated |= d != 0,
        }
    }

    /// The integer part, rounded to nearest, ties to even (a tie only when nothing nonzero
    /// follows, truncated digits included).
    fn rounded_integer(&self) -> u64 {
        // Below 0.1 (a subnormal's last bits shifted out): rounds to 0.
        let Ok(point) = usize::try_from(self.point) else {
            return 0;
        };
        if point > 20 {
            return u64::MAX;
        }
        let mut n: u64 = 0;
        for i in 0..point {
            n = n.wrapping_mul(10).wrapping_add(u64::from(self.digit(i)));
        }
        let up = if self.len <= point {
            false
        } else if self.digit(point) == 5 && point + 1 == self.len {
            // Exactly half (unless digits were dropped): to even.
            self.truncated || (point > 0 && self.digit(point - 1) % 2 == 1)
        } else {
            self.digit(point) >= 5
        };
        n.wrapping_add(u64::from(up))
    }
}

/// How far to shift for a decimal point at `point` (> 0): the largest power of two that keeps
/// the value on the same side of 1 for small points, 27 bits for the others.
fn shift_for(point: i64) -> u32 {
    const STEPS: [u8; 9] = [1, 3, 6, 9, 13, 16, 19, 23, 26];
    usize::try_from(point)
        .ok()
        .and_then(|p| STEPS.get(p))
        .map_or(27, |&s| u32::from(s))
}

#[cfg(test)]
mod tests;
