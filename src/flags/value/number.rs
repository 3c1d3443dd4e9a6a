//! Numbers as posthog-python reads them from property values, and the legacy boolean rules
//! of `exact`.

use super::PropertyValue;

/// Parses a numeric string the way PostHog's `gt`/`gte`/`lt`/`lte` do (posthog-python
/// `feature_flags.py`, `_parse_numeric_value`). The whole string must match
/// `[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`, ASCII digits only, no whitespace;
/// and the value must be finite (`"1e309"` is `None`; `"1e-400"` is `0.0`).
///
/// ```
/// use posthog_embedded::flags::value::parse_py_number;
///
/// assert_eq!(parse_py_number("+.5e+1"), Some(5.0));
/// assert_eq!(parse_py_number("10."), Some(10.0));
/// assert_eq!(parse_py_number(" 10"), None);
/// assert_eq!(parse_py_number("NaN"), None);
/// ```
#[must_use]
pub fn parse_py_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits_from = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_end = digits_from(i);
    let had_int = int_end > i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits_from(i + 1);
        if !had_int && frac_end == i + 1 {
            return None;
        }
        i = frac_end;
    } else if !had_int {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_end = digits_from(i);
        if exp_end == i {
            return None;
        }
        i = exp_end;
    }
    if i != b.len() {
        return None;
    }
    crate::json::decimal::parse_f64(s).filter(|v| v.is_finite())
}

/// [`PropertyValue::is_boolean_like`] of a raw JSON value (for example a filter value straight
/// from the definitions). Invalid JSON is not boolean-like.
#[must_use]
pub fn is_boolean_like_json(raw: &str) -> bool {
    PropertyValue::from_json(raw).is_ok_and(|v| v.is_boolean_like())
}

/// [`PropertyValue::truthy`] of a raw JSON value. Invalid JSON is not truthy.
#[must_use]
pub fn truthy_json(raw: &str) -> bool {
    PropertyValue::from_json(raw).is_ok_and(|v| v.truthy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let ok = [
            ("0", 0.0),
            ("10", 10.0),
            ("-10", -10.0),
            ("+10", 10.0),
            ("1.", 1.0),
            (".5", 0.5),
            ("-.5", -0.5),
            ("+.5e+1", 5.0),
            ("+1.e1", 10.0),
            ("-1.25E+2", -125.0),
            ("-5e-1", -0.5),
            ("1e-400", 0.0),
            ("1.7976931348623157e308", f64::MAX),
            ("007", 7.0),
            ("9007199254740993", 9007199254740992.0),
        ];
        for (s, v) in ok {
            assert_eq!(parse_py_number(s), Some(v), "{s}");
        }
        let bad = [
            "", " ", "+", "-", ".", "+.", "e5", ".e5", "1e", "1e+", "1.5.", " 10", "10 ", "10\n",
            "1_0", "1,0", "0x10", "١٠", "NaN", "nan", "inf", "-inf", "Infinity", "1e309", "10px",
            "abc", "1.0.0", "--1", "1e5.0", "1d5",
        ];
        for s in bad {
            assert_eq!(parse_py_number(s), None, "{s:?}");
        }
    }

    #[test]
    fn as_number() {
        use PropertyValue as V;
        assert_eq!(V::Int(-3).as_number(), Some(-3.0));
        assert_eq!(V::UInt(u64::MAX).as_number(), Some(u64::MAX as f64));
        assert_eq!(V::Float(2.5).as_number(), Some(2.5));
        assert_eq!(V::Float(f64::NAN).as_number(), None);
        assert_eq!(V::Float(f64::INFINITY).as_number(), None);
        assert_eq!(V::Str("23").as_number(), Some(23.0));
        assert_eq!(V::Str("").as_number(), None);
        assert_eq!(V::Bool(true).as_number(), None);
        assert_eq!(V::Null.as_number(), None);
        assert_eq!(V::Json("[10]").as_number(), None);
        assert_eq!(V::Json("{}").as_number(), None);
        assert_eq!(
            V::from_json(r#""\u0031\u0030""#).unwrap().as_number(),
            Some(10.0)
        );
        assert_eq!(V::from_json(r#""1\n""#).unwrap().as_number(), None);
    }

    #[test]
    fn boolean_like_and_truthy() {
        let cases: &[(&str, bool, bool)] = &[
            // raw, boolean-like, truthy
            ("true", true, true),
            ("false", true, false),
            (r#""TRUE""#, true, true),
            (r#""False""#, true, false),
            (r#""\u0074rue""#, true, true),
            (r#""yes""#, false, false),
            (r#""true ""#, false, false),
            (r#""""#, false, false),
            ("null", false, false),
            ("0", false, false),
            ("1", false, false),
            ("1.0", false, false),
            ("[]", true, true),
            ("[true]", true, true),
            (r#"["false"]"#, true, false),
            (r#"["true", "false"]"#, true, false),
            (r#"[true, ["TRUE", []]]"#, true, true),
            (r#"[true, [false]]"#, true, false),
            (r#"[[true], "PRO"]"#, false, false),
            (r#"[null, "PRO"]"#, false, false),
            ("[1]", false, false),
            ("[{}]", false, false),
            ("{}", false, false),
            (r#"{"a": true}"#, false, false),
        ];
        for &(raw, like, truthy) in cases {
            let v = PropertyValue::from_json(raw).unwrap();
            assert_eq!(v.is_boolean_like(), like, "{raw}");
            assert_eq!(v.truthy(), truthy, "{raw}");
            assert_eq!(is_boolean_like_json(raw), like, "{raw}");
            assert_eq!(truthy_json(raw), truthy, "{raw}");
        }
        assert!(PropertyValue::Str("tRuE").truthy());
        assert!(!is_boolean_like_json("[tru"));
        assert!(!truthy_json("nope"));
    }
}
