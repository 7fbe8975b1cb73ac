//! The row LSTM: reads an image as a sequence of 28 rows (28 pixels each), LSTM 28→128, and
//! classifies from the last hidden state with a Linear 128→10.

use qnn::float::{Linear, Lstm, RecurrentConfig};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Param, QnnError, Result, Value};

const NAME: &str = "RowLstm";

/// `lstm` (batch first, input `[B, 28, 28]`) then `fc` on the last time step. State-dict
/// names are those of a PyTorch module with attributes `lstm` and `fc`.
#[derive(Debug)]
pub struct RowLstm {
    /// The recurrent layer.
    pub lstm: Lstm,
    /// The classifier on the last step.
    pub fc: Linear,
    /// `[B, T, H]` of the last forward (for backward).
    out_shape: Option<[usize; 3]>,
    training: bool,
}

impl RowLstm {
    /// LSTM `input → hidden`, Linear `hidden → classes`, PyTorch's init from `rng`.
    pub fn new(input: usize, hidden: usize, classes: usize, rng: &mut Rng) -> Result<Self> {
        let cfg = RecurrentConfig {
            batch_first: true,
            ..RecurrentConfig::new(input, hidden)
        };
        Ok(Self {
            lstm: Lstm::new(cfg, rng)?,
            fc: Linear::new(hidden, classes, true, rng),
            out_shape: None,
            training: true,
        })
    }
}

fn first_f32(v: Value) -> Result<Tensor<f32>> {
    match v {
        Value::Tuple(mut parts) if !parts.is_empty() => parts.swap_remove(0).into_f32(NAME),
        other => other.into_f32(NAME),
    }
}

/// The LSTM output's last time step `[B, H]`, and the output shape `[B, T, H]`.
pub(super) fn last_step(lstm_output: Value) -> Result<(Tensor<f32>, [usize; 3])> {
    let out = first_f32(lstm_output)?;
    let &[b, t, h] = out.shape() else {
        return Err(QnnError::WrongRank {
            module: NAME,
            expected: "3-d LSTM output [B, T, H]",
            got: out.shape().to_vec(),
        });
    };
    if t == 0 {
        return Err(QnnError::InvalidConfig {
            module: NAME,
            reason: "empty sequence".into(),
        });
    }
    let data = out.data();
    let last = Tensor::from_fn(&[b, h], |i| data[((i / h) * t + t - 1) * h + i % h]);
    Ok((last, [b, t, h]))
}

impl Module for RowLstm {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let (last, shape) = last_step(self.lstm.forward(input)?)?;
        self.out_shape = Some(shape);
        self.fc.forward(&Value::F32(last))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let [b, t, h] = self
            .out_shape
            .ok_or(QnnError::BackwardBeforeForward { module: NAME })?;
        let g_last = self.fc.backward(grad_output)?.into_f32(NAME)?;
        let gl = g_last.data();
        let g_seq = Tensor::from_fn(&[b, t, h], |i| {
            let (bi, ti, hi) = (i / (t * h), (i / h) % t, i % h);
            if ti == t - 1 { gl[bi * h + hi] } else { 0.0 }
        });
        self.lstm.backward(&Value::F32(g_seq))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.lstm
            .visit_params(&mut |n, p| f(&format!("lstm.{n}"), p));
        self.fc.visit_params(&mut |n, p| f(&format!("fc.{n}"), p));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.lstm
            .visit_params_mut(&mut |n, p| f(&format!("lstm.{n}"), p));
        self.fc
            .visit_params_mut(&mut |n, p| f(&format!("fc.{n}"), p));
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        self.lstm.train(mode);
        self.fc.train(mode);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn half(&mut self) -> Result<()> {
        self.lstm.half()?;
        self.fc.half()
    }

    fn param_bytes(&self) -> usize {
        self.lstm.param_bytes() + self.fc.param_bytes()
    }
}
