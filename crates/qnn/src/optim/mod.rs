//! Optimizers with PyTorch's update formulas; state is kept per parameter name.

mod adam;
mod sgd;

pub use adam::{Adam, AdamConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::error::Result;
use crate::module::Module;

/// Updates a module's parameters from their accumulated gradients.
pub trait Optimizer {
    /// One update of every parameter of `model` (gradients are not reset; call `zero_grad`).
    fn step(&mut self, model: &mut dyn Module) -> Result<()>;
    /// The learning rate.
    fn lr(&self) -> f32;
    /// Sets the learning rate (for schedules).
    fn set_lr(&mut self, lr: f32);
}
