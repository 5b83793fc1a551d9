//! Dot products in eight running sums, shared by the engines that need a fast
//! inner product (the neural MLP in f32, cached dense kernels in f64): a
//! serial sum waits on each addition, eight independent ones vectorise. The
//! sums are the same on every CPU (no fused multiply-add is introduced; the
//! AVX2 build only widens the registers), so results stay bit for bit.

use std::iter::Sum;
use std::ops::{Add, Mul};

/// The element types [`dot`] takes.
pub trait Lane: Copy + Default + Add<Output = Self> + Mul<Output = Self> + Sum {}

impl Lane for f32 {}
impl Lane for f64 {}

/// Σ a·b over the common length: eight lanes, then the lanes and the tail
/// summed in order.
pub fn dot<T: Lane>(a: &[T], b: &[T]) -> T {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_lanes(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2<T: Lane>(a: &[T], b: &[T]) -> T {
    dot_lanes(a, b)
}

#[inline(always)]
fn dot_lanes<T: Lane>(a: &[T], b: &[T]) -> T {
    let mut acc = [T::default(); 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: T = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] = acc[l] + x[l] * y[l];
        }
    }
    acc.iter().copied().sum::<T>() + tail
}

#[cfg(test)]
mod tests {
    use super::dot;

    #[test]
    fn eight_lanes_and_a_tail() {
        let a: Vec<f64> = (0..19).map(|i| i as f64 * 0.5).collect();
        let b: Vec<f64> = (0..19).map(|i| 1.0 - i as f64).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - want).abs() < 1e-12);
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&v| v as f32).collect();
        assert!((dot(&a32, &b32) as f64 - want).abs() < 1e-3);
        assert_eq!(dot::<f64>(&[], &[]), 0.0);
    }
}
