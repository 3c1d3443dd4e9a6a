//! The `/flags` request body, written into a caller buffer: token, distinct id, person and
//! group properties, groups, flag keys to evaluate.

use core::fmt;

use crate::flags::value::{Properties, PropertyValue};
use crate::json::read::Reader;
use crate::json::write::Sink;

/// The entries of a [`Properties`], in order.
fn entries(list: &dyn Properties) -> impl Iterator<Item = (&str, PropertyValue<'_>)> + '_ {
    (0..).map_while(move |i| list.entry(i))
}

/// One group sent with a `/flags` request.
#[derive(Clone, Copy)]
pub struct RequestGroup<'a> {
    /// Group type name (`"company"`).
    pub group_type: &'a str,
    /// Group key (`"acme"`).
    pub key: &'a str,
    /// The group's properties, if any. `$group_key` is added unless they already hold it.
    pub properties: Option<&'a dyn Properties>,
}

impl fmt::Debug for RequestGroup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestGroup")
            .field("group_type", &self.group_type)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// The body of a `POST /flags/?v=2` request, written by [`write`](Self::write).
///
/// The shape is posthog-node's (wire vectors w-3 and w-4), the SDK that, like us, calls
/// `/flags/?v=2`:
///
/// ```json
/// {"token":"phc_…","distinct_id":"user-1","$device_id":"dev-1",
///  "groups":{"company":"acme"},"person_properties":{"plan":"pro"},
///  "group_properties":{"company":{"$group_key":"acme","seats":42}},
///  "geoip_disable":true,"flag_keys_to_evaluate":["beta"]}
/// ```
///
/// - **`token`**, not posthog-python's `api_key`: the flags service reads `token` and accepts
///   `api_key` only as an alias.
/// - **`$device_id`** (top level), not `device_id`: again NODE's spelling, an alias of the
///   service's `device_id` field. It is omitted when there is no device id (or it is empty);
///   sending both spellings would be a duplicate field.
/// - `person_properties` are the caller's, **without** the `distinct_id` that local
///   evaluation injects (posthog-python adds it for local evaluation only, in
///   `_person_properties_for_local_evaluation`). `group_properties` has an entry for every
///   group, `$group_key` first (unless the caller's properties carry their own `$group_key`,
///   which then wins), as PY and NODE send it.
/// - `groups`, `person_properties`, `group_properties` and `geoip_disable` are always present;
///   `flag_keys_to_evaluate`, `evaluation_runtime` and `evaluation_contexts` only when set.
/// - No `sent_at` (PY adds it through its generic `post()`; the flags service ignores it).
///
/// Build one with [`new`](Self::new) and set the public fields.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct FlagsRequest<'a> {
    /// The project token (`phc_…`).
    pub token: &'a str,
    /// The distinct id to evaluate for.
    pub distinct_id: &'a str,
    /// The device id, for flags bucketed by device. Sent as `$device_id`.
    pub device_id: Option<&'a str>,
    /// Groups, with their properties.
    pub groups: &'a [RequestGroup<'a>],
    /// Person properties, as the caller gave them (no injected `distinct_id`).
    pub person_properties: &'a dyn Properties,
    /// Ask the server not to resolve the request's IP address. PostHog's SDKs default to `true`.
    pub geoip_disable: bool,
    /// Only evaluate these flags (single-flag getters send `[key]`); `None` evaluates all.
    pub flag_keys: Option<&'a [&'a str]>,
    /// `evaluation_runtime` (posthog-node 5.70 sends `"server"`, which makes the server skip
    /// client-only flags). Omitted when `None`, the default.
    pub evaluation_runtime: Option<&'a str>,
    /// `evaluation_contexts` (posthog-node's evaluation environments). Omitted when empty.
    pub evaluation_contexts: &'a [&'a str],
}

impl fmt::Debug for FlagsRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is a secret-ish identifier: never printed.
        f.debug_struct("FlagsRequest")
            .field("distinct_id", &self.distinct_id)
            .field("device_id", &self.device_id)
            .field("groups", &self.groups)
            .field("geoip_disable", &self.geoip_disable)
            .field("flag_keys", &self.flag_keys)
            .finish_non_exhaustive()
    }
}

