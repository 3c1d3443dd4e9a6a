//! Footprint of capture alone: an `Encoder` writes a 5-property event into a 4 KiB `Queue`,
//! and `render_batch` renders the `/batch/` body. No flags, no client, no network.

#![no_std]
#![no_main]

#[path = "../workload.rs"]
mod workload;

use core::hint::black_box;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use posthog_embedded::capture::{Encoder, EncoderConfig, OverflowPolicy, Queue};
use posthog_embedded::{Instant, Now};
use static_cell::ConstStaticCell;

static QUEUE: ConstStaticCell<Queue<[u8; workload::QUEUE_BYTES]>> = ConstStaticCell::new(
    Queue::new([0; workload::QUEUE_BYTES], OverflowPolicy::DropOldest),
);
static BODY: ConstStaticCell<[u8; workload::BODY_BYTES]> =
    ConstStaticCell::new([0; workload::BODY_BYTES]);

#[entry]
fn main() -> ! {
    let (Some(queue), Some(body)) = (QUEUE.try_take(), BODY.try_take()) else {
        exit(false)
    };
    let mut encoder = Encoder::new(EncoderConfig::DEFAULT, black_box(0x5eed));
    let now = Now::mono(Instant::from_millis(black_box(1_000)));
    let captured = workload::capture_reading(&mut encoder, queue, now, 0);
    let rendered = workload::render(queue, body);
    exit(black_box(
        captured.is_ok() && matches!(rendered, Ok(Some(_))),
    ))
}

fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    exit(false)
}
