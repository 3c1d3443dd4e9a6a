//! The JSON tokenizer: any bytes give tokens or a typed error; every token consumes input, so
//! the loop ends within `len + 1` steps; decoding helpers never fail on validated strings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::json::read::{Reader, Token};

fuzz_target!(|data: &[u8]| {
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
                    let _ = (n.as_i64(), n.as_u64(), n.as_f64());
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
