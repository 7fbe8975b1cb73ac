//! safetensors state-dict import: arbitrary bytes are parsed and, when they parse, loaded into
//! a small model (strict and non-strict). Every failure must be a typed `QnnError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qnn::float::{
    BatchNorm2d, BatchNormConfig, Conv2d, Conv2dConfig, Flatten, Linear, ReLU, Sequential,
};
use qnn::init::Rng;
use qnn::state_dict::{from_safetensors, load_state_dict, to_safetensors};

fuzz_target!(|data: &[u8]| {
    let Ok(dict) = from_safetensors(data) else {
        return;
    };
    // What parsed must serialize again.
    let _ = to_safetensors(&dict);
    let mut rng = Rng::new(0);
    let Ok(conv) = Conv2d::new(Conv2dConfig::new(1, 2, 3), &mut rng) else {
        return;
    };
    let bn = BatchNorm2d::new(BatchNormConfig::new(2));
    let mut model = Sequential::new()
        .push(conv)
        .push(bn)
        .push(ReLU::new())
        .push(Flatten::default())
        .push(Linear::new(8, 3, true, &mut rng));
    let _ = load_state_dict(&mut model, &dict, false);
    let _ = load_state_dict(&mut model, &dict, true);
});
