//! Forward values computed by hand (or from PyTorch's documented formulas) for each layer.

mod common;

use common::{assert_all_close, run};
use qnn::float::*;
use qnn::qtensor::Tensor;
use qnn::{BufferRef, Module, ModuleKind, QnnError, Value};

fn t(shape: &[usize], data: &[f32]) -> Tensor<f32> {
    Tensor::new(shape, data.to_vec()).unwrap()
}

#[test]
fn linear_computes_x_wt_plus_b_on_leading_dims() {
    let w = t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let mut lin = Linear::from_tensors(w, Some(t(&[2], &[0.5, -1.0]))).unwrap();
    let y = run(&mut lin, &t(&[2, 1, 2], &[1.0, 1.0, 2.0, -1.0]));
    assert_eq!(y.shape(), &[2, 1, 2]);
    assert_eq!(y.data(), &[3.5, 6.0, 0.5, 1.0]);
    assert_eq!(lin.kind(), ModuleKind::Linear);
}

#[test]
fn conv2d_values_with_padding_stride_and_groups() {
    let x = Tensor::from_fn(&[1, 1, 3, 3], |i| (i + 1) as f32);
    let ones = Tensor::from_fn(&[1, 1, 2, 2], |_| 1.0);
    let mut conv = Conv2d::from_tensors(Conv2dConfig::new(1, 1, 2), ones.clone(), None).unwrap();
    assert_eq!(run(&mut conv, &x).data(), &[12.0, 16.0, 24.0, 28.0]);

    // padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1)
    let mut conv = Conv2d::from_tensors(
        Conv2dConfig::new(1, 1, 2).padding(1).stride(2),
        ones,
        Some(t(&[1], &[0.5])),
    )
    .unwrap();
    let y = run(&mut conv, &x);
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[1.5, 5.5, 11.5, 28.5]);

    // two groups of one channel: each output sees only its own input channel
    let x2 = Tensor::from_fn(&[1, 2, 1, 1], |i| [2.0, 5.0][i]);
    let w = t(&[2, 1, 1, 1], &[10.0, 100.0]);
    let mut conv = Conv2d::from_tensors(Conv2dConfig::new(2, 2, 1).groups(2), w, None).unwrap();
    assert_eq!(run(&mut conv, &x2).data(), &[20.0, 500.0]);

    // dilation 2 on a 3x3 kernel over 5x5 reads the corners and centre lines
    let x5 = Tensor::from_fn(&[1, 1, 5, 5], |i| i as f32);
    let mut conv = Conv2d::from_tensors(
        Conv2dConfig::new(1, 1, 2).dilation(2),
        Tensor::from_fn(&[1, 1, 2, 2], |_| 1.0),
        None,
    )
    .unwrap();
    let y = run(&mut conv, &x5);
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    assert_eq!(y.data()[0], 0.0 + 2.0 + 10.0 + 12.0);
}

#[test]
fn activations_at_known_points() {
    let x = t(&[5], &[-4.0, -1.0, 0.0, 1.0, 7.0]);
    let cases: Vec<(Box<dyn Module>, [f32; 5])> = vec![
        (Box::new(ReLU::new()), [0.0, 0.0, 0.0, 1.0, 7.0]),
        (Box::new(ReLU6::new()), [0.0, 0.0, 0.0, 1.0, 6.0]),
        (Box::new(LeakyReLU::new(0.1)), [-0.4, -0.1, 0.0, 1.0, 7.0]),
        (
            Box::new(Elu::new(1.0)),
            [-0.981_684_4, -0.632_120_56, 0.0, 1.0, 7.0],
        ),
        (
            Box::new(Hardswish::new()),
            [0.0, -1.0 / 3.0, 0.0, 2.0 / 3.0, 7.0],
        ),
        (
            Box::new(Hardsigmoid::new()),
            [0.0, 1.0 / 3.0, 0.5, 2.0 / 3.0, 1.0],
        ),
        (
            Box::new(Gelu::new()),
            [-1.266_968_6e-4, -0.158_655_25, 0.0, 0.841_344_7, 7.0],
        ),
        (
            Box::new(SiLU::new()),
            [-0.071_944_81, -0.268_941_43, 0.0, 0.731_058_6, 6.993_622],
        ),
        (
            Box::new(Sigmoid::new()),
            [0.017_986_21, 0.268_941_43, 0.5, 0.731_058_6, 0.999_088_9],
        ),
        (
            Box::new(Tanh::new()),
            [-0.999_329_3, -0.761_594_2, 0.0, 0.761_594_2, 0.999_998_3],
        ),
    ];
    for (mut m, want) in cases {
        let y = run(m.as_mut(), &x);
        assert_all_close(y.data(), &want, 2e-6);
    }
    let nan = run(&mut ReLU::new(), &t(&[1], &[f32::NAN]));
    assert!(nan.data()[0].is_nan(), "relu keeps NaN as PyTorch does");
}

