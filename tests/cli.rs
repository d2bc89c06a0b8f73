//! The command line through the binary: check, messages list/count/show/
//! reprocess with their exact output contracts, and the serve lifecycle
//! (refuses a bad config, one serve per data directory, clean SIGTERM,
//! private data directory).

mod common;

use std::process::Command;

use common::*;

#[test]
fn check_reports_file_line_and_column() {
    let ok = Command::new(BIN)
        .current_dir(repo())
        .arg("check")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("ok: config/caduceus.yaml"));

    let bad = "name: bad\nsource:\n  type: mllp\n  listen: mllp\nfilters:\n  - field: PID-0\n    equals: x\ndestinations:\n  - name: f\n    type: file\n    directory: out\n    filename: \"{nope}\"\n    timout: 3s\n";
    let setup = Setup::new(SERVER, &[("bad.yaml", bad)]);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(setup.config())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bad.yaml:13:5: unknown field `timout`"),
        "{text}"
    );

    let bad = "name: bad\nsource:\n  type: mllp\n  listen: mllp\nfilters:\n  - field: PID-0\n    equals: x\ndestinations:\n  - name: f\n    type: file\n    directory: out\n    filename: \"{nope}\"\n";
    let setup = Setup::new(SERVER, &[("bad.yaml", bad)]);
    let out = Command::new(BIN)
        .arg("--config")
        .arg(setup.config())
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("bad.yaml:6:5: field: invalid HL7 path \"PID-0\" at column 5"),
        "{text}"
    );
    assert!(
        text.contains("destination \"f\": filename \"{nope}\": unknown placeholder {nope}"),
        "{text}"
    );

    // serve refuses to start on the same config.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(setup.config())
        .arg("--data-dir")
        .arg(setup.data())
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.yaml:6:5"));
    assert!(
        !setup.data().join("caduceus.db").exists(),
        "nothing is created when the config is bad"
    );
}

#[test]
fn messages_list_count_show_and_reprocess() {
    let setup = Setup::default_config();
    let server = Server::start_with(&setup, &["--listen", "mllp=127.0.0.1:0"]);
    let mut c = Mllp::connect(server.mllp());
    let mut burst = Vec::new();
    for i in 0..105 {
        burst.extend(frame(&adt(&format!("LIST-{i:03}"))));
    }
    c.send_raw(&burst);
    for _ in 0..105 {
        c.read().unwrap();
    }
    let oru = String::from_utf8(adt("ORU-X"))
        .unwrap()
        .replace("ADT^A01^ADT_A01", "ORU^R01^ORU_R01");
    c.request(oru.as_bytes());
    c.request(b"not hl7");

    // Newest 100 by default; --all for every one.
    let table = server.cli_ok(&["messages", "list"]);
    assert_eq!(table.lines().count(), 101, "header + 100 rows");
    assert!(table.lines().next().unwrap().starts_with("ID  "));
    assert_eq!(
        server
            .cli_ok(&["messages", "list", "--all"])
            .lines()
            .count(),
        108
    );

    // NDJSON with exactly the documented keys and types.
    let json = server.cli_ok(&["messages", "list", "--json"]);
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "channel",
            "received_at",
            "format",
            "type",
            "control_id",
            "state",
            "error"
        ],
        "the documented keys, in the documented order"
    );
    assert!(first["id"].is_string());
    assert_eq!(first["state"], "error");
    assert!(first["control_id"].is_null());
    assert!(first["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(json.lines().count(), 100);

    // count: a bare integer, with filters.
    assert_eq!(server.cli_ok(&["messages", "count"]), "107\n");
    assert_eq!(
        server.cli_ok(&["messages", "count", "--type", "ADT^A0*"]),
        "105\n"
    );
    assert_eq!(
        server.cli_ok(&["messages", "count", "--state", "error"]),
        "1\n"
    );
    assert_eq!(
        server.cli_ok(&["messages", "count", "--control-id", "LIST-007"]),
        "1\n"
    );
    assert_eq!(
        server.cli_ok(&["messages", "count", "--since", "1h", "--channel", "hl7-in"]),
        "107\n"
    );
    assert_eq!(
        server.cli_ok(&["messages", "count", "--channel", "nope"]),
        "0\n"
    );
    let bad = server.cli(&["messages", "count", "--state", "sideways"]);
    assert!(!bad.status.success());

    // show --raw: the bytes exactly; show: deliveries and history.
    let raw = server.cli(&["messages", "show", "1", "--raw"]);
    assert_eq!(raw.stdout, adt("LIST-000"));
    server.wait_for(10, "message 1 delivered", || {
        server
            .cli_ok(&["messages", "show", "1"])
            .contains("archive  sent")
    });
    let shown = server.cli_ok(&["messages", "show", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["deliveries"][0]["idempotency_key"], "1-archive");
    assert_eq!(
        server.cli(&["messages", "show", "9999"]).status.code(),
        Some(1)
    );

    // reprocess: a new generation with a new key, delivered again.
    let out = server.cli_ok(&["messages", "reprocess", "1"]);
    assert_eq!(out, "queued 1 message(s) for reprocessing\n");
    server.wait_for(15, "the reprocessed delivery", || {
        server.data.join("out/1-archive-r2.hl7").exists()
    });
    let v: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["messages", "show", "1", "--json"])).unwrap();
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 2);
    assert_eq!(v["deliveries"][1]["idempotency_key"], "1-archive-r2");
    assert!(
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"].as_str().unwrap_or("").starts_with("reprocess"))
    );
    // Reprocessing by filter; without ids or filters it refuses.
    assert_eq!(
        server.cli_ok(&["messages", "reprocess", "--state", "error"]),
        "queued 1 message(s) for reprocessing\n"
    );
    assert!(!server.cli(&["messages", "reprocess"]).status.success());
}

