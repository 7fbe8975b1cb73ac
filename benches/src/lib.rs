//! Criterion benchmarks for the qstack workspace live in `benches/benches/`; this library
//! holds nothing but shared helpers for them.

/// The environment variable that makes the `vs_torch_*` binaries pin their pools' workers
/// (`1`), see [`bench_pool`].
pub const PIN_ENV: &str = "QSTACK_BENCH_PIN";

/// The rayon pool a `vs_torch_*` binary times a thread count in: `threads` workers, pinned one
/// per CPU ([`qkernels::pin::pinned_pool`]) when [`PIN_ENV`] is `1`, else a plain pool.
pub fn bench_pool(threads: usize) -> Result<rayon::ThreadPool, String> {
    let pinned = std::env::var(PIN_ENV).is_ok_and(|v| v == "1");
    let pool = if pinned {
        qkernels::pin::pinned_pool(threads)
    } else {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build()
    };
    pool.map_err(|e| format!("cannot build a rayon pool of {threads} threads: {e}"))
}
