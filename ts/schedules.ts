// Learning-rate schedules with torch.optim.lr_scheduler semantics, stepped once per epoch: by
// fit({ schedule }) or by hand (`model.lr = schedule.start(model.lr)`, then after every epoch
// `model.lr = schedule.step(metric)`). Pure TypeScript in f64, like torch's Python floats.
//
// stepLR, exponentialLR and cosineAnnealingLR are computed in closed form, lr(epoch), where torch
// multiplies the previous rate by a ratio each epoch ("chainable" form). The two agree to ~1e-15
// relative per epoch of rounding; test/optim.pytorch.test.ts checks them against torch's own
// values to 1e-12. The closed form was chosen because it cannot drift and lets `lrAt` answer for
// any epoch. cosineAnnealingLR with warm-up is torch's
//   SequentialLR([LinearLR(start_factor=warmupStartFactor, end_factor=1, total_iters=W),
//                 CosineAnnealingLR(T_max=tMax, eta_min=etaMin)], milestones=[W])
// i.e. the cosine phase starts at epoch W and tMax counts epochs after the warm-up.
// reduceLROnPlateau is stateful exactly as torch's ReduceLROnPlateau.
// The "edgegrad/schedules" entry: the core (fit, save, load) only calls a schedule's methods and
// recognises it by the SCHEDULE brand, so it never imports this module.

/**
 * Learning-rate schedules for `fit({ schedule })`, `model.save` and `model.load`.
 * @module edgegrad/schedules
 */

import { SCHEDULE } from "./checkpoint.js";
import { checkInt, checkNumber, checkOptions, describe, InvalidArgumentError, StateError } from "./errors.js";

/** Schedule kinds. */
export type ScheduleName = "stepLR" | "exponentialLR" | "cosineAnnealingLR" | "reduceLROnPlateau";

/** A learning-rate schedule stepped once per epoch (torch.optim.lr_scheduler semantics). */
export abstract class Schedule {
  /** Which schedule this is. */
  abstract readonly name: ScheduleName;
  #base = NaN;
  #epoch = -1;
  #lr = NaN;

  /** @internal What fit(), save() and load() recognise a schedule by (see checkSchedule). */
  get [SCHEDULE](): true {
    return true;
  }

  /** Epochs completed since `start()` (torch's `last_epoch`); -1 before `start()`. */
  get epoch(): number {
    return this.#epoch;
  }

  /** The learning rate for the current epoch; NaN before `start()`. */
  get lr(): number {
    return this.#lr;
  }

  /** The base learning rate given to `start()`; NaN before. */
  get baseLr(): number {
    return this.#base;
  }

  /** True once `start()` has bound the schedule to a base learning rate. */
  get started(): boolean {
    return this.#epoch >= 0;
  }

  /** (Re)starts at epoch 0 from `baseLr` (the optimizer's rate) and returns the rate for epoch 0. */
  start(baseLr: number): number {
    checkNumber(baseLr, `${this.name}.start(baseLr)`, 0);
    this.#base = baseLr;
    this.#epoch = 0;
    this.reset();
    this.#lr = this.first(baseLr);
    return this.#lr;
  }

  /**
   * Ends an epoch and returns the rate for the next one. `metric` is the monitored value
   * (required by reduceLROnPlateau, ignored by the others).
   */
  step(metric?: number): number {
    if (!this.started) throw new StateError(`${this.name}.step: call start(baseLr) first (fit() does it for you)`);
    if (metric !== undefined || this.needsMetric) checkNumber(metric, `${this.name}.step(metric)`);
    this.#lr = this.next(this.#epoch + 1, this.#lr, this.#base, metric);
    this.#epoch += 1;
    return this.#lr;
  }

