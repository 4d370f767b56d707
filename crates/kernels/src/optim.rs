//! Optimizer updates and gradient clipping, each one fused pass over a parameter slice (one
//! segment of the arena: a layer's kernel, bias, gamma or beta).
//!
//! Semantics and arithmetic order follow torch.optim 1.13's single-tensor code paths exactly
//! (`_single_tensor_sgd`, `_single_tensor_adam`, `_single_tensor_adamw`,
//! `_single_tensor_rmsprop`, `_single_tensor_adagrad`): every f32 operation happens in the
//! same order, and the per-step scalars (bias corrections, Adagrad's decayed rate) are computed
//! in f64 and rounded to f32 once, as Python floats passed to a float tensor op are. The one
//! systematic difference is that torch's vectorised `add(.., alpha=a)` uses a fused
//! multiply-add on x86 and these loops do not (wasm simd128 has no FMA), so results can differ
//! from torch by one rounding per step: measured 1 ulp on ~25% of elements for SGD, ~0.5% for
//! Adam, over 5 steps of 10,000 parameters.
//!
//! Every fast update has a `_naive` twin with the same signature that applies the torch
//! pseudo-code per element with plain branches; tests compare the two.
//!
//! Gradient conditioning ([`GradPrep`]) is fused into each update: g ← clamp(g, −v, v)·s is what
//! torch's `clip_grad_value_` then `clip_grad_norm_` leave in `p.grad`, computed on the fly so
//! the gradient arena is read once. Weight decay is always applied as `g + wd·p` (L2) or
//! `p·(1 − lr·wd)` (decoupled); with wd = 0 both are exact identities for finite p, so no
//! per-element branch on it is needed.
//!
//! Each update returns Σ (p_new − p_old)² in f64, the squared norm of the change actually made,
//! for update-to-weight ratios.

/// Elements per block of the fused passes. Each block keeps its own f64 accumulator lanes for
/// the squared-update sum: one running f64 sum would chain every iteration on a float add
/// (which the compiler may not reassociate), serialising the loop and blocking vectorisation.
/// 4 = one f32x4: with it LLVM's SLP vectoriser turns every update block into f32x4 arithmetic
/// plus two f64x2 accumulators (checked in the wasm32 +simd128 assembly: no scalar float op
/// left in the loops); with 8 it left the whole loop scalar.
const LANES: usize = 4;

/// Runs `$body` (an f32 expression: this element's parameter change) for j over every element
/// of the named equal-length slices, in blocks of [`LANES`] (inside a block the slices are
/// `[f32; LANES]` arrays, so indexing needs no bounds checks and the block vectorises), then
/// over the tail. Returns Σ body² in f64.
macro_rules! fused_pass {
    ($n:expr, mut [$($w:ident),+], [$($r:ident),*], |$j:ident| $body:expr) => {{
        let n: usize = $n;
        $( let $w: &mut [f32] = &mut $w[..n]; )+
        $( let $r: &[f32] = &$r[..n]; )*
        let split = n - n % LANES;
        let mut lanes = [0.0f64; LANES];
        {
            $( let $w = $w[..split].as_chunks_mut::<LANES>().0; )+
            $( let $r = $r[..split].as_chunks::<LANES>().0; )*
            for c in 0..split / LANES {
                $( let $w = &mut $w[c]; )+
                $( let $r = &$r[c]; )*
                for $j in 0..LANES {
                    let d = f64::from($body);
                    lanes[$j] += d * d;
                }
            }
        }
        let mut tail = 0.0f64;
        {
            $( let $w = &mut $w[split..]; )+
            $( let $r = &$r[split..]; )*
            for $j in 0..n - split {
                let d = f64::from($body);
                tail += d * d;
            }
        }
        lanes.iter().sum::<f64>() + tail
    }};
}

/// Gradient conditioning applied inside every update: g ← clamp(g, −clip_value, clip_value) · scale.
/// [`GradPrep::NONE`] (clip_value = +∞, scale = 1) leaves every finite gradient unchanged.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradPrep {
    /// Clamp bound (torch `clip_grad_value_`); +∞ for none. Must be ≥ 0.
    pub clip_value: f32,
    /// Multiplier applied after the clamp (torch `clip_grad_norm_`'s clamped coefficient); 1 for none.
    pub scale: f32,
}

impl GradPrep {
    /// No clamping, no scaling.
    pub const NONE: GradPrep = GradPrep { clip_value: f32::INFINITY, scale: 1.0 };

    /// The conditioned gradient. Written as two selects (not `f32::clamp`, which panics on a
    /// NaN bound, nor `min`/`max`, whose NaN rules cost extra instructions on wasm) so that it
    /// lowers to `f32x4.pmax`/`pmin`.
    #[inline(always)]
    fn apply(self, g: f32) -> f32 {
        let lo = -self.clip_value;
        let g = if g < lo { lo } else { g };
        let g = if g > self.clip_value { self.clip_value } else { g };
        g * self.scale
    }

