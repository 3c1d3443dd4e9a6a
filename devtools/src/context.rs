//! An owned evaluation context built from JSON (a `/flags` request body, CLI arguments), turned
//! into the borrowed [`EvalContext`] the evaluator takes.
//!
//! The context is prepared as PostHog's SDKs do before local evaluation (posthog-python
//! `_person_properties_for_local_evaluation`, `_add_local_person_and_group_properties`):
//! `distinct_id` is added to the person properties and `$group_key` to each group's properties
//! unless the caller set them.

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{Map, Value};

use posthog_embedded::flags::{EvalContext, GroupContext, Properties, PropertyValue};

/// Who flags are evaluated for, owning its data. See the [module docs](self).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnedContext {
    /// The distinct id.
    pub distinct_id: String,
    /// The device id (`$device_id` bucketing), if known.
    pub device_id: Option<String>,
    /// Person properties (without the injected `distinct_id`).
    pub person: Map<String, Value>,
    /// Groups: `(type, key)`, in the order given.
    pub groups: Vec<(String, String)>,
    /// Group properties by group type (without the injected `$group_key`).
    pub group_properties: Map<String, Value>,
}

impl OwnedContext {
    /// A context for `distinct_id` with no properties.
    #[must_use]
    pub fn new(distinct_id: impl Into<String>) -> Self {
        Self {
            distinct_id: distinct_id.into(),
            ..Self::default()
        }
    }

