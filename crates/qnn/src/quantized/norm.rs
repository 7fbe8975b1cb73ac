//! Quantized LayerNorm, GroupNorm and InstanceNorm2d: PyTorch's `quantized::layer_norm`,
//! `quantized::group_norm` and `quantized::instance_norm` (fbgemm/x86 engine), quint8 in and
//! out, with float affine parameters and the output qparams of the observer.
//!
//! Numerics (ATen's `quantized_normalize_kernel`, reproduced operation by operation; the
//! AVX2/AVX-512 builds contract multiply-adds into FMAs): per normalized row of `n` integers
//! `q` (zero point `z`, scale `s`),
//! `m' = f32(Σq) / n`, `m = m' − z`, `v = max(fma(−m', m', f32(Σq²) / n), 0)`,
//! `r = f32(s / sqrt(f64(v·s·s) + eps))` (the division and square root in double);
//! LayerNorm: `y = fma(f32((q − z − m)·r), γ[j], β[j])`; GroupNorm / InstanceNorm:
//! `y = fma(q − z − m, f32(r·γ[c]), β[c])`; then fbgemm's quantize with the output qparams.
//! Verified bit for bit against torch 2.15 goldens (`tests/quantized_norm.rs`).
//!
//! Outputs keep the input's layout (PyTorch's `suggest_memory_format`).

use std::borrow::Cow;

use qtensor::{IntRepr, Layout, QDType, QParams, QTensor, Tensor, quantize_val};

use crate::error::{QnnError, Result};
use crate::float;
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// A per-tensor quint8 input: its row-major integers, scale, zero point and layout.
pub(super) struct QuInt8Input<'a> {
    /// Values in row-major (logical) order.
    pub values: Cow<'a, [u8]>,
    /// Input scale.
    pub scale: f64,
    /// Input zero point.
    pub zero_point: i64,
    /// Logical shape.
    pub shape: Vec<usize>,
    /// The layout the input came in.
    pub layout: Layout,
}

/// Unpacks a `Value::Quantized` per-tensor quint8 tensor (either layout).
pub(super) fn quint8_input<'a>(value: &'a Value, module: &'static str) -> Result<QuInt8Input<'a>> {
    let q = match value {
        Value::Quantized(q) => q,
        other => {
            return Err(QnnError::WrongValueKind {
                module,
                expected: "quantized (quint8, per-tensor)",
                got: other.kind_name(),
            });
        }
    };
    let QParams::PerTensor { scale, zero_point } = *q.qparams() else {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("input must be per-tensor quantized, got {:?}", q.qscheme()),
        });
    };
    if q.dtype() != QDType::QUInt8 {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("input dtype must be quint8, got {}", q.dtype()),
        });
    }
    let values = match (q.layout(), q.storage()) {
        (Layout::RowMajor, IntRepr::U8(t)) => Cow::Borrowed(t.data()),
        (_, IntRepr::U8(t)) => Cow::Owned(t.to_row_major()?.into_data()),
        _ => Cow::Owned(q.int_values().iter().map(|&v| v as u8).collect()),
    };
    Ok(QuInt8Input {
        values,
        scale,
        zero_point,
        shape: q.shape().to_vec(),
        layout: q.layout(),
    })
}

/// `InvalidQParams` unless the output scale is finite and positive and the zero point fits
/// quint8.
pub(super) fn check_output_qparams(
    module: &'static str,
    scale: f64,
    zero_point: i64,
) -> Result<()> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("output scale {scale} must be finite and positive"),
        });
    }
    if !(0..=255).contains(&zero_point) {
        return Err(QnnError::InvalidQParams {
            module,
            reason: format!("output zero point {zero_point} is outside quint8's 0..=255"),
        });
    }
    Ok(())
}

/// Checks the one-element `scale` / `zero_point` buffers after loading.
pub(super) fn check_loaded_output(module: &'static str, scale: &[f64], zp: &[i64]) -> Result<()> {
    match (scale, zp) {
        ([s], [z]) => check_output_qparams(module, *s, *z),
        _ => Err(QnnError::InvalidQParams {
            module,
            reason: format!(
                "scale and zero_point must hold one value each, got {} and {}",
                scale.len(),
                zp.len()
            ),
        }),
    }
}

