//! FHIR JSON as `serde_json::Value`: parsing (keeping decimals exactly as
//! written and every element, known or not) and writing in the element
//! order of the definitions.
//!
//! Owns the `Value` form, for code off the hot paths that wants one (tests,
//! diffs, XML, OperationOutcomes the engine builds): `preserve_order`
//! (objects keep their key order) and `arbitrary_precision` (a number keeps
//! its text: `1.50` stays `1.50`), so nothing is lost between reading and
//! writing. The intake and the mapping runtime use [`crate::tree`], which
//! borrows its strings and knows each member's place in the schema; the two
//! convert both ways, and [`JsonError`] is shared by both parsers.

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

/// Parses FHIR JSON. A key repeated in one object is an error (plain JSON
/// parsing keeps the last and drops the first without a word; FHIR
/// forbids repeats).
pub fn parse(text: &[u8]) -> Result<Value, JsonError> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(text);
    let fail = |e: serde_json::Error| JsonError {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    };
    let v = Strict.deserialize(&mut de).map_err(fail)?;
    de.end().map_err(fail)?;
    Ok(v)
}

/// Builds a `Value` as serde_json does, refusing repeated keys.
struct Strict;

/// How serde_json (with `arbitrary_precision`) hands a number to a
/// visitor: a one-entry map under this key, the number's text as value.
/// `parse_keeps_numbers_and_refuses_repeated_keys` fails if it changes.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(Strict)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(Strict)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        use serde::de::Error as _;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.is_empty() && key == NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return serde_json::from_str::<serde_json::Number>(&text)
                    .map(Value::Number)
                    .map_err(A::Error::custom);
            }
            if out.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            let v = map.next_value_seed(Strict)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
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
    fn parse_keeps_numbers_and_refuses_repeated_keys() {
        let v =
            parse(br#"{"a": 1.50, "b": [0.1e-3, -7, 12345678901234567890123], "c": {"d": null}}"#)
                .unwrap();
        assert_eq!(
            to_string(&v),
            r#"{"a":1.50,"b":[0.1e-3,-7,12345678901234567890123],"c":{"d":null}}"#
        );
        let e = parse(b"{\"gender\": \"male\",\n \"gender\": \"female\"}").unwrap_err();
        assert!(e.message.contains("\"gender\" appears twice"), "{e}");
        assert_eq!(e.line, 2);
        // The same key in two objects is fine.
        assert!(parse(br#"{"a": {"x": 1}, "b": {"x": 2}}"#).is_ok());
        assert!(parse(b"{} x").is_err());
    }

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
