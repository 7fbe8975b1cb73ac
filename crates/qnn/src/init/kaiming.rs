//! PyTorch's default initializations for weighted layers.

use qtensor::Tensor;

use super::rng::Rng;

/// `(fan_in, fan_out)` of a weight shaped `[out, in, k...]` as PyTorch's
/// `_calculate_fan_in_and_fan_out`: `in * prod(k)` and `out * prod(k)`. A 1-d shape gives `(n, n)`.
pub fn fan_in_and_fan_out(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (*n, *n),
        [out, inp, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            (inp * receptive, out * receptive)
        }
    }
}

/// `torch.nn.init.kaiming_uniform_(w, a, mode='fan_in', nonlinearity='leaky_relu')`:
/// uniform in `[-bound, bound]` with `bound = sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in)`.
pub fn kaiming_uniform(shape: &[usize], a: f32, rng: &mut Rng) -> Tensor<f32> {
    let (fan_in, _) = fan_in_and_fan_out(shape);
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    let bound = 3.0f32.sqrt() * gain / (fan_in.max(1) as f32).sqrt();
    uniform(shape, -bound, bound, rng)
}

/// A tensor of uniform values in `[low, high)`.
pub fn uniform(shape: &[usize], low: f32, high: f32, rng: &mut Rng) -> Tensor<f32> {
    let mut t = Tensor::zeros(shape);
    rng.fill_uniform(t.data_mut(), low, high);
    t
}

/// The default weight and bias of `nn.Linear` / `nn.Conv*` (`reset_parameters`): weight by
/// [`kaiming_uniform`] with `a = sqrt(5)` (so `bound = 1 / sqrt(fan_in)`), bias uniform in
/// `[-1/sqrt(fan_in), 1/sqrt(fan_in)]`. The weight is drawn first, then the bias.
pub fn default_weight_and_bias(
    weight_shape: &[usize],
    bias_len: Option<usize>,
    rng: &mut Rng,
) -> (Tensor<f32>, Option<Tensor<f32>>) {
    let weight = kaiming_uniform(weight_shape, 5.0f32.sqrt(), rng);
    let (fan_in, _) = fan_in_and_fan_out(weight_shape);
    let bias = bias_len.map(|n| {
        let bound = if fan_in > 0 {
            1.0 / (fan_in as f32).sqrt()
        } else {
            0.0
        };
        uniform(&[n], -bound, bound, rng)
    });
    (weight, bias)
}
