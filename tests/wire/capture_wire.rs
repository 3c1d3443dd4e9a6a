//! Wire format of captured events and `/batch/` bodies: every body parses with `serde_json` and
//! has the field set of PostHog's reference requests (`tests/vectors/wire_requests.json`).

use crate::common;

use std::collections::BTreeSet;

use posthog_embedded::capture::{
    render_batch, Batch, BatchLimits, DropReason, Encoder, EncoderConfig, EventOptions,
    OverflowPolicy, Queue, Uuid, BATCH_HEADERS, BATCH_PATH,
};
use posthog_embedded::{BatchError, CaptureError, Instant, Now, PropertyError, UnixMillis};
use serde_json::{json, Value};

const KEY: &str = "phc_snapshot_project";
/// 2026-01-02T03:04:05Z, the reference tests' frozen clock.
const WALL: u64 = 1_767_323_045_000;

fn mono(ms: u64) -> Now {
    Now::mono(Instant::from_millis(ms))
}

fn walled(ms: u64) -> Now {
    Now::with_wall(Instant::from_millis(ms), UnixMillis::from_millis(WALL + ms))
}

fn render<S: AsRef<[u8]> + AsMut<[u8]>>(q: &Queue<S>, now: Now) -> (Batch, Value) {
    let mut out = vec![0u8; 1 << 20];
    let b = render_batch(q, now, KEY, &BatchLimits::DEFAULT, &mut out)
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_slice(b.body(&out)).expect("body is valid JSON");
    (b, v)
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn uuid(n: u8) -> Uuid {
    Uuid::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}")).unwrap()
}

