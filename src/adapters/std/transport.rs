//! HTTP for the std driver: [`UreqTransport`] (HTTPS through `ureq` and rustls, gzip request
//! bodies, `ureq` errors mapped to [`TransportError`] without their text), the request and
//! response it reads ([`Response`]) and [`parse_retry_after`].

use core::fmt;
use core::time::Duration as StdDuration;
use std::borrow::ToOwned;
use std::format;
use std::io;
use std::string::String;
use std::vec::Vec;

use crate::client::{
    Method, RequestKind, ResponseInfo, RetryAfter, Transmit, TransportError, FLAGS_PATH,
};
use crate::time::{Duration, UnixMillis};

use super::config::{normalize_host, StdConfig, StdError};

/// A response, owned. [`info`](Self::info) gives what
/// [`Client::handle_response`](crate::client::Client::handle_response) takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Retry-After`, if present and valid.
    pub retry_after: Option<RetryAfter>,
    /// `ETag`, if present (and ASCII).
    pub etag: Option<String>,
    /// The body, at most [`StdConfig::max_response_bytes`].
    pub body: Vec<u8>,
}

impl Response {
    /// The part the core needs.
    #[must_use]
    pub fn info(&self) -> ResponseInfo<'_> {
        ResponseInfo {
            status: self.status,
            retry_after: self.retry_after,
            etag: self.etag.as_deref(),
        }
    }
}

/// Parses a `Retry-After` value: delta-seconds, or an HTTP-date (IMF-fixdate, RFC 850 or
/// asctime). `None` for anything else (and for dates before 1970).
#[must_use]
pub fn parse_retry_after(value: &str) -> Option<RetryAfter> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Overlong numbers saturate: "retry much later".
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(RetryAfter::Delay(Duration::from_secs(secs)));
    }
    let t = httpdate::parse_http_date(v).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    Some(RetryAfter::At(UnixMillis::from_millis(
        u64::try_from(ms).unwrap_or(u64::MAX),
    )))
}

/// Blocking HTTPS transport over `ureq` with rustls: certificate verification on (webpki roots,
/// or [`StdConfig::root_certificates`]), no redirects followed (a 3xx comes back as a
/// response), every status returned as a response, one timeout for the whole request, bodies
/// read up to [`StdConfig::max_response_bytes`]. `/batch/` bodies are gzipped when
/// [`StdConfig::gzip`] is on. Holds no policy: the caller settles every outcome with the core.
///
/// Reusable on its own (CLI, compliance adapter):
///
/// ```no_run
/// use posthog_embedded::adapters::std::{StdClock, StdConfig, UreqTransport};
/// use posthog_embedded::client::{Client, Config};
/// use posthog_embedded::resources::Resources;
/// use posthog_embedded::Clock;
///
/// let transport = UreqTransport::new(&StdConfig::new("phc_project_token", 0x5eed))?;
/// let mut resources = Box::new(Resources::<8192, 16, 256, 4096>::new());
/// let config = Config::new("phc_project_token", 0x5eed);
/// let mut client = Client::new(config, &mut resources).expect("valid configuration");
/// let clock = StdClock::new();
/// let mut buf = vec![0u8; 1 << 16];
/// while let Some(tx) = client.poll_transmit(clock.read(), &mut buf) {
///     match transport.send(&tx) {
///         Ok(resp) => client.handle_response(clock.read(), &resp.info(), &resp.body),
///         Err(e) => client.handle_transport_error(clock.read(), e),
///     }
/// }
/// # Ok::<(), posthog_embedded::adapters::std::StdError>(())
/// ```
pub struct UreqTransport {
    agent: ureq::Agent,
    host: String,
    gzip: bool,
    max_response_bytes: u64,
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("host", &self.host)
            .field("gzip", &self.gzip)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

impl UreqTransport {
    /// A transport for `config`'s host, timeout, roots, gzip and response cap (the keys are not
    /// used: they travel inside each [`Transmit`]).
    ///
    /// # Errors
    /// [`StdError::InvalidHost`] (see [`normalize_host`]).
    pub fn new(config: &StdConfig) -> Result<Self, StdError> {
        let host = normalize_host(&config.host)?;
        let mut tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .disable_verification(false);
        if !config.root_certificates.is_empty() {
            let roots: Vec<ureq::tls::Certificate<'static>> = config
                .root_certificates
                .iter()
                .map(|der| ureq::tls::Certificate::from_der(der).to_owned())
                .collect();
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
        }
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(config.request_timeout))
            // Our User-Agent comes from the Transmit's headers.
            .user_agent(ureq::config::AutoHeaderValue::None)
            .accept_encoding(ureq::config::AutoHeaderValue::None)
            .tls_config(tls.build());
        if !config.proxy_from_env {
            builder = builder.proxy(None);
        }
        Ok(Self {
            agent: builder.build().new_agent(),
            host,
            gzip: config.gzip,
            max_response_bytes: u64::try_from(config.max_response_bytes).unwrap_or(u64::MAX),
        })
    }

