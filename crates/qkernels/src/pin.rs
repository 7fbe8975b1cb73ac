//! Worker pinning: a rayon pool whose workers each stay on one CPU (OpenMP's
//! `OMP_PROC_BIND=close`), opt-in.
//!
//! Why: on the 2-vCPU KVM guest of docs/PERFORMANCE.md ("Two threads"), a 2-thread kernel call
//! of 0.1–1.5 ms often ran at its 1-thread time because the OS queued the woken second worker
//! on the caller's busy vCPU instead of the idle one. With the workers pinned to different
//! CPUs that placement cannot happen. The kernels run on whatever pool the caller installs, so
//! pinning is the application's choice: build the pool with [`pinned_pool`] (or add
//! [`pin_current_thread`] to your own builder's `start_handler`) and run the model inside
//! `pool.install(..)`. Results do not depend on it.
//!
//! Besides that opt-in pool, [`crate::par`] moves its helper threads off the caller's CPU by
//! short-lived affinity changes whose masks are put back at once (`move_off`, `steer_off`):
//! a thread's mask is never left changed.
//!
//! ```
//! let pool = qkernels::pin::pinned_pool(2).expect("a rayon pool");
//! let sum: u64 = pool.install(|| (0..1000u64).sum());
//! assert_eq!(sum, 499_500);
//! ```

use std::io;

/// The CPUs this thread may run on, in increasing order (`sched_getaffinity`), or `None`
/// where that cannot be asked (not Linux, Miri).
pub fn allowed_cpus() -> Option<Vec<usize>> {
    os::allowed_cpus()
}

/// Pins the calling thread to the `index`-th CPU (wrapping around) of the CPUs it is allowed
/// to run on now. Returns the CPU chosen, or `Ok(None)` where pinning is not supported (not
/// Linux, Miri); an error from the OS is returned as is.
pub fn pin_current_thread(index: usize) -> io::Result<Option<usize>> {
    let Some(cpus) = allowed_cpus() else {
        return Ok(None);
    };
    let Some(&cpu) = cpus.get(index % cpus.len().max(1)) else {
        return Ok(None);
    };
    os::pin_to(cpu)?;
    Ok(Some(cpu))
}

/// The CPU the calling thread is running on now (`sched_getcpu`), or `None` where that cannot
/// be asked (not Linux, Miri).
pub fn current_cpu() -> Option<usize> {
    os::current_cpu()
}

/// Moves the calling thread off CPU `cpu` if it is running there and may run elsewhere:
/// its affinity mask is narrowed to its allowed CPUs other than `cpu` (the kernel migrates a
/// thread at once when its own mask excludes its CPU) and then set back to what it was, which
/// leaves the thread where it landed. Returns whether the thread now runs on another CPU
/// than `cpu`; `false` where it cannot (`cpu` is its only allowed CPU, not Linux, Miri, or an
/// error from the OS, after which the mask is put back as far as the OS allows).
pub(crate) fn move_off(cpu: usize) -> bool {
    match current_cpu() {
        None => return false,
        Some(now) if now != cpu => return true,
        Some(_) => {}
    }
    let Some(cpus) = allowed_cpus() else {
        return false;
    };
    let others: Vec<usize> = cpus.iter().copied().filter(|&c| c != cpu).collect();
    if others.is_empty() || os::set_allowed(&others).is_err() {
        return false;
    }
    // Best effort: if restoring fails the thread keeps the narrower mask, which only
    // keeps it off `cpu`.
    let _ = os::set_allowed(&cpus);
    current_cpu().is_some_and(|now| now != cpu)
}

/// The calling thread's id (`gettid`; 0 where unsupported).
pub(crate) fn thread_id() -> i32 {
    os::thread_id()
}

/// Threads whose affinity masks [`steer_off`] narrowed, with the masks to put back.
#[must_use = "the masks are put back when this is dropped"]
pub(crate) struct Steered(Vec<(i32, Vec<usize>)>);

/// Narrows the affinity masks of the live threads of this process among `tids` to exclude
/// `cpu` (where they allow another CPU) until the returned value is dropped, which puts each
/// mask back as it was. A thread woken meanwhile is placed on another CPU than `cpu`, and one
/// queued on `cpu` moves; putting the mask back does not move it again. Ids that are 0, the
/// caller's own or not threads of this process are skipped.
pub(crate) fn steer_off(tids: &[i32], cpu: usize) -> Steered {
    let me = thread_id();
    let mut saved = Vec::new();
    for &tid in tids {
        if tid == 0 || tid == me || !os::is_own_thread(tid) {
            continue;
        }
        let Some(mask) = os::affinity_of(tid) else {
            continue;
        };
        let others: Vec<usize> = mask.iter().copied().filter(|&c| c != cpu).collect();
        if others.len() == mask.len() || others.is_empty() {
            continue;
        }
        if os::set_affinity_of(tid, &others).is_ok() {
            saved.push((tid, mask));
        }
    }
    Steered(saved)
}

impl Drop for Steered {
    fn drop(&mut self) {
        for (tid, mask) in self.0.drain(..) {
            // Best effort: a thread that exited meanwhile has no mask to restore.
            let _ = os::set_affinity_of(tid, &mask);
        }
    }
}

/// A rayon pool of `threads` workers, worker *i* pinned to the *i*-th allowed CPU (wrapping
/// around when there are more workers than CPUs). Where pinning fails or is unsupported the
/// worker runs unpinned, as in a plain pool: pinning only moves threads, never results.
pub fn pinned_pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let cpus = allowed_cpus();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |i| {
            if let Some(&cpu) = cpus.as_ref().and_then(|c| c.get(i % c.len().max(1))) {
                // Best effort: an unpinned worker computes the same values.
                let _ = os::pin_to(cpu);
            }
        })
        .build()
}

