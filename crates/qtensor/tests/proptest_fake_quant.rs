//! Property tests of fake quantization and of the f16 conversion.

use half::f16;
use proptest::prelude::*;
use qtensor::{
    QDType, Tensor, f32_to_f16_saturating, fake_quantize_backward,
    fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine, quantize_per_channel,
    quantize_per_tensor,
};

proptest! {
    #[test]
    fn per_tensor_fake_quant_equals_quantize_dequantize(
        scale in 1e-3f64..10.0,
        zp in 0i64..=255,
        fractions in prop::collection::vec(0.0f64..=1.0, 1..64),
    ) {
        // stay 0.4 steps inside the range so rounding never leaves it
        let (lo, hi) = ((-zp as f64 - 0.1) * scale, ((255 - zp) as f64 + 0.1) * scale);
        let data: Vec<f32> = fractions.iter().map(|f| (lo + f * (hi - lo)) as f32).collect();
        let x = Tensor::new(&[data.len()], data).unwrap();
        let (y, mask) = fake_quantize_per_tensor_affine(&x, scale, zp, 0, 255).unwrap();
        let deq = quantize_per_tensor(&x, scale, zp, QDType::QUInt8).unwrap().dequantize();
        prop_assert_eq!(y.data(), deq.data());
        prop_assert!(mask.data().iter().all(|&m| m == 1));
        let dy = Tensor::new(x.shape(), vec![1.5; x.numel()]).unwrap();
        prop_assert_eq!(fake_quantize_backward(&dy, &mask).unwrap(), dy);
    }

    #[test]
    fn per_tensor_mask_is_zero_exactly_outside(
        scale in 1e-2f64..10.0,
        zp in -128i64..=127,
        steps in prop::collection::vec(-400i32..400, 1..64),
    ) {
        // x = k * scale lands on integer k (up to f32 error far from ties)
        let x = Tensor::new(&[steps.len()], steps.iter().map(|&k| (f64::from(k) * scale) as f32).collect()).unwrap();
        let (_, mask) = fake_quantize_per_tensor_affine(&x, scale, zp, -128, 127).unwrap();
        for (&k, &m) in steps.iter().zip(mask.data()) {
            let q = i64::from(k) + zp;
            prop_assert_eq!(m == 1, (-128..=127).contains(&q), "k={} zp={}", k, zp);
        }
    }

    #[test]
    fn per_channel_fake_quant_equals_quantize_dequantize(
        qp in prop::collection::vec((1e-3f32..10.0, -128i32..=127), 3),
        fractions in prop::collection::vec(0.0f64..=1.0, 3 * 8),
    ) {
        let (scales, zps): (Vec<f32>, Vec<i32>) = qp.iter().copied().unzip();
        let data: Vec<f32> = fractions
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let (s, z) = (f64::from(scales[i / 8]), f64::from(zps[i / 8]));
                ((-128.0 - z + 0.1 + f * 254.8) * s) as f32
            })
            .collect();
        let x = Tensor::new(&[3, 8], data).unwrap();
        let (y, mask) = fake_quantize_per_channel_affine(&x, &scales, &zps, 0, -128, 127).unwrap();
        let wide: Vec<f64> = scales.iter().map(|&s| f64::from(s)).collect();
        let zps64: Vec<i64> = zps.iter().map(|&z| i64::from(z)).collect();
        let deq = quantize_per_channel(&x, &wide, &zps64, 0, QDType::QInt8).unwrap().dequantize();
        prop_assert_eq!(y.data(), deq.data());
        prop_assert!(mask.data().iter().all(|&m| m == 1));
    }

    #[test]
    fn f16_round_trip(bits in any::<u16>()) {
        let h = f16::from_bits(bits);
        let back = f32_to_f16_saturating(h.to_f32());
        if h.is_nan() {
            prop_assert!(back.is_nan());
        } else if h.is_infinite() {
            prop_assert_eq!(back.to_f32(), 65504.0f32.copysign(h.to_f32()));
        } else {
            prop_assert_eq!(back.to_bits(), bits);
        }
    }

    #[test]
    fn f16_conversion_is_nearest_and_saturating(x in any::<f32>()) {
        let h = f32_to_f16_saturating(x);
        if x.is_nan() {
            prop_assert!(h.is_nan());
        } else {
            let y = h.to_f32();
            prop_assert!(y.abs() <= 65504.0);
            let clamped = x.clamp(-65504.0, 65504.0);
            // no other f16 is closer: both neighbours are at least as far away
            let err = (clamped - y).abs();
            for step in [1u16, u16::MAX] {
                let n = f16::from_bits(h.to_bits().wrapping_add(step)).to_f32();
                prop_assert!(!n.is_finite() || (clamped - n).abs() >= err, "x={x} h={y} n={n}");
            }
        }
    }
}

#[test]
fn tensor_f16_conversion_keeps_shape() {
    let x = Tensor::new(&[2, 2], vec![1.0, 1e6, -1e6, f32::NAN]).unwrap();
    let h = x.to_f16();
    assert_eq!(h.shape(), &[2, 2]);
    let back = h.to_f32();
    assert_eq!(&back.data()[..3], &[1.0, 65504.0, -65504.0]);
    assert!(back.data()[3].is_nan());
}