    /// The normalized host requests go to.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Sends `tx` and reads the whole response.
    ///
    /// # Errors
    /// [`TransportError`] when no complete response arrived (or it was larger than the cap).
    /// Sends `req` and reads the whole response.
    ///
    /// # Errors
    /// [`TransportError`] when no complete response arrived (or it was larger than the cap).
    pub fn send(&self, req: &Transmit<'_>) -> Result<Response, TransportError> {
        let url = format!("{}{}", self.host, req.path);
        let result = match req.method {
            Method::Head => with_headers(self.agent.head(&url), req).call(),
            Method::Get => with_headers(self.agent.get(&url), req).call(),
            Method::Post => {
                let b = with_headers(self.agent.post(&url), req);
                if self.gzip && matches!(req.kind, RequestKind::Batch { .. }) {
                    let body = gzip(req.body).map_err(|_| TransportError::Io)?;
                    b.header("Content-Encoding", "gzip").send(&body[..])
                } else {
                    b.send(req.body)
                }
            }
        };
        self.read_response(result).map_err(map_error)
    }

    /// Sends a remote flag evaluation request (`POST` [`FLAGS_PATH`] with `body`, the
    /// `Content-Type` and `User-Agent` headers, no `Authorization`, never compressed) with its
    /// own `timeout`, and reads the whole response. A refused connection is told apart from other
    /// transport errors because the flags retry policy does not retry it.
    pub(super) fn send_flags(
        &self,
        body: &[u8],
        timeout: StdDuration,
    ) -> Result<Response, FlagsFailure> {
        let url = format!("{}{}", self.host, FLAGS_PATH);
        let result = self
            .agent
            .post(&url)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .header("User-Agent", crate::USER_AGENT)
            .send(body);
        self.read_response(result).map_err(|e| {
            let refused =
                matches!(&e, ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused);
            FlagsFailure {
                error: map_error(e),
                refused,
            }
        })
    }

