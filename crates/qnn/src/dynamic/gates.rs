//! The element-wise part of one recurrent step: ATen's operation order for the quantized
//! cells, computed by [`qkernels::gates`] (one fused pass per row, AVX2 where available, the
//! same bits on every level): `gi + gh` per gate, then
//! - LSTM `[i, f, g, o]`: `c' = f·c + i·g` (two rounded products, one add), `h' = tanh(c')·o`;
//! - GRU `[r, z, n]`: `n = tanh(i_n + h_n·r)`, `h' = (h − n)·z + n`;
//! - RNN: `h' = tanh(gh + gi)` or `relu(gh + gi)`.

use qkernels::gates::{self, GateKind};

use crate::error::Result;
use crate::float::CellKind;

/// Updates `h` (and `c` for LSTM) in place for `b` rows of width `hd`, from the gate
/// pre-activations `gi` and `gh` (`[b, G·hd]` each).
pub(crate) fn step(
    kind: CellKind,
    gi: &[f32],
    gh: &[f32],
    h: &mut [f32],
    c: &mut [f32],
    b: usize,
    hd: usize,
) -> Result<()> {
    let kind = match kind {
        CellKind::Lstm => GateKind::Lstm,
        CellKind::Gru => GateKind::Gru,
        CellKind::RnnTanh => GateKind::RnnTanh,
        CellKind::RnnRelu => GateKind::RnnRelu,
    };
    gates::step(kind, gi, gh, h, c, b, hd)?;
    Ok(())
}
