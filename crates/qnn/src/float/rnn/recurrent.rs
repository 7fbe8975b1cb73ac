//! `nn.RNN`, `nn.LSTM`, `nn.GRU`: multi-layer, optionally bidirectional, over a sequence,
//! with backpropagation through time.

use qkernels::fp16::PackedF32;

use super::cell_math::{
    CellKind, StepCache, affine_packed, step_backward, step_forward, step_from_gates,
};
use super::params::CellParams;
use super::sequence_call::{SequenceCall, swap01};
use crate::error::{QnnError, Result};
use crate::float::util::{same_shape, saved, tensor};
use crate::init::Rng;
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

/// Hyper-parameters of [`Lstm`], [`Gru`] and [`Rnn`] (PyTorch's names; no inter-layer dropout,
/// no projections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentConfig {
    /// Features of the input `I`.
    pub input_size: usize,
    /// Features of the hidden state `H`.
    pub hidden_size: usize,
    /// Stacked layers (default 1).
    pub num_layers: usize,
    /// Whether cells have biases (default true).
    pub bias: bool,
    /// Input and output are `(B, T, F)` instead of `(T, B, F)` (default false).
    pub batch_first: bool,
    /// A second, reversed direction per layer (default false).
    pub bidirectional: bool,
}

impl RecurrentConfig {
    /// PyTorch's `extra_repr` of an `nn.LSTM`/`GRU`/`RNN` (and their dynamic quantized forms)
    /// with this configuration: `6, 5, num_layers=2, bidirectional=True`, defaults left out.
    pub fn torch_args(&self) -> String {
        let mut s = format!("{}, {}", self.input_size, self.hidden_size);
        if self.num_layers != 1 {
            s += &format!(", num_layers={}", self.num_layers);
        }
        if !self.bias {
            s += ", bias=False";
        }
        if self.batch_first {
            s += ", batch_first=True";
        }
        if self.bidirectional {
            s += ", bidirectional=True";
        }
        s
    }

    /// One layer, with bias, sequence-first, one direction (PyTorch's defaults).
    pub fn new(input_size: usize, hidden_size: usize) -> Self {
        Self {
            input_size,
            hidden_size,
            num_layers: 1,
            bias: true,
            batch_first: false,
            bidirectional: false,
        }
    }
}

/// What a sequence forward kept for backpropagation through time.
#[derive(Clone, Debug)]
struct Saved {
    t: usize,
    b: usize,
    /// The input of every layer, `[T, B, I_l]`.
    layer_inputs: Vec<Vec<f32>>,
    h0: Vec<f32>,
    c0: Vec<f32>,
    /// Per `(layer, direction)`, the step caches indexed by time.
    caches: Vec<Vec<StepCache>>,
    with_state: bool,
}

/// The shared implementation of the three sequence modules.
#[derive(Clone, Debug)]
struct Recurrent {
    kind: CellKind,
    name: &'static str,
    cfg: RecurrentConfig,
    cells: Vec<CellParams>,
    saved: Option<Saved>,
    training: bool,
}

