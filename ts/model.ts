// Sequential: a stack of dense, batchNorm and dropout layers whose parameters, gradients,
// optimizer state, activations and batch stages live in wasm arenas (crates/nn). A training step
// copies the batch into the model's x/y stages with TypedArray.set on a freshly read heap view
// and makes ONE export call (forward, loss, backward, clipping, optimizer update, step stats);
// fit() uploads the dataset once and then makes one call per batch (rows gathered in Rust, in
// shuffled order). Every argument is checked here before any call, so a rejected call changes
// nothing; Rust checks again and refuses a non-finite step without changing anything either.

import type { Abi } from "./abi.js";
import {
  checkBoolean,
  checkFloat32Array,
  checkInt,
  checkNumber,
  checkOptions,
  describe,
  DisposedError,
  InternalError,
  InvalidArgumentError,
  isObject,
  NonFiniteError,
  ShapeError,
  StateError,
} from "./errors.js";
import {
  ACTIVATIONS,
  enumId,
  LAYER_KINDS,
  LAYER_RECORD_F32_WORDS,
  LAYER_RECORD_WORDS,
  layerRecord,
  PARAM_ROLES,
  type Activation,
  type LayerKind,
  type LayerSpec,
  type ParamRole,
} from "./layers.js";
import { hasAccuracy, LOSSES, takesClassIds, type LossName } from "./losses.js";
import { disposeSymbol, type Runtime } from "./memory.js";
import { optimizerAbi, type OptimizerSpec } from "./optimizers.js";
// Types only: schedules come from the "edgegrad/schedules" subpath (checked by checkSchedule).
import type { Schedule } from "./schedules.js";
import { checkSchedule, specsFromRecords, stageCheckpoint, writeCheckpoint, type LoadOptions, type SaveOptions } from "./checkpoint.js";
import { Tensor } from "./tensor.js";

/** Model inputs: a Float32Array of B*inputs values (row-major) or a (B, inputs) Tensor. */
export type Inputs = Float32Array | Tensor;

/**
 * Targets: class ids (Int32Array / Uint32Array of length B, or a (B,1) Tensor) for
 * softmaxCrossEntropy; otherwise a Float32Array of B*outputs values or a (B, outputs) Tensor.
 */
export type Targets = Float32Array | Int32Array | Uint32Array | Tensor;

/** A dense layer's parameters (always copies): kernel (inputs*units, (I,O) row-major) and bias (units). */
export interface DenseWeights {
  /** Layer kind tag (optional in setWeights; must match the layer when given). */
  kind: "dense";
  /** Kernel W of shape (inputs, units), row-major. */
  kernel: Float32Array;
  /** Bias b of length units. */
  bias: Float32Array;
}

/** A batchNorm layer's parameters (always copies): scale gamma and shift beta, one per feature. */
export interface BatchNormWeights {
  /** Layer kind tag (optional in setWeights; must match the layer when given). */
  kind: "batchNorm";
  /** Scale γ (features). */
  gamma: Float32Array;
  /** Shift β (features). */
  beta: Float32Array;
}

/** A dropout layer has no parameters; its entry keeps `weights[l]` aligned with `model.layers[l]`. */
export interface DropoutWeights {
  /** Layer kind tag. */
  kind: "dropout";
}

/** One layer's parameters, discriminated by `kind`; getWeights() returns one per layer, in layer order. */
export type LayerWeights = DenseWeights | BatchNormWeights | DropoutWeights;

/** What setWeights accepts per layer: a LayerWeights whose `kind` may be left out. */
export type LayerWeightsInput =
  | (Omit<DenseWeights, "kind"> & {
      /** Optional tag; when present it must match the layer. */
      kind?: "dense";
    })
  | (Omit<BatchNormWeights, "kind"> & {
      /** Optional tag; when present it must match the layer. */
      kind?: "batchNorm";
    })
  | {
      /** Optional tag; when present it must match the layer. */
      kind?: "dropout";
    };

/** A batchNorm layer's running statistics (copies), used in eval mode; not trained. */
export interface BatchNormBuffers {
  /** Index of the batchNorm layer in `model.layers`. */
  layer: number;
  /** Running mean per feature (starts at 0). */
  runningMean: Float32Array;
  /** Running unbiased variance per feature (starts at 1). */
  runningVar: Float32Array;
}

/** A layer as placed in a model. */
export interface LayerInfo {
  /** Layer kind. */
  readonly kind: LayerKind;
  /** Input features of this layer. */
  readonly inputs: number;
  /** Output features of this layer (= inputs for batchNorm and dropout). */
  readonly units: number;
  /** Activation after the affine map (dense) or the normalisation (batchNorm); "identity" for dropout. */
  readonly activation: Activation;
  /** leakyRelu negative slope (as stored, f32). */
  readonly alpha: number;
  /** Number of trainable parameters of this layer. */
  readonly paramCount: number;
}

/** One trainable parameter tensor, as the `filter` of a parameter group sees it. */
export interface ParamInfo {
  /** Index of its layer in `model.layers`. */
  readonly layer: number;
  /** Kind of that layer. */
  readonly layerKind: "dense" | "batchNorm";
  /** What it is to its layer. */
  readonly role: ParamRole;
  /** Shape: kernel [inputs, units], bias/gamma/beta [units]. */
  readonly shape: readonly number[];
}

/** Optimizer settings for the parameters a filter selects (torch's param_groups). */
export interface ParamGroup {
  /** Selects parameters; the first group whose filter returns true wins. */
  filter: (p: ParamInfo) => boolean;
  /** Learning rate of this group (default: the optimizer's); it follows schedules proportionally. */
  lr?: number;
  /** Weight decay of this group (default: the optimizer's), L2 or decoupled as the optimizer defines it. */
  weightDecay?: number;
}

/** Per-layer numbers of the last training step (dropout layers report zeros). */
export interface LayerStepStats {
  /** L2 norm of this layer's gradients (before clipping). */
  gradNorm: number;
  /** L2 norm of this layer's parameters after the update. */
  weightNorm: number;
  /** L2 norm of the update applied to this layer's parameters. */
  updateNorm: number;
  /** updateNorm / weightNorm (0 when weightNorm is 0); ~1e-3 is the classic healthy value. */
  updateRatio: number;
}

/** Gradient-health numbers of the last training step. */
export interface StepStats {
  /** Mean loss of the batch (before the update). */
  loss: number;
  /** Global L2 norm of all gradients before clipping. */
  gradNorm: number;
  /** Factor clipNorm applied to the gradients (1 when it did not clip). */
  clipScale: number;
  /** One entry per layer, in layer order. */
  layers: LayerStepStats[];
}

/** Options of `Edgegrad.sequential()`. */
export interface SequentialOptions {
  /** Input features. */
  inputs: number;
  /** Seed of the initializers and of fit()'s shuffling; random when omitted. */
  seed?: number;
}

/** Options of `Sequential.compile()`. */
export interface CompileOptions {
  /** Training loss. */
  loss: LossName;
  /** Optimizer, e.g. `adamw({ lr: 1e-3 })` or `sgd({ lr: 0.1, momentum: 0.9 })`. */
  optimizer: OptimizerSpec;
  /** Largest batch trainStep/fit/predict/evaluate will send at once (sizes the arenas; default 32). */
  maxBatch?: number;
  /** Rescale all gradients when their global L2 norm exceeds this, > 0 (torch.nn.utils.clip_grad_norm_; default off). */
  clipNorm?: number;
  /** Clamp every gradient to [−clipValue, clipValue], > 0, before clipNorm (torch.nn.utils.clip_grad_value_; default off). */
  clipValue?: number;
  /** Per-parameter lr and weight decay, e.g. `[{ filter: (p) => p.role !== "kernel", weightDecay: 0 }]`. */
  paramGroups?: readonly ParamGroup[];
}

