//! Functional ops: the graph nodes that are not modules (PyTorch's `FloatFunctional` ops and
//! tensor functions such as `torch.flatten`), with forward and backward on f32 values.

use qnn::qtensor::{Layout, Tensor};
use qnn::{QnnError, Value};

type QResult<T> = std::result::Result<T, QnnError>;

/// A stateless tensor function used as a graph node. Binary ops need equal shapes (no
/// broadcasting); every op works on f32 values.
#[derive(Clone, Debug, PartialEq)]
pub enum FunctionalOp {
    /// `a + b` (`FloatFunctional.add`).
    Add,
    /// `relu(a + b)` (`FloatFunctional.add_relu`).
    AddRelu,
    /// `a * b` element-wise (`FloatFunctional.mul`).
    Mul,
    /// `x + scalar` (`FloatFunctional.add_scalar`).
    AddScalar(f32),
    /// `x * scalar` (`FloatFunctional.mul_scalar`).
    MulScalar(f32),
    /// `torch.cat(inputs, dim)` over one or more inputs (`FloatFunctional.cat`).
    Cat {
        /// The concatenation dimension (negative counts from the end).
        dim: isize,
    },
    /// `torch.flatten(x, start_dim, end_dim)`.
    Flatten {
        /// First merged dimension.
        start_dim: isize,
        /// Last merged dimension (inclusive).
        end_dim: isize,
    },
    /// `x.reshape(shape)`, one entry may be `-1`.
    Reshape(Vec<isize>),
    /// `torch.matmul(a, b)` for `[.., m, k] x [.., k, n]` with equal leading dims
    /// (`FloatFunctional.matmul`).
    Matmul,
    /// Element `i` of a tuple value (e.g. the output sequence of an LSTM).
    GetItem(usize),
}

impl FunctionalOp {
    /// The op's name as PyTorch spells the function (`add`, `add_relu`, `cat`, …).
    pub fn name(&self) -> &'static str {
        match self {
            FunctionalOp::Add => "add",
            FunctionalOp::AddRelu => "add_relu",
            FunctionalOp::Mul => "mul",
            FunctionalOp::AddScalar(_) => "add_scalar",
            FunctionalOp::MulScalar(_) => "mul_scalar",
            FunctionalOp::Cat { .. } => "cat",
            FunctionalOp::Flatten { .. } => "flatten",
            FunctionalOp::Reshape(_) => "reshape",
            FunctionalOp::Matmul => "matmul",
            FunctionalOp::GetItem(_) => "getitem",
        }
    }

    /// The accepted number of inputs: `(min, max)`.
    pub fn arity(&self) -> (usize, usize) {
        match self {
            FunctionalOp::Add
            | FunctionalOp::AddRelu
            | FunctionalOp::Mul
            | FunctionalOp::Matmul => (2, 2),
            FunctionalOp::Cat { .. } => (1, usize::MAX),
            _ => (1, 1),
        }
    }
}

/// What forward kept for backward.
#[derive(Clone, Debug)]
enum Saved {
    None,
    Shape(Vec<usize>),
    Shapes(Vec<Vec<usize>>, usize),
    Pair(Tensor<f32>, Tensor<f32>),
    Output(Tensor<f32>),
    Tuple(Vec<Option<Vec<usize>>>),
}

/// A [`FunctionalOp`] with the state its backward needs.
#[derive(Clone, Debug)]
pub struct Functional {
    op: FunctionalOp,
    saved: Option<Saved>,
}

fn f32_row_major(v: &Value, op: &'static str) -> QResult<Tensor<f32>> {
    let t = v.as_f32(op)?;
    if t.layout() == Layout::RowMajor {
        Ok(t.clone())
    } else {
        Ok(t.to_row_major()?)
    }
}

fn same(op: &'static str, a: &[usize], b: &[usize]) -> QResult<()> {
    if a == b {
        Ok(())
    } else {
        Err(QnnError::ShapeMismatch {
            what: format!("{op}: shapes of the two inputs"),
            expected: a.to_vec(),
            got: b.to_vec(),
        })
    }
}

