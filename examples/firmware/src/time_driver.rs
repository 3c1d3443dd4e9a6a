//! The embassy-time driver of this board.
//!
//! - **Time** comes from TIMER0, a 32-bit counter running free at the 25 MHz core clock,
//!   extended to 64 bits in software: a reading lower than the previous one means the counter
//!   wrapped. Counting interrupts instead would be wrong here: QEMU delivers only 75 to 85% of
//!   1 kHz SysTick interrupts, so an interrupt-counted clock runs slow against the host's.
//! - **Wake-ups** come from SysTick at the tick rate (1 kHz): its handler wakes every timer
//!   of the generic queue that has expired. It also reads the clock every tick, so no wrap of
//!   TIMER0 (every 171.8 s) goes unseen.
//!
//! A tickless driver (a compare interrupt programmed for the next expiration) saves power on
//! real hardware; a periodic tick keeps this example short.

use core::cell::RefCell;
use core::task::Waker;

use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::SYST;
use cortex_m_rt::exception;
use critical_section::{CriticalSection, Mutex};
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

use crate::hw::Timer0;

/// Core clock of the MPS2 AN386 (and of QEMU's model of it).
pub const CORE_CLOCK_HZ: u32 = 25_000_000;

/// Core clock cycles per embassy tick.
const CYCLES_PER_TICK: u64 = {
    assert!(
        (CORE_CLOCK_HZ as u64).is_multiple_of(TICK_HZ),
        "the tick must divide the core clock"
    );
    CORE_CLOCK_HZ as u64 / TICK_HZ
};

/// The 64-bit cycle count built from TIMER0.
struct Counter {
    timer: Timer0,
    /// Wraps seen so far.
    wraps: u32,
    /// The previous reading.
    last: u32,
}

impl Counter {
    fn cycles(&mut self) -> u64 {
        let now = self.timer.cycles();
        if now < self.last {
            self.wraps += 1;
        }
        self.last = now;
        (u64::from(self.wraps) << 32) | u64::from(now)
    }
}

struct BoardDriver {
    /// `None` until [`init`]: time stands at zero.
    counter: Mutex<RefCell<Option<Counter>>>,
    queue: Mutex<RefCell<Queue>>,
}

impl BoardDriver {
    fn ticks(&self, cs: CriticalSection<'_>) -> u64 {
        self.counter
            .borrow_ref_mut(cs)
            .as_mut()
            .map_or(0, |c| c.cycles() / CYCLES_PER_TICK)
    }
}

impl Driver for BoardDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks(cs))
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // The next SysTick wakes it (at most one tick late), even if `at` has already passed.
        critical_section::with(|cs| {
            self.queue.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: BoardDriver = BoardDriver {
    counter: Mutex::new(RefCell::new(None)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts the clock and the tick. Call once, before the first timer is awaited.
pub fn init(timer: Timer0, mut syst: SYST) {
    critical_section::with(|cs| {
        DRIVER.counter.replace(
            cs,
            Some(Counter {
                timer,
                wraps: 0,
                last: 0,
            }),
        );
    });
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CYCLES_PER_TICK as u32 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let now = DRIVER.ticks(cs);
        DRIVER.queue.borrow_ref_mut(cs).next_expiration(now);
    });
}
