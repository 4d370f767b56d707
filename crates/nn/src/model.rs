//! A sequential model of dense layers and everything one training step needs, held in arenas
//! that are sized once by `compile` (llm.c style: one allocation per role). After compile, a
//! training step allocates nothing.
//!
//! Arenas (f32, row-major):
//! - `params` / `grads`: per layer the kernel W (I,O) then the bias b (O), back to back.
//! - `acts`: per layer z (maxB,O) pre-activation then y (maxB,O) output.
//! - `x_stage` (maxB,I) and `y_stage` (maxB,T): the batch being worked on; T = 1 (class id)
//!   for softmax cross-entropy, else O of the last layer.
//! - `delta_a`, `delta_b` (maxB, widest layer): ping-pong buffers for dY / dX in backward.
//! - `scratch`: GEMM packing panels.

use crate::error::{alloc_f32, checked_size, NnError, Result};
use crate::init::{init_kernel, Init};
use crate::optim::Optimizer;
use crate::rng::Rng;
use edgegrad_kernels::activation::Activation;
use edgegrad_kernels::dense::{dense_backward, dense_forward, dense_infer};
use edgegrad_kernels::gemm::GEMM_SCRATCH_LEN;
use edgegrad_kernels::loss::{count_correct, first_bad_class_label, loss_forward_backward, Loss};

/// Largest batch `compile` accepts; keeps every size product far from overflow.
pub const MAX_BATCH_LIMIT: usize = 1 << 20;

/// What the user asks for one dense layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerSpec {
    pub units: usize,
    pub activation: Activation,
    /// Negative slope of leakyRelu (ignored by the other activations).
    pub alpha: f32,
    pub init: Init,
}

/// A dense layer placed in the arenas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenseLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
    pub alpha: f32,
    /// Element offset of W (I,O) in `params` and `grads`.
    pub w_offset: usize,
    /// Element offset of b (O) in `params` and `grads`.
    pub b_offset: usize,
    /// Element offset of z (maxB,O) in `acts`; y follows at `+ maxB*O`.
    act_offset: usize,
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
}

/// A sequential stack of dense layers with its parameters and (after `compile`) training state.
pub struct Model {
    inputs: usize,
    layers: Vec<DenseLayer>,
    params: Vec<f32>,
    grads: Vec<f32>,
    rng: Rng,
    train: Option<TrainState>,
}

impl Model {
    /// Creates a model taking `inputs` features, initialised from `seed`.
    pub fn new(inputs: usize, specs: &[LayerSpec], seed: u64) -> Result<Model> {
        if inputs == 0 {
            return Err(NnError::invalid("inputs: must be at least 1"));
        }
        if specs.is_empty() {
            return Err(NnError::invalid("layers: a model needs at least one layer"));
        }
        let mut layers = Vec::with_capacity(specs.len());
        let mut fan_in = inputs;
        let mut offset = 0usize;
        for (l, s) in specs.iter().enumerate() {
            if s.units == 0 {
                return Err(NnError::invalid(format!("layers[{l}].units: must be at least 1")));
            }
            if !s.alpha.is_finite() {
                return Err(NnError::invalid(format!("layers[{l}].alpha: must be finite, got {}", s.alpha)));
            }
            let w_len = checked_size(fan_in, s.units, &format!("layers[{l}]"))?;
            let w_offset = offset;
            let b_offset = w_offset
                .checked_add(w_len)
                .ok_or_else(|| NnError::shape(format!("layers[{l}]: parameter count overflows")))?;
            offset = b_offset
                .checked_add(s.units)
                .ok_or_else(|| NnError::shape(format!("layers[{l}]: parameter count overflows")))?;
            layers.push(DenseLayer {
                inputs: fan_in,
                outputs: s.units,
                activation: s.activation,
                alpha: s.alpha,
                w_offset,
                b_offset,
                act_offset: 0,
            });
            fan_in = s.units;
        }
        let mut params = alloc_f32(offset, "parameters")?;
        let grads = alloc_f32(offset, "gradients")?;
        let mut rng = Rng::new(seed);
        for (layer, spec) in layers.iter().zip(specs) {
            let w = &mut params[layer.w_offset..layer.b_offset];
            init_kernel(w, layer.inputs, layer.outputs, spec.init, spec.activation, spec.alpha, &mut rng);
        }
        Ok(Model { inputs, layers, params, grads, rng, train: None })
    }

