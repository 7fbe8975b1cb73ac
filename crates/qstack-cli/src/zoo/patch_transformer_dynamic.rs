//! The dynamic int8 patch Transformer: what PyTorch's `quantize_dynamic` (default set, qint8)
//! makes of the patch Transformer. Every `nn.Linear` (`embed`, the encoder's feed-forward
//! `linear1` / `linear2`, `head`) becomes `qnn::dynamic::Linear` with
//! `default_weight_observer` qparams; self-attention (whose `out_proj` PyTorch leaves alone)
//! and the LayerNorms stay float. Inference only; post-norm encoder as in the float model.

use qnn::dynamic::Linear;
use qnn::float::{Gelu, LayerNorm, MultiheadAttention, ReLU};
use qnn::qtensor::Tensor;
use qnn::{BufferMut, BufferRef, Module, ModuleKind, Param, QnnError, Result, Value};

use super::PatchTransformer;
use super::row_lstm_dynamic::weight_qparams;

const NAME: &str = "DynamicPatchTransformer";

/// The patch Transformer with dynamic int8 Linears (state-dict names as the float model's).
#[derive(Debug)]
pub struct DynamicPatchTransformer {
    embed: Linear,
    pos_embed: Param,
    self_attn: MultiheadAttention,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    gelu: bool,
    head: Linear,
}

fn dynamic(l: &qnn::float::Linear) -> Result<Linear> {
    Linear::from_float(l, &weight_qparams(&l.weight.value)?)
}

fn f32_of(v: Value) -> Result<Tensor<f32>> {
    match v {
        Value::Tuple(mut parts) if !parts.is_empty() => parts.swap_remove(0).into_f32(NAME),
        other => other.into_f32(NAME),
    }
}

fn add(a: &Tensor<f32>, b: &Tensor<f32>) -> Result<Tensor<f32>> {
    if a.shape() != b.shape() {
        return Err(QnnError::ShapeMismatch {
            what: "DynamicPatchTransformer residual".into(),
            expected: a.shape().to_vec(),
            got: b.shape().to_vec(),
        });
    }
    let (ad, bd) = (a.data(), b.data());
    Ok(Tensor::from_fn(a.shape(), |i| ad[i] + bd[i]))
}

impl DynamicPatchTransformer {
    /// Quantizes the float model's Linear weights (biases stay f32); copies the rest.
    pub fn from_float(float: &PatchTransformer) -> Result<Self> {
        if float.encoder.config().norm_first {
            return Err(QnnError::InvalidConfig {
                module: NAME,
                reason: "only the post-norm encoder of the patch Transformer is supported".into(),
            });
        }
        Ok(Self {
            embed: dynamic(&float.embed)?,
            pos_embed: float.pos_embed.clone(),
            self_attn: float.encoder.self_attn.clone(),
            linear1: dynamic(&float.encoder.linear1)?,
            linear2: dynamic(&float.encoder.linear2)?,
            norm1: float.encoder.norm1.clone(),
            norm2: float.encoder.norm2.clone(),
            gelu: float.encoder.config().gelu,
            head: dynamic(&float.head)?,
        })
    }

    fn feed_forward(&mut self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let h = self.linear1.forward(&Value::F32(x.clone()))?;
        let h = if self.gelu {
            Gelu::new().forward(&h)?
        } else {
            ReLU::new().forward(&h)?
        };
        self.linear2.forward(&h)?.into_f32(NAME)
    }
}

