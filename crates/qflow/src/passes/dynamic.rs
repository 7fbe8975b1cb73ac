//! `quantize_dynamic`: PyTorch's `torch.ao.quantization.quantize_dynamic` on a [`Graph`] —
//! weights quantized once (qint8 or float16), activations quantized per call inside the dynamic
//! modules, no calibration and no observers in the graph.
//!
//! Swaps (PyTorch's `DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS`): `Linear` →
//! [`qnn::dynamic::Linear`], fused `LinearReLU` → [`qnn::dynamic::LinearReLU`], `Lstm`, `Gru`,
//! `LSTMCell`, `GRUCell`, `RNNCell` → their [`qnn::dynamic`] versions. (Embedding /
//! EmbeddingBag with float-qparams weights are not wired yet.) The weight observer (the QConfig's weight spec, or PyTorch's
//! `default_weight_observer` / per-channel observer for the kind-set form) observes the weight
//! once and its qparams quantize it, exactly as `nnqd.Linear.from_float` does.

use qnn::float;
use qnn::fused;
use qnn::qtensor::observer::{ObserverSpec, PlaceholderDtype};
use qnn::qtensor::{QDType, QParams, Tensor};
use qnn::{Module, ModuleKind, quantized};

use super::convert::{observe_weight, quantize_weight_qparams};
use crate::error::{QflowError, Result};
use crate::graph::{Graph, Node, Op};
use crate::qconfig::{QConfig, QConfigMapping, QuantSpec};

/// The weight type of a dynamic quantization (PyTorch's `dtype` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamicDType {
    /// qint8 weights, per-tensor symmetric (`default_dynamic_qconfig`).
    QInt8,
    /// qint8 weights, per-channel symmetric along the output channels
    /// (`per_channel_dynamic_qconfig`).
    QInt8PerChannel,
    /// float16 weights (`float16_dynamic_qconfig`).
    Float16,
    /// quint8 embedding tables with per-row float qparams
    /// (`float_qparams_weight_only_qconfig`; PyTorch's `dtype=torch.quint8`).
    FloatQParamsWeightOnly,
}

impl DynamicDType {
    /// The QConfig PyTorch uses for this dtype: activation `PlaceholderObserver(is_dynamic)`,
    /// weight `default_weight_observer`, `default_per_channel_weight_observer` or a float16
    /// placeholder.
    pub fn qconfig(self) -> QConfig {
        let activation = QuantSpec::Observer(ObserverSpec::Placeholder {
            dtype: match self {
                DynamicDType::Float16 => PlaceholderDtype::Float16,
                _ => PlaceholderDtype::Quantized(QDType::QUInt8),
            },
            is_dynamic: true,
        });
        let weight = match self {
            DynamicDType::QInt8 => ObserverSpec::default_weight_observer(),
            DynamicDType::QInt8PerChannel => ObserverSpec::default_per_channel_weight_observer(),
            DynamicDType::Float16 => ObserverSpec::Placeholder {
                dtype: PlaceholderDtype::Float16,
                is_dynamic: false,
            },
            DynamicDType::FloatQParamsWeightOnly => {
                return crate::qconfig::float_qparams_weight_only_qconfig();
            }
        };
        QConfig {
            activation,
            weight: QuantSpec::Observer(weight),
        }
    }
}

/// The kinds PyTorch's `quantize_dynamic` swaps when no set is given (`{Linear, LSTM, GRU,
/// LSTMCell, RNNCell, GRUCell}`; fused `LinearReLU` only when asked for, as in PyTorch).
pub const DEFAULT_DYNAMIC_KINDS: &[ModuleKind] = &[
    ModuleKind::Linear,
    ModuleKind::Lstm,
    ModuleKind::Gru,
    ModuleKind::LSTMCell,
    ModuleKind::RNNCell,
    ModuleKind::GRUCell,
];

