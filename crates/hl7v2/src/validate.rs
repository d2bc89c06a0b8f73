//! Structural checks on a parsed message, with HL7 table 0357 codes.
//!
//! Owns what makes a readable message invalid: bad segment ids, a segment
//! that does not use the declared field separator ("bad delimiters in the
//! body"), NUL bytes, and missing MSH-9/-10/-11/-12. It does not own
//! message-profile rules (required segments per event) or per-channel
//! policy (accepted versions, processing ids): those belong to the caller.

use std::fmt;

use crate::message::Message;

/// HL7 table 0357, message error condition codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: Message accepted.
    Accepted,
    /// 100: Segment sequence error.
    SegmentSequence,
    /// 101: Required field missing.
    RequiredFieldMissing,
    /// 102: Data type error.
    DataType,
    /// 103: Table value not found.
    TableValueNotFound,
    /// 104: Value too long.
    ValueTooLong,
    /// 200: Unsupported message type.
    UnsupportedMessageType,
    /// 201: Unsupported event code.
    UnsupportedEventCode,
    /// 202: Unsupported processing id.
    UnsupportedProcessingId,
    /// 203: Unsupported version id.
    UnsupportedVersionId,
    /// 204: Unknown key identifier.
    UnknownKey,
    /// 205: Duplicate key identifier.
    DuplicateKey,
    /// 206: Application record locked.
    RecordLocked,
    /// 207: Application internal error.
    InternalError,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::Accepted => 0,
            ErrorCode::SegmentSequence => 100,
            ErrorCode::RequiredFieldMissing => 101,
            ErrorCode::DataType => 102,
            ErrorCode::TableValueNotFound => 103,
            ErrorCode::ValueTooLong => 104,
            ErrorCode::UnsupportedMessageType => 200,
            ErrorCode::UnsupportedEventCode => 201,
            ErrorCode::UnsupportedProcessingId => 202,
            ErrorCode::UnsupportedVersionId => 203,
            ErrorCode::UnknownKey => 204,
            ErrorCode::DuplicateKey => 205,
            ErrorCode::RecordLocked => 206,
            ErrorCode::InternalError => 207,
        }
    }

    /// The table's text for the code.
    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::Accepted => "Message accepted",
            ErrorCode::SegmentSequence => "Segment sequence error",
            ErrorCode::RequiredFieldMissing => "Required field missing",
            ErrorCode::DataType => "Data type error",
            ErrorCode::TableValueNotFound => "Table value not found",
            ErrorCode::ValueTooLong => "Value too long",
            ErrorCode::UnsupportedMessageType => "Unsupported message type",
            ErrorCode::UnsupportedEventCode => "Unsupported event code",
            ErrorCode::UnsupportedProcessingId => "Unsupported processing id",
            ErrorCode::UnsupportedVersionId => "Unsupported version id",
            ErrorCode::UnknownKey => "Unknown key identifier",
            ErrorCode::DuplicateKey => "Duplicate key identifier",
            ErrorCode::RecordLocked => "Application record locked",
            ErrorCode::InternalError => "Application internal error",
        }
    }
}

/// Where in a message something is (HL7's ERL data type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// Segment id (`PID`), as found.
    pub segment: String,
    /// Position of the segment in the message, from 1.
    pub sequence: u32,
    /// Field number, when the problem is in one field.
    pub field: Option<u16>,
    /// Repetition, from 1.
    pub repetition: Option<u16>,
    /// Component, from 1.
    pub component: Option<u16>,
    /// Subcomponent, from 1.
    pub subcomponent: Option<u16>,
}

impl fmt::Display for Location {
    /// `segment 3 (PID), field 5`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "segment {} ({})", self.sequence, self.segment)?;
        if let Some(field) = self.field {
            write!(f, ", field {}-{field}", self.segment)?;
        }
        Ok(())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// HL7 table 0357 code.
    pub code: ErrorCode,
    /// Where.
    pub location: Location,
    /// What and why, for people. Never contains field values (PHI).
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} ({} {})",
            self.location,
            self.message,
            self.code.code(),
            self.code.text()
        )
    }
}

