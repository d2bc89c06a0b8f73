//! Errors of this crate: what went wrong and where (segment, line, byte).
//!
//! Owns the error types only. Validation findings that still let a message be
//! read are [`crate::validate::Issue`]s, not errors.

use thiserror::Error;

/// A message could not be read at all: its header is missing or broken.
///
/// Every variant says what was expected; the caller adds which file or
/// connection it came from.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Nothing but white space (or nothing at all).
    #[error("empty input: no HL7 message")]
    Empty,
    /// The first segment is not `MSH`.
    #[error("not an HL7 v2 message: expected 'MSH' at byte {offset}, found {found:?}")]
    NoMsh {
        /// Byte offset where `MSH` was expected (after a BOM or blank lines).
        offset: usize,
        /// What was there instead (at most 16 characters, lossily decoded).
        found: String,
    },
    /// The input is a batch or file (FHS/BHS); split it first.
    #[error("input starts with {0}: this is a batch; split it with hl7v2::batch::split")]
    IsBatch(String),
    /// MSH ends before its delimiters are complete.
    #[error("MSH segment is truncated: {reason}")]
    TruncatedHeader {
        /// What was missing.
        reason: &'static str,
    },
    /// MSH-1 is not a usable separator.
    #[error("invalid field separator {found:?} in MSH-1: it must be printable punctuation")]
    BadFieldSeparator {
        /// The byte found, shown printable.
        found: String,
    },
    /// MSH-2 is not a usable set of encoding characters.
    #[error("invalid encoding characters {found:?} in MSH-2: {reason}")]
    BadEncodingCharacters {
        /// MSH-2 as found.
        found: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Offsets are kept as 32-bit numbers.
    #[error("message is too large ({0} bytes); at most 4 GiB is supported")]
    TooLarge(usize),
}

/// A path (`PID-5[2].1`) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid HL7 path {path:?} at column {column}: {reason} (expected e.g. PID-5.1, PID-3[2].1, OBX[*]-5)"
)]
pub struct PathError {
    /// The path as written.
    pub path: String,
    /// 1-based column of the problem within the path.
    pub column: usize,
    /// What was expected there.
    pub reason: &'static str,
}

/// A value could not be written into a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EditError {
    /// MSH-1 and MSH-2 define the delimiters and cannot be set as values.
    #[error("{0} defines the message's delimiters and cannot be set")]
    Delimiters(String),
    /// The path selects many places (`[*]`); setting needs exactly one.
    #[error("path {0} selects every repetition or segment ([*]); give an index to set one")]
    Ambiguous(String),
    /// The segment is not in the message and is not the next one to append.
    #[error(
        "segment {path}: the message has {have} {segment} segment(s); only the next one ({next}) can be added"
    )]
    NoSuchSegment {
        /// The path asked for.
        path: String,
        /// The segment id.
        segment: String,
        /// How many the message has.
        have: usize,
        /// The index that may be appended.
        next: usize,
    },
    /// The value needs a delimiter the message does not declare.
    #[error("{path}: the message declares no {role} character in MSH-2")]
    MissingDelimiter {
        /// The path asked for.
        path: String,
        /// Which delimiter role is missing.
        role: &'static str,
    },
    /// The value has characters the message's character set (MSH-18) cannot hold.
    #[error("{path}: the value has characters that {charset} cannot represent")]
    Unrepresentable {
        /// The path asked for.
        path: String,
        /// The message's character set.
        charset: &'static str,
    },
    /// A segment id must be three capital letters or digits.
    #[error("invalid segment id {0:?}: expected three capital letters or digits, e.g. PID or ZPI")]
    BadSegmentId(String),
    /// The message would grow past the 4 GiB offset limit.
    #[error("message would be larger than 4 GiB")]
    TooLarge,
}