    /// Sizes the training arenas for batches of up to `max_batch` rows and resets optimizer state.
    /// On error the model keeps its previous compilation (if any).
    pub fn compile(&mut self, loss: Loss, optimizer: Optimizer, max_batch: usize) -> Result<()> {
        if max_batch == 0 || max_batch > MAX_BATCH_LIMIT {
            return Err(NnError::invalid(format!("maxBatch: must be in 1..={MAX_BATCH_LIMIT}, got {max_batch}")));
        }
        optimizer.validate()?;
        let outputs = self.outputs();
        let target_width = target_width(loss, outputs);
        let widest = self.layers.iter().map(|l| l.inputs.max(l.outputs)).max().unwrap_or(1);
        let mut layers = self.layers.clone();
        let mut acts_len = 0usize;
        for layer in &mut layers {
            layer.act_offset = acts_len;
            let zy = checked_size(2 * max_batch, layer.outputs, "activations")?;
            acts_len = acts_len.checked_add(zy).ok_or_else(|| NnError::shape("activations: size overflows"))?;
        }
        let state = TrainState {
            loss,
            optimizer,
            max_batch,
            x_stage: alloc_f32(checked_size(max_batch, self.inputs, "input stage")?, "input stage")?,
            y_stage: alloc_f32(checked_size(max_batch, target_width, "target stage")?, "target stage")?,
            acts: alloc_f32(acts_len, "activations")?,
            delta_a: alloc_f32(checked_size(max_batch, widest, "deltas")?, "deltas")?,
            delta_b: alloc_f32(checked_size(max_batch, widest, "deltas")?, "deltas")?,
            scratch: alloc_f32(GEMM_SCRATCH_LEN, "gemm scratch")?,
            perm: Vec::new(),
            step: 0,
        };
        self.layers = layers;
        self.train = Some(state);
        Ok(())
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }
    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }
    pub fn layers(&self) -> &[DenseLayer] {
        &self.layers
    }
    pub fn params(&self) -> &[f32] {
        &self.params
    }
    pub fn grads(&self) -> &[f32] {
        &self.grads
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
    /// Replaces the optimizer's hyper-parameters without touching its state.
    pub fn set_optimizer(&mut self, optimizer: Optimizer) -> Result<()> {
        optimizer.validate()?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        t.optimizer = optimizer;
        Ok(())
    }

    /// The input stage (maxB, I), for the caller to fill before a `*_staged` call.
    pub fn x_stage_mut(&mut self) -> Result<&mut [f32]> {
        Ok(&mut self.train.as_mut().ok_or_else(not_compiled)?.x_stage)
    }
    /// The target stage (maxB, T).
    pub fn y_stage_mut(&mut self) -> Result<&mut [f32]> {
        Ok(&mut self.train.as_mut().ok_or_else(not_compiled)?.y_stage)
    }

    /// One training step on the first `batch` staged rows: forward, loss, backward, checks,
    /// optimizer update. Returns the mean loss. On any error nothing in the model changes.
    pub fn train_staged(&mut self, batch: usize) -> Result<f32> {
        let loss = self.gradients_staged(batch)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        let step = t.step + 1;
        if !loss.is_finite() {
            return Err(NnError::non_finite(format!("loss is {loss} at step {step}; update not applied")));
        }
        for (l, layer) in self.layers.iter().enumerate() {
            let g = &self.grads[layer.w_offset..layer.b_offset + layer.outputs];
            if let Some(i) = g.iter().position(|v| !v.is_finite()) {
                let what = if layer.w_offset + i < layer.b_offset { "kernel" } else { "bias" };
                return Err(NnError::non_finite(format!(
                    "gradient of layer {l} ({what}) is not finite at step {step}; update not applied"
                )));
            }
        }
        t.optimizer.update(&mut self.params, &self.grads);
        t.step = step;
        Ok(loss)
    }

    /// Forward, loss and backward on the first `batch` staged rows, filling `grads` (overwrite);
    /// parameters are not updated. Returns the mean loss.
    pub fn gradients_staged(&mut self, batch: usize) -> Result<f32> {
        self.check_staged(batch, true)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        let layers = &self.layers;
        forward(layers, &self.params, t, batch, true);
        let last = layers[layers.len() - 1];
        let (pred, target) = (y_of(&t.acts, &last, t.max_batch, batch), &t.y_stage[..batch * target_width(t.loss, last.outputs)]);
        let dpred = &mut t.delta_a[..batch * last.outputs];
        let loss = loss_forward_backward(t.loss, batch, last.outputs, pred, target, Some(dpred));
        backward(layers, &self.params, &mut self.grads, t, batch);
        Ok(loss)
    }

    /// Inference on the first `batch` staged rows; returns the (batch, O) outputs.
    pub fn predict_staged(&mut self, batch: usize) -> Result<&[f32]> {
        self.check_staged(batch, false)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        forward(&self.layers, &self.params, t, batch, false);
        let last = self.layers[self.layers.len() - 1];
        Ok(y_of(&t.acts, &last, t.max_batch, batch))
    }

    /// Mean loss and number of correct predictions on the first `batch` staged rows (no update).
    pub fn evaluate_staged(&mut self, batch: usize) -> Result<(f32, u32)> {
        self.check_staged(batch, true)?;
        let t = self.train.as_mut().ok_or_else(not_compiled)?;
        forward(&self.layers, &self.params, t, batch, false);
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
            let (l, what) = self.locate_param(i);
            return Err(NnError::non_finite(format!("weights: layer {l} {what} has a non-finite value")));
        }
        self.params.copy_from_slice(src);
        Ok(())
    }

    fn locate_param(&self, i: usize) -> (usize, &'static str) {
        for (l, layer) in self.layers.iter().enumerate() {
            if i < layer.b_offset {
                return (l, "kernel");
            }
            if i < layer.b_offset + layer.outputs {
                return (l, "bias");
            }
        }
        (self.layers.len(), "?")
    }

    /// Checks a staged batch before any work: size, finite inputs, valid targets.
    fn check_staged(&self, batch: usize, with_targets: bool) -> Result<()> {
        let t = self.train.as_ref().ok_or_else(not_compiled)?;
        if batch == 0 || batch > t.max_batch {
            return Err(NnError::invalid(format!("batch: must be in 1..={} (maxBatch), got {batch}", t.max_batch)));
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
fn y_of<'a>(acts: &'a [f32], layer: &DenseLayer, max_batch: usize, batch: usize) -> &'a [f32] {
    let y = layer.act_offset + max_batch * layer.outputs;
    &acts[y..y + batch * layer.outputs]
}

