//! The interior loops of the AVX-512 depthwise row kernel's pair-saturating 3×3 product
//! ([`Product::Pairs`] with nine taps and the folded bias), one `asm!` block each: whole
//! 64-channel blocks (one pixel per zmm, stride 1 or 2) and 16-channel tails (two pixels
//! per ymm, one per 128-bit lane).
//!
//! They run the operations of [`super::depthwise_avx512`]'s per-pixel loop (same products,
//! same bits): taps `(2p, 2p + 1)` byte-interleaved into `vpmaddubsw` (fbgemm's i16 pair
//! saturation), two pairs' sums word-interleaved into `vpdpwssd` with ones, the odd tap
//! through `vpshufb` and four `vpdpbusd`, then the requantization with the folded bias
//! (`(f32(acc) + bias_ab)·mult`, rounded to nearest even), the saturating packs and the
//! optional clamp. Written in assembly because LLVM's code for the intrinsic loop depends on
//! unrelated source: builds differing only outside the loop ran 1,144,56 in 84 or 115 µs
//! (Zen 4); here the block's 12 weight vectors, the odd tap's control, the ones, the zero
//! point and the bounds stay in fixed registers, and the per-channel vectors (accumulator
//! starts, biases, multipliers) are read from cache-line aligned memory (`Line`s; 16-byte
//! aligned they split lines: 88 → 84 µs).

use std::arch::asm;
use std::arch::x86_64::*;

use super::depthwise_avx512::{Product, RowKernel512};

// The loops' pieces, as assembly text over fixed registers (`$v`: "zmm" or "ymm"; register
// numbers as literals): 0–7 the pair weights (pair p: low and high byte halves), 8–11 the
// odd tap's weights, 12 its `vpshufb` control, 13 i16 ones, 14 the output zero point (i16),
// 15/16 the bounds (bytes), 25–30 temporaries. `{e}` addresses the block's accumulator
// starts (i32), biases and multipliers (f32), `$q` bytes per vector (64 or 32), 4 vectors
// each. Two forms address the taps: `idx` (one pixel per zmm: tap t at `{pt} + {i}·$s`,
// the output at `{dm} + {i}`) and `ptr` (two pixels per ymm, one per 128-bit lane: tap t
// at `{pt}` and `{pt} + {st}`, the outputs at `{dm}` and `{dm} + {o}`).

/// Loads one tap into register `$r` (25–28).
macro_rules! tap {
    (idx, $v:literal, $r:literal, $p:literal, $s:literal) => {
        concat!("vmovdqu64 ", $v, $r, ", [{", $p, "} + {i}*", $s, "]\n")
    };
    (ptr, $v:literal, $r:literal, $p:literal, $s:literal) => {
        concat!(
            "vmovdqu64 xmm",
            $r,
            ", [{",
            $p,
            "}]\n",
            "vinserti32x4 ymm",
            $r,
            ", ymm",
            $r,
            ", [{",
            $p,
            "} + {st}], 1\n",
        )
    };
}

/// Loads taps `$a..$d` into 25–28.
macro_rules! taps4 {
    ($f:ident, $v:literal, $a:literal, $b:literal, $c:literal, $d:literal, $s:literal) => {
        concat!(
            tap!($f, $v, "25", $a, $s),
            tap!($f, $v, "26", $b, $s),
            tap!($f, $v, "27", $c, $s),
            tap!($f, $v, "28", $d, $s),
        )
    };
}

/// `$op dst, a, b` over register numbers.
macro_rules! op3 {
    ($op:literal, $v:literal, $d:literal, $a:literal, $b:literal) => {
        concat!($op, " ", $v, $d, ", ", $v, $a, ", ", $v, $b, "\n")
    };
}

/// Two pairs' byte interleaves (25/29: pair a low/high, 27/30: pair b).
macro_rules! unpack8 {
    ($v:literal) => {
        concat!(
            op3!("vpunpckhbw", $v, "29", "25", "26"),
            op3!("vpunpcklbw", $v, "25", "25", "26"),
            op3!("vpunpckhbw", $v, "30", "27", "28"),
            op3!("vpunpcklbw", $v, "27", "27", "28"),
        )
    };
}

/// The two pairs' saturating products against weights `$w0..$w3`.
macro_rules! maddubs {
    ($v:literal, $w0:literal, $w1:literal, $w2:literal, $w3:literal) => {
        concat!(
            op3!("vpmaddubsw", $v, "25", "25", $w0),
            op3!("vpmaddubsw", $v, "29", "29", $w1),
            op3!("vpmaddubsw", $v, "27", "27", $w2),
            op3!("vpmaddubsw", $v, "30", "30", $w3),
        )
    };
}

