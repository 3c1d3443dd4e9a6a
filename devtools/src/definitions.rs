//! A flag-definitions document loaded for host tools: the raw bytes (served as is), an `ETag`,
//! and the compiled [`StdFlagStore`] that evaluates flags exactly as a device does.
//!
//! [`Definitions::evaluate_all`] evaluates every flag (or a chosen few) for one context and
//! returns [`FlagOutcome`]s; [`flags_response`] and [`decide_response`] render them as
//! PostHog's `/flags?v=2` (or `v=4`) and legacy `/decide?v=3` answers; [`without_cohorts`]
//! is the document as served when `send_cohorts` is not asked for.

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{json, Map, Value};

use super::context::OwnedContext;
use posthog_embedded::adapters::std::{StdFlagStore, STD_CAPACITIES};
use posthog_embedded::flags::{
    EvalContext, FlagInfo, FlagValue, Inconclusive, LoadError, MatchReason, Requirements,
};
use posthog_embedded::json::read::{Reader, Token, MAX_DEPTH};
use posthog_embedded::time::UnixMillis;

/// A loaded definitions document. See the [module docs](self).
pub struct Definitions {
    raw: Vec<u8>,
    etag: String,
    store: StdFlagStore,
    requirements: Requirements,
}

impl core::fmt::Debug for Definitions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Definitions")
            .field("bytes", &self.raw.len())
            .field("etag", &self.etag)
            .field("requirements", &self.requirements)
            .finish_non_exhaustive()
    }
}

/// Why a definitions document could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum DefinitionsError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The document was refused by the flag store (not JSON, wrong shape, too large).
    Load(LoadError),
}

impl core::fmt::Display for DefinitionsError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Load(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for DefinitionsError {}

/// One flag's result for one context.
#[derive(Clone, Debug, PartialEq)]
pub struct FlagOutcome {
    /// The flag key.
    pub key: String,
    /// The value and why, or why the device cannot decide.
    pub result: Result<(OwnedValue, MatchReason), Inconclusive>,
    /// The payload (JSON text) for the value, if any.
    pub payload: Option<String>,
    /// The definition's id, version and experiment flag.
    pub info: FlagInfo,
}

/// An owned [`FlagValue`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedValue {
    /// `true` or `false`.
    Bool(bool),
    /// A variant key (also `holdout-<id>`).
    Variant(String),
}

impl OwnedValue {
    fn from_value(v: &FlagValue) -> Self {
        match v {
            FlagValue::Bool(b) => Self::Bool(*b),
            other => Self::Variant(other.to_string()),
        }
    }

    /// The value as JSON: `true`, `false` or the variant string.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Bool(b) => Value::Bool(*b),
            Self::Variant(v) => Value::String(v.clone()),
        }
    }

    /// Whether the flag is on.
    #[must_use]
    pub const fn is_enabled(&self) -> bool {
        !matches!(self, Self::Bool(false))
    }
}

impl core::fmt::Display for OwnedValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Variant(v) => f.write_str(v),
        }
    }
}

/// Compiles `doc` into a store of [`STD_CAPACITIES`]`.flags`, allocated on the heap directly.
fn load_store(doc: &[u8]) -> Result<(StdFlagStore, Requirements), LoadError> {
    let mut store = StdFlagStore::with_capacity(STD_CAPACITIES.flags);
    let req = store.load(doc)?;
    Ok((store, req))
}

impl Definitions {
    /// Compiles `doc`.
    ///
    /// # Errors
    /// [`LoadError`] as [`FlagStore::load`](posthog_embedded::flags::FlagStore::load) reports it.
    pub fn load(doc: Vec<u8>) -> Result<Self, LoadError> {
        let etag = etag_of(&doc);
        let (store, requirements) = load_store(&doc)?;
        Ok(Self {
            raw: doc,
            etag,
            store,
            requirements,
        })
    }

    /// Reads and compiles the file at `path`.
    ///
    /// # Errors
    /// [`DefinitionsError`].
    pub fn from_file(path: &std::path::Path) -> Result<Self, DefinitionsError> {
        let doc = std::fs::read(path).map_err(DefinitionsError::Io)?;
        Self::load(doc).map_err(DefinitionsError::Load)
    }

