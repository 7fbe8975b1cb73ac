//! The kernels' parallel loops: disjoint tasks on the current rayon pool, with the pool's
//! other workers kept awake for a short while after each parallel call ("linger").
//!
//! Why: a rayon worker that finds no work yields a few dozen times and then sleeps on a
//! futex. On a KVM guest whose other vCPU then idles, waking it again can take about as long
//! as a 0.1–1.5 ms kernel call, so back-to-back 2-thread calls often ran every task on the
//! calling thread (docs/PERFORMANCE.md, "Two threads"). OpenMP runtimes keep their workers
//! spinning for a while between parallel regions for the same reason.
//!
//! How: after a parallel loop, and at the start of a call that is going to run one
//! (`wake`), helper jobs are spawned on the current pool, at most
//! `min(threads − 1, cores − 1)` at a time (so the calling thread always keeps a core, and one
//! thread spawns nothing). A helper spins (`spin_loop`, running any rayon job that turns up,
//! via `rayon::yield_now`) until the next parallel loop posts its tasks, or until
//! [`SPIN_ENV`] microseconds have passed since the last call, then hands its worker back to
//! rayon, which finds the new tasks at once. A helper never spins on the thread that spawned
//! it. The tasks and their split are the same with or without helpers, so results are too.
//!
//! Cost: after every parallel call up to `cores − 1` cores stay busy for up to [`spin`]
//! (default [`DEFAULT_SPIN_US`] µs) doing nothing useful, as OpenMP's do; `QSTACK_SPIN_US=0`
//! turns lingering off (plain rayon).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// The environment variable holding the linger time in microseconds (`0` = off).
pub const SPIN_ENV: &str = "QSTACK_SPIN_US";
/// The linger time when [`SPIN_ENV`] is unset.
pub const DEFAULT_SPIN_US: u64 = 200;
/// The longest linger accepted (1 s); larger values are clamped.
const MAX_SPIN_US: u64 = 1_000_000;
/// `spin_loop` hints between two looks at the clock and the pool.
const SPINS_PER_CHECK: usize = 32;

/// Bumped whenever a parallel loop posts its tasks; a helper stops when it changes.
static CALLS: AtomicU64 = AtomicU64::new(0);
/// Helpers spinning now.
static SPINNING: AtomicUsize = AtomicUsize::new(0);
/// Helpers spawned but not started yet.
static PENDING: AtomicUsize = AtomicUsize::new(0);
/// The CPU of the thread that last spawned helpers (`usize::MAX`: unknown); a helper does not
/// spin there.
static CALLER_CPU: AtomicUsize = AtomicUsize::new(usize::MAX);
/// Helpers spawned since the process started (see [`helpers_spawned`]).
static SPAWNED: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds since [`epoch`] until which helpers may spin.
static UNTIL_NS: AtomicU64 = AtomicU64::new(0);

/// The linger time: [`SPIN_ENV`] read once, [`DEFAULT_SPIN_US`] if unset; an unparsable value
/// is reported once on stderr and ignored.
pub fn spin() -> Duration {
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let var = std::env::var(SPIN_ENV).ok();
        let us = parse_spin_us(var.as_deref()).unwrap_or_else(|bad| {
            eprintln!("qkernels: ignoring {SPIN_ENV}={bad:?} (want microseconds, 0 = off)");
            DEFAULT_SPIN_US
        });
        Duration::from_micros(us)
    })
}

/// Parses a [`SPIN_ENV`] value: `None` gives the default, a number of microseconds is clamped
/// to 1 s, anything else is returned as the error.
pub fn parse_spin_us(value: Option<&str>) -> Result<u64, String> {
    match value.map(str::trim) {
        None => Ok(DEFAULT_SPIN_US),
        Some(v) => v
            .parse::<u64>()
            .map(|us| us.min(MAX_SPIN_US))
            .map_err(|_| v.to_string()),
    }
}

/// How many helper jobs have been spawned in this process (for tests and benches: it stays 0
/// with `QSTACK_SPIN_US=0` or one thread).
pub fn helpers_spawned() -> u64 {
    SPAWNED.load(Ordering::Relaxed)
}

/// Gets the pool's other workers running ahead of a parallel loop: call it at the start of a
/// call that will run one, before its serial set-up, so that a sleeping worker wakes during
/// the set-up rather than after the tasks are posted.
pub(crate) fn wake() {
    keep_awake();
    if SPINNING.load(Ordering::Acquire) == 0 && PENDING.load(Ordering::Acquire) > 0 {
        // A helper waits to start, so its worker may have been asleep, and the OS may have
        // queued the woken worker on this thread's CPU, behind this thread (the 2-vCPU guest
        // of docs/PERFORMANCE.md does that). Giving up the CPU once lets it start the helper,
        // which moves itself to another CPU (see `linger`); with nothing else queued here this
        // returns at once.
        std::thread::yield_now();
    }
}

/// Runs `task(i)` for every `i` in `0..tasks` on the current rayon pool.
pub(crate) fn for_each_index<F>(tasks: usize, task: F)
where
    F: Fn(usize) + Sync + Send,
{
    posting();
    (0..tasks).into_par_iter().for_each(task);
    keep_awake();
}

/// Runs `task(item)` for every item on the current rayon pool (tasks cut beforehand, such as
/// disjoint output slices of unequal shapes).
pub(crate) fn for_each_item<T, F>(items: Vec<T>, task: F)
where
    T: Send,
    F: Fn(T) + Sync + Send,
{
    posting();
    items.into_par_iter().for_each(task);
    keep_awake();
}

