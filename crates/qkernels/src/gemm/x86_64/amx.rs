//! Intel AMX family: `tdpbusd` on tile registers, 16 rows × 48 columns per tile.
//!
//! Same weight layout as the AVX-512 VNNI family (48-column panels `[K/4][48][4]`): the
//! 16 k-quads × 16 columns of one B tile are 16 rows of 64 bytes at stride 192, from
//! `b + 192·g + 64·v` for the panel's column vector `v`. Packed A is row-major u8 with rows
//! `round_up(kp, 64) + 64` bytes apart (64-byte aligned in the driver's scratch: unaligned
//! tile rows load several times slower), an A tile is `R` rows × 64 bytes. Tiles: C in
//! tmm0..tmm2 (`R` rows × 16 i32), A in tmm3, B in tmm4..tmm6; one K step of 64 is one A load,
//! up to three B loads and up to three `tdpbusd`. The last panel's column vectors beyond the
//! columns read back (zero padding) are neither loaded nor multiplied nor stored.
//!
//! `tdpbusd` adds exact u8 × i8 products into i32 (wrapping, like every family), so the
//! accumulators equal the AVX-512 VNNI family's bit for bit and the shared AVX-512 epilogues
//! finish them.
//!
//! K tails (a block length `kc` not a multiple of 64) run one more step on copies: the tail's
//! A bytes and B k-quads are copied into zero-filled, aligned stack tiles, so no load reads
//! past the packed data (zero A × any B adds 0 exactly).
//!
//! Small tiles (fewer than [`MIN_ROWS`] rows, and every tile of a GEMM with M < [`MIN_M`])
//! run the AVX-512 VNNI tiles, which are faster there (measured at M = 1 and 2); those read
//! the same packed A.
//!
//! Tile configuration: palette 1 with the tile rows of the call. Each call stores the
//! thread's current configuration (`sttilecfg`, a few ns) and loads the wanted one
//! (`ldtilecfg`, ~50 ns, which also zeroes the tiles) only if it differs, inside the same
//! `asm!` block as the compute, so another AMX user on the thread (which may reconfigure or
//! `tilerelease`) never leaves a stale shape behind. The tile state is not released after a
//! call (`tilerelease` is optional; the OS saves and restores it with the thread's xstate).

use std::arch::asm;
use std::sync::OnceLock;

use super::amx_config::{TileConfig, load_tile_config_if_changed};
use super::avx512_vnni;
use super::epilogue::{self, CpuChecked};
use super::run_tile;
use crate::gemm::kind::KernelKind;
use crate::gemm::microkernel::{Microkernel, PanelLayout, TileJob, TileShape};
use crate::gemm::pipeline::{OutRow, RowFix, Stage};
use crate::isa::Isa;

/// Column vectors (16 i32 columns each) per panel.
const V: usize = 3;
const LAYOUT: PanelLayout = PanelLayout { nr: 16 * V, kr: 4 };
/// Tile rows (the AMX maximum).
const ROWS: usize = 16;
const MAX: TileShape = TileShape {
    rows: ROWS,
    panels: 1,
};
/// GEMMs with fewer rows run the AVX-512 VNNI tiles throughout (K = N = 1024, one thread:
/// M = 1 7.7 µs on VNNI against 10.9 µs on AMX tiles, M = 2 9.8 against 11.5, M = 4 15.1
/// against 12.9, M = 8 28.3 against 14.9).
pub(crate) const MIN_M: usize = 3;
/// Tiles with fewer rows (M tails) run the AVX-512 VNNI tiles.
pub(crate) const MIN_ROWS: usize = 3;
/// Bytes of one packed B k-quad row (48 columns × 4 k).
const B_ROW: usize = 4 * LAYOUT.nr;

/// The family's kernel object; exists only if the CPU has AMX-TILE/AMX-INT8 with the OS
/// permission granted (and AVX-512 F/BW/VL/VNNI, part of the `Isa::Amx` level).
pub(crate) struct AmxKernel {
    cpu: CpuChecked,
}

/// The safe constructor: `Some` only after the CPU (and OS permission) check.
pub(crate) fn kernel() -> Option<&'static dyn Microkernel> {
    static KERNEL: OnceLock<Option<AmxKernel>> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            if !Isa::Amx.is_supported() {
                return None;
            }
            CpuChecked::new_wide().map(|cpu| AmxKernel { cpu })
        })
        .as_ref()
        .map(|k| k as &dyn Microkernel)
}

