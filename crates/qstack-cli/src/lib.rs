//! # qstack-cli — the `qstack` command
//!
//! The command-line face of qstack: `qstack demo` trains LeNet5 on the bundled MNIST, builds
//! fp32, fp16 and int8 models from it, measures accuracy, file size, single-thread latency and
//! throughput, and writes the models, a Markdown report and an SVG chart. `train`, `eval`,
//! `bench`, `quantize`, `inspect` and `import` do the steps one at a time.
//!
//! - [`data`]: the IDX reader (typed errors for every malformed input), MNIST /
//!   Fashion-MNIST loading with SHA-256 checks, torchvision-style normalized batches.
//! - [`zoo`]: LeNet5 (PyTorch names `conv1`, `fc1`, …), the row LSTM, the patch Transformer.
//! - [`training`], [`evaluate`], [`latency`]: the loops behind the commands.
//! - [`model`]: the [`model::Model`] trait every built variant implements, and safetensors
//!   saving (fp16 weights stored as F16).
//! - [`quantize`]: one `build_<mode>` function per int8 flow.
//! - [`layer_sqnr`]: the per-layer numeric suite behind `qstack inspect` and the demo chart.
//! - [`report`]: the results table, Markdown report and SVG chart.
//! - [`commands`], [`cli`], [`error`]: the subcommands, their flags, and [`CliError`].
//!
//! The library half exists so that the pieces are testable and reusable:
//!
//! ```
//! use qstack_cli::data::{InputLayout, Normalizer, Split, make_batch};
//! use qstack_cli::model::{FloatModel, Model};
//! use qstack_cli::zoo::Arch;
//!
//! let split = Split::new(vec![0u8; 2 * 28 * 28], vec![3, 7])?;
//! let norm = Normalizer::new(0.1307, 0.3081);
//! let (x, labels) = make_batch(&split, &[0, 1], InputLayout::Padded32, &norm);
//! let mut model = FloatModel::fp32(Arch::Lenet5.build(0)?, Arch::Lenet5);
//! let logits = model.predict(&x)?;
//! assert_eq!(logits.shape(), &[2, 10]);
//! assert_eq!(labels, vec![3, 7]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cli;
pub mod commands;
pub mod data;
pub mod error;
pub mod evaluate;
pub mod fsio;
pub mod latency;
pub mod layer_sqnr;
pub mod model;
pub mod progress;
pub mod quantize;
pub mod report;
pub mod training;
pub mod zoo;

pub use error::{CliError, Result};
