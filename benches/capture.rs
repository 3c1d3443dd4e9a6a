//! Capture-path benchmarks: encoding a typical event into the ring, and rendering a batch.
//!
//! Run: `cargo bench --bench capture`. Results are recorded in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use posthog_embedded::capture::{
    render_batch, BatchLimits, Encoder, EncoderConfig, EventOptions, OverflowPolicy, Queue,
    RECORD_HEADER_LEN,
};
use posthog_embedded::{Instant, Now};
use std::hint::black_box;

/// The "typical event" of the issue: five properties of mixed types.
fn capture_typical<S: AsRef<[u8]> + AsMut<[u8]>>(enc: &mut Encoder, q: &mut Queue<S>, now: Now) {
    enc.capture(
        q,
        now,
        "sensor reading",
        "device-8c1f-42",
        &EventOptions::new(),
        |p| {
            p.prop("temperature_c", black_box(21.5f32))?
                .prop("humidity_pct", black_box(61u8))?
                .prop("battery_mv", black_box(3712u16))?
                .prop("firmware", black_box("1.4.2"))?
                .prop("door_open", black_box(false))?;
            Ok(())
        },
    )
    .unwrap();
}

fn benches(c: &mut Criterion) {
    // Report the record size once.
    let mut q = Queue::new([0u8; 4096], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 1);
    capture_typical(&mut enc, &mut q, Now::mono(Instant::from_millis(1)));
    let bytes = q.bytes_used();
    eprintln!(
        "typical 5-property event: {bytes} bytes in the ring ({} header + {} JSON); {} fit in 4 KiB; Queue<[u8; 4096]> is {} bytes",
        RECORD_HEADER_LEN,
        bytes - RECORD_HEADER_LEN,
        4096 / bytes,
        size_of::<Queue<[u8; 4096]>>()
    );

    let mut g = c.benchmark_group("capture");
    g.throughput(Throughput::Elements(1));
    g.bench_function("typical_5_props", |b| {
        // Steady state: the queue is drained whenever it is nearly full (as a sender would), so
        // this is the single-pass fast path.
        let mut q = Queue::new([0u8; 4096], OverflowPolicy::RejectNewest);
        let mut enc = Encoder::new(EncoderConfig::DEFAULT, 2);
        let mut t = 0u64;
        b.iter(|| {
            t += 1;
            if q.bytes_used() > 3500 {
                q.commit(q.seqs());
            }
            capture_typical(&mut enc, &mut q, Now::mono(Instant::from_millis(t)));
        });
    });
    g.bench_function("typical_5_props_full_drop_oldest", |b| {
        // Worst case: the queue is always full, so every capture evicts the oldest record and
        // encodes twice (once to learn the size, once into the freed region).
        let mut q = Queue::new([0u8; 4096], OverflowPolicy::DropOldest);
        let mut enc = Encoder::new(EncoderConfig::DEFAULT, 2);
        let mut t = 0u64;
        b.iter(|| {
            t += 1;
            capture_typical(&mut enc, &mut q, Now::mono(Instant::from_millis(t)));
        });
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    let mut q = Queue::new([0u8; 16384], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 3);
    for t in 0..50 {
        capture_typical(&mut enc, &mut q, Now::mono(Instant::from_millis(t)));
    }
    let mut out = [0u8; 16384];
    g.throughput(Throughput::Elements(50));
    g.bench_function("render_50_events", |b| {
        b.iter(|| {
            let batch = render_batch(
                &q,
                Now::mono(Instant::from_millis(5_000)),
                "phc_token",
                &BatchLimits::DEFAULT,
                &mut out,
            )
            .unwrap()
            .unwrap();
            black_box(batch.len)
        });
    });
    g.finish();
}

criterion_group!(capture, benches);
criterion_main!(capture);
