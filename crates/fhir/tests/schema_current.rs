//! The committed schema table is what the generator makes from the official
//! definitions. Runs where `../shared/fhir-r4` exists (CI); a clone without
//! it checks only that the table is complete.

use std::path::PathBuf;

#[test]
fn committed_table_matches_the_definitions() {
    let table = include_str!("../src/r4/schema.txt");
    assert_eq!(table.lines().filter(|l| l.starts_with('@')).count(), 212);
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fhir-r4");
    if !shared.exists() {
        eprintln!(
            "note: {} not present; generator output not re-checked",
            shared.display()
        );
        return;
    }
    let fresh = fhir::generate::generate(&shared).unwrap();
    assert!(
        fresh == table,
        "src/r4/schema.txt is stale: run `cargo run -p fhir --example generate_schema -- ../shared/fhir-r4`"
    );
}
