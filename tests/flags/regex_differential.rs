//! Differential test: `flags::regex` against the `regex` crate (the engine PostHog's server
//! uses).
//!
//! For every pattern our engine compiles, its answer must equal `regex::Regex::is_match` on
//! every haystack, and `regex` must accept the pattern. Where we say `Invalid`, `regex` must
//! reject it. `Unsupported` and `TooBig` are counted and printed (they send the flag to the
//! server, which is never wrong). Every run also checks the step bound.

use crate::common;

use posthog_embedded::flags::regex::{Regex, RegexError};
use serde_json::Value;

#[derive(Default, Debug)]
struct Stats {
    patterns: usize,
    compiled: usize,
    invalid: usize,
    unsupported: usize,
    too_big: usize,
    /// Patterns `regex` rejects that we left to the server.
    rejected_by_regex_inconclusive: usize,
    pairs_agree: usize,
    failures: Vec<String>,
}

impl Stats {
    fn check(&mut self, pattern: &str, haystacks: &[&str]) {
        self.patterns += 1;
        let theirs = regex::Regex::new(pattern);
        match Regex::<256>::new(pattern) {
            Ok(ours) => {
                self.compiled += 1;
                let theirs = match theirs {
                    Ok(r) => r,
                    Err(e) => {
                        self.failures.push(format!(
                            "{pattern:?}: we compiled it, regex rejects it: {}",
                            e.to_string().lines().last().unwrap_or("")
                        ));
                        return;
                    }
                };
                for h in haystacks {
                    let (got, steps) = ours.is_match_counting(h);
                    let want = theirs.is_match(h);
                    if got != want {
                        self.failures
                            .push(format!("{pattern:?} on {h:?}: ours {got}, regex {want}"));
                    } else {
                        self.pairs_agree += 1;
                    }
                    if steps > ours.max_steps(h.len()) {
                        self.failures.push(format!(
                            "{pattern:?} on {h:?}: {steps} steps > bound {}",
                            ours.max_steps(h.len())
                        ));
                    }
                }
            }
            Err(RegexError::Invalid) => {
                self.invalid += 1;
                if theirs.is_ok() {
                    self.failures
                        .push(format!("{pattern:?}: we say Invalid, regex accepts it"));
                }
            }
            Err(e) => {
                if std::env::var_os("REGEX_DIFF_VERBOSE").is_some() {
                    let verdict = match &theirs {
                        Ok(_) => "regex accepts".to_string(),
                        Err(err) => format!(
                            "regex rejects: {}",
                            err.to_string().lines().last().unwrap_or("")
                        ),
                    };
                    println!("INCONCLUSIVE {e:?} {pattern:?} ({verdict})");
                }
                if e == RegexError::TooBig {
                    self.too_big += 1;
                } else {
                    self.unsupported += 1;
                }
                if theirs.is_err() {
                    self.rejected_by_regex_inconclusive += 1;
                }
            }
        }
    }

    fn finish(self, label: &str) {
        println!(
            "{label}: {} patterns: {} compiled ({} pattern×haystack pairs agree), {} invalid, \
             {} unsupported, {} too big ({} of these inconclusive ones are rejected by regex)",
            self.patterns,
            self.compiled,
            self.pairs_agree,
            self.invalid,
            self.unsupported,
            self.too_big,
            self.rejected_by_regex_inconclusive,
        );
        if !self.failures.is_empty() {
            for f in self.failures.iter().take(50) {
                eprintln!("MISMATCH {f}");
            }
            panic!("{label}: {} disagreements with regex", self.failures.len());
        }
    }
}

/// PostHog's stringification of a property value (posthog-python `_value_to_string`; close
/// enough for a differential test: both engines see the same haystack).
fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                if f.fract() == 0.0 && f.abs() < 1e16 {
                    format!("{f:.1}")
                } else {
                    f.to_string()
                }
            } else {
                n.to_string()
            }
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(json_item).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), json_item(&map[k])))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
    }
}

