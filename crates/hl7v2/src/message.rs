//! One HL7 v2 message: its bytes, its delimiters and where its segments are.
//!
//! Owns parsing and reading. A [`Message`] is its bytes, kept exactly as
//! received (BOM, `\n` or `\r\n` segment ends, 8859/1 bytes and all), plus
//! an index of segment spans. Nothing is split, copied or decoded until it is
//! read; reading a field scans one segment. Serializing an unmodified message
//! therefore returns the same bytes. Editing lives in [`crate::edit`], which
//! splices the bytes and keeps this index in step.
//!
//! Why our own parser and not a crate: see the crate documentation.

use std::borrow::Cow;
use std::fmt;

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::error::ParseError;
use crate::escape::unescape;
use crate::path::{Index, Path};

/// Where one segment lies in the message bytes (terminator excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

/// A parsed HL7 v2 message. Borrows its input when parsed from a slice;
/// [`Message::into_owned`] detaches it.
#[derive(Clone)]
pub struct Message<'a> {
    pub(crate) raw: Cow<'a, [u8]>,
    pub(crate) delims: Delimiters,
    pub(crate) segments: Vec<Span>,
    pub(crate) charset: Charset,
    /// The segment terminator used when segments are added.
    pub(crate) terminator: &'static [u8],
}

/// Messages hold PHI: `Debug` shows the shape, never the content.
impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("bytes", &self.raw.len())
            .field("segments", &self.segments.len())
            .field("type", &self.message_type().to_string())
            .finish_non_exhaustive()
    }
}

impl<'a> Message<'a> {
    /// Parses a message, borrowing `bytes`.
    ///
    /// Only the header has to be right: MSH first (after an optional UTF-8
    /// BOM and blank lines), then the field separator and encoding
    /// characters. Segments may end with `\r`, `\n` or `\r\n`. Problems
    /// further in (bad segment ids, missing MSH-9/MSH-10) are reported by
    /// [`Message::validate`], so that a negative ACK can still be built.
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, ParseError> {
        Self::from_cow(Cow::Borrowed(bytes))
    }

