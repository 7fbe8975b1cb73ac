//! The QAT Conv1d/Linear+BatchNorm1d modules through the whole flow against PyTorch's eager
//! flow (torch 2.15.0, `tools/golden/gen_qat_flow.py` → `tests/data/qat_flow/bn_flow.golden`):
//! `fuse_modules_qat` → `prepare_qat` (swapping in `qat::ConvBnReLU1d`, `qat::ConvBn1d`,
//! `qat::LinearBn1d`) → three SGD steps → `eval` → `convert` (quantized ConvReLU1d / Conv1d /
//! Linear with the BN folded in), for the fbgemm QAT qconfigs of versions 0 and 1.
//!
//! Tolerances, as the other QAT goldens: training outputs, trained weights and BN statistics
//! within 2e-5 absolute + 2e-5 relative (float convolutions and GEMMs sum in another order than
//! torch's). The converted int8 model's output is compared as integers on torch's output grid:
//! equal for at least 95 % of the values (then within 1e-6 relative: the output scale may be an
//! ulp off), never more than one step apart (a float difference of an ulp in training may move
//! a rounding tie by one step). Also: a model file saved after
//! the first step and loaded again trains and converts bit for bit like the graph that never
//! stopped, and the QAT layers print as PyTorch prints them.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use format::Case;
use qflow::io::{graph_from_bytes, graph_to_bytes};
use qflow::passes::{convert, find_fusable, fuse_modules_qat, prepare_qat};
use qflow::qconfig::{Backend, QConfigMapping, get_default_qat_qconfig};
use qflow::{Graph, SequentialBuilder};
use qnn::float::{BatchNorm1d, BatchNormConfig, Conv1d, Conv1dConfig, Linear, ReLU};
use qnn::qtensor::Tensor;
use qnn::{BufferMut, Module, ModuleKind, Value};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/qat_flow/bn_flow.golden"
);
const TOL: f32 = 2e-5;

fn cases() -> Vec<Case> {
    let file = format::parse(&std::fs::read_to_string(DATA).unwrap()).unwrap();
    assert_eq!(file.cases.len(), 4);
    file.cases
}

fn t(c: &Case, key: &str, shape: &[usize]) -> Tensor<f32> {
    Tensor::new(shape, c.f32s(key).to_vec()).unwrap()
}

fn bn(c: &Case, key: &str, n: usize) -> BatchNorm1d {
    let mut b = BatchNorm1d::new(BatchNormConfig::new(n));
    b.visit_params_mut(&mut |name, p| {
        let field = if name == "weight" { "w" } else { "b" };
        p.value
            .data_mut()
            .copy_from_slice(c.f32s(&format!("{key}_{field}")));
    });
    b.visit_buffers_mut(&mut |name, buf| {
        if let BufferMut::F32(v) = buf {
            let field = match name {
                "running_mean" => "mean",
                "running_var" => "var",
                _ => return,
            };
            v.data_mut()
                .copy_from_slice(c.f32s(&format!("{key}_{field}")));
        }
    });
    b
}

/// The float model as torch's `nn.Sequential` (without the stubs), fused and QAT-prepared.
fn prepared(c: &Case) -> Graph {
    let conv = c.name.starts_with("conv");
    let builder = SequentialBuilder::new("x");
    let mut g = if conv {
        let cfg1 = Conv1dConfig {
            padding: 1,
            ..Conv1dConfig::new(3, 4, 3)
        };
        let cfg2 = Conv1dConfig::new(4, 3, 3);
        let l1 = Conv1d::from_tensors(cfg1, t(c, "w1", &[4, 3, 3]), Some(t(c, "b1", &[4])));
        let l2 = Conv1d::from_tensors(cfg2, t(c, "w2", &[3, 4, 3]), Some(t(c, "b2", &[3])));
        builder
            .add("l1", l1.unwrap())
            .add("bn1", bn(c, "bn1", 4))
            .add("relu", ReLU::new())
            .add("l2", l2.unwrap())
            .add("bn2", bn(c, "bn2", 3))
    } else {
        let l1 = Linear::from_tensors(t(c, "w1", &[5, 6]), Some(t(c, "b1", &[5])));
        let l2 = Linear::from_tensors(t(c, "w2", &[4, 5]), Some(t(c, "b2", &[4])));
        builder
            .add("l1", l1.unwrap())
            .add("bn1", bn(c, "bn1", 5))
            .add("relu", ReLU::new())
            .add("l2", l2.unwrap())
            .add("bn2", bn(c, "bn2", 4))
    }
    .build()
    .unwrap();
    g.train(true);
    let groups: &[&[&str]] = if conv {
        &[&["l1", "bn1", "relu"], &["l2", "bn2"]]
    } else {
        &[&["l1", "bn1"], &["l2", "bn2"]]
    };
    // The automatic fuser finds the groups PyTorch's user passes.
    assert_eq!(find_fusable(&g), groups, "{}", c.name);
    fuse_modules_qat(&mut g, groups).unwrap();
    let version = if c.name.ends_with("v0") { 0 } else { 1 };
    let qconfig = get_default_qat_qconfig(Backend::Fbgemm, version).unwrap();
    prepare_qat(&mut g, &QConfigMapping::new().set_global(Some(qconfig))).unwrap();
    g
}

fn close(case: &str, what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{case}: {what} length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL + TOL * w.abs(),
            "{case}: {what}[{i}] = {g}, torch {w}"
        );
    }
}

