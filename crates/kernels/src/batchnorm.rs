//! Batch normalisation over the batch dimension of a dense activation (PyTorch's BatchNorm1d on
//! (B,F) input), with an element-wise activation fused after the affine step:
//! `xhat = (x − μ)·invstd`, `z = γ ⊙ xhat + β`, `y = act(z)`.
//!
//! Shapes (row-major): x, xhat, y, dy, dx (B,F); gamma, beta, mean, var, invstd, running_mean,
//! running_var, dgamma, dbeta (F). Statistics and the backward's column sums accumulate in f64,
//! as PyTorch's CPU kernels do (`acc_type<float>` is double there).
//!
//! Training mode normalises with the batch mean and the biased batch variance; eval mode with
//! the running statistics. The running-statistic update is its own function,
//! [`batchnorm_update_running`], so that a model can compute a step's batch statistics, check
//! the step, and only then commit them. Backward overwrites dgamma, dbeta, dx, and dy (with
//! dz = dy ⊙ act'(z), as the dense backward does).
//!
//! Column sums run over blocks of [`COLS`] adjacent features with one f64 accumulator each, row
//! after row, so every row is read contiguously and no per-feature f64 scratch is needed.

use crate::activation::{with_derivative, with_forward, Activation};

/// Features per column block of the statistic and gradient sums.
const COLS: usize = 4;

