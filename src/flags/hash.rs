//! PostHog's SHA-1 bucketing, compared in integer arithmetic.
//!
//! # The reference
//!
//! posthog-python 7.91.1 (`feature_flags.py::_hash`; the server and every other SDK agree, e.g.
//! posthog-go `calculateHash`) hashes the UTF-8 string `key + separator + bucketing_value +
//! salt` with SHA-1, reads the first 15 hex digits as an integer `h` in `[0, 2^60)`, and turns it
//! into a float `hash = float(h) / float(0xFFFFFFFFFFFFFFF)` in `[0, 1]`. Then, all in IEEE
//! binary64:
//!
//! | Use | Reference test (Python) | Here |
//! |---|---|---|
//! | Rollout | excluded iff `hash > r / 100` | [`RolloutThreshold::from_percentage`] |
//! | Variant | `value_min <= hash < value_max`, `value_max = value_min + p / 100` | [`VariantBounds`] |
//! | Holdout | `q = min(max(float(e), 0.0), 100.0)`; held out iff `q == 100.0 or not hash > q / 100` | [`RolloutThreshold::from_holdout_percentage`] |
//!
//! (posthog-python `is_condition_match`, `get_matching_variant` / `variant_lookup_table` and
//! `_get_holdout_variant`.)
//!
//! This module computes `h` exactly ([`hash60`], [`holdout_hash60`]: SHA-1 fed in pieces, no
//! allocation, no float), and turns every float test into an integer comparison on `h`, decided
//! once when the definitions are loaded. Evaluation then only compares `u64`s: no FPU is needed
//! on the hot path (Cortex-M0+ has none).
//!
//! An empty bucketing value is hashed like any other (`"<key>."`), as posthog-python does:
//! `_hash` has no special case. Deciding whether an empty *device id* counts as missing is the
//! evaluator's job (posthog-python: `if not device_id` → inconclusive, `missing_context`).
//!
//! # Why the integer comparison is exactly the reference's float comparison
//!
//! Let `L = fl(0xFFFFFFFFFFFFFFF) = 2^60` (the literal rounds up to a power of two, in Python's
//! `float(...)` as in Rust's `as f64`) and `H(h) = fl(fl(h) / L)`, the reference's hash.
//!
//! 1. **`H` is non-decreasing in `h`.** Conversion of an integer to binary64 rounds to nearest,
//!    ties to even, in both CPython (`int` → `float`, also used for `int / float`) and Rust
//!    (`u64 as f64`); IEEE rounding is monotone, so `h1 <= h2` implies `fl(h1) <= fl(h2)`.
//!    Division by the positive constant `L` followed by rounding is monotone too. (It is even
//!    exact, since `L` is a power of two and `fl(h) >= 1` or `= 0`, but monotonicity is all the
//!    argument needs.)
//! 2. **Each test is a prefix or a suffix of `[0, 2^60)`.** For any binary64 `t` (including
//!    ±0, ±∞ and NaN), `{h : !(H(h) > t)}` and `{h : H(h) < t}` are prefixes (if `h` is in,
//!    every smaller `h` is in), and `{h : H(h) >= t}` is a suffix, because `H` is monotone and
//!    a comparison with NaN is uniformly false. So each test equals `h < n` (or `h >= n`) for a
//!    single integer `n` in `[0, 2^60]`: the size of the prefix (or of the complement of the
//!    suffix).
//! 3. **`n` is found with the reference's own operations.** At load time a binary search over
//!    `[0, 2^60]` (61 steps) evaluates the predicate with exactly the reference's binary64
//!    expression (`(h as f64) / 1152921504606846975.0`, compared with `t`), and keeps the
//!    invariant "predicate true below `lo`, false from `hi`". Because of 2, the search ends at
//!    the one boundary, so `h < n` agrees with the float test for **every** `h`, not only for
//!    the probed ones. Two probes first narrow `[lo, hi)` to a few hundred hashes around
//!    `t * 2^60`, where the boundary lies; each probe is the same predicate and may only
//!    tighten the invariant, so the narrowing changes the cost (about 11 steps instead of 61),
//!    never the result.
//! 4. **The thresholds `t` are computed as the reference computes them.** `t = r / 100.0`
//!    (Python `float / int` and `int / int` are both correctly rounded; for integers below 2^53
//!    that equals Rust's `(r as f64) / 100.0`). The variant bounds are the running sums
//!    `value_max = value_min + p / 100.0` in variant order, starting from `0.0`, exactly like
//!    `variant_lookup_table` (Python's `0 + x` is `0.0 + x`). The holdout clamp reproduces
//!    Python's `min`/`max`, which keep the first argument unless the second compares strictly
//!    greater/smaller, so a NaN survives the clamp.
//!
//! The only inputs this cannot reproduce are JSON *integers* of magnitude 2^53 or more used as
//! percentages: Python divides the exact integer, while this API takes an `f64`. For a rollout
//! that is harmless (any `|r| >= 2^53` is "everyone" or "nobody" either way); for variants it
//! could only matter if huge percentages cancelled each other out in the running sum.
//!
//! Special values follow the reference too: `r = 100` includes everyone (`H <= 1.0`), `r = 0`
//! only `h = 0`, `r > 100` everyone, `r < 0` nobody, a NaN rollout *everyone* (Python's
//! `hash > nan` is false), a NaN holdout everyone held out, and a NaN variant percentage makes
//! that variant and all later ones unreachable.

