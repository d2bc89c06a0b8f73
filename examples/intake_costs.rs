//! Where a FHIR intake request's CPU goes, part by part:
//! `cargo run --release --example intake_costs -- fixtures/bench/patient_encounter_bundle.json`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let body = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let time = |name: &str, f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        let mut n = 0;
        while t.elapsed().as_secs_f64() < 1.0 {
            f();
            n += 1;
        }
        println!(
            "{name}: {:.1} µs",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    };
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
