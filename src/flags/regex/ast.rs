//! The syntax tree the parser builds and the compiler reads: nodes in a fixed-capacity array,
//! and the character-class items and assertions both of them (and the matcher) use.

use super::tables;

/// "No node": ends sibling lists.
pub(super) const NONE: u16 = u16::MAX;

/// Deepest nesting of groups and bracketed classes accepted. Deeper patterns are
/// [`RegexError::TooBig`](super::RegexError::TooBig) (`regex-syntax` itself allows 250).
pub const MAX_NEST: usize = 16;

/// A syntax tree node.
#[derive(Clone, Copy, Debug)]
pub(super) enum Node {
    /// Matches the empty string.
    Empty,
    /// One literal character.
    Char(char),
    /// One literal character, case-insensitively (`c` has a non-trivial folding orbit).
    CharFold(char),
    /// `.`; `newline` when `(?s)` is on.
    Dot { newline: bool },
    /// `\d \D \s \S \w \W` outside brackets.
    Perl(Perl),
    /// A bracketed class; its items are the `len` nodes starting at `first`.
    Class {
        first: u16,
        len: u16,
        negated: bool,
        fold: bool,
    },
    /// One item of a bracketed class (only referenced through [`Node::Class`]).
    Item(Item),
    /// A zero-width assertion.
    Look(Look),
    /// A sequence; children linked through [`Slot::next`].
    Concat { first: u16 },
    /// An alternation; children linked through [`Slot::next`].
    Alt { first: u16 },
    /// `child{min,max}`; `max: None` is unbounded.
    Repeat {
        child: u16,
        min: u32,
        max: Option<u32>,
    },
}

/// A node and its next sibling.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub(super) node: Node,
    pub(super) next: u16,
}

/// A parsed pattern.
pub(super) struct Ast<const N: usize> {
    pub(super) slots: heapless::Vec<Slot, N>,
    pub(super) root: u16,
}

impl<const N: usize> Ast<N> {
    pub(super) fn node(&self, id: u16) -> Option<Node> {
        self.slots.get(usize::from(id)).map(|s| s.node)
    }

    pub(super) fn next(&self, id: u16) -> u16 {
        self.slots.get(usize::from(id)).map_or(NONE, |s| s.next)
    }
}

/// Which Perl class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PerlKind {
    /// `\d`: Unicode `Nd`.
    Digit,
    /// `\s`: Unicode `White_Space`.
    Space,
    /// `\w`: Unicode word characters as `regex` defines them.
    Word,
}

/// `\d \D \s \S \w \W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Perl {
    pub(super) kind: PerlKind,
    pub(super) negated: bool,
}

impl Perl {
    #[inline]
    pub(super) fn matches(self, c: char) -> bool {
        let hit = match self.kind {
            PerlKind::Digit => tables::is_digit(c),
            PerlKind::Space => tables::is_space(c),
            PerlKind::Word => tables::is_word(c),
        };
        hit != self.negated
    }
}

/// POSIX classes allowed inside brackets: `[[:alpha:]]`. Always ASCII-only in `regex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AsciiKind {
    Alnum,
    Alpha,
    Ascii,
    Blank,
    Cntrl,
    Digit,
    Graph,
    Lower,
    Print,
    Punct,
    Space,
    Upper,
    Word,
    Xdigit,
}

impl AsciiKind {
    pub(super) fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "alnum" => Self::Alnum,
            "alpha" => Self::Alpha,
            "ascii" => Self::Ascii,
            "blank" => Self::Blank,
            "cntrl" => Self::Cntrl,
            "digit" => Self::Digit,
            "graph" => Self::Graph,
            "lower" => Self::Lower,
            "print" => Self::Print,
            "punct" => Self::Punct,
            "space" => Self::Space,
            "upper" => Self::Upper,
            "word" => Self::Word,
            "xdigit" => Self::Xdigit,
            _ => return None,
        })
    }

    fn matches(self, c: char) -> bool {
        match self {
            Self::Alnum => c.is_ascii_alphanumeric(),
            Self::Alpha => c.is_ascii_alphabetic(),
            Self::Ascii => c.is_ascii(),
            Self::Blank => c == ' ' || c == '\t',
            Self::Cntrl => matches!(c, '\0'..='\x1F' | '\x7F'),
            Self::Digit => c.is_ascii_digit(),
            Self::Graph => matches!(c, '!'..='~'),
            Self::Lower => c.is_ascii_lowercase(),
            Self::Print => matches!(c, ' '..='~'),
            Self::Punct => matches!(c, '!'..='/' | ':'..='@' | '['..='`' | '{'..='~'),
            Self::Space => matches!(c, '\t' | '\n' | '\x0B' | '\x0C' | '\r' | ' '),
            Self::Upper => c.is_ascii_uppercase(),
            Self::Word => c.is_ascii_alphanumeric() || c == '_',
            Self::Xdigit => c.is_ascii_hexdigit(),
        }
    }
}

/// One member of a bracketed class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Item {
    /// `a-z` (a single character is `a-a`).
    Range(char, char),
    /// `\d` and friends.
    Perl(Perl),
    /// `[:alpha:]` (`true`: `[:^alpha:]`).
    Ascii(AsciiKind, bool),
}

impl Item {
    #[inline]
    pub(super) fn matches(self, c: char) -> bool {
        match self {
            Self::Range(lo, hi) => lo <= c && c <= hi,
            Self::Perl(p) => p.matches(c),
            Self::Ascii(kind, negated) => kind.matches(c) != negated,
        }
    }

    /// Membership inside a case-insensitive class. regex-syntax folds a POSIX class before
    /// negating it (`(?i)[[:^lower:]]` excludes `A`), so a negated one tests the whole orbit.
    /// Perl classes are closed under folding, ranges are folded by the caller.
    pub(super) fn matches_folded(self, c: char) -> bool {
        match self {
            Self::Ascii(kind, true) => !tables::any_in_orbit(c, |x| kind.matches(x)),
            _ => self.matches(c),
        }
    }
}

/// Zero-width assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// `^` (without `m`), `\A`.
    Start,
    /// `$` (without `m`), `\z`: only the very end, never before a final `\n`.
    End,
    /// `(?m)^`: the start, or just after `\n`.
    StartLine,
    /// `(?m)$`: the end, or just before `\n`.
    EndLine,
    /// `\b`: Unicode word boundary.
    WordBoundary,
    /// `\B`.
    NotWordBoundary,
}

impl Look {
    /// Whether the assertion holds between `prev` and `next` (`None`: the haystack's edge).
    pub(super) fn holds(self, prev: Option<char>, next: Option<char>) -> bool {
        let word = |c: Option<char>| c.is_some_and(tables::is_word);
        match self {
            Self::Start => prev.is_none(),
            Self::End => next.is_none(),
            Self::StartLine => matches!(prev, None | Some('\n')),
            Self::EndLine => matches!(next, None | Some('\n')),
            Self::WordBoundary => word(prev) != word(next),
            Self::NotWordBoundary => word(prev) == word(next),
        }
    }
}
