//! The board: UART0, TIMER0, the host clock through semihosting, and a NOR flash chip emulated
//! in SRAM. This module holds the firmware's only `unsafe` code.
//!
//! Both peripherals are Arm CMSDK APB blocks with 32-bit registers:
//!
//! | Register | Address | Bits used |
//! |---|---|---|
//! | UART0 `DATA` | `0x4000_4000` | received byte (a read pops it) / byte to send (a write queues it) |
//! | UART0 `STATE` | `0x4000_4004` | bit 0 TX buffer full, bit 1 RX buffer full |
//! | UART0 `CTRL` | `0x4000_4008` | bit 0 TX enable, bit 1 RX enable |
//! | UART0 `BAUDDIV` | `0x4000_4010` | baud rate divider, at least 16 |
//! | TIMER0 `CTRL` | `0x4000_0000` | bit 0 enable |
//! | TIMER0 `VALUE` | `0x4000_0004` | current count, decrementing at the core clock |
//! | TIMER0 `RELOAD` | `0x4000_0008` | value loaded when the count reaches zero |
//!
//! The flash chip is the top 64 KiB of SRAM (`0x203F_0000..0x2040_0000`), which `memory.x`
//! keeps out of the linker's RAM: no Rust object lives there and no ELF segment covers it, so
//! QEMU leaves it alone at a system reset (it reloads only the ELF's segments) and it keeps its
//! contents across [`system_reset`], as a real flash would. At QEMU's start it reads all zeros
//! (an unformatted chip, to the storage layer).
//!
//! # Safety
//!
//! Every register access below is a volatile, aligned 32-bit access to one of these registers,
//! which are device memory mapped for the whole life of the program and alias no Rust object.
//! The flash accesses are volatile, aligned 32-bit accesses inside the flash window, which is
//! ordinary SRAM that no Rust object aliases (see above); [`Flash0::take`] hands out its only
//! owner.
//! A read of UART0 `DATA` pops the received byte and a write sends one; no other access has a
//! side effect beyond the one its name says. [`Uart0::take`] and [`Timer0::take`] hand out the
//! only owner of each peripheral, so no two owners ever interleave their accesses.

#![allow(unsafe_code)]

use core::cell::Cell;
use core::ptr;

use critical_section::Mutex;

/// Reads register `addr`.
///
/// # Safety
/// `addr` is one of the registers in the module docs, and the caller owns its peripheral.
unsafe fn read(addr: usize) -> u32 {
    // SAFETY: the caller's contract; see the module docs.
    unsafe { ptr::read_volatile(addr as *const u32) }
}

/// Writes register `addr`.
///
/// # Safety
/// As [`read`].
unsafe fn write(addr: usize, value: u32) {
    // SAFETY: the caller's contract; see the module docs.
    unsafe { ptr::write_volatile(addr as *mut u32, value) }
}

/// Marks a peripheral taken; `true` the first time.
fn take_once(flag: &Mutex<Cell<bool>>) -> bool {
    critical_section::with(|cs| !flag.borrow(cs).replace(true))
}

const UART0: usize = 0x4000_4000;
const UART_DATA: usize = UART0;
const UART_STATE: usize = UART0 + 0x04;
const UART_CTRL: usize = UART0 + 0x08;
const UART_BAUDDIV: usize = UART0 + 0x10;
const UART_TX_FULL: u32 = 1 << 0;
const UART_RX_FULL: u32 = 1 << 1;
const UART_TX_ENABLE: u32 = 1 << 0;
const UART_RX_ENABLE: u32 = 1 << 1;
/// 25 MHz / 16 = 1.56 MBd. QEMU does not pace the UART; the divider only has to be valid.
const UART_BAUD_DIVIDER: u32 = 16;

static UART0_TAKEN: Mutex<Cell<bool>> = Mutex::new(Cell::new(false));

/// Owner of UART0, enabled for both directions.
pub struct Uart0 {
    _private: (),
}

