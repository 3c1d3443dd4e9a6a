//! Pattern text → syntax tree, in a fixed-capacity node array.
//!
//! The grammar follows `regex-syntax` 0.8 (the parser behind the `regex` crate). Where that
//! parser rejects a pattern, this one answers [`RegexError::Invalid`] only for plain structural
//! mistakes every engine rejects; everything it is unsure about is [`RegexError::Unsupported`]
//! (see the parent module's docs for the list and the reasons).
//!
//! Recursion (groups and nested classes) is bounded by [`MAX_NEST`].

use super::ast::{AsciiKind, Ast, Item, Look, Node, Perl, PerlKind, Slot, MAX_NEST, NONE};
use super::tables;
use super::RegexError;

/// Most named groups per pattern (names must be checked for duplicates without allocating).
const MAX_NAMES: usize = 8;

/// Flags that change how the pattern is read.
#[derive(Clone, Copy, Default)]
struct Flags {
    /// `(?i)`
    fold: bool,
    /// `(?m)`
    multi_line: bool,
    /// `(?s)`
    dot_newline: bool,
}

/// How a just-parsed atom may be quantified.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rep {
    /// An ordinary expression.
    Normal,
    /// A zero-width assertion: `regex` accepts `^*`, we leave repeated assertions to the server.
    Assertion,
    /// Already quantified: `a**`, `a++` (possessive in fancy-regex), `a{2}{3}`.
    Repeated,
}

#[derive(Clone, Copy)]
struct Pending {
    node: u16,
    rep: Rep,
}

/// A parsed escape sequence.
enum Esc {
    Char(char),
    Perl(Perl),
    Look(Look),
}

/// A class item before range handling.
enum Prim {
    Char(char),
    Perl(Perl),
}

/// Parses `pattern`.
pub(super) fn parse<const N: usize>(pattern: &str) -> Result<Ast<N>, RegexError> {
    let mut p = Parser::<N> {
        pat: pattern,
        pos: 0,
        flags: Flags::default(),
        slots: heapless::Vec::new(),
        names: [(0, 0); MAX_NAMES],
        n_names: 0,
    };
    let root = p.parse_alt(0)?;
    if p.peek().is_some() {
        // Only `)` stops the top-level alternation: a group that was never opened.
        return Err(RegexError::Invalid);
    }
    Ok(Ast {
        slots: p.slots,
        root,
    })
}

struct Parser<'p, const N: usize> {
    pat: &'p str,
    /// Byte offset of the next character.
    pos: usize,
    flags: Flags,
    slots: heapless::Vec<Slot, N>,
    /// Byte ranges of the group names seen so far.
    names: [(usize, usize); MAX_NAMES],
    n_names: usize,
}

