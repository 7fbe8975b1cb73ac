//! A small Transformer encoder over image patches (a tiny ViT): 16 patches of 7×7 pixels,
//! a Linear patch embedding, a learned position embedding, one `TransformerEncoderLayer`,
//! mean pooling over patches and a Linear classifier.

use qnn::float::{Linear, TransformerEncoderConfig, TransformerEncoderLayer};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Param, QnnError, Result, Value};

const NAME: &str = "PatchTransformer";

/// Hyper-parameters of a [`PatchTransformer`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PatchTransformerConfig {
    /// Patches per image.
    pub tokens: usize,
    /// Floats per patch.
    pub patch_dim: usize,
    /// Model width.
    pub d_model: usize,
    /// Attention heads.
    pub nhead: usize,
    /// Feed-forward width.
    pub dim_feedforward: usize,
    /// Classes.
    pub classes: usize,
}

/// `embed` (patch → d_model), `+ pos_embed`, `encoder` (batch first), mean over patches,
/// `head`. Input `[B, tokens, patch_dim]`, output `[B, classes]`.
#[derive(Debug)]
pub struct PatchTransformer {
    cfg: PatchTransformerConfig,
    /// Patch embedding.
    pub embed: Linear,
    /// Learned position embedding `[tokens, d_model]`.
    pub pos_embed: Param,
    /// The encoder layer (dropout 0).
    pub encoder: TransformerEncoderLayer,
    /// Classifier.
    pub head: Linear,
    batch: Option<usize>,
    training: bool,
}

impl PatchTransformer {
    /// A model with PyTorch's default inits from `rng` (position embedding uniform ±0.02).
    pub fn new(cfg: PatchTransformerConfig, rng: &mut Rng) -> Result<Self> {
        let enc_cfg = TransformerEncoderConfig {
            dim_feedforward: cfg.dim_feedforward,
            dropout: 0.0,
            batch_first: true,
            ..TransformerEncoderConfig::new(cfg.d_model, cfg.nhead)
        };
        let mut pos = Tensor::zeros(&[cfg.tokens, cfg.d_model]);
        rng.fill_uniform(pos.data_mut(), -0.02, 0.02);
        Ok(Self {
            cfg,
            embed: Linear::new(cfg.patch_dim, cfg.d_model, true, rng),
            pos_embed: Param::new(pos),
            encoder: TransformerEncoderLayer::new(enc_cfg, rng)?,
            head: Linear::new(cfg.d_model, cfg.classes, true, rng),
            batch: None,
            training: true,
        })
    }
}

impl Module for PatchTransformer {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let (s, e) = (self.cfg.tokens, self.cfg.d_model);
        let mut x = self.embed.forward(input)?.into_f32(NAME)?;
        let &[b, s_in, e_in] = x.shape() else {
            return Err(QnnError::WrongRank {
                module: NAME,
                expected: "3-d [B, tokens, patch_dim]",
                got: x.shape().to_vec(),
            });
        };
        if (s_in, e_in) != (s, e) {
            return Err(QnnError::ShapeMismatch {
                what: "PatchTransformer tokens".into(),
                expected: vec![b, s, e],
                got: x.shape().to_vec(),
            });
        }
        let pos = self.pos_embed.value.data();
        for sample in x.data_mut().chunks_exact_mut(s * e) {
            sample.iter_mut().zip(pos).for_each(|(v, p)| *v += p);
        }
        let y = self.encoder.forward(&Value::F32(x))?.into_f32(NAME)?;
        let yd = y.data();
        let pooled = Tensor::from_fn(&[b, e], |i| {
            let (bi, ei) = (i / e, i % e);
            (0..s).map(|t| yd[(bi * s + t) * e + ei]).sum::<f32>() / s as f32
        });
        self.batch = Some(b);
        self.head.forward(&Value::F32(pooled))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let b = self
            .batch
            .ok_or(QnnError::BackwardBeforeForward { module: NAME })?;
        let (s, e) = (self.cfg.tokens, self.cfg.d_model);
        let g_pooled = self.head.backward(grad_output)?.into_f32(NAME)?;
        let gp = g_pooled.data();
        let g_y = Tensor::from_fn(&[b, s, e], |i| gp[(i / (s * e)) * e + i % e] / s as f32);
        let g_x = self.encoder.backward(&Value::F32(g_y))?.into_f32(NAME)?;
        let pos_grad = self.pos_embed.grad.data_mut();
        for sample in g_x.data().chunks_exact(s * e) {
            pos_grad.iter_mut().zip(sample).for_each(|(g, v)| *g += v);
        }
        self.embed.backward(&Value::F32(g_x))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        self.embed
            .visit_params(&mut |n, p| f(&format!("embed.{n}"), p));
        f("pos_embed", &self.pos_embed);
        self.encoder
            .visit_params(&mut |n, p| f(&format!("encoder.{n}"), p));
        self.head
            .visit_params(&mut |n, p| f(&format!("head.{n}"), p));
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        self.embed
            .visit_params_mut(&mut |n, p| f(&format!("embed.{n}"), p));
        f("pos_embed", &mut self.pos_embed);
        self.encoder
            .visit_params_mut(&mut |n, p| f(&format!("encoder.{n}"), p));
        self.head
            .visit_params_mut(&mut |n, p| f(&format!("head.{n}"), p));
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        self.embed.train(mode);
        self.encoder.train(mode);
        self.head.train(mode);
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn half(&mut self) -> Result<()> {
        self.embed.half()?;
        self.encoder.half()?;
        self.head.half()
    }

    fn param_bytes(&self) -> usize {
        self.embed.param_bytes()
            + 4 * self.pos_embed.value.numel()
            + self.encoder.param_bytes()
            + self.head.param_bytes()
    }
}