impl Uart0 {
    /// The UART, enabled; `None` if it was already taken.
    pub fn take() -> Option<Self> {
        if !take_once(&UART0_TAKEN) {
            return None;
        }
        // SAFETY: see the module docs; we are the only owner.
        unsafe {
            write(UART_BAUDDIV, UART_BAUD_DIVIDER);
            write(UART_CTRL, UART_TX_ENABLE | UART_RX_ENABLE);
        }
        Some(Self { _private: () })
    }

    fn state(&self) -> u32 {
        // SAFETY: see the module docs; reading STATE has no side effect.
        unsafe { read(UART_STATE) }
    }

    /// The next received byte, if one is waiting.
    pub fn try_read(&mut self) -> Option<u8> {
        if self.state() & UART_RX_FULL == 0 {
            return None;
        }
        // SAFETY: see the module docs; the read pops the byte STATE said is there.
        let word = unsafe { read(UART_DATA) };
        Some(word.to_le_bytes()[0])
    }

    /// Queues `byte` for sending; `false` (nothing sent) while the transmit buffer is full.
    pub fn try_write(&mut self, byte: u8) -> bool {
        if self.state() & UART_TX_FULL != 0 {
            return false;
        }
        // SAFETY: see the module docs; STATE said the transmit buffer has room.
        unsafe { write(UART_DATA, u32::from(byte)) };
        true
    }

    /// Whether the transmit buffer is full.
    pub fn tx_full(&self) -> bool {
        self.state() & UART_TX_FULL != 0
    }
}

const TIMER0: usize = 0x4000_0000;
const TIMER_CTRL: usize = TIMER0;
const TIMER_VALUE: usize = TIMER0 + 0x04;
const TIMER_RELOAD: usize = TIMER0 + 0x08;
const TIMER_ENABLE: u32 = 1 << 0;

static TIMER0_TAKEN: Mutex<Cell<bool>> = Mutex::new(Cell::new(false));

/// Owner of TIMER0, running free at the core clock (it wraps every 2^32 cycles: 171.8 s).
pub struct Timer0 {
    _private: (),
}

impl Timer0 {
    /// The timer, counting from zero; `None` if it was already taken.
    pub fn take() -> Option<Self> {
        if !take_once(&TIMER0_TAKEN) {
            return None;
        }
        // SAFETY: see the module docs; we are the only owner.
        unsafe {
            write(TIMER_CTRL, 0);
            write(TIMER_RELOAD, u32::MAX);
            write(TIMER_VALUE, u32::MAX);
            write(TIMER_CTRL, TIMER_ENABLE);
        }
        Some(Self { _private: () })
    }

    /// Core clock cycles since [`take`](Self::take), modulo 2^32.
    pub fn cycles(&self) -> u32 {
        // SAFETY: see the module docs; reading VALUE has no side effect.
        u32::MAX - unsafe { read(TIMER_VALUE) }
    }
}

/// Entropy for the client's uuid and jitter seed, different on every boot: the host's clock
/// read through semihosting (`SYS_TIME`, seconds since 1970, and `SYS_CLOCK`, centiseconds
/// since QEMU started). A real device uses its hardware RNG or a boot counter in flash.
pub fn boot_entropy() -> u64 {
    // SAFETY: SYS_TIME and SYS_CLOCK take no parameter block (the argument register is 0) and
    // only return a number; the semihosting call touches no memory of the program.
    let (time, clock) = unsafe {
        (
            cortex_m_semihosting::syscall!(TIME),
            cortex_m_semihosting::syscall!(CLOCK),
        )
    };
    ((time as u64) << 32) ^ clock as u64
}

#[cfg(feature = "persist")]
/// Start of the emulated flash chip (see the module docs).
const FLASH0: usize = 0x203F_0000;
#[cfg(feature = "persist")]
/// Its size: 16 erase pages of 4 KiB.
pub const FLASH0_SIZE: usize = 64 * 1024;

#[cfg(feature = "persist")]
static FLASH0_TAKEN: Mutex<Cell<bool>> = Mutex::new(Cell::new(false));

