//! Acknowledgments: choosing the mode and code, building ACK messages with
//! MSA and ERR, and reading the ACKs a peer sends back.
//!
//! Owns the HL7 rules: original mode (AA/AE/AR) unless MSH-15 or MSH-16 is
//! valued, in which case enhanced mode sends the accept-level ACK
//! (CA/CE/CR) only when MSH-15 asks for it (`AL`, `SU` on success, `ER` on
//! error, `NE` never). The ACK's MSH swaps sending and receiving
//! application/facility, echoes MSH-11, MSH-12 (and MSH-18), and uses the
//! original's delimiters so copied fields stay byte-exact. MSA-2 echoes
//! MSH-10. AE/AR carry ERR with an HL7 table 0357 code and a location; the
//! ERR layout follows the message version (ELD in ERR-1 before v2.5, ERL in
//! ERR-2 with ERR-3/ERR-4 from v2.5). The clock and the ACK's own control id
//! come from the caller: this crate does no I/O.

use std::borrow::Cow;
use std::fmt;

use crate::delimiters::Delimiters;
use crate::escape::escape;
use crate::message::{Message, body_start};
use crate::path::Path;
use crate::validate::{ErrorCode, Issue, Location};

/// MSA-1 acknowledgment codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AckCode {
    /// Application accept (original mode).
    AA,
    /// Application error.
    AE,
    /// Application reject.
    AR,
    /// Commit accept (enhanced mode).
    CA,
    /// Commit error.
    CE,
    /// Commit reject.
    CR,
}

impl AckCode {
    /// The code as written in MSA-1.
    pub fn as_str(self) -> &'static str {
        match self {
            AckCode::AA => "AA",
            AckCode::AE => "AE",
            AckCode::AR => "AR",
            AckCode::CA => "CA",
            AckCode::CE => "CE",
            AckCode::CR => "CR",
        }
    }

    /// Reads MSA-1.
    pub fn parse(s: &str) -> Option<AckCode> {
        Some(match s.trim() {
            "AA" => AckCode::AA,
            "AE" => AckCode::AE,
            "AR" => AckCode::AR,
            "CA" => AckCode::CA,
            "CE" => AckCode::CE,
            "CR" => AckCode::CR,
            _ => return None,
        })
    }

    /// AA or CA.
    pub fn is_accept(self) -> bool {
        matches!(self, AckCode::AA | AckCode::CA)
    }

    /// AE or CE.
    pub fn is_error(self) -> bool {
        matches!(self, AckCode::AE | AckCode::CE)
    }

    /// AR or CR.
    pub fn is_reject(self) -> bool {
        matches!(self, AckCode::AR | AckCode::CR)
    }
}

impl fmt::Display for AckCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message is not simply accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckError {
    /// HL7 table 0357 code.
    pub code: ErrorCode,
    /// Where, when known.
    pub location: Option<Location>,
    /// For people; goes in ERR-8 (MSA-3 before v2.5). No PHI.
    pub message: String,
}

impl From<Issue> for AckError {
    fn from(i: Issue) -> AckError {
        AckError {
            code: i.code,
            location: Some(i.location),
            message: i.message,
        }
    }
}

/// What the receiver decided about a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Stored and accepted.
    Accept,
    /// Readable but invalid, or could not be stored (AE/CE).
    Error(AckError),
    /// Refused: not HL7, unsupported version or processing id, or a rule (AR/CR).
    Reject(AckError),
}

/// When an enhanced-mode acknowledgment is wanted (HL7 table 0155).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckCondition {
    /// `AL`
    Always,
    /// `NE`
    Never,
    /// `SU`
    SuccessOnly,
    /// `ER`
    ErrorOnly,
}

impl AckCondition {
    /// Reads MSH-15/MSH-16; empty or unknown values mean `AL`.
    pub fn from_field(s: &str) -> AckCondition {
        match s.trim() {
            "NE" => AckCondition::Never,
            "SU" => AckCondition::SuccessOnly,
            "ER" => AckCondition::ErrorOnly,
            _ => AckCondition::Always,
        }
    }

