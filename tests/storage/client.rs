//! The client with persistence on a simulated flash: events survive resets and power cuts and
//! are delivered once with their uuids, at the time the rule establishes; the policies; a
//! power cut at every flash step of a capture, deliver and reboot workload.

use std::collections::{BTreeMap, BTreeSet};

use posthog_embedded::adapters::persist;
use posthog_embedded::capture::{EventOptions, OverflowPolicy};
use posthog_embedded::client::{
    Client, Config, PersistPolicy, PersistResult, PersistStep, RequestKind, ResponseInfo,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::storage::sim::SimFlash;
use posthog_embedded::storage::EventLog;
use posthog_embedded::time::UnixMillis;
use posthog_embedded::{Instant, Now};
use serde_json::Value;

use super::block_on;

type Flash = SimFlash<4, 1024>;
const PAGES: u32 = 8;
const WALL0: u64 = 1_760_000_000_000;

/// A device: its flash survives resets, nothing else does.
struct Device {
    flash: Flash,
    boots: u32,
    queue: usize,
}

/// One boot of the device: a fresh client over fresh RAM, its log, and its clock.
struct Boot {
    client: Client<'static>,
    log: EventLog,
    restored: u32,
    approximate: u32,
}

fn ok() -> ResponseInfo<'static> {
    ResponseInfo {
        status: 200,
        retry_after: None,
        etag: None,
    }
}

impl Device {
    fn new(seed: u64) -> Self {
        Self {
            flash: Flash::new(PAGES as usize, seed),
            boots: 0,
            queue: 4096,
        }
    }

    /// Boots: mounts the log, attaches persistence, restores. `None` if the flash is off.
    fn boot(&mut self, policy: PersistPolicy) -> Boot {
        self.boots += 1;
        let (mut log, mounted) =
            block_on(EventLog::mount(&mut self.flash, 0..PAGES * 1024)).expect("mount");
        // The same seed every boot: the log's boot number keeps uuids apart.
        let mut config = Config::new("phc_test", 0x5eed);
        config.overflow = OverflowPolicy::RejectNewest;
        let mut client = if self.queue == 4096 {
            Client::new(
                config,
                Box::leak(Box::new(Resources::<4096, 4, 16, 256>::new())),
            )
        } else {
            Client::new(
                config,
                Box::leak(Box::new(Resources::<1024, 4, 16, 256>::new())),
            )
        }
        .unwrap();
        client.attach_persistence(policy, persist::position(&mounted));
        let mut buf = [0u8; 1024];
        let r = block_on(persist::restore(
            &mut log,
            &mut self.flash,
            &mut client,
            &mut buf,
        ))
        .expect("restore");
        Boot {
            client,
            log,
            restored: r.restored,
            approximate: r.approximate,
        }
    }
}

impl Boot {
    /// Captures event `n`; returns its uuid.
    fn capture(&mut self, now: Now, n: u64) -> String {
        self.client
            .capture(now, "reading", "device-1", &EventOptions::new(), |p| {
                p.prop("n", n)?;
                Ok(())
            })
            .unwrap()
            .to_string()
    }

    fn sync(&mut self, flash: &mut Flash, now: Now) -> usize {
        let mut buf = [0u8; 1024];
        block_on(persist::sync(
            &mut self.log,
            flash,
            &mut self.client,
            now,
            &mut buf,
        ))
    }

    /// Sends every due batch, answering 200; returns the events sent.
    fn deliver(&mut self, flash: &mut Flash, now: Now) -> Vec<Value> {
        let mut out = Vec::new();
        self.client.flush();
        let mut buf = vec![0u8; 8192];
        while let Some(tx) = self.client.poll_transmit(now, &mut buf) {
            assert!(matches!(tx.kind, RequestKind::Batch { .. }));
            let body: Value = serde_json::from_slice(tx.body).unwrap();
            out.extend(body["batch"].as_array().unwrap().iter().cloned());
            self.client.handle_response(now, &ok(), &[]);
            self.sync(flash, now);
        }
        out
    }
}

