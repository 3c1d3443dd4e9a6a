//! Remote flag reads inside the core: a sans-IO `/flags` query.
//!
//! A flag read that local evaluation cannot decide asks the server once, as PostHog's SDKs do.
//! The client does it like any other request:
//!
//! 1. [`Client::start_flags_query`] renders the `POST /flags/?v=2` body for a context (scoped to
//!    some keys) into the query storage attached with [`Client::attach_remote`]. One query is
//!    open at a time.
//! 2. [`Client::poll_transmit`] sends it **ahead of batches**; [`Client::handle_response`] /
//!    [`Client::handle_transport_error`] settle it: a 2xx answer is parsed into the attached
//!    [`RemoteFlags`]; transport errors (but a refused connection), 502 and 504 are retried
//!    per [`FlagsRetry`](crate::retry::FlagsRetry) (300 ms, then doubling; one retry by
//!    default), the delay measured on the client's clock through
//!    [`Client::poll_timeout`]; anything else fails it.
//! 3. The reader waits until [`Client::flags_query`] says it is done, then reads the answer
//!    ([`Client::finish_flag_read`] for a single flag, with its `$feature_flag_called` event;
//!    [`Client::merge_all_flags`] for bulk reads) and closes the query
//!    ([`Client::close_flags_query`]).
//!
//! No query is sent while offline (it fails at once with `connection_error`) or after
//! shutdown (it fails without an event). The drivers only wait: neither has a `/flags` loop of
//! its own, and the embassy driver's reads go over the runner's connection.

use super::{bump, Client, InFlight};
use crate::flags::remote::{FlagErrorKind, FlagErrors, RemoteFlags, RequestError};
use crate::flags::EvalContext;
use crate::net::http::Method;
use crate::net::{RequestKind, ResponseInfo, Transmit, TransportError};
use crate::retry::{FlagsAttempt, FlagsRetry};
use crate::time::{Instant, Now};

use super::reads::FlagResult;

/// Identifies one `/flags` query of a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QueryTicket(u32);

/// Where a `/flags` query stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum QueryStatus {
    /// Not answered yet (waiting to be sent, in flight, or waiting out a retry delay).
    Pending,
    /// Answered: the attached [`RemoteFlags`] holds the answer.
    Answered,
    /// Failed, with the `$feature_flag_error` to report.
    Failed(FlagErrors),
    /// Not this client's open query (closed, or never started).
    Unknown,
}

/// Why a `/flags` query was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum QueryError {
    /// No query storage is attached ([`Client::attach_remote`]).
    NoStorage,
    /// Another query is open: wait until it is closed.
    Busy,
    /// The server may not be asked (blank distinct id, shut down, offline).
    NotAllowed(RequestError),
    /// The request body does not fit the query storage, or is not representable.
    Request(RequestError),
}

impl core::fmt::Display for QueryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoStorage => f.write_str("no /flags query storage attached"),
            Self::Busy => f.write_str("another /flags query is open"),
            Self::NotAllowed(e) => write!(f, "/flags query not allowed: {e}"),
            Self::Request(e) => write!(f, "/flags request not built: {e}"),
        }
    }
}

impl core::error::Error for QueryError {}

/// The open query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Query {
    Idle,
    Pending {
        ticket: u32,
        /// Body length in the query storage.
        len: usize,
        retry: FlagsRetry,
        /// No attempt before this instant (a retry delay).
        not_before: Option<Instant>,
    },
    Done {
        ticket: u32,
        result: Result<(), FlagErrors>,
    },
}

/// The answer parser [`Client::attach_remote`] installs.
pub(super) type ParseAnswer =
    fn(&mut RemoteFlags<'_>, &[u8]) -> Result<(), crate::flags::remote::RemoteError>;

fn parse_answer(
    remote: &mut RemoteFlags<'_>,
    body: &[u8],
) -> Result<(), crate::flags::remote::RemoteError> {
    remote.parse(body)
}

/// What a single-flag read does next ([`Client::begin_flag_read`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReadStep {
    /// Decided locally (its event queued): read it with [`Client::feature_flag_result`]
    /// (`send_event: false`).
    Local,
    /// The server is being asked: wait until [`Client::flags_query`] is no longer pending,
    /// then call [`Client::finish_flag_read`].
    Remote(QueryTicket),
    /// No value (blank distinct id, local-only and inconclusive, shut down, offline, or the
    /// request could not be built); any event is queued already.
    Nothing,
    /// Another query is open: wait for it to close, then begin again.
    Busy,
}

