//! The `fanout` binary: the command line is [`cli`].

mod cli;

/// mimalloc instead of the system allocator: an ingest answer allocates
/// and frees many small buffers on several threads (see
/// docs/benchmarks.md, "ingest"), which glibc's allocator serves slower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
