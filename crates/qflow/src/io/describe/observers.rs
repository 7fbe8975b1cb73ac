//! Observer nodes ([`ObserverNode`]) with their calibration state, and the observer specs that
//! the QAT family's fake-quant modules share.
//!
//! A spec is written as arguments (`<prefix>kind=Histogram <prefix>dtype=QUInt8 …`); an
//! observer node also writes its toggle and batch count (`enabled`, `observed`). Its statistics
//! are tensors named after the node, as PyTorch names an observer's buffers: `<node>.min_val`
//! and `<node>.max_val` (0-d for the per-tensor min/max observers, one per channel for the
//! per-channel ones) and, for the histogram observer, `<node>.histogram`. Loading rebuilds a
//! fresh observer from the spec and gives it exactly that state, so calibration resumes as if
//! it had never stopped.

use std::collections::BTreeMap;

use qnn::Module;
use qnn::ModuleKind;
use qnn::qtensor::observer::{
    HistogramObserver, MovingAveragePerChannelMinMaxObserver, Observer, ObserverConfig,
    ObserverSpec, PerChannelMinMaxObserver, PlaceholderDtype,
};
use qnn::qtensor::{QDType, QScheme, QTensorError, Tensor};
use qnn::state_dict::StateEntry;

use super::{Args, Built, Described, Reader, concrete, flag, fmt_err, push};
use crate::error::{QflowError, Result};
use crate::graph::Graph;
use crate::passes::ObserverNode;

fn dtype_name(d: QDType) -> String {
    format!("{d:?}")
}

fn parse_dtype(s: &str) -> Option<QDType> {
    [
        QDType::QUInt8,
        QDType::QInt8,
        QDType::QInt32,
        QDType::QUInt4x2,
    ]
    .into_iter()
    .find(|d| dtype_name(*d) == s)
}

fn parse_qscheme(s: &str) -> Option<QScheme> {
    [
        QScheme::PerTensorAffine,
        QScheme::PerTensorSymmetric,
        QScheme::PerChannelAffine,
        QScheme::PerChannelSymmetric,
        QScheme::PerChannelAffineFloatQParams,
    ]
    .into_iter()
    .find(|q| format!("{q:?}") == s)
}

fn placeholder_name(d: PlaceholderDtype) -> String {
    match d {
        PlaceholderDtype::Quantized(q) => dtype_name(q),
        PlaceholderDtype::Float16 => "Float16".into(),
        PlaceholderDtype::Float32 => "Float32".into(),
    }
}

fn config_args(c: &ObserverConfig, p: &str, args: &mut Args) {
    push(args, p, "dtype", dtype_name(c.dtype));
    push(args, p, "qscheme", format!("{:?}", c.qscheme));
    push(args, p, "reduce_range", flag(c.reduce_range));
    let opt = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
    push(args, p, "quant_min", opt(c.quant_min));
    push(args, p, "quant_max", opt(c.quant_max));
    push(args, p, "eps", c.eps);
}

/// Writes `spec` as arguments under `p` (e.g. `obs.`, `weight_fq.obs.`).
pub(super) fn spec_args(spec: &ObserverSpec, p: &str, args: &mut Args) -> Result<()> {
    match spec {
        ObserverSpec::MinMax(c) => {
            push(args, p, "kind", "MinMax");
            config_args(c, p, args);
        }
        ObserverSpec::MovingAverageMinMax {
            config,
            averaging_constant,
        } => {
            push(args, p, "kind", "MovingAverageMinMax");
            config_args(config, p, args);
            push(args, p, "averaging", averaging_constant);
        }
        ObserverSpec::PerChannelMinMax { config, ch_axis } => {
            push(args, p, "kind", "PerChannelMinMax");
            config_args(config, p, args);
            push(args, p, "ch_axis", ch_axis);
        }
        ObserverSpec::MovingAveragePerChannelMinMax {
            config,
            ch_axis,
            averaging_constant,
        } => {
            push(args, p, "kind", "MovingAveragePerChannelMinMax");
            config_args(config, p, args);
            push(args, p, "ch_axis", ch_axis);
            push(args, p, "averaging", averaging_constant);
        }
        ObserverSpec::Histogram {
            config,
            bins,
            upsample_rate,
        } => {
            push(args, p, "kind", "Histogram");
            config_args(config, p, args);
            push(args, p, "bins", bins);
            push(args, p, "upsample", upsample_rate);
        }
        ObserverSpec::Placeholder { dtype, is_dynamic } => {
            push(args, p, "kind", "Placeholder");
            push(args, p, "dtype", placeholder_name(*dtype));
            push(args, p, "dynamic", flag(*is_dynamic));
        }
        ObserverSpec::Noop { dtype } => {
            push(args, p, "kind", "Noop");
            push(args, p, "dtype", placeholder_name(*dtype));
        }
        ObserverSpec::FixedQParams {
            scale,
            zero_point,
            dtype,
            quant_min,
            quant_max,
        } => {
            push(args, p, "kind", "FixedQParams");
            push(args, p, "scale", scale);
            push(args, p, "zero_point", zero_point);
            push(args, p, "dtype", dtype_name(*dtype));
            push(args, p, "quant_min", quant_min);
            push(args, p, "quant_max", quant_max);
        }
        ObserverSpec::Recording { .. } => {
            return Err(fmt_err(
                "a Recording observer keeps every tensor it saw; it cannot be saved",
            ));
        }
    }
    Ok(())
}

