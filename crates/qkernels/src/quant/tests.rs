//! The streaming (non-temporal store) paths, which the public functions take only for outputs
//! of [`STREAM_MIN_BYTES`](super::STREAM_MIN_BYTES) or more: every runnable family, streaming
//! or not, at every destination misalignment and many lengths, equals the scalar definitions.

use std::mem::MaybeUninit;

use qtensor::{dequantize_val, quantize_val};

use super::level::Level;
use crate::isa;

fn inputs(n: usize) -> Vec<f32> {
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        3e9,
        -3e9,
        2.5,
        -2.5,
    ];
    (0..n)
        .map(|i| match i % 13 {
            0..=7 => specials[i % 8],
            _ => (i as f32 - 300.0) * 0.75,
        })
        .collect()
}

#[test]
fn streaming_and_plain_stores_agree_with_the_definitions() {
    let src = inputs(700);
    let bytes: Vec<u8> = (0..700u32).map(|i| (i * 89 % 256) as u8).collect();
    for isa in isa::runnable() {
        let level = Level::for_isa(isa);
        for stream in [false, true] {
            for offset in 0..64 {
                for len in [0, 1, 31, 63, 64, 65, 130, 257, 600] {
                    let mut buf = vec![MaybeUninit::new(0xa5u8); 700];
                    let dst = &mut buf[offset..offset + len];
                    level.quantize::<false>(&src[..len], 0.5, 131, dst, stream);
                    for (i, d) in dst.iter().enumerate() {
                        // SAFETY: the buffer was initialized and the kernel only writes values.
                        let got = unsafe { d.assume_init() };
                        let want = quantize_val(src[i], 0.5, 131, 0, 255);
                        assert_eq!(
                            i32::from(got),
                            want,
                            "{isa} stream={stream} off={offset} i={i}"
                        );
                    }
                    level.quantize::<true>(&src[..len], 0.5, -7, dst, stream);
                    for (i, d) in dst.iter().enumerate() {
                        // SAFETY: as above.
                        let got = unsafe { d.assume_init() } as i8;
                        let want = quantize_val(src[i], 0.5, -7, -128, 127);
                        assert_eq!(
                            i32::from(got),
                            want,
                            "{isa} stream={stream} off={offset} i={i}"
                        );
                    }
                    let mut fbuf = vec![MaybeUninit::new(0.0f32); 700];
                    let fdst = &mut fbuf[offset / 4..offset / 4 + len];
                    level.dequantize::<false>(&bytes[..len], 0.37, 100, fdst, stream);
                    for (i, d) in fdst.iter().enumerate() {
                        // SAFETY: as above.
                        let got = unsafe { d.assume_init() };
                        let want = dequantize_val(i32::from(bytes[i]), 0.37, 100);
                        assert_eq!(got.to_bits(), want.to_bits(), "{isa} stream={stream} i={i}");
                    }
                    level.dequantize::<true>(&bytes[..len], 0.37, -3, fdst, stream);
                    for (i, d) in fdst.iter().enumerate() {
                        // SAFETY: as above.
                        let got = unsafe { d.assume_init() };
                        let want = dequantize_val(i32::from(bytes[i] as i8), 0.37, -3);
                        assert_eq!(got.to_bits(), want.to_bits(), "{isa} stream={stream} i={i}");
                    }
                }
            }
        }
    }
}
