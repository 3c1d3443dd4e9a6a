//! Proof that capture and batch rendering allocate nothing: a counting global allocator
//! records every allocation made on this test's thread while the core runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

mod common;

use posthog_embedded::capture::{
    render_batch, BatchLimits, Encoder, EncoderConfig, EventOptions, OverflowPolicy, Queue,
};
use posthog_embedded::flags::{EvalContext, FlagStore, GroupContext, Properties, PropertyValue};
use posthog_embedded::{Instant, Now, UnixMillis};

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not see each other's allocations.
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if WATCHING.with(Cell::get) {
            ALLOCATIONS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations_in(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    WATCHING.with(|w| w.set(true));
    f();
    WATCHING.with(|w| w.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn counting_allocator_sees_allocations() {
    // The instrument works: a Vec is seen.
    assert!(allocations_in(|| drop(std::hint::black_box(vec![1u8; 16]))) >= 1);
}

#[test]
fn capture_and_batch_rendering_allocate_nothing() {
    let mut queue = Queue::new([0u8; 2048], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 99);
    let mut body = [0u8; 1024];
    let groups = [("fleet", "eu-west")];
    let n = allocations_in(|| {
        for i in 0..200u64 {
            let now = if i % 2 == 0 {
                Now::mono(Instant::from_millis(i))
            } else {
                Now::with_wall(
                    Instant::from_millis(i),
                    UnixMillis::from_millis(1_767_323_045_000 + i),
                )
            };
            let opts = EventOptions::new().groups(&groups);
            enc.capture(&mut queue, now, "reading", "device-42", &opts, |p| {
                p.prop("temperature_c", 21.5)?
                    .prop("seq", i)?
                    .prop("ok", true)?
                    .array("samples", |a| {
                        a.push(1u8)?.push(-2i32)?.push(0.5f32)?;
                        Ok(())
                    })?
                    .object("meta", |o| {
                        o.prop("fw", "1.4.2\n\"quoted\"")?;
                        Ok(())
                    })?;
                Ok(())
            })
            .unwrap();
            if i % 10 == 0 {
                enc.identify(&mut queue, now, "device-42", &EventOptions::new(), |p| {
                    p.set(|s| {
                        s.prop("board", "disco")?;
                        Ok(())
                    })?;
                    Ok(())
                })
                .unwrap();
                enc.alias(
                    &mut queue,
                    now,
                    "device-42",
                    "serial-7",
                    &EventOptions::new(),
                )
                .unwrap();
                enc.group_identify(
                    &mut queue,
                    now,
                    "fleet",
                    "eu-west",
                    None,
                    &EventOptions::new(),
                    |g| {
                        g.prop("size", 3u8)?;
                        Ok(())
                    },
                )
                .unwrap();
            }
            if i % 7 == 0 {
                let limits = BatchLimits {
                    max_events: 5,
                    max_bytes: 1024,
                };
                if let Some(b) = render_batch(&queue, now, "phc_token", &limits, &mut body).unwrap()
                {
                    queue.commit(b.records);
                }
            }
        }
    });
    assert_eq!(n, 0, "the core allocated {n} times");
    assert!(
        queue.stats().evicted > 0,
        "the workload should exercise eviction too"
    );
}

/// Loading definitions and evaluating flags allocate nothing, over every full-flag conformance
/// case (the test's own JSON preparation happens outside the watched region).
#[test]
fn loading_and_evaluating_flags_allocate_nothing() {
    let v = common::load("local_evaluation_cases.json");
    let mut store = Box::new(FlagStore::<64, 4096, 65536>::new());
    let mut evaluated = 0;
    for case in v["cases"].as_array().unwrap() {
        let flags = case
            .get("all_flags")
            .cloned()
            .unwrap_or_else(|| serde_json::json!([case["flag"]]));
        let doc = serde_json::json!({
            "flags": flags,
            "group_type_mapping": case["group_type_mapping"],
            "cohorts": case["cohorts"],
        })
        .to_string();
        let raw = |v: &serde_json::Value| -> Vec<(String, String)> {
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
                .unwrap_or_default()
        };
        let person_raw = raw(&case["person_properties"]);
        let person: Vec<(&str, PropertyValue<'_>)> = person_raw
            .iter()
            .map(|(k, v)| (k.as_str(), PropertyValue::from_json(v).unwrap()))
            .collect();
        let person = person.as_slice();
        type RawGroup = (String, String, Vec<(String, String)>);
        let groups_raw: Vec<RawGroup> = case["groups"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(t, k)| {
                        (
                            t.clone(),
                            k.as_str().unwrap_or("").to_owned(),
                            raw(&case["group_properties"][t]),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let group_props: Vec<Vec<(&str, PropertyValue<'_>)>> = groups_raw
            .iter()
            .map(|(_, _, p)| {
                p.iter()
                    .map(|(k, v)| (k.as_str(), PropertyValue::from_json(v).unwrap()))
                    .collect()
            })
            .collect();
        let slices: Vec<&[(&str, PropertyValue<'_>)]> =
            group_props.iter().map(Vec::as_slice).collect();
        let groups: Vec<GroupContext<'_>> = groups_raw
            .iter()
            .zip(&slices)
            .map(|((t, k, _), p)| GroupContext {
                group_type: t,
                key: k,
                properties: Some(p as &dyn Properties),
            })
            .collect();
        let ctx = EvalContext {
            distinct_id: case["distinct_id"].as_str().unwrap_or(""),
            device_id: case.get("device_id").and_then(serde_json::Value::as_str),
            person: &person,
            groups: &groups,
        };
        let key = case["flag"]["key"].as_str().unwrap();
        let now = Some(UnixMillis::from_millis(1_767_323_045_000));
        let n = allocations_in(|| {
            store.load(doc.as_bytes()).unwrap();
            let _ = std::hint::black_box(store.evaluate(key, &ctx, now));
            let _ = std::hint::black_box(store.evaluate("no-such-flag", &ctx, now));
        });
        assert_eq!(n, 0, "{}: {n} allocations", case["id"]);
        evaluated += 1;
    }
    println!("no allocation while loading and evaluating {evaluated} conformance cases");
}
