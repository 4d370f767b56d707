// Sequential: a stack of dense layers whose parameters, gradients, activations and batch stages
// live in wasm arenas (crates/nn). A training step copies the batch into the model's x/y stages
// with TypedArray.set on a freshly read heap view and makes ONE export call; fit() uploads the
// dataset once and then makes one call per batch (rows gathered in Rust, in shuffled order).
// Every argument is checked here before any call, so a rejected call changes nothing.

import type { Abi } from "./abi.js";
import {
  checkInt,
  checkOptions,
  describe,
  DisposedError,
  InvalidArgumentError,
  NonFiniteError,
  ShapeError,
  StateError,
} from "./errors.js";
import { ACTIVATIONS, enumId, INITIALIZERS, type Activation, type DenseSpec } from "./layers.js";
import { hasAccuracy, LOSSES, takesClassIds, type LossName } from "./losses.js";
import { disposeSymbol, type Runtime } from "./memory.js";
import { optimizerAbi, type OptimizerSpec } from "./optimizers.js";
import { Tensor } from "./tensor.js";

/** Model inputs: a Float32Array of B*inputs values (row-major) or a (B, inputs) Tensor. */
export type Inputs = Float32Array | Tensor;

/**
 * Targets: class ids (Int32Array / Uint32Array of length B, or a (B,1) Tensor) for
 * softmaxCrossEntropy; otherwise a Float32Array of B*outputs values or a (B, outputs) Tensor.
 */
export type Targets = Float32Array | Int32Array | Uint32Array | Tensor;

/** One layer's parameters: kernel (inputs*units, (I,O) row-major) and bias (units); always copies. */
export interface LayerWeights {
  /** Kernel W of shape (inputs, units), row-major. */
  kernel: Float32Array;
  /** Bias b of length units. */
  bias: Float32Array;
}

/** A layer as placed in a model. */
export interface LayerInfo {
  /** Input features of this layer. */
  readonly inputs: number;
  /** Output features of this layer. */
  readonly units: number;
  /** Activation after the affine map. */
  readonly activation: Activation;
  /** leakyRelu negative slope (as stored, f32). */
  readonly alpha: number;
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
  /** Optimizer, e.g. `sgd({ lr: 0.1 })`. */
  optimizer: OptimizerSpec;
  /** Largest batch trainStep/fit/predict/evaluate will send at once (sizes the arenas; default 32). */
  maxBatch?: number;
}

/** Metrics reported after each epoch of `fit()`. */
export interface EpochLogs {
  /** Mean training loss over the epoch's batches (weighted by batch size, as Keras reports it). */
  loss: number;
  /** Training-set accuracy measured after the epoch (classification losses only). */
  accuracy?: number;
  /** Validation loss (when validationData is given). */
  valLoss?: number;
  /** Validation accuracy (when validationData is given, classification losses only). */
  valAccuracy?: number;
}

/** Per-epoch metrics of a `fit()` run, Keras style: one entry per epoch in each array. */
export interface History {
  /** Epoch indices, 0-based. */
  epoch: number[];
  /** Mean training loss per epoch. */
  loss: number[];
  /** Training accuracy per epoch (classification losses only). */
  accuracy?: number[];
  /** Validation loss per epoch (when validationData is given). */
  valLoss?: number[];
  /** Validation accuracy per epoch (when validationData is given, classification losses only). */
  valAccuracy?: number[];
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
  /** Called after every epoch; a returned promise is awaited. */
  onEpochEnd?: (epoch: number, logs: EpochLogs) => void | Promise<void>;
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
  /** dLoss/dW and dLoss/db per layer, same layout as getWeights(). */
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
}

