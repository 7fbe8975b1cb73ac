//! The comparison table of `bench-vs-torch`: PyTorch and qstack medians side by side.

use crate::bench_json::Record;

/// The last column: an amount of work per measurement (bytes moved, operations) divided by its
/// time, shown as `<amount>/ns`, i.e. giga-units per second.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    /// The column's unit (`GB/s`, `GOP/s`).
    pub unit: &'static str,
    /// The work one measurement does, from its fields (`None` leaves the cell empty).
    pub amount: fn(&Record) -> Option<f64>,
}

/// A Markdown table: one row per PyTorch measurement and matching qstack measurement, matched
/// on the values in `key_names` (other fields, such as `repeats`, are ignored); a key field the
/// PyTorch line lacks (such as `impl`, naming one of several qstack code paths) matches any
/// value, so each qstack variant gets its own row against the same PyTorch time. `ratio` is
/// torch/qstack (above 1 means qstack is faster), the throughput column is qstack's. qstack rows
/// without a PyTorch counterpart are appended with empty torch cells.
pub fn markdown(
    torch: &[Record],
    qstack: &[Record],
    key_names: &[&str],
    throughput: Throughput,
) -> String {
    if torch.is_empty() && qstack.is_empty() {
        return "(no measurements)\n".to_string();
    }
    let same = |t: &Record, q: &Record| {
        key_names
            .iter()
            .all(|k| t.get(k).is_none() || t.get(k) == q.get(k))
    };
    let rate_header = format!("qstack {}", throughput.unit);
    let mut header: Vec<&str> = key_names.to_vec();
    header.extend([
        "torch ns",
        "qstack ns",
        "ratio (torch/qstack)",
        rate_header.as_str(),
    ]);
    let mut out = format!("| {} |\n", header.join(" | "));
    let align: Vec<&str> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 { "---" } else { "---:" })
        .collect();
    out += &format!("| {} |\n", align.join(" | "));
    let cells = |r: &Record| -> Vec<String> {
        key_names
            .iter()
            .map(|k| r.get(k).map(|v| v.to_string()).unwrap_or_default())
            .collect()
    };
    let rate = |r: &Record| {
        (throughput.amount)(r)
            .filter(|_| r.ns > 0.0)
            .map(|b| format!("{:.2}", b / r.ns))
            .unwrap_or_default()
    };
    for t in torch {
        let matches: Vec<&Record> = qstack.iter().filter(|q| same(t, q)).collect();
        if matches.is_empty() {
            let mut row = cells(t);
            row.push(format!("{:.0}", t.ns));
            row.extend([String::new(), String::new(), String::new()]);
            out += &format!("| {} |\n", row.join(" | "));
        }
        for q in matches {
            let mut row = cells(q);
            row.push(format!("{:.0}", t.ns));
            row.push(format!("{:.0}", q.ns));
            row.push(if q.ns > 0.0 {
                format!("{:.2}", t.ns / q.ns)
            } else {
                String::new()
            });
            row.push(rate(q));
            out += &format!("| {} |\n", row.join(" | "));
        }
    }
    for q in qstack.iter().filter(|q| !torch.iter().any(|t| same(t, q))) {
        let mut row = cells(q);
        row.extend([
            String::new(),
            format!("{:.0}", q.ns),
            String::new(),
            rate(q),
        ]);
        out += &format!("| {} |\n", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_json::parse_records;

    const KEY: &[&str] = &["op", "n", "threads"];

    const FIVE_BYTES_PER_ELEMENT: Throughput = Throughput {
        unit: "GB/s",
        amount: |r| r.get("n")?.as_f64().map(|n| 5.0 * n),
    };

    #[test]
    fn rows_match_by_key_with_ratio_and_bandwidth() {
        let torch = parse_records(
            "{\"op\":\"quantize\",\"n\":1000,\"threads\":1,\"ns\":3000,\"repeats\":15}\n\
             {\"op\":\"dequantize\",\"n\":1000,\"threads\":1,\"ns\":800}",
        )
        .unwrap();
        let qstack = parse_records(
            "{\"op\":\"dequantize\",\"n\":1000,\"threads\":1,\"ns\":1000}\n\
             {\"op\":\"quantize\",\"n\":1000,\"threads\":1,\"ns\":1000}\n\
             {\"op\":\"quantize\",\"n\":1000,\"threads\":2,\"ns\":500}",
        )
        .unwrap();
        let table = markdown(&torch, &qstack, KEY, FIVE_BYTES_PER_ELEMENT);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "| op | n | threads | torch ns | qstack ns | ratio (torch/qstack) | qstack GB/s |"
        );
        assert_eq!(
            lines[2],
            "| quantize | 1000 | 1 | 3000 | 1000 | 3.00 | 5.00 |"
        );
        assert_eq!(
            lines[3],
            "| dequantize | 1000 | 1 | 800 | 1000 | 0.80 | 5.00 |"
        );
        assert_eq!(lines[4], "| quantize | 1000 | 2 |  | 500 |  | 10.00 |");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn a_key_field_torch_lacks_gives_one_row_per_qstack_variant() {
        let torch =
            parse_records("{\"op\":\"quantize\",\"n\":10,\"threads\":1,\"ns\":300}").unwrap();
        let qstack = parse_records(
            "{\"op\":\"quantize\",\"n\":10,\"threads\":1,\"impl\":\"a\",\"ns\":100}\n\
             {\"op\":\"quantize\",\"n\":10,\"threads\":1,\"impl\":\"b\",\"ns\":150}\n\
             {\"op\":\"quantize\",\"n\":10,\"threads\":2,\"impl\":\"a\",\"ns\":50}",
        )
        .unwrap();
        let keys = ["op", "n", "threads", "impl"];
        let table = markdown(&torch, &qstack, &keys, FIVE_BYTES_PER_ELEMENT);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| quantize | 10 | 1 | a | 300 | 100 | 3.00 | 0.50 |"
        );
        assert_eq!(
            lines[3],
            "| quantize | 10 | 1 | b | 300 | 150 | 2.00 | 0.33 |"
        );
        assert_eq!(lines[4], "| quantize | 10 | 2 | a |  | 50 |  | 1.00 |");
        assert_eq!(lines.len(), 5);
    }

    #[test]
    fn empty_input_says_so() {
        assert_eq!(
            markdown(&[], &[], KEY, FIVE_BYTES_PER_ELEMENT),
            "(no measurements)\n"
        );
    }
}
