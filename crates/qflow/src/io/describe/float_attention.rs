//! MultiheadAttention and TransformerEncoderLayer: their constructor arguments (PyTorch's
//! names: `embed_dim`, `num_heads`, `bias`, `batch_first`; `dim_feedforward`, `dropout`,
//! `activation`, `norm_first`, `eps`) and `half=1` when the projections are stored as f16
//! (halved again after loading). The weights are state-dict entries under PyTorch's names
//! (`in_proj_weight`, `out_proj.weight`, `self_attn.…`, `linear1.…`, `norm1.…`).

use qnn::float::{MultiheadAttention, TransformerEncoderConfig, TransformerEncoderLayer};
use qnn::init::Rng;
use qnn::repr::TensorDType;
use qnn::{Module, ModuleKind};

use super::{Args, Built, Described, Reader, concrete, flag, push};
use crate::error::Result;

/// True when some parameter of `m` is stored as f16 (after `half()`).
fn halved(m: &dyn Module) -> bool {
    let mut names = Vec::new();
    m.visit_params(&mut |n, _| names.push(n.to_string()));
    names
        .iter()
        .any(|n| matches!(m.param_dtype(n), Some(TensorDType::F16)))
}

/// Arguments of an attention or encoder layer; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::MultiheadAttention => concrete::<MultiheadAttention>(m).map(|a| {
            let (e, h) = a.dims();
            push(args, "", "embed_dim", e);
            push(args, "", "num_heads", h);
            push(args, "", "bias", flag(a.in_proj_bias.is_some()));
            push(args, "", "batch_first", flag(a.batch_first()));
        }),
        ModuleKind::TransformerEncoderLayer => concrete::<TransformerEncoderLayer>(m).map(|l| {
            let c = l.config();
            push(args, "", "embed_dim", c.d_model);
            push(args, "", "num_heads", c.nhead);
            push(args, "", "dim_feedforward", c.dim_feedforward);
            push(args, "", "dropout", c.dropout);
            push(args, "", "activation", if c.gelu { "gelu" } else { "relu" });
            push(args, "", "batch_first", flag(c.batch_first));
            push(args, "", "norm_first", flag(c.norm_first));
            push(args, "", "eps", c.layer_norm_eps);
        }),
        _ => return None,
    };
    if result.is_ok() {
        push(args, "", "half", flag(halved(m)));
    }
    Some(result)
}

/// Builds an attention or encoder layer; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Built {
    build_known(op, r, rng).transpose()
}

fn build_known(op: &str, r: &Reader<'_>, rng: &mut Rng) -> Result<Option<Box<dyn Module>>> {
    let m: Box<dyn Module> = match op {
        "MultiheadAttention" => Box::new(MultiheadAttention::new(
            r.parse("embed_dim")?,
            r.parse("num_heads")?,
            r.flag("bias")?,
            r.flag("batch_first")?,
            rng,
        )?),
        "TransformerEncoderLayer" => {
            let cfg = TransformerEncoderConfig {
                d_model: r.parse("embed_dim")?,
                nhead: r.parse("num_heads")?,
                dim_feedforward: r.parse("dim_feedforward")?,
                dropout: r.parse("dropout")?,
                gelu: match r.raw("activation")? {
                    "relu" => false,
                    "gelu" => true,
                    _ => return Err(r.bad("activation")),
                },
                batch_first: r.flag("batch_first")?,
                norm_first: r.flag("norm_first")?,
                layer_norm_eps: r.parse("eps")?,
            };
            Box::new(TransformerEncoderLayer::new(cfg, rng)?)
        }
        _ => return Ok(None),
    };
    Ok(Some(m))
}
