//! The response parser against whole responses cut at every byte, malformed input and
//! truncation.

use super::*;
use crate::net::http::{
    parse_http_date, Malformed, CHUNK_LINE_MAX, ETAG_MAX, MAX_HEADERS, TRAILERS_MAX,
};
use crate::time::Duration;
use std::format;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

// ---- response harness -------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Got {
    status: u16,
    retry_after: Option<RetryAfter>,
    etag: Option<String>,
    date: Option<UnixMillis>,
    encoding: ContentEncoding,
    close: bool,
    body: Vec<u8>,
    body_len: u64,
    consumed: usize,
}

#[derive(Clone, Copy)]
struct Opts {
    rx: usize,
    body: Option<usize>,
    method: Method,
    eof: bool,
}

const OPTS: Opts = Opts {
    rx: 512,
    body: Some(256),
    method: Method::Get,
    eof: true,
};

fn finish(mut p: ResponseParser<'_, '_>, consumed: usize, eof: bool) -> Result<Got, HttpError> {
    if !p.is_complete() && eof {
        p.close()?;
    }
    let r = p.into_response().expect("complete");
    Ok(Got {
        status: r.status,
        retry_after: r.retry_after,
        etag: r.etag.map(|e| e.as_str().to_string()),
        date: r.date,
        encoding: r.content_encoding,
        close: r.connection_close,
        body: r.body.to_vec(),
        body_len: r.body_len,
        consumed,
    })
}

/// Feeds `input` cut into pieces at `cuts`.
fn run_cuts(input: &[u8], cuts: &[usize], o: Opts) -> Result<Got, HttpError> {
    let mut rx = vec![0u8; o.rx];
    let mut body = vec![0u8; o.body.unwrap_or(0)];
    let sink = match o.body {
        Some(_) => BodySink::Buffer(&mut body),
        None => BodySink::Discard,
    };
    let mut p = ResponseParser::new(&mut rx, sink, o.method);
    let mut consumed = 0;
    let mut start = 0;
    for &end in cuts.iter().chain([input.len()].iter()) {
        let piece = &input[start..end];
        start = end;
        let done = p.is_complete();
        let prog = p.feed(piece)?;
        consumed += prog.consumed;
        if done {
            assert_eq!(
                prog,
                Progress {
                    consumed: 0,
                    complete: true
                }
            );
        } else if !prog.complete {
            assert_eq!(
                prog.consumed,
                piece.len(),
                "incomplete feeds consume everything"
            );
        }
    }
    finish(p, consumed, o.eof)
}

/// Reads through `read_buf`/`advance`, at most `step` bytes per read.
fn run_reads(input: &[u8], step: usize, o: Opts) -> Result<Got, HttpError> {
    let mut rx = vec![0u8; o.rx];
    let mut body = vec![0u8; o.body.unwrap_or(0)];
    let sink = match o.body {
        Some(_) => BodySink::Buffer(&mut body),
        None => BodySink::Discard,
    };
    let mut p = ResponseParser::new(&mut rx, sink, o.method);
    let (mut pos, mut consumed) = (0, 0);
    while !p.is_complete() && pos < input.len() {
        let buf = p.read_buf();
        assert!(!buf.is_empty());
        let n = buf.len().min(step).min(input.len() - pos);
        buf[..n].copy_from_slice(&input[pos..pos + n]);
        pos += n;
        let prog = p.advance(n)?;
        consumed += prog.consumed;
    }
    finish(p, consumed, o.eof)
}

/// Parses `input` whole, at every split point, one byte at a time and through `read_buf`
/// with several read sizes; all must agree. Returns the common result.
fn parse_everywhere(input: &[u8], o: Opts) -> Result<Got, HttpError> {
    let whole = run_cuts(input, &[], o);
    for k in 0..=input.len() {
        assert_eq!(run_cuts(input, &[k], o), whole, "split at {k}");
    }
    let bytes: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run_cuts(input, &bytes, o), whole, "one byte at a time");
    for step in [1, 2, 3, 7, 64, usize::MAX] {
        assert_eq!(run_reads(input, step, o), whole, "reads of {step}");
    }
    whole
}

fn ok(status: u16, body: &[u8]) -> Got {
    Got {
        status,
        retry_after: None,
        etag: None,
        date: None,
        encoding: ContentEncoding::Identity,
        close: false,
        body: body.to_vec(),
        body_len: body.len() as u64,
        consumed: 0,
    }
}

