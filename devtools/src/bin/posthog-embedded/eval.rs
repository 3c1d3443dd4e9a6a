//! `eval` and `check`: flag definitions as the device sees them.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Args;
use posthog_embedded::adapters::std::{StdFlagStore, STD_CAPACITIES};
use posthog_embedded::flags::{Finding, Inconclusive, PropertyScope, Reason, Requirements};
use posthog_embedded::UnixMillis;
use posthog_embedded_devtools::context::{parse_property_arg, OwnedContext};
use posthog_embedded_devtools::definitions::{Definitions, DefinitionsError, FlagOutcome};
use serde_json::{json, Map, Value};

use crate::{DefinitionsArg, Failure, Outcome};

#[derive(Args, Debug)]
pub(crate) struct EvalArgs {
    #[command(flatten)]
    defs: DefinitionsArg,
    /// The device's distinct id (its bucketing value).
    #[arg(long, value_name = "ID")]
    distinct_id: String,
    /// A person property: key=text (always a string) or key:=json (a number, bool, ...).
    #[arg(long = "prop", value_name = "KEY=VALUE")]
    props: Vec<String>,
    /// A group the device belongs to: type=key.
    #[arg(long = "group", value_name = "TYPE=KEY")]
    groups: Vec<String>,
    /// A group property: type:key=text or type:key:=json.
    #[arg(long = "group-prop", value_name = "TYPE:KEY=VALUE")]
    group_props: Vec<String>,
    /// The device id, for flags bucketed by $device_id.
    #[arg(long, value_name = "ID")]
    device_id: Option<String>,
    /// Evaluate only this flag (repeatable); default: every flag.
    #[arg(long = "flag", value_name = "KEY")]
    flags: Vec<String>,
    /// Wall-clock time for relative date filters (ISO 8601); default: now.
    #[arg(long, value_name = "TIME", conflicts_with = "no_wall_clock")]
    now: Option<String>,
    /// Evaluate as a device without a wall clock (relative date filters are inconclusive).
    #[arg(long)]
    no_wall_clock: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    defs: DefinitionsArg,
    /// The device's flag-store capacities `FlagStore<FLAGS, NODES, BYTES>`: exit 1 if the
    /// definitions do not fit.
    #[arg(long, value_name = "FLAGS,NODES,BYTES", value_parser = parse_capacity)]
    capacity: Option<Requirements>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Largest capacity `--capacity` takes for each of flags, nodes and bytes (2^31).
const MAX_CAPACITY: usize = 1 << 31;

fn parse_capacity(s: &str) -> Result<Requirements, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [f, n, b] = parts.as_slice() else {
        return Err("expected FLAGS,NODES,BYTES, e.g. 32,128,2048".into());
    };
    let num = |x: &str| {
        let n = x
            .replace('_', "")
            .parse::<usize>()
            .map_err(|_| format!("`{x}` is not a whole number"))?;
        if n > MAX_CAPACITY {
            return Err(format!("`{x}` is larger than {MAX_CAPACITY}"));
        }
        Ok(n)
    };
    Ok(Requirements {
        flags: num(f)?,
        nodes: num(n)?,
        bytes: num(b)?,
    })
}

fn load(path: &Path) -> Result<Definitions, Failure> {
    Definitions::from_file(path).map_err(|e| match e {
        DefinitionsError::Io(io) => Failure::input(format!("{}: {io}", path.display())),
        other => Failure::input(format!("{}: {other}", path.display())),
    })
}

