//! `nn.Embedding` and `nn.EmbeddingBag`: rows of a weight table selected by i32 indices.
//! After [`Module::half`] the table lives in f16 and only the selected rows are widened.

use half::f16;
use qkernels::float::widen_f16_slice;
use qtensor::Tensor;

use super::half_weight::{backward_on_half, placeholder, round_to_f16, visit_half, visit_half_mut};
use super::util::{f32_grad, saved, tensor};
use crate::error::{QnnError, Result};
use crate::init::Rng;
use crate::module::{Module, ModuleKind};
use crate::param::Param;
use crate::value::Value;

/// Checks every index against `size`; returns them as usize.
fn check_indices(module: &'static str, idx: &[i32], size: usize) -> Result<Vec<usize>> {
    idx.iter()
        .enumerate()
        .map(|(position, &i)| {
            usize::try_from(i)
                .ok()
                .filter(|&u| u < size)
                .ok_or(QnnError::IndexOutOfRange {
                    module,
                    position,
                    index: i64::from(i),
                    size,
                })
        })
        .collect()
}

/// The table a forward reads rows from: f32, or f16 after `half()`.
enum Rows<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
}

impl<'a> Rows<'a> {
    fn of(weight: &'a Param, half: Option<&'a Tensor<f16>>) -> Self {
        match half {
            Some(h) => Rows::F16(h.data()),
            None => Rows::F32(weight.value.data()),
        }
    }

    /// Row `i` (of width `d`) into `out` (exactly, f16 widens losslessly).
    fn read(&self, i: usize, d: usize, out: &mut [f32]) {
        match self {
            Rows::F32(w) => out.copy_from_slice(&w[i * d..(i + 1) * d]),
            Rows::F16(w) => widen_f16_slice(&w[i * d..(i + 1) * d], out),
        }
    }
}

/// The shape of the table, wherever it lives.
fn table_shape<'a>(weight: &'a Param, half: Option<&'a Tensor<f16>>) -> &'a [usize] {
    half.map_or(weight.shape(), |h| h.shape())
}

/// A `[num_embeddings, embedding_dim]` table; the output for indices of shape `S` is
/// `S + [embedding_dim]`. `backward` adds the gradient rows into `weight.grad` (except at
/// `padding_idx`) and returns [`Value::no_grad`] (indices have no gradient).
#[derive(Clone, Debug)]
pub struct Embedding {
    /// The table, `[num_embeddings, embedding_dim]` (an empty placeholder after `half()`).
    pub weight: Param,
    weight_f16: Option<Tensor<f16>>,
    padding_idx: Option<usize>,
    indices: Option<(Vec<usize>, Vec<usize>)>,
    training: bool,
}

impl Embedding {
    /// A table drawn from N(0, 1) (PyTorch's default); the `padding_idx` row is zero.
    pub fn new(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        rng: &mut Rng,
    ) -> Result<Self> {
        let w = Tensor::from_fn(&[num_embeddings, embedding_dim], |_| rng.normal());
        let mut e = Self::from_tensor(w, padding_idx)?;
        if let Some(p) = padding_idx {
            e.weight.value.data_mut()[p * embedding_dim..(p + 1) * embedding_dim].fill(0.0);
        }
        Ok(e)
    }

    /// A layer over the given `[num_embeddings, embedding_dim]` table (used as is).
    pub fn from_tensor(weight: Tensor<f32>, padding_idx: Option<usize>) -> Result<Self> {
        let &[n, _] = weight.shape() else {
            return Err(QnnError::WrongRank {
                module: "Embedding",
                expected: "2-d [num_embeddings, embedding_dim] weight",
                got: weight.shape().to_vec(),
            });
        };
        if let Some(p) = padding_idx.filter(|&p| p >= n) {
            return Err(QnnError::InvalidConfig {
                module: "Embedding",
                reason: format!("padding_idx {p} is out of range for {n} embeddings"),
            });
        }
        Ok(Self {
            weight: Param::new(weight),
            weight_f16: None,
            padding_idx,
            indices: None,
            training: true,
        })
    }

