//! Quick start: a simulated device evaluates flags and sends its telemetry, end to end.
//!
//! ```text
//! cargo run -p posthog-embedded-devtools --example quickstart
//! ```
//!
//! With no settings it starts the crate's local PostHog-compatible server in-process, on an
//! ephemeral loopback port, and shows what that server received. With `POSTHOG_HOST` and
//! `POSTHOG_API_KEY` set (say `https://eu.i.posthog.com` and your `phc_…` key) it sends to
//! PostHog instead.
//!
//! The device is the real thing, sized for a microcontroller: the same `Client` firmware uses,
//! over the same `Resources` (4 KiB of event queue, 20 flags), with a monotonic clock only (no wall clock, like most
//! MCUs), so events carry `offset` and the server places them in time. The loop at the end is
//! the whole driver: ask the client what to send, send it, hand back the answer. On firmware
//! the embassy driver runs that loop over a TCP socket or a UART modem.

use std::time::{Duration, Instant as StdInstant};

use posthog_embedded::adapters::std::{StdConfig, UreqTransport};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config};
use posthog_embedded::flags::{EvalContext, PropertyValue};
use posthog_embedded::resources::Resources;
use posthog_embedded::{Instant, Now};
use posthog_embedded_devtools::server::{LocalServer, ReceivedEvent, ServerConfig};

const DEVICE: &str = "device-8c1f-42";
const DEFINITIONS: &[u8] = include_bytes!("../../examples/data/sample_definitions.json");
const LOCAL_TOKEN: &str = "phc_quickstart_local";

