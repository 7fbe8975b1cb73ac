//! How PyTorch prints an observer (`HistogramObserver(min_val=…, max_val=…)`,
//! `MovingAveragePerChannelMinMaxObserver(min_val=tensor([…]), …)`, `FixedQParamsObserver()`):
//! shared by qflow's observer nodes and the `activation_post_process` child of the fake-quant
//! modules.

use qtensor::observer::{
    MovingAveragePerChannelMinMaxObserver, Observer, ObserverSpec, PerChannelMinMaxObserver,
};

use super::{ReprTree, py_float, torch_tensor_f32};

/// The PyTorch class an [`ObserverSpec`] builds.
pub fn observer_class(spec: &ObserverSpec) -> &'static str {
    match spec {
        ObserverSpec::MinMax(_) => "MinMaxObserver",
        ObserverSpec::MovingAverageMinMax { .. } => "MovingAverageMinMaxObserver",
        ObserverSpec::PerChannelMinMax { .. } => "PerChannelMinMaxObserver",
        ObserverSpec::MovingAveragePerChannelMinMax { .. } => {
            "MovingAveragePerChannelMinMaxObserver"
        }
        ObserverSpec::Histogram { .. } => "HistogramObserver",
        ObserverSpec::Placeholder { .. } => "PlaceholderObserver",
        ObserverSpec::Noop { .. } => "NoopObserver",
        ObserverSpec::FixedQParams { .. } => "FixedQParamsObserver",
        ObserverSpec::Recording { .. } => "RecordingObserver",
    }
}

/// `min_val=…, max_val=…` of a per-tensor min/max (or histogram) observer: Python floats,
/// `inf` / `-inf` before the first observation.
pub fn min_max_repr(min_val: f32, max_val: f32) -> String {
    format!(
        "min_val={}, max_val={}",
        py_float(f64::from(min_val)),
        py_float(f64::from(max_val))
    )
}

/// `min_val=tensor([…]), max_val=tensor([…])` of a per-channel observer (`tensor([])` before
/// the first observation).
pub fn per_channel_min_max_repr(min_vals: &[f32], max_vals: &[f32]) -> String {
    let t = |v: &[f32]| {
        if v.is_empty() {
            "tensor([])".to_string()
        } else {
            torch_tensor_f32(v)
        }
    };
    format!("min_val={}, max_val={}", t(min_vals), t(max_vals))
}

/// The per-channel range of a per-channel observer (`None` for the other kinds).
pub fn per_channel_range(observer: &dyn Observer) -> Option<(&[f32], &[f32])> {
    let any = observer.as_any();
    any.downcast_ref::<PerChannelMinMaxObserver>()
        .map(|o| (o.min_vals(), o.max_vals()))
        .or_else(|| {
            any.downcast_ref::<MovingAveragePerChannelMinMaxObserver>()
                .map(|o| (o.min_vals(), o.max_vals()))
        })
}

/// The observer's `extra_repr`: its range for the min/max, moving-average and histogram
/// observers (per channel as tensors), nothing for the others.
pub fn observer_extra_repr(observer: &dyn Observer) -> String {
    if let Some((lo, hi)) = per_channel_range(observer) {
        return per_channel_min_max_repr(lo, hi);
    }
    match observer.spec() {
        ObserverSpec::MinMax(_)
        | ObserverSpec::MovingAverageMinMax { .. }
        | ObserverSpec::Histogram { .. } => {
            let (lo, hi) = observer
                .min_max()
                .unwrap_or((f32::INFINITY, f32::NEG_INFINITY));
            min_max_repr(lo, hi)
        }
        _ => String::new(),
    }
}

/// The observer as a printed module: `Class(extra_repr)`.
pub fn observer_tree(observer: &dyn Observer) -> ReprTree {
    ReprTree::leaf(
        observer_class(&observer.spec()),
        observer_extra_repr(observer),
    )
}