/// Word interleaves of the two pairs' sums, per channel (accumulator order: 26, 25, 28,
/// 29).
macro_rules! unpack16 {
    ($v:literal) => {
        concat!(
            op3!("vpunpcklwd", $v, "26", "25", "27"),
            op3!("vpunpckhwd", $v, "25", "25", "27"),
            op3!("vpunpcklwd", $v, "28", "29", "30"),
            op3!("vpunpckhwd", $v, "29", "29", "30"),
        )
    };
}

/// Adds the interleaved sums into the accumulators (exact in i32).
macro_rules! dpwssd {
    ($v:literal, $x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
        concat!(
            op3!("vpdpwssd", $v, $x0, "26", "13"),
            op3!("vpdpwssd", $v, $x1, "25", "13"),
            op3!("vpdpwssd", $v, $x2, "28", "13"),
            op3!("vpdpwssd", $v, $x3, "29", "13"),
        )
    };
}

/// `$op dst, src, [{e} + $at]` (`$at`: vector `$k` of the `$q`-byte vectors at `$base`).
macro_rules! opm {
    ($op:literal, $v:literal, $d:literal, $a:literal, $at:expr) => {
        concat!($op, " ", $v, $d, ", ", $v, $a, ", [{e} + ", $at, "]\n")
    };
}

/// The accumulators' start.
macro_rules! start {
    ($v:literal, $q:tt, $x0:literal, $x1:literal, $x2:literal, $x3:literal) => {
        concat!(
            "vmovdqu64 ",
            $v,
            $x0,
            ", [{e}]\n",
            "vmovdqu64 ",
            $v,
            $x1,
            ", [{e} + ",
            off!($q, 0, 1),
            "]\n",
            "vmovdqu64 ",
            $v,
            $x2,
            ", [{e} + ",
            off!($q, 0, 2),
            "]\n",
            "vmovdqu64 ",
            $v,
            $x3,
            ", [{e} + ",
            off!($q, 0, 3),
            "]\n",
        )
    };
}

/// Byte offset of vector `$k` of part `$part` (0: starts, 1: biases, 2: multipliers) in
/// the block's `{e}` data with `$q`-byte vectors.
macro_rules! off {
    (64, 0, 1) => {
        "64"
    };
    (64, 0, 2) => {
        "128"
    };
    (64, 0, 3) => {
        "192"
    };
    (64, 1, 0) => {
        "256"
    };
    (64, 1, 1) => {
        "320"
    };
    (64, 1, 2) => {
        "384"
    };
    (64, 1, 3) => {
        "448"
    };
    (64, 2, 0) => {
        "512"
    };
    (64, 2, 1) => {
        "576"
    };
    (64, 2, 2) => {
        "640"
    };
    (64, 2, 3) => {
        "704"
    };
    (32, 0, 1) => {
        "32"
    };
    (32, 0, 2) => {
        "64"
    };
    (32, 0, 3) => {
        "96"
    };
    (32, 1, 0) => {
        "128"
    };
    (32, 1, 1) => {
        "160"
    };
    (32, 1, 2) => {
        "192"
    };
    (32, 1, 3) => {
        "224"
    };
    (32, 2, 0) => {
        "256"
    };
    (32, 2, 1) => {
        "288"
    };
    (32, 2, 2) => {
        "320"
    };
    (32, 2, 3) => {
        "352"
    };
}

/// The odd tap 8, exact: transposed by `vpshufb`, four `vpdpbusd`.
macro_rules! lone {
    ($f:ident, $v:literal, $x0:literal, $x1:literal, $x2:literal, $x3:literal, $s:literal) => {
        concat!(
            tap!($f, $v, "25", "p8", $s),
            op3!("vpshufb", $v, "25", "25", "12"),
            op3!("vpdpbusd", $v, $x0, "25", "8"),
            op3!("vpdpbusd", $v, $x1, "25", "9"),
            op3!("vpdpbusd", $v, $x2, "25", "10"),
            op3!("vpdpbusd", $v, $x3, "25", "11"),
        )
    };
}