impl Reader<'_> {
    pub(super) fn dtype(&self, key: &str) -> Result<QDType> {
        parse_dtype(self.raw(key)?).ok_or_else(|| self.bad(key))
    }

    fn placeholder_dtype(&self, key: &str) -> Result<PlaceholderDtype> {
        match self.raw(key)? {
            "Float16" => Ok(PlaceholderDtype::Float16),
            "Float32" => Ok(PlaceholderDtype::Float32),
            _ => self.dtype(key).map(PlaceholderDtype::Quantized),
        }
    }

    fn observer_config(&self, p: &str) -> Result<ObserverConfig> {
        let k = |s: &str| format!("{p}{s}");
        Ok(ObserverConfig {
            dtype: self.dtype(&k("dtype"))?,
            qscheme: parse_qscheme(self.raw(&k("qscheme"))?)
                .ok_or_else(|| self.bad(&k("qscheme")))?,
            reduce_range: self.flag(&k("reduce_range"))?,
            quant_min: self.optional(&k("quant_min"))?,
            quant_max: self.optional(&k("quant_max"))?,
            eps: self.parse(&k("eps"))?,
        })
    }

    /// The observer spec written by [`spec_args`] under `p`.
    pub(super) fn observer_spec(&self, p: &str) -> Result<ObserverSpec> {
        let k = |s: &str| format!("{p}{s}");
        Ok(match self.raw(&k("kind"))? {
            "MinMax" => ObserverSpec::MinMax(self.observer_config(p)?),
            "MovingAverageMinMax" => ObserverSpec::MovingAverageMinMax {
                config: self.observer_config(p)?,
                averaging_constant: self.parse(&k("averaging"))?,
            },
            "PerChannelMinMax" => ObserverSpec::PerChannelMinMax {
                config: self.observer_config(p)?,
                ch_axis: self.parse(&k("ch_axis"))?,
            },
            "MovingAveragePerChannelMinMax" => ObserverSpec::MovingAveragePerChannelMinMax {
                config: self.observer_config(p)?,
                ch_axis: self.parse(&k("ch_axis"))?,
                averaging_constant: self.parse(&k("averaging"))?,
            },
            "Histogram" => ObserverSpec::Histogram {
                config: self.observer_config(p)?,
                bins: self.parse(&k("bins"))?,
                upsample_rate: self.parse(&k("upsample"))?,
            },
            "Placeholder" => ObserverSpec::Placeholder {
                dtype: self.placeholder_dtype(&k("dtype"))?,
                is_dynamic: self.flag(&k("dynamic"))?,
            },
            "Noop" => ObserverSpec::Noop {
                dtype: self.placeholder_dtype(&k("dtype"))?,
            },
            "FixedQParams" => ObserverSpec::FixedQParams {
                scale: self.parse(&k("scale"))?,
                zero_point: self.parse(&k("zero_point"))?,
                dtype: self.dtype(&k("dtype"))?,
                quant_min: self.parse(&k("quant_min"))?,
                quant_max: self.parse(&k("quant_max"))?,
            },
            _ => return Err(self.bad(&k("kind"))),
        })
    }
}