/// PyTorch's `quantize_dynamic(model, {kinds}, dtype)`: puts the graph in eval mode and swaps
/// every node whose kind is in `kinds` (all of [`DEFAULT_DYNAMIC_KINDS`] if empty; Embedding and
/// EmbeddingBag for [`DynamicDType::FloatQParamsWeightOnly`]) for its
/// dynamic module, weights per `dtype`. Kinds without a dynamic module in this build are left
/// float. Returns the swapped node names.
///
/// ```
/// use qflow::passes::{DynamicDType, quantize_dynamic};
/// use qflow::SequentialBuilder;
/// use qnn::float::{Linear, ReLU};
/// use qnn::init::Rng;
/// use qnn::ModuleKind;
///
/// let mut rng = Rng::new(0);
/// let mut g = SequentialBuilder::new("x")
///     .add("fc1", Linear::new(4, 8, true, &mut rng))
///     .add("relu", ReLU::new())
///     .add("fc2", Linear::new(8, 2, true, &mut rng))
///     .build()?;
/// let swapped = quantize_dynamic(&mut g, &[ModuleKind::Linear], DynamicDType::QInt8)?;
/// assert_eq!(swapped, ["fc1", "fc2"]);
/// assert_eq!(g.nodes_of_kind(ModuleKind::DynamicLinear).count(), 2);
/// # Ok::<(), qflow::QflowError>(())
/// ```
pub fn quantize_dynamic(
    graph: &mut Graph,
    kinds: &[ModuleKind],
    dtype: DynamicDType,
) -> Result<Vec<String>> {
    let kinds = if kinds.is_empty() && dtype == DynamicDType::FloatQParamsWeightOnly {
        &[ModuleKind::Embedding, ModuleKind::EmbeddingBag][..]
    } else if kinds.is_empty() {
        DEFAULT_DYNAMIC_KINDS
    } else {
        kinds
    };
    let qconfig = dtype.qconfig();
    for n in graph.nodes_mut() {
        if n.kind().is_some_and(|k| kinds.contains(&k)) {
            n.set_qconfig(Some(qconfig.clone()));
        }
    }
    quantize_dynamic_configured(graph)
}

/// PyTorch's `quantize_dynamic(model, qconfig_spec=mapping)`: [`crate::passes::propagate_qconfig`]
/// with `mapping` (e.g. a global `default_dynamic_qconfig()`, per-kind or per-name entries,
/// `None` to keep a node float), then [`quantize_dynamic_configured`].
pub fn quantize_dynamic_with(graph: &mut Graph, mapping: &QConfigMapping) -> Result<Vec<String>> {
    crate::passes::propagate_qconfig(graph, mapping);
    quantize_dynamic_configured(graph)
}

/// The dynamic conversion of a graph whose nodes already carry their QConfigs (PyTorch's
/// `convert(model, DEFAULT_DYNAMIC_QUANT_MODULE_MAPPINGS)` after propagation): every node with
/// a QConfig and a dynamic counterpart is swapped, weights observed with the QConfig's weight
/// spec (a float16 placeholder or `Noop` weight spec selects f16 weights). Puts the graph in
/// eval mode. Returns the swapped node names.
pub fn quantize_dynamic_configured(graph: &mut Graph) -> Result<Vec<String>> {
    graph.eval();
    graph.rewrite_nodes(dynamic_op)
}

