//! Every error variant is reachable from user input, and its message names the offending value.

use qtensor::{
    QDType, QParams, QScheme, QTensor, QTensorError, Tensor, calculate_qmin_qmax,
    calculate_qparams, fake_quantize_backward, fake_quantize_per_tensor_affine,
    quantize_per_channel, quantize_per_channel_float_qparams, quantize_per_tensor,
    quantize_slice_u8,
};

fn x2x3() -> Tensor<f32> {
    Tensor::from_fn(&[2, 3], |i| i as f32)
}

fn message(e: &QTensorError) -> String {
    e.to_string()
}

#[test]
fn invalid_scale_names_the_scale() {
    for scale in [0.0, -0.5, f64::NAN, f64::INFINITY] {
        let e = quantize_per_tensor(&x2x3(), scale, 0, QDType::QUInt8).unwrap_err();
        assert!(matches!(e, QTensorError::InvalidScale { .. }), "{e:?}");
        assert!(message(&e).contains(&scale.to_string()), "{e}");
    }
    let e = quantize_per_channel(&x2x3(), &[1.0, -2.5], &[0, 0], 0, QDType::QInt8).unwrap_err();
    assert!(message(&e).contains("-2.5"), "{e}");
    let mut dst = [0u8; 1];
    let e = quantize_slice_u8(&[1.0], f32::NAN, 0, &mut dst).unwrap_err();
    assert!(matches!(e, QTensorError::InvalidScale { .. }));
}

#[test]
fn zero_point_out_of_range_names_the_zero_point() {
    let e = quantize_per_tensor(&x2x3(), 1.0, 256, QDType::QUInt8).unwrap_err();
    assert_eq!(
        e,
        QTensorError::ZeroPointOutOfRange {
            zero_point: 256,
            qmin: 0,
            qmax: 255
        }
    );
    assert!(message(&e).contains("256"));
    let e = fake_quantize_per_tensor_affine(&x2x3(), 1.0, -3, 0, 15).unwrap_err();
    assert!(message(&e).contains("-3"), "{e}");
}

#[test]
fn axis_out_of_range_names_the_axis() {
    let e = quantize_per_channel(&x2x3(), &[1.0], &[0], 2, QDType::QInt8).unwrap_err();
    assert_eq!(e, QTensorError::AxisOutOfRange { axis: 2, ndim: 2 });
    assert!(message(&e).contains("axis 2"), "{e}");
}

#[test]
fn channel_mismatch_names_both_counts() {
    let e = quantize_per_channel(&x2x3(), &[1.0, 1.0], &[0, 0], 1, QDType::QInt8).unwrap_err();
    assert_eq!(
        e,
        QTensorError::ChannelMismatch {
            expected: 3,
            got: 2
        }
    );
    assert!(
        message(&e).contains('3') && message(&e).contains('2'),
        "{e}"
    );
    let e = quantize_per_channel_float_qparams(&x2x3(), &[1.0, 1.0], &[0.0], 0, QDType::QUInt8)
        .unwrap_err();
    assert!(matches!(e, QTensorError::ChannelMismatch { .. }), "{e:?}");
}

#[test]
fn shape_mismatch_names_the_shapes() {
    let e = Tensor::new(&[2, 3], vec![0.0f32; 5]).unwrap_err();
    assert!(
        message(&e).contains("[2, 3]") && message(&e).contains("[5]"),
        "{e}"
    );
    let e = x2x3().reshape(&[4]).unwrap_err();
    assert!(matches!(e, QTensorError::ShapeMismatch { .. }));
    let mask = Tensor::<u8>::zeros(&[3, 2]);
    let e = fake_quantize_backward(&x2x3(), &mask).unwrap_err();
    assert!(message(&e).contains("[3, 2]"), "{e}");
}

#[test]
fn invalid_quant_range_names_the_range() {
    let e = calculate_qmin_qmax(QDType::QUInt8, false, Some((1, 255))).unwrap_err();
    assert!(matches!(
        e,
        QTensorError::InvalidQuantRange {
            qmin: 1,
            qmax: 255,
            ..
        }
    ));
    assert!(message(&e).contains("[1, 255]"), "{e}");
    let e = calculate_qmin_qmax(QDType::QInt8, false, Some((-200, 100))).unwrap_err();
    assert!(message(&e).contains("-200"), "{e}");
    let e = calculate_qparams(
        2.0,
        1.0,
        QScheme::PerTensorAffine,
        QDType::QUInt8,
        0,
        255,
        f32::EPSILON,
        false,
    )
    .unwrap_err();
    assert!(matches!(e, QTensorError::InvalidQuantRange { .. }));
    let e = fake_quantize_per_tensor_affine(&x2x3(), 1.0, 0, 5, -5).unwrap_err();
    assert!(message(&e).contains("[5, -5]"), "{e}");
}

#[test]
fn value_out_of_range_names_the_value() {
    let qp = QParams::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    let e = QTensor::from_int_values(&[2], &[3, 300], QDType::QUInt8, qp).unwrap_err();
    assert_eq!(
        e,
        QTensorError::ValueOutOfRange {
            value: 300,
            index: 1,
            qmin: 0,
            qmax: 255
        }
    );
    assert!(message(&e).contains("300"));
}

#[test]
fn unsupported_names_the_dtype_or_scheme() {
    let e = quantize_per_channel(&x2x3(), &[1.0, 1.0], &[0, 0], 0, QDType::QUInt4x2).unwrap_err();
    assert!(message(&e).contains("quint4x2"), "{e}");
    let e = quantize_per_channel_float_qparams(&x2x3(), &[1.0; 2], &[0.0; 2], 0, QDType::QInt8)
        .unwrap_err();
    assert!(message(&e).contains("qint8"), "{e}");
    let q = quantize_per_channel(&x2x3(), &[1.0, 1.0], &[0, 0], 0, QDType::QInt8).unwrap();
    let e = q.q_scale().unwrap_err();
    assert!(message(&e).contains("PerChannelAffine"), "{e}");
    let e = x2x3().to_channels_last().unwrap_err();
    assert!(message(&e).contains("[2, 3]"), "{e}");
    let e = qtensor::quantize_per_tensor_dynamic(&x2x3(), QDType::QInt32, false).unwrap_err();
    assert!(message(&e).contains("qint32"), "{e}");
}
