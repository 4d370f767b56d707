// Keras-style training callbacks for Sequential.fit(): early stopping with best-weights restore,
// per-epoch checkpoints (model.save() bytes handed to your writer) and a learning-rate logger. `callbacks(model, [...])` turns a list into fit()'s onEpochEnd /
// onBatchEnd hooks; a callback stops training by returning true from its onEpochEnd, which the
// combined hook reports to fit() by returning false. The "edgegrad/callbacks" entry (not
// re-exported by "edgegrad").

/**
 * Keras-style training callbacks for `fit()`: early stopping, checkpoints, a learning-rate logger.
 * @module edgegrad/callbacks
 */

import { checkBoolean, checkInt, checkNumber, checkOptions, describe, InvalidArgumentError } from "./errors.js";
import type { EpochLogs, FitOptions, LayerWeights, Sequential, StepStats } from "./model.js";
import type { Schedule } from "./schedules.js";

/** Something that watches training; every hook is optional. */
export interface Callback {
  /** After each epoch (after the schedule stepped); return true to stop training after this epoch. */
  onEpochEnd?(epoch: number, logs: EpochLogs, model: Sequential): boolean | void | Promise<boolean | void>;
  /** After each training step, with that step's gradient statistics. */
  onBatchEnd?(step: number, stats: StepStats, model: Sequential): void;
}

/** fit() hooks that run `list` in order; onBatchEnd is only set when a callback needs it (reading stats costs a copy). */
export function callbacks(model: Sequential, list: readonly Callback[]): Pick<FitOptions, "onEpochEnd" | "onBatchEnd"> {
  if (!Array.isArray(list)) throw new InvalidArgumentError(`callbacks(list): expected an array of callbacks, got ${describe(list)}`);
  list.forEach((cb: unknown, i) => {
    if (cb === null || typeof cb !== "object") throw new InvalidArgumentError(`callbacks(list[${i}]): expected a callback object, got ${describe(cb)}`);
  });
  const batch = list.filter((cb) => typeof cb.onBatchEnd === "function");
  const out: Pick<FitOptions, "onEpochEnd" | "onBatchEnd"> = {
    onEpochEnd: async (epoch, logs) => {
      let stop = false;
      for (const cb of list) if (cb.onEpochEnd && (await cb.onEpochEnd(epoch, logs, model)) === true) stop = true;
      return !stop;
    },
  };
  if (batch.length) out.onBatchEnd = (step, stats) => batch.forEach((cb) => cb.onBatchEnd!(step, stats, model));
  return out;
}

/** The metrics a callback can monitor. */
export type Monitor = "loss" | "valLoss" | "accuracy" | "valAccuracy";

/** Options of `earlyStopping()`. */
export interface EarlyStoppingOptions {
  /** Metric to watch (default "valLoss"); accuracies are maximised, losses minimised. */
  monitor?: Monitor;
  /** Stop once this many epochs in a row did not improve, an integer >= 0 (default 0: the first that does not). */
  patience?: number;
  /** Smallest change that counts as an improvement, >= 0 (default 0). */
  minDelta?: number;
  /** On stopping, put back the weights of the best epoch (default false, as in Keras). */
  restoreBestWeights?: boolean;
}

/** Stops fit() when the monitored metric has not improved for `patience` epochs (keras.callbacks.EarlyStopping). */
export class EarlyStopping implements Callback {
  /** Watched metric. */
  readonly monitor: Monitor;
  /** Epochs without improvement tolerated. */
  readonly patience: number;
  /** Smallest change counted as an improvement. */
  readonly minDelta: number;
  /** Whether stopping restores the best weights. */
  readonly restoreBestWeights: boolean;
  /** Best value seen (Infinity / -Infinity before the first epoch). */
  best: number;
  /** Epoch of the best value, -1 before the first epoch. */
  bestEpoch = -1;
  /** Epoch at which training was stopped, -1 while it has not been. */
  stoppedEpoch = -1;
  /** Epochs since the last improvement. */
  wait = 0;
  #bestWeights: LayerWeights[] | null = null;

  /** Validates the options; use `earlyStopping()`. */
  constructor(opts?: EarlyStoppingOptions) {
    const o = checkOptions(opts, "earlyStopping(opts)");
    const monitor = o.monitor ?? "valLoss";
    if (!["loss", "valLoss", "accuracy", "valAccuracy"].includes(monitor)) {
      throw new InvalidArgumentError(`earlyStopping(opts.monitor): unknown value ${describe(monitor)}; expected "loss", "valLoss", "accuracy" or "valAccuracy"`);
    }
    this.monitor = monitor;
    this.patience = checkInt(o.patience ?? 0, "earlyStopping(opts.patience)", 0);
    this.minDelta = checkNumber(o.minDelta ?? 0, "earlyStopping(opts.minDelta)", 0);
    this.restoreBestWeights = checkBoolean(o.restoreBestWeights ?? false, "earlyStopping(opts.restoreBestWeights)");
    this.best = this.#maximise ? -Infinity : Infinity;
  }

