//! The JSON tokenizer: any bytes give tokens or a typed error; every token consumes input, so
//! the loop ends within `len + 1` steps; decoding helpers never fail on validated strings.
//! Numbers: the crate's own decimal parser (no `dec2flt` tables) gives `core`'s correctly
//! rounded double, bit for bit, for JSON numbers and for posthog-python's numeric strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::flags::value::parse_py_number;
use posthog_embedded::json::read::{Reader, Token};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(v) = parse_py_number(text) {
            let want: f64 = text.parse().expect("accepted numeric strings parse");
            assert_eq!(v.to_bits(), want.to_bits(), "{text}");
        }
    }
    let depth = data.first().map_or(64, |d| usize::from(*d % 130));
    let mut r = Reader::with_max_depth(data, depth);
    let mut steps = 0usize;
    let mut last = 0usize;
    loop {
        steps += 1;
        assert!(steps <= data.len() + 2, "tokenizer did not terminate");
        match r.next() {
            Ok(Some(tok)) => {
                assert!(r.offset() > last, "a token consumed nothing");
                last = r.offset();
                if let Token::Str(s) | Token::Key(s) = tok {
                    let n = s.decoded_len();
                    let mut buf = vec![0u8; n];
                    let decoded = s.decode_into(&mut buf).expect("validated string decodes");
                    assert_eq!(decoded.chars().count(), s.chars().count());
                    assert!(s.eq_str(decoded));
                }
                if let Token::Number(n) = tok {
                    let _ = (n.as_i64(), n.as_u64());
                    let want: f64 = n.as_str().parse().expect("JSON numbers parse");
                    assert_eq!(n.as_f64().to_bits(), want.to_bits(), "{}", n.as_str());
                }
            }
            Ok(None) | Err(_) => break,
        }
        assert!(r.depth() <= r.max_depth());
    }
    // Agreement with serde_json on acceptance (depth permitting; serde rejects 1e400).
    if depth >= 128 {
        let ours = {
            let mut r = Reader::with_max_depth(data, 128);
            loop {
                match r.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            }
        };
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let _ = v;
            assert!(ours, "serde_json accepted what we rejected");
        }
    }
});
