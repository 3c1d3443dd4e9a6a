//! `/batch/` request bodies, rendered from the oldest queued records into a caller buffer.
//!
//! ```text
//! {"api_key":"<project token>","batch":[<event>,…],"sent_at":"<now, ISO 8601>"}
//! ```
//!
//! `sent_at` is written only when a wall clock is known: PostHog uses it to correct device clock
//! skew on event timestamps, and without a wall clock events carry `offset` instead (the
//! milliseconds since capture; the server takes its receive time minus `offset` as the event
//! time), which needs no `sent_at`. Each event's `offset` is recomputed at every render, so a
//! retried batch still places every event at its true capture time.
//!
//! Rendering never changes the queue. The returned [`Batch`] names exactly the records it holds;
//! commit them with [`Queue::commit`] once the server accepted the body (any 2xx), or leave them
//! queued to retry.

#[cfg(feature = "storage")]
use super::queue::Restored;
use super::queue::{Queue, Record, SeqRange};
use crate::error::BatchError;
use crate::json::write::{fmt_u64, Sink};
use crate::time::timestamp::{format_iso8601, ISO_LEN};
use crate::time::Now;

/// Request path for batches (the trailing slash matters).
pub const BATCH_PATH: &str = "/batch/";

/// Headers every `/batch/` request carries. (`Content-Length` is up to the HTTP layer.)
pub const BATCH_HEADERS: [(&str, &str); 2] = [
    ("Content-Type", "application/json"),
    ("User-Agent", crate::USER_AGENT),
];

/// Limits for one body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many events per body (PostHog's SDKs use 100).
    pub max_events: usize,
    /// At most this many bytes per body (the buffer length also caps it).
    pub max_bytes: usize,
}

impl BatchLimits {
    /// 100 events, no byte cap beyond the buffer.
    pub const DEFAULT: Self = Self {
        max_events: 100,
        max_bytes: usize::MAX,
    };
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A rendered body: which records it holds and how long it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Batch {
    /// Sequence numbers of the records in the body; pass to [`Queue::commit`] after a 2xx.
    pub records: SeqRange,
    /// Length of the body at the start of the buffer.
    pub len: usize,
}

impl Batch {
    /// Number of events in the body.
    #[must_use]
    pub const fn events(&self) -> u64 {
        self.records.len()
    }

    /// The body within the buffer it was rendered into.
    #[must_use]
    pub fn body<'o>(&self, out: &'o [u8]) -> &'o [u8] {
        out.get(..self.len).unwrap_or_default()
    }
}

/// The property marking an event whose time is a lower bound (restored from flash after a
/// reset, from a boot that never learned the wall clock).
pub const TIME_APPROXIMATE: &str = "$time_approximate";

/// How a record is closed in a body.
enum Close<'a> {
    /// The JSON has its `timestamp`: `}`.
    Plain,
    /// `,"offset":N}`, with `,"$time_approximate":true` first inside `properties` when set.
    Offset(&'a [u8], bool),
    /// `,"timestamp":"…"}` (restored, exact).
    #[cfg(feature = "storage")]
    Timestamp(&'a str),
}

impl Close<'_> {
    fn len(&self, json: &[u8]) -> usize {
        match self {
            Self::Plain => 1,
            Self::Offset(digits, approx) => {
                let mark = if *approx && json.last() == Some(&b'}') {
                    approx_mark().len()
                } else {
                    0
                };
                mark + b",\"offset\":".len() + digits.len() + 1
            }
            #[cfg(feature = "storage")]
            Self::Timestamp(ts) => b",\"timestamp\":\"\"".len() + ts.len() + 1,
        }
    }
}

const fn approx_mark() -> &'static [u8] {
    b",\"$time_approximate\":true"
}

/// Bytes the record takes in a body: its JSON, the closing, and the separating comma when it is
/// not the first.
fn piece_len(rec: &Record<'_>, close: &Close<'_>, first: bool) -> usize {
    usize::from(!first) + rec.json.len() + close.len(rec.json)
}

