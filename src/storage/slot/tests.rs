//! Unit tests of the definitions slot on a simulated flash.

use core::future::Future;
use core::ops::Range;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::format;
use std::vec;
use std::vec::Vec;

use super::super::sim::SimFlash;
use super::*;

/// A document and its ETag (empty: none).
type Content = (Vec<u8>, Vec<u8>);

/// Runs a future that never waits (the simulated flash completes every operation at once).
fn block_on<T>(f: impl Future<Output = T>) -> T {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("SimFlash futures are always ready"),
    }
}

/// A flash with one spare page before and one after a region of `pages` pages, so that a
/// stray write or erase outside the region shows.
fn setup<const W: usize, const E: usize>(pages: usize) -> (SimFlash<W, E>, Range<u32>) {
    setup_seeded(pages, 0x5EED)
}

/// [`setup`], with `seed` choosing how torn steps tear.
fn setup_seeded<const W: usize, const E: usize>(
    pages: usize,
    seed: u64,
) -> (SimFlash<W, E>, Range<u32>) {
    (SimFlash::new(pages + 2, seed), range_of::<E>(pages))
}

fn doc(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn content(seed: u8, len: usize, etag: &[u8]) -> Content {
    (doc(seed, len), etag.to_vec())
}

fn mount<const W: usize, const E: usize>(
    flash: &mut SimFlash<W, E>,
    range: &Range<u32>,
) -> DefinitionsSlot {
    block_on(DefinitionsSlot::mount(flash, range.clone())).expect("mounts")
}

fn load<const W: usize, const E: usize>(
    slot: &mut DefinitionsSlot,
    flash: &mut SimFlash<W, E>,
) -> Option<Content> {
    let mut d = vec![0xAA; slot.max_document()];
    let mut e = vec![0xAA; DefinitionsSlot::MAX_ETAG];
    let (dl, el) = block_on(slot.load(flash, &mut d, &mut e)).expect("loads")?;
    d.truncate(dl);
    e.truncate(el);
    Some((d, e))
}

fn try_store<const W: usize, const E: usize>(
    slot: &mut DefinitionsSlot,
    flash: &mut SimFlash<W, E>,
    c: &Content,
) -> Result<(), SlotError> {
    let etag = (!c.1.is_empty()).then_some(c.1.as_slice());
    block_on(slot.store(flash, &c.0, etag))
}

fn store<const W: usize, const E: usize>(
    slot: &mut DefinitionsSlot,
    flash: &mut SimFlash<W, E>,
    c: &Content,
) {
    try_store(slot, flash, c).expect("stores");
}

const fn unit<const W: usize>() -> usize {
    if W > 4 {
        W
    } else {
        4
    }
}

/// Flash steps (pages erased, words written) of a copy with a body of `body` bytes.
fn copy_steps<const W: usize, const E: usize>(pages: usize, body: usize) -> u64 {
    let u = unit::<W>();
    (pages / 2 + (round_up(body, u) + round_up(HEADER, u)) / W) as u64
}

/// Flash address of half 0 (A) or 1 (B).
fn half_addr<const E: usize>(range: &Range<u32>, pages: usize, half: usize) -> usize {
    range.start as usize + half * (pages / 2) * E
}

/// Runs a test body for both simulated geometries and regions of 2, 3 and 4 pages.
macro_rules! for_each_geometry {
    ($($test:ident => $body:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                for pages in [2, 3, 4] {
                    $body::<4, 4096>(pages);
                    $body::<32, 2048>(pages);
                }
            }
        )*
    };
}

for_each_geometry! {
    round_trip_alternates_halves => round_trip,
    clear_survives_reboot => clear,
    power_cut_at_every_step_of_a_store => cut_during_store,
    power_cut_at_every_step_of_a_clear => cut_during_clear,
    flash_errors_during_a_store_keep_the_old_copy => injected_errors,
    bit_flips_fall_back_to_the_other_copy => bit_flips,
    damage_found_by_load_is_reported_and_replaced => flip_after_mount,
    foreign_data_is_an_empty_slot => foreign_data,
    size_limits_are_enforced_with_sizes => sizes,
}

