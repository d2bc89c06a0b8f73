//! The FHIR element tree: JSON values that borrow from their input, whose
//! object members know their place in the schema.
//!
//! Owns the in-memory form the hot paths use: the intake parses a body into
//! it and validates it without copying a string that has no escapes; the
//! mapping runtime builds its Bundle in it and writes JSON from it. Objects
//! are member lists, not hash maps: FHIR objects hold a handful of members,
//! where a scan beats hashing every key, and insertion order is kept for
//! free. Each member carries a [`Slot`] (its element, type and definition
//! order), set by whoever knows it (the mapping compiler) or looked up once
//! by name ([`Json::canonicalize`], validation), so ordering members is a
//! sort of small integers and validation seldom looks a name up again.
//!
//! Numbers keep their text (`1.50` stays `1.50`); unknown members are kept
//! (validation reports them); nothing is dropped between reading and
//! writing. `serde_json::Value` converts both ways for code off the hot
//! paths (tests, diffs, XML).
//!
//! ```
//! use fhir::tree::Json;
//! let body = br#"{"gender":"female","resourceType":"Patient","birthDate":"1970-01-01"}"#;
//! let mut patient = Json::parse(body)?;
//! assert_eq!(patient.get("gender").and_then(Json::as_str), Some("female"));
//! patient.canonicalize();
//! assert_eq!(
//!     patient.to_json_string(),
//!     r#"{"resourceType":"Patient","gender":"female","birthDate":"1970-01-01"}"#
//! );
//! # Ok::<(), fhir::json::JsonError>(())
//! ```

use std::borrow::Cow;

use serde_json::Value;

use crate::json::JsonError;
use crate::schema::{Node, Schema, Slot};

/// A JSON value of a FHIR resource.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Json<'a> {
    /// `null` (only inside `_x` arrays in FHIR).
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, as written.
    Number(Cow<'a, str>),
    /// A string, unescaped.
    String(Cow<'a, str>),
    /// An array.
    Array(Vec<Json<'a>>),
    /// An object.
    Object(Object<'a>),
}

/// A JSON object: members in order. Two objects are equal when they have
/// the same members with equal values, in any order (as JSON objects are,
/// and as `serde_json` compares them); slots do not count.
#[derive(Clone, Debug, Default)]
pub struct Object<'a> {
    /// The members.
    pub members: Vec<Member<'a>>,
}

/// One member of an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Member<'a> {
    /// The property name.
    pub key: Cow<'a, str>,
    /// Its place in the schema, when known ([`Slot::UNKNOWN`] otherwise).
    pub slot: Slot,
    /// The value.
    pub value: Json<'a>,
}

impl PartialEq for Object<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.members.len() == other.members.len()
            && self
                .members
                .iter()
                .all(|m| other.get(&m.key) == Some(&m.value))
    }
}

impl<'a> Object<'a> {
    /// An empty object.
    pub fn new() -> Object<'a> {
        Object {
            members: Vec::new(),
        }
    }

    /// An empty object with room for `n` members.
    pub fn with_capacity(n: usize) -> Object<'a> {
        Object {
            members: Vec::with_capacity(n),
        }
    }

    /// The value of a member.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.members.iter().find(|m| m.key == key).map(|m| &m.value)
    }

    /// The value of a member, to change it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json<'a>> {
        self.members
            .iter_mut()
            .find(|m| m.key == key)
            .map(|m| &mut m.value)
    }

    /// True when the object has the member.
    pub fn contains_key(&self, key: &str) -> bool {
        self.members.iter().any(|m| m.key == key)
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when it has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Members as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.members.iter().map(|m| (m.key.as_ref(), &m.value))
    }

    /// The names.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.key.as_ref())
    }

    /// Sets a member (replacing one of the same name, else appending).
    pub fn insert(&mut self, key: impl Into<Cow<'a, str>>, value: Json<'a>) {
        self.insert_slot(key, Slot::UNKNOWN, value);
    }

    /// Sets a member whose slot the caller knows.
    pub fn insert_slot(&mut self, key: impl Into<Cow<'a, str>>, slot: Slot, value: Json<'a>) {
        let key = key.into();
        match self.members.iter_mut().find(|m| m.key == key) {
            Some(m) => {
                m.value = value;
                if slot != Slot::UNKNOWN {
                    m.slot = slot;
                }
            }
            None => self.members.push(Member { key, slot, value }),
        }
    }

    /// Removes a member, giving its value.
    pub fn remove(&mut self, key: &str) -> Option<Json<'a>> {
        let i = self.members.iter().position(|m| m.key == key)?;
        Some(self.members.remove(i).value)
    }
}

