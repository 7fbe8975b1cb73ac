//! # qflow — graphs and quantization passes
//!
//! A model is a [`Graph`] of named [`Node`]s (PyTorch module paths such as `features.0` or
//! `layer1.0.conv1`); each node holds an [`Op`]: a boxed [`qnn`] layer (any `qnn::Module`,
//! including user-defined ones) or a [`FunctionalOp`] (add, cat, flatten, matmul, …). The
//! passes rewrite nodes by kind and by name, which is how PyTorch's eager-mode module swapping
//! is expressed in a statically typed language.
//!
//! - Build: [`SequentialBuilder`] (a chain) or [`FunctionalBuilder`] (skip connections, several
//!   inputs and outputs), or [`Graph::new`] from [`Node`]s. Errors are typed ([`QflowError`]).
//! - Run: [`Graph::run`] / [`Graph::run_with`] (a per-node hook) in topological order;
//!   [`Graph::backward_all`] in reverse, adding gradients where a value fans out. [`Graph`]
//!   implements [`qnn::Module`], so SGD/Adam, `qnn::state_dict` and safetensors files work on it
//!   with parameter names `<node>.<param>` (`layer1.0.conv1.weight`).
//! - Edit: [`Graph::node`], [`Graph::nodes_of_kind`], [`Graph::consumers`],
//!   [`Graph::replace_op`], [`Graph::insert_after`], [`Graph::insert_before`],
//!   [`Graph::remove_node`], [`Graph::add_node`], and the typed rewriters
//!   [`Graph::rewrite_modules`], [`Graph::rewrite_kind`], [`Graph::take_module`].
//! - Fuse: [`passes::fuse_modules`] by lists of node names (PyTorch's `fuse_modules`, eval
//!   folding with PyTorch's exact formula or QAT fused modules), [`passes::fuse_auto`] finds the
//!   patterns itself.
//! - QConfig: [`qconfig::QConfig`] (an observer or fake-quant spec for activations and for
//!   weights), [`qconfig::QConfigMapping`] (global / per kind / per node name / `None`), the
//!   named defaults with PyTorch 2.15's arguments ([`qconfig::get_default_qconfig`],
//!   [`qconfig::get_default_qat_qconfig`], …), and [`passes::propagate_qconfig`], which stores
//!   the resolved QConfig in each node ([`Node::qconfig`]).
//! - Save/load: [`io::save_graph`] / [`io::load_graph`] — one versioned safetensors file, the
//!   structure in its metadata, the tensors under their state-dict names: float, prepared
//!   (observers with their calibration state), QAT (fake-quants and BN statistics mid-training)
//!   and converted int8 graphs; atomic writes, length and CRC-32 checked on load.
//!   [`load_torch_state_dict`] loads a PyTorch state dict (`safetensors.torch.save_file(
//!   model.state_dict(), …)`) into a graph whose node names are the PyTorch module paths, with
//!   PyTorch's strict / non-strict key reports and errors naming node, key and both shapes.
//! - Print and inspect: `println!("{graph}")` prints one `name: Kind(args)` line per node as
//!   PyTorch prints a module (`conv1: QuantizedConvReLU2d(1, 6, kernel_size=(5, 5), stride=(1,
//!   1), scale=0.0189…, zero_point=0)`, see [`node_repr`]); [`Graph::named_parameters`] lists
//!   each parameter and buffer with its storage dtype (`fc1.weight: f16[120, 400]` after
//!   `half()`, `qint8` after `convert`) and shape.
//!
//! ```
//! use qflow::passes::fuse_modules;
//! use qflow::{FunctionalOp, SequentialBuilder};
//! use qnn::float::{BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Linear, ReLU};
//! use qnn::init::Rng;
//! use qnn::qtensor::Tensor;
//! use qnn::{Module, ModuleKind, Value};
//!
//! let mut rng = Rng::new(0);
//! let mut model = SequentialBuilder::new("x")
//!     .add("conv1", Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng)?)
//!     .add("bn1", BatchNorm2d::new(BatchNormConfig::new(2)))
//!     .add("relu1", ReLU::new())
//!     .functional("flatten", FunctionalOp::Flatten { start_dim: 1, end_dim: -1 })
//!     .add("fc1", Linear::new(2 * 2 * 2, 3, true, &mut rng))
//!     .build()?;
//! let x = Tensor::from_fn(&[1, 1, 4, 4], |i| i as f32 / 16.0);
//! let y = model.run(&[Value::F32(x.clone())])?;
//! assert_eq!(y[0].shape(), Some(&[1, 3][..]));
//! assert_eq!(model.consumers("conv1"), ["bn1"]);
//!
//! model.eval();
//! let before = model.run(&[Value::F32(x.clone())])?;
//! fuse_modules(&mut model, &[&["conv1", "bn1", "relu1"]])?; // conv1 = ConvReLU2d(folded conv)
//! assert_eq!(model.node("conv1").and_then(|n| n.kind()), Some(ModuleKind::ConvReLU2d));
//! assert_eq!(model.node("bn1").and_then(|n| n.kind()), Some(ModuleKind::Identity));
//! let after = model.run(&[Value::F32(x)])?;
//! assert_eq!(before[0].shape(), after[0].shape());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Quantization passes ([`passes`])
//!
//! PyTorch's eager flow: [`passes::prepare()`] (with a `QConfigMapping`) or
//! [`passes::prepare_configured`] (QConfigs already set on the nodes) inserts observer nodes
//! ([`passes::ObserverNode`], named `<node>.activation_post_process`) after the graph input and
//! after every quantizable output, using each node's QConfig; running the graph calibrates them;
//! [`passes::convert()`] swaps every quantizable node for its `qnn::quantized` module (weights
//! observed and packed once, output qparams from its observer), turns the input observer into a
//! `Quantize` node and adds `DeQuantize` at the outputs and in front of nodes left float
//! (QConfig `None`). [`passes::prepare_qat`] swaps in QAT layers (Linear, Conv2d and the fused
//! LinearReLU, LinearBn1d, ConvReLU2d, ConvBn1d/2d, ConvBnReLU1d/2d, as PyTorch's
//! `DEFAULT_QAT_MODULE_MAPPINGS`) and fake-quant nodes for
//! training ([`passes::toggles`] switches observers, fake-quant and BN statistics), after which
//! `convert` works the same way. [`passes::quantize_dynamic`] swaps Linear/LSTM/GRU/cells for
//! `qnn::dynamic` modules without calibration. [`numeric_suite`] compares a float graph and its
//! quantized version node by node (SQNR).
//!
//! ```
//! use qflow::passes::{convert, prepare_configured, set_global_qconfig};
//! use qflow::qconfig::{QConfig, QuantSpec};
//! use qflow::SequentialBuilder;
//! use qnn::float::{Linear, ReLU};
//! use qnn::fused::LinearReLU;
//! use qnn::init::Rng;
//! use qnn::qtensor::observer::ObserverSpec;
//! use qnn::qtensor::Tensor;
//! use qnn::{ModuleKind, Value};
//!
//! let mut rng = Rng::new(0);
//! let mut model = SequentialBuilder::new("x")
//!     .add("fc1", LinearReLU::new(Linear::new(8, 16, true, &mut rng), ReLU::new()))
//!     .add("fc2", Linear::new(16, 4, true, &mut rng))
//!     .build()?;
//! let qconfig = QConfig {
//!     activation: QuantSpec::Observer(ObserverSpec::default_observer()),
//!     weight: QuantSpec::Observer(ObserverSpec::default_per_channel_weight_observer()),
//! };
//! set_global_qconfig(&mut model, &qconfig);
//! prepare_configured(&mut model)?; // x.activation_post_process, fc1.…, fc2.…
//! for seed in 0..4 {
//!     // calibration
//!     let mut r = Rng::new(seed);
//!     model.run(&[Value::F32(Tensor::from_fn(&[2, 8], |_| r.uniform(-1.0, 1.0)))])?;
//! }
//! convert(&mut model)?;
//! assert_eq!(model.node_names(), ["quant", "fc1", "fc2", "dequant"]);
//! assert_eq!(model.node("fc1").and_then(|n| n.kind()), Some(ModuleKind::QuantizedLinearReLU));
//! let y = model.run(&[Value::F32(Tensor::from_fn(&[1, 8], |i| i as f32 / 8.0))])?;
//! assert_eq!(y[0].shape(), Some(&[1, 4][..]));
//! # Ok::<(), qflow::QflowError>(())
//! ```