/// The empty person-property list used by [`FlagsRequest::new`].
const NO_PROPERTIES: &[(&str, PropertyValue<'static>); 0] = &[];

impl<'a> FlagsRequest<'a> {
    /// A request for `distinct_id` with no device id, groups, person properties or flag keys,
    /// and `geoip_disable: true` (the SDKs' default).
    #[must_use]
    pub const fn new(token: &'a str, distinct_id: &'a str) -> Self {
        Self {
            token,
            distinct_id,
            device_id: None,
            groups: &[],
            person_properties: NO_PROPERTIES,
            geoip_disable: true,
            flag_keys: None,
            evaluation_runtime: None,
            evaluation_contexts: &[],
        }
    }

    /// Writes the JSON body into `buf` and returns its length.
    ///
    /// # Errors
    /// - [`RequestError::BufferTooSmall`] with the exact size needed (`buf` then holds a
    ///   partial body);
    /// - [`RequestError::NonFiniteNumber`] for a NaN or infinite [`PropertyValue::Float`];
    /// - [`RequestError::InvalidJson`] for a [`PropertyValue::Json`] that is not one valid JSON
    ///   value.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RequestError> {
        let available = buf.len();
        // Keys are written with `Sink::string`, which does not check lengths.
        let mut s = Sink::new(buf, usize::MAX);
        s.raw(b"{\"token\":");
        s.string(self.token);
        s.raw(b",\"distinct_id\":");
        s.string(self.distinct_id);
        if let Some(device) = self.device_id.filter(|d| !d.is_empty()) {
            s.raw(b",\"$device_id\":");
            s.string(device);
        }
        s.raw(b",\"groups\":{");
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                s.raw(b",");
            }
            s.string(g.group_type);
            s.raw(b":");
            s.string(g.key);
        }
        s.raw(b"},\"person_properties\":{");
        write_members(&mut s, entries(self.person_properties), true)?;
        s.raw(b"}");
        s.raw(b",\"group_properties\":{");
        for (i, g) in self.groups.iter().enumerate() {
            if i > 0 {
                s.raw(b",");
            }
            s.string(g.group_type);
            s.raw(b":{");
            let own_key = g.properties.is_some_and(|p| p.get("$group_key").is_some());
            let mut first = true;
            if !own_key {
                s.raw(b"\"$group_key\":");
                s.string(g.key);
                first = false;
            }
            if let Some(p) = g.properties {
                write_members(&mut s, entries(p), first)?;
            }
            s.raw(b"}");
        }
        s.raw(b"},\"geoip_disable\":");
        s.raw(if self.geoip_disable {
            b"true"
        } else {
            b"false"
        });
        if let Some(keys) = self.flag_keys {
            s.raw(b",\"flag_keys_to_evaluate\":");
            write_str_array(&mut s, keys);
        }
        if let Some(rt) = self.evaluation_runtime {
            s.raw(b",\"evaluation_runtime\":");
            s.string(rt);
        }
        if !self.evaluation_contexts.is_empty() {
            s.raw(b",\"evaluation_contexts\":");
            write_str_array(&mut s, self.evaluation_contexts);
        }
        s.raw(b"}");
        if s.fits() {
            Ok(s.needed())
        } else {
            Err(RequestError::BufferTooSmall {
                needed: s.needed(),
                available,
            })
        }
    }

    /// The exact body length [`write`](Self::write) needs.
    ///
    /// # Errors
    /// The same value errors as [`write`](Self::write) (never
    /// [`BufferTooSmall`](RequestError::BufferTooSmall)).
    pub fn encoded_len(&self) -> Result<usize, RequestError> {
        match self.write(&mut []) {
            Ok(n) | Err(RequestError::BufferTooSmall { needed: n, .. }) => Ok(n),
            Err(e) => Err(e),
        }
    }
}

fn write_str_array(s: &mut Sink<'_>, items: &[&str]) {
    s.raw(b"[");
    for (i, k) in items.iter().enumerate() {
        if i > 0 {
            s.raw(b",");
        }
        s.string(k);
    }
    s.raw(b"]");
}

fn write_members<'p>(
    s: &mut Sink<'_>,
    props: impl Iterator<Item = (&'p str, PropertyValue<'p>)>,
    mut first: bool,
) -> Result<(), RequestError> {
    for (k, v) in props {
        if !first {
            s.raw(b",");
        }
        first = false;
        s.string(k);
        s.raw(b":");
        write_property_value(s, &v)?;
    }
    Ok(())
}

