//! Quantized Embedding and EmbeddingBag ([`qnn::quantized`]): 8-bit (`dtype=QUInt8`) or 4-bit
//! (`dtype=QUInt4x2`) rowwise tables with float qparams. The arguments are the table's size,
//! the dtype and, for bags, the mode and `include_last_offset`; the rows (`weight`, packed two
//! per byte for 4-bit) and their `weight_scale` / `weight_zero_point` are state-dict buffers,
//! and `after_load` rebuilds the kernels' per-row constants.

use qnn::float::BagMode;
use qnn::qtensor::{QDType, QParams, QTensor};
use qnn::quantized::{Embedding, EmbeddingBag};
use qnn::{Module, ModuleKind};

use super::{Args, Built, Described, Reader, concrete, flag, push};
use crate::error::{QflowError, Result};

fn table_args(num: usize, dim: usize, dtype: QDType, args: &mut Args) {
    push(args, "", "num", num);
    push(args, "", "dim", dim);
    push(args, "", "dtype", format!("{dtype:?}"));
}

/// Arguments of a quantized embedding; `None` for other modules.
pub(super) fn describe(m: &dyn Module, args: &mut Args) -> Described {
    let result = match m.kind() {
        ModuleKind::QuantizedEmbedding => concrete::<Embedding>(m).map(|e| {
            table_args(e.num_embeddings(), e.embedding_dim(), e.dtype(), args);
        }),
        ModuleKind::QuantizedEmbeddingBag => concrete::<EmbeddingBag>(m).map(|e| {
            table_args(e.num_embeddings(), e.embedding_dim(), e.dtype(), args);
            push(args, "", "mode", format!("{:?}", e.mode()));
            push(
                args,
                "",
                "include_last_offset",
                flag(e.include_last_offset()),
            );
        }),
        _ => return None,
    };
    Some(result)
}

/// A zero table of the saved size and dtype with unit scales (the state dict fills it).
fn placeholder_table(r: &Reader<'_>) -> Result<QTensor> {
    let (num, dim): (usize, usize) = (r.parse("num")?, r.parse("dim")?);
    let dtype = match r.raw("dtype")? {
        "QUInt8" => QDType::QUInt8,
        "QUInt4x2" => QDType::QUInt4x2,
        _ => return Err(r.bad("dtype")),
    };
    // Sizes no allocation can hold are errors here, not capacity-overflow panics below.
    let limit = isize::MAX as usize / 8;
    let len = num
        .checked_mul(dim)
        .filter(|&n| n <= limit && num <= limit)
        .ok_or_else(|| r.bad("dim"))?;
    let qparams = QParams::PerChannelFloat {
        scales: vec![1.0; num],
        zero_points: vec![0.0; num],
        axis: 0,
    };
    QTensor::from_int_values(&[num, dim], &vec![0; len], dtype, qparams)
        .map_err(|e| QflowError::Module(e.into()))
}

/// Builds a quantized embedding; `None` for other op names.
pub(super) fn build(op: &str, r: &Reader<'_>) -> Built {
    match op {
        "QuantizedEmbedding" => Some(
            placeholder_table(r)
                .and_then(|t| Ok(Box::new(Embedding::from_qtensor(&t)?) as Box<dyn Module>)),
        ),
        "QuantizedEmbeddingBag" => Some((|| {
            let mode = match r.raw("mode")? {
                "Sum" => BagMode::Sum,
                "Mean" => BagMode::Mean,
                "Max" => BagMode::Max,
                _ => return Err(r.bad("mode")),
            };
            let bag = EmbeddingBag::from_qtensor(&placeholder_table(r)?, mode)?
                .with_include_last_offset(r.flag("include_last_offset")?);
            Ok(Box::new(bag) as Box<dyn Module>)
        })()),
        _ => None,
    }
}
