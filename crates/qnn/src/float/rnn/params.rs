//! The four parameters of one recurrent cell (one layer and direction), PyTorch-named, and
//! their f16 form after [`crate::Module::half`].

use std::borrow::Cow;

use half::f16;
use qtensor::Tensor;

use super::cell_math::{CellGrads, CellKind, CellWeights};
use crate::error::Result;
use crate::float::half_weight::{
    backward_on_half, f32_weight, placeholder, round_to_f16, visit_half, visit_half_mut,
};
use crate::float::util::same_shape;
use crate::init::{Rng, uniform};
use crate::param::Param;

/// `weight_ih [G*H, I]`, `weight_hh [G*H, H]`, and optional `bias_ih`, `bias_hh [G*H]`.
///
/// After [`CellParams::half`] the two weight matrices live in f16 ([`CellParams::is_half`]) and
/// the `weight_ih` / `weight_hh` fields are empty placeholders; visitors still see them, widened
/// to f32, under their names. Biases stay f32.
#[derive(Clone, Debug)]
pub struct CellParams {
    /// Input-to-hidden weights, `[G*H, I]`.
    pub weight_ih: Param,
    /// Hidden-to-hidden weights, `[G*H, H]`.
    pub weight_hh: Param,
    /// Input-to-hidden bias, `[G*H]`, if any.
    pub bias_ih: Option<Param>,
    /// Hidden-to-hidden bias, `[G*H]`, if any.
    pub bias_hh: Option<Param>,
    /// `(weight_ih, weight_hh)` in f16 once halved.
    half: Option<(Tensor<f16>, Tensor<f16>)>,
}

/// The f32 weights a step reads: borrowed, or widened from f16 once per call.
pub(crate) struct CellWeightsBuf<'a> {
    w_ih: Cow<'a, [f32]>,
    w_hh: Cow<'a, [f32]>,
    b_ih: Option<&'a [f32]>,
    b_hh: Option<&'a [f32]>,
}

impl CellWeightsBuf<'_> {
    /// The slices, as the cell math takes them.
    pub(crate) fn view(&self) -> CellWeights<'_> {
        CellWeights {
            w_ih: &self.w_ih,
            w_hh: &self.w_hh,
            b_ih: self.b_ih,
            b_hh: self.b_hh,
        }
    }
}

impl CellParams {
    /// PyTorch's default: every parameter uniform in `[-1/sqrt(H), 1/sqrt(H)]`, drawn in the
    /// order weight_ih, weight_hh, bias_ih, bias_hh.
    pub(crate) fn new(
        kind: CellKind,
        input: usize,
        hidden: usize,
        bias: bool,
        rng: &mut Rng,
    ) -> Self {
        let g = kind.gates() * hidden;
        let k = if hidden > 0 {
            1.0 / (hidden as f32).sqrt()
        } else {
            0.0
        };
        let mut p = |shape: &[usize]| Param::new(uniform(shape, -k, k, rng));
        let weight_ih = p(&[g, input]);
        let weight_hh = p(&[g, hidden]);
        let (bias_ih, bias_hh) = if bias {
            (Some(p(&[g])), Some(p(&[g])))
        } else {
            (None, None)
        };
        Self {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
            half: None,
        }
    }

    /// Whether [`CellParams::half`] has moved the weights to f16.
    pub fn is_half(&self) -> bool {
        self.half.is_some()
    }

    /// Rounds `weight_ih` and `weight_hh` to f16 (PyTorch's `.half()`, round to nearest even)
    /// and frees their f32 copies; biases stay f32. A halved cell is inference-only.
    /// Idempotent.
    pub fn half(&mut self) -> Result<()> {
        if self.half.is_none() {
            let ih = round_to_f16(&self.weight_ih.value)?;
            let hh = round_to_f16(&self.weight_hh.value)?;
            self.half = Some((ih, hh));
            self.weight_ih = placeholder();
            self.weight_hh = placeholder();
        }
        Ok(())
    }

    /// Bytes of parameter storage (2 per f16 weight, 4 per f32 scalar).
    pub(crate) fn param_bytes(&self) -> usize {
        let weights = match &self.half {
            Some((ih, hh)) => 2 * (ih.numel() + hh.numel()),
            None => 4 * (self.weight_ih.value.numel() + self.weight_hh.value.numel()),
        };
        let biases: usize = [&self.bias_ih, &self.bias_hh]
            .into_iter()
            .flatten()
            .map(|b| 4 * b.value.numel())
            .sum();
        weights + biases
    }

