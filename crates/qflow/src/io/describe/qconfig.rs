//! A node's QConfig (what `convert` and `prepare_qat` read from it) and the fake-quant specs
//! the QAT family shares: `qconfig=1 qconfig.act.…` / `qconfig.weight.…` arguments, or
//! `qconfig=0` for a node without one.

use qnn::qat::FakeQuantSpec;

use super::observers::spec_args;
use super::{Args, Reader, flag, push};
use crate::error::Result;
use crate::qconfig::{QConfig, QuantSpec};

/// Writes a fake-quant spec under `p`.
pub(super) fn fake_quant_args(spec: &FakeQuantSpec, p: &str, args: &mut Args) -> Result<()> {
    match spec {
        FakeQuantSpec::FakeQuantize { observer } => {
            push(args, p, "fq", "FakeQuantize");
            spec_args(observer, &format!("{p}obs."), args)
        }
        FakeQuantSpec::FusedMovingAvgObs { observer } => {
            push(args, p, "fq", "FusedMovingAvgObs");
            spec_args(observer, &format!("{p}obs."), args)
        }
        FakeQuantSpec::FixedQParams {
            scale,
            zero_point,
            dtype,
            quant_min,
            quant_max,
        } => {
            push(args, p, "fq", "FixedQParams");
            push(args, p, "scale", scale);
            push(args, p, "zero_point", zero_point);
            push(args, p, "dtype", format!("{dtype:?}"));
            push(args, p, "quant_min", quant_min);
            push(args, p, "quant_max", quant_max);
            Ok(())
        }
    }
}

fn quant_spec_args(spec: &QuantSpec, p: &str, args: &mut Args) -> Result<()> {
    match spec {
        QuantSpec::Observer(o) => spec_args(o, &format!("{p}obs."), args),
        QuantSpec::FakeQuant(f) => fake_quant_args(f, p, args),
    }
}

/// Writes a node's QConfig (or its absence).
pub(crate) fn qconfig_args(qconfig: Option<&QConfig>, args: &mut Args) -> Result<()> {
    push(args, "", "qconfig", flag(qconfig.is_some()));
    if let Some(q) = qconfig {
        quant_spec_args(&q.activation, "qconfig.act.", args)?;
        quant_spec_args(&q.weight, "qconfig.weight.", args)?;
    }
    Ok(())
}

impl Reader<'_> {
    /// The fake-quant spec written by [`fake_quant_args`] under `p`.
    pub(super) fn fake_quant_spec(&self, p: &str) -> Result<FakeQuantSpec> {
        let k = |s: &str| format!("{p}{s}");
        Ok(match self.raw(&k("fq"))? {
            "FakeQuantize" => FakeQuantSpec::FakeQuantize {
                observer: self.observer_spec(&k("obs."))?,
            },
            "FusedMovingAvgObs" => FakeQuantSpec::FusedMovingAvgObs {
                observer: self.observer_spec(&k("obs."))?,
            },
            "FixedQParams" => FakeQuantSpec::FixedQParams {
                scale: self.parse(&k("scale"))?,
                zero_point: self.parse(&k("zero_point"))?,
                dtype: self.dtype(&k("dtype"))?,
                quant_min: self.parse(&k("quant_min"))?,
                quant_max: self.parse(&k("quant_max"))?,
            },
            _ => return Err(self.bad(&k("fq"))),
        })
    }

    fn quant_spec(&self, p: &str) -> Result<QuantSpec> {
        if self.has(&format!("{p}fq")) {
            Ok(QuantSpec::FakeQuant(self.fake_quant_spec(p)?))
        } else {
            Ok(QuantSpec::Observer(
                self.observer_spec(&format!("{p}obs."))?,
            ))
        }
    }

    /// The node's QConfig; files without the `qconfig` argument (format version 1) have none.
    pub(crate) fn qconfig(&self) -> Result<Option<QConfig>> {
        if !self.has("qconfig") || !self.flag("qconfig")? {
            return Ok(None);
        }
        Ok(Some(QConfig {
            activation: self.quant_spec("qconfig.act.")?,
            weight: self.quant_spec("qconfig.weight.")?,
        }))
    }
}
