//! Primitive values: their JSON shape and lexical formats (the R4 JSON
//! schema's patterns, written as code: no regex engine needed).
//!
//! Owns checking one primitive value; which element holds which type is
//! the schema's business.

use crate::tree::Json;

/// How a primitive appears in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonKind {
    /// `true`/`false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
}

/// The JSON kind of a primitive type.
pub fn json_kind(code: &str) -> JsonKind {
    match code {
        "boolean" => JsonKind::Bool,
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => JsonKind::Number,
        _ => JsonKind::String,
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(99)
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with real months and days.
pub fn is_date(s: &str) -> bool {
    let mut p = s.split('-');
    match (p.next(), p.next(), p.next(), p.next()) {
        (Some(y), None, None, None) => digits(y, 4),
        (Some(y), Some(m), None, None) => {
            digits(y, 4) && digits(m, 2) && (1..=12).contains(&num(m))
        }
        (Some(y), Some(m), Some(d), None) => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && (1..=12).contains(&num(m))
                && (1..=days_in(num(y), num(m))).contains(&num(d))
        }
        _ => false,
    }
}

fn days_in(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `hh:mm:ss` with optional fraction.
pub fn is_time(s: &str) -> bool {
    let (main, frac) = match s.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    let mut p = main.split(':');
    matches!((p.next(), p.next(), p.next(), p.next()), (Some(h), Some(m), Some(sec), None) if digits(h, 2) && digits(m, 2) && digits(sec, 2) && num(h) < 24 && num(m) < 60 && num(sec) < 61)
}

fn is_zone(z: &str) -> bool {
    if z == "Z" {
        return true;
    }
    let Some(rest) = z.strip_prefix('+').or_else(|| z.strip_prefix('-')) else {
        return false;
    };
    matches!(rest.split_once(':'), Some((h, m)) if digits(h, 2) && digits(m, 2) && num(h) <= 14 && num(m) < 60)
}

/// A date, or a date and time with a time zone.
pub fn is_date_time(s: &str) -> bool {
    match s.split_once('T') {
        None => is_date(s),
        Some((d, t)) => {
            if d.len() != 10 || !is_date(d) {
                return false;
            }
            let split = t.find(['Z', '+', '-']);
            match split {
                Some(i) => is_time(&t[..i]) && is_zone(&t[i..]),
                None => false,
            }
        }
    }
}

/// A full date-time with seconds and a time zone.
pub fn is_instant(s: &str) -> bool {
    matches!(s.split_once('T'), Some((d, _)) if d.len() == 10) && is_date_time(s)
}

/// The order of two date/dateTime values when it is certain: two dates (or
/// partial dates) by their common precision, two date-times with zones by
/// the instant they name; `None` for anything else (a date against a
/// date-time, a value that is not well formed).
pub fn instant_order(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    match (a.contains('T'), b.contains('T')) {
        (false, false) if is_date(a) && is_date(b) => {
            let n = a.len().min(b.len());
            Some(a[..n].cmp(&b[..n]))
        }
        (true, true) if is_date_time(a) && is_date_time(b) => {
            Some(utc_micros(a)?.cmp(&utc_micros(b)?))
        }
        _ => None,
    }
}

/// Microseconds since 1970 (UTC) of a well-formed dateTime with a time.
fn utc_micros(s: &str) -> Option<i64> {
    let (d, t) = s.split_once('T')?;
    let (y, m, day) = (
        d.get(0..4)?.parse::<i64>().ok()?,
        d.get(5..7)?.parse::<i64>().ok()?,
        d.get(8..10)?.parse::<i64>().ok()?,
    );
    let zi = t.find(['Z', '+', '-'])?;
    let (clock, zone) = t.split_at(zi);
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let mi: i64 = parts.next()?.parse().ok()?;
    let sec = parts.next().unwrap_or("0");
    let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let whole: i64 = whole.parse().ok()?;
    let mut micros: i64 = 0;
    for (i, c) in frac.bytes().take(6).enumerate() {
        micros += i64::from(c - b'0') * 10_i64.pow(5 - i as u32);
    }
    let offset = match zone {
        "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om) = z.get(1..)?.split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 60 + om.parse::<i64>().ok()?)
        }
    };
    // Days from the civil date (proleptic Gregorian).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + whole - offset * 60;
    Some(secs * 1_000_000 + micros)
}

/// The most a string may hold ("Strings SHALL NOT exceed 1MB in size").
const MAX_STRING: usize = 1024 * 1024;

/// The format check of one primitive value against its type. `Err` says why.
pub fn check(code: &str, v: &Json<'_>) -> Result<(), String> {
    match (json_kind(code), v) {
        (JsonKind::Bool, Json::Bool(_)) => return Ok(()),
        (JsonKind::Bool, _) => return Err("expected true or false".into()),
        (JsonKind::Number, Json::Number(_)) if code == "decimal" => return Ok(()),
        (JsonKind::Number, Json::Number(text)) => {
            return match code {
                "integer" => text
                    .parse::<i32>()
                    .map(|_| ())
                    .map_err(|_| format!("{text} is not a 32-bit integer")),
                "positiveInt" => match text.parse::<i64>() {
                    Ok(i) if (1..=i64::from(i32::MAX)).contains(&i) => Ok(()),
                    _ => Err(format!("{text} is not a positive integer")),
                },
                _ => match text.parse::<i64>() {
                    Ok(i) if (0..=i64::from(i32::MAX)).contains(&i) => Ok(()),
                    _ => Err(format!("{text} is not an unsigned integer")),
                },
            };
        }
        (JsonKind::Number, _) => return Err("expected a JSON number".into()),
        (JsonKind::String, Json::String(_)) => {}
        (JsonKind::String, _) => return Err("expected a JSON string".into()),
    }
    let s = v.as_str().unwrap_or_default();
    if s.is_empty() {
        return Err("empty strings are not allowed; leave the element out".into());
    }
    if s.len() > MAX_STRING {
        return Err(format!(
            "{} bytes is over the 1 MiB a FHIR string may hold",
            s.len()
        ));
    }
    let ok = match code {
        // R4's string pattern `[ \r\n\t\S]+`: no other whitespace.
        "string" | "markdown" => !s.contains(['\u{b}', '\u{c}']),
        "date" => is_date(s),
        "dateTime" => is_date_time(s),
        "instant" => is_instant(s),
        "time" => is_time(s),
        "code" => {
            !s.starts_with(char::is_whitespace)
                && !s.ends_with(char::is_whitespace)
                && !s.as_bytes().windows(2).any(|w| w == b"  ")
                && !s.bytes().any(|b| matches!(b, b'\t' | b'\r' | b'\n'))
        }
        "id" => {
            s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        }
        "uri" | "url" | "canonical" => {
            if s.is_ascii() {
                !s.bytes()
                    .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\x0B' | b'\x0C' | b'\r'))
            } else {
                !s.contains(char::is_whitespace)
            }
        }
        "oid" => s.strip_prefix("urn:oid:").is_some_and(|r| {
            r.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'))
            }) && r.starts_with(['0', '1', '2'])
        }),
        "uuid" => s.strip_prefix("urn:uuid:").is_some_and(is_uuid),
        "xhtml" => return check_xhtml(s),
        "base64Binary" => s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b' ' | b'\n' | b'\r')
        }),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        // Long values are shown by their start: the message goes into an
        // OperationOutcome and a log line.
        let shown: String = s.chars().take(80).collect();
        let more = if shown.len() < s.len() { "..." } else { "" };
        Err(format!("{shown:?}{more} is not a valid {code}"))
    }
}