/// Wraps row-major quint8 results as a quantized value in `layout` (channels-last only for
/// 4-d shapes).
pub(super) fn quint8_output(
    values: Vec<u8>,
    shape: &[usize],
    layout: Layout,
    scale: f64,
    zero_point: i64,
) -> Result<Value> {
    let q = QTensor::from_u8_storage(
        values,
        shape,
        Layout::RowMajor,
        QDType::QUInt8,
        QParams::PerTensor { scale, zero_point },
    )?;
    Ok(Value::Quantized(
        if layout == Layout::ChannelsLast && shape.len() == 4 {
            q.to_channels_last()?
        } else {
            q
        },
    ))
}

/// How the affine parameters apply.
#[derive(Clone, Copy)]
enum Affine<'a> {
    /// LayerNorm: one `(γ, β)` per element of the normalized row.
    Elementwise(Option<&'a [f32]>, Option<&'a [f32]>),
    /// GroupNorm / InstanceNorm: one `(γ, β)` per channel; `channels` in all, `per_group` in
    /// each row.
    PerChannel {
        gamma: Option<&'a [f32]>,
        beta: Option<&'a [f32]>,
        channels: usize,
        per_group: usize,
    },
}

/// ATen's `quantized_normalize_kernel` over `x.len() / n` rows of `n` values.
fn normalize(
    x: &[u8],
    n: usize,
    (x_scale, x_zp): (f64, i64),
    eps: f64,
    affine: Affine<'_>,
    (out_scale, out_zp): (f64, i64),
) -> Vec<u8> {
    let xs = x_scale as f32;
    let zpf = x_zp as f32;
    let inv = 1.0f32 / out_scale as f32;
    let ozp = out_zp as i32;
    let q = |y: f32| quantize_val(y, inv, ozp, 0, 255) as u8;
    let mut out = vec![0u8; x.len()];
    if n == 0 {
        return out;
    }
    for (i, (row, orow)) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).enumerate() {
        let s1: i64 = row.iter().map(|&v| i64::from(v)).sum();
        let s2: i64 = row.iter().map(|&v| i64::from(v) * i64::from(v)).sum();
        let nf = n as f32;
        let mean_sh = s1 as f32 / nf;
        let mean = mean_sh - zpf;
        let var = (-mean_sh).mul_add(mean_sh, s2 as f32 / nf).max(0.0);
        let r = (f64::from(xs) / (f64::from(var * xs * xs) + eps).sqrt()) as f32;
        let dq = |v: u8| i32::from(v) as f32 - zpf;
        match affine {
            Affine::Elementwise(gamma, beta) => {
                for (j, (o, &v)) in orow.iter_mut().zip(row).enumerate() {
                    let g = gamma.map_or(1.0, |g| g[j]);
                    let b = beta.map_or(0.0, |b| b[j]);
                    *o = q(((dq(v) - mean) * r).mul_add(g, b));
                }
            }
            Affine::PerChannel {
                gamma,
                beta,
                channels,
                per_group,
            } => {
                let len = n / per_group;
                for (ch, (oc, xc)) in orow
                    .chunks_exact_mut(len.max(1))
                    .zip(row.chunks_exact(len.max(1)))
                    .enumerate()
                {
                    let c = (i * per_group + ch) % channels;
                    let gp = r * gamma.map_or(1.0, |g| g[c]);
                    let b = beta.map_or(0.0, |b| b[c]);
                    for (o, &v) in oc.iter_mut().zip(xc) {
                        *o = q((dq(v) - mean).mul_add(gp, b));
                    }
                }
            }
        }
    }
    out
}

/// The float eps a PyTorch user wrote, from its f32 rounding: the shortest decimal that
/// rounds to `eps` (1e-5 stays 1e-5, not 9.99999974e-6).
fn eps_from_f32(eps: f32) -> f64 {
    format!("{eps}").parse().unwrap_or(f64::from(eps))
}

