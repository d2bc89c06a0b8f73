//! MLLP through the binary: ACK codes, enhanced mode, pipelining, split
//! frames, oversized frames, byte-exact storage.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;

fn default_server() -> (Setup, Server) {
    let setup = Setup::default_config();
    let server = Server::start_with(&setup, &["--listen", "mllp=127.0.0.1:0"]);
    (setup, server)
}

fn msh_fields(ack: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(ack).into_owned();
    text.split('\r')
        .next()
        .unwrap_or("")
        .split('|')
        .map(String::from)
        .collect()
}

#[test]
fn default_config_acks_valid_unparseable_and_invalid_messages() {
    let (_s, server) = default_server();
    let mut c = Mllp::connect(server.mllp());

    // Valid: AA, MSA-2 echoes MSH-10, the ACK's MSH swaps the applications.
    let ack = c.request(&adt("CTRL-1"));
    assert_eq!(ack_fields(&ack).0, "AA");
    assert_eq!(ack_fields(&ack).1, "CTRL-1");
    let msh = msh_fields(&ack);
    assert_eq!(&msh[2..6], ["CAD", "CAD", "TESTAPP", "TESTFAC"]);
    assert_eq!(msh[8], "ACK^A01^ACK");
    assert_eq!(msh[10], "P");
    assert_eq!(msh[11], "2.5.1");

    // Not HL7 at all: AR, MSA-2 empty.
    let ack = c.request(b"hello, this is not HL7");
    assert_eq!(ack_fields(&ack).0, "AR");
    assert_eq!(ack_fields(&ack).1, "");

    // Broken MSH-2 but MSH-10 recoverable: AR echoing it.
    let ack = c.request(b"MSH|^^^^|A|B|C|D|2024||ADT^A01|RECOVER-ME|P|2.5\rPID|1\r");
    assert_eq!(ack_fields(&ack).0, "AR");
    assert_eq!(ack_fields(&ack).1, "RECOVER-ME");

    // Parseable but invalid (no MSH-9): AE with ERR code 101 and location.
    let ack = c.request(b"MSH|^~\\&|A|B|C|D|2024|||NO-TYPE|P|2.5.1\rPID|1\r");
    let (code, ctrl, err) = ack_fields(&ack);
    assert_eq!(
        (code.as_str(), ctrl.as_str(), err.as_str()),
        ("AE", "NO-TYPE", "101")
    );
    assert!(
        String::from_utf8_lossy(&ack).contains("ERR||MSH^1^9^^1"),
        "{}",
        String::from_utf8_lossy(&ack)
    );

    // Bad delimiters in the body: AE with ERR 100 at that segment.
    let ack = c.request(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|BAD-BODY|P|2.5.1\rPID^1^^123\r");
    let (code, ctrl, err) = ack_fields(&ack);
    assert_eq!(
        (code.as_str(), ctrl.as_str(), err.as_str()),
        ("AE", "BAD-BODY", "100")
    );

    // Old versions get an ERR-1 (ELD) layout.
    let ack = c.request(b"MSH|^~\\&|A|B|C|D|2024|||OLD-1|P|2.3\r");
    assert_eq!(ack_fields(&ack).0, "AE");
    assert!(
        String::from_utf8_lossy(&ack).contains("ERR|MSH^1^9^101&Required field missing&HL70357")
    );

    // Everything, good and bad, is stored with its state.
    let msgs = server.messages();
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    let states: Vec<&str> = msgs
        .iter()
        .rev()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["processed", "error", "error", "error", "error", "error"]
    );
    let recovered = msgs
        .iter()
        .find(|m| m["control_id"] == "RECOVER-ME")
        .unwrap();
    assert!(recovered["error"].as_str().unwrap().contains("MSH-2"));
}

