//! The event queue against a simple model (a `VecDeque`): pushes of any size under either
//! overflow policy, commits, discards and drops; contents, order, sequence numbers and counters
//! must always agree.
#![no_main]

use std::collections::VecDeque;

use libfuzzer_sys::fuzz_target;
use posthog_embedded::capture::{
    DropReason, OverflowPolicy, PushError, Queue, SeqRange, RECORD_HEADER_LEN,
};
use posthog_embedded::Instant;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, ops)) = data.split_first() else {
        return;
    };
    let cap = 32 + usize::from(ctl) * 2;
    let policy = if ctl & 1 == 0 {
        OverflowPolicy::DropOldest
    } else {
        OverflowPolicy::RejectNewest
    };
    let mut q = Queue::new(vec![0u8; cap], policy);
    let mut model: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut next = 0u64;
    for (i, op) in ops.chunks(2).enumerate() {
        let (a, b) = (op[0], op.get(1).copied().unwrap_or(0));
        match a % 5 {
            0 | 1 => {
                let payload = vec![b; usize::from(a / 5) + usize::from(b % 7)];
                let r = q.push_with(Instant::from_millis(i as u64), b & 1 == 1, |buf| {
                    if let Some(d) = buf.get_mut(..payload.len()) {
                        d.copy_from_slice(&payload);
                    }
                    Ok::<_, ()>(payload.len())
                });
                match r {
                    Ok(seq) => {
                        assert_eq!(seq, next);
                        next += 1;
                        while model.len() + 1 > q.len() {
                            model.pop_front();
                        }
                        model.push_back((seq, payload));
                    }
                    Err(PushError::TooLarge { needed, .. }) => assert!(needed > cap),
                    Err(PushError::Full { .. }) => assert_eq!(policy, OverflowPolicy::RejectNewest),
                    Err(PushError::Write(())) => unreachable!(),
                }
            }
            2 => {
                let range = SeqRange {
                    start: q.front_seq(),
                    end: q.front_seq() + u64::from(b % 4),
                };
                for _ in 0..q.commit(range) {
                    model.pop_front();
                }
            }
            3 => {
                let start = q.front_seq().saturating_sub(u64::from(b % 3));
                let range = SeqRange {
                    start,
                    end: start + u64::from(b % 5),
                };
                for _ in 0..q.discard(range, DropReason::Rejected) {
                    model.pop_front();
                }
            }
            _ => {
                if q.drop_oldest(DropReason::TooLargeForBody).is_some() {
                    model.pop_front();
                }
            }
        }
        let got: Vec<(u64, Vec<u8>)> = q.iter().map(|r| (r.seq, r.json.to_vec())).collect();
        assert_eq!(got, model.iter().cloned().collect::<Vec<_>>());
        let used: usize = model.iter().map(|m| m.1.len() + RECORD_HEADER_LEN).sum();
        assert_eq!(q.bytes_used(), used);
        let s = q.stats();
        assert_eq!(
            s.enqueued as usize,
            q.len()
                + s.committed as usize
                + s.evicted as usize
                + s.discarded_rejected as usize
                + s.discarded_too_large_for_body as usize
        );
    }
});
