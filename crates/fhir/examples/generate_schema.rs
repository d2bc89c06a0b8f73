//! Regenerates `src/r4/schema.txt` from the official R4 definitions.
//!
//! `cargo run -p fhir --example generate_schema -- ../shared/fhir-r4`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1).map(PathBuf::from) else {
        eprintln!(
            "usage: generate_schema <folder with structure-definitions/ and fhir.schema.json>"
        );
        return ExitCode::from(2);
    };
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/r4/schema.txt");
    match fhir::generate::generate(&dir) {
        Ok(table) => match std::fs::write(&out, table) {
            Ok(()) => {
                println!("wrote {}", out.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", out.display());
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
