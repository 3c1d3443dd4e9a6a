//! [`StdClient::evaluate_flags`]: PostHog's snapshot API on the std driver, an owned
//! [`StdFlagSnapshot`] over the core's [`FlagSnapshot`] (see its module docs for the rules).

use std::borrow::ToOwned;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use crate::capture::{EventOptions, Uuid};
use crate::client::{FlagSnapshot, Id, QueryStatus, ReadOptions, SnapshotError, SnapshotStep};
use crate::error::{CaptureError, PropertyError};
use crate::flags::{EvalContext, FlagValue};
use crate::json::write::Object;

use super::client::StdClient;
use super::clock::HostClock;
use super::worker::Shared;

/// A flag snapshot of a [`StdClient`] (from [`StdClient::evaluate_flags`]): fixed at creation;
/// [`is_enabled`](Self::is_enabled) and [`get_flag`](Self::get_flag) send the flag's
/// `$feature_flag_called` the first time; payload and key reads are silent.
pub struct StdFlagSnapshot {
    snap: FlagSnapshot<'static>,
    shared: Arc<Shared>,
    clock: Arc<dyn HostClock>,
}

impl core::fmt::Debug for StdFlagSnapshot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.snap, f)
    }
}

impl StdFlagSnapshot {
    /// Whether flag `key` is on (an access: its exposure event the first time); `false` for a
    /// key the snapshot lacks (reported as `flag_missing`).
    pub fn is_enabled(&mut self, key: &str) -> bool {
        self.is_enabled_or(key, false)
    }

    /// [`is_enabled`](Self::is_enabled) with a caller default for a key the snapshot lacks.
    pub fn is_enabled_or(&mut self, key: &str, default: bool) -> bool {
        let mut g = self.shared.lock();
        let r = g
            .core
            .snapshot_enabled(self.clock.read(), &mut self.snap, key, default);
        drop(g);
        self.shared.wake.notify_one();
        r
    }

    /// The value of flag `key` (an access: its exposure event the first time); `None` for a
    /// key the snapshot lacks (reported as `flag_missing`).
    pub fn get_flag(&mut self, key: &str) -> Option<FlagValue> {
        let mut g = self.shared.lock();
        let r = g.core.snapshot_flag(self.clock.read(), &mut self.snap, key);
        drop(g);
        self.shared.wake.notify_one();
        r
    }

    /// The payload of flag `key`, silently.
    #[must_use]
    pub fn get_flag_payload(&self, key: &str) -> Option<String> {
        self.snap.payload(key).map(str::to_owned)
    }

    /// The keys present, silently.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.snap.keys().map(str::to_owned).collect()
    }

    /// What went wrong asking the server, as its `$feature_flag_error` text (`None`: nothing).
    #[must_use]
    pub fn error(&self) -> Option<String> {
        let e = self.snap.error();
        (!e.is_empty()).then(|| {
            let mut buf = [0u8; crate::flags::remote::FlagErrors::MAX_LEN];
            e.render(&mut buf).to_owned()
        })
    }

    /// A snapshot with the flags of `keys` that exist (unknown keys are dropped and logged).
    #[must_use]
    pub fn only(&self, keys: &[&str]) -> Self {
        self.derive(|snap, into| snap.only(keys, into))
    }

    /// A snapshot with the flags whose value was read so far (empty before any read).
    #[must_use]
    pub fn only_accessed(&self) -> Self {
        self.derive(FlagSnapshot::only_accessed)
    }

    fn derive(
        &self,
        copy: impl Fn(&FlagSnapshot<'static>, &mut FlagSnapshot<'static>) -> Result<(), SnapshotError>,
    ) -> Self {
        let (mut flags, mut bytes) = (self.snap.len(), 1024);
        loop {
            let mut into = FlagSnapshot::with_capacity(flags, bytes);
            match copy(&self.snap, &mut into) {
                Err(SnapshotError::Full { flags: f, bytes: b }) => (flags, bytes) = (f, b),
                _ => {
                    return Self {
                        snap: into,
                        shared: Arc::clone(&self.shared),
                        clock: Arc::clone(&self.clock),
                    }
                }
            }
        }
    }
}

impl StdClient {
    /// PostHog's `evaluate_flags`: evaluates the flags for `ctx` (every flag, or only `keys`)
    /// once, into a snapshot to read many times. Local values first; when the requested set is
    /// incomplete and `only_local` is false, one `/flags` request (scoped to `keys`) through
    /// the background thread, whose values never replace local ones. No event is sent until a
    /// value is read. A failed request keeps the local values ([`StdFlagSnapshot::error`]).
    /// Blocks like [`get_feature_flag`](Self::get_feature_flag) while the server is asked.
    #[must_use]
    pub fn evaluate_flags(
        &self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        only_local: bool,
    ) -> StdFlagSnapshot {
        let read = ReadOptions {
            only_local,
            max_retries: self.flags_max_retries,
            ..ReadOptions::new()
        };
        let (mut flags, mut bytes) = (64, 16 << 10);
        let mut g = self.shared.lock();
        loop {
            let mut snap = FlagSnapshot::with_capacity(flags, bytes);
            let ticket = match g
                .core
                .evaluate_flags(self.clock.read(), ctx, keys, read, &mut snap)
            {
                Err(SnapshotError::Full { flags: f, bytes: b }) => {
                    (flags, bytes) = (f, b);
                    continue;
                }
                Ok(SnapshotStep::Busy) => {
                    // Another reader's query: wait for it to close, then evaluate again.
                    g = self.shared.wait_progress(g, None, None, |s| {
                        !s.core.is_query_open() || s.exit || s.exited
                    });
                    if !(g.exit || g.exited) {
                        continue;
                    }
                    None
                }
                Ok(SnapshotStep::Remote(t)) => Some(t),
                Ok(_) => None,
            };
            if let Some(ticket) = ticket {
                self.shared.wake.notify_one();
                g = self.shared.wait_progress(g, None, None, |s| {
                    s.core.flags_query(ticket) != QueryStatus::Pending || s.exit || s.exited
                });
                // Grown to what the answer needs, then completed.
                while let Err(SnapshotError::Full { flags: f, bytes: b }) =
                    g.core.complete_snapshot(ticket, keys, &mut snap)
                {
                    let mut bigger = FlagSnapshot::with_capacity(f, b);
                    if snap.copy_all(&mut bigger).is_err() {
                        break;
                    }
                    snap = bigger;
                }
                g.core.close_flags_query(ticket);
                drop(g);
                self.shared.progress.notify_all();
            }
            return StdFlagSnapshot {
                snap,
                shared: Arc::clone(&self.shared),
                clock: Arc::clone(&self.clock),
            };
        }
    }

    /// [`capture`](Self::capture) with the flags of `snapshot` attached (`$feature/<key>`,
    /// `$active_feature_flags`): no evaluation, no request.
    ///
    /// # Errors
    /// As [`capture`](Self::capture).
    pub fn capture_with_snapshot<'i, P>(
        &self,
        event: &str,
        distinct_id: impl Into<Id<'i>>,
        snapshot: &StdFlagSnapshot,
        props: P,
    ) -> Result<Uuid, CaptureError>
    where
        P: FnMut(&mut Object<'_, '_>) -> Result<(), PropertyError>,
    {
        self.produce(|c, now| {
            c.capture_with_snapshot(
                now,
                event,
                distinct_id,
                &EventOptions::new(),
                &snapshot.snap,
                props,
            )
        })
    }
}
