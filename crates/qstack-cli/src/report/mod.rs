//! The demo's results: [`Row`]s, rendered as a Markdown table and report ([`markdown`]) and as
//! a hand-written SVG chart of accuracy against latency and size ([`svg`]), and the per-layer
//! SQNR bar chart of the numeric suite ([`sqnr_svg`]).

pub mod markdown;
pub mod sqnr_svg;
pub mod svg;

use crate::latency::Latency;

/// Measurements of one built model.
#[derive(Clone, Debug, PartialEq)]
pub struct Measured {
    /// Test accuracy in `[0, 1]`.
    pub accuracy: f64,
    /// Size of the saved model file in bytes.
    pub size_bytes: u64,
    /// Latency at batch 1.
    pub b1: Latency,
    /// Latency at batch 64.
    pub b64: Latency,
    /// File name in the output folder.
    pub file: String,
}

/// What happened to one variant.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Built and measured.
    Measured(Measured),
    /// Not built, with the reason (e.g. the library support has not landed yet).
    Unavailable(String),
}

/// One line of the results table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The architecture (`LeNet5`, `row LSTM`, …).
    pub model: String,
    /// The variant (`fp32`, `fp16`, `static int8`, …).
    pub variant: String,
    /// The result.
    pub outcome: Outcome,
}

impl Row {
    /// The measurements, if any.
    pub fn measured(&self) -> Option<&Measured> {
        match &self.outcome {
            Outcome::Measured(m) => Some(m),
            Outcome::Unavailable(_) => None,
        }
    }
}

/// The fp32 row of `model` in `rows` (the speedup reference).
pub fn fp32_of<'a>(rows: &'a [Row], model: &str) -> Option<&'a Measured> {
    rows.iter()
        .find(|r| r.model == model && r.variant == "fp32")
        .and_then(Row::measured)
}

/// `61.7 KB`, `1.20 MB`.
pub fn fmt_bytes(b: u64) -> String {
    if b >= 1_000_000 {
        format!("{:.2} MB", b as f64 / 1e6)
    } else if b >= 1000 {
        format!("{:.1} KB", b as f64 / 1e3)
    } else {
        format!("{b} B")
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub fn lat(batch: usize, s: f64) -> Latency {
        Latency {
            batch,
            median_s: s,
            min_s: s,
        }
    }

    pub fn rows() -> Vec<Row> {
        let m = |acc, size, b1, b64| {
            Outcome::Measured(Measured {
                accuracy: acc,
                size_bytes: size,
                b1: lat(1, b1),
                b64: lat(64, b64),
                file: "f.safetensors".into(),
            })
        };
        vec![
            Row {
                model: "LeNet5".into(),
                variant: "fp32".into(),
                outcome: m(0.991, 248_000, 100e-6, 2e-3),
            },
            Row {
                model: "LeNet5".into(),
                variant: "fp16".into(),
                outcome: m(0.9905, 125_000, 110e-6, 1e-3),
            },
            Row {
                model: "LeNet5".into(),
                variant: "static int8".into(),
                outcome: Outcome::Unavailable("not available yet".into()),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_reference_row() {
        assert_eq!(fmt_bytes(999), "999 B");
        assert_eq!(fmt_bytes(61_700), "61.7 KB");
        assert_eq!(fmt_bytes(1_200_000), "1.20 MB");
        let rows = fixtures::rows();
        assert_eq!(
            fp32_of(&rows, "LeNet5").map(|m| m.size_bytes),
            Some(248_000)
        );
        assert!(fp32_of(&rows, "LSTM").is_none());
    }
}
