//! The x86 small-C kernel on AVX-512 VNNI (+ VBMI): 16 horizontally adjacent output pixels
//! per zmm register, one register per output channel, for 2-d convolutions with width
//! stride 1 (LeNet's first layer: C = 1, 5×5, O = 6), optionally followed by a fused 2×2
//! max pool with stride 2.
//!
//! Per image plane every input line of each channel is turned once into a "quad line"
//! `Q[xx] = (L[xx], L[xx + dw], L[xx + 2dw], L[xx + 3dw])` (4 bytes, one `vpermb` per 16),
//! `L` being the line padded left and right with the input zero point. Output pixel `p`'s
//! taps `4j .. 4j + 4` of kernel row `ty` are then the dword at `Q[p + 4j·dw]`, so 16
//! consecutive pixels are one 64-byte load, and one `vpdpbusd` against the broadcast weight
//! quad `W[o, ty, 4j .. 4j + 4, c]` (zero past the kernel width) adds the four exact u8·i8
//! products to 16 i32 accumulators. Lines above or below the input read a line of zero
//! points. Asymmetric weights add one more accumulator with weights 1 (the window sum). Two
//! blocks are accumulated at once (two rows, or two halves of a row) for independent chains.
//!
//! The requantization is the fbgemm formula of [`crate::gemm::requantize_one`] on 16 lanes;
//! the up to 8 byte columns are transposed to NHWC pixels by two `vpermt2b` and stored with
//! byte masks. With the fused pool, the corrected sums of the two conv rows and of each pair
//! of adjacent pixels are reduced with signed maxima before the requantization: the caller
//! checks that no sum can reach `cvtps2dq`'s overflow, where requantization is
//! non-decreasing, so the maximum of the requantized values is the requantized maximum.
#![allow(clippy::needless_range_loop)] // register arrays indexed in unrolled loops

use std::arch::x86_64::*;

use crate::par;

use super::geometry::ConvGeometry;
use super::implicit::Plan;
use crate::gemm::Stage;

/// Accumulator columns: up to 8 outputs plus the window sum.
const COLS: usize = 9;
/// Output pixels per block (i32 lanes of a zmm).
const LANES: usize = 16;

/// Whether the kernel handles `g` on this CPU (the caller checked that the weights were
/// packed for the AVX-512 VNNI family): 2-d (or 1-d) with width stride 1 and a width
/// dilation of at most 16 (one `vpermb` builds 16 quads), and the CPU has AVX-512 VBMI.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.kernel[0] == 1
        && g.stride[0] == 1
        && g.padding[0] == 0
        && g.stride[2] == 1
        && g.dilation[2] <= 16
        && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// The requantization constants of up to 8 output channels, broadcast once per call, and
/// the byte-transpose tables for `o` channels.
struct ZVecs {
    bias_a: [__m512; 8],
    bias_b: [__m512; 8],
    mult: [__m512; 8],
    zw: [__m512i; 8],
    lo: __m512i,
    hi: __m512i,
    zp: __m512i,
    /// `vpermt2b` indices of output bytes `0..64` and `64..128`: byte `p·o + c` ← column
    /// `c`'s byte `p` (column `c` at `16·c` of the two sources).
    tr: [__m512i; 2],
}

impl ZVecs {
    /// Broadcasts the stage's vectors of output channels `0..o` (`o ≤ 8`).
    #[target_feature(enable = "avx512f,avx512bw")]
    #[allow(clippy::needless_range_loop)] // col indexes five arrays
    fn new(stage: &Stage, o: usize, zw: &[i32]) -> Self {
        let Stage::Requant(rq) = stage else {
            unreachable!("the conv entry point prepares a requantize stage")
        };
        let mut idx = [0u8; 128];
        for p in 0..LANES {
            for ch in 0..o {
                idx[p * o + ch] = (ch * LANES + p) as u8;
            }
        }
        let mut v = ZVecs {
            bias_a: [_mm512_setzero_ps(); 8],
            bias_b: [_mm512_setzero_ps(); 8],
            mult: [_mm512_setzero_ps(); 8],
            zw: [_mm512_setzero_si512(); 8],
            lo: _mm512_set1_epi32(rq.lo - rq.zero_point),
            hi: _mm512_set1_epi32(rq.hi - rq.zero_point),
            zp: _mm512_set1_epi32(rq.zero_point),
            // SAFETY: each half of `idx` is 64 bytes; unaligned loads.
            tr: unsafe {
                [
                    _mm512_loadu_si512(idx.as_ptr().cast()),
                    _mm512_loadu_si512(idx[64..].as_ptr().cast()),
                ]
            },
        };
        for col in 0..o {
            v.bias_a[col] = _mm512_set1_ps(rq.bias_a[col]);
            v.bias_b[col] = _mm512_set1_ps(rq.bias_b[col]);
            v.mult[col] = _mm512_set1_ps(rq.mult[col]);
            v.zw[col] = _mm512_set1_epi32(zw[col]);
        }
        v
    }
}

