//! HL7 escape sequences: `\F\ \S\ \T\ \R\ \E\ \P\ \Xhh..\ \.br\`, and the
//! formatting commands of FT values.
//!
//! Owns turning escaped bytes into plain bytes and back. Works on bytes in
//! the message's own character set, never on decoded text, so a multi-byte
//! character next to an escape is never split. Formatting becomes plain
//! text: highlighting (`\H\`, `\N\`) and indents or fill modes (`\.in\`,
//! `\.ti\`, `\.fi\`, `\.nf\`) are dropped, `\.spN\` is N line breaks, `\.ce\`
//! one, `\.skN\` N spaces. Escapes we do not interpret (`\Cxxyy\`,
//! `\Mxxyyzz\`, `\Zxxx\` ...) are kept exactly as written, escape characters
//! included. Escaping is done once, from plain text: a value is never
//! escaped twice.

use std::borrow::Cow;

use crate::delimiters::Delimiters;

/// Replaces escape sequences with the bytes they stand for.
///
/// Borrows when the value holds no escape character (the common case).
pub fn unescape<'b>(bytes: &'b [u8], d: &Delimiters) -> Cow<'b, [u8]> {
    let Some(esc) = d.escape else {
        return Cow::Borrowed(bytes);
    };
    let Some(first) = memchr::memchr(esc, bytes) else {
        return Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b != esc {
            out.push(b);
            i += 1;
            continue;
        }
        // Find the closing escape character.
        let Some(len) = memchr::memchr(esc, &bytes[i + 1..]) else {
            // No closing character: keep the rest as written.
            out.extend_from_slice(&bytes[i..]);
            break;
        };
        let body = &bytes[i + 1..i + 1 + len];
        let whole = &bytes[i..i + len + 2];
        if !expand(body, d, &mut out) {
            out.extend_from_slice(whole);
        }
        i += len + 2;
    }
    Cow::Owned(out)
}

/// Writes what an escape body stands for; false when we keep it as written.
fn expand(body: &[u8], d: &Delimiters, out: &mut Vec<u8>) -> bool {
    match body {
        b"F" => out.push(d.field),
        b"S" => out.push(d.component),
        b"T" => match d.subcomponent {
            Some(s) => out.push(s),
            None => return false,
        },
        b"R" => match d.repetition {
            Some(r) => out.push(r),
            None => return false,
        },
        b"E" => match d.escape {
            Some(e) => out.push(e),
            None => return false,
        },
        b"P" => match d.truncation {
            Some(t) => out.push(t),
            None => return false,
        },
        b".br" | b".ce" => out.push(b'\n'),
        b"H" | b"N" | b".fi" | b".nf" => {}
        [b'.', b'i', b'n', rest @ ..] | [b'.', b't', b'i', rest @ ..] if is_count(rest) => {}
        [b'.', b's', b'p', rest @ ..] if is_count(rest) => {
            out.extend(std::iter::repeat_n(b'\n', count(rest)));
        }
        [b'.', b's', b'k', rest @ ..] if is_count(rest) => {
            out.extend(std::iter::repeat_n(b' ', count(rest)));
        }
        [b'X', hex @ ..] if !hex.is_empty() && hex.len() % 2 == 0 => {
            let start = out.len();
            for pair in hex.chunks_exact(2) {
                match (hex_val(pair[0]), hex_val(pair[1])) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => {
                        out.truncate(start);
                        return false;
                    }
                }
            }
        }
        _ => return false,
    }
    true
}

/// The argument of a formatting command: empty, or an optionally signed
/// number (`\.sp2\`, `\.in+4\`, `\.ti-2\`).
fn is_count(arg: &[u8]) -> bool {
    let digits = arg
        .strip_prefix(b"+")
        .or_else(|| arg.strip_prefix(b"-"))
        .unwrap_or(arg);
    digits.len() <= 3 && digits.iter().all(u8::is_ascii_digit)
}

/// How many lines or spaces a `\.sp\`/`\.sk\` stands for: 1 when not given,
/// at most 20 (a hostile `\.sp999\` repeated must not blow a value up).
fn count(arg: &[u8]) -> usize {
    let digits = arg.strip_prefix(b"+").unwrap_or(arg);
    std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse::<usize>().ok())
        .unwrap_or(1)
        .min(20)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Why a value could not be escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscapeError {
    /// The value holds a delimiter but the message declares no escape character.
    NoEscapeCharacter,
}