fn context(a: &EvalArgs) -> Result<OwnedContext, Failure> {
    let mut ctx = OwnedContext::new(a.distinct_id.clone());
    ctx.device_id.clone_from(&a.device_id);
    for p in &a.props {
        let (k, v) = parse_property_arg(p).map_err(|e| Failure::input(format!("--prop {e}")))?;
        ctx.person.insert(k, v);
    }
    for g in &a.groups {
        let (t, k) = g
            .split_once('=')
            .filter(|(t, k)| !t.is_empty() && !k.is_empty())
            .ok_or_else(|| Failure::input(format!("--group `{g}`: expected TYPE=KEY")))?;
        ctx.groups.push((t.to_owned(), k.to_owned()));
    }
    for gp in &a.group_props {
        let (t, rest) = gp
            .split_once(':')
            .filter(|(t, _)| !t.is_empty())
            .ok_or_else(|| {
                Failure::input(format!("--group-prop `{gp}`: expected TYPE:KEY=VALUE"))
            })?;
        if !ctx.groups.iter().any(|(g, _)| g == t) {
            return Err(Failure::input(format!(
                "--group-prop `{gp}`: no --group {t}=KEY was given"
            )));
        }
        let (k, v) =
            parse_property_arg(rest).map_err(|e| Failure::input(format!("--group-prop {e}")))?;
        let entry = ctx
            .group_properties
            .entry(t.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(k, v);
        }
    }
    Ok(ctx)
}

fn wall_clock(a: &EvalArgs) -> Result<Option<UnixMillis>, Failure> {
    if a.no_wall_clock {
        return Ok(None);
    }
    match &a.now {
        Some(s) => UnixMillis::parse_rfc3339(s)
            .map(Some)
            .map_err(|e| Failure::input(format!("--now `{s}`: {e}"))),
        None => {
            let ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            Ok(Some(UnixMillis::from_millis(ms)))
        }
    }
}

/// What the context lacks for `key`, from the flag's static analysis (`wall_clock`: whether
/// evaluation had one).
fn missing_for(
    store: &StdFlagStore,
    key: &str,
    ctx: &OwnedContext,
    wall_clock: bool,
) -> Vec<String> {
    let mut missing = BTreeSet::new();
    store.analyze(key, |f| match f {
        Finding::Property {
            scope: PropertyScope::Person,
            key,
            ..
        } if key != "distinct_id" && !ctx.person.contains_key(key) => {
            missing.insert(format!("person property `{key}`"));
        }
        Finding::Property {
            scope: PropertyScope::Group(g),
            key,
            ..
        } if key != "$group_key"
            && ctx
                .group_properties
                .get(g)
                .is_none_or(|m| m.get(key).is_none()) =>
        {
            missing.insert(format!("{g} group property `{key}`"));
        }
        Finding::DeviceId if ctx.device_id.is_none() => {
            missing.insert("--device-id".to_owned());
        }
        Finding::WallClock if !wall_clock => {
            missing.insert("a wall clock".to_owned());
        }
        _ => {}
    });
    missing.into_iter().collect()
}

fn why(defs: &Definitions, o: &FlagOutcome, ctx: &OwnedContext, wall_clock: bool) -> String {
    match &o.result {
        Ok((_, reason)) => reason.to_string(),
        Err(Inconclusive::Unresolved(Reason::MissingContext)) => {
            let missing = missing_for(defs.store(), &o.key, ctx, wall_clock);
            if missing.is_empty() {
                "inconclusive: missing_context (the device asks the server)".into()
            } else {
                format!(
                    "inconclusive: missing_context, needs {} (the device asks the server)",
                    missing.join(", ")
                )
            }
        }
        Err(e) => format!("inconclusive: {} (the device asks the server)", e.as_str()),
    }
}

