//! The operations the size and instruction-count binaries measure, shared so that every binary
//! does exactly the same work. (Included with `#[path]`: the size binaries link nothing else.)

#![allow(dead_code)] // each binary uses a part

use core::hint::black_box;

use posthog_embedded::capture::{render_batch, Batch, BatchLimits, Encoder, EventOptions, Queue};
use posthog_embedded::flags::{EvalContext, FlagStore, FlagValue, Inconclusive, PropertyValue};
use posthog_embedded::{BatchError, CaptureError, Instant, Now};

pub const API_KEY: &str = "phc_firmware_e2e_key";
pub const DEVICE_ID: &str = "mps2-an386-0042";

/// Flag definitions as `/flags/definitions` returns them (20 flags), compiled into flash.
pub static DEFINITIONS: &[u8] = include_bytes!("../../data/sample_definitions.json");

/// Event queue and request body sizes.
pub const QUEUE_BYTES: usize = 4096;
pub const BODY_BYTES: usize = 4096;

/// The flag store: the sample needs 20 flags, 75 nodes and 1,077 bytes of text and compiled patterns.
pub type Store = FlagStore<20, 96, 1152>;

/// A typical reading: 5 properties (an integer, a float, a small integer and two strings).
pub fn capture_reading<S: AsRef<[u8]> + AsMut<[u8]>>(
    encoder: &mut Encoder,
    queue: &mut Queue<S>,
    now: Now,
    sample: u32,
) -> Result<(), CaptureError> {
    encoder.capture(
        queue,
        now,
        black_box("sensor reading"),
        black_box(DEVICE_ID),
        &EventOptions::new(),
        |p| {
            p.prop("uptime_ms", now.mono.as_millis())?
                .prop("sample", sample)?
                .prop("temperature_c", black_box(21.5f32))?
                .prop("battery_mv", black_box(3712u16))?
                .prop("sensor", black_box("bme280"))?;
            Ok(())
        },
    )?;
    Ok(())
}

/// Renders the queued events into `body`, 5 s after they were captured.
pub fn render<S: AsRef<[u8]> + AsMut<[u8]>>(
    queue: &Queue<S>,
    body: &mut [u8],
) -> Result<Option<Batch>, BatchError> {
    let later = Now::mono(Instant::from_millis(black_box(6_000)));
    render_batch(
        queue,
        later,
        black_box(API_KEY),
        &BatchLimits::DEFAULT,
        body,
    )
}

/// The device's person properties.
pub const DEVICE_PROPERTIES: [(&str, PropertyValue<'static>); 3] = [
    ("firmware_version", PropertyValue::Str("1.4.2")),
    ("board", PropertyValue::Str("mps2-an386")),
    ("region", PropertyValue::Str("eu-west")),
];

/// A rollout flag, a semver property filter, a multivariate flag.
pub const ROLLOUT_FLAG: &str = "ota-updates";
pub const SEMVER_FLAG: &str = "new-sampling-rate";
pub const MULTIVARIATE_FLAG: &str = "display-theme";

/// Evaluates `key` for this device.
pub fn evaluate(store: &Store, key: &str) -> Result<FlagValue, Inconclusive> {
    let props = black_box(&DEVICE_PROPERTIES);
    let ctx = EvalContext {
        distinct_id: black_box(DEVICE_ID),
        device_id: None,
        person: props,
        groups: &[],
    };
    store.evaluate(black_box(key), &ctx, None)
}

// RAM figures the README and the quick start quote, checked on the target itself at compile
// time: the storage of a client with a 4 KiB queue, 20 flags, 128 nodes, 2 KiB of flag text and
// the default 256-entry `$feature_flag_called` tracker (and its `ETag`; with the `storage`
// feature, 256 bytes more of persistence bookkeeping); the client borrowing it; and the 4 KiB
// queue alone.
#[cfg(not(feature = "persist"))]
const _: () = assert!(
    core::mem::size_of::<posthog_embedded::resources::Resources<4096, 20, 128, 2048>>() == 15_376
);
#[cfg(feature = "persist")]
const _: () = assert!(
    core::mem::size_of::<posthog_embedded::resources::Resources<4096, 20, 128, 2048>>() == 15_632
);
/// The client: its settings, timers and counters, and the borrowed keys. The library's own
/// fixed state: under 1 KiB.
#[cfg(not(feature = "persist"))]
pub const CLIENT_BYTES: usize = 928;
#[cfg(feature = "persist")]
pub const CLIENT_BYTES: usize = 936;
const _: () =
    assert!(core::mem::size_of::<posthog_embedded::client::Client<'static>>() == CLIENT_BYTES);
const _: () = assert!(core::mem::size_of::<Queue<[u8; 4096]>>() == 4_160);