/// Options of a single-flag read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct ReadOptions {
    /// Never ask the server: an inconclusive flag has no value. Default false.
    pub only_local: bool,
    /// Skip local evaluation. Default false.
    pub force_remote: bool,
    /// Queue a `$feature_flag_called` event. Default true.
    pub send_event: bool,
    /// Retries of the `/flags` request. Default 1 (values above 9 count as 9).
    pub max_retries: u8,
    /// `geoip_disable` of the request; `None`: the client's encoder setting.
    pub disable_geoip: Option<bool>,
}

impl ReadOptions {
    /// The defaults.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            only_local: false,
            force_remote: false,
            send_event: true,
            max_retries: 1,
            disable_geoip: None,
        }
    }
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl<'r> Client<'r> {
    /// Attaches the storage of `/flags` queries: the request body while a query is open, then
    /// the answer. Its capacities bound both (a [`RemoteStorage`] of `N` flags and `B` bytes:
    /// `B` must hold the request body, person and group properties included, and the answer's
    /// text). Without it, reads are local only.
    ///
    /// [`RemoteStorage`]: crate::flags::remote::RemoteStorage
    pub fn attach_remote(&mut self, remote: RemoteFlags<'r>) {
        self.remote = Some(remote);
        // Referenced only from here: a firmware that never attaches storage links no `/flags`
        // answer parser.
        self.parse_answer = Some(parse_answer);
    }

    /// The last `/flags` answer, if storage is attached.
    #[must_use]
    pub fn remote(&self) -> Option<&RemoteFlags<'r>> {
        self.remote.as_ref()
    }

    /// Opens a `/flags` query for `ctx` (limited to `keys`), sent by the next
    /// [`poll_transmit`](Self::poll_transmit) ahead of any batch.
    ///
    /// # Errors
    /// [`QueryError`]: no storage, another query open, not allowed (the reason), or a body
    /// that does not fit.
    pub fn start_flags_query(
        &mut self,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        opts: ReadOptions,
    ) -> Result<QueryTicket, QueryError> {
        self.check_remote_read(ctx)
            .map_err(QueryError::NotAllowed)?;
        if self.query != Query::Idle {
            return Err(QueryError::Busy);
        }
        let geoip = opts.disable_geoip;
        let Some(remote) = self.remote.as_mut() else {
            return Err(QueryError::NoStorage);
        };
        let buf = remote.scratch();
        let len = super::flags::write_flags_request(
            self.api_key.as_str(),
            self.config.encoder.disable_geoip,
            ctx,
            keys,
            geoip,
            buf,
        )
        .map_err(QueryError::Request)?;
        self.next_ticket = self.next_ticket.wrapping_add(1);
        self.query = Query::Pending {
            ticket: self.next_ticket,
            len,
            retry: FlagsRetry::new(opts.max_retries),
            not_before: None,
        };
        Ok(QueryTicket(self.next_ticket))
    }

    /// Changes whenever a query is answered, fails, or is closed, whatever settled it (an
    /// answer, a transport error, the link going down, shutdown, a request too large for the
    /// driver's buffer inside [`poll_transmit`](Self::poll_transmit)). A driver compares it
    /// around its calls into the client and wakes its waiting readers when it moved.
    #[must_use]
    pub const fn query_generation(&self) -> u32 {
        self.query_generation
    }

    /// Whether a query is open (another must wait until it is closed).
    #[must_use]
    pub fn is_query_open(&self) -> bool {
        self.query != Query::Idle
    }

    /// Whether a query is open and not yet answered or failed.
    #[must_use]
    pub fn is_query_pending(&self) -> bool {
        matches!(self.query, Query::Pending { .. })
    }

    /// Where query `ticket` stands.
    #[must_use]
    pub fn flags_query(&self, ticket: QueryTicket) -> QueryStatus {
        match self.query {
            Query::Pending { ticket: t, .. } if t == ticket.0 => QueryStatus::Pending,
            Query::Done { ticket: t, result } if t == ticket.0 => match result {
                Ok(()) => QueryStatus::Answered,
                Err(e) => QueryStatus::Failed(e),
            },
            _ => QueryStatus::Unknown,
        }
    }

    /// Closes query `ticket` (answered, failed or abandoned), so another can start. A query
    /// in flight is closed when its answer arrives.
    pub fn close_flags_query(&mut self, ticket: QueryTicket) {
        match self.query {
            Query::Pending { ticket: t, .. } | Query::Done { ticket: t, .. } if t == ticket.0 => {
                if self.in_flight == InFlight::Flags {
                    // Settled (and discarded) by the answer.
                    self.set_query(Query::Done {
                        ticket: u32::MAX,
                        result: Err(FlagErrors::new()),
                    });
                    self.abandoned = true;
                } else {
                    self.set_query(Query::Idle);
                }
            }
            _ => {}
        }
    }

    /// A single-flag read, first step: local evaluation (queuing its event on a value); when
    /// only the server can decide and `opts` allows it, opens the query for `key`.
    pub fn begin_flag_read(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        opts: ReadOptions,
    ) -> ReadStep {
        let allowed = self.check_remote_read(ctx);
        if let Err(RequestError::NoDistinctId) = allowed {
            // No distinct id: unknown, nobody asked, no event.
            return ReadStep::Nothing;
        }
        if !opts.force_remote {
            if self.feature_flag(now, key, ctx, opts.send_event).is_ok() {
                return ReadStep::Local;
            }
            if opts.only_local {
                self.failed_flag_called(now, key, ctx, FlagErrors::new(), opts.send_event);
                return ReadStep::Nothing;
            }
        }
        match self.start_flags_query(ctx, Some(&[key]), opts) {
            Ok(t) => ReadStep::Remote(t),
            Err(QueryError::Busy) => ReadStep::Busy,
            Err(QueryError::NotAllowed(RequestError::Offline)) => {
                // No connection attempt while the link is down.
                let errors = FlagErrors::from(FlagErrorKind::ConnectionError);
                self.failed_flag_called(now, key, ctx, errors, opts.send_event);
                ReadStep::Nothing
            }
            // Shut down: no request, no event.
            Err(QueryError::NotAllowed(_)) => ReadStep::Nothing,
            Err(QueryError::NoStorage | QueryError::Request(_)) => {
                let errors = FlagErrors::from(FlagErrorKind::UnknownError);
                self.failed_flag_called(now, key, ctx, errors, opts.send_event);
                ReadStep::Nothing
            }
        }
    }

    /// A single-flag read, last step: once query `ticket` is answered or failed, queues the
    /// read's `$feature_flag_called` event (with its `$feature_flag_error` when the server did
    /// not answer normally), closes the query and returns the result (`None`: no value).
    /// Still pending: `None`, nothing changes.
    pub fn finish_flag_read(
        &mut self,
        now: Now,
        ticket: QueryTicket,
        key: &str,
        ctx: &EvalContext<'_>,
        send_event: bool,
    ) -> Option<FlagResult<'_>> {
        match self.flags_query(ticket) {
            QueryStatus::Answered => {
                self.set_query(Query::Idle);
                let remote = self.remote.take()?;
                let found = self
                    .remote_flag_called(now, key, ctx, &remote, send_event)
                    .is_some();
                self.remote = Some(remote);
                if !found {
                    return None;
                }
                let flag = self.remote.as_ref()?.get(key)?;
                Some(FlagResult::new(flag.key, flag.value, flag.payload))
            }
            QueryStatus::Failed(errors) => {
                self.set_query(Query::Idle);
                if !self.shut_down {
                    self.failed_flag_called(now, key, ctx, errors, send_event);
                }
                None
            }
            QueryStatus::Pending | QueryStatus::Unknown => None,
        }
    }

    /// Moves the query to `q`, counting the change for [`query_generation`](Self::query_generation).
    fn set_query(&mut self, q: Query) {
        self.query = q;
        self.query_generation = self.query_generation.wrapping_add(1);
    }

    /// The query's request, when one is due at `now` (called by `poll_transmit` first).
    pub(super) fn query_transmit<'b>(
        &mut self,
        now: Now,
        buf: &'b mut [u8],
    ) -> Option<Transmit<'b>> {
        let Query::Pending {
            ticket,
            len,
            not_before,
            ..
        } = self.query
        else {
            return None;
        };
        if not_before.is_some_and(|t| now.mono < t) {
            return None;
        }
        if self.shut_down {
            self.set_query(Query::Done {
                ticket,
                result: Err(FlagErrors::new()),
            });
            return None;
        }
        let body = self
            .remote
            .as_mut()
            .map(|r| r.scratch())
            .and_then(|s| s.get(..len));
        let fits = body.is_some_and(|b| b.len() <= buf.len());
        let (Some(body), true) = (body, fits) else {
            ph_warn!("/flags request larger than the request buffer: not sent");
            self.set_query(Query::Done {
                ticket,
                result: Err(FlagErrorKind::UnknownError.into()),
            });
            return None;
        };
        let out = buf.get_mut(..len)?;
        out.copy_from_slice(body);
        self.in_flight = InFlight::Flags;
        bump(&mut self.stats.requests, 1);
        let mut path = heapless::String::new();
        let _ = path.push_str(super::FLAGS_PATH);
        Some(Transmit::from_parts(
            RequestKind::Flags,
            Method::Post,
            path,
            out,
            None,
            None,
        ))
    }

    /// [`merge_all_flags`](Self::merge_all_flags) over the answer of query `ticket`; 0 when it
    /// is not answered.
    pub fn merge_query_answer(
        &self,
        now: Now,
        ticket: QueryTicket,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        out: impl FnMut(FlagResult<'_>),
    ) -> usize {
        match (self.flags_query(ticket), self.remote.as_ref()) {
            (QueryStatus::Answered, Some(remote)) => {
                self.merge_all_flags(now, ctx, keys, remote, out)
            }
            _ => 0,
        }
    }

    /// When the open query wants to be sent (`None`: none, or none waiting).
    pub(super) fn query_due(&self) -> Option<Instant> {
        match self.query {
            Query::Pending { not_before, .. } => Some(not_before.unwrap_or(Instant::ZERO)),
            _ => None,
        }
    }

    /// Settles the query in flight with the server's answer.
    pub(super) fn query_response(&mut self, now: Now, resp: &ResponseInfo<'_>, body: &[u8]) {
        if core::mem::take(&mut self.abandoned) {
            self.set_query(Query::Idle);
            return;
        }
        if (200..300).contains(&resp.status) {
            let Query::Pending { ticket, .. } = self.query else {
                return;
            };
            let parse = self.parse_answer;
            let parsed = self
                .remote
                .as_mut()
                .zip(parse)
                .map(|(r, parse)| parse(r, body));
            let result = match parsed {
                Some(Ok(())) => Ok(()),
                _ => {
                    ph_warn!("/flags answer unusable");
                    Err(FlagErrorKind::UnknownError.into())
                }
            };
            self.set_query(Query::Done { ticket, result });
        } else {
            self.query_attempt_failed(now, FlagsAttempt::Status(resp.status));
        }
    }

    /// Settles the query in flight when no answer arrived.
    pub(super) fn query_transport_error(&mut self, now: Now, error: TransportError) {
        if core::mem::take(&mut self.abandoned) {
            self.set_query(Query::Idle);
            return;
        }
        let attempt = match error {
            TransportError::Refused => FlagsAttempt::Refused,
            _ => FlagsAttempt::Transport,
        };
        let kind = match error {
            TransportError::Timeout => FlagErrorKind::Timeout,
            TransportError::BadResponse => FlagErrorKind::UnknownError,
            _ => FlagErrorKind::ConnectionError,
        };
        self.query_failed_with(now, attempt, kind);
    }

    fn query_attempt_failed(&mut self, now: Now, attempt: FlagsAttempt) {
        self.query_failed_with(now, attempt, FlagsRetry::error_kind(attempt));
    }

    /// Retries the query after its delay, or fails it with `kind`.
    fn query_failed_with(&mut self, now: Now, attempt: FlagsAttempt, kind: FlagErrorKind) {
        let Query::Pending {
            ticket,
            len,
            mut retry,
            ..
        } = self.query
        else {
            return;
        };
        match retry.next_delay(attempt) {
            Some(d) if self.online && !self.shut_down => {
                ph_debug!("/flags attempt failed: retrying in {} ms", d.as_millis());
                self.query = Query::Pending {
                    ticket,
                    len,
                    retry,
                    not_before: Some(now.mono + d),
                };
            }
            _ => {
                ph_warn!("/flags request failed");
                self.set_query(Query::Done {
                    ticket,
                    result: Err(kind.into()),
                });
            }
        }
    }

    /// The link went down: an open query that is not in flight fails (`connection_error`).
    pub(super) fn query_offline(&mut self) {
        if let (Query::Pending { ticket, .. }, false) =
            (self.query, self.in_flight == InFlight::Flags)
        {
            self.set_query(Query::Done {
                ticket,
                result: Err(FlagErrorKind::ConnectionError.into()),
            });
        }
    }

    /// Shutdown: an open query that is not in flight fails, without an event.
    pub(super) fn query_shutdown(&mut self) {
        if let (Query::Pending { ticket, .. }, false) =
            (self.query, self.in_flight == InFlight::Flags)
        {
            self.set_query(Query::Done {
                ticket,
                result: Err(FlagErrors::new()),
            });
        }
    }
}
