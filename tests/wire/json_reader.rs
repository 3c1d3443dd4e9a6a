//! The pull reader against `serde_json`: every conformance vector file, a hand-picked set of
//! tricky documents (valid and invalid), generated and mutated inputs, and every prefix of a
//! medium document.

use crate::common;

use posthog_embedded::json::read::{Number, ReadError, ReadErrorKind, Reader, Token, MAX_DEPTH};
use serde_json::{Map, Value};

/// Why our side did not produce a value.
#[derive(Debug, PartialEq)]
enum Ours {
    /// The reader rejected the input.
    Rejected(ReadError),
    /// The reader accepted it, but a number has no `serde_json` representation (beyond `f64`).
    Unrepresentable,
}

/// A number as `serde_json` represents it: `u64` for non-negative integer literals in range,
/// `i64` for negative ones (except `-0`, which it reads as `-0.0`), `f64` otherwise.
fn number(n: Number<'_>) -> Result<Value, Ours> {
    if n.is_integer() {
        if let Some(u) = n.as_u64().filter(|_| !n.as_str().starts_with('-')) {
            return Ok(Value::from(u));
        }
        if let Some(i) = n.as_i64().filter(|&i| i != 0) {
            return Ok(Value::from(i));
        }
    }
    serde_json::Number::from_f64(n.as_f64())
        .map(Value::Number)
        .ok_or(Ours::Unrepresentable)
}

enum Frame {
    Array(Vec<Value>),
    Object(Map<String, Value>, Option<String>),
}

/// Builds a `serde_json::Value` from our token stream alone (no recursion).
fn to_value(input: &[u8]) -> Result<Value, Ours> {
    let mut r = Reader::with_max_depth(input, MAX_DEPTH);
    let mut stack: Vec<Frame> = Vec::new();
    let mut done = None;
    let mut steps = 0usize;
    loop {
        let tok = r.next().map_err(Ours::Rejected)?;
        steps += 1;
        assert!(steps <= input.len() + 1, "more tokens than bytes");
        let Some(tok) = tok else { break };
        let v = match tok {
            Token::ObjectStart => {
                stack.push(Frame::Object(Map::new(), None));
                continue;
            }
            Token::ArrayStart => {
                stack.push(Frame::Array(Vec::new()));
                continue;
            }
            Token::Key(k) => {
                let Some(Frame::Object(_, key)) = stack.last_mut() else {
                    panic!("key outside an object");
                };
                assert!(key.is_none(), "two keys in a row");
                *key = Some(k.chars().collect());
                continue;
            }
            Token::ObjectEnd => match stack.pop() {
                Some(Frame::Object(m, None)) => Value::Object(m),
                _ => panic!("unbalanced `}}`"),
            },
            Token::ArrayEnd => match stack.pop() {
                Some(Frame::Array(a)) => Value::Array(a),
                _ => panic!("unbalanced `]`"),
            },
            Token::Str(s) => {
                // Every decoding route agrees.
                let decoded: String = s.chars().collect();
                assert!(s.eq_str(&decoded));
                assert_eq!(s.decoded_len(), decoded.len());
                let mut buf = vec![0u8; decoded.len()];
                assert_eq!(s.decode_into(&mut buf), Ok(decoded.as_str()));
                if let Some(plain) = s.as_str() {
                    assert_eq!(plain, decoded);
                }
                Value::String(decoded)
            }
            Token::Number(n) => number(n)?,
            Token::Bool(b) => Value::Bool(b),
            Token::Null => Value::Null,
        };
        match stack.last_mut() {
            Some(Frame::Array(a)) => a.push(v),
            Some(Frame::Object(m, key)) => {
                let k = key.take().expect("value without a key");
                m.insert(k, v);
            }
            None => {
                assert!(done.is_none(), "two top-level values");
                done = Some(v);
            }
        }
        assert_eq!(r.depth(), stack.len());
    }
    assert!(stack.is_empty());
    assert_eq!(r.next(), Ok(None), "None is sticky");
    Ok(done.expect("accepted without a value"))
}

/// Whether two floats are within one unit in the last place (`serde_json` without its
/// `float_roundtrip` feature may be off by one; ours is correctly rounded).
fn close_f64(a: f64, b: f64) -> bool {
    a == b
        || (a.is_sign_negative() == b.is_sign_negative() && a.to_bits().abs_diff(b.to_bits()) <= 1)
}

