//! The flag evaluation benchmark's entry point: loads a definitions document, then evaluates
//! every flag for every distinct id through the public single-flag API
//! (`FlagTables::evaluate`), with each id's context prepared as PostHog's SDKs prepare it
//! (`distinct_id` among the person properties, `$group_key` among each group's).
//!
//! ```text
//! cargo run --release -p posthog-embedded-devtools --example bench_eval -- \
//!     --definitions FILE --context FILE [--ids N] [--repeat R]
//! ```
//!
//! The context file:
//! `{"person_properties": {...}, "groups": {...}, "group_properties": {...},
//!   "distinct_ids": {"count": N, "pattern": "bench-user-{i}"}}` (`{i}` counts from 0; `--ids`
//! overrides the count). Every id shares the properties. `devtools/examples/bench_context.json`
//! is one.
//!
//! Evaluations use one wall-clock time, taken when the run starts, so relative date filters
//! (`-30d`) resolve as PostHog's SDKs resolve them.
//!
//! Before those, two lines break the time down:
//! - `flag_ns=`: per flag, nanoseconds per evaluation over every id (median of R), as JSON;
//! - `sha1_ns=`: nanoseconds for one SHA-1 bucketing hash (`hash60`) of each flag key and id,
//!   the floor under any evaluation that reaches a rollout. A plain rollout flag computes
//!   exactly one, so `sha1_ns` over its `flag_ns` is its SHA-1 share;
//! - `load_once_us=`: the load in one pass (`load_or_clear`, as into a staging store that is
//!   swapped in on success), median of R loads, in microseconds.
//!
//! The last lines printed are, in this order:
//! - `load_us=`: the load of the document, median of R loads, in microseconds;
//! - `ns_per_eval=`: nanoseconds per evaluation, the median of R passes over every (id, flag);
//! - `evals=`: evaluations in one pass;
//! - `results=`: per flag, how many ids got `true`, `false`, each variant (`variant:<key>`) or
//!   no local answer (`inconclusive`), as one line of JSON (the same in every pass);
//! - `allocations=`: heap allocations made while evaluating, over all passes (a counting
//!   allocator; preparing each id's context, outside the timed loop, is not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use posthog_embedded::flags::hash::hash60;
use posthog_embedded::flags::{FlagTables, FlagValue};
use posthog_embedded::time::UnixMillis;
use posthog_embedded_devtools::context::OwnedContext;
use serde_json::{json, Value};

/// Counts allocations while `COUNTING` is set.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Args {
    definitions: String,
    context: String,
    ids: Option<usize>,
    repeat: usize,
}

