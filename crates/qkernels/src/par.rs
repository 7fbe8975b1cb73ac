//! The kernels' parallel loops: disjoint tasks on the current rayon pool, with the pool's
//! other workers kept awake, on their own CPUs, while loops run and for a short while after
//! each ("linger").
//!
//! Why: a rayon worker that finds no work yields a few dozen times (tens of µs) and then
//! sleeps on a futex. On the 2-vCPU KVM guest of docs/PERFORMANCE.md ("Two threads") waking it
//! costs 20–50 µs when its vCPU has halted, and the guest kernel (`kernel.sched_vcpu_pack`)
//! often queues the woken worker on the *waker's* vCPU, behind the caller, where it waits
//! milliseconds for a tick to move it; a worker that spins there takes the caller's time. So
//! 0.03–1.5 ms calls ran on one thread. OpenMP runtimes keep their workers spinning between
//! parallel regions (which is why PyTorch's never meet this).
//!
//! How: every parallel loop (and a call that will run one, at its start: `wake`) spawns
//! helper jobs on the current pool if fewer than `min(threads − 1, cores − 1)` are alive (so
//! the calling thread always keeps a core, and one thread spawns nothing). They are spawned
//! *before* the loop posts its tasks, so a worker that runs out of tasks spins in a helper
//! instead of falling asleep. A helper
//! - first moves its thread off the caller's CPU (a transient affinity change, the mask put
//!   back at once: `pin::move_off`), or does not spin if it cannot, and checks that again
//!   while it spins;
//! - spins (`spin_loop`), running any rayon job that turns up via `rayon::yield_now` (the
//!   loop's tasks among them), while any parallel loop runs or until [`SPIN_ENV`] µs after the
//!   last one ended (¾ of that at least: a call that finds the window still that long open
//!   leaves it alone, so that it does not write the line every helper polls);
//! - leaves its worker to rayon when neither holds, or when it has run no job for [`spin`]
//!   (a helper can be picked up by a worker waiting inside a `join`, which resumes only when
//!   the helper returns: an unbounded spin there deadlocked two workers in a test).
//!
//! Workers record their thread ids when they first run a task or a helper. When a helper is
//! spawned with none alive (the workers may be asleep), the recorded workers' masks exclude the
//! caller's CPU while they are woken (`pin::steer_off`), so the OS places them on another CPU;
//! the masks are put back at once.
//!
//! A helper never spins on the thread that spawned it, nor inside another helper. The tasks and
//! their split do not depend on the helpers, so neither do results.
//!
//! Cost: while parallel calls follow each other, up to `cores − 1` cores spin between them and
//! for up to [`spin`] (default [`DEFAULT_SPIN_US`] µs) after the last, as OpenMP's do;
//! `QSTACK_SPIN_US=0` turns lingering off (plain rayon, no affinity changes). A pool's very
//! first wake-up is not steered (no worker id is known yet).

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
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

/// A value alone on its cache lines (two, against the adjacent-line prefetcher): the helpers
/// write [`SPINNING`] on every turn of their loop, and the callers' counters must not share
/// its line (each access would fetch it from the helper's core).
#[repr(align(128))]
struct OwnLine<T>(T);

impl<T> std::ops::Deref for OwnLine<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Parallel loops running now (in any pool).
static ACTIVE: OwnLine<AtomicUsize> = OwnLine(AtomicUsize::new(0));
/// Helpers started and not finished (spinning or running a job).
static ALIVE: OwnLine<AtomicUsize> = OwnLine(AtomicUsize::new(0));
/// Helpers spinning now.
static SPINNING: OwnLine<AtomicUsize> = OwnLine(AtomicUsize::new(0));
/// Helpers spawned but not started yet.
static PENDING: OwnLine<AtomicUsize> = OwnLine(AtomicUsize::new(0));
/// The CPU of the thread that last spawned helpers (`usize::MAX`: unknown); a helper does not
/// spin there.
static CALLER_CPU: OwnLine<AtomicUsize> = OwnLine(AtomicUsize::new(usize::MAX));
/// Thread ids of workers that ran tasks or helpers (0: free); steered off the
/// caller's CPU when a helper is spawned with none spinning (see [`keep_awake`]).
static HELPER_TIDS: [AtomicI32; MAX_TIDS] = [const { AtomicI32::new(0) }; MAX_TIDS];
/// Slots in [`HELPER_TIDS`].
const MAX_TIDS: usize = 16;
/// Next slot of [`HELPER_TIDS`] to overwrite.
static NEXT_TID: AtomicUsize = AtomicUsize::new(0);
/// Helpers spawned since the process started (see [`helpers_spawned`]).
static SPAWNED: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds since [`epoch`] until which helpers may spin.
static UNTIL_NS: OwnLine<AtomicU64> = OwnLine(AtomicU64::new(0));

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
}

