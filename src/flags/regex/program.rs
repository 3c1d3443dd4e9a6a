//! The compiled program (a Thompson NFA in a fixed-capacity array) and the compiler that
//! builds it from the syntax tree.

use super::ast::{Ast, Item, Look, Node, Perl, PerlKind, MAX_NEST, NONE};
use super::RegexError;

/// One program instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Inst {
    /// Consume this character.
    Char(char),
    /// Consume any member of this character's case folding orbit.
    CharFold(char),
    /// `(?s).`
    Any,
    /// `.`: anything but `\n`.
    AnyExceptNewline,
    /// `\d`, `\W`, …
    Perl(Perl),
    /// A bracketed class; its `len` items follow as [`Inst::Item`].
    Class { len: u16, negated: bool, fold: bool },
    /// Data for the preceding [`Inst::Class`]; never executed.
    Item(Item),
    /// Continue only if the assertion holds here.
    Look(Look),
    /// Continue at both targets.
    Split(u16, u16),
    /// Continue at the target.
    Jmp(u16),
    /// A match.
    Match,
}

/// Whether the program consults the Unicode data for some non-ASCII character: `\d \s \w`
/// (in or out of a class), `\b \B`, and case-insensitive characters and classes. Without that
/// data (the `compact` feature), such a program decides only ASCII haystacks.
pub(super) fn needs_tables(prog: &[Inst]) -> bool {
    prog.iter().any(|inst| {
        matches!(
            inst,
            Inst::CharFold(_)
                | Inst::Perl(_)
                | Inst::Class { fold: true, .. }
                | Inst::Item(Item::Perl(_))
                | Inst::Look(Look::WordBoundary | Look::NotWordBoundary)
        )
    })
}

/// The `regex` crate's default `size_limit` on a compiled program, in bytes. A pattern over it
/// is rejected by `Regex::new`, so the server says `false`.
pub(super) const REGEX_SIZE_LIMIT: u64 = 10 * (1 << 20);

/// Our budget against [`REGEX_SIZE_LIMIT`]: the per-instruction costs below over-estimate what
/// the `regex` crate's compiler spends (measured against regex 1.13: `\w` costs about 50 KiB,
/// so `\w{209}` is accepted and `\w{210}` rejected), and a pattern over budget is reported as
/// [`RegexError::TooBig`] rather than evaluated.
const SIZE_BUDGET: u64 = 10_000_000;
const _: () = assert!(SIZE_BUDGET < REGEX_SIZE_LIMIT);

fn perl_cost(p: Perl) -> u64 {
    match p.kind {
        PerlKind::Word => 64 * 1024,
        PerlKind::Digit => 16 * 1024,
        PerlKind::Space => 4 * 1024,
    }
}

/// Upper bound of what one instruction costs in the `regex` crate's compiled program.
fn cost(inst: Inst) -> u64 {
    match inst {
        Inst::Char(_) | Inst::Look(_) | Inst::Split(..) | Inst::Jmp(_) => 256,
        Inst::CharFold(_) => 512,
        Inst::Any | Inst::AnyExceptNewline => 2048,
        Inst::Perl(p) | Inst::Item(Item::Perl(p)) => perl_cost(p),
        // Case folding can add up to every folding character to a class.
        Inst::Class { fold: true, .. } => 128 * 1024,
        Inst::Class { fold: false, .. } | Inst::Item(_) => 2048,
        Inst::Match => 0,
    }
}

/// Compiles `ast` into `prog` (which must be empty).
pub(super) fn compile<const N: usize>(
    ast: &Ast<N>,
    prog: &mut heapless::Vec<Inst, N>,
) -> Result<(), RegexError> {
    let mut c = Compiler { ast, prog, cost: 0 };
    c.emit(ast.root, 0)?;
    c.push(Inst::Match)
}

/// Deepest syntax tree the compiler walks: each group level adds at most an alternation, a
/// concatenation and a repetition.
const MAX_TREE_DEPTH: usize = 3 * (MAX_NEST + 1) + 2;

struct Compiler<'a, const N: usize> {
    ast: &'a Ast<N>,
    prog: &'a mut heapless::Vec<Inst, N>,
    cost: u64,
}

