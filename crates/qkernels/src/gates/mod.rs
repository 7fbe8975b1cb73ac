//! # Recurrent-cell gate math on f32 slices
//!
//! The element-wise part of one recurrent step in ATen's operation order for the quantized
//! cells (`aten/src/ATen/native/RNN.cpp`), given the input gates `gi` and the hidden gates
//! `gh` (`[b, G·hd]` each, PyTorch's gate order):
//! - LSTM `[i, f, g, o]`: `i = σ(gh_i + gi_i)` (likewise `f`, `o`), `g = tanh(gh_g + gi_g)`,
//!   `c' = f·c + i·g` (two rounded products, one add), `h' = tanh(c')·o`;
//! - GRU `[r, z, n]`: `r = σ(gh_r + gi_r)`, `z = σ(gh_z + gi_z)`, `n = tanh(gi_n + gh_n·r)`,
//!   `h' = (h − n)·z + n`;
//! - RNN: `h' = tanh(gh + gi)` or `max(gh + gi, 0)`.
//!
//! `σ` and `tanh` are branch-free polynomial forms within about 1.5 ulp of the exact functions
//! (`math.rs`). Each cell's gates are computed in one fused pass per row. On x86-64 with the
//! `avx2` dispatch level (see [`crate::isa`], capped by `QSTACK_ISA`) the same code runs
//! compiled for AVX2 + FMA, 8 lanes at a time; no operation is fused or reordered, so every
//! level gives identical bits.
//!
//! ```
//! use qkernels::gates::{self, GateKind};
//! // one LSTM row, hidden size 1: gates [i, f, g, o] all zero → c' = 0.5·c, h' = tanh(c')/2
//! let (gi, gh) = ([0.0f32; 4], [0.0f32; 4]);
//! let (mut h, mut c) = ([0.0f32], [2.0f32]);
//! gates::step(GateKind::Lstm, &gi, &gh, &mut h, &mut c, 1, 1)?;
//! assert_eq!(c[0], 1.0);
//! assert!((h[0] - 1.0f32.tanh() / 2.0).abs() < 1e-6);
//! # Ok::<(), qkernels::GemmError>(())
//! ```

mod math;

use crate::error::{GemmError, Result};
#[cfg(target_arch = "x86_64")]
use crate::isa::{self, Isa};
use math::{sigmoid, tanh};

/// The recurrent cell whose gates are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateKind {
    /// LSTM, 4 gates `[i, f, g, o]`, with a cell state.
    Lstm,
    /// GRU, 3 gates `[r, z, n]`.
    Gru,
    /// Elman RNN with tanh, 1 gate.
    RnnTanh,
    /// Elman RNN with ReLU, 1 gate.
    RnnRelu,
}

impl GateKind {
    /// Gates per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            GateKind::Lstm => 4,
            GateKind::Gru => 3,
            GateKind::RnnTanh | GateKind::RnnRelu => 1,
        }
    }
}

fn check(what: &'static str, len: usize, needed: usize) -> Result<()> {
    if len < needed {
        return Err(GemmError::BufferTooSmall {
            what,
            needed,
            got: len,
        });
    }
    Ok(())
}

/// Updates `h` (and `c` for LSTM) in place for `b` rows of width `hd` from the gate
/// pre-activations `gi` and `gh` (`[b, G·hd]` each), with the formulas of the module docs.
///
/// Errors: a slice shorter than its shape (`c` is only read for LSTM).
pub fn step(
    kind: GateKind,
    gi: &[f32],
    gh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    b: usize,
    hd: usize,
) -> Result<()> {
    let g = kind.gates() * hd;
    check("input gates", gi.len(), b * g)?;
    check("hidden gates", gh.len(), b * g)?;
    check("hidden state", h.len(), b * hd)?;
    if kind == GateKind::Lstm {
        check("cell state", c.len(), b * hd)?;
    }
    #[cfg(target_arch = "x86_64")]
    if Isa::Avx2.is_at_most(isa::detect()) && Isa::Avx2.is_supported() {
        // SAFETY: AVX2 and FMA were detected (`Isa::Avx2.is_supported()`), the only
        // precondition of the `#[target_feature]` copy; lengths were checked above.
        unsafe { step_avx2(kind, gi, gh, h, c, b, hd) };
        return Ok(());
    }
    step_body(kind, gi, gh, h, c, b, hd);
    Ok(())
}

/// [`step_body`] compiled for AVX2 + FMA.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn step_avx2(
    kind: GateKind,
    gi: &[f32],
    gh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    b: usize,
    hd: usize,
) {
    step_body(kind, gi, gh, h, c, b, hd);
}

