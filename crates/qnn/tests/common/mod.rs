//! Shared test helpers: deterministic data and a central-difference gradient check.

#![allow(dead_code)]

use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, Value};

/// Uniform values in `[low, high)` from a seeded generator.
pub fn rand_tensor(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor<f32> {
    let mut rng = Rng::new(seed);
    Tensor::from_fn(shape, |_| rng.uniform(low, high))
}

/// Moves every value at least `gap` away from each point in `kinks` (non-differentiable points).
pub fn avoid_kinks(t: &mut Tensor<f32>, kinks: &[f32], gap: f32) {
    for v in t.data_mut() {
        for &k in kinks {
            if (*v - k).abs() < gap {
                *v = if *v >= k { k + gap } else { k - gap };
            }
        }
    }
}

/// `sum(forward(x) * r)`, accumulated in f64 to keep the difference quotient's noise low.
fn probe(m: &mut dyn Module, x: &Tensor<f32>, r: &Tensor<f32>) -> f64 {
    let y = m
        .forward(&Value::F32(x.clone()))
        .expect("forward")
        .into_f32("probe")
        .expect("f32 output");
    assert_eq!(y.shape(), r.shape());
    y.data()
        .iter()
        .zip(r.data())
        .map(|(&a, &b)| a as f64 * b as f64)
        .sum()
}

/// Asserts `|numeric - analytic| <= atol + rtol * |analytic|`.
fn assert_close(what: &str, i: usize, numeric: f64, analytic: f32, atol: f64, rtol: f64) {
    let tol = atol + rtol * analytic.abs() as f64;
    assert!(
        (numeric - analytic as f64).abs() <= tol,
        "{what}[{i}]: numeric {numeric:.6} vs analytic {analytic:.6} (tol {tol:.2e})"
    );
}

/// Compares the input gradient and every parameter gradient of `m` at `x` with central
/// differences of `L = sum(forward(x) * r)` for a fixed random `r`. Returns the number of
/// gradient entries checked (so callers can assert the check did something).
pub fn check_gradients(m: &mut dyn Module, x: &Tensor<f32>, h: f32, atol: f64, rtol: f64) -> usize {
    let y = m
        .forward(&Value::F32(x.clone()))
        .expect("forward")
        .into_f32("check")
        .expect("f32");
    let r = rand_tensor(y.shape(), -1.0, 1.0, 99);
    m.zero_grad();
    let dx = m
        .backward(&Value::F32(r.clone()))
        .expect("backward")
        .into_f32("check")
        .expect("f32");
    assert_eq!(dx.shape(), x.shape(), "input gradient shape");
    let mut analytic: Vec<(String, Vec<f32>)> = Vec::new();
    m.visit_params(&mut |name, p| analytic.push((name.to_string(), p.grad.data().to_vec())));
    let mut checked = 0;

    let mut xp = x.clone();
    for i in 0..x.numel() {
        let orig = xp.data()[i];
        xp.data_mut()[i] = orig + h;
        let up = probe(m, &xp, &r);
        xp.data_mut()[i] = orig - h;
        let down = probe(m, &xp, &r);
        xp.data_mut()[i] = orig;
        assert_close(
            "input grad",
            i,
            (up - down) / (2.0 * h as f64),
            dx.data()[i],
            atol,
            rtol,
        );
        checked += 1;
    }

    for (name, grads) in &analytic {
        for (i, &g) in grads.iter().enumerate() {
            let nudge = |m: &mut dyn Module, delta: f32| {
                m.visit_params_mut(&mut |n, p| {
                    if n == name {
                        p.value.data_mut()[i] += delta;
                    }
                })
            };
            nudge(m, h);
            let up = probe(m, x, &r);
            nudge(m, -2.0 * h);
            let down = probe(m, x, &r);
            nudge(m, h);
            assert_close(name, i, (up - down) / (2.0 * h as f64), g, atol, rtol);
            checked += 1;
        }
    }
    checked
}

/// Runs one forward and returns the f32 output.
pub fn run(m: &mut dyn Module, x: &Tensor<f32>) -> Tensor<f32> {
    m.forward(&Value::F32(x.clone()))
        .expect("forward")
        .into_f32("run")
        .expect("f32")
}

/// Asserts element-wise closeness of two slices.
pub fn assert_all_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (all: {got:?})"
        );
    }
}

