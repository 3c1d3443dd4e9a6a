//! A linear-time, allocation-free regex matcher for the `regex` / `not_regex` filter operators.
//!
//! PostHog's server evaluates these operators with the Rust [`regex`] crate (default Unicode
//! semantics, search rather than full match). [`Regex::is_match`] gives exactly the answer
//! `regex::Regex::new(pattern)?.is_match(haystack)` gives, whenever [`Regex::new`] accepts the
//! pattern. When it cannot be sure, `new` says so ([`RegexError::Unsupported`],
//! [`RegexError::TooBig`]) and the flag should be left to the server (inconclusive).
//!
//! ```
//! use posthog_embedded::flags::regex::{Regex, RegexError};
//!
//! let re = Regex::<64>::new(r"^[\w.+-]+@example\.com$")?;
//! assert!(re.is_match("a.b+tag@example.com"));
//! assert!(!re.is_match("a@example.com\n")); // `$` is the very end, as in Rust
//! assert_eq!(Regex::<64>::new("(a").unwrap_err(), RegexError::Invalid);
//! assert_eq!(Regex::<64>::new(r"(a)\1").unwrap_err(), RegexError::Unsupported);
//! # Ok::<(), RegexError>(())
//! ```
//!
//! # How it works
//!
//! The pattern is parsed into a syntax tree held in a fixed array (`N` nodes), compiled into a
//! Thompson NFA held in a fixed array (`N` instructions, the [`Regex`] itself), and run as a
//! Pike VM without capture slots: two sparse thread sets and a work stack on the call stack,
//! one pass over the haystack's characters. There is no backtracking, so no input can make it
//! slow: see [`Regex::max_steps`].
//!
//! # Bounds
//!
//! For `Regex<N>` (default [`DEFAULT_CAPACITY`] = 256), with `P <= N` the compiled program
//! length ([`Regex::program_len`]) and `n` the haystack length in characters (at most its
//! length in bytes):
//!
//! - **Memory.** A `Regex<N>` stores `N` instructions of 8 bytes (2 KiB for 256).
//!   [`Regex::new`] additionally uses `N` syntax-tree slots of 20 bytes on the stack (about
//!   5 KiB for 256), and recurses at most [`MAX_NEST`] groups deep (a deeper pattern is
//!   [`RegexError::TooBig`]). [`Regex::is_match`] uses `5 N` `u16`s of stack (2.5 KiB for 256)
//!   and does not recurse.
//! - **Time.** [`Regex::is_match`] performs at most `2 P (n + 1)` steps, a step being one
//!   thread added to a set or one instruction (or class item) examined while consuming a
//!   character: [`Regex::max_steps`]. [`Regex::is_match_counting`] returns the exact count.
//!   Each step is O(1) apart from Unicode table look-ups (binary searches over at most 796
//!   ranges) and, in case-insensitive classes, at most 4 members of a case folding orbit.
//!
//! # Supported syntax
//!
//! With the meaning the `regex` crate gives it:
//!
//! - literals, including any non-ASCII character; escaped ASCII punctuation and symbols
//!   (`\.`, `\@`, `\ `, …: any ASCII character that is not a letter, a digit, `<` or `>`);
//!   `\a \f \t \n \r \v`; `\x7F`, `\x{10FFFF}`, `\u0041`, `\u{41}`, `\U00000041`, `\U{41}`;
//! - `.` (anything but `\n`; with `(?s)`, anything);
//! - Perl classes `\d \D \s \S \w \W` with Unicode meaning (`\d` is `Nd`, `\s` is
//!   `White_Space`, `\w` is the `regex` crate's word class);
//! - bracketed classes: ranges, `^` negation, a leading `]` or `-` as a literal, escapes,
//!   Perl classes, POSIX classes `[:alpha:]` / `[:^alpha:]`, nested non-negated classes;
//! - `^ $ \A \z` (with `(?m)`: `^` and `$` also at line starts and ends, `\n` only); `$`
//!   never matches before a final `\n`;
//! - `\b \B` (Unicode word boundary, using the `\w` table);
//! - alternation, groups `( )`, `(?: )`, `(?P<name> )`, `(?<name> )` (ASCII names);
//! - quantifiers `* + ? {n} {n,} {n,m}` and their lazy forms (laziness cannot change whether
//!   there is a match);
//! - flags `i m s U u` in `(?flags)` and `(?flags: )`, including negation (`(?-i)`).
//!   Case-insensitive matching uses Unicode simple case folding exactly as `regex-syntax` does
//!   (literals fold; bracketed classes fold before negation; Perl classes are closed under
//!   folding).
//!
//! # Errors: why each construct gets the answer it gets
//!
//! PostHog's server (the Rust flags service) runs Rust `regex` / `fancy-regex`, and an invalid
//! pattern makes both `regex` and `not_regex` **false** (as in posthog-python
//! `_match_regex_property`, where an invalid pattern gives `false` for both). `fancy-regex`
//! hands patterns without "fancy" features to `regex`, but accepts more syntax. So:
//!
//! - [`RegexError::Invalid`] (filter is false): only for mistakes every engine rejects: an
//!   unclosed `(` or `[`, an unopened `)`, `*`/`+`/`?` with nothing to repeat (at the start,
//!   after `|`, `(` or a flag group), a reversed class range such as `[z-a]`, a trailing `\`.
//! - [`RegexError::Unsupported`] (inconclusive), even where `regex` itself rejects the
//!   pattern, because `fancy-regex` may accept it or give it another meaning:
//!   back-references `\1` (and every `\0`–`\9`), `\k<..>`, look-around `(?=` `(?!` `(?<=`
//!   `(?<!`, atomic groups `(?>`, any `(?` other than the groups and flags above; possessive or
//!   stacked quantifiers (`a++`, `a*+`, `a**`, `a{2}{3}`, `a*??`); escapes `regex` does not
//!   know (`\e \h \K \G \Z \q` …, and any escaped letter, digit or non-ASCII character);
//!   counted repetitions it does not read as decimal `{n}`, `{n,}`, `{n,m}` (`{,n}`, spaces,
//!   counts over `u32`, `{` with nothing before it); malformed `\x`/`\u`/`\U`; group names
//!   that are empty, non-ASCII, malformed or repeated.
//! - [`RegexError::Unsupported`] for valid `regex` syntax this engine does not implement:
//!   Unicode properties `\p{..}` / `\P{..}`; class set operations `&&`, `--`, `~~`; a class
//!   used as a range endpoint (`[\d-z]`); negated nested classes (`[a[^b]]`); `\<`, `\>` and
//!   `\b{start}`-style boundaries; flags `x`, `R` and `-u`; quantified assertions such as `^*`
//!   or `\b+`; `[\b]` and other escapes `regex` rejects inside classes.
//! - [`RegexError::TooBig`] (inconclusive): the program needs more than `N` instructions or
//!   syntax-tree nodes, nests deeper than [`MAX_NEST`], or might exceed the `regex` crate's
//!   10 MiB compiled-size limit (then `regex` rejects it; we estimate its size with generous
//!   per-instruction costs, for example 64 KiB per `\w`, and give up at 10 000 000 bytes).
//!
//! # Unicode tables
//!
//! `\w`, `\d`, `\s` and simple case folding come from `regex-syntax` 0.8, stored as sorted
//! ranges (binary search) and checked against it by a test, so they cannot drift. Flash cost:
//! `\w` 796 ranges (4 776 B), `\d` 71 ranges (426 B), `\s` 10 ranges (60 B), case folding 376
//! runs covering 2 938 code points (3 008 B): about 8.1 KiB in all.
//!
//! [`regex`]: https://docs.rs/regex

