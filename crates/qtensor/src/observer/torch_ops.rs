//! The few ATen CPU kernels `HistogramObserver` is built from, reproduced with their exact
//! `f32` semantics (torch 2.15 with its AVX2 CPU capability, one thread): `torch.histc`,
//! `torch.linspace`, `torch.sum`'s cascade summation, `torch.cumsum` and
//! `torch.div(..., rounding_mode="floor")`.

/// Vector lanes of torch's AVX2 `Vectorized<float>` (the sum's partial accumulators).
const SUM_LANES: usize = 8;

/// `torch.linspace(start, end, steps)` on an `f32` tensor: element `i` is
/// `fma(step, i, start)` in the first half and `fma(-step, steps - 1 - i, end)` in the second
/// (the multiply-adds are contracted in torch's build), with `step = (end - start) / (steps - 1)`.
pub(crate) fn linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps)
        .map(|i| {
            if i < half {
                step.mul_add(i as f32, start)
            } else {
                (-step).mul_add((steps - 1 - i) as f32, end)
            }
        })
        .collect()
}

/// `torch.histc(x, bins, min, max)` on `f32` data (linear-interpolation binning).
///
/// The edges are `min`/`max` as doubles; equal edges are replaced by the data's own range and,
/// if that is a single value too, widened by ±1. Values outside `[min, max]` (and NaN) are not
/// counted; the last bin includes its right edge. Returns `None` where torch raises (a NaN or
/// infinite edge). Where torch's index arithmetic breaks down (an `f32` range of zero width or
/// wider than `f32::MAX`, where torch indexes out of bounds), the element goes to the nearest
/// valid bin, or bin 0 for a NaN position.
pub(crate) fn histc(x: &[f32], bins: usize, min: f32, max: f32) -> Option<Vec<f32>> {
    let (mut left, mut right) = (f64::from(min), f64::from(max));
    if left == right && !x.is_empty() {
        let (lo, hi) = super::uniform::aminmax(x);
        (left, right) = (f64::from(lo), f64::from(hi));
    }
    if left == right {
        left -= 1.0;
        right += 1.0;
    }
    if !(left.is_finite() && right.is_finite()) || left >= right {
        return None;
    }
    // The first and last linspace edges are exactly start and end.
    let (lo, hi) = (left as f32, right as f32);
    let mut hist = vec![0f32; bins];
    let last = bins as i64 - 1;
    for &v in x {
        if !(v >= lo && v <= hi) {
            continue;
        }
        let p = (v - lo) * bins as f32 / (hi - lo);
        let pos = if p.is_nan() { 0 } else { p as i64 };
        let pos = if pos == bins as i64 { pos - 1 } else { pos };
        hist[pos.clamp(0, last) as usize] += 1.0;
    }
    Some(hist)
}

/// ATen's `multi_row_sum` with 4 cascade levels over rows of `nrows` lanes-wide accumulators.
fn multi_row_sum<const W: usize>(rows: &[[[f32; W]; 4]]) -> [[f32; W]; 4] {
    const LEVELS: usize = 4;
    let size = rows.len();
    let ceil_log2 = if size <= 1 {
        0
    } else {
        usize::BITS - (size - 1).leading_zeros()
    } as usize;
    let level_power = (ceil_log2 / LEVELS).max(4);
    let level_step = 1usize << level_power;
    let level_mask = level_step - 1;
    let mut acc = [[[0f32; W]; 4]; LEVELS];
    let add = |a: &mut [f32; W], b: &[f32; W]| {
        for (x, y) in a.iter_mut().zip(b) {
            *x += *y;
        }
    };
    let mut i = 0;
    while i + level_step <= size {
        for _ in 0..level_step {
            for k in 0..4 {
                add(&mut acc[0][k], &rows[i][k]);
            }
            i += 1;
        }
        for j in 1..LEVELS {
            let lower = std::mem::replace(&mut acc[j - 1], [[0f32; W]; 4]);
            for (a, l) in acc[j].iter_mut().zip(&lower) {
                add(a, l);
            }
            if i & (level_mask << (j * level_power)) != 0 {
                break;
            }
        }
    }
    while i < size {
        for k in 0..4 {
            add(&mut acc[0][k], &rows[i][k]);
        }
        i += 1;
    }
    let [mut total, upper @ ..] = acc;
    for level in &upper {
        for (a, u) in total.iter_mut().zip(level) {
            add(a, u);
        }
    }
    total
}

