//! The dynamic int8 row LSTM: what PyTorch's `quantize_dynamic` (default `{Linear, LSTM}` set,
//! qint8) makes of the row LSTM: the LSTM becomes `qnn::dynamic::Lstm`, the classifier
//! `qnn::dynamic::Linear`, weights observed with `default_weight_observer` (MinMax, qint8,
//! per-tensor symmetric). Same state-dict prefixes (`lstm.`, `fc.`) as the float model.

use qnn::dynamic::{Linear, Lstm};
use qnn::qtensor::QParams;
use qnn::qtensor::Tensor;
use qnn::qtensor::observer::ObserverSpec;
use qnn::{BufferMut, BufferRef, Module, ModuleKind, QnnError, Result, Value};

use super::RowLstm;
use super::row_lstm::last_step;

/// `qnn::dynamic::Lstm` then `qnn::dynamic::Linear` on the last time step (inference only).
#[derive(Debug)]
pub struct DynamicRowLstm {
    lstm: Lstm,
    fc: Linear,
}

/// `default_weight_observer`'s qparams for one weight.
pub(super) fn weight_qparams(w: &Tensor<f32>) -> qnn::qtensor::Result<QParams> {
    let mut obs = ObserverSpec::default_weight_observer().build()?;
    obs.observe(w)?;
    obs.calculate_qparams()
}

impl DynamicRowLstm {
    /// Quantizes the float model's weights (biases stay f32).
    pub fn from_float(float: &RowLstm) -> Result<Self> {
        let lstm = Lstm::from_float(&float.lstm, &mut |_name, w| weight_qparams(w))?;
        let fc = Linear::from_float(&float.fc, &weight_qparams(&float.fc.weight.value)?)?;
        Ok(Self { lstm, fc })
    }
}

impl Module for DynamicRowLstm {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let (last, _) = last_step(self.lstm.forward(input)?)?;
        self.fc.forward(&Value::F32(last))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        Err(QnnError::NotTrainable {
            module: "DynamicRowLstm",
        })
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.lstm
            .visit_buffers(&mut |n, b| f(&format!("lstm.{n}"), b));
        self.fc.visit_buffers(&mut |n, b| f(&format!("fc.{n}"), b));
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.lstm
            .visit_buffers_mut(&mut |n, b| f(&format!("lstm.{n}"), b));
        self.fc
            .visit_buffers_mut(&mut |n, b| f(&format!("fc.{n}"), b));
    }

    fn train(&mut self, _mode: bool) {}

    fn is_training(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo::Arch;
    use qnn::state_dict::{StateEntry, state_dict, to_safetensors};

    #[test]
    fn dynamic_row_lstm_tracks_the_float_model_with_int8_weights() {
        let mut float = Arch::Lstm.build(3).unwrap();
        float.eval();
        let x = Tensor::from_fn(&[2, 28, 28], |i| ((i * 37 % 101) as f32 / 50.0) - 1.0);
        let row = float.downcast_ref::<RowLstm>().unwrap();
        let mut q = DynamicRowLstm::from_float(row).unwrap();
        let want = float.forward(&Value::F32(x.clone())).unwrap();
        let got = q.forward(&Value::F32(x)).unwrap();
        let (want, got) = (
            want.into_f32("float").unwrap(),
            got.into_f32("int8").unwrap(),
        );
        assert_eq!(got.shape(), &[2, 10]);
        let (mut signal, mut noise) = (0f64, 0f64);
        for (a, b) in want.data().iter().zip(got.data()) {
            signal += f64::from(*a).powi(2);
            noise += f64::from(a - b).powi(2);
        }
        let sqnr = 10.0 * (signal / noise).log10();
        assert!(sqnr > 25.0 && sqnr.is_finite(), "{sqnr} dB");
        let dict = state_dict(&q);
        for name in ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "fc.weight"] {
            assert!(
                matches!(dict.get(name), Some(StateEntry::I8(_))),
                "{name}: {:?}",
                dict.keys().collect::<Vec<_>>()
            );
        }
        assert!(to_safetensors(&dict).is_ok());
        assert!(q.backward(&Value::F32(Tensor::zeros(&[2, 10]))).is_err());
    }
}