    /// The same, spelled as the two torch operations.
    fn apply_naive(self, g: f32) -> f32 {
        g.clamp(-self.clip_value, self.clip_value) * self.scale
    }
}

// ---------------------------------------------------------------------------------------------
// SGD

/// torch.optim.SGD hyper-parameters for one slice (lr already scaled for the parameter group).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f32,
    pub momentum: f32,
    pub dampening: f32,
    /// L2 penalty added to the gradient: g ← g + wd·p.
    pub weight_decay: f32,
    /// Nesterov momentum (needs momentum > 0 and dampening = 0; validated by the caller).
    pub nesterov: bool,
}

/// SGD over p (N), g (N); `buf` (N) is the momentum buffer when momentum ≠ 0 (ignored, may be
/// empty, otherwise). `first_step`: the buffer is initialised to the gradient (torch's
/// `buf = clone(d_p)`) instead of decayed. Per element:
/// d = prep(g) + wd·p; buf = first ? d : buf·μ + (1−τ)·d; d = nesterov ? d + μ·buf : buf;
/// p = p − lr·d. Returns Σ Δp² (f64).
pub fn sgd_update(p: &mut [f32], g: &[f32], buf: &mut [f32], hp: &Sgd, prep: GradPrep, first_step: bool) -> f64 {
    check_lens("sgd_update", p.len(), &[("g", g.len())]);
    let k = SgdScalars::new(hp, prep);
    if hp.momentum == 0.0 {
        return fused_pass!(p.len(), mut [p], [g], |j| sgd_elem::<false, false, false>(&k, &mut p[j], g[j], &mut 0.0));
    }
    check_lens("sgd_update", p.len(), &[("buf", buf.len())]);
    match (hp.nesterov, first_step) {
        (false, false) => fused_pass!(p.len(), mut [p, buf], [g], |j| sgd_elem::<true, false, false>(&k, &mut p[j], g[j], &mut buf[j])),
        (false, true) => fused_pass!(p.len(), mut [p, buf], [g], |j| sgd_elem::<true, false, true>(&k, &mut p[j], g[j], &mut buf[j])),
        (true, false) => fused_pass!(p.len(), mut [p, buf], [g], |j| sgd_elem::<true, true, false>(&k, &mut p[j], g[j], &mut buf[j])),
        (true, true) => fused_pass!(p.len(), mut [p, buf], [g], |j| sgd_elem::<true, true, true>(&k, &mut p[j], g[j], &mut buf[j])),
    }
}

struct SgdScalars {
    prep: GradPrep,
    wd: f32,
    momentum: f32,
    one_minus_dampening: f32,
    neg_lr: f32,
}

impl SgdScalars {
    fn new(hp: &Sgd, prep: GradPrep) -> Self {
        SgdScalars { prep, wd: hp.weight_decay, momentum: hp.momentum, one_minus_dampening: 1.0 - hp.dampening, neg_lr: -hp.lr }
    }
}

#[inline(always)]
fn sgd_elem<const MOMENTUM: bool, const NESTEROV: bool, const FIRST: bool>(k: &SgdScalars, p: &mut f32, g: f32, buf: &mut f32) -> f32 {
    let p0 = *p;
    let mut d = k.prep.apply(g) + k.wd * p0;
    if MOMENTUM {
        let b = if FIRST { d } else { *buf * k.momentum + k.one_minus_dampening * d };
        *buf = b;
        d = if NESTEROV { d + k.momentum * b } else { b };
    }
    let p1 = p0 + k.neg_lr * d;
    *p = p1;
    p1 - p0
}

