//! The zero-padded, column-phase-split copy of an input plane that the direct float
//! convolutions read from.
//!
//! A plane of `h x w` with padding `ph, pw` and horizontal stride `sw` is stored as
//! `(h + 2ph) · sw` phase rows of `phase_w` floats: phase row `y·sw + r` holds the padded
//! columns `r, r + sw, r + 2sw, …` of padded row `y`. The input of output column `ox` for
//! kernel column offset `col` (`j · dilation`) is padded column `ox·sw + col`, which is column
//! `ox + col / sw` of phase `col mod sw`: consecutive outputs read consecutive floats, for
//! every stride and dilation, so the kernels load whole vectors.

use super::direct_kernel::DirectConvKernel;
use super::pair_split::PairSplit;
use super::window::ConvWindow;

/// The phase layout of one padded plane (see the module docs).
pub(super) struct Phases {
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
    sw: usize,
    phase_w: usize,
    /// Per phase `r`: the first input column stored in it and its column in the phase row.
    starts: Vec<(usize, usize)>,
    /// The copy of stride-2 rows.
    pairs: PairSplit,
}

impl Phases {
    /// The layout for the input planes of `win` (size, padding, horizontal stride) with phase
    /// rows of `phase_w` floats (padded columns past `phase_w · sw` are not stored), filled
    /// with the SIMD copies of the kernel family `kind`.
    pub(super) fn new(win: &ConvWindow, phase_w: usize, kind: DirectConvKernel) -> Self {
        let ([h, w], [ph, pw]) = (win.input, win.padding);
        let sw = win.stride[1].max(1);
        let starts = (0..sw)
            .map(|r| {
                let t0 = pw.saturating_sub(r).div_ceil(sw);
                (r + t0 * sw - pw, t0)
            })
            .collect();
        Self {
            h,
            w,
            ph,
            pw,
            sw,
            phase_w,
            starts,
            pairs: PairSplit::for_kernel(kind),
        }
    }

    /// Floats of one stored plane.
    pub(super) fn len(&self) -> usize {
        (self.h + 2 * self.ph) * self.sw * self.phase_w
    }

    /// Index of padded row `y`, padded column `col` in a stored plane (for `col` below
    /// `phase_w · sw`).
    pub(super) fn offset(&self, y: usize, col: usize) -> usize {
        (y * self.sw + col % self.sw) * self.phase_w + col / self.sw
    }

    /// Writes the input plane `src` (`h · w` floats) into the stored plane `dst` (`len()`
    /// floats). Only interior positions are written: the padding keeps whatever `dst` held,
    /// so a buffer zeroed once can be refilled plane after plane.
    pub(super) fn fill(&self, src: &[f32], dst: &mut [f32]) {
        let (w, pw, sw, phase_w) = (self.w, self.pw, self.sw, self.phase_w);
        for y in 0..self.h {
            let row = &src[y * w..(y + 1) * w];
            let prow = (y + self.ph) * sw;
            if sw == 1 {
                let d = &mut dst[prow * phase_w..(prow + 1) * phase_w];
                let len = w.min(phase_w.saturating_sub(pw));
                if len > 0 {
                    d[pw..pw + len].copy_from_slice(&row[..len]);
                }
                continue;
            }
            if sw == 2 {
                fill_pairs(
                    self.pairs,
                    row,
                    pw,
                    &mut dst[prow * phase_w..(prow + 2) * phase_w],
                );
                continue;
            }
            for (r, &(x0, t0)) in self.starts.iter().enumerate() {
                let d = &mut dst[(prow + r) * phase_w..(prow + r + 1) * phase_w];
                let from = row.iter().skip(x0).step_by(sw);
                d.iter_mut().skip(t0).zip(from).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// One row into its two phase rows (`rows`: phase 0 then phase 1, each `rows.len() / 2`
/// wide) for stride 2: even input columns land in phase `pw mod 2` from column `pw / 2`, odd
/// ones in the other phase from column `⌈pw / 2⌉`, in one pass over pairs of inputs (the
/// generic strided copy was most of a stride-2 depthwise convolution's time), 8 pairs per
/// AVX2 step for the SIMD families ([`PairSplit`]).
fn fill_pairs(split: PairSplit, row: &[f32], pw: usize, rows: &mut [f32]) {
    let phase_w = rows.len() / 2;
    let (r0, r1) = rows.split_at_mut(phase_w);
    let (even, odd) = if pw.is_multiple_of(2) {
        (r0, r1)
    } else {
        (r1, r0)
    };
    let (ta, tb) = (pw / 2, pw.div_ceil(2));
    let even = &mut even[ta.min(phase_w)..];
    let odd = &mut odd[tb.min(phase_w)..];
    let ne = row.len().div_ceil(2).min(even.len());
    let no = (row.len() / 2).min(odd.len());
    let pairs = ne.min(no);
    split.split(&row[..2 * pairs], &mut even[..pairs], &mut odd[..pairs]);
    for i in pairs..ne {
        even[i] = row[2 * i];
    }
    for i in pairs..no {
        odd[i] = row[2 * i + 1];
    }
}

thread_local! {
    /// The padded planes of the direct convolutions, kept per thread: a fresh allocation of
    /// this size per call (hundreds of KiB for a 64-channel 56 x 56 image) costs more in page
    /// faults than the convolution's copy into it.
    static PLANES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on a zeroed buffer of `len` floats, this thread's reused one when it is free.
pub(super) fn with_zeroed<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buf = PLANES
        .with(|p| p.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)))
        .unwrap_or_default();
    buf.clear();
    buf.resize(len, 0.0);
    let out = f(&mut buf);
    PLANES.with(|p| {
        if let Ok(mut slot) = p.try_borrow_mut()
            && slot.capacity() < buf.capacity()
        {
            *slot = buf;
        }
    });
    out
}