fn dim_index(op: &'static str, dim: isize, ndim: usize) -> QResult<usize> {
    let n = ndim as isize;
    let d = if dim < 0 { dim + n } else { dim };
    if (0..n).contains(&d) {
        Ok(d as usize)
    } else {
        Err(QnnError::DimOutOfRange {
            module: op,
            dim,
            ndim,
        })
    }
}

fn zip_map(a: &Tensor<f32>, b: &Tensor<f32>, f: impl Fn(f32, f32) -> f32) -> QResult<Tensor<f32>> {
    let d = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| f(x, y))
        .collect();
    Ok(Tensor::new(a.shape(), d)?)
}

/// `(batch, m, k)` of a matmul operand with at least 2 dims.
fn mat_dims(op: &'static str, s: &[usize]) -> QResult<(usize, usize, usize)> {
    if s.len() < 2 {
        return Err(QnnError::WrongRank {
            module: op,
            expected: "at least 2-d [.., rows, cols]",
            got: s.to_vec(),
        });
    }
    let n = s.len();
    Ok((s[..n - 2].iter().product(), s[n - 2], s[n - 1]))
}

/// `c[b] = op(a[b]) x op(b[b])` for row-major batches, with optional transposes.
fn batched_matmul(
    a: &[f32],
    b: &[f32],
    batch: usize,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
) -> Vec<f32> {
    let mut c = vec![0.0f32; batch * m * n];
    for bi in 0..batch {
        let (a, b) = (
            &a[bi * m * k..(bi + 1) * m * k],
            &b[bi * k * n..(bi + 1) * k * n],
        );
        let c = &mut c[bi * m * n..(bi + 1) * m * n];
        for i in 0..m {
            for p in 0..k {
                let av = if ta { a[p * m + i] } else { a[i * k + p] };
                for j in 0..n {
                    let bv = if tb { b[j * k + p] } else { b[p * n + j] };
                    c[i * n + j] += av * bv;
                }
            }
        }
    }
    c
}

fn reshape_target(op: &'static str, spec: &[isize], numel: usize) -> QResult<Vec<usize>> {
    let bad = |reason: String| QnnError::InvalidConfig { module: op, reason };
    let mut infer = None;
    let mut known = 1usize;
    let mut out = Vec::with_capacity(spec.len());
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            d if d >= 0 => {
                known *= d as usize;
                out.push(d as usize);
            }
            _ => return Err(bad(format!("invalid shape {spec:?}"))),
        }
    }
    match infer {
        Some(i) if known > 0 && numel.is_multiple_of(known) => out[i] = numel / known,
        None if known == numel => {}
        _ => {
            return Err(bad(format!(
                "shape {spec:?} is invalid for an input of {numel} elements"
            )));
        }
    }
    Ok(out)
}

impl Functional {
    /// A functional node's runtime form.
    pub fn new(op: FunctionalOp) -> Self {
        Self { op, saved: None }
    }

    /// The op.
    pub fn op(&self) -> &FunctionalOp {
        &self.op
    }