/// Arguments of an observer node; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    if m.kind() != ModuleKind::ObserverModule {
        return None;
    }
    Some((|| {
        let node = concrete::<ObserverNode>(m)?;
        spec_args(&node.observer().spec(), "obs.", args)?;
        push(args, "", "enabled", flag(node.is_enabled()));
        push(args, "", "observed", node.observed_batches());
        push(args, "", "per_call", node.observations_per_call());
        Ok(())
    })())
}

/// Builds a fresh observer node; its state comes in [`restore`].
pub(super) fn build(op: &str, r: &Reader<'_>) -> Built {
    (op == "ObserverModule").then(|| {
        let node = ObserverNode::new(&r.observer_spec("obs.")?)?;
        Ok(Box::new(node) as Box<dyn Module>)
    })
}

/// The statistics of one observer as named tensors (see the module docs).
fn statistics(observer: &dyn Observer) -> Result<Vec<(&'static str, Tensor<f32>)>> {
    let any = observer.as_any();
    if let Some(h) = any.downcast_ref::<HistogramObserver>() {
        let (mn, mx) = h.range();
        let hist = Tensor::new(&[h.histogram().len()], h.histogram().to_vec()).map_err(q)?;
        return Ok(vec![
            ("histogram", hist),
            ("min_val", Tensor::scalar(mn)),
            ("max_val", Tensor::scalar(mx)),
        ]);
    }
    let per_channel = any
        .downcast_ref::<PerChannelMinMaxObserver>()
        .map(|o| (o.min_vals().to_vec(), o.max_vals().to_vec()))
        .or_else(|| {
            any.downcast_ref::<MovingAveragePerChannelMinMaxObserver>()
                .map(|o| (o.min_vals().to_vec(), o.max_vals().to_vec()))
        });
    if let Some((mins, maxs)) = per_channel {
        return Ok(vec![
            ("min_val", Tensor::new(&[mins.len()], mins).map_err(q)?),
            ("max_val", Tensor::new(&[maxs.len()], maxs).map_err(q)?),
        ]);
    }
    if let Some((mn, mx)) = observer.min_max() {
        return Ok(vec![
            ("min_val", Tensor::scalar(mn)),
            ("max_val", Tensor::scalar(mx)),
        ]);
    }
    Ok(Vec::new())
}

/// Every observer node's statistics as state-dict entries `<node>.<buffer>`.
pub(crate) fn observer_state(graph: &Graph) -> Result<BTreeMap<String, StateEntry>> {
    let mut out = BTreeMap::new();
    for node in graph.nodes() {
        let Some(obs) = node.module().and_then(|m| m.downcast_ref::<ObserverNode>()) else {
            continue;
        };
        for (buffer, t) in statistics(obs.observer())? {
            out.insert(format!("{}.{buffer}", node.name()), StateEntry::F32(t));
        }
    }
    Ok(out)
}

/// Removes the observer nodes' entries (by the observer node names in the description `text`)
/// from `dict` and returns them.
pub(crate) fn split_observer_state(
    dict: &mut BTreeMap<String, StateEntry>,
    text: &str,
) -> BTreeMap<String, StateEntry> {
    let prefixes: Vec<String> = text
        .lines()
        .filter_map(|line| {
            let w: Vec<&str> = line.split_whitespace().take(4).collect();
            (w.len() == 4 && w[0] == "node" && w[3] == "ObserverModule")
                .then(|| format!("{}.", w[1]))
        })
        .collect();
    let keys: Vec<String> = dict
        .keys()
        .filter(|k| prefixes.iter().any(|p| k.starts_with(p.as_str())))
        .cloned()
        .collect();
    keys.into_iter()
        .filter_map(|k| dict.remove_entry(&k))
        .collect()
}

/// The f32 tensor `<name>.<buffer>`, or a typed error.
fn entry<'a>(
    entries: &'a BTreeMap<String, StateEntry>,
    name: &str,
    buffer: &str,
) -> Result<&'a Tensor<f32>> {
    let key = format!("{name}.{buffer}");
    match entries.get(&key) {
        Some(StateEntry::F32(t)) => Ok(t),
        Some(e) => Err(QflowError::Module(qnn::QnnError::KeyDtypeMismatch {
            key,
            expected: "f32",
            got: e.dtype_name(),
        })),
        None => Err(QflowError::Module(qnn::QnnError::MissingKey {
            key,
            expected: Vec::new(),
        })),
    }
}