fn check_param(
    module: &'static str,
    what: &str,
    t: Option<&Tensor<f32>>,
    shape: &[usize],
) -> Result<()> {
    match t {
        Some(t) if t.shape() != shape => Err(QnnError::ShapeMismatch {
            what: format!("{module} {what}"),
            expected: shape.to_vec(),
            got: t.shape().to_vec(),
        }),
        _ => Ok(()),
    }
}

fn check_eps(module: &'static str, eps: f64) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(QnnError::InvalidConfig {
            module,
            reason: format!("eps {eps} must be finite and non-negative"),
        })
    }
}

fn param_tensor(p: Option<&crate::param::Param>) -> Option<Tensor<f32>> {
    p.map(|p| p.value.clone())
}

/// The parts every quantized norm shares: affine parameters, eps, output qparams.
#[derive(Clone, Debug)]
struct NormState {
    weight: Option<Tensor<f32>>,
    bias: Option<Tensor<f32>>,
    eps: f64,
    scale: Vec<f64>,
    zero_point: Vec<i64>,
    training: bool,
}

impl NormState {
    fn new(
        module: &'static str,
        weight: Option<Tensor<f32>>,
        bias: Option<Tensor<f32>>,
        eps: f64,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        check_eps(module, eps)?;
        check_output_qparams(module, output_scale, output_zero_point)?;
        Ok(Self {
            weight,
            bias,
            eps,
            scale: vec![output_scale],
            zero_point: vec![output_zero_point],
            training: false,
        })
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        if let Some(w) = &self.weight {
            f("weight", BufferRef::F32(w));
        }
        if let Some(b) = &self.bias {
            f("bias", BufferRef::F32(b));
        }
        f("scale", BufferRef::F64s(&self.scale));
        f("zero_point", BufferRef::I64s(&self.zero_point));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        if let Some(w) = &mut self.weight {
            f("weight", BufferMut::F32(w));
        }
        if let Some(b) = &mut self.bias {
            f("bias", BufferMut::F32(b));
        }
        f("scale", BufferMut::F64s(&mut self.scale));
        f("zero_point", BufferMut::I64s(&mut self.zero_point));
    }

    fn out(&self) -> (f64, i64) {
        (
            self.scale.first().copied().unwrap_or(1.0),
            self.zero_point.first().copied().unwrap_or(0),
        )
    }

    fn bytes(&self) -> usize {
        let params: usize = [&self.weight, &self.bias]
            .into_iter()
            .flatten()
            .map(|t| 4 * t.numel())
            .sum();
        params + 16
    }
}

macro_rules! norm_module_common {
    () => {
        /// Output scale.
        pub fn output_scale(&self) -> f64 {
            self.state.out().0
        }

        /// Output zero point.
        pub fn output_zero_point(&self) -> i64 {
            self.state.out().1
        }

        /// The epsilon added to the variance.
        pub fn eps(&self) -> f64 {
            self.state.eps
        }

        /// The float scale parameter, if affine.
        pub fn weight(&self) -> Option<&Tensor<f32>> {
            self.state.weight.as_ref()
        }

        /// The float shift parameter, if affine.
        pub fn bias(&self) -> Option<&Tensor<f32>> {
            self.state.bias.as_ref()
        }
    };
}

macro_rules! norm_module_impl {
    ($kind:ident, $name:expr) => {
        fn kind(&self) -> ModuleKind {
            ModuleKind::$kind
        }

        fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
            Err(QnnError::NotTrainable { module: $name })
        }

        fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
            self.state.visit(f);
        }

        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
            self.state.visit_mut(f);
        }

        fn train(&mut self, mode: bool) {
            self.state.training = mode;
        }

        fn is_training(&self) -> bool {
            self.state.training
        }

        fn after_load(&mut self) -> Result<()> {
            check_loaded_output($name, &self.state.scale, &self.state.zero_point)
        }

        fn param_bytes(&self) -> usize {
            self.state.bytes()
        }
    };
}

const LN: &str = "quantized::LayerNorm";

/// `torch.ao.nn.quantized.LayerNorm`: normalizes the trailing `normalized_shape` dims of a
/// quint8 input and requantizes with the output qparams.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    normalized_shape: Vec<usize>,
    state: NormState,
}

