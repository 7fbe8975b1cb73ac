//! Observers as pure statistics: [`Observer::observe`] records a tensor's statistics and
//! [`Observer::calculate_qparams`] answers, exactly as PyTorch's
//! `torch.ao.quantization.observer` classes do (numerics §1.4, §2.2–2.5).
//!
//! An [`ObserverSpec`] is the data form of PyTorch's `Observer.with_args(...)`: a qconfig holds
//! specs, and each layer that needs an observer gets a fresh one from [`ObserverSpec::build`].
//! Observers live here, below the module crates, so that fake-quant (qnn) and the passes (qflow)
//! share them without reaching upward.
//!
//! One file per observer family:
//!
//! | PyTorch class | qstack type | file |
//! |---|---|---|
//! | `MinMaxObserver` | [`MinMaxObserver`] | `minmax.rs` |
//! | `MovingAverageMinMaxObserver` | [`MovingAverageMinMaxObserver`] | `moving_average.rs` |
//! | `PerChannelMinMaxObserver`, `MovingAveragePerChannelMinMaxObserver` | [`PerChannelMinMaxObserver`], [`MovingAveragePerChannelMinMaxObserver`] | `per_channel.rs` |
//! | `HistogramObserver` | [`HistogramObserver`] | `histogram.rs` (with the ATen kernels it needs in `torch_ops.rs`) |
//! | `FixedQParamsObserver` | [`FixedQParamsObserver`] | `fixed.rs` |
//! | `PlaceholderObserver`, `NoopObserver` | [`PlaceholderObserver`], [`NoopObserver`] | `placeholder.rs` |
//! | `RecordingObserver` | [`RecordingObserver`] | `recording.rs` |
//!
//! `uniform.rs` holds what the uniform-quantization observers share (constructor checks,
//! `aminmax`, `_calculate_qparams`), `spec.rs` [`ObserverSpec::build`], `defaults.rs` torch's
//! ready-made observers (`ObserverSpec::default_observer()`, …).
//!
//! Where qstack differs from torch, it is stricter, never different in value:
//! * NaN and infinities are recorded exactly as torch records them (NaN sticks in the buffers),
//!   but where torch's `calculate_qparams` would answer a NaN or infinite scale or zero point,
//!   qstack returns an error: `Unsupported` for a NaN or infinite observed range,
//!   `InvalidScale` for a finite range too wide for an `f32` scale;
//! * per-channel observers reject any change of channel count (torch broadcasts a count of 1);
//! * `HistogramObserver` rejects NaN inputs with an error and leaves its state alone (torch's
//!   `histc` raises after the buffers were overwritten), and a first constant tensor so large
//!   that `histc`'s ±1 widening rounds away (e.g. a lone `f32::MAX`: torch's kernel then casts a
//!   NaN bin position to an integer);
//! * `FixedQParamsObserver` validates its scale, range and zero point.
//!
//! ```
//! use qtensor::observer::{ObserverConfig, ObserverSpec};
//! use qtensor::{QDType, QParams, QScheme, Tensor};
//!
//! let spec = ObserverSpec::MovingAverageMinMax {
//!     config: ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine),
//!     averaging_constant: 0.01,
//! };
//! let mut obs = spec.build()?;
//! obs.observe(&Tensor::new(&[4], vec![-1.0, 0.0, 1.0, 3.0])?)?;
//! assert_eq!(obs.min_max(), Some((-1.0, 3.0)));
//! assert!(matches!(obs.calculate_qparams()?, QParams::PerTensor { zero_point: 64, .. }));
//! # Ok::<(), qtensor::QTensorError>(())
//! ```

mod defaults;
mod fixed;
mod histogram;
mod minmax;
mod moving_average;
mod per_channel;
mod placeholder;
mod recording;
mod spec;
mod torch_ops;
mod uniform;

pub use fixed::FixedQParamsObserver;
pub use histogram::HistogramObserver;
pub use minmax::MinMaxObserver;
pub use moving_average::MovingAverageMinMaxObserver;
pub use per_channel::{MovingAveragePerChannelMinMaxObserver, PerChannelMinMaxObserver};
pub use placeholder::{NoopObserver, PlaceholderObserver};
pub use recording::RecordingObserver;

use std::any::Any;
use std::fmt;

use crate::dtype::QDType;
use crate::error::Result;
use crate::qscheme::{QParams, QScheme};
use crate::tensor::Tensor;

/// A stateful statistics collector that turns what it has seen into quantization parameters.
pub trait Observer: Send + Sync + fmt::Debug {
    /// Records the statistics of `x` (PyTorch's `forward`; the tensor itself passes through
    /// unchanged in PyTorch, so callers keep using `x`).
    fn observe(&mut self, x: &Tensor<f32>) -> Result<()>;