    /// Whether an ACK is sent for this outcome.
    pub fn wants(self, success: bool) -> bool {
        match self {
            AckCondition::Always => true,
            AckCondition::Never => false,
            AckCondition::SuccessOnly => success,
            AckCondition::ErrorOnly => !success,
        }
    }
}

/// Original or enhanced acknowledgment mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckMode {
    /// MSH-15 and MSH-16 empty: AA/AE/AR, always sent.
    Original,
    /// MSH-15 or MSH-16 valued.
    Enhanced {
        /// MSH-15: the accept (commit) acknowledgment.
        accept: AckCondition,
        /// MSH-16: the application acknowledgment. A gateway is not the
        /// application; it is recorded, not acted on.
        application: AckCondition,
    },
}

impl AckMode {
    /// The mode a message asks for.
    pub fn of(msg: &Message<'_>) -> AckMode {
        let accept = msg.accept_ack_type();
        let app = msg.application_ack_type();
        if accept.trim().is_empty() && app.trim().is_empty() {
            AckMode::Original
        } else {
            AckMode::Enhanced {
                accept: AckCondition::from_field(&accept),
                application: AckCondition::from_field(&app),
            }
        }
    }

    /// The code to send for a disposition, or `None` when this mode sends
    /// nothing for it.
    pub fn code_for(self, d: &Disposition) -> Option<AckCode> {
        match self {
            AckMode::Original => Some(match d {
                Disposition::Accept => AckCode::AA,
                Disposition::Error(_) => AckCode::AE,
                Disposition::Reject(_) => AckCode::AR,
            }),
            AckMode::Enhanced { accept, .. } => {
                let success = matches!(d, Disposition::Accept);
                if !accept.wants(success) {
                    return None;
                }
                Some(match d {
                    Disposition::Accept => AckCode::CA,
                    Disposition::Error(_) => AckCode::CE,
                    Disposition::Reject(_) => AckCode::CR,
                })
            }
        }
    }
}

/// The values of the ACK's own header that the receiver supplies.
#[derive(Clone, Copy, Debug)]
pub struct AckHeader<'a> {
    /// MSH-10 of the ACK itself.
    pub control_id: &'a str,
    /// MSH-7 of the ACK, e.g. `20240501120000+0000`.
    pub timestamp: &'a str,
}

/// Builds the acknowledgment for a parsed message, or `None` when its
/// acknowledgment mode asks for none in this case.
pub fn build_ack(
    original: &Message<'_>,
    disposition: &Disposition,
    header: &AckHeader<'_>,
) -> Option<Vec<u8>> {
    let code = AckMode::of(original).code_for(disposition)?;
    Some(build_ack_with_code(original, code, disposition, header))
}

/// Builds an acknowledgment with a given code (ignoring the mode).
pub fn build_ack_with_code(
    original: &Message<'_>,
    code: AckCode,
    disposition: &Disposition,
    header: &AckHeader<'_>,
) -> Vec<u8> {
    let d = *original.delimiters();
    let msh = original.header();
    let raw = |n: u16| msh.field(n).map(|v| v.raw()).unwrap_or(b"");
    let trigger = msh
        .field(9)
        .and_then(|f| f.component(2))
        .map(|v| v.raw())
        .unwrap_or(b"");
    let version = original.version();
    let mut out = Vec::with_capacity(256);
    write_msh(
        &mut out,
        &d,
        [raw(5), raw(6), raw(3), raw(4)],
        header,
        trigger,
        raw(11),
        raw(12),
        raw(18),
    );
    write_msa_err(&mut out, &d, code, raw(10), disposition, &version);
    out
}

