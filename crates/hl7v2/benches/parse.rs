//! Parse the 1,812-byte ADT^A01 load-test message, read PID-5.1 and every
//! OBX-5. Target: ≥ 500,000 messages/s on one core.
//!
//! `cargo bench -p hl7v2 --bench parse`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hl7v2::{Message, Path};

fn parse_and_read(c: &mut Criterion) {
    let raw = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/bench/adt_a01_1812b.hl7"
    ))
    .expect("fixtures/bench/adt_a01_1812b.hl7");
    let family: Path = "PID-5.1".parse().expect("path");
    let results: Path = "OBX[*]-5".parse().expect("path");
    let mut g = c.benchmark_group("hl7v2");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse+PID-5.1+OBX[*]-5", |b| {
        b.iter(|| {
            let msg = Message::parse(black_box(&raw)).expect("parses");
            let name = msg.text(&family);
            let mut n = 0usize;
            msg.for_each_value(&results, |v| n += v.text().len());
            black_box((name, n));
        })
    });
    g.bench_function("parse only", |b| {
        b.iter(|| black_box(Message::parse(black_box(&raw)).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, parse_and_read);
criterion_main!(benches);
