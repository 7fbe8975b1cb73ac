//! The QTensor-level conveniences build exactly what `qtensor` builds (storage, dtype, shape,
//! layout, qparams, errors), also for large inputs split over several threads, and for
//! inputs they hand to `qtensor` (qint32, quint4x2, per-channel, channels-last).

use qkernels::quant::{self, QuantError};
use qtensor::{
    Layout, QDType, QParams, QTensor, QTensorError, Tensor, quantize_per_channel,
    quantize_per_tensor,
};

/// Deterministic values spread over and beyond the quantized range, with specials mixed in.
fn input(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 97 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => f32::NEG_INFINITY,
            3 => -0.0,
            _ => ((i.wrapping_mul(2_654_435_761) % 6007) as f32 - 3000.0) * 0.01,
        })
        .collect()
}

fn bits(t: &Tensor<f32>) -> Vec<u32> {
    t.data().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn per_tensor_matches_qtensor_for_every_dtype() {
    let x = Tensor::new(&[3, 5, 7], input(105)).unwrap();
    for (dtype, zps) in [
        (QDType::QUInt8, vec![0, 1, 127, 128, 200, 255]),
        (QDType::QInt8, vec![-128, -1, 0, 5, 127]),
        (QDType::QInt32, vec![-7, 0, 1_000_000]),
        (QDType::QUInt4x2, vec![0, 3, 15]),
    ] {
        for zp in zps {
            for scale in [0.05, 1.0, 1e-50, 1e39, 0.37] {
                let want = quantize_per_tensor(&x, scale, zp, dtype).unwrap();
                let got = quant::quantize_per_tensor_fast(&x, scale, zp, dtype).unwrap();
                assert_eq!(got, want, "{dtype} scale={scale} zp={zp}");
                let deq = quant::dequantize_fast(&got).unwrap();
                assert_eq!(deq.shape(), want.dequantize().shape());
                assert_eq!(
                    bits(&deq),
                    bits(&want.dequantize()),
                    "{dtype} scale={scale} zp={zp}"
                );
                let mut into = vec![f32::NAN; x.numel()];
                quant::dequantize_into(&got, &mut into).unwrap();
                let into_bits: Vec<u32> = into.iter().map(|v| v.to_bits()).collect();
                assert_eq!(into_bits, bits(&deq));
            }
        }
    }
}

#[test]
fn channels_last_and_per_channel_tensors() {
    let x = Tensor::new(&[2, 3, 4, 5], input(120))
        .unwrap()
        .to_channels_last()
        .unwrap();
    let want = quantize_per_tensor(&x, 0.1, 3, QDType::QInt8).unwrap();
    let got = quant::quantize_per_tensor_fast(&x, 0.1, 3, QDType::QInt8).unwrap();
    assert_eq!(got.layout(), Layout::ChannelsLast);
    assert_eq!(got, want);
    assert_eq!(quant::dequantize_fast(&got).unwrap(), want.dequantize());

    let pc = quantize_per_channel(&x, &[0.1, 0.2, 0.3], &[1, 2, 3], 1, QDType::QUInt8).unwrap();
    assert_eq!(
        bits(&quant::dequantize_fast(&pc).unwrap()),
        bits(&pc.dequantize())
    );
    let mut into = vec![0.0f32; 120];
    quant::dequantize_into(&pc, &mut into).unwrap();
    assert_eq!(into, pc.dequantize().data());
}

#[test]
fn errors_are_qtensors_errors() {
    let x = Tensor::new(&[2], vec![1.0, 2.0]).unwrap();
    for (scale, zp, dtype) in [
        (0.0, 0, QDType::QUInt8),
        (f64::NAN, 0, QDType::QInt8),
        (1.0, 256, QDType::QUInt8),
        (1.0, -129, QDType::QInt8),
        (1.0, 16, QDType::QUInt4x2),
    ] {
        let want = quantize_per_tensor(&x, scale, zp, dtype).unwrap_err();
        let got = quant::quantize_per_tensor_fast(&x, scale, zp, dtype).unwrap_err();
        // compared as text: a NaN scale makes the errors unequal under `==`
        assert!(matches!(got, QuantError::Tensor(_)), "{got:?}");
        assert_eq!(
            got.to_string(),
            want.to_string(),
            "scale={scale} zp={zp} {dtype}"
        );
    }
    let q = quantize_per_tensor(&x, 1.0, 0, QDType::QUInt8).unwrap();
    assert_eq!(
        quant::dequantize_into(&q, &mut [0.0; 3]),
        Err(QuantError::LengthMismatch { src: 2, dst: 3 })
    );
}

#[test]
fn from_u8_storage_validates() {
    let ok = QParams::PerTensor {
        scale: 1.0,
        zero_point: 0,
    };
    let row = Layout::RowMajor;
    assert!(matches!(
        QTensor::from_u8_storage(vec![1], &[1], row, QDType::QInt32, ok.clone()),
        Err(QTensorError::Unsupported(m)) if m.contains("qint32")
    ));
    assert!(matches!(
        QTensor::from_u8_storage(vec![1, 2], &[3], row, QDType::QUInt8, ok.clone()),
        Err(QTensorError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        QTensor::from_u8_storage(
            vec![1; 6],
            &[2, 3],
            Layout::ChannelsLast,
            QDType::QUInt8,
            ok
        ),
        Err(QTensorError::Unsupported(_))
    ));
    let bad = QParams::PerTensor {
        scale: -1.0,
        zero_point: 0,
    };
    assert_eq!(
        QTensor::from_u8_storage(vec![1], &[1], row, QDType::QUInt8, bad),
        Err(QTensorError::InvalidScale { scale: -1.0 })
    );
}

#[test]
fn large_inputs_are_identical_for_any_thread_count() {
    let n = quant::PAR_THRESHOLD + 77;
    let x = Tensor::new(&[n], input(n)).unwrap();
    let want = quantize_per_tensor(&x, 0.02, 130, QDType::QUInt8).unwrap();
    let want_f = bits(&want.dequantize());
    for threads in [1, 2, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let (q, d) = pool.install(|| {
            let q = quant::quantize_per_tensor_fast(&x, 0.02, 130, QDType::QUInt8).unwrap();
            let d = quant::dequantize_fast(&q).unwrap();
            (q, d)
        });
        assert_eq!(q, want, "{threads} threads");
        assert_eq!(bits(&d), want_f, "{threads} threads");
        let mut out = vec![0i8; n];
        pool.install(|| quant::quantize_i8(x.data(), 0.02, -3, &mut out))
            .unwrap();
        let want_i8 = quantize_per_tensor(&x, f64::from(0.02f32), -3, QDType::QInt8).unwrap();
        let want_i8: Vec<i8> = want_i8.int_values().iter().map(|&v| v as i8).collect();
        assert_eq!(out, want_i8, "{threads} threads");
    }
}

/// Outputs of `HUGE_PAGE_MIN_BYTES` and more are advised for huge pages before the kernels
/// write them: the tensors must still be exactly `qtensor`'s, one thread and several.
#[test]
fn huge_page_sized_outputs_match_qtensor() {
    let n = quant::HUGE_PAGE_MIN_BYTES + 4099;
    let x = Tensor::new(&[n], input(n)).unwrap();
    let pools = [1, 2].map(|t| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .unwrap()
    });
    for (dtype, zp) in [(QDType::QUInt8, 131), (QDType::QInt8, -3)] {
        let want = quantize_per_tensor(&x, 0.05, zp, dtype).unwrap();
        let want_deq = bits(&want.dequantize());
        for pool in &pools {
            let got = pool.install(|| quant::quantize_per_tensor_fast(&x, 0.05, zp, dtype));
            let got = got.unwrap();
            assert!(got == want, "{dtype} quantize");
            let deq = pool.install(|| quant::dequantize_fast(&got)).unwrap();
            assert!(bits(&deq) == want_deq, "{dtype} dequantize");
        }
    }
}
