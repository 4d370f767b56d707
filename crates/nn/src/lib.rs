//! edgegrad-nn: models and training state over the pure kernels of `edgegrad-kernels`.
//!
//! Ordinary Rust with no `extern "C"`: the wasm boundary lives in `edgegrad-wasm`, and this
//! crate is usable (and tested) natively.

// Like the kernels, the training entry points take flat argument lists (segment, group,
// clipping, step) rather than one-off structs, mirroring the C ABI one level up.
#![allow(clippy::too_many_arguments)]

pub mod checkpoint;
pub mod error;
pub mod init;
pub mod model;
pub mod optim;
pub mod rng;

pub use edgegrad_kernels as kernels;
pub use error::{ErrorAt, ErrorKind, NnError, Result};
pub use init::Init;
pub use model::{Layer, LayerKind, LayerSpec, Model, ParamGroup, Role, Segment, STATS_HEADER, STATS_PER_LAYER};
pub use optim::{Optimizer, OptimizerKind};
pub use rng::Rng;