mod ast;
mod encoded;
mod parse;
mod program;
mod tables;

use core::fmt;

pub use ast::MAX_NEST;
pub(crate) use encoded::INST_BYTES;
use program::Inst;

/// Default instruction capacity of a [`Regex`].
pub const DEFAULT_CAPACITY: usize = 256;

/// Why a pattern was not compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RegexError {
    /// The `regex` crate rejects the pattern. PostHog evaluates both `regex` and `not_regex`
    /// to `false`.
    Invalid,
    /// The pattern may be valid for the server, but this engine cannot decide it exactly (for
    /// example look-around, back-references or `\p{..}`). The filter is inconclusive.
    Unsupported,
    /// The pattern is larger or deeper than this engine's fixed bounds, or may exceed the
    /// `regex` crate's own size limit. The filter is inconclusive.
    TooBig,
}

impl fmt::Display for RegexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Invalid => "invalid regular expression",
            Self::Unsupported => "regular expression uses syntax this matcher cannot evaluate",
            Self::TooBig => "regular expression exceeds the matcher's size bounds",
        })
    }
}

impl core::error::Error for RegexError {}

/// A compiled pattern holding at most `N` instructions (`N` must be in `1..65535`; checked at
/// compile time). See the [module docs](self) for the memory and time bounds.
#[derive(Clone, Debug)]
pub struct Regex<const N: usize = DEFAULT_CAPACITY> {
    prog: heapless::Vec<Inst, N>,
    /// Every match must start at the haystack's start (the program begins with `\A`).
    anchored: bool,
}