#[allow(clippy::too_many_arguments)]
fn write_msh(
    out: &mut Vec<u8>,
    d: &Delimiters,
    apps: [&[u8]; 4],
    header: &AckHeader<'_>,
    trigger: &[u8],
    processing: &[u8],
    version: &[u8],
    charset: &[u8],
) {
    let f = d.field;
    out.extend_from_slice(b"MSH");
    out.push(f);
    out.extend_from_slice(&d.encoding_characters());
    for a in apps {
        out.push(f);
        out.extend_from_slice(a);
    }
    out.push(f);
    out.extend_from_slice(&esc(header.timestamp, d));
    out.push(f);
    out.push(f);
    out.extend_from_slice(b"ACK");
    if !trigger.is_empty() {
        out.push(d.component);
        out.extend_from_slice(trigger);
        out.push(d.component);
        out.extend_from_slice(b"ACK");
    }
    out.push(f);
    out.extend_from_slice(&esc(header.control_id, d));
    out.push(f);
    out.extend_from_slice(processing);
    out.push(f);
    out.extend_from_slice(version);
    if !charset.is_empty() {
        out.extend(std::iter::repeat_n(f, 6));
        out.extend_from_slice(charset);
    }
    out.push(b'\r');
}

fn write_msa_err(
    out: &mut Vec<u8>,
    d: &Delimiters,
    code: AckCode,
    control_id: &[u8],
    disposition: &Disposition,
    version: &str,
) {
    let f = d.field;
    let modern = version_at_least(version, 2, 5);
    out.extend_from_slice(b"MSA");
    out.push(f);
    out.extend_from_slice(code.as_str().as_bytes());
    out.push(f);
    out.extend_from_slice(control_id);
    let err = match disposition {
        Disposition::Accept => None,
        Disposition::Error(e) | Disposition::Reject(e) => Some(e),
    };
    if let (Some(e), false) = (err, modern) {
        out.push(f);
        out.extend_from_slice(&esc(&e.message, d));
    }
    out.push(b'\r');
    let Some(e) = err else { return };
    let c = d.component;
    out.extend_from_slice(b"ERR");
    out.push(f);
    let loc = e.location.clone().unwrap_or_default();
    if modern {
        // ERR-1 (ELD) is for versions before 2.5; ERR-2 is the ERL.
        out.push(f);
        if !loc.segment.is_empty() {
            let mut parts: Vec<String> = vec![loc.segment.clone(), loc.sequence.to_string()];
            for p in [loc.field, loc.repetition, loc.component, loc.subcomponent] {
                parts.push(p.map(|n| n.to_string()).unwrap_or_default());
            }
            while parts.last().is_some_and(|p| p.is_empty()) {
                parts.pop();
            }
            let joined: Vec<Vec<u8>> = parts.iter().map(|p| esc(p, d).into_owned()).collect();
            out.extend_from_slice(&joined.join(&c));
        }
        out.push(f);
        out.extend_from_slice(e.code.code().to_string().as_bytes());
        out.push(c);
        out.extend_from_slice(e.code.text().as_bytes());
        out.push(c);
        out.extend_from_slice(b"HL70357");
        out.push(f);
        out.push(b'E');
        out.extend(std::iter::repeat_n(f, 4));
        out.extend_from_slice(&esc(&e.message, d));
    } else {
        out.extend_from_slice(&esc(&loc.segment, d));
        out.push(c);
        if loc.sequence > 0 {
            out.extend_from_slice(loc.sequence.to_string().as_bytes());
        }
        out.push(c);
        if let Some(field) = loc.field {
            out.extend_from_slice(field.to_string().as_bytes());
        }
        out.push(c);
        out.extend_from_slice(e.code.code().to_string().as_bytes());
        if let Some(s) = d.subcomponent {
            out.push(s);
            out.extend_from_slice(e.code.text().as_bytes());
            out.push(s);
            out.extend_from_slice(b"HL70357");
        }
    }
    out.push(b'\r');
}