/// Structural equality, floats compared within one ulp.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    close_f64(x, y) && x.is_sign_negative() == y.is_sign_negative()
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// Checks agreement with `serde_json` on `input`; returns whether it was accepted.
fn differential(input: &[u8]) -> bool {
    let theirs = serde_json::from_slice::<Value>(input);
    let ours = to_value(input);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => {
            assert!(
                same(a, b),
                "{:?}: ours {a:?}, serde_json {b:?}",
                String::from_utf8_lossy(input)
            );
            true
        }
        (Err(_), Err(_)) => false,
        _ => panic!(
            "{:?}: ours {ours:?}, serde_json {theirs:?}",
            String::from_utf8_lossy(input)
        ),
    }
}

#[test]
fn every_vector_file_matches_serde_json() {
    let dir = common::vectors_dir();
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let theirs: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let ours = to_value(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        assert!(
            same(&ours, &theirs),
            "{}: token stream does not rebuild serde_json's value",
            path.display()
        );
        // Skipping the whole document validates it just the same.
        let mut r = Reader::with_max_depth(&bytes, MAX_DEPTH);
        r.skip_value().unwrap();
        assert_eq!(r.next(), Ok(None));
        files += 1;
    }
    assert!(
        files >= 5,
        "only {files} vector files found in {}",
        dir.display()
    );
}

const TRICKY: &[&str] = &[
    // Valid.
    "0",
    "-0",
    "-0.0",
    "0.0e-0",
    "1E+2",
    "1e-2",
    "123456789012345678901234567890",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "0.1",
    "2.2250738585072011e-308",
    "4.9e-324",
    "1e-400",
    "1.7976931348623157e308",
    "\"\"",
    "\" \"",
    r#""\u0000""#,
    r#""\"\\\/\b\f\n\r\t""#,
    r#""\u00e9\u20ac\ud83d\ude00\uDBFF\uDFFF""#,
    "\"é€😀\u{7f}\u{80}\u{ffff}\u{10ffff}\"",
    "[]",
    "{}",
    " [ ] ",
    "[[[[[]]]]]",
    r#"{"a":{"b":{"c":[1,[2,[3]]]}}}"#,
    r#"{"a":1,"a":2}"#,
    r#"{"":""}"#,
    r#"{"\u0061":1}"#,
    "[true,false,null]",
    "\t\r\n 1 \t\r\n",
    r#"[1,"a",{"b":null},[],{},-1.5e10]"#,
    // Invalid.
    "",
    " ",
    "[",
    "]",
    "[1,]",
    "[,]",
    "[1 2]",
    "{\"a\"}",
    "{\"a\":}",
    "{\"a\":1,}",
    "{1:1}",
    "{\"a\" 1}",
    "[1}",
    "{\"a\":1]",
    "01",
    "-01",
    "1.",
    ".5",
    "-",
    "+1",
    "1e",
    "1e+",
    "1.e1",
    "--1",
    "0x1",
    "NaN",
    "Infinity",
    "-Infinity",
    "tru",
    "nul",
    "True",
    "nulll",
    "\"abc",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\u12g4\"",
    r#""\ud800""#,
    r#""\udc00""#,
    r#""\ud800\ud800""#,
    r#""\ud800\u0041""#,
    r#""\ud800x""#,
    r#""\udc00\ud800""#,
    "\"\u{1}\"",
    "\"\n\"",
    "\"\t\"",
    "1 2",
    "[] []",
    "\u{feff}[]",
    "\u{b}[]",
    "[]\u{c}",
    "\u{a0}1",
    "'a'",
    "/* c */ 1",
    "1 // c",
    "1e400",
    "-1e400",
];

#[test]
fn tricky_inputs_agree_with_serde_json() {
    let mut accepted = 0;
    for input in TRICKY {
        if differential(input.as_bytes()) {
            accepted += 1;
        }
    }
    assert!(accepted >= 30, "{accepted}");

    for bytes in [
        &b"\"\xff\""[..],
        b"\"\xc3\"",
        b"\"\xed\xa0\x80\"",
        b"\"\xc0\xaf\"",
        b"\"\xf4\x90\x80\x80\"",
        b"[\"a\xc3\xa9\"]",
        b"[\xc3\xa9]",
        b"{\"\x80\":1}",
        b"1\x00",
    ] {
        differential(bytes);
    }
}

#[test]
fn infinite_numbers_are_syntax_serde_json_rejects() {
    // Documented divergence: JSON's grammar has no magnitude limit, so the reader accepts
    // `1e400` (as_f64 gives inf); serde_json refuses it. The builder above reports that as
    // unrepresentable, which is why `differential` sees agreement.
    assert_eq!(to_value(b"1e400"), Err(Ours::Unrepresentable));
    assert!(serde_json::from_slice::<Value>(b"1e400").is_err());
}