#[cfg(feature = "persist")]
/// Owner of the emulated flash chip: word reads, word programs (which, as on NOR flash, can only
/// clear bits) and erases to all ones. The `NorFlash` implementation is in `flash.rs`.
pub struct Flash0 {
    _private: (),
}

#[cfg(feature = "persist")]
impl Flash0 {
    /// The chip; `None` if it was already taken.
    pub fn take() -> Option<Self> {
        take_once(&FLASH0_TAKEN).then_some(Self { _private: () })
    }

    /// The word at byte offset `at` (a multiple of 4 below [`FLASH0_SIZE`]; others read 0).
    pub fn read_word(&self, at: usize) -> u32 {
        if !at.is_multiple_of(4) || at >= FLASH0_SIZE {
            return 0;
        }
        // SAFETY: see the module docs; an aligned word inside the flash window.
        unsafe { read(FLASH0 + at) }
    }

    /// Programs the word at `at`: bits can only go from 1 to 0, as on NOR flash.
    pub fn program_word(&mut self, at: usize, value: u32) {
        if !at.is_multiple_of(4) || at >= FLASH0_SIZE {
            return;
        }
        // SAFETY: see the module docs; an aligned word inside the flash window, and we are its
        // only owner.
        unsafe { write(FLASH0 + at, read(FLASH0 + at) & value) }
    }

    /// Erases the word at `at` to all ones.
    pub fn erase_word(&mut self, at: usize) {
        if !at.is_multiple_of(4) || at >= FLASH0_SIZE {
            return;
        }
        // SAFETY: as for `program_word`.
        unsafe { write(FLASH0 + at, u32::MAX) }
    }
}

#[cfg(feature = "e2e-reset")]
/// Resets the whole system (`SCB.AIRCR.SYSRESETREQ`): a warm reset, as a watchdog or a firmware
/// update would cause. SRAM keeps its contents; the firmware starts again from its reset vector.
pub fn system_reset() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}

#[cfg(any(feature = "e2e-reset", feature = "tls"))]
/// The host's wall clock through semihosting (`SYS_TIME`): whole seconds since 1970, as a
/// device would get its time from SNTP, GNSS or its cellular network.
pub fn host_unix_seconds() -> u64 {
    // SAFETY: SYS_TIME takes no parameter block and only returns a number.
    let t = unsafe { cortex_m_semihosting::syscall!(TIME) };
    t as u64
}

unsafe extern "C" {
    /// The lowest address the stack may grow to (cortex-m-rt's linker script: the end of
    /// `.bss` and `.uninit`).
    static _stack_end: u32;
    /// The initial stack pointer: the top of the stack (the end of RAM).
    static _stack_start: u32;
}

/// The word painted over the unused stack, to find how deep it ever went.
const STACK_PAINT: u32 = 0x5a5a_a5a5;
/// Left unpainted below the current stack pointer: the painting function's own frame.
const PAINT_MARGIN: usize = 256;

/// Paints the stack below the current stack pointer (call it first thing in `main`), so
/// [`stack_peak`] can tell how deep the stack has gone since.
pub fn paint_stack() {
    let bottom = ptr::addr_of!(_stack_end) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = bottom;
    while at + 4 <= sp.saturating_sub(PAINT_MARGIN) {
        // SAFETY: between the end of the statics and the current stack pointer less a margin
        // lies only unused stack, which nothing reads before writing it.
        unsafe { write(at, STACK_PAINT) };
        at += 4;
    }
}

/// The deepest the stack has gone since [`paint_stack`], in bytes from its top (interrupt
/// frames included: they share the main stack).
pub fn stack_peak() -> usize {
    let bottom = ptr::addr_of!(_stack_end) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut at = bottom;
    // SAFETY: reads of the stack region between the end of the statics and the current stack
    // pointer.
    while at < sp && unsafe { read(at) } == STACK_PAINT {
        at += 4;
    }
    (ptr::addr_of!(_stack_start) as usize).saturating_sub(at)
}
