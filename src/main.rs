//! The `caduceus` binary: the command line's edge.

use std::process::ExitCode;

/// mimalloc rather than the system allocator: mapping and FHIR intake build
/// many small JSON trees, and glibc's malloc/free was a fifth of their time
/// (`caduceus bench map`, `caduceus bench fhir`; figures in the README).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match caduceus::cli::run() {
        Ok(code) => code,
        // A closed pipe (`caduceus messages list | head`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("caduceus: {e:#}");
            ExitCode::from(2)
        }
    }
}