use sha1_smol::Sha1;

/// `0xFFFFFFFFFFFFFFF` (2^60 − 1), PostHog's `LONG_SCALE`, the largest value of a 60-bit hash.
pub const LONG_SCALE: u64 = 0x0FFF_FFFF_FFFF_FFFF;

/// The number of distinct 60-bit hash values, 2^60: every hash `h` satisfies `h < HASH_SPACE`.
pub const HASH_SPACE: u64 = 1 << 60;

/// The salt of the variant hash, appended with no separator: the string hashed is
/// `"<flag key>.<bucketing value>variant"` (posthog-python `get_matching_variant`).
pub const VARIANT_SALT: &str = "variant";

/// `LONG_SCALE` as the reference's float (`float(0xFFFFFFFFFFFFFFF)`, which is 2^60).
const LONG_SCALE_F64: f64 = LONG_SCALE as f64;

/// The 60-bit hash of `key + separator + bucketing_value + salt`: the first 15 hex digits of its
/// SHA-1 digest, as an integer below [`HASH_SPACE`].
#[must_use]
pub fn hash60_with_separator(key: &str, separator: &str, bucketing_value: &str, salt: &str) -> u64 {
    hash60_bytes(key.as_bytes(), separator, bucketing_value, salt)
}

/// [`hash60_with_separator`] for a key given as bytes (the store's, never re-checked as UTF-8).
pub(crate) fn hash60_bytes(key: &[u8], separator: &str, bucketing_value: &str, salt: &str) -> u64 {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(separator.as_bytes());
    sha.update(bucketing_value.as_bytes());
    sha.update(salt.as_bytes());
    let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = sha.digest().bytes();
    u64::from_be_bytes([b0, b1, b2, b3, b4, b5, b6, b7]) >> 4
}

/// The 60-bit hash PostHog uses for a flag: `"<key>.<bucketing_value><salt>"`.
///
/// Use an empty `salt` for the rollout check and [`VARIANT_SALT`] to choose a variant.
///
/// ```
/// use posthog_embedded::flags::hash::{hash60, RolloutThreshold};
/// // posthog-go TestSimpleFlagCalculation: hash("a", "b") lies in (0.40, 0.42].
/// let h = hash60("a", "b", "");
/// assert!(RolloutThreshold::from_percentage(42.0).contains(h));
/// assert!(!RolloutThreshold::from_percentage(40.0).contains(h));
/// ```
#[must_use]
pub fn hash60(key: &str, bucketing_value: &str, salt: &str) -> u64 {
    hash60_with_separator(key, ".", bucketing_value, salt)
}

/// The 60-bit holdout hash: `"holdout-<bucketing_value>"` (a dash, not a dot; posthog-python
/// `_holdout_hash`).
#[must_use]
pub fn holdout_hash60(bucketing_value: &str) -> u64 {
    hash60_with_separator("holdout", "-", bucketing_value, "")
}