    /// Reads the context out of a `/flags` (or `/decide`) request body: `distinct_id`,
    /// `person_properties`, `groups`, `group_properties`, and `device_id` / `$device_id`
    /// (top level, or `$device_id` in the person properties, as posthog-node sends it).
    ///
    /// # Errors
    /// A one-line description when `distinct_id` is missing or a field has the wrong type.
    pub fn from_flags_request(body: &Value) -> Result<Self, String> {
        let obj = body
            .as_object()
            .ok_or_else(|| "the body is not a JSON object".to_owned())?;
        let distinct_id = match obj.get("distinct_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(_)) => return Err("`distinct_id` is empty".into()),
            Some(_) => return Err("`distinct_id` is not a string".into()),
            None => return Err("`distinct_id` is missing".into()),
        };
        let object = |name: &str| -> Result<Map<String, Value>, String> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(m)) => Ok(m.clone()),
                Some(_) => Err(format!("`{name}` is not an object")),
            }
        };
        let person = object("person_properties")?;
        let groups = object("groups")?
            .into_iter()
            .map(|(t, k)| {
                let key = match k {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (t, key)
            })
            .collect();
        let group_properties = object("group_properties")?;
        let device_id = ["device_id", "$device_id"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .or_else(|| person.get("$device_id").and_then(Value::as_str))
            .filter(|d| !d.is_empty())
            .map(str::to_owned);
        Ok(Self {
            distinct_id,
            device_id,
            person,
            groups,
            group_properties,
        })
    }

    /// Runs `f` with the borrowed [`EvalContext`] of this context.
    ///
    /// # Errors
    /// A one-line description of a property value the evaluator cannot read (none today: every
    /// JSON value is readable; kept for values that would not round-trip).
    pub fn with_eval_context<R>(&self, f: impl FnOnce(&EvalContext<'_>) -> R) -> Result<R, String> {
        let mut person_raw = raw_props(&self.person);
        if !self.person.contains_key("distinct_id") {
            person_raw.push((
                "distinct_id".into(),
                Value::from(self.distinct_id.as_str()).to_string(),
            ));
        }
        let person = parse_props(&person_raw)?;
        let group_raw: Vec<Vec<(String, String)>> = self
            .groups
            .iter()
            .map(|(t, k)| {
                let props = self
                    .group_properties
                    .get(t)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let mut raw = raw_props(&props);
                if !props.contains_key("$group_key") {
                    raw.push(("$group_key".into(), Value::from(k.as_str()).to_string()));
                }
                raw
            })
            .collect();
        let group_props = group_raw
            .iter()
            .map(|r| parse_props(r))
            .collect::<Result<Vec<_>, _>>()?;
        let group_slices: Vec<&[(&str, PropertyValue<'_>)]> =
            group_props.iter().map(Vec::as_slice).collect();
        let groups: Vec<GroupContext<'_>> = self
            .groups
            .iter()
            .zip(&group_slices)
            .map(|((t, k), p)| GroupContext {
                group_type: t,
                key: k,
                properties: Some(p as &dyn Properties),
            })
            .collect();
        let person = person.as_slice();
        let ctx = EvalContext {
            distinct_id: &self.distinct_id,
            device_id: self.device_id.as_deref(),
            person: &person,
            groups: &groups,
        };
        Ok(f(&ctx))
    }
}

fn raw_props(m: &Map<String, Value>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
}

fn parse_props(raw: &[(String, String)]) -> Result<Vec<(&str, PropertyValue<'_>)>, String> {
    raw.iter()
        .map(|(k, v)| {
            PropertyValue::from_json(v)
                .map(|p| (k.as_str(), p))
                .map_err(|e| format!("property {k:?}: {e}"))
        })
        .collect()
}

/// Parses one `--prop` style argument: `key=text` is a string property (never guessed: `1.10`
/// stays the string `"1.10"`), `key:=json` is any JSON value (`n:=3`, `beta:=true`,
/// `tags:='["a"]'`).
///
/// # Errors
/// A one-line description of what is wrong.
pub fn parse_property_arg(arg: &str) -> Result<(String, Value), String> {
    let eq = arg
        .find('=')
        .ok_or_else(|| format!("`{arg}`: expected key=value (a string) or key:=json"))?;
    let (key, value) = (&arg[..eq], &arg[eq + 1..]);
    if let Some(key) = key.strip_suffix(':') {
        if key.is_empty() {
            return Err(format!("`{arg}`: the property name is empty"));
        }
        let v: Value = serde_json::from_str(value)
            .map_err(|e| format!("`{arg}`: the value after := is not JSON ({e})"))?;
        return Ok((key.to_owned(), v));
    }
    if key.is_empty() {
        return Err(format!("`{arg}`: the property name is empty"));
    }
    Ok((key.to_owned(), Value::String(value.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use posthog_embedded::flags::FlagStore;
    use serde_json::json;

    #[test]
    fn property_arguments() {
        assert_eq!(
            parse_property_arg("fw=1.10").unwrap(),
            ("fw".into(), json!("1.10"))
        );
        assert_eq!(parse_property_arg("n:=3").unwrap(), ("n".into(), json!(3)));
        assert_eq!(
            parse_property_arg("url=a=b").unwrap(),
            ("url".into(), json!("a=b"))
        );
        assert_eq!(parse_property_arg("e=").unwrap(), ("e".into(), json!("")));
        assert!(parse_property_arg("novalue").is_err());
        assert!(parse_property_arg("=x").is_err());
        assert!(parse_property_arg(":=1").is_err());
        assert!(parse_property_arg("n:=nope").is_err());
    }

    #[test]
    fn request_body_context_injects_ids() {
        let body = json!({"token": "phc", "distinct_id": "d1", "groups": {"company": "acme"},
            "person_properties": {"plan": "pro", "$device_id": "dev-9"},
            "group_properties": {"company": {"size": 10}}});
        let ctx = OwnedContext::from_flags_request(&body).unwrap();
        assert_eq!(ctx.device_id.as_deref(), Some("dev-9"));
        let doc = br#"{"flags": [{"id": 1, "key": "f", "active": true, "filters": {"groups": [
            {"properties": [{"key": "distinct_id", "type": "person", "operator": "exact", "value": "d1"}],
             "rollout_percentage": 100}]}},
            {"id": 2, "key": "g", "active": true, "filters": {"aggregation_group_type_index": 0, "groups": [
            {"properties": [{"key": "$group_key", "type": "group", "group_type_index": 0, "operator": "exact", "value": "acme"}],
             "rollout_percentage": 100}]}}], "group_type_mapping": {"0": "company"}}"#;
        let mut store = FlagStore::<4, 32, 1024>::new();
        store.load(doc).unwrap();
        ctx.with_eval_context(|c| {
            assert!(store.evaluate("f", c, None).unwrap().is_enabled());
            assert!(store.evaluate("g", c, None).unwrap().is_enabled());
        })
        .unwrap();
        assert!(OwnedContext::from_flags_request(&json!({"token": "x"})).is_err());
        assert!(
            OwnedContext::from_flags_request(&json!({"distinct_id": "a", "groups": []})).is_err()
        );
    }
}
