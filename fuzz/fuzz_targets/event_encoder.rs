//! Arbitrary event names, ids and property keys/values must give valid JSON bodies (checked with
//! serde_json) or a typed error; the queue must never panic or store a torn record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use posthog_embedded::capture::{
    render_batch, BatchLimits, DropReason, Encoder, EncoderConfig, EventOptions, OverflowPolicy,
    Queue,
};
use posthog_embedded::{BatchError, Instant, Now};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let parts: Vec<&str> = text.split('\u{1}').collect();
    let get = |i: usize| parts.get(i).copied().unwrap_or("");
    let policy = if ctl & 1 == 0 {
        OverflowPolicy::DropOldest
    } else {
        OverflowPolicy::RejectNewest
    };
    let mut q = Queue::new(vec![0u8; 64 + usize::from(ctl) * 4], policy);
    let mut enc = Encoder::new(
        EncoderConfig::DEFAULT.max_key_len(usize::from(ctl % 64) + 1),
        u64::from(ctl),
    );
    let groups = [(get(2), get(3))];
    let opts = if ctl & 2 == 0 {
        EventOptions::new()
    } else {
        EventOptions::new().groups(&groups)
    };
    for round in 0..4u64 {
        let now = Now::mono(Instant::from_millis(round * 1000));
        let _ = enc.capture(&mut q, now, get(0), get(1), &opts, |p| {
            for (i, kv) in parts.iter().enumerate().skip(4) {
                match (i + usize::from(ctl)) % 5 {
                    0 => p.prop(kv, *kv)?,
                    1 => p.prop(kv, kv.len() as f64 / 3.0)?,
                    2 => p.object(kv, |o| {
                        o.prop(kv, i as i64 - 3)?;
                        Ok(())
                    })?,
                    3 => p.array(kv, |a| {
                        a.push(*kv)?.push(None::<u8>)?;
                        Ok(())
                    })?,
                    _ => p.prop(kv, f64::from_bits(kv.len() as u64 * 0x0101_0101_0101))?,
                };
            }
            Ok(())
        });
    }
    let mut out = vec![0u8; 32 + usize::from(ctl) * 8];
    for _ in 0..8 {
        match render_batch(
            &q,
            Now::mono(Instant::from_millis(9999)),
            get(1),
            &BatchLimits::DEFAULT,
            &mut out,
        ) {
            Ok(Some(b)) => {
                let v: serde_json::Value =
                    serde_json::from_slice(b.body(&out)).expect("rendered body must be valid JSON");
                assert_eq!(
                    v["batch"].as_array().map(Vec::len),
                    Some(b.events() as usize)
                );
                assert_eq!(q.commit(b.records) as u64, b.events());
            }
            Ok(None) => break,
            Err(BatchError::RecordTooLarge { .. }) => {
                q.drop_oldest(DropReason::TooLargeForBody);
            }
            Err(_) => break,
        }
    }
    let s = q.stats();
    assert_eq!(
        s.enqueued as usize,
        q.len() + (s.committed + s.evicted + s.discarded_too_large_for_body) as usize
    );
});
