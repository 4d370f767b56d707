//! Training semantics natively: every optimizer against a scalar f64 re-implementation of
//! torch.optim, parameter groups, clipping, batch norm (train / eval / batch of one), dropout,
//! all-or-nothing failures on non-finite values, and the vanishing-gradient picture that batch
//! norm fixes.

use edgegrad_nn::kernels::activation::Activation;
use edgegrad_nn::kernels::loss::Loss;
use edgegrad_nn::{ErrorKind, Init, LayerKind, LayerSpec, Model, Optimizer, ParamGroup, Role, STATS_HEADER, STATS_PER_LAYER};

/// SplitMix64 for test data.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

fn stage(m: &mut Model, batch: usize, seed: u64) {
    let mut g = Gen(seed);
    let (i, tw) = (m.inputs(), m.target_width());
    let x = g.vec(batch * i);
    let y = g.vec(batch * tw);
    m.x_stage_mut().unwrap()[..batch * i].copy_from_slice(&x);
    m.y_stage_mut().unwrap()[..batch * tw].copy_from_slice(&y);
}

fn small_net() -> Vec<LayerSpec> {
    vec![
        LayerSpec::dense(6, Activation::Tanh),
        LayerSpec::batch_norm().with_activation(Activation::Relu),
        LayerSpec::dense(3, Activation::Identity),
    ]
}

// ---------------------------------------------------------------------------------------------
// A scalar f64 re-implementation of torch.optim (the pseudo-code in its documentation), with
// clip_grad_value_ and clip_grad_norm_, applied to a flat parameter vector.

#[derive(Clone, Copy, Debug)]
enum RefKind {
    Sgd { momentum: f64, dampening: f64, nesterov: bool },
    Adam { beta1: f64, beta2: f64, eps: f64, amsgrad: bool, decoupled: bool },
    Rmsprop { alpha: f64, eps: f64, momentum: f64, centered: bool },
    Adagrad { lr_decay: f64, eps: f64, init: f64 },
}

struct RefOpt {
    kind: RefKind,
    lr: f64,
    s: [Vec<f64>; 3],
    step: u64,
}

impl RefOpt {
    fn new(kind: RefKind, lr: f64, n: usize) -> RefOpt {
        let init = if let RefKind::Adagrad { init, .. } = kind { init } else { 0.0 };
        RefOpt { kind, lr, s: [vec![init; n], vec![0.0; n], vec![0.0; n]], step: 0 }
    }

    /// p ← one step with gradients g; per-element lr scale and weight decay; clipping first.
    fn step(&mut self, p: &mut [f64], g: &[f64], scale: &[f64], wd: &[f64], clip_norm: f64, clip_value: f64) {
        self.step += 1;
        let t = self.step as f64;
        let mut g = g.to_vec();
        if clip_value > 0.0 {
            g.iter_mut().for_each(|v| *v = v.clamp(-clip_value, clip_value));
        }
        if clip_norm > 0.0 {
            let total = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            let coef = clip_norm / (total + 1e-6);
            if coef < 1.0 {
                g.iter_mut().for_each(|v| *v *= coef);
            }
        }
        let [s0, s1, s2] = &mut self.s;
        for i in 0..p.len() {
            let lr = self.lr * scale[i];
            let mut gi = g[i];
            match self.kind {
                RefKind::Sgd { momentum, dampening, nesterov } => {
                    gi += wd[i] * p[i];
                    if momentum != 0.0 {
                        s0[i] = if self.step == 1 { gi } else { momentum * s0[i] + (1.0 - dampening) * gi };
                        gi = if nesterov { gi + momentum * s0[i] } else { s0[i] };
                    }
                    p[i] -= lr * gi;
                }
                RefKind::Adam { beta1, beta2, eps, amsgrad, decoupled } => {
                    if decoupled {
                        p[i] *= 1.0 - lr * wd[i];
                    } else {
                        gi += wd[i] * p[i];
                    }
                    s0[i] = beta1 * s0[i] + (1.0 - beta1) * gi;
                    s1[i] = beta2 * s1[i] + (1.0 - beta2) * gi * gi;
                    let (bc1, bc2) = (1.0 - beta1.powf(t), 1.0 - beta2.powf(t));
                    let v = if amsgrad {
                        s2[i] = s2[i].max(s1[i]);
                        s2[i]
                    } else {
                        s1[i]
                    };
                    p[i] -= lr / bc1 * s0[i] / (v.sqrt() / bc2.sqrt() + eps);
                }
                RefKind::Rmsprop { alpha, eps, momentum, centered } => {
                    gi += wd[i] * p[i];
                    s0[i] = alpha * s0[i] + (1.0 - alpha) * gi * gi;
                    let mut avg = if centered {
                        s1[i] = alpha * s1[i] + (1.0 - alpha) * gi;
                        (s0[i] - s1[i] * s1[i]).sqrt()
                    } else {
                        s0[i].sqrt()
                    };
                    avg += eps;
                    if momentum > 0.0 {
                        s2[i] = momentum * s2[i] + gi / avg;
                        p[i] -= lr * s2[i];
                    } else {
                        p[i] -= lr * gi / avg;
                    }
                }
                RefKind::Adagrad { lr_decay, eps, .. } => {
                    gi += wd[i] * p[i];
                    let clr = lr / (1.0 + (t - 1.0) * lr_decay);
                    s0[i] += gi * gi;
                    p[i] -= clr * gi / (s0[i].sqrt() + eps);
                }
            }
        }
    }
}