/// Writes `v` as one JSON value: strings escaped, an [`EscapedStr`](PropertyValue::EscapedStr)
/// copied with its (valid) escapes, a [`Json`](PropertyValue::Json) value checked and copied,
/// numbers exactly (floats in their shortest round-trip form).
///
/// # Errors
/// [`RequestError::NonFiniteNumber`] for a NaN or infinite float;
/// [`RequestError::InvalidJson`] for a `Json` value that is not exactly one JSON value. Nothing
/// is written for the failing value.
pub fn write_property_value(s: &mut Sink<'_>, v: &PropertyValue<'_>) -> Result<(), RequestError> {
    match *v {
        PropertyValue::Null => s.raw(b"null"),
        PropertyValue::Bool(b) => s.raw(if b { b"true" } else { b"false" }),
        PropertyValue::Int(i) => s.i64(i),
        PropertyValue::UInt(u) => s.u64(u),
        PropertyValue::Float(f) => s.f64(f).map_err(|_| RequestError::NonFiniteNumber)?,
        PropertyValue::Str(text) => s.string(text),
        PropertyValue::EscapedStr(text) => {
            // A `Str` comes only from a `Reader`, which validated its escapes and UTF-8.
            s.raw(b"\"");
            s.raw(text.raw().as_bytes());
            s.raw(b"\"");
        }
        PropertyValue::Json(raw) => {
            let mut r = Reader::new(raw.as_bytes());
            let valid = r.skip_value().is_ok() && matches!(r.next(), Ok(None));
            if !valid {
                return Err(RequestError::InvalidJson);
            }
            s.raw(raw.trim_matches([' ', '\t', '\n', '\r']).as_bytes());
        }
    }
    Ok(())
}

/// A `/flags` request body could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestError {
    /// The body does not fit in the buffer.
    BufferTooSmall {
        /// Bytes the body needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A property value is a NaN or infinite float; JSON cannot represent it.
    NonFiniteNumber,
    /// A [`PropertyValue::Json`] property holds text that is not one valid JSON value.
    InvalidJson,
    /// The distinct id is empty or whitespace: the flag is unknown and the server is not asked.
    NoDistinctId,
    /// The client was shut down: no more requests.
    ShutDown,
    /// The application said the link is down ([`Client::set_online`]): no request is started.
    ///
    /// [`Client::set_online`]: crate::client::Client::set_online
    Offline,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::BufferTooSmall { needed, available } => write!(
                f,
                "/flags request body needs {needed} bytes, buffer has {available}"
            ),
            Self::NonFiniteNumber => {
                f.write_str("NaN or infinite property value in /flags request")
            }
            Self::InvalidJson => f.write_str("composite property value is not valid JSON"),
            Self::NoDistinctId => f.write_str("no distinct id: the flag is unknown"),
            Self::ShutDown => f.write_str("the client is shut down"),
            Self::Offline => f.write_str("the client is offline"),
        }
    }
}

