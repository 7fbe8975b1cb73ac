//! Reproducible initialization: a seedable PRNG and PyTorch's default inits.
//!
//! The random *streams* differ from PyTorch's (torch uses a Mersenne Twister); the
//! *distributions* are the same, so a model built here trains like one built in PyTorch, and a
//! given seed always gives the same weights on every platform.

mod kaiming;
mod rng;

pub use kaiming::{default_weight_and_bias, fan_in_and_fan_out, kaiming_uniform, uniform};
pub use rng::Rng;