impl<const N: usize> Regex<N> {
    /// Program indices (and the "none" marker `u16::MAX`) must fit a `u16`.
    const CAPACITY_OK: () = assert!(N >= 1 && N < u16::MAX as usize, "N must be 1..65535");

    /// Compiles `pattern`.
    ///
    /// # Errors
    ///
    /// [`RegexError::Invalid`] if the `regex` crate would reject the pattern,
    /// [`RegexError::Unsupported`] or [`RegexError::TooBig`] if this engine cannot decide it
    /// (see the [module docs](self)).
    // Never inlined: its syntax tree takes most of its stack, and inlined into a caller the
    // frame grows by the copies the caller keeps (measured: 15 KiB alone, 23 KiB inlined).
    ///
    /// With the `compact` feature (no Unicode data), a pattern that would consult the data on
    /// non-ASCII text (`\d \s \w \b`, `(?i)`) is [`RegexError::Unsupported`], so that
    /// [`is_match`](Self::is_match) is exact on every haystack. (A flag store keeps such
    /// patterns and answers inconclusive only for non-ASCII values.)
    #[inline(never)]
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let re = Self::compile(pattern)?;
        if cfg!(feature = "compact") && program::needs_tables(&re.prog) {
            return Err(RegexError::Unsupported);
        }
        Ok(re)
    }

    /// [`new`](Self::new) without the `compact` profile's refusal: for programs that are
    /// stored and matched through [`EncodedRegex`], which checks each haystack.
    #[inline(never)]
    pub(crate) fn compile(pattern: &str) -> Result<Self, RegexError> {
        let () = Self::CAPACITY_OK;
        let ast = parse::parse::<N>(pattern)?;
        let mut prog = heapless::Vec::new();
        program::compile(&ast, &mut prog)?;
        let anchored = matches!(prog.first(), Some(Inst::Look(ast::Look::Start)));
        Ok(Self { prog, anchored })
    }

    /// Whether the pattern matches anywhere in `haystack`.
    #[must_use]
    pub fn is_match(&self, haystack: &str) -> bool {
        self.is_match_counting(haystack).0
    }

    /// [`is_match`](Self::is_match), also returning the number of steps taken, which never
    /// exceeds [`max_steps`](Self::max_steps)`(haystack.len())`.
    #[must_use]
    pub fn is_match_counting(&self, haystack: &str) -> (bool, usize) {
        run_counting::<N>(self.prog.as_slice(), haystack, self.anchored)
    }

    /// Bytes the program takes encoded ([`INST_BYTES`] per instruction).
    pub(crate) fn encoded_len(&self) -> usize {
        self.prog.len() * INST_BYTES
    }

    /// The program encoded, one instruction at a time ([`encoded_len`](Self::encoded_len)
    /// bytes in all); read it back with [`EncodedRegex`].
    pub(crate) fn encoded(&self) -> impl Iterator<Item = [u8; INST_BYTES]> + '_ {
        self.prog.iter().map(|inst| encoded::encode(*inst))
    }

    /// Writes the program into `out`, which must be exactly
    /// [`encoded_len`](Self::encoded_len) bytes (`Err` carries that length otherwise).
    #[cfg(all(test, not(feature = "compact")))]
    pub(crate) fn encode_into(&self, out: &mut [u8]) -> Result<(), usize> {
        if out.len() != self.encoded_len() {
            return Err(self.encoded_len());
        }
        for (chunk, inst) in out.chunks_exact_mut(INST_BYTES).zip(self.encoded()) {
            chunk.copy_from_slice(&inst);
        }
        Ok(())
    }

    /// Instructions in the compiled program (at most `N`).
    #[must_use]
    pub fn program_len(&self) -> usize {
        self.prog.len()
    }

    /// Upper bound on the steps [`is_match`](Self::is_match) takes on a haystack of
    /// `haystack_len` bytes: `2 × program_len × (haystack_len + 1)` (saturating).
    #[must_use]
    pub fn max_steps(&self, haystack_len: usize) -> usize {
        self.prog
            .len()
            .saturating_mul(2)
            .saturating_mul(haystack_len.saturating_add(1))
    }
}

