//! A power cut at every step of seeded workloads: after the cut the log mounts, holds exactly
//! the events it acknowledged (plus, at most, the one being written, intact), never one it was
//! told was delivered, and goes on working. The simulated flash panics if any word is written
//! twice between erases, so a log that wrote into torn space would fail here too.

use std::collections::BTreeMap;

use posthog_embedded::capture::OverflowPolicy;
use posthog_embedded::storage::sim::SimFlash;
use posthog_embedded::storage::{AppendError, EventLog};
use posthog_embedded::time::Instant;

use super::block_on;

#[derive(Clone, Copy, Debug)]
enum Op {
    Append(usize),
    /// Deliver this fraction (of 8) of the stored events.
    Deliver(u64),
    Anchor,
    Reboot,
    Read,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn workload(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    (0..len)
        .map(|_| match rng.below(100) {
            0..=67 => Op::Append(10 + rng.below(240) as usize),
            68..=83 => Op::Deliver(1 + rng.below(8)),
            84..=86 => Op::Anchor,
            87..=91 => Op::Reboot,
            _ => Op::Read,
        })
        .collect()
}

fn event_json(seq: u64, len: usize) -> Vec<u8> {
    let mut v = format!("{{\"uuid\":\"{seq:032}\",\"p\":\"").into_bytes();
    while v.len() + 2 < len.max(48) {
        v.push(b'a' + (seq * 7 + v.len() as u64) as u8 % 26);
    }
    v.extend_from_slice(b"\"}");
    v
}

/// What the workload was told.
#[derive(Default)]
struct Model {
    acked: BTreeMap<u64, Vec<u8>>,
    inflight: Option<(u64, Vec<u8>)>,
    /// Highest tail whose recording returned Ok: nothing below it may come back.
    tail_acked: u64,
    /// The log's tail in RAM when the power went: everything acknowledged from here on must
    /// come back.
    tail_required: u64,
    /// Highest boot number recorded on flash.
    boot: u32,
}

fn read_all<const W: usize, const E: usize>(
    log: &mut EventLog,
    f: &mut SimFlash<W, E>,
) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    let mut from = 0;
    while let Some(ev) = block_on(log.read(f, from, &mut buf)).expect("read") {
        out.push((ev.seq, buf[..ev.len].to_vec()));
        from = ev.seq + 1;
    }
    out
}

/// Checks what a mounted log holds against the model.
fn check(found: &[(u64, Vec<u8>)], m: &Model, ctx: &str) {
    let mut last = None;
    for (seq, json) in found {
        assert!(
            last < Some(*seq),
            "{ctx}: sequence numbers not increasing at {seq}"
        );
        last = Some(*seq);
        assert!(
            *seq >= m.tail_acked,
            "{ctx}: event {seq} came back below the recorded tail {}",
            m.tail_acked
        );
        let known = m.acked.get(seq).or(m
            .inflight
            .as_ref()
            .filter(|(s, _)| s == seq)
            .map(|(_, j)| j));
        assert_eq!(
            known,
            Some(json),
            "{ctx}: event {seq} is not what was written"
        );
    }
    for seq in m.acked.range(m.tail_required..).map(|(s, _)| s) {
        assert!(
            found.iter().any(|(s, _)| s == seq),
            "{ctx}: acknowledged event {seq} lost (required from {}); found {:?}, acked {:?}",
            m.tail_required,
            found.iter().map(|e| e.0).collect::<Vec<_>>(),
            m.acked.keys().collect::<Vec<_>>()
        );
    }
}

fn mount<const W: usize, const E: usize>(
    f: &mut SimFlash<W, E>,
    pages: u32,
    m: &mut Model,
    ctx: &str,
) -> EventLog {
    let (mut log, mounted) = block_on(EventLog::mount(f, 0..pages * E as u32))
        .unwrap_or_else(|e| panic!("{ctx}: mount failed: {e}"));
    if f.is_off() {
        // The cut hit the boot record: what counts is the next mount.
        return log;
    }
    assert!(
        mounted.boot > m.boot,
        "{ctx}: boot {} repeated",
        mounted.boot
    );
    if mounted.boot_recorded {
        m.boot = mounted.boot;
    }
    let found = read_all(&mut log, f);
    check(&found, m, ctx);
    assert_eq!(
        mounted.restored as usize,
        found.len(),
        "{ctx}: restored count"
    );
    log
}