#[test]
fn deep_nesting_agrees_below_both_limits() {
    for depth in [1, 10, 64, 100, 127] {
        let doc = "[".repeat(depth) + &"]".repeat(depth);
        assert!(differential(doc.as_bytes()), "depth {depth}");
    }
    let doc = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
    assert_eq!(
        to_value(doc.as_bytes()).unwrap_err(),
        Ours::Rejected(ReadError {
            kind: ReadErrorKind::TooDeep { max: MAX_DEPTH },
            offset: MAX_DEPTH
        })
    );
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_short_inputs_agree_with_serde_json() {
    const PIECES: &[&str] = &[
        "{", "}", "[", "]", ",", ":", "\"", "\"a\"", "\\", "\\u", "d800", "dc00", "0", "1", "-",
        ".", "e", "+", " ", "\n", "true", "fals", "null", "x", "\u{1}", "é",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for _ in 0..40_000 {
        let n = 1 + rng.below(8);
        let s: String = (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect();
        if differential(s.as_bytes()) {
            accepted += 1;
        }
    }
    // The generator must exercise both sides.
    assert!(accepted > 500, "{accepted}");
}

const MEDIUM: &str = r#"{
  "flags": [
    {
      "id": 1, "key": "beta-feature", "active": true, "ensure_experience_continuity": false,
      "filters": {
        "groups": [
          {"properties": [{"key": "email", "operator": "icontains", "value": "@posthog.com", "type": "person"}],
           "rollout_percentage": 50.5},
          {"properties": [], "rollout_percentage": null, "variant": "t\u00e9st \ud83d\ude00"}
        ],
        "multivariate": {"variants": [{"key": "control", "rollout_percentage": 33}, {"key": "test", "rollout_percentage": 67}]},
        "payloads": {"test": "{\"a\": [1, 2.5e-3, -0]}"}
      }
    }
  ],
  "group_type_mapping": {"0": "company"},
  "cohorts": {"7": {"type": "OR", "values": [true, false, null, -12, 1E+2]}}
}
"#;

#[test]
fn every_prefix_fails_cleanly() {
    let full = MEDIUM.as_bytes();
    assert!(differential(full));
    let body_end = MEDIUM.trim_end().len();
    for len in 0..full.len() {
        let prefix = &full[..len];
        match to_value(prefix) {
            Ok(_) => assert!(len >= body_end, "prefix of {len} bytes accepted"),
            Err(Ours::Rejected(e)) => {
                assert_eq!(e.kind, ReadErrorKind::UnexpectedEnd, "prefix {len}: {e}");
                assert_eq!(e.offset, len);
            }
            Err(other) => panic!("prefix {len}: {other:?}"),
        }
        assert_eq!(
            serde_json::from_slice::<Value>(prefix).is_ok(),
            len >= body_end,
            "prefix {len}"
        );
    }
}

#[test]
fn mutations_agree_with_serde_json() {
    const BYTES: &[u8] = b"{}[],:\"\\ \t\n0159-+.eEtfnu\x00\x1f\x7f\x80\xc3\xff";
    let doc = MEDIUM.as_bytes();
    let mut accepted = 0;
    for i in 0..doc.len() {
        for &b in BYTES {
            if doc[i] == b {
                continue;
            }
            let mut m = doc.to_vec();
            m[i] = b;
            if differential(&m) {
                accepted += 1;
            }
            // Deletion and insertion too (once per position).
            if b == b'{' {
                let mut d = doc.to_vec();
                d.remove(i);
                differential(&d);
            }
        }
        let mut ins = doc.to_vec();
        ins.insert(i, b',');
        differential(&ins);
    }
    assert!(accepted > 100, "{accepted}");
}

#[test]
fn skipping_and_reading_see_the_same_offsets() {
    // After skipping the value of each key, the reader is where reading it would have left it.
    let doc = MEDIUM.as_bytes();
    let mut a = Reader::new(doc);
    let mut b = Reader::new(doc);
    assert_eq!(a.next(), Ok(Some(Token::ObjectStart)));
    assert_eq!(b.next(), Ok(Some(Token::ObjectStart)));
    loop {
        let ka = a.next().unwrap();
        assert_eq!(ka, b.next().unwrap());
        match ka {
            Some(Token::Key(_)) => {
                a.skip_value().unwrap();
                let d = b.depth();
                loop {
                    b.next().unwrap();
                    if b.depth() == d {
                        break;
                    }
                }
                assert_eq!(a.offset(), b.offset());
            }
            Some(Token::ObjectEnd) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(a.next(), Ok(None));
}
