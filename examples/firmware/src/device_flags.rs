//! The flags this device reads at boot, evaluated locally from the definitions in flash.

use posthog_embedded::flags::{EvalContext, PropertyValue};
use posthog_embedded::json::typed::from_json;
use serde::Deserialize;

use crate::{PostHogHandle, BOARD, DEVICE_ID, FIRMWARE_VERSION, REGION};

/// Flags this device reads at boot: a 30% rollout (off for this device), a semver filter, a
/// multivariate flag and a region filter.
const BOOT_FLAGS: [&str; 4] = [
    "ota-updates",
    "new-sampling-rate",
    "display-theme",
    "eu-data-residency",
];

/// The device's person properties, for flag evaluation.
pub const DEVICE_PROPERTIES: [(&str, PropertyValue<'static>); 3] = [
    ("firmware_version", PropertyValue::Str(FIRMWARE_VERSION)),
    ("board", PropertyValue::Str(BOARD)),
    ("region", PropertyValue::Str(REGION)),
];

/// The payload of `new-sampling-rate`: remote configuration, read into a struct with no
/// allocation (unknown members are ignored).
#[derive(Deserialize)]
struct Sampling {
    interval_ms: u64,
}

/// What the application does with its flags.
#[derive(Default)]
pub struct BootFlags {
    /// `new-sampling-rate` is on: its payload's `interval_ms`.
    pub sampling_interval_ms: Option<u64>,
    /// `ota-updates` is on.
    pub ota_updates: bool,
}

/// Evaluates [`BOOT_FLAGS`] locally (each read queues its `$feature_flag_called` event) and
/// prints the values and payloads.
pub fn read_flags(ph: &PostHogHandle) -> BootFlags {
    let ctx = EvalContext {
        distinct_id: DEVICE_ID,
        device_id: None,
        person: &DEVICE_PROPERTIES,
        groups: &[],
    };
    let mut flags = BootFlags::default();
    for key in BOOT_FLAGS {
        // Evaluated under the client's lock; the `Copy` value and the payload's copy are
        // printed after releasing it.
        let value = ph.feature_flag(key, &ctx);
        let payload = ph
            .feature_flag_payload(key, &ctx, None, |p| {
                p.and_then(|p| heapless::String::<64>::try_from(p).ok())
            })
            .ok()
            .flatten();
        let value = match value {
            Ok(v) => v,
            Err(why) => {
                info!("flag {}: only the server can decide ({:?})", key, why);
                continue;
            }
        };
        match &payload {
            Some(p) => info!("flag {} = {:?}, payload {}", key, value, p.as_str()),
            None => info!("flag {} = {:?}", key, value),
        }
        match key {
            "new-sampling-rate" if value.is_enabled() => {
                flags.sampling_interval_ms = payload
                    .as_deref()
                    .and_then(|p| from_json::<Sampling>(p, &mut []).ok())
                    .map(|s| s.interval_ms);
            }
            "ota-updates" => flags.ota_updates = value.is_enabled(),
            _ => {}
        }
    }
    flags
}
