//! Weight initialisers. Formulas follow torch.nn.init (fan_in = I, fan_out = O for a dense
//! kernel (I,O)); biases always start at zero.

use crate::rng::Rng;
use edgegrad_kernels::activation::Activation;

/// How a dense kernel's initial values are drawn.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// heNormal for relu / leakyRelu / gelu, xavierUniform for everything else.
    Auto = 0,
    /// N(0, gain²/fan_in), gain = sqrt(2 / (1 + alpha²)) (kaiming_normal_, fan_in mode).
    HeNormal = 1,
    /// U(±gain·sqrt(3/fan_in)) (kaiming_uniform_, fan_in mode).
    HeUniform = 2,
    /// N(0, 2/(fan_in+fan_out)) (xavier_normal_, gain 1).
    XavierNormal = 3,
    /// U(±sqrt(6/(fan_in+fan_out))) (xavier_uniform_, gain 1).
    XavierUniform = 4,
    /// N(0, 1/fan_in).
    LecunNormal = 5,
    /// All zeros (only sensible for tests and linear probes).
    Zeros = 6,
    /// U(±sqrt(3/fan_in)).
    LecunUniform = 7,
    /// Every weight equal to the layer's `value` (torch.nn.init.constant_).
    Constant = 8,
}

impl Init {
    pub const ALL: [Init; 9] = [
        Init::Auto,
        Init::HeNormal,
        Init::HeUniform,
        Init::XavierNormal,
        Init::XavierUniform,
        Init::LecunNormal,
        Init::Zeros,
        Init::LecunUniform,
        Init::Constant,
    ];

    pub fn from_u32(id: u32) -> Option<Init> {
        Init::ALL.get(id as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Init::Auto => "auto",
            Init::HeNormal => "heNormal",
            Init::HeUniform => "heUniform",
            Init::XavierNormal => "xavierNormal",
            Init::XavierUniform => "xavierUniform",
            Init::LecunNormal => "lecunNormal",
            Init::Zeros => "zeros",
            Init::LecunUniform => "lecunUniform",
            Init::Constant => "constant",
        }
    }

    /// The concrete initialiser `Auto` stands for with this activation.
    pub fn resolve(self, act: Activation) -> Init {
        match (self, act) {
            (Init::Auto, Activation::Relu | Activation::LeakyRelu | Activation::Gelu) => Init::HeNormal,
            (Init::Auto, _) => Init::XavierUniform,
            (other, _) => other,
        }
    }
}

/// Fills a dense kernel `w` (fan_in, fan_out) row-major; `value` is used by `Constant` only.
/// Initialisers that draw nothing (zeros, constant) leave `rng` untouched.
pub fn init_kernel(w: &mut [f32], fan_in: usize, fan_out: usize, init: Init, act: Activation, alpha: f32, value: f32, rng: &mut Rng) {
    let fi = fan_in as f64;
    let fo = fan_out as f64;
    // ReLU-family gain: sqrt(2/(1+a²)) with a = 0 for relu and gelu (as torch treats them).
    let a = if act == Activation::LeakyRelu { alpha as f64 } else { 0.0 };
    let he_gain = (2.0 / (1.0 + a * a)).sqrt();
    match init.resolve(act) {
        Init::HeNormal => fill_normal(w, he_gain / fi.sqrt(), rng),
        Init::HeUniform => fill_uniform(w, he_gain * (3.0 / fi).sqrt(), rng),
        Init::XavierNormal => fill_normal(w, (2.0 / (fi + fo)).sqrt(), rng),
        Init::XavierUniform => fill_uniform(w, (6.0 / (fi + fo)).sqrt(), rng),
        Init::LecunNormal => fill_normal(w, 1.0 / fi.sqrt(), rng),
        Init::LecunUniform => fill_uniform(w, (3.0 / fi).sqrt(), rng),
        Init::Constant => w.fill(value),
        Init::Zeros | Init::Auto => w.fill(0.0),
    }
}

