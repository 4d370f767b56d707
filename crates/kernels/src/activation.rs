//! Element-wise activations: ids shared with the C ABI, forward values and derivatives.
//!
//! Conventions follow PyTorch: ReLU'(0) = 0, LeakyReLU'(0) = alpha (slope for z <= 0; PyTorch's
//! default 0.01 is supplied by callers, this module never invents one), sigmoid and tanh
//! derivatives are taken from the stored output y (as `sigmoid_backward`/`tanh_backward` do),
//! and GELU is the exact erf form (`approximate='none'`), evaluated in f64.

use core::f64::consts::{FRAC_1_SQRT_2, FRAC_2_SQRT_PI};

/// An element-wise activation; the discriminants are the ids used across the C ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// y = z
    Identity = 0,
    /// y = max(z, 0)
    Relu = 1,
    /// y = z for z > 0, alpha·z otherwise
    LeakyRelu = 2,
    /// y = 1 / (1 + e^(-z))
    Sigmoid = 3,
    /// y = tanh(z)
    Tanh = 4,
    /// y = z·Φ(z), Φ the standard normal CDF (exact erf form)
    Gelu = 5,
}

/// Runs `$body` with `$f` bound to the forward function of `$act` (a `Fn(f32) -> f32`), so a
/// loop in the body is monomorphised per activation instead of matching per element. This is
/// the single definition of each activation's formula: [`Activation::forward`] uses it too.
macro_rules! with_forward {
    ($act:expr, $alpha:expr, |$f:ident| $body:expr) => {{
        let alpha: f32 = $alpha;
        match $act {
            $crate::activation::Activation::Identity => {
                let $f = |z: f32| z;
                $body
            }
            $crate::activation::Activation::Relu => {
                let $f = $crate::activation::relu;
                $body
            }
            $crate::activation::Activation::LeakyRelu => {
                let $f = |z: f32| $crate::activation::leaky_relu(z, alpha);
                $body
            }
            $crate::activation::Activation::Sigmoid => {
                let $f = $crate::activation::sigmoid;
                $body
            }
            $crate::activation::Activation::Tanh => {
                let $f = f32::tanh;
                $body
            }
            $crate::activation::Activation::Gelu => {
                let $f = $crate::activation::gelu;
                $body
            }
        }
    }};
}

/// Runs `$body` with `$d` bound to the derivative of `$act` as a `Fn(z: f32, y: f32) -> f32`
/// ([`Activation::derivative`] is this macro applied to one element).
macro_rules! with_derivative {
    ($act:expr, $alpha:expr, |$d:ident| $body:expr) => {{
        let alpha: f32 = $alpha;
        match $act {
            $crate::activation::Activation::Identity => {
                let $d = |_: f32, _: f32| 1.0f32;
                $body
            }
            $crate::activation::Activation::Relu => {
                let $d = |z: f32, _: f32| $crate::activation::relu_derivative(z);
                $body
            }
            $crate::activation::Activation::LeakyRelu => {
                let $d = |z: f32, _: f32| $crate::activation::leaky_relu_derivative(z, alpha);
                $body
            }
            $crate::activation::Activation::Sigmoid => {
                let $d = |_: f32, y: f32| y * (1.0 - y);
                $body
            }
            $crate::activation::Activation::Tanh => {
                let $d = |_: f32, y: f32| 1.0 - y * y;
                $body
            }
            $crate::activation::Activation::Gelu => {
                let $d = |z: f32, _: f32| $crate::activation::gelu_derivative(z);
                $body
            }
        }
    }};
}

pub(crate) use {with_derivative, with_forward};

impl Activation {
    /// Every activation, indexed by its id.
    pub const ALL: [Activation; 6] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];

    /// The activation with ABI id `id`, or `None` for an unknown id.
    pub fn from_u32(id: u32) -> Option<Self> {
        Self::ALL.get(id as usize).copied()
    }

    /// The name used by the TypeScript API ("identity", "relu", "leakyRelu", "sigmoid", "tanh", "gelu").
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leakyRelu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
        }
    }

    /// act(z). `alpha` is the leaky-ReLU negative slope, ignored by the others.
    #[inline]
    pub fn forward(self, z: f32, alpha: f32) -> f32 {
        with_forward!(self, alpha, |f| f(z))
    }

    /// act'(z) given `y = act(z)` (sigmoid and tanh read `y`, the others `z`).
    #[inline]
    pub fn derivative(self, z: f32, y: f32, alpha: f32) -> f32 {
        with_derivative!(self, alpha, |d| d(z, y))
    }
}