/// The gate math (lengths checked by [`step`]).
#[inline(always)]
fn step_body(
    kind: GateKind,
    gi: &[f32],
    gh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    b: usize,
    hd: usize,
) {
    let g = kind.gates() * hd;
    for r in 0..b {
        let gir = &gi[r * g..(r + 1) * g];
        let ghr = &gh[r * g..(r + 1) * g];
        let hr = &mut h[r * hd..(r + 1) * hd];
        match kind {
            GateKind::Lstm => {
                let cr = &mut c[r * hd..(r + 1) * hd];
                let (gi_i, gi_f, gi_g, gi_o) = four(gir, hd);
                let (gh_i, gh_f, gh_g, gh_o) = four(ghr, hd);
                for j in 0..hd {
                    let i = sigmoid(gh_i[j] + gi_i[j]);
                    let f = sigmoid(gh_f[j] + gi_f[j]);
                    let gg = tanh(gh_g[j] + gi_g[j]);
                    let o = sigmoid(gh_o[j] + gi_o[j]);
                    let cn = f * cr[j] + i * gg;
                    cr[j] = cn;
                    hr[j] = tanh(cn) * o;
                }
            }
            GateKind::Gru => {
                let (gi_r, gi_z, gi_n, _) = four(gir, hd);
                let (gh_r, gh_z, gh_n, _) = four(ghr, hd);
                for j in 0..hd {
                    let rg = sigmoid(gh_r[j] + gi_r[j]);
                    let zg = sigmoid(gh_z[j] + gi_z[j]);
                    let n = tanh(gi_n[j] + gh_n[j] * rg);
                    hr[j] = (hr[j] - n) * zg + n;
                }
            }
            GateKind::RnnTanh => {
                for j in 0..hd {
                    hr[j] = tanh(ghr[j] + gir[j]);
                }
            }
            GateKind::RnnRelu => {
                for j in 0..hd {
                    hr[j] = (ghr[j] + gir[j]).max(0.0);
                }
            }
        }
    }
}

/// The first up-to-four `hd`-wide gate blocks of one row (missing ones are empty).
#[inline(always)]
fn four(row: &[f32], hd: usize) -> (&[f32], &[f32], &[f32], &[f32]) {
    let part = |t: usize| row.get(t * hd..(t + 1) * hd).unwrap_or(&[]);
    (part(0), part(1), part(2), part(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused pass equals the gate formulas written out per element with the same
    /// functions, for every kind and on whichever level this process dispatches to.
    #[test]
    fn fused_pass_equals_the_formulas() {
        let (b, hd) = (3, 13);
        for kind in [
            GateKind::Lstm,
            GateKind::Gru,
            GateKind::RnnTanh,
            GateKind::RnnRelu,
        ] {
            let g = kind.gates() * hd;
            let gi: Vec<f32> = (0..b * g)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.11)
                .collect();
            let gh: Vec<f32> = (0..b * g)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.07)
                .collect();
            let h0: Vec<f32> = (0..b * hd)
                .map(|i| ((i * 11 % 17) as f32 - 8.0) * 0.1)
                .collect();
            let c0: Vec<f32> = (0..b * hd)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.2)
                .collect();
            let (mut h, mut c) = (h0.clone(), c0.clone());
            step(kind, &gi, &gh, &mut h, &mut c, b, hd).unwrap();
            for r in 0..b {
                for j in 0..hd {
                    let at = |t: usize| r * g + t * hd + j;
                    let s = |t: usize| gh[at(t)] + gi[at(t)];
                    let (hv, cv) = (h0[r * hd + j], c0[r * hd + j]);
                    let (want_h, want_c) = match kind {
                        GateKind::Lstm => {
                            let cn = sigmoid(s(1)) * cv + sigmoid(s(0)) * tanh(s(2));
                            (tanh(cn) * sigmoid(s(3)), cn)
                        }
                        GateKind::Gru => {
                            let n = tanh(gi[at(2)] + gh[at(2)] * sigmoid(s(0)));
                            ((hv - n) * sigmoid(s(1)) + n, cv)
                        }
                        GateKind::RnnTanh => (tanh(s(0)), cv),
                        GateKind::RnnRelu => (s(0).max(0.0), cv),
                    };
                    assert_eq!(h[r * hd + j].to_bits(), want_h.to_bits(), "{kind:?} h");
                    assert_eq!(c[r * hd + j].to_bits(), want_c.to_bits(), "{kind:?} c");
                }
            }
        }
    }

    #[test]
    fn short_buffers_are_errors() {
        let z = [0.0f32; 8];
        let (mut h, mut c) = ([0.0f32; 2], [0.0f32; 1]);
        let e = step(GateKind::Lstm, &z, &z, &mut h, &mut c, 1, 2).unwrap_err();
        assert!(matches!(
            e,
            GemmError::BufferTooSmall {
                what: "cell state",
                needed: 2,
                got: 1
            }
        ));
        let e = step(GateKind::Gru, &z[..5], &z, &mut h, &mut c, 1, 2).unwrap_err();
        assert!(matches!(
            e,
            GemmError::BufferTooSmall {
                what: "input gates",
                ..
            }
        ));
        step(GateKind::Gru, &z[..6], &z[..6], &mut h, &mut [], 1, 2).unwrap();
    }
}