impl<const N: usize> Compiler<'_, N> {
    fn pc(&self) -> u16 {
        // The capacity check in `Regex::new` keeps every index below `u16::MAX`.
        u16::try_from(self.prog.len()).unwrap_or(NONE)
    }

    fn push(&mut self, inst: Inst) -> Result<(), RegexError> {
        self.cost += cost(inst);
        if self.cost > SIZE_BUDGET {
            return Err(RegexError::TooBig);
        }
        self.prog.push(inst).map_err(|_| RegexError::TooBig)
    }

    fn set(&mut self, pc: u16, inst: Inst) {
        if let Some(slot) = self.prog.get_mut(usize::from(pc)) {
            *slot = inst;
        }
    }

    fn get(&self, pc: u16) -> Option<Inst> {
        self.prog.get(usize::from(pc)).copied()
    }

    /// Points every instruction of a patch chain at `target`. Chains run through the `Jmp`
    /// target or the second `Split` target and end at [`NONE`].
    fn patch(&mut self, mut chain: u16, target: u16) {
        while chain != NONE {
            match self.get(chain) {
                Some(Inst::Jmp(next)) => {
                    self.set(chain, Inst::Jmp(target));
                    chain = next;
                }
                Some(Inst::Split(a, next)) => {
                    self.set(chain, Inst::Split(a, target));
                    chain = next;
                }
                _ => return,
            }
        }
    }

    fn emit(&mut self, id: u16, depth: usize) -> Result<(), RegexError> {
        if depth > MAX_TREE_DEPTH {
            return Err(RegexError::TooBig);
        }
        let node = self.ast.node(id).ok_or(RegexError::TooBig)?;
        match node {
            Node::Empty | Node::Item(_) => Ok(()),
            Node::Char(c) => self.push(Inst::Char(c)),
            Node::CharFold(c) => self.push(Inst::CharFold(c)),
            Node::Dot { newline: true } => self.push(Inst::Any),
            Node::Dot { newline: false } => self.push(Inst::AnyExceptNewline),
            Node::Perl(p) => self.push(Inst::Perl(p)),
            Node::Look(l) => self.push(Inst::Look(l)),
            Node::Class {
                first,
                len,
                negated,
                fold,
            } => {
                self.push(Inst::Class { len, negated, fold })?;
                for i in 0..len {
                    let item = first.checked_add(i).and_then(|j| self.ast.node(j));
                    match item {
                        Some(Node::Item(item)) => self.push(Inst::Item(item))?,
                        _ => return Err(RegexError::TooBig),
                    }
                }
                Ok(())
            }
            Node::Concat { first } => {
                let mut cur = first;
                while cur != NONE {
                    self.emit(cur, depth + 1)?;
                    cur = self.ast.next(cur);
                }
                Ok(())
            }
            Node::Alt { first } => {
                let mut jumps = NONE;
                let mut cur = first;
                loop {
                    let next = self.ast.next(cur);
                    if next == NONE {
                        self.emit(cur, depth + 1)?;
                        break;
                    }
                    let split = self.pc();
                    self.push(Inst::Split(split + 1, NONE))?;
                    self.emit(cur, depth + 1)?;
                    let jmp = self.pc();
                    self.push(Inst::Jmp(jumps))?;
                    jumps = jmp;
                    let here = self.pc();
                    self.patch(split, here);
                    cur = next;
                }
                let end = self.pc();
                self.patch(jumps, end);
                Ok(())
            }
            Node::Repeat { child, min, max } => self.emit_repeat(child, min, max, depth + 1),
        }
    }

    fn emit_repeat(
        &mut self,
        child: u16,
        min: u32,
        max: Option<u32>,
        depth: usize,
    ) -> Result<(), RegexError> {
        // Mandatory copies. With no upper bound the last one loops: `x{n,}` is `x{n-1}x+`.
        for k in 0..min {
            let before = self.pc();
            self.emit(child, depth)?;
            if self.pc() == before {
                // An empty child: every count means the same.
                return Ok(());
            }
            if max.is_none() && k + 1 == min {
                let after = self.pc();
                return self.push(Inst::Split(before, after + 1));
            }
        }
        match max {
            None => {
                // `x*`
                let split = self.pc();
                self.push(Inst::Split(split + 1, NONE))?;
                self.emit(child, depth)?;
                self.push(Inst::Jmp(split))?;
                let end = self.pc();
                self.patch(split, end);
            }
            Some(max) => {
                // `x{0,m}` as nested options, each skipping straight to the end.
                let mut chain = NONE;
                for _ in min..max {
                    let split = self.pc();
                    self.push(Inst::Split(split + 1, chain))?;
                    chain = split;
                    self.emit(child, depth)?;
                    if self.pc() == split + 1 {
                        break;
                    }
                }
                let end = self.pc();
                self.patch(chain, end);
            }
        }
        Ok(())
    }
}
