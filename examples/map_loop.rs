//! A profiling loop: map one message over and over for a few seconds, for
//! `perf record -g -- target/release/examples/map_loop FILE`.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let reg = caduceus::mapping::Registry::load(std::path::Path::new("mappings")).unwrap();
    let raw = std::fs::read(std::env::args().nth(1).unwrap()).unwrap();
    let raw: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect();
    let opts = caduceus::mapping::RunOptions::default();
    // `N=2000`: a fixed number of runs (for `perf stat -e instructions`,
    // which counts the same on a busy machine); else four seconds.
    let fixed: Option<u64> = std::env::var("N").ok().and_then(|n| n.parse().ok());
    let t = std::time::Instant::now();
    let mut n = 0u64;
    while fixed.map_or(t.elapsed().as_secs_f64() < 4.0, |f| n < f) {
        let json = reg.run_json("hl7v2-fhir-r4", &raw, &opts, false).unwrap();
        std::hint::black_box(json);
        n += 1;
    }
    println!("{:.1} µs each", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