impl<const N: usize> Parser<'_, N> {
    fn rest(&self) -> &str {
        self.pat.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn push(&mut self, node: Node) -> Result<u16, RegexError> {
        let id = u16::try_from(self.slots.len()).map_err(|_| RegexError::TooBig)?;
        if id == NONE {
            return Err(RegexError::TooBig);
        }
        self.slots
            .push(Slot { node, next: NONE })
            .map_err(|_| RegexError::TooBig)?;
        Ok(id)
    }

    fn link(&mut self, from: u16, to: u16) {
        if let Some(slot) = self.slots.get_mut(usize::from(from)) {
            slot.next = to;
        }
    }

    /// `concat ('|' concat)*`, up to a `)` or the end.
    fn parse_alt(&mut self, depth: usize) -> Result<u16, RegexError> {
        let first = self.parse_concat(depth)?;
        if self.peek() != Some('|') {
            return Ok(first);
        }
        let mut tail = first;
        while self.eat('|') {
            let branch = self.parse_concat(depth)?;
            self.link(tail, branch);
            tail = branch;
        }
        self.push(Node::Alt { first })
    }

    /// Quantified atoms up to `|`, `)` or the end.
    fn parse_concat(&mut self, depth: usize) -> Result<u16, RegexError> {
        let (mut first, mut tail, mut count) = (NONE, NONE, 0usize);
        let mut pending: Option<Pending> = None;
        loop {
            match self.peek() {
                None | Some('|' | ')') => break,
                Some(q @ ('*' | '+' | '?')) => {
                    self.bump();
                    let (min, max) = match q {
                        '*' => (0, None),
                        '+' => (1, None),
                        _ => (0, Some(1)),
                    };
                    // Nothing to repeat (start, after `|`, `(` or a flag directive): rejected
                    // by every engine.
                    let p = pending.ok_or(RegexError::Invalid)?;
                    pending = Some(self.repeat(p, min, max)?);
                }
                Some('{') => {
                    // `{` with nothing before it: regex rejects it, Oniguruma-style parsers
                    // read a literal. Leave it to the server.
                    let p = pending.ok_or(RegexError::Unsupported)?;
                    self.bump();
                    let (min, max) = self.parse_counted()?;
                    pending = Some(self.repeat(p, min, max)?);
                }
                Some(_) => {
                    if let Some(p) = pending.take() {
                        if first == NONE {
                            first = p.node;
                        } else {
                            self.link(tail, p.node);
                        }
                        tail = p.node;
                        count += 1;
                    }
                    pending = self.parse_atom(depth)?;
                }
            }
        }
        if let Some(p) = pending {
            if first == NONE {
                first = p.node;
            } else {
                self.link(tail, p.node);
            }
            count += 1;
        }
        match count {
            0 => self.push(Node::Empty),
            1 => Ok(first),
            _ => self.push(Node::Concat { first }),
        }
    }

    /// Wraps `p` in a repetition, then eats a lazy `?`.
    fn repeat(&mut self, p: Pending, min: u32, max: Option<u32>) -> Result<Pending, RegexError> {
        if p.rep != Rep::Normal {
            return Err(RegexError::Unsupported);
        }
        let node = self.push(Node::Repeat {
            child: p.node,
            min,
            max,
        })?;
        // Laziness does not change whether there is a match.
        self.eat('?');
        Ok(Pending {
            node,
            rep: Rep::Repeated,
        })
    }

    /// After `{`: `n}`, `n,}` or `n,m}` with decimal `n`, `m`.
    fn parse_counted(&mut self) -> Result<(u32, Option<u32>), RegexError> {
        let min = self.decimal()?;
        if self.eat('}') {
            return Ok((min, Some(min)));
        }
        if !self.eat(',') {
            return Err(RegexError::Unsupported);
        }
        if self.eat('}') {
            return Ok((min, None));
        }
        let max = self.decimal()?;
        if !self.eat('}') || max < min {
            return Err(RegexError::Unsupported);
        }
        Ok((min, Some(max)))
    }

    /// One or more ASCII digits fitting a `u32`. Anything else (spaces, `{,n}`, overflow) is
    /// left to the server.
    fn decimal(&mut self) -> Result<u32, RegexError> {
        let mut value: u32 = 0;
        let mut digits = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            self.bump();
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(d))
                .ok_or(RegexError::Unsupported)?;
            digits += 1;
        }
        if digits == 0 {
            return Err(RegexError::Unsupported);
        }
        Ok(value)
    }

    fn literal(&mut self, c: char) -> Result<u16, RegexError> {
        if self.flags.fold && tables::may_fold(c) {
            self.push(Node::CharFold(c))
        } else {
            self.push(Node::Char(c))
        }
    }

    /// One atom; `None` for a flag directive such as `(?i)`.
    fn parse_atom(&mut self, depth: usize) -> Result<Option<Pending>, RegexError> {
        let normal = |node| {
            Some(Pending {
                node,
                rep: Rep::Normal,
            })
        };
        let assertion = |node| {
            Some(Pending {
                node,
                rep: Rep::Assertion,
            })
        };
        let Some(c) = self.bump() else {
            return Ok(None);
        };
        match c {
            '(' => self.parse_group(depth),
            '[' => self.parse_class(depth).map(normal),
            '.' => {
                let newline = self.flags.dot_newline;
                self.push(Node::Dot { newline }).map(normal)
            }
            '^' => {
                let look = if self.flags.multi_line {
                    Look::StartLine
                } else {
                    Look::Start
                };
                self.push(Node::Look(look)).map(assertion)
            }
            '$' => {
                let look = if self.flags.multi_line {
                    Look::EndLine
                } else {
                    Look::End
                };
                self.push(Node::Look(look)).map(assertion)
            }
            '\\' => match self.parse_escape(false)? {
                Esc::Char(c) => self.literal(c).map(normal),
                Esc::Perl(p) => self.push(Node::Perl(p)).map(normal),
                Esc::Look(l) => self.push(Node::Look(l)).map(assertion),
            },
            c => self.literal(c).map(normal),
        }
    }

    /// After `(`.
    fn parse_group(&mut self, depth: usize) -> Result<Option<Pending>, RegexError> {
        if depth >= MAX_NEST {
            return Err(RegexError::TooBig);
        }
        let saved = self.flags;
        if self.eat('?') {
            match (self.peek(), self.peek_at(1)) {
                (Some(':'), _) => {
                    self.bump();
                }
                (Some('P'), Some('<')) => {
                    self.pos += 2;
                    self.parse_name()?;
                }
                // `(?<=` and `(?<!` are look-behind (fancy-regex only).
                (Some('<'), Some('=' | '!')) => return Err(RegexError::Unsupported),
                (Some('<'), _) => {
                    self.bump();
                    self.parse_name()?;
                }
                _ => {
                    if self.parse_flags()? {
                        // `(?flags)`: applies to the rest of the enclosing group.
                        return Ok(None);
                    }
                }
            }
        }
        let body = self.parse_alt(depth + 1)?;
        if !self.eat(')') {
            return Err(RegexError::Invalid);
        }
        self.flags = saved;
        Ok(Some(Pending {
            node: body,
            rep: Rep::Normal,
        }))
    }

    /// After `(?`: flags up to `)` (returns `true`) or `:` (returns `false`). Only `i`, `m`,
    /// `s`, `U` and `u` (on) are supported. Other letters, `(?=`, `(?!`, `(?>`, `(?P=`, `(?#`
    /// and every malformed flag group are left to the server.
    fn parse_flags(&mut self) -> Result<bool, RegexError> {
        let mut negate = false;
        let mut seen = 0u8;
        let mut after_negate = 0usize;
        loop {
            let c = self.bump().ok_or(RegexError::Unsupported)?;
            let bit = match c {
                ')' | ':' => {
                    if seen == 0 || (negate && after_negate == 0) {
                        return Err(RegexError::Unsupported);
                    }
                    return Ok(c == ')');
                }
                '-' if !negate => {
                    negate = true;
                    continue;
                }
                'i' => 1,
                'm' => 2,
                's' => 4,
                'U' => 8,
                'u' => 16,
                _ => return Err(RegexError::Unsupported),
            };
            if seen & bit != 0 {
                return Err(RegexError::Unsupported);
            }
            seen |= bit;
            if negate {
                after_negate += 1;
            }
            let on = !negate;
            match c {
                'i' => self.flags.fold = on,
                'm' => self.flags.multi_line = on,
                's' => self.flags.dot_newline = on,
                // Swapping greediness does not change whether there is a match.
                'U' => {}
                // `(?-u)`: byte-oriented classes and assertions.
                _ if !on => return Err(RegexError::Unsupported),
                _ => {}
            }
        }
    }

    /// A capture group name up to `>`. Only ASCII names (`[_A-Za-z][_.\[\]A-Za-z0-9]*`),
    /// each used once, are accepted; anything else is left to the server.
    fn parse_name(&mut self) -> Result<(), RegexError> {
        let start = self.pos;
        loop {
            match self.bump() {
                Some('>') => break,
                Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
                Some(c) if self.pos - 1 > start && matches!(c, '0'..='9' | '.' | '[' | ']') => {}
                _ => return Err(RegexError::Unsupported),
            }
        }
        let end = self.pos - 1;
        if end == start {
            return Err(RegexError::Unsupported);
        }
        let name = self.pat.get(start..end);
        for &(s, e) in self.names.get(..self.n_names).unwrap_or_default() {
            if self.pat.get(s..e) == name {
                return Err(RegexError::Unsupported);
            }
        }
        let slot = self
            .names
            .get_mut(self.n_names)
            .ok_or(RegexError::Unsupported)?;
        *slot = (start, end);
        self.n_names += 1;
        Ok(())
    }

    /// After `\`.
    fn parse_escape(&mut self, in_class: bool) -> Result<Esc, RegexError> {
        // A trailing `\`.
        let c = self.bump().ok_or(RegexError::Invalid)?;
        let perl = |kind, negated| Ok(Esc::Perl(Perl { kind, negated }));
        match c {
            'd' => perl(PerlKind::Digit, false),
            'D' => perl(PerlKind::Digit, true),
            's' => perl(PerlKind::Space, false),
            'S' => perl(PerlKind::Space, true),
            'w' => perl(PerlKind::Word, false),
            'W' => perl(PerlKind::Word, true),
            'a' => Ok(Esc::Char('\x07')),
            'f' => Ok(Esc::Char('\x0C')),
            't' => Ok(Esc::Char('\t')),
            'n' => Ok(Esc::Char('\n')),
            'r' => Ok(Esc::Char('\r')),
            'v' => Ok(Esc::Char('\x0B')),
            'x' => self.hex(2).map(Esc::Char),
            'u' => self.hex(4).map(Esc::Char),
            'U' => self.hex(8).map(Esc::Char),
            'A' if !in_class => Ok(Esc::Look(Look::Start)),
            'z' if !in_class => Ok(Esc::Look(Look::End)),
            // `\b{start}` and friends, or a counted repetition of `\b`: left to the server.
            'b' | 'B' if !in_class && self.peek() == Some('{') => Err(RegexError::Unsupported),
            'b' if !in_class => Ok(Esc::Look(Look::WordBoundary)),
            'B' if !in_class => Ok(Esc::Look(Look::NotWordBoundary)),
            // Escapable: ASCII that is neither a letter, a digit, `<` nor `>`.
            c if c.is_ascii() && !c.is_ascii_alphanumeric() && c != '<' && c != '>' => {
                Ok(Esc::Char(c))
            }
            // `\1` (back-reference), `\p{..}`, `\<`, `\e`, `\h`, `\Z`, `\K`, `\G`, `[\b]`, …
            _ => Err(RegexError::Unsupported),
        }
    }

    /// After `\x`, `\u` or `\U`: exactly `digits` hex digits, or `{hex+}`.
    fn hex(&mut self, digits: usize) -> Result<char, RegexError> {
        let braced = self.eat('{');
        let mut value: u32 = 0;
        let mut n = 0usize;
        loop {
            if !braced && n == digits {
                break;
            }
            let c = self.bump().ok_or(RegexError::Unsupported)?;
            if braced && c == '}' {
                break;
            }
            let d = c.to_digit(16).ok_or(RegexError::Unsupported)?;
            value = value
                .checked_mul(16)
                .and_then(|v| v.checked_add(d))
                .ok_or(RegexError::Unsupported)?;
            n += 1;
        }
        if n == 0 {
            return Err(RegexError::Unsupported);
        }
        char::from_u32(value).ok_or(RegexError::Unsupported)
    }

    /// After `[`: the items, then the class node.
    fn parse_class(&mut self, depth: usize) -> Result<u16, RegexError> {
        if depth >= MAX_NEST {
            return Err(RegexError::TooBig);
        }
        let negated = self.eat('^');
        let first = self.slots.len();
        self.class_items(depth)?;
        let len = self.slots.len() - first;
        let first = u16::try_from(first).map_err(|_| RegexError::TooBig)?;
        let len = u16::try_from(len).map_err(|_| RegexError::TooBig)?;
        let fold = self.flags.fold;
        self.push(Node::Class {
            first,
            len,
            negated,
            fold,
        })
    }

    /// Items up to and including the closing `]`. Nested classes are flattened into the same
    /// item run (a union), which is why a negated nested class is not supported.
    fn class_items(&mut self, depth: usize) -> Result<(), RegexError> {
        // As in regex-syntax: leading `-`s are literals; with none, a leading `]` is a literal.
        // Neither starts a range.
        let mut leading = false;
        while self.eat('-') {
            self.push(Node::Item(Item::Range('-', '-')))?;
            leading = true;
        }
        if !leading && self.eat(']') {
            self.push(Node::Item(Item::Range(']', ']')))?;
        }
        loop {
            // Running out of pattern: an unclosed class.
            let c = self.peek().ok_or(RegexError::Invalid)?;
            if c == ']' {
                self.bump();
                return Ok(());
            }
            if c == '[' {
                if self.peek_at(1) == Some(':') {
                    self.ascii_class()?;
                    continue;
                }
                self.bump();
                if depth + 1 >= MAX_NEST {
                    return Err(RegexError::TooBig);
                }
                if self.peek() == Some('^') {
                    return Err(RegexError::Unsupported);
                }
                self.class_items(depth + 1)?;
                continue;
            }
            let start = self.class_prim()?;
            if self.peek() == Some('-') && !matches!(self.peek_at(1), Some(']') | None) {
                self.bump();
                // `--` is the difference operator; `[a-[` is not a range we handle.
                if matches!(self.peek(), Some('-' | '[')) {
                    return Err(RegexError::Unsupported);
                }
                let end = self.class_prim()?;
                match (start, end) {
                    (Prim::Char(a), Prim::Char(b)) => {
                        if a > b {
                            return Err(RegexError::Invalid);
                        }
                        self.push(Node::Item(Item::Range(a, b)))?;
                    }
                    // `[\d-z]`: regex rejects a class as a range endpoint; leave it to the
                    // server.
                    _ => return Err(RegexError::Unsupported),
                }
            } else {
                let item = match start {
                    Prim::Char(a) => Item::Range(a, a),
                    Prim::Perl(p) => Item::Perl(p),
                };
                self.push(Node::Item(item))?;
            }
        }
    }

    /// A literal, an escape or a Perl class inside brackets.
    fn class_prim(&mut self) -> Result<Prim, RegexError> {
        let c = self.bump().ok_or(RegexError::Invalid)?;
        if c == '\\' {
            return match self.parse_escape(true)? {
                Esc::Char(c) => Ok(Prim::Char(c)),
                Esc::Perl(p) => Ok(Prim::Perl(p)),
                Esc::Look(_) => Err(RegexError::Unsupported),
            };
        }
        // `&&`, `--`, `~~`: class set operations (intersection, difference, symmetric
        // difference). Valid in regex, not implemented here.
        if matches!(c, '&' | '-' | '~') && self.peek() == Some(c) {
            return Err(RegexError::Unsupported);
        }
        Ok(Prim::Char(c))
    }

    /// At `[:`: an ASCII class such as `[:alpha:]` or `[:^digit:]`.
    fn ascii_class(&mut self) -> Result<(), RegexError> {
        let rest = self.rest();
        let body = rest.get(2..).unwrap_or_default();
        let (negated, body) = match body.strip_prefix('^') {
            Some(b) => (true, b),
            None => (false, body),
        };
        let end = body.find(":]").ok_or(RegexError::Unsupported)?;
        let name = body.get(..end).unwrap_or_default();
        // Anything else would be read by regex as a nested class starting with `:`.
        let kind = AsciiKind::from_name(name).ok_or(RegexError::Unsupported)?;
        let consumed = 2 + usize::from(negated) + end + 2;
        self.pos += consumed;
        self.push(Node::Item(Item::Ascii(kind, negated)))?;
        Ok(())
    }
}