fn check(input: &[u8], o: Opts, expected: Got) {
    let got = parse_everywhere(input, o).unwrap();
    assert_eq!(
        got,
        Got {
            consumed: got.consumed,
            ..expected
        }
    );
}

// ---- responses --------------------------------------------------------------------------

#[test]
fn content_length_body() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";
    let got = parse_everywhere(input, OPTS).unwrap();
    assert_eq!(got.consumed, input.len());
    assert_eq!(
        got,
        Got {
            consumed: input.len(),
            ..ok(200, b"{\"status\":\"ok\"}")
        }
    );
    // Identical repeated lengths are one length.
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\ncontent-length: 2\r\n\r\nhi",
        OPTS,
        ok(200, b"hi"),
    );
}

#[test]
fn chunked_body_with_extensions_and_trailers() {
    let input = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        4;name=value\r\nWiki\r\n5 ; x=\"q\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
        000\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n";
    check(input, OPTS, ok(200, b"Wikipedia in\r\n\r\nchunks."));
    // No trailers, lower-case hex, bare LF line endings.
    check(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\na\r\n0123456789\r\n0\r\n\r\n",
        OPTS,
        ok(200, b"0123456789"),
    );
    check(
        b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n",
        OPTS,
        ok(200, b"abc"),
    );
    // Chunked wins over Content-Length, and the connection is not reused.
    let got = parse_everywhere(
        b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        OPTS,
    )
    .unwrap();
    assert_eq!((got.body.as_slice(), got.close), (&b"x"[..], true));
}

#[test]
fn read_until_close() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world";
    check(
        input,
        OPTS,
        Got {
            close: true,
            ..ok(200, b"hello, world")
        },
    );
    check(
        b"HTTP/1.1 500 Oops\r\n\r\n",
        OPTS,
        Got {
            close: true,
            ..ok(500, b"")
        },
    );
    // Without an end of stream it is not complete.
    let mut rx = [0u8; 128];
    let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
    assert_eq!(
        p.feed(input).unwrap(),
        Progress {
            consumed: input.len(),
            complete: false
        }
    );
    p.close().unwrap();
    assert_eq!(p.into_response().unwrap().body_len, 12);
}

#[test]
fn no_body_statuses_and_head() {
    check(b"HTTP/1.1 204 No Content\r\n\r\n", OPTS, ok(204, b""));
    let got = parse_everywhere(
        b"HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\nContent-Length: 5000\r\n\r\n",
        OPTS,
    )
    .unwrap();
    assert_eq!(
        (got.status, got.etag.as_deref(), got.body_len),
        (304, Some("\"v2\""), 0)
    );
    let head = Opts {
        method: Method::Head,
        ..OPTS
    };
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
        head,
        ok(200, b""),
    );
    check(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        head,
        ok(200, b""),
    );
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        OPTS,
        ok(200, b""),
    );
}

#[test]
fn interim_responses_are_skipped() {
    check(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        OPTS,
        ok(200, b"ok"),
    );
    check(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\nETag: \"x\"\r\n\r\n\
          HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        OPTS,
        ok(201, b""),
    );
}

const SUNDAY_1994: UnixMillis = UnixMillis::from_secs(784_111_777);

