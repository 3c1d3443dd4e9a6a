//! TLS 1.3 over any [`Connect`] stream (feature `tls`): [`TlsDialer`] opens an
//! [embedded-tls](https://crates.io/crates/embedded-tls) session per connection, with
//! **certificate verification always on** ([`Verifier`]):
//!
//! - the server's chain must lead to one of the roots you give (DER certificates, up to
//!   [`MAX_ANCHORS`]; give a single CA to pin it), with every certificate valid at the device's
//!   wall clock, CA constraints and key usage checked (rustls-webpki's RFC 5280 path building);
//! - the leaf must be valid for the host name the runner sends requests to (the `host` given to
//!   [`embassy::new`](crate::adapters::embassy::new), without its port);
//! - the server must prove it holds the leaf's key (its TLS 1.3 CertificateVerify signature),
//!   and a handshake that skipped Certificate or CertificateVerify is refused
//!   (embedded-tls alone would accept it).
//!
//! There is no switch that turns verification off. Without a wall clock
//! ([`Posthog::set_wall_clock`](crate::adapters::embassy::Posthog::set_wall_clock)) the runner
//! does not dial: events stay queued until the clock is known, with no failed attempt counted
//! (a dial made anyway fails with [`TlsFailure::NoWallClock`]).
//!
//! Keys and signatures: ECDSA P-256 (TLS 1.3 `ecdsa_secp256r1_sha256`, AES-128-GCM, key
//! exchange on P-256); with `tls-p384`, P-384 and SHA-384 too (chains through a P-384 root).
//! RSA is not supported. embedded-tls 0.19 always offers P-384 and Ed25519 handshake
//! signatures as well, and has no way to take them back: a server that holds several
//! certificates and picks one of those (without `tls-p384`, for P-384) is refused with
//! [`CertError::UnsupportedScheme`], never accepted unchecked. Cost: see the README
//! ("Connecting a device to PostHog Cloud").
//!
//! # Buffers
//!
//! The caller's ([`TlsBuffers`]): a **read** buffer for one whole TLS record, [`RECORD_BUF`]
//! (16,640 bytes) for a server that sends full-size records (embedded-tls cannot reassemble a
//! handshake message split across records, and servers ignore requests for smaller ones), and a
//! **write** buffer of at least [`MIN_WRITE_BUF`] (each record carries its length less 128
//! bytes of overhead; 1-2 KiB keeps a batch to a few records).
//!
//! # Finding the roots
//!
//! Ask the host itself, from a machine with OpenSSL:
//! `openssl s_client -connect us.i.posthog.com:443 -servername us.i.posthog.com -showcerts`
//! lists the chain; the last certificate's issuer is the root to embed (take its DER from your
//! OS trust store or the CA's site, `openssl x509 -outform der`). Embed two roots (the current
//! one and its announced successor) so a CA change does not strand devices; to **pin** a CA,
//! give only that one.

mod algs;
mod der;
mod verifier;

use embedded_tls::{
    Aes128GcmSha256, CryptoProvider, TlsConfig, TlsConnection, TlsContext, TlsError,
};
use rand_core::CryptoRngCore;

use crate::net::transport::{Connect, Dial};
use crate::net::TransportError;
use crate::time::UnixMillis;

pub use verifier::{
    CertError, Verifier, MAX_ANCHORS, MAX_HOSTNAME_LEN, MAX_INTERMEDIATES, MAX_SPKI_LEN,
};

/// The read buffer that holds any TLS record: 16 KiB of plaintext plus the record overhead.
pub const RECORD_BUF: usize = 16_640;

/// The smallest write buffer: a ClientHello with a long host name and the 128 bytes of record
/// overhead embedded-tls reserves.
pub const MIN_WRITE_BUF: usize = 512;

/// Smallest read buffer accepted (a server whose records are this small, or a test).
pub const MIN_READ_BUF: usize = 1024;

/// The caller's buffers of a [`TlsDialer`].
pub struct TlsBuffers<'b> {
    /// Incoming records: [`RECORD_BUF`] bytes for a public server.
    pub read: &'b mut [u8],
    /// Outgoing records: at least [`MIN_WRITE_BUF`] bytes.
    pub write: &'b mut [u8],
}