/// Runs `task(i, count)` once on each thread `i` of the current pool's `count` (rayon's
/// `broadcast`): the same share of the work lands on the same worker on every call, which
/// work stealing does not guarantee. Every worker must take part, so a worker busy elsewhere
/// delays the call; use it for short calls whose data a worker's cache keeps between calls.
pub(crate) fn for_each_thread<F>(task: F)
where
    F: Fn(usize, usize) + Sync,
{
    posting();
    rayon::broadcast(|ctx| task(ctx.index(), ctx.num_threads()));
    keep_awake();
}

/// Runs `task((i, chunk))` for every `chunk_len`-element chunk of `out` on the current pool.
pub(crate) fn for_each_chunk<T, F>(out: &mut [T], chunk_len: usize, task: F)
where
    T: Send,
    F: Fn((usize, &mut [T])) + Sync + Send,
{
    posting();
    out.par_chunks_mut(chunk_len).enumerate().for_each(task);
    keep_awake();
}

/// [`for_each_chunk`] with per-worker state made by `init` (rayon's `for_each_init`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // its callers are x86 kernels
pub(crate) fn for_each_chunk_init<T, S, I, F>(out: &mut [T], chunk_len: usize, init: I, task: F)
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, (usize, &mut [T])) + Sync + Send,
{
    posting();
    out.par_chunks_mut(chunk_len)
        .enumerate()
        .for_each_init(init, task);
    keep_awake();
}

/// Runs `task(s, d)` over matching `chunk_len`-element chunks of `src` and `dst` on the current
/// pool (element-wise passes such as quantize and dequantize).
pub(crate) fn for_each_zip_chunk<S, D, F>(src: &[S], dst: &mut [D], chunk_len: usize, task: F)
where
    S: Sync,
    D: Send,
    F: Fn(&[S], &mut [D]) + Sync + Send,
{
    posting();
    src.par_chunks(chunk_len)
        .zip(dst.par_chunks_mut(chunk_len))
        .for_each(|(s, d)| task(s, d));
    keep_awake();
}

/// Maps every `chunk_len`-element chunk of `src` on the current pool and folds the results
/// with `reduce`, starting from `identity` (reductions such as the min/max pass).
pub(crate) fn map_reduce_chunks<S, R, M, F>(
    src: &[S],
    chunk_len: usize,
    identity: R,
    map: M,
    reduce: F,
) -> R
where
    S: Sync,
    R: Copy + Send + Sync,
    M: Fn(&[S]) -> R + Sync + Send,
    F: Fn(R, R) -> R + Sync + Send,
{
    posting();
    let r = src
        .par_chunks(chunk_len)
        .map(map)
        .reduce(|| identity, reduce);
    keep_awake();
    r
}

/// Releases the spinning helpers: tasks are about to be posted.
fn posting() {
    CALLS.fetch_add(1, Ordering::AcqRel);
}

/// The process's clock origin.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Helpers allowed at once in the current pool: one per other thread, leaving the caller a
/// core.
fn max_helpers() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    (rayon::current_num_threads() - 1).min(cores - 1)
}

/// Extends the linger window and spawns helpers up to [`max_helpers`].
fn keep_awake() {
    let spin = spin();
    if spin.is_zero() {
        return;
    }
    let max = max_helpers();
    if max == 0 {
        return;
    }
    let cpu = crate::pin::current_cpu().unwrap_or(usize::MAX);
    CALLER_CPU.store(cpu, Ordering::Release);
    let spin_ns = u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX);
    UNTIL_NS.fetch_max(now_ns().saturating_add(spin_ns), Ordering::AcqRel);
    let calls = CALLS.load(Ordering::Acquire);
    let home = rayon::current_thread_index();
    while PENDING
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            (p + SPINNING.load(Ordering::Acquire) < max).then_some(p + 1)
        })
        .is_ok()
    {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        rayon::spawn(move || linger(calls, home, max));
    }
}

/// A helper: spins while no new tasks were posted since `calls` and the window is open.
fn linger(calls: u64, home: Option<usize>, max: usize) {
    PENDING.fetch_sub(1, Ordering::AcqRel);
    let stale = CALLS.load(Ordering::Acquire) != calls;
    // On the thread that spawned it (it popped its own job while waiting), spinning would
    // stall the caller.
    if stale || (home.is_some() && rayon::current_thread_index() == home) {
        return;
    }
    // On the caller's CPU a helper would only take the caller's time: move to another CPU
    // or do not spin.
    let caller_cpu = CALLER_CPU.load(Ordering::Acquire);
    if caller_cpu != usize::MAX && !crate::pin::move_off(caller_cpu) {
        return;
    }
    if SPINNING.fetch_add(1, Ordering::AcqRel) >= max {
        SPINNING.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    while CALLS.load(Ordering::Acquire) == calls && now_ns() < UNTIL_NS.load(Ordering::Acquire) {
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            continue;
        }
        for _ in 0..SPINS_PER_CHECK {
            std::hint::spin_loop();
        }
    }
    SPINNING.fetch_sub(1, Ordering::AcqRel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_values_parse() {
        assert_eq!(parse_spin_us(None), Ok(DEFAULT_SPIN_US));
        assert_eq!(parse_spin_us(Some("0")), Ok(0));
        assert_eq!(parse_spin_us(Some(" 150 ")), Ok(150));
        assert_eq!(parse_spin_us(Some("5000000")), Ok(MAX_SPIN_US));
        assert_eq!(parse_spin_us(Some("fast")), Err("fast".to_string()));
        assert_eq!(parse_spin_us(Some("-1")), Err("-1".to_string()));
    }
}
