//! The reset pass (feature `e2e-reset`): one QEMU run, three boots, one flash chip.
//!
//! 1. **Boot 1**, link down: captures the usual events (the boot `$identify`, the flag reads,
//!    the flag-dependent event, five readings). The wall clock arrives half-way (from the host,
//!    as SNTP would give it): the events before it get their exact time from the boot's clock
//!    anchor, those after carry it. Waits until every event is on flash, then resets the system
//!    (`SYSRESETREQ`), as a watchdog would.
//! 2. **Boot 2**, link up: the events come back from flash and are delivered; the definitions
//!    poll brings the server's definitions, which are kept on flash. Resets again.
//! 3. **Boot 3**: nothing to restore (every event was delivered once); the definitions come from
//!    flash, and the first poll asks `If-None-Match` and gets `304 Not Modified`. Exits.

use embassy_executor::Spawner;
use embassy_time::{Duration, Instant};
use posthog_embedded::adapters::embassy::Runner;
use posthog_embedded::adapters::persist::DefinitionsSource;
use posthog_embedded::time::UnixMillis;

use crate::persist::BootInfo;
use crate::uart::UartLink;
use crate::{delivery, device_flags, hw, posthog_task, telemetry, Failure, Mutex, PostHogHandle};

/// How long each boot may take to reach its goal.
const STEP: Duration = Duration::from_secs(60);

/// Runs the boot `booted` says this is.
pub async fn run(
    spawner: Spawner,
    ph: PostHogHandle,
    runner: Runner<'static, Mutex>,
    link: UartLink,
    booted: &BootInfo,
) -> Result<(), Failure> {
    match booted.boot {
        1 => capture_then_reset(ph).await,
        2 => {
            if booted.restored == 0 {
                return Err("nothing restored after the reset");
            }
            spawner.spawn(posthog_task(runner, link).map_err(|_| "PostHog task already running")?);
            deliver_then_reset(ph, booted.restored).await
        }
        _ => {
            if booted.restored != 0 {
                return Err("events restored again after their delivery");
            }
            if booted.definitions != DefinitionsSource::Flash {
                return Err("definitions not restored from flash");
            }
            spawner.spawn(posthog_task(runner, link).map_err(|_| "PostHog task already running")?);
            let deadline = Instant::now() + STEP;
            if !ph
                .wait_until(deadline, |c| c.stats().definitions_unchanged > 0)
                .await
            {
                return Err("the definitions poll did not get 304 Not Modified");
            }
            info!("reset pass: definitions from flash are current (304)");
            Ok(())
        }
    }
}

async fn capture_then_reset(ph: PostHogHandle) -> Result<(), Failure> {
    // No network task: the link is down for this whole boot.
    ph.set_online(false);
    telemetry::identify(&ph)?;
    let flags = device_flags::read_flags(&ph);
    telemetry::flag_dependent_events(&ph, &flags)?;
    ph.set_wall_clock(UnixMillis::from_millis(hw::host_unix_seconds() * 1000));
    telemetry::capture_readings(&ph).await?;
    let left = ph.persisted(Instant::now() + STEP).await;
    if left != 0 {
        return Err("events not on flash before the reset");
    }
    info!(
        "reset pass: {} events on flash, link down: resetting",
        ph.pending()
    );
    hw::system_reset()
}

async fn deliver_then_reset(ph: PostHogHandle, restored: u32) -> Result<(), Failure> {
    let deadline = Instant::now() + STEP;
    let left = ph.flush(deadline).await;
    let stats = ph.stats();
    delivery::check_restored(stats, left.pending, restored)?;
    if !ph
        .wait_until(deadline, |c| c.definitions_etag().is_some())
        .await
    {
        return Err("no definitions from the server");
    }
    if ph.persisted(deadline).await != 0 {
        return Err("flash not up to date before the reset");
    }
    let defs = ph.definitions_stats();
    if defs.written == 0 || defs.failed != 0 {
        error!(
            "definitions written {}, failed {}",
            defs.written, defs.failed
        );
        return Err("definitions not kept on flash");
    }
    info!(
        "reset pass: {} restored events delivered, definitions kept: resetting",
        stats.sent
    );
    hw::system_reset()
}
