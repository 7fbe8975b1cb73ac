//! [`ObserverNode`]: an observer as a graph node (PyTorch's `activation_post_process` forward
//! hook). `prepare` inserts one after every value that will be quantized; calibration runs the
//! graph so that each records the statistics of the value flowing through it; `convert` reads
//! their qparams and removes them.

use qnn::qtensor::QParams;
use qnn::qtensor::observer::{Observer, ObserverSpec};
use qnn::{Module, ModuleKind, QnnError, Value};

/// A node holding a boxed [`Observer`]: its forward records the statistics of an f32 input and
/// returns the input unchanged (identity); its backward passes the gradient through. Other
/// values (quantized, integer, tuples) pass through unobserved.
///
/// ```
/// use qflow::passes::ObserverNode;
/// use qnn::qtensor::observer::{ObserverConfig, ObserverSpec};
/// use qnn::qtensor::{QDType, QScheme, Tensor};
/// use qnn::{Module, Value};
///
/// let spec = ObserverSpec::MinMax(ObserverConfig::new(QDType::QUInt8, QScheme::PerTensorAffine));
/// let mut obs = ObserverNode::new(&spec)?;
/// let x = Value::F32(Tensor::new(&[3], vec![-1.0, 0.5, 3.0])?);
/// let y = obs.forward(&x)?;
/// assert_eq!(y.shape(), x.shape());
/// assert_eq!(obs.observer().min_max(), Some((-1.0, 3.0)));
/// assert_eq!(obs.observed_batches(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ObserverNode {
    observer: Box<dyn Observer>,
    enabled: bool,
    observed: u64,
    training: bool,
    observations_per_call: u32,
}

impl Clone for ObserverNode {
    fn clone(&self) -> Self {
        Self {
            observer: self.observer.box_clone(),
            enabled: self.enabled,
            observed: self.observed,
            training: self.training,
            observations_per_call: self.observations_per_call,
        }
    }
}

impl ObserverNode {
    /// A fresh observer built from `spec` (typed error for invalid observer arguments).
    pub fn new(spec: &ObserverSpec) -> Result<Self, QnnError> {
        Ok(Self::from_observer(spec.build()?))
    }

    /// Wraps an existing observer.
    pub fn from_observer(observer: Box<dyn Observer>) -> Self {
        Self {
            observer,
            enabled: true,
            observed: 0,
            training: true,
            observations_per_call: 1,
        }
    }

    /// The observer.
    pub fn observer(&self) -> &dyn Observer {
        self.observer.as_ref()
    }

    /// The observer, mutably.
    pub fn observer_mut(&mut self) -> &mut dyn Observer {
        self.observer.as_mut()
    }

    /// Number of forward calls that recorded statistics (0: never calibrated).
    pub fn observed_batches(&self) -> u64 {
        self.observed
    }

    /// True while forward records statistics.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Turns recording on or off (PyTorch's `enable_observer` / `disable_observer`).
    pub fn set_enabled(&mut self, enabled: bool) {
        self.enabled = enabled;
    }

    /// Replaces the observer, its toggle and its batch count (loading a saved graph).
    pub(crate) fn restore(&mut self, observer: Box<dyn Observer>, enabled: bool, observed: u64) {
        self.observer = observer;
        self.enabled = enabled;
        self.observed = observed;
    }

    /// How many times each forward call feeds its input to the observer (1 by default).
    pub fn observations_per_call(&self) -> u32 {
        self.observations_per_call
    }

    /// Sets how many times each forward call feeds its input to the observer (at least once).
    /// `prepare` sets 2 where PyTorch observes a value twice per forward: the output of a fused
    /// module built on `nn.Sequential` (ConvReLU2d, LinearReLU, …), whose observer runs both
    /// as the sequence's last child and from its forward hook. That matters only for observers
    /// whose state moves with every observation (moving averages, recordings).
    pub fn set_observations_per_call(&mut self, n: u32) {
        self.observations_per_call = n.max(1);
    }

    /// The observer's `calculate_qparams()`.
    pub fn calculate_qparams(&self) -> Result<QParams, QnnError> {
        Ok(self.observer.calculate_qparams()?)
    }
}

impl Module for ObserverNode {
    fn kind(&self) -> ModuleKind {
        ModuleKind::ObserverModule
    }

    /// The observer's PyTorch class (`HistogramObserver`, `PerChannelMinMaxObserver`, …).
    fn type_name(&self) -> String {
        qnn::repr::observer_class(&self.observer.spec()).to_string()
    }

    /// `min_val=…, max_val=…` as PyTorch's min/max and histogram observers print them (0-d
    /// buffers as Python floats, `inf`/`-inf` before calibration; per-channel ones as tensors).
    fn extra_repr(&self) -> String {
        qnn::repr::observer_extra_repr(self.observer.as_ref())
    }

    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        if self.enabled
            && let Value::F32(t) = input
        {
            for _ in 0..self.observations_per_call {
                self.observer.observe(t)?;
            }
            self.observed += 1;
        }
        Ok(input.clone())
    }

    fn backward(&mut self, grad_output: &Value) -> qnn::Result<Value> {
        Ok(grad_output.clone())
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}
