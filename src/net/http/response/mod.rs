//! The sans-IO, push-based response parser and what it produces.

use core::fmt;

use super::body::{decode, take_len, BodyOut, BodySink, Chunk, Framing, SizeLine};
use super::header::{parse_head, ContentEncoding, Meta, RetryAfter};
use super::request::Method;
use super::{ETag, HttpError};
use crate::time::UnixMillis;

/// A complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Response<'b> {
    /// The status code (100-599; never 1xx: interim responses are skipped).
    pub status: u16,
    /// `Retry-After`, when present and valid (invalid values are ignored). An HTTP-date is
    /// turned into a delay from the response's `Date` when it has one
    /// ([`RetryAfter::relative_to`]).
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, when present, ASCII and at most [`ETAG_MAX`](super::ETAG_MAX) bytes.
    pub etag: Option<ETag>,
    /// The server's `Date`, when present and valid: a wall clock for devices without one.
    pub date: Option<UnixMillis>,
    /// `Content-Encoding`.
    pub content_encoding: ContentEncoding,
    /// The connection cannot be reused: close it (see the module docs).
    pub connection_close: bool,
    /// The body (empty with [`BodySink::Discard`]).
    pub body: &'b [u8],
    /// The body's length, also when discarded.
    pub body_len: u64,
}

