//! The invariants every input must keep, shared by the cargo-fuzz target
//! (`fuzz/fuzz_targets/hl7v2.rs`) and the property tests that run in
//! `cargo test` (stable toolchain only on our machines).
//!
//! Owns the checks, nothing else. A violated invariant panics, which is what
//! both harnesses look for.

use crate::ack::{
    AckError, AckHeader, Disposition, build_ack_for_unparseable, build_ack_with_code, read_ack,
};
use crate::escape::{escape, unescape};
use crate::message::Message;
use crate::path::Path;
use crate::validate::ErrorCode;
use crate::{AckCode, Delimiters, batch};

const HDR: AckHeader<'static> = AckHeader {
    control_id: "FUZZ",
    timestamp: "20240101000000+0000",
};

/// Runs every invariant on one input. Panics when one does not hold.
pub fn check(data: &[u8]) {
    check_escape_round_trip(data);
    if let Ok(split) = batch::split(data) {
        let mut last = 0;
        for r in &split.messages {
            assert!(r.start >= last && r.end <= data.len() && r.start <= r.end);
            last = r.end;
        }
    }
    match Message::parse(data) {
        Ok(msg) => check_message(data, msg),
        Err(e) => {
            let err = AckError {
                code: ErrorCode::DataType,
                location: None,
                message: e.to_string(),
            };
            let ack = build_ack_for_unparseable(data, &err, &HDR);
            let read = read_ack(&ack).expect("our AR must parse");
            assert_eq!(read.code, AckCode::AR);
        }
    }
}

fn check_escape_round_trip(data: &[u8]) {
    for d in [Delimiters::default(), Delimiters::with_truncation()] {
        let e = escape(data, &d).expect("default delimiters have an escape character");
        assert_eq!(
            unescape(&e, &d).as_ref(),
            data,
            "escape then unescape must give the input"
        );
    }
}

fn check_message(data: &[u8], msg: Message<'_>) {
    assert_eq!(
        msg.as_bytes(),
        data,
        "an unmodified message serializes to its input"
    );
    let issues = msg.validate();
    // Read everything there is to read.
    for seg in msg.segments() {
        for (_, field) in seg.fields().take(64) {
            for rep in field.repetitions().take(16) {
                for comp in rep.components().into_iter().take(16) {
                    let _ = comp.text();
                    let _ = comp.subcomponent(2).map(|s| s.text());
                }
            }
            let _ = field.display_text();
        }
    }
    // The split table reads every part as the lazy values do.
    let split = crate::split::Split::new(&msg);
    for (i, seg) in msg.segments().enumerate() {
        assert_eq!(split.fields_present(i), seg.fields_present());
        for n in 1..=seg.field_count().min(64) as u16 {
            let (Some(a), Some(b)) = (seg.field(n), split.field(i, n)) else {
                assert_eq!(seg.field(n).is_some(), split.field(i, n).is_some());
                continue;
            };
            assert_eq!(a.raw(), split.bytes(b));
            assert_eq!(a.text(), split.text(b));
            assert_eq!(a.parts_present(), split.parts_present(b));
            for (ra, rb) in a.repetitions().zip(split.reps(b)).take(16) {
                for c in 1..8 {
                    let (ca, cb) = (ra.component(c), split.comp(rb, c));
                    assert_eq!(ca.map(|x| x.raw()), cb.map(|y| split.bytes(y)));
                    if let (Some(x), Some(y)) = (ca, cb) {
                        assert_eq!(x.text(), split.text(y));
                        assert_eq!(x.parts_present(), split.parts_present(y));
                    }
                }
            }
        }
    }
    let _ = msg.message_type().to_string();
    let control = msg.control_id().into_owned();

    // An ACK for each disposition parses and echoes MSH-10.
    let err = AckError {
        code: ErrorCode::RequiredFieldMissing,
        location: issues.first().map(|i| i.location.clone()),
        message: "fuzz | error ^ text".into(),
    };
    for (code, disp) in [
        (AckCode::AA, Disposition::Accept),
        (AckCode::AE, Disposition::Error(err.clone())),
        (AckCode::CR, Disposition::Reject(err)),
    ] {
        let ack = build_ack_with_code(&msg, code, &disp, &HDR);
        let read = read_ack(&ack).expect("our ACK must parse");
        assert_eq!(read.code, code);
        let raw_ctrl = msg.header().field(10).map(|f| f.raw()).unwrap_or(b"");
        // MSA-2 carries MSH-10's bytes; when they hold no component or
        // repetition separators, the texts must match.
        let d = msg.delimiters();
        let simple = !raw_ctrl.iter().any(|&b| d.is_special(b)) && !raw_ctrl.contains(&b'\0');
        if simple {
            assert_eq!(read.control_id, control);
        }
    }

    // Edit, serialize, parse again: the edit reads back, the rest is unchanged.
    let mut edited = msg.clone().into_owned();
    let target: Path = match "ZZZ-3[2].2.1".parse() {
        Ok(p) => p,
        Err(_) => return,
    };
    let value = "edit | ^ & ~ \\ # ü";
    if edited.set(&target, value).is_ok() {
        let back = Message::parse(edited.as_bytes()).expect("an edited message parses");
        assert_eq!(back.text(&target).as_deref(), Some(value));
        for i in 0..msg.segment_count() {
            let before = msg.segment_at(i).map(|s| s.as_bytes());
            let after = back.segment_at(i).map(|s| s.as_bytes());
            if before.is_some_and(|b| b.starts_with(b"ZZZ")) {
                continue;
            }
            assert_eq!(before, after, "segment {i} changed by an edit elsewhere");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        let id = prop::sample::select(vec!["PID", "PV1", "OBX", "ZZZ", "NTE", "pid", "X", "EVN"]);
        let field = "[A-Za-z0-9 ^~&\\\\#.üé日|]{0,12}";
        (id, prop::collection::vec(field, 0..8))
            .prop_map(|(id, fields)| format!("{id}|{}", fields.join("|")))
    }

    fn message() -> impl Strategy<Value = Vec<u8>> {
        let enc = prop::sample::select(vec!["^~\\&", "^~\\&#", "^~\\", "^", "@*$%", "^^"]);
        let term = prop::sample::select(vec!["\r", "\n", "\r\n"]);
        let bom = any::<bool>();
        (
            enc,
            term,
            bom,
            prop::collection::vec(segment(), 0..6),
            "[A-Z0-9]{0,6}",
        )
            .prop_map(|(enc, term, bom, segs, ctrl)| {
                let mut s = String::new();
                if bom {
                    s.push('\u{feff}');
                }
                s.push_str(&format!(
                    "MSH|{enc}|APP|FAC|||20240101||ADT^A01|{ctrl}|P|2.5"
                ));
                for seg in segs {
                    s.push_str(term);
                    s.push_str(&seg);
                }
                s.into_bytes()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_keep_the_invariants(data in prop::collection::vec(any::<u8>(), 0..512)) {
            check(&data);
        }

        #[test]
        fn message_shaped_input_keeps_the_invariants(data in message()) {
            check(&data);
        }

        #[test]
        fn msh_prefixed_garbage_keeps_the_invariants(tail in prop::collection::vec(any::<u8>(), 0..256)) {
            let mut data = b"MSH|^~\\&|".to_vec();
            data.extend_from_slice(&tail);
            check(&data);
        }
    }
}