/// One quad line per kernel row: its offset in the plane's quad buffer (the line of
/// channel 0, at pixel 0) and the channel stride (0 for the zero-point line).
type Rows<'a> = &'a [(usize, usize)];

/// `R` blocks of 16 pixels: block `r` starts at pixel `p0[r]` of the quad lines `rows[r]`
/// of `quads`; `acc[r][col] = init[col] + Σ_{ty, c, j} vpdpbusd(Q, wq[ty, c, j][col])`.
///
/// # Safety
/// AVX-512 F and VNNI are available; for every `r`, `ty`, `ci < c` and `j < jn`,
/// `rows[r][ty].0 + p0[r] + ci·stride + 4j·dw + 16 ≤ quads.len()`; every `rows[r].len()`
/// equals `kh` and `wq` holds `kh·c·jn·COLS` values.
#[target_feature(enable = "avx512f,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn accumulate<const N: usize, const R: usize>(
    quads: &[u32],
    rows: [Rows<'_>; R],
    p0: [usize; R],
    c: usize,
    jn: usize,
    dw: usize,
    wq: &[i32],
    init: &[i32; COLS],
) -> [[__m512i; N]; R] {
    let mut acc = [[_mm512_setzero_si512(); N]; R];
    for a in acc.iter_mut() {
        for (v, &i) in a.iter_mut().zip(init) {
            *v = _mm512_set1_epi32(i);
        }
    }
    let base = quads.as_ptr();
    let mut wr = wq.as_ptr();
    for ty in 0..rows[0].len() {
        for ci in 0..c {
            for j in 0..jn {
                let x: [__m512i; R] = std::array::from_fn(|r| {
                    let (off, cs) = rows[r][ty];
                    // SAFETY: in bounds by the function's contract.
                    unsafe {
                        _mm512_loadu_si512(base.add(off + p0[r] + ci * cs + 4 * j * dw).cast())
                    }
                });
                for col in 0..N {
                    // SAFETY: `wr` walks the rows of `wq` in loop order (contract).
                    let wv = _mm512_set1_epi32(unsafe { *wr.add(col) });
                    for r in 0..R {
                        acc[r][col] = _mm512_dpbusd_epi32(acc[r][col], x[r], wv);
                    }
                }
                // SAFETY: stays within (or one past the end of) `wq`.
                wr = unsafe { wr.add(COLS) };
            }
        }
    }
    acc
}

/// Column `col` of a block's sums with the weight zero point's window-sum term removed
/// (`acc[O]` holds the window sum when `N > O`: asymmetric weights).
#[target_feature(enable = "avx512f")]
fn corrected<const O: usize, const N: usize>(
    acc: &[__m512i; N],
    col: usize,
    zv: &ZVecs,
) -> __m512i {
    if N > O {
        _mm512_sub_epi32(acc[col], _mm512_mullo_epi32(acc[O], zv.zw[col]))
    } else {
        acc[col]
    }
}

/// Requantizes 16 corrected sums of output channel `col` to bytes (the fbgemm formula,
/// clamped to `0..=255` before the narrowing).
#[target_feature(enable = "avx512f")]
fn requant(raw: __m512i, col: usize, zv: &ZVecs) -> __m128i {
    let xf = _mm512_fmadd_ps(zv.bias_a[col], zv.bias_b[col], _mm512_cvtepi32_ps(raw));
    let q = _mm512_cvtps_epi32(_mm512_mul_ps(xf, zv.mult[col]));
    // clamp(q + zp, lo, hi) without overflowing q + zp; the result is in 0..=255
    let v = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, zv.lo), zv.hi), zv.zp);
    _mm512_cvtepi32_epi8(v)
}

