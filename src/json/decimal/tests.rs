//! `parse_f64` against `core`'s parser (correctly rounded), on hard cases, exact halfway points
//! between doubles and their neighbours, and random text.

use std::format;
use std::string::String;
use std::vec::Vec;

use super::parse_f64;
use crate::rng::Rng;

fn check(s: &str) {
    let want: Option<f64> = s.parse().ok();
    let got = parse_f64(s);
    assert_eq!(
        got.map(f64::to_bits),
        want.map(f64::to_bits),
        "{s}: got {got:?}, want {want:?}"
    );
}

#[test]
fn known_hard_cases() {
    for s in [
        "0",
        "-0",
        "+0.0e10",
        "0e999999999999",
        "1",
        "-1",
        "1.5",
        ".5",
        "5.",
        "+.5e+1",
        "0.1",
        "0.30000000000000004",
        "9007199254740992",
        "9007199254740993",
        "9007199254740994",
        "9007199254740995",
        "18014398509481993",
        "1e22",
        "1e23",
        "1e37",
        "123456789e30",
        "8.533e+68",
        "4.1006e-184",
        "9.998e+307",
        "9.9538452227e-280",
        "6.47660115e-260",
        "7.4e+47",
        "5.92e+48",
        "7.35e+66",
        "8.32116e+55",
        "2.2250738585072011e-308",
        "2.2250738585072012e-308",
        "2.2250738585072014e-308",
        "2.225073858507201136057409796709131975934819546351645648e-308",
        "4.9406564584124654e-324",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "2.47032822920623272088e-324",
        "2.470328229206232720882538e-324",
        "1e-324",
        "3e-324",
        "1.7976931348623157e308",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "1.797693134862315807937289714053e308",
        "1e308",
        "1e309",
        "1e400",
        "-1e400",
        "1e-400",
        "0.000000000000000000000000000000000000000001e42",
        "100000000000000000000000000000000000000000e-42",
        "179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497791",
        "2.4e-07",
        "123.456",
        "3.141592653589793238462643383279502884197169399375105820974944592307816406286",
    ] {
        check(s);
    }
}

/// Exponents far past any double, and digits far past the 800 kept, balanced by the exponent.
#[test]
fn absurd_exponents_and_lengths() {
    for s in [
        "1e99999999999999999999",
        "-1e99999999999999999999",
        "1e-99999999999999999999",
        "0e99999999999999999999",
        "123456789012345678901234567890e-99999999999999999999",
    ] {
        check(s);
    }
    let zeros = "0".repeat(5000);
    check(&format!("0.{zeros}1e5001"));
    check(&format!("1{zeros}e-5000"));
    check(&format!("1{zeros}e-5308"));
    check(&format!("{zeros}1.5"));
    check(&format!("17976931348623157{zeros}e-5000"));
    check("2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125e-324");
    check(&format!("{}1e-1080", "4".repeat(1500)));
}

#[test]
fn long_random_digit_strings() {
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    for _ in 0..3_000 {
        let n = 15 + (rng.next_u64() % 800) as usize;
        let mut s = String::new();
        for _ in 0..n {
            s.push(char::from(b'0' + (rng.next_u64() % 10) as u8));
        }
        let e = (rng.next_u64() % 1400) as i64 - 1100;
        check(&format!("{s}e{e}"));
    }
}

#[test]
fn malformed_text_is_refused() {
    for s in [
        "", "-", "+", ".", "e5", "1e", "1e+", "1.2.3", "1x", " 1", "1 ", "--1", "inf", "NaN",
    ] {
        assert_eq!(parse_f64(s), None, "{s:?}");
    }
}