fn json_item(v: &Value) -> String {
    match v {
        Value::String(_) => v.to_string(),
        _ => stringify(v),
    }
}

/// (pattern, haystack) pairs of every regex/not_regex filter in the two vector files.
fn vector_pairs() -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let fallback = common::load("local_evaluation_regex_fallback_cases.json");
    for case in fallback["cases"].as_array().unwrap() {
        let groups = case["flag"]["filters"]["groups"].as_array().unwrap();
        for prop in groups.iter().flat_map(|g| {
            g["properties"]
                .as_array()
                .map(|a| a.as_slice())
                .unwrap_or_default()
        }) {
            if !matches!(prop["operator"].as_str(), Some("regex" | "not_regex")) {
                continue;
            }
            let key = prop["key"].as_str().unwrap();
            let value = case["person_properties"].get(key).or_else(|| {
                case["group_properties"]
                    .as_object()
                    .and_then(|m| m.values().find_map(|g| g.get(key)))
            });
            if let Some(value) = value {
                pairs.push((stringify(&prop["value"]), stringify(value)));
            }
        }
    }
    let props = common::load("property_match_cases.json");
    for case in props["cases"].as_array().unwrap() {
        let prop = &case["property"];
        if !matches!(prop["operator"].as_str(), Some("regex" | "not_regex")) {
            continue;
        }
        let key = prop["key"].as_str().unwrap();
        if let Some(value) = case["property_values"].get(key) {
            pairs.push((stringify(&prop["value"]), stringify(value)));
        }
    }
    pairs
}

#[test]
fn vectors_agree_with_regex() {
    let pairs = vector_pairs();
    assert!(pairs.len() > 500, "only {} regex pairs found", pairs.len());
    let mut stats = Stats::default();
    for (pattern, haystack) in &pairs {
        stats.check(pattern, &[haystack, "", "a\n", haystack.trim_end()]);
    }
    stats.finish("vector filters");
}

const HAYSTACKS: &[&str] = &[
    "",
    "a",
    "aa",
    "aaa",
    "ab",
    "abc",
    "b",
    "ba",
    "aab",
    "abab",
    "abcdab",
    "xay",
    "foo",
    "FOO",
    "Foo",
    "foo\n",
    "foo\nbar",
    "bar\nfoo",
    "foo\r\n",
    "\n",
    "\r",
    "a\n",
    "\na",
    "a b",
    " a ",
    "a-b",
    "a_b",
    "_",
    "-",
    "é",
    "É",
    "e\u{301}",
    "\u{301}",
    "😀",
    "a😀b",
    "K",
    "k",
    "\u{212A}",
    "s",
    "S",
    "\u{17F}",
    "ß",
    "\u{1E9E}",
    "Σ",
    "σ",
    "ς",
    "ΣΑΣ",
    "θ",
    "ϑ",
    "ϴ",
    "İ",
    "ı",
    "i",
    "I",
    "Ǆ",
    "ǅ",
    "ǆ",
    "١٢٣",
    "123",
    "²",
    "\u{2003}",
    "\u{feff}",
    "\u{1c}",
    "\t",
    "\x0B",
    "\x07",
    "\x08",
    "a.b+tag@example.com",
    "user@example.com\n",
    "https://app.posthog.com/path?q=1",
    "[1,2]",
    "{\"a\":1}",
    "null",
    "true",
    "1.0",
    "$$",
    "^$",
    "a{2}",
    "\\p{L}",
    "bot",
    "a bot b",
    "robot",
    "bots",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "ababababababababababababababababababab",
    "中文字符",
    "Ⅻ",
    "ǈ",
];

