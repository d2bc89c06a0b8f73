//! A message split once into every field, repetition, component and
//! subcomponent: for readers that read many values of one message.
//!
//! Owns the split table and reading parts by number from it. [`Value`]
//! (in [`message`](crate::message)) splits lazily, scanning its bytes for
//! the n-th separator on every read; that is the right trade for reading a
//! few values, and the wrong one for a mapping that reads hundreds of values
//! of one message, several times each (the same component for a condition
//! and then for the value). Here one pass over the bytes builds a flat table
//! of parts (sixteen bytes each), and every later read is an index: a
//! [`Part`] is a small `Copy` handle, and text without escapes is borrowed
//! from the message as it is.
//!
//! ```
//! use hl7v2::{Message, split::Split};
//! let msg = Message::parse(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H^MR~9^^^S||Doe^Jane\r")?;
//! let s = Split::new(&msg);
//! let pid3 = s.field(1, 3).unwrap();
//! assert_eq!(s.reps(pid3).count(), 2);
//! let second = s.rep(pid3, 2).unwrap();
//! assert_eq!(s.text(s.comp(second, 4).unwrap()), "S");
//! assert_eq!(s.text(s.comp(s.field(1, 5).unwrap(), 2).unwrap()), "Jane");
//! # Ok::<(), hl7v2::ParseError>(())
//! ```

use std::borrow::Cow;

use crate::charset::Charset;
use crate::delimiters::Delimiters;
use crate::escape::unescape;
use crate::message::{Level, Message, Value};

/// One part in the table: its bytes (as offsets into the message) and its
/// children (the parts one level down, contiguous in the table).
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: u32,
    end: u32,
    first: u32,
    count: u32,
}

/// A field, repetition, component or subcomponent of a split message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    ix: u32,
    level: Level,
}

impl Part {
    /// How far this part has been split (as [`Value::level`]).
    pub fn level(self) -> Level {
        self.level
    }
}

/// A segment's fields in the field table.
#[derive(Clone, Copy, Debug)]
struct Seg {
    /// Table index of field 1.
    first: u32,
    /// How many fields.
    count: u32,
    /// MSH, FHS or BHS: fields 1 and 2 are the delimiters, read literally.
    header: bool,
}

/// The split message.
#[derive(Debug)]
pub struct Split<'m> {
    raw: &'m [u8],
    /// The whole message as text, when every byte of it reads as itself
    /// (valid UTF-8, and a character set that reads it so): a part without
    /// escapes is then its slice, with no decoding.
    text: Option<&'m str>,
    delims: &'m Delimiters,
    charset: Charset,
    segs: Vec<Seg>,
    /// Start and end of each segment's bytes.
    spans: Vec<(u32, u32)>,
    /// One table per level; a part's children are contiguous in the next.
    fields: Vec<Entry>,
    reps: Vec<Entry>,
    comps: Vec<Entry>,
    subs: Vec<Entry>,
}

const fn entry(start: usize, end: usize, first: usize, count: usize) -> Entry {
    Entry {
        start: start as u32,
        end: end as u32,
        first: first as u32,
        count: count as u32,
    }
}

