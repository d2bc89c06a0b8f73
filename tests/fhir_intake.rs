//! FHIR REST intake through the binary: partners by token, routing by
//! resource type, every refusal status with its OperationOutcome, what is
//! stored (and what is not), JSON and XML, idempotent repeats, the
//! CapabilityStatement, delivery and reprocess.

mod common;

use common::*;

const TOKEN_A: &str = "token-a";
const TOKEN_B: &str = "token-b";

fn setup() -> (Setup, Server) {
    let ehr = "name: ehr\nsource:\n  type: fhir\n  resources: [Patient, Bundle]\n  max_body_size: 4KiB\n  partners:\n    - name: ehr-a\n      token_sha256: a70bf50e531ce1a817561f2f5d5b6645d4e806becf58ccc5e8cf6b8045a090a8\ndestinations:\n  - name: out\n    type: file\n    directory: fhir-in\n    filename: \"{message_id}-{key}.{ext}\"\n";
    let lab = "name: lab\nsource:\n  type: fhir\n  resources: [Observation]\n  partners:\n    - name: lab-b\n      token_sha256: 49e2bb7eab54cf09b409ffafd3fa8a8a955a60eb972faacaefbed3dbd3207132\n";
    let setup = Setup::new(SERVER, &[("ehr.yaml", ehr), ("lab.yaml", lab)]);
    let server = Server::start(&setup);
    (setup, server)
}

fn post(
    server: &Server,
    path: &str,
    token: Option<&str>,
    ct: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> HttpResponse {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", ct)];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    headers.extend_from_slice(extra);
    http_request(server.http(), "POST", path, &headers, body.as_bytes())
}

const JSON: &str = "application/fhir+json";
const PATIENT: &str = r#"{"resourceType":"Patient","name":[{"family":"Everywoman","given":["Eve"]}],"gender":"female","birthDate":"1962-03-20"}"#;

fn count(server: &Server) -> usize {
    server
        .cli_ok(&["messages", "count"])
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn accepts_stores_and_delivers_a_patient() {
    let (setup, server) = setup();
    let r = post(&server, "/fhir/Patient", Some(TOKEN_A), JSON, PATIENT, &[]);
    assert_eq!(r.status, 202, "{}", r.body);
    let oo = r.json();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert_eq!(oo["issue"][0]["severity"], "information");
    let loc = r.header("content-location").unwrap().to_string();
    assert!(loc.starts_with("/api/messages/"), "{loc}");
    let id = loc.trim_start_matches("/api/messages/").to_string();
    assert!(
        oo["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(&format!("message {id}"))
    );

    let m = show(&server, &id);
    assert_eq!(m["format"], "fhir");
    assert_eq!(m["type"], "Patient");
    assert_eq!(m["sender"], "ehr-a");
    assert_eq!(
        server.cli_ok(&["messages", "show", &id, "--raw"]),
        PATIENT,
        "stored byte for byte"
    );
    let out = setup.data().join("fhir-in");
    server.wait_for(20, "the delivery file", || delivered(&out).len() == 1);
    let file = delivered(&out).remove(0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), PATIENT);
    assert!(
        file.extension().is_some_and(|e| e == "json"),
        "{}",
        file.display()
    );

    // Reprocess: validated again, delivered again.
    server.cli_ok(&["messages", "reprocess", &id]);
    server.wait_for(20, "the second delivery", || delivered(&out).len() == 2);
    assert_eq!(show(&server, &id)["state"], "processed");
}

/// Files written (not the writer's temporary dot-files).
fn delivered(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p: &std::path::PathBuf| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    v.sort();
    v
}

fn show(server: &Server, id: &str) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["messages", "show", id, "--json"])).unwrap()
}

