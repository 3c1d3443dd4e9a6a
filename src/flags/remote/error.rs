//! The `$feature_flag_error` value: error kinds composed into a set and rendered exactly as
//! PostHog's SDKs render them (comma-separated, in the SDKs' order).

use core::fmt;

use crate::json::write::{Value, ValueWriter};

/// One reason a flag read could not be answered normally: one `$feature_flag_error` value
/// (posthog-python `types.py`, `FeatureFlagError`; `@posthog/core` `FeatureFlagError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FlagErrorKind {
    /// `timeout`: the `/flags` request timed out.
    Timeout,
    /// `connection_error`: no connection (DNS, refused, reset, TLS).
    ConnectionError,
    /// `api_error_<status>`: the server answered with this non-success HTTP status.
    ApiError(u16),
    /// `unknown_error`: the request failed some other way (an unparsable answer, say).
    UnknownError,
    /// `errors_while_computing_flags`: the answer had `errorsWhileComputingFlags: true`.
    ErrorsWhileComputing,
    /// `quota_limited`: the answer's `quotaLimited` listed `feature_flags`.
    QuotaLimited,
    /// `flag_missing`: the flag is not in the answer.
    FlagMissing,
    /// `evaluation_failed`: the answer marked the flag `failed: true`.
    EvaluationFailed,
}

const TIMEOUT: u8 = 1;
const CONNECTION: u8 = 2;
const API: u8 = 4;
const UNKNOWN: u8 = 8;
const COMPUTING: u8 = 16;
const QUOTA: u8 = 32;
const MISSING: u8 = 64;
const EVAL_FAILED: u8 = 128;

/// Every kind in rendering order; the API error's name is followed by its status.
const ORDER: [(u8, &str); 8] = [
    (TIMEOUT, "timeout"),
    (CONNECTION, "connection_error"),
    (API, "api_error_"),
    (UNKNOWN, "unknown_error"),
    (COMPUTING, "errors_while_computing_flags"),
    (QUOTA, "quota_limited"),
    (MISSING, "flag_missing"),
    (EVAL_FAILED, "evaluation_failed"),
];

/// Every kind with a five-digit status: the longest rendering.
const ALL_KINDS: &str = "timeout,connection_error,api_error_65535,unknown_error,\
errors_while_computing_flags,quota_limited,flag_missing,evaluation_failed";

/// A set of [`FlagErrorKind`]s: the value of `$feature_flag_error`.
///
/// Rendered ([`Display`](fmt::Display), [`render`](Self::render), or written directly as a
/// JSON [`Value`]) as the kinds' names joined with `,` and no spaces, in this fixed order:
///
/// `timeout`, `connection_error`, `api_error_<status>`, `unknown_error`,
/// `errors_while_computing_flags`, `quota_limited`, `flag_missing`, `evaluation_failed`.
///
/// The response-level order (`errors_while_computing_flags`, `quota_limited`, `flag_missing`)
/// is posthog-node's and posthog-python's (`_getFeatureFlagResult`, `_get_feature_flag_result`
/// and PY's `FeatureFlagEvaluations`); `evaluation_failed` is per flag, so it goes after
/// `flag_missing` (the two never occur together). Transport errors never combine with
/// response-level errors in the SDKs (a failed request has no answer); they are put first,
/// as posthog-js does for its request error. Only one API status is kept (the last inserted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FlagErrors {
    bits: u8,
    status: u16,
}

impl FlagErrors {
    /// The longest rendering: every kind, with a five-digit API status.
    pub const MAX_LEN: usize = ALL_KINDS.len();

    /// No error.
    #[must_use]
    pub const fn new() -> Self {
        Self { bits: 0, status: 0 }
    }

    const fn bit(kind: FlagErrorKind) -> u8 {
        match kind {
            FlagErrorKind::Timeout => TIMEOUT,
            FlagErrorKind::ConnectionError => CONNECTION,
            FlagErrorKind::ApiError(_) => API,
            FlagErrorKind::UnknownError => UNKNOWN,
            FlagErrorKind::ErrorsWhileComputing => COMPUTING,
            FlagErrorKind::QuotaLimited => QUOTA,
            FlagErrorKind::FlagMissing => MISSING,
            FlagErrorKind::EvaluationFailed => EVAL_FAILED,
        }
    }

