//! `nn.RNNCell`, `nn.LSTMCell`, `nn.GRUCell`: one time step on a batch.

use qtensor::Tensor;

use super::cell_math::{CellKind, StepCache, cell_torch_args, step_backward, step_forward};
use super::params::{CellParams, zeros};
use crate::error::{QnnError, Result};
use crate::float::util::{same_shape, saved, tensor};
use crate::init::Rng;
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

/// What a cell's forward kept.
#[derive(Clone, Debug)]
struct Saved {
    x: Tensor<f32>,
    h: Tensor<f32>,
    c: Tensor<f32>,
    cache: StepCache,
    with_state: bool,
}

/// The shared implementation of the three cells.
#[derive(Clone, Debug)]
struct Cell {
    kind: CellKind,
    name: &'static str,
    input_size: usize,
    hidden_size: usize,
    params: CellParams,
    saved: Option<Saved>,
    training: bool,
}

impl Cell {
    fn new(
        kind: CellKind,
        name: &'static str,
        input_size: usize,
        hidden_size: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        Self {
            kind,
            name,
            input_size,
            hidden_size,
            params: CellParams::new(kind, input_size, hidden_size, bias, rng),
            saved: None,
            training: true,
        }
    }

    fn matrix(&self, t: &Tensor<f32>, cols: usize, what: &str) -> Result<usize> {
        match *t.shape() {
            [b, c] if c == cols => Ok(b),
            [_, c] => Err(QnnError::ShapeMismatch {
                what: format!("{} {what} features", self.name),
                expected: vec![cols],
                got: vec![c],
            }),
            _ => Err(QnnError::WrongRank {
                module: self.name,
                expected: "2-d (batch, features) tensors",
                got: t.shape().to_vec(),
            }),
        }
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let lstm = self.kind == CellKind::Lstm;
        let (x, h, c, with_state) = match input {
            Value::F32(x) => (x.clone(), None, None, false),
            Value::Tuple(v) if v.len() == 2 && !lstm => (
                v[0].as_f32(self.name)?.clone(),
                Some(v[1].as_f32(self.name)?.clone()),
                None,
                true,
            ),
            Value::Tuple(v) if v.len() == 3 && lstm => (
                v[0].as_f32(self.name)?.clone(),
                Some(v[1].as_f32(self.name)?.clone()),
                Some(v[2].as_f32(self.name)?.clone()),
                true,
            ),
            other => {
                return Err(QnnError::WrongValueKind {
                    module: self.name,
                    expected: if lstm {
                        "f32 x or (x, h, c) tuple"
                    } else {
                        "f32 x or (x, h) tuple"
                    },
                    got: other.kind_name(),
                });
            }
        };
        self.params
            .check(self.kind, self.input_size, self.hidden_size, self.name)?;
        let b = self.matrix(&x, self.input_size, "input")?;
        let h = h.unwrap_or_else(|| zeros(b, self.hidden_size));
        let c = c.unwrap_or_else(|| zeros(if lstm { b } else { 0 }, self.hidden_size));
        same_shape(
            &format!("{} hidden state", self.name),
            &[b, self.hidden_size],
            h.shape(),
        )?;
        if lstm {
            same_shape(
                &format!("{} cell state", self.name),
                &[b, self.hidden_size],
                c.shape(),
            )?;
        }
        let cache = step_forward(
            self.kind,
            self.params.weights().view(),
            x.data(),
            h.data(),
            c.data(),
            b,
            self.input_size,
            self.hidden_size,
        )?;
        let h_new = tensor(&[b, self.hidden_size], cache.h().to_vec())?;
        let out = if lstm {
            Value::Tuple(vec![
                Value::F32(h_new),
                Value::F32(tensor(&[b, self.hidden_size], cache.c().to_vec())?),
            ])
        } else {
            Value::F32(h_new)
        };
        self.saved = Some(Saved {
            x,
            h,
            c,
            cache,
            with_state,
        });
        Ok(out)
    }

    fn backward(&mut self, grad: &Value) -> Result<Value> {
        let s = saved(&self.saved, self.name)?.clone();
        let b = s.x.shape()[0];
        let (hd, i) = (self.hidden_size, self.input_size);
        let (dh, dc) = match grad {
            Value::F32(dh) => (dh.clone(), None),
            Value::Tuple(v) if v.len() == 2 && self.kind == CellKind::Lstm => (
                v[0].as_f32(self.name)?.clone(),
                Some(v[1].as_f32(self.name)?.clone()),
            ),
            other => {
                return Err(QnnError::WrongValueKind {
                    module: self.name,
                    expected: "f32 dh or (dh, dc) tuple",
                    got: other.kind_name(),
                });
            }
        };
        same_shape(
            &format!("{} gradient vs hidden state", self.name),
            &[b, hd],
            dh.shape(),
        )?;
        if let Some(dc) = &dc {
            same_shape(
                &format!("{} gradient vs cell state", self.name),
                &[b, hd],
                dc.shape(),
            )?;
        }
        let dc_data = dc.map(Tensor::into_data).unwrap_or_default();
        let (w, mut g) = self.params.split(self.name)?;
        let (dx, dh_prev, dc_prev) = step_backward(
            self.kind,
            w,
            &mut g,
            &s.cache,
            s.x.data(),
            s.h.data(),
            s.c.data(),
            dh.data(),
            &dc_data,
            b,
            i,
            hd,
        )?;
        let dx = Value::F32(tensor(&[b, i], dx)?);
        if !s.with_state {
            return Ok(dx);
        }
        let mut parts = vec![dx, Value::F32(tensor(&[b, hd], dh_prev)?)];
        if self.kind == CellKind::Lstm {
            parts.push(Value::F32(tensor(&[b, hd], dc_prev)?));
        }
        Ok(Value::Tuple(parts))
    }
}

