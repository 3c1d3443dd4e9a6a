//! Delivery: how each batch ended, waiting for the queue to drain, and the final verdict.
//!
//! A batch that fails with a retryable error (no answer within the request timeout, a
//! transport error, 408, 429 or a 5xx) stays queued and the client retries it with capped
//! exponential back-off for as long as it takes: an outage costs time, not events. So the
//! firmware waits until its queue is empty (up to [`DRAIN_TIMEOUT`]) and judges the run by
//! what was acknowledged, not by how many attempts it took; the summary line reports the
//! retries, and `scripts/firmware-e2e.sh` checks them per pass (none without an outage, some
//! across its outage).

use embassy_time::Instant;
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
        BatchOutcome::Evicted { records } => error!(
            "events {}..{} evicted: the queue was full",
            records.start, records.end
        ),
        BatchOutcome::Cleared { records } => {
            warn!("events {}..{} cleared", records.start, records.end);
        }
        _ => error!("batch ended in an unknown way"),
    }
}

/// Shuts the client down and waits until nothing is pending: the client keeps retrying failed
/// batches, so this lasts as long as the link is down, up to [`DRAIN_TIMEOUT`] (an outage
/// longer than that fails the run with events still pending). The handle wakes on each settled
/// request; nothing polls.
#[cfg_attr(feature = "e2e-reset", allow(dead_code))]
pub async fn drain(ph: &PostHogHandle) -> Result<(), Failure> {
    let left = ph.shutdown(Instant::now() + DRAIN_TIMEOUT).await;
    if left.pending > 0 {
        error!(
            "{} events still pending after the drain timeout ({} s)",
            left.pending,
            DRAIN_TIMEOUT.as_secs()
        );
        return Err("events still pending");
    }
    info!(
        "queue drained: {} events delivered during shutdown",
        left.sent
    );
    Ok(())
}

/// The verdict: success when every captured event was acknowledged by a 2xx, none was dropped,
/// none is pending and none was refused before queuing. Retries are not a failure (across an
/// outage they are expected); the summary line reports them, with the last delivery error.
#[cfg_attr(feature = "e2e-reset", allow(dead_code))]
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
    } else if stats.sent != stats.captured {
        Some("not every captured event was acknowledged")
    } else if stats.invalid != 0 || stats.gated != 0 || stats.filtered != 0 {
        Some("events refused before queuing")
    } else {
        None
    };
    if let Some(e) = stats.last_error {
        if problem.is_some() {
            error!("last delivery error: {:?}", e);
        } else {
            // Retried until it got through: worth a line, not a failure.
            warn!("last delivery error: {:?}", e);
        }
    }
    match problem {
        Some(p) => Err(p),
        None => Ok(()),
    }
}

/// The reset pass's verdict after the reboot: every restored event was acknowledged by a 2xx,
/// none dropped, none pending.
#[cfg(feature = "e2e-reset")]
pub fn check_restored(stats: ClientStats, pending: usize, restored: u32) -> Result<(), Failure> {
    info!(
        "restored {}, sent {}, requests {}, retries {}, dropped {}, pending {}",
        restored,
        stats.sent,
        stats.requests,
        stats.retries,
        stats.queue.dropped(),
        pending
    );
    if pending != 0 {
        Err("restored events still pending")
    } else if stats.queue.dropped() != 0 {
        Err("restored events dropped")
    } else if stats.sent != restored {
        Err("not every restored event was acknowledged")
    } else {
        Ok(())
    }
}
