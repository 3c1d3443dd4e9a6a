//! Quick start: what a device sends to PostHog.
//!
//! Simulates a device session on a virtual clock (no wall clock, like most microcontrollers):
//! boot with `$set` device properties, a few sensor readings, an error, then renders the
//! `/batch/` body the device would POST and prints it with a summary.
//!
//! Run: `cargo run --example quickstart`

use posthog_embedded::capture::{
    render_batch, BatchLimits, Encoder, EncoderConfig, EventOptions, OverflowPolicy, Queue,
    BATCH_HEADERS, BATCH_PATH,
};
use posthog_embedded::{Instant, Now};

const API_KEY: &str = "phc_quickstart_example_token";
const DEVICE: &str = "device-8c1f-42";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 4 KiB of event storage: all the RAM the queue will ever use.
    let mut queue = Queue::new([0u8; 4096], OverflowPolicy::DropOldest);
    let mut enc = Encoder::new(EncoderConfig::DEFAULT, 0x5eed_1234);
    let at = |ms| Now::mono(Instant::from_millis(ms));

    // Boot: identify the device with its properties.
    enc.identify(
        &mut queue,
        at(850),
        DEVICE,
        &EventOptions::new(),
        |person| {
            person.set(|p| {
                p.prop("firmware_version", "1.4.2")?
                    .prop("board", "stm32f429-disco")?
                    .prop("region", "eu-west")?;
                Ok(())
            })?;
            person.set_once(|p| {
                p.prop("first_boot_fw", "1.0.0")?;
                Ok(())
            })?;
            Ok(())
        },
    )?;
    enc.capture(
        &mut queue,
        at(900),
        "device booted",
        DEVICE,
        &EventOptions::new(),
        |p| {
            p.prop("reset_reason", "power_on")?
                .prop("boot_ms", 900u32)?;
            Ok(())
        },
    )?;

    // Periodic readings, tagged with the device's fleet group.
    let groups = [("fleet", "eu-west-cold-storage")];
    for (i, temp) in [4.2f32, 4.4, 5.1].into_iter().enumerate() {
        let t = 10_000 * (i as u64 + 1);
        enc.capture(
            &mut queue,
            at(t),
            "sensor reading",
            DEVICE,
            &EventOptions::new().groups(&groups),
            |p| {
                p.prop("temperature_c", temp)?
                    .prop("humidity_pct", 61u8)?
                    .array("samples", |a| {
                        a.push(temp)?.push(temp - 0.1)?;
                        Ok(())
                    })?;
                Ok(())
            },
        )?;
    }
    enc.capture(
        &mut queue,
        at(31_500),
        "sensor error",
        DEVICE,
        &EventOptions::new(),
        |p| {
            p.prop("code", -110i32)?
                .prop("message", "I2C timeout on \"bme280\"")?;
            Ok(())
        },
    )?;

    // Time to send: render the body the device POSTs.
    let send_at = at(35_000);
    let mut body = [0u8; 4096];
    let batch = render_batch(&queue, send_at, API_KEY, &BatchLimits::DEFAULT, &mut body)?
        .ok_or("queue unexpectedly empty")?;
    let json: serde_json::Value = serde_json::from_slice(batch.body(&body))?;

    println!("POST {BATCH_PATH}");
    for (k, v) in BATCH_HEADERS {
        println!("{k}: {v}");
    }
    println!("Content-Length: {}\n", batch.len);
    let mut shown = json.clone();
    shown["api_key"] = "<redacted>".into();
    println!("{}", serde_json::to_string_pretty(&shown)?);

    println!("\nSummary");
    println!("  events in body : {}", batch.events());
    println!("  body size      : {} bytes", batch.len);
    println!(
        "  queue storage  : {} bytes ({} used)",
        queue.capacity(),
        queue.bytes_used()
    );
    for e in json["batch"].as_array().into_iter().flatten() {
        println!(
            "  {:<16} offset {:>6} ms  uuid {}",
            e["event"].as_str().unwrap_or("?"),
            e["offset"],
            e["uuid"].as_str().unwrap_or("?")
        );
    }
    // The server accepted it (2xx): remove exactly those events.
    queue.commit(batch.records);
    println!(
        "  after commit   : {} queued, stats {:?}",
        queue.len(),
        queue.stats()
    );
    Ok(())
}