    /// The row whose gradient is never accumulated (PyTorch's `padding_idx`), if any.
    pub fn padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }

    fn dims(&self) -> Result<(usize, usize)> {
        let shape = table_shape(&self.weight, self.weight_f16.as_ref());
        match *shape {
            [n, d] => Ok((n, d)),
            _ => Err(QnnError::WrongRank {
                module: "Embedding",
                expected: "2-d [num_embeddings, embedding_dim] weight",
                got: shape.to_vec(),
            }),
        }
    }
}

impl Module for Embedding {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Embedding
    }

    fn extra_repr(&self) -> String {
        let shape = table_shape(&self.weight, self.weight_f16.as_ref());
        let (n, d) = (
            shape.first().copied().unwrap_or(0),
            shape.get(1).copied().unwrap_or(0),
        );
        match self.padding_idx {
            Some(p) => format!("{n}, {d}, padding_idx={p}"),
            None => format!("{n}, {d}"),
        }
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        (name == "weight" && self.weight_f16.is_some()).then_some(crate::repr::TensorDType::F16)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let idx_t = input.as_i32("Embedding")?;
        let (n, d) = self.dims()?;
        let idx = check_indices("Embedding", idx_t.data(), n)?;
        let rows = Rows::of(&self.weight, self.weight_f16.as_ref());
        let mut out = vec![0.0f32; idx.len() * d];
        if d > 0 {
            for (&i, o) in idx.iter().zip(out.chunks_exact_mut(d)) {
                rows.read(i, d, o);
            }
        }
        let mut shape = idx_t.shape().to_vec();
        shape.push(d);
        self.indices = Some((idx, shape.clone()));
        Ok(Value::F32(tensor(&shape, out)?))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        if self.weight_f16.is_some() {
            return Err(backward_on_half("Embedding"));
        }
        let (idx, shape) = saved(&self.indices, "Embedding")?;
        let g = f32_grad(grad_output, "Embedding", shape)?;
        let (_, d) = self.dims()?;
        let dw = self.weight.grad.data_mut();
        for (&i, row) in idx.iter().zip(g.data().chunks_exact(d.max(1))) {
            if Some(i) != self.padding_idx {
                for (a, b) in dw[i * d..(i + 1) * d].iter_mut().zip(row) {
                    *a += b;
                }
            }
        }
        Ok(Value::no_grad())
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        match &self.weight_f16 {
            Some(h) => visit_half("weight", h, f),
            None => f("weight", &self.weight),
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.weight_f16 {
            Some(h) => visit_half_mut("weight", h, f),
            None => f("weight", &mut self.weight),
        }
    }

    /// Moves the table to f16 (PyTorch's `.half()`); the layer is inference-only after.
    fn half(&mut self) -> Result<()> {
        if self.weight_f16.is_none() {
            self.weight_f16 = Some(round_to_f16(&self.weight.value)?);
            self.weight = placeholder();
            self.indices = None;
        }
        Ok(())
    }

    fn param_bytes(&self) -> usize {
        match &self.weight_f16 {
            Some(h) => 2 * h.numel(),
            None => 4 * self.weight.value.numel(),
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// How [`EmbeddingBag`] reduces the rows of a bag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BagMode {
    /// Sum of the rows.
    Sum,
    /// Mean of the rows (PyTorch's default).
    Mean,
    /// Element-wise maximum of the rows; the gradient goes to the (first) maximal row.
    Max,
}

/// What forward saved: per bag, its indices, and for `Max` the chosen row per column.
#[derive(Clone, Debug)]
struct Bags {
    bags: Vec<Vec<usize>>,
    argmax: Vec<usize>,
}

/// Reduces bags of embedding rows. Input: an i32 `[B, L]` tensor (B bags of L indices), or
/// `Value::Tuple([indices (1-d), offsets (1-d, B starts)])` as PyTorch's `(input, offsets)`.
/// Output `[B, embedding_dim]`; an empty bag gives zeros. `backward` returns [`Value::no_grad`].
#[derive(Clone, Debug)]
pub struct EmbeddingBag {
    /// The table, `[num_embeddings, embedding_dim]` (an empty placeholder after `half()`).
    pub weight: Param,
    weight_f16: Option<Tensor<f16>>,
    mode: BagMode,
    saved: Option<Bags>,
    training: bool,
}

impl EmbeddingBag {
    /// A table drawn from N(0, 1) (PyTorch's default).
    pub fn new(num_embeddings: usize, embedding_dim: usize, mode: BagMode, rng: &mut Rng) -> Self {
        let w = Tensor::from_fn(&[num_embeddings, embedding_dim], |_| rng.normal());
        Self {
            weight: Param::new(w),
            weight_f16: None,
            mode,
            saved: None,
            training: true,
        }
    }

    /// A layer over the given `[num_embeddings, embedding_dim]` table.
    pub fn from_tensor(weight: Tensor<f32>, mode: BagMode) -> Result<Self> {
        if weight.ndim() != 2 {
            return Err(QnnError::WrongRank {
                module: "EmbeddingBag",
                expected: "2-d [num_embeddings, embedding_dim] weight",
                got: weight.shape().to_vec(),
            });
        }
        Ok(Self {
            weight: Param::new(weight),
            weight_f16: None,
            mode,
            saved: None,
            training: true,
        })
    }

    /// The reduction.
    pub fn mode(&self) -> BagMode {
        self.mode
    }

    fn bags(&self, input: &Value, n: usize) -> Result<Vec<Vec<usize>>> {
        const NAME: &str = "EmbeddingBag";
        match input {
            Value::I32(t) if t.ndim() == 2 => {
                let l = t.shape()[1];
                let idx = check_indices(NAME, t.data(), n)?;
                Ok(if l == 0 {
                    vec![Vec::new(); t.shape()[0]]
                } else {
                    idx.chunks(l).map(<[usize]>::to_vec).collect()
                })
            }
            Value::I32(t) => Err(QnnError::WrongRank {
                module: NAME,
                expected: "2-d (B, L) indices, or (indices, offsets)",
                got: t.shape().to_vec(),
            }),
            Value::Tuple(parts) if parts.len() == 2 => {
                let (idx_t, off_t) = (parts[0].as_i32(NAME)?, parts[1].as_i32(NAME)?);
                if idx_t.ndim() != 1 || off_t.ndim() != 1 {
                    return Err(QnnError::WrongRank {
                        module: NAME,
                        expected: "1-d indices and 1-d offsets",
                        got: idx_t.shape().to_vec(),
                    });
                }
                let idx = check_indices(NAME, idx_t.data(), n)?;
                let offs = off_t.data();
                let mut bags = Vec::with_capacity(offs.len());
                for (b, &start) in offs.iter().enumerate() {
                    let end = offs.get(b + 1).copied().unwrap_or(idx.len() as i32);
                    let (s, e) = (usize::try_from(start).ok(), usize::try_from(end).ok());
                    match (s, e) {
                        (Some(s), Some(e)) if s <= e && e <= idx.len() => {
                            bags.push(idx[s..e].to_vec())
                        }
                        _ => {
                            return Err(QnnError::InvalidConfig {
                                module: NAME,
                                reason: format!(
                                    "offsets {offs:?} must be non-decreasing and within the {} indices",
                                    idx.len()
                                ),
                            });
                        }
                    }
                }
                Ok(bags)
            }
            other => Err(QnnError::WrongValueKind {
                module: NAME,
                expected: "i32 indices or (indices, offsets) tuple",
                got: other.kind_name(),
            }),
        }
    }
}

impl Module for EmbeddingBag {
    fn kind(&self) -> ModuleKind {
        ModuleKind::EmbeddingBag
    }

    fn extra_repr(&self) -> String {
        let shape = table_shape(&self.weight, self.weight_f16.as_ref());
        let (n, d) = (
            shape.first().copied().unwrap_or(0),
            shape.get(1).copied().unwrap_or(0),
        );
        let mode = match self.mode {
            BagMode::Sum => "sum",
            BagMode::Mean => "mean",
            BagMode::Max => "max",
        };
        format!("{n}, {d}, mode='{mode}'")
    }

    fn param_dtype(&self, name: &str) -> Option<crate::repr::TensorDType> {
        (name == "weight" && self.weight_f16.is_some()).then_some(crate::repr::TensorDType::F16)
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let shape = table_shape(&self.weight, self.weight_f16.as_ref());
        let &[n, d] = shape else {
            return Err(QnnError::WrongRank {
                module: "EmbeddingBag",
                expected: "2-d weight",
                got: shape.to_vec(),
            });
        };
        let bags = self.bags(input, n)?;
        let rows = Rows::of(&self.weight, self.weight_f16.as_ref());
        let mut row = vec![0.0f32; d];
        let mut out = vec![0.0f32; bags.len() * d];
        let mut argmax = vec![usize::MAX; bags.len() * d];
        for (b, bag) in bags.iter().enumerate() {
            let o = &mut out[b * d..(b + 1) * d];
            let best = &mut argmax[b * d..(b + 1) * d];
            for &i in bag {
                rows.read(i, d, &mut row);
                match self.mode {
                    BagMode::Sum | BagMode::Mean => {
                        o.iter_mut().zip(&row).for_each(|(a, v)| *a += v);
                    }
                    BagMode::Max => {
                        for ((slot, arg), &v) in o.iter_mut().zip(best.iter_mut()).zip(&row) {
                            if *arg == usize::MAX || v > *slot {
                                *slot = v;
                                *arg = i;
                            }
                        }
                    }
                }
            }
            if self.mode == BagMode::Mean && !bag.is_empty() {
                o.iter_mut().for_each(|a| *a /= bag.len() as f32);
            }
        }
        let shape = [bags.len(), d];
        self.saved = Some(Bags { bags, argmax });
        Ok(Value::F32(tensor(&shape, out)?))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        if self.weight_f16.is_some() {
            return Err(backward_on_half("EmbeddingBag"));
        }
        let s = saved(&self.saved, "EmbeddingBag")?;
        let d = self.weight.shape().get(1).copied().unwrap_or(0);
        let g = f32_grad(grad_output, "EmbeddingBag", &[s.bags.len(), d])?;
        let dw = self.weight.grad.data_mut();
        for (b, bag) in s.bags.iter().enumerate() {
            let gb = &g.data()[b * d..(b + 1) * d];
            match self.mode {
                BagMode::Sum | BagMode::Mean => {
                    let k = if self.mode == BagMode::Mean {
                        1.0 / bag.len().max(1) as f32
                    } else {
                        1.0
                    };
                    for &i in bag {
                        dw[i * d..(i + 1) * d]
                            .iter_mut()
                            .zip(gb)
                            .for_each(|(a, v)| *a += k * v);
                    }
                }
                BagMode::Max => {
                    for (j, &v) in gb.iter().enumerate() {
                        if let Some(i) = Some(s.argmax[b * d + j]).filter(|&i| i != usize::MAX) {
                            dw[i * d + j] += v;
                        }
                    }
                }
            }
        }
        Ok(Value::no_grad())
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        match &self.weight_f16 {
            Some(h) => visit_half("weight", h, f),
            None => f("weight", &self.weight),
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        match &mut self.weight_f16 {
            Some(h) => visit_half_mut("weight", h, f),
            None => f("weight", &mut self.weight),
        }
    }

    /// Moves the table to f16 (PyTorch's `.half()`); the layer is inference-only after.
    fn half(&mut self) -> Result<()> {
        if self.weight_f16.is_none() {
            self.weight_f16 = Some(round_to_f16(&self.weight.value)?);
            self.weight = placeholder();
            self.saved = None;
        }
        Ok(())
    }

    fn param_bytes(&self) -> usize {
        match &self.weight_f16 {
            Some(h) => 2 * h.numel(),
            None => 4 * self.weight.value.numel(),
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
