//! PyTorch goldens (torch 2.15.0, fbgemm engine, `tools/golden/gen_conv.py` families
//! `eltwise` and `pool`): quantized add/add_relu/mul, add_scalar/mul_scalar, relu6,
//! sigmoid/tanh/hardsigmoid/hardswish/leaky_relu/elu (all 256 inputs), cat, nearest
//! upsampling, max/avg/adaptive-avg pooling, reproduced bit for bit.

mod common;

use common::{Case, parse};
use qkernels::eltwise::activation::{self, Lut};
use qkernels::eltwise::layout::{self, CatInput};
use qkernels::eltwise::{QParams, binary, scalar};
use qkernels::pool::{self, Pool2d};

fn qp(c: &Case, prefix: &str) -> QParams {
    QParams {
        scale: c.f64s(&format!("{prefix}_scale"))[0] as f32,
        zero_point: c.i64s(&format!("{prefix}_zp"))[0] as i32,
    }
}

fn op(c: &Case) -> &str {
    c.str("op")
}

fn run_eltwise(c: &Case) -> (Vec<u8>, Option<QParams>) {
    let want_len = c.u8s("y").len();
    let mut y = vec![0u8; want_len];
    let params = || c.f64s("params");
    let qparams = match op(c) {
        "add" | "add_relu" | "mul" => {
            let (a, b) = (c.u8s("a"), c.u8s("b"));
            let (qa, qb, qo) = (qp(c, "a"), qp(c, "b"), qp(c, "y"));
            if op(c) == "mul" {
                binary::mul(a, qa, b, qb, qo, &mut y).unwrap();
            } else {
                binary::add(a, qa, b, qb, qo, op(c) == "add_relu", &mut y).unwrap();
            }
            Some(qo)
        }
        "add_scalar" | "add_scalar_relu" => Some(
            scalar::add_scalar(
                c.u8s("x"),
                qp(c, "x"),
                params()[0] as f32,
                op(c) == "add_scalar_relu",
                &mut y,
            )
            .unwrap(),
        ),
        "mul_scalar" => {
            Some(scalar::mul_scalar(c.u8s("x"), qp(c, "x"), params()[0] as f32, &mut y).unwrap())
        }
        "relu6" => {
            y.copy_from_slice(c.u8s("x"));
            activation::relu6(&mut y, qp(c, "x")).unwrap();
            Some(qp(c, "x"))
        }
        name @ ("sigmoid" | "tanh" | "hardsigmoid" | "hardswish" | "leaky_relu" | "elu") => {
            let (qi, qo) = (qp(c, "x"), qp(c, "y"));
            let lut = match name {
                "sigmoid" => Lut::sigmoid(qi),
                "tanh" => Lut::tanh(qi),
                "hardsigmoid" => Lut::hardsigmoid(qi),
                "hardswish" => Lut::hardswish(qi, qo),
                "leaky_relu" => Lut::leaky_relu(qi, qo, params()[0] as f32),
                _ => Lut::elu(qi, qo, params()[0] as f32),
            }
            .unwrap();
            lut.apply(c.u8s("x"), &mut y).unwrap();
            Some(match name {
                "sigmoid" | "hardsigmoid" => activation::SIGMOID_QPARAMS,
                "tanh" => activation::TANH_QPARAMS,
                _ => qo,
            })
        }
        "cat" => {
            let s = c.i64s("shape");
            let (outer, c1, c2) = (s[0] as usize, s[1] as usize, s[2] as usize);
            let inputs = [
                CatInput {
                    data: c.u8s("a"),
                    inner: c1,
                    qparams: qp(c, "a"),
                },
                CatInput {
                    data: c.u8s("b"),
                    inner: c2,
                    qparams: qp(c, "b"),
                },
            ];
            layout::cat(&inputs, outer, qp(c, "y"), &mut y).unwrap();
            None
        }
        "upsample_nearest" => {
            let s: Vec<usize> = c.i64s("shape").iter().map(|&v| v as usize).collect();
            layout::upsample_nearest2d(c.u8s("x"), [s[0], s[1], s[2], s[3]], [s[4], s[5]], &mut y)
                .unwrap();
            None
        }
        other => panic!("unknown op {other}"),
    };
    (y, qparams)
}

fn run_pool(c: &Case) -> Vec<u8> {
    let mut y = vec![0u8; c.u8s("y").len()];
    let s: Vec<usize> = c.i64s("shape").iter().map(|&v| v as usize).collect();
    let shape = [s[0], s[1], s[2], s[3]];
    let p = c.f64s("params");
    let x = c.u8s("x");
    match op(c) {
        "max_pool2d" => {
            let (k, st, pd, d) = (p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize);
            let g = Pool2d {
                input: shape,
                kernel: [k, k],
                stride: [st, st],
                padding: [pd, pd],
                dilation: [d, d],
                ceil_mode: p.get(4) == Some(&1.0),
            };
            pool::max_pool2d(x, &g, &mut y).unwrap();
        }
        "avg_pool2d" => {
            let (k, st, pd) = (p[0] as usize, p[1] as usize, p[2] as usize);
            let g = Pool2d {
                input: shape,
                kernel: [k, k],
                stride: [st, st],
                padding: [pd, pd],
                dilation: [1, 1],
                ceil_mode: p.get(5) == Some(&1.0),
            };
            let div = (p[4] > 0.0).then_some(p[4] as usize);
            pool::avg_pool2d(x, qp(c, "x"), &g, p[3] > 0.0, div, qp(c, "y"), &mut y).unwrap();
        }
        "adaptive_avg_pool2d" => {
            pool::adaptive_avg_pool2d(
                x,
                qp(c, "x"),
                shape,
                [p[0] as usize, p[1] as usize],
                qp(c, "y"),
                &mut y,
            )
            .unwrap();
        }
        other => panic!("unknown op {other}"),
    }
    y
}

#[test]
fn eltwise_goldens_are_bit_exact() {
    let cases = parse(include_str!("data/conv/eltwise.golden"));
    assert_eq!(cases.len(), 47);
    let mut failures = Vec::new();
    for c in &cases {
        let (got, qparams) = run_eltwise(c);
        let want = c.u8s("y");
        let diff = got.iter().zip(want).filter(|(a, b)| a != b).count();
        if diff > 0 {
            failures.push(format!("{}: {diff} of {} differ", c.name, want.len()));
        }
        if let Some(q) = qparams {
            assert_eq!(q, qp(c, "y"), "case {}: output qparams", c.name);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn pool_goldens_are_bit_exact() {
    let cases = parse(include_str!("data/conv/pool.golden"));
    assert_eq!(cases.len(), 35);
    let mut failures = Vec::new();
    for c in &cases {
        let got = run_pool(c);
        let want = c.u8s("y");
        let diff = got.iter().zip(want).filter(|(a, b)| a != b).count();
        if diff > 0 {
            failures.push(format!("{}: {diff} of {} differ", c.name, want.len()));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
