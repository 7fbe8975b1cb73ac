//! Bit-exact comparison helpers that collect readable failure reports.

use super::format::Case;
use std::fmt::Debug;

/// True when two f32 values are the same bits, or both are NaN (payloads may differ).
pub fn same_f32(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// True when two f64 values are the same bits, or both are NaN.
pub fn same_f64(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

/// True when two f16 bit patterns are equal, or both are NaN.
pub fn same_f16_bits(a: u16, b: u16) -> bool {
    let nan = |h: u16| (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
    (nan(a) && nan(b)) || a == b
}

/// Formats an f32 with its bit pattern.
pub fn show_f32(v: f32) -> String {
    format!("{v:e} (0x{:08x})", v.to_bits())
}

/// Formats an f64 with its bit pattern.
pub fn show_f64(v: f64) -> String {
    format!("{v:e} (0x{:016x})", v.to_bits())
}

/// A value compared by the golden tests: bit equality (NaN matches NaN) and a display form.
pub trait GoldenValue {
    /// Equal for the purpose of the golden comparison.
    fn same(&self, other: &Self) -> bool;
    /// Human-readable form including the bits.
    fn show(&self) -> String;
}

impl GoldenValue for f32 {
    fn same(&self, other: &Self) -> bool {
        same_f32(*self, *other)
    }
    fn show(&self) -> String {
        show_f32(*self)
    }
}

impl GoldenValue for f64 {
    fn same(&self, other: &Self) -> bool {
        same_f64(*self, *other)
    }
    fn show(&self) -> String {
        show_f64(*self)
    }
}

impl GoldenValue for i64 {
    fn same(&self, other: &Self) -> bool {
        self == other
    }
    fn show(&self) -> String {
        self.to_string()
    }
}

/// An f16 bit pattern.
#[derive(Clone, Copy, Debug)]
pub struct F16Bits(pub u16);

impl GoldenValue for F16Bits {
    fn same(&self, other: &Self) -> bool {
        same_f16_bits(self.0, other.0)
    }
    fn show(&self) -> String {
        format!("{} (f16 0x{:04x})", half::f16::from_bits(self.0), self.0)
    }
}

/// Collects mismatches over a whole golden family and reports them at the end.
pub struct Failures {
    family: &'static str,
    cases: usize,
    values: usize,
    messages: Vec<String>,
}

const MAX_REPORTED: usize = 25;

impl Failures {
    /// Start collecting for `family`.
    pub fn new(family: &'static str) -> Self {
        Failures {
            family,
            cases: 0,
            values: 0,
            messages: Vec::new(),
        }
    }

    /// Count one checked case.
    pub fn case_checked(&mut self) {
        self.cases += 1;
    }

    /// Record a free-form failure for `case`.
    pub fn fail(&mut self, case: &Case, msg: impl AsRef<str>) {
        self.messages
            .push(format!("case {}: {}", case.name, msg.as_ref()));
    }

    /// Unwrap an API result, recording the error as a failure.
    pub fn ok<T, E: Debug>(&mut self, case: &Case, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(
                    case,
                    format!("{what}: torch accepted this input but we returned Err({e:?})"),
                );
                None
            }
        }
    }

    /// Compare two values with `==`.
    pub fn eq<T: PartialEq + Debug>(&mut self, case: &Case, what: &str, expected: T, got: T) {
        self.values += 1;
        if expected != got {
            self.fail(case, format!("{what}: expected {expected:?}, got {got:?}"));
        }
    }

    fn report<T: GoldenValue>(
        &mut self,
        case: &Case,
        what: &str,
        expected: &[T],
        got: &[T],
        input: &dyn Fn(usize) -> String,
    ) {
        self.values += expected.len();
        if expected.len() != got.len() {
            self.fail(
                case,
                format!(
                    "{what}: expected {} values, got {}",
                    expected.len(),
                    got.len()
                ),
            );
            return;
        }
        let bad: Vec<usize> = (0..expected.len())
            .filter(|&i| !expected[i].same(&got[i]))
            .collect();
        if let Some(&i) = bad.first() {
            self.fail(
                case,
                format!(
                    "{what}: {} of {} values differ; first at [{i}]: expected {} got {}; input {}",
                    bad.len(),
                    expected.len(),
                    expected[i].show(),
                    got[i].show(),
                    input(i)
                ),
            );
        }
    }

    /// Compare f32 slices bit for bit (NaN matches NaN).
    pub fn f32s(
        &mut self,
        case: &Case,
        what: &str,
        expected: &[f32],
        got: &[f32],
        input: &dyn Fn(usize) -> String,
    ) {
        self.report(case, what, expected, got, input);
    }

    /// Compare f64 slices bit for bit (NaN matches NaN).
    pub fn f64s(
        &mut self,
        case: &Case,
        what: &str,
        expected: &[f64],
        got: &[f64],
        input: &dyn Fn(usize) -> String,
    ) {
        self.report(case, what, expected, got, input);
    }

    /// Compare f16 values by bits (NaN matches NaN).
    pub fn f16s(
        &mut self,
        case: &Case,
        what: &str,
        expected: &[u16],
        got: &[half::f16],
        input: &dyn Fn(usize) -> String,
    ) {
        let expected: Vec<F16Bits> = expected.iter().map(|&b| F16Bits(b)).collect();
        let got: Vec<F16Bits> = got.iter().map(|h| F16Bits(h.to_bits())).collect();
        self.report(case, what, &expected, &got, input);
    }

    /// Compare integer slices (any integer type widened to i64).
    pub fn ints<T: Copy + Into<i64>>(
        &mut self,
        case: &Case,
        what: &str,
        expected: &[i64],
        got: &[T],
        input: &dyn Fn(usize) -> String,
    ) {
        let got: Vec<i64> = got.iter().map(|&v| v.into()).collect();
        self.report(case, what, expected, &got, input);
    }

    /// Panic with a report when anything failed; also fail an empty family.
    pub fn finish(self) {
        eprintln!(
            "golden {}: {} cases, {} values checked",
            self.family, self.cases, self.values
        );
        assert!(
            self.cases > 0,
            "golden {}: no cases were checked",
            self.family
        );
        if !self.messages.is_empty() {
            let shown: Vec<&str> = self
                .messages
                .iter()
                .take(MAX_REPORTED)
                .map(String::as_str)
                .collect();
            panic!(
                "golden {}: {} mismatch report(s) over {} cases (first {} shown):\n  {}",
                self.family,
                self.messages.len(),
                self.cases,
                shown.len(),
                shown.join("\n  ")
            );
        }
    }
}

/// Describe input element `i` of an f32 slice.
pub fn input_f32(x: &[f32]) -> impl Fn(usize) -> String + '_ {
    move |i| match x.get(i) {
        Some(v) => format!("x[{i}] = {}", show_f32(*v)),
        None => format!("index {i}"),
    }
}