impl Response<'_> {
    /// Whether the status is 2xx.
    #[must_use]
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a call to [`ResponseParser::feed`] or [`ResponseParser::advance`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Progress {
    /// Input bytes that belonged to the response. Fewer than given only when the response
    /// completed: the rest came after it.
    pub consumed: usize,
    /// The response is complete: call [`ResponseParser::into_response`].
    pub complete: bool,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Head,
    Body,
    Done,
    Failed(HttpError),
}

/// A sans-IO, push-based HTTP/1.1 response parser over caller buffers.
///
/// `rx` holds the response head while it arrives (its length is the head size limit) and is the
/// staging area for chunked, read-until-close and discarded bodies. Bodies go to the
/// [`BodySink`].
///
/// Drive it with [`feed`](Self::feed) (bytes you already have), or with
/// [`read_buf`](Self::read_buf) + [`advance`](Self::advance) (read straight into the buffer it
/// picks). When the stream ends, call [`close`](Self::close). Once [`Progress::complete`],
/// take the [`Response`] with [`into_response`](Self::into_response).
///
/// Every call with input consumes some, completes, or fails: there is no state in which it waits
/// forever on bytes it already has. After an error, every further call returns the same error.
pub struct ResponseParser<'r, 'b> {
    rx: &'r mut [u8],
    /// Head bytes in `rx`.
    filled: usize,
    /// Head bytes in `rx` already scanned for the end of the head.
    scanned: usize,
    /// Length of the current head line so far (CR not counted).
    line_len: usize,
    /// A non-empty head line was seen (leading empty lines are skipped).
    seen_line: bool,
    head_request: bool,
    phase: Phase,
    framing: Framing,
    out: BodyOut<'b>,
    meta: Meta,
    received: u64,
}

impl<'r, 'b> ResponseParser<'r, 'b> {
    /// A parser for the response to a `method` request.
    #[must_use]
    pub fn new(rx: &'r mut [u8], body: BodySink<'b>, method: Method) -> Self {
        Self {
            rx,
            filled: 0,
            scanned: 0,
            line_len: 0,
            seen_line: false,
            head_request: method == Method::Head,
            phase: Phase::Head,
            framing: Framing::UntilClose,
            out: BodyOut {
                sink: body,
                stored: 0,
                len: 0,
            },
            meta: Meta::default(),
            received: 0,
        }
    }

    /// Whether the response is complete.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// Where the next read from the stream should go. Not empty unless the response is complete
    /// or failed. Reads never overrun a `Content-Length` body; they may read past a chunked body
    /// (bytes after the response mark the connection for closing).
    pub fn read_buf(&mut self) -> &mut [u8] {
        let direct = self.direct_len().is_some();
        match self.phase {
            Phase::Head => self.rx.get_mut(self.filled..).unwrap_or_default(),
            Phase::Body => {
                let remaining = match self.framing {
                    Framing::Length(r) => r,
                    _ => u64::MAX,
                };
                if direct {
                    if let BodySink::Buffer(buf) = &mut self.out.sink {
                        let start = self.out.stored;
                        let end = start
                            .saturating_add(take_len(remaining, buf.len()))
                            .min(buf.len());
                        return buf.get_mut(start..end).unwrap_or_default();
                    }
                }
                let end = take_len(remaining, self.rx.len());
                self.rx.get_mut(..end).unwrap_or_default()
            }
            Phase::Done | Phase::Failed(_) => &mut [],
        }
    }

    /// The bytes left of a `Content-Length` body that is kept: such bodies are read straight
    /// into the body buffer.
    fn direct_len(&self) -> Option<u64> {
        match (&self.framing, &self.out.sink) {
            (Framing::Length(r), BodySink::Buffer(_)) => Some(*r),
            _ => None,
        }
    }

    /// Takes the first `n` bytes of [`read_buf`](Self::read_buf) as received (more than its
    /// length counts as its length).
    ///
    /// # Errors
    /// Any [`HttpError`] about the response; see the module docs for the limits.
    pub fn advance(&mut self, n: usize) -> Result<Progress, HttpError> {
        match self.advance_inner(n) {
            Ok(p) => {
                self.received = self.received.saturating_add(p.consumed as u64);
                if p.complete && p.consumed < n {
                    // Bytes after the response: we never pipeline, so the stream is out of step.
                    self.meta.close = true;
                }
                Ok(p)
            }
            Err(e) => {
                self.phase = Phase::Failed(e);
                Err(e)
            }
        }
    }

    fn advance_inner(&mut self, n: usize) -> Result<Progress, HttpError> {
        match self.phase {
            Phase::Failed(e) => Err(e),
            Phase::Done => Ok(Progress {
                consumed: 0,
                complete: true,
            }),
            Phase::Head => {
                let n = n.min(self.rx.len().saturating_sub(self.filled));
                self.filled = self.filled.saturating_add(n);
                Ok(match self.process_head()? {
                    Some(excess) => Progress {
                        consumed: n.saturating_sub(excess),
                        complete: true,
                    },
                    None => Progress {
                        consumed: n,
                        complete: false,
                    },
                })
            }
            Phase::Body => {
                if let Some(remaining) = self.direct_len() {
                    // The bytes were read straight into the body buffer.
                    let n = take_len(remaining, n);
                    let left = remaining.saturating_sub(n as u64);
                    self.framing = Framing::Length(left);
                    self.out.stored = self.out.stored.saturating_add(n);
                    self.out.len = self.out.len.saturating_add(n as u64);
                    if left == 0 {
                        self.phase = Phase::Done;
                    }
                    return Ok(Progress {
                        consumed: n,
                        complete: left == 0,
                    });
                }
                let n = n.min(self.rx.len());
                let input = self.rx.get(..n).unwrap_or_default();
                let (used, done) = decode(&mut self.framing, &mut self.out, input)?;
                if done {
                    self.phase = Phase::Done;
                }
                Ok(Progress {
                    consumed: used,
                    complete: done,
                })
            }
        }
    }

    /// Feeds bytes received from the stream, in any split. Consumes all of `input` unless the
    /// response completes first (the rest came after it, and the connection is marked for
    /// closing).
    ///
    /// # Errors
    /// Any [`HttpError`] about the response; see the module docs for the limits.
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, HttpError> {
        let mut consumed = 0;
        loop {
            if let Phase::Failed(e) = self.phase {
                return Err(e);
            }
            let rest = input.get(consumed..).unwrap_or_default();
            if self.is_complete() {
                if !rest.is_empty() {
                    self.meta.close = true;
                }
                return Ok(Progress {
                    consumed,
                    complete: true,
                });
            }
            if rest.is_empty() {
                return Ok(Progress {
                    consumed,
                    complete: false,
                });
            }
            let buf = self.read_buf();
            let n = buf.len().min(rest.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            // Consumes at least one byte, completes, or fails (an empty `read_buf` in the head
            // phase is `HeadTooLarge`).
            let p = self.advance(n)?;
            consumed = consumed.saturating_add(p.consumed);
            if p.complete {
                if consumed < input.len() {
                    self.meta.close = true;
                }
                return Ok(Progress {
                    consumed,
                    complete: true,
                });
            }
        }
    }

    /// The stream ended (a read returned 0 bytes). Completes a body that runs to the end of the
    /// connection.
    ///
    /// # Errors
    /// [`HttpError::ConnectionClosed`] if the response was not complete otherwise.
    pub fn close(&mut self) -> Result<(), HttpError> {
        match self.phase {
            Phase::Done => Ok(()),
            Phase::Failed(e) => Err(e),
            Phase::Body if matches!(self.framing, Framing::UntilClose) => {
                self.phase = Phase::Done;
                Ok(())
            }
            Phase::Head | Phase::Body => {
                let e = HttpError::ConnectionClosed {
                    received: self.received,
                };
                self.phase = Phase::Failed(e);
                Err(e)
            }
        }
    }

    /// The response, once complete (`None` before).
    #[must_use]
    pub fn into_response(self) -> Option<Response<'b>> {
        if !self.is_complete() {
            return None;
        }
        let Self { out, meta, .. } = self;
        let body: &'b [u8] = match out.sink {
            BodySink::Buffer(buf) => {
                let buf: &'b [u8] = buf;
                buf.get(..out.stored).unwrap_or_default()
            }
            BodySink::Discard => &[],
        };
        Some(Response {
            status: meta.status,
            retry_after: meta.retry_after.map(|r| r.relative_to(meta.date)),
            etag: meta.etag,
            date: meta.date,
            content_encoding: meta.content_encoding,
            connection_close: meta.close,
            body,
            body_len: out.len,
        })
    }

    /// Looks for the end of the head in the newly filled bytes.
    fn scan_head(&mut self) -> Option<usize> {
        let new = self.rx.get(self.scanned..self.filled).unwrap_or_default();
        for (k, &b) in new.iter().enumerate() {
            match b {
                b'\n' if self.line_len == 0 && self.seen_line => {
                    let end = self.scanned.saturating_add(k).saturating_add(1);
                    self.scanned = end;
                    return Some(end);
                }
                b'\n' => {
                    self.seen_line |= self.line_len > 0;
                    self.line_len = 0;
                }
                b'\r' => {}
                _ => self.line_len = self.line_len.saturating_add(1),
            }
        }
        self.scanned = self.filled;
        None
    }

    /// Parses complete heads in `rx[..filled]`, skipping 1xx. Returns `Some(excess)` when the
    /// response completed (with `excess` bytes after it), `None` when more bytes are needed.
    fn process_head(&mut self) -> Result<Option<usize>, HttpError> {
        loop {
            let Some(end) = self.scan_head() else {
                if self.filled >= self.rx.len() {
                    return Err(HttpError::HeadTooLarge {
                        limit: self.rx.len(),
                    });
                }
                return Ok(None);
            };
            let head = parse_head(self.rx.get(..end).unwrap_or_default())?;
            if head.meta.status < 200 {
                // An interim response: drop it and parse what follows as a new head.
                if let Some(filled) = self.rx.get_mut(..self.filled) {
                    if end <= filled.len() {
                        filled.copy_within(end.., 0);
                    }
                }
                self.filled = self.filled.saturating_sub(end);
                self.scanned = 0;
                self.line_len = 0;
                self.seen_line = false;
                continue;
            }
            self.meta = head.meta;
            let no_body = self.head_request || matches!(self.meta.status, 204 | 304);
            let framing = if no_body {
                None
            } else if head.chunked {
                if head.content_length.is_some() {
                    // Both framings: chunked wins, and the connection may not be reused.
                    self.meta.close = true;
                }
                Some(Framing::Chunked(Chunk::Size(SizeLine::default())))
            } else {
                match head.content_length {
                    Some(0) => None,
                    Some(len) => {
                        self.out.check_room(len)?;
                        Some(Framing::Length(len))
                    }
                    None => {
                        self.meta.close = true;
                        Some(Framing::UntilClose)
                    }
                }
            };
            let surplus = self.rx.get(end..self.filled).unwrap_or_default();
            self.filled = 0;
            let Some(framing) = framing else {
                self.phase = Phase::Done;
                return Ok(Some(surplus.len()));
            };
            self.framing = framing;
            self.phase = Phase::Body;
            let (used, done) = decode(&mut self.framing, &mut self.out, surplus)?;
            if done {
                self.phase = Phase::Done;
                return Ok(Some(surplus.len().saturating_sub(used)));
            }
            return Ok(None);
        }
    }
}

impl fmt::Debug for ResponseParser<'_, '_> {
    /// Never shows `rx`: in [`request`](crate::adapters::stream::request) it held the request head, bearer secret included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseParser")
            .field("phase", &self.phase)
            .field("rx_len", &self.rx.len())
            .field("status", &self.meta.status)
            .field("body", &self.out.sink)
            .field("body_len", &self.out.len)
            .field("received", &self.received)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
