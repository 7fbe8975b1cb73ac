//! `nnqd.RNNCell`, `nnqd.LSTMCell`, `nnqd.GRUCell`: one recurrent step on a batch with dynamic
//! quantized (or f16) weights (`quantized::quantized_{rnn_tanh,rnn_relu,lstm,gru}_cell_dynamic`:
//! both gate GEMMs quantize their input on the call, `reduce_range`).

use std::collections::BTreeMap;

use qtensor::{QParams, Tensor};

use super::cell_weights::{Build, DynCell, Scratch};
use super::weight::WeightDType;
use crate::error::{QnnError, Result};
use crate::float::{self, CellKind};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// The shared implementation of the three cells.
#[derive(Clone, Debug)]
struct Cell {
    kind: CellKind,
    name: &'static str,
    input_size: usize,
    hidden_size: usize,
    weights: DynCell,
    scratch: Scratch,
    gi: Vec<f32>,
    training: bool,
}

impl Cell {
    fn new(
        kind: CellKind,
        name: &'static str,
        params: &float::CellParams,
        build: &mut Build<'_>,
    ) -> Result<Self> {
        let g = kind.gates();
        let (rows, input_size) = match *params.weight_ih.shape() {
            [r, i] => (r, i),
            _ => {
                return Err(QnnError::WrongRank {
                    module: name,
                    expected: "2-d weight_ih [G*H, I]",
                    got: params.weight_ih.shape().to_vec(),
                });
            }
        };
        if rows == 0 || rows % g != 0 {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: format!("weight_ih has {rows} rows, not a positive multiple of {g} gates"),
            });
        }
        let hidden_size = rows / g;
        let mut map = BTreeMap::new();
        map.insert("weight_ih".to_string(), params.weight_ih.value.clone());
        map.insert("weight_hh".to_string(), params.weight_hh.value.clone());
        if let (Some(bi), Some(bh)) = (&params.bias_ih, &params.bias_hh) {
            map.insert("bias_ih".to_string(), bi.value.clone());
            map.insert("bias_hh".to_string(), bh.value.clone());
        }
        let weights = DynCell::build(name, kind, &map, "", input_size, hidden_size, build)?;
        Ok(Self {
            kind,
            name,
            input_size,
            hidden_size,
            weights,
            scratch: Scratch::default(),
            gi: Vec::new(),
            training: false,
        })
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

    fn state(&self, t: Option<&Tensor<f32>>, b: usize, what: &str) -> Result<Vec<f32>> {
        match t {
            None => Ok(vec![0.0; b * self.hidden_size]),
            Some(t) => {
                let rows = self.matrix(t, self.hidden_size, what)?;
                if rows != b {
                    return Err(QnnError::ShapeMismatch {
                        what: format!("{} {what} vs input batch", self.name),
                        expected: vec![b, self.hidden_size],
                        got: t.shape().to_vec(),
                    });
                }
                Ok(t.data().to_vec())
            }
        }
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let lstm = self.kind == CellKind::Lstm;
        let (x, h, c) = match input {
            Value::F32(x) => (x, None, None),
            Value::Tuple(v) if v.len() == 2 && !lstm => {
                (v[0].as_f32(self.name)?, Some(v[1].as_f32(self.name)?), None)
            }
            Value::Tuple(v) if v.len() == 3 && lstm => (
                v[0].as_f32(self.name)?,
                Some(v[1].as_f32(self.name)?),
                Some(v[2].as_f32(self.name)?),
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
        let b = self.matrix(x, self.input_size, "input")?;
        let mut h = self.state(h, b, "hidden state")?;
        let mut c = if lstm {
            self.state(c, b, "cell state")?
        } else {
            Vec::new()
        };
        let hd = self.hidden_size;
        if b > 0 {
            self.weights
                .input_gates(x.data(), b, &mut self.gi, &mut self.scratch.q)?;
            self.weights
                .step(self.kind, &self.gi, &mut h, &mut c, b, &mut self.scratch)?;
        }
        let h = Value::F32(Tensor::new(&[b, hd], h)?);
        Ok(if lstm {
            Value::Tuple(vec![h, Value::F32(Tensor::new(&[b, hd], c)?)])
        } else {
            h
        })
    }
}

macro_rules! dynamic_cell {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $kind:ident, $float:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $ty {
            cell: Cell,
        }

        impl $ty {
            /// qint8 weights: `weight_qparams(name, weight)` gives the qparams of `weight_ih`
            /// and `weight_hh` (what the weight observer produced; per-tensor, or per-channel
            /// along axis 0); biases stay f32. Weights are packed once.
            pub fn from_float(
                float: &float::$float,
                weight_qparams: &mut dyn FnMut(&str, &Tensor<f32>) -> qtensor::Result<QParams>,
            ) -> Result<Self> {
                Self::build(float, &mut Build::QInt8(weight_qparams))
            }

            /// f16 weights (`float16_dynamic_qconfig`), rounded with saturation to ±65504.
            pub fn from_float_fp16(float: &float::$float) -> Result<Self> {
                Self::build(float, &mut Build::Fp16)
            }

            /// The input and hidden sizes.
            pub fn sizes(&self) -> (usize, usize) {
                (self.cell.input_size, self.cell.hidden_size)
            }

            /// qint8 or f16 weights.
            pub fn weight_dtype(&self) -> WeightDType {
                self.cell.weights.dtype()
            }
        }

        impl Module for $ty {
            fn kind(&self) -> ModuleKind {
                ModuleKind::$kind
            }

            fn extra_repr(&self) -> String {
                let mut bias = false;
                self.visit_buffers(&mut |name, _| bias |= name == "bias_ih");
                let c = &self.cell;
                crate::float::cell_torch_args(c.kind, c.input_size, c.hidden_size, bias)
            }

            fn forward(&mut self, input: &Value) -> Result<Value> {
                self.cell.forward(input)
            }

            fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
                Err(QnnError::NotTrainable { module: $name })
            }

            fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
                self.cell.weights.visit("", f);
            }

            fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
                self.cell.weights.visit_mut("", f);
            }

            fn train(&mut self, mode: bool) {
                self.cell.training = mode;
            }

            fn is_training(&self) -> bool {
                self.cell.training
            }

            fn after_load(&mut self) -> Result<()> {
                self.cell.weights.rebuild()
            }

            fn param_bytes(&self) -> usize {
                self.cell.weights.param_bytes()
            }
        }
    };
}

