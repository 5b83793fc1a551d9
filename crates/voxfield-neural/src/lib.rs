//! The neural-compression engine's core (issue 10, first increment): instant-ngp's
//! multiresolution hash encoding exactly as tiny-cuda-nn computes it, a small
//! bias-free ReLU MLP, their forward and backward passes over batches, and Adam
//! with tiny-cuda-nn's sparse skip of zero-gradient table entries. Every trainable
//! number lives in one flat `f32` parameter vector (tables, then MLP weights), so
//! a Reptile outer step is one AXPY. Training loops, the `.vxn` file, the model as
//! a `Field` and the CLI build on this.

pub mod adam;
pub mod encoding;
mod entropy;
mod infer;
pub mod meta;
pub mod mlp;
pub mod model;
pub mod net;
pub mod quant;
pub mod request;
mod samples;
pub mod train;

pub use adam::Adam;
pub use encoding::{HashGrid, HashGridConfig};
pub use meta::{meta_train, MetaOptions, OUTER_STEPS};
pub use mlp::Mlp;
pub use model::{NeuralField, NeuralModel, NeuralVolume};
pub use net::{Loss, Net};
pub use quant::Quant;
pub use request::{for_ratio, Sizes};
pub use train::{compress, model_bytes, native_bytes, CompressOptions};

pub use voxfield_core::rng::{mix64, Rng};