/// Why a [`TlsDialer`] could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlsSetupError {
    /// The read buffer is smaller than [`MIN_READ_BUF`].
    ReadBufferTooSmall {
        /// Its length.
        len: usize,
        /// [`MIN_READ_BUF`].
        min: usize,
    },
    /// The write buffer is smaller than [`MIN_WRITE_BUF`].
    WriteBufferTooSmall {
        /// Its length.
        len: usize,
        /// [`MIN_WRITE_BUF`].
        min: usize,
    },
    /// A trust anchor is unusable, or there are none or too many.
    Roots(CertError),
}

impl core::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::ReadBufferTooSmall { len, min } => {
                write!(f, "TLS read buffer of {len} bytes, at least {min} needed")
            }
            Self::WriteBufferTooSmall { len, min } => {
                write!(f, "TLS write buffer of {len} bytes, at least {min} needed")
            }
            Self::Roots(e) => write!(f, "TLS roots: {e}"),
        }
    }
}

impl core::error::Error for TlsSetupError {}

/// Why the last dial of a [`TlsDialer`] failed ([`TlsDialer::last_failure`]).
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TlsFailure {
    /// No wall clock yet: certificates cannot be checked, nothing was sent.
    NoWallClock,
    /// The stream under TLS did not connect.
    Connect,
    /// The server's certificate or signature was refused.
    Certificate(CertError),
    /// The handshake failed for another reason (the server's alert, a record too large for the
    /// read buffer, an unsupported cipher suite, a broken connection).
    Handshake(TlsError),
    /// The handshake ended without the server proving its identity (no Certificate or
    /// CertificateVerify): refused.
    NotVerified,
}

impl core::fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoWallClock => f.write_str("no wall clock to check certificates"),
            Self::Connect => f.write_str("the connection under TLS failed"),
            Self::Certificate(e) => write!(f, "certificate refused: {e}"),
            Self::Handshake(e) => write!(f, "TLS handshake failed: {e:?}"),
            Self::NotVerified => f.write_str("the server did not prove its identity"),
        }
    }
}

impl core::error::Error for TlsFailure {}

/// The RNG and the verifier, as embedded-tls takes them.
struct Provider<'a, R> {
    rng: R,
    verifier: Verifier<'a>,
}

impl<R: CryptoRngCore> CryptoProvider for Provider<'_, R> {
    type CipherSuite = Aes128GcmSha256;
    // Only for client certificates, which are never sent.
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut self.rng
    }

    fn verifier(
        &mut self,
    ) -> Result<&mut impl embedded_tls::TlsVerifier<Self::CipherSuite>, TlsError> {
        Ok(&mut self.verifier)
    }
}

/// One TLS session of a [`TlsDialer`]: the connection's stream, borrowing the dialer.
pub type TlsSession<'s, C> = TlsConnection<'s, &'s mut C, Aes128GcmSha256>;

/// A [`Dial`]er of verified TLS 1.3 sessions over a [`Connect`] stream (a `TcpConnect`, a
/// `DnsTcpConnect`, a modem's socket), for the embassy runner's
/// [`run_dialed`](crate::adapters::embassy::Runner::run_dialed).
///
/// ```no_run
/// # async fn f(
/// #     mut runner: posthog_embedded::adapters::embassy::Runner<'static, embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex>,
/// #     tcp: impl posthog_embedded::net::transport::Connect,
/// #     trng_seed: [u8; 32],
/// #     root_der: &'static [u8],
/// # ) -> ! {
/// use posthog_embedded::tls::{TlsBuffers, TlsDialer, RECORD_BUF};
///
/// // `root_der`: the root that issued the ingestion host's chain (DER), embedded in the
/// // firmware (`include_bytes!`).
/// let roots: &'static [&'static [u8]] = Box::leak(Box::new([root_der]));
/// let (read, write) = (Box::leak(Box::new([0u8; RECORD_BUF])), Box::leak(Box::new([0u8; 2048])));
/// let buffers = TlsBuffers { read, write };
/// let tls = TlsDialer::with_seed(tcp, buffers, roots, trng_seed).expect("buffers and roots");
/// runner.run_dialed(tls).await
/// # }
/// ```
pub struct TlsDialer<'b, C, R = rand_chacha::ChaCha20Rng> {
    inner: C,
    read: &'b mut [u8],
    write: &'b mut [u8],
    provider: Provider<'b, R>,
    last_failure: Option<TlsFailure>,
    sessions: u32,
}