impl<'a> Json<'a> {
    /// A string that borrows.
    pub fn str(s: &'a str) -> Json<'a> {
        Json::String(Cow::Borrowed(s))
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The items of an array.
    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// An object.
    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// An object, to change it.
    pub fn as_object_mut(&mut self) -> Option<&mut Object<'a>> {
        match self {
            Json::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The text of a number.
    pub fn as_number(&self) -> Option<&str> {
        match self {
            Json::Number(n) => Some(n),
            _ => None,
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// A member of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object()?.get(key)
    }

    /// Follows members and array indexes (`["entry", "0", "resource"]`).
    pub fn pointer(&self, steps: &[&str]) -> Option<&Json<'a>> {
        let mut v = self;
        for s in steps {
            v = match v {
                Json::Object(o) => o.get(s)?,
                Json::Array(a) => a.get(s.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(v)
    }

    /// The same value owning everything it holds.
    pub fn into_owned(self) -> Json<'static> {
        match self {
            Json::Null => Json::Null,
            Json::Bool(b) => Json::Bool(b),
            Json::Number(n) => Json::Number(Cow::Owned(n.into_owned())),
            Json::String(s) => Json::String(Cow::Owned(s.into_owned())),
            Json::Array(a) => Json::Array(a.into_iter().map(Json::into_owned).collect()),
            Json::Object(o) => Json::Object(Object {
                members: o
                    .members
                    .into_iter()
                    .map(|m| Member {
                        key: Cow::Owned(m.key.into_owned()),
                        slot: m.slot,
                        value: m.value.into_owned(),
                    })
                    .collect(),
            }),
        }
    }

    /// A tree that borrows from a `serde_json::Value`.
    pub fn from_value(v: &'a Value) -> Json<'a> {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(Cow::Owned(n.to_string())),
            Value::String(s) => Json::String(Cow::Borrowed(s)),
            Value::Array(a) => Json::Array(a.iter().map(Json::from_value).collect()),
            Value::Object(o) => Json::Object(Object {
                members: o
                    .iter()
                    .map(|(k, v)| Member {
                        key: Cow::Borrowed(k),
                        slot: Slot::UNKNOWN,
                        value: Json::from_value(v),
                    })
                    .collect(),
            }),
        }
    }

    /// As a `serde_json::Value` (member order kept).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => serde_json::from_str::<serde_json::Number>(n)
                .map(Value::Number)
                .unwrap_or_else(|_| Value::String(n.to_string())),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(a) => Value::Array(a.iter().map(Json::to_value).collect()),
            Json::Object(o) => Value::Object(
                o.members
                    .iter()
                    .map(|m| (m.key.to_string(), m.value.to_value()))
                    .collect(),
            ),
        }
    }

    /// Parses FHIR JSON (UTF-8). Strings without escapes borrow from
    /// `text`; numbers keep their text; a key repeated in one object is an
    /// error (FHIR forbids it, and a plain JSON parser would keep one of
    /// the two without a word); nesting deeper than 128 is an error.
    pub fn parse(text: &'a [u8]) -> Result<Json<'a>, JsonError> {
        let text = std::str::from_utf8(text).map_err(|e| {
            let at = e.valid_up_to();
            error_at(text, at, "the text is not UTF-8".into())
        })?;
        Parser::new(text).run()
    }

    /// Compact JSON, members in their order.
    pub fn to_json_string(&self) -> String {
        self.to_json_string_sized(256)
    }

    /// Compact JSON into a buffer of `capacity` to start with (a caller
    /// that knows about how long the text is saves the regrowing).
    pub fn to_json_string_sized(&self, capacity: usize) -> String {
        let mut out = String::with_capacity(capacity);
        write_compact(self, &mut out);
        out
    }

    /// Indented JSON (two spaces, as `serde_json::to_string_pretty`).
    pub fn to_json_pretty(&self) -> String {
        let mut out = String::with_capacity(256);
        write_pretty(self, &mut out, 0);
        out
    }

    /// Puts every object of a resource in the definitions' element order
    /// (`resourceType` first, `_x` right after `x`, members the schema does
    /// not know last as they came), looking up the slots not yet known.
    pub fn canonicalize(&mut self) {
        let schema = Schema::r4();
        canonical_resource(schema, self);
    }
}

impl<'a> From<&'a str> for Json<'a> {
    fn from(s: &'a str) -> Json<'a> {
        Json::String(Cow::Borrowed(s))
    }
}

impl From<String> for Json<'_> {
    fn from(s: String) -> Self {
        Json::String(Cow::Owned(s))
    }
}

fn canonical_resource(schema: &Schema, v: &mut Json<'_>) {
    let Json::Object(obj) = v else { return };
    let Some(node) = obj
        .get("resourceType")
        .and_then(Json::as_str)
        .and_then(|rt| schema.root(rt))
    else {
        return;
    };
    canonical_object(schema, node, obj, true);
}

fn canonical_object(schema: &Schema, node: Node<'_>, obj: &mut Object<'_>, is_resource: bool) {
    for m in &mut obj.members {
        if is_resource && m.key == "resourceType" {
            m.slot = Slot::RESOURCE_TYPE;
            continue;
        }
        let (base, ext) = match m.key.strip_prefix('_') {
            Some(b) => (b, true),
            None => (m.key.as_ref(), false),
        };
        let found = if node.owns(m.slot.with_extension(false)) {
            schema
                .at_slot(m.slot)
                .map(|(el, ty)| (m.slot.with_extension(ext), el, ty))
        } else {
            schema
                .slot(node, base)
                .map(|(s, el, ty)| (s.with_extension(ext), el, ty))
        };
        let Some((slot, el, ty)) = found else {
            m.slot = Slot::UNKNOWN;
            continue;
        };
        m.slot = slot;
        if ext {
            continue;
        }
        let ty = ty.or_else(|| el.types.first());
        let is_res = ty.is_some_and(|t| t.code == "Resource");
        let inner = if is_res {
            None
        } else {
            schema.descend(node, el, ty)
        };
        let mut descend = |x: &mut Json<'_>| {
            if is_res {
                canonical_resource(schema, x);
            } else if let (Json::Object(o), Some(n)) = (x, inner) {
                canonical_object(schema, n, o, false);
            }
        };
        match &mut m.value {
            Json::Array(items) => items.iter_mut().for_each(&mut descend),
            x => descend(x),
        }
    }
    if !obj.members.is_sorted_by_key(|m| m.slot) {
        obj.members.sort_by_key(|m| m.slot);
    }
}

/// Where an error is, from a byte offset.
fn error_at(text: &[u8], at: usize, message: String) -> JsonError {
    let before = &text[..at.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    // Columns count characters, as editors do.
    let column = String::from_utf8_lossy(&before[start..]).chars().count() + 1;
    JsonError {
        line,
        column,
        message: format!("{message} at line {line} column {column}"),
    }
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
    /// The first error met (the parse functions only say that one happened,
    /// which keeps their results small).
    error: Option<JsonError>,
    /// Members of the objects being read, innermost last: each object takes
    /// its own off the end into a vector of exactly its size.
    members: Vec<Member<'a>>,
    /// The same for arrays.
    items: Vec<Json<'a>>,
}

/// An error was met; it is in [`Parser::error`].
struct Fail;

type Parsed<T> = Result<T, Fail>;

/// How deep a body may nest (serde_json's limit too).
const MAX_DEPTH: usize = 128;
/// Objects up to this size look for a repeated key by scanning.
const SCAN_KEYS: usize = 16;

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Parser<'a> {
        Parser {
            s,
            b: s.as_bytes(),
            i: 0,
            depth: 0,
            error: None,
            members: Vec::with_capacity(32),
            items: Vec::with_capacity(16),
        }
    }

    fn run(mut self) -> Result<Json<'a>, JsonError> {
        self.ws();
        let v = self.value().and_then(|v| {
            self.ws();
            if self.i < self.b.len() {
                Err(self.fail("trailing characters"))
            } else {
                Ok(v)
            }
        });
        match v {
            Ok(v) => Ok(v),
            Err(Fail) => Err(self.error.take().unwrap_or_else(|| JsonError {
                line: 1,
                column: 1,
                message: "malformed JSON".into(),
            })),
        }
    }

