//! The observer buffers a `FakeQuantize` exposes under `activation_post_process.` (`eps`,
//! `min_val`, `max_val`, as PyTorch's min/max observers register them, and `histogram` for the
//! histogram observer), kept in step with the observer after every observation and written
//! back into a fresh observer after loading.

use qtensor::Tensor;
use qtensor::observer::{HistogramObserver, Observer, ObserverSpec};

use crate::error::{QnnError, Result};
use crate::param::{BufferMut, BufferRef};

/// Mirrors of a min/max or histogram observer's buffers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ObserverState {
    eps: Tensor<f32>,
    min_val: Tensor<f32>,
    max_val: Tensor<f32>,
    ch_axis: Option<usize>,
    /// The histogram observer's `histogram` buffer (`[bins]`), `None` for min/max observers.
    histogram: Option<Tensor<f32>>,
}

impl ObserverState {
    /// Fresh buffers for the min/max observers (0-d `inf` / `-inf` per tensor, `[0]` per
    /// channel) and the histogram observer (its range and `bins` zero counts); `None` for
    /// observers without state.
    pub(crate) fn for_spec(spec: &ObserverSpec, eps: f32) -> Option<Self> {
        let histogram = match spec {
            ObserverSpec::Histogram { bins, .. } => Some(Tensor::zeros(&[*bins])),
            _ => None,
        };
        let ch_axis = match spec {
            ObserverSpec::MinMax(_)
            | ObserverSpec::MovingAverageMinMax { .. }
            | ObserverSpec::Histogram { .. } => None,
            ObserverSpec::PerChannelMinMax { ch_axis, .. }
            | ObserverSpec::MovingAveragePerChannelMinMax { ch_axis, .. } => Some(*ch_axis),
            _ => return None,
        };
        let (min_val, max_val) = match ch_axis {
            None => (
                Tensor::scalar(f32::INFINITY),
                Tensor::scalar(f32::NEG_INFINITY),
            ),
            Some(_) => (Tensor::zeros(&[0]), Tensor::zeros(&[0])),
        };
        Some(Self {
            eps: Tensor::from_fn(&[1], |_| eps),
            min_val,
            max_val,
            ch_axis,
            histogram,
        })
    }

    /// Copies the observer's running range (and histogram) into the mirrors.
    pub(crate) fn refresh(&mut self, observer: &dyn Observer) {
        if let Some(h) = observer.as_any().downcast_ref::<HistogramObserver>() {
            let (mn, mx) = h.range();
            if let Ok(t) = Tensor::new(&[h.histogram().len()], h.histogram().to_vec()) {
                self.histogram = Some(t);
                self.min_val = Tensor::scalar(mn);
                self.max_val = Tensor::scalar(mx);
            }
            return;
        }
        if let Some((mins, maxs)) = running_range(observer) {
            let shape: Vec<usize> = match self.ch_axis {
                None => Vec::new(),
                Some(_) => vec![mins.len()],
            };
            if let (Ok(mn), Ok(mx)) = (Tensor::new(&shape, mins), Tensor::new(&shape, maxs)) {
                self.min_val = mn;
                self.max_val = mx;
            }
        }
    }

    /// Sizes an empty per-channel range for `channels` channels (`inf` / `-inf`, which
    /// [`ObserverState::restore`] treats as not yet observed).
    pub(crate) fn expect_channels(&mut self, channels: usize) {
        if self.ch_axis.is_some() && self.min_val.numel() == 0 {
            self.min_val = Tensor::from_fn(&[channels], |_| f32::INFINITY);
            self.max_val = Tensor::from_fn(&[channels], |_| f32::NEG_INFINITY);
        }
    }

    pub(crate) fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        f(&format!("{prefix}eps"), BufferRef::F32(&self.eps));
        f(&format!("{prefix}min_val"), BufferRef::F32(&self.min_val));
        f(&format!("{prefix}max_val"), BufferRef::F32(&self.max_val));
        if let Some(h) = &self.histogram {
            f(&format!("{prefix}histogram"), BufferRef::F32(h));
        }
    }

    pub(crate) fn visit_mut(&mut self, prefix: &str, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        f(&format!("{prefix}eps"), BufferMut::F32(&mut self.eps));
        f(
            &format!("{prefix}min_val"),
            BufferMut::F32(&mut self.min_val),
        );
        f(
            &format!("{prefix}max_val"),
            BufferMut::F32(&mut self.max_val),
        );
        if let Some(h) = &mut self.histogram {
            f(&format!("{prefix}histogram"), BufferMut::F32(h));
        }
    }

    /// A fresh observer from `spec` (with the loaded `eps`) that has seen exactly the loaded
    /// range: min/max observers take the first observation's range as is, so observing a
    /// tensor holding `(min, max)` per channel reproduces the buffers bit for bit.
    pub(crate) fn restore(&self, spec: &ObserverSpec) -> Result<Box<dyn Observer>> {
        let eps = self.eps.data().first().copied().unwrap_or(f32::EPSILON);
        let mut spec = spec.clone();
        if let ObserverSpec::MinMax(config)
        | ObserverSpec::MovingAverageMinMax { config, .. }
        | ObserverSpec::PerChannelMinMax { config, .. }
        | ObserverSpec::MovingAveragePerChannelMinMax { config, .. }
        | ObserverSpec::Histogram { config, .. } = &mut spec
        {
            config.eps = eps;
        }
        if let (
            Some(hist),
            ObserverSpec::Histogram {
                config,
                bins,
                upsample_rate,
            },
        ) = (&self.histogram, &spec)
        {
            let (Some(&mn), Some(&mx)) = (self.min_val.data().first(), self.max_val.data().first())
            else {
                return Err(QnnError::KeyShapeMismatch {
                    key: "activation_post_process.min_val".into(),
                    expected: Vec::new(),
                    got: self.min_val.shape().to_vec(),
                });
            };
            let mut h = HistogramObserver::new(config.clone(), *bins, *upsample_rate)?;
            h.set_state(hist.data(), mn, mx)?;
            return Ok(Box::new(h));
        }
        let mut observer = super::build_observer(&spec)?;
        let (mins, maxs) = (self.min_val.data(), self.max_val.data());
        if mins.len() != maxs.len() {
            return Err(QnnError::KeyShapeMismatch {
                key: "activation_post_process.max_val".into(),
                expected: self.min_val.shape().to_vec(),
                got: self.max_val.shape().to_vec(),
            });
        }
        let uninitialised = mins.iter().all(|&v| v == f32::INFINITY)
            && maxs.iter().all(|&v| v == f32::NEG_INFINITY);
        if !uninitialised {
            let mut shape = vec![1usize; self.ch_axis.unwrap_or(0)];
            shape.push(mins.len());
            shape.push(2);
            let data = mins.iter().zip(maxs).flat_map(|(&a, &b)| [a, b]).collect();
            observer.observe(&Tensor::new(&shape, data)?)?;
        }
        Ok(observer)
    }
}

/// `(min_val, max_val)` of a min/max observer, per tensor (one value each) or per channel.
fn running_range(observer: &dyn Observer) -> Option<(Vec<f32>, Vec<f32>)> {
    if let Some((mn, mx)) = observer.min_max() {
        return Some((vec![mn], vec![mx]));
    }
    super::per_channel_range(observer)
}
