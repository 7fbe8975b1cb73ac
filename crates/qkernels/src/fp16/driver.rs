//! The loop around the fp16 tiles: argument checks, panels × K blocks × row tiles, the
//! in-order sum of K blocks, and the bias/ReLU epilogue.

use half::f16;

use super::kernel::Fp16Kernel;
use super::pack::{PackedF16, PackedF32};
use super::{K_BLOCK, NR, scalar};
use crate::error::{GemmError, Result};
use crate::float::widen_f16_slice;
use crate::gemm;

/// What happens after the sum: `+ bias[n]` (one f32 rounding), then ReLU (`y < 0 → 0`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fp16Epilogue<'a> {
    /// Float bias, length N.
    pub bias: Option<&'a [f32]>,
    /// Fused ReLU.
    pub relu: bool,
}

/// Most rows per register tile (the AVX2 tile holds 6 × 16 accumulators).
pub(super) const MR: usize = 6;

/// The row tiles of `m` rows: `⌈m / 6⌉` tiles of near-equal height (8 rows → 4 + 4, so no
/// tile is left with one or two rows that reload the panel for little work).
pub(super) fn row_tiles(m: usize) -> impl Iterator<Item = (usize, usize)> {
    let tiles = m.div_ceil(MR).max(1);
    let (base, extra) = (m / tiles, m % tiles);
    (0..tiles).scan(0, move |r0, t| {
        let rows = base + usize::from(t < extra);
        let start = *r0;
        *r0 += rows;
        Some((start, rows))
    })
}

/// `out = epilogue(x wᵀ)` for `x` (`m` rows of K f32, row stride `ldx`) and the packed f16
/// weight, into `out` (`m` rows of N, row stride `ldo`), on [`Fp16Kernel::best`]. Returns the
/// family that ran.
///
/// Errors: strides smaller than the rows, buffers too short, a bias whose length is not N.
pub fn gemm_f32_f16(
    x: &[f32],
    m: usize,
    ldx: usize,
    w: &PackedF16,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    gemm_f32_f16_with(Fp16Kernel::best(), x, m, ldx, w, out, ldo, epilogue)
}

/// [`gemm_f32_f16`] on an explicitly requested family (tests and benches); every family gives
/// the same bits. Errors as [`gemm_f32_f16`], plus [`GemmError::UnsupportedFp16Kernel`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_f16_with(
    kind: Fp16Kernel,
    x: &[f32],
    m: usize,
    ldx: usize,
    w: &PackedF16,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    drive(
        kind,
        x,
        m,
        ldx,
        w.n(),
        w.k(),
        &|p| Panel::F16(w.panel(p)),
        out,
        ldo,
        epilogue,
    )
}

/// `out = epilogue(x wᵀ)` for an f32 weight packed like the f16 ones ([`PackedF32`]): the
/// same tiles, order and epilogue without the widening (the float LSTM's per-step products,
/// whose weight is packed once per forward instead of once per GEMM call). Errors as
/// [`gemm_f32_f16`].
pub fn gemm_f32_f32(
    x: &[f32],
    m: usize,
    ldx: usize,
    w: &PackedF32,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    gemm_f32_f32_with(Fp16Kernel::best(), x, m, ldx, w, out, ldo, epilogue)
}

/// [`gemm_f32_f32`] on an explicitly requested family.
#[allow(clippy::too_many_arguments)]
pub fn gemm_f32_f32_with(
    kind: Fp16Kernel,
    x: &[f32],
    m: usize,
    ldx: usize,
    w: &PackedF32,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    drive(
        kind,
        x,
        m,
        ldx,
        w.n(),
        w.k(),
        &|p| Panel::F32(w.panel(p)),
        out,
        ldo,
        epilogue,
    )
}

/// One packed panel (`[K][16]`) of either storage.
#[derive(Clone, Copy)]
pub(super) enum Panel<'a> {
    F16(&'a [f16]),
    F32(&'a [f32]),
}

impl<'a> Panel<'a> {
    /// Rows `k0..k0 + kc` of the panel.
    fn block(self, k0: usize, kc: usize) -> Panel<'a> {
        match self {
            Panel::F16(p) => Panel::F16(&p[k0 * NR..(k0 + kc) * NR]),
            Panel::F32(p) => Panel::F32(&p[k0 * NR..(k0 + kc) * NR]),
        }
    }
}

