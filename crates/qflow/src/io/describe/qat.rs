//! QAT layers and fake-quant modules (not described yet: saving one is a `Format` error).
use qnn::Module;

use super::{Args, Built, Described, Reader};

pub(super) fn describe(_m: &dyn Module, _args: &mut Args) -> Described {
    None
}

pub(super) fn build(_op: &str, _r: &Reader<'_>, _rng: &mut qnn::init::Rng) -> Built {
    None
}