/// Training-mode forward. x (B,F) → mean (F), var (F) = biased batch variance, invstd (F) =
/// 1/√(var + eps); xhat (B,F) = (x − mean)·invstd; y (B,F) = act(gamma ⊙ xhat + beta). All
/// outputs are overwritten. B ≥ 1 (B = 1 gives var 0; callers reject it as PyTorch does).
pub fn batchnorm_forward_train(
    bsz: usize,
    f: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    act: Activation,
    alpha: f32,
    xhat: &mut [f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
    invstd: &mut [f32],
) {
    check_forward("batchnorm_forward_train", bsz, f, x, gamma, beta, xhat, y, &[("mean", mean.len()), ("var", var.len()), ("invstd", invstd.len())]);
    if bsz == 0 || f == 0 {
        return;
    }
    let b = bsz as f64;
    let mut j0 = 0;
    while j0 < f {
        let w = COLS.min(f - j0);
        let mut sum = [0.0f64; COLS];
        for row in x[..bsz * f].chunks_exact(f) {
            for (s, &v) in sum.iter_mut().zip(&row[j0..j0 + w]) {
                *s += f64::from(v);
            }
        }
        let mu = sum.map(|s| s / b);
        let mut sq = [0.0f64; COLS];
        for row in x[..bsz * f].chunks_exact(f) {
            for ((q, &v), &m) in sq.iter_mut().zip(&row[j0..j0 + w]).zip(&mu) {
                let d = f64::from(v) - m;
                *q += d * d;
            }
        }
        for c in 0..w {
            let v = sq[c] / b;
            mean[j0 + c] = mu[c] as f32;
            var[j0 + c] = v as f32;
            invstd[j0 + c] = (1.0 / (v + f64::from(eps)).sqrt()) as f32;
        }
        j0 += w;
    }
    normalize(bsz, f, x, gamma, beta, mean, invstd, act, alpha, xhat, y);
}

/// Eval-mode forward with the running statistics: invstd (F) = 1/√(running_var + eps);
/// xhat (B,F) = (x − running_mean)·invstd; y (B,F) = act(gamma ⊙ xhat + beta). All outputs
/// are overwritten (xhat and invstd serve a backward pass in eval mode).
pub fn batchnorm_forward_eval(
    bsz: usize,
    f: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    act: Activation,
    alpha: f32,
    xhat: &mut [f32],
    y: &mut [f32],
    invstd: &mut [f32],
) {
    check_forward(
        "batchnorm_forward_eval",
        bsz,
        f,
        x,
        gamma,
        beta,
        xhat,
        y,
        &[("running_mean", running_mean.len()), ("running_var", running_var.len()), ("invstd", invstd.len())],
    );
    for (s, &v) in invstd[..f].iter_mut().zip(&running_var[..f]) {
        *s = (1.0 / (f64::from(v) + f64::from(eps)).sqrt()) as f32;
    }
    if bsz == 0 || f == 0 {
        return;
    }
    normalize(bsz, f, x, gamma, beta, running_mean, invstd, act, alpha, xhat, y);
}

/// xhat = (x − mean)·invstd and y = act(gamma ⊙ xhat + beta), row by row (vectorisable).
fn normalize(
    bsz: usize,
    f: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    invstd: &[f32],
    act: Activation,
    alpha: f32,
    xhat: &mut [f32],
    y: &mut [f32],
) {
    let (gamma, beta, mean, invstd) = (&gamma[..f], &beta[..f], &mean[..f], &invstd[..f]);
    with_forward!(act, alpha, |fwd| {
        let rows = x[..bsz * f].chunks_exact(f).zip(xhat[..bsz * f].chunks_exact_mut(f)).zip(y[..bsz * f].chunks_exact_mut(f));
        for ((xr, hr), yr) in rows {
            for j in 0..f {
                let h = (xr[j] - mean[j]) * invstd[j];
                hr[j] = h;
                yr[j] = fwd(gamma[j] * h + beta[j]);
            }
        }
    })
}

/// Backward of either forward, given its xhat, y and invstd. dy (B,F) is overwritten with
/// dz = dy ⊙ act'(z) (z = gamma ⊙ xhat + beta recomputed bit-identically); dbeta (F) = Σ_B dz,
/// dgamma (F) = Σ_B dz ⊙ xhat (f64 sums); and when `dx` (B,F) is Some:
/// training: dx = (dz − dbeta/B − xhat ⊙ dgamma/B) ⊙ invstd ⊙ gamma (the batch statistics
/// depend on x); eval: dx = dz ⊙ invstd ⊙ gamma. All outputs are overwritten.
pub fn batchnorm_backward(
    bsz: usize,
    f: usize,
    xhat: &[f32],
    y: &[f32],
    gamma: &[f32],
    beta: &[f32],
    invstd: &[f32],
    act: Activation,
    alpha: f32,
    training: bool,
    dy: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    dx: Option<&mut [f32]>,
) {
    check_backward("batchnorm_backward", bsz, f, xhat, y, gamma, beta, invstd, dy, dgamma, dbeta, &dx);
    if f == 0 {
        return;
    }
    with_derivative!(act, alpha, |d| {
        let full = f - f % COLS;
        for j0 in (0..full).step_by(COLS) {
            dz_column_block::<COLS>(bsz, f, j0, xhat, y, gamma, beta, dy, dgamma, dbeta, &d);
        }
        for j0 in full..f {
            dz_column_block::<1>(bsz, f, j0, xhat, y, gamma, beta, dy, dgamma, dbeta, &d);
        }
    });
    let Some(dx) = dx else { return };
    if bsz == 0 {
        return;
    }
    let (gamma, invstd, dgamma, dbeta) = (&gamma[..f], &invstd[..f], &dgamma[..f], &dbeta[..f]);
    let inv_b = 1.0 / bsz as f32;
    let rows = dy[..bsz * f].chunks_exact(f).zip(xhat[..bsz * f].chunks_exact(f)).zip(dx[..bsz * f].chunks_exact_mut(f));
    if training {
        for ((dzr, hr), dxr) in rows {
            for j in 0..f {
                dxr[j] = (dzr[j] - dbeta[j] * inv_b - hr[j] * (dgamma[j] * inv_b)) * (invstd[j] * gamma[j]);
            }
        }
    } else {
        for ((dzr, _), dxr) in rows {
            for j in 0..f {
                dxr[j] = dzr[j] * (invstd[j] * gamma[j]);
            }
        }
    }
}

/// Columns j0..j0+W of the backward's first pass: dz = dy ⊙ act'(gamma ⊙ xhat + beta) in
/// place, dbeta = Σ dz and dgamma = Σ dz ⊙ xhat in f64. W is a constant so that the block's
/// rows are fixed-size arrays the compiler turns into f32x4 / f64x2 arithmetic.
#[inline(always)]
fn dz_column_block<const W: usize>(
    bsz: usize,
    f: usize,
    j0: usize,
    xhat: &[f32],
    y: &[f32],
    gamma: &[f32],
    beta: &[f32],
    dy: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    d: &impl Fn(f32, f32) -> f32,
) {
    let g: &[f32; W] = gamma[j0..j0 + W].try_into().expect("W columns");
    let b: &[f32; W] = beta[j0..j0 + W].try_into().expect("W columns");
    let (mut s_dz, mut s_dzh) = ([0.0f64; W], [0.0f64; W]);
    for r in 0..bsz {
        let span = r * f + j0..r * f + j0 + W;
        let h: &[f32; W] = xhat[span.clone()].try_into().expect("W columns");
        let yv: &[f32; W] = y[span.clone()].try_into().expect("W columns");
        let dv: &mut [f32; W] = (&mut dy[span]).try_into().expect("W columns");
        for c in 0..W {
            let dz = dv[c] * d(g[c] * h[c] + b[c], yv[c]);
            dv[c] = dz;
            s_dz[c] += f64::from(dz);
            s_dzh[c] += f64::from(dz) * f64::from(h[c]);
        }
    }
    for c in 0..W {
        dbeta[j0 + c] = s_dz[c] as f32;
        dgamma[j0 + c] = s_dzh[c] as f32;
    }
}

/// Commits one training batch's statistics to the running ones (PyTorch semantics):
/// running_mean ← (1−m)·running_mean + m·mean; running_var ← (1−m)·running_var + m·var·B/(B−1)
/// (the unbiased batch variance), in f64. mean and var (F) are [`batchnorm_forward_train`]'s
/// outputs for a batch of `bsz` ≥ 2 rows.
pub fn batchnorm_update_running(f: usize, bsz: usize, mean: &[f32], var: &[f32], momentum: f32, running_mean: &mut [f32], running_var: &mut [f32]) {
    assert!(bsz >= 2, "batchnorm_update_running: needs a batch of at least 2, got {bsz}");
    for (name, len) in [("mean", mean.len()), ("var", var.len()), ("running_mean", running_mean.len()), ("running_var", running_var.len())] {
        check_len("batchnorm_update_running", name, len, f);
    }
    let m = f64::from(momentum);
    let unbias = bsz as f64 / (bsz - 1) as f64;
    for j in 0..f {
        running_mean[j] = ((1.0 - m) * f64::from(running_mean[j]) + m * f64::from(mean[j])) as f32;
        running_var[j] = ((1.0 - m) * f64::from(running_var[j]) + m * f64::from(var[j]) * unbias) as f32;
    }
}

/// Reference for [`batchnorm_forward_train`]: one feature at a time, straight from the formulas.
pub fn batchnorm_forward_train_naive(
    bsz: usize,
    f: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    act: Activation,
    alpha: f32,
    xhat: &mut [f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
    invstd: &mut [f32],
) {
    check_forward("batchnorm_forward_train_naive", bsz, f, x, gamma, beta, xhat, y, &[("mean", mean.len()), ("var", var.len()), ("invstd", invstd.len())]);
    if bsz == 0 {
        return;
    }
    for j in 0..f {
        let mu = (0..bsz).map(|r| f64::from(x[r * f + j])).sum::<f64>() / bsz as f64;
        let v = (0..bsz).map(|r| (f64::from(x[r * f + j]) - mu).powi(2)).sum::<f64>() / bsz as f64;
        mean[j] = mu as f32;
        var[j] = v as f32;
        invstd[j] = (1.0 / (v + f64::from(eps)).sqrt()) as f32;
        for r in 0..bsz {
            let i = r * f + j;
            xhat[i] = (x[i] - mean[j]) * invstd[j];
            y[i] = act.forward(gamma[j] * xhat[i] + beta[j], alpha);
        }
    }
}

/// Reference for [`batchnorm_forward_eval`].
pub fn batchnorm_forward_eval_naive(
    bsz: usize,
    f: usize,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
    act: Activation,
    alpha: f32,
    xhat: &mut [f32],
    y: &mut [f32],
    invstd: &mut [f32],
) {
    check_forward(
        "batchnorm_forward_eval_naive",
        bsz,
        f,
        x,
        gamma,
        beta,
        xhat,
        y,
        &[("running_mean", running_mean.len()), ("running_var", running_var.len()), ("invstd", invstd.len())],
    );
    for j in 0..f {
        invstd[j] = (1.0 / (f64::from(running_var[j]) + f64::from(eps)).sqrt()) as f32;
        for r in 0..bsz {
            let i = r * f + j;
            xhat[i] = (x[i] - running_mean[j]) * invstd[j];
            y[i] = act.forward(gamma[j] * xhat[i] + beta[j], alpha);
        }
    }
}

/// Reference for [`batchnorm_backward`]: one feature at a time.
pub fn batchnorm_backward_naive(
    bsz: usize,
    f: usize,
    xhat: &[f32],
    y: &[f32],
    gamma: &[f32],
    beta: &[f32],
    invstd: &[f32],
    act: Activation,
    alpha: f32,
    training: bool,
    dy: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
    mut dx: Option<&mut [f32]>,
) {
    check_backward("batchnorm_backward_naive", bsz, f, xhat, y, gamma, beta, invstd, dy, dgamma, dbeta, &dx);
    for j in 0..f {
        let (mut s_dz, mut s_dzh) = (0.0f64, 0.0f64);
        for r in 0..bsz {
            let i = r * f + j;
            dy[i] *= act.derivative(gamma[j] * xhat[i] + beta[j], y[i], alpha);
            s_dz += f64::from(dy[i]);
            s_dzh += f64::from(dy[i]) * f64::from(xhat[i]);
        }
        dbeta[j] = s_dz as f32;
        dgamma[j] = s_dzh as f32;
        if let Some(dx) = dx.as_deref_mut() {
            let b = bsz as f32;
            for r in 0..bsz {
                let i = r * f + j;
                let centred = if training { dy[i] - dbeta[j] * (1.0 / b) - xhat[i] * (dgamma[j] * (1.0 / b)) } else { dy[i] };
                dx[i] = centred * (invstd[j] * gamma[j]);
            }
        }
    }
}

fn check_len(op: &str, name: &str, have: usize, need: usize) {
    assert!(have >= need, "{op}: {name} has {have} floats, needs {need}");
}

fn check_forward(op: &str, bsz: usize, f: usize, x: &[f32], gamma: &[f32], beta: &[f32], xhat: &[f32], y: &[f32], per_feature: &[(&str, usize)]) {
    for (name, len) in [("x", x.len()), ("xhat", xhat.len()), ("y", y.len())] {
        check_len(op, name, len, bsz * f);
    }
    for &(name, len) in [("gamma", gamma.len()), ("beta", beta.len())].iter().chain(per_feature) {
        check_len(op, name, len, f);
    }
}

fn check_backward(
    op: &str,
    bsz: usize,
    f: usize,
    xhat: &[f32],
    y: &[f32],
    gamma: &[f32],
    beta: &[f32],
    invstd: &[f32],
    dy: &[f32],
    dgamma: &[f32],
    dbeta: &[f32],
    dx: &Option<&mut [f32]>,
) {
    for (name, len) in [("xhat", xhat.len()), ("y", y.len()), ("dy", dy.len())] {
        check_len(op, name, len, bsz * f);
    }
    for (name, len) in [("gamma", gamma.len()), ("beta", beta.len()), ("invstd", invstd.len()), ("dgamma", dgamma.len()), ("dbeta", dbeta.len())] {
        check_len(op, name, len, f);
    }
    if let Some(dx) = dx {
        check_len(op, "dx", dx.len(), bsz * f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{act_f64, assert_close_each, Rng};

    /// (B, F): pairs, odd, one column block exactly, blocks plus a tail, wide, empty batch.
    const SHAPES: [(usize, usize); 7] = [(2, 1), (3, 5), (4, 4), (7, 9), (33, 70), (2, 130), (0, 3)];
    const ALPHA: f32 = 0.1;
    const EPS: f32 = 1e-5;

    struct Case {
        x: Vec<f32>,
        gamma: Vec<f32>,
        beta: Vec<f32>,
        rm: Vec<f32>,
        rv: Vec<f32>,
        dy: Vec<f32>,
    }

    fn case(rng: &mut Rng, bsz: usize, f: usize) -> Case {
        Case {
            // An offset and a spread per feature, so that the statistics matter.
            x: (0..bsz * f).map(|i| rng.uniform(-1.0, 1.0) * (1.0 + (i % f) as f32 * 0.3) + (i % f) as f32 * 0.5).collect(),
            gamma: rng.vec(f, 0.5, 1.5),
            beta: rng.vec(f, -0.5, 0.5),
            rm: rng.vec(f, -0.2, 0.2),
            rv: rng.vec(f, 0.5, 2.0),
            dy: rng.vec(bsz * f, -1.0, 1.0),
        }
    }

    #[test]
    fn forward_and_backward_match_naive() {
        let mut rng = Rng::new(11);
        for act in Activation::ALL {
            for (bsz, f) in SHAPES {
                let what = format!("{} (B,F)=({bsz},{f})", act.name());
                let c = case(&mut rng, bsz, f);
                let n = bsz * f;
                // Training forward.
                let (mut h, mut y, mut mean, mut var, mut inv) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; f], vec![f32::NAN; f], vec![f32::NAN; f]);
                batchnorm_forward_train(bsz, f, &c.x, &c.gamma, &c.beta, EPS, act, ALPHA, &mut h, &mut y, &mut mean, &mut var, &mut inv);
                let (mut hn, mut yn, mut meann, mut varn, mut invn) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; f], vec![f32::NAN; f], vec![f32::NAN; f]);
                batchnorm_forward_train_naive(bsz, f, &c.x, &c.gamma, &c.beta, EPS, act, ALPHA, &mut hn, &mut yn, &mut meann, &mut varn, &mut invn);
                if bsz > 0 {
                    // Same sums in the same order: identical bits.
                    for (name, a, b) in [("mean", &mean, &meann), ("var", &var, &varn), ("invstd", &inv, &invn), ("xhat", &h, &hn), ("y", &y, &yn)] {
                        assert_close_each(&format!("forward_train {name} {what}"), a, b, |_| 0.0);
                    }
                }
                // Training backward, with and without dx.
                for training in [true, false] {
                    let mut dz = c.dy.clone();
                    let (mut dg, mut db, mut dx) = (vec![f32::NAN; f], vec![f32::NAN; f], vec![f32::NAN; n]);
                    batchnorm_backward(bsz, f, &h, &y, &c.gamma, &c.beta, &inv, act, ALPHA, training, &mut dz, &mut dg, &mut db, Some(&mut dx));
                    let mut dzn = c.dy.clone();
                    let (mut dgn, mut dbn, mut dxn) = (vec![f32::NAN; f], vec![f32::NAN; f], vec![f32::NAN; n]);
                    batchnorm_backward_naive(bsz, f, &h, &y, &c.gamma, &c.beta, &inv, act, ALPHA, training, &mut dzn, &mut dgn, &mut dbn, Some(&mut dxn));
                    for (name, a, b) in [("dz", &dz, &dzn), ("dgamma", &dg, &dgn), ("dbeta", &db, &dbn), ("dx", &dx, &dxn)] {
                        assert_close_each(&format!("backward(training={training}) {name} {what}"), a, b, |_| 0.0);
                    }
                    let mut dz2 = c.dy.clone();
                    let (mut dg2, mut db2) = (vec![f32::NAN; f], vec![f32::NAN; f]);
                    batchnorm_backward(bsz, f, &h, &y, &c.gamma, &c.beta, &inv, act, ALPHA, training, &mut dz2, &mut dg2, &mut db2, None);
                    assert_close_each(&format!("backward without dx dgamma {what}"), &dg2, &dg, |_| 0.0);
                }
                // Eval forward.
                let (mut he, mut ye, mut ie) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; f]);
                batchnorm_forward_eval(bsz, f, &c.x, &c.gamma, &c.beta, &c.rm, &c.rv, EPS, act, ALPHA, &mut he, &mut ye, &mut ie);
                let (mut hen, mut yen, mut ien) = (vec![f32::NAN; n], vec![f32::NAN; n], vec![f32::NAN; f]);
                batchnorm_forward_eval_naive(bsz, f, &c.x, &c.gamma, &c.beta, &c.rm, &c.rv, EPS, act, ALPHA, &mut hen, &mut yen, &mut ien);
                for (name, a, b) in [("xhat", &he, &hen), ("y", &ye, &yen), ("invstd", &ie, &ien)] {
                    assert_close_each(&format!("forward_eval {name} {what}"), a, b, |_| 0.0);
                }
            }
        }
    }

    #[test]
    fn training_output_is_normalised() {
        let (bsz, f) = (64, 6);
        let c = case(&mut Rng::new(2), bsz, f);
        let ones = vec![1.0; f];
        let zeros = vec![0.0; f];
        let (mut h, mut y, mut mean, mut var, mut inv) = (vec![0.0; bsz * f], vec![0.0; bsz * f], vec![0.0; f], vec![0.0; f], vec![0.0; f]);
        batchnorm_forward_train(bsz, f, &c.x, &ones, &zeros, EPS, Activation::Identity, 0.0, &mut h, &mut y, &mut mean, &mut var, &mut inv);
        for j in 0..f {
            let m = (0..bsz).map(|r| f64::from(y[r * f + j])).sum::<f64>() / bsz as f64;
            let v = (0..bsz).map(|r| f64::from(y[r * f + j]).powi(2)).sum::<f64>() / bsz as f64 - m * m;
            assert!(m.abs() < 1e-6, "feature {j}: mean {m}");
            assert!((v - f64::from(var[j]) / (f64::from(var[j]) + 1e-5)).abs() < 1e-5, "feature {j}: variance {v}");
        }
    }

    #[test]
    fn running_statistics_follow_pytorch() {
        // x = [[1, 10], [3, 30], [5, 20]]: means 3, 20; biased vars 8/3, 200/3; unbiased 4, 100.
        let (bsz, f) = (3, 2);
        let x = [1.0, 10.0, 3.0, 30.0, 5.0, 20.0];
        let (mut h, mut y, mut mean, mut var, mut inv) = ([0.0; 6], [0.0; 6], [0.0; 2], [0.0; 2], [0.0; 2]);
        batchnorm_forward_train(bsz, f, &x, &[1.0; 2], &[0.0; 2], EPS, Activation::Identity, 0.0, &mut h, &mut y, &mut mean, &mut var, &mut inv);
        assert_eq!(mean, [3.0, 20.0]);
        assert_close_each("var", &var, &[8.0 / 3.0, 200.0 / 3.0], |_| 1e-6);
        let (mut rm, mut rv) = ([0.0f32; 2], [1.0f32; 2]);
        batchnorm_update_running(f, bsz, &mean, &var, 0.1, &mut rm, &mut rv);
        assert_close_each("running_mean", &rm, &[0.3, 2.0], |_| 1e-6);
        assert_close_each("running_var", &rv, &[0.9 + 0.4, 0.9 + 10.0], |_| 1e-5);
    }

    /// batchnorm_backward against central differences of L = Σ g ⊙ act(BN(x)), evaluated in f64
    /// from the textbook formulas (batch statistics in training mode, running ones in eval).
    #[test]
    fn backward_matches_finite_differences() {
        let (bsz, f) = (5, 3);
        let mut rng = Rng::new(5);
        for training in [true, false] {
            for act in Activation::ALL {
                let c = case(&mut rng, bsz, f);
                let to64 = |v: &[f32]| v.iter().map(|&e| f64::from(e)).collect::<Vec<f64>>();
                let (x64, g64, b64, rm64, rv64, dy64) = (to64(&c.x), to64(&c.gamma), to64(&c.beta), to64(&c.rm), to64(&c.rv), to64(&c.dy));
                let eps = f64::from(EPS);
                let loss = |x: &[f64], gamma: &[f64], beta: &[f64]| -> f64 {
                    let mut total = 0.0;
                    for j in 0..f {
                        let (mu, var) = if training {
                            let mu = (0..bsz).map(|r| x[r * f + j]).sum::<f64>() / bsz as f64;
                            (mu, (0..bsz).map(|r| (x[r * f + j] - mu).powi(2)).sum::<f64>() / bsz as f64)
                        } else {
                            (rm64[j], rv64[j])
                        };
                        for r in 0..bsz {
                            let z = gamma[j] * (x[r * f + j] - mu) / (var + eps).sqrt() + beta[j];
                            total += dy64[r * f + j] * act_f64(act, z, f64::from(ALPHA));
                        }
                    }
                    total
                };
                let fd = |which: usize, e: usize| -> f64 {
                    let h = 1e-6;
                    let (mut xp, mut gp, mut bp) = (x64.clone(), g64.clone(), b64.clone());
                    let (mut xm, mut gm, mut bm) = (x64.clone(), g64.clone(), b64.clone());
                    match which {
                        0 => (xp[e] += h, xm[e] -= h),
                        1 => (gp[e] += h, gm[e] -= h),
                        _ => (bp[e] += h, bm[e] -= h),
                    };
                    (loss(&xp, &gp, &bp) - loss(&xm, &gm, &bm)) / (2.0 * h)
                };

                let n = bsz * f;
                let (mut h, mut y, mut mean, mut var, mut inv) = (vec![0.0; n], vec![0.0; n], vec![0.0; f], vec![0.0; f], vec![0.0; f]);
                if training {
                    batchnorm_forward_train(bsz, f, &c.x, &c.gamma, &c.beta, EPS, act, ALPHA, &mut h, &mut y, &mut mean, &mut var, &mut inv);
                } else {
                    batchnorm_forward_eval(bsz, f, &c.x, &c.gamma, &c.beta, &c.rm, &c.rv, EPS, act, ALPHA, &mut h, &mut y, &mut inv);
                }
                let mut dz = c.dy.clone();
                let (mut dg, mut db, mut dx) = (vec![0.0; f], vec![0.0; f], vec![0.0; n]);
                batchnorm_backward(bsz, f, &h, &y, &c.gamma, &c.beta, &inv, act, ALPHA, training, &mut dz, &mut dg, &mut db, Some(&mut dx));
                for (which, name, got) in [(0, "dx", &dx), (1, "dgamma", &dg), (2, "dbeta", &db)] {
                    for (e, &v) in got.iter().enumerate() {
                        let want = fd(which, e);
                        assert!(
                            (f64::from(v) - want).abs() <= 2e-5 * (1.0 + want.abs()),
                            "{} training={training} {name}[{e}]: finite difference {want:e}, backward {v:e}",
                            act.name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "batchnorm_update_running: needs a batch of at least 2")]
    fn running_update_rejects_a_batch_of_one() {
        batchnorm_update_running(1, 1, &[0.0], &[0.0], 0.1, &mut [0.0], &mut [1.0]);
    }

    #[test]
    #[should_panic(expected = "batchnorm_backward: dx has")]
    fn backward_checks_dx_length() {
        let z = [0.0; 4];
        batchnorm_backward(2, 2, &z, &z, &[1.0; 2], &[0.0; 2], &[1.0; 2], Activation::Relu, 0.0, true, &mut [0.0; 4], &mut [0.0; 2], &mut [0.0; 2], Some(&mut [0.0; 3]));
    }
}