/// Stores the first `n` (≤ 16) pixels of `O` requantized byte columns (`cols`, pixel `p`
/// of column `c` at byte `p` of `cols[c]`) to `dst` as NHWC bytes (`n·O` bytes).
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn store_pixels<const O: usize>(cols: &[__m128i; O], n: usize, zv: &ZVecs, dst: &mut [u8]) {
    let bytes = n * O;
    let dst = &mut dst[..bytes];
    let col = |c: usize| if c < O { cols[c] } else { _mm_setzero_si128() };
    let four = |c: usize| {
        _mm512_inserti32x4::<3>(
            _mm512_inserti32x4::<2>(
                _mm512_inserti32x4::<1>(_mm512_castsi128_si512(col(c)), col(c + 1)),
                col(c + 2),
            ),
            col(c + 3),
        )
    };
    let (lo, hi) = (
        four(0),
        if O > 4 {
            four(4)
        } else {
            _mm512_setzero_si512()
        },
    );
    let mask = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let first = _mm512_permutex2var_epi8(lo, zv.tr[0], hi);
    // SAFETY: the mask selects the first min(bytes, 64) bytes of `dst` (length `bytes`);
    // masked-off bytes are neither read nor written.
    unsafe { _mm512_mask_storeu_epi8(dst.as_mut_ptr().cast(), mask(bytes), first) };
    if bytes > 64 {
        let second = _mm512_permutex2var_epi8(lo, zv.tr[1], hi);
        // SAFETY: bytes 64..bytes of `dst` (length `bytes` ≤ 128), as above.
        unsafe { _mm512_mask_storeu_epi8(dst[64..].as_mut_ptr().cast(), mask(bytes - 64), second) };
    }
}

/// Corrects, requantizes and stores the first `n` pixels of one block.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn finish_block<const O: usize, const N: usize>(
    acc: &[__m512i; N],
    zv: &ZVecs,
    n: usize,
    dst: &mut [u8],
) {
    let cols: [__m128i; O] =
        std::array::from_fn(|col| requant(corrected::<O, N>(acc, col, zv), col, zv));
    store_pixels::<O>(&cols, n, zv, dst);
}

/// Column `col`'s 2×2 maxima of two conv rows' blocks (`pair[0]`, `pair[1]`, 16 pixels
/// each): 8 pooled values (pixels `2q`, `2q + 1` of both rows).
#[target_feature(enable = "avx512f")]
fn pool_pair<const O: usize, const N: usize>(
    pair: &[[__m512i; N]; 2],
    col: usize,
    zv: &ZVecs,
) -> __m256i {
    let m = _mm512_max_epi32(
        corrected::<O, N>(&pair[0], col, zv),
        corrected::<O, N>(&pair[1], col, zv),
    );
    // lane 2q ← max(lane 2q, lane 2q + 1); then the even lanes, in order
    let m = _mm512_max_epi32(m, _mm512_shuffle_epi32::<0b1011_0001>(m));
    _mm512_cvtepi64_epi32(m)
}