/// (ABI kind, hyper-parameters, the reference's reading of them).
fn optimizer_cases() -> Vec<(u32, Vec<f32>, RefKind)> {
    let f = |v: f32| f64::from(v);
    let mut cases = Vec::new();
    for (momentum, dampening, nesterov) in [(0.0f32, 0.0f32, false), (0.9, 0.1, false), (0.9, 0.0, true)] {
        cases.push((
            0,
            vec![0.05, momentum, dampening, 0.01, f32::from(u8::from(nesterov))],
            RefKind::Sgd { momentum: f(momentum), dampening: f(dampening), nesterov },
        ));
    }
    for (kind, decoupled) in [(1u32, false), (2, true)] {
        for amsgrad in [false, true] {
            cases.push((
                kind,
                vec![0.01, 0.9, 0.999, 1e-8, 0.02, f32::from(u8::from(amsgrad))],
                RefKind::Adam { beta1: f(0.9), beta2: f(0.999), eps: f(1e-8), amsgrad, decoupled },
            ));
        }
    }
    for (momentum, centered) in [(0.0f32, false), (0.0, true), (0.5, false), (0.5, true)] {
        cases.push((
            3,
            vec![0.01, 0.99, 1e-8, 0.01, momentum, f32::from(u8::from(centered))],
            RefKind::Rmsprop { alpha: f(0.99), eps: f(1e-8), momentum: f(momentum), centered },
        ));
    }
    cases.push((4, vec![0.05, 0.01, 0.01, 0.1, 1e-10], RefKind::Adagrad { lr_decay: f(0.01), eps: f(1e-10), init: f(0.1) }));
    cases
}