const XHTML_NS: &[u8] = b"http://www.w3.org/1999/xhtml";

/// Elements that are active content or document structure, which a
/// narrative may not hold (txt-1 allows only basic formatting).
const NOT_IN_NARRATIVE: &[&[u8]] = &[
    b"script",
    b"style",
    b"form",
    b"input",
    b"button",
    b"select",
    b"textarea",
    b"iframe",
    b"frame",
    b"frameset",
    b"object",
    b"embed",
    b"applet",
    b"base",
    b"link",
    b"meta",
    b"html",
    b"head",
    b"body",
    b"title",
];

/// A narrative `div` as R4 requires it: well-formed XML whose root is a
/// `div` in the XHTML namespace (the `xhtml` type's rule), no active content
/// (scripts, forms, `on*` event attributes, `javascript:` links: txt-1), and
/// some text or an image (txt-2).
pub fn check_xhtml(s: &str) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(s);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut content = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("the narrative is not well-formed XHTML: {e}"))?;
        let (start, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            let name = e.local_name();
            let name = name.as_ref();
            if depth == 0 {
                roots += 1;
                if name != b"div" {
                    return Err("the narrative's root element must be a div".into());
                }
                let ns = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.as_ref() == b"xmlns")
                    .map(|a| a.value.into_owned());
                if ns.as_deref() != Some(XHTML_NS) {
                    return Err(
                        "the narrative's div must be in the XHTML namespace (xmlns=\"http://www.w3.org/1999/xhtml\")"
                            .into(),
                    );
                }
            }
            if NOT_IN_NARRATIVE
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
            {
                return Err(format!(
                    "a narrative may not hold <{}> (txt-1: no active content)",
                    String::from_utf8_lossy(name)
                ));
            }
            for a in e.attributes() {
                let a = a.map_err(|e| format!("the narrative is not well-formed XHTML: {e}"))?;
                let key = a.key.local_name();
                let key = key.as_ref();
                if key.len() > 2 && key[..2].eq_ignore_ascii_case(b"on") {
                    return Err(format!(
                        "a narrative may not hold event attributes ({}; txt-1)",
                        String::from_utf8_lossy(key)
                    ));
                }
                let v = a.value.as_ref();
                let v = v.trim_ascii_start();
                if v.len() >= 11 && v[..11].eq_ignore_ascii_case(b"javascript:") {
                    return Err("a narrative may not hold javascript: links (txt-1)".into());
                }
            }
            if name == b"img" {
                content = true;
            }
            if !empty {
                depth += 1;
            }
        }
        match event {
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Text(t) if depth > 0 => {
                content |= t.as_ref().iter().any(|b| !b.is_ascii_whitespace());
            }
            Event::GeneralRef(_) | Event::CData(_) if depth > 0 => content = true,
            Event::Text(t) if t.as_ref().iter().any(|b| !b.is_ascii_whitespace()) => {
                return Err("the narrative has text outside its div".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots != 1 {
        return Err("the narrative must be one div element".into());
    }
    if depth != 0 {
        return Err("the narrative is not well-formed XHTML: an element is not closed".into());
    }
    if !content {
        return Err("the narrative must have some text or an image (txt-2)".into());
    }
    Ok(())
}

/// `8-4-4-4-12` lower-case hex.
pub fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {

    #[test]
    fn narratives_are_xhtml_divs_without_active_content() {
        let ok = [
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Jane <b>Doe</b> &amp; co</p></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml">text</div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><img src="x.png"/></div>"#,
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href="http://x">link</a></div>"#,
        ];
        for d in ok {
            assert_eq!(super::check_xhtml(d), Ok(()), "{d}");
        }
        let bad = [
            ("<p>no namespace</p>", "root element must be a div"),
            ("<div>plain</div>", "XHTML namespace"),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>open</div>"#,
                "well-formed",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>"#,
                "<script>",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="x()">a</p></div>"#,
                "onclick",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml"><a href=" JavaScript:x()">a</a></div>"#,
                "javascript:",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml">  </div>"#,
                "txt-2",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml">a</div><div xmlns="http://www.w3.org/1999/xhtml">b</div>"#,
                "one div",
            ),
            (
                r#"<div xmlns="http://www.w3.org/1999/xhtml">a</div> tail"#,
                "outside its div",
            ),
            ("not xml at all", "outside its div"),
        ];
        for (d, why) in bad {
            let e = super::check_xhtml(d).unwrap_err();
            assert!(e.contains(why), "{d}: {e}");
        }
    }

    #[test]
    fn orders_dates_and_instants_when_certain() {
        use std::cmp::Ordering::*;
        assert_eq!(instant_order("2024-05", "2024-04-30"), Some(Greater));
        assert_eq!(instant_order("2024-04", "2024-04-30"), Some(Equal));
        assert_eq!(
            instant_order("2024-01-01T10:00:00+02:00", "2024-01-01T09:00:00Z"),
            Some(Less)
        );
        assert_eq!(
            instant_order("2024-01-01T10:00:00.5Z", "2024-01-01T10:00:00.25Z"),
            Some(Greater)
        );
        assert_eq!(
            instant_order("2024-03-01T00:30:00+01:00", "2024-02-29T23:30:00Z"),
            Some(Equal)
        );
        assert_eq!(instant_order("2024-01-02", "2024-01-01T10:00:00Z"), None);
        assert_eq!(instant_order("garbage", "2024"), None);
    }

    use super::*;
    use serde_json::{Value, json};

    fn check(code: &str, v: &Value) -> Result<(), String> {
        super::check(code, &Json::from_value(v))
    }

    #[test]
    fn dates_and_times() {
        for ok in ["2024", "2024-02", "2024-02-29", "2023-12-31"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "24",
            "2024-13",
            "2023-02-29",
            "2024-1-01",
            "2024-01-01T10:00",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        assert!(is_date_time("2024-05-01T12:30:00+02:00"));
        assert!(is_date_time("2024-05-01T12:30:00.123Z"));
        assert!(!is_date_time("2024-05-01T12:30:00"), "a time needs a zone");
        assert!(!is_date_time("2024-05-01T12:30+02:00"));
        assert!(is_instant("2024-05-01T12:30:00Z"));
        assert!(!is_instant("2024-05-01"));
        assert!(is_time("23:59:59.5"));
    }

    #[test]
    fn values() {
        assert!(check("boolean", &json!(true)).is_ok());
        assert!(check("boolean", &json!("true")).is_err());
        assert!(check("integer", &json!(5)).is_ok());
        assert!(check("positiveInt", &json!(0)).is_err());
        assert!(check("decimal", &serde_json::from_str::<Value>("1.50").unwrap()).is_ok());
        assert!(check("code", &json!("male")).is_ok());
        assert!(check("code", &json!(" male")).is_err());
        assert!(check("string", &json!("")).is_err());
        assert!(check("id", &json!("a.b-1")).is_ok());
        assert!(check("id", &json!("a_b")).is_err());
        assert!(
            check(
                "uuid",
                &json!("urn:uuid:123e4567-e89b-12d3-a456-426614174000")
            )
            .is_ok()
        );
        assert!(check("oid", &json!("urn:oid:2.16.840.1")).is_ok());
        assert!(check("oid", &json!("urn:oid:2.016")).is_err());
        assert!(check("uri", &json!("http://a b")).is_err());
    }
}
