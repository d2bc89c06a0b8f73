//! FHIR JSON: parsing (keeping decimals exactly as written and every
//! element, known or not) and writing in the element order of the
//! definitions.
//!
//! Owns the JSON form. The tree is `serde_json::Value` built with
//! `preserve_order` (objects keep their key order) and
//! `arbitrary_precision` (a number keeps its text: `1.50` stays `1.50`),
//! so nothing is lost between reading and writing.

use serde_json::{Map, Value};

use crate::schema::{Node, Schema};

/// A JSON body that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("malformed JSON at line {line}, column {column}: {message}")]
pub struct JsonError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The parser's message.
    pub message: String,
}

/// Parses FHIR JSON.
pub fn parse(text: &[u8]) -> Result<Value, JsonError> {
    serde_json::from_slice(text).map_err(|e| JsonError {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Reorders every object in a resource to the definitions' element order
/// (`resourceType` first; `_x` right after `x`; elements the schema does
/// not know last, kept as they are).
pub fn canonicalize(resource: &mut Value) {
    let schema = Schema::r4();
    canonical_resource(schema, resource);
}

fn canonical_resource(schema: &Schema, v: &mut Value) {
    let Some(rt) = v
        .get("resourceType")
        .and_then(Value::as_str)
        .map(String::from)
    else {
        return;
    };
    if let (Some(node), Value::Object(obj)) = (schema.root(&rt), v) {
        canonical_object(schema, node, obj, true);
    }
}

fn canonical_object(
    schema: &Schema,
    node: Node<'_>,
    obj: &mut Map<String, Value>,
    is_resource: bool,
) {
    // Each key gets its place: resourceType first, then definition order
    // (`_x` right after `x`), then unknown keys as they came (stable sort).
    // Objects already in order (the common case) are not rebuilt.
    let mut ranks: Vec<usize> = Vec::with_capacity(obj.len());
    for (k, v) in obj.iter_mut() {
        let rank = if is_resource && k == "resourceType" {
            0
        } else {
            let (base, ext) = match k.strip_prefix('_') {
                Some(b) => (b, true),
                None => (k.as_str(), false),
            };
            match schema.child_at(node, base) {
                Some((place, el, ty)) => {
                    if !ext {
                        let ty = ty.or_else(|| el.types.first());
                        let descend = |x: &mut Value| {
                            if ty.is_some_and(|t| t.code == "Resource") {
                                canonical_resource(schema, x);
                            } else if let (Value::Object(o), Some(n)) =
                                (x, schema.descend(node, el, ty))
                            {
                                canonical_object(schema, n, o, false);
                            }
                        };
                        match v {
                            Value::Array(items) => items.iter_mut().for_each(descend),
                            x => descend(x),
                        }
                    }
                    1 + place * 2 + usize::from(ext)
                }
                None => usize::MAX,
            }
        };
        ranks.push(rank);
    }
    if ranks.is_sorted() {
        return;
    }
    let mut keyed: Vec<(usize, (String, Value))> =
        ranks.into_iter().zip(std::mem::take(obj)).collect();
    keyed.sort_by_key(|(r, _)| *r);
    obj.extend(keyed.into_iter().map(|(_, kv)| kv));
}

/// Writes compact JSON.
pub fn to_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Writes indented JSON.
pub fn to_string_pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_unknowns_survive() {
        let text = br#"{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"mg"},"zzz":1,"status":"final","code":{"text":"x"}}"#;
        let mut v = parse(text).unwrap();
        canonicalize(&mut v);
        let out = to_string(&v);
        assert_eq!(
            out,
            r#"{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"},"zzz":1}"#
        );
    }

    #[test]
    fn malformed_json_says_where() {
        let e = parse(b"{\n  \"a\": }").unwrap_err();
        assert_eq!((e.line, e.column), (2, 8));
    }
}
