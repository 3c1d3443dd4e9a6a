//! The HTTP layer through its public API only, as a driver uses it.

use posthog_embedded::capture::{BATCH_HEADERS, BATCH_PATH};
use posthog_embedded::net::http::{
    parse_http_date, parse_retry_after, write_request_head, BodySink, HttpError, Method,
    RequestHead, ResponseParser, RetryAfter,
};
use posthog_embedded::{Duration, UnixMillis};

#[test]
fn a_driver_round_trip_through_the_public_api() {
    let head =
        RequestHead::new(Method::Post, "us.i.posthog.com", BATCH_PATH).headers(&BATCH_HEADERS);
    let mut out = [0u8; 256];
    let n = write_request_head(&head, 2, &mut out).unwrap();
    assert!(out[..n].starts_with(b"POST /batch/ HTTP/1.1\r\nHost: us.i.posthog.com\r\n"));
    assert!(out[..n].ends_with(b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\n"));

    let reply = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 3\r\n\r\nbad";
    let mut rx = [0u8; 128];
    let mut parser = ResponseParser::new(&mut rx, BodySink::Discard, Method::Post);
    // A blocking driver: read into the parser's buffer, then advance.
    let mut pos = 0;
    while !parser.is_complete() {
        let buf = parser.read_buf();
        let n = buf.len().min(5).min(reply.len() - pos);
        buf[..n].copy_from_slice(&reply[pos..pos + n]);
        pos += n;
        let _ = parser.advance(n).unwrap();
    }
    let r = parser.into_response().unwrap();
    assert_eq!(r.status, 429);
    assert!(!r.is_success());
    assert_eq!(
        r.retry_after,
        Some(RetryAfter::Delay(Duration::from_secs(7)))
    );
    assert_eq!((r.body, r.body_len), (&b""[..], 3));
}

#[test]
fn errors_are_std_errors_with_sizes() {
    let e: Box<dyn std::error::Error> = Box::new(HttpError::HeadTooLarge { limit: 512 });
    assert_eq!(
        e.to_string(),
        "response head is larger than the 512-byte buffer"
    );
    assert_eq!(
        parse_retry_after(b"Wed, 21 Oct 2015 07:28:00 GMT"),
        Some(RetryAfter::At(UnixMillis::from_secs(1_445_412_480)))
    );
    assert_eq!(parse_http_date(b"yesterday"), None);
}
