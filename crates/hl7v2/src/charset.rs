//! Character sets named in MSH-18 (HL7 table 0211) and decoding/encoding text.
//!
//! Owns the mapping from MSH-18 to an encoding and the byte ⇄ text
//! conversion. It does not own escapes: text is unescaped as bytes first (so
//! `\X..\` hex yields bytes in the message's own encoding) and decoded after,
//! which is what keeps multi-byte characters next to an escape intact.
//!
//! ISO 8859-1 is decoded byte for byte (U+0000..U+00FF) rather than through
//! `encoding_rs`, whose `iso-8859-1` label is windows-1252 (the WHATWG rule);
//! the other single- and multi-byte sets go through `encoding_rs`.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// The character set of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// MSH-18 empty or absent. HL7 says ASCII; real feeds send UTF-8 or
    /// Latin-1 anyway, so text that is valid UTF-8 is read as UTF-8 and
    /// anything else as ISO 8859-1. Nothing is lost either way.
    Default,
    /// `ASCII` / `ISO IR6`. Read as [`Charset::Default`] is, for the same reason.
    Ascii,
    /// `UNICODE UTF-8`.
    Utf8,
    /// `8859/1` / `ISO IR100`. A value whose bytes are valid UTF-8 (a
    /// sender that declares 8859/1 and sends UTF-8) is read as UTF-8.
    Latin1,
    /// Another set `encoding_rs` knows (8859/2..15, BIG-5, GB 18030, KS X 1001, ISO IR87...).
    /// A single-byte set's value whose bytes are valid UTF-8 is read as UTF-8, as for 8859/1.
    /// A single-byte set's value whose bytes are valid UTF-8 is read as UTF-8, as for 8859/1.
    Other(&'static Encoding),
    /// A value we do not know; text is read as [`Charset::Default`] and the
    /// name is reported by validation.
    Unknown,
}

impl Charset {
    /// The set for an MSH-18 value (first repetition, trimmed, any case).
    pub fn from_msh18(value: &[u8]) -> Charset {
        let v = trim(value);
        if v.is_empty() {
            return Charset::Default;
        }
        let upper: Vec<u8> = v.iter().map(|b| b.to_ascii_uppercase()).collect();
        let label: &[u8] = &upper;
        match label {
            b"ASCII" | b"ISO IR6" | b"ISO-IR6" => Charset::Ascii,
            b"UNICODE UTF-8" | b"UTF-8" | b"UTF8" | b"UNICODE" => Charset::Utf8,
            b"8859/1" | b"ISO IR100" | b"ISO-8859-1" | b"ISO8859-1" => Charset::Latin1,
            b"8859/2" | b"ISO IR101" => Charset::Other(encoding_rs::ISO_8859_2),
            b"8859/3" | b"ISO IR109" => Charset::Other(encoding_rs::ISO_8859_3),
            b"8859/4" | b"ISO IR110" => Charset::Other(encoding_rs::ISO_8859_4),
            b"8859/5" | b"ISO IR144" => Charset::Other(encoding_rs::ISO_8859_5),
            b"8859/6" | b"ISO IR127" => Charset::Other(encoding_rs::ISO_8859_6),
            b"8859/7" | b"ISO IR126" => Charset::Other(encoding_rs::ISO_8859_7),
            b"8859/8" | b"ISO IR138" => Charset::Other(encoding_rs::ISO_8859_8),
            b"8859/9" | b"ISO IR148" => Charset::Other(encoding_rs::WINDOWS_1254),
            b"8859/15" => Charset::Other(encoding_rs::ISO_8859_15),
            // Not in table 0211, but what Windows-based senders write (a
            // Polish CP1250 feed, a Cyrillic one): read as they say.
            b"CP1250" | b"WINDOWS-1250" | b"WIN1250" => Charset::Other(encoding_rs::WINDOWS_1250),
            b"CP1251" | b"WINDOWS-1251" | b"WIN1251" => Charset::Other(encoding_rs::WINDOWS_1251),
            b"CP1252" | b"WINDOWS-1252" | b"WIN1252" => Charset::Other(encoding_rs::WINDOWS_1252),
            b"BIG-5" | b"BIG5" | b"CNS 11643-1992" => Charset::Other(encoding_rs::BIG5),
            b"GB 18030-2000" | b"GB18030" => Charset::Other(encoding_rs::GB18030),
            b"KS X 1001" | b"ISO IR149" => Charset::Other(encoding_rs::EUC_KR),
            b"ISO IR87" | b"ISO IR13" => Charset::Other(encoding_rs::SHIFT_JIS),
            _ => Charset::Unknown,
        }
    }

