//! UART0 as the library's network stream: `embedded_io_async::{Read, Write}` plus
//! [`Connect`], the way a cellular or Wi-Fi module in transparent mode is used.
//!
//! Here QEMU plays the modem: it bridges UART0 to a TCP connection to the ingest server
//! (`-chardev socket,...,reconnect=1 -serial chardev:...`). When the server closes the
//! connection, QEMU opens a new one about a second later; bytes written meanwhile are lost. A
//! UART has no carrier-detect line here, so after a close the link waits out that reconnect
//! delay and throws away anything left over from the old connection. A request that still
//! gets no answer ends in the runner's request timeout and is retried by the client.
//!
//! [`Connect::disconnect`] only notes when the close happened; [`Connect::connect`] waits for
//! what is left of the reconnect delay. The library's runner connects before it renders a
//! batch, so that wait is not counted in the events' `offset`.

use core::convert::Infallible;

use embassy_time::{Duration, Instant, Timer};
use embedded_io_async::{ErrorType, Read, Write};
use posthog_embedded::adapters::embassy::Connect;

use crate::hw::Uart0;

/// How long the bridge takes to reconnect after a close: QEMU retries 1 s after it sees the
/// close (`reconnect=1`); the rest is margin for a loaded host.
pub const RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// Polls of an idle UART before sleeping for a tick: bytes of one burst arrive microseconds
/// apart, so a short spin keeps throughput up without busy-waiting through long silences.
const SPINS_BEFORE_SLEEP: u32 = 32;

/// UART0 as a reconnectable byte stream.
pub struct UartLink {
    uart: Uart0,
    /// When the last connection was closed (`None`: never connected yet).
    closed_at: Option<Instant>,
}

impl UartLink {
    /// A stream over `uart`.
    pub fn new(uart: Uart0) -> Self {
        Self {
            uart,
            closed_at: None,
        }
    }

    /// Drops whatever is waiting in the receiver (the tail of a previous connection).
    fn drain(&mut self) {
        while self.uart.try_read().is_some() {}
    }
}

/// Waits briefly for the UART: a cooperative yield at first, then one timer tick.
async fn idle(spins: &mut u32) {
    if *spins < SPINS_BEFORE_SLEEP {
        *spins += 1;
        embassy_futures::yield_now().await;
    } else {
        Timer::after_ticks(1).await;
    }
}

impl ErrorType for UartLink {
    type Error = Infallible;
}

impl Read for UartLink {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut spins = 0;
        loop {
            let mut n = 0;
            for slot in buf.iter_mut() {
                match self.uart.try_read() {
                    Some(b) => {
                        *slot = b;
                        n += 1;
                    }
                    None => break,
                }
            }
            if n > 0 {
                return Ok(n);
            }
            idle(&mut spins).await;
        }
    }
}

impl Write for UartLink {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut spins = 0;
        loop {
            let mut n = 0;
            for &b in buf {
                if !self.uart.try_write(b) {
                    break;
                }
                n += 1;
            }
            if n > 0 {
                return Ok(n);
            }
            idle(&mut spins).await;
        }
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        let mut spins = 0;
        while self.uart.tx_full() {
            idle(&mut spins).await;
        }
        Ok(())
    }
}

impl UartLink {
    /// Waits until the bridge has had time to reconnect after the last close.
    async fn bridge_ready(&mut self) {
        if let Some(closed) = self.closed_at {
            Timer::at(closed + RECONNECT_DELAY).await;
        }
        self.drain();
    }
}

impl Connect for UartLink {
    async fn connect(&mut self) -> Result<(), Infallible> {
        self.bridge_ready().await;
        Ok(())
    }

    async fn disconnect(&mut self) {
        self.closed_at = Some(Instant::now());
        self.drain();
    }
}
