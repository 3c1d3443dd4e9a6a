//! Unicode data for `\d`, `\s`, `\w` (and so `\b`) and for simple case folding (`(?i)`),
//! generated from `regex-syntax` 0.8 by the ignored test `tables::tests::generate`, and checked
//! against it by the normal test `tables::tests::tables_match_regex_syntax`.
//!
//! Range tables are two parallel arrays: the first code point of each range (ascending) and
//! `last - first` as a `u16` (6 bytes a range). Case folding is stored as runs over the code
//! points whose simple-case-folding orbit has more than one member. Each run maps a code point
//! to the *next* member of its orbit (orbits are cycles, walked in ascending order); an
//! "alternating" run maps even offsets by `+delta` and odd offsets by `-delta`, which covers the
//! `Aa Bb Cc` pairs of the Latin, Greek and Cyrillic extensions in one entry. 8 bytes a run.

//!
//! With the `compact` feature the data (about 8 KB) is left out: every function below is
//! exact for ASCII characters (and for the two non-ASCII members of ASCII letters' orbits,
//! `ſ` and `K`), and the matcher refuses to decide a haystack with other non-ASCII
//! characters when its program would consult them (`program::needs_tables`).

#[cfg(not(feature = "compact"))]
mod data;

#[cfg(not(feature = "compact"))]
use data::{
    DIGIT_SPAN, DIGIT_START, FOLD_DELTA, FOLD_RUN, SPACE_SPAN, SPACE_START, WORD_SPAN, WORD_START,
};

/// `\w` of an ASCII character, and of the two non-ASCII members of ASCII letters' orbits
/// (`ſ`, `K`: letters, so word characters), which a case-insensitive class tests for `s` and
/// `k` (the Unicode class agrees on all of these).
#[cfg_attr(not(feature = "compact"), allow(dead_code))]
pub(super) fn ascii_is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '\u{17f}' | '\u{212a}')
}

/// `\s` of an ASCII character (`White_Space` agrees on ASCII).
#[cfg_attr(not(feature = "compact"), allow(dead_code))]
pub(super) fn ascii_is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// [`fold_next`] for ASCII letters and the two non-ASCII characters in their orbits
/// (`K k K`, `S s ſ`); `None` for everything else.
#[cfg_attr(not(feature = "compact"), allow(dead_code))]
pub(super) fn ascii_fold_next(c: char) -> Option<char> {
    Some(match c {
        'K' => 'k',
        'k' => '\u{212a}',
        '\u{212a}' => 'K',
        'S' => 's',
        's' => '\u{17f}',
        '\u{17f}' => 'S',
        'A'..='Z' => c.to_ascii_lowercase(),
        'a'..='z' => c.to_ascii_uppercase(),
        _ => return None,
    })
}

/// Whether a literal `c` compiles to [`Inst::CharFold`] under `(?i)`: when it has an orbit,
/// and, without the data, for every non-ASCII character (the matcher then compares exactly on
/// ASCII haystacks and refuses the others).
pub(super) fn may_fold(c: char) -> bool {
    if cfg!(feature = "compact") && !c.is_ascii() {
        return true;
    }
    fold_next(c).is_some()
}

/// Whether `c` lies in one of the ranges `starts[i] ..= starts[i] + spans[i]`.
#[cfg(not(feature = "compact"))]
fn in_ranges(starts: &[u32], spans: &[u16], c: u32) -> bool {
    let idx = starts.partition_point(|&s| s <= c);
    let Some(i) = idx.checked_sub(1) else {
        return false;
    };
    match (starts.get(i), spans.get(i)) {
        (Some(&s), Some(&span)) => c - s <= u32::from(span),
        _ => false,
    }
}

/// `\w` with Unicode semantics (also the word character of `\b`).
pub(super) fn is_word(c: char) -> bool {
    #[cfg(feature = "compact")]
    return ascii_is_word(c);
    #[cfg(not(feature = "compact"))]
    in_ranges(&WORD_START, &WORD_SPAN, u32::from(c))
}

/// `\d` with Unicode semantics (general category `Nd`).
pub(super) fn is_digit(c: char) -> bool {
    #[cfg(feature = "compact")]
    return c.is_ascii_digit();
    #[cfg(not(feature = "compact"))]
    in_ranges(&DIGIT_START, &DIGIT_SPAN, u32::from(c))
}

/// `\s` with Unicode semantics (property `White_Space`).
pub(super) fn is_space(c: char) -> bool {
    #[cfg(feature = "compact")]
    return ascii_is_space(c);
    #[cfg(not(feature = "compact"))]
    in_ranges(&SPACE_START, &SPACE_SPAN, u32::from(c))
}

/// The next member (ascending, wrapping) of `c`'s simple case folding orbit, or `None` when `c`
/// folds only to itself.
#[cfg(feature = "compact")]
pub(super) fn fold_next(c: char) -> Option<char> {
    ascii_fold_next(c)
}

