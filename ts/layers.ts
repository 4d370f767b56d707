// Layer specifications. A spec is plain data; `Edgegrad.sequential` turns specs into a model
// whose weights live in the wasm heap. Ids are the ABI's (index = id), checked against Rust's
// names by test/abi.test.ts.

import { checkInt, checkNumber, checkOptions, describe, InvalidArgumentError, isObject } from "./errors.js";

/** Activation names indexed by their ABI id. */
export const ACTIVATIONS = ["identity", "relu", "leakyRelu", "sigmoid", "tanh", "gelu"] as const;

/** An activation function applied after a dense or batchNorm layer ("gelu" is the exact erf form). */
export type Activation = (typeof ACTIVATIONS)[number];

/**
 * Kernel initializer names indexed by their ABI id. "auto" is heNormal for relu, leakyRelu and
 * gelu layers and xavierUniform otherwise; "constant" fills the kernel with `value`.
 */
export const INITIALIZERS = [
  "auto",
  "heNormal",
  "heUniform",
  "xavierNormal",
  "xavierUniform",
  "lecunNormal",
  "zeros",
  "lecunUniform",
  "constant",
] as const;

/** How a dense kernel's initial values are drawn (biases always start at zero). */
export type Initializer = (typeof INITIALIZERS)[number];

/** Layer kinds indexed by their ABI id (word 0 of a layer record). */
export const LAYER_KINDS = ["dense", "batchNorm", "dropout"] as const;

/** The kind of a layer. */
export type LayerKind = (typeof LAYER_KINDS)[number];

/** Parameter roles indexed by their ABI id: dense layers own kernel and bias, batchNorm gamma and beta. */
export const PARAM_ROLES = ["kernel", "bias", "gamma", "beta"] as const;

/** What a parameter segment is to its layer. */
export type ParamRole = (typeof PARAM_ROLES)[number];

/** Default negative slope of leakyRelu (PyTorch's default). */
export const DEFAULT_LEAKY_ALPHA = 0.01;
/** torch.nn.BatchNorm1d's default momentum of the running statistics. */
export const DEFAULT_BN_MOMENTUM = 0.1;
/** torch.nn.BatchNorm1d's default epsilon added to the variance. */
export const DEFAULT_BN_EPS = 1e-5;

/** Words per layer record of eg_model_create (ABI v2). */
export const LAYER_RECORD_WORDS = 8;

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
  /** Fill value of the "constant" initializer (0 for the others). */
  readonly value: number;
}

/** Batch normalization over the features of the previous layer (torch.nn.BatchNorm1d), then an activation. */
export interface BatchNormSpec {
  /** Layer kind tag. */
  readonly kind: "batchNorm";
  /** Weight of the newest batch statistic in the running mean and variance. */
  readonly momentum: number;
  /** Added to the variance before the square root. */
  readonly eps: number;
  /** Activation applied after the normalisation and affine map. */
  readonly activation: Activation;
  /** Negative slope for leakyRelu (ignored by other activations). */
  readonly alpha: number;
}

/** Inverted dropout: in training mode zeroes each value with probability `rate` and scales the rest by 1/(1−rate). */
export interface DropoutSpec {
  /** Layer kind tag. */
  readonly kind: "dropout";
  /** Probability of zeroing a value, in [0, 1). */
  readonly rate: number;
}

/** Any layer `Edgegrad.sequential` accepts. */
export type LayerSpec = DenseSpec | BatchNormSpec | DropoutSpec;

/** Options of `dense()`. */
export interface DenseOptions {
  /** Activation after the affine map (default "identity"). */
  activation?: Activation;
  /** Negative slope for leakyRelu (default 0.01). */
  alpha?: number;
  /** Kernel initializer (default "auto"). */
  init?: Initializer;
  /** Fill value for init "constant" (default 0); only allowed with that initializer. */
  value?: number;
}