/// A program compiled by [`Regex::new`] and stored as bytes ([`Regex::encoded`]), matched
/// with the default capacity's bounds: a flag store compiles each pattern once, when the
/// definitions load, and keeps only these bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EncodedRegex<'a> {
    bytes: &'a [u8],
}

impl<'a> EncodedRegex<'a> {
    /// Reads an encoded program: `None` unless it is a whole number of instructions, at most
    /// [`DEFAULT_CAPACITY`].
    pub(crate) fn new(bytes: &'a [u8]) -> Option<Self> {
        if !bytes.len().is_multiple_of(INST_BYTES) || bytes.len() > DEFAULT_CAPACITY * INST_BYTES {
            return None;
        }
        Some(Self { bytes })
    }

    /// Whether the pattern matches anywhere in `haystack`, as [`Regex::is_match`]; `None` if
    /// an instruction does not decode, or (with the `compact` feature) if `haystack` is not
    /// ASCII and the program would consult the Unicode data the build leaves out.
    ///
    /// The program is decoded onto the stack once, then run: small programs (a typical filter
    /// pattern has a few dozen instructions) with thread lists sized for [`SMALL_PROGRAM`],
    /// so that a match does not clear the 2.5 KiB of lists a 256-instruction program needs.
    pub(crate) fn is_match(&self, haystack: &str) -> Option<bool> {
        let undecidable = |prog: &[Inst]| {
            cfg!(feature = "compact") && !haystack.is_ascii() && program::needs_tables(prog)
        };
        if self.bytes.len() <= SMALL_PROGRAM * INST_BYTES {
            let prog = decode::<SMALL_PROGRAM>(self.bytes)?;
            (!undecidable(&prog)).then(|| run::<SMALL_PROGRAM>(&prog, haystack))
        } else {
            let prog = decode::<DEFAULT_CAPACITY>(self.bytes)?;
            (!undecidable(&prog)).then(|| run::<DEFAULT_CAPACITY>(&prog, haystack))
        }
    }
}

/// Programs up to this many instructions run with thread lists of this size.
const SMALL_PROGRAM: usize = 32;

/// Decodes a program of at most `N` instructions (`None`: one does not decode, or there are
/// more).
fn decode<const N: usize>(bytes: &[u8]) -> Option<heapless::Vec<Inst, N>> {
    let mut prog = heapless::Vec::new();
    for chunk in bytes.chunks_exact(INST_BYTES) {
        prog.push(encoded::decode(chunk.try_into().ok()?)?).ok()?;
    }
    Some(prog)
}

/// Runs the matcher over a program of at most `N` instructions.
fn run<const N: usize>(prog: &[Inst], haystack: &str) -> bool {
    let anchored = matches!(prog.first(), Some(Inst::Look(ast::Look::Start)));
    run_counting::<N>(prog, haystack, anchored).0
}

