//! The four parameters of one recurrent cell (one layer and direction), PyTorch-named.

use qtensor::Tensor;

use super::cell_math::{CellGrads, CellKind, CellWeights};
use crate::error::Result;
use crate::float::util::same_shape;
use crate::init::{Rng, uniform};
use crate::param::Param;

/// `weight_ih [G*H, I]`, `weight_hh [G*H, H]`, and optional `bias_ih`, `bias_hh [G*H]`.
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
        same_shape(
            &format!("{what} weight_ih"),
            &[g, input],
            self.weight_ih.shape(),
        )?;
        same_shape(
            &format!("{what} weight_hh"),
            &[g, hidden],
            self.weight_hh.shape(),
        )?;
        for b in [&self.bias_ih, &self.bias_hh].into_iter().flatten() {
            same_shape(&format!("{what} bias"), &[g], b.shape())?;
        }
        Ok(())
    }

    pub(crate) fn weights(&self) -> CellWeights<'_> {
        CellWeights {
            w_ih: self.weight_ih.value.data(),
            w_hh: self.weight_hh.value.data(),
            b_ih: self.bias_ih.as_ref().map(|p| p.value.data()),
            b_hh: self.bias_hh.as_ref().map(|p| p.value.data()),
        }
    }

    /// Weights and gradients at once (they are disjoint fields).
    pub(crate) fn split(&mut self) -> (CellWeights<'_>, CellGrads<'_>) {
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
        (
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
        )
    }

    pub(crate) fn visit(&self, suffix: &str, f: &mut dyn FnMut(&str, &Param)) {
        f(&format!("weight_ih{suffix}"), &self.weight_ih);
        f(&format!("weight_hh{suffix}"), &self.weight_hh);
        if let (Some(bi), Some(bh)) = (&self.bias_ih, &self.bias_hh) {
            f(&format!("bias_ih{suffix}"), bi);
            f(&format!("bias_hh{suffix}"), bh);
        }
    }

    pub(crate) fn visit_mut(&mut self, suffix: &str, f: &mut dyn FnMut(&str, &mut Param)) {
        f(&format!("weight_ih{suffix}"), &mut self.weight_ih);
        f(&format!("weight_hh{suffix}"), &mut self.weight_hh);
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