/// Every optimizer, with and without parameter groups and clipping, for 6 steps: each update
/// the model makes (from its current parameters and gradients) matches the f64 reference.
#[test]
fn every_optimizer_matches_a_scalar_reimplementation() {
    for (kind, hp, ref_kind) in optimizer_cases() {
        for with_groups_and_clipping in [false, true] {
            let what = format!("{ref_kind:?} groups+clipping={with_groups_and_clipping}");
            let mut m = Model::new(4, &small_net(), 3).unwrap();
            let opt = Optimizer::from_abi(kind, &hp).unwrap();
            m.compile(Loss::MeanSquaredError, opt, 8).unwrap();
            let n = m.params().len();
            let (mut scale, mut wd) = (vec![1.0f64; n], vec![f64::from(opt.weight_decay()); n]);
            let (mut clip_norm, mut clip_value) = (0.0, 0.0);
            if with_groups_and_clipping {
                let groups: Vec<ParamGroup> = m
                    .segments()
                    .iter()
                    .map(|s| match s.role {
                        Role::Kernel => ParamGroup { lr_scale: 1.0, weight_decay: 0.05 },
                        _ => ParamGroup { lr_scale: 0.5, weight_decay: 0.0 },
                    })
                    .collect();
                m.set_param_groups(&groups).unwrap();
                for (s, g) in m.segments().iter().zip(&groups) {
                    scale[s.offset..s.offset + s.len].fill(f64::from(g.lr_scale));
                    wd[s.offset..s.offset + s.len].fill(f64::from(g.weight_decay));
                }
                (clip_norm, clip_value) = (0.5, 0.2);
                m.set_clipping(0.5, 0.2).unwrap();
            }
            let mut reference = RefOpt::new(ref_kind, f64::from(opt.lr()), n);
            for step in 1..=6 {
                stage(&mut m, 8, 100 + step);
                m.gradients_staged(8).unwrap();
                let mut p: Vec<f64> = m.params().iter().map(|&v| f64::from(v)).collect();
                let g: Vec<f64> = m.grads().iter().map(|&v| f64::from(v)).collect();
                let before = m.params().to_vec();
                reference.step(&mut p, &g, &scale, &wd, clip_norm, clip_value);
                m.apply_gradients().unwrap();
                for (e, (&got, &want)) in m.params().iter().zip(&p).enumerate() {
                    let tol = 1e-6 + 1e-5 * want.abs();
                    assert!((f64::from(got) - want).abs() <= tol, "{what} step {step} param {e}: expected {want:e}, actual {got:e}, was {}", before[e]);
                }
                // The statistics report the change actually made.
                let update: f64 = m.params().iter().zip(&before).map(|(&a, &b)| f64::from(a - b).powi(2)).sum();
                let per_layer: f64 = m.stats()[STATS_HEADER..].chunks(STATS_PER_LAYER).map(|c| f64::from(c[2]).powi(2)).sum();
                assert!((per_layer - update).abs() <= 1e-5 * update, "{what}: update norms {per_layer} vs {update}");
            }
            assert_eq!(m.step(), 6);
        }
    }
}

/// `train_staged` is exactly `gradients_staged` + `apply_gradients`.
#[test]
fn train_step_equals_gradients_then_apply() {
    let opt = Optimizer::from_abi(2, &[0.01, 0.9, 0.999, 1e-8, 0.01, 0.0]).unwrap();
    let mut specs = small_net();
    specs.insert(2, LayerSpec::dropout(0.3));
    let (mut a, mut b) = (Model::new(4, &specs, 5).unwrap(), Model::new(4, &specs, 5).unwrap());
    for m in [&mut a, &mut b] {
        m.compile(Loss::MeanSquaredError, opt, 8).unwrap();
        m.set_clipping(1.0, 0.0).unwrap();
    }
    for step in 0..5 {
        stage(&mut a, 8, step);
        stage(&mut b, 8, step);
        let la = a.train_staged(8).unwrap();
        let lb = b.gradients_staged(8).unwrap();
        b.apply_gradients().unwrap();
        assert_eq!(la.to_bits(), lb.to_bits());
    }
    assert_eq!(a.params(), b.params());
    assert_eq!(a.buffers(), b.buffers());
    assert_eq!(a.optimizer_state(), b.optimizer_state());
    assert_eq!(a.stats(), b.stats());
    assert_eq!(a.rng_state(), b.rng_state());
}

