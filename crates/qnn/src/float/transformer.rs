//! `nn.TransformerEncoderLayer`: self-attention and a feed-forward block, each with a residual
//! connection and LayerNorm (post-norm by default, pre-norm with `norm_first`).

use super::activation::{Gelu, ReLU};
use super::attention::MultiheadAttention;
use super::dropout::Dropout;
use super::layernorm::LayerNorm;
use super::linear::Linear;
use crate::error::{QnnError, Result};
use crate::init::Rng;
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

const NAME: &str = "TransformerEncoderLayer";

/// Hyper-parameters of a [`TransformerEncoderLayer`] (PyTorch's names).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerEncoderConfig {
    /// Model width `E`.
    pub d_model: usize,
    /// Attention heads.
    pub nhead: usize,
    /// Hidden width of the feed-forward block (PyTorch's default 2048).
    pub dim_feedforward: usize,
    /// Dropout probability (PyTorch's default 0.1).
    pub dropout: f32,
    /// GELU instead of ReLU in the feed-forward block.
    pub gelu: bool,
    /// Inputs are `(N, S, E)`.
    pub batch_first: bool,
    /// Pre-norm (`x + f(norm(x))`) instead of post-norm (`norm(x + f(x))`).
    pub norm_first: bool,
    /// LayerNorm eps (default 1e-5).
    pub layer_norm_eps: f32,
}

impl TransformerEncoderConfig {
    /// PyTorch's defaults for the given width and heads.
    pub fn new(d_model: usize, nhead: usize) -> Self {
        Self {
            d_model,
            nhead,
            dim_feedforward: 2048,
            dropout: 0.1,
            gelu: false,
            batch_first: false,
            norm_first: false,
            layer_norm_eps: 1e-5,
        }
    }
}

fn f32_of(v: Value) -> Result<Value> {
    match v {
        Value::Tuple(mut parts) if !parts.is_empty() => Ok(parts.swap_remove(0)),
        Value::F32(t) => Ok(Value::F32(t)),
        other => Err(QnnError::WrongValueKind {
            module: NAME,
            expected: "f32",
            got: other.kind_name(),
        }),
    }
}

fn add(a: &Value, b: &Value) -> Result<Value> {
    let (a, b) = (a.as_f32(NAME)?, b.as_f32(NAME)?);
    super::util::same_shape("TransformerEncoderLayer residual", a.shape(), b.shape())?;
    let mut out = a.clone();
    out.data_mut()
        .iter_mut()
        .zip(b.data())
        .for_each(|(x, y)| *x += y);
    Ok(Value::F32(out))
}

/// One encoder layer with PyTorch's submodule names: `self_attn`, `linear1`, `linear2`,
/// `norm1`, `norm2` (dropouts have no state). Input `[S, N, E]` (`[N, S, E]` if batch_first),
/// output of the same shape; backward returns the input gradient.
pub struct TransformerEncoderLayer {
    cfg: TransformerEncoderConfig,
    /// The self-attention block.
    pub self_attn: MultiheadAttention,
    /// `E -> dim_feedforward`.
    pub linear1: Linear,
    /// `dim_feedforward -> E`.
    pub linear2: Linear,
    /// LayerNorm of the attention block.
    pub norm1: LayerNorm,
    /// LayerNorm of the feed-forward block.
    pub norm2: LayerNorm,
    activation: Box<dyn Module>,
    dropout: Dropout,
    dropout1: Dropout,
    dropout2: Dropout,
    training: bool,
}

