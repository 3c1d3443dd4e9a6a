//! Drives the sans-IO core by hand: a fake clock, no server, no network. Prints every request
//! the client would send and the answer this program makes up for it, through an outage.
//!
//! ```text
//! cargo run --example manual_drive
//! ```
//!
//! Read it top to bottom: it is the whole contract between the core and a driver
//! (`poll_transmit` → send → `handle_response` / `handle_transport_error`, `poll_timeout` for
//! when to wake up, `set_online` for the link), which the embassy and std drivers implement
//! over real I/O.

use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{
    BatchOutcome, Client, Config, RequestKind, ResponseInfo, RetryAfter, TransportError,
};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Duration, Instant, Now};

/// The device's storage, its capacities named once: 4 KiB of events, a small flag store (4
/// flags, 32 nodes, 512 bytes of text). On firmware it is a `static`.
type DeviceResources = Resources<4096, 4, 32, 512>;

/// What the made-up server does with the next request.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16, Option<u64>),
    NoAnswer(TransportError),
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A real device takes the seed from its hardware RNG: it must differ at every boot.
    let config = Config::new("phc_example_token", 0x5eed_0042)
        .flush_at(3)
        .flush_interval(Duration::from_secs(10))
        .retry(Duration::from_secs(1), Duration::from_secs(60));
    let mut resources = DeviceResources::new();
    let mut client = Client::new(config, &mut resources)?;
    client.set_on_batch(Some(print_outcome));
    let mut buf = [0u8; 2048];

    // The fake clock: milliseconds since boot, advanced by hand.
    let mut t: u64 = 0;
    let now = |t: u64| Now::mono(Instant::from_millis(t));

    // The script of the made-up server: the link is down twice, then PostHog is busy, then
    // everything works.
    let mut answers = [
        Answer::NoAnswer(TransportError::Connect),
        Answer::NoAnswer(TransportError::Timeout),
        Answer::Status(503, None),
        Answer::Status(429, Some(5)),
        Answer::Status(200, None),
    ]
    .into_iter();

    // Readings every 4 s for a minute; three fill a batch (`flush_at = 3`).
    let mut readings = (0..16u32).map(|i| (u64::from(i) * 4_000, i));
    let mut next_reading = readings.next();
    while t <= 120_000 {
        if let Some((at, i)) = next_reading.filter(|(at, _)| *at <= t) {
            let uuid =
                client.capture(now(at), "reading", "device-42", &EventOptions::new(), |p| {
                    p.prop("i", i)?
                        .prop("temperature_c", 20.5 + f64::from(i) / 10.0)?;
                    Ok(())
                })?;
            println!(
                "{:>7} ms  captured reading {i} ({uuid}), {} queued",
                at,
                client.pending()
            );
            next_reading = readings.next();
            continue;
        }
        if t == 30_000 {
            println!("{t:>7} ms  the application sees the link go down: set_online(false)");
            client.set_online(false);
        }
        if t == 50_000 {
            println!("{t:>7} ms  the link is back: set_online(true)");
            client.set_online(true);
        }
        if let Some(tx) = client.poll_transmit(now(t), &mut buf) {
            let what = match tx.kind {
                RequestKind::Batch { records } => format!("{} events", records.len()),
                RequestKind::Definitions => "definitions".to_owned(),
                _ => "other".to_owned(),
            };
            println!(
                "{t:>7} ms  -> {:?} {} ({what}, {} bytes)",
                tx.method,
                tx.path,
                tx.body.len()
            );
            // Here a driver writes the request and waits for the answer.
            t += 120;
            match answers.next().unwrap_or(Answer::Status(200, None)) {
                Answer::Status(status, retry_after) => {
                    println!("{t:>7} ms  <- {status}");
                    let info = ResponseInfo {
                        status,
                        retry_after: retry_after.map(|s| RetryAfter::Delay(Duration::from_secs(s))),
                        etag: None,
                    };
                    client.handle_response(now(t), &info, b"");
                }
                Answer::NoAnswer(e) => {
                    println!("{t:>7} ms  <- no answer: {e}");
                    client.handle_transport_error(now(t), e);
                }
            }
            continue;
        }
        // Nothing to send: sleep until the client's deadline or the next reading.
        let wake = [
            client.poll_timeout().map(Instant::as_millis),
            next_reading.map(|(at, _)| at),
            [30_000, 50_000].into_iter().find(|&h| h > t),
        ]
        .into_iter()
        .flatten()
        .min();
        match wake {
            Some(w) => t = w.max(t + 1),
            None => break,
        }
    }
    let s = client.stats();
    println!(
        "\ncaptured {}, delivered {}, dropped {}, retries {}, requests {}, still queued {}",
        s.captured,
        s.sent,
        s.queue.dropped(),
        s.retries,
        s.requests,
        client.pending()
    );
    assert_eq!(s.sent, s.captured, "an outage drops nothing");
    Ok(())
}

/// The batch callback: how each batch ended.
fn print_outcome(outcome: &BatchOutcome) {
    match outcome {
        BatchOutcome::Delivered { records } => {
            println!(
                "            events {}..{} delivered",
                records.start, records.end
            );
        }
        BatchOutcome::Retrying { records, error, at } => println!(
            "            events {}..{} kept: {error}; next attempt at {} ms",
            records.start,
            records.end,
            at.as_millis()
        ),
        other => println!("            {other:?}"),
    }
}
