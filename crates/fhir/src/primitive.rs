//! Primitive values: their JSON shape and lexical formats (the R4 JSON
//! schema's patterns, written as code: no regex engine needed).
//!
//! Owns checking one primitive value; which element holds which type is
//! the schema's business.

use crate::tree::Json;

/// The primitive types of R4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prim {
    /// boolean
    Boolean,
    /// integer
    Integer,
    /// string
    String,
    /// decimal
    Decimal,
    /// uri
    Uri,
    /// url
    Url,
    /// canonical
    Canonical,
    /// base64Binary
    Base64Binary,
    /// instant
    Instant,
    /// date
    Date,
    /// dateTime
    DateTime,
    /// time
    Time,
    /// code
    Code,
    /// oid
    Oid,
    /// id
    Id,
    /// markdown
    Markdown,
    /// unsignedInt
    UnsignedInt,
    /// positiveInt
    PositiveInt,
    /// uuid
    Uuid,
    /// xhtml
    Xhtml,
}

impl Prim {
    /// The primitive type a type code names.
    pub fn of(code: &str) -> Option<Prim> {
        Some(match code {
            "boolean" => Prim::Boolean,
            "integer" => Prim::Integer,
            "string" => Prim::String,
            "decimal" => Prim::Decimal,
            "uri" => Prim::Uri,
            "url" => Prim::Url,
            "canonical" => Prim::Canonical,
            "base64Binary" => Prim::Base64Binary,
            "instant" => Prim::Instant,
            "date" => Prim::Date,
            "dateTime" => Prim::DateTime,
            "time" => Prim::Time,
            "code" => Prim::Code,
            "oid" => Prim::Oid,
            "id" => Prim::Id,
            "markdown" => Prim::Markdown,
            "unsignedInt" => Prim::UnsignedInt,
            "positiveInt" => Prim::PositiveInt,
            "uuid" => Prim::Uuid,
            "xhtml" => Prim::Xhtml,
            _ => return None,
        })
    }

    /// Its type code.
    pub fn code(self) -> &'static str {
        match self {
            Prim::Boolean => "boolean",
            Prim::Integer => "integer",
            Prim::String => "string",
            Prim::Decimal => "decimal",
            Prim::Uri => "uri",
            Prim::Url => "url",
            Prim::Canonical => "canonical",
            Prim::Base64Binary => "base64Binary",
            Prim::Instant => "instant",
            Prim::Date => "date",
            Prim::DateTime => "dateTime",
            Prim::Time => "time",
            Prim::Code => "code",
            Prim::Oid => "oid",
            Prim::Id => "id",
            Prim::Markdown => "markdown",
            Prim::UnsignedInt => "unsignedInt",
            Prim::PositiveInt => "positiveInt",
            Prim::Uuid => "uuid",
            Prim::Xhtml => "xhtml",
        }
    }
}

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

