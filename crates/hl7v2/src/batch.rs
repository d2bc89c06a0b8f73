//! Batches and files: FHS/BHS … MSH … BTS/FTS, and files that simply hold
//! several messages one after another.
//!
//! Owns splitting a byte stream into the byte ranges of its messages (each
//! one exactly as it stands, terminators included, so stored copies are
//! byte-exact) and building a batch from messages. It does not parse the
//! messages: hand each range to [`crate::Message::parse`].

use std::ops::Range;

use crate::delimiters::Delimiters;
use crate::error::ParseError;
use crate::escape::escape;
use crate::message::body_start;

/// What a split found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Byte range of each message, in order.
    pub messages: Vec<Range<usize>>,
    /// Byte range of the FHS segment, when there is one.
    pub file_header: Option<Range<usize>>,
    /// Byte ranges of the BHS segments.
    pub batch_headers: Vec<Range<usize>>,
    /// Message counts the BTS segments declare (BTS-1), when valued.
    pub declared_counts: Vec<Option<u64>>,
    /// Segments outside any message that are not batch envelope segments,
    /// as (segment number from 1, byte range).
    pub stray: Vec<(usize, Range<usize>)>,
}

impl Split {
    /// True when the declared BTS counts add up to the messages found (or
    /// nothing was declared).
    pub fn counts_match(&self) -> bool {
        if self.declared_counts.is_empty() {
            return true;
        }
        let declared: Option<u64> = self.declared_counts.iter().copied().sum();
        declared.is_none_or(|n| n == self.messages.len() as u64)
    }
}

/// Splits bytes holding one message, several messages, or a batch.
///
/// Messages start at each `MSH` and end where the next MSH or envelope
/// segment (FHS, BHS, BTS, FTS) starts, or at the end. Errors only when no
/// message and no envelope is found at all.
pub fn split(bytes: &[u8]) -> Result<Split, ParseError> {
    let start = body_start(bytes);
    if start >= bytes.len() {
        return Err(ParseError::Empty);
    }
    let head = &bytes[start..];
    if !(head.starts_with(b"MSH") || head.starts_with(b"FHS") || head.starts_with(b"BHS")) {
        let n = head.len().min(16);
        return Err(ParseError::NoMsh {
            offset: start,
            found: String::from_utf8_lossy(&head[..n]).into_owned(),
        });
    }
    let mut out = Split::default();
    // A message's range starts at the beginning of the buffer for the first
    // message (so a BOM stays with it) and at its MSH otherwise.
    let mut current: Option<usize> = None;
    let mut pos = 0usize;
    let mut seg_no = 0usize;
    let field_sep = head.get(3).copied().unwrap_or(b'|');
    while pos < bytes.len() {
        let seg_start = if pos == 0 { start } else { pos };
        let rest = &bytes[seg_start..];
        let (len, next) = match memchr::memchr2(b'\r', b'\n', rest) {
            Some(k) => {
                let t = if rest[k] == b'\r' && rest.get(k + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                (k, seg_start + k + t)
            }
            None => (rest.len(), bytes.len()),
        };
        let seg = &rest[..len];
        pos = next;
        if seg.iter().all(|b| matches!(b, b' ' | b'\t')) {
            continue;
        }
        seg_no += 1;
        let id = &seg[..seg.len().min(3)];
        let range = seg_start..seg_start + len;
        match id {
            b"MSH" => {
                if let Some(s) = current.take() {
                    out.messages.push(s..seg_start);
                }
                current = Some(
                    if out.messages.is_empty()
                        && out.file_header.is_none()
                        && out.batch_headers.is_empty()
                    {
                        0
                    } else {
                        seg_start
                    },
                );
            }
            b"FHS" | b"BHS" | b"BTS" | b"FTS" => {
                if let Some(s) = current.take() {
                    out.messages.push(s..seg_start);
                }
                match id {
                    b"FHS" => out.file_header = Some(range),
                    b"BHS" => out.batch_headers.push(range),
                    b"BTS" => {
                        let count = seg
                            .split(|&b| b == field_sep)
                            .nth(1)
                            .and_then(|c| std::str::from_utf8(c).ok())
                            .and_then(|c| c.trim().parse::<u64>().ok());
                        out.declared_counts.push(count);
                    }
                    _ => {}
                }
            }
            _ => {
                if current.is_none() {
                    out.stray.push((seg_no, range));
                }
            }
        }
    }
    if let Some(s) = current.take() {
        out.messages.push(s..bytes.len());
    }
    Ok(out)
}

/// Header values for a built batch.
#[derive(Clone, Debug, Default)]
pub struct BatchHeader<'a> {
    /// BHS-3 / FHS-3.
    pub sending_application: &'a str,
    /// BHS-4 / FHS-4.
    pub sending_facility: &'a str,
    /// BHS-5 / FHS-5.
    pub receiving_application: &'a str,
    /// BHS-6 / FHS-6.
    pub receiving_facility: &'a str,
    /// BHS-7 / FHS-7.
    pub timestamp: &'a str,
    /// BHS-11 / FHS-11.
    pub control_id: &'a str,
    /// Wrap the batch in FHS/FTS as well.
    pub with_file_header: bool,
}

