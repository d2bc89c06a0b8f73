//! The `map` step through the binary: the bundled HL7 → FHIR channel, a
//! mapping error visible in `messages show`, hot reload (a broken edit
//! keeps the last good mappings running), and reprocess after the fix.

mod common;

use std::path::Path;

use common::*;

fn json_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "json"));
    v.sort();
    v
}

fn show_json(server: &Server, id: &str) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["messages", "show", id, "--json"])).unwrap()
}

#[test]
fn bundled_channel_turns_adt_into_a_transaction_bundle_file() {
    let setup = Setup::default_config();
    let server = Server::start_with(&setup, &["--listen", "mllp=127.0.0.1:0"]);
    let mut c = Mllp::connect(server.addr("mllp-fhir"));
    let ack = c.request(&fixture("hl7/ADT-A01-01.hl7"));
    assert_eq!(ack_fields(&ack).0, "AA", "stored, then acknowledged");
    let out = setup.data().join("fhir");
    server.wait_for(20, "a Bundle file", || json_files(&out).len() == 1);
    let file = &json_files(&out)[0];
    let bundle: serde_json::Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "transaction");
    let patient = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "Patient")
        .expect("a Patient");
    assert_eq!(patient["name"][0]["family"], "EVERYMAN");
    // The same output `caduceus map run` gives for the same file.
    let run = caduceus(&[
        "map",
        "run",
        "hl7v2-fhir-r4",
        "--input",
        "fixtures/hl7/ADT-A01-01.hl7",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(bundle, expected);

    // The message is `processed`, with the mappings' version and one delivery.
    let list = server.messages();
    let m = list.iter().find(|m| m["channel"] == "hl7-fhir").unwrap();
    let d = show_json(&server, m["id"].as_str().unwrap());
    assert_eq!(d["state"], "processed");
    assert_eq!(d["mapping_version"].as_str().map(str::len), Some(16));
    assert_eq!(d["deliveries"][0]["state"], "sent");

    // Other message types are filtered (AA), not mapped.
    let siu = String::from_utf8(fixture("hl7/SIU-S12-01.hl7")).unwrap();
    assert_eq!(ack_fields(&c.request(siu.as_bytes())).0, "AA");
    let metrics = server.http_get("/metrics").1;
    assert_eq!(
        metric(
            &metrics,
            "caduceus_mapped_total",
            &[("channel", "hl7-fhir"), ("outcome", "ok")]
        ),
        Some(1.0)
    );
}

const CHANNEL: &str = "name: fhir\nsource:\n  type: mllp\n  listen: mllp\nsteps:\n  - map: hl7v2-fhir-r4\ndestinations:\n  - name: out\n    type: file\n    directory: fhir\n";
/// The same channel with a strict step: a value no conversion reads fails the message.
const CHANNEL_STRICT: &str = "name: fhir\nsource:\n  type: mllp\n  listen: mllp\nsteps:\n  - map: hl7v2-fhir-r4\n    strict: true\ndestinations:\n  - name: out\n    type: file\n    directory: fhir\n";

fn adt_with_birth_date(control: &str, date: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|HIS|H|CAD|CAD|20240301101500||ADT^A01^ADT_A01|{control}|P|2.5.1\rEVN|A01|20240301101500\rPID|1||MRN{control}^^^H^MR||Doe^Jane||{date}|F\rPV1|1|I\r"
    )
    .into_bytes()
}