/// Writes the record's JSON and its closing.
fn write_piece(sink: &mut Sink<'_>, rec: &Record<'_>, close: &Close<'_>) {
    match close {
        Close::Plain => {
            sink.raw(rec.json);
        }
        Close::Offset(digits, approx) => {
            match rec.json.split_last() {
                Some((b'}', props)) if *approx => {
                    // `properties` is the object's last member: mark it inside.
                    sink.raw(props);
                    sink.raw(approx_mark());
                    sink.raw(b"}");
                }
                _ => {
                    sink.raw(rec.json);
                }
            }
            sink.raw(b",\"offset\":");
            sink.raw(digits);
        }
        #[cfg(feature = "storage")]
        Close::Timestamp(ts) => {
            sink.raw(rec.json);
            sink.raw(b",\"timestamp\":\"");
            sink.raw(ts.as_bytes());
            sink.raw(b"\"");
        }
    }
    sink.raw(b"}");
}

/// Renders a `/batch/` body from the oldest queued records into `out`.
///
/// Takes records from the front of `queue` while they fit within `limits` and `out`, in order.
/// Returns `Ok(None)` when the queue is empty.
///
/// # Errors
/// - [`BatchError::RecordTooLarge`] when the oldest record alone does not fit (it names the size
///   needed; drop it with [`Queue::drop_oldest`] so the queue never sticks);
/// - [`BatchError::BufferTooSmall`] when not even the envelope fits;
/// - [`BatchError::ZeroEvents`] when `limits.max_events` is 0.
pub fn render_batch<S>(
    queue: &Queue<S>,
    now: Now,
    api_key: &str,
    limits: &BatchLimits,
    out: &mut [u8],
) -> Result<Option<Batch>, BatchError>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    if limits.max_events == 0 {
        return Err(BatchError::ZeroEvents);
    }
    if queue.is_empty() {
        return Ok(None);
    }
    let available = out.len().min(limits.max_bytes);
    let out = out.get_mut(..available).unwrap_or_default();

    let mut ts_buf = [0u8; ISO_LEN];
    let sent_at = now.wall.and_then(|w| format_iso8601(w, &mut ts_buf));
    // `]` + optional `,"sent_at":"…"` + `}`
    let trailer = 1 + sent_at.map_or(0, |s| b",\"sent_at\":\"\"".len() + s.len()) + 1;

    let mut sink = Sink::new(out, usize::MAX);
    sink.raw(b"{\"api_key\":");
    sink.string(api_key);
    sink.raw(b",\"batch\":[");
    let envelope = sink.needed() + trailer;
    if envelope > available {
        return Err(BatchError::BufferTooSmall {
            needed: envelope,
            available,
        });
    }

    let mut used = sink.needed();
    let mut count = 0usize;
    let mut first_seq = None;
    for rec in queue.iter().take(limits.max_events) {
        let mut digits = [0u8; 20];
        #[cfg(feature = "storage")]
        let mut iso = [0u8; ISO_LEN];
        let close = match rec.restored {
            _ if rec.has_timestamp => Close::Plain,
            // Restored records exist only with persistence (feature `storage`).
            #[cfg(feature = "storage")]
            Some(Restored::Wall(t)) => match format_iso8601(t, &mut iso) {
                Some(ts) => Close::Timestamp(ts),
                None => Close::Offset(fmt_u64(now.mono.as_millis(), &mut digits), true),
            },
            #[cfg(feature = "storage")]
            Some(Restored::BeforeBoot(before)) => Close::Offset(
                fmt_u64(
                    now.mono.as_millis().saturating_add(before.as_millis()),
                    &mut digits,
                ),
                true,
            ),
            _ => Close::Offset(
                fmt_u64(
                    now.mono.saturating_duration_since(rec.captured).as_millis(),
                    &mut digits,
                ),
                false,
            ),
        };
        let piece = piece_len(&rec, &close, count == 0);
        if used + piece + trailer > available {
            if count == 0 {
                return Err(BatchError::RecordTooLarge {
                    seq: rec.seq,
                    needed: used + piece + trailer,
                    available,
                });
            }
            break;
        }
        if count > 0 {
            sink.raw(b",");
        }
        write_piece(&mut sink, &rec, &close);
        first_seq.get_or_insert(rec.seq);
        used += piece;
        count += 1;
    }
    sink.raw(b"]");
    if let Some(s) = sent_at {
        sink.raw(b",\"sent_at\":\"");
        sink.raw(s.as_bytes());
        sink.raw(b"\"");
    }
    sink.raw(b"}");
    let len = sink.needed();
    let start = first_seq.unwrap_or(queue.front_seq());
    Ok(Some(Batch {
        records: SeqRange {
            start,
            end: start + count as u64,
        },
        len,
    }))
}
