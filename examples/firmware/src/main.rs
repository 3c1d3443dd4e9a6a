//! posthog-embedded on an emulated Cortex-M4F (QEMU `mps2-an386`): an embassy application
//! that evaluates feature flags from a snapshot in flash and sends telemetry over UART0, which
//! QEMU bridges to a PostHog-compatible HTTP server.
//!
//! 1. Loads the flag definitions compiled into flash and evaluates a few flags for this device.
//! 2. Captures a boot `$identify` with the device's properties, an event that only a flag turns
//!    on, and periodic sensor readings (each with `uptime_ms`, the capture instant).
//! 3. Lets the client batch them (every 2 s), then shuts down, waits until every event is
//!    delivered, and exits through semihosting: success only when every batch got a 2xx.
//!
//! See `README.md` beside this file for how to run it and what the end-to-end script checks.

#![no_std]
#![no_main]

#[macro_use]
mod log;
mod delivery;
mod device_flags;
#[cfg(feature = "persist")]
mod flash;
mod hw;
#[cfg(feature = "persist")]
mod persist;
#[cfg(feature = "e2e-reset")]
mod reset;
mod telemetry;
mod time_driver;
#[cfg(feature = "tls")]
mod tls;
mod uart;

use cortex_m_semihosting::debug;
use embassy_executor::Spawner;
use embassy_futures::select::{select, Either};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_time::{Duration, Timer};
use posthog_embedded::adapters::embassy::{self, Buffers, Posthog, Runner, State, Timeouts};
use posthog_embedded::client::{Client, Config};
use posthog_embedded::resources::Resources;
use static_cell::{ConstStaticCell, StaticCell};

use crate::hw::{Timer0, Uart0};
use crate::uart::UartLink;

/// A fake project key: the e2e server accepts any, and the logs must never show it.
const API_KEY: &str = "phc_firmware_e2e_key";
/// The `Host` header. QEMU owns the TCP connection, so the firmware only names the server.
const HOST: &str = match option_env!("PH_E2E_HOST") {
    Some(host) => host,
    None => "127.0.0.1",
};

const DEVICE_ID: &str = "mps2-an386-0042";
const FIRMWARE_VERSION: &str = "1.4.2";
const BOARD: &str = "mps2-an386";
const REGION: &str = "eu-west";

/// Flag definitions as `/flags/definitions` returns them, compiled into flash.
static DEFINITIONS: &[u8] = include_bytes!("../../data/sample_definitions.json");

const READINGS: u32 = 5;
const READING_PERIOD: Duration = Duration::from_millis(700);
/// Every event waits this long before its batch is sent, so `offset` is far from zero.
const FLUSH_INTERVAL_MS: u64 = 2_000;
/// How long the final flush may take before the firmware gives up. The client itself never
/// gives up on a retryable failure (it retries with back-off, 1 s doubling up to 5 min, jittered
/// down by up to a quarter, plus the 5 s request timeout per failed attempt), so this bound
/// exists only to end a test run. It must outlast the e2e script's 90 s outage plus the back-off
/// step in progress when the link returns: delivery lands up to about 75 s after the outage
/// (about 165 s into the run). One more attempt lost after the outage (e.g. written while QEMU
/// reconnects after the server closed an idle connection) costs one more step of up to 128 s,
/// so 300 s covers that too. A real device would not exit: its events stay queued.
#[cfg_attr(feature = "e2e-reset", allow(dead_code))]
const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);
/// The whole run, whatever happens: the drain above plus the ~5 s of captures before it and
/// some margin, and below the script's 360 s QEMU timeout for its outage pass, so a stuck run
/// still ends with the firmware's own verdict.
const HARD_DEADLINE: Duration = Duration::from_secs(330);

/// The client's storage, capacities named once: 4 KiB of events; the sample definitions need
/// 20 flags, 75 nodes and 1,077 bytes of text and compiled patterns; 32 `$feature_flag_called` de-duplication entries.
#[cfg(not(feature = "e2e-reset"))]
type PostHogResources = Resources<4096, 20, 96, 1152, 32>;
/// The reset pass holds a whole boot's events while the link is down: 16 KiB of queue.
#[cfg(feature = "e2e-reset")]
type PostHogResources = Resources<16384, 20, 96, 1152, 32>;