/// The shared loop of both weight storages.
#[allow(clippy::too_many_arguments)]
fn drive<'w>(
    kind: Fp16Kernel,
    x: &[f32],
    m: usize,
    ldx: usize,
    n: usize,
    k: usize,
    panel: &dyn Fn(usize) -> Panel<'w>,
    out: &mut [f32],
    ldo: usize,
    epilogue: Fp16Epilogue<'_>,
) -> Result<Fp16Kernel> {
    if !kind.is_runnable() {
        return Err(GemmError::UnsupportedFp16Kernel { kind });
    }
    gemm::check_matrix("activations", x.len(), m, k, ldx)?;
    gemm::check_matrix("output", out.len(), m, n, ldo)?;
    if let Some(b) = epilogue.bias
        && b.len() != n
    {
        return Err(GemmError::QParamsLength {
            what: "bias",
            expected: n,
            got: b.len(),
        });
    }
    if m == 0 {
        return Ok(kind);
    }
    let tile = Tile::new(kind)?;
    let mut acc = [0.0f32; MR * NR];
    let mut wide = Vec::new();
    for p in 0..n.div_ceil(NR) {
        let panel = panel(p);
        let n0 = p * NR;
        let cols = NR.min(n - n0);
        for k0 in (0..k).step_by(K_BLOCK) {
            let kc = K_BLOCK.min(k - k0);
            let wb = panel.block(k0, kc);
            for (r0, rows) in row_tiles(m) {
                let xs = &x[r0 * ldx + k0..];
                tile.run(xs, ldx, rows, wb, kc, &mut acc, &mut wide);
                for (r, a) in acc.chunks_exact(NR).take(rows).enumerate() {
                    let o = &mut out[(r0 + r) * ldo + n0..(r0 + r) * ldo + n0 + cols];
                    if k0 == 0 {
                        o.copy_from_slice(&a[..cols]);
                    } else {
                        o.iter_mut().zip(a).for_each(|(y, &v)| *y += v);
                    }
                }
            }
        }
    }
    apply_epilogue(epilogue, out, m, n, ldo);
    Ok(kind)
}

/// Adds the bias and applies ReLU (as asked) to the `m × n` output (row stride `ldo`), after
/// every K block's sums are in: the last step of each output's chain in both drivers.
pub(super) fn apply_epilogue(
    epilogue: Fp16Epilogue<'_>,
    out: &mut [f32],
    m: usize,
    n: usize,
    ldo: usize,
) {
    if epilogue.bias.is_none() && !epilogue.relu {
        return;
    }
    for r in 0..m {
        let o = &mut out[r * ldo..r * ldo + n];
        if let Some(b) = epilogue.bias {
            o.iter_mut().zip(b).for_each(|(y, &b)| *y += b);
        }
        if epilogue.relu {
            o.iter_mut().filter(|y| **y < 0.0).for_each(|y| *y = 0.0);
        }
    }
}

/// The tile function of the family that runs, with its CPU proof.
pub(super) enum Tile {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(super::x86_64::Avx2F16c),
    /// The AVX-512 family: its multi-panel tile for `gemm_f32_rows`, the AVX2 tile elsewhere.
    #[cfg(target_arch = "x86_64")]
    Avx512(super::avx512::Avx512, super::x86_64::Avx2F16c),
}

impl Tile {
    /// The tile of `kind`, or [`GemmError::UnsupportedFp16Kernel`] if this CPU cannot run it.
    pub(super) fn new(kind: Fp16Kernel) -> Result<Self> {
        match kind {
            Fp16Kernel::Scalar => Ok(Tile::Scalar),
            #[cfg(target_arch = "x86_64")]
            Fp16Kernel::Avx2F16c => super::x86_64::Avx2F16c::new()
                .map(Tile::Avx2)
                .ok_or(GemmError::UnsupportedFp16Kernel { kind }),
            #[cfg(target_arch = "x86_64")]
            Fp16Kernel::Avx512 => super::avx512::Avx512::new()
                .zip(super::x86_64::Avx2F16c::new())
                .map(|(z, y)| Tile::Avx512(z, y))
                .ok_or(GemmError::UnsupportedFp16Kernel { kind }),
            #[allow(unreachable_patterns)]
            _ => Err(GemmError::UnsupportedFp16Kernel { kind }),
        }
    }

    /// `acc = ` the FMA chains of `rows` rows of `x` against the panel block `w` (`kc` k).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn run(
        &self,
        x: &[f32],
        ldx: usize,
        rows: usize,
        w: Panel<'_>,
        kc: usize,
        acc: &mut [f32],
        wide: &mut Vec<f32>,
    ) {
        match (self, w) {
            (Tile::Scalar, Panel::F16(w)) => {
                wide.resize(kc * NR, 0.0);
                widen_f16_slice(&w[..kc * NR], wide);
                scalar::tile(x, ldx, rows, wide, kc, acc);
            }
            (Tile::Scalar, Panel::F32(w)) => scalar::tile(x, ldx, rows, w, kc, acc),
            #[cfg(target_arch = "x86_64")]
            (Tile::Avx2(t) | Tile::Avx512(_, t), Panel::F16(w)) => t.tile(x, ldx, rows, w, kc, acc),
            #[cfg(target_arch = "x86_64")]
            (Tile::Avx2(t) | Tile::Avx512(_, t), Panel::F32(w)) => {
                t.tile_f32(x, ldx, rows, w, kc, acc)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_tiles_cover_m_evenly() {
        for m in 1..40 {
            let tiles: Vec<_> = row_tiles(m).collect();
            assert_eq!(tiles.len(), m.div_ceil(MR));
            let mut next = 0;
            for &(r0, rows) in &tiles {
                assert_eq!(r0, next);
                assert!((1..=MR).contains(&rows));
                next += rows;
            }
            assert_eq!(next, m);
            let (lo, hi) = tiles
                .iter()
                .fold((MR, 0), |(l, h), t| (l.min(t.1), h.max(t.1)));
            assert!(hi - lo <= 1, "m = {m}: {tiles:?}");
        }
        assert_eq!(row_tiles(8).collect::<Vec<_>>(), [(0, 4), (4, 4)]);
    }
}