    /// Parses a message that owns its bytes.
    pub fn parse_owned(bytes: Vec<u8>) -> Result<Message<'static>, ParseError> {
        Message::from_cow(Cow::Owned(bytes))
    }

    fn from_cow(raw: Cow<'a, [u8]>) -> Result<Message<'a>, ParseError> {
        if raw.len() > u32::MAX as usize {
            return Err(ParseError::TooLarge(raw.len()));
        }
        let start = body_start(&raw);
        if start >= raw.len() {
            return Err(ParseError::Empty);
        }
        let head = &raw[start..];
        if head.starts_with(b"FHS") || head.starts_with(b"BHS") {
            return Err(ParseError::IsBatch(
                String::from_utf8_lossy(&head[..3]).into_owned(),
            ));
        }
        if !head.starts_with(b"MSH") {
            let n = head.len().min(16);
            return Err(ParseError::NoMsh {
                offset: start,
                found: String::from_utf8_lossy(&head[..n]).into_owned(),
            });
        }
        let (delims, _) = Delimiters::from_header(head)?;
        let (segments, terminator) = index_segments(&raw, start);
        let mut msg = Message {
            raw,
            delims,
            segments,
            charset: Charset::Default,
            terminator,
        };
        msg.charset = msg.read_charset();
        Ok(msg)
    }

    /// Detaches the message from the buffer it was parsed from.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            raw: Cow::Owned(self.raw.into_owned()),
            delims: self.delims,
            segments: self.segments,
            charset: self.charset,
            terminator: self.terminator,
        }
    }

    /// The message bytes: exactly what was parsed, plus any edits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }

    /// The message bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.raw.into_owned()
    }

    /// The delimiters from MSH-1 and MSH-2.
    pub fn delimiters(&self) -> &Delimiters {
        &self.delims
    }

    /// The character set from MSH-18.
    pub fn charset(&self) -> Charset {
        self.charset
    }

    /// How many segments the message has.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The segment at a position (0-based, in message order).
    pub fn segment_at(&self, index: usize) -> Option<Segment<'_>> {
        let span = *self.segments.get(index)?;
        Some(self.make_segment(index, span))
    }

    /// All segments in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment<'_>> + '_ {
        self.segments
            .iter()
            .enumerate()
            .map(|(i, &s)| self.make_segment(i, s))
    }

    /// The segments with an id, in order.
    pub fn segments_named<'s>(&'s self, id: &[u8]) -> impl Iterator<Item = Segment<'s>> + 's {
        let id: [u8; 3] = match id {
            [a, b, c] => [*a, *b, *c],
            _ => [0; 3],
        };
        self.segments().filter(move |s| s.id_bytes() == id)
    }

    /// The n-th (1-based) segment with an id.
    pub fn segment(&self, id: &str, nth: usize) -> Option<Segment<'_>> {
        if nth == 0 {
            return None;
        }
        self.segments_named(id.as_bytes()).nth(nth - 1)
    }

    fn make_segment(&self, index: usize, span: Span) -> Segment<'_> {
        Segment {
            bytes: &self.raw[span.start as usize..span.end as usize],
            delims: &self.delims,
            charset: self.charset,
            index,
        }
    }

    pub(crate) fn span(&self, index: usize) -> Span {
        self.segments[index]
    }

    /// The value at a path: the first one when the path has `[*]`.
    ///
    /// `None` when the segment, field, repetition or component is not there.
    /// An empty field that is present gives an empty value.
    pub fn get(&self, path: &Path) -> Option<Value<'_>> {
        let seg = match path.segment_index {
            Index::Nth(n) => self.segment_bytes_nth(&path.segment, n)?,
            Index::All => self.segment_bytes_nth(&path.segment, 1)?,
        };
        resolve_in_segment(seg, path, first_rep(path.repetition))
    }

    /// The decoded text at a path, `None` when absent or empty.
    pub fn text(&self, path: &Path) -> Option<Cow<'_, str>> {
        self.get(path).filter(|v| !v.is_empty()).map(|v| v.text())
    }

    /// Every value a path selects, in message order: each segment for
    /// `OBX[*]`, each repetition for `PID-3[*]`.
    pub fn values(&self, path: &Path) -> Vec<Value<'_>> {
        let mut out = Vec::new();
        self.for_each_value(path, |v| out.push(v));
        out
    }

    /// Calls `f` with every value a path selects, without allocating.
    pub fn for_each_value<'s>(&'s self, path: &Path, mut f: impl FnMut(Value<'s>)) {
        let mut nth = 0u32;
        for seg in self.segments() {
            if seg.id_bytes() != path.segment {
                continue;
            }
            nth += 1;
            if let Index::Nth(n) = path.segment_index {
                if nth < n {
                    continue;
                }
                if nth > n {
                    break;
                }
            }
            match path.repetition {
                Some(Index::All) => {
                    let Some(field) = path.field.and_then(|n| seg.field(n)) else {
                        continue;
                    };
                    for rep in field.repetitions() {
                        if let Some(v) = descend(rep, path) {
                            f(v);
                        }
                    }
                }
                r => {
                    if let Some(v) = resolve_in_segment(seg, path, first_rep(r)) {
                        f(v);
                    }
                }
            }
        }
    }

    fn segment_bytes_nth(&self, id: &[u8; 3], n: u32) -> Option<Segment<'_>> {
        let mut seen = 0;
        for (i, &span) in self.segments.iter().enumerate() {
            let b = &self.raw[span.start as usize..span.end as usize];
            if b.len() >= 3 && &b[..3] == id {
                seen += 1;
                if seen == n {
                    return Some(self.make_segment(i, span));
                }
            }
        }
        None
    }

    /// The MSH segment.
    pub fn header(&self) -> Segment<'_> {
        // `parse` guarantees the first segment is MSH; built messages too.
        self.make_segment(0, self.segments[0])
    }

    fn msh_text(&self, field: u16, component: u16) -> Cow<'_, str> {
        self.header()
            .field(field)
            .and_then(|f| f.component(component))
            .map(|v| v.text())
            .unwrap_or(Cow::Borrowed(""))
    }

    /// MSH-9: message code, trigger event and structure, each trimmed (a
    /// stray space from a sender must not make `ADT^A01 ` a type of its own).
    pub fn message_type(&self) -> MessageType<'_> {
        let part = |c: u16| match self.msh_text(9, c) {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
            Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
        };
        MessageType {
            code: part(1),
            trigger: part(2),
            structure: part(3),
        }
    }

    /// MSH-10, the message control id.
    pub fn control_id(&self) -> Cow<'_, str> {
        self.msh_text(10, 1)
    }

    /// MSH-11.1, the processing id (`P`, `T`, `D`).
    pub fn processing_id(&self) -> Cow<'_, str> {
        self.msh_text(11, 1)
    }

    /// MSH-12.1, the version id (`2.5.1`).
    pub fn version(&self) -> Cow<'_, str> {
        self.msh_text(12, 1)
    }

    /// MSH-15, the accept acknowledgment type.
    pub fn accept_ack_type(&self) -> Cow<'_, str> {
        self.msh_text(15, 1)
    }

    /// MSH-16, the application acknowledgment type.
    pub fn application_ack_type(&self) -> Cow<'_, str> {
        self.msh_text(16, 1)
    }

    fn read_charset(&self) -> Charset {
        match self.header().field(18).and_then(|f| f.repetition(1)) {
            Some(v) => Charset::from_msh18(v.raw()),
            None => Charset::Default,
        }
    }

    pub(crate) fn refresh_charset(&mut self) {
        self.charset = self.read_charset();
    }
}

