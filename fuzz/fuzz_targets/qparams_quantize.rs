//! Qparam construction and quantize / dequantize / fake-quant / choose_qparams on arbitrary
//! floats (NaN, ±inf, subnormals, huge and tiny scales, any zero point): every call returns
//! `Ok` or a typed error, never panics, and what it returns keeps the quantized-range invariant.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qtensor::{
    QDType, Tensor, choose_qparams_fbgemm, choose_qparams_quant_utils,
    fake_quantize_per_channel_affine, fake_quantize_per_tensor_affine, quantize_per_channel,
    quantize_per_tensor,
};

/// Reads little-endian values off the front of the fuzzer's bytes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    fn f32(&mut self) -> f32 {
        f32::from_bits(u32::from_le_bytes(self.take()))
    }
    fn f64(&mut self) -> f64 {
        f64::from_bits(u64::from_le_bytes(self.take()))
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let dtype = match b.u8() % 4 {
        0 => QDType::QUInt8,
        1 => QDType::QInt8,
        2 => QDType::QInt32,
        _ => QDType::QUInt4x2,
    };
    let scale = b.f64();
    let zero_point = b.i64() % 512;
    let n = usize::from(b.u8() % 17);
    let values: Vec<f32> = (0..n).map(|_| b.f32()).collect();
    let Ok(x) = Tensor::new(&[n], values) else {
        return;
    };
    let (qmin, qmax) = (dtype.qmin(), dtype.qmax());

    if let Ok(q) = quantize_per_tensor(&x, scale, zero_point, dtype) {
        assert!(
            q.int_values()
                .iter()
                .all(|&v| i64::from(v) >= qmin && i64::from(v) <= qmax)
        );
        let back = q.dequantize();
        assert_eq!(back.shape(), x.shape());
    }

    // Two channels along axis 0 of a [2, n/2] view.
    let half = n / 2;
    if let Ok(x2) = Tensor::new(&[2, half], x.data()[..2 * half].to_vec()) {
        let scales = [b.f64(), scale];
        let zps = [b.i64() % 300, zero_point];
        if let Ok(q) = quantize_per_channel(&x2, &scales, &zps, 0, dtype) {
            assert!(
                q.int_values()
                    .iter()
                    .all(|&v| i64::from(v) >= qmin && i64::from(v) <= qmax)
            );
            let _ = q.dequantize();
        }
        let scales32 = scales.map(|s| s as f32);
        let zps32 = zps.map(|z| z as i32);
        let _ = fake_quantize_per_channel_affine(&x2, &scales32, &zps32, 0, qmin, qmax);
    }

    let (fq_min, fq_max) = (b.i64() % 70_000, b.i64() % 70_000);
    if let Ok((y, mask)) = fake_quantize_per_tensor_affine(&x, scale, zero_point, fq_min, fq_max) {
        assert_eq!(y.shape(), x.shape());
        assert!(mask.data().iter().all(|&m| m <= 1));
    }

    let (lo, hi) = (b.f32(), b.f32());
    let (r, reduce) = (b.u8(), b.u8() & 1 == 1);
    let (s, zp) = choose_qparams_quant_utils(lo, hi, 0, 255, r & 1 == 1, r & 2 == 2, reduce);
    let _ = (s, zp);
    let _ = choose_qparams_fbgemm(lo, hi, -128, 127, r & 4 == 4, r & 8 == 8);
});
