//! The element-wise part of one recurrent step, in ATen's operation order for the quantized
//! cells (`aten/src/ATen/native/RNN.cpp`): the hidden-to-hidden gates are computed into `gh`
//! and the input gates `gi` are added to them (`linear_hh(h).add_(gi)`); then
//! - LSTM `[i, f, g, o]`: `c' = f·c + i·g` (two rounded products, one add), `h' = o·tanh(c')`;
//! - GRU `[r, z, n]`: `r = σ(h_r + i_r)`, `z = σ(h_z + i_z)`, `n = tanh(i_n + h_n·r)`,
//!   `h' = (h − n)·z + n`;
//! - RNN: `h' = tanh(gh + gi)` or `relu(gh + gi)`.

use crate::float::CellKind;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Updates `h` (and `c` for LSTM) in place for `b` rows of width `hd`, from the gate
/// pre-activations `gi` and `gh` (`[b, G·hd]` each; `gh` is used as scratch).
pub(crate) fn step(
    kind: CellKind,
    gi: &[f32],
    gh: &mut [f32],
    h: &mut [f32],
    c: &mut [f32],
    b: usize,
    hd: usize,
) {
    let g = kind.gates() * hd;
    for r in 0..b {
        let gir = &gi[r * g..(r + 1) * g];
        let ghr = &mut gh[r * g..(r + 1) * g];
        let hr = &mut h[r * hd..(r + 1) * hd];
        match kind {
            CellKind::Lstm => {
                ghr.iter_mut().zip(gir).for_each(|(a, &v)| *a += v);
                let cr = &mut c[r * hd..(r + 1) * hd];
                let (ig, rest) = ghr.split_at(hd);
                let (fg, rest) = rest.split_at(hd);
                let (gg, og) = rest.split_at(hd);
                for j in 0..hd {
                    let (i, f, g, o) =
                        (sigmoid(ig[j]), sigmoid(fg[j]), gg[j].tanh(), sigmoid(og[j]));
                    let cy = f * cr[j] + i * g;
                    cr[j] = cy;
                    hr[j] = o * cy.tanh();
                }
            }
            CellKind::Gru => {
                for j in 0..hd {
                    let rg = sigmoid(ghr[j] + gir[j]);
                    let zg = sigmoid(ghr[hd + j] + gir[hd + j]);
                    let ng = (gir[2 * hd + j] + ghr[2 * hd + j] * rg).tanh();
                    hr[j] = (hr[j] - ng) * zg + ng;
                }
            }
            CellKind::RnnTanh => {
                for j in 0..hd {
                    hr[j] = (ghr[j] + gir[j]).tanh();
                }
            }
            CellKind::RnnRelu => {
                for j in 0..hd {
                    hr[j] = (ghr[j] + gir[j]).max(0.0);
                }
            }
        }
    }
}