    /// Computes the output of the op on `inputs` and keeps what backward needs.
    pub fn forward(&mut self, inputs: &[Value]) -> QResult<Value> {
        let name = self.op.name();
        let (lo, hi) = self.op.arity();
        if inputs.len() < lo || inputs.len() > hi {
            return Err(QnnError::InvalidConfig {
                module: name,
                reason: format!("expected {lo}..={hi} inputs, got {}", inputs.len()),
            });
        }
        if let FunctionalOp::GetItem(i) = self.op {
            let Value::Tuple(items) = &inputs[0] else {
                return Err(QnnError::WrongValueKind {
                    module: name,
                    expected: "tuple",
                    got: inputs[0].kind_name(),
                });
            };
            let item = items
                .get(i)
                .cloned()
                .ok_or_else(|| QnnError::InvalidConfig {
                    module: name,
                    reason: format!("index {i} out of range for a tuple of {}", items.len()),
                })?;
            let shapes = items
                .iter()
                .map(|v| {
                    matches!(v, Value::F32(_))
                        .then(|| v.shape().map(<[usize]>::to_vec))
                        .flatten()
                })
                .collect();
            self.saved = Some(Saved::Tuple(shapes));
            return Ok(item);
        }
        let xs = inputs
            .iter()
            .map(|v| f32_row_major(v, name))
            .collect::<QResult<Vec<_>>>()?;
        let (y, saved) = match &self.op {
            FunctionalOp::Add => {
                same(name, xs[0].shape(), xs[1].shape())?;
                (zip_map(&xs[0], &xs[1], |a, b| a + b)?, Saved::None)
            }
            FunctionalOp::AddRelu => {
                same(name, xs[0].shape(), xs[1].shape())?;
                let y = zip_map(&xs[0], &xs[1], |a, b| (a + b).max(0.0))?;
                (y.clone(), Saved::Output(y))
            }
            FunctionalOp::Mul => {
                same(name, xs[0].shape(), xs[1].shape())?;
                let y = zip_map(&xs[0], &xs[1], |a, b| a * b)?;
                (y, Saved::Pair(xs[0].clone(), xs[1].clone()))
            }
            FunctionalOp::AddScalar(s) => (xs[0].map(|v| v + s), Saved::None),
            FunctionalOp::MulScalar(s) => (xs[0].map(|v| v * s), Saved::None),
            FunctionalOp::Flatten { start_dim, end_dim } => {
                let shape = xs[0].shape();
                let out = if shape.is_empty() {
                    vec![1]
                } else {
                    let s = dim_index(name, *start_dim, shape.len())?;
                    let e = dim_index(name, *end_dim, shape.len())?;
                    if s > e {
                        return Err(QnnError::InvalidConfig {
                            module: name,
                            reason: format!("start_dim {start_dim} comes after end_dim {end_dim}"),
                        });
                    }
                    let mut o = shape[..s].to_vec();
                    o.push(shape[s..=e].iter().product());
                    o.extend_from_slice(&shape[e + 1..]);
                    o
                };
                (xs[0].reshape(&out)?, Saved::Shape(shape.to_vec()))
            }
            FunctionalOp::Reshape(spec) => {
                let out = reshape_target(name, spec, xs[0].numel())?;
                (xs[0].reshape(&out)?, Saved::Shape(xs[0].shape().to_vec()))
            }
            FunctionalOp::Cat { dim } => {
                let first = xs[0].shape().to_vec();
                let d = dim_index(name, *dim, first.len())?;
                for x in &xs[1..] {
                    let s = x.shape();
                    let ok = s.len() == first.len()
                        && s.iter()
                            .zip(&first)
                            .enumerate()
                            .all(|(i, (a, b))| i == d || a == b);
                    if !ok {
                        return Err(QnnError::ShapeMismatch {
                            what: format!("cat: input shapes outside dim {d}"),
                            expected: first.clone(),
                            got: s.to_vec(),
                        });
                    }
                }
                let outer: usize = first[..d].iter().product();
                let inner: usize = first[d + 1..].iter().product();
                let total: usize = xs.iter().map(|x| x.shape()[d]).sum();
                let mut out = Vec::with_capacity(outer * total * inner);
                for o in 0..outer {
                    for x in &xs {
                        let len = x.shape()[d] * inner;
                        out.extend_from_slice(&x.data()[o * len..(o + 1) * len]);
                    }
                }
                let mut shape = first.clone();
                shape[d] = total;
                let shapes = xs.iter().map(|x| x.shape().to_vec()).collect();
                (Tensor::new(&shape, out)?, Saved::Shapes(shapes, d))
            }
            FunctionalOp::Matmul => {
                let (ba, m, k) = mat_dims(name, xs[0].shape())?;
                let (bb, k2, n) = mat_dims(name, xs[1].shape())?;
                let lead_a = &xs[0].shape()[..xs[0].ndim() - 2];
                let lead_b = &xs[1].shape()[..xs[1].ndim() - 2];
                if k != k2 || lead_a != lead_b || ba != bb {
                    return Err(QnnError::ShapeMismatch {
                        what: "matmul: [.., m, k] x [.., k, n] with equal leading dims".into(),
                        expected: xs[0].shape().to_vec(),
                        got: xs[1].shape().to_vec(),
                    });
                }
                let c = batched_matmul(xs[0].data(), xs[1].data(), ba, (m, k, n), (false, false));
                let mut shape = lead_a.to_vec();
                shape.extend([m, n]);
                (
                    Tensor::new(&shape, c)?,
                    Saved::Pair(xs[0].clone(), xs[1].clone()),
                )
            }
            FunctionalOp::GetItem(_) => unreachable!("handled above"),
        };
        self.saved = Some(saved);
        Ok(Value::F32(y))
    }

