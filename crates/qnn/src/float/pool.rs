//! 2-d pooling on NCHW (or unbatched CHW) input: max, average and adaptive average.

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, f32_input_ref, saved, tensor};
use crate::error::{QnnError, Result};
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// `(planes, h, w)` of a 3-d or 4-d input.
fn planes(module: &'static str, shape: &[usize]) -> Result<(usize, usize, usize)> {
    match *shape {
        [n, c, h, w] => Ok((n * c, h, w)),
        [c, h, w] => Ok((c, h, w)),
        _ => Err(QnnError::WrongRank {
            module,
            expected: "3-d (C, H, W) or 4-d (N, C, H, W)",
            got: shape.to_vec(),
        }),
    }
}

/// The input shape with its last two dims replaced by `oh, ow`.
fn with_hw(shape: &[usize], oh: usize, ow: usize) -> Vec<usize> {
    let mut s = shape.to_vec();
    let n = s.len();
    s[n - 2] = oh;
    s[n - 1] = ow;
    s
}

/// PyTorch's `pooling_output_shape` for one axis, or `None` if the window does not fit.
fn pooled_len(input: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span = d * (k - 1) + 1;
    let num = (input + 2 * p).checked_sub(span)? + if ceil { s - 1 } else { 0 };
    let mut out = num / s + 1;
    if ceil && (out - 1) * s >= input + p {
        out -= 1;
    }
    Some(out)
}

/// Validated window parameters of one pooling layer (`[h, w]` pairs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
    ceil: bool,
}

impl Window {
    fn new(
        module: &'static str,
        k: [usize; 2],
        s: [usize; 2],
        p: [usize; 2],
        d: [usize; 2],
        ceil: bool,
    ) -> Result<Self> {
        if k.contains(&0) || s.contains(&0) || d.contains(&0) {
            return Err(QnnError::InvalidConfig {
                module,
                reason: format!(
                    "kernel_size {k:?}, stride {s:?} and dilation {d:?} must be positive"
                ),
            });
        }
        if p[0] > k[0] / 2 || p[1] > k[1] / 2 {
            return Err(QnnError::InvalidConfig {
                module,
                reason: format!("padding {p:?} must be at most half of kernel_size {k:?}"),
            });
        }
        Ok(Self { k, s, p, d, ceil })
    }

    fn out_hw(&self, module: &'static str, h: usize, w: usize) -> Result<(usize, usize)> {
        match (
            pooled_len(h, self.k[0], self.s[0], self.p[0], self.d[0], self.ceil),
            pooled_len(w, self.k[1], self.s[1], self.p[1], self.d[1], self.ceil),
        ) {
            (Some(oh), Some(ow)) if oh > 0 && ow > 0 => Ok((oh, ow)),
            _ => Err(QnnError::InvalidConfig {
                module,
                reason: format!(
                    "input {h}x{w} is smaller than the pooling window {:?} (padding {:?}, dilation {:?})",
                    self.k, self.p, self.d
                ),
            }),
        }
    }
}

/// The running maximum after seeing `v` at `idx`: `v` replaces `best` when greater, or when it
/// is the first NaN (NaN counts as maximal; ties keep the first). Selected with bit masks, not
/// branches: on random data the comparison is unpredictable.
#[inline(always)]
fn pick(best: f32, best_i: usize, v: f32, idx: usize) -> (f32, usize) {
    let take = v > best || (v.is_nan() && !best.is_nan());
    let m32 = (take as u32).wrapping_neg();
    let m = (take as usize).wrapping_neg();
    let b = best.to_bits() ^ ((best.to_bits() ^ v.to_bits()) & m32);
    (f32::from_bits(b), best_i ^ ((best_i ^ idx) & m))
}