fn esc<'s>(s: &'s str, d: &Delimiters) -> Cow<'s, [u8]> {
    match escape(s.as_bytes(), d) {
        Ok(b) => b,
        // No escape character declared: drop what cannot be written.
        Err(_) => Cow::Owned(
            s.bytes()
                .filter(|&b| !d.is_special(b) && b != b'\r' && b != b'\n')
                .collect(),
        ),
    }
}

/// True when a version id like `2.5.1` is at least major.minor. Unreadable
/// or empty versions count as current.
pub fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut it = version.trim().split('.');
    let ma = it.next().and_then(|s| s.parse::<u32>().ok());
    let mi = it.next().and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    match ma {
        Some(ma) => (ma, mi) >= (major, minor),
        None => true,
    }
}

/// What could be read from the first line of something that did not parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveredHeader {
    /// MSH-3..MSH-6 as text.
    pub apps: [String; 4],
    /// MSH-9.2, the trigger event.
    pub trigger: String,
    /// MSH-10, when it could be read.
    pub control_id: Option<String>,
    /// MSH-11.
    pub processing_id: String,
    /// MSH-12.
    pub version: String,
}

/// Reads what it can of an MSH line whose delimiters are broken: splits the
/// first line on the byte after `MSH` and takes the fields by position.
pub fn recover_header(raw: &[u8]) -> Option<RecoveredHeader> {
    let start = body_start(raw);
    let head = raw.get(start..)?;
    if !head.starts_with(b"MSH") || head.len() < 5 {
        return None;
    }
    let sep = head[3];
    if sep.is_ascii_alphanumeric() || sep.is_ascii_control() || sep == b' ' {
        return None;
    }
    let line_end = memchr::memchr2(b'\r', b'\n', head).unwrap_or(head.len());
    let parts: Vec<&[u8]> = head[..line_end].split(|&b| b == sep).collect();
    let clean = |i: usize| -> String {
        let b = parts.get(i).copied().unwrap_or(b"");
        let t: String = String::from_utf8_lossy(b)
            .chars()
            .filter(|c| !c.is_control())
            .take(199)
            .collect();
        t.trim().to_string()
    };
    // MSH-n is part n-1.
    let first_comp = |s: String| -> String {
        match s.find(|c: char| c.is_ascii_punctuation() && c != '.' && c != '-' && c != '_') {
            Some(i) if s.len() > 3 => s[..i].to_string(),
            _ => s,
        }
    };
    let control = clean(9);
    Some(RecoveredHeader {
        apps: [clean(2), clean(3), clean(4), clean(5)],
        trigger: clean(8)
            .split(|c: char| !c.is_ascii_alphanumeric())
            .nth(1)
            .unwrap_or("")
            .to_string(),
        control_id: if control.is_empty() {
            None
        } else {
            Some(control)
        },
        processing_id: first_comp(clean(10)),
        version: first_comp(clean(11)),
    })
}

/// Builds an AR for bytes that could not be parsed. MSA-2 carries the
/// recovered MSH-10 when there is one (empty otherwise); the ACK uses the
/// standard delimiters, since the sender's could not be trusted.
pub fn build_ack_for_unparseable(raw: &[u8], error: &AckError, header: &AckHeader<'_>) -> Vec<u8> {
    build_nack_for_unparseable(raw, AckCode::AR, error, header)
}

/// As [`build_ack_for_unparseable`] with a chosen code (AE when the bytes
/// could not even be stored, so the sender should try again).
pub fn build_nack_for_unparseable(
    raw: &[u8],
    code: AckCode,
    error: &AckError,
    header: &AckHeader<'_>,
) -> Vec<u8> {
    let d = Delimiters::default();
    let rec = recover_header(raw).unwrap_or_default();
    let e = |s: &str| esc(s, &d).into_owned();
    let apps = [
        e(&rec.apps[2]),
        e(&rec.apps[3]),
        e(&rec.apps[0]),
        e(&rec.apps[1]),
    ];
    let trigger = e(&rec.trigger);
    let mut out = Vec::with_capacity(256);
    write_msh(
        &mut out,
        &d,
        [&apps[0], &apps[1], &apps[2], &apps[3]],
        header,
        &trigger,
        &e(&rec.processing_id),
        &e(&rec.version),
        b"",
    );
    let control = e(rec.control_id.as_deref().unwrap_or(""));
    write_msa_err(
        &mut out,
        &d,
        code,
        &control,
        &Disposition::Reject(error.clone()),
        &rec.version,
    );
    out
}

