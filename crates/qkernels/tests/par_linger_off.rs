//! `QSTACK_SPIN_US=0` turns the linger off: no helper is ever spawned, and GEMM and
//! convolution results are the oracle's (as with the linger on, `par_linger.rs`) for 1, 2
//! and 3 threads. The environment is read once per process, so this file is its own test
//! binary with a single test that sets the switch before anything reads it.

use qkernels::par;

mod par_support;

#[test]
fn spin_zero_spawns_no_helpers_and_results_match_the_oracle() {
    // SAFETY: this binary's only test runs before any other thread reads the environment.
    unsafe { std::env::set_var(par::SPIN_ENV, "0") };
    assert!(par::spin().is_zero());
    let (one, more) = par_support::every_path_for_1_2_3_threads();
    assert_eq!((one, more), (0, 0), "helpers spawned with the linger off");
}