/// Builds the quad lines of one image plane `src` (`[ih, iw, c]`, NHWC) into `quads`
/// (`ih·c` lines of `wq` dwords, `wq` a multiple of 16): line `L` of channel `ci` is the
/// input line at `pw .. pw + iw` and the zero point `za` elsewhere. Each 64 bytes of `L`
/// are one masked load (the bytes of the input line, `za` around it), so no padded copy is
/// stored and read back; more than one channel is first split into `planar` (`ih·c` lines
/// of `iw` bytes).
///
/// # Safety
/// AVX-512 F/BW/VBMI are available; `dw ≤ 16`.
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
#[allow(clippy::too_many_arguments)]
unsafe fn quad_lines(
    src: &[u8],
    [ih, iw, c]: [usize; 3],
    pw: usize,
    dw: usize,
    za: u8,
    planar: &mut Vec<u8>,
    wq: usize,
    quads: &mut [u32],
) {
    let mut idx = [0u8; 64];
    for (i, v) in idx.iter_mut().enumerate() {
        *v = (i / 4 + (i % 4) * dw) as u8; // ≤ 15 + 3·16 = 63
    }
    // SAFETY: `idx` is 64 bytes; unaligned load.
    let idx = unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) };
    let zav = _mm512_set1_epi8(za as i8);
    let lines: &[u8] = if c == 1 {
        src
    } else {
        planar.clear();
        for ci in 0..c {
            planar.extend(src[ci..].iter().step_by(c));
        }
        // channel-major: line (ci, iy) at (ci·ih + iy)·iw
        planar
    };
    assert!(lines.len() >= ih * c * iw && quads.len() >= ih * c * wq);
    for ci in 0..c {
        for iy in 0..ih {
            let line = &lines[(ci * ih + iy) * iw..(ci * ih + iy + 1) * iw];
            let q = &mut quads[(iy * c + ci) * wq..(iy * c + ci + 1) * wq];
            for x0 in (0..wq).step_by(LANES) {
                // bytes b with pw ≤ x0 + b < pw + iw come from the line
                let lo = pw.saturating_sub(x0).min(64);
                let hi = (pw + iw).saturating_sub(x0).min(64).max(lo);
                let ones = |n: usize| if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
                let mask = ones(hi) & !ones(lo);
                let at = line.as_ptr().wrapping_add(x0).wrapping_sub(pw);
                // SAFETY: the mask selects exactly the bytes `at + b` inside `line` (masked
                // bytes are not accessed); `q[x0..x0 + 16]` is in bounds as `wq` is a
                // multiple of 16.
                unsafe {
                    let v = _mm512_mask_loadu_epi8(zav, mask, at.cast());
                    _mm512_storeu_si512(
                        q.as_mut_ptr().add(x0).cast(),
                        _mm512_permutexvar_epi8(idx, v),
                    );
                }
            }
        }
    }
}

/// Per-call constants shared by the plane tasks.
struct Shared<'a> {
    plan: &'a Plan<'a>,
    wq: Vec<i32>,
    init: [i32; COLS],
    zv: ZVecs,
    jn: usize,
    /// Per output row, `kh` quad lines ([`Rows`]).
    rows: Vec<(usize, usize)>,
}

/// Per-thread scratch: the split channels and the quad lines of one plane (`ih·c` lines,
/// then the zero-point line).
struct Scratch {
    planar: Vec<u8>,
    quads: Vec<u32>,
}

/// Dispatches `$f::<O, N>($args)` for `O = $o` output channels (1..=8) and `N = O + 1`
/// accumulators when `$asym` (the window sum), `N = O` otherwise.
macro_rules! with_o {
    ($o:expr, $asym:expr, $f:ident($($args:expr),*)) => {
        match ($o, $asym) {
            (1, false) => $f::<1, 1>($($args),*),
            (2, false) => $f::<2, 2>($($args),*),
            (3, false) => $f::<3, 3>($($args),*),
            (4, false) => $f::<4, 4>($($args),*),
            (5, false) => $f::<5, 5>($($args),*),
            (6, false) => $f::<6, 6>($($args),*),
            (7, false) => $f::<7, 7>($($args),*),
            (8, false) => $f::<8, 8>($($args),*),
            (1, true) => $f::<1, 2>($($args),*),
            (2, true) => $f::<2, 3>($($args),*),
            (3, true) => $f::<3, 4>($($args),*),
            (4, true) => $f::<4, 5>($($args),*),
            (5, true) => $f::<5, 6>($($args),*),
            (6, true) => $f::<6, 7>($($args),*),
            (7, true) => $f::<7, 8>($($args),*),
            (8, true) => $f::<8, 9>($($args),*),
            _ => unreachable!("O ≤ 8"),
        }
    };
}

