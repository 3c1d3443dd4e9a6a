//! PostHog's flag surface on the core, over local evaluation and (for the merge) a parsed
//! `/flags` answer: [`Client::feature_flag_result`], [`Client::is_feature_enabled_or`],
//! [`Client::feature_flag_payload_for`], [`Client::all_flags`] and
//! [`Client::merge_all_flags`]. Outputs are bounded by the caller: single reads borrow the
//! store, bulk reads hand every flag to a callback.
//!
//! Payloads are JSON text. One that is empty or not valid JSON reads as no payload, as
//! posthog-python's single-flag getter treats a payload it cannot parse.

use super::flags::is_blank;
use super::Client;
use crate::flags::remote::RemoteFlags;
use crate::flags::{EvalContext, FlagValue, Inconclusive};
use crate::json::read::Reader;
use crate::time::Now;

/// A flag's value with its payload: what PostHog's `get_feature_flag_result` returns.
///
/// A boolean flag is `enabled` with no [`variant`](Self::variant); a multivariate flag is
/// enabled with its variant; the payload is the one configured for that value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct FlagResult<'a> {
    /// The flag key.
    pub key: &'a str,
    /// Whether the flag is on (anything but `false`).
    pub enabled: bool,
    /// The value.
    pub value: FlagValue,
    /// The payload's JSON text, when the value has a valid one.
    pub payload: Option<&'a str>,
}

impl<'a> FlagResult<'a> {
    /// A result for `value` of flag `key` with `payload` (kept only when it is valid JSON).
    #[must_use]
    pub fn new(key: &'a str, value: FlagValue, payload: Option<&'a str>) -> Self {
        Self {
            key,
            enabled: value.is_enabled(),
            value,
            payload: payload.and_then(valid_payload),
        }
    }

    /// The variant of a multivariate flag (`None` for a boolean flag or a holdout).
    #[must_use]
    pub fn variant(&self) -> Option<&str> {
        self.value.as_variant()
    }
}

