//! Quantized Embedding and EmbeddingBag with 8-bit (quint8) or 4-bit (quint4x2) rowwise
//! weights and float qparams per row: PyTorch's `quantized::embedding_byte` / `embedding_4bit`
//! and `embedding_bag_byte` / `embedding_bag_4bit` (fbgemm's `EmbeddingSpMDM` kernels).
//!
//! Each row keeps its float scale `s` and zero point `z` (from the observer with
//! `per_channel_affine_float_qparams`); the kernels use `bias = −f32(z·s)` (4-bit: `s` and
//! `bias` rounded to f16, as the 4-bit prepack stores them). A bag accumulates, row by row,
//! `out[j] = fma(w·s, q[j], out[j] + w·bias)` from `out = 0` (`w` the per-sample weight, 1
//! without), and `Mean` multiplies by `f32(1 / len)`; a plain lookup is `fma(s, q, 0 + bias)`.
//! Bit-exact with torch 2.15 goldens for lookups and sums (`tests/quantized_embedding.rs`).
//!
//! PyTorch's quantized ops ignore the bag mode (they always sum); here `Mean` follows fbgemm's
//! `normalize_by_lengths` and `Max` takes the element-wise maximum of the dequantized rows
//! (`fma(s, q, bias)`), both tested against float oracles. Empty bags give zeros.

use half::f16;
use qtensor::{QDType, QParams, QTensor, Tensor, quantize_per_channel_float_qparams};

use crate::error::{QnnError, Result};
use crate::float::{self, BagMode};
use crate::module::{Module, ModuleKind};
use crate::param::{BufferMut, BufferRef};
use crate::value::Value;

/// A rowwise-quantized table: integer rows (4-bit packed two per byte, low nibble first), one
/// float scale and zero point per row, and the kernels' `(scale, bias)` pairs.
#[derive(Clone, Debug)]
struct Table {
    dim: usize,
    bits4: bool,
    /// `[num, dim]` quint8 values, or `[num, ceil(dim / 2)]` packed quint4x2 bytes.
    weight: Tensor<u8>,
    scales: Tensor<f32>,
    zero_points: Tensor<f32>,
    /// `(scale, bias)` per row as the kernels use them (rebuilt on load).
    rows: Vec<(f32, f32)>,
}

impl Table {
    fn from_qtensor(module: &'static str, q: &QTensor) -> Result<Self> {
        let &[num, dim] = q.shape() else {
            return Err(QnnError::WrongRank {
                module,
                expected: "2-d [num_embeddings, embedding_dim] weight",
                got: q.shape().to_vec(),
            });
        };
        let QParams::PerChannelFloat {
            scales,
            zero_points,
            axis: 0,
        } = q.qparams()
        else {
            return Err(QnnError::InvalidQParams {
                module,
                reason: format!(
                    "embedding weights need per_channel_affine_float_qparams along axis 0, got {:?}",
                    q.qscheme()
                ),
            });
        };
        let bits4 = match q.dtype() {
            QDType::QUInt8 => false,
            QDType::QUInt4x2 => true,
            other => {
                return Err(QnnError::InvalidQParams {
                    module,
                    reason: format!("embedding weights must be quint8 or quint4x2, got {other}"),
                });
            }
        };
        let values = q.int_values();
        let weight = if bits4 {
            let per_row = dim.div_ceil(2);
            let mut packed = vec![0u8; num * per_row];
            for (r, row) in values.chunks(dim.max(1)).enumerate().take(num) {
                for (j, &v) in row.iter().enumerate() {
                    packed[r * per_row + j / 2] |= ((v as u8) & 0x0f) << (4 * (j % 2));
                }
            }
            Tensor::new(&[num, per_row], packed)?
        } else {
            Tensor::new(&[num, dim], values.iter().map(|&v| v as u8).collect())?
        };
        let mut t = Self {
            dim,
            bits4,
            weight,
            scales: Tensor::new(&[num], scales.clone())?,
            zero_points: Tensor::new(&[num], zero_points.clone())?,
            rows: Vec::new(),
        };
        t.prepare(module)?;
        Ok(t)
    }