/// Runs `plan` (one group, O ≤ 8, [`applies`], weights packed for AVX-512 VNNI) with
/// `[k][8]` weights `w`; `corr` is the activation zero point's correction per output
/// channel, `zw` the weight zero points. With `pool`, `out` receives the 2×2 stride-2 max
/// pool of the convolution (floor mode: `[N, OH/2, OW/2, O]`), which the caller checked is
/// the pool of the requantized values (no sum can overflow `cvtps2dq`).
///
/// # Safety
/// The CPU supports AVX-512 F/BW/VNNI/VBMI.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn run(
    plan: &Plan<'_>,
    w: &[i32],
    corr: &[i32],
    zw: &[i32],
    symmetric: bool,
    parallel: bool,
    pool: bool,
    out: &mut [u8],
) {
    let g = plan.g;
    let (o, c) = (g.out_channels, g.in_channels);
    let [_, oh, ow] = plan.out_dims;
    let [_, ih, iw] = g.input;
    let [_, kh, kw] = g.kernel;
    let (dh, dw) = (g.dilation[1], g.dilation[2]);
    let (sh, ph, pw) = (g.stride[1], g.padding[1], g.padding[2]);
    let jn = kw.div_ceil(4);
    let cols = o + usize::from(!symmetric);
    // byte t of quad (ty, ci, j) column col: W[col, ty, 4j + t, ci] (1 in the window-sum
    // column), zero past the kernel width
    let mut wq = vec![0i32; kh * c * jn * COLS];
    for ty in 0..kh {
        for tx in 0..kw {
            for ci in 0..c {
                let (r, shift) = ((ty * c + ci) * jn + tx / 4, 8 * (tx % 4));
                let taps = &w[((ty * kw + tx) * c + ci) * 8..][..8];
                let quad = &mut wq[r * COLS..][..cols];
                for (q, &v) in quad.iter_mut().zip(taps) {
                    *q |= i32::from(v as i8 as u8) << shift;
                }
                if cols > o {
                    quad[o] |= 1 << shift;
                }
            }
        }
    }
    let mut init = [0i32; COLS];
    init[..o].copy_from_slice(&corr[..o]);
    // blocks read pixels below owp (two blocks per pooled chunk); quads up to
    // owp + 4(jn − 1)·dw
    let owp = ow.next_multiple_of(2 * LANES);
    let wql = (owp + 4 * (jn - 1) * dw).next_multiple_of(LANES);
    let za = plan.za as u8;
    let lines = ih * c * wql;
    let mut rows = Vec::with_capacity(oh * kh);
    for y in 0..oh {
        for ty in 0..kh {
            rows.push(
                match (y * sh + ty * dh).checked_sub(ph).filter(|&i| i < ih) {
                    Some(iy) => (iy * c * wql, wql),
                    // channel stride 0: every channel reads the zero-point line
                    None => (lines, 0),
                },
            );
        }
    }
    let shared = Shared {
        plan,
        wq,
        init,
        // SAFETY: AVX-512 F/BW (the caller's contract); `zw` has `o` entries.
        zv: unsafe { ZVecs::new(&plan.groups[0].stage, o, zw) },
        jn,
        rows,
    };
    let scratch = || {
        let mut quads = vec![0u32; lines + wql];
        quads[lines..].fill(u32::from_le_bytes([za; 4]));
        Scratch {
            planar: Vec::new(),
            quads,
        }
    };
    let plane_in = ih * iw * c;
    let plane_out = if pool {
        (oh / 2) * (ow / 2) * o
    } else {
        oh * ow * o
    };
    let task = |s: &mut Scratch, (pl, dst): (usize, &mut [u8])| {
        let src = &plan.input[pl * plane_in..(pl + 1) * plane_in];
        // SAFETY: AVX-512 F/BW/VBMI (the caller's contract), `dw ≤ 16` ([`applies`]);
        // `quads` holds ih·c lines of wql dwords (and the zero-point line).
        unsafe {
            quad_lines(
                src,
                [ih, iw, c],
                pw,
                dw,
                za,
                &mut s.planar,
                wql,
                &mut s.quads,
            )
        };
        // SAFETY: AVX-512 F/BW/VNNI/VBMI (the caller's contract); the row table holds, per
        // output row, kh offsets of a quad line of channel 0 (channel stride wql, c lines)
        // or of the zero-point line, and every block reads at most
        // p0 + 4(jn − 1)·dw + 16 ≤ owp + 4(jn − 1)·dw ≤ wql dwords of a line.
        unsafe {
            if pool {
                with_o!(o, !symmetric, plane_pooled(&shared, &s.quads, dst))
            } else {
                with_o!(o, !symmetric, plane(&shared, &s.quads, dst))
            }
        }
    };
    if parallel {
        par::for_each_chunk_init(out, plane_out, scratch, task);
    } else {
        let mut s = scratch();
        for job in out.chunks_mut(plane_out).enumerate() {
            task(&mut s, job);
        }
    }
}

