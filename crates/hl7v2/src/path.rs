//! Paths as HL7 writes them: `PID-5.1`, `PID-3[2].1`, `OBX[*]-5`, `PID-5.1.2`.
//!
//! Owns reading and printing paths. Counting starts at 1, as in HL7. A
//! segment index in brackets after the segment id picks the n-th segment of
//! that id (`OBX[2]-5`); after the field number it picks a repetition
//! (`PID-3[2]`). `[*]` means every one. Unspecified indexes mean the first.
//! Resolving a path against a message lives in [`crate::message`].

use std::fmt;
use std::str::FromStr;

use crate::error::PathError;

/// Which one of several: the n-th (1-based) or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Index {
    /// The n-th, counting from 1.
    Nth(u32),
    /// Every one (`[*]`).
    All,
}

impl Index {
    /// The first one.
    pub const FIRST: Index = Index::Nth(1);
}

/// A compiled HL7 path. Parse it once and reuse it: resolving a compiled
/// path does no string work.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// Segment id, e.g. `PID`.
    pub segment: [u8; 3],
    /// Which segment of that id.
    pub segment_index: Index,
    /// Field number (MSH-1 is the field separator itself).
    pub field: Option<u16>,
    /// Which repetition of the field; `None` when not written (reads the first).
    pub repetition: Option<Index>,
    /// Component number.
    pub component: Option<u16>,
    /// Subcomponent number.
    pub subcomponent: Option<u16>,
}

impl Path {
    /// The segment id as text.
    pub fn segment_id(&self) -> &str {
        std::str::from_utf8(&self.segment).unwrap_or("???")
    }

    /// True when any index is `[*]`.
    pub fn is_multi(&self) -> bool {
        self.segment_index == Index::All || self.repetition == Some(Index::All)
    }

    /// A path to a whole segment.
    pub fn segment(id: &str) -> Result<Path, PathError> {
        id.parse()
    }
}

impl FromStr for Path {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Path, PathError> {
        let b = s.as_bytes();
        let err = |column: usize, reason: &'static str| PathError {
            path: s.to_string(),
            column,
            reason,
        };
        if b.len() < 3 {
            return Err(err(1, "a path starts with a three-character segment id"));
        }
        let id = [b[0], b[1], b[2]];
        if !id[0].is_ascii_uppercase()
            || !id[1..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(err(
                1,
                "a segment id is three capital letters or digits, starting with a letter",
            ));
        }
        let mut i = 3;
        let mut path = Path {
            segment: id,
            segment_index: Index::FIRST,
            field: None,
            repetition: None,
            component: None,
            subcomponent: None,
        };
        if b.get(i) == Some(&b'[') {
            let (idx, next) = bracket(b, i).map_err(|r| err(i + 1, r))?;
            path.segment_index = idx;
            i = next;
        }
        if i == b.len() {
            return Ok(path);
        }
        if b[i] != b'-' {
            return Err(err(
                i + 1,
                "expected '-' and a field number after the segment",
            ));
        }
        i += 1;
        let (field, next) = number(b, i).map_err(|r| err(i + 1, r))?;
        path.field = Some(field);
        i = next;
        if b.get(i) == Some(&b'[') {
            let (idx, next) = bracket(b, i).map_err(|r| err(i + 1, r))?;
            path.repetition = Some(idx);
            i = next;
        }
        if i == b.len() {
            return Ok(path);
        }
        if b[i] != b'.' {
            return Err(err(i + 1, "expected '.' and a component number"));
        }
        i += 1;
        let (comp, next) = number(b, i).map_err(|r| err(i + 1, r))?;
        path.component = Some(comp);
        i = next;
        if i == b.len() {
            return Ok(path);
        }
        if b[i] != b'.' {
            return Err(err(i + 1, "expected '.' and a subcomponent number"));
        }
        i += 1;
        let (sub, next) = number(b, i).map_err(|r| err(i + 1, r))?;
        path.subcomponent = Some(sub);
        i = next;
        if i != b.len() {
            return Err(err(i + 1, "unexpected text after the subcomponent"));
        }
        Ok(path)
    }
}