/// One output row of 2x2 stride-2 max pooling from input rows `r0`, `r1`: the maxima into `out`
/// and each window's position of its maximum (0..4, row-major) into `code`, with selects the
/// compiler can vectorize (no data-dependent branches).
fn pool_rows_2x2(r0: &[f32], r1: &[f32], out: &mut [f32], code: &mut [usize]) {
    for (((o, c), a), b) in out
        .iter_mut()
        .zip(code.iter_mut())
        .zip(r0.chunks_exact(2))
        .zip(r1.chunks_exact(2))
    {
        let v = [a[0], a[1], b[0], b[1]];
        let any_nan = v.iter().fold(false, |acc, x| acc | x.is_nan());
        let m = v[0].max(v[1]).max(v[2].max(v[3]));
        let best = if any_nan { f32::NAN } else { m };
        // first position equal to the maximum (or the first NaN), by arithmetic, not branches
        // (`==` makes -0.0 and 0.0 tie, so the value is read back at the chosen position)
        let e = v.map(|x| usize::from((x == best) | (x.is_nan() & any_nan)));
        let at = (1 - e[0]) * (1 + (1 - e[1]) * (1 + (1 - e[2])));
        *o = v[at & 3];
        *c = at;
    }
}

/// Max pooling of `np` planes `hw[0] x hw[1]` when every window lies inside the plane (no
/// padding): no bounds tests, branch-free selects. Returns the outputs and the flat input index
/// of each output's maximum.
#[inline(never)]
fn max_pool_inside(
    x: &[f32],
    np: usize,
    hw: [usize; 2],
    out_hw: [usize; 2],
    k: [usize; 2],
    s: [usize; 2],
    d: [usize; 2],
) -> (Vec<f32>, Vec<usize>) {
    let ([h, w], [oh, ow]) = (hw, out_hw);
    let mut out = vec![0.0f32; np * oh * ow];
    let mut arg = vec![0usize; np * oh * ow];
    let plane_out = (oh * ow).max(1);
    for (pl, (o, a)) in out
        .chunks_exact_mut(plane_out)
        .zip(arg.chunks_exact_mut(plane_out))
        .enumerate()
    {
        let base = pl * h * w;
        let xs = &x[base..base + h * w];
        if k == [2, 2] && s == [2, 2] && d == [1, 1] {
            for oy in 0..oh {
                let r0 = &xs[2 * oy * w..2 * oy * w + 2 * ow];
                let r1 = &xs[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * ow];
                let orow = &mut o[oy * ow..(oy + 1) * ow];
                let arow = &mut a[oy * ow..(oy + 1) * ow];
                pool_rows_2x2(r0, r1, orow, arow);
                // window code (0..4, row-major in the window) -> flat input index
                for (ox, av) in arow.iter_mut().enumerate() {
                    let c = *av;
                    *av = base + (2 * oy + c / 2) * w + 2 * ox + c % 2;
                }
            }
            continue;
        }
        for oy in 0..oh {
            let orow = &mut o[oy * ow..(oy + 1) * ow];
            let arow = &mut a[oy * ow..(oy + 1) * ow];
            for (ox, (ov, av)) in orow.iter_mut().zip(arow.iter_mut()).enumerate() {
                let first = oy * s[0] * w + ox * s[1];
                let (mut best, mut best_i) = (xs[first], first);
                for i in 0..k[0] {
                    let row = first + i * d[0] * w;
                    for j in 0..k[1] {
                        let idx = row + j * d[1];
                        (best, best_i) = pick(best, best_i, xs[idx], idx);
                    }
                }
                *ov = best;
                *av = base + best_i;
            }
        }
    }
    (out, arg)
}

/// Max over each window; the gradient goes to the first maximal element (NaN counts as maximal).
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    win: Window,
    saved: Option<(Vec<usize>, Vec<usize>)>,
    training: bool,
}

impl MaxPool2d {
    /// Square window `kernel_size`, stride `kernel_size`, no padding (PyTorch's defaults).
    pub fn new(kernel_size: usize) -> Result<Self> {
        Self::with_options([kernel_size; 2], [kernel_size; 2], [0; 2], [1; 2], false)
    }

    /// Every option of `nn.MaxPool2d` (`[h, w]` pairs).
    pub fn with_options(
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil_mode: bool,
    ) -> Result<Self> {
        Ok(Self {
            win: Window::new(
                "MaxPool2d",
                kernel_size,
                stride,
                padding,
                dilation,
                ceil_mode,
            )?,
            saved: None,
            training: true,
        })
    }

