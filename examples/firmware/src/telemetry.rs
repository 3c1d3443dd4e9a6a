//! The events this device captures: who it is, what its flags turned on, and its readings.

use embassy_time::{Instant, Timer};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::Id;
use posthog_embedded::json::write::Object;
use posthog_embedded::{CaptureError, PropertyError};

use crate::device_flags::BootFlags;
use crate::{Failure, PostHogHandle, BOARD, FIRMWARE_VERSION, READINGS, READING_PERIOD, REGION};

/// Queues `$identify` with the device's properties in `$set`.
pub fn identify(ph: &PostHogHandle) -> Result<(), Failure> {
    // The configured default distinct id (this device).
    ph.identify(Id::Default, &EventOptions::new(), |person| {
        person.set(|p| {
            p.set("firmware_version", FIRMWARE_VERSION)
                .set("board", BOARD)
                .set("region", REGION)
                .done()
        })?;
        Ok(())
    })
    .map_err(|e| {
        error!("$identify not queued: {}", e);
        "$identify not queued"
    })?;
    Ok(())
}

/// Events that only exist because a flag is on.
pub fn flag_dependent_events(ph: &PostHogHandle, flags: &BootFlags) -> Result<(), Failure> {
    let queued = |r: Result<u64, CaptureError>| {
        r.map(drop).map_err(|e| {
            error!("flag-dependent event not queued: {}", e);
            "flag-dependent event not queued"
        })
    };
    if let Some(interval_ms) = flags.sampling_interval_ms {
        queued(capture_timed(ph, "sampling interval changed", |p| {
            p.set("flag", "new-sampling-rate")
                .set("interval_ms", interval_ms)
                .done()
        }))?;
    }
    if flags.ota_updates {
        queued(capture_timed(ph, "ota check scheduled", |p| {
            p.set("flag", "ota-updates").done()
        }))?;
    }
    Ok(())
}

/// Periodic sensor readings.
pub async fn capture_readings(ph: &PostHogHandle) -> Result<(), Failure> {
    let mut next = Instant::now();
    for i in 0..READINGS {
        next += READING_PERIOD;
        Timer::at(next).await;
        let (temperature, battery) = simulated_sensors(i);
        let uptime_ms = capture_timed(ph, "sensor reading", |p| {
            p.set("sample", i)
                .set("temperature_c", temperature)
                .set("battery_mv", battery)
                .set("sensor", "bme280")
                .done()
        })
        .map_err(|e| {
            error!("reading not queued: {}", e);
            "reading not queued"
        })?;
        info!("reading {} captured at {} ms", i, uptime_ms);
    }
    Ok(())
}

/// Captures `event` with `props` and `uptime_ms`, the instant the client stamps it with (the
/// e2e check compares it with the time the server derives from `offset`). Returns that instant.
fn capture_timed(
    ph: &PostHogHandle,
    event: &str,
    mut props: impl FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
) -> Result<u64, CaptureError> {
    ph.with(|client, now| {
        let uptime_ms = now.mono.as_millis();
        client.capture(now, event, Id::Default, &EventOptions::new(), |p| {
            p.prop("uptime_ms", uptime_ms)?;
            props(p)
        })?;
        Ok(uptime_ms)
    })
}

/// A plausible temperature (°C) and battery voltage (mV) for reading `i`.
fn simulated_sensors(i: u32) -> (f32, u16) {
    let step = u16::try_from(i).unwrap_or(u16::MAX);
    (
        21.5 + 0.25 * i as f32,
        3_712u16.saturating_sub(step.saturating_mul(3)),
    )
}
