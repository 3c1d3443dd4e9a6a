//! A compiled program as bytes, so that a flag store can keep it in its byte arena and match
//! without compiling again: [`INST_BYTES`] bytes per instruction, decoded onto the stack (a few
//! hundred bytes) when a match runs.
//!
//! Layout of one instruction: a tag byte, then up to 7 payload bytes (unused bytes are 0):
//!
//! | Tag | Instruction | Payload |
//! |---:|---|---|
//! | 0 | `Match` | |
//! | 1 | `Char(c)` | `c` as `u32` LE |
//! | 2 | `CharFold(c)` | `c` as `u32` LE |
//! | 3 | `Any` | |
//! | 4 | `AnyExceptNewline` | |
//! | 5 | `Perl` | kind, negated |
//! | 6 | `Class` | `len` as `u16` LE, negated, fold |
//! | 7 | `Item(Range(lo, hi))` | `lo` and `hi`, 21 bits each, packed LE into 6 bytes |
//! | 8 | `Item(Perl)` | kind, negated |
//! | 9 | `Item(Ascii)` | kind, negated |
//! | 10 | `Look` | kind |
//! | 11 | `Split(a, b)` | `a`, `b` as `u16` LE |
//! | 12 | `Jmp(t)` | `t` as `u16` LE |
//!
//! Decoding checks every field (tag, character, kind, flag byte): a byte string that is not a
//! valid encoding decodes to `None`, and the evaluator then leaves the filter to the server.

use super::ast::{AsciiKind, Item, Look, Perl, PerlKind};
use super::program::Inst;

/// Bytes per encoded instruction.
pub(crate) const INST_BYTES: usize = 8;

const ASCII_KINDS: [AsciiKind; 14] = [
    AsciiKind::Alnum,
    AsciiKind::Alpha,
    AsciiKind::Ascii,
    AsciiKind::Blank,
    AsciiKind::Cntrl,
    AsciiKind::Digit,
    AsciiKind::Graph,
    AsciiKind::Lower,
    AsciiKind::Print,
    AsciiKind::Punct,
    AsciiKind::Space,
    AsciiKind::Upper,
    AsciiKind::Word,
    AsciiKind::Xdigit,
];

const LOOKS: [Look; 6] = [
    Look::Start,
    Look::End,
    Look::StartLine,
    Look::EndLine,
    Look::WordBoundary,
    Look::NotWordBoundary,
];

const PERLS: [PerlKind; 3] = [PerlKind::Digit, PerlKind::Space, PerlKind::Word];

fn index_of<T: PartialEq>(table: &[T], x: T) -> u8 {
    table.iter().position(|t| *t == x).unwrap_or(0) as u8
}

fn perl_bytes(p: Perl) -> [u8; 2] {
    [index_of(&PERLS, p.kind), u8::from(p.negated)]
}

fn perl_from(kind: u8, negated: u8) -> Option<Perl> {
    Some(Perl {
        kind: *PERLS.get(usize::from(kind))?,
        negated: flag(negated)?,
    })
}

