//! Recurrent layers: RNN/LSTM/GRU cells and multi-layer, bidirectional sequence modules.

mod cell_math;
mod cells;
mod params;
mod recurrent;
mod sequence_call;

pub use cell_math::CellKind;
pub(crate) use cell_math::cell_torch_args;
pub use cells::{GRUCell, LSTMCell, RNNCell};
pub use params::CellParams;
pub use recurrent::{Gru, Lstm, RecurrentConfig, Rnn};
pub(crate) use sequence_call::{SequenceCall, swap01};