/// Runs the matcher; returns whether it matched and the steps taken.
fn run_counting<const N: usize>(prog: &[Inst], haystack: &str, anchored: bool) -> (bool, usize) {
    if let Some(len) = suffix_len(prog) {
        return run_suffix(prog, haystack, len);
    }
    let mut vm = Vm::<N> {
        prog,
        cur: SparseSet::new(),
        next: SparseSet::new(),
        stack: [0; N],
        steps: 0,
    };
    let matched = vm.run(haystack, anchored);
    (matched, vm.steps)
}

/// For a program that consumes exactly one character per instruction (no alternation, no
/// repetition, no assertion) and then asserts the very end (`…$`, `\z`), how many characters
/// it consumes: a match can then only be the last that many characters of the haystack.
/// `None` for any other program.
fn suffix_len(prog: &[Inst]) -> Option<usize> {
    let Some((Inst::Match, rest)) = prog.split_last() else {
        return None;
    };
    let Some((Inst::Look(ast::Look::End), mut body)) = rest.split_last() else {
        return None;
    };
    let mut len = 0;
    while let Some((inst, tail)) = body.split_first() {
        body = match *inst {
            Inst::Char(_)
            | Inst::CharFold(_)
            | Inst::Any
            | Inst::AnyExceptNewline
            | Inst::Perl(_) => tail,
            Inst::Class { len, .. } => tail.get(usize::from(len)..)?,
            Inst::Item(_) | Inst::Look(_) | Inst::Split(..) | Inst::Jmp(_) | Inst::Match => {
                return None
            }
        };
        len += 1;
    }
    Some(len)
}

/// Runs a program [`suffix_len`] accepted, which consumes `len` characters and then asserts
/// the end: only the haystack's last `len` characters can match, one instruction each.
/// Returns whether it matched and the steps taken. Not generic (one copy for every program
/// size).
#[inline(never)]
fn run_suffix(prog: &[Inst], haystack: &str, len: usize) -> (bool, usize) {
    let mut steps = 0;
    // Where the last `len` characters begin, walking back from the end.
    let mut start = haystack.len();
    let mut back = haystack.char_indices().rev();
    for _ in 0..len {
        match back.next() {
            Some((i, _)) => start = i,
            None => return (false, steps),
        }
    }
    let mut pc = 0;
    for c in haystack.get(start..).unwrap_or_default().chars() {
        steps += 1;
        match step(prog, pc, c, &mut steps) {
            Some(next) => pc = next,
            None => return (false, steps),
        }
    }
    (true, steps)
}

/// Where the thread at `pc` continues after consuming `c`, if it can (a class adds its items
/// to `steps`). Never inlined: one copy serves every program size.
#[inline(never)]
fn step(prog: &[Inst], pc: u16, c: char, steps: &mut usize) -> Option<u16> {
    let at = usize::from(pc);
    let inst = *prog.get(at)?;
    let ok = match inst {
        Inst::Char(x) => c == x,
        Inst::CharFold(x) => tables::any_in_orbit(c, |y| y == x),
        Inst::Any => true,
        Inst::AnyExceptNewline => c != '\n',
        Inst::Perl(p) => p.matches(c),
        Inst::Class { len, negated, fold } => {
            let items = prog.get(at + 1..at + 1 + usize::from(len))?;
            *steps += items.len();
            let hit = if fold {
                tables::any_in_orbit(c, |x| {
                    items
                        .iter()
                        .any(|inst| matches!(inst, Inst::Item(item) if item.matches_folded(x)))
                })
            } else {
                items
                    .iter()
                    .any(|inst| matches!(inst, Inst::Item(item) if item.matches(c)))
            };
            return (hit != negated).then_some(pc + 1 + len);
        }
        Inst::Item(_) | Inst::Look(_) | Inst::Split(..) | Inst::Jmp(_) | Inst::Match => false,
    };
    ok.then_some(pc + 1)
}

/// Compiles `pattern` with the default capacity and tests it against `haystack`.
///
/// # Errors
///
/// As [`Regex::new`].
pub fn is_match(pattern: &str, haystack: &str) -> Result<bool, RegexError> {
    Regex::<DEFAULT_CAPACITY>::new(pattern).map(|re| re.is_match(haystack))
}

