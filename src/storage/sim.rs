//! [`SimFlash`]: a NOR flash in RAM that can lose power at any step, return errors on demand
//! and flip bits, for host tests of everything built on the storage layer (feature `std`).
//!
//! It is strict where real parts are strict: reads, writes and erases must be aligned to
//! `READ_SIZE`, `WRITE_SIZE` and `ERASE_SIZE`; a word may be written once between erases (a
//! second write panics, as it would corrupt ECC flash such as the STM32H7's); writing can only
//! clear bits. Every word written and every page erased is one **step**. After
//! [`cut_power_after(n)`](SimFlash::cut_power_after) steps the next step is torn: a torn word
//! holds some of its new bits (chosen by a seeded generator), a torn erase leaves the page a mix
//! of erased and old bytes, and every operation fails until [`power_on`](SimFlash::power_on).

// A test double: every index is checked by `check` first, and writing a word twice is a bug
// in the code under test that must stop the test.
#![allow(clippy::indexing_slicing, clippy::panic)]

use std::vec;
use std::vec::Vec;

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// What a [`SimFlash`] operation failed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimError {
    /// Misaligned or out of bounds (a bug in the caller).
    Kind(NorFlashErrorKind),
    /// The power was cut (this operation was torn, or the device is off).
    PowerCut,
    /// An error injected with [`SimFlash::fail_after`].
    Injected,
}

impl NorFlashError for SimError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::Kind(k) => *k,
            Self::PowerCut | Self::Injected => NorFlashErrorKind::Other,
        }
    }
}

/// A simulated NOR flash of `pages` pages of `E` bytes, written in words of `W` bytes (also its
/// read size). See the [module docs](self).
#[derive(Clone, Debug)]
pub struct SimFlash<const W: usize = 4, const E: usize = 4096> {
    mem: Vec<u8>,
    written: Vec<bool>,
    erases: Vec<u32>,
    steps: u64,
    cut_at: Option<u64>,
    fail_at: Option<u64>,
    fail_late_at: Option<u64>,
    /// Reads touching this range fail, this many more times.
    read_fail: Option<(core::ops::Range<usize>, u32)>,
    off: bool,
    rng: u64,
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    /// An erased flash of `pages` pages; `seed` drives how torn steps tear.
    #[must_use]
    pub fn new(pages: usize, seed: u64) -> Self {
        Self {
            mem: vec![0xFF; pages * E],
            written: vec![false; pages * E / W],
            erases: vec![0; pages],
            steps: 0,
            cut_at: None,
            fail_at: None,
            fail_late_at: None,
            read_fail: None,
            off: false,
            rng: seed | 1,
        }
    }

    /// Steps (words written and pages erased) so far.
    #[must_use]
    pub const fn steps(&self) -> u64 {
        self.steps
    }

    /// Tears the step after `n` more steps and turns the power off.
    pub fn cut_power_after(&mut self, n: u64) {
        self.cut_at = Some(self.steps + n);
    }

    /// Makes the step after `n` more steps fail cleanly (nothing changes; the power stays on).
    pub fn fail_after(&mut self, n: u64) {
        self.fail_at = Some(self.steps + n);
    }

    /// Makes the write call that contains the step after `n` more steps report an error
    /// although every word of it was programmed (a controller that flags a verify error
    /// spuriously, or a timeout after the program completed).
    pub fn fail_late_after(&mut self, n: u64) {
        self.fail_late_at = Some(self.steps + n);
    }

    /// Makes the next `times` reads that touch `range` fail (`u32::MAX`: every read), until
    /// the page holding it is erased, as an ECC error on a torn word does. Reads are not steps.
    pub fn fail_reads(&mut self, range: core::ops::Range<usize>, times: u32) {
        self.read_fail = Some((range, times));
    }

    /// Turns the power back on (clearing any pending cut or failure), as at a reset.
    pub fn power_on(&mut self) {
        self.off = false;
        self.cut_at = None;
        self.fail_at = None;
        self.fail_late_at = None;
    }

    /// Whether the power is off.
    #[must_use]
    pub const fn is_off(&self) -> bool {
        self.off
    }

    /// Flips bit `bit` (0..8) of the byte at `addr`, as radiation or a worn cell would.
    pub fn flip_bit(&mut self, addr: usize, bit: u8) {
        if let Some(b) = self.mem.get_mut(addr) {
            *b ^= 1 << (bit & 7);
        }
    }

    /// The raw contents.
    #[must_use]
    pub fn contents(&self) -> &[u8] {
        &self.mem
    }

