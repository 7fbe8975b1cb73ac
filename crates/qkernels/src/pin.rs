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
        let max = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
        if cpu >= max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPU {cpu} is outside the affinity mask's {max} CPUs"),
            ));
        }
        // SAFETY: `cpu_set_t` is a plain bit array for which all-zero is a valid value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu < CPU_SETSIZE` (checked above), so `CPU_SET` writes inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
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
}
