//! State dicts with the integer and f64 entries of quantized modules: safetensors round trip,
//! loading with kind and shape checks, and the `after_load` hook.

use qnn::state_dict::{StateEntry, from_safetensors, load_state_dict, state_dict, to_safetensors};
use qnn::{BufferMut, BufferRef, Module, ModuleKind, QnnError, Value};
use qtensor::Tensor;

/// A stand-in for a quantized layer: one buffer of every kind, and a derived field that
/// `after_load` rebuilds.
#[derive(Debug)]
struct Holder {
    w: Tensor<i8>,
    u: Tensor<u8>,
    acc: Tensor<i32>,
    scales: Vec<f64>,
    zps: Vec<i64>,
    bias: Tensor<f32>,
    count: i64,
    derived_sum: i64,
}

impl Holder {
    fn new(seed: i8) -> Self {
        Holder {
            w: Tensor::new(&[2, 3], (0..6).map(|i| seed.wrapping_mul(i) - 3).collect()).unwrap(),
            u: Tensor::new(&[4], vec![0, 7, 200, 255]).unwrap(),
            acc: Tensor::new(&[2], vec![-70_000, i32::MAX]).unwrap(),
            scales: vec![0.1, 1e-30, 3.5],
            zps: vec![-128, 0, 127],
            bias: Tensor::new(&[2], vec![0.5, -1.25]).unwrap(),
            count: 7,
            derived_sum: 0,
        }
    }
}

impl Module for Holder {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        Ok(input.clone())
    }
    fn backward(&mut self, _g: &Value) -> qnn::Result<Value> {
        Err(QnnError::NotTrainable { module: "Holder" })
    }
    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f("w", BufferRef::I8(&self.w));
        f("u", BufferRef::U8(&self.u));
        f("acc", BufferRef::I32(&self.acc));
        f("scales", BufferRef::F64s(&self.scales));
        f("zps", BufferRef::I64s(&self.zps));
        f("bias", BufferRef::F32(&self.bias));
        f("count", BufferRef::I64(&self.count));
    }
    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f("w", BufferMut::I8(&mut self.w));
        f("u", BufferMut::U8(&mut self.u));
        f("acc", BufferMut::I32(&mut self.acc));
        f("scales", BufferMut::F64s(&mut self.scales));
        f("zps", BufferMut::I64s(&mut self.zps));
        f("bias", BufferMut::F32(&mut self.bias));
        f("count", BufferMut::I64(&mut self.count));
    }
    fn train(&mut self, _mode: bool) {}
    fn is_training(&self) -> bool {
        false
    }
    fn after_load(&mut self) -> qnn::Result<()> {
        self.derived_sum = self.w.data().iter().map(|&v| i64::from(v)).sum();
        Ok(())
    }
}

#[test]
fn every_entry_kind_round_trips_through_safetensors_and_loads() {
    let src = Holder::new(5);
    let bytes = to_safetensors(&state_dict(&src)).unwrap();
    let dict = from_safetensors(&bytes).unwrap();
    assert_eq!(dict, state_dict(&src));
    assert_eq!(dict["scales"], StateEntry::F64s(vec![0.1, 1e-30, 3.5]));

    let mut dst = Holder::new(-2);
    load_state_dict(&mut dst, &dict, true).unwrap();
    assert_eq!(dst.w, src.w);
    assert_eq!(dst.scales, src.scales);
    assert_eq!(dst.zps, src.zps);
    assert_eq!(dst.acc, src.acc);
    assert_eq!(dst.count, 7);
    // after_load ran on the loaded weights.
    assert_eq!(
        dst.derived_sum,
        src.w.data().iter().map(|&v| i64::from(v)).sum::<i64>()
    );
    assert_ne!(dst.derived_sum, 0);
}

#[test]
fn a_wrong_dtype_or_length_is_a_typed_error() {
    let src = Holder::new(1);
    let mut dict = state_dict(&src);
    dict.insert(
        "w".into(),
        StateEntry::U8(Tensor::new(&[2, 3], vec![0; 6]).unwrap()),
    );
    let err = load_state_dict(&mut Holder::new(1), &dict, true).unwrap_err();
    assert!(
        matches!(err, QnnError::KeyDtypeMismatch { ref key, expected: "i8", got: "u8" } if key == "w"),
        "{err}"
    );

    let mut dict = state_dict(&src);
    dict.insert("scales".into(), StateEntry::F64s(vec![1.0]));
    let err = load_state_dict(&mut Holder::new(1), &dict, true).unwrap_err();
    assert!(
        matches!(err, QnnError::KeyShapeMismatch { ref key, .. } if key == "scales"),
        "{err}"
    );
}