/// The reference scenario of w-1/w-4: capture with groups, a `$set`, alias, group identify.
fn reference_scenario(q: &mut Queue<Vec<u8>>, enc: &mut Encoder, now: Now) {
    let groups = [("company", "company-456")];
    enc.capture(
        q,
        now,
        "order completed",
        "user-123",
        &EventOptions::new().groups(&groups).uuid(uuid(1)),
        |p| {
            p.prop("amount", 29.5)?.array("items", |a| {
                a.object(|o| {
                    o.prop("quantity", 1u8)?.prop("sku", "SKU-1")?;
                    Ok(())
                })?
                .object(|o| {
                    o.prop("quantity", 2u8)?.prop("sku", "SKU-2")?;
                    Ok(())
                })?;
                Ok(())
            })?;
            Ok(())
        },
    )
    .unwrap();
    enc.identify(
        q,
        now,
        "user-123",
        &EventOptions::new().uuid(uuid(2)),
        |person| {
            person.set(|p| {
                p.prop("email", "person@example.com")?.prop("plan", "pro")?;
                Ok(())
            })?;
            Ok(())
        },
    )
    .unwrap();
    enc.alias(
        q,
        now,
        "anonymous-789",
        "user-123",
        &EventOptions::new().uuid(uuid(3)),
    )
    .unwrap();
    enc.group_identify(
        q,
        now,
        "company",
        "company-456",
        Some("user-123"),
        &EventOptions::new().uuid(uuid(4)),
        |p| {
            p.prop("employees", 42u32)?.prop("name", "Example Corp")?;
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn reference_scenario_matches_posthog_wire_shapes() {
    let mut q = Queue::new(vec![0u8; 8192], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 1);
    reference_scenario(&mut q, &mut enc, walled(0));
    let (batch, body) = render(&q, walled(0));
    assert_eq!(batch.events(), 4);

    // Body: exactly api_key, batch, sent_at (historical_migration is optional: node omits it).
    assert_eq!(
        keys(&body),
        ["api_key", "batch", "sent_at"].map(String::from).into()
    );
    assert_eq!(body["api_key"], KEY);
    assert_eq!(body["sent_at"], "2026-01-02T03:04:05.000Z");
    let ev = body["batch"].as_array().unwrap();
    for e in ev {
        assert_eq!(
            keys(e),
            ["distinct_id", "event", "properties", "timestamp", "uuid"]
                .map(String::from)
                .into()
        );
        assert_eq!(e["timestamp"], "2026-01-02T03:04:05.000Z");
        assert_eq!(e["properties"]["$lib"], "posthog-embedded");
        assert_eq!(e["properties"]["$lib_version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(e["properties"]["$geoip_disable"], true);
    }
    assert_eq!(ev[0]["event"], "order completed");
    assert_eq!(ev[0]["uuid"], "00000000-0000-4000-8000-000000000001");
    assert_eq!(
        ev[0]["properties"]["$groups"],
        json!({"company": "company-456"})
    );
    assert_eq!(ev[0]["properties"]["amount"], 29.5);
    assert_eq!(
        ev[0]["properties"]["items"],
        json!([{"quantity": 1, "sku": "SKU-1"}, {"quantity": 2, "sku": "SKU-2"}])
    );
    assert_eq!(ev[1]["event"], "$identify");
    assert_eq!(
        ev[1]["properties"]["$set"],
        json!({"email": "person@example.com", "plan": "pro"})
    );
    assert_eq!(ev[2]["event"], "$create_alias");
    assert_eq!(ev[2]["distinct_id"], "anonymous-789");
    assert_eq!(ev[2]["properties"]["distinct_id"], "anonymous-789");
    assert_eq!(ev[2]["properties"]["alias"], "user-123");
    assert_eq!(ev[3]["event"], "$groupidentify");
    assert_eq!(ev[3]["distinct_id"], "user-123");
    assert_eq!(ev[3]["properties"]["$group_type"], "company");
    assert_eq!(ev[3]["properties"]["$group_key"], "company-456");
    assert_eq!(
        ev[3]["properties"]["$group_set"],
        json!({"employees": 42, "name": "Example Corp"})
    );

    // Against the reference requests: same body keys (ours ⊆ theirs), same event keys, and every
    // SDK-owned property we send is one the reference SDKs send, with the same value type.
    let vectors = common::load("wire_requests.json");
    let cases = vectors["cases"].as_array().unwrap();
    let w1 = cases.iter().find(|c| c["id"] == "w-1").unwrap();
    let w4 = cases.iter().find(|c| c["id"] == "w-4").unwrap();
    let py = &w1["request"]["body"];
    let node_batch = w4["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"].as_str().unwrap().ends_with(BATCH_PATH))
        .unwrap();
    let node = &node_batch["body"];
    for reference in [py, node] {
        let ref_keys = keys(reference);
        assert!(
            keys(&body).is_subset(&ref_keys),
            "{:?} ⊄ {ref_keys:?}",
            keys(&body)
        );
        let ref_events = reference["batch"].as_array().unwrap();
        for (ours, theirs) in ev.iter().zip(ref_events) {
            assert_eq!(
                ours["event"],
                theirs["event"]
                    .as_str()
                    .map(|e| if e == "$set" { "$identify" } else { e })
                    .unwrap()
            );
            // Event keys: python puts `$set` at the top level of its `$set` event; the contract
            // puts it inside properties, which is what node and we do.
            let mut their_keys = keys(theirs);
            their_keys.remove("$set");
            assert_eq!(keys(ours), their_keys);
            for k in [
                "$lib",
                "$lib_version",
                "$geoip_disable",
                "$groups",
                "$group_type",
                "$group_key",
                "$group_set",
                "alias",
            ] {
                let (a, b) = (&ours["properties"][k], &theirs["properties"][k]);
                assert_eq!(
                    a.is_null(),
                    b.is_null(),
                    "{k} presence differs in {}",
                    ours["event"]
                );
                if k != "$lib" && k != "$lib_version" && k != "alias" {
                    assert_eq!(std::mem::discriminant(a), std::mem::discriminant(b));
                }
            }
        }
        assert_eq!(
            ev[0]["properties"]["items"],
            reference["batch"][0]["properties"]["items"]
        );
        assert_eq!(
            ev[0]["properties"]["$groups"],
            reference["batch"][0]["properties"]["$groups"]
        );
        assert_eq!(
            ev[3]["properties"]["$group_set"],
            reference["batch"][3]["properties"]["$group_set"]
        );
    }
    // Headers: the reference's set, with our User-Agent.
    let ref_headers: BTreeSet<String> = w1["request"]["headers"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let ours: BTreeSet<String> = BATCH_HEADERS.iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(ours, ref_headers);
    assert_eq!(
        BATCH_HEADERS[1].1,
        format!("posthog-embedded/{}", env!("CARGO_PKG_VERSION"))
    );
    assert!(w1["request"]["url"].as_str().unwrap().ends_with(BATCH_PATH));
}

#[test]
fn without_wall_clock_events_carry_offset_recomputed_at_each_render() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 2);
    enc.capture(
        &mut q,
        mono(1_000),
        "a",
        "dev",
        &EventOptions::new(),
        |_| Ok(()),
    )
    .unwrap();
    enc.capture(
        &mut q,
        mono(4_500),
        "b",
        "dev",
        &EventOptions::new(),
        |_| Ok(()),
    )
    .unwrap();
    let (_, body) = render(&q, mono(10_000));
    assert_eq!(keys(&body), ["api_key", "batch"].map(String::from).into());
    let ev = body["batch"].as_array().unwrap();
    assert_eq!(
        keys(&ev[0]),
        ["distinct_id", "event", "offset", "properties", "uuid"]
            .map(String::from)
            .into()
    );
    assert_eq!(ev[0]["offset"], 9_000);
    assert_eq!(ev[1]["offset"], 5_500);
    let first_uuid = ev[0]["uuid"].clone();
    // A retry an hour later: same uuid, offset grows with the wait.
    let (_, retry) = render(&q, mono(3_610_000));
    assert_eq!(retry["batch"][0]["uuid"], first_uuid);
    assert_eq!(retry["batch"][0]["offset"], 3_609_000);
    // The device learns the wall clock: sent_at appears, events keep their offsets.
    let (_, late) = render(
        &q,
        Now::with_wall(
            Instant::from_millis(3_610_000),
            UnixMillis::from_millis(WALL),
        ),
    );
    assert_eq!(late["sent_at"], "2026-01-02T03:04:05.000Z");
    assert_eq!(late["batch"][1]["offset"], 3_605_500);
    // UUIDs are v7, distinct.
    let u0 = ev[0]["uuid"].as_str().unwrap();
    assert_eq!(Uuid::parse(u0).unwrap().version(), 7);
    assert_ne!(ev[0]["uuid"], ev[1]["uuid"]);
}

#[test]
fn caller_timestamp_and_uuid_are_kept() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 3);
    let t = UnixMillis::parse_rfc3339("2023-11-15T03:43:20.123+05:30").unwrap();
    let u = Uuid::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap();
    let got = enc
        .capture(
            &mut q,
            mono(5),
            "e",
            "d",
            &EventOptions::new().timestamp(t).uuid(u),
            |_| Ok(()),
        )
        .unwrap();
    assert_eq!(got, u);
    let (_, body) = render(&q, mono(10));
    assert_eq!(body["batch"][0]["timestamp"], "2023-11-14T22:13:20.123Z");
    assert_eq!(
        body["batch"][0]["uuid"],
        "01890a5d-ac96-774b-bcce-b302099a8057"
    );
    assert!(body["batch"][0].get("offset").is_none());
    // Past year 9999 cannot be rendered.
    assert_eq!(
        enc.capture(
            &mut q,
            mono(5),
            "e",
            "d",
            &EventOptions::new().timestamp(UnixMillis::from_millis(u64::MAX)),
            |_| Ok(())
        ),
        Err(CaptureError::InvalidTimestamp)
    );
}

#[test]
fn hostile_strings_escape_exactly() {
    let hostile = [
        "\"quoted\" \\ back\\slash",
        "\u{0}\u{1}\u{1f}\u{7f}\u{80}\u{9f}",
        "line\nbreak\r\ttab\u{8}\u{c}",
        "</script><script>alert(1)</script>",
        "\u{2028}\u{2029}\u{feff}\u{fffd}",
        "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇪🇺",
        "ünïcödé 中文 العربية",
        "{\"nested\":\"json\"}",
        "",
    ];
    let all: String = (0u32..0x2000).filter_map(char::from_u32).collect();
    let mut q = Queue::new(vec![0u8; 1 << 20], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT.max_key_len(1 << 16), 4);
    for (i, s) in hostile.iter().chain([&all.as_str()]).enumerate() {
        let name = if s.is_empty() { "empty" } else { s };
        enc.capture(
            &mut q,
            mono(i as u64),
            name,
            name,
            &EventOptions::new().groups(&[("g\"", name)]),
            |p| {
                p.prop(name, *s)?.object("nested", |o| {
                    o.prop(name, *s)?;
                    Ok(())
                })?;
                Ok(())
            },
        )
        .unwrap();
    }
    let (_, body) = render(&q, mono(100_000));
    for (i, s) in hostile.iter().chain([&all.as_str()]).enumerate() {
        let name = if s.is_empty() { "empty" } else { s };
        let e = &body["batch"][i];
        assert_eq!(e["event"], name);
        assert_eq!(e["distinct_id"], name);
        assert_eq!(e["properties"][name].as_str(), Some(*s));
        assert_eq!(e["properties"]["nested"][name].as_str(), Some(*s));
        assert_eq!(e["properties"]["$groups"]["g\""], name);
    }
}

#[test]
fn validation_errors_queue_nothing() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT.max_key_len(8), 5);
    let o = EventOptions::new();
    let now = mono(0);
    assert_eq!(
        enc.capture(&mut q, now, "", "d", &o, |_| Ok(())),
        Err(CaptureError::EmptyEventName)
    );
    assert_eq!(
        enc.capture(&mut q, now, "e", "", &o, |_| Ok(())),
        Err(CaptureError::EmptyDistinctId)
    );
    assert_eq!(
        enc.capture(&mut q, now, "e", " \t\n", &o, |_| Ok(())),
        Err(CaptureError::EmptyDistinctId)
    );
    assert_eq!(
        enc.capture(
            &mut q,
            now,
            "e",
            "d",
            &EventOptions::new().groups(&[("", "k")]),
            |_| Ok(())
        ),
        Err(CaptureError::InvalidGroup)
    );
    assert_eq!(
        enc.capture(&mut q, now, "e", "d", &o, |p| {
            p.prop("ok", 1u8)?.prop("too-long-key", 1u8)?;
            Ok(())
        }),
        Err(CaptureError::Property(PropertyError::KeyTooLong {
            len: 12,
            max: 8
        }))
    );
    assert_eq!(
        enc.capture(&mut q, now, "e", "d", &o, |p| {
            p.object("nested", |n| {
                n.prop("nan", f64::NAN)?;
                Ok(())
            })?;
            Ok(())
        }),
        Err(CaptureError::Property(PropertyError::NonFiniteNumber))
    );
    assert_eq!(
        enc.capture(&mut q, now, "e", "d", &o, |p| {
            p.prop("", 1u8)?;
            Ok(())
        }),
        Err(CaptureError::Property(PropertyError::EmptyKey))
    );
    assert_eq!(
        enc.identify(&mut q, now, "", &o, |_| Ok(())),
        Err(CaptureError::EmptyDistinctId)
    );
    assert_eq!(
        enc.identify(&mut q, now, "d", &o, |p| {
            p.set(|_| Ok(()))?.set(|_| Ok(()))?;
            Ok(())
        }),
        Err(CaptureError::Property(PropertyError::DuplicateSection))
    );
    assert_eq!(
        enc.alias(&mut q, now, "", "new", &o),
        Err(CaptureError::EmptyDistinctId)
    );
    assert_eq!(
        enc.alias(&mut q, now, "old", " ", &o),
        Err(CaptureError::EmptyAlias)
    );
    assert_eq!(
        enc.group_identify(&mut q, now, "", "k", None, &o, |_| Ok(())),
        Err(CaptureError::EmptyGroupType)
    );
    assert_eq!(
        enc.group_identify(&mut q, now, "t", "", None, &o, |_| Ok(())),
        Err(CaptureError::EmptyGroupKey)
    );
    assert!(q.is_empty());
    assert_eq!(q.stats().enqueued, 0);
}