#[test]
fn mapping_errors_reload_and_reprocess() {
    let setup = Setup::new(
        &format!("{SERVER}mappings_dir: ../mappings\n"),
        &[("fhir.yaml", CHANNEL_STRICT)],
    );
    let maps = setup.path().join("mappings");
    copy_mappings(&maps);
    let server = Server::start(&setup);
    let out = setup.data().join("fhir");
    let mut c = Mllp::connect(server.mllp());

    // 1. A birth date that is no date (the step is strict): ACK AA
    // (stored), then `error` with the mapping file, line, column and the
    // HL7 field.
    assert_eq!(
        ack_fields(&c.request(&adt_with_birth_date("BAD-1", "19701399"))).0,
        "AA"
    );
    server.wait_for(20, "the message in error", || {
        server
            .messages()
            .iter()
            .any(|m| m["control_id"] == "BAD-1" && m["state"] == "error")
    });
    let bad = server
        .messages()
        .into_iter()
        .find(|m| m["control_id"] == "BAD-1")
        .unwrap();
    let bad_id = bad["id"].as_str().unwrap().to_string();
    let text = server.cli_ok(&["messages", "show", &bad_id]);
    assert!(text.contains("state:       error"), "{text}");
    // The line of the birth date rule in the shipped PID mapping.
    let pid = maps.join("segments/PID_Patient.yaml");
    let good = std::fs::read_to_string(&pid).unwrap();
    let line = 1 + good
        .lines()
        .position(|l| l == "  - birthDate: date(PID-7)")
        .expect("the birth date rule");
    assert!(
        text.contains("map hl7v2-fhir-r4: ")
            && text.contains(&format!("segments/PID_Patient.yaml:{line}:"))
            && text.contains("PID-7 (segment 3): \"19701399\" is not a calendar date"),
        "{text}"
    );
    assert!(json_files(&out).is_empty(), "nothing delivered for it");

    // 2. A broken edit: logged with file:line:col, the last good mappings keep running.
    std::fs::write(
        &pid,
        good.replace("  - birthDate: date(PID-7)", "  - birthdate: date(PID-7)"),
    )
    .unwrap();
    server.wait_for(20, "the broken edit to be reported", || {
        server.log_text().contains("mapping change not loaded")
    });
    let log = server.log_text();
    assert!(
        log.contains(&format!(
            "PID_Patient.yaml:{line}:5: Patient has no element \\\"birthdate\\\""
        )) || log.contains(&format!(
            "PID_Patient.yaml:{line}:5: Patient has no element \"birthdate\""
        )),
        "{log}"
    );
    assert_eq!(
        ack_fields(&c.request(&adt_with_birth_date("GOOD-1", "19700101"))).0,
        "AA"
    );
    server.wait_for(20, "GOOD-1 mapped by the last good set", || {
        json_files(&out).len() == 1
    });

    // 3. The fix (this feed sends month 13 for "unknown"): skip those; reloads by itself.
    let fixed = good.replace(
        "  - birthDate: date(PID-7)\n",
        "  - birthDate: date(PID-7)\n    when: not matches(PID-7, \"????13*\")\n",
    );
    assert_ne!(fixed, good, "the rule is where the test expects it");
    std::fs::write(&pid, fixed).unwrap();
    server.wait_for(20, "the fixed mappings to load", || {
        server.log_text().contains("mappings reloaded")
    });

    // 4. Reprocess: the message maps now, and is delivered.
    server.cli_ok(&["messages", "reprocess", &bad_id]);
    server.wait_for(20, "the reprocessed message to be delivered", || {
        json_files(&out).len() == 2
    });
    let d = show_json(&server, &bad_id);
    assert_eq!(d["state"], "processed");
    let metrics = server.http_get("/metrics").1;
    assert_eq!(
        metric(
            &metrics,
            "caduceus_mapping_reloads_total",
            &[("result", "ok")]
        ),
        Some(1.0)
    );
    assert!(
        metric(
            &metrics,
            "caduceus_mapping_reloads_total",
            &[("result", "error")]
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "caduceus_mapped_total",
            &[("channel", "fhir"), ("outcome", "error")]
        ),
        Some(1.0)
    );
}

#[test]
fn check_names_an_unknown_mapping_in_a_step() {
    let setup = Setup::new(
        SERVER,
        &[(
            "fhir.yaml",
            &CHANNEL.replace("hl7v2-fhir-r4", "hl7v2-fhir-r5"),
        )],
    );
    let maps = setup.path().join("mappings");
    copy_mappings(&maps);
    let out = std::process::Command::new(BIN)
        .args(["--config"])
        .arg(setup.config())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("fhir.yaml:6:5: map: no mapping \"hl7v2-fhir-r5\"")
            && text.contains("did you mean \"hl7v2-fhir-r4\"?"),
        "{text}"
    );
}
