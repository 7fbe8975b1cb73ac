//! Fused float modules (PyTorch `torch.ao.nn.intrinsic`): Conv+ReLU, Conv+BN(+ReLU),
//! Linear+ReLU, Linear+BN and BN+ReLU, as qflow's fuse pass builds them, and the eval-mode
//! BatchNorm folding of `torch.nn.utils.fusion` ([`fuse_conv_bn_eval`], [`fuse_linear_bn_eval`]).
//!
//! A fused module is a container of the float modules it replaces: forward runs them in order,
//! backward in reverse, and the state-dict names are PyTorch's (`0.weight`, `1.running_mean`, …,
//! because PyTorch's intrinsic modules are `nn.Sequential`s). Accessors (`conv()`, `bn()`,
//! `linear()`, `relu()`) and `into_parts()` let later passes (QAT, convert) take them apart.
//!
//! ```
//! use qnn::float::{BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, ReLU};
//! use qnn::fused::{ConvBnReLU2d, fuse_conv_bn_eval};
//! use qnn::init::Rng;
//! use qnn::Module;
//!
//! let mut rng = Rng::new(0);
//! let conv = Conv2d::new(Conv2dConfig::new(3, 4, 3), &mut rng)?;
//! let bn = BatchNorm2d::new(BatchNormConfig::new(4));
//! let fused = ConvBnReLU2d::new(conv.clone(), bn.clone(), ReLU::new())?;
//! let mut names = Vec::new();
//! fused.visit_params(&mut |n, _| names.push(n.to_string()));
//! assert_eq!(names, ["0.weight", "0.bias", "1.weight", "1.bias"]);
//!
//! let (mut conv, mut bn) = (conv, bn);
//! conv.eval();
//! bn.eval();
//! let folded = fuse_conv_bn_eval(&conv, &bn)?; // one Conv2d computing conv then bn
//! assert_eq!(folded.weight.shape(), &[4, 3, 3, 3]);
//! # Ok::<(), qnn::QnnError>(())
//! ```

mod chain;
mod conv;
mod fold;
mod linear;

pub use conv::{BNReLU2d, ConvBn1d, ConvBn2d, ConvBnReLU1d, ConvBnReLU2d, ConvReLU1d, ConvReLU2d};
pub use fold::{
    BnFoldParams, fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_conv1d_bn_eval,
    fuse_linear_bn_eval, fuse_linear_bn_weights,
};
pub use linear::{LinearBn1d, LinearReLU};
