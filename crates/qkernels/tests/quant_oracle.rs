//! Every runnable quantize/dequantize family equals `qtensor`'s scalar definitions bit for
//! bit: special values (NaN, ±inf, ±0, subnormals, huge values, the 2^31 clip boundary, exact
//! halfway points) under every zero point of both dtypes, tails of every length 0..=130 at
//! every small misalignment (with canaries around the destination), and dequantize of every
//! byte under every zero point.

use qkernels::isa::{self, Isa};
use qkernels::quant::{self, QuantError};
use qtensor::{dequantize_val, quantize_val};

/// Specials plus exact halfway points `k + 0.5` for `k` in -300..300 (also halfway after the
/// power-of-two scales below).
fn specials() -> Vec<f32> {
    let mut v = vec![
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001), // signalling NaN
        f32::from_bits(0xffc0_1234),
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        f32::from_bits(1), // smallest subnormal
        -f32::from_bits(1),
        f32::from_bits(0x007f_ffff), // largest subnormal
        -f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        1e30,
        -1e30,
        3e9,
        -3e9,
        2_147_483_520.0,
        2_147_483_392.0,
        2_147_483_648.0,
        -2_147_483_520.0,
        -2_147_483_648.0,
        -2_147_483_904.0,
        8_388_608.5f32.next_up(),
        4_194_304.5,
        16_777_216.0,
        0.499_999_97,
        -0.499_999_97,
        127.5,
        128.5,
        255.5,
        -128.5,
        -127.5,
    ];
    v.extend((-300..300).map(|k| k as f32 + 0.5));
    v
}

/// Scales: exact (powers of two, so halfway points stay halfway) and inexact.
const SCALES: [f32; 5] = [1.0, 0.5, 0.25, 0.37, 3.0];

fn levels() -> Vec<Isa> {
    let levels = isa::runnable();
    eprintln!("quant levels under test: {levels:?}");
    levels
}

fn check_u8(level: Isa, src: &[f32], scale: f32, zp: i32) {
    let mut dst = vec![0xa5u8; src.len()];
    quant::quantize_u8_with(level, src, scale, zp, &mut dst).unwrap();
    for (i, (&x, &q)) in src.iter().zip(&dst).enumerate() {
        let want = quantize_val(x, 1.0 / scale, zp, 0, 255);
        assert_eq!(
            i32::from(q),
            want,
            "{level} quint8 i={i} x={x:e} ({:#010x}) scale={scale} zp={zp}",
            x.to_bits()
        );
    }
}

fn check_i8(level: Isa, src: &[f32], scale: f32, zp: i32) {
    let mut dst = vec![0x5ai8; src.len()];
    quant::quantize_i8_with(level, src, scale, zp, &mut dst).unwrap();
    for (i, (&x, &q)) in src.iter().zip(&dst).enumerate() {
        let want = quantize_val(x, 1.0 / scale, zp, -128, 127);
        assert_eq!(
            i32::from(q),
            want,
            "{level} qint8 i={i} x={x:e} ({:#010x}) scale={scale} zp={zp}",
            x.to_bits()
        );
    }
}

/// Every quint8 zero point, or under Miri (which runs these loops ~1000x slower) both ends, the
/// middle and their neighbours.
fn u8_zero_points() -> Vec<i32> {
    if cfg!(miri) {
        vec![0, 1, 127, 128, 254, 255]
    } else {
        (0..=255).collect()
    }
}

/// [`u8_zero_points`] for qint8.
fn i8_zero_points() -> Vec<i32> {
    u8_zero_points().into_iter().map(|z| z - 128).collect()
}

#[test]
fn quantize_specials_every_zero_point() {
    let src = specials();
    for level in levels() {
        for scale in SCALES {
            for zp in u8_zero_points() {
                check_u8(level, &src, scale, zp);
            }
            for zp in i8_zero_points() {
                check_i8(level, &src, scale, zp);
            }
        }
    }
}

#[test]
fn torch_wraparound_cases() {
    // Observed from torch 2.15 (see qtensor's scalar tests): the 32-bit zero-point add wraps.
    for level in levels() {
        let mut q = [0u8; 3];
        quant::quantize_u8_with(level, &[f32::NAN, f32::INFINITY, 1e30], 1.0, 200, &mut q).unwrap();
        assert_eq!(q, [0, 0, 0], "{level}");
        quant::quantize_u8_with(level, &[f32::NAN, f32::INFINITY, 1e30], 1.0, 127, &mut q).unwrap();
        assert_eq!(q, [255, 255, 255], "{level}");
        let mut q = [0i8; 3];
        let src = [f32::NEG_INFINITY, -2_147_483_648.0, -2_147_483_520.0];
        quant::quantize_i8_with(level, &src, 1.0, -1, &mut q).unwrap();
        assert_eq!(q, [127, 127, -128], "{level}");
    }
}

/// Quantizes `src[offset..offset + len]` into the middle of a canary-filled buffer.
fn tail_case(level: Isa, src: &[f32], offset: usize, len: usize, scale: f32, zp: i32) {
    let input = &src[offset..offset + len];
    let mut buf = vec![0xa5u8; len + 96];
    let (head, rest) = buf.split_at_mut(32 + offset);
    quant::quantize_u8_with(level, input, scale, zp, &mut rest[..len]).unwrap();
    assert!(head.iter().all(|&b| b == 0xa5), "{level} wrote before dst");
    assert!(
        rest[len..].iter().all(|&b| b == 0xa5),
        "{level} wrote past dst (len {len})"
    );
    for (i, (&x, &q)) in input.iter().zip(&rest[..len]).enumerate() {
        let want = quantize_val(x, 1.0 / scale, zp, 0, 255);
        assert_eq!(
            i32::from(q),
            want,
            "{level} len={len} off={offset} i={i} x={x:e}"
        );
    }
    let mut signed = vec![0i8; len];
    quant::quantize_i8_with(level, input, scale, zp - 128, &mut signed).unwrap();
    for (i, (&x, &q)) in input.iter().zip(&signed).enumerate() {
        let want = quantize_val(x, 1.0 / scale, zp - 128, -128, 127);
        assert_eq!(
            i32::from(q),
            want,
            "{level} len={len} off={offset} i={i} x={x:e}"
        );
    }
}