/// The GEMM tiles' configuration: C tiles tmm0..tmm2 and the A tile tmm3 with `rows` rows,
/// B tiles tmm4..tmm6 with 16; tmm7 is unused.
fn tile_config(rows: usize) -> TileConfig {
    debug_assert!((1..=ROWS).contains(&rows));
    let r = rows as u8;
    TileConfig::with_rows([r, r, r, r, ROWS as u8, ROWS as u8, ROWS as u8, 0])
}

/// A 16 × 64-byte A tile on the stack (K tails).
#[repr(C, align(64))]
struct TailA([u8; ROWS * 64]);

/// 16 k-quad rows of a B panel on the stack (K tails).
#[repr(C, align(64))]
struct TailB([i8; ROWS * B_ROW]);

/// `steps` K steps of 64 into one `rows × 16·VL` C tile; see [`STEPS`].
type StepsFn = unsafe fn(&TileConfig, *const u8, usize, *const i8, usize, *mut i32, usize, bool);

/// `STEPS[vl − 1]`: the compute for a panel of which `vl` column vectors are used.
const STEPS: [StepsFn; V] = [steps_1, steps_2, steps_3];

impl Microkernel for AmxKernel {
    fn kind(&self) -> KernelKind {
        KernelKind::Amx
    }

    fn layout(&self) -> PanelLayout {
        LAYOUT
    }

    fn tile_shape(&self, m: usize) -> TileShape {
        if m < MIN_M {
            avx512_vnni::tile_shape(m)
        } else {
            MAX
        }
    }

    fn a_row_stride(&self, kp: usize) -> usize {
        kp.next_multiple_of(64) + 64
    }

    fn compute(&self, job: TileJob<'_>) {
        if job.rows < MIN_ROWS || job.panels > 1 {
            let vl = avx512_vnni::last_panel_vectors(&job);
            // SAFETY: `self` exists only after `kernel()` checked `Isa::Amx`, which includes
            // the AVX-512 F/BW/VL/VNNI the tiles of `TABLES` are compiled for; `run_tile`
            // checks the job against `avx512_vnni::MAX` and reads A with this family's row
            // stride.
            unsafe { run_tile(self, &avx512_vnni::TABLES[vl - 1], avx512_vnni::MAX, 1, job) };
            return;
        }
        job.assert_valid(LAYOUT, self.a_tile_bytes(job.rows, job.kp), MAX);
        let vl = avx512_vnni::last_panel_vectors(&job);
        let f = STEPS[vl - 1];
        let cfg = tile_config(job.rows);
        let a_stride = self.a_row_stride(job.kp);
        let a = &job.a[job.k0..];
        let b = &job.b[job.k0 * LAYOUT.nr..];
        let acc = job.acc.as_mut_ptr();
        let acc_stride = job.acc_ld * 4;
        let (steps, tail) = (job.kc / 64, job.kc % 64);
        if steps > 0 {
            // SAFETY: the CPU has AMX-TILE/AMX-INT8 with the permission granted (`self`
            // exists only after that check). `assert_valid` checked `rows ≤ 16`, that the K
            // block `k0..k0 + kc` lies inside the packed A rows (stride `a_stride ≥ kp`,
            // `a.len() ≥ rows·a_stride`) and the packed panel (`b.len() ≥ 48·kp`), and that
            // `acc` holds `rows` rows of 48 i32 at stride `acc_ld`: the extents `steps_*`
            // reads (A: `rows` × `64·steps ≤ kc` bytes; B: `16·steps ≤ kc/4` quad rows of
            // `64·vl ≤ 192` bytes) and reads and writes (C: `rows` × `16·vl` i32).
            unsafe {
                f(
                    &cfg,
                    a.as_ptr(),
                    a_stride,
                    b.as_ptr(),
                    steps,
                    acc,
                    acc_stride,
                    job.accumulate,
                )
            };
        }
        if tail > 0 {
            let done = 64 * steps;
            let mut ta = TailA([0; ROWS * 64]);
            for (r, dst) in ta.0.chunks_exact_mut(64).take(job.rows).enumerate() {
                let at = r * a_stride + done;
                dst[..tail].copy_from_slice(&a[at..at + tail]);
            }
            let mut tb = TailB([0; ROWS * B_ROW]);
            let quads = &b[done / 4 * B_ROW..(done + tail) / 4 * B_ROW];
            tb.0[..quads.len()].copy_from_slice(quads);
            // SAFETY: as above for the CPU and `acc`; A and B are the two stack tiles, whole
            // (16 rows of 64 bytes at stride 64, 16 quad rows of 192 bytes at stride 192),
            // and one step reads `rows` A rows and 16 B rows of `64·vl` bytes from them.
            unsafe {
                f(
                    &cfg,
                    ta.0.as_ptr(),
                    64,
                    tb.0.as_ptr(),
                    1,
                    acc,
                    acc_stride,
                    job.accumulate || steps > 0,
                )
            };
        }
    }

