//! The HTTP/1.1 response parser: any bytes, split at arbitrary points, give the same result as
//! one feed; every feed consumes input, completes or errors; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::net::http::{BodySink, Method, ResponseParser};

fn parse(data: &[u8], split: usize, body_cap: usize) -> Result<(u16, Vec<u8>), String> {
    let mut rx = [0u8; 512];
    let mut body = vec![0u8; body_cap];
    let mut p = ResponseParser::new(&mut rx, BodySink::Buffer(&mut body), Method::Post);
    let mut rest = data;
    let mut guard = 0;
    while !rest.is_empty() && !p.is_complete() {
        guard += 1;
        assert!(guard <= data.len() * 2 + 4, "parser made no progress");
        let n = split.max(1).min(rest.len());
        match p.feed(&rest[..n]) {
            Ok(progress) => {
                assert!(
                    progress.consumed > 0 || progress.complete,
                    "a feed consumed nothing"
                );
                rest = &rest[progress.consumed.min(rest.len())..];
            }
            Err(e) => return Err(format!("{e:?}")),
        }
    }
    if !p.is_complete() {
        p.close().map_err(|e| format!("{e:?}"))?;
    }
    let r = p.into_response().ok_or("incomplete")?;
    Ok((r.status, r.body.to_vec()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let whole = parse(rest, rest.len(), 1024);
    let pieces = parse(rest, usize::from(split % 16) + 1, 1024);
    assert_eq!(whole.is_ok(), pieces.is_ok(), "split changed the outcome");
    if let (Ok(a), Ok(b)) = (&whole, &pieces) {
        assert_eq!(a, b);
    }
});