    /// `(kernel_size, stride, padding, dilation, ceil_mode)`, as given to
    /// [`MaxPool2d::with_options`] (for conversion to the quantized layer).
    pub fn options(&self) -> ([usize; 2], [usize; 2], [usize; 2], [usize; 2], bool) {
        let w = self.win;
        (w.k, w.s, w.p, w.d, w.ceil)
    }

    /// Output and, per output element, the flat input index of its maximum.
    fn run(&self, x: &Tensor<f32>) -> Result<(Tensor<f32>, Vec<usize>)> {
        let (np, h, w) = planes("MaxPool2d", x.shape())?;
        let (oh, ow) = self.win.out_hw("MaxPool2d", h, w)?;
        let Window { k, s, p, d, .. } = self.win;
        let mut out = Vec::with_capacity(np * oh * ow);
        let mut arg = Vec::with_capacity(np * oh * ow);
        let inside = p == [0, 0]
            && (oh - 1) * s[0] + (k[0] - 1) * d[0] < h
            && (ow - 1) * s[1] + (k[1] - 1) * d[1] < w;
        if inside {
            let (out, arg) = max_pool_inside(x.data(), np, [h, w], [oh, ow], k, s, d);
            return Ok((tensor(&with_hw(x.shape(), oh, ow), out)?, arg));
        }
        for pl in 0..np {
            let base = pl * h * w;
            let xs = &x.data()[base..base + h * w];
            for oy in 0..oh {
                for ox in 0..ow {
                    let (mut best, mut best_i) = (f32::NEG_INFINITY, usize::MAX);
                    for i in 0..k[0] {
                        let Some(y) = (oy * s[0] + i * d[0]).checked_sub(p[0]).filter(|&y| y < h)
                        else {
                            continue;
                        };
                        for j in 0..k[1] {
                            let Some(xx) = (ox * s[1] + j * d[1])
                                .checked_sub(p[1])
                                .filter(|&xx| xx < w)
                            else {
                                continue;
                            };
                            let v = xs[y * w + xx];
                            if best_i == usize::MAX || v > best || v.is_nan() && !best.is_nan() {
                                best = v;
                                best_i = y * w + xx;
                            }
                        }
                    }
                    out.push(best);
                    arg.push(base + best_i.min(h * w - 1));
                }
            }
        }
        Ok((tensor(&with_hw(x.shape(), oh, ow), out)?, arg))
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        Ok(self.run(x)?.0)
    }
}