    /// A name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Charset::Default => "the default character set",
            Charset::Ascii => "ASCII",
            Charset::Utf8 => "UTF-8",
            Charset::Latin1 => "ISO 8859-1",
            Charset::Other(e) => e.name(),
            Charset::Unknown => "an unknown character set",
        }
    }

    /// Decodes bytes (already unescaped) to text. Never fails: bytes that are
    /// not valid in the set become U+FFFD only for explicitly declared
    /// multi-byte sets; the default reading is lossless.
    pub fn decode<'b>(&self, bytes: Cow<'b, [u8]>) -> Cow<'b, str> {
        if bytes.is_ascii() {
            return match bytes {
                Cow::Borrowed(b) => Cow::Borrowed(ascii_str(b)),
                Cow::Owned(v) => Cow::Owned(ascii_string(v)),
            };
        }
        match self {
            // A single-byte set (8859/2..15) sent as UTF-8 reads as UTF-8, for
            // the reason a declared 8859/1 does; multi-byte sets (BIG-5, GB
            // 18030...) are taken at their word, their text can pass as UTF-8.
            Charset::Other(enc) if enc.is_single_byte() && std::str::from_utf8(&bytes).is_ok() => {
                match bytes {
                    Cow::Borrowed(b) => Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default()),
                    Cow::Owned(v) => Cow::Owned(String::from_utf8(v).unwrap_or_default()),
                }
            }
            // A single-byte set (8859/2..15) sent as UTF-8 reads as UTF-8, for
            // the reason a declared 8859/1 does; multi-byte sets (BIG-5, GB
            // 18030...) are taken at their word: their text can pass as UTF-8.
            Charset::Other(enc) if enc.is_single_byte() => match as_utf8(bytes) {
                Ok(text) => text,
                Err(bytes) => Cow::Owned(enc.decode_without_bom_handling(&bytes).0.into_owned()),
            },
            Charset::Other(enc) => {
                let (text, _) = enc.decode_without_bom_handling(&bytes);
                Cow::Owned(text.into_owned())
            }
            Charset::Utf8 => match bytes {
                Cow::Borrowed(b) => String::from_utf8_lossy(b),
                Cow::Owned(v) => Cow::Owned(match String::from_utf8(v) {
                    Ok(s) => s,
                    Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
                }),
            },
            // Feeds that declare 8859/1 and send UTF-8 are common; Latin-1
            // text that is also valid multi-byte UTF-8 (`Ã¼` for `ü`) is not.
            // So a declared 8859/1 reads as the default does.
            Charset::Latin1 | Charset::Default | Charset::Ascii | Charset::Unknown => {
                match as_utf8(bytes) {
                    Ok(text) => text,
                    Err(bytes) => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
                }
            }
        }
    }

    /// Encodes text for this set; `None` when a character cannot be represented.
    pub fn encode<'t>(&self, text: &'t str) -> Option<Cow<'t, [u8]>> {
        if text.is_ascii() {
            return Some(Cow::Borrowed(text.as_bytes()));
        }
        match self {
            Charset::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect::<Option<Vec<u8>>>()
                .map(Cow::Owned),
            Charset::Other(enc) => {
                let (bytes, _, unmappable) = enc.encode(text);
                if unmappable {
                    None
                } else {
                    Some(Cow::Owned(bytes.into_owned()))
                }
            }
            // UTF-8, and the default reading (which reads UTF-8 back as UTF-8).
            Charset::Utf8 | Charset::Default | Charset::Ascii | Charset::Unknown => {
                Some(Cow::Borrowed(text.as_bytes()))
            }
        }
    }
}