/// One tensor as `Value::F32`, several as a tuple.
pub fn pack(ts: &[Tensor<f32>]) -> Value {
    if ts.len() == 1 {
        Value::F32(ts[0].clone())
    } else {
        Value::Tuple(ts.iter().cloned().map(Value::F32).collect())
    }
}

/// The tensors of an f32 value or tuple.
pub fn unpack(v: Value) -> Vec<Tensor<f32>> {
    match v {
        Value::F32(t) => vec![t],
        Value::Tuple(vs) => vs
            .into_iter()
            .map(|v| v.into_f32("unpack").unwrap())
            .collect(),
        other => panic!("unexpected {}", other.kind_name()),
    }
}

fn probe_tuple(m: &mut dyn Module, inputs: &[Tensor<f32>], rs: &[Tensor<f32>]) -> f64 {
    let outs = unpack(m.forward(&pack(inputs)).unwrap());
    outs.iter()
        .zip(rs)
        .map(|(o, r)| {
            o.data()
                .iter()
                .zip(r.data())
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
        })
        .sum()
}

/// Central-difference check of every input tensor and parameter of a module with tuple I/O
/// (`L = Σ_k sum(out_k * r_k)`); returns the number of entries checked.
pub fn check_tuple_gradients(m: &mut dyn Module, inputs: Vec<Tensor<f32>>) -> usize {
    let (h, atol, rtol) = (1e-2f32, 2e-3f64, 1e-2f64);
    let outs = unpack(m.forward(&pack(&inputs)).unwrap());
    let rs: Vec<Tensor<f32>> = outs
        .iter()
        .enumerate()
        .map(|(k, o)| rand_tensor(o.shape(), -1.0, 1.0, 500 + k as u64))
        .collect();
    m.zero_grad();
    let grads = unpack(m.backward(&pack(&rs)).unwrap());
    assert_eq!(grads.len(), inputs.len());
    let mut analytic = Vec::new();
    m.visit_params(&mut |n, p| analytic.push((n.to_string(), p.grad.data().to_vec())));
    let mut checked = 0;
    let close = |what: &str, i: usize, num: f64, ana: f32| {
        let tol = atol + rtol * ana.abs() as f64;
        assert!(
            (num - ana as f64).abs() <= tol,
            "{what}[{i}]: numeric {num:.6} vs analytic {ana:.6}"
        );
    };
    for k in 0..inputs.len() {
        assert_eq!(grads[k].shape(), inputs[k].shape());
        for i in 0..inputs[k].numel() {
            let mut up = inputs.clone();
            up[k].data_mut()[i] += h;
            let mut down = inputs.clone();
            down[k].data_mut()[i] -= h;
            close(
                &format!("input {k}"),
                i,
                (probe_tuple(m, &up, &rs) - probe_tuple(m, &down, &rs)) / (2.0 * h as f64),
                grads[k].data()[i],
            );
            checked += 1;
        }
    }
    for (name, g) in &analytic {
        for (i, &ga) in g.iter().enumerate() {
            let nudge = |m: &mut dyn Module, delta: f32| {
                m.visit_params_mut(&mut |n, p| {
                    if n == name {
                        p.value.data_mut()[i] += delta
                    }
                })
            };
            nudge(m, h);
            let up = probe_tuple(m, &inputs, &rs);
            nudge(m, -2.0 * h);
            let down = probe_tuple(m, &inputs, &rs);
            nudge(m, h);
            close(name, i, (up - down) / (2.0 * h as f64), ga);
            checked += 1;
        }
    }
    checked
}