fn mono(ms: u64) -> Now {
    Now::mono(Instant::from_millis(ms))
}

fn both(ms: u64, wall: u64) -> Now {
    Now {
        mono: Instant::from_millis(ms),
        wall: Some(UnixMillis::from_millis(wall)),
    }
}

fn n_of(e: &Value) -> u64 {
    e["properties"]["n"].as_u64().unwrap()
}

#[test]
fn events_survive_resets_and_land_at_the_time_the_rule_gives() {
    let mut d = Device::new(1);
    // Boot 1 knows the wall clock from the start: events carry their own timestamp.
    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 0);
    for n in 0..3 {
        b.capture(both(1_000 + n * 100, WALL0 + n * 100), n);
    }
    b.sync(&mut d.flash, both(1_500, WALL0 + 500));
    assert_eq!(b.client.persist_stats().persisted, 3);
    assert_eq!(b.client.unpersisted(), 0);

    // Boot 2 learns the wall clock late: its earlier events get their exact time from it.
    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 3);
    b.client.set_online(false);
    b.capture(mono(2_000), 10);
    b.capture(mono(2_500), 11);
    b.sync(&mut d.flash, mono(2_600));
    // The wall clock arrives: at mono 3_000 it is WALL0 + 100_000.
    b.capture(both(3_000, WALL0 + 100_000), 12);
    b.sync(&mut d.flash, both(3_000, WALL0 + 100_000));

    // Boot 3 never learns it: its events are sent as approximate.
    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 6);
    b.client.set_online(false);
    b.capture(mono(700), 20);
    b.capture(mono(4_700), 21);
    b.sync(&mut d.flash, mono(5_000));

    // Boot 4 is online: everything goes, once, with the right times.
    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!((b.restored, b.approximate), (8, 2));
    let now = mono(60_000);
    let sent = b.deliver(&mut d.flash, now);
    let by_n: BTreeMap<u64, &Value> = sent.iter().map(|e| (n_of(e), e)).collect();
    assert_eq!(sent.len(), 8);
    assert_eq!(
        by_n.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 10, 11, 12, 20, 21]
    );
    let uuids: BTreeSet<&str> = sent.iter().map(|e| e["uuid"].as_str().unwrap()).collect();
    assert_eq!(uuids.len(), 8, "uuids unique across boots");
    // Captured with a wall clock: their own timestamp, no offset.
    for n in [0, 1, 2, 12] {
        assert!(by_n[&n]["timestamp"].is_string(), "{}", by_n[&n]);
        assert!(by_n[&n].get("offset").is_none());
    }
    assert_eq!(by_n[&1]["timestamp"], "2025-10-09T08:53:20.100Z");
    // Boot 2's early events: exact, from the anchor (wall - mono = WALL0 + 97_000).
    assert_eq!(by_n[&10]["timestamp"], "2025-10-09T08:54:59.000Z");
    assert_eq!(by_n[&11]["timestamp"], "2025-10-09T08:54:59.500Z");
    assert!(by_n[&10]["properties"].get("$time_approximate").is_none());
    // Boot 3's: before this boot started, 4 s apart as captured, marked approximate.
    assert_eq!(by_n[&20]["offset"], 60_000 + 4_000);
    assert_eq!(by_n[&21]["offset"], 60_000);
    assert_eq!(by_n[&20]["properties"]["$time_approximate"], true);
    assert!(by_n[&20].get("timestamp").is_none());

    // Delivered means removed from flash: the next boot restores nothing.
    let b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 0);
    assert!(b.client.persist_stats().tail_writes == 0);
}