pub(crate) fn run_eval(a: &EvalArgs) -> Outcome {
    let ctx = context(a)?;
    let now = wall_clock(a)?;
    let defs = load(&a.defs.definitions)?;
    let keys = defs.keys();
    for f in &a.flags {
        if !keys.contains(f) {
            let known = if keys.is_empty() {
                "the definitions have no flags".to_owned()
            } else {
                format!("known flags: {}", keys.join(", "))
            };
            return Err(Failure::input(format!("unknown flag `{f}` ({known})")));
        }
    }
    let only = (!a.flags.is_empty()).then_some(a.flags.as_slice());
    let outcomes = defs
        .evaluate_owned(&ctx, now, only)
        .map_err(Failure::input)?;
    if a.json {
        let mut flags = Map::new();
        for o in &outcomes {
            let payload = o.payload.as_deref().map_or(Value::Null, |p| {
                serde_json::from_str(p).unwrap_or_else(|_| Value::from(p))
            });
            let entry = match &o.result {
                Ok((v, r)) => json!({
                    "value": v.to_json(), "payload": payload, "reason": r.code(),
                    "condition_index": r.condition(), "description": r.to_string(), "inconclusive": null,
                }),
                Err(e) => json!({
                    "value": null, "payload": null, "reason": null, "condition_index": null,
                    "description": why(&defs, o, &ctx, now.is_some()), "inconclusive": e.as_str(),
                }),
            };
            flags.insert(o.key.clone(), entry);
        }
        let doc = json!({"distinct_id": ctx.distinct_id, "flags": flags});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
        return Ok(());
    }
    let rows: Vec<[String; 4]> = outcomes
        .iter()
        .map(|o| {
            let value = match &o.result {
                Ok((v, _)) => v.to_string(),
                Err(_) => "-".to_owned(),
            };
            let payload = o
                .payload
                .as_deref()
                .map_or_else(|| "-".to_owned(), |p| clip(p, 40));
            [
                o.key.clone(),
                value,
                payload,
                why(&defs, o, &ctx, now.is_some()),
            ]
        })
        .collect();
    print_table(&["FLAG", "VALUE", "PAYLOAD", "WHY"], &rows);
    let undecided = outcomes.iter().filter(|o| o.result.is_err()).count();
    println!(
        "\n{} flags for {}: {} decided on the device, {undecided} {} the server",
        outcomes.len(),
        ctx.distinct_id,
        outcomes.len() - undecided,
        if undecided == 1 { "needs" } else { "need" }
    );
    Ok(())
}

fn clip(s: &str, max: usize) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

