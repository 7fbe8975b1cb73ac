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
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live, writable `cpu_set_t` and the size passed is its own size,
        // so the kernel writes only inside it; pid 0 means the calling thread.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
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
        // kernel reads only inside it; pid 0 means the calling thread.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
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
                assert!(moved, "two allowed CPUs: the thread leaves CPU {cpu}");
                assert_ne!(current_cpu(), Some(cpu));
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
}
