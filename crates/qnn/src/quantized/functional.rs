//! [`QFunctional`]: quantized `add`, `add_relu`, `mul`, `cat`, `add_scalar`, `mul_scalar` and
//! `matmul` with the output qparams held by the module, like
//! `torch.ao.nn.quantized.QFunctional` (on [`qkernels::eltwise`]).
//!
//! Numerics: `add`/`add_relu`/`mul`/`cat`/`add_scalar`/`mul_scalar` follow PyTorch's
//! kernels (see `qkernels::eltwise`; `add` uses torch's vector FMA dequantization for every
//! element, which torch uses for all but a tail shorter than its vector step). `matmul` is
//! PyTorch's reference `quantize(dequantize(a) @ dequantize(b))` with an f32 sum in index
//! order; torch's float GEMM sums in another order, so an output may differ by one quantum.

use qkernels::eltwise::layout::{self, CatInput};
use qkernels::eltwise::{QParams as EltQParams, binary, scalar};
use qtensor::{Layout, QTensor};

use super::common::{Act, OutQ, not_trainable, quint8_output, quint8_tensor, row_major_bytes};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

const NAME: &str = "QFunctional";

/// Which operation [`QFunctional`]'s `forward` runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FunctionalOp {
    /// `add(x, y)` on a 2-tuple.
    Add,
    /// `add_relu(x, y)` on a 2-tuple.
    AddRelu,
    /// `mul(x, y)` on a 2-tuple.
    Mul,
    /// `cat(xs, dim)` on a tuple of any length ≥ 1.
    Cat {
        /// The dimension (negative counts from the end).
        dim: isize,
    },
    /// `add_scalar(x, c)` on a single tensor (or 1-tuple); output qparams from the kernel.
    AddScalar(f64),
    /// `mul_scalar(x, c)` on a single tensor (or 1-tuple); output qparams from the kernel.
    MulScalar(f64),
    /// `matmul(x, y)` on a 2-tuple.
    Matmul,
}

/// Quantized functional ops with the module's output `scale` / `zero_point`.
///
/// As a [`Module`], `forward` runs the [`FunctionalOp`] given at construction on a
/// `Value::Tuple` of quantized inputs; the plain methods run any op.
#[derive(Clone, Debug)]
pub struct QFunctional {
    op: FunctionalOp,
    out: OutQ,
    training: bool,
}

/// The second operand's bytes in the first operand's memory order.
fn same_layout<'a>(a: &Act<'_>, b: &Act<'a>) -> Result<std::borrow::Cow<'a, [u8]>> {
    if a.shape() != b.shape() {
        return Err(QnnError::ShapeMismatch {
            what: format!("{NAME} operands"),
            expected: a.shape().to_vec(),
            got: b.shape().to_vec(),
        });
    }
    if a.q.layout() == b.q.layout() {
        return Ok(std::borrow::Cow::Borrowed(b.data));
    }
    match a.q.layout() {
        Layout::RowMajor => row_major_bytes(b),
        Layout::ChannelsLast => super::common::nhwc_bytes(NAME, b),
    }
}

impl QFunctional {
    /// A functional module with output qparams (PyTorch's `from_float` takes them from the
    /// activation observer) running `op` in `forward`.
    pub fn new(op: FunctionalOp, output_scale: f64, output_zero_point: i64) -> Result<Self> {
        Ok(Self {
            op,
            out: OutQ::new(NAME, output_scale, output_zero_point)?,
            training: false,
        })
    }

    /// The op `forward` runs.
    pub fn op(&self) -> FunctionalOp {
        self.op
    }

    /// The output scale.
    pub fn scale(&self) -> f64 {
        self.out.scale()
    }

    /// The output zero point.
    pub fn zero_point(&self) -> i64 {
        self.out.zero_point()
    }

    fn wrap(&self, a: &Act<'_>, bytes: Vec<u8>) -> Result<QTensor> {
        quint8_output(
            bytes,
            a.shape(),
            a.q.layout(),
            self.out.scale(),
            self.out.zero_point(),
        )
    }

    fn add_impl(&self, x: &QTensor, y: &QTensor, relu: bool) -> Result<QTensor> {
        let (a, b) = (quint8_tensor(NAME, x)?, quint8_tensor(NAME, y)?);
        let bb = same_layout(&a, &b)?;
        let mut out = vec![0u8; a.data.len()];
        binary::add(
            a.data,
            a.qparams(),
            &bb,
            b.qparams(),
            self.out.elt(),
            relu,
            &mut out,
        )?;
        self.wrap(&a, out)
    }

    /// `quantized::add(x, y, scale, zero_point)` (same shapes; output in `x`'s layout).
    pub fn add(&self, x: &QTensor, y: &QTensor) -> Result<QTensor> {
        self.add_impl(x, y, false)
    }

    /// `quantized::add_relu(x, y, scale, zero_point)`.
    pub fn add_relu(&self, x: &QTensor, y: &QTensor) -> Result<QTensor> {
        self.add_impl(x, y, true)
    }