    fn from_float(
        module: &'static str,
        weight: &Tensor<f32>,
        qparams: &QParams,
        dtype: QDType,
    ) -> Result<Self> {
        let QParams::PerChannelFloat {
            scales,
            zero_points,
            axis,
        } = qparams
        else {
            return Err(QnnError::InvalidQParams {
                module,
                reason: "embedding weights need per_channel_affine_float_qparams (QParams::PerChannelFloat)"
                    .into(),
            });
        };
        if !matches!(dtype, QDType::QUInt8 | QDType::QUInt4x2) {
            return Err(QnnError::InvalidQParams {
                module,
                reason: format!("embedding weights must be quint8 or quint4x2, got {dtype}"),
            });
        }
        let q = quantize_per_channel_float_qparams(weight, scales, zero_points, *axis, dtype)?;
        Self::from_qtensor(module, &q)
    }

    fn num(&self) -> usize {
        self.scales.numel()
    }

    /// Validates the state and rebuilds the kernels' `(scale, bias)` pairs.
    fn prepare(&mut self, module: &'static str) -> Result<()> {
        self.rows.clear();
        let num = self.num();
        let cols = if self.bits4 {
            self.dim.div_ceil(2)
        } else {
            self.dim
        };
        if self.weight.shape() != [num, cols] || self.zero_points.numel() != num {
            return Err(QnnError::ShapeMismatch {
                what: format!("{module} weight vs weight_scale / weight_zero_point rows"),
                expected: vec![num, cols],
                got: self.weight.shape().to_vec(),
            });
        }
        let mut rows = Vec::with_capacity(num);
        for (r, (&s, &z)) in self
            .scales
            .data()
            .iter()
            .zip(self.zero_points.data())
            .enumerate()
        {
            if !(s.is_finite() && s > 0.0 && z.is_finite()) {
                return Err(QnnError::InvalidQParams {
                    module,
                    reason: format!(
                        "row {r}: scale {s} must be finite and positive and zero point {z} finite"
                    ),
                });
            }
            let bias = -(z * s);
            rows.push(if self.bits4 {
                (f16::from_f32(s).to_f32(), f16::from_f32(bias).to_f32())
            } else {
                (s, bias)
            });
        }
        self.rows = rows;
        Ok(())
    }

    /// The integer value at row `r`, column `j`.
    fn q(&self, r: usize, j: usize) -> f32 {
        if self.bits4 {
            let b = self.weight.data()[r * self.dim.div_ceil(2) + j / 2];
            f32::from((b >> (4 * (j % 2))) & 0x0f)
        } else {
            f32::from(self.weight.data()[r * self.dim + j])
        }
    }

    /// `out[j] = fma(w·s, q[j], out[j] + w·bias)` for row `r`.
    fn accumulate(&self, r: usize, weight: Option<f32>, out: &mut [f32]) {
        let (mut s, mut b) = self.rows[r];
        if let Some(w) = weight {
            s *= w;
            b *= w;
        }
        for (j, o) in out.iter_mut().enumerate() {
            *o = s.mul_add(self.q(r, j), *o + b);
        }
    }

    fn check_index(&self, module: &'static str, position: usize, i: i32) -> Result<usize> {
        usize::try_from(i)
            .ok()
            .filter(|&u| u < self.num())
            .ok_or(QnnError::IndexOutOfRange {
                module,
                position,
                index: i64::from(i),
                size: self.num(),
            })
    }

