//! A sequential model of dense, batch-norm and dropout layers and everything one training step
//! needs, held in arenas sized once (llm.c style: one allocation per role). After `compile`, a
//! training step allocates nothing.
//!
//! Arenas (f32, row-major):
//! - `params` / `grads`: per layer its segments back to back — dense: kernel W (I,O) then bias
//!   b (O); batchNorm: gamma (F) then beta (F); dropout: none.
//! - `buffers`: per batchNorm layer running_mean (F) then running_var (F) (not trained).
//! - `stats`: the per-step statistics block, [`STATS_HEADER`] + [`STATS_PER_LAYER`]·layers floats.
//! - after compile, `acts`: per layer a0 (maxB,O) then y (maxB,O), where a0 is the dense
//!   pre-activation z, the batchNorm xhat or the dropout mask; a batchNorm layer adds its batch
//!   mean, biased variance and invstd (F each).
//! - `opt_state`: the optimizer's state roles, each laid out like `params` (see `optim`).
//! - `x_stage` (maxB,I) and `y_stage` (maxB,T): the batch being worked on; T = 1 (class id)
//!   for softmax cross-entropy, else O of the last layer.
//! - `delta_a`, `delta_b` (maxB, widest layer): ping-pong buffers for dY / dX in backward.
//! - `scratch`: GEMM packing panels.
//!
//! A training step is all-or-nothing: inputs are checked first; forward, loss and backward
//! write only scratch arenas (activations, deltas, gradients, the batch statistics); the loss
//! and every gradient are checked; only then are the batch-norm running statistics committed
//! and the optimizer applied. On any failure the parameters, optimizer state, step count,
//! running statistics, statistics block and RNG state are exactly as before.

use crate::error::{alloc_f32, checked_size, NnError, Result};
use crate::init::{init_kernel, Init};
use crate::optim::Optimizer;
use crate::rng::Rng;
use edgegrad_kernels::activation::Activation;
use edgegrad_kernels::batchnorm::{batchnorm_backward, batchnorm_forward_eval, batchnorm_forward_train, batchnorm_update_running};
use edgegrad_kernels::dense::{dense_backward, dense_forward, dense_infer, dense_scratch_len};
use edgegrad_kernels::dropout::{dropout_backward, dropout_forward};
use edgegrad_kernels::loss::{count_correct, first_bad_class_label, loss_forward_backward, Loss};
use edgegrad_kernels::optim::{clip_coefficient, sum_squares, sum_squares_clamped, GradPrep};

/// Largest batch `compile` accepts; keeps every size product far from overflow.
pub const MAX_BATCH_LIMIT: usize = 1 << 20;
/// Floats at the start of the statistics block: loss, total gradient norm (before clipping),
/// clip scale applied (1 = none).
pub const STATS_HEADER: usize = 3;
/// Floats per layer in the statistics block: gradient norm (before clipping), weight norm
/// (after the update), update norm, update/weight ratio (0 when the weight norm is 0).
pub const STATS_PER_LAYER: usize = 4;

/// Layer kinds as the ABI numbers them.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    Dense = 0,
    BatchNorm = 1,
    Dropout = 2,
}

impl LayerKind {
    pub const ALL: [LayerKind; 3] = [LayerKind::Dense, LayerKind::BatchNorm, LayerKind::Dropout];

    pub fn from_u32(id: u32) -> Option<LayerKind> {
        LayerKind::ALL.get(id as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            LayerKind::Dense => "dense",
            LayerKind::BatchNorm => "batchNorm",
            LayerKind::Dropout => "dropout",
        }
    }
}

/// What a parameter segment is, as the ABI numbers it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Kernel = 0,
    Bias = 1,
    Gamma = 2,
    Beta = 3,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Kernel, Role::Bias, Role::Gamma, Role::Beta];

    pub fn from_u32(id: u32) -> Option<Role> {
        Role::ALL.get(id as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Kernel => "kernel",
            Role::Bias => "bias",
            Role::Gamma => "gamma",
            Role::Beta => "beta",
        }
    }
}

/// What the user asks for one layer (the ABI's 8-word record without the reserved word).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec {
    pub kind: LayerKind,
    /// Dense: output width ≥ 1. BatchNorm and dropout: must be 0 (they keep the width).
    pub units: usize,
    /// Dense: fused activation. BatchNorm: activation fused after the normalisation. Dropout:
    /// must be identity.
    pub activation: Activation,
    /// Negative slope of leakyRelu (ignored by the other activations).
    pub alpha: f32,
    /// Dense kernel initialiser (ignored by the other kinds).
    pub init: Init,
    /// Dense: the value of init `Constant`. BatchNorm: momentum in [0, 1]. Dropout: rate in [0, 1).
    pub p0: f32,
    /// BatchNorm: eps ≥ 0. Ignored otherwise.
    pub p1: f32,
}

impl LayerSpec {
    /// A dense layer (init auto, leakyRelu slope 0.01).
    pub fn dense(units: usize, activation: Activation) -> LayerSpec {
        LayerSpec { kind: LayerKind::Dense, units, activation, alpha: 0.01, init: Init::Auto, p0: 0.0, p1: 0.0 }
    }

    /// A batch-norm layer with PyTorch's defaults (momentum 0.1, eps 1e-5, no activation).
    pub fn batch_norm() -> LayerSpec {
        LayerSpec { kind: LayerKind::BatchNorm, units: 0, activation: Activation::Identity, alpha: 0.01, init: Init::Auto, p0: 0.1, p1: 1e-5 }
    }