fn first_rep(r: Option<Index>) -> u32 {
    match r {
        Some(Index::Nth(n)) => n,
        _ => 1,
    }
}

fn resolve_in_segment<'m>(seg: Segment<'m>, path: &Path, rep: u32) -> Option<Value<'m>> {
    let Some(field) = path.field else {
        return Some(Value::new(
            seg.bytes,
            Level::Segment,
            seg.delims,
            seg.charset,
        ));
    };
    let fv = seg.field(field)?;
    let rv = fv.repetition(rep)?;
    descend(rv, path)
}

fn descend<'m>(rep: Value<'m>, path: &Path) -> Option<Value<'m>> {
    let Some(c) = path.component else {
        return Some(rep);
    };
    let cv = rep.component(c)?;
    match path.subcomponent {
        Some(s) => cv.subcomponent(s),
        None => Some(cv),
    }
}

/// Where the message starts: after a UTF-8 BOM and blank lines.
/// MLLP's start block, sometimes left in files saved from a capture.
const MLLP_START: u8 = 0x0B;
/// MLLP's end block.
const MLLP_END: u8 = 0x1C;

pub(crate) fn body_start(raw: &[u8]) -> usize {
    let mut i = if raw.starts_with(&[0xEF, 0xBB, 0xBF]) {
        3
    } else {
        0
    };
    // A file saved from an MLLP capture starts with the start block (0x0B).
    while i < raw.len() && matches!(raw[i], b'\r' | b'\n' | b' ' | b'\t' | MLLP_START) {
        i += 1;
    }
    i
}

/// Finds segment spans from `start`; blank lines are skipped (they stay in
/// the bytes). Returns the spans and the first terminator seen.
pub(crate) fn index_segments(raw: &[u8], start: usize) -> (Vec<Span>, &'static [u8]) {
    let mut segments = Vec::with_capacity(16);
    let mut terminator: Option<&'static [u8]> = None;
    let mut pos = start;
    while pos < raw.len() {
        let rest = &raw[pos..];
        let (len, next) = match memchr::memchr2(b'\r', b'\n', rest) {
            Some(k) => {
                let t: &'static [u8] = if rest[k] == b'\r' {
                    if rest.get(k + 1) == Some(&b'\n') {
                        b"\r\n"
                    } else {
                        b"\r"
                    }
                } else {
                    b"\n"
                };
                terminator.get_or_insert(t);
                (k, pos + k + t.len())
            }
            None => (rest.len(), raw.len()),
        };
        // MLLP's end block (0x1C) left in a captured file ends the
        // message: it is not a segment, nor part of the last one.
        let len = rest[..len]
            .iter()
            .position(|b| *b == MLLP_END)
            .unwrap_or(len);
        let seg = &rest[..len];
        if !seg.iter().all(|b| matches!(*b, b' ' | b'\t' | MLLP_START)) {
            segments.push(Span {
                start: pos as u32,
                end: (pos + len) as u32,
            });
        }
        pos = next;
    }
    (segments, terminator.unwrap_or(b"\r"))
}

