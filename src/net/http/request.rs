//! Request heads: method, `Host`, path, caller headers, an optional bearer secret,
//! `Content-Length` and `Connection`, rendered byte-exact into a caller buffer; names and
//! values that could inject a header are refused.

use core::fmt;

use super::{HttpError, RequestField};
use crate::json::write::fmt_u64;

/// A request method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`: always sends `Content-Length`, `0` for an empty body.
    Post,
    /// `HEAD`: the response has no body.
    Head,
}

impl Method {
    /// The method as it appears on the request line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Head => "HEAD",
        }
    }
}

/// Everything before the body of a request, borrowed from the caller.
///
/// Rendered by [`write_request_head`] as
///
/// ```text
/// METHOD path HTTP/1.1\r\n
/// Host: host\r\n
/// <caller headers, in order>\r\n
/// Authorization: Bearer <secret>\r\n     (with a bearer secret)
/// Content-Length: n\r\n                  (for a body, and for every POST)
/// Connection: keep-alive | close\r\n
/// \r\n
/// ```
///
/// `Debug` (and `defmt`) never show the bearer secret, nor the value of a caller header named
/// `Authorization`, `Proxy-Authorization` or `Cookie`. [`request`](crate::adapters::stream::request) zeroes the rendered head in
/// its buffer once it is sent.
#[derive(Clone, Copy)]
pub struct RequestHead<'a> {
    method: Method,
    host: &'a str,
    path: &'a str,
    headers: &'a [(&'a str, &'a str)],
    bearer: Option<&'a str>,
    keep_alive: bool,
}

impl<'a> RequestHead<'a> {
    /// A request for `path` (origin form: `/flags/?v=2`) on `host` (`us.i.posthog.com`, with
    /// `:port` if not the default), with no extra headers, keeping the connection alive.
    #[must_use]
    pub const fn new(method: Method, host: &'a str, path: &'a str) -> Self {
        Self {
            method,
            host,
            path,
            headers: &[],
            bearer: None,
            keep_alive: true,
        }
    }

    /// Sends these headers, in order, after `Host` (for example `capture::BATCH_HEADERS`).
    #[must_use]
    pub const fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sends `Authorization: Bearer <secret>`. The secret never appears in `Debug` or errors.
    #[must_use]
    pub const fn bearer(mut self, secret: &'a str) -> Self {
        self.bearer = Some(secret);
        self
    }

    /// Asks the server to keep the connection open (`true`, the default) or to close it after
    /// the response (`false`).
    #[must_use]
    pub const fn keep_alive(mut self, keep_alive: bool) -> Self {
        self.keep_alive = keep_alive;
        self
    }

    /// The request method.
    #[must_use]
    pub const fn method(&self) -> Method {
        self.method
    }

    /// Whether the connection is to be kept open after the response.
    #[must_use]
    pub const fn is_keep_alive(&self) -> bool {
        self.keep_alive
    }
}

fn is_sensitive(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
}

struct RedactedHeaders<'a>(&'a [(&'a str, &'a str)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            let value = if is_sensitive(name) {
                "<redacted>"
            } else {
                value
            };
            list.entry(&(name, value));
        }
        list.finish()
    }
}

impl fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("headers", &RedactedHeaders(self.headers))
            .field("bearer", &self.bearer.map(|_| "<redacted>"))
            .field("keep_alive", &self.keep_alive)
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RequestHead<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "RequestHead {{ method: {}, host: {=str}, path: {=str}, headers: {=usize}, bearer: {=bool}, keep_alive: {=bool} }}",
            self.method,
            self.host,
            self.path,
            self.headers.len(),
            self.bearer.is_some(),
            self.keep_alive
        );
    }
}

const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Visible ASCII: no space, no control byte, no DEL, no non-ASCII.
fn is_visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// A field value: anything but control bytes (HTAB allowed) and DEL.
fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

const RESERVED: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

fn validate(head: &RequestHead<'_>) -> Result<(), RequestField> {
    if !is_visible_ascii(head.host) {
        return Err(RequestField::Host);
    }
    if !head.path.starts_with('/') || !is_visible_ascii(head.path) {
        return Err(RequestField::Path);
    }
    for (index, (name, value)) in head.headers.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(RequestField::HeaderName { index });
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(RequestField::ReservedHeader { index });
        }
        if !is_field_value(value) {
            return Err(RequestField::HeaderValue { index });
        }
    }
    if let Some(secret) = head.bearer {
        if !is_visible_ascii(secret) {
            return Err(RequestField::Bearer);
        }
    }
    Ok(())
}

