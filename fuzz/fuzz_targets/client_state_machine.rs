//! The client under arbitrary sequences of captures, flushes, time steps, responses and
//! transport errors. Invariants: no event acknowledged twice, uuids stable across attempts,
//! and after a healthy drain every captured event is delivered or counted as dropped.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use posthog_embedded::capture::{EventOptions, OverflowPolicy};
use posthog_embedded::client::{
    Client, Config, GiveUp, RequestKind, ResponseInfo, RetryAfter, TransportError,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Duration, Instant, Now};

type R = Resources<2048, 2, 16, 256>;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, ops)) = data.split_first() else {
        return;
    };
    let give_up = match ctl % 4 {
        0 => GiveUp::Never,
        1 => GiveUp::OlderThan(Duration::from_millis(500)),
        n => GiveUp::AfterAttempts(u16::from(n)),
    };
    let config = Config::new("phc_fuzz", u64::from(ctl))
        .flush_at(1 + usize::from(ctl % 8))
        .max_batch_events(1 + usize::from(ctl % 13))
        .give_up(give_up)
        .retry(Duration::from_millis(10), Duration::from_millis(200))
        .overflow(if ctl & 0x80 == 0 {
            OverflowPolicy::DropOldest
        } else {
            OverflowPolicy::RejectNewest
        });
    let mut resources = Box::new(R::new());
    let mut c = Client::new(config, &mut resources).expect("a valid configuration");
    let mut buf = vec![0u8; 600 + usize::from(ctl) * 4];
    let mut t = 0u64;
    let mut n = 0u64;
    let mut uuid_of: BTreeMap<u64, String> = BTreeMap::new();
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut captured = 0u32;
    let mut in_flight: Option<Vec<String>> = None;
    let ops_len = ops.len();
    for (i, &op) in ops
        .iter()
        .chain(std::iter::repeat(&0xff).take(4000))
        .enumerate()
    {
        let healthy = i >= ops_len;
        let now = Now::mono(Instant::from_millis(t));
        match (op % 8, healthy) {
            (0 | 1, false) => {
                let pad = "p".repeat(usize::from(op / 8) * 3);
                if c.capture(now, "e", "d", &EventOptions::new(), |p| {
                    p.prop("n", n)?.prop("pad", pad.as_str())?;
                    Ok(())
                })
                .is_ok()
                {
                    captured += 1;
                }
                n += 1;
            }
            (2, false) => c.flush(),
            (3, false) => t += u64::from(op),
            _ => {
                if let Some(uuids) = in_flight.take() {
                    let status = if healthy {
                        200
                    } else {
                        [200, 204, 400, 408, 413, 429, 500, 502, 503, 504, 0]
                            [usize::from(op / 8) % 11]
                    };
                    if status == 0 {
                        c.handle_transport_error(now, TransportError::Timeout);
                    } else {
                        if (200..300).contains(&status) {
                            for u in uuids {
                                assert!(acked.insert(u), "an event was acknowledged twice");
                            }
                        }
                        let info = ResponseInfo {
                            status,
                            retry_after: (status == 429)
                                .then_some(RetryAfter::Delay(Duration::from_millis(50))),
                            etag: None,
                        };
                        c.handle_response(now, &info, b"");
                    }
                } else {
                    if healthy {
                        c.flush();
                        if c.pending() == 0 {
                            break;
                        }
                        if let Some(d) = c.poll_timeout() {
                            t = t.max(d.as_millis());
                        }
                    }
                    let now = Now::mono(Instant::from_millis(t));
                    if let Some(tx) = c.poll_transmit(now, &mut buf) {
                        assert!(matches!(tx.kind, RequestKind::Batch { .. }));
                        let body: serde_json::Value =
                            serde_json::from_slice(tx.body).expect("valid body");
                        let mut uuids = Vec::new();
                        for e in body["batch"].as_array().unwrap() {
                            let n = e["properties"]["n"].as_u64().unwrap();
                            let u = e["uuid"].as_str().unwrap().to_owned();
                            assert_eq!(
                                uuid_of.entry(n).or_insert_with(|| u.clone()),
                                &u,
                                "uuid changed"
                            );
                            uuids.push(u);
                        }
                        in_flight = Some(uuids);
                    } else {
                        t += 7;
                    }
                }
            }
        }
    }
    if c.pending() == 0 && in_flight.is_none() {
        let s = c.stats();
        let q = s.queue;
        let dropped =
            q.evicted + q.discarded_rejected + q.discarded_gave_up + q.discarded_too_large_for_body;
        assert_eq!(s.captured, captured);
        assert_eq!(
            s.captured + s.evicted_then_delivered,
            s.sent + dropped,
            "{s:?}"
        );
        assert_eq!(s.sent as usize, acked.len());
    }
});