/// MSH-9 read as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageType<'m> {
    /// MSH-9.1, e.g. `ADT`.
    pub code: Cow<'m, str>,
    /// MSH-9.2, e.g. `A01`.
    pub trigger: Cow<'m, str>,
    /// MSH-9.3, e.g. `ADT_A01`.
    pub structure: Cow<'m, str>,
}

impl fmt::Display for MessageType<'_> {
    /// `ADT^A01`, or `ACK` when there is no trigger.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.trigger.is_empty() {
            f.write_str(&self.code)
        } else {
            write!(f, "{}^{}", self.code, self.trigger)
        }
    }
}

/// One segment of a message.
#[derive(Clone, Copy)]
pub struct Segment<'m> {
    bytes: &'m [u8],
    delims: &'m Delimiters,
    charset: Charset,
    index: usize,
}

impl fmt::Debug for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("id", &String::from_utf8_lossy(self.id_bytes()))
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<'m> Segment<'m> {
    /// The segment id bytes (up to the first field separator, at most 3 bytes
    /// for well-formed segments).
    pub fn id_bytes(&self) -> &'m [u8] {
        let n = self.bytes.len().min(3);
        &self.bytes[..n]
    }

    /// The segment id as text (lossy for malformed ids).
    pub fn id(&self) -> Cow<'m, str> {
        String::from_utf8_lossy(self.id_bytes())
    }

    /// Position in the message, 0-based.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The bytes of the segment, without its terminator.
    pub fn as_bytes(&self) -> &'m [u8] {
        self.bytes
    }

    fn is_header(&self) -> bool {
        matches!(self.id_bytes(), b"MSH" | b"FHS" | b"BHS")
    }

    /// The field with HL7's number (MSH-1 is the field separator, MSH-2 the
    /// encoding characters, both read literally). `None` past the last field.
    pub fn field(&self, n: u16) -> Option<Value<'m>> {
        if n == 0 {
            return None;
        }
        if self.is_header() {
            match n {
                1 => {
                    return self
                        .bytes
                        .get(3..4)
                        .map(|b| Value::new(b, Level::Literal, self.delims, self.charset));
                }
                2 => {
                    return nth_part(self.bytes, self.delims.field, 1)
                        .map(|b| Value::new(b, Level::Literal, self.delims, self.charset));
                }
                _ => {
                    return nth_part(self.bytes, self.delims.field, usize::from(n) - 1)
                        .map(|b| Value::new(b, Level::Field, self.delims, self.charset));
                }
            }
        }
        nth_part(self.bytes, self.delims.field, usize::from(n))
            .map(|b| Value::new(b, Level::Field, self.delims, self.charset))
    }

    /// Which fields hold a value (bit n for field n, 1 to 63; a field that is
    /// empty or HL7's explicit null `""` is not set). MSH-1 and MSH-2 are
    /// always set.
    pub fn fields_present(&self) -> u64 {
        let header = self.is_header();
        let (mut n, mut bits) = if header {
            (2u32, 0b110u64)
        } else {
            (0u32, 0u64)
        };
        let mut start = if header {
            // After MSH|^~\&: the first separator after the encoding characters.
            match self
                .bytes
                .get(4..)
                .and_then(|r| memchr::memchr(self.delims.field, r))
            {
                Some(i) => 4 + i,
                None => return bits,
            }
        } else {
            match memchr::memchr(self.delims.field, self.bytes) {
                Some(i) => i,
                None => return 0,
            }
        };
        // `start` is at a separator: the field after it is number n + 1.
        while start < self.bytes.len() && n < 63 {
            n += 1;
            let rest = &self.bytes[start + 1..];
            let end = rest
                .iter()
                .position(|b| *b == self.delims.field)
                .unwrap_or(rest.len());
            let f = &rest[..end];
            if !f.is_empty() && f != b"\"\"" && !self.delims.only_separators(f) {
                bits |= 1 << n;
            }
            start += 1 + end;
        }
        bits
    }

    /// How many fields the segment has (its highest field number).
    pub fn field_count(&self) -> usize {
        let seps = memchr::memchr_iter(self.delims.field, self.bytes).count();
        if self.is_header() { seps + 1 } else { seps }
    }

    /// Every field with its number, from 1 (MSH from 3: MSH-1 and MSH-2
    /// are delimiters, see [`Segment::field`]).
    pub fn fields(&self) -> impl Iterator<Item = (u16, Value<'m>)> + 'm {
        let header = self.is_header();
        let delims = self.delims;
        let charset = self.charset;
        let skip = if header { 2 } else { 1 };
        let offset = if header { 1 } else { 0 };
        self.bytes
            .split(move |&b| b == delims.field)
            .enumerate()
            .skip(skip)
            .map(move |(i, b)| {
                let n = u16::try_from(i + offset).unwrap_or(u16::MAX);
                (n, Value::new(b, Level::Field, delims, charset))
            })
    }
}

