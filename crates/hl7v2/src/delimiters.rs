//! The delimiters a message declares in MSH-1 and MSH-2 (or FHS/BHS-1 and -2).
//!
//! Owns reading and checking the field separator and encoding characters.
//! It does not own splitting or escaping (see [`crate::escape`]): it only says
//! which byte plays which role. Nothing is assumed: a message that declares
//! `#` as its component separator is read with `#`.

use crate::error::ParseError;

/// The separators and escape character of one message.
///
/// Only the field separator and the component separator are required. HL7
/// allows a sender to declare fewer encoding characters (`^~\` has no
/// subcomponent separator); the missing roles are `None` and a value that
/// asks for them is an error when written, never silently mangled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Delimiters {
    /// MSH-1, usually `|`.
    pub field: u8,
    /// First character of MSH-2, usually `^`.
    pub component: u8,
    /// Second character of MSH-2, usually `~`.
    pub repetition: Option<u8>,
    /// Third character of MSH-2, usually `\`.
    pub escape: Option<u8>,
    /// Fourth character of MSH-2, usually `&`.
    pub subcomponent: Option<u8>,
    /// Fifth character of MSH-2 (v2.7 and later), usually `#`.
    pub truncation: Option<u8>,
}

/// The length of an escape sequence's body (what comes before its closing
/// escape character) when it writes only blanks: a formatting command
/// (`.br`, `.sp 2`, `.in`, `.ti`, `.sk`, `.ce`, `.fi`, `.nf`), highlighting
/// on or off (`H`, `N`), or hexadecimal bytes that are all blanks or
/// control characters (`X0D0A`). `None` for anything else.
fn blank_escape(rest: &[u8], escape: u8) -> Option<usize> {
    let len = rest.iter().position(|&c| c == escape)?;
    let body = &rest[..len];
    let blank = match body {
        [b'H'] | [b'N'] => true,
        [b'.', cmd @ ..] => {
            let name = cmd.split(|&c| c == b' ').next().unwrap_or_default();
            matches!(
                name,
                b"br" | b"sp" | b"in" | b"ti" | b"sk" | b"ce" | b"fi" | b"nf"
            )
        }
        [b'X', hex @ ..] => {
            !hex.is_empty()
                && hex.len() % 2 == 0
                && hex.chunks(2).all(|pair| {
                    std::str::from_utf8(pair)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .is_some_and(|v| v <= b' ')
                })
        }
        _ => false,
    };
    blank.then_some(len)
}

impl Default for Delimiters {
    /// The delimiters of nearly every message: `|^~\&`.
    fn default() -> Self {
        Delimiters {
            field: b'|',
            component: b'^',
            repetition: Some(b'~'),
            escape: Some(b'\\'),
            subcomponent: Some(b'&'),
            truncation: None,
        }
    }
}

