//! `qstack demo`: train LeNet5, build fp32 / fp16 / dynamic / static / QAT models, measure each,
//! print one table, and write the models, `report.md`, `chart.svg` and the per-layer SQNR chart
//! of the static int8 LeNet5 (`lenet5-static-sqnr.svg`) to the output folder.
//! The sequence models (row LSTM, patch Transformer) get a shorter run and the same rows.

use std::time::Instant;

use qtensor::Tensor;

use crate::cli::DemoArgs;
use crate::data::{InputLayout, Normalizer, Split, SplitKind, make_batch};
use crate::error::{CliError, Result};
use crate::evaluate::accuracy;
use crate::fsio::{ensure_dir, write_atomic};
use crate::latency::{measure, single_thread};
use crate::layer_sqnr::{LayerRow, compare_layers};
use crate::model::{FloatModel, Model, QuantizedModel};
use crate::quantize::{QuantInputs, QuantMode, float_reference, quantized_module};
use crate::report::markdown::{ReportContext, layer_section, report, table};
use crate::report::{Measured, Outcome, Row, sqnr_svg, svg};
use crate::training::{OptimizerKind, TrainConfig, train};
use crate::zoo::Arch;

/// Warm-up calls before each latency measurement.
const WARMUP: usize = 5;

struct Bench<'a> {
    test: &'a Split,
    norm: &'a Normalizer,
    runs: usize,
    quiet: bool,
    out: &'a std::path::Path,
}

impl Bench<'_> {
    /// The first `n` test images as one batch (repeated if the test split is smaller).
    fn batch(&self, layout: InputLayout, n: usize) -> Tensor<f32> {
        let idx: Vec<usize> = (0..n).map(|i| i % self.test.len()).collect();
        make_batch(self.test, &idx, layout, self.norm).0
    }

    fn measure(&self, model: &mut dyn Model, file: String) -> Result<Measured> {
        let acc = accuracy(model, self.test, self.norm, self.quiet)?;
        let size_bytes = model.save(&self.out.join(&file))?;
        let layout = model.input_layout();
        let b1 = measure(model, &self.batch(layout, 1), self.runs, WARMUP)?;
        let b64 = measure(model, &self.batch(layout, 64), self.runs, WARMUP)?;
        Ok(Measured {
            accuracy: acc,
            size_bytes,
            b1,
            b64,
            file,
        })
    }
}

fn row(model: &str, variant: &str, outcome: Outcome) -> Row {
    Row {
        model: model.into(),
        variant: variant.into(),
        outcome,
    }
}

fn say(line: &str) {
    println!("{line}");
}

/// File name of the per-layer SQNR chart.
const SQNR_CHART: &str = "lenet5-static-sqnr.svg";

/// An int8 model, with the numeric suite's per-layer rows when they were computed.
type BuiltInt8 = (Box<dyn Model>, Option<Vec<LayerRow>>);

/// Builds the int8 model of `mode`; for static int8 also runs the numeric suite against the
/// fused float model on the first 64 test images.
fn build_with_layers(
    mode: QuantMode,
    fp32: &FloatModel,
    inputs: &QuantInputs<'_>,
    bench: &Bench<'_>,
) -> Result<BuiltInt8> {
    let arch = fp32.arch();
    let mut q = quantized_module(mode, fp32, inputs)?;
    let layers = if mode == QuantMode::Static {
        let mut reference = float_reference(mode, fp32)?;
        let x = bench.batch(arch.input_layout(), 64);
        Some(compare_layers(reference.as_mut(), q.as_mut(), &x)?)
    } else {
        None
    };
    Ok((Box::new(QuantizedModel::new(q, arch, mode.label())), layers))
}

/// Measures fp32 and fp16 of `module`, and the int8 `modes` (rows say why one is unavailable);
/// returns the per-layer numeric suite of static int8 when that mode was built.
fn measure_variants(
    arch: Arch,
    display: &str,
    module: Box<dyn qnn::Module>,
    modes: &[QuantMode],
    bench: &Bench<'_>,
    inputs: &QuantInputs<'_>,
    rows: &mut Vec<Row>,
) -> Result<Option<Vec<LayerRow>>> {
    let mut static_layers = None;
    let half_copy = super::copy_module(arch, module.as_ref())?;
    let mut fp32 = FloatModel::fp32(module, arch);
    let m = bench.measure(&mut fp32, format!("{}-fp32.safetensors", arch.name()))?;
    say(&format!(
        "{display} fp32: accuracy {:.2} %",
        100.0 * m.accuracy
    ));
    rows.push(row(display, "fp32", Outcome::Measured(m)));
    let mut fp16 = FloatModel::fp32(half_copy, arch).into_fp16()?;
    let m = bench.measure(&mut fp16, format!("{}-fp16.safetensors", arch.name()))?;
    say(&format!(
        "{display} fp16: accuracy {:.2} %",
        100.0 * m.accuracy
    ));
    rows.push(row(display, "fp16", Outcome::Measured(m)));
    for &mode in modes {
        let outcome = match build_with_layers(mode, &fp32, inputs, bench) {
            Ok((mut q, layers)) => {
                static_layers = static_layers.or(layers);
                Outcome::Measured(bench.measure(
                    q.as_mut(),
                    format!("{}-{}.safetensors", arch.name(), mode.file_stem()),
                )?)
            }
            Err(e @ CliError::NotAvailable { .. }) => {
                say(&format!("{display} {e}"));
                Outcome::Unavailable("not available yet".into())
            }
            Err(e) => return Err(e),
        };
        rows.push(row(display, mode.label(), outcome));
    }
    Ok(static_layers)
}

