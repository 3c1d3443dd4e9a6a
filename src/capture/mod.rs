//! Event capture: bounded, allocation-free encoding of PostHog events into a byte ring, and
//! `/batch/` bodies rendered from it.
//!
//! - [`Encoder`] validates an event, picks its uuid and time, and streams its JSON (with the
//!   caller's properties) straight into a [`Queue`] record.
//! - [`Queue`] keeps framed records in a ring over caller storage, with an explicit
//!   [`OverflowPolicy`] and [`QueueStats`] counting every drop.
//! - [`render_batch`] writes `{"api_key","batch":[…],"sent_at"}` from the oldest records into a
//!   caller buffer and reports which records it holds, for [`Queue::commit`] after a 2xx.
//!
//! ```
//! use posthog_embedded::capture::{
//!     render_batch, BatchLimits, Encoder, EncoderConfig, EventOptions, OverflowPolicy, Queue,
//! };
//! use posthog_embedded::{Instant, Now};
//!
//! let mut queue = Queue::new([0u8; 4096], OverflowPolicy::DropOldest);
//! let mut enc = Encoder::new(EncoderConfig::DEFAULT, 0x5eed);
//! let boot = Now::mono(Instant::from_millis(120));
//! enc.identify(&mut queue, boot, "device-42", &EventOptions::new(), |person| {
//!     person.set(|p| {
//!         p.prop("firmware", "1.4.2")?.prop("board", "nrf52840-dk")?;
//!         Ok(())
//!     })?;
//!     Ok(())
//! })?;
//!
//! let mut body = [0u8; 1024];
//! let later = Now::mono(Instant::from_millis(5_120));
//! let batch = render_batch(&queue, later, "phc_project_token", &BatchLimits::DEFAULT, &mut body)?
//!     .expect("one event queued");
//! let json = core::str::from_utf8(batch.body(&body)).unwrap();
//! assert!(json.contains(r#""event":"$identify""#));
//! assert!(json.contains(r#""offset":5000"#)); // captured 5 s before sending
//! // ... send it; after a 2xx:
//! queue.commit(batch.records);
//! assert!(queue.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod encode;
mod queue;
mod uuid;

pub use batch::{render_batch, Batch, BatchLimits, BATCH_HEADERS, BATCH_PATH, TIME_APPROXIMATE};
pub use encode::{Encoder, EncoderConfig, EventOptions, Person};
pub use queue::{
    DropReason, OverflowPolicy, PushError, Queue, QueueStats, Record, Records, Restored, SeqRange,
    RECORD_HEADER_LEN,
};
pub use uuid::{Uuid, UuidGen, UUID_LEN};
