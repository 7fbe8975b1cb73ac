//! The command line, as clap derive structs. Values are checked while parsing (clap prints the
//! error and exits with status 2); paths and file contents are checked by the commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::data::DatasetKind;
use crate::quantize::{Backend, QuantMode};
use crate::training::OptimizerKind;
use crate::zoo::Arch;

/// qstack: PyTorch-style int8 quantization in Rust. `qstack demo` trains LeNet5 on MNIST and
/// compares fp32, fp16 and the int8 flows in one table and report.
#[derive(Debug, Parser)]
#[command(name = "qstack", version, about, propagate_version = true)]
pub struct Cli {
    /// Hide progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train LeNet5 on MNIST, build fp32 / fp16 / int8 models, and write a table, a Markdown
    /// report, an SVG chart and the models to --out.
    Demo(DemoArgs),
    /// Train a model and save its fp32 weights (safetensors).
    Train(TrainCmdArgs),
    /// Test accuracy of saved weights.
    Eval(EvalArgs),
    /// Single-thread latency (batch 1 and 64) and throughput of a model.
    Bench(BenchArgs),
    /// Quantize saved fp32 weights (dynamic, static or QAT int8).
    Quantize(QuantizeArgs),
    /// Load a PyTorch safetensors state dict into a qstack model, check it, and save it.
    Import(ImportArgs),
    /// Per-layer numeric comparison (SQNR) of a quantized model against its float model.
    Inspect(InspectArgs),
}

/// Which data to use.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// The dataset.
    #[arg(long, value_enum, default_value_t = DatasetKind::Mnist)]
    pub dataset: DatasetKind,
    /// Directory holding the four IDX files (default: the repository's data/mnist, or
    /// /usr/share/datasets/fashion-mnist for Fashion-MNIST).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use only the first N training images.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N", value_parser = positive)]
    pub test_limit: Option<usize>,
}

/// Training hyper-parameters.
#[derive(Debug, Args, Clone)]
pub struct TrainArgs {
    /// Passes over the training set.
    #[arg(long, default_value_t = 3, value_parser = positive)]
    pub epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    pub batch_size: usize,
    /// Peak learning rate (cosine-decayed to 0 unless --constant-lr).
    #[arg(long, default_value_t = 2e-3, value_parser = positive_f32)]
    pub lr: f32,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = OptimizerKind::Adam)]
    pub optimizer: OptimizerKind,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9, value_parser = unit_f32)]
    pub momentum: f32,
    /// Keep the learning rate constant.
    #[arg(long)]
    pub constant_lr: bool,
    /// Seed of the initialization and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `qstack demo`.
#[derive(Debug, Args, Clone)]
pub struct DemoArgs {
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training.
    #[command(flatten)]
    pub train: TrainArgs,
    /// Output folder (models, report.md, chart.svg).
    #[arg(long, default_value = "qstack-demo-out", value_name = "DIR")]
    pub out: PathBuf,
    /// Timed runs per latency measurement (the median is reported).
    #[arg(long, default_value_t = 50, value_parser = positive)]
    pub runs: usize,
    /// Calibration images for static int8.
    #[arg(long, default_value_t = 1024, value_parser = positive)]
    pub calib_size: usize,
    /// Quantized engine.
    #[arg(long, value_enum, default_value_t = Backend::Fbgemm)]
    pub backend: Backend,
    /// Skip the sequence models (row LSTM, patch Transformer).
    #[arg(long)]
    pub skip_sequence: bool,
    /// Training images for each sequence model (they train one epoch).
    #[arg(long, default_value_t = 10_000, value_parser = positive)]
    pub sequence_train_limit: usize,
}

/// `qstack train`.
#[derive(Debug, Args, Clone)]
pub struct TrainCmdArgs {
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Training.
    #[command(flatten)]
    pub train: TrainArgs,
    /// Where to write the fp32 weights (default `qstack-out/<model>.safetensors`).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `qstack eval`.
#[derive(Debug, Args, Clone)]
pub struct EvalArgs {
    /// Architecture of the weights.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// The weights (safetensors, PyTorch names).
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// Evaluate with fp16 weights.
    #[arg(long)]
    pub half: bool,
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `qstack bench`.
#[derive(Debug, Args, Clone)]
pub struct BenchArgs {
    /// Architecture.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// Weights (default: a freshly initialized model; latency does not depend on the values).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Benchmark fp16 weights.
    #[arg(long)]
    pub half: bool,
    /// Batch sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 64], value_parser = positive)]
    pub batch: Vec<usize>,
    /// Timed runs (the median is reported).
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub runs: usize,
    /// Untimed warm-up runs.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
}

/// `qstack quantize`.
#[derive(Debug, Args, Clone)]
pub struct QuantizeArgs {
    /// Architecture of the weights.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// The fp32 weights to quantize.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The flow.
    #[arg(long, value_enum)]
    pub mode: QuantMode,
    /// Quantized engine (PyTorch's qconfig / backend name).
    #[arg(long, alias = "qconfig", value_enum, default_value_t = Backend::Fbgemm)]
    pub backend: Backend,
    /// Calibration images (static) or fine-tuning images (QAT), from the training split.
    #[arg(long, default_value_t = 1024, value_parser = positive)]
    pub calib_size: usize,
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
    /// Where to write the quantized model.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `qstack inspect`.
#[derive(Debug, Args, Clone)]
pub struct InspectArgs {
    /// Architecture of the weights.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// The fp32 weights.
    #[arg(long, value_name = "FILE")]
    pub weights: PathBuf,
    /// The int8 flow to compare against the float model.
    #[arg(long, value_enum, default_value_t = QuantMode::Static)]
    pub mode: QuantMode,
    /// Quantized engine.
    #[arg(long, alias = "qconfig", value_enum, default_value_t = Backend::Fbgemm)]
    pub backend: Backend,
    /// Calibration images.
    #[arg(long, default_value_t = 1024, value_parser = positive)]
    pub calib_size: usize,
    /// Data.
    #[command(flatten)]
    pub data: DataArgs,
}

/// `qstack import`.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// Architecture the state dict is for.
    #[arg(long, value_enum, default_value_t = Arch::Lenet5)]
    pub model: Arch,
    /// The PyTorch state dict (`safetensors.torch.save_file(model.state_dict(), …)`).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the qstack weights (default: no copy, only the checks).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also report test accuracy.
    #[arg(long)]
    pub eval: bool,
    /// Data (for --eval).
    #[command(flatten)]
    pub data: DataArgs,
}

/// A whole number ≥ 1.
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a whole number: {e}")),
    }
}

/// A finite float > 0.
fn positive_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} must be a finite number above 0")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

/// A float in `[0, 1)`.
fn unit_f32(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} must be in [0, 1)")),
        Err(e) => Err(format!("`{s}` is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn value_checks() {
        assert_eq!(positive("3"), Ok(3));
        assert!(positive("0").is_err());
        assert!(positive("-1").is_err());
        assert!(positive_f32("nan").is_err());
        assert!(positive_f32("0").is_err());
        assert_eq!(unit_f32("0.9"), Ok(0.9));
        assert!(unit_f32("1").is_err());
    }
}