#[test]
fn sdk_keys_win_and_geoip_is_configurable() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT.disable_geoip(false), 6);
    let groups = [("fleet", "eu")];
    enc.capture(
        &mut q,
        mono(0),
        "e",
        "d",
        &EventOptions::new().groups(&groups),
        |p| {
            p.prop("$lib", "spoofed")?
                .prop("$lib_version", 0u8)?
                .prop("$groups", "mine")?
                .prop("$geoip_disable", "kept: not sdk-owned when geoip is on")?
                .prop("$current_url", "device://home")?;
            Ok(())
        },
    )
    .unwrap();
    enc.capture(
        &mut q,
        mono(0),
        "e",
        "d",
        &EventOptions::new().disable_geoip(true),
        |_| Ok(()),
    )
    .unwrap();
    let mut out = vec![0u8; 4096];
    let b = render_batch(&q, mono(0), KEY, &BatchLimits::DEFAULT, &mut out)
        .unwrap()
        .unwrap();
    let text = std::str::from_utf8(b.body(&out)).unwrap();
    // No duplicate keys on the wire: the caller's values are gone, not shadowed.
    assert_eq!(text.matches("\"$lib\"").count(), 2);
    assert!(!text.contains("spoofed"));
    let body: Value = serde_json::from_str(text).unwrap();
    let p = &body["batch"][0]["properties"];
    assert_eq!(p["$lib"], "posthog-embedded");
    assert_eq!(p["$groups"], json!({"fleet": "eu"}));
    assert_eq!(p["$geoip_disable"], "kept: not sdk-owned when geoip is on");
    assert_eq!(p["$current_url"], "device://home");
    assert_eq!(body["batch"][1]["properties"]["$geoip_disable"], true);
}