fn round_trip<const W: usize, const E: usize>(pages: usize) {
    let (mut flash, range) = setup::<W, E>(pages);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(flash.steps(), 0, "mount writes nothing");
    assert_eq!(slot.stored(), None);
    assert_eq!(slot.corrupt(), 0);
    assert_eq!(load(&mut slot, &mut flash), None);
    let half = pages / 2 * E;
    let max = slot.max_document();
    assert_eq!(max, half - round_up(HEADER, unit::<W>()));
    let contents = [
        content(1, 37, b""),
        content(2, max - 5, b"\"abc\""),
        content(3, 0, b"W/\"only-an-etag\""),
        content(4, 1000, &[b'x'; 128]),
        content(5, 1, b""),
    ];
    for (i, c) in contents.iter().enumerate() {
        // No ETag, given as `None` and as an empty one.
        let etag = if c.1.is_empty() && i == 0 {
            None
        } else {
            Some(c.1.as_slice())
        };
        block_on(slot.store(&mut flash, &c.0, etag)).expect("stores");
        let want = StoredDefinitions {
            generation: i as u32 + 1,
            len: c.0.len(),
            etag_len: c.1.len(),
        };
        assert_eq!(slot.stored(), Some(want));
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(c));
        // The copies go to half A, then B, and so on.
        let at = half_addr::<E>(&range, pages, i % 2);
        assert_eq!(flash.contents().get(at..at + 4), Some(&MAGIC[..]));
        let steps = flash.steps();
        let mut again = mount(&mut flash, &range);
        assert_eq!(flash.steps(), steps, "mount writes nothing");
        assert_eq!(again.stored(), Some(want));
        assert_eq!(again.corrupt(), 0);
        assert_eq!(load(&mut again, &mut flash).as_ref(), Some(c));
        // Carry on with the remounted slot: it must pick the right half to write next.
        slot = again;
    }
    // Wear: A erased three times, B twice; the unused odd page and the pages around the
    // region untouched.
    let first = range.start as usize / E;
    let halves = pages / 2;
    let counts = flash.erase_counts().to_vec();
    for p in 0..halves {
        assert_eq!(counts[first + p], 3, "page {p} of A");
        assert_eq!(counts[first + halves + p], 2, "page {p} of B");
    }
    for p in (0..first).chain(first + 2 * halves..counts.len()) {
        assert_eq!(counts[p], 0, "page {p} erased");
        let bytes = &flash.contents()[p * E..(p + 1) * E];
        assert!(bytes.iter().all(|&b| b == 0xFF), "page {p} written");
    }
}

fn clear<const W: usize, const E: usize>(pages: usize) {
    let (mut flash, range) = setup::<W, E>(pages);
    let mut slot = mount(&mut flash, &range);
    // Clearing an empty slot writes nothing.
    block_on(slot.clear(&mut flash)).expect("clears");
    assert_eq!(flash.steps(), 0);
    let c = content(1, 321, b"\"v1\"");
    store(&mut slot, &mut flash, &c);
    block_on(slot.clear(&mut flash)).expect("clears");
    assert_eq!(slot.stored(), None);
    assert_eq!(load(&mut slot, &mut flash), None);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored(), None);
    assert_eq!(slot.corrupt(), 0);
    assert_eq!(load(&mut slot, &mut flash), None);
    // Clearing again after the reboot writes nothing either.
    let steps = flash.steps();
    block_on(slot.clear(&mut flash)).expect("clears");
    assert_eq!(flash.steps(), steps);
    // A store after a clear is found, with the next generation.
    let d = content(2, 50, b"");
    store(&mut slot, &mut flash, &d);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(
        slot.stored(),
        Some(StoredDefinitions {
            generation: 3,
            len: 50,
            etag_len: 0
        })
    );
    assert_eq!(load(&mut slot, &mut flash), Some(d));
}