/// A set of program counters with O(1) insert, membership and clear.
struct SparseSet<const N: usize> {
    dense: [u16; N],
    sparse: [u16; N],
    len: usize,
}

impl<const N: usize> SparseSet<N> {
    fn new() -> Self {
        Self {
            dense: [0; N],
            sparse: [0; N],
            len: 0,
        }
    }

    fn contains(&self, pc: u16) -> bool {
        self.sparse.get(usize::from(pc)).is_some_and(|&i| {
            usize::from(i) < self.len && self.dense.get(usize::from(i)) == Some(&pc)
        })
    }

    /// Inserts `pc`; `false` if it was already present (or out of range).
    fn insert(&mut self, pc: u16) -> bool {
        if self.contains(pc) {
            return false;
        }
        let (Some(d), Some(s), Ok(i)) = (
            self.dense.get_mut(self.len),
            self.sparse.get_mut(usize::from(pc)),
            u16::try_from(self.len),
        ) else {
            return false;
        };
        *d = pc;
        *s = i;
        self.len += 1;
        true
    }

    fn get(&self, i: usize) -> Option<u16> {
        self.dense.get(..self.len)?.get(i).copied()
    }

    fn clear(&mut self) {
        self.len = 0;
    }
}

/// Inserts `pc` into `set` and, if it is new, onto the work stack (at most `N` entries, since
/// each program counter enters a set once).
fn push<const N: usize>(
    set: &mut SparseSet<N>,
    stack: &mut [u16; N],
    sp: &mut usize,
    steps: &mut usize,
    pc: u16,
) {
    if set.insert(pc) {
        *steps += 1;
        if let Some(slot) = stack.get_mut(*sp) {
            *slot = pc;
            *sp += 1;
        }
    }
}

struct Vm<'a, const N: usize> {
    prog: &'a [Inst],
    cur: SparseSet<N>,
    next: SparseSet<N>,
    stack: [u16; N],
    steps: usize,
}

impl<const N: usize> Vm<'_, N> {
    fn run(&mut self, haystack: &str, anchored: bool) -> bool {
        let mut chars = haystack.chars();
        let mut prev: Option<char> = None;
        let mut at: Option<char> = chars.next();
        // A search whose program starts by consuming a character: with no thread alive, a
        // position where that first instruction fails starts nothing, so skip it without the
        // thread-list work (most positions, for a pattern such as `[02468]$`).
        let skip = !anchored
            && matches!(
                self.prog.first(),
                Some(
                    Inst::Char(_)
                        | Inst::CharFold(_)
                        | Inst::Any
                        | Inst::AnyExceptNewline
                        | Inst::Perl(_)
                        | Inst::Class { .. }
                )
            );
        loop {
            if skip && self.cur.len == 0 {
                while let Some(c) = at {
                    self.steps += 1;
                    if self.step(0, c).is_some() {
                        break;
                    }
                    prev = Some(c);
                    at = chars.next();
                }
            }
            // Start a new match attempt here (search semantics).
            if (prev.is_none() || !anchored) && self.add(true, 0, prev, at) {
                return true;
            }
            let Some(c) = at else {
                return false;
            };
            if anchored && self.cur.len == 0 {
                return false;
            }
            let after = chars.next();
            self.next.clear();
            let mut i = 0;
            while let Some(pc) = self.cur.get(i) {
                i += 1;
                self.steps += 1;
                if let Some(target) = self.step(pc, c) {
                    if self.add(false, target, Some(c), after) {
                        return true;
                    }
                }
            }
            core::mem::swap(&mut self.cur, &mut self.next);
            prev = Some(c);
            at = after;
        }
    }

    /// Where the thread at `pc` continues after consuming `c`, if it can.
    fn step(&mut self, pc: u16, c: char) -> Option<u16> {
        step(self.prog, pc, c, &mut self.steps)
    }

    /// Adds `pc` and everything reachable from it without consuming input to the current
    /// (`into_cur`) or next set, evaluating assertions between `prev` and `next`. Returns
    /// whether `Match` was reached.
    fn add(&mut self, into_cur: bool, pc: u16, prev: Option<char>, next: Option<char>) -> bool {
        let Self {
            prog,
            cur,
            next: next_set,
            stack,
            steps,
        } = self;
        let set = if into_cur { cur } else { next_set };
        let mut sp = 0usize;
        push(set, stack, &mut sp, steps, pc);
        while sp > 0 {
            sp -= 1;
            let Some(&pc) = stack.get(sp) else {
                break;
            };
            match prog.get(usize::from(pc)) {
                Some(Inst::Match) => return true,
                Some(&Inst::Jmp(t)) => push(set, stack, &mut sp, steps, t),
                Some(&Inst::Split(a, b)) => {
                    push(set, stack, &mut sp, steps, b);
                    push(set, stack, &mut sp, steps, a);
                }
                Some(&Inst::Look(look)) if look.holds(prev, next) => {
                    push(set, stack, &mut sp, steps, pc + 1);
                }
                _ => {}
            }
        }
        false
    }
}