/// The usual group: weight decay on kernels only. With zero gradients, SGD's L2 decay shrinks
/// every kernel by lr·wd and leaves biases, gamma and beta alone; an lr scale of 0 freezes.
#[test]
fn param_groups_exempt_biases_and_norms_from_decay() {
    let mut m = Model::new(4, &small_net(), 1).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::from_abi(0, &[0.1, 0.0, 0.0, 0.5, 0.0]).unwrap(), 8).unwrap();
    let groups: Vec<ParamGroup> = m
        .segments()
        .iter()
        .map(|s| ParamGroup { lr_scale: if s.layer == 2 { 0.0 } else { 1.0 }, weight_decay: if s.role == Role::Kernel { 0.5 } else { 0.0 } })
        .collect();
    m.set_param_groups(&groups).unwrap();
    stage(&mut m, 8, 1);
    m.gradients_staged(8).unwrap();
    m.grads_mut().fill(0.0);
    let before = m.params().to_vec();
    m.apply_gradients().unwrap();
    for s in m.segments() {
        let decays = s.role == Role::Kernel && s.layer != 2;
        for (e, &b) in before.iter().enumerate().skip(s.offset).take(s.len) {
            let want = if decays { b + -0.1 * (0.0 + 0.5 * b) } else { b };
            assert_eq!(m.params()[e], want, "layer {} {} element {e}", s.layer, s.role.name());
        }
    }
    // Defaults come back with compile; bad groups change nothing.
    let bad = vec![ParamGroup { lr_scale: -1.0, weight_decay: 0.0 }; m.segments().len()];
    assert_eq!(m.set_param_groups(&bad).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(m.set_param_groups(&groups[1..]).unwrap_err().kind, ErrorKind::ShapeMismatch);
    assert_eq!(m.param_groups(), &groups[..]);
    m.compile(Loss::MeanSquaredError, Optimizer::from_abi(0, &[0.1, 0.0, 0.0, 0.5, 0.0]).unwrap(), 8).unwrap();
    assert!(m.param_groups().iter().all(|g| *g == ParamGroup { lr_scale: 1.0, weight_decay: 0.5 }));
}

#[test]
fn clipping_by_norm_and_by_value() {
    let mut m = Model::new(3, &[LayerSpec::dense(2, Activation::Identity)], 1).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::sgd(1.0), 4).unwrap();
    let n = m.params().len(); // 3·2 + 2 = 8
    stage(&mut m, 4, 1);
    m.gradients_staged(4).unwrap();

    // By norm: all gradients 1 → total √8, scaled to norm 1.
    m.set_clipping(1.0, 0.0).unwrap();
    m.grads_mut().fill(1.0);
    let before = m.params().to_vec();
    m.apply_gradients().unwrap();
    let coef = 1.0 / ((n as f32).sqrt() + 1e-6);
    let s = m.stats();
    assert!((s[1] - (n as f32).sqrt()).abs() < 1e-6, "total norm before clipping {}", s[1]);
    assert_eq!(s[2], coef, "clip scale");
    assert!((s[STATS_HEADER + 2] - 1.0).abs() < 1e-5, "update norm {}", s[STATS_HEADER + 2]);
    for (e, (&a, &b)) in m.params().iter().zip(&before).enumerate() {
        assert_eq!(a, b + -coef, "element {e}");
    }

    // By value: clamp to ±0.5 (norm clipping off).
    m.set_clipping(0.0, 0.5).unwrap();
    let g: Vec<f32> = (0..n).map(|e| [3.0, -2.0, 0.25, -0.1][e % 4]).collect();
    m.grads_mut().copy_from_slice(&g);
    let before = m.params().to_vec();
    m.apply_gradients().unwrap();
    assert_eq!(m.stats()[2], 1.0);
    for e in 0..n {
        assert_eq!(m.params()[e], before[e] - g[e].clamp(-0.5, 0.5), "element {e}");
    }
    // Below the norm threshold nothing is scaled; value first, then norm.
    m.set_clipping(100.0, 0.5).unwrap();
    m.grads_mut().copy_from_slice(&g);
    m.apply_gradients().unwrap();
    assert_eq!(m.stats()[2], 1.0);
    m.set_clipping(0.3, 0.5).unwrap();
    m.grads_mut().copy_from_slice(&g);
    m.apply_gradients().unwrap();
    let clamped: f32 = g.iter().map(|v| v.clamp(-0.5, 0.5).powi(2)).sum::<f32>().sqrt();
    assert!((m.stats()[2] - 0.3 / (clamped + 1e-6)).abs() < 1e-6, "clip scale {} vs {}", m.stats()[2], 0.3 / clamped);

    for (norm, value) in [(-1.0, 0.0), (0.0, f32::NAN), (f32::INFINITY, 0.0)] {
        assert_eq!(m.set_clipping(norm, value).unwrap_err().kind, ErrorKind::InvalidArgument);
    }
    assert_eq!(m.clipping(), (0.3, 0.5));
}

