//! The per-family kernel interface ([`Microkernel`]) and the table from [`KernelKind`] to the
//! compiled kernels. See the module docs of [`crate::gemm`] for the contract.

use super::kind::KernelKind;
use super::pipeline::{OutRow, RowFix, Stage};
use crate::error::{GemmError, Result};

/// How a family packs weights: panels of `nr` columns, `[K/kr][nr][kr]` bytes per panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PanelLayout {
    /// Output columns per panel.
    pub nr: usize,
    /// Consecutive k values stored together per column (K is padded to a multiple).
    pub kr: usize,
}

/// Register tile: up to `rows` output rows × `panels` panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TileShape {
    /// Output rows per tile (MR).
    pub rows: usize,
    /// Panels per tile (tile width = `panels · nr`).
    pub panels: usize,
}

/// One micro-kernel call over the K block `k0..k0 + kc`:
/// `acc[r·acc_ld + c] (+)= Σ_{k0 ≤ k < k0+kc} (A[r,k] − a_offset)·B[k,c]` for `r < rows`,
/// `c < panels·nr`; overwriting `acc` when `accumulate` is false, adding to it otherwise.
pub(crate) struct TileJob<'a> {
    /// The tile's packed activations over all of K ([`Microkernel::pack_a`] output, length
    /// [`Microkernel::a_tile_bytes`]).
    pub a: &'a [u8],
    /// Rows in the tile, `1..=TileShape::rows`.
    pub rows: usize,
    /// `panels` consecutive packed panels of `kp · nr` bytes each (all of K).
    pub b: &'a [i8],
    /// Panels in the tile, `1..=TileShape::panels`.
    pub panels: usize,
    /// Columns the caller reads back, `(panels − 1)·nr < cols ≤ panels·nr`: a family may skip
    /// the zero-padded columns of the last panel (their accumulators are then not written).
    pub cols: usize,
    /// K padded to a multiple of `kr` (the packed length).
    pub kp: usize,
    /// First k of the block (a multiple of `kr`).
    pub k0: usize,
    /// Length of the block (a positive multiple of `kr`, `k0 + kc ≤ kp`).
    pub kc: usize,
    /// Add to `acc` instead of overwriting it.
    pub accumulate: bool,
    /// Accumulators, at least `(rows − 1)·acc_ld + panels·nr` values.
    pub acc: &'a mut [i32],
    /// Row stride of `acc` (≥ `panels·nr`).
    pub acc_ld: usize,
}

impl TileJob<'_> {
    /// Checks every length the kernels rely on (the safe boundary of the unsafe kernels).
    pub(crate) fn assert_valid(&self, layout: PanelLayout, a_bytes: usize, shape: TileShape) {
        assert!(
            self.rows >= 1 && self.rows <= shape.rows,
            "tile rows {}",
            self.rows
        );
        assert!(
            self.panels >= 1 && self.panels <= shape.panels,
            "tile panels {}",
            self.panels
        );
        assert!(
            self.kp.is_multiple_of(layout.kr)
                && self.k0.is_multiple_of(layout.kr)
                && self.kc.is_multiple_of(layout.kr)
                && self.kc > 0
                && self.k0 + self.kc <= self.kp,
            "k block {}..{} of {}",
            self.k0,
            self.k0 + self.kc,
            self.kp
        );
        assert!(self.a.len() >= a_bytes, "packed A too short");
        assert!(
            self.b.len() >= self.panels * self.kp * layout.nr,
            "packed B too short"
        );
        assert!(
            self.cols > (self.panels - 1) * layout.nr && self.cols <= self.panels * layout.nr,
            "tile columns {}",
            self.cols
        );
        assert!(self.acc_ld >= self.panels * layout.nr, "acc_ld too small");
        assert!(
            self.acc.len() >= (self.rows - 1) * self.acc_ld + self.panels * layout.nr,
            "acc too short"
        );
    }
}