    /// Gradients with respect to each input, given the gradient of the output. `None` marks an
    /// input that receives no gradient.
    pub fn backward(&mut self, grad: &Value) -> QResult<Vec<Option<Value>>> {
        let name = self.op.name();
        let saved = self
            .saved
            .as_ref()
            .ok_or(QnnError::BackwardBeforeForward { module: name })?;
        if let Saved::Tuple(shapes) = saved {
            let FunctionalOp::GetItem(i) = self.op else {
                return Err(QnnError::BackwardBeforeForward { module: name });
            };
            let items = shapes
                .iter()
                .enumerate()
                .map(|(j, s)| match (j == i, s) {
                    (true, _) => grad.clone(),
                    (false, Some(s)) => Value::F32(Tensor::zeros(s)),
                    (false, None) => Value::no_grad(),
                })
                .collect();
            return Ok(vec![Some(Value::Tuple(items))]);
        }
        let g = f32_row_major(grad, name)?;
        let one = |t: Tensor<f32>| Ok(vec![Some(Value::F32(t))]);
        match (&self.op, saved) {
            (FunctionalOp::Add, _) => Ok(vec![Some(Value::F32(g.clone())), Some(Value::F32(g))]),
            (FunctionalOp::AddRelu, Saved::Output(y)) => {
                same(name, y.shape(), g.shape())?;
                let d = zip_map(&g, y, |gv, yv| if yv > 0.0 { gv } else { 0.0 })?;
                Ok(vec![Some(Value::F32(d.clone())), Some(Value::F32(d))])
            }
            (FunctionalOp::Mul, Saved::Pair(a, b)) => {
                same(name, a.shape(), g.shape())?;
                Ok(vec![
                    Some(Value::F32(zip_map(&g, b, |gv, bv| gv * bv)?)),
                    Some(Value::F32(zip_map(&g, a, |gv, av| gv * av)?)),
                ])
            }
            (FunctionalOp::AddScalar(_), _) => one(g),
            (FunctionalOp::MulScalar(s), _) => one(g.map(|v| v * s)),
            (FunctionalOp::Flatten { .. } | FunctionalOp::Reshape(_), Saved::Shape(s)) => {
                one(g.reshape(s)?)
            }
            (FunctionalOp::Cat { .. }, Saved::Shapes(shapes, d)) => {
                let d = *d;
                let outer: usize = shapes[0][..d].iter().product();
                let inner: usize = shapes[0][d + 1..].iter().product();
                let total: usize = shapes.iter().map(|s| s[d]).sum();
                let mut out = Vec::with_capacity(shapes.len());
                let mut offset = 0;
                for s in shapes {
                    let len = s[d] * inner;
                    let mut part = Vec::with_capacity(outer * len);
                    for o in 0..outer {
                        let start = o * total * inner + offset;
                        part.extend_from_slice(&g.data()[start..start + len]);
                    }
                    offset += len;
                    out.push(Some(Value::F32(Tensor::new(s, part)?)));
                }
                Ok(out)
            }
            (FunctionalOp::Matmul, Saved::Pair(a, b)) => {
                let (batch, m, k) = mat_dims(name, a.shape())?;
                let n = b.shape()[b.ndim() - 1];
                // dA = g bᵀ ([m, n] x [n, k]); dB = aᵀ g ([k, m] x [m, n]).
                let da = batched_matmul(g.data(), b.data(), batch, (m, n, k), (false, true));
                let db = batched_matmul(a.data(), g.data(), batch, (k, m, n), (true, false));
                Ok(vec![
                    Some(Value::F32(Tensor::new(a.shape(), da)?)),
                    Some(Value::F32(Tensor::new(b.shape(), db)?)),
                ])
            }
            _ => Err(QnnError::BackwardBeforeForward { module: name }),
        }
    }
}
