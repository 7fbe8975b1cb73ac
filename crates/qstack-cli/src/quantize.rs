//! The int8 modes: each is one `build_<mode>` function from the trained float model (and the
//! data it needs) to a [`Model`], running qflow's passes on a copy of the float graph. Models
//! that are not qflow graphs (the row LSTM, the patch Transformer) get dynamic int8 by a direct
//! module swap and report [`CliError::NotAvailable`] for the static and QAT flows.

use crate::data::{Normalizer, Split};
use crate::error::{CliError, Result};
use qflow::Graph;
use qflow::passes::{
    DynamicDType, convert, fuse_auto, fuse_auto_qat, prepare, prepare_qat, quantize_dynamic,
};
use qflow::qconfig::{QConfigMapping, get_default_qat_qconfig, get_default_qconfig};
use qnn::state_dict::{load_state_dict, state_dict};
use qnn::{Module, Value};

use crate::data::{make_batch, sequential_batches};
use crate::progress;
use crate::zoo::{Arch, DynamicPatchTransformer, DynamicRowLstm, PatchTransformer, RowLstm};

use crate::model::{FloatModel, Model, QuantizedModel};
use crate::training::{OptimizerKind, TrainConfig};

/// Which int8 flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QuantMode {
    /// Dynamic quantization (`quantize_dynamic`): int8 weights, activations quantized per batch.
    Dynamic,
    /// Post-training static quantization: per-channel weights, histogram activation observers,
    /// calibrated on training images.
    Static,
    /// Quantization-aware training: fake-quant fine-tuning, then convert.
    Qat,
}

impl QuantMode {
    /// Every mode, in table order.
    pub const ALL: [QuantMode; 3] = [QuantMode::Dynamic, QuantMode::Static, QuantMode::Qat];

    /// Row label.
    pub fn label(self) -> &'static str {
        match self {
            QuantMode::Dynamic => "dynamic int8",
            QuantMode::Static => "static int8",
            QuantMode::Qat => "QAT int8",
        }
    }

    /// File stem in the output folder.
    pub fn file_stem(self) -> &'static str {
        match self {
            QuantMode::Dynamic => "int8-dynamic",
            QuantMode::Static => "int8-static",
            QuantMode::Qat => "int8-qat",
        }
    }
}

/// The quantized engine whose numerics (and default qconfig) to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// x86 fbgemm: quint8 activations with reduce_range, per-channel qint8 weights.
    Fbgemm,
    /// PyTorch's `x86` engine (fbgemm numerics, no reduce_range on VNNI CPUs).
    X86,
    /// qnnpack (ARM): per-tensor weights, no reduce_range.
    Qnnpack,
    /// PyTorch's `onednn` engine: full-range activations (0..255, no reduce_range) and
    /// per-channel symmetric weights — qflow's `full_range_qconfig`. qstack's kernels sum
    /// exactly on every CPU, so this is the full-range choice everywhere (PyTorch's fbgemm would
    /// saturate it on CPUs without VNNI).
    Onednn,
}

impl Backend {
    /// qflow's backend of the same name.
    pub fn qflow(self) -> qflow::qconfig::Backend {
        match self {
            Backend::Fbgemm => qflow::qconfig::Backend::Fbgemm,
            Backend::X86 => qflow::qconfig::Backend::X86,
            Backend::Qnnpack => qflow::qconfig::Backend::Qnnpack,
            Backend::Onednn => qflow::qconfig::Backend::Onednn,
        }
    }

    /// PyTorch's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fbgemm => "fbgemm",
            Backend::X86 => "x86",
            Backend::Qnnpack => "qnnpack",
            Backend::Onednn => "onednn",
        }
    }
}

/// What a quantization flow may use besides the float model.
pub struct QuantInputs<'a> {
    /// Training images (calibration draws its first `calib_size`; QAT fine-tunes on them).
    pub train: &'a Split,
    /// Their normalization.
    pub norm: &'a Normalizer,
    /// Calibration images for static quantization.
    pub calib_size: usize,
    /// The engine.
    pub backend: Backend,
    /// QAT fine-tuning settings.
    pub qat: TrainConfig,
    /// Training images QAT fine-tunes on (the first ones).
    pub qat_images: usize,
    /// Hide progress bars.
    pub quiet: bool,
}

