//! Plain element types a [`Tensor`](crate::Tensor) can hold.

/// An element type of a dense tensor: `f32`, `half::f16`, `u8`, `i8` or `i32`.
///
/// All of them are plain old data, so tensors can be viewed as bytes.
pub trait Element:
    bytemuck::Pod + Default + Copy + Send + Sync + std::fmt::Debug + PartialEq + 'static
{
}

impl Element for f32 {}
impl Element for half::f16 {}
impl Element for u8 {}
impl Element for i8 {}
impl Element for i32 {}