#[test]
fn retry_after_seconds_and_dates() {
    let with = |v: &str| {
        let input = format!(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {v}\r\nContent-Length: 0\r\n\r\n"
        );
        parse_everywhere(input.as_bytes(), OPTS)
            .unwrap()
            .retry_after
    };
    assert_eq!(
        with("120"),
        Some(RetryAfter::Delay(Duration::from_secs(120)))
    );
    assert_eq!(with("0"), Some(RetryAfter::Delay(Duration::ZERO)));
    assert_eq!(
        with("99999999999999999999999"),
        Some(RetryAfter::Delay(Duration::from_millis(u64::MAX)))
    );
    let at = Some(RetryAfter::At(SUNDAY_1994));
    assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT"), at);
    assert_eq!(with("Sunday, 06-Nov-94 08:49:37 GMT"), at);
    assert_eq!(with("Sun Nov  6 08:49:37 1994"), at);
    for bad in [
        "",
        "-1",
        "1.5",
        "soon",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 31 Feb 2026 00:00:00 GMT",
    ] {
        assert_eq!(with(bad), None, "{bad:?}");
    }
    // With the server's own `Date`, an HTTP-date becomes the wait between the two: a device
    // without a wall clock honours it too.
    let dated = |date: &str, v: &str| {
        let input = format!(
            "HTTP/1.1 503 Service Unavailable\r\nDate: {date}\r\nRetry-After: {v}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        parse_everywhere(input.as_bytes(), OPTS)
            .unwrap()
            .retry_after
    };
    assert_eq!(
        dated(
            "Sun, 06 Nov 1994 08:49:07 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT"
        ),
        Some(RetryAfter::Delay(Duration::from_secs(30)))
    );
    assert_eq!(
        dated(
            "Sun, 06 Nov 1994 08:50:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT"
        ),
        Some(RetryAfter::Delay(Duration::ZERO))
    );
    assert_eq!(
        dated("Sun, 06 Nov 1994 08:49:07 GMT", "120"),
        Some(RetryAfter::Delay(Duration::from_secs(120)))
    );
    assert_eq!(dated("not a date", "Sun, 06 Nov 1994 08:49:37 GMT"), at);
    assert_eq!(
        RetryAfter::At(SUNDAY_1994).relative_to(None),
        RetryAfter::At(SUNDAY_1994)
    );
    assert_eq!(
        RetryAfter::At(SUNDAY_1994).delay(Some(UnixMillis::from_secs(784_111_700))),
        Some(Duration::from_secs(77))
    );
    assert_eq!(RetryAfter::At(SUNDAY_1994).delay(None), None);
    assert_eq!(
        RetryAfter::At(SUNDAY_1994).delay(Some(UnixMillis::from_secs(784_111_800))),
        Some(Duration::ZERO)
    );
    assert_eq!(
        RetryAfter::Delay(Duration::from_secs(3)).delay(None),
        Some(Duration::from_secs(3))
    );
}

#[test]
fn http_dates() {
    let p = |s: &str| parse_http_date(s.as_bytes());
    assert_eq!(
        p("Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(UnixMillis::from_millis(0))
    );
    assert_eq!(
        p("Fri, 02 Jan 2026 03:04:05 GMT"),
        Some(UnixMillis::from_millis(1_767_323_045_000))
    );
    assert_eq!(
        p("Thu, 29 Feb 2024 23:59:59 GMT"),
        Some(UnixMillis::from_secs(1_709_251_199))
    );
    assert_eq!(
        p("Friday, 02-Jan-26 03:04:05 GMT"),
        p("Fri, 02 Jan 2026 03:04:05 GMT")
    );
    assert_eq!(
        p("Thursday, 01-Jan-70 00:00:00 GMT"),
        Some(UnixMillis::from_millis(0))
    );
    assert_eq!(
        p("Fri Jan  2 03:04:05 2026"),
        p("Fri, 02 Jan 2026 03:04:05 GMT")
    );
    assert_eq!(
        p("Fri Jan 02 03:04:05 2026"),
        p("Fri, 02 Jan 2026 03:04:05 GMT")
    );
    assert_eq!(
        p("Fri Jan 12 03:04:05 2026"),
        p("Mon, 12 Jan 2026 03:04:05 GMT")
    );
    assert_eq!(p(" Sun, 06 Nov 1994 08:49:37 GMT "), Some(SUNDAY_1994));
    for bad in [
        "Sun, 06 Nov 1969 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 2023 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMTX",
        "Sun, 06 Nov 1994 08:49:3a GMT",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Funday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov  6 08:49:37 1994 GMT",
        "",
        ",",
        "Sun, é",
    ] {
        assert_eq!(p(bad), None, "{bad:?}");
    }
}

#[test]
fn etag_date_encoding_and_connection() {
    let got = parse_everywhere(
        b"HTTP/1.1 200 OK\r\nETag:  W/\"abc-123\" \r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
          Content-Encoding: gzip\r\nConnection: Close\r\nContent-Length: 1\r\n\r\nx",
        OPTS,
    )
    .unwrap();
    assert_eq!(got.etag.as_deref(), Some("W/\"abc-123\""));
    assert_eq!(got.date, Some(SUNDAY_1994));
    assert_eq!(got.encoding, ContentEncoding::Gzip);
    assert!(got.close);
    let enc = |v: &str| {
        let input =
            format!("HTTP/1.1 200 OK\r\nContent-Encoding: {v}\r\nContent-Length: 0\r\n\r\n");
        run_cuts(input.as_bytes(), &[], OPTS).unwrap().encoding
    };
    assert_eq!(enc("identity"), ContentEncoding::Identity);
    assert_eq!(enc("x-gzip"), ContentEncoding::Gzip);
    assert_eq!(enc("br"), ContentEncoding::Other);
    assert_eq!(enc("gzip, br"), ContentEncoding::Other);
    // An ETag longer than ETAG_MAX (or not ASCII) is ignored, not truncated.
    let long = format!("\"{}\"", "a".repeat(ETAG_MAX - 2));
    let longer = format!("\"{}\"", "a".repeat(ETAG_MAX - 1));
    let etag = |v: &str| {
        let input = format!("HTTP/1.1 200 OK\r\nETag: {v}\r\nContent-Length: 0\r\n\r\n");
        run_cuts(input.as_bytes(), &[], OPTS).unwrap().etag
    };
    assert_eq!(etag(&long), Some(long.clone()));
    assert_eq!(etag(&longer), None);
    assert_eq!(etag("\"é\""), None);
    // Keep-alive tokens.
    let close = |input: &[u8]| parse_everywhere(input, OPTS).unwrap().close;
    assert!(!close(
        b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
    ));
    assert!(close(
        b"HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"
    ));
}

#[test]
fn http_1_0_defaults_to_close() {
    check(
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
        OPTS,
        Got {
            close: true,
            ..ok(200, b"ok")
        },
    );
    check(
        b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
        OPTS,
        ok(200, b"ok"),
    );
    check(
        b"HTTP/1.0 200 OK\r\n\r\nall of it",
        OPTS,
        Got {
            close: true,
            ..ok(200, b"all of it")
        },
    );
}

#[test]
fn discard_mode_frames_the_body() {
    let discard = Opts {
        body: None,
        rx: 64,
        ..OPTS
    };
    let mut input = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
    input.extend(core::iter::repeat_n(b'x', 1000));
    let got = parse_everywhere(&input, discard).unwrap();
    assert_eq!((got.body.len(), got.body_len, got.close), (0, 1000, false));
    let got = parse_everywhere(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        discard,
    )
    .unwrap();
    assert_eq!((got.body.len(), got.body_len), (0, 5));
}

#[test]
fn bytes_after_the_response_mark_the_connection_for_closing() {
    for input in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"[..],
        b"HTTP/1.1 204 No Content\r\n\r\nX",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX",
    ] {
        let got = run_cuts(input, &[], OPTS).unwrap();
        assert!(got.close);
        assert!(got.consumed < input.len());
        // Fed separately after completion, they are refused too.
        let end = got.consumed;
        let split = run_cuts(input, &[end], OPTS).unwrap();
        assert_eq!((split.consumed, split.close), (end, true));
        let exact = run_cuts(&input[..end], &[], OPTS).unwrap();
        assert!(!exact.close);
    }
}

// ---- malformed input --------------------------------------------------------------------

fn err(input: &[u8], o: Opts) -> HttpError {
    parse_everywhere(input, o).unwrap_err()
}

#[test]
fn bad_status_lines() {
    let m = |x| HttpError::Malformed(x);
    assert_eq!(err(b"HTP/1.1 200 OK\r\n\r\n", OPTS), m(Malformed::Version));
    assert_eq!(err(b"HTTP/2 200 OK\r\n\r\n", OPTS), m(Malformed::Version));
    assert_eq!(
        err(b"HTTP/1.1 20 OK\r\n\r\n", OPTS),
        m(Malformed::StatusLine)
    );
    assert_eq!(
        err(b"HTTP/1.1 abc OK\r\n\r\n", OPTS),
        m(Malformed::StatusLine)
    );
    assert_eq!(
        err(b"HTTP/1.1 099 Low\r\n\r\n", OPTS),
        m(Malformed::StatusLine)
    );
    assert_eq!(
        err(b"HTTP/1.1 600 High\r\n\r\n", OPTS),
        m(Malformed::StatusLine)
    );
    // Leading empty lines are skipped: this is no head at all.
    assert_eq!(
        err(b"\r\n\r\n", OPTS),
        HttpError::ConnectionClosed { received: 4 }
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", OPTS),
        m(Malformed::HeaderName)
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", OPTS),
        m(Malformed::HeaderValue)
    );
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", OPTS),
        m(Malformed::HeaderName)
    );
    // A leading empty line is tolerated.
    check(
        b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        OPTS,
        ok(200, b""),
    );
}

