//! Quantized integer dtypes and PyTorch's `calculate_qmin_qmax`.

use crate::error::{QTensorError, Result};

/// A quantized integer dtype, as in `torch.quint8` etc.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QDType {
    /// Unsigned 8-bit, range 0..=255 (activations).
    QUInt8,
    /// Signed 8-bit, range -128..=127 (weights).
    QInt8,
    /// Signed 32-bit (bias).
    QInt32,
    /// Unsigned 4-bit, two values per byte, low nibble first (range 0..=15).
    QUInt4x2,
}

impl QDType {
    /// Smallest storable value.
    pub fn qmin(self) -> i64 {
        match self {
            QDType::QUInt8 | QDType::QUInt4x2 => 0,
            QDType::QInt8 => -128,
            QDType::QInt32 => i64::from(i32::MIN),
        }
    }

    /// Largest storable value.
    pub fn qmax(self) -> i64 {
        match self {
            QDType::QUInt8 => 255,
            QDType::QInt8 => 127,
            QDType::QInt32 => i64::from(i32::MAX),
            QDType::QUInt4x2 => 15,
        }
    }

    /// Bits per value.
    pub fn bits(self) -> u32 {
        match self {
            QDType::QUInt8 | QDType::QInt8 => 8,
            QDType::QInt32 => 32,
            QDType::QUInt4x2 => 4,
        }
    }

    /// PyTorch's name without the `torch.` prefix.
    pub fn name(self) -> &'static str {
        match self {
            QDType::QUInt8 => "quint8",
            QDType::QInt8 => "qint8",
            QDType::QInt32 => "qint32",
            QDType::QUInt4x2 => "quint4x2",
        }
    }

    /// `(qmin, qmax)` as `i32` bounds (every dtype range fits).
    pub fn range_i32(self) -> (i32, i32) {
        // Every dtype's range fits in i32.
        (self.qmin() as i32, self.qmax() as i32)
    }
}

impl std::fmt::Display for QDType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// PyTorch's `torch.ao.quantization.utils.calculate_qmin_qmax` (with the observer's
/// `_validate_qmin_qmax` check on a custom range).
///
/// * `custom = Some((qmin, qmax))`: must satisfy `qmin <= 0 <= qmax` and `qmin < qmax`; for
///   qint8 the range may hold at most 256 values, for qint32 at most 2^32. With
///   `reduce_range` both ends are halved by floor division (`-127 -> -64`, `255 -> 127`).
/// * `custom = None`: the default 8-bit ranges, halved for `reduce_range`; qint32 is
///   `[-2^31, 2^31 - 1]` and quint4x2 `[0, 15]` whatever `reduce_range` says.
///
/// ```
/// use qtensor::{calculate_qmin_qmax, QDType};
/// assert_eq!(calculate_qmin_qmax(QDType::QInt8, true, Some((-127, 127))).unwrap(), (-64, 63));
/// assert_eq!(calculate_qmin_qmax(QDType::QUInt8, true, None).unwrap(), (0, 127));
/// ```
pub fn calculate_qmin_qmax(
    dtype: QDType,
    reduce_range: bool,
    custom: Option<(i64, i64)>,
) -> Result<(i64, i64)> {
    let Some((qmin, qmax)) = custom else {
        return Ok(match (dtype, reduce_range) {
            (QDType::QInt8, false) => (-128, 127),
            (QDType::QInt8, true) => (-64, 63),
            (QDType::QUInt8, false) => (0, 255),
            (QDType::QUInt8, true) => (0, 127),
            (QDType::QInt32, _) => (dtype.qmin(), dtype.qmax()),
            (QDType::QUInt4x2, _) => (0, 15),
        });
    };
    let invalid = |reason| QTensorError::InvalidQuantRange { qmin, qmax, reason };
    if !(qmin <= 0 && 0 <= qmax) {
        return Err(invalid("a custom quantization range must include 0"));
    }
    if qmin >= qmax {
        return Err(invalid("qmin must be strictly less than qmax"));
    }
    let len = i128::from(qmax) - i128::from(qmin) + 1;
    match dtype {
        QDType::QInt8 if len > 256 => {
            return Err(invalid("the range exceeds the 8-bit maximum of 256 values"));
        }
        QDType::QInt32 if len > 1 << 32 => {
            return Err(invalid(
                "the range exceeds the 32-bit maximum of 2^32 values",
            ));
        }
        _ => {}
    }
    Ok(if reduce_range {
        (qmin.div_euclid(2), qmax.div_euclid(2))
    } else {
        (qmin, qmax)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ranges() {
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt8, false, None),
            Ok((-128, 127))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt8, true, None),
            Ok((-64, 63))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QUInt8, false, None),
            Ok((0, 255))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt32, true, None),
            Ok((-2147483648, 2147483647))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QUInt4x2, true, None),
            Ok((0, 15))
        );
    }

    #[test]
    fn custom_ranges_floor_halve() {
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt8, true, Some((-127, 127))),
            Ok((-64, 63))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QUInt8, true, Some((0, 255))),
            Ok((0, 127))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt8, true, Some((-3, 5))),
            Ok((-2, 2))
        );
        assert_eq!(
            calculate_qmin_qmax(QDType::QInt8, false, Some((-7, 7))),
            Ok((-7, 7))
        );
    }

    #[test]
    fn custom_ranges_rejected() {
        assert!(calculate_qmin_qmax(QDType::QUInt8, false, Some((1, 255))).is_err());
        assert!(calculate_qmin_qmax(QDType::QUInt8, false, Some((0, 0))).is_err());
        assert!(calculate_qmin_qmax(QDType::QInt8, false, Some((-128, 128))).is_err());
        assert!(calculate_qmin_qmax(QDType::QUInt8, false, Some((0, 1000))).is_ok());
    }
}