/// The unpooled output of one plane (`O` channels, `N` accumulators): blocks of 16 pixels
/// in raster order, two at a time.
///
/// # Safety
/// As for [`run`]'s task: AVX-512 F/BW/VNNI/VBMI; `s.rows` holds `oh·kh` lines of `quads`
/// that every block can read in full.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn plane<const O: usize, const N: usize>(s: &Shared<'_>, quads: &[u32], dst: &mut [u8]) {
    let g = s.plan.g;
    let c = g.in_channels;
    let [_, oh, ow] = s.plan.out_dims;
    let (kh, dw) = (g.kernel[1], g.dilation[2]);
    let per_row = ow.div_ceil(LANES);
    let jobs = oh * per_row;
    let job = |t: usize| (t / per_row, (t % per_row) * LANES);
    let row = |y: usize| &s.rows[y * kh..(y + 1) * kh];
    let mut t = 0;
    while t < jobs {
        let (ya, pa) = job(t);
        if t + 1 < jobs {
            let (yb, pb) = job(t + 1);
            // SAFETY: the caller's contract.
            let acc = unsafe {
                accumulate::<N, 2>(
                    quads,
                    [row(ya), row(yb)],
                    [pa, pb],
                    c,
                    s.jn,
                    dw,
                    &s.wq,
                    &s.init,
                )
            };
            for ((y, p), a) in [(ya, pa), (yb, pb)].into_iter().zip(&acc) {
                let n = (ow - p).min(LANES);
                finish_block::<O, N>(a, &s.zv, n, &mut dst[(y * ow + p) * O..]);
            }
        } else {
            // SAFETY: the caller's contract.
            let acc =
                unsafe { accumulate::<N, 1>(quads, [row(ya)], [pa], c, s.jn, dw, &s.wq, &s.init) };
            let n = (ow - pa).min(LANES);
            finish_block::<O, N>(&acc[0], &s.zv, n, &mut dst[(ya * ow + pa) * O..]);
        }
        t += 2;
    }
}

/// The 2×2 stride-2 max-pooled output of one plane: per pooled row, chunks of 16 pooled
/// pixels from two blocks of both conv rows.
///
/// # Safety
/// As for [`plane`].
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn plane_pooled<const O: usize, const N: usize>(
    s: &Shared<'_>,
    quads: &[u32],
    dst: &mut [u8],
) {
    let g = s.plan.g;
    let c = g.in_channels;
    let [_, oh, ow] = s.plan.out_dims;
    let (poh, pow) = (oh / 2, ow / 2);
    let (kh, dw) = (g.kernel[1], g.dilation[2]);
    let row = |y: usize| &s.rows[y * kh..(y + 1) * kh];
    for py in 0..poh {
        let (r0, r1) = (row(2 * py), row(2 * py + 1));
        for q0 in (0..pow).step_by(LANES) {
            let block = |p0: usize| {
                // SAFETY: the caller's contract.
                let acc = unsafe {
                    accumulate::<N, 2>(quads, [r0, r1], [p0, p0], c, s.jn, dw, &s.wq, &s.init)
                };
                let m: [__m256i; O] =
                    std::array::from_fn(|col| pool_pair::<O, N>(&acc, col, &s.zv));
                m
            };
            let first = block(2 * q0);
            let second = if 2 * q0 + LANES < 2 * pow {
                block(2 * q0 + LANES)
            } else {
                [_mm256_setzero_si256(); O]
            };
            let cols: [__m128i; O] = std::array::from_fn(|col| {
                let m = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(first[col]), second[col]);
                requant(m, col, &s.zv)
            });
            let n = (pow - q0).min(LANES);
            store_pixels::<O>(&cols, n, &s.zv, &mut dst[(py * pow + q0) * O..]);
        }
    }
}
