// Optimizer specifications. A spec is plain data; `Sequential.compile` sends its id and f32
// hyper-parameters to wasm, which applies the update as one fused pass over the parameter arena
// with exactly torch.optim's formulas and update order. Defaults and validity ranges are
// torch.optim's (PyTorch 1.13); test/optim.pytorch.test.ts checks the numbers against it.

import { checkBoolean, checkNumber, checkOptions, describe, InvalidArgumentError, isObject } from "./errors.js";

/** Optimizer names indexed by their ABI id. */
export const OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad"] as const;

/** The name of an optimizer. */
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** torch.optim.SGD: plain, with momentum (and dampening), or Nesterov, made by `sgd()`. */
export interface SgdSpec {
  /** Optimizer kind. */
  readonly name: "sgd";
  /** Learning rate. */
  readonly lr: number;
  /** Momentum factor μ. */
  readonly momentum: number;
  /** Dampening τ of the momentum buffer. */
  readonly dampening: number;
  /** L2 penalty added to the gradient. */
  readonly weightDecay: number;
  /** Nesterov momentum. */
  readonly nesterov: boolean;
}

/** torch.optim.Adam (L2 weight decay) or torch.optim.AdamW (decoupled weight decay), made by `adam()` / `adamw()`. */
export interface AdamSpec {
  /** Optimizer kind: "adam" adds weightDecay·p to the gradient, "adamw" decays the weights directly. */
  readonly name: "adam" | "adamw";
  /** Learning rate. */
  readonly lr: number;
  /** Decay rates (β1, β2) of the first and second moment estimates. */
  readonly betas: readonly [number, number];
  /** Added to √v̂ in the denominator. */
  readonly eps: number;
  /** Weight decay coefficient (L2 for adam, decoupled for adamw). */
  readonly weightDecay: number;
  /** AMSGrad variant (uses the running maximum of v). */
  readonly amsgrad: boolean;
}

/** torch.optim.RMSprop, made by `rmsprop()`. */
export interface RmspropSpec {
  /** Optimizer kind. */
  readonly name: "rmsprop";
  /** Learning rate. */
  readonly lr: number;
  /** Smoothing constant of the squared-gradient average. */
  readonly alpha: number;
  /** Added to the denominator. */
  readonly eps: number;
  /** L2 penalty added to the gradient. */
  readonly weightDecay: number;
  /** Momentum factor. */
  readonly momentum: number;
  /** Normalise by the estimated variance instead of the second moment. */
  readonly centered: boolean;
}

/** torch.optim.Adagrad, made by `adagrad()`. */
export interface AdagradSpec {
  /** Optimizer kind. */
  readonly name: "adagrad";
  /** Learning rate. */
  readonly lr: number;
  /** Learning-rate decay: step t uses lr / (1 + (t − 1)·lrDecay). */
  readonly lrDecay: number;
  /** L2 penalty added to the gradient. */
  readonly weightDecay: number;
  /** Starting value of the squared-gradient sums. */
  readonly initialAccumulatorValue: number;
  /** Added to the denominator. */
  readonly eps: number;
}

/** An optimizer with its hyper-parameters, as made by `sgd()`, `adam()`, `adamw()`, `rmsprop()` or `adagrad()`. */
export type OptimizerSpec = SgdSpec | AdamSpec | RmspropSpec | AdagradSpec;

