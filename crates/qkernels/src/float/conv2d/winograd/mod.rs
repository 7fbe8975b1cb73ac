//! Winograd F(2×2, 3×3) f32 convolution (3 × 3 kernel, stride 1, dilation 1, one group) on
//! NCHW data: 2.25× fewer multiplies than the direct sum.
//!
//! The output planes are cut into 2 × 2 tiles (raster order over images, tile rows and tile
//! columns; a last odd row or column is computed and not stored). Each tile's 4 × 4 padded
//! input patch of each channel becomes 16 transformed values `V_ξ = (Bᵀ d B)_ξ`, each filter
//! 16 values `U_ξ = (G g Gᵀ)_ξ` (transformed once per call: the weight changes on every
//! optimizer step, so nothing is cached), and then 16 independent products
//! `M_ξ[o, t] = Σ_c U_ξ[o, c] · V_ξ[c, t]` give each tile's `Y = Aᵀ M A`, plus the bias.
//! Blocks of 64 tiles keep their transformed inputs `[ξ][c][64]` and products `[ξ][o][64]`
//! in L2; the products run register tiles of up to 6 output channels × 64 tiles (four zmm,
//! the AVX-512 family) or × 16 (the direct convolution's AVX2 + FMA and portable tiles).
//! Where that rounds a block's tiles up to 16 lanes wastefully (49 tiles of a 14 × 14 plane
//! in 64 lanes), the AVX-512 family turns the products around: rows of up to 6 tiles × 64
//! output channels, the weight and products output-channel-major ([`channels`]; the
//! selection is [`Engine::layout`]). When such a call is a single block of tiles (planes up
//! to 16 × 16), the weight is transformed 64 output channels at a time right before their
//! products, so the transformed weight is read back from cache (1,512,7,512: 16 MB through
//! memory took 4.6–4.8 ms, per group 2.3 ms).
//!
//! Every family computes the same operations in the same order (the transforms are one
//! source compiled per family; each product is one fused multiply-add chain over `c` in
//! increasing order from zero), so all give the bits of the oracle
//! [`reference_winograd_conv2d`]. Those bits differ from the direct sum ([`super::conv2d_with`],
//! [`super::reference_conv2d`]) by float rounding only: the transforms add and subtract
//! inputs before the products and outputs after them. The tests bound the difference from the
//! f64 convolution by `2⁻²⁰ · (Σ |w|·|x| over the window + |bias|)`
//! (`tests/float_winograd.rs`); PyTorch's oneDNN does not promise a summation order either.

#[cfg(target_arch = "x86_64")]
mod channels;
mod reference;
mod transform;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use reference::reference_winograd_conv2d;

use self::transform::{InPlane, Lanes, OutSeg, SEG, Split, XI};
use super::{Conv2dGeom, LANES, MR, SourceRows, Tile, TileOut, check, split as split_rows};
use crate::float::direct_kernel::DirectConvKernel;
use crate::float::error::Result;
use crate::float::window::conv_error;

/// Tiles per block: the transformed inputs and products of a block stay in L2.
const BT: usize = SEG;

/// Output channels per weight transform of the channel-major layout when the call is one
/// block of tiles (4 zmm: one register tile's width).
#[cfg(target_arch = "x86_64")]
const GROUP: usize = 64;

/// Row stride of the transformed inputs and products: a block's lanes plus room for the
/// transforms' whole 16-lane steps.
const LD: usize = BT + 16;

/// Whether the Winograd algorithm can compute this geometry: a 3 × 3 kernel, stride 1,
/// dilation 1 (any padding).
pub(super) fn applies(g: &Conv2dGeom) -> bool {
    let w = &g.window;
    w.kernel == [3, 3] && w.stride == [1, 1] && w.dilation == [1, 1]
}

/// The product tile of the family that runs, with its CPU proof.
enum Gemm {
    Tile(Tile),
    #[cfg(target_arch = "x86_64")]
    Zmm(crate::fp16::avx512::Avx512),
}

/// The product tile and the transforms' family of one call.
struct Engine {
    gemm: Gemm,
    lanes: Lanes,
}

