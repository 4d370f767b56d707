// Checkpoints, TypeScript half. The container and everything in wasm arenas (architecture,
// compile settings, parameters, batch-norm running statistics, optimizer moments and step count,
// parameter groups, clipping, mode, RNG state, the last shuffle's permutation) is written and
// checked by Rust (crates/nn/src/checkpoint.rs: magic, version, CRC-32, then a full parse); this
// file owns the "extra" section inside it: JSON with what only the TS side knows (the layer specs
// for `Edgegrad.load`, the loss name, the optimizer spec, the learning rate as an f64, whether the
// step-stats block is filled, and the schedule's position). Loading is two-phase: check the bytes
// and the JSON without touching any model, then one commit call that cannot half-apply.

import type { Abi } from "./abi.js";
import { CheckpointError, describe, EdgegradError, InvalidArgumentError, isObject, type CheckpointProblem } from "./errors.js";
import { ACTIVATIONS, INITIALIZERS, LAYER_KINDS, type LayerSpec } from "./layers.js";
import { LOSSES, type LossName } from "./losses.js";
import { optimizerAbi, type OptimizerSpec } from "./optimizers.js";
// Types only: the schedules live in the "edgegrad/schedules" subpath, recognised by SCHEDULE below.
import type { Schedule, ScheduleCheckpoint } from "./schedules.js";

/** Options of `model.save()`. */
export interface SaveOptions {
  /** The schedule passed to `fit()`; its position is saved so a resumed `fit()` continues it. */
  schedule?: Schedule;
}

/** Options of `model.load()` and `Edgegrad.load()`. */
export interface LoadOptions {
  /** A schedule of the same kind and configuration as the saved one; its position is restored. */
  schedule?: Schedule;
}

/** What the TS side keeps in a checkpoint's extra section. */
export interface CheckpointMeta {
  format: "edgegrad-ts";
  version: 1;
  inputs: number;
  layers: LayerSpec[];
  compiled: { loss: LossName; lr: number; optimizer: OptimizerSpec } | null;
  stepped: boolean;
  schedule: ScheduleCheckpoint | null;
}

/**
 * @internal The brand of `Schedule` (ts/schedules.ts, the "edgegrad/schedules" entry): fit(),
 * save() and load() check it instead of `instanceof Schedule`, so the core never imports the
 * schedules and an app that uses none does not carry them.
 */
export const SCHEDULE: unique symbol = Symbol("edgegrad.schedule");

/** Checks an optional `opts.schedule` of `where` ("fit", "save", "load") and returns it. */
export function checkSchedule(v: unknown, where: string): Schedule | undefined {
  if (v !== undefined && !(isObject(v) && SCHEDULE in v)) {
    throw new InvalidArgumentError(`${where}(opts.schedule): expected a schedule such as stepLR({ stepSize }), got ${describe(v)}`);
  }
  return v as Schedule | undefined;
}

const PROBLEMS: readonly CheckpointProblem[] = ["magic", "version", "checksum", "truncated", "malformed", "architecture"];

/** Rewrites Rust's "checkpoint: <problem>: …" failures as CheckpointError; other errors pass through. */
function asCheckpointError(e: unknown): unknown {
  if (!(e instanceof EdgegradError)) return e;
  const m = /checkpoint: (\w+)/.exec(e.message);
  const problem = m && (PROBLEMS as readonly string[]).includes(m[1]!) ? (m[1] as CheckpointProblem) : null;
  return problem ? new CheckpointError(e.message, problem) : e;
}

/** The layer specs behind ABI layer records (the constructor's validated form). */
export function specsFromRecords(records: readonly number[]): LayerSpec[] {
  const specs: LayerSpec[] = [];
  for (let r = 0; r < records.length; r += 8) {
    const [kind, units, act, alpha, init, p0, p1] = records.slice(r, r + 8) as number[];
    const activation = ACTIVATIONS[act!]!;
    switch (LAYER_KINDS[kind!]) {
      case "dense":
        specs.push({ kind: "dense", units: units!, activation, alpha: alpha!, init: INITIALIZERS[init!]!, value: p0! });
        break;
      case "batchNorm":
        specs.push({ kind: "batchNorm", momentum: p0!, eps: p1!, activation, alpha: alpha! });
        break;
      default:
        specs.push({ kind: "dropout", rate: p0! });
    }
  }
  return specs;
}