    fn fail(&mut self, message: &str) -> Fail {
        // At the end of the text, the place is its last character (as
        // serde_json says it, so a message reads the same either way).
        let at = if self.i >= self.b.len() {
            self.b.len().saturating_sub(1)
        } else {
            self.i
        };
        self.fail_at(at, message.to_string())
    }

    fn fail_at(&mut self, at: usize, message: String) -> Fail {
        if self.error.is_none() {
            self.error = Some(error_at(self.b, at, message));
        }
        Fail
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b) = self.b.get(self.i) {
            if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn value(&mut self) -> Parsed<Json<'a>> {
        match self.b.get(self.i) {
            None => Err(self.fail("EOF while parsing a value")),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.word("true", Json::Bool(true)),
            Some(b'f') => self.word("false", Json::Bool(false)),
            Some(b'n') => self.word("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail("expected value")),
        }
    }

    fn word(&mut self, w: &str, v: Json<'a>) -> Parsed<Json<'a>> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.fail("expected value"))
        }
    }

    fn enter(&mut self) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail("recursion limit exceeded"));
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    fn object(&mut self) -> Parsed<Json<'a>> {
        self.enter()?;
        let base = self.members.len();
        // Large objects find a repeated key by the hashes of their keys
        // (confirmed by a scan), so a hostile body with thousands of keys
        // in one object is not quadratic.
        let mut hashes: Option<rustc_hash::FxHashSet<u64>> = None;
        let hash = |k: &str| {
            use std::hash::{BuildHasher, BuildHasherDefault};
            BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(k)
        };
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Json::Object(Object::new()));
        }
        loop {
            match self.b.get(self.i) {
                Some(b'"') => {}
                None => return Err(self.fail("EOF while parsing an object")),
                Some(_) => return Err(self.fail("key must be a string")),
            }
            let key_at = self.i;
            let key = self.string()?;
            let mine = &self.members[base..];
            let scan = || mine.iter().any(|m| m.key == key);
            let repeated = match &mut hashes {
                Some(set) => !set.insert(hash(&key)) && scan(),
                None if mine.len() >= SCAN_KEYS => {
                    let mut set: rustc_hash::FxHashSet<u64> =
                        mine.iter().map(|m| hash(&m.key)).collect();
                    let r = !set.insert(hash(&key)) && scan();
                    hashes = Some(set);
                    r
                }
                None => scan(),
            };
            if repeated {
                return Err(self.fail_at(
                    key_at,
                    format!("the key {:?} appears twice in one object", key.as_ref()),
                ));
            }
            self.ws();
            match self.b.get(self.i) {
                Some(b':') => self.i += 1,
                None => return Err(self.fail("EOF while parsing an object")),
                Some(_) => return Err(self.fail("expected `:`")),
            }
            self.ws();
            let value = self.value()?;
            self.members.push(Member {
                key,
                slot: Slot::UNKNOWN,
                value,
            });
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        return Err(self.fail("trailing comma"));
                    }
                }
                Some(b'}') => {
                    self.i += 1;
                    self.depth -= 1;
                    let members: Vec<Member<'a>> = self.members.drain(base..).collect();
                    return Ok(Json::Object(Object { members }));
                }
                None => return Err(self.fail("EOF while parsing an object")),
                Some(_) => return Err(self.fail("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Parsed<Json<'a>> {
        self.enter()?;
        let base = self.items.len();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Json::Array(Vec::new()));
        }
        loop {
            let v = self.value()?;
            self.items.push(v);
            self.ws();
            match self.b.get(self.i) {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        return Err(self.fail("trailing comma"));
                    }
                }
                Some(b']') => {
                    self.i += 1;
                    self.depth -= 1;
                    let items: Vec<Json<'a>> = self.items.drain(base..).collect();
                    return Ok(Json::Array(items));
                }
                None => return Err(self.fail("EOF while parsing a list")),
                Some(_) => return Err(self.fail("expected `,` or `]`")),
            }
        }
    }

    fn number(&mut self) -> Parsed<Json<'a>> {
        let start = self.i;
        match scan_number(&self.b[start..]) {
            Ok(n) => {
                self.i = start + n;
                Ok(Json::Number(Cow::Borrowed(&self.s[start..start + n])))
            }
            Err(at) => {
                self.i = start + at;
                Err(self.fail("invalid number"))
            }
        }
    }

    /// The end of a run of plain string bytes from `i`: the next quote,
    /// backslash or control character (or the end of the text), found
    /// eight bytes at a time (FHIR strings are mostly short: a vector
    /// search costs more to set up than this takes).
    #[inline]
    fn plain_run(&self, mut i: usize) -> usize {
        let b = self.b;
        while i + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            let m = escapes_in(u64::from_le_bytes(w));
            if m != 0 {
                return i + (m.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..=0x1f) {
            i += 1;
        }
        i
    }

    fn control_char(&mut self, i: usize) -> Fail {
        self.i = i;
        self.fail("control character (\\u0000-\\u001F) found while parsing a string")
    }

    /// A string at `self.i` (the opening quote).
    fn string(&mut self) -> Parsed<Cow<'a, str>> {
        let start = self.i + 1;
        let b = self.b;
        let mut i = self.plain_run(start);
        // Fast path: no escapes, so the text is borrowed.
        match b.get(i) {
            Some(b'"') => {
                self.i = i + 1;
                return Ok(Cow::Borrowed(&self.s[start..i]));
            }
            Some(b'\\') => {}
            Some(_) => return Err(self.control_char(i)),
            None => {
                self.i = i;
                return Err(self.fail("EOF while parsing a string"));
            }
        }
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(&self.s[start..i]);
        loop {
            let Some(&c) = b.get(i) else {
                self.i = i;
                return Err(self.fail("EOF while parsing a string"));
            };
            match c {
                b'"' => {
                    self.i = i + 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => {
                    i += 1;
                    let Some(&e) = b.get(i) else {
                        self.i = i;
                        return Err(self.fail("EOF while parsing a string"));
                    };
                    i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            self.i = i;
                            let hi = self.hex4()?;
                            i = self.i;
                            let ch = if (0xD800..0xDC00).contains(&hi) {
                                if b.get(i..i + 2) != Some(b"\\u") {
                                    return Err(self.fail("lone leading surrogate in hex escape"));
                                }
                                self.i = i + 2;
                                let lo = self.hex4()?;
                                i = self.i;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.fail("lone leading surrogate in hex escape"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else if (0xDC00..0xE000).contains(&hi) {
                                return Err(self.fail("lone trailing surrogate in hex escape"));
                            } else {
                                hi
                            };
                            match char::from_u32(ch) {
                                Some(c) => out.push(c),
                                None => return Err(self.fail("invalid unicode code point")),
                            }
                        }
                        _ => {
                            self.i = i - 1;
                            return Err(self.fail("invalid escape"));
                        }
                    }
                }
                0..=0x1f => return Err(self.control_char(i)),
                _ => {
                    let run = self.plain_run(i);
                    out.push_str(&self.s[i..run]);
                    i = run;
                }
            }
        }
    }

    fn hex4(&mut self) -> Parsed<u32> {
        let b = self.b;
        let Some(h) = b.get(self.i..self.i + 4) else {
            self.i = b.len();
            return Err(self.fail("EOF while parsing a string"));
        };
        let mut n = 0u32;
        for c in h {
            match (*c as char).to_digit(16) {
                Some(d) => n = n * 16 + d,
                None => return Err(self.fail("invalid escape")),
            }
        }
        self.i += 4;
        Ok(n)
    }
}

