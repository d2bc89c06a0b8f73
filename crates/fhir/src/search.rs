//! FHIR search values written by the gateway: the `identifier` token a
//! conditional create (`If-None-Exist`, `Bundle.entry.request.ifNoneExist`)
//! searches by, and the URL percent-encoding of such values.
//!
//! Owns the escaping rules only (FHIR search's `\`, `|`, `,`, `$`, then RFC
//! 3986); which resource is created conditionally is the caller's decision.

use serde_json::Value;

use crate::tree::Json;

/// Percent-encodes every byte but ASCII letters, digits and `keep`
/// (`b"-._~"` keeps RFC 3986's unreserved characters).
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// One part of a token search value: FHIR search's reserved characters
/// escaped with `\`, then the whole percent-encoded for a URL.
fn token_part(t: &str) -> String {
    let mut escaped = String::with_capacity(t.len());
    for c in t.chars() {
        if matches!(c, '\\' | '|' | ',' | '$') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    percent_encode(&escaped, b"-._~")
}

/// The search a conditional create of `resource` runs: its first identifier
/// that has a value, as `identifier=system|value` (or `identifier=value`
/// without a system). `None` when it has no such identifier.
///
/// ```
/// let p = serde_json::json!({"resourceType": "Patient",
///     "identifier": [{"system": "urn:oid:1.2", "value": "A,1"}]});
/// assert_eq!(fhir::search::identifier_query(&p).as_deref(),
///            Some("identifier=urn%3Aoid%3A1.2|A%5C%2C1"));
/// ```
pub fn identifier_query(resource: &Value) -> Option<String> {
    resource.get("identifier").and_then(identifier_query_of)
}

/// Like [`identifier_query`], given the resource's `identifier` element
/// (an array, or one Identifier).
pub fn identifier_query_of(identifier: &Value) -> Option<String> {
    identifier_query_in(&Json::from_value(identifier))
}

/// Like [`identifier_query_of`], on a [`Json`] tree.
pub fn identifier_query_in(identifier: &Json<'_>) -> Option<String> {
    let first = match identifier {
        Json::Array(ids) => ids
            .iter()
            .find(|i| i.get("value").and_then(Json::as_str).is_some())?,
        one => one,
    };
    let value = first.get("value")?.as_str()?;
    Some(match first.get("system").and_then(Json::as_str) {
        Some(system) => format!("identifier={}|{}", token_part(system), token_part(value)),
        None => format!("identifier={}", token_part(value)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_the_first_identifier_with_a_value_and_escapes_it() {
        let r = json!({"identifier": [{"system": "s"}, {"value": "a|b$c d"}]});
        assert_eq!(
            identifier_query(&r).as_deref(),
            Some("identifier=a%5C%7Cb%5C%24c%20d")
        );
        let one = json!({"identifier": {"system": "http://x/y", "value": "7"}});
        assert_eq!(
            identifier_query(&one).as_deref(),
            Some("identifier=http%3A%2F%2Fx%2Fy|7")
        );
        assert_eq!(identifier_query(&json!({"identifier": []})), None);
        assert_eq!(identifier_query(&json!({})), None);
    }

    #[test]
    fn percent_encoding_keeps_what_it_is_told_to() {
        assert_eq!(percent_encode("a b+c/é", b"+"), "a%20b+c%2F%C3%A9");
    }
}
