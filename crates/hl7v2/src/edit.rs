//! Editing and building messages.
//!
//! Owns writing values at paths and adding segments. An edit splices the
//! message bytes: only the bytes of the value change (plus separators when
//! the target lies past the current end), so everything else serializes
//! exactly as it was. Text is encoded to the message's character set and
//! escaped once here; [`Message::set_raw`] takes already-encoded bytes.

use std::borrow::Cow;

use crate::delimiters::Delimiters;
use crate::error::EditError;
use crate::escape::{EscapeError, escape};
use crate::message::{Message, Span};
use crate::path::{Index, Path};

impl Message<'static> {
    /// A new message holding only `MSH|^~\&` (or the given delimiters),
    /// ready for [`Message::set`] and [`Message::push_segment`].
    ///
    /// ```
    /// use hl7v2::{Delimiters, Message};
    /// let mut m = Message::new(Delimiters::default());
    /// m.set(&"MSH-9.1".parse().unwrap(), "ADT").unwrap();
    /// m.set(&"PID-5.1".parse().unwrap(), "O'Brien^Jr").unwrap();
    /// let back = Message::parse(m.as_bytes()).unwrap();
    /// assert_eq!(back.text(&"PID-5.1".parse().unwrap()).unwrap(), "O'Brien^Jr");
    /// ```
    pub fn new(delims: Delimiters) -> Message<'static> {
        let mut raw = b"MSH".to_vec();
        raw.push(delims.field);
        raw.extend_from_slice(&delims.encoding_characters());
        let end = raw.len() as u32;
        raw.push(b'\r');
        Message {
            raw: Cow::Owned(raw),
            delims,
            segments: vec![Span { start: 0, end }],
            charset: crate::charset::Charset::Default,
            terminator: b"\r",
        }
    }
}

