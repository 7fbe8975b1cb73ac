//! Criterion benchmarks for the qstack workspace live in `benches/benches/`; this library
//! holds nothing but shared helpers for them.

/// The environment variable that makes the `vs_torch_*` binaries pin their pools' workers
/// (`1`), see [`bench_pool`].
pub const PIN_ENV: &str = "QSTACK_BENCH_PIN";

/// The rayon pool a `vs_torch_*` binary times a thread count in: `threads` workers, pinned one
/// per CPU ([`qkernels::pin::pinned_pool`]) when [`PIN_ENV`] is `1`, else a plain pool. It is
/// built on the first request for that thread count and shared by every later one in the
/// process, as PyTorch keeps one OpenMP team for all its shapes: a pool per shape would time
/// its workers' first wake-up (up to milliseconds on the 2-vCPU guest of docs/PERFORMANCE.md,
/// "Two threads") inside every shape's first calls.
pub fn bench_pool(threads: usize) -> Result<&'static rayon::ThreadPool, String> {
    use std::sync::{Mutex, OnceLock};
    type Pools = Mutex<Vec<(usize, &'static rayon::ThreadPool)>>;
    static POOLS: OnceLock<Pools> = OnceLock::new();
    let pools = POOLS.get_or_init(|| Mutex::new(Vec::new()));
    let mut pools = pools.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, pool)) = pools.iter().find(|(t, _)| *t == threads) {
        return Ok(pool);
    }
    let pinned = std::env::var(PIN_ENV).is_ok_and(|v| v == "1");
    let pool = if pinned {
        qkernels::pin::pinned_pool(threads)
    } else {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build()
    };
    let pool: &'static rayon::ThreadPool =
        Box::leak(Box::new(pool.map_err(|e| {
            format!("cannot build a rayon pool of {threads} threads: {e}")
        })?));
    pools.push((threads, pool));
    Ok(pool)
}
