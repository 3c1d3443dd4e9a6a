//! The reader's unit tests.

use super::ReadErrorKind as K;
use super::*;
use std::string::{String, ToString};
use std::vec::Vec;

/// All tokens of `input`, or the first error.
pub(super) fn tokens(input: &str) -> Result<Vec<Token<'_>>, ReadError> {
    let mut r = Reader::new(input.as_bytes());
    let mut out = Vec::new();
    while let Some(t) = r.next()? {
        out.push(t);
    }
    Ok(out)
}

/// The single string token of `input` (a JSON string literal).
pub(super) fn one_str(input: &str) -> Str<'_> {
    match tokens(input).unwrap().as_slice() {
        [Token::Str(s)] => *s,
        other => panic!("{other:?}"),
    }
}

pub(super) fn one_num(input: &str) -> Number<'_> {
    match tokens(input).unwrap().as_slice() {
        [Token::Number(n)] => *n,
        other => panic!("{other:?}"),
    }
}

pub(super) fn decoded(s: Str<'_>) -> String {
    s.chars().collect()
}

fn err(input: &str) -> (ReadErrorKind, usize) {
    err_bytes(input.as_bytes())
}

fn err_bytes(input: &[u8]) -> (ReadErrorKind, usize) {
    let mut r = Reader::new(input);
    loop {
        match r.next() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("{:?} was accepted", String::from_utf8_lossy(input)),
            Err(e) => {
                // Sticky.
                assert_eq!(r.next(), Err(e));
                return (e.kind, e.offset);
            }
        }
    }
}

