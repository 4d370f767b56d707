//! edgegrad-nn: models and training state over the pure kernels of `edgegrad-kernels`.
//!
//! Ordinary Rust with no `extern "C"`: the wasm boundary lives in `edgegrad-wasm`, and this
//! crate is usable (and tested) natively.

pub mod error;
pub mod init;
pub mod model;
pub mod optim;
pub mod rng;

pub use edgegrad_kernels as kernels;
pub use error::{ErrorKind, NnError, Result};
pub use init::Init;
pub use model::{DenseLayer, LayerSpec, Model};
pub use optim::{Optimizer, OptimizerKind};
pub use rng::Rng;