/// One batchNorm layer alone: training normalises with batch statistics and commits PyTorch's
/// running-statistic update; eval (predict, or training in eval mode) uses the running ones
/// and leaves them alone; a training batch of one is rejected, in eval mode it is fine.
#[test]
fn batch_norm_train_and_eval() {
    let (bsz, f) = (5, 3);
    let mut m = Model::new(f, &[LayerSpec::batch_norm()], 0).unwrap();
    assert_eq!(m.params(), &[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], "gamma 1, beta 0");
    assert_eq!(m.buffers(), &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0], "running mean 0, var 1");
    m.compile(Loss::MeanSquaredError, Optimizer::sgd(0.0), 8).unwrap();
    stage(&mut m, bsz, 7);
    let x: Vec<f64> = m.x_stage_mut().unwrap()[..bsz * f].iter().map(|&v| f64::from(v)).collect();
    m.gradients_staged(bsz).unwrap();
    for j in 0..f {
        let mean = (0..bsz).map(|r| x[r * f + j]).sum::<f64>() / bsz as f64;
        let var = (0..bsz).map(|r| (x[r * f + j] - mean).powi(2)).sum::<f64>() / (bsz - 1) as f64;
        assert!((f64::from(m.buffers()[j]) - 0.1 * mean).abs() < 1e-6, "running mean {j}");
        assert!((f64::from(m.buffers()[f + j]) - (0.9 + 0.1 * var)).abs() < 1e-6, "running var {j}");
    }
    let running = m.buffers().to_vec();
    // Eval outputs use the running statistics.
    let y = m.predict_staged(bsz).unwrap().to_vec();
    for r in 0..bsz {
        for j in 0..f {
            let want = (x[r * f + j] - f64::from(running[j])) / (f64::from(running[f + j]) + 1e-5).sqrt();
            assert!((f64::from(y[r * f + j]) - want).abs() < 1e-5, "eval output ({r},{j})");
        }
    }
    assert_eq!(m.buffers(), &running[..], "predict must not touch running statistics");
    // Batch of one: an error in training mode (nothing changes), fine in eval mode.
    let e = m.train_staged(1).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert_eq!(e.message, "batch: batchNorm needs more than 1 sample per batch in training mode");
    assert_eq!(m.gradients_staged(1).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(m.step(), 0);
    m.predict_staged(1).unwrap();
    m.evaluate_staged(1).unwrap();
    m.set_training(false);
    m.train_staged(1).unwrap();
    m.train_staged(bsz).unwrap();
    assert_eq!(m.buffers(), &running[..], "eval-mode training uses, and keeps, the running statistics");
    // In eval mode the gradient w.r.t. gamma uses the running statistics.
    m.gradients_staged(bsz).unwrap();
    let dpred: Vec<f64> = (0..bsz * f).map(|e| 2.0 * (f64::from(y[e]) - f64::from(m.y_stage_mut().unwrap()[e])) / (bsz * f) as f64).collect();
    for j in 0..f {
        let xhat = |r: usize| (x[r * f + j] - f64::from(running[j])) / (f64::from(running[f + j]) + 1e-5).sqrt();
        let want: f64 = (0..bsz).map(|r| dpred[r * f + j] * xhat(r)).sum();
        assert!((f64::from(m.grads()[j]) - want).abs() < 1e-5, "dgamma {j}: {} vs {want}", m.grads()[j]);
    }
}