/// `(f32(y) + bias)·mult` of accumulators `$k`, `$k + 1` (`$y0`, `$y1`), rounded to
/// nearest even, in four phases.
macro_rules! rq {
    (cvt, $v:literal, $y0:literal, $y1:literal) => {
        concat!(
            "vcvtdq2ps ",
            $v,
            $y0,
            ", ",
            $v,
            $y0,
            "\n",
            "vcvtdq2ps ",
            $v,
            $y1,
            ", ",
            $v,
            $y1,
            "\n",
        )
    };
    (add, $v:literal, $q:tt, $k:tt, $k1:tt, $y0:literal, $y1:literal) => {
        concat!(
            opm!("vaddps", $v, $y0, $y0, off!($q, 1, $k)),
            opm!("vaddps", $v, $y1, $y1, off!($q, 1, $k1)),
        )
    };
    (mul, $v:literal, $q:tt, $k:tt, $k1:tt, $y0:literal, $y1:literal) => {
        concat!(
            opm!("vmulps", $v, $y0, $y0, off!($q, 2, $k)),
            opm!("vmulps", $v, $y1, $y1, off!($q, 2, $k1)),
        )
    };
    (round, $v:literal, $y0:literal, $y1:literal) => {
        concat!(
            "vcvtps2dq ",
            $v,
            $y0,
            ", ",
            $v,
            $y0,
            "\n",
            "vcvtps2dq ",
            $v,
            $y1,
            ", ",
            $v,
            $y1,
            "\n",
        )
    };
}

/// The saturating packs of the four requantized vectors, the zero point, the bounds
/// (`clamp`, or `keep` for 0..=255) and the store of the previous pixel(s).
macro_rules! pack_store {
    ($f:ident, $v:literal, $y0:literal, $y1:literal, $y2:literal, $y3:literal, $c:ident) => {
        concat!(
            op3!("vpackssdw", $v, $y0, $y0, $y1),
            op3!("vpackssdw", $v, $y2, $y2, $y3),
            op3!("vpaddsw", $v, $y0, $y0, "14"),
            op3!("vpaddsw", $v, $y2, $y2, "14"),
            op3!("vpackuswb", $v, $y0, $y0, $y2),
            bounds!($c, $v, $y0),
            put!($f, $v, $y0),
        )
    };
}

/// The clamp to `lo..=hi` (`clamp`) or nothing (`keep`).
macro_rules! bounds {
    (clamp, $v:literal, $y:literal) => {
        concat!(
            op3!("vpmaxub", $v, $y, $y, "15"),
            op3!("vpminub", $v, $y, $y, "16")
        )
    };
    (keep, $v:literal, $y:literal) => {
        ""
    };
}

/// Stores the previous pixel(s) from `$y`.
macro_rules! put {
    (idx, $v:literal, $y:literal) => {
        concat!("vmovdqu64 [{dm} + {i}], ", $v, $y, "\n")
    };
    (ptr, $v:literal, $y:literal) => {
        concat!(
            "vmovdqu64 [{dm}], xmm",
            $y,
            "\n",
            "vextracti32x4 [{dm} + {o}], ymm",
            $y,
            ", 1\n",
        )
    };
}

/// Moves to the next pixel(s) and sets ZF when the run ends: `idx` adds O to `{i}`
/// (counting up to 0); `ptr` adds two steps to each tap pointer and 2·O to `{dm}`, and
/// counts down the pairs left at `[rsp]`.
macro_rules! next {
    (idx) => {
        "add {i}, {o}\n"
    };
    (ptr) => {
        concat!(
            "add {p0}, {st}\nadd {p0}, {st}\nadd {p1}, {st}\nadd {p1}, {st}\n",
            "add {p2}, {st}\nadd {p2}, {st}\nadd {p3}, {st}\nadd {p3}, {st}\n",
            "add {p4}, {st}\nadd {p4}, {st}\nadd {p5}, {st}\nadd {p5}, {st}\n",
            "add {p6}, {st}\nadd {p6}, {st}\nadd {p7}, {st}\nadd {p7}, {st}\n",
            "add {p8}, {st}\nadd {p8}, {st}\n",
            "add {dm}, {o}\nadd {dm}, {o}\n",
            "sub qword ptr [rsp], 1\n",
        )
    };
}

