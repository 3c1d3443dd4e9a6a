//! HTTP/1.1 over any `embedded-io-async` stream: [`request`] writes one request and drives the
//! sans-IO [`ResponseParser`] until the response is complete, and [`StreamTransport`] is a
//! [`Transport`] over a [`Connect`] stream with keep-alive and reconnects.
//!
//! Nothing here has a timeout: the driver wraps each future in its own.

use embedded_io_async::{ErrorKind, Read, Write};

use crate::net::http::{
    write_request_head, BodySink, HttpError, RequestHead, Response, ResponseParser,
};
use crate::net::transport::{Connect, Reply, Transport};
use crate::net::{Header, RequestKind, Transmit, TransportError};

/// [`Transport`] over a [`Connect`] stream with the crate's HTTP/1.1 client: keep-alive between
/// requests, a reconnect after `Connection: close` or an error, and one immediate resend on a
/// fresh connection when a kept-alive connection turns out to be closed before any answer.
pub struct StreamTransport<'b, C> {
    conn: C,
    host: &'b str,
    rx: &'b mut [u8],
    connected: bool,
}

impl<'b, C: Connect> StreamTransport<'b, C> {
    /// A transport sending to `host` (the `Host` header: `us.i.posthog.com`, or
    /// `192.168.1.10:8080`) over `conn`, with `rx` for request and response heads (1 KiB is
    /// plenty).
    pub fn new(conn: C, host: &'b str, rx: &'b mut [u8]) -> Self {
        Self {
            conn,
            host,
            rx,
            connected: false,
        }
    }

    /// Opens the connection unless it is open.
    async fn ensure_connected(&mut self) -> Result<(), HttpError> {
        if !self.connected {
            self.conn
                .connect()
                .await
                .map_err(|_| HttpError::Transport(ErrorKind::NotConnected))?;
            self.connected = true;
        }
        Ok(())
    }

    /// Closes the connection (after a timeout the driver imposed, for example).
    pub async fn reset(&mut self) {
        if self.connected {
            self.conn.disconnect().await;
            self.connected = false;
        }
    }

    /// The stream.
    pub fn connection(&mut self) -> &mut C {
        &mut self.conn
    }

    async fn exchange(&mut self, tx: &Transmit<'_>, body: &mut [u8]) -> Result<Reply, HttpError> {
        self.ensure_connected().await?;
        let mut names: heapless::Vec<(&str, &str), 4> = heapless::Vec::new();
        let mut bearer = None;
        for (name, value) in tx.headers() {
            match value {
                Header::Plain(v) => {
                    let _ = names.push((name, v));
                }
                Header::Bearer(s) => bearer = Some(s),
            }
        }
        let mut head = RequestHead::new(tx.method, self.host, tx.path.as_str())
            .headers(&names)
            .keep_alive(true);
        if let Some(secret) = bearer {
            head = head.bearer(secret);
        }
        let sink = match tx.kind {
            RequestKind::Batch { .. } => BodySink::Discard,
            _ => BodySink::Buffer(body),
        };
        match request(&mut self.conn, &head, tx.body, self.rx, sink).await {
            Ok(resp) => {
                let reply = Reply {
                    status: resp.status,
                    retry_after: resp.retry_after,
                    etag: resp.etag.clone(),
                    body_len: resp.body.len(),
                };
                if resp.connection_close {
                    self.reset().await;
                }
                Ok(reply)
            }
            Err(e) => {
                self.reset().await;
                Err(e)
            }
        }
    }
}

impl<C: Connect> Transport for StreamTransport<'_, C> {
    /// Opens the connection unless it is open (closing what is left of it on failure).
    async fn prepare(&mut self) -> Result<(), TransportError> {
        match self.ensure_connected().await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.reset().await;
                Err(transport_error(e))
            }
        }
    }

    async fn send(&mut self, tx: &Transmit<'_>, body: &mut [u8]) -> Result<Reply, TransportError> {
        let reused = self.connected;
        let mut r = self.exchange(tx, body).await;
        if reused && matches!(r, Err(HttpError::ConnectionClosed { received: 0 })) {
            r = self.exchange(tx, body).await;
        }
        r.map_err(transport_error)
    }
}

