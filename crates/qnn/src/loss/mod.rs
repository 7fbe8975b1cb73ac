//! Losses: mean cross-entropy from logits and mean squared error, each with its gradient.

mod cross_entropy;
mod mse;

pub use cross_entropy::CrossEntropyLoss;
pub use mse::MseLoss;