    /// `quantized::mul(x, y, scale, zero_point)`.
    pub fn mul(&self, x: &QTensor, y: &QTensor) -> Result<QTensor> {
        let (a, b) = (quint8_tensor(NAME, x)?, quint8_tensor(NAME, y)?);
        let bb = same_layout(&a, &b)?;
        let mut out = vec![0u8; a.data.len()];
        binary::mul(
            a.data,
            a.qparams(),
            &bb,
            b.qparams(),
            self.out.elt(),
            &mut out,
        )?;
        self.wrap(&a, out)
    }

    /// `quantized::add_scalar(x, c)`: the output qparams are the kernel's (the module's are
    /// not used, as in PyTorch).
    pub fn add_scalar(&self, x: &QTensor, c: f64) -> Result<QTensor> {
        let a = quint8_tensor(NAME, x)?;
        let mut out = vec![0u8; a.data.len()];
        let q = scalar::add_scalar(a.data, a.qparams(), c as f32, false, &mut out)?;
        // The kernel's integers and zero point are torch's; torch keeps the new scale in f64:
        // `s' = (qmax − (z − c_q)) / (qmax − qmin) · s` (or `((z − c_q) − qmin) / …`).
        let s = a.q.q_scale()?;
        let z = i64::from(a.zero_point);
        let c_q = (c / s).round_ties_even() as i64;
        let shifted = z - c_q;
        let scale = if (0..=255).contains(&shifted) {
            s
        } else if shifted > 255 {
            (shifted as f64) / 255.0 * s
        } else {
            (255.0 - shifted as f64) / 255.0 * s
        };
        quint8_output(out, a.shape(), a.q.layout(), scale, i64::from(q.zero_point))
    }

    /// `quantized::mul_scalar(x, c)`: the output qparams are the kernel's.
    pub fn mul_scalar(&self, x: &QTensor, c: f64) -> Result<QTensor> {
        let a = quint8_tensor(NAME, x)?;
        let mut out = vec![0u8; a.data.len()];
        let q = scalar::mul_scalar(a.data, a.qparams(), c as f32, &mut out)?;
        // torch keeps the new scale `s · |c|` in f64 (1 for c = 0).
        let scale = if c == 0.0 {
            1.0
        } else {
            a.q.q_scale()? * c.abs()
        };
        quint8_output(out, a.shape(), a.q.layout(), scale, i64::from(q.zero_point))
    }

