//! Fully connected layer, forward and backward: `z = x·w + b`, `y = act(z)`.
//!
//! Shapes (row-major): x (B,I), w (I,O), b (O), z and y (B,O). Backward overwrites every
//! gradient it produces (one batch is one step): dz in place of dy (B,O), dw (I,O), db (O) and,
//! when asked, dx (B,I).
//!
//! Fusion: the forward bias + activation run as the GEMM epilogue, on each C tile right after
//! its last K block while it is still in L1, instead of as a second pass over z (for batches
//! up to `gemm::SMALL_M`, w is streamed unpacked and the epilogue runs once over all of z). The
//! backward computes dz = dy ⊙ act'(z) and the bias gradient's column sums in one pass over dy, then two
//! GEMMs: dw = xᵀ·dz (TN) and dx = dz·wᵀ (NT).

use core::ops::Range;

use crate::activation::{with_derivative, with_forward, Activation};
use crate::gemm::{self, gemm_packed, nn_a, nn_b, Epilogue};

/// x (B,I), w (I,O), b (O) -> z (B,O) = x·w + b ; y (B,O) = act(z). Bias and activation are
/// fused into the GEMM epilogue. `scratch` holds at least [`dense_scratch_len`]`(bsz, i, o)` floats.
pub fn dense_forward(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    act: Activation,
    alpha: f32,
    z: &mut [f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    check_forward("dense_forward", bsz, i, o, x, w, b);
    check_len("dense_forward", "z", z.len(), bsz * o);
    check_len("dense_forward", "y", y.len(), bsz * o);
    let mut epi = BiasActInto {
        bias: &b[..o],
        act,
        alpha,
        y: &mut y[..bsz * o],
    };
    forward_gemm(bsz, i, o, x, w, z, scratch, &mut epi);
}

/// Forward only, no z stored (inference): y (B,O) = act(x·w + b), bias and activation applied
/// in place by the GEMM epilogue. `scratch` holds at least [`dense_scratch_len`]`(bsz, i, o)` floats.
pub fn dense_infer(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    act: Activation,
    alpha: f32,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    check_forward("dense_infer", bsz, i, o, x, w, b);
    check_len("dense_infer", "y", y.len(), bsz * o);
    let mut epi = BiasActInPlace {
        bias: &b[..o],
        act,
        alpha,
    };
    forward_gemm(bsz, i, o, x, w, y, scratch, &mut epi);
}

/// The forward's product c (B,O) = x (B,I)·w (I,O) with `epi` fused: the one place the dense
/// forward chooses between streaming w (batches up to `SMALL_M`, where packing w would cost
/// more than it saves: MLP-M at batch 1 takes 34 µs instead of 162) and the packed GEMM.
fn forward_gemm<E: Epilogue>(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    c: &mut [f32],
    scratch: &mut [f32],
    epi: &mut E,
) {
    let (a, b) = (nn_a(x, i), nn_b(w, o));
    if (1..=gemm::SMALL_M).contains(&bsz) {
        gemm::gemm_smallm_epilogue(bsz, o, i, a, b, c, false, epi);
    } else {
        gemm_packed(bsz, o, i, a, b, c, false, scratch, epi);
    }
}

/// Floats of GEMM packing scratch a dense layer (I → O) needs at batches of up to `bsz` rows,
/// in every pass: the forward (B,I)·(I,O), dX = dZ·Wᵀ and dW = Xᵀ·dZ.
pub fn dense_scratch_len(bsz: usize, i: usize, o: usize) -> usize {
    gemm::gemm_scratch_len(bsz, o, i)
        .max(gemm::gemm_scratch_len(bsz, i, o))
        .max(gemm::gemm_scratch_len(i, o, bsz))
}

/// Backward of [`dense_forward`], given its x, w, z and y. dy (B,O) is overwritten with
/// dz = dy ⊙ act'(z) and db (O) = colsum(dz) is taken in the same pass; then dw (I,O) = xᵀ·dz
/// and, when `dx` is `Some`, dx (B,I) = dz·wᵀ. All outputs are overwritten.
pub fn dense_backward(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    z: &[f32],
    y: &[f32],
    act: Activation,
    alpha: f32,
    dy: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    check_backward("dense_backward", bsz, i, o, x, w, z, y, dy, dw, db, &dx);
    let dz = &mut dy[..bsz * o];
    let db = &mut db[..o];
    db.fill(0.0);
    if o > 0 {
        with_derivative!(act, alpha, |d| {
            for ((g, zr), yr) in dz
                .chunks_exact_mut(o)
                .zip(z.chunks_exact(o))
                .zip(y.chunks_exact(o))
            {
                for (((gv, &zv), &yv), dbv) in g.iter_mut().zip(zr).zip(yr).zip(db.iter_mut()) {
                    let v = *gv * d(zv, yv);
                    *gv = v;
                    *dbv += v;
                }
            }
        });
    }
    let dz: &[f32] = dz;
    gemm::gemm_tn(i, o, bsz, x, dz, dw, false, scratch);
    if let Some(dx) = dx {
        gemm::gemm_nt(bsz, i, o, dz, w, dx, false, scratch);
    }
}

/// Reference for [`dense_forward`]: naive GEMM, then bias and activation as separate loops.
pub fn dense_forward_naive(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    act: Activation,
    alpha: f32,
    z: &mut [f32],
    y: &mut [f32],
    scratch: &mut [f32],
) {
    check_forward("dense_forward_naive", bsz, i, o, x, w, b);
    check_len("dense_forward_naive", "z", z.len(), bsz * o);
    check_len("dense_forward_naive", "y", y.len(), bsz * o);
    gemm::gemm_nn_naive(bsz, o, i, x, w, z, false, scratch);
    for r in 0..bsz {
        for j in 0..o {
            z[r * o + j] += b[j];
        }
    }
    for e in 0..bsz * o {
        y[e] = act.forward(z[e], alpha);
    }
}

/// Reference for [`dense_infer`].
pub fn dense_infer_naive(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    act: Activation,
    alpha: f32,
    y: &mut [f32],
    scratch: &mut [f32],
) {
    check_forward("dense_infer_naive", bsz, i, o, x, w, b);
    check_len("dense_infer_naive", "y", y.len(), bsz * o);
    gemm::gemm_nn_naive(bsz, o, i, x, w, y, false, scratch);
    for r in 0..bsz {
        for j in 0..o {
            y[r * o + j] = act.forward(y[r * o + j] + b[j], alpha);
        }
    }
}

/// Reference for [`dense_backward`]: derivative, column sums and both products as separate
/// naive steps.
pub fn dense_backward_naive(
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    z: &[f32],
    y: &[f32],
    act: Activation,
    alpha: f32,
    dy: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
    dx: Option<&mut [f32]>,
    scratch: &mut [f32],
) {
    check_backward(
        "dense_backward_naive",
        bsz,
        i,
        o,
        x,
        w,
        z,
        y,
        dy,
        dw,
        db,
        &dx,
    );
    for e in 0..bsz * o {
        dy[e] *= act.derivative(z[e], y[e], alpha);
    }
    for j in 0..o {
        db[j] = 0.0;
        for r in 0..bsz {
            db[j] += dy[r * o + j];
        }
    }
    gemm::gemm_tn_naive(i, o, bsz, x, dy, dw, false, scratch);
    if let Some(dx) = dx {
        gemm::gemm_nt_naive(bsz, i, o, dy, w, dx, false, scratch);
    }
}

/// Epilogue of [`dense_forward`]: z += b in place, y = act(z).
struct BiasActInto<'a> {
    bias: &'a [f32],
    act: Activation,
    alpha: f32,
    y: &'a mut [f32],
}