impl core::error::Error for RequestError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};

    fn body(req: &FlagsRequest<'_>) -> String {
        let mut buf = std::vec![0u8; 2048];
        let n = req.write(&mut buf).unwrap();
        assert_eq!(req.encoded_len(), Ok(n));
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn minimal_request() {
        let req = FlagsRequest::new("phc_x", "user-1");
        assert_eq!(
            body(&req),
            r#"{"token":"phc_x","distinct_id":"user-1","groups":{},"person_properties":{},"group_properties":{},"geoip_disable":true}"#
        );
    }

    #[test]
    fn full_request() {
        let person = [
            ("plan", PropertyValue::Str("pro")),
            ("n", PropertyValue::Int(-3)),
        ];
        let company = [("seats", PropertyValue::Int(42))];
        let own_key = [
            ("region", PropertyValue::Str("eu")),
            ("$group_key", PropertyValue::Str("custom")),
        ];
        let groups = [
            RequestGroup {
                group_type: "company",
                key: "acme",
                properties: Some(&company),
            },
            RequestGroup {
                group_type: "project",
                key: "p-9",
                properties: Some(&own_key),
            },
            RequestGroup {
                group_type: "team",
                key: "t\"1",
                properties: None,
            },
        ];
        let mut req = FlagsRequest::new("phc_x", "user-1");
        req.device_id = Some("dev-1");
        req.groups = &groups;
        req.person_properties = &person;
        req.geoip_disable = false;
        req.flag_keys = Some(&["a", "b"]);
        req.evaluation_runtime = Some("server");
        req.evaluation_contexts = &["production"];
        assert_eq!(
            body(&req),
            concat!(
                r#"{"token":"phc_x","distinct_id":"user-1","$device_id":"dev-1","#,
                r#""groups":{"company":"acme","project":"p-9","team":"t\"1"},"#,
                r#""person_properties":{"plan":"pro","n":-3},"#,
                r#""group_properties":{"company":{"$group_key":"acme","seats":42},"#,
                r#""project":{"region":"eu","$group_key":"custom"},"team":{"$group_key":"t\"1"}},"#,
                r#""geoip_disable":false,"flag_keys_to_evaluate":["a","b"],"#,
                r#""evaluation_runtime":"server","evaluation_contexts":["production"]}"#
            )
        );
        // An empty device id is no device id; an empty key list is still sent.
        req.device_id = Some("");
        req.flag_keys = Some(&[]);
        let s = body(&req);
        assert!(!s.contains("device_id"));
        assert!(s.contains(r#""flag_keys_to_evaluate":[]"#));
    }

    #[test]
    fn property_values_serialise_exactly() {
        let escaped = PropertyValue::from_json(r#""caf\u00e9 \"x\"""#).unwrap();
        assert!(matches!(escaped, PropertyValue::EscapedStr(_)));
        let person = [
            ("null", PropertyValue::Null),
            ("t", PropertyValue::Bool(true)),
            ("f", PropertyValue::Bool(false)),
            ("min", PropertyValue::Int(i64::MIN)),
            ("max", PropertyValue::UInt(u64::MAX)),
            ("one", PropertyValue::Float(1.0)),
            ("half", PropertyValue::Float(-0.5)),
            ("big", PropertyValue::Float(1e300)),
            ("s", PropertyValue::Str("a\nb\u{1}")),
            ("e", escaped),
            ("j", PropertyValue::Json(" {\"a\": [1, 2.5, null]} ")),
        ];
        let mut req = FlagsRequest::new("t", "d");
        req.person_properties = &person;
        let s = body(&req);
        assert!(s.contains(concat!(
            r#""person_properties":{"null":null,"t":true,"f":false,"#,
            r#""min":-9223372036854775808,"max":18446744073709551615,"one":1.0,"half":-0.5,"#,
            r#""big":1e300,"s":"a\nb\u0001","e":"caf\u00e9 \"x\"","j":{"a": [1, 2.5, null]}}"#
        )));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["person_properties"]["e"], "café \"x\"");
        assert_eq!(v["person_properties"]["max"], u64::MAX);
    }

    #[test]
    fn bad_values_are_errors() {
        let mut buf = [0u8; 512];
        for (v, e) in [
            (
                PropertyValue::Float(f64::NAN),
                RequestError::NonFiniteNumber,
            ),
            (
                PropertyValue::Float(f64::NEG_INFINITY),
                RequestError::NonFiniteNumber,
            ),
            (PropertyValue::Json("{\"a\":"), RequestError::InvalidJson),
            (PropertyValue::Json("[1] [2]"), RequestError::InvalidJson),
            (PropertyValue::Json(""), RequestError::InvalidJson),
        ] {
            let props = [("k", v)];
            let mut req = FlagsRequest::new("t", "d");
            req.person_properties = &props;
            assert_eq!(req.write(&mut buf), Err(e));
            assert_eq!(req.encoded_len(), Err(e));
            // In group properties too.
            let groups = [RequestGroup {
                group_type: "g",
                key: "k",
                properties: Some(&props),
            }];
            let mut req = FlagsRequest::new("t", "d");
            req.groups = &groups;
            assert_eq!(req.write(&mut buf), Err(e));
        }
    }

    #[test]
    fn too_small_buffer_names_the_size() {
        let req = FlagsRequest::new("phc_x", "user-1");
        let full = body(&req).len();
        for cap in [0, 1, full / 2, full - 1] {
            let mut buf = std::vec![0u8; cap];
            assert_eq!(
                req.write(&mut buf),
                Err(RequestError::BufferTooSmall {
                    needed: full,
                    available: cap
                })
            );
        }
        assert!(RequestError::BufferTooSmall {
            needed: 9,
            available: 3
        }
        .to_string()
        .contains("needs 9 bytes"));
    }

    #[test]
    fn a_property_list_serves_evaluation_too() {
        let person = [("plan", PropertyValue::Str("pro"))];
        let list: &dyn Properties = &person;
        // Trait upcasting (Rust 1.86+): the same value is a `&dyn Properties`.
        let props: &dyn Properties = list;
        assert_eq!(props.get("plan"), Some(PropertyValue::Str("pro")));
        assert_eq!(list.entry(0), Some(("plan", PropertyValue::Str("pro"))));
        assert_eq!(list.entry(1), None);
    }

    #[test]
    fn debug_hides_the_token() {
        let req = FlagsRequest::new("phc_secret", "user-1");
        let d = std::format!("{req:?}");
        assert!(!d.contains("phc_secret"));
        assert!(d.contains("user-1"));
    }
}