impl Engine {
    fn new(kind: DirectConvKernel) -> Result<Self> {
        let unsupported = || conv_error(format!("kernel family {} cannot run here", kind.name()));
        if !kind.is_runnable() {
            return Err(unsupported());
        }
        let (gemm, lanes) = match kind {
            DirectConvKernel::Scalar => {
                (Some(Gemm::Tile(Tile::new(kind)?)), Lanes::new(false, false))
            }
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx2Fma => {
                (Some(Gemm::Tile(Tile::new(kind)?)), Lanes::new(false, true))
            }
            #[cfg(target_arch = "x86_64")]
            DirectConvKernel::Avx512 => (
                crate::fp16::avx512::Avx512::new().map(Gemm::Zmm),
                Lanes::new(true, false),
            ),
            #[allow(unreachable_patterns)]
            _ => (None, None),
        };
        match (gemm, lanes) {
            (Some(gemm), Some(lanes)) => Ok(Self { gemm, lanes }),
            _ => Err(unsupported()),
        }
    }

    /// `m[o·LD + t] = Σ_c u[o·cin + c] · v[c·LD + t]` (one chain per output) for the `cout`
    /// rows `o` of `u` (`row_tiles`) and the first `nt` tiles `t` (rounded up to the tile
    /// width).
    fn product(
        &self,
        u: &[f32],
        v: &[f32],
        at: SourceRows<'_>,
        nt: usize,
        row_tiles: &[(usize, usize)],
        m: &mut [f32],
    ) {
        let cin = at.offsets.len();
        match &self.gemm {
            #[cfg(target_arch = "x86_64")]
            Gemm::Zmm(z) => {
                for &(r0, rows) in row_tiles {
                    let out = crate::fp16::avx512::TileOut {
                        out: &mut m[r0 * LD..],
                        ld: LD,
                        first: true,
                    };
                    z.tile(
                        &u[r0 * cin..],
                        [cin, 1],
                        rows,
                        v,
                        [16, LD],
                        nt.div_ceil(16),
                        cin,
                        out,
                    );
                }
            }
            Gemm::Tile(t) => {
                for &(r0, rows) in row_tiles {
                    for p in (0..nt).step_by(2 * LANES) {
                        let vectors = (nt - p).min(2 * LANES).div_ceil(LANES);
                        let out = TileOut {
                            sums: &mut m[r0 * LD + p..],
                            ld: LD,
                            carry: false,
                            bias: None,
                        };
                        t.run(&v[p..], at, &u[r0 * cin..], cin, rows, vectors, out);
                    }
                }
            }
        }
    }
}

/// Where the transformed weights and products of one call go: tile-major (`u[ξ][o][c]`,
/// `m[ξ][o][t]`, every family) or output-channel-major with the channels rounded up to `ldo`
/// (`u[ξ][c][o]`, `m[ξ][t][o]`, the AVX-512 tile only; [`channels`]).
#[derive(Clone, Copy)]
enum Layout {
    Tiles,
    #[cfg(target_arch = "x86_64")]
    Channels(usize),
}

impl Engine {
    /// The layout that computes no more padding lanes for `tiles` tiles into `cout` channels
    /// (on a tie the channel-major one: its weight transform is the faster, 1,256,7,256
    /// 0.78 -> 0.53 ms, 1,64,56,64 1.44 -> 1.39 ms).
    fn layout(&self, tiles: usize, cout: usize) -> Layout {
        #[cfg(target_arch = "x86_64")]
        if let Gemm::Zmm(_) = self.gemm {
            let tile_lanes = tiles / BT * BT + (tiles % BT).next_multiple_of(16);
            let ldo = cout.next_multiple_of(16);
            if tiles * ldo <= tile_lanes * cout {
                return Layout::Channels(ldo);
            }
        }
        let _ = (tiles, cout);
        Layout::Tiles
    }
}

/// `m[t·ldm + o] = Σ_c v[c·LD + t] · u[c·ldu + o]` (one chain per output) for the block's
/// tiles `t` in the row tiles `tile_rows` and the channels `o < cols` (a multiple of 16).
#[cfg(target_arch = "x86_64")]
fn product_channels(
    z: &crate::fp16::avx512::Avx512,
    (u, ldu): (&[f32], usize),
    v: &[f32],
    [cin, cols]: [usize; 2],
    tile_rows: &[(usize, usize)],
    (m, ldm): (&mut [f32], usize),
) {
    use crate::fp16::avx512::{MP, TileOut};
    for o0 in (0..cols).step_by(16 * MP) {
        let count = ((cols - o0) / 16).min(MP);
        for &(t0, rows) in tile_rows {
            let out = TileOut {
                out: &mut m[t0 * ldm + o0..],
                ld: ldm,
                first: true,
            };
            z.tile(
                &v[t0..],
                [1, LD],
                rows,
                &u[o0..],
                [16, ldu],
                count,
                cin,
                out,
            );
        }
    }
}