    fn to_qtensor(&self) -> Result<QTensor> {
        let num = self.num();
        let values: Vec<i32> = (0..num)
            .flat_map(|r| (0..self.dim).map(move |j| (r, j)))
            .map(|(r, j)| self.q(r, j) as i32)
            .collect();
        Ok(QTensor::from_int_values(
            &[num, self.dim],
            &values,
            if self.bits4 {
                QDType::QUInt4x2
            } else {
                QDType::QUInt8
            },
            QParams::PerChannelFloat {
                scales: self.scales.data().to_vec(),
                zero_points: self.zero_points.data().to_vec(),
                axis: 0,
            },
        )?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f("weight", BufferRef::U8(&self.weight));
        f("weight_scale", BufferRef::F32(&self.scales));
        f("weight_zero_point", BufferRef::F32(&self.zero_points));
    }

    fn visit_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f("weight", BufferMut::U8(&mut self.weight));
        f("weight_scale", BufferMut::F32(&mut self.scales));
        f("weight_zero_point", BufferMut::F32(&mut self.zero_points));
    }

    fn bytes(&self) -> usize {
        self.weight.numel() + 8 * self.num()
    }
}

macro_rules! table_getters {
    () => {
        /// The quantized table (quint8 or quint4x2, float qparams along axis 0).
        pub fn weight(&self) -> Result<QTensor> {
            self.table.to_qtensor()
        }

        /// Number of rows.
        pub fn num_embeddings(&self) -> usize {
            self.table.num()
        }

        /// Row length.
        pub fn embedding_dim(&self) -> usize {
            self.table.dim
        }

        /// `QUInt8` (8-bit rows) or `QUInt4x2` (4-bit rows).
        pub fn dtype(&self) -> QDType {
            if self.table.bits4 {
                QDType::QUInt4x2
            } else {
                QDType::QUInt8
            }
        }
    };
}

macro_rules! table_module {
    ($kind:ident, $name:expr) => {
        fn kind(&self) -> ModuleKind {
            ModuleKind::$kind
        }

        fn backward(&mut self, _grad_output: &Value) -> Result<Value> {
            Err(QnnError::NotTrainable { module: $name })
        }

        fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
            self.table.visit(f);
        }

        fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
            self.table.visit_mut(f);
        }

        fn after_load(&mut self) -> Result<()> {
            self.table.prepare($name)
        }

        fn train(&mut self, mode: bool) {
            self.training = mode;
        }

        fn is_training(&self) -> bool {
            self.training
        }

        fn param_bytes(&self) -> usize {
            self.table.bytes()
        }

        /// `num_embeddings=…, embedding_dim=…, dtype=torch.quint8, qscheme=…` (PyTorch prints
        /// the same line for Embedding and EmbeddingBag, without the bag's mode).
        fn extra_repr(&self) -> String {
            format!(
                "num_embeddings={}, embedding_dim={}, dtype={}, qscheme=torch.per_channel_affine_float_qparams",
                self.table.num(),
                self.table.dim,
                crate::repr::torch_qdtype(if self.table.bits4 {
                    QDType::QUInt4x2
                } else {
                    QDType::QUInt8
                })
            )
        }
    };
}

const EMB: &str = "quantized::Embedding";

/// `torch.ao.nn.quantized.Embedding`: i32 indices of any shape `S` → f32 rows, shape
/// `S + [embedding_dim]`. State: `weight` (u8: quint8 values, or quint4x2 packed per row),
/// `weight_scale` and `weight_zero_point` (f32 per row).
#[derive(Clone, Debug)]
pub struct Embedding {
    table: Table,
    training: bool,
}

impl Embedding {
    /// Wraps a quantized table (quint8 or quint4x2 with float qparams along axis 0), as
    /// `set_weight` does.
    pub fn from_qtensor(weight: &QTensor) -> Result<Self> {
        Ok(Self {
            table: Table::from_qtensor(EMB, weight)?,
            training: false,
        })
    }

    /// `nnq.Embedding.from_float`: quantizes the float table with the observer's float
    /// qparams (`QParams::PerChannelFloat`, axis 0) to `dtype` (quint8 or quint4x2).
    pub fn from_float(
        float: &float::Embedding,
        weight_qparams: &QParams,
        dtype: QDType,
    ) -> Result<Self> {
        Ok(Self {
            table: Table::from_float(EMB, &float.weight.value, weight_qparams, dtype)?,
            training: false,
        })
    }

    table_getters!();
}