macro_rules! cell_module {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            cell: Cell,
        }

        impl $ty {
            /// The input and hidden sizes.
            pub fn sizes(&self) -> (usize, usize) {
                (self.cell.input_size, self.cell.hidden_size)
            }

            /// The parameters (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`).
            pub fn params(&self) -> &CellParams {
                &self.cell.params
            }

            /// The parameters, mutably.
            pub fn params_mut(&mut self) -> &mut CellParams {
                &mut self.cell.params
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$ty
            }

            fn extra_repr(&self) -> String {
                let c = &self.cell;
                cell_torch_args(c.kind, c.input_size, c.hidden_size, c.params.bias_ih.is_some())
            }

            fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
                (self.cell.params.is_half()
                    && (name.starts_with("weight_ih") || name.starts_with("weight_hh")))
                .then_some(crate::repr::TensorDType::F16)
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                self.cell.forward(input)
            }

            fn backward(&mut self, grad_output: &Value) -> Result<Value> {
                self.cell.backward(grad_output)
            }

            fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
                self.cell.params.visit("", f);
            }

            fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
                self.cell.params.visit_mut("", f);
            }

            /// Moves `weight_ih` / `weight_hh` to f16 (biases stay f32); inference-only after.
            fn half(&mut self) -> Result<()> {
                self.cell.params.half()?;
                self.cell.saved = None;
                Ok(())
            }

            fn param_bytes(&self) -> usize {
                self.cell.params.param_bytes()
            }

            fn train(&mut self, mode: bool) {
                self.cell.training = mode;
            }

            fn is_training(&self) -> bool {
                self.cell.training
            }
        }
    };
}

cell_module!(
    /// `h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)` (or ReLU). Input `x [B, I]` or `(x, h)`;
    /// output `h' [B, H]`. Backward returns `dx`, or `(dx, dh)` when `h` was given.
    RNNCell, "RNNCell", RnnTanh
);
cell_module!(
    /// LSTM step with gates `[i, f, g, o]`. Input `x [B, I]` or `(x, h, c)`; output `(h', c')`.
    /// Backward takes `(dh', dc')` (or `dh'` alone) and returns `dx`, or `(dx, dh, dc)`.
    LSTMCell, "LSTMCell", Lstm
);
cell_module!(
    /// GRU step with gates `[r, z, n]`. Input `x [B, I]` or `(x, h)`; output `h' [B, H]`.
    /// Backward returns `dx`, or `(dx, dh)` when `h` was given.
    GRUCell, "GRUCell", Gru
);

impl RNNCell {
    /// A tanh cell (PyTorch's default nonlinearity) with PyTorch's default init from `rng`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool, rng: &mut Rng) -> Self {
        Self {
            cell: Cell::new(
                CellKind::RnnTanh,
                "RNNCell",
                input_size,
                hidden_size,
                bias,
                rng,
            ),
        }
    }

    /// Whether the nonlinearity is ReLU (`nonlinearity='relu'`) rather than tanh.
    pub fn is_relu(&self) -> bool {
        self.cell.kind == CellKind::RnnRelu
    }

    /// A ReLU cell (`nonlinearity='relu'`).
    pub fn new_relu(input_size: usize, hidden_size: usize, bias: bool, rng: &mut Rng) -> Self {
        Self {
            cell: Cell::new(
                CellKind::RnnRelu,
                "RNNCell",
                input_size,
                hidden_size,
                bias,
                rng,
            ),
        }
    }
}

impl LSTMCell {
    /// A cell with PyTorch's default init from `rng`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool, rng: &mut Rng) -> Self {
        Self {
            cell: Cell::new(
                CellKind::Lstm,
                "LSTMCell",
                input_size,
                hidden_size,
                bias,
                rng,
            ),
        }
    }
}

impl GRUCell {
    /// A cell with PyTorch's default init from `rng`.
    pub fn new(input_size: usize, hidden_size: usize, bias: bool, rng: &mut Rng) -> Self {
        Self {
            cell: Cell::new(CellKind::Gru, "GRUCell", input_size, hidden_size, bias, rng),
        }
    }
}