    /// An inverted-dropout layer dropping each value with probability `rate`.
    pub fn dropout(rate: f32) -> LayerSpec {
        LayerSpec { kind: LayerKind::Dropout, units: 0, activation: Activation::Identity, alpha: 0.0, init: Init::Auto, p0: rate, p1: 0.0 }
    }

    pub fn with_init(self, init: Init) -> LayerSpec {
        LayerSpec { init, ..self }
    }

    pub fn with_activation(self, activation: Activation) -> LayerSpec {
        LayerSpec { activation, ..self }
    }

    pub fn with_alpha(self, alpha: f32) -> LayerSpec {
        LayerSpec { alpha, ..self }
    }
}

/// A layer placed in the arenas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Layer {
    pub kind: LayerKind,
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
    pub alpha: f32,
    /// Element offset of the layer's parameters in `params` and `grads` (dense: the kernel,
    /// bias follows; batchNorm: gamma, beta follows). For dropout, where its parameters would start.
    pub param_offset: usize,
    pub param_len: usize,
    /// Element offset in `buffers` (batchNorm: running mean, running var follows).
    pub buffer_offset: usize,
    pub buffer_len: usize,
    /// BatchNorm momentum (0 for other kinds).
    pub momentum: f32,
    /// BatchNorm eps (0 for other kinds).
    pub eps: f32,
    /// Dropout rate (0 for other kinds).
    pub rate: f32,
    /// This layer's segments are `first_segment .. first_segment + segment_count`.
    pub first_segment: usize,
    pub segment_count: usize,
    /// Element offset of a0 (maxB,O) in `acts`; y follows at `+ maxB*O`.
    act_offset: usize,
}

/// A contiguous run of parameters with one role (the unit parameter groups address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub layer: usize,
    pub role: Role,
    pub offset: usize,
    pub len: usize,
}

/// Per-segment optimizer settings (torch's parameter groups).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamGroup {
    /// Multiplies the optimizer's base learning rate.
    pub lr_scale: f32,
    /// This segment's weight decay (L2, or decoupled for AdamW).
    pub weight_decay: f32,
}

struct TrainState {
    loss: Loss,
    optimizer: Optimizer,
    max_batch: usize,
    x_stage: Vec<f32>,
    y_stage: Vec<f32>,
    acts: Vec<f32>,
    delta_a: Vec<f32>,
    delta_b: Vec<f32>,
    scratch: Vec<f32>,
    perm: Vec<u32>,
    step: u64,
    opt_state: Vec<f32>,
    groups: Vec<ParamGroup>,
    /// 0 = off.
    clip_norm: f32,
    /// 0 = off.
    clip_value: f32,
    /// Per layer: squared gradient, weight and update norms of the step in progress.
    layer_sq: Vec<f64>,
    /// Loss of the last successful gradient computation (NaN before the first).
    last_loss: f32,
    /// False after a forward/backward whose loss or gradients failed the checks: the gradient
    /// arena then holds that failed computation's output, which must not be applied.
    grads_usable: bool,
}

/// Squared gradient norms of the grads arena: raw, and after clip-by-value.
struct GradNorms {
    raw: f64,
    clamped: f64,
}

/// Which forward a call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// A step in training mode: batch statistics, dropout masks; keeps what backward needs.
    Train,
    /// A step in eval mode: running statistics, no dropout; keeps what backward needs.
    Eval,
    /// predict / evaluate: eval mode, nothing kept for backward.
    Infer,
}

/// A sequential stack of layers with its parameters and (after `compile`) training state.
pub struct Model {
    inputs: usize,
    layers: Vec<Layer>,
    segments: Vec<Segment>,
    params: Vec<f32>,
    grads: Vec<f32>,
    buffers: Vec<f32>,
    stats: Vec<f32>,
    rng: Rng,
    training: bool,
    has_batch_norm: bool,
    train: Option<TrainState>,
}

