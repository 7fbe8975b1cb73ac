//! Latency and throughput: median wall time of repeated `predict` calls on a fixed batch.

use std::time::Instant;

use qtensor::Tensor;

use crate::error::Result;
use crate::model::Model;

/// Timing of one model at one batch size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Batch size.
    pub batch: usize,
    /// Median seconds per call.
    pub median_s: f64,
    /// Fastest call, seconds.
    pub min_s: f64,
}

impl Latency {
    /// Images per second at the median.
    pub fn throughput(&self) -> f64 {
        self.batch as f64 / self.median_s.max(1e-12)
    }
}

/// Median of `runs` timed `predict(x)` calls after `warmup` untimed ones.
pub fn measure(
    model: &mut dyn Model,
    x: &Tensor<f32>,
    runs: usize,
    warmup: usize,
) -> Result<Latency> {
    for _ in 0..warmup {
        std::hint::black_box(model.predict(x)?);
    }
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let t0 = Instant::now();
        std::hint::black_box(model.predict(x)?);
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(Latency {
        batch: x.shape().first().copied().unwrap_or(1),
        median_s: times[times.len() / 2],
        min_s: times[0],
    })
}

/// Makes rayon (used by qtensor's large-slice loops) single-threaded for this process, so
/// latencies are one-thread figures. Harmless when called twice.
pub fn single_thread() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global();
}

/// `1.23 ms`, `456 µs`, `7.8 s`.
pub fn fmt_seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_throughput() {
        assert_eq!(fmt_seconds(2.5), "2.50 s");
        assert_eq!(fmt_seconds(0.00123), "1.23 ms");
        assert_eq!(fmt_seconds(0.0000456), "45.6 µs");
        let l = Latency {
            batch: 64,
            median_s: 0.002,
            min_s: 0.001,
        };
        assert!((l.throughput() - 32000.0).abs() < 1e-6);
    }
}