#[test]
fn who_may_send_what() {
    let (_s, server) = setup();
    // No token, an unknown token: 401 with a challenge.
    let r = post(&server, "/fhir/Patient", None, JSON, PATIENT, &[]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(r.json()["issue"][0]["code"], "login");
    assert_eq!(
        post(&server, "/fhir/Patient", Some("nope"), JSON, PATIENT, &[]).status,
        401
    );
    // The lab's partner on the EHR channel, and the EHR's partner on the lab channel: 403.
    let r = post(&server, "/fhir/Patient", Some(TOKEN_B), JSON, PATIENT, &[]);
    assert_eq!(r.status, 403, "{}", r.body);
    let obs = r#"{"resourceType":"Observation","status":"final","code":{"text":"x"}}"#;
    assert_eq!(
        post(&server, "/fhir/Observation", Some(TOKEN_A), JSON, obs, &[]).status,
        403
    );
    assert_eq!(
        post(&server, "/fhir/Observation", Some(TOKEN_B), JSON, obs, &[]).status,
        202
    );
    // A type no channel takes, and a name that is no resource: 404.
    let r = post(
        &server,
        "/fhir/Medication",
        Some(TOKEN_A),
        JSON,
        r#"{"resourceType":"Medication"}"#,
        &[],
    );
    assert_eq!(r.status, 404);
    assert!(
        r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("no channel here takes Medication")
    );
    assert_eq!(
        post(&server, "/fhir/Patients", Some(TOKEN_A), JSON, PATIENT, &[]).status,
        404
    );
    assert_eq!(count(&server), 1, "only the accepted Observation is stored");
}

#[test]
fn refusals_carry_an_operation_outcome_and_keep_what_was_sent() {
    let (_s, server) = setup();
    // 415 and 413 store nothing.
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        "text/plain",
        PATIENT,
        &[],
    );
    assert_eq!(r.status, 415);
    let big = format!(
        r#"{{"resourceType":"Patient","id":"{}"}}"#,
        "x".repeat(5000)
    );
    let r = post(&server, "/fhir/Patient", Some(TOKEN_A), JSON, &big, &[]);
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["issue"][0]["code"], "too-costly");
    assert_eq!(count(&server), 0);

    // 400: not JSON; not the route's type; an update whose id differs.
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        "{\"resourceType\": \"Patient\",",
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .starts_with("not valid JSON")
    );
    // A key twice in one object: plain JSON parsing would keep the second
    // and drop the first without a word.
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        r#"{"resourceType":"Patient","gender":"male","gender":"female"}"#,
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.json()["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("\"gender\" appears twice"),
        "{}",
        r.body
    );
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        r#"{"resourceType":"Bundle","type":"batch"}"#,
        &[],
    );
    assert_eq!(r.status, 400);
    let auth = format!("Bearer {TOKEN_A}");
    let r = http_request(
        server.http(),
        "PUT",
        "/fhir/Patient/p1",
        &[("Content-Type", JSON), ("Authorization", &auth)],
        br#"{"resourceType":"Patient","id":"p2"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);

    // 422: parseable, not valid R4; where and why.
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        r#"{"resourceType":"Patient","text":{"status":"generated","div":"<p>no div</p>"},"gender":"f","birthDate":"1962-13-01","nmae":[]}"#,
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let oo = r.json();
    let places: Vec<&str> = oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["expression"][0].as_str())
        .collect();
    assert!(
        places.contains(&"Patient.gender")
            && places.contains(&"Patient.birthDate")
            && places.contains(&"Patient.nmae")
            && places.contains(&"Patient.text.div"),
        "{places:?}"
    );

    // Each refused body is stored as `error`, byte for byte.
    let list = server.messages();
    assert_eq!(list.len(), 5);
    assert!(
        list.iter()
            .all(|m| m["state"] == "error" && m["format"] == "fhir")
    );
    let e = list
        .iter()
        .find(|m| m["error"].as_str().unwrap_or("").starts_with("422"))
        .unwrap();
    assert!(e["error"].as_str().unwrap().contains("Patient.gender"));
}

