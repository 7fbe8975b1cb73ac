//! Parser for the line-oriented golden format (version 1).
//!
//! ```text
//! # qstack golden v1 <topic>/<family>
//! # cases <N>
//! case <name>
//! <field> <type> <count> <hex of little-endian bytes, or '-' when count is 0>
//! <field> str <token>
//! ```
//! Types: f32, f64, i32, i64, u8, u16 (f16 bits). Floats are raw bits.

/// One typed field value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string token.
    Str(String),
    /// f32 values (raw bits preserved).
    F32(Vec<f32>),
    /// f64 values (raw bits preserved).
    F64(Vec<f64>),
    /// i32 values.
    I32(Vec<i32>),
    /// i64 values.
    I64(Vec<i64>),
    /// u8 values.
    U8(Vec<u8>),
    /// u16 values (f16 bit patterns).
    U16(Vec<u16>),
}

/// One golden case: a name and its fields in file order.
#[derive(Clone, Debug)]
pub struct Case {
    /// The unique case name.
    pub name: String,
    fields: Vec<(String, Value)>,
}

/// A parsed golden file.
#[derive(Clone, Debug)]
pub struct GoldenFile {
    /// The `# cases N` header value.
    pub declared_cases: usize,
    /// All cases in file order.
    pub cases: Vec<Case>,
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, String> {
    if hex == "-" {
        return Ok(Vec::new());
    }
    if !hex.len().is_multiple_of(2) {
        return Err(format!("odd hex length {}", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|e| format!("bad hex at {i}: {e}")))
        .collect()
}

fn chunks<const N: usize>(bytes: &[u8], count: usize) -> Result<Vec<[u8; N]>, String> {
    if bytes.len() != count * N {
        return Err(format!(
            "expected {} bytes for {count} elements, found {}",
            count * N,
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
        .collect())
}

fn parse_value(ty: &str, count: &str, hex: &str) -> Result<Value, String> {
    let count: usize = count
        .parse()
        .map_err(|e| format!("bad count {count:?}: {e}"))?;
    let bytes = decode_hex(hex)?;
    Ok(match ty {
        "f32" => Value::F32(
            chunks::<4>(&bytes, count)?
                .into_iter()
                .map(f32::from_le_bytes)
                .collect(),
        ),
        "f64" => Value::F64(
            chunks::<8>(&bytes, count)?
                .into_iter()
                .map(f64::from_le_bytes)
                .collect(),
        ),
        "i32" => Value::I32(
            chunks::<4>(&bytes, count)?
                .into_iter()
                .map(i32::from_le_bytes)
                .collect(),
        ),
        "i64" => Value::I64(
            chunks::<8>(&bytes, count)?
                .into_iter()
                .map(i64::from_le_bytes)
                .collect(),
        ),
        "u8" => Value::U8(
            chunks::<1>(&bytes, count)?
                .into_iter()
                .map(|b| b[0])
                .collect(),
        ),
        "u16" => Value::U16(
            chunks::<2>(&bytes, count)?
                .into_iter()
                .map(u16::from_le_bytes)
                .collect(),
        ),
        other => return Err(format!("unknown type {other:?}")),
    })
}

/// Parse the whole text of a golden file.
pub fn parse(text: &str) -> Result<GoldenFile, String> {
    let mut declared_cases = None;
    let mut cases: Vec<Case> = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", lineno + 1);
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(n) = comment.trim().strip_prefix("cases ") {
                declared_cases = Some(
                    n.trim()
                        .parse::<usize>()
                        .map_err(|e| at(format!("bad case count: {e}")))?,
                );
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["case", name] => {
                if cases.iter().any(|c| c.name == *name) {
                    return Err(at(format!("duplicate case {name}")));
                }
                cases.push(Case {
                    name: (*name).to_string(),
                    fields: Vec::new(),
                });
            }
            [key, "str", token] => {
                let case = cases
                    .last_mut()
                    .ok_or_else(|| at("field before first case".into()))?;
                case.fields
                    .push(((*key).to_string(), Value::Str((*token).to_string())));
            }
            [key, ty, count, hex] => {
                let value =
                    parse_value(ty, count, hex).map_err(|e| at(format!("field {key}: {e}")))?;
                let case = cases
                    .last_mut()
                    .ok_or_else(|| at("field before first case".into()))?;
                case.fields.push(((*key).to_string(), value));
            }
            _ => {
                return Err(at(format!(
                    "unrecognised line starting {:?}",
                    &line[..line.len().min(40)]
                )));
            }
        }
    }
    let declared_cases = declared_cases.ok_or("missing '# cases N' header")?;
    Ok(GoldenFile {
        declared_cases,
        cases,
    })
}

impl Case {
    fn get(&self, key: &str) -> &Value {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("case {}: missing field {key}", self.name))
    }

    fn wrong(&self, key: &str, want: &str) -> ! {
        panic!(
            "case {}: field {key} is {:?}, expected {want}",
            self.name,
            self.get(key)
        )
    }

    /// A string field.
    pub fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Value::Str(s) => s,
            _ => self.wrong(key, "str"),
        }
    }

    /// An f32 array field.
    pub fn f32s(&self, key: &str) -> &[f32] {
        match self.get(key) {
            Value::F32(v) => v,
            _ => self.wrong(key, "f32"),
        }
    }

    /// An f64 array field.
    pub fn f64s(&self, key: &str) -> &[f64] {
        match self.get(key) {
            Value::F64(v) => v,
            _ => self.wrong(key, "f64"),
        }
    }

    /// An i32 array field.
    pub fn i32s(&self, key: &str) -> &[i32] {
        match self.get(key) {
            Value::I32(v) => v,
            _ => self.wrong(key, "i32"),
        }
    }

    /// An i64 array field.
    pub fn i64s(&self, key: &str) -> &[i64] {
        match self.get(key) {
            Value::I64(v) => v,
            _ => self.wrong(key, "i64"),
        }
    }

    /// A u8 array field.
    pub fn u8s(&self, key: &str) -> &[u8] {
        match self.get(key) {
            Value::U8(v) => v,
            _ => self.wrong(key, "u8"),
        }
    }

    /// A u16 array field.
    pub fn u16s(&self, key: &str) -> &[u16] {
        match self.get(key) {
            Value::U16(v) => v,
            _ => self.wrong(key, "u16"),
        }
    }

    /// A single f64 (array of length 1).
    pub fn f64(&self, key: &str) -> f64 {
        single(&self.name, key, self.f64s(key))
    }

    /// A single f32 (array of length 1).
    pub fn f32(&self, key: &str) -> f32 {
        single(&self.name, key, self.f32s(key))
    }

    /// A single i64 (array of length 1).
    pub fn i64(&self, key: &str) -> i64 {
        single(&self.name, key, self.i64s(key))
    }

    /// A 0/1 flag stored as a single i64.
    pub fn flag(&self, key: &str) -> bool {
        match self.i64(key) {
            0 => false,
            1 => true,
            v => panic!("case {}: flag {key} is {v}", self.name),
        }
    }

    /// A shape (i64 array) as usize.
    pub fn shape(&self, key: &str) -> Vec<usize> {
        self.i64s(key)
            .iter()
            .map(|&d| {
                usize::try_from(d)
                    .unwrap_or_else(|_| panic!("case {}: negative dim {d}", self.name))
            })
            .collect()
    }
}

fn single<T: Copy + std::fmt::Debug>(case: &str, key: &str, v: &[T]) -> T {
    match v {
        [x] => *x,
        _ => panic!("case {case}: field {key} should hold one value, has {v:?}"),
    }
}
