//! The results table and the Markdown report.

use std::fmt::Write;

use super::{Outcome, Row, fmt_bytes, fp32_of};
use crate::latency::fmt_seconds;

/// Everything the report says besides the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportContext {
    /// Dataset name.
    pub dataset: String,
    /// Training / test images used.
    pub train_images: usize,
    /// Test images used.
    pub test_images: usize,
    /// One line describing the training run.
    pub training: String,
    /// Per-epoch lines.
    pub epochs: Vec<String>,
    /// How the sequence models were trained (empty when skipped).
    pub sequence: Vec<String>,
    /// CPU model and thread count.
    pub machine: String,
    /// Total wall time of the demo in seconds.
    pub wall_seconds: f64,
}

/// The results as a Markdown table: accuracy, file size, latency at batch 1 and 64,
/// throughput at batch 64, speedup over the same model's fp32 (batch 1 / batch 64).
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| model | variant | accuracy | file size | latency b1 | latency b64 | throughput | speedup b1 | speedup b64 |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        match &r.outcome {
            Outcome::Measured(m) => {
                let (s1, s64) = match fp32_of(rows, &r.model) {
                    Some(f) => (
                        format!("{:.2}×", f.b1.median_s / m.b1.median_s),
                        format!("{:.2}×", f.b64.median_s / m.b64.median_s),
                    ),
                    None => ("–".into(), "–".into()),
                };
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} % | {} | {} | {} | {:.0} img/s | {s1} | {s64} |",
                    r.model,
                    r.variant,
                    100.0 * m.accuracy,
                    fmt_bytes(m.size_bytes),
                    fmt_seconds(m.b1.median_s),
                    fmt_seconds(m.b64.median_s),
                    m.b64.throughput(),
                );
            }
            Outcome::Unavailable(why) => {
                let _ = writeln!(s, "| {} | {} | {why} | | | | | | |", r.model, r.variant);
            }
        }
    }
    s
}

/// The whole report: context, table, chart link, notes on the method.
pub fn report(ctx: &ReportContext, rows: &[Row], chart_file: &str) -> String {
    let mut s = String::from("# qstack demo report\n\n");
    let _ = writeln!(
        s,
        "{} — {} training / {} test images. Machine: {}. Demo wall time {:.1} s.\n",
        ctx.dataset, ctx.train_images, ctx.test_images, ctx.machine, ctx.wall_seconds
    );
    let _ = writeln!(s, "## Training\n\n{}\n", ctx.training);
    for e in &ctx.epochs {
        let _ = writeln!(s, "- {e}");
    }
    if !ctx.sequence.is_empty() {
        s.push_str("\nSequence models (short runs, to exercise their dynamic path):\n\n");
        for l in &ctx.sequence {
            let _ = writeln!(s, "- {l}");
        }
    }
    let _ = writeln!(s, "\n## Results\n\n{}", table(rows));
    let _ = writeln!(s, "![accuracy against latency and size]({chart_file})\n");
    s.push_str(
        "## Method\n\n\
         - Accuracy: arg-max of the logits over the test images used.\n\
         - File size: the model saved as safetensors in this folder (fp16 stores conv/linear \
         weights as F16).\n\
         - Latency: median wall time of one forward call on a fixed batch (the first 1 or 64 \
         test images), one thread, after warm-up. Throughput = 64 / latency at batch 64.\n\
         - Speedup: the same architecture's fp32 latency divided by the variant's.\n",
    );
    s
}

/// The report section for the per-layer SQNR chart of `what` (e.g. `LeNet5 static int8`).
pub fn layer_section(what: &str, chart_file: &str) -> String {
    format!(
        "\n## Per-layer SQNR ({what})\n\n\
         qflow's numeric suite on the first 64 test images: SQNR of each quantized layer's \
         output against the fused float model's (higher is better; `qstack inspect` prints the \
         full table).\n\n![per-layer SQNR of {what}]({chart_file})\n"
    )
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::rows;
    use super::*;

    #[test]
    fn table_has_values_speedups_and_unavailable_rows() {
        let t = table(&rows());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[2],
            "| LeNet5 | fp32 | 99.10 % | 248.0 KB | 100.0 µs | 2.00 ms | 32000 img/s | 1.00× | 1.00× |"
        );
        assert_eq!(
            lines[3],
            "| LeNet5 | fp16 | 99.05 % | 125.0 KB | 110.0 µs | 1.00 ms | 64000 img/s | 0.91× | 2.00× |"
        );
        assert_eq!(
            lines[4],
            "| LeNet5 | static int8 | not available yet | | | | | | |"
        );
    }

    #[test]
    fn report_embeds_table_and_chart() {
        let ctx = ReportContext {
            dataset: "MNIST".into(),
            train_images: 60000,
            test_images: 10000,
            training: "3 epochs".into(),
            epochs: vec!["epoch 1".into()],
            sequence: vec!["row LSTM: 1 epoch".into()],
            machine: "cpu, 1 thread".into(),
            wall_seconds: 12.0,
        };
        let r = report(&ctx, &rows(), "chart.svg");
        assert!(r.contains("![accuracy against latency and size](chart.svg)"));
        assert!(r.contains("| LeNet5 | fp32 | 99.10 %"));
        assert!(r.contains("Demo wall time 12.0 s"));
        assert!(r.contains("- row LSTM: 1 epoch"));
        let l = layer_section("LeNet5 static int8", "sqnr.svg");
        assert!(l.contains("## Per-layer SQNR (LeNet5 static int8)"));
        assert!(l.contains("![per-layer SQNR of LeNet5 static int8](sqnr.svg)"));
    }
}
