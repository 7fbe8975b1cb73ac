//! Property tests of per-tensor and per-channel quantization.

use proptest::prelude::*;
use qtensor::{
    QDType, QParams, QTensor, Tensor, quantize_per_channel, quantize_per_tensor, quantize_slice_i8,
    quantize_slice_u8, quantize_val,
};

fn dtype_8bit() -> impl Strategy<Value = QDType> {
    prop_oneof![Just(QDType::QUInt8), Just(QDType::QInt8)]
}

fn any_dtype() -> impl Strategy<Value = QDType> {
    prop_oneof![
        Just(QDType::QUInt8),
        Just(QDType::QInt8),
        Just(QDType::QInt32),
        Just(QDType::QUInt4x2)
    ]
}

/// A scale in [1e-3, 10) and a zero point inside the dtype's 8-bit-sized window.
fn qparams(dtype: QDType) -> impl Strategy<Value = (f64, i64)> {
    let (lo, hi) = match dtype {
        QDType::QInt32 => (-1000, 1000),
        _ => (dtype.qmin(), dtype.qmax()),
    };
    (1e-3f64..10.0, lo..=hi)
}

/// A dtype with matching qparams.
fn dtype_and_qparams(
    dtypes: impl Strategy<Value = QDType>,
) -> impl Strategy<Value = (QDType, f64, i64)> {
    dtypes.prop_flat_map(|dt| qparams(dt).prop_map(move |(s, z)| (dt, s, z)))
}

/// The `[lo, hi]` real range that maps inside `[qmin, qmax]`.
fn real_range(dtype: QDType, scale: f64, zp: i64) -> (f64, f64) {
    let (qmin, qmax) = match dtype {
        QDType::QInt32 => (-1_000_000, 1_000_000),
        _ => (dtype.qmin(), dtype.qmax()),
    };
    ((qmin - zp) as f64 * scale, (qmax - zp) as f64 * scale)
}

proptest! {
    #[test]
    fn round_trip_error_is_at_most_half_a_step(
        (dtype, scale, zp) in dtype_and_qparams(any_dtype()),
        fractions in prop::collection::vec(0.0f64..=1.0, 1..64),
    ) {
        let (lo, hi) = real_range(dtype, scale, zp);
        let data: Vec<f32> = fractions.iter().map(|f| (lo + f * (hi - lo)) as f32).collect();
        let x = Tensor::new(&[data.len()], data).unwrap();
        let q = quantize_per_tensor(&x, scale, zp, dtype).unwrap();
        let s = scale as f32 as f64;
        for (&v, &d) in x.data().iter().zip(q.dequantize().data()) {
            let bound = s * 0.5 * (1.0 + 1e-5) + f64::from(v).abs() * 1e-6;
            prop_assert!((f64::from(v) - f64::from(d)).abs() <= bound, "x={v} deq={d} scale={scale} zp={zp}");
        }
    }

    #[test]
    fn quantize_of_dequantize_is_identity(
        (dtype, scale, zp) in dtype_and_qparams(prop_oneof![dtype_8bit(), Just(QDType::QUInt4x2)]),
        seeds in prop::collection::vec(any::<u32>(), 1..64),
    ) {
        let span = (dtype.qmax() - dtype.qmin() + 1) as u32;
        let values: Vec<i32> = seeds.iter().map(|s| (dtype.qmin() + i64::from(s % span)) as i32).collect();
        let qp = QParams::PerTensor { scale, zero_point: zp };
        let q = QTensor::from_int_values(&[values.len()], &values, dtype, qp).unwrap();
        let again = quantize_per_tensor(&q.dequantize(), scale, zp, dtype).unwrap();
        prop_assert_eq!(again.int_values(), values);
    }

    #[test]
    fn quantize_is_monotonic(
        (dtype, scale, zp) in dtype_and_qparams(any_dtype()),
        mut data in prop::collection::vec(-1e4f32..1e4, 2..64),
    ) {
        data.sort_by(f32::total_cmp);
        let x = Tensor::new(&[data.len()], data).unwrap();
        let q = quantize_per_tensor(&x, scale, zp, dtype).unwrap().int_values();
        prop_assert!(q.windows(2).all(|w| w[0] <= w[1]), "{q:?}");
    }

    #[test]
    fn slice_loops_equal_the_oracle_on_any_bits(
        bits in prop::collection::vec(any::<u32>(), 0..80),
        scale in 1e-3f32..10.0,
        zp_u8 in 0i32..=255,
        zp_i8 in -128i32..=127,
    ) {
        let src: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let inv = 1.0 / scale;
        let mut u = vec![0u8; src.len()];
        quantize_slice_u8(&src, scale, zp_u8, &mut u).unwrap();
        let mut i = vec![0i8; src.len()];
        quantize_slice_i8(&src, scale, zp_i8, &mut i).unwrap();
        for (k, &x) in src.iter().enumerate() {
            prop_assert_eq!(i32::from(u[k]), quantize_val(x, inv, zp_u8, 0, 255), "x={}", x);
            prop_assert_eq!(i32::from(i[k]), quantize_val(x, inv, zp_i8, -128, 127), "x={}", x);
        }
    }

    #[test]
    fn per_channel_equals_per_tensor_on_each_slice(
        dtype in prop_oneof![dtype_8bit(), Just(QDType::QInt32)],
        channels in 1usize..5,
        inner in 1usize..7,
        qp in prop::collection::vec((1e-3f64..10.0, -100i64..100), 5),
        fractions in prop::collection::vec(-1.0f32..1.0, 5 * 7 * 2),
        channels_last in any::<bool>(),
    ) {
        let shape = [2, channels, inner, 1];
        let n = 2 * channels * inner;
        let (scales, zps): (Vec<f64>, Vec<i64>) = qp[..channels]
            .iter()
            .map(|&(s, z)| (s, z.clamp(dtype.qmin(), dtype.qmax())))
            .unzip();
        let x = Tensor::new(&shape, fractions[..n].iter().map(|f| f * 300.0).collect()).unwrap();
        let input = if channels_last { x.to_channels_last().unwrap() } else { x.clone() };
        let q = quantize_per_channel(&input, &scales, &zps, 1, dtype).unwrap();
        let q = q.to_row_major().unwrap();
        prop_assert_eq!(q.layout(), qtensor::Layout::RowMajor);
        let values = q.int_values();
        for c in 0..channels {
            let idx: Vec<usize> = (0..n).filter(|i| (i / inner) % channels == c).collect();
            let slice: Vec<f32> = idx.iter().map(|&i| x.data()[i]).collect();
            let t = Tensor::new(&[slice.len()], slice).unwrap();
            let want = quantize_per_tensor(&t, scales[c], zps[c], dtype).unwrap().int_values();
            let got: Vec<i32> = idx.iter().map(|&i| values[i]).collect();
            prop_assert_eq!(got, want, "channel {}", c);
        }
    }
}
