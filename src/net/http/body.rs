//! Body framing: `Content-Length`, `chunked` (extensions and trailers skipped) and
//! read-until-close, decoded byte by byte into the body sink.

use core::fmt;

use super::{HttpError, Malformed, CHUNK_LINE_MAX, TRAILERS_MAX};

/// Where the response body goes.
pub enum BodySink<'b> {
    /// Into this buffer. A body larger than it is [`HttpError::BodyTooLarge`].
    Buffer(&'b mut [u8]),
    /// Nowhere: the body is framed (so the connection can be reused) and dropped.
    Discard,
}

impl fmt::Debug for BodySink<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Buffer(buf) => write!(f, "Buffer({} bytes)", buf.len()),
            Self::Discard => f.write_str("Discard"),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Framing {
    Length(u64),
    UntilClose,
    Chunked(Chunk),
}

#[derive(Clone, Copy, Debug)]
pub(super) enum Chunk {
    Size(SizeLine),
    Data(u64),
    DataEnd { cr: bool },
    Trailers { line: usize, total: usize, cr: bool },
}

#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SizeLine {
    pub(super) size: u64,
    pub(super) digit: bool,
    pub(super) ws: bool,
    pub(super) ext: bool,
    pub(super) cr: bool,
    pub(super) len: usize,
}

/// Where body bytes go, and how many went.
pub(super) struct BodyOut<'b> {
    pub(super) sink: BodySink<'b>,
    pub(super) stored: usize,
    pub(super) len: u64,
}

impl BodyOut<'_> {
    /// Fails unless `more` bytes can still be stored.
    pub(super) fn check_room(&self, more: u64) -> Result<(), HttpError> {
        if let BodySink::Buffer(buf) = &self.sink {
            let room = buf.len().saturating_sub(self.stored) as u64;
            if more > room {
                return Err(HttpError::BodyTooLarge {
                    limit: buf.len(),
                    at_least: self.len.saturating_add(more),
                });
            }
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), HttpError> {
        self.check_room(bytes.len() as u64)?;
        if let BodySink::Buffer(buf) = &mut self.sink {
            let end = self.stored.saturating_add(bytes.len());
            if let Some(dst) = buf.get_mut(self.stored..end) {
                dst.copy_from_slice(bytes);
            }
            self.stored = end;
        }
        self.len = self.len.saturating_add(bytes.len() as u64);
        Ok(())
    }
}

/// `min(remaining, avail)` without truncating `remaining` on 32-bit targets.
pub(super) fn take_len(remaining: u64, avail: usize) -> usize {
    usize::try_from(remaining).map_or(avail, |r| r.min(avail))
}

/// Decodes `input` as body bytes. Returns the bytes used and whether the body is complete.
pub(super) fn decode(
    framing: &mut Framing,
    out: &mut BodyOut<'_>,
    input: &[u8],
) -> Result<(usize, bool), HttpError> {
    let mut i = 0;
    loop {
        let rest = input.get(i..).unwrap_or_default();
        match framing {
            Framing::Length(remaining) => {
                let take = take_len(*remaining, rest.len());
                out.put(rest.get(..take).unwrap_or_default())?;
                *remaining = remaining.saturating_sub(take as u64);
                return Ok((i.saturating_add(take), *remaining == 0));
            }
            Framing::UntilClose => {
                out.put(rest)?;
                return Ok((input.len(), false));
            }
            Framing::Chunked(chunk) => {
                let Some(&b) = rest.first() else {
                    return Ok((i, false));
                };
                if let Chunk::Data(remaining) = chunk {
                    let take = take_len(*remaining, rest.len());
                    out.put(rest.get(..take).unwrap_or_default())?;
                    *remaining = remaining.saturating_sub(take as u64);
                    if *remaining == 0 {
                        *chunk = Chunk::DataEnd { cr: false };
                    }
                    i = i.saturating_add(take);
                } else {
                    i = i.saturating_add(1);
                    if chunk_byte(chunk, b, out)? {
                        return Ok((i, true));
                    }
                }
            }
        }
    }
}

/// Advances the chunked framing by one byte (not chunk data). Returns whether the body ended.
fn chunk_byte(chunk: &mut Chunk, b: u8, out: &BodyOut<'_>) -> Result<bool, HttpError> {
    match chunk {
        Chunk::Size(line) => {
            line.len = line.len.saturating_add(1);
            if line.len > CHUNK_LINE_MAX {
                return Err(HttpError::ChunkLineTooLong {
                    max: CHUNK_LINE_MAX,
                });
            }
            if line.cr && b != b'\n' {
                return Err(Malformed::ChunkSize.into());
            }
            match b {
                b'\n' => {
                    if !line.digit {
                        return Err(Malformed::ChunkSize.into());
                    }
                    if line.size == 0 {
                        *chunk = Chunk::Trailers {
                            line: 0,
                            total: 0,
                            cr: false,
                        };
                    } else {
                        out.check_room(line.size)?;
                        *chunk = Chunk::Data(line.size);
                    }
                }
                b'\r' => line.cr = true,
                _ if line.ext => {
                    if b != b'\t' && (b < 0x20 || b == 0x7f) {
                        return Err(Malformed::ChunkSize.into());
                    }
                }
                b';' if line.digit => line.ext = true,
                b' ' | b'\t' if line.digit => line.ws = true,
                _ => {
                    let digit = match b {
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        b'A'..=b'F' => b - b'A' + 10,
                        _ => return Err(Malformed::ChunkSize.into()),
                    };
                    if line.ws {
                        return Err(Malformed::ChunkSize.into());
                    }
                    line.size = line
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(u64::from(digit)))
                        .ok_or(Malformed::ChunkSize)?;
                    line.digit = true;
                }
            }
        }
        Chunk::DataEnd { cr } => match b {
            b'\r' if !*cr => *cr = true,
            b'\n' => *chunk = Chunk::Size(SizeLine::default()),
            _ => return Err(Malformed::ChunkEnd.into()),
        },
        Chunk::Trailers { line, total, cr } => {
            *total = total.saturating_add(1);
            if *total > TRAILERS_MAX {
                return Err(HttpError::TrailersTooLarge { max: TRAILERS_MAX });
            }
            if *cr && b != b'\n' {
                return Err(Malformed::Trailer.into());
            }
            match b {
                b'\n' if *line == 0 => return Ok(true),
                b'\n' => {
                    *line = 0;
                    *cr = false;
                }
                b'\r' => *cr = true,
                _ => *line = line.saturating_add(1),
            }
        }
        // Chunk data is consumed in bulk by `decode`.
        Chunk::Data(_) => {}
    }
    Ok(false)
}
