//! Element-wise activations with their derivatives, as PyTorch defines them.

use std::marker::PhantomData;

use qtensor::Tensor;

use super::util::{f32_grad, f32_input, saved};
use crate::error::Result;
use crate::module::{Module, ModuleKind};
use crate::value::Value;

/// The formula of an element-wise activation: value and derivative.
pub trait Pointwise: Clone + Send + 'static {
    /// Layer name used in errors.
    const NAME: &'static str;
    /// The module kind.
    const KIND: ModuleKind;
    /// `y = f(x)`.
    fn value(&self, x: f32) -> f32;
    /// `dL/dx` given `g = dL/dy`, the input `x` and the output `y = f(x)`.
    fn grad(&self, g: f32, x: f32, y: f32) -> f32;
    /// PyTorch's `extra_repr` of the layer (`negative_slope=0.01`); empty by default.
    fn extra_repr(&self) -> String {
        String::new()
    }
}

/// An element-wise activation layer; see the aliases [`ReLU`], [`Gelu`], … for the formulas.
#[derive(Clone, Debug)]
pub struct Activation<P: Pointwise> {
    f: P,
    saved: Option<(Tensor<f32>, Tensor<f32>)>,
    training: bool,
}

impl<P: Pointwise> Activation<P> {
    fn with(f: P) -> Self {
        Self {
            f,
            saved: None,
            training: true,
        }
    }

    /// The formula and its parameters.
    pub fn function(&self) -> &P {
        &self.f
    }

    /// `f` applied to every element of `x`.
    pub fn apply(&self, x: &Tensor<f32>) -> Tensor<f32> {
        x.map(|v| self.f.value(v))
    }
}

impl<P: Pointwise> Module for Activation<P> {
    fn kind(&self) -> ModuleKind {
        P::KIND
    }

    fn extra_repr(&self) -> String {
        self.f.extra_repr()
    }

    fn forward(&mut self, input: &Value) -> Result<Value> {
        let x = f32_input(input, P::NAME)?;
        let y = self.apply(&x);
        self.saved = Some((x, y.clone()));
        Ok(Value::F32(y))
    }

    fn backward(&mut self, grad_output: &Value) -> Result<Value> {
        let (x, y) = saved(&self.saved, P::NAME)?;
        let mut g = f32_grad(grad_output, P::NAME, x.shape())?;
        for ((gv, &xv), &yv) in g.data_mut().iter_mut().zip(x.data()).zip(y.data()) {
            *gv = self.f.grad(*gv, xv, yv);
        }
        Ok(Value::F32(g))
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
    }

    fn is_training(&self) -> bool {
        self.training
    }
}