// The compact profile refuses most of these patterns; `tests/flags` checks it instead.
#[cfg(all(test, not(feature = "compact")))]
mod tests {
    use super::*;

    fn m(pattern: &str, haystack: &str) -> bool {
        Regex::<256>::new(pattern)
            .unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
            .is_match(haystack)
    }

    fn err(pattern: &str) -> RegexError {
        match Regex::<256>::new(pattern) {
            Ok(_) => panic!("{pattern:?} compiled"),
            Err(e) => e,
        }
    }

    #[test]
    fn literals_and_search() {
        assert!(m("pro", "a pro plan"));
        assert!(!m("^pro$", "a pro plan"));
        assert!(!m("^pro$", "PRO"));
        assert!(m("", ""));
        assert!(m("", "é"));
        assert!(m("^$", ""));
        assert!(!m("^$", "x"));
        assert!(m("^é+$", "éé"));
        assert!(m("^.$", "😀"));
        assert!(m("^.$", "\r"));
        assert!(!m("^.$", "\n"));
        assert!(m("(?s)^.$", "\n"));
    }

    #[test]
    fn anchors_and_newlines() {
        assert!(!m("^foo$", "foo\n"));
        assert!(!m("foo$", "foo\r\n"));
        assert!(m("^a+", "aa\n"));
        assert!(m("(?m)^foo$", "bar\nfoo\nbaz"));
        assert!(!m("(?m)^foo$", "bar\nfoox"));
        assert!(m(r"\Afoo\z", "foo"));
        assert!(!m(r"\Afoo\z", "foo\n"));
        assert!(m("foo|bar$", "foo\n"));
        assert!(!m("^(?:foo|bar)$", "foo\n"));
    }

    #[test]
    fn classes() {
        assert!(m(r"^\d+$", "123"));
        assert!(m(r"^\d+$", "١"));
        assert!(m(r"^\D+$", "é"));
        assert!(m(r"^\w+$", "é١"));
        assert!(!m(r"^\W+$", "é١"));
        assert!(m(r"^\s$", "\u{2003}"));
        assert!(!m(r"^\s$", "\u{feff}"));
        assert!(m(r"^[\w.+-]+@example\.com$", "a.b+tag@example.com"));
        assert!(m(r"^[^a-c]$", "d"));
        assert!(!m(r"^[^a-c]$", "b"));
        assert!(m(r"^[]a]+$", "]a"));
        assert!(m(r"^[-a]+$", "-a"));
        assert!(m(r"^[a-]+$", "-a"));
        assert!(m(r"^[[:alpha:][:digit:]]+$", "ab1"));
        assert!(!m(r"^[[:^alpha:]]$", "a"));
        assert!(m(r"^[a[bc]]+$", "abc"));
        assert!(m(r"^[\x41-\x{5A}]$", "Q"));
    }