/// Reference for [`sgd_update`]: torch's `_single_tensor_sgd` per element.
pub fn sgd_update_naive(p: &mut [f32], g: &[f32], buf: &mut [f32], hp: &Sgd, prep: GradPrep, first_step: bool) -> f64 {
    check_lens("sgd_update_naive", p.len(), &[("g", g.len())]);
    let mut total = 0.0;
    for i in 0..p.len() {
        let old = p[i];
        let mut d_p = prep.apply_naive(g[i]);
        if hp.weight_decay != 0.0 {
            d_p += hp.weight_decay * p[i];
        }
        if hp.momentum != 0.0 {
            if first_step {
                buf[i] = d_p;
            } else {
                buf[i] = buf[i] * hp.momentum + (1.0 - hp.dampening) * d_p;
            }
            if hp.nesterov {
                d_p += hp.momentum * buf[i];
            } else {
                d_p = buf[i];
            }
        }
        p[i] += -hp.lr * d_p;
        total += f64::from(p[i] - old).powi(2);
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Adam / AdamW

/// torch.optim.Adam (L2 weight decay) or AdamW (`decoupled`) hyper-parameters for one slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    /// Adam: L2 added to the gradient. AdamW: decoupled, p ← p·(1 − lr·wd) before the update.
    pub weight_decay: f32,
    /// AdamW semantics for `weight_decay`.
    pub decoupled: bool,
    /// Normalise by the running maximum of the second moment.
    pub amsgrad: bool,
}

/// Adam / AdamW over p (N), g (N) with moments m (N), v (N) and, when `amsgrad`, vmax (N)
/// (ignored, may be empty, otherwise). `step` is this update's 1-based step t. Per element:
/// p ← p·(1 − lr·wd) (AdamW) | g ← g + wd·p (Adam); m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
/// vmax = max(vmax, v); p = p − (lr/bc1)·m / (√v̂/√bc2 + ε), bc_i = 1 − β_i^t in f64.
/// Returns Σ Δp² (f64).
pub fn adam_update(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
    hp: &Adam,
    prep: GradPrep,
    step: u64,
) -> f64 {
    check_lens("adam_update", p.len(), &[("g", g.len()), ("m", m.len()), ("v", v.len())]);
    let k = AdamScalars::new(hp, prep, step);
    if hp.amsgrad {
        check_lens("adam_update", p.len(), &[("vmax", vmax.len())]);
        fused_pass!(p.len(), mut [p, m, v, vmax], [g], |j| adam_elem::<true>(&k, &mut p[j], g[j], &mut m[j], &mut v[j], &mut vmax[j]))
    } else {
        fused_pass!(p.len(), mut [p, m, v], [g], |j| adam_elem::<false>(&k, &mut p[j], g[j], &mut m[j], &mut v[j], &mut 0.0))
    }
}

struct AdamScalars {
    prep: GradPrep,
    /// p multiplier before the update: 1 − lr·wd for AdamW, 1 for Adam.
    decay: f32,
    /// L2 coefficient: wd for Adam, 0 for AdamW.
    l2: f32,
    beta1: f32,
    beta2: f32,
    one_minus_beta1: f32,
    one_minus_beta2: f32,
    bc2_sqrt: f32,
    neg_step_size: f32,
    eps: f32,
}

impl AdamScalars {
    fn new(hp: &Adam, prep: GradPrep, step: u64) -> Self {
        let (decay, l2) = if hp.decoupled {
            ((1.0 - f64::from(hp.lr) * f64::from(hp.weight_decay)) as f32, 0.0)
        } else {
            (1.0, hp.weight_decay)
        };
        let (step_size, bc2_sqrt) = adam_step_scalars(hp, step);
        AdamScalars {
            prep,
            decay,
            l2,
            beta1: hp.beta1,
            beta2: hp.beta2,
            one_minus_beta1: 1.0 - hp.beta1,
            one_minus_beta2: 1.0 - hp.beta2,
            bc2_sqrt: bc2_sqrt as f32,
            neg_step_size: -step_size as f32,
            eps: hp.eps,
        }
    }
}

/// (lr / bc1, √bc2) for step t, in f64 as torch computes them from Python floats.
fn adam_step_scalars(hp: &Adam, step: u64) -> (f64, f64) {
    let t = step as f64;
    let bc1 = 1.0 - f64::from(hp.beta1).powf(t);
    let bc2 = 1.0 - f64::from(hp.beta2).powf(t);
    (f64::from(hp.lr) / bc1, bc2.sqrt())
}

#[inline(always)]
fn adam_elem<const AMSGRAD: bool>(k: &AdamScalars, p: &mut f32, g: f32, m: &mut f32, v: &mut f32, vmax: &mut f32) -> f32 {
    let p0 = *p;
    let pd = p0 * k.decay;
    let g = k.prep.apply(g) + k.l2 * p0;
    let m1 = *m * k.beta1 + k.one_minus_beta1 * g;
    let v1 = *v * k.beta2 + k.one_minus_beta2 * g * g;
    *m = m1;
    *v = v1;
    let vhat = if AMSGRAD {
        let mx = if *vmax > v1 { *vmax } else { v1 };
        *vmax = mx;
        mx
    } else {
        v1
    };
    let denom = vhat.sqrt() / k.bc2_sqrt + k.eps;
    let p1 = pd + (k.neg_step_size * m1) / denom;
    *p = p1;
    p1 - p0
}

/// Reference for [`adam_update`]: torch's `_single_tensor_adam` / `_single_tensor_adamw` per element.
pub fn adam_update_naive(
    p: &mut [f32],
    g: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    vmax: &mut [f32],
    hp: &Adam,
    prep: GradPrep,
    step: u64,
) -> f64 {
    check_lens("adam_update_naive", p.len(), &[("g", g.len()), ("m", m.len()), ("v", v.len())]);
    let (step_size, bc2_sqrt) = adam_step_scalars(hp, step);
    let mut total = 0.0;
    for i in 0..p.len() {
        let old = p[i];
        let mut grad = prep.apply_naive(g[i]);
        if hp.decoupled {
            p[i] *= (1.0 - f64::from(hp.lr) * f64::from(hp.weight_decay)) as f32;
        } else if hp.weight_decay != 0.0 {
            grad += hp.weight_decay * old;
        }
        m[i] = m[i] * hp.beta1 + (1.0 - hp.beta1) * grad;
        v[i] = v[i] * hp.beta2 + (1.0 - hp.beta2) * grad * grad;
        let denom = if hp.amsgrad {
            vmax[i] = vmax[i].max(v[i]);
            vmax[i].sqrt() / bc2_sqrt as f32 + hp.eps
        } else {
            v[i].sqrt() / bc2_sqrt as f32 + hp.eps
        };
        p[i] += (-step_size as f32) * m[i] / denom;
        total += f64::from(p[i] - old).powi(2);
    }
    total
}

// ---------------------------------------------------------------------------------------------
// RMSprop

/// torch.optim.RMSprop hyper-parameters for one slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rmsprop {
    pub lr: f32,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f32,
    pub eps: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    pub momentum: f32,
    /// Normalise by the estimated variance (subtract the squared mean gradient).
    pub centered: bool,
}