/// The bytes of an 8-byte word (little endian) that JSON must escape: `"`,
/// `\` and control characters. The lowest flagged byte is exact (higher
/// ones may be false alarms after a true one, which the caller rescans).
#[inline]
fn escapes_in(w: u64) -> u64 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(LO) & !v & HI;
    zero(w ^ (LO * u64::from(b'"')))
        | zero(w ^ (LO * u64::from(b'\\')))
        | (w.wrapping_sub(LO * 0x20) & !w & HI)
}

/// The length of the JSON number at the start of `b` (`-?(0|[1-9]\d*)(\.\d+)?
/// ([eE][+-]?\d+)?`), or where it stops being one.
pub fn scan_number(b: &[u8]) -> Result<usize, usize> {
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return Err(i),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return Err(i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return Err(i);
        }
    }
    Ok(i)
}

/// Writes a JSON string literal (escapes as serde_json writes them). Runs
/// without escapes, the usual case, are found eight bytes at a time and
/// copied whole.
pub fn write_str(s: &str, out: &mut String) {
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        // Find the next byte to escape, a word at a time.
        while i + 8 <= b.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[i..i + 8]);
            let m = escapes_in(u64::from_le_bytes(w));
            if m != 0 {
                i += (m.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..=0x1f) {
            i += 1;
            // Back to whole words once aligned with a run again.
            if i + 8 <= b.len() && i.is_multiple_of(8) {
                break;
            }
        }
        if i >= b.len() {
            break;
        }
        let c = b[i];
        if !matches!(c, b'"' | b'\\' | 0..=0x1f) {
            continue;
        }
        out.push_str(&s[start..i]);
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[usize::from(c >> 4)] as char);
                out.push(HEX[usize::from(c & 0xf)] as char);
            }
        }
        i += 1;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_compact(v: &Json<'_>, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(true) => out.push_str("true"),
        Json::Bool(false) => out.push_str("false"),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => write_str(s, out),
        Json::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(x, out);
            }
            out.push(']');
        }
        Json::Object(o) => {
            out.push('{');
            for (i, m) in o.members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_key(m, out);
                out.push(':');
                write_compact(&m.value, out);
            }
            out.push('}');
        }
    }
}