#[test]
fn softmax_and_log_softmax_values() {
    let x = t(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, 1000.0]);
    let y = run(&mut Softmax::new(-1), &x);
    assert_all_close(
        y.data(),
        &[
            0.090_030_57,
            0.244_728_48,
            0.665_240_94,
            1.0 / 3.0,
            1.0 / 3.0,
            1.0 / 3.0,
        ],
        1e-6,
    );
    let y = run(&mut LogSoftmax::new(1), &x);
    assert_all_close(&y.data()[..3], &[-2.407_606, -1.407_606, -0.407_606], 1e-6);
    // along dim 0 of a column
    let y = run(&mut Softmax::new(0), &t(&[2, 1], &[0.0, 0.0]));
    assert_eq!(y.data(), &[0.5, 0.5]);
    assert_eq!(
        Softmax::new(2).forward(&Value::F32(x)).unwrap_err(),
        QnnError::DimOutOfRange {
            module: "Softmax",
            dim: 2,
            ndim: 2
        }
    );
}

#[test]
fn pooling_values() {
    let x = Tensor::from_fn(&[1, 1, 4, 4], |i| i as f32);
    assert_eq!(
        run(&mut MaxPool2d::new(2).unwrap(), &x).data(),
        &[5.0, 7.0, 13.0, 15.0]
    );
    assert_eq!(
        run(&mut AvgPool2d::new(2).unwrap(), &x).data(),
        &[2.5, 4.5, 10.5, 12.5]
    );
    // ceil mode adds a partial last window: 4 -> 2 with k=3,s=2 (floor: 1)
    let mut ceil = MaxPool2d::with_options([3, 3], [2, 2], [0, 0], [1, 1], true).unwrap();
    assert_eq!(run(&mut ceil, &x).data(), &[10.0, 11.0, 14.0, 15.0]);
    // padding 1, count_include_pad true vs false on the corner window {0}
    let mut inc = AvgPool2d::with_options([2, 2], [2, 2], [1, 1], false, true, None).unwrap();
    let mut exc = AvgPool2d::with_options([2, 2], [2, 2], [1, 1], false, false, None).unwrap();
    assert_eq!(run(&mut inc, &x).data()[0], 0.0 / 4.0);
    assert_eq!(run(&mut inc, &x).data()[1], (1.0 + 2.0) / 4.0);
    assert_eq!(run(&mut exc, &x).data()[1], (1.0 + 2.0) / 2.0);
    // adaptive: 5 -> 3 uses windows [0,2), [1,4), [3,5)
    let row = Tensor::from_fn(&[1, 1, 1, 5], |i| i as f32);
    let y = run(&mut AdaptiveAvgPool2d::new([1, 3]).unwrap(), &row);
    assert_all_close(y.data(), &[0.5, 2.0, 3.5], 0.0);
}