impl Module for MaxPool2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::MaxPool2d
    }

    fn extra_repr(&self) -> String {
        use crate::repr::{py_bool, py_int_or_pair};
        let w = self.win;
        format!(
            "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
            py_int_or_pair(w.k),
            py_int_or_pair(w.s),
            py_int_or_pair(w.p),
            py_int_or_pair(w.d),
            py_bool(w.ceil)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input_ref(input, "MaxPool2d")?;
        let (y, arg) = self.run(&x)?;
        self.saved = Some((x.shape().to_vec(), arg));
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let (in_shape, arg) = saved(&self.saved, "MaxPool2d")?;
        let (_, h, w) = planes("MaxPool2d", in_shape)?;
        let (oh, ow) = self.win.out_hw("MaxPool2d", h, w)?;
        let g = f32_grad(grad_output, "MaxPool2d", &with_hw(in_shape, oh, ow))?;
        let mut dx = vec![0.0f32; in_shape.iter().product()];
        for (&i, &gv) in arg.iter().zip(g.data()) {
            dx[i] += gv;
        }
        Ok(Value::F32(tensor(in_shape, dx)?))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Mean over each window (PyTorch's `count_include_pad` and `divisor_override` rules).
#[derive(Clone, Debug)]
pub struct AvgPool2d {
    win: Window,
    count_include_pad: bool,
    divisor_override: Option<usize>,
    in_shape: Option<Vec<usize>>,
    training: bool,
}

impl AvgPool2d {
    /// Square window `kernel_size`, stride `kernel_size`, no padding (PyTorch's defaults).
    pub fn new(kernel_size: usize) -> Result<Self> {
        Self::with_options(
            [kernel_size; 2],
            [kernel_size; 2],
            [0; 2],
            false,
            true,
            None,
        )
    }

    /// Every option of `nn.AvgPool2d` (`[h, w]` pairs).
    pub fn with_options(
        kernel_size: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: Option<usize>,
    ) -> Result<Self> {
        if divisor_override == Some(0) {
            return Err(QnnError::InvalidConfig {
                module: "AvgPool2d",
                reason: "divisor_override must be positive, got 0".into(),
            });
        }
        Ok(Self {
            win: Window::new("AvgPool2d", kernel_size, stride, padding, [1; 2], ceil_mode)?,
            count_include_pad,
            divisor_override,
            in_shape: None,
            training: true,
        })
    }

    /// Calls `f(plane, out_index, input_rows, input_cols, divisor)` for every output element.
    fn windows(
        &self,
        shape: &[usize],
        mut f: impl FnMut(usize, usize, std::ops::Range<usize>, std::ops::Range<usize>, f32),
    ) -> Result<(usize, usize)> {
        let (np, h, w) = planes("AvgPool2d", shape)?;
        let (oh, ow) = self.win.out_hw("AvgPool2d", h, w)?;
        let Window { k, s, p, .. } = self.win;
        for pl in 0..np {
            for oy in 0..oh {
                for ox in 0..ow {
                    // window in padded coordinates, clipped to the padded input
                    let (y0, x0) = (oy * s[0], ox * s[1]);
                    let (y1, x1) = ((y0 + k[0]).min(h + 2 * p[0]), (x0 + k[1]).min(w + 2 * p[1]));
                    let pool = (y1 - y0) * (x1 - x0);
                    let ys = y0.max(p[0]) - p[0]..y1.min(h + p[0]).max(p[0]) - p[0];
                    let xs = x0.max(p[1]) - p[1]..x1.min(w + p[1]).max(p[1]) - p[1];
                    let div = match self.divisor_override {
                        Some(d) => d,
                        None if self.count_include_pad => pool,
                        None => ys.len() * xs.len(),
                    };
                    f(pl, (pl * oh + oy) * ow + ox, ys, xs, div.max(1) as f32);
                }
            }
        }
        Ok((oh, ow))
    }

    /// `(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)`, as
    /// given to [`AvgPool2d::with_options`] (for conversion to the quantized layer).
    #[allow(clippy::type_complexity)]
    pub fn options(
        &self,
    ) -> (
        [usize; 2],
        [usize; 2],
        [usize; 2],
        bool,
        bool,
        Option<usize>,
    ) {
        let w = self.win;
        (
            w.k,
            w.s,
            w.p,
            w.ceil,
            self.count_include_pad,
            self.divisor_override,
        )
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (_, h, w) = planes("AvgPool2d", x.shape())?;
        let (oh, ow) = self.win.out_hw("AvgPool2d", h, w)?;
        let mut out = vec![0.0f32; x.numel() / (h * w).max(1) * oh * ow];
        let xd = x.data();
        self.windows(x.shape(), |pl, o, ys, xs, div| {
            let mut sum = 0.0f32;
            for y in ys {
                for xx in xs.clone() {
                    sum += xd[(pl * h + y) * w + xx];
                }
            }
            out[o] = sum / div;
        })?;
        tensor(&with_hw(x.shape(), oh, ow), out)
    }
}

impl Module for AvgPool2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::AvgPool2d
    }

    fn extra_repr(&self) -> String {
        use crate::repr::py_int_or_pair;
        let w = self.win;
        format!(
            "kernel_size={}, stride={}, padding={}",
            py_int_or_pair(w.k),
            py_int_or_pair(w.s),
            py_int_or_pair(w.p)
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, "AvgPool2d")?;
        let y = self.apply(&x)?;
        self.in_shape = Some(x.shape().to_vec());
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let in_shape = saved(&self.in_shape, "AvgPool2d")?.clone();
        let (_, h, w) = planes("AvgPool2d", &in_shape)?;
        let (oh, ow) = self.win.out_hw("AvgPool2d", h, w)?;
        let g = f32_grad(grad_output, "AvgPool2d", &with_hw(&in_shape, oh, ow))?;
        let mut dx = vec![0.0f32; in_shape.iter().product()];
        let gd = g.data();
        self.windows(&in_shape, |pl, o, ys, xs, div| {
            let v = gd[o] / div;
            for y in ys {
                for xx in xs.clone() {
                    dx[(pl * h + y) * w + xx] += v;
                }
            }
        })?;
        Ok(Value::F32(tensor(&in_shape, dx)?))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

/// Average over `output_size` adaptive windows: output cell `i` of an axis of length `n` covers
/// `[floor(i n / out), ceil((i + 1) n / out))`.
#[derive(Clone, Debug)]
pub struct AdaptiveAvgPool2d {
    output_size: [usize; 2],
    in_shape: Option<Vec<usize>>,
    training: bool,
}

impl AdaptiveAvgPool2d {
    /// Output `[height, width]`, both positive.
    pub fn new(output_size: [usize; 2]) -> Result<Self> {
        if output_size.contains(&0) {
            return Err(QnnError::InvalidConfig {
                module: "AdaptiveAvgPool2d",
                reason: format!("output_size {output_size:?} must be positive"),
            });
        }
        Ok(Self {
            output_size,
            in_shape: None,
            training: true,
        })
    }

    /// The output size `[height, width]`.
    pub fn output_size(&self) -> [usize; 2] {
        self.output_size
    }

    fn range(i: usize, n: usize, out: usize) -> std::ops::Range<usize> {
        (i * n / out)..((i + 1) * n).div_ceil(out)
    }

    fn windows(
        &self,
        shape: &[usize],
        mut f: impl FnMut(usize, usize, std::ops::Range<usize>, std::ops::Range<usize>),
    ) -> Result<()> {
        let (np, h, w) = planes("AdaptiveAvgPool2d", shape)?;
        let [oh, ow] = self.output_size;
        for pl in 0..np {
            for oy in 0..oh {
                for ox in 0..ow {
                    f(
                        pl,
                        (pl * oh + oy) * ow + ox,
                        Self::range(oy, h, oh),
                        Self::range(ox, w, ow),
                    );
                }
            }
        }
        Ok(())
    }

    /// The forward computation on a tensor, without saving anything for backward.
    pub fn apply(&self, x: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (np, h, w) = planes("AdaptiveAvgPool2d", x.shape())?;
        let [oh, ow] = self.output_size;
        let mut out = vec![0.0f32; np * oh * ow];
        let xd = x.data();
        self.windows(x.shape(), |pl, o, ys, xs| {
            let count = (ys.len() * xs.len()).max(1) as f32;
            let mut sum = 0.0f32;
            for y in ys {
                for xx in xs.clone() {
                    sum += xd[(pl * h + y) * w + xx];
                }
            }
            out[o] = sum / count;
        })?;
        tensor(&with_hw(x.shape(), oh, ow), out)
    }
}

impl Module for AdaptiveAvgPool2d {
    fn kind(&self) -> ModuleKind {
        ModuleKind::AdaptiveAvgPool2d
    }

    fn extra_repr(&self) -> String {
        format!(
            "output_size={}",
            crate::repr::py_int_or_pair(self.output_size())
        )
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, "AdaptiveAvgPool2d")?;
        let y = self.apply(&x)?;
        self.in_shape = Some(x.shape().to_vec());
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let in_shape = saved(&self.in_shape, "AdaptiveAvgPool2d")?.clone();
        let (_, h, w) = planes("AdaptiveAvgPool2d", &in_shape)?;
        let [oh, ow] = self.output_size;
        let g = f32_grad(
            grad_output,
            "AdaptiveAvgPool2d",
            &with_hw(&in_shape, oh, ow),
        )?;
        let mut dx = vec![0.0f32; in_shape.iter().product()];
        let gd = g.data();
        self.windows(&in_shape, |pl, o, ys, xs| {
            let v = gd[o] / (ys.len() * xs.len()).max(1) as f32;
            for y in ys {
                for xx in xs.clone() {
                    dx[(pl * h + y) * w + xx] += v;
                }
            }
        })?;
        Ok(Value::F32(tensor(&in_shape, dx)?))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