/** Options of `sgd()` (torch.optim.SGD; g is the gradient, b the momentum buffer). */
export interface SgdOptions {
  /** Learning rate (required, >= 0): p ← p − lr·d, where d is g or the momentum term. */
  lr: number;
  /** Momentum μ >= 0 (default 0): b ← μ·b + (1 − dampening)·g, with b = g on the first step. */
  momentum?: number;
  /** Dampening in [0, 1] (default 0): scales the gradient's share (1 − dampening) in the momentum buffer after the first step. */
  dampening?: number;
  /** L2 weight decay >= 0 (default 0): g ← g + weightDecay·p before the momentum. */
  weightDecay?: number;
  /** Nesterov momentum (default false): d = g + μ·b instead of b; needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
}

/** Options of `adam()` and `adamw()` (torch.optim.Adam / AdamW). */
export interface AdamOptions {
  /** Learning rate >= 0 (default 1e-3): p ← p − lr·m̂ / (√v̂ + eps), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ). */
  lr?: number;
  /** [β1, β2], each in [0, 1) (default [0.9, 0.999]): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g². */
  betas?: readonly [number, number];
  /** eps >= 0 added to √v̂ (default 1e-8). */
  eps?: number;
  /**
   * Weight decay >= 0. adam (default 0): L2, g ← g + weightDecay·p before the moments.
   * adamw (default 1e-2): decoupled, p ← p·(1 − lr·weightDecay) before the update.
   */
  weightDecay?: number;
  /** AMSGrad (default false): divides by √(max over steps of v)/√(1−β2ᵗ) instead of √v̂. */
  amsgrad?: boolean;
}

/** Options of `rmsprop()` (torch.optim.RMSprop). */
export interface RmspropOptions {
  /** Learning rate >= 0 (default 1e-2): p ← p − lr·g/(√v + eps), or p ← p − lr·b with momentum. */
  lr?: number;
  /** Smoothing constant α in [0, 1] (default 0.99): v ← α·v + (1−α)·g². */
  alpha?: number;
  /** eps >= 0 added to the denominator √v (default 1e-8). */
  eps?: number;
  /** L2 weight decay >= 0 (default 0): g ← g + weightDecay·p first. */
  weightDecay?: number;
  /** Momentum μ >= 0 (default 0): b ← μ·b + g/(√v + eps), p ← p − lr·b. */
  momentum?: number;
  /** Centered (default false): also tracks ḡ ← α·ḡ + (1−α)·g and divides by √(v − ḡ²) + eps. */
  centered?: boolean;
}

/** Options of `adagrad()` (torch.optim.Adagrad). */
export interface AdagradOptions {
  /** Learning rate >= 0 (default 1e-2): p ← p − clr·g/(√s + eps), s ← s + g². */
  lr?: number;
  /** Learning-rate decay >= 0 (default 0): clr = lr / (1 + (t − 1)·lrDecay) at step t (1-based). */
  lrDecay?: number;
  /** L2 weight decay >= 0 (default 0): g ← g + weightDecay·p first. */
  weightDecay?: number;
  /** Initial value >= 0 of the squared-gradient sums s (default 0). */
  initialAccumulatorValue?: number;
  /** eps >= 0 added to the denominator √s (default 1e-10). */
  eps?: number;
}

/** Names an option in error messages, e.g. k => `sgd(opts.${k})`. */
type Arg = (key: string) => string;

const nonNegative = (v: unknown, name: string) => checkNumber(v, name, 0);
const unitOpen = (v: unknown, name: string) => checkNumber(v, name, 0, 1, { max: true });

function checkSgd(o: Record<string, unknown>, arg: Arg): SgdSpec {
  const lr = nonNegative(o["lr"], arg("lr"));
  const momentum = nonNegative(o["momentum"] ?? 0, arg("momentum"));
  const dampening = checkNumber(o["dampening"] ?? 0, arg("dampening"), 0, 1);
  const weightDecay = nonNegative(o["weightDecay"] ?? 0, arg("weightDecay"));
  const nesterov = checkBoolean(o["nesterov"] ?? false, arg("nesterov"));
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new InvalidArgumentError(
      `${arg("nesterov")}: Nesterov momentum needs momentum > 0 and dampening 0 (as torch.optim.SGD), got momentum ${momentum}, dampening ${dampening}`,
    );
  }
  return Object.freeze({ name: "sgd", lr, momentum, dampening, weightDecay, nesterov });
}

function checkAdam(kind: "adam" | "adamw", o: Record<string, unknown>, arg: Arg): AdamSpec {
  const lr = nonNegative(o["lr"] ?? 1e-3, arg("lr"));
  const betas = o["betas"] ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2) {
    throw new InvalidArgumentError(`${arg("betas")}: expected [beta1, beta2], got ${describe(betas)}`);
  }
  const b1 = unitOpen(betas[0], arg("betas[0]"));
  const b2 = unitOpen(betas[1], arg("betas[1]"));
  const eps = nonNegative(o["eps"] ?? 1e-8, arg("eps"));
  const weightDecay = nonNegative(o["weightDecay"] ?? (kind === "adamw" ? 1e-2 : 0), arg("weightDecay"));
  const amsgrad = checkBoolean(o["amsgrad"] ?? false, arg("amsgrad"));
  return Object.freeze({ name: kind, lr, betas: Object.freeze([b1, b2] as const), eps, weightDecay, amsgrad });
}

function checkRmsprop(o: Record<string, unknown>, arg: Arg): RmspropSpec {
  return Object.freeze({
    name: "rmsprop",
    lr: nonNegative(o["lr"] ?? 1e-2, arg("lr")),
    // torch only asks alpha >= 0; above 1 the average of g² could go negative and √ would be NaN.
    alpha: checkNumber(o["alpha"] ?? 0.99, arg("alpha"), 0, 1),
    eps: nonNegative(o["eps"] ?? 1e-8, arg("eps")),
    weightDecay: nonNegative(o["weightDecay"] ?? 0, arg("weightDecay")),
    momentum: nonNegative(o["momentum"] ?? 0, arg("momentum")),
    centered: checkBoolean(o["centered"] ?? false, arg("centered")),
  });
}

