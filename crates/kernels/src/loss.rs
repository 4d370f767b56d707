//! Losses with PyTorch's `reduction='mean'` and their gradients w.r.t. the predictions.
//!
//! Shapes (row-major): softmax cross-entropy takes logits pred (B,C) and targets (B) holding
//! class ids as f32; MSE and BCE-with-logits take pred and target (B,O). Sums are accumulated
//! in f64 and every formula is the numerically stable one:
//! - softmax CE: log-sum-exp with the row max subtracted, so logits of ±1e3 are fine;
//! - BCE with logits: max(z,0) − z·t + log(1 + e^(−|z|)), never exponentiating a positive number.

use crate::activation::sigmoid;

/// A loss function; the discriminants are the ids used across the C ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Softmax over C logits followed by negative log-likelihood of the target class.
    SoftmaxCrossEntropy = 0,
    /// Mean of squared differences over all B·O elements.
    MeanSquaredError = 1,
    /// Sigmoid + binary cross-entropy on logits, mean over all B·O elements.
    BinaryCrossEntropyWithLogits = 2,
}

impl Loss {
    /// Every loss, indexed by its id.
    pub const ALL: [Loss; 3] = [
        Loss::SoftmaxCrossEntropy,
        Loss::MeanSquaredError,
        Loss::BinaryCrossEntropyWithLogits,
    ];

    /// The loss with ABI id `id`, or `None` for an unknown id.
    pub fn from_u32(id: u32) -> Option<Self> {
        Self::ALL.get(id as usize).copied()
    }

    /// The name used by the TypeScript API.
    pub fn name(self) -> &'static str {
        match self {
            Loss::SoftmaxCrossEntropy => "softmaxCrossEntropy",
            Loss::MeanSquaredError => "meanSquaredError",
            Loss::BinaryCrossEntropyWithLogits => "binaryCrossEntropyWithLogits",
        }
    }
}

/// Mean loss over the batch, and when `grad` is `Some`, the gradient of that mean w.r.t. `pred`
/// (overwritten, same shape as `pred`).
///
/// SoftmaxCrossEntropy: pred (B,C=o) logits, target (B) class ids as f32, already validated with
/// [`first_bad_class_label`] (an out-of-range id panics). MeanSquaredError and
/// BinaryCrossEntropyWithLogits: pred and target (B,O), mean over B·O. An empty batch
/// (B·O = 0) has loss 0.
pub fn loss_forward_backward(
    loss: Loss,
    bsz: usize,
    o: usize,
    pred: &[f32],
    target: &[f32],
    grad: Option<&mut [f32]>,
) -> f32 {
    loss_f64(loss, bsz, o, pred, target, grad) as f32
}

/// [`loss_forward_backward`] before the final rounding to f32 (the gradient checks use it).
fn loss_f64(
    loss: Loss,
    bsz: usize,
    o: usize,
    pred: &[f32],
    target: &[f32],
    grad: Option<&mut [f32]>,
) -> f64 {
    let n = bsz * o;
    assert!(
        pred.len() >= n,
        "loss: pred has {} floats, needs B*O = {bsz}*{o}",
        pred.len()
    );
    let target_len = if loss == Loss::SoftmaxCrossEntropy {
        bsz
    } else {
        n
    };
    assert!(
        target.len() >= target_len,
        "loss: target has {} floats, needs {target_len}",
        target.len()
    );
    if let Some(g) = &grad {
        assert!(
            g.len() >= n,
            "loss: grad has {} floats, needs B*O = {bsz}*{o}",
            g.len()
        );
    }
    if n == 0 {
        return 0.0;
    }
    let (pred, target) = (&pred[..n], &target[..target_len]);
    let mut grad = grad.map(|g| &mut g[..n]);
    match loss {
        Loss::SoftmaxCrossEntropy => {
            let inv_b = 1.0 / bsz as f64;
            let mut total = 0.0f64;
            for (r, (zr, &t)) in pred.chunks_exact(o).zip(target).enumerate() {
                let t = t as usize;
                // log Σ e^(z_j) = m + log Σ e^(z_j − m): every exponent is <= 0, the largest is 0.
                let m = zr.iter().fold(f32::NEG_INFINITY, |acc, &v| acc.max(v));
                let m = f64::from(m);
                let sum: f64 = zr.iter().map(|&v| (f64::from(v) - m).exp()).sum();
                let log_sum = sum.ln();
                total += m + log_sum - f64::from(zr[t]);
                if let Some(g) = grad.as_deref_mut() {
                    // softmax_j − [j = t], divided by B for the mean.
                    let gr = &mut g[r * o..][..o];
                    for (gv, &v) in gr.iter_mut().zip(zr) {
                        *gv = ((f64::from(v) - m - log_sum).exp() * inv_b) as f32;
                    }
                    gr[t] = (((f64::from(zr[t]) - m - log_sum).exp() - 1.0) * inv_b) as f32;
                }
            }
            total * inv_b
        }
        Loss::MeanSquaredError => {
            let inv_n = 1.0 / n as f64;
            let mut total = 0.0f64;
            for (e, (&p, &t)) in pred.iter().zip(target).enumerate() {
                let diff = f64::from(p) - f64::from(t);
                total += diff * diff;
                if let Some(g) = grad.as_deref_mut() {
                    g[e] = (2.0 * diff * inv_n) as f32;
                }
            }
            total * inv_n
        }
        Loss::BinaryCrossEntropyWithLogits => {
            let inv_n = 1.0 / n as f64;
            let mut total = 0.0f64;
            for (e, (&z, &t)) in pred.iter().zip(target).enumerate() {
                let (zd, td) = (f64::from(z), f64::from(t));
                total += zd.max(0.0) - zd * td + (-zd.abs()).exp().ln_1p();
                if let Some(g) = grad.as_deref_mut() {
                    g[e] = ((f64::from(sigmoid(z)) - td) * inv_n) as f32;
                }
            }
            total * inv_n
        }
    }
}