/// Hand-written patterns covering the syntax (and the edges of it).
const PATTERNS: &[&str] = &[
    "",
    "a",
    "ab",
    "^a",
    // Fixed-length patterns ending at `$`, which only the haystack's tail can match.
    "[02468]$",
    r"\d\d$",
    "(?i)b$",
    "..$",
    "(?s).$",
    "中$",
    r"\w\W$",
    "[^a-z]$",
    "ab$",
    r"-\d$",
    r"\z",
    r"a\z",
    "a$",
    "^$",
    "^a$",
    "a|b",
    "a|",
    "|a",
    "|",
    "()",
    "(|a)",
    "(?:)",
    "(a)",
    "((a))",
    "(?:a|b)+",
    "a*",
    "a+",
    "a?",
    "a*?",
    "a+?",
    "a??",
    "a{2}",
    "a{2,}",
    "a{2,3}",
    "a{0}",
    "a{0,0}",
    "a{0,1}",
    "a{1}?",
    "a{2,}?",
    "^a{2}$",
    "^a{2,3}$",
    "^(a|aa)*b$",
    "^(a*)*$",
    "^(a*)*b$",
    "(a*)+",
    "(a+)+",
    "^(a+)+$",
    "(a?){30}a{30}",
    "(x+x+)+y",
    "^(a|b)*?c",
    "(?:){2}",
    "(?:)*",
    "()+",
    "(?:){4294967295}",
    "a{4294967295}",
    "a{0,4294967296}",
    "a{4294967296,}",
    ".",
    "^.$",
    "^..$",
    ".*",
    "^.*$",
    "(?s).",
    "(?s)^.$",
    "(?s:.)",
    "(?-s:.)",
    r"\d",
    r"\D",
    r"\w",
    r"\W",
    r"\s",
    r"\S",
    r"^\d+$",
    r"^\w+$",
    r"^\W+$",
    r"^\s+$",
    r"^\S+$",
    r"^\D+$",
    r"[\d]",
    r"[\D]",
    r"[^\d]",
    r"[^\D]",
    r"[\w\s]",
    r"[^\w\s]",
    r"^[\w.+-]+@example\.com$",
    r"^[\w-]+$",
    "[abc]",
    "[^abc]",
    "[a-c]",
    "[^a-c]",
    "[a-]",
    "[-a]",
    "[]a]",
    "[^]a]",
    "[]-a]",
    "[--a]",
    "[---]",
    "[-]",
    "[-]a]",
    "[]]",
    "[]-]",
    "[a-]]",
    "[^-]",
    "[^]-]",
    "[A-[]",
    "[a-b-c]",
    "[^\\x00-\\x{10FFFF}]",
    "(?i)[^\\x00-\\x{10FFFF}]",
    "[^\\w\\W]",
    "a[^\\d\\D]|b",
    "[\\x00-\\x{10FFFF}]",
    "\\x00",
    "[\\u{1F600}-\\U0001F64F]+",
    "[\\w-a]",
    "(?i)[[:^upper:]]",
    "(?i)[^[:^lower:]]",
    "(?i)[^[:lower:]]",
    "(?i)[[:^alpha:]k]",
    "(?i)[^\\Wk]",
    "[a-c-e]",
    "[\\]]",
    "[\\[]",
    "[\\^]",
    "[\\-]",
    "[^^]",
    "[&]",
    "[~]",
    "[a&b]",
    "[a~b]",
    "[a&&b]",
    "[a--b]",
    "[a~~b]",
    "[--]",
    "[a-z&&[^aeiou]]",
    "[[:alpha:]]",
    "[[:^alpha:]]",
    "[[:digit:][:upper:]]",
    "[[:word:]]",
    "[[:punct:]]",
    "[[:space:]]",
    "[[:foo:]]",
    "[:alpha:]",
    "[a[bc]]",
    "[a[^b]]",
    "[[a]]",
    "[[]]",
    "[a[]]",
    "[z-a]",
    "[a-a]",
    "[\\x41-\\x5A]",
    "[\\n-\\r]",
    "[\\d-z]",
    "[a-\\d]",
    "[\\w-]",
    "[\\b]",
    "[\\B]",
    "[\\@]",
    "[\\<]",
    "[\\A]",
    "[é-ü]",
    "[😀]",
    "[^😀]",
    "[",
    "[]",
    "[^]",
    "]",
    "}",
    "a]",
    "a}",
    "{",
    "a{",
    "a{1",
    "a{,2}",
    "a{ 2 }",
    "a{2,1}",
    "x{}",
    "{2}",
    "a|{2}",
    "({2})",
    "{foo}",
    "*",
    "+a",
    "?",
    "a|*",
    "(*)",
    "a**",
    "a*+",
    "a++",
    "a?+",
    "a{2}+",
    "a*??",
    "a{2}{3}",
    "^*",
    "$?",
    r"\b+",
    r"\b",
    r"\B",
    r"\bbot\b",
    r".*\bbot\b.*",
    r".*\Bbot\B.*",
    r"\Bot",
    r"\b\w",
    r"\b$",
    r"^\b",
    r"\<foo\>",
    r"\b{start}",
    r"\b{end}",
    r"\A",
    r"\z",
    r"\Afoo\z",
    r"\Z",
    "(",
    ")",
    "a)",
    "(a",
    "(?:a",
    "(a|b",
    "((a)",
    "(?i)",
    "(?i)^foo$",
    "(?i)k",
    "(?i)s",
    "(?i)σ",
    "(?i)ς",
    "(?i)ß",
    "(?i)ǅ",
    "(?i)θ",
    "(?i)i",
    "(?i)İ",
    "(?i)[a-z]+",
    "(?i)^[^a]$",
    "(?i)[k]",
    "(?i)[^k]",
    "(?i)[[:upper:]]",
    "(?i)[[:^lower:]]",
    r"(?i)\w",
    r"(?i)[\W]",
    r"(?i)[^\w]",
    "(?i)[α-ω]",
    "(?i)[\\x{100}-\\x{17F}]",
    "(?i)a(?-i)b",
    "(?i:a)b",
    "a(?i)b|c",
    "(a(?i)b)c",
    "(?i-s:.)",
    "(?is).",
    "(?m)^foo$",
    "(?m)^",
    "(?m)$",
    "(?m)^$",
    "(?m)a$",
    "(?m:^a)",
    "(?U)a+",
    "(?u)a",
    "(?-u)a",
    "(?x)a b",
    "(?R)^a$",
    "(?ii)a",
    "(?i-)a",
    "(?-)a",
    "(?)",
    "(?i)*",
    "(?i)+a",
    "a(?i)*",
    "(?P<name>a)",
    "(?<name>a)",
    "(?P<a.b[1]>x)",
    "(?P<1a>x)",
    "(?P<>x)",
    "(?P<é>x)",
    "(?<n>a)(?<n>b)",
    "(?'n'a)",
    "(?P=n)",
    "(?=a)",
    "(?!a)",
    "(?<=a)b",
    "(?<!a)b",
    "(?>a)",
    "(?#c)a",
    r"(a)\1",
    r"\0",
    r"\141",
    r"\8",
    r"\x41",
    r"\x{41}",
    r"\x{0041}",
    r"\x{000000041}",
    r"\x{1F600}",
    r"\x{110000}",
    r"\x{D800}",
    r"\x{}",
    r"\x4",
    r"\x4g",
    r"\u0041",
    r"\u{41}",
    r"\U00000041",
    r"\U{1F600}",
    r"\a",
    r"\f",
    r"\t",
    r"\n",
    r"\r",
    r"\v",
    r"\e",
    r"\h",
    r"\K",
    r"\G",
    r"\q",
    r"\pL",
    r"\p{L}",
    r"\P{L}",
    r"\.",
    r"\-",
    r"\_",
    r"\@",
    r"\ ",
    r"\#",
    r"\&",
    r"\~",
    r"\%",
    r"\=",
    r"\:",
    r"\é",
    r"\<",
    "\\",
    "a\\",
    r"^\^?$",
    r"^\${2}$",
    r"^\|{2}$",
    r"^[\^$?]+$",
    r"^\(+a+\)+$",
    r"^([+*?])+$",
    "foo|bar$",
    "^(?:foo|bar)$",
    "^(?:ab|cd){2,3}$",
    "^(a{1,2}){2}$",
    "https?://[^/]+/path",
    r"^\d{3}-\d{4}$",
    r"\w{150}",
    r"\w{200}",
    r"\w{209}",
    r"\w{210}",
    r"\W{220}",
    r"[\w\s]{150}",
    r"(?i)[\w\x{100}-\x{FFFF}]{100}",
    r"\d{250}",
    r"(?i)[^k]{200}",
    r".{250}",
    "é+",
    "😀+",
    "e\u{301}",
    "[e\u{301}]",
    "^\u{301}$",
    "中文",
    "((((((((((((((((a))))))))))))))))",
    "(((((((((((((((((a)))))))))))))))))",
];