/// At most this many findings are reported for one message.
pub const MAX_ISSUES: usize = 20;

impl Message<'_> {
    /// Checks the message's structure; an empty list means valid.
    pub fn validate(&self) -> Vec<Issue> {
        let mut out = Vec::new();
        let field_sep = self.delimiters().field;
        for seg in self.segments() {
            if out.len() >= MAX_ISSUES {
                return out;
            }
            let bytes = seg.as_bytes();
            let seq = seg.index() as u32 + 1;
            let id_ok = bytes.len() >= 3
                && bytes[0].is_ascii_uppercase()
                && bytes[1..3]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            if !id_ok {
                out.push(Issue {
                    code: ErrorCode::SegmentSequence,
                    location: Location {
                        segment: printable_id(bytes),
                        sequence: seq,
                        ..Location::default()
                    },
                    message: "invalid segment id: expected three capital letters or digits".into(),
                });
                continue;
            }
            if bytes.len() > 3 && bytes[3] != field_sep {
                out.push(Issue {
                    code: ErrorCode::SegmentSequence,
                    location: Location {
                        segment: printable_id(bytes),
                        sequence: seq,
                        ..Location::default()
                    },
                    message: format!(
                        "expected the field separator '{}' after the segment id, found {}",
                        field_sep as char,
                        show_byte(bytes[3])
                    ),
                });
                continue;
            }
            if let Some(pos) = memchr::memchr(0, bytes) {
                out.push(Issue {
                    code: ErrorCode::DataType,
                    location: Location {
                        segment: printable_id(bytes),
                        sequence: seq,
                        ..Location::default()
                    },
                    message: format!("NUL byte at offset {pos} of the segment"),
                });
            }
        }
        let header = self.header();
        let required: [(u16, Option<u16>, &str); 5] = [
            (9, Some(1), "MSH-9.1 (message code) is required"),
            (9, Some(2), "MSH-9.2 (trigger event) is required"),
            (10, None, "MSH-10 (message control id) is required"),
            (11, Some(1), "MSH-11 (processing id) is required"),
            (12, Some(1), "MSH-12 (version id) is required"),
        ];
        for (field, comp, what) in required {
            let v = header
                .field(field)
                .and_then(|f| f.component(comp.unwrap_or(1)));
            let missing = v.is_none_or(|v| v.is_empty());
            // ACK messages of old versions carry no trigger event.
            let ack_without_trigger =
                field == 9 && comp == Some(2) && self.message_type().code == "ACK";
            if missing && !ack_without_trigger && out.len() < MAX_ISSUES {
                out.push(Issue {
                    code: ErrorCode::RequiredFieldMissing,
                    location: Location {
                        segment: "MSH".into(),
                        sequence: 1,
                        field: Some(field),
                        component: comp,
                        ..Location::default()
                    },
                    message: what.into(),
                });
            }
        }
        out
    }
}

fn printable_id(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(3)
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02X}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_message_has_no_issues() {
        let m = Message::parse(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1\r").unwrap();
        assert!(m.validate().is_empty(), "{:?}", m.validate());
    }

    #[test]
    fn missing_header_fields() {
        let m = Message::parse(b"MSH|^~\\&|A|B|C|D|2024||||P|2.5\r").unwrap();
        let issues = m.validate();
        assert_eq!(issues.len(), 3);
        assert!(
            issues
                .iter()
                .all(|i| i.code == ErrorCode::RequiredFieldMissing)
        );
        assert_eq!(issues[2].location.field, Some(10));
    }

    #[test]
    fn bad_delimiters_in_body() {
        let m = Message::parse(
            b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID^1^x\rpv1|x\r\x00\x01\x02\r",
        )
        .unwrap();
        let issues = m.validate();
        assert_eq!(issues.len(), 3);
        assert_eq!(issues[0].location.sequence, 2);
        assert!(issues[0].message.contains("field separator"));
        assert_eq!(issues[1].location.segment, "pv1");
        assert_eq!(issues[2].location.segment, "???");
    }
}