fn cut_during_store<const W: usize, const E: usize>(pages: usize) {
    let first = content(1, 90, b"\"first\"");
    let old = content(2, 303, b"W/\"old-etag\"");
    let new = content(3, 517, b"\"new\"");
    let later = content(4, 64, b"");
    let total = copy_steps::<W, E>(pages, new.0.len() + new.1.len());
    let header_at = total - (round_up(HEADER, unit::<W>()) / W) as u64;
    // Before the store: nothing, one copy (in A), two copies (the newest in B); each with
    // a few ways of tearing.
    for (prior, seed) in (0..=2u32).flat_map(|p| (1..=3u64).map(move |s| (p, s))) {
        let before = (prior > 0).then(|| old.clone());
        let mut n = 0u64;
        loop {
            let (mut flash, range) = setup_seeded::<W, E>(pages, seed);
            let mut slot = mount(&mut flash, &range);
            if prior == 2 {
                store(&mut slot, &mut flash, &first);
            }
            if prior > 0 {
                store(&mut slot, &mut flash, &old);
            }
            let steps = flash.steps();
            flash.cut_power_after(n);
            let r = try_store(&mut slot, &mut flash, &new);
            let cut = flash.is_off();
            flash.power_on();
            let mut slot = mount(&mut flash, &range);
            let got = load(&mut slot, &mut flash);
            if cut {
                assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
                if n < header_at {
                    assert_eq!(got, before, "cut at step {n} of {total}, prior {prior}");
                } else {
                    assert!(
                        got == before || got.as_ref() == Some(&new),
                        "cut in the header at step {n}: {got:?}"
                    );
                }
            } else {
                assert_eq!(r, Ok(()));
                assert_eq!(flash.steps() - steps, total);
                assert_eq!(got.as_ref(), Some(&new));
                assert_eq!(slot.stored().map(|s| s.generation), Some(prior + 1));
            }
            // Recovery: the next store goes over whatever the cut left (a word written
            // twice would panic) and wins.
            store(&mut slot, &mut flash, &later);
            let mut slot = mount(&mut flash, &range);
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&later));
            if !cut {
                break;
            }
            n += 1;
        }
        assert_eq!(n, total, "every step of the store was cut once");
    }
}

fn cut_during_clear<const W: usize, const E: usize>(pages: usize) {
    let old = content(5, 200, b"\"e\"");
    let total = copy_steps::<W, E>(pages, 0);
    let erases = (pages / 2) as u64;
    for seed in 1..=3u64 {
        let mut n = 0u64;
        loop {
            let (mut flash, range) = setup_seeded::<W, E>(pages, seed);
            let mut slot = mount(&mut flash, &range);
            store(&mut slot, &mut flash, &old);
            flash.cut_power_after(n);
            let r = block_on(slot.clear(&mut flash));
            let cut = flash.is_off();
            flash.power_on();
            let mut slot = mount(&mut flash, &range);
            let got = load(&mut slot, &mut flash);
            if cut {
                assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
                if n < erases {
                    assert_eq!(got.as_ref(), Some(&old));
                } else {
                    assert!(got.is_none() || got.as_ref() == Some(&old), "{got:?}");
                }
            } else {
                assert_eq!(r, Ok(()));
                assert_eq!(got, None);
                assert_eq!(slot.stored(), None);
            }
            // Clearing again after the reboot leaves the slot empty for good.
            block_on(slot.clear(&mut flash)).expect("clears");
            let mut slot = mount(&mut flash, &range);
            assert_eq!(slot.stored(), None);
            assert_eq!(load(&mut slot, &mut flash), None);
            if !cut {
                break;
            }
            n += 1;
        }
        assert_eq!(n, total);
    }
}

fn injected_errors<const W: usize, const E: usize>(pages: usize) {
    let old = content(6, 150, b"\"o\"");
    let new = content(7, 333, b"\"n\"");
    let total = copy_steps::<W, E>(pages, new.0.len() + new.1.len());
    let mut n = 0u64;
    loop {
        let (mut flash, range) = setup::<W, E>(pages);
        let mut slot = mount(&mut flash, &range);
        store(&mut slot, &mut flash, &old);
        flash.fail_after(n);
        let r = try_store(&mut slot, &mut flash, &new);
        if r.is_ok() {
            assert_eq!(n, total);
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
            break;
        }
        assert_eq!(r, Err(SlotError::Flash(FlashError::Other)));
        // The old copy is still the content, now and after a reboot.
        assert_eq!(slot.stored().map(|s| s.generation), Some(1));
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&old));
        let mut rebooted = mount(&mut flash, &range);
        assert_eq!(load(&mut rebooted, &mut flash).as_ref(), Some(&old));
        // A later store succeeds, with a generation above the failed attempt's.
        store(&mut slot, &mut flash, &new);
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
        let mut slot = mount(&mut flash, &range);
        assert_eq!(slot.stored().map(|s| s.generation), Some(3));
        assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&new));
        n += 1;
    }
}

/// A flash whose region holds `a` (generation 1, in A) and `b` (generation 2, in B).
fn two_copies<const W: usize, const E: usize>(
    pages: usize,
    a: &Content,
    b: &Content,
) -> (SimFlash<W, E>, Range<u32>) {
    let (mut flash, range) = setup::<W, E>(pages);
    let mut slot = mount(&mut flash, &range);
    store(&mut slot, &mut flash, a);
    store(&mut slot, &mut flash, b);
    (flash, range)
}

