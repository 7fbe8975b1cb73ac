//! The checked call of a multi-layer sequence module (`nn.RNN`/`LSTM`/`GRU` and their dynamic
//! quantized forms): one parser for `x`, `(x, h0)` or `(x, h0, c0)`, so the float and the
//! dynamic modules accept and reject exactly the same inputs.

use qtensor::Tensor;

use super::cell_math::CellKind;
use super::recurrent::RecurrentConfig;
use crate::error::{QnnError, Result};
use crate::float::util::same_shape;
use crate::value::Value;

/// Swaps the first two axes of a `[a, b, f]` buffer (batch-first ↔ time-first).
pub(crate) fn swap01(data: &[f32], a: usize, b: usize, f: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; data.len()];
    for i in 0..a {
        for j in 0..b {
            out[(j * a + i) * f..(j * a + i + 1) * f]
                .copy_from_slice(&data[(i * b + j) * f..(i * b + j + 1) * f]);
        }
    }
    out
}

/// A checked sequence call: the sizes, the initial states and the first layer's input.
#[derive(Clone, Debug)]
pub(crate) struct SequenceCall {
    /// Time steps `T`.
    pub(crate) t: usize,
    /// Batch `B`.
    pub(crate) b: usize,
    /// Initial hidden states `[layers·dirs, B, H]` (zeros when not given).
    pub(crate) h0: Vec<f32>,
    /// Initial cell states of an LSTM, same layout (empty for GRU/RNN).
    pub(crate) c0: Vec<f32>,
    /// Whether the caller passed states (the input was a tuple).
    pub(crate) with_state: bool,
    /// The input, time-first `[T, B, I]`.
    pub(crate) layer_in: Vec<f32>,
}

impl RecurrentConfig {
    /// 2 for a bidirectional module, else 1.
    pub(crate) fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// PyTorch's parameter-name suffix of cell `idx` (`layer·dirs + direction`):
    /// `_l0`, `_l0_reverse`, `_l1`, …
    pub(crate) fn cell_suffix(&self, idx: usize) -> String {
        let d = self.directions();
        format!(
            "_l{}{}",
            idx / d,
            if idx % d == 1 { "_reverse" } else { "" }
        )
    }

    /// `(T, B)` of a 3-d input `[T, B, I]` (or `[B, T, I]` when batch-first), checked.
    fn sequence_dims(&self, module: &'static str, x: &Tensor<f32>) -> Result<(usize, usize)> {
        match *x.shape() {
            [a, b, f] if f == self.input_size => Ok(if self.batch_first { (b, a) } else { (a, b) }),
            [_, _, f] => Err(QnnError::ShapeMismatch {
                what: format!("{module} input features"),
                expected: vec![self.input_size],
                got: vec![f],
            }),
            _ => Err(QnnError::WrongRank {
                module,
                expected: "3-d (T, B, I) input, or (B, T, I) when batch_first",
                got: x.shape().to_vec(),
            }),
        }
    }

    /// Parses and checks a sequence module's input: `x`, `(x, h0)` for GRU/RNN or
    /// `(x, h0, c0)` for LSTM, states shaped `[layers·dirs, B, H]`.
    pub(crate) fn sequence_call(
        &self,
        module: &'static str,
        kind: CellKind,
        input: &Value,
    ) -> Result<SequenceCall> {
        let lstm = kind == CellKind::Lstm;
        let (x, h0, c0) = match input {
            Value::F32(x) => (x, None, None),
            Value::Tuple(v) if v.len() == 2 && !lstm => {
                (v[0].as_f32(module)?, Some(v[1].as_f32(module)?), None)
            }
            Value::Tuple(v) if v.len() == 3 && lstm => (
                v[0].as_f32(module)?,
                Some(v[1].as_f32(module)?),
                Some(v[2].as_f32(module)?),
            ),
            other => {
                return Err(QnnError::WrongValueKind {
                    module,
                    expected: if lstm {
                        "f32 x or (x, h0, c0) tuple"
                    } else {
                        "f32 x or (x, h0) tuple"
                    },
                    got: other.kind_name(),
                });
            }
        };
        let (t, b) = self.sequence_dims(module, x)?;
        let state_shape = [self.num_layers * self.directions(), b, self.hidden_size];
        let state = |s: Option<&Tensor<f32>>, what: &str| -> Result<Vec<f32>> {
            match s {
                Some(s) => {
                    same_shape(&format!("{module} {what}"), &state_shape, s.shape())?;
                    Ok(s.data().to_vec())
                }
                None => Ok(vec![0.0; state_shape.iter().product()]),
            }
        };
        let h0 = state(h0, "h0")?;
        let c0 = if lstm { state(c0, "c0")? } else { Vec::new() };
        let layer_in = if self.batch_first {
            swap01(x.data(), b, t, self.input_size)
        } else {
            x.data().to_vec()
        };
        Ok(SequenceCall {
            t,
            b,
            h0,
            c0,
            with_state: !matches!(input, Value::F32(_)),
            layer_in,
        })
    }
}
