//! `ceil_mode` pools through the eager flow (issue 6): `convert` keeps a float pool's
//! `ceil_mode` (and `count_include_pad`) in the quantized pool, the converted graph has the
//! float graph's output shape (one more, partial window per axis than floor mode) and tracks
//! its values, the node line prints `ceil_mode=True`, and a model file keeps it. The kernels'
//! bits are pinned against PyTorch by qkernels' `pool` goldens and qnn's `quantized_golden`.

use qflow::io::{graph_from_bytes, graph_to_bytes};
use qflow::numeric_suite::sqnr;
use qflow::passes::{convert, prepare};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qconfig};
use qflow::{Graph, SequentialBuilder, node_repr};
use qnn::float::{AvgPool2d, Conv2d, Conv2dConfig, MaxPool2d};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value, quantized};

fn float_graph() -> Graph {
    let mut rng = Rng::new(61);
    let mut g = SequentialBuilder::new("x")
        .add(
            "conv",
            Conv2d::new(Conv2dConfig::new(1, 4, 3), &mut rng).unwrap(),
        )
        .add(
            "maxpool",
            MaxPool2d::with_options([3, 3], [2, 2], [1, 1], [1, 1], true).unwrap(),
        )
        .add(
            "avgpool",
            AvgPool2d::with_options([2, 2], [2, 2], [0, 0], true, false, None).unwrap(),
        )
        .build()
        .unwrap();
    g.eval();
    g
}

fn batch(seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(&[2, 1, 10, 10], |_| rng.uniform(-1.0, 1.0))
}

fn run(g: &mut Graph, x: &Tensor<f32>) -> Tensor<f32> {
    let out = g.run(&[Value::F32(x.clone())]).unwrap();
    out[0].as_f32("output").unwrap().clone()
}

#[test]
fn convert_keeps_ceil_mode_and_the_float_output_shape() {
    let mut g = float_graph();
    let x = batch(1);
    let want = run(&mut float_graph(), &x);
    // conv 10 -> 8; max k3 s2 p1: ceil 5 (floor 4); avg k2 s2: ceil 3 (floor 2)
    assert_eq!(want.shape(), &[2, 4, 3, 3]);
    let mapping = QConfigMapping::new().set_global(Some(get_default_qconfig(Backend::Fbgemm)));
    prepare(&mut g, &mapping).unwrap();
    for s in 2..5 {
        run(&mut g, &batch(s));
    }
    convert(&mut g).unwrap();
    let max = g.node("maxpool").unwrap().module().unwrap();
    let max = max.downcast_ref::<quantized::MaxPool2d>().unwrap();
    assert!(max.ceil_mode());
    let avg = g.node("avgpool").unwrap().module().unwrap();
    let avg = avg.downcast_ref::<quantized::AvgPool2d>().unwrap();
    assert!(avg.ceil_mode());
    assert!(!avg.options().3, "count_include_pad kept");
    assert_eq!(
        node_repr(g.node("maxpool").unwrap()),
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)"
    );
    assert_eq!(
        node_repr(g.node("avgpool").unwrap()),
        "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    );
    let got = run(&mut g, &x);
    assert_eq!(got.shape(), want.shape());
    let db = sqnr(&want, &got).unwrap();
    assert!(db > 25.0, "SQNR {db} dB");

    // A model file keeps ceil_mode: same bits after a round trip.
    let bytes = graph_to_bytes(&g).unwrap();
    let mut back = graph_from_bytes(&bytes).unwrap();
    assert_eq!(run(&mut back, &x), got);
    let max = back.node("maxpool").unwrap().module().unwrap();
    assert!(
        max.downcast_ref::<quantized::MaxPool2d>()
            .unwrap()
            .ceil_mode()
    );
}