fn bit_flips<const W: usize, const E: usize>(pages: usize) {
    let a = content(8, 400, b"\"a\"");
    let b = content(9, 250, b"\"bb\"");
    let c = content(10, 99, b"");
    let body = round_up(HEADER, unit::<W>());
    let b_last = body + b.0.len() + b.1.len() - 1;
    // Header fields (magic, flags, ETag length, generation, document length, CRCs), the
    // ETag, the document.
    for off in [
        0,
        4,
        5,
        6,
        8,
        12,
        16,
        20,
        23,
        body,
        body + 2,
        body + 100,
        b_last,
    ] {
        for bit in [0, 7] {
            let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
            flash.flip_bit(half_addr::<E>(&range, pages, 1) + off, bit);
            let mut slot = mount(&mut flash, &range);
            assert_eq!(
                slot.stored(),
                Some(StoredDefinitions {
                    generation: 1,
                    len: 400,
                    etag_len: 3
                }),
                "flip at {off} bit {bit}"
            );
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&a));
            // A flip in the magic or the format makes the half no copy of ours: not
            // counted. Any other flip makes it a corrupt copy.
            let counted = u32::from(off > 4);
            assert_eq!(slot.corrupt(), counted, "flip at {off} bit {bit}");
            // The next store replaces the damaged copy, and A stays.
            store(&mut slot, &mut flash, &c);
            let mut slot = mount(&mut flash, &range);
            assert_eq!(slot.corrupt(), 0);
            assert_eq!(slot.stored().map(|s| s.generation), Some(2));
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
            let at = half_addr::<E>(&range, pages, 0);
            assert_eq!(flash.contents().get(at..at + 4), Some(&MAGIC[..]));
        }
    }
    // Both copies damaged: an empty slot, both counted.
    let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
    flash.flip_bit(half_addr::<E>(&range, pages, 0) + body + 7, 2);
    flash.flip_bit(half_addr::<E>(&range, pages, 1) + 9, 5);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored(), None);
    assert_eq!(slot.corrupt(), 2);
    assert_eq!(load(&mut slot, &mut flash), None);
    store(&mut slot, &mut flash, &c);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.corrupt(), 1);
    assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
}

fn flip_after_mount<const W: usize, const E: usize>(pages: usize) {
    let a = content(11, 180, b"\"a\"");
    let b = content(12, 260, b"\"b\"");
    let c = content(13, 70, b"\"c\"");
    let body = round_up(HEADER, unit::<W>());
    let b_at = half_addr::<E>(&range_of::<E>(pages), pages, 1);
    for clear_after in [false, true] {
        let (mut flash, range) = two_copies::<W, E>(pages, &a, &b);
        let mut slot = mount(&mut flash, &range);
        flash.flip_bit(b_at + body + 40, 3);
        let mut d = vec![0; slot.max_document()];
        let mut e = vec![0; DefinitionsSlot::MAX_ETAG];
        assert_eq!(
            block_on(slot.load(&mut flash, &mut d, &mut e)),
            Err(SlotError::Corrupt)
        );
        assert_eq!(slot.stored(), None);
        assert_eq!(slot.corrupt(), 1);
        assert_eq!(load(&mut slot, &mut flash), None);
        // A reboot would fall back to the older copy.
        let mut rebooted = mount(&mut flash, &range);
        assert_eq!(rebooted.corrupt(), 1);
        assert_eq!(load(&mut rebooted, &mut flash).as_ref(), Some(&a));
        if clear_after {
            // So clearing must write, or the older copy would come back.
            block_on(slot.clear(&mut flash)).expect("clears");
            let mut slot = mount(&mut flash, &range);
            assert_eq!(slot.stored(), None);
            assert_eq!(load(&mut slot, &mut flash), None);
        } else {
            store(&mut slot, &mut flash, &c);
            let mut slot = mount(&mut flash, &range);
            assert_eq!(slot.stored().map(|s| s.generation), Some(3));
            assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
        }
        // Either way the damaged copy (B) was replaced and A kept.
        let first = range.start as usize / E;
        assert_eq!(flash.erase_counts()[first], 1);
        assert_eq!(flash.erase_counts()[first + pages / 2], 2);
    }
}