/// ATen's `row_sum`: four interleaved partial sums of `W`-wide elements, then folded.
fn row_sum<const W: usize>(elems: &[[f32; W]]) -> [f32; W] {
    let size_ilp = elems.len() / 4;
    let rows: Vec<[[f32; W]; 4]> = (0..size_ilp)
        .map(|i| {
            [
                elems[4 * i],
                elems[4 * i + 1],
                elems[4 * i + 2],
                elems[4 * i + 3],
            ]
        })
        .collect();
    let mut partial = multi_row_sum(&rows);
    for e in &elems[size_ilp * 4..] {
        for (x, y) in partial[0].iter_mut().zip(e) {
            *x += *y;
        }
    }
    for k in 1..4 {
        let p = partial[k];
        for (x, y) in partial[0].iter_mut().zip(&p) {
            *x += *y;
        }
    }
    partial[0]
}

/// `torch.sum` of a contiguous 1-D `f32` tensor: ATen's cascade sum with 8-lane vector
/// accumulators (or scalar ones below 8 elements), in its exact order.
pub(crate) fn sum(x: &[f32]) -> f32 {
    if x.len() >= SUM_LANES {
        let vecs: Vec<[f32; SUM_LANES]> = x
            .chunks_exact(SUM_LANES)
            .map(|c| {
                let mut v = [0f32; SUM_LANES];
                v.copy_from_slice(c);
                v
            })
            .collect();
        let lanes = row_sum(&vecs);
        let mut acc = 0f32;
        for &v in &x[vecs.len() * SUM_LANES..] {
            acc += v;
        }
        for v in lanes {
            acc += v;
        }
        0.0 + acc
    } else {
        let elems: Vec<[f32; 1]> = x.iter().map(|&v| [v]).collect();
        0.0 + row_sum(&elems)[0]
    }
}

/// `torch.cumsum` of `f32` data: accumulated in `f64`, each prefix rounded to `f32`.
pub(crate) fn cumsum(x: &[f32]) -> Vec<f32> {
    let mut acc = 0f64;
    x.iter()
        .map(|&v| {
            acc += f64::from(v);
            acc as f32
        })
        .collect()
}

/// `torch.div(a, b, rounding_mode="floor")` for `f32` (c10's `div_floor_floating`).
pub(crate) fn div_floor(a: f32, b: f32) -> f32 {
    if b == 0.0 {
        return a / b;
    }
    let m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 && ((b < 0.0) != (m < 0.0)) {
        div -= 1.0;
    }
    if div != 0.0 {
        let mut floordiv = div.floor();
        if div - floordiv > 0.5 {
            floordiv += 1.0;
        }
        floordiv
    } else {
        0f32.copysign(a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_ends_and_halves() {
        let l = linspace(-1.0, 1.0, 5);
        assert_eq!(l, vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(linspace(3.0, 3.0, 1), vec![3.0]);
    }

    #[test]
    fn histc_counts_and_edges() {
        let h = histc(&[0.0, 0.5, 1.0, 2.0, -1.0, f32::NAN], 2, 0.0, 1.0).unwrap();
        assert_eq!(h, vec![1.0, 2.0]); // 1.0 lands in the last bin, 2.0/-1.0/NaN are dropped
        let h = histc(&[4.0, 4.0], 4, 4.0, 4.0).unwrap(); // edges widened to [3, 5]
        assert_eq!(h, vec![0.0, 0.0, 2.0, 0.0]);
        assert!(histc(&[1.0], 4, f32::NAN, 1.0).is_none());
    }

    #[test]
    fn sums_match_sequential_when_exact() {
        let x: Vec<f32> = (0..2048).map(|i| (i % 7) as f32).collect();
        assert_eq!(sum(&x), x.iter().sum::<f32>());
        assert_eq!(sum(&[1.0, 2.0, 3.0]), 6.0);
        assert_eq!(cumsum(&[1.0, 2.0, 3.0]), vec![1.0, 3.0, 6.0]);
    }

    #[test]
    fn floor_division() {
        assert_eq!(div_floor(7.0, 2.0), 3.0);
        assert_eq!(div_floor(-7.0, 2.0), -4.0);
        assert_eq!(div_floor(-0.0, 2.0), -0.0);
        assert!(div_floor(1.0, 0.0).is_infinite());
    }
}