impl Module for Embedding {
    table_module!(QuantizedEmbedding, EMB);

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let idx = input.as_i32(EMB)?;
        let d = self.table.dim;
        let mut out = vec![0.0f32; idx.numel() * d];
        for (p, (&i, o)) in idx
            .data()
            .iter()
            .zip(out.chunks_exact_mut(d.max(1)))
            .enumerate()
        {
            let r = self.table.check_index(EMB, p, i)?;
            self.table.accumulate(r, None, o);
        }
        let mut shape = idx.shape().to_vec();
        shape.push(d);
        Ok(Value::F32(Tensor::new(&shape, out)?))
    }
}

const BAG: &str = "quantized::EmbeddingBag";

/// `torch.ao.nn.quantized.EmbeddingBag`: reduces bags of rows to `[B, embedding_dim]` f32.
///
/// Input: an i32 `[B, L]` tensor (B bags of L indices); or `Value::Tuple([indices, offsets])`
/// (1-d each, PyTorch's `(input, offsets)`; with `include_last_offset` the offsets hold B + 1
/// entries, the last one ending the last bag); or `Value::Tuple([indices, offsets,
/// per_sample_weights])` with f32 weights, one per index (`Sum` mode only). State as
/// [`Embedding`].
#[derive(Clone, Debug)]
pub struct EmbeddingBag {
    table: Table,
    mode: BagMode,
    include_last_offset: bool,
    training: bool,
}

impl EmbeddingBag {
    /// Wraps a quantized table (quint8 or quint4x2 with float qparams along axis 0).
    pub fn from_qtensor(weight: &QTensor, mode: BagMode) -> Result<Self> {
        Ok(Self {
            table: Table::from_qtensor(BAG, weight)?,
            mode,
            include_last_offset: false,
            training: false,
        })
    }

    /// `nnq.EmbeddingBag.from_float`: quantizes the float table with the observer's float
    /// qparams to `dtype` (quint8 or quint4x2) and keeps its mode.
    pub fn from_float(
        float: &float::EmbeddingBag,
        weight_qparams: &QParams,
        dtype: QDType,
    ) -> Result<Self> {
        Ok(Self {
            table: Table::from_float(BAG, &float.weight.value, weight_qparams, dtype)?,
            mode: float.mode(),
            include_last_offset: false,
            training: false,
        })
    }

    /// Sets PyTorch's `include_last_offset` (offsets hold B + 1 entries).
    pub fn with_include_last_offset(mut self, include_last_offset: bool) -> Self {
        self.include_last_offset = include_last_offset;
        self
    }

    /// The reduction.
    pub fn mode(&self) -> BagMode {
        self.mode
    }

    /// Whether offsets carry a final end offset.
    pub fn include_last_offset(&self) -> bool {
        self.include_last_offset
    }

    table_getters!();