/// Runs every layer on the first `batch` rows of the input stage. `keep_z` stores
/// pre-activations for backward; inference skips them.
fn forward(layers: &[DenseLayer], params: &[f32], t: &mut TrainState, batch: usize, keep_z: bool) {
    let mb = t.max_batch;
    for (l, layer) in layers.iter().enumerate() {
        let (i, o) = (layer.inputs, layer.outputs);
        let (before, here) = t.acts.split_at_mut(layer.act_offset);
        let x: &[f32] = if l == 0 { &t.x_stage[..batch * i] } else { y_of(before, &layers[l - 1], mb, batch) };
        let (z, y) = here.split_at_mut(mb * o);
        let w = &params[layer.w_offset..layer.b_offset];
        let b = &params[layer.b_offset..layer.b_offset + o];
        let y = &mut y[..batch * o];
        if keep_z {
            dense_forward(batch, i, o, x, w, b, layer.activation, layer.alpha, &mut z[..batch * o], y, &mut t.scratch);
        } else {
            dense_infer(batch, i, o, x, w, b, layer.activation, layer.alpha, y, &mut t.scratch);
        }
    }
}

/// Backpropagates the loss gradient held in `delta_a` (batch, O_last) through every layer,
/// overwriting `grads`.
fn backward(layers: &[DenseLayer], params: &[f32], grads: &mut [f32], t: &mut TrainState, batch: usize) {
    let mb = t.max_batch;
    let mut dy_in_a = true;
    for l in (0..layers.len()).rev() {
        let layer = &layers[l];
        let (i, o) = (layer.inputs, layer.outputs);
        let (dy, dx) = if dy_in_a { (&mut t.delta_a, &mut t.delta_b) } else { (&mut t.delta_b, &mut t.delta_a) };
        let x: &[f32] = if l == 0 { &t.x_stage[..batch * i] } else { y_of(&t.acts, &layers[l - 1], mb, batch) };
        let z = &t.acts[layer.act_offset..layer.act_offset + batch * o];
        let y = y_of(&t.acts, layer, mb, batch);
        let w = &params[layer.w_offset..layer.b_offset];
        let (dw, db) = grads[layer.w_offset..layer.b_offset + o].split_at_mut(i * o);
        let dx = if l > 0 { Some(&mut dx[..batch * i]) } else { None };
        dense_backward(batch, i, o, x, w, z, y, layer.activation, layer.alpha, &mut dy[..batch * o], dw, db, dx, &mut t.scratch);
        dy_in_a = !dy_in_a;
    }
}