/// Number of correct predictions: softmax CE counts rows whose argmax (first on ties) equals the
/// label; BCE counts elements with (logit > 0) == (target >= 0.5); MSE has no notion of correct
/// and returns 0. Shapes as in [`loss_forward_backward`].
pub fn count_correct(loss: Loss, bsz: usize, o: usize, pred: &[f32], target: &[f32]) -> u32 {
    let n = bsz * o;
    assert!(
        pred.len() >= n,
        "count_correct: pred has {} floats, needs B*O = {bsz}*{o}",
        pred.len()
    );
    match loss {
        Loss::SoftmaxCrossEntropy => {
            if o == 0 {
                return 0;
            }
            assert!(
                target.len() >= bsz,
                "count_correct: target has {} floats, needs B = {bsz}",
                target.len()
            );
            let mut correct = 0;
            for (zr, &t) in pred[..n].chunks_exact(o).zip(target) {
                let mut best = 0;
                for (j, &v) in zr.iter().enumerate() {
                    if v > zr[best] {
                        best = j;
                    }
                }
                correct += u32::from(best as f32 == t);
            }
            correct
        }
        Loss::MeanSquaredError => 0,
        Loss::BinaryCrossEntropyWithLogits => {
            assert!(
                target.len() >= n,
                "count_correct: target has {} floats, needs B*O = {n}",
                target.len()
            );
            pred[..n]
                .iter()
                .zip(target)
                .map(|(&z, &t)| u32::from((z > 0.0) == (t >= 0.5)))
                .sum()
        }
    }
}