/// The part at `n` (0-based) of `bytes` split by `sep`. Components and
/// repetitions are short: a plain scan beats setting up a vector search
/// for each; long values (an embedded document) use `memchr`.
#[inline]
pub(crate) fn nth_part(bytes: &[u8], sep: u8, n: usize) -> Option<&[u8]> {
    if bytes.len() > 64 {
        let mut start = 0;
        let mut it = memchr::memchr_iter(sep, bytes);
        for _ in 0..n {
            start = it.next()? + 1;
        }
        let end = it.next().unwrap_or(bytes.len());
        return Some(&bytes[start..end]);
    }
    let mut start = 0;
    let mut left = n;
    for (i, &b) in bytes.iter().enumerate() {
        if b == sep {
            if left == 0 {
                return Some(&bytes[start..i]);
            }
            left -= 1;
            start = i + 1;
        }
    }
    (left == 0).then(|| &bytes[start..])
}

#[inline]
fn nth_part_opt(bytes: &[u8], sep: Option<u8>, n: usize) -> Option<&[u8]> {
    match sep {
        Some(s) => nth_part(bytes, s, n),
        None if n == 0 => Some(bytes),
        None => None,
    }
}

/// How far a value has been split: which separators still apply inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// A whole segment.
    Segment,
    /// A whole field: may hold repetitions.
    Field,
    /// One repetition: may hold components.
    Repetition,
    /// One component: may hold subcomponents.
    Component,
    /// One subcomponent: a leaf.
    Subcomponent,
    /// MSH-1 and MSH-2: read as written, never split or unescaped.
    Literal,
}

