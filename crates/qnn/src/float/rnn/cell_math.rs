//! One time step of an RNN / LSTM / GRU cell on a batch, forward and backward, on slices.
//!
//! Gate layouts follow PyTorch: LSTM `[i, f, g, o]`, GRU `[r, z, n]`, each block `H` wide;
//! `weight_ih` is `[G*H, I]`, `weight_hh` is `[G*H, H]`.

use qkernels::float::{MatMut, MatRef, Threads, sgemm};
use qkernels::fp16::{self, Fp16Epilogue, PackedF32};

use crate::error::Result;

/// Which recurrence a cell computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnTanh,
    /// `h' = relu(W_ih x + b_ih + W_hh h + b_hh)`.
    RnnRelu,
    /// LSTM with gates `[i, f, g, o]` and a cell state.
    Lstm,
    /// GRU with gates `[r, z, n]`.
    Gru,
}

/// PyTorch's `extra_repr` of an `nn.RNNCell`/`LSTMCell`/`GRUCell` (and their dynamic quantized
/// forms): `6, 5`, then `bias=False` and `nonlinearity=relu` where they differ from the default.
pub(crate) fn cell_torch_args(kind: CellKind, input: usize, hidden: usize, bias: bool) -> String {
    let mut s = format!("{input}, {hidden}");
    if !bias {
        s += ", bias=False";
    }
    if kind == CellKind::RnnRelu {
        s += ", nonlinearity=relu";
    }
    s
}

impl CellKind {
    /// Number of gate blocks `G`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::RnnTanh | CellKind::RnnRelu => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// Borrowed weights of one cell (one layer and direction).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CellWeights<'a> {
    pub w_ih: &'a [f32],
    pub w_hh: &'a [f32],
    pub b_ih: Option<&'a [f32]>,
    pub b_hh: Option<&'a [f32]>,
}

/// Mutable gradients of one cell.
pub(crate) struct CellGrads<'a> {
    pub w_ih: &'a mut [f32],
    pub w_hh: &'a mut [f32],
    pub b_ih: Option<&'a mut [f32]>,
    pub b_hh: Option<&'a mut [f32]>,
}

/// What a forward step keeps for its backward step.
#[derive(Clone, Debug)]
pub(crate) struct StepCache {
    /// `x W_ihᵀ + b_ih`, `[B, G*H]`.
    gi: Vec<f32>,
    /// `h W_hhᵀ + b_hh`, `[B, G*H]`.
    gh: Vec<f32>,
    /// The new cell state (LSTM), `[B, H]`.
    c_new: Vec<f32>,
    /// The new hidden state, `[B, H]`.
    h_new: Vec<f32>,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `out[B, G*H] = a[B, K] wᵀ + bias` with `w` `[G*H, K]`.
fn affine(
    a: &[f32],
    b: usize,
    k: usize,
    w: &[f32],
    bias: Option<&[f32]>,
    gh: usize,
) -> Result<Vec<f32>> {
    let mut out = vec![0.0f32; b * gh];
    let beta = match bias {
        Some(bias) => {
            out.chunks_exact_mut(gh.max(1))
                .for_each(|r| r.copy_from_slice(bias));
            1.0
        }
        None => 0.0,
    };
    sgemm(
        1.0,
        MatRef::row_major(a, b, k)?,
        MatRef::row_major(w, gh, k)?.t(),
        beta,
        MatMut::row_major(&mut out, b, gh)?,
        Threads::Single,
    )?;
    Ok(out)
}

/// One forward step: returns `(h_new, c_new, cache)`; `c` is ignored except for LSTM.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_forward(
    kind: CellKind,
    w: CellWeights<'_>,
    x: &[f32],
    h: &[f32],
    c: &[f32],
    b: usize,
    i: usize,
    hd: usize,
) -> Result<StepCache> {
    let g = kind.gates() * hd;
    let gi = affine(x, b, i, w.w_ih, w.b_ih, g)?;
    let gh = affine(h, b, hd, w.w_hh, w.b_hh, g)?;
    step_from_gates(kind, gi, gh, h, c, b, hd)
}

/// `rows × N` of `x W + bias` with `W` packed once ([`PackedF32`], `N × K`): the products a
/// sequence module repeats every step (and its whole-sequence input projection).
pub(crate) fn affine_packed(
    x: &[f32],
    rows: usize,
    w: &PackedF32,
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let (n, k) = (w.n(), w.k());
    let mut out = vec![0.0f32; rows * n];
    let epilogue = Fp16Epilogue { bias, relu: false };
    fp16::gemm_f32_f32(x, rows, k, w, &mut out, n, epilogue)?;
    Ok(out)
}

/// The element-wise part of a forward step from the gate pre-activations `gi`, `gh`
/// (`[B, G*H]` each), as ATen orders it: `qkernels::gates` (the fused pass the dynamic
/// cells use: polynomial `σ` and `tanh` within about 1.5 ulp, vectorized on AVX2; libm's
/// scalar `tanhf` was a quarter of a float LSTM's time). LSTM: `c' = f·c + i·g`,
/// `h' = tanh(c')·o`; GRU: `n = tanh(i_n + h_n·r)`, `h' = (h − n)·z + n`.
///
/// Errors: `h` or (LSTM) `c` shorter than `B·H`, or gates shorter than `B·G·H`.
pub(crate) fn step_from_gates(
    kind: CellKind,
    gi: Vec<f32>,
    gh: Vec<f32>,
    h: &[f32],
    c: &[f32],
    b: usize,
    hd: usize,
) -> Result<StepCache> {
    let mut h_new = h.to_vec();
    let mut c_new = if kind == CellKind::Lstm {
        c.to_vec()
    } else {
        Vec::new()
    };
    crate::dynamic::gates::step(kind, &gi, &gh, &mut h_new, &mut c_new, b, hd)?;
    Ok(StepCache {
        gi,
        gh,
        c_new,
        h_new,
    })
}

