//! The `bench_eval` example's interface: its last lines, in order, and results that match the
//! evaluator's own answers for every (id, flag).

use std::collections::BTreeMap;
use std::process::Command;

use posthog_embedded::flags::{FlagTables, FlagValue, Requirements};
use posthog_embedded_devtools::context::OwnedContext;
use serde_json::{json, Value};

const DEFINITIONS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/data/sample_definitions.json"
);

fn binary() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe
        .parent()?
        .parent()?
        .join("examples")
        .join(format!("bench_eval{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Some(bin)
    } else {
        eprintln!(
            "SKIPPED: {} not built (`cargo test` builds it)",
            bin.display()
        );
        None
    }
}

#[test]
fn prints_its_figures_last_and_results_match_the_evaluator() {
    let Some(bin) = binary() else { return };
    let context = json!({
        "person_properties": {"firmware_version": "1.4.2", "region": "eu-west"},
        "groups": {"fleet": "eu-cold"},
        "group_properties": {},
        "distinct_ids": {"count": 1000, "pattern": "bench-user-{i}"}
    });
    let dir = std::env::temp_dir().join(format!("bench-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ctx_file = dir.join("context.json");
    std::fs::write(&ctx_file, context.to_string()).unwrap();
    let out = Command::new(bin)
        .args(["--definitions", DEFINITIONS, "--context"])
        .arg(&ctx_file)
        .args(["--ids", "30", "--repeat", "2"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last: Vec<&str> = text.lines().rev().take(5).collect();
    let keys: Vec<&str> = last
        .iter()
        .rev()
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["load_us", "ns_per_eval", "evals", "results", "allocations"]
    );
    let field = |k: &str| {
        last.iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("allocations"), "0", "evaluation allocates nothing");
    assert!(field("load_us").parse::<f64>().unwrap() > 0.0);
    assert!(field("ns_per_eval").parse::<f64>().unwrap() > 0.0);
    assert_eq!(
        field("evals"),
        "600",
        "30 ids (--ids wins over the file) x 20 flags"
    );
    // The breakdown before them: every flag's time, and the SHA-1 floor.
    let line = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= line"))
    };
    let per_flag: BTreeMap<String, f64> = serde_json::from_str(line("flag_ns")).unwrap();
    assert_eq!(per_flag.len(), 20);
    assert!(per_flag.values().all(|ns| *ns > 0.0), "{per_flag:?}");
    assert!(line("sha1_ns").parse::<f64>().unwrap() > 0.0);
    assert!(line("load_once_us").parse::<f64>().unwrap() > 0.0);

    // The same counts, from the evaluator directly.
    let mut store = FlagTables::with_capacity(Requirements {
        flags: 64,
        nodes: 1024,
        bytes: 1 << 16,
    });
    store.load(&std::fs::read(DEFINITIONS).unwrap()).unwrap();
    // The benchmark evaluates at the wall clock, like PostHog's SDKs.
    let now = Some(posthog_embedded::UnixMillis::from_millis(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    ));
    let mut want: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for i in 0..30 {
        let mut body = context.clone();
        body["distinct_id"] = json!(format!("bench-user-{i}"));
        let ctx = OwnedContext::from_flags_request(&body).unwrap();
        ctx.with_eval_context(|c| {
            for k in store.keys() {
                let label = match store.evaluate(k, c, now) {
                    Ok(FlagValue::Bool(b)) => b.to_string(),
                    Ok(v) => format!("variant:{v}"),
                    Err(_) => "inconclusive".to_owned(),
                };
                *want
                    .entry(k.to_owned())
                    .or_default()
                    .entry(label)
                    .or_default() += 1;
            }
        })
        .unwrap();
    }
    let got: Value = serde_json::from_str(&field("results")).unwrap();
    assert_eq!(got, serde_json::to_value(&want).unwrap());
}