#[test]
fn overlong_heads_and_too_many_headers() {
    let small = Opts { rx: 64, ..OPTS };
    let input = format!("HTTP/1.1 200 OK\r\nX-Long: {}\r\n\r\n", "a".repeat(100));
    assert_eq!(
        err(input.as_bytes(), small),
        HttpError::HeadTooLarge { limit: 64 }
    );
    // A head of exactly rx bytes fits.
    let exact = format!(
        "HTTP/1.1 200 OK\r\nX: {}\r\nContent-Length: 0\r\n\r\n",
        "a".repeat(21)
    );
    assert_eq!(exact.len(), 64);
    assert_eq!(
        parse_everywhere(exact.as_bytes(), small).unwrap().status,
        200
    );
    // Endless blank lines or interim responses still hit the limit or complete.
    assert_eq!(
        err(&[b'\n'; 100], small),
        HttpError::HeadTooLarge { limit: 64 }
    );
    let mut headers = String::from("HTTP/1.1 200 OK\r\n");
    for i in 0..MAX_HEADERS {
        headers.push_str(&format!("X-{i}: v\r\n"));
    }
    let fits = format!("{headers}\r\n");
    assert_eq!(
        run_cuts(fits.as_bytes(), &[], Opts { rx: 1024, ..OPTS })
            .unwrap()
            .status,
        200
    );
    let over = format!("{headers}X-Last: v\r\n\r\n");
    assert_eq!(
        err(over.as_bytes(), Opts { rx: 1024, ..OPTS }),
        HttpError::TooManyHeaders { max: MAX_HEADERS }
    );
    // An empty receive buffer cannot hold any head.
    let mut rx = [0u8; 0];
    let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
    assert_eq!(p.feed(b"H"), Err(HttpError::HeadTooLarge { limit: 0 }));
}