impl<'m> Split<'m> {
    /// Splits every segment of `msg`. Offsets are 32-bit: a message of
    /// [`Split::MAX_LEN`] bytes or more is split into nothing (callers
    /// refuse such a message first; see [`Split::fits`]).
    pub fn new(msg: &'m Message<'m>) -> Split<'m> {
        let raw = msg.as_bytes();
        let delims = msg.delimiters();
        let charset = msg.charset();
        let text = std::str::from_utf8(raw)
            .ok()
            .filter(|t| !matches!(charset, Charset::Other(_)) || t.is_ascii());
        let n = raw.len() / 8 + 16;
        let mut s = Split {
            raw,
            text,
            delims,
            charset,
            segs: Vec::with_capacity(msg.segment_count()),
            spans: Vec::with_capacity(msg.segment_count()),
            fields: Vec::with_capacity(n),
            reps: Vec::with_capacity(n),
            comps: Vec::with_capacity(n + n / 2),
            subs: Vec::with_capacity(n + n / 2),
        };
        let base_ptr = raw.as_ptr() as usize;
        if !Split::fits(raw.len()) {
            return s;
        }
        for seg in msg.segments() {
            let bytes = seg.as_bytes();
            let start = bytes.as_ptr() as usize - base_ptr;
            let end = start + bytes.len();
            s.spans.push((start as u32, end as u32));
            s.add_segment(
                start,
                end,
                matches!(seg.id_bytes(), b"MSH" | b"FHS" | b"BHS"),
            );
        }
        s
    }

    /// Splits one segment in one pass over its bytes: each separator closes
    /// the parts it ends (a field separator all four levels, a component
    /// separator a component and its subcomponent...), and a part's children
    /// are the ones closed in the next table since it began.
    fn add_segment(&mut self, start: usize, end: usize, header: bool) {
        let raw = self.raw;
        let d = *self.delims;
        let first = self.fields.len();
        // Where the first field starts after: a header's field 1 is the
        // field separator itself and its field 2 (the encoding characters)
        // is read as written; other segments start after their id.
        let mut at = if header && end - start > 3 {
            self.fields.push(entry(start + 3, start + 4, 0, 0));
            let two = start + 4;
            let two_end = raw[two..end]
                .iter()
                .position(|b| *b == d.field)
                .map_or(end, |i| two + i);
            self.fields.push(entry(two, two_end, 0, 0));
            (two_end < end).then_some(two_end)
        } else {
            raw[start..end]
                .iter()
                .position(|b| *b == d.field)
                .map(|i| start + i)
        };
        // Absent separators never match (a byte is at most 255).
        let f_sep = u16::from(d.field);
        let r_sep = d.repetition.map_or(256, u16::from);
        let c_sep = u16::from(d.component);
        let s_sep = d.subcomponent.map_or(256, u16::from);
        while let Some(sep) = at {
            let f_start = sep + 1;
            let (mut r_start, mut c_start, mut s_start) = (f_start, f_start, f_start);
            let (f_first, mut r_first, mut c_first) =
                (self.reps.len(), self.comps.len(), self.subs.len());
            let mut i = f_start;
            at = loop {
                let b = if i < end { u16::from(raw[i]) } else { f_sep };
                if b == s_sep || b == c_sep || b == r_sep || b == f_sep {
                    self.subs.push(entry(s_start, i, 0, 0));
                    s_start = i + 1;
                    if b != s_sep {
                        self.comps
                            .push(entry(c_start, i, c_first, self.subs.len() - c_first));
                        c_first = self.subs.len();
                        c_start = i + 1;
                        if b != c_sep {
                            self.reps
                                .push(entry(r_start, i, r_first, self.comps.len() - r_first));
                            r_first = self.comps.len();
                            r_start = i + 1;
                            if b != r_sep {
                                self.fields.push(entry(
                                    f_start,
                                    i,
                                    f_first,
                                    self.reps.len() - f_first,
                                ));
                                break (i < end).then_some(i);
                            }
                        }
                    }
                }
                i += 1;
            };
        }
        self.segs.push(Seg {
            first: first as u32,
            count: (self.fields.len() - first) as u32,
            header,
        });
    }

    /// The longest message the table can split.
    pub const MAX_LEN: usize = u32::MAX as usize - 1;

    /// True when a message of `len` bytes can be split.
    pub fn fits(len: usize) -> bool {
        len <= Split::MAX_LEN
    }

    /// How many segments.
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    /// The bytes of segment `seg` (0-based), without its terminator.
    pub fn segment_bytes(&self, seg: usize) -> Option<&'m [u8]> {
        let (s, e) = *self.spans.get(seg)?;
        Some(&self.raw[s as usize..e as usize])
    }

    /// Field `n` (HL7's number) of segment `seg` (0-based). MSH-1 and MSH-2
    /// are the delimiters, read literally.
    pub fn field(&self, seg: usize, n: u16) -> Option<Part> {
        let s = self.segs.get(seg)?;
        let k = u32::from(n).checked_sub(1)?;
        let level = if s.header && n <= 2 {
            Level::Literal
        } else {
            Level::Field
        };
        (k < s.count).then_some(Part {
            ix: s.first + k,
            level,
        })
    }

    /// How many fields segment `seg` has (its highest field number).
    pub fn field_count(&self, seg: usize) -> usize {
        self.segs.get(seg).map_or(0, |s| s.count as usize)
    }

    #[inline]
    fn entry(&self, p: Part) -> Entry {
        let table = match p.level {
            Level::Repetition => &self.reps,
            Level::Component => &self.comps,
            Level::Subcomponent => &self.subs,
            _ => &self.fields,
        };
        table[p.ix as usize]
    }

    /// The part's bytes as they stand in the message.
    pub fn bytes(&self, p: Part) -> &'m [u8] {
        let e = self.entry(p);
        &self.raw[e.start as usize..e.end as usize]
    }

    /// True when nothing is there: no bytes, or separators only (`^`,
    /// `&&^^^`: the value's shape with nothing in it). A header's literal
    /// delimiters (MSH-2) are never empty.
    pub fn is_empty(&self, p: Part) -> bool {
        let e = self.entry(p);
        e.start == e.end
            || (p.level != Level::Literal
                && self
                    .delims
                    .only_separators(&self.raw[e.start as usize..e.end as usize]))
    }

    /// True for HL7's explicit null, `""`.
    pub fn is_null(&self, p: Part) -> bool {
        self.bytes(p) == b"\"\""
    }

    fn child(&self, p: Part, n: u32, level: Level) -> Option<Part> {
        let e = self.entry(p);
        let k = n.checked_sub(1)?;
        (k < e.count).then_some(Part {
            ix: e.first + k,
            level,
        })
    }

    /// The n-th repetition (1-based) of a field; a lower-level part is its
    /// own first repetition.
    pub fn rep(&self, p: Part, n: u32) -> Option<Part> {
        match p.level {
            Level::Field => self.child(p, n, Level::Repetition),
            _ if n == 1 => Some(p),
            _ => None,
        }
    }

    /// Every repetition of a field (a lower-level part: itself).
    pub fn reps(&self, p: Part) -> impl Iterator<Item = Part> + '_ {
        let (first, count, level) = match p.level {
            Level::Field => {
                let e = self.entry(p);
                (e.first, e.count, Level::Repetition)
            }
            _ => (p.ix, 1, p.level),
        };
        (first..first + count).map(move |ix| Part { ix, level })
    }

    /// The n-th component (1-based), of the first repetition for a field.
    pub fn comp(&self, p: Part, n: u16) -> Option<Part> {
        match p.level {
            Level::Field => self.comp(self.rep(p, 1)?, n),
            Level::Repetition => self.child(p, u32::from(n), Level::Component),
            Level::Segment => None,
            _ if n == 1 => Some(p),
            _ => None,
        }
    }

    /// The n-th subcomponent (1-based), of the first component above it.
    pub fn sub(&self, p: Part, n: u16) -> Option<Part> {
        match p.level {
            Level::Field | Level::Repetition => self.sub(self.comp(p, 1)?, n),
            Level::Component => self.child(p, u32::from(n), Level::Subcomponent),
            Level::Segment => None,
            _ if n == 1 => Some(p),
            _ => None,
        }
    }

    /// The first leaf: component 1, subcomponent 1.
    pub fn leaf(&self, p: Part) -> Part {
        match p.level {
            Level::Field | Level::Repetition | Level::Component => self.sub(p, 1).unwrap_or(p),
            _ => p,
        }
    }

    /// The text of the part's first leaf, unescaped and decoded (as
    /// [`Value::text`]); borrowed when it holds no escapes.
    pub fn text(&self, p: Part) -> Cow<'m, str> {
        if let Some(all) = self.text
            && !matches!(p.level, Level::Segment | Level::Literal)
        {
            let e = self.entry(self.leaf(p));
            let b = &self.raw[e.start as usize..e.end as usize];
            // Leaves are short: a plain scan for the escape character.
            // (`get`: separators a hostile header makes of non-ASCII bytes
            // may cut a character; such a part takes the long way.)
            if self.delims.escape.is_none_or(|esc| !b.contains(&esc))
                && let Some(t) = all.get(e.start as usize..e.end as usize)
            {
                return Cow::Borrowed(t);
            }
        }
        match p.level {
            Level::Segment | Level::Literal => self.charset.decode(Cow::Borrowed(self.bytes(p))),
            _ => self
                .charset
                .decode(unescape(self.bytes(self.leaf(p)), self.delims)),
        }
    }

    /// The whole part unescaped and decoded, inner separators as written
    /// (as [`Value::display_text`]).
    pub fn display_text(&self, p: Part) -> Cow<'m, str> {
        match p.level {
            Level::Segment | Level::Literal => self.charset.decode(Cow::Borrowed(self.bytes(p))),
            _ => self.charset.decode(unescape(self.bytes(p), self.delims)),
        }
    }

    /// Which parts `.n` reads hold a value (as [`Value::parts_present`]).
    pub fn parts_present(&self, p: Part) -> u64 {
        let present = |q: Part| !self.is_empty(q) && !self.is_null(q);
        let (parent, level) = match p.level {
            Level::Field => match self.rep(p, 1) {
                Some(r) => (r, Level::Component),
                None => return 0,
            },
            Level::Repetition => (p, Level::Component),
            Level::Component => (p, Level::Subcomponent),
            Level::Segment => return 0,
            Level::Subcomponent | Level::Literal => {
                return if present(p) { 0b10 } else { 0 };
            }
        };
        let e = self.entry(parent);
        let mut bits = 0;
        for k in 0..e.count.min(63) {
            if present(Part {
                ix: e.first + k,
                level,
            }) {
                bits |= 1 << (k + 1);
            }
        }
        bits
    }

    /// Which fields of segment `seg` hold a value (as
    /// [`Segment::fields_present`](crate::message::Segment::fields_present)).
    pub fn fields_present(&self, seg: usize) -> u64 {
        let Some(s) = self.segs.get(seg) else {
            return 0;
        };
        let mut bits = if s.header { 0b110 } else { 0 };
        for k in 0..s.count.min(63) {
            let p = Part {
                ix: s.first + k,
                level: Level::Field,
            };
            if !self.is_empty(p) && !self.is_null(p) {
                bits |= 1 << (k + 1);
            }
        }
        bits
    }

    /// The part as a [`Value`] (for code that reads it the lazy way).
    pub fn value(&self, p: Part) -> Value<'m> {
        Value::from_parts(self.bytes(p), p.level, self.delims, self.charset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every part read through the table reads as the lazy [`Value`] reads.
    fn agrees(raw: &[u8]) {
        let msg = Message::parse(raw).unwrap();
        let s = Split::new(&msg);
        assert_eq!(s.segment_count(), msg.segment_count());
        for (i, seg) in msg.segments().enumerate() {
            assert_eq!(s.segment_bytes(i), Some(seg.as_bytes()));
            assert_eq!(s.fields_present(i), seg.fields_present(), "{}", seg.id());
            assert_eq!(s.field_count(i), seg.field_count(), "{}", seg.id());
            for n in 0..70u16 {
                let (a, b) = (seg.field(n), s.field(i, n));
                assert_eq!(a.is_some(), b.is_some(), "{}-{n}", seg.id());
                let (Some(a), Some(b)) = (a, b) else { continue };
                check(&s, a, b, &format!("{}-{n}", seg.id()));
                for k in 1..4u32 {
                    match (a.repetition(k), s.rep(b, k)) {
                        (Some(a), Some(b)) => check(&s, a, b, &format!("{}-{n}[{k}]", seg.id())),
                        (None, None) => {}
                        _ => panic!("{}-{n}[{k}]", seg.id()),
                    }
                }
                assert_eq!(a.repetitions().count(), s.reps(b).count());
            }
        }
    }

    fn check(s: &Split<'_>, a: Value<'_>, b: Part, at: &str) {
        assert_eq!(a.raw(), s.bytes(b), "{at}");
        assert_eq!(a.level(), b.level(), "{at}");
        assert_eq!(a.text(), s.text(b), "{at}");
        assert_eq!(a.display_text(), s.display_text(b), "{at}");
        assert_eq!(a.is_null(), s.is_null(b), "{at}");
        assert_eq!(a.parts_present(), s.parts_present(b), "{at}");
        for c in 0..6u16 {
            match (a.component(c), s.comp(b, c)) {
                (Some(x), Some(y)) => {
                    assert_eq!(x.raw(), s.bytes(y), "{at}.{c}");
                    assert_eq!(x.text(), s.text(y), "{at}.{c}");
                    for k in 0..4u16 {
                        match (x.subcomponent(k), s.sub(y, k)) {
                            (Some(p), Some(q)) => assert_eq!(p.raw(), s.bytes(q), "{at}.{c}.{k}"),
                            (None, None) => {}
                            _ => panic!("{at}.{c}.{k}"),
                        }
                    }
                }
                (None, None) => {}
                _ => panic!("{at}.{c}"),
            }
            match (a.subcomponent(c), s.sub(b, c)) {
                (Some(x), Some(y)) => assert_eq!(x.raw(), s.bytes(y), "{at} sub {c}"),
                (None, None) => {}
                _ => panic!("{at} sub {c}"),
            }
        }
    }

    #[test]
    fn reads_as_the_lazy_values_read() {
        agrees(b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||123^^^H^MR~9^^^S&x&y||Doe^J\\F\\ane~||\"\"|M\rOBX|1|TX|||a\\S\\b~c&d^e\r");
        agrees(b"MSH|^~\\&#|A\rZZZ\rZZZ|\rZZZ||||\r");
        agrees("MSH|^~\\&|A|||||||||2.5|||||UNICODE UTF-8\rPID|||é^ü~ß\r".as_bytes());
    }

    #[test]
    fn every_fixture_reads_the_same() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hl7");
        let mut n = 0;
        for f in std::fs::read_dir(dir).unwrap() {
            let raw = std::fs::read(f.unwrap().path()).unwrap();
            if Message::parse(&raw).is_ok() {
                agrees(&raw);
                n += 1;
            }
        }
        assert!(n > 20);
    }
}
