// Layer specifications. A spec is plain data; `Edgegrad.sequential` turns specs into a model
// whose weights live in the wasm heap. Ids are the ABI's (index = id), checked against Rust's
// names by test/abi.test.ts.

import { checkInt, checkOptions, describe, InvalidArgumentError } from "./errors.js";

/** Activation names indexed by their ABI id. */
export const ACTIVATIONS = ["identity", "relu", "leakyRelu", "sigmoid", "tanh", "gelu"] as const;

/** An activation function applied after a dense layer ("gelu" is the exact erf form). */
export type Activation = (typeof ACTIVATIONS)[number];

/** Kernel initializer names indexed by their ABI id ("auto": heNormal for relu-like, else xavierUniform). */
export const INITIALIZERS = ["auto", "heNormal", "heUniform", "xavierNormal", "xavierUniform", "lecunNormal", "zeros"] as const;

/** How a dense kernel's initial values are drawn (biases always start at zero). */
export type Initializer = (typeof INITIALIZERS)[number];

/** Default negative slope of leakyRelu (PyTorch's default). */
export const DEFAULT_LEAKY_ALPHA = 0.01;

/** A fully connected layer y = act(x·W + b) with W of shape (inputs, units). */
export interface DenseSpec {
  /** Layer kind tag. */
  readonly kind: "dense";
  /** Output features. */
  readonly units: number;
  /** Activation after the affine map. */
  readonly activation: Activation;
  /** Negative slope for leakyRelu (ignored by other activations). */
  readonly alpha: number;
  /** Kernel initializer. */
  readonly init: Initializer;
}

/** Options of `dense()`. */
export interface DenseOptions {
  /** Activation after the affine map (default "identity"). */
  activation?: Activation;
  /** Negative slope for leakyRelu (default 0.01). */
  alpha?: number;
  /** Kernel initializer (default "auto"). */
  init?: Initializer;
}

/** Returns the ABI id of a known name, or throws InvalidArgumentError naming `name`. */
export function enumId<T extends string>(table: readonly T[], value: unknown, name: string): number {
  const id = table.indexOf(value as T);
  if (id < 0) {
    throw new InvalidArgumentError(`${name}: unknown value ${describe(value)}; expected one of ${table.map((t) => `"${t}"`).join(", ")}`);
  }
  return id;
}

/** Describes a dense (fully connected) layer with `units` outputs. */
export function dense(units: number, opts?: DenseOptions): DenseSpec {
  checkInt(units, "dense(units)");
  const o = checkOptions(opts, "dense(opts)");
  const activation = o.activation ?? "identity";
  enumId(ACTIVATIONS, activation, "dense(opts.activation)");
  const init = o.init ?? "auto";
  enumId(INITIALIZERS, init, "dense(opts.init)");
  const alpha = o.alpha ?? DEFAULT_LEAKY_ALPHA;
  if (typeof alpha !== "number" || !Number.isFinite(alpha)) {
    throw new InvalidArgumentError(`dense(opts.alpha): must be a finite number, got ${describe(alpha)}`);
  }
  return Object.freeze({ kind: "dense", units, activation, alpha, init });
}