    fn finish(&self, stage: &Stage, n0: usize, raw: &[i32], out: OutRow<'_>) {
        epilogue::finish(stage, n0, raw, None, out, self.cpu);
    }

    fn finish_fixed(
        &self,
        stage: &Stage,
        n0: usize,
        acc: &mut [i32],
        fix: RowFix<'_>,
        out: OutRow<'_>,
    ) {
        epilogue::finish_fixed(stage, n0, acc, fix, out, self.cpu);
    }
}

/// Defines `steps_VL`: configure the tiles for `cfg` (if the thread's configuration differs),
/// set the C tiles (load from `acc`, or zero unless `accumulate`), run `steps ≥ 1` K steps of
/// 64 (`a`, `b` advanced by 64 bytes and 16 quad rows per step), store the C tiles to `acc`.
///
/// # Safety (of each `steps_VL`)
/// AMX-TILE and AMX-INT8 available with the OS permission granted; `steps ≥ 1`; `cfg` was
/// made by [`tile_config`]`(rows)`; `a` points at `rows` rows (stride `a_stride`) of at
/// least `64·steps` readable bytes; `b` at `16·steps` rows of 192 bytes (stride 192) of which
/// the first `64·VL` bytes are read; `acc` at `rows` rows (stride `acc_stride` bytes) of
/// `16·VL` i32, read if `accumulate` and written.
macro_rules! steps_fn {
    ($name:ident; [$($load:literal),+]; [$($zero:literal),+]; [$($step:literal),+]; [$($store:literal),+]) => {
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(
            cfg: &TileConfig,
            a: *const u8,
            a_stride: usize,
            b: *const i8,
            steps: usize,
            acc: *mut i32,
            acc_stride: usize,
            accumulate: bool,
        ) {
            debug_assert!(steps >= 1);
            let mut current = TileConfig::zeroed();
            // SAFETY: the function's contract: the memory operands stay inside the extents
            // it names, and `current` is a writable, aligned 64-byte configuration buffer.
            unsafe {
                asm!(
                    load_tile_config_if_changed!(),
                    "test {accf}, {accf}",
                    "jz 5f",
                    $($load,)+
                    "jmp 6f",
                    "5:",
                    $($zero,)+
                    "6:",
                    $($step,)+
                    "add {a}, 64",
                    "add {b}, 3072",
                    "dec {n}",
                    "jnz 6b",
                    $($store,)+
                    cur = in(reg) current.0.as_mut_ptr(),
                    cfg = in(reg) cfg.0.as_ptr(),
                    t = out(reg) _,
                    accf = in(reg) usize::from(accumulate),
                    a = inout(reg) a => _,
                    sa = in(reg) a_stride,
                    b = inout(reg) b => _,
                    sb = in(reg) B_ROW,
                    n = inout(reg) steps => _,
                    c = in(reg) acc,
                    sc = in(reg) acc_stride,
                    options(nostack),
                );
            }
        }
    };
}

steps_fn!(steps_1;
    ["tileloadd tmm0, [{c} + {sc}*1]"];
    ["tilezero tmm0"];
    [
        "tileloadd tmm3, [{a} + {sa}*1]",
        "tileloadd tmm4, [{b} + {sb}*1]",
        "tdpbusd tmm0, tmm3, tmm4"
    ];
    ["tilestored [{c} + {sc}*1], tmm0"]
);