//! ## Equal to PyTorch
//!
//! `tests/flow_vs_torch.rs` runs fuse → prepare → calibrate → convert on LeNet5, a ResNet
//! basic block and a MobileNetV2 inverted residual next to PyTorch 2.15's eager flow (same
//! weights, same batches; `get_default_qconfig("fbgemm")` and `default_qconfig`): observer
//! qparams, quantized weights and outputs are bit-identical when the observers see PyTorch's
//! float activations, and end-to-end calibration differs only by the float convolutions' last
//! bits. Like PyTorch's `_quantize_weight`, `convert` clamps the weight's integers to the weight
//! observer's `[quant_min, quant_max]` when that range is narrower than qint8's:
//!
//! ```
//! use qflow::passes::{convert, prepare};
//! use qflow::qconfig::{QConfig, QConfigMapping};
//! use qflow::SequentialBuilder;
//! use qnn::float::Linear;
//! use qnn::init::Rng;
//! use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
//! use qnn::qtensor::{QDType, QScheme, Tensor};
//! use qnn::{quantized, Value};
//!
//! let mut g = SequentialBuilder::new("x")
//!     .add("fc", Linear::new(16, 4, true, &mut Rng::new(1)))
//!     .build()?;
//! // A 7-bit symmetric weight observer: scale = max|w| / 63.5, so the largest positive
//! // weight of a channel rounds to 64 and is clamped to 63.
//! let mut w7 = ObserverConfig::new(QDType::QInt8, QScheme::PerChannelSymmetric);
//! (w7.quant_min, w7.quant_max) = (Some(-64), Some(63));
//! let qconfig = QConfig::new(
//!     ObserverSpec::default_observer(),
//!     ObserverSpec::PerChannelMinMax { config: w7, ch_axis: 0 },
//! );
//! prepare(&mut g, &QConfigMapping::new().set_global(Some(qconfig)))?;
//! let mut rng = Rng::new(2);
//! g.run(&[Value::F32(Tensor::from_fn(&[8, 16], |_| rng.uniform(-1.0, 1.0)))])?;
//! convert(&mut g)?;
//! let fc = g.module_as::<quantized::Linear>("fc").expect("quantized Linear");
//! assert!(fc.weight_int().data().iter().all(|&q| (-64..=63).contains(&q)));
//! # Ok::<(), qflow::QflowError>(())
//! ```

pub mod error;
pub mod graph;
pub mod io;
pub mod numeric_suite;
pub mod passes;
pub mod qconfig;
pub mod torch_state;

pub use error::{QflowError, Result};
pub use graph::{FunctionalBuilder, FunctionalOp, Graph, Node, Op, SequentialBuilder, node_repr};
pub use qnn;
pub use torch_state::{
    TorchLoadReport, load_torch_state_dict, load_torch_state_dict_file, load_torch_state_map,
};

/// The repository README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