fn range_of<const E: usize>(pages: usize) -> Range<u32> {
    E as u32..((pages + 1) * E) as u32
}

fn foreign_data<const W: usize, const E: usize>(pages: usize) {
    let (mut flash, range) = setup::<W, E>(pages);
    let junk = doc(0x42, range.len());
    block_on(flash.write(range.start, &junk)).expect("writes");
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored(), None);
    assert_eq!(slot.corrupt(), 0);
    assert_eq!(load(&mut slot, &mut flash), None);
    let c = content(14, 500, b"\"c\"");
    store(&mut slot, &mut flash, &c);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));

    // Our magic and format over junk: two corrupt copies, an empty slot.
    let (mut flash, range) = setup::<W, E>(pages);
    let mut header = doc(0x17, round_up(HEADER, unit::<W>()));
    header[..4].copy_from_slice(&MAGIC);
    header[4] = FORMAT;
    for half in 0..2 {
        let at = half_addr::<E>(&range, pages, half) as u32;
        block_on(flash.write(at, &header)).expect("writes");
    }
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored(), None);
    assert_eq!(slot.corrupt(), 2);
    store(&mut slot, &mut flash, &c);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.corrupt(), 1);
    assert_eq!(load(&mut slot, &mut flash).as_ref(), Some(&c));
}

fn sizes<const W: usize, const E: usize>(pages: usize) {
    let (mut flash, range) = setup::<W, E>(pages);
    let mut slot = mount(&mut flash, &range);
    let max = slot.max_document();
    let etag = [b'e'; 10];
    assert_eq!(
        block_on(slot.store(&mut flash, &doc(1, max + 1), None)),
        Err(SlotError::TooLarge { len: max + 1, max })
    );
    assert_eq!(
        block_on(slot.store(&mut flash, &doc(1, max - 9), Some(&etag))),
        Err(SlotError::TooLarge {
            len: max - 9,
            max: max - 10
        })
    );
    assert_eq!(
        block_on(slot.store(&mut flash, &doc(1, 10), Some(&[b'x'; 129]))),
        Err(SlotError::EtagTooLong { len: 129, max: 128 })
    );
    assert_eq!(flash.steps(), 0, "a refused store writes nothing");
    // The limits themselves fit.
    for c in [
        content(2, max - 10, &etag),
        content(3, max - 128, &[b'x'; 128]),
        content(4, max, b""),
    ] {
        store(&mut slot, &mut flash, &c);
        let mut slot = mount(&mut flash, &range);
        assert_eq!(load(&mut slot, &mut flash), Some(c));
    }
    // Buffers too small for the document, then for the ETag: nothing is read.
    let mut d = vec![0; max - 1];
    let mut e = vec![0; 128];
    assert_eq!(
        block_on(slot.load(&mut flash, &mut d, &mut e)),
        Err(SlotError::BufferTooSmall {
            needed: max,
            capacity: max - 1
        })
    );
    store(&mut slot, &mut flash, &content(5, 20, b"\"0123456789\""));
    let mut d = vec![0; 20];
    let mut e = vec![0; 11];
    assert_eq!(
        block_on(slot.load(&mut flash, &mut d, &mut e)),
        Err(SlotError::BufferTooSmall {
            needed: 12,
            capacity: 11
        })
    );
    assert!(e.iter().all(|&b| b == 0));
    let mut e = vec![0; 12];
    assert_eq!(
        block_on(slot.load(&mut flash, &mut d, &mut e)),
        Ok(Some((20, 12)))
    );
    assert_eq!(d, doc(5, 20));
    assert_eq!(e, b"\"0123456789\"");
    // A failed size check does not disturb the slot.
    assert_eq!(slot.corrupt(), 0);
}