/// One executor, and no interrupt handler touches the client: a no-op lock, so loading the
/// definitions, evaluating flags and rendering batches never mask interrupts. (Use
/// `CriticalSectionRawMutex` when interrupt handlers capture events.)
type Mutex = NoopRawMutex;
type PostHogHandle = Posthog<'static, Mutex>;

/// All zeros and `const`: in `.bss`, nothing copied from flash at boot.
static RESOURCES: ConstStaticCell<PostHogResources> = ConstStaticCell::new(Resources::new());
static STATE: StaticCell<State<'static, Mutex>> = StaticCell::new();
/// The runner's buffers: request bodies (a batch is at most this large), heads, kept bodies.
static TX: ConstStaticCell<[u8; 4096]> = ConstStaticCell::new([0; 4096]);
static RX: ConstStaticCell<[u8; 1024]> = ConstStaticCell::new([0; 1024]);
static BODY: ConstStaticCell<[u8; BODY_LEN]> = ConstStaticCell::new([0; BODY_LEN]);
/// Kept response bodies: nothing but tiny answers, except in the reset pass, which polls the
/// server's definitions (10 KB).
#[cfg(not(feature = "e2e-reset"))]
const BODY_LEN: usize = 256;
#[cfg(feature = "e2e-reset")]
const BODY_LEN: usize = 12 * 1024;

/// Why the run failed (printed before exiting with a failure status).
type Failure = &'static str;

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    hw::paint_stack();
    let (Some(core), Some(timer)) = (cortex_m::Peripherals::take(), Timer0::take()) else {
        exit(Err("clock peripherals already taken"));
    };
    time_driver::init(timer, core.SYST);
    let verdict = match select(run(spawner), Timer::after(HARD_DEADLINE)).await {
        Either::First(verdict) => verdict,
        Either::Second(()) => Err("hard deadline passed"),
    };
    exit(verdict);
}

#[cfg(not(feature = "tls"))]
#[embassy_executor::task]
async fn posthog_task(mut runner: Runner<'static, Mutex>, link: UartLink) -> ! {
    runner.run(link).await
}

/// With `tls`: a verified TLS session per connection over the same link.
#[cfg(feature = "tls")]
#[embassy_executor::task]
async fn posthog_task(
    mut runner: Runner<'static, Mutex>,
    dialer: posthog_embedded::tls::TlsDialer<'static, UartLink>,
) -> ! {
    runner.run_dialed(dialer).await
}

