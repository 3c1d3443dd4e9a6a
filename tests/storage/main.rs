//! The storage layer on a simulated NOR flash: the event log's behaviour, its recovery from a
//! power cut at every step of seeded workloads, flash errors, full regions and bit flips.
#![cfg(all(feature = "storage", feature = "std"))]

mod client;
mod log;
mod power_cut;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Runs a future that never waits (the simulated flash completes every operation at once).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
