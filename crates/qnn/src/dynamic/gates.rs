//! The element-wise part of one recurrent step, in ATen's operation order for the quantized
//! cells (`aten/src/ATen/native/RNN.cpp`): the hidden-to-hidden gates are computed into `gh`
//! and the input gates `gi` are added to them (`linear_hh(h).add_(gi)`); then
//! - LSTM `[i, f, g, o]`: `c' = f·c + i·g` (two rounded products, one add), `h' = o·tanh(c')`;
//! - GRU `[r, z, n]`: `r = σ(h_r + i_r)`, `z = σ(h_z + i_z)`, `n = tanh(i_n + h_n·r)`,
//!   `h' = (h − n)·z + n`;
//! - RNN: `h' = tanh(gh + gi)` or `relu(gh + gi)`.

use super::fast_math::{sigmoid_in_place, tanh_in_place, tanh_into};
use crate::float::CellKind;

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
                let (ifg, rest) = ghr.split_at_mut(2 * hd);
                let (gg, og) = rest.split_at_mut(hd);
                sigmoid_in_place(ifg);
                sigmoid_in_place(og);
                tanh_in_place(gg);
                let (ig, fg) = ifg.split_at(hd);
                for j in 0..hd {
                    cr[j] = fg[j] * cr[j] + ig[j] * gg[j];
                }
                tanh_into(cr, hr);
                hr.iter_mut().zip(og.iter()).for_each(|(h, &o)| *h *= o);
            }
            CellKind::Gru => {
                let (rz, hn) = ghr.split_at_mut(2 * hd);
                rz.iter_mut()
                    .zip(&gir[..2 * hd])
                    .for_each(|(a, &v)| *a += v);
                sigmoid_in_place(rz);
                let (rg, zg) = rz.split_at(hd);
                for j in 0..hd {
                    hn[j] = gir[2 * hd + j] + hn[j] * rg[j];
                }
                tanh_in_place(hn);
                for j in 0..hd {
                    hr[j] = (hr[j] - hn[j]) * zg[j] + hn[j];
                }
            }
            CellKind::RnnTanh => {
                ghr.iter_mut().zip(gir).for_each(|(a, &v)| *a += v);
                tanh_into(ghr, hr);
            }
            CellKind::RnnRelu => {
                for j in 0..hd {
                    hr[j] = (ghr[j] + gir[j]).max(0.0);
                }
            }
        }
    }
}
