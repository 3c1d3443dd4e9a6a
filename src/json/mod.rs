//! JSON without an allocator.
//!
//! - [`write`](mod@write): the escaping writer the event encoder streams into queue records and batch
//!   bodies. It never fails on space: it counts the bytes it could not place, so a caller learns
//!   the exact size it needs after one pass.
//! - [`read`](mod@read): a pull tokenizer over a byte slice, bounded in nesting depth, that never
//!   allocates and consumes input on every step (so it always terminates).
//! - `typed` (the `serde` feature): any `Serialize` value as a property, and JSON text (a flag
//!   payload) read into a `Deserialize` type, through `serde-json-core`.

pub(crate) mod decimal;
pub mod read;
mod short_float;
#[cfg(feature = "serde")]
pub mod typed;
pub mod write;

/// Unicode `White_Space`, exactly as [`char::is_whitespace`], without `core`'s 256-byte lookup
/// table: the property has 25 code points.
#[must_use]
pub(crate) fn is_white_space(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, '\t'..='\r' | ' ');
    }
    matches!(
        c,
        '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

/// Whether `s` is empty or only [`White_Space`](is_white_space) (what `str::trim` leaves empty).
#[must_use]
pub(crate) fn is_blank(s: &str) -> bool {
    s.chars().all(is_white_space)
}

/// Whether `b` is special in a JSON string: a control character, `"` or `\` (what a writer
/// escapes and what ends a reader's run of plain text).
#[inline(always)]
pub(crate) const fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether one of the four bytes of `w` (little-endian) may be special in a JSON string: a
/// control character, `"` or `\` ([`is_special`]). Never false when one is (it may be true
/// when none is: the caller then looks byte by byte).
#[inline(always)]
pub(crate) fn may_need_escape(w: u32) -> bool {
    const ONES: u32 = 0x0101_0101;
    const HIGH: u32 = 0x8080_8080;
    // A byte below n sets its high bit in (w - n*ONES) & !w, for n <= 0x80; a zero byte is one
    // below 1.
    let below = |v: u32, n: u32| v.wrapping_sub(n.wrapping_mul(ONES)) & !v & HIGH;
    below(w, 0x20) | below(w ^ 0x2222_2222, 1) | below(w ^ 0x5c5c_5c5c, 1) != 0
}

#[cfg(test)]
mod tests {
    use super::{is_blank, is_white_space};

    #[test]
    fn white_space_is_core_s_on_every_code_point() {
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert_eq!(is_white_space(c), c.is_whitespace(), "{:x}", u32::from(c));
        }
    }

    #[test]
    fn blank_is_what_trim_leaves_empty() {
        for s in [
            "",
            " ",
            "\t\n",
            "\u{3000}\u{a0}",
            "a",
            " a ",
            "\u{200b}",
            "\u{1c}",
        ] {
            assert_eq!(is_blank(s), s.trim().is_empty(), "{s:?}");
        }
    }
}
