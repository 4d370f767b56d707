//! edgegrad-kernels: pure f32 compute over slices for the edgegrad training library.
//!
//! Everything here is row-major and allocation-free in its hot paths; callers own every buffer
//! (including the GEMM packing scratch, [`gemm::gemm_scratch_len`] floats). One set of letters
//! names shapes everywhere: B batch, I in-features, O out-features, C classes, and M, N, K for
//! GEMM. Each fast kernel has a `_naive` twin with the same signature that the tests compare it
//! against.
//!
//! Instruction-set choice happens in exactly one place, the `arch` dispatch module inside
//! [`gemm`]: built for `wasm32` with `+simd128` the GEMM micro-kernel is
//! `gemm_f32_4x8_simd128` and the small-M streaming kernel `gemm_f32_rowstream_simd128`;
//! elsewhere (host tests) portable scalar kernels with the same shapes run, so `cargo test`
//! exercises all of the packing and tail logic.
//!
//! Modules: [`gemm`] (packed, cache-blocked matrix products for NN, NT and TN), [`activation`]
//! (the activation ids shared with the ABI, forward and derivative), [`dense`] (fused dense
//! forward/backward), [`batchnorm`] (batch normalisation with a fused activation, train and
//! eval), [`dropout`] (inverted dropout), [`loss`] (mean-reduced losses with gradients),
//! [`optim`] (fused torch.optim updates and gradient clipping over parameter slices).

// The kernel signatures are flat (dims, slices, flags) by design: they mirror the C ABI one
// level up and keep every buffer explicit.
#![allow(clippy::too_many_arguments)]

pub mod activation;
pub mod batchnorm;
pub mod dense;
pub mod dropout;
pub mod gemm;
pub mod loss;
pub mod optim;

#[cfg(test)]
mod test_util;