impl std::fmt::Debug for TransformerEncoderLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransformerEncoderLayer")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl TransformerEncoderLayer {
    /// A layer with PyTorch's default init from `rng`; dropout masks are seeded from `rng` too.
    pub fn new(cfg: TransformerEncoderConfig, rng: &mut Rng) -> Result<Self> {
        let (e, f) = (cfg.d_model, cfg.dim_feedforward);
        let self_attn = MultiheadAttention::new(e, cfg.nhead, true, cfg.batch_first, rng)?;
        let linear1 = Linear::new(e, f, true, rng);
        let linear2 = Linear::new(f, e, true, rng);
        let activation: Box<dyn Module> = if cfg.gelu {
            Box::new(Gelu::new())
        } else {
            Box::new(ReLU::new())
        };
        let mut seed = || rng.next_u64();
        Ok(Self {
            cfg,
            self_attn,
            linear1,
            linear2,
            norm1: LayerNorm::new(&[e], cfg.layer_norm_eps, true),
            norm2: LayerNorm::new(&[e], cfg.layer_norm_eps, true),
            activation,
            dropout: Dropout::new(cfg.dropout, seed())?,
            dropout1: Dropout::new(cfg.dropout, seed())?,
            dropout2: Dropout::new(cfg.dropout, seed())?,
            training: true,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &TransformerEncoderConfig {
        &self.cfg
    }

    fn attention_block(&mut self, x: &Value) -> Result<Value> {
        let a = f32_of(self.self_attn.forward(x)?)?;
        self.dropout1.forward(&a)
    }

    fn attention_block_backward(&mut self, g: &Value) -> Result<Value> {
        let g = self.dropout1.backward(g)?;
        self.self_attn.backward(&g)
    }

    fn feed_forward(&mut self, x: &Value) -> Result<Value> {
        let h = self.linear1.forward(x)?;
        let h = self.activation.forward(&h)?;
        let h = self.dropout.forward(&h)?;
        let h = self.linear2.forward(&h)?;
        self.dropout2.forward(&h)
    }

    fn feed_forward_backward(&mut self, g: &Value) -> Result<Value> {
        let g = self.dropout2.backward(g)?;
        let g = self.linear2.backward(&g)?;
        let g = self.dropout.backward(&g)?;
        let g = self.activation.backward(&g)?;
        self.linear1.backward(&g)
    }

    fn children(&self) -> [(&'static str, &dyn Module); 5] {
        [
            ("self_attn", &self.self_attn),
            ("linear1", &self.linear1),
            ("linear2", &self.linear2),
            ("norm1", &self.norm1),
            ("norm2", &self.norm2),
        ]
    }
}

impl Module for TransformerEncoderLayer {
    fn kind(&self) -> ModuleKind {
        ModuleKind::TransformerEncoderLayer
    }

    /// PyTorch's children in registration order (the activation is a function, not a child).
    fn repr_children(&self) -> Vec<(String, crate::repr::ReprTree)> {
        let children: [(&str, &dyn Module); 8] = [
            ("self_attn", &self.self_attn),
            ("linear1", &self.linear1),
            ("dropout", &self.dropout),
            ("linear2", &self.linear2),
            ("norm1", &self.norm1),
            ("norm2", &self.norm2),
            ("dropout1", &self.dropout1),
            ("dropout2", &self.dropout2),
        ];
        crate::repr::named_children_repr(children)
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        let children: [(&str, &dyn Module); 3] = [
            ("self_attn", &self.self_attn),
            ("linear1", &self.linear1),
            ("linear2", &self.linear2),
        ];
        crate::repr::child_param_dtype(children, name)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = Value::F32(input.as_f32(NAME)?.clone());
        if self.cfg.norm_first {
            let n1 = self.norm1.forward(&x)?;
            let r1 = add(&x, &self.attention_block(&n1)?)?;
            let n2 = self.norm2.forward(&r1)?;
            add(&r1, &self.feed_forward(&n2)?)
        } else {
            let r1 = add(&x, &self.attention_block(&x)?)?;
            let y1 = self.norm1.forward(&r1)?;
            let r2 = add(&y1, &self.feed_forward(&y1)?)?;
            self.norm2.forward(&r2)
        }
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let g = Value::F32(grad_output.as_f32(NAME)?.clone());
        if self.cfg.norm_first {
            let ff = self.feed_forward_backward(&g)?;
            let d_r1 = add(&g, &self.norm2.backward(&ff)?)?;
            let att = self.attention_block_backward(&d_r1)?;
            add(&d_r1, &self.norm1.backward(&att)?)
        } else {
            let d_r2 = self.norm2.backward(&g)?;
            let d_y1 = add(&d_r2, &self.feed_forward_backward(&d_r2)?)?;
            let d_r1 = self.norm1.backward(&d_y1)?;
            add(&d_r1, &self.attention_block_backward(&d_r1)?)
        }
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        for (name, m) in self.children() {
            m.visit_params(&mut |n, p| f(&format!("{name}.{n}"), p));
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        let children: [(&str, &mut dyn Module); 5] = [
            ("self_attn", &mut self.self_attn),
            ("linear1", &mut self.linear1),
            ("linear2", &mut self.linear2),
            ("norm1", &mut self.norm1),
            ("norm2", &mut self.norm2),
        ];
        for (name, m) in children {
            m.visit_params_mut(&mut |n, p| f(&format!("{name}.{n}"), p));
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        let children: [&mut dyn Module; 9] = [
            &mut self.self_attn,
            &mut self.linear1,
            &mut self.linear2,
            &mut self.norm1,
            &mut self.norm2,
            self.activation.as_mut(),
            &mut self.dropout,
            &mut self.dropout1,
            &mut self.dropout2,
        ];
        for m in children {
            m.train(mode);
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    /// Halves the attention projections and both Linears; the LayerNorms keep f32 (they are
    /// tiny, and PyTorch's CPU f16 LayerNorm computes in f32 anyway).
    fn half(&mut self) -> Result<()> {
        self.self_attn.half()?;
        self.linear1.half()?;
        self.linear2.half()
    }

    fn param_bytes(&self) -> usize {
        self.children().iter().map(|(_, m)| m.param_bytes()).sum()
    }
}
