//! The embassy driver: a [`Runner`] task that moves the client's requests over any byte stream
//! ([`Connect`]: embassy-net `TcpSocket`, a UART modem in transparent mode, a TLS wrapper), and
//! a cheap, `Copy` [`Handle`] that any task uses to capture events and read flags.
//!
//! ```text
//! static SHARED: StaticCell<Shared<NoopRawMutex, 4096, 20, 128, 2048>> = StaticCell::new();
//! let shared = SHARED.init(Shared::new(config)?);            // checks the configuration
//! let runner = Runner::new(shared, conn, EmbassyClock, "us.i.posthog.com", bufs)?; // once only
//! spawner.spawn(posthog_task(runner));
//! let ph = Handle::new(shared, EmbassyClock);
//! ph.capture("boot", "device-42", &EventOptions::new(), |p| { p.prop("fw", "1.2.0")?; Ok(()) })?;
//! ```
//!
//! # Placing and locking the shared state
//!
//! - **Initialise it at run time** (a `StaticCell`, as above) rather than in a
//!   `static SHARED: Shared<..> = Shared::new(config)`: the [`Config`] holds the key as a
//!   pointer, so such a static is not all zeros and the linker puts the whole of it (queue
//!   included) in `.data`, a flash image copied to RAM at boot. Initialised at run time it costs
//!   RAM only.
//! - **Pick the mutex by who captures.** `NoopRawMutex` when only tasks of one executor use
//!   the handles (the usual case): nothing masks interrupts. `CriticalSectionRawMutex` when an
//!   interrupt handler or another executor captures too: then every client call runs in a
//!   critical section, including a definitions load (about 6 million instructions for a 10 KB
//!   document on a Cortex-M4, `BENCHMARKS.md`) and batch rendering, which delays interrupts for
//!   that long.
//!
//! The driver holds no policy: batching, retries, back-off and definitions polling live in
//! [`Client`]. The runner only reads the clock, writes the request the client asks for, feeds
//! the answer back, and sleeps until [`Client::poll_timeout`] or until a handle wakes it. It
//! never picks an embassy time driver or tick rate; the application does.
//!
//! One request is in flight at a time over one connection, kept alive between requests and
//! reopened when the server closes it, when a request fails, or when a reused connection turns
//! out to be closed before any answer (then the request is sent once more on a fresh one).

use core::cell::{Cell, RefCell};

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::signal::Signal;

use crate::client::{Client, Config, ConfigError};
pub use crate::net::transport::Connect;

mod clock;
mod handle;
mod runner;
mod settled;

pub use clock::EmbassyClock;
pub use handle::{Drained, FlagRead, Handle};
pub use runner::{Buffers, Runner, Timeouts};
use settled::Settled;

/// The client and its wake-up signal, shared by the runner and every handle. Initialise it at
/// run time in a `StaticCell` (see the module docs: the seed must differ per boot, and a
/// `static` initialised with a configuration carries a flash image of the whole client). `M` is
/// the mutex flavour (`CriticalSectionRawMutex` when interrupts capture events, `NoopRawMutex`
/// on a single executor).
pub struct Shared<
    M: RawMutex,
    const Q: usize,
    const F: usize,
    const N: usize,
    const B: usize,
    const T: usize = 256,
> {
    client: Mutex<M, RefCell<Client<'static, Q, F, N, B, T>>>,
    wake: Signal<M, ()>,
    /// Notified by the runner after each request is settled; any number of tasks wait on it.
    settled: Settled<M>,
    /// A [`Runner`] was made for this client (one at most).
    has_runner: Mutex<M, Cell<bool>>,
}

impl<
        M: RawMutex,
        const Q: usize,
        const F: usize,
        const N: usize,
        const B: usize,
        const T: usize,
    > Shared<M, Q, F, N, B, T>
{
    /// Shared state for a client with `config`, checked first.
    ///
    /// # Errors
    /// [`ConfigError`] (see [`Config::validate`]).
    pub const fn new(config: Config<'static>) -> Result<Self, ConfigError> {
        if let Err(e) = config.validate() {
            return Err(e);
        }
        Ok(Self {
            client: Mutex::new(RefCell::new(Client::new(config))),
            wake: Signal::new(),
            settled: Settled::new(),
            has_runner: Mutex::new(Cell::new(false)),
        })
    }

    /// Runs `f` on the client (briefly: it holds the lock), then wakes the runner.
    pub fn with<R>(&self, f: impl FnOnce(&mut Client<'static, Q, F, N, B, T>) -> R) -> R {
        let r = self.client.lock(|c| f(&mut c.borrow_mut()));
        self.wake.signal(());
        r
    }
}
