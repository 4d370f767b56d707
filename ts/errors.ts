// Error classes and the status-code table: the one place on the TS side that knows the
// numbers crates/wasm returns. test/abi.test.ts proves this table matches Rust's names.

import type { ParamRole } from "./layers.js";

/** Status names indexed by the i32 status code the C-ABI returns (0 = ok). */
export const STATUS_NAMES = [
  "ok",
  "invalidArgument",
  "shapeMismatch",
  "disposedHandle",
  "outOfMemory",
  "invalidState",
  "nonFinite",
  "internal",
] as const;

/** The name of one ABI status code, e.g. "shapeMismatch". */
export type StatusName = (typeof STATUS_NAMES)[number];

/** Numeric ABI status codes by name (derived from STATUS_NAMES, the one table). */
export const Status = Object.fromEntries(STATUS_NAMES.map((name, code) => [name, code])) as Readonly<Record<StatusName, number>>;

/** Base class of every error edgegrad throws; `status` is the matching ABI status name. */
export class EdgegradError extends Error {
  /** The ABI status this error corresponds to. */
  readonly status: StatusName;

  /** Creates an error with a message that names the offending argument. */
  constructor(message: string, status: StatusName = "internal", options?: ErrorOptions) {
    super(message, options);
    this.status = status;
    // Keep the subclass name in stack traces and `String(err)` after bundling/minifying.
    this.name = new.target.name;
  }
}

/** An argument has the wrong type or is outside its allowed range. */
export class InvalidArgumentError extends EdgegradError {
  /** Creates an invalid-argument error. */
  constructor(message: string) {
    super(message, "invalidArgument");
  }
}

/** Sizes, lengths or shapes disagree. */
export class ShapeError extends EdgegradError {
  /** Creates a shape-mismatch error. */
  constructor(message: string) {
    super(message, "shapeMismatch");
  }
}

/** A tensor or model was used after `dispose()` (or its handle is stale). */
export class DisposedError extends EdgegradError {
  /** Creates a use-after-dispose error. */
  constructor(message: string) {
    super(message, "disposedHandle");
  }
}

/** The WebAssembly heap could not grow enough for an allocation. */
export class OutOfMemoryError extends EdgegradError {
  /** Creates an out-of-memory error. */
  constructor(message: string) {
    super(message, "outOfMemory");
  }
}

/** The call is not allowed in the object's current state (e.g. training before compile). */
export class StateError extends EdgegradError {
  /** Creates an invalid-state error. */
  constructor(message: string) {
    super(message, "invalidState");
  }
}

/** Where a non-finite value appeared during a training step (each part only when known). */
export interface NonFiniteDetails {
  /** The optimizer step that was refused (1-based: the value `model.step` would have reached). */
  step?: number;
  /** Index of the layer whose loss or gradient went non-finite. */
  layer?: number;
  /** The parameter of that layer: "kernel", "bias", "gamma" or "beta". */
  role?: ParamRole;
}

/**
 * A NaN or infinity appeared in inputs, targets, weights, loss or gradients. When a training step
 * is refused, `step`, `layer` and `role` say where; nothing in the model changed.
 */
export class NonFiniteError extends EdgegradError {
  /** The refused optimizer step (1-based), or undefined outside a training step. */
  readonly step: number | undefined;
  /** The layer whose loss or gradient went non-finite, or undefined when it is not a layer's (e.g. the inputs). */
  readonly layer: number | undefined;
  /** The parameter role in that layer, when known. */
  readonly role: ParamRole | undefined;

  /** Creates a non-finite-value error. */
  constructor(message: string, details: NonFiniteDetails = {}) {
    super(message, "nonFinite");
    this.step = details.step;
    this.layer = details.layer;
    this.role = details.role;
  }
}

/** Why a checkpoint was refused. */
export type CheckpointProblem = "magic" | "version" | "checksum" | "truncated" | "malformed" | "architecture" | "schedule";

/**
 * A checkpoint was refused: not a checkpoint (`magic`), another format `version`, corrupt
 * (`checksum`, `truncated`, `malformed`), saved from another `architecture`, or saved with a
 * schedule of another kind or configuration (`schedule`). Nothing was changed.
 */
export class CheckpointError extends InvalidArgumentError {
  /** Which check failed. */
  readonly problem: CheckpointProblem;

  /** Creates a checkpoint error. */
  constructor(message: string, problem: CheckpointProblem) {
    super(message);
    this.problem = problem;
  }
}