/// A field, repetition, component or subcomponent of a message.
#[derive(Clone, Copy)]
pub struct Value<'m> {
    bytes: &'m [u8],
    level: Level,
    delims: &'m Delimiters,
    charset: Charset,
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("level", &self.level)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl<'m> Value<'m> {
    fn new(bytes: &'m [u8], level: Level, delims: &'m Delimiters, charset: Charset) -> Self {
        Value {
            bytes,
            level,
            delims,
            charset,
        }
    }

    /// A value of these bytes at this level, read with these delimiters and
    /// character set (the [`split`](crate::split) table hands its parts out so).
    pub fn from_parts(
        bytes: &'m [u8],
        level: Level,
        delims: &'m Delimiters,
        charset: Charset,
    ) -> Value<'m> {
        Value::new(bytes, level, delims, charset)
    }

    /// The bytes as they stand in the message (escaped, with any inner
    /// separators).
    pub fn raw(&self) -> &'m [u8] {
        self.bytes
    }

    /// How far this value has been split.
    pub fn level(&self) -> Level {
        self.level
    }

    /// True when nothing is there: no bytes, or separators only (`^`,
    /// `&&^^^`: the value's shape with nothing in it). A header's literal
    /// delimiters (MSH-2) are never empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
            || (self.level != Level::Literal && self.delims.only_separators(self.bytes))
    }

    /// True for HL7's explicit null, `""`.
    pub fn is_null(&self) -> bool {
        self.bytes == b"\"\""
    }

    /// The n-th repetition (1-based) of a field; a lower-level value is its
    /// own first repetition.
    pub fn repetition(&self, n: u32) -> Option<Value<'m>> {
        let idx = usize::try_from(n).ok()?.checked_sub(1)?;
        match self.level {
            Level::Field => nth_part_opt(self.bytes, self.delims.repetition, idx)
                .map(|b| Value::new(b, Level::Repetition, self.delims, self.charset)),
            _ if idx == 0 => Some(*self),
            _ => None,
        }
    }

    /// Every repetition of a field.
    pub fn repetitions(&self) -> impl Iterator<Item = Value<'m>> + 'm {
        let me = *self;
        let parts: Box<dyn Iterator<Item = &'m [u8]> + 'm> = match (me.level, me.delims.repetition)
        {
            (Level::Field, Some(r)) => Box::new(me.bytes.split(move |&b| b == r)),
            _ => Box::new(std::iter::once(me.bytes)),
        };
        let level = if me.level == Level::Field {
            Level::Repetition
        } else {
            me.level
        };
        parts.map(move |b| Value::new(b, level, me.delims, me.charset))
    }

    /// The n-th component (1-based), of the first repetition for a field.
    pub fn component(&self, n: u16) -> Option<Value<'m>> {
        let idx = usize::from(n).checked_sub(1)?;
        match self.level {
            Level::Field => self.repetition(1)?.component(n),
            Level::Repetition => nth_part(self.bytes, self.delims.component, idx)
                .map(|b| Value::new(b, Level::Component, self.delims, self.charset)),
            Level::Segment => None,
            _ if idx == 0 => Some(*self),
            _ => None,
        }
    }

    /// Which parts `.n` reads hold a value (bit n for part n, 1 to 63; an
    /// empty part or HL7's explicit null `""` is not set): components of a
    /// field's first repetition or of a repetition, subcomponents of a
    /// component, the value itself (part 1) for a leaf.
    pub fn parts_present(&self) -> u64 {
        let literal = self.level == Level::Literal;
        let present = |b: &[u8]| {
            !b.is_empty() && b != b"\"\"" && (literal || !self.delims.only_separators(b))
        };
        let (bytes, sep) = match self.level {
            Level::Field => match self.repetition(1) {
                Some(r) => (r.bytes, Some(self.delims.component)),
                None => return 0,
            },
            Level::Repetition => (self.bytes, Some(self.delims.component)),
            Level::Component => (self.bytes, self.delims.subcomponent),
            Level::Segment => return 0,
            Level::Subcomponent | Level::Literal => (self.bytes, None),
        };
        let Some(sep) = sep else {
            return if present(bytes) { 0b10 } else { 0 };
        };
        let mut bits = 0u64;
        for (i, part) in bytes.split(|b| *b == sep).enumerate().take(63) {
            if present(part) {
                bits |= 1 << (i + 1);
            }
        }
        bits
    }

    /// Every component of this value (of its first repetition for a field).
    pub fn components(&self) -> Vec<Value<'m>> {
        let rep = match self.level {
            Level::Field => match self.repetition(1) {
                Some(r) => r,
                None => return Vec::new(),
            },
            _ => *self,
        };
        match rep.level {
            Level::Repetition => rep
                .bytes
                .split(|&b| b == rep.delims.component)
                .map(|b| Value::new(b, Level::Component, rep.delims, rep.charset))
                .collect(),
            _ => vec![rep],
        }
    }

    /// The n-th subcomponent (1-based), of the first component above it.
    pub fn subcomponent(&self, n: u16) -> Option<Value<'m>> {
        let idx = usize::from(n).checked_sub(1)?;
        match self.level {
            Level::Field | Level::Repetition => self.component(1)?.subcomponent(n),
            Level::Component => nth_part_opt(self.bytes, self.delims.subcomponent, idx)
                .map(|b| Value::new(b, Level::Subcomponent, self.delims, self.charset)),
            Level::Segment => None,
            _ if idx == 0 => Some(*self),
            _ => None,
        }
    }

    /// The first leaf: component 1, subcomponent 1 (what HL7 tools return
    /// for `PID-5` read as a string).
    pub fn leaf(&self) -> Value<'m> {
        match self.level {
            Level::Field | Level::Repetition | Level::Component => {
                self.subcomponent(1).unwrap_or(*self)
            }
            _ => *self,
        }
    }

    /// The text of this value's first leaf, unescaped and decoded from the
    /// message's character set. For a whole segment or MSH-1/MSH-2, the text
    /// as written.
    pub fn text(&self) -> Cow<'m, str> {
        match self.level {
            Level::Segment | Level::Literal => self.charset.decode(Cow::Borrowed(self.bytes)),
            _ => {
                let leaf = self.leaf();
                self.charset.decode(unescape(leaf.bytes, self.delims))
            }
        }
    }

    /// The whole value unescaped and decoded, inner separators included as
    /// written (e.g. `EVERYMAN^ADAM`), for display. Escaped delimiters come
    /// out as the delimiter, so this is not reversible; use [`Value::raw`].
    pub fn display_text(&self) -> Cow<'m, str> {
        match self.level {
            Level::Segment | Level::Literal => self.charset.decode(Cow::Borrowed(self.bytes)),
            _ => self.charset.decode(unescape(self.bytes, self.delims)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|APP|FAC|RAPP|RFAC|20240101120000||ADT^A01^ADT_A01|MSG1|P|2.5.1\rEVN|A01|20240101\rPID|1||123^^^H^MR~456^^^SSA^SS||Doe^John^Q~Roe^Richard||19700101|M\rOBX|1|NM|a||1.5\rOBX|2|ST|b||hi\\F\\there\r";

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn separators_alone_are_no_value() {
        let m =
            Message::parse(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||^|&&^^^|~|x^|^~\r")
                .unwrap();
        let pid = m.segments().nth(1).unwrap();
        for n in [3u16, 4, 5, 7] {
            assert!(pid.field(n).unwrap().is_empty(), "PID-{n}");
        }
        assert!(!pid.field(6).unwrap().is_empty(), "PID-6 holds x");
        assert_eq!(pid.fields_present(), 0b100_0010);
        // MSH-2 is the delimiters themselves, never empty.
        assert!(!m.segments().next().unwrap().field(2).unwrap().is_empty());
    }

    #[test]
    fn presence_of_fields_and_parts_matches_what_reading_them_gives() {
        let other = b"MSH|^~\\&|||||||ORU^R01|1|P|2.5\rOBX|\"\"|CE|a&b&&\"\"^^x&\"\"~~z|^|&&^^^|~|\"\"|\rPID|||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||x\r";
        let a = Message::parse(ADT).unwrap();
        let b = Message::parse(other).unwrap();
        for seg in a.segments().chain(b.segments()) {
            let bits = seg.fields_present();
            for n in 1..64u16 {
                let has = seg.field(n).is_some_and(|f| !f.is_empty() && !f.is_null());
                assert_eq!(bits >> n & 1 == 1, has, "{}-{n}", seg.id());
                let Some(f) = seg.field(n) else { continue };
                if n <= 2 && seg.id() == "MSH" {
                    continue;
                }
                for v in [Some(f), f.repetition(1), f.repetition(2), f.component(1)]
                    .into_iter()
                    .flatten()
                {
                    let parts = v.parts_present();
                    for k in 1..64u16 {
                        let got = match v.level() {
                            Level::Component => v.subcomponent(k),
                            _ => v.component(k),
                        };
                        let has = got.is_some_and(|x| !x.is_empty() && !x.is_null());
                        assert_eq!(parts >> k & 1 == 1, has, "{}-{n} part {k}", seg.id());
                    }
                }
            }
        }
    }

    #[test]
    fn mllp_framing_left_in_a_file_is_not_part_of_the_message() {
        let mut framed = vec![0x0B];
        framed.extend_from_slice(ADT);
        framed.extend_from_slice(&[0x1C, b'\r']);
        let m = Message::parse(&framed).unwrap();
        let ids: Vec<String> = m.segments().map(|s| s.id().into_owned()).collect();
        assert_eq!(ids, ["MSH", "EVN", "PID", "OBX", "OBX"]);
        let last = m.segments().last().unwrap();
        assert!(!last.as_bytes().contains(&0x1C));
        // The end block right after the last segment, no line break between.
        let mut tight = ADT[..ADT.len() - 1].to_vec();
        tight.extend_from_slice(&[0x1C, b'\r']);
        let m = Message::parse(&tight).unwrap();
        assert_eq!(m.segments().count(), 5);
        assert_eq!(
            m.segments().last().unwrap().as_bytes(),
            b"OBX|2|ST|b||hi\\F\\there"
        );
    }

    #[test]
    fn reads_header_fields() {
        let m = Message::parse(ADT).unwrap();
        assert_eq!(m.message_type().to_string(), "ADT^A01");
        assert_eq!(m.message_type().structure, "ADT_A01");
        assert_eq!(m.control_id(), "MSG1");
        assert_eq!(m.version(), "2.5.1");
        assert_eq!(m.processing_id(), "P");
        assert_eq!(m.get(&p("MSH-1")).unwrap().text(), "|");
        assert_eq!(m.get(&p("MSH-2")).unwrap().text(), "^~\\&");
        assert_eq!(m.get(&p("MSH-3")).unwrap().text(), "APP");
        assert_eq!(m.segment_count(), 5);
        let spaced = Message::parse(b"MSH|^~\\&|A|B|C|D|20240101|| ADT ^A01 |1|P|2.5\r").unwrap();
        assert_eq!(spaced.message_type().to_string(), "ADT^A01");
    }

    #[test]
    fn reads_paths() {
        let m = Message::parse(ADT).unwrap();
        assert_eq!(m.text(&p("PID-5.1")).unwrap(), "Doe");
        assert_eq!(m.text(&p("PID-5")).unwrap(), "Doe");
        assert_eq!(m.text(&p("PID-5[2].2")).unwrap(), "Richard");
        assert_eq!(m.text(&p("PID-3[2].4")).unwrap(), "SSA");
        assert_eq!(m.text(&p("OBX[2]-5")).unwrap(), "hi|there");
        assert!(m.text(&p("PID-2")).is_none());
        assert!(m.get(&p("PID-2")).is_some());
        assert!(m.get(&p("PID-99")).is_none());
        assert!(m.get(&p("ZZZ-1")).is_none());
        let all: Vec<_> = m
            .values(&p("OBX[*]-5"))
            .iter()
            .map(|v| v.text().into_owned())
            .collect();
        assert_eq!(all, ["1.5", "hi|there"]);
        let ids: Vec<_> = m
            .values(&p("PID-3[*].1"))
            .iter()
            .map(|v| v.text().into_owned())
            .collect();
        assert_eq!(ids, ["123", "456"]);
        assert_eq!(m.get(&p("PID-5")).unwrap().display_text(), "Doe^John^Q");
    }

    #[test]
    fn line_ends_and_bom() {
        let lf = b"\xEF\xBB\xBFMSH|^~\\&|A\nPID|1\r\n\r\nPV1|1\n";
        let m = Message::parse(lf).unwrap();
        assert_eq!(m.segment_count(), 3);
        assert_eq!(m.as_bytes(), lf);
        assert_eq!(m.segment_at(2).unwrap().id(), "PV1");
    }

    #[test]
    fn header_errors() {
        assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(Message::parse(b"\r\n  ").unwrap_err(), ParseError::Empty);
        assert!(matches!(
            Message::parse(b"PID|1").unwrap_err(),
            ParseError::NoMsh { .. }
        ));
        assert!(matches!(
            Message::parse(b"BHS|^~\\&").unwrap_err(),
            ParseError::IsBatch(_)
        ));
        assert!(Message::parse(b"MSH").is_err());
        assert!(Message::parse(b"MSH|").is_err());
    }

    #[test]
    fn latin1_and_utf8_text() {
        let l1 = b"MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||8859/1\rPID|1||||M\xFCller\\S\\X\r";
        let m = Message::parse(l1).unwrap();
        assert_eq!(m.charset(), Charset::Latin1);
        assert_eq!(m.text(&p("PID-5")).unwrap(), "Müller^X");
        let u8 = "MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||UNICODE UTF-8\rPID|1||||Zoë\\F\\日本\r";
        let m = Message::parse(u8.as_bytes()).unwrap();
        assert_eq!(m.text(&p("PID-5")).unwrap(), "Zoë|日本");
    }
}
