//! Wire formats through the public API: event JSON and `/batch/` bodies, HTTP heads and
//! responses, the JSON reader, and the inputs fuzzing once found.

#[path = "../common/mod.rs"]
mod common;

mod capture_wire;
mod fuzz_regressions;
mod http;
mod json_reader;