#[test]
fn xml_in_and_out() {
    let (_s, server) = setup();
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="Everywoman"/></name><gender value="female"/></Patient>"#;
    let r = post(
        &server,
        "/fhir/Patient?_format=xml",
        Some(TOKEN_A),
        "application/fhir+xml",
        xml,
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/fhir+xml")
    );
    assert!(
        r.body
            .contains("<OperationOutcome xmlns=\"http://hl7.org/fhir\">"),
        "{}",
        r.body
    );
    // An invalid XML body: 422, answered in XML because it was sent in XML.
    let bad = r#"<Patient xmlns="http://hl7.org/fhir"><gender value="f"/></Patient>"#;
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        "application/fhir+xml",
        bad,
        &[],
    );
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("<expression value=\"Patient.gender\"/>"),
        "{}",
        r.body
    );
    // A narrative in XML is XHTML in its own namespace: a plain one is
    // accepted, one with active content is refused where it is (txt-1).
    let narrative = |div: &str| {
        format!(
            r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/>{div}</text><gender value="female"/></Patient>"#
        )
    };
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        "application/fhir+xml",
        &narrative(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Jane <b>Doe</b></p></div>"#),
        &[],
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        "application/fhir+xml",
        &narrative(
            r#"<div xmlns="http://www.w3.org/1999/xhtml"><p onclick="steal()">Jane</p></div>"#,
        ),
        &[],
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("<expression value=\"Patient.text.div\"/>") && r.body.contains("onclick"),
        "{}",
        r.body
    );
}

#[test]
fn a_repeated_request_gets_the_first_answer() {
    let (_s, server) = setup();
    let key = [("Idempotency-Key", "order-42")];
    let a = post(&server, "/fhir/Patient", Some(TOKEN_A), JSON, PATIENT, &key);
    let b = post(&server, "/fhir/Patient", Some(TOKEN_A), JSON, PATIENT, &key);
    assert_eq!((a.status, b.status), (202, 202));
    assert_eq!(a.header("content-location"), b.header("content-location"));
    assert!(b.body.contains("already accepted"), "{}", b.body);
    // A transaction Bundle is keyed by its id.
    let bundle = r#"{"resourceType":"Bundle","id":"tx-1","type":"transaction","entry":[{"fullUrl":"urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0","resource":{"resourceType":"Patient","gender":"male"},"request":{"method":"POST","url":"Patient"}}]}"#;
    let c = post(&server, "/fhir", Some(TOKEN_A), JSON, bundle, &[]);
    let d = post(&server, "/fhir", Some(TOKEN_A), JSON, bundle, &[]);
    assert_eq!((c.status, d.status), (202, 202), "{}", c.body);
    assert_eq!(c.header("content-location"), d.header("content-location"));
    assert_eq!(count(&server), 2, "one message per distinct request");
    let m = server.messages();
    assert!(
        m.iter()
            .any(|m| m["type"] == "Bundle:transaction" && m["control_id"] == "tx-1")
    );
    // A transaction whose reference goes nowhere is refused.
    let dangling = bundle.replace("\"gender\":\"male\"", "\"gender\":\"male\",\"link\":[{\"other\":{\"reference\":\"urn:uuid:9a0b6b5e-0000-4000-8000-000000000000\"},\"type\":\"seealso\"}]").replace("tx-1", "tx-2");
    let r = post(&server, "/fhir", Some(TOKEN_A), JSON, &dangling, &[]);
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("does not resolve"), "{}", r.body);
}

#[test]
fn capability_statement_says_what_is_accepted() {
    let (_s, server) = setup();
    let (status, body) = server.http_get("/fhir/metadata");
    assert_eq!(status, 200);
    let cs: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let types: Vec<&str> = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Observation", "Patient"]);
    assert_eq!(cs["rest"][0]["operation"][0]["name"], "process-message");
    // It is itself valid R4.
    let issues = fhir::validate::validate(&cs);
    assert!(!fhir::validate::has_errors(&issues), "{issues:?}");
}

