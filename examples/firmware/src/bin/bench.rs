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
/// A 40 KiB event log (10 pages of 4 KiB), as the firmware's, on a flash in RAM.
#[cfg(feature = "persist")]
static LOG_FLASH: ConstStaticCell<[u8; persist_bench::LOG_BYTES]> =
    ConstStaticCell::new([0; persist_bench::LOG_BYTES]);

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

    // Not an instruction count: the library's own fixed state, `size_of::<Client>()` in bytes.
    report("client_bytes", workload::CLIENT_BYTES as u64);

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
    // The same in one pass, as into a staging store (`load_or_clear`).
    let load_once = instructions(LOAD_RUNS, overhead, || {
        flags.load_or_clear(workload::DEFINITIONS).is_ok()
    });
    if flags.load(workload::DEFINITIONS).is_err() {
        fail("definitions not loaded");
    }
    report("flags_load_once", load_once);
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

    #[cfg(feature = "persist")]
    {
        let Some(mem) = LOG_FLASH.try_take() else {
            fail("flash already taken")
        };
        persist_bench::run(mem, queue, &mut encoder, overhead);
    }

    debug::exit(debug::EXIT_SUCCESS);
    halt()
}

/// Persistence: appending one event to the log (erases, tail records and all, averaged), and
/// restoring a full log at boot.
#[cfg(feature = "persist")]
mod persist_bench {
    use embassy_futures::block_on;
    use embedded_storage_async::nor_flash::{
        ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
    };
    use posthog_embedded::capture::{Encoder, OverflowPolicy, Queue};
    use posthog_embedded::storage::EventLog;
    use posthog_embedded::Instant;

    use super::{fail, instructions, now, report, time, workload, INSTRUCTIONS_PER_COUNT};

    pub const LOG_BYTES: usize = 40 * 1024;

    /// NOR flash semantics over RAM: 4-byte writes that clear bits, 4 KiB erases.
    struct RamFlash<'a>(&'a mut [u8]);

    #[derive(Debug)]
    struct Error;

    impl NorFlashError for Error {
        fn kind(&self) -> NorFlashErrorKind {
            NorFlashErrorKind::OutOfBounds
        }
    }

    impl ErrorType for RamFlash<'_> {
        type Error = Error;
    }

    impl ReadNorFlash for RamFlash<'_> {
        const READ_SIZE: usize = 1;

        async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
            let at = offset as usize;
            let src = self.0.get(at..at + bytes.len()).ok_or(Error)?;
            bytes.copy_from_slice(src);
            Ok(())
        }

        fn capacity(&self) -> usize {
            self.0.len()
        }
    }

    impl NorFlash for RamFlash<'_> {
        const WRITE_SIZE: usize = 4;
        const ERASE_SIZE: usize = 4096;

        async fn erase(&mut self, from: u32, to: u32) -> Result<(), Error> {
            self.0
                .get_mut(from as usize..to as usize)
                .ok_or(Error)?
                .fill(0xFF);
            Ok(())
        }

        async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
            let at = offset as usize;
            let dst = self.0.get_mut(at..at + bytes.len()).ok_or(Error)?;
            for (d, s) in dst.iter_mut().zip(bytes) {
                *d &= *s;
            }
            Ok(())
        }
    }

    const APPENDS: u32 = 500;

    pub fn run<S: AsRef<[u8]> + AsMut<[u8]>>(
        mem: &mut [u8],
        queue: &mut Queue<S>,
        encoder: &mut Encoder,
        overhead: u64,
    ) {
        let mut flash = RamFlash(mem);
        let region = 0..LOG_BYTES as u32;
        let Ok((mut log, _)) = block_on(EventLog::mount(&mut flash, region.clone())) else {
            fail("log does not mount")
        };
        // One event's JSON, as the firmware persists it.
        queue.commit(queue.seqs());
        if workload::capture_reading(encoder, queue, now(0), 0).is_err() {
            fail("capture failed");
        }
        let mut json = [0u8; 512];
        let len = match queue.front() {
            Some(r) if r.json.len() <= json.len() => {
                json[..r.json.len()].copy_from_slice(r.json);
                r.json.len()
            }
            _ => fail("no event"),
        };
        let event = &json[..len];
        report("persist_event_bytes", len as u64);

        // Appends, with a delivered batch (a tail record) every 10 events, untimed: the log
        // wraps around its pages many times, so erases are in the average.
        let mut appends = 0;
        for i in 0..APPENDS {
            appends += time(|| {
                block_on(log.append(
                    &mut flash,
                    0,
                    Instant::from_millis(u64::from(i)),
                    event,
                    OverflowPolicy::RejectNewest,
                ))
                .is_ok()
            });
            if i % 10 == 9 {
                let tail = log.next_seq();
                let _ = block_on(log.set_tail(&mut flash, tail));
            }
        }
        if log.stats().persisted != APPENDS || log.stats().erases < 10 {
            fail("appends failed or the log did not wrap");
        }
        let per = appends.saturating_sub(overhead * u64::from(APPENDS) / 1000)
            * INSTRUCTIONS_PER_COUNT
            / u64::from(APPENDS);
        report("persist_event", per);

        // A full log: fill it (nothing delivered), then mount and read every event back, as
        // a boot restores them.
        let mut stored = 0u64;
        while block_on(log.append(
            &mut flash,
            0,
            Instant::from_millis(stored),
            event,
            OverflowPolicy::RejectNewest,
        ))
        .is_ok()
        {
            stored += 1;
        }
        let mut restored = 0u64;
        let restore = instructions(1, overhead, || {
            let Ok((mut log, m)) = block_on(EventLog::mount(&mut flash, region.clone())) else {
                return 0;
            };
            let mut buf = [0u8; 512];
            let mut from = 0;
            let mut n = 0u64;
            while let Ok(Some(ev)) = block_on(log.read(&mut flash, from, &mut buf)) {
                from = ev.seq + 1;
                n += 1;
            }
            restored = n;
            u64::from(m.restored)
        });
        if restored == 0 {
            fail("nothing restored");
        }
        report("restore_full_events", restored);
        report("restore_full", restore);
    }
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