/// Runs `task(i)` for every `i` in `0..tasks` on the current rayon pool.
pub(crate) fn for_each_index<F>(tasks: usize, task: F)
where
    F: Fn(usize) + Sync + Send,
{
    let _call = Call::begin();
    (0..tasks).into_par_iter().for_each(|i| {
        remember_thread();
        task(i)
    });
}

/// Runs `task(item)` for every item on the current rayon pool (tasks cut beforehand, such as
/// disjoint output slices of unequal shapes).
pub(crate) fn for_each_item<T, F>(items: Vec<T>, task: F)
where
    T: Send,
    F: Fn(T) + Sync + Send,
{
    let _call = Call::begin();
    items.into_par_iter().for_each(|item| {
        remember_thread();
        task(item)
    });
}

/// Runs `task(i, count)` once on each thread `i` of the current pool's `count` (rayon's
/// `broadcast`): the same share of the work lands on the same worker on every call, which
/// work stealing does not guarantee. Every worker must take part, so a worker busy elsewhere
/// delays the call; use it for short calls whose data a worker's cache keeps between calls.
pub(crate) fn for_each_thread<F>(task: F)
where
    F: Fn(usize, usize) + Sync,
{
    let _call = Call::begin();
    rayon::broadcast(|ctx| {
        remember_thread();
        task(ctx.index(), ctx.num_threads())
    });
}

/// Runs `task((i, chunk))` for every `chunk_len`-element chunk of `out` on the current pool.
pub(crate) fn for_each_chunk<T, F>(out: &mut [T], chunk_len: usize, task: F)
where
    T: Send,
    F: Fn((usize, &mut [T])) + Sync + Send,
{
    let _call = Call::begin();
    out.par_chunks_mut(chunk_len).enumerate().for_each(|x| {
        remember_thread();
        task(x)
    });
}

/// [`for_each_chunk`] when `parallel`, else the same tasks in order on the calling thread.
pub(crate) fn for_each_chunk_if<T, F>(parallel: bool, out: &mut [T], chunk_len: usize, task: F)
where
    T: Send,
    F: Fn((usize, &mut [T])) + Sync + Send,
{
    if parallel {
        for_each_chunk(out, chunk_len, task);
    } else {
        out.chunks_mut(chunk_len).enumerate().for_each(task);
    }
}

/// [`for_each_chunk`] with per-worker state made by `init` (rayon's `for_each_init`).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // its callers are x86 kernels
pub(crate) fn for_each_chunk_init<T, S, I, F>(out: &mut [T], chunk_len: usize, init: I, task: F)
where
    T: Send,
    I: Fn() -> S + Sync + Send,
    F: Fn(&mut S, (usize, &mut [T])) + Sync + Send,
{
    let _call = Call::begin();
    out.par_chunks_mut(chunk_len)
        .enumerate()
        .for_each_init(init, |state, x| {
            remember_thread();
            task(state, x)
        });
}

/// Runs `task(s, d)` over matching `chunk_len`-element chunks of `src` and `dst` on the current
/// pool (element-wise passes such as quantize and dequantize).
pub(crate) fn for_each_zip_chunk<S, D, F>(src: &[S], dst: &mut [D], chunk_len: usize, task: F)
where
    S: Sync,
    D: Send,
    F: Fn(&[S], &mut [D]) + Sync + Send,
{
    let _call = Call::begin();
    src.par_chunks(chunk_len)
        .zip(dst.par_chunks_mut(chunk_len))
        .for_each(|(s, d)| {
            remember_thread();
            task(s, d)
        });
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
    let _call = Call::begin();
    src.par_chunks(chunk_len)
        .map(|chunk| {
            remember_thread();
            map(chunk)
        })
        .reduce(|| identity, reduce)
}

/// A parallel loop in progress: helpers keep spinning (and run its tasks) while any is.
struct Call;

impl Call {
    /// Counts the loop in and spawns the helpers that are missing, before its tasks are
    /// posted: a worker that runs out of tasks before the caller then spins in a helper
    /// instead of going to sleep.
    fn begin() -> Self {
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        keep_awake();
        Call
    }
}