    /// How many times each page was erased.
    #[must_use]
    pub fn erase_counts(&self) -> &[u32] {
        &self.erases
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Counts a step; `Some(true)` when it must tear, `Some(false)` when it must fail cleanly.
    fn step(&mut self) -> Result<(), SimError> {
        if self.off {
            return Err(SimError::PowerCut);
        }
        let now = self.steps;
        self.steps += 1;
        if self.fail_at == Some(now) {
            self.fail_at = None;
            return Err(SimError::Injected);
        }
        if self.cut_at == Some(now) {
            self.off = true;
            return Err(SimError::PowerCut);
        }
        Ok(())
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<(usize, usize), SimError> {
        let from = offset as usize;
        if !from.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(SimError::Kind(NorFlashErrorKind::NotAligned));
        }
        if from + len > self.mem.len() {
            return Err(SimError::Kind(NorFlashErrorKind::OutOfBounds));
        }
        Ok((from, from + len))
    }
}

impl<const W: usize, const E: usize> ErrorType for SimFlash<W, E> {
    type Error = SimError;
}

impl<const W: usize, const E: usize> ReadNorFlash for SimFlash<W, E> {
    const READ_SIZE: usize = W;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), SimError> {
        if self.off {
            return Err(SimError::PowerCut);
        }
        let (from, to) = self.check(offset, bytes.len(), W)?;
        if let Some((range, times)) = self.read_fail.as_mut() {
            if *times > 0 && from < range.end && range.start < to {
                if *times != u32::MAX {
                    *times -= 1;
                }
                return Err(SimError::Injected);
            }
        }
        bytes.copy_from_slice(&self.mem[from..to]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for SimFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), SimError> {
        if to < from {
            return Err(SimError::Kind(NorFlashErrorKind::OutOfBounds));
        }
        let (a, b) = self.check(from, (to - from) as usize, E)?;
        for page in (a..b).step_by(E) {
            match self.step() {
                Ok(()) => {}
                Err(SimError::PowerCut) if self.off && self.cut_at.is_some() => {
                    // Torn erase: a random mix of erased and old bytes.
                    self.cut_at = None;
                    for i in page..page + E {
                        if self.next_rand() & 1 == 0 {
                            self.mem[i] = 0xFF;
                        }
                    }
                    for w in page / W..(page + E) / W {
                        self.written[w] = self.mem[w * W..(w + 1) * W].iter().any(|&b| b != 0xFF);
                    }
                    return Err(SimError::PowerCut);
                }
                Err(e) => return Err(e),
            }
            if self
                .read_fail
                .as_ref()
                .is_some_and(|(r, _)| r.start < page + E && page < r.end)
            {
                self.read_fail = None;
            }
            self.mem[page..page + E].fill(0xFF);
            self.written[page / W..(page + E) / W].fill(false);
            self.erases[page / E] += 1;
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), SimError> {
        let (from, to) = self.check(offset, bytes.len(), W)?;
        let mut late = false;
        for (i, chunk) in bytes.chunks(W).enumerate() {
            let at = from + i * W;
            let word = at / W;
            assert!(
                !self.written[word],
                "SimFlash: word at {at:#x} written twice without an erase"
            );
            if self.fail_late_at == Some(self.steps) {
                self.fail_late_at = None;
                late = true;
            }
            match self.step() {
                Ok(()) => {}
                Err(SimError::PowerCut) if self.off && self.cut_at.is_some() => {
                    self.cut_at = None;
                    self.tear(at, to, chunk);
                    return Err(SimError::PowerCut);
                }
                Err(e) => return Err(e),
            }
            for (j, &b) in chunk.iter().enumerate() {
                self.mem[at + j] &= b;
            }
            self.written[word] = true;
        }
        if late {
            return Err(SimError::Injected);
        }
        Ok(())
    }
}

impl<const W: usize, const E: usize> SimFlash<W, E> {
    /// A write torn at the word at `at`, in a call that ends at `to`: the torn word keeps a
    /// random part of its new zero bits (sometimes none, so it still reads erased), and each
    /// later word of the call is left erased or partly programmed. A word counts as written
    /// once any of its bits is programmed; one that still reads erased may be written again.
    fn tear(&mut self, at: usize, to: usize, chunk: &[u8]) {
        let none = self.next_rand().is_multiple_of(4);
        for (j, &b) in chunk.iter().enumerate() {
            let keep = if none { 0xFF } else { self.next_rand() as u8 };
            self.mem[at + j] &= b | keep;
        }
        for w in at / W..to / W {
            if w * W > at && self.next_rand().is_multiple_of(3) {
                for i in w * W..(w + 1) * W {
                    self.mem[i] &= self.next_rand() as u8 | 0xF0;
                }
            }
            self.written[w] = self.mem[w * W..(w + 1) * W].iter().any(|&b| b != 0xFF);
        }
    }
}