#[test]
fn every_token_kind() {
    let t =
        tokens(r#" { "a" : [ 1 , -2.5e3 , "x" , true , false , null , { } , [ ] ] } "#).unwrap();
    let s = |raw| Str {
        raw,
        escaped: false,
    };
    assert_eq!(
        t,
        [
            Token::ObjectStart,
            Token::Key(s("a")),
            Token::ArrayStart,
            Token::Number(Number {
                raw: "1",
                integer: true
            }),
            Token::Number(Number {
                raw: "-2.5e3",
                integer: false
            }),
            Token::Str(s("x")),
            Token::Bool(true),
            Token::Bool(false),
            Token::Null,
            Token::ObjectStart,
            Token::ObjectEnd,
            Token::ArrayStart,
            Token::ArrayEnd,
            Token::ArrayEnd,
            Token::ObjectEnd,
        ]
    );
}

#[test]
fn scalar_top_level_values() {
    assert_eq!(tokens("true").unwrap(), [Token::Bool(true)]);
    assert_eq!(tokens("\t\r\nnull\n").unwrap(), [Token::Null]);
    assert_eq!(one_num(" 0 ").as_str(), "0");
    assert_eq!(one_str(r#""""#).raw(), "");
}

#[test]
fn end_is_none_forever_and_each_token_consumes() {
    let input = br#"{"a":[1,{"b":null}],"c":"d"}  "#;
    let mut r = Reader::new(input);
    let mut last = r.offset();
    while let Some(_t) = r.next().unwrap() {
        assert!(r.offset() > last);
        last = r.offset();
    }
    assert_eq!(r.offset(), input.len());
    assert_eq!(r.next(), Ok(None));
    assert_eq!(r.next(), Ok(None));
    assert_eq!(r.depth(), 0);
}

#[test]
fn depth_and_offset() {
    let mut r = Reader::new(br#"[{"a":1}]"#);
    assert_eq!((r.depth(), r.offset()), (0, 0));
    r.next().unwrap();
    assert_eq!((r.depth(), r.offset()), (1, 1));
    r.next().unwrap();
    assert_eq!(r.depth(), 2);
    r.next().unwrap(); // key
    assert_eq!(r.offset(), 5);
    r.next().unwrap(); // 1
    assert_eq!(r.offset(), 7);
    assert_eq!(r.next(), Ok(Some(Token::ObjectEnd)));
    assert_eq!(r.depth(), 1);
    assert_eq!(r.next(), Ok(Some(Token::ArrayEnd)));
    assert_eq!(r.depth(), 0);
}

#[test]
fn grammar_errors_with_offsets() {
    let cases: &[(&str, ReadErrorKind, usize)] = &[
        ("", K::UnexpectedEnd, 0),
        ("   ", K::UnexpectedEnd, 3),
        ("[", K::UnexpectedEnd, 1),
        ("[1", K::UnexpectedEnd, 2),
        ("[1,", K::UnexpectedEnd, 3),
        ("{", K::UnexpectedEnd, 1),
        (r#"{"a""#, K::UnexpectedEnd, 4),
        (r#"{"a":"#, K::UnexpectedEnd, 5),
        (r#"{"a":1,"#, K::UnexpectedEnd, 7),
        (r#""abc"#, K::UnexpectedEnd, 4),
        ("tr", K::UnexpectedEnd, 2),
        ("[1,]", K::ExpectedValue, 3),
        ("[,1]", K::ExpectedValue, 1),
        (r#"{"a":}"#, K::ExpectedValue, 5),
        ("]", K::ExpectedValue, 0),
        ("}", K::ExpectedValue, 0),
        ("+1", K::ExpectedValue, 0),
        (".5", K::ExpectedValue, 0),
        ("'a'", K::ExpectedValue, 0),
        ("\u{feff}1", K::ExpectedValue, 0),
        ("\u{b}1", K::ExpectedValue, 0),
        ("\u{c}1", K::ExpectedValue, 0),
        ("\u{a0}1", K::ExpectedValue, 0),
        ("NaN", K::ExpectedValue, 0),
        (r#"{"a":1,}"#, K::ExpectedKey, 7),
        ("{,}", K::ExpectedKey, 1),
        ("{1:2}", K::ExpectedKey, 1),
        ("{a:1}", K::ExpectedKey, 1),
        (r#"{"a" 1}"#, K::ExpectedColon, 5),
        (r#"{"a",1}"#, K::ExpectedColon, 4),
        ("[1 2]", K::ExpectedComma, 3),
        ("[1}", K::ExpectedComma, 2),
        (r#"{"a":1]"#, K::ExpectedComma, 6),
        (r#"{"a":1 "b":2}"#, K::ExpectedComma, 7),
        ("[1:2]", K::ExpectedComma, 2),
        ("[truex]", K::ExpectedComma, 5),
        ("tru", K::UnexpectedEnd, 3),
        ("trUe", K::InvalidLiteral, 2),
        ("nul1", K::InvalidLiteral, 3),
        ("fals", K::UnexpectedEnd, 4),
        ("[falsy]", K::InvalidLiteral, 5),
        ("True", K::ExpectedValue, 0),
        ("1 2", K::TrailingData, 2),
        ("{}{}", K::TrailingData, 2),
        ("[] x", K::TrailingData, 3),
        ("truefalse", K::TrailingData, 4),
        ("1x", K::TrailingData, 1),
        ("\"a\"\"", K::TrailingData, 3),
    ];
    for &(input, kind, offset) in cases {
        assert_eq!(err(input), (kind, offset), "{input:?}");
    }
}

#[test]
fn string_errors_with_offsets() {
    let cases: &[(&str, ReadErrorKind, usize)] = &[
        ("\"a\u{1}b\"", K::ControlCharacter, 2),
        ("\"\n\"", K::ControlCharacter, 1),
        ("\"\t\"", K::ControlCharacter, 1),
        ("\"\u{0}\"", K::ControlCharacter, 1),
        ("\"\u{1f}\"", K::ControlCharacter, 1),
        (r#""a\x""#, K::InvalidEscape, 2),
        (r#""\'""#, K::InvalidEscape, 1),
        (r#""\U0041""#, K::InvalidEscape, 1),
        (r#""ab\u12G4""#, K::InvalidEscape, 3),
        (r#""\u123""#, K::InvalidEscape, 1),
        (r#""\"#, K::UnexpectedEnd, 2),
        (r#""\u12"#, K::UnexpectedEnd, 5),
        (r#""\ud800"#, K::UnexpectedEnd, 7),
        (r#""\ud800\"#, K::UnexpectedEnd, 8),
        (r#""\ud800\u"#, K::UnexpectedEnd, 9),
        (r#""\ud800\udc0"#, K::UnexpectedEnd, 12),
        (r#""\ud800\u12x4""#, K::InvalidEscape, 7),
        (r#"{"k\q":1}"#, K::InvalidEscape, 3),
    ];
    for &(input, kind, offset) in cases {
        assert_eq!(err(input), (kind, offset), "{input:?}");
    }
}

#[test]
fn lone_surrogates_are_rejected() {
    let cases: &[(&str, usize)] = &[
        (r#""\ud800""#, 1),              // high alone
        (r#""x\udbff""#, 2),             // highest high alone
        (r#""\udc00""#, 1),              // low first
        (r#""\udfff\udc00""#, 1),        // low first, then low
        (r#""\ud800\ud800""#, 1),        // high, high
        (r#""\ud800\u0041""#, 1),        // high, BMP escape
        (r#""\ud800a""#, 1),             // high, plain char
        (r#""\ud800\n""#, 1),            // high, short escape
        (r#""\ud800\\udc00""#, 1),       // high, escaped backslash
        (r#""\ud83d\ude00\ud800""#, 13), // good pair, then high alone
        (r#""\uDC00\uD800""#, 1),        // reversed pair
    ];
    for &(input, offset) in cases {
        assert_eq!(err(input), (K::LoneSurrogate, offset), "{input:?}");
    }
    // As keys too.
    assert_eq!(err(r#"{"\ud800":1}"#), (K::LoneSurrogate, 2));
}

#[test]
fn invalid_utf8_is_rejected() {
    let cases: &[(&[u8], usize)] = &[
        (b"\"\xff\"", 1),
        (b"\"ab\xc3\"", 3),           // truncated 2-byte sequence
        (b"\"\xc3\x28\"", 1),         // bad continuation
        (b"\"\xe2\x82\"", 1),         // truncated 3-byte sequence
        (b"\"\xed\xa0\x80\"", 1),     // encoded surrogate
        (b"\"\xc0\xaf\"", 1),         // overlong
        (b"\"\xf4\x90\x80\x80\"", 1), // above U+10FFFF
        (b"\"ok\\n\xe2\x82\\n\"", 5), // split by an escape
        (b"{\"\x80\":1}", 2),         // in a key
    ];
    for &(input, offset) in cases {
        assert_eq!(err_bytes(input), (K::InvalidUtf8, offset), "{input:?}");
    }
    // Outside strings, non-ASCII bytes cannot start anything.
    assert_eq!(err_bytes(b"[\xc3\xa9]"), (K::ExpectedValue, 1));
    // Valid multi-byte text passes.
    assert_eq!(one_str("\"é€😀\"").as_str(), Some("é€😀"));
}

#[test]
fn number_grammar() {
    for ok in [
        "0",
        "-0",
        "1",
        "-1",
        "10",
        "1.5",
        "-0.0",
        "0e0",
        "0E+1",
        "1e-7",
        "123.456e789",
        "1e400",
        "-1e400",
        "1e-400",
        "18446744073709551616",
    ] {
        assert_eq!(one_num(ok).as_str(), ok);
    }
    let bad: &[(&str, ReadErrorKind, usize)] = &[
        ("01", K::InvalidNumber, 1),
        ("-01", K::InvalidNumber, 2),
        ("00", K::InvalidNumber, 1),
        ("1.", K::UnexpectedEnd, 2),
        ("1.e5", K::InvalidNumber, 2),
        ("[1.]", K::InvalidNumber, 3),
        ("-", K::UnexpectedEnd, 1),
        ("-a", K::InvalidNumber, 1),
        ("--1", K::InvalidNumber, 1),
        ("-.5", K::InvalidNumber, 1),
        ("1e", K::UnexpectedEnd, 2),
        ("1e+", K::UnexpectedEnd, 3),
        ("1e+x", K::InvalidNumber, 3),
        ("[1e]", K::InvalidNumber, 3),
        ("1.5.2", K::TrailingData, 3),
        ("1e5e5", K::TrailingData, 3),
        ("0x10", K::TrailingData, 1),
        ("1_000", K::TrailingData, 1),
    ];
    for &(input, kind, offset) in bad {
        assert_eq!(err(input), (kind, offset), "{input:?}");
    }
}

#[test]
fn whitespace_is_only_the_four_json_bytes() {
    assert_eq!(
        tokens(" \t\r\n[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n")
            .unwrap()
            .len(),
        4
    );
    assert_eq!(err("[1,\u{b}2]"), (K::ExpectedValue, 3));
    assert_eq!(err("[1\u{c}]"), (K::ExpectedComma, 2));
    assert_eq!(err("1\u{0}"), (K::TrailingData, 1));
}

#[test]
fn depth_limit_exactly() {
    for max in [0usize, 1, 2, 5, 64, 128] {
        for (open, close) in [("[", "]"), ("{\"k\":", "}")] {
            let ok = open.repeat(max) + "1" + &close.repeat(max);
            let mut r = Reader::with_max_depth(ok.as_bytes(), max);
            let mut deepest = 0;
            while r.next().unwrap().is_some() {
                deepest = deepest.max(r.depth());
            }
            assert_eq!(deepest, max);

            let too_deep = open.repeat(max + 1) + "1" + &close.repeat(max + 1);
            let mut r = Reader::with_max_depth(too_deep.as_bytes(), max);
            let e = loop {
                if let Err(e) = r.next() {
                    break e;
                }
            };
            assert_eq!(e.kind, K::TooDeep { max });
            assert_eq!(e.offset, open.len() * max);
        }
    }
    assert_eq!(Reader::new(b"").max_depth(), DEFAULT_MAX_DEPTH);
    assert_eq!(Reader::with_max_depth(b"", 1000).max_depth(), MAX_DEPTH);
    // Default limit.
    let deep = "[".repeat(65);
    assert_eq!(err(&deep), (K::TooDeep { max: 64 }, 64));
    // Sibling containers at the limit are fine; mixed kinds track correctly.
    let mixed = r#"[{"a":[{"b":[]},{"c":{}}]},[{}],{"d":[[]]}]"#;
    assert_eq!(tokens(mixed).unwrap().len(), 28);
    assert_eq!(err(r#"[{"a":[}]"#), (K::ExpectedValue, 7));
    assert_eq!(err(r#"{"a":[{]}"#), (K::ExpectedKey, 7));
}

#[test]
fn skip_value_skips_nested_values() {
    let input = br#"{"a":{"x":[1,{"y":[]}],"z":"q"},"b":[[],[[1]]],"c":3,"d":"s"}"#;
    let mut r = Reader::new(input);
    assert_eq!(r.next(), Ok(Some(Token::ObjectStart)));
    let mut seen = Vec::new();
    while let Some(t) = r.next().unwrap() {
        match t {
            Token::Key(k) if k.eq_str("c") => {
                assert!(matches!(r.next(), Ok(Some(Token::Number(n))) if n.as_u64() == Some(3)));
            }
            Token::Key(k) => {
                seen.push(k.raw());
                r.skip_value().unwrap();
                assert_eq!(r.depth(), 1);
            }
            Token::ObjectEnd => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, ["a", "b", "d"]);
    assert_eq!(r.next(), Ok(None));

    // At the start: skips the whole document.
    let mut r = Reader::new(b" [1,[2,{\"a\":3}]] ");
    r.skip_value().unwrap();
    assert_eq!(r.next(), Ok(None));
    // A scalar document.
    let mut r = Reader::new(b"\"s\"");
    r.skip_value().unwrap();
    assert_eq!(r.next(), Ok(None));

    // Array elements.
    let mut r = Reader::new(b"[{\"a\":1}, [2], 3]");
    r.next().unwrap();
    r.skip_value().unwrap();
    r.skip_value().unwrap();
    assert_eq!(r.depth(), 1);
    assert!(matches!(r.next(), Ok(Some(Token::Number(_)))));
    assert_eq!(r.next(), Ok(Some(Token::ArrayEnd)));
}

#[test]
fn skip_value_validates() {
    let mut r = Reader::new(br#"{"a":[1,{"b":01}],"c":1}"#);
    r.next().unwrap();
    r.next().unwrap();
    let e = r.skip_value().unwrap_err();
    assert_eq!((e.kind, e.offset), (K::InvalidNumber, 14));
    assert_eq!(r.next(), Err(e));
    assert_eq!(r.skip_value(), Err(e));

    let mut r = Reader::new(br#"{"a":[1,2"#);
    r.next().unwrap();
    r.next().unwrap();
    assert_eq!(r.skip_value().unwrap_err().kind, K::UnexpectedEnd);

    let mut r = Reader::new(br#"[[1 2]]"#);
    r.next().unwrap();
    assert_eq!(r.skip_value().unwrap_err().kind, K::ExpectedComma);
}

#[test]
fn skip_value_where_no_value_follows() {
    // Before `]`: an error that consumes nothing and does not stick.
    let mut r = Reader::new(b"[ ]");
    r.next().unwrap();
    assert_eq!(r.skip_value(), Err(ReadError::new(K::ExpectedValue, 2)));
    assert_eq!(r.next(), Ok(Some(Token::ArrayEnd)));
    // At the end of the document.
    assert_eq!(r.skip_value(), Err(ReadError::new(K::ExpectedValue, 3)));
    assert_eq!(r.next(), Ok(None));
    // Where a key is due.
    let mut r = Reader::new(br#"{"a":1, "b":2}"#);
    r.next().unwrap();
    assert_eq!(r.skip_value(), Err(ReadError::new(K::ExpectedValue, 1)));
    r.next().unwrap();
    r.skip_value().unwrap();
    assert_eq!(r.skip_value(), Err(ReadError::new(K::ExpectedValue, 6)));
    assert!(matches!(r.next(), Ok(Some(Token::Key(k))) if k.eq_str("b")));
    // After an array element, before `,`: the next element is skipped.
    let mut r = Reader::new(b"[1 , [2] ]");
    r.next().unwrap();
    r.next().unwrap();
    r.skip_value().unwrap();
    assert_eq!(r.skip_value(), Err(ReadError::new(K::ExpectedValue, 9)));
    assert_eq!(r.next(), Ok(Some(Token::ArrayEnd)));
}

#[test]
fn skip_container_finishes_the_innermost() {
    let mut r = Reader::new(br#"{"flags":[{"key":"a","x":[1,2]},{"key":"b"}],"n":1}"#);
    r.next().unwrap(); // {
    r.next().unwrap(); // "flags"
    r.next().unwrap(); // [
    r.next().unwrap(); // {
    r.next().unwrap(); // "key"
    assert!(matches!(r.next(), Ok(Some(Token::Str(s))) if s.eq_str("a")));
    r.skip_container().unwrap(); // rest of the first flag
    assert_eq!(r.depth(), 2);
    r.skip_container().unwrap(); // rest of the array
    assert_eq!(r.depth(), 1);
    assert!(matches!(r.next(), Ok(Some(Token::Key(k))) if k.eq_str("n")));
    r.skip_container().unwrap();
    assert_eq!(r.depth(), 0);
    r.skip_container().unwrap(); // no-op
    assert_eq!(r.next(), Ok(None));

    let mut r = Reader::new(b"[[1,]]");
    r.next().unwrap();
    r.next().unwrap();
    assert_eq!(r.skip_container().unwrap_err().kind, K::ExpectedValue);
}

#[test]
fn errors_display_offsets() {
    assert_eq!(
        ReadError::new(K::UnexpectedEnd, 12).to_string(),
        "unexpected end of JSON input at byte 12"
    );
    assert_eq!(
        ReadError::new(K::TooDeep { max: 64 }, 64).to_string(),
        "JSON nested deeper than 64 levels at byte 64"
    );
    // Every kind has a distinct message.
    let kinds = [
        K::UnexpectedEnd,
        K::ExpectedValue,
        K::ExpectedKey,
        K::ExpectedColon,
        K::ExpectedComma,
        K::InvalidLiteral,
        K::InvalidNumber,
        K::InvalidEscape,
        K::LoneSurrogate,
        K::ControlCharacter,
        K::InvalidUtf8,
        K::TooDeep { max: 1 },
        K::TrailingData,
    ];
    let msgs: std::collections::BTreeSet<String> = kinds.iter().map(ToString::to_string).collect();
    assert_eq!(msgs.len(), kinds.len());
}

#[test]
fn keys_are_strings_with_escapes() {
    let t = tokens(r#"{"a\nb":1,"":2}"#).unwrap();
    match t.as_slice() {
        [Token::ObjectStart, Token::Key(a), _, Token::Key(e), _, Token::ObjectEnd] => {
            assert!(a.eq_str("a\nb"));
            assert!(a.has_escapes());
            assert_eq!(e.raw(), "");
        }
        other => panic!("{other:?}"),
    }
    // A string where a key is due is a key; where a value is due, a value.
    assert_eq!(err(r#"["a":1]"#), (K::ExpectedComma, 4));
}
