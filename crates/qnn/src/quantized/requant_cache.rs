//! [`RequantCache`]: a static quantized Linear's requantization pipelines, built once per
//! activation qparams instead of on every call.
//!
//! The output qparams, bias and fused clamp are fixed at conversion; the activation scale
//! and zero point come with each input, and in a quantized model they are the same on every
//! call (the previous layer's output qparams). So the layer keeps the
//! [`PreparedRequantize`] of the last activation qparams it saw (per packed family; see
//! [`crate::int8_panels::Int8Panels`]) and rebuilds it only when they change. The results are
//! the bits of the per-call pipeline ([`qkernels::gemm::Output::QUInt8`]).

use std::sync::{PoisonError, RwLock};

use qkernels::gemm::{PackedWeights, PreparedRequantize, Requantize};

use crate::error::Result;

/// Prepared pipelines for at most [`SLOTS`] packed families (one, or two on AVX2 without
/// VNNI), all for the same activation qparams.
#[derive(Debug, Default)]
pub(crate) struct RequantCache(RwLock<Vec<PreparedRequantize>>);

/// Families a weight can be packed for at once.
const SLOTS: usize = 2;

impl Clone for RequantCache {
    /// Clones of a layer clone its packed weights with their identity, so the pipelines stay
    /// valid for them.
    fn clone(&self) -> Self {
        let slots = self.0.read().unwrap_or_else(PoisonError::into_inner);
        RequantCache(RwLock::new(slots.clone()))
    }
}

impl RequantCache {
    /// Forgets every pipeline (the output qparams, bias or weights changed).
    pub(crate) fn clear(&mut self) {
        self.0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Runs `f` with the pipeline of `params` for `weights` and activation zero point `za`,
    /// building it (and keeping it for the next calls) when the cached one is for other
    /// activation qparams. `params` must carry the layer's fixed output qparams, bias and
    /// clamp: only the activation qparams are compared.
    pub(crate) fn with<R>(
        &self,
        weights: &PackedWeights,
        params: Requantize<'_>,
        za: i32,
        f: impl FnOnce(&PreparedRequantize) -> R,
    ) -> Result<R> {
        let fits = |p: &PreparedRequantize| {
            p.is_for(weights)
                && p.act_zero_point() == za
                && p.act_scale().to_bits() == params.act_scale.to_bits()
        };
        {
            let slots = self.0.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = slots.iter().find(|p| fits(p)) {
                return Ok(f(p));
            }
        }
        let built = PreparedRequantize::new(weights, params, za)?;
        let out = f(&built);
        let mut slots = self.0.write().unwrap_or_else(PoisonError::into_inner);
        // Pipelines of other activation qparams are stale; keep the other family's.
        slots.retain(|p| {
            !p.is_for(weights)
                && p.act_zero_point() == za
                && p.act_scale().to_bits() == params.act_scale.to_bits()
        });
        slots.truncate(SLOTS - 1);
        slots.push(built);
        Ok(out)
    }
}
