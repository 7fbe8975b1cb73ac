//! Zero-size dimensions through the quantized modules (issue #9): an empty batch gives an
//! empty output of PyTorch's shape (torch 2.15, fbgemm: `quantized.Conv2d` on `[0, 3, 5, 5]`
//! gives `[0, 2, 3, 3]`); an empty spatial plane and weights with an empty dimension give typed
//! errors (torch raises for the plane too). Nothing panics.

use qnn::qtensor::{QDType, QParams, Tensor, quantize_per_tensor};
use qnn::quantized::{
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv2d, ConvOptions, DeQuantize, Linear, MaxPool2d,
    Quantize,
};
use qnn::{Module, QnnError, Value};

const WQ: QParams = QParams::PerTensor {
    scale: 0.01,
    zero_point: 0,
};

fn quantized(shape: &[usize]) -> Value {
    let n: usize = shape.iter().product();
    let x = Tensor::new(shape, vec![0.5; n]).expect("shape");
    Value::Quantized(quantize_per_tensor(&x, 0.1, 3, QDType::QUInt8).expect("quantize"))
}

/// The output of `m` on `x`: its shape, and its qparams when quantized.
fn run(m: &mut dyn Module, x: &Value) -> (Vec<usize>, Option<(f64, i64)>) {
    let y = m.forward(x).expect("an empty batch is not an error");
    let shape = y.shape().expect("a tensor").to_vec();
    let q = match &y {
        Value::Quantized(q) => {
            assert!(q.int_values().is_empty());
            Some((
                q.q_scale().expect("per tensor"),
                q.q_zero_point().expect("per tensor"),
            ))
        }
        Value::F32(t) => {
            assert!(t.data().is_empty());
            None
        }
        other => panic!("unexpected output {other:?}"),
    };
    (shape, q)
}

fn linear() -> Linear {
    let w = Tensor::new(&[4, 3], vec![0.1; 12]).expect("weight");
    Linear::from_weights(&w, None, &WQ, 0.05, 10).expect("linear")
}

#[test]
fn linear_on_an_empty_batch_keeps_the_leading_dims() {
    let mut lin = linear();
    assert_eq!(
        run(&mut lin, &quantized(&[0, 3])),
        (vec![0, 4], Some((0.05, 10)))
    );
    assert_eq!(
        run(&mut lin, &quantized(&[2, 0, 3])),
        (vec![2, 0, 4], Some((0.05, 10)))
    );
}

#[test]
fn linear_weights_with_an_empty_dimension_are_refused() {
    for shape in [[4, 0], [0, 3]] {
        let w = Tensor::new(&shape, vec![]).expect("weight");
        let err = Linear::from_weights(&w, None, &WQ, 0.05, 10).unwrap_err();
        assert!(
            matches!(&err, QnnError::InvalidConfig { reason, .. } if reason.contains("empty")),
            "{err:?}"
        );
    }
}

#[test]
fn conv_on_an_empty_batch_gives_torchs_empty_output() {
    let w = Tensor::new(&[2, 3, 3, 3], vec![0.1; 54]).expect("weight");
    let mut conv =
        Conv2d::from_weights(&w, None, ConvOptions::default(), &WQ, 0.05, 10).expect("conv");
    assert_eq!(
        run(&mut conv, &quantized(&[0, 3, 5, 5])),
        (vec![0, 2, 3, 3], Some((0.05, 10)))
    );
    // Still validated: wrong channels, a kernel larger than the plane.
    assert!(matches!(
        conv.forward(&quantized(&[0, 4, 5, 5])),
        Err(QnnError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        conv.forward(&quantized(&[0, 3, 2, 5])),
        Err(QnnError::Conv(_))
    ));
    // The 1-d conv takes the channels-first path.
    let w1 = Tensor::new(&[2, 3, 3], vec![0.1; 18]).expect("weight");
    let mut conv1 =
        Conv1d::from_weights(&w1, None, ConvOptions::default(), &WQ, 0.05, 10).expect("conv1d");
    assert_eq!(
        run(&mut conv1, &quantized(&[0, 3, 7])),
        (vec![0, 2, 5], Some((0.05, 10)))
    );
}

#[test]
fn conv_on_an_empty_plane_is_a_typed_error() {
    let w = Tensor::new(&[2, 3, 3, 3], vec![0.1; 54]).expect("weight");
    let mut conv =
        Conv2d::from_weights(&w, None, ConvOptions::default(), &WQ, 0.05, 10).expect("conv");
    let err = conv.forward(&quantized(&[1, 3, 0, 5])).unwrap_err();
    assert!(
        matches!(
            err,
            QnnError::Conv(qnn::qkernels::conv::ConvError::Geometry { value: 0, .. })
        ),
        "{err:?}"
    );
}

#[test]
fn pooling_on_empty_batches_and_channels() {
    let mut max = MaxPool2d::new([2, 2], [2, 2], [0, 0], [1, 1], false).expect("max pool");
    let mut avg = AvgPool2d::new([2, 2], [2, 2], [0, 0], false, true, None).expect("avg pool");
    let mut adaptive = AdaptiveAvgPool2d::new([1, 1]).expect("adaptive pool");
    for (input, pooled) in [([0, 3, 4, 4], [0, 3, 2, 2]), ([1, 0, 4, 4], [1, 0, 2, 2])] {
        let x = quantized(&input);
        assert_eq!(run(&mut max, &x), (pooled.to_vec(), Some((0.1, 3))));
        assert_eq!(run(&mut avg, &x), (pooled.to_vec(), Some((0.1, 3))));
        let mut one = input.to_vec();
        one[2..].copy_from_slice(&[1, 1]);
        assert_eq!(run(&mut adaptive, &x), (one, Some((0.1, 3))));
    }
}

#[test]
fn quantize_and_dequantize_stubs_pass_empty_tensors() {
    let mut quant = Quantize::new(0.1, 3, QDType::QUInt8).expect("stub");
    for shape in [vec![0, 3], vec![0, 3, 4, 4], vec![2, 0]] {
        let x = Value::F32(Tensor::new(&shape, vec![]).expect("empty"));
        assert_eq!(run(&mut quant, &x), (shape.clone(), Some((0.1, 3))));
        assert_eq!(
            run(&mut DeQuantize::new(), &quantized(&shape)),
            (shape, None)
        );
    }
}