impl Delimiters {
    /// True when `bytes` hold separators only (`^`, `^^`, `&&^^^`, `~`), or
    /// blanks or control bytes among them (` `, `^ ^`, a stray NUL): a value
    /// a sender wrote with its structure or padding but nothing in it, which
    /// is no value (as a field of only separators is empty and `""` is null).
    /// An escape sequence that writes nothing but blanks is blank too
    /// (`\.br\`, `\X0D0A\`, `\H\`): a field of only such is no value.
    pub fn only_separators(&self, bytes: &[u8]) -> bool {
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            if Some(b) == self.escape {
                match blank_escape(&bytes[i + 1..], b) {
                    Some(len) => i += len + 2,
                    None => return false,
                }
                continue;
            }
            if !(b == self.component
                || Some(b) == self.repetition
                || Some(b) == self.subcomponent
                || b == b' '
                || b < 0x20)
            {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The v2.7+ delimiters with a truncation character: `|^~\&#`.
    pub fn with_truncation() -> Self {
        Delimiters {
            truncation: Some(b'#'),
            ..Self::default()
        }
    }

    /// Reads the delimiters from a header segment (`MSH`, `FHS` or `BHS`)
    /// that starts at `bytes[0]`. Returns the delimiters and the length of
    /// the encoding characters.
    pub fn from_header(bytes: &[u8]) -> Result<(Delimiters, usize), ParseError> {
        if bytes.len() < 4 {
            return Err(ParseError::TruncatedHeader {
                reason: "the header ends before MSH-1 (the field separator)",
            });
        }
        let field = bytes[3];
        if !is_delimiter_byte(field) {
            return Err(ParseError::BadFieldSeparator {
                found: printable(field),
            });
        }
        let rest = &bytes[4..];
        let end = rest
            .iter()
            .position(|&b| b == field || b == b'\r' || b == b'\n')
            .unwrap_or(rest.len());
        let enc = &rest[..end];
        if rest.get(end) != Some(&field) {
            return Err(ParseError::TruncatedHeader {
                reason: "the header ends after MSH-2; MSH-3 to MSH-12 must follow",
            });
        }
        if enc.is_empty() {
            return Err(ParseError::BadEncodingCharacters {
                found: String::new(),
                reason: "MSH-2 is empty; it must hold at least the component separator",
            });
        }
        if enc.len() > 5 {
            return Err(ParseError::BadEncodingCharacters {
                found: String::from_utf8_lossy(enc).into_owned(),
                reason: "MSH-2 holds more than the 5 encoding characters HL7 defines",
            });
        }
        for (i, &b) in enc.iter().enumerate() {
            if !is_delimiter_byte(b) {
                return Err(ParseError::BadEncodingCharacters {
                    found: String::from_utf8_lossy(enc).into_owned(),
                    reason: "an encoding character is a letter, digit, space or control byte",
                });
            }
            if b == field || enc[..i].contains(&b) {
                return Err(ParseError::BadEncodingCharacters {
                    found: String::from_utf8_lossy(enc).into_owned(),
                    reason: "the encoding characters and field separator must all differ",
                });
            }
        }
        let d = Delimiters {
            field,
            component: enc[0],
            repetition: enc.get(1).copied(),
            escape: enc.get(2).copied(),
            subcomponent: enc.get(3).copied(),
            truncation: enc.get(4).copied(),
        };
        Ok((d, enc.len()))
    }

    /// The encoding characters as written in MSH-2, in HL7 order.
    pub fn encoding_characters(&self) -> Vec<u8> {
        let mut v = vec![self.component];
        for b in [
            self.repetition,
            self.escape,
            self.subcomponent,
            self.truncation,
        ] {
            match b {
                Some(b) => v.push(b),
                None => break,
            }
        }
        v
    }

    /// True when `b` plays any delimiter role (field, component, repetition,
    /// escape, subcomponent, truncation).
    #[inline]
    pub fn is_special(&self, b: u8) -> bool {
        b == self.field
            || b == self.component
            || Some(b) == self.repetition
            || Some(b) == self.escape
            || Some(b) == self.subcomponent
            || Some(b) == self.truncation
    }
}

/// A byte may serve as a delimiter when it is printable ASCII punctuation.
fn is_delimiter_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        format!("0x{b:02X}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn blanks_and_control_bytes_among_separators_are_no_value() {
        let d = Delimiters::default();
        for empty in [&b"^"[..], b"&&^^^", b"~", b" ", b"^ ^", b"\0", b" \t "] {
            assert!(d.only_separators(empty), "{empty:?}");
        }
        // Escapes that write only blanks: a line break, highlighting, a CR LF.
        for empty in [&b"\\.br\\"[..], b"\\H\\ \\N\\", b"\\X0D0A\\^\\.sp 2\\"] {
            assert!(d.only_separators(empty), "{empty:?}");
        }
        for value in [
            &b"a"[..],
            b" a ",
            b"^x",
            b"0",
            b"\\F\\",
            b"\\X41\\",
            b"\\.br",
            b"a\\.br\\",
        ] {
            assert!(!d.only_separators(value), "{value:?}");
        }
    }

    use super::*;

    #[test]
    fn reads_standard_and_v27() {
        let (d, n) = Delimiters::from_header(b"MSH|^~\\&|A").unwrap();
        assert_eq!(d, Delimiters::default());
        assert_eq!(n, 4);
        let (d, n) = Delimiters::from_header(b"MSH|^~\\&#|A").unwrap();
        assert_eq!(d, Delimiters::with_truncation());
        assert_eq!(n, 5);
    }

    #[test]
    fn reads_unusual_delimiters() {
        let (d, _) = Delimiters::from_header(b"MSH!@*$%!x").unwrap();
        assert_eq!(d.field, b'!');
        assert_eq!(d.component, b'@');
        assert_eq!(d.repetition, Some(b'*'));
        assert_eq!(d.escape, Some(b'$'));
        assert_eq!(d.subcomponent, Some(b'%'));
        assert_eq!(d.encoding_characters(), b"@*$%");
    }

    #[test]
    fn rejects_bad_delimiters() {
        assert!(Delimiters::from_header(b"MSH").is_err());
        assert!(Delimiters::from_header(b"MSHA^~\\&").is_err());
        assert!(Delimiters::from_header(b"MSH||").is_err());
        assert!(Delimiters::from_header(b"MSH|^^\\&|").is_err());
        assert!(Delimiters::from_header(b"MSH|^~\\&#X|").is_err());
        assert!(Delimiters::from_header(b"MSH|^a\\&|").is_err());
        assert!(Delimiters::from_header(b"MSH|^|~|").is_ok());
    }

    #[test]
    fn short_encoding_characters_leave_roles_empty() {
        let (d, _) = Delimiters::from_header(b"MSH|^~|").unwrap();
        assert_eq!(d.escape, None);
        assert_eq!(d.subcomponent, None);
    }
}