    /// The document as loaded.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// A strong `ETag` of the document (quoted).
    #[must_use]
    pub fn etag(&self) -> &str {
        &self.etag
    }

    /// What the document needs in a device's flag store.
    #[must_use]
    pub const fn requirements(&self) -> Requirements {
        self.requirements
    }

    /// The compiled store.
    #[must_use]
    pub fn store(&self) -> &StdFlagStore {
        &self.store
    }

    /// Whether the document asks for minimal `$feature_flag_called` events
    /// (`minimal_flag_called_events`), passed on in `/flags` answers.
    #[must_use]
    pub const fn minimal_flag_called_events(&self) -> bool {
        self.store.minimal_flag_called_events()
    }

    /// Every flag key, sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        self.store.keys().map(str::to_owned).collect()
    }

    /// Evaluates `keys` (every flag when `None`; unknown keys are reported as
    /// [`Inconclusive::UnknownFlag`]) for `ctx` at wall-clock time `now`.
    #[must_use]
    pub fn evaluate_all(
        &self,
        ctx: &EvalContext<'_>,
        now: Option<UnixMillis>,
        keys: Option<&[String]>,
    ) -> Vec<FlagOutcome> {
        let keys: Vec<String> = match keys {
            Some(k) => k.to_vec(),
            None => self.keys(),
        };
        keys.into_iter()
            .map(|key| {
                let detailed = self.store.evaluate_detailed(&key, ctx, now);
                let payload = detailed
                    .as_ref()
                    .ok()
                    .and_then(|e| self.store.payload(&key, &e.value))
                    .map(str::to_owned);
                let info = self.store.flag_info(&key).unwrap_or_default();
                FlagOutcome {
                    result: detailed.map(|e| (OwnedValue::from_value(&e.value), e.reason)),
                    key,
                    payload,
                    info,
                }
            })
            .collect()
    }

    /// [`evaluate_all`](Self::evaluate_all) for an owned context.
    ///
    /// # Errors
    /// As [`OwnedContext::with_eval_context`].
    pub fn evaluate_owned(
        &self,
        ctx: &OwnedContext,
        now: Option<UnixMillis>,
        keys: Option<&[String]>,
    ) -> Result<Vec<FlagOutcome>, String> {
        ctx.with_eval_context(|c| self.evaluate_all(c, now, keys))
    }
}