impl Model {
    /// Creates a model taking `inputs` features, initialised from `seed`, in training mode.
    pub fn new(inputs: usize, specs: &[LayerSpec], seed: u64) -> Result<Model> {
        if inputs == 0 {
            return Err(NnError::invalid("inputs: must be at least 1"));
        }
        if specs.is_empty() {
            return Err(NnError::invalid("layers: a model needs at least one layer"));
        }
        let mut layers = Vec::with_capacity(specs.len());
        let mut segments = Vec::new();
        let (mut width, mut p_off, mut b_off) = (inputs, 0usize, 0usize);
        let overflow = |l: usize| NnError::shape(format!("layers[{l}]: parameter count overflows"));
        for (l, s) in specs.iter().enumerate() {
            validate_spec(l, s)?;
            let outputs = if s.kind == LayerKind::Dense { s.units } else { width };
            let roles: &[(Role, usize)] = match s.kind {
                LayerKind::Dense => &[(Role::Kernel, checked_size(width, outputs, format_args!("layers[{l}]"))?), (Role::Bias, outputs)],
                LayerKind::BatchNorm => &[(Role::Gamma, outputs), (Role::Beta, outputs)],
                LayerKind::Dropout => &[],
            };
            let (param_offset, first_segment) = (p_off, segments.len());
            for &(role, len) in roles {
                segments.push(Segment { layer: l, role, offset: p_off, len });
                p_off = p_off.checked_add(len).ok_or_else(|| overflow(l))?;
            }
            let buffer_len = if s.kind == LayerKind::BatchNorm { 2 * outputs } else { 0 };
            let (momentum, eps) = if s.kind == LayerKind::BatchNorm { (s.p0, s.p1) } else { (0.0, 0.0) };
            layers.push(Layer {
                kind: s.kind,
                inputs: width,
                outputs,
                activation: s.activation,
                alpha: s.alpha,
                param_offset,
                param_len: p_off - param_offset,
                buffer_offset: b_off,
                buffer_len,
                momentum,
                eps,
                rate: if s.kind == LayerKind::Dropout { s.p0 } else { 0.0 },
                first_segment,
                segment_count: roles.len(),
                act_offset: 0,
            });
            b_off = b_off.checked_add(buffer_len).ok_or_else(|| overflow(l))?;
            width = outputs;
        }
        let mut params = alloc_f32(p_off, "parameters")?;
        let grads = alloc_f32(p_off, "gradients")?;
        let mut buffers = alloc_f32(b_off, "buffers")?;
        let stats = alloc_f32(STATS_HEADER + STATS_PER_LAYER * layers.len(), "statistics")?;
        let mut rng = Rng::new(seed);
        for (layer, spec) in layers.iter().zip(specs) {
            let p = &mut params[layer.param_offset..layer.param_offset + layer.param_len];
            match layer.kind {
                LayerKind::Dense => {
                    let w = &mut p[..layer.inputs * layer.outputs];
                    init_kernel(w, layer.inputs, layer.outputs, spec.init, spec.activation, spec.alpha, spec.p0, &mut rng);
                }
                LayerKind::BatchNorm => {
                    p[..layer.outputs].fill(1.0);
                    buffers[layer.buffer_offset + layer.outputs..layer.buffer_offset + layer.buffer_len].fill(1.0);
                }
                LayerKind::Dropout => {}
            }
        }
        let has_batch_norm = layers.iter().any(|l| l.kind == LayerKind::BatchNorm);
        Ok(Model { inputs, layers, segments, params, grads, buffers, stats, rng, training: true, has_batch_norm, train: None })
    }

