//! Where a FHIR intake request's CPU goes, part by part:
//! `cargo run --release --example intake_costs -- fixtures/bench/patient_encounter_bundle.json`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let body = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let time = caduceus::bench::print_cost;
    let v = fhir::json::parse(&body).unwrap();
    time("parse", &mut || {
        std::hint::black_box(fhir::json::parse(&body).unwrap());
    });
    time("validate", &mut || {
        std::hint::black_box(fhir::validate::validate(&v));
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