/// The next member (ascending, wrapping) of `c`'s simple case folding orbit, or `None` when `c`
/// folds only to itself.
#[cfg(not(feature = "compact"))]
pub(super) fn fold_next(c: char) -> Option<char> {
    let cp = u32::from(c);
    let idx = FOLD_RUN.partition_point(|&r| r >> 11 <= cp);
    let i = idx.checked_sub(1)?;
    let run = *FOLD_RUN.get(i)?;
    let delta = *FOLD_DELTA.get(i)?;
    let offset = cp - (run >> 11);
    if offset > run & 0x3ff {
        return None;
    }
    let alternating = run & 0x400 != 0;
    let delta = if alternating && offset % 2 == 1 {
        -delta
    } else {
        delta
    };
    char::from_u32(cp.checked_add_signed(delta)?)
}

/// Longest simple case folding orbit (for example `k K K`, `θ ϑ Θ ϴ`).
pub(super) const MAX_ORBIT: usize = 4;

/// Calls `f` on every member of `c`'s simple case folding orbit, `c` first, until `f` returns
/// `true`. Returns whether it did.
pub(super) fn any_in_orbit(c: char, mut f: impl FnMut(char) -> bool) -> bool {
    let mut x = c;
    for _ in 0..MAX_ORBIT {
        if f(x) {
            return true;
        }
        match fold_next(x) {
            Some(n) if n != c => x = n,
            _ => return false,
        }
    }
    false
}

#[cfg(all(test, not(feature = "compact")))]
mod tests {