/// A strong `ETag` for `doc`: the first 16 hex digits of its SHA-1, quoted.
#[must_use]
pub fn etag_of(doc: &[u8]) -> String {
    let digest = sha1_smol::Sha1::from(doc).digest().bytes();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// `doc` without its top-level `cohorts` member, every other byte kept as it is (members in
/// their order, numbers as written): what PostHog serves when `send_cohorts` is not asked
/// for. `None` when `doc` is not a JSON object.
#[must_use]
pub fn without_cohorts(doc: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader::with_max_depth(doc, MAX_DEPTH);
    if r.next().ok()? != Some(Token::ObjectStart) {
        return None;
    }
    let mut out = doc.get(..r.offset())?.to_vec();
    let mut first_kept = true;
    let mut first = true;
    loop {
        let start = r.offset();
        match r.next().ok()? {
            Some(Token::Key(k)) => {
                r.skip_value().ok()?;
                let member = doc.get(start..r.offset())?;
                if !k.eq_str("cohorts") {
                    if first_kept && !first {
                        // Its separator belonged to a member left out: drop the comma.
                        let comma = member.iter().position(|b| !b.is_ascii_whitespace())?;
                        out.extend_from_slice(member.get(..comma)?);
                        out.extend_from_slice(member.get(comma + 1..)?);
                    } else {
                        out.extend_from_slice(member);
                    }
                    first_kept = false;
                }
                first = false;
            }
            Some(Token::ObjectEnd) => {
                out.extend_from_slice(doc.get(start..)?);
                return Some(out);
            }
            _ => return None,
        }
    }
}

/// PostHog's `/flags?v=2` answer for `outcomes` (with `v4`, each record also carries its
/// `value`: `true`, `false` or the variant, which posthog-python 7.91 reads from `/flags/?v=4`
/// in `types.py`, `_legacy_rendering`). `minimal_flag_called_events` is passed on as
/// `minimalFlagCalledEvents`.
///
/// A flag the device could not decide (a static cohort, experience continuity, a missing
/// property) is what a real server would evaluate with data this local server does not have:
/// it is answered `enabled: false, failed: true` with the reason in `reason.description`, and
/// `errorsWhileComputingFlags` is set, so SDKs report `errors_while_computing_flags` /
/// `evaluation_failed` rather than trusting a guess.
#[must_use]
pub fn flags_response(
    outcomes: &[FlagOutcome],
    request_id: &str,
    evaluated_at: u64,
    v4: bool,
    minimal_flag_called_events: bool,
) -> Value {
    let mut flags = Map::new();
    let mut errors = false;
    for o in outcomes {
        let metadata = json!({
            "id": o.info.id,
            "version": o.info.version,
            "payload": o.payload,
            "has_experiment": o.info.has_experiment.unwrap_or(false),
        });
        let mut record = match &o.result {
            Ok((value, reason)) => {
                let r = match reason.condition() {
                    Some(i) => json!({"code": reason.code(), "condition_index": i,
                        "description": reason.to_string()}),
                    None => json!({"code": reason.code(), "description": reason.to_string()}),
                };
                json!({
                    "key": o.key,
                    "enabled": value.is_enabled(),
                    "variant": match value { OwnedValue::Variant(v) => Value::from(v.as_str()), OwnedValue::Bool(_) => Value::Null },
                    "reason": r,
                    "metadata": metadata,
                    "failed": false,
                })
            }
            Err(Inconclusive::UnknownFlag) => continue,
            Err(e) => {
                errors = true;
                json!({
                    "key": o.key,
                    "enabled": false,
                    "variant": null,
                    "reason": {"code": "evaluation_failed", "description": format!("the local server cannot decide: {}", e.as_str())},
                    "metadata": metadata,
                    "failed": true,
                })
            }
        };
        if v4 {
            let value = match &o.result {
                Ok((value, _)) => value.to_json(),
                Err(_) => Value::Bool(false),
            };
            if let Value::Object(m) = &mut record {
                m.insert("value".to_owned(), value);
            }
        }
        flags.insert(o.key.clone(), record);
    }
    json!({
        "flags": flags,
        "errorsWhileComputingFlags": errors,
        "quotaLimited": [],
        "requestId": request_id,
        "evaluatedAt": evaluated_at,
        "minimalFlagCalledEvents": minimal_flag_called_events,
    })
}

/// The legacy `/decide?v=3` answer for `outcomes`: `featureFlags` and `featureFlagPayloads`
/// (undecidable flags are left out and `errorsWhileComputingFlags` is set).
#[must_use]
pub fn decide_response(outcomes: &[FlagOutcome]) -> Value {
    let mut values = Map::new();
    let mut payloads = Map::new();
    let mut errors = false;
    for o in outcomes {
        match &o.result {
            Ok((value, _)) => {
                values.insert(o.key.clone(), value.to_json());
                if let Some(p) = &o.payload {
                    payloads.insert(o.key.clone(), Value::from(p.as_str()));
                }
            }
            Err(Inconclusive::UnknownFlag) => {}
            Err(_) => errors = true,
        }
    }
    json!({
        "featureFlags": values,
        "featureFlagPayloads": payloads,
        "errorsWhileComputingFlags": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &[u8] = br#"{"flags": [
        {"id": 1, "key": "on", "active": true, "version": 3, "filters": {"groups": [{"properties": [], "rollout_percentage": 100}], "payloads": {"true": "{\"a\": 1}"}}},
        {"id": 2, "key": "off", "active": false, "filters": {"groups": [{"properties": [], "rollout_percentage": 100}]}},
        {"id": 3, "key": "needs", "active": true, "filters": {"groups": [{"properties": [{"key": "fw", "type": "person", "operator": "exact", "value": "1"}], "rollout_percentage": 100}]}}
    ]}"#;

    #[test]
    fn responses_render_values_reasons_and_failures() {
        let defs = Definitions::load(DOC.to_vec()).unwrap();
        assert_eq!(defs.keys(), ["needs", "off", "on"]);
        assert_eq!(defs.etag(), etag_of(DOC));
        let outcomes = defs
            .evaluate_owned(&OwnedContext::new("d"), None, None)
            .unwrap();
        let v2 = flags_response(&outcomes, "req-1", 7, false, false);
        assert_eq!(v2["flags"]["on"]["enabled"], true);
        assert_eq!(v2["flags"]["on"]["reason"]["code"], "condition_match");
        assert_eq!(v2["flags"]["on"]["reason"]["condition_index"], 0);
        assert_eq!(v2["flags"]["on"]["metadata"]["payload"], "{\"a\": 1}");
        assert_eq!(v2["flags"]["on"]["metadata"]["version"], 3);
        assert_eq!(v2["flags"]["off"]["reason"]["code"], "flag_disabled");
        assert_eq!(v2["flags"]["needs"]["failed"], true);
        assert_eq!(v2["errorsWhileComputingFlags"], true);
        let v3 = decide_response(&outcomes);
        assert_eq!(v3["featureFlags"], json!({"on": true, "off": false}));
        assert_eq!(v3["featureFlagPayloads"], json!({"on": "{\"a\": 1}"}));

        let only = defs
            .evaluate_owned(
                &OwnedContext::new("d"),
                None,
                Some(&["on".into(), "nope".into()]),
            )
            .unwrap();
        assert_eq!(only.len(), 2);
        assert_eq!(only[1].result, Err(Inconclusive::UnknownFlag));
        assert!(flags_response(&only, "r", 0, false, false)["flags"]
            .get("nope")
            .is_none());
        let v4 = flags_response(&outcomes, "req-1", 7, true, true);
        assert_eq!(v4["flags"]["on"]["value"], true);
        assert_eq!(v4["flags"]["off"]["value"], false);
        assert_eq!(v4["flags"]["needs"]["value"], false);
        assert_eq!(v4["minimalFlagCalledEvents"], true);
        assert!(v2["flags"]["on"].get("value").is_none());
        assert_eq!(v2["minimalFlagCalledEvents"], false);
    }

    #[test]
    fn cohorts_are_cut_out_byte_for_byte() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"flags": [], "zeta": 123456789012345678901234567890, "cohorts": {"1": {}}, "alpha": 1.50}"#,
                r#"{"flags": [], "zeta": 123456789012345678901234567890, "alpha": 1.50}"#,
            ),
            (
                "{\n  \"cohorts\": {\"1\": {\"a\": [1]}},\n  \"flags\": [],\n  \"b\": 2\n}\n",
                "{\n  \"flags\": [],\n  \"b\": 2\n}\n",
            ),
            (r#"{"flags":[],"cohorts":{}}"#, r#"{"flags":[]}"#),
            (r#"{"cohorts":{}}"#, r#"{}"#),
            (
                r#"{"flags":[{"cohorts":1}]}"#,
                r#"{"flags":[{"cohorts":1}]}"#,
            ),
            (r#"{"cohorts":{},"flags":[]}"#, r#"{"flags":[]}"#),
        ];
        for (doc, want) in cases {
            let got = without_cohorts(doc.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), *want, "{doc}");
            let v: Value = serde_json::from_str(want).unwrap();
            assert!(v.get("cohorts").is_none());
        }
        assert!(without_cohorts(b"[1]").is_none());
        assert!(without_cohorts(b"{\"a\": ").is_none());
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(matches!(
            Definitions::load(b"{not json".to_vec()),
            Err(LoadError::Json(_))
        ));
        assert!(matches!(
            Definitions::from_file(std::path::Path::new("/nonexistent/defs.json")),
            Err(DefinitionsError::Io(_))
        ));
    }
}
