//! [`TcpConnect`]: the embassy driver's [`Connect`] over an embassy-net [`TcpSocket`] to a fixed
//! [`IpEndpoint`], so the [`Runner`](super::embassy::Runner) can send plain HTTP through
//! embassy's own TCP/IP stack.
//!
//! A thin adapter with no policy: it opens the socket, forwards reads and writes, and closes it
//! so it can be opened again. Timeouts of requests, reconnects and retries stay in the runner
//! and the client; socket options (keep-alive, Nagle, an idle timeout) are the caller's, set on
//! the socket before wrapping it or through [`TcpConnect::socket_mut`]. Errors are the socket's
//! [`Error`]; a failed connect is reported as [`Error::ConnectionReset`] (its
//! [`ConnectError`](embassy_net::tcp::ConnectError) is logged at debug level).
//!
//! With the `embassy-net-dns` feature, `DnsTcpConnect` connects to a host name instead,
//! resolved at every connect through an `embedded-nal-async` `Dns` resolver under a timeout.
//!
//! For HTTPS, give the connection to `tls::TlsDialer` (feature `tls`) and the dialer to the
//! runner's `run_dialed`: a verified TLS session per connection.
//!
//! # Example
//!
//! One task serving the client over a socket to a local ingest server (on firmware, `spawn` it
//! from `main` with the stack the network task runs):
//!
//! ```no_run
//! use embassy_net::tcp::TcpSocket;
//! use embassy_net::{Ipv4Address, Stack};
//! use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
//! use posthog_embedded::adapters::embassy::{self, Buffers, Posthog, Runner, State};
//! use posthog_embedded::adapters::embassy_net::TcpConnect;
//! use posthog_embedded::client::{Client, Config};
//! use posthog_embedded::resources::Resources;
//!
//! type M = CriticalSectionRawMutex;
//!
//! /// `boot_seed`: 64 bits from the hardware RNG, different at every boot. The storage comes
//! /// from statics (`ConstStaticCell`, `StaticCell`) on firmware.
//! fn posthog(
//!     boot_seed: u64,
//!     resources: &'static mut Resources<4096, 16, 128, 2048>,
//!     state: &'static mut State<'static, M>,
//!     buffers: Buffers<'static>,
//! ) -> (Posthog<'static, M>, Runner<'static, M>) {
//!     let client = Client::new(Config::new("phc_project_token", boot_seed), resources)
//!         .expect("valid configuration");
//!     embassy::new(client, state, buffers, "192.168.1.10:8080").expect("a host")
//! }
//!
//! async fn posthog_task(stack: Stack<'static>, mut runner: Runner<'static, M>) -> ! {
//!     let (mut socket_rx, mut socket_tx) = ([0u8; 1024], [0u8; 1024]);
//!     let socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
//!     let conn = TcpConnect::new(socket, (Ipv4Address::new(192, 168, 1, 10), 8080));
//!     runner.run(conn).await
//! }
//! ```
//!
//! `examples/embassy_net_host.rs` runs this on a Linux TAP device.

use embassy_net::tcp::{Error, State, TcpSocket};
use embassy_net::IpEndpoint;
use embassy_time::{with_timeout, Duration};

use crate::net::transport::Connect;

#[cfg(feature = "embassy-net-dns")]
mod dns;
#[cfg(feature = "embassy-net-dns")]
pub use dns::{DnsConnectError, DnsTcpConnect};

/// [`Connect`] over an embassy-net [`TcpSocket`] to a fixed remote endpoint.
///
/// - `connect`: `TcpSocket::connect` to the endpoint. A socket left open (a connect or close
///   cancelled by a timeout) is aborted first, so a new connection can always be attempted.
/// - `disconnect`: a graceful close (our FIN sent and acknowledged, the peer's FIN received,
///   unread data discarded) for at most [`close_timeout`](Self::close_timeout), then an abort
///   (RST) if the connection is still open, leaving the socket ready for the next `connect`.
/// - `Read` / `Write`: the socket's.
pub struct TcpConnect<'a> {
    socket: TcpSocket<'a>,
    remote: IpEndpoint,
    close_timeout: Duration,
}

impl<'a> TcpConnect<'a> {
    /// The default bound on a graceful close: 1 s.
    pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

    /// Connects `socket` to `remote` (an [`IpEndpoint`] or an `(address, port)` pair).
    pub fn new(socket: TcpSocket<'a>, remote: impl Into<IpEndpoint>) -> Self {
        Self {
            socket,
            remote: remote.into(),
            close_timeout: Self::DEFAULT_CLOSE_TIMEOUT,
        }
    }

    /// Sets how long `disconnect` waits for a graceful close before aborting (default
    /// [`DEFAULT_CLOSE_TIMEOUT`](Self::DEFAULT_CLOSE_TIMEOUT)). Also bounds the wait for the
    /// RST after an abort.
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// The endpoint `connect` connects to.
    #[must_use]
    pub fn remote(&self) -> IpEndpoint {
        self.remote
    }

    /// The socket.
    #[must_use]
    pub fn socket(&self) -> &TcpSocket<'a> {
        &self.socket
    }

    /// The socket, to change its options (keep-alive, Nagle, timeout).
    pub fn socket_mut(&mut self) -> &mut TcpSocket<'a> {
        &mut self.socket
    }

    /// Gives the socket back.
    #[must_use]
    pub fn into_inner(self) -> TcpSocket<'a> {
        self.socket
    }

    /// Whether the socket has a connection (in any state but CLOSED and TIME-WAIT, from which
    /// smoltcp connects again).
    fn is_open(&self) -> bool {
        !matches!(self.socket.state(), State::Closed | State::TimeWait)
    }

    /// Aborts the connection and waits (bounded) until the RST is sent.
    async fn abort(&mut self) {
        self.socket.abort();
        let _ = with_timeout(self.close_timeout, self.socket.flush()).await;
    }

    /// Waits until our FIN is acknowledged and the peer's FIN has arrived, discarding what
    /// the peer still sends. Errors mean the connection is gone, which is the goal too.
    async fn finish_close(&mut self) -> Result<(), Error> {
        self.socket.flush().await?;
        while self.socket.may_recv() {
            self.socket.read_with(|unread| (unread.len(), ())).await?;
        }
        Ok(())
    }
}

impl embedded_io_async::ErrorType for TcpConnect<'_> {
    type Error = Error;
}

impl embedded_io_async::Read for TcpConnect<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.socket.read(buf).await
    }
}

impl embedded_io_async::Write for TcpConnect<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.socket.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Error> {
        self.socket.flush().await
    }
}

impl Connect for TcpConnect<'_> {
    async fn connect(&mut self) -> Result<(), Error> {
        if self.is_open() {
            self.abort().await;
        }
        self.socket.connect(self.remote).await.map_err(|e| {
            ph_debug!("tcp connect failed: {:?}", e);
            Error::ConnectionReset
        })
    }

    async fn disconnect(&mut self) {
        self.socket.close();
        let _ = with_timeout(self.close_timeout, self.finish_close()).await;
        if self.is_open() {
            self.abort().await;
        }
    }
}