/** One optimizer state array (torch's state name), laid out like getWeights(). */
export interface OptimizerStateArray {
  /** torch's state name, e.g. "exp_avg". */
  name: string;
  /** Values per layer, as getWeights() lays out the parameters. */
  values: LayerWeights[];
}

/** Copies of the optimizer's state. */
export interface OptimizerState {
  /** Optimizer steps applied since compile (the bias-correction step of Adam, Adagrad's lr decay). */
  step: number;
  /** The state arrays (none for plain SGD). */
  state: OptimizerStateArray[];
}

/** Metrics reported after each epoch of `fit()`. */
export interface EpochLogs {
  /** Learning rate used during the epoch. */
  lr: number;
  /** Mean training loss over the epoch's batches (weighted by batch size, as Keras reports it). */
  loss: number;
  /** Training-set accuracy measured after the epoch (classification losses only). */
  accuracy?: number;
  /** Validation loss (when validationData is given). */
  valLoss?: number;
  /** Validation accuracy (when validationData is given, classification losses only). */
  valAccuracy?: number;
  /** Batches skipped for non-finite inputs, targets, loss or gradients (with `nonFinite: "skip"` only). */
  skippedBatches?: number;
}

/** Per-epoch metrics of a `fit()` run, Keras style: one entry per epoch in each array. */
export interface History {
  /** Epoch indices, 0-based. */
  epoch: number[];
  /** Learning rate used in each epoch. */
  lr: number[];
  /** Mean training loss per epoch. */
  loss: number[];
  /** Training accuracy per epoch (classification losses only). */
  accuracy?: number[];
  /** Validation loss per epoch (when validationData is given). */
  valLoss?: number[];
  /** Validation accuracy per epoch (when validationData is given, classification losses only). */
  valAccuracy?: number[];
  /** Skipped batches per epoch (with `nonFinite: "skip"` only). */
  skippedBatches?: number[];
}

/** Options of `Sequential.fit()`. */
export interface FitOptions {
  /** Passes over the data (default 1). */
  epochs?: number;
  /** Rows per training step, at most maxBatch (default min(32, maxBatch)). */
  batchSize?: number;
  /** Reshuffle the rows (seeded) before every epoch (default true). */
  shuffle?: boolean;
  /** Held-out [x, y] evaluated after every epoch. */
  validationData?: readonly [Inputs, Targets];
  /** Also measure training-set accuracy after every epoch (default true; costs one forward pass over x). */
  accuracy?: boolean;
  /**
   * Called after every epoch (after the schedule has stepped, so `model.lr` is already the next
   * epoch's rate); a returned promise is awaited. Returning `false` stops training after this
   * epoch (what `callbacks()` from "edgegrad/callbacks" uses for early stopping).
   */
  onEpochEnd?: (epoch: number, logs: EpochLogs) => void | boolean | Promise<void | boolean>;
  /** Called synchronously after every training step with the model's step count and that step's stats. */
  onBatchEnd?: (step: number, stats: StepStats) => void;
  /** Learning-rate schedule from "edgegrad/schedules", stepped after every epoch (started from the current `lr` if it is not yet). */
  schedule?: Schedule;
  /**
   * A batch whose inputs, targets, loss or gradients are NaN/Inf: "error" (default) stops with
   * NonFiniteError; "skip" leaves the model as it was for that batch, counts it in
   * `logs.skippedBatches` and goes on. The epoch's loss then averages the trained rows (NaN when
   * every batch was skipped), and its training accuracy is NaN when x itself has non-finite rows.
   */
  nonFinite?: "error" | "skip";
}

/** Loss and accuracy over a dataset; accuracy is NaN for meanSquaredError. */
export interface Evaluation {
  /** Mean loss over all rows. */
  loss: number;
  /** Fraction correct (argmax for cross-entropy, per element for BCE); NaN for MSE. */
  accuracy: number;
}

/** Gradients of the mean loss for one batch, without an update. */
export interface Gradients {
  /** Mean loss of the batch. */
  loss: number;
  /** dLoss/dθ per layer, same layout as getWeights(). */
  gradients: LayerWeights[];
}

interface Compiled {
  loss: LossName;
  classIds: boolean;
  maxBatch: number;
  targetWidth: number;
  /** f32 index of x_stage (maxBatch, inputs). */
  xStage: number;
  /** f32 index of y_stage (maxBatch, targetWidth). */
  yStage: number;
  /** Current base learning rate (f64 as the user gave it; wasm holds it as f32). */
  lr: number;
  /** The compiled optimizer. */
  optimizer: OptimizerSpec;
}

/** One parameter segment: its layer, role and element range in the params/grads arenas. */
interface Segment {
  layer: number;
  role: ParamRole;
  offset: number;
  len: number;
}

/** A layer as the TS side needs it: kind, widths, its segments and its buffer offset. */
interface Slot {
  kind: LayerKind;
  inputs: number;
  units: number;
  /** Its parameter segments, by role. */
  segments: Partial<Record<ParamRole, Segment>>;
  /** Element offset of its running statistics in the buffers arena (batchNorm only). */
  buffer: number;
}

/** A validated row source: a JS typed array, or a tensor in the heap starting at f32 index `at`. */
interface Rows {
  array: Float32Array | Int32Array | Uint32Array | null;
  tensor: Tensor | null;
  at: number;
  rows: number;
  width: number;
}

const newRows = (): Rows => ({ array: null, tensor: null, at: 0, rows: 0, width: 0 });

// model info record (eg_model_info) word indices
const INFO_OUTPUTS = 1;
const INFO_N_LAYERS = 2;
const INFO_PARAM_COUNT = 3;
const INFO_MAX_BATCH = 4;
const INFO_X_STAGE = 7;
const INFO_Y_STAGE = 8;
const INFO_PARAMS = 9;
const INFO_GRADS = 10;
const INFO_TARGET_WIDTH = 11;
const INFO_STEP_LO = 12;
const INFO_STEP_HI = 13;
const INFO_SEGMENTS = 14;
const INFO_TRAINING = 15;

// layer info record (eg_model_layer_info) word indices
const LAYER_KIND = 0;
const LAYER_INPUTS = 1;
const LAYER_OUTPUTS = 2;
const LAYER_ACTIVATION = 3;
const LAYER_ALPHA = 4;
const LAYER_PARAM_LEN = 6;
const LAYER_BUFFER = 7;

/** The parameter roles of each layer kind, in arena order. */
const ROLES_OF: Record<LayerKind, readonly ParamRole[]> = { dense: ["kernel", "bias"], batchNorm: ["gamma", "beta"], dropout: [] };

/** torch's names of the optimizer's per-parameter state arrays, in the order wasm lays them out. */
function stateRoleNames(o: OptimizerSpec): string[] {
  switch (o.name) {
    case "sgd":
      return o.momentum !== 0 ? ["momentum_buffer"] : [];
    case "adam":
    case "adamw":
      return o.amsgrad ? ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"] : ["exp_avg", "exp_avg_sq"];
    case "rmsprop":
      return ["square_avg", ...(o.centered ? ["grad_avg"] : []), ...(o.momentum > 0 ? ["momentum_buffer"] : [])];
    case "adagrad":
      return ["sum"];
  }
}

