//! Delivery: how each batch ended, waiting for the queue to drain, and the final verdict.

use embassy_time::{Duration, Instant, Timer};
use posthog_embedded::client::{BatchOutcome, ClientStats};

use crate::{Failure, PostHogHandle, DRAIN_TIMEOUT};

/// Tells how each batch ended (called by the client, under its lock).
pub fn log_batch(outcome: &BatchOutcome) {
    match *outcome {
        BatchOutcome::Delivered { records } => {
            info!("batch delivered: events {}..{}", records.start, records.end);
        }
        BatchOutcome::Retrying { records, error, at } => warn!(
            "batch of events {}..{} failed ({:?}); retry at {} ms",
            records.start,
            records.end,
            error,
            at.as_millis()
        ),
        BatchOutcome::Dropped { records, error } => error!(
            "batch of events {}..{} dropped: {:?}",
            records.start, records.end, error
        ),
        _ => error!("batch ended in an unknown way"),
    }
}

/// Waits until nothing is pending (or [`DRAIN_TIMEOUT`]).
pub async fn drain(ph: &PostHogHandle) -> Result<(), Failure> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    while ph.pending() > 0 {
        if Instant::now() >= deadline {
            error!(
                "{} events still pending after the drain timeout",
                ph.pending()
            );
            return Err("events still pending");
        }
        Timer::after(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Success only when every captured event was delivered by a 2xx, with no retry and no drop.
pub fn check_delivery(stats: ClientStats, pending: usize) -> Result<(), Failure> {
    info!(
        "captured {}, sent {}, requests {}, retries {}, dropped {}, pending {}",
        stats.captured,
        stats.sent,
        stats.requests,
        stats.retries,
        stats.queue.dropped(),
        pending
    );
    let problem = if pending != 0 {
        Some("events still pending")
    } else if stats.queue.dropped() != 0 {
        Some("events dropped")
    } else if stats.retries != 0 {
        Some("a batch did not get a 2xx at the first attempt")
    } else if stats.sent != stats.captured {
        Some("not every captured event was acknowledged")
    } else if stats.invalid != 0 || stats.gated != 0 || stats.filtered != 0 {
        Some("events refused before queuing")
    } else {
        None
    };
    if let Some(e) = stats.last_error {
        error!("last delivery error: {:?}", e);
    }
    match problem {
        Some(p) => Err(p),
        None if stats.last_error.is_some() => Err("a delivery error was recorded"),
        None => Ok(()),
    }
}