    #[test]
    fn repetition() {
        assert!(m("^(?:ab|cd){2,3}$", "abcdab"));
        assert!(!m("^(?:ab|cd){2,3}$", "ab"));
        assert!(m("^a{3}$", "aaa"));
        assert!(!m("^a{3}$", "aaaa"));
        assert!(m("^a{2,}$", "aaaaa"));
        assert!(!m("^a{2,}$", "a"));
        assert!(m("^a{0}$", ""));
        assert!(m("^(a*)*$", "aaa"));
        assert!(m("^(a|aa)*b$", "aaaab"));
        assert!(m("^(?:)*$", ""));
        assert!(m("^()+x$", "x"));
        assert!(m("^a*?$", "aa"));
        assert!(m("^(?:a{1,2}){2}$", "aaa"));
    }

    #[test]
    fn case_insensitive() {
        assert!(m("(?i)^foo$", "FOO"));
        assert!(m("(?i)k", "\u{212A}"));
        assert!(m("(?i)^[a-z]+$", "ABC"));
        assert!(!m("(?i)^[^a]$", "A"));
        assert!(m("(?i:a)b", "Ab"));
        assert!(!m("(?i:a)b", "AB"));
        assert!(m("a(?i)b|c", "C"));
        assert!(!m("(?i)a(?-i)b", "AB"));
    }

    #[test]
    fn word_boundaries() {
        assert!(m(r".*\bbot\b.*", "a bot here"));
        assert!(!m(r"\bbot\b", "robot"));
        assert!(m(r"\Bbot", "robot"));
        assert!(m(r"\bé", " é"));
    }

    #[test]
    fn errors() {
        assert_eq!(err("["), RegexError::Invalid);
        assert_eq!(err("[]"), RegexError::Invalid);
        assert_eq!(err("*foo$"), RegexError::Invalid);
        assert_eq!(err("(a|b$"), RegexError::Invalid);
        assert_eq!(err("a)"), RegexError::Invalid);
        assert_eq!(err("[z-a]"), RegexError::Invalid);
        assert_eq!(err("\\"), RegexError::Invalid);
        for p in [
            r"(a)\1",
            r"a(?=b)",
            r"(?<=a+)b",
            r"\p{L}",
            r"a++",
            r"a{,2}",
            r"{2}",
            r"[a&&b]",
            r"[\d-z]",
            r"\q",
            r"[\b]",
            r"^*",
            r"(?x)a",
            r"\<foo\>",
        ] {
            assert_eq!(err(p), RegexError::Unsupported, "{p}");
        }
        assert_eq!(err(r"\w{300}"), RegexError::TooBig);
        assert_eq!(err("a{1000}"), RegexError::TooBig);
        assert_eq!(Regex::<4>::new("abcd").unwrap_err(), RegexError::TooBig);
        let deep = "((((((((((((((((((a))))))))))))))))))";
        assert_eq!(err(deep), RegexError::TooBig);
    }

    #[test]
    fn empty_repetitions_of_huge_counts_are_cheap() {
        assert!(m("(?:){4294967295}", "x"));
        assert!(m("^(?:){0,4294967295}$", ""));
    }

    #[test]
    fn pathological_inputs_are_bounded() {
        let hay: heapless::String<256> = core::iter::repeat_n('a', 200).collect();
        for p in ["(a?){30}a{30}", "(x+x+)+y", "(a*)*b", "(a|aa)*b", "^(a+)+$"] {
            let re = Regex::<256>::new(p).unwrap();
            let (_, steps) = re.is_match_counting(&hay);
            assert!(steps <= re.max_steps(hay.len()), "{p}: {steps}");
        }
        let re = Regex::<256>::new("(a?){30}a{30}").unwrap();
        let mut h: heapless::String<64> = heapless::String::new();
        for _ in 0..30 {
            h.push('a').unwrap();
        }
        assert!(re.is_match(&h));
        assert!(!Regex::<256>::new("(x+x+)+y").unwrap().is_match(&hay));
    }

    #[test]
    fn sizes() {
        // The memory bounds in the module docs.
        assert_eq!(size_of::<Inst>(), 8);
        assert_eq!(size_of::<ast::Slot>(), 20);
    }
}
