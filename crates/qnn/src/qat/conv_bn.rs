//! QAT Conv/Linear+BatchNorm: `nniqat.ConvBn1d`, `ConvBnReLU1d`, `ConvBn2d`, `ConvBnReLU2d` and
//! `LinearBn1d` — one generic [`QatBnFolded`] over the float layer (PyTorch's `_ConvBnNd` and
//! `LinearBn1d`, which share the approximate single-pass training forward).
//!
//! Forward: `s = bn.weight / sqrt(running_var + eps)`, `y0 = layer(x, fake_quant(W * s[o]))`
//! (zero bias),
//! `y1 = y0 / s[c] + b[c]`, `z = bn(y1)` (batch statistics and running-statistics updates in
//! training with BN stats not frozen, running statistics otherwise), then ReLU for the ReLU
//! variant. Backward follows the same graph (through `s` into `bn.weight` too).

use qtensor::{QParams, Tensor};

use super::FakeQuantSpec;
use super::fake_quant::FakeQuant;
use super::layer::{QatBatchNorm, QatFloatLayer, name_and_kind};
use super::weight::{WeightFakeQuant, accumulate, not_halved, relu_backward, relu_in_place};
use crate::error::{QnnError, Result};
use crate::float::util::{f32_grad, f32_input, saved};
use crate::fused::{self, BnFoldParams};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef, Param};
use crate::{Value, float};

/// What forward keeps for backward.
#[derive(Clone, Debug)]
struct Saved {
    /// The layer output before the division, `[N, C, ...]`.
    y0: Tensor<f32>,
    /// `bn.weight / running_std` per channel.
    scale_factor: Vec<f32>,
    /// `sqrt(running_var + eps)` per channel.
    running_std: Vec<f32>,
    /// The module's output (after the ReLU, if any).
    output: Tensor<f32>,
}

/// A QAT Conv/Linear + BatchNorm (+ ReLU when `RELU`), generic over the float layer `L`
/// (whose batch norm is `L::Bn`): [`ConvBn1d`], [`ConvBnReLU1d`], [`ConvBn2d`],
/// [`ConvBnReLU2d`], [`LinearBn1d`]. State-dict names as PyTorch's: `weight`, `bias` (if the
/// layer had one), `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var`,
/// `bn.num_batches_tracked`, `weight_fake_quant.*`.
#[derive(Clone, Debug)]
pub struct QatBnFolded<L: QatFloatLayer, const RELU: bool> {
    config: L::Config,
    /// Layer weight, `[C_out, C_in / groups, k...]` or `[out_features, in_features]`.
    pub weight: Param,
    /// Layer bias, `[C_out]`, if the float layer had one.
    pub bias: Option<Param>,
    bn: L::Bn,
    weight_fq: WeightFakeQuant,
    freeze_bn: bool,
    inner: Option<L>,
    saved: Option<Saved>,
    training: bool,
}

/// A QAT Conv2d + BatchNorm2d (+ ReLU when `RELU`).
pub type QatConvBn2d<const RELU: bool> = QatBnFolded<float::Conv2d, RELU>;
/// A QAT Conv1d + BatchNorm1d (+ ReLU when `RELU`).
pub type QatConvBn1d<const RELU: bool> = QatBnFolded<float::Conv1d, RELU>;

/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvBn2d`.
pub type ConvBn2d = QatConvBn2d<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvBnReLU2d`.
pub type ConvBnReLU2d = QatConvBn2d<true>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvBn1d`.
pub type ConvBn1d = QatConvBn1d<false>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.ConvBnReLU1d`.
pub type ConvBnReLU1d = QatConvBn1d<true>;
/// PyTorch's `torch.ao.nn.intrinsic.qat.LinearBn1d` (converts to a quantized `Linear`).
pub type LinearBn1d = QatBnFolded<float::Linear, false>;

impl<L: QatFloatLayer, const RELU: bool> QatBnFolded<L, RELU> {
    const ENTRY: Option<(&'static str, ModuleKind)> = L::NAMES.with_bn[RELU as usize];
    const NAME: &'static str = match Self::ENTRY {
        Some((name, _)) => name,
        None => "qat",
    };

