//! Helpers shared by the unit tests: a seeded generator and comparisons that report where they fail.

/// SplitMix64: tiny, seeded, good enough to fill test matrices.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub(crate) fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }

    pub(crate) fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// Asserts |got[e] − want[e]| <= tol[e] elementwise, naming the first bad index and `what`.
pub(crate) fn assert_close_each(what: &str, got: &[f32], want: &[f32], tol: impl Fn(usize) -> f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (e, (&g, &w)) in got.iter().zip(want).enumerate() {
        let t = tol(e);
        assert!(
            (g - w).abs() <= t || (g.is_nan() && w.is_nan()),
            "{what}: index {e}: expected {w:e}, actual {g:e} (|diff| {:e} > tol {t:e})",
            (g - w).abs()
        );
    }
}

/// The activations written out again in f64 from their textbook formulas, for gradient checks
/// that should not depend on the f32 code under test (GELU uses this crate's f64 `erf`, which
/// has its own accuracy tests).
pub(crate) fn act_f64(act: crate::activation::Activation, z: f64, alpha: f64) -> f64 {
    use crate::activation::Activation;
    match act {
        Activation::Identity => z,
        Activation::Relu => z.max(0.0),
        Activation::LeakyRelu => {
            if z > 0.0 {
                z
            } else {
                alpha * z
            }
        }
        Activation::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Activation::Tanh => z.tanh(),
        Activation::Gelu => {
            0.5 * z * (1.0 + crate::activation::erf(z * core::f64::consts::FRAC_1_SQRT_2))
        }
    }
}