/// The reference's float hash of `h`: `float(h) / float(0xFFFFFFFFFFFFFFF)`, in `[0, 1]`.
///
/// For diagnostics, tests and load-time threshold computation only; evaluation never needs it.
#[must_use]
pub fn reference_hash(h: u64) -> f64 {
    // `as` rounds to nearest, ties to even, exactly like CPython's int -> float conversion.
    (h as f64) / LONG_SCALE_F64
}

/// The size of the prefix `{h in [0, 2^60) : pred(reference_hash(h))}`, where `pred` must be
/// monotone (true on a prefix of the hash values). See the module docs for why this is exact.
///
/// `guess` is the float the predicate compares with: [`lattice_boundary`] walks the hash
/// values next to it, which decides every percentage a user can type in about 4 float
/// comparisons. A guess the walk cannot use (NaN, infinite, far away) costs the full binary
/// search (61 float comparisons), never a different answer.
// Never inlined: one copy serves every threshold kind (it runs at load time only).
#[inline(never)]
fn prefix_len(guess: f64, pred: &dyn Fn(f64) -> bool) -> u64 {
    lattice_boundary(guess, pred).unwrap_or_else(|| search(0, HASH_SPACE, pred))
}

/// The boundary found by walking the hash values next to `guess` (about 4 float
/// comparisons), or `None` to leave it to the search.
///
/// A hash value is `fl(h) * 2^-60` (`LONG_SCALE` rounds to 2^60, so the division only
/// scales). Above 2^-7 (where `fl(h)` starts to round) every double up to 1 is a hash value,
/// so the first one failing `pred` is found with `next_up`/`next_down` from `guess`, and the
/// answer is the smallest `h` that rounds to it. Below 2^-7 the hash values are the exact
/// `k * 2^-60` and the answer is next to `guess * 2^60`. Either way a candidate `n` is
/// returned only once `pred` holds at `n - 1` and fails at `n`, which for a monotone `pred`
/// *is* the boundary: the walk can be wrong only by giving up.
fn lattice_boundary(guess: f64, pred: &dyn Fn(f64) -> bool) -> Option<u64> {
    let proven = |n: u64| {
        (n == 0 || pred(reference_hash(n - 1))) && (n >= HASH_SPACE || !pred(reference_hash(n)))
    };
    const SMALL: f64 = 1.0 / 128.0; // 2^-7
    if !(0.0..=1.0).contains(&guess) {
        return None;
    }
    if guess < SMALL {
        // Exact: guess * 2^60 < 2^53.
        let k = (guess * HASH_SPACE as f64) as u64;
        return [k, k + 1].into_iter().find(|&n| proven(n));
    }
    // The first hash value (a double in [2^-7, 1]) at which `pred` fails.
    let mut x = guess;
    if pred(x) {
        let mut steps = 0;
        while pred(x) {
            if x >= 1.0 {
                // 1 is the largest hash value: everyone passes.
                return proven(HASH_SPACE).then_some(HASH_SPACE);
            }
            if steps == 4 {
                return None;
            }
            x = x.next_up();
            steps += 1;
        }
    } else {
        for _ in 0..4 {
            let below = x.next_down();
            if below < SMALL || pred(below) {
                break;
            }
            x = below;
        }
    }
    let n = first_rounding_to(x * HASH_SPACE as f64);
    proven(n).then_some(n)
}

/// The smallest `h` whose `h as f64` is at least `v`, for an integral `v` in `[2^53, 2^60]`:
/// the midpoint between `v` and the double below it, plus one unless the tie rounds up to
/// `v` (ties go to the even significand).
fn first_rounding_to(v: f64) -> u64 {
    let v = v as u64;
    let exp = 63 - v.leading_zeros(); // v in [2^exp, 2^(exp + 1))
    let ulp = 1u64 << exp.saturating_sub(52);
    let below = if v.is_power_of_two() { ulp / 2 } else { ulp };
    let mid = v - below / 2;
    if below == 1 {
        // Below 2^53 no rounding happens (not reached from `lattice_boundary`).
        return v;
    }
    let even = (v / ulp) & 1 == 0;
    if even {
        mid
    } else {
        mid + 1
    }
}