    /// PyTorch's `calculate_qparams()`: per-tensor or per-channel parameters for what has been
    /// observed so far.
    fn calculate_qparams(&self) -> Result<QParams>;

    /// The target dtype (`quint8`, `qint8`, …), or `None` for float placeholders (`float16`).
    fn dtype(&self) -> Option<QDType>;

    /// The quantization scheme it produces.
    fn qscheme(&self) -> QScheme;

    /// The spec this observer was built from (for saving and for building a fresh copy).
    fn spec(&self) -> ObserverSpec;

    /// A boxed copy with the same state.
    fn box_clone(&self) -> Box<dyn Observer>;

    /// For downcasting to the concrete observer (e.g. to read a `Recording` observer's tensors).
    fn as_any(&self) -> &dyn Any;

    /// `(min_val, max_val)` as PyTorch's buffers hold them, where the observer keeps a running
    /// range (per-tensor observers); `None` otherwise.
    fn min_max(&self) -> Option<(f32, f32)> {
        None
    }
}

impl Clone for Box<dyn Observer> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// The arguments every uniform-quantization observer takes (PyTorch's
/// `UniformQuantizationObserverBase.__init__`).
#[derive(Clone, Debug, PartialEq)]
pub struct ObserverConfig {
    /// Target dtype.
    pub dtype: QDType,
    /// Target scheme.
    pub qscheme: QScheme,
    /// Halve the quantized range (PyTorch's `reduce_range`).
    pub reduce_range: bool,
    /// Custom `quant_min` (with `quant_max`), or the dtype's full range when `None`.
    pub quant_min: Option<i64>,
    /// Custom `quant_max`.
    pub quant_max: Option<i64>,
    /// Lower bound for the scale (`torch.finfo(torch.float32).eps` by default).
    pub eps: f32,
}

impl ObserverConfig {
    /// PyTorch's defaults for `dtype` and `qscheme`: no reduce_range, full range, `eps` =
    /// `f32::EPSILON`.
    pub fn new(dtype: QDType, qscheme: QScheme) -> Self {
        ObserverConfig {
            dtype,
            qscheme,
            reduce_range: false,
            quant_min: None,
            quant_max: None,
            eps: f32::EPSILON,
        }
    }
}

/// The dtype a [`ObserverSpec::Placeholder`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaceholderDtype {
    /// A quantized dtype (dynamic activations: qparams are chosen per call, not observed).
    Quantized(QDType),
    /// `torch.float16` (float16 dynamic quantization).
    Float16,
    /// `torch.float32`.
    Float32,
}

/// What observer to build, with its arguments: the data form of PyTorch's
/// `SomeObserver.with_args(...)`.
#[derive(Clone, Debug, PartialEq)]
pub enum ObserverSpec {
    /// `MinMaxObserver`.
    MinMax(ObserverConfig),
    /// `MovingAverageMinMaxObserver`.
    MovingAverageMinMax {
        /// Common arguments.
        config: ObserverConfig,
        /// `averaging_constant` (0.01 by default).
        averaging_constant: f32,
    },
    /// `PerChannelMinMaxObserver`.
    PerChannelMinMax {
        /// Common arguments (a per-channel scheme).
        config: ObserverConfig,
        /// `ch_axis` (0 by default).
        ch_axis: usize,
    },
    /// `MovingAveragePerChannelMinMaxObserver`.
    MovingAveragePerChannelMinMax {
        /// Common arguments (a per-channel scheme).
        config: ObserverConfig,
        /// `ch_axis`.
        ch_axis: usize,
        /// `averaging_constant`.
        averaging_constant: f32,
    },
    /// `HistogramObserver` (2048 bins, upsample rate 16 by default).
    Histogram {
        /// Common arguments.
        config: ObserverConfig,
        /// `bins`.
        bins: usize,
        /// `upsample_rate`.
        upsample_rate: usize,
    },
    /// `PlaceholderObserver`: records nothing; `calculate_qparams` is an error.
    Placeholder {
        /// The dtype it stands for.
        dtype: PlaceholderDtype,
        /// `is_dynamic` (activations quantized per call).
        is_dynamic: bool,
    },
    /// `NoopObserver` (float16 weights): records nothing.
    Noop {
        /// The dtype it stands for.
        dtype: PlaceholderDtype,
    },
    /// `FixedQParamsObserver`: always the given parameters.
    FixedQParams {
        /// The scale.
        scale: f64,
        /// The zero point.
        zero_point: i64,
        /// Target dtype.
        dtype: QDType,
        /// `quant_min`.
        quant_min: i64,
        /// `quant_max`.
        quant_max: i64,
    },
    /// `RecordingObserver`: keeps every tensor it sees (for debugging and the numeric suite).
    Recording {
        /// Target dtype.
        dtype: QDType,
    },
}