#[test]
fn quantize_tails_and_misalignment() {
    // Rotate the specials so each tail length sees NaN/inf/halfway values in various lanes.
    let base = specials();
    let src: Vec<f32> = base.iter().cycle().skip(7).take(140).copied().collect();
    for level in levels() {
        for len in 0..=130 {
            for offset in 0..4 {
                for (scale, zp) in [(0.5, 128), (0.37, 0), (1.0, 255), (3.0, 131)] {
                    tail_case(level, &src, offset, len, scale, zp);
                }
            }
        }
    }
}

#[test]
fn dequantize_every_byte_every_zero_point() {
    let bytes: Vec<u8> = (0..=255).collect();
    let signed: Vec<i8> = (-128..=127).collect();
    let scales = [1.0, 0.37, f32::from_bits(1), 3e38, 1e-3];
    for level in levels() {
        let mut out = vec![0.0f32; 256];
        for scale in scales {
            for zp in u8_zero_points() {
                quant::dequantize_u8_with(level, &bytes, scale, zp, &mut out).unwrap();
                for (&q, &x) in bytes.iter().zip(&out) {
                    let want = dequantize_val(i32::from(q), scale, zp);
                    assert_eq!(
                        x.to_bits(),
                        want.to_bits(),
                        "{level} q={q} scale={scale} zp={zp}"
                    );
                }
            }
            for zp in i8_zero_points() {
                quant::dequantize_i8_with(level, &signed, scale, zp, &mut out).unwrap();
                for (&q, &x) in signed.iter().zip(&out) {
                    let want = dequantize_val(i32::from(q), scale, zp);
                    assert_eq!(
                        x.to_bits(),
                        want.to_bits(),
                        "{level} q={q} scale={scale} zp={zp}"
                    );
                }
            }
        }
    }
}

#[test]
fn dequantize_tails_with_canaries() {
    let bytes: Vec<u8> = (0..140u32).map(|i| (i * 37 % 256) as u8).collect();
    let canary = f32::from_bits(0x7fc0_dead);
    for level in levels() {
        for len in 0..=130 {
            for offset in 0..4 {
                let input = &bytes[offset..offset + len];
                let mut buf = vec![canary; len + 40];
                let (head, rest) = buf.split_at_mut(16 + offset);
                quant::dequantize_u8_with(level, input, 0.37, 100, &mut rest[..len]).unwrap();
                assert!(
                    head.iter()
                        .chain(&rest[len..])
                        .all(|x| x.to_bits() == canary.to_bits())
                );
                for (&q, &x) in input.iter().zip(&rest[..len]) {
                    assert_eq!(
                        x,
                        dequantize_val(i32::from(q), 0.37, 100),
                        "{level} len={len}"
                    );
                }
                let signed: &[i8] = bytemuck::cast_slice(input);
                quant::dequantize_i8_with(level, signed, 0.37, -3, &mut rest[..len]).unwrap();
                for (&q, &x) in signed.iter().zip(&rest[..len]) {
                    assert_eq!(
                        x,
                        dequantize_val(i32::from(q), 0.37, -3),
                        "{level} len={len}"
                    );
                }
            }
        }
    }
}

#[test]
fn bad_arguments_are_typed_errors() {
    let mut u = [0u8; 2];
    let mut i = [0i8; 2];
    let mut f = [0.0f32; 2];
    for scale in [0.0, -1.0, f32::NAN, f32::INFINITY] {
        let err = quant::quantize_u8(&[1.0, 2.0], scale, 0, &mut u).unwrap_err();
        assert!(matches!(err, QuantError::InvalidScale { .. }), "{err}");
        assert!(err.to_string().contains(&scale.to_string()), "{err}");
    }
    assert_eq!(
        quant::quantize_u8(&[1.0, 2.0], 1.0, 256, &mut u),
        Err(QuantError::ZeroPointOutOfRange {
            zero_point: 256,
            min: 0,
            max: 255
        })
    );
    assert_eq!(
        quant::quantize_i8(&[1.0, 2.0], 1.0, -129, &mut i),
        Err(QuantError::ZeroPointOutOfRange {
            zero_point: -129,
            min: -128,
            max: 127
        })
    );
    assert_eq!(
        quant::dequantize_i8(&[1, 2, 3], 1.0, 0, &mut f),
        Err(QuantError::LengthMismatch { src: 3, dst: 2 })
    );
    let err = quant::dequantize_u8(&[1, 2], 1.0, -1, &mut f).unwrap_err();
    assert!(err.to_string().contains("-1"), "{err}");
}

#[test]
fn forcing_a_level_this_process_cannot_run_fails() {
    let runnable = isa::runnable();
    let mut u = [0u8; 1];
    for level in Isa::ALL {
        let got = quant::quantize_u8_with(level, &[1.0], 1.0, 0, &mut u);
        if runnable.contains(&level) {
            assert_eq!(got, Ok(()));
            assert_eq!(u, [1]);
        } else {
            assert_eq!(got, Err(QuantError::NotRunnable { isa: level }));
            assert!(got.unwrap_err().to_string().contains(level.name()));
        }
    }
}
