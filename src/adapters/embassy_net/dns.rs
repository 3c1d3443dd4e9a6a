//! [`DnsTcpConnect`]: [`TcpConnect`] to a host name, resolved at every connect through an
//! [`embedded_nal_async::Dns`] resolver (feature `embassy-net-dns`).

use embassy_net::tcp::{Error, TcpSocket};
use embassy_net::{IpAddress, IpEndpoint};
use embassy_time::{with_timeout, Duration};
use embedded_nal_async::{AddrType, Dns};

use super::TcpConnect;
use crate::net::transport::Connect;

/// Why [`DnsTcpConnect`] could not connect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DnsConnectError {
    /// The resolver answered with an error (no such name, no answer, server failure).
    Resolve,
    /// The resolver did not answer within the resolve timeout.
    ResolveTimeout {
        /// The timeout, in milliseconds.
        timeout_ms: u64,
    },
    /// The resolver gave an IPv6 address although an IPv4 one (an `A` record) was asked for.
    Ipv6Answer,
    /// The TCP connection failed, or a read or write on it.
    Tcp(Error),
}

impl core::fmt::Display for DnsConnectError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Resolve => f.write_str("the host name did not resolve"),
            Self::ResolveTimeout { timeout_ms } => {
                write!(f, "the host name did not resolve within {timeout_ms} ms")
            }
            Self::Ipv6Answer => f.write_str("the host name resolved to an IPv6 address"),
            Self::Tcp(e) => write!(f, "tcp: {e:?}"),
        }
    }
}

impl core::error::Error for DnsConnectError {}

impl embedded_io_async::Error for DnsConnectError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self {
            Self::Resolve | Self::ResolveTimeout { .. } | Self::Ipv6Answer => {
                embedded_io_async::ErrorKind::NotConnected
            }
            Self::Tcp(e) => embedded_io_async::Error::kind(e),
        }
    }
}

/// [`Connect`] over an embassy-net [`TcpSocket`] to a host **name**, resolved (to its IPv4
/// address, an `A` record) at every connect
/// (so a device follows the host's address as it changes) through any
/// [`embedded_nal_async::Dns`] resolver: embassy-net's
/// [`DnsSocket`](embassy_net::dns::DnsSocket), or a modem's.
///
/// The resolution is bounded by [`resolve_timeout`](Self::resolve_timeout) (default 5 s). A
/// name that does not resolve, or not in time, fails the connect like a refused connection: the
/// runner counts a transport failure, the client retries with back-off, and every event stays
/// queued. Once resolved, it behaves as [`TcpConnect`] to that address. Nothing is cached: a
/// reconnect resolves again (the resolver may cache, as it sees fit).
///
/// ```no_run
/// use embassy_net::dns::DnsSocket;
/// use embassy_net::tcp::TcpSocket;
/// use embassy_net::Stack;
/// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
/// use posthog_embedded::adapters::embassy::Runner;
/// use posthog_embedded::adapters::embassy_net::DnsTcpConnect;
///
/// async fn posthog_task(stack: Stack<'static>, mut runner: Runner<'static, CriticalSectionRawMutex>) -> ! {
///     let (mut socket_rx, mut socket_tx) = ([0u8; 1024], [0u8; 1024]);
///     let socket = TcpSocket::new(stack, &mut socket_rx, &mut socket_tx);
///     // The DNS servers come from DHCP, or from `StaticConfigV4::dns_servers`.
///     let conn = DnsTcpConnect::new(socket, DnsSocket::new(stack), "ingest.example.com", 80);
///     runner.run(conn).await
/// }
/// ```
pub struct DnsTcpConnect<'a, D> {
    tcp: TcpConnect<'a>,
    resolver: D,
    host: &'a str,
    port: u16,
    resolve_timeout: Duration,
}

impl<'a, D: Dns> DnsTcpConnect<'a, D> {
    /// The default bound on one resolution: 5 s.
    pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

    /// Connects `socket` to `host` (a name, without port) on `port`, resolving it with
    /// `resolver`.
    pub fn new(socket: TcpSocket<'a>, resolver: D, host: &'a str, port: u16) -> Self {
        Self {
            tcp: TcpConnect::new(socket, IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), port)),
            resolver,
            host,
            port,
            resolve_timeout: Self::DEFAULT_RESOLVE_TIMEOUT,
        }
    }

    /// Sets the bound on one resolution (default
    /// [`DEFAULT_RESOLVE_TIMEOUT`](Self::DEFAULT_RESOLVE_TIMEOUT)).
    #[must_use]
    pub fn resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout;
        self
    }

    /// Sets how long `disconnect` waits for a graceful close (see
    /// [`TcpConnect::close_timeout`]).
    #[must_use]
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.tcp = self.tcp.close_timeout(timeout);
        self
    }

    /// The host name `connect` resolves.
    #[must_use]
    pub fn host(&self) -> &str {
        self.host
    }

    /// The address the last resolution gave (`0.0.0.0` before the first).
    #[must_use]
    pub fn remote(&self) -> IpEndpoint {
        self.tcp.remote
    }

    /// The socket, to change its options (keep-alive, Nagle, timeout).
    pub fn socket_mut(&mut self) -> &mut TcpSocket<'a> {
        self.tcp.socket_mut()
    }

    async fn resolve(&self) -> Result<IpEndpoint, DnsConnectError> {
        let answer = with_timeout(
            self.resolve_timeout,
            self.resolver.get_host_by_name(self.host, AddrType::IPv4),
        )
        .await
        .map_err(|_| DnsConnectError::ResolveTimeout {
            timeout_ms: self.resolve_timeout.as_millis(),
        })?;
        match answer {
            Ok(core::net::IpAddr::V4(ip)) => Ok(IpEndpoint::new(IpAddress::Ipv4(ip), self.port)),
            Ok(core::net::IpAddr::V6(_)) => Err(DnsConnectError::Ipv6Answer),
            Err(_e) => {
                #[cfg(all(feature = "log", not(feature = "defmt")))]
                ::log::debug!("dns: {} did not resolve: {:?}", self.host, _e);
                Err(DnsConnectError::Resolve)
            }
        }
    }
}

impl<D> embedded_io_async::ErrorType for DnsTcpConnect<'_, D> {
    type Error = DnsConnectError;
}

impl<D> embedded_io_async::Read for DnsTcpConnect<'_, D> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, DnsConnectError> {
        self.tcp
            .socket
            .read(buf)
            .await
            .map_err(DnsConnectError::Tcp)
    }
}

impl<D> embedded_io_async::Write for DnsTcpConnect<'_, D> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, DnsConnectError> {
        self.tcp
            .socket
            .write(buf)
            .await
            .map_err(DnsConnectError::Tcp)
    }

    async fn flush(&mut self) -> Result<(), DnsConnectError> {
        self.tcp.socket.flush().await.map_err(DnsConnectError::Tcp)
    }
}

impl<D: Dns> Connect for DnsTcpConnect<'_, D> {
    async fn connect(&mut self) -> Result<(), DnsConnectError> {
        if self.tcp.is_open() {
            self.tcp.abort().await;
        }
        let remote = self.resolve().await.inspect_err(|_e| {
            ph_debug!("dns: the host name did not resolve");
        })?;
        self.tcp.remote = remote;
        self.tcp.connect().await.map_err(DnsConnectError::Tcp)
    }

    async fn disconnect(&mut self) {
        self.tcp.disconnect().await;
    }
}