impl Message<'_> {
    /// Writes text at a path: encoded to the message's character set and
    /// escaped, so it reads back as itself. Missing fields, repetitions and
    /// components are created; setting a segment one past the last of its
    /// id appends it.
    pub fn set(&mut self, path: &Path, text: &str) -> Result<(), EditError> {
        let encoded = self
            .charset
            .encode(text)
            .ok_or_else(|| EditError::Unrepresentable {
                path: path.to_string(),
                charset: self.charset.name(),
            })?;
        let escaped = escape(&encoded, &self.delims).map_err(|e| match e {
            EscapeError::NoEscapeCharacter => EditError::MissingDelimiter {
                path: path.to_string(),
                role: "escape",
            },
        })?;
        let bytes = escaped.into_owned();
        self.set_raw(path, &bytes)
    }

    /// Writes bytes exactly as given (already escaped, may hold separators,
    /// e.g. `Doe^John`).
    pub fn set_raw(&mut self, path: &Path, bytes: &[u8]) -> Result<(), EditError> {
        let seg_nth = match path.segment_index {
            Index::Nth(n) => n,
            Index::All => return Err(EditError::Ambiguous(path.to_string())),
        };
        if path.repetition == Some(Index::All) {
            return Err(EditError::Ambiguous(path.to_string()));
        }
        let Some(field) = path.field else {
            return self.replace_segment(path, seg_nth, bytes);
        };
        let header = matches!(&path.segment, b"MSH" | b"FHS" | b"BHS");
        if header && field <= 2 {
            return Err(EditError::Delimiters(path.to_string()));
        }
        let index = self.segment_index_or_append(path, seg_nth)?;
        let d = self.delims;
        let part = if header {
            usize::from(field) - 1
        } else {
            usize::from(field)
        };
        let rep = match path.repetition {
            Some(Index::Nth(n)) => n as usize - 1,
            _ => 0,
        };
        let mut levels: Vec<(Option<u8>, usize, &'static str)> = vec![
            (Some(d.field), part, "field"),
            (d.repetition, rep, "repetition"),
        ];
        if let Some(c) = path.component {
            levels.push((Some(d.component), usize::from(c) - 1, "component"));
            if let Some(s) = path.subcomponent {
                levels.push((d.subcomponent, usize::from(s) - 1, "subcomponent"));
            }
        }
        let span = self.span(index);
        let old = &self.raw[span.start as usize..span.end as usize];
        let new = splice_levels(old, &levels, bytes, path)?;
        self.replace_span(index, &new)?;
        if header {
            self.refresh_charset();
        }
        Ok(())
    }

    /// Appends an empty segment with this id and returns its position.
    pub fn push_segment(&mut self, id: &str) -> Result<usize, EditError> {
        let idb = id.as_bytes();
        let valid = idb.len() == 3
            && idb[0].is_ascii_uppercase()
            && idb[1..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(EditError::BadSegmentId(id.to_string()));
        }
        let term = self.terminator;
        let raw = self.raw.to_mut();
        if !(raw.ends_with(b"\r") || raw.ends_with(b"\n")) {
            raw.extend_from_slice(term);
        }
        let start = raw.len();
        raw.extend_from_slice(idb);
        let end = raw.len();
        raw.extend_from_slice(term);
        if raw.len() > u32::MAX as usize {
            return Err(EditError::TooLarge);
        }
        self.segments.push(Span {
            start: start as u32,
            end: end as u32,
        });
        Ok(self.segments.len() - 1)
    }

    /// Removes the segment at a position (0-based); MSH cannot be removed.
    pub fn remove_segment(&mut self, index: usize) -> Result<(), EditError> {
        if index == 0 || index >= self.segments.len() {
            return Err(EditError::NoSuchSegment {
                path: format!("segment #{}", index + 1),
                segment: String::new(),
                have: self.segments.len(),
                next: self.segments.len(),
            });
        }
        let span = self.span(index);
        // Remove the segment and its terminator.
        let raw = self.raw.to_mut();
        let mut end = span.end as usize;
        if raw.get(end) == Some(&b'\r') {
            end += 1;
        }
        if raw.get(end) == Some(&b'\n') {
            end += 1;
        }
        let removed = (end - span.start as usize) as u32;
        raw.drain(span.start as usize..end);
        self.segments.remove(index);
        for s in &mut self.segments[index..] {
            s.start -= removed;
            s.end -= removed;
        }
        Ok(())
    }

    fn segment_index_or_append(&mut self, path: &Path, nth: u32) -> Result<usize, EditError> {
        let mut seen = 0u32;
        for (i, span) in self.segments.iter().enumerate() {
            let b = &self.raw[span.start as usize..span.end as usize];
            if b.len() >= 3 && b[..3] == path.segment {
                seen += 1;
                if seen == nth {
                    return Ok(i);
                }
            }
        }
        if nth == seen + 1 {
            return self.push_segment(path.segment_id());
        }
        Err(EditError::NoSuchSegment {
            path: path.to_string(),
            segment: path.segment_id().to_string(),
            have: seen as usize,
            next: seen as usize + 1,
        })
    }

    fn replace_segment(&mut self, path: &Path, nth: u32, bytes: &[u8]) -> Result<(), EditError> {
        if !bytes.starts_with(&path.segment) || bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
            return Err(EditError::BadSegmentId(
                String::from_utf8_lossy(bytes).into_owned(),
            ));
        }
        if &path.segment == b"MSH" {
            return Err(EditError::Delimiters(path.to_string()));
        }
        let index = self.segment_index_or_append(path, nth)?;
        self.replace_span(index, bytes)
    }

    fn replace_span(&mut self, index: usize, new: &[u8]) -> Result<(), EditError> {
        let span = self.span(index);
        let old_len = (span.end - span.start) as usize;
        let new_total = self.raw.len() - old_len + new.len();
        if new_total > u32::MAX as usize {
            return Err(EditError::TooLarge);
        }
        let raw = self.raw.to_mut();
        raw.splice(span.start as usize..span.end as usize, new.iter().copied());
        let delta = new.len() as i64 - old_len as i64;
        self.segments[index].end = (i64::from(span.end) + delta) as u32;
        for s in &mut self.segments[index + 1..] {
            s.start = (i64::from(s.start) + delta) as u32;
            s.end = (i64::from(s.end) + delta) as u32;
        }
        Ok(())
    }
}