fn flag(b: u8) -> Option<bool> {
    match b {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Encodes one instruction.
pub(super) fn encode(inst: Inst) -> [u8; INST_BYTES] {
    let mut out = [0u8; INST_BYTES];
    let (tag, payload): (u8, &[u8]) = match inst {
        Inst::Match => (0, &[]),
        Inst::Char(c) => (1, &u32::from(c).to_le_bytes()),
        Inst::CharFold(c) => (2, &u32::from(c).to_le_bytes()),
        Inst::Any => (3, &[]),
        Inst::AnyExceptNewline => (4, &[]),
        Inst::Perl(p) => (5, &perl_bytes(p)),
        Inst::Class { len, negated, fold } => {
            let [a, b] = len.to_le_bytes();
            (6, &[a, b, u8::from(negated), u8::from(fold)])
        }
        Inst::Item(Item::Range(lo, hi)) => {
            let packed = u64::from(u32::from(lo)) | (u64::from(u32::from(hi)) << 21);
            let [a, b, c, d, e, f, ..] = packed.to_le_bytes();
            (7, &[a, b, c, d, e, f])
        }
        Inst::Item(Item::Perl(p)) => (8, &perl_bytes(p)),
        Inst::Item(Item::Ascii(kind, negated)) => {
            (9, &[index_of(&ASCII_KINDS, kind), u8::from(negated)])
        }
        Inst::Look(l) => (10, &[index_of(&LOOKS, l)]),
        Inst::Split(a, b) => {
            let ([a0, a1], [b0, b1]) = (a.to_le_bytes(), b.to_le_bytes());
            (11, &[a0, a1, b0, b1])
        }
        Inst::Jmp(t) => (12, &t.to_le_bytes()),
    };
    out[0] = tag;
    for (o, p) in out[1..].iter_mut().zip(payload) {
        *o = *p;
    }
    out
}

/// Decodes one instruction (`None`: not a valid encoding).
#[inline]
pub(super) fn decode(b: [u8; INST_BYTES]) -> Option<Inst> {
    let [tag, p0, p1, p2, p3, p4, p5, _] = b;
    let u16_at = |x: u8, y: u8| u16::from_le_bytes([x, y]);
    let char_at = || char::from_u32(u32::from_le_bytes([p0, p1, p2, p3]));
    let inst = match tag {
        0 => Inst::Match,
        1 => Inst::Char(char_at()?),
        2 => Inst::CharFold(char_at()?),
        3 => Inst::Any,
        4 => Inst::AnyExceptNewline,
        5 => Inst::Perl(perl_from(p0, p1)?),
        6 => Inst::Class {
            len: u16_at(p0, p1),
            negated: flag(p2)?,
            fold: flag(p3)?,
        },
        7 => {
            let packed = u64::from_le_bytes([p0, p1, p2, p3, p4, p5, 0, 0]);
            let lo = char::from_u32((packed & 0x1F_FFFF) as u32)?;
            let hi = char::from_u32((packed >> 21) as u32)?;
            Inst::Item(Item::Range(lo, hi))
        }
        8 => Inst::Item(Item::Perl(perl_from(p0, p1)?)),
        9 => Inst::Item(Item::Ascii(*ASCII_KINDS.get(usize::from(p0))?, flag(p1)?)),
        10 => Inst::Look(*LOOKS.get(usize::from(p0))?),
        11 => Inst::Split(u16_at(p0, p1), u16_at(p2, p3)),
        12 => Inst::Jmp(u16_at(p0, p1)),
        _ => return None,
    };
    Some(inst)
}

// The compact profile refuses most of these patterns; `tests/flags` checks it instead.
#[cfg(all(test, not(feature = "compact")))]
mod tests {
    use super::*;
    use crate::flags::regex::{EncodedRegex, Regex};

    fn all_kinds() -> std::vec::Vec<Inst> {
        let mut v = std::vec![
            Inst::Match,
            Inst::Char('a'),
            Inst::Char('\u{10FFFF}'),
            Inst::CharFold('K'),
            Inst::Any,
            Inst::AnyExceptNewline,
            Inst::Class {
                len: 65_534,
                negated: true,
                fold: false,
            },
            Inst::Class {
                len: 0,
                negated: false,
                fold: true,
            },
            Inst::Item(Item::Range('\0', '\u{10FFFF}')),
            Inst::Item(Item::Range('a', 'z')),
            Inst::Split(0, 65_534),
            Inst::Jmp(7),
        ];
        for kind in PERLS {
            for negated in [false, true] {
                v.push(Inst::Perl(Perl { kind, negated }));
                v.push(Inst::Item(Item::Perl(Perl { kind, negated })));
            }
        }
        for k in ASCII_KINDS {
            v.push(Inst::Item(Item::Ascii(k, false)));
            v.push(Inst::Item(Item::Ascii(k, true)));
        }
        v.extend(LOOKS.map(Inst::Look));
        v
    }

    #[test]
    fn every_instruction_round_trips() {
        for inst in all_kinds() {
            assert_eq!(decode(encode(inst)), Some(inst), "{inst:?}");
        }
    }

    #[test]
    fn invalid_encodings_decode_to_none() {
        let bad: [[u8; 8]; 7] = [
            [13, 0, 0, 0, 0, 0, 0, 0],   // unknown tag
            [1, 0, 0xD8, 0, 0, 0, 0, 0], // surrogate
            [1, 0, 0, 0x11, 0, 0, 0, 0], // beyond U+10FFFF
            [5, 3, 0, 0, 0, 0, 0, 0],    // Perl kind out of range
            [6, 1, 0, 2, 0, 0, 0, 0],    // flag byte not 0/1
            [9, 14, 0, 0, 0, 0, 0, 0],   // POSIX kind out of range
            [10, 6, 0, 0, 0, 0, 0, 0],   // Look out of range
        ];
        for b in bad {
            assert_eq!(decode(b), None, "{b:?}");
        }
    }

    #[test]
    fn encoded_programs_match_like_the_compiled_ones() {
        let cases: [(&str, &[&str]); 6] = [
            (
                r"^[\w.+-]+@example\.com$",
                &["a.b+tag@example.com", "a@example.com\n", ""],
            ),
            (r"(?i)straße|ǅ", &["STRASSE", "strasse", "ǆ", "ǅ"]),
            (r"(?m)^\d{2,4}\b", &["x\n123 y", "12345", "١٢"]),
            (r"[^[:alpha:]\s]+$", &["abc", "a1", "é"]),
            (r"\Bfoo|bar(?s:.)", &["xfoo", "bar\n", "foo"]),
            ("", &["", "x"]),
        ];
        for (pattern, hays) in cases {
            let re = Regex::<256>::new(pattern).unwrap();
            let mut buf = [0u8; 256 * INST_BYTES];
            let n = re.encoded_len();
            re.encode_into(&mut buf[..n]).unwrap();
            let enc = EncodedRegex::new(&buf[..n]).unwrap();
            for h in hays {
                assert_eq!(enc.is_match(h), Some(re.is_match(h)), "{pattern:?} {h:?}");
            }
            // A buffer of the wrong size is refused.
            assert!(re.encode_into(&mut buf[..n + 1]).is_err());
            assert!(EncodedRegex::new(&buf[..n + 1]).is_none());
        }
    }

    /// Programs either side of the small thread-list size run with the small and the full
    /// lists, and both answer as the compiled matcher does.
    #[test]
    fn both_thread_list_sizes_at_their_edge() {
        let mut lens = std::vec::Vec::new();
        for n in 26..40 {
            let pattern = std::format!("x{{{n}}}");
            let re = Regex::<256>::new(&pattern).unwrap();
            lens.push(re.program_len());
            let mut buf = [0u8; 256 * INST_BYTES];
            let len = re.encoded_len();
            re.encode_into(&mut buf[..len]).unwrap();
            let enc = EncodedRegex::new(&buf[..len]).unwrap();
            for h in [
                "x".repeat(n),
                "x".repeat(n - 1),
                std::format!("y{}", "x".repeat(n)),
            ] {
                assert_eq!(enc.is_match(&h), Some(re.is_match(&h)), "{pattern} {h}");
            }
        }
        for edge in [super::super::SMALL_PROGRAM, super::super::SMALL_PROGRAM + 1] {
            assert!(
                lens.contains(&edge),
                "no program of {edge} instructions: {lens:?}"
            );
        }
    }

    #[test]
    fn a_corrupt_program_never_panics() {
        let re = Regex::<256>::new(r"^(a|b)*[c-e]\d$").unwrap();
        let n = re.encoded_len();
        let mut buf = [0u8; 64 * INST_BYTES];
        re.encode_into(&mut buf[..n]).unwrap();
        for i in 0..n {
            for v in [0u8, 1, 0x7F, 0xFF] {
                let mut b = buf;
                b[i] = v;
                if let Some(enc) = EncodedRegex::new(&b[..n]) {
                    let _ = enc.is_match("abacd9");
                }
            }
        }
    }
}
