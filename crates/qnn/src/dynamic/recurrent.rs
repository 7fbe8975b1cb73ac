//! `nnqd.LSTM` and `nnqd.GRU`: multi-layer, optionally bidirectional, batch-first or not, with
//! dynamic quantized (or f16) gate weights, as `torch.quantized_lstm` / `quantized_gru` with
//! `use_dynamic=True` compute them on CPU:
//! - per layer and direction, the input projection of **all T steps** is one GEMM
//!   (`linear_ih` on the `[T·B, I]` layer input, so its activation qparams come from the whole
//!   sequence);
//! - per step, `h W_hhᵀ + b_hh` quantizes the current `h` (`[B, H]`) on the call;
//! - the gate math is ATen's ([`super::gates`]); states stay f32.

use std::collections::BTreeMap;

use qtensor::{QParams, Tensor};

use super::cell_weights::{Build, DynCell, Scratch};
use super::weight::WeightDType;
use crate::error::{QnnError, Result};
use crate::float::{self, CellKind, RecurrentConfig, SequenceCall, swap01};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// The shared implementation of the two sequence modules.
#[derive(Clone, Debug)]
struct Recurrent {
    kind: CellKind,
    name: &'static str,
    cfg: RecurrentConfig,
    cells: Vec<DynCell>,
    scratch: Scratch,
    gi: Vec<f32>,
    training: bool,
}

impl Recurrent {
    fn new(
        kind: CellKind,
        name: &'static str,
        cfg: RecurrentConfig,
        float: &dyn Module,
        build: &mut Build<'_>,
    ) -> Result<Self> {
        if cfg.num_layers == 0 || cfg.hidden_size == 0 || cfg.input_size == 0 {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: format!(
                    "input_size {}, hidden_size {} and num_layers {} must be positive",
                    cfg.input_size, cfg.hidden_size, cfg.num_layers
                ),
            });
        }
        let mut params = BTreeMap::new();
        float.visit_params(&mut |n, p| {
            params.insert(n.to_string(), p.value.clone());
        });
        let d = cfg.directions();
        let mut cells = Vec::with_capacity(cfg.num_layers * d);
        for idx in 0..cfg.num_layers * d {
            let input = if idx < d {
                cfg.input_size
            } else {
                d * cfg.hidden_size
            };
            let suffix = cfg.cell_suffix(idx);
            cells.push(DynCell::build(
                name,
                kind,
                &params,
                &suffix,
                input,
                cfg.hidden_size,
                build,
            )?);
        }
        Ok(Self {
            kind,
            name,
            cfg,
            cells,
            scratch: Scratch::default(),
            gi: Vec::new(),
            training: false,
        })
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let lstm = self.kind == CellKind::Lstm;
        let SequenceCall {
            t,
            b,
            h0: mut h_n,
            c0: mut c_n,
            mut layer_in,
            ..
        } = self.cfg.sequence_call(self.name, self.kind, input)?;
        let (hd, dirs, layers) = (
            self.cfg.hidden_size,
            self.cfg.directions(),
            self.cfg.num_layers,
        );
        let state_shape = [layers * dirs, b, hd];
        let g = self.kind.gates() * hd;
        let (bh, tb) = (b * hd, t * b);
        for l in 0..layers {
            let mut out = vec![0.0f32; tb * dirs * hd];
            for d in 0..dirs {
                let idx = l * dirs + d;
                let cell = &self.cells[idx];
                let (h, c) = (
                    &mut h_n[idx * bh..(idx + 1) * bh],
                    if lstm {
                        &mut c_n[idx * bh..(idx + 1) * bh]
                    } else {
                        &mut [][..]
                    },
                );
                if tb == 0 {
                    continue;
                }
                cell.input_gates(&layer_in, tb, &mut self.gi, &mut self.scratch.q)?;
                for step in 0..t {
                    let ts = if d == 0 { step } else { t - 1 - step };
                    let gi = &self.gi[ts * b * g..(ts + 1) * b * g];
                    cell.step(self.kind, gi, h, c, b, &mut self.scratch)?;
                    for r in 0..b {
                        let dst = ((ts * b + r) * dirs + d) * hd;
                        out[dst..dst + hd].copy_from_slice(&h[r * hd..(r + 1) * hd]);
                    }
                }
            }
            layer_in = out;
        }
        let out_f = dirs * hd;
        let output = if self.cfg.batch_first {
            Tensor::new(&[b, t, out_f], swap01(&layer_in, t, b, out_f))?
        } else {
            Tensor::new(&[t, b, out_f], layer_in)?
        };
        let mut parts = vec![
            Value::F32(output),
            Value::F32(Tensor::new(&state_shape, h_n)?),
        ];
        if lstm {
            parts.push(Value::F32(Tensor::new(&state_shape, c_n)?));
        }
        Ok(Value::Tuple(parts))
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        for (idx, cell) in self.cells.iter().enumerate() {
            cell.visit(&self.cfg.cell_suffix(idx), f);
        }
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        let cfg = self.cfg;
        for (idx, cell) in self.cells.iter_mut().enumerate() {
            cell.visit_mut(&cfg.cell_suffix(idx), f);
        }
    }
}