/// A kernel family. Implementations are zero-sized values that can only be obtained through
/// [`kernel_for`], which checks the CPU first; so `compute` may call `#[target_feature]` code.
pub(crate) trait Microkernel: Sync {
    /// The family.
    fn kind(&self) -> KernelKind;
    /// Weight panel layout.
    fn layout(&self) -> PanelLayout;
    /// Register tile for a GEMM with `m` rows (small `m` may choose wider tiles).
    fn tile_shape(&self, m: usize) -> TileShape;
    /// K block length the driver iterates in (a multiple of `kr`; default 512), so the
    /// tile's weight block stays in L1 while it is reused across the M tiles.
    fn k_block(&self) -> usize {
        512
    }
    /// Bytes between consecutive packed A rows (default `kp`; x86 families pad it by a
    /// cache line so rows of a 4 KiB-multiple K do not alias in the L1 sets).
    fn a_row_stride(&self, kp: usize) -> usize {
        kp
    }
    /// Bytes of packed A for a tile of `rows` rows (default: `rows · a_row_stride(kp)`).
    fn a_tile_bytes(&self, rows: usize, kp: usize) -> usize {
        rows * self.a_row_stride(kp)
    }
    /// The kernel computes `Σ (a − a_offset)·b` (e.g. 128 when activations are XORed with
    /// 0x80 for a signed dot product); the driver adds `a_offset·Σ_k W[n,k]` back.
    fn a_offset(&self) -> i32 {
        0
    }
    /// Packs `rows` activation rows (`a[r·lda ..][..k]`) into `dst` (exactly
    /// [`Microkernel::a_tile_bytes`] long), zero-padding each row to the row stride.
    /// Default: row-major u8 with stride [`Microkernel::a_row_stride`].
    fn pack_a(&self, a: &[u8], lda: usize, rows: usize, k: usize, kp: usize, dst: &mut [u8]) {
        let stride = self.a_row_stride(kp);
        for (r, d) in dst.chunks_exact_mut(stride).take(rows).enumerate() {
            d[..k].copy_from_slice(&a[r * lda..r * lda + k]);
            d[k..].fill(0);
        }
    }
    /// Runs one tile (see [`TileJob`]).
    fn compute(&self, job: TileJob<'_>);
    /// Converts corrected sums of columns `n0..n0+raw.len()` of one row (default: scalar).
    fn finish(&self, stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
        stage.finish_scalar(n0, raw, out);
    }
    /// Like [`Microkernel::finish`] on raw accumulators: applies the zero-point correction
    /// `fix` first ([`RowFix::apply`]; vector epilogues fuse it). `acc` is scratch.
    fn finish_fixed(
        &self,
        stage: &Stage,
        n0: usize,
        acc: &mut [i32],
        fix: RowFix<'_>,
        out: OutRow<'_>,
    ) {
        fix.apply(acc);
        self.finish(stage, n0, acc, out);
    }
}

/// Whether a kernel for `kind` is compiled into this build (ignores the CPU).
pub(crate) fn kernel_compiled(kind: KernelKind) -> bool {
    match kind {
        KernelKind::Scalar => true,
        KernelKind::Avx2
        | KernelKind::Avx2Saturating
        | KernelKind::AvxVnni
        | KernelKind::Avx512Vnni
        | KernelKind::Amx => cfg!(target_arch = "x86_64"),
        KernelKind::Neon | KernelKind::DotProd | KernelKind::I8mm => {
            cfg!(target_arch = "aarch64")
        }
    }
}

/// The kernel of `kind`, if this process may run it (compiled, CPU, `QSTACK_ISA` cap).
pub(crate) fn kernel_for(kind: KernelKind) -> Result<&'static dyn Microkernel> {
    let unsupported = GemmError::UnsupportedKernel { kind };
    if !kind.is_runnable() {
        return Err(unsupported);
    }
    let found: Option<&'static dyn Microkernel> = match kind {
        KernelKind::Scalar => Some(&super::scalar::ScalarKernel),
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2 => super::x86_64::avx2::kernel(),
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx2Saturating => super::x86_64::avx2_saturating::kernel(),
        #[cfg(target_arch = "x86_64")]
        KernelKind::AvxVnni => super::x86_64::avx_vnni::kernel(),
        #[cfg(target_arch = "x86_64")]
        KernelKind::Avx512Vnni => super::x86_64::avx512_vnni::kernel(),
        #[cfg(target_arch = "x86_64")]
        KernelKind::Amx => super::x86_64::amx::kernel(),
        #[cfg(target_arch = "aarch64")]
        KernelKind::Neon => super::aarch64::neon::kernel(),
        #[cfg(target_arch = "aarch64")]
        KernelKind::DotProd => super::aarch64::dotprod::kernel(),
        #[cfg(target_arch = "aarch64")]
        KernelKind::I8mm => super::aarch64::i8mm::kernel(),
        #[allow(unreachable_patterns)]
        _ => None,
    };
    found.ok_or(unsupported)
}