    /// PyTorch's `from_float` on the fused float module's parts: the layer's hyper-parameters,
    /// weight and bias, the batch norm as it is (weight, bias, running statistics, eps,
    /// momentum), and a fresh weight fake-quant. The new module is in training mode with BN
    /// statistics updating. The batch norm must be affine and track running statistics, with
    /// `num_features == out_channels`.
    pub fn from_parts(layer: L, mut bn: L::Bn, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
        name_and_kind(Self::ENTRY)?;
        not_halved(Self::NAME, layer.is_halved())?;
        let cfg = *bn.bn_config();
        if !cfg.affine || !cfg.track_running_stats {
            return Err(QnnError::InvalidConfig {
                module: Self::NAME,
                reason: format!(
                    "the batch norm must be affine and track running statistics (affine={}, track_running_stats={})",
                    cfg.affine, cfg.track_running_stats
                ),
            });
        }
        let config = layer.layer_config();
        let out = L::out_channels(&config);
        if cfg.num_features != out {
            return Err(QnnError::InvalidConfig {
                module: Self::NAME,
                reason: format!(
                    "the layer's output channels {out} must equal the batch norm's num_features {}",
                    cfg.num_features
                ),
            });
        }
        bn.train(true);
        Ok(Self {
            config,
            weight: layer.weight_param().clone(),
            bias: layer.bias_param().cloned(),
            bn,
            weight_fq: WeightFakeQuant::new(weight_fake_quant, out)?,
            freeze_bn: false,
            inner: None,
            saved: None,
            training: true,
        })
    }

    /// The layer's hyper-parameters.
    pub fn config(&self) -> &L::Config {
        &self.config
    }

    /// The batch norm (`bn`).
    pub fn bn(&self) -> &L::Bn {
        &self.bn
    }

    /// The weight fake-quant.
    pub fn weight_fake_quant(&self) -> &dyn FakeQuant {
        self.weight_fq.fq.as_ref()
    }

    /// The weight fake-quant, mutably (toggles).
    pub fn weight_fake_quant_mut(&mut self) -> &mut dyn FakeQuant {
        self.weight_fq.fq.as_mut()
    }

    /// PyTorch's `freeze_bn_stats()`: the batch norm uses and keeps its running statistics.
    pub fn freeze_bn_stats(&mut self) {
        self.freeze_bn = true;
        self.bn.train(false);
    }

    /// PyTorch's `update_bn_stats()`: the batch norm normalizes with batch statistics and
    /// updates its running ones again.
    pub fn update_bn_stats(&mut self) {
        self.freeze_bn = false;
        self.bn.train(true);
    }

    /// True after [`QatBnFolded::freeze_bn_stats`].
    pub fn is_bn_frozen(&self) -> bool {
        self.freeze_bn
    }

    fn fold_params(&self) -> Result<BnFoldParams<'_>> {
        match (self.bn.bn_running_mean(), self.bn.bn_running_var()) {
            (Some(running_mean), Some(running_var)) => Ok(BnFoldParams {
                running_mean,
                running_var,
                eps: self.bn.bn_config().eps,
                weight: self.bn.bn_weight().map(|p| &p.value),
                bias: self.bn.bn_bias().map(|p| &p.value),
            }),
            _ => Err(QnnError::InvalidConfig {
                module: Self::NAME,
                reason: "the batch norm has no running statistics".into(),
            }),
        }
    }

    /// PyTorch's `to_float()`: the float layer with the batch norm folded in with its running
    /// statistics (`fuse_conv_bn_weights` / `fuse_linear_bn_weights`, bit for bit), in this
    /// module's train/eval mode. For the ReLU variants this is the inner convolution of the
    /// fused `ConvReLU1d` / `ConvReLU2d`.
    pub fn to_float(&self) -> Result<L> {
        let p = self.fold_params()?;
        let (w, b) = L::fold_bn(&self.weight.value, self.bias.as_ref().map(|b| &b.value), &p)?;
        let mut f = L::build(self.config, w, Some(b))?;
        f.train(self.training);
        Ok(f)
    }

    /// The folded float layer and the weight qparams as PyTorch's quantized `from_float` gets
    /// them: fold, `weight_fake_quant(folded weight)`, `calculate_qparams()`.
    pub fn to_float_with_weight_qparams(&mut self) -> Result<(L, QParams)> {
        let f = self.to_float()?;
        let qparams = self.weight_fq.convert_qparams(&f.weight_param().value)?;
        Ok((f, qparams))
    }

    /// `(running_std, scale_factor)` per channel from the current running variance.
    fn scale_factor(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let p = self.fold_params()?;
        let gamma = p.weight.map(|g| g.data()).unwrap_or(&[]);
        let rv = p.running_var.data();
        let c = L::out_channels(&self.config);
        if gamma.len() != c || rv.len() != c {
            return Err(QnnError::ShapeMismatch {
                what: format!("{} bn.weight / running_var vs out_channels", Self::NAME),
                expected: vec![c],
                got: vec![gamma.len().min(rv.len())],
            });
        }
        let running_std: Vec<f32> = rv.iter().map(|&v| (v + p.eps).sqrt()).collect();
        let sf = gamma.iter().zip(&running_std).map(|(g, s)| g / s).collect();
        Ok((running_std, sf))
    }
}