interface Slot {
  inputs: number;
  units: number;
  /** Element offsets of W and b in the params/grads arenas. */
  w: number;
  b: number;
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

const MAX_BATCH_LIMIT = 1 << 20;
const DEFAULT_MAX_BATCH = 32;

/**
 * Resolves on a fresh macrotask so timers, I/O and rendering can run between epochs. Prefers
 * setImmediate / scheduler.yield / MessageChannel because setTimeout(0) is clamped to >= 1 ms
 * (Node) or 4 ms (nested, browsers): 60 tiny epochs would otherwise spend most of their time asleep.
 */
function yieldToEventLoop(): Promise<void> {
  const g = globalThis as {
    setImmediate?: (cb: () => void) => unknown;
    scheduler?: { yield?: () => Promise<void> };
  };
  if (typeof g.setImmediate === "function") return new Promise((resolve) => void g.setImmediate!(resolve));
  if (typeof g.scheduler?.yield === "function") return g.scheduler.yield();
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
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint32Array) => Uint32Array } }).crypto;
  if (c?.getRandomValues) {
    const w = c.getRandomValues(new Uint32Array(2));
    return [w[0]!, w[1]!];
  }
  return [(Math.random() * 2 ** 32) >>> 0, (Math.random() * 2 ** 32) >>> 0];
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

/** A sequential stack of dense layers, trained in WebAssembly; free it with `dispose()` or `using`. */
export class Sequential implements Disposable {
  readonly #rt: Runtime;
  readonly #abi: Abi;
  #handle: number;
  readonly #slots: readonly Slot[];
  /** f32 indices of the params and grads arenas (fixed for the model's lifetime). */
  #params: number;
  #grads: number;
  #compiled: Compiled | null = null;
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
  /** Number of trainable parameters. */
  readonly paramCount: number;

  /** Builds the model in wasm; use `Edgegrad.sequential()` instead of calling this directly. */
  constructor(rt: Runtime, opts: SequentialOptions, layers: readonly DenseSpec[]) {
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
    const records: number[] = [];
    layers.forEach((spec: DenseSpec, l: number) => {
      const name = `sequential(layers[${l}])`;
      if (spec === null || typeof spec !== "object" || spec.kind !== "dense") {
        throw new InvalidArgumentError(`${name}: expected a layer made by dense(), got ${describe(spec)}`);
      }
      checkInt(spec.units, `${name}.units`);
      if (typeof spec.alpha !== "number" || !Number.isFinite(spec.alpha)) {
        throw new InvalidArgumentError(`${name}.alpha: must be a finite number, got ${describe(spec.alpha)}`);
      }
      records.push(spec.units, enumId(ACTIVATIONS, spec.activation, `${name}.activation`), spec.alpha, enumId(INITIALIZERS, spec.init, `${name}.init`));
    });

    const abi = rt.abi;
    const bytes = records.length * 4;
    const spec = abi.alloc(bytes, "sequential");
    let handle: number;
    try {
      const u32 = abi.u32;
      const f32 = abi.f32;
      for (let r = 0; r < records.length; r++) {
        // word 2 of each 4-word record is alpha as f32 bits; the others are u32
        if (r % 4 === 2) f32[(spec >>> 2) + r] = records[r]!;
        else u32[(spec >>> 2) + r] = records[r]!;
      }
      handle = abi.modelCreate(inputs, layers.length, spec, seedLo, seedHi, "sequential");
    } finally {
      abi.free(spec, bytes);
    }

    this.#rt = rt;
    this.#abi = abi;
    this.#handle = handle;
    try {
      abi.modelInfo(handle, "sequential");
      this.inputs = inputs;
      this.outputs = abi.outU32(INFO_OUTPUTS);
      this.paramCount = abi.outU32(INFO_PARAM_COUNT);
      this.#params = abi.outU32(INFO_PARAMS) >>> 2;
      this.#grads = abi.outU32(INFO_GRADS) >>> 2;
      const n = abi.outU32(INFO_N_LAYERS);
      const slots: Slot[] = [];
      const infos: LayerInfo[] = [];
      for (let l = 0; l < n; l++) {
        abi.modelLayerInfo(handle, l, "sequential");
        const [li, lo, act] = [abi.outU32(0), abi.outU32(1), abi.outU32(2)];
        slots.push({ inputs: li, units: lo, w: abi.outU32(4), b: abi.outU32(5) });
        infos.push(Object.freeze({ inputs: li, units: lo, activation: ACTIVATIONS[act] ?? "identity", alpha: abi.outF32(3) }));
      }
      this.#slots = slots;
      this.layers = Object.freeze(infos);
    } catch (e) {
      abi.modelFree(handle, "sequential");
      throw e;
    }
    rt.adopt(this, "model", handle);
  }

