//! The benchmark commands work end to end on a tiny load (their figures are
//! measured by hand, never asserted here): each checks every answer and
//! exits 0 only when all were accepted.

mod common;

use common::*;

#[test]
fn bench_map_reports_mapping_and_compile_figures() {
    let out = caduceus(&["bench", "map", "--seconds", "0.05", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    assert!(v["messages"][0]["rate"].as_f64().unwrap() > 0.0);
    assert!(v["messages"][0]["baseline_rate"].as_f64().unwrap() > 0.0);
    assert!(v["compile"]["mappings"].as_u64().unwrap() >= 30);
}

#[test]
fn bench_mllp_and_bench_fhir_load_a_server_and_a_baseline() {
    let fhir = "name: fhir\nsource:\n  type: fhir\n  resources: [Bundle]\n  partners:\n    - name: bench\n      token_sha256: 1b32c28cb38c05480eccc1bd60ff97029b57a05c96718b96dad7e9d84894f549\n";
    let mllp = "name: intake\nsource:\n  type: mllp\n  listen: mllp\n";
    let setup = Setup::new(SERVER, &[("fhir.yaml", fhir), ("intake.yaml", mllp)]);
    let server = Server::start(&setup);

    let out = caduceus(&[
        "bench",
        "fhir",
        "--to",
        &server.http().to_string(),
        "--token",
        "bench",
        "--conns",
        "2",
        "--requests",
        "40",
        "--baseline",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["caduceus"]["ok"], 40);
    assert_eq!(v["baseline"]["ok"], 40);
    // The stored baseline answers only after its own durable commit.
    assert_eq!(v["baseline_stored"]["ok"], 40);
    assert!(v["ratio_stored"].as_f64().is_some_and(|r| r > 0.0), "{v}");
    assert_eq!(
        server
            .cli_ok(&["messages", "count", "--channel", "fhir"])
            .trim(),
        "40",
        "every request stored"
    );

    let out = caduceus(&[
        "bench",
        "mllp",
        "--to",
        &server.mllp().to_string(),
        "--conns",
        "2",
        "--window",
        "2",
        "--messages",
        "40",
        "--baseline",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["caduceus"]["errors"], 0);
    assert_eq!(
        server
            .cli_ok(&["messages", "count", "--channel", "intake"])
            .trim(),
        "40"
    );
}
