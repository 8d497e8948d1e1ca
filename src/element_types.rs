//! The element types the core is generic over: float32/float64 values and int32/int64 class ids.

use std::fmt::Debug;
use std::iter::Sum;

use ndarray::LinalgScalar;

use crate::fast_math::FastMath;
use crate::workspace::Pooled;

/// A floating-point element type: `f32` or `f64`.
pub trait Real:
    LinalgScalar + num_traits::Float + FastMath + Pooled + Sum + Send + Sync + Debug + Default + 'static
{
    fn from_f64(value: f64) -> Self;
    fn from_f32(value: f32) -> Self;
    fn to_f64(self) -> f64;
}

impl Real for f32 {
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    fn from_f32(value: f32) -> Self {
        value
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    fn from_f64(value: f64) -> Self {
        value
    }
    fn from_f32(value: f32) -> Self {
        value as f64
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// A class id as users store it: `i32` or `i64`, read in place and widened on use.
pub trait ClassId: Copy + Send + Sync + Debug + Into<i64> + 'static {}

impl ClassId for i32 {}
impl ClassId for i64 {}

/// TensorFlow's accidental-hit mask value, `-FLT_MAX`, in every dtype.
pub const HIT_MASK: f32 = -f32::MAX;
