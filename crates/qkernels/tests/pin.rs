//! `qkernels::pin`: each worker of a pinned pool runs on exactly one CPU, distinct CPUs while
//! there are enough, and a pinned thread's own affinity is the CPU reported.

use qkernels::pin::{allowed_cpus, pin_current_thread, pinned_pool};

#[test]
fn pinned_pool_workers_each_own_one_cpu() {
    let Some(cpus) = allowed_cpus() else {
        // Not Linux (or Miri): pinning is a documented no-op there.
        assert_eq!(pin_current_thread(0).expect("no-op"), None);
        return;
    };
    let threads = cpus.len().min(4);
    let pool = pinned_pool(threads).expect("pool");
    let seen = pool.broadcast(|ctx| (ctx.index(), allowed_cpus()));
    let mut got: Vec<usize> = Vec::new();
    for (index, affinity) in seen {
        let affinity = affinity.expect("affinity readable on a pinned worker");
        assert_eq!(
            affinity,
            vec![cpus[index % cpus.len()]],
            "worker {index} is pinned to the {index}-th allowed CPU"
        );
        got.extend(affinity);
    }
    got.sort_unstable();
    got.dedup();
    assert_eq!(got.len(), threads, "distinct CPUs while there are enough");
}

#[test]
fn pin_current_thread_narrows_the_affinity_to_the_chosen_cpu() {
    let Some(cpus) = allowed_cpus() else {
        return;
    };
    let last = cpus.len() - 1;
    let (chosen, after) = std::thread::spawn(move || {
        let chosen = pin_current_thread(last + cpus.len()).expect("pin");
        (chosen, allowed_cpus())
    })
    .join()
    .expect("thread");
    let cpus = allowed_cpus().expect("still readable");
    assert_eq!(
        chosen,
        Some(cpus[last]),
        "the index wraps around the allowed CPUs"
    );
    assert_eq!(after, Some(vec![cpus[last]]));
}