dynamic_cell!(
    /// Dynamic quantized `RNNCell` (tanh or ReLU, as the float cell): input `x [B, I]` or
    /// `(x, h)`, output `h' [B, H]`. State: `weight_ih`, `weight_ih_scale`,
    /// `weight_ih_zero_point`, `weight_ih_axis`, `bias_ih`, and the `hh` ones.
    RNNCell, "DynamicRNNCell", DynamicRNNCell, RNNCell
);
dynamic_cell!(
    /// Dynamic quantized `LSTMCell`: input `x [B, I]` or `(x, h, c)`, output `(h', c')`.
    /// State as [`RNNCell`].
    LSTMCell, "DynamicLSTMCell", DynamicLSTMCell, LSTMCell
);
dynamic_cell!(
    /// Dynamic quantized `GRUCell`: input `x [B, I]` or `(x, h)`, output `h' [B, H]`.
    /// State as [`RNNCell`].
    GRUCell, "DynamicGRUCell", DynamicGRUCell, GRUCell
);

impl RNNCell {
    fn build(float: &float::RNNCell, build: &mut Build<'_>) -> Result<Self> {
        let kind = if float.is_relu() {
            CellKind::RnnRelu
        } else {
            CellKind::RnnTanh
        };
        Ok(Self {
            cell: Cell::new(kind, "DynamicRNNCell", float.params(), build)?,
        })
    }

    /// Whether the nonlinearity is ReLU (else tanh).
    pub fn is_relu(&self) -> bool {
        self.cell.kind == CellKind::RnnRelu
    }
}

impl LSTMCell {
    fn build(float: &float::LSTMCell, build: &mut Build<'_>) -> Result<Self> {
        Ok(Self {
            cell: Cell::new(CellKind::Lstm, "DynamicLSTMCell", float.params(), build)?,
        })
    }
}

impl GRUCell {
    fn build(float: &float::GRUCell, build: &mut Build<'_>) -> Result<Self> {
        Ok(Self {
            cell: Cell::new(CellKind::Gru, "DynamicGRUCell", float.params(), build)?,
        })
    }
}