#[test]
fn the_policy_decides_when_events_are_written() {
    let mut d = Device::new(2);
    let mut b = d.boot(PersistPolicy::Every(3));
    b.client.set_online(false);
    b.capture(mono(1), 0);
    b.capture(mono(2), 1);
    assert_eq!(b.sync(&mut d.flash, mono(3)), 0);
    assert_eq!(b.client.unpersisted(), 2);
    b.capture(mono(4), 2);
    b.sync(&mut d.flash, mono(5));
    assert_eq!(b.client.unpersisted(), 0);
    b.capture(mono(6), 3);
    b.client.flush();
    b.sync(&mut d.flash, mono(7));
    assert_eq!(
        b.client.persist_stats().persisted,
        4,
        "flush writes what waits"
    );

    b.client.set_persist_policy(PersistPolicy::Manual);
    b.capture(mono(8), 4);
    b.client.flush();
    b.sync(&mut d.flash, mono(9));
    assert_eq!(b.client.unpersisted(), 1, "manual: only persist_now writes");
    b.client.persist_now();
    b.sync(&mut d.flash, mono(10));
    assert_eq!(b.client.unpersisted(), 0);

    b.client.set_persist_policy(PersistPolicy::OnFlush);
    b.capture(mono(11), 5);
    b.sync(&mut d.flash, mono(12));
    assert_eq!(b.client.unpersisted(), 1);
    b.client.shutdown();
    b.sync(&mut d.flash, mono(13));
    assert_eq!(b.client.unpersisted(), 0, "shutdown writes what waits");

    // An event never written is lost at a reset; every written one comes back.
    b.client.set_persist_policy(PersistPolicy::Manual);
    let b2 = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b2.restored, 6);
}

