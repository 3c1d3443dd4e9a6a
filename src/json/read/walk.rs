//! Walking an already validated document: the raw text of a value, and iterators over an
//! object's members and an array's elements.

use super::{ReadError, ReadErrorKind, Reader, Str, Token};

/// The raw text of the next value (after a key, or at an element position), trimmed of the
/// separators around it: for loaders that re-read parts of an already validated document.
///
/// # Errors
/// Whatever [`Reader::skip_value`] reports.
pub(crate) fn raw_value<'a>(r: &mut Reader<'a>) -> Result<&'a str, ReadError> {
    let start = r.offset();
    r.skip_value()?;
    value_text(r, start, r.offset())
}

/// The text of the value read between offsets `start` and `end` (taken before and after
/// reading it), without the separators and whitespace around it.
///
/// # Errors
/// [`ReadErrorKind::InvalidUtf8`] if the range is not text (it always is for a range the
/// reader has just read).
pub(crate) fn value_text<'a>(
    r: &Reader<'a>,
    start: usize,
    end: usize,
) -> Result<&'a str, ReadError> {
    let s = r
        .slice(start, end)
        .ok_or(ReadError::new(ReadErrorKind::InvalidUtf8, start))?;
    Ok(
        s.trim_start_matches(|c: char| c == ':' || c == ',' || c.is_ascii_whitespace())
            .trim_end_matches(|c: char| c.is_ascii_whitespace()),
    )
}

/// The members of a JSON object given as raw text: `(key, raw value)` pairs.
pub(crate) struct Members<'a> {
    r: Reader<'a>,
}

impl<'a> Members<'a> {
    /// `None` when `raw` is not an object.
    pub(crate) fn of(raw: &'a str) -> Result<Option<Self>, ReadError> {
        let mut r = Reader::of_str(raw);
        Ok((r.next()? == Some(Token::ObjectStart)).then_some(Self { r }))
    }

    /// The next member, or `None` at the end of the object.
    pub(crate) fn next(&mut self) -> Result<Option<(Str<'a>, &'a str)>, ReadError> {
        match self.r.next()? {
            Some(Token::Key(k)) => Ok(Some((k, raw_value(&mut self.r)?))),
            _ => Ok(None),
        }
    }
}

/// The elements of a JSON array given as raw text, each as its raw text.
pub(crate) struct Elements<'a> {
    r: Reader<'a>,
}

impl<'a> Elements<'a> {
    /// `None` when `raw` is not an array.
    pub(crate) fn of(raw: &'a str) -> Result<Option<Self>, ReadError> {
        let mut r = Reader::of_str(raw);
        Ok((r.next()? == Some(Token::ArrayStart)).then_some(Self { r }))
    }

    /// The next element, or `None` at the end of the array.
    pub(crate) fn next(&mut self) -> Result<Option<&'a str>, ReadError> {
        let start = self.r.offset();
        match self.r.next()? {
            Some(Token::ArrayEnd) | None => return Ok(None),
            Some(Token::ObjectStart | Token::ArrayStart) => self.r.skip_container()?,
            Some(_) => {}
        }
        value_text(&self.r, start, self.r.offset()).map(Some)
    }
}