#[test]
fn enhanced_mode_and_rules() {
    let channel = r#"
name: rules
source:
  type: mllp
  listen: mllp
accept:
  versions: ["2.5*"]
  processing_ids: [P, T]
filters:
  - type: ["ADT^A0*"]
reject:
  - field: PID-3.1
    equals: BLOCKED
    reason: blocked patient
destinations: []
"#;
    let setup = Setup::new(SERVER, &[("rules.yaml", channel)]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());

    // MSH-15=AL: enhanced mode, CA after commit.
    let m = String::from_utf8(adt("ENH-1"))
        .unwrap()
        .replace("|P|2.5.1\r", "|P|2.5.1|||AL|NE\r");
    let ack = c.request(m.as_bytes());
    assert_eq!(ack_fields(&ack), ("CA".into(), "ENH-1".into(), "".into()));

    // MSH-15=NE: no accept ACK; the next message's ACK is the next frame.
    let m = String::from_utf8(adt("ENH-2"))
        .unwrap()
        .replace("|P|2.5.1\r", "|P|2.5.1|||NE|AL\r");
    c.send(m.as_bytes());
    let ack = c.request(&adt("AFTER-NE"));
    assert_eq!(ack_fields(&ack).1, "AFTER-NE");

    // MSH-15=ER and an error: CE.
    let m = b"MSH|^~\\&|A|B|C|D|2024|||ENH-3|P|2.5.1|||ER|NE\r";
    assert_eq!(ack_fields(&c.request(m)).0, "CE");

    // Unsupported version: AR 203. Unsupported processing id: AR 202.
    let v24 = String::from_utf8(adt("V24"))
        .unwrap()
        .replace("|2.5.1\r", "|2.4\r");
    let (code, _, err) = ack_fields(&c.request(v24.as_bytes()));
    assert_eq!((code.as_str(), err.as_str()), ("AR", "203"));
    let debug = String::from_utf8(adt("PID-D"))
        .unwrap()
        .replace("|P|2.5.1", "|D|2.5.1");
    let (code, _, err) = ack_fields(&c.request(debug.as_bytes()));
    assert_eq!((code.as_str(), err.as_str()), ("AR", "202"));

    // A reject rule: AR; a filter that does not want it: AA and `filtered`.
    let blocked = String::from_utf8(adt("X"))
        .unwrap()
        .replace("PID|1||X^", "PID|1||BLOCKED^");
    assert_eq!(ack_fields(&c.request(blocked.as_bytes())).0, "AR");
    let oru = String::from_utf8(adt("ORU-1"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01");
    assert_eq!(ack_fields(&c.request(oru.as_bytes())).0, "AA");

    let msgs = server.messages();
    let state = |ctrl: &str| {
        msgs.iter()
            .find(|m| m["control_id"] == ctrl)
            .map(|m| {
                (
                    m["state"].as_str().unwrap().to_string(),
                    m["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .unwrap()
    };
    assert_eq!(state("ENH-2").0, "processed");
    assert_eq!(state("ORU-1").0, "filtered");
    assert!(
        state("ORU-1").1.contains("rules.yaml:"),
        "{:?}",
        state("ORU-1")
    );
    assert_eq!(state("X").0, "error");
    assert!(state("X").1.contains("blocked patient"));
    assert!(state("V24").1.contains("MSH-12"));
}

#[test]
fn pipelined_frames_and_one_byte_writes() {
    let (_s, server) = default_server();
    let mut c = Mllp::connect(server.mllp());
    // Ten frames in one write: ten ACKs, in order.
    let mut burst = Vec::new();
    for i in 0..10 {
        burst.extend(frame(&adt(&format!("PIPE-{i}"))));
    }
    c.send_raw(&burst);
    for i in 0..10 {
        let ack = c.read().unwrap();
        assert_eq!(
            ack_fields(&ack),
            ("AA".into(), format!("PIPE-{i}"), "".into())
        );
    }
    // One frame, one byte at a time.
    let bytes = frame(&adt("SLOW-1"));
    for b in &bytes {
        c.stream.write_all(&[*b]).unwrap();
        c.stream.flush().unwrap();
    }
    assert_eq!(ack_fields(&c.read().unwrap()).1, "SLOW-1");
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn oversized_frame_is_refused_with_memory_bounded() {
    let channel = "name: small\nsource:\n  type: mllp\n  listen: mllp\n  max_message_size: 64KiB\n";
    let setup = Setup::new(SERVER, &[("small.yaml", channel)]);
    let server = Server::start(&setup);
    let mut c = Mllp::connect(server.mllp());
    c.request(&adt("WARM-UP"));
    let before = rss_kib(server.pid());
    // 40 MiB in one frame, streamed.
    c.send_raw(&[VT]);
    c.send_raw(b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|HUGE-1|P|2.5.1\rOBX|1|TX|x||");
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..40 {
        c.send_raw(&chunk);
    }
    c.send_raw(&[FS, CR]);
    let ack = c.read().unwrap();
    let (code, ctrl, err) = ack_fields(&ack);
    assert_eq!(
        (code.as_str(), ctrl.as_str(), err.as_str()),
        ("AR", "HUGE-1", "104")
    );
    let after = rss_kib(server.pid());
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    // The connection still works.
    assert_eq!(ack_fields(&c.request(&adt("AFTER-HUGE"))).0, "AA");
}

#[test]
fn raw_bytes_are_stored_exactly() {
    let (_s, server) = default_server();
    let mut c = Mllp::connect(server.mllp());
    for name in [
        "VXU-V04-01.hl7",
        "ADT-A01-01.hl7",
        "ADT-A01-latin1.hl7",
        "ORU-R01-v27-crlf.hl7",
    ] {
        let raw = fixture(&format!("hl7/{name}"));
        // BOM, LF line ends and 8859/1 bytes go in as they are.
        c.send(&raw);
        if name != "ORU-R01-v27-crlf.hl7" {
            assert!(
                matches!(ack_fields(&c.read().unwrap()).0.as_str(), "AA" | "CA"),
                "{name}"
            );
        }
    }
    assert_eq!(ack_fields(&c.request(&adt("LAST"))).0, "AA");
    let msgs = server.messages();
    assert_eq!(msgs.len(), 5);
    for (m, name) in msgs.iter().rev().zip([
        "VXU-V04-01.hl7",
        "ADT-A01-01.hl7",
        "ADT-A01-latin1.hl7",
        "ORU-R01-v27-crlf.hl7",
    ]) {
        let id = m["id"].as_str().unwrap();
        let out = server.cli(&["messages", "show", id, "--raw"]);
        assert!(out.status.success());
        assert_eq!(
            out.stdout,
            fixture(&format!("hl7/{name}")),
            "{name} not byte-exact"
        );
    }
    // The file destination received them too.
    server.wait_for(10, "five files in data/out", || {
        std::fs::read_dir(server.data.join("out"))
            .map(|d| d.count() == 5)
            .unwrap_or(false)
    });
}

#[test]
fn idle_connections_are_closed() {
    let channel = "name: idle\nsource:\n  type: mllp\n  listen: mllp\n  idle_timeout: 300ms\n  read_timeout: 300ms\n";
    let setup = Setup::new(SERVER, &[("idle.yaml", channel)]);
    let server = Server::start(&setup);
    // A frame that never ends is cut off by the read timeout.
    let mut c = Mllp::connect(server.mllp());
    c.send_raw(b"\x0bMSH|^~\\&|partial");
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(
        c.read().is_none(),
        "the server should close a stalled frame"
    );
    // An idle connection is closed too.
    let mut idle = Mllp::connect(server.mllp());
    idle.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(idle.read().is_none());
    // Nothing was stored from the partial frame.
    assert_eq!(server.messages().len(), 0);
}