#[test]
fn geometry_errors_carry_the_sizes() {
    let mut big = SimFlash::<64, 4096>::new(4, 1);
    assert_eq!(
        block_on(DefinitionsSlot::mount(&mut big, 0..8192)).err(),
        Some(SlotError::Geometry(GeometryError::WriteSize {
            write: 64,
            read: 64,
            max: 32
        }))
    );
    let mut flash = SimFlash::<4, 4096>::new(4, 1);
    for (range, want) in [
        (100..8292, GeometryError::Unaligned { erase: 4096 }),
        (0..6000, GeometryError::Unaligned { erase: 4096 }),
        (
            0..5 * 4096,
            GeometryError::OutOfBounds {
                end: 5 * 4096,
                capacity: 4 * 4096,
            },
        ),
        (4096..8192, GeometryError::TooSmall { pages: 1, min: 2 }),
        (4096..4096, GeometryError::TooSmall { pages: 0, min: 2 }),
    ] {
        assert_eq!(
            block_on(DefinitionsSlot::mount(&mut flash, range.clone())).err(),
            Some(SlotError::Geometry(want)),
            "{range:?}"
        );
    }
    let mut small = SimFlash::<4, 128>::new(8, 1);
    assert_eq!(
        block_on(DefinitionsSlot::mount(&mut small, 0..512)).err(),
        Some(SlotError::Geometry(GeometryError::PageSize { page: 128 }))
    );
    // The smallest page works.
    let mut tiny = SimFlash::<4, 256>::new(2, 1);
    let mut slot = block_on(DefinitionsSlot::mount(&mut tiny, 0..512)).expect("mounts");
    assert_eq!(slot.max_document(), 256 - HEADER);
    let c = content(1, 100, b"\"t\"");
    store(&mut slot, &mut tiny, &c);
    assert_eq!(load(&mut slot, &mut tiny), Some(c));
}

#[test]
fn generations_wrap_around() {
    let (mut flash, range) = setup::<4, 4096>(2);
    let mut slot = mount(&mut flash, &range);
    slot.generation = u32::MAX - 1;
    let a = content(1, 10, b"");
    let b = content(2, 20, b"");
    let c = content(3, 30, b"");
    store(&mut slot, &mut flash, &a);
    assert_eq!(slot.stored().map(|s| s.generation), Some(u32::MAX));
    store(&mut slot, &mut flash, &b);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored().map(|s| s.generation), Some(0));
    assert_eq!(load(&mut slot, &mut flash), Some(b));
    store(&mut slot, &mut flash, &c);
    let mut slot = mount(&mut flash, &range);
    assert_eq!(slot.stored().map(|s| s.generation), Some(1));
    assert_eq!(load(&mut slot, &mut flash), Some(c));
}

#[test]
fn header_encoding_round_trips_and_checks() {
    let h = Header {
        flags: 0,
        etag_len: 7,
        generation: 0x0102_0304,
        doc_len: 1000,
        crc: 0xDEAD_BEEF,
    };
    let b = encode_header(&h);
    assert_eq!(&b[..6], b"PHDF\x01\x00");
    assert_eq!(le_u16(&b, 6), 7);
    assert_eq!(le_u32(&b, 8), 0x0102_0304);
    assert_eq!(le_u32(&b, 20), crc32(&b[..20]));
    assert_eq!(parse_header(&b, 1007), Parsed::Valid(h));
    // Lengths past the room, unknown flags, an over-long ETag: corrupt.
    assert_eq!(parse_header(&b, 1006), Parsed::Corrupt);
    let bad_flags = encode_header(&Header { flags: 2, ..h });
    assert_eq!(parse_header(&bad_flags, 4096), Parsed::Corrupt);
    let long = encode_header(&Header { etag_len: 129, ..h });
    assert_eq!(parse_header(&long, 4096), Parsed::Corrupt);
    let cleared_with_body = encode_header(&Header {
        flags: FLAG_CLEARED,
        ..h
    });
    assert_eq!(parse_header(&cleared_with_body, 4096), Parsed::Corrupt);
    assert_eq!(parse_header(&[0xFF; HEADER], 4096), Parsed::Absent);
}

#[test]
fn errors_display_their_sizes() {
    assert_eq!(
        format!(
            "{}",
            SlotError::TooLarge {
                len: 5000,
                max: 4072
            }
        ),
        "definitions document of 5000 bytes, the slot holds at most 4072"
    );
    assert_eq!(
        format!("{}", SlotError::EtagTooLong { len: 129, max: 128 }),
        "ETag of 129 bytes, at most 128 stored"
    );
    assert_eq!(
        format!(
            "{}",
            SlotError::BufferTooSmall {
                needed: 10,
                capacity: 4
            }
        ),
        "stored definitions need 10 bytes, the buffer holds 4"
    );
    assert_eq!(
        format!(
            "{}",
            SlotError::Geometry(GeometryError::TooSmall { pages: 1, min: 2 })
        ),
        "definitions slot: range holds 1 pages, at least 2 needed"
    );
    assert_eq!(
        format!("{}", SlotError::Flash(FlashError::Other)),
        "definitions slot: flash: device error"
    );
}
