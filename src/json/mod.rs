//! JSON without an allocator.
//!
//! - [`write`](mod@write): the escaping writer the event encoder streams into queue records and batch
//!   bodies. It never fails on space: it counts the bytes it could not place, so a caller learns
//!   the exact size it needs after one pass.
//! - [`read`](mod@read): a pull tokenizer over a byte slice, bounded in nesting depth, that never
//!   allocates and consumes input on every step (so it always terminates).
//! - `typed` (the `serde` feature): any `Serialize` value as a property, and JSON text (a flag
//!   payload) read into a `Deserialize` type, through `serde-json-core`.

pub mod read;
mod short_float;
#[cfg(feature = "serde")]
pub mod typed;
pub mod write;
