//! [`PreparedRequantize`]: the requantization of one [`PackedWeights`] built once.
//!
//! [`Output::QUInt8`](super::Output::QUInt8) builds on every call what its [`Requantize`]
//! implies: the multipliers `f32(f32(s_in·s_w[n])/s_out)`, the bias terms (one division per
//! output channel) and the activation zero point's per-column correction. A layer whose
//! activation and output qparams do not change between calls (a static quantized Linear)
//! builds them once here and passes
//! [`Output::QUInt8Prepared`](super::Output::QUInt8Prepared): the same bits, no per-call
//! set-up.

use super::driver;
use super::microkernel;
use super::pack::PackedWeights;
use super::pipeline::{RequantVecs, Requantize};
use crate::error::{GemmError, Result};

/// A requantize-to-quint8 pipeline prepared for one [`PackedWeights`] (and its clones) and
/// one activation scale and zero point.
#[derive(Clone, Debug)]
pub struct PreparedRequantize {
    weights: u64,
    act_scale: f32,
    act_zero_point: i32,
    pub(crate) vecs: RequantVecs,
    pub(crate) corr: Vec<i32>,
}

impl PreparedRequantize {
    /// Builds the pipeline of `params` for `weights` and activations of scale
    /// `params.act_scale` and zero point `act_zero_point`.
    ///
    /// Errors: those of [`super::gemm_u8s8`] for `params` and the activation zero point, or a
    /// family this process cannot run.
    pub fn new(
        weights: &PackedWeights,
        params: Requantize<'_>,
        act_zero_point: i32,
    ) -> Result<Self> {
        check_act_zero_point(act_zero_point)?;
        let kernel = microkernel::kernel_for(weights.kind())?;
        let vecs = params.prepare(weights)?;
        let mut corr = vec![0; weights.n()];
        driver::column_fix(kernel, act_zero_point, weights, 0..weights.n(), &mut corr);
        Ok(PreparedRequantize {
            weights: weights.id(),
            act_scale: params.act_scale,
            act_zero_point,
            vecs,
            corr,
        })
    }

    /// The activation scale it was built for.
    pub fn act_scale(&self) -> f32 {
        self.act_scale
    }

    /// The activation zero point it was built for.
    pub fn act_zero_point(&self) -> i32 {
        self.act_zero_point
    }

    /// Whether it was built for `weights` (the same packing or a clone of it).
    pub fn is_for(&self, weights: &PackedWeights) -> bool {
        self.weights == weights.id()
    }

    /// Errors unless it was built for `weights` and activation zero point `za`.
    pub(crate) fn check(&self, weights: &PackedWeights, za: i32) -> Result<()> {
        if !self.is_for(weights) {
            return Err(GemmError::PreparedMismatch { what: "weights" });
        }
        if za != self.act_zero_point {
            return Err(GemmError::PreparedMismatch {
                what: "activation zero point",
            });
        }
        Ok(())
    }
}

/// Errors unless `za` is a quint8 zero point.
pub(crate) fn check_act_zero_point(za: i32) -> Result<()> {
    if (0..=255).contains(&za) {
        Ok(())
    } else {
        Err(GemmError::ZeroPointOutOfRange {
            what: "activation zero point",
            zero_point: za,
            min: 0,
            max: 255,
        })
    }
}
