//! Feature flags: PostHog's conformance vectors, the evaluator, the definitions store, the
//! property operators, the regex engine against `regex`, and remote `/flags` answers.

#[path = "../common/mod.rs"]
mod common;

mod conformance;
mod date_vectors;
mod eval;
mod hash_vectors;
mod regex_differential;
mod remote;
mod semver_vectors;
mod store;
mod value_vectors;