#[test]
fn check_names_bad_fhir_channel_settings() {
    let bad = "name: ehr\nsource:\n  type: fhir\n  resources: [Patient, Patients]\n  partners:\n    - name: a\n      token_sha256: abc\n";
    let open = "name: open\nsource:\n  type: fhir\n";
    let setup = Setup::new(SERVER, &[("ehr.yaml", bad), ("open.yaml", open)]);
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(setup.config())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ehr.yaml: source.partners: \"a\": token_sha256 must be 64 hex digits"),
        "{text}"
    );
    assert!(
        text.contains("ehr.yaml: source.resources: \"Patients\" is not a FHIR R4 resource type"),
        "{text}"
    );
    assert!(
        text.contains("open.yaml: source.partners: list who may call this channel"),
        "{text}"
    );
}

#[test]
fn over_the_rate_limit_is_429_with_retry_after() {
    let ch = "name: slow\nsource:\n  type: fhir\n  allow_anonymous: true\n  rate_limit: { per_minute: 2, burst: 2 }\n";
    let setup = Setup::new(SERVER, &[("slow.yaml", ch)]);
    let server = Server::start(&setup);
    let statuses: Vec<(u16, Option<String>)> = (0..5)
        .map(|_| {
            let r = post(&server, "/fhir/Patient", None, JSON, PATIENT, &[]);
            (r.status, r.header("retry-after").map(String::from))
        })
        .collect();
    let accepted = statuses.iter().filter(|(s, _)| *s == 202).count();
    assert!(accepted <= 2, "{statuses:?}");
    let throttled: Vec<_> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(throttled.len() >= 3, "{statuses:?}");
    assert!(
        throttled.iter().all(|(_, ra)| ra
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| (1..=30).contains(&s))),
        "{statuses:?}"
    );
    assert_eq!(
        count(&server),
        accepted,
        "a throttled request stores nothing"
    );
}

#[test]
fn hostile_bodies_get_400_and_the_server_stays_up() {
    let (_s, server) = setup();
    let n = 50_000;
    let xml = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
        "<extension url=\"x\">".repeat(n),
        "</extension>".repeat(n)
    );
    let json = format!(
        "{{\"resourceType\":\"Patient\",\"extension\":{}[]{}}}",
        "[{\"url\":\"x\",\"extension\":".repeat(n),
        "}]".repeat(n)
    );
    // Over 4 KiB: this channel's limit answers first.
    assert_eq!(
        post(
            &server,
            "/fhir/Patient",
            Some(TOKEN_A),
            "application/fhir+xml",
            &xml,
            &[]
        )
        .status,
        413
    );
    let ch = "name: big\nsource:\n  type: fhir\n  allow_anonymous: true\n  resources: [Patient]\n";
    let setup2 = Setup::new(SERVER, &[("big.yaml", ch)]);
    let big = Server::start(&setup2);
    let r = post(
        &big,
        "/fhir/Patient",
        None,
        "application/fhir+xml",
        &xml,
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("nest more than"), "{}", r.body);
    let r = post(&big, "/fhir/Patient", None, JSON, &json, &[]);
    assert_eq!(r.status, 400, "{}", r.body);
    // Just under serde_json's own limit: validated (and refused: an
    // extension needs a value or extensions), not a crash.
    let deep = format!(
        "{{\"resourceType\":\"Patient\",\"extension\":{}[]{}}}",
        "[{\"url\":\"x\",\"extension\":".repeat(60),
        "}]".repeat(60)
    );
    let r = post(&big, "/fhir/Patient", None, JSON, &deep, &[]);
    assert!(
        r.status == 422 || r.status == 202,
        "{} {}",
        r.status,
        r.body
    );
    assert_eq!(big.http_get("/healthz").0, 200, "still serving");
}