fn run(g: &mut Graph, x: Tensor<f32>) -> Tensor<f32> {
    let mut out = g.run(&[Value::F32(x)]).unwrap();
    out.pop().unwrap().into_f32("test").unwrap()
}

/// One SGD step of `sum(y * gy)`: forward, backward, `p -= lr * grad`; returns the output.
fn step(g: &mut Graph, c: &Case, s: usize) -> Tensor<f32> {
    let shape = c.shape("x_shape");
    let nx: usize = shape.iter().product();
    let x = Tensor::new(&shape, c.f32s("x")[s * nx..(s + 1) * nx].to_vec()).unwrap();
    let y = run(g, x);
    let ny = y.numel();
    let gy = Tensor::new(y.shape(), c.f32s("gy")[s * ny..(s + 1) * ny].to_vec()).unwrap();
    g.zero_grad();
    g.backward_all(&[Value::F32(gy)]).unwrap();
    let lr = c.f64("lr") as f32;
    g.visit_params_mut(&mut |_, p| {
        let grad = p.grad.data().to_vec();
        for (v, d) in p.value.data_mut().iter_mut().zip(grad) {
            *v += -lr * d;
        }
    });
    y
}

fn param(g: &Graph, key: &str) -> Vec<f32> {
    let mut out = Vec::new();
    g.visit_params(&mut |name, p| {
        if name == key {
            out = p.value.data().to_vec();
        }
    });
    g.visit_buffers(&mut |name, b| {
        if name == key
            && let qnn::BufferRef::F32(v) = b
        {
            out = v.data().to_vec();
        }
    });
    assert!(!out.is_empty(), "no {key}");
    out
}

fn kind(g: &Graph, node: &str) -> ModuleKind {
    g.node(node).unwrap().kind().unwrap()
}

#[test]
fn qat_bn1d_models_train_and_convert_like_pytorch() {
    for c in cases() {
        let name = c.name.as_str();
        let conv = name.starts_with("conv");
        let mut g = prepared(&c);
        let (k1, k2) = if conv {
            (ModuleKind::QatConvBnReLU1d, ModuleKind::QatConvBn1d)
        } else {
            (ModuleKind::QatLinearBn1d, ModuleKind::QatLinearBn1d)
        };
        assert_eq!((kind(&g, "l1"), kind(&g, "l2")), (k1, k2), "{name}");
        let mut resumed = None;
        let mut at = 0;
        for s in 0..3 {
            let y = step(&mut g, &c, s);
            close(
                name,
                &format!("step {s} y"),
                y.data(),
                &c.f32s("y")[at..at + y.numel()],
            );
            at += y.numel();
            if s == 0 {
                resumed = Some(graph_from_bytes(&graph_to_bytes(&g).unwrap()).unwrap());
            }
        }
        close(
            name,
            "final w1",
            &param(&g, "l1.weight"),
            c.f32s("final_w1"),
        );
        close(
            name,
            "final w2",
            &param(&g, "l2.weight"),
            c.f32s("final_w2"),
        );
        let mean = param(&g, "l1.bn.running_mean");
        close(name, "final bn1 mean", &mean, c.f32s("final_bn1_mean"));
        let var = param(&g, "l2.bn.running_var");
        close(name, "final bn2 var", &var, c.f32s("final_bn2_var"));

        // Saved after the first step, loaded, trained on: the same bits as never stopping.
        let mut back = resumed.unwrap();
        assert_eq!((kind(&back, "l1"), kind(&back, "l2")), (k1, k2), "{name}");
        let mut at = 0;
        let y0 = c.f32s("y").len() / 3;
        for s in 1..3 {
            at += y0;
            let y = step(&mut back, &c, s);
            close(name, "resumed y", y.data(), &c.f32s("y")[at..at + y0]);
        }
        assert_eq!(param(&back, "l1.weight"), param(&g, "l1.weight"), "{name}");
        assert_eq!(
            param(&back, "l2.bn.running_var"),
            param(&g, "l2.bn.running_var")
        );

        g.train(false);
        back.train(false);
        convert(&mut g).unwrap();
        convert(&mut back).unwrap();
        let (q1, q2) = if conv {
            (ModuleKind::QuantizedConvReLU1d, ModuleKind::QuantizedConv1d)
        } else {
            (ModuleKind::QuantizedLinear, ModuleKind::QuantizedLinear)
        };
        assert_eq!((kind(&g, "l1"), kind(&g, "l2")), (q1, q2), "{name}");
        let xe = t(&c, "xe", &c.shape("x_shape"));
        let yq = run(&mut g, xe.clone());
        assert_eq!(
            run(&mut back, xe).data(),
            yq.data(),
            "{name}: resumed convert"
        );
        let want = c.f32s("yq");
        let scale = c.f64("out_scale") as f32;
        assert_eq!(yq.numel(), want.len());
        let mut equal = 0;
        for (i, (a, b)) in yq.data().iter().zip(want).enumerate() {
            let steps = (a / scale).round() - (b / scale).round();
            assert!(steps.abs() <= 1.0, "{name}: yq[{i}] {a} vs torch {b}");
            if steps == 0.0 {
                // The same integer; the output scales may differ by an ulp.
                assert!(
                    (a - b).abs() <= 1e-6 * b.abs(),
                    "{name}: yq[{i}] {a} vs {b}"
                );
                equal += 1;
            }
        }
        assert!(
            equal * 100 >= yq.numel() * 95,
            "{name}: only {equal} of {} converted outputs equal torch's",
            yq.numel()
        );
    }
}