#[test]
fn handwritten_patterns_agree_with_regex() {
    let mut stats = Stats::default();
    for p in PATTERNS {
        stats.check(p, HAYSTACKS);
    }
    stats.finish("hand-written patterns");
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const TOKENS: &[&str] = &[
    "a",
    "a",
    "b",
    "b",
    "é",
    "k",
    "K",
    "s",
    "σ",
    "ς",
    "_",
    " ",
    "-",
    "😀",
    "\u{301}",
    ".",
    "^",
    "$",
    "|",
    "|",
    "(",
    "(",
    ")",
    ")",
    "(?:",
    "(?i)",
    "(?i:",
    "(?m)",
    "(?s)",
    "(?-i)",
    "*",
    "*",
    "+",
    "+",
    "?",
    "??",
    "{2}",
    "{1,3}",
    "{0,}",
    "{2,}",
    "[",
    "[^",
    "]",
    "]",
    "-",
    "a-z",
    r"\d",
    r"\D",
    r"\w",
    r"\W",
    r"\s",
    r"\S",
    r"\b",
    r"\B",
    r"\A",
    r"\z",
    r"\n",
    r"\.",
    r"\-",
    r"\\",
    r"\x41",
    "[:alpha:]",
    "&&",
    "\\",
    "{",
    "}",
];

const HAY_CHARS: &[&str] = &[
    "a", "a", "b", "b", "é", "k", "K", "\u{212A}", "s", "S", "ſ", "σ", "Σ", "ς", "_", " ", "-",
    "\n", "😀", "\u{301}", "1", "١", "A", "z", ".", "\\",
];

#[test]
fn random_patterns_agree_with_regex() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut haystacks: Vec<String> = HAYSTACKS.iter().map(|s| s.to_string()).collect();
    for _ in 0..40 {
        let len = rng.next() % 12;
        haystacks.push((0..len).map(|_| rng.pick(HAY_CHARS)).collect());
    }
    let hay_refs: Vec<&str> = haystacks.iter().map(String::as_str).collect();
    let mut stats = Stats::default();
    for _ in 0..6000 {
        let len = 1 + rng.next() % 8;
        let pattern: String = (0..len).map(|_| rng.pick(TOKENS)).collect();
        stats.check(&pattern, &hay_refs);
    }
    stats.finish("random patterns");
}