/// The device's storage, its capacities named once: 4 KiB of events, 20 flags, 128 filter
/// nodes, 2 KiB of flag text (and the default 256 `$feature_flag_called` entries). The client
/// borrows it; on firmware it is a `static`.
type DeviceResources = Resources<4096, 20, 128, 2048>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // --- Where events go: PostHog, or a local server in this process. ---------------------
    let remote = match (
        std::env::var("POSTHOG_HOST"),
        std::env::var("POSTHOG_API_KEY"),
    ) {
        (Ok(h), Ok(k)) if !h.trim().is_empty() && !k.trim().is_empty() => Some((h, k)),
        _ => None,
    };
    let server = match remote {
        Some(_) => None,
        None => Some(LocalServer::start(ServerConfig::default().definitions(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/data/sample_definitions.json"
            ),
        ))?),
    };
    let (host, token): (String, &str) = match (&remote, &server) {
        (Some((h, k)), _) => (h.clone(), k.as_str()),
        (None, Some(s)) => (s.url(), LOCAL_TOKEN),
        (None, None) => unreachable!("a server is started when no host is set"),
    };
    let transport = UreqTransport::new(&StdConfig::new(token, 0x8c1f_0042).host(host.clone()))?;

    println!("posthog-embedded quick start\n");
    match &server {
        Some(_) => println!(
            "  server  local PostHog-compatible server at {host}\n          (set POSTHOG_HOST and POSTHOG_API_KEY to send to PostHog instead)"
        ),
        None => println!("  server  {host} (POSTHOG_HOST)"),
    }
    println!(
        "  device  {DEVICE}: Resources<4096, 20, 128, 2048> + Client, {} bytes of RAM on this host \
         (16,304 on a Cortex-M4), monotonic clock only",
        size_of::<DeviceResources>() + size_of::<Client<'_>>()
    );

    // --- The device boots. ----------------------------------------------------------------
    // A virtual monotonic clock: the session below spans 36 s of device time and runs at once.
    let at = |ms: u64| Now::mono(Instant::from_millis(ms));
    // The seed draws the boot id of the event uuids: a real device takes it from its hardware
    // RNG (or hashes its chip id with a boot counter kept in flash).
    let mut resources = DeviceResources::new();
    let mut device = Client::new(Config::new(token, 0x8c1f_0042).flush_at(50), &mut resources)?;
    let req = device.load_definitions(DEFINITIONS)?;
    println!(
        "  flags   {} loaded from examples/data/sample_definitions.json ({} nodes, {} bytes of text)\n",
        req.flags, req.nodes, req.bytes
    );

    let person = [
        ("firmware_version", PropertyValue::Str("1.4.2")),
        ("board", PropertyValue::Str("stm32f429-disco")),
        ("region", PropertyValue::Str("eu-west")),
        ("serial", PropertyValue::Str("SN-0042-LAB")),
        ("has_imu", PropertyValue::Bool(true)),
        ("battery_mv", PropertyValue::Int(3712)),
    ];
    let ctx = EvalContext {
        distinct_id: DEVICE,
        device_id: None,
        person: &person,
        groups: &[],
    };

    device.identify(at(850), DEVICE, &EventOptions::new(), |p| {
        p.set(|s| {
            s.prop("firmware_version", "1.4.2")?
                .prop("board", "stm32f429-disco")?
                .prop("region", "eu-west")?
                .prop("serial", "SN-0042-LAB")?;
            Ok(())
        })?;
        p.set_once(|s| {
            s.prop("first_boot_fw", "1.0.0")?;
            Ok(())
        })?;
        Ok(())
    })?;
    device.capture(
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

    // --- Flags, decided on the device (each read queues one $feature_flag_called). -------
    println!("Flags evaluated on the device:");
    let mut sampling_ms = 10_000u32;
    for key in [
        "new-sampling-rate",
        "ota-updates",
        "sensor-fusion",
        "lab-devices",
        "watchdog-tuning",
    ] {
        // A `FlagValue` is `Copy` and owns its variant: it does not borrow the client.
        let line = match device.feature_flag(at(1_000), key, &ctx, true) {
            Ok(v) => {
                let payload = device.flags().payload(key, &v).unwrap_or("-");
                if key == "new-sampling-rate" && v.is_enabled() {
                    sampling_ms = 5_000;
                }
                format!("{:<8} payload {payload}", v.to_string())
            }
            Err(e) => format!("{e}: the device would ask the server (/flags)"),
        };
        println!("  {key:<18} {line}");
    }

    // --- Telemetry. ----------------------------------------------------------------------
    let fleet = [("fleet", "eu-west-cold-storage")];
    let mut t = 1_000u64;
    for (i, temp) in [4.2f32, 4.4, 5.1, 4.9].into_iter().enumerate() {
        t += u64::from(sampling_ms);
        device.capture(
            at(t),
            "sensor reading",
            DEVICE,
            &EventOptions::new().groups(&fleet),
            |p| {
                p.prop("temperature_c", temp)?
                    .prop("humidity_pct", 61u8 + i as u8)?
                    .prop("sampling_ms", sampling_ms)?;
                Ok(())
            },
        )?;
    }
    // Gated by a flag: only devices in the OTA rollout check for updates.
    if device.is_feature_enabled(at(t), "ota-updates", &ctx, false)? {
        device.capture(
            at(t + 200),
            "ota check",
            DEVICE,
            &EventOptions::new(),
            |p| {
                p.prop("channel", "beta")?.prop("current", "1.4.2")?;
                Ok(())
            },
        )?;
    }
    device.capture(
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
    let captured = device.stats().captured;
    println!(
        "\nDevice session: {captured} events queued over 31.5 s of device time, {} bytes of the 4 KiB ring",
        device.queue().bytes_used()
    );

    // --- Send: the whole driver loop. ----------------------------------------------------
    device.flush();
    let mut body = [0u8; 4096];
    let started = StdInstant::now();
    let send_at = 36_000u64;
    let now = || at(send_at + u64::try_from(started.elapsed().as_millis()).unwrap_or(0));
    let mut statuses = Vec::new();
    while device.pending() > 0 && started.elapsed() < Duration::from_secs(20) {
        if let Some(tx) = device.poll_transmit(now(), &mut body) {
            let path = tx.path.to_string();
            let len = tx.body.len();
            let result = transport.send(&tx);
            match result {
                Ok(resp) => {
                    statuses.push(format!("POST {path} ({len} bytes) -> {}", resp.status));
                    device.handle_response(now(), &resp.info(), &resp.body);
                }
                Err(e) => {
                    statuses.push(format!("POST {path} ({len} bytes) -> {e}"));
                    device.handle_transport_error(now(), e);
                }
            }
        } else if let Some(wake) = device.poll_timeout() {
            let wait = wake.as_millis().saturating_sub(now().mono.as_millis());
            std::thread::sleep(Duration::from_millis(wait.min(1_000)));
        }
    }
    println!("Sent:");
    for s in &statuses {
        println!("  {s}");
    }
    let stats = device.stats();
    println!(
        "  delivered {}, dropped {}, still queued {}",
        stats.sent,
        stats.queue.dropped(),
        device.pending()
    );

    // --- What the server saw. ------------------------------------------------------------
    if let Some(server) = &server {
        server.wait_for_events(captured as usize, Duration::from_secs(5));
        let events = server.events();
        println!(
            "\nThe server received {} events (time = arrival - offset, as PostHog computes it):",
            events.len()
        );
        for e in &events {
            println!("  {}", describe(e));
        }
        if let Some(first) = events.iter().find(|e| e.name() == "sensor reading") {
            println!(
                "\nOne event as it went over the wire:\n{}",
                serde_json::to_string_pretty(&first.event)?
            );
        }
        let problems: usize = events.iter().map(|e| e.problems.len()).sum();
        println!(
            "\nSummary: {captured} captured, {} delivered, {} received, {problems} problems.",
            stats.sent,
            events.len()
        );
        if problems > 0 || events.len() != captured as usize {
            return Err("the server did not receive every event intact".into());
        }
    } else {
        println!(
            "\nSummary: {captured} captured, {} delivered. See them in PostHog's activity view.",
            stats.sent
        );
        if stats.sent != captured {
            return Err("not every event was delivered".into());
        }
    }
    Ok(())
}

fn describe(e: &ReceivedEvent) -> String {
    let time = posthog_embedded_devtools::validate::iso(e.time);
    let offset = e
        .event
        .get("offset")
        .map_or_else(|| "-".to_owned(), |o| format!("{o} ms"));
    let detail = match e.name() {
        "$feature_flag_called" => format!(
            "{} = {}",
            e.property("$feature_flag")
                .and_then(|v| v.as_str())
                .unwrap_or("?"),
            e.property("$feature_flag_response")
                .map(|v| v.to_string())
                .unwrap_or_default()
        ),
        "sensor reading" => format!(
            "temperature_c = {}",
            e.property("temperature_c")
                .map(|v| v.to_string())
                .unwrap_or_default()
        ),
        "$identify" => "person properties $set".to_owned(),
        _ => String::new(),
    };
    let ok = if e.problems.is_empty() {
        "ok".to_owned()
    } else {
        e.problems.join("; ")
    };
    format!(
        "{}  {:<21} offset {:>9}  {:<28} {ok}",
        time.get(11..23).unwrap_or(&time),
        e.name(),
        offset,
        detail
    )
}
