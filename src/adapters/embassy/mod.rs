//! The embassy driver, shaped like embassy-net: [`new`] splits a [`Client`] into a `Copy`
//! handle, [`Posthog`], that any task uses to capture events and read flags, and a [`Runner`]
//! that one task runs over a connection ([`Connect`]: an embassy-net `TcpSocket`, a UART modem
//! in transparent mode, a TLS wrapper).
//!
//! ```text
//! type M = CriticalSectionRawMutex;
//! static RESOURCES: ConstStaticCell<Resources<4096, 20, 128, 2048, 64>> =
//!     ConstStaticCell::new(Resources::new());
//! static STATE: StaticCell<State<'static, M>> = StaticCell::new();
//! static TX: ConstStaticCell<[u8; 4096]> = ConstStaticCell::new([0; 4096]);
//! // .. RX (1 KiB) and BODY (as large as your definitions) the same way
//!
//! let client = Client::new(Config::new("phc_...", seed), RESOURCES.take())?;
//! let (posthog, runner) = embassy::new(client, STATE.init(State::new()),
//!     Buffers { tx: TX.take(), rx: RX.take(), body: BODY.take() }, "us.i.posthog.com")?;
//! spawner.spawn(posthog_task(runner, connection));   // runner.run(connection).await
//! posthog.capture("boot", "device-42", |p| { p.prop("fw", "1.2.0")?; Ok(()) })?;
//!
//! #[embassy_executor::task]
//! async fn posthog_task(mut runner: Runner<'static, M>, conn: TcpConnect<'static>) -> ! {
//!     runner.run(conn).await
//! }
//! ```
//!
//! A firmware names the capacities once ([`Resources`](crate::resources::Resources)) and the
//! mutex flavour `M` in each type: nothing else is generic.
//!
//! # Time
//!
//! The monotonic clock is `embassy_time::Instant` (whatever time driver and tick rate the
//! application picked; this library never picks one). A wall clock that arrives later (SNTP,
//! GNSS, cellular network time) is given once with [`Posthog::set_wall_clock`]; from then on
//! events carry a `timestamp` and relative date filters can be evaluated.
//!
//! # Picking the mutex
//!
//! `NoopRawMutex` when only tasks of one executor use the handle (the usual case): nothing
//! masks interrupts. `CriticalSectionRawMutex` when an interrupt handler or another executor
//! captures too: then every client call runs in a critical section, and batch rendering delays
//! interrupts for as long as it takes.
//!
//! A definitions load is the one long operation (about 1.1 million instructions for a 10 KB
//! document on a Cortex-M4, validated then loaded; `BENCHMARKS.md`). To keep it out of the
//! critical section, give the runner a staging store ([`Runner::stage_definitions`]) and load
//! snapshots with [`Posthog::load_definitions_staged`]: the document is parsed into the
//! staging store without the lock, in one pass (about 0.58 million instructions), and only an
//! O(1) swap runs under it. The cost is one more flag store of
//! RAM, with the client's capacities (`FlagTables::new` over a second `FlagStorage<F, N, B>`;
//! 6,040 bytes for the 20-flag sample). Without one, the load runs under the lock.
//!
//! The driver holds no policy: batching, retries, back-off and definitions polling live in
//! [`Client`]. The runner only reads the clock, writes the request the client asks for, feeds
//! the answer back, and sleeps until [`Client::poll_timeout`] or until the handle wakes it.
//!
//! One request is in flight at a time over one connection, kept alive between requests and
//! reopened when the server closes it, when a request fails, or when a reused connection turns
//! out to be closed before any answer (then the request is sent once more on a fresh one).

use core::cell::{Cell, RefCell};

use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::blocking_mutex::Mutex;
use embassy_sync::signal::Signal;

use crate::client::{Client, ConfigError};
pub use crate::net::transport::Connect;
use crate::time::{Instant, Now, UnixMillis};

mod clock;
mod handle;
mod runner;
mod settled;
#[cfg(feature = "storage")]
mod storage;

