//! Instructions per operation on the Cortex-M4, counted under QEMU with `-icount shift=0`
//! (every instruction advances virtual time by exactly 1 ns).
//!
//! SysTick runs free at the 25 MHz core clock, so one SysTick count is 40 ns of virtual time:
//! 40 instructions. Each operation is timed on its own (a SysTick read before and after) and
//! averaged over many iterations; the cost of the two reads is measured the same way with
//! nothing between them and subtracted. A loop of a known number of instructions calibrates
//! the method. Prints one `bench <name> <instructions>` line per measurement, then exits.
//!
//! Run: `scripts/firmware-size.sh`, or
//! `qemu-system-arm -icount shift=0 -cpu cortex-m4 -machine mps2-an386 -nographic
//!  -semihosting-config enable=on,target=native -kernel target/thumbv7em-none-eabihf/release/bench`

#![no_std]
#![no_main]

#[path = "../workload.rs"]
mod workload;

use core::hint::black_box;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use posthog_embedded::capture::{Encoder, EncoderConfig, OverflowPolicy, Queue};
use posthog_embedded::{Instant, Now};
use static_cell::ConstStaticCell;

/// Instructions per SysTick count: 1 ns per instruction, 40 ns per count at 25 MHz.
const INSTRUCTIONS_PER_COUNT: u64 = 40;
/// SysTick is a 24-bit down-counter.
const SYSTICK_MASK: u32 = 0x00ff_ffff;

const ITERATIONS: u32 = 1_000;
/// Events in the batch that `render_batch` renders.
const BATCH_EVENTS: u32 = 10;

static QUEUE: ConstStaticCell<Queue<[u8; workload::QUEUE_BYTES]>> = ConstStaticCell::new(
    Queue::new([0; workload::QUEUE_BYTES], OverflowPolicy::DropOldest),
);
static BODY: ConstStaticCell<[u8; workload::BODY_BYTES]> =
    ConstStaticCell::new([0; workload::BODY_BYTES]);
static FLAGS: ConstStaticCell<workload::Store> = ConstStaticCell::new(workload::Store::new());

/// SysTick counts spent in one call of `op`.
#[inline(always)]
fn time<T>(op: impl FnOnce() -> T) -> u64 {
    let start = SYST::get_current();
    let out = op();
    let end = SYST::get_current();
    black_box(out);
    u64::from(start.wrapping_sub(end) & SYSTICK_MASK)
}

/// Total SysTick counts spent in `n` calls of `op`.
fn counts<T>(n: u32, mut op: impl FnMut() -> T) -> u64 {
    (0..n).map(|_| time(&mut op)).sum()
}

/// Average instructions per call of `op` over `n` calls, minus the timing overhead
/// (`overhead`: counts of [`ITERATIONS`] empty timings).
fn instructions<T>(n: u32, overhead: u64, op: impl FnMut() -> T) -> u64 {
    let overhead = overhead * u64::from(n) / u64::from(ITERATIONS);
    counts(n, op).saturating_sub(overhead) * INSTRUCTIONS_PER_COUNT / u64::from(n)
}

fn report(name: &str, instructions: u64) {
    hprintln!("bench {} {}", name, instructions);
}

#[entry]
fn main() -> ! {
    let (Some(core), Some(queue), Some(body), Some(flags)) = (
        cortex_m::Peripherals::take(),
        QUEUE.try_take(),
        BODY.try_take(),
        FLAGS.try_take(),
    ) else {
        fail("peripherals or buffers already taken")
    };
    let mut syst = core.SYST;
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(SYSTICK_MASK);
    syst.clear_current();
    syst.enable_counter();

    let overhead = counts(ITERATIONS, || ());

    // Calibration: `cortex_m::asm::delay(n)` (cortex-m 0.7.10, pinned by Cargo.lock) runs
    // n + 1 iterations of a two-instruction loop (`subs`, `bne`); the call adds a few more.
    // A long loop shows the method's error, a short one (as long as the operations below) the
    // error left after averaging 1000 timings of 40-instruction resolution.
    for (name, arg, runs) in [("long", 200_000, 20), ("short", 1_999, ITERATIONS)] {
        let expected = 2 * (u64::from(arg) + 1);
        let measured = instructions(runs, overhead, || cortex_m::asm::delay(black_box(arg)));
        hprintln!("bench calibration_{} {} {}", name, expected, measured);
    }

    // capture: a 5-property event into the queue (emptied, untimed, before it fills up).
    let mut encoder = Encoder::new(EncoderConfig::DEFAULT, 0x5eed);
    let mut capture = 0;
    for i in 0..ITERATIONS {
        if queue.len() >= 8 {
            queue.commit(queue.seqs());
        }
        capture += time(|| workload::capture_reading(&mut encoder, queue, now(i), i));
    }
    let capture = capture.saturating_sub(overhead) * INSTRUCTIONS_PER_COUNT;
    report("capture", capture / u64::from(ITERATIONS));

    // render_batch: a body of BATCH_EVENTS such events.
    queue.commit(queue.seqs());
    for i in 0..BATCH_EVENTS {
        if workload::capture_reading(&mut encoder, queue, now(i), i).is_err() {
            fail("capture failed");
        }
    }
    let render = instructions(ITERATIONS, overhead, || workload::render(queue, body));
    match workload::render(queue, body) {
        Ok(Some(batch)) if batch.events() == u64::from(BATCH_EVENTS) => {
            report("render_batch_bytes", batch.len as u64);
        }
        _ => fail("render_batch failed"),
    }
    report("render_batch", render);

    // Flags: load the sample definitions (a one-off at boot), then three typical flags.
    const LOAD_RUNS: u32 = 10;
    let load = instructions(LOAD_RUNS, overhead, || {
        flags.load(workload::DEFINITIONS).is_ok()
    });
    if flags.load(workload::DEFINITIONS).is_err() {
        fail("definitions not loaded");
    }
    report("flags_load", load);
    for (name, key) in [
        ("eval_rollout", workload::ROLLOUT_FLAG),
        ("eval_semver", workload::SEMVER_FLAG),
        ("eval_multivariate", workload::MULTIVARIATE_FLAG),
    ] {
        if workload::evaluate(flags, key).is_err() {
            fail("flag inconclusive");
        }
        let eval = instructions(ITERATIONS, overhead, || {
            workload::evaluate(flags, key).is_ok()
        });
        report(name, eval);
    }

    debug::exit(debug::EXIT_SUCCESS);
    halt()
}

/// Capture instants 100 ms apart.
fn now(i: u32) -> Now {
    Now::mono(Instant::from_millis(1_000 + 100 * u64::from(i)))
}

fn fail(why: &str) -> ! {
    hprintln!("bench failed: {}", why);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}

fn halt() -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    hprintln!("bench panicked: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    halt()
}