impl ConvBn2d {
    /// From PyTorch's fused float `nni.ConvBn2d`.
    pub fn from_fused(fused: &fused::ConvBn2d, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
        Self::from_parts(fused.conv().clone(), fused.bn().clone(), weight_fake_quant)
    }
}

impl ConvBnReLU2d {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.ConvReLU2d`
    /// around the BN-folded convolution.
    pub fn to_float_fused(&self) -> Result<fused::ConvReLU2d> {
        Ok(fused::ConvReLU2d::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.ConvBnReLU2d`.
    pub fn from_fused(
        fused: &fused::ConvBnReLU2d,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_parts(fused.conv().clone(), fused.bn().clone(), weight_fake_quant)
    }
}

impl ConvBn1d {
    /// From PyTorch's fused float `nni.ConvBn1d`.
    pub fn from_fused(fused: &fused::ConvBn1d, weight_fake_quant: &FakeQuantSpec) -> Result<Self> {
        Self::from_parts(fused.conv().clone(), fused.bn().clone(), weight_fake_quant)
    }
}

impl ConvBnReLU1d {
    /// `to_float()` as PyTorch returns it for this class: the fused float `nni.ConvReLU1d`
    /// around the BN-folded convolution.
    pub fn to_float_fused(&self) -> Result<fused::ConvReLU1d> {
        Ok(fused::ConvReLU1d::new(self.to_float()?, float::ReLU::new()))
    }

    /// From PyTorch's fused float `nni.ConvBnReLU1d`.
    pub fn from_fused(
        fused: &fused::ConvBnReLU1d,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_parts(fused.conv().clone(), fused.bn().clone(), weight_fake_quant)
    }
}

impl LinearBn1d {
    /// From PyTorch's fused float `nni.LinearBn1d`.
    pub fn from_fused(
        fused: &fused::LinearBn1d,
        weight_fake_quant: &FakeQuantSpec,
    ) -> Result<Self> {
        Self::from_parts(
            fused.linear().clone(),
            fused.bn().clone(),
            weight_fake_quant,
        )
    }
}

/// Channel of flat index `i` in an `[N, C, inner]` row-major tensor.
fn channel(i: usize, c: usize, inner: usize) -> usize {
    (i / inner.max(1)) % c.max(1)
}

impl<L: QatFloatLayer, const RELU: bool> Module for QatBnFolded<L, RELU> {
    fn kind(&self) -> ModuleKind {
        Self::ENTRY.map_or(ModuleKind::Custom, |(_, kind)| kind)
    }

    fn extra_repr(&self) -> String {
        L::repr(&self.config, self.bias.is_some())
    }

