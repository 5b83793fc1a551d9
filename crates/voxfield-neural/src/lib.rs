//! The neural-compression engine's core (issue 10, first increment): instant-ngp's
//! multiresolution hash encoding exactly as tiny-cuda-nn computes it, a small
//! bias-free ReLU MLP, their forward and backward passes over batches, and Adam
//! with tiny-cuda-nn's sparse skip of zero-gradient table entries. Every trainable
//! number lives in one flat `f32` parameter vector (tables, then MLP weights), so
//! a Reptile outer step is one AXPY. Training loops, the `.vxn` file, the model as
//! a `Field` and the CLI build on this.

pub mod adam;
pub mod encoding;
pub mod meta;
pub mod mlp;
pub mod model;
pub mod net;
pub mod quant;
pub mod request;
pub mod train;

pub use adam::Adam;
pub use encoding::{HashGrid, HashGridConfig};
pub use meta::{meta_train, MetaOptions};
pub use mlp::Mlp;
pub use model::{NeuralField, NeuralModel, NeuralVolume};
pub use net::{Loss, Net};
pub use quant::Quant;
pub use request::{for_ratio, Sizes};
pub use train::{compress, model_bytes, native_bytes, CompressOptions, Progress};

/// A small deterministic generator (SplitMix64) for initialisation and shuffles,
/// so a seed reproduces a model bit for bit.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit() as f32
    }
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
