//! MaxPool2d's in-bounds fast paths (2x2 stride 2, and other unpadded windows) against a naive
//! oracle: values, and where backward sends the gradient (the first maximum; NaN is maximal).

use qnn::float::MaxPool2d;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

/// Naive max pooling without padding: maxima and the flat index of each first maximum.
fn oracle(x: &Tensor<f32>, k: [usize; 2], s: [usize; 2], d: [usize; 2]) -> (Vec<f32>, Vec<usize>) {
    let [n, c, h, w] = x.shape().try_into().unwrap();
    let oh = (h - d[0] * (k[0] - 1) - 1) / s[0] + 1;
    let ow = (w - d[1] * (k[1] - 1) - 1) / s[1] + 1;
    let (mut vals, mut idxs) = (Vec::new(), Vec::new());
    for p in 0..n * c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best: Option<(f32, usize)> = None;
                for i in 0..k[0] {
                    for j in 0..k[1] {
                        let idx = p * h * w + (oy * s[0] + i * d[0]) * w + ox * s[1] + j * d[1];
                        let v = x.data()[idx];
                        best = match best {
                            Some((b, _)) if b.is_nan() => best,
                            Some((b, _)) if v <= b => best,
                            _ => Some((v, idx)),
                        };
                    }
                }
                let (v, i) = best.unwrap();
                vals.push(v);
                idxs.push(i);
            }
        }
    }
    (vals, idxs)
}

/// Inputs with ties (values on a coarse grid) and a few NaNs.
fn input(shape: &[usize], seed: usize) -> Tensor<f32> {
    Tensor::from_fn(shape, |i| {
        let r = (i * 2654435761 + seed * 97) % 1009;
        if r.is_multiple_of(61) {
            f32::NAN
        } else {
            (r % 7) as f32 - 3.0
        }
    })
}

fn check(k: [usize; 2], s: [usize; 2], d: [usize; 2], shape: &[usize], seed: usize) {
    let x = input(shape, seed);
    let mut pool = MaxPool2d::with_options(k, s, [0, 0], d, false).unwrap();
    let y = pool
        .forward(&Value::F32(x.clone()))
        .unwrap()
        .into_f32("t")
        .unwrap();
    let (vals, idxs) = oracle(&x, k, s, d);
    assert_eq!(y.numel(), vals.len());
    for (a, b) in y.data().iter().zip(&vals) {
        assert!(
            a == b || (a.is_nan() && b.is_nan()),
            "{a} vs {b} ({k:?} {s:?} {d:?})"
        );
    }
    // backward: gradient i + 1 lands on the oracle's index of output i
    let g = Tensor::from_fn(y.shape(), |i| (i + 1) as f32);
    let dx = pool
        .backward(&Value::F32(g))
        .unwrap()
        .into_f32("t")
        .unwrap();
    let mut expected = vec![0.0f32; x.numel()];
    for (i, &at) in idxs.iter().enumerate() {
        expected[at] += (i + 1) as f32;
    }
    assert_eq!(dx.data(), &expected[..], "{k:?} {s:?} {d:?}");
}

#[test]
fn two_by_two_stride_two_matches_the_oracle() {
    for seed in 0..4 {
        check([2, 2], [2, 2], [1, 1], &[2, 3, 8, 10], seed);
        check([2, 2], [2, 2], [1, 1], &[1, 2, 7, 9], seed); // odd sides: last row/col unused
    }
}

#[test]
fn other_unpadded_windows_match_the_oracle() {
    for seed in 0..3 {
        check([3, 3], [2, 2], [1, 1], &[1, 2, 9, 9], seed);
        check([2, 3], [1, 2], [2, 1], &[2, 1, 7, 8], seed);
        check([1, 1], [1, 1], [1, 1], &[1, 1, 3, 3], seed);
    }
}
