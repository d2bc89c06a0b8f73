//! Every message under `fixtures/hl7` parses, round-trips byte-exact and
//! survives edit-and-reparse; malformed input gives errors, never a panic.

use std::path::PathBuf;

use hl7v2::{Charset, Message, ParseError, Path, batch};

fn fixtures(dir: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(
        out.len() >= 12,
        "expected the fixture set in {}",
        root.display()
    );
    out
}

fn p(s: &str) -> Path {
    s.parse().unwrap()
}

#[test]
fn every_fixture_parses_validates_and_round_trips() {
    for (name, raw) in fixtures("hl7") {
        let msg = Message::parse(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(msg.as_bytes(), &raw[..], "{name}: not byte-exact");
        assert!(msg.validate().is_empty(), "{name}: {:?}", msg.validate());
        assert!(!msg.control_id().is_empty(), "{name}");
        assert!(!msg.message_type().code.is_empty(), "{name}");
        // Owned copies are byte-exact too.
        let owned = Message::parse_owned(raw.clone()).unwrap();
        assert_eq!(owned.into_bytes(), raw, "{name}");
    }
}

#[test]
fn every_fixture_survives_edit_and_reparse() {
    for (name, raw) in fixtures("hl7") {
        let msg = Message::parse(&raw).unwrap();
        let mut edited = msg.clone().into_owned();
        let value = "O'Edited ^ | & ~ \\ name";
        let (path, value) = if msg.segment("PID", 1).is_some() {
            (p("PID-5.1"), value)
        } else {
            (p("MSH-3.1"), "EDITED-APP")
        };
        edited
            .set(&path, value)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = Message::parse(edited.as_bytes()).unwrap();
        assert_eq!(back.text(&path).as_deref(), Some(value), "{name}");
        assert_eq!(back.segment_count(), msg.segment_count(), "{name}");
        for i in 0..msg.segment_count() {
            let a = msg.segment_at(i).unwrap();
            let b = back.segment_at(i).unwrap();
            if i == 0 && path.segment_id() == "MSH"
                || a.id() == path.segment_id()
                    && i == msg.segment(path.segment_id(), 1).unwrap().index()
            {
                // Every other field of the edited segment is unchanged.
                for (n, f) in a.fields() {
                    if Some(n) != path.field {
                        assert_eq!(
                            Some(f.raw()),
                            b.field(n).map(|v| v.raw()),
                            "{name}: field {n}"
                        );
                    }
                }
                continue;
            }
            assert_eq!(a.as_bytes(), b.as_bytes(), "{name}: segment {i} changed");
        }
        // Bytes before the edited segment are untouched (BOM, line ends).
        let first = msg.segment(path.segment_id(), 1).unwrap().index();
        let prefix_end = if first == 0 {
            3
        } else {
            msg.segment_at(first).unwrap().as_bytes().as_ptr() as usize - raw.as_ptr() as usize
        };
        assert_eq!(
            &edited.as_bytes()[..prefix_end],
            &raw[..prefix_end],
            "{name}"
        );
    }
}

#[test]
fn charset_and_line_end_fixtures_read_correctly() {
    let all = fixtures("hl7");
    let get = |n: &str| {
        all.iter()
            .find(|(name, _)| name == n)
            .map(|(_, r)| r.clone())
            .unwrap()
    };

    let latin1 = get("ADT-A01-latin1.hl7");
    assert!(latin1.contains(&0xFC), "fixture holds an 8859/1 byte");
    let m = Message::parse(&latin1).unwrap();
    assert_eq!(m.charset(), Charset::Latin1);
    assert_eq!(m.text(&p("PID-5.1")).unwrap(), "Müller");
    assert_eq!(m.text(&p("PID-11.1")).unwrap(), "Königstraße 5");
    assert_eq!(
        m.text(&p("NTE-3")).unwrap(),
        "Patient spricht | Französisch\nAllergie: Nüsse"
    );

    let v27 = get("ORU-R01-v27-crlf.hl7");
    let m = Message::parse(&v27).unwrap();
    assert_eq!(m.delimiters().truncation, Some(b'#'));
    assert_eq!(m.segment_count(), 6);
    assert_eq!(m.text(&p("OBX[2]-5")).unwrap(), "140 # estimated");
    assert_eq!(
        m.text(&p("OBX[3]-5")).unwrap(),
        "Zoë reviewed\nrésumé: normal ✓"
    );
    assert_eq!(
        m.text(&p("MSH-3.2")).unwrap(),
        "2.16.840.1.113883.3.72.5.20"
    );

    let bom = get("VXU-V04-01.hl7");
    assert!(bom.starts_with(&[0xEF, 0xBB, 0xBF]));
    let m = Message::parse(&bom).unwrap();
    assert_eq!(m.message_type().to_string(), "VXU^V04");

    let v23 = get("ADT-A04-v23.hl7");
    let m = Message::parse(&v23).unwrap();
    assert_eq!(m.text(&p("ZPI-2")).unwrap(), "custom segment value");
    assert_eq!(m.message_type().structure, "");
}

#[test]
fn batch_fixture_splits() {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/hl7-batch/adt-batch-2.hl7");
    let raw = std::fs::read(root).unwrap();
    let s = batch::split(&raw).unwrap();
    assert_eq!(s.messages.len(), 2);
    assert!(s.counts_match());
    let ids: Vec<String> = s
        .messages
        .iter()
        .map(|r| {
            Message::parse(&raw[r.clone()])
                .unwrap()
                .control_id()
                .into_owned()
        })
        .collect();
    assert_eq!(ids, ["B1-1", "B1-2"]);
    assert!(matches!(Message::parse(&raw), Err(ParseError::IsBatch(_))));
}

#[test]
fn malformed_input_gives_errors_not_panics() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("no MSH", b"PID|1||123\r".to_vec()),
        ("bad field separator", b"MSHA^~\\&|x\r".to_vec()),
        ("duplicate encoding characters", b"MSH|^^\\&|x\r".to_vec()),
        ("truncated", b"MSH|^~".to_vec()),
        ("truncated at MSH", b"MS".to_vec()),
        (
            "binary garbage",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
        ("20 MiB of garbage", vec![0xAB; 20 * 1024 * 1024]),
    ];
    for (what, raw) in cases {
        assert!(Message::parse(&raw).is_err(), "{what} should not parse");
        hl7v2::fuzzing::check(&raw[..raw.len().min(1 << 16)]);
    }
    // Parseable but invalid: reported by validation.
    let mut huge = b"MSH|^~\\&|".to_vec();
    huge.extend(std::iter::repeat_n(b'A', 20 * 1024 * 1024));
    let m = Message::parse(&huge).unwrap();
    assert!(!m.validate().is_empty());
    let bad_body = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID^1^x\r\x00\xff\xfe\r";
    let m = Message::parse(bad_body).unwrap();
    assert_eq!(m.validate().len(), 2);
}
