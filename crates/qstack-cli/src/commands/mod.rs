//! One module per subcommand; [`run`] dispatches.

mod bench;
mod demo;
mod eval;
mod import;
mod inspect;
mod quantize;
mod train;

use qnn::Module;
use qnn::state_dict::{load_state_dict, state_dict};

use crate::cli::{Cli, Command, DataArgs, TrainArgs};
use crate::data::{DatasetKind, Normalizer, Split, SplitKind, load_split};
use crate::error::Result;
use crate::training::TrainConfig;
use crate::zoo::Arch;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Demo(a) => demo::run(&a, quiet),
        Command::Train(a) => train::run(&a, quiet),
        Command::Eval(a) => eval::run(&a, quiet),
        Command::Bench(a) => bench::run(&a),
        Command::Quantize(a) => quantize::run(&a, quiet),
        Command::Import(a) => import::run(&a, quiet),
        Command::Inspect(a) => inspect::run(&a, quiet),
    }
}

/// A split of the dataset named by `args`, with its normalizer.
pub(crate) fn load(args: &DataArgs, split: SplitKind) -> Result<(Split, Normalizer)> {
    let dir = args.dataset.resolve_dir(args.data_dir.as_deref())?;
    let limit = match split {
        SplitKind::Train => args.train_limit,
        SplitKind::Test => args.test_limit,
    };
    let data = load_split(&dir, args.dataset, split, limit)?;
    Ok((data, Normalizer::for_dataset(args.dataset)))
}

/// The training configuration from the flags.
pub(crate) fn train_config(t: &TrainArgs) -> TrainConfig {
    TrainConfig {
        epochs: t.epochs,
        batch_size: t.batch_size,
        lr: t.lr,
        optimizer: t.optimizer,
        momentum: t.momentum,
        seed: t.seed,
        cosine: !t.constant_lr,
    }
}

/// A fresh copy of `module` (same architecture, same state).
pub(crate) fn copy_module(arch: Arch, module: &dyn Module) -> Result<Box<dyn Module>> {
    let mut copy = arch.build(0)?;
    load_state_dict(copy.as_mut(), &state_dict(module), true)?;
    copy.eval();
    Ok(copy)
}

/// The CPU's model name (from /proc/cpuinfo where available).
pub(crate) fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The 1-minute load average (from /proc/loadavg), or `?`: latencies on a busy machine are
/// not comparable, so the report records it.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Dataset label for messages.
pub(crate) fn dataset_name(kind: DatasetKind) -> &'static str {
    kind.display_name()
}
