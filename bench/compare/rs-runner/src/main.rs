//! posthog-rs runner of the side-by-side flag benchmark (see `../README.md`).
//!
//! ```text
//! posthog-rs-bench-runner --definitions FILE --context FILE [--ids N] [--repeat R]
//! ```
//!
//! Same CLI and the same last lines as our `bench_eval` (`devtools/examples/bench_eval.rs`):
//! `load_us=`, `ns_per_eval=`, `evals=`, `results=`.
//!
//! - Load (bytes -> ready to evaluate): `serde_json::from_slice::<LocalEvaluationResponse>`
//!   then `FlagCache::update` on a fresh cache, which is what posthog-rs's definitions poller
//!   does with a 200 response. Median of R.
//! - Evaluation: `LocalEvaluator::evaluate_flag`, the public local single-flag API with cohort
//!   and dependency support (what `Client::get_feature_flag` calls before any remote fallback).
//!   posthog-rs's client adds `distinct_id` to the person properties itself but not
//!   `$group_key`; here both are added, once per id and outside the timed loop, so that all
//!   four runners see the same properties. Median of R passes.
//! - No network: no client, no poller, no events.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use posthog_rs::{FlagCache, FlagValue, LocalEvaluationResponse, LocalEvaluator};
use serde_json::Value;

type Props = HashMap<String, Value>;

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
                println!("usage: posthog-rs-bench-runner --definitions FILE --context FILE [--ids N] [--repeat R]");
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

fn label(v: Result<Option<FlagValue>, posthog_rs::InconclusiveMatchError>) -> String {
    match v {
        Ok(Some(FlagValue::Boolean(b))) => b.to_string(),
        Ok(Some(FlagValue::String(s))) => format!("variant:{s}"),
        // Not in the definitions, or no local answer: both leave the flag to the server.
        Ok(None) | Err(_) => "inconclusive".to_owned(),
    }
}

fn object(v: &Value, name: &str) -> Result<serde_json::Map<String, Value>, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(Default::default()),
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(_) => Err(format!("`{name}` is not an object")),
    }
}

/// One id's evaluation inputs, prepared as PostHog's SDKs prepare them.
struct Prepared {
    distinct_id: String,
    person: Props,
    groups: HashMap<String, String>,
    group_properties: HashMap<String, Props>,
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

    // Load: median of R loads into a fresh cache.
    let mut cache = FlagCache::new();
    let mut loads = Vec::new();
    for _ in 0..a.repeat {
        cache = FlagCache::new();
        let t = Instant::now();
        let response: LocalEvaluationResponse =
            serde_json::from_slice(&doc).map_err(|e| format!("{}: {e}", a.definitions))?;
        cache.update(response);
        loads.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // Document order, as the other runners iterate.
    let doc_value: Value =
        serde_json::from_slice(&doc).map_err(|e| format!("{}: {e}", a.definitions))?;
    let keys: Vec<String> = doc_value["flags"]
        .as_array()
        .ok_or("`flags` is not an array")?
        .iter()
        .filter_map(|f| f["key"].as_str().map(str::to_owned))
        .collect();
    let evaluator = LocalEvaluator::new(cache);

    let person = object(&ctx, "person_properties")?;
    let groups: HashMap<String, String> = object(&ctx, "groups")?
        .into_iter()
        .map(|(t, k)| {
            let key = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (t, key)
        })
        .collect();
    let all_group_props = object(&ctx, "group_properties")?;
    let group_properties: HashMap<String, Props> = groups
        .iter()
        .map(|(t, k)| {
            let mut props: Props = all_group_props
                .get(t)
                .and_then(Value::as_object)
                .map(|m| m.clone().into_iter().collect())
                .unwrap_or_default();
            props
                .entry("$group_key".to_owned())
                .or_insert_with(|| Value::from(k.as_str()));
            (t.clone(), props)
        })
        .collect();
    let prepared: Vec<Prepared> = (0..count)
        .map(|i| {
            let distinct_id = pattern.replace("{i}", &i.to_string());
            let mut person: Props = person.clone().into_iter().collect();
            person
                .entry("distinct_id".to_owned())
                .or_insert_with(|| Value::from(distinct_id.as_str()));
            Prepared {
                distinct_id,
                person,
                groups: groups.clone(),
                group_properties: group_properties.clone(),
            }
        })
        .collect();

    let mut results: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut passes = Vec::new();
    for pass in 0..a.repeat {
        let mut nanos = 0u128;
        for p in &prepared {
            let mut values = Vec::with_capacity(if pass == 0 { keys.len() } else { 0 });
            let t = Instant::now();
            for k in &keys {
                let v = evaluator.evaluate_flag(
                    k,
                    &p.distinct_id,
                    &p.person,
                    &p.groups,
                    &p.group_properties,
                );
                if pass == 0 {
                    values.push(v);
                }
            }
            nanos += t.elapsed().as_nanos();
            for (k, v) in keys.iter().zip(values) {
                *results
                    .entry(k.clone())
                    .or_default()
                    .entry(label(v))
                    .or_default() += 1;
            }
        }
        passes.push(nanos as f64 / (prepared.len() * keys.len()).max(1) as f64);
    }
    println!(
        "posthog-rs 0.30.0: {} flags, {} ids, {} passes",
        keys.len(),
        prepared.len(),
        a.repeat
    );
    println!("load_us={:.1}", median(loads));
    println!("ns_per_eval={:.1}", median(passes));
    println!("evals={}", prepared.len() * keys.len());
    println!(
        "results={}",
        serde_json::to_string(&results).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("posthog-rs-bench-runner: {e}");
        std::process::exit(2);
    }
}