macro_rules! unit_activation {
    ($(#[$doc:meta])* $alias:ident, $fun:ident, $name:literal, $kind:ident) => {
        $(#[$doc])*
        pub type $alias = Activation<$fun>;

        #[doc = concat!("The formula of [`", stringify!($alias), "`].")]
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $fun(PhantomData<()>);

        impl $alias {
            #[doc = concat!("A new `", $name, "` layer.")]
            pub fn new() -> Self {
                Self::with($fun(PhantomData))
            }
        }

        impl Default for $alias {
            fn default() -> Self {
                Self::new()
            }
        }
    };
}

unit_activation!(
    /// `max(x, 0)`; gradient 1 where `x > 0`.
    ReLU, ReluFn, "ReLU", ReLU
);
unit_activation!(
    /// `min(max(x, 0), 6)`; gradient 1 where `0 < x < 6` (PyTorch's hardtanh backward).
    ReLU6, Relu6Fn, "ReLU6", ReLU6
);
unit_activation!(
    /// `x * relu6(x + 3) / 6`; gradient 0 below -3, `x / 3 + 1/2` on `[-3, 3]`, 1 above.
    Hardswish, HardswishFn, "Hardswish", Hardswish
);
unit_activation!(
    /// `relu6(x + 3) / 6`; gradient 1/6 where `-3 < x < 3`.
    Hardsigmoid, HardsigmoidFn, "Hardsigmoid", Hardsigmoid
);
unit_activation!(
    /// GELU, exact erf form: `x * (1 + erf(x / sqrt 2)) / 2`.
    Gelu, GeluFn, "GELU", Gelu
);
unit_activation!(
    /// `x * sigmoid(x)`.
    SiLU, SiluFn, "SiLU", SiLU
);
unit_activation!(
    /// `1 / (1 + exp(-x))`; gradient `y (1 - y)`.
    Sigmoid, SigmoidFn, "Sigmoid", Sigmoid
);
unit_activation!(
    /// `tanh(x)`; gradient `1 - y^2`.
    Tanh, TanhFn, "Tanh", Tanh
);

impl Pointwise for ReluFn {
    const NAME: &'static str = "ReLU";
    const KIND: ModuleKind = ModuleKind::ReLU;
    fn value(&self, x: f32) -> f32 {
        if x > 0.0 || x.is_nan() { x } else { 0.0 }
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x > 0.0 { g } else { 0.0 }
    }
}

impl Pointwise for Relu6Fn {
    const NAME: &'static str = "ReLU6";
    const KIND: ModuleKind = ModuleKind::ReLU6;
    fn value(&self, x: f32) -> f32 {
        if x.is_nan() { x } else { x.clamp(0.0, 6.0) }
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x > 0.0 && x < 6.0 { g } else { 0.0 }
    }
}

impl Pointwise for HardswishFn {
    const NAME: &'static str = "Hardswish";
    const KIND: ModuleKind = ModuleKind::Hardswish;
    fn value(&self, x: f32) -> f32 {
        x * (x + 3.0).clamp(0.0, 6.0) / 6.0
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x < -3.0 {
            0.0
        } else if x <= 3.0 {
            g * (x / 3.0 + 0.5)
        } else {
            g
        }
    }
}

impl Pointwise for HardsigmoidFn {
    const NAME: &'static str = "Hardsigmoid";
    const KIND: ModuleKind = ModuleKind::Hardsigmoid;
    fn value(&self, x: f32) -> f32 {
        (x + 3.0).clamp(0.0, 6.0) / 6.0
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x > -3.0 && x < 3.0 { g / 6.0 } else { 0.0 }
    }
}

impl Pointwise for GeluFn {
    const NAME: &'static str = "GELU";
    const KIND: ModuleKind = ModuleKind::Gelu;
    fn extra_repr(&self) -> String {
        "approximate='none'".into()
    }
    fn value(&self, x: f32) -> f32 {
        x * 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        let cdf = 0.5 * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2));
        let pdf = (-0.5 * x * x).exp()
            * (0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2);
        g * (cdf + x * pdf)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Pointwise for SiluFn {
    const NAME: &'static str = "SiLU";
    const KIND: ModuleKind = ModuleKind::SiLU;
    fn value(&self, x: f32) -> f32 {
        x * sigmoid(x)
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        let s = sigmoid(x);
        g * s * (1.0 + x * (1.0 - s))
    }
}

impl Pointwise for SigmoidFn {
    const NAME: &'static str = "Sigmoid";
    const KIND: ModuleKind = ModuleKind::Sigmoid;
    fn value(&self, x: f32) -> f32 {
        sigmoid(x)
    }
    fn grad(&self, g: f32, _x: f32, y: f32) -> f32 {
        g * (1.0 - y) * y
    }
}

impl Pointwise for TanhFn {
    const NAME: &'static str = "Tanh";
    const KIND: ModuleKind = ModuleKind::Tanh;
    fn value(&self, x: f32) -> f32 {
        x.tanh()
    }
    fn grad(&self, g: f32, _x: f32, y: f32) -> f32 {
        g * (1.0 - y * y)
    }
}

/// `x` for `x > 0`, else `negative_slope * x`.
pub type LeakyReLU = Activation<LeakyReluFn>;

/// The formula of [`LeakyReLU`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyReluFn {
    /// Slope for negative inputs (PyTorch's default 0.01).
    pub negative_slope: f32,
}

impl LeakyReLU {
    /// A new layer with the given negative slope (PyTorch's default is 0.01).
    pub fn new(negative_slope: f32) -> Self {
        Self::with(LeakyReluFn { negative_slope })
    }
}

impl Pointwise for LeakyReluFn {
    const NAME: &'static str = "LeakyReLU";
    const KIND: ModuleKind = ModuleKind::LeakyReLU;
    fn extra_repr(&self) -> String {
        format!(
            "negative_slope={}",
            crate::repr::py_float32(self.negative_slope)
        )
    }
    fn value(&self, x: f32) -> f32 {
        if x > 0.0 { x } else { x * self.negative_slope }
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x > 0.0 { g } else { g * self.negative_slope }
    }
}

/// `x` for `x > 0`, else `alpha * (exp(x) - 1)`.
pub type Elu = Activation<EluFn>;

/// The formula of [`Elu`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EluFn {
    /// Scale of the negative branch (PyTorch's default 1.0).
    pub alpha: f32,
}

impl Elu {
    /// A new layer with the given `alpha` (PyTorch's default is 1.0).
    pub fn new(alpha: f32) -> Self {
        Self::with(EluFn { alpha })
    }
}

impl Pointwise for EluFn {
    const NAME: &'static str = "ELU";
    const KIND: ModuleKind = ModuleKind::Elu;
    fn extra_repr(&self) -> String {
        format!("alpha={}", crate::repr::py_float32(self.alpha))
    }
    fn value(&self, x: f32) -> f32 {
        if x > 0.0 { x } else { self.alpha * x.exp_m1() }
    }
    fn grad(&self, g: f32, x: f32, _y: f32) -> f32 {
        if x > 0.0 { g } else { g * self.alpha * x.exp() }
    }
}