    /// Sizes the training arenas for batches of up to `max_batch` rows and resets the
    /// optimizer state, step count, parameter groups (scale 1, the optimizer's weight decay),
    /// clipping (off) and the statistics block. On error the model keeps its previous
    /// compilation (if any).
    pub fn compile(&mut self, loss: Loss, optimizer: Optimizer, max_batch: usize) -> Result<()> {
        if max_batch == 0 || max_batch > MAX_BATCH_LIMIT {
            return Err(NnError::invalid(format!("maxBatch: must be in 1..={MAX_BATCH_LIMIT}, got {max_batch}")));
        }
        optimizer.validate()?;
        let outputs = self.outputs();
        let target_width = target_width(loss, outputs);
        let widest = self.layers.iter().map(|l| l.inputs.max(l.outputs)).max().unwrap_or(1);
        // Packing scratch for the largest product of any dense layer (128 KiB for MLP-S, the
        // 640 KiB maximum for MLP-M at batch 128), not the maximum for every model.
        let scratch_len = self
            .layers
            .iter()
            .filter(|l| l.kind == LayerKind::Dense)
            .map(|l| dense_scratch_len(max_batch, l.inputs, l.outputs))
            .max()
            .unwrap_or(0);
        let mut layers = self.layers.clone();
        let mut acts_len = 0usize;
        for layer in &mut layers {
            layer.act_offset = acts_len;
            let stats = if layer.kind == LayerKind::BatchNorm { 3 * layer.outputs } else { 0 };
            let len = checked_size(2 * max_batch, layer.outputs, "activations")?
                .checked_add(stats)
                .ok_or_else(|| NnError::shape("activations: size overflows"))?;
            acts_len = acts_len.checked_add(len).ok_or_else(|| NnError::shape("activations: size overflows"))?;
        }
        let mut opt_state = alloc_f32(checked_size(optimizer.state_roles(), self.params.len(), "optimizer state")?, "optimizer state")?;
        optimizer.init_state(&mut opt_state);
        let group = ParamGroup { lr_scale: 1.0, weight_decay: optimizer.weight_decay() };
        let state = TrainState {
            loss,
            optimizer,
            max_batch,
            x_stage: alloc_f32(checked_size(max_batch, self.inputs, "input stage")?, "input stage")?,
            y_stage: alloc_f32(checked_size(max_batch, target_width, "target stage")?, "target stage")?,
            acts: alloc_f32(acts_len, "activations")?,
            delta_a: alloc_f32(checked_size(max_batch, widest, "deltas")?, "deltas")?,
            delta_b: alloc_f32(checked_size(max_batch, widest, "deltas")?, "deltas")?,
            scratch: alloc_f32(scratch_len, "gemm scratch")?,
            perm: Vec::new(),
            step: 0,
            opt_state,
            groups: vec![group; self.segments.len()],
            clip_norm: 0.0,
            clip_value: 0.0,
            layer_sq: vec![0.0; 3 * self.layers.len()],
            last_loss: f32::NAN,
            grads_usable: false,
        };
        self.layers = layers;
        self.train = Some(state);
        self.stats.fill(0.0);
        Ok(())
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// Every parameter segment in arena order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    pub fn grads(&self) -> &[f32] {
        &self.grads
    }
    /// The gradient arena, for callers that adjust gradients before [`Model::apply_gradients`].
    pub fn grads_mut(&mut self) -> &mut [f32] {
        &mut self.grads
    }
    /// Batch-norm running statistics (see `Layer::buffer_offset`).
    pub fn buffers(&self) -> &[f32] {
        &self.buffers
    }
    /// The statistics block of the last successful update (zeros before the first).
    pub fn stats(&self) -> &[f32] {
        &self.stats
    }
    /// The optimizer's state arena (empty before compile).
    pub fn optimizer_state(&self) -> &[f32] {
        self.train.as_ref().map_or(&[], |t| &t.opt_state)
    }
    /// The RNG's raw state (dropout masks and shuffles draw from it).
    pub fn rng_state(&self) -> [u64; 4] {
        self.rng.state()
    }
    /// Replaces the batch-norm running statistics (same layout as `buffers()`; every running
    /// variance ≥ 0); all-or-nothing.
    pub fn set_buffers(&mut self, src: &[f32]) -> Result<()> {
        if src.len() != self.buffers.len() {
            return Err(NnError::shape(format!("buffers: expected {} values, got {}", self.buffers.len(), src.len())));
        }
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            return Err(NnError::non_finite(format!("buffers: non-finite value at index {i}")));
        }
        for layer in self.layers.iter().filter(|l| l.kind == LayerKind::BatchNorm) {
            let var = &src[layer.buffer_offset + layer.outputs..layer.buffer_offset + layer.buffer_len];
            if let Some(v) = var.iter().find(|v| **v < 0.0) {
                return Err(NnError::invalid(format!("buffers: running variance {v} is negative")));
            }
        }
        self.buffers.copy_from_slice(src);
        Ok(())
    }
    /// The permutation of the last `shuffle` (empty before the first), for checkpoints.
    pub fn permutation(&self) -> &[u32] {
        self.train.as_ref().map_or(&[], |t| &t.perm)
    }

    /// Checkpoint restore (see `checkpoint`): overwrites the arenas, step count, RNG and
    /// permutation of a freshly built (and compiled, when `opt_state` is non-empty) model after
    /// checking every length and that the permutation is one. All-or-nothing.
    pub(crate) fn restore_state(&mut self, params: &[f32], buffers: &[f32], stats: &[f32], opt_state: &[f32], step: u64, rng: Rng, perm: Vec<u32>) -> Result<()> {
        let len = |what: &str, want: usize, got: usize| -> Result<()> {
            if want == got { Ok(()) } else { Err(NnError::shape(format!("{what}: expected {want} values, got {got}"))) }
        };
        len("params", self.params.len(), params.len())?;
        len("buffers", self.buffers.len(), buffers.len())?;
        len("stats", self.stats.len(), stats.len())?;
        len("optimizer state", self.optimizer_state().len(), opt_state.len())?;
        let mut seen = vec![false; perm.len()];
        for &i in &perm {
            match seen.get_mut(i as usize) {
                Some(s) if !*s => *s = true,
                _ => return Err(NnError::invalid("permutation: not a permutation of 0..n")),
            }
        }
        if self.train.is_none() && (step != 0 || !perm.is_empty()) {
            return Err(NnError::invalid("step / permutation given for an uncompiled model"));
        }
        if let Some(i) = params.iter().chain(buffers).position(|v| !v.is_finite()) {
            return Err(NnError::non_finite(format!("params/buffers: non-finite value at index {i}")));
        }
        self.params.copy_from_slice(params);
        self.buffers.copy_from_slice(buffers);
        self.stats.copy_from_slice(stats);
        if let Some(t) = self.train.as_mut() {
            t.opt_state.copy_from_slice(opt_state);
            t.step = step;
            t.perm = perm;
        }
        self.rng = rng;
        Ok(())
    }
    pub fn is_compiled(&self) -> bool {
        self.train.is_some()
    }
    pub fn loss(&self) -> Option<Loss> {
        self.train.as_ref().map(|t| t.loss)
    }
    pub fn max_batch(&self) -> usize {
        self.train.as_ref().map_or(0, |t| t.max_batch)
    }
    /// Optimizer steps applied since compile.
    pub fn step(&self) -> u64 {
        self.train.as_ref().map_or(0, |t| t.step)
    }
    /// Floats per target row: 1 (class id) for softmax cross-entropy, else the output width.
    pub fn target_width(&self) -> usize {
        self.loss().map_or(self.outputs(), |l| target_width(l, self.outputs()))
    }
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.train.as_ref().map(|t| &t.optimizer)
    }
    /// Training mode (batch statistics, dropout on) or eval mode, used by the train and
    /// gradient calls; predict and evaluate always run in eval mode.
    pub fn training(&self) -> bool {
        self.training
    }
    pub fn set_training(&mut self, on: bool) {
        self.training = on;
    }
    /// Sets the optimizer's base learning rate (finite, ≥ 0); parameter groups keep their scale.
    pub fn set_lr(&mut self, lr: f32) -> Result<()> {
        self.train.as_mut().ok_or_else(not_compiled)?.optimizer.set_lr(lr)
    }
    /// Per-segment learning-rate scale and weight decay, one per segment in arena order.
    pub fn param_groups(&self) -> &[ParamGroup] {
        self.train.as_ref().map_or(&[], |t| &t.groups)
    }
    /// Replaces every segment's group; all-or-nothing.
    pub fn set_param_groups(&mut self, groups: &[ParamGroup]) -> Result<()> {
        let n = self.segments.len();
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        if groups.len() != n {
            return Err(NnError::shape(format!("paramGroups: expected one record per segment ({n}), got {}", groups.len())));
        }
        for (s, g) in groups.iter().enumerate() {
            if !g.lr_scale.is_finite() || g.lr_scale < 0.0 {
                return Err(NnError::invalid(format!("paramGroups[{s}].lrScale: must be finite and >= 0, got {}", g.lr_scale)));
            }
            if !g.weight_decay.is_finite() || g.weight_decay < 0.0 {
                return Err(NnError::invalid(format!("paramGroups[{s}].weightDecay: must be finite and >= 0, got {}", g.weight_decay)));
            }
        }
        t.groups.copy_from_slice(groups);
        Ok(())
    }
    /// Gradient clipping: by global L2 norm (`clip_norm`) and by value (`clip_value`); 0 = off.
    pub fn set_clipping(&mut self, clip_norm: f32, clip_value: f32) -> Result<()> {
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        for (name, v) in [("clipNorm", clip_norm), ("clipValue", clip_value)] {
            if !v.is_finite() || v < 0.0 {
                return Err(NnError::invalid(format!("{name}: must be finite and >= 0 (0 = off), got {v}")));
            }
        }
        t.clip_norm = clip_norm;
        t.clip_value = clip_value;
        Ok(())
    }
    /// (clip_norm, clip_value); 0 = off.
    pub fn clipping(&self) -> (f32, f32) {
        self.train.as_ref().map_or((0.0, 0.0), |t| (t.clip_norm, t.clip_value))
    }

    /// The input stage (maxB, I), for the caller to fill before a `*_staged` call.
    pub fn x_stage_mut(&mut self) -> Result<&mut [f32]> {
        Ok(&mut self.train.as_mut().ok_or_else(not_compiled)?.x_stage)
    }
    /// The target stage (maxB, T).
    pub fn y_stage_mut(&mut self) -> Result<&mut [f32]> {
        Ok(&mut self.train.as_mut().ok_or_else(not_compiled)?.y_stage)
    }

    /// One training step on the first `batch` staged rows in the current mode: forward, loss,
    /// backward, checks, running-statistic commit, clipping and optimizer update, statistics.
    /// Returns the mean loss. On any error nothing in the model changes.
    pub fn train_staged(&mut self, batch: usize) -> Result<f32> {
        let (loss, norms) = self.checked_gradients(batch)?;
        self.commit_running_stats(batch);
        self.apply_update(norms);
        Ok(loss)
    }

    /// Forward, loss and backward on the first `batch` staged rows in the current mode,
    /// filling `grads` (overwrite); parameters are not updated. As in PyTorch, a training-mode
    /// forward updates the batch-norm running statistics and draws dropout masks. Returns the
    /// mean loss. A non-finite loss or gradient is an error that changes nothing.
    pub fn gradients_staged(&mut self, batch: usize) -> Result<f32> {
        let (loss, _) = self.checked_gradients(batch)?;
        self.commit_running_stats(batch);
        Ok(loss)
    }

    /// Clipping and one optimizer update from the current `grads` arena (as left by
    /// [`Model::gradients_staged`] and possibly modified since), with the same checks and
    /// statistics as a training step (the loss reported is the last one computed). InvalidState
    /// when no gradients were computed since compile, or the last computation failed its checks.
    pub fn apply_gradients(&mut self) -> Result<()> {
        if !self.train.as_ref().ok_or_else(not_compiled)?.grads_usable {
            return Err(NnError::state(
                "gradients: none to apply (none computed since compile, or the last computation had a non-finite loss or gradient); compute gradients first",
            ));
        }
        let norms = self.grad_norms()?;
        self.apply_update(norms);
        Ok(())
    }

    /// Inference in eval mode on the first `batch` staged rows; returns the (batch, O) outputs.
    pub fn predict_staged(&mut self, batch: usize) -> Result<&[f32]> {
        self.check_staged(batch, false, false)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        forward(&self.layers, &self.params, &self.buffers, &mut self.rng, t, batch, Pass::Infer);
        let last = self.layers[self.layers.len() - 1];
        Ok(y_of(&t.acts, &last, t.max_batch, batch))
    }

    /// Mean loss and number of correct predictions in eval mode on the first `batch` staged
    /// rows (no update, no state change).
    pub fn evaluate_staged(&mut self, batch: usize) -> Result<(f32, u32)> {
        self.check_staged(batch, true, false)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        forward(&self.layers, &self.params, &self.buffers, &mut self.rng, t, batch, Pass::Infer);
        let last = self.layers[self.layers.len() - 1];
        let pred = y_of(&t.acts, &last, t.max_batch, batch);
        let target = &t.y_stage[..batch * target_width(t.loss, last.outputs)];
        let loss = loss_forward_backward(t.loss, batch, last.outputs, pred, target, None);
        Ok((loss, count_correct(t.loss, batch, last.outputs, pred, target)))
    }

    /// A new seeded permutation of 0..n for `train_rows(.., use_perm = true)`.
    pub fn shuffle(&mut self, n: usize) -> Result<()> {
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        if n == 0 || n > u32::MAX as usize {
            return Err(NnError::invalid(format!("n: must be in 1..=2^32-1, got {n}")));
        }
        if t.perm.len() != n {
            let mut perm = Vec::new();
            perm.try_reserve_exact(n).map_err(|_| {
                NnError::new(crate::error::ErrorKind::OutOfMemory, format!("n: cannot allocate a permutation of {n}"))
            })?;
            perm.resize(n, 0);
            t.perm = perm;
        }
        for (i, p) in t.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        self.rng.shuffle(&mut t.perm);
        Ok(())
    }

    /// One training step on rows `start..start+count` of a dataset x (n, I), y (n, T), taken in
    /// the order of the last `shuffle` when `use_perm`. Gathers them into the stages first.
    pub fn train_rows(&mut self, x: &[f32], y: &[f32], n: usize, start: usize, count: usize, use_perm: bool) -> Result<f32> {
        self.gather_rows(x, y, n, start, count, use_perm)?;
        self.train_staged(count)
    }

    /// Copies rows of x (n, I) and y (n, T) into the stages (the model's state is untouched).
    pub fn gather_rows(&mut self, x: &[f32], y: &[f32], n: usize, start: usize, count: usize, use_perm: bool) -> Result<()> {
        let (inputs, tw) = (self.inputs, self.target_width());
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        if x.len() != n * inputs {
            return Err(NnError::shape(format!("x: expected {n} rows of {inputs} features, got {} values", x.len())));
        }
        if y.len() != n * tw {
            return Err(NnError::shape(format!("y: expected {n} rows of {tw} targets, got {} values", y.len())));
        }
        if count == 0 || count > t.max_batch {
            return Err(NnError::invalid(format!("batch: must be in 1..={} (maxBatch), got {count}", t.max_batch)));
        }
        if start.checked_add(count).is_none_or(|end| end > n) {
            return Err(NnError::invalid(format!("start: rows {start}..{} exceed the {n} rows of x", start.saturating_add(count))));
        }
        if use_perm && t.perm.len() != n {
            return Err(NnError::state(format!("shuffle({n}) must be called before training on shuffled rows")));
        }
        for r in 0..count {
            let src = if use_perm { t.perm[start + r] as usize } else { start + r };
            t.x_stage[r * inputs..(r + 1) * inputs].copy_from_slice(&x[src * inputs..(src + 1) * inputs]);
            t.y_stage[r * tw..(r + 1) * tw].copy_from_slice(&y[src * tw..(src + 1) * tw]);
        }
        Ok(())
    }

    /// Replaces every parameter with `src` (same layout as `params()`); all-or-nothing.
    pub fn set_params(&mut self, src: &[f32]) -> Result<()> {
        if src.len() != self.params.len() {
            return Err(NnError::shape(format!("weights: expected {} values, got {}", self.params.len(), src.len())));
        }
        if let Some(i) = src.iter().position(|v| !v.is_finite()) {
            let s = self.segments.iter().find(|s| i < s.offset + s.len).copied().unwrap_or(self.segments[0]);
            return Err(NnError::non_finite(format!("weights: layer {} {} has a non-finite value", s.layer, s.role.name()))
                .at(s.layer, Some(s.role)));
        }
        self.params.copy_from_slice(src);
        Ok(())
    }

    /// Input checks, then forward, loss and backward, then the loss and gradient checks.
    /// On failure the RNG is restored, so the call changed nothing but scratch arenas.
    fn checked_gradients(&mut self, batch: usize) -> Result<(f32, GradNorms)> {
        self.check_staged(batch, true, self.training)?;
        let saved_rng = self.rng.clone();
        let pass = if self.training { Pass::Train } else { Pass::Eval };
        let loss = {
            let t = self.train.as_mut().ok_or_else(not_compiled)?;
            let layers = &self.layers;
            forward(layers, &self.params, &self.buffers, &mut self.rng, t, batch, pass);
            let last = layers[layers.len() - 1];
            let pred = y_of(&t.acts, &last, t.max_batch, batch);
            let target = &t.y_stage[..batch * target_width(t.loss, last.outputs)];
            let dpred = &mut t.delta_a[..batch * last.outputs];
            let loss = loss_forward_backward(t.loss, batch, last.outputs, pred, target, Some(dpred));
            backward(layers, &self.params, &mut self.grads, t, batch, pass == Pass::Train);
            loss
        };
        let checked = self.check_loss(loss, batch).and_then(|()| self.grad_norms());
        match checked {
            Ok(norms) => {
                if let Some(t) = self.train.as_mut() {
                    t.last_loss = loss;
                    t.grads_usable = true;
                }
                Ok((loss, norms))
            }
            Err(e) => {
                self.rng = saved_rng;
                if let Some(t) = self.train.as_mut() {
                    t.grads_usable = false;
                }
                Err(e)
            }
        }
    }

    /// NonFinite naming the step and the first layer whose output is not finite (the last
    /// layer when every output is finite and only the loss overflowed).
    fn check_loss(&self, loss: f32, batch: usize) -> Result<()> {
        if loss.is_finite() {
            return Ok(());
        }
        let t = self.train.as_ref().ok_or_else(not_compiled)?;
        let bad = self
            .layers
            .iter()
            .position(|layer| y_of(&t.acts, layer, t.max_batch, batch).iter().any(|v| !v.is_finite()))
            .unwrap_or(self.layers.len() - 1);
        Err(NnError::non_finite(format!("loss is {loss} at step {}, layer {bad} (output); update not applied", t.step + 1))
            .at(bad, None))
    }

    /// One read pass over the gradients: per-layer squared norms (kept in `layer_sq`), the
    /// total, the total after clip-by-value, and the finiteness check naming step, layer and
    /// role. Changes nothing but `layer_sq`.
    fn grad_norms(&mut self) -> Result<GradNorms> {
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        let mut norms = GradNorms { raw: 0.0, clamped: 0.0 };
        for (l, layer) in self.layers.iter().enumerate() {
            let mut layer_raw = 0.0;
            for s in &self.segments[layer.first_segment..layer.first_segment + layer.segment_count] {
                let g = &self.grads[s.offset..s.offset + s.len];
                let (raw, clamped) = if t.clip_value > 0.0 {
                    sum_squares_clamped(g, t.clip_value)
                } else {
                    let r = sum_squares(g);
                    (r, r)
                };
                if !raw.is_finite() {
                    return Err(NnError::non_finite(format!(
                        "gradient is not finite at step {}, layer {l} ({}); update not applied",
                        t.step + 1,
                        s.role.name()
                    ))
                    .at(l, Some(s.role)));
                }
                layer_raw += raw;
                norms.clamped += clamped;
            }
            t.layer_sq[3 * l] = layer_raw;
            norms.raw += layer_raw;
        }
        Ok(norms)
    }

    /// Commits the running statistics of the last training-mode forward (no-op in eval mode).
    fn commit_running_stats(&mut self, batch: usize) {
        let Some(t) = self.train.as_ref() else { return };
        if !self.training {
            return;
        }
        for layer in self.layers.iter().filter(|l| l.kind == LayerKind::BatchNorm) {
            let f = layer.outputs;
            let s = layer.act_offset + 2 * t.max_batch * f;
            let (mean, var) = (&t.acts[s..s + f], &t.acts[s + f..s + 2 * f]);
            let (rm, rv) = self.buffers[layer.buffer_offset..layer.buffer_offset + 2 * f].split_at_mut(f);
            batchnorm_update_running(f, batch, mean, var, layer.momentum, rm, rv);
        }
    }

    /// Clipping and the optimizer update of every segment, then the statistics block. Only
    /// called after every check has passed; cannot fail.
    fn apply_update(&mut self, norms: GradNorms) {
        let Some(t) = self.train.as_mut() else { return };
        let step = t.step + 1;
        let scale = if t.clip_norm > 0.0 { clip_coefficient(norms.clamped.sqrt(), t.clip_norm) } else { 1.0 };
        let prep = GradPrep { clip_value: if t.clip_value > 0.0 { t.clip_value } else { f32::INFINITY }, scale };
        let p_len = self.params.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let (mut update_sq, mut weight_sq) = (0.0, 0.0);
            for (i, s) in self.segments.iter().enumerate().skip(layer.first_segment).take(layer.segment_count) {
                let range = s.offset..s.offset + s.len;
                let group = t.groups[i];
                let p = &mut self.params[range.clone()];
                update_sq += t.optimizer.update_segment(&mut t.opt_state, p_len, s.offset, p, &self.grads[range], group.lr_scale, group.weight_decay, prep, step);
                weight_sq += sum_squares(p);
            }
            t.layer_sq[3 * l + 1] = weight_sq;
            t.layer_sq[3 * l + 2] = update_sq;
        }
        t.step = step;
        self.stats[0] = t.last_loss;
        self.stats[1] = norms.raw.sqrt() as f32;
        self.stats[2] = scale;
        for (out, sq) in self.stats[STATS_HEADER..].chunks_exact_mut(STATS_PER_LAYER).zip(t.layer_sq.chunks_exact(3)) {
            let (g, w, u) = (sq[0].sqrt(), sq[1].sqrt(), sq[2].sqrt());
            out[0] = g as f32;
            out[1] = w as f32;
            out[2] = u as f32;
            out[3] = if w > 0.0 { (u / w) as f32 } else { 0.0 };
        }
    }

    /// Checks a staged batch before any work: size, finite inputs, valid targets, and a batch
    /// of more than one row when a training-mode step meets a batchNorm layer.
    fn check_staged(&self, batch: usize, with_targets: bool, training_step: bool) -> Result<()> {
        let t = self.train.as_ref().ok_or_else(not_compiled)?;
        if batch == 0 || batch > t.max_batch {
            return Err(NnError::invalid(format!("batch: must be in 1..={} (maxBatch), got {batch}", t.max_batch)));
        }
        if training_step && batch == 1 && self.has_batch_norm {
            return Err(NnError::invalid("batch: batchNorm needs more than 1 sample per batch in training mode"));
        }
        let x = &t.x_stage[..batch * self.inputs];
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(NnError::non_finite(format!(
                "x: non-finite value at row {}, column {}",
                i / self.inputs,
                i % self.inputs
            )));
        }
        if !with_targets {
            return Ok(());
        }
        let outputs = self.outputs();
        let tw = target_width(t.loss, outputs);
        let y = &t.y_stage[..batch * tw];
        if t.loss == Loss::SoftmaxCrossEntropy {
            if let Some(r) = first_bad_class_label(y, outputs) {
                return Err(NnError::invalid(format!(
                    "y: label {} at row {r} is not a class id in 0..{outputs}",
                    y[r]
                )));
            }
        } else if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(NnError::non_finite(format!("y: non-finite target at row {}, column {}", i / tw, i % tw)));
        }
        Ok(())
    }
}

