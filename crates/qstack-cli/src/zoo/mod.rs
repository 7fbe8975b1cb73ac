//! The model zoo: LeNet5, the row LSTM and the patch Transformer, each with the input layout
//! it wants.

mod lenet5;
mod patch_transformer;
mod patch_transformer_dynamic;
mod row_lstm;
mod row_lstm_dynamic;

pub use lenet5::{LENET5_NODES, lenet5};
pub use patch_transformer::{PatchTransformer, PatchTransformerConfig};
pub use patch_transformer_dynamic::DynamicPatchTransformer;
pub use row_lstm::RowLstm;
pub use row_lstm_dynamic::DynamicRowLstm;

use qnn::Module;
use qnn::init::Rng;

use crate::data::{InputLayout, NUM_CLASSES};

/// Which architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Arch {
    /// LeNet5 on 32×32 padded images.
    Lenet5,
    /// LSTM 28→128 over the 28 rows of an image, Linear 128→10.
    Lstm,
    /// One Transformer encoder layer (d 64, 4 heads, ff 128) over 16 patches of 7×7.
    Transformer,
}

impl Arch {
    /// The name used in file names and tables.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Lenet5 => "lenet5",
            Arch::Lstm => "lstm",
            Arch::Transformer => "transformer",
        }
    }

    /// How the model wants its images.
    pub fn input_layout(self) -> InputLayout {
        match self {
            Arch::Lenet5 => InputLayout::Padded32,
            Arch::Lstm => InputLayout::Rows,
            Arch::Transformer => InputLayout::Patches7,
        }
    }

    /// A freshly initialized model (PyTorch's default inits drawn from a PRNG seeded `seed`);
    /// LeNet5 is a [`qflow::Graph`], the sequence models are qnn modules.
    pub fn build(self, seed: u64) -> crate::Result<Box<dyn Module>> {
        let mut rng = Rng::new(seed);
        Ok(match self {
            Arch::Lenet5 => Box::new(lenet5(&mut rng)?),
            Arch::Lstm => Box::new(RowLstm::new(28, 128, NUM_CLASSES, &mut rng)?),
            Arch::Transformer => Box::new(PatchTransformer::new(
                PatchTransformerConfig {
                    tokens: 16,
                    patch_dim: 49,
                    d_model: 64,
                    nhead: 4,
                    dim_feedforward: 128,
                    classes: NUM_CLASSES,
                },
                &mut rng,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qnn::Value;
    use qnn::qtensor::Tensor;

    /// Loss = sum(w ⊙ y) for a fixed w; checks the input gradient against central differences.
    fn check_input_grad(arch: Arch) {
        let mut m = arch.build(1).unwrap();
        let mut shape = vec![2];
        shape.extend(arch.input_layout().sample_shape());
        let mut rng = Rng::new(7);
        let mut x = Tensor::zeros(&shape);
        rng.fill_uniform(x.data_mut(), -1.0, 1.0);
        let w = Tensor::from_fn(&[2, NUM_CLASSES], |i| ((i * 7) % 5) as f32 - 2.0);
        let loss = |m: &mut Box<dyn Module>, x: &Tensor<f32>| -> f64 {
            let y = m
                .forward(&Value::F32(x.clone()))
                .unwrap()
                .into_f32("t")
                .unwrap();
            y.data()
                .iter()
                .zip(w.data())
                .map(|(a, b)| f64::from(a * b))
                .sum()
        };
        loss(&mut m, &x);
        let g = m
            .backward(&Value::F32(w.clone()))
            .unwrap()
            .into_f32("t")
            .unwrap();
        assert_eq!(g.shape(), x.shape());
        let eps = 1e-2f32;
        for &i in &[0, 5, x.numel() / 2 + 3, x.numel() - 1] {
            let mut xp = x.clone();
            xp.data_mut()[i] += eps;
            let mut xm = x.clone();
            xm.data_mut()[i] -= eps;
            let fd = (loss(&mut m, &xp) - loss(&mut m, &xm)) / (2.0 * f64::from(eps));
            let an = f64::from(g.data()[i]);
            assert!(
                (fd - an).abs() < 2e-2 * (1.0 + an.abs()),
                "{arch:?} [{i}]: fd {fd} vs {an}"
            );
        }
    }

    #[test]
    fn row_lstm_input_gradient_matches_finite_differences() {
        check_input_grad(Arch::Lstm);
    }

    #[test]
    fn patch_transformer_input_gradient_matches_finite_differences() {
        check_input_grad(Arch::Transformer);
    }

    #[test]
    fn every_arch_maps_its_layout_to_ten_logits() {
        for arch in [Arch::Lenet5, Arch::Lstm, Arch::Transformer] {
            let mut m = arch.build(0).unwrap();
            let mut shape = vec![3];
            shape.extend(arch.input_layout().sample_shape());
            let y = m.forward(&Value::F32(Tensor::zeros(&shape))).unwrap();
            assert_eq!(y.shape(), Some(&[3, NUM_CLASSES][..]), "{arch:?}");
        }
    }
}
