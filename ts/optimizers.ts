// Optimizer specifications. A spec is plain data; `Sequential.compile` sends its id and f32
// hyper-parameters to wasm, which applies the update as one pass over the parameter arena.

import { checkOptions, describe, InvalidArgumentError } from "./errors.js";

/** Optimizer names indexed by their ABI id. */
export const OPTIMIZERS = ["sgd"] as const;

/** The name of an optimizer. */
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** An optimizer with its hyper-parameters, as made by `sgd()`. */
export interface OptimizerSpec {
  /** Optimizer kind. */
  readonly name: OptimizerName;
  /** Learning rate. */
  readonly lr: number;
}

/** Options of `sgd()`. */
export interface SgdOptions {
  /** Learning rate, finite and >= 0. */
  lr: number;
}

/** Plain stochastic gradient descent, p ← p − lr·g (torch.optim.SGD without momentum). */
export function sgd(opts: SgdOptions): OptimizerSpec {
  const o = checkOptions(opts, "sgd(opts)");
  checkLr(o.lr, "sgd(opts.lr)");
  return Object.freeze({ name: "sgd", lr: o.lr as number });
}

function checkLr(lr: unknown, name: string): void {
  if (typeof lr !== "number" || !Number.isFinite(lr) || lr < 0) {
    throw new InvalidArgumentError(`${name}: must be a finite number >= 0, got ${describe(lr)}`);
  }
}

/** The ABI id and f32 hyper-parameter list of a spec, re-checked (specs can be hand-written). */
export function optimizerAbi(spec: unknown, name: string): { id: number; hyper: number[] } {
  if (spec === null || typeof spec !== "object") {
    throw new InvalidArgumentError(`${name}: expected an optimizer such as sgd({ lr }), got ${describe(spec)}`);
  }
  const s = spec as Partial<OptimizerSpec>;
  const id = OPTIMIZERS.indexOf(s.name as OptimizerName);
  if (id < 0) {
    throw new InvalidArgumentError(`${name}.name: unknown optimizer ${describe(s.name)}; expected one of ${OPTIMIZERS.map((t) => `"${t}"`).join(", ")}`);
  }
  checkLr(s.lr, `${name}.lr`);
  return { id, hyper: [s.lr as number] };
}
