//! Where a mapping run's time goes, part by part, on one message:
//! `cargo run --release --example map_costs -- fixtures/bench/adt_a01_1812b.hl7`.
//! (The headline figure with its baseline is `caduceus bench map`.)

/// As in the binary, so the parts add up to what `caduceus bench` measures.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let reg = caduceus::mapping::Registry::load(std::path::Path::new("mappings")).unwrap();
    let raw = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let raw: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect();
    let opts = caduceus::mapping::RunOptions {
        validate: false,
        ..Default::default()
    };
    let out = reg.run("hl7v2-fhir-r4", &raw, &opts).unwrap().value;
    let time = caduceus::bench::print_cost;
    time("run_json (no validate)", &mut || {
        std::hint::black_box(reg.run_json("hl7v2-fhir-r4", &raw, &opts, false).unwrap());
    });
    let checked = caduceus::mapping::RunOptions::default();
    time("run_json (validate)", &mut || {
        std::hint::black_box(
            reg.run_json("hl7v2-fhir-r4", &raw, &checked, false)
                .unwrap(),
        );
    });
    time("clone + canonicalize", &mut || {
        let mut v = out.clone();
        fhir::json::canonicalize(&mut v);
    });
    time("clone", &mut || {
        std::hint::black_box(out.clone());
    });
    time("validate", &mut || {
        std::hint::black_box(fhir::validate::validate(&out));
    });
    time("to_string", &mut || {
        std::hint::black_box(fhir::json::to_string(&out));
    });
    time("parse", &mut || {
        std::hint::black_box(hl7v2::Message::parse(&raw).unwrap().segment_count());
    });
}