/// `payload` when it is non-empty, valid JSON (one value, nothing after it); else `None`.
#[must_use]
pub fn valid_payload(payload: &str) -> Option<&str> {
    let mut r = Reader::new(payload.as_bytes());
    let mut depth = 0usize;
    let mut values = 0usize;
    loop {
        match r.next() {
            Ok(Some(tok)) => {
                use crate::json::read::Token;
                match tok {
                    Token::ObjectStart | Token::ArrayStart => {
                        if depth == 0 {
                            values += 1;
                        }
                        depth += 1;
                    }
                    Token::ObjectEnd | Token::ArrayEnd => depth = depth.saturating_sub(1),
                    Token::Key(_) => {}
                    _ if depth == 0 => values += 1,
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => return None,
        }
    }
    (values == 1).then_some(payload)
}

/// What [`Client::all_flags`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct LocalFlags {
    /// Flags handed to the callback.
    pub decided: usize,
    /// Some flag (or a requested key) could not be decided locally, or no definitions are
    /// loaded: PostHog's SDKs then ask the server once ([`Client::merge_all_flags`]).
    pub incomplete: bool,
}

impl Client<'_> {
    /// [`feature_flag`](Self::feature_flag) with the payload of the value: PostHog's
    /// `get_feature_flag_result`, local step. Queues the same `$feature_flag_called` event
    /// when `send_event` is true.
    ///
    /// # Errors
    /// As [`feature_flag`](Self::feature_flag).
    pub fn feature_flag_result(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        send_event: bool,
    ) -> Result<FlagResult<'_>, Inconclusive> {
        // The event first (it needs `&mut self`), then the result borrowing the store: the
        // evaluation is deterministic, so both see the same value.
        if send_event {
            self.feature_flag(now, key, ctx, true)?;
        }
        self.local_result(now, key, ctx)
    }

    /// The local result of flag `key`, no event.
    fn local_result(
        &self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
    ) -> Result<FlagResult<'_>, Inconclusive> {
        if is_blank(ctx.distinct_id) {
            return Err(Inconclusive::UnknownFlag);
        }
        let mut groups = heapless::Vec::new();
        let value = self
            .flags
            .evaluate(key, &ctx.prepared(&mut groups), now.wall)?;
        let stored = self.flags.keys().find(|k| *k == key).unwrap_or_default();
        Ok(FlagResult::new(
            stored,
            value,
            self.flags.payload(key, &value),
        ))
    }

    /// Whether flag `key` is on for `ctx`, or `default` when it has no local value (unknown,
    /// not loaded, inconclusive, blank distinct id). A value, `false` included, always beats
    /// the default. Queues `$feature_flag_called` for a value when `send_event` is true.
    pub fn is_feature_enabled_or(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        default: bool,
        send_event: bool,
    ) -> bool {
        self.feature_flag(now, key, ctx, send_event)
            .map_or(default, |v| v.is_enabled())
    }

    /// The payload of flag `key`: of `match_value` when given (no evaluation), else of the
    /// value it takes for `ctx` locally. No event. `Ok(None)`: no payload for that value, or
    /// one that is empty or not valid JSON.
    ///
    /// # Errors
    /// [`Inconclusive`] when no `match_value` is given and only the server can decide.
    pub fn feature_flag_payload_for(
        &self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        match_value: Option<FlagValue>,
    ) -> Result<Option<&str>, Inconclusive> {
        match match_value {
            Some(v) => Ok(self.flags.payload(key, &v).and_then(valid_payload)),
            None => self
                .feature_flag_payload(now, key, ctx)
                .map(|p| p.and_then(valid_payload)),
        }
    }

    /// Evaluates every locally defined flag (or only `keys`) for `ctx` and hands each decided
    /// one to `out` with its payload, without `$feature_flag_called` events (bulk reads never
    /// send them). A blank distinct id decides nothing and is not incomplete (nobody is asked).
    pub fn all_flags(
        &self,
        now: Now,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        mut out: impl FnMut(FlagResult<'_>),
    ) -> LocalFlags {
        let mut found = LocalFlags::default();
        if is_blank(ctx.distinct_id) {
            return found;
        }
        let mut groups = heapless::Vec::new();
        let ctx = ctx.prepared(&mut groups);
        found.incomplete = !self.flags.is_loaded();
        let mut one = |key: &str| match self.flags.evaluate(key, &ctx, now.wall) {
            Ok(v) => {
                let stored = self.flags.keys().find(|k| *k == key).unwrap_or(key);
                out(FlagResult::new(stored, v, self.flags.payload(key, &v)));
                found.decided += 1;
            }
            Err(_) => found.incomplete = true,
        };
        match keys {
            Some(keys) => keys.iter().for_each(|k| one(k)),
            None => self.flags.keys().for_each(&mut one),
        }
        found
    }

    /// Every flag for `ctx` after one `/flags` answer (`remote`, asked because
    /// [`all_flags`](Self::all_flags) was incomplete), merged as posthog-python merges them:
    /// the server's values replace the local ones, except for flags the server marked
    /// `failed`, which keep their local value (or are left out without one). A quota-limited
    /// answer gives nothing. `keys` limits the flags reported. No events.
    pub fn merge_all_flags(
        &self,
        now: Now,
        ctx: &EvalContext<'_>,
        keys: Option<&[&str]>,
        remote: &RemoteFlags<'_>,
        mut out: impl FnMut(FlagResult<'_>),
    ) -> usize {
        if is_blank(ctx.distinct_id) || remote.quota_limited() {
            return 0;
        }
        let mut n = 0;
        for flag in remote.iter() {
            if keys.is_some_and(|k| !k.contains(&flag.key)) {
                continue;
            }
            if flag.failed {
                if let Ok(local) = self.local_result(now, flag.key, ctx) {
                    out(local);
                    n += 1;
                }
            } else {
                out(FlagResult::new(flag.key, flag.value, flag.payload));
                n += 1;
            }
        }
        n
    }

    /// The result of a single-flag read the server answered (`remote`), with the same
    /// `$feature_flag_called` event as [`remote_flag_called`](Self::remote_flag_called).
    /// `None`: missing, failed, or quota limited.
    pub fn remote_flag_result<'a>(
        &mut self,
        now: Now,
        key: &str,
        ctx: &EvalContext<'_>,
        remote: &'a RemoteFlags<'_>,
        send_event: bool,
    ) -> Option<FlagResult<'a>> {
        let value = self.remote_flag_called(now, key, ctx, remote, send_event)?;
        let flag = remote.get(key)?;
        Some(FlagResult::new(flag.key, value, flag.payload))
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::ToOwned;

    use super::*;
    use crate::client::resources::Resources;
    use crate::client::Config;
    use crate::flags::remote::RemoteStorage;
    use crate::time::Instant;

    const DEFS: &[u8] = br#"{"flags":[
        {"id":1,"key":"beta-ui","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],"payloads":{"true":"{\"color\":\"green\"}"}}},
        {"id":2,"key":"checkout","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],
            "multivariate":{"variants":[{"key":"blue","rollout_percentage":100}]},"payloads":{"blue":"{\"copy\":\"new\"}"}}},
        {"id":3,"key":"off","active":false,"filters":{"groups":[{"properties":[],"rollout_percentage":100}]}},
        {"id":4,"key":"bad-payload","active":true,"filters":{"groups":[{"properties":[],"rollout_percentage":100}],"payloads":{"true":"not json {"}}},
        {"id":5,"key":"needs-server","active":true,"filters":{"groups":[{"properties":[{"key":"email","operator":"exact","value":"a@b.c","type":"person"}],"rollout_percentage":100}]}}
    ]}"#;

    fn ctx(id: &str) -> EvalContext<'_> {
        EvalContext {
            distinct_id: id,
            device_id: None,
            person: &[],
            groups: &[],
        }
    }

    const NOW: Now = Now::mono(Instant::from_millis(1));

    #[test]
    fn results_carry_enabled_variant_and_valid_payloads_only() {
        let mut res = Resources::<4096, 8, 64, 2048, 16>::new();
        let mut c = Client::new(Config::new("phc_k", 1), &mut res).unwrap();
        c.load_definitions(DEFS).unwrap();
        let u = ctx("user-123");
        let r = c.feature_flag_result(NOW, "checkout", &u, false).unwrap();
        assert_eq!(
            (r.key, r.enabled, r.variant()),
            ("checkout", true, Some("blue"))
        );
        assert_eq!(r.payload, Some(r#"{"copy":"new"}"#));
        let r = c.feature_flag_result(NOW, "off", &u, false).unwrap();
        assert_eq!((r.enabled, r.variant(), r.payload), (false, None, None));
        let r = c
            .feature_flag_result(NOW, "bad-payload", &u, false)
            .unwrap();
        assert_eq!((r.enabled, r.payload), (true, None));
        assert_eq!(
            c.feature_flag_result(NOW, "unknown", &u, true),
            Err(Inconclusive::UnknownFlag)
        );
        // The exposure event is queued once, with tracking on.
        c.feature_flag_result(NOW, "beta-ui", &u, true).unwrap();
        c.feature_flag_result(NOW, "beta-ui", &u, true).unwrap();
        assert_eq!(c.pending(), 1);
    }

    #[test]
    fn enabled_with_a_default_only_for_flags_without_a_value() {
        let mut res = Resources::<4096, 8, 64, 2048, 16>::new();
        let mut c = Client::new(Config::new("phc_k", 1), &mut res).unwrap();
        c.load_definitions(DEFS).unwrap();
        let u = ctx("user-123");
        assert!(!c.is_feature_enabled_or(NOW, "missing", &u, false, false));
        assert!(c.is_feature_enabled_or(NOW, "missing", &u, true, false));
        assert!(!c.is_feature_enabled_or(NOW, "off", &u, true, false));
        assert!(c.is_feature_enabled_or(NOW, "checkout", &u, false, false));
        assert!(c.is_feature_enabled_or(NOW, "needs-server", &u, true, false));
        assert!(c.is_feature_enabled_or(NOW, "beta-ui", &ctx(" "), true, false));
        assert_eq!(c.pending(), 0, "tracking off: no exposure event");
    }

    #[test]
    fn payloads_of_a_match_value_or_the_evaluated_one() {
        let mut res = Resources::<4096, 8, 64, 2048, 16>::new();
        let mut c = Client::new(Config::new("phc_k", 1), &mut res).unwrap();
        c.load_definitions(DEFS).unwrap();
        let u = ctx("user-123");
        assert_eq!(
            c.feature_flag_payload_for(NOW, "checkout", &u, None),
            Ok(Some(r#"{"copy":"new"}"#))
        );
        assert_eq!(
            c.feature_flag_payload_for(
                NOW,
                "checkout",
                &u,
                Some(FlagValue::variant("blue").unwrap())
            ),
            Ok(Some(r#"{"copy":"new"}"#))
        );
        assert_eq!(
            c.feature_flag_payload_for(
                NOW,
                "checkout",
                &u,
                Some(FlagValue::variant("red").unwrap())
            ),
            Ok(None)
        );
        assert_eq!(
            c.feature_flag_payload_for(NOW, "beta-ui", &u, Some(FlagValue::Bool(true))),
            Ok(Some(r#"{"color":"green"}"#))
        );
        assert_eq!(
            c.feature_flag_payload_for(NOW, "bad-payload", &u, None),
            Ok(None)
        );
        assert_eq!(
            c.feature_flag_payload_for(NOW, "unknown", &u, Some(FlagValue::Bool(true))),
            Ok(None)
        );
        assert_eq!(c.pending(), 0, "payload reads send no event");
    }

    #[test]
    fn bulk_reads_report_local_values_keys_and_incompleteness() {
        let mut res = Resources::<4096, 8, 64, 2048, 16>::new();
        let mut c = Client::new(Config::new("phc_k", 1), &mut res).unwrap();
        let u = ctx("user-123");
        let mut seen = std::vec::Vec::new();
        // Nothing loaded: nothing decided, incomplete (ask the server).
        let r = c.all_flags(NOW, &u, None, |f| seen.push(f.key.to_owned()));
        assert_eq!((r.decided, r.incomplete, seen.len()), (0, true, 0));
        c.load_definitions(DEFS).unwrap();
        let mut all = std::vec::Vec::new();
        let r = c.all_flags(NOW, &u, None, |f| {
            all.push((f.key.to_owned(), f.enabled, f.payload.map(str::to_owned)));
        });
        assert!(r.incomplete, "needs-server is inconclusive");
        assert_eq!(r.decided, 4);
        assert_eq!(
            all,
            [
                ("bad-payload".into(), true, None),
                ("beta-ui".into(), true, Some(r#"{"color":"green"}"#.into())),
                ("checkout".into(), true, Some(r#"{"copy":"new"}"#.into())),
                ("off".into(), false, None),
            ]
        );
        let mut some = std::vec::Vec::new();
        let r = c.all_flags(NOW, &u, Some(&["beta-ui", "checkout"]), |f| {
            some.push(f.key.to_owned());
        });
        assert_eq!((r.decided, r.incomplete), (2, false));
        assert_eq!(some, ["beta-ui", "checkout"]);
        // A requested key without a definition makes the set incomplete.
        let r = c.all_flags(NOW, &u, Some(&["beta-ui", "remote-only"]), |_| {});
        assert_eq!((r.decided, r.incomplete), (1, true));
        // A blank distinct id: nothing, and nobody to ask.
        let r = c.all_flags(NOW, &ctx(""), None, |_| panic!("no flag for a blank id"));
        assert_eq!((r.decided, r.incomplete), (0, false));
        assert_eq!(c.pending(), 0, "bulk reads send no event");
    }

    #[test]
    fn the_remote_answer_replaces_local_values_except_failed_flags() {
        let mut res = Resources::<4096, 8, 64, 2048, 16>::new();
        let mut c = Client::new(Config::new("phc_k", 1), &mut res).unwrap();
        c.load_definitions(DEFS).unwrap();
        let mut st = RemoteStorage::<8, 512>::new();
        let mut remote = RemoteFlags::new(&mut st);
        remote
            .parse(
                br#"{"flags":{
                "beta-ui":{"key":"beta-ui","enabled":false},
                "checkout":{"key":"checkout","enabled":false,"failed":true},
                "remote-only":{"key":"remote-only","enabled":true,"variant":"x","metadata":{"payload":"{\"n\":1}"}},
                "lost":{"key":"lost","enabled":true,"failed":true}}}"#,
            )
            .unwrap();
        let u = ctx("user-123");
        let mut got = std::vec::Vec::new();
        let n = c.merge_all_flags(NOW, &u, None, &remote, |f| {
            got.push((
                f.key.to_owned(),
                f.value.is_enabled(),
                f.variant().map(str::to_owned),
            ));
        });
        assert_eq!(n, 3);
        got.sort();
        assert_eq!(
            got,
            [
                ("beta-ui".into(), false, None),
                ("checkout".into(), true, Some("blue".into())),
                ("remote-only".into(), true, Some("x".into())),
            ]
        );
        let mut only = 0;
        c.merge_all_flags(NOW, &u, Some(&["remote-only"]), &remote, |f| {
            assert_eq!(f.payload, Some(r#"{"n":1}"#));
            only += 1;
        });
        assert_eq!(only, 1);
        remote.parse(br#"{"flags":{"beta-ui":{"key":"beta-ui","enabled":true}},"quotaLimited":["feature_flags"]}"#).unwrap();
        assert_eq!(c.merge_all_flags(NOW, &u, None, &remote, |_| {}), 0);
    }

    #[test]
    fn payload_validity() {
        assert_eq!(valid_payload(r#"{"a":[1,2]}"#), Some(r#"{"a":[1,2]}"#));
        assert_eq!(valid_payload("42"), Some("42"));
        assert_eq!(valid_payload(r#""text""#), Some(r#""text""#));
        assert_eq!(valid_payload(""), None);
        assert_eq!(valid_payload("   "), None);
        assert_eq!(valid_payload("this is a string"), None);
        assert_eq!(valid_payload("1 2"), None);
        assert_eq!(valid_payload(r#"{"a":1} {"b":2}"#), None);
        assert_eq!(valid_payload(r#"{"a":"#), None);
    }
}
