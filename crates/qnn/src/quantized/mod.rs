//! Static quantized modules: int8 in, int8 out, on [`qkernels`], built with `from_float` as
//! PyTorch builds `torch.ao.nn.quantized` modules. (Being filled in.)

pub mod norm;
pub use norm::{GroupNorm, InstanceNorm2d, LayerNorm};
pub mod softmax;
pub use softmax::Softmax;
