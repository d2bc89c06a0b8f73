//! A YAML tree that remembers where each node was written.
//!
//! Owns reading mapping files into [`YNode`]s with line and column, so the
//! compiler can say `mappings/x.yaml:12:5: ...` about any key, value or
//! character inside an expression. The shape of a mapping file is checked
//! by the compiler, not here.

use std::fmt;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, de};
use serde_saphyr::Spanned;

/// Where a node starts: 1-based line and column, and whether a scalar was
/// quoted (its text then starts one column later).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// Line.
    pub line: u64,
    /// Column.
    pub column: u64,
    /// The scalar was written in quotes.
    pub quoted: bool,
}

impl Pos {
    /// The position `offset` characters into this node's text.
    pub fn shift(self, offset: usize) -> Pos {
        Pos {
            line: self.line,
            column: self.column + offset as u64 + u64::from(self.quoted),
            quoted: false,
        }
    }
}

/// A YAML value.
#[derive(Clone, Debug)]
pub enum YValue {
    /// A scalar, as text (numbers and booleans too).
    Scalar(String),
    /// `~` / `null`.
    Null,
    /// A mapping, keys in order.
    Map(Vec<(YNode, YNode)>),
    /// A sequence.
    Seq(Vec<YNode>),
}

/// A YAML value with its position.
#[derive(Clone, Debug)]
pub struct YNode {
    /// Where it starts.
    pub pos: Pos,
    /// What it is.
    pub value: YValue,
}

impl YNode {
    /// The scalar text, if a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            YValue::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The entry with this key, if a mapping.
    pub fn get(&self, key: &str) -> Option<&YNode> {
        match &self.value {
            YValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short name of the node's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            YValue::Scalar(_) => "a value",
            YValue::Null => "nothing",
            YValue::Map(_) => "a mapping",
            YValue::Seq(_) => "a list",
        }
    }
}

thread_local! {
    static SOURCE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn with_source(s: Spanned<Raw>) -> YNode {
    SOURCE.with(|src| node(s, &src.borrow()))
}

struct RawVisitor;

/// The tree without positions (positions are added by `Spanned`).
#[derive(Clone, Debug)]
struct Raw(YValue);

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v.to_string())))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v.to_string())))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v.to_string())))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw(YValue::Scalar(v.to_string())))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw(YValue::Null))
    }
    fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
        Ok(Raw(YValue::Null))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        Raw::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Spanned<Raw>>()? {
            out.push(with_source(v));
        }
        Ok(Raw(YValue::Seq(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Raw>>()? {
            let v = map.next_value::<Spanned<Raw>>()?;
            out.push((with_source(k), with_source(v)));
        }
        Ok(Raw(YValue::Map(out)))
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

fn node(s: Spanned<Raw>, source: &str) -> YNode {
    let loc = s.referenced;
    let span = loc.span();
    // The scalar exactly as written (YAML would read `.1` as the number 0.1).
    let written = match (span.byte_offset(), span.byte_len()) {
        (Some(o), Some(l)) => source.get(o as usize..(o + l) as usize),
        _ => None,
    };
    let quoted = written.is_some_and(|w| w.starts_with('"') || w.starts_with('\''));
    let value = match (s.value.0, written) {
        (YValue::Scalar(parsed), Some(w)) if !quoted && !w.starts_with(['|', '>']) => {
            YValue::Scalar(if w.trim().is_empty() {
                parsed
            } else {
                w.trim().to_string()
            })
        }
        (YValue::Null, Some(w))
            if !w.trim().is_empty() && !matches!(w.trim(), "~" | "null" | "Null" | "NULL") =>
        {
            YValue::Scalar(w.trim().to_string())
        }
        (v, _) => v,
    };
    YNode {
        pos: Pos {
            line: loc.line(),
            column: loc.column(),
            quoted,
        },
        value,
    }
}

/// Parses a YAML document into a positioned tree.
pub fn parse(text: &str) -> Result<YNode, serde_saphyr::Error> {
    SOURCE.with(|s| *s.borrow_mut() = text.to_string());
    let root: Spanned<Raw> = serde_saphyr::from_str(text)?;
    Ok(with_source(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_as_written() {
        let y = parse("a: .1\nb: 1.50\nc: '.1'\nd: true\n").unwrap();
        assert_eq!(y.get("a").unwrap().as_str(), Some(".1"));
        assert_eq!(y.get("b").unwrap().as_str(), Some("1.50"));
        assert_eq!(y.get("c").unwrap().as_str(), Some(".1"));
        assert!(y.get("c").unwrap().pos.quoted);
        assert_eq!(y.get("d").unwrap().as_str(), Some("true"));
    }

    #[test]
    fn positions() {
        let y = parse(
            "mapping: x\nrules:\n  - name[+]: XPN(PID-5)\n  - gender: \"lookup(S, PID-8)\"\n",
        )
        .unwrap();
        let rules = y.get("rules").unwrap();
        let YValue::Seq(items) = &rules.value else {
            panic!()
        };
        let YValue::Map(first) = &items[0].value else {
            panic!()
        };
        assert_eq!((first[0].0.pos.line, first[0].0.pos.column), (3, 5));
        assert_eq!((first[0].1.pos.line, first[0].1.pos.column), (3, 14));
        let YValue::Map(second) = &items[1].value else {
            panic!()
        };
        assert!(second[0].1.pos.quoted);
        assert!(!first[0].1.pos.quoted);
        assert_eq!(second[0].1.pos.shift(7).column, 21);
    }
}
