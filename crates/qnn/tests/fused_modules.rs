//! The fused float modules equal the chain of their parts: same outputs, same input and
//! parameter gradients, PyTorch's state-dict names, and folded eval-mode conv+bn within f32
//! rounding of conv then bn.

use qnn::float::{
    BatchNorm1d, BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, Conv2d, Conv2dConfig, Linear,
    ReLU, Sequential,
};
use qnn::fused::*;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, QnnError, Value};

fn input(shape: &[usize], seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.uniform(-1.5, 1.5)).collect();
    Value::F32(Tensor::new(shape, v).unwrap())
}

fn params(m: &dyn Module) -> Vec<(String, Vec<f32>, Vec<f32>)> {
    let mut out = Vec::new();
    m.visit_params(&mut |n, p| {
        out.push((
            n.to_string(),
            p.value.data().to_vec(),
            p.grad.data().to_vec(),
        ))
    });
    out
}

/// Runs forward + backward (train and eval) on both and asserts identical results.
fn same_as_chain(mut fused: Box<dyn Module>, mut chain: Sequential, shape: &[usize]) {
    for train in [true, false] {
        fused.train(train);
        chain.train(train);
        let x = input(shape, 3);
        let y1 = fused.forward(&x).unwrap();
        let y2 = chain.forward(&x).unwrap();
        assert_eq!(y1, y2, "{:?} forward (train={train})", fused.kind());
        let gy = input(y1.shape().unwrap(), 4);
        fused.zero_grad();
        chain.zero_grad();
        assert_eq!(fused.backward(&gy).unwrap(), chain.backward(&gy).unwrap());
        assert_eq!(params(fused.as_ref()), params(&chain));
    }
    let (mut b1, mut b2) = (Vec::new(), Vec::new());
    fused.visit_buffers(&mut |n, _| b1.push(n.to_string()));
    chain.visit_buffers(&mut |n, _| b2.push(n.to_string()));
    assert_eq!(b1, b2);
}

fn conv2d(rng: &mut Rng) -> Conv2d {
    Conv2d::new(Conv2dConfig::new(2, 3, 3).padding(1), rng).unwrap()
}

fn conv1d(rng: &mut Rng) -> Conv1d {
    Conv1d::new(Conv1dConfig::new(2, 3, 3), rng).unwrap()
}

fn bn2() -> BatchNorm2d {
    BatchNorm2d::new(BatchNormConfig::new(3))
}

fn bn1() -> BatchNorm1d {
    BatchNorm1d::new(BatchNormConfig::new(3))
}

#[test]
fn every_fused_module_equals_its_chain() {
    let mut rng = Rng::new(0);
    let (c2, c1, lin) = (
        conv2d(&mut rng),
        conv1d(&mut rng),
        Linear::new(4, 3, true, &mut rng),
    );
    let seq2 = |a: &dyn Fn(Sequential) -> Sequential| a(Sequential::new());
    same_as_chain(
        Box::new(ConvReLU2d::new(c2.clone(), ReLU::new())),
        seq2(&|s| s.push(c2.clone()).push(ReLU::new())),
        &[2, 2, 5, 4],
    );
    same_as_chain(
        Box::new(ConvBn2d::new(c2.clone(), bn2()).unwrap()),
        seq2(&|s| s.push(c2.clone()).push(bn2())),
        &[2, 2, 5, 4],
    );
    same_as_chain(
        Box::new(ConvBnReLU2d::new(c2.clone(), bn2(), ReLU::new()).unwrap()),
        seq2(&|s| s.push(c2.clone()).push(bn2()).push(ReLU::new())),
        &[2, 2, 5, 4],
    );
    same_as_chain(
        Box::new(ConvReLU1d::new(c1.clone(), ReLU::new())),
        seq2(&|s| s.push(c1.clone()).push(ReLU::new())),
        &[2, 2, 7],
    );
    same_as_chain(
        Box::new(ConvBn1d::new(c1.clone(), bn1()).unwrap()),
        seq2(&|s| s.push(c1.clone()).push(bn1())),
        &[2, 2, 7],
    );
    same_as_chain(
        Box::new(ConvBnReLU1d::new(c1.clone(), bn1(), ReLU::new()).unwrap()),
        seq2(&|s| s.push(c1.clone()).push(bn1()).push(ReLU::new())),
        &[2, 2, 7],
    );
    same_as_chain(
        Box::new(LinearReLU::new(lin.clone(), ReLU::new())),
        seq2(&|s| s.push(lin.clone()).push(ReLU::new())),
        &[5, 4],
    );
    same_as_chain(
        Box::new(LinearBn1d::new(lin.clone(), bn1()).unwrap()),
        seq2(&|s| s.push(lin.clone()).push(bn1())),
        &[5, 4],
    );
    same_as_chain(
        Box::new(BNReLU2d::new(bn2(), ReLU::new())),
        seq2(&|s| s.push(bn2()).push(ReLU::new())),
        &[2, 3, 2, 2],
    );
}