impl Epilogue for BiasActInto<'_> {
    fn apply(&mut self, c: &mut [f32], ldc: usize, rows: Range<usize>, cols: Range<usize>) {
        let bias = &self.bias[cols.clone()];
        with_forward!(self.act, self.alpha, |f| {
            for r in rows {
                let span = r * ldc + cols.start..r * ldc + cols.end;
                let zr = &mut c[span.clone()];
                let yr = &mut self.y[span];
                for ((zv, yv), &bv) in zr.iter_mut().zip(yr.iter_mut()).zip(bias) {
                    let v = *zv + bv;
                    *zv = v;
                    *yv = f(v);
                }
            }
        })
    }
}

/// Epilogue of [`dense_infer`]: y = act(y + b) in place.
struct BiasActInPlace<'a> {
    bias: &'a [f32],
    act: Activation,
    alpha: f32,
}

impl Epilogue for BiasActInPlace<'_> {
    fn apply(&mut self, c: &mut [f32], ldc: usize, rows: Range<usize>, cols: Range<usize>) {
        let bias = &self.bias[cols.clone()];
        with_forward!(self.act, self.alpha, |f| {
            for r in rows {
                let yr = &mut c[r * ldc + cols.start..r * ldc + cols.end];
                for (yv, &bv) in yr.iter_mut().zip(bias) {
                    *yv = f(*yv + bv);
                }
            }
        })
    }
}

