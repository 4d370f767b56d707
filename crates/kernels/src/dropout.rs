//! Inverted dropout (PyTorch's `nn.Dropout` in training mode): each element is dropped with
//! probability `rate` and the kept ones are scaled by 1/(1 − rate), so eval mode is the identity.
//!
//! Shapes: x, y, mask, dy, dx are N = B·F floats. Randomness stays with the caller: `mask`
//! arrives holding uniform draws in [0, 1) and the forward turns it into the multipliers
//! (0 or 1/(1 − rate), the same f32 values torch's `bernoulli_(1 − p).div_(1 − p)` produces),
//! which the backward reuses. Both directions are then one multiply per element.

/// x (N) → y (N) = x ⊙ mask, after turning the uniforms in `mask` (N) into multipliers:
/// 0 where u < rate (dropped), 1/(1 − rate) otherwise. rate in [0, 1). Overwrites y and mask.
pub fn dropout_forward(rate: f32, x: &[f32], mask: &mut [f32], y: &mut [f32]) {
    check("dropout_forward", rate, x.len(), mask.len(), y.len());
    let n = x.len();
    let scale = 1.0 / (1.0 - rate);
    for ((m, &xv), yv) in mask[..n].iter_mut().zip(x).zip(&mut y[..n]) {
        let k = if *m < rate { 0.0 } else { scale };
        *m = k;
        *yv = xv * k;
    }
}

/// dx (N) = dy ⊙ mask with the multipliers [`dropout_forward`] left in `mask` (overwrite).
pub fn dropout_backward(mask: &[f32], dy: &[f32], dx: &mut [f32]) {
    check("dropout_backward", 0.0, dy.len(), mask.len(), dx.len());
    let n = dy.len();
    for ((d, &g), &m) in dx[..n].iter_mut().zip(dy).zip(mask) {
        *d = g * m;
    }
}

/// Reference for [`dropout_forward`].
pub fn dropout_forward_naive(rate: f32, x: &[f32], mask: &mut [f32], y: &mut [f32]) {
    check("dropout_forward_naive", rate, x.len(), mask.len(), y.len());
    for i in 0..x.len() {
        let keep = mask[i] >= rate;
        mask[i] = if keep { 1.0 / (1.0 - rate) } else { 0.0 };
        y[i] = x[i] * mask[i];
    }
}

/// Reference for [`dropout_backward`].
pub fn dropout_backward_naive(mask: &[f32], dy: &[f32], dx: &mut [f32]) {
    check("dropout_backward_naive", 0.0, dy.len(), mask.len(), dx.len());
    for i in 0..dy.len() {
        dx[i] = dy[i] * mask[i];
    }
}

fn check(op: &str, rate: f32, n: usize, mask: usize, out: usize) {
    assert!((0.0..1.0).contains(&rate), "{op}: rate must be in [0, 1), got {rate}");
    assert!(mask >= n, "{op}: mask has {mask} floats, needs {n}");
    assert!(out >= n, "{op}: output has {out} floats, needs {n}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close_each, Rng};

    #[test]
    fn forward_and_backward_match_naive() {
        let mut rng = Rng::new(4);
        for rate in [0.0, 0.1, 0.5, 0.9] {
            for n in [0, 1, 7, 64, 1001] {
                let x = rng.vec(n, -2.0, 2.0);
                let u = rng.vec(n, 0.0, 1.0);
                let (mut m, mut y) = (u.clone(), vec![f32::NAN; n]);
                dropout_forward(rate, &x, &mut m, &mut y);
                let (mut mn, mut yn) = (u.clone(), vec![f32::NAN; n]);
                dropout_forward_naive(rate, &x, &mut mn, &mut yn);
                let what = format!("rate {rate} n {n}");
                assert_close_each(&format!("mask {what}"), &m, &mn, |_| 0.0);
                assert_close_each(&format!("y {what}"), &y, &yn, |_| 0.0);
                let dy = rng.vec(n, -1.0, 1.0);
                let (mut dx, mut dxn) = (vec![f32::NAN; n], vec![f32::NAN; n]);
                dropout_backward(&m, &dy, &mut dx);
                dropout_backward_naive(&m, &dy, &mut dxn);
                assert_close_each(&format!("dx {what}"), &dx, &dxn, |_| 0.0);
            }
        }
    }

    #[test]
    fn drops_the_expected_fraction_and_keeps_the_mean() {
        let mut rng = Rng::new(8);
        let n = 100_000;
        let x = vec![1.0f32; n];
        for rate in [0.0f32, 0.2, 0.5] {
            let mut m = rng.vec(n, 0.0, 1.0);
            let mut y = vec![0.0; n];
            dropout_forward(rate, &x, &mut m, &mut y);
            let dropped = m.iter().filter(|&&k| k == 0.0).count() as f64 / n as f64;
            assert!((dropped - f64::from(rate)).abs() < 0.01, "rate {rate}: dropped {dropped}");
            assert!(m.iter().all(|&k| k == 0.0 || k == 1.0 / (1.0 - rate)));
            let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
            assert!((mean - 1.0).abs() < 0.02, "rate {rate}: mean {mean}");
        }
    }

    #[test]
    #[should_panic(expected = "dropout_forward: rate must be in [0, 1)")]
    fn rate_one_is_rejected() {
        dropout_forward(1.0, &[1.0], &mut [0.5], &mut [0.0]);
    }
}