fn validate_spec(l: usize, s: &LayerSpec) -> Result<()> {
    let bad = |field: &str, why: String| Err(NnError::invalid(format!("layers[{l}].{field}: {why}")));
    if !s.alpha.is_finite() {
        return bad("alpha", format!("must be finite, got {}", s.alpha));
    }
    match s.kind {
        LayerKind::Dense => {
            if s.units == 0 {
                return bad("units", "must be at least 1".into());
            }
            if s.init == Init::Constant && !s.p0.is_finite() {
                return bad("value", format!("the constant initialiser's value must be finite, got {}", s.p0));
            }
        }
        LayerKind::BatchNorm => {
            if s.units != 0 {
                return bad("units", format!("a batchNorm layer keeps the previous width; must be 0, got {}", s.units));
            }
            if !(0.0..=1.0).contains(&s.p0) {
                return bad("momentum", format!("must be in [0, 1], got {}", s.p0));
            }
            if !s.p1.is_finite() || s.p1 < 0.0 {
                return bad("eps", format!("must be finite and >= 0, got {}", s.p1));
            }
        }
        LayerKind::Dropout => {
            if s.units != 0 {
                return bad("units", format!("a dropout layer keeps the previous width; must be 0, got {}", s.units));
            }
            if s.activation != Activation::Identity {
                return bad("activation", format!("dropout has no activation; must be identity, got {}", s.activation.name()));
            }
            if !(0.0..1.0).contains(&s.p0) {
                return bad("rate", format!("must be in [0, 1), got {}", s.p0));
            }
        }
    }
    Ok(())
}