steps_fn!(steps_2;
    ["tileloadd tmm0, [{c} + {sc}*1]", "tileloadd tmm1, [{c} + {sc}*1 + 64]"];
    ["tilezero tmm0", "tilezero tmm1"];
    [
        "tileloadd tmm3, [{a} + {sa}*1]",
        "tileloadd tmm4, [{b} + {sb}*1]",
        "tdpbusd tmm0, tmm3, tmm4",
        "tileloadd tmm5, [{b} + {sb}*1 + 64]",
        "tdpbusd tmm1, tmm3, tmm5"
    ];
    ["tilestored [{c} + {sc}*1], tmm0", "tilestored [{c} + {sc}*1 + 64], tmm1"]
);

steps_fn!(steps_3;
    [
        "tileloadd tmm0, [{c} + {sc}*1]",
        "tileloadd tmm1, [{c} + {sc}*1 + 64]",
        "tileloadd tmm2, [{c} + {sc}*1 + 128]"
    ];
    ["tilezero tmm0", "tilezero tmm1", "tilezero tmm2"];
    [
        "tileloadd tmm3, [{a} + {sa}*1]",
        "tileloadd tmm4, [{b} + {sb}*1]",
        "tdpbusd tmm0, tmm3, tmm4",
        "tileloadd tmm5, [{b} + {sb}*1 + 64]",
        "tdpbusd tmm1, tmm3, tmm5",
        "tileloadd tmm6, [{b} + {sb}*1 + 128]",
        "tdpbusd tmm2, tmm3, tmm6"
    ];
    [
        "tilestored [{c} + {sc}*1], tmm0",
        "tilestored [{c} + {sc}*1 + 64], tmm1",
        "tilestored [{c} + {sc}*1 + 128], tmm2"
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_exists_exactly_when_the_level_is_supported() {
        assert_eq!(kernel().is_some(), Isa::Amx.is_supported());
    }

    /// The `tdpbusd` path itself (rows ≥ `MIN_ROWS`, one panel), job by job against a
    /// scalar sum: every row count, 1..3 column vectors, K blocks with and without tails, at
    /// an offset `k0`, overwriting and accumulating.
    #[test]
    fn tiles_equal_scalar_sums() {
        let Some(kernel) = kernel() else {
            return;
        };
        let mut seed = 1u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as u8
        };
        for kp in [4, 60, 64, 68, 132, 256, 516] {
            let stride = kernel.a_row_stride(kp);
            let a: Vec<u8> = (0..ROWS * stride).map(|_| next()).collect();
            let b: Vec<i8> = (0..kp * 48).map(|_| next() as i8).collect();
            for rows in MIN_ROWS..=ROWS {
                for cols in [1, 16, 17, 33, 48] {
                    for (k0, kc) in [(0, kp), (0, kp.min(64)), (kp / 8 * 4, kp - kp / 8 * 4)] {
                        if kc == 0 {
                            continue;
                        }
                        for accumulate in [false, true] {
                            let acc_ld = 96;
                            let init: Vec<i32> = (0..rows * acc_ld).map(|i| i as i32 - 7).collect();
                            let mut acc = init.clone();
                            kernel.compute(TileJob {
                                a: &a,
                                rows,
                                b: &b,
                                panels: 1,
                                cols,
                                kp,
                                k0,
                                kc,
                                accumulate,
                                acc: &mut acc,
                                acc_ld,
                            });
                            for r in 0..rows {
                                for c in 0..cols {
                                    let mut want =
                                        if accumulate { init[r * acc_ld + c] } else { 0 };
                                    for k in k0..k0 + kc {
                                        let w = b[(k / 4) * 192 + c * 4 + k % 4];
                                        want = want.wrapping_add(
                                            i32::from(a[r * stride + k]) * i32::from(w),
                                        );
                                    }
                                    assert_eq!(
                                        acc[r * acc_ld + c],
                                        want,
                                        "kp {kp} rows {rows} cols {cols} k {k0}+{kc} acc {accumulate}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn config_shapes_c_and_a_by_rows_and_b_by_16() {
        let c = tile_config(5);
        assert_eq!(c.0[0], 1);
        assert_eq!(&c.0[48..56], &[5, 5, 5, 5, 16, 16, 16, 0]);
        assert_eq!(c.0[16 + 2 * 7], 0);
        assert!((0..7).all(|t| c.0[16 + 2 * t] == 64));
    }
}
