//! aarch64 kernel families: baseline NEON (`smlal` by lane on widened operands), dotprod
//! (`sdot` by lane on XOR-0x80 activations) and i8mm (`usmmla` 2×2 tiles). Each file's
//! `kernel()` is the safe constructor: it hands out the family's kernel object only after
//! `Isa::is_supported()` confirmed the CPU features, and the object's type has a private
//! field so no other code can make one.
//!
//! The dotprod and i8mm instructions are used through `asm!` inside `#[target_feature]`
//! functions, because their intrinsics are unstable on Rust 1.95 (`stdarch_neon_dotprod`,
//! `stdarch_neon_i8mm`). Baseline NEON intrinsics are stable, and NEON is part of the
//! `aarch64-unknown-linux-gnu` baseline.
//!
//! Every family monomorphizes its register tile over (rows, panels) and picks the instance
//! from a table of function pointers, so tails in M and N run the same code with fewer
//! registers. Accumulators start at zero in registers; [`store`] adds the previous K blocks'
//! sums when the driver asks to accumulate.

use std::arch::aarch64::*;

use super::microkernel::TileShape;

pub(crate) mod dotprod;
mod epilogue;
pub(crate) mod i8mm;
pub(crate) mod neon;

// The epilogue and the NEON family rely on Advanced SIMD, which every aarch64 Linux target
// enables at compile time (the families check it at run time as well).
const _: () = assert!(cfg!(target_feature = "neon"));

/// One tile call: the packed operands of one K block and where its sums go.
#[derive(Clone, Copy)]
pub(crate) struct TileArgs {
    /// Packed A at the start of the K block (the family's layout and stride).
    pub a: *const u8,
    /// Bytes between consecutive packed A rows (row pairs for i8mm).
    pub a_stride: usize,
    /// The first panel at the start of the K block.
    pub b: *const i8,
    /// Bytes between consecutive panels.
    pub panel_bytes: usize,
    /// Length of the K block (a multiple of the family's `kr`).
    pub kc: usize,
    /// Row-major accumulators of the tile.
    pub acc: *mut i32,
    /// Row stride of `acc`.
    pub acc_ld: usize,
    /// Rows of the tile that exist (i8mm computes row pairs and stores only these).
    pub rows: usize,
    /// Add to `acc` instead of overwriting it.
    pub accumulate: bool,
}

/// A monomorphized tile; see each family's `tile` for its contract.
pub(crate) type TileFn = unsafe fn(&TileArgs);

/// `[[f::<R, 1>, …, f::<R, 4>] for R in rows]`.
macro_rules! tile_table {
    ($f:ident; $($r:literal),+) => {
        [$([$f::<$r, 1>, $f::<$r, 2>, $f::<$r, 3>, $f::<$r, 4>]),+]
    };
}
use tile_table;

/// The register tile of the NEON and dotprod families (16 accumulator vectors): 8 rows × 8
/// columns, 4 × 16 for M ≤ 4 and 2 × 32 for M ≤ 2, where each weight panel streams once.
fn tile_shape_8x8(m: usize) -> TileShape {
    match m {
        0..=2 => TileShape { rows: 2, panels: 4 },
        3..=4 => TileShape { rows: 4, panels: 2 },
        _ => TileShape { rows: 8, panels: 1 },
    }
}

/// The largest shape any aarch64 tile table covers (the bound `TileJob::assert_valid` checks).
const MAX_TILE: TileShape = TileShape { rows: 8, panels: 4 };

/// Writes four sums to `dst`, adding what is there when `accumulate` is set.
///
/// # Safety
/// `dst` is valid for reading and writing four i32.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn store(dst: *mut i32, v: int32x4_t, accumulate: bool) {
    // SAFETY: the caller guarantees four readable and writable i32 at `dst`.
    unsafe {
        let v = if accumulate {
            vaddq_s32(vld1q_s32(dst), v)
        } else {
            v
        };
        vst1q_s32(dst, v);
    }
}

#[cfg(test)]
mod tests {
    /// Three rows of K = 10 (values `10·r + k + 1`), packed with K padded to 16.
    fn rows() -> Vec<u8> {
        (0..3)
            .flat_map(|r| (0..10).map(move |k| 10 * r + k + 1))
            .collect()
    }

    #[test]
    fn i8mm_packs_row_pairs_by_k_octet_with_zero_padding() {
        let Some(kernel) = super::i8mm::kernel() else {
            return;
        };
        assert_eq!(kernel.a_tile_bytes(3, 16), 64);
        let mut dst = vec![0xEE; 64];
        kernel.pack_a(&rows(), 10, 3, 10, 16, &mut dst);
        let mut want = Vec::new();
        for pair in 0..2u8 {
            for octet in 0..2u8 {
                for r in [2 * pair, 2 * pair + 1] {
                    for k in 8 * octet..8 * octet + 8 {
                        want.push(if r < 3 && k < 10 { 10 * r + k + 1 } else { 0 });
                    }
                }
            }
        }
        assert_eq!(dst, want);
    }

    #[test]
    fn dotprod_packs_shifted_rows_with_a_padded_stride() {
        let Some(kernel) = super::dotprod::kernel() else {
            return;
        };
        assert_eq!(kernel.a_offset(), 128);
        assert_eq!(kernel.a_row_stride(12), 32);
        let mut dst = vec![0xEE; 3 * 32];
        kernel.pack_a(&rows(), 10, 3, 10, 12, &mut dst);
        for (r, row) in dst.chunks_exact(32).enumerate() {
            let want: Vec<u8> = (0..32)
                .map(|k| {
                    if k < 10 {
                        (10 * r as u8 + k + 1) ^ 0x80
                    } else {
                        0
                    }
                })
                .collect();
            assert_eq!(row, want.as_slice(), "row {r}");
        }
    }

    #[test]
    fn the_families_are_registered_in_the_dispatch_table() {
        use crate::gemm::KernelKind;
        use crate::gemm::microkernel::{kernel_compiled, kernel_for};
        for kind in [KernelKind::Neon, KernelKind::DotProd, KernelKind::I8mm] {
            assert!(kernel_compiled(kind), "{kind} is not registered");
            if kind.isa().is_supported() && kind.isa().is_at_most(crate::isa::detect()) {
                assert_eq!(kernel_for(kind).map(|k| k.kind()).ok(), Some(kind));
            }
        }
    }

    #[test]
    fn every_family_is_offered_exactly_when_the_cpu_has_it() {
        use crate::isa::Isa;
        assert_eq!(super::neon::kernel().is_some(), Isa::Neon.is_supported());
        assert_eq!(
            super::dotprod::kernel().is_some(),
            Isa::DotProd.is_supported()
        );
        assert_eq!(super::i8mm::kernel().is_some(), Isa::I8mm.is_supported());
    }
}
