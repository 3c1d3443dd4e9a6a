//! The embassy driver with persistence: the storage runner writes what the handle captures,
//! records deliveries, keeps the definitions the network runner receives, and everything comes
//! back after a reboot (a new client over the same simulated flash).

use posthog_embedded::adapters::embassy::{
    self, AlreadyAttached, Buffers, Connect, Link, Posthog, Runner, State, StorageBuffers,
    StorageRunner,
};
use posthog_embedded::adapters::persist::{self, DefinitionsSource};
use posthog_embedded::capture::EventOptions;
use posthog_embedded::client::{Client, Config, PersistPolicy};
use posthog_embedded::resources::Resources;
use posthog_embedded::storage::sim::SimFlash;
use posthog_embedded::storage::{DefinitionsSlot, EventLog};

use crate::embassy::{server, tcp, Reply, M};

type Flash = SimFlash<4, 1024>;
const EVENTS: core::ops::Range<u32> = 0..8192;
const DEFS: core::ops::Range<u32> = 8192..12288;

/// One boot: mount, attach, restore, split, attach storage. The flash outlives the boot.
fn boot(
    flash: &mut Flash,
    policy: PersistPolicy,
) -> (
    Posthog<'static, M>,
    Runner<'static, M>,
    StorageRunner<'static, M, &mut Flash>,
    u32,
    DefinitionsSource,
) {
    let (mut log, mounted) = embassy_futures::block_on(EventLog::mount(flash, EVENTS)).unwrap();
    let mut slot = embassy_futures::block_on(DefinitionsSlot::mount(flash, DEFS)).unwrap();
    let mut client = Client::new(
        Config::new("phc_embassy", 7)
            .secret_key("phx_embassy_secret")
            .flush_at(100),
        Box::leak(Box::new(Resources::<4096, 4, 64, 1024>::new())),
    )
    .unwrap();
    client.attach_persistence(policy, persist::position(&mounted));
    let mut buf = [0u8; 2048];
    let restored =
        embassy_futures::block_on(persist::restore(&mut log, flash, &mut client, &mut buf))
            .unwrap()
            .restored;
    let source = embassy_futures::block_on(persist::restore_definitions(
        &mut slot,
        flash,
        &mut client,
        &mut buf,
        None,
    ));
    let state = Box::leak(Box::new(State::new()));
    let buffers = Buffers {
        tx: Box::leak(vec![0u8; 4096].into_boxed_slice()),
        rx: Box::leak(vec![0u8; 1024].into_boxed_slice()),
        body: Box::leak(vec![0u8; 2048].into_boxed_slice()),
    };
    let (ph, runner) = embassy::new(client, state, buffers, "127.0.0.1").unwrap();
    let bufs = || StorageBuffers {
        event: Box::leak(vec![0u8; 1024].into_boxed_slice()),
        definitions: Box::leak(vec![0u8; 2048].into_boxed_slice()),
    };
    let storage = embassy::storage(ph, flash, log, Some(slot), bufs()).unwrap();
    (ph, runner, storage, restored, source)
}

/// Runs the storage runner until `done`, each step bounded.
fn drive_storage(storage: &mut StorageRunner<'static, M, &mut Flash>, done: impl Fn() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        let _ = embassy_futures::block_on(embassy_time::with_timeout(
            embassy_time::Duration::from_millis(20),
            storage.step(),
        ));
    }
    panic!("storage runner did not finish");
}

/// Runs the network runner over `conn` and the storage runner in turns until `done`.
fn drive_both<C: Connect>(
    link: &mut Link<'_, 'static, M, C>,
    storage: &mut StorageRunner<'static, M, &mut Flash>,
    done: impl Fn() -> bool,
) {
    let step = embassy_time::Duration::from_millis(50);
    for _ in 0..200 {
        if done() {
            return;
        }
        let _ = embassy_futures::block_on(embassy_time::with_timeout(step, link.step()));
        let _ = embassy_futures::block_on(embassy_time::with_timeout(step, storage.step()));
    }
    panic!("runners did not finish");
}

