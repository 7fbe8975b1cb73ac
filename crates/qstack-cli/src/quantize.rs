//! The int8 modes: each is one `build_<mode>` function from the trained float model (and the
//! data it needs) to a [`Model`]. They report [`CliError::NotAvailable`] until the library
//! pieces they need land (qnn's quantized and dynamic modules, qflow's graph and passes).

use crate::data::{Normalizer, Split};
use crate::error::{CliError, Result};
use crate::model::{FloatModel, Model};
use crate::training::TrainConfig;

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
}

impl Backend {
    /// PyTorch's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Fbgemm => "fbgemm",
            Backend::X86 => "x86",
            Backend::Qnnpack => "qnnpack",
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
    /// Hide progress bars.
    pub quiet: bool,
}

/// Dynamic int8: `qflow::quantize_dynamic` over Linear/LSTM layers (LeNet5's convolutions stay
/// float, as in PyTorch).
pub fn build_dynamic(_float: &FloatModel, _inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    Err(CliError::NotAvailable {
        what: QuantMode::Dynamic.label().into(),
        waiting_for: "qflow's quantize_dynamic pass".into(),
    })
}

/// Static int8: build the qflow graph, fuse, prepare with the backend's qconfig
/// (per-channel weights, histogram activations), calibrate on `calib_size` images, convert.
pub fn build_static(_float: &FloatModel, _inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    Err(CliError::NotAvailable {
        what: QuantMode::Static.label().into(),
        waiting_for: "qflow's prepare / convert passes".into(),
    })
}

/// QAT int8: prepare_qat, fine-tune with fake quantization, convert.
pub fn build_qat(_float: &FloatModel, _inputs: &QuantInputs<'_>) -> Result<Box<dyn Model>> {
    Err(CliError::NotAvailable {
        what: QuantMode::Qat.label().into(),
        waiting_for: "qflow's prepare_qat / convert passes".into(),
    })
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