#[test]
fn pathological_inputs_stay_within_the_step_bound() {
    let long_a = "a".repeat(2000);
    let long_x = "x".repeat(2000);
    for (pattern, hay) in [
        ("(a?){30}a{30}", long_a.as_str()),
        ("(x+x+)+y", long_x.as_str()),
        ("(a*)*b", long_a.as_str()),
        ("(a|aa)*b", long_a.as_str()),
        ("^(a+)+$", &format!("{long_a}!")),
        (r"(\w+\s?)*$", &format!("{long_a}!")),
        ("(?i)(a|A|k)*c", long_a.as_str()),
    ] {
        // The compact profile refuses patterns that need Unicode data (`\w \s`, `(?i)`).
        let ours = match Regex::<256>::new(pattern) {
            Ok(re) => re,
            Err(RegexError::Unsupported) if cfg!(feature = "compact") => continue,
            Err(e) => panic!("{pattern}: {e}"),
        };
        let (got, steps) = ours.is_match_counting(hay);
        let bound = ours.max_steps(hay.len());
        assert!(steps <= bound, "{pattern}: {steps} > {bound}");
        assert_eq!(
            got,
            regex::Regex::new(pattern).unwrap().is_match(hay),
            "{pattern}"
        );
        println!(
            "{pattern} on {} bytes: {steps} steps (bound {bound})",
            hay.len()
        );
    }
}