#[test]
fn a_relayed_event_keeps_its_own_properties_uuid_and_time_as_sent() {
    use posthog_embedded::json::write::RawJson;
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::RejectNewest);
    // geoip off in the config: still not added to a relayed event.
    let mut enc = Encoder::new(EncoderConfig::DEFAULT.disable_geoip(true), 6);
    let device = json!({
        "$lib": "posthog-embedded", "$lib_version": "0.0.9",
        "nested": {"a": [1, 2.5, null, "é\"x"]}, "n": 18446744073709551615u64
    });
    let at = UnixMillis::from_millis(WALL - 40_000);
    let opts = EventOptions::new()
        .uuid(uuid(7))
        .timestamp(at)
        .relayed(true);
    enc.capture(&mut q, mono(0), "reading", "dev-1", &opts, |p| {
        for (k, v) in device.as_object().unwrap() {
            p.prop(k, RawJson(&v.to_string()))?;
        }
        Ok(())
    })
    .unwrap();
    let (_, body) = render(&q, mono(5_000));
    let e = &body["batch"][0];
    assert_eq!(
        e["properties"], device,
        "exactly the device's properties, no SDK ones"
    );
    assert_eq!(e["uuid"], "00000000-0000-4000-8000-000000000007");
    assert_eq!(e["timestamp"], "2026-01-02T03:03:25.000Z");
    assert!(e.get("offset").is_none());

    // Raw text must be exactly one JSON value; nothing is queued otherwise.
    for (bad, offset) in [
        ("", 0),
        ("{", 1),
        ("1 2", 2),
        ("[1,]", 3),
        ("tru", 3),
        ("{} x", 3),
    ] {
        let r = enc.capture(&mut q, mono(0), "e", "d", &EventOptions::new(), |p| {
            p.prop("k", RawJson(bad))?;
            Ok(())
        });
        match r {
            Err(CaptureError::Property(PropertyError::InvalidJson { offset: at })) => {
                assert_eq!(at, offset, "{bad:?}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(q.len(), 1);

    // Nesting: up to the reader's default depth, not one level more.
    let max = posthog_embedded::json::read::DEFAULT_MAX_DEPTH;
    let nested = |d: usize| format!("{}{}", "[".repeat(d), "]".repeat(d));
    let deepest = nested(max);
    enc.capture(&mut q, mono(0), "e", "d", &EventOptions::new(), |p| {
        p.prop("k", RawJson(&deepest))?;
        Ok(())
    })
    .unwrap();
    let too_deep = nested(max + 1);
    let r = enc.capture(&mut q, mono(0), "e", "d", &EventOptions::new(), |p| {
        p.prop("k", RawJson(&too_deep))?;
        Ok(())
    });
    assert!(
        matches!(r, Err(CaptureError::Property(PropertyError::InvalidJson { offset: d })) if d == max),
        "{r:?}"
    );
    assert_eq!(q.len(), 2);
}

#[test]
fn identify_set_and_group_identify_shapes() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 7);
    let o = EventOptions::new();
    enc.identify(&mut q, mono(0), "user-123", &o, |_| Ok(()))
        .unwrap();
    // set with nothing: no event at all.
    assert_eq!(
        enc.set(&mut q, mono(0), "user-123", &o, |_| Ok(())),
        Ok(None)
    );
    assert_eq!(
        enc.set(&mut q, mono(0), "user-123", &o, |p| {
            p.set(|_| Ok(()))?.set_once(|_| Ok(()))?;
            Ok(())
        }),
        Ok(None)
    );
    let u = enc
        .set(&mut q, mono(0), "user-123", &o, |p| {
            p.set(|s| {
                s.prop("email", "user@test.test")?;
                Ok(())
            })?
            .set_once(|s| {
                s.prop("first_seen", "yesterday")?;
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
    assert!(u.is_some());
    enc.group_identify(&mut q, mono(0), "company", "acme", None, &o, |_| Ok(()))
        .unwrap();
    let (_, body) = render(&q, mono(0));
    let ev = body["batch"].as_array().unwrap();
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["event"], "$identify");
    assert_eq!(ev[0]["properties"]["$set"], json!({}));
    assert_eq!(ev[1]["event"], "$set");
    assert_eq!(
        ev[1]["properties"]["$set"],
        json!({"email": "user@test.test"})
    );
    assert_eq!(
        ev[1]["properties"]["$set_once"],
        json!({"first_seen": "yesterday"})
    );
    assert_eq!(ev[1]["uuid"], u.unwrap().to_string());
    assert_eq!(ev[2]["distinct_id"], "$company_acme");
    assert_eq!(ev[2]["properties"]["$group_set"], json!({}));
}

#[test]
fn batch_caps_and_exact_commit() {
    let mut q = Queue::new(vec![0u8; 8192], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 8);
    for i in 0..10u32 {
        enc.capture(
            &mut q,
            mono(u64::from(i)),
            "tick",
            "dev",
            &EventOptions::new(),
            |p| {
                p.prop("i", i)?;
                Ok(())
            },
        )
        .unwrap();
    }
    let mut out = vec![0u8; 8192];
    let limits = BatchLimits {
        max_events: 4,
        max_bytes: usize::MAX,
    };
    let b = render_batch(&q, mono(50), KEY, &limits, &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(b.events(), 4);
    assert_eq!((b.records.start, b.records.end), (0, 4));
    // A byte cap: as many whole events as fit, and the body stays valid JSON.
    let one = {
        let l = BatchLimits {
            max_events: 1,
            max_bytes: usize::MAX,
        };
        render_batch(&q, mono(50), KEY, &l, &mut out)
            .unwrap()
            .unwrap()
            .len
    };
    let limits = BatchLimits {
        max_events: 100,
        max_bytes: one * 2,
    };
    let b2 = render_batch(&q, mono(50), KEY, &limits, &mut out)
        .unwrap()
        .unwrap();
    assert!(b2.len <= one * 2);
    assert!(b2.events() >= 1 && b2.events() < 10);
    let v: Value = serde_json::from_slice(b2.body(&out)).unwrap();
    assert_eq!(v["batch"].as_array().unwrap().len() as u64, b2.events());
    // Capture more while the first batch is "in flight", then commit it: exactly 4 leave.
    enc.capture(
        &mut q,
        mono(60),
        "late",
        "dev",
        &EventOptions::new(),
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(q.commit(b.records), 4);
    assert_eq!(q.len(), 7);
    assert_eq!(q.front().unwrap().seq, 4);
    // Committing the same batch again removes nothing.
    assert_eq!(q.commit(b.records), 0);
    let (rest, v) = render(&q, mono(70));
    assert_eq!(rest.events(), 7);
    assert_eq!(v["batch"][0]["properties"]["i"], 4);
    assert_eq!(v["batch"][6]["event"], "late");
}

#[test]
fn oversize_record_is_an_error_naming_the_size_and_can_be_dropped() {
    let mut q = Queue::new(vec![0u8; 4096], OverflowPolicy::RejectNewest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 9);
    let big = "x".repeat(1500);
    enc.capture(&mut q, mono(0), "big", "dev", &EventOptions::new(), |p| {
        p.prop("blob", big.as_str())?;
        Ok(())
    })
    .unwrap();
    enc.capture(
        &mut q,
        mono(0),
        "small",
        "dev",
        &EventOptions::new(),
        |_| Ok(()),
    )
    .unwrap();
    let mut out = vec![0u8; 1024];
    let err = render_batch(&q, mono(0), KEY, &BatchLimits::DEFAULT, &mut out).unwrap_err();
    let BatchError::RecordTooLarge {
        seq,
        needed,
        available,
    } = err
    else {
        panic!("{err:?}")
    };
    assert_eq!((seq, available), (0, 1024));
    // `needed` is exact: a buffer of that size renders it.
    let mut exact = vec![0u8; needed];
    let b = render_batch(
        &q,
        mono(0),
        KEY,
        &BatchLimits {
            max_events: 1,
            max_bytes: usize::MAX,
        },
        &mut exact,
    )
    .unwrap()
    .unwrap();
    assert_eq!(b.len, needed);
    // The caller drops it (counted) and the queue moves on.
    assert_eq!(q.drop_oldest(DropReason::TooLargeForBody), Some(0));
    let b = render_batch(&q, mono(0), KEY, &BatchLimits::DEFAULT, &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(b.events(), 1);
    assert_eq!(q.stats().discarded_too_large_for_body, 1);
    // An envelope that cannot fit at all.
    assert_eq!(
        render_batch(&q, mono(0), KEY, &BatchLimits::DEFAULT, &mut out[..10]),
        Err(BatchError::BufferTooSmall {
            needed: 45,
            available: 10
        })
    );
    assert_eq!(
        render_batch(
            &q,
            mono(0),
            KEY,
            &BatchLimits {
                max_events: 0,
                max_bytes: 10
            },
            &mut out
        ),
        Err(BatchError::ZeroEvents)
    );
    // An empty queue renders nothing.
    q.commit(q.seqs());
    assert_eq!(
        render_batch(&q, mono(0), KEY, &BatchLimits::DEFAULT, &mut out),
        Ok(None)
    );
}

#[test]
fn overflow_policies_through_the_encoder() {
    let cap = 1024;
    for policy in [OverflowPolicy::DropOldest, OverflowPolicy::RejectNewest] {
        let mut q = Queue::new(vec![0u8; cap], policy);
        let mut enc = Encoder::new(EncoderConfig::DEFAULT, 10);
        let mut ok = 0u32;
        let mut full = 0u32;
        for i in 0..100u32 {
            match enc.capture(
                &mut q,
                mono(u64::from(i)),
                "tick",
                "dev",
                &EventOptions::new(),
                |p| {
                    p.prop("i", i)?
                        .prop("pad", "0123456789012345678901234567890123456789")?;
                    Ok(())
                },
            ) {
                Ok(_) => ok += 1,
                Err(CaptureError::QueueFull { needed, free }) => {
                    assert!(needed > free);
                    full += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let s = *q.stats();
        assert_eq!(s.enqueued, ok);
        assert_eq!(s.enqueued as usize, q.len() + s.evicted as usize);
        let (_, v) = render(&q, mono(1000));
        let is: Vec<u64> = v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["properties"]["i"].as_u64().unwrap())
            .collect();
        match policy {
            OverflowPolicy::DropOldest => {
                assert_eq!(ok, 100);
                assert!(s.evicted > 0);
                // The newest survive, in order.
                assert_eq!(*is.last().unwrap(), 99);
                assert!(is.windows(2).all(|w| w[1] == w[0] + 1));
            }
            OverflowPolicy::RejectNewest => {
                assert_eq!(s.rejected, full);
                assert_eq!(is[0], 0);
                assert!(full > 0);
            }
        }
        // Too large for the whole queue: refused without evicting anything.
        let before = q.len();
        let big = "y".repeat(cap);
        assert!(matches!(
            enc.capture(&mut q, mono(0), "big", "dev", &EventOptions::new(), |p| {
                p.prop("b", big.as_str())?;
                Ok(())
            }),
            Err(CaptureError::TooLarge { max, .. }) if max == cap
        ));
        assert_eq!(q.len(), before);
    }
}