impl LayerNorm {
    /// A layer with optional elementwise affine parameters (shaped `normalized_shape`).
    ///
    /// Errors: an empty normalized shape, parameters of another shape, a negative eps, an
    /// output scale that is not finite and positive or a zero point outside 0..=255.
    pub fn new(
        normalized_shape: &[usize],
        weight: Option<Tensor<f32>>,
        bias: Option<Tensor<f32>>,
        eps: f64,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if normalized_shape.is_empty() {
            return Err(QnnError::InvalidConfig {
                module: LN,
                reason: "normalized_shape must not be empty".into(),
            });
        }
        check_param(LN, "weight", weight.as_ref(), normalized_shape)?;
        check_param(LN, "bias", bias.as_ref(), normalized_shape)?;
        Ok(Self {
            normalized_shape: normalized_shape.to_vec(),
            state: NormState::new(LN, weight, bias, eps, output_scale, output_zero_point)?,
        })
    }

    /// `nnq.LayerNorm.from_float`: the float layer's parameters and eps with the observed
    /// output qparams.
    pub fn from_float(
        float: &float::LayerNorm,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(
            float.normalized_shape(),
            param_tensor(float.weight.as_ref()),
            param_tensor(float.bias.as_ref()),
            eps_from_f32(float.eps()),
            output_scale,
            output_zero_point,
        )
    }

    /// The trailing shape normalized over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    norm_module_common!();
}

impl Module for LayerNorm {
    norm_module_impl!(QuantizedLayerNorm, LN);

    fn extra_repr(&self) -> String {
        let st = &self.state;
        crate::repr::layer_norm_args(
            &self.normalized_shape,
            &crate::repr::py_float(st.eps),
            st.weight.is_some(),
            st.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = quint8_input(input, LN)?;
        let d = self.normalized_shape.len();
        if x.shape.len() < d || x.shape[x.shape.len() - d..] != self.normalized_shape[..] {
            return Err(QnnError::ShapeMismatch {
                what: format!("{LN} input trailing dims vs normalized_shape"),
                expected: self.normalized_shape.clone(),
                got: x.shape.clone(),
            });
        }
        let n = self.normalized_shape.iter().product();
        let s = &self.state;
        let affine = Affine::Elementwise(
            s.weight.as_ref().map(Tensor::data),
            s.bias.as_ref().map(Tensor::data),
        );
        let y = normalize(
            &x.values,
            n,
            (x.scale, x.zero_point),
            s.eps,
            affine,
            s.out(),
        );
        let (os, oz) = s.out();
        quint8_output(y, &x.shape, x.layout, os, oz)
    }
}

/// Runs the group-normalization kernel on `(N, C, *)` input with `groups` groups.
fn group_forward(
    module: &'static str,
    input: &Value,
    num_channels: usize,
    groups: usize,
    min_rank: usize,
    s: &NormState,
) -> Result<Value> {
    let x = quint8_input(input, module)?;
    if x.shape.len() < min_rank {
        return Err(QnnError::WrongRank {
            module,
            expected: if min_rank == 4 {
                "4-d (N, C, H, W)"
            } else {
                "(N, C, *)"
            },
            got: x.shape.clone(),
        });
    }
    if x.shape[1] != num_channels {
        return Err(QnnError::ShapeMismatch {
            what: format!("{module} input channels"),
            expected: vec![num_channels],
            got: vec![x.shape[1]],
        });
    }
    let per_group = num_channels / groups;
    let n = per_group * x.shape[2..].iter().product::<usize>();
    let affine = Affine::PerChannel {
        gamma: s.weight.as_ref().map(Tensor::data),
        beta: s.bias.as_ref().map(Tensor::data),
        channels: num_channels,
        per_group,
    };
    let y = normalize(
        &x.values,
        n,
        (x.scale, x.zero_point),
        s.eps,
        affine,
        s.out(),
    );
    let (os, oz) = s.out();
    quint8_output(y, &x.shape, x.layout, os, oz)
}

const GN: &str = "quantized::GroupNorm";

/// `torch.ao.nn.quantized.GroupNorm`: group normalization of a quint8 `(N, C, *)` input with
/// per-channel float affine parameters, requantized with the output qparams.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    num_groups: usize,
    num_channels: usize,
    state: NormState,
}