/// Index of the first target that is not an integer in [0, C) (NaN and ±∞ included), for
/// softmax cross-entropy. `None` if all are valid class ids.
pub fn first_bad_class_label(target: &[f32], c: usize) -> Option<usize> {
    target
        .iter()
        .position(|&t| !(t >= 0.0 && t.fract() == 0.0 && (t as usize) < c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close_each, Rng};

    fn close(got: f32, want: f64, tol: f64, what: &str) {
        assert!(
            (f64::from(got) - want).abs() <= tol,
            "{what}: expected {want:e}, actual {got:e}"
        );
    }

    #[test]
    fn ids_names_and_from_u32_agree() {
        for (id, loss) in Loss::ALL.iter().enumerate() {
            assert_eq!(*loss as u32, id as u32);
            assert_eq!(Loss::from_u32(id as u32), Some(*loss));
        }
        assert_eq!(Loss::from_u32(3), None);
        let names: Vec<_> = Loss::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(
            names,
            [
                "softmaxCrossEntropy",
                "meanSquaredError",
                "binaryCrossEntropyWithLogits"
            ]
        );
    }

    /// Values worked by hand (and matching torch.nn.functional with reduction='mean').
    #[test]
    fn losses_match_hand_computed_values() {
        // CE row 1: logits (1,2,3), class 2: log(e¹+e²+e³) − 3 = 0.40760596444437.
        // CE row 2: logits (0,0,0), class 0: log 3 = 1.09861228866811. Mean 0.75310912655624.
        let pred = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0];
        let mut g = [0.0f32; 6];
        let l = loss_forward_backward(
            Loss::SoftmaxCrossEntropy,
            2,
            3,
            &pred,
            &[2.0, 0.0],
            Some(&mut g),
        );
        close(l, 0.75310912655624, 1e-7, "CE loss");
        // Gradient = (softmax − onehot)/B; softmax(1,2,3) = (0.09003057, 0.24472847, 0.66524096).
        let want = [
            0.09003057317038 / 2.0,
            0.24472847105480 / 2.0,
            (0.66524095577482 - 1.0) / 2.0,
            (1.0 / 3.0 - 1.0) / 2.0,
            1.0 / 6.0,
            1.0 / 6.0,
        ];
        for (e, (&gv, &w)) in g.iter().zip(&want).enumerate() {
            close(gv, w, 1e-7, &format!("CE grad[{e}]"));
        }

        // MSE: ((1−0)² + (2−4)²)/2 = 2.5, gradient 2(p − t)/n = (1, −2).
        let mut g = [0.0f32; 2];
        let l = loss_forward_backward(
            Loss::MeanSquaredError,
            1,
            2,
            &[1.0, 2.0],
            &[0.0, 4.0],
            Some(&mut g),
        );
        close(l, 2.5, 0.0, "MSE loss");
        assert_eq!(g, [1.0, -2.0]);

        // BCE with logits z = (0, 2), t = (1, 0): (log 2 + 2 + log(1 + e⁻²))/2 = 1.41003757...
        // gradient (σ(z) − t)/n = (−0.25, 0.44039853898894).
        let mut g = [0.0f32; 2];
        let l = loss_forward_backward(
            Loss::BinaryCrossEntropyWithLogits,
            2,
            1,
            &[0.0, 2.0],
            &[1.0, 0.0],
            Some(&mut g),
        );
        let want = (2f64.ln() + 2.0 + (1.0 + (-2f64).exp()).ln()) / 2.0;
        close(l, want, 1e-7, "BCE loss");
        close(l, 1.4100375, 1e-6, "BCE loss (decimal)");
        close(g[0], -0.25, 1e-8, "BCE grad[0]");
        close(g[1], 0.44039853898894, 1e-7, "BCE grad[1]");
    }

    #[test]
    fn softmax_ce_is_stable_for_huge_logits() {
        let pred = [1000.0, -1000.0, 0.0, -1000.0, 1000.0, 999.0];
        let mut g = [f32::NAN; 6];
        // Row 1 picks its max (loss ≈ e⁻¹⁰⁰⁰ ≈ 0); row 2 picks −1000 where the max is 1000:
        // loss = 1000 + log(1 + e⁻¹) + 1000 = 2000.31326168751822.
        let l = loss_forward_backward(
            Loss::SoftmaxCrossEntropy,
            2,
            3,
            &pred,
            &[0.0, 0.0],
            Some(&mut g),
        );
        close(l, 2_000.313_261_687_518_2 / 2.0, 1e-4, "CE loss at ±1000");
        assert!(g.iter().all(|v| v.is_finite()), "gradient {g:?}");
        // Row 2 softmax: (0, 1/(1+e⁻¹), e⁻¹/(1+e⁻¹)) = (0, 0.7310586, 0.2689414).
        let want = [0.0, 0.0, 0.0, -0.5, 0.731_058_6 / 2.0, 0.268_941_43 / 2.0];
        assert_close_each("CE grad at ±1000", &g, &want, |_| 1e-7);

        let mut g = [0.0f32; 2];
        let l = loss_forward_backward(
            Loss::BinaryCrossEntropyWithLogits,
            1,
            2,
            &[-1000.0, 1000.0],
            &[1.0, 1.0],
            Some(&mut g),
        );
        close(l, 500.0, 1e-4, "BCE loss at ±1000");
        assert_eq!(g, [-0.5, 0.0]);
    }

    /// Central differences of the f64 loss against the returned gradient, for every loss on a
    /// few random problems. Perturbed inputs are f32, so the step is the actual difference of
    /// the two f32 inputs; the rest of the error is O(h²) and the f32 rounding of the gradient.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(99);
        for loss in Loss::ALL {
            for (bsz, o) in [(1, 1), (1, 4), (3, 5), (8, 2)] {
                if loss == Loss::SoftmaxCrossEntropy && o == 1 {
                    continue;
                }
                let pred = rng.vec(bsz * o, -3.0, 3.0);
                let target: Vec<f32> = match loss {
                    Loss::SoftmaxCrossEntropy => (0..bsz)
                        .map(|_| (rng.next_u64() % o as u64) as f32)
                        .collect(),
                    Loss::MeanSquaredError => rng.vec(bsz * o, -2.0, 2.0),
                    Loss::BinaryCrossEntropyWithLogits => rng.vec(bsz * o, 0.0, 1.0),
                };
                let mut grad = vec![0.0; bsz * o];
                loss_forward_backward(loss, bsz, o, &pred, &target, Some(&mut grad));
                for e in 0..bsz * o {
                    let (mut plus, mut minus) = (pred.clone(), pred.clone());
                    plus[e] += 1e-3;
                    minus[e] -= 1e-3;
                    let step = f64::from(plus[e]) - f64::from(minus[e]);
                    let fd = (loss_f64(loss, bsz, o, &plus, &target, None)
                        - loss_f64(loss, bsz, o, &minus, &target, None))
                        / step;
                    let got = f64::from(grad[e]);
                    assert!(
                        (got - fd).abs() <= 1e-6 + 1e-5 * fd.abs(),
                        "{} (B,O)=({bsz},{o}) index {e}: finite difference {fd:e}, gradient {got:e}",
                        loss.name()
                    );
                }
            }
        }
    }

    #[test]
    fn loss_without_grad_matches_loss_with_grad() {
        let mut rng = Rng::new(5);
        let pred = rng.vec(12, -2.0, 2.0);
        let target = [1.0, 0.0, 2.0, 2.0];
        let mut g = vec![0.0; 12];
        let with = loss_forward_backward(
            Loss::SoftmaxCrossEntropy,
            4,
            3,
            &pred,
            &target,
            Some(&mut g),
        );
        let without = loss_forward_backward(Loss::SoftmaxCrossEntropy, 4, 3, &pred, &target, None);
        assert_eq!(with.to_bits(), without.to_bits());
        // Empty batch: loss 0, nothing touched.
        assert_eq!(
            loss_forward_backward(Loss::MeanSquaredError, 0, 3, &[], &[], Some(&mut [])),
            0.0
        );
    }

    #[test]
    fn count_correct_follows_each_loss() {
        // Row 2 ties 0.5/0.5: argmax is the first, index 1.
        let pred = [0.1, 0.7, 0.2, 0.0, 0.5, 0.5, 3.0, -1.0, 2.0];
        assert_eq!(
            count_correct(Loss::SoftmaxCrossEntropy, 3, 3, &pred, &[1.0, 1.0, 2.0]),
            2
        );
        assert_eq!(
            count_correct(Loss::SoftmaxCrossEntropy, 3, 3, &pred, &[1.0, 2.0, 0.0]),
            2
        );
        let z = [0.3, -0.2, 0.0, 5.0];
        assert_eq!(
            count_correct(
                Loss::BinaryCrossEntropyWithLogits,
                2,
                2,
                &z,
                &[1.0, 0.0, 0.0, 0.4]
            ),
            3
        );
        assert_eq!(
            count_correct(
                Loss::BinaryCrossEntropyWithLogits,
                1,
                2,
                &[1.0, -1.0],
                &[0.5, 0.49]
            ),
            2
        );
        assert_eq!(count_correct(Loss::MeanSquaredError, 2, 2, &z, &z), 0);
    }

    #[test]
    fn first_bad_class_label_finds_the_first_invalid_id() {
        assert_eq!(first_bad_class_label(&[0.0, 2.0, 1.0], 3), None);
        assert_eq!(first_bad_class_label(&[], 3), None);
        assert_eq!(first_bad_class_label(&[0.0, 1.5, -1.0], 3), Some(1));
        assert_eq!(first_bad_class_label(&[0.0, 3.0], 3), Some(1));
        assert_eq!(first_bad_class_label(&[-1.0], 3), Some(0));
        assert_eq!(first_bad_class_label(&[1.0, f32::NAN], 3), Some(1));
        assert_eq!(first_bad_class_label(&[f32::INFINITY], 3), Some(0));
        assert_eq!(first_bad_class_label(&[1e30], 3), Some(0));
        assert_eq!(first_bad_class_label(&[0.0], 0), Some(0));
    }
}