/// Builds a batch (BHS, the messages, BTS with the count; FHS/FTS around it
/// when asked). Each message keeps its bytes; one that does not end with a
/// segment terminator gets `\r`.
pub fn build(messages: &[&[u8]], d: &Delimiters, h: &BatchHeader<'_>) -> Vec<u8> {
    let total: usize = messages.iter().map(|m| m.len() + 1).sum();
    let mut out = Vec::with_capacity(total + 256);
    let header = |out: &mut Vec<u8>, id: &[u8]| {
        out.extend_from_slice(id);
        out.push(d.field);
        out.extend_from_slice(&d.encoding_characters());
        for v in [
            h.sending_application,
            h.sending_facility,
            h.receiving_application,
            h.receiving_facility,
            h.timestamp,
            "",
            "",
            "",
            h.control_id,
        ] {
            out.push(d.field);
            let e = escape(v.as_bytes(), d)
                .map(|c| c.into_owned())
                .unwrap_or_default();
            out.extend_from_slice(&e);
        }
        out.push(b'\r');
    };
    if h.with_file_header {
        header(&mut out, b"FHS");
    }
    header(&mut out, b"BHS");
    for m in messages {
        out.extend_from_slice(m);
        if !(m.ends_with(b"\r") || m.ends_with(b"\n")) {
            out.push(b'\r');
        }
    }
    out.extend_from_slice(b"BTS");
    out.push(d.field);
    out.extend_from_slice(messages.len().to_string().as_bytes());
    out.push(b'\r');
    if h.with_file_header {
        out.extend_from_slice(b"FTS");
        out.push(d.field);
        out.push(b'1');
        out.push(b'\r');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Message;

    #[test]
    fn splits_plain_concatenation_byte_exact() {
        let a = b"\xEF\xBB\xBFMSH|^~\\&|A||||||ADT^A01|1|P|2.5\nPID|1\n";
        let b = b"MSH|^~\\&|B||||||ADT^A01|2|P|2.5\nPID|2\n";
        let all = [&a[..], &b[..]].concat();
        let s = split(&all).unwrap();
        assert_eq!(s.messages.len(), 2);
        assert_eq!(&all[s.messages[0].clone()], a);
        assert_eq!(&all[s.messages[1].clone()], b);
        assert!(s.counts_match());
    }

    #[test]
    fn builds_and_splits_a_batch() {
        let m1 = b"MSH|^~\\&|A||||||ADT^A01|1|P|2.5\rPID|1\r";
        let m2 = b"MSH|^~\\&|A||||||ADT^A01|2|P|2.5\rPID|2";
        let d = Delimiters::default();
        let batch = build(
            &[m1, m2],
            &d,
            &BatchHeader {
                control_id: "B1",
                with_file_header: true,
                ..Default::default()
            },
        );
        let s = split(&batch).unwrap();
        assert!(s.file_header.is_some());
        assert_eq!(s.batch_headers.len(), 1);
        assert_eq!(s.messages.len(), 2);
        assert_eq!(s.declared_counts, vec![Some(2)]);
        assert!(s.counts_match());
        assert_eq!(&batch[s.messages[0].clone()], m1);
        let second = Message::parse(&batch[s.messages[1].clone()]).unwrap();
        assert_eq!(second.control_id(), "2");
        assert!(s.stray.is_empty());
    }

    #[test]
    fn reports_wrong_counts_and_strays() {
        let data = b"BHS|^~\\&\rNTE|x\rMSH|^~\\&|A||||||ADT^A01|1|P|2.5\rBTS|5\r";
        let s = split(data).unwrap();
        assert_eq!(s.messages.len(), 1);
        assert!(!s.counts_match());
        assert_eq!(s.stray.len(), 1);
        assert!(split(b"hello").is_err());
        assert!(split(b"").is_err());
    }
}