#[test]
fn kinds_names_and_parts() {
    let mut rng = Rng::new(1);
    let m = ConvBnReLU2d::new(conv2d(&mut rng), bn2(), ReLU::new()).unwrap();
    assert_eq!(m.kind(), ModuleKind::ConvBnReLU2d);
    let sd = qnn::state_dict::state_dict(&m);
    let keys: Vec<&str> = sd.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight"
        ]
    );
    assert_eq!(m.conv().config().out_channels, 3);
    assert_eq!(m.bn().config().num_features, 3);
    let mut m = m;
    m.eval();
    assert!(!m.conv().is_training() && !m.bn().is_training() && !m.relu().is_training());
    m.train(true);
    assert!(m.is_training() && m.bn().is_training());
    let (conv, bn, _relu) = m.into_parts();
    assert_eq!(conv.kind(), ModuleKind::Conv2d);
    assert_eq!(bn.kind(), ModuleKind::BatchNorm2d);

    let mut lr = LinearReLU::new(Linear::new(8, 4, true, &mut rng), ReLU::new());
    assert_eq!(lr.param_bytes(), 4 * (32 + 4));
    lr.half().unwrap();
    assert!(lr.linear().weight_f16().is_some());
    assert_eq!(lr.param_bytes(), 2 * 32 + 4 * 4);
    lr.linear_mut().bias = None;
    assert_eq!(lr.param_bytes(), 2 * 32);
}

#[test]
fn channel_mismatch_is_an_error() {
    let mut rng = Rng::new(2);
    let bad = BatchNorm2d::new(BatchNormConfig::new(5));
    assert!(matches!(
        ConvBn2d::new(conv2d(&mut rng), bad.clone()),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        ConvBnReLU2d::new(conv2d(&mut rng), bad, ReLU::new()),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        ConvBn1d::new(conv1d(&mut rng), BatchNorm1d::new(BatchNormConfig::new(4))),
        Err(QnnError::InvalidConfig { .. })
    ));
    assert!(matches!(
        LinearBn1d::new(
            Linear::new(4, 3, true, &mut rng),
            BatchNorm1d::new(BatchNormConfig::new(2))
        ),
        Err(QnnError::InvalidConfig { .. })
    ));
}

#[test]
fn folded_conv_bn_matches_conv_then_bn_in_eval() {
    let mut rng = Rng::new(5);
    let mut m = ConvBn2d::new(conv2d(&mut rng), bn2()).unwrap();
    // Give the batch norm non-trivial running statistics and affine parameters.
    for s in 0..3 {
        m.forward(&input(&[4, 2, 5, 4], 10 + s)).unwrap();
    }
    m.bn_mut()
        .visit_params_mut(&mut |_, p| p.value.data_mut().iter_mut().for_each(|v| *v += 0.3));
    m.eval();
    let folded = fuse_conv_bn_eval(m.conv(), m.bn()).unwrap();
    let x = input(&[2, 2, 5, 4], 20);
    let want = m.forward(&x).unwrap().into_f32("t").unwrap();
    let mut folded = folded;
    let got = folded.forward(&x).unwrap().into_f32("t").unwrap();
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() <= 1e-5 + 1e-5 * w.abs(), "{g} vs {w}");
    }
}