/// Two ASCII digits at `i` as a number.
fn d2(b: &[u8], i: usize) -> Option<u32> {
    let (x, y) = (*b.get(i)?, *b.get(i + 1)?);
    (x.is_ascii_digit() && y.is_ascii_digit())
        .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with real months and days; the year
/// 0000 is none (R4's date pattern starts at 0001).
pub fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let year = match (d2(b, 0), d2(b, 2)) {
        (Some(c), Some(y)) if c * 100 + y > 0 => c * 100 + y,
        _ => return false,
    };
    let month = || {
        (b[4] == b'-')
            .then(|| d2(b, 5))
            .flatten()
            .filter(|m| (1..=12).contains(m))
    };
    match b.len() {
        4 => true,
        7 => month().is_some(),
        10 => match (month(), b[7] == b'-', d2(b, 8)) {
            (Some(m), true, Some(d)) => (1..=days_in(year, m)).contains(&d),
            _ => false,
        },
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
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let clock = matches!((d2(b, 0), d2(b, 3), d2(b, 6)), (Some(h), Some(m), Some(sec)) if h < 24 && m < 60 && sec < 61);
    clock
        && match b.get(8) {
            None => true,
            Some(b'.') => b.len() > 9 && b[9..].iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
}

fn is_zone(z: &str) -> bool {
    let b = z.as_bytes();
    z == "Z"
        || (b.len() == 6
            && matches!(b[0], b'+' | b'-')
            && b[3] == b':'
            && d2(b, 1).is_some_and(|h| h <= 14)
            && d2(b, 4).is_some_and(|m| m < 60))
}

/// A date, or a date and time with a time zone.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    match b.iter().position(|c| *c == b'T') {
        None => is_date(s),
        Some(at) => {
            if at != 10 || !is_date(&s[..at]) {
                return false;
            }
            let t = &s[at + 1..];
            match t.bytes().position(|c| matches!(c, b'Z' | b'+' | b'-')) {
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

/// The most a string may hold: "strings SHALL NOT exceed 1MB (1024*1024
/// characters) in size". base64Binary has no such limit ("there is no
/// specified upper limit to the size of a binary": a scanned report or an
/// image is often larger), nor has the narrative's XHTML.
const MAX_STRING: usize = 1024 * 1024;

/// The format check of one primitive value against its type (by its code;
/// `Ok` for a code that is not a primitive type). `Err` says why.
pub fn check(code: &str, v: &Json<'_>) -> Result<(), String> {
    match Prim::of(code) {
        Some(p) => check_prim(p, v),
        None => Ok(()),
    }
}

/// The format check of one primitive value against its type. `Err` says why.
pub fn check_prim(p: Prim, v: &Json<'_>) -> Result<(), String> {
    let s = match (p, v) {
        (Prim::Boolean, Json::Bool(_)) => return Ok(()),
        (Prim::Boolean, _) => return Err("expected true or false".into()),
        (Prim::Decimal, Json::Number(_)) => return Ok(()),
        (Prim::Integer, Json::Number(text)) => {
            return text
                .parse::<i32>()
                .map(|_| ())
                .map_err(|_| format!("{text} is not a 32-bit integer"));
        }
        (Prim::PositiveInt, Json::Number(text)) => {
            return match text.parse::<i64>() {
                Ok(i) if (1..=i64::from(i32::MAX)).contains(&i) => Ok(()),
                _ => Err(format!("{text} is not a positive integer")),
            };
        }
        (Prim::UnsignedInt, Json::Number(text)) => {
            return match text.parse::<i64>() {
                Ok(i) if (0..=i64::from(i32::MAX)).contains(&i) => Ok(()),
                _ => Err(format!("{text} is not an unsigned integer")),
            };
        }
        (Prim::Decimal | Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt, _) => {
            return Err("expected a JSON number".into());
        }
        (_, Json::String(s)) => s.as_ref(),
        _ => return Err("expected a JSON string".into()),
    };
    if s.is_empty() {
        return Err("empty strings are not allowed; leave the element out".into());
    }
    if s.len() > MAX_STRING
        && !matches!(p, Prim::Base64Binary | Prim::Xhtml)
        && s.chars().count() > MAX_STRING
    {
        return Err(format!(
            "{} characters is over the 1024*1024 a FHIR string may hold",
            s.chars().count()
        ));
    }
    let b = s.as_bytes();
    let ok = match p {
        // R4's string pattern `[ \r\n\t\S]+`: no other whitespace (the two
        // ASCII ones are the ones a sender puts there).
        Prim::String | Prim::Markdown => {
            !controls(b, false) || !b.iter().any(|c| matches!(c, 0x0b | 0x0c))
        }
        Prim::Date => is_date(s),
        Prim::DateTime => is_date_time(s),
        Prim::Instant => is_instant(s),
        Prim::Time => is_time(s),
        Prim::Code => is_code(s),
        Prim::Id => {
            s.len() <= 64
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
        Prim::Uri | Prim::Url | Prim::Canonical => {
            if s.is_ascii() {
                // No space, tab, line feed, vertical tab, form feed or return.
                !controls(b, true)
                    || !b
                        .iter()
                        .any(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
            } else {
                !s.contains(char::is_whitespace)
            }
        }
        Prim::Oid => s.strip_prefix("urn:oid:").is_some_and(|r| {
            r.split('.').all(|p| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'))
            }) && r.starts_with(['0', '1', '2'])
        }),
        Prim::Uuid => s.strip_prefix("urn:uuid:").is_some_and(is_uuid),
        Prim::Xhtml => return check_xhtml(s),
        Prim::Base64Binary => b.iter().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b' ' | b'\n' | b'\r')
        }),
        Prim::Boolean | Prim::Integer | Prim::Decimal | Prim::UnsignedInt | Prim::PositiveInt => {
            true
        }
    };
    if ok {
        Ok(())
    } else {
        // Long values are shown by their start: the message goes into an
        // OperationOutcome and a log line.
        let shown: String = s.chars().take(80).collect();
        let more = if shown.len() < s.len() { "..." } else { "" };
        Err(format!("{shown:?}{more} is not a valid {}", p.code()))
    }
}

/// True when `b` may hold a control character (or, with `spaces`, a
/// space): eight bytes at a time, so the common answer (no) costs a
/// fraction of a byte-by-byte scan; a yes is then checked byte by byte.
fn controls(b: &[u8], spaces: bool) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let w = u64::from_le_bytes(w);
        let low = w.wrapping_sub(LO * 0x20) & !w & HI;
        let x = w ^ (LO * 0x20);
        let sp = x.wrapping_sub(LO) & !x & HI;
        if low != 0 || (spaces && sp != 0) {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|c| *c < 0x20 || (spaces && *c == b' '))
}

/// R4's code pattern `[^\s]+( [^\s]+)*`: no leading or trailing
/// whitespace, no double spaces, no tab or line break.
fn is_code(s: &str) -> bool {
    let b = s.as_bytes();
    if !s.is_ascii() {
        return !s.starts_with(char::is_whitespace)
            && !s.ends_with(char::is_whitespace)
            && !b.windows(2).any(|w| w == b"  ")
            && !b.iter().any(|c| matches!(c, b'\t' | b'\r' | b'\n'));
    }
    let edge = |c: u8| c == b' ' || (0x09..=0x0d).contains(&c);
    if b.first().copied().is_some_and(edge) || b.last().copied().is_some_and(edge) {
        return false;
    }
    let mut prev_space = false;
    for &c in b {
        match c {
            b' ' if prev_space => return false,
            b' ' => prev_space = true,
            b'\t' | b'\r' | b'\n' => return false,
            _ => prev_space = false,
        }
    }
    true
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
        for (d, ok) in [
            ("2024-02-29", true),
            ("1900-02-29", false),
            ("2000-02-29", true),
            ("2024-04-31", false),
            ("2024-00", false),
            ("0000", false),
            ("0000-01-01T00:00:00+00:00", false),
            ("0001-01-01", true),
            ("2024-", false),
            ("202", false),
            ("+2024", false),
            ("2024-05-01T23:59:60Z", true),
            ("2024-05-01T24:00:00Z", false),
            ("2024-05-01T12:00:00.Z", false),
            ("2024-05-01T12:00:00.5+14:00", true),
            ("2024-05-01T12:00:00+15:00", false),
            ("2024-05-01T12:00:00+02:60", false),
            ("2024-05-01T12:00:00+0200", false),
            ("2024-05-01T12:00Z", false),
            ("2024-5-01T12:00:00Z", false),
        ] {
            assert_eq!(is_date_time(d), ok, "{d}");
        }
        assert!(is_time("23:59:59") && !is_time("23:59") && !is_time("23:59:59x"));
        assert!(is_date_time("2024-05-01T12:30:00.123Z"));
        assert!(!is_date_time("2024-05-01T12:30:00"), "a time needs a zone");
        assert!(!is_date_time("2024-05-01T12:30+02:00"));
        assert!(is_instant("2024-05-01T12:30:00Z"));
        assert!(!is_instant("2024-05-01"));
        assert!(is_time("23:59:59.5"));
    }

    #[test]
    fn strings_and_uris_are_checked_at_every_offset() {
        for off in 0..20 {
            for c in ['\u{b}', '\u{c}', '\t', '\n', ' ', 'x', 'é', '\u{1}'] {
                let mut t = "a".repeat(off);
                t.push(c);
                t.push_str("bcdefghijk");
                let naive_string = !t.contains(['\u{b}', '\u{c}']);
                let naive_uri = !t.contains(char::is_whitespace);
                assert_eq!(check("string", &json!(t)).is_ok(), naive_string, "{t:?}");
                assert_eq!(check("uri", &json!(t)).is_ok(), naive_uri, "{t:?}");
            }
        }
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
        for (code, ok) in [
            ("a b", true),
            ("a  b", false),
            ("a\tb", false),
            ("a\u{b}b", true),
            ("a\u{b}", false),
            ("é b", true),
            ("é  b", false),
            ("b\u{a0}", false),
            ("x\u{a0}y", true),
        ] {
            assert_eq!(check("code", &json!(code)).is_ok(), ok, "{code:?}");
        }
        assert!(check("string", &json!("")).is_err());
        // Strings hold at most 1024*1024 characters (not bytes); a binary
        // (a scanned report, an image) has no such limit.
        let big = "A".repeat(MAX_STRING + 4);
        assert!(check("string", &json!(big)).is_err());
        assert!(check("base64Binary", &json!(big)).is_ok());
        let accented = "é".repeat(MAX_STRING);
        assert!(
            check("string", &json!(accented)).is_ok(),
            "2 MiB of bytes, 1 Mi characters"
        );
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
