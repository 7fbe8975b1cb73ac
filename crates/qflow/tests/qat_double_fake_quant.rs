//! `prepare_qat` after the fused modules PyTorch keeps as `nn.Sequential`s (ConvReLU1d,
//! BNReLU2d; torch 2.15.0, data from `tools/golden/gen_qat_flow.py`): PyTorch runs their
//! activation fake-quant twice per forward, the second time on the first one's output (as the
//! sequence's last child, then from the forward hook). After three training forwards the
//! fake-quant's scale, zero point and running range and the output equal PyTorch's, for the QAT
//! qconfigs of versions 0 (FakeQuantize) and 1 (FusedMovingAvgObsFakeQuantize). The float
//! values before the fake-quant come from qnn's own convolution and batch norm, so scales and
//! ranges are compared within 1e-6 relative (they differ by an ulp at most here), outputs
//! within 1e-5 relative, zero points exactly. A fake-quant applied once per call ends with another range (checked too).

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qflow::passes::prepare_qat;
use qflow::passes::qat::as_fake_quant_mut;
use qflow::qconfig::{Backend, QConfigMapping, get_default_qat_qconfig};
use qflow::{Graph, SequentialBuilder};
use qnn::float::{BatchNorm2d, BatchNormConfig, Conv1d, Conv1dConfig, ReLU};
use qnn::fused::{BNReLU2d, ConvReLU1d};
use qnn::init::Rng;
use qnn::qat::{FakeQuant, ZeroPoints};
use qnn::qtensor::Tensor;
use qnn::{BufferRef, Module, Value};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/qat_flow/double_fake_quant.golden"
);

fn cases() -> Vec<Case> {
    let file = format::parse(&std::fs::read_to_string(DATA).unwrap()).unwrap();
    assert_eq!(file.cases.len(), 4);
    file.cases
}

fn graph(c: &Case) -> Graph {
    let builder = SequentialBuilder::new("x");
    let builder = if c.name.starts_with("conv") {
        let mut conv = Conv1d::new(Conv1dConfig::new(2, 3, 3), &mut Rng::new(0)).unwrap();
        conv.weight.value = Tensor::new(&[3, 2, 3], c.f32s("weight").to_vec()).unwrap();
        conv.bias.as_mut().unwrap().value = Tensor::new(&[3], c.f32s("bias").to_vec()).unwrap();
        builder.add("fused", ConvReLU1d::new(conv, ReLU::new()))
    } else {
        let bn = BatchNorm2d::new(BatchNormConfig::new(3));
        builder.add("fused", BNReLU2d::new(bn, ReLU::new()))
    };
    let mut g = builder.build().unwrap();
    g.train(true);
    let version = if c.name.ends_with("v0") { 0 } else { 1 };
    let qconfig = get_default_qat_qconfig(Backend::Fbgemm, version).unwrap();
    prepare_qat(&mut g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    g
}

fn fake_quant<'a>(g: &'a mut Graph, node: &str) -> &'a mut dyn FakeQuant {
    let m = g.node_mut(node).unwrap().module_mut().unwrap();
    as_fake_quant_mut(m).unwrap()
}

/// Runs the three batches; returns the last output.
fn train_forwards(g: &mut Graph, c: &Case) -> Tensor<f32> {
    let shape = c.shape("x_shape");
    let per: usize = shape.iter().product();
    let mut y = None;
    for batch in c.f32s("x").chunks(per) {
        let out = g
            .run(&[Value::F32(Tensor::new(&shape, batch.to_vec()).unwrap())])
            .unwrap();
        y = Some(out[0].as_f32("y").unwrap().clone());
    }
    y.unwrap()
}

fn zero_point(fq: &dyn FakeQuant) -> i64 {
    match fq.zero_point() {
        ZeroPoints::Int(t) => i64::from(t.data()[0]),
        ZeroPoints::Float(t) => t.data()[0] as i64,
    }
}

/// `[min_val, max_val]` of the fake-quant's running range (its state-dict buffers).
fn range_of(fq: &dyn FakeQuant) -> [f32; 2] {
    let mut range = Vec::new();
    fq.visit_buffers(&mut |name, b| {
        if let BufferRef::F32(t) = b
            && (name.ends_with("min_val") || name.ends_with("max_val"))
        {
            range.push(t.data()[0]);
        }
    });
    assert_eq!(range.len(), 2);
    [range[0], range[1]]
}

fn close(what: &str, got: f32, want: f32) {
    assert!(
        (got - want).abs() <= 1e-6 * want.abs(),
        "{what}: {got} vs PyTorch {want}"
    );
}

#[test]
fn fake_quant_after_sequential_fused_modules_runs_twice_like_pytorch() {
    for c in cases() {
        let name = c.name.as_str();
        let mut g = graph(&c);
        let fq = fake_quant(&mut g, "fused.activation_post_process");
        assert_eq!(fq.applications_per_call(), 2, "{name}");
        let y = train_forwards(&mut g, &c);
        let input = fake_quant(&mut g, "x.activation_post_process");
        assert_eq!(input.applications_per_call(), 1);
        close(
            &format!("{name} input scale"),
            input.scale().data()[0],
            c.f32("in_scale"),
        );
        assert_eq!(zero_point(input), c.i64("in_zp"), "{name}");
        let fq = fake_quant(&mut g, "fused.activation_post_process");
        close(
            &format!("{name} scale"),
            fq.scale().data()[0],
            c.f32("scale"),
        );
        assert_eq!(zero_point(fq), c.i64("zp"), "{name}");
        let range = range_of(fq);
        close(&format!("{name} min_val"), range[0], c.f32("min_val"));
        close(&format!("{name} max_val"), range[1], c.f32("max_val"));
        let want = c.f32s("y");
        assert_eq!(y.data().len(), want.len());
        // The same grid points: a scale one ulp off moves them by ulps only.
        for (i, (a, b)) in y.data().iter().zip(want).enumerate() {
            assert!((a - b).abs() <= 1e-5 * b.abs(), "{name}: y[{i}] {a} vs {b}");
        }

        // Once per call (what a plain module's fake-quant does): the second application sees
        // the clamped, rounded output, so it moves the range only a little, but it moves it.
        let mut once = graph(&c);
        fake_quant(&mut once, "fused.activation_post_process").set_applications_per_call(1);
        train_forwards(&mut once, &c);
        let once_range = range_of(fake_quant(&mut once, "fused.activation_post_process"));
        let torch_max = c.f32("max_val");
        assert!(
            (once_range[1] - torch_max).abs() > 1e-3 * torch_max,
            "{name}: once per call gives {once_range:?}, PyTorch's max {torch_max}"
        );

        // A model file keeps the two applications per call.
        let bytes = qflow::io::graph_to_bytes(&g).unwrap();
        let mut back = qflow::io::graph_from_bytes(&bytes).unwrap();
        let fq = fake_quant(&mut back, "fused.activation_post_process");
        assert_eq!(fq.applications_per_call(), 2, "{name}");
    }
}