fn args() -> Result<Args, String> {
    let mut definitions = None;
    let mut context = None;
    let mut ids = None;
    let mut repeat = 5;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--definitions" => definitions = Some(value()?),
            "--context" => context = Some(value()?),
            "--ids" => ids = Some(value()?.parse().map_err(|_| "--ids: a number")?),
            "--repeat" => {
                repeat = value()?
                    .parse()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or("--repeat: a number above 0")?;
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench_eval --definitions FILE --context FILE [--ids N] [--repeat R]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        definitions: definitions.ok_or("--definitions FILE is required")?,
        context: context.ok_or("--context FILE is required")?,
        ids,
        repeat,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn label(v: Result<FlagValue, posthog_embedded::flags::Inconclusive>) -> String {
    match v {
        Ok(FlagValue::Bool(b)) => b.to_string(),
        Ok(FlagValue::Variant(v)) => format!("variant:{v}"),
        Ok(h @ FlagValue::Holdout(_)) => format!("variant:{h}"),
        Err(_) => "inconclusive".to_owned(),
    }
}

fn run() -> Result<(), String> {
    let a = args()?;
    let doc = std::fs::read(&a.definitions).map_err(|e| format!("{}: {e}", a.definitions))?;
    let ctx: Value = serde_json::from_slice(
        &std::fs::read(&a.context).map_err(|e| format!("{}: {e}", a.context))?,
    )
    .map_err(|e| format!("{}: {e}", a.context))?;
    let ids = &ctx["distinct_ids"];
    let count = a
        .ids
        .or_else(|| ids["count"].as_u64().map(|n| n as usize))
        .ok_or("distinct_ids.count (or --ids) is required")?;
    let pattern = ids["pattern"].as_str().unwrap_or("bench-user-{i}");

    // Load: median of R loads into a fresh store of exactly the size the document needs, as a
    // device would size it.
    let need = FlagTables::requirements(&doc).map_err(|e| format!("{}: {e}", a.definitions))?;
    let mut store = FlagTables::with_capacity(need);
    let mut loads = Vec::new();
    for _ in 0..a.repeat {
        store = FlagTables::with_capacity(need);
        let t = Instant::now();
        store
            .load(&doc)
            .map_err(|e| format!("{}: {e}", a.definitions))?;
        loads.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // The same in one pass, as into a staging store (`load_or_clear`).
    let mut loads_once = Vec::new();
    for _ in 0..a.repeat {
        let mut staging = FlagTables::with_capacity(need);
        let t = Instant::now();
        staging
            .load_or_clear(&doc)
            .map_err(|e| format!("{}: {e}", a.definitions))?;
        loads_once.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let keys: Vec<String> = store.keys().map(str::to_owned).collect();

    // One context per id, as a `/flags` request body would carry it.
    let contexts = (0..count)
        .map(|i| {
            let mut body = ctx.clone();
            body["distinct_id"] = json!(pattern.replace("{i}", &i.to_string()));
            OwnedContext::from_flags_request(&body)
        })
        .collect::<Result<Vec<_>, _>>()?;

    let now = UnixMillis::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_millis() as u64,
    );
    let now = Some(now);
    let mut results: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut passes = Vec::new();
    for pass in 0..a.repeat {
        let mut nanos = 0u128;
        for c in &contexts {
            c.with_eval_context(|ec| {
                // Room for the first pass's values, made before the counted window.
                let mut values = Vec::with_capacity(if pass == 0 { keys.len() } else { 0 });
                // Timed and counted: the evaluations only.
                COUNTING.store(true, Ordering::Relaxed);
                let t = Instant::now();
                for k in &keys {
                    let v = store.evaluate(k, ec, now);
                    if pass == 0 {
                        values.push(v);
                    }
                }
                nanos += t.elapsed().as_nanos();
                COUNTING.store(false, Ordering::Relaxed);
                for (k, v) in keys.iter().zip(values) {
                    *results
                        .entry(k.clone())
                        .or_default()
                        .entry(label(v))
                        .or_default() += 1;
                }
            })?;
        }
        let evals = contexts.len() * keys.len();
        passes.push(nanos as f64 / evals.max(1) as f64);
    }
    // Per flag: every id, one flag at a time.
    let mut flag_ns = BTreeMap::new();
    for k in &keys {
        let mut runs = Vec::new();
        for _ in 0..a.repeat {
            let mut nanos = 0u128;
            for c in &contexts {
                c.with_eval_context(|ec| {
                    COUNTING.store(true, Ordering::Relaxed);
                    let t = Instant::now();
                    let v = store.evaluate(k, ec, now);
                    nanos += t.elapsed().as_nanos();
                    COUNTING.store(false, Ordering::Relaxed);
                    let _ = std::hint::black_box(v);
                })?;
            }
            runs.push(nanos as f64 / contexts.len().max(1) as f64);
        }
        flag_ns.insert(k.clone(), (median(runs) * 10.0).round() / 10.0);
    }
    // The SHA-1 floor: one bucketing hash of each key and id.
    let ids: Vec<String> = (0..count)
        .map(|i| pattern.replace("{i}", &i.to_string()))
        .collect();
    let mut sha1_runs = Vec::new();
    for _ in 0..a.repeat {
        let t = Instant::now();
        for k in &keys {
            for id in &ids {
                std::hint::black_box(hash60(std::hint::black_box(k), id, ""));
            }
        }
        sha1_runs.push(t.elapsed().as_nanos() as f64 / (keys.len() * ids.len()).max(1) as f64);
    }
    println!(
        "{} flags, {} ids, {} passes",
        keys.len(),
        contexts.len(),
        a.repeat
    );
    println!(
        "flag_ns={}",
        serde_json::to_string(&flag_ns).map_err(|e| e.to_string())?
    );
    println!("sha1_ns={:.1}", median(sha1_runs));
    println!("load_once_us={:.1}", median(loads_once));
    println!("load_us={:.1}", median(loads));
    println!("ns_per_eval={:.1}", median(passes));
    println!("evals={}", contexts.len() * keys.len());
    println!(
        "results={}",
        serde_json::to_string(&results).map_err(|e| e.to_string())?
    );
    println!("allocations={}", ALLOCATIONS.load(Ordering::Relaxed));
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("bench_eval: {e}");
        std::process::exit(2);
    }
}