function checkAdagrad(o: Record<string, unknown>, arg: Arg): AdagradSpec {
  return Object.freeze({
    name: "adagrad",
    lr: nonNegative(o["lr"] ?? 1e-2, arg("lr")),
    lrDecay: nonNegative(o["lrDecay"] ?? 0, arg("lrDecay")),
    weightDecay: nonNegative(o["weightDecay"] ?? 0, arg("weightDecay")),
    initialAccumulatorValue: nonNegative(o["initialAccumulatorValue"] ?? 0, arg("initialAccumulatorValue")),
    eps: nonNegative(o["eps"] ?? 1e-10, arg("eps")),
  });
}

/** Stochastic gradient descent with optional momentum, dampening, L2 weight decay and Nesterov (torch.optim.SGD). */
export function sgd(opts: SgdOptions): SgdSpec {
  return checkSgd(checkOptions(opts, "sgd(opts)") as Record<string, unknown>, (k) => `sgd(opts.${k})`);
}

/** Adam with bias correction, optional L2 weight decay and AMSGrad (torch.optim.Adam). */
export function adam(opts?: AdamOptions): AdamSpec {
  return checkAdam("adam", checkOptions(opts, "adam(opts)") as Record<string, unknown>, (k) => `adam(opts.${k})`);
}

/** AdamW: Adam with decoupled weight decay, default 1e-2 (torch.optim.AdamW). */
export function adamw(opts?: AdamOptions): AdamSpec {
  return checkAdam("adamw", checkOptions(opts, "adamw(opts)") as Record<string, unknown>, (k) => `adamw(opts.${k})`);
}

/** RMSprop with optional momentum, centering and L2 weight decay (torch.optim.RMSprop). */
export function rmsprop(opts?: RmspropOptions): RmspropSpec {
  return checkRmsprop(checkOptions(opts, "rmsprop(opts)") as Record<string, unknown>, (k) => `rmsprop(opts.${k})`);
}

/** Adagrad with optional learning-rate decay, L2 weight decay and initial accumulator (torch.optim.Adagrad). */
export function adagrad(opts?: AdagradOptions): AdagradSpec {
  return checkAdagrad(checkOptions(opts, "adagrad(opts)") as Record<string, unknown>, (k) => `adagrad(opts.${k})`);
}

/** What compile sends to wasm for an optimizer: its id and f32 hyper-parameters, with the checked spec. */
export interface OptimizerAbi {
  /** ABI optimizer id. */
  id: number;
  /** Hyper-parameters in the ABI's order for this optimizer. */
  hyper: number[];
  /** The validated spec. */
  spec: OptimizerSpec;
}

/** The ABI id and f32 hyper-parameter list of a spec, re-checked (specs can be hand-written). */
export function optimizerAbi(spec: unknown, name: string): OptimizerAbi {
  if (!isObject(spec)) {
    throw new InvalidArgumentError(`${name}: expected an optimizer such as sgd({ lr }) or adam(), got ${describe(spec)}`);
  }
  // "compile(opts.optimizer)" names its fields "compile(opts.optimizer.lr)".
  const call = name.endsWith(")");
  const arg: Arg = (k) => (call ? `${name.slice(0, -1)}.${k})` : `${name}.${k}`);
  const s = spec as Record<string, unknown>;
  const id = OPTIMIZERS.indexOf(s["name"] as OptimizerName);
  if (id < 0) {
    throw new InvalidArgumentError(`${arg("name")}: unknown optimizer ${describe(s["name"])}; expected one of ${OPTIMIZERS.map((t) => `"${t}"`).join(", ")}`);
  }
  // Hand-written specs get the same defaults and checks as the factory functions.
  // Each list is in the order eg_model_compile reads the optimizer's hyper-parameters.
  const bit = (b: boolean) => (b ? 1 : 0);
  switch (s["name"] as OptimizerName) {
    case "sgd": {
      const o = checkSgd(s, arg);
      return { id, spec: o, hyper: [o.lr, o.momentum, o.dampening, o.weightDecay, bit(o.nesterov)] };
    }
    case "adam":
    case "adamw": {
      const o = checkAdam(s["name"] as "adam" | "adamw", s, arg);
      return { id, spec: o, hyper: [o.lr, o.betas[0], o.betas[1], o.eps, o.weightDecay, bit(o.amsgrad)] };
    }
    case "rmsprop": {
      const o = checkRmsprop(s, arg);
      return { id, spec: o, hyper: [o.lr, o.alpha, o.eps, o.weightDecay, o.momentum, bit(o.centered)] };
    }
    case "adagrad": {
      const o = checkAdagrad(s, arg);
      return { id, spec: o, hyper: [o.lr, o.lrDecay, o.weightDecay, o.initialAccumulatorValue, o.eps] };
    }
  }
}