/// Gives the freshly built observer node `name` its saved statistics and toggles.
pub(super) fn restore(
    name: &str,
    m: &mut dyn Module,
    r: &Reader<'_>,
    entries: &BTreeMap<String, StateEntry>,
) -> Result<()> {
    let node = m
        .downcast_mut::<ObserverNode>()
        .ok_or_else(|| fmt_err(format!("node `{name}` is not an observer node")))?;
    let spec = node.observer().spec();
    let mut observer = spec.build().map_err(q)?;
    let mut used = Vec::new();
    let mut get = |buffer: &'static str| {
        used.push(buffer);
        entry(entries, name, buffer)
    };
    let shape_err = |what: &str, t: &Tensor<f32>| {
        fmt_err(format!(
            "node `{name}`: observer {what} has shape {:?}",
            t.shape()
        ))
    };
    match &spec {
        ObserverSpec::Histogram { .. } => {
            let (hist, mn, mx) = (get("histogram")?, get("min_val")?, get("max_val")?);
            let (Some(&mn), Some(&mx)) = (scalar(mn), scalar(mx)) else {
                return Err(shape_err("range", mn));
            };
            let mut h = HistogramObserver::new(
                spec.config()
                    .cloned()
                    .ok_or_else(|| fmt_err("histogram without config"))?,
                hist.numel(),
                match &spec {
                    ObserverSpec::Histogram { upsample_rate, .. } => *upsample_rate,
                    _ => 1,
                },
            )
            .map_err(q)?;
            if let ObserverSpec::Histogram { bins, .. } = &spec
                && *bins != hist.numel()
            {
                return Err(shape_err("histogram", hist));
            }
            h.set_state(hist.data(), mn, mx).map_err(q)?;
            observer = Box::new(h);
        }
        ObserverSpec::MinMax(_) | ObserverSpec::MovingAverageMinMax { .. } => {
            let (mn, mx) = (get("min_val")?, get("max_val")?);
            let (Some(&mn), Some(&mx)) = (scalar(mn), scalar(mx)) else {
                return Err(shape_err("range", mn));
            };
            // Both observers take their first observation's range as is.
            if !(mn == f32::INFINITY && mx == f32::NEG_INFINITY) {
                observer
                    .observe(&Tensor::new(&[2], vec![mn, mx]).map_err(q)?)
                    .map_err(q)?;
            }
        }
        ObserverSpec::PerChannelMinMax { ch_axis, .. }
        | ObserverSpec::MovingAveragePerChannelMinMax { ch_axis, .. } => {
            let (mn, mx) = (get("min_val")?, get("max_val")?);
            if mn.ndim() != 1 || mn.shape() != mx.shape() {
                return Err(shape_err("range", mn));
            }
            if mn.numel() > 0 {
                // One observation of a tensor holding (min, max) per channel along `ch_axis`.
                let mut shape = vec![1usize; *ch_axis];
                shape.extend([mn.numel(), 2]);
                let data = mn
                    .data()
                    .iter()
                    .zip(mx.data())
                    .flat_map(|(&a, &b)| [a, b])
                    .collect();
                observer
                    .observe(&Tensor::new(&shape, data).map_err(q)?)
                    .map_err(q)?;
            }
        }
        _ => {}
    }
    let prefix = format!("{name}.");
    if let Some(extra) = entries
        .keys()
        .find(|k| k.strip_prefix(&prefix).is_some_and(|b| !used.contains(&b)))
    {
        return Err(QflowError::Module(qnn::QnnError::UnexpectedKey {
            key: extra.clone(),
            shape: entries
                .get(extra)
                .map(StateEntry::shape)
                .unwrap_or_default(),
        }));
    }
    node.restore(observer, r.flag("enabled")?, r.parse("observed")?);
    if r.has("per_call") {
        node.set_observations_per_call(r.parse("per_call")?);
    }
    Ok(())
}

/// A tensor or observer error as this crate's error.
fn q(e: QTensorError) -> QflowError {
    QflowError::Module(e.into())
}

/// The value of a 0-d (or one-element) tensor.
fn scalar(t: &Tensor<f32>) -> Option<&f32> {
    (t.numel() == 1).then(|| t.data().first()).flatten()
}