// step-stats block: [loss, grad norm, clip scale], then 4 numbers per layer
const STATS_HEAD = 3;
const STATS_PER_LAYER = 4;

const MAX_BATCH_LIMIT = 1 << 20;
const DEFAULT_MAX_BATCH = 32;

/**
 * Resolves on a fresh macrotask so timers, I/O and rendering can run between epochs. Prefers
 * setImmediate (Node) and MessageChannel (browsers, Workers) because setTimeout(0) is clamped to
 * >= 1 ms (Node) or 4 ms (nested, browsers): 60 tiny epochs would otherwise spend most of their
 * time asleep.
 */
function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => unknown };
  if (typeof g.setImmediate === "function") return new Promise((resolve) => void g.setImmediate!(resolve));
  if (typeof MessageChannel === "function") {
    return new Promise((resolve) => {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => {
        ch.port1.close();
        resolve();
      };
      ch.port2.postMessage(null);
    });
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function randomSeedWords(): [number, number] {
  // Web Crypto is global in every supported runtime (Node >= 20, browsers, Workers).
  const w = crypto.getRandomValues(new Uint32Array(2));
  return [w[0]!, w[1]!];
}

/** Throws InvalidArgumentError unless every label is an integer class id in 0..classes. */
function checkLabels(name: string, a: ArrayLike<number>, at: number, rows: number, classes: number): void {
  for (let r = 0; r < rows; r++) {
    const v = a[at + r]!;
    if (!(Number.isInteger(v) && v >= 0 && v < classes)) {
      throw new InvalidArgumentError(`${name}: label ${v} at row ${r} is not a class id in 0..${classes}`);
    }
  }
}

function checkFinite(name: string, a: Float32Array): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) throw new NonFiniteError(`${name}: non-finite value ${a[i]} at index ${i}`);
  }
}

/** Checks a Float32Array of exactly `len` values (all finite when `finite`) and returns it. */
function checkValues(v: unknown, name: string, len: number, finite: boolean): Float32Array {
  const a = checkFloat32Array(v, name);
  if (a.length !== len) throw new ShapeError(`${name}: expected ${len} values, got ${a.length}`);
  if (finite) checkFinite(name, a);
  return a;
}

/**
 * A sequential stack of dense, batchNorm and dropout layers, trained in WebAssembly; free it
 * with `dispose()` or `using`.
 */
export class Sequential implements Disposable {
  readonly #rt: Runtime;
  readonly #abi: Abi;
  #handle: number;
  readonly #slots: readonly Slot[];
  readonly #segments: readonly Segment[];
  readonly #hasBatchNorm: boolean;
  /** The validated ABI layer records (kept for checkpoints). */
  readonly #records: readonly number[];
  /** f32 indices of the params and grads arenas, and the mode (set by #readBack). */
  #params = 0;
  #grads = 0;
  #compiled: Compiled | null = null;
  #training = true;
  /** True once a training step succeeded since the last compile (the stats block is filled). */
  #stepped = false;
  #fitting = false;
  // Reused by the synchronous calls so trainStep allocates nothing.
  readonly #sx: Rows = newRows();
  readonly #sy: Rows = newRows();

  /** Input features. */
  readonly inputs: number;
  /** Output features of the last layer. */
  readonly outputs: number;
  /** The layers as placed in the model. */
  readonly layers: readonly LayerInfo[];
  /** Every trainable parameter tensor in arena order (what paramGroups filters see). */
  readonly parameters: readonly ParamInfo[];
  /** Number of trainable parameters. */
  readonly paramCount: number;

  /** @internal Builds the model in wasm; use `Edgegrad.sequential()` instead of calling this directly. */
  constructor(rt: Runtime, opts: SequentialOptions, layers: readonly LayerSpec[]) {
    const o = checkOptions(opts, "sequential(opts)");
    const inputs = checkInt(o.inputs, "sequential(opts.inputs)");
    let seedLo: number;
    let seedHi: number;
    if (o.seed === undefined) {
      [seedLo, seedHi] = randomSeedWords();
    } else {
      const seed = o.seed;
      if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
        throw new InvalidArgumentError(`sequential(opts.seed): must be a non-negative safe integer, got ${describe(seed)}`);
      }
      seedLo = seed % 2 ** 32;
      seedHi = Math.floor(seed / 2 ** 32);
    }
    if (!Array.isArray(layers) || layers.length === 0) {
      throw new InvalidArgumentError(`sequential(layers): expected a non-empty array of layers such as dense(10), got ${describe(layers)}`);
    }
    const records = layers.flatMap((spec: unknown, l: number) => layerRecord(spec, `sequential(layers[${l}])`));

    const abi = rt.abi;
    const bytes = records.length * 4;
    const where = "sequential";
    const spec = abi.alloc(bytes, where);
    let handle: number;
    try {
      const u32 = abi.u32;
      const f32 = abi.f32;
      for (let r = 0; r < records.length; r++) {
        if (LAYER_RECORD_F32_WORDS.includes(r % LAYER_RECORD_WORDS)) f32[(spec >>> 2) + r] = records[r]!;
        else u32[(spec >>> 2) + r] = records[r]!;
      }
      abi.call(where, "eg_model_create", inputs, layers.length, spec, seedLo, seedHi, abi.out);
      handle = abi.outU32(0);
    } finally {
      abi.free(spec, bytes);
    }