impl<'b, C: Connect> TlsDialer<'b, C, rand_chacha::ChaCha20Rng> {
    /// [`new`](Self::new) with ChaCha20 seeded by `seed`, which must come from a hardware RNG
    /// (or a seed stored and never reused): the same seed after a reset repeats the key
    /// exchange's secrets.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_seed(
        inner: C,
        buffers: TlsBuffers<'b>,
        roots: &'b [&'b [u8]],
        seed: [u8; 32],
    ) -> Result<Self, TlsSetupError> {
        use rand_core::SeedableRng;
        Self::new(
            inner,
            buffers,
            roots,
            rand_chacha::ChaCha20Rng::from_seed(seed),
        )
    }
}

impl<'b, C: Connect, R: CryptoRngCore> TlsDialer<'b, C, R> {
    /// A dialer over `inner`, trusting `roots` (DER certificates), drawing key-exchange
    /// secrets from `rng` (a HAL's TRNG, for example).
    ///
    /// # Errors
    /// [`TlsSetupError`]: a buffer below its minimum, or roots that cannot be used (none, more
    /// than [`MAX_ANCHORS`], or one that is not a CA certificate).
    pub fn new(
        inner: C,
        buffers: TlsBuffers<'b>,
        roots: &'b [&'b [u8]],
        rng: R,
    ) -> Result<Self, TlsSetupError> {
        if buffers.read.len() < MIN_READ_BUF {
            return Err(TlsSetupError::ReadBufferTooSmall {
                len: buffers.read.len(),
                min: MIN_READ_BUF,
            });
        }
        if buffers.write.len() < MIN_WRITE_BUF {
            return Err(TlsSetupError::WriteBufferTooSmall {
                len: buffers.write.len(),
                min: MIN_WRITE_BUF,
            });
        }
        let verifier = Verifier::new(roots).map_err(TlsSetupError::Roots)?;
        Ok(Self {
            inner,
            read: buffers.read,
            write: buffers.write,
            provider: Provider { rng, verifier },
            last_failure: None,
            sessions: 0,
        })
    }

    /// Why the last dial failed (`None` when it succeeded, or before the first).
    #[must_use]
    pub const fn last_failure(&self) -> Option<TlsFailure> {
        self.last_failure
    }

    /// Verified sessions opened so far.
    #[must_use]
    pub const fn sessions(&self) -> u32 {
        self.sessions
    }

    /// The stream under TLS.
    pub fn inner_mut(&mut self) -> &mut C {
        &mut self.inner
    }
}

/// The name in `host` (`name`, `name:port`, `[v6]:port`), as the certificate must hold it.
fn server_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(name, _)| name);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

