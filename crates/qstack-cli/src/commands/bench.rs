//! `qstack bench`: single-thread latency and throughput.

use qtensor::Tensor;

use crate::cli::BenchArgs;
use crate::error::Result;
use crate::latency::{fmt_seconds, measure, single_thread};
use crate::model::{FloatModel, Model, load_weights};

/// Times `predict` at each batch size on uniform inputs (latency does not depend on values).
pub fn run(a: &BenchArgs) -> Result<()> {
    single_thread();
    let module = match &a.weights {
        Some(p) => load_weights(a.model, p)?,
        None => a.model.build(0)?,
    };
    let mut model = FloatModel::fp32(module, a.model);
    if a.half {
        model = model.into_fp16()?;
    }
    let mut rng = qnn::init::Rng::new(1);
    for &b in &a.batch {
        let mut shape = vec![b];
        shape.extend(a.model.input_layout().sample_shape());
        let mut x = Tensor::zeros(&shape);
        rng.fill_uniform(x.data_mut(), -0.5, 2.8);
        let l = measure(&mut model, &x, a.runs, a.warmup)?;
        println!(
            "{} {} batch {b}: median {} (min {}), {:.0} img/s, 1 thread, {} runs",
            a.model.name(),
            model.label(),
            fmt_seconds(l.median_s),
            fmt_seconds(l.min_s),
            l.throughput(),
            a.runs
        );
    }
    Ok(())
}