impl Recurrent {
    fn new(
        kind: CellKind,
        name: &'static str,
        cfg: RecurrentConfig,
        rng: &mut Rng,
    ) -> Result<Self> {
        if cfg.num_layers == 0 || cfg.hidden_size == 0 {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: format!(
                    "num_layers {} and hidden_size {} must be positive",
                    cfg.num_layers, cfg.hidden_size
                ),
            });
        }
        let d = cfg.directions();
        let mut cells = Vec::with_capacity(cfg.num_layers * d);
        for l in 0..cfg.num_layers {
            let input = if l == 0 {
                cfg.input_size
            } else {
                d * cfg.hidden_size
            };
            for _ in 0..d {
                cells.push(CellParams::new(kind, input, cfg.hidden_size, cfg.bias, rng));
            }
        }
        Ok(Self {
            kind,
            name,
            cfg,
            cells,
            saved: None,
            training: true,
        })
    }

    fn layer_input(&self, l: usize) -> usize {
        if l == 0 {
            self.cfg.input_size
        } else {
            self.cfg.directions() * self.cfg.hidden_size
        }
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let lstm = self.kind == CellKind::Lstm;
        let SequenceCall {
            t,
            b,
            h0,
            c0,
            with_state,
            mut layer_in,
        } = self.cfg.sequence_call(self.name, self.kind, input)?;
        let (hd, dirs, layers) = (
            self.cfg.hidden_size,
            self.cfg.directions(),
            self.cfg.num_layers,
        );
        for (idx, cell) in self.cells.iter().enumerate() {
            cell.check(
                self.kind,
                self.layer_input(idx / dirs),
                hd,
                &format!("{}{}", self.name, self.cfg.cell_suffix(idx)),
            )?;
        }
        let state_shape = [layers * dirs, b, hd];
        let mut layer_inputs = Vec::with_capacity(layers);
        let mut caches = Vec::with_capacity(layers * dirs);
        let mut h_n = vec![0.0f32; h0.len()];
        let mut c_n = vec![0.0f32; c0.len()];
        for l in 0..layers {
            let i = self.layer_input(l);
            let mut out = vec![0.0f32; t * b * dirs * hd];
            for d in 0..dirs {
                let idx = l * dirs + d;
                let weights = self.cells[idx].weights();
                let w = weights.view();
                let mut h = h0[idx * b * hd..(idx + 1) * b * hd].to_vec();
                let mut c = if lstm {
                    c0[idx * b * hd..(idx + 1) * b * hd].to_vec()
                } else {
                    Vec::new()
                };
                let mut steps: Vec<Option<StepCache>> = vec![None; t];
                let order: Vec<usize> = if d == 0 {
                    (0..t).collect()
                } else {
                    (0..t).rev().collect()
                };
                // As ATen on CPU: the input projection of all T steps is one product; the
                // hidden weight is packed once for the T steps (empty shapes keep the plain
                // per-step path).
                let g = self.kind.gates() * hd;
                let packed = if g > 0 && i > 0 && t * b > 0 {
                    let w_ih = PackedF32::pack(w.w_ih, g, i)?;
                    let gi_all = affine_packed(&layer_in, t * b, &w_ih, w.b_ih)?;
                    Some((gi_all, PackedF32::pack(w.w_hh, g, hd)?))
                } else {
                    None
                };
                for &ts in &order {
                    let cache = match &packed {
                        Some((gi_all, w_hh)) => {
                            let gi = gi_all[ts * b * g..(ts + 1) * b * g].to_vec();
                            let gh = affine_packed(&h, b, w_hh, w.b_hh)?;
                            step_from_gates(self.kind, gi, gh, &h, &c, b, hd)?
                        }
                        None => step_forward(
                            self.kind,
                            w,
                            &layer_in[ts * b * i..(ts + 1) * b * i],
                            &h,
                            &c,
                            b,
                            i,
                            hd,
                        )?,
                    };
                    h.copy_from_slice(cache.h());
                    if lstm {
                        c.copy_from_slice(cache.c());
                    }
                    for r in 0..b {
                        let dst = ((ts * b + r) * dirs + d) * hd;
                        out[dst..dst + hd].copy_from_slice(&h[r * hd..(r + 1) * hd]);
                    }
                    steps[ts] = Some(cache);
                }
                h_n[idx * b * hd..(idx + 1) * b * hd].copy_from_slice(&h);
                if lstm {
                    c_n[idx * b * hd..(idx + 1) * b * hd].copy_from_slice(&c);
                }
                caches.push(steps.into_iter().flatten().collect());
            }
            layer_inputs.push(std::mem::replace(&mut layer_in, out));
        }
        let out_f = dirs * hd;
        let output = if self.cfg.batch_first {
            tensor(&[b, t, out_f], swap01(&layer_in, t, b, out_f))?
        } else {
            tensor(&[t, b, out_f], layer_in)?
        };
        self.saved = Some(Saved {
            t,
            b,
            layer_inputs,
            h0,
            c0,
            caches,
            with_state,
        });
        let mut parts = vec![Value::F32(output), Value::F32(tensor(&state_shape, h_n)?)];
        if lstm {
            parts.push(Value::F32(tensor(&state_shape, c_n)?));
        }
        Ok(Value::Tuple(parts))
    }

    fn backward(&mut self, grad: &Value) -> Result<Value> {
        let s = saved(&self.saved, self.name)?.clone();
        let lstm = self.kind == CellKind::Lstm;
        let (t, b) = (s.t, s.b);
        let (hd, dirs, layers) = (
            self.cfg.hidden_size,
            self.cfg.directions(),
            self.cfg.num_layers,
        );
        let out_f = dirs * hd;
        let parts: Vec<&Value> = match grad {
            Value::Tuple(v) if !v.is_empty() && v.len() <= if lstm { 3 } else { 2 } => {
                v.iter().collect()
            }
            Value::F32(_) => vec![grad],
            other => {
                return Err(QnnError::WrongValueKind {
                    module: self.name,
                    expected: "f32 d_output or a tuple like the forward output",
                    got: other.kind_name(),
                });
            }
        };
        let out_shape = if self.cfg.batch_first {
            [b, t, out_f]
        } else {
            [t, b, out_f]
        };
        let state_shape = [layers * dirs, b, hd];
        let d_out = parts[0].as_f32(self.name)?;
        same_shape(
            &format!("{} gradient vs output", self.name),
            &out_shape,
            d_out.shape(),
        )?;
        let state_grad = |k: usize, what: &str| -> Result<Vec<f32>> {
            match parts.get(k) {
                Some(v) => {
                    let g = v.as_f32(self.name)?;
                    same_shape(
                        &format!("{} gradient vs {what}", self.name),
                        &state_shape,
                        g.shape(),
                    )?;
                    Ok(g.data().to_vec())
                }
                None => Ok(vec![0.0; layers * dirs * b * hd]),
            }
        };
        let dh_n = state_grad(1, "h_n")?;
        let dc_n = if lstm {
            state_grad(2, "c_n")?
        } else {
            Vec::new()
        };

        let mut d_layer_out = if self.cfg.batch_first {
            swap01(d_out.data(), b, t, out_f)
        } else {
            d_out.data().to_vec()
        };
        let mut dh0 = vec![0.0f32; s.h0.len()];
        let mut dc0 = vec![0.0f32; s.c0.len()];
        for l in (0..layers).rev() {
            let i = self.layer_input(l);
            let xin = &s.layer_inputs[l];
            let mut d_in = vec![0.0f32; t * b * i];
            for d in 0..dirs {
                let idx = l * dirs + d;
                let steps = &s.caches[idx];
                let h0 = &s.h0[idx * b * hd..(idx + 1) * b * hd];
                let c0 = if lstm {
                    &s.c0[idx * b * hd..(idx + 1) * b * hd]
                } else {
                    &[][..]
                };
                let mut dh = dh_n[idx * b * hd..(idx + 1) * b * hd].to_vec();
                let mut dc = if lstm {
                    dc_n[idx * b * hd..(idx + 1) * b * hd].to_vec()
                } else {
                    Vec::new()
                };
                let order: Vec<usize> = if d == 0 {
                    (0..t).rev().collect()
                } else {
                    (0..t).collect()
                };
                let (w, mut g) = self.cells[idx].split(self.name)?;
                for &ts in &order {
                    // the state this step started from
                    let prev = if d == 0 {
                        ts.checked_sub(1)
                    } else {
                        Some(ts + 1).filter(|&p| p < t)
                    };
                    let (hp, cp) = match prev {
                        Some(p) => (steps[p].h(), steps[p].c()),
                        None => (h0, c0),
                    };
                    for r in 0..b {
                        let src = ((ts * b + r) * dirs + d) * hd;
                        dh[r * hd..(r + 1) * hd]
                            .iter_mut()
                            .zip(&d_layer_out[src..src + hd])
                            .for_each(|(a, v)| *a += v);
                    }
                    let (dx, dhp, dcp) = step_backward(
                        self.kind,
                        w,
                        &mut g,
                        &steps[ts],
                        &xin[ts * b * i..(ts + 1) * b * i],
                        hp,
                        cp,
                        &dh,
                        &dc,
                        b,
                        i,
                        hd,
                    )?;
                    d_in[ts * b * i..(ts + 1) * b * i]
                        .iter_mut()
                        .zip(&dx)
                        .for_each(|(a, v)| *a += v);
                    dh = dhp;
                    dc = dcp;
                }
                dh0[idx * b * hd..(idx + 1) * b * hd].copy_from_slice(&dh);
                if lstm {
                    dc0[idx * b * hd..(idx + 1) * b * hd].copy_from_slice(&dc);
                }
            }
            d_layer_out = d_in;
        }
        let i0 = self.cfg.input_size;
        let dx = if self.cfg.batch_first {
            tensor(&[b, t, i0], swap01(&d_layer_out, t, b, i0))?
        } else {
            tensor(&[t, b, i0], d_layer_out)?
        };
        if !s.with_state {
            return Ok(Value::F32(dx));
        }
        let mut out = vec![Value::F32(dx), Value::F32(tensor(&state_shape, dh0)?)];
        if lstm {
            out.push(Value::F32(tensor(&state_shape, dc0)?));
        }
        Ok(Value::Tuple(out))
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (idx, cell) in self.cells.iter().enumerate() {
            cell.visit(&self.cfg.cell_suffix(idx), f);
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for idx in 0..self.cells.len() {
            let suffix = self.cfg.cell_suffix(idx);
            self.cells[idx].visit_mut(&suffix, f);
        }
    }
}