#[test]
fn batchnorm_training_updates_running_stats_like_pytorch() {
    let mut bn = BatchNorm1d::new(BatchNormConfig::new(1));
    let x = t(&[4, 1], &[1.0, 2.0, 3.0, 4.0]);
    let y = run(&mut bn, &x);
    let s = (1.25f32 + 1e-5).sqrt();
    assert_all_close(y.data(), &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-6);
    assert_all_close(bn.running_mean().unwrap().data(), &[0.25], 1e-7);
    // unbiased variance 5/3 enters the running average
    assert_all_close(
        bn.running_var().unwrap().data(),
        &[0.9 + 0.1 * 5.0 / 3.0],
        1e-7,
    );
    assert_eq!(bn.num_batches_tracked(), Some(1));
    let mut names = Vec::new();
    bn.visit_buffers(&mut |n, b| names.push((n.to_string(), matches!(b, BufferRef::I64(_)))));
    assert_eq!(
        names,
        [
            ("running_mean".into(), false),
            ("running_var".into(), false),
            ("num_batches_tracked".into(), true)
        ]
    );

    bn.eval();
    let y = run(&mut bn, &t(&[1, 1], &[0.25]));
    assert_eq!(y.data(), &[0.0]);
    assert_eq!(
        bn.num_batches_tracked(),
        Some(1),
        "eval does not count batches"
    );

    // momentum None: cumulative moving average
    let mut cma = BatchNorm2d::new(BatchNormConfig {
        momentum: None,
        ..BatchNormConfig::new(1)
    });
    run(&mut cma, &Tensor::from_fn(&[1, 1, 1, 2], |i| [2.0, 4.0][i]));
    assert_all_close(cma.running_mean().unwrap().data(), &[3.0], 0.0);
    run(&mut cma, &Tensor::from_fn(&[1, 1, 1, 2], |i| [6.0, 8.0][i]));
    assert_all_close(cma.running_mean().unwrap().data(), &[5.0], 0.0);
}

#[test]
fn layernorm_normalizes_trailing_dims() {
    let mut ln = LayerNorm::new(&[4], 1e-5, true);
    let y = run(&mut ln, &t(&[1, 4], &[1.0, 2.0, 3.0, 4.0]));
    let s = (1.25f32 + 1e-5).sqrt();
    assert_all_close(y.data(), &[-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s], 1e-6);
}

#[test]
fn flatten_and_sequential_names() {
    let y = run(&mut Flatten::default(), &Tensor::zeros(&[2, 3, 4, 5]));
    assert_eq!(y.shape(), &[2, 60]);
    let y = run(&mut Flatten::new(-2, -1), &Tensor::zeros(&[2, 3, 4]));
    assert_eq!(y.shape(), &[2, 12]);

    let mut rng = qnn::init::Rng::new(3);
    let seq = Sequential::new()
        .push(Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng).unwrap())
        .push(BatchNorm2d::new(BatchNormConfig::new(2)))
        .push_named("head", Linear::new(2, 2, false, &mut rng));
    let mut names = Vec::new();
    seq.visit_params(&mut |n, p| names.push(format!("{n}{:?}", p.shape())));
    seq.visit_buffers(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        [
            "0.weight[2, 1, 3, 3]",
            "0.bias[2]",
            "1.weight[2]",
            "1.bias[2]",
            "head.weight[2, 2]",
            "1.running_mean",
            "1.running_var",
            "1.num_batches_tracked"
        ]
    );
    let dynm: &dyn Module = &seq;
    assert_eq!(dynm.num_parameters(), 18 + 2 + 2 + 2 + 4);
    assert!(dynm.downcast_ref::<Sequential>().is_some());
    assert!(dynm.downcast_ref::<Linear>().is_none());
}

#[test]
fn default_init_bounds_follow_fan_in() {
    let mut rng = qnn::init::Rng::new(4);
    let lin = Linear::new(100, 50, true, &mut rng);
    let bound = 1.0 / 10.0;
    let w = lin.weight.value.data();
    assert!(w.iter().all(|v| v.abs() <= bound));
    let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        max > 0.95 * bound,
        "kaiming_uniform(a=sqrt 5) spans ±1/sqrt(fan_in); max |w| = {max}"
    );
    let mean = w.iter().sum::<f32>() / w.len() as f32;
    assert!(mean.abs() < 0.01, "mean {mean}");
    let conv = Conv2d::new(Conv2dConfig::new(4, 8, 3).groups(2), &mut rng).unwrap();
    let cb = 1.0 / ((2 * 9) as f32).sqrt(); // fan_in = in/groups * k*k
    assert!(
        conv.bias
            .as_ref()
            .unwrap()
            .value
            .data()
            .iter()
            .all(|v| v.abs() <= cb)
    );
    // same seed, same weights
    let again = Linear::new(100, 50, true, &mut qnn::init::Rng::new(4));
    assert_eq!(again.weight.value, lin.weight.value);
}