    /// `self` with `kind` added.
    #[must_use]
    pub const fn with(mut self, kind: FlagErrorKind) -> Self {
        self.bits |= Self::bit(kind);
        if let FlagErrorKind::ApiError(status) = kind {
            self.status = status;
        }
        self
    }

    /// Adds `kind`.
    pub fn insert(&mut self, kind: FlagErrorKind) {
        *self = self.with(kind);
    }

    /// Whether `kind` is in the set (an [`ApiError`](FlagErrorKind::ApiError) must match its
    /// status too).
    #[must_use]
    pub const fn contains(&self, kind: FlagErrorKind) -> bool {
        let has = self.bits & Self::bit(kind) != 0;
        match kind {
            FlagErrorKind::ApiError(s) => has && self.status == s,
            _ => has,
        }
    }

    /// Whether there is no error (then `$feature_flag_error` is left out).
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.bits == 0
    }

    /// Renders the comma-joined value into `buf` and returns it.
    pub fn render<'b>(&self, buf: &'b mut [u8; Self::MAX_LEN]) -> &'b str {
        let mut w = BufWriter { buf, len: 0 };
        let _ = fmt::Write::write_fmt(&mut w, format_args!("{self}"));
        let len = w.len;
        core::str::from_utf8(buf.get(..len).unwrap_or_default()).unwrap_or_default()
    }
}

impl From<FlagErrorKind> for FlagErrors {
    fn from(kind: FlagErrorKind) -> Self {
        Self::new().with(kind)
    }
}

impl fmt::Display for FlagErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (bit, name) in ORDER {
            if self.bits & bit == 0 {
                continue;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(name)?;
            if bit == API {
                write!(f, "{}", self.status)?;
            }
        }
        Ok(())
    }
}

/// Writes into a fixed buffer, failing (without panicking) when full.
struct BufWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl fmt::Write for BufWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Writes the comma-joined string (call only when not [`is_empty`](FlagErrors::is_empty)).
impl Value for FlagErrors {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), crate::error::PropertyError> {
        let mut buf = [0u8; Self::MAX_LEN];
        w.str(self.render(&mut buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::write::Sink;
    use std::string::ToString;

    #[test]
    fn flag_errors_render_in_sdk_order() {
        let all = FlagErrors::new()
            .with(FlagErrorKind::EvaluationFailed)
            .with(FlagErrorKind::FlagMissing)
            .with(FlagErrorKind::QuotaLimited)
            .with(FlagErrorKind::ErrorsWhileComputing)
            .with(FlagErrorKind::UnknownError)
            .with(FlagErrorKind::ApiError(65535))
            .with(FlagErrorKind::ConnectionError)
            .with(FlagErrorKind::Timeout);
        let mut buf = [0u8; FlagErrors::MAX_LEN];
        assert_eq!(all.render(&mut buf), ALL_KINDS);
        assert_eq!(all.render(&mut buf).len(), FlagErrors::MAX_LEN);
        assert_eq!(
            FlagErrors::from(FlagErrorKind::ApiError(500)).to_string(),
            "api_error_500"
        );
        let mut e = FlagErrors::new();
        assert!(e.is_empty());
        assert_eq!(e.to_string(), "");
        e.insert(FlagErrorKind::FlagMissing);
        e.insert(FlagErrorKind::ErrorsWhileComputing);
        assert_eq!(e.to_string(), "errors_while_computing_flags,flag_missing");
        assert!(e.contains(FlagErrorKind::FlagMissing));
        assert!(!e.contains(FlagErrorKind::QuotaLimited));
        e.insert(FlagErrorKind::ApiError(502));
        assert!(e.contains(FlagErrorKind::ApiError(502)));
        assert!(!e.contains(FlagErrorKind::ApiError(500)));
        // As a JSON property value.
        let mut out = [0u8; 128];
        let mut sink = Sink::new(&mut out, 64);
        let mut o = crate::json::write::Object::open(&mut sink, &[]);
        o.prop("$feature_flag_error", e).unwrap();
        o.close();
        assert_eq!(
            sink.written().unwrap(),
            br#"{"$feature_flag_error":"api_error_502,errors_while_computing_flags,flag_missing"}"#
        );
    }
}