  get #maximise(): boolean {
    return this.monitor === "accuracy" || this.monitor === "valAccuracy";
  }

  /** True when `value` beats the best by more than minDelta. */
  improves(value: number): boolean {
    return this.#maximise ? value > this.best + this.minDelta : value < this.best - this.minDelta;
  }

  /** Copies of the best epoch's weights (only kept with restoreBestWeights), or null. */
  get bestWeights(): LayerWeights[] | null {
    return this.#bestWeights;
  }

  /** Updates the best value; returns true (stop) after `patience` epochs without improvement. */
  onEpochEnd(epoch: number, logs: EpochLogs, model: Sequential): boolean {
    const value = logs[this.monitor];
    if (value === undefined) {
      throw new InvalidArgumentError(
        `earlyStopping: monitored metric "${this.monitor}" is missing from the epoch logs${this.monitor.startsWith("val") ? " (pass validationData to fit)" : ""}`,
      );
    }
    if (this.improves(value)) {
      this.best = value;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights) this.#bestWeights = model.getWeights();
      return false;
    }
    this.wait++;
    if (this.wait < this.patience) return false; // Keras: stop once `patience` epochs failed to improve
    this.stoppedEpoch = epoch;
    if (this.restoreBestWeights && this.#bestWeights) model.setWeights(this.#bestWeights);
    return true;
  }
}

/** Stops training early when `monitor` stops improving (default: validation loss, patience 0). */
export function earlyStopping(opts?: EarlyStoppingOptions): EarlyStopping {
  return new EarlyStopping(opts);
}

/** One learning-rate record: the rate an epoch used and the one the next epoch will use. */
export interface LrRecord {
  /** 0-based epoch. */
  epoch: number;
  /** Rate used during the epoch. */
  lr: number;
  /** Rate after the schedule stepped (the next epoch's). */
  nextLr: number;
}

/** Records (and optionally prints) the learning rate of every epoch. */
export class LrLogger implements Callback {
  /** One record per finished epoch. */
  readonly history: LrRecord[] = [];
  readonly #log: ((line: string) => void) | null;

  /** `log` receives one line per epoch (default: none; pass console.log to print). */
  constructor(log?: (line: string) => void) {
    if (log !== undefined && typeof log !== "function") throw new InvalidArgumentError(`lrLogger(log): expected a function, got ${describe(log)}`);
    this.#log = log ?? null;
  }

  /** Records the epoch's rate and the model's next rate. */
  onEpochEnd(epoch: number, logs: EpochLogs, model: Sequential): void {
    const rec = { epoch, lr: logs.lr, nextLr: model.lr };
    this.history.push(rec);
    this.#log?.(`epoch ${epoch + 1}: lr ${rec.lr.toExponential(3)}${rec.nextLr !== rec.lr ? ` -> ${rec.nextLr.toExponential(3)}` : ""}`);
  }
}

/** A callback recording each epoch's learning rate; `log` (e.g. console.log) also prints it. */
export function lrLogger(log?: (line: string) => void): LrLogger {
  return new LrLogger(log);
}

/** Options of `modelCheckpoint()`. */
export interface ModelCheckpointOptions {
  /** Receives each checkpoint (`model.save()` bytes); a returned promise is awaited. In Node: `(bytes, epoch) => writeFile(\`ckpt-${epoch}.edgegrad\`, bytes)`. */
  save: (bytes: Uint8Array, epoch: number, logs: EpochLogs) => void | Promise<void>;
  /** Only save when `monitor` improved (default false: save every epoch). */
  saveBestOnly?: boolean;
  /** Metric judged by saveBestOnly (default "valLoss"); accuracies are maximised. */
  monitor?: Monitor;
  /** The schedule given to fit(), so the checkpoint also holds its position. */
  schedule?: Schedule;
}

/** Saves the whole training state after every epoch, or only on improvement (keras.callbacks.ModelCheckpoint). */
export class ModelCheckpoint implements Callback {
  /** Epochs saved so far, in order. */
  readonly saved: number[] = [];
  readonly #save: ModelCheckpointOptions["save"];
  readonly #schedule: Schedule | undefined;
  /** Tracks the best value when saveBestOnly is set (never stops training). */
  readonly #judge: EarlyStopping | null;

  /** Validates the options; use `modelCheckpoint()`. */
  constructor(opts: ModelCheckpointOptions) {
    if (opts === null || typeof opts !== "object") throw new InvalidArgumentError(`modelCheckpoint(opts): expected { save }, got ${describe(opts)}`);
    if (typeof opts.save !== "function") throw new InvalidArgumentError(`modelCheckpoint(opts.save): expected a function (bytes, epoch, logs) => void, got ${describe(opts.save)}`);
    this.#save = opts.save;
    this.#schedule = opts.schedule;
    const best = checkBoolean(opts.saveBestOnly ?? false, "modelCheckpoint(opts.saveBestOnly)");
    this.#judge = best ? new EarlyStopping({ monitor: opts.monitor ?? "valLoss", patience: 2 ** 31 - 1 }) : null;
  }

  /** Saves (when due) and hands the bytes to `save`. */
  async onEpochEnd(epoch: number, logs: EpochLogs, model: Sequential): Promise<void> {
    if (this.#judge) {
      const before = this.#judge.bestEpoch;
      this.#judge.onEpochEnd(epoch, logs, model);
      if (this.#judge.bestEpoch === before) return;
    }
    await this.#save(model.save(this.#schedule ? { schedule: this.#schedule } : undefined), epoch, logs);
    this.saved.push(epoch);
  }
}

/** A callback that checkpoints the model after every epoch (or only its best epochs) through `opts.save`. */
export function modelCheckpoint(opts: ModelCheckpointOptions): ModelCheckpoint {
  return new ModelCheckpoint(opts);
}