/// The binary search behind [`prefix_len`]: `pred` holds for every `h < lo` and fails for every
/// `h >= hi`.
fn search(mut lo: u64, mut hi: u64, pred: &dyn Fn(f64) -> bool) -> u64 {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(reference_hash(mid)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// An integer rollout (or holdout) test: `h` is included iff `h < limit`.
///
/// Built once from the percentage at load time with the reference's float arithmetic; the
/// evaluator stores only the `u64` limit (see [`RolloutThreshold::limit`] and
/// [`RolloutThreshold::from_limit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RolloutThreshold {
    limit: u64,
}

impl RolloutThreshold {
    /// Includes every hash (rollout 100 %, or no rollout percentage at all).
    pub const EVERYONE: Self = Self { limit: HASH_SPACE };
    /// Includes no hash.
    pub const NOBODY: Self = Self { limit: 0 };

    /// The rollout test of a condition with `rollout_percentage` `percentage` (posthog-python
    /// `is_condition_match`): `h` is included iff the reference's
    /// `not (hash > percentage / 100)`.
    ///
    /// Any `f64` is accepted and behaves as in posthog-python: `100` or more includes everyone,
    /// `0` includes only `h == 0`, a negative value nobody, fractions like `0.1` or `33.333` are
    /// exact, and NaN includes everyone. Runs a few float comparisons: call it at load time.
    #[must_use]
    // `!(hash > t)` on purpose: it is the reference's test, NaN included.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn from_percentage(percentage: f64) -> Self {
        let t = percentage / 100.0;
        Self {
            limit: prefix_len(t, &|hash| !(hash > t)),
        }
    }

    /// The holdout test for `filters.holdout.exclusion_percentage` (posthog-python
    /// `_get_holdout_variant`, checked before any condition): `h` (from [`holdout_hash60`]) is
    /// held out iff the reference holds it out.
    ///
    /// posthog-python clamps with `min(max(float(p), 0.0), 100.0)`, holds out everyone at exactly
    /// 100, and otherwise holds out iff `not (hash > p / 100)`. A NaN survives Python's clamp and
    /// holds out everyone; the evaluator decides separately whether a holdout is configured
    /// (both `id` and `exclusion_percentage` present and not null).
    #[must_use]
    pub fn from_holdout_percentage(exclusion_percentage: f64) -> Self {
        // Python's max(a, b) keeps a unless b > a; min(a, b) keeps a unless b < a.
        let p = exclusion_percentage;
        let p = if 0.0 > p { 0.0 } else { p };
        let p = if 100.0 < p { 100.0 } else { p };
        if p == 100.0 {
            return Self::EVERYONE;
        }
        Self::from_percentage(p)
    }

    /// Rebuilds a threshold from a stored [`limit`](Self::limit); values above 2^60 mean
    /// "everyone".
    #[must_use]
    pub const fn from_limit(limit: u64) -> Self {
        Self {
            limit: if limit > HASH_SPACE {
                HASH_SPACE
            } else {
                limit
            },
        }
    }

    /// The number of included hash values: `h` is included iff `h < limit`. At most 2^60.
    #[must_use]
    pub const fn limit(self) -> u64 {
        self.limit
    }

    /// Whether the 60-bit hash `h` is included. Integer-only.
    #[must_use]
    pub const fn contains(self, h: u64) -> bool {
        h < self.limit
    }
}

/// The integer range of one variant: `h` selects it iff `start <= h < end` (and no earlier
/// variant matched; the reference returns the first variant whose range contains the hash).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VariantRange {
    /// Smallest hash for which the reference's `hash >= value_min` holds (2^60 if none).
    pub start: u64,
    /// Number of hashes for which the reference's `hash < value_max` holds.
    pub end: u64,
}

impl VariantRange {
    /// Whether the 60-bit variant hash `h` (from [`hash60`] with [`VARIANT_SALT`]) lies in this
    /// variant's range. Integer-only. An empty range (`start >= end`) contains nothing.
    #[must_use]
    pub const fn contains(self, h: u64) -> bool {
        self.start <= h && h < self.end
    }
}