impl<'a> QuantInputs<'a> {
    /// The inputs of the stand-alone `quantize` and `inspect` commands: calibration on the
    /// first `calib_size` training images (an error naming `--calib-size` if there are fewer),
    /// and QAT fine-tuning of saved weights for one epoch of 10,000 images with SGD (lr 1e-4,
    /// momentum 0.9, cosine decay).
    pub fn for_saved_weights(
        train: &'a Split,
        norm: &'a Normalizer,
        calib_size: usize,
        backend: Backend,
        quiet: bool,
    ) -> Result<Self> {
        if calib_size > train.len() {
            return Err(CliError::InvalidArg {
                flag: "--calib-size",
                reason: format!(
                    "{calib_size} is more than the {} training images available",
                    train.len()
                ),
            });
        }
        Ok(Self {
            train,
            norm,
            calib_size,
            backend,
            qat: TrainConfig {
                epochs: 1,
                batch_size: 64,
                lr: 1e-4,
                optimizer: OptimizerKind::Sgd,
                momentum: 0.9,
                seed: 0,
                cosine: true,
            },
            qat_images: 10_000,
            quiet,
        })
    }
}

/// Dynamic int8: a copy of the float graph through `qflow::passes::quantize_dynamic` with
/// PyTorch's default kinds (Linear, LSTM, …) and qint8 weights; LeNet5's convolutions stay
/// float, as in PyTorch. The row LSTM (not a graph) gets its LSTM and classifier swapped
/// directly ([`DynamicRowLstm`]), the patch Transformer its Linears
/// ([`DynamicPatchTransformer`]).
pub fn build_dynamic(float: &FloatModel, inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    wrap(QuantMode::Dynamic, float, dynamic_module(float, inputs)?)
}

fn dynamic_module(float: &FloatModel, _inputs: &QuantInputs<'_>) -> Result<Box<dyn qnn::Module>> {
    let arch = float.arch();
    if let Some(row_lstm) = float.module().downcast_ref::<RowLstm>() {
        return Ok(Box::new(DynamicRowLstm::from_float(row_lstm)?));
    }
    if let Some(pt) = float.module().downcast_ref::<PatchTransformer>() {
        return Ok(Box::new(DynamicPatchTransformer::from_float(pt)?));
    }
    let mut copy = float_copy(float)?;
    let graph = as_graph(copy.as_mut(), QuantMode::Dynamic, arch)?;
    quantize_dynamic(graph, &[], DynamicDType::QInt8)?;
    Ok(copy)
}

/// Static int8 on a copy of the float graph: qflow's `fuse_auto` (conv+relu, linear+relu),
/// `prepare` with the backend's default QConfig (histogram activations, per-channel weights for
/// fbgemm/x86), calibration on the first `calib_size` training images, `convert`.
pub fn build_static(float: &FloatModel, inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    wrap(QuantMode::Static, float, static_module(float, inputs)?)
}

fn static_module(float: &FloatModel, inputs: &QuantInputs<'_>) -> Result<Box<dyn qnn::Module>> {
    let arch = float.arch();
    let mut copy = float_copy(float)?;
    let graph = as_graph(copy.as_mut(), QuantMode::Static, arch)?;
    graph.eval();
    fuse_auto(graph)?;
    let mapping =
        QConfigMapping::new().set_global(Some(get_default_qconfig(inputs.backend.qflow())));
    prepare(graph, &mapping)?;
    let n = inputs.calib_size.min(inputs.train.len());
    let pb = progress::bar(n as u64, "calibrate", inputs.quiet);
    for idx in sequential_batches(n, 64) {
        let (x, _) = make_batch(inputs.train, &idx, arch.input_layout(), inputs.norm);
        graph.forward(&Value::F32(x))?;
        pb.inc(idx.len() as u64);
    }
    pb.finish_and_clear();
    convert(graph)?;
    Ok(copy)
}