/// An acknowledgment read back from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAck {
    /// MSA-1.
    pub code: AckCode,
    /// MSA-2: the control id of the message acknowledged.
    pub control_id: String,
    /// Error text: ERR-8, else ERR-3.2, else MSA-3 (may be empty).
    pub text: String,
}

/// Why a peer's reply is not a usable acknowledgment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckReadError {
    /// The reply is not HL7.
    #[error("reply is not an HL7 message: {0}")]
    Parse(#[from] crate::error::ParseError),
    /// No MSA segment.
    #[error("reply has no MSA segment")]
    NoMsa,
    /// MSA-1 is not one of AA, AE, AR, CA, CE, CR.
    #[error("reply has an unknown acknowledgment code {0:?} in MSA-1")]
    BadCode(String),
}

/// Reads MSA and ERR from a reply.
pub fn read_ack(bytes: &[u8]) -> Result<ReceivedAck, AckReadError> {
    let msg = Message::parse(bytes)?;
    let p = |s: &str| s.parse::<Path>().ok();
    let get = |s: &str| -> String {
        p(s).and_then(|path| msg.text(&path).map(|t| t.into_owned()))
            .unwrap_or_default()
    };
    if msg.segment("MSA", 1).is_none() {
        return Err(AckReadError::NoMsa);
    }
    let code_text = get("MSA-1");
    let code = AckCode::parse(&code_text).ok_or(AckReadError::BadCode(code_text))?;
    let mut text = get("ERR-8");
    if text.is_empty() {
        text = p("ERR-3.2")
            .and_then(|path| msg.text(&path).map(|t| t.into_owned()))
            .unwrap_or_default();
    }
    if text.is_empty() {
        text = get("MSA-3");
    }
    Ok(ReceivedAck {
        code,
        control_id: get("MSA-2"),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: AckHeader<'static> = AckHeader {
        control_id: "ACK1",
        timestamp: "20240501120000+0000",
    };

    fn msg(extra: &str) -> Vec<u8> {
        format!(
            "MSH|^~\\&|SAPP|SFAC|RAPP|RFAC|20240101||ADT^A01^ADT_A01|CTRL9|T|2.5.1{extra}\rPID|1\r"
        )
        .into_bytes()
    }

    #[test]
    fn original_mode_aa() {
        let raw = msg("");
        let m = Message::parse(&raw).unwrap();
        let ack = build_ack(&m, &Disposition::Accept, &HDR).unwrap();
        assert_eq!(
            String::from_utf8(ack.clone()).unwrap(),
            "MSH|^~\\&|RAPP|RFAC|SAPP|SFAC|20240501120000+0000||ACK^A01^ACK|ACK1|T|2.5.1\rMSA|AA|CTRL9\r"
        );
        let r = read_ack(&ack).unwrap();
        assert_eq!(r.code, AckCode::AA);
        assert_eq!(r.control_id, "CTRL9");
    }

    #[test]
    fn error_ack_has_err_with_location_and_code() {
        let raw = msg("");
        let m = Message::parse(&raw).unwrap();
        let e = AckError {
            code: ErrorCode::RequiredFieldMissing,
            location: Some(Location {
                segment: "PID".into(),
                sequence: 2,
                field: Some(3),
                ..Location::default()
            }),
            message: "PID-3 is required | really".into(),
        };
        let ack = build_ack(&m, &Disposition::Error(e), &HDR).unwrap();
        let s = String::from_utf8(ack.clone()).unwrap();
        assert!(s.contains("MSA|AE|CTRL9\rERR||PID^2^3|101^Required field missing^HL70357|E||||PID-3 is required \\F\\ really\r"), "{s}");
        let r = read_ack(&ack).unwrap();
        assert_eq!(r.code, AckCode::AE);
        assert_eq!(r.text, "PID-3 is required | really");
    }

    #[test]
    fn old_versions_use_eld() {
        let raw = b"MSH|^~\\&|S|F|R|G|2024||ADT^A01|C1|P|2.3\r".to_vec();
        let m = Message::parse(&raw).unwrap();
        let e = AckError {
            code: ErrorCode::UnsupportedProcessingId,
            location: Some(Location {
                segment: "MSH".into(),
                sequence: 1,
                field: Some(11),
                ..Location::default()
            }),
            message: "no".into(),
        };
        let s = String::from_utf8(build_ack(&m, &Disposition::Reject(e), &HDR).unwrap()).unwrap();
        assert!(
            s.contains("MSA|AR|C1|no\rERR|MSH^1^11^202&Unsupported processing id&HL70357\r"),
            "{s}"
        );
    }

    #[test]
    fn enhanced_mode() {
        let raw = msg("|||AL|NE");
        let m = Message::parse(&raw).unwrap();
        assert!(matches!(AckMode::of(&m), AckMode::Enhanced { .. }));
        let ack = build_ack(&m, &Disposition::Accept, &HDR).unwrap();
        assert_eq!(read_ack(&ack).unwrap().code, AckCode::CA);
        let raw = msg("|||ER|AL");
        let m = Message::parse(&raw).unwrap();
        assert!(build_ack(&m, &Disposition::Accept, &HDR).is_none());
        let e = AckError {
            code: ErrorCode::InternalError,
            location: None,
            message: "x".into(),
        };
        let ack = build_ack(&m, &Disposition::Error(e), &HDR).unwrap();
        assert_eq!(read_ack(&ack).unwrap().code, AckCode::CE);
        let raw = msg("|||NE|AL");
        let m = Message::parse(&raw).unwrap();
        assert!(build_ack(&m, &Disposition::Accept, &HDR).is_none());
    }

    #[test]
    fn keeps_sender_delimiters_and_charset() {
        let raw = b"MSH#@~\\&#S@X#F#R#G#2024##ADT@A01#C1#P#2.7######UNICODE UTF-8\r".to_vec();
        let m = Message::parse(&raw).unwrap();
        let ack = build_ack(&m, &Disposition::Accept, &HDR).unwrap();
        let s = String::from_utf8(ack.clone()).unwrap();
        assert!(s.starts_with("MSH#@~\\&#R#G#S@X#F#"), "{s}");
        assert!(s.contains("#P#2.7######UNICODE UTF-8\r"), "{s}");
        let back = Message::parse(&ack).unwrap();
        assert_eq!(back.charset(), crate::Charset::Utf8);
    }

    #[test]
    fn unparseable_gets_ar_with_recovered_control_id() {
        let raw = b"MSH|^^^^|SAPP|SFAC|R|F|2024||ADT^A01|LOST42|P|2.4\rPID|1\r";
        assert!(Message::parse(raw).is_err());
        let e = AckError {
            code: ErrorCode::DataType,
            location: None,
            message: "bad MSH-2".into(),
        };
        let ack = build_ack_for_unparseable(raw, &e, &HDR);
        let r = read_ack(&ack).unwrap();
        assert_eq!(r.code, AckCode::AR);
        assert_eq!(r.control_id, "LOST42");
        let ack = build_ack_for_unparseable(b"\x00\x01garbage", &e, &HDR);
        let r = read_ack(&ack).unwrap();
        assert_eq!(r.code, AckCode::AR);
        assert_eq!(r.control_id, "");
    }

    #[test]
    fn versions() {
        assert!(version_at_least("2.5.1", 2, 5));
        assert!(!version_at_least("2.3", 2, 5));
        assert!(version_at_least("2.8", 2, 5));
        assert!(version_at_least("", 2, 5));
    }
}