/// One pixel's (pair's) accumulation into `$x0..$x3` (stride `$s`).
macro_rules! acc {
    ($f:ident, $v:literal, $q:tt, $x0:literal, $x1:literal, $x2:literal, $x3:literal, $s:literal) => {
        concat!(
            taps4!($f, $v, "p0", "p1", "p2", "p3", $s),
            unpack8!($v),
            maddubs!($v, "0", "1", "2", "3"),
            unpack16!($v),
            start!($v, $q, $x0, $x1, $x2, $x3),
            dpwssd!($v, $x0, $x1, $x2, $x3),
            taps4!($f, $v, "p4", "p5", "p6", "p7", $s),
            unpack8!($v),
            maddubs!($v, "4", "5", "6", "7"),
            unpack16!($v),
            dpwssd!($v, $x0, $x1, $x2, $x3),
            lone!($f, $v, $x0, $x1, $x2, $x3, $s),
        )
    };
}

/// The requantization and store of `$y0..$y3` (the previous pixel or pair).
macro_rules! epi {
    ($f:ident, $v:literal, $q:tt, $y0:literal, $y1:literal, $y2:literal, $y3:literal, $c:ident) => {
        concat!(
            rq!(cvt, $v, $y0, $y1),
            rq!(add, $v, $q, 0, 1, $y0, $y1),
            rq!(mul, $v, $q, 0, 1, $y0, $y1),
            rq!(round, $v, $y0, $y1),
            rq!(cvt, $v, $y2, $y3),
            rq!(add, $v, $q, 2, 3, $y2, $y3),
            rq!(mul, $v, $q, 2, 3, $y2, $y3),
            rq!(round, $v, $y2, $y3),
            pack_store!($f, $v, $y0, $y1, $y2, $y3, $c),
        )
    };
}

/// [`acc!`] into `$x..` with [`epi!`] of `$y..` spread between its phases.
macro_rules! half {
    ($f:ident, $v:literal, $q:tt, $x0:literal, $x1:literal, $x2:literal, $x3:literal,
     $y0:literal, $y1:literal, $y2:literal, $y3:literal, $s:literal, $c:ident) => {
        concat!(
            taps4!($f, $v, "p0", "p1", "p2", "p3", $s),
            rq!(cvt, $v, $y0, $y1),
            unpack8!($v),
            rq!(add, $v, $q, 0, 1, $y0, $y1),
            maddubs!($v, "0", "1", "2", "3"),
            rq!(mul, $v, $q, 0, 1, $y0, $y1),
            unpack16!($v),
            rq!(round, $v, $y0, $y1),
            start!($v, $q, $x0, $x1, $x2, $x3),
            rq!(cvt, $v, $y2, $y3),
            dpwssd!($v, $x0, $x1, $x2, $x3),
            taps4!($f, $v, "p4", "p5", "p6", "p7", $s),
            rq!(add, $v, $q, 2, 3, $y2, $y3),
            unpack8!($v),
            rq!(mul, $v, $q, 2, 3, $y2, $y3),
            maddubs!($v, "4", "5", "6", "7"),
            rq!(round, $v, $y2, $y3),
            unpack16!($v),
            pack_store!($f, $v, $y0, $y1, $y2, $y3, $c),
            dpwssd!($v, $x0, $x1, $x2, $x3),
            lone!($f, $v, $x0, $x1, $x2, $x3, $s),
        )
    };
}

/// The software-pipelined loop (see [`interior`]) in form `$f` on `$v` registers.
macro_rules! pipeline {
    ($f:ident, $v:literal, $q:tt, $s:literal, $c:ident) => {
        concat!(
            acc!($f, $v, $q, "21", "22", "23", "24", $s),
            next!($f),
            "jz 4f\n",
            "2:\n",
            half!(
                $f, $v, $q, "17", "18", "19", "20", "21", "22", "23", "24", $s, $c
            ),
            next!($f),
            "jz 3f\n",
            half!(
                $f, $v, $q, "21", "22", "23", "24", "17", "18", "19", "20", $s, $c
            ),
            next!($f),
            "jnz 2b\n",
            "4:\n",
            epi!($f, $v, $q, "21", "22", "23", "24", $c),
            "jmp 5f\n",
            "3:\n",
            epi!($f, $v, $q, "17", "18", "19", "20", $c),
            "5:\n",
        )
    };
}