impl Drop for Call {
    /// Counts the loop out and opens the linger window from now.
    fn drop(&mut self) {
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
        keep_awake();
    }
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
    // The spinning helpers read these lines all the time: write them only when they change
    // (each write takes the line from the helpers' cores, ~0.1 µs here).
    if CALLER_CPU.load(Ordering::Acquire) != cpu {
        CALLER_CPU.store(cpu, Ordering::Release);
    }
    let spin_ns = u64::try_from(spin.as_nanos()).unwrap_or(u64::MAX);
    let until = now_ns().saturating_add(spin_ns);
    if UNTIL_NS.load(Ordering::Acquire) < until.saturating_sub(spin_ns / 4) {
        UNTIL_NS.fetch_max(until, Ordering::AcqRel);
    }
    let home = rayon::current_thread_index();
    // With no helper spinning or on its way, the workers may be asleep, and the OS may queue a
    // woken one on this thread's CPU, behind this thread, for milliseconds (the 2-vCPU guest
    // of docs/PERFORMANCE.md does): keep the known workers off this CPU while waking them.
    let cold = ALIVE.load(Ordering::Acquire) == 0 && PENDING.load(Ordering::Acquire) == 0;
    let _steered = cold.then(|| {
        let tids: Vec<i32> = HELPER_TIDS
            .iter()
            .map(|t| t.load(Ordering::Relaxed))
            .collect();
        crate::pin::steer_off(&tids, cpu)
    });
    while PENDING
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
            (p + SPINNING.load(Ordering::Acquire) < max).then_some(p + 1)
        })
        .is_ok()
    {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        rayon::spawn(move || linger(home, max));
    }
}

thread_local! {
    /// Whether this thread is inside [`linger`] (a helper job popped by a spinning helper
    /// returns at once instead of nesting).
    static IN_HELPER: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is on another CPU than the last caller, after moving it there if it
/// was not: on the caller's CPU a helper would only take the caller's time.
fn off_the_callers_cpu() -> bool {
    let caller = CALLER_CPU.load(Ordering::Acquire);
    caller == usize::MAX || crate::pin::move_off(caller)
}

/// Adds this thread's id to [`HELPER_TIDS`] (once per thread).
fn remember_thread() {
    thread_local! {
        static KNOWN: Cell<bool> = const { Cell::new(false) };
    }
    if KNOWN.replace(true) {
        return;
    }
    let tid = crate::pin::thread_id();
    if tid == 0 || HELPER_TIDS.iter().any(|t| t.load(Ordering::Relaxed) == tid) {
        return;
    }
    let slot = NEXT_TID.fetch_add(1, Ordering::Relaxed) % MAX_TIDS;
    HELPER_TIDS[slot].store(tid, Ordering::Relaxed);
}

/// Whether helpers may spin: a parallel loop runs, or the linger window is open.
fn wanted() -> bool {
    ACTIVE.load(Ordering::Acquire) > 0 || now_ns() < UNTIL_NS.load(Ordering::Acquire)
}

/// A helper: spins while [`wanted`], running the pool's jobs as they come. It counts in
/// [`SPINNING`] only while it waits, not while it runs a job (which may be long, e.g. a
/// whole `install` closure), so that a call meanwhile still gets a helper on another worker.
fn linger(home: Option<usize>, max: usize) {
    PENDING.fetch_sub(1, Ordering::AcqRel);
    // On the thread that spawned it (it popped its own job while waiting), spinning would
    // stall the caller.
    if IN_HELPER.get() || (home.is_some() && rayon::current_thread_index() == home) {
        return;
    }
    if !off_the_callers_cpu() {
        return;
    }
    IN_HELPER.set(true);
    ALIVE.fetch_add(1, Ordering::AcqRel);
    remember_thread();
    spin_while_wanted(max);
    ALIVE.fetch_sub(1, Ordering::AcqRel);
    IN_HELPER.set(false);
}

/// [`linger`]'s loop: holds one of the `max` [`SPINNING`] places while it waits.
fn spin_while_wanted(max: usize) {
    let claim = || {
        SPINNING
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s < max).then_some(s + 1)
            })
            .is_ok()
    };
    if !claim() {
        return;
    }
    // Never idle longer than the linger time, even while a loop runs: a helper may have been
    // picked up by a worker waiting inside a `join` (rayon runs other jobs while it waits),
    // and that join (perhaps part of the running loop) resumes only when the helper returns.
    // Spinning "while a loop runs" without this bound deadlocked two workers that way.
    let limit = spin();
    let mut idle_since = Instant::now();
    while wanted() && idle_since.elapsed() < limit {
        SPINNING.fetch_sub(1, Ordering::AcqRel);
        let ran = rayon::yield_now() == Some(rayon::Yield::Executed);
        if !claim() {
            // Another helper took the place while this one ran a job.
            return;
        }
        if ran {
            idle_since = Instant::now();
        } else {
            for _ in 0..SPINS_PER_CHECK {
                std::hint::spin_loop();
            }
        }
        if !off_the_callers_cpu() {
            // The OS moved this thread to the caller's CPU (or the caller to this one).
            break;
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
