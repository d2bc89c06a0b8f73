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
    let unchecked = caduceus::mapping::RunOptions {
        validate: false,
        ..Default::default()
    };
    let checked = caduceus::mapping::RunOptions::default();
    let time = caduceus::bench::print_cost;
    time("run_json (map + validate + JSON)", &mut || {
        std::hint::black_box(
            reg.run_json("hl7v2-fhir-r4", &raw, &checked, false)
                .unwrap(),
        );
    });
    time("run_json without validation", &mut || {
        std::hint::black_box(
            reg.run_json("hl7v2-fhir-r4", &raw, &unchecked, false)
                .unwrap(),
        );
    });
    // The result as the runtime holds it (every member with its schema
    // place), to time its parts alone.
    let json = reg
        .run_json("hl7v2-fhir-r4", &raw, &unchecked, false)
        .unwrap();
    let mut tree = fhir::tree::Json::parse(json.json.as_bytes()).unwrap();
    tree.canonicalize();
    time("validate the Bundle", &mut || {
        std::hint::black_box(fhir::validate::validate_tree(&tree));
    });
    time("write the Bundle as JSON", &mut || {
        std::hint::black_box(tree.to_json_string());
    });
    time("parse the message", &mut || {
        std::hint::black_box(hl7v2::Message::parse(&raw).unwrap().segment_count());
    });
    time("parse and split the message", &mut || {
        let m = hl7v2::Message::parse(&raw).unwrap();
        std::hint::black_box(hl7v2::split::Split::new(&m).segment_count());
    });
}
