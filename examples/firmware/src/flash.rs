//! The emulated flash chip as `embedded-storage-async`'s `NorFlash`, as a real board's flash
//! driver (embassy-stm32's, esp-hal's) would offer it: 4-byte writes, 4 KiB erase pages.

use embedded_storage_async::nor_flash::{
    ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

use crate::hw::{Flash0, FLASH0_SIZE};

/// Misaligned or out of bounds (the storage layer never asks for either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlashError(NorFlashErrorKind);

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl ErrorType for Flash0 {
    type Error = FlashError;
}

fn check(offset: u32, len: usize, align: usize) -> Result<usize, FlashError> {
    let at = offset as usize;
    if !at.is_multiple_of(align) || !len.is_multiple_of(align) {
        return Err(FlashError(NorFlashErrorKind::NotAligned));
    }
    if at.checked_add(len).is_none_or(|end| end > FLASH0_SIZE) {
        return Err(FlashError(NorFlashErrorKind::OutOfBounds));
    }
    Ok(at)
}

impl ReadNorFlash for Flash0 {
    const READ_SIZE: usize = 1;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let at = check(offset, bytes.len(), 1)?;
        for (i, b) in bytes.iter_mut().enumerate() {
            let pos = at + i;
            let word = self.read_word(pos - pos % 4).to_le_bytes();
            *b = word.get(pos % 4).copied().unwrap_or(0xFF);
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        FLASH0_SIZE
    }
}

impl NorFlash for Flash0 {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = (to as usize).saturating_sub(from as usize);
        let at = check(from, len, Self::ERASE_SIZE)?;
        for word in (at..at + len).step_by(4) {
            self.erase_word(word);
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let at = check(offset, bytes.len(), Self::WRITE_SIZE)?;
        for (i, chunk) in bytes.chunks_exact(4).enumerate() {
            let mut w = [0u8; 4];
            w.copy_from_slice(chunk);
            self.program_word(at + i * 4, u32::from_le_bytes(w));
        }
        Ok(())
    }
}
