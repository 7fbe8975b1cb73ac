//! `to_safetensors_compact`: scales and zero points stored narrow (F32 / I8 / I32) when that
//! is lossless, kept wide otherwise, and widened back on load to the identical state and
//! outputs.

use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::quantized::{Linear, Quantize};
use qnn::state_dict::{
    StateEntry, from_safetensors, load_state_dict, state_dict, to_safetensors,
    to_safetensors_compact,
};
use qnn::{Module, Value};
use safetensors::SafeTensors;
use safetensors::tensor::Dtype;

fn det(shape: &[usize], seed: u32) -> Tensor<f32> {
    Tensor::from_fn(shape, |i| {
        let v = (i as u32)
            .wrapping_mul(2_654_435_761)
            .wrapping_add(seed.wrapping_mul(40_503));
        ((v >> 8) % 2001) as f32 / 1000.0 - 1.0
    })
}

fn dtype_of(bytes: &[u8], key: &str) -> Dtype {
    SafeTensors::deserialize(bytes)
        .unwrap()
        .tensor(key)
        .unwrap()
        .dtype()
}

fn linear(seed: u32, scales: Vec<f64>, zero_points: Vec<i64>) -> Linear {
    let n = scales.len();
    let q = QParams::PerChannel {
        scales,
        zero_points,
        axis: 0,
    };
    Linear::from_weights(
        &det(&[n, 16], seed),
        Some(&det(&[n], 9)),
        &q,
        f64::from(0.05f32),
        70,
    )
    .unwrap()
}

#[test]
fn per_channel_linear_saves_f32_scales_and_i8_zero_points_and_reloads_exactly() {
    // f32-exact scales (what the observers compute) and symmetric zero points
    let scales: Vec<f64> = (0..6)
        .map(|i| f64::from(0.004f32 + 0.001 * i as f32))
        .collect();
    let a = linear(1, scales, vec![0, 0, 1, -2, 0, 3]);
    let compact = to_safetensors_compact(&state_dict(&a)).unwrap();
    let wide = to_safetensors(&state_dict(&a)).unwrap();
    assert_eq!(dtype_of(&compact, "weight_scale"), Dtype::F32);
    assert_eq!(dtype_of(&compact, "weight_zero_point"), Dtype::I8);
    assert_eq!(dtype_of(&compact, "scale"), Dtype::F32);
    assert_eq!(dtype_of(&compact, "zero_point"), Dtype::I8);
    assert_eq!(dtype_of(&compact, "weight"), Dtype::I8);
    assert_eq!(dtype_of(&wide, "weight_scale"), Dtype::F64);
    // 6 scales: 24 bytes saved, 6 + 1 zero points: 49 bytes saved, output scale: 4 bytes
    assert!(
        compact.len() + 24 + 49 + 4 <= wide.len(),
        "{} vs {}",
        compact.len(),
        wide.len()
    );

    let mut b = linear(2, vec![0.5; 6], vec![0; 6]);
    let mut q = Quantize::new(0.02, 10, QDType::QUInt8).unwrap();
    let x = q.forward(&Value::F32(det(&[3, 16], 7))).unwrap();
    let mut a = a;
    let ya = a.forward(&x).unwrap();
    assert_ne!(b.forward(&x).unwrap(), ya);
    load_state_dict(&mut b, &from_safetensors(&compact).unwrap(), true).unwrap();
    assert_eq!(b.forward(&x).unwrap(), ya);
    assert_eq!(state_dict(&b), state_dict(&a));
}

#[test]
fn values_that_do_not_narrow_stay_wide_or_take_i32() {
    let mut dict = std::collections::BTreeMap::new();
    dict.insert("s".to_string(), StateEntry::F64s(vec![0.1, 0.25]));
    dict.insert("z8".to_string(), StateEntry::I64s(vec![-128, 127]));
    dict.insert("z32".to_string(), StateEntry::I64s(vec![200, -5]));
    dict.insert("z64".to_string(), StateEntry::I64s(vec![1 << 40]));
    let bytes = to_safetensors_compact(&dict).unwrap();
    assert_eq!(dtype_of(&bytes, "s"), Dtype::F64); // 0.1 is not an f32
    assert_eq!(dtype_of(&bytes, "z8"), Dtype::I8);
    assert_eq!(dtype_of(&bytes, "z32"), Dtype::I32);
    assert_eq!(dtype_of(&bytes, "z64"), Dtype::I64);
}

#[test]
fn a_narrow_entry_of_the_wrong_length_is_a_shape_error() {
    let a = linear(1, vec![0.25; 4], vec![0; 4]);
    let mut dict = state_dict(&a);
    dict.insert(
        "weight_zero_point".into(),
        StateEntry::I8(Tensor::new(&[3], vec![0i8; 3]).unwrap()),
    );
    let mut b = linear(2, vec![0.5; 4], vec![0; 4]);
    let err = load_state_dict(&mut b, &dict, true).unwrap_err();
    assert!(
        matches!(err, qnn::QnnError::KeyShapeMismatch { .. }),
        "{err}"
    );
}