impl GroupNorm {
    /// A layer with optional per-channel affine parameters (`[num_channels]`).
    ///
    /// Errors: zero groups, channels not divisible by groups, parameters of another shape, a
    /// negative eps, invalid output qparams.
    pub fn new(
        num_groups: usize,
        num_channels: usize,
        weight: Option<Tensor<f32>>,
        bias: Option<Tensor<f32>>,
        eps: f64,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if num_groups == 0 || num_channels == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(QnnError::InvalidConfig {
                module: GN,
                reason: format!(
                    "num_channels {num_channels} must be a positive multiple of num_groups {num_groups}"
                ),
            });
        }
        check_param(GN, "weight", weight.as_ref(), &[num_channels])?;
        check_param(GN, "bias", bias.as_ref(), &[num_channels])?;
        Ok(Self {
            num_groups,
            num_channels,
            state: NormState::new(GN, weight, bias, eps, output_scale, output_zero_point)?,
        })
    }

    /// `nnq.GroupNorm.from_float`.
    pub fn from_float(
        float: &float::GroupNorm,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(
            float.num_groups(),
            float.num_channels(),
            param_tensor(float.weight()),
            param_tensor(float.bias()),
            float.eps(),
            output_scale,
            output_zero_point,
        )
    }

    /// Number of groups.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Number of channels.
    pub fn num_channels(&self) -> usize {
        self.num_channels
    }

    norm_module_common!();
}

impl Module for GroupNorm {
    norm_module_impl!(QuantizedGroupNorm, GN);

    fn extra_repr(&self) -> String {
        let st = &self.state;
        crate::repr::group_norm_args(
            self.num_groups,
            self.num_channels(),
            &crate::repr::py_float(st.eps),
            st.weight.is_some(),
            st.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        group_forward(
            GN,
            input,
            self.num_channels,
            self.num_groups,
            2,
            &self.state,
        )
    }
}

const IN: &str = "quantized::InstanceNorm2d";

/// `torch.ao.nn.quantized.InstanceNorm2d`: every `H × W` plane of a quint8 `(N, C, H, W)`
/// input normalized (GroupNorm with one channel per group), requantized with the output
/// qparams.
#[derive(Clone, Debug)]
pub struct InstanceNorm2d {
    num_features: usize,
    state: NormState,
}

impl InstanceNorm2d {
    /// A layer with optional per-channel affine parameters (`[num_features]`).
    ///
    /// Errors: zero features, parameters of another shape, a negative eps, invalid output
    /// qparams.
    pub fn new(
        num_features: usize,
        weight: Option<Tensor<f32>>,
        bias: Option<Tensor<f32>>,
        eps: f64,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        if num_features == 0 {
            return Err(QnnError::InvalidConfig {
                module: IN,
                reason: "num_features must be positive".into(),
            });
        }
        check_param(IN, "weight", weight.as_ref(), &[num_features])?;
        check_param(IN, "bias", bias.as_ref(), &[num_features])?;
        Ok(Self {
            num_features,
            state: NormState::new(IN, weight, bias, eps, output_scale, output_zero_point)?,
        })
    }

    /// `nnq.InstanceNorm2d.from_float`.
    pub fn from_float(
        float: &float::InstanceNorm2d,
        output_scale: f64,
        output_zero_point: i64,
    ) -> Result<Self> {
        Self::new(
            float.num_features(),
            param_tensor(float.weight()),
            param_tensor(float.bias()),
            float.eps(),
            output_scale,
            output_zero_point,
        )
    }

    /// Number of channels.
    pub fn num_features(&self) -> usize {
        self.num_features
    }

    norm_module_common!();
}

impl Module for InstanceNorm2d {
    norm_module_impl!(QuantizedInstanceNorm2d, IN);

    /// `affine` says whether a weight is present (PyTorch's quantized module prints `False`
    /// whatever its weight).
    fn extra_repr(&self) -> String {
        let st = &self.state;
        crate::repr::instance_norm_args(
            self.num_features(),
            &crate::repr::py_float(st.eps),
            st.weight.is_some(),
            st.bias.is_some(),
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let c = self.num_features;
        group_forward(IN, input, c, c, 4, &self.state)
    }
}
