//! Bounded pull tokenizer (work in progress, owned by the flags work).