/// N(0, std²) draws, two per accepted point of Marsaglia's polar method: one `ln` and no trig
/// per pair. Box–Muller (`Rng::normal`: `ln` + `cos` per value) made `sequential()` of MLP-S
/// (17 k weights) take 5.5 ms of a 22 ms cold start in Node 20 (median of 15; 1.9 ms with a
/// uniform init, 1.7-2.4 ms with this): its first calls run in V8's baseline tier, then tier up
/// a 6 KB function (libm `cos` with its large-argument reduction), an 11 ms optimizing compile
/// competing for the CPU. The draws differ from Box–Muller's for the same seed.
fn fill_normal(w: &mut [f32], std: f64, rng: &mut Rng) {
    for pair in w.chunks_mut(2) {
        let (u, v, s) = loop {
            let u = 2.0 * rng.next_f64() - 1.0;
            let v = 2.0 * rng.next_f64() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                break (u, v, s);
            }
        };
        let f = (-2.0 * s.ln() / s).sqrt() * std;
        pair[0] = (u * f) as f32;
        if let Some(x) = pair.get_mut(1) {
            *x = (v * f) as f32;
        }
    }
}

fn fill_uniform(w: &mut [f32], limit: f64, rng: &mut Rng) {
    for v in w {
        *v = ((rng.next_f64() * 2.0 - 1.0) * limit) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(w: &[f32]) -> (f64, f64, f64) {
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let max = w.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
        (mean, var, max)
    }

    #[test]
    fn he_normal_variance_is_two_over_fan_in() {
        let mut w = vec![0.0; 256 * 400];
        init_kernel(&mut w, 256, 400, Init::Auto, Activation::Relu, 0.0, 0.0, &mut Rng::new(1));
        let (mean, var, _) = moments(&w);
        assert!(mean.abs() < 0.003, "{mean}");
        assert!((var / (2.0 / 256.0) - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn xavier_uniform_bounds_and_variance() {
        let mut w = vec![0.0; 300 * 100];
        init_kernel(&mut w, 300, 100, Init::Auto, Activation::Tanh, 0.0, 0.0, &mut Rng::new(2));
        let (_, var, max) = moments(&w);
        let limit = (6.0f64 / 400.0).sqrt();
        assert!(max <= limit + 1e-7);
        assert!((var / (limit * limit / 3.0) - 1.0).abs() < 0.03, "{var}");
    }

    #[test]
    fn every_initialiser_is_finite_and_seeded() {
        for init in Init::ALL {
            let mut a = vec![0.0; 64];
            let mut b = vec![0.0; 64];
            init_kernel(&mut a, 8, 8, init, Activation::LeakyRelu, 0.01, 0.5, &mut Rng::new(5));
            init_kernel(&mut b, 8, 8, init, Activation::LeakyRelu, 0.01, 0.5, &mut Rng::new(5));
            assert_eq!(a, b, "{}", init.name());
            assert!(a.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn lecun_uniform_and_constant() {
        let mut w = vec![0.0; 200 * 300];
        init_kernel(&mut w, 200, 300, Init::LecunUniform, Activation::Tanh, 0.0, 0.0, &mut Rng::new(3));
        let (_, var, max) = moments(&w);
        let limit = (3.0f64 / 200.0).sqrt();
        assert!(max <= limit + 1e-7);
        assert!((var / (1.0 / 200.0) - 1.0).abs() < 0.03, "{var}");
        let mut rng = Rng::new(4);
        let before = rng.clone();
        init_kernel(&mut w, 200, 300, Init::Constant, Activation::Tanh, 0.0, -0.25, &mut rng);
        assert!(w.iter().all(|&v| v == -0.25));
        assert_eq!(rng, before, "constant draws nothing");
        assert_eq!(Init::from_u32(7), Some(Init::LecunUniform));
        assert_eq!(Init::from_u32(8).map(Init::name), Some("constant"));
        assert_eq!(Init::from_u32(9), None);
    }
}