/// The dynamic replacement of one node, if it has a QConfig and a dynamic counterpart.
fn dynamic_op(node: &Node) -> Result<Option<Op>> {
    let Some(qconfig) = node.qconfig() else {
        return Ok(None);
    };
    let Some(kind) = node.kind() else {
        return Ok(None);
    };
    if !matches!(
        kind,
        ModuleKind::Linear
            | ModuleKind::LinearReLU
            | ModuleKind::Lstm
            | ModuleKind::Gru
            | ModuleKind::LSTMCell
            | ModuleKind::GRUCell
            | ModuleKind::RNNCell
            | ModuleKind::Embedding
            | ModuleKind::EmbeddingBag
    ) {
        return Ok(None);
    }
    let name = node.name();
    let spec = match &qconfig.weight {
        QuantSpec::Observer(s) => s,
        QuantSpec::FakeQuant(_) => {
            return Err(QflowError::Unsupported {
                node: name.into(),
                reason: "dynamic quantization needs a weight observer, not a fake-quant".into(),
            });
        }
    };
    let fp16 = matches!(
        spec,
        ObserverSpec::Placeholder {
            dtype: PlaceholderDtype::Float16,
            ..
        } | ObserverSpec::Noop {
            dtype: PlaceholderDtype::Float16
        }
    );
    // Multi-weight modules: one fresh observer per weight (`weight_ih_l0`, …).
    let mut per_weight = |_: &str, w: &Tensor<f32>| -> qnn::qtensor::Result<QParams> {
        let mut obs = spec.build()?;
        obs.observe(w)?;
        obs.calculate_qparams()
    };
    let wrong = || QflowError::WrongModule {
        node: name.into(),
        expected: format!("the float layer of kind {kind:?}"),
        got: "another module".into(),
    };
    macro_rules! multi {
        ($float:ty, $dynamic:ty) => {{
            let f = node.module_as::<$float>().ok_or_else(wrong)?;
            if fp16 {
                <$dynamic>::from_float_fp16(f).map(Op::module)
            } else {
                <$dynamic>::from_float(f, &mut per_weight).map(Op::module)
            }
        }};
    }
    let built = match kind {
        ModuleKind::Linear | ModuleKind::LinearReLU => {
            let relu = kind == ModuleKind::LinearReLU;
            let linear = if relu {
                node.module_as::<fused::LinearReLU>().map(|m| m.linear())
            } else {
                node.module_as::<float::Linear>()
            }
            .ok_or_else(wrong)?;
            if fp16 {
                if relu {
                    qnn::dynamic::LinearReLU::from_float_fp16(linear).map(Op::module)
                } else {
                    qnn::dynamic::Linear::from_float_fp16(linear).map(Op::module)
                }
            } else {
                // `_quantize_weight`: observed, and clamped for a narrow weight observer.
                let mut linear = linear.clone();
                let wq = quantize_weight_qparams(name, spec, &mut linear.weight.value)?;
                if relu {
                    qnn::dynamic::LinearReLU::from_float(&linear, &wq).map(Op::module)
                } else {
                    qnn::dynamic::Linear::from_float(&linear, &wq).map(Op::module)
                }
            }
        }
        // float_qparams_weight_only_qconfig: weight-only quantization of the table (quint8 or
        // quint4x2, per-row float qparams), as PyTorch's quantize_dynamic does for embeddings.
        ModuleKind::Embedding | ModuleKind::EmbeddingBag => {
            let w = if kind == ModuleKind::Embedding {
                &node
                    .module_as::<float::Embedding>()
                    .ok_or_else(wrong)?
                    .weight
                    .value
            } else {
                &node
                    .module_as::<float::EmbeddingBag>()
                    .ok_or_else(wrong)?
                    .weight
                    .value
            };
            let dtype = spec
                .build()
                .map_err(|e| QflowError::Node {
                    node: name.into(),
                    source: e.into(),
                })?
                .dtype();
            let Some(dtype) = dtype else {
                return Err(QflowError::Unsupported {
                    node: name.into(),
                    reason: "embeddings need a quantized weight dtype (float_qparams_weight_only_qconfig)"
                        .into(),
                });
            };
            let wq = observe_weight(name, spec, w)?;
            if kind == ModuleKind::Embedding {
                quantized::Embedding::from_float(
                    node.module_as::<float::Embedding>().ok_or_else(wrong)?,
                    &wq,
                    dtype,
                )
                .map(Op::module)
            } else {
                quantized::EmbeddingBag::from_float(
                    node.module_as::<float::EmbeddingBag>().ok_or_else(wrong)?,
                    &wq,
                    dtype,
                )
                .map(Op::module)
            }
        }
        ModuleKind::Lstm => multi!(float::Lstm, qnn::dynamic::Lstm),
        ModuleKind::Gru => multi!(float::Gru, qnn::dynamic::Gru),
        ModuleKind::LSTMCell => multi!(float::LSTMCell, qnn::dynamic::LSTMCell),
        ModuleKind::GRUCell => multi!(float::GRUCell, qnn::dynamic::GRUCell),
        _ => multi!(float::RNNCell, qnn::dynamic::RNNCell),
    };
    built.map(Some).map_err(|source| QflowError::Node {
        node: name.into(),
        source,
    })
}