#[test]
fn bad_content_lengths_and_transfer_encodings() {
    let m = HttpError::Malformed(Malformed::ContentLength);
    for cl in [
        "abc",
        "-1",
        "1.0",
        "",
        "18446744073709551616",
        "99999999999999999999",
        "5, 6",
        "+5",
    ] {
        let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n");
        assert_eq!(err(input.as_bytes(), OPTS), m, "{cl:?}");
    }
    assert_eq!(
        err(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            OPTS
        ),
        m
    );
    // u64::MAX itself is a valid length, just far too large for the buffer.
    assert_eq!(
        err(
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n",
            OPTS
        ),
        HttpError::BodyTooLarge {
            limit: 256,
            at_least: u64::MAX
        }
    );
    assert_eq!(
        err(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            OPTS
        ),
        HttpError::UnsupportedTransferEncoding
    );
    for te in ["chunked, chunked", "", " , "] {
        let input = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(
            err(input.as_bytes(), OPTS),
            HttpError::Malformed(Malformed::TransferEncoding),
            "{te:?}"
        );
    }
}

fn chunked(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{body}").into_bytes()
}

#[test]
fn bad_chunks() {
    let size = HttpError::Malformed(Malformed::ChunkSize);
    for bad in [
        "zz\r\n",
        "\r\n",
        " 5\r\n",
        "5 5\r\n",
        "5\rX",
        ";x\r\n",
        "-1\r\n",
        "5;\x01\r\n",
    ] {
        assert_eq!(err(&chunked(bad), OPTS), size, "{bad:?}");
    }
    // 17 hex digits overflow u64.
    assert_eq!(err(&chunked("1ffffffffffffffff\r\n"), OPTS), size);
    // Fits in u64 but not in the buffer: refused before any data.
    assert_eq!(
        err(&chunked("fffffffffffffff0\r\n"), OPTS),
        HttpError::BodyTooLarge {
            limit: 256,
            at_least: 0xffff_ffff_ffff_fff0
        }
    );
    // Leading zeros are fine.
    check(
        &chunked("0000000000000000000001\r\nx\r\n0\r\n\r\n"),
        OPTS,
        ok(200, b"x"),
    );
    assert_eq!(
        err(&chunked("3\r\nabcX\r\n"), OPTS),
        HttpError::Malformed(Malformed::ChunkEnd)
    );
    assert_eq!(
        err(&chunked("3\r\nabc\r\r\n"), OPTS),
        HttpError::Malformed(Malformed::ChunkEnd)
    );
    let long = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(CHUNK_LINE_MAX));
    assert_eq!(
        err(&chunked(&long), OPTS),
        HttpError::ChunkLineTooLong {
            max: CHUNK_LINE_MAX
        }
    );
    let fits = format!("5;{}\r\nhello\r\n0\r\n\r\n", "e".repeat(CHUNK_LINE_MAX - 4));
    check(&chunked(&fits), OPTS, ok(200, b"hello"));
    let trailers = format!("0\r\nX: {}\r\n\r\n", "t".repeat(TRAILERS_MAX));
    assert_eq!(
        err(&chunked(&trailers), OPTS),
        HttpError::TrailersTooLarge { max: TRAILERS_MAX }
    );
    assert_eq!(
        err(&chunked("0\r\nX: 1\rY\r\n\r\n"), OPTS),
        HttpError::Malformed(Malformed::Trailer)
    );
}