/// Wraps a converted module as the [`Model`] of `mode`.
fn wrap(
    mode: QuantMode,
    float: &FloatModel,
    module: Box<dyn qnn::Module>,
) -> Result<Box<dyn Model>> {
    Ok(Box::new(QuantizedModel::new(
        module,
        float.arch(),
        mode.label(),
    )))
}

/// The converted int8 module of `mode` (a qflow graph whose node names are the float ones),
/// for the numeric suite; [`build`] wraps the same module as a [`Model`].
pub fn quantized_module(
    mode: QuantMode,
    float: &FloatModel,
    inputs: &QuantInputs<'_>,
) -> Result<Box<dyn qnn::Module>> {
    let mut module = match mode {
        QuantMode::Dynamic => dynamic_module(float, inputs)?,
        QuantMode::Static => static_module(float, inputs)?,
        QuantMode::Qat => qat_module(float, inputs)?,
    };
    module.eval();
    Ok(module)
}

/// The float graph the numeric suite compares `mode`'s int8 graph against: a copy of the float
/// model in eval mode, fused like the static / QAT flows fuse it (conv+relu, linear+relu keep
/// the first module's node name), unfused for dynamic quantization.
pub fn float_reference(mode: QuantMode, float: &FloatModel) -> Result<Box<dyn qnn::Module>> {
    let mut copy = float_copy(float)?;
    let graph = as_graph(copy.as_mut(), mode, float.arch())?;
    graph.eval();
    if mode != QuantMode::Dynamic {
        fuse_auto(graph)?;
    }
    Ok(copy)
}

/// A fresh copy of the float model's module (same architecture and state).
fn float_copy(float: &FloatModel) -> Result<Box<dyn qnn::Module>> {
    let mut copy = float.arch().build(0)?;
    load_state_dict(copy.as_mut(), &state_dict(float.module()), true)?;
    Ok(copy)
}

/// The module as a qflow graph, or [`CliError::NotAvailable`] for models not built as graphs.
fn as_graph(module: &mut dyn qnn::Module, mode: QuantMode, arch: Arch) -> Result<&mut Graph> {
    module
        .downcast_mut::<Graph>()
        .ok_or_else(|| CliError::NotAvailable {
            what: format!("{} for {}", mode.label(), arch.name()),
            waiting_for: format!("a qflow graph form of the {} model", arch.name()),
        })
}

/// QAT int8 on a copy of the float graph: `fuse_auto_qat`, `prepare_qat` with the backend's
/// default QAT QConfig (version 1, fused moving-average fake quantization), fine-tuning with
/// `inputs.qat` on the first `inputs.qat_images` training images, then eval and `convert`.
pub fn build_qat(float: &FloatModel, inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    wrap(QuantMode::Qat, float, qat_module(float, inputs)?)
}

fn qat_module(float: &FloatModel, inputs: &QuantInputs<'_>) -> Result<Box<dyn qnn::Module>> {
    let arch = float.arch();
    let mut copy = float_copy(float)?;
    let graph = as_graph(copy.as_mut(), QuantMode::Qat, arch)?;
    graph.train(true);
    fuse_auto_qat(graph)?;
    let qconfig = get_default_qat_qconfig(inputs.backend.qflow(), 1)?;
    prepare_qat(graph, &QConfigMapping::new().set_global(Some(qconfig)))?;
    let subset = inputs.train.take(inputs.qat_images);
    crate::training::train(
        graph,
        arch.input_layout(),
        &subset,
        inputs.norm,
        &inputs.qat,
        inputs.quiet,
        &mut |_| {},
    )?;
    graph.eval();
    convert(graph)?;
    Ok(copy)
}

/// Runs the flow of `mode`.
pub fn build(
    mode: QuantMode,
    float: &FloatModel,
    inputs: &QuantInputs<'_>,
) -> Result<Box<dyn Model>> {
    match mode {
        QuantMode::Dynamic => build_dynamic(float, inputs),
        QuantMode::Static => build_static(float, inputs),
        QuantMode::Qat => build_qat(float, inputs),
    }
}
