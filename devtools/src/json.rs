//! A `serde_json` value written through the core's JSON writer.

use posthog_embedded::json::write::{Value, ValueWriter};
use posthog_embedded::PropertyError;

/// Any JSON value as an event property: integers stay integers (unsigned above `i64::MAX`),
/// floats stay floats, objects keep their key order. serde_json never holds a non-finite float.
#[derive(Clone, Copy, Debug)]
pub struct Json<'a>(pub &'a serde_json::Value);

impl Value for Json<'_> {
    fn write_json(&self, w: ValueWriter<'_, '_>) -> Result<(), PropertyError> {
        use serde_json::Value as J;
        match self.0 {
            J::Null => w.null(),
            J::Bool(b) => w.bool(*b),
            J::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => w.u64(u),
                (None, Some(i), _) => w.i64(i),
                (None, None, Some(f)) => w.f64(f),
                (None, None, None) => w.null(),
            },
            J::String(s) => w.str(s),
            J::Array(items) => w.array(|a| {
                for item in items {
                    a.push(Json(item))?;
                }
                Ok(())
            }),
            J::Object(map) => w.object(|o| {
                for (k, v) in map {
                    o.prop(k, Json(v))?;
                }
                Ok(())
            }),
        }
    }
}