    fn weight_shapes(&self) -> (&[usize], &[usize]) {
        match &self.half {
            Some((ih, hh)) => (ih.shape(), hh.shape()),
            None => (self.weight_ih.shape(), self.weight_hh.shape()),
        }
    }

    /// Checks every shape against `(kind, input, hidden)`; the fields are public.
    pub(crate) fn check(
        &self,
        kind: CellKind,
        input: usize,
        hidden: usize,
        what: &str,
    ) -> Result<()> {
        let g = kind.gates() * hidden;
        let (ih, hh) = self.weight_shapes();
        same_shape(&format!("{what} weight_ih"), &[g, input], ih)?;
        same_shape(&format!("{what} weight_hh"), &[g, hidden], hh)?;
        for b in [&self.bias_ih, &self.bias_hh].into_iter().flatten() {
            same_shape(&format!("{what} bias"), &[g], b.shape())?;
        }
        Ok(())
    }

    /// The weights as f32 slices; a halved cell widens its f16 weights here, once per call.
    pub(crate) fn weights(&self) -> CellWeightsBuf<'_> {
        CellWeightsBuf {
            w_ih: f32_weight(&self.weight_ih, self.half.as_ref().map(|h| &h.0)),
            w_hh: f32_weight(&self.weight_hh, self.half.as_ref().map(|h| &h.1)),
            b_ih: self.bias_ih.as_ref().map(|p| p.value.data()),
            b_hh: self.bias_hh.as_ref().map(|p| p.value.data()),
        }
    }

    /// Weights and gradients at once (they are disjoint fields). A halved cell cannot train:
    /// an error naming `module`.
    pub(crate) fn split(
        &mut self,
        module: &'static str,
    ) -> Result<(CellWeights<'_>, CellGrads<'_>)> {
        if self.half.is_some() {
            return Err(backward_on_half(module));
        }
        let (wih, gih) = (&self.weight_ih.value, &mut self.weight_ih.grad);
        let (whh, ghh) = (&self.weight_hh.value, &mut self.weight_hh.grad);
        let (bih, gbih) = match &mut self.bias_ih {
            Some(p) => (Some(p.value.data()), Some(p.grad.data_mut())),
            None => (None, None),
        };
        let (bhh, gbhh) = match &mut self.bias_hh {
            Some(p) => (Some(p.value.data()), Some(p.grad.data_mut())),
            None => (None, None),
        };
        Ok((
            CellWeights {
                w_ih: wih.data(),
                w_hh: whh.data(),
                b_ih: bih,
                b_hh: bhh,
            },
            CellGrads {
                w_ih: gih.data_mut(),
                w_hh: ghh.data_mut(),
                b_ih: gbih,
                b_hh: gbhh,
            },
        ))
    }

    pub(crate) fn visit(&self, suffix: &str, f: &mut dyn FnMut(&str, &Param)) {
        match &self.half {
            Some((ih, hh)) => {
                visit_half(&format!("weight_ih{suffix}"), ih, f);
                visit_half(&format!("weight_hh{suffix}"), hh, f);
            }
            None => {
                f(&format!("weight_ih{suffix}"), &self.weight_ih);
                f(&format!("weight_hh{suffix}"), &self.weight_hh);
            }
        }
        if let (Some(bi), Some(bh)) = (&self.bias_ih, &self.bias_hh) {
            f(&format!("bias_ih{suffix}"), bi);
            f(&format!("bias_hh{suffix}"), bh);
        }
    }

    pub(crate) fn visit_mut(&mut self, suffix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.half {
            Some((ih, hh)) => {
                visit_half_mut(&format!("weight_ih{suffix}"), ih, f);
                visit_half_mut(&format!("weight_hh{suffix}"), hh, f);
            }
            None => {
                f(&format!("weight_ih{suffix}"), &mut self.weight_ih);
                f(&format!("weight_hh{suffix}"), &mut self.weight_hh);
            }
        }
        if let (Some(bi), Some(bh)) = (&mut self.bias_ih, &mut self.bias_hh) {
            f(&format!("bias_ih{suffix}"), bi);
            f(&format!("bias_hh{suffix}"), bh);
        }
    }
}

/// A zero state `[rows, hidden]`.
pub(crate) fn zeros(rows: usize, hidden: usize) -> Tensor<f32> {
    Tensor::zeros(&[rows, hidden])
}