/** The WebAssembly module is missing, malformed, or speaks another ABI version. */
export class AbiError extends EdgegradError {
  /** Creates an ABI error. */
  constructor(message: string) {
    super(message, "internal");
  }
}

/**
 * The WebAssembly instance trapped (a `WebAssembly.RuntimeError`, e.g. an out-of-bounds access)
 * during this or an earlier call: its memory may be inconsistent, so every later call on it and
 * on its tensors and models throws this. Call `init()` for a fresh instance; checkpoint bytes
 * saved before are plain bytes and load there unchanged.
 */
export class PoisonedError extends EdgegradError {
  /** Creates a poisoned-instance error; `cause` is the original trap. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, "internal", options);
  }
}

/** An internal invariant of the WebAssembly core failed (a bug: please report it). */
export class InternalError extends EdgegradError {
  /** Creates an internal error. */
  constructor(message: string) {
    super(message, "internal");
  }
}

/** The error class of each ABI status code (index = code; "ok" has none). */
const ERROR_OF_STATUS: readonly (new (message: string, details: NonFiniteDetails) => EdgegradError)[] = [
  AbiError, // unused: 0 is "ok"
  InvalidArgumentError,
  ShapeError,
  DisposedError,
  OutOfMemoryError,
  StateError,
  NonFiniteError,
  InternalError,
];

/** Builds the typed error for a non-zero ABI status code. */
export function errorForStatus(status: number, message: string, details: NonFiniteDetails = {}): EdgegradError {
  const E = status > 0 ? ERROR_OF_STATUS[status] : undefined;
  return E ? new E(message, details) : new AbiError(`${message} (unknown status code ${status})`);
}

// ---- argument checks shared by every public entry point (they throw the classes above) ----

/** A short description of a value for error messages ("Float64Array(12)", "string", "NaN"). */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (ArrayBuffer.isView(v)) {
    const len = (v as unknown as { length?: number }).length;
    return `${v.constructor.name}(${len ?? v.byteLength})`;
  }
  if (Array.isArray(v)) return `Array(${v.length})`;
  if (typeof v === "object") return (v as object).constructor?.name ?? "object";
  return typeof v;
}

/** True for any object (arrays too), false for null and primitives. */
export function isObject(v: unknown): v is object {
  return typeof v === "object" && v !== null;
}

/** Checks an integer size/count in [min, max]; `name` is the argument as the user wrote it. */
export function checkInt(v: unknown, name: string, min = 1, max = 0x7fff_ffff): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    const range = max === 0x7fff_ffff ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
    throw new InvalidArgumentError(`${name}: must be ${range}, got ${describe(v)}`);
  }
  return v;
}

/** Checks that an options argument is undefined or a plain object. */
export function checkOptions<T extends object>(v: T | undefined, name: string): Partial<T> {
  if (v === undefined) return {};
  if (!isObject(v) || Array.isArray(v)) {
    throw new InvalidArgumentError(`${name}: expected an options object, got ${describe(v)}`);
  }
  return v;
}

/**
 * Checks a finite number in [min, max] (a bound marked in `open` is excluded) and returns it;
 * `name` is the argument as the user wrote it.
 */
export function checkNumber(
  v: unknown,
  name: string,
  min = -Infinity,
  max = Infinity,
  open: { min?: boolean; max?: boolean } = {},
): number {
  // Math.fround: every such value crosses the ABI as f32, where 1e39 would become Infinity.
  const ok = typeof v === "number" && Number.isFinite(Math.fround(v)) && (open.min ? v > min : v >= min) && (open.max ? v < max : v <= max);
  if (!ok) {
    const lo = min === -Infinity ? "" : `${open.min ? ">" : ">="} ${min}`;
    const hi = max === Infinity ? "" : `${open.max ? "<" : "<="} ${max}`;
    const range = [lo, hi].filter(Boolean).join(" and ");
    throw new InvalidArgumentError(`${name}: must be a finite number${range ? ` ${range}` : ""}, got ${describe(v)}`);
  }
  return v as number;
}

/** Checks a Float32Array argument and returns it. */
export function checkFloat32Array(v: unknown, name: string): Float32Array {
  if (!(v instanceof Float32Array)) throw new InvalidArgumentError(`${name}: expected a Float32Array, got ${describe(v)}`);
  return v;
}

/** Checks a boolean argument and returns it. */
export function checkBoolean(v: unknown, name: string): boolean {
  if (typeof v !== "boolean") throw new InvalidArgumentError(`${name}: expected a boolean, got ${describe(v)}`);
  return v;
}
