//! A hand-written SVG chart (no dependencies): two scatter panels, test accuracy against
//! latency at batch 64 and against file size, one labelled point per measured variant.

use std::fmt::Write;

use super::Row;

const PANEL_W: f64 = 420.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 60.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 50.0;
const GAP: f64 = 40.0;
const LEGEND_H: f64 = 20.0;

/// Colour of a variant's points.
fn colour(variant: &str) -> &'static str {
    match variant {
        "fp32" => "#1f77b4",
        "fp16" => "#ff7f0e",
        "dynamic int8" => "#2ca02c",
        "static int8" => "#d62728",
        "QAT int8" => "#9467bd",
        _ => "#555555",
    }
}

/// Escapes text for XML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `[lo, hi]` widened by 10 % on each side (and to a non-empty range).
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let span = (hi - lo).max(hi.abs() * 0.05).max(1e-9);
    (lo - 0.1 * span, hi + 0.1 * span)
}

struct Point {
    x: f64,
    y: f64,
    label: String,
    variant: String,
}

fn panel(out: &mut String, x0: f64, title: &str, x_label: &str, points: &[Point]) {
    // Latency and size axes start at 0 so that ratios read true.
    let (xl, xh) = (0.0, padded_range(points.iter().map(|p| p.x)).1);
    let (yl, yh) = padded_range(points.iter().map(|p| p.y));
    let (pw, ph) = (PANEL_W - MARGIN_L - 20.0, PANEL_H - MARGIN_T - MARGIN_B);
    let (left, top) = (x0 + MARGIN_L, MARGIN_T);
    let sx = |x: f64| left + (x - xl) / (xh - xl) * pw;
    let sy = |y: f64| top + ph - (y - yl) / (yh - yl) * ph;
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="22" font-size="14" text-anchor="middle" font-weight="bold">{}</text>"##,
        left + pw / 2.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333"/>"##
    );
    for i in 0..=4 {
        let fx = xl + (xh - xl) * f64::from(i) / 4.0;
        let fy = yl + (yh - yl) * f64::from(i) / 4.0;
        let (px, py) = (sx(fx), sy(fy));
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{top:.1}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 15.0,
            tick(fx)
        );
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + pw,
            left - 5.0,
            py + 4.0,
            tick(fy)
        );
    }
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
        left + pw / 2.0,
        top + ph + 35.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">test accuracy (%)</text>"##,
        x0 + 15.0,
        top + ph / 2.0,
        x0 + 15.0,
        top + ph / 2.0
    );
    for p in points {
        let (px, py) = (sx(p.x), sy(p.y));
        let _ = writeln!(
            out,
            r##"<circle cx="{px:.1}" cy="{py:.1}" r="5" fill="{}" fill-opacity="0.85"><title>{}</title></circle>"##,
            colour(&p.variant),
            escape(&p.label)
        );
    }
}

/// A tick value with a sensible number of decimals.
fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The chart for the measured rows of `model` (other models and unmeasured rows are left out:
/// their scales differ too much to share axes).
pub fn chart(rows: &[Row], model: &str) -> String {
    let mut lat = Vec::new();
    let mut size = Vec::new();
    for r in rows.iter().filter(|r| r.model == model) {
        if let Some(m) = r.measured() {
            let label = r.variant.clone();
            lat.push(Point {
                x: m.b64.median_s * 1e3,
                y: 100.0 * m.accuracy,
                label: label.clone(),
                variant: r.variant.clone(),
            });
            size.push(Point {
                x: m.size_bytes as f64 / 1e3,
                y: 100.0 * m.accuracy,
                label,
                variant: r.variant.clone(),
            });
        }
    }
    let width = 2.0 * PANEL_W + GAP;
    let height = PANEL_H + LEGEND_H;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"##
    );
    panel(
        &mut s,
        0.0,
        &format!("{model}: accuracy vs latency (batch 64, 1 thread)"),
        "latency at batch 64 (ms)",
        &lat,
    );
    panel(
        &mut s,
        PANEL_W + GAP,
        &format!("{model}: accuracy vs model file size"),
        "file size (KB)",
        &size,
    );
    legend(&mut s, &lat);
    s.push_str("</svg>\n");
    s
}

/// One line under the panels: a colour swatch and the variant name per point (points that
/// sit close together stay readable).
fn legend(out: &mut String, points: &[Point]) {
    let mut x = MARGIN_L;
    for p in points {
        let _ = writeln!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"##,
            PANEL_H - 4.0,
            colour(&p.variant),
            x + 16.0,
            PANEL_H + 6.0,
            escape(&p.label)
        );
        x += 30.0 + 7.0 * p.label.chars().count() as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::rows;
    use super::*;

    #[test]
    fn one_point_per_measured_row_in_each_panel() {
        let svg = chart(&rows(), "LeNet5");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 4);
        assert_eq!(svg.matches(">fp16</text>").count(), 1);
        assert_eq!(svg.matches("<title>fp16</title>").count(), 2);
        assert!(!svg.contains("static int8"));
        assert_eq!(chart(&rows(), "LSTM").matches("<circle").count(), 0);
    }

    #[test]
    fn escapes_and_ranges() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(padded_range([1.0, 3.0].into_iter()), (0.8, 3.2));
        let (lo, hi) = padded_range([5.0].into_iter());
        assert!(lo < 5.0 && hi > 5.0);
        assert_eq!(padded_range(std::iter::empty()), (0.0, 1.0));
    }
}