/// max(z, 0); NaN propagates.
#[inline]
pub fn relu(z: f32) -> f32 {
    if z < 0.0 {
        0.0
    } else {
        z
    }
}

/// 1 for z > 0, else 0 (PyTorch's `threshold_backward`: `z <= 0 ? 0 : 1`).
#[inline]
pub fn relu_derivative(z: f32) -> f32 {
    if z <= 0.0 {
        0.0
    } else {
        1.0
    }
}

/// z for z > 0, alpha·z otherwise.
#[inline]
pub fn leaky_relu(z: f32, alpha: f32) -> f32 {
    if z > 0.0 {
        z
    } else {
        alpha * z
    }
}

/// 1 for z > 0, alpha otherwise.
#[inline]
pub fn leaky_relu_derivative(z: f32, alpha: f32) -> f32 {
    if z > 0.0 {
        1.0
    } else {
        alpha
    }
}

/// 1 / (1 + e^(-z)) without overflow: e^(-|z|) is the only exponential taken, so large |z|
/// saturates cleanly to 0 or 1, and σ(z) = e^z/(1 + e^z) keeps full relative precision for very
/// negative z.
#[inline]
pub fn sigmoid(z: f32) -> f32 {
    let e = (-z.abs()).exp();
    // A select, not a branch: pre-activation signs are random, and the branchy form cost
    // 749 vs 552 µs for dense_forward at 128×256×256 (Node 20; the GEMM alone is 264 µs).
    let numerator = if z >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

/// GELU, exact form: z·Φ(z) = ½·z·erfc(-z/√2). Written with erfc rather than 1 + erf so the
/// negative tail keeps full relative precision (1 + erf(-4) would cancel to ~1e-8).
#[inline]
pub fn gelu(z: f32) -> f32 {
    let z = f64::from(z);
    (0.5 * z * erfc(-z * FRAC_1_SQRT_2)) as f32
}

/// d/dz GELU = Φ(z) + z·φ(z), φ the standard normal density.
#[inline]
pub fn gelu_derivative(z: f32) -> f32 {
    /// 1/√(2π)
    const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    let z = f64::from(z);
    let cdf = 0.5 * erfc(-z * FRAC_1_SQRT_2);
    let pdf = FRAC_1_SQRT_2PI * (-0.5 * z * z).exp();
    (cdf + z * pdf) as f32
}

/// Terms of the Maclaurin series erf(x) = x · Σ_n c_n·x^(2n), c_n = (2/√π)·(-1)^n / (n!·(2n+1)).
/// 19 terms leave a truncation error below 1e-17 for |x| < 1 (the 19th term is 2e-18).
const ERF_SERIES: [f64; 19] = {
    let mut c = [0.0; 19];
    let mut n = 0;
    let mut factorial = 1.0;
    while n < c.len() {
        if n > 0 {
            factorial *= n as f64;
        }
        let sign = if n % 2 == 0 { 1.0 } else { -1.0 };
        c[n] = sign * FRAC_2_SQRT_PI / (factorial * (2 * n + 1) as f64);
        n += 1;
    }
    c
};

/// Chebyshev coefficients of the scaled complementary error function erfcx(x) = e^(x²)·erfc(x)
/// on x ∈ [1, ∞), in the variable s = 1.5·t − 0.5 with t = (x − 2)/(x + 2) (so x = 1 ↦ s = −1
/// and x → ∞ ↦ s = 1). Fitted for this crate by Chebyshev interpolation at 200 nodes of erfcx
/// evaluated in 40-digit arithmetic (mpmath); the coefficients fall below 1e-15 by the 20th, and
/// the evaluated erfcx is within 6e-14 relative of the true value over [1, 25].
const ERFCX_CHEB: [f64; 20] = [
    0.3502304235691356,
    -0.20897259654810316,
    0.03840189405511679,
    -0.004845703242138071,
    0.0002802972510301327,
    2.6666996596853902e-05,
    -5.726145557876231e-06,
    -1.5694171395518134e-07,
    1.1374410514187578e-07,
    1.7387072672762768e-09,
    -2.6811785052047986e-09,
    -8.648969937492069e-11,
    7.173432380162713e-11,
    5.53209377227512e-12,
    -1.9590652045578255e-12,
    -3.093311350223099e-13,
    4.511668341341874e-14,
    1.5096887281448647e-14,
    -2.926909636642018e-16,
    -6.267419012603472e-16,
];

/// erfc(x) for x ≥ 1 (NaN passes through): e^(−x²) · erfcx(x), erfcx summed with Clenshaw's
/// recurrence.
fn erfc_tail(x: f64) -> f64 {
    // erfc(27) ≈ 5e-319 is already subnormal; beyond, the answer is 0 in f64.
    if x > 27.0 {
        return 0.0;
    }
    let t = (x - 2.0) / (x + 2.0);
    let s = 1.5 * t - 0.5;
    let (mut b1, mut b2) = (0.0f64, 0.0f64);
    for &c in ERFCX_CHEB[1..].iter().rev() {
        (b1, b2) = (2.0 * s * b1 - b2 + c, b1);
    }
    let erfcx = s * b1 - b2 + 0.5 * ERFCX_CHEB[0];
    erfcx * (-x * x).exp()
}

/// The error function erf(x) = (2/√π)∫₀ˣ e^(−t²) dt, to about 2e-16 absolute (and relative:
/// the series branch keeps tiny arguments exact).
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    if ax < 1.0 {
        let x2 = x * x;
        let mut p = 0.0;
        for &c in ERF_SERIES.iter().rev() {
            p = p * x2 + c;
        }
        return x * p;
    }
    (1.0 - erfc_tail(ax)).copysign(x)
}