/// Every f32 parameter and buffer of `m` by name.
fn named_f32(m: &dyn Module) -> Vec<(String, Vec<f32>)> {
    let mut all = Vec::new();
    m.visit_params(&mut |n, p| all.push((n.to_string(), p.value.data().to_vec())));
    m.visit_buffers(&mut |n, b| {
        if let qnn::BufferRef::F32(t) = b {
            all.push((n.to_string(), t.data().to_vec()));
        }
    });
    all
}

/// Asserts `|v| ≤ bound` everywhere and that the values reach past 90 % of it (a uniform draw
/// over the whole range, not a narrower one).
fn assert_uniform_bound(what: &str, v: &[f32], bound: f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(
        max <= bound && max > 0.9 * bound,
        "{what}: max |v| {max}, bound {bound}"
    );
}

#[test]
fn default_init_of_embedding_attention_norms_and_conv_transpose() {
    let mut rng = qnn::init::Rng::new(12);
    // Embedding: N(0, 1) (PyTorch's normal_), the padding_idx row zero.
    let e = Embedding::new(2000, 8, Some(3), &mut rng).unwrap();
    let w = e.weight.value.data();
    assert!(w[24..32].iter().all(|&v| v == 0.0), "padding row");
    let rest: Vec<f64> = w[..24]
        .iter()
        .chain(&w[32..])
        .map(|&v| f64::from(v))
        .collect();
    let mean = rest.iter().sum::<f64>() / rest.len() as f64;
    let var = rest.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / rest.len() as f64;
    assert!(
        mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
        "mean {mean}, var {var}"
    );

    // MultiheadAttention: in_proj xavier_uniform over [3E, E] (bound √(6 / (E + 3E))),
    // out_proj as nn.Linear (bound 1/√E), both biases zero.
    let mha = MultiheadAttention::new(16, 4, true, false, &mut rng).unwrap();
    assert_uniform_bound(
        "in_proj_weight",
        mha.in_proj_weight.value.data(),
        (6.0f32 / 64.0).sqrt(),
    );
    assert_uniform_bound("out_proj.weight", mha.out_proj_weight.value.data(), 0.25);
    for b in [&mha.in_proj_bias, &mha.out_proj_bias] {
        assert!(b.as_ref().unwrap().value.data().iter().all(|&v| v == 0.0));
    }

    // Norms: weight 1, bias 0, running mean 0, running var 1.
    let want = |name: &str| match name {
        "weight" | "running_var" => 1.0,
        "bias" | "running_mean" => 0.0,
        other => panic!("unexpected {other}"),
    };
    let norms: [Box<dyn Module>; 3] = [
        Box::new(BatchNorm2d::new(BatchNormConfig::new(5))),
        Box::new(BatchNorm1d::new(BatchNormConfig::new(5))),
        Box::new(LayerNorm::new(&[5], 1e-5, true)),
    ];
    for m in &norms {
        let named = named_f32(m.as_ref());
        assert!(named.len() >= 2);
        for (name, v) in named {
            assert!(
                v.len() == 5 && v.iter().all(|&x| x == want(&name)),
                "{name}: {v:?}"
            );
        }
    }

    // ConvTranspose2d: PyTorch's fan_in is weight.size(1) · kh · kw = out/groups · k², for the
    // weight (kaiming_uniform a=√5) and the bias alike.
    let cfg = ConvTranspose2dConfig {
        groups: 2,
        ..ConvTranspose2dConfig::new(4, 6, 3)
    };
    let ct = ConvTranspose2d::new(cfg, &mut rng).unwrap();
    let bound = 1.0 / (27.0f32).sqrt();
    assert_eq!(ct.weight.value.shape(), &[4, 3, 3, 3]);
    assert_uniform_bound("conv_transpose weight", ct.weight.value.data(), bound);
    let b = ct.bias.as_ref().unwrap().value.data();
    assert!(b.iter().all(|v| v.abs() <= bound), "{b:?}");
}