/// Replaces the part selected by `levels` (separator, 0-based index, role
/// name) inside `bytes` with `value`, adding separators where the part lies
/// past the end.
fn splice_levels(
    bytes: &[u8],
    levels: &[(Option<u8>, usize, &'static str)],
    value: &[u8],
    path: &Path,
) -> Result<Vec<u8>, EditError> {
    let Some(&(sep, idx, role)) = levels.first() else {
        return Ok(value.to_vec());
    };
    let Some(sep) = sep else {
        if idx == 0 {
            return splice_levels(bytes, &levels[1..], value, path);
        }
        return Err(EditError::MissingDelimiter {
            path: path.to_string(),
            role,
        });
    };
    let (start, end, pad) = locate(bytes, sep, idx);
    let inner = splice_levels(&bytes[start..end], &levels[1..], value, path)?;
    let mut out = Vec::with_capacity(bytes.len() + inner.len() + pad);
    out.extend_from_slice(&bytes[..start]);
    out.extend(std::iter::repeat_n(sep, pad));
    out.extend_from_slice(&inner);
    out.extend_from_slice(&bytes[end..]);
    Ok(out)
}

/// Byte range of part `idx` of `bytes` split by `sep`, or the end of the
/// bytes and how many separators must be added to reach it.
fn locate(bytes: &[u8], sep: u8, idx: usize) -> (usize, usize, usize) {
    let mut start = 0;
    let mut it = memchr::memchr_iter(sep, bytes);
    for found in 0..idx {
        match it.next() {
            Some(p) => start = p + 1,
            None => return (bytes.len(), bytes.len(), idx - found),
        }
    }
    let end = it.next().unwrap_or(bytes.len());
    (start, end, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    const MSG: &[u8] = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\nPID|1||123~456||Doe^John\n";

    #[test]
    fn edit_changes_only_the_value() {
        let mut m = Message::parse(MSG).unwrap();
        m.set(&p("PID-5.1"), "Smith").unwrap();
        assert_eq!(
            m.as_bytes(),
            b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\nPID|1||123~456||Smith^John\n"
        );
        let back = Message::parse(m.as_bytes()).unwrap();
        assert_eq!(back.text(&p("PID-5.1")).unwrap(), "Smith");
    }

    #[test]
    fn edit_pads_missing_parts() {
        let mut m = Message::parse(MSG).unwrap();
        m.set(&p("PID-3[3].4.2"), "x").unwrap();
        m.set(&p("PID-8"), "M").unwrap();
        m.set(&p("MSH-18"), "UNICODE UTF-8").unwrap();
        let back = Message::parse(m.as_bytes()).unwrap();
        assert_eq!(back.text(&p("PID-3[3].4.2")).unwrap(), "x");
        assert_eq!(back.text(&p("PID-3[2]")).unwrap(), "456");
        assert_eq!(back.text(&p("PID-8")).unwrap(), "M");
        assert_eq!(back.get(&p("PID-3")).unwrap().raw(), b"123");
        assert_eq!(
            back.segment_at(1).unwrap().as_bytes(),
            b"PID|1||123~456~^^^&x||Doe^John|||M"
        );
        assert_eq!(back.charset(), crate::Charset::Utf8);
    }

    #[test]
    fn set_escapes_once() {
        let mut m = Message::parse(MSG).unwrap();
        m.set(&p("PID-5.2"), "a|b^c&d~e\\f").unwrap();
        let raw = m.segment_at(1).unwrap().as_bytes().to_vec();
        assert!(raw.ends_with(b"Doe^a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"));
        let back = Message::parse(m.as_bytes()).unwrap();
        assert_eq!(back.text(&p("PID-5.2")).unwrap(), "a|b^c&d~e\\f");
        // Setting what was read writes the same bytes back.
        let mut again = back.clone().into_owned();
        let t = back.text(&p("PID-5.2")).unwrap().into_owned();
        again.set(&p("PID-5.2"), &t).unwrap();
        assert_eq!(again.as_bytes(), back.as_bytes());
    }

    #[test]
    fn build_from_scratch() {
        let mut m = Message::new(Delimiters::with_truncation());
        for (path, v) in [
            ("MSH-3", "APP"),
            ("MSH-9.1", "ORU"),
            ("MSH-9.2", "R01"),
            ("MSH-10", "C1"),
            ("MSH-12", "2.7"),
            ("PID-5.1", "Zoë #1"),
            ("OBX-5", "a"),
            ("OBX[2]-5", "b"),
        ] {
            m.set(&p(path), v).unwrap();
        }
        let back = Message::parse(m.as_bytes()).unwrap();
        assert_eq!(back.delimiters(), &Delimiters::with_truncation());
        assert_eq!(back.message_type().to_string(), "ORU^R01");
        assert_eq!(back.text(&p("PID-5.1")).unwrap(), "Zoë #1");
        assert_eq!(back.text(&p("OBX[2]-5")).unwrap(), "b");
        assert!(m.set(&p("OBX[4]-5"), "x").is_err());
        assert!(m.set(&p("MSH-2"), "x").is_err());
        assert!(m.set(&p("OBX[*]-5"), "x").is_err());
    }

    #[test]
    fn unrepresentable_and_missing_delimiters() {
        let mut m = Message::parse(b"MSH|^~\\&|||||||ADT^A01|1|P|2.5||||||8859/1\r").unwrap();
        assert!(matches!(
            m.set(&p("PID-5"), "日本"),
            Err(EditError::Unrepresentable { .. })
        ));
        m.set(&p("PID-5"), "Müller").unwrap();
        assert!(m.as_bytes().ends_with(b"PID|||||M\xFCller\r"));
        let mut m = Message::parse(b"MSH|^|\r").unwrap();
        assert!(matches!(
            m.set(&p("PID-5[2]"), "x"),
            Err(EditError::MissingDelimiter { .. })
        ));
    }

    #[test]
    fn remove_and_replace_segments() {
        let mut m = Message::parse(MSG).unwrap();
        m.set_raw(&p("ZZ1"), b"ZZ1|a|b").unwrap();
        assert_eq!(m.segment_count(), 3);
        m.remove_segment(1).unwrap();
        let back = Message::parse(m.as_bytes()).unwrap();
        assert_eq!(back.segment_at(1).unwrap().as_bytes(), b"ZZ1|a|b");
        assert!(m.remove_segment(0).is_err());
    }
}