/** Serialises model `m` with `meta` as its extra section. */
export function writeCheckpoint(abi: Abi, m: number, meta: CheckpointMeta, where: string): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(meta));
  const extra = abi.alloc(Math.max(json.length, 1), where);
  try {
    abi.u8.set(json, extra);
    abi.call(where, "eg_model_save", m, extra, json.length, abi.out);
  } finally {
    abi.free(extra, Math.max(json.length, 1));
  }
  const [ptr, len] = [abi.outU32(0), abi.outU32(1)];
  const bytes = abi.u8.slice(ptr, ptr + len);
  abi.free(ptr, len);
  return bytes;
}

/** Checkpoint bytes copied into the heap and checked; `commit` loads them, `release` frees the copy. */
export interface StagedCheckpoint {
  meta: CheckpointMeta;
  /** Loads into model `m` (Rust re-checks and compares the architecture); all or nothing. */
  commit(m: number): void;
  release(): void;
}

function malformed(where: string, why: string): CheckpointError {
  return new CheckpointError(`${where}: checkpoint: malformed: ${why}`, "malformed");
}

/** Checks the extra section's JSON as carefully as user input (it passed the CRC, but may be hand-made). */
function checkMeta(v: unknown, where: string): CheckpointMeta {
  if (!isObject(v)) throw malformed(where, "no TypeScript metadata");
  const o = v as Record<string, unknown>;
  if (o["format"] !== "edgegrad-ts" || o["version"] !== 1) throw malformed(where, `unknown metadata format ${describe(o["format"])} v${describe(o["version"])}`);
  if (!Number.isInteger(o["inputs"]) || !Array.isArray(o["layers"])) throw malformed(where, "inputs / layers");
  const c = o["compiled"];
  if (c !== null) {
    if (typeof c !== "object") throw malformed(where, "compiled");
    const cc = c as Record<string, unknown>;
    if (!(LOSSES as readonly unknown[]).includes(cc["loss"]) || typeof cc["lr"] !== "number") throw malformed(where, "compiled.loss / lr");
    try {
      optimizerAbi(cc["optimizer"], "optimizer");
    } catch (e) {
      throw malformed(where, `optimizer: ${(e as Error).message}`);
    }
  }
  if (typeof o["stepped"] !== "boolean") throw malformed(where, "stepped");
  const s = o["schedule"];
  if (s !== null && (typeof s !== "object" || !Array.isArray((s as ScheduleCheckpoint).position))) throw malformed(where, "schedule");
  return v as CheckpointMeta;
}

/** Copies `bytes` into the heap and checks them (Rust: magic, version, CRC, full parse; here: the JSON). */
export function stageCheckpoint(abi: Abi, bytes: unknown, opts: LoadOptions | undefined, where: string): StagedCheckpoint {
  if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(`${where}: expected the Uint8Array from save(), got ${describe(bytes)}`);
  if (opts !== undefined && !isObject(opts)) throw new InvalidArgumentError(`${where}: expected an options object, got ${describe(opts)}`);
  const schedule = checkSchedule(opts?.schedule, where);
  const size = Math.max(bytes.length, 1);
  const ptr = abi.alloc(size, where);
  let released = false;
  const release = () => {
    if (!released) abi.free(ptr, size);
    released = true;
  };
  try {
    abi.u8.set(bytes, ptr);
    try {
      abi.call(where, "eg_model_load", 0, ptr, bytes.length, abi.out);
    } catch (e) {
      throw asCheckpointError(e);
    }
    const [off, len, lossId] = [abi.outU32(0), abi.outU32(1), abi.outU32(2)];
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(off, off + len)));
    } catch {
      throw malformed(where, "the metadata section is not JSON");
    }
    const meta = checkMeta(json, where);
    const rustLoss = lossId === 0xffff_ffff ? null : (LOSSES[lossId] ?? "?");
    if ((meta.compiled?.loss ?? null) !== rustLoss) throw malformed(where, "the metadata's compile settings disagree with the model's");
    if (schedule) {
      if (meta.schedule === null) throw new CheckpointError(`${where}(opts.schedule): the checkpoint was saved without a schedule`, "schedule");
      try {
        schedule.checkCheckpointState(meta.schedule);
      } catch (e) {
        throw new CheckpointError(`${where}(opts.schedule): ${(e as Error).message}`, "schedule");
      }
    }
    return {
      meta,
      commit(m: number) {
        try {
          abi.call(where, "eg_model_load", m, ptr, bytes.length, abi.out);
        } catch (e) {
          throw asCheckpointError(e);
        }
        if (schedule && meta.schedule) schedule.restoreCheckpointState(meta.schedule);
      },
      release,
    };
  } catch (e) {
    release();
    throw e;
  }
}