#[test]
fn a_cut_between_the_2xx_and_the_tail_resends_the_same_uuids() {
    let mut d = Device::new(3);
    let mut b = d.boot(PersistPolicy::EveryEvent);
    for n in 0..4 {
        b.capture(mono(n), n);
    }
    b.sync(&mut d.flash, mono(10));
    // Deliver, but the power goes at the first flash step after the 2xx (the tail write).
    b.client.flush();
    let mut buf = vec![0u8; 8192];
    let tx = b.client.poll_transmit(mono(20), &mut buf).unwrap();
    let body: Value = serde_json::from_slice(tx.body).unwrap();
    let first: BTreeSet<String> = body["batch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect();
    b.client.handle_response(mono(21), &ok(), &[]);
    d.flash.cut_power_after(0);
    b.sync(&mut d.flash, mono(22));
    assert!(d.flash.is_off());
    d.flash.power_on();

    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 4);
    let again: BTreeSet<String> = b
        .deliver(&mut d.flash, mono(1_000))
        .iter()
        .map(|e| e["uuid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(again, first, "the same events, with the same uuids");
    assert_eq!(d.boot(PersistPolicy::EveryEvent).restored, 0);
}

#[test]
fn a_smaller_queue_at_boot_keeps_what_fits_and_counts_the_rest() {
    let mut d = Device::new(4);
    let mut b = d.boot(PersistPolicy::EveryEvent);
    b.client.set_online(false);
    for n in 0..20 {
        b.capture(mono(n), n);
    }
    b.sync(&mut d.flash, mono(100));
    assert_eq!(b.client.persist_stats().persisted, 20);
    d.queue = 1024;
    let mut b = d.boot(PersistPolicy::EveryEvent);
    let s = b.client.persist_stats();
    assert!(s.restored > 0 && s.restore_dropped > 0, "{s:?}");
    assert_eq!(s.restored + s.restore_dropped, 20);
    let sent = b.deliver(&mut d.flash, mono(1_000));
    assert_eq!(sent.len() as u32, s.restored);
    // The dropped ones are gone from flash too: nothing comes back.
    d.queue = 4096;
    assert_eq!(d.boot(PersistPolicy::EveryEvent).restored, 0);
}

/// What a workload run did.
struct Run {
    steps: u64,
    /// uuid -> n of every event whose write to flash completed.
    persisted: BTreeMap<String, u64>,
    delivered: Vec<String>,
    /// Events delivered while (or after) the power went: their removal may not be recorded.
    unconfirmed: BTreeSet<String>,
    device: Device,
}

/// The workload of one run: captures, flash syncs and deliveries, with the power cut after
/// `cut` flash steps (never, for `None`).
fn workload(seed: u64, cut: Option<u64>) -> Run {
    let mut d = Device::new(seed);
    let mut b = d.boot(PersistPolicy::EveryEvent);
    if let Some(c) = cut {
        d.flash.cut_power_after(c.saturating_sub(d.flash.steps()));
    }
    let mut persisted: BTreeMap<String, u64> = BTreeMap::new();
    let mut delivered: Vec<String> = Vec::new();
    let mut unconfirmed = BTreeSet::new();
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut t = 0u64;
    for n in 0..40u64 {
        if d.flash.is_off() {
            break;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        t += 50;
        let uuid = b.capture(mono(t), n);
        let before = b.client.unpersisted();
        b.sync(&mut d.flash, mono(t));
        if b.client.unpersisted() < before {
            persisted.insert(uuid, n);
        }
        if rng.is_multiple_of(4) && !d.flash.is_off() {
            let sent: Vec<String> = b
                .deliver(&mut d.flash, mono(t))
                .iter()
                .map(|e| e["uuid"].as_str().unwrap().to_owned())
                .collect();
            if d.flash.is_off() {
                unconfirmed.extend(sent.iter().cloned());
            }
            delivered.extend(sent);
        }
    }
    Run {
        steps: d.flash.steps(),
        persisted,
        delivered,
        unconfirmed,
        device: d,
    }
}

#[test]
fn a_power_cut_at_every_flash_step_of_capture_deliver_reboot() {
    let mut points = 0u64;
    for seed in 1..=3u64 {
        let total = workload(seed, None).steps;
        for cut in 0..total {
            let Run {
                persisted,
                delivered,
                unconfirmed,
                device: mut d,
                ..
            } = workload(seed, Some(cut));
            d.flash.power_on();
            let mut b = d.boot(PersistPolicy::EveryEvent);
            let after: Vec<String> = b
                .deliver(&mut d.flash, mono(1_000_000))
                .iter()
                .map(|e| e["uuid"].as_str().unwrap().to_owned())
                .collect();
            let delivered_set: BTreeSet<&String> = delivered.iter().collect();
            let after_set: BTreeSet<&String> = after.iter().collect();
            assert_eq!(
                after_set.len(),
                after.len(),
                "seed {seed} cut {cut}: duplicates"
            );
            // Every event written to flash and not delivered before the cut is delivered now.
            for u in persisted.keys() {
                assert!(
                    delivered_set.contains(u) || after_set.contains(u),
                    "seed {seed} cut {cut}: event {u} lost"
                );
            }
            // Resent events are only those whose removal the cut interrupted.
            for u in after_set.intersection(&delivered_set) {
                assert!(
                    unconfirmed.contains(*u),
                    "seed {seed} cut {cut}: {u} delivered twice"
                );
            }
            points += 1;
        }
    }
    println!("client power cuts tested: {points}");
    assert!(points > 1_000);
}

#[test]
fn the_boot_number_keeps_uuids_apart_when_the_seed_repeats() {
    // Every boot uses the same seed and captures at the same instants: only the log's boot
    // number tells the boots apart.
    let mut d = Device::new(5);
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let mut b = d.boot(PersistPolicy::EveryEvent);
        for n in 0..5 {
            assert!(seen.insert(b.capture(mono(100), n)), "uuid repeated");
        }
        b.deliver(&mut d.flash, mono(200));
    }
    assert_eq!(seen.len(), 15);
    // Without persistence, the same seed and instants repeat the uuids (which is why the seed
    // must otherwise differ per boot).
    let mut twice = BTreeSet::new();
    for _ in 0..2 {
        let mut c = Client::new(
            Config::new("phc_test", 0x5eed),
            Box::leak(Box::new(Resources::<4096, 4, 16, 256>::new())),
        )
        .unwrap();
        let u = c
            .capture(
                mono(100),
                "reading",
                "device-1",
                &EventOptions::new(),
                |_| Ok(()),
            )
            .unwrap();
        twice.insert(u.to_string());
    }
    assert_eq!(twice.len(), 1);
}

const DEFS_V1: &[u8] = br#"{"flags":[{"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;
const DEFS_V2: &[u8] = br#"{"flags":[{"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},{"id":2,"key":"new-ota","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;
const SNAPSHOT: &[u8] = br#"{"flags":[{"id":9,"key":"compiled-in","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}}]}"#;

mod definitions {
    use posthog_embedded::adapters::persist::{self, DefinitionsSource};
    use posthog_embedded::client::{Client, Config, DefinitionsChange, ResponseInfo};
    use posthog_embedded::resources::Resources;
    use posthog_embedded::storage::sim::SimFlash;
    use posthog_embedded::storage::DefinitionsSlot;
    use posthog_embedded::{Instant, Now};

    use super::{block_on, DEFS_V1, DEFS_V2, SNAPSHOT};

    type Flash = SimFlash<4, 1024>;
    const REGION: core::ops::Range<u32> = 0..4096;

    /// A boot: a client whose definitions come from the slot, or the snapshot.
    fn boot(flash: &mut Flash) -> (Client<'static>, DefinitionsSlot, DefinitionsSource) {
        let mut slot = block_on(DefinitionsSlot::mount(flash, REGION)).unwrap();
        let mut c = Client::new(
            Config::new("phc_test", 1).secret_key("phx_secret"),
            Box::leak(Box::new(Resources::<1024, 4, 16, 512>::new())),
        )
        .unwrap();
        let mut doc = [0u8; 1024];
        let src = block_on(persist::restore_definitions(
            &mut slot,
            flash,
            &mut c,
            &mut doc,
            Some(SNAPSHOT),
        ));
        (c, slot, src)
    }

    fn keys(c: &Client<'_>) -> Vec<String> {
        c.flags().keys().map(str::to_owned).collect()
    }

    /// Polls definitions and answers `status` with `body` and `etag`; persists what changed.
    fn poll(
        c: &mut Client<'static>,
        slot: &mut DefinitionsSlot,
        flash: &mut Flash,
        status: u16,
        body: &[u8],
        etag: Option<&str>,
    ) -> (Option<String>, Option<DefinitionsChange>) {
        c.reload();
        let mut buf = vec![0u8; 2048];
        let now = Now::mono(Instant::from_millis(1));
        let tx = c.poll_transmit(now, &mut buf).expect("a poll");
        let inm = tx
            .headers()
            .find(|(k, _)| *k == "If-None-Match")
            .map(|(_, v)| format!("{v:?}"));
        c.handle_response(
            now,
            &ResponseInfo {
                status,
                retry_after: None,
                etag,
            },
            body,
        );
        let change = block_on(persist::persist_definitions(slot, flash, c, body)).unwrap();
        (inm, change)
    }

    #[test]
    fn definitions_and_their_etag_survive_a_reset() {
        let mut flash = Flash::new(4, 1);
        // Nothing on flash: the compiled-in snapshot, and the first poll has no ETag.
        let (mut c, mut slot, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Snapshot);
        assert_eq!(keys(&c), ["compiled-in"]);
        let (inm, change) = poll(&mut c, &mut slot, &mut flash, 200, DEFS_V1, Some("\"v1\""));
        assert_eq!((inm, change), (None, Some(DefinitionsChange::Loaded)));

        // After a reset: the stored copy, and the first poll asks If-None-Match; a 304 keeps
        // them and writes nothing.
        let (mut c, mut slot, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Flash);
        assert_eq!(keys(&c), ["beta-ui"]);
        let erases = flash.erase_counts().iter().sum::<u32>();
        let (inm, change) = poll(&mut c, &mut slot, &mut flash, 304, b"", Some("\"v1\""));
        assert_eq!(inm.as_deref(), Some("\"\\\"v1\\\"\""));
        assert_eq!(change, None);
        assert_eq!(flash.erase_counts().iter().sum::<u32>(), erases);

        // A body that does not load is never written over the last good copy.
        let (_, change) = poll(&mut c, &mut slot, &mut flash, 200, b"{\"flags\": [", None);
        assert_eq!(change, None);
        // A 401 keeps them, in RAM and on flash.
        let (_, change) = poll(&mut c, &mut slot, &mut flash, 401, b"", None);
        assert_eq!(change, None);
        assert_eq!(keys(&c), ["beta-ui"]);
        // New definitions replace the copy.
        let (_, change) = poll(&mut c, &mut slot, &mut flash, 200, DEFS_V2, Some("\"v2\""));
        assert_eq!(change, Some(DefinitionsChange::Loaded));
        let (c, mut slot, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Flash);
        assert_eq!(keys(&c), ["beta-ui", "new-ota"]);
        assert_eq!(c.definitions_etag(), Some("\"v2\""));

        // A 402 (quota) clears them, in RAM and on flash: the next boot has the snapshot.
        let mut c = c;
        let (_, change) = poll(&mut c, &mut slot, &mut flash, 402, b"", None);
        assert_eq!(change, Some(DefinitionsChange::Cleared));
        assert!(keys(&c).is_empty());
        let (_, _, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Snapshot);
    }

    #[test]
    fn a_corrupt_or_torn_copy_falls_back() {
        let mut flash = Flash::new(4, 2);
        let (mut c, mut slot, _) = boot(&mut flash);
        poll(&mut c, &mut slot, &mut flash, 200, DEFS_V1, Some("\"v1\""));
        // A power cut while storing v2 keeps v1.
        flash.cut_power_after(40);
        let r = {
            c.reload();
            let mut buf = vec![0u8; 2048];
            let now = Now::mono(Instant::from_millis(1));
            let _ = c.poll_transmit(now, &mut buf).unwrap();
            c.handle_response(
                now,
                &ResponseInfo {
                    status: 200,
                    retry_after: None,
                    etag: Some("\"v2\""),
                },
                DEFS_V2,
            );
            block_on(persist::persist_definitions(
                &mut slot, &mut flash, &mut c, DEFS_V2,
            ))
        };
        assert!(r.is_err());
        flash.power_on();
        let (c, _, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Flash);
        assert_eq!(keys(&c), ["beta-ui"]);
        assert_eq!(c.definitions_etag(), Some("\"v1\""));
        // Flip a bit in the stored document: the copy is refused, the snapshot is used.
        let at = flash
            .contents()
            .windows(7)
            .position(|w| w == b"beta-ui")
            .unwrap();
        flash.flip_bit(at, 1);
        let (c, _, src) = boot(&mut flash);
        assert_eq!(src, DefinitionsSource::Snapshot);
        assert_eq!(keys(&c), ["compiled-in"]);
    }
}

/// Mounts `pages` pages of `flash` and attaches a fresh offline client with `config` and a
/// `Q`-byte queue, persisting every event.
fn offline_client<const Q: usize>(
    flash: &mut Flash,
    pages: u32,
    config: Config<'static>,
) -> (EventLog, Client<'static>) {
    let (log, mounted) = block_on(EventLog::mount(flash, 0..pages * 1024)).unwrap();
    let resources = Box::leak(Box::new(Resources::<Q, 4, 16, 256>::new()));
    let mut client = Client::new(config, resources).unwrap();
    client.attach_persistence(PersistPolicy::EveryEvent, persist::position(&mounted));
    client.set_online(false);
    (log, client)
}

/// Captures event `n` with a `pad` property of `pad` bytes.
fn capture_padded(c: &mut Client<'_>, now: Now, n: u64, pad: usize) {
    let s = "p".repeat(pad);
    c.capture(now, "reading", "device-1", &EventOptions::new(), |p| {
        p.prop("n", n)?;
        p.prop("pad", s.as_str())?;
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_full_region_records_the_tail_first_and_then_the_clock_anchor() {
    // A region smaller than the queue, so it fills before the queue does.
    let mut flash = Flash::new(2, 20);
    let mut config = Config::new("phc_test", 1);
    config.max_batch_events = 3;
    let (mut log, mut client) = offline_client::<4096>(&mut flash, 2, config);
    let mut buf = [0u8; 1024];
    let mut n = 0;
    while client.persist_stats().full == 0 {
        capture_padded(&mut client, mono(n), n, 200);
        block_on(persist::sync(
            &mut log,
            &mut flash,
            &mut client,
            mono(n),
            &mut buf,
        ));
        n += 1;
    }
    assert!(!client.is_persisted());
    // The wall clock arrives and a batch is delivered: the tail goes first, since only it
    // frees room; the anchor follows.
    client.set_online(true);
    client.flush();
    let mut body = vec![0u8; 8192];
    let now = both(1_000, WALL0);
    assert!(client.poll_transmit(now, &mut body).is_some());
    client.handle_response(now, &ok(), &[]);
    let step = client.next_persist_step(now, &mut buf).unwrap();
    let tail = match step {
        PersistStep::SetTail(t) => t,
        other => panic!("expected the tail first, got {other:?}"),
    };
    // Had the log refused it for want of room, it is not asked again (no busy loop) and
    // flash is not up to date.
    client.finish_persist_step(now, &step, PersistResult::Full);
    assert!(!client.is_persisted());
    assert_eq!(client.next_persist_step(now, &mut buf), None);
    // A later delivery asks for a higher tail; this time the log takes it.
    assert!(client.poll_transmit(now, &mut body).is_some());
    client.handle_response(now, &ok(), &[]);
    let step = client.next_persist_step(now, &mut buf).unwrap();
    assert!(
        matches!(step, PersistStep::SetTail(t) if t > tail),
        "{step:?}"
    );
    let r = block_on(persist::apply(&mut log, &mut flash, &step, &buf));
    assert_eq!(r, PersistResult::Done(None));
    client.finish_persist_step(now, &step, r);
    assert_eq!(
        client.next_persist_step(now, &mut buf),
        Some(PersistStep::Anchor(i64::try_from(WALL0).unwrap() - 1_000))
    );
    block_on(persist::sync(
        &mut log,
        &mut flash,
        &mut client,
        now,
        &mut buf,
    ));
    assert!(client.is_persisted());
    assert_eq!(client.persist_stats().flash_errors, 0);
    // Everything was delivered: nothing comes back.
    let (_, m) = block_on(EventLog::mount(&mut flash, 0..2048)).unwrap();
    assert_eq!(m.restored, 0);
}

#[test]
fn more_unstorable_events_than_break_points_only_delay_persistence() {
    let mut d = Device::new(21);
    let mut b = d.boot(PersistPolicy::EveryEvent);
    b.client.set_online(false);
    // Ten events larger than the staging buffer (RAM only), then one that fits.
    let mut small = [0u8; 240];
    for n in 0..10 {
        capture_padded(&mut b.client, mono(n), n, 120);
    }
    capture_padded(&mut b.client, mono(10), 10, 10);
    block_on(persist::sync(
        &mut b.log,
        &mut d.flash,
        &mut b.client,
        mono(11),
        &mut small,
    ));
    let s = b.client.persist_stats();
    assert!(s.too_large_for_flash >= 7, "{s:?}");
    assert_eq!(b.client.persist_stats().persisted, 0, "waits for the queue");
    // Once they are delivered, persisting goes on.
    b.client.set_online(true);
    assert_eq!(b.deliver(&mut d.flash, mono(100)).len(), 11);
    capture_padded(&mut b.client, mono(200), 11, 10);
    block_on(persist::sync(
        &mut b.log,
        &mut d.flash,
        &mut b.client,
        mono(201),
        &mut small,
    ));
    assert_eq!(b.client.unpersisted(), 0);
    assert!(b.client.is_persisted());
    let b2 = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b2.restored, 1);
}

#[test]
fn an_event_too_large_for_flash_with_every_break_point_in_use_waits_without_spinning() {
    let mut flash = Flash::new(8, 22);
    let (mut log, mut client) = offline_client::<16384>(&mut flash, 8, Config::new("phc_test", 1));
    // Events that fit the staging buffer but not a flash page: each one skipped takes a break
    // point, until none is free.
    for n in 0..10 {
        capture_padded(&mut client, mono(n), n, 800);
    }
    let mut buf = [0u8; 2048];
    assert!(log.max_json() < 1000);
    for _ in 0..20 {
        block_on(persist::sync(
            &mut log,
            &mut flash,
            &mut client,
            mono(20),
            &mut buf,
        ));
    }
    let skipped = client.persist_stats().too_large_for_flash;
    assert!((1..10).contains(&skipped), "{skipped}");
    // The next one waits (no step at once: a runner would spin), and is tried again later.
    assert_eq!(client.next_persist_step(mono(20), &mut buf), None);
    let at = client.persist_timeout().expect("a retry time");
    assert!(matches!(
        client.next_persist_step(Now::mono(at), &mut buf),
        Some(PersistStep::Append { .. })
    ));
}

#[test]
fn a_write_reported_failed_after_it_landed_neither_hides_nor_repeats_an_event() {
    let mut flash = Flash::new(8, 23);
    let (mut log, mut client) = offline_client::<4096>(&mut flash, 8, Config::new("phc_test", 1));
    capture_padded(&mut client, mono(1), 0, 10);
    // Event A is programmed whole, then the flash reports an error.
    let mut buf = [0u8; 1024];
    let step = client.next_persist_step(mono(2), &mut buf).unwrap();
    let PersistStep::Append { len, .. } = step else {
        panic!("{step:?}")
    };
    flash.fail_late_after(((12 + 24 + len) as u64).div_ceil(4) - 1);
    let r = block_on(persist::apply(&mut log, &mut flash, &step, &buf));
    assert_eq!(r, PersistResult::Flash);
    client.finish_persist_step(mono(2), &step, r);
    // A is delivered from RAM before the retry; then B is captured and written.
    client.set_online(true);
    client.flush();
    let mut body = vec![0u8; 8192];
    assert!(client.poll_transmit(mono(3), &mut body).is_some());
    client.handle_response(mono(3), &ok(), &[]);
    capture_padded(&mut client, mono(4), 1, 10);
    block_on(persist::sync(
        &mut log,
        &mut flash,
        &mut client,
        mono(5_000),
        &mut buf,
    ));
    assert!(client.is_persisted());
    // After a reset exactly B comes back: A's copy is done, and B has a number of its own.
    let mut d = Device {
        flash,
        boots: 1,
        queue: 4096,
    };
    let mut b = d.boot(PersistPolicy::EveryEvent);
    assert_eq!(b.restored, 1);
    let sent = b.deliver(&mut d.flash, mono(10));
    assert_eq!(sent.iter().map(n_of).collect::<Vec<_>>(), [1]);
}

/// A client made over `Resources` another client used starts clean: no persistence attached,
/// no `ETag`, whatever the first one left in that storage.
#[test]
fn a_new_client_over_used_resources_starts_clean() {
    let mut flash = Flash::new(4, 3);
    let (_log, mounted) = block_on(EventLog::mount(&mut flash, 0..4 * 1024)).unwrap();
    let mut resources = Resources::<2048, 4, 16, 256>::new();
    {
        let mut first = Client::new(Config::new("phc_k", 1), &mut resources).unwrap();
        first.attach_persistence(PersistPolicy::EveryEvent, persist::position(&mounted));
        first
            .capture(
                mono(1),
                "boot",
                "device-1",
                &EventOptions::new(),
                |_| Ok(()),
            )
            .unwrap();
        first
            .load_definitions_with_etag(br#"{"flags":[]}"#, "\"v1\"")
            .unwrap();
        assert_eq!(first.definitions_etag(), Some("\"v1\""));
        assert_eq!(first.unpersisted(), 1);
    }
    let mut second = Client::new(Config::new("phc_k", 2), &mut resources).unwrap();
    assert_eq!(second.definitions_etag(), None);
    // Not attached: a captured event waits for no flash write.
    second
        .capture(
            mono(2),
            "boot",
            "device-1",
            &EventOptions::new(),
            |_| Ok(()),
        )
        .unwrap();
    assert_eq!(second.unpersisted(), 0);
    assert!(second.is_persisted());
}
