//! x86-64 kernel families. Each file's `kernel()` is the safe constructor: it returns the
//! family's kernel object only after `Isa::is_supported()` confirmed the CPU features, and the
//! object's type has a private field so no other code can make one.
//!
//! Each family monomorphizes its register tile over (rows, panels) and picks the instance from
//! a table of function pointers, so tails in M and N run the same code with fewer registers.

/// A monomorphized tile: `(a, a_stride, b, panel_bytes, kc, acc, acc_ld, accumulate)` with
/// `a` and `b` already offset to the K block; see each family's `tile`.
use super::microkernel::{Microkernel, TileJob, TileShape};

pub(crate) type TileFn =
    unsafe fn(*const u8, usize, *const i8, usize, usize, *mut i32, usize, bool);

/// Runs the family's tile `table[rows − 1][panels − 1]` on `job`: the body every x86 family's
/// `Microkernel::compute` shares. `a_bytes_per_k` is the packed-A bytes per k step (2 for the
/// widened AVX2 layout, 1 otherwise).
///
/// # Safety
/// The CPU must have the features every function in `table` is compiled for: callers pass
/// their family's kernel object, which exists only after that check.
pub(crate) unsafe fn run_tile<K: Microkernel, const P: usize>(
    kernel: &K,
    table: &[[TileFn; P]],
    max: TileShape,
    a_bytes_per_k: usize,
    job: TileJob<'_>,
) {
    let layout = kernel.layout();
    job.assert_valid(layout, kernel.a_tile_bytes(job.rows, job.kp), max);
    let f = table[job.rows - 1][job.panels - 1];
    let a = &job.a[a_bytes_per_k * job.k0..];
    let b = &job.b[job.k0 * layout.nr..];
    // SAFETY: the CPU features are this function's precondition; `assert_valid` checked that
    // the K block lies inside the packed A and B and that `acc` holds the tile, which are
    // exactly the extents the tile reads and writes.
    unsafe {
        f(
            a.as_ptr(),
            kernel.a_row_stride(job.kp),
            b.as_ptr(),
            job.kp * layout.nr,
            job.kc,
            job.acc.as_mut_ptr(),
            job.acc_ld,
            job.accumulate,
        )
    }
}

/// [`crate::gemm::driver::column_fix_portable`] compiled for AVX2 (one `vpmulld` per 8
/// columns instead of a scalar multiply per column); `false` (nothing written) without AVX2.
pub(crate) fn column_fix(
    off: i32,
    za: i32,
    sums: &[i32],
    offsets: &[i32],
    corr: &mut [i32],
) -> bool {
    #[target_feature(enable = "avx2")]
    fn fix(off: i32, za: i32, sums: &[i32], offsets: &[i32], corr: &mut [i32]) {
        crate::gemm::driver::column_fix_portable(off, za, sums, offsets, corr);
    }
    if !crate::isa::Isa::Avx2.is_supported() {
        return false;
    }
    // SAFETY: AVX2 was detected just above.
    unsafe { fix(off, za, sums, offsets, corr) };
    true
}

/// `[[f::<R, 1>, …, f::<R, 8>] for R in rows]`.
macro_rules! tile_table {
    ($f:ident; $($r:literal),+) => {
        [$([
            $f::<$r, 1>, $f::<$r, 2>, $f::<$r, 3>, $f::<$r, 4>,
            $f::<$r, 5>, $f::<$r, 6>, $f::<$r, 7>, $f::<$r, 8>,
        ]),+]
    };
}

pub(crate) mod amx;
pub(crate) mod amx_config;
pub(crate) mod avx2;
pub(crate) mod avx2_saturating;
pub(crate) mod avx512_vnni;
pub(crate) mod avx_vnni;
mod epilogue;
pub(crate) mod peak;