fn print_table(header: &[&str; 4], rows: &[[String; 4]]) {
    let mut widths = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut out = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 3 {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(*header);
    for r in rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn store_type(r: &Requirements) -> String {
    format!("FlagStore<{}, {}, {}>", r.flags, r.nodes, r.bytes)
}

pub(crate) fn run_check(a: &CheckArgs) -> Outcome {
    let path = &a.defs.definitions;
    let doc =
        std::fs::read(path).map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let needed = StdFlagStore::requirements(&doc)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let meta: Value = serde_json::from_slice(&doc).unwrap_or(Value::Null);
    let cohorts = meta
        .get("cohorts")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    let group_types: Vec<String> = meta
        .get("group_type_mapping")
        .and_then(Value::as_object)
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    // Analysis needs the document compiled; a document larger than the host store is still
    // sized above.
    let defs = Definitions::load(doc.clone()).ok();
    let (local, server) = defs.as_ref().map(classify).unwrap_or_default();
    let headroom = Requirements {
        flags: needed.flags + needed.flags.div_ceil(4),
        nodes: needed.nodes + needed.nodes.div_ceil(4),
        bytes: needed.bytes + needed.bytes.div_ceil(4),
    };
    let fits = a.capacity.map(|c| {
        let mut over = Vec::new();
        for (what, need, have) in [
            ("flags", needed.flags, c.flags),
            ("nodes", needed.nodes, c.nodes),
            ("bytes of text", needed.bytes, c.bytes),
        ] {
            if need > have {
                over.push(format!("{what}: needs {need}, has {have}"));
            }
        }
        (c, over)
    });
    if a.json {
        let list = |v: &[(String, Vec<String>)]| -> Map<String, Value> {
            v.iter().map(|(k, f)| (k.clone(), json!(f))).collect()
        };
        let doc = json!({
            "file": path.display().to_string(),
            "requirements": {"flags": needed.flags, "nodes": needed.nodes, "bytes": needed.bytes,
                "cortex_m_store_bytes": needed.cortex_m_store_bytes()},
            "cohorts": cohorts,
            "group_types": group_types,
            "analyzed": defs.is_some(),
            "local": list(&local),
            "server_only": list(&server),
            "capacity": fits.as_ref().map(|(c, over)| json!({
                "flags": c.flags, "nodes": c.nodes, "bytes": c.bytes,
                "cortex_m_store_bytes": c.cortex_m_store_bytes(), "fits": over.is_empty(), "over": over,
            })),
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
        );
    } else {
        println!(
            "{}: {} flag{}, {cohorts} cohort{}, group types: {}",
            path.display(),
            needed.flags,
            if needed.flags == 1 { "" } else { "s" },
            if cohorts == 1 { "" } else { "s" },
            if group_types.is_empty() {
                "none".to_owned()
            } else {
                group_types.join(", ")
            }
        );
        println!();
        println!("Device flag store (RAM on Cortex-M):");
        println!(
            "  exact fit        {:<28} {:>9} bytes",
            store_type(&needed),
            thousands(needed.cortex_m_store_bytes())
        );
        println!(
            "  +25% headroom    {:<28} {:>9} bytes",
            store_type(&headroom),
            thousands(headroom.cortex_m_store_bytes())
        );
        if let Some((c, over)) = &fits {
            let verdict = if over.is_empty() {
                "fits".to_owned()
            } else {
                format!("DOES NOT FIT ({})", over.join("; "))
            };
            println!(
                "  --capacity       {:<28} {:>9} bytes  {verdict}",
                store_type(c),
                thousands(c.cortex_m_store_bytes())
            );
        }
        match &defs {
            None => println!(
                "\n(the definitions are larger than this tool's store, {}: per-flag analysis skipped)",
                store_type(&STD_CAPACITIES.flags)
            ),
            Some(_) => {
                println!("\nDecided on the device ({}), given:", local.len());
                print_findings(&local);
                println!(
                    "\nOnly the server can decide ({}): a device asks /flags for these",
                    server.len()
                );
                print_findings(&server);
            }
        }
    }
    match fits {
        Some((_, over)) if !over.is_empty() => Err(Failure::Negative(format!(
            "the definitions do not fit --capacity: {}",
            over.join("; ")
        ))),
        _ => Ok(()),
    }
}

/// Flag keys with what each needs, or why only the server can decide it.
type Findings = Vec<(String, Vec<String>)>;

/// Every flag, as decided on the device (with what it needs) or only by the server (with why).
///
/// A flag that depends on a server-only flag is server-only too (transitively): the device
/// cannot evaluate it without the other's value, and asks the server, as `eval` says.
fn classify(d: &Definitions) -> (Findings, Findings) {
    struct Flag {
        key: String,
        needs: BTreeSet<String>,
        blockers: BTreeSet<String>,
        depends_on: Vec<String>,
    }
    let mut flags: Vec<Flag> = d
        .keys()
        .into_iter()
        .map(|key| {
            let mut needs = BTreeSet::new();
            let mut blockers = BTreeSet::new();
            let mut depends_on = Vec::new();
            d.store().analyze(&key, |f| {
                if let Finding::DependsOn { flag } = f {
                    depends_on.push(flag.to_owned());
                }
                if f.is_server_only() {
                    blockers.insert(f.to_string());
                } else if f != Finding::Inactive {
                    needs.insert(f.to_string());
                } else {
                    needs.insert("nothing: inactive, always false".to_owned());
                }
            });
            Flag {
                key,
                needs,
                blockers,
                depends_on,
            }
        })
        .collect();
    // Propagate to a fixpoint: each round makes at least one more flag server-only, so there
    // are at most as many rounds as flags.
    for _ in 0..=flags.len() {
        let server_only: BTreeSet<String> = flags
            .iter()
            .filter(|f| !f.blockers.is_empty())
            .map(|f| f.key.clone())
            .collect();
        let mut changed = false;
        for f in flags.iter_mut().filter(|f| f.blockers.is_empty()) {
            for dep in f.depends_on.iter().filter(|k| server_only.contains(*k)) {
                f.blockers.insert(format!(
                    "depends on flag `{dep}`, which only the server can decide"
                ));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut local = Vec::new();
    let mut server = Vec::new();
    for f in flags {
        if f.blockers.is_empty() {
            local.push((f.key, f.needs.into_iter().collect()));
        } else {
            server.push((f.key, f.blockers.into_iter().collect()));
        }
    }
    (local, server)
}

fn print_findings(list: &[(String, Vec<String>)]) {
    if list.is_empty() {
        println!("  (none)");
        return;
    }
    let width = list
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    for (key, findings) in list {
        let text = if findings.is_empty() {
            "nothing beyond the distinct id".to_owned()
        } else {
            findings.join("; ")
        };
        println!("  {key:<width$}  {text}");
    }
}