fn not_compiled() -> NnError {
    NnError::state("model is not compiled: call compile() first")
}

fn target_width(loss: Loss, outputs: usize) -> usize {
    if loss == Loss::SoftmaxCrossEntropy {
        1
    } else {
        outputs
    }
}

/// y (batch, O) of `layer` in the activation arena.
fn y_of<'a>(acts: &'a [f32], layer: &Layer, max_batch: usize, batch: usize) -> &'a [f32] {
    let y = layer.act_offset + max_batch * layer.outputs;
    &acts[y..y + batch * layer.outputs]
}

/// Runs every layer on the first `batch` rows of the input stage.
fn forward(layers: &[Layer], params: &[f32], buffers: &[f32], rng: &mut Rng, t: &mut TrainState, batch: usize, pass: Pass) {
    let mb = t.max_batch;
    for (l, layer) in layers.iter().enumerate() {
        let (i, o, po) = (layer.inputs, layer.outputs, layer.param_offset);
        let (before, here) = t.acts.split_at_mut(layer.act_offset);
        let x: &[f32] = if l == 0 { &t.x_stage[..batch * i] } else { y_of(before, &layers[l - 1], mb, batch) };
        let (a0, rest) = here.split_at_mut(mb * o);
        let (y, extra) = rest.split_at_mut(mb * o);
        let (a0, y) = (&mut a0[..batch * o], &mut y[..batch * o]);
        match layer.kind {
            LayerKind::Dense => {
                let (w, b) = (&params[po..po + i * o], &params[po + i * o..po + i * o + o]);
                if pass == Pass::Infer {
                    dense_infer(batch, i, o, x, w, b, layer.activation, layer.alpha, y, &mut t.scratch);
                } else {
                    dense_forward(batch, i, o, x, w, b, layer.activation, layer.alpha, a0, y, &mut t.scratch);
                }
            }
            LayerKind::BatchNorm => {
                let (gamma, beta) = (&params[po..po + o], &params[po + o..po + 2 * o]);
                let (mean, rest) = extra.split_at_mut(o);
                let (var, invstd) = rest.split_at_mut(o);
                if pass == Pass::Train {
                    batchnorm_forward_train(batch, o, x, gamma, beta, layer.eps, layer.activation, layer.alpha, a0, y, mean, var, &mut invstd[..o]);
                } else {
                    let bo = layer.buffer_offset;
                    let (rm, rv) = (&buffers[bo..bo + o], &buffers[bo + o..bo + 2 * o]);
                    batchnorm_forward_eval(batch, o, x, gamma, beta, rm, rv, layer.eps, layer.activation, layer.alpha, a0, y, &mut invstd[..o]);
                }
            }
            LayerKind::Dropout => {
                if pass == Pass::Train {
                    rng.fill_uniform_f32(a0);
                    dropout_forward(layer.rate, x, a0, y);
                } else {
                    y.copy_from_slice(x);
                }
            }
        }
    }
}