pub use clock::EmbassyClock;
pub use handle::{Drained, FlagRead, Posthog};
pub use runner::{Buffers, Link, Runner, Timeouts};
use settled::Settled;
#[cfg(feature = "storage")]
pub use storage::{storage, AlreadyAttached, DefinitionsStats, StorageBuffers, StorageRunner};

/// Storage for the state the handle and the runner share (the client behind its mutex, the
/// wake-up signal, the delivery notifier, the wall-clock offset). `const fn new()`: keep it in
/// a `static` (`StaticCell`) and give it to [`new`].
pub struct State<'d, M: RawMutex> {
    shared: Option<Shared<'d, M>>,
}

impl<M: RawMutex> Default for State<'_, M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: RawMutex> State<'_, M> {
    /// Empty state.
    #[must_use]
    pub const fn new() -> Self {
        Self { shared: None }
    }
}

/// Splits `client` into the handle every task uses and the runner one task runs, sending to
/// `host` (the `Host` header: `us.i.posthog.com`, or `192.168.1.10:8080`). The client was
/// checked when it was built; `state` and `buffers` are the driver's storage.
///
/// # Errors
/// [`ConfigError::EmptyHost`] for a blank `host`.
pub fn new<'d, M: RawMutex>(
    client: Client<'d>,
    state: &'d mut State<'d, M>,
    buffers: Buffers<'d>,
    host: &'d str,
) -> Result<(Posthog<'d, M>, Runner<'d, M>), ConfigError> {
    if crate::json::is_blank(host) {
        return Err(ConfigError::EmptyHost);
    }
    let shared: &'d Shared<'d, M> = state.shared.insert(Shared {
        client: Mutex::new(RefCell::new(client)),
        wake: Signal::new(),
        settled: Settled::new(),
        wall_offset: Mutex::new(Cell::new(None)),
        #[cfg(feature = "storage")]
        persist_wake: Signal::new(),
        #[cfg(feature = "storage")]
        mailbox: Mutex::new(RefCell::new(storage::Mailbox::new())),
    });
    Ok((Posthog::new(shared), Runner::new(shared, buffers, host)))
}

/// What the handle and the runner share.
pub(crate) struct Shared<'d, M: RawMutex> {
    client: Mutex<M, RefCell<Client<'d>>>,
    wake: Signal<M, ()>,
    /// Notified by the runner after each request is settled; any number of tasks wait on it.
    settled: Settled<M>,
    /// Wall clock minus monotonic clock, in ms, once the application set it.
    wall_offset: Mutex<M, Cell<Option<i64>>>,
    /// Wakes the storage runner (like `wake`, for the flash).
    #[cfg(feature = "storage")]
    persist_wake: Signal<M, ()>,
    /// New definitions on their way from the network runner to the storage runner.
    #[cfg(feature = "storage")]
    mailbox: Mutex<M, RefCell<storage::Mailbox<'d>>>,
}

impl<'d, M: RawMutex> Shared<'d, M> {
    /// The current time: `embassy_time::Instant`, and the wall clock when set.
    fn now(&self) -> Now {
        let mono = embassy_time::Instant::now().as_millis();
        let wall = self.wall_offset.lock(Cell::get).and_then(|off| {
            let ms = i64::try_from(mono).ok()?.checked_add(off)?;
            u64::try_from(ms).ok().map(UnixMillis::from_millis)
        });
        Now {
            mono: Instant::from_millis(mono),
            wall,
        }
    }

    /// Runs `f` on the client (briefly: it holds the lock), then wakes the runner.
    fn with<R>(&self, f: impl FnOnce(&mut Client<'d>) -> R) -> R {
        let r = self.client.lock(|c| f(&mut c.borrow_mut()));
        self.wake.signal(());
        #[cfg(feature = "storage")]
        self.persist_wake.signal(());
        r
    }

    /// Runs `f` on the client without waking the runner (reads that change nothing).
    fn peek<R>(&self, f: impl FnOnce(&Client<'d>) -> R) -> R {
        self.client.lock(|c| f(&c.borrow()))
    }
}