/// Builds the integer [`VariantRange`]s of a multivariate flag, one variant at a time, in the
/// order of `filters.multivariate.variants` (posthog-python `variant_lookup_table`).
///
/// ```
/// use posthog_embedded::flags::hash::{hash60, VariantBounds, VARIANT_SALT};
/// let mut bounds = VariantBounds::new();
/// let ranges = [50.0, 20.0, 20.0, 5.0, 5.0].map(|p| bounds.push(p));
/// let h = hash60("multivariate-flag", "distinct_id_0", VARIANT_SALT);
/// // The first range containing h wins; none (percentages under 100) means the value `true`.
/// assert_eq!(ranges.iter().position(|r| r.contains(h)), Some(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VariantBounds {
    value_min: f64,
}

impl Default for VariantBounds {
    fn default() -> Self {
        Self::new()
    }
}

impl VariantBounds {
    /// Starts a table at `value_min = 0`.
    #[must_use]
    pub const fn new() -> Self {
        Self { value_min: 0.0 }
    }

    /// The range of the next variant, whose `rollout_percentage` is `percentage`.
    ///
    /// Computes `value_max = value_min + percentage / 100` in binary64 exactly as the reference
    /// does, then the integer bounds (a few float comparisons each: call it at load time).
    // `!(hash >= value_min)` on purpose: the exact complement of the reference's test, NaN
    // included.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn push(&mut self, percentage: f64) -> VariantRange {
        let value_min = self.value_min;
        let value_max = value_min + percentage / 100.0;
        self.value_min = value_max;
        VariantRange {
            // The complement of the suffix {hash >= value_min} is a prefix.
            start: prefix_len(value_min, &|hash| !(hash >= value_min)),
            end: prefix_len(value_max, &|hash| hash < value_max),
        }
    }
}

/// The ranges of variants with the given percentages, in order (see [`VariantBounds`]).
pub fn variant_ranges<I>(percentages: I) -> impl Iterator<Item = VariantRange>
where
    I: IntoIterator<Item = f64>,
{
    let mut bounds = VariantBounds::new();
    percentages.into_iter().map(move |p| bounds.push(p))
}

#[cfg(test)]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // the reference's float tests, written as it writes them
mod tests {
    use super::*;
    use std::vec::Vec;