thread_local! {
    /// The transformed weight, inputs and products and the split planes of one call, kept
    /// per thread (a fresh allocation per call cost more in page faults than the transforms).
    static WORK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a buffer of `len` floats (contents left from earlier calls), this thread's
/// reused one when it is free.
fn with_work<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = WORK
        .with(|p| p.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)))
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    let out = f(&mut buf[..len]);
    WORK.with(|p| {
        if let Ok(mut slot) = p.try_borrow_mut()
            && slot.capacity() < buf.capacity()
        {
            *slot = buf;
        }
    });
    out
}

/// A run of tiles of one tile row inside a block: image, tile row, first tile column, length,
/// and the lane of its first tile in the block.
struct Seg {
    img: usize,
    ty: usize,
    tx0: usize,
    len: usize,
    lane: usize,
}

/// The row segments of the block of `nt` tiles from `t0` (`tyn × txn` tiles per image).
fn segments(t0: usize, nt: usize, [tyn, txn]: [usize; 2]) -> Vec<Seg> {
    let mut segs = Vec::new();
    let mut t = t0;
    while t < t0 + nt {
        let (img, r) = (t / (tyn * txn), t % (tyn * txn));
        let (ty, tx0) = (r / txn, r % txn);
        let len = (txn - tx0).min(t0 + nt - t);
        segs.push(Seg {
            img,
            ty,
            tx0,
            len,
            lane: t - t0,
        });
        t += len;
    }
    segs
}