#[cfg(all(target_os = "linux", not(miri)))]
mod os {
    use std::io;

    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        affinity_of(0)
    }

    /// The affinity mask of thread `tid` (0: the calling thread).
    pub(super) fn affinity_of(tid: i32) -> Option<Vec<usize>> {
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live, writable `cpu_set_t` and the size passed is its own size,
        // so the kernel writes only inside it.
        let rc = unsafe {
            libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set)
        };
        if rc != 0 {
            return None;
        }
        let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        // SAFETY: `cpu < CPU_SETSIZE`, the bit count of `set`, so `CPU_ISSET` reads inside it.
        let cpus: Vec<usize> = (0..max)
            .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
            .collect();
        (!cpus.is_empty()).then_some(cpus)
    }

    pub(super) fn pin_to(cpu: usize) -> io::Result<()> {
        set_allowed(&[cpu])
    }

    /// Sets the calling thread's affinity mask to `cpus`.
    pub(super) fn set_allowed(cpus: &[usize]) -> io::Result<()> {
        set_affinity_of(0, cpus)
    }

    /// Sets thread `tid`'s affinity mask to `cpus` (0: the calling thread).
    pub(super) fn set_affinity_of(tid: i32, cpus: &[usize]) -> io::Result<()> {
        let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &cpu in cpus {
            if cpu >= max {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("CPU {cpu} is outside the affinity mask's {max} CPUs"),
                ));
            }
            // SAFETY: `cpu < CPU_SETSIZE` (checked above), so `CPU_SET` writes inside `set`.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
        // SAFETY: `set` is a live `cpu_set_t` and the size passed is its own size, so the
        // kernel reads only inside it.
        let rc =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn current_cpu() -> Option<usize> {
        // SAFETY: `sched_getcpu` takes no arguments and only returns a number (or -1).
        let cpu = unsafe { libc::sched_getcpu() };
        usize::try_from(cpu).ok()
    }

    /// The calling thread's id.
    pub(super) fn thread_id() -> i32 {
        // SAFETY: `gettid` takes no arguments, cannot fail and only returns a number.
        unsafe { libc::gettid() }
    }

    /// Whether `tid` is a live thread of this process (signal 0 checks without sending).
    pub(super) fn is_own_thread(tid: i32) -> bool {
        // SAFETY: `getpid` takes no arguments and only returns a number; `tgkill` with
        // signal 0 only checks that `tid` exists in thread group `pid`, delivering nothing.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, 0) == 0 }
    }
}

#[cfg(not(all(target_os = "linux", not(miri))))]
mod os {
    use std::io;

    pub(super) fn allowed_cpus() -> Option<Vec<usize>> {
        None
    }

    pub(super) fn pin_to(_cpu: usize) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn set_allowed(_cpus: &[usize]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub(super) fn current_cpu() -> Option<usize> {
        None
    }

    pub(super) fn affinity_of(_tid: i32) -> Option<Vec<usize>> {
        None
    }

    pub(super) fn set_affinity_of(_tid: i32, _cpus: &[usize]) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    pub(super) fn thread_id() -> i32 {
        0
    }

    pub(super) fn is_own_thread(_tid: i32) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_off_leaves_the_cpu_and_keeps_the_mask() {
        std::thread::spawn(|| {
            let (Some(before), Some(cpu)) = (allowed_cpus(), current_cpu()) else {
                assert!(!move_off(0), "no CPU to leave where CPUs cannot be asked");
                return;
            };
            let moved = move_off(cpu);
            assert_eq!(allowed_cpus(), Some(before.clone()), "the mask is put back");
            if before.len() > 1 {
                // `move_off` checked the CPU it landed on before returning; asking again here
                // would race the scheduler, which may move the thread back at any time (it did
                // under a parallel test run).
                assert!(moved, "two allowed CPUs: the thread leaves CPU {cpu}");
            } else {
                assert!(!moved, "the only allowed CPU cannot be left");
            }
            // Not on the CPU named: nothing to do, and it says so.
            let other = current_cpu().expect("asked above");
            if other != cpu {
                assert!(move_off(cpu));
                assert_eq!(allowed_cpus(), Some(before));
            }
        })
        .join()
        .expect("thread");
    }

    #[test]
    fn steer_off_narrows_other_threads_until_dropped() {
        let Some(cpus) = allowed_cpus() else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            tx.send(thread_id()).expect("send");
            done_rx.recv().expect("recv");
        });
        let tid = rx.recv().expect("tid");
        let cpu = cpus[0];
        {
            let steered = steer_off(&[tid, thread_id(), 0], cpu);
            let during = os::affinity_of(tid).expect("readable");
            if cpus.len() > 1 {
                assert_eq!(steered.0.len(), 1, "only the other live thread is steered");
                assert!(!during.contains(&cpu), "CPU {cpu} excluded while steered");
            } else {
                assert!(steered.0.is_empty(), "one CPU: nothing to steer to");
            }
            assert_eq!(
                allowed_cpus(),
                Some(cpus.clone()),
                "the caller is never steered"
            );
        }
        assert_eq!(os::affinity_of(tid), Some(cpus), "the mask is put back");
        done_tx.send(()).expect("send");
        worker.join().expect("thread");
    }
}