/// Runs `ops`, cutting the power after `cut` steps; returns the steps a whole run takes.
fn run<const W: usize, const E: usize>(
    seed: u64,
    pages: u32,
    policy: OverflowPolicy,
    ops: &[Op],
    cut: Option<u64>,
) -> u64 {
    let ctx = format!("seed {seed} W {W} E {E} {policy:?} cut {cut:?}");
    let mut f = SimFlash::<W, E>::new(pages as usize, seed);
    let mut m = Model::default();
    let mut log = mount(&mut f, pages, &mut m, &ctx);
    if let Some(c) = cut {
        f.cut_power_after(c.saturating_sub(f.steps()));
    }
    let mut clock = 0u64;
    for op in ops {
        if f.is_off() {
            break;
        }
        clock += 17;
        m.tail_required = m.tail_required.max(log.tail());
        match *op {
            Op::Append(len) => {
                let seq = log.next_seq();
                let json = event_json(seq, len);
                match block_on(log.append(&mut f, 0, Instant::from_millis(clock), &json, policy)) {
                    Ok(got) => {
                        assert_eq!(got, seq, "{ctx}: numbering");
                        m.acked.insert(seq, json);
                    }
                    Err(AppendError::Full | AppendError::TooLarge { .. }) => {}
                    Err(AppendError::Flash(_)) => {
                        assert!(f.is_off(), "{ctx}: flash error without a cut");
                        m.inflight = Some((seq, json));
                    }
                    Err(e) => panic!("{ctx}: {e}"),
                }
            }
            Op::Deliver(eighths) => {
                let live: Vec<u64> = m.acked.range(log.tail()..).map(|(s, _)| *s).collect();
                let n = live.len() as u64 * eighths / 8;
                if n > 0 {
                    let t = live[n as usize - 1] + 1;
                    if block_on(log.set_tail(&mut f, t)).is_ok() {
                        m.tail_acked = t;
                    }
                }
            }
            Op::Anchor => {
                let _ = block_on(log.record_anchor(&mut f, 1_700_000_000_000));
            }
            Op::Reboot => {
                m.tail_required = m.tail_required.max(log.tail());
                log = mount(&mut f, pages, &mut m, &format!("{ctx} (clean reboot)"));
            }
            Op::Read => {
                let found = read_all(&mut log, &mut f);
                m.tail_required = m.tail_required.max(log.tail());
                check(&found, &m, &format!("{ctx} (read)"));
            }
        }
        // Events the policy dropped to make room need not come back.
        m.tail_required = m.tail_required.max(log.tail());
    }
    let steps = f.steps();
    if cut.is_some() && f.is_off() {
        // Power back on: the log must mount, hold what the model says and go on working.
        f.power_on();
        let after = format!("{ctx} (after the cut)");
        let mut log = mount(&mut f, pages, &mut m, &after);
        m.inflight = None;
        let mut found = read_all(&mut log, &mut f);
        found.retain(|(s, _)| !m.acked.contains_key(s));
        for (seq, json) in found {
            m.acked.insert(seq, json);
        }
        for i in 0..3 {
            let seq = log.next_seq();
            let json = event_json(seq, 40 + i * 30);
            match block_on(log.append(&mut f, 0, Instant::from_millis(i as u64), &json, policy)) {
                Ok(got) => {
                    assert_eq!(got, seq, "{after}: numbering");
                    m.acked.insert(seq, json);
                }
                Err(AppendError::Full) => {}
                Err(e) => panic!("{after}: append after the cut: {e}"),
            }
        }
        m.tail_required = m.tail_required.max(log.tail());
        let _ = mount(&mut f, pages, &mut m, &format!("{after}, remounted"));
    }
    steps
}

/// Every cut point of each workload; returns how many were tested.
fn sweep<const W: usize, const E: usize>(
    seeds: std::ops::Range<u64>,
    pages: u32,
    ops: usize,
) -> u64 {
    let mut points = 0;
    for seed in seeds {
        let policy = if seed % 2 == 0 {
            OverflowPolicy::RejectNewest
        } else {
            OverflowPolicy::DropOldest
        };
        let w = workload(seed, ops);
        let total = run::<W, E>(seed, pages, policy, &w, None);
        for cut in 0..=total {
            let r = std::panic::catch_unwind(|| run::<W, E>(seed, pages, policy, &w, Some(cut)));
            if let Err(e) = r {
                eprintln!("failed: seed {seed} W {W} E {E} pages {pages} cut {cut}");
                std::panic::resume_unwind(e);
            }
            points += 1;
        }
    }
    points
}

#[test]
fn a_power_cut_at_every_step_loses_nothing_acknowledged() {
    let small = sweep::<4, 512>(0..6, 4, 60);
    let wide = sweep::<32, 1024>(100..104, 3, 60);
    let many = sweep::<8, 256>(200..203, 6, 60);
    let total = small + wide + many;
    println!(
        "power cuts tested: {total} ({small} with 4-byte words and 512-byte pages, {wide} with \
         32-byte words, {many} with 8-byte words and 256-byte pages)"
    );
    assert!(total >= 10_000, "only {total} cut points");
}

#[test]
fn injected_flash_errors_never_lose_acknowledged_events() {
    // A clean failure at every step: the operation reports it, the log goes on, and a remount
    // holds every acknowledged event.
    let w = workload(7, 50);
    let total = run::<4, 512>(7, 4, OverflowPolicy::RejectNewest, &w, None);
    for fail in 0..total {
        let ctx = format!("fail at {fail}");
        let mut f = SimFlash::<4, 512>::new(4, 7);
        let mut m = Model::default();
        let mut log = mount(&mut f, 4, &mut m, &ctx);
        f.fail_after(fail.saturating_sub(f.steps()));
        for (i, op) in w.iter().enumerate() {
            if let Op::Append(len) = *op {
                let seq = log.next_seq();
                let json = event_json(seq, len);
                if block_on(log.append(
                    &mut f,
                    0,
                    Instant::from_millis(i as u64),
                    &json,
                    OverflowPolicy::RejectNewest,
                ))
                .is_ok()
                {
                    m.acked.insert(seq, json);
                }
            } else if let Op::Deliver(eighths) = *op {
                let live: Vec<u64> = m.acked.range(log.tail()..).map(|(s, _)| *s).collect();
                let n = live.len() as u64 * eighths / 8;
                if n > 0 {
                    let t = live[n as usize - 1] + 1;
                    if block_on(log.set_tail(&mut f, t)).is_ok() {
                        m.tail_acked = t;
                    }
                }
            }
        }
        m.tail_required = m.tail_required.max(log.tail());
        let _ = mount(&mut f, 4, &mut m, &ctx);
    }
}
