//! JSON without an allocator.
//!
//! - [`write`](mod@write): the escaping writer the event encoder streams into queue records and batch
//!   bodies. It never fails on space: it counts the bytes it could not place, so a caller learns
//!   the exact size it needs after one pass.
//! - [`read`](mod@read): a pull tokenizer over a byte slice, bounded in nesting depth, that never
//!   allocates and consumes input on every step (so it always terminates).

pub mod read;
pub mod write;
