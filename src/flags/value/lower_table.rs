//! Unicode lowercase mappings, compressed: the table behind [`lower`], which gives what
//! `char::to_lowercase` gives (Unicode 17.0, as Rust 1.95's `core` carries it) in 1.5 KB of
//! flash instead of `core`'s 11.7 KB.
//!
//! Every character whose lowercase is one other character lies in a run of characters spaced
//! one or two apart (`A`-`Z`; `Ā ā Ă ă …`) that all move by the same distance. Only U+0130
//! (`İ`) lowers to two characters. The runs are generated from `core` by the ignored test
//! `tests::generate`, and the test `tests::equals_core_for_every_char` checks every code point
//! against `char::to_lowercase`: when a toolchain's Unicode tables change, that test says so,
//! and regenerating the table follows them.

/// Runs sorted by start, never overlapping: `(start | (stride - 1) << 21 | len << 22, delta)`.
/// The run covers `start + k * stride` for `k < len`, each lowering to itself plus `delta`.
const RUNS: [(u32, i32); 185] = [
    (0x6800041, 32),
    (0x5c000c0, 32),
    (0x1c000d8, 32),
    (0x6200100, 1),
    (0xe00132, 1),
    (0x2200139, 1),
    (0x5e0014a, 1),
    (0x400178, -121),
    (0xe00179, 1),
    (0x400181, 210),
    (0xa00182, 1),
    (0x400186, 206),
    (0x400187, 1),
    (0x800189, 205),
    (0x40018b, 1),
    (0x40018e, 79),
    (0x40018f, 202),
    (0x400190, 203),
    (0x400191, 1),
    (0x400193, 205),
    (0x400194, 207),
    (0x400196, 211),
    (0x400197, 209),
    (0x400198, 1),
    (0x40019c, 211),
    (0x40019d, 213),
    (0x40019f, 214),
    (0xe001a0, 1),
    (0x4001a6, 218),
    (0x4001a7, 1),
    (0x4001a9, 218),
    (0x4001ac, 1),
    (0x4001ae, 218),
    (0x4001af, 1),
    (0x8001b1, 217),
    (0xa001b3, 1),
    (0x4001b7, 219),
    (0x4001b8, 1),
    (0x4001bc, 1),
    (0x4001c4, 2),
    (0x4001c5, 1),
    (0x4001c7, 2),
    (0x4001c8, 1),
    (0x4001ca, 2),
    (0x26001cb, 1),
    (0x26001de, 1),
    (0x4001f1, 2),
    (0xa001f2, 1),
    (0x4001f6, -97),
    (0x4001f7, -56),
    (0x52001f8, 1),
    (0x400220, -130),
    (0x2600222, 1),
    (0x40023a, 10795),
    (0x40023b, 1),
    (0x40023d, -163),
    (0x40023e, 10792),
    (0x400241, 1),
    (0x400243, -195),
    (0x400244, 69),
    (0x400245, 71),
    (0x1600246, 1),
    (0xa00370, 1),
    (0x400376, 1),
    (0x40037f, 116),
    (0x400386, 38),
    (0xc00388, 37),
    (0x40038c, 64),
    (0x80038e, 63),
    (0x4400391, 32),
    (0x24003a3, 32),
    (0x4003cf, 8),
    (0x32003d8, 1),
    (0x4003f4, -60),
    (0x4003f7, 1),
    (0x4003f9, -7),
    (0x4003fa, 1),
    (0xc003fd, -130),
    (0x4000400, 80),
    (0x8000410, 32),
    (0x4600460, 1),
    (0x6e0048a, 1),
    (0x4004c0, 15),
    (0x1e004c1, 1),
    (0xc2004d0, 1),
    (0x9800531, 48),
    (0x98010a0, 7264),
    (0x4010c7, 7264),
    (0x4010cd, 7264),
    (0x140013a0, 38864),
    (0x18013f0, 8),
    (0x401c89, 1),
    (0xac01c90, -3008),
    (0xc01cbd, -3008),
    (0x12e01e00, 1),
    (0x401e9e, -7615),
    (0xc201ea0, 1),
    (0x2001f08, -8),
    (0x1801f18, -8),
    (0x2001f28, -8),
    (0x2001f38, -8),
    (0x1801f48, -8),
    (0x1201f59, -8),
    (0x2001f68, -8),
    (0x2001f88, -8),
    (0x2001f98, -8),
    (0x2001fa8, -8),
    (0x801fb8, -8),
    (0x801fba, -74),
    (0x401fbc, -9),
    (0x1001fc8, -86),
    (0x401fcc, -9),
    (0x801fd8, -8),
    (0x801fda, -100),
    (0x801fe8, -8),
    (0x801fea, -112),
    (0x401fec, -7),
    (0x801ff8, -128),
    (0x801ffa, -126),
    (0x401ffc, -9),
    (0x402126, -7517),
    (0x40212a, -8383),
    (0x40212b, -8262),
    (0x402132, 28),
    (0x4002160, 16),
    (0x402183, 1),
    (0x68024b6, 26),
    (0xc002c00, 48),
    (0x402c60, 1),
    (0x402c62, -10743),
    (0x402c63, -3814),
    (0x402c64, -10727),
    (0xe02c67, 1),
    (0x402c6d, -10780),
    (0x402c6e, -10749),
    (0x402c6f, -10783),
    (0x402c70, -10782),
    (0x402c72, 1),
    (0x402c75, 1),
    (0x802c7e, -10815),
    (0xca02c80, 1),
    (0xa02ceb, 1),
    (0x402cf2, 1),
    (0x5e0a640, 1),
    (0x3a0a680, 1),
    (0x1e0a722, 1),
    (0x7e0a732, 1),
    (0xa0a779, 1),
    (0x40a77d, -35332),
    (0x160a77e, 1),
    (0x40a78b, 1),
    (0x40a78d, -42280),
    (0xa0a790, 1),
    (0x2a0a796, 1),
    (0x40a7aa, -42308),
    (0x40a7ab, -42319),
    (0x40a7ac, -42315),
    (0x40a7ad, -42305),
    (0x40a7ae, -42308),
    (0x40a7b0, -42258),
    (0x40a7b1, -42282),
    (0x40a7b2, -42261),
    (0x40a7b3, 928),
    (0x220a7b4, 1),
    (0x40a7c4, -48),
    (0x40a7c5, -42307),
    (0x40a7c6, -35384),
    (0xa0a7c7, 1),
    (0x40a7cb, -42343),
    (0x220a7cc, 1),
    (0x40a7dc, -42561),
    (0x40a7f5, 1),
    (0x680ff21, 32),
    (0xa010400, 40),
    (0x90104b0, 40),
    (0x2c10570, 39),
    (0x3c1057c, 39),
    (0x1c1058c, 39),
    (0x810594, 39),
    (0xcc10c80, 64),
    (0x5810d50, 32),
    (0x80118a0, 32),
    (0x8016e40, 32),
    (0x6416ea0, 27),
    (0x881e900, 34),
];