    /// Splits the input into bags of row indices, with the optional per-sample weights.
    #[allow(clippy::type_complexity)]
    fn bags(&self, input: &Value) -> Result<(Vec<Vec<usize>>, Option<Vec<Vec<f32>>>)> {
        match input {
            Value::I32(t) if t.ndim() == 2 => {
                let l = t.shape()[1];
                let idx = self.indices(t.data())?;
                let bags = if l == 0 {
                    vec![Vec::new(); t.shape()[0]]
                } else {
                    idx.chunks(l).map(<[usize]>::to_vec).collect()
                };
                Ok((bags, None))
            }
            Value::I32(t) => Err(QnnError::WrongRank {
                module: BAG,
                expected: "2-d (B, L) indices, or (indices, offsets[, per_sample_weights])",
                got: t.shape().to_vec(),
            }),
            Value::Tuple(parts) if parts.len() == 2 || parts.len() == 3 => {
                let (idx_t, off_t) = (parts[0].as_i32(BAG)?, parts[1].as_i32(BAG)?);
                if idx_t.ndim() != 1 || off_t.ndim() != 1 {
                    return Err(QnnError::WrongRank {
                        module: BAG,
                        expected: "1-d indices and 1-d offsets",
                        got: if idx_t.ndim() != 1 {
                            idx_t.shape().to_vec()
                        } else {
                            off_t.shape().to_vec()
                        },
                    });
                }
                let idx = self.indices(idx_t.data())?;
                let psw = match parts.get(2) {
                    None => None,
                    Some(v) => {
                        let w = v.as_f32(BAG)?;
                        if w.shape() != [idx.len()] {
                            return Err(QnnError::ShapeMismatch {
                                what: format!("{BAG} per_sample_weights vs indices"),
                                expected: vec![idx.len()],
                                got: w.shape().to_vec(),
                            });
                        }
                        if self.mode != BagMode::Sum {
                            return Err(QnnError::InvalidConfig {
                                module: BAG,
                                reason: "per_sample_weights are only supported in Sum mode".into(),
                            });
                        }
                        Some(w.data())
                    }
                };
                let ranges = self.ranges(off_t.data(), idx.len())?;
                let bags = ranges.iter().map(|r| idx[r.clone()].to_vec()).collect();
                let weights = psw.map(|w| ranges.iter().map(|r| w[r.clone()].to_vec()).collect());
                Ok((bags, weights))
            }
            other => Err(QnnError::WrongValueKind {
                module: BAG,
                expected: "i32 indices or (indices, offsets[, per_sample_weights]) tuple",
                got: other.kind_name(),
            }),
        }
    }

    fn indices(&self, idx: &[i32]) -> Result<Vec<usize>> {
        idx.iter()
            .enumerate()
            .map(|(p, &i)| self.table.check_index(BAG, p, i))
            .collect()
    }

    /// Bag index ranges from the offsets.
    fn ranges(&self, offs: &[i32], len: usize) -> Result<Vec<std::ops::Range<usize>>> {
        let bad = || QnnError::InvalidConfig {
            module: BAG,
            reason: format!(
                "offsets {offs:?} must be non-decreasing and within the {len} indices{}",
                if self.include_last_offset {
                    " (with include_last_offset, at least one entry)"
                } else {
                    ""
                }
            ),
        };
        let ends: Vec<usize> = offs
            .iter()
            .map(|&o| {
                usize::try_from(o)
                    .ok()
                    .filter(|&o| o <= len)
                    .ok_or_else(bad)
            })
            .collect::<Result<_>>()?;
        let b = if self.include_last_offset {
            ends.len().checked_sub(1).ok_or_else(bad)?
        } else {
            ends.len()
        };
        (0..b)
            .map(|i| {
                let (s, e) = (ends[i], ends.get(i + 1).copied().unwrap_or(len));
                if s <= e { Ok(s..e) } else { Err(bad()) }
            })
            .collect()
    }
}

impl Module for EmbeddingBag {
    table_module!(QuantizedEmbeddingBag, BAG);

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let (bags, weights) = self.bags(input)?;
        let d = self.table.dim;
        let mut out = vec![0.0f32; bags.len() * d];
        for (b, (bag, o)) in bags.iter().zip(out.chunks_exact_mut(d.max(1))).enumerate() {
            match self.mode {
                BagMode::Sum | BagMode::Mean => {
                    for (k, &r) in bag.iter().enumerate() {
                        let w = weights.as_ref().map(|w| w[b][k]);
                        self.table.accumulate(r, w, o);
                    }
                    if self.mode == BagMode::Mean && !bag.is_empty() {
                        let scale = 1.0f32 / bag.len() as f32;
                        o.iter_mut().for_each(|v| *v *= scale);
                    }
                }
                BagMode::Max => {
                    let mut row = vec![0.0f32; d];
                    for (k, &r) in bag.iter().enumerate() {
                        row.fill(0.0);
                        self.table.accumulate(r, None, &mut row);
                        for (v, &x) in o.iter_mut().zip(&row) {
                            if k == 0 || x > *v {
                                *v = x;
                            }
                        }
                    }
                }
            }
        }
        Ok(Value::F32(Tensor::new(&[bags.len(), d], out)?))
    }
}