  /**
   * @internal The schedule's position and configuration as JSON-safe values (non-finite
   * numbers as strings), for checkpoints.
   */
  checkpointState(): ScheduleCheckpoint {
    return {
      name: this.name,
      config: JSON.stringify(this.#config()),
      position: [this.#base, this.#epoch, this.#lr, ...this.extraState()].map(encodeNumber),
    };
  }

  /** @internal Throws unless `state` came from a schedule of the same kind and configuration. */
  checkCheckpointState(state: ScheduleCheckpoint): void {
    if (state.name !== this.name || state.config !== JSON.stringify(this.#config())) {
      throw new InvalidArgumentError(`the checkpoint's schedule is ${state.name} ${state.config}, this one is ${this.name} ${JSON.stringify(this.#config())}`);
    }
    const p = state.position;
    const ok =
      Array.isArray(p) &&
      p.length === 3 + this.extraState().length &&
      p.every((v) => typeof v === "number" || v === "NaN" || v === "Infinity" || v === "-Infinity") &&
      Number.isInteger(decodeNumber(p[1]!)) &&
      decodeNumber(p[1]!) >= -1;
    if (!ok) throw new InvalidArgumentError(`the checkpoint's ${state.name} position is malformed`);
  }

  /** @internal Restores a position from `checkpointState()` (checked by `checkCheckpointState`). */
  restoreCheckpointState(state: ScheduleCheckpoint): void {
    const [base, epoch, lr, ...extra] = state.position.map(decodeNumber);
    this.#base = base!;
    this.#epoch = epoch!;
    this.#lr = lr!;
    this.restoreExtraState(extra);
  }

  /** The public readonly configuration fields (everything enumerable on the instance). */
  #config(): Record<string, unknown> {
    return Object.fromEntries(Object.entries(this).map(([k, v]) => [k, typeof v === "number" ? encodeNumber(v) : v]));
  }

  /** Subclass hook: state kept between steps, as numbers. */
  protected extraState(): number[] {
    return [];
  }

  /** Subclass hook: restores `extraState()`. */
  protected restoreExtraState(_values: number[]): void {}

  /** Whether `step` needs the monitored metric. */
  protected get needsMetric(): boolean {
    return false;
  }

  /** Subclass hook: forget state kept between steps (called by `start`). */
  protected reset(): void {}

  /** The rate of epoch 0. */
  protected abstract first(base: number): number;

  /** The rate of `epoch` (>= 1), given the previous rate and the base rate. */
  protected abstract next(epoch: number, previous: number, base: number, metric: number | undefined): number;
}

/** A schedule whose rate is a closed-form function of the epoch. */
abstract class ClosedForm extends Schedule {
  /** The rate at `epoch` (>= 0) for a base rate `baseLr`, without changing the schedule's state. */
  abstract lrAt(epoch: number, baseLr: number): number;

  protected first(base: number): number {
    return this.lrAt(0, base);
  }

  protected next(epoch: number, _previous: number, base: number): number {
    return this.lrAt(epoch, base);
  }

  protected checkEpoch(epoch: number, baseLr: number): void {
    checkInt(epoch, `${this.name}.lrAt(epoch)`, 0, Number.MAX_SAFE_INTEGER);
    checkNumber(baseLr, `${this.name}.lrAt(baseLr)`, 0);
  }
}

/** Options of `stepLR()`. */
export interface StepLROptions {
  /** Epochs between decays, an integer >= 1. */
  stepSize: number;
  /** Multiplicative decay, >= 0 (default 0.1). */
  gamma?: number;
}

/** torch.optim.lr_scheduler.StepLR: lr = base·gamma^⌊epoch / stepSize⌋. */
export class StepLR extends ClosedForm {
  readonly name = "stepLR" as const;
  /** Epochs between decays. */
  readonly stepSize: number;
  /** Multiplicative decay. */
  readonly gamma: number;

  /** Validates the options; use `stepLR()`. */
  constructor(opts: StepLROptions) {
    super();
    const o = checkOptions(opts, "stepLR(opts)");
    this.stepSize = checkInt(o.stepSize, "stepLR(opts.stepSize)");
    this.gamma = checkNumber(o.gamma ?? 0.1, "stepLR(opts.gamma)", 0);
  }

  /** base·gamma^⌊epoch / stepSize⌋. */
  lrAt(epoch: number, baseLr: number): number {
    this.checkEpoch(epoch, baseLr);
    return baseLr * this.gamma ** Math.floor(epoch / this.stepSize);
  }
}

/** Options of `exponentialLR()`. */
export interface ExponentialLROptions {
  /** Multiplicative decay per epoch, >= 0. */
  gamma: number;
}

/** torch.optim.lr_scheduler.ExponentialLR: lr = base·gamma^epoch. */
export class ExponentialLR extends ClosedForm {
  readonly name = "exponentialLR" as const;
  /** Multiplicative decay per epoch. */
  readonly gamma: number;

  /** Validates the options; use `exponentialLR()`. */
  constructor(opts: ExponentialLROptions) {
    super();
    const o = checkOptions(opts, "exponentialLR(opts)");
    this.gamma = checkNumber(o.gamma, "exponentialLR(opts.gamma)", 0);
  }

  /** base·gamma^epoch. */
  lrAt(epoch: number, baseLr: number): number {
    this.checkEpoch(epoch, baseLr);
    return baseLr * this.gamma ** epoch;
  }
}

/** Options of `cosineAnnealingLR()`. */
export interface CosineAnnealingLROptions {
  /** Epochs of the cosine half-period after the warm-up (torch's T_max), an integer >= 1. */
  tMax: number;
  /** Lowest rate, >= 0 (default 0). */
  etaMin?: number;
  /** Epochs of linear warm-up before the cosine, an integer >= 0 (default 0). */
  warmupEpochs?: number;
  /** Warm-up starts at base·warmupStartFactor, in (0, 1] (default 1/3, torch's LinearLR default). */
  warmupStartFactor?: number;
}

/**
 * torch.optim.lr_scheduler.CosineAnnealingLR, optionally after a LinearLR warm-up (SequentialLR):
 * for epoch e < W, lr = base·(s + (1 − s)·e/W); then lr = etaMin + (base − etaMin)·(1 + cos(π·(e − W)/tMax))/2.
 */
export class CosineAnnealingLR extends ClosedForm {
  readonly name = "cosineAnnealingLR" as const;
  /** Cosine half-period in epochs, counted after the warm-up. */
  readonly tMax: number;
  /** Lowest rate. */
  readonly etaMin: number;
  /** Warm-up epochs. */
  readonly warmupEpochs: number;
  /** Warm-up start factor. */
  readonly warmupStartFactor: number;

  /** Validates the options; use `cosineAnnealingLR()`. */
  constructor(opts: CosineAnnealingLROptions) {
    super();
    const o = checkOptions(opts, "cosineAnnealingLR(opts)");
    this.tMax = checkInt(o.tMax, "cosineAnnealingLR(opts.tMax)");
    this.etaMin = checkNumber(o.etaMin ?? 0, "cosineAnnealingLR(opts.etaMin)", 0);
    this.warmupEpochs = checkInt(o.warmupEpochs ?? 0, "cosineAnnealingLR(opts.warmupEpochs)", 0);
    this.warmupStartFactor = checkNumber(o.warmupStartFactor ?? 1 / 3, "cosineAnnealingLR(opts.warmupStartFactor)", 0, 1, { min: true });
  }

  /** The warm-up line, then the cosine (see the class doc). */
  lrAt(epoch: number, baseLr: number): number {
    this.checkEpoch(epoch, baseLr);
    const w = this.warmupEpochs;
    if (epoch < w) {
      const s = this.warmupStartFactor;
      return baseLr * (s + ((1 - s) * epoch) / w);
    }
    return this.etaMin + ((baseLr - this.etaMin) * (1 + Math.cos((Math.PI * (epoch - w)) / this.tMax))) / 2;
  }
}

/** Options of `reduceLROnPlateau()`; the defaults are torch's. */
export interface ReduceLROnPlateauOptions {
  /** "min": the metric should fall (a loss); "max": it should rise (default "min"). */
  mode?: "min" | "max";
  /** new lr = max(lr·factor, minLr), factor in [0, 1) (default 0.1). */
  factor?: number;
  /** Epochs without improvement tolerated before reducing, an integer >= 0 (default 10). */
  patience?: number;
  /** Minimum change that counts as an improvement, >= 0 (default 1e-4). */
  threshold?: number;
  /** "rel": better than best·(1 ∓ threshold); "abs": better than best ∓ threshold (default "rel"). */
  thresholdMode?: "rel" | "abs";
  /** Epochs to wait after a reduction before counting bad epochs again, an integer >= 0 (default 0). */
  cooldown?: number;
  /** Lower bound of the rate, >= 0 (default 0). */
  minLr?: number;
  /** A reduction smaller than eps is skipped, >= 0 (default 1e-8). */
  eps?: number;
}

/** torch.optim.lr_scheduler.ReduceLROnPlateau: divides the rate when the monitored metric stops improving. */
export class ReduceLROnPlateau extends Schedule {
  readonly name = "reduceLROnPlateau" as const;
  /** Whether the metric should fall or rise. */
  readonly mode: "min" | "max";
  /** Reduction factor. */
  readonly factor: number;
  /** Tolerated epochs without improvement. */
  readonly patience: number;
  /** Improvement threshold. */
  readonly threshold: number;
  /** Relative or absolute threshold. */
  readonly thresholdMode: "rel" | "abs";
  /** Epochs to wait after a reduction. */
  readonly cooldown: number;
  /** Lower bound of the rate. */
  readonly minLr: number;
  /** Smallest reduction applied. */
  readonly eps: number;
  #best = Infinity;
  #bad = 0;
  #cooldownLeft = 0;

  /** Validates the options; use `reduceLROnPlateau()`. */
  constructor(opts?: ReduceLROnPlateauOptions) {
    super();
    const o = checkOptions(opts, "reduceLROnPlateau(opts)");
    const mode = o.mode ?? "min";
    if (mode !== "min" && mode !== "max") {
      throw new InvalidArgumentError(`reduceLROnPlateau(opts.mode): expected "min" or "max", got ${describe(mode)}`);
    }
    const thresholdMode = o.thresholdMode ?? "rel";
    if (thresholdMode !== "rel" && thresholdMode !== "abs") {
      throw new InvalidArgumentError(`reduceLROnPlateau(opts.thresholdMode): expected "rel" or "abs", got ${describe(thresholdMode)}`);
    }
    this.mode = mode;
    this.thresholdMode = thresholdMode;
    this.factor = checkNumber(o.factor ?? 0.1, "reduceLROnPlateau(opts.factor)", 0, 1, { max: true });
    this.patience = checkInt(o.patience ?? 10, "reduceLROnPlateau(opts.patience)", 0);
    this.threshold = checkNumber(o.threshold ?? 1e-4, "reduceLROnPlateau(opts.threshold)", 0);
    this.cooldown = checkInt(o.cooldown ?? 0, "reduceLROnPlateau(opts.cooldown)", 0);
    this.minLr = checkNumber(o.minLr ?? 0, "reduceLROnPlateau(opts.minLr)", 0);
    this.eps = checkNumber(o.eps ?? 1e-8, "reduceLROnPlateau(opts.eps)", 0);
  }

  /** Epochs since the last improvement (torch's num_bad_epochs). */
  get badEpochs(): number {
    return this.#bad;
  }

  /** The best metric seen so far (±Infinity before the first step). */
  get best(): number {
    return this.#best;
  }

  protected override get needsMetric(): boolean {
    return true;
  }

  protected override reset(): void {
    this.#best = this.mode === "min" ? Infinity : -Infinity;
    this.#bad = 0;
    this.#cooldownLeft = 0;
  }

  protected first(base: number): number {
    return base;
  }

  protected override extraState(): number[] {
    return [this.#best, this.#bad, this.#cooldownLeft];
  }

  protected override restoreExtraState(values: number[]): void {
    [this.#best, this.#bad, this.#cooldownLeft] = values as [number, number, number];
  }

  #isBetter(a: number): boolean {
    const best = this.#best;
    const t = this.threshold;
    if (this.mode === "min") return this.thresholdMode === "rel" ? a < best * (1 - t) : a < best - t;
    return this.thresholdMode === "rel" ? a > best * (t + 1) : a > best + t;
  }

  // Line by line torch's ReduceLROnPlateau.step / _reduce_lr (PyTorch 1.13).
  protected next(_epoch: number, previous: number, _base: number, metric: number | undefined): number {
    const current = metric as number;
    if (this.#isBetter(current)) {
      this.#best = current;
      this.#bad = 0;
    } else {
      this.#bad += 1;
    }
    if (this.#cooldownLeft > 0) {
      this.#cooldownLeft -= 1;
      this.#bad = 0;
    }
    let lr = previous;
    if (this.#bad > this.patience) {
      const reduced = Math.max(previous * this.factor, this.minLr);
      if (previous - reduced > this.eps) lr = reduced;
      this.#cooldownLeft = this.cooldown;
      this.#bad = 0;
    }
    return lr;
  }
}

/** A schedule's position in a checkpoint (JSON-safe). */
export interface ScheduleCheckpoint {
  /** Which schedule wrote this state. */
  name: ScheduleName;
  /** JSON of the configuration, compared on restore. */
  config: string;
  /** base, epoch, lr, then the subclass's state; non-finite numbers as strings. */
  position: (number | string)[];
}

function encodeNumber(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

function decodeNumber(v: number | string): number {
  return typeof v === "number" ? v : Number(v);
}

/** Decays the rate by `gamma` every `stepSize` epochs (torch StepLR). */
export function stepLR(opts: StepLROptions): StepLR {
  return new StepLR(opts);
}

/** Decays the rate by `gamma` every epoch (torch ExponentialLR). */
export function exponentialLR(opts: ExponentialLROptions): ExponentialLR {
  return new ExponentialLR(opts);
}

/** Cosine annealing to `etaMin` over `tMax` epochs, after an optional linear warm-up (torch CosineAnnealingLR / LinearLR). */
export function cosineAnnealingLR(opts: CosineAnnealingLROptions): CosineAnnealingLR {
  return new CosineAnnealingLR(opts);
}

/** Reduces the rate by `factor` when the monitored metric plateaus (torch ReduceLROnPlateau); fit feeds it valLoss, else loss. */
export function reduceLROnPlateau(opts?: ReduceLROnPlateauOptions): ReduceLROnPlateau {
  return new ReduceLROnPlateau(opts);
}
