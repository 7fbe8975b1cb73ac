//! Float GroupNorm and InstanceNorm2d: forward against an independent per-group formula and
//! LayerNorm, gradients against central differences, and their errors.

mod common;

use common::{check_gradients, rand_tensor, run};
use qnn::float::{GroupNorm, InstanceNorm2d, LayerNorm};
use qnn::qtensor::Tensor;
use qnn::{Module, QnnError, Value};

/// Direct f64 group normalization of `(N, C, S)` data with per-channel affine.
fn naive(x: &Tensor<f32>, groups: usize, eps: f64, w: &[f32], b: &[f32]) -> Vec<f32> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s: usize = x.shape()[2..].iter().product();
    let cpg = c / groups;
    let mut out = vec![0.0f32; x.numel()];
    for i in 0..n {
        for g in 0..groups {
            let idx: Vec<usize> = (g * cpg..(g + 1) * cpg)
                .flat_map(|ch| (0..s).map(move |k| (i * c + ch) * s + k))
                .collect();
            let vals: Vec<f64> = idx.iter().map(|&j| f64::from(x.data()[j])).collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            for (&j, v) in idx.iter().zip(&vals) {
                let ch = (j / s) % c;
                out[j] = ((v - mean) / (var + eps).sqrt()) as f32 * w[ch] + b[ch];
            }
        }
    }
    out
}

fn set_affine(m: &mut dyn Module, w: &[f32], b: &[f32]) {
    m.visit_params_mut(&mut |name, p| {
        let src = if name == "weight" { w } else { b };
        p.value.data_mut().copy_from_slice(src);
    });
}

#[test]
fn group_norm_forward_matches_the_per_group_formula() {
    let x = rand_tensor(&[2, 6, 3, 4], -2.0, 3.0, 5);
    let w = [0.5, 1.5, -1.0, 2.0, 1.0, 0.25];
    let b = [0.1, -0.2, 0.3, 0.0, 1.0, -1.0];
    let mut gn = GroupNorm::new(3, 6, 1e-5, true).unwrap();
    set_affine(&mut gn, &w, &b);
    let y = run(&mut gn, &x);
    let want = naive(&x, 3, 1e-5, &w, &b);
    for (i, (g, e)) in y.data().iter().zip(&want).enumerate() {
        assert!((g - e).abs() < 1e-5, "[{i}] {g} vs {e}");
    }
    let mut names = Vec::new();
    gn.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(names, ["weight", "bias"]);
    assert_eq!(gn.kind(), qnn::ModuleKind::GroupNorm);
    assert_eq!(
        InstanceNorm2d::new(2, 1e-5, false).unwrap().kind(),
        qnn::ModuleKind::InstanceNorm2d
    );
}

#[test]
fn one_group_without_affine_is_layer_norm_over_c_h_w() {
    let x = rand_tensor(&[3, 4, 2, 5], -1.0, 1.0, 6);
    let y = run(&mut GroupNorm::new(1, 4, 1e-5, false).unwrap(), &x);
    let z = run(&mut LayerNorm::new(&[4, 2, 5], 1e-5, false), &x);
    common::assert_all_close(y.data(), z.data(), 1e-5);
}

#[test]
fn instance_norm_is_group_norm_with_one_channel_per_group() {
    let x = rand_tensor(&[2, 3, 4, 4], -1.0, 2.0, 7);
    let w = [1.5, -0.5, 2.0];
    let b = [0.0, 0.5, -0.25];
    let mut inorm = InstanceNorm2d::new(3, 1e-3, true).unwrap();
    set_affine(&mut inorm, &w, &b);
    let mut gn = GroupNorm::new(3, 3, 1e-3, true).unwrap();
    set_affine(&mut gn, &w, &b);
    let (y, z) = (run(&mut inorm, &x), run(&mut gn, &x));
    assert_eq!(y.data(), z.data());
    let want = naive(&x, 3, 1e-3, &w, &b);
    common::assert_all_close(y.data(), &want, 1e-5);
    assert_eq!(inorm.num_features(), 3);
    assert_eq!(InstanceNorm2d::new(3, 1e-5, false).unwrap().weight(), None);
}

#[test]
fn gradients_match_central_differences() {
    let mut gn = GroupNorm::new(2, 4, 1e-5, true).unwrap();
    set_affine(&mut gn, &[1.2, -0.7, 0.9, 1.4], &[0.1, 0.2, -0.3, 0.0]);
    let x = rand_tensor(&[2, 4, 3], -1.0, 1.0, 8);
    assert!(check_gradients(&mut gn, &x, 1e-2, 3e-3, 2e-2) > 24);
    let mut inorm = InstanceNorm2d::new(2, 1e-5, true).unwrap();
    let x = rand_tensor(&[2, 2, 2, 3], -1.0, 1.0, 9);
    assert!(check_gradients(&mut inorm, &x, 1e-2, 3e-3, 2e-2) > 24);
    let mut plain = GroupNorm::new(1, 2, 1e-5, false).unwrap();
    let x = rand_tensor(&[1, 2, 5], -1.0, 1.0, 10);
    assert_eq!(check_gradients(&mut plain, &x, 1e-2, 3e-3, 2e-2), 10);
}

#[test]
fn errors_are_typed() {
    assert!(matches!(
        GroupNorm::new(4, 6, 1e-5, true),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        GroupNorm::new(1, 2, -1.0, true),
        Err(QnnError::InvalidConfig { .. })
    ));
    let mut gn = GroupNorm::new(2, 4, 1e-5, true).unwrap();
    let x = Tensor::<f32>::zeros(&[1, 3, 2]);
    assert!(matches!(
        gn.forward(&Value::F32(x)),
        Err(QnnError::ShapeMismatch { .. })
    ));
    assert!(matches!(
        gn.backward(&Value::F32(Tensor::zeros(&[1, 4, 2]))),
        Err(QnnError::BackwardBeforeForward { .. })
    ));
    let mut inorm = InstanceNorm2d::new(2, 1e-5, false).unwrap();
    assert!(matches!(
        inorm.forward(&Value::F32(Tensor::zeros(&[2, 2, 3]))),
        Err(QnnError::WrongRank { .. })
    ));
}