  // ---- state ----

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
    this.#abi.modelInfo(this.#h("step"), "step");
    return this.#abi.outU32(INFO_STEP_LO) + this.#abi.outU32(INFO_STEP_HI) * 2 ** 32;
  }

  #h(where: string): number {
    if (this.#handle === 0) throw new DisposedError(`${where}: model used after dispose()`);
    return this.#handle;
  }

  #need(where: string): Compiled {
    if (this.#compiled === null) throw new StateError(`${where}: model is not compiled; call compile({ loss, optimizer, maxBatch }) first`);
    return this.#compiled;
  }

  // ---- compile ----

  /** Chooses loss, optimizer and maximum batch, sizes the training arenas and resets the optimizer state and step. */
  compile(opts: CompileOptions): void {
    const h = this.#h("compile");
    if (this.#fitting) throw new StateError("compile: not allowed while fit() is running");
    if (opts === null || typeof opts !== "object") {
      throw new InvalidArgumentError(`compile(opts): expected { loss, optimizer, maxBatch }, got ${describe(opts)}`);
    }
    const lossId = enumId(LOSSES, opts.loss, "compile(opts.loss)");
    const { id, hyper } = optimizerAbi(opts.optimizer, "compile(opts.optimizer)");
    const maxBatch = checkInt(opts.maxBatch ?? DEFAULT_MAX_BATCH, "compile(opts.maxBatch)", 1, MAX_BATCH_LIMIT);
    const abi = this.#abi;
    // The hyper-parameters fit in the out-scratch, which compile does not write to.
    const f32 = abi.f32;
    for (let i = 0; i < hyper.length; i++) f32[(abi.out >>> 2) + i] = hyper[i]!;
    abi.modelCompile(h, lossId, maxBatch, id, abi.out, hyper.length, "compile");
    abi.modelInfo(h, "compile");
    const loss = LOSSES[lossId]!;
    this.#compiled = {
      loss,
      classIds: takesClassIds(loss),
      maxBatch: abi.outU32(INFO_MAX_BATCH),
      targetWidth: abi.outU32(INFO_TARGET_WIDTH),
      xStage: abi.outU32(INFO_X_STAGE) >>> 2,
      yStage: abi.outU32(INFO_Y_STAGE) >>> 2,
    };
    this.#params = abi.outU32(INFO_PARAMS) >>> 2;
    this.#grads = abi.outU32(INFO_GRADS) >>> 2;
  }

  // ---- argument resolution (validates; never calls anything that changes state) ----

  #ownTensor(t: Tensor, name: string): void {
    if (!t.ownedBy(this.#rt)) throw new InvalidArgumentError(`${name}: the tensor belongs to another edgegrad instance`);
  }

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
      this.#ownTensor(x, name);
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
      this.#ownTensor(y, name);
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

  /** One optimizer step on a batch of at most maxBatch rows; returns the batch's mean loss (before the update). */
  trainStep(x: Inputs, y: Targets): number {
    const h = this.#h("trainStep");
    const c = this.#need("trainStep");
    const rows = this.#stageBatch("trainStep", "trainStep(x)", "trainStep(y)", x, y, c);
    return this.#abi.modelTrainStaged(h, rows, "trainStep");
  }

  /** Loss and per-layer gradients for one batch, without updating the weights. */
  computeGradients(x: Inputs, y: Targets): Gradients {
    const h = this.#h("computeGradients");
    const c = this.#need("computeGradients");
    const rows = this.#stageBatch("computeGradients", "computeGradients(x)", "computeGradients(y)", x, y, c);
    const loss = this.#abi.modelGradStaged(h, rows, "computeGradients");
    return { loss, gradients: this.#readArena(this.#grads) };
  }

  /** Trains for `epochs` passes in batches of `batchSize`, yielding to the event loop once per epoch. */
  async fit(x: Inputs, y: Targets, opts?: FitOptions): Promise<History> {
    this.#h("fit");
    const c = this.#need("fit");
    if (this.#fitting) throw new StateError("fit: this model is already fitting; await the running fit() first");
    const o = checkOptions(opts, "fit(opts)");
    const epochs = checkInt(o.epochs ?? 1, "fit(opts.epochs)", 0);
    const batchSize = checkInt(o.batchSize ?? Math.min(32, c.maxBatch), "fit(opts.batchSize)", 1, c.maxBatch);
    const shuffle = o.shuffle ?? true;
    if (typeof shuffle !== "boolean") throw new InvalidArgumentError(`fit(opts.shuffle): expected a boolean, got ${describe(shuffle)}`);
    const wantAccuracy = o.accuracy ?? true;
    if (typeof wantAccuracy !== "boolean") throw new InvalidArgumentError(`fit(opts.accuracy): expected a boolean, got ${describe(wantAccuracy)}`);
    const onEpochEnd = o.onEpochEnd;
    if (onEpochEnd !== undefined && typeof onEpochEnd !== "function") {
      throw new InvalidArgumentError(`fit(opts.onEpochEnd): expected a function, got ${describe(onEpochEnd)}`);
    }
    const xs = newRows();
    const ys = newRows();
    this.#resolveX("fit(x)", x, xs);
    this.#resolveY("fit(y)", y, xs.rows, c, ys);
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
    const n = xs.rows;
    const metric = hasAccuracy(c.loss);
    const history: History = { epoch: [], loss: [] };
    if (metric && wantAccuracy) history.accuracy = [];
    if (vx) {
      history.valLoss = [];
      if (metric) history.valAccuracy = [];
    }
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
        ownX = xh = abi.tensorCreate(n, this.inputs, "fit(x)");
        abi.f32.set(xs.array!, abi.outU32(1) >>> 2);
      }
      if (ys.tensor) {
        yh = ys.tensor.handle;
      } else {
        ownY = yh = abi.tensorCreate(n, c.targetWidth, "fit(y)");
        abi.f32.set(ys.array!, abi.outU32(1) >>> 2);
      }
      for (let epoch = 0; epoch < epochs; epoch++) {
        const m = this.#h("fit");
        if (shuffle) abi.modelShuffle(m, n, "fit");
        let lossSum = 0;
        for (let start = 0; start < n; start += batchSize) {
          const count = Math.min(batchSize, n - start);
          lossSum += abi.modelTrainRows(m, xh, yh, start, count, shuffle, "fit") * count;
        }
        const logs: EpochLogs = { loss: lossSum / n };
        if (history.accuracy) logs.accuracy = this.#evaluateRows(m, this.#need("fit"), xs, ys, "fit").accuracy;
        if (vx && vy) {
          const v = this.#evaluateRows(m, this.#need("fit"), vx, vy, "fit(opts.validationData)");
          logs.valLoss = v.loss;
          if (metric) logs.valAccuracy = v.accuracy;
        }
        history.epoch.push(epoch);
        history.loss.push(logs.loss);
        if (logs.accuracy !== undefined) history.accuracy?.push(logs.accuracy);
        if (logs.valLoss !== undefined) history.valLoss?.push(logs.valLoss);
        if (logs.valAccuracy !== undefined) history.valAccuracy?.push(logs.valAccuracy);
        if (onEpochEnd) await onEpochEnd(epoch, logs);
        await yieldToEventLoop();
      }
    } finally {
      this.#fitting = false;
      if (ownX !== 0) abi.tensorFree(ownX, "fit");
      if (ownY !== 0) abi.tensorFree(ownY, "fit");
    }
    return history;
  }

  // ---- inference ----

  /** Outputs (logits for the cross-entropy losses) for every row of x, as a (B, outputs) row-major copy. */
  predict(x: Inputs): Float32Array {
    const h = this.#h("predict");
    const c = this.#need("predict");
    const abi = this.#abi;
    const sx = this.#sx;
    try {
      this.#resolveX("predict(x)", x, sx);
      const o = this.outputs;
      const out = new Float32Array(sx.rows * o);
      for (let start = 0; start < sx.rows; start += c.maxBatch) {
        const count = Math.min(c.maxBatch, sx.rows - start);
        this.#copyRows(sx, start, count, c.xStage);
        const at = abi.modelPredictStaged(h, count, "predict") >>> 2;
        out.set(abi.f32.subarray(at, at + count * o), start * o);
      }
      return out;
    } finally {
      this.#clearScratch();
    }
  }

  /** Mean loss and accuracy over every row of (x, y), in chunks of maxBatch; no update. */
  evaluate(x: Inputs, y: Targets): Evaluation {
    const h = this.#h("evaluate");
    const c = this.#need("evaluate");
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

  #readArena(base: number): LayerWeights[] {
    const f32 = this.#abi.f32;
    return this.#slots.map((s) => ({
      kernel: f32.slice(base + s.w, base + s.w + s.inputs * s.units),
      bias: f32.slice(base + s.b, base + s.b + s.units),
    }));
  }

  /** Copies of every layer's kernel (inputs*units, (I,O) row-major) and bias. */
  getWeights(): LayerWeights[] {
    this.#h("getWeights");
    return this.#readArena(this.#params);
  }

  /** Replaces every layer's kernel and bias (same layout as getWeights); all-or-nothing. */
  setWeights(weights: readonly LayerWeights[]): void {
    const h = this.#h("setWeights");
    const slots = this.#slots;
    if (!Array.isArray(weights)) {
      throw new InvalidArgumentError(`setWeights(weights): expected an array of { kernel, bias }, got ${describe(weights)}`);
    }
    if (weights.length !== slots.length) {
      throw new ShapeError(`setWeights(weights): expected ${slots.length} layers, got ${weights.length}`);
    }
    slots.forEach((s, l) => {
      const lw: unknown = weights[l];
      const name = `setWeights(weights[${l}])`;
      if (lw === null || typeof lw !== "object") throw new InvalidArgumentError(`${name}: expected { kernel, bias }, got ${describe(lw)}`);
      const { kernel, bias } = lw as Partial<LayerWeights>;
      for (const [part, arr, len] of [["kernel", kernel, s.inputs * s.units], ["bias", bias, s.units]] as const) {
        if (!(arr instanceof Float32Array)) throw new InvalidArgumentError(`${name}.${part}: expected a Float32Array, got ${describe(arr)}`);
        if (arr.length !== len) throw new ShapeError(`${name}.${part}: expected ${len} values, got ${arr.length}`);
        checkFinite(`${name}.${part}`, arr);
      }
    });
    const abi = this.#abi;
    const bytes = this.paramCount * 4;
    const src = abi.alloc(bytes, "setWeights");
    try {
      const f32 = abi.f32;
      const at = src >>> 2;
      slots.forEach((s, l) => {
        f32.set(weights[l]!.kernel, at + s.w);
        f32.set(weights[l]!.bias, at + s.b);
      });
      abi.modelSetParams(h, src, this.paramCount, "setWeights");
    } finally {
      abi.free(src, bytes);
    }
  }

  // ---- lifetime ----

  /** Frees the model's wasm memory; calling it again does nothing. */
  dispose(): void {
    const h = this.#handle;
    if (h === 0) return;
    this.#handle = 0;
    this.#compiled = null;
    this.#rt.release(this);
    this.#abi.modelFree(h, "Sequential.dispose");
  }

  /** Same as `dispose()`, for `using model = eg.sequential(...)`. */
  [disposeSymbol](): void {
    this.dispose();
  }
}