/// The lowercase of `c`: one character, or two for U+0130 (`İ` → `i` + U+0307).
pub(super) fn lower(c: char) -> (char, Option<char>) {
    if c.is_ascii() {
        return (c.to_ascii_lowercase(), None);
    }
    if c == '\u{130}' {
        return ('i', Some('\u{307}'));
    }
    let cp = u32::from(c);
    let i = RUNS.partition_point(|&(w, _)| w & 0x1F_FFFF <= cp);
    let Some(&(w, delta)) = i.checked_sub(1).and_then(|i| RUNS.get(i)) else {
        return (c, None);
    };
    let (start, stride, len) = (w & 0x1F_FFFF, ((w >> 21) & 1) + 1, w >> 22);
    let off = cp - start;
    if off < len * stride && off % stride == 0 {
        if let Some(l) = cp.checked_add_signed(delta).and_then(char::from_u32) {
            return (l, None);
        }
    }
    (c, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn equals_core_for_every_char() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let want: Vec<char> = c.to_lowercase().collect();
            let (a, b) = lower(c);
            let got: Vec<char> = core::iter::once(a).chain(b).collect();
            assert_eq!(
                got,
                want,
                "U+{:04X}: the toolchain's Unicode tables changed; regenerate with `cargo test \
                 --lib flags::value::lower_table::tests::generate -- --ignored --nocapture`",
                u32::from(c)
            );
        }
    }

    /// Prints `RUNS` from `core`'s `char::to_lowercase`.
    #[test]
    #[ignore = "generator: prints the table"]
    fn generate() {
        let mut runs: Vec<(u32, u32, u32, i64)> = Vec::new();
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let l: Vec<char> = c.to_lowercase().collect();
            let cp = u32::from(c);
            if l.len() != 1 || l[0] == c {
                continue;
            }
            let d = i64::from(u32::from(l[0])) - i64::from(cp);
            if let Some(last) = runs.last_mut() {
                let (s, n, st, dd) = *last;
                if dd == d && n == 1 && (cp == s + 1 || cp == s + 2) {
                    *last = (s, 2, cp - s, d);
                    continue;
                }
                if dd == d && cp == s + n * st {
                    last.1 += 1;
                    continue;
                }
            }
            runs.push((cp, 1, 1, d));
        }
        let mut out = String::new();
        for (s, n, st, d) in runs {
            out.push_str(&std::format!(
                "    ({:#08x}, {d}),\n",
                s | ((st - 1) << 21) | (n << 22)
            ));
        }
        std::print!("{out}");
    }
}