/** Options of `batchNorm()`; the defaults are torch.nn.BatchNorm1d's. */
export interface BatchNormOptions {
  /** running ← (1 − momentum)·running + momentum·batch statistic, in [0, 1] (default 0.1). */
  momentum?: number;
  /** Added to the variance before taking its square root, > 0 (default 1e-5). */
  eps?: number;
  /** Activation after γ·x̂ + β (default "identity"). */
  activation?: Activation;
  /** Negative slope for leakyRelu (default 0.01). */
  alpha?: number;
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
  const alpha = checkNumber(o.alpha ?? DEFAULT_LEAKY_ALPHA, "dense(opts.alpha)");
  if (o.value !== undefined && init !== "constant") {
    throw new InvalidArgumentError(`dense(opts.value): only used by init "constant", but init is ${describe(init)}`);
  }
  const value = checkNumber(o.value ?? 0, "dense(opts.value)");
  return Object.freeze({ kind: "dense", units, activation, alpha, init, value });
}

/** Describes a batch-normalization layer over the previous layer's features (torch.nn.BatchNorm1d semantics). */
export function batchNorm(opts?: BatchNormOptions): BatchNormSpec {
  const o = checkOptions(opts, "batchNorm(opts)");
  const momentum = checkNumber(o.momentum ?? DEFAULT_BN_MOMENTUM, "batchNorm(opts.momentum)", 0, 1);
  const eps = checkNumber(o.eps ?? DEFAULT_BN_EPS, "batchNorm(opts.eps)", 0, Infinity, { min: true });
  const activation = o.activation ?? "identity";
  enumId(ACTIVATIONS, activation, "batchNorm(opts.activation)");
  const alpha = checkNumber(o.alpha ?? DEFAULT_LEAKY_ALPHA, "batchNorm(opts.alpha)");
  return Object.freeze({ kind: "batchNorm", momentum, eps, activation, alpha });
}

/** Describes an inverted-dropout layer that zeroes values with probability `rate` in training mode. */
export function dropout(rate: number): DropoutSpec {
  checkNumber(rate, "dropout(rate)", 0, 1, { max: true });
  return Object.freeze({ kind: "dropout", rate });
}

/**
 * The 8-word ABI v2 record of a layer spec, re-validated because specs can be hand-written:
 * [kind, units, activation, alpha, init, p0, p1, 0]; words 3, 5 and 6 are f32 values (the
 * caller stores them as f32 bits, see `LAYER_RECORD_F32_WORDS`).
 */
export function layerRecord(spec: unknown, name: string): number[] {
  // Anything but an object has no kind, and fails with the default case's message.
  const s = (isObject(spec) ? spec : {}) as Record<string, unknown>;
  switch (s["kind"]) {
    case "dense": {
      checkInt(s["units"], `${name}.units`);
      const act = enumId(ACTIVATIONS, s["activation"], `${name}.activation`);
      const alpha = checkNumber(s["alpha"], `${name}.alpha`);
      const init = enumId(INITIALIZERS, s["init"], `${name}.init`);
      const value = checkNumber(s["value"] ?? 0, `${name}.value`);
      return [0, s["units"] as number, act, alpha, init, value, 0, 0];
    }
    case "batchNorm": {
      const act = enumId(ACTIVATIONS, s["activation"], `${name}.activation`);
      const alpha = checkNumber(s["alpha"], `${name}.alpha`);
      const momentum = checkNumber(s["momentum"], `${name}.momentum`, 0, 1);
      const eps = checkNumber(s["eps"], `${name}.eps`, 0, Infinity, { min: true });
      return [1, 0, act, alpha, 0, momentum, eps, 0];
    }
    case "dropout": {
      const rate = checkNumber(s["rate"], `${name}.rate`, 0, 1, { max: true });
      return [2, 0, 0, 0, 0, rate, 0, 0];
    }
    default:
      throw new InvalidArgumentError(`${name}: expected a layer made by dense(), batchNorm() or dropout(), got ${describe(spec)}`);
  }
}

/** Words of a layer record that hold f32 bits rather than u32 (alpha, p0, p1). */
export const LAYER_RECORD_F32_WORDS: readonly number[] = [3, 5, 6];