/// The complementary error function erfc(x) = 1 − erf(x), accurate in relative terms in the
/// right tail (where 1 − erf would cancel).
///
/// Out of line: inlined into every activation-generic loop (dense epilogues, derivative
/// passes, batch norm) it cost 10 KB of wasm (197.5 → 187.4 KB). The call is lost in erfc's
/// own work: a GELU MLP (256-256-256-10, batch 128) trains at 4.20-4.39 ms/step out of line,
/// 4.25-4.45 inlined (Node 20).
#[inline(never)]
pub fn erfc(x: f64) -> f64 {
    if x >= 1.0 {
        erfc_tail(x)
    } else if x > -1.0 {
        1.0 - erf(x)
    } else {
        // Also the NaN path: erfc_tail(NaN) is NaN.
        2.0 - erfc_tail(-x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_names_and_from_u32_agree() {
        for (id, act) in Activation::ALL.iter().enumerate() {
            assert_eq!(*act as u32, id as u32);
            assert_eq!(Activation::from_u32(id as u32), Some(*act));
        }
        assert_eq!(Activation::from_u32(6), None);
        assert_eq!(Activation::from_u32(u32::MAX), None);
        let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(
            names,
            ["identity", "relu", "leakyRelu", "sigmoid", "tanh", "gelu"]
        );
    }

    /// Reference values computed with mpmath at 30 digits.
    #[test]
    fn erf_matches_known_values() {
        let erf_cases: [(f64, f64); 12] = [
            (0.0, 0.0),
            (1e-8, 1.1283791670955125e-8),
            (0.1, 0.11246291601828489),
            (0.5, 0.5204998778130465),
            (0.9, 0.796_908_212_422_832),
            (1.0, 0.8427007929497149),
            (1.5, 0.9661051464753107),
            (2.0, 0.9953222650189527),
            (2.5, 0.999593047982555),
            (3.0, 0.9999779095030014),
            (4.0, 0.9999999845827421),
            (6.0, 1.0),
        ];
        for (x, want) in erf_cases {
            for (x, want) in [(x, want), (-x, -want)] {
                let got = erf(x);
                let tol = 4e-16 * want.abs().max(1e-300) + 1e-300;
                assert!(
                    (got - want).abs() <= tol,
                    "erf({x}): expected {want:e}, got {got:e}"
                );
            }
        }
        let erfc_cases = [
            (-1.0, 1.8427007929497148),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.15729920705028513),
            (2.0, 0.004677734981047266),
            (3.0, 2.209049699858544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (10.0, 2.088_487_583_762_545e-45),
            (20.0, 5.395865611607901e-176),
        ];
        for (x, want) in erfc_cases {
            let got = erfc(x);
            // Relative: the tail is where erfc earns its keep.
            assert!(
                (got - want).abs() <= 1e-13 * want,
                "erfc({x}): expected {want:e}, got {got:e}"
            );
        }
        assert!(erf(f64::NAN).is_nan() && erfc(f64::NAN).is_nan());
        assert_eq!(erf(f64::INFINITY), 1.0);
        assert_eq!(erf(f64::NEG_INFINITY), -1.0);
        assert_eq!(erfc(f64::INFINITY), 0.0);
        assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
    }

    /// Dense sweep against an independent evaluation: the Maclaurin series summed to
    /// convergence (no fitted coefficients). On |x| <= 3 its largest term is ~1e3, so it is
    /// good to ~1e-13 absolute, and the requirement here is 1e-12 (far below f32's 6e-8).
    #[test]
    fn erf_matches_series_on_a_dense_grid() {
        fn series(x: f64) -> f64 {
            let (mut term, mut sum, mut n) = (x, x, 0.0f64);
            while term.abs() > 1e-18 {
                n += 1.0;
                term *= -x * x / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * FRAC_2_SQRT_PI
        }
        let mut x = -3.0;
        while x <= 3.0 {
            let (got, want) = (erf(x), series(x));
            assert!(
                (got - want).abs() < 1e-12,
                "erf({x}): expected {want:e}, got {got:e}"
            );
            let (got, want) = (erfc(x), 1.0 - series(x));
            assert!(
                (got - want).abs() < 1e-12,
                "erfc({x}): expected {want:e}, got {got:e}"
            );
            x += 0.001;
        }
    }

    /// PyTorch `F.gelu(z)` (approximate='none') values and its derivative, from mpmath.
    #[test]
    fn gelu_matches_known_values() {
        let cases = [
            (-10.0, -7.619853024160526e-23, -7.618400096464814e-22),
            (-3.0, -0.004049694094890284, -0.011945647204183927),
            (-1.0, -0.15865525393145705, -0.0833154705876863),
            (-0.5, -0.15426876936299345, 0.13250487534383716),
            (0.0, 0.0, 0.5),
            (0.5, 0.34573123063700655, 0.8674951246561628),
            (1.0, 0.841344746068543, 1.0833154705876863),
            (3.0, 2.995_950_305_905_11, 1.011945647204184),
        ];
        for (z, want, dwant) in cases {
            let (got, dgot) = (
                f64::from(gelu(z as f32)),
                f64::from(gelu_derivative(z as f32)),
            );
            assert!(
                (got - want).abs() <= 1e-7 * want.abs().max(1e-30),
                "gelu({z}): {want:e} vs {got:e}"
            );
            assert!(
                (dgot - dwant).abs() <= 1e-7 * dwant.abs().max(1e-30),
                "gelu'({z}): {dwant:e} vs {dgot:e}"
            );
        }
    }

    #[test]
    fn sigmoid_is_stable_for_large_inputs() {
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert!((sigmoid(-80.0) - (-80.0f64).exp() as f32).abs() < 1e-40);
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(f32::NAN).is_nan());
    }

    #[test]
    fn forward_nan_propagates_and_kinks_follow_pytorch() {
        for act in Activation::ALL {
            assert!(act.forward(f32::NAN, 0.01).is_nan(), "{}", act.name());
        }
        assert_eq!(Activation::Relu.derivative(0.0, 0.0, 0.0), 0.0);
        assert_eq!(Activation::LeakyRelu.derivative(0.0, 0.0, 0.2), 0.2);
        assert_eq!(Activation::LeakyRelu.forward(-2.0, 0.2), -0.4);
        assert_eq!(Activation::LeakyRelu.forward(3.0, 0.2), 3.0);
    }

    /// act'(z) against central differences of act, in f64 on the forward formulas written out
    /// again in `test_util::act_f64` (so the check does not depend on f32 rounding), away from
    /// the kinks.
    #[test]
    fn derivatives_match_finite_differences() {
        let alpha = 0.07f64;
        let f64_forward = |act: Activation, z: f64| crate::test_util::act_f64(act, z, alpha);
        let zs = [
            -6.0, -3.1, -1.7, -0.9, -0.3, -0.01, 0.02, 0.4, 1.1, 2.5, 4.2, 7.0,
        ];
        for act in Activation::ALL {
            for &z in &zs {
                let h = 1e-5;
                let fd = (f64_forward(act, z + h) - f64_forward(act, z - h)) / (2.0 * h);
                let zf = z as f32;
                let y = act.forward(zf, alpha as f32);
                let got = f64::from(act.derivative(zf, y, alpha as f32));
                let tol = 2e-6 * fd.abs().max(1.0);
                assert!(
                    (got - fd).abs() <= tol,
                    "{}'({z}): finite difference {fd:e}, derivative {got:e}",
                    act.name()
                );
            }
        }
    }
}