    /// Tiny deterministic generator (SplitMix64) so the property tests need no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn hash(&mut self) -> u64 {
            self.next() >> 4
        }
    }

    fn tricky_percentages() -> Vec<f64> {
        let mut v = std::vec![
            0.0,
            -0.0,
            100.0,
            45.0,
            55.0,
            50.0,
            0.1,
            0.1 + 0.2,
            33.333,
            33.333_333_333_333_336,
            66.666_666_666_666_67,
            29.000_000_000_1,
            28.999_999_999_999_996,
            1e-300,
            -1e-300,
            f64::MIN_POSITIVE,
            5e-324,
            1e-15,
            99.999_999_999_999_99,
            100.000_000_000_000_01,
            150.0,
            -5.0,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            12.5,
            87.5,
            0.000_1,
            7.0 / 3.0,
        ];
        let mut rng = Rng(7);
        for _ in 0..200 {
            // Random percentages in [0, 100] with full mantissas, and short decimals.
            v.push((rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 100.0);
            v.push((rng.next() % 100_001) as f64 / 1000.0);
        }
        v
    }

    /// Hashes near every boundary of `t`, plus random ones.
    fn probe_hashes(rng: &mut Rng, limit: u64) -> Vec<u64> {
        let mut v = std::vec![0, 1, 2, LONG_SCALE, LONG_SCALE - 1, HASH_SPACE / 2];
        for d in 0..=4u64 {
            v.push(limit.saturating_sub(d).min(LONG_SCALE));
            v.push(limit.saturating_add(d).min(LONG_SCALE));
        }
        for _ in 0..2000 {
            v.push(rng.hash());
        }
        // Near the boundary at a few scales (float spacing near 1 is 2^8 hash units).
        for _ in 0..200 {
            let off = rng.next() % 4096;
            v.push(limit.saturating_sub(off).min(LONG_SCALE));
            v.push(limit.saturating_add(off).min(LONG_SCALE));
        }
        v
    }

    #[test]
    fn rollout_integer_test_equals_float_test() {
        let mut rng = Rng(1);
        for p in tricky_percentages() {
            let t = RolloutThreshold::from_percentage(p);
            for h in probe_hashes(&mut rng, t.limit()) {
                let float = !(reference_hash(h) > p / 100.0);
                assert_eq!(t.contains(h), float, "p={p:e} h={h}");
            }
        }
    }

    #[test]
    fn holdout_integer_test_equals_float_test() {
        let mut rng = Rng(2);
        for p in tricky_percentages() {
            let t = RolloutThreshold::from_holdout_percentage(p);
            let q = if 0.0 > p { 0.0 } else { p };
            let q = if 100.0 < q { 100.0 } else { q };
            for h in probe_hashes(&mut rng, t.limit()) {
                let float = q == 100.0 || !(reference_hash(h) > q / 100.0);
                assert_eq!(t.contains(h), float, "p={p:e} h={h}");
            }
        }
        assert_eq!(
            RolloutThreshold::from_holdout_percentage(f64::NAN),
            RolloutThreshold::EVERYONE
        );
        assert_eq!(
            RolloutThreshold::from_holdout_percentage(-3.0),
            RolloutThreshold::from_percentage(0.0)
        );
    }

    #[test]
    fn variant_integer_ranges_equal_float_ranges() {
        let mut rng = Rng(3);
        let ps = tricky_percentages();
        let mut tables: Vec<Vec<f64>> = std::vec![
            std::vec![50.0, 20.0, 20.0, 5.0, 5.0],
            std::vec![33.333, 33.333, 33.334],
            std::vec![10.0; 10],
            std::vec![0.1, 0.2, 99.7],
            std::vec![50.0, -20.0, 70.0],
            std::vec![30.0, f64::NAN, 70.0],
            std::vec![],
        ];
        for chunk in ps.chunks(5) {
            tables.push(chunk.to_vec());
        }
        for table in tables {
            let ranges: Vec<VariantRange> = variant_ranges(table.iter().copied()).collect();
            let mut mins = Vec::new();
            let mut maxs = Vec::new();
            let mut value_min = 0.0;
            for p in &table {
                let value_max = value_min + p / 100.0;
                mins.push(value_min);
                maxs.push(value_max);
                value_min = value_max;
            }
            let mut hs = Vec::new();
            for r in &ranges {
                hs.extend(probe_hashes(&mut rng, r.start));
                hs.extend(probe_hashes(&mut rng, r.end));
            }
            hs.extend(probe_hashes(&mut rng, 0));
            for h in hs {
                let x = reference_hash(h);
                let float = (0..table.len()).find(|&i| x >= mins[i] && x < maxs[i]);
                let int = ranges.iter().position(|r| r.contains(h));
                assert_eq!(int, float, "table={table:?} h={h}");
            }
        }
    }

    /// The plain 61-step search from `[0, 2^60)`, which the guessed window must always match.
    fn prefix_len_unguided(pred: impl Fn(f64) -> bool) -> u64 {
        search(0, HASH_SPACE, &pred)
    }

    /// The three comparisons thresholds are built from, against `t`: a rollout's
    /// `!(hash > t)`, a variant's lower bound `!(hash >= t)` and its upper bound `hash < t`.
    type Predicate = std::boxed::Box<dyn Fn(f64) -> bool>;

    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    fn predicates(t: f64) -> [(&'static str, Predicate); 3] {
        [
            ("le", std::boxed::Box::new(move |x| !(x > t))),
            ("ge", std::boxed::Box::new(move |x| !(x >= t))),
            ("lt", std::boxed::Box::new(move |x| x < t)),
        ]
    }

    #[test]
    fn the_walk_decides_every_three_decimal_percentage() {
        // The fast path answers on its own (no search) for every percentage a user can type,
        // and its answer is the search's.
        for k in 0..=100_000u64 {
            let t = k as f64 / 100_000.0;
            for (name, pred) in predicates(t) {
                assert_eq!(
                    lattice_boundary(t, &pred),
                    Some(prefix_len_unguided(&pred)),
                    "t={t:e} {name}"
                );
            }
        }
    }

    #[test]
    fn the_guess_never_changes_the_boundary() {
        let mut ts: Vec<f64> = tricky_percentages().iter().map(|p| p / 100.0).collect();
        // Every percentage with three decimals, and the floats either side of each.
        for k in 0..=100_000u64 {
            let t = k as f64 / 100_000.0;
            ts.extend([t, f64::from_bits(t.to_bits() + 1)]);
            if t > 0.0 {
                ts.push(f64::from_bits(t.to_bits() - 1));
            }
        }
        // Boundaries at exact float ties, where rounding to even decides.
        for e in 1..=60 {
            let base = 1u64 << (60 - e);
            ts.extend([
                reference_hash(base),
                reference_hash(base + 64),
                reference_hash(base - 1),
            ]);
        }
        for t in ts {
            for (name, pred) in predicates(t) {
                assert_eq!(
                    prefix_len(t, &pred),
                    prefix_len_unguided(&pred),
                    "t={t:e} {name}"
                );
            }
        }
        // A wrong guess costs time, never the answer.
        for (guess, t) in [
            (f64::NAN, 0.3),
            (5.0, 0.3),
            (-1.0, 0.7),
            (0.31, 0.3),
            (0.3, 0.0),
        ] {
            let pred = |x: f64| !(x > t);
            assert_eq!(
                prefix_len(guess, &pred),
                prefix_len_unguided(pred),
                "{guess} {t}"
            );
        }
    }

    #[test]
    fn special_thresholds() {
        assert_eq!(
            RolloutThreshold::from_percentage(100.0),
            RolloutThreshold::EVERYONE
        );
        assert_eq!(
            RolloutThreshold::from_percentage(150.0),
            RolloutThreshold::EVERYONE
        );
        assert_eq!(
            RolloutThreshold::from_percentage(f64::NAN),
            RolloutThreshold::EVERYONE
        );
        assert_eq!(RolloutThreshold::from_percentage(0.0).limit(), 1);
        assert_eq!(RolloutThreshold::from_percentage(-0.0).limit(), 1);
        assert_eq!(
            RolloutThreshold::from_percentage(-5.0),
            RolloutThreshold::NOBODY
        );
        assert_eq!(
            RolloutThreshold::from_percentage(f64::NEG_INFINITY),
            RolloutThreshold::NOBODY
        );
        // 1e-300 % is below the smallest non-zero hash (2^-60): only h == 0.
        assert_eq!(RolloutThreshold::from_percentage(1e-300).limit(), 1);
        assert!(RolloutThreshold::EVERYONE.contains(LONG_SCALE));
        assert!(!RolloutThreshold::NOBODY.contains(0));
        assert_eq!(
            RolloutThreshold::from_limit(u64::MAX),
            RolloutThreshold::EVERYONE
        );
        // 50 %: the hashes whose float is <= 0.5. From 2^59 up, floats are 128 apart, and
        // 2^59 + 64 is a tie that rounds to the even 2^59, so h <= 2^59 + 64.
        assert_eq!(
            RolloutThreshold::from_percentage(50.0).limit(),
            (1 << 59) + 65
        );
    }

    #[test]
    fn sha1_pieces_and_separators() {
        // Node crypto.spec.ts: sha1("some-flag.some_distinct_id") = e4ce124e800a818c6...
        assert_eq!(
            hash60("some-flag", "some_distinct_id", ""),
            0xe4ce124e800a818
        );
        assert_eq!(
            holdout_hash60("user_1"),
            hash60_with_separator("holdout-user_1", "", "", "")
        );
        // An empty bucketing value hashes "<key>.".
        assert_eq!(hash60("k", "", ""), hash60_with_separator("k.", "", "", ""));
        assert!(hash60("k", "x", VARIANT_SALT) < HASH_SPACE);
    }
}
