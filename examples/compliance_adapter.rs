//! PostHog SDK compliance adapter (work in progress).
fn main() {}
