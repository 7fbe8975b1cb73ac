//! With the linger on (`QSTACK_SPIN_US` unset or non-zero), GEMM and convolution results are
//! the oracle's for 1, 2 and 3 threads; helpers are spawned only by multi-thread pools (and
//! only where a core is left for the caller). The environment is read once per process, so
//! this file is its own test binary with a single test (`par_linger_off.rs` is the other
//! setting).

use qkernels::par;

mod par_support;

#[test]
fn results_match_the_oracle_and_only_parallel_calls_spawn_helpers() {
    if std::env::var_os(par::SPIN_ENV).is_none() {
        // SAFETY: this binary's only test runs before any other thread reads the environment.
        unsafe { std::env::set_var(par::SPIN_ENV, "300") };
    }
    let spin = par::spin();
    let (one, more) = par_support::every_path_for_1_2_3_threads();
    assert_eq!(one, 0, "a 1-thread pool spawned helpers");
    if !spin.is_zero() && par_support::has_a_spare_core() {
        assert!(more > 0, "no helper spawned with {spin:?}");
    }
}