    /// Reads status, `Retry-After`, `ETag` and the body (up to the cap) of a response.
    fn read_response(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response, ureq::Error> {
        let mut resp = result?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let status = resp.status().as_u16();
        // An HTTP-date counts from the server's own `Date` when it sent one.
        let date = header("date").and_then(|d| crate::net::http::parse_http_date(d.as_bytes()));
        let retry_after = header("retry-after")
            .and_then(parse_retry_after)
            .map(|r| r.relative_to(date));
        let etag = header("etag").map(str::to_owned);
        let body = resp
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()?;
        Ok(Response {
            status,
            retry_after,
            etag,
            body,
        })
    }
}

/// A `/flags` attempt that got no response.
#[derive(Clone, Copy, Debug)]
pub(super) struct FlagsFailure {
    /// Why no response arrived.
    pub(super) error: TransportError,
    /// The connection was refused (not retried).
    pub(super) refused: bool,
}

fn with_headers<B>(mut b: ureq::RequestBuilder<B>, req: &Transmit<'_>) -> ureq::RequestBuilder<B> {
    for (name, value) in req.headers() {
        let mut v = String::new();
        let _ = value.write(|s| {
            v.push_str(s);
            Ok::<(), core::convert::Infallible>(())
        });
        b = b.header(name, v);
    }
    b
}

fn gzip(body: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::default(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// Maps a `ureq` error to the core's vocabulary, dropping its text (it may hold the URL).
fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => TransportError::Timeout,
        E::HostNotFound | E::ConnectionFailed => TransportError::Connect,
        E::Io(io) => map_io(&io),
        E::Tls(_) | E::Rustls(_) | E::Pem(_) => TransportError::Tls,
        E::BodyExceedsLimit(_) | E::Protocol(_) | E::TooManyRedirects | E::RedirectFailed => {
            TransportError::BadResponse
        }
        E::BadUri(_) | E::Http(_) | E::InvalidProxyUrl => TransportError::Connect,
        _ => TransportError::Io,
    }
}

fn map_io(e: &io::Error) -> TransportError {
    // rustls reports handshake failures (bad certificate, unknown issuer, alerts) as an
    // `io::Error` wrapping a `rustls::Error`; recognise that type through ureq's own variant.
    if wraps(ureq::Error::Rustls, e) {
        return TransportError::Tls;
    }
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::Timeout,
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => TransportError::Connect,
        io::ErrorKind::InvalidData => TransportError::BadResponse,
        _ => TransportError::Io,
    }
}

/// Whether `e` wraps a `T`, the payload type of the ureq error variant `_variant` (this names a
/// type of a crate we do not depend on directly).
fn wraps<T: core::error::Error + 'static>(_variant: fn(T) -> ureq::Error, e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<T>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::time::{Instant, Now};
    use std::io::Read;

    #[test]
    fn retry_after_parses_both_forms() {
        assert_eq!(
            parse_retry_after(" 7 "),
            Some(RetryAfter::Delay(Duration::from_secs(7)))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999"),
            Some(RetryAfter::Delay(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(RetryAfter::At(UnixMillis::from_secs(784_111_777)))
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn secrets_stay_out_of_the_transmit_debug() {
        let c = StdConfig::new("phc_public_token", 0x5eed).secret_key("phx_very_secret");
        // A small core: the test thread's stack is too small for a `StdCore`.
        let mut res = crate::resources::Resources::<1024, 4, 16, 256, 8>::new();
        let mut core = Client::new(c.core_config(), &mut res).unwrap();
        let mut buf = [0u8; 64];
        let tx = core
            .poll_transmit(Now::mono(Instant::ZERO), &mut buf)
            .unwrap();
        assert!(tx.headers().any(|(n, v)| {
            let mut text = String::new();
            let _ = v.write(|p| {
                text.push_str(p);
                Ok::<(), ()>(())
            });
            n == "Authorization" && text == "Bearer phx_very_secret"
        }));
        let s = format!("{tx:?} {:?}", tx.headers().collect::<Vec<_>>());
        assert!(
            !s.contains("phx_very_secret") && !s.contains("phc_public_token"),
            "{s}"
        );
    }

    #[test]
    fn gzip_round_trips() {
        let body = br#"{"api_key":"phc_x","batch":[]}"#.repeat(50);
        let packed = gzip(&body).unwrap();
        assert_eq!(&packed[..2], [0x1f, 0x8b], "gzip magic");
        assert!(packed.len() < body.len());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&packed[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
    }

    #[test]
    fn io_errors_map_to_the_core_vocabulary() {
        let kind = |k| map_io(&io::Error::from(k));
        assert_eq!(kind(io::ErrorKind::TimedOut), TransportError::Timeout);
        assert_eq!(
            kind(io::ErrorKind::ConnectionRefused),
            TransportError::Connect
        );
        assert_eq!(
            kind(io::ErrorKind::InvalidData),
            TransportError::BadResponse
        );
        assert_eq!(kind(io::ErrorKind::BrokenPipe), TransportError::Io);
    }
}