/// The [`TransportError`] for an HTTP-layer failure.
#[must_use]
pub fn transport_error(e: HttpError) -> TransportError {
    match e {
        HttpError::Transport(ErrorKind::TimedOut) => TransportError::Timeout,
        HttpError::Transport(ErrorKind::NotConnected | ErrorKind::ConnectionRefused) => {
            TransportError::Connect
        }
        HttpError::Transport(_) | HttpError::ConnectionClosed { .. } => TransportError::Io,
        _ => TransportError::BadResponse,
    }
}

fn transport<E: embedded_io_async::Error>(e: E) -> HttpError {
    HttpError::Transport(e.kind())
}

async fn write_all<S: Write>(stream: &mut S, mut bytes: &[u8]) -> Result<(), HttpError> {
    while !bytes.is_empty() {
        let n = stream.write(bytes).await.map_err(transport)?;
        if n == 0 {
            return Err(HttpError::Transport(ErrorKind::WriteZero));
        }
        bytes = bytes.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Sends one request on `stream` and reads its response.
///
/// Writes the head (rendered into `rx_buf`) and `body`, flushes, then reads into `rx_buf` (and
/// straight into the body buffer for `Content-Length` bodies) until the response is complete.
/// `rx_buf` must hold the request head and the response head; see the module docs for sizes.
/// There is no timeout: wrap the future in the driver's. One request at a time: never call this
/// again on the stream before the previous call returned.
///
/// # Errors
/// - [`HttpError::InvalidRequest`], [`HttpError::BufferTooSmall`] from [`write_request_head`];
///   nothing was written.
/// - [`HttpError::Transport`] with the stream's [`ErrorKind`] (`WriteZero` if a write accepted
///   nothing).
/// - [`HttpError::ConnectionClosed`] if the stream ended before the response was complete.
/// - Any response error of [`ResponseParser`].
///
/// After an error, close the connection.
pub async fn request<'b, S>(
    stream: &mut S,
    head: &RequestHead<'_>,
    body: &[u8],
    rx_buf: &mut [u8],
    body_sink: BodySink<'b>,
) -> Result<Response<'b>, HttpError>
where
    S: Read + Write,
{
    let n = write_request_head(head, body.len(), rx_buf)?;
    let sent = write_all(stream, rx_buf.get(..n).unwrap_or_default()).await;
    // The head may carry a bearer secret: do not leave it lying in the caller's buffer.
    if let Some(h) = rx_buf.get_mut(..n) {
        h.fill(0);
    }
    sent?;
    write_all(stream, body).await?;
    stream.flush().await.map_err(transport)?;

    let available = rx_buf.len();
    let mut parser = ResponseParser::new(rx_buf, body_sink, head.method());
    while !parser.is_complete() {
        let buf = parser.read_buf();
        if buf.is_empty() {
            // Unreachable by the parser's invariants; never read into nothing (that is EOF).
            return Err(HttpError::HeadTooLarge { limit: available });
        }
        let n = stream.read(buf).await.map_err(transport)?;
        if n == 0 {
            parser.close()?;
        } else {
            let _ = parser.advance(n)?;
        }
    }
    let mut response = parser
        .into_response()
        .ok_or(HttpError::ConnectionClosed { received: 0 })?;
    // We asked for `Connection: close`: the server will close even if it did not say so.
    response.connection_close |= !head.is_keep_alive();
    Ok(response)
}

#[cfg(test)]
mod tests {

    use super::*;
    use core::future::Future;
    use core::pin::pin;
    use core::task::{Context, Poll, Waker};
    use std::string::String;
    use std::vec::Vec;

    use crate::net::http::{Method, RetryAfter};
    use crate::time::Duration;

    const SECRET: &str = "phx_s3cr3t_personal_key";

    fn render(head: &RequestHead<'_>, body_len: usize) -> Result<String, HttpError> {
        let mut out = [0u8; 1024];
        let n = write_request_head(head, body_len, &mut out)?;
        Ok(String::from_utf8(out[..n].to_vec()).unwrap())
    }

    /// Polls `f` to completion with a no-op waker; the mock stream never returns `Pending`.
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..16 {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
        panic!("the mock stream never pends");
    }

    /// A scripted stream: reads return `input` in pieces of at most `piece` bytes, then EOF (or
    /// `read_err`); writes accept at most `write_piece` bytes per call.
    struct Mock {
        input: Vec<u8>,
        pos: usize,
        piece: usize,
        written: Vec<u8>,
        write_piece: usize,
        flushed: bool,
        reads: usize,
        read_err: Option<ErrorKind>,
        write_err: Option<ErrorKind>,
    }

    impl Mock {
        fn new(input: &[u8], piece: usize) -> Self {
            Self {
                input: input.to_vec(),
                pos: 0,
                piece,
                written: Vec::new(),
                write_piece: 7,
                flushed: false,
                reads: 0,
                read_err: None,
                write_err: None,
            }
        }
    }

    impl embedded_io_async::ErrorType for Mock {
        type Error = ErrorKind;
    }

    impl Read for Mock {
        async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
            assert!(!buf.is_empty(), "never read into an empty buffer");
            assert!(self.flushed, "flush before reading");
            self.reads += 1;
            let rest = &self.input[self.pos..];
            if rest.is_empty() {
                return self.read_err.map_or(Ok(0), Err);
            }
            let n = rest.len().min(buf.len()).min(self.piece);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
        }
    }

    impl Write for Mock {
        async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
            if let Some(e) = self.write_err {
                return Err(e);
            }
            let n = buf.len().min(self.write_piece);
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        async fn flush(&mut self) -> Result<(), ErrorKind> {
            self.flushed = true;
            Ok(())
        }
    }

    const BATCH_BODY: &[u8] = br#"{"api_key":"phc_x","batch":[]}"#;

    fn batch_head() -> RequestHead<'static> {
        RequestHead::new(Method::Post, "127.0.0.1:8000", "/batch/")
            .headers(&crate::capture::BATCH_HEADERS)
    }

    #[test]
    fn request_writes_head_and_body_then_reads_the_response() {
        let response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"status\":1}\n";
        for piece in [1, 2, 5, 64, 4096] {
            let mut s = Mock::new(response, piece);
            let mut rx = [0u8; 256];
            let mut body = [0u8; 64];
            let r = block_on(request(
                &mut s,
                &batch_head(),
                BATCH_BODY,
                &mut rx,
                BodySink::Buffer(&mut body),
            ))
            .unwrap();
            assert_eq!(
                (r.status, r.body, r.connection_close),
                (200, &b"{\"status\":1}\n"[..], false)
            );
            assert!(r.is_success());
            let mut expected = render(&batch_head(), BATCH_BODY.len())
                .unwrap()
                .into_bytes();
            expected.extend_from_slice(BATCH_BODY);
            assert_eq!(s.written, expected);
            assert_eq!(s.pos, response.len(), "every byte read, none past the body");
        }
    }

    #[test]
    fn request_reads_content_length_bodies_straight_into_the_body_buffer() {
        // With whole-buffer reads: one read for the head (and the body bytes with it), and the
        // rest of the body lands in the body buffer in as few reads as the stream allows.
        let mut response = b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n".to_vec();
        response.extend(core::iter::repeat_n(b'b', 300));
        let mut s = Mock::new(&response, 100);
        let mut rx = [0u8; 160];
        let mut body = [0u8; 300];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            b"",
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!(r.body.len(), 300);
        assert_eq!(s.reads, 4);
    }

    #[test]
    fn request_discards_chunked_bodies_and_skips_100_continue() {
        let response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let mut s = Mock::new(response, 3);
        let mut rx = [0u8; 256];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            BATCH_BODY,
            &mut rx,
            BodySink::Discard,
        ))
        .unwrap();
        assert_eq!(
            (r.status, r.body, r.body_len, r.connection_close),
            (200, &b""[..], 5, true)
        );
    }

    #[test]
    fn request_reads_until_close() {
        // We asked to close: the response says so even if the server did not.
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
        let head = batch_head().keep_alive(false);
        let r = block_on(request(
            &mut s,
            &head,
            b"",
            &mut [0u8; 256],
            BodySink::Discard,
        ))
        .unwrap();
        assert!(r.connection_close);
        let mut s = Mock::new(
            b"HTTP/1.0 503 Service Unavailable\r\nRetry-After: 30\r\n\r\nbusy",
            4,
        );
        let mut rx = [0u8; 256];
        let mut body = [0u8; 16];
        let r = block_on(request(
            &mut s,
            &batch_head(),
            BATCH_BODY,
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!(
            (r.status, r.body, r.connection_close),
            (503, &b"busy"[..], true)
        );
        assert_eq!(
            r.retry_after,
            Some(RetryAfter::Delay(Duration::from_secs(30)))
        );
    }

    #[test]
    fn request_get_with_etag_and_304() {
        let etag = "\"abc\"";
        let headers = [("User-Agent", crate::USER_AGENT), ("If-None-Match", etag)];
        let head = RequestHead::new(
            Method::Get,
            "h",
            "/flags/definitions?token=phc&send_cohorts",
        )
        .headers(&headers)
        .bearer(SECRET);
        let mut s = Mock::new(b"HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n", 8);
        let mut rx = [0u8; 256];
        let mut body = [0u8; 16];
        let r = block_on(request(
            &mut s,
            &head,
            b"",
            &mut rx,
            BodySink::Buffer(&mut body),
        ))
        .unwrap();
        assert_eq!((r.status, r.etag.as_deref()), (304, Some(etag)));
        let sent = String::from_utf8(s.written.clone()).unwrap();
        assert!(sent.contains("\r\nAuthorization: Bearer phx_s3cr3t_personal_key\r\n"));
        assert!(sent.contains("\r\nIf-None-Match: \"abc\"\r\n"));
        assert!(!sent.contains("Content-Length"));
        // The secret does not stay in the caller's buffer.
        assert!(!rx.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }

    #[test]
    fn request_errors() {
        let run = |s: &mut Mock, rx: &mut [u8]| {
            block_on(request(s, &batch_head(), BATCH_BODY, rx, BodySink::Discard))
        };
        // The server closed an idle keep-alive connection: nothing received.
        let mut s = Mock::new(b"", 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::ConnectionClosed { received: 0 })
        );
        // EOF mid-body.
        let truncated = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        let mut s = Mock::new(truncated, 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::ConnectionClosed {
                received: truncated.len() as u64
            })
        );
        // Transport errors carry the kind.
        let mut s = Mock::new(b"HTTP/1.1 200", 8);
        s.read_err = Some(ErrorKind::ConnectionReset);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::ConnectionReset))
        );
        let mut s = Mock::new(b"", 8);
        s.write_err = Some(ErrorKind::BrokenPipe);
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::BrokenPipe))
        );
        let mut s = Mock::new(b"", 8);
        s.write_piece = 0;
        assert_eq!(
            run(&mut s, &mut [0u8; 256]),
            Err(HttpError::Transport(ErrorKind::WriteZero))
        );
        // The request head does not fit: nothing is written.
        let mut s = Mock::new(b"", 8);
        let needed = render(&batch_head(), BATCH_BODY.len()).unwrap().len();
        assert_eq!(
            run(&mut s, &mut [0u8; 32]),
            Err(HttpError::BufferTooSmall {
                needed,
                available: 32
            })
        );
        assert!(s.written.is_empty());
        // The response head does not fit in rx_buf.
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 8);
        assert_eq!(
            run(&mut s, &mut [0u8; 160]),
            Err(HttpError::HeadTooLarge { limit: 160 })
        );
        let mut s = Mock::new(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", 8);
        let mut body = [0u8; 4];
        assert_eq!(
            block_on(request(
                &mut s,
                &batch_head(),
                BATCH_BODY,
                &mut [0u8; 256],
                BodySink::Buffer(&mut body)
            )),
            Err(HttpError::BodyTooLarge {
                limit: 4,
                at_least: 10
            })
        );
    }
}