impl<C: Connect, R: CryptoRngCore> Dial for TlsDialer<'_, C, R> {
    type Session<'s>
        = TlsSession<'s, C>
    where
        Self: 's;

    async fn dial(
        &mut self,
        host: &str,
        wall: Option<UnixMillis>,
    ) -> Result<TlsSession<'_, C>, TransportError> {
        let Some(wall) = wall else {
            self.last_failure = Some(TlsFailure::NoWallClock);
            return Err(TransportError::Tls);
        };
        if self.inner.connect().await.is_err() {
            self.last_failure = Some(TlsFailure::Connect);
            return Err(TransportError::Connect);
        }
        self.provider.verifier.set_now(wall.as_millis() / 1000);
        let config = TlsConfig::new().with_server_name(server_name(host));
        // A connection per session, from the buffers reborrowed for this borrow of `self`: the
        // runner keeps the session while the connection lives and dials again after it.
        let mut conn = TlsConnection::new(&mut self.inner, &mut *self.read, &mut *self.write);
        let opened = conn
            .open(TlsContext::new(&config, &mut self.provider))
            .await;
        let verifier = &self.provider.verifier;
        let failure = match opened {
            Ok(()) if verifier.is_verified() => None,
            // embedded-tls finishes a handshake that skipped Certificate and CertificateVerify:
            // the verifier never confirmed the server's identity.
            Ok(()) => Some(TlsFailure::NotVerified),
            Err(e) => Some(
                verifier
                    .last_error()
                    .map_or(TlsFailure::Handshake(e), TlsFailure::Certificate),
            ),
        };
        self.last_failure = failure;
        match failure {
            None => {
                self.sessions = self.sessions.saturating_add(1);
                Ok(conn)
            }
            // Not `close()`: embedded-tls 0.19 would send a malformed plaintext alert. The
            // runner hangs up the stream.
            Some(_) => Err(TransportError::Tls),
        }
    }

    async fn hang_up(&mut self) {
        self.inner.disconnect().await;
    }

    fn needs_wall_clock(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_io_async::ErrorKind;
    use std::vec;

    /// A stream that never connects: these tests stop before any dial.
    struct Nowhere;

    impl embedded_io_async::ErrorType for Nowhere {
        type Error = ErrorKind;
    }
    impl embedded_io_async::Read for Nowhere {
        async fn read(&mut self, _: &mut [u8]) -> Result<usize, ErrorKind> {
            Err(ErrorKind::NotConnected)
        }
    }
    impl embedded_io_async::Write for Nowhere {
        async fn write(&mut self, _: &[u8]) -> Result<usize, ErrorKind> {
            Err(ErrorKind::NotConnected)
        }
        async fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }
    impl Connect for Nowhere {
        async fn connect(&mut self) -> Result<(), ErrorKind> {
            Err(ErrorKind::NotConnected)
        }
        async fn disconnect(&mut self) {}
    }

    fn made(read: usize, write: usize, roots: &[&[u8]]) -> Result<(), TlsSetupError> {
        let (mut r, mut w) = (vec![0u8; read], vec![0u8; write]);
        let buffers = TlsBuffers {
            read: &mut r,
            write: &mut w,
        };
        TlsDialer::with_seed(Nowhere, buffers, roots, [1; 32]).map(drop)
    }

    #[test]
    fn buffers_are_checked_at_their_minimums_before_the_roots() {
        // An unusable root past the buffer checks proves the buffers were accepted.
        let bad_root: [&[u8]; 1] = [&[0x30, 0x00]];
        let roots_reached = Err(TlsSetupError::Roots(CertError::BadAnchor { index: 0 }));
        assert_eq!(made(MIN_READ_BUF, MIN_WRITE_BUF, &bad_root), roots_reached);
        assert_eq!(
            made(MIN_READ_BUF - 1, MIN_WRITE_BUF, &bad_root),
            Err(TlsSetupError::ReadBufferTooSmall {
                len: MIN_READ_BUF - 1,
                min: MIN_READ_BUF
            })
        );
        assert_eq!(
            made(MIN_READ_BUF, MIN_WRITE_BUF - 1, &bad_root),
            Err(TlsSetupError::WriteBufferTooSmall {
                len: MIN_WRITE_BUF - 1,
                min: MIN_WRITE_BUF
            })
        );
        assert_eq!(
            made(RECORD_BUF, MIN_WRITE_BUF, &[]),
            Err(TlsSetupError::Roots(CertError::AnchorCount { given: 0 }))
        );
    }

    #[test]
    fn the_certificate_name_is_the_host_without_its_port() {
        assert_eq!(server_name("us.i.posthog.com"), "us.i.posthog.com");
        assert_eq!(server_name("localhost:8443"), "localhost");
        assert_eq!(server_name("127.0.0.1:443"), "127.0.0.1");
        assert_eq!(server_name("[::1]:8443"), "::1");
        assert_eq!(server_name("[::1]"), "::1");
        assert_eq!(server_name("::1"), "::1");
        assert_eq!(server_name("host:port"), "host:port");
    }
}