/// Backpropagates the loss gradient held in `delta_a` (batch, O_last) through every layer,
/// overwriting `grads`. `training`: the forward was `Pass::Train`.
fn backward(layers: &[Layer], params: &[f32], grads: &mut [f32], t: &mut TrainState, batch: usize, training: bool) {
    let mb = t.max_batch;
    let mut dy_in_a = true;
    for l in (0..layers.len()).rev() {
        let layer = &layers[l];
        let (i, o, po) = (layer.inputs, layer.outputs, layer.param_offset);
        let (dy, dx) = if dy_in_a { (&mut t.delta_a, &mut t.delta_b) } else { (&mut t.delta_b, &mut t.delta_a) };
        let dy = &mut dy[..batch * o];
        let dx = if l > 0 { Some(&mut dx[..batch * i]) } else { None };
        let a0 = &t.acts[layer.act_offset..layer.act_offset + batch * o];
        let y = y_of(&t.acts, layer, mb, batch);
        match layer.kind {
            LayerKind::Dense => {
                let x: &[f32] = if l == 0 { &t.x_stage[..batch * i] } else { y_of(&t.acts, &layers[l - 1], mb, batch) };
                let w = &params[po..po + i * o];
                let (dw, db) = grads[po..po + i * o + o].split_at_mut(i * o);
                dense_backward(batch, i, o, x, w, a0, y, layer.activation, layer.alpha, dy, dw, db, dx, &mut t.scratch);
            }
            LayerKind::BatchNorm => {
                let (gamma, beta) = (&params[po..po + o], &params[po + o..po + 2 * o]);
                let s = layer.act_offset + 2 * mb * o;
                let invstd = &t.acts[s + 2 * o..s + 3 * o];
                let (dgamma, dbeta) = grads[po..po + 2 * o].split_at_mut(o);
                batchnorm_backward(batch, o, a0, y, gamma, beta, invstd, layer.activation, layer.alpha, training, dy, dgamma, dbeta, dx);
            }
            LayerKind::Dropout => {
                if let Some(dx) = dx {
                    if training {
                        dropout_backward(a0, dy, dx);
                    } else {
                        dx.copy_from_slice(dy);
                    }
                }
            }
        }
        dy_in_a = !dy_in_a;
    }
}