#[test]
fn serve_lifecycle() {
    let setup = Setup::default_config();
    let mut server = Server::start_with(&setup, &["--listen", "mllp=127.0.0.1:0"]);
    let (code, body) = server.http_get("/readyz");
    assert_eq!((code, body.as_str()), (200, "ready\n"));
    assert_eq!(server.http_get("/healthz").0, 200);
    // A second serve on the same data directory refuses.
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&server.data)
        .args(["serve", "--listen", "http=127.0.0.1:0,mllp=127.0.0.1:0"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another `caduceus serve` is using"));
    // The data directory is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&server.data), 0o700);
        assert_eq!(mode(&server.data.join("caduceus.db")), 0o600);
    }
    // SIGTERM: a clean exit.
    let mut c = Mllp::connect(server.mllp());
    c.request(&adt("BEFORE-TERM"));
    let status = server.terminate();
    assert!(status.success(), "{status}");
    assert!(server.log_text().contains("stopped"));
}

#[test]
fn fhir_validate_says_what_the_intake_would() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Patient","gender":"female"},"request":{"method":"POST","url":"Patient"}}]}"#,
    )
    .unwrap();
    let bad = dir.path().join("bad.xml");
    std::fs::write(
        &bad,
        r#"<Patient xmlns="http://hl7.org/fhir"><gender value="f"/><birthDate value="1980-13-01"/></Patient>"#,
    )
    .unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"resourceType\": ").unwrap();

    // Valid (the missing fullUrl is only a warning): exit 0.
    let out = caduceus(&["fhir", "validate", good.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no fullUrl") && text.contains("(warning)"),
        "{text}"
    );
    // Invalid XML and unparseable JSON: every problem with its place, exit 1.
    let out = caduceus(&[
        "fhir",
        "validate",
        bad.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bad.xml: Patient.gender:"), "{text}");
    assert!(text.contains("bad.xml: Patient.birthDate:"), "{text}");
    assert!(
        text.contains("broken.json: not valid JSON") && text.contains("line 1 column 17"),
        "{text}"
    );
    // --json: an OperationOutcome per file.
    let out = caduceus(&["fhir", "validate", "--json", bad.to_str().unwrap()]);
    let oo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["severity"], "error");
}
