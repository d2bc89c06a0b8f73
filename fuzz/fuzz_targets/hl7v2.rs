//! `cargo +nightly fuzz run hl7v2` (needs a nightly toolchain and cargo-fuzz).
//! The same body runs as property tests in `cargo test -p hl7v2` on stable.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hl7v2::fuzzing::check(data);
});
