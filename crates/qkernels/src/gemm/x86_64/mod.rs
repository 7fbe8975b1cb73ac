//! x86-64 kernel families. Each file's `kernel()` is the safe constructor: it returns the
//! family's kernel object only after `Isa::is_supported()` confirmed the CPU features, and the
//! object's type has a private field so no other code can make one.
//!
//! Each family monomorphizes its register tile over (rows, panels) and picks the instance from
//! a table of function pointers, so tails in M and N run the same code with fewer registers.

/// A monomorphized tile: `(a, a_stride, b, panel_bytes, kc, acc, acc_ld, accumulate)` with
/// `a` and `b` already offset to the K block; see each family's `tile`.
pub(crate) type TileFn =
    unsafe fn(*const u8, usize, *const i8, usize, usize, *mut i32, usize, bool);

/// `[[f::<R, 1>, …, f::<R, 8>] for R in rows]`.
macro_rules! tile_table {
    ($f:ident; $($r:literal),+) => {
        [$([
            $f::<$r, 1>, $f::<$r, 2>, $f::<$r, 3>, $f::<$r, 4>,
            $f::<$r, 5>, $f::<$r, 6>, $f::<$r, 7>, $f::<$r, 8>,
        ]),+]
    };
}

pub(crate) mod avx2;
pub(crate) mod avx2_saturating;
pub(crate) mod avx512_vnni;
pub(crate) mod avx_vnni;
mod epilogue;
pub(crate) mod peak;
