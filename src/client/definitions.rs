//! Flag definitions: loading them (from the network or a snapshot), polling
//! `/flags/definitions` with `ETag`s, and backing off on refusals.

use super::{bump, Client, DeliveryError, InFlight, Method, RequestKind, ResponseInfo, Transmit};
use crate::flags::{FlagTables, LoadError, Requirements};
use crate::managed::{ManagedSlice, ManagedStr};
use crate::retry;
use crate::time::{Instant, Now};

/// A change of the definitions in use that a copy on flash should follow
/// ([`Client::take_definitions_change`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DefinitionsChange {
    /// New definitions were loaded from the body of the last answer.
    Loaded,
    /// The server cleared them (402, quota limited).
    Cleared,
}

impl<'r> Client<'r> {
    /// Whether flag definitions are loaded (from the network or [`load_definitions`]).
    ///
    /// [`load_definitions`]: Self::load_definitions
    #[must_use]
    pub const fn is_local_evaluation_ready(&self) -> bool {
        self.flags.is_loaded()
    }

    /// Loads definitions from bytes (a snapshot in flash, or a gateway's copy). On error the
    /// definitions in use are kept.
    ///
    /// # Errors
    /// [`crate::flags::LoadError`].
    pub fn load_definitions(&mut self, doc: &[u8]) -> Result<Requirements, LoadError> {
        let r = self.flags.load(doc);
        self.count_load(r)
    }

    /// Puts definitions that were loaded elsewhere into use: `staged` holds the result of
    /// `staged.load_or_clear(doc)` (`loaded`; one pass, as the staged store's old contents
    /// need not survive an error), done outside whatever lock guards this client, so a long
    /// load never blocks it. On success the two stores are swapped in O(1): the client uses the
    /// new definitions and `staged` gets the old ones (reuse it for the next load). On error
    /// nothing is swapped and the definitions in use are kept. Counted like
    /// [`load_definitions`](Self::load_definitions).
    ///
    /// The staged store borrows storage for as long as the client's own (`'r`), and should
    /// have the same capacities: definitions that fit the client's store but not the staged
    /// one fail to load.
    ///
    /// # Errors
    /// `loaded`'s [`LoadError`].
    pub fn install_definitions(
        &mut self,
        staged: &mut FlagTables<'r>,
        loaded: Result<Requirements, LoadError>,
    ) -> Result<Requirements, LoadError> {
        if loaded.is_ok() {
            core::mem::swap(&mut self.flags, staged);
        }
        self.count_load(loaded)
    }

    fn count_load(
        &mut self,
        r: Result<Requirements, LoadError>,
    ) -> Result<Requirements, LoadError> {
        match r {
            Ok(_) => bump(&mut self.stats.definitions_loaded, 1),
            Err(e) => {
                bump(&mut self.stats.definitions_failed, 1);
                self.stats.last_error = Some(DeliveryError::Definitions(e));
            }
        }
        r
    }

    /// Whether the request in flight is a definitions poll, whose `200` answer carries a
    /// document to load: a driver that loads it outside its lock
    /// ([`handle_staged_response`](Self::handle_staged_response)) asks this first.
    #[must_use]
    pub fn awaits_definitions(&self) -> bool {
        matches!(self.in_flight, InFlight::Definitions)
    }

    /// [`handle_response`](Self::handle_response) for a definitions answer whose body the
    /// driver already loaded into `staged` (`loaded`), outside its lock; see
    /// [`install_definitions`](Self::install_definitions) for the swap. Any other answer is
    /// handled as `handle_response` handles it (and `loaded` is ignored).
    pub fn handle_staged_response(
        &mut self,
        now: Now,
        resp: &ResponseInfo<'_>,
        body: &[u8],
        staged: &mut FlagTables<'r>,
        loaded: Result<Requirements, LoadError>,
    ) {
        if self.awaits_definitions() && resp.status == 200 {
            self.in_flight = InFlight::Idle;
            self.definitions_response(now, resp, |flags| {
                if loaded.is_ok() {
                    core::mem::swap(flags, staged);
                }
                loaded
            });
        } else {
            self.handle_response(now, resp, body);
        }
    }

    /// Loads definitions kept from an earlier poll (on flash) together with the `ETag` they
    /// came with, so the first poll asks `If-None-Match` and a `304` keeps them. On error the
    /// definitions in use, and the `ETag`, are kept.
    ///
    /// # Errors
    /// [`crate::flags::LoadError`].
    pub fn load_definitions_with_etag(
        &mut self,
        doc: &[u8],
        etag: &str,
    ) -> Result<Requirements, LoadError> {
        let r = self.load_definitions(doc)?;
        self.etag.set(Some(etag));
        Ok(r)
    }

    /// The `ETag` of the definitions in use, if the server sent one.
    #[must_use]
    pub fn definitions_etag(&self) -> Option<&str> {
        self.etag.get()
    }

    /// What the last definitions answer changed that a copy kept on flash should follow, once:
    /// new definitions were loaded from the body just passed to
    /// [`handle_response`](Self::handle_response) (store that body with
    /// [`definitions_etag`](Self::definitions_etag)), or the server cleared them (quota).
    /// A body that failed to load never shows up here, so the last good copy stays.
    pub fn take_definitions_change(&mut self) -> Option<DefinitionsChange> {
        self.definitions_change.take()
    }