macro_rules! sequence_module {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident, $mk:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            inner: Recurrent,
        }

        impl $ty {
            /// A module with PyTorch's default init (uniform ±1/sqrt(H)) drawn from `rng`.
            pub fn new(config: RecurrentConfig, rng: &mut Rng) -> Result<Self> {
                Ok(Self { inner: Recurrent::new(CellKind::$mk, $name, config, rng)? })
            }

            /// The hyper-parameters.
            pub fn config(&self) -> &RecurrentConfig {
                &self.inner.cfg
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                self.inner.cfg.torch_args()
            }

            fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
                (self.inner.cells.iter().any(CellParams::is_half)
                    && (name.starts_with("weight_ih") || name.starts_with("weight_hh")))
                .then_some(crate::repr::TensorDType::F16)
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                self.inner.forward(input)
            }

            fn backward(&mut self, grad_output: &Value) -> Result<Value> {
                self.inner.backward(grad_output)
            }

            fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
                self.inner.visit(f);
            }

            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
                self.inner.visit_mut(f);
            }

            /// Moves every layer's `weight_ih` / `weight_hh` to f16 (biases stay f32); the
            /// halved module is inference-only.
            fn half(&mut self) -> Result<()> {
                for c in &mut self.inner.cells {
                    c.half()?;
                }
                self.inner.saved = None;
                Ok(())
            }

            fn param_bytes(&self) -> usize {
                self.inner.cells.iter().map(CellParams::param_bytes).sum()
            }

            fn train(&mut self, mode: bool) {
                self.inner.training = mode;
            }

            fn is_training(&self) -> bool {
                self.inner.training
            }
        }
    };
}

sequence_module!(
    /// LSTM over a sequence. Input `x` or `(x, h0, c0)`; output `(output, h_n, c_n)` with
    /// `output [T, B, D*H]` (`[B, T, D*H]` if batch_first) and states `[L*D, B, H]`. Backward
    /// takes a tuple like the output (missing state gradients are zero) or `d_output` alone, and
    /// returns `dx`, or `(dx, dh0, dc0)` when the states were given. Parameters
    /// `weight_ih_l{k}[_reverse]`, `weight_hh_l{k}…`, `bias_ih_l{k}…`, `bias_hh_l{k}…`.
    Lstm, "LSTM", Lstm, Lstm
);
sequence_module!(
    /// GRU over a sequence. Input `x` or `(x, h0)`; output `(output, h_n)`; otherwise as [`Lstm`].
    Gru, "GRU", Gru, Gru
);
sequence_module!(
    /// Elman RNN with tanh over a sequence. Input `x` or `(x, h0)`; output `(output, h_n)`.
    Rnn, "RNN", Rnn, RnnTanh
);