/// Runs the demo.
pub fn run(a: &DemoArgs, quiet: bool) -> Result<()> {
    let t0 = Instant::now();
    single_thread();
    let (train_split, norm) = super::load(&a.data, SplitKind::Train)?;
    let (test, _) = super::load(&a.data, SplitKind::Test)?;
    if a.calib_size > train_split.len() {
        return Err(CliError::InvalidArg {
            flag: "--calib-size",
            reason: format!(
                "{} is more than the {} training images",
                a.calib_size,
                train_split.len()
            ),
        });
    }
    ensure_dir(&a.out)?;
    let dataset = super::dataset_name(a.data.dataset);
    let machine = format!(
        "{}, 1 thread, load average {} at start",
        super::cpu_name(),
        super::load_average()
    );
    say(&format!(
        "qstack demo: {dataset}, {} training / {} test images; {machine}",
        train_split.len(),
        test.len()
    ));

    let cfg = super::train_config(&a.train);
    let training = format!(
        "LeNet5, {} epochs, batch {}, {:?} lr {}{}, seed {}",
        cfg.epochs,
        cfg.batch_size,
        cfg.optimizer,
        cfg.lr,
        if cfg.cosine { " (cosine decay)" } else { "" },
        cfg.seed
    );
    say(&format!("training {training}"));
    let mut epochs = Vec::new();
    let mut lenet = Arch::Lenet5.build(cfg.seed)?;
    train(
        lenet.as_mut(),
        Arch::Lenet5.input_layout(),
        &train_split,
        &norm,
        &cfg,
        quiet,
        &mut |e| {
            let line = format!(
                "epoch {}: loss {:.4}, train accuracy {:.2} %, {:.1} s",
                e.epoch,
                e.loss,
                100.0 * e.train_accuracy,
                e.seconds
            );
            say(&line);
            epochs.push(line);
        },
    )?;

    let bench = Bench {
        test: &test,
        norm: &norm,
        runs: a.runs,
        quiet,
        out: &a.out,
    };
    let inputs = QuantInputs {
        train: &train_split,
        norm: &norm,
        calib_size: a.calib_size,
        backend: a.backend,
        qat: TrainConfig {
            epochs: 1,
            batch_size: cfg.batch_size,
            lr: 1e-4,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            seed: cfg.seed,
            cosine: true,
        },
        qat_images: 10_000,
        quiet,
    };
    let mut rows = Vec::new();
    let mut sequence = Vec::new();
    let lenet_layers = measure_variants(
        Arch::Lenet5,
        "LeNet5",
        lenet,
        &QuantMode::ALL,
        &bench,
        &inputs,
        &mut rows,
    )?;

    if !a.skip_sequence {
        let seq_train = train_split.take(a.sequence_train_limit);
        for (arch, display) in [
            (Arch::Lstm, "row LSTM"),
            (Arch::Transformer, "patch Transformer"),
        ] {
            let seq_cfg = TrainConfig {
                epochs: 1,
                batch_size: 64,
                lr: 2e-3,
                optimizer: OptimizerKind::Adam,
                ..cfg.clone()
            };
            let mut m = arch.build(cfg.seed)?;
            train(
                m.as_mut(),
                arch.input_layout(),
                &seq_train,
                &norm,
                &seq_cfg,
                quiet,
                &mut |e| {
                    let line = format!(
                        "{display}: 1 epoch on {} images, Adam lr {}, loss {:.4}, {:.1} s",
                        seq_train.len(),
                        seq_cfg.lr,
                        e.loss,
                        e.seconds
                    );
                    say(&line);
                    sequence.push(line);
                },
            )?;
            measure_variants(
                arch,
                display,
                m,
                &[QuantMode::Dynamic],
                &bench,
                &inputs,
                &mut rows,
            )?;
        }
    }

    let wall = t0.elapsed().as_secs_f64();
    println!("\n{}", table(&rows));
    let ctx = ReportContext {
        dataset: dataset.into(),
        train_images: train_split.len(),
        test_images: test.len(),
        training,
        epochs,
        sequence,
        machine,
        wall_seconds: wall,
    };
    let mut md = report(&ctx, &rows, "chart.svg");
    if let Some(layers) = &lenet_layers {
        md.push_str(&layer_section("LeNet5 static int8", SQNR_CHART));
        write_atomic(
            &a.out.join(SQNR_CHART),
            sqnr_svg::sqnr_chart(layers, "LeNet5 static int8: per-layer output SQNR").as_bytes(),
        )?;
    }
    write_atomic(&a.out.join("report.md"), md.as_bytes())?;
    write_atomic(
        &a.out.join("chart.svg"),
        svg::chart(&rows, "LeNet5").as_bytes(),
    )?;
    say(&format!(
        "wrote {} (models, report.md, chart.svg); wall time {wall:.1} s",
        a.out.display()
    ));
    Ok(())
}
