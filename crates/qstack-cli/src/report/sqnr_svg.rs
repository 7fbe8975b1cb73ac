//! A hand-written SVG bar chart (no dependencies) of the numeric suite: one bar per quantized
//! layer (a node that stores an int8 weight), its height the SQNR of the layer's int8 output
//! against the float output in dB, labelled with the value and the node name.

use std::fmt::Write;

use super::svg::escape;
use crate::layer_sqnr::LayerRow;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
/// Bars of identical outputs (`+inf` dB) are drawn at this height and labelled `inf`.
const INF_DB: f64 = 100.0;

/// The bar chart of `rows`' quantized layers (other nodes are left out), titled `title`.
pub fn sqnr_chart(rows: &[LayerRow], title: &str) -> String {
    let layers: Vec<&LayerRow> = rows.iter().filter(|r| r.is_quantized_layer()).collect();
    let value = |r: &LayerRow| {
        if r.sqnr_db.is_finite() {
            r.sqnr_db.max(0.0)
        } else if r.sqnr_db > 0.0 {
            INF_DB
        } else {
            0.0
        }
    };
    let top_db = layers.iter().map(|r| value(r)).fold(10.0, f64::max);
    let top_db = (top_db / 10.0).ceil() * 10.0;
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let sy = |db: f64| TOP + ph - db / top_db * ph;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH:.0}" height="{HEIGHT:.0}" viewBox="0 0 {WIDTH:.0} {HEIGHT:.0}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{:.1}" y="22" font-size="14" text-anchor="middle" font-weight="bold">{}</text>
"##,
        LEFT + pw / 2.0,
        escape(title)
    );
    for i in 0..=5 {
        let db = top_db * f64::from(i) / 5.0;
        let y = sy(db);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{db:.0}</text>"##,
            LEFT + pw,
            LEFT - 5.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="15" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 15 {:.1})">output SQNR (dB)</text>"##,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let slot = pw / layers.len().max(1) as f64;
    for (i, r) in layers.iter().enumerate() {
        let v = value(r);
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let (y, w) = (sy(v), slot * 0.7);
        let shown = if r.sqnr_db.is_finite() {
            format!("{:.1}", r.sqnr_db)
        } else {
            "inf".into()
        };
        let _ = writeln!(
            s,
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="#d62728"><title>{}: {shown} dB</title></rect>"##,
            TOP + ph - y,
            escape(&r.node)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{shown}</text><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"##,
            x + w / 2.0,
            y - 4.0,
            x + w / 2.0,
            TOP + ph + 18.0,
            escape(&r.node)
        );
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT:.1}" y="{TOP:.1}" width="{pw:.1}" height="{ph:.1}" fill="none" stroke="#333"/>"##
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: &str, db: f64, weight: Option<f64>) -> LayerRow {
        LayerRow {
            node: node.into(),
            sqnr_db: db,
            max_abs_error: 0.01,
            weight_sqnr_db: weight,
        }
    }

    #[test]
    fn one_bar_per_quantized_layer_with_heights_in_proportion() {
        let rows = vec![
            row("conv1", 40.0, Some(48.0)),
            row("relu1", 40.0, None),
            row("fc<3>", 20.0, Some(47.0)),
        ];
        let svg = sqnr_chart(&rows, "LeNet5 static int8");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("<title>conv1: 40.0 dB</title>"));
        assert!(svg.contains("<title>fc&lt;3&gt;: 20.0 dB</title>"));
        assert!(!svg.contains("relu1"));
        // The axis tops out at 40 dB over a 250 px plot: 250 px and 125 px bars.
        assert!(svg.contains("height=\"250.0\" fill=\"#d62728\""), "{svg}");
        assert!(svg.contains("height=\"125.0\" fill=\"#d62728\""), "{svg}");
        let inf = sqnr_chart(&[row("fc1", f64::INFINITY, Some(50.0))], "t");
        assert!(inf.contains("<title>fc1: inf dB</title>"));
        assert_eq!(sqnr_chart(&[], "t").matches("class=\"bar\"").count(), 0);
    }
}