/// The bytes as UTF-8 text when they are valid UTF-8, else the bytes back.
fn as_utf8(bytes: Cow<'_, [u8]>) -> Result<Cow<'_, str>, Cow<'_, [u8]>> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|_| Cow::Borrowed(b)),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| Cow::Owned(e.into_bytes())),
    }
}

fn ascii_str(b: &[u8]) -> &str {
    // ASCII is always valid UTF-8; the fallback is unreachable but harmless.
    std::str::from_utf8(b).unwrap_or_default()
}

fn ascii_string(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_default()
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_table_0211() {
        assert_eq!(Charset::from_msh18(b"UNICODE UTF-8"), Charset::Utf8);
        assert_eq!(Charset::from_msh18(b"8859/1"), Charset::Latin1);
        assert_eq!(Charset::from_msh18(b" ascii "), Charset::Ascii);
        assert_eq!(Charset::from_msh18(b""), Charset::Default);
        assert_eq!(Charset::from_msh18(b"KLINGON"), Charset::Unknown);
        assert_eq!(
            Charset::from_msh18(b"8859/15"),
            Charset::Other(encoding_rs::ISO_8859_15)
        );
    }

    #[test]
    fn latin1_round_trips_every_byte() {
        let bytes: Vec<u8> = (0x20..=0xFF).collect();
        let text = Charset::Latin1.decode(Cow::Borrowed(&bytes)).into_owned();
        assert_eq!(text.chars().count(), bytes.len());
        assert_eq!(Charset::Latin1.encode(&text).unwrap().as_ref(), &bytes[..]);
        assert!(Charset::Latin1.encode("日本").is_none());
    }

    #[test]
    fn declared_latin1_that_is_utf8_reads_as_utf8() {
        let utf8 = "Müller".as_bytes();
        assert_eq!(Charset::Latin1.decode(Cow::Borrowed(utf8)), "Müller");
        assert_eq!(Charset::Latin1.decode(Cow::Owned(utf8.to_vec())), "Müller");
        // Real Latin-1 (0xFC alone is not UTF-8) is still Latin-1.
        assert_eq!(
            Charset::Latin1.decode(Cow::Borrowed(b"M\xFCller")),
            "Müller"
        );
    }

    #[test]
    fn declared_8859_15_that_is_utf8_reads_as_utf8() {
        let latin9 = Charset::from_msh18(b"8859/15");
        assert_eq!(
            latin9.decode(Cow::Borrowed("Rëuter €".as_bytes())),
            "Rëuter €"
        );
        // Real 8859-15 bytes (0xA4 is the euro sign there) still decode as 8859-15.
        assert_eq!(latin9.decode(Cow::Borrowed(b"R\xEButer \xA4")), "Rëuter €");
        assert_eq!(latin9.decode(Cow::Owned(b"\xA4".to_vec())), "€");
    }

    #[test]
    fn windows_code_pages_senders_write() {
        let cp1250 = Charset::from_msh18(b"CP1250");
        assert_eq!(cp1250, Charset::Other(encoding_rs::WINDOWS_1250));
        // 0xB9 0x9C are ą ś in CP1250 (not UTF-8, not what Latin-1 says).
        assert_eq!(
            cp1250.decode(Cow::Borrowed(b"Jab\xB3o\xF1ska \xB9\x9C")),
            "Jabłońska ąś"
        );
        // The same name sent as UTF-8 under that header reads as UTF-8.
        assert_eq!(
            cp1250.decode(Cow::Borrowed("Jabłońska".as_bytes())),
            "Jabłońska"
        );
    }

    #[test]
    fn default_reads_utf8_then_latin1() {
        let utf8 = "Müller".as_bytes();
        assert_eq!(Charset::Default.decode(Cow::Borrowed(utf8)), "Müller");
        let latin1 = b"M\xFCller";
        assert_eq!(Charset::Default.decode(Cow::Borrowed(latin1)), "Müller");
    }
}
