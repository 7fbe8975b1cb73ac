//! The float Linear and MultiheadAttention projections on every kernel path (one row, 2..=3
//! rows one by one, the unpacked-weight kernel for 4..=64 rows and, on its AVX-512 family, above;
//! otherwise the blocked GEMM above), f32 and halved weights:
//! outputs equal an f64 reference, and after an optimizer step or a state-dict load the next
//! forward uses the new weights (nothing is cached between calls).

mod common;

use common::{assert_all_close, rand_tensor};
use qnn::float::*;
use qnn::init::Rng;
use qnn::optim::{Optimizer, Sgd, SgdConfig};
use qnn::qtensor::Tensor;
use qnn::state_dict::{load_state_dict, state_dict};
use qnn::{Module, Value};

/// `x wᵀ + b` in f64, rounded to f32.
fn reference(x: &Tensor<f32>, w: &[f32], b: Option<&[f32]>, outf: usize) -> Vec<f32> {
    let inf = w.len() / outf;
    let rows = x.numel() / inf;
    let mut out = Vec::with_capacity(rows * outf);
    for r in 0..rows {
        let xr = &x.data()[r * inf..(r + 1) * inf];
        for j in 0..outf {
            let dot: f64 = xr
                .iter()
                .zip(&w[j * inf..(j + 1) * inf])
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            out.push((dot + b.map_or(0.0, |b| f64::from(b[j]))) as f32);
        }
    }
    out
}

fn forward(m: &mut dyn Module, x: &Tensor<f32>) -> Tensor<f32> {
    match m.forward(&Value::F32(x.clone())).unwrap() {
        Value::F32(t) => t,
        other => panic!("unexpected {}", other.kind_name()),
    }
}

/// Row counts on both sides of every kernel switch (1 | 2..=3 one by one | 4..=64, or
/// 4..=128 when in > out | above).
const ROWS: [usize; 9] = [1, 2, 3, 4, 5, 16, 64, 65, 130];

#[test]
fn linear_matches_the_reference_on_every_path() {
    let mut rng = Rng::new(3);
    for (inf, outf) in [(37, 21), (600, 40), (21, 37)] {
        for bias in [true, false] {
            let mut lin = Linear::new(inf, outf, bias, &mut rng);
            let w = lin.weight.value.data().to_vec();
            let b = lin.bias.as_ref().map(|b| b.value.data().to_vec());
            let mut half = lin.clone();
            half.half().unwrap();
            let w16: Vec<f32> = half
                .weight_f16()
                .unwrap()
                .data()
                .iter()
                .map(|v| v.to_f32())
                .collect();
            for rows in ROWS {
                // a 3-d input: rows = 1 * rows
                let x = rand_tensor(&[1, rows, inf], -1.0, 1.0, rows as u64);
                let y = forward(&mut lin, &x);
                assert_eq!(y.shape(), &[1, rows, outf]);
                let tol = 2e-6 * inf as f32;
                assert_all_close(y.data(), &reference(&x, &w, b.as_deref(), outf), tol);
                let y16 = forward(&mut half, &x);
                assert_all_close(y16.data(), &reference(&x, &w16, b.as_deref(), outf), tol);
            }
        }
    }
}

#[test]
fn linear_forward_after_an_optimizer_step_uses_the_new_weight() {
    let mut rng = Rng::new(11);
    let (inf, outf, rows) = (48, 24, 16);
    let mut lin = Linear::new(inf, outf, true, &mut rng);
    let x = rand_tensor(&[rows, inf], -1.0, 1.0, 12);
    let mut sgd = Sgd::new(SgdConfig::new(0.5)).unwrap();
    for step in 0..3 {
        let w = lin.weight.value.data().to_vec();
        let b = lin.bias.as_ref().unwrap().value.data().to_vec();
        let y = forward(&mut lin, &x);
        assert_all_close(y.data(), &reference(&x, &w, Some(&b), outf), 1e-4);
        let g = Tensor::new(&[rows, outf], y.data().to_vec()).unwrap();
        lin.backward(&Value::F32(g)).unwrap();
        sgd.step(&mut lin).unwrap();
        lin.visit_params_mut(&mut |_, p| p.zero_grad());
        assert_ne!(
            lin.weight.value.data(),
            &w[..],
            "step {step} changed the weight"
        );
    }
    // a state-dict load and a direct write of the public field are seen as well
    let mut other = Linear::new(inf, outf, true, &mut rng);
    load_state_dict(&mut lin, &state_dict(&other), true).unwrap();
    let want = forward(&mut other, &x);
    assert_eq!(forward(&mut lin, &x).data(), want.data());
    lin.weight.value.data_mut()[5] += 1.0;
    let (w, b) = (lin.weight.value.data().to_vec(), other.bias.unwrap().value);
    let y = forward(&mut lin, &x);
    assert_all_close(y.data(), &reference(&x, &w, Some(b.data()), outf), 1e-4);
    assert_ne!(y.data(), want.data());
}

#[test]
fn halved_attention_equals_attention_on_the_rounded_weights() {
    let mut rng = Rng::new(5);
    let (e, heads) = (32, 4);
    for (l, n) in [(1, 1), (16, 1), (16, 4), (16, 9)] {
        let mut mha = MultiheadAttention::new(e, heads, true, true, &mut rng).unwrap();
        mha.visit_params_mut(&mut |name, p| {
            if name.contains("bias") {
                rng.fill_uniform(p.value.data_mut(), -0.3, 0.3);
            }
        });
        let mut half = mha.clone();
        half.half().unwrap();
        // the same module with its weights rounded to f16 values but stored as f32
        let mut rounded = mha.clone();
        rounded.visit_params_mut(&mut |name, p| {
            if name.ends_with("weight") {
                p.value
                    .data_mut()
                    .iter_mut()
                    .for_each(|v| *v = half::f16::from_f32(*v).to_f32());
            }
        });
        let x = rand_tensor(&[n, l, e], -1.0, 1.0, (l * n) as u64);
        let run = |m: &mut MultiheadAttention| match m.forward(&Value::F32(x.clone())).unwrap() {
            Value::Tuple(v) => v[0].as_f32("test").unwrap().clone(),
            other => panic!("unexpected {}", other.kind_name()),
        };
        let (got, want) = (run(&mut half), run(&mut rounded));
        assert_eq!(got.shape(), &[n, l, e]);
        assert_all_close(got.data(), want.data(), 1e-5);
    }
}
