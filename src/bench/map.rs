//! `caduceus bench map`: how fast mappings run and compile, on one core,
//! with a baseline measured in the same run.
//!
//! Owns the measuring loops. The mapped figure is what a channel's `map`
//! step does per message: parse, run the mapping, validate the Bundle,
//! serialize it to JSON. The baseline is the floor any converter pays for
//! the same input and output: parse the message and serialize the same
//! Bundle with `serde_json` (no mapping, no validation). Compile time is
//! `Registry::load` of the whole folder; its baseline is reading every
//! file in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::mapping::{Registry, RunOptions};

/// One message's figures.
#[derive(Debug, Serialize)]
pub struct MapFigure {
    /// The input file.
    pub file: String,
    /// Its size.
    pub bytes: usize,
    /// Resources in the Bundle.
    pub resources: usize,
    /// Messages per second mapped (parse + map + validate + JSON).
    pub rate: f64,
    /// Messages per second for the baseline (parse + JSON of the same Bundle).
    pub baseline_rate: f64,
    /// Mean time per message, microseconds.
    pub micros: f64,
}

/// Compile figures.
#[derive(Debug, Serialize)]
pub struct CompileFigure {
    /// Mappings compiled.
    pub mappings: usize,
    /// Median of the runs, milliseconds.
    pub median_ms: f64,
    /// Fastest run, milliseconds.
    pub min_ms: f64,
    /// Median time to read every file of the folder, milliseconds.
    pub read_ms: f64,
}

/// Runs `f` for about `for_` (after a short warm-up); returns calls per second.
pub(crate) fn rate(for_: Duration, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let warm = Instant::now();
    let mut sink = 0usize;
    while warm.elapsed() < for_ / 10 {
        sink = sink.wrapping_add(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < for_ {
        for _ in 0..16 {
            sink = sink.wrapping_add(f());
        }
        n += 16;
    }
    (n as f64 / start.elapsed().as_secs_f64(), sink)
}

/// Measures one message file.
pub fn measure_message(
    registry: &Registry,
    mapping: &str,
    file: &Path,
    seconds: f64,
) -> Result<MapFigure, String> {
    let raw = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let raw = crate::connectors::mllp::destination::for_wire(&raw).into_owned();
    let opts = RunOptions::default();
    let first = registry
        .run(mapping, &raw, &opts)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let resources = first.value["entry"].as_array().map(Vec::len).unwrap_or(0);
    let d = Duration::from_secs_f64(seconds);
    let (mapped, _) = rate(d, || match registry.run_json(mapping, &raw, &opts, false) {
        Ok(out) => out.json.len(),
        Err(_) => 0,
    });
    let bundle = first.value;
    let (base, _) = rate(d, || {
        let parsed = hl7v2::Message::parse(&raw)
            .map(|m| m.segment_count())
            .unwrap_or(0);
        parsed + serde_json::to_string(&bundle).map(|s| s.len()).unwrap_or(0)
    });
    Ok(MapFigure {
        file: file.display().to_string(),
        bytes: raw.len(),
        resources,
        rate: mapped,
        baseline_rate: base,
        micros: 1e6 / mapped,
    })
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "tests") {
                    files(&p, out);
                }
            } else {
                out.push(p);
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Measures compiling the whole folder `runs` times.
pub fn measure_compile(dir: &Path, runs: usize) -> Result<CompileFigure, String> {
    let mut times = Vec::new();
    let mut reads = Vec::new();
    let mut mappings = 0;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let mut all = Vec::new();
        files(dir, &mut all);
        let bytes: usize = all
            .iter()
            .map(|p| std::fs::read(p).map(|b| b.len()).unwrap_or(0))
            .sum();
        std::hint::black_box(bytes);
        reads.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let r = Registry::load(dir).map_err(|e| {
            e.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        mappings = r.mappings.len();
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    Ok(CompileFigure {
        mappings,
        median_ms: median(times),
        min_ms: min,
        read_ms: median(reads),
    })
}