    /// `(bn)` then `(weight_fake_quant)`, PyTorch's registration order.
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        vec![
            ("bn".to_string(), crate::repr::ReprTree::of(&self.bn)),
            self.weight_fq.repr_child(),
        ]
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, Self::NAME)?;
        let (rank, expected) = L::BN_INPUT_RANK;
        if x.ndim() != rank {
            return Err(QnnError::WrongRank {
                module: Self::NAME,
                expected,
                got: x.shape().to_vec(),
            });
        }
        let (running_std, sf) = self.scale_factor()?;
        let c = L::out_channels(&self.config);
        let w_inner = self.weight.value.numel() / c.max(1);
        let scaled: Vec<f32> = self
            .weight
            .value
            .data()
            .iter()
            .enumerate()
            .map(|(i, &w)| w * sf[channel(i, c, w_inner)])
            .collect();
        let scaled = Tensor::new(self.weight.shape(), scaled)?;
        let wq = self.weight_fq.forward(&scaled)?;
        let mut inner = L::build(self.config, wq, Some(Tensor::zeros(&[c])))?;
        let y0 = inner.forward(&Value::F32(x))?.into_f32(Self::NAME)?;
        let plane: usize = y0.shape()[2..].iter().product();
        let bias = self.bias.as_ref().map(|b| b.value.data());
        let y1: Vec<f32> = y0
            .data()
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let ch = channel(i, c, plane);
                let q = v / sf[ch];
                match bias {
                    Some(b) => q + b[ch],
                    None => q,
                }
            })
            .collect();
        let y1 = Tensor::new(y0.shape(), y1)?;
        let mut z = self.bn.forward(&Value::F32(y1))?.into_f32(Self::NAME)?;
        if RELU {
            relu_in_place(&mut z);
        }
        self.inner = Some(inner);
        self.saved = Some(Saved {
            y0,
            scale_factor: sf,
            running_std,
            output: z.clone(),
        });
        Ok(Value::F32(z))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let s = saved(&self.saved, Self::NAME)?;
        let mut g = f32_grad(grad_output, Self::NAME, s.output.shape())?;
        if RELU {
            g = relu_backward(&g, &s.output)?;
        }
        let dy1 = self.bn.backward(&Value::F32(g))?.into_f32(Self::NAME)?;
        let c = L::out_channels(&self.config);
        let plane: usize = s.y0.shape()[2..].iter().product();
        let sf = &s.scale_factor;
        let mut db = vec![0.0f64; c];
        let mut dsf = vec![0.0f64; c];
        let dy0: Vec<f32> = dy1
            .data()
            .iter()
            .zip(s.y0.data())
            .enumerate()
            .map(|(i, (&d, &y))| {
                let ch = channel(i, c, plane);
                db[ch] += f64::from(d);
                dsf[ch] += f64::from(-d * y / (sf[ch] * sf[ch]));
                d / sf[ch]
            })
            .collect();
        let dy0 = Tensor::new(s.y0.shape(), dy0)?;
        let inner = self
            .inner
            .as_mut()
            .ok_or(QnnError::BackwardBeforeForward { module: Self::NAME })?;
        inner.zero_grad();
        let dx = inner.backward(&Value::F32(dy0))?;
        let dws = self.weight_fq.backward(&inner.weight_param().grad)?;
        let w_inner = self.weight.value.numel() / c.max(1);
        for (i, ((gw, &d), &w)) in self
            .weight
            .grad
            .data_mut()
            .iter_mut()
            .zip(dws.data())
            .zip(self.weight.value.data())
            .enumerate()
        {
            let ch = channel(i, c, w_inner);
            *gw += d * sf[ch];
            dsf[ch] += f64::from(d * w);
        }
        if let Some(b) = &mut self.bias {
            let db = Tensor::new(&[c], db.iter().map(|&v| v as f32).collect())?;
            accumulate(&mut b.grad, &db);
        }
        let running_std = &s.running_std;
        self.bn.visit_params_mut(&mut |name, p| {
            if name == "weight" {
                for (k, gk) in p.grad.data_mut().iter_mut().enumerate() {
                    *gk += (dsf[k] as f32) / running_std[k];
                }
            }
        });
        Ok(dx)
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("weight", &self.weight);
        if let Some(b) = &self.bias {
            f("bias", b);
        }
        self.bn
            .visit_params(&mut |name, p| f(&format!("bn.{name}"), p));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("weight", &mut self.weight);
        if let Some(b) = &mut self.bias {
            f("bias", b);
        }
        self.bn
            .visit_params_mut(&mut |name, p| f(&format!("bn.{name}"), p));
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.bn
            .visit_buffers(&mut |name, b| f(&format!("bn.{name}"), b));
        self.weight_fq.visit_buffers(f);
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.bn
            .visit_buffers_mut(&mut |name, b| f(&format!("bn.{name}"), b));
        self.weight_fq.visit_buffers_mut(f);
    }

    fn after_load(&mut self) -> Result<()> {
        self.weight_fq.fq.after_load()
    }

    /// PyTorch's `_ConvBnNd.train`: the batch norm follows only while its statistics are not
    /// frozen.
    fn train(&mut self, mode: bool) {
        self.training = mode;
        if !self.freeze_bn {
            self.bn.train(mode);
        }
        self.weight_fq.fq.train(mode);
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