#[test]
fn invalid_layer_specs_are_rejected() {
    let cases: Vec<(LayerSpec, &str)> = vec![
        (LayerSpec { units: 3, ..LayerSpec::batch_norm() }, "layers[1].units"),
        (LayerSpec { p0: 1.5, ..LayerSpec::batch_norm() }, "layers[1].momentum"),
        (LayerSpec { p1: -1.0, ..LayerSpec::batch_norm() }, "layers[1].eps"),
        (LayerSpec::dropout(1.0), "layers[1].rate"),
        (LayerSpec::dropout(f32::NAN), "layers[1].rate"),
        (LayerSpec { units: 2, ..LayerSpec::dropout(0.1) }, "layers[1].units"),
        (LayerSpec::dropout(0.1).with_activation(Activation::Relu), "layers[1].activation"),
        (LayerSpec { p0: f32::INFINITY, ..LayerSpec::dense(2, Activation::Relu).with_init(Init::Constant) }, "layers[1].value"),
    ];
    for (spec, want) in cases {
        let e = Model::new(3, &[LayerSpec::dense(4, Activation::Relu), spec], 0).err().unwrap();
        assert!(e.message.starts_with(want), "{spec:?}: {}", e.message);
    }
    // Batch norm and dropout may come first and last.
    let m = Model::new(3, &[LayerSpec::batch_norm(), LayerSpec::dense(2, Activation::Relu), LayerSpec::dropout(0.5)], 0).unwrap();
    let kinds: Vec<LayerKind> = m.layers().iter().map(|l| l.kind).collect();
    assert_eq!(kinds, [LayerKind::BatchNorm, LayerKind::Dense, LayerKind::Dropout]);
    assert_eq!((m.layers()[2].inputs, m.layers()[2].outputs, m.layers()[2].param_len), (2, 2, 0));
    let roles: Vec<(usize, Role, usize, usize)> = m.segments().iter().map(|s| (s.layer, s.role, s.offset, s.len)).collect();
    assert_eq!(roles, [(0, Role::Gamma, 0, 3), (0, Role::Beta, 3, 3), (1, Role::Kernel, 6, 6), (1, Role::Bias, 12, 2)]);
    let c = Model::new(2, &[LayerSpec { p0: 0.25, ..LayerSpec::dense(3, Activation::Identity).with_init(Init::Constant) }], 0).unwrap();
    assert_eq!(c.params(), &[0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0]);
}

fn dropout_net(rate: Option<f32>) -> Model {
    let mut specs = vec![LayerSpec::dense(16, Activation::Relu), LayerSpec::dense(2, Activation::Identity)];
    if let Some(rate) = rate {
        specs.insert(1, LayerSpec::dropout(rate));
    }
    let mut m = Model::new(4, &specs, 21).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::sgd(0.1), 8).unwrap();
    stage(&mut m, 8, 3);
    m
}

#[test]
fn dropout_is_seeded_and_identity_in_eval_mode() {
    // Same seed, same masks, same training; another seed, other masks.
    let (mut a, mut b) = (dropout_net(Some(0.5)), dropout_net(Some(0.5)));
    for _ in 0..3 {
        assert_eq!(a.train_staged(8).unwrap().to_bits(), b.train_staged(8).unwrap().to_bits());
    }
    assert_eq!(a.params(), b.params());
    assert_eq!(a.rng_state(), b.rng_state());
    let mut c = Model::new(4, &[LayerSpec::dense(16, Activation::Relu), LayerSpec::dropout(0.5), LayerSpec::dense(2, Activation::Identity)], 22).unwrap();
    c.compile(Loss::MeanSquaredError, Optimizer::sgd(0.1), 8).unwrap();
    c.set_params(dropout_net(Some(0.5)).params()).unwrap();
    stage(&mut c, 8, 3);
    let (mut d, _) = (dropout_net(Some(0.5)), ());
    assert_ne!(c.gradients_staged(8).unwrap().to_bits(), d.gradients_staged(8).unwrap().to_bits(), "another seed draws another mask");

    // The training forward really drops: some hidden units get no gradient. One row, so each
    // unit is dropped with probability 1/2 (over 8 rows only ReLU-dead units would qualify).
    let mut e = dropout_net(Some(0.5));
    e.gradients_staged(1).unwrap();
    let l2 = e.layers()[2];
    let dw2 = &e.grads()[l2.param_offset..l2.param_offset + 32];
    assert!(dw2.chunks(2).filter(|row| row == &[0.0, 0.0]).count() >= 2, "no dropped unit in {dw2:?}");

    // Eval mode: identity, and no random draws. Same losses, gradients and updates as the
    // same network without the dropout layer (dropout draws nothing at init).
    let (mut with, mut without) = (dropout_net(Some(0.5)), dropout_net(None));
    assert_eq!(with.params(), without.params());
    with.set_training(false);
    let rng = with.rng_state();
    for _ in 0..3 {
        assert_eq!(with.train_staged(8).unwrap().to_bits(), without.train_staged(8).unwrap().to_bits());
    }
    assert_eq!(with.params(), without.params());
    assert_eq!(with.rng_state(), rng);
    // predict is always eval mode, even when the model is in training mode.
    with.set_training(true);
    assert_eq!(with.predict_staged(8).unwrap(), without.predict_staged(8).unwrap());
    assert!(with.training());
}