const GEN_LITERALS: &[&str] = &[
    "a", "b", "é", "k", "K", "s", "ſ", "σ", "Σ", "ς", "_", "-", "1", "١", " ", r"\n", "😀",
    "\u{301}", r"\.", "x",
];

const GEN_CLASS_ITEMS: &[&str] = &[
    "a-z",
    "a",
    "k",
    "é",
    "A-Z",
    "0-9",
    "α-ω",
    r"\d",
    r"\w",
    r"\W",
    r"\s",
    r"\S",
    "[:alpha:]",
    "[:^lower:]",
    "[:upper:]",
    "_",
    r"\n",
    "σ",
    "K",
    "\u{301}",
    "[ab]",
];

/// A random pattern that `regex` accepts, built from a small grammar.
fn gen_pattern(rng: &mut Rng, depth: u32) -> String {
    let choice = if depth == 0 {
        rng.next() % 4
    } else {
        rng.next() % 10
    };
    match choice {
        0 | 1 => rng.pick(GEN_LITERALS).to_string(),
        2 => rng
            .pick(&[".", r"\d", r"\D", r"\w", r"\W", r"\s", r"\S"])
            .to_string(),
        3 => {
            let mut s = String::from(if rng.next().is_multiple_of(3) {
                "[^"
            } else {
                "["
            });
            for _ in 0..1 + rng.next() % 3 {
                s.push_str(rng.pick(GEN_CLASS_ITEMS));
            }
            s.push(']');
            s
        }
        4 | 5 => (0..2 + rng.next() % 3)
            .map(|_| gen_pattern(rng, depth - 1))
            .collect(),
        6 => {
            let branches: Vec<String> = (0..2 + rng.next() % 2)
                .map(|_| gen_pattern(rng, depth - 1))
                .collect();
            format!("(?:{})", branches.join("|"))
        }
        7 => {
            let open = rng.pick(&["(", "(?:", "(?i:", "(?m:", "(?s:", "(?-i:", "(?i)(?:"]);
            format!("{open}{})", gen_pattern(rng, depth - 1))
        }
        8 => {
            let inner = gen_pattern(rng, depth - 1);
            let q = rng.pick(&["*", "+", "?", "{2}", "{0,2}", "{1,}", "{3}", "*?", "{1,3}?"]);
            format!("(?:{inner}){q}")
        }
        _ => rng
            .pick(&["^", "$", r"\b", r"\B", r"\A", r"\z"])
            .to_string(),
    }
}

#[test]
fn generated_valid_patterns_agree_with_regex() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut haystacks: Vec<String> = HAYSTACKS.iter().map(|s| s.to_string()).collect();
    for _ in 0..60 {
        let len = rng.next() % 10;
        haystacks.push((0..len).map(|_| rng.pick(HAY_CHARS)).collect());
    }
    let hay_refs: Vec<&str> = haystacks.iter().map(String::as_str).collect();
    let mut stats = Stats::default();
    // 800 patterns keep the default run quick; set REGEX_DIFF_PATTERNS for a deeper one.
    let rounds = std::env::var("REGEX_DIFF_PATTERNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(800);
    for _ in 0..rounds {
        let mut pattern = String::new();
        match rng.next() % 6 {
            0 => pattern.push_str("(?i)"),
            1 => pattern.push_str("(?m)"),
            2 => pattern.push('^'),
            _ => {}
        }
        pattern.push_str(&gen_pattern(&mut rng, 4));
        if rng.next().is_multiple_of(4) {
            pattern.push('$');
        }
        stats.check(&pattern, &hay_refs);
    }
    stats.finish("generated valid patterns");
}
