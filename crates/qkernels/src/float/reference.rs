//! The naive oracle the float GEMM is tested against: a triple loop accumulating in f32.

use super::call::check_shapes;
use super::error::Result;
use super::view::{MatMut, MatRef};

/// `C = alpha * A * B + beta * C` by the textbook triple loop (`beta == 0` does not read `C`).
///
/// Slow and simple on purpose; results differ from [`super::sgemm`] only by summation order.
pub fn reference_sgemm(
    alpha: f32,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    beta: f32,
    mut c: MatMut<'_, f32>,
) -> Result<()> {
    let (m, k, n) = check_shapes(&a, &b, &c)?;
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f32;
            for p in 0..k {
                let x = a.get(i, p).copied().unwrap_or(0.0);
                let y = b.get(p, j).copied().unwrap_or(0.0);
                acc += x * y;
            }
            if let Some(dst) = c.get_mut(i, j) {
                *dst = if beta == 0.0 {
                    alpha * acc
                } else {
                    alpha * acc + beta * *dst
                };
            }
        }
    }
    Ok(())
}