impl StepCache {
    /// The new hidden state.
    pub fn h(&self) -> &[f32] {
        &self.h_new
    }

    /// The new cell state (empty except for LSTM).
    pub fn c(&self) -> &[f32] {
        &self.c_new
    }
}

/// One backward step. Given `dh_new` (and `dc_new` for LSTM), accumulates parameter gradients
/// and returns `(dx, dh_prev, dc_prev)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_backward(
    kind: CellKind,
    w: CellWeights<'_>,
    grads: &mut CellGrads<'_>,
    cache: &StepCache,
    x: &[f32],
    h: &[f32],
    c: &[f32],
    dh_new: &[f32],
    dc_new: &[f32],
    b: usize,
    i: usize,
    hd: usize,
) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    let g = kind.gates() * hd;
    let (gi, gh) = (&cache.gi, &cache.gh);
    let mut dgi = vec![0.0f32; b * g];
    let mut dgh = vec![0.0f32; b * g];
    let mut dh_prev = vec![0.0f32; b * hd];
    let mut dc_prev = vec![0.0f32; if kind == CellKind::Lstm { b * hd } else { 0 }];
    for r in 0..b {
        let (gir, ghr) = (&gi[r * g..(r + 1) * g], &gh[r * g..(r + 1) * g]);
        for j in 0..hd {
            let o = r * hd + j;
            let dh = dh_new[o];
            match kind {
                CellKind::RnnTanh => {
                    let y = cache.h_new[o];
                    let d = dh * (1.0 - y * y);
                    dgi[r * g + j] = d;
                    dgh[r * g + j] = d;
                }
                CellKind::RnnRelu => {
                    let d = if gir[j] + ghr[j] > 0.0 { dh } else { 0.0 };
                    dgi[r * g + j] = d;
                    dgh[r * g + j] = d;
                }
                CellKind::Lstm => {
                    let pre = |k: usize| gir[k * hd + j] + ghr[k * hd + j];
                    let (ig, fg, gg, og) = (
                        sigmoid(pre(0)),
                        sigmoid(pre(1)),
                        pre(2).tanh(),
                        sigmoid(pre(3)),
                    );
                    let tc = cache.c_new[o].tanh();
                    let dc = dc_new.get(o).copied().unwrap_or(0.0) + dh * og * (1.0 - tc * tc);
                    let d = [
                        dc * gg * ig * (1.0 - ig),
                        dc * c[o] * fg * (1.0 - fg),
                        dc * ig * (1.0 - gg * gg),
                        dh * tc * og * (1.0 - og),
                    ];
                    for (k, dk) in d.into_iter().enumerate() {
                        dgi[r * g + k * hd + j] = dk;
                        dgh[r * g + k * hd + j] = dk;
                    }
                    dc_prev[o] = dc * fg;
                }
                CellKind::Gru => {
                    let rg = sigmoid(gir[j] + ghr[j]);
                    let zg = sigmoid(gir[hd + j] + ghr[hd + j]);
                    let ng = (gir[2 * hd + j] + rg * ghr[2 * hd + j]).tanh();
                    let dn = dh * (1.0 - zg) * (1.0 - ng * ng);
                    let dz = dh * (h[o] - ng) * zg * (1.0 - zg);
                    let dr = dn * ghr[2 * hd + j] * rg * (1.0 - rg);
                    dgi[r * g + j] = dr;
                    dgh[r * g + j] = dr;
                    dgi[r * g + hd + j] = dz;
                    dgh[r * g + hd + j] = dz;
                    dgi[r * g + 2 * hd + j] = dn;
                    dgh[r * g + 2 * hd + j] = dn * rg;
                    dh_prev[o] = dh * zg;
                }
            }
        }
    }
    // parameter gradients
    let dgi_v = MatRef::row_major(&dgi, b, g)?;
    let dgh_v = MatRef::row_major(&dgh, b, g)?;
    sgemm(
        1.0,
        dgi_v.t(),
        MatRef::row_major(x, b, i)?,
        1.0,
        MatMut::row_major(grads.w_ih, g, i)?,
        Threads::Single,
    )?;
    sgemm(
        1.0,
        dgh_v.t(),
        MatRef::row_major(h, b, hd)?,
        1.0,
        MatMut::row_major(grads.w_hh, g, hd)?,
        Threads::Single,
    )?;
    for (db, dg) in [
        (grads.b_ih.as_deref_mut(), &dgi),
        (grads.b_hh.as_deref_mut(), &dgh),
    ] {
        if let Some(db) = db {
            for row in dg.chunks_exact(g.max(1)) {
                db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
            }
        }
    }
    // input and state gradients
    let mut dx = vec![0.0f32; b * i];
    sgemm(
        1.0,
        dgi_v,
        MatRef::row_major(w.w_ih, g, i)?,
        0.0,
        MatMut::row_major(&mut dx, b, i)?,
        Threads::Single,
    )?;
    sgemm(
        1.0,
        dgh_v,
        MatRef::row_major(w.w_hh, g, hd)?,
        1.0,
        MatMut::row_major(&mut dh_prev, b, hd)?,
        Threads::Single,
    )?;
    Ok((dx, dh_prev, dc_prev))
}