impl Module for DynamicPatchTransformer {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let mut x = self.embed.forward(input)?.into_f32(NAME)?;
        let pos = self.pos_embed.value.data();
        let &[b, s, e] = x.shape() else {
            return Err(QnnError::WrongRank {
                module: NAME,
                expected: "3-d [B, tokens, patch_dim]",
                got: x.shape().to_vec(),
            });
        };
        if s * e != pos.len() {
            return Err(QnnError::ShapeMismatch {
                what: "DynamicPatchTransformer tokens".into(),
                expected: self.pos_embed.value.shape().to_vec(),
                got: vec![s, e],
            });
        }
        for sample in x.data_mut().chunks_exact_mut(s * e) {
            sample.iter_mut().zip(pos).for_each(|(v, p)| *v += p);
        }
        let attn = f32_of(self.self_attn.forward(&Value::F32(x.clone()))?)?;
        let y1 = self
            .norm1
            .forward(&Value::F32(add(&x, &attn)?))?
            .into_f32(NAME)?;
        let ff = self.feed_forward(&y1)?;
        let y = self
            .norm2
            .forward(&Value::F32(add(&y1, &ff)?))?
            .into_f32(NAME)?;
        let yd = y.data();
        let pooled = Tensor::from_fn(&[b, e], |i| {
            let (bi, ei) = (i / e, i % e);
            (0..s).map(|t| yd[(bi * s + t) * e + ei]).sum::<f32>() / s as f32
        });
        self.head.forward(&Value::F32(pooled))
    }

    fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
        Err(QnnError::NotTrainable { module: NAME })
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        f("pos_embed", &self.pos_embed);
        self.self_attn
            .visit_params(&mut |n, p| f(&format!("encoder.self_attn.{n}"), p));
        self.norm1
            .visit_params(&mut |n, p| f(&format!("encoder.norm1.{n}"), p));
        self.norm2
            .visit_params(&mut |n, p| f(&format!("encoder.norm2.{n}"), p));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        f("pos_embed", &mut self.pos_embed);
        self.self_attn
            .visit_params_mut(&mut |n, p| f(&format!("encoder.self_attn.{n}"), p));
        self.norm1
            .visit_params_mut(&mut |n, p| f(&format!("encoder.norm1.{n}"), p));
        self.norm2
            .visit_params_mut(&mut |n, p| f(&format!("encoder.norm2.{n}"), p));
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        let linears: [(&str, &Linear); 4] = [
            ("embed", &self.embed),
            ("encoder.linear1", &self.linear1),
            ("encoder.linear2", &self.linear2),
            ("head", &self.head),
        ];
        for (prefix, l) in linears {
            l.visit_buffers(&mut |n, b| f(&format!("{prefix}.{n}"), b));
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        let linears: [(&str, &mut Linear); 4] = [
            ("embed", &mut self.embed),
            ("encoder.linear1", &mut self.linear1),
            ("encoder.linear2", &mut self.linear2),
            ("head", &mut self.head),
        ];
        for (prefix, l) in linears {
            l.visit_buffers_mut(&mut |n, b| f(&format!("{prefix}.{n}"), b));
        }
    }

    fn train(&mut self, _mode: bool) {
        self.self_attn.train(false);
        self.norm1.train(false);
        self.norm2.train(false);
    }

    fn is_training(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zoo::Arch;
    use qnn::state_dict::{StateEntry, state_dict, to_safetensors};

    #[test]
    fn dynamic_patch_transformer_tracks_the_float_model_with_int8_linears() {
        let mut float = Arch::Transformer.build(5).unwrap();
        float.eval();
        let x = Tensor::from_fn(&[2, 16, 49], |i| ((i * 37 % 101) as f32 / 50.0) - 1.0);
        let pt = float.downcast_ref::<PatchTransformer>().unwrap();
        let mut q = DynamicPatchTransformer::from_float(pt).unwrap();
        q.eval();
        let want = float.forward(&Value::F32(x.clone())).unwrap();
        let got = q.forward(&Value::F32(x)).unwrap();
        let (want, got) = (
            want.into_f32("float").unwrap(),
            got.into_f32("int8").unwrap(),
        );
        assert_eq!(got.shape(), &[2, 10]);
        let (mut signal, mut noise) = (0f64, 0f64);
        for (a, b) in want.data().iter().zip(got.data()) {
            signal += f64::from(*a).powi(2);
            noise += f64::from(a - b).powi(2);
        }
        let sqnr = 10.0 * (signal / noise).log10();
        assert!(sqnr > 20.0 && sqnr.is_finite(), "{sqnr} dB");
        let dict = state_dict(&q);
        for name in [
            "embed.weight",
            "encoder.linear1.weight",
            "encoder.linear2.weight",
            "head.weight",
        ] {
            assert!(
                matches!(dict.get(name), Some(StateEntry::I8(_))),
                "{name}: {:?}",
                dict.keys().collect::<Vec<_>>()
            );
        }
        assert!(dict.contains_key("encoder.self_attn.out_proj.weight"));
        assert!(to_safetensors(&dict).is_ok());
    }
}