    /// `quantized::cat(xs, dim, scale, zero_point)`: inputs with the output qparams are
    /// copied, others requantized. 4-d channels-last inputs concatenated along channels stay
    /// channels-last; everything else is concatenated in row-major order.
    pub fn cat(&self, xs: &[&QTensor], dim: isize) -> Result<QTensor> {
        let acts = xs
            .iter()
            .map(|q| quint8_tensor(NAME, q))
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = acts.first() else {
            return Err(QnnError::InvalidConfig {
                module: NAME,
                reason: "cat needs at least one tensor".into(),
            });
        };
        let nd = first.shape().len();
        let d = if dim < 0 { dim + nd as isize } else { dim };
        if nd == 0 || d < 0 || d as usize >= nd {
            return Err(QnnError::DimOutOfRange {
                module: NAME,
                dim,
                ndim: nd,
            });
        }
        let d = d as usize;
        let mut out_shape = first.shape().to_vec();
        out_shape[d] = 0;
        for a in &acts {
            let s = a.shape();
            let mut want = first.shape().to_vec();
            want[d] = s.get(d).copied().unwrap_or(0);
            if s != want.as_slice() {
                return Err(QnnError::ShapeMismatch {
                    what: format!("{NAME} cat inputs (all dims but {d} must agree)"),
                    expected: want,
                    got: s.to_vec(),
                });
            }
            out_shape[d] += s[d];
        }
        let nhwc = nd == 4 && d == 1 && acts.iter().all(|a| a.q.layout() == Layout::ChannelsLast);
        let bytes: Vec<std::borrow::Cow<'_, [u8]>> = if nhwc {
            acts.iter()
                .map(|a| std::borrow::Cow::Borrowed(a.data))
                .collect()
        } else {
            acts.iter().map(row_major_bytes).collect::<Result<_>>()?
        };
        let (outer, tail) = if nhwc {
            let s = first.shape();
            (s[0] * s[2] * s[3], 1)
        } else {
            (
                first.shape()[..d].iter().product::<usize>(),
                first.shape()[d + 1..].iter().product::<usize>(),
            )
        };
        let inputs: Vec<CatInput<'_>> = acts
            .iter()
            .zip(&bytes)
            .map(|(a, b)| CatInput {
                data: b,
                inner: a.shape()[d] * tail,
                qparams: a.qparams(),
            })
            .collect();
        let mut out = vec![0u8; out_shape.iter().product()];
        layout::cat(&inputs, outer, self.out.elt(), &mut out)?;
        let lay = if nhwc {
            Layout::ChannelsLast
        } else {
            Layout::RowMajor
        };
        quint8_output(
            out,
            &out_shape,
            lay,
            self.out.scale(),
            self.out.zero_point(),
        )
    }

    /// `quantized::matmul(x, y, scale, zero_point)`: `[.., M, K] × [.., K, N]` with equal
    /// batch dims, computed as PyTorch's reference (dequantize, f32 matmul, quantize).
    pub fn matmul(&self, x: &QTensor, y: &QTensor) -> Result<QTensor> {
        let (a, b) = (quint8_tensor(NAME, x)?, quint8_tensor(NAME, y)?);
        let (sa, sb) = (a.shape(), b.shape());
        let ok = sa.len() >= 2
            && sa.len() == sb.len()
            && sa[..sa.len() - 2] == sb[..sb.len() - 2]
            && sa[sa.len() - 1] == sb[sb.len() - 2];
        if !ok {
            return Err(QnnError::ShapeMismatch {
                what: format!("{NAME} matmul operands ([.., M, K] × [.., K, N])"),
                expected: sa.to_vec(),
                got: sb.to_vec(),
            });
        }
        let r = sa.len();
        let (m, k, n) = (sa[r - 2], sa[r - 1], sb[r - 1]);
        let batch: usize = sa[..r - 2].iter().product();
        let deq = |q: &QTensor| -> Result<Vec<f32>> {
            Ok(qkernels::quant::dequantize_fast(&q.to_row_major()?)?.into_data())
        };
        let (fa, fb) = (deq(x)?, deq(y)?);
        let mut fy = vec![0f32; batch * m * n];
        for bt in 0..batch {
            let (xa, xb) = (&fa[bt * m * k..][..m * k], &fb[bt * k * n..][..k * n]);
            let yo = &mut fy[bt * m * n..][..m * n];
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0f32;
                    for t in 0..k {
                        acc += xa[i * k + t] * xb[t * n + j];
                    }
                    yo[i * n + j] = acc;
                }
            }
        }
        let qo: EltQParams = self.out.elt();
        let bytes = fy.iter().map(|&v| qo.quantize(v)).collect();
        let mut shape = sa.to_vec();
        shape[r - 1] = n;
        quint8_output(
            bytes,
            &shape,
            Layout::RowMajor,
            self.out.scale(),
            self.out.zero_point(),
        )
    }

    fn tuple_arg<'a>(&self, input: &'a Value, n: Option<usize>) -> Result<Vec<&'a QTensor>> {
        let items: Vec<&Value> = match input {
            Value::Tuple(v) => v.iter().collect(),
            other => vec![other],
        };
        if let Some(n) = n
            && items.len() != n
        {
            return Err(QnnError::InvalidConfig {
                module: NAME,
                reason: format!("{:?} takes {n} inputs, got {}", self.op, items.len()),
            });
        }
        items
            .into_iter()
            .map(|v| match v {
                Value::Quantized(q) => Ok(q),
                other => Err(QnnError::WrongValueKind {
                    module: NAME,
                    expected: "quantized",
                    got: other.kind_name(),
                }),
            })
            .collect()
    }
}

impl Module for QFunctional {
    fn kind(&self) -> ModuleKind {
        ModuleKind::QFunctional
    }

    /// `scale=…, zero_point=…`, and PyTorch's `(activation_post_process): Identity()` child.
    fn extra_repr(&self) -> String {
        format!(
            "scale={}, zero_point={}",
            crate::repr::py_float(self.out.scale()),
            self.out.zero_point()
        )
    }

    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        vec![(
            "activation_post_process".to_string(),
            crate::repr::ReprTree::leaf("Identity", ""),
        )]
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let y = match self.op {
            FunctionalOp::Add => {
                let v = self.tuple_arg(input, Some(2))?;
                self.add(v[0], v[1])?
            }
            FunctionalOp::AddRelu => {
                let v = self.tuple_arg(input, Some(2))?;
                self.add_relu(v[0], v[1])?
            }
            FunctionalOp::Mul => {
                let v = self.tuple_arg(input, Some(2))?;
                self.mul(v[0], v[1])?
            }
            FunctionalOp::Matmul => {
                let v = self.tuple_arg(input, Some(2))?;
                self.matmul(v[0], v[1])?
            }
            FunctionalOp::Cat { dim } => {
                let v = self.tuple_arg(input, None)?;
                self.cat(&v, dim)?
            }
            FunctionalOp::AddScalar(c) => {
                let v = self.tuple_arg(input, Some(1))?;
                self.add_scalar(v[0], c)?
            }
            FunctionalOp::MulScalar(c) => {
                let v = self.tuple_arg(input, Some(1))?;
                self.mul_scalar(v[0], c)?
            }
        };
        Ok(Value::Quantized(y))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        not_trainable(NAME)
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.out.visit(f);
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.out.visit_mut(f);
    }

    fn after_load(&mut self) -> Result<()> {
        self.out.validate(NAME)
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn param_bytes(&self) -> usize {
        self.out.bytes()
    }
}
