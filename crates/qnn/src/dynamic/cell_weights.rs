//! The two weight matrices of one recurrent cell (one layer and direction), built from the
//! float cell's PyTorch-named parameters, plus the buffers one step reuses.

use std::collections::BTreeMap;

use qtensor::{QParams, Tensor};

use super::gates;
use super::weight::{DynWeight, WeightDType};
use crate::error::{QnnError, Result};
use crate::float::CellKind;
use crate::param::{BufferMut, BufferRef};

/// How a dynamic recurrent module's weights are built: qint8 with the qparams a callback gives
/// per PyTorch parameter name (`weight_ih_l0`, …), or f16.
pub(crate) enum Build<'a> {
    QInt8(&'a mut dyn FnMut(&str, &Tensor<f32>) -> qtensor::Result<QParams>),
    Fp16,
}

/// `W_ih [G·H, I]` and `W_hh [G·H, H]` with their biases.
#[derive(Clone, Debug)]
pub(crate) struct DynCell {
    pub(crate) ih: DynWeight,
    pub(crate) hh: DynWeight,
}

/// Buffers reused across steps and calls: quantized activations and the hidden gates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) q: Vec<u8>,
    pub(crate) gh: Vec<f32>,
}

fn param<'a>(
    module: &'static str,
    params: &'a BTreeMap<String, Tensor<f32>>,
    name: &str,
) -> Result<&'a Tensor<f32>> {
    params.get(name).ok_or_else(|| QnnError::InvalidConfig {
        module,
        reason: format!("the float module has no parameter `{name}`"),
    })
}

impl DynCell {
    /// Builds the cell whose parameters are named `weight_ih{suffix}`, `weight_hh{suffix}`,
    /// `bias_ih{suffix}`, `bias_hh{suffix}` in `params`, checking `[G·H, I]` / `[G·H, H]`.
    pub(crate) fn build(
        module: &'static str,
        kind: CellKind,
        params: &BTreeMap<String, Tensor<f32>>,
        suffix: &str,
        input: usize,
        hidden: usize,
        build: &mut Build<'_>,
    ) -> Result<Self> {
        let g = kind.gates() * hidden;
        let mut one = |which: &str, cols: usize| -> Result<DynWeight> {
            let wname = format!("weight_{which}{suffix}");
            let w = param(module, params, &wname)?;
            if w.shape() != [g, cols] {
                return Err(QnnError::ShapeMismatch {
                    what: format!("{module} {wname}"),
                    expected: vec![g, cols],
                    got: w.shape().to_vec(),
                });
            }
            let b = params.get(&format!("bias_{which}{suffix}"));
            match build {
                Build::QInt8(qp) => {
                    let q = qp(&wname, w)?;
                    DynWeight::qint8(module, w, b, &q)
                }
                Build::Fp16 => DynWeight::fp16(module, w, b),
            }
        };
        Ok(Self {
            ih: one("ih", input)?,
            hh: one("hh", hidden)?,
        })
    }

    /// qint8 or f16 (both matrices are built alike).
    pub(crate) fn dtype(&self) -> WeightDType {
        self.ih.dtype()
    }

    /// `gi = x W_ihᵀ + b_ih` for `rows` rows of `x` into `gi` (resized).
    pub(crate) fn input_gates(
        &self,
        x: &[f32],
        rows: usize,
        gi: &mut Vec<f32>,
        q: &mut Vec<u8>,
    ) -> Result<()> {
        gi.resize(rows * self.ih.n(), 0.0);
        self.ih.apply(x, rows, false, gi, q)
    }

    /// One step on `b` rows given the input gates `gi` (`[b, G·H]`): `gh = h W_hhᵀ + b_hh`
    /// with `h` quantized now, then the gate math, updating `h` (and `c`).
    pub(crate) fn step(
        &self,
        kind: CellKind,
        gi: &[f32],
        h: &mut [f32],
        c: &mut [f32],
        b: usize,
        s: &mut Scratch,
    ) -> Result<()> {
        let (g, hd) = (self.hh.n(), self.hh.k());
        s.gh.resize(b * g, 0.0);
        self.hh.apply(h, b, false, &mut s.gh, &mut s.q)?;
        gates::step(kind, gi, &s.gh, h, c, b, hd)
    }

    /// Visits both matrices' state with PyTorch-like names (`weight_ih{suffix}`, its
    /// `_scale`/`_zero_point`/`_axis`, `bias_ih{suffix}`, then the `hh` ones).
    pub(crate) fn visit(&self, suffix: &str, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        self.ih.visit(
            &format!("weight_ih{suffix}"),
            &format!("bias_ih{suffix}"),
            f,
        );
        self.hh.visit(
            &format!("weight_hh{suffix}"),
            &format!("bias_hh{suffix}"),
            f,
        );
    }

    /// Mutable [`DynCell::visit`].
    pub(crate) fn visit_mut(&mut self, suffix: &str, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        self.ih.visit_mut(
            &format!("weight_ih{suffix}"),
            &format!("bias_ih{suffix}"),
            f,
        );
        self.hh.visit_mut(
            &format!("weight_hh{suffix}"),
            &format!("bias_hh{suffix}"),
            f,
        );
    }

    /// Validates and repacks after loading.
    pub(crate) fn rebuild(&mut self) -> Result<()> {
        self.ih.rebuild()?;
        self.hh.rebuild()
    }

    /// Stored bytes of both matrices.
    pub(crate) fn param_bytes(&self) -> usize {
        self.ih.param_bytes() + self.hh.param_bytes()
    }
}