#[test]
fn bodies_larger_than_the_buffer() {
    let small = Opts {
        body: Some(4),
        ..OPTS
    };
    assert_eq!(
        err(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", small),
        HttpError::BodyTooLarge {
            limit: 4,
            at_least: 5
        }
    );
    check(
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell",
        small,
        ok(200, b"hell"),
    );
    assert_eq!(
        err(&chunked("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), small),
        HttpError::BodyTooLarge {
            limit: 4,
            at_least: 5
        }
    );
    check(
        &chunked("3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n"),
        small,
        ok(200, b"abcd"),
    );
    let e = run_cuts(b"HTTP/1.1 200 OK\r\n\r\nhello", &[], small).unwrap_err();
    assert!(matches!(e, HttpError::BodyTooLarge { limit: 4, at_least } if at_least >= 5));
    assert_eq!(
        e.to_string(),
        format!(
            "response body needs at least {} bytes, the buffer holds 4",
            match e {
                HttpError::BodyTooLarge { at_least, .. } => at_least,
                _ => 0,
            }
        )
    );
}

#[test]
fn truncated_responses_are_connection_closed() {
    let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    for end in 0..full.len() {
        assert_eq!(
            run_cuts(&full[..end], &[], OPTS),
            Err(HttpError::ConnectionClosed {
                received: end as u64
            }),
            "cut at {end}"
        );
    }
    let c = chunked("5\r\nhello\r\n0\r\n\r\n");
    for end in 0..c.len() {
        assert!(
            matches!(
                run_cuts(&c[..end], &[], OPTS),
                Err(HttpError::ConnectionClosed { .. })
            ),
            "cut at {end}"
        );
    }
    assert_eq!(
        HttpError::ConnectionClosed { received: 0 }.to_string(),
        "connection closed before any response byte"
    );
}

#[test]
fn errors_are_sticky() {
    let mut rx = [0u8; 64];
    let mut p = ResponseParser::new(&mut rx, BodySink::Discard, Method::Get);
    let e = p.feed(b"HTTP/1.1 abc\r\n\r\n").unwrap_err();
    assert_eq!(p.feed(b"more"), Err(e));
    assert_eq!(p.advance(1), Err(e));
    assert_eq!(p.close(), Err(e));
    assert!(p.read_buf().is_empty());
    assert!(p.into_response().is_none());
}

/// Every truncation and many one-byte mutations of every fixture: never a panic, never a
/// stall (each feed consumes, completes or fails).
#[test]
fn mutations_never_panic_or_stall() {
    let fixtures: [&[u8]; 5] = [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"e\"\r\nRetry-After: 5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nWiki\r\n0\r\nT: 1\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\n\r\nbody",
        b"HTTP/1.1 429 X\r\nRetry-After: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nDate: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n",
    ];
    let subs = [
        0u8, b'\r', b'\n', b' ', b':', b';', b'0', b'f', b'z', 0x80, 0xff,
    ];
    for f in fixtures {
        for i in 0..f.len() {
            for &s in &subs {
                let mut m = f.to_vec();
                m[i] = s;
                for o in [
                    OPTS,
                    Opts {
                        rx: 48,
                        body: Some(3),
                        ..OPTS
                    },
                    Opts { body: None, ..OPTS },
                ] {
                    let _ = run_cuts(&m, &[], o);
                    let _ = run_reads(&m, 3, o);
                }
            }
        }
    }
}

#[test]
fn debug_output_hides_buffers() {
    let mut rx = *b"Authorization: Bearer phx_s3cr3t_personal_key";
    let mut body = [0u8; 4];
    let p = ResponseParser::new(&mut rx, BodySink::Buffer(&mut body), Method::Get);
    let dbg = format!("{p:?}");
    assert!(
        !dbg.contains("phx") && dbg.contains("Buffer(4 bytes)"),
        "{dbg}"
    );
}