/// Runs `n ≥ 1` interior pixels of one whole 64-channel block (channels `c0..c0 + 64`) at
/// horizontal stride `S` (1 or 2): tap `i` of pixel `v` is at `bases[i] + c0 + v·S·O`,
/// its output at `dst + v·O`. `CLAMP`: the output bounds are not `0..=255`.
///
/// Software-pipelined by hand: each half-iteration accumulates one pixel into one register
/// set (17–20 or 21–24) while the other set's pixel is requantized and stored, so the
/// scheduler always holds independent work (a pixel's chain from the tap loads to the store
/// is ≈ 50 cycles).
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; `k.product` is [`Product::Pairs`] with nine taps and
/// `k.epi` exists; `c0 + 64 ≤ O` and `c0` starts a 64-channel block of `k`; every
/// `bases[i] + c0 + v·S·O` (`i < 9`, `v < n`) addresses 64 readable bytes and every
/// `dst + v·O` 64 writable ones.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn interior<const S: usize, const CLAMP: bool>(
    k: &RowKernel512,
    c0: usize,
    bases: &[*const u8],
    n: usize,
    dst: *mut u8,
) {
    debug_assert!(k.product == Product::Pairs && n >= 1 && (S == 1 || S == 2));
    let o = k.o;
    let units = RowKernel512::units(9, Product::Pairs);
    let epi = k.epi.as_ref().expect("folded bias");
    assert!(bases.len() >= 9 && c0 + 64 <= o);
    assert!(k.w.len() >= (c0 + 64) * units && 16 * epi.len() >= 3 * (c0 + 64));
    // `{i}` counts from −n·O up to 0, so every pointer is biased by the run's end
    // (`wrapping_add`: the biased pointers may lie past their allocations; only the
    // addresses the contract names are read or written)
    let span = n * o;
    let tap = |t: usize| bases[t].wrapping_add(c0 + S * span);
    // SAFETY: the weights and the control are read inside their vectors (lengths asserted
    // above); `e` addresses the block's 192 values of `epi` (asserted); the asm reads taps
    // `p_t + S·i` for i = −n·O + v·O (v < n), i.e. the caller's tap addresses, and writes
    // pixel v − 1 at `dm + i` = dst + (v − 1)·O (v ≥ 1; the last pixel at i = 0); the zmm
    // registers it writes are declared clobbered.
    unsafe {
        let ld = |u: usize| _mm512_loadu_si512(k.w.as_ptr().add(c0 * units + 64 * u).cast());
        let e = epi.as_ptr().cast::<u32>().add(3 * c0);
        macro_rules! body {
            ($s:literal, $c:ident) => {
                asm!(
                    pipeline!(idx, "zmm", 64, $s, $c),
                    i = inout(reg) span.wrapping_neg() => _,
                    o = in(reg) o,
                    dm = in(reg) dst.wrapping_add(span).wrapping_sub(o),
                    e = in(reg) e,
                    p0 = in(reg) tap(0),
                    p1 = in(reg) tap(1),
                    p2 = in(reg) tap(2),
                    p3 = in(reg) tap(3),
                    p4 = in(reg) tap(4),
                    p5 = in(reg) tap(5),
                    p6 = in(reg) tap(6),
                    p7 = in(reg) tap(7),
                    p8 = in(reg) tap(8),
                    in("zmm0") ld(0),
                    in("zmm1") ld(1),
                    in("zmm2") ld(2),
                    in("zmm3") ld(3),
                    in("zmm4") ld(4),
                    in("zmm5") ld(5),
                    in("zmm6") ld(6),
                    in("zmm7") ld(7),
                    in("zmm8") ld(8),
                    in("zmm9") ld(9),
                    in("zmm10") ld(10),
                    in("zmm11") ld(11),
                    in("zmm12") _mm512_loadu_si512(k.lone_ctl.as_ptr().cast()),
                    in("zmm13") _mm512_set1_epi16(1),
                    in("zmm14") _mm512_set1_epi16(k.zero_point as i16),
                    in("zmm15") _mm512_set1_epi8(k.lo as u8 as i8),
                    in("zmm16") _mm512_set1_epi8(k.hi as u8 as i8),
                    out("zmm17") _,
                    out("zmm18") _,
                    out("zmm19") _,
                    out("zmm20") _,
                    out("zmm21") _,
                    out("zmm22") _,
                    out("zmm23") _,
                    out("zmm24") _,
                    out("zmm25") _,
                    out("zmm26") _,
                    out("zmm27") _,
                    out("zmm28") _,
                    out("zmm29") _,
                    out("zmm30") _,
                    options(nostack),
                )
            };
        }
        match (S, CLAMP) {
            (1, false) => body!("1", keep),
            (1, true) => body!("1", clamp),
            (_, false) => body!("2", keep),
            (_, true) => body!("2", clamp),
        }
    }
}

