//! Where a FHIR intake request's CPU goes, part by part:
//! `cargo run --release --example intake_costs -- fixtures/bench/patient_encounter_bundle.json`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let body = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let time = caduceus::bench::print_cost;
    time("parse (serde_json::Value)", &mut || {
        std::hint::black_box(fhir::json::parse(&body).unwrap());
    });
    time("parse (fhir::tree)", &mut || {
        std::hint::black_box(fhir::tree::Json::parse(&body).unwrap());
    });
    let t = fhir::tree::Json::parse(&body).unwrap();
    time("validate (tree)", &mut || {
        std::hint::black_box(fhir::validate::validate_tree(&t));
    });
    let policy = caduceus::connectors::fhir::intake::FhirPolicy {
        channel: "c".into(),
        resources: vec![],
        destinations: vec![],
    };
    let route = caduceus::connectors::fhir::intake::Route::Bundle;
    time("assess (parse + checks + validate)", &mut || {
        std::hint::black_box(
            policy
                .assess(
                    &body,
                    caduceus::connectors::fhir::intake::Syntax::Json,
                    &route,
                )
                .is_ok(),
        );
    });
}