/// `out = conv(x, weight) + bias` for `n` images by Winograd F(2×2, 3×3) on an explicitly
/// requested family; returns it. Buffers as [`super::conv2d`]; errors as
/// [`super::conv2d_with`], plus [`crate::float::FloatGemmError::Conv`] for a geometry other
/// than a 3 × 3 kernel with stride 1 and dilation 1.
pub fn winograd_conv2d_with(
    kind: DirectConvKernel,
    x: &[f32],
    n: usize,
    g: &Conv2dGeom,
    weight: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<DirectConvKernel> {
    let [oh, ow] = check(x, n, g, weight, bias, out)?;
    if !applies(g) {
        return Err(conv_error(format!(
            "Winograd F(2x2, 3x3) needs a 3 x 3 kernel, stride 1 and dilation 1, not {:?}",
            g.window
        )));
    }
    let engine = Engine::new(kind)?;
    if out.is_empty() {
        return Ok(kind);
    }
    let (cin, cout) = (g.in_channels, g.out_channels);
    let (size, pad) = (g.window.input, g.window.padding);
    let (plane_in, plane_out) = (size[0] * size[1], oh * ow);
    let tile_grid = [oh.div_ceil(2), ow.div_ceil(2)];
    let tiles = n * tile_grid[0] * tile_grid[1];
    let split = Split {
        rows: 2 * tile_grid[0] + 2,
        half: tile_grid[1] + 1,
    };
    let layout = engine.layout(tiles, cout);
    // one cache line between the 16 transformed weights, so that the transform's 16 store
    // streams do not fall into the same cache sets (their 2^k-float distance did: 1,256,14
    // took 0.15 ms longer)
    #[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))] // channel-major only
    let one_block = tiles <= BT;
    let (ustride, lm) = match layout {
        Layout::Tiles => (cout * cin + 16, XI * cout * LD),
        // (one block of tiles: the weight of 64 channels at a time, right before their
        // products, so that it is read back from L2 or L3 and not from memory)
        #[cfg(target_arch = "x86_64")]
        Layout::Channels(ldo) if one_block => (cin * ldo.min(GROUP) + 16, XI * BT * ldo),
        #[cfg(target_arch = "x86_64")]
        Layout::Channels(ldo) => (cin * ldo + 16, XI * BT * ldo),
    };
    let (lu, lv) = (XI * ustride, XI * cin * LD);
    with_work(lu + lv + lm + cin * split.plane() + 16, |work| {
        // whole cache lines for the transforms' 16-float stores
        let skip = work.as_ptr().align_offset(64).min(16);
        let (u, rest) = work[skip..].split_at_mut(lu);
        let (v, rest) = rest.split_at_mut(lv);
        let (m, planes) = rest.split_at_mut(lm);
        match layout {
            Layout::Tiles => engine.lanes.weight(weight, [cout * cin, ustride], u),
            #[cfg(target_arch = "x86_64")]
            Layout::Channels(ldo) => {
                let Gemm::Zmm(z) = &engine.gemm else {
                    unreachable!("the channel-major layout is the AVX-512 tile's")
                };
                if !one_block {
                    channels::weight(z, weight, [cin, cout], [0, ldo], [ldo, ustride], u);
                }
            }
        }
        let offsets: Vec<usize> = (0..cin).map(|c| c * LD).collect();
        let at = SourceRows::new(&offsets);
        let row_tiles = split_rows(cout, MR);
        let mut split_img = usize::MAX;
        for t0 in (0..tiles).step_by(BT) {
            let nt = BT.min(tiles - t0);
            let segs = segments(t0, nt, tile_grid);
            for s in &segs {
                if s.img != split_img {
                    split_img = s.img;
                    for (c, dst) in planes.chunks_exact_mut(split.plane()).enumerate() {
                        let plane = &x[(s.img * cin + c) * plane_in..][..plane_in];
                        engine.lanes.split(InPlane { plane, size, pad }, split, dst);
                    }
                }
                for (c, sp) in planes.chunks_exact(split.plane()).enumerate() {
                    let dst = &mut v[c * LD + s.lane..];
                    engine
                        .lanes
                        .input(sp, split, [s.ty, s.tx0, s.len], dst, cin * LD);
                }
            }
            match layout {
                Layout::Tiles => {
                    for (ui, (vi, mi)) in u
                        .chunks_exact(ustride)
                        .zip(v.chunks_exact(cin * LD).zip(m.chunks_exact_mut(cout * LD)))
                    {
                        engine.product(ui, vi, at, nt, &row_tiles, mi);
                    }
                    for s in &segs {
                        for o in 0..cout {
                            let seg = OutSeg {
                                plane: &mut out[(s.img * cout + o) * plane_out..][..plane_out],
                                size: [oh, ow],
                                ty: s.ty,
                                tx0: s.tx0,
                                len: s.len,
                                bias: bias.map_or(0.0, |b| b[o]),
                            };
                            engine.lanes.output(&m[o * LD + s.lane..], cout * LD, seg);
                        }
                    }
                }
                #[cfg(target_arch = "x86_64")]
                Layout::Channels(ldo) => {
                    let Gemm::Zmm(z) = &engine.gemm else {
                        unreachable!("the channel-major layout is the AVX-512 tile's")
                    };
                    let tile_rows = split_rows(nt, crate::fp16::avx512::MR);
                    let (groups, ldu): (Vec<[usize; 2]>, usize) = if one_block {
                        let starts = (0..ldo).step_by(GROUP);
                        (
                            starts.map(|o0| [o0, ldo.min(o0 + GROUP)]).collect(),
                            GROUP.min(ldo),
                        )
                    } else {
                        (vec![[0, ldo]], ldo)
                    };
                    for &[o0, o1] in &groups {
                        if one_block {
                            channels::weight(z, weight, [cin, cout], [o0, o1], [ldu, ustride], u);
                        }
                        for (ui, (vi, mi)) in u
                            .chunks_exact(ustride)
                            .zip(v.chunks_exact(cin * LD).zip(m.chunks_exact_mut(BT * ldo)))
                        {
                            let (u, m) = ((ui, ldu), (&mut mi[o0..], ldo));
                            product_channels(z, u, vi, [cin, o1 - o0], &tile_rows, m);
                        }
                    }
                    for s in &segs {
                        let image = &mut out[s.img * cout * plane_out..][..cout * plane_out];
                        for (o0, planes) in
                            (0..cout).step_by(16).zip(image.chunks_mut(16 * plane_out))
                        {
                            let seg = channels::OutTiles {
                                planes,
                                size: [oh, ow],
                                ty: s.ty,
                                tx0: s.tx0,
                                len: s.len,
                                bias: std::array::from_fn(|l| {
                                    bias.and_then(|b| b.get(o0 + l)).copied().unwrap_or(0.0)
                                }),
                                n: (cout - o0).min(16),
                            };
                            let mo = &m[s.lane * ldo + o0..];
                            channels::output(z, mo, [ldo, BT * ldo], seg);
                        }
                    }
                }
            }
        }
    });
    Ok(kind)
}