/// RMSprop over p (N), g (N) with square_avg (N), grad_avg (N, when `centered`) and buf (N,
/// when momentum > 0); unused state slices are ignored and may be empty. Per element:
/// g ← g + wd·p; s = α·s + (1−α)·g²; a = α·a + (1−α)·g; avg = √(s − a²) (centered) | √s;
/// avg += ε; momentum: buf = μ·buf + g/avg, p −= lr·buf; else p −= lr·g/avg. Returns Σ Δp² (f64).
pub fn rmsprop_update(
    p: &mut [f32],
    g: &[f32],
    square_avg: &mut [f32],
    grad_avg: &mut [f32],
    buf: &mut [f32],
    hp: &Rmsprop,
    prep: GradPrep,
) -> f64 {
    check_lens("rmsprop_update", p.len(), &[("g", g.len()), ("square_avg", square_avg.len())]);
    let k = RmspropScalars::new(hp, prep);
    let n = p.len();
    match (hp.centered, hp.momentum > 0.0) {
        (false, false) => {
            fused_pass!(n, mut [p, square_avg], [g], |j| rmsprop_elem::<false, false>(&k, &mut p[j], g[j], &mut square_avg[j], &mut 0.0, &mut 0.0))
        }
        (true, false) => {
            check_lens("rmsprop_update", n, &[("grad_avg", grad_avg.len())]);
            fused_pass!(n, mut [p, square_avg, grad_avg], [g], |j| {
                rmsprop_elem::<true, false>(&k, &mut p[j], g[j], &mut square_avg[j], &mut grad_avg[j], &mut 0.0)
            })
        }
        (false, true) => {
            check_lens("rmsprop_update", n, &[("buf", buf.len())]);
            fused_pass!(n, mut [p, square_avg, buf], [g], |j| rmsprop_elem::<false, true>(&k, &mut p[j], g[j], &mut square_avg[j], &mut 0.0, &mut buf[j]))
        }
        (true, true) => {
            check_lens("rmsprop_update", n, &[("grad_avg", grad_avg.len()), ("buf", buf.len())]);
            fused_pass!(n, mut [p, square_avg, grad_avg, buf], [g], |j| {
                rmsprop_elem::<true, true>(&k, &mut p[j], g[j], &mut square_avg[j], &mut grad_avg[j], &mut buf[j])
            })
        }
    }
}

struct RmspropScalars {
    prep: GradPrep,
    wd: f32,
    alpha: f32,
    one_minus_alpha: f32,
    eps: f32,
    momentum: f32,
    neg_lr: f32,
}

impl RmspropScalars {
    fn new(hp: &Rmsprop, prep: GradPrep) -> Self {
        RmspropScalars {
            prep,
            wd: hp.weight_decay,
            alpha: hp.alpha,
            one_minus_alpha: 1.0 - hp.alpha,
            eps: hp.eps,
            momentum: hp.momentum,
            neg_lr: -hp.lr,
        }
    }
}

#[inline(always)]
fn rmsprop_elem<const CENTERED: bool, const MOMENTUM: bool>(
    k: &RmspropScalars,
    p: &mut f32,
    g: f32,
    square_avg: &mut f32,
    grad_avg: &mut f32,
    buf: &mut f32,
) -> f32 {
    let p0 = *p;
    let g = k.prep.apply(g) + k.wd * p0;
    let s = *square_avg * k.alpha + k.one_minus_alpha * g * g;
    *square_avg = s;
    let avg = if CENTERED {
        let a = *grad_avg * k.alpha + k.one_minus_alpha * g;
        *grad_avg = a;
        // torch: square_avg.addcmul(grad_avg, grad_avg, value=-1), i.e. s + (−1·a)·a = s − a·a exactly.
        (s - a * a).sqrt()
    } else {
        s.sqrt()
    };
    let avg = avg + k.eps;
    let p1 = if MOMENTUM {
        let b = *buf * k.momentum + g / avg;
        *buf = b;
        p0 + k.neg_lr * b
    } else {
        p0 + (k.neg_lr * g) / avg
    };
    *p = p1;
    p1 - p0
}