async fn run(spawner: Spawner) -> Result<(), Failure> {
    info!(
        "posthog-firmware {} on {}, device {}",
        FIRMWARE_VERSION, BOARD, DEVICE_ID
    );
    let uart = Uart0::take().ok_or("UART0 already taken")?;
    // The seed must differ at every boot: it draws the boot id that keeps event uuids unique
    // across reboots (a real device reads its hardware RNG here).
    let config = Config::new(API_KEY, hw::boot_entropy() ^ 0x6d70_7332_0000_0042)
        // One device, one id: events name `Id::Default`.
        .distinct_id(DEVICE_ID)
        .flush_at(50)
        // Small batches: the first flush takes two requests back to back, on one kept-alive
        // connection or on a fresh one each when the server closes them.
        .max_batch_events(4)
        .flush_interval(posthog_embedded::Duration::from_millis(FLUSH_INTERVAL_MS));
    // The reset pass polls definitions (any secret key will do for the local server), to keep
    // them on flash.
    #[cfg(feature = "e2e-reset")]
    let config = config.secret_key("phx_firmware_e2e_secret");
    let resources = RESOURCES.try_take().ok_or("client storage already taken")?;
    #[allow(unused_mut)]
    let mut client = Client::new(config, resources).map_err(|e| {
        error!("invalid PostHog configuration: {}", e);
        "invalid PostHog configuration"
    })?;
    // With persistence: the events a reset interrupted come back first, and the definitions
    // come from flash (the compiled-in snapshot when flash has none).
    #[cfg(feature = "persist")]
    let booted = persist::boot(&mut client, DEFINITIONS).await?;
    #[cfg(not(feature = "persist"))]
    {
        let loaded = client.load_definitions(DEFINITIONS).map_err(|e| {
            error!("flag definitions refused: {}", e);
            "flag definitions refused"
        })?;
        info!(
            "flag definitions from flash: {} flags, {} nodes, {} bytes of text",
            loaded.flags, loaded.nodes, loaded.bytes
        );
    }
    let state = STATE
        .try_init(State::new())
        .ok_or("client already initialised")?;
    let buffers = Buffers {
        tx: TX.try_take().ok_or("network buffers already taken")?,
        rx: RX.try_take().ok_or("network buffers already taken")?,
        body: BODY.try_take().ok_or("network buffers already taken")?,
    };
    let (ph, mut runner) = embassy::new(client, state, buffers, HOST).map_err(|e| {
        error!("PostHog driver refused: {}", e);
        "PostHog driver refused"
    })?;
    runner
        .set_timeouts(Timeouts::new().request(Duration::from_secs(5)))
        .map_err(|e| {
            error!("PostHog timeouts refused: {}", e);
            "PostHog timeouts refused"
        })?;
    ph.set_on_batch(Some(delivery::log_batch));

    #[cfg(feature = "e2e-reset")]
    {
        let boot = persist::BootInfo::of(&booted);
        persist::spawn(spawner, ph, booted)?;
        reset::run(spawner, ph, runner, UartLink::new(uart), &boot).await
    }
    #[cfg(not(feature = "e2e-reset"))]
    {
        #[cfg(feature = "persist")]
        persist::spawn(spawner, ph, booted)?;
        #[cfg(not(feature = "tls"))]
        let link = UartLink::new(uart);
        #[cfg(feature = "tls")]
        let link = {
            // Certificates are checked against the wall clock (SNTP, GNSS or a cellular
            // network on a real device; the host's clock here).
            ph.set_wall_clock(posthog_embedded::UnixMillis::from_millis(
                hw::host_unix_seconds() * 1000,
            ));
            tls::dialer(UartLink::new(uart), hw::boot_entropy())?
        };
        spawner.spawn(posthog_task(runner, link).map_err(|_| "PostHog task already running")?);
        workflow(ph).await
    }
}

/// The firmware's work: who it is, its flags, its readings, then shutdown and the verdict.
#[cfg(not(feature = "e2e-reset"))]
async fn workflow(ph: PostHogHandle) -> Result<(), Failure> {
    telemetry::identify(&ph)?;
    let flags = device_flags::read_flags(&ph);
    telemetry::flag_dependent_events(&ph, &flags)?;
    telemetry::capture_readings(&ph).await?;

    // A little quiet time, then shutdown and the final flush.
    Timer::after(Duration::from_secs(1)).await;
    let drained = delivery::drain(&ph).await;
    let delivered = delivery::check_delivery(ph.stats(), ph.pending());
    drained.and(delivered)
}

/// Reports the verdict and ends the QEMU session with its status.
fn exit(verdict: Result<(), Failure>) -> ! {
    info!("stack peak: {} bytes", hw::stack_peak());
    match verdict {
        Ok(()) => {
            info!("PASS: every batch got a 2xx");
            debug::exit(debug::EXIT_SUCCESS);
        }
        Err(why) => {
            error!("FAIL: {}", why);
            debug::exit(debug::EXIT_FAILURE);
        }
    }
    // Only reached without a debugger or emulator to exit to.
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(feature = "defmt")]
    defmt::error!("panic: {}", defmt::Display2Format(info));
    #[cfg(not(feature = "defmt"))]
    cortex_m_semihosting::hprintln!("ERROR panic: {}", info);
    exit(Err("panic"))
}
