//! Criterion benchmarks for the qstack workspace live in `benches/benches/`; this library
//! holds nothing but shared helpers for them.

/// Warm-up time every timed call gets at least (after its `--warmup` runs).
pub const MIN_WARMUP_NS: u128 = 20_000_000;
/// Timed time every call gets at least: short calls take more than `--repeats` samples.
pub const MIN_TIMED_NS: u128 = 50_000_000;
/// The most samples a call takes.
pub const MAX_SAMPLES: usize = 5000;

/// One call's timing: median and minimum wall time in ns, and the number of timed samples.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Median of the samples.
    pub median: u128,
    /// Fastest sample.
    pub min: u128,
    /// Timed samples taken.
    pub samples: usize,
}

/// The wall time of `f` in ns: `warmup` untimed runs continued until
/// [`MIN_WARMUP_NS`] have passed, then `repeats` timed runs continued until
/// [`MIN_TIMED_NS`] of them have been timed (at most [`MAX_SAMPLES`]). A 8 µs call thus gets
/// 20 ms to reach its steady state (a pool whose workers slept, caches filled by another
/// shape) and ~5000 samples instead of 15 whose median moved by 30 % between runs;
/// `tools/bench/torch_*.py` time PyTorch with the same rule.
pub fn time_calls(repeats: usize, warmup: usize, mut f: impl FnMut()) -> Timing {
    let start = std::time::Instant::now();
    let mut runs = 0;
    while runs < warmup || start.elapsed().as_nanos() < MIN_WARMUP_NS {
        f();
        runs += 1;
    }
    let mut t: Vec<u128> = Vec::with_capacity(repeats);
    let mut timed = 0u128;
    while t.len() < repeats.max(1) || (timed < MIN_TIMED_NS && t.len() < MAX_SAMPLES) {
        let s = std::time::Instant::now();
        f();
        let ns = s.elapsed().as_nanos();
        timed += ns;
        t.push(ns);
    }
    t.sort_unstable();
    Timing {
        median: t[t.len() / 2],
        min: t[0],
        samples: t.len(),
    }
}

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