/// A byte buffer that keeps counting past its end, so the exact size needed is known.
struct Out<'o> {
    buf: &'o mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    fn header(&mut self, name: &str, value: &[&str]) {
        self.put(name.as_bytes());
        self.put(b": ");
        for v in value {
            self.put(v.as_bytes());
        }
        self.put(b"\r\n");
    }
}

/// Renders `head`, for a body of `body_len` bytes, into `out` and returns the number of bytes
/// written. `Content-Length` is sent when `body_len > 0` and for every `POST`.
///
/// # Errors
/// - [`HttpError::InvalidRequest`] if the host, the path, a header name or value, or the bearer
///   secret could inject or break a header (CR, LF, control bytes), or a caller header is one the
///   writer sets itself. The error names the field, never its content.
/// - [`HttpError::BufferTooSmall`] with the exact size needed; `out` holds garbage then.
pub fn write_request_head(
    head: &RequestHead<'_>,
    body_len: usize,
    out: &mut [u8],
) -> Result<usize, HttpError> {
    validate(head)?;
    let mut o = Out { buf: out, len: 0 };
    o.put(head.method.as_str().as_bytes());
    o.put(b" ");
    o.put(head.path.as_bytes());
    o.put(b" HTTP/1.1\r\n");
    o.header("Host", &[head.host]);
    for (name, value) in head.headers {
        o.header(name, &[value]);
    }
    if let Some(secret) = head.bearer {
        o.header("Authorization", &["Bearer ", secret]);
    }
    if body_len > 0 || head.method == Method::Post {
        let mut digits = [0u8; 20];
        o.put(b"Content-Length: ");
        o.put(fmt_u64(body_len as u64, &mut digits));
        o.put(b"\r\n");
    }
    let connection = if head.keep_alive {
        "keep-alive"
    } else {
        "close"
    };
    o.header("Connection", &[connection]);
    o.put(b"\r\n");
    if o.len > o.buf.len() {
        return Err(HttpError::BufferTooSmall {
            needed: o.len,
            available: o.buf.len(),
        });
    }
    Ok(o.len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};
    use std::vec;

    // ---- request heads ----------------------------------------------------------------------

    fn render(head: &RequestHead<'_>, body_len: usize) -> Result<String, HttpError> {
        let mut out = [0u8; 1024];
        let n = write_request_head(head, body_len, &mut out)?;
        Ok(String::from_utf8(out[..n].to_vec()).unwrap())
    }

    const SECRET: &str = "phx_s3cr3t_personal_key";

    #[test]
    fn batch_post_head_is_byte_exact() {
        let head = RequestHead::new(Method::Post, "us.i.posthog.com", crate::capture::BATCH_PATH)
            .headers(&crate::capture::BATCH_HEADERS);
        assert_eq!(
            render(&head, 42).unwrap(),
            format!(
                "POST /batch/ HTTP/1.1\r\nHost: us.i.posthog.com\r\nContent-Type: application/json\r\n\
                 User-Agent: {}\r\nContent-Length: 42\r\nConnection: keep-alive\r\n\r\n",
                crate::USER_AGENT
            )
        );
    }

    #[test]
    fn post_with_empty_body_sends_content_length_zero() {
        let head =
            RequestHead::new(Method::Post, "localhost:8000", "/flags/?v=2").keep_alive(false);
        assert_eq!(
            render(&head, 0).unwrap(),
            "POST /flags/?v=2 HTTP/1.1\r\nHost: localhost:8000\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn definitions_get_head_is_byte_exact() {
        let headers = [
            ("User-Agent", "posthog-embedded/0.1.0"),
            ("If-None-Match", "W/\"e1\""),
        ];
        let head = RequestHead::new(
            Method::Get,
            "eu.i.posthog.com",
            "/flags/definitions?token=phc_abc&send_cohorts",
        )
        .headers(&headers)
        .bearer(SECRET);
        assert_eq!(head.method(), Method::Get);
        assert_eq!(
            render(&head, 0).unwrap(),
            "GET /flags/definitions?token=phc_abc&send_cohorts HTTP/1.1\r\nHost: eu.i.posthog.com\r\n\
             User-Agent: posthog-embedded/0.1.0\r\nIf-None-Match: W/\"e1\"\r\n\
             Authorization: Bearer phx_s3cr3t_personal_key\r\nConnection: keep-alive\r\n\r\n"
        );
        // A GET with a body still frames it; HEAD without one has no Content-Length.
        assert!(render(&head, 3)
            .unwrap()
            .contains("\r\nContent-Length: 3\r\n"));
        let h = RequestHead::new(Method::Head, "h", "/");
        assert_eq!(
            render(&h, 0).unwrap(),
            "HEAD / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"
        );
    }

    #[test]
    fn header_injection_is_rejected() {
        let inv = |f| Err(HttpError::InvalidRequest(f));
        let base = RequestHead::new(Method::Post, "h", "/batch/");
        let cases: [(&[(&str, &str)], RequestField); 8] = [
            (
                &[("X-A", "ok"), ("X-B", "v\r\nEvil: 1")],
                RequestField::HeaderValue { index: 1 },
            ),
            (
                &[("X-A", "v\nEvil: 1")],
                RequestField::HeaderValue { index: 0 },
            ),
            (&[("X-A", "nul\0")], RequestField::HeaderValue { index: 0 }),
            (
                &[("X-A\r\nEvil", "v")],
                RequestField::HeaderName { index: 0 },
            ),
            (&[("X A", "v")], RequestField::HeaderName { index: 0 }),
            (&[("", "v")], RequestField::HeaderName { index: 0 }),
            (
                &[("X-A", "1"), ("content-length", "5")],
                RequestField::ReservedHeader { index: 1 },
            ),
            (
                &[("Connection", "upgrade")],
                RequestField::ReservedHeader { index: 0 },
            ),
        ];
        for (headers, field) in cases {
            assert_eq!(render(&base.headers(headers), 0), inv(field), "{headers:?}");
        }
        // Tabs and UTF-8 are fine in values.
        assert!(render(&base.headers(&[("X-A", "a\tb é")]), 0).is_ok());
        let host = RequestHead::new(Method::Get, "h\r\nEvil: 1", "/");
        assert_eq!(render(&host, 0), inv(RequestField::Host));
        assert_eq!(
            render(&RequestHead::new(Method::Get, "", "/"), 0),
            inv(RequestField::Host)
        );
        for path in ["/a b", "/a\r\nEvil: 1", "relative", "", "/é"] {
            let head = RequestHead::new(Method::Get, "h", path);
            assert_eq!(render(&head, 0), inv(RequestField::Path), "{path:?}");
        }
        for secret in ["phx\r\nEvil: 1", "a b", ""] {
            let head = base.bearer(secret);
            let err = render(&head, 0).unwrap_err();
            assert_eq!(err, HttpError::InvalidRequest(RequestField::Bearer));
            assert!(!err.to_string().contains("phx"));
        }
    }

    #[test]
    fn buffer_too_small_reports_the_exact_size() {
        let headers = [("If-None-Match", "\"abc\"")];
        let head = RequestHead::new(Method::Get, "host", "/flags/definitions?token=t")
            .headers(&headers)
            .bearer(SECRET);
        let needed = render(&head, 0).unwrap().len();
        let mut out = vec![0u8; needed];
        for available in 0..needed {
            assert_eq!(
                write_request_head(&head, 0, &mut out[..available]),
                Err(HttpError::BufferTooSmall { needed, available })
            );
        }
        assert_eq!(write_request_head(&head, 0, &mut out), Ok(needed));
        let e = HttpError::BufferTooSmall {
            needed,
            available: 10,
        };
        assert_eq!(
            e.to_string(),
            format!("request head needs {needed} bytes, only 10 bytes available")
        );
    }

    #[test]
    fn secrets_never_appear_in_debug_or_errors() {
        let headers = [("authorization", "Basic c2VjcmV0"), ("X-Ok", "visible")];
        let head = RequestHead::new(Method::Get, "h", "/")
            .headers(&headers)
            .bearer(SECRET);
        let dbg = format!("{head:?}");
        assert!(!dbg.contains(SECRET) && !dbg.contains("c2VjcmV0"), "{dbg}");
        assert!(dbg.contains("visible") && dbg.contains("<redacted>"));
        let mut small = [0u8; 8];
        let err = write_request_head(&head, 0, &mut small).unwrap_err();
        assert!(!format!("{err:?} {err}").contains(SECRET));
    }
}