#[test]
fn prefer_chooses_the_answer_and_the_status_route_follows_the_message() {
    let (setup, server) = setup();
    // return=minimal: an empty 202 that still says where the message is.
    let pref = |p: &'static str| [("Prefer", p)];
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        PATIENT,
        &pref("return=minimal"),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.body, "");
    assert!(r.header("content-location").is_some());
    // return=representation: the resource as accepted, in the answer's syntax.
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        PATIENT,
        &pref("respond-async, return=representation"),
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.body, PATIENT);
    let r = post(
        &server,
        "/fhir/Patient?_format=xml",
        Some(TOKEN_A),
        JSON,
        PATIENT,
        &pref("return=representation"),
    );
    assert_eq!(r.status, 202);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/fhir+xml")
    );
    assert!(
        r.body.contains("<Patient xmlns=\"http://hl7.org/fhir\">")
            && r.body.contains("<family value=\"Everywoman\"/>"),
        "{}",
        r.body
    );
    // return=OperationOutcome (the default, also when asked for).
    let r = post(
        &server,
        "/fhir/Patient",
        Some(TOKEN_A),
        JSON,
        PATIENT,
        &pref("return=OperationOutcome"),
    );
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let loc = r.header("content-location").unwrap().to_string();

    // The Content-Location answers the partner that sent it ...
    let get = |path: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        http_request(server.http(), "GET", path, &headers, b"")
    };
    let out = setup.data().join("fhir-in");
    server.wait_for(20, "four deliveries", || delivered(&out).len() == 4);
    let r = get(&loc, Some(TOKEN_A));
    assert_eq!(r.status, 200, "{}", r.body);
    let m = r.json();
    assert_eq!(m["state"], "processed");
    assert_eq!(m["channel"], "ehr");
    assert_eq!(m["sender"], "ehr-a");
    assert!(m["deliveries"][0]["destination"] == "out", "{m}");
    assert!(
        m.get("raw").is_none() && !r.body.contains("Everywoman"),
        "no content: {}",
        r.body
    );
    // ... and nobody else: another partner and an unknown id are both 404,
    // no credentials 401.
    assert_eq!(get(&loc, Some(TOKEN_B)).status, 404);
    assert_eq!(get("/api/messages/999999", Some(TOKEN_A)).status, 404);
    assert_eq!(get("/api/messages/x", Some(TOKEN_A)).status, 404);
    let r = get(&loc, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    assert_eq!(get(&loc, Some("wrong")).status, 401);
}

#[test]
fn other_methods_and_paths_get_an_operation_outcome() {
    let (_s, server) = setup();
    let call = |method: &str, path: &str| {
        http_request(
            server.http(),
            method,
            path,
            &[("Authorization", "Bearer token-a")],
            b"",
        )
    };
    // Reads, searches and deletes belong to the FHIR server behind the gateway.
    for (method, path, allow) in [
        ("GET", "/fhir/Patient/1", "PUT"),
        ("DELETE", "/fhir/Patient", "POST"),
        ("GET", "/fhir", "POST"),
        ("POST", "/fhir/metadata", "GET"),
    ] {
        let r = call(method, path);
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(r.json()["resourceType"], "OperationOutcome");
    }
    // A URL that does not decode: 400 with an OperationOutcome, not axum's text.
    let r = http_request(
        server.http(),
        "PUT",
        "/fhir/Patient/%FF",
        &[("Authorization", "Bearer token-a"), ("Content-Type", JSON)],
        PATIENT.as_bytes(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["resourceType"], "OperationOutcome");
    let r = call("GET", "/fhir/Patient/1/_history/2");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["issue"][0]["code"], "not-found");
    // Outside /fhir, nothing changes.
    assert_eq!(call("GET", "/healthz").status, 200);
    assert_eq!(call("GET", "/nowhere").status, 404);
}