/// Escapes plain bytes (already in the message's character set) so that
/// they read back as themselves: every delimiter becomes its escape, CR
/// becomes `\X0D\` and LF becomes `\.br\`.
pub fn escape<'b>(bytes: &'b [u8], d: &Delimiters) -> Result<Cow<'b, [u8]>, EscapeError> {
    let needs = |b: u8| d.is_special(b) || b == b'\r' || b == b'\n';
    let Some(first) = bytes.iter().position(|&b| needs(b)) else {
        return Ok(Cow::Borrowed(bytes));
    };
    let Some(esc) = d.escape else {
        return Err(EscapeError::NoEscapeCharacter);
    };
    let mut out = Vec::with_capacity(bytes.len() + 8);
    out.extend_from_slice(&bytes[..first]);
    for &b in &bytes[first..] {
        let code: &[u8] = if b == d.field {
            b"F"
        } else if b == d.component {
            b"S"
        } else if Some(b) == d.subcomponent {
            b"T"
        } else if Some(b) == d.repetition {
            b"R"
        } else if b == esc {
            b"E"
        } else if Some(b) == d.truncation {
            b"P"
        } else if b == b'\r' {
            b"X0D"
        } else if b == b'\n' {
            b".br"
        } else {
            out.push(b);
            continue;
        };
        out.push(esc);
        out.extend_from_slice(code);
        out.push(esc);
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(s: &[u8]) -> Vec<u8> {
        unescape(s, &Delimiters::default()).into_owned()
    }

    #[test]
    fn standard_escapes() {
        assert_eq!(un(b"a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"), b"a|b^c&d~e\\f");
        assert_eq!(un(b"line1\\.br\\line2"), b"line1\nline2");
        assert_eq!(un(b"\\X0D0A\\"), b"\r\n");
        assert_eq!(un(b"plain"), b"plain");
    }

    #[test]
    fn formatting_becomes_plain_text() {
        assert_eq!(un(b"\\H\\IMPRESSION:\\N\\ normal"), b"IMPRESSION: normal");
        assert_eq!(un(b"a\\.sp2\\b\\.sp\\c"), b"a\n\nb\nc");
        assert_eq!(
            un(b"\\.in+4\\\\.ti-2\\x\\.sk3\\y\\.ce\\z\\.fi\\\\.nf\\"),
            b"x   y\nz"
        );
        assert_eq!(un(b"\\.spx\\"), b"\\.spx\\", "not a count: kept");
        assert_eq!(un(b"\\.sp999\\").len(), 20, "bounded");
    }

    #[test]
    fn unknown_and_broken_escapes_are_kept() {
        assert_eq!(un(b"\\Cxxyy\\"), b"\\Cxxyy\\");
        assert_eq!(un(b"\\Zcustom\\"), b"\\Zcustom\\");
        assert_eq!(un(b"\\XZZ\\"), b"\\XZZ\\");
        assert_eq!(un(b"\\X0\\"), b"\\X0\\");
        assert_eq!(un(b"open\\F"), b"open\\F");
        assert_eq!(un(b"\\P\\"), b"\\P\\");
        let v27 = Delimiters::with_truncation();
        assert_eq!(unescape(b"\\P\\", &v27).as_ref(), b"#");
    }

    #[test]
    fn non_ascii_next_to_escapes() {
        let s = "Müller\\F\\Zoë\\S\\日本".as_bytes();
        let out = un(s);
        assert_eq!(String::from_utf8(out).unwrap(), "Müller|Zoë^日本");
        // A lone escape character after multi-byte text must not panic.
        let s = "é\\".as_bytes();
        assert_eq!(un(s), s);
    }

    #[test]
    fn escape_round_trips() {
        let d = Delimiters::with_truncation();
        let plain = b"a|b^c&d~e\\f#g\r\nh";
        let esc = escape(plain, &d).unwrap();
        assert_eq!(
            esc.as_ref(),
            b"a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\P\\g\\X0D\\\\.br\\h"
        );
        assert_eq!(unescape(&esc, &d).as_ref(), plain);
        assert!(matches!(escape(b"plain", &d).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn escape_without_escape_character_fails_only_when_needed() {
        let (d, _) = Delimiters::from_header(b"MSH|^~|").unwrap();
        assert!(escape(b"ok", &d).is_ok());
        assert_eq!(escape(b"a^b", &d), Err(EscapeError::NoEscapeCharacter));
    }
}
