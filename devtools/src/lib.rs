//! Developer tools for posthog-embedded: everything a firmware engineer needs on the host to
//! see what devices send and how flags will evaluate on them, without a PostHog account. A
//! crate of its own (`posthog-embedded-devtools`, not published), so that firmware never
//! depends on its tokio, hyper and clap.
//!
//! - [`server`]: a local PostHog-compatible server on loopback ([`server::LocalServer`]):
//!   `/batch/` with per-event validation, `/flags` and `/decide` answered by this crate's own
//!   evaluator, `/flags/definitions` with `ETag`s, and fault injection.
//! - [`definitions`]: a definitions document loaded for host tools, with `/flags` and `/decide`
//!   answers rendered from evaluation results.
//! - [`context`]: an owned evaluation context read from JSON or `--prop key=value` arguments.
//! - [`validate`]: what PostHog's ingestion makes of an event: its problems and its time.
//! - [`json`]: a `serde_json` value as a property value of an event.
//!
//! The `posthog-embedded` command-line tool (`serve`, `eval`, `check`, `capture`,
//! `fetch-definitions`) is a thin layer over these modules; the quick start example runs the
//! server in-process.

pub mod context;
pub mod definitions;
pub mod forward;
pub mod json;
pub mod server;
pub mod tls;
pub mod validate;