fn check_len(op: &str, name: &str, have: usize, need: usize) {
    assert!(have >= need, "{op}: {name} has {have} floats, needs {need}");
}

fn check_forward(op: &str, bsz: usize, i: usize, o: usize, x: &[f32], w: &[f32], b: &[f32]) {
    check_len(op, "x", x.len(), bsz * i);
    check_len(op, "w", w.len(), i * o);
    check_len(op, "b", b.len(), o);
}

fn check_backward(
    op: &str,
    bsz: usize,
    i: usize,
    o: usize,
    x: &[f32],
    w: &[f32],
    z: &[f32],
    y: &[f32],
    dy: &[f32],
    dw: &[f32],
    db: &[f32],
    dx: &Option<&mut [f32]>,
) {
    check_len(op, "x", x.len(), bsz * i);
    check_len(op, "w", w.len(), i * o);
    check_len(op, "z", z.len(), bsz * o);
    check_len(op, "y", y.len(), bsz * o);
    check_len(op, "dy", dy.len(), bsz * o);
    check_len(op, "dw", dw.len(), i * o);
    check_len(op, "db", db.len(), o);
    if let Some(dx) = dx {
        check_len(op, "dx", dx.len(), bsz * i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::GEMM_SCRATCH_LEN;
    use crate::test_util::{act_f64, assert_close_each, Rng};

    /// (B, I, O): unit, odd, tile-exact, tails on every side, a K block crossed (I = 300), the
    /// small-batch path (B ≤ 16, w streamed: 8-wide column blocks and a scalar tail, B = 16 its
    /// last and B = 17 the packed path's first), and empty batch / empty input.
    const SHAPES: [(usize, usize, usize); 12] = [
        (1, 1, 1),
        (1, 70, 45),
        (4, 33, 19),
        (16, 37, 21),
        (3, 5, 7),
        (4, 8, 8),
        (17, 33, 10),
        (64, 129, 5),
        (130, 300, 20),
        (2, 3, 300),
        (5, 0, 3),
        (0, 4, 6),
    ];
    const ALPHA: f32 = 0.1;

    /// Rounding tolerance for a length-`k` dot product of values in [-1, 1] (plus `scale`).
    fn tol(k: usize, scale: f32) -> f32 {
        4.0 * (k as f32 + 2.0) * f32::EPSILON * (1.0 + scale)
    }

    #[test]
    fn dense_forward_and_infer_match_naive() {
        let mut rng = Rng::new(1);
        for act in Activation::ALL {
            for (bsz, i, o) in SHAPES {
                // Exactly the scratch a model sizes for this layer (dense_scratch_len).
                let mut scratch = vec![f32::NAN; dense_scratch_len(bsz, i, o)];
                let what = format!("{} (B,I,O)=({bsz},{i},{o})", act.name());
                let x = rng.vec(bsz * i, -1.0, 1.0);
                let w = rng.vec(i * o, -1.0, 1.0);
                let b = rng.vec(o, -1.0, 1.0);
                let (mut z, mut y) = (vec![f32::NAN; bsz * o], vec![f32::NAN; bsz * o]);
                dense_forward(
                    bsz,
                    i,
                    o,
                    &x,
                    &w,
                    &b,
                    act,
                    ALPHA,
                    &mut z,
                    &mut y,
                    &mut scratch,
                );
                let (mut zn, mut yn) = (vec![f32::NAN; bsz * o], vec![f32::NAN; bsz * o]);
                dense_forward_naive(bsz, i, o, &x, &w, &b, act, ALPHA, &mut zn, &mut yn, &mut []);
                assert_close_each(&format!("dense_forward z {what}"), &z, &zn, |e| {
                    tol(i, zn[e].abs())
                });
                assert_close_each(&format!("dense_forward y {what}"), &y, &yn, |e| {
                    tol(i, zn[e].abs())
                });

                let mut yi = vec![f32::NAN; bsz * o];
                dense_infer(bsz, i, o, &x, &w, &b, act, ALPHA, &mut yi, &mut scratch);
                let mut yin = vec![f32::NAN; bsz * o];
                dense_infer_naive(bsz, i, o, &x, &w, &b, act, ALPHA, &mut yin, &mut []);
                assert_close_each(&format!("dense_infer {what}"), &yi, &yin, |e| {
                    tol(i, zn[e].abs())
                });
                // Same products, same epilogue arithmetic: inference equals training forward.
                assert_close_each(&format!("dense_infer vs forward {what}"), &yi, &y, |_| 0.0);
            }
        }
    }

    #[test]
    fn dense_backward_matches_naive() {
        let mut rng = Rng::new(2);
        for act in Activation::ALL {
            for (bsz, i, o) in SHAPES {
                let mut scratch = vec![f32::NAN; dense_scratch_len(bsz, i, o)];
                let what = format!("{} (B,I,O)=({bsz},{i},{o})", act.name());
                let x = rng.vec(bsz * i, -1.0, 1.0);
                let w = rng.vec(i * o, -1.0, 1.0);
                let b = rng.vec(o, -1.0, 1.0);
                let (mut z, mut y) = (vec![0.0; bsz * o], vec![0.0; bsz * o]);
                dense_forward_naive(bsz, i, o, &x, &w, &b, act, ALPHA, &mut z, &mut y, &mut []);
                let dy = rng.vec(bsz * o, -1.0, 1.0);

                let mut dz = dy.clone();
                let (mut dw, mut db, mut dx) = (
                    vec![f32::NAN; i * o],
                    vec![f32::NAN; o],
                    vec![f32::NAN; bsz * i],
                );
                dense_backward(
                    bsz,
                    i,
                    o,
                    &x,
                    &w,
                    &z,
                    &y,
                    act,
                    ALPHA,
                    &mut dz,
                    &mut dw,
                    &mut db,
                    Some(&mut dx),
                    &mut scratch,
                );
                let mut dzn = dy.clone();
                let (mut dwn, mut dbn, mut dxn) = (
                    vec![f32::NAN; i * o],
                    vec![f32::NAN; o],
                    vec![f32::NAN; bsz * i],
                );
                dense_backward_naive(
                    bsz,
                    i,
                    o,
                    &x,
                    &w,
                    &z,
                    &y,
                    act,
                    ALPHA,
                    &mut dzn,
                    &mut dwn,
                    &mut dbn,
                    Some(&mut dxn),
                    &mut [],
                );

                assert_close_each(&format!("dense_backward dz {what}"), &dz, &dzn, |_| 0.0);
                assert_close_each(&format!("dense_backward db {what}"), &db, &dbn, |_| {
                    tol(bsz, 0.0)
                });
                assert_close_each(&format!("dense_backward dw {what}"), &dw, &dwn, |_| {
                    tol(bsz, 0.0)
                });
                assert_close_each(&format!("dense_backward dx {what}"), &dx, &dxn, |_| {
                    tol(o, 0.0)
                });

                // Without dx: the same dw and db, and no dx is needed.
                let mut dz2 = dy.clone();
                let (mut dw2, mut db2) = (vec![f32::NAN; i * o], vec![f32::NAN; o]);
                dense_backward(
                    bsz,
                    i,
                    o,
                    &x,
                    &w,
                    &z,
                    &y,
                    act,
                    ALPHA,
                    &mut dz2,
                    &mut dw2,
                    &mut db2,
                    None,
                    &mut scratch,
                );
                assert_close_each(
                    &format!("dense_backward dw (no dx) {what}"),
                    &dw2,
                    &dw,
                    |_| 0.0,
                );
                assert_close_each(
                    &format!("dense_backward db (no dx) {what}"),
                    &db2,
                    &db,
                    |_| 0.0,
                );
            }
        }
    }

    /// dense_backward against central differences of L = Σ g ⊙ act(x·w + b), evaluated in f64
    /// from the textbook formulas, for every activation: checks dw, db and dx end to end.
    #[test]
    fn dense_backward_matches_finite_differences() {
        let (bsz, i, o) = (3, 4, 5);
        let mut rng = Rng::new(3);
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        for act in Activation::ALL {
            let x = rng.vec(bsz * i, -1.0, 1.0);
            let w = rng.vec(i * o, -1.0, 1.0);
            let b = rng.vec(o, -1.0, 1.0);
            let g = rng.vec(bsz * o, -1.0, 1.0);
            let to64 = |v: &[f32]| v.iter().map(|&e| f64::from(e)).collect::<Vec<f64>>();
            let (x64, w64, b64, g64) = (to64(&x), to64(&w), to64(&b), to64(&g));
            let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
                let mut total = 0.0;
                for r in 0..bsz {
                    for j in 0..o {
                        let z = b[j] + (0..i).map(|p| x[r * i + p] * w[p * o + j]).sum::<f64>();
                        total += g64[r * o + j] * act_f64(act, z, f64::from(ALPHA));
                    }
                }
                total
            };
            let fd = |which: usize, e: usize| -> f64 {
                let h = 1e-6;
                let (mut xp, mut wp, mut bp) = (x64.clone(), w64.clone(), b64.clone());
                let (mut xm, mut wm, mut bm) = (x64.clone(), w64.clone(), b64.clone());
                match which {
                    0 => (xp[e] += h, xm[e] -= h),
                    1 => (wp[e] += h, wm[e] -= h),
                    _ => (bp[e] += h, bm[e] -= h),
                };
                (loss(&xp, &wp, &bp) - loss(&xm, &wm, &bm)) / (2.0 * h)
            };

            let (mut z, mut y) = (vec![0.0; bsz * o], vec![0.0; bsz * o]);
            dense_forward(
                bsz,
                i,
                o,
                &x,
                &w,
                &b,
                act,
                ALPHA,
                &mut z,
                &mut y,
                &mut scratch,
            );
            let mut dz = g.clone();
            let (mut dw, mut db, mut dx) = (vec![0.0; i * o], vec![0.0; o], vec![0.0; bsz * i]);
            dense_backward(
                bsz,
                i,
                o,
                &x,
                &w,
                &z,
                &y,
                act,
                ALPHA,
                &mut dz,
                &mut dw,
                &mut db,
                Some(&mut dx),
                &mut scratch,
            );

            for (which, name, got) in [(0, "dx", &dx), (1, "dw", &dw), (2, "db", &db)] {
                for (e, &v) in got.iter().enumerate() {
                    let want = fd(which, e);
                    assert!(
                        (f64::from(v) - want).abs() <= 1e-5 * (1.0 + want.abs()),
                        "{} {name}[{e}]: finite difference {want:e}, backward {v:e}",
                        act.name()
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "dense_backward: dx has")]
    fn dense_backward_checks_dx_length() {
        let mut scratch = vec![0.0; GEMM_SCRATCH_LEN];
        let (x, w, z, y) = ([0.0; 6], [0.0; 6], [0.0; 4], [0.0; 4]);
        let (mut dy, mut dw, mut db, mut dx) = ([0.0; 4], [0.0; 6], [0.0; 2], [0.0; 5]);
        dense_backward(
            2,
            3,
            2,
            &x,
            &w,
            &z,
            &y,
            Activation::Relu,
            0.0,
            &mut dy,
            &mut dw,
            &mut db,
            Some(&mut dx),
            &mut scratch,
        );
    }
}
