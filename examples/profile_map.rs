//! Loops one mapping for profiling: `perf record ./target/release/examples/profile_map FILE`.
fn main() {
    let reg = caduceus::mapping::Registry::load(std::path::Path::new("mappings")).unwrap();
    let file = std::env::args().nth(1).unwrap();
    let raw = std::fs::read(file).unwrap();
    let raw: Vec<u8> = raw.iter().map(|&b| if b == b'\n' { b'\r' } else { b }).collect();
    let opts = caduceus::mapping::RunOptions::default();
    let t = std::time::Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < 3.0 {
        std::hint::black_box(reg.run("hl7v2-fhir-r4", &raw, &opts).unwrap());
        n += 1;
    }
    println!("{:.0}/s", n as f64 / t.elapsed().as_secs_f64());
}