    /// Asks for a definitions poll at the next [`poll_transmit`](Self::poll_transmit), ignoring
    /// the polling interval and back-off.
    pub fn reload(&mut self) {
        if self.secret_key.is_some() && !self.shut_down {
            self.next_poll = Some(Instant::ZERO);
            self.poll_errors = 0;
        }
    }

    pub(super) fn definitions_request<'b>(&mut self, buf: &'b mut [u8]) -> Option<Transmit<'b>> {
        self.secret_key.as_ref()?;
        let mut path = heapless::String::new();
        let ok = path.push_str("/flags/definitions?token=").is_ok()
            && push_query_value(&mut path, self.api_key.as_str())
            && path.push_str("&send_cohorts").is_ok();
        if !ok {
            self.next_poll = None;
            return None;
        }
        self.in_flight = InFlight::Definitions;
        bump(&mut self.stats.requests, 1);
        Some(Transmit::from_parts(
            RequestKind::Definitions,
            Method::Get,
            path,
            buf.get(..0).unwrap_or_default(),
            self.secret_key.as_ref().map(ManagedStr::as_str),
            self.etag.get(),
        ))
    }

    /// Settles a definitions answer; `load` puts a `200`'s body into the store in use.
    pub(super) fn definitions_response(
        &mut self,
        now: Now,
        resp: &ResponseInfo<'_>,
        load: impl FnOnce(&mut FlagTables<'r>) -> Result<Requirements, LoadError>,
    ) {
        let interval = self.config.poll_interval;
        match resp.status {
            200 => {
                match load(&mut self.flags) {
                    Ok(_) => {
                        bump(&mut self.stats.definitions_loaded, 1);
                        self.etag.set(resp.etag);
                        self.definitions_change = Some(DefinitionsChange::Loaded);
                    }
                    Err(e) => {
                        ph_warn!("flag definitions refused: {}", e);
                        bump(&mut self.stats.definitions_failed, 1);
                        self.stats.last_error = Some(DeliveryError::Definitions(e));
                    }
                }
                self.poll_errors = 0;
                self.poll_failed = false;
                self.schedule_poll(now.mono + interval);
            }
            304 => {
                bump(&mut self.stats.definitions_unchanged, 1);
                if resp.etag.is_some() {
                    self.etag.set(resp.etag);
                }
                self.poll_errors = 0;
                self.poll_failed = false;
                self.schedule_poll(now.mono + interval);
            }
            status => {
                bump(&mut self.stats.definitions_failed, 1);
                self.stats.last_error = Some(DeliveryError::Status(status));
                if status == 402 {
                    // An exhausted quota clears the definitions and the ETag. A 401 keeps
                    // them (as posthog-node does): a key rotated or revoked server-side must
                    // not blank the flags of devices in the field.
                    self.flags.clear();
                    self.etag.set(None);
                    self.definitions_change = Some(DefinitionsChange::Cleared);
                }
                let delay = if matches!(status, 401 | 403 | 429) {
                    self.poll_errors = self.poll_errors.saturating_add(1);
                    self.poll_failed = false;
                    retry::poll_backoff(interval, self.poll_errors)
                } else {
                    self.poll_failed = status >= 500;
                    interval
                };
                self.schedule_poll(now.mono + delay);
            }
        }
    }

    /// The next definitions poll, unless the client was shut down meanwhile.
    pub(super) fn schedule_poll(&mut self, at: Instant) {
        self.next_poll = (!self.shut_down).then_some(at);
    }
}

/// Appends `v` percent-encoded for a query value (unreserved characters kept).
fn push_query_value<const M: usize>(out: &mut heapless::String<M>, v: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in v.bytes() {
        let ok = if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b)).is_ok()
        } else {
            let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0');
            out.push('%').is_ok()
                && out.push(char::from(hi)).is_ok()
                && out.push(char::from(lo)).is_ok()
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The `ETag` of the definitions in use, kept in storage from the client's
/// [`Resources`](crate::resources::Resources) ([`MAX_ETAG`](crate::net::MAX_ETAG) bytes).
pub(super) struct Etag<'r> {
    buf: ManagedSlice<'r, u8>,
    len: u8,
}

impl<'r> Etag<'r> {
    /// None yet, in `buf` ([`MAX_ETAG`](crate::net::MAX_ETAG) bytes).
    pub(super) fn new(buf: ManagedSlice<'r, u8>) -> Self {
        Self { buf, len: 0 }
    }

    /// Keeps `etag`, or none when it is `None`, empty or longer than the storage (a truncated
    /// `ETag` would never match).
    pub(super) fn set(&mut self, etag: Option<&str>) {
        self.len = 0;
        let Some(e) = etag else { return };
        let (Some(dst), Ok(len)) = (self.buf.get_mut(..e.len()), u8::try_from(e.len())) else {
            return;
        };
        dst.copy_from_slice(e.as_bytes());
        self.len = len;
    }

    /// The `ETag` kept, if any.
    pub(super) fn get(&self) -> Option<&str> {
        let bytes = self
            .buf
            .get(..usize::from(self.len))
            .filter(|b| !b.is_empty())?;
        core::str::from_utf8(bytes).ok()
    }
}