macro_rules! sequence_module {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident, $float:ident, $cell:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            inner: Recurrent,
        }

        impl $ty {
            /// qint8 weights: `weight_qparams(name, weight)` is called for every
            /// `weight_ih_l{k}[_reverse]` / `weight_hh_l{k}[_reverse]` and gives its qparams
            /// (per-tensor, or per-channel along axis 0: what the weight observer produced);
            /// biases stay f32. Weights are packed once.
            pub fn from_float(
                float: &float::$float,
                weight_qparams: &mut dyn FnMut(&str, &Tensor<f32>) -> qtensor::Result<QParams>,
            ) -> Result<Self> {
                Ok(Self {
                    inner: Recurrent::new(
                        CellKind::$cell,
                        $name,
                        *float.config(),
                        float,
                        &mut Build::QInt8(weight_qparams),
                    )?,
                })
            }

            /// f16 weights (`float16_dynamic_qconfig`), rounded with saturation to ±65504.
            pub fn from_float_fp16(float: &float::$float) -> Result<Self> {
                Ok(Self {
                    inner: Recurrent::new(CellKind::$cell, $name, *float.config(), float, &mut Build::Fp16)?,
                })
            }

            /// The hyper-parameters.
            pub fn config(&self) -> &RecurrentConfig {
                &self.inner.cfg
            }

            /// qint8 or f16 weights.
            pub fn weight_dtype(&self) -> WeightDType {
                self.inner.cells[0].dtype()
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                self.inner.cfg.torch_args()
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                self.inner.forward(input)
            }

            fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
                Err(QnnError::NotTrainable { module: $name })
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.inner.visit(f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.inner.visit_mut(f);
            }

            fn train(&mut self, mode: bool) {
                self.inner.training = mode;
            }

            fn is_training(&self) -> bool {
                self.inner.training
            }

            fn after_load(&mut self) -> Result<()> {
                self.inner.cells.iter_mut().try_for_each(DynCell::rebuild)
            }

            fn param_bytes(&self) -> usize {
                self.inner.cells.iter().map(DynCell::param_bytes).sum()
            }
        }
    };
}

sequence_module!(
    /// Dynamic quantized LSTM. Input `x` or `(x, h0, c0)`; output `(output, h_n, c_n)` with
    /// `output [T, B, D·H]` (`[B, T, D·H]` if batch_first) and states `[L·D, B, H]`. State:
    /// per layer and direction `weight_ih_l{k}[_reverse]` (+ `_scale`, `_zero_point`,
    /// `_axis` for qint8), `bias_ih_l{k}[_reverse]`, and the `hh` ones.
    Lstm, "DynamicLSTM", DynamicLstm, Lstm, Lstm
);
sequence_module!(
    /// Dynamic quantized GRU. Input `x` or `(x, h0)`; output `(output, h_n)`; otherwise as
    /// [`Lstm`].
    Gru, "DynamicGRU", DynamicGru, Gru, Gru
);