/// Reference for [`rmsprop_update`]: torch's `_single_tensor_rmsprop` per element.
pub fn rmsprop_update_naive(
    p: &mut [f32],
    g: &[f32],
    square_avg: &mut [f32],
    grad_avg: &mut [f32],
    buf: &mut [f32],
    hp: &Rmsprop,
    prep: GradPrep,
) -> f64 {
    check_lens("rmsprop_update_naive", p.len(), &[("g", g.len()), ("square_avg", square_avg.len())]);
    let mut total = 0.0;
    for i in 0..p.len() {
        let old = p[i];
        let mut grad = prep.apply_naive(g[i]);
        if hp.weight_decay != 0.0 {
            grad += hp.weight_decay * p[i];
        }
        square_avg[i] = square_avg[i] * hp.alpha + (1.0 - hp.alpha) * grad * grad;
        let mut avg = if hp.centered {
            grad_avg[i] = grad_avg[i] * hp.alpha + (1.0 - hp.alpha) * grad;
            (square_avg[i] - grad_avg[i] * grad_avg[i]).sqrt()
        } else {
            square_avg[i].sqrt()
        };
        avg += hp.eps;
        if hp.momentum > 0.0 {
            buf[i] = buf[i] * hp.momentum + grad / avg;
            p[i] += -hp.lr * buf[i];
        } else {
            p[i] += -hp.lr * grad / avg;
        }
        total += f64::from(p[i] - old).powi(2);
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Adagrad

/// torch.optim.Adagrad hyper-parameters for one slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    pub lr: f32,
    pub lr_decay: f32,
    /// L2 penalty added to the gradient.
    pub weight_decay: f32,
    /// Value the sum of squares starts from (used by whoever creates the state, not by the update).
    pub initial_accumulator_value: f32,
    pub eps: f32,
}

/// Adagrad over p (N), g (N) with the running sum of squares `sum` (N). `step` is this
/// update's 1-based step t. Per element: g ← g + wd·p; clr = lr / (1 + (t−1)·lr_decay) (f64);
/// sum += g²; p −= clr·g / (√sum + ε). Returns Σ Δp² (f64).
pub fn adagrad_update(p: &mut [f32], g: &[f32], sum: &mut [f32], hp: &Adagrad, prep: GradPrep, step: u64) -> f64 {
    check_lens("adagrad_update", p.len(), &[("g", g.len()), ("sum", sum.len())]);
    let (prep, wd, eps, neg_clr) = (prep, hp.weight_decay, hp.eps, -adagrad_clr(hp, step) as f32);
    fused_pass!(p.len(), mut [p, sum], [g], |j| {
        let p0 = p[j];
        let grad = prep.apply(g[j]) + wd * p0;
        let s = sum[j] + 1.0 * grad * grad;
        sum[j] = s;
        let std = s.sqrt() + eps;
        let p1 = p0 + (neg_clr * grad) / std;
        p[j] = p1;
        p1 - p0
    })
}

fn adagrad_clr(hp: &Adagrad, step: u64) -> f64 {
    f64::from(hp.lr) / (1.0 + (step as f64 - 1.0) * f64::from(hp.lr_decay))
}

/// Reference for [`adagrad_update`]: torch's `_single_tensor_adagrad` (dense gradients) per element.
pub fn adagrad_update_naive(p: &mut [f32], g: &[f32], sum: &mut [f32], hp: &Adagrad, prep: GradPrep, step: u64) -> f64 {
    check_lens("adagrad_update_naive", p.len(), &[("g", g.len()), ("sum", sum.len())]);
    let clr = adagrad_clr(hp, step);
    let mut total = 0.0;
    for i in 0..p.len() {
        let old = p[i];
        let mut grad = prep.apply_naive(g[i]);
        if hp.weight_decay != 0.0 {
            grad += hp.weight_decay * p[i];
        }
        sum[i] += grad * grad;
        let std = sum[i].sqrt() + hp.eps;
        p[i] += (-clr as f32) * grad / std;
        total += f64::from(p[i] - old).powi(2);
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Norms and clipping

/// Σ x² in f64 (8 independent lanes, so the pass vectorises). Non-finite iff some x is: an f32
/// squared cannot overflow f64.
pub fn sum_squares(x: &[f32]) -> f64 {
    let (blocks, tail) = x.as_chunks::<LANES>();
    let mut lanes = [0.0f64; LANES];
    for b in blocks {
        for j in 0..LANES {
            let v = f64::from(b[j]);
            lanes[j] += v * v;
        }
    }
    lanes.iter().sum::<f64>() + sum_squares_naive(tail)
}

/// Reference for [`sum_squares`]: one running f64 sum.
pub fn sum_squares_naive(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// (Σ g², Σ clamp(g, −v, v)²) in f64 from one pass: the raw squared norm (for statistics and
/// the finiteness check) and the one clip-by-norm sees after clip-by-value.
pub fn sum_squares_clamped(g: &[f32], clip_value: f32) -> (f64, f64) {
    let prep = GradPrep { clip_value, scale: 1.0 };
    let (blocks, tail) = g.as_chunks::<LANES>();
    let (mut raw, mut clamped) = ([0.0f64; LANES], [0.0f64; LANES]);
    for b in blocks {
        for j in 0..LANES {
            let v = f64::from(b[j]);
            let c = f64::from(prep.apply(b[j]));
            raw[j] += v * v;
            clamped[j] += c * c;
        }
    }
    let (r, c) = sum_squares_clamped_naive(tail, clip_value);
    (raw.iter().sum::<f64>() + r, clamped.iter().sum::<f64>() + c)
}

/// Reference for [`sum_squares_clamped`].
pub fn sum_squares_clamped_naive(g: &[f32], clip_value: f32) -> (f64, f64) {
    let clamped: f64 = g.iter().map(|&v| f64::from(v.clamp(-clip_value, clip_value)).powi(2)).sum();
    (sum_squares_naive(g), clamped)
}

/// torch.nn.utils.clip_grad_value_ on one slice: g ← clamp(g, −v, v) in place (v ≥ 0).
pub fn clip_grad_value(g: &mut [f32], clip_value: f32) {
    let prep = GradPrep { clip_value, scale: 1.0 };
    for v in g {
        *v = prep.apply(*v);
    }
}

/// The factor torch.nn.utils.clip_grad_norm_ multiplies every gradient by, given the global
/// L2 norm: min(max_norm / (total_norm + 1e-6), 1), in f32 as torch computes it on a float
/// tensor. 1 means no clipping.
pub fn clip_coefficient(total_norm: f64, max_norm: f32) -> f32 {
    let coef = max_norm / (total_norm as f32 + 1e-6);
    if coef < 1.0 {
        coef
    } else {
        1.0
    }
}

/// torch.nn.utils.clip_grad_norm_ (L2) over one slice holding all gradients: scales `g` in
/// place by [`clip_coefficient`] and returns the total norm before clipping (f64 accumulation).
pub fn clip_grad_norm(g: &mut [f32], max_norm: f32) -> f64 {
    let total = sum_squares(g).sqrt();
    let coef = clip_coefficient(total, max_norm);
    if coef < 1.0 {
        for v in g {
            *v *= coef;
        }
    }
    total
}

fn check_lens(op: &str, n: usize, others: &[(&str, usize)]) {
    for &(name, len) in others {
        assert!(len >= n, "{op}: {name} has {len} floats, p has {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::Rng;

    /// Lengths: empty, below one block, one block, blocks plus a tail, many blocks.
    const LENS: [usize; 6] = [0, 1, 7, 8, 29, 1000];

    /// Equal as numbers (+0 == −0: the fast path adds 0·p where torch skips the decay term,
    /// which can flip the sign of an exact zero and nothing else).
    fn assert_same(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (e, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(g == w, "{what}: index {e} of {}: expected {w:e}, actual {g:e}", got.len());
        }
    }

    fn assert_sum(what: &str, got: f64, want: f64) {
        assert!((got - want).abs() <= 1e-12 * want.abs().max(1e-30), "{what}: Σ Δp² expected {want:e}, actual {got:e}");
    }

    fn preps() -> [GradPrep; 3] {
        [GradPrep::NONE, GradPrep { clip_value: 0.3, scale: 1.0 }, GradPrep { clip_value: 0.5, scale: 0.25 }]
    }

    /// Runs `fast` and `naive` from the same state for several steps and demands identical
    /// parameters and state every step.
    fn compare_steps(
        what: &str,
        n_state: usize,
        mut fast: impl FnMut(&mut [f32], &[f32], &mut [Vec<f32>], u64) -> f64,
        mut naive: impl FnMut(&mut [f32], &[f32], &mut [Vec<f32>], u64) -> f64,
    ) {
        let mut rng = Rng::new(what.len() as u64);
        for n in LENS {
            let mut p = rng.vec(n, -1.0, 1.0);
            let mut pn = p.clone();
            let init: Vec<Vec<f32>> = (0..n_state).map(|_| vec![0.0; n]).collect();
            let (mut s, mut sn) = (init.clone(), init);
            for step in 1..=4u64 {
                let g = rng.vec(n, -1.0, 1.0);
                let a = fast(&mut p, &g, &mut s, step);
                let b = naive(&mut pn, &g, &mut sn, step);
                let at = format!("{what} n={n} step {step}");
                assert_same(&format!("{at} p"), &p, &pn);
                for (r, (x, y)) in s.iter().zip(&sn).enumerate() {
                    assert_same(&format!("{at} state {r}"), x, y);
                }
                assert_sum(&at, a, b);
            }
        }
    }

    #[test]
    fn sgd_update_matches_naive() {
        for (momentum, dampening, nesterov) in [(0.0, 0.0, false), (0.9, 0.0, false), (0.9, 0.1, false), (0.8, 0.0, true)] {
            for weight_decay in [0.0, 0.01] {
                for prep in preps() {
                    let hp = Sgd { lr: 0.1, momentum, dampening, weight_decay, nesterov };
                    compare_steps(
                        &format!("sgd {hp:?} {prep:?}"),
                        1,
                        |p, g, s, t| sgd_update(p, g, &mut s[0], &hp, prep, t == 1),
                        |p, g, s, t| sgd_update_naive(p, g, &mut s[0], &hp, prep, t == 1),
                    );
                }
            }
        }
    }

    #[test]
    fn adam_update_matches_naive() {
        for decoupled in [false, true] {
            for amsgrad in [false, true] {
                for weight_decay in [0.0, 0.05] {
                    for prep in preps() {
                        let hp = Adam { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay, decoupled, amsgrad };
                        compare_steps(
                            &format!("adam {hp:?} {prep:?}"),
                            3,
                            |p, g, s, t| {
                                let [m, v, vm] = s else { unreachable!() };
                                adam_update(p, g, m, v, vm, &hp, prep, t)
                            },
                            |p, g, s, t| {
                                let [m, v, vm] = s else { unreachable!() };
                                adam_update_naive(p, g, m, v, vm, &hp, prep, t)
                            },
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn rmsprop_update_matches_naive() {
        for centered in [false, true] {
            for momentum in [0.0, 0.9] {
                for weight_decay in [0.0, 0.05] {
                    for prep in preps() {
                        let hp = Rmsprop { lr: 0.01, alpha: 0.99, eps: 1e-8, weight_decay, momentum, centered };
                        compare_steps(
                            &format!("rmsprop {hp:?} {prep:?}"),
                            3,
                            |p, g, s, _| {
                                let [a, b, c] = s else { unreachable!() };
                                rmsprop_update(p, g, a, b, c, &hp, prep)
                            },
                            |p, g, s, _| {
                                let [a, b, c] = s else { unreachable!() };
                                rmsprop_update_naive(p, g, a, b, c, &hp, prep)
                            },
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn adagrad_update_matches_naive() {
        for (lr_decay, weight_decay) in [(0.0, 0.0), (0.1, 0.02)] {
            for prep in preps() {
                let hp = Adagrad { lr: 0.1, lr_decay, weight_decay, initial_accumulator_value: 0.0, eps: 1e-10 };
                compare_steps(
                    &format!("adagrad {hp:?} {prep:?}"),
                    1,
                    |p, g, s, t| adagrad_update(p, g, &mut s[0], &hp, prep, t),
                    |p, g, s, t| adagrad_update_naive(p, g, &mut s[0], &hp, prep, t),
                );
            }
        }
    }

    /// Unused state slices may be empty: the fast paths never touch them.
    #[test]
    fn unused_state_may_be_empty() {
        let (mut p, g) = (vec![1.0; 9], vec![0.5; 9]);
        let sgd = Sgd { lr: 0.1, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
        sgd_update(&mut p, &g, &mut [], &sgd, GradPrep::NONE, true);
        assert_same("sgd plain", &p, &[0.95; 9]);
        let adam = Adam { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.0, decoupled: false, amsgrad: false };
        let (mut m, mut v) = (vec![0.0; 9], vec![0.0; 9]);
        adam_update(&mut p, &g, &mut m, &mut v, &mut [], &adam, GradPrep::NONE, 1);
        let rms = Rmsprop { lr: 0.1, alpha: 0.9, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false };
        rmsprop_update(&mut p, &g, &mut m, &mut [], &mut [], &rms, GradPrep::NONE);
        assert!(p.iter().all(|v| v.is_finite()));
    }

    /// Hand-checked first steps: Adam's first update is −lr·sign(g) (up to ε), Adagrad's with a
    /// zero accumulator is −lr·sign(g), SGD momentum's first buffer is the gradient itself.
    #[test]
    fn first_steps_match_closed_forms() {
        let g = [0.5f32, -2.0, 3.0];
        let mut p = [0.0f32; 3];
        let (mut m, mut v) = ([0.0; 3], [0.0; 3]);
        let adam = Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 0.0, weight_decay: 0.0, decoupled: false, amsgrad: false };
        adam_update(&mut p, &g, &mut m, &mut v, &mut [], &adam, GradPrep::NONE, 1);
        for (e, (&pv, &gv)) in p.iter().zip(&g).enumerate() {
            assert!((pv + 0.1 * gv.signum()).abs() < 1e-6, "adam p[{e}] = {pv}");
        }
        let mut p = [0.0f32; 3];
        let mut s = [0.0; 3];
        let ada = Adagrad { lr: 0.1, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 0.0 };
        adagrad_update(&mut p, &g, &mut s, &ada, GradPrep::NONE, 1);
        for (e, (&pv, &gv)) in p.iter().zip(&g).enumerate() {
            assert!((pv + 0.1 * gv.signum()).abs() < 1e-7, "adagrad p[{e}] = {pv}");
        }
        let mut p = [1.0f32; 3];
        let mut buf = [9.0; 3];
        let sgd = Sgd { lr: 1.0, momentum: 0.9, dampening: 0.5, weight_decay: 0.0, nesterov: false };
        sgd_update(&mut p, &g, &mut buf, &sgd, GradPrep::NONE, true);
        assert_same("sgd buf", &buf, &g);
        assert_same("sgd p", &p, &[0.5, 3.0, -2.0]);
    }

    #[test]
    fn decoupled_decay_shrinks_parameters_without_gradient() {
        let mut p = [2.0f32, -4.0];
        let (mut m, mut v) = ([0.0; 2], [0.0; 2]);
        let hp = Adam { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.5, decoupled: true, amsgrad: false };
        let d = adam_update(&mut p, &[0.0, 0.0], &mut m, &mut v, &mut [], &hp, GradPrep::NONE, 1);
        assert_same("adamw", &p, &[1.9, -3.8]);
        assert_sum("adamw", d, f64::from(1.9f32 - 2.0).powi(2) + f64::from(-3.8f32 + 4.0).powi(2));
    }

    #[test]
    fn fused_clipping_equals_clipping_in_place_first() {
        let mut rng = Rng::new(7);
        let g = rng.vec(100, -3.0, 3.0);
        let p0 = rng.vec(100, -1.0, 1.0);
        let hp = Sgd { lr: 0.5, momentum: 0.0, dampening: 0.0, weight_decay: 0.0, nesterov: false };
        // In place, as torch does: clip_grad_value_ then clip_grad_norm_ then the step.
        let mut gc = g.clone();
        clip_grad_value(&mut gc, 1.0);
        let (_, clamped_sq) = sum_squares_clamped(&g, 1.0);
        let coef = clip_coefficient(clamped_sq.sqrt(), 2.0);
        let total = clip_grad_norm(&mut gc, 2.0);
        assert_sum("norm after clamp", total * total, clamped_sq);
        assert!(coef < 1.0);
        let mut p_in_place = p0.clone();
        sgd_update(&mut p_in_place, &gc, &mut [], &hp, GradPrep::NONE, true);
        // Fused.
        let mut p_fused = p0.clone();
        sgd_update(&mut p_fused, &g, &mut [], &hp, GradPrep { clip_value: 1.0, scale: coef }, true);
        assert_same("fused clipping", &p_fused, &p_in_place);
        let clipped_norm = sum_squares(&gc).sqrt();
        assert!((clipped_norm - 2.0).abs() < 1e-5, "norm after clip_grad_norm: {clipped_norm}");
    }

    #[test]
    fn clip_coefficient_follows_torch() {
        assert_eq!(clip_coefficient(0.5, 1.0), 1.0);
        assert_eq!(clip_coefficient(0.0, 1.0), 1.0);
        assert_eq!(clip_coefficient(4.0, 1.0), 1.0 / (4.0 + 1e-6));
        assert_eq!(clip_coefficient(f64::INFINITY, 1.0), 0.0);
    }

    #[test]
    fn norms_match_naive() {
        let mut rng = Rng::new(3);
        for n in LENS {
            let x = rng.vec(n, -2.0, 2.0);
            assert_sum(&format!("sum_squares n={n}"), sum_squares(&x), sum_squares_naive(&x));
            let (a, b) = sum_squares_clamped(&x, 0.7);
            let (an, bn) = sum_squares_clamped_naive(&x, 0.7);
            assert_sum(&format!("sum_squares_clamped raw n={n}"), a, an);
            assert_sum(&format!("sum_squares_clamped clamped n={n}"), b, bn);
        }
        let mut x = vec![1.0f32; 20];
        x[13] = f32::NAN;
        assert!(sum_squares(&x).is_nan());
        x[13] = f32::INFINITY;
        assert!(sum_squares(&x).is_infinite());
        x[13] = f32::MAX;
        assert!(sum_squares(&x).is_finite(), "an f32 squared must not overflow f64");
    }

    #[test]
    #[should_panic(expected = "adam_update: v has")]
    fn adam_update_checks_lengths() {
        let hp = Adam { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.0, decoupled: false, amsgrad: false };
        adam_update(&mut [0.0; 3], &[0.0; 3], &mut [0.0; 3], &mut [0.0; 2], &mut [], &hp, GradPrep::NONE, 1);
    }
}