/// Runs `2·m ≥ 2` interior pixels of a 16-channel tail block (channels `c0..c0 + 16`, a
/// paired ymm block of `k`: two pixels per ymm, one per 128-bit lane), `step` bytes apart
/// in each tap: tap `i` of pixel `v` is at `bases[i] + c0 + v·step`, its output at
/// `dst + v·O`. `CLAMP`: the output bounds are not `0..=255`. Pipelined as [`interior`].
///
/// # Safety
/// AVX-512 F/BW/VL + VNNI available; `k.product` is [`Product::Pairs`] with nine taps and
/// `k.epi` exists; `c0 + 16 ≤ O` and `c0` starts a paired block of `k`; every
/// `bases[i] + c0 + v·step` (`i < 9`, `v < 2m`) addresses 16 readable bytes and every
/// `dst + v·O` 16 writable ones.
#[target_feature(enable = "avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn interior_pairs<const CLAMP: bool>(
    k: &RowKernel512,
    c0: usize,
    bases: &[*const u8],
    step: usize,
    m: usize,
    dst: *mut u8,
) {
    debug_assert!(k.product == Product::Pairs && m >= 1);
    let o = k.o;
    let units = RowKernel512::units(9, Product::Pairs);
    let epi = k.epi.as_ref().expect("folded bias");
    assert!(bases.len() >= 9 && c0 + 16 <= o);
    assert!(k.w.len() >= (c0 + 32) * units && 16 * epi.len() >= 3 * (c0 + 32));
    let tap = |t: usize| bases[t].wrapping_add(c0);
    // SAFETY: the weights and the control are read inside their vectors (lengths asserted
    // above); `e` addresses the block's 96 values of `epi` (asserted); the asm reads the
    // 16 bytes of taps `p_t + 2v·step` and `+ step` (v < m), the caller's tap addresses,
    // writes 16 bytes at `dst + 2v·O` and `+ O` (`dm` starts two pixels early: each pair
    // stores the previous one), and pushes its pair count to the stack
    // (popped at its end); the ymm registers it writes are declared clobbered.
    unsafe {
        let ld = |u: usize| _mm256_loadu_si256(k.w.as_ptr().add(c0 * units + 32 * u).cast());
        let e = epi.as_ptr().cast::<u32>().add(3 * c0);
        macro_rules! body {
            ($c:ident) => {
                asm!(
                    "push {m}",
                    pipeline!(ptr, "ymm", 32, "1", $c),
                    "pop {m}",
                    m = inout(reg) m => _,
                    st = in(reg) step,
                    o = in(reg) o,
                    dm = inout(reg) dst.wrapping_sub(2 * o) => _,
                    e = in(reg) e,
                    p0 = inout(reg) tap(0) => _,
                    p1 = inout(reg) tap(1) => _,
                    p2 = inout(reg) tap(2) => _,
                    p3 = inout(reg) tap(3) => _,
                    p4 = inout(reg) tap(4) => _,
                    p5 = inout(reg) tap(5) => _,
                    p6 = inout(reg) tap(6) => _,
                    p7 = inout(reg) tap(7) => _,
                    p8 = inout(reg) tap(8) => _,
                    in("ymm0") ld(0),
                    in("ymm1") ld(1),
                    in("ymm2") ld(2),
                    in("ymm3") ld(3),
                    in("ymm4") ld(4),
                    in("ymm5") ld(5),
                    in("ymm6") ld(6),
                    in("ymm7") ld(7),
                    in("ymm8") ld(8),
                    in("ymm9") ld(9),
                    in("ymm10") ld(10),
                    in("ymm11") ld(11),
                    in("ymm12") _mm256_loadu_si256(k.lone_ctl.as_ptr().cast()),
                    in("ymm13") _mm256_set1_epi16(1),
                    in("ymm14") _mm256_set1_epi16(k.zero_point as i16),
                    in("ymm15") _mm256_set1_epi8(k.lo as u8 as i8),
                    in("ymm16") _mm256_set1_epi8(k.hi as u8 as i8),
                    out("ymm17") _,
                    out("ymm18") _,
                    out("ymm19") _,
                    out("ymm20") _,
                    out("ymm21") _,
                    out("ymm22") _,
                    out("ymm23") _,
                    out("ymm24") _,
                    out("ymm25") _,
                    out("ymm26") _,
                    out("ymm27") _,
                    out("ymm28") _,
                    out("ymm29") _,
                    out("ymm30") _,
                )
            };
        }
        if CLAMP { body!(clamp) } else { body!(keep) }
    }
}