    use super::*;
    use core::fmt::Write;
    use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, HirKind};
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, println};

    fn class_of(pattern: &str) -> ClassUnicode {
        let hir = regex_syntax::Parser::new().parse(pattern).unwrap();
        match hir.into_kind() {
            HirKind::Class(Class::Unicode(c)) => c,
            other => panic!("{pattern} is not a Unicode class: {other:?}"),
        }
    }

    /// regex-syntax's simple case folding orbit of `c`, ascending.
    fn orbit_of(c: char) -> Vec<u32> {
        let mut cls = ClassUnicode::new([ClassUnicodeRange::new(c, c)]);
        cls.case_fold_simple();
        cls.iter()
            .flat_map(|r| u32::from(r.start())..=u32::from(r.end()))
            .collect()
    }

    fn ranges(starts: &[u32], spans: &[u16]) -> Vec<(u32, u32)> {
        starts
            .iter()
            .zip(spans)
            .map(|(&s, &n)| (s, s + u32::from(n)))
            .collect()
    }

    fn syntax_ranges(pattern: &str) -> Vec<(u32, u32)> {
        class_of(pattern)
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect()
    }

    #[test]
    fn tables_match_regex_syntax() {
        assert_eq!(ranges(&WORD_START, &WORD_SPAN), syntax_ranges(r"\w"));
        assert_eq!(ranges(&DIGIT_START, &DIGIT_SPAN), syntax_ranges(r"\d"));
        assert_eq!(ranges(&SPACE_START, &SPACE_SPAN), syntax_ranges(r"\s"));
        for cp in 0..=0x10_FFFF_u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let expected = orbit_of(c);
            let mut ours = Vec::new();
            any_in_orbit(c, |x| {
                ours.push(u32::from(x));
                false
            });
            ours.sort_unstable();
            assert_eq!(ours, expected, "case folding orbit of U+{cp:04X}");
            // The orbit model needs folding to be an equivalence: every member folds to the
            // same set.
            if expected.len() > 1 {
                for &m in &expected {
                    let m = char::from_u32(m).unwrap();
                    assert_eq!(orbit_of(m), expected, "orbit of U+{:04X}", u32::from(m));
                }
            }
        }
    }

    #[test]
    fn lookups() {
        assert!(is_word('a') && is_word('_') && is_word('é') && is_word('١'));
        assert!(!is_word('-') && !is_word(' ') && !is_word('²'));
        assert!(is_digit('7') && is_digit('١') && !is_digit('²'));
        assert!(is_space('\u{2003}') && !is_space('\u{feff}') && !is_space('\u{1c}'));
        assert_eq!(fold_next('A'), Some('a'));
        assert_eq!(fold_next('a'), Some('A'));
        assert_eq!(fold_next('K'), Some('k'));
        assert_eq!(fold_next('k'), Some('\u{212A}'));
        assert_eq!(fold_next('\u{212A}'), Some('K'));
        assert_eq!(fold_next('1'), None);
        assert_eq!(fold_next('\u{10FFFF}'), None);
    }

    fn emit<T: ToString>(out: &mut String, doc: &str, name: &str, ty: &str, v: &[T]) {
        writeln!(out, "{doc}").unwrap();
        writeln!(out, "pub(super) const {name}: [{ty}; {}] = [", v.len()).unwrap();
        for x in v {
            writeln!(out, "    {},", x.to_string()).unwrap();
        }
        writeln!(out, "];").unwrap();
    }

    /// Prints `tables/data.rs`. Run with
    /// `cargo test --lib flags::regex::tables::tests::generate -- --ignored --nocapture`,
    /// save the output between the test harness lines as `tables/data.rs`, then `rustfmt` it.
    #[test]
    #[ignore = "generator: prints the tables"]
    fn generate() {
        let mut out = String::from(
            "//! Generated by `flags::regex::tables::tests::generate` from `regex-syntax` 0.8: \
             do not edit.\n//! Checked against `regex-syntax` by \
             `tables::tests::tables_match_regex_syntax`.\n\n",
        );
        for (pattern, name) in [(r"\w", "WORD"), (r"\d", "DIGIT"), (r"\s", "SPACE")] {
            let cls = class_of(pattern);
            let starts: Vec<String> = cls
                .iter()
                .map(|r| format!("0x{:X}", u32::from(r.start())))
                .collect();
            let spans: Vec<String> = cls
                .iter()
                .map(|r| {
                    let span = u32::from(r.end()) - u32::from(r.start());
                    u16::try_from(span).unwrap().to_string()
                })
                .collect();
            emit(
                &mut out,
                &format!("/// `{pattern}`: first code point of each range, ascending."),
                &format!("{name}_START"),
                "u32",
                &starts,
            );
            emit(
                &mut out,
                &format!(
                    "/// `{pattern}`: `last - first` of each range, parallel to `{name}_START`."
                ),
                &format!("{name}_SPAN"),
                "u16",
                &spans,
            );
        }
        // (code point, next member of its orbit) for every code point in a non-trivial orbit.
        let mut next = Vec::new();
        for cp in 0..=0x10_FFFF_u32 {
            let Some(c) = char::from_u32(cp) else {
                continue;
            };
            let orbit = orbit_of(c);
            if orbit.len() > 1 {
                let i = orbit.iter().position(|&m| m == cp).unwrap();
                next.push((cp, orbit[(i + 1) % orbit.len()]));
            }
        }
        // Runs: (first, len, delta, alternating).
        let mut runs: Vec<(u32, u32, i64, bool)> = Vec::new();
        for &(c, n) in &next {
            let d = i64::from(n) - i64::from(c);
            if let Some(last) = runs.last_mut() {
                let (s, len, delta, alt) = *last;
                if c == s + len && len < 1024 {
                    let odd = (c - s) % 2 == 1;
                    if !alt && d == delta {
                        last.1 += 1;
                        continue;
                    }
                    if len == 1 && delta == 1 && d == -1 {
                        *last = (s, 2, 1, true);
                        continue;
                    }
                    if alt && ((!odd && d == delta) || (odd && d == -delta)) {
                        last.1 += 1;
                        continue;
                    }
                }
            }
            runs.push((c, 1, d, false));
        }
        let packed: Vec<String> = runs
            .iter()
            .map(|&(s, len, _, alt)| {
                format!("0x{:08X}", s << 11 | u32::from(alt) << 10 | (len - 1))
            })
            .collect();
        let deltas: Vec<String> = runs.iter().map(|r| r.2.to_string()).collect();
        emit(
            &mut out,
            "/// Case folding runs: `first << 11 | alternating << 10 | (len - 1)`, ascending.",
            "FOLD_RUN",
            "u32",
            &packed,
        );
        emit(
            &mut out,
            "/// Case folding: delta to the next orbit member, parallel to `FOLD_RUN`.",
            "FOLD_DELTA",
            "i32",
            &deltas,
        );
        println!("{out}");
    }

    /// The `compact` profile's functions agree with the data on every ASCII character and every
    /// member of its orbit, and walk the same orbits (the only non-ASCII members are `ſ` and
    /// `K`).
    #[test]
    fn ascii_functions_agree_with_the_data() {
        for c in (0u8..=0x7f).map(char::from) {
            let mut x = c;
            for _ in 0..MAX_ORBIT {
                // Every member of an ASCII character's orbit is tested by a case-insensitive
                // class, against every class.
                assert_eq!(ascii_is_word(x), is_word(x), "{x:?}");
                assert_eq!(x.is_ascii_digit(), is_digit(x), "{x:?}");
                assert_eq!(ascii_is_space(x), is_space(x), "{x:?}");
                assert_eq!(ascii_fold_next(x), fold_next(x), "{c:?} at {x:?}");
                match fold_next(x) {
                    Some(n) if n != c => x = n,
                    _ => break,
                }
            }
        }
        // Every other character with an orbit folds under `(?i)` in both profiles.
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            if fold_next(c).is_some() {
                assert!(may_fold(c), "{c:?}");
            }
        }
    }
}