fn number(b: &[u8], start: usize) -> Result<(u16, usize), &'static str> {
    let mut i = start;
    let mut n: u32 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n * 10 + u32::from(b[i] - b'0');
        if n > u32::from(u16::MAX) {
            return Err("number too large");
        }
        i += 1;
    }
    if i == start {
        return Err("expected a number (counting from 1)");
    }
    if n == 0 {
        return Err("HL7 positions count from 1, not 0");
    }
    Ok((n as u16, i))
}

fn bracket(b: &[u8], start: usize) -> Result<(Index, usize), &'static str> {
    // b[start] == '['
    let i = start + 1;
    if b.get(i) == Some(&b'*') {
        if b.get(i + 1) != Some(&b']') {
            return Err("expected ']' after '*'");
        }
        return Ok((Index::All, i + 2));
    }
    let mut j = i;
    let mut n: u64 = 0;
    while j < b.len() && b[j].is_ascii_digit() {
        n = n * 10 + u64::from(b[j] - b'0');
        if n > u64::from(u32::MAX) {
            return Err("index too large");
        }
        j += 1;
    }
    if j == i {
        return Err("expected a number or '*' in brackets");
    }
    if n == 0 {
        return Err("HL7 indexes count from 1, not 0");
    }
    if b.get(j) != Some(&b']') {
        return Err("expected ']'");
    }
    Ok((Index::Nth(n as u32), j + 1))
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment_id())?;
        write_index(f, self.segment_index, false)?;
        if let Some(field) = self.field {
            write!(f, "-{field}")?;
            if let Some(r) = self.repetition {
                write_index(f, r, true)?;
            }
            if let Some(c) = self.component {
                write!(f, ".{c}")?;
                if let Some(s) = self.subcomponent {
                    write!(f, ".{s}")?;
                }
            }
        }
        Ok(())
    }
}

fn write_index(f: &mut fmt::Formatter<'_>, i: Index, always: bool) -> fmt::Result {
    match i {
        Index::All => f.write_str("[*]"),
        Index::Nth(1) if !always => Ok(()),
        Index::Nth(n) => write!(f, "[{n}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Path {
        s.parse().unwrap()
    }

    #[test]
    fn reads_the_forms_hl7_writes() {
        let x = p("PID-5.1");
        assert_eq!(x.segment_id(), "PID");
        assert_eq!(x.field, Some(5));
        assert_eq!(x.component, Some(1));
        assert_eq!(x.repetition, None);
        let x = p("PID-3[2].1");
        assert_eq!(x.repetition, Some(Index::Nth(2)));
        let x = p("OBX[*]-5");
        assert_eq!(x.segment_index, Index::All);
        assert!(x.is_multi());
        let x = p("PID-5.1.2");
        assert_eq!(x.subcomponent, Some(2));
        let x = p("ZP1[3]-2[*].4.1");
        assert_eq!(x.segment_index, Index::Nth(3));
        assert_eq!(x.repetition, Some(Index::All));
        assert_eq!(p("MSH").field, None);
    }

    #[test]
    fn prints_what_it_reads() {
        for s in [
            "PID-5.1",
            "PID-3[2].1",
            "OBX[*]-5",
            "PID-5.1.2",
            "ZP1[3]-2[*].4.1",
            "MSH",
            "PID-3[1]",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn refuses_bad_paths_with_a_column() {
        for (s, col) in [
            ("P", 1),
            ("pid-5", 1),
            ("PID5", 4),
            ("PID-0", 5),
            ("PID-5.", 7),
            ("PID-3[0]", 6),
            ("PID-3[x]", 6),
            ("PID-5.1.2.3", 10),
            ("PID-", 5),
        ] {
            let e = s.parse::<Path>().unwrap_err();
            assert_eq!(e.column, col, "{s}: {e}");
        }
    }
}