#[test]
fn the_storage_runner_keeps_events_and_definitions_across_reboots() {
    let mut flash = Flash::new(12, 1);

    // Boot 1, offline: three events reach flash without any network.
    {
        let (ph, _runner, mut storage, restored, source) =
            boot(&mut flash, PersistPolicy::EveryEvent);
        assert_eq!((restored, source), (0, DefinitionsSource::None));
        ph.set_online(false);
        for _ in 0..3 {
            ph.capture("reading", "device-1", &EventOptions::new(), |_| Ok(()))
                .unwrap();
        }
        assert_eq!(ph.unpersisted(), 3);
        drive_storage(&mut storage, || ph.unpersisted() == 0);
        assert_eq!(storage.persist_stats().persisted, 3);
        assert_eq!(storage.log_stats().persisted, 3);
        // One storage runner per client.
        let again = embassy::storage(
            ph,
            Flash::new(2, 9),
            embassy_futures::block_on(EventLog::mount(&mut Flash::new(2, 9), 0..2048))
                .unwrap()
                .0,
            None,
            StorageBuffers {
                event: Box::leak(vec![0u8; 8].into_boxed_slice()),
                definitions: Box::leak(vec![0u8; 8].into_boxed_slice()),
            },
        );
        assert_eq!(again.err(), Some(AlreadyAttached));
    }

    // Boot 2, online: definitions arrive (kept on flash), the three events are delivered
    // (removed from flash).
    let uuids: Vec<String>;
    {
        let (addr, seen) = server(vec![Reply::Definitions, Reply::Ok]);
        let (ph, mut runner, mut storage, restored, _) =
            boot(&mut flash, PersistPolicy::EveryEvent);
        assert_eq!(restored, 3);
        ph.request_flush();
        let mut link = runner.link(tcp(addr));
        drive_both(&mut link, &mut storage, || {
            ph.pending() == 0 && ph.with(|c, _| c.is_local_evaluation_ready())
        });
        // Let the storage runner record the tail and the definitions.
        for _ in 0..5 {
            let _ = embassy_futures::block_on(embassy_time::with_timeout(
                embassy_time::Duration::from_millis(20),
                storage.step(),
            ));
        }
        assert_eq!(storage.persist_stats().tail_writes, 1);
        let seen = seen.lock().unwrap();
        let batch = &seen.requests[1].2;
        let body: serde_json::Value = serde_json::from_str(batch).unwrap();
        uuids = body["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["uuid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(uuids.len(), 3);
    }

    // Boot 3: nothing to restore; the definitions come from flash with their ETag.
    {
        let (addr, seen) = server(vec![Reply::Status304]);
        let (ph, mut runner, mut storage, restored, source) =
            boot(&mut flash, PersistPolicy::EveryEvent);
        assert_eq!((restored, source), (0, DefinitionsSource::Flash));
        assert!(ph.with(|c, _| c.is_local_evaluation_ready()));
        let mut link = runner.link(tcp(addr));
        drive_both(&mut link, &mut storage, || {
            !seen.lock().unwrap().requests.is_empty()
        });
        let seen = seen.lock().unwrap();
        let (line, headers, _) = &seen.requests[0];
        assert!(line.starts_with("GET /flags/definitions"), "{line}");
        assert!(
            headers.contains(&("If-None-Match".into(), "\"v1\"".into())),
            "{headers:?}"
        );
    }
}

#[test]
fn the_wall_clock_wakes_the_storage_runner_to_record_its_anchor() {
    let mut flash = Flash::new(12, 2);
    {
        let (ph, _runner, mut storage, _, _) = boot(&mut flash, PersistPolicy::EveryEvent);
        ph.set_online(false);
        // Let it settle: nothing to write, so it sleeps.
        for _ in 0..3 {
            let _ = embassy_futures::block_on(embassy_time::with_timeout(
                embassy_time::Duration::from_millis(20),
                storage.step(),
            ));
        }
        // A sleeping runner wakes when the wall clock arrives (it has an anchor to record).
        let woke = embassy_futures::block_on(embassy_time::with_timeout(
            embassy_time::Duration::from_secs(30),
            embassy_futures::join::join(storage.step(), async {
                embassy_time::Timer::after_millis(10).await;
                ph.set_wall_clock(posthog_embedded::time::UnixMillis::from_millis(
                    1_760_000_000_000,
                ));
            }),
        ));
        assert!(
            woke.is_ok(),
            "set_wall_clock did not wake the storage runner"
        );
        // Its next step writes the anchor.
        assert!(embassy_futures::block_on(embassy_time::with_timeout(
            embassy_time::Duration::from_secs(30),
            storage.step(),
        ))
        .is_ok());
        assert!(ph.with(|c, _| c.is_persisted()));
    }
    // The anchor is on flash: the next boot knows this boot's wall clock.
    let (log, mounted) = embassy_futures::block_on(EventLog::mount(&mut flash, EVENTS)).unwrap();
    let earlier = log
        .boots()
        .iter()
        .find(|b| b.boot == mounted.boot - 1)
        .copied();
    assert!(earlier.is_some_and(|b| b.anchor.is_some()), "{earlier:?}");
}
