//! Benchmark result lines: one flat JSON object per line, e.g.
//! `{"op":"quantize","n":1048576,"threads":1,"ns":412345}`. Every field except `ns` identifies
//! the measurement (so later suites may add fields such as `m`, `k`); `ns` is the median time.

use crate::Result;

/// A JSON scalar value of a result line.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string (`"quantize"`).
    Str(String),
    /// A number, kept as its source text so integers print unchanged.
    Num(String),
}

impl Value {
    /// The value as a number, when it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Num(text) => text.parse().ok(),
            Value::Str(_) => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Str(s) | Value::Num(s) => f.write_str(s),
        }
    }
}

/// One measurement: the identifying fields in their order, and the median nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Every field but `ns`, in source order.
    pub key: Vec<(String, Value)>,
    /// The median time of one call, in nanoseconds.
    pub ns: f64,
}

impl Record {
    /// The value of an identifying field.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.key.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Parses every line that starts with `{` (other lines are logs and are skipped, and so are
/// objects without an `ns` field, such as a peak-throughput note).
pub fn parse_records(text: &str) -> Result<Vec<Record>> {
    let mut records = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| l.starts_with('{')) {
        let record = parse_record(line).map_err(|e| format!("bad result line {line:?}: {e}"))?;
        records.extend(record);
    }
    Ok(records)
}

/// `Ok(None)` for a well-formed object without `ns`.
fn parse_record(line: &str) -> Result<Option<Record>> {
    let fields = Parser { rest: line }.object()?;
    let mut ns = None;
    let mut key = Vec::new();
    for (name, value) in fields {
        if name == "ns" {
            ns = Some(value.as_f64().ok_or("`ns` is not a number")?);
        } else {
            key.push((name, value));
        }
    }
    Ok(ns.map(|ns| Record { key, ns }))
}

struct Parser<'a> {
    rest: &'a str,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> Result {
        self.skip_ws();
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                Ok(())
            }
            None => Err(format!("expected {c:?} at {:?}", self.rest)),
        }
    }

    fn object(&mut self) -> Result<Vec<(String, Value)>> {
        self.eat('{')?;
        let mut fields = Vec::new();
        self.skip_ws();
        if self.eat('}').is_ok() {
            return self.end(fields);
        }
        loop {
            let name = self.string()?;
            self.eat(':')?;
            let value = self.value()?;
            fields.push((name, value));
            self.skip_ws();
            if self.eat(',').is_err() {
                self.eat('}')?;
                return self.end(fields);
            }
        }
    }

    fn end(&mut self, fields: Vec<(String, Value)>) -> Result<Vec<(String, Value)>> {
        self.skip_ws();
        if self.rest.is_empty() {
            Ok(fields)
        } else {
            Err(format!("trailing text {:?}", self.rest))
        }
    }

    fn value(&mut self) -> Result<Value> {
        self.skip_ws();
        if self.rest.starts_with('"') {
            return self.string().map(Value::Str);
        }
        let len = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(self.rest.len());
        let (text, rest) = self.rest.split_at(len);
        if text.parse::<f64>().is_err() {
            return Err(format!("expected a string or number at {:?}", self.rest));
        }
        self.rest = rest;
        Ok(Value::Num(text.to_string()))
    }

    fn string(&mut self) -> Result<String> {
        self.eat('"')?;
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e @ ('"' | '\\' | '/'))) => out.push(e),
                    other => return Err(format!("unsupported escape {other:?}")),
                },
                c => out.push(c),
            }
        }
        Err("unterminated string".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_result_lines_and_skips_logs() {
        let text = "torch 2.15.0\n{\"op\":\"quantize\",\"n\":1048576,\"threads\":1,\"ns\":412345.5}\n\
                    { \"op\" : \"dequantize\" , \"n\" : 16 , \"threads\" : 2 , \"ns\" : 1e3 }\n";
        let records = parse_records(text).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].get("op"), Some(&Value::Str("quantize".into())));
        assert_eq!(records[0].get("n").unwrap().to_string(), "1048576");
        assert_eq!(records[0].ns, 412345.5);
        assert_eq!(records[1].ns, 1000.0);
        assert_eq!(records[1].key.len(), 3);
    }

    #[test]
    fn malformed_lines_are_errors_and_lines_without_ns_are_skipped() {
        assert_eq!(
            parse_records("{\"mode\":\"peak\",\"gops\":4.5}").unwrap(),
            []
        );
        assert!(
            parse_records("{\"ns\":\"fast\"}")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_records("{\"ns\":1} x")
                .unwrap_err()
                .contains("trailing")
        );
        assert!(parse_records("{\"ns\":[1]}").is_err());
        assert!(parse_records("{\"a\\u0041\":1,\"ns\":1}").is_err());
    }
}