/// The exact decimal expansion of `m · 2^e` (`m` odd or any, `e` any), as digits with a
/// point: schoolbook arithmetic in base 10^9.
fn exact_decimal(m: u64, e: i32) -> String {
    // Big integer, little-endian base 1e9.
    fn mul_small(n: &mut Vec<u64>, f: u64) {
        let mut carry = 0;
        for limb in n.iter_mut() {
            let v = *limb * f + carry;
            *limb = v % 1_000_000_000;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            n.push(carry % 1_000_000_000);
            carry /= 1_000_000_000;
        }
    }
    fn digits(n: &[u64]) -> String {
        let mut s = String::new();
        for (i, limb) in n.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&format!("{limb}"));
            } else {
                s.push_str(&format!("{limb:09}"));
            }
        }
        s
    }
    let mut n = std::vec![
        m % 1_000_000_000,
        (m / 1_000_000_000) % 1_000_000_000,
        m / 1_000_000_000_000_000_000
    ];
    while n.len() > 1 && n.last() == Some(&0) {
        n.pop();
    }
    if e >= 0 {
        for _ in 0..e {
            mul_small(&mut n, 2);
        }
        digits(&n)
    } else {
        // m · 2^e = m · 5^-e / 10^-e.
        let k = usize::try_from(-e).unwrap();
        for _ in 0..k {
            mul_small(&mut n, 5);
        }
        let d = digits(&n);
        if d.len() > k {
            format!("{}.{}", &d[..d.len() - k], &d[d.len() - k..])
        } else {
            format!("0.{}{}", "0".repeat(k - d.len()), d)
        }
    }
}

/// Halfway between a double and the next one up is exactly representable in decimal; it must
/// round to even, and anything a hair above or below it to the nearer side.
#[test]
fn halfway_points_and_their_neighbours() {
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut cases = Vec::new();
    // Subnormals, the normal boundary, the top of the range, and random exponents.
    for bits in [
        1u64,
        2,
        3,
        0x000f_ffff_ffff_ffff,
        0x0010_0000_0000_0000,
        0x7fef_ffff_ffff_fffe,
    ] {
        cases.push(bits);
    }
    for _ in 0..300 {
        cases.push(rng.next_u64() % 0x7fef_ffff_ffff_ffff);
    }
    for bits in cases {
        let x = f64::from_bits(bits);
        // x = mantissa · 2^exp exactly; the halfway point above it is (2·mantissa + 1) · 2^(exp-1).
        let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap();
        let frac = bits & ((1 << 52) - 1);
        let (mantissa, exp) = if biased == 0 {
            (frac, -1074)
        } else {
            (frac | 1 << 52, biased - 1075)
        };
        let half = exact_decimal(2 * mantissa + 1, exp - 1);
        check(&half);
        // A hair above: the digits and a trailing 1.
        let above = if half.contains('.') {
            format!("{half}1")
        } else {
            format!("{half}.1")
        };
        check(&above);
        // Above by a digit far past the 800 the slow path keeps: only its "truncated" flag
        // tells this from the exact tie.
        let far_above = if half.contains('.') {
            format!("{half}{}1", "0".repeat(900))
        } else {
            format!("{half}.{}1", "0".repeat(900))
        };
        check(&far_above);
        // A hair below: the last nonzero digit lowered and a tail of nines.
        let below = {
            let mut b = half.clone().into_bytes();
            let last = b
                .iter()
                .rposition(|c| c.is_ascii_digit() && *c != b'0')
                .unwrap();
            b[last] -= 1;
            let mut s = String::from_utf8(b).unwrap();
            if !s.contains('.') {
                s.push('.');
            }
            s.push_str("999999999");
            s
        };
        check(&below);
        // The double itself, exactly, and in exponent form.
        check(&exact_decimal(mantissa, exp));
        check(&format!("{x:e}"));
        check(&format!("{x:?}"));
    }
}

#[test]
fn random_text() {
    let mut rng = Rng::new(0x2545_f491_4f6c_dd1d);
    for _ in 0..200_000 {
        let r = rng.next_u64();
        let ndigits = 1 + (r % 30) as usize;
        let mut s = String::new();
        if r & (1 << 40) != 0 {
            s.push('-');
        }
        let point = (rng.next_u64() % (ndigits as u64 + 2)) as usize;
        for i in 0..ndigits {
            if i == point {
                s.push('.');
            }
            s.push(char::from(b'0' + (rng.next_u64() % 10) as u8));
        }
        if r & (1 << 41) != 0 {
            let e = (rng.next_u64() % 700) as i64 - 350;
            s.push_str(&format!("e{e}"));
        }
        check(&s);
    }
}