/// A member's name as a JSON string: a name the schema knows (the member
/// has a slot) is plain ASCII with nothing to escape.
fn write_key(m: &Member<'_>, out: &mut String) {
    if m.slot == Slot::UNKNOWN {
        write_str(&m.key, out);
    } else {
        out.push('"');
        out.push_str(&m.key);
        out.push('"');
    }
}

fn indent(out: &mut String, n: usize) {
    out.push('\n');
    for _ in 0..n {
        out.push_str("  ");
    }
}

fn write_pretty(v: &Json<'_>, out: &mut String, level: usize) {
    match v {
        Json::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_pretty(x, out, level + 1);
            }
            indent(out, level);
            out.push(']');
        }
        Json::Object(o) if !o.is_empty() => {
            out.push('{');
            for (i, m) in o.members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, level + 1);
                write_key(m, out);
                out.push_str(": ");
                write_pretty(&m.value, out, level + 1);
            }
            indent(out, level);
            out.push('}');
        }
        other => write_compact(other, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_as_serde_json_does() {
        let text = br#"{"a": 1.50, "b": [0.1e-3, -7, 12345678901234567890123, true, null], "c": {"d": "x\"\\\n\u0001\u00e9\ud83d\ude00/"}, "e": {}, "f": []}"#;
        let ours = Json::parse(text).unwrap();
        let theirs = crate::json::parse(text).unwrap();
        assert_eq!(
            ours.to_json_string(),
            serde_json::to_string(&theirs).unwrap()
        );
        assert_eq!(
            ours.to_json_pretty(),
            serde_json::to_string_pretty(&theirs).unwrap()
        );
        assert_eq!(ours.to_value(), theirs);
        assert_eq!(Json::from_value(&theirs), ours);
        // Objects compare as JSON objects: by members, in any order.
        assert_eq!(
            Json::parse(br#"{"a":1,"b":[{"c":2,"d":3}]}"#).unwrap(),
            Json::parse(br#"{"b":[{"d":3,"c":2}],"a":1}"#).unwrap()
        );
        assert_ne!(
            Json::parse(br#"{"a":1}"#).unwrap(),
            Json::parse(br#"{"a":1,"b":2}"#).unwrap()
        );
        // Strings without escapes borrow from the input.
        let p = Json::parse(br#"{"k": "plain"}"#).unwrap();
        assert!(matches!(
            p.get("k"),
            Some(Json::String(Cow::Borrowed("plain")))
        ));
    }

    #[test]
    fn refuses_what_json_forbids_and_says_where() {
        for (bad, want) in [
            (&b"{\n  \"a\": }"[..], (2, 8)),
            (b"{\"a\": 1,}", (1, 9)),
            (b"[1 2]", (1, 4)),
            (b"{\"a\" 1}", (1, 6)),
            (b"\"\x01\"", (1, 2)),
            (b"01", (1, 2)),
            (b"-", (1, 1)),
            (b"1.", (1, 2)),
            (br#"{"resourceType": "#, (1, 17)),
            (b"{} x", (1, 4)),
            (b"\"\\ud800\"", (1, 8)),
            (b"\"\\x\"", (1, 3)),
            (b"[", (1, 1)),
            (b"{\"a\":1", (1, 6)),
            (b"{\"resourceType\": ", (1, 17)),
            (b"nul", (1, 1)),
        ] {
            let e = Json::parse(bad).unwrap_err();
            assert_eq!(
                (e.line, e.column),
                want,
                "{:?}: {e}",
                String::from_utf8_lossy(bad)
            );
            assert!(crate::json::parse(bad).is_err());
        }
        let e = Json::parse(b"{\"gender\": \"male\",\n \"gender\": \"female\"}").unwrap_err();
        assert!(e.message.contains("\"gender\" appears twice"), "{e}");
        assert_eq!(e.line, 2);
        // Repeats in a large object are found too (by a set, not a scan).
        let mut big = String::from("{");
        for i in 0..40 {
            big.push_str(&format!("\"k{i}\": {i},"));
        }
        big.push_str("\"k3\": 0}");
        assert!(Json::parse(big.as_bytes()).is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(Json::parse(deep.as_bytes()).is_err());
        assert!(Json::parse(b"\xff").is_err());
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = vec![
            String::new(),
            "plain text that runs past eight bytes".into(),
            "a\"b\\c\nd\re\tf\u{1}g\u{1f}h\u{8}i\u{c}j\u{7f}é😀".into(),
            "\"\"\"\"\"\"\"\"\"\"".into(),
            "12345678\"12345678\\".into(),
        ];
        // Every control and escape at every offset around word boundaries.
        for off in 0..17 {
            for c in ['"', '\\', '\n', '\u{0}', '\u{1b}', 'x', 'é'] {
                let mut t = "a".repeat(off);
                t.push(c);
                t.push_str("tail-tail");
                samples.push(t);
            }
        }
        for t in samples {
            let mut out = String::new();
            write_str(&t, &mut out);
            assert_eq!(out, serde_json::to_string(&t).unwrap(), "{t:?}");
        }
    }

    #[test]
    fn canonical_order_keeps_unknown_members_last() {
        let mut v = Json::parse(
            br#"{"valueQuantity":{"unit":"mg","value":1.50},"zzz":1,"status":"final","_status":{"id":"s"},"resourceType":"Observation","code":{"text":"x"}}"#,
        )
        .unwrap();
        v.canonicalize();
        assert_eq!(
            v.to_json_string(),
            r#"{"resourceType":"Observation","status":"final","_status":{"id":"s"},"code":{"text":"x"},"valueQuantity":{"value":1.50,"unit":"mg"},"zzz":1}"#
        );
    }
}
