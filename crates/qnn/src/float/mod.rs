//! Float (f32) layers with forward and backward, named and laid out as PyTorch's `torch.nn`.

mod activation;
mod attention;
mod batchnorm;
mod conv1d;
mod conv2d;
mod conv_core;
mod conv_layer;
mod conv_transpose2d;
mod dense;
mod dropout;
mod embedding;
mod groupnorm;
mod half_weight;
mod im2col;
mod instancenorm;
mod layernorm;
mod linear;
mod pool;
mod rnn;
mod sequential;
mod shape;
mod softmax;
mod transformer;
pub(crate) mod util;

pub use activation::{
    Activation, Elu, EluFn, Gelu, GeluFn, Hardsigmoid, HardsigmoidFn, Hardswish, HardswishFn,
    LeakyReLU, LeakyReluFn, Pointwise, ReLU, ReLU6, Relu6Fn, ReluFn, SiLU, Sigmoid, SigmoidFn,
    SiluFn, Tanh, TanhFn,
};
pub use attention::MultiheadAttention;
pub use batchnorm::{BatchNorm1d, BatchNorm2d, BatchNormConfig};
pub use conv_transpose2d::{ConvTranspose2d, ConvTranspose2dConfig};
pub use conv1d::{Conv1d, Conv1dConfig};
pub use conv2d::{Conv2d, Conv2dConfig};
pub use dropout::Dropout;
pub use embedding::{BagMode, Embedding, EmbeddingBag};
pub use groupnorm::GroupNorm;
pub use instancenorm::InstanceNorm2d;
pub use layernorm::LayerNorm;
pub use linear::Linear;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use rnn::{CellKind, CellParams, GRUCell, Gru, LSTMCell, Lstm, RNNCell, RecurrentConfig, Rnn};
pub(crate) use rnn::{SequenceCall, cell_torch_args, swap01};
pub use sequential::Sequential;
pub use shape::{Flatten, Identity};
pub use softmax::{LogSoftmax, Softmax};
pub use transformer::{TransformerEncoderConfig, TransformerEncoderLayer};