/// Bits of parameters, optimizer state, buffers and statistics, the step and the RNG state.
type Snapshot = (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>, u64, [u64; 4]);

/// Everything a failed step must leave alone, bit for bit.
fn snapshot(m: &Model) -> Snapshot {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    (bits(m.params()), bits(m.optimizer_state()), bits(m.buffers()), bits(m.stats()), m.step(), m.rng_state())
}

#[test]
fn non_finite_values_change_nothing() {
    let specs = [
        LayerSpec { p0: 0.5, ..LayerSpec::dense(8, Activation::Relu).with_init(Init::Constant) },
        LayerSpec::batch_norm(),
        LayerSpec::dropout(0.2),
        LayerSpec::dense(3, Activation::Identity),
    ];
    let mut m = Model::new(4, &specs, 8).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::from_abi(1, &[0.01, 0.9, 0.999, 1e-8, 0.0, 1.0]).unwrap(), 8).unwrap();
    m.set_clipping(1.0, 0.0).unwrap();
    for s in 0..3 {
        stage(&mut m, 8, s);
        m.train_staged(8).unwrap();
    }
    let before = snapshot(&m);

    // A NaN in the batch: rejected before any work.
    stage(&mut m, 8, 9);
    m.x_stage_mut().unwrap()[5] = f32::NAN;
    let e = m.train_staged(8).unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NonFinite, "x: non-finite value at row 1, column 1"));
    assert!(snapshot(&m) == before, "NaN input changed the model");

    // Finite inputs that overflow the first layer: a non-finite loss, named at step 4, layer 0.
    stage(&mut m, 8, 9);
    m.x_stage_mut().unwrap()[..32].fill(3.0e38);
    let e = m.train_staged(8).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert!(e.message.contains("at step 4, layer 0 (output)"), "{}", e.message);
    assert!(snapshot(&m) == before, "a non-finite loss changed the model");
    assert_eq!(m.gradients_staged(8).unwrap_err().kind, ErrorKind::NonFinite);
    assert!(snapshot(&m) == before, "a non-finite loss in gradients_staged changed the model");
    // Whatever that failed backward left in the gradient arena is not applied.
    let e = m.apply_gradients().unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidState);
    assert!(e.message.starts_with("gradients: none to apply"), "{}", e.message);
    assert!(snapshot(&m) == before, "apply_gradients after a failed step changed the model");

    // A NaN gradient (put there by the user): named by layer and role.
    stage(&mut m, 8, 10);
    m.gradients_staged(8).unwrap();
    let before = snapshot(&m); // gradients_staged committed the running statistics and drew masks
    let gamma = m.segments().iter().find(|s| s.role == Role::Gamma).copied().unwrap();
    m.grads_mut()[gamma.offset + 2] = f32::NAN;
    let e = m.apply_gradients().unwrap_err();
    assert_eq!(e.kind, ErrorKind::NonFinite);
    assert_eq!(e.message, "gradient is not finite at step 4, layer 1 (gamma); update not applied");
    m.grads_mut()[gamma.offset + 2] = f32::NEG_INFINITY;
    assert_eq!(m.apply_gradients().unwrap_err().kind, ErrorKind::NonFinite);
    assert!(snapshot(&m) == before, "a non-finite gradient changed the model");

    // And the model still trains afterwards.
    stage(&mut m, 8, 11);
    m.train_staged(8).unwrap();
    assert_eq!(m.step(), 4);
}

