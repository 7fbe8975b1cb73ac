//! `nn.MultiheadAttention` (no masks, no dropout, kdim = vdim = embed_dim).

use half::f16;
use qkernels::float::{MatMut, MatRef, Threads, sgemm};
use qtensor::Tensor;

use super::dense::{DenseWeight, dense};
use super::half_weight::{backward_on_half, placeholder, round_to_f16, visit_half, visit_half_mut};
use super::util::{same_shape, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::{Rng, uniform};
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "MultiheadAttention";

/// Rows `r0..r1` (each `k` long) of a row-major weight (halved weights stay f16: they are
/// used as stored, never widened whole).
fn weight_rows(w: DenseWeight<'_>, r0: usize, r1: usize, k: usize) -> DenseWeight<'_> {
    match w {
        DenseWeight::F32(w) => DenseWeight::F32(&w[r0 * k..r1 * k]),
        DenseWeight::F16(w) => DenseWeight::F16(&w[r0 * k..r1 * k]),
    }
}

/// Swaps the first two axes of a `[a, b, f]` buffer.
fn swap01(data: &[f32], a: usize, b: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    for i in 0..a {
        for j in 0..b {
            out[(j * a + i) * f..(j * a + i + 1) * f]
                .copy_from_slice(&data[(i * b + j) * f..(i * b + j + 1) * f]);
        }
    }
    out
}

/// What forward kept (all sequence-first).
#[derive(Clone, Debug)]
struct Saved {
    l: usize,
    s: usize,
    n: usize,
    q_in: Vec<f32>,
    k_in: Vec<f32>,
    v_in: Vec<f32>,
    /// Projected and scaled queries, keys, values `[L|S, N, E]`.
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    /// Attention probabilities `[N, H, L, S]`.
    attn: Vec<f32>,
    /// Concatenated head outputs `[L, N, E]`.
    heads: Vec<f32>,
    self_attention: bool,
}

/// Scaled dot-product attention over `num_heads` heads with PyTorch's packed parameters:
/// `in_proj_weight [3E, E]`, `in_proj_bias [3E]`, `out_proj.weight [E, E]`, `out_proj.bias [E]`.
///
/// Input: `x` (self-attention, `query = key = value = x`) or `(query, key, value)`, each
/// `[L, N, E]` (`[N, L, E]` if batch_first). Output: `(attn_output, attn_weights)` with the
/// weights averaged over heads, `[N, L, S]`. Backward takes `(d_output, d_weights)` or
/// `d_output` alone and returns `dx` (self-attention) or `(dq, dk, dv)`.
#[derive(Clone, Debug)]
pub struct MultiheadAttention {
    embed_dim: usize,
    num_heads: usize,
    batch_first: bool,
    /// `[3E, E]`: the query, key and value projections stacked.
    pub in_proj_weight: Param,
    /// `[3E]`, if bias.
    pub in_proj_bias: Option<Param>,
    /// `[E, E]`.
    pub out_proj_weight: Param,
    /// `[E]`, if bias.
    pub out_proj_bias: Option<Param>,
    /// `(in_proj_weight, out_proj.weight)` in f16 after `half()`; the two fields above are then
    /// empty placeholders.
    half: Option<(Tensor<f16>, Tensor<f16>)>,
    saved: Option<Saved>,
    training: bool,
}

impl MultiheadAttention {
    /// PyTorch's init: `in_proj_weight` xavier-uniform, `out_proj.weight` as `nn.Linear`
    /// (kaiming-uniform a=√5), both biases zero.
    pub fn new(
        embed_dim: usize,
        num_heads: usize,
        bias: bool,
        batch_first: bool,
        rng: &mut Rng,
    ) -> Result<Self> {
        if num_heads == 0 || embed_dim == 0 || !embed_dim.is_multiple_of(num_heads) {
            return Err(QnnError::InvalidConfig {
                module: NAME,
                reason: format!(
                    "embed_dim {embed_dim} must be a positive multiple of num_heads {num_heads}"
                ),
            });
        }
        let e = embed_dim;
        let xavier = (6.0 / (e + 3 * e) as f32).sqrt();
        let in_w = uniform(&[3 * e, e], -xavier, xavier, rng);
        let out_bound = 1.0 / (e as f32).sqrt();
        let out_w = uniform(&[e, e], -out_bound, out_bound, rng);
        Ok(Self {
            embed_dim,
            num_heads,
            batch_first,
            in_proj_weight: Param::new(in_w),
            in_proj_bias: bias.then(|| Param::new(Tensor::zeros(&[3 * e]))),
            out_proj_weight: Param::new(out_w),
            out_proj_bias: bias.then(|| Param::new(Tensor::zeros(&[e]))),
            half: None,
            saved: None,
            training: true,
        })
    }

    /// `(embed_dim, num_heads)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.embed_dim, self.num_heads)
    }

    /// Whether inputs are `(N, L, E)` (PyTorch's `batch_first`).
    pub fn batch_first(&self) -> bool {
        self.batch_first
    }

    fn check_params(&self) -> Result<()> {
        let e = self.embed_dim;
        let (in_shape, out_shape) = match &self.half {
            Some((i, o)) => (i.shape(), o.shape()),
            None => (self.in_proj_weight.shape(), self.out_proj_weight.shape()),
        };
        same_shape("MultiheadAttention in_proj_weight", &[3 * e, e], in_shape)?;
        same_shape("MultiheadAttention out_proj.weight", &[e, e], out_shape)?;
        if let Some(b) = &self.in_proj_bias {
            same_shape("MultiheadAttention in_proj_bias", &[3 * e], b.shape())?;
        }
        if let Some(b) = &self.out_proj_bias {
            same_shape("MultiheadAttention out_proj.bias", &[e], b.shape())?;
        }
        Ok(())
    }

    /// `(seq, batch)` of a 3-d `[.., .., E]` input, and its data sequence-first.
    fn seq_first(&self, t: &Tensor<f32>, what: &str) -> Result<(usize, usize, Vec<f32>)> {
        match *t.shape() {
            [a, b, e] if e == self.embed_dim => Ok(if self.batch_first {
                (b, a, swap01(t.data(), a, b, e))
            } else {
                (a, b, t.data().to_vec())
            }),
            [_, _, e] => Err(QnnError::ShapeMismatch {
                what: format!("MultiheadAttention {what} embed dim"),
                expected: vec![self.embed_dim],
                got: vec![e],
            }),
            _ => Err(QnnError::WrongRank {
                module: NAME,
                expected: "3-d (L, N, E) inputs, or (N, L, E) when batch_first",
                got: t.shape().to_vec(),
            }),
        }
    }

    fn bias_block(&self, k: usize) -> Option<&[f32]> {
        let e = self.embed_dim;
        self.in_proj_bias
            .as_ref()
            .map(|b| &b.value.data()[k * e..(k + 1) * e])
    }
}

impl Module for MultiheadAttention {
    fn kind(&self) -> ModuleKind {
        ModuleKind::MultiheadAttention
    }

    /// PyTorch prints no arguments, only the output projection (an `nn.Linear` subclass that
    /// dynamic quantization skips): `(out_proj): NonDynamicallyQuantizableLinear(…)`.
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        let e = self.embed_dim;
        let out_proj = crate::repr::ReprTree::leaf(
            "NonDynamicallyQuantizableLinear",
            format!(
                "in_features={e}, out_features={e}, bias={}",
                crate::repr::py_bool(self.out_proj_bias.is_some())
            ),
        );
        vec![("out_proj".to_string(), out_proj)]
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        (self.half.is_some() && matches!(name, "in_proj_weight" | "out_proj.weight"))
            .then_some(crate::repr::TensorDType::F16)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        self.check_params()?;
        let (qt, kt, vt, self_attention) = match input {
            Value::F32(x) => (x, x, x, true),
            Value::Tuple(v) if v.len() == 3 => (
                v[0].as_f32(NAME)?,
                v[1].as_f32(NAME)?,
                v[2].as_f32(NAME)?,
                false,
            ),
            other => {
                return Err(QnnError::WrongValueKind {
                    module: NAME,
                    expected: "f32 x or (query, key, value) tuple",
                    got: other.kind_name(),
                });
            }
        };
        let (l, n, q_in) = self.seq_first(qt, "query")?;
        let (s, nk, k_in) = self.seq_first(kt, "key")?;
        let (sv, nv, v_in) = self.seq_first(vt, "value")?;
        if nk != n || nv != n || sv != s {
            return Err(QnnError::ShapeMismatch {
                what: "MultiheadAttention key/value vs query (seq, batch)".into(),
                expected: vec![s, n],
                got: vec![sv.max(nk), nv],
            });
        }
        let (e, h) = (self.embed_dim, self.num_heads);
        let d = e / h;
        let scale = 1.0 / (d as f32).sqrt();
        let (w, w_out) = match &self.half {
            Some((w_in, w_out)) => (
                DenseWeight::F16(w_in.data()),
                DenseWeight::F16(w_out.data()),
            ),
            None => (
                DenseWeight::F32(self.in_proj_weight.value.data()),
                DenseWeight::F32(self.out_proj_weight.value.data()),
            ),
        };
        let w_q = weight_rows(w, 0, e, e);
        let mut q = dense(&q_in, l * n, e, w_q, self.bias_block(0), e)?;
        q.iter_mut().for_each(|v| *v *= scale);
        let w_k = weight_rows(w, e, 2 * e, e);
        let k = dense(&k_in, s * n, e, w_k, self.bias_block(1), e)?;
        let w_v = weight_rows(w, 2 * e, 3 * e, e);
        let v = dense(&v_in, s * n, e, w_v, self.bias_block(2), e)?;
        let mut attn = vec![0.0f32; n * h * l * s];
        let mut heads = vec![0.0f32; l * n * e];
        for b in 0..n {
            for hh in 0..h {
                let off = b * e + hh * d;
                let qv = MatRef::new(&q[off..], l, d, n * e, 1)?;
                let kv = MatRef::new(&k[off..], s, d, n * e, 1)?;
                let vv = MatRef::new(&v[off..], s, d, n * e, 1)?;
                let a = &mut attn[(b * h + hh) * l * s..(b * h + hh + 1) * l * s];
                sgemm(
                    1.0,
                    qv,
                    kv.t(),
                    0.0,
                    MatMut::row_major(a, l, s)?,
                    Threads::Single,
                )?;
                for row in a.chunks_exact_mut(s.max(1)) {
                    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let sum: f32 = row
                        .iter_mut()
                        .map(|x| {
                            *x = (*x - max).exp();
                            *x
                        })
                        .sum();
                    row.iter_mut().for_each(|x| *x /= sum);
                }
                sgemm(
                    1.0,
                    MatRef::row_major(a, l, s)?,
                    vv,
                    0.0,
                    MatMut::new(&mut heads[off..], l, d, n * e, 1)?,
                    Threads::Single,
                )?;
            }
        }
        let out = dense(
            &heads,
            l * n,
            e,
            w_out,
            self.out_proj_bias.as_ref().map(|b| b.value.data()),
            e,
        )?;
        let mut weights = vec![0.0f32; n * l * s];
        for b in 0..n {
            for hh in 0..h {
                let a = &attn[(b * h + hh) * l * s..(b * h + hh + 1) * l * s];
                weights[b * l * s..(b + 1) * l * s]
                    .iter_mut()
                    .zip(a)
                    .for_each(|(w, v)| *w += v / h as f32);
            }
        }
        let out = if self.batch_first {
            tensor(&[n, l, e], swap01(&out, l, n, e))?
        } else {
            tensor(&[l, n, e], out)?
        };
        self.saved = Some(Saved {
            l,
            s,
            n,
            q_in,
            k_in,
            v_in,
            q,
            k,
            v,
            attn,
            heads,
            self_attention,
        });
        Ok(Value::Tuple(vec![
            Value::F32(out),
            Value::F32(tensor(&[n, l, s], weights)?),
        ]))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        if self.half.is_some() {
            return Err(backward_on_half(NAME));
        }
        let sv = saved(&self.saved, NAME)?.clone();
        let (l, s, n) = (sv.l, sv.s, sv.n);
        let (e, h) = (self.embed_dim, self.num_heads);
        let d = e / h;
        let scale = 1.0 / (d as f32).sqrt();
        let (dout, dweights) = match grad_output {
            Value::F32(g) => (g, None),
            Value::Tuple(v) if v.len() == 1 => (v[0].as_f32(NAME)?, None),
            Value::Tuple(v) if v.len() == 2 => (v[0].as_f32(NAME)?, Some(v[1].as_f32(NAME)?)),
            other => {
                return Err(QnnError::WrongValueKind {
                    module: NAME,
                    expected: "f32 d_output or (d_output, d_weights)",
                    got: other.kind_name(),
                });
            }
        };
        let out_shape = if self.batch_first {
            [n, l, e]
        } else {
            [l, n, e]
        };
        same_shape(
            "MultiheadAttention gradient vs output",
            &out_shape,
            dout.shape(),
        )?;
        if let Some(dw) = dweights {
            same_shape(
                "MultiheadAttention gradient vs attention weights",
                &[n, l, s],
                dw.shape(),
            )?;
        }
        let dout = if self.batch_first {
            swap01(dout.data(), n, l, e)
        } else {
            dout.data().to_vec()
        };
        // output projection
        let dv_out = MatRef::row_major(&dout, l * n, e)?;
        sgemm(
            1.0,
            dv_out.t(),
            MatRef::row_major(&sv.heads, l * n, e)?,
            1.0,
            MatMut::row_major(self.out_proj_weight.grad.data_mut(), e, e)?,
            Threads::Single,
        )?;
        if let Some(b) = &mut self.out_proj_bias {
            for row in dout.chunks_exact(e) {
                b.grad
                    .data_mut()
                    .iter_mut()
                    .zip(row)
                    .for_each(|(a, v)| *a += v);
            }
        }
        let mut dheads = vec![0.0f32; l * n * e];
        sgemm(
            1.0,
            dv_out,
            MatRef::row_major(self.out_proj_weight.value.data(), e, e)?,
            0.0,
            MatMut::row_major(&mut dheads, l * n, e)?,
            Threads::Single,
        )?;
        // attention
        let (mut dq, mut dk, mut dv) = (
            vec![0.0f32; l * n * e],
            vec![0.0f32; s * n * e],
            vec![0.0f32; s * n * e],
        );
        let mut da = vec![0.0f32; l * s];
        for b in 0..n {
            for hh in 0..h {
                let off = b * e + hh * d;
                let a = &sv.attn[(b * h + hh) * l * s..(b * h + hh + 1) * l * s];
                let av = MatRef::row_major(a, l, s)?;
                let dhv = MatRef::new(&dheads[off..], l, d, n * e, 1)?;
                // dV = Aᵀ dO ; dA = dO Vᵀ (+ d_weights / H)
                sgemm(
                    1.0,
                    av.t(),
                    dhv,
                    0.0,
                    MatMut::new(&mut dv[off..], s, d, n * e, 1)?,
                    Threads::Single,
                )?;
                sgemm(
                    1.0,
                    dhv,
                    MatRef::new(&sv.v[off..], s, d, n * e, 1)?.t(),
                    0.0,
                    MatMut::row_major(&mut da, l, s)?,
                    Threads::Single,
                )?;
                if let Some(dw) = dweights {
                    da.iter_mut()
                        .zip(&dw.data()[b * l * s..(b + 1) * l * s])
                        .for_each(|(x, g)| *x += g / h as f32);
                }
                // softmax backward, in place: dS = A (dA - Σ dA A)
                for (drow, arow) in da.chunks_exact_mut(s.max(1)).zip(a.chunks_exact(s.max(1))) {
                    let dot: f32 = drow.iter().zip(arow).map(|(x, y)| x * y).sum();
                    drow.iter_mut()
                        .zip(arow)
                        .for_each(|(x, y)| *x = y * (*x - dot));
                }
                let dsv = MatRef::row_major(&da, l, s)?;
                // scores = (scale q) kᵀ: d(scaled q) = dS k, dk = dSᵀ (scaled q)
                sgemm(
                    scale,
                    dsv,
                    MatRef::new(&sv.k[off..], s, d, n * e, 1)?,
                    0.0,
                    MatMut::new(&mut dq[off..], l, d, n * e, 1)?,
                    Threads::Single,
                )?;
                sgemm(
                    1.0,
                    dsv.t(),
                    MatRef::new(&sv.q[off..], l, d, n * e, 1)?,
                    0.0,
                    MatMut::new(&mut dk[off..], s, d, n * e, 1)?,
                    Threads::Single,
                )?;
            }
        }
        // input projections: block k of in_proj maps input k
        let ins = [(&sv.q_in, &dq, l), (&sv.k_in, &dk, s), (&sv.v_in, &dv, s)];
        let mut dins = Vec::with_capacity(3);
        for (blk, (x, g, rows)) in ins.into_iter().enumerate() {
            let gv = MatRef::row_major(g, rows * n, e)?;
            let dw = &mut self.in_proj_weight.grad.data_mut()[blk * e * e..(blk + 1) * e * e];
            sgemm(
                1.0,
                gv.t(),
                MatRef::row_major(x, rows * n, e)?,
                1.0,
                MatMut::row_major(dw, e, e)?,
                Threads::Single,
            )?;
            if let Some(b) = &mut self.in_proj_bias {
                let db = &mut b.grad.data_mut()[blk * e..(blk + 1) * e];
                for row in g.chunks_exact(e) {
                    db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
                }
            }
            let mut dx = vec![0.0f32; rows * n * e];
            sgemm(
                1.0,
                gv,
                MatRef::row_major(
                    &self.in_proj_weight.value.data()[blk * e * e..(blk + 1) * e * e],
                    e,
                    e,
                )?,
                0.0,
                MatMut::row_major(&mut dx, rows * n, e)?,
                Threads::Single,
            )?;
            dins.push((dx, rows));
        }
        let to_value = |(dx, rows): (Vec<f32>, usize)| -> Result<Value> {
            Ok(Value::F32(if self.batch_first {
                tensor(&[n, rows, e], swap01(&dx, rows, n, e))?
            } else {
                tensor(&[rows, n, e], dx)?
            }))
        };
        if sv.self_attention {
            let mut it = dins.into_iter();
            let (mut sum, rows) = it
                .next()
                .ok_or(QnnError::BackwardBeforeForward { module: NAME })?;
            for (dx, _) in it {
                sum.iter_mut().zip(&dx).for_each(|(a, v)| *a += v);
            }
            return to_value((sum, rows));
        }
        Ok(Value::Tuple(
            dins.into_iter().map(to_value).collect::<Result<_>>()?,
        ))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        match &self.half {
            Some((w, _)) => visit_half("in_proj_weight", w, f),
            None => f("in_proj_weight", &self.in_proj_weight),
        }
        if let Some(b) = &self.in_proj_bias {
            f("in_proj_bias", b);
        }
        match &self.half {
            Some((_, w)) => visit_half("out_proj.weight", w, f),
            None => f("out_proj.weight", &self.out_proj_weight),
        }
        if let Some(b) = &self.out_proj_bias {
            f("out_proj.bias", b);
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.half {
            Some((w, _)) => visit_half_mut("in_proj_weight", w, f),
            None => f("in_proj_weight", &mut self.in_proj_weight),
        }
        if let Some(b) = &mut self.in_proj_bias {
            f("in_proj_bias", b);
        }
        match &mut self.half {
            Some((_, w)) => visit_half_mut("out_proj.weight", w, f),
            None => f("out_proj.weight", &mut self.out_proj_weight),
        }
        if let Some(b) = &mut self.out_proj_bias {
            f("out_proj.bias", b);
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    /// Moves `in_proj_weight` and `out_proj.weight` to f16 (biases stay f32); inference-only
    /// after.
    fn half(&mut self) -> Result<()> {
        if self.half.is_none() {
            self.check_params()?;
            let w_in = round_to_f16(&self.in_proj_weight.value)?;
            let w_out = round_to_f16(&self.out_proj_weight.value)?;
            self.half = Some((w_in, w_out));
            self.in_proj_weight = placeholder();
            self.out_proj_weight = placeholder();
            self.saved = None;
        }
        Ok(())
    }

    fn param_bytes(&self) -> usize {
        let weights = match &self.half {
            Some((i, o)) => 2 * (i.numel() + o.numel()),
            None => 4 * (self.in_proj_weight.value.numel() + self.out_proj_weight.value.numel()),
        };
        let biases: usize = [&self.in_proj_bias, &self.out_proj_bias]
            .into_iter()
            .flatten()
            .map(|b| 4 * b.value.numel())
            .sum();
        weights + biases
    }
}
