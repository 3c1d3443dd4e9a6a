//! The developer tools end to end: the `posthog-embedded` CLI and local server, the
//! `eval_jsonl` example against PostHog's flag vectors, and the compliance adapter.

#[path = "../../../tests/common/mod.rs"]
mod common;

mod bench_eval;
mod cli;
mod compliance_adapter;
mod eval_jsonl;
mod forward;
mod tls;