#[test]
fn compile_and_setters_check_their_state() {
    let mut m = Model::new(2, &[LayerSpec::dense(2, Activation::Identity)], 0).unwrap();
    assert_eq!(m.set_lr(0.1).unwrap_err().kind, ErrorKind::InvalidState);
    assert_eq!(m.set_clipping(1.0, 0.0).unwrap_err().kind, ErrorKind::InvalidState);
    assert_eq!(m.set_param_groups(&[]).unwrap_err().kind, ErrorKind::InvalidState);
    assert_eq!(m.apply_gradients().unwrap_err().kind, ErrorKind::InvalidState);
    m.compile(Loss::MeanSquaredError, Optimizer::from_abi(4, &[0.1, 0.0, 0.0, 0.25, 1e-10]).unwrap(), 2).unwrap();
    assert!(m.optimizer_state().iter().all(|&v| v == 0.25), "adagrad starts at initial_accumulator_value");
    m.set_lr(0.5).unwrap();
    assert_eq!(m.optimizer().unwrap().lr(), 0.5);
    assert_eq!(m.set_lr(f32::NAN).unwrap_err().kind, ErrorKind::InvalidArgument);
    assert_eq!(m.optimizer().unwrap().lr(), 0.5);
    assert!(m.stats()[0] == 0.0);
    // apply_gradients before any gradient computation has nothing to apply.
    let before = m.params().to_vec();
    assert_eq!(m.apply_gradients().unwrap_err().kind, ErrorKind::InvalidState);
    assert_eq!(m.params(), &before[..]);
    assert_eq!(m.step(), 0);
}

/// Per-layer gradient norms after one step (lr 0: nothing moves) of a network of 10 hidden
/// layers of width 32.
fn first_to_last_hidden_grad_ratio(batch_norm: bool) -> f32 {
    let mut specs = Vec::new();
    for _ in 0..10 {
        if batch_norm {
            specs.push(LayerSpec::dense(32, Activation::Identity).with_init(Init::HeNormal));
            specs.push(LayerSpec::batch_norm().with_activation(Activation::Sigmoid));
        } else {
            specs.push(LayerSpec::dense(32, Activation::Sigmoid));
        }
    }
    specs.push(LayerSpec::dense(1, Activation::Identity));
    let mut m = Model::new(32, &specs, 4).unwrap();
    m.compile(Loss::MeanSquaredError, Optimizer::sgd(0.0), 64).unwrap();
    stage(&mut m, 64, 5);
    m.train_staged(64).unwrap();
    let grad_norm = |l: usize| m.stats()[STATS_HEADER + STATS_PER_LAYER * l];
    let dense: Vec<usize> = m.layers().iter().enumerate().filter(|(_, l)| l.kind == LayerKind::Dense).map(|(i, _)| i).collect();
    let (first, last_hidden) = (dense[0], dense[dense.len() - 2]);
    grad_norm(first) / grad_norm(last_hidden)
}

/// The vanishing gradient, seen through the gradient-norm statistics: in a 10-layer sigmoid
/// network the first layer's gradient is orders of magnitude below the last hidden layer's;
/// with batch norm (sigmoid after it) and He initialisation it stays within a few orders.
#[test]
fn batch_norm_and_he_init_keep_first_layer_gradients_alive() {
    let plain = first_to_last_hidden_grad_ratio(false);
    let bn = first_to_last_hidden_grad_ratio(true);
    println!("first/last hidden gradient norm: plain sigmoid {plain:e}, batchNorm + He {bn:e}");
    assert!(plain < 1e-4, "plain sigmoid ratio {plain:e}");
    assert!(bn > 1e-2, "batchNorm ratio {bn:e}");
    assert!(bn > 1e3 * plain, "batchNorm {bn:e} vs plain {plain:e}");
}