    this.#rt = rt;
    this.#abi = abi;
    this.#handle = handle;
    this.#records = records;
    try {
      this.#readBack(where, null); // the model info record stays in the out-scratch
      this.inputs = inputs;
      this.outputs = abi.outU32(INFO_OUTPUTS);
      this.paramCount = abi.outU32(INFO_PARAM_COUNT);
      const n = abi.outU32(INFO_N_LAYERS);
      const nSegments = abi.outU32(INFO_SEGMENTS);
      const slots: Slot[] = [];
      const infos: LayerInfo[] = [];
      for (let l = 0; l < n; l++) {
        abi.call(where, "eg_model_layer_info", handle, l, abi.out);
        const kind = LAYER_KINDS[abi.outU32(LAYER_KIND)] ?? "dense";
        const [li, lo] = [abi.outU32(LAYER_INPUTS), abi.outU32(LAYER_OUTPUTS)];
        slots.push({ kind, inputs: li, units: lo, segments: {}, buffer: abi.outU32(LAYER_BUFFER) });
        infos.push(
          Object.freeze({
            kind,
            inputs: li,
            units: lo,
            activation: ACTIVATIONS[abi.outU32(LAYER_ACTIVATION)] ?? "identity",
            alpha: abi.outF32(LAYER_ALPHA),
            paramCount: abi.outU32(LAYER_PARAM_LEN),
          }),
        );
      }
      const segments: Segment[] = [];
      const params: ParamInfo[] = [];
      for (let k = 0; k < nSegments; k++) {
        abi.call(where, "eg_model_segment_info", handle, k, abi.out);
        const seg: Segment = { layer: abi.outU32(0), role: PARAM_ROLES[abi.outU32(1)]!, offset: abi.outU32(2), len: abi.outU32(3) };
        const slot = slots[seg.layer]!;
        slot.segments[seg.role] = seg;
        segments.push(seg);
        params.push(
          Object.freeze({
            layer: seg.layer,
            layerKind: slot.kind as "dense" | "batchNorm",
            role: seg.role,
            shape: Object.freeze(seg.role === "kernel" ? [slot.inputs, slot.units] : [slot.units]),
          }),
        );
      }
      this.#slots = slots;
      this.#segments = segments;
      this.#hasBatchNorm = slots.some((s) => s.kind === "batchNorm");
      this.layers = Object.freeze(infos);
      this.parameters = Object.freeze(params);
    } catch (e) {
      abi.call(where, "eg_model_free", handle);
      throw e;
    }
    rt.adopt(this, "model", handle);
  }

  // ---- state ----

  /** The validated layer specs this model was built from (copies). */
  get specs(): LayerSpec[] {
    return specsFromRecords(this.#records);
  }

  /** True once `dispose()` has run. */
  get disposed(): boolean {
    return this.#handle === 0;
  }

  /** The raw ABI handle (for interop and tests); throws DisposedError after dispose. */
  get handle(): number {
    return this.#h("model");
  }

  /** True after a successful `compile()`. */
  get compiled(): boolean {
    return this.#compiled !== null;
  }

  /** The compiled loss, or null before `compile()`. */
  get loss(): LossName | null {
    return this.#compiled?.loss ?? null;
  }

  /** The compiled maximum batch, or 0 before `compile()`. */
  get maxBatch(): number {
    return this.#compiled?.maxBatch ?? 0;
  }

  /** Optimizer steps applied since the last `compile()`. */
  get step(): number {
    this.#abi.call("step", "eg_model_info", this.#h("step"), this.#abi.out);
    return this.#abi.outU32(INFO_STEP_LO) + this.#abi.outU32(INFO_STEP_HI) * 2 ** 32;
  }

  /** True in training mode (the default): batchNorm uses batch statistics and dropout is active. */
  get training(): boolean {
    this.#h("training");
    return this.#training;
  }

  /** Training mode for trainStep/computeGradients/fit (batchNorm batch statistics, dropout on); returns the model. */
  train(): this {
    this.#abi.call("train", "eg_model_set_training", this.#h("train"), 1);
    this.#training = true;
    return this;
  }

  /** Eval mode for trainStep/computeGradients/fit (batchNorm running statistics, no dropout); predict/evaluate always use it. */
  eval(): this {
    this.#abi.call("eval", "eg_model_set_training", this.#h("eval"), 0);
    this.#training = false;
    return this;
  }

  /** The optimizer's base learning rate; settable between steps (parameter groups keep their ratio to it). */
  get lr(): number {
    return this.#need("lr").lr;
  }

  /** Sets the optimizer's base learning rate (parameter groups keep their ratio to it). */
  set lr(value: number) {
    const c = this.#need("lr");
    const h = this.#handle;
    checkNumber(value, "lr", 0);
    this.#abi.call("lr", "eg_model_set_lr", h, value);
    c.lr = value;
  }

  #h(where: string): number {
    if (this.#handle === 0) throw new DisposedError(`${where}: model used after dispose()`);
    return this.#handle;
  }

  /** The compile settings; throws DisposedError after dispose(), StateError before compile(). */
  #need(where: string): Compiled {
    this.#h(where);
    if (this.#compiled === null) throw new StateError(`${where}: model is not compiled; call compile({ loss, optimizer, maxBatch }) first`);
    return this.#compiled;
  }

  // ---- compile ----

  /**
   * Chooses loss, optimizer, maximum batch, clipping and parameter groups, sizes the training
   * arenas and resets the optimizer state, step count and learning rate.
   */
  compile(opts: CompileOptions): void {
    const h = this.#h("compile");
    if (this.#fitting) throw new StateError("compile: not allowed while fit() is running");
    if (!isObject(opts)) {
      throw new InvalidArgumentError(`compile(opts): expected { loss, optimizer, maxBatch }, got ${describe(opts)}`);
    }
    const lossId = enumId(LOSSES, opts.loss, "compile(opts.loss)");
    const { id, hyper, spec } = optimizerAbi(opts.optimizer, "compile(opts.optimizer)");
    const maxBatch = checkInt(opts.maxBatch ?? DEFAULT_MAX_BATCH, "compile(opts.maxBatch)", 1, MAX_BATCH_LIMIT);
    // Zero is the ABI's "off": a user's 0 would mean "clip everything to nothing", so refuse it.
    const clipNorm = opts.clipNorm === undefined ? 0 : checkNumber(opts.clipNorm, "compile(opts.clipNorm)", 0, Infinity, { min: true });
    const clipValue = opts.clipValue === undefined ? 0 : checkNumber(opts.clipValue, "compile(opts.clipValue)", 0, Infinity, { min: true });
    const groups = this.#groupRecords(opts.paramGroups, spec);

    const abi = this.#abi;
    // The hyper-parameters fit in the out-scratch, which compile does not write to.
    const f32 = abi.f32;
    for (let i = 0; i < hyper.length; i++) f32[(abi.out >>> 2) + i] = hyper[i]!;
    abi.call("compile", "eg_model_compile", h, lossId, maxBatch, id, abi.out, hyper.length);
    this.#compiled = null;
    this.#stepped = false;
    // Everything below was validated above, so these calls only fail on a bug.
    const n = this.#segments.length;
    if (n > 0) {
      const bytes = n * 8;
      const ptr = abi.alloc(bytes, "compile");
      try {
        abi.f32.set(groups, ptr >>> 2);
        abi.call("compile(opts.paramGroups)", "eg_model_set_param_groups", h, ptr, n);
      } finally {
        abi.free(ptr, bytes);
      }
    }
    abi.call("compile", "eg_model_set_clipping", h, clipNorm, clipValue);
    this.#readBack("compile", { loss: LOSSES[lossId]!, lr: spec.lr, optimizer: spec });
  }

  /**
   * Reads back what compile() or load() left in wasm: the arena addresses (they move), the mode
   * and, for a compiled model, the batch layout next to the settings only the TS side keeps.
   */
  #readBack(where: string, settings: Pick<Compiled, "loss" | "lr" | "optimizer"> | null): void {
    const abi = this.#abi;
    abi.call(where, "eg_model_info", this.#handle, abi.out);
    this.#params = abi.outU32(INFO_PARAMS) >>> 2;
    this.#grads = abi.outU32(INFO_GRADS) >>> 2;
    this.#training = abi.outU32(INFO_TRAINING) === 1;
    this.#compiled = settings && {
      ...settings,
      classIds: takesClassIds(settings.loss),
      maxBatch: abi.outU32(INFO_MAX_BATCH),
      targetWidth: abi.outU32(INFO_TARGET_WIDTH),
      xStage: abi.outU32(INFO_X_STAGE) >>> 2,
      yStage: abi.outU32(INFO_Y_STAGE) >>> 2,
    };
  }

  /** Validates paramGroups and returns the ABI's [lr scale, weight decay] pair per segment. */
  #groupRecords(groups: unknown, spec: OptimizerSpec): number[] {
    const lr = spec.lr;
    const wd = spec.weightDecay;
    const out: number[] = [];
    for (let k = 0; k < this.#segments.length; k++) out.push(1, wd);
    if (groups === undefined) return out;
    if (!Array.isArray(groups)) {
      throw new InvalidArgumentError(`compile(opts.paramGroups): expected an array of { filter, lr?, weightDecay? }, got ${describe(groups)}`);
    }
    const checked = groups.map((g: unknown, i) => {
      const arg = (k: string) => `compile(opts.paramGroups[${i}]${k ? `.${k}` : ""})`;
      if (!isObject(g)) throw new InvalidArgumentError(`${arg("")}: expected { filter, lr?, weightDecay? }, got ${describe(g)}`);
      const { filter, lr: glr, weightDecay } = g as Partial<ParamGroup>;
      if (typeof filter !== "function") throw new InvalidArgumentError(`${arg("filter")}: expected a function (p: ParamInfo) => boolean, got ${describe(filter)}`);
      let scale = 1;
      if (glr !== undefined) {
        checkNumber(glr, arg("lr"), 0);
        if (lr === 0 && glr !== 0) {
          throw new InvalidArgumentError(`${arg("lr")}: a group rate is kept as a multiple of the optimizer's lr, which is 0`);
        }
        scale = lr === 0 ? 1 : glr / lr;
      }
      const gwd = weightDecay === undefined ? wd : checkNumber(weightDecay, arg("weightDecay"), 0);
      return { arg, filter, scale, wd: gwd };
    });
    this.parameters.forEach((p, k) => {
      for (const g of checked) {
        let hit: unknown;
        try {
          hit = g.filter(p);
        } catch (e) {
          throw new InvalidArgumentError(`${g.arg("filter")}: threw on parameter ${k} (layer ${p.layer} ${p.role}): ${String(e)}`);
        }
        if (typeof hit !== "boolean") throw new InvalidArgumentError(`${g.arg("filter")}: must return a boolean, returned ${describe(hit)}`);
        if (hit) {
          checkNumber(g.scale, g.arg("lr"), 0);
          out[2 * k] = g.scale;
          out[2 * k + 1] = g.wd;
          break;
        }
      }
    });
    return out;
  }

  // ---- argument resolution (validates; never calls anything that changes state) ----

  /** Validates x and fills `into`; `name` is e.g. "trainStep(x)". */
  #resolveX(name: string, x: unknown, into: Rows): void {
    const inputs = this.inputs;
    if (x instanceof Float32Array) {
      if (x.length === 0 || x.length % inputs !== 0) {
        throw new ShapeError(`${name}: length ${x.length} is not a positive multiple of inputs (${inputs})`);
      }
      into.array = x;
      into.tensor = null;
      into.rows = x.length / inputs;
    } else if (x instanceof Tensor) {
      x.checkOwner(this.#rt, name);
      if (x.cols !== inputs) throw new ShapeError(`${name}: tensor has ${x.cols} columns, the model takes ${inputs} inputs`);
      into.array = null;
      into.tensor = x;
      into.at = x.dataPtr(name) >>> 2;
      into.rows = x.rows;
    } else {
      throw new InvalidArgumentError(`${name}: expected a Float32Array or Tensor, got ${describe(x)}`);
    }
    into.width = inputs;
  }

  /** Validates y for `rows` rows (types, length, class ids) and fills `into`. */
  #resolveY(name: string, y: unknown, rows: number, c: Compiled, into: Rows): void {
    const tw = c.targetWidth;
    if (y instanceof Tensor) {
      y.checkOwner(this.#rt, name);
      if (y.rows !== rows || y.cols !== tw) {
        throw new ShapeError(`${name}: tensor is ${y.rows}x${y.cols}, expected ${rows}x${tw} (one row per row of x)`);
      }
      into.array = null;
      into.tensor = y;
      into.at = y.dataPtr(name) >>> 2;
      if (c.classIds) checkLabels(name, this.#abi.f32, into.at, rows, this.outputs);
    } else if (c.classIds) {
      if (!(y instanceof Int32Array || y instanceof Uint32Array)) {
        throw new InvalidArgumentError(`${name}: ${c.loss} takes class ids as an Int32Array or Uint32Array (or a (B,1) Tensor), got ${describe(y)}`);
      }
      if (y.length !== rows) throw new ShapeError(`${name}: expected ${rows} class ids (one per row of x), got ${y.length}`);
      checkLabels(name, y, 0, rows, this.outputs);
      into.array = y;
      into.tensor = null;
    } else {
      if (!(y instanceof Float32Array)) {
        throw new InvalidArgumentError(`${name}: ${c.loss} takes a Float32Array of B*${tw} targets (or a Tensor), got ${describe(y)}`);
      }
      if (y.length !== rows * tw) throw new ShapeError(`${name}: expected ${rows}x${tw} = ${rows * tw} targets, got ${y.length}`);
      into.array = y;
      into.tensor = null;
    }
    into.rows = rows;
    into.width = tw;
  }

  /** Copies rows [start, start+count) of `src` to the heap at f32 index `dst`. */
  #copyRows(src: Rows, start: number, count: number, dst: number): void {
    const f32 = this.#abi.f32;
    const w = src.width;
    const a = src.array;
    if (a !== null) {
      f32.set(start === 0 && count * w === a.length ? a : a.subarray(start * w, (start + count) * w), dst);
    } else {
      f32.copyWithin(dst, src.at + start * w, src.at + (start + count) * w);
    }
  }

  /** Drops references to user data held by the reused row descriptors. */
  #clearScratch(): void {
    this.#sx.array = this.#sx.tensor = this.#sy.array = this.#sy.tensor = null;
  }

  /** Validates and stages one batch (rows <= maxBatch) into the x/y stages; returns its rows. */
  #stageBatch(where: string, xName: string, yName: string, x: unknown, y: unknown, c: Compiled): number {
    const sx = this.#sx;
    const sy = this.#sy;
    try {
      this.#resolveX(xName, x, sx);
      this.#checkBatchNormRows(sx.rows, xName);
      if (sx.rows > c.maxBatch) {
        throw new InvalidArgumentError(`${xName}: batch of ${sx.rows} rows exceeds maxBatch (${c.maxBatch}); use fit() or compile with a larger maxBatch`);
      }
      this.#resolveY(yName, y, sx.rows, c, sy);
      this.#copyRows(sx, 0, sx.rows, c.xStage);
      this.#copyRows(sy, 0, sx.rows, c.yStage);
      return sx.rows;
    } finally {
      this.#clearScratch();
    }
  }

  // ---- training ----

  /** Refuses a 1-row training batch when batchNorm would normalise it in training mode (as PyTorch does). */
  #checkBatchNormRows(rows: number, name: string): void {
    if (rows === 1 && this.#training && this.#hasBatchNorm) {
      throw new InvalidArgumentError(`${name}: batchNorm needs more than 1 sample per batch in training mode; use a larger batch or eval()`);
    }
  }

  /** Adds step, layer and role to a NonFiniteError from a refused step (nothing changed, so step is still the old count). */
  #nonFinite(e: unknown, step: boolean): unknown {
    if (!(e instanceof NonFiniteError) || this.#handle === 0) return e;
    const out = new NonFiniteError(e.message, { step: step ? this.step + 1 : undefined, layer: e.layer, role: e.role });
    if (e.stack) out.stack = e.stack;
    return out;
  }

  /**
   * One optimizer step on a batch of at most maxBatch rows; returns the batch's mean loss (before
   * the update). With `lossOut` the loss is written to `lossOut[0]` instead and nothing is
   * returned: like `predict(x, out)`, that form allocates nothing in JS whatever the call site
   * (a returned number is a heap object whenever the engine does not inline the call).
   */
  trainStep(x: Inputs, y: Targets): number;
  trainStep(x: Inputs, y: Targets, lossOut: Float32Array): void;
  trainStep(x: Inputs, y: Targets, lossOut?: Float32Array): number | void {
    const c = this.#need("trainStep");
    const h = this.#handle;
    if (lossOut !== undefined && checkFloat32Array(lossOut, "trainStep(lossOut)").length === 0) {
      throw new ShapeError("trainStep(lossOut): expected at least 1 float, got 0");
    }
    const rows = this.#stageBatch("trainStep", "trainStep(x)", "trainStep(y)", x, y, c);
    let loss: number;
    try {
      loss = this.#abi.modelTrainStaged(h, rows, "trainStep");
    } catch (e) {
      throw this.#nonFinite(e, true);
    }
    this.#stepped = true;
    if (lossOut === undefined) return loss;
    lossOut[0] = loss;
  }

  /**
   * Loss and per-layer gradients for one batch in the current mode, without an optimizer update.
   * Like a PyTorch forward in training mode it commits batchNorm running statistics and draws
   * dropout masks; applyGradients() then makes it a full step.
   */
  computeGradients(x: Inputs, y: Targets): Gradients {
    const c = this.#need("computeGradients");
    const h = this.#handle;
    const rows = this.#stageBatch("computeGradients", "computeGradients(x)", "computeGradients(y)", x, y, c);
    let loss: number;
    try {
      loss = this.#abi.modelGradStaged(h, rows, "computeGradients");
    } catch (e) {
      throw this.#nonFinite(e, false);
    }
    return { loss, gradients: this.#readLayers(this.#grads) };
  }

  /** Gradient-health numbers of the last successful training step, or null when there was none since compile(). */
  lastStepStats(): StepStats | null {
    this.#need("lastStepStats");
    const h = this.#handle;
    return this.#stepped ? this.#readStats(h) : null;
  }

  #readStats(h: number): StepStats {
    const abi = this.#abi;
    abi.call("lastStepStats", "eg_model_stats_ptr", h, abi.out);
    const at = abi.outU32(0) >>> 2;
    const f32 = abi.f32;
    const layers: LayerStepStats[] = [];
    for (let l = 0; l < this.#slots.length; l++) {
      const k = at + STATS_HEAD + STATS_PER_LAYER * l;
      layers.push({ gradNorm: f32[k]!, weightNorm: f32[k + 1]!, updateNorm: f32[k + 2]!, updateRatio: f32[k + 3]! });
    }
    return { loss: f32[at]!, gradNorm: f32[at + 1]!, clipScale: f32[at + 2]!, layers };
  }

  /**
   * Trains for `epochs` passes in batches of `batchSize` in the current mode (train() by default),
   * stepping `schedule` after every epoch and yielding to the event loop once per epoch.
   */
  async fit(x: Inputs, y: Targets, opts?: FitOptions): Promise<History> {
    const c = this.#need("fit");
    if (this.#fitting) throw new StateError("fit: this model is already fitting; await the running fit() first");
    const o = checkOptions(opts, "fit(opts)");
    const epochs = checkInt(o.epochs ?? 1, "fit(opts.epochs)", 0);
    const batchSize = checkInt(o.batchSize ?? Math.min(32, c.maxBatch), "fit(opts.batchSize)", 1, c.maxBatch);
    const shuffle = checkBoolean(o.shuffle ?? true, "fit(opts.shuffle)");
    const wantAccuracy = checkBoolean(o.accuracy ?? true, "fit(opts.accuracy)");
    const nonFinite = o.nonFinite ?? "error";
    if (nonFinite !== "error" && nonFinite !== "skip") {
      throw new InvalidArgumentError(`fit(opts.nonFinite): unknown value ${describe(nonFinite)}; expected one of "error", "skip"`);
    }
    const skip = nonFinite === "skip";
    for (const k of ["onEpochEnd", "onBatchEnd"] as const) {
      if (o[k] !== undefined && typeof o[k] !== "function") throw new InvalidArgumentError(`fit(opts.${k}): expected a function, got ${describe(o[k])}`);
    }
    const { onEpochEnd, onBatchEnd } = o;
    const schedule = checkSchedule(o.schedule, "fit");
    const xs = newRows();
    const ys = newRows();
    this.#resolveX("fit(x)", x, xs);
    this.#resolveY("fit(y)", y, xs.rows, c, ys);
    const n = xs.rows;
    this.#checkBatchNormRows(n, "fit(x)");
    if (n > 1 && n % batchSize === 1 && this.#training && this.#hasBatchNorm) {
      // Caught here, before any step, instead of failing mid-epoch on the last batch.
      throw new InvalidArgumentError(
        `fit(opts.batchSize): ${n} rows in batches of ${batchSize} leave a last batch of 1 row, which batchNorm cannot normalise in training mode; choose another batchSize`,
      );
    }
    let vx: Rows | null = null;
    let vy: Rows | null = null;
    if (o.validationData !== undefined) {
      const vd = o.validationData;
      if (!Array.isArray(vd) || vd.length !== 2) {
        throw new InvalidArgumentError(`fit(opts.validationData): expected [x, y], got ${describe(vd)}`);
      }
      vx = newRows();
      vy = newRows();
      this.#resolveX("fit(opts.validationData[0])", vd[0], vx);
      this.#resolveY("fit(opts.validationData[1])", vd[1], vx.rows, c, vy);
    }

    const abi = this.#abi;
    const metric = hasAccuracy(c.loss);
    const history: History = { epoch: [], lr: [], loss: [] };
    if (metric && wantAccuracy) history.accuracy = [];
    if (vx) {
      history.valLoss = [];
      if (metric) history.valAccuracy = [];
    }
    if (skip) history.skippedBatches = [];
    if (schedule) this.lr = schedule.started ? schedule.lr : schedule.start(c.lr);
    // Upload the dataset once; Rust gathers each batch's rows from it.
    let ownX = 0;
    let ownY = 0;
    this.#fitting = true;
    try {
      let xh: number;
      let yh: number;
      if (xs.tensor) {
        xh = xs.tensor.handle;
      } else {
        abi.call("fit(x)", "eg_tensor_create", n, this.inputs, abi.out);
        ownX = xh = abi.outU32(0);
        abi.f32.set(xs.array!, abi.outU32(1) >>> 2);
      }
      if (ys.tensor) {
        yh = ys.tensor.handle;
      } else {
        abi.call("fit(y)", "eg_tensor_create", n, c.targetWidth, abi.out);
        ownY = yh = abi.outU32(0);
        abi.f32.set(ys.array!, abi.outU32(1) >>> 2);
      }
      for (let epoch = 0; epoch < epochs; epoch++) {
        const lr = this.#need("fit").lr;
        const m = this.#handle;
        if (shuffle) abi.call("fit", "eg_model_shuffle", m, n);
        let lossSum = 0;
        let trainedRows = 0;
        let skipped = 0;
        for (let start = 0; start < n; start += batchSize) {
          const count = Math.min(batchSize, n - start);
          try {
            lossSum += abi.modelTrainRows(m, xh, yh, start, count, shuffle, "fit") * count;
            trainedRows += count;
          } catch (e) {
            // Rust refuses a non-finite step before changing anything (parameters, optimizer
            // state, running statistics, RNG), so skipping it is just not counting it.
            if (skip && e instanceof NonFiniteError) {
              skipped += 1;
              continue;
            }
            throw this.#nonFinite(e, true);
          }
          this.#stepped = true;
          if (onBatchEnd) onBatchEnd(this.step, this.#readStats(m));
        }
        const logs: EpochLogs = { lr, loss: lossSum / trainedRows };
        if (skip) logs.skippedBatches = skipped;
        if (history.accuracy) {
          try {
            logs.accuracy = this.#evaluateRows(m, this.#need("fit"), xs, ys, "fit").accuracy;
          } catch (e) {
            if (!(skip && e instanceof NonFiniteError)) throw e;
            logs.accuracy = NaN; // x has non-finite rows: no accuracy over all of it
          }
        }
        if (vx && vy) {
          const v = this.#evaluateRows(m, this.#need("fit"), vx, vy, "fit(opts.validationData)");
          logs.valLoss = v.loss;
          if (metric) logs.valAccuracy = v.accuracy;
        }
        history.epoch.push(epoch);
        history.lr.push(lr);
        history.loss.push(logs.loss);
        if (logs.accuracy !== undefined) history.accuracy?.push(logs.accuracy);
        if (logs.valLoss !== undefined) history.valLoss?.push(logs.valLoss);
        if (logs.valAccuracy !== undefined) history.valAccuracy?.push(logs.valAccuracy);
        if (logs.skippedBatches !== undefined) history.skippedBatches?.push(logs.skippedBatches);
        if (schedule) this.lr = schedule.step(logs.valLoss ?? logs.loss);
        if (onEpochEnd && (await onEpochEnd(epoch, logs)) === false) break;
        await yieldToEventLoop();
      }
    } finally {
      this.#fitting = false;
      if (ownX !== 0) abi.call("fit", "eg_tensor_free", ownX);
      if (ownY !== 0) abi.call("fit", "eg_tensor_free", ownY);
    }
    return history;
  }

  // ---- inference ----

  /**
   * Outputs (logits for the cross-entropy losses) for every row of x, as a (B, outputs) row-major
   * copy: a new array, or `out` (exactly B·outputs floats) filled and returned, which allocates nothing.
   */
  predict(x: Inputs, out?: Float32Array): Float32Array {
    const c = this.#need("predict");
    const h = this.#handle;
    const abi = this.#abi;
    const sx = this.#sx;
    try {
      this.#resolveX("predict(x)", x, sx);
      const o = this.outputs;
      const n = sx.rows * o;
      if (out === undefined) {
        out = new Float32Array(n);
      } else if (checkFloat32Array(out, "predict(out)").length !== n) {
        throw new ShapeError(`predict(out): expected ${sx.rows}x${o} = ${n} floats, got ${out.length}`);
      }
      for (let start = 0; start < sx.rows; start += c.maxBatch) {
        const count = Math.min(c.maxBatch, sx.rows - start);
        this.#copyRows(sx, start, count, c.xStage);
        const at = abi.modelPredictStaged(h, count, "predict") >>> 2;
        // An element loop, not out.set(f32.subarray(..)): the subarray view is an allocation.
        const f32 = abi.f32;
        for (let i = 0, d = start * o, len = count * o; i < len; i++) out[d + i] = f32[at + i]!;
      }
      return out;
    } finally {
      this.#clearScratch();
    }
  }

  /** Mean loss and accuracy over every row of (x, y), in chunks of maxBatch; no update. */
  evaluate(x: Inputs, y: Targets): Evaluation {
    const c = this.#need("evaluate");
    const h = this.#handle;
    try {
      this.#resolveX("evaluate(x)", x, this.#sx);
      this.#resolveY("evaluate(y)", y, this.#sx.rows, c, this.#sy);
      return this.#evaluateRows(h, c, this.#sx, this.#sy, "evaluate");
    } finally {
      this.#clearScratch();
    }
  }

  #evaluateRows(h: number, c: Compiled, xs: Rows, ys: Rows, where: string): Evaluation {
    const abi = this.#abi;
    // Tensors may have been disposed since they were resolved (fit callbacks): re-check.
    if (xs.tensor) xs.at = xs.tensor.dataPtr(where) >>> 2;
    if (ys.tensor) ys.at = ys.tensor.dataPtr(where) >>> 2;
    const n = xs.rows;
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < n; start += c.maxBatch) {
      const count = Math.min(c.maxBatch, n - start);
      this.#copyRows(xs, start, count, c.xStage);
      this.#copyRows(ys, start, count, c.yStage);
      lossSum += abi.modelEvaluateStaged(h, count, where) * count;
      correct += abi.outU32(1);
    }
    let accuracy = NaN;
    if (c.loss === "softmaxCrossEntropy") accuracy = correct / n;
    else if (c.loss === "binaryCrossEntropyWithLogits") accuracy = correct / (n * this.outputs);
    return { loss: lossSum / n, accuracy };
  }

  // ---- weights ----

  /** Per-layer copies out of the params or grads arena (f32 index `base`). */
  #readLayers(base: number): LayerWeights[] {
    const f32 = this.#abi.f32;
    const part = (seg: Segment | undefined) => (seg ? f32.slice(base + seg.offset, base + seg.offset + seg.len) : new Float32Array(0));
    return this.#slots.map((s): LayerWeights => {
      if (s.kind === "dense") return { kind: "dense", kernel: part(s.segments.kernel), bias: part(s.segments.bias) };
      if (s.kind === "batchNorm") return { kind: "batchNorm", gamma: part(s.segments.gamma), beta: part(s.segments.beta) };
      return { kind: "dropout" };
    });
  }

  /** Copies of every layer's parameters: dense { kernel (I,O) row-major, bias }, batchNorm { gamma, beta }, dropout {}. */
  getWeights(): LayerWeights[] {
    this.#h("getWeights");
    return this.#readLayers(this.#params);
  }

  /** Validates per-layer arrays as getWeights lays them out; `what` is "weights" or "gradients". */
  #checkLayers(where: string, what: string, weights: unknown, finite: boolean): readonly LayerWeightsInput[] {
    const slots = this.#slots;
    if (!Array.isArray(weights)) {
      throw new InvalidArgumentError(`${where}(${what}): expected an array with one entry per layer (as getWeights returns), got ${describe(weights)}`);
    }
    if (weights.length !== slots.length) {
      throw new ShapeError(`${where}(${what}): expected ${slots.length} layers, got ${weights.length}`);
    }
    slots.forEach((s, l) => {
      const lw: unknown = weights[l];
      const name = `${where}(${what}[${l}])`;
      const roles = ROLES_OF[s.kind];
      const expect = roles.length ? `{ ${roles.join(", ")} }` : "{}";
      if (!isObject(lw)) throw new InvalidArgumentError(`${name}: expected ${expect} for a ${s.kind} layer, got ${describe(lw)}`);
      const entry = lw as Record<string, unknown>;
      if (entry["kind"] !== undefined && entry["kind"] !== s.kind) {
        throw new InvalidArgumentError(`${name}.kind: layer ${l} is a ${s.kind} layer, got ${describe(entry["kind"])}`);
      }
      for (const role of roles) checkValues(entry[role], `${name}.${role}`, s.segments[role]?.len ?? 0, finite);
    });
    return weights as readonly LayerWeightsInput[];
  }

  /** Copies checked per-layer arrays into an arena laid out like params, at f32 index `at`. */
  #writeLayers(weights: readonly LayerWeightsInput[], at: number): void {
    const f32 = this.#abi.f32;
    for (const seg of this.#segments) {
      f32.set((weights[seg.layer] as Record<string, Float32Array>)[seg.role]!, at + seg.offset);
    }
  }

  /** Replaces every parameter (same layout as getWeights; `kind` may be omitted); all-or-nothing. */
  setWeights(weights: readonly LayerWeightsInput[]): void {
    const h = this.#h("setWeights");
    this.#checkLayers("setWeights", "weights", weights, true);
    const abi = this.#abi;
    const bytes = Math.max(this.paramCount, 1) * 4;
    const src = abi.alloc(bytes, "setWeights");
    try {
      this.#writeLayers(weights, src >>> 2);
      abi.call("setWeights", "eg_model_set_params", h, src, this.paramCount);
    } finally {
      abi.free(src, bytes);
    }
  }

  /**
   * One optimizer update (clipping, parameter groups, step stats, the non-finite check) from the
   * gradients of the last computeGradients(), or from `gradients` given in the same layout (e.g.
   * averaged over several batches). computeGradients() + applyGradients() is one trainStep().
   */
  applyGradients(gradients?: readonly LayerWeightsInput[]): void {
    this.#need("applyGradients");
    const h = this.#handle;
    if (gradients !== undefined) {
      this.#checkLayers("applyGradients", "gradients", gradients, false);
      // Rust rejects non-finite gradients itself, naming the step and layer.
      this.#writeLayers(gradients, this.#grads);
    }
    try {
      this.#abi.call("applyGradients", "eg_model_apply_gradients", h, this.#abi.out);
    } catch (e) {
      throw this.#nonFinite(e, true);
    }
    this.#stepped = true;
  }

  /**
   * Copies of the optimizer's state arrays, each laid out like getWeights() (torch's state names:
   * momentum_buffer; exp_avg, exp_avg_sq, max_exp_avg_sq; square_avg, grad_avg; sum), plus the
   * step count. Reset by compile().
   */
  getOptimizerState(): OptimizerState {
    const c = this.#need("getOptimizerState");
    const h = this.#handle;
    const abi = this.#abi;
    abi.call("getOptimizerState", "eg_model_optimizer_state", h, abi.out);
    const at = abi.outU32(0) >>> 2;
    const roles = abi.outU32(2);
    const names = stateRoleNames(c.optimizer);
    if (names.length !== roles) throw new InternalError(`getOptimizerState: wasm reports ${roles} state arrays, expected ${names.length} (${names.join(", ")})`);
    const p = this.paramCount;
    return {
      step: this.step,
      state: names.map((name, r) => ({ name, values: this.#readLayers(at + r * p) })),
    };
  }

  /** Copies of every batchNorm layer's running mean and variance (what eval mode normalises with). */
  getBuffers(): BatchNormBuffers[] {
    const h = this.#h("getBuffers");
    const abi = this.#abi;
    abi.call("getBuffers", "eg_model_buffers", h, abi.out);
    const at = abi.outU32(0) >>> 2;
    const f32 = abi.f32;
    const out: BatchNormBuffers[] = [];
    this.#slots.forEach((s, l) => {
      if (s.kind !== "batchNorm") return;
      const b = at + s.buffer;
      out.push({ layer: l, runningMean: f32.slice(b, b + s.units), runningVar: f32.slice(b + s.units, b + 2 * s.units) });
    });
    return out;
  }

  /** Replaces every batchNorm layer's running mean and variance (the getBuffers() layout; finite, variances >= 0); all or nothing. */
  setBuffers(buffers: readonly BatchNormBuffers[]): void {
    const h = this.#h("setBuffers");
    const bn = this.#slots.flatMap((s, l) => (s.kind === "batchNorm" ? [{ s, l }] : []));
    if (!Array.isArray(buffers) || buffers.length !== bn.length) {
      throw new ShapeError(`setBuffers(buffers): expected ${bn.length} entries (one per batchNorm layer), got ${describe(buffers)}`);
    }
    const total = bn.reduce((n, { s }) => n + 2 * s.units, 0);
    bn.forEach(({ s, l }, i) => {
      const b = buffers[i] as Partial<BatchNormBuffers> | null;
      const name = `setBuffers(buffers[${i}])`;
      if (!isObject(b) || b.layer !== l) throw new InvalidArgumentError(`${name}.layer: expected ${l}, got ${describe(b?.layer)}`);
      for (const k of ["runningMean", "runningVar"] as const) {
        const a = checkValues(b[k], `${name}.${k}`, s.units, true);
        if (k === "runningVar" && a.some((v) => v < 0)) throw new InvalidArgumentError(`${name}.runningVar: variances must be >= 0`);
      }
    });
    if (total === 0) return;
    const abi = this.#abi;
    const src = abi.alloc(total * 4, "setBuffers");
    try {
      const f32 = abi.f32;
      bn.forEach(({ s }, i) => {
        f32.set(buffers[i]!.runningMean, (src >>> 2) + s.buffer);
        f32.set(buffers[i]!.runningVar, (src >>> 2) + s.buffer + s.units);
      });
      abi.call("setBuffers", "eg_model_set_buffers", h, src, total);
    } finally {
      abi.free(src, total * 4);
    }
  }

  // ---- checkpoints (ts/checkpoint.ts, crates/nn/src/checkpoint.rs) ----

  /**
   * The whole training state as bytes: architecture, compile settings, parameters, batch-norm
   * statistics, optimizer state and step, learning rate, RNG and shuffle state, and (when
   * passed) the schedule's position; loading it resumes training bit-identically.
   */
  save(opts?: SaveOptions): Uint8Array {
    const h = this.#h("save");
    const schedule = checkSchedule(checkOptions(opts, "save(opts)").schedule, "save");
    const c = this.#compiled;
    return writeCheckpoint(
      this.#abi,
      h,
      {
        format: "edgegrad-ts",
        version: 1,
        inputs: this.inputs,
        layers: this.specs,
        compiled: c && { loss: c.loss, lr: c.lr, optimizer: c.optimizer },
        stepped: this.#stepped,
        schedule: schedule?.checkpointState() ?? null,
      },
      "save",
    );
  }

  /**
   * Replaces this model's whole state with a checkpoint from `save()` of a model with the same
   * architecture (and restores `opts.schedule`); a refused checkpoint (CheckpointError) changes nothing.
   */
  load(bytes: Uint8Array, opts?: LoadOptions): this {
    const h = this.#h("load");
    if (this.#fitting) throw new StateError("load: not allowed while fit() is running");
    const staged = stageCheckpoint(this.#abi, bytes, opts, "load");
    try {
      staged.commit(h);
    } finally {
      staged.release();
    }
    const c = staged.meta.compiled;
    this.#stepped = staged.meta.stepped;
    this.#readBack("load", c && { loss: c.loss, lr: c.lr, optimizer: optimizerAbi(c.optimizer, "load").spec });
    return this;
  }

  // ---- lifetime ----

  /** Frees the model's wasm memory; calling it again does nothing. */
  dispose(): void {
    const h = this.#handle;
    if (h === 0) return;
    this.#handle = 0;
    this.#compiled = null;
    this.#rt.release(this);
    this.#abi.call("Sequential.dispose", "eg_model_free", h);
  }

  /** Same as `dispose()`, for `using model = eg.sequential(...)`. */
  [disposeSymbol](): void {
    this.dispose();
  }
}
